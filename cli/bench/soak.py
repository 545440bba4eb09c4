"""``clearchain bench soak``: does a node's memory and disk stay flat under a long steady load?

Method (docs/BENCHMARKS.md, "Issue 19: soak"):

- the network and the open-loop load of ``clearchain bench`` (``cli.bench.load.LoadRun``): a
  fresh network of validator processes, client processes that pre-sign every transaction and then
  post them at ``rate`` transactions per second through ``POST /txs?wait=commit``;
- every ``sample_s`` seconds, per node: resident memory (``VmRSS`` of /proc/<pid>/status) and the
  transactions it has committed (``clearchain_txs_committed_total`` on its ``/metrics``; the node
  starts fresh, so this is its chain's transaction count past genesis);
- ``rss_slope_bytes_per_tx``: per node, the least-squares slope of RSS (bytes) against that
  node's committed transactions over the samples taken after ``warmup_s`` (bounded buffers fill
  during the warm-up; what grows after it grows with the history); the headline is the worst
  node's;
- ``disk_bytes_per_trade``: per node, the growth of its home folder (allocated bytes, as ``du``)
  from the first block to the end of the load, over the trades committed; the headline is the
  worst node's;
- ``pruning_lag``: read from each node if it exposes one (the ``clearchain_pruning_lag`` gauge
  on ``/metrics``, or ``pruning_lag`` in ``/status``), else null.

Prints a short summary and returns the figures (the command writes them with ``--json-out``).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from cli.bench.load import LoadRun, _summarize, client_spec, default_lanes, lane_txs_for, machine
from cli.localnet.network import NetworkError
from cli.localnet.process import NodeProcess, rss_kib
from node.config import ConsensusSection

PROBE_TIMEOUT_S = 5.0  # a node busy executing a block answers late; a sample then records null
COMMITTED_METRIC = "clearchain_txs_committed_total"
PRUNING_LAG_METRIC = "clearchain_pruning_lag"


def least_squares_slope(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """The slope of the least-squares line through the points ``(xs[i], ys[i])``; None when it
    is undefined (fewer than two points, or every x the same)."""
    if len(xs) != len(ys):
        raise ValueError("xs and ys differ in length")
    n = len(xs)
    if n < 2:
        return None
    mx, my = math.fsum(xs) / n, math.fsum(ys) / n
    sxx = math.fsum((x - mx) ** 2 for x in xs)
    if sxx == 0:
        return None
    return math.fsum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx


def rss_slope(
    t_s: Sequence[float], committed: Sequence[int | None], rss_mib: Sequence[float | None], warmup_s: float
) -> float | None:
    """Bytes of RSS per committed transaction over the samples at or after ``warmup_s`` that
    have both figures."""
    points = [
        (float(c), r * 1024 * 1024)
        for t, c, r in zip(t_s, committed, rss_mib, strict=True)
        if t >= warmup_s and c is not None and r is not None
    ]
    return least_squares_slope([p[0] for p in points], [p[1] for p in points])


def disk_bytes(folder: Path) -> int:
    """Bytes allocated to the files under ``folder`` (what ``du`` counts). Files that vanish
    while it walks (LevelDB deletes compacted tables) are skipped."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except FileNotFoundError:
                continue
    return total


def metric_value(text: str, name: str) -> float | None:
    """The value of the unlabelled Prometheus sample ``name`` in ``text``, None if absent."""
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == name:
            try:
                return float(parts[1])
            except ValueError:
                return None
    return None


class Probe:
    """What one sample reads from one node over HTTP: committed transactions and, if the node
    exposes it, the pruning lag. A node that does not answer in time gives nulls."""

    def __init__(self, node: NodeProcess) -> None:
        self.node = node

    def read(self) -> tuple[int | None, float | None]:
        try:
            with urllib.request.urlopen(self.node.rpc + "/metrics", timeout=PROBE_TIMEOUT_S) as resp:
                text = resp.read().decode()
        except (OSError, ValueError):
            return None, None
        committed = metric_value(text, COMMITTED_METRIC)
        lag = metric_value(text, PRUNING_LAG_METRIC)
        if lag is None:
            lag = self._status_lag()
        return (None if committed is None else int(committed)), lag

    def _status_lag(self) -> float | None:
        status = self.node.status() or {}
        value = status.get("pruning_lag")
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


