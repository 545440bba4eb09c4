"""The authenticated state tree: a sparse 16-ary Merkle trie over hashed keys, whose root is the
block header's ``state_root``.

Why this shape: the root must depend only on the set of (key, value) pairs, never on the order of
writes (history independence), so every validator derives the same root; a block's update must
cost O(k log n) hashes for k changed keys among n; and a client must be able to check one key's
value or absence with plain SHA-256 (``chain/proof.py``). Keys sit at ``kh = H("key", key)``, so
the trie stays balanced whatever the keys look like. docs/PROTOCOL.md, section 10, specifies the
bytes.

Canonical shape: an internal node at nibble prefix p exists iff at least two keys' ``kh`` start
with p; a prefix holding one key is a leaf; the empty tree's root is 32 zero bytes, and a lone
key's leaf is the root.

Execute to a diff: ``compute_update`` leaves the tree as it is (candidate blocks are computed side
by side) and returns the new root with the node writes for the store's batch; ``apply`` then makes
it current. Internal nodes are loaded lazily from a ``NodeSource``, checked against the hash their
parent holds, and kept decoded in an LRU bounded in bytes (chain/nodecache.py, ``storage.cache_mb``),
so memory no longer grows with the number of keys. A versioned store (chain/treestore.py) keeps
each node at (version, path) with its children's versions beside the record; the tree tracks
them for every node it reads, and an update says which versions it writes and which it makes
stale.

A slot (the content of one child position) is None (empty), 34 bytes (``c4 20 || hash``: an
internal child, stored at its own path) or 101 bytes (``92 c4 20 || kh || c4 20 || value_hash ||
leaf_hash``: a leaf), so each slot carries its msgpack record form and ends with its hash. In
memory a node is packed into four values: the concatenated hashes of its children, their
concatenated record forms, the bitmap and a mask of the leaf children. Sealing a node (hash and
record) is then two concatenations and one SHA-256, replacing one child is two splices, and the
cache holds few Python objects. Cached nodes are never mutated (they are immutable tuples), so
unapplied updates share them.

Why one module of more than 500 lines: the update, the proofs, the loading of stored nodes and
the node records all work on that one byte layout of slots, inlined rather than behind helpers
because this is the hot path of execution (the state tree is 15-24 % of a block's time,
docs/BENCHMARKS.md); split, the layout would be spelled in two places. The tree's own checking
and measuring tools close the module: ``compute_root``, a from-scratch reference written apart
from the incremental code, and ``bench_tree`` (``clearchain bench executor`` and
docs/BENCHMARKS.md import it from here).
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from chain.encoding import SHORT_INPUT_BYTES, decode, short_sha256
from chain.errors import EncodingError, StoreError, invariant
from chain.nodecache import NodeCache
from chain.proof import TERMINAL_ABSENT_EMPTY, TERMINAL_ABSENT_OTHER_LEAF, TERMINAL_PRESENT, verify_proof

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
_NIBBLE_PATHS: Final = [bytes((i,)) for i in range(16)]
_BYTES: Final = [bytes((i,)) for i in range(256)]
# msgpack array header for a record of n children plus the bitmap.
_RECORD_HEADS: Final = [
    bytes((0x90 | n + 1,)) if n < 15 else b"\xdc\x00" + bytes((n + 1,)) for n in range(17)
]

Slot = bytes | None
Node = tuple[bytes, bytes, int, int]  # (child hashes, child records, bitmap, leaf mask)
# A cached node: (node, the version it is stored at, its internal children's versions: u64
# big-endian each, in nibble order).
Entry = tuple[Node, int, bytes]

CACHE_BYTES_DEFAULT: Final = 64 * 1024 * 1024  # storage.cache_mb's default


class NodeSource(Protocol):
    """Where stored internal nodes are read from (the store, or a dict in tests)."""

    def get_node(self, path: bytes) -> bytes | None:
        """The serialized node at ``path`` (one nibble per byte, b"" = root), or None."""
        ...


class VersionedNodeSource(Protocol):
    """A store of versioned nodes (chain/store.py): node records keyed by (version, path), each
    with its internal children's versions beside the record (``split_stored_node``)."""

    def root_version(self) -> int | None:
        """The version of the root record of the tree this source serves (None: empty tree)."""
        ...

    def get_versioned_node(self, version: int, path: bytes) -> bytes | None:
        """The stored value of the node written at ``version`` at ``path``, or None."""
        ...


