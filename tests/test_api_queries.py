"""The queries of issue 18 against a real node: the account list, withdrawal lookup and the
pending queue, and failed trades.

One single-validator network for the module (the harness of tests/test_api.py). Its history:
accounts opened by a member, withdrawals requested then confirmed, cancelled and rejected, and
trades that fail on chain (a ``settle`` short of securities, a failing ticket of a batch, a
batch sent by a non-exchange) next to one that fails first and settles on a retry. The pure
page function behind ``GET /accounts`` is checked over random account sets (hypothesis).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import encode
from chain.receipt import KIND_TASK, KIND_TX, Receipt
from chain.state import BlockState
from cli.trade_dates import today
from contracts.accounts import account_key
from node.api.accounts import iterate_accounts_after, page_accounts
from node.index import compute_failed_trades
from tests.netutil import TxMaker
from tests.test_api import World, fetch, one_node_world, run, submit

DAY = today()  # the trade date of this module's tickets: the nodes' clock is the wall clock

OPENED = [f"Q-{i:03d}" for i in range(12)]  # accounts member-a opens


def _make_history(world: World) -> None:
    maker = TxMaker()

    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            opens = [maker.tx("member-a", "accounts", "open", [a, "house", None]) for a in OPENED]
            assert all(s["receipt"]["ok"] for s in await submit(http, world.url, opens))
            requests = [
                maker.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 100_00]),  # 1
                maker.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 50_00]),  # 2
                maker.tx("member-a", "custody", "request_withdrawal", ["A-C002", "USD", 25_00]),  # 3
                maker.tx("member-b", "custody", "request_withdrawal", ["B-C001", "USD", 1]),  # 4
            ]
            statuses = await submit(http, world.url, requests)
            assert all(s["receipt"]["ok"] for s in statuses), statuses
            world.heights["requests"] = statuses[0]["height"]
            for wid, st in enumerate(statuses, start=1):  # the four may be cut into two blocks
                world.heights[f"request-{wid}"] = st["height"]
            short = ["F-1", "A-C001", "B-C002", "ACME", 1_000_000, 1_00, DAY]  # B-C002 holds no ACME
            retried = ["R-1", "A-C001", "B-C002", "ACME", 5, 1_00, DAY]
            batch = [
                ["FB-1", "A-C001", "B-HOUSE", "ACME", 1, 1_00, DAY],
                ["FB-2", "A-C001", "A-C001", "ACME", 1, 1_00, DAY],
            ]
            trades = [
                maker.tx("xchg-alpha", "settlement", "settle", short),
                maker.tx("xchg-alpha", "settlement", "settle", retried),
                maker.tx("xchg-alpha", "settlement", "settle_batch", [batch]),
                maker.tx(
                    "member-a",
                    "settlement",
                    "settle_batch",
                    [[["NX-1", "A-C001", "B-HOUSE", "ACME", 1, 1_00, DAY]]],
                ),
            ]
            statuses = await submit(http, world.url, trades)
            assert [s["receipt"]["code"] for s in statuses] == [
                "insufficient_securities", "insufficient_securities", "ok", "not_exchange",
            ]  # fmt: skip
            world.heights["failed"] = statuses[0]["height"]
            world.tx_hashes["F-1"] = statuses[0]["hash"]
            world.tx_hashes["batch"] = statuses[2]["hash"]
            ends = [
                maker.tx("custodian", "custody", "confirm_withdrawal", [1]),
                maker.tx("member-a", "custody", "cancel_withdrawal", [2]),
                maker.tx("custodian", "custody", "deposit", ["B-C002", "ACME", 5, "sec-q1"]),
            ]
            statuses = await submit(http, world.url, ends)
            assert all(s["receipt"]["ok"] for s in statuses), statuses
            world.heights["ends"] = statuses[0]["height"]
            statuses = await submit(
                http, world.url, [maker.tx("xchg-alpha", "settlement", "settle", retried)]
            )
            assert statuses[0]["receipt"]["ok"], statuses
            world.heights["R-1"] = statuses[0]["height"]

    run(go())


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from one_node_world(tmp_path_factory, "queries", _make_history)


async def _get(world: World, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        return await fetch(http, "GET", world.url + path)


def get(world: World, path: str) -> tuple[int, Any]:
    return run(_get(world, path))  # type: ignore[no-any-return]


def state_accounts(world: World) -> list[tuple[str, str]]:
    """(id, owner) of every account, read from the node's state directly."""
    state = world.nt.on_loop(lambda: BlockState(world.node.store))
    return world.nt.on_loop(lambda: [(i, r.owner) for i, r in iterate_accounts_after(state, None)])  # type: ignore[no-any-return]


