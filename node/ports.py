"""The ports of the node driver: what ``node.driver.NodeDriver`` needs from the world around it.

Why: the driver (effects to the network with the WAL first, timers, the rule that starts
heights, gossip, block sync, inbound validation) must be one piece of code that the real node and
the simulator both run, as TigerBeetle's VOPR runs the real replica. So everything with a clock, a
socket, a disk or a ledger is passed in behind one of these protocols:

- ``Network``: send to a peer, broadcast (but to one), the connected peers, drop a peer. The real
  one is ``node.p2p.Transport``; the simulator's delays, loses, duplicates and partitions.
- ``Clock``: monotonic milliseconds, wall milliseconds, ``call_later`` with a cancellable handle.
  The real one wraps asyncio; the simulator's is its event queue.
- ``ConsensusWAL``: the write-ahead log of one height (``node.wal.WAL``, or in memory).
- ``ChainApp``: the application and its store as the driver sees them (``node.app.LedgerApp``,
  or the simulator's byte-token blocks): the consensus ``Application`` plus the head, the
  validator set, committing a decided block, applying a synced block with its certificate, and
  reading a committed block with its certificate for a peer that lacks it.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from chain.validators import ValidatorSet
from node.consensus import Application, Decide
from node.messages import Proposal, Vote


class Network(Protocol):
    @property
    def peers(self) -> Mapping[bytes, Any]:
        """The connected peers by public key."""
        ...

    def send(self, pubkey: bytes, message: list[Any]) -> bool:
        """Queue ``message`` for one peer; False if it is not connected (or its queue is full)."""
        ...

    def broadcast(self, message: list[Any], exclude: bytes | None = None) -> int:
        """Queue ``message`` for every connected peer but ``exclude``; how many took it."""
        ...

    def disconnect(self, pubkey: bytes, reason: str) -> None:
        """Drop a peer that sent what no honest node sends."""
        ...


class TimerHandle(Protocol):
    def cancel(self) -> None: ...


class Clock(Protocol):
    def monotonic_ms(self) -> float:
        """Milliseconds from an arbitrary start, never going back."""
        ...

    def wall_ms(self) -> int:
        """Milliseconds since the Unix epoch (block times, the heartbeat)."""
        ...

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> TimerHandle:
        """Run ``callback`` once, ``delay_ms`` from now, unless the handle is cancelled first."""
        ...


class ConsensusWAL(Protocol):
    def open_height(self, height: int) -> None: ...

    def append(self, message: Proposal | Vote, *, sync: bool) -> None:
        """Append; with ``sync`` (own messages) it is durable when this returns."""
        ...

    def read(self, height: int) -> list[Proposal | Vote]: ...


@dataclass(frozen=True, slots=True)
class Committed:
    """A block the application wrote: what the driver logs and what the node's hooks need."""

    height: int
    round: int
    block_hash: bytes
    txs: int
    block: Any  # the application's block object
    receipts: Any  # the application's receipts (a tuple of ``chain.receipt.Receipt`` in the node)
    certificate: Any


class ChainApp(Application, Protocol):
    def head_height(self) -> int:
        """The height of the last committed block (genesis is 0)."""
        ...

    def head_time_ms(self) -> int:
        """The time in the head block's header (the heartbeat counts from it)."""
        ...

    def validators(self) -> ValidatorSet:
        """The validator set that decides the height after the head."""
        ...

    def has_pending(self) -> bool:
        """Transactions are waiting for a block (a reason to start the next height)."""
        ...

    def halted(self) -> str | None:
        """Why this node may not go on (a governance upgrade activated code it lacks), or None."""
        ...

    def commit(self, decision: Decide) -> Committed:
        """Write the block consensus decided, with its certificate."""
        ...

    def decode_synced(self, block_bytes: bytes, certificate_wire: Any) -> tuple[int, Any, Any]:
        """(height, block, certificate) of a block a peer sent in block sync. Raises
        ClearchainError if either does not decode (the peer misbehaved)."""
        ...

    def apply_synced(self, block: Any, certificate: Any) -> Committed:
        """Verify the certificate against the validator set, execute, check and write the block
        after the head. Raises ClearchainError if any of it fails (the peer misbehaved)."""
        ...

    def synced_block(self, height: int) -> tuple[bytes, Any] | None:
        """The committed block at ``height`` as bytes, with its certificate's wire form."""
        ...

    def blocks_pruned_below(self) -> int:
        """The lowest height >= 1 whose block this node still holds (storage.keep_blocks)."""
        ...
