"""``clearchain net up | status | logs | down | reset``: a local network's node processes.

``up`` starts every node of ``<dir>/network.json`` that is not already running as a detached
``clearchain node run`` process (its output in ``<home>/process.out``, its log in
``<home>/node.log``), records the pids in ``<dir>/pids.json`` and returns once every node answers
and the chain has committed a block. ``down`` sends SIGTERM (a clean shutdown) and waits, then
SIGKILL for any that hang. A pid counts as ours only while its command line still names the
node's home, so a stale pids.json never makes ``down`` signal some unrelated process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from pathlib import Path
from typing import Any

from cli.localnet import identity
from cli.localnet.network import NetworkError, load_network
from cli.localnet.process import NodeProcess

PIDS_FILE = "pids.json"
UP_TIMEOUT_S = 60.0
DOWN_TIMEOUT_S = 15.0
CHAIN_DATA = ("db", "wal", "index", "signer_state", "evidence.log", "node.log", "process.out", "node.json")


def _pids(directory: Path) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in json.loads((directory / PIDS_FILE).read_text()).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def _write_pids(directory: Path, pids: dict[str, int]) -> None:
    tmp = directory / (PIDS_FILE + ".tmp")
    tmp.write_text(json.dumps(pids, indent=2) + "\n")
    os.replace(tmp, directory / PIDS_FILE)


def running_pid(directory: Path, node: dict[str, Any]) -> int | None:
    """The pid of ``node``'s process if it is running (and is that node's, not a reused pid)."""
    pid = _pids(directory).get(node["name"])
    if pid is None:
        return None
    return pid if identity.runs_home(pid, directory / node["home"]) else None


def check_ports(directory: Path, network: dict[str, Any]) -> None:
    """Refuse (``port_in_use``) if a port of a node that is not running is held by anything."""
    for node in network["nodes"]:
        if running_pid(directory, node) is not None:
            continue
        for kind in ("p2p", "rpc"):
            port = identity.port_of(node[kind])
            if not identity.port_free(port):
                what = "API" if kind == "rpc" else "p2p"
                raise NetworkError(
                    "port_in_use",
                    f"{node['name']}'s {what} port {port} on 127.0.0.1 is in use{identity.holder(port)}: "
                    f"another network may be running (stop it, or `net init --force --base-port N`)",
                )


def up(directory: Path, echo: Any, timeout: float = UP_TIMEOUT_S) -> list[NodeProcess]:
    """Start the nodes that are not running and wait until every node answers as this folder's
    node and the chain has committed a block. On failure stop what this call started."""
    network = load_network(directory)
    expected = identity.genesis_hash(directory)
    check_ports(directory, network)
    pids = _pids(directory)
    procs: list[NodeProcess] = []
    started: list[NodeProcess] = []
    for node in network["nodes"]:
        proc = NodeProcess(directory, node)
        procs.append(proc)
        pid = running_pid(directory, node)
        if pid is not None:
            echo(f"  {node['name']:<10} already running (pid {pid})")
            continue
        proc.start()
        assert proc.proc is not None
        started.append(proc)
        pids[node["name"]] = proc.proc.pid
        echo(f"  {node['name']:<10} started (pid {proc.proc.pid}), api {proc.rpc}")
    _write_pids(directory, pids)
    try:
        _wait_up(directory, network, procs, expected, timeout)
    except NetworkError:
        for proc in started:
            proc.terminate()
        _write_pids(directory, {k: v for k, v in pids.items() if k not in {p.name for p in started}})
        raise
    return procs


def _wait_up(
    directory: Path, network: dict[str, Any], procs: list[NodeProcess], expected: str, timeout: float
) -> None:
    nodes = {n["name"]: n for n in network["nodes"]}
    deadline = time.monotonic() + timeout
    while True:
        heights = []
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is not None:
                raise NetworkError(
                    "node_failed",
                    f"{proc.name} exited with status {proc.proc.returncode}:\n{proc.log_tail(15)}",
                )
            doc = proc.status()
            if doc is not None:
                pid = proc.proc.pid if proc.proc is not None else running_pid(directory, nodes[proc.name])
                why = identity.mismatch(doc, nodes[proc.name], proc.home, network["chain_id"], expected, pid)
                if why is not None:
                    raise NetworkError(
                        "wrong_network", f"{proc.name} at {proc.rpc} {why}:\n{proc.log_tail(15)}"
                    )
            heights.append(-1 if doc is None else int(doc["height"]))
        if min(heights) >= 1:
            return
        if time.monotonic() > deadline:
            slow = [p.name for p, h in zip(procs, heights, strict=True) if h < 1]
            raise NetworkError(
                "network_not_ready",
                f"no block after {timeout:.0f} s on {', '.join(slow)}; see their node.log",
            )
        time.sleep(0.2)


def down(directory: Path, echo: Any, timeout: float = DOWN_TIMEOUT_S) -> list[dict[str, Any]]:
    """Stop every running node; returns one record per node that was running."""
    network = load_network(directory)
    running = [(n, pid) for n in network["nodes"] if (pid := running_pid(directory, n)) is not None]
    for node, pid in running:
        os.kill(pid, signal.SIGTERM)
        echo(f"  {node['name']:<10} SIGTERM (pid {pid})")
    deadline = time.monotonic() + timeout
    stopped = []
    for node, pid in running:
        while running_pid(directory, node) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = running_pid(directory, node) is not None
        if killed:
            os.killpg(pid, signal.SIGKILL)
            echo(f"  {node['name']:<10} did not stop in {timeout:.0f} s: SIGKILL")
        stopped.append({"node": node["name"], "pid": pid, "killed": killed})
    (directory / PIDS_FILE).unlink(missing_ok=True)
    return stopped


def reset(directory: Path, echo: Any) -> None:
    """Stop the network and delete its chain data; configs, keys and genesis stay."""
    down(directory, echo)
    for node in load_network(directory)["nodes"]:
        home = directory / node["home"]
        for name in CHAIN_DATA:
            path = home / name
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def status(directory: Path) -> list[dict[str, Any]]:
    """One row per node. ``state`` is ``up``, ``down`` (nothing answers) or ``wrong_network``
    (something answers on its API that is not this folder's node: ``problem`` says why, and none
    of its numbers are shown as this network's)."""
    network = load_network(directory)
    expected = identity.genesis_hash(directory)
    rows = []
    now_ms = time.time_ns() // 1_000_000
    for node in network["nodes"]:
        proc = NodeProcess(directory, node)
        pid = running_pid(directory, node)
        s = proc.status()
        why = None if s is None else identity.mismatch(s, node, proc.home, network["chain_id"], expected, pid)
        if why is not None:
            s = None
        rows.append({
            "node": node["name"], "role": node["role"], "pid": pid, "api": proc.rpc,
            "state": "wrong_network" if why is not None else "down" if s is None else "up",
            "problem": why,
            "chain_id": None if s is None else s["chain_id"],
            "height": None if s is None else s["height"],
            "peers": None if s is None else len(s["peers"]),
            "last_block_age_ms": None if s is None else max(0, now_ms - s["head_time_ms"]),
            "mempool_txs": None if s is None else s["mempool"]["txs"],
            "round": None if s is None else s["consensus"]["round"],
        })  # fmt: skip
    return rows