# --- GET /accounts ------------------------------------------------------------------------------
@pytest.mark.io
def test_account_pages_walk_every_account_once_in_order(world: World) -> None:
    expected = state_accounts(world)
    assert set(OPENED) <= {i for i, _ in expected} and len(expected) > 12
    seen: list[str] = []
    after = ""
    for _ in range(100):
        status, body = get(world, "/accounts?limit=5" + (f"&after={after}" if after else ""))
        assert status == 200, body
        assert len(body["accounts"]) <= 5
        seen += [a["id"] for a in body["accounts"]]
        if body["next"] is None:
            break
        assert body["next"] == body["accounts"][-1]["id"]
        after = body["next"]
    assert seen == [i for i, _ in expected]
    _, first = get(world, "/accounts")
    item = next(a for a in first["accounts"] if a["id"] == "A-C001")
    assert item == {"id": "A-C001", "owner": "member-a", "kind": "client", "client": "client-001",
                    "status": "active", "assets_held": item["assets_held"]}  # fmt: skip
    assert item["assets_held"] >= 1 and first["next"] is None and first["height"] >= world.heights["R-1"]


@pytest.mark.io
def test_account_pages_of_one_owner(world: World) -> None:
    expected = [i for i, owner in state_accounts(world) if owner == "member-b"]
    status, body = get(world, "/accounts?owner=member-b&limit=2")
    assert status == 200 and [a["id"] for a in body["accounts"]] == expected[:2], body
    _, rest = get(world, f"/accounts?owner=member-b&after={body['next']}")
    assert [a["id"] for a in rest["accounts"]] == expected[2:] and rest["next"] is None
    _, nobody = get(world, "/accounts?owner=nobody")
    assert nobody == {"height": nobody["height"], "accounts": [], "next": None}


@pytest.mark.io
@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=x", "limit=-1", "after=bad%20id", "after=", "owner=a%2Fb", "owner=@", "limit=1e3"],
)
def test_account_list_bad_params(world: World, query: str) -> None:
    status, body = get(world, "/accounts?" + query)
    assert (status, body["error"]["code"]) == (400, "bad_request"), body


@settings(max_examples=60, deadline=None)
@given(
    ids=st.sets(st.text("AB-1.:_z", min_size=1, max_size=6), max_size=40),
    owners=st.lists(st.sampled_from(["m1", "m2", "@margin"]), min_size=40, max_size=40),
    limit=st.integers(1, 7),
    scan_max=st.integers(7, 12),
    owner=st.sampled_from([None, "m1", "@margin"]),
)
def test_page_accounts_walks_each_account_once(
    ids: set[str], owners: list[str], limit: int, scan_max: int, owner: str | None
) -> None:
    """Any account set, page size and scan bound: following ``next`` yields every (matching)
    account once, in id order, each page within its bounds."""
    ids = {i for i in ids if i.strip(".")}
    records = {
        account_key(a): encode([owners[n], "house", None, "active", 0]) for n, a in enumerate(sorted(ids))
    }
    records[b"accounts/bal/X/USD"] = encode([1, 0])  # a neighbouring prefix is not an account
    records[b"accounts/acc"] = encode(1)
    state = BlockState(DictState(records))
    walked: list[str] = []
    after = None
    for _ in range(200):
        rows, after = page_accounts(state, after, limit, owner, scan_max)
        assert len(rows) <= limit
        walked += [i for i, _ in rows]
        if after is None:
            break
    owner_of = {a: owners[n] for n, a in enumerate(sorted(ids))}
    assert walked == sorted(a for a in ids if owner is None or owner_of[a] == owner)


