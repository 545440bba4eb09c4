"""Instruments: the assets the clearing house holds and settles.

State: ``instruments/<id> -> [kind, decimals, currency, status]`` where kind is cash, equity,
fund, bond or crypto; ``decimals`` fixes the minor unit (quantities are integers of 10**-decimals
of a unit); a security names the cash instrument it settles in; status is ``active`` or
``halted``. Only admins list, halt and resume instruments (circuit breakers come later and use
the same status).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from chain.genesis import DECIMALS_MAX, INSTRUMENT_KINDS, Genesis
from chain.state import BlockState, StateReader, decode_value
from contracts.api import Context, Contract, ContractError, method
from contracts.membership import require_role
from contracts.money import amount_text, price_text
from contracts.schema import Id, Int, OneOf, Optional, Text

NAME = "instruments"
ACTIVE = "active"
HALTED = "halted"


class InstrumentRecord(NamedTuple):
    kind: str
    decimals: int
    currency: str | None
    status: str


INSTRUMENT_PREFIX = b"instruments/"  # the contract's namespace: the key is the prefix and the id


def instrument_key(iid: str) -> bytes:
    return INSTRUMENT_PREFIX + iid.encode()


def instrument_in(state: StateReader, iid: str) -> InstrumentRecord | None:
    """The instrument's record read from committed state (readers outside a call)."""
    data = state.get_state(instrument_key(iid))
    return None if data is None else InstrumentRecord(*decode_value(data))


def read_instrument(state: BlockState, iid: str) -> InstrumentRecord | None:
    """The instrument's record from a state view (committed state, or a block's overlay)."""
    value = state.get(instrument_key(iid))
    return None if value is None else InstrumentRecord(*value)


def iterate_instruments(
    state: BlockState, after: str | None = None
) -> Iterator[tuple[str, InstrumentRecord]]:
    """(id, record) of every instrument in id order, after id ``after`` (None: from the first);
    the caller bounds how many it reads."""
    start = b"" if after is None else after.encode() + b"\x00"
    for key, value in state.iterate(INSTRUMENT_PREFIX, start):
        yield key[len(INSTRUMENT_PREFIX) :].decode(), InstrumentRecord(*value)


def get_instrument(ctx: Context, iid: str) -> InstrumentRecord | None:
    value = ctx.view(NAME).get(iid)
    return None if value is None else InstrumentRecord(*value)


def units_text(ctx: Context, units: int, asset: str) -> str:
    """``units`` minor units of ``asset`` for a failure message, at the asset's listed decimals
    ("201,300.01 USD"); an asset that is not listed reads in minor units."""
    ins = get_instrument(ctx, asset)
    return amount_text(units, 0 if ins is None else ins.decimals, asset)


def price_text_of(ctx: Context, price: int, ins: InstrumentRecord) -> str:
    """``price`` of a security ``ins`` (minor units of its currency per whole unit) for a failure
    message ("182.50 USD")."""
    assert ins.currency is not None
    cash = get_instrument(ctx, ins.currency)
    return price_text(price, 0 if cash is None else cash.decimals, ins.currency)


def list_by_rule(ctx: Context, iid: str, kind: str, decimals: int, currency: str) -> None:
    """List a security created by a contract rule (an index fund's units). Fails
    ``instrument_exists`` or ``bad_currency``; emits ``instrument_listed``."""
    view = ctx.view(NAME)
    if view.get(iid) is not None:
        raise ContractError("instrument_exists", f"{iid} is already listed")
    cash = get_instrument(ctx, currency)
    if cash is None or cash.kind != "cash":
        raise ContractError("bad_currency", f"{currency!r} is not a cash instrument")
    view.put(iid, [kind, decimals, currency, ACTIVE])
    view.emit("instrument_listed", id=iid, kind=kind, decimals=decimals)


def set_status(ctx: Context, iid: str, status: str, reason: str) -> bool:
    """Halt or resume ``iid`` by a contract rule (a circuit breaker, a corporate action,
    governance); emits ``instrument_halted`` / ``instrument_resumed`` from the instruments
    contract. Returns False (and writes nothing) if it already has that status. Fails
    ``unknown_instrument``."""
    assert status in (ACTIVE, HALTED)
    ins = get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    if ins.status == status:
        return False
    view = ctx.view(NAME)
    view.put(iid, [ins.kind, ins.decimals, ins.currency, status])
    if status == HALTED:
        view.emit("instrument_halted", id=iid, reason=reason)
    else:
        view.emit("instrument_resumed", id=iid, reason=reason)
    return True


class Instruments(Contract):
    name = NAME

    def init_genesis(self, ctx: Context, genesis: Genesis) -> None:
        for ins in genesis.instruments:
            ctx.put(ins.id, [ins.kind, ins.decimals, ins.currency, ACTIVE])

    @method(
        ("id", Id()),
        ("kind", OneOf(INSTRUMENT_KINDS)),
        ("decimals", Int(0, DECIMALS_MAX)),
        ("currency", Optional(Id())),
    )
    def list_instrument(self, ctx: Context, iid: str, kind: str, decimals: int, currency: str | None) -> None:
        require_role(ctx, "admin")
        ctx.require(ctx.get(iid) is None, "instrument_exists", f"{iid} is already listed")
        if kind == "cash":
            ctx.require(currency is None, "bad_currency", "a cash instrument has no currency")
        else:
            cash = get_instrument(ctx, currency) if currency else None
            ctx.require(
                cash is not None and cash.kind == "cash",
                "bad_currency",
                f"{currency!r} is not a cash instrument",
            )
        ctx.put(iid, [kind, decimals, currency, ACTIVE])
        ctx.emit("instrument_listed", id=iid, kind=kind, decimals=decimals)

    @method(("id", Id()), ("reason", Text(256)))
    def halt(self, ctx: Context, iid: str, reason: str) -> None:
        require_role(ctx, "admin")
        ins = self._existing(ctx, iid)
        ctx.require(ins.status == ACTIVE, "instrument_halted", f"{iid} is already halted")
        ctx.put(iid, [ins.kind, ins.decimals, ins.currency, HALTED])
        ctx.emit("instrument_halted", id=iid, reason=reason)

    @method(("id", Id()))
    def resume(self, ctx: Context, iid: str) -> None:
        require_role(ctx, "admin")
        ins = self._existing(ctx, iid)
        ctx.require(ins.status == HALTED, "instrument_active", f"{iid} is not halted")
        ctx.put(iid, [ins.kind, ins.decimals, ins.currency, ACTIVE])
        # The same fields as a resume by a rule (set_status), so every instrument_resumed event
        # has one shape: an admin's resume names no reason of its own.
        ctx.emit("instrument_resumed", id=iid, reason="admin")

    @staticmethod
    def _existing(ctx: Context, iid: str) -> InstrumentRecord:
        ins = get_instrument(ctx, iid)
        if ins is None:
            raise ContractError("unknown_instrument", f"no instrument {iid}")
        return ins
