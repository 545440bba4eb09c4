"""Margin, collateral and the default waterfall: the clearing house secures members' open
positions with collateral, calls for more when it runs short, and closes out a member that does
not pay, covering its loss layer by layer.

Positions are exposures in cleared products that settle later (futures-like): the exchange
records them per clearing member and instrument as a signed quantity with an entry price. Their
settlement happens elsewhere (at expiry, in a settlement cycle); this contract only secures them.

Requirement. A position's value is ``|quantity| x oracle price`` (money.consideration, half up).
The initial (IM) and maintenance (MM) requirement of a member is, summed over its positions,
``ceil(value x rate / BPS)`` with the instrument's IM / MM rate (admin-set, else the parameters),
plus the member's net unrealised loss against entry prices (variation is not paid until the
product settles, so the collateral must carry it). Collateral counts at its value after
haircut: cash in the margin currency at face value, an eligible security at
``floor(quantity x price x (BPS - haircut) / (10**decimals x BPS))``; a security without a fresh
price counts 0. The margin currency is the first cash instrument of genesis; positions and
collateral must be in it (a security's settlement currency).

Margin call. ``check(member)`` (anyone) and a periodic sweep compare: collateral < MM opens a
call (``margin_call`` with the top-up to IM and a due height ``margin_call_blocks`` ahead);
collateral >= IM clears it (``margin_call_met``; a post or a new position also clears it). At the
due height a task (or any later ``check``) defaults the member if collateral is still below IM.

Default. Every position closes at the oracle price; the loss is the net variation loss vs entry
(per position ``floor(quantity x (price - entry) / 10**decimals)``, rounded against the
defaulter; gains offset losses). It is covered in order, each layer used only when the previous
one is exhausted, each step a ``waterfall_step`` event and a line of the stored report:

1. ``defaulter_margin``: the defaulter's collateral, cash first then securities in asset order,
   each taken in whole minor units: the fewest units whose haircut value covers what remains
   (the last unit may over-cover by less than one unit's value; that surplus stays with the
   clearing house's default account);
2. ``defaulter_guarantee_fund``: its guarantee-fund contribution;
3. ``insurance_fund``: the insurance fund's cash;
4. ``surviving_members``: the other members' guarantee-fund contributions pro rata, largest
   remainder: ``floor(T x c_i / S)`` each, then one more minor unit to the largest remainders
   (ties by member id) until the shares sum exactly to ``T = min(S, remaining)``.

What is left is ``uncovered`` (the clearing house's own loss). Everything taken moves, as
assets, into the default account ``MARGIN-DEFAULTS``, from which an admin pays the
counterparties of the closed-out positions (``disburse``). No call creates or destroys assets.

State (system accounts owned by ``@margin``: ``MARGIN-COLLATERAL`` pools all members'
collateral, ``MARGIN-GF`` the guarantee fund, ``CCP-INSURANCE`` (the clearing house's insurance fund, shared with bonds, which pays slashed bonds into it), ``MARGIN-DEFAULTS``)::

    margin/currency                  -> the margin currency (set at genesis)
    margin/pos/<member>/<instrument> -> [quantity, entry_price]      (quantity != 0, signed)
    margin/open/<member>             -> number of open positions    (present iff > 0)
    margin/coll/<member>/<asset>     -> amount held in MARGIN-COLLATERAL for the member
    margin/ncoll/<member>            -> number of collateral assets (present iff > 0)
    margin/gf/<member>               -> contribution held in MARGIN-GF (present iff > 0)
    margin/gf_count                  -> number of contributors
    margin/call/<member>             -> [call_id, opened_height, due_height, top_up]
    margin/call_seq, margin/default_seq
    margin/default/<id, 20 digits>   -> the default report (see ``_report``)
    margin/rate/<instrument>         -> [initial_bps, maintenance_bps]
    margin/haircut/<asset>           -> bps (present iff the security is eligible collateral)
    margin/sweep                     -> present while a sweep task is scheduled

The pool accounts hold at least the sum of their sub-ledgers (exactly it unless a custodian
deposits into a pool directly).

Methods (who may call):
    post(account, asset, amount), withdraw(account, asset, amount)      member owning account
    contribute(account, amount)                                          member owning account
    fund_insurance(account, amount)                                      owner of account
    open_position(member, instrument, quantity, price), close_position(member, instrument)
                                                                         exchange
    check(member)                                                        anyone
    set_rates(instrument, initial_bps, maintenance_bps), set_haircut(asset, bps),
    disburse(account, asset, amount)                                     admin
Tasks: ``call_deadline([member, call_id])``; ``sweep(cursor)``: checks up to
``sweep_members_max`` members with positions per block, every ``sweep_blocks`` blocks, while
any member has a position (a failing check is rolled back and reported, not fatal).
Events: ``collateral_posted``, ``collateral_withdrawn``, ``guarantee_fund_contributed``,
``insurance_funded``, ``position_opened``, ``position_closed``, ``margin_rates_set``,
``haircut_set``, ``margin_checked``, ``margin_call``, ``margin_call_met``, ``member_defaulted``,
``position_liquidated``, ``collateral_liquidated``, ``waterfall_step``,
``guarantee_fund_charged``, ``default_funds_paid``, ``margin_check_failed``.

Failure codes: ``not_member``, ``not_exchange``, ``not_admin``, ``not_account_owner``,
``unknown_account``, ``account_suspended``, ``account_closed``, ``no_margin_currency``,
``unknown_member``, ``unknown_instrument``, ``instrument_is_cash``, ``wrong_currency``,
``instrument_halted``, ``bad_quantity``, ``opposite_direction``, ``too_many_positions``,
``amount_overflow``, ``no_price``, ``insufficient_margin``, ``no_position``,
``ineligible_collateral``, ``too_many_collateral_assets``, ``insufficient_balance``,
``insufficient_collateral``, ``margin_call_open``, ``too_many_contributors``, ``bad_rates``,
``cash_haircut_fixed``, ``insufficient_default_funds``.

Amounts beyond ``AMOUNT_MAX`` (a requirement on an absurd price) are reported capped at
``AMOUNT_MAX``; comparisons use the exact values.

Why one module of more than 500 lines: a contract's code hash (its pin in genesis and in
governance upgrades) covers exactly the file that defines it, so the whole rule set of the
contract is one file that validators pin and auditors read; a helper module split off would
fall outside the pin.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chain.errors import invariant
from chain.genesis import Genesis
from chain.limits import AMOUNT_MAX, CALL_EVENTS_MAX, PRICE_MAX, QUANTITY_MAX
from contracts import accounts, oracle
from contracts.api import Context, Contract, ContractError, method, required_query, task, view
from contracts.instruments import ACTIVE as INSTRUMENT_ACTIVE
from contracts.instruments import InstrumentRecord, get_instrument, units_text
from contracts.membership import has_role, require_role
from contracts.money import amount_text, consideration
from contracts.params import BPS, Param, get
from contracts.schema import Id, Int

NAME = "margin"
COLLATERAL_ACCOUNT = "MARGIN-COLLATERAL"
GUARANTEE_FUND_ACCOUNT = "MARGIN-GF"
INSURANCE_ACCOUNT = "CCP-INSURANCE"  # opened at genesis; contracts/bonds.py pays slashed bonds into it
DEFAULTS_ACCOUNT = "MARGIN-DEFAULTS"
LAYERS = ("defaulter_margin", "defaulter_guarantee_fund", "insurance_fund", "surviving_members")
LIST_LIMIT_MAX = 100  # reports one ``defaults`` view returns; balances one ``funds`` view reads
SWEEP_EVENTS_BUDGET = CALL_EVENTS_MAX // 2  # a sweep block starts no new check beyond this
_AMOUNT = Int(1, AMOUNT_MAX)

PARAMS = {
    "initial_margin_bps": Param(
        1_500, 1, BPS, "initial margin on a position's value, unless set per instrument"
    ),
    "maintenance_margin_bps": Param(1_000, 1, BPS, "maintenance margin (capped at the initial rate)"),
    "margin_call_blocks": Param(10, 1, 1_000_000, "blocks a member has to meet a margin call"),
    "sweep_blocks": Param(10, 1, 1_000_000, "blocks between two sweeps of the members with positions"),
    "sweep_members_max": Param(50, 1, 500, "members one sweep block checks"),
    "positions_max": Param(32, 1, 256, "open positions per member (bounds a check's work)"),
    "collateral_assets_max": Param(8, 1, 64, "collateral assets per member (bounds a check's work)"),
    "contributors_max": Param(64, 1, 256, "guarantee-fund contributors (bounds the pro-rata split)"),
}


class Position(NamedTuple):
    instrument: str
    quantity: int
    entry_price: int


class Assessment(NamedTuple):
    initial: int  # IM requirement, including the unrealised loss
    maintenance: int
    collateral: int  # value after haircuts
    unrealised_loss: int


# --- small pure helpers -------------------------------------------------------------------------
def cap(amount: int) -> int:
    """``amount`` bounded to +-AMOUNT_MAX, for events and stored reports."""
    return max(-AMOUNT_MAX, min(AMOUNT_MAX, amount))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def compute_pnl(quantity: int, entry_price: int, price: int, decimals: int) -> int:
    """Variation of a position at ``price`` in minor units of cash, rounded down (against the
    member: a loss rounds up, a gain down)."""
    scale: int = 10**decimals
    return (quantity * (price - entry_price)) // scale


def compute_haircut_value(amount: int, price: int, haircut_bps: int, decimals: int) -> int:
    """Value of ``amount`` minor units of a security after the haircut, rounded down."""
    scale: int = 10**decimals
    return (amount * price * (BPS - haircut_bps)) // (scale * BPS)


def compute_units_to_cover(target: int, price: int, haircut_bps: int, decimals: int) -> int:
    """The fewest minor units whose haircut value is at least ``target`` (price and the kept
    share are positive)."""
    return ceil_div(target * 10**decimals * BPS, price * (BPS - haircut_bps))


def compute_pro_rata(total: int, shares: list[tuple[str, int]]) -> list[int]:
    """Split ``total`` over ``shares`` ((member, weight), weights summing to >= total, > 0) by
    largest remainder: floors, then one unit each to the largest remainders, ties by member."""
    weight = sum(w for _, w in shares)
    assert 0 <= total <= weight
    out = [total * w // weight for _, w in shares]
    left = total - sum(out)
    order = sorted(range(len(shares)), key=lambda i: (-(total * shares[i][1] % weight), shares[i][0]))
    for i in order[:left]:
        out[i] += 1
    return out


def compute_entry_price(old: Position, quantity: int, price: int) -> int:
    """Average entry price after adding ``quantity`` (same direction) at ``price``, half up."""
    total = abs(old.quantity) + abs(quantity)
    return (2 * (abs(old.quantity) * old.entry_price + abs(quantity) * price) + total) // (2 * total)


# --- reads --------------------------------------------------------------------------------------
def margin_currency(ctx: Context) -> str:
    currency = ctx.view(NAME).get("currency")
    if currency is None:
        raise ContractError("no_margin_currency", "genesis lists no cash instrument to margin in")
    return str(currency)


def _cash_text(ctx: Context, units: int) -> str:
    """``units`` of the margin currency for a failure message ("1,250.00 USD")."""
    currency = ctx.view(NAME).get("currency")
    return str(units) if currency is None else units_text(ctx, units, str(currency))


def positions(ctx: Context, member: str) -> list[Position]:
    """The member's open positions, by instrument (``positions_max`` bounds how many open)."""
    prefix = f"pos/{member}/"
    limit = PARAMS["positions_max"].max  # the bound agreed, not today's value: read them all
    out = []
    for key, (quantity, entry) in ctx.view(NAME).iterate(prefix):
        out.append(Position(key[len(prefix) :], quantity, entry))
        if len(out) >= limit:
            break
    return out


