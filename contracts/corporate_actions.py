"""Corporate actions: cash dividends and stock splits, paid or applied to the holders of record.

An instrument's registered issuer (contracts/disclosure.py, ``issuer_of``) announces an action
with a *record height* ``R`` in the future. At the end of block ``R`` a task takes the record:
the holders of the instrument then (their available + locked quantity) are entitled. The task
pages through the holder index (accounts.holders) ``page_holders`` at a time, writes one
entitlement per holder, then pays or applies them, page by page. When the holders fit in one
page, the record and the payment happen in the same task, atomically, and nothing is halted.
When they do not, the instrument is halted (instruments.set_status, reason
``corporate_action``) from the first page until the last entitlement is paid, so that no trade
moves a position between pages (settlement and new escrows fail ``instrument_halted``
meanwhile); it is resumed at the end only if this contract halted it.

Dividend: ``amount`` minor units of the instrument's currency per *whole* unit of the
instrument. Each holder of record gets ``floor(quantity * amount / 10**decimals)``. Accounts
owned by the issuer itself (treasury shares) are recorded but get nothing. At announcement the
issuer's payer account locks ``floor(supply * amount / 10**decimals)`` (custody supply, an upper
bound of what is owed), so payment cannot fail; if the supply has grown by the record the
shortfall is locked then, and if the payer cannot cover it the action fails with nothing paid.
What is not paid (rounding dust, treasury shares, a skipped holder) is returned to the payer:
``paid + returned == funded`` exactly.

Split ``num:den`` (2:1, 3:2, or a reverse split 1:10): each holder's position ``q`` becomes
``floor(q * num / den)``; the change is issued to (custody.issue) or retired from
(custody.retire) the holder's *available* balance, so supply follows the rule and always equals
the sum of balances. Locked quantities (a pending withdrawal or escrow) keep their number: they
are reserved in the units their contract recorded. The fraction left over,
``r = q*num mod den`` (in 1/den of a new minor unit), is paid in cash in lieu at the reference
price ``P`` (per whole pre-split unit): ``floor(r * P / (num * 10**decimals))``, from the payer
account (locked at the record). So value before, ``q*P``, equals value after,
``q'*P*den/num + cash``, within one minor unit of cash per holder (rounded down, to the
issuer's benefit). A holder whose available balance cannot absorb a reverse split (most of it
locked), or whose account has closed, is skipped (``holder_skipped``) and keeps its position.

State::

    corporate_actions/seq                     -> last action id
    corporate_actions/action/<id:016>         -> Action (fields below, as an array)
    corporate_actions/open/<instrument>       -> id of its action not yet finished (one at a time)
    corporate_actions/ent/<id:016>/<account>  -> [quantity, cash, new_quantity, status, code]
    corporate_actions/held/<account>/<id:016> -> 1   (an account's entitlements, for the view)

Entitlement status: ``recorded``, ``paid`` (for a split: applied), ``treasury`` (dividend on the
issuer's own shares: nothing), ``skipped`` (with its code). Action status: ``announced`` -> ``recording`` ->
``paying`` -> ``completed``; or ``cancelled`` (before the record), ``failed`` (at the record:
nothing moved, the lock is returned).

Methods (who may call):
    announce_dividend(instrument, amount, record_height, payer)     the instrument's issuer
    announce_split(instrument, num, den, record_height, reference_price, payer)  its issuer
    cancel(id)                           the issuer that announced it, before the record height
Task: ``take_record(id)`` at the record height, then at each next height until done.
Events: ``corporate_action_announced``, ``corporate_action_cancelled``, ``record_taken``,
``dividend_paid`` and ``split_applied`` (one per page, with the accounts and amounts so that an
auditor can recompute each), ``holder_skipped``, ``corporate_action_completed``,
``corporate_action_failed``; the instruments contract emits ``instrument_halted/resumed``.

Views: ``action?id=N`` (status, totals, dust), ``actions?after=&limit=``,
``entitlements?id=N[&account=A | &after=A&limit=L]``, ``account?account=A`` (its entitlements
across actions).

Failure codes: ``unknown_instrument``, ``instrument_is_cash``, ``not_issuer``,
``bad_record_height``, ``unknown_account``, ``account_suspended``, ``account_closed``,
``not_account_owner``, ``action_pending`` (the instrument has an unfinished action),
``insufficient_cash``, ``amount_overflow``, ``bad_ratio`` (num == den),
``reference_price_required`` (a split with den > 1 needs a price for cash in lieu),
``unknown_action``, ``action_not_cancellable``. At the record (the action fails, nothing
moves): ``insufficient_cash``, ``amount_overflow``.

Parameters: ``page_holders`` (default 200, 1..500) holders recorded or paid per task;
``record_blocks_min`` (1) and ``record_blocks_max`` (1,000,000): how far ahead the record height
lies.

Why one module of more than 500 lines: a contract's code hash (its pin in genesis and in
governance upgrades) covers exactly the file that defines it, so the whole rule set of the
contract is one file that validators pin and auditors read; a helper module split off would
fall outside the pin.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chain.limits import AMOUNT_MAX, PRICE_MAX
from contracts import accounts, custody, params
from contracts.api import Context, Contract, ContractError, method, task, view
from contracts.disclosure import issuer_of
from contracts.instruments import ACTIVE, HALTED, InstrumentRecord, get_instrument, set_status, units_text
from contracts.membership import has_role
from contracts.money import amount_text
from contracts.params import Param
from contracts.schema import Id, Int

NAME = "corporate_actions"
DIVIDEND = "dividend"
SPLIT = "split"
ANNOUNCED, RECORDING, PAYING = "announced", "recording", "paying"
COMPLETED, CANCELLED, FAILED = "completed", "cancelled", "failed"
RECORDED, PAID, TREASURY, SKIPPED = "recorded", "paid", "treasury", "skipped"
HALT_REASON = "corporate_action"
RATIO_TERM_MAX = 1_000  # num and den of a split
VIEW_LIMIT_MAX = 500
HEIGHT_MAX = 2**63 - 1

PARAMS = {
    "page_holders": Param(200, 1, 500, "holders recorded or paid by one task (bounds a block's work)"),
    "record_blocks_min": Param(1, 1, 1_000_000, "least notice, in blocks, between announcement and record"),
    "record_blocks_max": Param(1_000_000, 1, 100_000_000, "furthest record height, in blocks ahead"),
}


class Action(NamedTuple):
    kind: str
    instrument: str
    issuer: str
    payer: str
    currency: str
    decimals: int
    record_height: int
    rate: int  # dividend: cash per whole unit; split: reference price per whole pre-split unit
    num: int
    den: int
    status: str
    cursor: str | None  # the last account handled in the current phase
    halted: bool  # this action halted the instrument (and so resumes it)
    funded: int  # cash locked in the payer account, in all
    locked: int  # of which still locked
    holders: int
    eligible: int  # quantity entitled (dividend: without treasury shares)
    treasury: int  # quantity held by the issuer's own accounts (dividend)
    entitled: int  # cash owed: dividends, or cash in lieu
    paid: int
    returned: int
    issued: int
    retired: int
    skipped: int
    announced_height: int
    done_height: int
    code: str  # why it failed


class Entitlement(NamedTuple):
    quantity: int
    cash: int
    new_quantity: int
    status: str
    code: str


# --- reads ------------------------------------------------------------------------------------
def _id_key(action_id: int) -> str:
    return f"{action_id:016d}"


def get_action(ctx: Context, action_id: int) -> Action | None:
    found = ctx.view(NAME).get("action/" + _id_key(action_id))
    return None if found is None else Action(*found)


def get_entitlement(ctx: Context, action_id: int, account: str) -> Entitlement | None:
    found = ctx.view(NAME).get(f"ent/{_id_key(action_id)}/{account}")
    return None if found is None else Entitlement(*found)


def pending_action(ctx: Context, iid: str) -> int | None:
    """The id of ``iid``'s announced action that has not finished, if any."""
    found = ctx.view(NAME).get("open/" + iid)
    return None if found is None else int(found)


