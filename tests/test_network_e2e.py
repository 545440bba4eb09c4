"""End to end on real processes: four validators and an observer on 127.0.0.1.

Issue 3's acceptance run: the validators commit at least 50 blocks of settled trades; one is
killed with SIGKILL mid-run, the others keep committing, and the restarted one catches up; an
observer that starts late syncs from genesis. Then every store is opened and compared block by
block: identical hashes and state roots, every certificate verifies against its validator set.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chain.errors import ClearchainError
from chain.store import Store
from chain.validation import validate_certificate
from cli.localnet.network import init_network
from cli.localnet.process import CODE_ROOT as REPO
from cli.localnet.process import NodeProcess, wait_until
from cli.trade_dates import today
from node.config import ConsensusSection
from tests.netutil import TxMaker

DAY = today()  # the trade date of this module's tickets: the nodes' clock is the wall clock

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

TARGET_HEIGHT = 50


def _trade(maker: TxMaker, n: int):  # type: ignore[no-untyped-def]
    """A trade that settles: sides alternate so neither member runs out of cash or stock."""
    if n % 2 == 0:
        return maker.tx(
            "xchg-alpha", "settlement", "settle", [f"E2E-{n}", "A-C001", "B-C001", "ACME", 1, 180_00, DAY]
        )
    return maker.tx(
        "xchg-alpha", "settlement", "settle", [f"E2E-{n}", "B-C001", "A-C001", "ACME", 1, 181_00, DAY]
    )


@pytest.mark.slow
def test_four_validators_and_an_observer(tmp_path: Path) -> None:
    net = init_network(
        tmp_path / "net", validators=4, observers=1, base_port=0,
        consensus=ConsensusSection(timeout_propose_ms=600, timeout_prevote_ms=300, timeout_precommit_ms=300, timeout_delta_ms=200, commit_wait_ms=20),
    )  # fmt: skip
    nodes = [NodeProcess(tmp_path / "net", n) for n in net["nodes"]]
    validators, observer = nodes[:4], nodes[4]
    maker = TxMaker()
    try:
        for v in validators:
            v.start()
        wait_until(lambda: all(v.height() >= 1 for v in validators), 60, "the first block", validators)

        sent = 0

        def submit_some(count: int) -> None:
            # One client, one node (never the one killed): its nonces must reach the mempool in order.
            nonlocal sent
            for _ in range(count):
                stx = _trade(maker, sent)
                status, body = validators[0].post("/txs", {"tx": stx.encode().hex()})
                assert status == 202, body
                sent += 1

        def heights(group: list[NodeProcess]) -> list[int]:
            return [n.height() for n in group]

        # Phase 1: trades until height 20 on every validator.
        while min(heights(validators)) < 20:
            submit_some(5)
            time.sleep(0.05)

        # Phase 2: kill -9 one validator; the other three keep committing.
        victim = validators[3]
        victim.kill9()
        live = validators[:3]
        before = max(heights(live))
        deadline = time.monotonic() + 60
        while max(heights(live)) < before + 10:
            assert time.monotonic() < deadline, "three of four validators stopped committing\n" + "".join(
                n.log_tail() for n in live
            )
            submit_some(5)
            time.sleep(0.05)

        # Phase 3: restart it and start the observer from genesis; trades until the target.
        victim.start()
        observer.start()
        deadline = time.monotonic() + 120
        while min(heights(validators)) < TARGET_HEIGHT:
            assert time.monotonic() < deadline, f"target not reached: {heights(validators)}\n" + "".join(
                n.log_tail() for n in nodes
            )
            submit_some(5)
            time.sleep(0.05)
        wait_until(
            lambda: (validators[0].status() or {}).get("mempool", {}).get("txs") == 0,
            60,
            "every trade committed",
            nodes,
        )
        head = max(heights(validators))
        wait_until(
            lambda: min(heights(nodes)) >= head, 60, f"every node (the observer too) at height {head}", nodes
        )
        # The auditor, as a separate process, re-verifies the whole history: through the
        # observer's API, and from the restarted validator's data folder while it runs.
        genesis = str(tmp_path / "net" / "genesis.json")
        for where in (["--node", observer.rpc], ["--home", str(victim.home)]):
            audit = _clearchain("audit", *where, "--genesis", genesis, "--json")
            assert audit.returncode == 0, audit.stdout + audit.stderr
            doc = json.loads(audit.stdout)
            assert doc["height"] >= TARGET_HEIGHT and doc["trades_settled"] == sent, doc
        for n in nodes:
            assert n.terminate() == 0, n.log_tail()
    finally:
        for n in nodes:
            n.terminate(timeout=5)

    _compare_stores(
        [tmp_path / "net" / n["home"] for n in net["nodes"]], min_height=TARGET_HEIGHT, trades=sent
    )


def _clearchain(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cli.main", *args], capture_output=True, text=True, timeout=120, cwd=REPO
    )


def _compare_stores(homes: list[Path], min_height: int, trades: int) -> None:
    stores = [Store.open_leveldb(h / "db") for h in homes]
    try:
        heads = [s.head() for s in stores]
        assert all(h is not None for h in heads)
        common = min(h.height for h in heads if h is not None)
        assert common >= min_height
        chain_id = stores[0].chain_id()
        settled = 0
        for height in range(1, common + 1):
            headers = [s.header(height) for s in stores]
            hashes = {h.hash() for h in headers if h is not None}
            roots = {h.state_root for h in headers if h is not None}
            assert len(hashes) == 1 and len(roots) == 1, f"stores disagree at height {height}"
            header = headers[0]
            assert header is not None
            vset = stores[0].validator_set(header.validators_hash)
            assert vset is not None
            for s in stores:
                cert = s.certificate(height)
                assert cert is not None
                try:
                    validate_certificate(cert, chain_id, vset, height, header.hash())
                except ClearchainError as exc:  # pragma: no cover - the assertion below reports it
                    raise AssertionError(f"certificate at height {height} does not verify: {exc}") from exc
            for receipt in stores[0].receipts(height) or []:
                settled += sum(1 for _, name, _f in receipt.events if name == "trade_settled")
        assert settled == trades >= 50, f"{settled} of {trades} trades settled"
    finally:
        for s in stores:
            s.close()
