"""Settlement cycles with multilateral netting (contracts/cycles.py), through real blocks.

The chain here has 20-second business days (genesis param ``cycles.day_ms``) and 1-second
blocks, so day 0 starts at genesis, a T+0 cycle closes at 15 s (75% of the day) and a T+1 cycle
at 35 s. Tests drive it as a client would (signed transactions, committed blocks, the close task
in a block's receipts) and check what a client sees: receipt codes and events, balances, the
cycle's report and views. Properties: netting ends in exactly the balances of gross settlement
whenever gross settlement succeeds; the fail rule matches an independent (naive) unwind;
supply equals the sum of balances and no balance goes negative; the same transactions give the
same state root; only an exchange may submit. The last tests run the ``netting`` scenario and
the ``clearchain cycle`` commands against a real node.
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
from chain.store import Store
from chain.tx import SignedTx
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.localnet.network import init_network
from cli.main import main
from cli.scenarios import ScenarioRun
from contracts import default_registry
from contracts.cycles import compute_close_at, compute_netting_bps
from contracts.money import consideration
from tests.conftest import Chain
from tests.netutil import NodeThread
from tests.test_cli import FAST

DAY_MS = 20_000
G = devnet.GENESIS_TIME_MS
DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}
ASSETS = [i["id"] for i in devnet.INSTRUMENTS]
ACCOUNTS = [a["id"] for a in devnet.all_accounts()]
MEMBER_OF = {"A": "member-a", "B": "member-b"}


def make_genesis(**params: int) -> Genesis:
    doc = devnet.dev_genesis_doc()
    doc["params"] = {"cycles.day_ms": DAY_MS, **{f"cycles.{k}": v for k, v in params.items()}}
    return parse_genesis(doc)


GENESIS = make_genesis()


@pytest.fixture
def chain() -> Chain:
    return Chain(Store.in_memory(), GENESIS)


# --- helpers ----------------------------------------------------------------------------------
def ticket(
    tid: str, buyer: str, seller: str, iid: str, qty: int, price: int, tplus: int = 0, trade_date: int = DAY
) -> list[Any]:
    return [tid, buyer, seller, iid, qty, price, trade_date, tplus]


def submit(chain: Chain, *t: Any, sender: str = "xchg-alpha") -> SignedTx:
    return chain.tx(sender, "cycles", "submit", list(t))


def batch(chain: Chain, tickets: list[list[Any]], sender: str = "xchg-alpha") -> SignedTx:
    return chain.tx(sender, "cycles", "submit_batch", [tickets])


def run_ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    _, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == []
    tx_receipts = result.receipts[: len(txs)]
    assert [(r.code, r.message) for r in tx_receipts] == [("ok", "")] * len(txs)
    return tuple(result.receipts)


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = snapshot(chain)
    block, result = chain.run(stx)
    (receipt,) = result.receipts
    assert block.txs == (stx,)
    assert receipt.code == code, receipt.message
    assert receipt.events == ()
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert snapshot(chain) == before
    return receipt


def rejected(chain: Chain, stx: SignedTx, code: str) -> None:
    block, result = chain.run(stx)
    assert block.txs == () and [r.error.code for r in result.rejected] == [code]
    chain.nonces[stx.tx.sender] -= 1


def advance_to(chain: Chain, time_ms: int) -> tuple[Receipt, ...]:
    """Produce one empty block at block time ``time_ms`` (absolute); returns its task receipts."""
    interval = chain.producer.block_interval_ms
    chain.producer.block_interval_ms = time_ms - chain.ledger.head.time_ms
    assert chain.producer.block_interval_ms > 0
    try:
        _, result = chain.run()
    finally:
        chain.producer.block_interval_ms = interval
    return tuple(result.receipts)


def close_of(date: int) -> int:
    """Block time at which cycle ``date`` closes on this chain (75% into the day)."""
    return compute_close_at(date, DAY_MS, 7_500)


def today(chain: Chain) -> int:
    return chain.ledger.head.time_ms // DAY_MS


def view(chain: Chain, name: str, **query: Any) -> Any:
    env = CallEnv(chain.genesis.chain_id, chain.ledger.head.height, chain.ledger.head.time_ms, b"")
    return default_registry().read_view(
        chain.state(), env, "cycles", name, {k: str(v) for k, v in query.items()}
    )


def events(receipt: Receipt, name: str) -> list[dict[str, Any]]:
    return [dict(f) for c, n, f in receipt.events if n == name]


def open_account(chain: Chain, account: str) -> None:
    member = MEMBER_OF[account[0]]
    run_ok(chain, chain.tx(member, "accounts", "open", [account, "client", "client-" + account]))


def avail(chain: Chain, account: str, asset: str) -> int:
    return chain.balance(account, asset)[0]


def all_balances(chain: Chain) -> dict[tuple[str, str], tuple[int, int]]:
    out = {}
    for key, value in chain.state().iterate(b"accounts/bal/"):
        account, asset = key[len(b"accounts/bal/") :].decode().split("/")
        out[(account, asset)] = tuple(value)
    return out


def check_conservation(chain: Chain) -> None:
    totals: dict[str, int] = {}
    for (_, asset), (available, locked) in all_balances(chain).items():
        assert available >= 0 and locked >= 0
        totals[asset] = totals.get(asset, 0) + available + locked
    for asset in ASSETS:
        assert (chain.state().get(b"custody/supply/" + asset.encode()) or 0) == totals.get(asset, 0), asset


def cash(qty: int, price: int, iid: str = "ACME") -> int:
    return consideration(qty, price, DECIMALS[iid])


# --- pure helpers -----------------------------------------------------------------------------
def test_close_time_and_netting_ratio() -> None:
    assert compute_close_at(10, 86_400_000, 7_500) == 10 * 86_400_000 + 64_800_000  # 18:00 UTC
    assert compute_close_at(3, 999, 1) == 3 * 999  # 999 / 10,000 rounds down to 0
    assert compute_netting_bps(0, 0) == 0
    assert compute_netting_bps(3, 1) == 6_666  # rounded down: never overstates the saving
    assert compute_netting_bps(10, 10) == 0 and compute_netting_bps(10, 0) == 10_000


# --- submission and close ---------------------------------------------------------------------
def test_trades_net_at_the_close_even_when_gross_order_would_fail(chain: Chain) -> None:
    """A-C001 holds no ACME: it sells 4 before it buys 10. Gross, in that order, the sale fails;
    in the cycle only the net (+6 ACME) moves."""
    before = {(a, s): avail(chain, a, s) for a in ("A-C001", "B-C001") for s in ("ACME", "USD")}
    receipts = run_ok(
        chain,
        submit(chain, *ticket("C-1", "B-C001", "A-C001", "ACME", 4, 181_00)),
        submit(chain, *ticket("C-2", "A-C001", "B-C001", "ACME", 10, 180_00)),
    )
    date = today(chain)
    first = receipts[0]
    assert events(first, "cycle_opened") == [{"date": date, "close_at_ms": close_of(date)}]
    assert events(first, "trade_accepted") == [{
        "trade_id": "C-1", "date": date, "tplus": 0, "buyer": "B-C001", "seller": "A-C001", "instrument": "ACME",
        "quantity": 4, "price": 181_00, "consideration": 724_00, "close_at_ms": close_of(date),
    }]  # fmt: skip
    assert events(receipts[1], "cycle_opened") == []  # the cycle opened once
    # Nothing moves before the close; the obligations are pending.
    assert {k: avail(chain, *k) for k in before} == before
    pend = view(chain, "pending", account="A-C001")
    assert [(t["trade_id"], t["side"]) for t in pend["trades"]] == [("C-1", "sell"), ("C-2", "buy")]
    assert pend["net"] == [
        {"date": date, "asset": "ACME", "net": 6},
        {"date": date, "asset": "USD", "net": 724_00 - 1_800_00},
    ]
    assert pend["next"] is None
    open_doc = view(chain, "cycle", date=date)
    assert open_doc["status"] == "open" and open_doc["trades"] == 2 and open_doc["projected"]["failed"] == []
    assert {v["asset"]: (v["gross"], v["net"]) for v in open_doc["projected"]["values"]} == {
        "ACME": (14, 6),
        "USD": (2_524_00, 1_076_00),
    }
    assert [c["date"] for c in view(chain, "cycles")["cycles"]] == [date]
    # The block before the close time closes nothing.
    assert advance_to(chain, close_of(date) - 1) == ()
    (closing,) = advance_to(chain, close_of(date))
    assert closing.code == "ok"
    assert events(closing, "cycle_closed") == [{
        "date": date, "trades": 2, "settled": 2, "failed": 0, "assets": ["ACME", "USD"], "gross": [14, 2_524_00],
        "net": [6, 1_076_00], "netting_bps": [(14 - 6) * 10_000 // 14, (2_524_00 - 1_076_00) * 10_000 // 2_524_00],
    }]  # fmt: skip
    assert avail(chain, "A-C001", "ACME") == before[("A-C001", "ACME")] + 6
    assert avail(chain, "B-C001", "ACME") == before[("B-C001", "ACME")] - 6
    assert avail(chain, "A-C001", "USD") == before[("A-C001", "USD")] - 1_076_00
    assert avail(chain, "B-C001", "USD") == before[("B-C001", "USD")] + 1_076_00
    report = view(chain, "cycle", date=date)
    assert (report["status"], report["settled"], report["failed"], report["closed_height"]) == (
        "closed",
        2,
        0,
        chain.ledger.head.height,
    )
    assert "projected" not in report
    assert report["values"][1] == {"asset": "USD", "gross": 2_524_00, "net": 1_076_00, "netting_bps": 5_736}
    assert [t["status"] for t in view(chain, "trades", date=date)["trades"]] == ["settled", "settled"]
    assert view(chain, "trade", exchange="xchg-alpha", trade_id="C-2")["status"] == "settled"
    assert view(chain, "pending", account="A-C001")["trades"] == []
    assert view(chain, "cycles")["cycles"] == []
    assert [c["status"] for c in view(chain, "cycles", status="all")["cycles"]] == ["closed"]
    assert list(chain.state().iterate(b"cycles/gross/")) == []
    check_conservation(chain)
    # A second run of the task (a stale payload) changes nothing.
    from contracts.api import Context
    from contracts.cycles import close_cycle

    state = chain.state()
    state.begin()
    ctx = Context(state, CallEnv(chain.genesis.chain_id, 99, close_of(date) + 1, b""), "", "cycles")
    close_cycle(ctx, date)
    close_cycle(ctx, date + 7)  # no such cycle
    state.commit_tx()
    assert state.diff() == {} and ctx.events() == []


def test_t_plus_n_trades_join_the_cycle_of_their_settlement_date(chain: Chain) -> None:
    receipts = run_ok(chain, batch(chain, [
        ticket("N-0", "A-C001", "B-C001", "ACME", 1, 100_00, 0),
        ticket("N-1", "A-C001", "B-C001", "ACME", 2, 100_00, 1),
        ticket("N-2", "A-C001", "B-C001", "ACME", 3, 100_00, 2),
    ]))  # fmt: skip
    d0 = today(chain)
    assert [e["date"] for e in events(receipts[0], "trade_accepted")] == [d0, d0 + 1, d0 + 2]
    assert events(receipts[0], "batch_submitted") == [{"trades": 3, "accepted": 3, "refused": 0}]
    assert [c["date"] for c in view(chain, "cycles")["cycles"]] == [d0, d0 + 1, d0 + 2]
    start = avail(chain, "A-C001", "ACME")
    for offset, qty in ((0, 1), (1, 2), (2, 3)):
        (closing,) = advance_to(chain, close_of(d0 + offset))
        assert events(closing, "cycle_closed")[0]["date"] == d0 + offset
        start += qty
        assert avail(chain, "A-C001", "ACME") == start
    assert view(chain, "cycles")["cycles"] == []


def test_the_unwind_fails_every_trade_of_a_short_account_and_cascades(chain: Chain) -> None:
    """A-C9 has no cash: its purchase from A-C8 fails; A-C8 was to pay B-C001 with that cash, so
    it is short in turn and its purchase fails too. The unrelated trade settles."""
    open_account(chain, "A-C8")
    open_account(chain, "A-C9")
    before = all_balances(chain)
    receipts = run_ok(chain, batch(chain, [
        ticket("U-1", "A-C9", "A-C8", "ACME", 5, 100_00),
        ticket("U-2", "A-C8", "B-C001", "ACME", 5, 90_00),
        ticket("U-3", "B-C002", "A-C002", "GLOBEX", 1, 1_00),
    ]))  # fmt: skip
    assert events(receipts[0], "batch_submitted")[0]["accepted"] == 3
    date = today(chain)
    projected = view(chain, "cycle", date=date)["projected"]
    assert [(f["trade_id"], f["code"], f["account"]) for f in projected["failed"]] == [
        ("U-1", "insufficient_cash", "A-C9"),
        ("U-2", "insufficient_cash", "A-C8"),
    ]
    (closing,) = advance_to(chain, close_of(date))
    assert events(closing, "trade_failed") == [
        {
            "date": date,
            "exchange": "xchg-alpha",
            "trade_id": "U-1",
            "code": "insufficient_cash",
            "account": "A-C9",
        },
        {
            "date": date,
            "exchange": "xchg-alpha",
            "trade_id": "U-2",
            "code": "insufficient_cash",
            "account": "A-C8",
        },
    ]
    closed = events(closing, "cycle_closed")[0]
    assert (closed["settled"], closed["failed"]) == (1, 2)
    assert (
        closed["assets"] == ["GLOBEX", "USD"] and closed["gross"] == [1, 1_00] and closed["net"] == [1, 1_00]
    )
    after = all_balances(chain)
    changed = {
        k: (before.get(k), after.get(k)) for k in set(before) | set(after) if before.get(k) != after.get(k)
    }
    assert changed == {
        ("B-C002", "GLOBEX"): (None, (1, 0)),
        ("A-C002", "GLOBEX"): (before[("A-C002", "GLOBEX")], (before[("A-C002", "GLOBEX")][0] - 1, 0)),
        ("B-C002", "USD"): (before[("B-C002", "USD")], (before[("B-C002", "USD")][0] - 1_00, 0)),
        ("A-C002", "USD"): (before[("A-C002", "USD")], (before[("A-C002", "USD")][0] + 1_00, 0)),
    }
    failed = view(chain, "trades", date=date, status="failed")["trades"]
    assert [(t["trade_id"], t["code"], t["short_account"]) for t in failed] == [
        ("U-1", "insufficient_cash", "A-C9"),
        ("U-2", "insufficient_cash", "A-C8"),
    ]
    check_conservation(chain)


def test_a_seller_short_of_securities_fails_with_its_trades(chain: Chain) -> None:
    open_account(chain, "B-C7")
    run_ok(chain, batch(chain, [
        ticket("S-1", "A-C001", "B-C7", "ACME", 3, 10_00),     # B-C7 holds no ACME
        ticket("S-2", "B-C7", "A-C002", "GLOBEX", 1, 10_00),   # B-C7 holds no cash either
        ticket("S-3", "A-C001", "B-C001", "ACME", 3, 10_00),
    ]))  # fmt: skip
    date = today(chain)
    (closing,) = advance_to(chain, close_of(date))
    # B-C7's first short position in asset order is ACME (before USD): insufficient_securities.
    assert [(e["trade_id"], e["code"], e["account"]) for e in events(closing, "trade_failed")] == [
        ("S-1", "insufficient_securities", "B-C7"),
        ("S-2", "insufficient_securities", "B-C7"),
    ]
    assert avail(chain, "B-C7", "GLOBEX") == 0
    assert view(chain, "trade", exchange="xchg-alpha", trade_id="S-3")["status"] == "settled"
    check_conservation(chain)


def test_a_failed_trade_id_may_join_a_later_cycle(chain: Chain) -> None:
    open_account(chain, "A-C9")
    run_ok(chain, submit(chain, *ticket("R-1", "A-C9", "B-C001", "ACME", 1, 5_00)))
    advance_to(chain, close_of(today(chain)))
    assert view(chain, "trade", exchange="xchg-alpha", trade_id="R-1")["status"] == "failed"
    run_ok(chain, chain.tx("custodian", "custody", "deposit", ["A-C9", "USD", 5_00, "wire-r1"]))
    (receipt,) = run_ok(chain, submit(chain, *ticket("R-1", "A-C9", "B-C001", "ACME", 1, 5_00, 1)))
    date = events(receipt, "trade_accepted")[0]["date"]
    fails(chain, submit(chain, *ticket("R-1", "A-C9", "B-C001", "ACME", 1, 5_00, 1)), "duplicate_trade_id")
    advance_to(chain, close_of(date))
    assert view(chain, "trade", exchange="xchg-alpha", trade_id="R-1")["status"] == "settled"
    assert (avail(chain, "A-C9", "ACME"), avail(chain, "A-C9", "USD")) == (1, 0)
    # Trade ids are scoped per exchange and shared with gross settlement.
    fails(chain, submit(chain, *ticket("R-1", "A-C9", "B-C001", "ACME", 1, 5_00, 1)), "duplicate_trade_id")
    run_ok(
        chain,
        chain.tx("xchg-alpha", "settlement", "settle", ["G-1", "A-C001", "B-C001", "ACME", 1, 1_00, DAY]),
    )
    fails(chain, submit(chain, *ticket("G-1", "A-C001", "B-C001", "ACME", 1, 1_00)), "duplicate_trade_id")


def test_gross_settlement_refuses_an_id_pending_in_a_cycle_and_takes_it_once_failed(chain: Chain) -> None:
    """Both directions of the shared trade ids (docs/CONTRACTS.md): the cycle mirrors its trade
    into settlement's record, ``in_cycle`` while pending and deleted when the trade fails."""
    open_account(chain, "A-C9")
    gross = ["P-1", "A-C9", "B-C001", "ACME", 1, 5_00, DAY]
    run_ok(chain, submit(chain, *ticket("P-1", "A-C9", "B-C001", "ACME", 1, 5_00)))
    assert chain.state().get(b"settlement/trade/xchg-alpha/P-1")[1] == "in_cycle"
    fails(chain, chain.tx("xchg-alpha", "settlement", "settle", gross), "duplicate_trade_id")
    advance_to(chain, close_of(today(chain)))  # A-C9 has no cash: the trade fails at the close
    assert view(chain, "trade", exchange="xchg-alpha", trade_id="P-1")["status"] == "failed"
    assert chain.state().get(b"settlement/trade/xchg-alpha/P-1") is None
    run_ok(chain, chain.tx("custodian", "custody", "deposit", ["A-C9", "USD", 5_00, "wire-p1"]))
    run_ok(chain, chain.tx("xchg-alpha", "settlement", "settle", gross))
    assert chain.state().get(b"settlement/trade/xchg-alpha/P-1")[1] == "settled"


