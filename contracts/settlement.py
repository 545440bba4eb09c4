"""Settlement: trade tickets from an exchange, settled delivery versus payment.

A trade ticket is ``[trade_id, buyer_account, seller_account, instrument, quantity, price,
trade_date]``, ``trade_date`` a day number (days since 1970-01-01 UTC; the chain's today is the
block's ``time_ms // 86_400_000``).
Settlement is gross and immediate (BIS DvP model 1): the security moves seller -> buyer and the
consideration (contracts/money.py) buyer -> seller, both or neither. ``settle`` takes one ticket
and fails the transaction if the trade fails; ``settle_batch`` takes up to ``BATCH_TRADES_MAX``
tickets, each settling or failing on its own, and its receipt holds one event per ticket.

Both accounts of a trade are clearing accounts: each belongs to an active clearing member
(``not_member_account`` otherwise). So a trade can never reach a contract's system account
(owner ``@<contract>``: collateral, guarantee, insurance, bond and fund pools, which only their
contract's rules move), nor the house account of an exchange, oracle or validator: an exchange
reports trades between members' accounts and cannot itself be a party to one.

Failure codes: ``not_exchange``, ``trade_expired`` (the trade date is older than the window of
trade ids, or on or before a date whose ids were already removed), ``trade_date_future`` (after
tomorrow: a day of clock skew is allowed), ``duplicate_trade_id``, ``bad_quantity``, ``bad_price``,
``unknown_instrument``, ``instrument_is_cash``, ``instrument_halted``, ``unknown_account``,
``account_suspended``, ``account_closed``, ``not_member_account``, ``same_account``,
``insufficient_securities``, ``insufficient_cash``, ``amount_overflow``, ``zero_consideration``
(the cash leg rounds to nothing: delivering a security for no payment is not delivery versus
payment).

State::

    settlement/trade/<exchange>/<trade_id>                 -> [height, "settled" | "in_cycle", trade_date]
    settlement/expiry/<trade_date:010d>/<exchange>/<trade_id> -> [exchange, trade_id]
    settlement/expired_through                             -> the latest trade date whose ids are removed
    settlement/expire_due/<trade_date:010d>                -> 1 while that date's expire task is due

Trade ids are scoped per exchange and shared with settlement cycles (contracts/cycles.py), which
mark a T+N trade ``in_cycle`` until its cycle closes. A recorded trade id is refused whatever the
new ticket's date; a failed trade leaves no record, so the exchange may submit it again (a retry
after the member has been funded); its failure is in the receipt.

Lifetime: a trade id is kept while its ticket could still be accepted, i.e. for ``trade_id_days``
days after its trade date. The first record of a trade date schedules the time task
``expire(date)`` at the start of day ``date + trade_id_days + 1``; it first raises
``expired_through`` to ``date`` (from then on a ticket of that date fails ``trade_expired``), then
removes up to ``EXPIRE_BATCH_MAX`` records of that date and runs again in the next block while
any remain (a trade still pending in a cycle keeps its record until its close, which removes it). So the stored trade ids are bounded by the trades of the window, and duplicate
detection stays exact: the same ticket (same id and date) settles at most once, ever. An id
reused with a later date after its record is gone is a new trade (an exchange's ids are unique
within the window, not forever).
"""

from __future__ import annotations

from typing import Any

from chain.limits import AMOUNT_MAX, BATCH_TRADES_MAX, PRICE_MAX, QUANTITY_MAX
from chain.state import BlockState
from contracts import accounts, params
from contracts.api import Context, Contract, ContractError, method, task
from contracts.instruments import ACTIVE, get_instrument, price_text_of, units_text
from contracts.membership import has_role, require_role
from contracts.money import amount_text, consideration
from contracts.params import Param
from contracts.schema import Id, Int, ListOf, Record

NAME = "settlement"
SETTLED = "settled"
IN_CYCLE = "in_cycle"  # written by contracts/cycles.py while the trade waits for its cycle
DAY_MS = 86_400_000  # a trade date is a UTC calendar day, whatever cycles' business-day length
TRADE_DATE_MAX = 2**32 - 1  # a day number fits an unsigned 32-bit integer (and 10 digits)
EXPIRE_BATCH_MAX = 1_000  # records one run of the expire task removes; it runs again if more remain

