"""Transaction gossip: batch what the mempool admitted out to the peers, take peers' batches in.

Why: a transaction submitted to any node must reach the proposers. Admitted transactions are
queued and sent in batches of up to ``TX_BATCH_MAX`` (after ``TX_FLUSH_MS`` or when a batch is
full) to every peer but the one each came from. In a mesh every transaction arrives from several
peers; recognising a copy by a digest of its bytes (the seen cache, bounded) saves decoding and
checking it again, most of admission's cost. A refusal that may not hold when the same bytes come
again (a full mempool, a nonce gap) is not remembered. A peer that connects is offered what is
pending here: it may have been down, or this node had no peers when a client sent it something.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Final

from chain.errors import InvalidTransaction
from node.inbound import TXS, Misbehaved, need
from node.ports import Clock, Network, TimerHandle

TX_BATCH_MAX: Final = 500  # transactions in one gossip message
TX_FLUSH_MS: Final = 10
TX_RESEND_MAX: Final = 5_000  # pending transactions offered to a peer that connects
TX_RESEND_BYTES_MAX: Final = 6 * 1024 * 1024
TX_SEEN_MAX: Final = 100_000  # digests of gossiped transactions this node has already handled
# Refusals that may not hold when the same bytes come again (from another peer, later):
TX_REFUSALS_TRANSIENT: Final = frozenset({"mempool_full", "sender_queue_full", "nonce_gap", "expired"})


class TxGossip:
    def __init__(
        self,
        network: Network,
        clock: Clock,
        submit: Callable[[bytes, bytes | None], Any],
        pending: Callable[[int, int], list[bytes]],
    ) -> None:
        """``submit(data, source)`` admits one encoded transaction (raises InvalidTransaction);
        ``pending(count_max, bytes_max)`` lists encoded pending transactions to offer a peer."""
        self.network, self.clock, self.submit, self.pending = network, clock, submit, pending
        self.outbox: list[tuple[bytes, bytes | None]] = []  # (encoded tx, peer it came from)
        self.seen: OrderedDict[bytes, None] = OrderedDict()
        self._flush_handle: TimerHandle | None = None

    def on_txs(self, pubkey: bytes, message: list[Any]) -> None:
        need(
            len(message) == 2 and type(message[1]) is list and len(message[1]) <= TX_BATCH_MAX, "bad_tx_batch"
        )
        for data in message[1]:
            need(type(data) is bytes, "bad_tx_batch")
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in self.seen:
                continue  # a copy from another peer: handled already
            try:
                self.submit(data, pubkey)
            except InvalidTransaction as exc:
                if exc.code == "tx_malformed":
                    raise Misbehaved("malformed_tx") from exc
                # duplicates and stale nonces are normal in gossip; a transient refusal may
                # pass when the same transaction comes again
                if exc.code in TX_REFUSALS_TRANSIENT:
                    continue
            self.seen[digest] = None
            if len(self.seen) > TX_SEEN_MAX:
                self.seen.popitem(last=False)

    def queue(self, data: bytes, source: bytes | None) -> None:
        """Gossip an admitted transaction to every peer but ``source``."""
        self.outbox.append((data, source))
        if len(self.outbox) >= TX_BATCH_MAX:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = self.clock.call_later(TX_FLUSH_MS, self.flush)

    def flush(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        by_source: dict[bytes | None, list[bytes]] = {}
        for data, source in self.outbox:
            by_source.setdefault(source, []).append(data)
        self.outbox = []
        for source, items in by_source.items():  # arrival order within each source
            for i in range(0, len(items), TX_BATCH_MAX):
                self.network.broadcast([TXS, items[i : i + TX_BATCH_MAX]], exclude=source)

    def on_connect(self, pubkey: bytes) -> None:
        pending = self.pending(TX_RESEND_MAX, TX_RESEND_BYTES_MAX)
        for i in range(0, len(pending), TX_BATCH_MAX):
            self.network.send(pubkey, [TXS, pending[i : i + TX_BATCH_MAX]])

    def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
