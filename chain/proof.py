"""Standalone verifier for clearchain state proofs: is a key bound to a value, or absent, under a
state root?

Why standalone: a client, auditor or regulator who holds only a validator-signed block header must
be able to check a balance against its ``state_root`` without running this project. So this file
depends on the standard library alone (no ``chain`` imports, no msgpack) and may be copied as it is. It
re-implements the tagged hash ``H(tag, data) = SHA-256(u8(len(tag)) || tag || data)``.

The tree (docs/PROTOCOL.md, section 10): keys sit at ``kh = H("key", key)``, read as 64 nibbles, high
nibble first; a leaf hashes as ``H("leaf", kh || H("value", value))``; an internal node as
``H("node", u16be(bitmap) || child hashes in ascending nibble order)``; the empty tree's root is 32
zero bytes. A proof is ``[steps, terminal]``:

- ``steps``: one ``[bitmap, siblings]`` per internal node from the root down, where ``siblings``
  are the hashes of the node's present children other than the one on the key's path, in
  ascending nibble order.
- ``terminal``: ``[0]`` absence, the key's slot in the last node is empty (with no steps: the tree
  is empty); ``[1]`` inclusion, the slot holds the key's own leaf; ``[2, other_kh,
  other_value_hash]`` absence, the slot holds the leaf of another key that shares the path.

Proofs come from untrusted parties, so ``verify_proof`` checks every type and length itself and
answers False, never raising, for any malformed input.
"""

from __future__ import annotations

import hashlib
from typing import Any

EMPTY_ROOT = b"\x00" * 32
HASH_BYTES = 32
KEY_NIBBLES = 64  # a key path is a 32-byte digest: no proof is deeper than this
BITMAP_MAX = 0xFFFF

TERMINAL_ABSENT_EMPTY = 0
TERMINAL_PRESENT = 1
TERMINAL_ABSENT_OTHER_LEAF = 2

_SEQUENCE_TYPES = (list, tuple)


def H(tag: bytes, data: bytes) -> bytes:
    """Domain-separated SHA-256: the same function as ``chain.encoding.H``."""
    return hashlib.sha256(bytes([len(tag)]) + tag + data).digest()


def verify_proof(root: bytes, key: bytes, value: bytes | None, proof_wire: list[Any]) -> bool:
    """True iff ``proof_wire`` shows, against ``root``, that ``key`` holds ``value`` (bytes) or,
    when ``value`` is None, that ``key`` is absent. Never raises; any malformed input is False.
    """
    if not _is_hash(root) or type(key) is not bytes:
        return False
    if value is not None and type(value) is not bytes:
        return False
    if not isinstance(proof_wire, _SEQUENCE_TYPES) or len(proof_wire) != 2:
        return False
    steps, terminal = proof_wire
    if not isinstance(steps, _SEQUENCE_TYPES) or len(steps) > KEY_NIBBLES:
        return False
    key_hash = H(b"key", key)
    well_formed, child = _terminal_hash(key_hash, value, len(steps), terminal)
    if not well_formed:
        return False
    if not steps:
        # No internal node: the root is the empty tree or a single leaf.
        return (root == EMPTY_ROOT) if child is None else (child == root)
    nibbles = key_hash.hex()
    child_is_leaf = child is not None  # below the last step sits a leaf or nothing
    for depth in range(len(steps) - 1, -1, -1):
        child = _step_hash(steps[depth], int(nibbles[depth], 16), child, child_is_leaf)
        if child is None:
            return False
        child_is_leaf = False
    return child == root


def _terminal_hash(
    key_hash: bytes, value: bytes | None, depth: int, terminal: object
) -> tuple[bool, bytes | None]:
    """(well_formed, hash in the key's slot below the last step, None for an empty slot).
    well_formed is False when the terminal is malformed or contradicts the claim."""
    if not isinstance(terminal, _SEQUENCE_TYPES) or not terminal or type(terminal[0]) is not int:
        return False, None
    kind = terminal[0]
    if kind == TERMINAL_ABSENT_EMPTY:
        return (len(terminal) == 1 and value is None), None
    if kind == TERMINAL_PRESENT:
        if len(terminal) != 1 or value is None:
            return False, None
        return True, H(b"leaf", key_hash + H(b"value", value))
    if kind == TERMINAL_ABSENT_OTHER_LEAF:
        if len(terminal) != 3 or value is not None:
            return False, None
        other_key_hash, other_value_hash = terminal[1], terminal[2]
        if not (_is_hash(other_key_hash) and _is_hash(other_value_hash)):
            return False, None
        # The other leaf must sit on our path (share the first `depth` nibbles) and not be ours.
        if other_key_hash == key_hash or other_key_hash.hex()[:depth] != key_hash.hex()[:depth]:
            return False, None
        return True, H(b"leaf", other_key_hash + other_value_hash)
    return False, None


def _step_hash(step: object, nibble: int, child: bytes | None, child_is_leaf: bool) -> bytes | None:
    """The hash of one internal node given our child's hash (None: our slot is empty), or None
    when the step is malformed or inconsistent with the path."""
    if not isinstance(step, _SEQUENCE_TYPES) or len(step) != 2:
        return None
    bitmap, siblings = step
    if type(bitmap) is not int or not 1 <= bitmap <= BITMAP_MAX:
        return None
    if not isinstance(siblings, _SEQUENCE_TYPES):
        return None
    ours_present = bool(bitmap >> nibble & 1)
    if ours_present != (child is not None):
        return None
    present = bin(bitmap).count("1")
    if len(siblings) != present - (1 if ours_present else 0):
        return None
    # A node whose only child is a leaf never exists: that leaf would sit one level up.
    if present == 1 and child_is_leaf:
        return None
    ours = child or b""  # bytes whenever our bit is set
    parts: list[bytes] = []
    next_sibling = 0
    for i in range(16):
        if not bitmap >> i & 1:
            continue
        if i == nibble:
            parts.append(ours)
            continue
        sibling = siblings[next_sibling]
        if not _is_hash(sibling):
            return None
        parts.append(sibling)
        next_sibling += 1
    return H(b"node", bitmap.to_bytes(2, "big") + b"".join(parts))


def _is_hash(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_BYTES
