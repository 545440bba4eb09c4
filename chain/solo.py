"""One-process block production with locally held validator keys.

The single-process scenario, the executor benchmark and the tests need committed blocks with
real commit certificates before (and without) a network. ``SoloProducer`` proposes on the
ledger's head with a round-robin proposer, has every given validator key precommit, and commits.
On a network, consensus replaces it; the certificates it makes are the same kind.
"""

from __future__ import annotations

from chain.block import Block
from chain.certificate import CommitCertificate, sign_certificate
from chain.executor import ExecutionResult
from chain.keys import KeyPair
from chain.ledger import Ledger
from chain.tx import SignedTx


class SoloProducer:
    def __init__(self, ledger: Ledger, validator_keys: list[KeyPair], block_interval_ms: int = 1000) -> None:
        self.ledger = ledger
        self.keys = sorted(validator_keys, key=lambda k: k.public)
        self.block_interval_ms = block_interval_ms
        self.last_commit: CommitCertificate | None = None
        head = ledger.head
        if head.height > 0:
            self.last_commit = ledger.store.certificate(head.height)

    def produce(
        self, txs: list[SignedTx], verified: frozenset[bytes] | set[bytes] = frozenset()
    ) -> tuple[Block, ExecutionResult]:
        """Propose, certify and commit one block of ``txs`` (invalid ones are left out)."""
        ledger = self.ledger
        height = ledger.head.height + 1
        proposer = self.keys[height % len(self.keys)].public
        time_ms = ledger.head.time_ms + self.block_interval_ms
        block, result = ledger.propose(time_ms, txs, proposer, self.last_commit, verified)
        cert = sign_certificate(ledger.chain_id, height, 0, block.hash(), self.keys)
        ledger.commit(block, cert, result)
        self.last_commit = cert
        return block, result