class DictState:
    """Committed state as a dict (a StateReader)."""

    def __init__(self, records: dict[bytes, bytes]) -> None:
        self.records = dict(sorted(records.items()))

    def get_state(self, key: bytes) -> bytes | None:
        return self.records.get(key)

    def iterate_state(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        low = prefix + start
        for key, value in self.records.items():
            if key.startswith(prefix) and key >= low:
                yield key, value


# --- withdrawals --------------------------------------------------------------------------------
@pytest.mark.io
def test_withdrawal_lookup_through_request_confirm_cancel(world: World) -> None:
    status, w1 = get(world, "/withdrawals/1")
    assert status == 200, w1
    assert w1 == {"id": 1, "account": "A-C001", "asset": "USD", "amount": 100_00, "decimals": 2,
                  "display": "100.00", "requested_by": "member-a", "status": "confirmed",
                  "height": world.heights["ends"], "requested_height": world.heights["requests"]}  # fmt: skip
    _, w2 = get(world, "/withdrawals/2")
    assert (w2["status"], w2["amount"], w2["requested_height"]) == (
        "cancelled",
        50_00,
        world.heights["request-2"],
    )
    _, w3 = get(world, "/withdrawals/3")
    assert w3["status"] == "pending" and w3["height"] == w3["requested_height"] == world.heights["request-3"]
    for path, want, code in [
        ("/withdrawals/99", 404, "unknown_withdrawal"),
        ("/withdrawals/0", 400, "bad_request"),
        ("/withdrawals/x", 400, "bad_request"),
        ("/withdrawals/" + "9" * 19, 400, "bad_request"),
        ("/withdrawals?status=confirmed", 400, "bad_request"),
        ("/withdrawals?limit=0", 400, "bad_request"),
        ("/withdrawals?after=-1", 400, "bad_request"),
    ]:
        status, body = get(world, path)
        assert (status, body["error"]["code"]) == (want, code), (path, body)


@pytest.mark.io
def test_pending_queue_in_id_order_by_pages(world: World) -> None:
    _, whole = get(world, "/withdrawals?status=pending")
    assert [w["id"] for w in whole["withdrawals"]] == [3, 4] and whole["next"] is None
    assert whole["withdrawals"][1]["requested_by"] == "member-b"
    _, page = get(world, "/withdrawals?limit=1")
    assert [w["id"] for w in page["withdrawals"]] == [3] and page["next"] == 3
    _, rest = get(world, f"/withdrawals?limit=1&after={page['next']}")
    assert [w["id"] for w in rest["withdrawals"]] == [4] and rest["next"] is None


# --- failed trades ------------------------------------------------------------------------------
@pytest.mark.io
def test_a_failed_trade_says_it_failed_and_why(world: World) -> None:
    status, f1 = get(world, "/trades/xchg-alpha/F-1")
    assert status == 200, f1
    assert f1 == {"exchange": "xchg-alpha", "trade_id": "F-1", "status": "failed",
                  "code": "insufficient_securities", "message": f1["message"],
                  "height": world.heights["failed"], "tx": world.tx_hashes["F-1"], "index": f1["index"]}  # fmt: skip
    assert "B-C002 has 0 ACME" in f1["message"]
    _, fb2 = get(world, "/trades/xchg-alpha/FB-2")
    assert (fb2["status"], fb2["code"], fb2["tx"]) == ("failed", "same_account", world.tx_hashes["batch"])
    _, fb1 = get(world, "/trades/xchg-alpha/FB-1")
    assert fb1["status"] == "settled"
    _, nx = get(world, "/trades/member-a/NX-1")  # the whole batch failed: each ticket with its code
    assert (nx["status"], nx["code"]) == ("failed", "not_exchange")


@pytest.mark.io
def test_a_later_settlement_wins_over_an_earlier_failure(world: World) -> None:
    _, r1 = get(world, "/trades/xchg-alpha/R-1")
    assert r1 == {
        "exchange": "xchg-alpha",
        "trade_id": "R-1",
        "status": "settled",
        "height": world.heights["R-1"],
        "trade_date": DAY,
    }
    for path in ("/trades/xchg-alpha/NEVER", "/trades/other/F-1"):
        status, body = get(world, path)
        assert (status, body["error"]["code"]) == (404, "unknown_trade"), body


def test_failed_trades_from_a_block() -> None:
    """The pure core: a failed settle, a failed batch (each ticket), a batch's trade_failed
    events; receipts pair with transactions by position and hash; junk tickets are skipped."""
    maker = TxMaker()
    txs = [
        maker.tx("xchg-alpha", "settlement", "settle", ["T-1", "A", "B", "I", 1, 1, DAY]),
        maker.tx(
            "xchg-alpha",
            "settlement",
            "settle_batch",
            [[["T-2", "A", "B", "I", 1, 1, DAY], [7], "junk", ["a b"]]],
        ),
        maker.tx("xchg-alpha", "settlement", "settle_batch", [[["T-3", "A", "B", "I", 1, 1, DAY]]]),
        maker.tx("xchg-alpha", "custody", "deposit", ["T-9"]),
        maker.tx("member-a", "settlement", "settle", ["T-4"]),
        maker.tx("xchg-alpha", "cycles", "submit", ["C-1", "A", "B", "I", 1, 1, DAY, 2]),
        maker.tx("xchg-alpha", "cycles", "submit_batch", [[["C-2", "A", "B", "I", 1, 1, DAY, 2]]]),
    ]
    refused_event = (
        "cycles",
        "trade_refused",
        (("trade_id", "C-2"), ("code", "instrument_halted"), ("message", "m")),
    )
    close_event = (
        "cycles",
        "trade_failed",
        (("date", 20), ("exchange", "xchg-beta"), ("trade_id", "C-0"), ("code", "insufficient_cash"),
         ("account", "A-C001")),
    )  # fmt: skip
    failed_event = (
        "settlement",
        "trade_failed",
        (("trade_id", "T-3"), ("code", "same_account"), ("message", "m")),
    )
    receipts = [
        Receipt(KIND_TX, txs[0].hash, "insufficient_cash", "short", ()),
        Receipt(KIND_TX, txs[1].hash, "not_exchange", "no", ()),
        Receipt(KIND_TX, txs[2].hash, "ok", "", (failed_event,)),
        Receipt(KIND_TX, txs[3].hash, "unknown_account", "no", ()),
        Receipt(KIND_TX, b"\x00" * 32, "bad", "not its receipt", ()),
        Receipt(KIND_TX, txs[5].hash, "bad_tplus", "no", ()),
        Receipt(KIND_TX, txs[6].hash, "ok", "", (refused_event,)),
        Receipt(KIND_TASK, b"\x01" * 8, "ok", "", (close_event,)),
    ]
    found = [(t.exchange, t.trade_id, t.index, t.code) for t in compute_failed_trades(txs, receipts)]
    assert found == [
        ("xchg-alpha", "T-1", 0, "insufficient_cash"),
        ("xchg-alpha", "T-2", 1, "not_exchange"),
        ("xchg-alpha", "T-3", 2, "same_account"),
        ("xchg-alpha", "C-1", 5, "bad_tplus"),
        ("xchg-alpha", "C-2", 6, "instrument_halted"),
        ("xchg-beta", "C-0", 7, "insufficient_cash"),
    ]
    (closed,) = [t for t in compute_failed_trades(txs, receipts) if t.trade_id == "C-0"]
    assert closed.tx is None and "close of cycle 20: A-C001 was short" in closed.message


@pytest.mark.io
def test_no_settled_record_and_an_index_behind_the_head_is_catching_up(world: World) -> None:
    """Runs last: holds the index back (its catching up stopped), then lets it catch up."""
    server = world.node.rpc
    assert server is not None and server.index is not None
    index = server.index

    def hold_back() -> None:
        index.start_catch_up = lambda: None  # type: ignore[method-assign]
        index.height -= 1

    world.nt.on_loop(hold_back)
    try:
        status, body = get(world, "/trades/xchg-alpha/NEVER")
        assert (status, body["error"]["code"]) == (503, "index_catching_up"), body
        assert get(world, "/trades/xchg-alpha/F-1")[1]["status"] == "failed"  # indexed before
        assert get(world, "/trades/xchg-alpha/R-1")[1]["status"] == "settled"  # state needs no index
    finally:

        def release() -> None:
            del index.start_catch_up
            index.start_catch_up()

        world.nt.on_loop(release)
    for _ in range(500):
        status, body = get(world, "/trades/xchg-alpha/NEVER")
        if status == 404:
            break
        assert body["error"]["code"] == "index_catching_up", body
        time.sleep(0.02)
    assert body["error"]["code"] == "unknown_trade"
