"""The block store: blocks, commit certificates, receipts, the tx index, state and state-tree
nodes, behind one key-value backend.

A block reaches the disk in exactly one write batch holding the block, its certificate, its
receipts, its tx index entries, its state diff, its tree-node changes and the new head pointer,
written with sync. LevelDB applies a batch atomically, so after a crash the store holds the last
whole block and nothing of the next.

Layout (all integers u64 big-endian, so keys sort by height)::

    meta/format -> u64 (STORE_FORMAT: the layout below, written with genesis)
    meta/chain_id, meta/genesis_hash, meta/head -> [height, block hash]
    blk/<height>   -> block            cert/<height> -> commit certificate (absent at genesis)
    rcpt/<height>  -> [receipt, ...]   bhash/<hash>  -> height
    txi/<tx hash>  -> [height, index]  st/<state key> -> value
    vset/<validators hash> -> [[pubkey, power, name], ...]   (every set that signed a block)
    tn/<version><nibble path> -> u8 n || n u64 child versions || tree node record
    tr/<height>    -> root record version || state root (empty: the empty tree)
    ts/<height><old version><nibble path> -> empty (that node was replaced or deleted at height)
    meta/pruned_below -> u64 (lowest height whose tree is kept; absent: 0)
    meta/prune_cursor -> u64 (stale-since height of the last ts/ entry pruned)

The tree's keys and the pruner are chain/treestore.py's (docs/ARCHITECTURE.md, "Store layout").
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Protocol

from chain.block import Block, Header
from chain.certificate import CommitCertificate
from chain.encoding import decode, encode, encode_joined
from chain.errors import StoreError, invariant
from chain.limits import STATE_CACHE_ENTRIES_MAX
from chain.receipt import Receipt
from chain.statetree import CACHE_BYTES_DEFAULT, StateTree, TreeUpdate
from chain.treestore import NODE_PREFIX as NODE_PREFIX  # the tree's keys, re-exported
from chain.treestore import (
    PRUNE_BATCH_MAX_DEFAULT,
    PruneReport,
    open_tree,
    prune,
    pruned_below,
    tree_puts,
)
from chain.treestore import PRUNED_BELOW_KEY as PRUNED_BELOW_KEY
from chain.treestore import ROOT_PREFIX as ROOT_PREFIX
from chain.treestore import STALE_PREFIX as STALE_PREFIX
from chain.validators import Validator, ValidatorSet

# The layout above, spelled once: other modules (the auditor) use these names, never the bytes.
FORMAT_KEY = b"meta/format"
HEAD_KEY = b"meta/head"
CHAIN_ID_KEY = b"meta/chain_id"
GENESIS_HASH_KEY = b"meta/genesis_hash"
BLOCK_PREFIX = b"blk/"
CERTIFICATE_PREFIX = b"cert/"
RECEIPTS_PREFIX = b"rcpt/"
BLOCK_HASH_PREFIX = b"bhash/"
TX_INDEX_PREFIX = b"txi/"
STATE_PREFIX = b"st/"
VALIDATOR_SET_PREFIX = b"vset/"


# The data folder's layout version. 1: tree nodes at tn/<path>, the current version only (no
# meta/format key); 2: the versioned tree of chain/treestore.py.
STORE_FORMAT: Final = 2


def _h(height: int) -> bytes:
    return height.to_bytes(8, "big")


class KVBackend(Protocol):
    """An ordered byte-key store with atomic batches."""

    def get(self, key: bytes) -> bytes | None: ...

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        """Keys under ``prefix`` that are >= ``prefix + start``, in key order."""
        ...

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None: ...

    def close(self) -> None: ...


class MemoryBackend:
    """In-memory backend for tests, simulations and the auditor (same semantics as LevelDB's).

    A prefix scan keeps a sorted index of that prefix's keys, which later writes keep current, so
    a ledger that scans a small prefix every block (the task queues) never re-sorts the whole
    store. A scan sees the key set as it was when it started (writes replace an index, never
    change it in place), like a LevelDB iterator's snapshot.
    """

    SCAN_INDEXES_MAX = 64

    def __init__(self) -> None:
        self._data: dict[bytes, bytes] = {}
        self._indexes: dict[bytes, list[bytes]] = {}  # prefix -> its keys, sorted

    def get(self, key: bytes) -> bytes | None:
        return self._data.get(key)

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        keys = self._indexes.get(prefix)
        if keys is None:
            keys = sorted(k for k in self._data if k.startswith(prefix))
            if len(self._indexes) >= self.SCAN_INDEXES_MAX:
                self._indexes.clear()
            self._indexes[prefix] = keys
        first = bisect.bisect_left(keys, prefix + start) if start else 0
        for key in keys[first:] if first else keys:
            value = self._data.get(key)
            if value is not None:
                yield key, value

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
        data = self._data
        gone = [k for k in deletes if data.pop(k, None) is not None]
        added = [k for k in puts if k not in data]
        data.update(puts)
        if not self._indexes or not (gone or added):
            return
        # Sorted once, so each index finds its keys by bisection: a block adds thousands of
        # new tree-node keys (versioned keys are never overwritten), none under a scanned prefix.
        added.sort()
        gone.sort()
        for prefix, keys in list(self._indexes.items()):
            removed = set(_under(gone, prefix))
            new = _under(added, prefix)
            if not (removed or new):
                continue
            kept = [k for k in keys if k not in removed] if removed else list(keys)
            # Both runs are sorted: timsort merges them in linear time.
            self._indexes[prefix] = sorted(kept + new) if new else kept

    def close(self) -> None:
        pass


def _under(sorted_keys: list[bytes], prefix: bytes) -> list[bytes]:
    """The run of ``sorted_keys`` that starts with ``prefix``."""
    lo = hi = bisect.bisect_left(sorted_keys, prefix)
    while hi < len(sorted_keys) and sorted_keys[hi].startswith(prefix):
        hi += 1
    return sorted_keys[lo:hi]


# LevelDB tuning, measured with ``clearchain bench executor`` (docs/BENCHMARKS.md). Most bytes a
# block writes are hashes (tree nodes, tx hashes, signatures), which snappy cannot shrink but
# still tries to, at every flush and again at every compaction, on LevelDB's background thread:
# that was up to 40 % of the process's CPU per batched trade. A larger write buffer lets the
# tree's upper nodes, rewritten every block, be overwritten in memory instead of compacted on
# disk. Neither option changes what is stored, and a store written with other options opens.
_LEVELDB_COMPRESSION: Final = None
_LEVELDB_WRITE_BUFFER_BYTES: Final = 32 * 1024 * 1024


class LevelDBBackend:
    """LevelDB through plyvel; every batch is written with sync (fsync) for durability."""

    def __init__(self, path: Path) -> None:
        import plyvel  # the only module that touches LevelDB

        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = plyvel.DB(
                str(path),
                create_if_missing=True,
                compression=_LEVELDB_COMPRESSION,
                write_buffer_size=_LEVELDB_WRITE_BUFFER_BYTES,
            )
        except plyvel.Error as exc:
            raise StoreError("store_unavailable", f"cannot open {path}: {exc}") from exc

    def get(self, key: bytes) -> bytes | None:
        value: bytes | None = self._db.get(key)  # plyvel is untyped
        return value

    def scan(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        if not start:
            yield from self._db.iterator(prefix=prefix)
            return
        for key, value in self._db.iterator(start=prefix + start):
            if not key.startswith(prefix):
                return
            yield key, value

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
        with self._db.write_batch(sync=True) as batch:
            for key in deletes:
                batch.delete(key)
            for key, value in puts.items():
                batch.put(key, value)

    def close(self) -> None:
        self._db.close()


@dataclass(frozen=True, slots=True)
class Head:
    height: int
    block_hash: bytes


class Store:
    """The domain view of a backend. Reads state and tree nodes for the executor and tree."""

    def __init__(self, backend: KVBackend) -> None:
        """Raises StoreError ``store_format`` when the backend holds a chain in another layout."""
        _check_format(backend)
        self.backend = backend
        # Committed state values by key (None = known absent). Executing a block reads the same
        # hot accounts again and again; a LevelDB read costs ~10 us, a dict hit ~0.1 us. Kept
        # exact by write_block; emptied when it outgrows STATE_CACHE_ENTRIES_MAX.
        self._state_cache: dict[bytes, bytes | None] = {}

    @classmethod
    def open_leveldb(cls, path: Path) -> Store:
        backend = LevelDBBackend(path)
        try:
            return cls(backend)
        except StoreError:
            backend.close()
            raise

    @classmethod
    def in_memory(cls) -> Store:
        return cls(MemoryBackend())

    def close(self) -> None:
        self.backend.close()

    # --- state and tree nodes (StateReader, NodeSource) -------------------------------------
    def get_state(self, key: bytes) -> bytes | None:
        cache = self._state_cache
        try:
            return cache[key]
        except KeyError:
            pass
        value = self.backend.get(STATE_PREFIX + key)
        if len(cache) >= STATE_CACHE_ENTRIES_MAX:
            cache.clear()
        cache[key] = value
        return value

    def iterate_state(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        cut = len(STATE_PREFIX)
        for key, value in self.backend.scan(STATE_PREFIX + prefix, start):
            yield key[cut:], value

    def root_version(self) -> int | None:
        """The head tree's root record version (VersionedNodeSource, for the ledger's tree)."""
        head = self.head()
        if head is None:
            return None
        value = self.backend.get(ROOT_PREFIX + _h(head.height))
        return int.from_bytes(value[:8], "big") if value else None

    def get_versioned_node(self, version: int, path: bytes) -> bytes | None:
        return self.backend.get(NODE_PREFIX + _h(version) + path)

    def tree_at(self, height: int, cache_bytes: int = CACHE_BYTES_DEFAULT) -> StateTree:
        """The state tree after block ``height``, for reads and proofs; it stays consistent
        while newer blocks commit. Raises StoreError ``height_unknown`` past the head,
        ``height_pruned`` below the retained window."""
        head = self.head()
        if head is None or not 0 <= height <= head.height:
            raise StoreError("height_unknown", f"no block at height {height} (head {head and head.height})")
        return open_tree(self.backend, height, cache_bytes)

    def pruned_below(self) -> int:
        """The lowest height whose state tree is kept."""
        return pruned_below(self.backend)

    def prune(self, keep_versions: int, batch_max: int = PRUNE_BATCH_MAX_DEFAULT) -> PruneReport:
        """One bounded pruning run behind the head (chain/treestore.py's ``prune``)."""
        head = self.head()
        invariant(head is not None, "pruning needs a chain")
        assert head is not None
        return prune(self.backend, head.height, keep_versions, batch_max)

    # --- chain ------------------------------------------------------------------------------
    def head(self) -> Head | None:
        data = self.backend.get(HEAD_KEY)
        if data is None:
            return None
        height, block_hash = decode(data)
        return Head(height, block_hash)

    def chain_id(self) -> str | None:
        data = self.backend.get(CHAIN_ID_KEY)
        return None if data is None else data.decode()

    def genesis_hash(self) -> bytes | None:
        return self.backend.get(GENESIS_HASH_KEY)

    def block_bytes(self, height: int) -> bytes | None:
        return self.backend.get(BLOCK_PREFIX + _h(height))

    def block(self, height: int) -> Block | None:
        data = self.block_bytes(height)
        return None if data is None else Block.decode(data)

    def header(self, height: int) -> Header | None:
        block = self.block(height)
        return None if block is None else block.header

    def height_of(self, block_hash: bytes) -> int | None:
        data = self.backend.get(BLOCK_HASH_PREFIX + block_hash)
        return None if data is None else int.from_bytes(data, "big")

    def certificate_bytes(self, height: int) -> bytes | None:
        return self.backend.get(CERTIFICATE_PREFIX + _h(height))

    def certificate(self, height: int) -> CommitCertificate | None:
        data = self.certificate_bytes(height)
        return None if data is None else CommitCertificate.from_wire(decode(data))

    def receipts_bytes(self, height: int) -> bytes | None:
        return self.backend.get(RECEIPTS_PREFIX + _h(height))

    def receipts(self, height: int) -> list[Receipt] | None:
        data = self.receipts_bytes(height)
        return None if data is None else [Receipt.from_wire(w) for w in decode(data)]

    def validator_set(self, validators_hash: bytes) -> ValidatorSet | None:
        data = self.backend.get(VALIDATOR_SET_PREFIX + validators_hash)
        if data is None:
            return None
        return ValidatorSet.build([Validator(k, p, n) for k, p, n in decode(data)])

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        data = self.backend.get(TX_INDEX_PREFIX + tx_hash)
        if data is None:
            return None
        height, index = decode(data)
        return height, index

    # --- the one write per block ------------------------------------------------------------
    def write_block(
        self,
        block: Block,
        certificate: CommitCertificate | None,
        receipts: tuple[Receipt, ...] | list[Receipt],
        state_diff: dict[bytes, bytes | None],
        tree_update: TreeUpdate,
        *,
        genesis: bool = False,
        validator_sets: tuple[ValidatorSet, ...] | list[ValidatorSet] = (),
        receipts_encoded: tuple[bytes, ...] | None = None,
    ) -> None:
        """Write a committed block and everything it changed in one atomic batch.

        ``receipts_encoded``: the receipts' own encodings when the caller has them (the
        executor made them for the receipts root), so they are not encoded a second time."""
        height = block.height
        block_hash = block.hash()
        head = self.head()
        if genesis:
            if head is not None:
                raise StoreError("store_not_empty", "genesis written to a store with a chain")
        elif head is None or head.height + 1 != height:
            found = None if head is None else head.height
            raise StoreError("store_height", f"block {height} does not follow head {found}")
        puts: dict[bytes, bytes] = {}
        deletes: list[bytes] = []
        puts[BLOCK_PREFIX + _h(height)] = block.encode()
        puts[BLOCK_HASH_PREFIX + block_hash] = _h(height)
        if certificate is not None:
            puts[CERTIFICATE_PREFIX + _h(height)] = encode(certificate.to_wire())
        # Receipts hold only checked values (events are checked when emitted).
        if receipts_encoded is None:
            receipts_encoded = tuple([r.encode() for r in receipts])
        invariant(len(receipts_encoded) == len(receipts), "one encoding per receipt")
        puts[RECEIPTS_PREFIX + _h(height)] = encode_joined(receipts_encoded)
        for index, stx in enumerate(block.txs):
            puts[TX_INDEX_PREFIX + stx.hash] = encode([height, index])
        for key, value in state_diff.items():
            if value is None:
                deletes.append(STATE_PREFIX + key)
            else:
                puts[STATE_PREFIX + key] = value
        puts.update(tree_puts(tree_update, height))
        for vset in validator_sets:
            puts[VALIDATOR_SET_PREFIX + vset.hash()] = encode(
                [[v.pubkey, v.power, v.name] for v in vset.validators]
            )
        if genesis:
            puts[CHAIN_ID_KEY] = block.header.chain_id.encode()
            puts[GENESIS_HASH_KEY] = block_hash
            puts[FORMAT_KEY] = _h(STORE_FORMAT)
        puts[HEAD_KEY] = encode([height, block_hash])
        self.backend.write(puts, deletes)
        cache = self._state_cache
        if len(cache) + len(state_diff) > STATE_CACHE_ENTRIES_MAX:
            cache.clear()
        cache.update(state_diff)


def _check_format(backend: KVBackend) -> None:
    """A store with a chain must say it is in this layout; an empty one gets it with genesis."""
    value = backend.get(FORMAT_KEY)
    if value is None:
        if backend.get(HEAD_KEY) is None:
            return
        found = 1
    else:
        found = int.from_bytes(value, "big")
    if found < STORE_FORMAT:
        raise StoreError(
            "store_format",
            f"this data folder was written by an older clearchain (format {found}; this one reads format "
            f"{STORE_FORMAT}): re-sync this node from its peers (move this db folder aside and start the node; "
            "it catches up by block sync), or export the history with the clearchain that wrote it "
            "(clearchain export --home) and audit it into a new folder",
        )
    if found > STORE_FORMAT:
        raise StoreError(
            "store_format",
            f"this data folder was written by a newer clearchain (format {found}; this one reads format "
            f"{STORE_FORMAT}): run that version, or re-sync this node into an empty folder",
        )
