"""The validator set: public keys with voting power, and its hash.

``validators_hash = H("validators", encode([[pubkey, power], ...]))`` with entries sorted by public
key. Quorum is more than two thirds of the total power: ``3 * power > 2 * total``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chain.encoding import H, encode
from chain.errors import InvalidBlock
from chain.keys import PUBKEY_BYTES

POWER_MAX = 2**40
VALIDATORS_MAX = 256


@dataclass(frozen=True, slots=True)
class Validator:
    pubkey: bytes
    power: int
    name: str = ""  # for people only; not hashed


@dataclass(frozen=True, slots=True)
class ValidatorSet:
    validators: tuple[Validator, ...]  # sorted by pubkey
    _total: int | None = field(default=None, compare=False, repr=False)

    @classmethod
    def build(cls, validators: list[Validator]) -> ValidatorSet:
        """Validate and sort. Raises InvalidBlock ``bad_validator_set``."""
        if not 1 <= len(validators) <= VALIDATORS_MAX:
            raise InvalidBlock("bad_validator_set", f"1 to {VALIDATORS_MAX} validators")
        keys = [v.pubkey for v in validators]
        if len(set(keys)) != len(keys):
            raise InvalidBlock("bad_validator_set", "a validator key appears twice")
        for v in validators:
            if type(v.pubkey) is not bytes or len(v.pubkey) != PUBKEY_BYTES:
                raise InvalidBlock("bad_validator_set", "a validator key is 32 bytes")
            if type(v.power) is not int or not 1 <= v.power <= POWER_MAX:
                raise InvalidBlock("bad_validator_set", f"power must be 1..{POWER_MAX}")
        return cls(tuple(sorted(validators, key=lambda v: v.pubkey)))

    @property
    def total_power(self) -> int:
        # Asked on every quorum check; the set is immutable, so sum once.
        total = self._total
        if total is None:
            total = sum(v.power for v in self.validators)
            object.__setattr__(self, "_total", total)
        return total

    def power_of(self, pubkey: bytes) -> int:
        for v in self.validators:
            if v.pubkey == pubkey:
                return v.power
        return 0

    def has_quorum(self, power: int) -> bool:
        """More than two thirds of the total voting power."""
        return 3 * power > 2 * self.total_power

    def to_wire(self) -> list[list[object]]:
        return [[v.pubkey, v.power] for v in self.validators]

    def hash(self) -> bytes:
        return H(b"validators", encode(self.to_wire()))
