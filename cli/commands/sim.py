"""``clearchain sim``: the deterministic network simulation of consensus (node/simnet.py) under
seeded faults, with its figures as text or JSON; exits 1 on a safety violation or a missed target."""

from __future__ import annotations

import json
import sys

import click

from cli.commands.plumbing import json_flag


@click.command()
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
@json_flag("Print the full result as JSON.")
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