def test_what_changed_before_the_close_fails_first(chain: Chain) -> None:
    run_ok(chain, batch(chain, [
        ticket("H-1", "A-C001", "B-C001", "GLOBEX", 1, 1_00),
        ticket("H-2", "A-C002", "B-C001", "ACME", 1, 1_00),
        ticket("H-3", "A-C001", "B-C001", "ACME", 1, 1_00),
    ]))  # fmt: skip
    run_ok(
        chain,
        chain.tx("admin", "instruments", "halt", ["GLOBEX", "news pending"]),
        chain.tx("member-a", "accounts", "suspend", ["A-C002"]),
    )
    (closing,) = advance_to(chain, close_of(today(chain)))
    assert [(e["trade_id"], e["code"], e["account"]) for e in events(closing, "trade_failed")] == [
        ("H-1", "instrument_halted", None),
        ("H-2", "account_suspended", "A-C002"),
    ]
    assert events(closing, "cycle_closed")[0]["settled"] == 1


@pytest.mark.parametrize(
    ("t", "code"),
    [
        (ticket("V-1", "A-C001", "B-C001", "ACME", 1, 1_00, 6), "bad_tplus"),
        (ticket("V-1", "A-C001", "B-C001", "ACME", 0, 1_00), "bad_quantity"),
        (ticket("V-1", "A-C001", "B-C001", "ACME", 1, 0), "bad_price"),
        (ticket("V-1", "A-C001", "B-C001", "NOPE", 1, 1_00), "unknown_instrument"),
        (ticket("V-1", "A-C001", "B-C001", "USD", 1, 1_00), "instrument_is_cash"),
        (ticket("V-1", "A-C001", "A-C001", "ACME", 1, 1_00), "same_account"),
        (ticket("V-1", "A-C001", "Z-NONE", "ACME", 1, 1_00), "unknown_account"),
        (ticket("V-1", "A-C001", "B-C001", "BTC", 1, 1), "zero_consideration"),
        (ticket("V-1", "A-C001", "B-C001", "ACME", 2**40, 2**47), "amount_overflow"),
    ],
)
def test_a_bad_ticket_is_refused_and_writes_nothing(chain: Chain, t: list[Any], code: str) -> None:
    fails(chain, submit(chain, *t), code)


