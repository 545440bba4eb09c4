"""Every contract scenario on a real network: four validator processes on 127.0.0.1.

``clearchain demo --scenario all`` runs as its own process against the network, acting only
through node0's API; each scenario checks what it tells and fails the run on any surprise. Then
``clearchain audit`` re-verifies the whole history from genesis (every contract's receipts and
state re-executed), and the validators' stores agree block by block.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cli.localnet.network import init_network
from cli.localnet.process import CODE_ROOT as REPO
from cli.localnet.process import NodeProcess, wait_until
from node.config import ConsensusSection

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

HEARTBEAT_MS = 500  # blocks at least twice a second, so height- and time-based tasks fall due quickly


@pytest.mark.slow
def test_every_scenario_on_four_validators(tmp_path: Path) -> None:
    net_dir = tmp_path / "net"
    net = init_network(
        net_dir, validators=4, base_port=0,
        consensus=ConsensusSection(timeout_propose_ms=600, timeout_prevote_ms=300, timeout_precommit_ms=300, timeout_delta_ms=200, commit_wait_ms=20, heartbeat_ms=HEARTBEAT_MS),
    )  # fmt: skip
    nodes = [NodeProcess(net_dir, n) for n in net["nodes"]]
    try:
        for n in nodes:
            n.start()
        wait_until(lambda: all(n.height() >= 1 for n in nodes), 60, "the first block", nodes)
        cli = [sys.executable, "-m", "cli.main"]
        run = subprocess.run(
            [*cli, "demo", "--dir", str(net_dir), "--scenario", "all"],
            cwd=REPO, capture_output=True, text=True, timeout=420,
        )  # fmt: skip
        assert run.returncode == 0, (
            run.stdout[-4000:] + run.stderr[-4000:] + "".join(n.log_tail() for n in nodes)
        )
        for name in (
            "netting",
            "swap",
            "oracle",
            "breaker",
            "margin",
            "bonds",
            "governance",
            "corporate",
            "fund",
        ):
            assert f"== scenario {name}" in run.stdout

        audit = subprocess.run(
            [*cli, "audit", "--node", f"http://{net['nodes'][1]['rpc']}", "--genesis", str(net_dir / "genesis.json"), "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout[-4000:] + audit.stderr[-2000:]
        doc = json.loads(audit.stdout)
        assert doc["ok"] and doc["height"] >= 10

        height = min(n.height() for n in nodes)
        roots = {n.get(f"/blocks/{height}")["header"]["state_root"] for n in nodes}
        assert len(roots) == 1, f"state roots differ at height {height}"
    finally:
        for n in nodes:
            n.terminate()
