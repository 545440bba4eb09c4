"""End to end on real processes: governance changes the validator set of a running network.

Four validators commit; the admin removes validator 3 (effective two blocks after the block that
executes the proposal). While its process still runs, the certificates from then on carry no
signature of it; then it is stopped and the other three keep committing. It is added back with
power 9 (10 would move 1/3 of the power at once, which governance refuses), restarted, syncs
across both changes and signs again, so the chain survives stopping another validator. An
observer that starts late syncs from genesis across both changes, and ``clearchain audit``
verifies the whole history from a node's data folder.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from chain.validators import Validator, ValidatorSet
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.localnet.process import CODE_ROOT as REPO
from cli.localnet.process import NodeProcess, wait_until
from node.config import ConsensusSection
from tests.netutil import TxMaker

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

CONSENSUS = ConsensusSection(
    timeout_propose_ms=600,
    timeout_prevote_ms=300,
    timeout_precommit_ms=300,
    timeout_delta_ms=200,
    commit_wait_ms=20,
)
V3 = devnet.validator_key(3)


def _propose(node: NodeProcess, maker: TxMaker, action: list[Any]) -> tuple[int, dict[str, Any]]:
    """Send a governance proposal as the admin; (height, receipt) once committed."""
    stx = maker.tx("admin", "governance", "propose", [action])
    status, body = node.post("/txs?wait=commit&timeout_ms=30000", {"tx": stx.encode().hex()}, timeout=40)
    assert status in (200, 202), body
    tx = body["txs"][0]
    assert tx["status"] == "committed", tx
    assert tx["receipt"]["ok"], tx["receipt"]
    return int(tx["height"]), tx["receipt"]


def _header(node: NodeProcess, height: int) -> dict[str, Any]:
    return node.get(f"/blocks/{height}")["header"]  # type: ignore[no-any-return]


def _signers(node: NodeProcess, height: int) -> set[str]:
    cert = node.get(f"/blocks/{height}")["certificate"]
    return {s["validator"] for s in cert["signatures"]}


def _set_hash(powers: dict[int, int]) -> str:
    return (
        ValidatorSet.build([Validator(devnet.validator_key(i).public, p) for i, p in powers.items()])
        .hash()
        .hex()
    )


@pytest.mark.slow
def test_remove_and_re_add_a_validator(tmp_path: Path) -> None:
    net = init_network(tmp_path / "net", validators=4, observers=1, base_port=0, consensus=CONSENSUS)
    nodes = [NodeProcess(tmp_path / "net", n) for n in net["nodes"]]
    validators, observer = nodes[:4], nodes[4]
    maker = TxMaker()

    def heights(group: list[NodeProcess]) -> list[int]:
        return [n.height() for n in group]

    try:
        for v in validators:
            v.start()
        wait_until(lambda: min(heights(validators)) >= 2, 60, "the first blocks", validators)

        # 1. Remove validator 3: in next_validators_hash at h + 1, signing from h + 2.
        h, receipt = _propose(validators[0], maker, ["remove_validator", V3.public])
        wait_until(lambda: min(heights(validators[:3])) >= h + 6, 60, f"height {h + 6}", validators)
        three = _set_hash({0: 10, 1: 10, 2: 10})
        assert _header(validators[0], h)["next_validators_hash"] != three
        assert _header(validators[0], h + 1)["next_validators_hash"] == three
        assert _header(validators[0], h + 2)["validators_hash"] == three
        for height in range(h + 2, h + 6):  # its process still runs, but it no longer signs
            assert V3.key_id not in _signers(validators[0], height)
        assert validators[3].alive()

        # 2. Stop it: the other three keep committing.
        assert validators[3].terminate() == 0
        live = validators[:3]
        before = max(heights(live))
        wait_until(lambda: min(heights(live)) >= before + 5, 60, "three validators committing", live)

        # 3. Add it back with power 9; restart it: it syncs across both changes and signs again.
        h2, _ = _propose(validators[0], maker, ["add_validator", V3.public, 9, "validator-3"])
        validators[3].start()
        wait_until(
            lambda: min(heights(validators)) >= h2 + 4,
            90,
            f"validator 3 back past height {h2 + 4}",
            validators,
        )
        assert _header(validators[0], h2 + 2)["validators_hash"] == _set_hash({0: 10, 1: 10, 2: 10, 3: 9})
        signed = set()
        deadline = time.monotonic() + 60
        while V3.key_id not in signed:
            assert time.monotonic() < deadline, "validator 3 never signed again\n" + validators[3].log_tail()
            head = min(heights(validators))
            signed = _signers(validators[0], head)
            time.sleep(0.3)

        # 4. Stop validator 2: 10 + 10 + 9 of 39 is still a quorum, so the chain goes on.
        assert validators[2].terminate() == 0
        live = [validators[0], validators[1], validators[3]]
        before = max(heights(live))
        wait_until(lambda: min(heights(live)) >= before + 3, 60, "validators 0, 1 and 3 committing", live)

        # 5. A fresh observer syncs from genesis across both changes; the auditor accepts it all.
        observer.start()
        head = max(heights(live))
        wait_until(lambda: observer.height() >= head, 90, f"the observer at height {head}", [observer, *live])
        genesis = str(tmp_path / "net" / "genesis.json")
        audit = subprocess.run(
            [sys.executable, "-m", "cli.main", "audit", "--node", observer.rpc, "--genesis", genesis, "--json"],
            capture_output=True, text=True, timeout=120, cwd=REPO,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout + audit.stderr
        assert json.loads(audit.stdout)["height"] >= head
        for n in (*live, observer):
            assert n.terminate() == 0, n.log_tail()
    finally:
        for n in nodes:
            n.terminate(timeout=5)
