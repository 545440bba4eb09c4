"""A node with ``storage.keep_blocks``: after many commits its old heights answer
``height_pruned`` through every reader (the API's blocks, history, event stream and tx status,
``clearchain export`` and ``block show``), and recent heights are still served."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from click.testing import CliRunner

from chain.history import HistoryPage
from cli.localnet.network import init_network
from cli.main import main
from cli.trade_dates import today
from node.config import StorageSection, load_config
from node.index import INDEX_DIR
from node.runtime import Node
from tests.netutil import TxMaker
from tests.test_api import FAST, NodeThread, fetch, run, submit

KEEP = 5
PAST_WINDOW = 4 * KEEP  # heights committed after the first trade before the checks
WAIT_S = 120  # a bound on waiting for heartbeat blocks, never an assertion on time


class PruningNodeThread(NodeThread):
    def start(self) -> Node:
        async def go() -> Node:
            cfg = load_config(self.home)
            # Below the config file's floor (1,000) on purpose: the runtime takes any value >= 1.
            node = Node(self.home, config=replace(cfg, storage=StorageSection(keep_blocks=KEEP)))
            await node.start()
            return node

        self.node = self.call(go())
        return self.node


@pytest.fixture(scope="module")
def pruned(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PruningNodeThread, str, int]]:
    """The node, the hash of a trade committed early, and its height, once it is pruned."""
    directory = tmp_path_factory.mktemp("keep") / "net"
    doc = init_network(directory, 1, 0, base_port=0, consensus=FAST)
    nt = PruningNodeThread(directory / doc["nodes"][0]["home"])
    try:
        nt.start()
        maker = TxMaker()

        async def go() -> tuple[str, int]:
            async with aiohttp.ClientSession() as http:
                trade = maker.tx(
                    "xchg-alpha",
                    "settlement",
                    "settle",
                    ["K1", "A-C001", "B-C001", "ACME", 5, 180_00, today()],
                )
                [status] = await submit(http, nt.url, [trade])
                return status["hash"], status["height"]

        tx_hash, height = run(go())
        deadline = time.monotonic() + WAIT_S
        while nt.on_loop(lambda: nt.node.ledger.head.height) < height + PAST_WINDOW:  # type: ignore[union-attr]
            assert time.monotonic() < deadline, "the node stopped committing heartbeat blocks"
            time.sleep(0.2)
        yield nt, tx_hash, height
    finally:
        nt.close()


def _get(url: str, path: str) -> tuple[int, Any]:
    async def go() -> tuple[int, Any]:
        async with aiohttp.ClientSession() as http:
            return await fetch(http, "GET", url + path)

    return run(go())  # type: ignore[no-any-return]


def _status(nt: PruningNodeThread) -> dict[str, Any]:
    code, body = _get(nt.url, "/status")
    assert code == 200
    return body  # type: ignore[no-any-return]


@pytest.mark.io
def test_status_reports_the_window(pruned: tuple[PruningNodeThread, str, int]) -> None:
    nt, _, height = pruned
    doc = _status(nt)
    assert doc["keep_blocks"] == KEEP
    # pruning runs after each commit, so between two commits the window is exact
    assert height < doc["blocks_pruned_below"] <= doc["height"] - KEEP + 1


@pytest.mark.io
def test_old_blocks_answer_height_pruned_and_recent_ones_are_served(
    pruned: tuple[PruningNodeThread, str, int],
) -> None:
    nt, _, height = pruned
    doc = _status(nt)
    recent = doc["height"] - 1  # held for KEEP - 2 more commits, whatever commits meanwhile
    for path in (
        f"/blocks/{height}",
        "/blocks/1",
        "/blocks?from=1",
        f"/history?from={height}",
        "/events?from_height=1",
    ):
        code, body = _get(nt.url, path)
        assert code == 410 and body["error"]["code"] == "height_pruned", (path, body)
        assert "keeps blocks from" in body["error"]["message"], body
    code, body = _get(nt.url, f"/blocks/{recent}")
    assert code == 200 and body["height"] == recent
    code, body = _get(nt.url, "/blocks/0")  # genesis is always kept
    assert code == 200 and body["height"] == 0
    code, body = _get(nt.url, f"/blocks?from={recent}&to={recent + 1}")
    assert code == 200 and [b["height"] for b in body["blocks"]] == [recent, recent + 1]

    async def page() -> bytes:
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{nt.url}/history?from={recent - 1}&to={recent + 1}") as resp:
                assert resp.status == 200
                return await resp.read()

    records = HistoryPage.decode(run(page())).records
    assert [r.height for r in records] == [recent - 1, recent, recent + 1]
    assert all(r.block and r.certificate and r.receipts is not None for r in records)


@pytest.mark.io
def test_a_pruned_tx_is_unknown_and_says_the_node_prunes(pruned: tuple[PruningNodeThread, str, int]) -> None:
    nt, tx_hash, height = pruned
    code, body = _get(nt.url, f"/txs/{tx_hash}")
    assert code == 404 and body["status"] == "unknown"
    assert body["blocks_pruned_below"] > height


@pytest.mark.io
def test_export_and_block_show_of_a_pruned_height_say_height_pruned(
    pruned: tuple[PruningNodeThread, str, int], tmp_path: Path
) -> None:
    nt, _, height = pruned
    out = tmp_path / "x.msgpack"
    result = CliRunner().invoke(main, ["export", "--node", nt.url, "--from", "1", "--out", str(out)])
    assert result.exit_code != 0 and "height_pruned" in result.stderr and "Traceback" not in result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    result = CliRunner().invoke(main, ["block", "show", str(height), "--node", nt.url])
    assert result.exit_code != 0 and "height_pruned" in result.stderr, result.output
    recent = str(_status(nt)["height"] - 1)
    result = CliRunner().invoke(main, ["export", "--node", nt.url, "--from", recent, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0
    result = CliRunner().invoke(main, ["block", "show", recent, "--node", nt.url])
    assert result.exit_code == 0, result.output


class ConfiguredNodeThread(NodeThread):
    """A node started with its config file's settings changed by ``change``."""

    def __init__(self, home: Path, change: Any) -> None:
        super().__init__(home)
        self.change = change

    def start(self) -> Node:
        async def go() -> Node:
            node = Node(self.home, config=self.change(load_config(self.home)))
            await node.start()
            return node

        self.node = self.call(go())
        return self.node

    def height(self) -> int:
        return int(self.on_loop(lambda: self.node.ledger.head.height))  # type: ignore[union-attr]