# --- pure arithmetic --------------------------------------------------------------------------
def compute_dividend(quantity: int, amount: int, decimals: int) -> int:
    """Cash for ``quantity`` minor units at ``amount`` per whole unit, rounded down."""
    scale: int = 10**decimals
    return quantity * amount // scale


def compute_split(quantity: int, num: int, den: int, price: int, decimals: int) -> tuple[int, int]:
    """(new quantity, cash in lieu) of a ``num:den`` split of ``quantity``, both rounded down;
    the fraction ``quantity*num mod den`` is valued at ``price`` per whole pre-split unit."""
    new_quantity, fraction = divmod(quantity * num, den)
    return new_quantity, fraction * price // (num * 10**decimals)


# --- checks at announcement -------------------------------------------------------------------
def _require_issuer(ctx: Context, iid: str) -> InstrumentRecord:
    ins = get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    if ins.currency is None:
        raise ContractError("instrument_is_cash", f"{iid} is cash; it has no issuer")
    issuer = issuer_of(ctx, iid)
    if issuer != ctx.sender or not has_role(ctx, ctx.sender, "issuer"):
        raise ContractError("not_issuer", f"{ctx.sender} is not the registered issuer of {iid} ({issuer})")
    if pending_action(ctx, iid) is not None:
        raise ContractError("action_pending", f"{iid} has action {pending_action(ctx, iid)} in progress")
    return ins


