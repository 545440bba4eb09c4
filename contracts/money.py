"""Money arithmetic in integer minor units, with the one documented rounding rule.

A price is in minor units of the settlement currency per whole unit of the instrument; a quantity
is in minor units of the instrument (10**-decimals of a unit). The consideration (cash for a
trade) is therefore ``quantity * price / 10**decimals`` rounded to the nearest minor unit of cash,
halves rounded up (away from zero; all operands are positive). Example: 1.5 shares of a
2-decimal instrument (quantity 150) at 10.01 USD (price 1001) -> 150 * 1001 / 100 = 1501.5 ->
1502 cents.
"""

from __future__ import annotations


def consideration(quantity: int, price: int, decimals: int) -> int:
    """Cash owed for ``quantity`` at ``price``: round half up of quantity*price / 10**decimals."""
    assert quantity > 0 and price > 0 and decimals >= 0
    scale: int = 10**decimals  # typed: int ** int is Any to mypy (a negative exponent gives a float)
    return (2 * quantity * price + scale) // (2 * scale)
