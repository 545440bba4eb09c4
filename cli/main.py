"""The ``clearchain`` command line.

Errors every command may meet (ClearchainError) are shown as one line, ``error: <code>: <message>``,
with exit status 1; a traceback is a bug.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import click

from chain.errors import ClearchainError

DEFAULT_GENESIS = Path("genesis.json")


class ClearchainGroup(click.Group):
    """Turns expected errors into one line and a non-zero exit."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ClearchainError as exc:
            click.echo(f"error: {exc.code}: {exc.message}", err=True)
            sys.exit(1)


@click.group(cls=ClearchainGroup)
def main() -> None:
    """clearchain: a permissioned clearing chain."""


@main.command()
@click.option(
    "--home",
    type=click.Path(path_type=Path),
    default=Path(".devnet/solo"),
    show_default=True,
    help="Where the LevelDB ledger lives.",
)
@click.option(
    "--genesis", "genesis_path", type=click.Path(path_type=Path), default=DEFAULT_GENESIS, show_default=True
)
@click.option("--reset", is_flag=True, help="Delete the ledger under --home first.")
def scenario(home: Path, genesis_path: Path, reset: bool) -> None:
    """Run the single-process clearing scenario: genesis, deposits, trades, balances."""
    from cli.scenario import run_scenario

    run_scenario(home, genesis_path, reset)


@main.group()
def genesis() -> None:
    """Make and check genesis documents."""


@genesis.command("dev")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_GENESIS, show_default=True)
@click.option("--validators", type=click.IntRange(1, 100), default=4, show_default=True)
def genesis_dev(out: Path, validators: int) -> None:
    """Write the INSECURE development genesis (dev keys from public seeds)."""
    from cli.devnet import dev_genesis_doc

    out.write_text(json.dumps(dev_genesis_doc(validators), indent=2) + "\n")
    click.echo(f"wrote {out} (INSECURE dev keys)")


@genesis.command("check")
@click.argument("path", type=click.Path(path_type=Path), default=DEFAULT_GENESIS)
def genesis_check(path: Path) -> None:
    """Validate a genesis file and check this node's contract code against its pins.

    After a governance code upgrade the chain pins newer code than genesis does: this check then
    fails by design, and a node checks its code against the pins in its own state instead
    (``clearchain view governance upgrades``)."""
    from chain.genesis import load_genesis
    from contracts import default_registry

    g = load_genesis(path)
    default_registry().check_pins(g.contracts)
    click.echo(
        f"{path}: chain {g.chain_id}, {len(g.validators.validators)} validators, "
        f"{len(g.participants)} participants, {len(g.instruments)} instruments, "
        f"{len(g.accounts)} accounts; contract code matches"
    )


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


@main.group(invoke_without_command=True)
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
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
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
    from cli.bench_load import run_bench

    per_s = _rate(rate)
    if chunk is None:
        chunk = 50 if batch == 1 and per_s is None else 1
    if lanes is None:
        if per_s is None:  # about 3,200 trades in flight: a full block waiting behind the one executing
            lanes = max(1, min(512, math.ceil(3_200 / (batch * chunk) / clients)))
        else:  # paced: enough requests in flight to keep the rate with 1.5 s commit latency
            lanes = max(4, min(512, math.ceil(per_s * 1.5 / chunk / clients)))
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
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")


