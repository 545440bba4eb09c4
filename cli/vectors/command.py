"""``clearchain vectors [--out DIR] [--check]``: write the conformance vectors, or check them."""

from __future__ import annotations

from pathlib import Path

import click

from cli.commands.plumbing import CliError
from cli.vectors import VECTORS_DIR, differences, write_all


@click.command("vectors")
@click.option(
    "--out", type=click.Path(path_type=Path, file_okay=False), default=VECTORS_DIR, show_default=True
)
@click.option("--check", is_flag=True, help="Write nothing; fail if any file differs from a fresh build.")
def vectors(out: Path, check: bool) -> None:
    """Write (or --check) the conformance vectors an outside implementation tests itself against."""
    if check:
        bad = differences(out)
        if bad:
            raise CliError(
                "vectors_stale", f"{len(bad)} file(s) differ, run `make vectors`: {', '.join(bad[:5])}"
            )
        click.echo(f"vectors in {out} are current")
        return
    written = write_all(out)
    click.echo(f"wrote {len(written)} vector file(s) to {out}")
