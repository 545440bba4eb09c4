"""Amounts for people: integer minor units as decimal strings, exactly (no floats).

Nothing signed or compared goes through here, but contracts format the amounts in their failure
messages with it, and those messages are in receipts (hashed into receipts_root): it is pinned with
the contract runtime (contracts/api.py), so changing it changes genesis code hashes. One function
so the API, the CLI, the demo and the chain's own messages print the same thing.
"""

from __future__ import annotations


def format_amount(units: int, decimals: int, signed: bool = False) -> str:
    """``units`` minor units as a decimal string with thousands separators ("1,250.00");
    ``signed`` puts "+" before a positive amount (for movements)."""
    assert decimals >= 0
    sign = "-" if units < 0 else ("+" if signed and units > 0 else "")
    whole, frac = divmod(abs(units), 10**decimals)
    return sign + f"{whole:,}" + (f".{frac:0{decimals}d}" if decimals else "")