def collateral(ctx: Context, member: str) -> dict[str, int]:
    """Asset -> amount the member holds as collateral (``collateral_assets_max`` bounds how
    many assets)."""
    prefix = f"coll/{member}/"
    limit = PARAMS["collateral_assets_max"].max
    out: dict[str, int] = {}
    for key, amount in ctx.view(NAME).iterate(prefix):
        out[key[len(prefix) :]] = amount
        if len(out) >= limit:
            break
    return out


def contribution(ctx: Context, member: str) -> int:
    return int(ctx.view(NAME).get("gf/" + member) or 0)


def open_call(ctx: Context, member: str) -> list[Any] | None:
    """[call_id, opened_height, due_height, top_up] of the member's open margin call, or None."""
    found = ctx.view(NAME).get("call/" + member)
    return None if found is None else list(found)


def margin_rates(ctx: Context, iid: str) -> tuple[int, int]:
    """(initial_bps, maintenance_bps) of an instrument; maintenance never above initial."""
    found = ctx.view(NAME).get("rate/" + iid)
    if found is None:
        found = (get(ctx, NAME, "initial_margin_bps"), get(ctx, NAME, "maintenance_margin_bps"))
    return int(found[0]), min(int(found[0]), int(found[1]))


def haircut(ctx: Context, asset: str) -> int | None:
    """The asset's haircut in bps: 0 for the margin currency, None if it is not eligible."""
    if asset == ctx.view(NAME).get("currency"):
        return 0
    found = ctx.view(NAME).get("haircut/" + asset)
    return None if found is None else int(found)