def test_refusals_that_depend_on_state(chain: Chain) -> None:
    run_ok(
        chain,
        chain.tx("admin", "instruments", "halt", ["GLOBEX", "news pending"]),
        chain.tx("member-a", "accounts", "suspend", ["A-C002"]),
    )
    fails(chain, submit(chain, *ticket("V-1", "A-C001", "B-C001", "GLOBEX", 1, 1_00)), "instrument_halted")
    fails(chain, submit(chain, *ticket("V-1", "A-C002", "B-C001", "ACME", 1, 1_00)), "account_suspended")
    run_ok(chain, submit(chain, *ticket("V-1", "A-C001", "B-C001", "ACME", 1, 1_00)))
    fails(chain, submit(chain, *ticket("V-1", "A-C001", "B-C001", "ACME", 1, 1_00, 1)), "duplicate_trade_id")
    # After today's close time, a T+0 trade has missed its cut-off; T+1 is still open.
    advance_to(chain, close_of(today(chain)))
    fails(chain, submit(chain, *ticket("V-2", "A-C001", "B-C001", "ACME", 1, 1_00)), "cycle_closed")
    run_ok(chain, submit(chain, *ticket("V-2", "A-C001", "B-C001", "ACME", 1, 1_00, 1)))
    # The schema bounds tplus: outside 0..30 the transaction is rejected before any block.
    rejected(chain, submit(chain, *ticket("V-3", "A-C001", "B-C001", "ACME", 1, 1_00, 31)), "bad_arguments")
    rejected(chain, submit(chain, *ticket("V-3", "A-C001", "B-C001", "ACME", 1, 1_00, -1)), "bad_arguments")


