"""The ledger as consensus sees it: propose, hash and validate blocks carried as encoded bytes.

Consensus treats a block as an opaque value; on the network that value is ``Block.encode()``.
This adapter decodes each proposed value once, executes it once (the proposer when it builds it,
every other validator before it prevotes), and keeps the execution result by block hash so the
commit writes exactly what was validated, with no second execution (issue 3, item 1).

It is also the driver's application port (``node.ports.ChainApp``): the head, the validator set,
writing a decided block, applying a synced one with its certificate, and serving committed
blocks to peers that lack them.

Validity is the ledger's deterministic check plus one local, timing-based one, as in
CometBFT's proposer-based timestamps: a block whose time is more than ``clock_drift_ms`` ahead of
this node's clock gets a nil prevote. Without it a byzantine proposer could push block time, and
with it every time-based contract task (settlement cycles, escrow expiry), far into the future.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from chain.block import Block
from chain.block_pruning import blocks_pruned_below
from chain.certificate import CommitCertificate
from chain.errors import ClearchainError
from chain.executor import ExecutionResult
from chain.ledger import Ledger
from chain.limits import BLOCK_BYTES_MAX
from chain.validators import ValidatorSet
from node.consensus import Decide
from node.mempool import Mempool
from node.ports import Committed

PROPOSAL_BYTES_RESERVE = 64 * 1024  # header, certificate and framing next to the transactions


class LedgerApp:
    def __init__(
        self,
        ledger: Ledger,
        mempool: Mempool,
        proposer: bytes | None,
        clock_ms: Callable[[], int],
        *,
        block_txs_max: int,
        block_bytes_max: int = BLOCK_BYTES_MAX,
        clock_drift_ms: int,
        log: logging.Logger,
    ) -> None:
        self.ledger = ledger
        self.mempool = mempool
        self.proposer = proposer
        self.clock_ms = clock_ms
        self.block_txs_max = block_txs_max
        self.block_bytes_max = min(block_bytes_max, BLOCK_BYTES_MAX - PROPOSAL_BYTES_RESERVE)
        self.clock_drift_ms = clock_drift_ms
        self.log = log
        self.last_commit: CommitCertificate | None = ledger.store.certificate(ledger.head.height)
        self._blocks: dict[bytes, Block] = {}
        self._results: dict[bytes, ExecutionResult] = {}

    def new_height(self, last_commit: CommitCertificate | None) -> None:
        """The head moved: forget the old height's blocks; ``last_commit`` certifies the head."""
        self._blocks.clear()
        self._results.clear()
        self.last_commit = last_commit

    # --- consensus.Application ------------------------------------------------------------------
    def propose(self, height: int, round_: int) -> tuple[bytes, Any]:
        assert self.proposer is not None, "only a validator proposes"
        txs = self.mempool.reap(self.block_txs_max, self.block_bytes_max)
        block, result = self.ledger.propose(
            self.clock_ms(), txs, self.proposer, self.last_commit, verified=self.mempool.verified
        )
        for rejected in result.rejected:
            self.mempool.remove(rejected.tx.hash, rejected.error.code, rejected.error.message)
        block_hash = block.hash()
        self._blocks[block_hash] = block
        self._results[block_hash] = result
        self.log.info(
            "proposing height %d round %d: %d txs, %d left out",
            height,
            round_,
            len(block.txs),
            len(result.rejected),
        )
        return block_hash, block.encode()

    def block_hash(self, value: Any) -> bytes | None:
        if type(value) is not bytes or len(value) > BLOCK_BYTES_MAX:
            return None
        try:
            block = Block.decode(value)
        except ClearchainError as exc:
            self.log.warning("undecodable proposed block: %s", exc)
            return None
        block_hash = block.hash()
        self._blocks.setdefault(block_hash, block)
        return block_hash

    def validate(self, height: int, block_hash: bytes, value: Any) -> bool:
        if block_hash in self._results:
            return True
        block = self._blocks.get(block_hash)
        if block is None or height != self.ledger.head.height + 1:
            return False
        drift = block.header.time_ms - self.clock_ms()
        if drift > self.clock_drift_ms:
            self.log.warning(
                "height %d: block time is %d ms ahead of this node's clock; prevoting nil", height, drift
            )
            return False
        try:
            result = self.ledger.validate(block, verified=self.mempool.verified)
        except ClearchainError as exc:
            self.log.warning(
                "height %d: invalid block %s: %s: %s", height, block_hash.hex()[:16], exc.code, exc.message
            )
            return False
        self._results[block_hash] = result
        return True

    # --- commit ---------------------------------------------------------------------------------
    def decided(self, block_hash: bytes) -> tuple[Block, ExecutionResult]:
        """The block consensus decided and the result this node computed when it validated it."""
        block = self._blocks[block_hash]
        result = self._results.get(block_hash)
        if result is None:  # decided without our prevote (we were late): execute now
            result = self.ledger.validate(block, verified=self.mempool.verified)
        return block, result

    # --- the driver's port (node.ports.ChainApp) ------------------------------------------------
    def head_height(self) -> int:
        return self.ledger.head.height

    def head_time_ms(self) -> int:
        return self.ledger.head.time_ms

    def validators(self) -> ValidatorSet:
        return self.ledger.validators

    def has_pending(self) -> bool:
        return len(self.mempool) > 0

    def halted(self) -> str | None:
        return self.ledger.code_mismatch

    def commit(self, decision: Decide) -> Committed:
        """Write the decided block with the result computed when it was validated."""
        block, result = self.decided(decision.block_hash)
        self.ledger.commit(block, decision.certificate, result)
        return self._written(block, decision.certificate, result)

    def decode_synced(
        self, block_bytes: bytes, certificate_wire: Any
    ) -> tuple[int, Block, CommitCertificate]:
        block = Block.decode(block_bytes)
        return block.height, block, CommitCertificate.from_wire(certificate_wire)

    def apply_synced(self, block: Block, certificate: CommitCertificate) -> Committed:
        result = self.ledger.apply_committed(block, certificate)
        return self._written(block, certificate, result)

    def synced_block(self, height: int) -> tuple[bytes, Any] | None:
        store = self.ledger.store
        data, cert = store.block_bytes(height), store.certificate(height)
        return None if data is None or cert is None else (data, cert.to_wire())

    def blocks_pruned_below(self) -> int:
        return blocks_pruned_below(self.ledger.store)

    def _written(self, block: Block, cert: CommitCertificate, result: ExecutionResult) -> Committed:
        self.mempool.update(block.txs, block.height + 1)
        self.new_height(cert)
        return Committed(
            block.height, cert.round, block.hash(), len(block.txs), block, tuple(result.receipts), cert
        )
