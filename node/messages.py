"""Consensus messages: signed proposals and votes, with their wire forms.

Wire forms (msgpack arrays; sign bytes in docs/PROTOCOL.md):

    Proposal: [height, round, block_hash, pol_round, proposer, signature, block]
    Vote:     [vote_type, height, round, block_hash, validator, signature]

``block_hash`` of a nil vote is empty bytes. ``block`` is the proposed value; the consensus core
treats it as opaque (the node carries an encoded Block, the simulator a small token).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.certificate import PRECOMMIT, PREVOTE, proposal_sign_bytes, vote_sign_bytes
from chain.keys import PUBKEY_BYTES, SIGNATURE_BYTES

NIL = b""
ROUND_MAX = 2**31


@dataclass(frozen=True, slots=True)
class Proposal:
    height: int
    round: int
    block_hash: bytes
    pol_round: int  # -1, or the round of the prevote quorum that justifies re-proposing
    proposer: bytes
    signature: bytes
    block: Any

    def sign_bytes(self, chain_id: str) -> bytes:
        return proposal_sign_bytes(chain_id, self.height, self.round, self.block_hash, self.pol_round)

    def to_wire(self) -> list[Any]:
        return [
            self.height,
            self.round,
            self.block_hash,
            self.pol_round,
            self.proposer,
            self.signature,
            self.block,
        ]

    @classmethod
    def from_wire(cls, wire: Any) -> Proposal | None:
        """None for anything malformed (peers are untrusted; the caller drops it)."""
        if type(wire) is not list or len(wire) != 7:
            return None
        h, r, bh, pol, proposer, sig, block = wire
        if not (_uint(h) and _uint(r) and r < ROUND_MAX and type(pol) is int and -1 <= pol < r):
            return None
        if not (_bytes(bh, 32) and _bytes(proposer, PUBKEY_BYTES) and _bytes(sig, SIGNATURE_BYTES)):
            return None
        return cls(h, r, bh, pol, proposer, sig, block)


@dataclass(frozen=True, slots=True)
class Vote:
    vote_type: int  # PREVOTE or PRECOMMIT
    height: int
    round: int
    block_hash: bytes  # NIL for a nil vote
    validator: bytes
    signature: bytes

    def sign_bytes(self, chain_id: str) -> bytes:
        return vote_sign_bytes(chain_id, self.vote_type, self.height, self.round, self.block_hash)

    def to_wire(self) -> list[Any]:
        return [self.vote_type, self.height, self.round, self.block_hash, self.validator, self.signature]

    @classmethod
    def from_wire(cls, wire: Any) -> Vote | None:
        if type(wire) is not list or len(wire) != 6:
            return None
        t, h, r, bh, validator, sig = wire
        if t not in (PREVOTE, PRECOMMIT) or type(t) is not int:
            return None
        if not (_uint(h) and _uint(r) and r < ROUND_MAX):
            return None
        if not (type(bh) is bytes and len(bh) in (0, 32)):
            return None
        if not (_bytes(validator, PUBKEY_BYTES) and _bytes(sig, SIGNATURE_BYTES)):
            return None
        return cls(t, h, r, bh, validator, sig)


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _bytes(value: Any, size: int) -> bool:
    return type(value) is bytes and len(value) == size
