"""The index fund (contracts/index_fund.py): capped weights, creation and redemption in kind at
NAV, the scheduled rebalance, NAV at any height, its CLI and its demo scenario.

The contract is driven through real blocks on a dev-genesis chain and checked against what a
client can see (receipts' codes and events, balances, supply, views) and against independent
Fraction arithmetic. Properties: the capping matches a Fraction reference; over any history of
creations, redemptions, price moves and rebalances every asset's supply equals the sum of its
balances, no balance is negative, creations and redemptions never dilute the remaining holders,
and two fresh chains fed the same transactions reach the same state root.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.executor import CallEnv
from chain.genesis import Genesis, parse_genesis
from chain.policy import nonce_key
from chain.receipt import Receipt
from chain.store import Store
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.main import main
from cli.scenarios import ScenarioRun
from cli.scenarios import fund as fund_scenario
from contracts import default_registry
from contracts.index_fund import UNIT_DECIMALS, WEIGHT_SCALE, compute_capped_weights
from tests.conftest import Chain
from tests.netutil import NodeThread
from tests.test_cli import FAST

CONSTITUENTS = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "STARK"]
PRICES = {
    "ACME": 180_00,
    "GLOBEX": 95_00,
    "INITECH": 40_00,
    "UMBRELLA": 120_00,
    "HOOLI": 250_00,
    "STARK": 310_00,
}
DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}
SUPPLY = {i: sum(n for _, a, n in devnet.all_balances() if a == i) for i in CONSTITUENTS}
FUND, UNIT, BASKET = "IDX", "IDX-U", "FUND-IDX"
REGISTRY = default_registry()
ONE_UNIT = 10**UNIT_DECIMALS


# --- a Fraction reference of the capping ------------------------------------------------------
def reference_weights(caps: list[int], cap: Fraction) -> list[Fraction]:
    """Iterative capping as the index rule states it: weights by market cap; every weight above
    the cap is set to the cap and the excess is shared out pro rata among the others (by their
    current weights); repeat until all fit."""
    total = sum(caps)
    w = [Fraction(c, total) if total else Fraction(1, len(caps)) for c in caps]
    while any(x > cap for x in w):
        excess = sum(x - cap for x in w if x > cap)
        under = [i for i, x in enumerate(w) if x < cap]
        base = sum(w[i] for i in under)
        w = [min(x, cap) for x in w]
        for i in under:
            w[i] += excess * (w[i] / base if base else Fraction(1, len(under)))
    return w


@settings(max_examples=300)
@given(st.lists(st.integers(0, 10**15), min_size=1, max_size=30), st.integers(1, 10_000), st.data())
def test_capped_weights_match_the_fraction_reference(
    caps: list[int], cap_bps: int, data: st.DataObject
) -> None:
    cap_bps = max(cap_bps, -(-10_000 // len(caps)))  # feasible: cap x n >= 100%
    if sum(caps) == 0:
        caps[data.draw(st.integers(0, len(caps) - 1))] = 1
    weights = compute_capped_weights(caps, cap_bps * 100)
    exact = reference_weights(caps, Fraction(cap_bps, 10_000))
    assert sum(weights) == WEIGHT_SCALE
    assert all(0 <= w <= cap_bps * 100 for w in weights)
    assert all(abs(w - x * WEIGHT_SCALE) < 1 for w, x in zip(weights, exact, strict=True))


def test_capped_weights_examples() -> None:
    # One giant capped at 25%; its excess goes to the rest by market cap.
    assert compute_capped_weights([70, 10, 10, 10], 400_000) == [400_000, 200_000, 200_000, 200_000]
    # Capping cascades: after the first round the second-largest is over the cap too.
    assert compute_capped_weights([50, 30, 10, 10], 350_000) == [350_000, 350_000, 150_000, 150_000]
    # cap x n = 100% exactly: every weight is the cap.
    assert compute_capped_weights([90, 5, 3, 2], 250_000) == [250_000] * 4
    # Largest remainder: thirds round to 333,334 / 333,333 / 333,333 (ties go to the first).
    assert compute_capped_weights([1, 1, 1], 1_000_000) == [333_334, 333_333, 333_333]
    # Constituents without market cap share what the capped leave.
    assert compute_capped_weights([100, 0, 0], 500_000) == [500_000, 250_000, 250_000]


# --- helpers ----------------------------------------------------------------------------------
def view(chain: Chain, name: str, **query: Any) -> Any:
    head = chain.ledger.head
    env = CallEnv(chain.genesis.chain_id, head.height, head.time_ms, b"")
    return REGISTRY.read_view(chain.state(), env, "index_fund", name, {k: str(v) for k, v in query.items()})


def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    block, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts[: len(txs)]] == [("ok", "")] * len(txs)
    return tuple(result.receipts)


def events(receipt: Receipt, name: str) -> list[dict[str, Any]]:
    return [dict(f) for c, n, f in receipt.events if c == "index_fund" and n == name]


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = snapshot(chain)
    block, result = chain.run(stx)
    receipt = result.receipts[0]
    assert block.txs == (stx,) and receipt.code == code, (receipt.code, receipt.message)
    assert receipt.events == ()
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert snapshot(chain) == before
    return receipt


def publish(chain: Chain, prices: dict[str, int]) -> None:
    ok(chain, chain.tx("oracle-1", "oracle", "submit_many", [[[i, p] for i, p in sorted(prices.items())]]))


def create_fund_tx(
    chain: Chain,
    *,
    fund: str = FUND,
    unit: str = UNIT,
    constituents: list[str] | None = None,
    cap_bps: int = 2_500,
    interval: int = 1_000,
    counterparty: str = "FUND-HOUSE",
    initial_nav: int = 100_00,
    sender: str = "fund-mgr",
) -> SignedTx:
    args = [fund, unit, constituents or CONSTITUENTS, cap_bps, interval, counterparty, initial_nav]
    return chain.tx(sender, "index_fund", "create_fund", args)


def create_units(
    chain: Chain, units: int, account: str = "A-HOUSE", sender: str = "member-a", fund: str = FUND
) -> SignedTx:
    return chain.tx(sender, "index_fund", "create_units", [fund, account, units])


def redeem(
    chain: Chain, units: int, account: str = "A-HOUSE", sender: str = "member-a", fund: str = FUND
) -> SignedTx:
    return chain.tx(sender, "index_fund", "redeem_units", [fund, account, units])


def stock_counterparty(chain: Chain, shares: int = 500) -> None:
    """Give FUND-HOUSE securities to sell to the fund (a custodian deposit of each)."""
    txs = [
        chain.tx("custodian", "custody", "deposit", ["FUND-HOUSE", i, shares, f"seed-{i}"])
        for i in CONSTITUENTS
    ]
    ok(chain, *txs)


def basket(chain: Chain) -> dict[str, int]:
    return {i: chain.balance(BASKET, i)[0] for i in [*CONSTITUENTS, "USD"]}


def supply(chain: Chain, asset: str) -> int:
    return chain.state().get(b"custody/supply/" + asset.encode()) or 0


def exact_value(holdings: dict[str, int], prices: dict[str, int]) -> Fraction:
    return holdings.get("USD", 0) + sum(Fraction(holdings[i] * prices[i], 10 ** DECIMALS[i]) for i in prices)


def check_conservation(chain: Chain) -> None:
    """Every asset's supply equals the sum of its balances; no balance is negative."""
    totals: dict[str, int] = {}
    for key, (available, locked) in chain.state().iterate(b"accounts/bal/"):
        assert available >= 0 and locked >= 0
        asset = key.decode().rsplit("/", 1)[1]
        totals[asset] = totals.get(asset, 0) + available + locked
    supplies = {k.decode()[len("custody/supply/") :]: v for k, v in chain.state().iterate(b"custody/supply/")}
    assert {a: t for a, t in totals.items()} == {a: s for a, s in supplies.items() if s}


