"""``clearchain bench network``: figures of a real local network (separate processes, 127.0.0.1).

Measures, on N validators started fresh in a temporary folder:

1. the empty-block rate: heartbeat set to 1 ms, so every height starts as soon as the last one
   commits: blocks per second of pure consensus (propose, two vote rounds, fsyncs, commit);
2. the idle rate under the default heartbeat (one empty block per ``heartbeat_ms``);
3. commit latency: one trade at a time, ``POST /txs?wait=commit``, from send to the reply;
4. throughput: trades posted in batches as fast as the API takes them, committed trades per
   second from the first post to the last commit.

Prints figures; records nothing by itself (docs/BENCHMARKS.md holds the method and results).
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.localnet.process import NodeProcess, wait_until
from cli.scenarios.solo import Signer
from cli.trade_dates import today
from node.config import ConsensusSection


def _start(directory: Path, validators: int, consensus: ConsensusSection) -> list[NodeProcess]:
    net = init_network(directory, validators, base_port=0, consensus=consensus)
    nodes = [NodeProcess(directory, n) for n in net["nodes"]]
    for n in nodes:
        n.start()
    wait_until(lambda: all(n.height() >= 1 for n in nodes), 60, "the first block", nodes)
    return nodes


def _stop(nodes: list[NodeProcess]) -> None:
    for n in nodes:
        n.terminate()


def _block_rate(nodes: list[NodeProcess], seconds: float) -> tuple[int, float]:
    h0, t0 = nodes[0].height(), time.monotonic()
    time.sleep(seconds)
    h1, t1 = nodes[0].height(), time.monotonic()
    return h1 - h0, (h1 - h0) / (t1 - t0)


def _trade(signer: Signer, n: int) -> str:
    buyer, seller = ("A-C001", "B-C001") if n % 2 == 0 else ("B-C001", "A-C001")
    stx = signer.tx(
        "xchg-alpha", "settlement", "settle", [f"BENCH-{n}", buyer, seller, "ACME", 1, 180_00, today()]
    )
    return stx.encode().hex()


def run_bench(
    validators: int, seconds: float, latency_txs: int, trades: int, batch: int, echo: Any = click.echo
) -> dict[str, Any]:
    figures: dict[str, Any] = {"validators": validators}
    base = Path(tempfile.mkdtemp(prefix="clearchain-bench-"))
    try:
        echo(f"network benchmark: {validators} validator processes on 127.0.0.1, LevelDB, fsync on")
        nodes = _start(base / "fast", validators, ConsensusSection(heartbeat_ms=1, commit_wait_ms=0))
        try:
            count, rate = _block_rate(nodes, seconds)
        finally:
            _stop(nodes)
        figures["empty_blocks_per_s"] = round(rate, 1)
        echo(
            f"  empty-block rate (heartbeat 1 ms): {count} blocks in {seconds:.0f} s = {rate:.1f} blocks/s ({1000 / max(rate, 1e-9):.0f} ms per height)"
        )

        nodes = _start(base / "default", validators, ConsensusSection())
        try:
            count, rate = _block_rate(nodes, seconds)
            figures["idle_blocks_per_s"] = round(rate, 2)
            echo(
                f"  idle rate (genesis heartbeat {devnet.dev_genesis_doc()['consensus']['heartbeat_ms']} ms): {count} blocks in {seconds:.0f} s = {rate:.2f} blocks/s"
            )

            signer = Signer(devnet.CHAIN_ID)
            latencies = []
            for n in range(latency_txs):
                t0 = time.monotonic()
                status, body = nodes[n % len(nodes)].post(
                    "/txs?wait=commit", {"tx": _trade(signer, n)}, timeout=30
                )
                latencies.append(time.monotonic() - t0)
                if status != 200 or body["txs"][0]["status"] != "committed":
                    raise click.ClickException(f"trade {n} not committed: {status} {body}")
                time.sleep(0.05)  # let the node go idle again: latency from an idle chain
            ms = sorted(x * 1000 for x in latencies)
            figures["commit_latency_ms"] = {
                "p50": round(statistics.median(ms), 1), "p90": round(ms[int(0.9 * (len(ms) - 1))], 1), "max": round(ms[-1], 1),
            }  # fmt: skip
            echo(
                f"  commit latency (one trade, POST ?wait=commit, {latency_txs} samples): p50 {figures['commit_latency_ms']['p50']} ms, p90 {figures['commit_latency_ms']['p90']} ms, max {figures['commit_latency_ms']['max']} ms"
            )

            h0 = nodes[0].height()
            t0 = time.monotonic()
            sent = latency_txs
            while sent < latency_txs + trades:
                items = [_trade(signer, n) for n in range(sent, min(sent + batch, latency_txs + trades))]
                status, body = nodes[0].post("/txs", {"txs": items}, timeout=60)
                if status != 202 or body["refused"]:
                    raise click.ClickException(f"batch refused: {status} {str(body)[:300]}")
                sent += len(items)
            posted = time.monotonic() - t0
            wait_until(
                lambda: (nodes[0].status() or {}).get("mempool", {}).get("txs") == 0,
                600,
                "the trades committed",
                nodes,
            )
            took = time.monotonic() - t0
            blocks = nodes[0].height() - h0
            figures["throughput"] = {
                "trades": trades,
                "seconds": round(took, 2),
                "trades_per_s": round(trades / took, 1),
                "blocks": blocks,
                "post_seconds": round(posted, 2),
            }
            echo(
                f"  throughput: {trades} trades (single-ticket txs, posted in batches of {batch} to one node) committed in {took:.2f} s = {trades / took:.0f} trades/s over {blocks} blocks (posting took {posted:.2f} s)"
            )
        finally:
            _stop(nodes)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return figures
