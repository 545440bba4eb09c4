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
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return None
    home = str(directory / node["home"]).encode()
    return pid if home in cmdline and b"run" in cmdline else None


def up(directory: Path, echo: Any, timeout: float = UP_TIMEOUT_S) -> list[NodeProcess]:
    network = load_network(directory)
    pids = _pids(directory)
    procs = []
    for node in network["nodes"]:
        proc = NodeProcess(directory, node)
        procs.append(proc)
        pid = running_pid(directory, node)
        if pid is not None:
            echo(f"  {node['name']:<10} already running (pid {pid})")
            continue
        proc.start()
        assert proc.proc is not None
        pids[node["name"]] = proc.proc.pid
        echo(f"  {node['name']:<10} started (pid {proc.proc.pid}), api {proc.rpc}")
    _write_pids(directory, pids)
    deadline = time.monotonic() + timeout
    while True:
        for proc in procs:
            if proc.proc is not None and proc.proc.poll() is not None:
                raise NetworkError(
                    "node_failed",
                    f"{proc.name} exited with status {proc.proc.returncode}:\n{proc.log_tail(15)}",
                )
        heights = [p.height() for p in procs]
        if min(heights) >= 1:
            return procs
        if time.monotonic() > deadline:
            slow = [p.name for p, h in zip(procs, heights, strict=True) if h < 1]
            raise NetworkError(
                "network_not_ready",
                f"no block after {timeout:.0f} s on {', '.join(slow)}; see their node.log",
            )
        time.sleep(0.2)


def down(directory: Path, echo: Any, timeout: float = DOWN_TIMEOUT_S) -> int:
    """Stop every running node; returns how many were running."""
    network = load_network(directory)
    running = [(n, pid) for n in network["nodes"] if (pid := running_pid(directory, n)) is not None]
    for node, pid in running:
        os.kill(pid, signal.SIGTERM)
        echo(f"  {node['name']:<10} SIGTERM (pid {pid})")
    deadline = time.monotonic() + timeout
    for node, pid in running:
        while running_pid(directory, node) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        if running_pid(directory, node) is not None:
            os.killpg(pid, signal.SIGKILL)
            echo(f"  {node['name']:<10} did not stop in {timeout:.0f} s: SIGKILL")
    (directory / PIDS_FILE).unlink(missing_ok=True)
    return len(running)


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
    rows = []
    now_ms = time.time_ns() // 1_000_000
    for node in load_network(directory)["nodes"]:
        proc = NodeProcess(directory, node)
        s = proc.status()
        rows.append({
            "node": node["name"], "role": node["role"], "pid": running_pid(directory, node), "api": proc.rpc,
            "height": None if s is None else s["height"],
            "peers": None if s is None else len(s["peers"]),
            "last_block_age_ms": None if s is None else max(0, now_ms - s["head_time_ms"]),
            "mempool_txs": None if s is None else s["mempool"]["txs"],
            "round": None if s is None else s["consensus"]["round"],
        })  # fmt: skip
    return rows
