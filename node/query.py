"""The node's read interface for the HTTP API: a query object the node hands out, offering exactly
the reads (and the submit / wait-for-commit) the routes of ``node/api/`` need, and nothing else.

Why: the API used to reach into the node's internals (its store, mempool, consensus, transport,
private counters) about fifty times, so any change to the node's runtime could break a route,
and nothing said which reads the API depends on. Now the routes see only ``NodeQuery``; the node
is typed through the ``NodeParts`` protocol below (the attributes this module reads), so
``node/api`` never imports ``node/runtime`` and a refactor of the runtime changes this one module.
The same object is where a later read policy (which role may see what) and a SQL sink attach.

Every read is of committed state at the head, or of the node's own bookkeeping; nothing here
writes consensus data.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from chain.block import Block, Header
from chain.block_pruning import blocks_pruned_below, is_height_pruned
from chain.certificate import CommitCertificate
from chain.executor import CallEnv
from chain.ledger import Ledger
from chain.receipt import Receipt
from chain.state import BlockState
from chain.statetree import Proof
from chain.store import Store
from chain.tx import SignedTx
from chain.validators import ValidatorSet
from contracts.api import Registry
from node.config import NodeConfig
from node.evidence import EvidencePool
from node.mempool import Mempool
from node.p2p import Transport

CommitListener = Callable[[Block, tuple[Receipt, ...]], None]


class _ConsensusPosition(Protocol):
    @property
    def height(self) -> int: ...

    @property
    def round(self) -> int: ...


class NodeParts(Protocol):
    """The parts of a running node (``node.runtime.Node``) that ``NodeQuery`` reads."""

    home: Path
    config: NodeConfig
    log: logging.Logger
    chain_id: str
    ledger: Ledger
    store: Store
    mempool: Mempool
    evidence: EvidencePool
    transport: Transport
    commit_waiters: dict[bytes, list[asyncio.Future[Any]]]
    commit_listeners: list[CommitListener]

    @property
    def peer_status(self) -> dict[bytes, tuple[int, int, int]]: ...

    @property
    def commit_times(self) -> list[tuple[int, float, int, int]]: ...

    @property
    def unauthentic_messages(self) -> int: ...

    @property
    def consensus(self) -> _ConsensusPosition: ...

    def clock_ms(self) -> int: ...

    def status(self) -> dict[str, Any]: ...

    def submit(self, data: bytes, source: bytes | None = None) -> SignedTx: ...

    def receipt(self, height: int, index: int) -> Receipt | None: ...


@dataclass(frozen=True, slots=True)
class Gauges:
    """The node's live figures for ``GET /metrics``, read at one moment."""

    height: int
    mempool_txs: int
    mempool_bytes: int
    consensus_round: int
    peers: int
    evidence: int
    unauthentic_messages: int
    transport_events: dict[str, int]


