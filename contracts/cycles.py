"""Settlement cycles with multilateral netting (BIS DvP model 3, next to settlement.py's model 1).

An exchange reports a trade for settlement on T+N: the ticket of contracts/settlement.py
(``[trade_id, buyer, seller, instrument, quantity, price, trade_date]``) plus ``tplus`` (N,
0..``tplus_max``). The settlement date counts from the block's day, not from ``trade_date``, which
only dates the trade id (settlement's window of ids, ``trade_expired`` / ``trade_date_future``).
The trade joins the *cycle* of its settlement date; nothing moves until that cycle closes. At the
close (a scheduled task) every trade of the cycle becomes two obligations (securities seller ->
buyer, consideration buyer -> seller), the obligations are netted per clearing account per asset,
and the net positions are applied in one atomic step: each account pays or receives only its
net. Settling the netted positions ends in exactly the balances that settling every trade gross
would have, whenever gross settlement would have succeeded (the property test holds us to it).

Business days come from block time: ``day = time_ms // day_ms``; the settlement date of a trade
made on day D at T+N is ``D + N``; the cycle of date S closes at block time
``S * day_ms + day_ms * close_at_bps // 10_000`` (rounded down to the millisecond), i.e. at a
fixed time of the settlement day (18:00 UTC by default). A trade whose cycle's close time has
passed is refused (``cycle_closed``: the cut-off is gone; report it at T+N+1). The close task is
scheduled once, when the first trade joins a cycle; the close time is fixed then.

State::

    cycles/cycle/<date:012d>          -> [status, close_at_ms, trades, settled, failed,
                                          opened_height, closed_height, values]
    cycles/open/<date:012d>           -> 1                                   (open cycles index)
    cycles/gross/<date:012d>/<asset>  -> gross submitted to the open cycle   (bounds the sums)
    cycles/item/<date:012d>/<seq:06d> -> [exchange, trade_id, buyer, seller, instrument, quantity,
                                          price, consideration, currency, tplus, status, code,
                                          short_account]
    cycles/trade/<exchange>/<trade_id> -> [date, seq]
    cycles/pend/<account>/<date:012d>/<seq:06d> -> 1                         (pending obligations)

``status`` of a cycle is open or closed; of an item pending, settled or failed (``code`` and
``short_account`` say why). ``values`` (set at the close) is ``[[asset, gross, net,
netting_bps], ...]`` by asset id: ``gross`` is the sum over the settled trades of the amount of
that asset they move (consideration for cash, quantity for a security); ``net`` is what actually
moved: the sum of the net debits (equal to the sum of the net credits); ``netting_bps`` is the
share of the gross that netting saved, ``(gross - net) * 10_000 // gross`` rounded *down* (the
report never overstates the saving; 0 when nothing settled).

Methods (sender):
- ``submit(trade_id, buyer, seller, instrument, quantity, price, trade_date, tplus)`` (exchange): one trade
  joins its cycle; fails the transaction if it is refused.
- ``submit_batch(trades)`` (exchange): up to ``BATCH_TRADES_MAX`` tickets, each accepted or refused
  on its own (``trade_accepted`` / ``trade_refused`` events, then ``batch_submitted``).
Task ``close(date)``: nets and settles the cycle (the close is one task: a cycle holds at most
``cycle_trades_max`` trades, small enough for one task and its events).
Views: ``cycle?date=D`` (the report; for an open cycle, the projected outcome at current
balances), ``cycles?[status=open|all][&after=D][&limit=N]``, ``trades?date=D[&status=S][&after=SEQ]
[&limit=N]``, ``pending?account=A[&after=KEY][&limit=N]``, ``trade?exchange=X&trade_id=T``.

Validation at submission is settlement's (contracts/settlement.py) plus the cycle rules. Trade ids
are scoped per exchange and shared with settlement: an id settled gross, or pending or settled in
a cycle, is refused (``duplicate_trade_id``); a trade that failed at a close leaves its id free
for a later cycle, as a failed gross trade does. Settlement's record of the id is the one both
paths read; it expires with settlement's window (a pending trade keeps it until its close).

Fail rule (DvP model 3 unwind), at the close:
1. A trade whose instrument is no longer active, or one of whose accounts is no longer active,
   fails with ``instrument_halted`` / ``unknown_account`` / ``account_<status>``.
2. The remaining trades are netted. A position (account, asset) is short when the account's
   available balance plus its net is below zero. Every trade of every short account is removed
   (all at once, whatever the order of trades), the positions are netted again, and this repeats
   until no position is short. Each removed trade fails with ``insufficient_cash`` (the short
   position is a currency) or ``insufficient_securities``, naming the short account (the first
   in id order if both of its accounts were short in the same round; the code is that of the
   account's first short position in asset order).
3. The net positions of the trades left are applied: debits, then credits. The unit of failure is
   the clearing account, so one client's shortfall never fails another client's trades except
   those traded against it.
Every failed trade is reported in a ``trade_failed`` event and in its item.

Events: ``trade_accepted(trade_id, date, tplus, buyer, seller, instrument, quantity, price,
consideration, close_at_ms)``, ``trade_refused(trade_id, code, message)``, ``batch_submitted(trades,
accepted, refused)``, ``cycle_opened(date, close_at_ms)``, ``trade_failed(date, exchange, trade_id,
code, account)``, ``cycle_closed(date, trades, settled, failed, assets, gross, net, netting_bps)``.

Failure codes: ``not_exchange``, ``trade_expired``, ``trade_date_future``, ``duplicate_trade_id``,
``bad_tplus``, ``bad_quantity``,
``bad_price``, ``unknown_instrument``, ``instrument_is_cash``, ``instrument_halted``,
``same_account``, ``unknown_account``, ``account_suspended``, ``account_closed``,
``not_member_account`` (an account not owned by a clearing member, checked when the trade is
reported), ``amount_overflow`` (a consideration, or a cycle's gross in one asset, above AMOUNT_MAX),
``zero_consideration``, ``cycle_closed``, ``cycle_full``; at the close ``insufficient_cash`` and
``insufficient_securities``; views ``bad_query``, ``not_found``.

Rounding: the consideration of each trade is contracts/money.py's (half up), computed once at
submission, exactly as gross settlement would; netting adds and subtracts integers only.

Parameters: ``day_ms`` (86,400,000; 1,000..604,800,000), ``close_at_bps`` (7,500 = 18:00 of the
settlement day; 1..10,000), ``tplus_max`` (5; 0..30), ``cycle_trades_max`` (1,000; 1..1,500).
Change ``day_ms`` only when no cycle is open: it renumbers the dates.

Why one module of more than 500 lines: a contract's code hash (its pin in genesis and in
governance upgrades) covers exactly the file that defines it, so the whole rule set of the
contract is one file that validators pin and auditors read; a helper module split off would
fall outside the pin.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from chain.errors import invariant
from chain.limits import AMOUNT_MAX, BATCH_TRADES_MAX
from contracts import accounts, params, settlement
from contracts.api import Context, Contract, ContractError, method, required_query, task, view
from contracts.instruments import ACTIVE, InstrumentRecord, get_instrument, units_text
from contracts.membership import require_role
from contracts.params import BPS, Param
from contracts.schema import Int, ListOf, Record

NAME = "cycles"
OPEN = "open"
CLOSED = "closed"
PENDING = "pending"
SETTLED = "settled"
FAILED = "failed"
TPLUS_LIMIT = 30
CYCLE_TRADES_LIMIT = 1_500  # the close emits at most one event per trade, below CALL_EVENTS_MAX
VIEW_ROWS_MAX = 500
VIEW_ROWS_DEFAULT = 100

TICKET = Record((*settlement.TICKET.fields, ("tplus", Int(0, TPLUS_LIMIT))))

Position = tuple[str, str]  # (account, asset)


class CycleRecord(NamedTuple):
    status: str
    close_at_ms: int
    trades: int
    settled: int
    failed: int
    opened_height: int
    closed_height: int | None
    values: list[list[Any]]


class Item(NamedTuple):
    """One trade of a cycle; ``seq`` is its place in the cycle (from the key)."""

    seq: int
    exchange: str
    trade_id: str
    buyer: str
    seller: str
    instrument: str
    quantity: int
    price: int
    consideration: int
    currency: str
    tplus: int
    status: str
    code: str | None
    short_account: str | None


# --- keys -------------------------------------------------------------------------------------
def _date(date: int) -> str:
    return f"{date:012d}"


def _cycle_key(date: int) -> str:
    return "cycle/" + _date(date)


def _item_key(date: int, seq: int) -> str:
    return f"item/{_date(date)}/{seq:06d}"


def _pend_key(account: str, date: int, seq: int) -> str:
    return f"pend/{account}/{_date(date)}/{seq:06d}"


def _gross_key(date: int, asset: str) -> str:
    return f"gross/{_date(date)}/{asset}"


# --- reads ------------------------------------------------------------------------------------
def get_cycle(ctx: Context, date: int) -> CycleRecord | None:
    value = ctx.view(NAME).get(_cycle_key(date))
    return None if value is None else CycleRecord(*value)


def get_items(ctx: Context, date: int) -> list[Item]:
    """Every trade of cycle ``date``, in arrival order (at most ``cycle_trades_max``)."""
    out = []
    for key, value in ctx.view(NAME).iterate(f"item/{_date(date)}/"):
        out.append(Item(int(key.rsplit("/", 1)[1]), *value))
    return out


def _put_item(ctx: Context, date: int, item: Item) -> None:
    ctx.put(_item_key(date, item.seq), list(item[1:]))
    # Mirror the trade's state into settlement's trade ids, which gross settlement already reads:
    # a trade id pending in a cycle or settled at a close cannot also settle gross, at no cost
    # to the gross path; a failed one frees its id. The pending record (written at submission)
    # holds the trade date; settling keeps it only while the date is in the window.
    if item.status == FAILED:
        settlement.forget_trade(ctx, item.exchange, item.trade_id)
    elif item.status == SETTLED:
        record = settlement.trade_record(ctx, item.exchange, item.trade_id)
        if record is not None:
            settlement.record_trade(ctx, item.exchange, item.trade_id, settlement.SETTLED, record[2])


def compute_close_at(date: int, day_ms: int, close_at_bps: int) -> int:
    """Block time at which the cycle of settlement date ``date`` closes (rounded down)."""
    return date * day_ms + day_ms * close_at_bps // BPS


def compute_netting_bps(gross: int, net: int) -> int:
    """Share of ``gross`` that netting saved, in bps, rounded down; 0 for an empty gross."""
    return 0 if gross == 0 else (gross - net) * BPS // gross


# --- submission -------------------------------------------------------------------------------
def _check_ticket(
    ctx: Context, ticket: tuple[Any, ...], lookups: settlement.Lookups
) -> tuple[InstrumentRecord, int]:
    """Settlement's checks of one ticket; returns (instrument, consideration). Writes nothing."""
    trade_id, buyer, seller, iid, quantity, price, trade_date, tplus = ticket
    # Settlement's record of the id covers both paths: pending or settled in a cycle, settled gross.
    settlement.check_new_trade_id(ctx, trade_id, trade_date)
    tplus_max = params.get(ctx, NAME, "tplus_max")
    if tplus > tplus_max:
        raise ContractError("bad_tplus", f"T+{tplus}: settlement is at most T+{tplus_max}")
    ins, cash = settlement.check_terms(ctx, buyer, seller, iid, quantity, price, lookups)
    return ins, cash


