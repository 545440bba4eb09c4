"""Block sync: fetch, serve and apply ranges of committed blocks with their certificates.

Why: a node that was down, cut off or slow has missed decisions that consensus will not repeat.
A peer whose STATUS (or a consensus message) is past our height has committed blocks we lack: we
ask it for a range after our head (one request at a time, retried after ``timeout_ms``), and it
answers with each block's bytes and certificate. The application verifies every certificate
against the validator set of its height, re-executes the block and checks the roots before it
writes it (``ChainApp.apply_synced``; ``Ledger.apply_committed`` in the node); a peer whose block
fails any of that is dropped. The driver then rejoins consensus at the new height.

A peer that keeps only recent blocks (``storage.keep_blocks``) answers a request that starts
below its window with ``[HEIGHT_PRUNED, from_height, blocks_pruned_below]`` instead of blocks:
we stop asking it until our head has reached its window (its window only moves up), and sync
from a peer that keeps the history we lack.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Final

from chain.errors import ClearchainError
from node.inbound import BLOCKS, GET_BLOCKS, HEIGHT_PRUNED, Misbehaved, is_uint, need
from node.ports import ChainApp, Clock, Committed, Network

SYNC_BLOCKS_MAX: Final = 64  # blocks in one sync response
SYNC_RESPONSE_BYTES_MAX: Final = 6 * 1024 * 1024
SYNC_TIMEOUT_MS: Final = 5_000
FRAME_RESERVE_BYTES: Final = 64 * 1024  # framing next to the blocks in one response


class BlockSync:
    def __init__(
        self,
        app: ChainApp,
        network: Network,
        clock: Clock,
        log: logging.Logger,
        *,
        frame_bytes_max: int,
        timeout_ms: int = SYNC_TIMEOUT_MS,
        blocks_max: int = SYNC_BLOCKS_MAX,
    ) -> None:
        self.app, self.network, self.clock, self.log = app, network, clock, log
        self.budget_bytes = min(SYNC_RESPONSE_BYTES_MAX, frame_bytes_max - FRAME_RESERVE_BYTES)
        self.timeout_ms, self.blocks_max = timeout_ms, blocks_max
        self.pending: tuple[bytes, float] | None = None  # (peer asked, retry after this monotonic ms)
        # Peers that said they keep blocks only from this height up (one entry per allowed peer).
        self.pruned_below: dict[bytes, int] = {}

    def request(self, pubkey: bytes, peer_height: int) -> None:
        """Ask ``pubkey`` for the committed blocks after our head (one request at a time)."""
        now = self.clock.monotonic_ms()
        if self.pending is not None and self.pending[1] > now:
            return
        start = self.app.head_height() + 1
        end = min(peer_height - 1, start + self.blocks_max - 1)
        if end < start or self.pruned_below.get(pubkey, 1) > start:
            return
        if self.network.send(pubkey, [GET_BLOCKS, start, end]):
            self.pending = (pubkey, now + self.timeout_ms)

    def forget(self, pubkey: bytes) -> None:
        """The peer asked is gone: the next request need not wait for its answer."""
        if self.pending is not None and self.pending[0] == pubkey:
            self.pending = None

    def serve(self, pubkey: bytes, message: list[Any]) -> None:
        need(
            len(message) == 3
            and is_uint(message[1])
            and is_uint(message[2])
            and 1 <= message[1] <= message[2],
            "bad_get_blocks",
        )
        start = message[1]
        below = self.app.blocks_pruned_below()
        if start < below:
            self.network.send(pubkey, [HEIGHT_PRUNED, start, below])
            return
        end = min(message[2], self.app.head_height(), start + self.blocks_max - 1)
        items: list[list[Any]] = []
        size = 0
        for height in range(start, end + 1):
            found = self.app.synced_block(height)
            if found is None:
                break
            data, cert = found
            if items and size + len(data) > self.budget_bytes:
                break
            items.append([data, cert])
            size += len(data)
        if items:
            self.network.send(pubkey, [BLOCKS, items])

    def on_pruned(self, pubkey: bytes, message: list[Any]) -> None:
        """The peer keeps no block at the start of what we asked: ask others until we pass it."""
        need(
            len(message) == 3
            and is_uint(message[1])
            and is_uint(message[2])
            and 1 <= message[1] < message[2],
            "bad_height_pruned",
        )
        self.forget(pubkey)
        self.pruned_below[pubkey] = max(message[2], self.pruned_below.get(pubkey, 1))
        self.log.warning(
            "sync: peer %s keeps blocks from height %d only (height_pruned); height %d must come "
            "from a node that keeps history",
            pubkey.hex()[:16],
            message[2],
            message[1],
        )

    def apply(self, pubkey: bytes, message: list[Any], committed: Callable[[Committed], None]) -> int:
        """Write each next block of the response, calling ``committed`` after each; how many."""
        need(
            len(message) == 2 and type(message[1]) is list and len(message[1]) <= self.blocks_max,
            "bad_blocks",
        )
        self.forget(pubkey)
        applied = 0
        for item in message[1]:
            need(type(item) is list and len(item) == 2 and type(item[0]) is bytes, "bad_blocks")
            try:
                height, block, cert = self.app.decode_synced(item[0], item[1])
            except ClearchainError as exc:
                raise Misbehaved(f"bad_sync_block: {exc.code}") from exc
            head = self.app.head_height()
            if height <= head:
                continue
            if height != head + 1 or self.app.halted() is not None:
                break
            try:
                result = self.app.apply_synced(block, cert)
            except ClearchainError as exc:
                self.log.warning(
                    "sync: peer %s sent a block that fails verification: %s: %s",
                    pubkey.hex()[:16],
                    exc.code,
                    exc.message,
                )
                raise Misbehaved(f"bad_sync_block: {exc.code}") from exc
            committed(result)
            applied += 1
        return applied
