"""``clearchain bench``: throughput and commit latency of a real local network under load.

Method (definitions of the Hyperledger performance white paper):

- A fresh network of ``validators`` processes (``clearchain node run``, LevelDB, every fsync on)
  on 127.0.0.1, with a genesis that preloads ``accounts`` funded client accounts and one exchange
  participant per client lane.
- ``clients`` load processes (``cli/bench/client.py``) sign every transaction before the clock
  starts, then post them through the public HTTP API (``POST /txs?wait=commit&events=0``), spread
  over the nodes; ``batch`` trades per transaction (``settle`` or ``settle_batch``).
- **Throughput** = committed transactions (and trades) whose committed receipt the client saw
  inside the measurement window (after ``warmup`` seconds, until ``duration``) / window seconds.
- **Latency** = time the committed receipt reached the client - time the transaction was sent,
  for transactions sent inside the window.
- Measured in the same run: the machine's Ed25519 verification rate through the one verifier
  (the *signature bound* = verifications/s x cores / validators: every validator verifies every
  transaction once), and the same tickets settled by a single-process SQLite ledger
  (``cli/bench/baseline.py``, one ACID transaction per trade).
- Per node: CPU (share of one core over the window) and resident memory (start, peak, end).

Figures are printed and optionally written as JSON; nothing is asserted.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import click

from cli.bench import executor as bench_executor
from cli.bench import profile as bench_profile
from cli.bench.client import exchange_id, exchange_key, ticket
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.localnet.process import NodeProcess, module_command, rss_kib, wait_until
from cli.trade_dates import today
from node.config import ConsensusSection

RUN_COUNTS_TXS = 10_000  # runs below this many committed trades are labelled short
EXPECTED_TRADES_PER_S = 3_000  # how much to pre-sign for a max-rate run (a warning says if too little)
SAMPLE_S = 1.0


def bench_genesis(validators: int, accounts: int, lanes: int) -> dict[str, Any]:
    """The dev genesis plus ``accounts`` client accounts of member-a holding cash and ACME, and an
    exchange participant (1-of-1 dev key) per lane."""
    doc = bench_executor.bench_genesis(accounts, validators)
    doc["participants"] += [
        {"id": exchange_id(lane), "roles": ["exchange"], "threshold": 1, "keys": [exchange_key(lane).key_id]}
        for lane in range(lanes)
    ]
    return doc


class NodeSampler:
    """CPU seconds and resident memory of node processes, read from /proc (Linux)."""

    def __init__(self, nodes: list[NodeProcess]) -> None:
        self.pids = [n.proc.pid for n in nodes if n.proc is not None]
        self.names = [n.name for n in nodes]
        self.series: list[list[Any]] = []  # [t, [rss MB per node]]
        self.ticks = os.sysconf("SC_CLK_TCK")

    def cpu_s(self) -> list[float]:
        out = []
        for pid in self.pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out.append((int(fields[11]) + int(fields[12])) / self.ticks)
            except (OSError, IndexError, ValueError):
                out.append(math.nan)
        return out

    def rss_mb(self) -> list[float]:
        return [math.nan if (kib := rss_kib(pid)) is None else kib / 1024 for pid in self.pids]

    def sample(self, t: float) -> None:
        self.series.append([round(t, 2), [round(x, 1) for x in self.rss_mb()]])


def default_lanes(rate: float | None, batch: int, chunk: int, clients: int) -> int:
    """Requests in flight per client: at max rate about 3,200 trades in flight (a full block
    waiting behind the one executing); at a rate, enough to keep it with 1.5 s commit latency."""
    if rate is None:
        return max(1, min(512, math.ceil(3_200 / (batch * chunk) / clients)))
    return max(4, min(512, math.ceil(rate * 1.5 / chunk / clients)))


def _on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


class LoadRun:
    """The processes of one load run: a fresh network of validator processes in ``base/net`` and
    the client processes driving it, started through this object so that it knows every one.

    As a context manager it stops them all on any way out (return, error, Ctrl-C, and SIGTERM,
    which it turns into an exit while it is open): clients killed, nodes terminated, then the
    folder deleted unless ``keep``. ``clearchain bench`` and ``bench soak`` share it."""

    def __init__(self, base: Path, keep: bool, echo: Any = click.echo) -> None:
        self.base = base
        self.keep = keep
        self.echo = echo
        self.nodes: list[NodeProcess] = []
        self.clients: list[tuple[subprocess.Popen[str], Path]] = []
        self._sigterm: Any = None

    def __enter__(self) -> LoadRun:
        if threading.current_thread() is threading.main_thread():
            self._sigterm = signal.signal(signal.SIGTERM, _on_sigterm)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_network(
        self,
        validators: int,
        accounts: int,
        lanes: int,
        consensus: ConsensusSection,
        account_history: bool,
    ) -> list[NodeProcess]:
        """Start the network and wait for every node's first block."""
        net_dir = self.base / "net"
        net = init_network(
            net_dir, validators, base_port=0, consensus=consensus, account_history=account_history
        )
        t0 = time.monotonic()
        (net_dir / "genesis.json").write_text(json.dumps(bench_genesis(validators, accounts, lanes)))
        for spec in net["nodes"]:
            node = NodeProcess(net_dir, spec)
            self.nodes.append(node)  # known before it runs: close() stops it whatever happens next
            node.start()
        nodes = self.nodes

        def first_block() -> bool:
            dead = [n for n in nodes if not n.alive()]
            if dead:
                raise click.ClickException(f"{dead[0].name} stopped while starting:\n{dead[0].log_tail()}")
            return all(n.height() >= 1 for n in nodes)

        wait_until(first_block, 120 + accounts / 2_000, "the first block", nodes)
        self.echo(
            f"  network up: {validators} validators, genesis with {accounts:,} accounts, first block after {time.monotonic() - t0:.1f} s"
        )
        return nodes

    def start_clients(self, spec: dict[str, Any], clients: int, lanes_per_client: int) -> None:
        """Start the client processes; each signs its lanes' transactions, then says it is ready."""
        for c in range(clients):
            own = dict(spec, lanes=list(range(c * lanes_per_client, (c + 1) * lanes_per_client)))
            spec_path, out_path = self.base / f"client{c}.json", self.base / f"client{c}.out.json"
            spec_path.write_text(json.dumps(own))
            proc = subprocess.Popen(
                module_command("cli.bench.client", str(spec_path), str(out_path)),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            self.clients.append((proc, out_path))
        for proc, _ in self.clients:
            line = proc.stdout.readline() if proc.stdout else ""
            if line.strip() != "ready":
                raise click.ClickException(f"a bench client failed before it was ready (exit {proc.poll()})")

    def release(self, delay: float = 0.5) -> float:
        """Tell every client to start driving at ``delay`` seconds from now; returns that time
        (``time.monotonic``)."""
        start = time.monotonic() + delay
        for proc, _ in self.clients:
            assert proc.stdin is not None
            proc.stdin.write(f"{start}\n")
            proc.stdin.flush()
        return start

    def driving(self) -> bool:
        """Whether a client is still sending or waiting for replies."""
        return any(p.poll() is None for p, _ in self.clients)

    def results(self) -> list[dict[str, Any]]:
        """What each client saw (waits for them to finish)."""
        results = []
        for proc, out_path in self.clients:
            if proc.wait() != 0 or not out_path.exists():
                raise click.ClickException(f"a bench client failed (exit {proc.returncode})")
            results.append(json.loads(out_path.read_text()))
        return results

    def close(self) -> None:
        """Stop every process this run started, then delete its folder unless kept. A SIGTERM
        while this runs is ignored: the cleanup is bounded and must finish."""
        if self._sigterm is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            for proc, _ in self.clients:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait(timeout=10)
            for n in self.nodes:
                n.terminate()
            if self.keep:
                self.echo(f"  kept {self.base}")
            else:
                shutil.rmtree(self.base, ignore_errors=True)
        finally:
            if self._sigterm is not None:
                signal.signal(signal.SIGTERM, self._sigterm)
                self._sigterm = None


def _percentile(pairs: list[tuple[float, int]], q: float) -> float:
    """The ``q`` quantile of latencies weighted by transaction count."""
    total = sum(n for _, n in pairs)
    if total == 0:
        return math.nan
    target, seen = q * total, 0
    for value, n in pairs:
        seen += n
        if seen >= target:
            return value
    return pairs[-1][0]


def _block_stats(node: NodeProcess, first: int, last: int) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = []
    height = first
    while height <= last:
        page = node.get(f"/blocks?from={height}&to={last}", timeout=30)
        blocks += page["blocks"]
        if not page["blocks"] or page["next"] is None:
            break
        height = page["blocks"][-1]["height"] + 1
    if len(blocks) < 2:
        return {"blocks": len(blocks)}
    sizes = sorted(b["txs"] for b in blocks)
    gaps = sorted(b["time_ms"] - a["time_ms"] for a, b in zip(blocks, blocks[1:], strict=False))
    return {
        "blocks": len(blocks), "txs_per_block_mean": round(sum(sizes) / len(sizes), 1), "txs_per_block_max": sizes[-1],
        "interval_ms_mean": round(sum(gaps) / len(gaps), 1), "interval_ms_p50": gaps[len(gaps) // 2], "interval_ms_max": gaps[-1],
    }  # fmt: skip


def _summarize(
    results: list[dict[str, Any]], start: float, duration: float, warmup: float, batch: int
) -> dict[str, Any]:
    records = [r for out in results for r in out["records"]]
    refusals: dict[str, int] = {}
    for out in results:
        for code, n in out["refusals"].items():
            refusals[code] = refusals.get(code, 0) + n
    w0, w1 = start + warmup, start + duration
    submitted = sum(r[2] for r in records)
    committed = sum(r[3] for r in records)
    failed_receipts = sum(r[4] for r in records)
    in_window = sum(r[3] - r[4] for r in records if w0 <= r[1] <= w1)
    window = w1 - w0
    pairs = sorted((r[1] - r[0], r[3]) for r in records if r[0] >= w0 and r[3])
    last_seen = max((r[1] for r in records), default=start)
    return {
        "submitted_txs": submitted,
        "committed_txs": committed,
        "failed_txs": submitted - committed + failed_receipts,
        "failures_by_code": dict(sorted(refusals.items())),
        "committed_trades": (committed - failed_receipts) * batch,
        "window_s": round(window, 2),
        "txs_per_s": round(in_window / window, 1),
        "trades_per_s": round(in_window * batch / window, 1),
        "overall_txs_per_s": round((committed - failed_receipts) / max(last_seen - start, 1e-9), 1),
        "latency_ms": {
            q: round(_percentile(pairs, v) * 1000, 1) for q, v in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))
        }
        | {"max": round(pairs[-1][0] * 1000, 1) if pairs else math.nan, "samples": sum(n for _, n in pairs)},
    }