def test_a_cycle_holds_at_most_cycle_trades_max() -> None:
    chain = Chain(Store.in_memory(), make_genesis(cycle_trades_max=2))
    (receipt,) = run_ok(chain, batch(chain, [
        ticket(f"F-{i}", "A-C001", "B-C001", "ACME", 1, 1_00) for i in range(3)
    ] + [ticket("F-9", "A-C001", "B-C001", "ACME", 1, 1_00, 1)]))  # fmt: skip
    assert [(e["trade_id"], e["code"]) for e in events(receipt, "trade_refused")] == [("F-2", "cycle_full")]
    assert events(receipt, "batch_submitted") == [{"trades": 4, "accepted": 3, "refused": 1}]
    fails(chain, submit(chain, *ticket("F-3", "A-C001", "B-C001", "ACME", 1, 1_00)), "cycle_full")


def test_batch_refuses_tickets_one_by_one(chain: Chain) -> None:
    (receipt,) = run_ok(chain, batch(chain, [
        ticket("B-1", "A-C001", "B-C001", "ACME", 1, 1_00),
        ticket("B-1", "A-C001", "B-C001", "ACME", 1, 1_00),
        ticket("B-2", "A-C001", "B-C001", "NOPE", 1, 1_00),
        ticket("B-3", "A-C001", "B-C001", "ACME", 2, 1_00),
    ]))  # fmt: skip
    assert [e["trade_id"] for e in events(receipt, "trade_accepted")] == ["B-1", "B-3"]
    assert [(e["trade_id"], e["code"]) for e in events(receipt, "trade_refused")] == [
        ("B-1", "duplicate_trade_id"),
        ("B-2", "unknown_instrument"),
    ]
    trades = view(chain, "trades", date=today(chain))["trades"]
    assert [(t["seq"], t["trade_id"], t["quantity"]) for t in trades] == [(0, "B-1", 1), (1, "B-3", 2)]
    assert chain.state().get(b"cycles/gross/" + f"{today(chain):012d}/ACME".encode()) == 3