def _join_cycle(ctx: Context, date: int, close_at: int) -> CycleRecord:
    """The open cycle of ``date`` with room for one more trade, opened (and its close scheduled)
    if this is its first trade. Fails ``cycle_closed``, ``cycle_full``; writes only on success."""
    if ctx.time_ms >= close_at:
        raise ContractError("cycle_closed", f"cycle {date} closed at time {close_at}; the cut-off has passed")
    cycle = get_cycle(ctx, date)
    if cycle is not None and cycle.status != OPEN:
        raise ContractError("cycle_closed", f"cycle {date} is {cycle.status}")
    cap = params.get(ctx, NAME, "cycle_trades_max")
    if cycle is not None and cycle.trades >= cap:
        raise ContractError("cycle_full", f"cycle {date} holds its maximum of {cap} trades")
    if cycle is None:
        cycle = CycleRecord(OPEN, close_at, 0, 0, 0, ctx.height, None, [])
        ctx.put("open/" + _date(date), 1)
        ctx.schedule("close", date, at_time_ms=close_at)
        ctx.emit("cycle_opened", date=date, close_at_ms=close_at)
    return cycle


def _add_gross(ctx: Context, date: int, asset: str, amount: int) -> None:
    total = (ctx.get(_gross_key(date, asset)) or 0) + amount
    if total > AMOUNT_MAX:
        raise ContractError(
            "amount_overflow", f"cycle {date} would move more than {units_text(ctx, AMOUNT_MAX, asset)} gross"
        )
    ctx.put(_gross_key(date, asset), total)


