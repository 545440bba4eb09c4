"""``blocks.json``: the shipped genesis block and three blocks on it (PROTOCOL sections 6, 8, 9,
10.4), as the store holds them: each block's encoding, its header's fields and hash, its
receipts, the certificate stored beside it, and state proofs against the last block's root.

Everything is read back from the store the chain code wrote (``prim_chain``), so the bytes are
the ones a node serves.
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from chain.block import Block, Header
from chain.encoding import decode, encode
from chain.policy import nonce_key
from cli.vectors.prim_chain import DevChain

# Nonce keys whose proofs (inclusion or absence) the file carries, against the head's root.
_PROVEN_SENDERS = ("custodian", "xchg-alpha", "member-b", "oracle-1")


def blocks_doc(chain: DevChain) -> dict[str, Any]:
    """blocks.json, from ``chain`` after ``prim_chain.produce_blocks``."""
    store = chain.store
    blocks = []
    for height in range(1, chain.height + 1):
        raw = store.block_bytes(height)
        certificate = store.certificate_bytes(height)
        receipts = store.receipts(height)
        assert raw is not None and certificate is not None and receipts is not None
        block = Block.decode(raw)
        blocks.append(
            {
                "height": height,
                "block_encoded": raw.hex(),
                "header": _header_json(block.header),
                "header_encoded": _header_bytes(raw).hex(),
                "hash": block.hash().hex(),
                "tx_hashes": [t.hash.hex() for t in block.txs],
                "receipts": [r.encode().hex() for r in receipts],
                "receipt_codes": [r.code for r in receipts],
                "certificate_encoded": certificate.hex(),
            }
        )
    genesis = store.header(0)
    assert genesis is not None
    head = chain.ledger.head
    return {
        "about": (
            "docs/PROTOCOL.md sections 6, 8, 9 and 10.4. `genesis`: the header of the height-0 block "
            "of the shipped genesis.json, its encoding and hash. `blocks`: heights 1..3 built on it: "
            "encode(Block), the header's fields, encode(Header), block_hash, each tx hash, each "
            "encode(Receipt) in order, and the encoded CommitCertificate stored beside the block "
            "(every dev validator's precommit). `state_proofs`: proofs (wire form, encoded) of state "
            "keys against the state_root of the last block; value is the encoded state value, or "
            "null for an absence proof."
        ),
        "genesis": {
            "header": _header_json(genesis),
            "header_encoded": _header_bytes(_require(store.block_bytes(0))).hex(),
            "hash": genesis.hash().hex(),
        },
        "blocks": blocks,
        "state_proofs": _state_proofs(chain, head),
    }


def _require(value: bytes | None) -> bytes:
    assert value is not None
    return value


def _header_json(header: Header) -> dict[str, Any]:
    return {
        f.name: (v.hex() if isinstance(v, bytes) else v)
        for f in fields(Header)
        for v in [getattr(header, f.name)]
    }


def _header_bytes(block_bytes: bytes) -> bytes:
    """The encoded header inside an encoded block: the block is an array of 3 whose first item is
    the header (an array of 11 fields), so encode(header) follows the array's one-byte head."""
    header_wire = decode(block_bytes)[0]
    encoded = encode(header_wire)
    assert block_bytes[1 : 1 + len(encoded)] == encoded
    return encoded


def _state_proofs(chain: DevChain, head: Header) -> list[dict[str, Any]]:
    out = []
    for sender in _PROVEN_SENDERS:
        key = nonce_key(sender)
        value = chain.store.get_state(key)
        proof = chain.ledger.tree.prove(key)
        assert proof.verify(head.state_root, key, value)
        out.append(
            {
                "height": head.height,
                "state_root": head.state_root.hex(),
                "key": key.hex(),
                "value": None if value is None else value.hex(),
                "proof_encoded": encode(proof.to_wire()).hex(),
            }
        )
    return out