def test_views_page_and_refuse_bad_queries(chain: Chain) -> None:
    run_ok(
        chain, batch(chain, [ticket(f"P-{i}", "A-C001", "B-C001", "ACME", 1, 1_00, i % 3) for i in range(7)])
    )
    d0 = today(chain)
    page = view(chain, "trades", date=d0, limit=2)
    assert [t["trade_id"] for t in page["trades"]] == ["P-0", "P-3"] and page["next"] == 1
    page = view(chain, "trades", date=d0, limit=2, after=page["next"])
    assert [t["trade_id"] for t in page["trades"]] == ["P-6"] and page["next"] is None
    pend = view(chain, "pending", account="B-C001", limit=4)
    assert [t["trade_id"] for t in pend["trades"]] == ["P-0", "P-3", "P-6", "P-1"] and pend["next"]
    rest = view(chain, "pending", account="B-C001", after=pend["next"])
    assert [t["trade_id"] for t in rest["trades"]] == ["P-4", "P-2", "P-5"] and rest["next"] is None
    listed = view(chain, "cycles", limit=2)
    assert [c["date"] for c in listed["cycles"]] == [d0, d0 + 1] and listed["next"] == d0 + 1
    assert [c["date"] for c in view(chain, "cycles", after=listed["next"])["cycles"]] == [d0 + 2]
    assert (
        listed["today"] == d0 and listed["day_ms"] == DAY_MS and listed["today_close_at_ms"] == close_of(d0)
    )
    from chain.errors import ContractError

    for name, query, code in [
        ("cycle", {}, "bad_query"), ("cycle", {"date": "x"}, "bad_query"), ("cycle", {"date": "5"}, "not_found"),
        ("cycles", {"status": "closed"}, "bad_query"), ("cycles", {"limit": "0"}, "bad_query"),
        ("trades", {"date": str(d0), "status": "odd"}, "bad_query"), ("trades", {"date": "5"}, "not_found"),
        ("pending", {"account": "Z-NONE"}, "unknown_account"), ("trade", {"exchange": "xchg-alpha", "trade_id": "Q"}, "not_found"),
    ]:  # fmt: skip
        with pytest.raises(ContractError) as exc:
            view(chain, name, **query)
        assert exc.value.code == code, (name, query)