def _baseline(trades: int, accounts: int, lanes: int, batch: int, echo: Any) -> dict[str, Any]:
    """The same tickets (the lanes' first ones, round robin) in the SQLite ledger, durable
    (``synchronous=FULL``: fsync per commit, as the chain fsyncs per block) and not
    (``NORMAL``); with one Ed25519 verification per trade too when the chain run was single-trade
    signed transactions (what those chain transactions carry)."""
    from cli.bench.baseline import run_baseline, sign_tickets

    per_lane = math.ceil(trades / lanes)
    day = devnet.GENESIS_DAY  # the baseline ignores the date; the tickets only need the chain's shape
    tickets = [ticket(lane, n, accounts, day) for n in range(1, per_lane + 1) for lane in range(lanes)][
        :trades
    ]
    verify = sign_tickets(tickets, exchange_key(0)) if batch == 1 else None
    echo(
        f"  baseline: {len(tickets):,} tickets in SQLite (WAL, one ACID transaction per trade), FULL and NORMAL ..."
    )
    return {
        "full": run_baseline(tickets, accounts, synchronous="FULL", verify=verify),
        "normal": run_baseline(tickets, accounts, synchronous="NORMAL"),
    }


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def lane_txs_for(
    txs: int | None, duration: float, rate: float | None, batch: int, lanes_total: int, chunk: int
) -> int:
    """Transactions each lane pre-signs: ``txs`` over the lanes, or by default enough for the
    rate over the duration plus one chunk per lane (a max-rate run guesses the rate)."""
    if txs is None:
        if rate is None:
            txs = math.ceil(duration * max(EXPECTED_TRADES_PER_S / batch, 2) * 1.2) + lanes_total * chunk
        else:
            txs = math.ceil(rate * duration) + lanes_total * chunk
    return math.ceil(txs / lanes_total)


