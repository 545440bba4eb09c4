"""Ed25519 keys: generation, signing, the one signature verifier, key files, dev keys.

Signing uses ``cryptography``; verification goes through ``verify_signature`` alone, which uses
libsodium (PyNaCl) because it verifies about 1.9x faster than OpenSSL on the machines we measured
(docs/BENCHMARKS.md) and verification bounds throughput. Every node uses this one verifier, so
all nodes accept exactly the same signatures.

A key's id is the hex of its raw 32-byte public key. Key files hold the hex of the 32-byte seed and
are written with mode 0600; a key file that group or others can read is refused.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign_open
from nacl.exceptions import BadSignatureError

from chain.errors import KeyFileError

PUBKEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32

# Public, well-known seeds for the INSECURE development network in genesis.json.
DEV_SEED_PREFIX = b"clearchain-dev-INSECURE:"


def verify_signature(pubkey: bytes, signature: bytes, message: bytes) -> bool:
    """True iff ``signature`` is a valid Ed25519 signature of ``message`` by ``pubkey``."""
    if len(pubkey) != PUBKEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    try:
        crypto_sign_open(signature + message, pubkey)
    except (BadSignatureError, ValueError, TypeError):
        return False
    return True


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A private Ed25519 key with its public key; ``key_id`` is the public key in hex."""

    seed: bytes
    public: bytes
    _private: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, seed: bytes) -> KeyPair:
        if len(seed) != SEED_BYTES:
            raise KeyFileError("key_malformed", f"a seed is {SEED_BYTES} bytes, got {len(seed)}")
        private = Ed25519PrivateKey.from_private_bytes(seed)
        return cls(seed, private.public_key().public_bytes_raw(), private)

    @classmethod
    def generate(cls) -> KeyPair:
        return cls.from_seed(os.urandom(SEED_BYTES))

    @classmethod
    def dev(cls, name: str) -> KeyPair:
        """The INSECURE development key named ``name`` (derived from a public seed)."""
        return cls.from_seed(hashlib.sha256(DEV_SEED_PREFIX + name.encode()).digest())

    @property
    def key_id(self) -> str:
        return self.public.hex()

    def sign(self, message: bytes) -> bytes:
        return self._private.sign(message)


def write_key_file(path: Path, key: KeyPair) -> None:
    """Write ``key`` to ``path`` with mode 0600, refusing to overwrite an existing file."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeyFileError("key_exists", f"{path} already exists; not overwriting a key") from exc
    with os.fdopen(fd, "w") as handle:
        handle.write(key.seed.hex() + "\n")


def read_key_file(path: Path) -> KeyPair:
    """Read a key file; refuse one that group or others may read or write."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError as exc:
        raise KeyFileError("key_missing", f"no key file at {path}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise KeyFileError(
            "key_permissions",
            f"{path} has mode {stat.S_IMODE(mode):04o}; run: chmod 600 {path}",
        )
    text = Path(path).read_text().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyFileError("key_malformed", f"{path} does not hold a hex seed") from exc
    return KeyPair.from_seed(seed)
