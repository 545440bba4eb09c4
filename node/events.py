"""The API's live side: the server-sent block stream (``GET /events``) and Prometheus metrics.

Why a hub: many clients may follow the chain, and a slow one must cost the node nothing. Each
commit is turned into one SSE frame (only when someone listens) and offered to every client's
*bounded* queue; a client whose queue is full has fallen too far behind and is dropped (it
reconnects with ``Last-Event-ID`` and replays from the store). A client's handler replays past
blocks from the store first and subscribes only once it has reached the head, with no await in
between, so no block is missed or sent twice.

Metrics are gauges read from the node when scraped, a counter of committed transactions kept by
a commit listener (since the process started, as Prometheus counters are), and a histogram of
the time from starting a height to committing it, folded in from the node's commit times. The
node is read through its query object (node/query.py), never directly.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from chain.block import Block
from chain.receipt import KIND_TX, Receipt

if TYPE_CHECKING:
    from node.query import NodeQuery

EVENT_CLIENTS_MAX = 256  # concurrent /events streams
EVENT_QUEUE_BLOCKS_MAX = 256  # blocks queued for one client before it is dropped
KEEPALIVE_S = 15.0
LATENCY_BUCKETS_S = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def json_value(value: Any) -> Any:
    """A value of an event or header in JSON: bytes become hex, tuples lists."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    return value


def receipt_events_json(r: Receipt) -> list[Any]:
    return [json_value(list(e)) for e in r.events]


def block_event_json(block: Block, receipts: tuple[Receipt, ...] | list[Receipt]) -> dict[str, Any]:
    """The ``data`` of one block's SSE event."""
    txs, tasks = [], []
    for r in receipts:
        doc = {"ok": r.ok, "code": r.code, "message": r.message, "events": receipt_events_json(r)}
        if r.kind == KIND_TX:
            txs.append({"hash": r.ref.hex(), **doc})
        else:
            tasks.append({"task": r.ref.hex(), **doc})
    return {
        "height": block.height,
        "hash": block.hash().hex(),
        "time_ms": block.header.time_ms,
        "txs": txs,
        "tasks": tasks,
    }


def sse_frame(block: Block, receipts: tuple[Receipt, ...] | list[Receipt]) -> bytes:
    data = json.dumps(block_event_json(block, receipts), separators=(",", ":"))
    return f"id: {block.height}\nevent: block\ndata: {data}\n\n".encode()


@dataclass(eq=False)
class Subscriber:
    queue: asyncio.Queue[tuple[int, bytes] | None]
    closed: bool = False
    dropped: bool = False  # closed because it fell too far behind


@dataclass
class EventHub:
    """Fans each committed block out to the /events clients."""

    queue_blocks_max: int = EVENT_QUEUE_BLOCKS_MAX
    clients_max: int = EVENT_CLIENTS_MAX
    keepalive_s: float = KEEPALIVE_S
    clients: set[Subscriber] = field(default_factory=set)
    streams: int = 0  # open /events responses, replaying or live
    dropped_total: int = 0
    closed: bool = False

    def on_commit(self, block: Block, receipts: tuple[Receipt, ...]) -> None:
        """A commit listener: queue the block's frame for every client, dropping the full."""
        if not self.clients:
            return
        item = (block.height, sse_frame(block, receipts))
        for sub in list(self.clients):
            try:
                sub.queue.put_nowait(item)
            except asyncio.QueueFull:
                self.clients.discard(sub)
                sub.closed = sub.dropped = True
                self.dropped_total += 1

    def subscribe(self) -> Subscriber:
        sub = Subscriber(asyncio.Queue(maxsize=self.queue_blocks_max))
        self.clients.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        self.clients.discard(sub)
        sub.closed = True

    def close(self) -> None:
        """End every stream (the server is stopping)."""
        self.closed = True
        for sub in list(self.clients):
            self.unsubscribe(sub)
            try:
                sub.queue.put_nowait(None)  # wakes a handler waiting for the next block
            except asyncio.QueueFull:
                pass  # its handler is busy writing; it sees ``closed`` next


class Metrics:
    """Counters kept between scrapes; everything else is read from the node when scraped."""

    def __init__(self) -> None:
        self.txs_committed_total = 0
        self.latency_counts = [0] * len(LATENCY_BUCKETS_S)
        self.latency_sum_s = 0.0
        self.latency_count = 0
        self._folded_height = -1

    def on_commit(self, block: Block, receipts: tuple[Receipt, ...]) -> None:
        self.txs_committed_total += len(block.txs)

    def fold(self, commit_times: list[tuple[int, float, int, int]]) -> None:
        """Add the commit latencies recorded since the last fold to the histogram."""
        for height, seconds, _round, _txs in commit_times:
            if height <= self._folded_height:
                continue
            self._folded_height = height
            self.latency_sum_s += seconds
            self.latency_count += 1
            for i, bound in enumerate(LATENCY_BUCKETS_S):
                if seconds <= bound:
                    self.latency_counts[i] += 1

    def render(self, query: NodeQuery) -> str:
        self.fold(query.commit_times())
        g = query.gauges()
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, value: float) -> None:
            lines.extend([f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", f"{name} {value}"])

        metric("clearchain_height", "gauge", "Height of the last committed block.", g.height)
        metric(
            "clearchain_txs_committed_total",
            "counter",
            "Transactions committed since the node started.",
            self.txs_committed_total,
        )
        metric("clearchain_mempool_txs", "gauge", "Transactions in the mempool.", g.mempool_txs)
        metric("clearchain_mempool_bytes", "gauge", "Bytes of transactions in the mempool.", g.mempool_bytes)
        metric(
            "clearchain_consensus_round", "gauge", "Consensus round at the current height.", g.consensus_round
        )
        metric("clearchain_peers", "gauge", "Connected peers.", g.peers)
        metric("clearchain_evidence_total", "counter", "Double votes held as evidence.", g.evidence)
        metric(
            "clearchain_unauthentic_messages_total", "counter",
            "Consensus messages from peers dropped for a bad signature or signer.", g.unauthentic_messages,
        )  # fmt: skip
        name = "clearchain_p2p_events_total"
        lines.append(
            f"# HELP {name} Transport events by kind: frames, handshakes, refusals and disconnects by reason."
        )
        lines.append(f"# TYPE {name} counter")
        stats = g.transport_events
        for event in sorted(k for k in stats if k not in ("peers", "inbound_pending")):
            lines.append(f'{name}{{event="{event}"}} {stats[event]}')
        name = "clearchain_commit_latency_seconds"
        lines.append(f"# HELP {name} Time from starting a height to committing it.")
        lines.append(f"# TYPE {name} histogram")
        for bound, count in zip(LATENCY_BUCKETS_S, self.latency_counts, strict=True):
            lines.append(f'{name}_bucket{{le="{bound}"}} {count}')
        lines.append(f'{name}_bucket{{le="+Inf"}} {self.latency_count}')
        lines.append(f"{name}_sum {self.latency_sum_s:.6f}")
        lines.append(f"{name}_count {self.latency_count}")
        return "\n".join(lines) + "\n"
