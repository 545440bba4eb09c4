"""``clearchain chaos`` runs on real processes: four validators, every link through the harness's
proxy, one with a skewed clock, one with a slow disk, one lying; trades the whole time; crashes,
pauses, partitions (one of them splitting the network in halves, so no side has a quorum),
silent links and slow links. After each run every promise is checked from the stores (see
cli/chaos/checks.py). The seeds are chosen so that the two runs between them inject every fault
kind; docs/RELIABILITY.md has the longer runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cli.chaos.harness import RunPlan, run_once, schedule

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

RUNS = [
    RunPlan(seed=5, duration_s=24, kinds=("kill", "partition", "pause"), byzantine="equivocate", clock_skew_ms=4000, fsync_delay_ms=30),
    RunPlan(seed=22, duration_s=24, kinds=("blackhole", "delay", "kill", "partition"), byzantine="invalid_block", clock_skew_ms=-4000, fsync_delay_ms=60),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("plan", RUNS, ids=lambda p: f"seed{p.seed}-{p.byzantine}")
def test_a_seeded_fault_run_keeps_every_promise(plan: RunPlan, tmp_path: Path) -> None:
    kinds = {w.kind for w in schedule(plan)}
    assert kinds == set(plan.kinds), "the seed no longer covers every kind it names"
    result = run_once(plan, tmp_path / "net")
    assert result["violations"] == [], result
    c = result["checks"]
    assert result["acked"] >= 50 and c["lost"] == [] and c["forks"] == [] and c["root_mismatches"] == []
    assert all(a["ok"] for a in result["audit"].values()) and len(result["audit"]) == 4
    assert result["resume_s"] is not None
    liar = c["liar"]
    if plan.byzantine == "equivocate":
        assert liar["evidence_accepted"] > 0 and liar["slashed"] > 0
    else:
        assert liar["blocks_proposed"] == 0