def client_spec(
    nodes: list[NodeProcess],
    accounts: int,
    batch: int,
    chunk: int,
    lane_txs: int,
    duration: float,
    rate: float | None,
    lanes_total: int,
) -> dict[str, Any]:
    """What every client process is told (``cli/bench/client.py`` reads it); the lanes are
    spread over the nodes and share the rate evenly."""
    return {
        "chain_id": devnet.CHAIN_ID, "nodes": [n.rpc for n in nodes], "accounts": accounts, "batch": batch,
        "chunk": chunk, "lane_txs": lane_txs, "duration_s": duration,
        "lane_rate": rate / lanes_total if rate else None, "lanes_total": lanes_total,
        "trade_date": today(),  # the local nodes date blocks by this same clock
    }  # fmt: skip


def run_bench(
    *,
    validators: int,
    accounts: int,
    duration: float,
    rate: float | None,
    batch: int,
    clients: int,
    lanes: int,
    chunk: int,
    warmup: float,
    txs: int | None,
    baseline_trades: int,
    keep: bool,
    consensus: ConsensusSection | None = None,
    profile: Path | None = None,
    account_history: bool = True,
    echo: Any = click.echo,
) -> dict[str, Any]:
    lanes_total = clients * lanes
    lane_txs = lane_txs_for(txs, duration, rate, batch, lanes_total, chunk)
    figures: dict[str, Any] = {
        "machine": machine(),
        "validators": validators, "accounts": accounts, "duration_s": duration, "rate_txs_per_s": rate or "max",
        "batch": batch, "clients": clients, "lanes": lanes_total, "chunk": chunk, "warmup_s": warmup,
        "account_history": account_history,
    }  # fmt: skip
    echo(
        f"clearchain bench: {validators} validators, {accounts:,} accounts, batch {batch}, rate {rate or 'max'} tx/s, "
        f"{clients} clients x {lanes} lanes, {duration:.0f} s ({warmup:.0f} s warm-up); {figures['machine']}"
    )
    figures["calibration_before"] = cal = bench_executor.calibrate()
    bound = cal["ed25519_verifies_per_s"] * (os.cpu_count() or 1) / validators
    echo(
        f"  calibration: {cal['ed25519_verifies_per_s']:,} Ed25519 verifies/s on one core -> signature bound {bound:,.0f} tx/s"
    )
    with LoadRun(Path(tempfile.mkdtemp(prefix="clearchain-bench-")), keep, echo) as run:
        nodes = run.start_network(
            validators, accounts, lanes_total, consensus or ConsensusSection(), account_history
        )
        t0 = time.monotonic()
        run.start_clients(
            client_spec(nodes, accounts, batch, chunk, lane_txs, duration, rate, lanes_total), clients, lanes
        )
        echo(
            f"  clients ready: {lane_txs * lanes_total:,} txs ({lane_txs * lanes_total * batch:,} trades) signed in {time.monotonic() - t0:.1f} s"
        )
        sampler = NodeSampler(nodes)
        h0 = _height(nodes[0])
        start = run.release()
        rss0, cpu_w0, cpu_w1, h_w0 = sampler.rss_mb(), None, None, None
        spy = None
        while run.driving():
            now = time.monotonic()
            sampler.sample(now - start)
            if cpu_w0 is None and now >= start + warmup:
                cpu_w0, h_w0, t_w0 = sampler.cpu_s(), _height(nodes[0]), now
                if profile is not None:
                    spy = _start_profile(nodes, duration - warmup, profile, echo)
            if cpu_w1 is None and now >= start + duration:
                cpu_w1, h_w1, t_w1 = sampler.cpu_s(), _height(nodes[0]), now
            time.sleep(SAMPLE_S)
        if cpu_w1 is None:
            cpu_w1, h_w1, t_w1 = sampler.cpu_s(), _height(nodes[0]), time.monotonic()
        if cpu_w0 is None:
            cpu_w0, h_w0, t_w0 = cpu_w1, h_w1, t_w1
        if spy is not None and profile is not None:
            spy.wait(timeout=duration + 60)
            figures["profile"] = bench_profile.fold(profile)
        results = run.results()
        figures.update(_summarize(results, start, duration, warmup, batch))
        figures["short_run"] = figures["committed_trades"] < RUN_COUNTS_TXS
        figures["signature_bound_txs_per_s"] = round(bound)
        figures["share_of_signature_bound"] = round(figures["txs_per_s"] / bound, 3)
        assert h_w0 is not None, "set together with cpu_w0"
        figures["blocks"] = _block_stats(nodes[0], max(h_w0, h0 + 1), h_w1)
        span = max(t_w1 - t_w0, 1e-9)
        peak = [max(s[1][i] for s in sampler.series) for i in range(len(nodes))] if sampler.series else rss0
        rss_end = sampler.rss_mb()
        figures["nodes"] = [
            {"node": nodes[i].name, "cpu_pct": round((cpu_w1[i] - cpu_w0[i]) / span * 100, 1),
             "rss_mb_start": round(rss0[i], 1), "rss_mb_peak": round(peak[i], 1), "rss_mb_end": round(rss_end[i], 1)}
            for i in range(len(nodes))
        ]  # fmt: skip
        figures["rss_series"] = sampler.series
        figures["client_cpu_s"] = {
            "sign": sum(r["sign_cpu_s"] for r in results),
            "drive": sum(r["drive_cpu_s"] for r in results),
        }
        figures["lanes_exhausted"] = _exhausted(results, lane_txs, lanes_total)
    if baseline_trades:
        figures["baseline"] = base_figures = _baseline(baseline_trades, accounts, lanes_total, batch, echo)
        figures["ratio_to_baseline"] = {
            mode: round(figures["trades_per_s"] / max(b["trades_per_s"], 1e-9), 3)
            for mode, b in base_figures.items()
        }
    figures["calibration_after"] = bench_executor.calibrate()
    print_table(figures, echo)
    return figures