def collateral_value(ctx: Context, asset: str, amount: int) -> int:
    """Value of ``amount`` of collateral ``asset`` after its haircut (0 without a price)."""
    if asset == ctx.view(NAME).get("currency"):
        return amount
    cut = haircut(ctx, asset)
    if cut is None:
        return 0
    price = oracle.current_price(ctx, asset)
    ins = get_instrument(ctx, asset)
    if price is None or ins is None:
        return 0
    return compute_haircut_value(amount, price, cut, ins.decimals)


def _instrument(ctx: Context, iid: str) -> InstrumentRecord:
    ins = get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    return ins


def assess(ctx: Context, held: list[Position], posted: dict[str, int]) -> Assessment:
    """Requirements of ``held`` and the value of ``posted``. Fails ``no_price`` if a position's
    instrument has no fresh price."""
    initial = maintenance = pnl = 0
    for pos in held:
        price = oracle.require_price(ctx, pos.instrument)
        decimals = _instrument(ctx, pos.instrument).decimals
        value = consideration(abs(pos.quantity), price, decimals)
        im_bps, mm_bps = margin_rates(ctx, pos.instrument)
        initial += ceil_div(value * im_bps, BPS)
        maintenance += ceil_div(value * mm_bps, BPS)
        pnl += compute_pnl(pos.quantity, pos.entry_price, price, decimals)
    loss = max(0, -pnl)
    value = sum(collateral_value(ctx, asset, amount) for asset, amount in sorted(posted.items()))
    return Assessment(initial + loss, maintenance + loss, value, loss)


def assess_member(ctx: Context, member: str) -> Assessment:
    return assess(ctx, positions(ctx, member), collateral(ctx, member))


# --- writes -------------------------------------------------------------------------------------
def _owned_account(ctx: Context, account: str) -> None:
    record = accounts.require_active(ctx, account)
    if record.owner != ctx.sender:
        raise ContractError("not_account_owner", f"{ctx.sender} does not own {account}")


def _add_collateral(ctx: Context, member: str, asset: str, delta: int) -> None:
    """Change the member's collateral sub-ledger (the pool account is moved by the caller)."""
    key = f"coll/{member}/{asset}"
    old = int(ctx.get(key) or 0)
    new = old + delta
    invariant(new >= 0, f"negative collateral {member}/{asset}")
    count = int(ctx.get("ncoll/" + member) or 0)
    if old == 0 and new > 0:
        if count >= get(ctx, NAME, "collateral_assets_max"):
            raise ContractError("too_many_collateral_assets", f"{member} already posts {count} assets")
        count += 1
    elif old > 0 and new == 0:
        count -= 1
    _put_or_delete(ctx, key, new)
    _put_or_delete(ctx, "ncoll/" + member, count)