@pytest.fixture
def priced(chain: Chain) -> Chain:
    publish(chain, PRICES)
    return chain


@pytest.fixture
def fund(priced: Chain) -> Chain:
    ok(priced, create_fund_tx(priced))
    return priced


# --- creating a fund --------------------------------------------------------------------------
def test_create_fund_lists_the_unit_opens_the_basket_and_schedules(priced: Chain) -> None:
    (receipt,) = ok(priced, create_fund_tx(priced, interval=7))
    height = priced.ledger.head.height
    assert receipt.events[0][:2] == ("instruments", "instrument_listed")
    assert dict(receipt.events[0][2]) == {"id": UNIT, "kind": "fund", "decimals": UNIT_DECIMALS}
    (created,) = events(receipt, "fund_created")
    assert (
        created["basket"] == BASKET
        and created["next_rebalance"] == height + 7
        and created["currency"] == "USD"
    )
    state = priced.state()
    assert state.get(b"instruments/" + UNIT.encode()) == ("fund", UNIT_DECIMALS, "USD", "active")
    assert state.get(b"accounts/acct/" + BASKET.encode()) == ("@index_fund", "house", None, "active", 0)
    doc = view(priced, "fund", fund=FUND)
    assert (
        doc["manager"] == "fund-mgr" and doc["units_outstanding"] == 0 and doc["next_rebalance"] == height + 7
    )
    assert [c["instrument"] for c in doc["constituents"]] == CONSTITUENTS
    assert view(priced, "funds") == {"funds": [FUND], "next": None}


