"""Votes and commit certificates.

A vote's sign bytes are ``H("vote", encode([chain_id, vote_type, height, round, block_hash]))``
with vote_type 1 = prevote, 2 = precommit, and block_hash empty bytes for a nil vote.

A commit certificate ``[height, round, block_hash, [[validator_pubkey, signature], ...]]`` (entries
sorted by key) proves that validators holding more than two thirds of the power precommitted
``block_hash`` at one (height, round). The next block carries it as ``last_commit`` and commits to
it with ``last_commit_hash = H("commit", encode(certificate))``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.encoding import H, encode
from chain.errors import InvalidBlock
from chain.keys import PUBKEY_BYTES, SIGNATURE_BYTES, KeyPair

PREVOTE = 1
PRECOMMIT = 2
NO_COMMIT_HASH = b"\x00" * 32


def vote_sign_bytes(chain_id: str, vote_type: int, height: int, round_: int, block_hash: bytes) -> bytes:
    """The digest a validator signs for a vote."""
    return H(b"vote", encode([chain_id, vote_type, height, round_, block_hash]))


def proposal_sign_bytes(chain_id: str, height: int, round_: int, block_hash: bytes, pol_round: int) -> bytes:
    """The digest a proposer signs: ``H("proposal", encode([chain_id, height, round, block_hash,
    pol_round]))``, pol_round -1 when the proposal carries no proof of lock."""
    return H(b"proposal", encode([chain_id, height, round_, block_hash, pol_round]))


@dataclass(frozen=True, slots=True)
class CommitCertificate:
    height: int
    round: int
    block_hash: bytes
    signatures: tuple[tuple[bytes, bytes], ...]  # (validator pubkey, precommit signature), sorted

    def to_wire(self) -> list[Any]:
        return [self.height, self.round, self.block_hash, [[k, s] for k, s in self.signatures]]

    @classmethod
    def from_wire(cls, wire: Any) -> CommitCertificate:
        """Structural check only. Raises InvalidBlock ``certificate_malformed``."""
        ok = (
            type(wire) is list
            and len(wire) == 4
            and type(wire[0]) is int
            and type(wire[1]) is int
            and wire[1] >= 0
            and type(wire[2]) is bytes
            and len(wire[2]) == 32
            and type(wire[3]) is list
        )
        if ok:
            for pair in wire[3]:
                ok = ok and (
                    type(pair) is list
                    and len(pair) == 2
                    and type(pair[0]) is bytes
                    and len(pair[0]) == PUBKEY_BYTES
                    and type(pair[1]) is bytes
                    and len(pair[1]) == SIGNATURE_BYTES
                )
        if not ok:
            raise InvalidBlock("certificate_malformed", "a certificate is [height, round, hash, sigs]")
        return cls(wire[0], wire[1], wire[2], tuple((p[0], p[1]) for p in wire[3]))

    def hash(self) -> bytes:
        return H(b"commit", encode(self.to_wire()))


def sign_certificate(
    chain_id: str, height: int, round_: int, block_hash: bytes, signers: list[KeyPair]
) -> CommitCertificate:
    """Assemble a certificate from precommits by ``signers`` (used by tests and the solo runner;
    the consensus engine assembles certificates from the votes it received)."""
    digest = vote_sign_bytes(chain_id, PRECOMMIT, height, round_, block_hash)
    sigs = sorted((k.public, k.sign(digest)) for k in signers)
    return CommitCertificate(height, round_, block_hash, tuple(sigs))