def _require_record_height(ctx: Context, record_height: int) -> None:
    low = ctx.height + params.get(ctx, NAME, "record_blocks_min")
    high = ctx.height + params.get(ctx, NAME, "record_blocks_max")
    if not low <= record_height <= high:
        raise ContractError("bad_record_height", f"record height {record_height} must be {low}..{high}")


def _require_payer(ctx: Context, payer: str) -> None:
    record = accounts.require_active(ctx, payer)
    if record.owner != ctx.sender:
        raise ContractError("not_account_owner", f"{ctx.sender} does not own {payer}")


def _announce(ctx: Context, action: Action) -> int:
    """Store ``action``, lock its funding, schedule its record; returns its id."""
    if action.funded:
        accounts.lock(ctx, action.payer, action.currency, action.funded, "insufficient_cash")
    action_id = (ctx.get("seq") or 0) + 1
    ctx.put("seq", action_id)
    ctx.put("action/" + _id_key(action_id), list(action))
    ctx.put("open/" + action.instrument, action_id)
    ctx.schedule("take_record", action_id, at_height=action.record_height)
    ctx.emit(
        "corporate_action_announced", id=action_id, kind=action.kind, instrument=action.instrument,
        issuer=action.issuer, payer=action.payer, record_height=action.record_height, rate=action.rate,
        num=action.num, den=action.den, locked=action.funded,
    )  # fmt: skip
    return action_id


def _new_action(
    ctx: Context,
    kind: str,
    iid: str,
    ins: InstrumentRecord,
    payer: str,
    record_height: int,
    rate: int,
    num: int,
    den: int,
    funded: int,
) -> Action:
    assert ins.currency is not None
    return Action(
        kind, iid, ctx.sender, payer, ins.currency, ins.decimals, record_height, rate, num, den,
        ANNOUNCED, None, False, funded, funded, 0, 0, 0, 0, 0, 0, 0, 0, 0, ctx.height, 0, "",
    )  # fmt: skip


# --- the record, page by page -----------------------------------------------------------------
def _save(ctx: Context, action_id: int, action: Action) -> None:
    ctx.put("action/" + _id_key(action_id), list(action))


def _record_page(ctx: Context, action_id: int, action: Action, page: list[tuple[str, int, int]]) -> Action:
    """Write one page of entitlements (nothing moves). Raises ``amount_overflow``."""
    a = action
    for account, available, locked in page:
        quantity = available + locked
        status = RECORDED
        if a.kind == DIVIDEND:
            new_quantity = quantity
            owner = accounts.get_account(ctx, account)
            if owner is not None and owner.owner == a.issuer:
                cash, status = 0, TREASURY
                a = a._replace(treasury=a.treasury + quantity)
            else:
                cash = compute_dividend(quantity, a.rate, a.decimals)
                a = a._replace(eligible=a.eligible + quantity)
        else:
            new_quantity, cash = compute_split(quantity, a.num, a.den, a.rate, a.decimals)
            a = a._replace(eligible=a.eligible + quantity)
        a = a._replace(holders=a.holders + 1, entitled=a.entitled + cash)
        if new_quantity > AMOUNT_MAX:
            raise ContractError(
                "amount_overflow",
                f"{account}'s entitlement exceeds {amount_text(AMOUNT_MAX, a.decimals, a.instrument)}",
            )
        if a.entitled > AMOUNT_MAX:
            raise ContractError(
                "amount_overflow",
                f"the cash entitled in action {action_id} exceeds {units_text(ctx, AMOUNT_MAX, a.currency)}",
            )
        ctx.put(f"ent/{_id_key(action_id)}/{account}", [quantity, cash, new_quantity, status, ""])
        ctx.put(f"held/{account}/{_id_key(action_id)}", 1)
    return a._replace(cursor=page[-1][0] if page else a.cursor)