@bench.command("executor")
@click.option("--txs", type=int, default=20_000, show_default=True, help="Signed single-trade txs.")
@click.option("--batches", type=int, default=100, show_default=True, help="Batches of --batch-size trades.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option("--accounts", "account_count", type=int, default=10_000, show_default=True)
@click.option("--tree-sizes", default="10000,100000,1000000", show_default=True)
@click.option("--store", type=click.Choice(["leveldb", "memory"]), default="leveldb", show_default=True)
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
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
    from cli.bench_executor import run_bench

    figures = run_bench(
        txs, batches, batch_size, account_count, [int(s) for s in tree_sizes.split(",") if s], store
    )
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")


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
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
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
    from cli.bench_audit import run_bench

    figures = run_bench(txs, block_txs, batches, batch_size, account_count, profile)
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")


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
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
def bench_network(
    validators: int, seconds: float, latency_txs: int, trades: int, batch: int, json_out: Path | None
) -> None:
    """Empty-block rate, commit latency and throughput of a local multi-process network."""
    from cli.bench_network import run_bench

    figures = run_bench(validators, seconds, latency_txs, trades, batch)
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")


@main.command()
@click.option("--validators", type=click.IntRange(1, 256), default=4, show_default=True)
@click.option(
    "--byzantine", type=click.IntRange(0, 85), default=0, show_default=True, help="The last F validators."
)
@click.option(
    "--mode",
    type=click.Choice(["equivocate", "silent", "invalid", "forge"]),
    default="equivocate",
    show_default=True,
)
@click.option(
    "--drop",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Loss probability.",
)
@click.option(
    "--dup", type=click.FloatRange(0, 1), default=0.0, show_default=True, help="Duplication probability."
)
@click.option("--delay", default="5-50", show_default=True, help="Per-message delay range, MIN-MAX ms.")
@click.option(
    "--partition",
    "partitions",
    multiple=True,
    help='"0,1|2,3@1000-5000": groups cut off from each other from 1000 to 5000 ms.',
)
@click.option(
    "--crash", "crashes", multiple=True, help='"2@1000-4000[:before-send]": node 2 down from 1000 to 4000 ms.'
)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--heights", type=click.IntRange(1, 1_000_000), default=10, show_default=True, help="Target height."
)
@click.option(
    "--time-max-ms", type=click.IntRange(1), default=600_000, show_default=True, help="Virtual time limit."
)
@click.option("--real-crypto", is_flag=True, help="Ed25519 dev keys instead of fast simulated signatures.")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
def sim(
    validators: int,
    byzantine: int,
    mode: str,
    drop: float,
    dup: float,
    delay: str,
    partitions: tuple[str, ...],
    crashes: tuple[str, ...],
    seed: int,
    heights: int,
    time_max_ms: int,
    real_crypto: bool,
    as_json: bool,
) -> None:
    """Deterministic network simulation of consensus under seeded faults (node/simnet.py).

    Exits 1 on a safety violation or if an honest node missed the target height."""
    from node.simnet import SimConfig, SimConfigError, parse_crash, parse_partition, run

    try:
        delay_ms = tuple(int(x) for x in delay.split("-"))
    except ValueError:
        delay_ms = ()
    if len(delay_ms) != 2:
        raise SimConfigError("bad_sim_config", f"delay {delay!r} is not like 5-50")
    cfg = SimConfig(
        validators=validators, byzantine=byzantine, mode=mode, seed=seed, heights=heights, drop=drop, dup=dup,
        delay_ms=(delay_ms[0], delay_ms[1]), partitions=tuple(parse_partition(p) for p in partitions),
        crashes=tuple(parse_crash(c) for c in crashes), time_max_ms=time_max_ms, real_crypto=real_crypto,
    )  # fmt: skip
    r = run(cfg)
    failed = bool(r.safety_violations or r.signer_conflicts) or not r.reached_target
    if as_json:
        click.echo(json.dumps({"config": repr(cfg), **r.summary(), "ok": not failed}, indent=2))
    else:
        slow = sum(1 for n in r.rounds_by_height.values() if n > 1)
        accused = sorted({e[0] for e in r.evidence})
        click.echo(
            f"sim: {validators} validators, {byzantine} byzantine ({mode}), seed {seed}, {'Ed25519' if real_crypto else 'sim crypto'}"
        )
        per_node = f"; per node {r.heights}" if validators <= 16 else ""
        click.echo(
            f"heights committed: honest min {r.honest_height_min}, max {r.honest_height_max}{per_node}"
        )
        click.echo(
            f"rounds used: max {max(r.rounds_by_height.values(), default=0)}; {slow} of {len(r.rounds_by_height)} heights needed more than one"
        )
        click.echo(
            f"messages: sent {r.sent}, delivered {r.delivered}, dropped {r.dropped}; crashes {r.crashes}; heights from block sync {r.synced}"
        )
        click.echo(
            f"evidence: {len(r.evidence)} equivocations" + (f" by validators {accused}" if accused else "")
        )
        click.echo(
            f"safety violations: {len(r.safety_violations)}; signer conflicts: {len(r.signer_conflicts)}; signer refusals: {r.signer_refusals}"
        )
        for line in r.safety_violations[:10] + r.signer_conflicts[:10]:
            click.echo(f"  {line}")
        click.echo(
            f"virtual time {r.time_ms} ms, {r.events} events, wall {r.wall_s:.2f} s: {r.heights_per_wall_s:.1f} heights per wall-clock second"
        )
        click.echo(f"trace hash: {r.trace_hash}")
        click.echo(
            f"target {heights} heights: {'reached' if r.reached_target else 'NOT reached'} by every honest node"
        )
    if failed:
        sys.exit(1)


