"""The node runtime: one asyncio process that wires the ledger, consensus, WAL, mempool, p2p
transport, block sync and HTTP API of one node, and does all their I/O.

Why it is shaped this way: ``node.consensus`` is a pure machine, so everything with a clock or a
socket lives here, and it is the only place that calls the machine. Every input (a peer's
message, a timeout, an API call) runs to completion on the event loop; there are no locks.

- **Effects.** A batch of consensus effects is carried out in order: own messages go to the WAL
  (fsync) and are then broadcast; timeouts become ``call_later``; a decision is written to the
  store with the execution result computed when the block was validated; equivocation goes to the
  evidence pool.
- **When to start a height.** After a commit the node waits at least ``commit_wait_ms``, then
  starts the next height as soon as it has pending transactions, a peer has sent a message for
  that height, or ``heartbeat_ms`` has passed since the head's time (so time-based contract tasks
  fall due on an idle chain). Every honest node applies the same rule, and the first to start
  pulls the rest along.
- **Gossip.** Own messages are broadcast once; every ``TICK_S`` each node broadcasts its status
  (height, round, step), and one whose height, round and step have not moved since the previous
  tick sends each peer at its height what it holds for the rounds that matter (the peer's, its
  own, its valid round, the proof-of-lock round): over lossy links Algorithm 1 needs relaying to
  stay live, as the simulator showed. Transactions travel in batches.
- **Block sync.** A peer whose status is past our height has committed blocks we lack: we fetch
  them in ranges with their certificates, verify each certificate against the validator set,
  re-execute, check the roots (``Ledger.apply_committed``), then rejoin consensus at the new
  height. Observers do the same and also follow consensus messages, without voting.
- **Crash and restart.** The store is written one batch per block; the WAL holds this height's
  messages; the signer's record refuses conflicting signatures. On start the node restores its
  round, step and lock from the WAL and re-broadcasts its last votes.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.block import Block
from chain.certificate import CommitCertificate
from chain.errors import ClearchainError, ContractCodeMismatch, InvalidTransaction
from chain.genesis import load_genesis
from chain.keys import read_key_file, verify_signature
from chain.ledger import Ledger
from chain.receipt import Receipt
from chain.store import Store
from chain.tx import SignedTx
from contracts import default_registry
from node import p2p
from node.app import LedgerApp
from node.byzantine import ByzantineValidator
from node.config import NodeConfig, load_config, parse_address
from node.consensus import (
    Broadcast,
    Consensus,
    Decide,
    Effect,
    Equivocation,
    ScheduleTimeout,
    TimeoutParams,
    proposer_for,
)
from node.evidence import DoubleVote, EvidencePool, evidence_tx, is_recorded, next_nonce, own_participant
from node.faults import Faults, faults_from_env
from node.mempool import Mempool
from node.messages import Proposal, Vote
from node.privval import FileSigner
from node.wal import WAL

NODE_KEY_FILE = "node_key"
SIGNER_STATE_FILE = "signer_state"
ADDRESSES_FILE = "node.json"  # the addresses actually bound, written at start
TICK_S = 0.25
SYNC_BLOCKS_MAX = 64  # blocks in one sync response
SYNC_RESPONSE_BYTES_MAX = 6 * 1024 * 1024
SYNC_TIMEOUT_S = 5.0
TX_BATCH_MAX = 500  # transactions in one gossip message
TX_FLUSH_S = 0.01
TX_RESEND_MAX = 5_000  # pending transactions offered to a peer that connects
TX_SEEN_MAX = 100_000  # digests of gossiped transactions this node has already handled
# Refusals that may not hold when the same bytes come again (from another peer, later):
TX_REFUSALS_TRANSIENT = frozenset({"mempool_full", "sender_queue_full", "nonce_gap", "expired"})
COMMIT_TIMES_KEPT = 1_000
RECENT_RECEIPTS_HEIGHTS = 8  # decoded receipts kept for the API's commit replies

_TXS, _PROPOSAL, _VOTE = int(p2p.MSG.TXS), int(p2p.MSG.PROPOSAL), int(p2p.MSG.VOTE)
_STATUS, _GET_BLOCKS, _BLOCKS = int(p2p.MSG.STATUS), int(p2p.MSG.GET_BLOCKS), int(p2p.MSG.BLOCKS)
_EVIDENCE = int(p2p.MSG.EVIDENCE)


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class Node:
    def __init__(
        self,
        home: Path,
        config: NodeConfig | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        faults: Faults | None = None,
    ) -> None:
        self.home = home
        self.config = cfg = config or load_config(home)
        self.faults = faults or Faults()
        self.clock_ms = clock_ms = self.faults.clock(clock_ms)
        self.log = _logger(home, cfg.node.log_level, cfg.node.moniker)
        self.genesis = load_genesis(home / cfg.node.genesis)
        self.key = read_key_file(home / NODE_KEY_FILE)
        self.store = Store.open_leveldb(home / "db")
        try:
            self.ledger = Ledger(self.store, self.genesis, default_registry())
        except BaseException:
            self.store.close()
            raise
        self.faults.slow_disk(self.store.backend)
        self.chain_id = self.genesis.chain_id
        self.mempool = Mempool(
            self.ledger.executor, self.store, txs_max=cfg.mempool.txs_max, bytes_max=cfg.mempool.bytes_max
        )
        is_validator = cfg.node.role == "validator"
        self.signer = FileSigner(self.key, home / SIGNER_STATE_FILE) if is_validator else None
        if is_validator and self.ledger.validators.power_of(self.key.public) == 0:
            self.log.warning(
                "node key %s is not in the validator set: following without voting", self.key.key_id
            )
        self.wal = WAL(home / "wal")
        self.app = LedgerApp(
            self.ledger,
            self.mempool,
            self.key.public if is_validator else None,
            clock_ms,
            block_txs_max=cfg.consensus.block_txs_max,
            block_bytes_max=cfg.consensus.block_bytes_max,
            clock_drift_ms=cfg.consensus.clock_drift_ms,
            log=self.log,
        )
        c = cfg.consensus
        self.heartbeat_ms = c.heartbeat_ms or self.genesis.consensus_param("heartbeat_ms")
        self.timeouts = TimeoutParams(
            c.timeout_propose_ms, c.timeout_prevote_ms, c.timeout_precommit_ms, c.timeout_delta_ms
        )
        self.consensus = Consensus(
            self.chain_id,
            self.ledger.head.height + 1,
            self.ledger.validators,
            self.app,
            self.signer,
            verify_signature,
            self.timeouts,
        )
        self.evidence = EvidencePool(home / "evidence.log", self.chain_id)
        self._allowed_observers = {bytes.fromhex(k) for k in cfg.p2p.observers}
        self._genesis_validators = {v.pubkey for v in self.genesis.validators.validators}
        self.transport = p2p.Transport(
            chain_id=self.chain_id,
            genesis_hash=self.ledger.genesis_hash,
            key=self.key,
            allowed=self._allowed,
            config=p2p.P2PConfig(
                listen=parse_address(cfg.p2p.listen, "p2p.listen"),
                peers=[parse_address(a, "p2p.peers") for a in cfg.p2p.peers],
                frame_bytes_max=cfg.p2p.frame_bytes_max,
                queue_max=cfg.p2p.queue_max,
            ),
            on_message=self._on_message,
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            log=self.log.getChild("p2p"),
        )
        self.byzantine: ByzantineValidator | None = None
        if self.faults.byzantine is not None and is_validator:
            self.byzantine = ByzantineValidator(
                self.faults.byzantine, self.key, self.chain_id, self.faults.seed, self.transport, self.log
            )
            self.byzantine.wrap_app(self.app)
        if self.faults.active:
            self.log.warning("TEST FAULTS ACTIVE: %s", self.faults.to_json())
        self.peer_status: dict[bytes, tuple[int, int, int]] = {}
        self._unauthentic = 0  # consensus messages dropped for a bad signature or signer
        self._waiting = False  # decided; waiting to start the next height
        self._committed_at = 0.0
        self._height_started = time.monotonic()
        self._tick_state: tuple[int, int, int] | None = None
        self._sync_pending: tuple[bytes, float] | None = None
        self._tx_outbox: list[tuple[bytes, bytes | None]] = []  # (encoded tx, peer it came from)
        # In a mesh every transaction arrives from several peers; recognising a copy by a digest
        # of its bytes saves decoding it and checking it again (most of admission's cost).
        self._tx_seen: OrderedDict[bytes, None] = OrderedDict()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._start_handle: asyncio.TimerHandle | None = None
        self._timers: set[asyncio.TimerHandle] = set()
        self._stop = asyncio.Event()
        self._stopped = False
        self.commit_waiters: dict[bytes, list[asyncio.Future[Any]]] = {}
        # called after each block is written (API index, event stream); a failure is logged only
        self.commit_listeners: list[Callable[[Block, tuple[Receipt, ...]], None]] = []
        self.commit_times: list[tuple[int, float, int, int]] = []  # (height, seconds, round, txs)
        # The receipts of the last few blocks, decoded: every ``wait=commit`` reply reads one, and
        # decoding a block's receipts per transaction would cost O(txs^2) per block.
        self._recent_receipts: dict[int, tuple[Receipt, ...]] = {}
        self.started_at = time.monotonic()
        self.rpc: Any = None

    # --- life ---------------------------------------------------------------------------------
    def _allowed(self, pubkey: bytes) -> bool:
        return (
            pubkey in self._genesis_validators
            or pubkey in self._allowed_observers
            or self.ledger.validators.power_of(pubkey) > 0
        )

    async def run(self) -> None:
        """Run until SIGTERM / SIGINT (or ``stop``), then shut down cleanly."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            try:
                loop.add_signal_handler(sig, self._stop.set)
            except (NotImplementedError, RuntimeError):  # not the main thread
                pass
        try:
            await self.start()
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def start(self) -> None:
        await self.transport.start()
        if self.config.rpc.listen:
            from node.rpc import start_rpc

            self.rpc = await start_rpc(self, parse_address(self.config.rpc.listen, "rpc.listen"))
        self._write_addresses()
        self._boot()
        self._guard(
            lambda: self._submit_evidence([self.evidence.items[k] for k in sorted(self.evidence.items)])
        )
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop())
        self.log.info(
            "node %s (%s) started at height %d; p2p %s",
            self.config.node.moniker,
            self.config.node.role,
            self.ledger.head.height,
            _addr(self.transport.listen_address),
        )

    def stop(self) -> None:
        self._stop.set()

    async def shutdown(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.log.info("shutting down at height %d", self.ledger.head.height)
        for handle in (*self._timers, self._flush_handle, self._start_handle):
            if handle is not None:
                handle.cancel()
        ticker = getattr(self, "_ticker", None)
        if ticker is not None:
            ticker.cancel()
        if self.rpc is not None:
            await self.rpc.cleanup()
        await self.transport.stop()
        for waiters in self.commit_waiters.values():
            for fut in waiters:
                if not fut.done():
                    fut.cancel()
        self.wal.close()
        self.store.close()
        for handler in list(self.log.handlers):
            handler.close()
            self.log.removeHandler(handler)

    def _write_addresses(self) -> None:
        doc = {
            "moniker": self.config.node.moniker,
            "role": self.config.node.role,
            "node_key": self.key.key_id,
            "p2p": _addr(self.transport.listen_address),
            "rpc": _addr(self.rpc.address) if self.rpc is not None else None,
            "pid": os.getpid(),
        }
        tmp = self.home / (ADDRESSES_FILE + ".tmp")
        tmp.write_text(json.dumps(doc, indent=2) + "\n")
        os.replace(tmp, self.home / ADDRESSES_FILE)

    def _boot(self) -> None:
        """Resume the current height from the WAL, or wait to start it."""
        height = self.consensus.height
        self.wal.open_height(height)
        records = self.wal.read(height)
        if records:
            self.log.info("restoring height %d from %d WAL records", height, len(records))
            self._height_started = time.monotonic()
            self._apply(self.consensus.restore(records))
        else:
            self._wait_for_next_height(immediately=True)

    # --- consensus effects --------------------------------------------------------------------
    def _apply(self, effects: list[Effect]) -> None:
        out: list[Proposal | Vote] = []
        decided: list[Decide] = []
        for e in effects:
            if isinstance(e, Broadcast):
                self.wal.append(e.message, sync=True)
                out.append(e.message)
            elif isinstance(e, ScheduleTimeout):
                self._schedule_timeout(e)
            elif isinstance(e, Decide):
                decided.append(e)
            elif isinstance(e, Equivocation):
                self._new_evidence(e.first, e.second)
        for m in out:
            self._broadcast_consensus(m)
        for d in decided:
            self._commit_decided(d)

    def _new_evidence(self, first: Vote, second: Vote, source: bytes | None = None) -> bool:
        """Keep a verified double vote and pass it on, so every node holds the proof."""
        if not self.evidence.add(first, second):
            return False
        self.log.warning(
            "EVIDENCE: validator %s double-voted at height %d round %d",
            first.validator.hex(),
            first.height,
            first.round,
        )
        self.transport.broadcast([_EVIDENCE, first.to_wire(), second.to_wire()], exclude=source)
        self._submit_evidence([DoubleVote(first, second)])
        return True

    def _submit_evidence(self, items: list[DoubleVote]) -> None:
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
            stx = evidence_tx(self.chain_id, sender, nonce, item, self.key)
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

    def _broadcast_consensus(self, m: Proposal | Vote) -> None:
        if self.byzantine is not None and self.byzantine.broadcast(m):
            return
        kind = _PROPOSAL if isinstance(m, Proposal) else _VOTE
        self.transport.broadcast([kind, m.to_wire()])

    def _schedule_timeout(self, e: ScheduleTimeout) -> None:
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def fire() -> None:
            self._timers.discard(handle)  # type: ignore[arg-type]
            self._guard(lambda: self._apply(self.consensus.on_timeout(e.step, e.height, e.round)))

        handle = loop.call_later(e.delay_ms / 1000, fire)
        self._timers.add(handle)

    def _commit_decided(self, d: Decide) -> None:
        block, result = self.app.decided(d.block_hash)
        self.ledger.commit(block, d.certificate, result)
        self._after_commit(block, d.certificate, result.receipts, synced=False)

    def receipt(self, height: int, index: int) -> Receipt | None:
        """Receipt ``index`` of the block at ``height`` (from memory for recent blocks)."""
        receipts = self._recent_receipts.get(height)
        if receipts is None:
            receipts = tuple(self.store.receipts(height) or ())
        return receipts[index] if index < len(receipts) else None

    def _after_commit(
        self, block: Block, cert: CommitCertificate, receipts: tuple[Receipt, ...], synced: bool
    ) -> None:
        height = block.height
        self._recent_receipts[height] = tuple(receipts)
        self._recent_receipts.pop(height - RECENT_RECEIPTS_HEIGHTS, None)
        for listener in self.commit_listeners:
            try:
                listener(block, receipts)
            except Exception:
                self.log.exception("commit listener failed at height %d", height)
        self.mempool.update(block.txs, height + 1)
        self.app.new_height(cert)
        now = time.monotonic()
        took = now - self._height_started
        if not synced:
            self.commit_times.append((height, took, cert.round, len(block.txs)))
            del self.commit_times[:-COMMIT_TIMES_KEPT]
        self._committed_at = now
        self.log.info(
            "committed height %d%s: %d txs, round %d, %s, %.0f ms",
            height,
            " (sync)" if synced else "",
            len(block.txs),
            cert.round,
            block.hash().hex()[:16],
            took * 1000,
        )
        for stx in block.txs:
            for fut in self.commit_waiters.pop(stx.hash, ()):
                if not fut.done():
                    fut.set_result(height)
        for fut in self.commit_waiters.pop(b"block", ()):
            if not fut.done():
                fut.set_result(height)
        if self.ledger.code_mismatch is not None:  # a governance upgrade activated other code
            self.log.critical("stopping at height %d: %s", height, self.ledger.code_mismatch)
            self.stop()
            return
        if not synced:
            self._wait_for_next_height()

    # --- starting heights -----------------------------------------------------------------------
    def _wait_for_next_height(self, immediately: bool = False) -> None:
        self._waiting = True
        if immediately:
            self._committed_at = 0.0
        self._maybe_start()

    def _maybe_start(self) -> None:
        if not self._waiting or self._stopped:
            return
        if self._start_handle is not None:
            self._start_handle.cancel()
            self._start_handle = None
        loop = asyncio.get_running_loop()
        wait_s = self._committed_at + self.config.consensus.commit_wait_ms / 1000 - time.monotonic()
        heartbeat_in_ms = self.ledger.head.time_ms + self.heartbeat_ms - self.clock_ms()
        due = len(self.mempool) > 0 or heartbeat_in_ms <= 0 or self._next_height_heard()
        if due and wait_s <= 0:
            self._enter_height(self.ledger.head.height + 1)
            return
        delay = wait_s if due else max(wait_s, heartbeat_in_ms / 1000)
        self._start_handle = loop.call_later(max(delay, 0.001), lambda: self._guard(self._maybe_start))

    def _next_height_heard(self) -> bool:
        """A peer already sent a message for the height we would start."""
        target = self.ledger.head.height + 1
        return any(m.height == target for m in self.consensus.future)

    def _enter_height(self, height: int) -> None:
        self._waiting = False
        if self._start_handle is not None:
            self._start_handle.cancel()
            self._start_handle = None
        self.wal.open_height(height)
        self._height_started = time.monotonic()
        self._tick_state = None
        self._apply(self.consensus.skip_to(height, self.ledger.validators))

    # --- transactions ---------------------------------------------------------------------------
    def submit(self, data: bytes, source: bytes | None = None) -> SignedTx:
        """Admit one encoded signed transaction to the mempool and gossip it to every peer but
        ``source`` (the peer it came from, if any). Raises InvalidTransaction (``tx_malformed``,
        a mempool refusal, ...) with nothing admitted."""
        stx = SignedTx.decode(data)
        self.mempool.add(stx, len(data), self.ledger.head.height + 1)
        self._queue_gossip(data, source)
        self._maybe_start()
        return stx

    def _queue_gossip(self, data: bytes, source: bytes | None) -> None:
        self._tx_outbox.append((data, source))
        if len(self._tx_outbox) >= TX_BATCH_MAX:
            self._flush_txs()
        elif self._flush_handle is None:
            self._flush_handle = asyncio.get_running_loop().call_later(TX_FLUSH_S, self._flush_txs)

    def _flush_txs(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        by_source: dict[bytes | None, list[bytes]] = {}
        for data, source in self._tx_outbox:
            by_source.setdefault(source, []).append(data)
        self._tx_outbox = []
        for source, items in by_source.items():  # arrival order within each source
            for i in range(0, len(items), TX_BATCH_MAX):
                self.transport.broadcast([_TXS, items[i : i + TX_BATCH_MAX]], exclude=source)

    # --- peers ----------------------------------------------------------------------------------
    def _on_connect(self, peer: p2p.Peer) -> None:
        self.log.info("peer %s connected (%s)", peer.pubkey.hex()[:16], peer.address)
        self.transport.send(peer.pubkey, self._status_message())
        # What is pending here may never have reached this peer (it was down, or just started):
        # without this, transactions sent to an observer before it had peers would never leave.
        pending = [stx.encode() for stx in self.mempool.reap(TX_RESEND_MAX, SYNC_RESPONSE_BYTES_MAX)]
        for i in range(0, len(pending), TX_BATCH_MAX):
            self.transport.send(peer.pubkey, [_TXS, pending[i : i + TX_BATCH_MAX]])

    def _on_disconnect(self, peer: p2p.Peer, reason: str) -> None:
        self.peer_status.pop(peer.pubkey, None)
        if self._sync_pending is not None and self._sync_pending[0] == peer.pubkey:
            self._sync_pending = None
        self.log.info("peer %s disconnected: %s", peer.pubkey.hex()[:16], reason)

    def _on_message(self, peer: p2p.Peer, message: list[Any]) -> None:
        handler = self._handlers.get(message[0])
        if handler is None:
            return
        try:
            handler(self, peer, message)
        except _Misbehaved as exc:
            self.transport.disconnect(peer.pubkey, str(exc))
        except ClearchainError as exc:
            if not exc.code.startswith("store"):
                raise  # the transport logs it with its traceback and drops the peer
            self.log.critical("store failure, stopping: %s: %s", exc.code, exc.message)
            self.stop()

    def _on_txs(self, peer: p2p.Peer, message: list[Any]) -> None:
        _need(
            len(message) == 2 and type(message[1]) is list and len(message[1]) <= TX_BATCH_MAX, "bad_tx_batch"
        )
        for data in message[1]:
            _need(type(data) is bytes, "bad_tx_batch")
            digest = hashlib.blake2b(data, digest_size=16).digest()
            if digest in self._tx_seen:
                continue  # a copy from another peer: handled already
            try:
                self.submit(data, peer.pubkey)
            except InvalidTransaction as exc:
                if exc.code == "tx_malformed":
                    raise _Misbehaved("malformed_tx") from exc
                # duplicates and stale nonces are normal in gossip; a transient refusal may
                # pass when the same transaction comes again
                if exc.code in TX_REFUSALS_TRANSIENT:
                    continue
            self._tx_seen[digest] = None
            if len(self._tx_seen) > TX_SEEN_MAX:
                self._tx_seen.popitem(last=False)

    def _on_consensus_message(self, peer: p2p.Peer, message: list[Any]) -> None:
        _need(len(message) == 2, "bad_consensus_message")
        m: Proposal | Vote | None
        m = Proposal.from_wire(message[1]) if message[0] == _PROPOSAL else Vote.from_wire(message[1])
        _need(m is not None, "bad_consensus_message")
        assert m is not None
        c = self.consensus
        if m.height in (c.height, c.height + 1) and not self._authentic(m):
            self._unauthentic += 1  # nothing unsigned reaches the WAL or the next height's buffer
            return
        if m.height == c.height and not self._waiting:
            self.wal.append(m, sync=False)
        elif m.height > c.height + 1:
            self._request_blocks(peer.pubkey, m.height)
        if isinstance(m, Proposal):
            effects = c.on_proposal(m)
        else:
            effects = c.on_vote(m)
        self._apply(effects)
        if self._waiting and m.height == self.ledger.head.height + 1:
            self._maybe_start()

    def _authentic(self, m: Proposal | Vote) -> bool:
        """Signed by the validator it names, who may send it (the round's proposer, a member of
        the set), judged by the current set. A message a peer relays is one its sender signed,
        so this costs one verification per message and keeps forged ones out of the WAL, out of
        the bounded buffer for the next height, and out of the rule that starts that height."""
        validators = self.consensus.validators
        if isinstance(m, Proposal):
            signer = m.proposer
            if signer != proposer_for(validators, m.height, m.round):
                return False
        else:
            signer = m.validator
            if validators.power_of(signer) == 0:
                return False
        return verify_signature(signer, m.signature, m.sign_bytes(self.chain_id))

    def _on_status(self, peer: p2p.Peer, message: list[Any]) -> None:
        _need(len(message) == 4 and all(_uint(x) for x in message[1:]), "bad_status")
        height, round_, step = message[1:]
        self.peer_status[peer.pubkey] = (height, round_, step)
        if height > self.consensus.height:
            self._request_blocks(peer.pubkey, height)

    def _on_evidence(self, peer: p2p.Peer, message: list[Any]) -> None:
        _need(len(message) == 3, "bad_evidence")
        first, second = Vote.from_wire(message[1]), Vote.from_wire(message[2])
        _need(first is not None and second is not None, "bad_evidence")
        assert first is not None and second is not None
        item = DoubleVote(first, second)
        if item.key in self.evidence.items:
            return
        _need(item.verify(self.chain_id), "bad_evidence")
        self._new_evidence(first, second, source=peer.pubkey)

    # --- block sync -----------------------------------------------------------------------------
    def _request_blocks(self, pubkey: bytes, peer_height: int) -> None:
        """Ask ``pubkey`` for the committed blocks after our head (one request at a time)."""
        now = time.monotonic()
        if self._sync_pending is not None and self._sync_pending[1] > now:
            return
        start = self.ledger.head.height + 1
        end = min(peer_height - 1, start + SYNC_BLOCKS_MAX - 1)
        if end < start:
            return
        if self.transport.send(pubkey, [_GET_BLOCKS, start, end]):
            self._sync_pending = (pubkey, now + SYNC_TIMEOUT_S)

    def _on_get_blocks(self, peer: p2p.Peer, message: list[Any]) -> None:
        _need(
            len(message) == 3 and _uint(message[1]) and _uint(message[2]) and 1 <= message[1] <= message[2],
            "bad_get_blocks",
        )
        start, end = message[1], min(message[2], self.ledger.head.height, message[1] + SYNC_BLOCKS_MAX - 1)
        items: list[list[Any]] = []
        size = 0
        budget = min(SYNC_RESPONSE_BYTES_MAX, self.config.p2p.frame_bytes_max - 64 * 1024)
        for height in range(start, end + 1):
            data = self.store.block_bytes(height)
            cert = self.store.certificate(height)
            if data is None or cert is None:
                break
            if items and size + len(data) > budget:
                break
            items.append([data, cert.to_wire()])
            size += len(data)
        if items:
            self.transport.send(peer.pubkey, [_BLOCKS, items])

    def _on_blocks(self, peer: p2p.Peer, message: list[Any]) -> None:
        _need(
            len(message) == 2 and type(message[1]) is list and len(message[1]) <= SYNC_BLOCKS_MAX,
            "bad_blocks",
        )
        if self._sync_pending is not None and self._sync_pending[0] == peer.pubkey:
            self._sync_pending = None
        applied = 0
        for item in message[1]:
            _need(type(item) is list and len(item) == 2 and type(item[0]) is bytes, "bad_blocks")
            try:
                block = Block.decode(item[0])
                cert = CommitCertificate.from_wire(item[1])
            except ClearchainError as exc:
                raise _Misbehaved(f"bad_sync_block: {exc.code}") from exc
            if block.height <= self.ledger.head.height:
                continue
            if block.height != self.ledger.head.height + 1 or self.ledger.code_mismatch is not None:
                break
            try:
                result = self.ledger.apply_committed(block, cert)
            except ClearchainError as exc:
                self.log.warning(
                    "sync: peer %s sent a block that fails verification: %s: %s",
                    peer.pubkey.hex()[:16],
                    exc.code,
                    exc.message,
                )
                raise _Misbehaved(f"bad_sync_block: {exc.code}") from exc
            self._after_commit(block, cert, result.receipts, synced=True)
            applied += 1
        if applied and self.ledger.code_mismatch is None:
            self._enter_height(self.ledger.head.height + 1)
            status = self.peer_status.get(peer.pubkey)
            if status is not None and status[0] > self.consensus.height:
                self._request_blocks(peer.pubkey, status[0])

    # --- gossip tick ----------------------------------------------------------------------------
    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(TICK_S)
            self._guard(self._tick)

    def _status_message(self) -> list[Any]:
        c = self.consensus
        return [_STATUS, c.height, c.round, c.step]

    def _tick(self) -> None:
        c = self.consensus
        self.transport.broadcast(self._status_message())
        if self.byzantine is not None:
            self.byzantine.tick()
        self._maybe_start()
        state = (c.height, c.round, c.step)
        stalled, self._tick_state = state == self._tick_state, state
        if stalled and not self._waiting:
            for pubkey, (height, round_, _) in sorted(self.peer_status.items()):
                if height == c.height:
                    for m in self._bundle(round_):
                        self.transport.send(pubkey, m)
        ahead = sorted(((s[0], k) for k, s in self.peer_status.items() if s[0] > c.height), reverse=True)
        if ahead:
            self._request_blocks(ahead[0][1], ahead[0][0])

    def _bundle(self, peer_round: int) -> list[list[Any]]:
        """What this node holds at its height for the rounds a stalled peer may lack."""
        c = self.consensus
        proposal = c.proposals.get(peer_round)
        rounds = sorted(
            {peer_round, c.round, c.valid_round, -1 if proposal is None else proposal.pol_round} - {-1}
        )
        out: list[list[Any]] = []
        for r in rounds:
            p = c.proposals.get(r)
            if p is not None:
                out.append([_PROPOSAL, p.to_wire()])
            for votes in (c.prevotes.get(r), c.precommits.get(r)):
                if votes is None:
                    continue
                for validator in sorted(votes.by_validator):
                    for bh in sorted(votes.by_validator[validator]):
                        out.append([_VOTE, votes.by_validator[validator][bh].to_wire()])
        return out

    def _guard(self, fn: Callable[[], None]) -> None:
        """Run an event handler; a bug in one is logged loudly, and a failure to write a block
        (the store is unusable) stops the node rather than let it run on a state it lost."""
        if self._stopped:
            return
        try:
            fn()
        except ClearchainError as exc:
            if exc.code.startswith("store"):
                self.log.critical("store failure, stopping: %s: %s", exc.code, exc.message)
                self.stop()
            else:
                self.log.exception("unexpected %s", exc.code)
        except Exception:
            self.log.exception("bug in an event handler")

    _handlers: dict[int, Callable[[Node, p2p.Peer, list[Any]], None]] = {
        _TXS: _on_txs,
        _PROPOSAL: _on_consensus_message,
        _VOTE: _on_consensus_message,
        _STATUS: _on_status,
        _GET_BLOCKS: _on_get_blocks,
        _BLOCKS: _on_blocks,
        _EVIDENCE: _on_evidence,
    }

    # --- introspection --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        head = self.ledger.head
        return {
            "chain_id": self.chain_id,
            "moniker": self.config.node.moniker,
            "role": self.config.node.role,
            "node_key": self.key.key_id,
            "height": head.height,
            "head_hash": head.hash().hex(),
            "head_time_ms": head.time_ms,
            "state_root": head.state_root.hex(),
            "consensus": self.consensus.describe(),
            "waiting_for_transactions": self._waiting,
            "peers": [
                {
                    "node_key": k.hex(),
                    "address": p.address,
                    "outbound": p.outbound,
                    "height": self.peer_status.get(k, (None,))[0],
                }
                for k, p in sorted(self.transport.peers.items())
            ],
            "mempool": {"txs": len(self.mempool), "bytes": self.mempool.size_bytes},
            "evidence": len(self.evidence.items),
            "unauthentic_messages": self._unauthentic,
            **({"test_faults": self.faults.to_json()} if self.faults.active else {}),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
        }


class _Misbehaved(Exception):
    """A peer sent a message no honest node sends; the reason becomes the disconnect reason."""


def _need(ok: bool, reason: str) -> None:
    if not ok:
        raise _Misbehaved(reason)


def _uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63


def _addr(address: tuple[str, int] | None) -> str | None:
    return None if address is None else f"{address[0]}:{address[1]}"


def _logger(home: Path, level: str, moniker: str) -> logging.Logger:
    log = logging.getLogger(f"clearchain.{moniker}")
    if log.handlers:  # another node of that name in this process (tests): keep their logs apart
        log = logging.getLogger(f"clearchain.{moniker}.{id(home)}")
    log.setLevel(getattr(logging, level.upper(), logging.INFO))
    log.propagate = False
    handler = logging.FileHandler(home / "node.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    log.addHandler(handler)
    return log


async def run_node(home: Path, echo_log: bool = False) -> None:
    node = Node(home, faults=faults_from_env())
    if echo_log:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        node.log.addHandler(stream)
    await node.run()
    if node.ledger.code_mismatch is not None:  # exit non-zero: the operator must upgrade
        raise ContractCodeMismatch("contract_code_mismatch", node.ledger.code_mismatch)
