"""Local networks in one folder: ``clearchain net init``.

Layout (../shared/DESIGN.md, "Storage layout"):

    <dir>/genesis.json       the network's genesis
    <dir>/network.json       every node: name, role, home, p2p and rpc addresses, node key
    <dir>/node0 .. nodeN-1/  validator homes: config.toml, node_key (the validator key)
    <dir>/observer0 ..       observer homes (replicate and verify, never vote)
    <dir>/keys/              the participants' key files

Validators dial every other validator; observers dial every validator, and every validator's
allow-list names the observers' keys. With dev keys (the default) every key derives from a
public seed and the network is INSECURE by construction; with ``--fresh-keys`` every validator,
observer and participant key is new and random, the chain id gets a random suffix, and the
secrets exist only in the node homes and ``keys/``.
"""

from __future__ import annotations

import json
import random
import secrets
import shutil
import socket
from pathlib import Path
from typing import Any

from chain.errors import ClearchainError
from chain.keys import KeyPair, write_key_file
from cli.localnet import devnet
from node.config import ConsensusSection, NodeConfig, NodeSection, P2PSection, RPCSection, render
from node.runtime import NODE_KEY_FILE

NETWORK_FILE = "network.json"


class NetworkError(ClearchainError):
    """A network folder that cannot be made or read."""


EPHEMERAL_RANGE_FILE = Path("/proc/sys/net/ipv4/ip_local_port_range")
PORT_POOL_LOW = 10_000


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free right now, chosen below the kernel's ephemeral range.

    A port found by binding to port 0 comes from the ephemeral range, and between our closing it
    and the node binding it, any outgoing connection (a node dialing a peer, the fault harness's
    proxy) may be given it as its local port: a node then failed to start with "address already
    in use". Ports below that range are never handed out implicitly."""
    low, high = PORT_POOL_LOW, _ephemeral_low() - 1
    rng = random.SystemRandom()
    sockets: list[socket.socket] = []
    ports: list[int] = []
    try:
        for _ in range(count * 50):
            if len(ports) == count:
                break
            port = rng.randrange(low, high + 1) if high - low > 4 * count else 0
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                s.close()
                continue
            sockets.append(s)
            if s.getsockname()[1] not in ports:
                ports.append(s.getsockname()[1])
    finally:
        for s in sockets:
            s.close()
    if len(ports) < count:
        raise NetworkError("no_free_ports", f"found {len(ports)} of {count} free ports on 127.0.0.1")
    return ports


def _ephemeral_low() -> int:
    try:
        return int(EPHEMERAL_RANGE_FILE.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; elsewhere a collision stays as unlikely as before


def init_network(
    directory: Path,
    validators: int = 4,
    observers: int = 0,
    base_port: int = 26600,
    force: bool = False,
    consensus: ConsensusSection | None = None,
    fresh_keys: bool = False,
    chain_id: str | None = None,
    account_history: bool = True,
) -> dict[str, Any]:
    """Write a local network under ``directory``; returns what network.json holds."""
    if directory.exists() and any(directory.iterdir()):
        if not force:
            raise NetworkError("network_exists", f"{directory} is not empty (use --force to replace it)")
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    count = validators + observers
    ports = free_ports(2 * count) if base_port == 0 else list(range(base_port, base_port + 2 * count))
    if ports[-1] > 65535:
        raise NetworkError("bad_port", f"ports {ports[0]}..{ports[-1]} run past 65535")
    if fresh_keys:
        named = devnet.fresh_keys(validators)
        chain_id = chain_id or f"clearchain-local-{secrets.token_hex(4)}"
        doc = devnet.genesis_doc(named, validators, chain_id, dev=False)
        observer_key = lambda j: KeyPair.generate()  # noqa: E731
    else:
        named = {f"validator-{i}": devnet.validator_key(i) for i in range(validators)}
        named.update({n: KeyPair.dev(n) for _, _, names in devnet.PARTICIPANTS.values() for n in names})
        doc = devnet.dev_genesis_doc(validators, chain_id or devnet.CHAIN_ID)
        observer_key = lambda j: KeyPair.dev(f"observer-{j}")  # noqa: E731
    (directory / "genesis.json").write_text(json.dumps(doc, indent=2) + "\n")
    keys = [named[f"validator-{i}"] for i in range(validators)] + [observer_key(j) for j in range(observers)]
    names = [f"node{i}" for i in range(validators)] + [f"observer{j}" for j in range(observers)]
    p2p = [f"127.0.0.1:{ports[2 * i]}" for i in range(count)]
    rpc = [f"127.0.0.1:{ports[2 * i + 1]}" for i in range(count)]
    observer_keys = [k.key_id for k in keys[validators:]]
    nodes = []
    for i, (name, key) in enumerate(zip(names, keys, strict=True)):
        role = "validator" if i < validators else "observer"
        home = directory / name
        home.mkdir()
        write_key_file(home / NODE_KEY_FILE, key)
        cfg = NodeConfig(
            node=NodeSection(moniker=name, role=role, genesis="../genesis.json"),
            p2p=P2PSection(
                listen=p2p[i],
                peers=[p2p[j] for j in range(validators) if j != i],
                observers=observer_keys if role == "validator" else [],
            ),
            rpc=RPCSection(listen=rpc[i], account_history=account_history),
            consensus=consensus or ConsensusSection(),
        )
        (home / "config.toml").write_text(render(cfg))
        nodes.append(
            {"name": name, "role": role, "home": name, "p2p": p2p[i], "rpc": rpc[i], "node_key": key.key_id}
        )
    keydir = directory / "keys"
    keydir.mkdir()
    for _, _, key_names in devnet.participants(validators).values():
        for key_name in key_names:
            write_key_file(keydir / (key_name.replace("/", ".") + ".key"), named[key_name])
    network = {"chain_id": doc["chain_id"], "insecure_dev_keys": not fresh_keys, "nodes": nodes}
    (directory / NETWORK_FILE).write_text(json.dumps(network, indent=2) + "\n")
    return network


def load_network(directory: Path) -> dict[str, Any]:
    try:
        return json.loads((directory / NETWORK_FILE).read_text())  # type: ignore[no-any-return]
    except FileNotFoundError as exc:
        raise NetworkError(
            "network_missing", f"no {NETWORK_FILE} in {directory}; run `clearchain net init`"
        ) from exc