def stored_node(record: bytes, child_versions: bytes) -> bytes:
    """A versioned node's stored value: u8 count || count u64 child versions || the record. The
    versions sit outside the hashed and proved bytes (docs/PROTOCOL.md, section 10.3)."""
    return _BYTES[len(child_versions) >> 3] + child_versions + record


def split_stored_node(value: bytes) -> tuple[bytes, bytes]:
    """(record, child versions) of a stored value; raises StoreError ``state_node_corrupt``."""
    end = 1 + 8 * value[0] if value else 1
    if len(value) <= end:
        raise StoreError("state_node_corrupt", "stored tree node too short")
    return value[end:], value[1:end]


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

    For a versioned store: ``version`` is the height the new nodes are written at,
    ``child_versions`` holds each new internal node's children's versions, ``stale`` the old
    version of every node this update replaces or deletes (path -> version), and
    ``root_version`` the version of the new root record (None: the empty tree).
    """

    root: bytes
    node_writes: dict[bytes, bytes | None]
    base_root: bytes
    root_slot: Slot = field(repr=False, compare=False)
    nodes: dict[bytes, Node | None] = field(repr=False, compare=False)
    version: int = field(default=0, repr=False, compare=False)
    child_versions: dict[bytes, bytes] = field(default_factory=dict, repr=False, compare=False)
    stale: dict[bytes, int] = field(default_factory=dict, repr=False, compare=False)
    root_version: int | None = field(default=None, repr=False, compare=False)

    def stored_writes(self) -> dict[bytes, bytes]:
        """path -> stored value (``stored_node``) of every node this update writes."""
        versions = self.child_versions
        return {
            path: stored_node(record, versions.get(path, b""))
            for path, record in self.node_writes.items()
            if record is not None
        }


class _Diff:
    """The nodes an update writes (None: delete), decoded for the cache and encoded for the store."""

    __slots__ = ("nodes", "records", "seen")

    def __init__(self) -> None:
        self.nodes: dict[bytes, Node | None] = {}
        self.records: dict[bytes, bytes | None] = {}
        self.seen: dict[bytes, Entry] = {}  # the base tree's nodes read on the way

    def put(self, path: bytes, node: Node) -> bytes:
        """Record ``node`` at ``path``; return its slot."""
        slot, self.records[path] = _seal(node)
        self.nodes[path] = node
        return slot

    def drop(self, path: bytes) -> None:
        self.nodes[path] = self.records[path] = None


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
        """The plain msgpack-able form ``[steps, terminal]`` (docs/PROTOCOL.md, section 10.4)."""
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
    """A state tree at one height: its root and a byte-bounded cache of decoded internal nodes."""

    def __init__(
        self,
        source: NodeSource | VersionedNodeSource,
        root: bytes,
        *,
        height: int = 0,
        cache_bytes: int = CACHE_BYTES_DEFAULT,
    ) -> None:
        """Open the tree whose root is ``root`` (the state root after block ``height``), reading
        nodes from ``source`` on demand: by (version, path) from a VersionedNodeSource (the
        store), by path from a plain NodeSource (tests, vectors). Decoded nodes are kept in an
        LRU of at most ``cache_bytes`` (chain/nodecache.py).

        Raises StoreError ``state_node_missing`` / ``state_node_corrupt`` when the root's record
        is missing or does not hash to ``root``.
        """
        invariant(type(root) is bytes and len(root) == 32, "a state root is 32 bytes")
        self._source = source
        self._versioned = hasattr(source, "get_versioned_node")
        self._root = root
        self._height = height
        self._cache = NodeCache(cache_bytes)
        self._root_version: int | None = None
        if root != EMPTY_ROOT:
            self._root_version = source.root_version() if self._versioned else 0  # type: ignore[union-attr]
        self._root_slot = self._load_root_slot(root)

    @property
    def root(self) -> bytes:
        return self._root

    @property
    def height(self) -> int:
        return self._height

    @property
    def cache_bytes(self) -> int:
        """The bytes the node cache charges its entries (its budget bounds this)."""
        return self._cache.bytes

    @property
    def cache_entries(self) -> int:
        return len(self._cache)

    def compute_update(self, changes: Mapping[bytes, bytes | None], version: int | None = None) -> TreeUpdate:
        """The update that applies ``changes`` (key -> new value, None = delete) to this tree,
        which stays as it is (nodes read on the way are cached: that is not a change). Deleting
        an absent key, or writing a key's current value, is a no-op. Its nodes are written at
        ``version`` (default: this tree's height + 1, the next block).

        Raises StoreError when a node it needs is missing or corrupt in the source."""
        if version is None:
            version = self._height + 1
        items: list[bytes] = []
        for key, value in changes.items():
            # The type checks are inlined (invariant() called only on failure): this loop runs once
            # per changed key, and two function calls per key are measurable here.
            if type(key) is not bytes:
                invariant(False, "state keys are bytes")
            key_hash = short_sha256(_KEY_PREFIX + key).digest()
            if value is None:
                items.append(_LEAF_HEAD + key_hash)  # a deletion: 35 bytes
            else:
                if type(value) is not bytes:
                    invariant(False, "state values are bytes")
                value_sha256 = short_sha256 if len(value) < SHORT_INPUT_BYTES else _sha256
                items.append(_leaf(key_hash, value_sha256(_VALUE_PREFIX + value).digest()))
        items.sort()  # by kh, since all items start with the same three bytes
        diff = _Diff()
        old_slot = self._root_slot
        new_slot = self._update(ROOT_PATH, 0, old_slot, items, 0, len(items), diff)
        if new_slot is None and old_slot is not None:
            diff.drop(ROOT_PATH)
        elif new_slot is not None and len(new_slot) == _LEAF and new_slot != old_slot:
            # A lone key has no parent node to hold its [kh, value_hash]: record it at the root
            # path, so that a reopened tree can still prove and update it. (If the root was a
            # node, _settle has already dropped it from the cache.)
            diff.records[ROOT_PATH] = new_slot[_RECORD]
        root = EMPTY_ROOT if new_slot is None else new_slot[-32:]
        if new_slot is None:
            root_version = None
        elif ROOT_PATH in diff.records:
            root_version = version
        else:
            root_version = self._root_version
        child_versions, stale = self._versions(diff, version)
        return TreeUpdate(
            root, diff.records, self._root, new_slot, diff.nodes, version, child_versions, stale, root_version
        )

    def _versions(self, diff: _Diff, version: int) -> tuple[dict[bytes, bytes], dict[bytes, int]]:
        """The new nodes' child versions and the replaced nodes' old versions. A new node's
        internal child is new too (written at ``version``) or else unchanged, hence a child of
        the old node at the same path (there are no path-compressed edges), whose versions the
        update read on its way down."""
        seen, nodes = diff.seen, diff.nodes
        new_version = version.to_bytes(8, "big")
        # A changed internal child changes its parent: so the new nodes name their new children.
        renewed: dict[bytes, int] = {}  # path -> mask of the nibbles whose child is new
        for path, node in nodes.items():
            if node is not None and path:
                parent = path[:-1]
                renewed[parent] = renewed.get(parent, 0) | 1 << path[-1]
        child_versions: dict[bytes, bytes] = {}
        for path, node in nodes.items():
            if node is None:
                continue
            internal = node[2] & ~node[3]
            fresh = renewed.get(path, 0)
            if fresh == internal:  # every internal child is new (or there is none)
                child_versions[path] = new_version * internal.bit_count()
                continue
            old = seen.get(path)
            invariant(old is not None, "an unchanged child hangs under an old node")
            assert old is not None
            old_internal = old[0][2] & ~old[0][3]
            if old_internal == internal:  # the same children: overwrite the new ones' versions
                versions = bytearray(old[2])
                while fresh:
                    low = fresh & -fresh
                    fresh ^= low
                    rank = (internal & (low - 1)).bit_count()
                    versions[8 * rank : 8 * rank + 8] = new_version
                child_versions[path] = bytes(versions)
                continue
            parts = []
            while internal:
                low = internal & -internal
                internal ^= low
                if fresh & low:
                    parts.append(new_version)
                else:
                    rank = (old_internal & (low - 1)).bit_count()
                    parts.append(old[2][8 * rank : 8 * rank + 8])
            child_versions[path] = b"".join(parts)
        stale = {path: seen[path][1] for path in diff.records if path in seen}
        if ROOT_PATH in diff.records and ROOT_PATH not in seen and self._root_version is not None:
            stale[ROOT_PATH] = self._root_version  # the old lone-leaf record
        return child_versions, stale

    def apply(self, update: TreeUpdate) -> None:
        """Make ``update`` current (the store has written its ``node_writes``).

        Raises InvariantViolation when it was computed against another root."""
        invariant(
            update.base_root == self._root,
            f"tree update computed against root {update.base_root.hex()}, "
            f"but the current root is {self._root.hex()}",
        )
        cache, version, child_versions = self._cache, update.version, update.child_versions
        cache.put_many(
            [
                (path, None if node is None else (node, version, child_versions[path]))
                for path, node in update.nodes.items()
            ]
        )
        self._root = update.root
        self._root_slot = update.root_slot
        self._root_version = update.root_version
        self._height = version

    def prove(self, key: bytes) -> Proof:
        """An inclusion proof for ``key`` if present, else an absence proof, against the
        current root. Raises StoreError when a node on the path is missing or corrupt."""
        key_hash = short_sha256(_KEY_PREFIX + key).digest()
        nibbles = key_hash.hex()
        steps: list[tuple[int, tuple[bytes, ...]]] = []
        slot, path = self._root_slot, ROOT_PATH
        seen: dict[bytes, Entry] = {}
        while slot is not None and len(slot) == _INTERNAL:
            node = self._node(path, slot, seen)
            nibble = int(nibbles[len(path)], 16)
            hashes, _, bitmap, _ = node
            siblings = [hashes[i : i + 32] for i in range(0, len(hashes), 32)]
            if bitmap >> nibble & 1:
                del siblings[(bitmap & ((1 << nibble) - 1)).bit_count()]
            steps.append((bitmap, tuple(siblings)))
            slot, path = _child(node, nibble), path + _NIBBLE_PATHS[nibble]
        if slot is None:
            return Proof(tuple(steps), TERMINAL_ABSENT_EMPTY)
        if slot[_KH] == key_hash:
            return Proof(tuple(steps), TERMINAL_PRESENT)
        return Proof(tuple(steps), TERMINAL_ABSENT_OTHER_LEAF, slot[_KH], slot[_VH])

    def _update(
        self, path: bytes, depth: int, slot: Slot, items: list[bytes], lo: int, hi: int, diff: _Diff
    ) -> Slot:
        """The new slot at ``path`` once ``items[lo:hi]`` (all under ``path``) are applied."""
        if slot is None or len(slot) == _LEAF:
            return _merge_into_leaf(path, depth, slot, items, lo, hi, diff)
        if hi - lo == 1:
            return self._update_one(path, depth, slot, items[lo], diff)
        node = self._node(path, slot, diff.seen)
        hashes, children, bitmap, leaf_mask = node
        # Rebuild the node in one pass, in nibble order: the unchanged runs of the old buffers
        # between changed children are copied as they are (``_child``'s offsets, inlined: one
        # splice per node instead of one per changed child).
        new_hashes: list[bytes] = []
        new_children: list[bytes] = []
        h_done = c_done = 0  # how much of the old buffers is already copied or replaced
        new_bitmap, new_leaf_mask = bitmap, leaf_mask
        for nibble, group_lo, group_hi in _groups(items, lo, hi, depth):
            bit = 1 << nibble
            below = bit - 1
            rank = (bitmap & below).bit_count()
            h = 32 * rank
            c = 34 * rank + 35 * (leaf_mask & below).bit_count()
            if not bitmap & bit:
                old, h_end, c_end = None, h, c
            elif leaf_mask & bit:
                old, h_end, c_end = children[c : c + 69] + hashes[h : h + 32], h + 32, c + 69
            else:
                old, h_end, c_end = children[c : c + 34], h + 32, c + 34
            child_path = path + _NIBBLE_PATHS[nibble]
            child = self._update(child_path, depth + 1, old, items, group_lo, group_hi, diff)
            if child == old:
                continue
            new_hashes.append(hashes[h_done:h])
            new_children.append(children[c_done:c])
            h_done, c_done = h_end, c_end
            if child is None:
                new_bitmap, new_leaf_mask = new_bitmap & ~bit, new_leaf_mask & ~bit
            elif len(child) == _INTERNAL:
                new_hashes.append(child[2:])
                new_children.append(child)
                new_bitmap, new_leaf_mask = new_bitmap | bit, new_leaf_mask & ~bit
            else:
                new_hashes.append(child[69:])
                new_children.append(child[:69])
                new_bitmap, new_leaf_mask = new_bitmap | bit, new_leaf_mask | bit
        if not new_hashes:
            return slot  # only deletions of absent keys, or values rewritten unchanged
        new_hashes.append(hashes[h_done:])
        new_children.append(children[c_done:])
        return _settle(path, (b"".join(new_hashes), b"".join(new_children), new_bitmap, new_leaf_mask), diff)

    def _update_one(self, path: bytes, depth: int, slot: Slot, item: bytes, diff: _Diff) -> Slot:
        """``_update`` for a single change under an internal node, the common case in the lower
        levels: walk down to the key's slot, then settle the nodes on the way back up.

        This runs once or twice per changed key, so ``_child``'s offsets are inlined here: the
        rank and offsets of the child found on the way down serve again for the splice (the
        child's old bytes replaced by its new slot's) on the way up."""
        top = slot
        cached, seen = self._cache.get, diff.seen
        trail = []
        while slot is not None and len(slot) == _INTERNAL:
            entry = cached(path)
            if entry is None:
                node = self._node(path, slot, seen)
            else:
                seen[path] = entry
                node = entry[0]
            byte = item[3 + (depth >> 1)]
            nibble = byte & 15 if depth & 1 else byte >> 4
            hashes, children, bitmap, leaf_mask = node
            bit = 1 << nibble
            below = bit - 1
            rank = (bitmap & below).bit_count()
            h = 32 * rank
            c = 34 * rank + 35 * (leaf_mask & below).bit_count()  # a leaf record is 69 bytes
            if not bitmap & bit:
                slot = None
            elif leaf_mask & bit:
                slot = children[c : c + 69] + hashes[h : h + 32]
            else:
                slot = children[c : c + 34]
            trail.append((path, node, bit, h, c, slot))
            path += _NIBBLE_PATHS[nibble]
            depth += 1
        if slot is None or item[:35] == slot[:35]:  # _merge_into_leaf's common case
            new = item if len(item) == _LEAF else None
        else:
            new = _merge_into_leaf(path, depth, slot, [item], 0, 1, diff)
        for path, (hashes, children, bitmap, leaf_mask), bit, h, c, old in reversed(trail):
            if new == old:
                return top  # nothing changed below, hence nothing above
            if old is None:
                h_end, c_end = h, c
            else:
                h_end, c_end = h + 32, c + (34 if len(old) == _INTERNAL else 69)
            if new is None:
                hashes, children = hashes[:h] + hashes[h_end:], children[:c] + children[c_end:]
                bitmap, leaf_mask = bitmap & ~bit, leaf_mask & ~bit
            elif len(new) == _INTERNAL:
                hashes, children = (
                    hashes[:h] + new[2:] + hashes[h_end:],
                    children[:c] + new + children[c_end:],
                )
                bitmap, leaf_mask = bitmap | bit, leaf_mask & ~bit
            else:
                hashes = hashes[:h] + new[69:] + hashes[h_end:]
                children = children[:c] + new[:69] + children[c_end:]
                bitmap, leaf_mask = bitmap | bit, leaf_mask | bit
            new = _settle(path, (hashes, children, bitmap, leaf_mask), diff)
        return new

    def _node(self, path: bytes, expected: bytes, seen: dict[bytes, Entry]) -> Node:
        """The node at ``path`` from the cache, else from the source, checked against the slot
        ``expected`` its parent holds; noted in ``seen``, where its parent already is (walks go
        top-down), which gives the version to read it at. Raises StoreError."""
        entry = self._cache.get(path)
        if entry is None:
            if path == ROOT_PATH:
                version = self._root_version
                assert version is not None
            else:
                parent, _, versions = seen[path[:-1]]
                rank = (parent[2] & ~parent[3] & ((1 << path[-1]) - 1)).bit_count()
                version = int.from_bytes(versions[8 * rank : 8 * rank + 8], "big")
            entry = self._load(path, version, expected)
        seen[path] = entry
        return entry[0]

    def _read(self, path: bytes, version: int) -> tuple[bytes, bytes | None] | None:
        """(record, child versions; None from an unversioned source) of a stored node."""
        if self._versioned:
            value = self._source.get_versioned_node(version, path)  # type: ignore[union-attr]
            return None if value is None else split_stored_node(value)
        record = self._source.get_node(path)  # type: ignore[union-attr]
        return None if record is None else (record, None)

    def _load(
        self,
        path: bytes,
        version: int,
        expected: bytes,
        read: tuple[bytes, bytes | None] | None = None,
        value: list[Any] | None = None,
    ) -> Entry:
        """Read (unless ``read`` is given), check and cache the node at (``version``, ``path``)."""
        found = self._read(path, version) if read is None else read
        if found is None:
            raise StoreError("state_node_missing", f"no tree node at path {path.hex()} (version {version})")
        node = _checked_node(found[0], path, expected, value)
        versions = found[1]
        internal = (node[2] & ~node[3]).bit_count()
        if versions is None:
            versions = bytes(8 * internal)
        elif len(versions) != 8 * internal:
            raise StoreError("state_node_corrupt", f"tree node at path {path.hex()}: wrong child versions")
        entry = (node, version, versions)
        self._cache.put(path, entry)
        return entry

    def _load_root_slot(self, root: bytes) -> Slot:
        if root == EMPTY_ROOT:
            return None
        version = self._root_version
        found = None if version is None else self._read(ROOT_PATH, version)
        if found is None or version is None:
            raise StoreError("state_node_missing", f"no root record for state root {root.hex()}")
        value = _decode_record(found[0], ROOT_PATH)
        if len(value) == 2 and _is_hash(value[0]) and _is_hash(value[1]):
            leaf = _leaf(value[0], value[1])  # the lone-leaf record
            if leaf[-32:] != root:
                raise StoreError("state_node_corrupt", f"lone leaf does not hash to {root.hex()}")
            return leaf
        slot = _BIN32 + root
        self._load(ROOT_PATH, version, slot, found, value)
        return slot


def _leaf(key_hash: bytes, value_hash: bytes) -> bytes:
    leaf_hash = short_sha256(_LEAF_PREFIX + key_hash + value_hash).digest()
    return _LEAF_HEAD + key_hash + _BIN32 + value_hash + leaf_hash


def _merge_into_leaf(
    path: bytes, depth: int, slot: Slot, items: list[bytes], lo: int, hi: int, diff: _Diff
) -> Slot:
    """The new slot where the old one is empty or a leaf: rebuilt from the surviving keys."""
    if hi - lo == 1:  # the common case at the bottom of the tree
        item = items[lo]
        if slot is None or item[:35] == slot[:35]:
            return item if len(item) == _LEAF else None
        if len(item) != _LEAF:
            return slot  # the deletion of another, absent key
        leaves = [slot, item] if slot < item else [item, slot]
        return _build(path, depth, leaves, 0, 2, diff)
    leaves = [item for item in items[lo:hi] if len(item) == _LEAF]
    if slot is not None:
        pos = bisect_left(items, slot[:35], lo, hi)
        if pos == hi or items[pos][:35] != slot[:35]:
            insort(leaves, slot)  # the old key is not among the changes: it stays
    if not leaves:
        return None
    return _build(path, depth, leaves, 0, len(leaves), diff)


def _build(path: bytes, depth: int, leaves: list[bytes], lo: int, hi: int, diff: _Diff) -> bytes:
    """The slot of a subtree built afresh from the sorted ``leaves[lo:hi]`` (at least one)."""
    if hi - lo == 1:
        return leaves[lo]
    children = []
    for nibble, group_lo, group_hi in _groups(leaves, lo, hi, depth):
        child_path = path + _NIBBLE_PATHS[nibble]
        children.append((nibble, _build(child_path, depth + 1, leaves, group_lo, group_hi, diff)))
    return diff.put(path, _pack(children))


def _settle(path: bytes, node: Node, diff: _Diff) -> Slot:
    """Record a changed node and return its slot, collapsing it when it no longer holds two
    keys: with no child it goes, and a lone leaf child moves up in its place."""
    hashes, children, bitmap, leaf_mask = node
    if bitmap & (bitmap - 1) == 0 and (bitmap == 0 or leaf_mask):
        diff.drop(path)
        return children + hashes if bitmap else None  # a leaf's record form, then its hash
    return diff.put(path, node)


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


def _child(node: Node, nibble: int) -> Slot:
    """The slot at ``nibble`` of a packed node."""
    hashes, children, bitmap, leaf_mask = node
    bit = 1 << nibble
    if not bitmap & bit:
        return None
    rank = (bitmap & (bit - 1)).bit_count()
    offset = 34 * rank + 35 * (leaf_mask & (bit - 1)).bit_count()  # a leaf record is 69 bytes
    if leaf_mask & bit:
        return children[offset : offset + 69] + hashes[32 * rank : 32 * rank + 32]
    return children[offset : offset + 34]


def _pack(slots: list[tuple[int, bytes]]) -> Node:
    """A node from its present ``(nibble, slot)`` pairs in ascending nibble order."""
    bitmap = leaf_mask = 0
    for nibble, slot in slots:
        bitmap |= 1 << nibble
        if len(slot) == _LEAF:
            leaf_mask |= 1 << nibble
    hashes = b"".join([slot[-32:] for _, slot in slots])
    children = b"".join([slot if len(slot) == _INTERNAL else slot[_RECORD] for _, slot in slots])
    return hashes, children, bitmap, leaf_mask


def _seal(node: Node) -> tuple[bytes, bytes]:
    """(slot, stored record) of a node. The record is the msgpack array ``[bitmap, child...]``
    with a leaf child as ``[kh, value_hash]`` and an internal child as its hash."""
    hashes, children, bitmap, _ = node
    node_hash = _sha256(_NODE_PREFIX + bitmap.to_bytes(2, "big") + hashes).digest()
    if bitmap < 0x80:  # msgpack's shortest unsigned integer forms
        bitmap_record = _BYTES[bitmap]
    elif bitmap < 0x100:
        bitmap_record = b"\xcc" + _BYTES[bitmap]
    else:
        bitmap_record = b"\xcd" + bitmap.to_bytes(2, "big")
    return _BIN32 + node_hash, _RECORD_HEADS[bitmap.bit_count()] + bitmap_record + children


def _checked_node(record: bytes, path: bytes, expected: bytes, value: list[Any] | None = None) -> Node:
    """The node a stored record holds, checked against the slot its parent holds. Raises
    StoreError ``state_node_corrupt``."""
    node = _parse_node(_decode_record(record, path) if value is None else value, path)
    found = _seal(node)[0]
    if found != expected:
        raise StoreError(
            "state_node_corrupt",
            f"tree node at path {path.hex()} hashes to {found[2:].hex()}, its parent holds {expected[2:].hex()}",
        )
    return node


def _parse_node(value: list[Any], path: bytes) -> Node:
    """The node a decoded record holds. Raises StoreError ``state_node_corrupt``."""
    bitmap = value[0] if value else None
    if type(bitmap) is not int or not 1 <= bitmap <= 0xFFFF or bitmap.bit_count() != len(value) - 1:
        raise StoreError("state_node_corrupt", f"bad bitmap in tree node at path {path.hex()}")
    slots = []
    children = iter(value[1:])
    for nibble in range(16):
        if bitmap >> nibble & 1:
            child = next(children)
            if _is_hash(child):
                slots.append((nibble, _BIN32 + child))
            elif type(child) is list and len(child) == 2 and all(map(_is_hash, child)):
                slots.append((nibble, _leaf(child[0], child[1])))
            else:
                raise StoreError("state_node_corrupt", f"bad child in node at path {path.hex()}")
    return _pack(slots)


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


def check_stored_node(value: bytes, path: bytes, expected: bytes) -> list[tuple[int, bytes, bytes]]:
    """Check a versioned store's value at ``path`` against the hash its parent (or the root
    index) gives; return its internal children as (version, child path). A lone-leaf record
    checks against its leaf hash. Raises StoreError ``state_node_corrupt``."""
    record, versions = split_stored_node(value)
    fields = _decode_record(record, path)
    if path == ROOT_PATH and len(fields) == 2 and _is_hash(fields[0]) and _is_hash(fields[1]):
        if _leaf(fields[0], fields[1])[-32:] != expected:
            raise StoreError("state_node_corrupt", f"lone leaf does not hash to {expected.hex()}")
        return []
    node = _checked_node(record, path, _BIN32 + expected, fields)
    hashes, _, bitmap, leaf_mask = node
    internal = bitmap & ~leaf_mask
    if len(versions) != 8 * internal.bit_count():
        raise StoreError("state_node_corrupt", f"tree node at path {path.hex()}: wrong child versions")
    children, rank, index = [], 0, 0
    for nibble in range(16):
        if bitmap >> nibble & 1:
            if internal >> nibble & 1:
                version = int.from_bytes(versions[8 * rank : 8 * rank + 8], "big")
                children.append((version, path + _NIBBLE_PATHS[nibble], hashes[32 * index : 32 * index + 32]))
                rank += 1
            index += 1
    return children


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
    """Benchmark over a MemoryNodeSource: build a tree of ``n_keys`` keys by one compute_update,
    then run ``blocks`` blocks of ``changes_per_block`` changes each (about 90% value updates of
    random existing keys, 5% inserts, 5% deletes): compute_update, store write, apply (a block's
    time is compute_update + apply, the store write excluded). Then prove and verify 1,000 keys. Keys derive from counters, so runs repeat; only benchmarks read a
    clock, hence the local import."""
    import time

    def key(i: int) -> bytes:
        return b"bench/account/%d" % i

    source, clock = MemoryNodeSource(), time.perf_counter
    tree = StateTree(source, EMPTY_ROOT)
    start = clock()
    update = tree.compute_update({key(i): b"balance-%d" % i for i in range(n_keys)})
    source.write(update.node_writes)
    tree.apply(update)
    build_s = clock() - start
    churn = changes_per_block // 20
    compute_s = apply_s = 0.0
    writes, block_ms, last = 0, [], {}
    for block in range(blocks):
        changes: dict[bytes, bytes | None] = {}
        for j in range(changes_per_block - 2 * churn):
            digest = _sha256(b"%d/%d" % (block, j)).digest()
            changes[key(int.from_bytes(digest[:8], "big") % n_keys)] = b"balance-%d-%d" % (block, j)
        for j in range(churn):  # keys inserted in one block are deleted in the next
            changes[key(n_keys + block * churn + j)] = b"new"
            if block:
                changes[key(n_keys + (block - 1) * churn + j)] = None
        t0 = clock()
        update = tree.compute_update(changes)
        t1 = clock()
        source.write(update.node_writes)
        t2 = clock()
        tree.apply(update)
        t3 = clock()
        compute_s, apply_s = compute_s + t1 - t0, apply_s + t3 - t2
        block_ms.append((t1 - t0 + t3 - t2) * 1000)
        writes, last = writes + len(update.node_writes), changes
    present = [(k, v) for k, v in last.items() if v is not None][:1000]
    t0 = clock()
    proofs = [tree.prove(k).to_wire() for k, _ in present]
    t1 = clock()
    verified = sum(verify_proof(tree.root, k, v, p) for (k, v), p in zip(present, proofs, strict=True))
    t2 = clock()
    invariant(verified == len(present), "every benchmark proof must verify")
    return {
        "n_keys": n_keys,
        "changes_per_block": changes_per_block,
        "blocks": blocks,
        "stored_nodes": len(source.nodes),
        "build_s": round(build_s, 2),
        "build_inserts_per_s": round(n_keys / build_s),
        "block_compute_update_ms": round(compute_s / blocks * 1000, 1),
        "block_apply_ms": round(apply_s / blocks * 1000, 2),
        "block_ms_median": round(sorted(block_ms)[len(block_ms) // 2], 1),
        "block_ms_worst": round(max(block_ms), 1),
        "node_writes_per_block": round(writes / blocks),
        "updates_per_s": round(blocks * changes_per_block / (compute_s + apply_s)),
        "proofs_per_s": round(len(proofs) / (t1 - t0)),
        "cache_bytes": tree.cache_bytes,
        "cache_entries": tree.cache_entries,
        "verifies_per_s": round(len(proofs) / (t2 - t1)),
    }
