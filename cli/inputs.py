"""One parser for every kind of text a person types: amounts, whole numbers, tenors, ids, node
URLs, and the ``printable`` form of a cell echoed back.

Every parser is ASCII-only on purpose: Python's ``int()``, ``str.isdigit()`` and ``\\d`` accept
Arabic-Indic, full-width and superscript digits ("١٠", "１０", "²"), so "10" could be typed in
ways no other system reading the same file or script would agree on. A clearing instruction must
mean one thing, so anything outside the plain ASCII form is refused with a stable code rather
than guessed at. The CLI options, ``trade import`` and anything else reading user input call
these functions; none of them reads the network or the clock.

``InputError`` marks a command line that is wrong before anything is sent; the CLI exits 2 for
it, as click does for a usage error.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import Any

import click

from chain.display import format_amount
from chain.errors import ClearchainError
from chain.ids import is_valid_id
from chain.limits import ID_CHARS_MAX

AMOUNT_CHARS_MAX = 40  # longer than any amount below 2**62 minor units, with decimals
INT_CHARS_MAX = 20  # digits of a whole number typed on a command line (2**63 has 19)
URL_CHARS_MAX = 2048
_DECIMAL = re.compile(r"([0-9]+)(?:\.([0-9]+))?", re.ASCII)
_INT = re.compile(r"[0-9]+", re.ASCII)
_INT_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)  # what a number option takes: no "1_000", no "١٠"
_FLOAT_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)", re.ASCII)  # no "1e3", "inf", "nan"
_TENOR = re.compile(r"T(?:\+([0-9]+))?", re.ASCII)
ID_RULE = f"1 to {ID_CHARS_MAX} of A-Z a-z 0-9 . _ : -, not only dots"


class InputError(ClearchainError):
    """Text typed by a person that is not of the form asked for (the CLI exits 2)."""

    exit_status = 2


class AmountError(InputError):
    """A display amount that is not a positive decimal exactly representable in minor units
    (refused before anything is sent, so the CLI exits 2 like every other input error)."""


def printable(text: str) -> str:
    """``text`` safe to echo into a terminal: every character that is not printable (escape
    sequences, NUL, other controls, bidirectional overrides, line separators) written as its
    Python escape (``\\x1b``, ``\\x00``, ``\\u202e``), everything else as is. Idempotent, so a
    message may be made printable twice."""
    return "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in text)


def quoted(text: str) -> str:
    """``'text'`` for a message, made ``printable``."""
    return f"'{printable(text)}'"


def parse_amount(text: str, decimals: int, maximum: int, what: str = "amount") -> int:
    """Minor units of the positive decimal string ``text`` for an asset with ``decimals`` places.

    Raises AmountError ``bad_amount`` if ``text`` is not a plain positive decimal (ASCII digits,
    an optional point and digits; no sign, exponent or separators), has non-zero digits beyond
    ``decimals`` places, or exceeds ``maximum`` minor units.
    """
    assert decimals >= 0
    cleaned = text.strip(" \t")
    match = _DECIMAL.fullmatch(cleaned) if len(cleaned) <= AMOUNT_CHARS_MAX else None
    if match is None:
        raise AmountError("bad_amount", f"{what} {quoted(text)} is not a decimal number like 1.5")
    whole, frac = match.group(1), match.group(2) or ""
    significant = frac.rstrip("0")
    if len(significant) > decimals:
        raise AmountError(
            "bad_amount", f"{what} {cleaned} has {len(significant)} decimal places; at most {decimals} here"
        )
    units = int(whole) * 10**decimals + (int(significant.ljust(decimals, "0")) if decimals else 0)
    if units <= 0:
        raise AmountError("bad_amount", f"{what} {cleaned} must be positive")
    if units > maximum:
        raise AmountError(
            "bad_amount", f"{what} {cleaned} is too large (at most {format_amount(maximum, decimals)})"
        )
    return units


def plain_amount(units: int, decimals: int) -> str:
    """``units`` as a decimal string without separators, as ``parse_amount`` reads it back
    ("1250.5" for 125050 at 2 decimals; trailing zeros dropped)."""
    assert units >= 0 and decimals >= 0
    whole, frac = divmod(units, 10**decimals)
    text = f"{frac:0{decimals}d}".rstrip("0") if decimals else ""
    return f"{whole}.{text}" if text else str(whole)


def parse_int(text: str, what: str, minimum: int = 0, maximum: int = 2**63 - 1) -> int:
    """The whole number ``text`` in ASCII digits, between ``minimum`` and ``maximum``. Raises
    InputError ``bad_number``."""
    cleaned = text.strip(" \t")
    sign = -1 if cleaned.startswith("-") and minimum < 0 else 1
    digits = cleaned[1:] if sign < 0 else cleaned
    if len(digits) > INT_CHARS_MAX or _INT.fullmatch(digits) is None:
        raise InputError("bad_number", f"{what} {quoted(text)} is not a whole number in digits 0-9")
    value = sign * int(digits)
    if not minimum <= value <= maximum:
        raise InputError("bad_number", f"{what} {value} is out of range ({minimum} to {maximum})")
    return value


def parse_tenor(text: str, maximum: int, what: str = "settlement") -> int:
    """N of a tenor ``T+N`` (``T`` alone is T+0; case and spaces ignored), N from 0 to
    ``maximum`` in ASCII digits. Raises InputError ``bad_tenor``."""
    spec = text.strip(" \t").upper().replace(" ", "")
    match = _TENOR.fullmatch(spec) if len(spec) <= INT_CHARS_MAX else None
    if match is not None and int(match.group(1) or 0) <= maximum:
        return int(match.group(1) or 0)
    raise InputError("bad_tenor", f"{what} {quoted(text)}: expected T+0 .. T+{maximum}")


def parse_id(text: str, what: str = "id") -> str:
    """``text`` if it is a valid id (chain.ids). Raises InputError ``bad_id``."""
    if not is_valid_id(text):
        raise InputError("bad_id", f"{what} {quoted(text)} is not an id ({ID_RULE})")
    return text


def parse_node_url(text: str) -> str:
    """The node API's base URL ``text`` without a trailing ``/``: ``http://`` or ``https://``, a
    host, an optional port, an optional path; nothing else. Raises InputError ``bad_node_url``
    (with a hint for a bare ``host:port``)."""
    what = f"node URL {quoted(text)}"
    if not text or len(text) > URL_CHARS_MAX or not text.isascii() or not text.isprintable() or " " in text:
        raise InputError("bad_node_url", f"{what}: expected http://HOST:PORT")
    if "://" not in text:
        raise InputError("bad_node_url", f"{what} has no scheme; did you mean http://{printable(text)}")
    try:
        parts = urllib.parse.urlsplit(text)
        port = parts.port  # raises ValueError for a port that is not a number below 65536
    except ValueError as exc:
        raise InputError("bad_node_url", f"{what}: {exc}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InputError("bad_node_url", f"{what}: only http:// and https:// are supported")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise InputError("bad_node_url", f"{what}: expected http://HOST:PORT")
    if parts.query or parts.fragment or port == 0:
        raise InputError("bad_node_url", f"{what}: expected http://HOST:PORT (no query, no port 0)")
    return text.rstrip("/")


# --- click's number types, ASCII only ------------------------------------------------------------
class _AsciiNumber(click.ParamType):
    """Refuses what click's number types would take through ``int()``/``float()`` but a person
    did not mean as a plain number ("١٠", "1_000", "1e3", "nan"), then converts as click does."""

    pattern: re.Pattern[str] = _INT_TEXT

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and self.pattern.fullmatch(value.strip(" \t")) is None:
            self.fail(f"{quoted(value)} is not a number in digits 0-9", param, ctx)
        return super().convert(value, param, ctx)


class AsciiInt(_AsciiNumber, click.types.IntParamType):
    pattern = _INT_TEXT


class AsciiIntRange(_AsciiNumber, click.IntRange):
    pattern = _INT_TEXT


class AsciiFloat(_AsciiNumber, click.types.FloatParamType):
    pattern = _FLOAT_TEXT


class AsciiFloatRange(_AsciiNumber, click.FloatRange):
    pattern = _FLOAT_TEXT


def ascii_number_type(kind: click.ParamType) -> click.ParamType:
    """The ASCII-only equivalent of click number type ``kind`` (same range, same help); any
    other type as it is."""
    if isinstance(kind, _AsciiNumber):
        return kind
    if isinstance(kind, click.IntRange):
        return AsciiIntRange(kind.min, kind.max, kind.min_open, kind.max_open, kind.clamp)
    if isinstance(kind, click.FloatRange):
        return AsciiFloatRange(kind.min, kind.max, kind.min_open, kind.max_open, kind.clamp)
    if isinstance(kind, click.types.IntParamType):
        return AsciiInt()
    if isinstance(kind, click.types.FloatParamType):
        return AsciiFloat()
    return kind