@main.group()
def net() -> None:
    """Local networks of node processes in one folder."""


@net.command("init")
@click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=Path(".devnet/net"), show_default=True
)
@click.option("--validators", type=click.IntRange(1, 100), default=4, show_default=True)
@click.option(
    "--observers",
    type=click.IntRange(0, 16),
    default=0,
    show_default=True,
    help="Non-voting nodes that replicate and verify.",
)
@click.option(
    "--base-port",
    type=click.IntRange(0, 65535),
    default=26600,
    show_default=True,
    help="Node i listens on base+2i (p2p) and base+2i+1 (API); 0 picks free ports.",
)
@click.option("--force", is_flag=True, help="Replace an existing network in --dir.")
@click.option(
    "--fresh-keys",
    is_flag=True,
    help="New random keys for every validator and participant (default: INSECURE dev keys).",
)
def net_init(
    directory: Path, validators: int, observers: int, base_port: int, force: bool, fresh_keys: bool
) -> None:
    """Write a local network: genesis, one home per node, participant keys."""
    from cli.net import init_network

    network = init_network(directory, validators, observers, base_port, force, fresh_keys=fresh_keys)
    kind = "fresh random keys, in the node homes and keys/" if fresh_keys else "INSECURE dev keys"
    click.echo(f"wrote {directory}: chain {network['chain_id']} ({kind})")
    for n in network["nodes"]:
        click.echo(f"  {n['name']:<10} {n['role']:<9} p2p {n['p2p']:<21} api http://{n['rpc']}")
    click.echo(f"start a node: clearchain node run --home {directory / network['nodes'][0]['home']}")


NET_DIR_OPTION = click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=Path(".devnet/net"), show_default=True
)


@net.command("up")
@NET_DIR_OPTION
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=60,
    show_default=True,
    help="Seconds to wait for the first block.",
)
def net_up(directory: Path, timeout: float) -> None:
    """Start every node in the background; return once the chain commits (initialises the
    default network first if --dir holds none)."""
    from cli.net import NETWORK_FILE, init_network
    from cli.netctl import up

    if not (directory / NETWORK_FILE).exists():
        init_network(directory)
        click.echo(f"initialised {directory}: 4 validators (INSECURE dev keys)")
    up(directory, click.echo, timeout)
    click.echo(f"network up: {directory} (clearchain net status | net logs node0 | net down)")


