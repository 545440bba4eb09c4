"""The HTTP API of docs/API.md against a real node: one single-validator network per module.

The node runs on its own event loop in a background thread (as it would in its own process);
each test is an HTTP client on another loop. The module's fixture makes a small history first:
custodian deposits, single trades and a batch with a failing ticket, and withdrawals that are
confirmed, cancelled and rejected. Then every endpoint is checked for real values (balances equal
what the trades imply, history deltas sum to the balance change, proofs verify against the
returned state root, the event stream replays then goes live, metrics parse) and for bad input
(the documented code and status, and the node still serving afterwards). The last test stops the
node, deletes its account-history index and checks that the restarted node rebuilds it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from chain.encoding import decode
from chain.proof import verify_proof
from chain.state import BlockState
from chain.tx import SignedTx
from cli.localnet.network import init_network
from cli.trade_dates import today
from contracts.accounts import balance_in
from node import rpc
from node.config import ConsensusSection
from node.events import EventHub
from node.runtime import Node
from tests.netutil import TxMaker

DAY = today()  # the trade date of this module's tickets: the nodes' clock is the wall clock

FAST = ConsensusSection(
    timeout_propose_ms=400, timeout_prevote_ms=200, timeout_precommit_ms=200, timeout_delta_ms=100,
    commit_wait_ms=10, heartbeat_ms=300,
)  # fmt: skip

GENESIS_USD = {"A-C001": 1_000_000_00, "B-C001": 500_000_00, "A-C002": 250_000_00}
GENESIS_ACME = {"A-C001": 0, "B-C001": 5_000, "A-C002": 0}
T1 = ["T1", "A-C001", "B-C001", "ACME", 500, 182_50, DAY]  # consideration 9,125,000 cents
T2 = ["T2", "B-C001", "A-C001", "ACME", 100, 180_00, DAY]  # 1,800,000 cents
BATCH = [
    ["B-1", "A-C002", "B-HOUSE", "BTC", 10_000_000, 97_000_00, DAY],  # 0.1 BTC: 970,000 cents
    ["B-2", "A-C001", "B-C001", "ACME", 1_000_000, 1_00, DAY],  # B-C001 has too little: fails
]


class NodeThread:
    """A node on its own event loop in a background thread."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-test-node", daemon=True)
        self.thread.start()
        self.node: Node | None = None

    def call(self, coro: Awaitable[Any], timeout: float = 30) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)  # type: ignore[arg-type]

    def on_loop(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the node's loop (between its event handlers) and return its result."""

        async def go() -> Any:
            return fn()

        return self.call(go())

    def start(self) -> Node:
        async def go() -> Node:
            node = Node(self.home)
            await node.start()
            return node

        self.node = self.call(go())
        return self.node

    def stop(self) -> None:
        if self.node is not None:
            self.call(self.node.shutdown())
            self.node = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    @property
    def url(self) -> str:
        assert self.node is not None and self.node.rpc is not None
        host, port = self.node.rpc.address
        return f"http://{host}:{port}"


@dataclass
class World:
    nt: NodeThread
    heights: dict[str, int] = field(default_factory=dict)  # what -> the height it committed at
    tx_hashes: dict[str, str] = field(default_factory=dict)

    @property
    def node(self) -> Node:
        assert self.nt.node is not None
        return self.nt.node

    @property
    def url(self) -> str:
        return self.nt.url


def run(coro: Awaitable[Any], timeout: float = 30) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))  # type: ignore[arg-type]


async def fetch(http: aiohttp.ClientSession, method: str, url: str, **kw: Any) -> tuple[int, Any]:
    async with http.request(method, url, **kw) as resp:
        text = await resp.text()
        try:
            return resp.status, json.loads(text)
        except ValueError:
            return resp.status, text


async def submit(http: aiohttp.ClientSession, url: str, txs: list[SignedTx]) -> list[dict[str, Any]]:
    """POST the transactions, wait for their commit, and return their statuses."""
    status, body = await fetch(
        http, "POST", url + "/txs?wait=commit&timeout_ms=20000", json={"txs": [t.encode().hex() for t in txs]}
    )
    assert status == 200 and not body["refused"], body
    assert all(t["status"] == "committed" for t in body["txs"]), body
    return body["txs"]  # type: ignore[no-any-return]


