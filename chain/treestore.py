"""The state tree's versions on disk: nodes keyed by (version, nibble path), a root index per
height, a stale-node index, and the pruner that uses it.

Why versioned keys (as Aptos's Jellyfish Merkle tree does): a node written by block V is stored at
``tn/<V u64 BE><path>`` and never overwritten, so every retained height's tree stays whole while
newer blocks commit, and a view opened at an older height is consistent without a lock. A stored
node carries its internal children's versions beside the protocol record (outside the hashed
bytes, ``chain.statetree.stored_node``), so reading a child is one exact get, never a scan.

Each block's batch also writes ``tr/<V>`` (that height's root: the root record's version and
the state root) and, for each node it replaces or deletes, ``ts/<V><old version><path>``: the
old node is part of the trees of heights old version .. V-1 only. The pruner deletes such a node
once every height below V is pruned, with its index entry, in one atomic batch; heights below
``meta/pruned_below`` are gone, and reading them raises StoreError ``height_pruned``.

Crash safety: a pruning batch advances ``meta/pruned_below`` before (or with) deleting anything
a height below it needed, and never deletes a node a height at or above it needs, so a store cut
off between any two batches opens and proves at every height it still calls retained.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, Protocol

from chain.errors import StoreError, invariant
from chain.statetree import CACHE_BYTES_DEFAULT, EMPTY_ROOT, StateTree, TreeUpdate, check_stored_node

NODE_PREFIX: Final = b"tn/"
ROOT_PREFIX: Final = b"tr/"
STALE_PREFIX: Final = b"ts/"
PRUNED_BELOW_KEY: Final = b"meta/pruned_below"
# The stale-since height of the last index entry pruned: scans start there, not at ts/'s first
# key, so they do not walk the deletion markers LevelDB keeps until it compacts them.
PRUNE_CURSOR_KEY: Final = b"meta/prune_cursor"
PRUNE_BATCH_MAX_DEFAULT: Final = 10_000  # storage.prune_batch_max's default
KEEP_VERSIONS_DEFAULT: Final = 20_000  # storage.keep_versions's default


class TreeBackend(Protocol):
    """The part of chain.store.KVBackend the tree's versions need."""

    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None: ...


def _u64(value: int) -> bytes:
    return value.to_bytes(8, "big")


def tree_puts(update: TreeUpdate, height: int) -> dict[bytes, bytes]:
    """The store writes of block ``height``'s tree update: its new nodes, its stale-node index
    entries and its root index entry."""
    invariant(update.version == height, f"tree update for version {update.version} written at {height}")
    version = _u64(height)
    puts = {NODE_PREFIX + version + path: value for path, value in update.stored_writes().items()}
    for path, old in update.stale.items():
        puts[STALE_PREFIX + version + _u64(old) + path] = b""
    puts[ROOT_PREFIX + version] = root_entry(update.root_version, update.root)
    return puts


def root_entry(root_version: int | None, root: bytes) -> bytes:
    """A ``tr/`` value: empty for the empty tree, else root record version u64 || state root."""
    return b"" if root_version is None else _u64(root_version) + root


def pruned_below(backend: TreeBackend) -> int:
    """The lowest height whose tree is retained (0 until the pruner first runs)."""
    value = backend.get(PRUNED_BELOW_KEY)
    return 0 if value is None else int.from_bytes(value, "big")


def _root_of(backend: TreeBackend, height: int) -> tuple[int | None, bytes]:
    """(root record version, state root) of ``height``. Raises StoreError ``height_pruned`` or
    ``state_node_missing``."""
    value = backend.get(ROOT_PREFIX + _u64(height))
    if value is None:
        if height < pruned_below(backend):
            raise StoreError("height_pruned", f"the state tree at height {height} is pruned")
        raise StoreError("state_node_missing", f"no state root recorded for height {height}")
    if not value:
        return None, EMPTY_ROOT
    if len(value) != 40:
        raise StoreError("state_node_corrupt", f"bad root index entry at height {height}")
    return int.from_bytes(value[:8], "big"), value[8:]


