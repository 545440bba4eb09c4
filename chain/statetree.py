"""The authenticated state tree: a sparse 16-ary Merkle trie over hashed keys, whose root is the
block header's ``state_root``.

Why this shape: the root must depend only on the set of (key, value) pairs, never on the order of
writes (history independence), so every validator derives the same root; a block's update must
cost O(k log n) hashes for k changed keys among n; and a client must be able to check one key's
value or absence with plain SHA-256 (``chain/proof.py``). Keys sit at ``kh = H("key", key)``, so
the trie stays balanced whatever the keys look like. docs/STATETREE.md specifies the bytes.

Canonical shape: an internal node at nibble prefix p exists iff at least two keys' ``kh`` start
with p; a prefix holding one key is a leaf; the empty tree's root is 32 zero bytes, and a lone
key's leaf is the root.

Execute to a diff: ``compute_update`` leaves the tree as it is (candidate blocks are computed side
by side) and returns the new root with the node writes for the store's batch; ``apply`` then makes
it current. Internal nodes are loaded lazily from a ``NodeSource``, checked against the hash their
parent holds, and kept decoded in memory. The cache is deliberately unbounded: it ends up holding
every internal node touched since start (about 0.36 n nodes for n keys, ~450 bytes per key).

In memory a node is a 17-tuple: 16 slots, then the bitmap. A slot is None (empty), 34 bytes
(``c4 20 || hash``: an internal child, stored at its own path) or 101 bytes (``92 c4 20 || kh ||
c4 20 || value_hash || leaf_hash``: a leaf). Each slot thus carries its own msgpack record form
and ends with its hash, so sealing a node is two joins and one SHA-256. Cached nodes are never
mutated: an update copies the nodes it changes, and unapplied updates share the rest.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from chain.encoding import decode
from chain.errors import EncodingError, StoreError, invariant
from chain.proof import TERMINAL_ABSENT_EMPTY, TERMINAL_ABSENT_OTHER_LEAF, TERMINAL_PRESENT
from chain.proof import verify_proof

try:  # CPython's own SHA-256 has less per-call overhead than OpenSSL 3 on one- or two-block inputs.
    from _sha256 import sha256 as _short_sha256  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - Python 3.12+ or a build without it
    _short_sha256 = hashlib.sha256

EMPTY_ROOT: Final = b"\x00" * 32
ROOT_PATH: Final = b""  # nibble path of the root node, and of the lone-leaf record

_sha256 = hashlib.sha256
# Tag prefixes of chain.encoding.H, inlined on the hot path: u8(len(tag)) || tag.
_KEY_PREFIX: Final = b"\x03key"
_VALUE_PREFIX: Final = b"\x05value"
_LEAF_PREFIX: Final = b"\x04leaf"
_NODE_PREFIX: Final = b"\x04node"
_BIN32: Final = b"\xc4\x20"  # msgpack header of 32 bytes of bin
_LEAF_HEAD: Final = b"\x92" + _BIN32  # msgpack [kh, value_hash] starts with this
_INTERNAL: Final = 34  # slot length of an internal child
_LEAF: Final = 101  # slot length of a leaf; a deletion in a change list is its first 35 bytes
_KH: Final = slice(3, 35)
_VH: Final = slice(37, 69)
_RECORD: Final = slice(0, 69)
_RECORDS: Final = 16  # a node tuple holds 16 child hashes, then 16 child records ...
_BITMAP: Final = 32  # ... then the bitmap
_NIBBLE_PATHS: Final = [bytes((i,)) for i in range(16)]
_BYTES: Final = [bytes((i,)) for i in range(256)]
# msgpack array header for a record of n children plus the bitmap.
_RECORD_HEADS: Final = [bytes((0x90 | n + 1,)) if n < 15 else b"\xdc\x00" + bytes((n + 1,)) for n in range(17)]

Slot = bytes | None
Node = tuple[Any, ...]  # (hash_0, ..., hash_15, record_0, ..., record_15, bitmap)


class NodeSource(Protocol):
    """Where stored internal nodes are read from (the store, or a dict in tests)."""

    def get_node(self, path: bytes) -> bytes | None:
        """The serialized node at ``path`` (one nibble per byte, b"" = root), or None."""
        ...


class MemoryNodeSource:
    """A NodeSource over a dict, for tests and benchmarks; ``write`` plays the store's batch."""

    def __init__(self) -> None:
        self.nodes: dict[bytes, bytes] = {}

    def get_node(self, path: bytes) -> bytes | None:
        return self.nodes.get(path)

    def write(self, node_writes: Mapping[bytes, bytes | None]) -> None:
        for path, record in node_writes.items():
            if record is None:
                self.nodes.pop(path, None)
            else:
                self.nodes[path] = record


