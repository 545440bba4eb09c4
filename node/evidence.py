"""Evidence of equivocation: two conflicting signed votes by one validator for one (height,
round, step).

Consensus reports each pair it sees (``Equivocation``); the pool keeps the first pair per
(validator, height, round, vote type), appends it to ``<home>/evidence.log`` (so it survives a
restart) and hands it to the API. Both votes carry the validator's signature over canonical
bytes, so anyone can re-verify the pair offline. A validator node also submits each new pair as a
``bonds.submit_evidence`` transaction, signed as its own validator participant (the one whose
1-of-1 key policy is the node key), and the bond contract slashes the equivocating validator:
``evidence_tx`` builds that transaction.

The log is a sequence of records: a 4-byte big-endian length and the msgpack array
``[first vote wire, second vote wire]``. A torn last record is ignored.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.certificate import PRECOMMIT
from chain.encoding import decode, encode
from chain.errors import ClearchainError
from chain.keys import KeyPair, verify_signature
from chain.policy import POLICY_PREFIX, nonce_key
from chain.state import StateReader, decode_value
from chain.tx import SignedTx, Tx
from node.messages import Vote

EVIDENCE_KEPT_MAX = 10_000


@dataclass(frozen=True, slots=True)
class DoubleVote:
    first: Vote
    second: Vote

    @property
    def key(self) -> tuple[bytes, int, int, int]:
        v = self.first
        return (v.validator, v.height, v.round, v.vote_type)

    def verify(self, chain_id: str) -> bool:
        """Both votes signed by one validator for one (height, round, type), different blocks."""
        a, b = self.first, self.second
        return (
            (a.validator, a.height, a.round, a.vote_type) == (b.validator, b.height, b.round, b.vote_type)
            and a.block_hash != b.block_hash
            and verify_signature(a.validator, a.signature, a.sign_bytes(chain_id))
            and verify_signature(b.validator, b.signature, b.sign_bytes(chain_id))
        )

    def call_args(self) -> list[Any]:
        """The arguments of ``bonds.submit_evidence``: each vote as [validator, height, round,
        vote type, block hash, signature]."""
        return [
            [v.validator, v.height, v.round, v.vote_type, v.block_hash, v.signature]
            for v in (self.first, self.second)
        ]

    def to_json(self) -> dict[str, Any]:
        v = self.first
        return {
            "validator": v.validator.hex(),
            "height": v.height,
            "round": v.round,
            "step": "precommit" if v.vote_type == PRECOMMIT else "prevote",
            "votes": [
                {"block_hash": x.block_hash.hex(), "signature": x.signature.hex()}
                for x in (self.first, self.second)
            ],
        }


class EvidencePool:
    def __init__(self, path: Path, chain_id: str) -> None:
        self.path = path
        self.chain_id = chain_id
        self.items: dict[tuple[bytes, int, int, int], DoubleVote] = {}
        for item in self._read():
            self.items.setdefault(item.key, item)

    def add(self, first: Vote, second: Vote) -> bool:
        """Keep a newly seen, verified double vote; False if known, invalid or the pool is full."""
        item = DoubleVote(first, second)
        if item.key in self.items or len(self.items) >= EVIDENCE_KEPT_MAX or not item.verify(self.chain_id):
            return False
        body = encode([first.to_wire(), second.to_wire()])
        with open(self.path, "ab") as f:
            f.write(len(body).to_bytes(4, "big") + body)
            f.flush()
            os.fsync(f.fileno())
        self.items[item.key] = item
        return True

    def _read(self) -> list[DoubleVote]:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out, offset = [], 0
        while offset + 4 <= len(data):
            size = int.from_bytes(data[offset : offset + 4], "big")
            body = data[offset + 4 : offset + 4 + size]
            if len(body) != size:
                break
            try:
                a, b = decode(body)
            except (ClearchainError, ValueError, TypeError):
                break
            first, second = Vote.from_wire(a), Vote.from_wire(b)
            if first is not None and second is not None:
                out.append(DoubleVote(first, second))
            offset += 4 + size
        return out

    def to_json(self) -> list[dict[str, Any]]:
        return [self.items[k].to_json() for k in sorted(self.items)]


# --- submitting evidence as a transaction ----------------------------------------------------
PARTICIPANTS_SCANNED_MAX = 100_000  # policies read to find the node's own participant


def own_participant(state: StateReader, key: bytes) -> str | None:
    """The active participant whose key policy is exactly 1-of-1 ``key`` (a validator's own
    participant in the dev layout), or None. Read once per submission: evidence is rare."""
    for i, (k, data) in enumerate(state.iterate_state(POLICY_PREFIX)):
        if i >= PARTICIPANTS_SCANNED_MAX:
            break
        threshold, keys, active = decode_value(data)
        if active and threshold == 1 and list(keys) == [key]:
            return k[len(POLICY_PREFIX) :].decode()
    return None


def is_recorded(state: StateReader, item: DoubleVote) -> bool:
    """The chain already holds this double vote (someone submitted it)."""
    from contracts.bonds import evidence_state_key

    return state.get_state(evidence_state_key(*item.key)) is not None


def evidence_tx(chain_id: str, sender: str, nonce: int, item: DoubleVote, key: KeyPair) -> SignedTx:
    """``bonds.submit_evidence`` for ``item``, signed by ``key`` as ``sender`` with ``nonce``."""
    return Tx(chain_id, sender, nonce, "bonds", "submit_evidence", item.call_args(), 0).sign([key])


def next_nonce(state: StateReader, sender: str, last_pending: int | None) -> int:
    """The committed nonce of ``sender``, or its last pending one, plus one."""
    if last_pending is not None:
        return last_pending + 1
    data = state.get_state(nonce_key(sender))
    return (0 if data is None else int(decode_value(data))) + 1
