"""A node submits the double votes it holds as ``bonds.submit_evidence`` transactions.

Unit level: the transaction the node would build for a ``DoubleVote`` (signed by the node key as
its own validator participant, nonce after the committed and pending ones) commits and slashes
the validator's bond. Node level: a real node in this process submits evidence that was already
in its pool when it started, and evidence it learns while running, and its transactions commit.
A byzantine validator that produces the double votes itself is tests/test_byzantine.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from chain.certificate import PRECOMMIT, PREVOTE, vote_sign_bytes
from chain.encoding import H
from chain.genesis import Genesis
from chain.keys import KeyPair
from chain.store import Store
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.network import init_network
from contracts import bonds
from node.evidence import DoubleVote, EvidencePool, evidence_tx, is_recorded, next_nonce, own_participant
from node.messages import Vote
from tests.conftest import Chain
from tests.netutil import NodeThread, TxMaker
from tests.test_cli import FAST


def signed_vote(key: KeyPair, height: int, round_: int, vote_type: int, label: str) -> Vote:
    block_hash = H(b"leaf", label.encode())
    sig = key.sign(vote_sign_bytes(devnet.CHAIN_ID, vote_type, height, round_, block_hash))
    return Vote(vote_type, height, round_, block_hash, key.public, sig)


def double_vote(key: KeyPair, height: int, vote_type: int = PRECOMMIT) -> DoubleVote:
    return DoubleVote(
        signed_vote(key, height, 0, vote_type, f"a{height}"),
        signed_vote(key, height, 0, vote_type, f"b{height}"),
    )


def test_the_tx_a_node_would_submit_commits_and_slashes(genesis: Genesis) -> None:
    chain = Chain(Store.in_memory(), genesis)
    key = devnet.validator_key(1)
    chain.run(chain.tx("validator-1", "bonds", "post", ["V1-HOUSE", "USD", 100_000_00, None]))
    item = double_vote(key, 1)
    assert item.verify(devnet.CHAIN_ID)
    assert own_participant(chain.store, key.public) == "validator-1"
    assert own_participant(chain.store, KeyPair.dev("stranger").public) is None
    assert own_participant(chain.store, KeyPair.dev("admin/user").public) is None  # 2-of-3: not a node's
    assert not is_recorded(chain.store, item)
    nonce = next_nonce(chain.store, "validator-1", None)
    assert nonce == 2 and next_nonce(chain.store, "validator-1", 5) == 6
    stx = evidence_tx(devnet.CHAIN_ID, "validator-1", nonce, item, key)
    _, result = chain.run(stx)
    (receipt,) = result.receipts
    assert receipt.code == "ok", receipt.message
    slashed = [dict(f) for _, n, f in receipt.events if n == "bond_slashed"]
    assert [(s["participant"], s["amount"], s["reason"]) for s in slashed] == [
        ("validator-1", 10_000_00, "double_sign")
    ]
    assert is_recorded(chain.store, item)
    # Another node's copy of the same evidence fails in its receipt and changes nothing else.
    again = evidence_tx(
        devnet.CHAIN_ID, "validator-2", 1, DoubleVote(item.second, item.first), devnet.validator_key(2)
    )
    _, result = chain.run(again)
    assert result.receipts[0].code == "evidence_known"


def wait_for(condition: Any, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def findings(client: Client) -> list[dict[str, Any]]:
    return client.get("/contracts/bonds/findings", participant="validator-1")["result"]["findings"]  # type: ignore[no-any-return]


@pytest.mark.io
def test_a_node_submits_evidence_it_holds_and_evidence_it_learns(tmp_path: Path) -> None:
    # Two validators, the second with too little power to matter, so node0 alone commits and
    # reports the second's double votes (a node never reports itself).
    directory = tmp_path / "net"
    init_network(directory, validators=2, base_port=0, consensus=FAST)
    doc = json.loads((directory / "genesis.json").read_text())
    doc["validators"][1]["power"] = 1
    (directory / "genesis.json").write_text(json.dumps(doc))
    key = devnet.validator_key(1)
    old = double_vote(key, 1, PREVOTE)
    pool = EvidencePool(directory / "node0" / "evidence.log", devnet.CHAIN_ID)
    assert pool.add(old.first, old.second)  # held from before a restart, never submitted
    node = NodeThread(directory / "node0")
    node.start()
    try:
        client = Client(node.url)
        wait_for(lambda: len(findings(client)) == 1)
        (first,) = findings(client)
        assert first["reason"] == "double_sign" and first["slashed"] == 0  # no bond yet: recorded
        assert first["ref"] == bonds.evidence_ref(key.public, 1, 0, PREVOTE)

        maker = TxMaker()
        maker.nonces["validator-1"] = client.get("/participants/validator-1")["nonce"]
        stx = maker.tx("validator-1", "bonds", "post", ["V1-HOUSE", "USD", 100_000_00, None])
        reply = client.post("/txs", {"tx": stx.encode().hex()}, wait="commit", timeout_ms=30_000)
        assert reply["txs"][0]["receipt"]["ok"], reply

        new = double_vote(key, 2)
        assert node.node is not None
        assert node.on_loop(lambda: node.node.evidence_relay.new_evidence(new.first, new.second))  # type: ignore[union-attr]
        wait_for(lambda: len(findings(client)) == 2)
        second = findings(client)[1]
        assert second["slashed"] == 10_000_00 and second["ref"] == bonds.evidence_ref(
            key.public, 2, 0, PRECOMMIT
        )
        # The evidence is also served by the node as before.
        assert len(client.get("/evidence")["evidence"]) == 2
        # Its own double votes it leaves to the others.
        reports = client.get("/participants/validator-0")["nonce"]
        assert reports == 2  # one transaction per report above
        own = double_vote(devnet.validator_key(0), 3)
        assert node.on_loop(lambda: node.node.evidence_relay.new_evidence(own.first, own.second))  # type: ignore[union-attr]
        time.sleep(1.0)
        assert client.get("/participants/validator-0")["nonce"] == reports
        assert node.on_loop(lambda: len(node.node.mempool)) == 0  # type: ignore[union-attr]
    finally:
        node.stop()
