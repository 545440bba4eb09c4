"""``clearchain chaos``: run the harness's seeded fault schedules (``cli.chaos.harness``) and print
one summary row per run; exits 1 if any run broke an invariant."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any, Final

import click

from cli.chaos.harness import FAULT_KINDS, plan_runs, run_once
from cli.commands.plumbing import json_out_option, write_json_out
from node.faults import BYZANTINE_MODES


def summary_row(r: dict[str, Any]) -> str:
    c = r["checks"]
    liar = c.get("liar") or {}
    byz = r["plan"]["byzantine"] or "-"
    slashed = f"{liar.get('slashed', 0) / 100:,.2f}" if byz == "equivocate" else "-"
    return (
        f"{r['seed']:>6} {byz:>13} {len(r['faults']):>6} {r.get('sent', 0):>6} {r.get('acked', 0):>6} "
        f"{len(c['lost']):>4} {len(c['forks']):>5} {len(c['root_mismatches']):>5} "
        f"{sum(a['ok'] for a in r['audit'].values())}/{len(r['audit']):<3} {r.get('resume_s') or '-':>7} {slashed:>10} "
        f"{'ok' if not r['violations'] else 'FAIL'}"
    )


HEADER: Final = f"{'seed':>6} {'byzantine':>13} {'faults':>6} {'sent':>6} {'acked':>6} {'lost':>4} {'forks':>5} {'roots':>5} {'audit':<5} {'resume':>7} {'slashed':>10} result"


@click.command("chaos")
@click.option(
    "--seed", type=int, default=1, show_default=True, help="Seed of the first run; run k uses seed+k."
)
@click.option("--runs", type=click.IntRange(1, 100), default=3, show_default=True)
@click.option("--validators", type=click.IntRange(4, 10), default=4, show_default=True)
@click.option(
    "--duration",
    type=click.FloatRange(10, 3600),
    default=40,
    show_default=True,
    help="Seconds of faults per run.",
)
@click.option(
    "--faults", "kinds", default=",".join(FAULT_KINDS), show_default=True, help="Comma-separated fault kinds."
)
@click.option(
    "--byzantine",
    type=click.Choice(["all", "none", *BYZANTINE_MODES]),
    default="all",
    show_default=True,
    help="The liar's mode; all: one per run, in turn.",
)
@click.option(
    "--dir",
    "directory",
    type=click.Path(path_type=Path),
    default=None,
    help="Where the runs' networks go (default: a temporary folder).",
)
@click.option("--keep", is_flag=True, help="Keep the networks (always kept when a run fails).")
@json_out_option
def chaos(
    seed: int,
    runs: int,
    validators: int,
    duration: float,
    kinds: str,
    byzantine: str,
    directory: Path | None,
    keep: bool,
    json_out: Path | None,
) -> None:
    """Run seeded fault schedules on real local networks and check safety, durability and liveness."""
    chosen = tuple(k.strip() for k in kinds.split(",") if k.strip())
    unknown = sorted(set(chosen) - set(FAULT_KINDS))
    if unknown or not chosen:
        raise click.BadParameter(f"fault kinds are {', '.join(FAULT_KINDS)}", param_hint="--faults")
    root = directory or Path(tempfile.mkdtemp(prefix="clearchain-chaos-"))
    results = []
    for plan in plan_runs(seed, runs, validators, duration, chosen, byzantine):
        click.echo(
            f"run seed={plan.seed} byzantine={plan.byzantine} skew={plan.clock_skew_ms}ms fsync+{plan.fsync_delay_ms}ms"
        )
        result = run_once(plan, root / f"seed-{plan.seed}", say=click.echo)
        results.append(result)
        for v in result["violations"]:
            click.echo(f"  VIOLATION {v}", err=True)
    click.echo(HEADER)
    for r in results:
        click.echo(summary_row(r))
    failed = [r for r in results if r["violations"]]
    write_json_out(json_out, results)
    if failed or keep:
        click.echo(f"networks kept in {root}")
    elif directory is None:
        shutil.rmtree(root, ignore_errors=True)
    if failed:
        raise SystemExit(1)