PARAMS = {
    "trade_id_days": Param(
        7, 1, 366,
        "days a trade id is kept after its trade date: a retry window that covers a long weekend and T+2",
    ),
}  # fmt: skip

TICKET = Record(
    (
        ("trade_id", Id()),
        ("buyer", Id()),
        ("seller", Id()),
        ("instrument", Id()),
        ("quantity", Int(-QUANTITY_MAX, QUANTITY_MAX)),
        ("price", Int(-PRICE_MAX, PRICE_MAX)),
        ("trade_date", Int(0, TRADE_DATE_MAX)),
    )
)


TRADE_PREFIX = b"settlement/trade/"


def trade_key(exchange: str, trade_id: str) -> bytes:
    return TRADE_PREFIX + f"{exchange}/{trade_id}".encode()


def _expiry_key(trade_date: int, exchange: str, trade_id: str) -> str:
    return f"expiry/{trade_date:010d}/{exchange}/{trade_id}"


def _expire_due_key(trade_date: int) -> str:
    """Present while ``trade_date``'s ``expire`` task is scheduled and not yet done."""
    return f"expire_due/{trade_date:010d}"


def trade_record(ctx: Context, exchange: str, trade_id: str) -> Any:
    return ctx.state.get(trade_key(exchange, trade_id))


def read_trade(state: BlockState, exchange: str, trade_id: str) -> tuple[int, str, int] | None:
    """(height, status, trade date) of a settled or in-cycle trade, from a state view; None if
    unknown (never recorded, failed, or removed after its window)."""
    record = state.get(trade_key(exchange, trade_id))
    return None if record is None else (record[0], record[1], record[2])


def day_of(time_ms: int) -> int:
    """The UTC day number of a block time (days since 1970-01-01)."""
    return time_ms // DAY_MS


def is_expired(ctx: Context, trade_date: int) -> bool:
    """Whether a ticket of ``trade_date`` is older than the window (or its ids are removed)."""
    own = ctx.view(NAME)
    window = params.get(ctx, NAME, "trade_id_days")
    through = own.get("expired_through")
    return trade_date < day_of(ctx.time_ms) - window or (through is not None and trade_date <= through)


def check_trade_date(ctx: Context, trade_id: str, trade_date: int) -> None:
    """Fail ``trade_expired`` or ``trade_date_future``; shared with settlement cycles."""
    today = day_of(ctx.time_ms)
    if is_expired(ctx, trade_date):
        window = params.get(ctx, NAME, "trade_id_days")
        raise ContractError(
            "trade_expired",
            f"trade {trade_id} of day {trade_date} is older than the {window}-day window of trade ids "
            f"(today is day {today})",
        )
    if trade_date > today + 1:
        raise ContractError(
            "trade_date_future",
            f"trade {trade_id} of day {trade_date} is after tomorrow (today is day {today})",
        )


def record_trade(ctx: Context, exchange: str, trade_id: str, status: str, trade_date: int) -> None:
    """Write a trade id with its status and date, and its expiry entry; the first id of a date
    schedules that date's ``expire`` task. An id whose date has expired is not kept (removed if
    kept): its ticket is refused ``trade_expired`` from now on anyway."""
    if is_expired(ctx, trade_date):
        forget_trade(ctx, exchange, trade_id)
        return
    own = ctx.view(NAME)
    # One get, not an iteration of the date's entries: iterating state merges and sorts the
    # block's pending writes, which made every trade cost O(trades in the block).
    due = _expire_due_key(trade_date)
    if own.get(due) is None:
        own.put(due, 1)
        window = params.get(ctx, NAME, "trade_id_days")
        own.schedule("expire", trade_date, at_time_ms=(trade_date + window + 1) * DAY_MS)
    own.put(_expiry_key(trade_date, exchange, trade_id), [exchange, trade_id])
    ctx.state.put(trade_key(exchange, trade_id), (ctx.height, status, trade_date))


