"""``clearchain demo`` (the clearing story, or one contract's scenario, on the local network) and
``clearchain scenario`` (the single-process clearing scenario); the stories are in
``cli.scenarios``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from cli.commands.genesis import DEFAULT_GENESIS, write_dev_genesis
from cli.commands.plumbing import json_flag
from cli.localnet.commands import NET_DIR_OPTION


@click.command()
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
    from cli.scenarios.solo import run_scenario

    if genesis_path == DEFAULT_GENESIS and not genesis_path.exists():
        # Outside a checkout (an installed copy) there is no ./genesis.json: the repository's is the
        # development genesis, so build the same document from code.
        home.mkdir(parents=True, exist_ok=True)
        genesis_path = write_dev_genesis(home / "genesis.json", validators=4)
        click.echo(f"no {DEFAULT_GENESIS} here: using the dev genesis, written to {genesis_path}")
    run_scenario(home, genesis_path, reset)


@click.command()
@NET_DIR_OPTION
@click.option(
    "--scenario",
    "scenario_name",
    default=None,
    metavar="NAME",
    help="Run one contract's scenario instead (netting, swap, oracle, breaker, margin, bonds, governance, corporate, fund; or all).",
)
@json_flag("Print one JSON document of what the demo did (the story goes to stderr).")
def demo(directory: Path, scenario_name: str | None, as_json: bool) -> None:
    """Tell the clearing story on the local network (started first if it is not up)."""
    from cli.scenarios.demo import run_demo, run_demo_scenario

    echo = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    if scenario_name is None:
        doc = run_demo(directory, echo)
    else:
        doc = run_demo_scenario(directory, scenario_name, echo)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