class TreeView:
    """The nodes of the tree at one height (a VersionedNodeSource): versioned keys are never
    overwritten, so this view stays consistent while newer blocks commit, until the pruner
    reaches its height (then reads raise ``height_pruned``)."""

    def __init__(self, backend: TreeBackend, height: int) -> None:
        self._backend = backend
        self.height = height
        self.version, self.root = _root_of(backend, height)

    def root_version(self) -> int | None:
        return self.version

    def get_versioned_node(self, version: int, path: bytes) -> bytes | None:
        value = self._backend.get(NODE_PREFIX + _u64(version) + path)
        if value is None and self.height < pruned_below(self._backend):
            raise StoreError("height_pruned", f"the state tree at height {self.height} is pruned")
        return value


def open_tree(backend: TreeBackend, height: int, cache_bytes: int = CACHE_BYTES_DEFAULT) -> StateTree:
    """The state tree after block ``height``, for reads and proofs. Raises StoreError
    ``height_pruned`` when that height is pruned."""
    if height < pruned_below(backend):
        raise StoreError("height_pruned", f"the state tree at height {height} is pruned")
    view = TreeView(backend, height)
    return StateTree(view, view.root, height=height, cache_bytes=cache_bytes)


def check_retained_trees(backend: TreeBackend, head: int) -> int:
    """Walk the tree of every retained height up to ``head`` by exact gets, checking each node
    against the hash its parent holds (the root against ``tr/``'s state root); a node shared by
    several heights is checked once. Returns the number of nodes checked. Raises StoreError
    (``state_node_missing``, ``state_node_corrupt``) naming the height and path."""
    checked: set[bytes] = set()
    for height in range(pruned_below(backend), head + 1):
        version, root = _root_of(backend, height)
        todo = [] if version is None else [(version, b"", root)]
        while todo:
            version, path, expected = todo.pop()
            key = NODE_PREFIX + _u64(version) + path
            if key in checked:
                continue
            value = backend.get(key)
            try:
                if value is None:
                    raise StoreError("state_node_missing", f"no tree node at path {path.hex()}")
                todo.extend(check_stored_node(value, path, expected))
            except StoreError as exc:
                raise StoreError(exc.code, f"height {height}, version {version}: {exc.message}") from exc
            checked.add(key)
    return len(checked)


def root_at(backend: TreeBackend, height: int) -> bytes:
    """The state root ``tr/`` records for ``height``. Raises StoreError like ``open_tree``."""
    return _root_of(backend, height)[1]


@dataclass(frozen=True, slots=True)
class PruneReport:
    pruned_below: int  # the lowest retained height after this run
    nodes_deleted: int
    roots_deleted: int


def prune(
    backend: TreeBackend, head: int, keep_versions: int, batch_max: int = PRUNE_BATCH_MAX_DEFAULT
) -> PruneReport:
    """One bounded pruning run: keep the trees of the last ``keep_versions`` heights up to
    ``head``. Moves ``meta/pruned_below`` up by at most ``batch_max`` heights and deletes at most
    ``batch_max`` stale nodes (with their index entries) in one atomic batch; call it again
    (after the next block) to go on."""
    invariant(keep_versions >= 1 and batch_max >= 1, "pruning keeps at least one version")
    below = pruned_below(backend)
    target = max(below, min(head - keep_versions + 1, below + batch_max))
    deletes = [ROOT_PREFIX + _u64(h) for h in range(below, target)]
    nodes = 0
    cursor = backend.get(PRUNE_CURSOR_KEY) or b""
    last = cursor
    for key, _ in backend.scan(STALE_PREFIX, cursor):
        # A node stale since V is in the trees of heights < V only: gone once V <= target.
        if nodes >= batch_max or int.from_bytes(key[3:11], "big") > target:
            break
        deletes.append(NODE_PREFIX + key[11:])
        deletes.append(key)
        last = key[3:11]
        nodes += 1
    puts = {PRUNED_BELOW_KEY: _u64(target)} if target != below else {}
    if last != cursor:
        puts[PRUNE_CURSOR_KEY] = last
    if puts or deletes:
        backend.write(puts, deletes)
    return PruneReport(target, nodes, target - below)
