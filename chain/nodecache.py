"""A least-recently-used cache of decoded state-tree nodes, bounded in bytes.

Why bytes and not entries: a full 16-way node holds about 1 KB of hashes and records, a node
near the leaves a tenth of that, so a bound on entries would be a bound on nothing an operator
can plan for. Each entry is charged its payload (the bytes objects it holds, and its path) plus
``ENTRY_OVERHEAD_BYTES``, the Python objects around them (the entry tuples, the bytes and int
headers, the ordered dict's slot and links), measured with tracemalloc on 20,000 entries: about
400 bytes (docs/DECISIONS.md, "Issue 19: versioned state tree").

The cache only ever holds copies of what the store holds: evicting an entry costs one re-read
and one re-hash of that node, never a wrong answer. Entries are immutable tuples, so an update
computed but not yet applied keeps the nodes it read alive by itself.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Final, Generic, TypeVar

ENTRY_OVERHEAD_BYTES: Final = 400

V = TypeVar("V")


class NodeCache(Generic[V]):
    """path -> decoded node, evicting the least recently used entries past ``budget_bytes``."""

    __slots__ = ("_entries", "budget_bytes", "bytes")

    def __init__(self, budget_bytes: int) -> None:
        self._entries: OrderedDict[bytes, tuple[V, int]] = OrderedDict()
        self.budget_bytes = budget_bytes
        self.bytes = 0  # the sum of the entries' charged sizes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, path: bytes) -> V | None:
        entry = self._entries.get(path)
        if entry is None:
            return None
        self._entries.move_to_end(path)
        return entry[0]

    def put(self, path: bytes, value: V, payload_bytes: int) -> None:
        """Hold ``value`` at ``path``, charged ``payload_bytes`` plus the fixed overhead; evict
        the least recently used entries until the cache fits its budget again."""
        entries = self._entries
        size = payload_bytes + len(path) + ENTRY_OVERHEAD_BYTES
        old = entries.pop(path, None)
        if old is not None:
            self.bytes -= old[1]
        entries[path] = (value, size)
        self.bytes += size
        while self.bytes > self.budget_bytes and entries:
            _, (_, evicted) = entries.popitem(last=False)
            self.bytes -= evicted

    def put_many(self, items: list[tuple[bytes, Any]]) -> None:
        """``put`` (or ``pop``, for None) of many decoded nodes ``(hashes, records, ...), ...``,
        charged len(hashes) + len(records) + len(the last field); one eviction pass at the end.
        This is ``StateTree.apply``'s path, which holds every node a block wrote."""
        entries = self._entries
        pop = entries.pop
        added = 0
        for path, value in items:
            old = pop(path, None)
            if old is not None:
                added -= old[1]
            if value is not None:
                node = value[0]
                size = len(node[0]) + len(node[1]) + len(value[-1]) + len(path) + ENTRY_OVERHEAD_BYTES
                entries[path] = (value, size)
                added += size
        self.bytes += added
        while self.bytes > self.budget_bytes and entries:
            _, (_, evicted) = entries.popitem(last=False)
            self.bytes -= evicted

    def pop(self, path: bytes) -> None:
        old = self._entries.pop(path, None)
        if old is not None:
            self.bytes -= old[1]