# --- properties -------------------------------------------------------------------------------
TRADERS = ["A-HOUSE", "A-C001", "A-C002", "B-HOUSE", "B-C001", "B-C002"]
trade_st = st.tuples(
    st.sampled_from(TRADERS), st.sampled_from(TRADERS), st.sampled_from(["ACME", "GLOBEX"]),
    st.integers(1, 3_000), st.integers(1, 400_00),
).filter(lambda t: t[0] != t[1])  # fmt: skip


# Sellers drawn from the house accounts (which hold every equity) make gross settlement succeed
# more often, so that the equivalence below is checked on many examples, not only a few.
house_trade_st = st.tuples(
    st.sampled_from(TRADERS), st.sampled_from(["A-HOUSE", "B-HOUSE"]), st.sampled_from(["ACME", "GLOBEX"]),
    st.integers(1, 3_000), st.integers(1, 100_00),
).filter(lambda t: t[0] != t[1])  # fmt: skip
trades_st = st.one_of(
    st.lists(trade_st, min_size=1, max_size=30), st.lists(house_trade_st, min_size=1, max_size=30)
)


def tickets_of(trades: list[tuple[str, str, str, int, int]]) -> list[list[Any]]:
    return [ticket(f"Q-{i}", b, s, iid, q, p) for i, (b, s, iid, q, p) in enumerate(trades)]


def netted_chain(tickets: list[list[Any]]) -> tuple[Chain, tuple[Receipt, ...]]:
    """A fresh chain where ``tickets`` join today's cycle in one batch; then the close."""
    chain = Chain(Store.in_memory(), GENESIS)
    (receipt,) = run_ok(chain, batch(chain, tickets))
    assert events(receipt, "batch_submitted")[0]["accepted"] == len(tickets)
    return chain, advance_to(chain, close_of(today(chain)))


