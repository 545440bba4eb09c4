"""The small dev chain the block, certificate and proof vectors describe: the shipped genesis and
three blocks made by the chain's own code (``Ledger``, ``SoloProducer``), with dev keys and fixed
times, so every byte of it is the same on every run.

Block 1 carries a custody deposit and a settled trade; block 2 a trade that fails (its receipt
says why) and a withdrawal request signed by 2 of its member's 3 keys; block 3 is an empty
heartbeat block. Each block is certified by all four dev validators.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.genesis import Genesis, parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.store import Store
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry

# What each block carries: (sender, contract, method, args).
BLOCK_CALLS: list[list[tuple[str, str, str, list[Any]]]] = [
    [
        ("custodian", "custody", "deposit", ["B-C002", "USD", 5_00, "vec-1"]),
        ("xchg-alpha", "settlement", "settle", ["V-1", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]),
    ],
    [
        ("xchg-alpha", "settlement", "settle", ["V-2", "A-C001", "B-C001", "ACME", 10**9, 1, DAY]),
        ("member-b", "custody", "request_withdrawal", ["B-C002", "USD", 1_00]),
    ],
    [],
]


@dataclass(frozen=True, slots=True)
class DevChain:
    """The store holding genesis and the blocks, the ledger over it, and the genesis it came from."""

    genesis: Genesis
    store: Store
    ledger: Ledger

    @property
    def height(self) -> int:
        return self.ledger.head.height


def open_dev_chain() -> DevChain:
    """The shipped genesis (``devnet.dev_genesis_doc``, what genesis.json holds) in an in-memory
    store, at height 0."""
    genesis = parse_genesis(devnet.dev_genesis_doc())
    store = Store.in_memory()
    return DevChain(genesis, store, Ledger(store, genesis, default_registry()))


def produce_blocks(chain: DevChain) -> None:
    """Commit the blocks of ``BLOCK_CALLS`` on top of genesis."""
    if chain.height != 0:
        raise AssertionError("the vector blocks start from genesis")
    keys = [devnet.validator_key(i) for i in range(len(chain.genesis.validators.validators))]
    producer = SoloProducer(chain.ledger, keys)
    nonces: dict[str, int] = {}
    for calls in BLOCK_CALLS:
        txs = []
        for sender, contract, method, args in calls:
            nonces[sender] = nonces.get(sender, 0) + 1
            txs.append(sign(chain.genesis.chain_id, sender, nonces[sender], contract, method, args))
        block, result = producer.produce(txs)
        if result.rejected or len(block.txs) != len(txs):
            raise AssertionError(f"a vector transaction was rejected: {result.rejected}")


def sign(chain_id: str, sender: str, nonce: int, contract: str, method: str, args: list[Any]) -> SignedTx:
    """A transaction signed by exactly its sender's threshold of dev keys (the first ones)."""
    return Tx(chain_id, sender, nonce, contract, method, args, 0).sign(devnet.signing_keys(sender))
