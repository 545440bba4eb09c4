"""Protocol test vectors: recompute, from docs/PROTOCOL.md's rules alone (hashlib, msgpack and
libsodium, no clearchain code), the hashes and roots of the shipped genesis and of a block of
trades, and check them against the implementation. A third party's verifier can do the same."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import msgpack
from nacl.bindings import crypto_sign_open

from chain.genesis import DEFAULT_CONSENSUS
from cli.localnet.devnet import GENESIS_DAY as DAY
from tests.conftest import Chain


def h(tag: bytes, data: bytes) -> bytes:
    return hashlib.sha256(bytes([len(tag)]) + tag + data).digest()


def pack(value: object) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


def list_root(items: list[bytes]) -> bytes:
    if not items:
        return b"\x00" * 32

    def root(hs: list[bytes]) -> bytes:
        if len(hs) == 1:
            return hs[0]
        k = 1 << ((len(hs) - 1).bit_length() - 1)
        return h(b"list_node", root(hs[:k]) + root(hs[k:]))

    return root([h(b"list_leaf", x) for x in items])


def test_block_of_trades_recomputed_from_the_spec(chain: Chain) -> None:
    chain.run()
    txs = [
        chain.tx("xchg-alpha", "settlement", "settle", ["V-1", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]),
        chain.tx("xchg-alpha", "settlement", "settle", ["V-2", "A-C001", "B-C001", "ACME", 10**9, 1, DAY]),
        chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 5, "vec-1"]),
        chain.tx("member-b", "custody", "request_withdrawal", ["B-C002", "USD", 1]),  # 2 of 3 keys
    ]
    chain.run(*txs)
    raw = chain.store.block_bytes(2)
    header, wire_txs, last_commit = msgpack.unpackb(raw, raw=False)
    (cid, height, time_ms, prev, tx_root, receipts_root, state_root, vhash, next_vhash, proposer, lch) = (
        header
    )

    # Hash link and block hash
    assert prev == h(b"block", pack(msgpack.unpackb(chain.store.block_bytes(1), raw=False)[0]))
    assert h(b"block", pack(header)) == chain.ledger.head.hash()
    # Transactions: tx hash (the body only), signatures over it, and the tx root over each
    # whole signed tx, [body, signatures], so that the block hash commits to the signatures
    for (body, sigs), stx in zip(wire_txs, txs, strict=True):
        digest = h(b"tx", pack(body))
        assert digest == stx.hash
        for pub, sig in sigs:
            crypto_sign_open(sig + digest, pub)  # raises if invalid
    assert [len(sigs) for _, sigs in wire_txs] == [1, 1, 1, 2]
    assert tx_root == list_root([pack([body, sigs]) for body, sigs in wire_txs])
    assert tx_root != list_root([h(b"tx", pack(body)) for body, _ in wire_txs])  # the old rule
    # Receipts root over the stored receipts
    receipts = msgpack.unpackb(chain.store.backend.get(b"rcpt/" + (2).to_bytes(8, "big")), raw=False)
    assert receipts_root == list_root([pack(r) for r in receipts])
    assert [r[2] for r in receipts] == ["ok", "insufficient_securities", "ok", "ok"]
    # Validators hash from the genesis document's validators
    vals = sorted((bytes.fromhex(v.pubkey.hex()), v.power) for v in chain.genesis.validators.validators)
    assert vhash == next_vhash == h(b"validators", pack([list(v) for v in vals]))
    # last_commit: certificate of block 1, quorum of precommits
    c_height, c_round, c_hash, c_sigs = last_commit
    assert lch == h(b"commit", pack(last_commit)) and c_height == 1
    sign_bytes = h(b"vote", pack([cid, 2, c_height, c_round, c_hash]))
    power = {k: p for k, p in vals}
    signed = 0
    for pub, sig in c_sigs:
        crypto_sign_open(sig + sign_bytes, pub)
        signed += power[pub]
    assert 3 * signed > 2 * sum(power.values())


def test_genesis_header_from_the_spec(chain: Chain) -> None:
    header = msgpack.unpackb(chain.store.block_bytes(0), raw=False)[0]
    assert header[1] == 0 and header[3] == b"\x00" * 32 and header[4] == header[5] == b"\x00" * 32
    assert header[9] == header[10] == b"\x00" * 32
    assert h(b"block", pack(header)) == chain.store.genesis_hash()


def test_the_spec_gives_the_genesis_consensus_defaults() -> None:
    """PROTOCOL section 11's table of consensus parameters is the code's (chain/genesis.py)."""
    text = (Path(__file__).parent.parent / "docs" / "PROTOCOL.md").read_text()
    section = text.split("## 11. Genesis state", 1)[1].split("\n## 12.", 1)[0]
    table = dict(re.findall(r"^\| `(\w+)` \| (\d+) \|", section, re.MULTILINE))
    assert {k: int(v) for k, v in table.items()} == DEFAULT_CONSENSUS
