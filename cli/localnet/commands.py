"""``clearchain net init | up | status | logs | down | reset``: a local network in one folder
(``cli.localnet.network`` writes it, ``cli.localnet.control`` runs its node processes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, NoReturn

import click

from chain.errors import ClearchainError
from cli.commands.plumbing import json_flag

DEFAULT_NET_DIR = Path(".devnet/net")
NET_DIR_OPTION = click.option(
    "--dir", "directory", type=click.Path(path_type=Path), default=DEFAULT_NET_DIR, show_default=True
)


@click.group()
def net() -> None:
    """Local networks of node processes in one folder."""


@net.command("init")
@NET_DIR_OPTION
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
    from cli.localnet.network import init_network

    network = init_network(directory, validators, observers, base_port, force, fresh_keys=fresh_keys)
    kind = "fresh random keys, in the node homes and keys/" if fresh_keys else "INSECURE dev keys"
    click.echo(f"wrote {directory}: chain {network['chain_id']} ({kind})")
    for n in network["nodes"]:
        click.echo(f"  {n['name']:<10} {n['role']:<9} p2p {n['p2p']:<21} api http://{n['rpc']}")
    click.echo(f"start a node: clearchain node run --home {directory / network['nodes'][0]['home']}")


def _progress(as_json: bool) -> Any:
    """Where progress lines go: stdout, or stderr when stdout carries the one JSON document."""
    return (lambda line: click.echo(line, err=True)) if as_json else click.echo


def _refuse(exc: ClearchainError) -> NoReturn:
    """A refusal before anything started (bad input, a port held): one line, exit 2."""
    click.echo(f"error: {exc.code}: {exc.message}", err=True)
    sys.exit(2)


@net.command("up")
@NET_DIR_OPTION
@click.option(
    "--timeout",
    type=click.FloatRange(1, 600),
    default=60,
    show_default=True,
    help="Seconds to wait for the first block.",
)
@json_flag("Print one JSON document: the network and its nodes.")
def net_up(directory: Path, timeout: float, as_json: bool) -> None:
    """Start every node in the background; return once each node answers as this folder's node
    and the chain commits (initialises the default network first if --dir holds none). Refuses
    with port_in_use (exit 2) if a port is held; node_failed or wrong_network (exit 1) stop what
    was started."""
    from cli.localnet.control import up
    from cli.localnet.network import NETWORK_FILE, init_network

    echo = _progress(as_json)
    if not (directory / NETWORK_FILE).exists():
        init_network(directory)
        echo(f"initialised {directory}: 4 validators (INSECURE dev keys)")
    try:
        up(directory, echo, timeout)
    except ClearchainError as exc:
        if exc.code == "port_in_use":
            _refuse(exc)
        raise
    if as_json:
        from cli.localnet.control import status

        click.echo(json.dumps({"network": str(directory), "up": True, "nodes": status(directory)}, indent=2))
        return
    click.echo(f"network up: {directory} (clearchain net status | net logs node0 | net down)")


@net.command("status")
@NET_DIR_OPTION
@json_flag("Print one JSON document: a row per node.")
def net_status(directory: Path, as_json: bool) -> None:
    """Each node: process, height, peers, age of its last block, mempool. A node whose API is
    answered by anything but this folder's node shows as wrong_network, with none of its numbers."""
    from cli.localnet.control import status

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
        state = "wrong" if r["state"] == "wrong_network" else show(r["pid"]) if r["pid"] else "down"
        click.echo(
            f"{r['node']:<11}{r['role']:<10}{state:>8}{show(r['height']):>8}{show(r['round']):>6}{show(r['peers']):>6}{age:>12}{show(r['mempool_txs']):>9}  {r['api']}"
        )
    for r in rows:
        if r["state"] == "wrong_network":
            click.echo(f"wrong_network: {r['node']}: {r['api']} {r['problem']}")


@net.command("logs")
@NET_DIR_OPTION
@click.argument("node_name")
@click.option("-n", "--lines", type=click.IntRange(1), default=40, show_default=True)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines (Ctrl-C to stop).")
def net_logs(directory: Path, node_name: str, lines: int, follow: bool) -> None:
    """Print the end of a node's log (<dir>/<node>/node.log)."""
    import time

    from cli.localnet.network import NetworkError, load_network

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
@json_flag("Print one JSON document: the nodes stopped.")
def net_down(directory: Path, as_json: bool) -> None:
    """Stop every node (SIGTERM: a clean shutdown; SIGKILL after 15 s)."""
    from cli.localnet.control import down

    stopped = down(directory, _progress(as_json))
    if as_json:
        click.echo(json.dumps({"network": str(directory), "stopped": stopped}, indent=2))
        return
    click.echo(f"stopped {len(stopped)} node(s)" if stopped else "no node was running")


@net.command("reset")
@NET_DIR_OPTION
@click.confirmation_option(prompt="Stop the network and delete its whole chain?")
def net_reset(directory: Path) -> None:
    """Stop the network and delete every node's chain data (configs, keys and genesis stay)."""
    from cli.localnet.control import reset

    reset(directory, click.echo)
    click.echo(f"reset {directory}: the next `net up` starts from genesis")
