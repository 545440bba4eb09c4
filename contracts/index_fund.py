"""Index funds: units backed by a basket of instruments held at capped market-cap weights,
created and redeemed in kind at NAV, and rebalanced by a scheduled task.

An issuer sets a fund up with its constituents, a weight cap per constituent and a rebalance
interval. The basket sits in a system account ``FUND-<fund>`` owned by this contract
(``@index_fund``), so no key can move it: only creations, redemptions and rebalances do.

**Weights.** Market cap = oracle price x custody supply of the constituent. Capping is iterative
(as in FTSE Russell's method): each constituent whose share exceeds the cap is set to the cap
and the excess is shared out pro rata to the uncapped by market cap, repeated until every weight
fits; this is computed exactly (integers), then rounded to parts per million summing exactly to
1,000,000 by largest remainder: every weight is floored, and the missing ppm go one each to the
largest fractional remainders (ties: the earlier constituent in the fund's list). A capped weight
has no remainder, so rounding never lifts a weight above the cap.

**NAV.** ``NAV = basket cash + floor(sum(quantity x price / 10**decimals))`` in minor units of
the fund's currency (rounded down once, over the exact sum); ``NAV per unit = floor(NAV x
10**UNIT_DECIMALS / units outstanding)`` per whole unit (units have ``UNIT_DECIMALS`` = 4).

**Creation in kind** (a member, the authorised participant, from an account it owns): for N
units it delivers ``ceil(basket_i x N / outstanding)`` of each constituent and of the basket's
cash, rounded UP so existing holders are never diluted (the participant bears the rounding). The
first creation (no units outstanding) delivers a seed basket worth ``ceil(N x initial_nav /
10**4)`` at the capped target weights: ``ceil(value x weight x 10**d / (10**6 x price))`` of
each. A creation whose rounded-up delivery is worth more than ``creation_premium_max_bps``
above the units' value at NAV (too small for whole shares) fails ``creation_too_small``. Units
are issued with ``custody.issue`` (a rule-based supply change). **Redemption in
kind**: units are retired (``custody.retire``) and ``floor(basket_i x N / outstanding)`` of each
constituent and of the cash is delivered, rounded DOWN; the remainder stays for the remaining
holders; redeeming every unit empties the basket exactly. Both need a fresh price for every
constituent (they happen "at NAV", which is recorded). While a constituent is halted a creation
fails ``instrument_halted`` (no new money enters while a price is unreliable), but a redemption
proceeds: it moves pro rata quantities, not trades at a price, so holders can always leave.

**Rebalance** (task ``rebalance`` every ``interval`` blocks, or ``rebalance_now`` by the
manager): target quantity ``t_i = floor(NAV x w_i x 10**d_i / (10**6 x price_i))`` (rounded down:
the fund never targets more than it is worth; what rounding leaves stays in the basket as cash).
The fund trades the difference DvP against its counterparty account (the manager's own account)
at oracle prices, consideration per ``contracts/money.consideration``: first it sells every
overweight constituent, then it buys underweight ones with the cash it has (a buy is cut to what
the basket's cash affords). A difference worth no more than ``rebalance_band_bps`` of NAV is not
traded. Each leg settles or fails alone (savepoint per leg): a halted instrument or a
counterparty short of cash or securities fails that leg (``rebalance_leg_failed``) and the rest
proceeds. A task that cannot run (a missing price, an empty fund) emits ``rebalance_skipped``;
either way the next rebalance is scheduled.

**NAV at any height.** Every creation, redemption and rebalance records the basket, units
outstanding, prices and NAV under the block's inverted height (the last event of a block wins);
view ``nav?fund=&height=`` takes the basket as of that height and prices it with
``oracle.price_at`` at that height.

State::

    index_fund/fund/<fund>            -> [manager, unit, currency, cap_bps, interval_blocks,
                                          counterparty, basket_account, [constituents],
                                          initial_nav, next_rebalance_height, created_height]
    index_fund/weights/<fund>         -> [height, [weight_ppm per constituent]]   (last computed)
    index_fund/nav/<fund>/<inv height> -> [nav, units, nav_per_unit|None, [quantities], cash,
                                          [prices]]   (inv height = 2**64-1-height, 20 digits)

Methods: ``create_fund`` (issuer), ``create_units`` / ``redeem_units`` (member, owner of the
account), ``rebalance_now`` (the fund's manager). Task: ``rebalance``. Views: ``fund``,
``funds``, ``weights``, ``nav``, ``history``.

Events: ``fund_created``, ``units_created``, ``units_redeemed``, ``rebalance_trade``,
``rebalance_leg_failed``, ``rebalanced``, ``rebalance_skipped`` (and the instruments contract's
``instrument_listed`` for the unit).

Failure codes: ``not_issuer``, ``not_member``, ``not_fund_manager``, ``not_account_owner``,
``fund_exists``, ``fund_id_too_long``, ``unknown_fund``, ``too_many_constituents``,
``duplicate_constituent``, ``cap_infeasible``, ``interval_too_short``, ``unknown_instrument``,
``instrument_is_cash``, ``mixed_currency``, ``instrument_exists``, ``account_exists``,
``unknown_account``, ``account_suspended``, ``account_closed``, ``no_price``,
``instrument_halted``, ``insufficient_securities``, ``insufficient_cash``, ``insufficient_units``,
``fund_empty``, ``creation_too_small``, ``redemption_too_small``, ``amount_overflow``; rebalance legs also report
``zero_consideration`` and ``insufficient_fund_cash`` (the basket cannot pay for a single unit).

Parameters: ``constituents_max`` (20; 1..64), ``interval_min_blocks`` (1; 1..1,000,000),
``rebalance_band_bps`` (0; 0..10,000), ``creation_premium_max_bps`` (500; 0..1,000,000).

Why one module of more than 500 lines: a contract's code hash (its pin in genesis and in
governance upgrades) covers exactly the file that defines it, so the whole rule set of the
contract is one file that validators pin and auditors read; a helper module split off would
fall outside the pin.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

from chain.limits import AMOUNT_MAX, ID_CHARS_MAX, PRICE_MAX
from contracts import accounts, custody, oracle, params
from contracts.api import Context, Contract, ContractError, method, required_query, task, view
from contracts.instruments import ACTIVE, get_instrument, list_by_rule, units_text
from contracts.membership import require_role
from contracts.money import amount_text, consideration
from contracts.params import BPS, Param
from contracts.schema import Id, Int, ListOf

NAME = "index_fund"
UNIT_DECIMALS = 4  # fund units are counted in 1/10,000 of a unit
WEIGHT_SCALE = 1_000_000  # weights in parts per million
PPM_PER_BPS = WEIGHT_SCALE // BPS
CONSTITUENTS_MAX = 64  # hard bound on the constituents_max parameter (work per call and task)
INTERVAL_MAX_BLOCKS = 10_000_000
BASKET_PREFIX = "FUND-"
HISTORY_PAGE_MAX = 100
FUNDS_PAGE_MAX = 100
_INVERT = 2**64 - 1

PARAMS = {
    "constituents_max": Param(20, 1, CONSTITUENTS_MAX, "constituents a fund may hold"),
    "interval_min_blocks": Param(1, 1, 1_000_000, "shortest rebalance interval a fund may choose"),
    "rebalance_band_bps": Param(0, 0, BPS, "a difference worth at most this share of NAV is not traded"),
    "creation_premium_max_bps": Param(
        500, 0, 100 * BPS, "a creation may cost at most this much above NAV through rounding up"
    ),
}


class Fund(NamedTuple):
    fund_id: str
    manager: str
    unit: str
    currency: str
    cap_bps: int
    interval: int
    counterparty: str
    basket: str
    constituents: tuple[str, ...]
    initial_nav: int
    next_rebalance: int
    created: int


# --- pure arithmetic ----------------------------------------------------------------------------
def compute_capped_weights(market_caps: Sequence[int], cap_ppm: int) -> list[int]:
    """Capped weights in ppm (sum exactly WEIGHT_SCALE, each <= ``cap_ppm``) of constituents
    with these market caps (any common unit). Iterative capping, then largest remainder.
    Constituents that all have no market cap share what is left equally."""
    n = len(market_caps)
    assert n >= 1 and cap_ppm * n >= WEIGHT_SCALE and all(m >= 0 for m in market_caps)
    capped = [False] * n
    while True:
        free = [i for i in range(n) if not capped[i]]
        remaining = WEIGHT_SCALE - cap_ppm * (n - len(free))
        total = sum(market_caps[i] for i in free)
        if total == 0:  # equal shares: remaining <= cap * len(free) by feasibility, none is over
            shares = {i: (remaining, len(free)) for i in free}
            break
        over = [i for i in free if remaining * market_caps[i] > cap_ppm * total]
        if not over:
            shares = {i: (remaining * market_caps[i], total) for i in free}
            break
        for i in over:
            capped[i] = True
    weights = [cap_ppm] * n
    remainders = [0] * n
    for i, (num, den) in shares.items():
        weights[i], remainders[i] = divmod(num, den)
    short = WEIGHT_SCALE - sum(weights)
    for i in sorted(range(n), key=lambda j: (-remainders[j], j))[:short]:
        weights[i] += 1
    return weights


def compute_value_scaled(
    quantities: Sequence[int], prices: Sequence[int], decimals: Sequence[int], cash: int
) -> tuple[int, int]:
    """(exact value x 10**scale, scale) of holdings plus cash, in minor units of the currency."""
    scale = max(decimals, default=0)
    total = sum(q * p * 10 ** (scale - d) for q, p, d in zip(quantities, prices, decimals, strict=True))
    return cash * 10**scale + total, scale


def compute_nav(quantities: Sequence[int], prices: Sequence[int], decimals: Sequence[int], cash: int) -> int:
    """Cash plus the basket's value, the exact sum of quantity x price / 10**decimals floored once."""
    value, scale = compute_value_scaled(quantities, prices, decimals, cash)
    unit: int = 10**scale
    return value // unit


