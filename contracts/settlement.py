"""Settlement: trade tickets from an exchange, settled delivery versus payment.

A trade ticket is ``[trade_id, buyer_account, seller_account, instrument, quantity, price]``.
Settlement is gross and immediate (BIS DvP model 1): the security moves seller -> buyer and the
consideration (contracts/money.py) buyer -> seller, both or neither. ``settle`` takes one ticket
and fails the transaction if the trade fails; ``settle_batch`` takes up to ``BATCH_TRADES_MAX``
tickets, each settling or failing on its own, and its receipt holds one event per ticket.

Both accounts of a trade are clearing accounts: each belongs to an active clearing member
(``not_member_account`` otherwise). So a trade can never reach a contract's system account
(owner ``@<contract>``: collateral, guarantee, insurance, bond and fund pools, which only their
contract's rules move), nor the house account of an exchange, oracle or validator: an exchange
reports trades between members' accounts and cannot itself be a party to one.

Failure codes: ``not_exchange``, ``duplicate_trade_id``, ``bad_quantity``, ``bad_price``,
``unknown_instrument``, ``instrument_is_cash``, ``instrument_halted``, ``unknown_account``,
``account_suspended``, ``account_closed``, ``not_member_account``, ``same_account``,
``insufficient_securities``, ``insufficient_cash``, ``amount_overflow``, ``zero_consideration``
(the cash leg rounds to nothing: delivering a security for no payment is not delivery versus
payment).

State: ``settlement/trade/<exchange>/<trade_id> -> [height, "settled" | "in_cycle"]``. Trade ids
are scoped per exchange and shared with settlement cycles (contracts/cycles.py), which mark a
T+N trade ``in_cycle`` until its cycle closes. A settled trade id is final; a failed trade leaves
no record, so the exchange may submit it again (a retry after the member has been funded); its
failure is in the receipt.
"""

from __future__ import annotations

from typing import Any

from chain.limits import AMOUNT_MAX, BATCH_TRADES_MAX, PRICE_MAX, QUANTITY_MAX
from chain.state import BlockState
from contracts import accounts
from contracts.api import Context, Contract, ContractError, method
from contracts.instruments import ACTIVE, get_instrument, price_text_of, units_text
from contracts.membership import has_role, require_role
from contracts.money import amount_text, consideration
from contracts.schema import Id, Int, ListOf, Record

NAME = "settlement"
SETTLED = "settled"
IN_CYCLE = "in_cycle"  # written by contracts/cycles.py while the trade waits for its cycle

TICKET = Record(
    (
        ("trade_id", Id()),
        ("buyer", Id()),
        ("seller", Id()),
        ("instrument", Id()),
        ("quantity", Int(-QUANTITY_MAX, QUANTITY_MAX)),
        ("price", Int(-PRICE_MAX, PRICE_MAX)),
    )
)


TRADE_PREFIX = b"settlement/trade/"


def trade_key(exchange: str, trade_id: str) -> bytes:
    return TRADE_PREFIX + f"{exchange}/{trade_id}".encode()


def trade_record(ctx: Context, exchange: str, trade_id: str) -> Any:
    return ctx.state.get(trade_key(exchange, trade_id))


def read_trade(state: BlockState, exchange: str, trade_id: str) -> tuple[int, str] | None:
    """(height, status) of a settled or in-cycle trade, from a state view; None if unknown."""
    record = state.get(trade_key(exchange, trade_id))
    return None if record is None else (record[0], record[1])


class Lookups:
    """What the tickets of one call share and the call cannot change: instrument records and
    whether an account owner is a clearing member."""

    __slots__ = ("instruments", "members")

    def __init__(self) -> None:
        self.instruments: dict[str, Any] = {}
        self.members: dict[str, bool] = {}


def _require_clearing_account(ctx: Context, account: str, lookups: Lookups) -> None:
    """Fail unless ``account`` is active and owned by an active clearing member."""
    owner = accounts.require_active(ctx, account).owner
    member = lookups.members.get(owner)
    if member is None:
        member = lookups.members[owner] = has_role(ctx, owner, "member")
    if not member:
        raise ContractError(
            "not_member_account", f"account {account} belongs to {owner}, not a clearing member"
        )