@dataclass(frozen=True, slots=True)
class TreeUpdate:
    """What ``compute_update`` returns: the new root and the store writes that realise it.

    ``node_writes`` maps a nibble path to the serialized node to store there, or None to delete
    the stored node. ``base_root`` is the root it was computed against; ``root_slot`` and
    ``nodes`` are the decoded new nodes, so that ``apply`` does not decode again.
    """

    root: bytes
    node_writes: dict[bytes, bytes | None]
    base_root: bytes
    root_slot: Slot = field(repr=False, compare=False)
    nodes: dict[bytes, Node | None] = field(repr=False, compare=False)


@dataclass(frozen=True, slots=True)
class Proof:
    """A proof that a key holds a value, or is absent, under one root (see chain/proof.py).

    ``steps`` are ``(bitmap, sibling hashes)`` from the root down; ``terminal`` is one of
    ``TERMINAL_*``; the other-leaf fields are set only for ``TERMINAL_ABSENT_OTHER_LEAF``.
    """

    steps: tuple[tuple[int, tuple[bytes, ...]], ...]
    terminal: int
    other_key_hash: bytes | None = None
    other_value_hash: bytes | None = None

    @property
    def is_inclusion(self) -> bool:
        return self.terminal == TERMINAL_PRESENT

    def to_wire(self) -> list[Any]:
        """The plain msgpack-able form ``[steps, terminal]`` (docs/STATETREE.md)."""
        steps = [[bitmap, list(siblings)] for bitmap, siblings in self.steps]
        if self.terminal == TERMINAL_ABSENT_OTHER_LEAF:
            return [steps, [self.terminal, self.other_key_hash, self.other_value_hash]]
        return [steps, [self.terminal]]

    @classmethod
    def from_wire(cls, wire: Any) -> Proof:
        """Rebuild a Proof from its wire form, checking its shape only (``verify`` checks the
        rest). Raises EncodingError ``proof_malformed``."""
        try:
            steps_wire, terminal = wire
            steps = tuple((_int(bitmap), tuple(map(_hash, sibs))) for bitmap, sibs in steps_wire)
            kind = _int(terminal[0])
            if kind == TERMINAL_ABSENT_OTHER_LEAF and len(terminal) == 3:
                return cls(steps, kind, _hash(terminal[1]), _hash(terminal[2]))
            if kind in (TERMINAL_ABSENT_EMPTY, TERMINAL_PRESENT) and len(terminal) == 1:
                return cls(steps, kind)
        except (TypeError, ValueError, IndexError) as exc:
            raise EncodingError("proof_malformed", f"not a state proof: {exc}") from exc
        raise EncodingError("proof_malformed", "unknown proof terminal")

    def verify(self, root: bytes, key: bytes, value: bytes | None) -> bool:
        """Whether this proof shows ``key`` -> ``value`` (None: absence) under ``root``."""
        return verify_proof(root, key, value, self.to_wire())


def _int(value: Any) -> int:
    if type(value) is not int:
        raise TypeError(f"expected an int, got {type(value).__name__}")
    return value


def _hash(value: Any) -> bytes:
    if type(value) is not bytes or len(value) != 32:
        raise ValueError("expected a 32-byte hash")
    return value