def _put_or_delete(ctx: Context, key: str, value: int) -> None:
    if value:
        ctx.put(key, value)
    else:
        ctx.delete(key)


def _set_contribution(ctx: Context, member: str, amount: int) -> None:
    old = contribution(ctx, member)
    count = int(ctx.get("gf_count") or 0)
    if old == 0 and amount > 0:
        if count >= get(ctx, NAME, "contributors_max"):
            raise ContractError("too_many_contributors", f"the guarantee fund has {count} contributors")
        count += 1
    elif old > 0 and amount == 0:
        count -= 1
    _put_or_delete(ctx, "gf/" + member, amount)
    ctx.put("gf_count", count)


def _delete_position(ctx: Context, member: str, iid: str) -> None:
    ctx.delete(f"pos/{member}/{iid}")
    _put_or_delete(ctx, "open/" + member, int(ctx.get("open/" + member) or 0) - 1)


def _ensure_sweep(ctx: Context) -> None:
    if ctx.get("sweep") is None:
        ctx.put("sweep", 1)
        ctx.schedule("sweep", "", at_height=ctx.height + get(ctx, NAME, "sweep_blocks"))


def _clear_call(ctx: Context, member: str, call: list[Any], a: Assessment) -> None:
    ctx.delete("call/" + member)
    ctx.emit(
        "margin_call_met",
        member=member,
        call_id=call[0],
        collateral=cap(a.collateral),
        initial=cap(a.initial),
    )


def _open_call(ctx: Context, member: str, a: Assessment) -> None:
    call_id = int(ctx.get("call_seq") or 0) + 1
    due = ctx.height + get(ctx, NAME, "margin_call_blocks")
    top_up = cap(a.initial - a.collateral)
    ctx.put("call_seq", call_id)
    ctx.put("call/" + member, [call_id, ctx.height, due, top_up])
    ctx.schedule("call_deadline", [member, call_id], at_height=due)
    ctx.emit(
        "margin_call", member=member, call_id=call_id, collateral=cap(a.collateral),
        maintenance=cap(a.maintenance), initial=cap(a.initial), top_up=top_up, due_height=due,
    )  # fmt: skip


def check_member(ctx: Context, member: str) -> str:
    """Compare the member's collateral with its requirements and act: open a call, clear one,
    or default an overdue one. Returns the outcome (ok, call, called, met, defaulted)."""
    a = assess_member(ctx, member)
    call = open_call(ctx, member)
    outcome = "ok"
    if call is None and a.collateral < a.maintenance:
        _open_call(ctx, member, a)
        outcome = "call"
    elif call is not None and a.collateral >= a.initial:
        _clear_call(ctx, member, call, a)
        outcome = "met"
    elif call is not None and ctx.height >= call[2]:
        default_member(ctx, member, call[0])
        outcome = "defaulted"
    elif call is not None:
        outcome = "called"
    ctx.view(NAME).emit(
        "margin_checked", member=member, outcome=outcome, collateral=cap(a.collateral),
        initial=cap(a.initial), maintenance=cap(a.maintenance),
    )  # fmt: skip
    return outcome


# --- the default --------------------------------------------------------------------------------
def _close_out(ctx: Context, member: str, default_id: int) -> tuple[int, list[list[Any]]]:
    """Close every position at the oracle price; (net pnl, report lines). Fails ``no_price``
    before any write."""
    held = positions(ctx, member)
    lines = []
    total = 0
    for pos in held:
        price = oracle.require_price(ctx, pos.instrument)
        pnl = compute_pnl(pos.quantity, pos.entry_price, price, _instrument(ctx, pos.instrument).decimals)
        total += pnl
        lines.append([pos.instrument, pos.quantity, pos.entry_price, price, cap(pnl)])
    for pos, line in zip(held, lines, strict=True):
        _delete_position(ctx, member, pos.instrument)
        ctx.emit(
            "position_liquidated",
            default_id=default_id,
            member=member,
            instrument=pos.instrument,
            quantity=pos.quantity,
            entry_price=pos.entry_price,
            price=line[3],
            pnl=line[4],
        )
    return total, lines


def _take_collateral(
    ctx: Context, member: str, default_id: int, remaining: int
) -> tuple[int, list[list[Any]]]:
    """Layer 1: the defaulter's collateral, cash first then securities by asset id, moved whole
    to the default account. Returns (value credited, [[asset, amount, value]])."""
    currency = margin_currency(ctx)
    posted = collateral(ctx, member)
    order = ([currency] if currency in posted else []) + sorted(a for a in posted if a != currency)
    credited = 0
    taken = []
    for asset in order:
        if remaining - credited <= 0:
            break
        amount, value = _units_for(ctx, asset, posted[asset], remaining - credited, asset == currency)
        if amount == 0 or value == 0:
            continue
        accounts.move(ctx, COLLATERAL_ACCOUNT, DEFAULTS_ACCOUNT, asset, amount, "insufficient_collateral")
        _add_collateral(ctx, member, asset, -amount)
        credit = min(value, remaining - credited)
        credited += credit
        taken.append([asset, amount, credit])
        ctx.emit(
            "collateral_liquidated",
            default_id=default_id,
            member=member,
            asset=asset,
            amount=amount,
            value=credit,
        )
    return credited, taken