def test_create_fund_rules(priced: Chain) -> None:
    fails(priced, create_fund_tx(priced, sender="member-a"), "not_issuer")
    fails(
        priced, create_fund_tx(priced, sender="issuer-acme"), "not_account_owner"
    )  # FUND-HOUSE is fund-mgr's
    fails(priced, create_fund_tx(priced, counterparty="A-HOUSE"), "not_account_owner")
    fails(priced, create_fund_tx(priced, counterparty="NOPE"), "unknown_account")
    fails(priced, create_fund_tx(priced, cap_bps=1_666), "cap_infeasible")  # 6 x 16.66% < 100%
    fails(
        priced, create_fund_tx(priced, constituents=["ACME", "ACME"], cap_bps=5_000), "duplicate_constituent"
    )
    fails(priced, create_fund_tx(priced, constituents=["ACME", "NOPE"], cap_bps=5_000), "unknown_instrument")
    fails(priced, create_fund_tx(priced, constituents=["ACME", "USD"], cap_bps=5_000), "instrument_is_cash")
    fails(priced, create_fund_tx(priced, unit="ACME"), "instrument_exists")
    fails(priced, create_fund_tx(priced, fund="X" * 60), "fund_id_too_long")
    fails(priced, create_fund_tx(priced, fund="HOUSE"), "account_exists")  # FUND-HOUSE is taken
    ok(priced, create_fund_tx(priced, cap_bps=1_667))
    fails(priced, create_fund_tx(priced, unit="IDX-U2"), "fund_exists")


def test_create_fund_checks_the_parameters(tmp_path: Path) -> None:
    doc = devnet.dev_genesis_doc()
    doc["params"] = {"index_fund.constituents_max": 3, "index_fund.interval_min_blocks": 10}
    chain = Chain(Store.in_memory(), parse_genesis(doc))
    fails(chain, create_fund_tx(chain), "too_many_constituents")
    fails(
        chain,
        create_fund_tx(chain, constituents=CONSTITUENTS[:3], cap_bps=5_000, interval=9),
        "interval_too_short",
    )
    ok(chain, create_fund_tx(chain, constituents=CONSTITUENTS[:3], cap_bps=5_000, interval=10))


# --- creation and redemption in kind ----------------------------------------------------------
def test_first_creation_delivers_the_seed_basket_at_target_weights(fund: Chain) -> None:
    before = {i: fund.balance("A-HOUSE", i)[0] for i in CONSTITUENTS}
    (receipt,) = ok(fund, create_units(fund, 1_000 * ONE_UNIT))
    weights = view(fund, "weights", fund=FUND)["constituents"]
    value = 1_000 * 100_00  # 1,000 units at the initial NAV of 100.00
    expected = {
        w["instrument"]: math.ceil(Fraction(value * w["weight_ppm"], WEIGHT_SCALE * PRICES[w["instrument"]]))
        for w in weights
    }
    (created,) = events(receipt, "units_created")
    assert dict(zip(created["instruments"], created["quantities"], strict=True)) == expected
    assert created["cash"] == 0
    for i in CONSTITUENTS:
        assert fund.balance("A-HOUSE", i)[0] == before[i] - expected[i]
        assert fund.balance(BASKET, i) == (expected[i], 0)
    assert fund.balance("A-HOUSE", UNIT) == (1_000 * ONE_UNIT, 0)
    assert supply(fund, UNIT) == 1_000 * ONE_UNIT
    nav = math.floor(exact_value(expected, PRICES))
    assert created["nav"] == nav and created["nav_per_unit"] == nav * ONE_UNIT // (1_000 * ONE_UNIT)
    assert created["nav_per_unit"] >= 100_00  # rounding up never leaves the fund short
    # The seed weights: market caps from price x supply, ACME capped at 25%.
    by_id = {w["instrument"]: w for w in weights}
    assert by_id["ACME"]["weight_ppm"] == 250_000 and by_id["ACME"]["capped"]
    assert by_id["ACME"]["market_cap"] == PRICES["ACME"] * SUPPLY["ACME"]
    assert sum(w["weight_ppm"] for w in weights) == WEIGHT_SCALE
    check_conservation(fund)