class StateTree:
    """The current state tree: its root and a cache of decoded internal nodes."""

    def __init__(self, source: NodeSource, root: bytes) -> None:
        """Open the tree whose root is ``root``, reading nodes from ``source`` on demand.

        Raises StoreError ``state_node_missing`` / ``state_node_corrupt`` when the root's record
        is missing or does not hash to ``root``.
        """
        invariant(type(root) is bytes and len(root) == 32, "a state root is 32 bytes")
        self._source = source
        self._root = root
        self._nodes: dict[bytes, Node] = {}
        self._root_slot = self._load_root_slot(root)

    @property
    def root(self) -> bytes:
        return self._root

    def compute_update(self, changes: Mapping[bytes, bytes | None]) -> TreeUpdate:
        """The update that applies ``changes`` (key -> new value, None = delete) to this tree,
        which stays as it is. Deleting an absent key is a no-op.

        Raises StoreError when a node it needs is missing or corrupt in the source."""
        items: list[bytes] = []
        for key, value in changes.items():
            invariant(type(key) is bytes, "state keys are bytes")
            key_hash = _short_sha256(_KEY_PREFIX + key).digest()
            if value is None:
                items.append(_LEAF_HEAD + key_hash)  # a deletion: 35 bytes
            else:
                invariant(type(value) is bytes, "state values are bytes")
                items.append(_leaf(key_hash, _sha256(_VALUE_PREFIX + value).digest()))
        items.sort()  # by kh, since all items start with the same three bytes
        nodes: dict[bytes, Node | None] = {}
        records: dict[bytes, bytes | None] = {}
        old_slot = self._root_slot
        new_slot = self._update(ROOT_PATH, 0, old_slot, items, 0, len(items), nodes, records)
        if new_slot is None:
            if old_slot is not None:
                records[ROOT_PATH] = None
        elif len(new_slot) == _LEAF and new_slot != old_slot:
            # A lone key has no parent node to hold its [kh, value_hash]: record it at the root
            # path, so that a reopened tree can still prove and update it.
            nodes[ROOT_PATH] = None
            records[ROOT_PATH] = new_slot[_RECORD]
        root = EMPTY_ROOT if new_slot is None else new_slot[-32:]
        return TreeUpdate(root, records, self._root, new_slot, nodes)

    def apply(self, update: TreeUpdate) -> None:
        """Make ``update`` current (the store has written its ``node_writes``).

        Raises InvariantViolation when it was computed against another root."""
        invariant(
            update.base_root == self._root,
            f"tree update computed against root {update.base_root.hex()}, "
            f"but the current root is {self._root.hex()}",
        )
        cache = self._nodes
        for path, node in update.nodes.items():
            if node is None:
                cache.pop(path, None)
            else:
                cache[path] = node
        self._root = update.root
        self._root_slot = update.root_slot

    def prove(self, key: bytes) -> Proof:
        """An inclusion proof for ``key`` if present, else an absence proof, against the
        current root. Raises StoreError when a node on the path is missing or corrupt."""
        key_hash = _short_sha256(_KEY_PREFIX + key).digest()
        nibbles = key_hash.hex()
        steps: list[tuple[int, tuple[bytes, ...]]] = []
        slot, path = self._root_slot, ROOT_PATH
        while slot is not None and len(slot) == _INTERNAL:
            node = self._node(path, slot)
            nibble = int(nibbles[len(path)], 16)
            siblings = (h for i, h in enumerate(node[:16]) if h is not None and i != nibble)
            steps.append((node[_BITMAP], tuple(siblings)))
            slot, path = _child(node, nibble), path + _NIBBLE_PATHS[nibble]
        if slot is None:
            return Proof(tuple(steps), TERMINAL_ABSENT_EMPTY)
        if slot[_KH] == key_hash:
            return Proof(tuple(steps), TERMINAL_PRESENT)
        return Proof(tuple(steps), TERMINAL_ABSENT_OTHER_LEAF, slot[_KH], slot[_VH])

    def _update(
        self,
        path: bytes,
        depth: int,
        slot: Slot,
        items: list[bytes],
        lo: int,
        hi: int,
        nodes: dict[bytes, Node | None],
        records: dict[bytes, bytes | None],
    ) -> Slot:
        """The new slot at ``path`` once ``items[lo:hi]`` (all under ``path``) are applied."""
        if slot is None or len(slot) == _LEAF:
            return _merge_into_leaf(path, depth, slot, items, lo, hi, nodes, records)
        node = self._node(path, slot)
        new: list[Any] | None = None
        for nibble, group_lo, group_hi in _groups(items, lo, hi, depth):
            old = _child(node, nibble)
            child_path = path + _NIBBLE_PATHS[nibble]
            child = self._update(child_path, depth + 1, old, items, group_lo, group_hi, nodes, records)
            if child != old:
                if new is None:
                    new = list(node)
                _set_child(new, nibble, child)
                if (old is None) != (child is None):
                    new[_BITMAP] ^= 1 << nibble
        if new is None:
            return slot  # only deletions of absent keys, or values rewritten unchanged
        return _settle(path, new, nodes, records)

    def _node(self, path: bytes, expected: bytes) -> Node:
        """The node at ``path`` from the cache, else from the source, checked against the slot
        ``expected`` its parent holds. Raises StoreError."""
        node = self._nodes.get(path)
        if node is not None:
            return node
        record = self._source.get_node(path)
        if record is None:
            raise StoreError("state_node_missing", f"no tree node at path {path.hex()}")
        node = _parse_node(record, path)
        found = _seal(node)[0]
        if found != expected:
            raise StoreError(
                "state_node_corrupt",
                f"tree node at path {path.hex()} hashes to {found[2:].hex()}, "
                f"its parent holds {expected[2:].hex()}",
            )
        self._nodes[path] = node
        return node

    def _load_root_slot(self, root: bytes) -> Slot:
        if root == EMPTY_ROOT:
            return None
        record = self._source.get_node(ROOT_PATH)
        if record is None:
            raise StoreError("state_node_missing", f"no root record for state root {root.hex()}")
        value = _decode_record(record, ROOT_PATH)
        if len(value) == 2 and _is_hash(value[0]) and _is_hash(value[1]):
            leaf = _leaf(value[0], value[1])  # the lone-leaf record
            if leaf[-32:] != root:
                raise StoreError("state_node_corrupt", f"lone leaf does not hash to {root.hex()}")
            return leaf
        slot = _BIN32 + root
        self._node(ROOT_PATH, slot)
        return slot