def forget_trade(ctx: Context, exchange: str, trade_id: str) -> None:
    """Remove a trade id and its expiry entry (a failed cycle trade frees its id)."""
    key = trade_key(exchange, trade_id)
    record = ctx.state.get(key)
    if record is not None:
        ctx.view(NAME).delete(_expiry_key(record[2], exchange, trade_id))
        ctx.state.delete(key)


def expire_date(ctx: Context, trade_date: int) -> None:
    """The ``expire`` task: remove up to ``EXPIRE_BATCH_MAX`` trade ids of ``trade_date``, once
    the date is out of the window; runs again next block while any remain, or later if the window
    grew since it was scheduled."""
    window = params.get(ctx, NAME, "trade_id_days")
    through = ctx.get("expired_through")
    if trade_date >= day_of(ctx.time_ms) - window and (through is None or trade_date > through):
        ctx.schedule("expire", trade_date, at_time_ms=(trade_date + window + 1) * DAY_MS)
        return
    if through is None or trade_date > through:
        ctx.put("expired_through", trade_date)
    entries = []
    for key, value in ctx.iterate(f"expiry/{trade_date:010d}/"):
        entries.append((key, value))
        if len(entries) > EXPIRE_BATCH_MAX:
            break
    more = len(entries) > EXPIRE_BATCH_MAX
    for key, (exchange, trade_id) in entries[:EXPIRE_BATCH_MAX]:
        ctx.delete(key)
        record = ctx.state.get(trade_key(exchange, trade_id))
        # A trade still pending in a cycle keeps its id until the close, which removes it (its date
        # is out of the window): so no other trade can take the id while the close may touch it.
        if record is not None and record[1] == SETTLED:
            ctx.state.delete(trade_key(exchange, trade_id))
    if more:
        ctx.schedule("expire", trade_date, at_height=ctx.height + 1)
    else:
        ctx.delete(_expire_due_key(trade_date))
    ctx.emit("trade_ids_expired", date=trade_date, removed=min(len(entries), EXPIRE_BATCH_MAX), more=more)


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


def check_new_trade_id(ctx: Context, trade_id: str, trade_date: int) -> None:
    """The ticket's date is in the window and its id is not recorded (settled, or pending in a
    settlement cycle: contracts/cycles.py). Fails ``trade_expired``, ``trade_date_future``,
    ``duplicate_trade_id``; shared with settlement cycles."""
    check_trade_date(ctx, trade_id, trade_date)
    record = ctx.state.get(trade_key(ctx.sender, trade_id))
    if record is not None:
        raise ContractError("duplicate_trade_id", f"trade {trade_id} is {record[1]} (height {record[0]})")


def _settle_one(ctx: Context, ticket: tuple[Any, ...], lookups: Lookups, seen: set[str] | None = None) -> int:
    """Check everything, then move both legs. Raises ContractError before any write.

    ``lookups`` caches instrument records and owners' membership for the length of one call
    (a call cannot change an instrument or a role while it settles trades); ``seen`` holds the
    trade ids earlier in the same batch.
    """
    trade_id, buyer, seller, iid, quantity, price, trade_date = ticket
    check_trade_date(ctx, trade_id, trade_date)
    if seen is not None:
        if trade_id in seen:
            raise ContractError("duplicate_trade_id", f"trade {trade_id} appears twice in the batch")
        seen.add(trade_id)
    record = ctx.state.get(trade_key(ctx.sender, trade_id))
    if record is not None:
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
    record_trade(ctx, ctx.sender, trade_id, SETTLED, trade_date)
    return cash


class Settlement(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(*TICKET.fields)
    def settle(self, ctx: Context, *ticket: Any) -> None:
        require_role(ctx, "exchange")
        cash = _settle_one(ctx, ticket, Lookups())
        trade_id, buyer, seller, iid, quantity, price, _ = ticket
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
                cash = _settle_one(ctx, ticket, lookups, seen)
            except ContractError as exc:
                ctx.rollback_to(mark, events)
                ctx.emit("trade_failed", trade_id=ticket[0], code=exc.code, message=exc.message)
                failed += 1
                continue
            trade_id, buyer, seller, iid, quantity, price, _ = ticket
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

    @task
    def expire(self, ctx: Context, payload: Any) -> None:
        expire_date(ctx, int(payload))
