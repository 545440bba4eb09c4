"""Margin, collateral and the default waterfall (contracts/margin.py), through real blocks.

Every test drives a dev-genesis chain with signed transactions and checks what a client sees:
receipts' codes and events, balances, the contract's state and its views. A property test runs
random histories of posts, withdrawals, contributions, positions, price moves, checks and
deadlines and checks after every block that assets are conserved, no balance is negative, the
collateral and guarantee-fund sub-ledgers equal their pool accounts, and every default's
waterfall adds up and took each layer only when the one before was exhausted; the same history
on a second chain gives the same state roots. The demo scenario and the CLI run against a real
node at the end.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
from chain.state import decode_value
from chain.store import Store
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.main import main
from cli.scenarios import ScenarioRun
from contracts import breakers, default_registry, margin
from contracts.api import Context
from contracts.margin import compute_pro_rata
from node.config import ConsensusSection
from tests.conftest import Chain
from tests.netutil import NodeThread

EX = "xchg-alpha"
USD = "USD"
POOL = margin.COLLATERAL_ACCOUNT
GF = margin.GUARANTEE_FUND_ACCOUNT
INSURANCE = margin.INSURANCE_ACCOUNT
DEFAULTS = margin.DEFAULTS_ACCOUNT
HOUSE = {"member-a": "A-HOUSE", "member-b": "B-HOUSE", "issuer-acme": "ACME-CORP", "fund-mgr": "FUND-HOUSE"}
REGISTRY = default_registry()


# --- fixtures and helpers ---------------------------------------------------------------------
@pytest.fixture(scope="module")
def quiet_genesis() -> Genesis:
    """The dev genesis with the periodic sweep pushed far away, so that a test's blocks hold
    only what it sends (the sweep has its own test)."""
    return parse_genesis(genesis_doc(**{"margin.sweep_blocks": 1_000_000}))


def genesis_doc(**params: int) -> dict[str, Any]:
    """The dev genesis document with ``params``; price moves never trip the circuit breaker
    (this file tests margin on moves far larger than a breaker allows)."""
    doc = devnet.dev_genesis_doc()
    if "move_bps" in breakers.PARAMS:
        params = {"breakers.move_bps": breakers.PARAMS["move_bps"].max, **params}
    doc["params"] = params
    return doc


@pytest.fixture
def chain(quiet_genesis: Genesis) -> Chain:
    return Chain(Store.in_memory(), quiet_genesis)


def head_ctx(chain: Chain) -> Context:
    head = chain.ledger.head
    return Context(
        chain.state(), CallEnv(chain.genesis.chain_id, head.height, head.time_ms, b""), "", "margin"
    )


def view(chain: Chain, name: str, **query: Any) -> Any:
    head = chain.ledger.head
    env = CallEnv(chain.genesis.chain_id, head.height, head.time_ms, b"")
    return REGISTRY.read_view(chain.state(), env, "margin", name, {k: str(v) for k, v in query.items()})


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    """One block of ``txs``, all included and ok; returns every receipt (tasks' too)."""
    block, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts[: len(txs)]] == [("ok", "")] * len(txs)
    return result.receipts


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` alone: included, failed with ``code``, no events and no writes but its nonce."""
    before = snapshot(chain)
    block, result = chain.run(stx)
    assert block.txs == (stx,)
    receipt = result.receipts[0]
    assert receipt.code == code, receipt.message
    assert receipt.events == ()
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert snapshot(chain) == before
    return receipt


def events(receipts: tuple[Receipt, ...], name: str) -> list[dict[str, Any]]:
    return [dict(fields) for r in receipts for (_, n, fields) in r.events if n == name]


def bal(chain: Chain, account: str, asset: str = USD) -> int:
    available, locked = chain.balance(account, asset)
    return available + locked


def price(chain: Chain, iid: str, value: int, oracle_id: str = "oracle-1") -> SignedTx:
    return chain.tx(oracle_id, "oracle", "submit", [iid, value])


def post(chain: Chain, member: str, amount: int, asset: str = USD, account: str | None = None) -> SignedTx:
    return chain.tx(member, "margin", "post", [account or HOUSE[member], asset, amount])


def withdraw(
    chain: Chain, member: str, amount: int, asset: str = USD, account: str | None = None
) -> SignedTx:
    return chain.tx(member, "margin", "withdraw", [account or HOUSE[member], asset, amount])


def contribute(chain: Chain, member: str, amount: int) -> SignedTx:
    return chain.tx(member, "margin", "contribute", [HOUSE[member], amount])


def open_position(chain: Chain, member: str, iid: str, quantity: int, at: int, sender: str = EX) -> SignedTx:
    return chain.tx(sender, "margin", "open_position", [member, iid, quantity, at])


def check(chain: Chain, member: str, sender: str = "oracle-2") -> SignedTx:
    return chain.tx(sender, "margin", "check", [member])


def run_until(chain: Chain, height: int) -> list[Receipt]:
    """Empty blocks until the head is at ``height``; the receipts of every task that ran."""
    out: list[Receipt] = []
    while chain.ledger.head.height < height:
        _, result = chain.run()
        out.extend(result.receipts)
    return out


def funded(chain: Chain, collateral: int = 20_000_00) -> None:
    """UMBRELLA at 100.00; member-a posts ``collateral``; every member contributes to the
    guarantee fund (member-a 5,000.00, member-b 10,000.00, issuer-acme 3,000.00, fund-mgr
    2,000.00); the exchange funds the insurance fund with 7,000.00."""
    ok(
        chain,
        price(chain, "UMBRELLA", 100_00),
        post(chain, "member-a", collateral),
        contribute(chain, "member-a", 5_000_00),
        contribute(chain, "member-b", 10_000_00),
        contribute(chain, "issuer-acme", 3_000_00),
        contribute(chain, "fund-mgr", 2_000_00),
        chain.tx(EX, "margin", "fund_insurance", ["XA-HOUSE", 7_000_00]),
    )


# --- pure rules ---------------------------------------------------------------------------------
def test_pro_rata_largest_remainder_example() -> None:
    shares = [("fund-mgr", 200_000), ("issuer-acme", 300_000), ("member-b", 1_000_000)]
    # 800,000 x (2, 3, 10) / 15 = 106,666.67, 160,000, 533,333.33: the odd unit goes to fund-mgr.
    assert compute_pro_rata(800_000, shares) == [106_667, 160_000, 533_333]
    assert compute_pro_rata(0, shares) == [0, 0, 0]
    assert compute_pro_rata(1_500_000, shares) == [200_000, 300_000, 1_000_000]
    # Ties in the remainder go by member id.
    assert compute_pro_rata(1, [("b", 1), ("a", 1)]) == [0, 1]


@given(st.lists(st.integers(1, 10**15), min_size=1, max_size=20), st.data())
def test_pro_rata_sums_exactly(weights: list[int], data: st.DataObject) -> None:
    total = data.draw(st.integers(0, sum(weights)))
    shares = [(f"m{i:02d}", w) for i, w in enumerate(weights)]
    out = compute_pro_rata(total, shares)
    assert sum(out) == total
    weight = sum(weights)
    for (_, w), share in zip(shares, out, strict=True):
        assert 0 <= share <= w
        assert abs(share * weight - total * w) < weight  # within one unit of the exact share


def test_rounding_rules() -> None:
    # A loss rounds up, a gain down (against the member).
    assert margin.compute_pnl(3, 100, 99, 1) == -1  # -0.3 -> -1
    assert margin.compute_pnl(3, 100, 101, 1) == 0  # +0.3 -> 0
    # Haircut value rounds down; the units to cover round up and cover.
    assert margin.compute_haircut_value(3, 333, 2_000, 0) == 799  # 3 x 333 x 0.8 = 799.2
    units = margin.compute_units_to_cover(800, 333, 2_000, 0)
    assert units == 4 and margin.compute_haircut_value(units, 333, 2_000, 0) >= 800
    assert margin.compute_haircut_value(units - 1, 333, 2_000, 0) < 800
    old = margin.Position("X", 3, 100)
    assert margin.compute_entry_price(old, 1, 103) == 101  # (300 + 103) / 4 = 100.75 -> 101


# --- collateral -------------------------------------------------------------------------------
def test_post_and_withdraw_collateral(chain: Chain) -> None:
    house = bal(chain, "A-HOUSE")
    (receipt,) = ok(chain, post(chain, "member-a", 20_000_00))
    assert receipt.event_fields(0) == {
        "member": "member-a",
        "account": "A-HOUSE",
        "asset": USD,
        "amount": 20_000_00,
        "collateral": 20_000_00,
    }
    assert (bal(chain, "A-HOUSE"), bal(chain, POOL)) == (house - 20_000_00, 20_000_00)
    assert chain.state().get(b"accounts/acct/" + POOL.encode())[0] == "@margin"
    status = view(chain, "status", member="member-a")
    assert (
        status["collateral_value"] == 20_000_00 and status["initial"] == 0 and status["excess"] == 20_000_00
    )
    ok(chain, withdraw(chain, "member-a", 5_000_00))
    assert (bal(chain, "A-HOUSE"), bal(chain, POOL)) == (house - 15_000_00, 15_000_00)
    fails(chain, withdraw(chain, "member-a", 15_000_01), "insufficient_collateral")
    fails(chain, withdraw(chain, "member-a", 1, asset="INITECH"), "insufficient_collateral")
    fails(chain, post(chain, "member-a", 1, asset="INITECH"), "ineligible_collateral")  # no haircut set
    fails(chain, post(chain, "member-a", 1, asset="NOPE"), "unknown_instrument")
    fails(chain, post(chain, "member-a", 10**13), "insufficient_balance")
    fails(chain, post(chain, "member-a", 1, account="NOPE"), "unknown_account")
    ok(chain, withdraw(chain, "member-a", 15_000_00))
    assert (
        chain.state().get(b"margin/coll/member-a/USD") is None
        and chain.state().get(b"margin/ncoll/member-a") is None
    )


def test_securities_collateral_counts_after_haircut(chain: Chain) -> None:
    fails(chain, chain.tx("admin", "margin", "set_haircut", [USD, 0]), "cash_haircut_fixed")
    ok(chain, chain.tx("admin", "margin", "set_haircut", ["INITECH", 2_000]), price(chain, "INITECH", 50_00))
    ok(chain, post(chain, "member-a", 1_000, asset="INITECH"))
    assert bal(chain, POOL, "INITECH") == 1_000
    status = view(chain, "status", member="member-a")
    # 1,000 x 50.00 x 80% = 40,000.00
    assert status["collateral"] == [
        {"asset": "INITECH", "amount": 1_000, "haircut_bps": 2_000, "value": 40_000_00}
    ]
    assert view(chain, "rates", instrument="INITECH") == {
        "instrument": "INITECH",
        "initial_bps": 1_500,
        "maintenance_bps": 1_000,
        "set": False,
        "haircut_bps": 2_000,
    }


# --- positions ----------------------------------------------------------------------------------
def test_open_position_needs_price_and_initial_margin(chain: Chain) -> None:
    fails(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00), "no_price")
    ok(chain, price(chain, "UMBRELLA", 100_00))
    fails(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00), "insufficient_margin")
    ok(chain, post(chain, "member-a", 15_000_00))  # exactly 15% of 100,000.00
    (receipt,) = ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    assert receipt.event_fields(0) == {
        "member": "member-a",
        "instrument": "UMBRELLA",
        "quantity": 1_000,
        "price": 100_00,
        "position": 1_000,
        "entry_price": 100_00,
    }
    status = view(chain, "status", member="member-a")
    assert (status["initial"], status["maintenance"], status["excess"]) == (15_000_00, 10_000_00, 0)
    fails(chain, open_position(chain, "member-a", "UMBRELLA", 1, 100_00), "insufficient_margin")
    fails(chain, withdraw(chain, "member-a", 1), "insufficient_margin")
    fails(chain, open_position(chain, "member-a", "UMBRELLA", -1, 100_00), "opposite_direction")
    fails(chain, open_position(chain, "member-a", "UMBRELLA", 0, 100_00), "bad_quantity")
    fails(chain, open_position(chain, "member-a", USD, 1, 100_00), "instrument_is_cash")
    fails(chain, open_position(chain, "custodian", "UMBRELLA", 1, 100_00), "unknown_member")
    # Adding at another price averages the entry (half up); a short is margined on |quantity|.
    ok(chain, post(chain, "member-a", 20_000_00))  # IM 30,000.00 + the 1,000.00 loss vs 100.50
    (receipt,) = ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 101_00))
    assert receipt.event_fields(0)["entry_price"] == 100_50
    ok(chain, price(chain, "INITECH", 10_00), open_position(chain, "member-a", "INITECH", -100, 10_00))
    assert chain.state().get(b"margin/pos/member-a/INITECH") == (-100, 10_00)
    assert chain.state().get(b"margin/open/member-a") == 2
    (receipt,) = ok(chain, chain.tx(EX, "margin", "close_position", ["member-a", "INITECH"]))
    assert receipt.event_fields(0) == {
        "member": "member-a",
        "instrument": "INITECH",
        "quantity": -100,
        "entry_price": 10_00,
    }
    fails(chain, chain.tx(EX, "margin", "close_position", ["member-a", "INITECH"]), "no_position")
    assert chain.state().get(b"margin/open/member-a") == 1


def test_set_rates(chain: Chain) -> None:
    fails(chain, chain.tx("admin", "margin", "set_rates", ["UMBRELLA", 1_000, 2_000]), "bad_rates")
    fails(chain, chain.tx("admin", "margin", "set_rates", [USD, 1_000, 500]), "instrument_is_cash")
    ok(chain, chain.tx("admin", "margin", "set_rates", ["UMBRELLA", 5_000, 2_500]))
    ok(chain, price(chain, "UMBRELLA", 100_00), post(chain, "member-a", 50_000_00))
    fails(chain, open_position(chain, "member-a", "UMBRELLA", 1_001, 100_00), "insufficient_margin")
    ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    assert view(chain, "status", member="member-a")["maintenance"] == 25_000_00


# --- calls --------------------------------------------------------------------------------------
def test_margin_call_then_met(chain: Chain) -> None:
    funded(chain)
    ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    # At 90.00: MM = 9,000 + loss 10,000 = 19,000 <= 20,000: no call.
    receipts = ok(chain, price(chain, "UMBRELLA", 90_00), check(chain, "member-a"))
    assert events(receipts, "margin_checked")[0]["outcome"] == "ok"
    # At 85.00: MM = 8,500 + 15,000 = 23,500 > 20,000: a call for IM (12,750 + 15,000) - 20,000.
    block, result = chain.run(price(chain, "UMBRELLA", 85_00), check(chain, "member-a"))
    (call,) = events(result.receipts, "margin_call")
    assert call == {
        "member": "member-a",
        "call_id": 1,
        "collateral": 20_000_00,
        "maintenance": 23_500_00,
        "initial": 27_750_00,
        "top_up": 7_750_00,
        "due_height": block.height + 10,
    }
    assert view(chain, "status", member="member-a")["call"] == {
        "id": 1,
        "opened_height": block.height,
        "due_height": block.height + 10,
        "top_up": 7_750_00,
    }
    fails(chain, withdraw(chain, "member-a", 1), "margin_call_open")
    receipts = ok(chain, check(chain, "member-a"))
    assert events(receipts, "margin_checked")[0]["outcome"] == "called"
    # A post that brings collateral to IM clears it; the deadline then finds nothing to do.
    receipts = ok(chain, post(chain, "member-a", 7_749_99))
    assert events(receipts, "margin_call_met") == []
    receipts = ok(chain, post(chain, "member-a", 1))
    assert events(receipts, "margin_call_met") == [
        {"member": "member-a", "call_id": 1, "collateral": 27_750_00, "initial": 27_750_00}
    ]
    tasks = run_until(chain, block.height + 10)
    assert [(r.code, r.events) for r in tasks] == [("ok", ())]
    assert view(chain, "status", member="member-a")["call"] is None
    assert chain.state().get(b"margin/pos/member-a/UMBRELLA") == (1_000, 100_00)


def test_unmet_call_defaults_at_deadline_from_collateral(chain: Chain) -> None:
    funded(chain)
    ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    block, _ = chain.run(price(chain, "UMBRELLA", 85_00), check(chain, "member-a"))
    pool, gf, insurance = bal(chain, POOL), bal(chain, GF), bal(chain, INSURANCE)
    tasks = run_until(chain, block.height + 10)
    (task,) = tasks
    assert task.ok
    steps = events(tasks, "waterfall_step")
    assert [(s["layer"], s["amount"], s["remaining"]) for s in steps] == [
        ("defaulter_margin", 15_000_00, 0), ("defaulter_guarantee_fund", 0, 0),
        ("insurance_fund", 0, 0), ("surviving_members", 0, 0),
    ]  # fmt: skip
    assert events(tasks, "member_defaulted") == [
        {"default_id": 1, "member": "member-a", "call_id": 1, "loss": 15_000_00, "uncovered": 0}
    ]
    assert events(tasks, "position_liquidated")[0]["pnl"] == -15_000_00
    assert (bal(chain, POOL), bal(chain, DEFAULTS), bal(chain, GF), bal(chain, INSURANCE)) == (
        pool - 15_000_00,
        15_000_00,
        gf,
        insurance,
    )
    assert (
        chain.state().get(b"margin/pos/member-a/UMBRELLA") is None
        and chain.state().get(b"margin/call/member-a") is None
    )
    report = view(chain, "default", id=1)
    assert report["positions"] == [
        {
            "instrument": "UMBRELLA",
            "quantity": 1_000,
            "entry_price": 100_00,
            "price": 85_00,
            "pnl": -15_000_00,
        }
    ]
    assert report["collateral_taken"] == [{"asset": USD, "amount": 15_000_00, "value": 15_000_00}]
    assert view(chain, "defaults")["defaults"] == [report]
    # What is left of the defaulter's collateral is its own again.
    ok(chain, withdraw(chain, "member-a", 5_000_00))
    # An admin pays the collected loss on to the counterparties.
    fails(
        chain,
        chain.tx("admin", "margin", "disburse", ["B-HOUSE", USD, 15_000_01]),
        "insufficient_default_funds",
    )
    b_house = bal(chain, "B-HOUSE")
    ok(chain, chain.tx("admin", "margin", "disburse", ["B-HOUSE", USD, 15_000_00]))
    assert (bal(chain, DEFAULTS), bal(chain, "B-HOUSE")) == (0, b_house + 15_000_00)


@pytest.mark.parametrize(
    ("crash_price", "layers", "charges", "uncovered"),
    [
        # Loss 40,000.00: collateral 20,000, own fund 5,000, insurance 7,000, then 8,000.00 from
        # the survivors' 15,000.00 pro rata (2 : 3 : 10; the odd cent to fund-mgr).
        (
            60_00,
            [20_000_00, 5_000_00, 7_000_00, 8_000_00],
            {"fund-mgr": 1_066_67, "issuer-acme": 1_600_00, "member-b": 5_333_33},
            0,
        ),
        # Loss 99,990.00: every layer exhausted, 52,990.00 uncovered.
        (
            1,
            [20_000_00, 5_000_00, 7_000_00, 15_000_00],
            {"fund-mgr": 2_000_00, "issuer-acme": 3_000_00, "member-b": 10_000_00},
            52_990_00,
        ),
        # Loss 23,000.00: part of the own contribution covers the rest; nothing further is touched.
        (77_00, [20_000_00, 3_000_00, 0, 0], {}, 0),
    ],
)
def test_waterfall_order(
    chain: Chain, crash_price: int, layers: list[int], charges: dict[str, int], uncovered: int
) -> None:
    funded(chain)
    ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    before = {m: bal(chain, a) for m, a in HOUSE.items()}
    block, result = chain.run(price(chain, "UMBRELLA", crash_price), check(chain, "member-a"))
    assert events(result.receipts, "margin_call")
    tasks = run_until(chain, block.height + 10)
    loss = 1_000 * (100_00 - crash_price)
    steps = events(tasks, "waterfall_step")
    assert [s["layer"] for s in steps] == list(margin.LAYERS)
    assert [s["amount"] for s in steps] == layers
    assert {c["member"]: c["amount"] for c in events(tasks, "guarantee_fund_charged")} == charges
    assert sum(layers) + uncovered == loss
    report = view(chain, "default", id=1)
    assert (report["loss"], report["uncovered"]) == (loss, uncovered)
    assert [w["amount"] for w in report["waterfall"]] == layers
    assert bal(chain, DEFAULTS) == sum(layers)
    assert bal(chain, INSURANCE) == 7_000_00 - layers[2]
    assert bal(chain, GF) == 20_000_00 - layers[1] - layers[3]
    funds = view(chain, "funds")
    assert funds["guarantee_fund"]["total"] == bal(chain, GF)
    assert sum(c["amount"] for c in funds["guarantee_fund"]["contributions"]) == bal(chain, GF)
    contributions = {
        "member-a": 5_000_00,
        "member-b": 10_000_00,
        "issuer-acme": 3_000_00,
        "fund-mgr": 2_000_00,
    }
    for c in funds["guarantee_fund"]["contributions"]:
        assert c["amount"] == contributions[c["member"]] - charges.get(c["member"], 0) - (
            layers[1] if c["member"] == "member-a" else 0
        )
    # Members' own accounts are never touched by a default.
    assert {m: bal(chain, a) for m, a in HOUSE.items()} == before


def test_securities_collateral_is_taken_in_whole_units(chain: Chain) -> None:
    funded(chain, collateral=10_000_00)
    ok(chain, chain.tx("admin", "margin", "set_haircut", ["INITECH", 2_000]), price(chain, "INITECH", 33_33))
    ok(chain, post(chain, "member-a", 1_000, asset="INITECH"))  # 1,000 x 33.33 x 80% = 26,664.00
    ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    # At 70.00: MM 7,000 + loss 30,000 = 37,000.00 > 36,664.00 of collateral.
    block, result = chain.run(price(chain, "UMBRELLA", 70_00), check(chain, "member-a"))
    assert events(result.receipts, "margin_call")
    tasks = run_until(chain, block.height + 10)
    # Loss 30,000.00: cash 10,000.00, then 20,000.00 of INITECH at 26.664 each: 751 units
    # (750 would be worth 19,998.00).
    assert events(tasks, "collateral_liquidated") == [
        {"default_id": 1, "member": "member-a", "asset": USD, "amount": 10_000_00, "value": 10_000_00},
        {"default_id": 1, "member": "member-a", "asset": "INITECH", "amount": 751, "value": 20_000_00},
    ]
    assert [s["amount"] for s in events(tasks, "waterfall_step")] == [30_000_00, 0, 0, 0]
    assert (bal(chain, DEFAULTS, "INITECH"), bal(chain, POOL, "INITECH")) == (751, 249)
    assert chain.state().get(b"margin/coll/member-a/INITECH") == 249


def test_a_stale_price_postpones_the_default(quiet_genesis: Genesis) -> None:
    doc = genesis_doc(**{"margin.sweep_blocks": 1_000_000, "margin.margin_call_blocks": 120})
    chain = Chain(Store.in_memory(), parse_genesis(doc))
    funded(chain)
    ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
    block, _ = chain.run(price(chain, "UMBRELLA", 85_00), check(chain, "member-a"))
    # The price goes stale (100 blocks) before the deadline task can value the position: the
    # task fails, the call stays open and overdue, the position stays.
    tasks = run_until(chain, block.height + 120)
    assert [r.code for r in tasks] == ["no_price"]
    assert view(chain, "status", member="member-a")["call"]["due_height"] == block.height + 120
    assert view(chain, "status", member="member-a")["no_price"] == ["UMBRELLA"]
    assert chain.state().get(b"margin/pos/member-a/UMBRELLA") is not None
    fails(chain, check(chain, "member-a"), "no_price")
    # With a price again, anyone's check defaults the overdue member.
    receipts = ok(chain, price(chain, "UMBRELLA", 85_00), check(chain, "member-a"))
    assert events(receipts, "margin_checked")[0]["outcome"] == "defaulted"
    assert events(receipts, "member_defaulted")[0]["loss"] == 15_000_00


def test_sweep_calls_without_anyone_asking(genesis: Genesis) -> None:
    chain = Chain(Store.in_memory(), genesis)  # sweep every 10 blocks (the default)
    ok(
        chain,
        price(chain, "UMBRELLA", 100_00),
        post(chain, "member-a", 20_000_00),
        post(chain, "member-b", 20_000_00),
    )
    block, _ = chain.run(
        open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00),
        open_position(chain, "member-b", "UMBRELLA", -1_000, 100_00),
    )
    ok(chain, price(chain, "UMBRELLA", 85_00))
    tasks = run_until(chain, block.height + 10)
    assert [r.code for r in tasks] == ["ok"]
    checked = {e["member"]: e["outcome"] for e in events(tasks, "margin_checked")}
    assert checked == {"member-a": "call", "member-b": "ok"}  # the short gained
    # The sweep reschedules itself while positions are open and stops when none remain.
    ok(chain, chain.tx(EX, "margin", "close_position", ["member-b", "UMBRELLA"]))
    tasks = run_until(chain, block.height + 20)
    assert events(tasks, "member_defaulted") and events(tasks, "margin_checked")
    assert chain.state().get(b"margin/open/member-a") is None
    assert chain.state().get(b"margin/sweep") is None
    assert run_until(chain, block.height + 40) == []


def test_sweep_pages_through_members() -> None:
    chain = Chain(Store.in_memory(), parse_genesis(genesis_doc(**{"margin.sweep_members_max": 1})))
    ok(
        chain,
        price(chain, "UMBRELLA", 100_00),
        post(chain, "member-a", 20_000_00),
        post(chain, "member-b", 20_000_00),
    )
    block, _ = chain.run(
        open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00),
        open_position(chain, "member-b", "UMBRELLA", 1_000, 100_00),
    )
    checked = []
    for height in range(block.height + 1, block.height + 13):
        _, result = chain.run()
        checked += [(height, e["member"]) for e in events(result.receipts, "margin_checked")]
    # One member per block: member-a at h+10, member-b at h+11; the next round starts at h+21.
    assert checked == [(block.height + 10, "member-a"), (block.height + 11, "member-b")]


def test_fund_insurance(chain: Chain) -> None:
    fails(chain, chain.tx(EX, "margin", "fund_insurance", ["A-HOUSE", 1]), "not_account_owner")
    (receipt,) = ok(chain, chain.tx(EX, "margin", "fund_insurance", ["XA-HOUSE", 7_000_00]))
    assert receipt.event_fields(0) == {"account": "XA-HOUSE", "amount": 7_000_00, "balance": 7_000_00}
    # A custodian may also deposit straight into the (now open) insurance account.
    ok(chain, chain.tx("custodian", "custody", "deposit", [INSURANCE, USD, 1_00, "ins-wire-1"]))
    assert view(chain, "funds")["insurance_fund"] == 7_001_00


# --- permissions --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("sender", "method", "args", "code"),
    [
        ("xchg-alpha", "post", ["XA-HOUSE", USD, 1], "not_member"),
        ("member-b", "post", ["A-HOUSE", USD, 1], "not_account_owner"),
        ("oracle-1", "withdraw", ["O1-HOUSE", USD, 1], "not_member"),
        ("member-b", "withdraw", ["A-HOUSE", USD, 1], "not_account_owner"),
        ("custodian", "contribute", ["A-HOUSE", 1], "not_member"),
        ("member-b", "contribute", ["A-HOUSE", 1], "not_account_owner"),
        ("member-b", "fund_insurance", ["A-HOUSE", 1], "not_account_owner"),
        ("member-a", "open_position", ["member-a", "UMBRELLA", 1, 1], "not_exchange"),
        ("oracle-1", "open_position", ["member-a", "UMBRELLA", 1, 1], "not_exchange"),
        ("member-a", "close_position", ["member-a", "UMBRELLA"], "not_exchange"),
        ("member-a", "set_rates", ["UMBRELLA", 2, 1], "not_admin"),
        ("xchg-alpha", "set_rates", ["UMBRELLA", 2, 1], "not_admin"),
        ("member-a", "set_haircut", ["INITECH", 1], "not_admin"),
        ("xchg-alpha", "disburse", ["XA-HOUSE", USD, 1], "not_admin"),
        ("member-a", "disburse", ["A-HOUSE", USD, 1], "not_admin"),
    ],
)
def test_permissions(chain: Chain, sender: str, method: str, args: list[Any], code: str) -> None:
    fails(chain, chain.tx(sender, "margin", method, args), code)


ROLE_OF_METHOD = {
    "post": ("member", ["A-HOUSE", USD, 1]), "withdraw": ("member", ["A-HOUSE", USD, 1]),
    "contribute": ("member", ["A-HOUSE", 1]), "open_position": ("exchange", ["member-a", "UMBRELLA", 1, 1]),
    "close_position": ("exchange", ["member-a", "UMBRELLA"]), "set_rates": ("admin", ["UMBRELLA", 2, 1]),
    "set_haircut": ("admin", ["INITECH", 1]), "disburse": ("admin", ["A-HOUSE", USD, 1]),
}  # fmt: skip


@settings(max_examples=20)
@given(st.sampled_from(sorted(devnet.participants(4))), st.sampled_from(sorted(ROLE_OF_METHOD)))
def test_every_restricted_method_refuses_every_other_role(
    quiet_genesis: Genesis, sender: str, method: str
) -> None:
    role, args = ROLE_OF_METHOD[method]
    if role in devnet.participants(4)[sender][0]:
        return  # holds the role: other tests cover what it may do
    chain = Chain(Store.in_memory(), quiet_genesis)
    fails(chain, chain.tx(sender, "margin", method, args), f"not_{role}")


def test_anyone_may_check(chain: Chain) -> None:
    for sender in ("oracle-3", "auditor-1", "member-b"):
        receipts = ok(chain, check(chain, "member-a", sender=sender))
        assert events(receipts, "margin_checked") == [
            {"member": "member-a", "outcome": "ok", "collateral": 0, "initial": 0, "maintenance": 0}
        ]


def test_views_refuse_bad_queries(chain: Chain) -> None:
    from chain.errors import ContractError

    for name, query, code in (
        ("status", {}, "bad_query"),
        ("default", {"id": "x"}, "bad_query"),
        ("default", {"id": "9"}, "not_found"),
        ("rates", {"instrument": "NOPE"}, "unknown_instrument"),
    ):
        with pytest.raises(ContractError) as exc:
            view(chain, name, **query)
        assert exc.value.code == code


# --- properties ---------------------------------------------------------------------------------
MEMBERS = ["member-a", "member-b", "issuer-acme"]
step_st = st.one_of(
    st.tuples(
        st.just("post"),
        st.sampled_from(MEMBERS),
        st.sampled_from([USD, USD, "INITECH"]),
        st.integers(1, 5_000_000),
    ),
    st.tuples(
        st.just("withdraw"),
        st.sampled_from(MEMBERS),
        st.sampled_from([USD, "INITECH"]),
        st.integers(1, 5_000_000),
    ),
    st.tuples(st.just("contribute"), st.sampled_from(MEMBERS), st.integers(1, 2_000_000)),
    st.tuples(st.just("insure"), st.integers(1, 2_000_000)),
    st.tuples(
        st.just("open"),
        st.sampled_from(MEMBERS),
        st.sampled_from(["UMBRELLA", "INITECH"]),
        st.integers(-300, 300),
        st.sampled_from([50_00, 100_00, 120_00]),
    ),
    st.tuples(st.just("close"), st.sampled_from(MEMBERS), st.sampled_from(["UMBRELLA", "INITECH"])),
    st.tuples(
        st.just("price"),
        st.sampled_from(["UMBRELLA", "INITECH"]),
        st.sampled_from([1, 20_00, 50_00, 70_00, 80_00, 90_00, 100_00, 150_00]),
    ),
    st.tuples(st.just("check"), st.sampled_from(MEMBERS)),
    st.tuples(st.just("wait"), st.integers(1, 11)),
)


def _step_tx(chain: Chain, step: tuple[Any, ...]) -> SignedTx | None:
    kind = step[0]
    if kind == "post":
        return post(chain, step[1], step[3], asset=step[2])
    if kind == "withdraw":
        return withdraw(chain, step[1], step[3], asset=step[2])
    if kind == "contribute":
        return contribute(chain, step[1], step[2])
    if kind == "insure":
        return chain.tx(EX, "margin", "fund_insurance", ["XA-HOUSE", step[1]])
    if kind == "open":
        return open_position(chain, step[1], step[2], step[3], step[4])
    if kind == "close":
        return chain.tx(EX, "margin", "close_position", [step[1], step[2]])
    if kind == "price":
        return price(chain, step[1], step[2])
    if kind == "check":
        return check(chain, step[1])
    return None


def _setup(chain: Chain) -> None:
    """Collateral, contributions, insurance and three open positions, so that random price
    moves make calls and defaults."""
    ok(
        chain,
        chain.tx("admin", "margin", "set_haircut", ["INITECH", 3_000]),
        price(chain, "UMBRELLA", 100_00),
        price(chain, "INITECH", 100_00),
        post(chain, "member-a", 30_000_00),
        post(chain, "member-b", 30_000_00),
        post(chain, "issuer-acme", 20_000_00),
        *[contribute(chain, m, 5_000_00) for m in MEMBERS],
        chain.tx(EX, "margin", "fund_insurance", ["XA-HOUSE", 3_000_00]),
    )
    ok(
        chain,
        open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00),
        open_position(chain, "member-b", "UMBRELLA", -1_000, 100_00),
        open_position(chain, "issuer-acme", "INITECH", 500, 100_00),
    )


def _run_step(chain: Chain, step: tuple[Any, ...]) -> list[Receipt]:
    stx = _step_tx(chain, step)
    if stx is None:
        return run_until(chain, chain.ledger.head.height + step[1])
    _, result = chain.run(stx)
    return list(result.receipts)


def _check_invariants(chain: Chain, receipts: list[Receipt]) -> None:
    state = chain.state()
    totals: dict[str, int] = {}
    for key, value in chain.store.iterate_state(b"accounts/bal/"):
        available, locked = decode_value(value)
        assert available >= 0 and locked >= 0
        asset = key.decode().rsplit("/", 1)[1]
        totals[asset] = totals.get(asset, 0) + available + locked
    for key, value in chain.store.iterate_state(b"custody/supply/"):
        assert totals.get(key.decode().rsplit("/", 1)[1], 0) == decode_value(value)
    sub: dict[str, int] = {}
    for key, value in chain.store.iterate_state(b"margin/coll/"):
        asset = key.decode().rsplit("/", 1)[1]
        sub[asset] = sub.get(asset, 0) + decode_value(value)
    for asset in (USD, "INITECH"):
        assert sub.get(asset, 0) == bal(chain, POOL, asset)
    gf = [decode_value(v) for _, v in chain.store.iterate_state(b"margin/gf/")]
    assert sum(gf) == bal(chain, GF) and all(c > 0 for c in gf)
    assert len(gf) == (state.get(b"margin/gf_count") or 0)
    for member in MEMBERS:
        held = [k for k, _ in chain.store.iterate_state(f"margin/pos/{member}/".encode())]
        assert (state.get(f"margin/open/{member}".encode()) or 0) == len(held)
    defaulted = [e for e in events(tuple(receipts), "member_defaulted")]
    for d in defaulted:
        report = view(chain, "default", id=d["default_id"])
        amounts = [w["amount"] for w in report["waterfall"]]
        assert sum(amounts) + report["uncovered"] == report["loss"]
        assert sum(c["amount"] for c in report["guarantee_fund_charges"]) == amounts[3]
        # Each layer is used only when the previous one is exhausted.
        if any(amounts[1:]) or report["uncovered"]:
            assert (state.get(f"margin/coll/{d['member']}/USD".encode()) or 0) == 0
        if any(amounts[2:]) or report["uncovered"]:
            assert (state.get(f"margin/gf/{d['member']}".encode()) or 0) == 0
        if amounts[3] or report["uncovered"]:
            assert bal(chain, INSURANCE) == 0
        if report["uncovered"]:
            assert bal(chain, GF) == 0


@settings(max_examples=30)
@given(st.lists(step_st, min_size=1, max_size=25))
def test_conservation_and_waterfall_after_any_history(
    quiet_genesis: Genesis, steps: list[tuple[Any, ...]]
) -> None:
    chain = Chain(Store.in_memory(), quiet_genesis)
    _setup(chain)
    for step in steps:
        receipts = _run_step(chain, step)
        _check_invariants(chain, receipts)


@settings(max_examples=8)
@given(st.lists(step_st, min_size=1, max_size=15))
def test_same_history_same_state_root(steps: list[tuple[Any, ...]]) -> None:
    genesis = parse_genesis(genesis_doc())  # with the periodic sweep
    chains = [Chain(Store.in_memory(), genesis) for _ in range(2)]
    for chain in chains:
        _setup(chain)
        for step in steps:
            _run_step(chain, step)
    assert chains[0].ledger.head.state_root == chains[1].ledger.head.state_root
    assert chains[0].ledger.head.hash() == chains[1].ledger.head.hash()


def test_a_default_history_is_deterministic(quiet_genesis: Genesis) -> None:
    roots = []
    for _ in range(2):
        chain = Chain(Store.in_memory(), quiet_genesis)
        funded(chain)
        ok(chain, open_position(chain, "member-a", "UMBRELLA", 1_000, 100_00))
        block, _ = chain.run(price(chain, "UMBRELLA", 60_00), check(chain, "member-a"))
        run_until(chain, block.height + 10)
        roots.append(chain.ledger.head.state_root)
    assert roots[0] == roots[1]


# --- against a real node: the scenario and the CLI --------------------------------------------
@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, NodeThread]]:
    directory = tmp_path_factory.mktemp("margin") / "net"
    # FAST (tests/test_cli.py) with quick heartbeats, so the margin call's deadline comes soon.
    init_network(
        directory, validators=1, base_port=0, consensus=ConsensusSection(commit_wait_ms=10, heartbeat_ms=300)
    )
    nt = NodeThread(directory / "node0")
    nt.start()
    try:
        yield directory, nt
    finally:
        nt.stop()


@pytest.mark.io
def test_scenario_runs_on_a_node(node: tuple[Path, NodeThread]) -> None:
    from cli.scenarios import margin as scenario

    directory, nt = node
    lines: list[str] = []
    s = ScenarioRun(Client(nt.url), directory / "keys", directory, echo=lines.append)
    scenario.run(s)
    text = "\n".join(lines)
    assert "margin call" in text and "waterfall" in text and "defaulted" in text


@pytest.mark.io
def test_cli_commands(node: tuple[Path, NodeThread]) -> None:
    directory, nt = node
    runner = CliRunner()

    def cli(*args: str) -> Any:
        result = runner.invoke(main, [*args, "--node", nt.url, "--keys-dir", str(directory / "keys")])
        return result

    def good(*args: str) -> str:
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return str(result.stdout)

    r = cli(
        "margin", "post", "--account", "B-HOUSE", "--asset", "USD", "--amount", "1000.001", "--as", "member-b"
    )
    assert r.exit_code == 2 and r.stderr.startswith("error: bad_amount:")
    out = good(
        "margin", "post", "--account", "B-HOUSE", "--asset", "USD", "--amount", "30000.00", "--as", "member-b"
    )
    assert out.startswith("member-b posted USD 30,000.00 from B-HOUSE")
    good("margin", "fund", "contribute", "--account", "B-HOUSE", "--amount", "1000", "--as", "member-b")
    good("margin", "fund", "insure", "--account", "XA-HOUSE", "--amount", "500", "--as", "xchg-alpha")
    r = cli(
        "margin",
        "position",
        "open",
        "--member",
        "member-b",
        "--instrument",
        "STARK",
        "--qty",
        "-100",
        "--price",
        "50.00",
    )
    assert r.exit_code == 1 and r.stderr.startswith("error: no_price:"), r.output
    good("call", "oracle", "submit", '["STARK", 5000]', "--as", "oracle-1")
    out = good(
        "margin",
        "position",
        "open",
        "--member",
        "member-b",
        "--instrument",
        "STARK",
        "--qty",
        "-100",
        "--price",
        "50.00",
    )
    assert "member-b STARK -100 at 50.00" in out and "position -100, entry price 50.00" in out
    status = json.loads(good("margin", "status", "member-b", "--json"))
    assert status["positions"][0]["quantity"] == -100 and status["initial"] == 750_00
    text = good("margin", "status", "member-b")
    assert "initial margin" in text and "STARK" in text and "750.00" in text
    out = good("margin", "check", "member-b", "--as", "oracle-2")
    assert out.startswith("member-b: ok - collateral ")
    good(
        "margin",
        "withdraw",
        "--account",
        "B-HOUSE",
        "--asset",
        "USD",
        "--amount",
        "100.00",
        "--as",
        "member-b",
    )
    funds = json.loads(good("margin", "fund", "show", "--json"))
    assert funds["guarantee_fund"]["total"] >= 1_000_00 and funds["insurance_fund"] >= 500_00
    assert "guarantee fund  USD" in good("margin", "fund", "show")
    good("margin", "position", "close", "--member", "member-b", "--instrument", "STARK")
    assert good("margin", "rates", "show", "STARK").startswith(
        "STARK: initial 15.00%, maintenance 10.00% (default); collateral haircut not eligible"
    )
    r = cli(
        "margin",
        "rates",
        "set",
        "--instrument",
        "STARK",
        "--initial-bps",
        "2000",
        "--maintenance-bps",
        "1500",
        "--as",
        "member-b",
    )
    assert r.exit_code == 1 and r.stderr.startswith("error: not_admin:")
    good(
        "margin",
        "rates",
        "set",
        "--instrument",
        "STARK",
        "--initial-bps",
        "2000",
        "--maintenance-bps",
        "1500",
    )
    good("margin", "rates", "haircut", "--asset", "STARK", "--bps", "2500")
    assert "20.00%" in good("margin", "rates", "show", "STARK") and "25.00%" in good(
        "margin", "rates", "show", "STARK"
    )
    # The scenario's default (test_scenario_runs_on_a_node ran first on this node).
    reports = json.loads(good("margin", "defaults", "--json"))["defaults"]
    assert reports and reports[0]["member"] == "member-b"
    text = good("margin", "default", str(reports[0]["id"]))
    assert text.startswith(f"default {reports[0]['id']}: member-b") and "waterfall defaulter_margin" in text