def _leaf(key_hash: bytes, value_hash: bytes) -> bytes:
    leaf_hash = _short_sha256(_LEAF_PREFIX + key_hash + value_hash).digest()
    return _LEAF_HEAD + key_hash + _BIN32 + value_hash + leaf_hash


def _merge_into_leaf(
    path: bytes,
    depth: int,
    slot: Slot,
    items: list[bytes],
    lo: int,
    hi: int,
    nodes: dict[bytes, Node | None],
    records: dict[bytes, bytes | None],
) -> Slot:
    """The new slot where the old one is empty or a leaf: rebuilt from the surviving keys."""
    if hi - lo == 1:  # the common case at the bottom of the tree
        item = items[lo]
        if slot is None or item[:35] == slot[:35]:
            return item if len(item) == _LEAF else None
        if len(item) != _LEAF:
            return slot  # the deletion of another, absent key
        leaves = [slot, item] if slot < item else [item, slot]
        return _build(path, depth, leaves, 0, 2, nodes, records)
    leaves = [item for item in items[lo:hi] if len(item) == _LEAF]
    if slot is not None:
        pos = bisect_left(items, slot[:35], lo, hi)
        if pos == hi or items[pos][:35] != slot[:35]:
            insort(leaves, slot)  # the old key is not among the changes: it stays
    if not leaves:
        return None
    return _build(path, depth, leaves, 0, len(leaves), nodes, records)


def _build(
    path: bytes,
    depth: int,
    leaves: list[bytes],
    lo: int,
    hi: int,
    nodes: dict[bytes, Node | None],
    records: dict[bytes, bytes | None],
) -> bytes:
    """The slot of a subtree built afresh from the sorted ``leaves[lo:hi]`` (at least one)."""
    if hi - lo == 1:
        return leaves[lo]
    new: list[Any] = [None] * 32 + [0]
    for nibble, group_lo, group_hi in _groups(leaves, lo, hi, depth):
        child_path = path + _NIBBLE_PATHS[nibble]
        child = _build(child_path, depth + 1, leaves, group_lo, group_hi, nodes, records)
        _set_child(new, nibble, child)
        new[_BITMAP] |= 1 << nibble
    node = tuple(new)
    slot, record = _seal(node)
    nodes[path] = node
    records[path] = record
    return slot


def _settle(
    path: bytes, new: list[Any], nodes: dict[bytes, Node | None], records: dict[bytes, bytes | None]
) -> Slot:
    """Record a changed node and return its slot, collapsing it when it no longer holds two
    keys: with no child it goes, with a lone leaf child that leaf moves up."""
    bitmap = new[_BITMAP]
    if bitmap & (bitmap - 1) == 0:  # at most one child
        only = _child(new, bitmap.bit_length() - 1) if bitmap else None
        if only is None or len(only) == _LEAF:
            nodes[path] = None
            records[path] = None
            return only
    node = tuple(new)
    slot, record = _seal(node)
    nodes[path] = node
    records[path] = record
    return slot


