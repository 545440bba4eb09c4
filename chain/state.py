"""Block state: a write overlay over committed state, with a per-transaction journal.

Executing a block never writes the store. Reads fall through to the committed state; writes go to
the overlay. Each transaction (and each scheduled task) runs inside ``begin`` / ``commit_tx`` or
``rollback_tx``; a savepoint inside one lets a batch undo a single trade. At the end the block's
changes come out as a *diff* (key -> canonical bytes, or None for a delete), from which the state
root is computed and which the store writes in one batch.

Values are kept decoded as immutable tuples (msgpack arrays decode to tuples here), so a contract
cannot alter a cached value in place behind the journal's back; ``put`` encodes, and so checks,
the value at once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol

import msgpack

from chain.encoding import encode
from chain.errors import invariant

_MISSING = object()


class StateReader(Protocol):
    """Committed state: canonical value bytes by key, and ordered prefix scans."""

    def get_state(self, key: bytes) -> bytes | None: ...

    def iterate_state(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]: ...


def decode_value(data: bytes) -> Any:
    """Decode a stored state value (written canonically by this code) as immutable tuples."""
    return msgpack.unpackb(data, raw=False, use_list=False)


def _is_flat_immutable(value: Any) -> bool:
    """Whether ``value`` is already what decoding its encoding gives: an int (a nonce, a
    counter) or a plain tuple of two ints (a balance), the values written once per trade. Any
    other value is copied by a decode, which costs more than this test saves on these."""
    kind = type(value)
    return kind is int or (
        kind is tuple and len(value) == 2 and type(value[0]) is int and type(value[1]) is int
    )


class BlockState:
    """The overlay one block executes against."""

    __slots__ = ("_base", "_cache", "_writes", "_journal")

    def __init__(self, base: StateReader) -> None:
        self._base = base
        # key -> decoded value or None (absent); read cache and written values alike
        self._cache: dict[bytes, Any] = {}
        # key -> encoded bytes or None (delete): what the block changed
        self._writes: dict[bytes, bytes | None] = {}
        # (key, previous cache entry, previous write entry) for the open transaction
        self._journal: list[tuple[bytes, Any, Any]] | None = None

    # --- reads and writes -------------------------------------------------------------------
    def get(self, key: bytes) -> Any:
        """The value at ``key`` (tuples for arrays), or None if absent."""
        try:
            return self._cache[key]
        except KeyError:
            pass
        data = self._base.get_state(key)
        value = None if data is None else decode_value(data)
        self._cache[key] = value
        return value

    def put(self, key: bytes, value: Any) -> None:
        """Set ``key`` to ``value``. Raises EncodingError for a value that cannot be encoded."""
        data = encode(value)
        self._record(key)
        if not _is_flat_immutable(value):
            # Decoding what was just encoded is the fastest way to an immutable copy (C, not Python).
            value = msgpack.unpackb(data, raw=False, use_list=False)
        self._cache[key] = value
        self._writes[key] = data

    def delete(self, key: bytes) -> None:
        self._record(key)
        self._cache[key] = None
        self._writes[key] = None

    def iterate(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, Any]]:
        """Present (key, value) pairs under ``prefix`` from ``prefix + start`` on, in key order,
        overlay merged over base.

        Callers bound how many they consume; the overlay part costs O(changed keys).
        """
        low = prefix + start
        overlay = sorted(k for k in self._writes if k.startswith(prefix) and k >= low)
        base = self._base.iterate_state(prefix, start) if start else self._base.iterate_state(prefix)
        pending = next(base, None)
        i = 0
        while pending is not None or i < len(overlay):
            if pending is not None and (i == len(overlay) or pending[0] < overlay[i]):
                key = pending[0]
                if key not in self._writes:
                    yield key, self.get(key)
                pending = next(base, None)
                continue
            key = overlay[i]
            i += 1
            if pending is not None and pending[0] == key:
                pending = next(base, None)
            value = self._cache[key]
            if value is not None:
                yield key, value

    # --- the journal ------------------------------------------------------------------------
    def _record(self, key: bytes) -> None:
        journal = self._journal
        invariant(journal is not None, "state written outside a transaction")
        assert journal is not None
        journal.append((key, self._cache.get(key, _MISSING), self._writes.get(key, _MISSING)))

    def begin(self) -> None:
        invariant(self._journal is None, "nested transaction")
        self._journal = []

    def savepoint(self) -> int:
        invariant(self._journal is not None, "savepoint outside a transaction")
        assert self._journal is not None
        return len(self._journal)

    def rollback_to(self, savepoint: int) -> None:
        """Undo every write since ``savepoint`` (newest first)."""
        journal = self._journal
        assert journal is not None
        while len(journal) > savepoint:
            key, cached, written = journal.pop()
            if cached is _MISSING:
                self._cache.pop(key, None)
            else:
                self._cache[key] = cached
            if written is _MISSING:
                self._writes.pop(key, None)
            else:
                self._writes[key] = written

    def commit_tx(self) -> None:
        invariant(self._journal is not None, "commit outside a transaction")
        self._journal = None

    def rollback_tx(self) -> None:
        self.rollback_to(0)
        self._journal = None

    # --- the result -------------------------------------------------------------------------
    def diff(self) -> dict[bytes, bytes | None]:
        """Every key this block changed, with its new bytes or None for a delete."""
        invariant(self._journal is None, "diff taken inside a transaction")
        return dict(self._writes)
