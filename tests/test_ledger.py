"""Block validation, commit certificates, and determinism across independent executors."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.block import Block
from chain.certificate import CommitCertificate, sign_certificate
from chain.errors import InvalidBlock
from chain.keys import KeyPair
from chain.ledger import Ledger
from chain.store import Store
from chain.tx import compute_tx_root
from chain.validation import validate_certificate
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry
from tests.conftest import Chain

VALIDATORS = [devnet.validator_key(i) for i in range(4)]


def _trade(chain: Chain, i: int, qty: int = 10):  # type: ignore[no-untyped-def]
    return chain.tx(
        "xchg-alpha", "settlement", "settle", [f"T-{i}", "A-C001", "B-C001", "ACME", qty, 180_00, DAY]
    )


def _replica(chain: Chain) -> Ledger:
    return Ledger(Store.in_memory(), chain.genesis, default_registry())


def _blocks(chain: Chain) -> list[tuple[Block, CommitCertificate]]:
    pairs = []
    for i in range(1, chain.ledger.head.height + 1):
        block, cert = chain.store.block(i), chain.store.certificate(i)
        assert block is not None and cert is not None
        pairs.append((block, cert))
    return pairs


def test_replica_replays_to_the_same_state(chain: Chain) -> None:
    for i in range(5):
        chain.run(
            _trade(chain, i), chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 100 + i, f"w{i}"])
        )
    replica = _replica(chain)
    for block, cert in _blocks(chain):
        replica.apply_committed(block, cert)
    assert replica.head == chain.ledger.head
    assert replica.tree.root == chain.ledger.tree.root


@pytest.mark.parametrize(
    "field, value, code",
    [
        ("height", 5, "header_height"),
        ("chain_id", "other", "header_chain_id"),
        ("prev_block_hash", b"\x01" * 32, "header_prev_hash"),
        ("time_ms", 0, "header_time"),
        ("validators_hash", b"\x02" * 32, "header_validators"),
        ("proposer", b"\x03" * 32, "header_proposer"),
        ("last_commit_hash", b"\x04" * 32, "header_last_commit"),
        ("tx_root", b"\x05" * 32, "tx_root_mismatch"),
        ("receipts_root", b"\x06" * 32, "receipts_root_mismatch"),
        ("state_root", b"\x07" * 32, "state_root_mismatch"),
        ("next_validators_hash", b"\x08" * 32, "header_next_validators"),
    ],
)
def test_each_tampered_header_field_is_named(chain: Chain, field: str, value: Any, code: str) -> None:
    chain.run(_trade(chain, 0))
    chain.run(_trade(chain, 1))
    replica = _replica(chain)
    (b1, c1), (b2, c2) = _blocks(chain)
    replica.apply_committed(b1, c1)
    bad = Block(dataclasses.replace(b2.header, **{field: value}), b2.txs, b2.last_commit)
    with pytest.raises(InvalidBlock) as err:
        replica.validate(bad)
    assert err.value.code == code
    assert "height 2" in err.value.message
    if code.endswith("_mismatch"):
        assert field in err.value.message and value.hex() in err.value.message
    # Nothing was written: the good block still applies.
    replica.apply_committed(b2, c2)
    assert replica.head == chain.ledger.head


def test_reordered_or_dropped_txs_are_detected(chain: Chain) -> None:
    chain.run(_trade(chain, 0), _trade(chain, 1))
    ((b1, c1),) = _blocks(chain)
    replica = _replica(chain)
    reordered = tuple(reversed(b1.txs))
    with pytest.raises(InvalidBlock) as err:
        replica.validate(Block(b1.header, reordered, None))
    assert err.value.code == "tx_root_mismatch"  # found before executing anything
    with pytest.raises(InvalidBlock) as err:
        replica.validate(Block(b1.header, b1.txs[:1], None))
    assert err.value.code == "tx_root_mismatch"
    # A header that commits to the reordered txs: execution finds the nonces out of order.
    header = dataclasses.replace(b1.header, tx_root=compute_tx_root(reordered))
    with pytest.raises(InvalidBlock) as err:
        replica.validate(Block(header, reordered, None))
    assert err.value.code == "invalid_tx"


def test_certificates(chain: Chain) -> None:
    block, _ = chain.run(_trade(chain, 0))
    vset = chain.ledger.head_validators
    cid = chain.genesis.chain_id
    good = sign_certificate(cid, 1, 0, block.hash(), VALIDATORS[:3])
    validate_certificate(good, cid, vset, 1, block.hash())
    cases = [
        (sign_certificate(cid, 1, 0, block.hash(), VALIDATORS[:2]), "certificate_quorum"),
        (
            sign_certificate(cid, 1, 0, block.hash(), VALIDATORS[:2] + [KeyPair.dev("mallory")]),
            "certificate_signer",
        ),
        (sign_certificate("other", 1, 0, block.hash(), VALIDATORS), "certificate_signature"),
        (sign_certificate(cid, 1, 0, b"\x09" * 32, VALIDATORS), "certificate_block"),
        (sign_certificate(cid, 2, 0, block.hash(), VALIDATORS), "certificate_height"),
        (CommitCertificate(1, 0, block.hash(), tuple(reversed(good.signatures))), "certificate_order"),
        (CommitCertificate(1, 0, block.hash(), good.signatures[:1] * 3), "certificate_order"),
        (
            CommitCertificate(1, 1, block.hash(), good.signatures),
            "certificate_signature",
        ),  # signed for round 0
    ]
    for cert, code in cases:
        with pytest.raises(InvalidBlock) as err:
            validate_certificate(cert, cid, vset, 1, block.hash())
        assert err.value.code == code, cert


def test_commit_refuses_a_block_without_quorum(chain: Chain) -> None:
    replica = _replica(chain)
    block, result = replica.propose(chain.genesis.genesis_time_ms + 1, [], VALIDATORS[0].public, None)
    weak = sign_certificate(chain.genesis.chain_id, 1, 0, block.hash(), VALIDATORS[:2])
    with pytest.raises(InvalidBlock):
        replica.commit(block, weak, result)
    assert replica.head.height == 0 and replica.store.block(1) is None


def test_last_commit_must_certify_the_parent(chain: Chain) -> None:
    chain.run()
    chain.run()
    (b1, c1), (b2, c2) = _blocks(chain)
    replica = _replica(chain)
    replica.apply_committed(b1, c1)
    forged = sign_certificate(chain.genesis.chain_id, 1, 0, b1.hash(), VALIDATORS[:2])
    header = dataclasses.replace(b2.header, last_commit_hash=forged.hash())
    with pytest.raises(InvalidBlock) as err:
        replica.validate(Block(header, b2.txs, forged))
    assert err.value.code == "certificate_quorum"


@given(
    st.lists(
        st.tuples(st.integers(0, 3), st.integers(-5, 3000), st.integers(1, 500_00)), min_size=1, max_size=12
    ),
    st.integers(1, 4),
)
def test_two_executors_same_blocks_same_roots(trades: list[tuple[int, int, int]], per_block: int) -> None:
    from chain.genesis import parse_genesis

    genesis = parse_genesis(devnet.dev_genesis_doc())
    a = Chain(Store.in_memory(), genesis)
    accounts = ["A-C001", "B-C001", "A-HOUSE", "B-HOUSE"]
    txs = [
        a.tx(
            "xchg-alpha",
            "settlement",
            "settle",
            [f"T{i}", accounts[b], accounts[(b + 1) % 4], "ACME", q, p, DAY],
        )
        for i, (b, q, p) in enumerate(trades)
    ]
    for i in range(0, len(txs), per_block):
        a.run(*txs[i : i + per_block])
    b = Ledger(Store.in_memory(), genesis, default_registry())
    for block, cert in _blocks(a):
        b.apply_committed(block, cert)
    assert b.head.hash() == a.ledger.head.hash()
    assert b.tree.root == a.ledger.head.state_root
