"""Key policies: a participant is controlled by ``threshold`` of its ``keys``.

Example: a client's 2-of-3 user / wallet / recovery policy (the DAEX three-key design): any two of
the three keys authorise a transaction, so a lost key can be replaced by a rotation signed with
the other two.

The executor reads a sender's policy and next nonce from the state keys defined here; the
``membership`` contract is the only contract that writes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.errors import InvalidTransaction
from chain.keys import PUBKEY_BYTES, verify_signature
from chain.limits import POLICY_KEYS_MAX

MEMBERSHIP = "membership"
# Kept by the chain, not by contracts/membership.py, because the executor checks signatures and
# nonces before any contract runs; the membership contract writes these records with the builders.
POLICY_PREFIX = b"membership/policy/"
NONCE_PREFIX = b"membership/nonce/"


def policy_key(participant: str) -> bytes:
    """State key of a participant's key policy."""
    return POLICY_PREFIX + participant.encode()


def nonce_key(participant: str) -> bytes:
    """State key of the last nonce a participant used (absent means none yet)."""
    return NONCE_PREFIX + participant.encode()


@dataclass(frozen=True, slots=True)
class KeyPolicy:
    """``threshold`` distinct signatures out of ``keys`` (raw 32-byte public keys, sorted)."""

    threshold: int
    keys: tuple[bytes, ...]

    @classmethod
    def build(cls, threshold: int, keys: list[bytes] | tuple[bytes, ...]) -> KeyPolicy:
        """Validate and normalise (keys sorted). Raises InvalidTransaction ``bad_policy``."""
        if type(threshold) is not int:
            raise InvalidTransaction("bad_policy", "threshold must be an integer")
        if not 1 <= len(keys) <= POLICY_KEYS_MAX:
            raise InvalidTransaction("bad_policy", f"a policy has 1 to {POLICY_KEYS_MAX} keys")
        if any(type(k) is not bytes or len(k) != PUBKEY_BYTES for k in keys):
            raise InvalidTransaction("bad_policy", "each key is a raw 32-byte Ed25519 public key")
        if len(set(keys)) != len(keys):
            raise InvalidTransaction("bad_policy", "a policy lists each key once")
        if not 1 <= threshold <= len(keys):
            raise InvalidTransaction("bad_policy", f"threshold {threshold} must be between 1 and {len(keys)}")
        return cls(threshold, tuple(sorted(keys)))

    def to_wire(self) -> list[Any]:
        return [self.threshold, list(self.keys)]

    @classmethod
    def from_wire(cls, wire: list[Any]) -> KeyPolicy:
        return cls.build(wire[0], wire[1])

    def check(self, signatures: list[tuple[bytes, bytes]], digest: bytes) -> None:
        """Raise InvalidTransaction unless ``threshold`` distinct policy keys signed ``digest``.

        Every signature carried must be valid and by a policy key: a transaction with a stray
        signature is malformed, not merely over-signed, so the signed set is unambiguous.
        """
        seen: set[bytes] = set()
        for pubkey, sig in signatures:
            if pubkey not in self.keys:
                raise InvalidTransaction(
                    "signer_not_in_policy", f"key {pubkey.hex()[:16]}... is not in the policy"
                )
            if pubkey in seen:
                raise InvalidTransaction("duplicate_signer", "a key signed twice")
            if not verify_signature(pubkey, sig, digest):
                raise InvalidTransaction("bad_signature", f"bad signature by {pubkey.hex()[:16]}...")
            seen.add(pubkey)
        if len(seen) < self.threshold:
            raise InvalidTransaction(
                "insufficient_signatures",
                f"{len(seen)} of the required {self.threshold} signatures",
            )