def _groups(items: list[bytes], lo: int, hi: int, depth: int) -> list[tuple[int, int, int]]:
    """Split the sorted ``items[lo:hi]``, which share their first ``depth`` nibbles, into runs
    ``(nibble, run_lo, run_hi)`` by nibble ``depth``, found by bisection rather than a scan."""
    index = 3 + (depth >> 1)  # items start with three header bytes, then kh
    odd = depth & 1
    if hi - lo == 1:
        byte = items[lo][index]
        return [(byte & 15 if odd else byte >> 4, lo, hi)]
    runs = []
    while lo < hi:
        first = items[lo]
        byte = first[index]
        nibble = byte & 15 if odd else byte >> 4
        if nibble == 15:
            end = hi
        else:  # the least kh with the next nibble here: raise this nibble, drop the rest
            bound = byte + 1 if odd else (nibble + 1) << 4
            end = bisect_left(items, first[:index] + _BYTES[bound], lo + 1, hi)
        runs.append((nibble, lo, end))
        lo = end
    return runs


def _child(node: Node | list[Any], nibble: int) -> Slot:
    """The slot of child ``nibble`` (see the module docstring for the layouts)."""
    record = node[_RECORDS + nibble]
    if record is None or len(record) == _INTERNAL:
        return record
    return record + node[nibble]


def _set_child(new: list[Any], nibble: int, slot: Slot) -> None:
    if slot is None:
        new[nibble] = new[_RECORDS + nibble] = None
    elif len(slot) == _INTERNAL:
        new[nibble], new[_RECORDS + nibble] = slot[2:], slot
    else:
        new[nibble], new[_RECORDS + nibble] = slot[69:], slot[:69]


def _seal(node: Node) -> tuple[bytes, bytes]:
    """(slot, stored record) of a node. The record is the msgpack array ``[bitmap, child...]``
    with a leaf child as ``[kh, value_hash]`` and an internal child as its hash."""
    bitmap = node[_BITMAP]
    hashes = b"".join(filter(None, node[:_RECORDS]))  # skips the empty (None) slots
    node_hash = _sha256(_NODE_PREFIX + bitmap.to_bytes(2, "big") + hashes).digest()
    if bitmap < 0x80:
        bitmap_record = _BYTES[bitmap]
    elif bitmap < 0x100:
        bitmap_record = b"\xcc" + _BYTES[bitmap]
    else:
        bitmap_record = b"\xcd" + bitmap.to_bytes(2, "big")
    children = b"".join(filter(None, node[_RECORDS:_BITMAP]))
    return _BIN32 + node_hash, _RECORD_HEADS[bitmap.bit_count()] + bitmap_record + children


def _parse_node(record: bytes, path: bytes) -> Node:
    """Decode a stored record into a node. Raises StoreError ``state_node_corrupt``."""
    value = _decode_record(record, path)
    bitmap = value[0] if value else None
    if type(bitmap) is not int or not 1 <= bitmap <= 0xFFFF or bitmap.bit_count() != len(value) - 1:
        raise StoreError("state_node_corrupt", f"bad bitmap in tree node at path {path.hex()}")
    new: list[Any] = [None] * 32 + [bitmap]
    children = iter(value[1:])
    for i in range(16):
        if bitmap >> i & 1:
            child = next(children)
            if _is_hash(child):
                _set_child(new, i, _BIN32 + child)
            elif type(child) is list and len(child) == 2 and all(map(_is_hash, child)):
                _set_child(new, i, _leaf(child[0], child[1]))
            else:
                raise StoreError("state_node_corrupt", f"bad child in node at path {path.hex()}")
    return tuple(new)


def _decode_record(record: bytes, path: bytes) -> list[Any]:
    try:
        value = decode(record)
    except EncodingError as exc:
        raise StoreError("state_node_corrupt", f"tree node at {path.hex()}: {exc}") from exc
    if type(value) is not list:
        raise StoreError("state_node_corrupt", f"tree node at {path.hex()} is not an array")
    return value


def _is_hash(value: Any) -> bool:
    return type(value) is bytes and len(value) == 32


def compute_root(items: Mapping[bytes, bytes]) -> bytes:
    """The root of ``{key: value}`` computed from scratch: the reference the tests check the
    incremental tree against, written apart from it and as plainly as possible."""
    leaves = sorted(
        (hashlib.sha256(_KEY_PREFIX + k).digest(), hashlib.sha256(_VALUE_PREFIX + v).digest())
        for k, v in items.items()
    )
    return _reference_hash(leaves, 0)


