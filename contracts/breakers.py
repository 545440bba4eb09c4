"""Circuit breakers (STUB, to be written): an instrument halts automatically when its oracle
price moves more than a configured share within a window, or when its issuer's disclosure is
overdue (contracts/disclosure.py)."""

from __future__ import annotations

from contracts.api import Context, Contract

NAME = "breakers"


def on_price(ctx: Context, iid: str, price: int) -> None:
    """Called by the oracle after each new median price of ``iid`` (halts on a wild move)."""


def halt(ctx: Context, iid: str, reason: str) -> None:
    """Halt ``iid`` by rule (emits the instruments contract's ``instrument_halted``)."""


class Breakers(Contract):
    name = NAME