def _close_record(ctx: Context, action_id: int, a: Action) -> Action:
    """Lock what the record found owed beyond the funding. Raises ``insufficient_cash``."""
    if a.entitled > a.locked:
        top_up = a.entitled - a.locked
        accounts.lock(ctx, a.payer, a.currency, top_up, "insufficient_cash")
        a = a._replace(funded=a.funded + top_up, locked=a.locked + top_up)
    ctx.emit(
        "record_taken", id=action_id, instrument=a.instrument, record_height=a.record_height, holders=a.holders,
        eligible=a.eligible, treasury=a.treasury, entitled=a.entitled, funded=a.funded,
    )  # fmt: skip
    return a._replace(status=PAYING, cursor=None)


def _finish(ctx: Context, action_id: int, a: Action, status: str, code: str = "") -> Action:
    """Return what is still locked to the payer, resume the instrument if this action halted
    it, and close the action."""
    if a.locked:
        accounts.unlock(ctx, a.payer, a.currency, a.locked)
    if a.halted:
        set_status(ctx, a.instrument, ACTIVE, HALT_REASON)
    ctx.delete("open/" + a.instrument)
    return a._replace(
        status=status,
        returned=a.returned + a.locked,
        locked=0,
        halted=False,
        done_height=ctx.height,
        code=code,
    )


# --- payment, page by page --------------------------------------------------------------------
def _pay_one(ctx: Context, a: Action, account: str, e: Entitlement) -> tuple[Action, Entitlement]:
    """Pay or apply one entitlement. Raises ContractError (the caller rolls back this holder)."""
    record = accounts.get_account(ctx, account)
    if record is None or record.status == accounts.CLOSED:
        raise ContractError("account_closed", f"account {account} is closed")
    if a.kind == SPLIT:
        delta = e.new_quantity - e.quantity
        if delta > 0:
            custody.issue(ctx, account, a.instrument, delta)
            a = a._replace(issued=a.issued + delta)
        elif delta < 0:
            custody.retire(ctx, account, a.instrument, -delta, "insufficient_securities")
            a = a._replace(retired=a.retired - delta)
    if e.cash:
        accounts.debit_locked(ctx, a.payer, a.currency, e.cash)
        accounts.credit(ctx, account, a.currency, e.cash)
        a = a._replace(paid=a.paid + e.cash, locked=a.locked - e.cash)
    return a, e._replace(status=PAID)


def _pay_page(ctx: Context, action_id: int, a: Action, limit: int) -> tuple[Action, bool]:
    """Pay up to ``limit`` entitlements after the cursor; returns (action, all paid)."""
    prefix = f"ent/{_id_key(action_id)}/"
    start = "" if a.cursor is None else a.cursor + "\x00"
    paid: list[tuple[str, Entitlement]] = []
    seen, more = 0, False
    for key, value in ctx.iterate(prefix, start):
        if seen == limit:
            more = True
            break
        seen += 1
        account, e = key[len(prefix) :], Entitlement(*value)
        a = a._replace(cursor=account)
        if e.status != RECORDED:
            continue  # treasury shares: nothing to pay
        mark, events = ctx.savepoint(), ctx.event_count
        try:
            a2, e2 = _pay_one(ctx, a, account, e)
        except ContractError as exc:
            ctx.rollback_to(mark, events)
            a = a._replace(skipped=a.skipped + 1)
            ctx.put(prefix + account, list(e._replace(status=SKIPPED, code=exc.code)))
            ctx.emit("holder_skipped", id=action_id, account=account, code=exc.code, message=exc.message)
            continue
        a = a2
        ctx.put(prefix + account, list(e2))
        paid.append((account, e2))
    _emit_page(ctx, action_id, a, paid)
    return a, not more


def _emit_page(ctx: Context, action_id: int, a: Action, paid: list[tuple[str, Entitlement]]) -> None:
    if not paid:
        return
    names = [account for account, _ in paid]
    quantities = [e.quantity for _, e in paid]
    cash = [e.cash for _, e in paid]
    if a.kind == DIVIDEND:
        ctx.emit("dividend_paid", id=action_id, instrument=a.instrument, currency=a.currency, rate=a.rate,
                 accounts=names, quantities=quantities, amounts=cash)  # fmt: skip
    else:
        ctx.emit("split_applied", id=action_id, instrument=a.instrument, num=a.num, den=a.den,
                 accounts=names, quantities=quantities, new_quantities=[e.new_quantity for _, e in paid],
                 cash_in_lieu=cash)  # fmt: skip


def _hold(ctx: Context, a: Action) -> Action:
    """Halt the instrument for an action that spans blocks (again, if someone resumed it)."""
    if set_status(ctx, a.instrument, HALTED, HALT_REASON):
        return a._replace(halted=True)
    return a