class SoakSampler:
    """The per-node series of a soak: time, RSS (MiB) and committed transactions, one entry per
    sample; a figure that could not be read is None."""

    def __init__(self, nodes: list[NodeProcess]) -> None:
        self.nodes = nodes
        self.probes = [Probe(n) for n in nodes]
        self.t_s: list[float] = []
        self.rss_mib: list[list[float | None]] = [[] for _ in nodes]
        self.committed: list[list[int | None]] = [[] for _ in nodes]
        self.pruning_lag: list[list[float | None]] = [[] for _ in nodes]

    def sample(self, t: float) -> None:
        self.t_s.append(round(t, 2))
        for i, (node, probe) in enumerate(zip(self.nodes, self.probes, strict=True)):
            kib = rss_kib(node.proc.pid) if node.proc is not None and node.alive() else None
            self.rss_mib[i].append(None if kib is None else round(kib / 1024, 1))
            committed, lag = probe.read()  # right after its RSS: one node's pair, one moment
            self.committed[i].append(committed)
            self.pruning_lag[i].append(lag)


def pruning_figure(sampler: SoakSampler) -> dict[str, Any] | None:
    """The largest pruning lag any node reported and each node's last one; None if no node
    reported one."""
    seen = [[v for v in series if v is not None] for series in sampler.pruning_lag]
    if not any(seen):
        return None
    return {
        "max": max(v for s in seen for v in s),
        "end": {n.name: (s[-1] if s else None) for n, s in zip(sampler.nodes, seen, strict=True)},
    }


def run_soak(
    *,
    validators: int,
    accounts: int,
    duration: float,
    rate: float,
    batch: int,
    clients: int,
    sample_s: float,
    warmup_s: float,
    directory: Path | None,
    echo: Any = click.echo,
) -> dict[str, Any]:
    chunk = 1
    lanes = default_lanes(rate, batch, chunk, clients)
    lanes_total = lanes * clients
    lane_txs = lane_txs_for(None, duration, rate, batch, lanes_total, chunk)
    if directory is not None and directory.exists() and any(directory.iterdir()):
        raise NetworkError("network_exists", f"{directory} is not empty: give --dir a new or empty folder")
    figures: dict[str, Any] = {
        "machine": machine(), "validators": validators, "accounts": accounts, "rate_txs_per_s": rate,
        "duration_s": duration, "batch": batch, "clients": clients, "lanes": lanes_total,
        "sample_s": sample_s, "warmup_s": warmup_s,
    }  # fmt: skip
    echo(
        f"clearchain bench soak: {validators} validators, {rate:g} tx/s x {batch} trades for {duration:.0f} s, "
        f"RSS every {sample_s:g} s, slope after {warmup_s:g} s; {figures['machine']}"
    )
    base = directory or Path(tempfile.mkdtemp(prefix="clearchain-soak-"))
    with LoadRun(base, keep=directory is not None, echo=echo) as run:
        nodes = run.start_network(validators, accounts, lanes_total, ConsensusSection(), True)
        t0 = time.monotonic()
        spec = client_spec(nodes, accounts, batch, chunk, lane_txs, duration, rate, lanes_total)
        run.start_clients(spec, clients, lanes)
        echo(f"  clients ready: {lane_txs * lanes_total:,} txs signed in {time.monotonic() - t0:.1f} s")
        sampler = SoakSampler(nodes)
        disk_start = [disk_bytes(n.home) for n in nodes]
        start = run.release()
        k = 0
        while run.driving():
            due = start + k * sample_s
            now = time.monotonic()
            if now < due:
                time.sleep(min(due - now, 0.5))
                continue
            sampler.sample(now - start)
            k += 1
            if k > 1 and (k - 1) % max(1, round(60 / sample_s)) == 0:  # about once a minute
                live = [r[-1] for r in sampler.rss_mib if r[-1] is not None]
                echo(f"  {now - start:6.0f} s: RSS {' / '.join(f'{x:.0f}' for x in live)} MB")
        results = run.results()
        disk_end = [disk_bytes(n.home) for n in nodes]
        figures.update(_summarize(results, start, duration, warmup_s, batch))
        figures.update(_node_figures(sampler, disk_start, disk_end, figures["committed_trades"], warmup_s))
    print_summary(figures, echo)
    return figures