def _make_history(world: World) -> None:
    maker = TxMaker()

    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            deposits = [
                maker.tx("custodian", "custody", "deposit", ["A-C001", "USD", 250_000_00, "wire-1"]),
                maker.tx("custodian", "custody", "deposit", ["A-C002", "ACME", 1_000, "sec-1"]),
            ]
            statuses = await submit(http, world.url, deposits)
            assert all(st["receipt"]["ok"] for st in statuses), statuses
            world.heights["deposits"] = statuses[0]["height"]
            trades = [
                maker.tx("xchg-alpha", "settlement", "settle", T1),
                maker.tx("xchg-alpha", "settlement", "settle", T2),
                maker.tx("xchg-alpha", "settlement", "settle_batch", [BATCH]),
            ]
            statuses = await submit(http, world.url, trades)
            assert all(st["receipt"]["ok"] for st in statuses), statuses
            names = [e[1] for e in statuses[2]["receipt"]["events"]]
            assert names == ["trade_settled", "trade_failed", "batch_settled"]
            world.heights.update(
                T1=statuses[0]["height"], T2=statuses[1]["height"], batch=statuses[2]["height"]
            )
            world.tx_hashes["T1"] = statuses[0]["hash"]
            requests = [
                maker.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 100_00]),  # id 1
                maker.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 50_00]),  # id 2
                maker.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 25_00]),  # id 3
            ]
            statuses = await submit(http, world.url, requests)
            assert [e[2][0] for st in statuses for e in st["receipt"]["events"]] == [
                ["id", 1],
                ["id", 2],
                ["id", 3],
            ]
            world.heights["requests"] = statuses[-1]["height"]
            ends = [
                maker.tx("custodian", "custody", "confirm_withdrawal", [1]),
                maker.tx("member-a", "custody", "cancel_withdrawal", [2]),
                maker.tx("custodian", "custody", "reject_withdrawal", [3, "compliance hold"]),
            ]
            statuses = await submit(http, world.url, ends)
            assert all(st["receipt"]["ok"] for st in statuses), statuses
            world.heights["ends"] = statuses[-1]["height"]

    run(go())


def one_node_world(
    tmp_path_factory: pytest.TempPathFactory, name: str, make_history: Callable[[World], None]
) -> Iterator[World]:
    """A one-validator network in a thread, with ``make_history`` run on it, until closed."""
    directory = tmp_path_factory.mktemp(name) / "net"
    doc = init_network(directory, 1, 0, base_port=0, consensus=FAST)
    nt = NodeThread(directory / doc["nodes"][0]["home"])
    try:
        nt.start()
        w = World(nt)
        make_history(w)
        yield w
    finally:
        nt.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    yield from one_node_world(tmp_path_factory, "api", _make_history)


# --- expected values --------------------------------------------------------------------------
EXPECTED = {
    # available USD and ACME after the history above
    "A-C001": {"USD": 1_000_000_00 + 250_000_00 - 9_125_000 + 1_800_000 - 100_00, "ACME": 500 - 100},
    "B-C001": {"USD": 500_000_00 + 9_125_000 - 1_800_000, "ACME": 5_000 - 500 + 100},
    "A-C002": {"USD": 250_000_00 - 970_000, "ACME": 1_000, "BTC": 10_000_000},
}


