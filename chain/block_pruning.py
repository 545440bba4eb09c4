"""Dropping old blocks on a node that does not serve history (``storage.keep_blocks``).

Why: blocks, certificates and receipts are the audit trail, so a node keeps them all by default.
A node that serves no history (a validator behind a firewall, a short-lived test node) may keep
only the last ``keep_blocks`` heights. Nothing the node checks reads an old block: validating the
next block reads the head's header, certificate and validator sets (``vset/`` is never pruned),
and evidence age is judged against state. Genesis (height 0) is always kept.

After each commit ``prune_blocks`` deletes a bounded slice of heights older than
``head - keep_blocks``: ``blk/``, ``cert/``, ``rcpt/``, ``bhash/`` and the ``txi/`` entries of the
block's transactions. Each height goes in its own write batch, together with
``meta/blocks_pruned_below`` (the lowest height >= 1 still held), so a crash at any moment leaves
a store whose marker never claims a height it lacks: heights below the marker are gone, heights
from it up are whole. Readers ask ``is_height_pruned`` and answer ``height_pruned``.
"""

from __future__ import annotations

from typing import Final

from chain.block import Block
from chain.errors import StoreError
from chain.store import (
    BLOCK_HASH_PREFIX,
    BLOCK_PREFIX,
    CERTIFICATE_PREFIX,
    RECEIPTS_PREFIX,
    TX_INDEX_PREFIX,
    Store,
)

BLOCKS_PRUNED_BELOW_KEY: Final = b"meta/blocks_pruned_below"
# Heights deleted after one commit. More than one, so a node that turns pruning on over a long
# history catches up (three extra heights per block); few, so one commit's extra work stays
# bounded (a full block's tx index is ~5,000 deletes).
PRUNE_HEIGHTS_PER_COMMIT_MAX: Final = 4
# The least keep_blocks a config file may set (docs/DECISIONS.md): a peer that was down for a
# while must find the blocks it lacks, and block sync asks at most 64 at a time.
KEEP_BLOCKS_MIN: Final = 1_000
HEIGHT_PRUNED: Final = "height_pruned"


def _h(height: int) -> bytes:
    return height.to_bytes(8, "big")


def blocks_pruned_below(store: Store) -> int:
    """The lowest height >= 1 whose block this store still holds (1: nothing pruned)."""
    data = store.backend.get(BLOCKS_PRUNED_BELOW_KEY)
    return 1 if data is None else int.from_bytes(data, "big")


def is_height_pruned(store: Store, height: int) -> bool:
    """Whether the block at ``height`` was committed but this store has dropped it."""
    return 1 <= height < blocks_pruned_below(store)


def pruned_error(store: Store, height: int) -> StoreError:
    below = blocks_pruned_below(store)
    return StoreError(
        HEIGHT_PRUNED,
        f"height {height} is pruned on this node (it keeps blocks from {below}); ask a node that keeps history",
    )


def prune_target(head_height: int, keep_blocks: int) -> int:
    """The marker pruning works towards: every height below ``head - keep_blocks`` goes."""
    if keep_blocks == 0:
        return 1
    return max(1, head_height - keep_blocks)


def prune_blocks(store: Store, keep_blocks: int, heights_max: int = PRUNE_HEIGHTS_PER_COMMIT_MAX) -> int:
    """Delete up to ``heights_max`` of the oldest heights older than ``head - keep_blocks``, one
    write batch per height; how many. ``keep_blocks`` 0 keeps everything."""
    if keep_blocks == 0:
        return 0
    if keep_blocks < 1 or heights_max < 1:
        raise StoreError("store_prune", "keep_blocks and heights_max must be positive")
    head = store.head()
    if head is None:
        return 0
    below = blocks_pruned_below(store)
    stop = min(prune_target(head.height, keep_blocks), below + heights_max)
    for height in range(below, stop):
        store.backend.write({BLOCKS_PRUNED_BELOW_KEY: _h(height + 1)}, _height_keys(store, height))
    return max(0, stop - below)


def _height_keys(store: Store, height: int) -> list[bytes]:
    """Every key that belongs to the block at ``height`` alone."""
    at = _h(height)
    keys = [BLOCK_PREFIX + at, CERTIFICATE_PREFIX + at, RECEIPTS_PREFIX + at]
    data = store.block_bytes(height)
    if data is None:  # a crash cannot cause this (the marker moves with the deletes); be lenient
        return keys
    block = Block.decode(data)
    keys.append(BLOCK_HASH_PREFIX + block.hash())
    for stx in block.txs:
        location = store.tx_location(stx.hash)
        if location is not None and location[0] == height:
            keys.append(TX_INDEX_PREFIX + stx.hash)
    return keys