def _submit_one(ctx: Context, ticket: tuple[Any, ...], lookups: settlement.Lookups) -> None:
    """Check one ticket, then add it to its cycle. Raises ContractError; the caller's savepoint
    (or the failed transaction) discards a partial write."""
    trade_id, buyer, seller, iid, quantity, price, trade_date, tplus = ticket
    ins, cash = _check_ticket(ctx, ticket, lookups)
    assert ins.currency is not None
    day_ms = params.get(ctx, NAME, "day_ms")
    date = ctx.time_ms // day_ms + tplus
    close_at = compute_close_at(date, day_ms, params.get(ctx, NAME, "close_at_bps"))
    cycle = _join_cycle(ctx, date, close_at)
    _add_gross(ctx, date, iid, quantity)
    _add_gross(ctx, date, ins.currency, cash)
    seq = cycle.trades
    item = Item(
        seq,
        ctx.sender,
        trade_id,
        buyer,
        seller,
        iid,
        quantity,
        price,
        cash,
        ins.currency,
        tplus,
        PENDING,
        None,
        None,
    )
    _put_item(ctx, date, item)
    settlement.record_trade(ctx, ctx.sender, trade_id, settlement.IN_CYCLE, trade_date)
    ctx.put(f"trade/{ctx.sender}/{trade_id}", [date, seq])
    ctx.put(_pend_key(buyer, date, seq), 1)
    ctx.put(_pend_key(seller, date, seq), 1)
    ctx.put(_cycle_key(date), list(cycle._replace(trades=seq + 1)))
    ctx.emit(
        "trade_accepted", trade_id=trade_id, date=date, tplus=tplus, buyer=buyer, seller=seller, instrument=iid,
        quantity=quantity, price=price, consideration=cash, close_at_ms=cycle.close_at_ms,
    )  # fmt: skip


