"""``clearchain bench [executor | audit | network]``: the benchmark commands. Each parses its
options and hands them to its runner (``cli.bench.load``, ``executor``, ``audit``, ``network``),
which prints the figures; ``--json-out`` also writes them to a file."""

from __future__ import annotations

from pathlib import Path

import click

from cli.commands.plumbing import json_out_option, write_json_out


def _rate(value: str) -> float | None:
    if value == "max":
        return None
    try:
        rate = float(value)
    except ValueError:
        raise click.BadParameter("a number of transactions per second, or max") from None
    if not rate > 0:
        raise click.BadParameter("must be above 0")
    return rate


@click.group(invoke_without_command=True)
@click.option("--validators", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option(
    "--accounts",
    type=click.IntRange(2),
    default=10_000,
    show_default=True,
    help="Funded client accounts in genesis.",
)
@click.option(
    "--duration", type=click.FloatRange(2, 3600), default=30, show_default=True, help="Seconds of load."
)
@click.option(
    "--rate", default="max", show_default=True, help="Transactions per second over all clients, or max."
)
@click.option(
    "--batch", type=click.IntRange(1, 1000), default=1, show_default=True, help="Trades per transaction."
)
@click.option("--clients", type=click.IntRange(1, 16), default=2, show_default=True, help="Client processes.")
@click.option(
    "--lanes",
    type=click.IntRange(1, 512),
    default=None,
    help="Requests in flight per client, one exchange each [max rate: ~3,200 trades in flight; a rate: 1.5 s of it].",
)
@click.option(
    "--chunk",
    type=click.IntRange(1, 1000),
    default=None,
    help="Transactions per POST [max rate and batch 1: 50; else 1].",
)
@click.option(
    "--warmup",
    type=click.FloatRange(0),
    default=None,
    help="Seconds left out of the figures [duration/5, at most 10].",
)
@click.option(
    "--txs", type=click.IntRange(1), default=None, help="Transactions to pre-sign [enough for the rate]."
)
@click.option(
    "--baseline-trades",
    type=click.IntRange(0),
    default=10_000,
    show_default=True,
    help="Tickets for the SQLite baseline (0: none).",
)
@click.option("--keep", is_flag=True, help="Keep the network folder (logs, stores).")
@click.option(
    "--account-history/--no-account-history",
    default=True,
    show_default=True,
    help="Nodes keep the account-history index (rpc.account_history).",
)
@click.option(
    "--profile",
    type=click.Path(path_type=Path),
    default=None,
    help="Sample a validator with py-spy into this file.",
)
@json_out_option
@click.pass_context
def bench(
    ctx: click.Context,
    validators: int,
    accounts: int,
    duration: float,
    rate: str,
    batch: int,
    clients: int,
    lanes: int,
    chunk: int | None,
    warmup: float | None,
    txs: int | None,
    baseline_trades: int,
    keep: bool,
    account_history: bool,
    profile: Path | None,
    json_out: Path | None,
) -> None:
    """Benchmarks that print figures (see docs/BENCHMARKS.md).

    Without a subcommand: start a fresh local network of validator processes, drive signed trade
    transactions at it from client processes through the HTTP API, and report committed trades/s,
    commit latency, blocks, CPU and memory per node, against the signature bound and a SQLite
    baseline measured in the same run."""
    if ctx.invoked_subcommand is not None:
        return
    from cli.bench.load import default_lanes, run_bench

    per_s = _rate(rate)
    if chunk is None:
        chunk = 50 if batch == 1 and per_s is None else 1
    if lanes is None:
        lanes = default_lanes(per_s, batch, chunk, clients)
    figures = run_bench(
        validators=validators,
        accounts=accounts,
        duration=duration,
        rate=per_s,
        batch=batch,
        clients=clients,
        lanes=lanes,
        chunk=chunk,
        warmup=min(duration / 5, 10) if warmup is None else warmup,
        txs=txs,
        baseline_trades=baseline_trades,
        keep=keep,
        profile=profile,
        account_history=account_history,
    )
    write_json_out(json_out, figures)


@bench.command("executor")
@click.option("--txs", type=int, default=20_000, show_default=True, help="Signed single-trade txs.")
@click.option("--batches", type=int, default=100, show_default=True, help="Batches of --batch-size trades.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option("--accounts", "account_count", type=int, default=10_000, show_default=True)
@click.option("--tree-sizes", default="10000,100000,1000000", show_default=True)
@click.option("--store", type=click.Choice(["leveldb", "memory"]), default="leveldb", show_default=True)
@json_out_option
def bench_executor(
    txs: int,
    batches: int,
    batch_size: int,
    account_count: int,
    tree_sizes: str,
    store: str,
    json_out: Path | None,
) -> None:
    """Single-process executor throughput and state-tree updates/s."""
    from cli.bench.executor import run_bench

    figures = run_bench(
        txs, batches, batch_size, account_count, [int(s) for s in tree_sizes.split(",") if s], store
    )
    write_json_out(json_out, figures)


@bench.command("audit")
@click.option(
    "--txs",
    type=click.IntRange(0),
    default=100_000,
    show_default=True,
    help="Signed single-trade txs in the history.",
)
@click.option("--block-txs", type=click.IntRange(1, 5000), default=2_000, show_default=True)
@click.option(
    "--batches", type=click.IntRange(0), default=0, show_default=True, help="settle_batch txs, one per block."
)
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option("--accounts", "account_count", type=click.IntRange(2), default=10_000, show_default=True)
@click.option("--profile", is_flag=True, help="Print a cProfile of the audit.")
@json_out_option
def bench_audit(
    txs: int,
    block_txs: int,
    batches: int,
    batch_size: int,
    account_count: int,
    profile: bool,
    json_out: Path | None,
) -> None:
    """Audit speed: blocks/s, txs/s and trades/s re-verified and re-executed by one process."""
    from cli.bench.audit import run_bench

    figures = run_bench(txs, block_txs, batches, batch_size, account_count, profile)
    write_json_out(json_out, figures)


@bench.command("network")
@click.option("--validators", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option(
    "--seconds",
    type=click.FloatRange(1, 600),
    default=10,
    show_default=True,
    help="Per block-rate measurement.",
)
@click.option("--latency-txs", type=click.IntRange(1), default=50, show_default=True)
@click.option("--trades", type=click.IntRange(1), default=5000, show_default=True)
@click.option("--batch", type=click.IntRange(1, 1000), default=500, show_default=True)
@json_out_option
def bench_network(
    validators: int, seconds: float, latency_txs: int, trades: int, batch: int, json_out: Path | None
) -> None:
    """Empty-block rate, commit latency and throughput of a local multi-process network."""
    from cli.bench.network import run_bench

    figures = run_bench(validators, seconds, latency_txs, trades, batch)
    write_json_out(json_out, figures)


@bench.command("soak")
@click.option(
    "--rate",
    type=click.FloatRange(0, min_open=True),
    default=300,
    show_default=True,
    help="Transactions per second over all clients.",
)
@click.option(
    "--duration", type=click.FloatRange(2, 14_400), default=3600, show_default=True, help="Seconds of load."
)
@click.option("--validators", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option(
    "--batch", type=click.IntRange(1, 1000), default=1, show_default=True, help="Trades per transaction."
)
@click.option(
    "--sample-s",
    type=click.FloatRange(0.5),
    default=10,
    show_default=True,
    help="Seconds between samples of each node's RSS and committed transactions.",
)
@click.option(
    "--warmup-s",
    type=click.FloatRange(0),
    default=120,
    show_default=True,
    help="Seconds left out of the RSS slope and the achieved rate.",
)
@click.option(
    "--accounts",
    type=click.IntRange(2),
    default=10_000,
    show_default=True,
    help="Funded client accounts in genesis.",
)
@click.option("--clients", type=click.IntRange(1, 16), default=2, show_default=True, help="Client processes.")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="A new or empty folder for the network, kept afterwards [a temporary folder, deleted].",
)
@json_out_option
def bench_soak(
    rate: float,
    duration: float,
    validators: int,
    batch: int,
    sample_s: float,
    warmup_s: float,
    accounts: int,
    clients: int,
    directory: Path | None,
    json_out: Path | None,
) -> None:
    """Memory and disk of a local network under a steady load: RSS per node every --sample-s,
    its slope in bytes per committed transaction after --warmup-s, disk bytes per trade per
    node, pruning lag if the nodes expose it (see docs/BENCHMARKS.md)."""
    if warmup_s >= duration:
        raise click.BadParameter("must be below --duration", param_hint="--warmup-s")
    from cli.bench.soak import run_soak

    figures = run_soak(
        validators=validators,
        accounts=accounts,
        duration=duration,
        rate=rate,
        batch=batch,
        clients=clients,
        sample_s=sample_s,
        warmup_s=warmup_s,
        directory=directory,
    )
    write_json_out(json_out, figures)
