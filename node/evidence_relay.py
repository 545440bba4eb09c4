"""Evidence relay: keep each verified double vote, pass it to every peer, submit it on chain.

Why: one node seeing both votes of an equivocating validator is not enough; every node should
hold the proof (the API serves it), and the bond contract slashes only once the proof is in a
block. So a new pair (from this node's consensus, or an EVIDENCE message a peer sent and that
verifies) goes into the pool (``node.evidence.EvidencePool``, fsynced), is broadcast to every peer
but its source, and is submitted as a ``bonds.submit_evidence`` transaction signed as this node's
own participant. EVIDENCE that does not verify gets its sender dropped (``bad_evidence``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chain.errors import InvalidTransaction
from chain.keys import KeyPair
from chain.store import Store
from node.evidence import DoubleVote, EvidencePool, evidence_tx, is_recorded, next_nonce, own_participant
from node.inbound import EVIDENCE, need
from node.mempool import Mempool
from node.messages import Vote
from node.ports import Network


class EvidenceRelay:
    def __init__(
        self,
        pool: EvidencePool,
        network: Network,
        key: KeyPair,
        store: Store,
        mempool: Mempool,
        submit: Callable[[bytes], Any],
        log: logging.Logger,
    ) -> None:
        self.pool, self.network, self.key, self.store = pool, network, key, store
        self.mempool, self.submit, self.log = mempool, submit, log

    def new_evidence(self, first: Vote, second: Vote, source: bytes | None = None) -> bool:
        """Keep a verified double vote and pass it on, so every node holds the proof."""
        if not self.pool.add(first, second):
            return False
        self.log.warning(
            "EVIDENCE: validator %s double-voted at height %d round %d",
            first.validator.hex(),
            first.height,
            first.round,
        )
        self.network.broadcast([EVIDENCE, first.to_wire(), second.to_wire()], exclude=source)
        self.submit_evidence([DoubleVote(first, second)])
        return True

    def on_evidence(self, pubkey: bytes, message: list[Any]) -> None:
        need(len(message) == 3, "bad_evidence")
        first, second = Vote.from_wire(message[1]), Vote.from_wire(message[2])
        need(first is not None and second is not None, "bad_evidence")
        assert first is not None and second is not None
        item = DoubleVote(first, second)
        if item.key in self.pool.items:
            return
        need(item.verify(self.pool.chain_id), "bad_evidence")
        self.new_evidence(first, second, source=pubkey)

    def submit_held(self) -> None:
        """Submit what the pool held from before a restart (the chain may lack it)."""
        self.submit_evidence([self.pool.items[k] for k in sorted(self.pool.items)])

    def submit_evidence(self, items: list[DoubleVote]) -> None:
        """Submit the double votes the chain does not hold yet as ``bonds.submit_evidence``
        transactions, signed as this node's own participant (1-of-1 policy of the node key);
        skipped quietly if there is none. Another node's copy of the same evidence fails in its
        receipt (``evidence_known``) and costs only a nonce. A node never reports itself: the
        others will, and its participant's nonces stay its operator's."""
        items = [i for i in items if i.first.validator != self.key.public and not is_recorded(self.store, i)]
        sender = own_participant(self.store, self.key.public) if items else None
        if sender is None:
            return
        for item in items:
            nonce = next_nonce(self.store, sender, self.mempool.last_pending_nonce(sender))
            stx = evidence_tx(self.pool.chain_id, sender, nonce, item, self.key)
            try:
                self.submit(stx.encode())
            except InvalidTransaction as exc:
                self.log.warning(
                    "evidence against %s not submitted: %s: %s",
                    item.first.validator.hex()[:16],
                    exc.code,
                    exc.message,
                )
                continue
            self.log.info(
                "submitted evidence against %s as %s (tx %s)",
                item.first.validator.hex()[:16],
                sender,
                stx.hash.hex()[:16],
            )
