"""``clearchain genesis dev | check``: write the development genesis, and check a genesis file and
this node's contract code against its pins."""

from __future__ import annotations

import json
from pathlib import Path

import click

DEFAULT_GENESIS = Path("genesis.json")


def write_dev_genesis(out: Path, validators: int) -> Path:
    """Write the INSECURE development genesis (what the repository's genesis.json holds) to ``out``."""
    from cli.localnet.devnet import dev_genesis_doc

    out.write_text(json.dumps(dev_genesis_doc(validators), indent=2) + "\n")
    return out


@click.group()
def genesis() -> None:
    """Make and check genesis documents."""


@genesis.command("dev")
@click.option("--out", type=click.Path(path_type=Path), default=DEFAULT_GENESIS, show_default=True)
@click.option("--validators", type=click.IntRange(1, 100), default=4, show_default=True)
def genesis_dev(out: Path, validators: int) -> None:
    """Write the INSECURE development genesis (dev keys from public seeds)."""
    write_dev_genesis(out, validators)
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