# --- netting (pure) ---------------------------------------------------------------------------
def obligations(item: Item) -> tuple[tuple[Position, int], ...]:
    """The four net-position changes a trade makes: securities seller -> buyer, cash back."""
    return (
        ((item.buyer, item.instrument), item.quantity),
        ((item.seller, item.instrument), -item.quantity),
        ((item.buyer, item.currency), -item.consideration),
        ((item.seller, item.currency), item.consideration),
    )


def compute_net(items: list[Item]) -> dict[Position, int]:
    """Net change per (account, asset) if every trade of ``items`` settles."""
    net: dict[Position, int] = {}
    for item in items:
        for position, delta in obligations(item):
            net[position] = net.get(position, 0) + delta
    return net


def _short_code(available: int, net: int, is_cash: bool) -> str | None:
    if available + net < 0:
        return "insufficient_cash" if is_cash else "insufficient_securities"
    if available + net > AMOUNT_MAX:
        return "amount_overflow"
    return None


def plan_netting(
    items: list[Item], failed: dict[int, tuple[str, str | None]], available: Callable[[str, str], int]
) -> dict[Position, int]:
    """The DvP model 3 unwind: net the trades not in ``failed``; while some position is short,
    fail every trade of every short account (adding it to ``failed`` as seq -> (code, account))
    and re-net. Returns the non-zero net positions left, each covered by ``available``.

    Each trade is removed at most once and only touched positions are checked again, so the work
    is linear in the trades plus the positions."""
    live = [i for i in items if i.seq not in failed]
    net = compute_net(live)
    currencies = {i.currency for i in live}
    by_account: dict[str, list[Item]] = {}
    for item in live:
        by_account.setdefault(item.buyer, []).append(item)
        by_account.setdefault(item.seller, []).append(item)
    to_check = sorted(net)
    while to_check:
        short: dict[str, str] = {}
        for account, asset in to_check:
            code = _short_code(available(account, asset), net[(account, asset)], asset in currencies)
            if code is not None and account not in short:
                short[account] = code
        touched: set[Position] = set()
        for account in sorted(short):
            for item in by_account[account]:
                if item.seq in failed:
                    continue
                failed[item.seq] = (short[account], account)
                for position, delta in obligations(item):
                    net[position] -= delta
                    touched.add(position)
        to_check = sorted(touched)
    return {p: n for p, n in sorted(net.items()) if n != 0}