def _height(node: NodeProcess) -> int:
    """The node's height; a node busy executing a big block may take seconds to answer, and a
    short timeout would report -1 and lose the window's blocks."""
    for _ in range(3):
        try:
            return int(node.get("/status", timeout=15)["height"])
        except (OSError, ValueError, KeyError):
            time.sleep(0.5)
    return -1


def _start_profile(nodes: list[NodeProcess], seconds: float, out: Path, echo: Any) -> Any:
    """py-spy on the last validator (it proposes and validates like any other)."""
    node = nodes[-1]
    spy = bench_profile.start(node.proc.pid, seconds, out) if node.proc is not None else None
    echo(
        f"  profiling {node.name} for {seconds:.0f} s into {out}"
        if spy
        else "  --profile: py-spy not found; not profiled"
    )
    return spy


def _exhausted(results: list[dict[str, Any]], lane_txs: int, lanes_total: int) -> bool:
    """Whether the clients sent everything they had signed (a max-rate run then ended early)."""
    return sum(r[2] for out in results for r in out["records"]) >= lane_txs * lanes_total


def print_table(f: dict[str, Any], echo: Any = click.echo) -> None:
    lat = f["latency_ms"]
    rows = [
        ("committed trades/s (after warm-up)", f"{f['trades_per_s']:,.0f}"),
        (
            "committed txs/s",
            f"{f['txs_per_s']:,.0f}  ({f['share_of_signature_bound']:.0%} of the signature bound {f['signature_bound_txs_per_s']:,} tx/s)",
        ),
        (
            "submitted / committed / failed txs",
            f"{f['submitted_txs']:,} / {f['committed_txs']:,} / {f['failed_txs']:,}",
        ),
        (
            "commit latency p50 / p95 / p99 / max",
            f"{lat['p50']:,.0f} / {lat['p95']:,.0f} / {lat['p99']:,.0f} / {lat['max']:,.0f} ms",
        ),
    ]
    b = f["blocks"]
    if "interval_ms_mean" in b:
        rows.append(
            (
                "blocks: count, txs mean / max, interval mean / p50",
                f"{b['blocks']}, {b['txs_per_block_mean']:,.0f} / {b['txs_per_block_max']:,}, {b['interval_ms_mean']:,.0f} / {b['interval_ms_p50']:,} ms",
            )
        )
    for n in f["nodes"]:
        rows.append(
            (
                f"  {n['node']}: CPU, RSS start / peak / end",
                f"{n['cpu_pct']:.0f} %, {n['rss_mb_start']:,.0f} / {n['rss_mb_peak']:,.0f} / {n['rss_mb_end']:,.0f} MB",
            )
        )
    for mode, base in (f.get("baseline") or {}).items():
        label = {"full": "fsync per commit", "normal": "synchronous=NORMAL"}[mode]
        rows.append(
            (
                f"SQLite baseline, {label}",
                f"{base['trades_per_s']:,.0f} trades/s ({base['trades_per_cpu_s']:,.0f} per CPU s) -> chain/baseline {f['ratio_to_baseline'][mode]:.2f}",
            )
        )
        if base.get("verified"):
            v = base["verified"]
            rows.append(
                (
                    "  + one Ed25519 verify per trade",
                    f"{v['trades_per_s']:,.0f} trades/s ({v['trades_per_cpu_s']:,.0f} per CPU s)",
                )
            )
    prof = f.get("profile")
    if prof and prof.get("samples"):
        rows.append((f"where {f['nodes'][-1]['node']}'s CPU went ({prof['samples']:,} samples)", ""))
        rows += [(f"  {label}", f"{v:.0%}") for label, v in prof["parts"].items()]
    if f["failures_by_code"]:
        rows.append(("failures by code", ", ".join(f"{k} {v:,}" for k, v in f["failures_by_code"].items())))
    if f["short_run"]:
        rows.append(("NOTE", f"short run: fewer than {RUN_COUNTS_TXS:,} committed trades"))
    if f["lanes_exhausted"]:
        rows.append(("NOTE", "the clients ran out of pre-signed txs before the end: raise --txs"))
    width = max(len(k) for k, _ in rows)
    echo("")
    for k, v in rows:
        echo(f"  {k.ljust(width)}  {v}")
