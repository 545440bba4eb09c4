"""End to end: an atomic cross-chain swap between two clearchain networks side by side.

Two single-validator networks, ``clearchain-east`` and ``clearchain-west``, each a real node
process on 127.0.0.1 (ephemeral ports). The dev participants and keys are the same on both; the
chain ids differ, and every transaction is bound to its chain id, so a transaction signed for one
is refused by the other (``wrong_chain``).

The deal: member-a's client account A-C001 sells 1,000 ACME, held on east, to member-b's B-C001
for USD 180,000.00, held on west. B, the buyer, makes the secret ``s`` and is the *secret
holder*, so B locks first and with the longer timeout:

1. B locks the USD on west for A-C001 under ``H = sha256(s)``, timeout ``T_west``.
2. A sees that lock on west (amount, recipient, ``H``, enough time left) and locks the ACME on
   east for B-C001 under the same ``H`` with a shorter timeout ``T_east``.
3. B sees A's lock and claims it on east with ``s``: B gets the ACME and ``s`` is now public.
4. A reads ``s`` from east (the escrow's record) and claims the USD on west before ``T_west``.

Then the timeout path: B locks, A locks, B walks away; each chain refunds its lock at its
timeout height by itself and every balance is back where it started.
"""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path
from typing import Any

import pytest

from cli.client import ApiError, Client
from cli.localnet.network import init_network
from cli.localnet.process import NodeProcess, wait_until
from cli.scenarios import ScenarioRun
from node.config import ConsensusSection

pytestmark = pytest.mark.io  # starts processes or opens sockets (tests/io_guard.py)

# Fast heartbeats, so that timeouts counted in blocks pass in seconds.
CONSENSUS = ConsensusSection(commit_wait_ms=10, heartbeat_ms=300)
ACME = 1_000
USD = 180_000_00  # 1,000 ACME at 180.00


def _run(node: NodeProcess, directory: Path) -> ScenarioRun:
    wait_until(lambda: node.height() >= 1, 60, f"{node.rpc} to commit its first block", [node])
    return ScenarioRun(Client(node.rpc), directory / "keys", directory, echo=lambda _: None)


def _balances(run: ScenarioRun, asset: str) -> dict[str, tuple[int, int]]:
    return {a: run.balance(a, asset) for a in ("A-C001", "B-C001")}


@pytest.mark.slow
def test_atomic_swap_and_timeout_between_two_chains(tmp_path: Path) -> None:
    nodes: list[NodeProcess] = []
    try:
        for name in ("east", "west"):
            net = init_network(
                tmp_path / name, validators=1, base_port=0, consensus=CONSENSUS, chain_id=f"clearchain-{name}"
            )
            nodes.append(NodeProcess(tmp_path / name, net["nodes"][0]))
            nodes[-1].start()
        east, west = (_run(n, tmp_path / name) for n, name in zip(nodes, ("east", "west"), strict=True))
        assert (east.chain_id, west.chain_id) == ("clearchain-east", "clearchain-west")
        _refuses_the_other_chains_txs(east, west)
        # A-C001 holds no ACME at genesis: the custodian takes some in on east first.
        east.send("custodian", "custody", "deposit", ["A-C001", "ACME", 2 * ACME, "e2e-acme-in"])
        _swap(east, west)
        _timeout(east, west)
    finally:
        for n in nodes:
            n.terminate(timeout=5)


def _refuses_the_other_chains_txs(east: ScenarioRun, west: ScenarioRun) -> None:
    for mine, other in ((east, west), (west, east)):
        stx = mine.sign("member-a", "escrow", "refund", ["NOPE"])
        with pytest.raises(ApiError) as exc:
            other.client.post("/txs", {"tx": stx.encode().hex()})
        assert exc.value.code == "wrong_chain", exc.value