def _step(ctx: Context, action_id: int, a: Action) -> Action:
    """One task's work: a page of the record, then (once the record is closed) a page of
    payments. Raises ContractError while recording (the caller fails the action)."""
    page_size = params.get(ctx, NAME, "page_holders")
    if a.status == ANNOUNCED:
        a = a._replace(status=RECORDING, cursor=None)
    if a.status == RECORDING:
        page = accounts.holders(ctx, a.instrument, a.cursor, page_size + 1)
        more = len(page) > page_size
        if more or a.holders:  # the record spans blocks: no trading until it is paid
            a = _hold(ctx, a)
        a = _record_page(ctx, action_id, a, page[:page_size])
        if more:
            return a
        a = _close_record(ctx, action_id, a)
    else:
        a = _hold(ctx, a)
    a, done = _pay_page(ctx, action_id, a, page_size)
    if not done:
        return a
    a = _finish(ctx, action_id, a, COMPLETED)
    ctx.emit(
        "corporate_action_completed", id=action_id, kind=a.kind, instrument=a.instrument, holders=a.holders,
        funded=a.funded, paid=a.paid, returned=a.returned, issued=a.issued, retired=a.retired, skipped=a.skipped,
    )  # fmt: skip
    return a


# --- views' shapes ----------------------------------------------------------------------------
def action_json(action_id: int, a: Action) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": action_id, **a._asdict()}
    if a.kind == DIVIDEND and a.status not in (ANNOUNCED, CANCELLED):
        doc["dust"] = compute_dividend(a.eligible, a.rate, a.decimals) - a.entitled
    return doc


def entitlement_json(action_id: int, account: str, e: Entitlement) -> dict[str, Any]:
    return {"id": action_id, "account": account, **e._asdict()}


