"""The ``clearchain`` command line.

Errors every command may meet (ClearchainError) are shown as one line, ``error: <code>: <message>``,
with exit status 1; a traceback is a bug.
"""

from __future__ import annotations

import json
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
@click.option("--home", type=click.Path(path_type=Path), default=Path(".devnet/solo"), show_default=True, help="Where the LevelDB ledger lives.")
@click.option("--genesis", "genesis_path", type=click.Path(path_type=Path), default=DEFAULT_GENESIS, show_default=True)
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
    """Validate a genesis file and check this node's contract code against its pins."""
    from chain.genesis import load_genesis
    from contracts import default_registry

    g = load_genesis(path)
    default_registry().check_pins(g.contracts)
    click.echo(
        f"{path}: chain {g.chain_id}, {len(g.validators.validators)} validators, "
        f"{len(g.participants)} participants, {len(g.instruments)} instruments, "
        f"{len(g.accounts)} accounts; contract code matches"
    )


@main.group()
def bench() -> None:
    """Benchmarks that print figures (see docs/BENCHMARKS.md)."""


@bench.command("executor")
@click.option("--txs", type=int, default=20_000, show_default=True, help="Signed single-trade txs.")
@click.option("--batches", type=int, default=100, show_default=True, help="Batches of --batch-size trades.")
@click.option("--batch-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option("--accounts", "account_count", type=int, default=10_000, show_default=True)
@click.option("--tree-sizes", default="10000,100000,1000000", show_default=True)
@click.option("--store", type=click.Choice(["leveldb", "memory"]), default="leveldb", show_default=True)
@click.option("--json-out", type=click.Path(path_type=Path), default=None)
def bench_executor(txs: int, batches: int, batch_size: int, account_count: int, tree_sizes: str, store: str, json_out: Path | None) -> None:
    """Single-process executor throughput and state-tree updates/s."""
    from cli.bench_executor import run_bench

    figures = run_bench(txs, batches, batch_size, account_count, [int(s) for s in tree_sizes.split(",") if s], store)
    if json_out:
        json_out.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
