"""``clearchain node run``: one node in the foreground (node/runtime.py), until SIGTERM or Ctrl-C."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
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
