"""``clearchain bench soak``: the slope and the disk count on known data, and short real runs on
two validators that check the figures add up and that every process it started is gone
afterwards, also when it is stopped by SIGTERM in the middle of the load."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from cli.bench.soak import (
    SoakSampler,
    disk_bytes,
    least_squares_slope,
    metric_value,
    pruning_figure,
    rss_slope,
)
from cli.localnet.process import CODE_ROOT, module_command
from cli.main import main

MIB = 1024 * 1024


def test_slope_of_known_points() -> None:
    # mean x 1.5, mean y 2.75; sum dx*dy = 5.5, sum dx^2 = 5
    assert least_squares_slope([0, 1, 2, 3], [1, 3, 2, 5]) == pytest.approx(1.1)
    assert least_squares_slope([10, 20, 30], [7, 7, 7]) == 0
    assert least_squares_slope([5, 5, 5], [1, 2, 3]) is None  # every x the same
    assert least_squares_slope([5], [1]) is None
    assert least_squares_slope([], []) is None
    with pytest.raises(ValueError):
        least_squares_slope([1, 2], [1])


@given(
    a=st.integers(-10_000, 10_000),
    b=st.integers(-(10**9), 10**9),
    xs=st.lists(st.integers(0, 10**7), min_size=2, max_size=50, unique=True),
)
def test_slope_recovers_any_line(a: int, b: int, xs: list[int]) -> None:
    assert least_squares_slope(xs, [a * x + b for x in xs]) == pytest.approx(a, abs=1e-6)


@given(
    pairs=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 10**9)), min_size=2, max_size=40),
    shift=st.integers(-(10**6), 10**6),
)
def test_slope_ignores_a_constant_offset(pairs: list[tuple[int, int]], shift: int) -> None:
    xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
    plain = least_squares_slope(xs, ys)
    moved = least_squares_slope([x + shift for x in xs], [y + shift for y in ys])
    if plain is None:
        assert moved is None
    else:
        assert moved == pytest.approx(plain, rel=1e-6, abs=1e-6)


def test_rss_slope_leaves_out_the_warm_up_and_missing_samples() -> None:
    t_s = [0, 10, 20, 30, 40, 50, 60]
    committed: list[int | None] = [0, 1_000, 2_000, 3_000, None, 5_000, 6_000]
    # warm-up: 50 MiB up in the first 2,000 txs; after it: exactly 20 bytes per tx
    rss_mib: list[float | None] = [100, 125, 150] + [
        150 + 20 * (c - 2_000) / MIB for c in (3_000, 4_000, 5_000, 6_000)
    ]
    rss_mib[5] = None  # this sample's RSS could not be read; sample 4's count neither
    assert rss_slope(t_s, committed, rss_mib, warmup_s=20) == pytest.approx(20)
    whole = rss_slope(t_s, committed, rss_mib, warmup_s=0)
    assert whole is not None and whole > 1_000  # the warm-up dominates
    assert rss_slope(t_s, committed, rss_mib, warmup_s=61) is None


def test_metric_value_reads_one_unlabelled_sample() -> None:
    text = (
        "# HELP clearchain_txs_committed_total Transactions committed since the node started.\n"
        "# TYPE clearchain_txs_committed_total counter\n"
        "clearchain_txs_committed_total 1234\n"
        'clearchain_p2p_events_total{event="frames"} 9\n'
    )
    assert metric_value(text, "clearchain_txs_committed_total") == 1234
    assert metric_value(text, "clearchain_p2p_events_total") is None
    assert metric_value(text, "clearchain_pruning_lag") is None


def test_disk_bytes_counts_allocated_bytes_of_every_file(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "a.ldb").write_bytes(b"x" * 10_000)
    (tmp_path / "wal").mkdir()
    (tmp_path / "wal" / "w").write_bytes(b"y" * 5)
    expected = sum(os.lstat(p).st_blocks * 512 for p in tmp_path.rglob("*") if p.is_file())
    assert disk_bytes(tmp_path) == expected >= 10_000
    assert disk_bytes(tmp_path / "missing") == 0


def _processes_mentioning(text: str) -> list[int]:
    """Pids of running processes whose command line contains ``text`` (a test's own folder)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


@pytest.mark.io
@pytest.mark.slow
def test_soak_runs_a_real_network_and_its_figures_add_up(tmp_path: Path) -> None:
    out, net = tmp_path / "soak.json", tmp_path / "net"
    result = CliRunner().invoke(
        main,
        ["bench", "soak", "--validators", "2", "--accounts", "200", "--clients", "1", "--rate", "20",
         "--duration", "6", "--sample-s", "1", "--warmup-s", "2", "--dir", str(net), "--json-out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert _processes_mentioning(str(net)) == []  # every node and client stopped
    f = json.loads(out.read_text())
    for key in (
        "rss_slope_bytes_per_tx",
        "disk_bytes_per_trade",
        "committed_trades",
        "rss_mb",
        "pruning_lag",
    ):
        assert key in f
    assert f["committed_trades"] > 0 and f["failed_txs"] == 0, f["failures_by_code"]
    assert f["committed_trades"] == f["committed_txs"] == f["submitted_txs"]
    assert f["samples"] >= 6 and f["samples"] == len(f["t_s"])
    assert sorted(f["rss_mb"]) == ["node0", "node1"]
    for name, series in f["rss_mb"].items():
        assert len(series) == f["samples"] and all(x is not None and 20 < x < 4_000 for x in series)
        counts = [c for c in f["committed_txs_series"][name] if c is not None]
        assert counts == sorted(counts) and counts[-1] == f["committed_txs"]
    assert f["t_s"] == sorted(f["t_s"]) and f["t_s"][-1] >= 6 - 1
    assert isinstance(f["rss_slope_bytes_per_tx"], float) and math.isfinite(f["rss_slope_bytes_per_tx"])
    assert f["disk_bytes_per_trade"] > 0
    for n in f["nodes"]:
        assert n["disk_bytes_end"] > n["disk_bytes_start"] > 0
        assert n["disk_bytes_per_trade"] == round(
            (n["disk_bytes_end"] - n["disk_bytes_start"]) / f["committed_trades"], 1
        )
    assert f["rss_slope_bytes_per_tx"] == max(n["rss_slope_bytes_per_tx"] for n in f["nodes"])
    assert f["pruning_lag"] is None  # no node exposes one yet
    assert f["latency_ms"]["p50"] > 0 and f["txs_per_s"] > 0
    assert "RSS slope after warm-up" in result.output
    assert (net / "net" / "node0" / "db").is_dir()  # --dir is kept


@pytest.mark.io
@pytest.mark.slow
def test_sigterm_in_the_middle_stops_every_process_it_started(tmp_path: Path) -> None:
    net = tmp_path / "net"
    soak = subprocess.Popen(
        module_command("cli.main", "bench", "soak", "--validators", "2", "--accounts", "200", "--clients", "1",
                       "--rate", "20", "--duration", "120", "--warmup-s", "1", "--dir", str(net)),
        cwd=CODE_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        committed = 0
        while committed == 0 and time.monotonic() < deadline and soak.poll() is None:
            time.sleep(0.5)
            try:
                rpc = json.loads((net / "net" / "network.json").read_text())["nodes"][0]["rpc"]
                with urllib.request.urlopen(f"http://{rpc}/metrics", timeout=5) as resp:
                    committed = int(metric_value(resp.read().decode(), "clearchain_txs_committed_total") or 0)
            except (OSError, ValueError, KeyError):
                continue
        assert committed > 0, "the load never started"
        assert len(_processes_mentioning(str(net))) >= 3  # two nodes and a client
        soak.send_signal(signal.SIGTERM)
        _, err = soak.communicate(timeout=90)
        left = _processes_mentioning(str(net))
    finally:
        if soak.poll() is None:
            soak.kill()
            soak.wait(timeout=10)
        for pid in _processes_mentioning(str(net)):  # only if the cleanup under test failed
            os.kill(pid, signal.SIGKILL)
    assert left == [], "processes left running after SIGTERM"
    assert soak.returncode == 128 + signal.SIGTERM, err
    assert "Traceback" not in err


def test_refusals_before_anything_starts(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    taken = CliRunner().invoke(
        main, ["bench", "soak", "--dir", str(tmp_path / "full"), "--duration", "5", "--warmup-s", "1"]
    )
    assert taken.exit_code == 1 and "network_exists" in taken.output
    assert sorted(p.name for p in (tmp_path / "full").iterdir()) == ["x"]  # nothing written
    late = CliRunner().invoke(main, ["bench", "soak", "--duration", "5", "--warmup-s", "5"])
    assert late.exit_code == 2 and "--warmup-s" in late.output


def test_pruning_lag_is_null_unless_a_node_reports_one() -> None:
    nodes = [SimpleNamespace(name="node0"), SimpleNamespace(name="node1")]
    sampler = SoakSampler(cast(Any, nodes))
    sampler.pruning_lag = [[None, None], [None, None]]
    assert pruning_figure(sampler) is None
    sampler.pruning_lag = [[3.0, 40.0, 5.0], [None, None, None]]
    assert pruning_figure(sampler) == {"max": 40.0, "end": {"node0": 5.0, "node1": None}}