def test_later_creations_deliver_the_basket_pro_rata_rounded_up(fund: Chain) -> None:
    ok(fund, create_units(fund, 1_000 * ONE_UNIT))
    held = basket(fund)
    outstanding = supply(fund, UNIT)
    units = 333 * ONE_UNIT + 1
    (receipt,) = ok(fund, create_units(fund, units, account="B-HOUSE", sender="member-b"))
    (created,) = events(receipt, "units_created")
    expected = [math.ceil(Fraction(held[i] * units, outstanding)) for i in CONSTITUENTS]
    assert created["quantities"] == expected
    assert fund.balance("B-HOUSE", UNIT) == (units, 0)
    after = basket(fund)
    # Existing holders are not diluted: value per unit does not fall at unchanged prices.
    assert exact_value(after, PRICES) / (outstanding + units) >= exact_value(held, PRICES) / outstanding
    check_conservation(fund)


def test_redemption_delivers_pro_rata_rounded_down_and_the_last_empties_the_basket(fund: Chain) -> None:
    ok(fund, create_units(fund, 1_000 * ONE_UNIT))
    ok(fund, create_units(fund, 500 * ONE_UNIT, account="B-HOUSE", sender="member-b"))
    held, outstanding = basket(fund), supply(fund, UNIT)
    (receipt,) = ok(fund, redeem(fund, 300 * ONE_UNIT + 7))
    (redeemed,) = events(receipt, "units_redeemed")
    assert redeemed["quantities"] == [held[i] * (300 * ONE_UNIT + 7) // outstanding for i in CONSTITUENTS]
    assert supply(fund, UNIT) == outstanding - 300 * ONE_UNIT - 7
    assert exact_value(basket(fund), PRICES) / supply(fund, UNIT) >= exact_value(held, PRICES) / outstanding
    # Everyone redeems everything: the basket is empty and so is the supply of units.
    ok(fund, redeem(fund, fund.balance("A-HOUSE", UNIT)[0]))
    ok(fund, redeem(fund, fund.balance("B-HOUSE", UNIT)[0], account="B-HOUSE", sender="member-b"))
    assert supply(fund, UNIT) == 0 and all(v == 0 for v in basket(fund).values())
    check_conservation(fund)


def test_creation_and_redemption_rules(fund: Chain) -> None:
    fails(fund, create_units(fund, ONE_UNIT, sender="oracle-1", account="O1-HOUSE"), "not_member")
    fails(fund, create_units(fund, ONE_UNIT, sender="member-b"), "not_account_owner")  # A-HOUSE is member-a's
    fails(fund, create_units(fund, ONE_UNIT, fund="NOPE"), "unknown_fund")
    fails(fund, create_units(fund, ONE_UNIT, account="NOPE"), "unknown_account")
    fails(fund, create_units(fund, 10**6 * ONE_UNIT), "insufficient_securities")
    fails(fund, create_units(fund, 100 * ONE_UNIT, account="A-C001"), "insufficient_securities")  # only cash
    # One unit (100.00) of a basket of whole shares would cost about ten times NAV: refused.
    fails(fund, create_units(fund, ONE_UNIT), "creation_too_small")
    ok(fund, create_units(fund, 100 * ONE_UNIT))
    fails(fund, create_units(fund, ONE_UNIT), "creation_too_small")
    fails(fund, redeem(fund, 101 * ONE_UNIT), "insufficient_units")
    fails(fund, redeem(fund, ONE_UNIT, sender="member-b"), "not_account_owner")
    fails(fund, redeem(fund, ONE_UNIT, sender="custodian", account="A-HOUSE"), "not_member")
    fails(fund, redeem(fund, 1), "redemption_too_small")  # 1/10,000 of a unit is worth no whole share
    ok(fund, chain_halt(fund, "GLOBEX"))
    fails(fund, create_units(fund, ONE_UNIT), "instrument_halted")
    # A redemption still proceeds: it delivers pro rata quantities, halted shares included.
    (receipt,) = ok(fund, redeem(fund, 50 * ONE_UNIT))
    (redeemed,) = events(receipt, "units_redeemed")
    assert redeemed["quantities"][CONSTITUENTS.index("GLOBEX")] > 0


def chain_halt(chain: Chain, iid: str) -> SignedTx:
    return chain.tx("admin", "instruments", "halt", [iid, "test"])


def test_creation_needs_fresh_prices(chain: Chain) -> None:
    ok(chain, create_fund_tx(chain))
    fails(chain, create_units(chain, ONE_UNIT), "no_price")
    publish(chain, {i: p for i, p in PRICES.items() if i != "STARK"})
    fails(chain, create_units(chain, ONE_UNIT), "no_price")


# --- rebalance ----------------------------------------------------------------------------------
def test_scheduled_rebalance_trades_back_to_capped_targets(priced: Chain) -> None:
    stock_counterparty(priced)
    ok(priced, create_fund_tx(priced, interval=3))
    ok(priced, create_units(priced, 2_000 * ONE_UNIT))
    moved = dict(PRICES, HOOLI=262_00, ACME=175_00, INITECH=42_00)
    publish(priced, moved)
    before = basket(priced)
    due = view(priced, "fund", fund=FUND)["next_rebalance"]
    while priced.ledger.head.height < due - 1:
        priced.run()
    cp_before = {i: priced.balance("FUND-HOUSE", i)[0] for i in [*CONSTITUENTS, "USD"]}
    _, result = priced.run()
    (task,) = result.receipts
    assert task.ok, task.message
    (summary,) = events(task, "rebalanced")
    trades = events(task, "rebalance_trade")
    assert summary["failed"] == 0 and summary["trades"] == len(trades) > 0
    # Sells come first, then buys; each leg is DvP at the oracle price.
    sides = [t["side"] for t in trades]
    assert sides == sorted(sides, key=lambda s: s != "sell")
    after = basket(priced)
    for t in trades:
        sign = -1 if t["side"] == "sell" else 1
        assert after[t["instrument"]] - before[t["instrument"]] == sign * t["quantity"]
        assert t["consideration"] == t["quantity"] * moved[t["instrument"]]
    cash_flow = sum(t["consideration"] * (1 if t["side"] == "sell" else -1) for t in trades)
    assert after["USD"] == before["USD"] + cash_flow
    assert priced.balance("FUND-HOUSE", "USD")[0] == cp_before["USD"] - cash_flow
    # Whole-share equities at cent prices trade at exact value: NAV is unchanged.
    assert exact_value(after, moved) == exact_value(before, moved) == summary["nav"]
    # Holdings are the floored targets of the capped weights; no constituent is above the cap.
    weights = summary["weights"]
    nav = summary["nav"]
    for i, w in zip(CONSTITUENTS, weights, strict=True):
        assert after[i] == nav * w // (WEIGHT_SCALE * moved[i])
        assert after[i] * moved[i] * WEIGHT_SCALE <= 250_000 * nav
    # The next rebalance is scheduled one interval on, and it runs.
    doc = view(priced, "fund", fund=FUND)
    assert doc["next_rebalance"] == due + 3 and doc["weights_height"] == due
    priced.run()
    priced.run()
    _, result = priced.run()
    assert [events(r, "rebalanced") != [] for r in result.receipts] == [True]
    check_conservation(priced)


def test_a_failing_leg_is_reported_and_the_rest_proceeds(priced: Chain) -> None:
    ok(priced, create_fund_tx(priced))
    ok(priced, create_units(priced, 2_000 * ONE_UNIT))
    publish(priced, dict(PRICES, HOOLI=262_00, ACME=175_00, INITECH=42_00))
    ok(priced, chain_halt(priced, "ACME"))
    # FUND-HOUSE holds only cash: the fund can sell to it but cannot buy from it.
    (receipt,) = ok(priced, priced.tx("fund-mgr", "index_fund", "rebalance_now", [FUND]))
    failed = events(receipt, "rebalance_leg_failed")
    trades = events(receipt, "rebalance_trade")
    codes = {f["instrument"]: f["code"] for f in failed}
    assert codes.get("ACME") == "instrument_halted"
    assert all(f["code"] in ("instrument_halted", "insufficient_securities") for f in failed)
    assert all(f["side"] == "buy" for f in failed if f["code"] == "insufficient_securities")
    assert trades and all(t["side"] == "sell" for t in trades)
    (summary,) = events(receipt, "rebalanced")
    assert (summary["trades"], summary["failed"]) == (len(trades), len(failed))
    check_conservation(priced)


def test_rebalance_now_rules(fund: Chain) -> None:
    fails(fund, fund.tx("issuer-acme", "index_fund", "rebalance_now", [FUND]), "not_fund_manager")
    fails(fund, fund.tx("member-a", "index_fund", "rebalance_now", [FUND]), "not_fund_manager")
    fails(fund, fund.tx("fund-mgr", "index_fund", "rebalance_now", ["NOPE"]), "unknown_fund")
    fails(fund, fund.tx("fund-mgr", "index_fund", "rebalance_now", [FUND]), "fund_empty")


def test_a_rebalance_that_cannot_run_is_skipped_and_rescheduled(chain: Chain) -> None:
    ok(chain, create_fund_tx(chain, interval=2))  # no prices yet
    _, result = chain.run()
    _, result = chain.run()
    (task,) = result.receipts
    assert task.ok and events(task, "rebalance_skipped")[0]["code"] == "no_price"
    assert view(chain, "fund", fund=FUND)["next_rebalance"] == chain.ledger.head.height + 2
    publish(chain, PRICES)
    _, result = chain.run()
    (task,) = result.receipts
    assert events(task, "rebalance_skipped")[0]["code"] == "fund_empty"


# --- NAV at any height ----------------------------------------------------------------------------
def test_nav_at_any_height(priced: Chain) -> None:
    ok(priced, create_fund_tx(priced))
    h_fund = priced.ledger.head.height
    (receipt,) = ok(priced, create_units(priced, 1_000 * ONE_UNIT))
    h_created = priced.ledger.head.height
    created = events(receipt, "units_created")[0]
    seed = basket(priced)
    moved = dict(PRICES, HOOLI=255_00)
    publish(priced, moved)
    h_moved = priced.ledger.head.height
    priced.run()
    ok(priced, redeem(priced, 400 * ONE_UNIT))
    h_redeemed = priced.ledger.head.height
    after = basket(priced)

    assert view(priced, "nav", fund=FUND, height=h_fund)["nav"] is None  # nothing recorded yet
    at_created = view(priced, "nav", fund=FUND, height=h_created)
    assert at_created["recorded"] == {
        "height": h_created,
        "nav": created["nav"],
        "nav_per_unit": created["nav_per_unit"],
    }
    assert at_created["nav"] == created["nav"]
    # Between events: the basket as of the creation, priced at that height's oracle prices.
    between = view(priced, "nav", fund=FUND, height=h_moved)
    assert between["recorded"]["height"] == h_created
    assert between["nav"] == math.floor(exact_value(seed, moved))
    assert between["nav_per_unit"] == between["nav"] * ONE_UNIT // (1_000 * ONE_UNIT)
    at_redeemed = view(priced, "nav", fund=FUND, height=h_redeemed)
    assert at_redeemed["units"] == 600 * ONE_UNIT and at_redeemed["nav"] == math.floor(
        exact_value(after, moved)
    )
    now = view(priced, "nav", fund=FUND)
    assert now["nav"] == at_redeemed["nav"] and now["height"] == priced.ledger.head.height
    history = view(priced, "history", fund=FUND)["records"]
    assert [r["height"] for r in history] == [h_redeemed, h_created]
    page = view(priced, "history", fund=FUND, before=h_redeemed, limit=1)
    assert [r["height"] for r in page["records"]] == [h_created] and page["next_before"] == h_created


def test_views_refuse_bad_queries(fund: Chain) -> None:
    from chain.errors import ContractError

    for name, query, code in [
        ("fund", {"fund": "NOPE"}, "unknown_fund"),
        ("nav", {"fund": FUND, "height": "x"}, "bad_query"),
        ("history", {"fund": FUND, "limit": "0"}, "bad_query"),
        ("weights", {"fund": "NOPE"}, "unknown_fund"),
    ]:
        with pytest.raises(ContractError) as exc:
            view(fund, name, **query)
        assert exc.value.code == code


# --- properties ---------------------------------------------------------------------------------
OPS = st.lists(
    st.one_of(
        st.tuples(
            st.just("create"),
            st.sampled_from(["member-a", "member-b"]),
            st.integers(ONE_UNIT, 2_000 * ONE_UNIT),
        ),
        st.tuples(st.just("redeem"), st.sampled_from(["member-a", "member-b"]), st.integers(1, 100)),
        st.tuples(st.just("price"), st.sampled_from(CONSTITUENTS), st.integers(-400, 400)),
        st.tuples(st.just("rebalance"), st.just(""), st.just(0)),
        st.tuples(st.just("blocks"), st.just(""), st.integers(1, 3)),
    ),
    min_size=1,
    max_size=12,
)
HOUSE = {"member-a": "A-HOUSE", "member-b": "B-HOUSE"}


def _tx_for(chain: Chain, op: tuple[str, str, int], prices: dict[str, int]) -> SignedTx | None:
    kind, who, n = op
    if kind == "create":
        return create_units(chain, n, account=HOUSE[who], sender=who)
    if kind == "redeem":
        held = chain.balance(HOUSE[who], UNIT)[0]
        return redeem(chain, max(1, held * n // 100), account=HOUSE[who], sender=who)
    if kind == "price":
        prices[who] = prices[who] * (10_000 + n) // 10_000
        return chain.tx("oracle-1", "oracle", "submit", [who, prices[who]])
    if kind == "rebalance":
        return chain.tx("fund-mgr", "index_fund", "rebalance_now", [FUND])
    return None


@settings(max_examples=15)
@given(OPS)
def test_property_conservation_no_dilution_and_determinism(
    genesis: Genesis, ops: list[tuple[str, str, int]]
) -> None:
    chains = [Chain(Store.in_memory(), genesis) for _ in range(2)]
    for chain in chains:
        publish(chain, PRICES)
        stock_counterparty(chain)
        ok(chain, create_fund_tx(chain, interval=2))
    prices = dict(PRICES)
    for op in ops:
        roots, results = [], []
        value_before = exact_value(basket(chains[0]), prices), supply(chains[0], UNIT)
        price_copy = dict(prices)
        for k, chain in enumerate(chains):
            stx = _tx_for(chain, op, prices if k == 0 else price_copy)
            for _ in range(op[2] if op[0] == "blocks" else 1):
                block, result = chain.run(*([stx] if stx is not None else []))
            roots.append(block.header.state_root)
            results.append(result)
            check_conservation(chain)
        assert roots[0] == roots[1]
        chain = chains[0]
        units = supply(chain, UNIT)
        if op[0] in ("create", "redeem") and results[0].receipts[0].ok and value_before[1] and units:
            per_unit_before = value_before[0] / value_before[1]
            assert exact_value(basket(chain), prices) / units >= per_unit_before
        if units == 0:
            assert all(v == 0 for i, v in basket(chain).items() if i != "USD")


@pytest.mark.parametrize(
    ("sender", "method", "args", "code"),
    [
        (s, "create_fund", ["F2", "F2-U", CONSTITUENTS, 2_500, 10, "FUND-HOUSE", 100_00], "not_issuer")
        for s in [
            "member-a",
            "member-b",
            "xchg-alpha",
            "custodian",
            "oracle-1",
            "admin",
            "auditor-1",
            "validator-0",
        ]
    ]
    + [
        (s, "create_units", [FUND, "A-HOUSE", ONE_UNIT], "not_member")
        for s in ["xchg-alpha", "custodian", "oracle-1", "admin", "auditor-1", "validator-0"]
    ]
    + [
        (s, "create_units", [FUND, "A-HOUSE", ONE_UNIT], "not_account_owner")
        for s in ["member-b", "fund-mgr", "issuer-acme"]
    ]
    + [
        (s, "redeem_units", [FUND, "A-HOUSE", ONE_UNIT], "not_account_owner")
        for s in ["member-b", "fund-mgr", "issuer-acme"]
    ]
    + [
        (s, "redeem_units", [FUND, "A-HOUSE", ONE_UNIT], "not_member")
        for s in ["custodian", "oracle-1", "admin"]
    ]
    + [
        (s, "rebalance_now", [FUND], "not_fund_manager")
        for s in ["member-a", "issuer-acme", "admin", "custodian"]
    ],
)
def test_permissions(fund: Chain, sender: str, method: str, args: list[Any], code: str) -> None:
    ok(fund, create_units(fund, 1_000 * ONE_UNIT))
    fails(fund, fund.tx(sender, "index_fund", method, args), code)


# --- against a real node: the scenario and the CLI ----------------------------------------------
@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    directory = tmp_path_factory.mktemp("fund") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    thread = NodeThread(directory / "node0")
    thread.start()
    try:
        yield directory, thread.url
    finally:
        thread.stop()


@pytest.mark.io
def test_the_fund_scenario_runs_on_a_node(node: tuple[Path, str]) -> None:
    directory, url = node
    lines: list[str] = []
    run = ScenarioRun(Client(url), directory / "keys", directory, echo=lines.append)
    fund_scenario.run(run)
    assert any("NAV per unit" in line for line in lines), lines


def cli(node: tuple[Path, str], command: list[str]) -> tuple[int, str, str]:
    directory, url = node
    result = CliRunner().invoke(main, [*command, "--node", url, "--keys-dir", str(directory / "keys")])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.io
def test_fund_cli(node: tuple[Path, str]) -> None:
    prices = [[i, p] for i, p in sorted(PRICES.items())]
    directory, url = node
    client = Client(url)
    run = ScenarioRun(client, directory / "keys", directory, echo=lambda _: None)
    run.send("oracle-1", "oracle", "submit_many", [prices])
    fund = f"CLI{run.height}"
    code, out, err = cli(
        node,
        [
            "fund",
            "create",
            fund,
            "--unit",
            f"{fund}-U",
            "--constituents",
            ",".join(CONSTITUENTS),
            "--cap",
            "25",
            "--interval",
            "1000",
            "--counterparty",
            "FUND-HOUSE",
            "--initial-nav",
            "100.00",
            "--as",
            "fund-mgr",
        ],
    )
    assert code == 0, out + err
    assert f"fund {fund} created" in out
    code, out, err = cli(node, ["fund", "create-units", fund, "--account", "A-HOUSE", "--units", "500.5"])
    assert code == 0, out + err
    assert "created 500.5000" in out
    code, out, err = cli(node, ["fund", "show", fund, "--json"])
    doc = json.loads(out)
    assert doc["units_outstanding"] == 5_005_000 and doc["manager"] == "fund-mgr"
    code, out, err = cli(node, ["fund", "show", fund])
    assert code == 0 and "ACME" in out and "25.00%" in out
    code, out, err = cli(node, ["fund", "weights", fund])
    assert code == 0 and "capped" in out
    code, out, err = cli(node, ["fund", "nav", fund, "--json"])
    nav = json.loads(out)
    assert nav["units"] == 5_005_000 and nav["nav_per_unit"] >= 100_00
    code, out, err = cli(node, ["fund", "nav", fund])
    assert code == 0 and "NAV per unit" in out
    code, out, err = cli(node, ["fund", "nav", fund, "--history"])
    assert code == 0 and "height" in out
    code, out, err = cli(node, ["fund", "rebalance-now", fund, "--as", "member-a"])
    assert code == 1 and err.startswith("error: not_fund_manager:")
    code, out, err = cli(node, ["fund", "rebalance-now", fund, "--as", "fund-mgr"])
    assert code == 0, out + err
    assert "rebalanced" in out
    code, out, err = cli(node, ["fund", "redeem", fund, "--account", "A-HOUSE", "--units", "100.5"])
    assert code == 0 and "redeemed 100.5000" in out, out + err
    code, out, err = cli(node, ["fund", "redeem", fund, "--account", "A-HOUSE", "--units", "0.00001"])
    assert code == 2 and err.startswith("error: bad_amount:")
    code, out, err = cli(node, ["fund", "show", "NOPE"])
    assert code == 1 and err.startswith("error: unknown_fund:")