def _units_for(ctx: Context, asset: str, held: int, target: int, is_cash: bool) -> tuple[int, int]:
    """(units to take, their haircut value) to cover ``target`` from ``held`` units of asset."""
    if is_cash:
        amount = min(held, target)
        return amount, amount
    cut = haircut(ctx, asset)
    price = oracle.current_price(ctx, asset)
    ins = get_instrument(ctx, asset)
    if cut is None or price is None or ins is None:
        return 0, 0  # worth nothing to the waterfall: it stays with the member
    amount = min(held, compute_units_to_cover(target, price, cut, ins.decimals))
    return amount, compute_haircut_value(amount, price, cut, ins.decimals)


def _charge_survivors(
    ctx: Context, defaulter: str, default_id: int, remaining: int
) -> tuple[int, list[list[Any]]]:
    """Layer 4: the surviving contributors' guarantee fund, pro rata (largest remainder)."""
    limit = PARAMS["contributors_max"].max
    shares: list[tuple[str, int]] = []
    for key, amount in ctx.iterate("gf/"):
        if key[len("gf/") :] != defaulter:
            shares.append((key[len("gf/") :], int(amount)))
        if len(shares) >= limit:
            break
    pool = sum(w for _, w in shares)
    total = min(pool, remaining)
    if total == 0:
        return 0, []
    charges = []
    for (member, held), share in zip(shares, compute_pro_rata(total, shares), strict=True):
        if share == 0:
            continue
        _set_contribution(ctx, member, held - share)
        charges.append([member, share])
        ctx.emit(
            "guarantee_fund_charged",
            default_id=default_id,
            member=member,
            amount=share,
            contribution=held - share,
        )
    accounts.move(
        ctx,
        GUARANTEE_FUND_ACCOUNT,
        DEFAULTS_ACCOUNT,
        margin_currency(ctx),
        total,
        "insufficient_guarantee_fund",
    )
    return total, charges


def default_member(ctx: Context, member: str, call_id: int) -> int:
    """Close out ``member`` and run the waterfall; returns the default id. Fails ``no_price``
    (nothing written) if a position has no fresh price."""
    view_ = ctx.view(NAME)
    currency = margin_currency(view_)
    default_id = int(view_.get("default_seq") or 0) + 1
    view_.put("default_seq", default_id)
    pnl, closed = _close_out(view_, member, default_id)
    loss = min(max(0, -pnl), AMOUNT_MAX)
    accounts.open_system(view_, DEFAULTS_ACCOUNT)
    layers = []
    remaining = loss

    def step(layer: str, amount: int) -> None:
        nonlocal remaining
        remaining -= amount
        layers.append([layer, amount])
        view_.emit(
            "waterfall_step",
            default_id=default_id,
            member=member,
            layer=layer,
            amount=amount,
            remaining=remaining,
        )

    covered, taken = _take_collateral(view_, member, default_id, remaining)
    step(LAYERS[0], covered)
    own = min(contribution(view_, member), remaining)
    if own:
        accounts.move(
            view_, GUARANTEE_FUND_ACCOUNT, DEFAULTS_ACCOUNT, currency, own, "insufficient_guarantee_fund"
        )
        _set_contribution(view_, member, contribution(view_, member) - own)
    step(LAYERS[1], own)
    insurance = min(accounts.balance(view_, INSURANCE_ACCOUNT, currency)[0], remaining)
    if insurance:
        accounts.move(
            view_, INSURANCE_ACCOUNT, DEFAULTS_ACCOUNT, currency, insurance, "insufficient_insurance"
        )
    step(LAYERS[2], insurance)
    mutual, charges = _charge_survivors(view_, member, default_id, remaining)
    step(LAYERS[3], mutual)
    view_.delete("call/" + member)
    view_.put(
        f"default/{default_id:020d}",
        [member, ctx.height, call_id, loss, cap(pnl), closed, taken, layers, charges, remaining],
    )
    view_.emit(
        "member_defaulted",
        default_id=default_id,
        member=member,
        call_id=call_id,
        loss=loss,
        uncovered=remaining,
    )
    return default_id


def _report(default_id: int, record: list[Any]) -> dict[str, Any]:
    member, height, call_id, loss, pnl, closed, taken, layers, charges, uncovered = record
    return {
        "id": default_id, "member": member, "height": height, "call_id": call_id, "loss": loss, "pnl": pnl,
        "positions": [dict(zip(("instrument", "quantity", "entry_price", "price", "pnl"), p, strict=True)) for p in closed],
        "collateral_taken": [dict(zip(("asset", "amount", "value"), t, strict=True)) for t in taken],
        "waterfall": [{"layer": layer, "amount": amount} for layer, amount in layers],
        "guarantee_fund_charges": [{"member": m, "amount": a} for m, a in charges],
        "uncovered": uncovered,
    }  # fmt: skip


def _query_int(query: dict[str, str], name: str, default: int | None = None) -> int:
    text = query.get(name)
    if text is None:
        if default is None:
            raise ContractError("bad_query", f"{name} is required")
        return default
    try:
        return int(text)
    except ValueError:
        raise ContractError("bad_query", f"{name} must be an integer") from None


