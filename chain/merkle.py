"""Merkle root of an ordered list (tx root, receipts root).

The rule is RFC 6962's: the root of an empty list is 32 zero bytes; of one item,
``H("list_leaf", item)``; of n > 1 items, ``H("list_node", root(first k) || root(rest))`` where k is
the largest power of two below n. Items are byte strings (an encoded signed tx; an encoded receipt).
"""

from __future__ import annotations

from chain.encoding import H

EMPTY_LIST_ROOT = b"\x00" * 32


def list_root(items: list[bytes]) -> bytes:
    """Merkle root of ``items`` in order."""
    if not items:
        return EMPTY_LIST_ROOT
    level = [H(b"list_leaf", item) for item in items]
    return _root(level)


def _root(hashes: list[bytes]) -> bytes:
    n = len(hashes)
    if n == 1:
        return hashes[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return H(b"list_node", _root(hashes[:k]) + _root(hashes[k:]))
