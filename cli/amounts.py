"""Exact conversion between display amounts ("1.5", "182.50") and integer minor units.

The chain counts every amount in an asset's minor units (docs/API.md); people type and read
decimal strings. The conversion is done on the digits themselves, never through ``float``, so
"0.1" of an 8-decimal asset is exactly 10,000,000 minor units. A string with more significant
decimal places than the asset has cannot be represented and is refused (``bad_amount``) rather
than rounded: a clearing instruction must say exactly what it means. Trailing zeros beyond the
asset's decimals ("182.500" for a 2-decimal currency) are exact and therefore accepted. Only
ASCII digits are read. The parsers live in ``cli.inputs`` with every other parser of user input;
this module keeps the names the commands import.
"""

from __future__ import annotations

from chain.display import format_amount
from cli.inputs import AMOUNT_CHARS_MAX, AmountError, parse_amount, plain_amount

__all__ = ["AMOUNT_CHARS_MAX", "AmountError", "format_amount", "parse_amount", "plain_amount"]