class Margin(Contract):
    name = NAME
    PARAMS = PARAMS

    def init_genesis(self, ctx: Context, genesis: Genesis) -> None:
        cash = [ins.id for ins in genesis.instruments if ins.kind == "cash"]
        if cash:
            ctx.put("currency", cash[0])
        accounts.open_system(ctx, INSURANCE_ACCOUNT)

    # --- collateral and funds ---------------------------------------------------------------
    @method(("account", Id()), ("asset", Id()), ("amount", _AMOUNT))
    def post(self, ctx: Context, account: str, asset: str, amount: int) -> None:
        """A member posts collateral from an account it owns; an open call it now meets clears."""
        require_role(ctx, "member")
        _owned_account(ctx, account)
        currency = margin_currency(ctx)
        ins = _instrument(ctx, asset)
        eligible = asset == currency or (ins.currency == currency and haircut(ctx, asset) is not None)
        ctx.require(eligible, "ineligible_collateral", f"{asset} is not eligible collateral")
        accounts.open_system(ctx, COLLATERAL_ACCOUNT)
        accounts.move(ctx, account, COLLATERAL_ACCOUNT, asset, amount, "insufficient_balance")
        _add_collateral(ctx, ctx.sender, asset, amount)
        ctx.emit(
            "collateral_posted",
            member=ctx.sender,
            account=account,
            asset=asset,
            amount=amount,
            collateral=int(ctx.get(f"coll/{ctx.sender}/{asset}")),
        )
        call = open_call(ctx, ctx.sender)
        if call is not None:
            try:
                a = assess_member(ctx, ctx.sender)  # reads only: safe to abandon on no_price
            except ContractError:
                return
            if a.collateral >= a.initial:
                _clear_call(ctx, ctx.sender, call, a)

    @method(("account", Id()), ("asset", Id()), ("amount", _AMOUNT))
    def withdraw(self, ctx: Context, account: str, asset: str, amount: int) -> None:
        """A member takes back collateral above its initial requirement, into an account it owns."""
        require_role(ctx, "member")
        _owned_account(ctx, account)
        call = open_call(ctx, ctx.sender)
        ctx.require(call is None, "margin_call_open", f"{ctx.sender} has margin call {call and call[0]} open")
        posted = collateral(ctx, ctx.sender)
        held = posted.get(asset, 0)
        if held < amount:
            raise ContractError(
                "insufficient_collateral",
                f"{ctx.sender} posts {units_text(ctx, held, asset)}, withdraws {units_text(ctx, amount, asset)}",
            )
        posted[asset] = held - amount
        a = assess(ctx, positions(ctx, ctx.sender), posted)
        if a.collateral < a.initial:
            raise ContractError(
                "insufficient_margin",
                f"collateral would be {_cash_text(ctx, a.collateral)}, "
                f"initial margin is {_cash_text(ctx, a.initial)}",
            )
        accounts.move(ctx, COLLATERAL_ACCOUNT, account, asset, amount, "insufficient_collateral")
        _add_collateral(ctx, ctx.sender, asset, -amount)
        ctx.emit(
            "collateral_withdrawn",
            member=ctx.sender,
            account=account,
            asset=asset,
            amount=amount,
            collateral=held - amount,
        )

    @method(("account", Id()), ("amount", _AMOUNT))
    def contribute(self, ctx: Context, account: str, amount: int) -> None:
        """A member pays cash into the guarantee fund (it leaves only through the waterfall)."""
        require_role(ctx, "member")
        _owned_account(ctx, account)
        currency = margin_currency(ctx)
        total = contribution(ctx, ctx.sender) + amount
        _set_contribution(ctx, ctx.sender, total)
        accounts.open_system(ctx, GUARANTEE_FUND_ACCOUNT)
        accounts.move(ctx, account, GUARANTEE_FUND_ACCOUNT, currency, amount, "insufficient_balance")
        ctx.emit(
            "guarantee_fund_contributed",
            member=ctx.sender,
            account=account,
            amount=amount,
            contribution=total,
        )

    @method(("account", Id()), ("amount", _AMOUNT))
    def fund_insurance(self, ctx: Context, account: str, amount: int) -> None:
        """The owner of an account pays cash into the insurance fund."""
        _owned_account(ctx, account)
        currency = margin_currency(ctx)
        accounts.open_system(ctx, INSURANCE_ACCOUNT)
        accounts.move(ctx, account, INSURANCE_ACCOUNT, currency, amount, "insufficient_balance")
        ctx.emit(
            "insurance_funded",
            account=account,
            amount=amount,
            balance=accounts.balance(ctx, INSURANCE_ACCOUNT, currency)[0],
        )

    # --- positions ----------------------------------------------------------------------------
    @method(
        ("member", Id()),
        ("instrument", Id()),
        ("quantity", Int(-QUANTITY_MAX, QUANTITY_MAX)),
        ("price", Int(1, PRICE_MAX)),
    )
    def open_position(self, ctx: Context, member: str, iid: str, quantity: int, price: int) -> None:
        """The exchange records a cleared trade: ``quantity`` (signed; + long) of ``iid`` at
        ``price`` added to the member's position. The member must then meet initial margin."""
        require_role(ctx, "exchange")
        ctx.require(quantity != 0, "bad_quantity", "quantity must not be zero")
        ctx.require(has_role(ctx, member, "member"), "unknown_member", f"{member} is not a clearing member")
        currency = margin_currency(ctx)
        ins = _instrument(ctx, iid)
        ctx.require(ins.currency is not None, "instrument_is_cash", f"{iid} is cash")
        ctx.require(
            ins.currency == currency,
            "wrong_currency",
            f"{iid} settles in {ins.currency}, margin is in {currency}",
        )
        ctx.require(ins.status == INSTRUMENT_ACTIVE, "instrument_halted", f"{iid} is {ins.status}")
        held = positions(ctx, member)
        old = next((p for p in held if p.instrument == iid), None)
        if old is None:
            ctx.require(
                len(held) < get(ctx, NAME, "positions_max"),
                "too_many_positions",
                f"{member} has {len(held)} positions",
            )
            new = Position(iid, quantity, price)
        else:
            if (old.quantity > 0) != (quantity > 0):
                raise ContractError(
                    "opposite_direction",
                    f"{member} holds {amount_text(old.quantity, ins.decimals, iid)}; close it first",
                )
            new = Position(iid, old.quantity + quantity, compute_entry_price(old, quantity, price))
        if abs(new.quantity) > QUANTITY_MAX:
            raise ContractError(
                "amount_overflow",
                f"position in {iid} would exceed {amount_text(QUANTITY_MAX, ins.decimals, iid)}",
            )
        if consideration(abs(new.quantity), new.entry_price, ins.decimals) > AMOUNT_MAX:
            raise ContractError(
                "amount_overflow", f"position in {iid} is worth more than {_cash_text(ctx, AMOUNT_MAX)}"
            )
        after = [p for p in held if p.instrument != iid] + [new]
        a = assess(ctx, after, collateral(ctx, member))
        if a.collateral < a.initial:
            raise ContractError(
                "insufficient_margin",
                f"{member} has collateral {_cash_text(ctx, a.collateral)}, "
                f"initial margin would be {_cash_text(ctx, a.initial)}",
            )
        ctx.put(f"pos/{member}/{iid}", [new.quantity, new.entry_price])
        if old is None:
            ctx.put("open/" + member, int(ctx.get("open/" + member) or 0) + 1)
        _ensure_sweep(ctx)
        ctx.emit(
            "position_opened",
            member=member,
            instrument=iid,
            quantity=quantity,
            price=price,
            position=new.quantity,
            entry_price=new.entry_price,
        )
        call = open_call(ctx, member)
        if call is not None:
            _clear_call(ctx, member, call, a)

    @method(("member", Id()), ("instrument", Id()))
    def close_position(self, ctx: Context, member: str, iid: str) -> None:
        """The exchange reports a member's position closed (its variation settles with the
        product, outside this contract)."""
        require_role(ctx, "exchange")
        record = ctx.get(f"pos/{member}/{iid}")
        ctx.require(record is not None, "no_position", f"{member} holds no position in {iid}")
        _delete_position(ctx, member, iid)
        ctx.emit("position_closed", member=member, instrument=iid, quantity=record[0], entry_price=record[1])

    # --- checks and tasks ---------------------------------------------------------------------
    @method(("member", Id()))
    def check(self, ctx: Context, member: str) -> None:
        """Anyone asks for a margin check of ``member`` (calls, clears or defaults it)."""
        check_member(ctx, member)

    @task
    def call_deadline(self, ctx: Context, payload: list[Any]) -> None:
        """At a call's due height: default the member if the call is still open and unmet."""
        member, call_id = payload
        call = open_call(ctx, member)
        if call is None or call[0] != call_id:
            return  # met, or already defaulted
        check_member(ctx, member)

    @task
    def sweep(self, ctx: Context, cursor: str) -> None:
        """Check the next page of members with positions; reschedule until none remain."""
        limit = get(ctx, NAME, "sweep_members_max")
        page = []
        for key, _ in ctx.iterate("open/", cursor + "\x00" if cursor else ""):
            page.append(key[len("open/") :])
            if len(page) > limit:
                break
        todo = page[:limit]
        checked = 0
        for member in todo:
            if ctx.event_count >= SWEEP_EVENTS_BUDGET:  # a default emits up to ~600 events
                break
            mark, events = ctx.savepoint(), ctx.event_count
            try:
                check_member(ctx, member)
            except ContractError as exc:
                ctx.rollback_to(mark, events)
                ctx.emit("margin_check_failed", member=member, code=exc.code, message=exc.message[:200])
            checked += 1
        if checked < len(todo) or len(page) > limit:  # out of event budget, or another page
            ctx.schedule("sweep", todo[checked - 1], at_height=ctx.height + 1)
        elif next(iter(ctx.iterate("open/")), None) is not None:
            ctx.schedule("sweep", "", at_height=ctx.height + get(ctx, NAME, "sweep_blocks"))
        else:
            ctx.delete("sweep")

    # --- administration -----------------------------------------------------------------------
    @method(("instrument", Id()), ("initial_bps", Int(1, BPS)), ("maintenance_bps", Int(1, BPS)))
    def set_rates(self, ctx: Context, iid: str, initial_bps: int, maintenance_bps: int) -> None:
        """An admin sets an instrument's initial and maintenance margin rates."""
        require_role(ctx, "admin")
        ins = _instrument(ctx, iid)
        ctx.require(ins.currency is not None, "instrument_is_cash", f"{iid} is cash")
        ctx.require(
            maintenance_bps <= initial_bps,
            "bad_rates",
            f"maintenance {maintenance_bps} exceeds initial {initial_bps}",
        )
        ctx.put("rate/" + iid, [initial_bps, maintenance_bps])
        ctx.emit("margin_rates_set", instrument=iid, initial_bps=initial_bps, maintenance_bps=maintenance_bps)

    @method(("asset", Id()), ("haircut_bps", Int(0, BPS - 1)))
    def set_haircut(self, ctx: Context, asset: str, haircut_bps: int) -> None:
        """An admin makes a security eligible collateral at a haircut (or changes it)."""
        require_role(ctx, "admin")
        currency = margin_currency(ctx)
        ins = _instrument(ctx, asset)
        ctx.require(
            ins.currency is not None,
            "cash_haircut_fixed",
            f"{asset} is cash: the margin currency counts at face value",
        )
        ctx.require(
            ins.currency == currency,
            "wrong_currency",
            f"{asset} settles in {ins.currency}, margin is in {currency}",
        )
        ctx.put("haircut/" + asset, haircut_bps)
        ctx.emit("haircut_set", asset=asset, haircut_bps=haircut_bps)

    @method(("account", Id()), ("asset", Id()), ("amount", _AMOUNT))
    def disburse(self, ctx: Context, account: str, asset: str, amount: int) -> None:
        """An admin pays what defaults collected to the counterparties of the closed-out positions."""
        require_role(ctx, "admin")
        accounts.require_active(ctx, account)
        accounts.move(ctx, DEFAULTS_ACCOUNT, account, asset, amount, "insufficient_default_funds")
        ctx.emit("default_funds_paid", account=account, asset=asset, amount=amount, by=ctx.sender)

    # --- views --------------------------------------------------------------------------------
    @view
    def status(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?member=ID``: positions, collateral, requirements, excess and the open call."""
        member = query.get("member", "")
        if not member:
            raise ContractError("bad_query", "member is required")
        held = positions(ctx, member)
        posted = collateral(ctx, member)
        lines = []
        missing = []
        for pos in held:
            price = oracle.current_price(ctx, pos.instrument)
            im_bps, mm_bps = margin_rates(ctx, pos.instrument)
            if price is None:
                missing.append(pos.instrument)
            lines.append(
                {
                    "instrument": pos.instrument,
                    "quantity": pos.quantity,
                    "entry_price": pos.entry_price,
                    "price": price,
                    "initial_bps": im_bps,
                    "maintenance_bps": mm_bps,
                }
            )
        a = None if missing else assess(ctx, held, posted)
        call = open_call(ctx, member)
        return {
            "member": member, "currency": ctx.get("currency"), "height": ctx.height, "positions": lines,
            "collateral": [{"asset": s, "amount": n, "haircut_bps": haircut(ctx, s), "value": collateral_value(ctx, s, n)} for s, n in sorted(posted.items())],
            "collateral_value": sum(collateral_value(ctx, s, n) for s, n in posted.items()),
            "initial": None if a is None else a.initial, "maintenance": None if a is None else a.maintenance,
            "unrealised_loss": None if a is None else a.unrealised_loss,
            "excess": None if a is None else a.collateral - a.initial, "no_price": missing,
            "call": None if call is None else dict(zip(("id", "opened_height", "due_height", "top_up"), call, strict=True)),
            "guarantee_fund": contribution(ctx, member),
        }  # fmt: skip

    @view
    def default(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?id=N``: the report of default N (positions closed, collateral taken, waterfall)."""
        default_id = _query_int(query, "id")
        record = ctx.get(f"default/{default_id:020d}") if default_id >= 0 else None
        if record is None:
            raise ContractError("not_found", f"no default {default_id}")
        return _report(default_id, record)

    @view
    def defaults(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?after=N&limit=L``: default reports in id order after id N (paged)."""
        after = _query_int(query, "after", 0)
        limit = max(1, min(LIST_LIMIT_MAX, _query_int(query, "limit", 20)))
        out = []
        for key, record in ctx.iterate("default/", f"{max(after, 0) + 1:020d}"):
            out.append(_report(int(key[len("default/") :]), record))
            if len(out) >= limit:
                break
        return {"defaults": out, "next": out[-1]["id"] if len(out) == limit else None}

    @view
    def funds(self, ctx: Context, query: dict[str, str]) -> Any:
        """The guarantee fund (total and contributions), the insurance fund, the default
        account's holdings and the number of defaults so far."""
        currency = ctx.get("currency")
        contributions = []
        for key, amount in ctx.iterate("gf/"):
            contributions.append({"member": key[len("gf/") :], "amount": amount})
            if len(contributions) >= LIST_LIMIT_MAX:
                break
        held = []
        prefix = accounts.BALANCE_PREFIX + DEFAULTS_ACCOUNT.encode() + b"/"
        for raw, (available, _locked) in ctx.state.iterate(prefix):
            held.append({"asset": raw[len(prefix) :].decode(), "amount": available})
            if len(held) >= LIST_LIMIT_MAX:
                break
        gf_total = accounts.balance(ctx, GUARANTEE_FUND_ACCOUNT, currency)[0] if currency else 0
        insurance = accounts.balance(ctx, INSURANCE_ACCOUNT, currency)[0] if currency else 0
        return {
            "currency": currency, "guarantee_fund": {"total": gf_total, "contributions": contributions},
            "insurance_fund": insurance, "default_account": held, "contributors": int(ctx.get("gf_count") or 0),
            "defaults": int(ctx.get("default_seq") or 0),
        }  # fmt: skip

    @view
    def rates(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?instrument=ID``: its margin rates and, as collateral, its haircut (None: ineligible)."""
        iid = required_query(query, "instrument")
        if get_instrument(ctx, iid) is None:
            raise ContractError("unknown_instrument", f"no instrument {iid!r}")
        im_bps, mm_bps = margin_rates(ctx, iid)
        return {
            "instrument": iid,
            "initial_bps": im_bps,
            "maintenance_bps": mm_bps,
            "set": ctx.get("rate/" + iid) is not None,
            "haircut_bps": haircut(ctx, iid),
        }