def _node_figures(
    sampler: SoakSampler, disk_start: list[int], disk_end: list[int], trades: int, warmup_s: float
) -> dict[str, Any]:
    per_node = []
    for i, node in enumerate(sampler.nodes):
        rss = [r for r in sampler.rss_mib[i] if r is not None]
        slope = rss_slope(sampler.t_s, sampler.committed[i], sampler.rss_mib[i], warmup_s)
        grown = disk_end[i] - disk_start[i]
        per_node.append(
            {
                "node": node.name,
                "rss_mb_start": rss[0] if rss else None,
                "rss_mb_end": rss[-1] if rss else None,
                "rss_mb_peak": max(rss) if rss else None,
                "rss_slope_bytes_per_tx": None if slope is None else round(slope, 1),
                "committed_txs_seen": next(
                    (c for c in reversed(sampler.committed[i]) if c is not None), None
                ),
                "disk_bytes_start": disk_start[i],
                "disk_bytes_end": disk_end[i],
                "disk_bytes_per_trade": round(grown / trades, 1) if trades else None,
            }
        )
    slopes = [n["rss_slope_bytes_per_tx"] for n in per_node if n["rss_slope_bytes_per_tx"] is not None]
    disks = [n["disk_bytes_per_trade"] for n in per_node if n["disk_bytes_per_trade"] is not None]
    return {
        "rss_slope_bytes_per_tx": max(slopes) if slopes else None,
        "disk_bytes_per_trade": max(disks) if disks else None,
        "pruning_lag": pruning_figure(sampler),
        "samples": len(sampler.t_s),
        "t_s": sampler.t_s,
        "rss_mb": {n.name: sampler.rss_mib[i] for i, n in enumerate(sampler.nodes)},
        "committed_txs_series": {n.name: sampler.committed[i] for i, n in enumerate(sampler.nodes)},
        "nodes": per_node,
    }


def print_summary(f: dict[str, Any], echo: Any = click.echo) -> None:
    lat = f["latency_ms"]
    slope = f["rss_slope_bytes_per_tx"]
    disk = f["disk_bytes_per_trade"]
    lag = f["pruning_lag"]
    rows = [
        ("committed txs / trades", f"{f['committed_txs']:,} / {f['committed_trades']:,}  (failed {f['failed_txs']:,})"),
        ("achieved after warm-up", f"{f['txs_per_s']:,.1f} tx/s (asked {f['rate_txs_per_s']:g})"),
        ("commit latency p50 / p99", f"{lat['p50']:,.0f} / {lat['p99']:,.0f} ms"),
        ("RSS slope after warm-up (worst node)", "n/a (too few samples)" if slope is None else f"{slope:,.1f} bytes/tx"),
        ("disk per trade (worst node)", "n/a (nothing committed)" if disk is None else f"{disk:,.1f} bytes"),
        ("pruning lag", "not exposed by the nodes" if lag is None else f"max {lag['max']:g}"),
    ]  # fmt: skip
    for n in f["nodes"]:
        s = n["rss_slope_bytes_per_tx"]
        rows.append(
            (
                f"  {n['node']}: RSS start / peak / end, slope; disk",
                f"{n['rss_mb_start'] or 0:,.0f} / {n['rss_mb_peak'] or 0:,.0f} / {n['rss_mb_end'] or 0:,.0f} MB, "
                f"{'n/a' if s is None else f'{s:,.1f} B/tx'}; "
                f"{n['disk_bytes_start'] / 1e6:,.1f} -> {n['disk_bytes_end'] / 1e6:,.1f} MB",
            )
        )
    if f["failures_by_code"]:
        rows.append(("failures by code", ", ".join(f"{k} {v:,}" for k, v in f["failures_by_code"].items())))
    width = max(len(k) for k, _ in rows)
    echo("")
    for k, v in rows:
        echo(f"  {k.ljust(width)}  {v}")