def _reference_hash(leaves: list[tuple[bytes, bytes]], depth: int) -> bytes:
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return hashlib.sha256(_LEAF_PREFIX + leaves[0][0] + leaves[0][1]).digest()
    by_nibble: dict[int, list[tuple[bytes, bytes]]] = {}
    for key_hash, value_hash in leaves:
        by_nibble.setdefault(int(key_hash.hex()[depth], 16), []).append((key_hash, value_hash))
    bitmap = sum(1 << nibble for nibble in by_nibble)
    children = b"".join(_reference_hash(by_nibble[n], depth + 1) for n in sorted(by_nibble))
    return hashlib.sha256(_NODE_PREFIX + bitmap.to_bytes(2, "big") + children).digest()


def bench_tree(n_keys: int, changes_per_block: int, blocks: int) -> dict[str, float]:
    """Benchmark over a MemoryNodeSource: build a tree of ``n_keys`` by one compute_update, then
    run ``blocks`` blocks of ``changes_per_block`` changes (90% value updates of existing keys,
    5% inserts, 5% deletes), each compute_update + store write + apply; then prove and verify.

    Keys and values are derived from counters, so runs are repeatable. Only benchmarks read a
    clock, hence the local import.
    """
    import time

    def key(i: int) -> bytes:
        return b"bench/account/%d" % i

    def pick(block: int, j: int) -> int:  # a repeatable pseudo-random existing key
        return int.from_bytes(_sha256(b"%d/%d" % (block, j)).digest()[:8], "big") % n_keys

    source = MemoryNodeSource()
    tree = StateTree(source, EMPTY_ROOT)
    start = time.perf_counter()
    update = tree.compute_update({key(i): b"value-%d" % i for i in range(n_keys)})
    source.write(update.node_writes)
    tree.apply(update)
    build_s = time.perf_counter() - start

    compute_s = write_s = apply_s = 0.0
    block_ms_max = 0.0
    writes = 0
    churn = max(1, changes_per_block // 20)
    for block in range(blocks):
        changes: dict[bytes, bytes | None] = {}
        for j in range(changes_per_block - 2 * churn):
            changes[key(pick(block, j))] = b"value-%d-%d" % (block, j)
        for j in range(churn):
            changes[key(n_keys + block * churn + j)] = b"new"  # inserted here ...
            if block:
                changes[key(n_keys + (block - 1) * churn + j)] = None  # ... deleted next block
        t0 = time.perf_counter()
        update = tree.compute_update(changes)
        t1 = time.perf_counter()
        source.write(update.node_writes)
        t2 = time.perf_counter()
        tree.apply(update)
        t3 = time.perf_counter()
        compute_s, write_s, apply_s = compute_s + t1 - t0, write_s + t2 - t1, apply_s + t3 - t2
        block_ms_max = max(block_ms_max, (t3 - t0 - (t2 - t1)) * 1000)
        writes += len(update.node_writes)

    proof_keys = [key(pick(-1, j)) for j in range(1000)]
    t0 = time.perf_counter()
    proofs = [tree.prove(k).to_wire() for k in proof_keys]
    t1 = time.perf_counter()
    for k, wire in zip(proof_keys, proofs, strict=True):
        invariant(verify_proof(tree.root, k, None, wire) is False, "bench proof must be inclusion")
    t2 = time.perf_counter()

    changes_total = blocks * changes_per_block
    return {
        "n_keys": n_keys,
        "changes_per_block": changes_per_block,
        "blocks": blocks,
        "internal_nodes": len(source.nodes),
        "build_s": round(build_s, 3),
        "build_inserts_per_s": round(n_keys / build_s),
        "block_compute_update_ms_mean": round(compute_s / blocks * 1000, 2),
        "block_apply_ms_mean": round(apply_s / blocks * 1000, 3),
        "block_compute_and_apply_ms_max": round(block_ms_max, 2),
        "block_store_write_ms_mean": round(write_s / blocks * 1000, 2),
        "node_writes_per_block": round(writes / blocks),
        "updates_per_s": round(changes_total / (compute_s + apply_s)),
        "proofs_per_s": round(len(proofs) / (t1 - t0)),
        "verifies_per_s": round(len(proofs) / (t2 - t1)),
    }
