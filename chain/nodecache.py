"""A least-recently-used cache of decoded state-tree nodes, bounded in bytes.

Why bytes and not entries: a full 16-way node holds about 1 KB of hashes and records, a node
near the leaves a tenth of that, so a bound on entries would be a bound on nothing an operator
can plan for. Each entry ``(node, version, child versions)`` is charged its payload (the node's
child hashes and records, the child versions and its path) plus ``ENTRY_OVERHEAD_BYTES``, the
Python objects around them (the tuples, the bytes and int headers, the ordered dict's slot and
links), measured with tracemalloc on 20,000 entries: about 400 bytes (docs/DECISIONS.md,
"Issue 19"). The charge is recomputed from the entry when it leaves, so an entry is stored as it
is, with no wrapper: fewer objects for the garbage collector to walk on every block.

The cache only ever holds copies of what the store holds: evicting an entry costs one re-read
and one re-hash of that node, never a wrong answer. Entries are immutable tuples, so an update
computed but not yet applied keeps the nodes it read alive by itself.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final

ENTRY_OVERHEAD_BYTES: Final = 400

# (node: (child hashes, child records, bitmap, leaf mask), version, child versions)
CacheEntry = tuple[tuple[bytes, bytes, int, int], int, bytes]


def entry_bytes(path: bytes, entry: CacheEntry) -> int:
    """What the cache charges for ``entry`` at ``path``."""
    node = entry[0]
    return len(node[0]) + len(node[1]) + len(entry[2]) + len(path) + ENTRY_OVERHEAD_BYTES


class NodeCache:
    """path -> decoded node entry, evicting the least recently used past ``budget_bytes``."""

    __slots__ = ("_entries", "budget_bytes", "bytes")

    def __init__(self, budget_bytes: int) -> None:
        self._entries: OrderedDict[bytes, CacheEntry] = OrderedDict()
        self.budget_bytes = budget_bytes
        self.bytes = 0  # the sum of the entries' charges

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: bytes) -> CacheEntry | None:
        entry = self._entries.get(path)
        if entry is not None:
            self._entries.move_to_end(path)
        return entry

    def put(self, path: bytes, entry: CacheEntry) -> None:
        """Hold ``entry`` at ``path`` as the most recent; evict past the budget."""
        self.put_many([(path, entry)])

    def put_many(self, items: list[tuple[bytes, Any]]) -> None:
        """``put`` (or ``pop``, for None) of many entries in order, then one eviction pass. This
        is ``StateTree.apply``'s path, which holds every node a block wrote."""
        entries = self._entries
        pop = entries.pop
        added = 0
        for path, entry in items:
            old = pop(path, None)
            if old is not None:
                node = old[0]
                added -= len(node[0]) + len(node[1]) + len(old[2]) + len(path) + ENTRY_OVERHEAD_BYTES
            if entry is not None:
                entries[path] = entry
                node = entry[0]
                added += len(node[0]) + len(node[1]) + len(entry[2]) + len(path) + ENTRY_OVERHEAD_BYTES
        self.bytes += added
        popitem = entries.popitem
        while self.bytes > self.budget_bytes and entries:
            path, evicted = popitem(last=False)
            self.bytes -= entry_bytes(path, evicted)

    def pop(self, path: bytes) -> None:
        self.put_many([(path, None)])
