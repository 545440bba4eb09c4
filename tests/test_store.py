"""One storage suite for the in-memory and LevelDB stores, and crash safety of block writes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chain.block import Block
from chain.errors import StoreError
from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.statetree import StateTree
from chain.store import Store
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry
from tests.conftest import Chain

TRADE = ["T-1", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]


@pytest.fixture(params=["memory", "leveldb"])
def any_chain(request: pytest.FixtureRequest, make_chain) -> Chain:  # type: ignore[no-untyped-def]
    return make_chain(request.param)


def test_block_and_everything_it_changed_are_readable(any_chain: Chain) -> None:
    stx = any_chain.tx("xchg-alpha", "settlement", "settle", TRADE)
    block, result = any_chain.run(stx)
    store = any_chain.store
    assert store.head().height == 1 and store.head().block_hash == block.hash()
    assert Block.decode(store.block_bytes(1)) == block
    assert store.height_of(block.hash()) == 1
    assert store.certificate(1).block_hash == block.hash()
    assert store.certificate(0) is None
    assert store.receipts(1) == list(result.receipts)
    assert store.tx_location(stx.hash) == (1, 0)
    assert store.tx_location(b"\x00" * 32) is None
    assert store.validator_set(block.header.validators_hash) is not None
    for key, value in result.state_diff.items():
        assert store.get_state(key) == value


def test_prefix_scan_is_ordered_and_bounded_to_the_prefix(any_chain: Chain) -> None:
    keys = [k for k, _ in any_chain.store.iterate_state(b"accounts/bal/")]
    assert keys == sorted(keys) and keys
    assert all(k.startswith(b"accounts/bal/") for k in keys)


def test_store_refuses_out_of_order_blocks(any_chain: Chain) -> None:
    block, result = any_chain.run()
    with pytest.raises(StoreError) as err:
        any_chain.store.write_block(block, None, (), {}, result.tree_update)
    assert err.value.code == "store_height"


def test_reopen_gives_same_head_and_root(make_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = make_chain("leveldb")
    for i in range(3):
        chain.run(
            chain.tx(
                "xchg-alpha", "settlement", "settle", [f"T-{i}", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]
            )
        )
    head = chain.ledger.head
    chain.store.close()
    store = Store.open_leveldb(tmp_path / "db0")
    ledger = Ledger(store, chain.genesis, default_registry())
    assert ledger.head == head
    assert ledger.tree.root == head.state_root
    store.close()


def test_store_of_another_chain_is_refused(make_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = make_chain("leveldb")
    chain.store.close()
    other = parse_genesis(devnet.dev_genesis_doc(chain_id="other-chain"))
    store = Store.open_leveldb(tmp_path / "db0")
    with pytest.raises(StoreError) as err:
        Ledger(store, other, default_registry())
    assert err.value.code == "store_other_chain"
    store.close()


_WRITER = r"""
import sys
from pathlib import Path
from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.store import Store
from chain.tx import Tx
from cli.localnet import devnet
from contracts import default_registry

store = Store.open_leveldb(Path(sys.argv[1]))
g = parse_genesis(devnet.dev_genesis_doc())
ledger = Ledger(store, g, default_registry())
producer = SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)])
nonce = ledger.head.height * 20
print("ready", flush=True)
while True:
    txs = []
    for _ in range(20):
        nonce += 1
        args = [f"T{nonce}", "A-HOUSE", "B-HOUSE", "ACME", 1, 100_00] if nonce % 2 else [f"T{nonce}", "B-HOUSE", "A-HOUSE", "ACME", 1, 100_00]
        txs.append(Tx(g.chain_id, "xchg-alpha", nonce, "settlement", "settle", args, 0).sign(devnet.signing_keys("xchg-alpha")))
    producer.produce(txs)
"""


@pytest.mark.io
@pytest.mark.slow
def test_kill_9_mid_write_leaves_the_last_whole_block(tmp_path: Path) -> None:
    """A writer killed at arbitrary moments: each reopen finds a whole head block whose state
    (recomputed from scratch) matches its state root, and the chain continues from it."""
    db = tmp_path / "db"
    heights = []
    for attempt in range(4):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(db)], stdout=subprocess.PIPE, cwd=Path(__file__).parent.parent
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            time.sleep(0.3 + 0.2 * attempt)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        store = Store.open_leveldb(db)
        try:
            ledger = Ledger(store, parse_genesis(devnet.dev_genesis_doc()), default_registry())
            head = ledger.head
            assert store.block(head.height).hash() == head.hash()
            assert store.block(head.height + 1) is None
            if head.height:
                assert store.certificate(head.height).block_hash == head.hash()
            items = {k: v for k, v in store.iterate_state(b"")}
            from chain.statetree import compute_root

            assert compute_root(items) == head.state_root
            assert StateTree(store, head.state_root).root == head.state_root
            heights.append(head.height)
        finally:
            store.close()
    assert heights == sorted(heights) and heights[-1] > 0