def compute_nav_per_unit(nav: int, units: int) -> int | None:
    """NAV per whole unit in currency minor units, rounded down; None with no units outstanding."""
    return None if units == 0 else nav * 10**UNIT_DECIMALS // units


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def compute_seed_basket(
    units: int, initial_nav: int, weights: Sequence[int], prices: Sequence[int], decimals: Sequence[int]
) -> list[int]:
    """Quantities delivered for the first ``units``: worth ceil(units x initial_nav) at the target
    weights, each rounded up."""
    value = ceil_div(units * initial_nav, 10**UNIT_DECIMALS)
    return [
        ceil_div(value * w * 10**d, WEIGHT_SCALE * p)
        for w, p, d in zip(weights, prices, decimals, strict=True)
    ]


def compute_targets(
    nav: int, weights: Sequence[int], prices: Sequence[int], decimals: Sequence[int]
) -> list[int]:
    """Rebalance target quantities, each rounded down."""
    return [nav * w * 10**d // (WEIGHT_SCALE * p) for w, p, d in zip(weights, prices, decimals, strict=True)]


# --- reads --------------------------------------------------------------------------------------
def get_fund(ctx: Context, fund_id: str) -> Fund | None:
    record = ctx.view(NAME).get("fund/" + fund_id)
    if record is None:
        return None
    values = list(record)
    values[7] = tuple(values[7])
    return Fund(fund_id, *values)


def _require_fund(ctx: Context, fund_id: str) -> Fund:
    fund = get_fund(ctx, fund_id)
    if fund is None:
        raise ContractError("unknown_fund", f"no fund {fund_id}")
    return fund


def _put_fund(ctx: Context, fund: Fund) -> None:
    values = list(fund[1:])
    values[7] = list(fund.constituents)
    ctx.view(NAME).put("fund/" + fund.fund_id, values)


def _decimals(ctx: Context, fund: Fund) -> list[int]:
    out = []
    for iid in fund.constituents:
        ins = get_instrument(ctx, iid)
        assert ins is not None, "a constituent stays listed"
        out.append(ins.decimals)
    return out


def _prices(ctx: Context, fund: Fund) -> list[int]:
    """Current oracle price of each constituent; fails ``no_price``."""
    return [oracle.require_price(ctx, iid) for iid in fund.constituents]


def _basket(ctx: Context, fund: Fund) -> tuple[list[int], int]:
    """(available quantity of each constituent, cash) in the fund's basket account."""
    quantities = [accounts.balance(ctx, fund.basket, iid)[0] for iid in fund.constituents]
    return quantities, accounts.balance(ctx, fund.basket, fund.currency)[0]


def _weights(ctx: Context, fund: Fund, prices: Sequence[int], decimals: Sequence[int]) -> list[int]:
    """Capped weights at ``prices``: market cap = price x supply (scaled to a common unit)."""
    scale = max(decimals)
    caps = [
        p * custody.supply(ctx, iid) * 10 ** (scale - d)
        for iid, p, d in zip(fund.constituents, prices, decimals, strict=True)
    ]
    return compute_capped_weights(caps, fund.cap_bps * PPM_PER_BPS)


def _require_tradable(ctx: Context, iid: str) -> None:
    ins = get_instrument(ctx, iid)
    if ins is None or ins.status != ACTIVE:
        raise ContractError("instrument_halted", f"{iid} is halted")


def _require_owned(ctx: Context, account: str) -> None:
    record = accounts.require_active(ctx, account)
    if record.owner != ctx.sender:
        raise ContractError("not_account_owner", f"{ctx.sender} does not own {account}")


def _nav_key(fund_id: str, height: int) -> str:
    return f"nav/{fund_id}/{_INVERT - height:020d}"


def _record_nav(
    ctx: Context, fund: Fund, prices: Sequence[int], decimals: Sequence[int]
) -> tuple[int, int | None]:
    """Record the basket, units and NAV at this height; returns (NAV, NAV per unit)."""
    quantities, cash = _basket(ctx, fund)
    nav = compute_nav(quantities, prices, decimals, cash)
    if nav > AMOUNT_MAX:
        raise ContractError(
            "amount_overflow",
            f"NAV of {fund.fund_id} would exceed {units_text(ctx, AMOUNT_MAX, fund.currency)}",
        )
    units = custody.supply(ctx, fund.unit)
    per_unit = compute_nav_per_unit(nav, units)
    ctx.view(NAME).put(
        _nav_key(fund.fund_id, ctx.height), [nav, units, per_unit, quantities, cash, list(prices)]
    )
    return nav, per_unit


def recorded_nav(ctx: Context, fund_id: str, height: int) -> tuple[int, list[Any]] | None:
    """(height recorded, record) of the latest NAV record at or before ``height``."""
    prefix = f"nav/{fund_id}/"
    for key, record in ctx.view(NAME).iterate(prefix, f"{_INVERT - max(0, height):020d}"):
        return _INVERT - int(key[len(prefix) :]), list(record)
    return None


# --- creation and redemption ----------------------------------------------------------------------
def _delivery_for_creation(
    ctx: Context, fund: Fund, units: int, prices: list[int], decimals: list[int]
) -> tuple[list[int], int]:
    """(quantities, cash) a creation of ``units`` must deliver (rounded up)."""
    outstanding = custody.supply(ctx, fund.unit)
    if outstanding == 0:
        weights = _weights(ctx, fund, prices, decimals)
        ctx.view(NAME).put("weights/" + fund.fund_id, [ctx.height, weights])
        delivery = compute_seed_basket(units, fund.initial_nav, weights, prices, decimals), 0
        scale = max(decimals)
        fair = (units * fund.initial_nav * 10**scale, 10**UNIT_DECIMALS)
    else:
        quantities, cash = _basket(ctx, fund)
        if not any(quantities) and cash == 0:
            raise ContractError(
                "fund_empty", f"fund {fund.fund_id} has units outstanding but an empty basket"
            )
        delivery = [ceil_div(q * units, outstanding) for q in quantities], ceil_div(cash * units, outstanding)
        value, _ = compute_value_scaled(quantities, prices, decimals, cash)
        fair = (value * units, outstanding)
    _require_modest_premium(ctx, fund, units, delivery, fair, prices, decimals)
    return delivery


def _require_modest_premium(
    ctx: Context,
    fund: Fund,
    units: int,
    delivery: tuple[list[int], int],
    fair: tuple[int, int],
    prices: list[int],
    decimals: list[int],
) -> None:
    """Fail ``creation_too_small`` if rounding up makes the delivery worth more than
    ``creation_premium_max_bps`` above the units' fair value (``fair`` = numerator x 10**scale,
    denominator): it protects a participant from a creation too small for whole shares."""
    delivered, _ = compute_value_scaled(delivery[0], prices, decimals, delivery[1])
    most = params.get(ctx, NAME, "creation_premium_max_bps")
    if delivered * fair[1] * BPS > fair[0] * (BPS + most):
        raise ContractError(
            "creation_too_small",
            f"rounding to whole holdings makes {amount_text(units, UNIT_DECIMALS, fund.unit)} of fund "
            f"{fund.fund_id} cost more than "
            f"{most} bps above NAV; create more units",
        )


def _check_holds(ctx: Context, account: str, fund: Fund, quantities: list[int], cash: int) -> None:
    for iid, qty in zip(fund.constituents, quantities, strict=True):
        held = accounts.balance(ctx, account, iid)[0]
        if held < qty:
            raise ContractError(
                "insufficient_securities",
                f"{account} has {units_text(ctx, held, iid)}, delivers {units_text(ctx, qty, iid)}",
            )
    held_cash = accounts.balance(ctx, account, fund.currency)[0]
    if held_cash < cash:
        raise ContractError(
            "insufficient_cash",
            f"{account} has {units_text(ctx, held_cash, fund.currency)}, "
            f"delivers {units_text(ctx, cash, fund.currency)}",
        )


def _move_basket(
    ctx: Context, fund: Fund, source: str, target: str, quantities: list[int], cash: int
) -> None:
    for iid, qty in zip(fund.constituents, quantities, strict=True):
        if qty:
            accounts.move(ctx, source, target, iid, qty, "insufficient_securities")
    if cash:
        accounts.move(ctx, source, target, fund.currency, cash, "insufficient_cash")


# --- rebalance ----------------------------------------------------------------------------------
def _trade_leg(
    ctx: Context, fund: Fund, side: str, iid: str, quantity: int, price: int, decimals: int
) -> int:
    """One DvP leg between the basket and the counterparty; returns the consideration.
    Raises ContractError before any write if it cannot settle."""
    _require_tradable(ctx, iid)
    accounts.require_active(ctx, fund.counterparty)
    cash = consideration(quantity, price, decimals)
    if cash == 0:
        raise ContractError(
            "zero_consideration",
            f"{amount_text(quantity, decimals, iid)} at {units_text(ctx, price, fund.currency)} rounds to no cash",
        )
    seller, buyer = (fund.basket, fund.counterparty) if side == "sell" else (fund.counterparty, fund.basket)
    held = accounts.balance(ctx, seller, iid)[0]
    if held < quantity:
        raise ContractError(
            "insufficient_securities",
            f"{seller} has {amount_text(held, decimals, iid)}, delivers {amount_text(quantity, decimals, iid)}",
        )
    paid = accounts.balance(ctx, buyer, fund.currency)[0]
    if paid < cash:
        raise ContractError(
            "insufficient_cash",
            f"{buyer} has {units_text(ctx, paid, fund.currency)}, pays {units_text(ctx, cash, fund.currency)}",
        )
    accounts.move(ctx, seller, buyer, iid, quantity, "insufficient_securities")
    accounts.move(ctx, buyer, seller, fund.currency, cash, "insufficient_cash")
    return cash


def _affordable(cash: int, price: int, decimals: int) -> int:
    """Most of an instrument ``cash`` buys at ``price`` (its rounded consideration <= cash)."""
    scale: int = 10**decimals
    return cash * scale // price


def _settle_leg(
    ctx: Context, fund: Fund, side: str, iid: str, quantity: int, price: int, decimals: int
) -> bool:
    """Run one leg under its own savepoint; report it either way. True if it settled."""
    mark, events = ctx.savepoint(), ctx.event_count
    try:
        if quantity <= 0:
            raise ContractError(
                "insufficient_fund_cash", f"the basket has too little {fund.currency} to buy {iid}"
            )
        cash = _trade_leg(ctx, fund, side, iid, quantity, price, decimals)
    except ContractError as exc:
        ctx.rollback_to(mark, events)
        ctx.emit(
            "rebalance_leg_failed",
            fund=fund.fund_id,
            side=side,
            instrument=iid,
            quantity=quantity,
            code=exc.code,
            message=exc.message,
        )
        return False
    ctx.emit(
        "rebalance_trade",
        fund=fund.fund_id,
        side=side,
        instrument=iid,
        quantity=quantity,
        price=price,
        consideration=cash,
        counterparty=fund.counterparty,
    )
    return True


def rebalance_fund(ctx: Context, fund: Fund) -> None:
    """Trade the basket back to the capped target weights at current oracle prices.
    Fails (writing nothing) ``no_price`` or ``fund_empty``; a failing leg is reported, not raised."""
    prices = _prices(ctx, fund)
    decimals = _decimals(ctx, fund)
    quantities, cash = _basket(ctx, fund)
    nav = compute_nav(quantities, prices, decimals, cash)
    if nav == 0:
        raise ContractError("fund_empty", f"fund {fund.fund_id} holds nothing to rebalance")
    weights = _weights(ctx, fund, prices, decimals)
    targets = compute_targets(nav, weights, prices, decimals)
    band = params.get(ctx, NAME, "rebalance_band_bps")
    legs = [
        i for i in range(len(targets))
        if targets[i] != quantities[i]
        and abs(targets[i] - quantities[i]) * prices[i] * BPS > band * nav * 10 ** decimals[i]
    ]  # fmt: skip
    settled = failed = 0
    for side in ("sell", "buy"):
        for i in legs:
            delta = targets[i] - quantities[i]
            if (delta < 0) != (side == "sell"):
                continue
            iid, qty = fund.constituents[i], abs(delta)
            if side == "buy":
                available = accounts.balance(ctx, fund.basket, fund.currency)[0]
                qty = min(qty, _affordable(available, prices[i], decimals[i]))
            if _settle_leg(ctx, fund, side, iid, qty, prices[i], decimals[i]):
                settled += 1
            else:
                failed += 1
    ctx.view(NAME).put("weights/" + fund.fund_id, [ctx.height, weights])
    nav_after, per_unit = _record_nav(ctx, fund, prices, decimals)
    ctx.view(NAME).emit(
        "rebalanced",
        fund=fund.fund_id,
        trades=settled,
        failed=failed,
        nav=nav_after,
        nav_per_unit=per_unit,
        weights=weights,
    )


# --- the contract ---------------------------------------------------------------------------------
class IndexFund(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(
        ("fund", Id()),
        ("unit", Id()),
        ("constituents", ListOf(Id(), max_items=CONSTITUENTS_MAX, min_items=1)),
        ("cap_bps", Int(1, BPS)),
        ("interval_blocks", Int(1, INTERVAL_MAX_BLOCKS)),
        ("counterparty", Id()),
        ("initial_nav", Int(1, PRICE_MAX)),
    )
    def create_fund(
        self,
        ctx: Context,
        fund_id: str,
        unit: str,
        constituents: tuple[str, ...],
        cap_bps: int,
        interval: int,
        counterparty: str,
        initial_nav: int,
    ) -> None:
        """An issuer sets up a fund: lists its unit instrument, opens its basket account and
        schedules the first rebalance. The counterparty account must be the issuer's own."""
        require_role(ctx, "issuer")
        ctx.require(ctx.get("fund/" + fund_id) is None, "fund_exists", f"fund {fund_id} exists")
        ctx.require(
            len(fund_id) <= ID_CHARS_MAX - len(BASKET_PREFIX),
            "fund_id_too_long",
            f"a fund id has at most {ID_CHARS_MAX - len(BASKET_PREFIX)} characters",
        )
        n = len(constituents)
        most = params.get(ctx, NAME, "constituents_max")
        ctx.require(n <= most, "too_many_constituents", f"{n} constituents; at most {most}")
        ctx.require(len(set(constituents)) == n, "duplicate_constituent", "a constituent is listed twice")
        ctx.require(
            cap_bps * n >= BPS,
            "cap_infeasible",
            f"{n} constituents capped at {cap_bps} bps cannot reach 100%",
        )
        shortest = params.get(ctx, NAME, "interval_min_blocks")
        ctx.require(
            interval >= shortest, "interval_too_short", f"interval {interval} blocks; at least {shortest}"
        )
        currency = self._common_currency(ctx, constituents)
        _require_owned(ctx, counterparty)
        list_by_rule(ctx, unit, "fund", UNIT_DECIMALS, currency)
        basket = BASKET_PREFIX + fund_id
        accounts.open_system(ctx, basket)
        fund = Fund(
            fund_id,
            ctx.sender,
            unit,
            currency,
            cap_bps,
            interval,
            counterparty,
            basket,
            constituents,
            initial_nav,
            ctx.height + interval,
            ctx.height,
        )
        _put_fund(ctx, fund)
        ctx.schedule("rebalance", [fund_id], at_height=fund.next_rebalance)
        ctx.emit(
            "fund_created",
            fund=fund_id,
            manager=ctx.sender,
            unit=unit,
            currency=currency,
            constituents=list(constituents),
            cap_bps=cap_bps,
            interval_blocks=interval,
            counterparty=counterparty,
            basket=basket,
            initial_nav=initial_nav,
            next_rebalance=fund.next_rebalance,
        )

    @staticmethod
    def _common_currency(ctx: Context, constituents: tuple[str, ...]) -> str:
        currencies = []
        for iid in constituents:
            ins = get_instrument(ctx, iid)
            if ins is None:
                raise ContractError("unknown_instrument", f"no instrument {iid}")
            if ins.currency is None:
                raise ContractError(
                    "instrument_is_cash", f"{iid} is cash; a fund holds cash only as a remainder"
                )
            currencies.append(ins.currency)
        if len(set(currencies)) != 1:
            raise ContractError(
                "mixed_currency", f"constituents settle in {', '.join(sorted(set(currencies)))}"
            )
        return currencies[0]

    @method(("fund", Id()), ("account", Id()), ("units", Int(1, AMOUNT_MAX)))
    def create_units(self, ctx: Context, fund_id: str, account: str, units: int) -> None:
        """A member delivers the basket for ``units`` (minor units) from its account and
        receives the units there."""
        require_role(ctx, "member")
        fund = _require_fund(ctx, fund_id)
        _require_owned(ctx, account)
        prices = _prices(ctx, fund)
        decimals = _decimals(ctx, fund)
        for iid in fund.constituents:
            _require_tradable(ctx, iid)
        quantities, cash = _delivery_for_creation(ctx, fund, units, prices, decimals)
        _check_holds(ctx, account, fund, quantities, cash)
        _move_basket(ctx, fund, account, fund.basket, quantities, cash)
        custody.issue(ctx, account, fund.unit, units)
        nav, per_unit = _record_nav(ctx, fund, prices, decimals)
        ctx.emit(
            "units_created",
            fund=fund_id,
            account=account,
            units=units,
            instruments=list(fund.constituents),
            quantities=quantities,
            cash=cash,
            nav=nav,
            nav_per_unit=per_unit,
        )

    @method(("fund", Id()), ("account", Id()), ("units", Int(1, AMOUNT_MAX)))
    def redeem_units(self, ctx: Context, fund_id: str, account: str, units: int) -> None:
        """A member returns ``units`` from its account and receives their share of the basket."""
        require_role(ctx, "member")
        fund = _require_fund(ctx, fund_id)
        _require_owned(ctx, account)
        prices = _prices(ctx, fund)
        decimals = _decimals(ctx, fund)
        held = accounts.balance(ctx, account, fund.unit)[0]
        if held < units:
            raise ContractError(
                "insufficient_units",
                f"{account} has {amount_text(held, UNIT_DECIMALS, fund.unit)}, "
                f"redeems {amount_text(units, UNIT_DECIMALS, fund.unit)}",
            )
        outstanding = custody.supply(ctx, fund.unit)
        basket, basket_cash = _basket(ctx, fund)
        quantities = [q * units // outstanding for q in basket]
        cash = basket_cash * units // outstanding
        ctx.require(
            any(quantities) or cash > 0,
            "redemption_too_small",
            f"{amount_text(units, UNIT_DECIMALS, fund.unit)} of fund {fund_id} are worth less than one "
            "minor unit of each holding",
        )
        custody.retire(ctx, account, fund.unit, units, "insufficient_units")
        _move_basket(ctx, fund, fund.basket, account, quantities, cash)
        nav, per_unit = _record_nav(ctx, fund, prices, decimals)
        ctx.emit(
            "units_redeemed",
            fund=fund_id,
            account=account,
            units=units,
            instruments=list(fund.constituents),
            quantities=quantities,
            cash=cash,
            nav=nav,
            nav_per_unit=per_unit,
        )

    @method(("fund", Id()))
    def rebalance_now(self, ctx: Context, fund_id: str) -> None:
        """The fund's manager rebalances at once (the schedule is unchanged)."""
        fund = _require_fund(ctx, fund_id)
        ctx.require(ctx.sender == fund.manager, "not_fund_manager", f"{ctx.sender} does not manage {fund_id}")
        rebalance_fund(ctx, fund)

    @task
    def rebalance(self, ctx: Context, payload: Any) -> None:
        """The periodic rebalance; always schedules the next one (a task that raised would lose
        its reschedule, so failures are caught and reported)."""
        fund = get_fund(ctx, str(payload[0]))
        if fund is None:
            return
        mark, events = ctx.savepoint(), ctx.event_count
        try:
            rebalance_fund(ctx, fund)
        except ContractError as exc:
            ctx.rollback_to(mark, events)
            ctx.emit("rebalance_skipped", fund=fund.fund_id, code=exc.code, message=exc.message)
        nxt = ctx.height + fund.interval
        _put_fund(ctx, fund._replace(next_rebalance=nxt))
        ctx.schedule("rebalance", [fund.fund_id], at_height=nxt)

    # --- views ------------------------------------------------------------------------------
    @view
    def fund(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?fund=ID``: the fund's terms, basket, units outstanding and last weights."""
        fund = _query_fund(ctx, query)
        quantities, cash = _basket(ctx, fund)
        stored = ctx.get("weights/" + fund.fund_id)
        return {
            "fund": fund.fund_id, "manager": fund.manager, "unit": fund.unit, "unit_decimals": UNIT_DECIMALS,
            "currency": fund.currency, "cap_bps": fund.cap_bps, "interval_blocks": fund.interval,
            "counterparty": fund.counterparty, "basket_account": fund.basket, "initial_nav": fund.initial_nav,
            "next_rebalance": fund.next_rebalance, "created": fund.created,
            "units_outstanding": custody.supply(ctx, fund.unit), "cash": cash,
            "weights_height": None if stored is None else stored[0],
            "constituents": [
                {"instrument": iid, "quantity": q, "weight_ppm": None if stored is None else stored[1][i]}
                for i, (iid, q) in enumerate(zip(fund.constituents, quantities, strict=True))
            ],
        }  # fmt: skip

    @view
    def funds(self, ctx: Context, query: dict[str, str]) -> Any:
        """``[?after=ID][&limit=N]``: fund ids in order, a page at a time."""
        limit = _int_query(query, "limit", FUNDS_PAGE_MAX, 1, FUNDS_PAGE_MAX)
        start = query["after"] + "\x00" if query.get("after") else ""
        out: list[str] = []
        for key, _ in ctx.iterate("fund/", start):
            out.append(key[len("fund/") :])
            if len(out) >= limit:
                break
        return {"funds": out, "next": out[-1] if len(out) == limit else None}

    @view
    def weights(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?fund=ID``: capped weights at the current oracle prices, with market caps."""
        fund = _query_fund(ctx, query)
        prices = _prices(ctx, fund)
        decimals = _decimals(ctx, fund)
        weights = _weights(ctx, fund, prices, decimals)
        rows = []
        for iid, p, d, w in zip(fund.constituents, prices, decimals, weights, strict=True):
            supply = custody.supply(ctx, iid)
            rows.append(
                {
                    "instrument": iid,
                    "price": p,
                    "supply": supply,
                    "market_cap": p * supply // 10**d,
                    "weight_ppm": w,
                    "capped": w == fund.cap_bps * PPM_PER_BPS,
                }
            )
        return {"fund": fund.fund_id, "cap_bps": fund.cap_bps, "height": ctx.height, "constituents": rows}

    @view
    def nav(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?fund=ID[&height=H]``: NAV and NAV per unit now (basket and fresh prices), or at
        height H (the basket recorded at or before H, priced with the oracle's prices at H)."""
        fund = _query_fund(ctx, query)
        decimals = _decimals(ctx, fund)
        if "height" not in query:
            quantities, cash = _basket(ctx, fund)
            found = [oracle.current_price(ctx, iid) for iid in fund.constituents]
            return _nav_doc(
                fund, ctx.height, quantities, cash, custody.supply(ctx, fund.unit), found, decimals, None
            )
        height = _int_query(query, "height", 0, 0, _INVERT)
        recorded = recorded_nav(ctx, fund.fund_id, height)
        if recorded is None:
            return {
                "fund": fund.fund_id,
                "height": height,
                "nav": None,
                "nav_per_unit": None,
                "recorded": None,
            }
        at, (nav, units, per_unit, quantities, cash, _prices_then) = recorded
        at_h = [oracle.price_at(ctx, iid, height) for iid in fund.constituents]
        prices = [None if p is None else p[0] for p in at_h]
        recorded_doc = {"height": at, "nav": nav, "nav_per_unit": per_unit}
        return _nav_doc(fund, height, list(quantities), cash, units, prices, decimals, recorded_doc)

    @view
    def history(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?fund=ID[&before=H][&limit=N]``: recorded NAVs, newest first, before height H."""
        fund = _query_fund(ctx, query)
        limit = _int_query(query, "limit", 20, 1, HISTORY_PAGE_MAX)
        before = _int_query(query, "before", _INVERT, 1, _INVERT)
        prefix = f"nav/{fund.fund_id}/"
        rows = []
        for key, record in ctx.iterate(prefix, f"{_INVERT - (before - 1):020d}"):
            nav, units, per_unit, quantities, cash, prices = record
            rows.append(
                {
                    "height": _INVERT - int(key[len(prefix) :]),
                    "nav": nav,
                    "units": units,
                    "nav_per_unit": per_unit,
                    "quantities": list(quantities),
                    "cash": cash,
                    "prices": list(prices),
                }
            )
            if len(rows) >= limit:
                break
        return {
            "fund": fund.fund_id,
            "records": rows,
            "next_before": rows[-1]["height"] if len(rows) == limit else None,
        }


def _nav_doc(
    fund: Fund,
    height: int,
    quantities: list[int],
    cash: int,
    units: int,
    prices: list[int | None],
    decimals: list[int],
    recorded: Any,
) -> dict[str, Any]:
    nav = None
    if all(p is not None for p in prices):
        nav = compute_nav(quantities, [p for p in prices if p is not None], decimals, cash)
    return {
        "fund": fund.fund_id, "height": height, "currency": fund.currency, "unit_decimals": UNIT_DECIMALS,
        "units": units, "nav": nav, "nav_per_unit": None if nav is None else compute_nav_per_unit(nav, units),
        "cash": cash,
        "constituents": [{"instrument": i, "quantity": q, "price": p} for i, q, p in zip(fund.constituents, quantities, prices, strict=True)],
        "recorded": recorded,
    }  # fmt: skip


def _query_fund(ctx: Context, query: dict[str, str]) -> Fund:
    fund_id = required_query(query, "fund")
    fund = get_fund(ctx, fund_id)
    if fund is None:
        raise ContractError("unknown_fund", f"no fund {fund_id!r}")
    return fund


def _int_query(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    if name not in query:
        return default
    try:
        value = int(query[name])
    except ValueError:
        raise ContractError("bad_query", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ContractError("bad_query", f"{name} must be {low}..{high}")
    return value
