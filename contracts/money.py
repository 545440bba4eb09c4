"""Money arithmetic in integer minor units, with the one documented rounding rule.

A price is in minor units of the settlement currency per whole unit of the instrument; a quantity
is in minor units of the instrument (10**-decimals of a unit). The consideration (cash for a
trade) is therefore ``quantity * price / 10**decimals`` rounded to the nearest minor unit of cash,
halves rounded up (away from zero; all operands are positive). Example: 1.5 shares of a
2-decimal instrument (quantity 150) at 10.01 USD (price 1001) -> 150 * 1001 / 100 = 1501.5 ->
1502 cents.
"""

from __future__ import annotations

from chain.display import format_amount


def consideration(quantity: int, price: int, decimals: int) -> int:
    """Cash owed for ``quantity`` at ``price``: round half up of quantity*price / 10**decimals."""
    assert quantity > 0 and price > 0 and decimals >= 0
    scale: int = 10**decimals  # typed: int ** int is Any to mypy (a negative exponent gives a float)
    return (2 * quantity * price + scale) // (2 * scale)


def amount_text(units: int, decimals: int, asset: str) -> str:
    """``units`` minor units of ``asset`` as a person reads them in a failure message:
    "201,300.01 USD", "0.00000001 BTC" (exact integer formatting, chain.display)."""
    return f"{format_amount(units, decimals)} {asset}"


def price_text(price: int, currency_decimals: int, currency: str) -> str:
    """A price (minor units of ``currency`` per whole unit of the instrument) as "0.01 USD"."""
    return amount_text(price, currency_decimals, currency)