@pytest.mark.io
def test_accounts_show_the_balances_the_trades_imply(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            for account, expected in EXPECTED.items():
                status, body = await fetch(http, "GET", f"{world.url}/accounts/{account}")
                assert status == 200, body
                got = {b["asset"]: b["available"] for b in body["balances"]}
                for asset, amount in expected.items():
                    assert got[asset] == amount, (account, asset)
                assert all(b["locked"] == 0 for b in body["balances"])
                assert [b["asset"] for b in body["balances"]] == sorted(got)
                assert body["height"] >= world.heights["ends"]
            _, body = await fetch(http, "GET", f"{world.url}/accounts/A-C001")
            assert {k: body[k] for k in ("id", "owner", "kind", "client", "status")} == {
                "id": "A-C001", "owner": "member-a", "kind": "client", "client": "client-001", "status": "active",
            }  # fmt: skip
            usd = next(b for b in body["balances"] if b["asset"] == "USD")
            assert (
                usd["decimals"] == 2 and usd["display"] == "1,176,650.00" and usd["locked_display"] == "0.00"
            )
            _, body = await fetch(http, "GET", f"{world.url}/accounts/A-C002")
            btc = next(b for b in body["balances"] if b["asset"] == "BTC")
            assert btc["decimals"] == 8 and btc["display"] == "0.10000000"
            # and the API agrees with the state read directly
            state_usd = world.nt.on_loop(lambda: balance_in(BlockState(world.node.store), "A-C001", "USD"))
            assert state_usd == (EXPECTED["A-C001"]["USD"], 0)

    run(go())


@pytest.mark.io
def test_history_deltas_sum_to_the_balance_change(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            for account, expected in EXPECTED.items():
                status, body = await fetch(http, "GET", f"{world.url}/accounts/{account}/history?limit=1000")
                assert status == 200, body
                assert body["account"] == account and body["next_from_height"] is None
                moves = body["movements"]
                assert [m["height"] for m in moves] == sorted(m["height"] for m in moves)
                opening = {"USD": GENESIS_USD[account], "ACME": GENESIS_ACME[account], "BTC": 0}
                for asset, amount in expected.items():
                    delta = sum(m.get("delta", 0) for m in moves if m["asset"] == asset)
                    locked = sum(m.get("locked_delta", 0) for m in moves if m["asset"] == asset)
                    assert opening[asset] + delta == amount, (account, asset)
                    assert locked == 0
                for m in moves:
                    assert ("delta" in m) != ("locked_delta" in m)
            _, body = await fetch(http, "GET", f"{world.url}/accounts/A-C001/history")
            moves = body["movements"]
            t1 = [m for m in moves if m["ref"] == "T1"]
            assert {(m["asset"], m["delta"]) for m in t1} == {("ACME", 500), ("USD", -9_125_000)}
            assert all(m["counterparty"] == "B-C001" and m["event"] == "trade_settled" for m in t1)
            assert all(m["height"] == world.heights["T1"] and m["tx"] == world.tx_hashes["T1"] for m in t1)
            deposit = next(m for m in moves if m["event"] == "deposited")
            assert (deposit["ref"], deposit["delta"], deposit["height"]) == (
                "wire-1",
                250_000_00,
                world.heights["deposits"],
            )
            wd = [
                (m["event"], m["ref"], m.get("delta"), m.get("locked_delta"))
                for m in moves
                if m["event"].startswith("withdraw")
            ]
            assert wd == [
                ("withdrawal_requested", "1", -100_00, None), ("withdrawal_requested", "1", None, 100_00),
                ("withdrawal_requested", "2", -50_00, None), ("withdrawal_requested", "2", None, 50_00),
                ("withdrawal_requested", "3", -25_00, None), ("withdrawal_requested", "3", None, 25_00),
                ("withdrawn", "1", None, -100_00),
                ("withdrawal_cancelled", "2", None, -50_00), ("withdrawal_cancelled", "2", 50_00, None),
                ("withdrawal_rejected", "3", None, -25_00), ("withdrawal_rejected", "3", 25_00, None),
            ]  # fmt: skip
            assert "B-2" not in {m["ref"] for m in moves}  # the failed ticket moved nothing
            # paging: limit 1 still returns whole heights, and the pages add up to the whole
            pages, start = [], 1
            while start is not None:
                status, page = await fetch(
                    http, "GET", f"{world.url}/accounts/A-C001/history?limit=1&from_height={start}"
                )
                assert status == 200 and page["movements"], page
                assert len({m["height"] for m in page["movements"]}) == 1
                pages.extend(page["movements"])
                start = page["next_from_height"]
                assert start is None or start > page["movements"][-1]["height"]
            assert pages == moves
            _, later = await fetch(
                http, "GET", f"{world.url}/accounts/A-C001/history?from_height={world.heights['requests']}"
            )
            assert later["movements"] == [m for m in moves if m["height"] >= world.heights["requests"]]

    run(go())


@pytest.mark.io
def test_state_proofs_verify_against_the_returned_root(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            key = b"accounts/bal/A-C001/USD"
            status, body = await fetch(http, "GET", f"{world.url}/state/proof?key={key.hex()}")
            assert status == 200, body
            root = bytes.fromhex(body["state_root"])
            value = bytes.fromhex(body["value"])
            assert decode(value) == [EXPECTED["A-C001"]["USD"], 0]
            assert verify_proof(root, key, value, decode(bytes.fromhex(body["proof"])))
            assert not verify_proof(root, key, value + b"\x00", decode(bytes.fromhex(body["proof"])))
            assert (
                body["header"]["state_root"] == body["state_root"]
                and body["header"]["height"] == body["height"]
            )
            _, block = await fetch(http, "GET", f"{world.url}/blocks/{body['height']}")
            assert block["header"]["state_root"] == body["state_root"]
            absent = b"accounts/bal/A-C001/NOPE"
            _, body = await fetch(http, "GET", f"{world.url}/state/proof?key={absent.hex()}")
            assert body["value"] is None
            assert verify_proof(
                bytes.fromhex(body["state_root"]), absent, None, decode(bytes.fromhex(body["proof"]))
            )

    run(go())


@pytest.mark.io
def test_blocks_by_height_hash_latest_and_ranges(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            h = world.heights["T1"]
            status, by_height = await fetch(http, "GET", f"{world.url}/blocks/{h}?raw=1")
            assert status == 200 and world.tx_hashes["T1"] in by_height["txs"]
            assert by_height["certificate"]["height"] == h and by_height["raw"]
            assert by_height["last_commit"]["height"] == h - 1
            _, by_hash = await fetch(http, "GET", f"{world.url}/blocks/{by_height['hash']}")
            assert by_hash["height"] == h and by_hash["header"] == by_height["header"]
            _, latest = await fetch(http, "GET", f"{world.url}/blocks/latest")
            assert latest["height"] >= world.heights["ends"]
            _, page = await fetch(http, "GET", f"{world.url}/blocks?from=1&to={h}")
            assert [b["height"] for b in page["blocks"]] == list(range(1, h + 1)) and page["next"] == h + 1
            row = page["blocks"][h - 1]
            assert (
                row["hash"] == by_height["hash"] and row["txs"] == len(by_height["txs"]) and row["round"] == 0
            )
            _, page = await fetch(http, "GET", f"{world.url}/blocks?from={h}")
            assert page["blocks"][0]["height"] == h and page["next"] is None
            _, page = await fetch(http, "GET", f"{world.url}/blocks?from=1000000")
            assert page == {"blocks": [], "next": None}

    run(go())
    # a page cut at its maximum names the next page's start
    old = rpc.BLOCKS_PAGE_MAX
    rpc.BLOCKS_PAGE_MAX = 2
    try:
        _, page = run(_get(world, "/blocks?from=1"))
        assert [b["height"] for b in page["blocks"]] == [1, 2] and page["next"] == 3
    finally:
        rpc.BLOCKS_PAGE_MAX = old


async def _get(world: World, path: str, **kw: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        return await fetch(http, "GET", world.url + path, **kw)


@pytest.mark.io
def test_participants_instruments_validators_and_trades(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            _, body = await fetch(http, "GET", f"{world.url}/participants")
            ids = [p["id"] for p in body["participants"]]
            assert ids == sorted(ids) and {"admin", "member-a", "xchg-alpha", "custodian"} <= set(ids)
            admin = next(p for p in body["participants"] if p["id"] == "admin")
            assert (
                admin["roles"] == ["admin"]
                and admin["threshold"] == 2
                and len(admin["keys"]) == 3
                and admin["active"]
            )
            _, member = await fetch(http, "GET", f"{world.url}/participants/member-a")
            assert member["nonce"] == 4 and member["next_nonce"] == 5  # three requests and a cancel
            assert member["roles"] == ["member"]
            _, body = await fetch(http, "GET", f"{world.url}/instruments")
            usd = next(i for i in body["instruments"] if i["id"] == "USD")
            acme = next(i for i in body["instruments"] if i["id"] == "ACME")
            assert usd == {"id": "USD", "kind": "cash", "decimals": 2, "currency": None, "status": "active"}
            assert acme["currency"] == "USD" and acme["kind"] == "equity"
            _, body = await fetch(http, "GET", f"{world.url}/validators")
            (v,) = body["validators"]
            assert (
                v["pub_key"] == world.node.key.public.hex()
                and v["name"] == "validator-0"
                and body["total_power"] == v["power"]
            )
            _, trade = await fetch(http, "GET", f"{world.url}/trades/xchg-alpha/T1")
            assert trade == {
                "exchange": "xchg-alpha",
                "trade_id": "T1",
                "status": "settled",
                "height": world.heights["T1"],
                "trade_date": DAY,
            }
            _, trade = await fetch(http, "GET", f"{world.url}/trades/xchg-alpha/B-1")
            assert trade["height"] == world.heights["batch"]
            _, failed = await fetch(http, "GET", f"{world.url}/trades/xchg-alpha/B-2")  # no record in state
            assert (failed["status"], failed["code"], failed["height"]) == (
                "failed",
                "insufficient_securities",
                world.heights["batch"],
            )
            for path, code in [
                ("/trades/other-exchange/T1", "unknown_trade"),
                ("/participants/nobody", "unknown_participant"),
                ("/accounts/NOPE", "unknown_account"),
                ("/accounts/NOPE/history", "unknown_account"),
            ]:
                status, body = await fetch(http, "GET", world.url + path)
                assert status == 404 and body["error"]["code"] == code, (path, body)

    run(go())


@pytest.mark.io
def test_next_nonce_counts_pending_transactions(world: World) -> None:
    """A transaction waiting in the mempool raises next_nonce above the committed nonce."""
    maker = TxMaker()
    maker.nonces["oracle-1"] = 0
    pending = [maker.tx("oracle-1", "custody", "cancel_withdrawal", [999]) for _ in range(2)]

    def admit_and_read() -> tuple[int, int]:
        # On the node's loop: admitted and read before any block can include them.
        node = world.node
        for stx in pending:
            node.mempool.add(stx, len(stx.encode()), node.ledger.head.height + 1)
        queue = node.mempool._by_sender["oracle-1"]
        return len(queue), queue[-1].tx.tx.nonce

    assert world.nt.on_loop(admit_and_read) == (2, 2)
    status, body = run(_get(world, "/participants/oracle-1"))
    # either still pending (next 3 over committed 0) or already committed (nonce 2): both say 3
    assert status == 200 and body["next_nonce"] == 3, body


@pytest.mark.io
def test_status_has_age_and_syncing(world: World) -> None:
    status, body = run(_get(world, "/status"))
    assert status == 200
    assert body["syncing"] is False and 0 <= body["last_block_age_ms"] < 60_000
    assert body["chain_id"] == world.node.chain_id and body["height"] >= world.heights["ends"]


@pytest.mark.io
def test_metrics_parse_and_match_the_head(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            _, before = await fetch(http, "GET", f"{world.url}/status")
            async with http.get(f"{world.url}/metrics") as resp:
                assert resp.status == 200 and resp.headers["Content-Type"].startswith(
                    "text/plain; version=0.0.4"
                )
                text = await resp.text()
            _, after = await fetch(http, "GET", f"{world.url}/status")
        samples: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        assert before["height"] <= samples["clearchain_height"] <= after["height"]
        assert samples["clearchain_txs_committed_total"] >= 11  # the module's history
        for name in (
            "clearchain_mempool_txs",
            "clearchain_mempool_bytes",
            "clearchain_consensus_round",
            "clearchain_peers",
            "clearchain_evidence_total",
        ):
            assert name in samples
        assert samples['clearchain_p2p_events_total{event="frames_in"}'] >= 0
        assert samples["clearchain_unauthentic_messages_total"] == 0
        assert 'clearchain_p2p_events_total{event="disconnects_garbage"}' in samples
        buckets = [v for k, v in samples.items() if k.startswith("clearchain_commit_latency_seconds_bucket")]
        assert len(buckets) == 11 and buckets == sorted(buckets)
        assert buckets[-1] == samples["clearchain_commit_latency_seconds_count"] > 0

    run(go())


# --- the event stream -------------------------------------------------------------------------
async def read_frames(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, str]]:
    """Read ``count`` SSE frames (comments count as frames with a "comment" field)."""
    frames: list[dict[str, str]] = []
    current: dict[str, str] = {}
    while len(frames) < count:
        raw = await resp.content.readline()
        assert raw, "the stream ended"
        line = raw.decode().rstrip("\n")
        if not line:
            if current:
                frames.append(current)
                current = {}
            continue
        name, _, value = line.partition(":")
        current["comment" if name == "" else name] = value.strip()
    return frames


async def read_blocks(resp: aiohttp.ClientResponse, count: int) -> list[dict[str, Any]]:
    out = []
    while len(out) < count:
        (frame,) = await read_frames(resp, 1)
        if "comment" in frame:
            continue
        assert frame["event"] == "block" and int(frame["id"]) == json.loads(frame["data"])["height"]
        out.append(json.loads(frame["data"]))
    return out


@pytest.mark.io
def test_events_replay_from_a_height_then_deliver_new_blocks(world: World) -> None:
    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            head = world.node.ledger.head.height
            async with http.get(f"{world.url}/events?from_height=1") as resp:
                assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/event-stream")
                blocks = await read_blocks(resp, head + 2)  # the replay, then two live blocks
            assert [b["height"] for b in blocks] == list(range(1, head + 3))
            t1 = blocks[world.heights["T1"] - 1]
            tx = next(t for t in t1["txs"] if t["hash"] == world.tx_hashes["T1"])
            assert tx["ok"] and tx["events"][0][:2] == ["settlement", "trade_settled"]
            _, stored = await fetch(http, "GET", f"{world.url}/blocks/{world.heights['T1']}")
            assert t1["hash"] == stored["hash"] and t1["time_ms"] == stored["header"]["time_ms"]
            # resume after the last id seen, as a reconnecting browser does
            async with http.get(f"{world.url}/events?from_height=1", headers={"Last-Event-ID": "3"}) as resp:
                (first,) = await read_blocks(resp, 1)
            assert first["height"] == 4
            # by default only new blocks
            async with http.get(f"{world.url}/events") as resp:
                (first,) = await read_blocks(resp, 1)
            assert first["height"] > head

    run(go())
    _wait_streams_closed(world)


def _hub(world: World) -> EventHub:
    return world.node.rpc.events  # type: ignore[no-any-return, union-attr]


def _wait_streams_closed(world: World) -> None:
    """Every /events handler has ended and unsubscribed (it notices a closed client at once)."""
    for _ in range(250):
        if world.nt.on_loop(lambda: (_hub(world).streams, len(_hub(world).clients))) == (0, 0):
            return
        time.sleep(0.02)
    raise AssertionError("an event stream outlived its client")


@pytest.mark.io
def test_events_keepalive_and_disconnect_leave_nothing_behind(world: World) -> None:
    async def go() -> None:
        world.nt.on_loop(lambda: setattr(_hub(world), "keepalive_s", 0.05))
        try:
            async with aiohttp.ClientSession() as http:
                # a start far ahead: nothing to send, so the stream keeps itself alive
                async with http.get(f"{world.url}/events?from_height=100000000") as resp:
                    frames = await read_frames(resp, 3)
                    assert frames[-1] == {"comment": "keepalive"}
                    assert world.nt.on_loop(lambda: len(_hub(world).clients)) == 1
                # several clients that go away mid-stream
                for _ in range(3):
                    async with http.get(f"{world.url}/events?from_height=1") as resp:
                        await read_blocks(resp, 1)
        finally:
            world.nt.on_loop(lambda: setattr(_hub(world), "keepalive_s", 15.0))

    run(go())
    _wait_streams_closed(world)


@pytest.mark.io
def test_event_hub_drops_a_client_that_falls_behind(world: World) -> None:
    def go() -> tuple[bool, bool, int]:
        store = world.node.store
        hub = EventHub(queue_blocks_max=3)
        slow, fast = hub.subscribe(), hub.subscribe()
        for height in range(1, 5):
            block, receipts = store.block(height), store.receipts(height)
            assert block is not None and receipts is not None
            hub.on_commit(block, tuple(receipts))
            if height < 4:
                fast.queue.get_nowait()  # this one keeps up
        return slow.dropped and slow.closed, fast.closed, len(hub.clients)

    assert world.nt.on_loop(go) == (True, False, 1)


# --- bad input --------------------------------------------------------------------------------
@pytest.mark.io
def test_bad_input_gets_the_documented_error_and_the_node_serves_on(world: World) -> None:
    maker = TxMaker()
    maker.nonces["xchg-alpha"] = 100
    good = maker.tx("xchg-alpha", "settlement", "settle", ["X-1", "A-C001", "B-C001", "ACME", 1, 1_00, DAY])
    forged = SignedTx(good.tx, tuple((k, bytes(64)) for k, _ in good.signatures), good.hash)
    other_chain = TxMaker(chain_id="another-chain").tx(
        "xchg-alpha", "settlement", "settle", ["X-2", "A-C001", "B-C001", "ACME", 1, 1_00, DAY]
    )

    async def go() -> None:
        async with aiohttp.ClientSession() as http:
            url = world.url
            json_header = {"Content-Type": "application/json"}
            cases: list[tuple[str, str, dict[str, Any], int, str]] = [
                ("POST", "/txs", {"data": b"{not json"}, 400, "bad_json"),
                ("POST", "/txs", {"data": b"\xff\xfe"}, 400, "bad_json"),
                ("POST", "/txs", {"data": b"[" * 100_000}, 400, "bad_json"),
                ("POST", "/txs", {"json": [1, 2]}, 400, "bad_request"),
                ("POST", "/txs", {"json": {"txs": "00"}}, 400, "bad_request"),
                ("POST", "/txs", {"json": {"txs": ["00"] * 1001}}, 400, "bad_request"),
                ("POST", "/txs", {"data": b"x" * (10 * 1024 * 1024)}, 413, "body_too_large"),
                ("POST", "/txs?wait=commit&timeout_ms=abc", {"json": {"tx": "00"}}, 400, "bad_request"),
                ("GET", "/txs/xyz", {}, 400, "bad_request"),
                ("GET", "/blocks/abc", {}, 400, "bad_request"),
                ("GET", "/blocks/-1", {}, 400, "bad_request"),
                ("GET", "/blocks/1e3", {}, 400, "bad_request"),
                ("GET", "/blocks/" + "9" * 40, {}, 400, "bad_request"),
                ("GET", "/blocks/" + "zz" * 32, {}, 400, "bad_request"),
                ("GET", "/blocks/" + "ab" * 32, {}, 404, "block_not_found"),
                ("GET", "/blocks/99999999", {}, 404, "block_not_found"),
                ("GET", "/blocks?from=x", {}, 400, "bad_request"),
                ("GET", "/blocks?from=5&to=2", {}, 400, "bad_request"),
                ("GET", "/accounts/bad%20id", {}, 400, "bad_request"),
                ("GET", "/accounts/" + "a" * 65, {}, 400, "bad_request"),
                ("GET", "/accounts/A-C001/history?limit=0", {}, 400, "bad_request"),
                ("GET", "/accounts/A-C001/history?limit=ten", {}, 400, "bad_request"),
                ("GET", "/accounts/A-C001/history?from_height=-3", {}, 400, "bad_request"),
                ("GET", "/state/proof", {}, 400, "bad_request"),
                ("GET", "/state/proof?key=xyz", {}, 400, "bad_request"),
                ("GET", "/state/proof?key=", {}, 400, "bad_request"),
                ("GET", "/state/proof?key=" + "00" * 2000, {}, 400, "bad_request"),
                ("GET", "/participants/bad%2Fid", {}, 400, "bad_request"),
                ("GET", "/participants?after=%20", {}, 400, "bad_request"),
                ("GET", "/trades/xchg-alpha/bad%20id", {}, 400, "bad_request"),
                ("GET", "/events?from_height=abc", {}, 400, "bad_request"),
                ("GET", "/events", {"headers": {"Last-Event-ID": "x"}}, 400, "bad_request"),
                ("GET", "/nope", {}, 404, "not_found"),
                ("DELETE", "/status", {}, 405, "method_not_allowed"),
                ("POST", "/accounts/A-C001", {"json": {}}, 405, "method_not_allowed"),
            ]
            for method, path, kw, want_status, code in cases:
                if "data" in kw:
                    kw = {**kw, "headers": json_header}
                try:
                    status, body = await fetch(http, method, url + path, **kw)
                except aiohttp.ClientError as exc:  # the server may close while the body streams
                    raise AssertionError(f"{method} {path}: {exc!r}") from exc
                assert status == want_status and body["error"]["code"] == code, (method, path, status, body)
            for stx, code in [(forged, "bad_signature"), (other_chain, "wrong_chain")]:
                status, body = await fetch(http, "POST", url + "/txs", json={"tx": stx.encode().hex()})
                assert status == 400 and body["refused"][0]["code"] == code, body
            status, body = await fetch(http, "POST", url + "/txs", json={"txs": ["zz", "00", 7]})
            assert status == 400 and [r["code"] for r in body["refused"]] == [
                "bad_hex",
                "tx_malformed",
                "bad_hex",
            ]
            status, body = await fetch(http, "GET", url + "/status")
            assert status == 200 and body["height"] >= world.heights["ends"]

    run(go())


def test_movements_of_a_withdrawal_requested_and_cancelled_in_one_block() -> None:
    """The pure core of the index: a cancel finds its request in the same block, and one whose
    request the index never saw is looked up (here: unknown, so it moves nothing)."""
    from chain.receipt import KIND_TASK, KIND_TX, Receipt
    from node.index import compute_movements

    def event(name: str, **fields: Any) -> tuple[str, str, tuple[tuple[str, Any], ...]]:
        return ("custody", name, tuple(fields.items()))

    receipts = [
        Receipt(
            KIND_TX,
            b"\x01" * 32,
            "ok",
            "",
            (event("withdrawal_requested", id=7, account="A", asset="USD", amount=5),),
        ),
        Receipt(KIND_TX, b"\x02" * 32, "ok", "", (event("withdrawal_cancelled", id=7),)),
        Receipt(KIND_TX, b"\x03" * 32, "not_requester", "no", (event("withdrawal_cancelled", id=7),)),
        Receipt(KIND_TASK, b"\x00" * 8, "ok", "", (event("withdrawal_rejected", id=8, reason="x"),)),
    ]
    moves, withdrawals = compute_movements(9, receipts, lambda iid: None, lambda wid: None)
    assert [(m.index, m.event, m.field, m.amount, m.ref) for m in moves] == [
        (0, "withdrawal_requested", "delta", -5, "7"),
        (0, "withdrawal_requested", "locked_delta", 5, "7"),
        (1, "withdrawal_cancelled", "locked_delta", -5, "7"),
        (1, "withdrawal_cancelled", "delta", 5, "7"),
    ]
    assert [m.seq for m in moves] == [0, 1, 2, 3] and all(m.account == "A" and m.height == 9 for m in moves)
    assert withdrawals == {7: None, 8: None}


# --- the index is a cache -----------------------------------------------------------------------
@pytest.mark.io
def test_index_rebuilds_after_deletion(world: World) -> None:
    """Runs last: restarts the module's node."""
    before = {a: run(_get(world, f"/accounts/{a}/history?limit=1000"))[1] for a in EXPECTED}
    home = world.nt.home
    world.nt.stop()
    shutil.rmtree(home / "index")
    world.nt.start()

    async def go() -> dict[str, Any]:
        after = {}
        for account in EXPECTED:
            for _ in range(500):
                status, body = await _get(world, f"/accounts/{account}/history?limit=1000")
                if status == 200:
                    break
                assert status == 503 and body["error"]["code"] == "index_catching_up", body
                await asyncio.sleep(0.02)
            after[account] = body
        return after

    after = run(go())
    for account in EXPECTED:
        old, new = before[account], after[account]
        assert new["movements"][: len(old["movements"])] == old["movements"], account
        # heartbeat blocks move no balance, so nothing was added since
        assert new["movements"] == old["movements"]


@pytest.mark.io
def test_a_node_without_account_history_says_so_and_serves_the_rest(tmp_path: Path) -> None:
    doc = init_network(tmp_path / "net", 1, 0, base_port=0, consensus=FAST, account_history=False)
    nt = NodeThread(tmp_path / "net" / doc["nodes"][0]["home"])
    try:
        nt.start()

        async def go() -> None:
            async with aiohttp.ClientSession() as http:
                statuses = await submit(
                    http, nt.url, [TxMaker().tx("xchg-alpha", "settlement", "settle", T2)]
                )
                assert statuses[0]["status"] == "committed"
                status, body = await fetch(http, "GET", f"{nt.url}/accounts/A-C001/history")
                assert (status, body["error"]["code"]) == (
                    503,
                    "index_unavailable",
                ) and "account_history" in body["error"]["message"]
                status, body = await fetch(http, "GET", f"{nt.url}/accounts/A-C001")
                assert status == 200

        run(go())
        assert not (nt.home / "index").exists()  # nothing indexed, nothing written
    finally:
        nt.close()