def _query_int(
    query: dict[str, str], name: str, default: int | None = None, low: int = 0, high: int = HEIGHT_MAX
) -> int:
    text = query.get(name)
    if text is None and default is not None:
        return default
    try:
        value = int(text or "")
    except ValueError:
        raise ContractError("bad_query", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ContractError("bad_query", f"{name} must be {low}..{high}")
    return value


def _query_action(ctx: Context, query: dict[str, str]) -> tuple[int, Action]:
    action_id = _query_int(query, "id", low=1)
    a = get_action(ctx, action_id)
    if a is None:
        raise ContractError("unknown_action", f"no corporate action {action_id}")
    return action_id, a


class CorporateActions(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(
        ("instrument", Id()),
        ("amount", Int(1, PRICE_MAX)),
        ("record_height", Int(1, HEIGHT_MAX)),
        ("payer", Id()),
    )
    def announce_dividend(self, ctx: Context, iid: str, amount: int, record_height: int, payer: str) -> None:
        """The issuer announces ``amount`` (minor units of cash per whole unit) to the holders
        of record at ``record_height``; the payer account locks the bound on the supply."""
        ins = _require_issuer(ctx, iid)
        _require_record_height(ctx, record_height)
        _require_payer(ctx, payer)
        funded = compute_dividend(custody.supply(ctx, iid), amount, ins.decimals)
        if funded > AMOUNT_MAX:
            raise ContractError(
                "amount_overflow",
                f"the dividend on the supply exceeds {units_text(ctx, AMOUNT_MAX, str(ins.currency))}",
            )
        _announce(ctx, _new_action(ctx, DIVIDEND, iid, ins, payer, record_height, amount, 1, 1, funded))

    @method(
        ("instrument", Id()), ("num", Int(1, RATIO_TERM_MAX)), ("den", Int(1, RATIO_TERM_MAX)),
        ("record_height", Int(1, HEIGHT_MAX)), ("reference_price", Int(0, PRICE_MAX)), ("payer", Id()),
    )  # fmt: skip
    def announce_split(
        self, ctx: Context, iid: str, num: int, den: int, record_height: int, reference_price: int, payer: str
    ) -> None:
        """The issuer announces a ``num:den`` split for the holders of record at
        ``record_height``; fractions are paid in cash at ``reference_price`` by ``payer``."""
        ins = _require_issuer(ctx, iid)
        ctx.require(num != den, "bad_ratio", f"a {num}:{den} split changes nothing")
        ctx.require(
            den == 1 or reference_price > 0,
            "reference_price_required",
            f"a {num}:{den} split leaves fractions: give a reference price",
        )
        _require_record_height(ctx, record_height)
        _require_payer(ctx, payer)
        _announce(ctx, _new_action(ctx, SPLIT, iid, ins, payer, record_height, reference_price, num, den, 0))

    @method(("id", Int(1, HEIGHT_MAX)))
    def cancel(self, ctx: Context, action_id: int) -> None:
        """The issuer withdraws its announcement before the record height; the lock returns."""
        a = get_action(ctx, action_id)
        if a is None:
            raise ContractError("unknown_action", f"no corporate action {action_id}")
        ctx.require(a.issuer == ctx.sender, "not_issuer", f"action {action_id} was announced by {a.issuer}")
        ctx.require(a.status == ANNOUNCED, "action_not_cancellable", f"action {action_id} is {a.status}")
        _save(ctx, action_id, _finish(ctx, action_id, a, CANCELLED))
        ctx.emit("corporate_action_cancelled", id=action_id, instrument=a.instrument, returned=a.locked)

    @task
    def take_record(self, ctx: Context, action_id: int) -> None:
        """At the record height and each block after until done: record, then pay, a page each.
        A failure while recording fails the action with nothing moved and the lock returned."""
        a = get_action(ctx, action_id)
        if a is None or a.status not in (ANNOUNCED, RECORDING, PAYING):
            return  # cancelled
        mark, events = ctx.savepoint(), ctx.event_count
        try:
            after = _step(ctx, action_id, a)
        except ContractError as exc:
            ctx.rollback_to(mark, events)
            after = _finish(ctx, action_id, a, FAILED, exc.code)
            ctx.emit(
                "corporate_action_failed",
                id=action_id,
                instrument=a.instrument,
                code=exc.code,
                message=exc.message,
                returned=after.returned,
            )
        _save(ctx, action_id, after)
        if after.status in (RECORDING, PAYING):
            ctx.schedule("take_record", action_id, at_height=ctx.height + 1)

    @view
    def action(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?id=N``: the action: status, totals (funded, paid, returned, dust), counts."""
        action_id, a = _query_action(ctx, query)
        return action_json(action_id, a)

    @view
    def actions(self, ctx: Context, query: dict[str, str]) -> Any:
        """``[?after=ID][&limit=N]``: actions by id."""
        after = _query_int(query, "after", 0)
        limit = _query_int(query, "limit", 50, 1, VIEW_LIMIT_MAX)
        out = []
        for key, value in ctx.iterate("action/", _id_key(after + 1)):
            out.append(action_json(int(key[len("action/") :]), Action(*value)))
            if len(out) == limit:
                break
        return {"actions": out, "next": out[-1]["id"] if len(out) == limit else None}

    @view
    def entitlements(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?id=N[&account=A | &after=A&limit=L]``: one account's entitlement, or a page."""
        action_id, _ = _query_action(ctx, query)
        if "account" in query:
            e = get_entitlement(ctx, action_id, query["account"])
            if e is None:
                raise ContractError(
                    "not_found", f"{query['account']} has no entitlement in action {action_id}"
                )
            return entitlement_json(action_id, query["account"], e)
        limit = _query_int(query, "limit", 100, 1, VIEW_LIMIT_MAX)
        prefix = f"ent/{_id_key(action_id)}/"
        start = query["after"] + "\x00" if query.get("after") else ""
        out = []
        for key, value in ctx.iterate(prefix, start):
            out.append(entitlement_json(action_id, key[len(prefix) :], Entitlement(*value)))
            if len(out) == limit:
                break
        return {"entitlements": out, "next": out[-1]["account"] if len(out) == limit else None}

    @view
    def account(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?account=A[&after=ID][&limit=N]``: the account's entitlements across actions."""
        account = query.get("account", "")
        if not account:
            raise ContractError("bad_query", "give ?account=ID")
        after = _query_int(query, "after", 0)
        limit = _query_int(query, "limit", 50, 1, VIEW_LIMIT_MAX)
        prefix = f"held/{account}/"
        out = []
        for key, _ in ctx.iterate(prefix, _id_key(after + 1)):
            action_id = int(key[len(prefix) :])
            e = get_entitlement(ctx, action_id, account)
            a = get_action(ctx, action_id)
            assert e is not None and a is not None
            out.append(
                {
                    **entitlement_json(action_id, account, e),
                    "kind": a.kind,
                    "instrument": a.instrument,
                    "action_status": a.status,
                }
            )
            if len(out) == limit:
                break
        return {"account": account, "entitlements": out, "next": out[-1]["id"] if len(out) == limit else None}