def _wait(what: str, ok: Any) -> None:
    deadline = time.monotonic() + WAIT_S
    while not ok():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.2)


@pytest.mark.io
@pytest.mark.slow
def test_a_peer_behind_the_window_is_told_why_and_syncs_from_an_archive(tmp_path: Path) -> None:
    """A validator keeps 5 blocks, an observer keeps all. A new observer that can reach only the
    validator gets height_pruned and no blocks; reaching the archive too, it syncs."""
    directory = tmp_path / "net"
    doc = init_network(directory, 1, 2, base_port=0, consensus=FAST)
    node0, late, archive = (directory / n["home"] for n in doc["nodes"])
    late_key, archive_key = doc["nodes"][1]["node_key"], doc["nodes"][2]["node_key"]
    p2p0, p2p_archive = doc["nodes"][0]["p2p"], doc["nodes"][2]["p2p"]

    def pruning(cfg: Any) -> Any:
        return replace(cfg, storage=StorageSection(keep_blocks=KEEP))

    def archive_cfg(cfg: Any) -> Any:
        return replace(cfg, p2p=replace(cfg.p2p, observers=[late_key]))

    def late_cfg(peers: list[str]) -> Any:
        return lambda cfg: replace(cfg, p2p=replace(cfg.p2p, peers=peers, observers=[archive_key]))

    threads = [ConfiguredNodeThread(node0, pruning), ConfiguredNodeThread(archive, archive_cfg)]
    try:
        for t in threads:
            t.start()
        _wait("25 blocks on the validator and the archive", lambda: min(t.height() for t in threads) >= 25)
        assert _get(threads[0].url, "/blocks/1")[1]["error"]["code"] == "height_pruned"

        alone = ConfiguredNodeThread(late, late_cfg([p2p0]))
        threads.append(alone)
        alone.start()
        log = late / "node.log"
        _wait("the late node to be told height_pruned", lambda: "(height_pruned)" in log.read_text())
        assert alone.height() == 0
        alone.close()
        threads.remove(alone)

        both = ConfiguredNodeThread(late, late_cfg([p2p0, p2p_archive]))
        threads.append(both)
        both.start()
        target = threads[0].height()
        _wait("the late node to sync from the archive", lambda: both.height() >= target)
        assert _get(both.url, "/blocks/1")[0] == 200
    finally:
        for t in threads:
            t.close()


@pytest.mark.io
def test_an_account_index_behind_the_window_says_it_cannot_be_rebuilt(
    pruned: tuple[PruningNodeThread, str, int],
) -> None:
    """Last in the module: it restarts the node without its account-history index."""
    nt, _, _ = pruned
    nt.stop()
    shutil.rmtree(nt.home / INDEX_DIR)
    nt.start()
    code, body = _get(nt.url, "/accounts/A-C001/history")
    assert code == 503 and body["error"]["code"] == "index_unavailable", body
    assert "pruned" in body["error"]["message"]
    code, body = _get(nt.url, "/accounts/A-C001")  # state reads go on
    assert code == 200
