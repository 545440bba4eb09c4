"""The fault harness's own parts: the schedule is a function of the seed, and the checks see what
they must see. A check that cannot fail proves nothing, so two stores that hold different blocks
must show a fork and a root mismatch, and an acknowledged transaction missing from a store must
show as lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from chain.genesis import Genesis
from chain.store import Store
from cli.chaos.checks import check_stores
from cli.chaos.harness import FAULT_KINDS, RunPlan, plan_runs, schedule, violations
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.localnet.network import PORT_POOL_LOW, _ephemeral_low, free_ports
from node.faults import BYZANTINE_MODES
from tests.conftest import Chain


def test_the_schedule_is_the_seeds_and_stays_in_bounds() -> None:
    plan = RunPlan(seed=5, duration_s=60)
    windows = schedule(plan)
    assert windows == schedule(RunPlan(seed=5, duration_s=60))
    assert windows != schedule(RunPlan(seed=6, duration_s=60))
    assert {w.kind for w in windows} <= set(FAULT_KINDS) and len(windows) >= 5
    for a, b in zip(windows, windows[1:], strict=False):
        assert a.at_s + a.length_s < b.at_s, "faults come one at a time"
    assert all(0 <= w.target < 4 and w.at_s + w.length_s <= 60 for w in windows)
    for w in windows:
        if w.kind == "partition":
            assert sorted(i for g in w.groups for i in g) == [0, 1, 2, 3]
    only = schedule(RunPlan(seed=5, duration_s=60, kinds=("kill",)))
    assert {w.kind for w in only} == {"kill"}


def test_runs_rotate_the_liar_and_vary_the_node_faults() -> None:
    plans = plan_runs(10, 6, 4, 30, FAULT_KINDS, "all")
    assert [p.byzantine for p in plans] == list(BYZANTINE_MODES) * 2
    assert [p.seed for p in plans] == list(range(10, 16))
    assert all(abs(p.clock_skew_ms) < 10_000 and p.fsync_delay_ms > 0 for p in plans)
    assert {p.liar for p in plans} == {3}
    assert all(p.byzantine is None for p in plan_runs(1, 2, 4, 30, FAULT_KINDS, "none"))


def _homes(
    tmp_path: Path, genesis: Genesis, blocks: list[list[int]]
) -> tuple[dict[str, Path], dict[bytes, tuple[int, int]]]:
    """One LevelDB home per entry of ``blocks``; each block settles trades numbered as listed."""
    homes, acked = {}, {}
    for k, trade_ids in enumerate(blocks):
        home = tmp_path / f"node{k}"
        store = Store.open_leveldb(home / "db")
        chain = Chain(store, genesis)
        txs = [
            chain.tx(
                "xchg-alpha", "settlement", "settle", [f"T-{n}", "A-C001", "B-C001", "ACME", 1, 100_00, DAY]
            )
            for n in trade_ids
        ]
        chain.run(*txs)
        chain.run()
        for i, stx in enumerate(txs):
            acked.setdefault(stx.hash, (1, i))
        store.close()
        homes[f"node{k}"] = home
    return homes, acked


def test_identical_stores_pass(tmp_path: Path, genesis: Genesis) -> None:
    homes, acked = _homes(tmp_path, genesis, [[1, 2], [1, 2]])
    c = check_stores(homes, acked)
    assert (c["forks"], c["root_mismatches"], c["bad_certificates"], c["lost"]) == ([], [], [], [])
    assert c["heights"] == {"node0": 2, "node1": 2} and c["acked"] == 2


def test_a_fork_a_root_mismatch_and_a_lost_transaction_are_seen(tmp_path: Path, genesis: Genesis) -> None:
    homes, acked = _homes(tmp_path, genesis, [[1, 2], [1, 3]])
    c = check_stores(homes, acked)
    assert c["forks"] == [1, 2] and c["root_mismatches"] == [1, 2]
    assert len(c["lost"]) == 2  # trade 2 is not on node1, trade 3 not on node0
    result = {
        "checks": {**c, "lagging": []},
        "audit": {"node0": {"ok": True}},
        "exit_codes": {"node0": 0},
        "resume_s": 1.0,
        "acked": 2,
    }
    found = violations(result, RunPlan(seed=1))
    assert any(v.startswith("forks") for v in found) and any(v.startswith("lost") for v in found)


@pytest.mark.io
def test_node_ports_come_from_below_the_ephemeral_range() -> None:
    """Outgoing connections take local ports from the ephemeral range; a node port from there
    could be taken between choosing it and binding it (seen: a chaos run's node failed to start)."""
    ports = free_ports(40)
    assert len(set(ports)) == 40
    assert all(PORT_POOL_LOW <= p < _ephemeral_low() for p in ports)
