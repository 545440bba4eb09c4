"""The node runtime: one asyncio process that wires the ledger, consensus, WAL, mempool, p2p
transport, block sync and HTTP API of one node around the node driver.

Why it is shaped this way: everything the node does with consensus (effects to the network with
the WAL first, timers, starting heights, gossip, block sync, checking peers' messages) is
``node.driver.NodeDriver``, the same code the simulator runs. This module only builds the real
ports and plugs them in: an asyncio clock, the p2p ``Transport``, the LevelDB ``Ledger`` behind
``LedgerApp``, the file ``WAL``, the ``FileSigner``; and around the driver: transaction gossip
(``node.txgossip``), the evidence relay (``node.evidence_relay``), the commit waiters and
listeners the API uses, the RPC server, signals, the addresses file and logging.

Crash and restart: the store is written one batch per block; the WAL holds this height's
messages; the signer's record refuses conflicting signatures. On start the driver restores the
round, step and lock from the WAL and re-broadcasts the last votes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from chain.block import Block
from chain.block_pruning import blocks_pruned_below, prune_blocks
from chain.errors import ContractCodeMismatch
from chain.genesis import load_genesis
from chain.keys import read_key_file, verify_signature
from chain.ledger import Ledger, Pruning
from chain.receipt import Receipt
from chain.store import Store
from chain.tx import SignedTx
from contracts import default_registry
from node import p2p
from node.app import LedgerApp
from node.byzantine import ByzantineValidator
from node.config import NodeConfig, load_config, parse_address
from node.consensus import Consensus, TimeoutParams
from node.driver import DriverConfig, NodeDriver
from node.evidence import EvidencePool
from node.evidence_relay import EvidenceRelay
from node.faults import Faults, faults_from_env
from node.inbound import EVIDENCE, TXS
from node.mempool import Mempool
from node.ports import Committed
from node.privval import FileSigner
from node.txgossip import TxGossip
from node.wal import WAL

NODE_KEY_FILE = "node_key"
SIGNER_STATE_FILE = "signer_state"
ADDRESSES_FILE = "node.json"  # the addresses actually bound, written at start
RECENT_RECEIPTS_HEIGHTS = 8  # decoded receipts kept for the API's commit replies


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class AsyncioClock:
    """The driver's clock port on the running event loop."""

    def __init__(self, wall_ms: Callable[[], int]) -> None:
        self.wall_ms = wall_ms

    def monotonic_ms(self) -> float:
        return time.monotonic() * 1000

    def call_later(self, delay_ms: float, callback: Callable[[], None]) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay_ms / 1000, callback)


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
            storage = cfg.storage
            self.ledger = Ledger(
                self.store,
                self.genesis,
                default_registry(),
                cache_bytes=storage.cache_mb * 1024 * 1024,
                pruning=None
                if storage.pruning == "archive"
                else Pruning(storage.keep_versions, storage.prune_batch_max),
            )
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
            on_message=lambda peer, message: self.driver.on_message(peer.pubkey, message),
            on_connect=self._on_connect,
            on_disconnect=self._on_disconnect,
            log=self.log.getChild("p2p"),
        )
        self.clock = AsyncioClock(clock_ms)
        driver_config = DriverConfig(
            commit_wait_ms=c.commit_wait_ms,
            heartbeat_ms=self.heartbeat_ms,
            frame_bytes_max=cfg.p2p.frame_bytes_max,
        )
        self.driver = NodeDriver(
            self.chain_id,
            self.consensus,
            self.app,
            self.transport,
            self.clock,
            self.wal,
            verify_signature,
            self.log,
            driver_config,
        )
        self.txgossip = TxGossip(self.transport, self.clock, self.submit, self._pending_txs)
        self.evidence_relay = EvidenceRelay(
            self.evidence, self.transport, self.key, self.store, self.mempool, self.submit, self.log
        )
        self.driver.handlers[TXS] = self.txgossip.on_txs
        self.driver.handlers[EVIDENCE] = self.evidence_relay.on_evidence
        self.driver.on_equivocation = self.evidence_relay.new_evidence
        self.driver.on_commit.append(self._committed)
        self.driver.on_connect_hooks.append(self.txgossip.on_connect)
        self.driver.on_fatal = self.stop
        self.byzantine: ByzantineValidator | None = None
        if self.faults.byzantine is not None and is_validator:
            self.byzantine = ByzantineValidator(
                self.faults.byzantine, self.key, self.chain_id, self.faults.seed, self.transport, self.log
            )
            self.byzantine.wrap_app(self.app)
            self.driver.outgoing = self.byzantine.broadcast
            self.driver.on_tick.append(self.byzantine.tick)
        if self.faults.active:
            self.log.warning("TEST FAULTS ACTIVE: %s", self.faults.to_json())
        self._stop = asyncio.Event()
        self._stopped = False
        self.commit_waiters: dict[bytes, list[asyncio.Future[Any]]] = {}
        # called after each block is written (API index, event stream); a failure is logged only
        self.commit_listeners: list[Callable[[Block, tuple[Receipt, ...]], None]] = []
        # The receipts of the last few blocks, decoded: every ``wait=commit`` reply reads one, and
        # decoding a block's receipts per transaction would cost O(txs^2) per block.
        self._recent_receipts: dict[int, tuple[Receipt, ...]] = {}
        self.started_at = time.monotonic()
        self.rpc: Any = None

    # --- what the API and the metrics read from the driver --------------------------------------
    @property
    def peer_status(self) -> dict[bytes, tuple[int, int, int]]:
        return self.driver.peer_status

    @property
    def commit_times(self) -> list[tuple[int, float, int, int]]:
        return self.driver.commit_times

    @property
    def unauthentic_messages(self) -> int:
        return self.driver.unauthentic

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
        self.driver.boot()
        self.driver.guard(self.evidence_relay.submit_held)
        self.driver.start_ticking()
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
        self.driver.stop()
        self.txgossip.stop()
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

    # --- commits --------------------------------------------------------------------------------
    def receipt(self, height: int, index: int) -> Receipt | None:
        """Receipt ``index`` of the block at ``height`` (from memory for recent blocks)."""
        receipts = self._recent_receipts.get(height)
        if receipts is None:
            receipts = tuple(self.store.receipts(height) or ())
        return receipts[index] if index < len(receipts) else None

    def _committed(self, c: Committed, synced: bool) -> None:
        """After each written block: the receipts cache, the listeners, the commit waiters."""
        height, block, receipts = c.height, c.block, c.receipts
        self._recent_receipts[height] = receipts
        self._recent_receipts.pop(height - RECENT_RECEIPTS_HEIGHTS, None)
        for listener in self.commit_listeners:
            try:
                listener(block, receipts)
            except Exception:
                self.log.exception("commit listener failed at height %d", height)
        for stx in block.txs:
            for fut in self.commit_waiters.pop(stx.hash, ()):
                if not fut.done():
                    fut.set_result(height)
        for fut in self.commit_waiters.pop(b"block", ()):
            if not fut.done():
                fut.set_result(height)
        # After the listeners (the account index reads the block just written): drop a bounded
        # slice of blocks older than the window, if this node keeps one (storage.keep_blocks).
        prune_blocks(self.store, self.config.storage.keep_blocks)

    # --- transactions ---------------------------------------------------------------------------
    def submit(self, data: bytes, source: bytes | None = None) -> SignedTx:
        """Admit one encoded signed transaction to the mempool and gossip it to every peer but
        ``source`` (the peer it came from, if any). Raises InvalidTransaction (``tx_malformed``,
        a mempool refusal, ...) with nothing admitted."""
        stx = SignedTx.decode(data)
        self.mempool.add(stx, len(data), self.ledger.head.height + 1)
        self.txgossip.queue(data, source)
        self.driver.maybe_start()
        return stx

    def _pending_txs(self, count_max: int, bytes_max: int) -> list[bytes]:
        return [stx.encode() for stx in self.mempool.reap(count_max, bytes_max)]

    # --- peers ----------------------------------------------------------------------------------
    def _on_connect(self, peer: p2p.Peer) -> None:
        self.log.info("peer %s connected (%s)", peer.pubkey.hex()[:16], peer.address)
        self.driver.on_connect(peer.pubkey)

    def _on_disconnect(self, peer: p2p.Peer, reason: str) -> None:
        self.driver.on_disconnect(peer.pubkey)
        self.log.info("peer %s disconnected: %s", peer.pubkey.hex()[:16], reason)

    def status(self) -> dict[str, Any]:
        """The status document (``GET /status``, ``clearchain node status``): the head, the
        consensus state, the peers and their heights, the mempool, evidence held, messages dropped
        as unauthentic, test faults, uptime."""
        head = self.ledger.head
        driver = self.driver
        return {
            "chain_id": self.chain_id,
            "moniker": self.config.node.moniker,
            "role": self.config.node.role,
            "node_key": self.key.key_id,
            "height": head.height,
            "head_hash": head.hash().hex(),
            "head_time_ms": head.time_ms,
            "state_root": head.state_root.hex(),
            # storage.keep_blocks (0: all); heights 1 .. blocks_pruned_below - 1 are dropped.
            "keep_blocks": self.config.storage.keep_blocks,
            "blocks_pruned_below": blocks_pruned_below(self.store),
            "consensus": self.consensus.describe(),
            "waiting_for_transactions": driver.waiting,
            "peers": [
                {
                    "node_key": k.hex(),
                    "address": p.address,
                    "outbound": p.outbound,
                    "height": driver.peer_status.get(k, (None,))[0],
                }
                for k, p in sorted(self.transport.peers.items())
            ],
            "mempool": {"txs": len(self.mempool), "bytes": self.mempool.size_bytes},
            "evidence": len(self.evidence.items),
            "unauthentic_messages": driver.unauthentic,
            **({"test_faults": self.faults.to_json()} if self.faults.active else {}),
            "uptime_s": round(time.monotonic() - self.started_at, 3),
        }


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