def compute_values(items: list[Item], net: dict[Position, int]) -> list[list[Any]]:
    """``[[asset, gross, net, netting_bps], ...]`` by asset over the settled ``items``."""
    gross: dict[str, int] = {}
    for item in items:
        gross[item.instrument] = gross.get(item.instrument, 0) + item.quantity
        gross[item.currency] = gross.get(item.currency, 0) + item.consideration
    debits: dict[str, int] = {}
    for (_, asset), n in net.items():
        if n < 0:
            debits[asset] = debits.get(asset, 0) - n
    return [
        [a, gross[a], debits.get(a, 0), compute_netting_bps(gross[a], debits.get(a, 0))]
        for a in sorted(gross)
    ]


# --- the close --------------------------------------------------------------------------------
def _still_settleable(ctx: Context, item: Item, instruments: dict[str, Any]) -> tuple[str, str | None] | None:
    """Why a trade can no longer settle (rule 1 of the unwind), or None."""
    if item.instrument not in instruments:
        instruments[item.instrument] = get_instrument(ctx, item.instrument)
    ins = instruments[item.instrument]
    if ins is None or ins.status != ACTIVE:
        return ("instrument_halted", None)
    for account in (item.buyer, item.seller):
        record = accounts.get_account(ctx, account)
        if record is None:
            return ("unknown_account", account)
        if record.status != accounts.ACTIVE:
            return (f"account_{record.status}", account)
    return None


def plan_close(
    ctx: Context, items: list[Item]
) -> tuple[dict[Position, int], dict[int, tuple[str, str | None]]]:
    """(net positions to apply, failed trades seq -> (code, account)) at current balances."""
    failed: dict[int, tuple[str, str | None]] = {}
    instruments: dict[str, Any] = {}
    for item in items:
        why = _still_settleable(ctx, item, instruments)
        if why is not None:
            failed[item.seq] = why
    cache: dict[Position, int] = {}

    def available(account: str, asset: str) -> int:
        if (account, asset) not in cache:
            cache[(account, asset)] = accounts.balance(ctx, account, asset)[0]
        return cache[(account, asset)]

    return plan_netting(items, failed, available), failed


def apply_net(ctx: Context, net: dict[Position, int]) -> None:
    """Move the net positions: debits first, then credits. Every debit is covered (the plan
    checked it against the same balances), and each asset's positions sum to zero."""
    totals: dict[str, int] = {}
    for (_, asset), n in net.items():
        totals[asset] = totals.get(asset, 0) + n
    invariant(
        all(t == 0 for t in totals.values()), f"netted positions do not sum to zero: {sorted(totals.items())}"
    )
    for (account, asset), n in sorted(net.items()):
        if n < 0:
            accounts.debit(ctx, account, asset, -n, "insufficient_cash")
    for (account, asset), n in sorted(net.items()):
        if n > 0:
            accounts.credit(ctx, account, asset, n)


def close_cycle(ctx: Context, date: int) -> None:
    """Net, settle and report cycle ``date`` (a no-op unless it is open)."""
    cycle = get_cycle(ctx, date)
    if cycle is None or cycle.status != OPEN:
        return
    items = get_items(ctx, date)
    net, failed = plan_close(ctx, items)
    apply_net(ctx, net)
    settled_items = [i for i in items if i.seq not in failed]
    for item in items:
        why = failed.get(item.seq)
        status, code, account = (SETTLED, None, None) if why is None else (FAILED, why[0], why[1])
        _put_item(ctx, date, item._replace(status=status, code=code, short_account=account))
        ctx.delete(_pend_key(item.buyer, date, item.seq))
        ctx.delete(_pend_key(item.seller, date, item.seq))
        if why is not None:
            ctx.emit(
                "trade_failed",
                date=date,
                exchange=item.exchange,
                trade_id=item.trade_id,
                code=why[0],
                account=why[1],
            )
    for key, _ in list(ctx.iterate(f"gross/{_date(date)}/")):
        ctx.delete(key)
    values = compute_values(settled_items, net)
    ctx.delete("open/" + _date(date))
    ctx.put(_cycle_key(date), list(cycle._replace(
        status=CLOSED, settled=len(settled_items), failed=len(failed), closed_height=ctx.height, values=values,
    )))  # fmt: skip
    ctx.emit(
        "cycle_closed", date=date, trades=len(items), settled=len(settled_items), failed=len(failed),
        assets=[v[0] for v in values], gross=[v[1] for v in values], net=[v[2] for v in values],
        netting_bps=[v[3] for v in values],
    )  # fmt: skip