@net.command("status")
@NET_DIR_OPTION
@click.option("--json", "as_json", is_flag=True)
def net_status(directory: Path, as_json: bool) -> None:
    """Each node: process, height, peers, age of its last block, mempool."""
    from cli.netctl import status

    rows = status(directory)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    show = lambda v: "-" if v is None else str(v)  # noqa: E731
    click.echo(
        f"{'node':<11}{'role':<10}{'pid':>8}{'height':>8}{'round':>6}{'peers':>6}{'last block':>12}{'mempool':>9}  api"
    )
    for r in rows:
        age = "-" if r["last_block_age_ms"] is None else f"{r['last_block_age_ms'] / 1000:.1f} s"
        state = show(r["pid"]) if r["pid"] else "down"
        click.echo(
            f"{r['node']:<11}{r['role']:<10}{state:>8}{show(r['height']):>8}{show(r['round']):>6}{show(r['peers']):>6}{age:>12}{show(r['mempool_txs']):>9}  {r['api']}"
        )


@net.command("logs")
@NET_DIR_OPTION
@click.argument("node_name")
@click.option("-n", "--lines", type=click.IntRange(1), default=40, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
def net_logs(directory: Path, node_name: str, lines: int, follow: bool) -> None:
    """Print the end of a node's log (<dir>/<node>/node.log)."""
    import time

    from cli.net import NetworkError, load_network

    names = [n["name"] for n in load_network(directory)["nodes"]]
    if node_name not in names:
        raise NetworkError("unknown_node", f"{node_name!r} is not one of {', '.join(names)}")
    path = directory / node_name / "node.log"
    if not path.exists():
        raise NetworkError("no_log", f"{path} does not exist yet (has the node run?)")
    with path.open(errors="replace") as f:
        for line in f.readlines()[-lines:]:
            click.echo(line, nl=False)
        while follow:
            line = f.readline()
            if line:
                click.echo(line, nl=False)
            else:
                time.sleep(0.2)


@net.command("down")
@NET_DIR_OPTION
def net_down(directory: Path) -> None:
    """Stop every node (SIGTERM: a clean shutdown; SIGKILL after 15 s)."""
    from cli.netctl import down

    count = down(directory, click.echo)
    click.echo(f"stopped {count} node(s)" if count else "no node was running")


@net.command("reset")
@NET_DIR_OPTION
@click.confirmation_option(prompt="Stop the network and delete its whole chain?")
def net_reset(directory: Path) -> None:
    """Stop the network and delete every node's chain data (configs, keys and genesis stay)."""
    from cli.netctl import reset

    reset(directory, click.echo)
    click.echo(f"reset {directory}: the next `net up` starts from genesis")


@main.command()
@NET_DIR_OPTION
@click.option(
    "--scenario",
    "scenario_name",
    default=None,
    metavar="NAME",
    help="Run one contract's scenario instead (netting, swap, oracle, breaker, margin, bonds, governance, corporate, fund; or all).",
)
def demo(directory: Path, scenario_name: str | None) -> None:
    """Tell the clearing story on the local network (started first if it is not up)."""
    from cli.demo import run_demo, run_demo_scenario

    if scenario_name is None:
        run_demo(directory)
    else:
        run_demo_scenario(directory, scenario_name)


@main.group()
def node() -> None:
    """Run one node."""


@node.command("run")
@click.option("--home", type=click.Path(path_type=Path, exists=True, file_okay=False), required=True)
@click.option("--quiet", is_flag=True, help="Log only to <home>/node.log.")
def node_run(home: Path, quiet: bool) -> None:
    """Run a node in the foreground until SIGTERM or Ctrl-C (logs to <home>/node.log)."""
    import asyncio

    from node.runtime import run_node

    asyncio.run(run_node(home, echo_log=not quiet))


def _register_client_commands() -> None:
    """Commands that talk to a node's API live in their own modules (cli/cmd_*.py)."""
    from cli import cmd_audit, cmd_contracts, cmd_keys, cmd_ledger, cmd_proof

    cmd_contracts.register(main)
    cmd_keys.register(main)
    cmd_ledger.register(main)
    cmd_audit.register(main)
    cmd_proof.register(main)
    from cli.chaos import chaos

    main.add_command(chaos)


_register_client_commands()


if __name__ == "__main__":
    main()
