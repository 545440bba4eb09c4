"""``net up`` / ``net status`` never take another network's node for their own (issue 18).

Two folders made with the INSECURE dev keys share chain id, genesis and node keys; the tests make
exactly that case (a copy of one folder) on ephemeral ports, with one real 1-validator network.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest

from cli.localnet import control, identity
from cli.localnet.network import NetworkError, init_network, load_network
from cli.localnet.process import CODE_ROOT, NodeProcess, module_command

pytestmark = pytest.mark.io  # starts processes and opens sockets (tests/io_guard.py)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        module_command("cli.main", *args), capture_output=True, text=True, timeout=120, cwd=CODE_ROOT
    )


def _alive(pid: int) -> bool:
    try:
        return b"run" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


@pytest.fixture
def nets(tmp_path: Path) -> Iterator[list[Path]]:
    """Folders made by the test; every node of each is stopped afterwards."""
    made: list[Path] = []
    yield made
    for directory in made:
        if (directory / "network.json").exists():
            control.down(directory, lambda line: None)


def _net(tmp_path: Path, nets: list[Path], name: str, validators: int = 1) -> Path:
    directory = tmp_path / name
    init_network(directory, validators=validators, base_port=0)
    nets.append(directory)
    return directory


def test_port_in_use_refuses_with_exit_2_and_starts_nothing(tmp_path: Path, nets: list[Path]) -> None:
    directory = _net(tmp_path, nets, "a")
    node = load_network(directory)["nodes"][0]
    port = identity.port_of(node["rpc"])
    with socket.socket() as held:
        held.bind(("127.0.0.1", port))
        held.listen()
        result = _cli("net", "up", "--dir", str(directory), "--json")
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: port_in_use: ")
    assert str(port) in line and "node0" in line
    assert not (directory / "node0" / "process.out").exists()  # no node was started
    assert control.status(directory)[0]["state"] == "down"


def test_copy_of_a_running_folder_is_not_taken_for_it(tmp_path: Path, nets: list[Path]) -> None:
    a = _net(tmp_path, nets, "a")
    b = tmp_path / "b"
    shutil.copytree(a, b)  # same dev keys, genesis and ports
    nets.append(b)

    up = _cli("net", "up", "--dir", str(a), "--json")
    assert up.returncode == 0, up.stderr
    doc = json.loads(up.stdout)
    (row,) = doc["nodes"]
    assert row["state"] == "up" and row["height"] >= 1 and row["chain_id"] == "clearchain-dev"
    status_doc = NodeProcess(a, load_network(a)["nodes"][0]).status()
    assert status_doc is not None and status_doc["genesis_hash"] == identity.genesis_hash(a)

    (other,) = json.loads(_cli("net", "status", "--dir", str(b), "--json").stdout)
    assert other["state"] == "wrong_network"
    assert other["height"] is None and other["chain_id"] is None and other["pid"] is None
    text = _cli("net", "status", "--dir", str(b))
    assert "wrong_network: node0" in text.stdout

    refused = _cli("net", "up", "--dir", str(b))
    assert refused.returncode == 2
    assert refused.stderr.startswith("error: port_in_use: ")
    assert "network up" not in refused.stdout

    down = _cli("net", "down", "--dir", str(a), "--json")
    assert down.returncode == 0, down.stderr
    (stopped,) = json.loads(down.stdout)["stopped"]
    assert stopped["node"] == "node0" and not _alive(stopped["pid"])


def test_a_node_that_dies_fails_up_and_stops_the_others(tmp_path: Path, nets: list[Path]) -> None:
    directory = _net(tmp_path, nets, "a", validators=2)
    (directory / "node1" / "config.toml").write_text("this is not toml [\n")
    result = _cli("net", "up", "--dir", str(directory), "--timeout", "60")
    assert result.returncode == 1
    assert result.stderr.startswith("error: node_failed: node1 exited")
    assert "network up" not in result.stdout
    started = [
        int(line.split("pid ")[1].split(")")[0]) for line in result.stdout.splitlines() if "started" in line
    ]
    assert len(started) == 2
    assert not any(_alive(pid) for pid in started)
    assert control.status(directory)[0]["pid"] is None


class _OtherChain(BaseHTTPRequestHandler):
    """An API that answers /status as some other chain's node."""

    doc: dict[str, Any] = {}

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = json.dumps(self.doc).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.mark.parametrize("field", ["chain_id", "genesis_hash", "node_key"])
def test_up_waits_for_this_networks_node_not_any_answer(tmp_path: Path, nets: list[Path], field: str) -> None:
    directory = _net(tmp_path, nets, "a")
    network = load_network(directory)
    node = network["nodes"][0]
    expected = identity.genesis_hash(directory)
    doc = {
        "chain_id": network["chain_id"],
        "genesis_hash": expected,
        "node_key": node["node_key"],
        "height": 5,
    }
    doc[field] = "ab" * 32
    handler = type("Handler", (_OtherChain,), {"doc": doc})
    server = HTTPServer(("127.0.0.1", identity.port_of(node["rpc"])), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with pytest.raises(NetworkError) as info:
            control._wait_up(directory, network, [NodeProcess(directory, node)], expected, 30)
    finally:
        server.shutdown()
        server.server_close()
    assert info.value.code == "wrong_network"
    assert "node0" in info.value.message


def test_a_matching_status_from_a_foreign_process_is_still_wrong(tmp_path: Path, nets: list[Path]) -> None:
    """Same chain, genesis and node key (a dev-key copy), but the listener is not this home's node."""
    directory = _net(tmp_path, nets, "a")
    network = load_network(directory)
    node = network["nodes"][0]
    expected = identity.genesis_hash(directory)
    doc = {"chain_id": network["chain_id"], "genesis_hash": expected, "node_key": node["node_key"]}
    with socket.socket() as held:
        held.bind(("127.0.0.1", identity.port_of(node["rpc"])))
        held.listen()
        assert identity.listener_pid(identity.port_of(node["rpc"])) == os.getpid()
        why = identity.mismatch(doc, node, directory / "node0", network["chain_id"], expected, None)
    assert why is not None and str(os.getpid()) in why
    assert identity.mismatch(doc, node, directory / "node0", network["chain_id"], expected, None) is None