def check_terms(
    ctx: Context, buyer: str, seller: str, iid: str, quantity: int, price: int, lookups: Lookups
) -> tuple[Any, int]:
    """A ticket's terms, checked without reading balances (shared with settlement cycles);
    returns (instrument record, consideration). Raises ContractError; writes nothing."""
    if quantity <= 0:
        raise ContractError("bad_quantity", f"quantity {units_text(ctx, quantity, iid)} must be positive")
    if price <= 0:
        listed = get_instrument(ctx, iid)
        shown = str(price) if listed is None or listed.currency is None else price_text_of(ctx, price, listed)
        raise ContractError("bad_price", f"price {shown} must be positive")
    instruments = lookups.instruments
    ins = instruments.get(iid)
    if ins is None:
        ins = instruments[iid] = get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    if ins.currency is None:
        raise ContractError("instrument_is_cash", f"{iid} is cash; trade a security against it")
    if ins.status != ACTIVE:
        raise ContractError("instrument_halted", f"{iid} is {ins.status}")
    if buyer == seller:
        raise ContractError("same_account", f"buyer and seller are both {buyer}")
    _require_clearing_account(ctx, buyer, lookups)
    _require_clearing_account(ctx, seller, lookups)
    cash = consideration(quantity, price, ins.decimals)
    if cash > AMOUNT_MAX:
        raise ContractError(
            "amount_overflow",
            f"consideration {units_text(ctx, cash, ins.currency)} exceeds "
            f"{units_text(ctx, AMOUNT_MAX, ins.currency)}",
        )
    if cash == 0:
        raise ContractError(
            "zero_consideration",
            f"{amount_text(quantity, ins.decimals, iid)} at {price_text_of(ctx, price, ins)} rounds to no cash",
        )
    return ins, cash


def _settle_one(ctx: Context, ticket: tuple[Any, ...], lookups: Lookups) -> int:
    """Check everything, then move both legs. Raises ContractError before any write.

    ``lookups`` caches instrument records and owners' membership for the length of one call
    (a call cannot change an instrument or a role while it settles trades).
    """
    trade_id, buyer, seller, iid, quantity, price = ticket
    key = trade_key(ctx.sender, trade_id)
    record = ctx.state.get(key)
    if record is not None:  # settled, or pending in a settlement cycle (contracts/cycles.py)
        raise ContractError("duplicate_trade_id", f"trade {trade_id} is {record[1]} (height {record[0]})")
    ins, cash = check_terms(ctx, buyer, seller, iid, quantity, price, lookups)
    buyer_cash = accounts.balance(ctx, buyer, ins.currency)[0]
    # Check the cash leg before moving the securities leg, so that a failure writes nothing;
    # the caller's savepoint covers what remains (a credit overflow).
    seller_sec = accounts.balance(ctx, seller, iid)[0]
    if seller_sec < quantity:
        raise ContractError(
            "insufficient_securities",
            f"{seller} has {amount_text(seller_sec, ins.decimals, iid)}, "
            f"delivers {amount_text(quantity, ins.decimals, iid)}",
        )
    if buyer_cash < cash:
        raise ContractError(
            "insufficient_cash",
            f"{buyer} has {units_text(ctx, buyer_cash, ins.currency)}, pays {units_text(ctx, cash, ins.currency)}",
        )
    accounts.move(ctx, seller, buyer, iid, quantity, "insufficient_securities")
    accounts.move(ctx, buyer, seller, ins.currency, cash, "insufficient_cash")
    ctx.state.put(key, (ctx.height, SETTLED))
    return cash


class Settlement(Contract):
    name = NAME

    @method(*TICKET.fields)
    def settle(self, ctx: Context, *ticket: Any) -> None:
        require_role(ctx, "exchange")
        cash = _settle_one(ctx, ticket, Lookups())
        trade_id, buyer, seller, iid, quantity, price = ticket
        ctx.emit(
            "trade_settled",
            trade_id=trade_id,
            buyer=buyer,
            seller=seller,
            instrument=iid,
            quantity=quantity,
            price=price,
            consideration=cash,
        )

    @method(("trades", ListOf(TICKET, max_items=BATCH_TRADES_MAX, min_items=1)))
    def settle_batch(self, ctx: Context, trades: tuple[tuple[Any, ...], ...]) -> None:
        require_role(ctx, "exchange")
        settled = failed = 0
        seen: set[str] = set()
        lookups = Lookups()
        for ticket in trades:
            mark = ctx.savepoint()
            events = ctx.event_count
            try:
                if ticket[0] in seen:
                    raise ContractError("duplicate_trade_id", f"trade {ticket[0]} appears twice in the batch")
                seen.add(ticket[0])
                cash = _settle_one(ctx, ticket, lookups)
            except ContractError as exc:
                ctx.rollback_to(mark, events)
                ctx.emit("trade_failed", trade_id=ticket[0], code=exc.code, message=exc.message)
                failed += 1
                continue
            trade_id, buyer, seller, iid, quantity, price = ticket
            ctx.emit(
                "trade_settled",
                trade_id=trade_id,
                buyer=buyer,
                seller=seller,
                instrument=iid,
                quantity=quantity,
                price=price,
                consideration=cash,
            )
            settled += 1
        ctx.emit("batch_settled", trades=len(trades), settled=settled, failed=failed)