@settings(max_examples=30)
@given(trades_st)
def test_netting_ends_where_gross_settlement_would(trades: list[tuple[str, str, str, int, int]]) -> None:
    tickets = tickets_of(trades)
    gross = Chain(Store.in_memory(), GENESIS)
    (receipt,) = run_ok(
        gross, gross.tx("xchg-alpha", "settlement", "settle_batch", [[t[:7] for t in tickets]])
    )
    netted, (closing,) = netted_chain(tickets)
    if events(receipt, "batch_settled")[0]["failed"] == 0:
        assert events(closing, "trade_failed") == []
        assert all_balances(netted) == all_balances(gross)
    check_conservation(netted)
    check_conservation(gross)


def naive_unwind(balances: dict[tuple[str, str], tuple[int, int]], tickets: list[list[Any]]) -> set[str]:
    """The fail rule, written the slow obvious way: re-net everything each round."""
    failed: set[str] = set()
    while True:
        net: dict[tuple[str, str], int] = {}
        for tid, b, s, iid, q, p, _, _ in tickets:
            if tid in failed:
                continue
            c = cash(q, p, iid)
            for k, d in (((b, iid), q), ((s, iid), -q), ((b, "USD"), -c), ((s, "USD"), c)):
                net[k] = net.get(k, 0) + d
        short = {a for (a, s), n in net.items() if balances.get((a, s), (0, 0))[0] + n < 0}
        if not short:
            return failed
        failed |= {t[0] for t in tickets if t[0] not in failed and (t[1] in short or t[2] in short)}


@settings(max_examples=25)
@given(st.lists(trade_st, min_size=1, max_size=30), st.integers(0, 5))
def test_the_fail_rule_matches_a_naive_unwind(
    trades: list[tuple[str, str, str, int, int]], poor: int
) -> None:
    """Some trades by accounts with little or nothing, so that fails (and cascades) happen."""
    tickets = tickets_of(trades)
    for i in range(min(poor, len(tickets))):  # a fresh, empty account takes one side
        side = 1 + i % 2
        tickets[i][side] = "A-C8" if tickets[i][3 - side] != "A-C8" else "A-C9"
    chain = Chain(Store.in_memory(), GENESIS)
    open_account(chain, "A-C8")
    open_account(chain, "A-C9")
    run_ok(chain, chain.tx("custodian", "custody", "deposit", ["A-C8", "USD", 50_000_00, "w"]))
    before = all_balances(chain)
    (receipt,) = run_ok(chain, batch(chain, tickets))
    (closing,) = advance_to(chain, close_of(today(chain)))
    failed = {e["trade_id"] for e in events(closing, "trade_failed")}
    assert failed == naive_unwind(before, tickets)
    settled = [t for t in tickets if t[0] not in failed]
    expected = dict(before)
    for _, b, s, iid, q, p, _, _ in settled:
        c = cash(q, p, iid)
        for k, d in (((b, iid), q), ((s, iid), -q), ((b, "USD"), -c), ((s, "USD"), c)):
            expected[k] = (expected.get(k, (0, 0))[0] + d, 0)
    assert all_balances(chain) == {k: v for k, v in expected.items() if v != (0, 0)}
    check_conservation(chain)


@settings(max_examples=10)
@given(st.lists(trade_st, min_size=1, max_size=20), st.lists(st.integers(0, 2), min_size=20, max_size=20))
def test_the_same_transactions_give_the_same_state_root(
    trades: list[tuple[str, str, str, int, int]], tplus: list[int]
) -> None:
    tickets = [t[:7] + [n] for t, n in zip(tickets_of(trades), tplus, strict=False)]
    roots = []
    for _ in range(2):
        chain = Chain(Store.in_memory(), GENESIS)
        run_ok(chain, batch(chain, tickets))
        for date in range(today(chain), today(chain) + 3):
            advance_to(chain, close_of(date))
        roots.append(chain.ledger.head.state_root)
    assert roots[0] == roots[1]


@settings(max_examples=10)
@given(
    st.sampled_from(
        ["member-a", "member-b", "custodian", "admin", "oracle-1", "issuer-acme", "validator-0", "auditor-1"]
    ),
    st.booleans(),
)
def test_only_an_exchange_submits(sender: str, as_batch: bool) -> None:
    chain = Chain(Store.in_memory(), GENESIS)
    t = ticket("X-1", "A-C001", "B-C001", "ACME", 1, 1_00)
    stx = batch(chain, [t], sender=sender) if as_batch else submit(chain, *t, sender=sender)
    fails(chain, stx, "not_exchange")


# --- a real node: the scenario and the commands -----------------------------------------------
NODE_DAY_MS = 6_000  # cycles close 4.5 s into each 6-second day


class NodeNet:
    def __init__(self, directory: Path, url: str) -> None:
        self.dir = directory
        self.url = url

    def cli(self, *args: str) -> tuple[int, str, str]:
        result = CliRunner().invoke(main, [*args, "--node", self.url, "--keys-dir", str(self.dir / "keys")])
        return result.exit_code, result.stdout, result.stderr

    def ok(self, *args: str) -> str:
        code, out, err = self.cli(*args)
        assert code == 0, out + err
        return out

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture(scope="module")
def node_net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeNet]:
    directory = tmp_path_factory.mktemp("cycles") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    doc = json.loads((directory / "genesis.json").read_text())
    doc["params"] = {"cycles.day_ms": NODE_DAY_MS}
    doc["consensus"]["heartbeat_ms"] = 500
    (directory / "genesis.json").write_text(json.dumps(doc, indent=2))
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield NodeNet(directory, node.url)
    finally:
        node.stop()