# --- views' helpers ---------------------------------------------------------------------------
def _int_query(
    query: dict[str, str], name: str, default: int | None = None, low: int = 0, high: int = 2**62
) -> int:
    text = query.get(name)
    if text is None or text == "":
        if default is None:
            raise ContractError("bad_query", f"{name} is required")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ContractError("bad_query", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ContractError("bad_query", f"{name} must be {low}..{high}")
    return value


def _values_doc(values: list[list[Any]]) -> list[dict[str, Any]]:
    return [{"asset": a, "gross": g, "net": n, "netting_bps": r} for a, g, n, r in values]


def _item_doc(date: int, item: Item) -> dict[str, Any]:
    return {
        "date": date, "seq": item.seq, "exchange": item.exchange, "trade_id": item.trade_id, "buyer": item.buyer,
        "seller": item.seller, "instrument": item.instrument, "quantity": item.quantity, "price": item.price,
        "consideration": item.consideration, "currency": item.currency, "tplus": item.tplus,
        "status": item.status, "code": item.code, "short_account": item.short_account,
    }  # fmt: skip


def _cycle_doc(date: int, cycle: CycleRecord) -> dict[str, Any]:
    return {
        "date": date, "status": cycle.status, "close_at_ms": cycle.close_at_ms, "trades": cycle.trades,
        "settled": cycle.settled, "failed": cycle.failed, "opened_height": cycle.opened_height,
        "closed_height": cycle.closed_height, "values": _values_doc(cycle.values),
    }  # fmt: skip


class SettlementCycles(Contract):
    name = NAME
    PARAMS = {
        "day_ms": Param(86_400_000, 1_000, 7 * 86_400_000, "length of a business day in block time (ms)"),
        "close_at_bps": Param(7_500, 1, BPS, "when in its settlement day a cycle closes, in bps of the day"),
        "tplus_max": Param(5, 0, TPLUS_LIMIT, "largest N of a T+N trade"),
        "cycle_trades_max": Param(
            1_000, 1, CYCLE_TRADES_LIMIT, "trades one cycle holds (its close is one task)"
        ),
    }

    @method(*TICKET.fields)
    def submit(self, ctx: Context, *ticket: Any) -> None:
        """An exchange reports one T+N trade; the transaction fails if the trade is refused."""
        require_role(ctx, "exchange")
        _submit_one(ctx, ticket, settlement.Lookups())

    @method(("trades", ListOf(TICKET, max_items=BATCH_TRADES_MAX, min_items=1)))
    def submit_batch(self, ctx: Context, trades: tuple[tuple[Any, ...], ...]) -> None:
        """An exchange reports many T+N trades; each is accepted or refused on its own."""
        require_role(ctx, "exchange")
        accepted = 0
        lookups = settlement.Lookups()
        for ticket in trades:
            mark, events = ctx.savepoint(), ctx.event_count
            try:
                _submit_one(ctx, ticket, lookups)
            except ContractError as exc:
                ctx.rollback_to(mark, events)
                ctx.emit("trade_refused", trade_id=ticket[0], code=exc.code, message=exc.message)
                continue
            accepted += 1
        ctx.emit("batch_submitted", trades=len(trades), accepted=accepted, refused=len(trades) - accepted)

    @task
    def close(self, ctx: Context, payload: Any) -> None:
        close_cycle(ctx, int(payload))

    # --- views --------------------------------------------------------------------------------
    @view
    def cycle(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?date=D``: the cycle's report; an open cycle also shows its projected close at
        current balances (``projected``: values, and the trades that would fail)."""
        date = _int_query(query, "date")
        cycle = get_cycle(ctx, date)
        if cycle is None:
            raise ContractError("not_found", f"no cycle {date}")
        doc = _cycle_doc(date, cycle)
        if cycle.status == OPEN:
            items = get_items(ctx, date)
            net, failed = plan_close(ctx, items)
            doc["projected"] = {
                "values": _values_doc(compute_values([i for i in items if i.seq not in failed], net)),
                "failed": [
                    {"trade_id": items[s].trade_id, "exchange": items[s].exchange, "code": c, "account": a}
                    for s, (c, a) in sorted(failed.items())
                ],
            }
        return doc

    @view
    def cycles(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?[status=open|all][&after=D][&limit=N]``: cycles by date, with the calendar now."""
        status = query.get("status", OPEN)
        if status not in (OPEN, "all"):
            raise ContractError("bad_query", "status must be open or all")
        after = _int_query(query, "after", -1, -1)
        limit = _int_query(query, "limit", VIEW_ROWS_DEFAULT, 1, VIEW_ROWS_MAX)
        prefix = "open/" if status == OPEN else "cycle/"
        start = "" if after < 0 else _date(after) + "\x00"
        rows = []
        for key, _ in ctx.iterate(prefix, start):
            date = int(key[len(prefix) :])
            cycle = get_cycle(ctx, date)
            assert cycle is not None
            rows.append(_cycle_doc(date, cycle))
            if len(rows) >= limit:
                break
        day_ms = params.get(ctx, NAME, "day_ms")
        close_at_bps = params.get(ctx, NAME, "close_at_bps")
        today = ctx.time_ms // day_ms
        return {
            "time_ms": ctx.time_ms, "today": today, "day_ms": day_ms, "close_at_bps": close_at_bps,
            "today_close_at_ms": compute_close_at(today, day_ms, close_at_bps),
            "tplus_max": params.get(ctx, NAME, "tplus_max"),
            "cycle_trades_max": params.get(ctx, NAME, "cycle_trades_max"),
            "cycles": rows, "next": rows[-1]["date"] if len(rows) >= limit else None,
        }  # fmt: skip

    @view
    def trades(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?date=D[&status=pending|settled|failed][&after=SEQ][&limit=N]``: a cycle's trades."""
        date = _int_query(query, "date")
        status = query.get("status")
        if status not in (None, PENDING, SETTLED, FAILED):
            raise ContractError("bad_query", "status must be pending, settled or failed")
        after = _int_query(query, "after", -1, -1)
        limit = _int_query(query, "limit", VIEW_ROWS_DEFAULT, 1, VIEW_ROWS_MAX)
        if get_cycle(ctx, date) is None:
            raise ContractError("not_found", f"no cycle {date}")
        start = "" if after < 0 else f"{after:06d}\x00"
        rows, last = [], None
        for key, value in ctx.iterate(f"item/{_date(date)}/", start):
            item = Item(int(key.rsplit("/", 1)[1]), *value)
            last = item.seq
            if status is None or item.status == status:
                rows.append(_item_doc(date, item))
            if len(rows) >= limit:
                break
        return {"date": date, "trades": rows, "next": last if len(rows) >= limit else None}

    @view
    def pending(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?account=A[&after=KEY][&limit=N]``: the account's trades in open cycles and its net
        obligation per (date, asset) over the trades listed (all of them unless ``next``)."""
        account = required_query(query, "account")
        if accounts.get_account(ctx, account) is None:
            raise ContractError("unknown_account", f"no account {account!r}")
        after = query.get("after", "")
        limit = _int_query(query, "limit", VIEW_ROWS_DEFAULT, 1, VIEW_ROWS_MAX)
        rows: list[dict[str, Any]] = []
        net: dict[tuple[int, str], int] = {}
        last = None
        for key, _ in ctx.iterate(f"pend/{account}/", after + "\x00" if after else ""):
            date_text, seq_text = key.rsplit("/", 2)[1:]
            date, seq = int(date_text), int(seq_text)
            item = Item(seq, *ctx.get(_item_key(date, seq)))
            rows.append(_item_doc(date, item) | {"side": "buy" if item.buyer == account else "sell"})
            for (acct, asset), delta in obligations(item):
                if acct == account:
                    net[(date, asset)] = net.get((date, asset), 0) + delta
            last = f"{date_text}/{seq_text}"
            if len(rows) >= limit:
                break
        return {
            "account": account, "trades": rows,
            "net": [{"date": d, "asset": a, "net": n} for (d, a), n in sorted(net.items())],
            "next": last if len(rows) >= limit else None,
        }  # fmt: skip

    @view
    def trade(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?exchange=X&trade_id=T``: where a T+N trade is and how it ended."""
        exchange, trade_id = required_query(query, "exchange"), required_query(query, "trade_id")
        found = ctx.get(f"trade/{exchange}/{trade_id}")
        if found is None:
            raise ContractError("not_found", f"no cycle trade {trade_id!r} of {exchange!r}")
        date, seq = found
        return _item_doc(date, Item(seq, *ctx.get(_item_key(date, seq))))
