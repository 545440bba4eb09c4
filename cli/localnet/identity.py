"""Is the process on a node's ports this folder's node? Free-port checks before ``net up`` and an
identity check of whatever answers on a node's API.

Two folders made with the INSECURE dev keys share chain id, genesis and node keys, so the status
document alone cannot tell their nodes apart: the identity check also asks the kernel which
process listens on the API port (Linux ``/proc/net/tcp`` and ``/proc/<pid>/fd``) and requires its
``--home`` to be this folder's node home. Where that cannot be read (another OS, another user's
process), the chain id, genesis hash and node key still must match.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from chain.audit import Auditor
from chain.genesis import load_genesis
from contracts import default_registry

LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp


def genesis_hash(directory: Path) -> str:
    """The hash of the height-0 block this folder's genesis.json makes (what a node reports)."""
    return Auditor(load_genesis(directory / "genesis.json"), default_registry()).genesis_hash.hex()


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a node could bind ``host:port`` now (SO_REUSEADDR, as the node's servers use, so a
    closed socket in TIME_WAIT does not count as held)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _listen_inodes(port: int) -> set[str]:
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(fields[9])
    return inodes


def listener_pid(port: int, hint: int | None = None) -> int | None:
    """The pid of a process listening on TCP ``port``, None if none can be seen. ``hint`` (the pid
    we expect) is looked at first, so the common case reads one process's descriptors."""
    targets = {f"socket:[{inode}]" for inode in _listen_inodes(port)}
    if not targets:
        return None
    pids = [str(hint)] if hint is not None else []
    try:
        pids += [p for p in os.listdir("/proc") if p.isdigit() and p != str(hint)]
    except OSError:
        return None
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") in targets:
                    return int(pid)
            except OSError:
                continue
    return None


def runs_home(pid: int, home: Path) -> bool | None:
    """Whether process ``pid`` is ``clearchain node run --home HOME`` (``--home`` resolved against
    its working folder); None if its command line cannot be read."""
    try:
        args = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")]
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    if "run" not in args or "--home" not in args[:-1]:
        return False
    given = Path(args[args.index("--home") + 1])
    return (cwd / given).resolve() == home.resolve()


def mismatch(
    doc: dict[str, Any], node: dict[str, Any], home: Path, chain_id: str, genesis: str, pid: int | None
) -> str | None:
    """Why the node answering with status ``doc`` is not ``node`` of this folder, None if it is."""
    if doc.get("chain_id") != chain_id:
        return f"answers for chain {doc.get('chain_id')!r}, this network is {chain_id!r}"
    if doc.get("genesis_hash") not in (None, genesis):
        return f"answers with genesis {str(doc['genesis_hash'])[:16]}..., this network's is {genesis[:16]}..."
    if doc.get("node_key") != node["node_key"]:
        return f"answers with node key {str(doc.get('node_key'))[:16]}..., {node['name']}'s is {node['node_key'][:16]}..."
    owner = listener_pid(port_of(node["rpc"]), pid)
    if owner is not None and runs_home(owner, home) is False:
        return f"its API port is held by pid {owner}, which is not this folder's {node['name']} ({home})"
    return None


def holder(port: int) -> str:
    """`` (pid N)`` naming the process that holds ``port``, or nothing if it cannot be seen."""
    pid = listener_pid(port)
    return "" if pid is None else f" (pid {pid})"