@pytest.mark.io
def test_cli_submit_and_read_an_open_cycle(node_net: NodeNet) -> None:
    code, _, err = node_net.cli("cycle", "submit", "--buyer", "B-C002", "--seller", "A-C002", "--instrument", "GLOBEX",
                                "--qty", "3", "--price", "50.125", "--tplus", "1", "--trade-id", "CLI-1")  # fmt: skip
    assert code == 2 and err.startswith("error: bad_amount:")
    out = node_net.ok("cycle", "submit", "--buyer", "B-C002", "--seller", "A-C002", "--instrument", "GLOBEX",
                      "--qty", "3", "--price", "50.25", "--tplus", "1", "--trade-id", "CLI-1")  # fmt: skip
    assert "accepted CLI-1: B-C002 buys 3 GLOBEX from A-C002 for USD 150.75 on T+1: cycle" in out
    doc = node_net.json("cycle", "submit", "--buyer", "B-C002", "--seller", "A-C002", "--instrument", "GLOBEX",
                        "--qty", "2", "--price", "50", "--tplus", "1", "--trade-id", "CLI-2")  # fmt: skip
    date = doc["accepted"]["date"]
    code, _, err = node_net.cli("cycle", "submit", "--buyer", "B-C002", "--seller", "A-C002", "--instrument", "GLOBEX",
                                "--qty", "2", "--price", "50", "--tplus", "1", "--trade-id", "CLI-2")  # fmt: skip
    assert code == 1 and err.startswith("error: duplicate_trade_id:")
    listed = node_net.json("cycle", "list")
    assert date in [c["date"] for c in listed["cycles"]] and listed["day_ms"] == NODE_DAY_MS
    assert "today is cycle date" in node_net.ok("cycle", "list")
    pend = node_net.json("cycle", "pending", "A-C002")
    assert {(n["date"], n["asset"]): n["net"] for n in pend["net"]} == {
        (date, "GLOBEX"): -5,
        (date, "USD"): 150_75 + 100_00,
    }
    text = node_net.ok("cycle", "pending", "A-C002")
    assert "CLI-1" in text and "+250.75" in text and "-5" in text
    shown = node_net.ok("cycle", "show", str(date))
    assert "status     open" in shown and "projected at current balances:" in shown and "GLOBEX" in shown
    assert node_net.json("cycle", "show", "T+1")["date"] in (date, date + 1)
    code, _, err = node_net.cli("cycle", "show", "yesterday")
    assert code == 2 and err.startswith("error: bad_date:")
    assert "pending in cycle" in node_net.ok("cycle", "status", "CLI-1")


@pytest.mark.io
def test_the_netting_scenario_on_a_real_node(node_net: NodeNet) -> None:
    from cli.scenarios import run_scenario

    lines: list[str] = []
    s = ScenarioRun(Client(node_net.url), node_net.dir / "keys", node_net.dir, echo=lines.append)
    run_scenario("netting", s)
    text = "\n".join(lines)
    assert "failed (insufficient_cash" in text and "every account moved by exactly its net" in text
    assert "netting saved" in text


@pytest.mark.io
def test_cli_reads_a_closed_cycle(node_net: NodeNet) -> None:
    from cli.scenarios.netting import wait_closed

    date = node_net.json("cycle", "status", "CLI-1")["date"]
    close_at = node_net.json("cycle", "show", str(date))["close_at_ms"]
    # On block time, not the wall clock: closed within a few blocks of the first past close_at.
    s = ScenarioRun(Client(node_net.url), node_net.dir / "keys", node_net.dir, echo=lambda line: None)
    wait_closed(s, date, close_at)
    report = node_net.json("cycle", "show", str(date))
    globex = next(v for v in report["values"] if v["asset"] == "GLOBEX")
    assert globex["gross"] >= 5 and report["failed"] >= 0
    shown = node_net.ok("cycle", "show", str(date))
    assert "status     closed" in shown and "netting saved" in shown
    trades = node_net.ok("cycle", "trades", str(date), "--status", "settled")
    assert "CLI-1" in trades and "150.75" in trades
    assert "settled in cycle" in node_net.ok("cycle", "status", "CLI-2")
    assert node_net.json("cycle", "pending", "A-C002")["trades"] == []
    assert node_net.ok("cycle", "pending", "A-C002").startswith("A-C002 has no pending cycle trades")
    code, _, err = node_net.cli("cycle", "status", "NOPE")
    assert code == 1 and err.startswith("error: not_found:")
