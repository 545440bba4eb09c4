"""The validator's signer, with double-sign protection that survives crashes.

It keeps the last (height, round, step) it signed, with the block hash and signature, in a small
file it rewrites and fsyncs *before* it returns a signature (write to a temporary file, fsync,
rename, fsync the directory). It signs only forward: a request for an earlier (height, round,
step) is refused, and one for the same (height, round, step) is answered with the same signature
if the block hash is the same and refused otherwise. So no crash, restart or bug upstream can
make this validator sign two conflicting messages for one (height, round, step); this is what
CometBFT's file-based private validator does.

Steps are ordered proposal (0) < prevote (1) < precommit (2), the order consensus signs them in.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from chain.certificate import PRECOMMIT, PREVOTE, proposal_sign_bytes, vote_sign_bytes
from chain.encoding import decode, encode
from chain.errors import ClearchainError
from chain.keys import KeyPair

PROPOSAL_STEP = 0
_STEP_OF_VOTE = {PREVOTE: 1, PRECOMMIT: 2}


@dataclass(frozen=True, slots=True)
class LastSigned:
    height: int
    round: int
    step: int
    block_hash: bytes
    signature: bytes

    @property
    def hrs(self) -> tuple[int, int, int]:
        return (self.height, self.round, self.step)


class SignerStateError(ClearchainError):
    """The signer's state file is unreadable: refuse to sign rather than risk a double sign."""


class FileSigner:
    """Signs consensus messages for one validator key; state in ``path``."""

    def __init__(self, key: KeyPair, path: Path) -> None:
        self.key = key
        self.pubkey = key.public
        self.path = path
        self.last = self._load()

    def _load(self) -> LastSigned | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        try:
            h, r, s, bh, sig = decode(data)
            return LastSigned(h, r, s, bh, sig)
        except (ClearchainError, ValueError, TypeError) as exc:
            raise SignerStateError(
                "signer_state_corrupt",
                f"{self.path} is unreadable; refusing to sign. Restore it or remove it only if "
                f"this validator surely signed nothing at or after the current height",
            ) from exc

    def _persist(self, last: LastSigned) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, encode([last.height, last.round, last.step, last.block_hash, last.signature]))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        self.last = last

    def _sign(self, hrs: tuple[int, int, int], block_hash: bytes, sign_bytes: bytes) -> bytes | None:
        last = self.last
        if last is not None:
            if hrs < last.hrs:
                return None
            if hrs == last.hrs:
                return last.signature if block_hash == last.block_hash else None
        signature = self.key.sign(sign_bytes)
        self._persist(LastSigned(*hrs, block_hash, signature))
        return signature

    def sign_proposal(
        self, chain_id: str, height: int, round_: int, block_hash: bytes, pol_round: int
    ) -> bytes | None:
        return self._sign(
            (height, round_, PROPOSAL_STEP),
            block_hash,
            proposal_sign_bytes(chain_id, height, round_, block_hash, pol_round),
        )

    def sign_vote(
        self, chain_id: str, vote_type: int, height: int, round_: int, block_hash: bytes
    ) -> bytes | None:
        step = _STEP_OF_VOTE[vote_type]
        return self._sign(
            (height, round_, step),
            block_hash,
            vote_sign_bytes(chain_id, vote_type, height, round_, block_hash),
        )