def _swap(east: ScenarioRun, west: ScenarioRun) -> None:
    east0, west0 = _balances(east, "ACME"), _balances(west, "USD")
    secret = secrets.token_bytes(32)
    hashlock = hashlib.sha256(secret).digest()

    # 1. The secret holder (B) locks first, with the longer timeout.
    t_west = west.height + 200
    west.send("member-b", "escrow", "lock", ["SWAP-W", "B-C001", "A-C001", "USD", USD, hashlock, t_west])

    # 2. A checks B's lock on west, then locks on east under the same hash, with a shorter timeout.
    seen = west.view("escrow", "get", id="SWAP-W")
    assert (seen["to_account"], seen["asset"], seen["amount"], seen["status"]) == (
        "A-C001",
        "USD",
        USD,
        "locked",
    )
    assert seen["hashlock"] == hashlock.hex() and seen["timeout_height"] - west.height >= 150
    t_east = east.height + 100
    east.send(
        "member-a",
        "escrow",
        "lock",
        ["SWAP-E", "A-C001", "B-C001", "ACME", ACME, bytes.fromhex(seen["hashlock"]), t_east],
    )
    # Without the secret, A cannot take B's cash.
    west.fails("bad_preimage", "member-a", "escrow", "claim", ["SWAP-W", b"\x00" * 32])

    # 3. B checks A's lock on east and claims it, revealing the secret there.
    seen = east.view("escrow", "get", id="SWAP-E")
    assert (seen["to_account"], seen["asset"], seen["amount"], seen["hashlock"]) == (
        "B-C001",
        "ACME",
        ACME,
        hashlock.hex(),
    )
    events = east.send("member-b", "escrow", "claim", ["SWAP-E", secret])
    assert [n for _, n, _ in events] == ["escrow_claimed"]

    # 4. A reads the secret from east (by hash lock, as a watcher would) and claims on west.
    found = east.view("escrow", "by_hashlock", hashlock=hashlock.hex())["escrows"]
    assert [e["id"] for e in found] == ["SWAP-E"] and found[0]["status"] == "claimed"
    revealed = bytes.fromhex(found[0]["preimage"])
    assert revealed == secret
    west.send("member-a", "escrow", "claim", ["SWAP-W", revealed])

    east1, west1 = _balances(east, "ACME"), _balances(west, "USD")
    assert east1 == {"A-C001": (east0["A-C001"][0] - ACME, 0), "B-C001": (east0["B-C001"][0] + ACME, 0)}
    assert west1 == {"A-C001": (west0["A-C001"][0] + USD, 0), "B-C001": (west0["B-C001"][0] - USD, 0)}
    assert east.view("escrow", "get", id="SWAP-E")["status"] == "claimed"
    assert west.view("escrow", "get", id="SWAP-W")["status"] == "claimed"


def _timeout(east: ScenarioRun, west: ScenarioRun) -> None:
    east0, west0 = _balances(east, "ACME"), _balances(west, "USD")
    hashlock = hashlib.sha256(secrets.token_bytes(32)).digest()
    # A few blocks ahead of each head; if heartbeat blocks pass that height before the lock's
    # block, the chain refuses it (bad_timeout) and send_ahead locks again with more notice.
    _, t_west = west.send_ahead(
        "member-b",
        "escrow",
        "lock",
        lambda h: ["LATE-W", "B-C001", "A-C001", "USD", USD, hashlock, h],
        12,
        "bad_timeout",
    )
    _, t_east = east.send_ahead(
        "member-a",
        "escrow",
        "lock",
        lambda h: ["LATE-E", "A-C001", "B-C001", "ACME", ACME, hashlock, h],
        6,
        "bad_timeout",
    )
    assert _balances(east, "ACME")["A-C001"] == (east0["A-C001"][0] - ACME, ACME)
    assert _balances(west, "USD")["B-C001"] == (west0["B-C001"][0] - USD, USD)
    # B never claims. Each chain refunds its own lock at its own timeout height.
    for run, eid, timeout in ((east, "LATE-E", t_east), (west, "LATE-W", t_west)):
        run.wait_height(timeout)
        doc: dict[str, Any] = run.view("escrow", "get", id=eid)
        assert (doc["status"], doc["closed_height"], doc["preimage"]) == ("refunded", timeout, None)
        run.fails(
            "escrow_closed", "member-b" if run is east else "member-a", "escrow", "claim", [eid, b"\x00" * 32]
        )
    assert _balances(east, "ACME") == east0 and _balances(west, "USD") == west0
