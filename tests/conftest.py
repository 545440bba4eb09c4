"""Shared fixtures: the dev genesis, ledgers on either store, and a signing helper."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from chain.genesis import Genesis, parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.state import BlockState
from chain.store import Store
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from contracts import default_registry
from contracts.accounts import balance_in
from tests.io_guard import pytest_runtest_call, pytest_runtest_makereport, pytest_runtest_setup  # noqa: F401

# CI (CI=true) replays a fixed sequence of examples so a run is reproducible; locally every run
# explores new ones. Neither has deadlines: this machine's speed varies by 2x.
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def genesis() -> Genesis:
    return parse_genesis(devnet.dev_genesis_doc())


class Chain:
    """A ledger with a solo producer and nonce-tracking signer for the dev participants."""

    def __init__(self, store: Store, genesis: Genesis) -> None:
        self.store = store
        self.genesis = genesis
        self.ledger = Ledger(store, genesis, default_registry())
        keys = [devnet.validator_key(i) for i in range(len(genesis.validators.validators))]
        self.producer = SoloProducer(self.ledger, keys)
        self.nonces: dict[str, int] = {}

    def tx(
        self,
        sender: str,
        contract: str,
        method: str,
        args: list[Any],
        *,
        nonce: int | None = None,
        keys: list[Any] | None = None,
        chain_id: str | None = None,
        valid_until: int = 0,
    ) -> SignedTx:
        """A signed tx; by default the next nonce and exactly the policy's threshold of keys."""
        if nonce is None:
            nonce = self.nonces.get(sender, 0) + 1
            self.nonces[sender] = nonce
        body = Tx(chain_id or self.genesis.chain_id, sender, nonce, contract, method, args, valid_until)
        return body.sign(keys if keys is not None else devnet.signing_keys(sender))

    def run(self, *txs: SignedTx):  # type: ignore[no-untyped-def]
        """Produce one block of ``txs``; returns (block, result)."""
        return self.producer.produce(list(txs))

    def state(self) -> BlockState:
        return BlockState(self.store)

    def balance(self, account: str, asset: str) -> tuple[int, int]:
        return balance_in(self.state(), account, asset)


@pytest.fixture
def make_chain(genesis: Genesis, tmp_path: Path) -> Iterator[Callable[..., Chain]]:
    """``make_chain(store="memory"|"leveldb")`` -> a fresh Chain at genesis."""
    opened: list[Store] = []

    def make(store: str = "memory") -> Chain:
        if store == "memory":
            s = Store.in_memory()
        else:
            s = Store.open_leveldb(tmp_path / f"db{len(opened)}")
        opened.append(s)
        return Chain(s, genesis)

    yield make
    for s in opened:
        s.close()


@pytest.fixture
def chain(make_chain: Callable[..., Chain]) -> Chain:
    return make_chain("memory")