class NodeQuery:
    """What the API may ask of a node. Built once per server by ``NodeQuery(node)``."""

    def __init__(self, node: NodeParts) -> None:
        self._node = node
        runtime = node.ledger.runtime
        assert isinstance(runtime, Registry), "a node runs the contracts' Registry"
        self._contracts = runtime

    # --- the node -----------------------------------------------------------------------------
    @property
    def chain_id(self) -> str:
        return self._node.chain_id

    @property
    def log(self) -> logging.Logger:
        return self._node.log

    @property
    def home(self) -> Path:
        return self._node.home

    @property
    def account_history(self) -> bool:
        """Whether this node is configured to keep the account-history index."""
        return self._node.config.rpc.account_history

    def status(self) -> dict[str, Any]:
        """The node's status document (``GET /status``)."""
        node = self._node
        doc = node.status()
        doc["last_block_age_ms"] = max(0, node.clock_ms() - node.ledger.head.time_ms)
        # A peer's status carries the height it works on; one past ours has blocks we lack.
        doc["syncing"] = any(s[0] > node.consensus.height for s in node.peer_status.values())
        return doc

    def evidence_json(self) -> list[dict[str, Any]]:
        return self._node.evidence.to_json()

    def gauges(self) -> Gauges:
        node = self._node
        return Gauges(
            height=node.ledger.head.height,
            mempool_txs=len(node.mempool),
            mempool_bytes=node.mempool.size_bytes,
            consensus_round=node.consensus.round,
            peers=len(node.transport.peers),
            evidence=len(node.evidence.items),
            unauthentic_messages=node.unauthentic_messages,
            transport_events=dict(node.transport.stats),
        )

    def commit_times(self) -> list[tuple[int, float, int, int]]:
        """(height, seconds, round, txs) of recent commits, oldest first."""
        return self._node.commit_times

    def add_commit_listener(self, listener: CommitListener) -> None:
        self._node.commit_listeners.append(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        if listener in self._node.commit_listeners:
            self._node.commit_listeners.remove(listener)

    # --- transactions -------------------------------------------------------------------------
    def submit(self, data: bytes) -> SignedTx:
        """Admit one encoded signed transaction (InvalidTransaction if refused)."""
        return self._node.submit(data)

    def wait_for_commit(self, tx_hash: bytes) -> asyncio.Future[Any]:
        """A future that completes when ``tx_hash`` commits; give it back to ``stop_waiting``.
        Completes at once if the transaction is committed already: a lone validator can decide a
        height inside ``submit``, before any waiter existed."""
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._node.commit_waiters.setdefault(tx_hash, []).append(fut)
        return fut

    def settle_committed(self, waiting: dict[bytes, asyncio.Future[Any]]) -> None:
        """Complete the waiters of transactions that are committed already."""
        for tx_hash, fut in waiting.items():
            if not fut.done() and self._node.store.tx_location(tx_hash) is not None:
                fut.set_result(None)

    def stop_waiting(self, tx_hash: bytes, fut: asyncio.Future[Any]) -> None:
        fut.cancel()  # no-op when done
        waiters = self._node.commit_waiters.get(tx_hash)
        if waiters is not None:
            if fut in waiters:
                waiters.remove(fut)
            if not waiters:
                del self._node.commit_waiters[tx_hash]

    def tx_location(self, tx_hash: bytes) -> tuple[int, int] | None:
        return self._node.store.tx_location(tx_hash)

    def receipt(self, height: int, index: int) -> Receipt | None:
        return self._node.receipt(height, index)

    def is_pending(self, tx_hash: bytes) -> bool:
        return tx_hash in self._node.mempool

    def rejection(self, tx_hash: bytes) -> tuple[str, str] | None:
        """(code, message) of a recently rejected transaction, or None."""
        return self._node.mempool.rejected.get(tx_hash)

    def last_pending_nonce(self, sender: str) -> int | None:
        return self._node.mempool.last_pending_nonce(sender)

    # --- blocks -------------------------------------------------------------------------------
    def head(self) -> Header:
        return self._node.ledger.head

    def validators(self) -> ValidatorSet:
        return self._node.ledger.validators

    def genesis_hash(self) -> bytes | None:
        return self._node.store.genesis_hash()

    def height_of(self, block_hash: bytes) -> int | None:
        return self._node.store.height_of(block_hash)

    def blocks_pruned_below(self) -> int:
        """The lowest height >= 1 whose block this node still holds (storage.keep_blocks)."""
        return blocks_pruned_below(self._node.store)

    def is_height_pruned(self, height: int) -> bool:
        """Whether ``height`` was committed but this node has dropped its block."""
        return is_height_pruned(self._node.store, height)

    def block(self, height: int) -> Block | None:
        return self._node.store.block(height)

    def block_bytes(self, height: int) -> bytes | None:
        return self._node.store.block_bytes(height)

    def certificate(self, height: int) -> CommitCertificate | None:
        return self._node.store.certificate(height)

    def certificate_bytes(self, height: int) -> bytes | None:
        return self._node.store.certificate_bytes(height)

    def receipts(self, height: int) -> list[Receipt] | None:
        return self._node.store.receipts(height)

    def receipts_bytes(self, height: int) -> bytes | None:
        return self._node.store.receipts_bytes(height)

    # --- state --------------------------------------------------------------------------------
    def state(self) -> BlockState:
        """Committed state at the head, to read (never written back)."""
        return BlockState(self._node.store)

    def prove(self, key: bytes) -> tuple[bytes | None, Proof]:
        """The head's value of ``key`` (None: absent) and its proof against the head's root."""
        return self._node.store.get_state(key), self._node.ledger.tree.prove(key)

    def contracts(self) -> Registry:
        return self._contracts

    def call_env(self) -> CallEnv:
        """The environment a contract view runs in: the head's height and time, no sender."""
        head = self._node.ledger.head
        return CallEnv(self._node.chain_id, head.height, head.time_ms, b"")

    def index_source(self) -> Store:
        """The store the account-history index reads blocks, receipts and state from."""
        return self._node.store
