"""Exact conversion between display amounts ("1.5", "182.50") and integer minor units.

The chain counts every amount in an asset's minor units (docs/API.md); people type and read
decimal strings. The conversion is done on the digits themselves, never through ``float``, so
"0.1" of an 8-decimal asset is exactly 10,000,000 minor units. A string with more significant
decimal places than the asset has cannot be represented and is refused (``bad_amount``) rather
than rounded: a clearing instruction must say exactly what it means. Trailing zeros beyond the
asset's decimals ("182.500" for a 2-decimal currency) are exact and therefore accepted.
"""

from __future__ import annotations

import re

from chain.display import format_amount  # noqa: F401 (re-exported for the CLI)
from chain.errors import ClearchainError

_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?")  # ASCII digits only (cli/inputs.py)
AMOUNT_CHARS_MAX = 40  # longer than any amount below 2**62 minor units, with decimals


class AmountError(ClearchainError):
    """A display amount that is not a positive decimal exactly representable in minor units."""


def parse_amount(text: str, decimals: int, maximum: int, what: str = "amount") -> int:
    """Minor units of the positive decimal string ``text`` for an asset with ``decimals`` places.

    Raises AmountError ``bad_amount`` if ``text`` is not a plain positive decimal (digits, an
    optional point and digits; no sign, exponent or separators), has non-zero digits beyond
    ``decimals`` places, or exceeds ``maximum`` minor units.
    """
    assert decimals >= 0
    cleaned = text.strip()
    match = _DECIMAL.fullmatch(cleaned) if len(cleaned) <= AMOUNT_CHARS_MAX else None
    if match is None:
        raise AmountError("bad_amount", f"{what} {text!r} is not a decimal number like 1.5")
    whole, frac = match.group(1), match.group(2) or ""
    significant = frac.rstrip("0")
    if len(significant) > decimals:
        raise AmountError(
            "bad_amount", f"{what} {text} has {len(significant)} decimal places; at most {decimals} here"
        )
    units = int(whole) * 10**decimals + (int(significant.ljust(decimals, "0")) if decimals else 0)
    if units <= 0:
        raise AmountError("bad_amount", f"{what} {text} must be positive")
    if units > maximum:
        raise AmountError(
            "bad_amount", f"{what} {text} is too large (at most {format_amount(maximum, decimals)})"
        )
    return units


def plain_amount(units: int, decimals: int) -> str:
    """``units`` as a decimal string without separators, as ``parse_amount`` reads it back
    ("1250.5" for 125050 at 2 decimals; trailing zeros dropped)."""
    assert units >= 0 and decimals >= 0
    whole, frac = divmod(units, 10**decimals)
    text = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{whole}.{text}" if text else str(whole)
