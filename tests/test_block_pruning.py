"""``storage.keep_blocks``: old blocks, certificates, receipts and their indexes are dropped in
bounded per-height batches, on both stores, and a crash at any write leaves a store that opens,
whose ``meta/blocks_pruned_below`` never claims a height it lacks, and that goes on pruning."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.block import Block
from chain.block_pruning import (
    BLOCKS_PRUNED_BELOW_KEY,
    PRUNE_HEIGHTS_PER_COMMIT_MAX,
    blocks_pruned_below,
    is_height_pruned,
    prune_blocks,
)
from chain.genesis import Genesis, parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.store import (
    BLOCK_HASH_PREFIX,
    BLOCK_PREFIX,
    CERTIFICATE_PREFIX,
    RECEIPTS_PREFIX,
    TX_INDEX_PREFIX,
    MemoryBackend,
    Store,
)
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from contracts import default_registry
from contracts.settlement import day_of
from node.app import LedgerApp
from node.blocksync import BlockSync
from node.inbound import BLOCKS, GET_BLOCKS, HEIGHT_PRUNED, Misbehaved
from node.mempool import Mempool
from tests.conftest import Chain


def _trade(chain_id: str, nonce: int, trade_date: int) -> SignedTx:
    buyer, seller = ("A-C001", "B-C001") if nonce % 2 else ("B-C001", "A-C001")
    args = [f"T-{nonce}", buyer, seller, "ACME", 1, 180_00, trade_date]
    return Tx(chain_id, "xchg-alpha", nonce, "settlement", "settle", args, 0).sign(
        devnet.signing_keys("xchg-alpha")
    )


def _producer(ledger: Ledger) -> SoloProducer:
    return SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)])


def _grow(ledger: Ledger, blocks: int, keep: int) -> list[SignedTx]:
    """Commit ``blocks`` blocks of one trade each after the head, pruning after each commit."""
    producer = _producer(ledger)
    txs = []
    for _ in range(blocks):
        # one trade per block: nonce = height; dated the day of the block's parent (the solo
        # producer's blocks are a second apart, so the same day or the next: in the window)
        stx = _trade(ledger.chain_id, ledger.head.height + 1, day_of(ledger.head.time_ms))
        block, _ = producer.produce([stx])
        assert block.txs == (stx,)
        txs.append(stx)
        prune_blocks(ledger.store, keep)
    return txs


def _u64(key: bytes) -> int:
    return int.from_bytes(key[-8:], "big")


def assert_consistent(store: Store) -> None:
    """Heights below the marker hold nothing, heights from it up to the head are whole, and no
    index entry points at a pruned height."""
    head = store.head()
    assert head is not None
    below = blocks_pruned_below(store)
    assert 1 <= below <= head.height + 1
    assert store.block(0) is not None  # genesis is kept
    held = list(range(below, head.height + 1))
    # Genesis has a block and an (empty) receipt list, and no certificate.
    for prefix, expected in (
        (BLOCK_PREFIX, [0, *held]),
        (RECEIPTS_PREFIX, [0, *held]),
        (CERTIFICATE_PREFIX, held),
    ):
        assert [_u64(k) for k, _ in store.backend.scan(prefix)] == expected, (prefix, below, head.height)
    for _, value in store.backend.scan(BLOCK_HASH_PREFIX):
        h = int.from_bytes(value, "big")
        assert h == 0 or h >= below
    for key, _ in store.backend.scan(TX_INDEX_PREFIX):
        location = store.tx_location(key[len(TX_INDEX_PREFIX) :])
        assert location is not None and location[0] >= below
    for h in range(below, head.height + 1):
        block = store.block(h)
        assert block is not None and store.height_of(block.hash()) == h
        assert store.certificate(h) is not None and store.receipts(h) is not None
        for i, stx in enumerate(block.txs):
            assert store.tx_location(stx.hash) == (h, i)


@pytest.fixture(params=["memory", "leveldb"])
def any_chain(request: pytest.FixtureRequest, make_chain) -> Chain:  # type: ignore[no-untyped-def]
    return make_chain(request.param)


def test_keep_blocks_drops_old_heights_and_everything_that_points_at_them(any_chain: Chain) -> None:
    txs = _grow(any_chain.ledger, 30, keep=5)
    store = any_chain.store
    assert store.head().height == 30
    assert blocks_pruned_below(store) == 25  # heights older than head - keep are gone
    assert_consistent(store)
    for h in range(1, 25):
        assert is_height_pruned(store, h)
        assert store.block_bytes(h) is None and store.certificate_bytes(h) is None
        assert store.receipts_bytes(h) is None
        assert store.tx_location(txs[h - 1].hash) is None
    for h in range(25, 31):
        assert not is_height_pruned(store, h)
        assert store.tx_location(txs[h - 1].hash) == (h, 0)
    assert not is_height_pruned(store, 0) and not is_height_pruned(store, 31)


def test_keep_blocks_zero_keeps_everything(chain: Chain) -> None:
    _grow(chain.ledger, 8, keep=0)
    assert blocks_pruned_below(chain.store) == 1
    assert chain.store.backend.get(BLOCKS_PRUNED_BELOW_KEY) is None
    assert all(chain.store.block(h) is not None for h in range(9))


def test_pruning_turned_on_late_catches_up_a_bounded_slice_per_commit(chain: Chain) -> None:
    _grow(chain.ledger, 20, keep=0)
    assert prune_blocks(chain.store, 3) == PRUNE_HEIGHTS_PER_COMMIT_MAX
    assert blocks_pruned_below(chain.store) == 1 + PRUNE_HEIGHTS_PER_COMMIT_MAX
    assert_consistent(chain.store)
    rounds = 0
    while prune_blocks(chain.store, 3):
        rounds += 1
        assert_consistent(chain.store)
    assert blocks_pruned_below(chain.store) == 17 and rounds == 3  # 20 - 3, in slices of 4


def test_a_pruned_store_reopens_and_goes_on(make_chain, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    chain = make_chain("leveldb")
    _grow(chain.ledger, 12, keep=4)
    head = chain.ledger.head
    chain.store.close()
    store = Store.open_leveldb(tmp_path / "db0")
    try:
        ledger = Ledger(store, chain.genesis, default_registry())
        assert ledger.head == head and blocks_pruned_below(store) == 8
        _grow(ledger, 6, keep=4)
        assert blocks_pruned_below(store) == 14
        assert_consistent(store)
    finally:
        store.close()


class Crash(Exception):
    pass


class CrashingBackend(MemoryBackend):
    """A memory store that dies at its ``crash_at``-th write (that batch is not applied: LevelDB
    applies a batch whole or not at all)."""

    def __init__(self, crash_at: int) -> None:
        super().__init__()
        self.crash_at = crash_at
        self.writes = 0

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
        self.writes += 1
        if self.writes == self.crash_at:
            raise Crash
        super().write(puts, deletes)


def _revive(dead: CrashingBackend) -> MemoryBackend:
    """What a restarted process finds on disk: the same bytes, a backend that does not crash."""
    backend = MemoryBackend()
    backend.write(dict(dead._data), [])
    return backend


@pytest.mark.parametrize("crash_at", range(2, 34))
def test_a_crash_at_any_write_leaves_a_consistent_store_that_goes_on(genesis: Genesis, crash_at: int) -> None:
    """Genesis is write 1; then each block is one write and each pruned height one more."""
    backend = CrashingBackend(crash_at)
    store = Store(backend)
    ledger = Ledger(store, genesis, default_registry())
    with pytest.raises(Crash):
        _grow(ledger, 20, keep=3)
    store = Store(_revive(backend))
    ledger = Ledger(store, genesis, default_registry())
    assert_consistent(store)
    assert ledger.head.height >= 1 or crash_at == 2
    _grow(ledger, 20 - ledger.head.height, keep=3)
    _grow(ledger, 2, keep=3)  # catches up what the crash left behind
    assert ledger.head.height == 22
    assert blocks_pruned_below(store) == 19
    assert_consistent(store)


_PRUNER = r"""
import sys
from pathlib import Path
from chain.block_pruning import prune_blocks
from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.store import Store
from chain.tx import Tx
from cli.localnet import devnet
from contracts import default_registry

from contracts.settlement import day_of
store = Store.open_leveldb(Path(sys.argv[1]))
g = parse_genesis(devnet.dev_genesis_doc())
ledger = Ledger(store, g, default_registry())
producer = SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)])
print("ready", flush=True)
while True:
    nonce = ledger.head.height + 1
    day = day_of(ledger.head.time_ms)
    args = [f"T-{nonce}", "A-C001", "B-C001", "ACME", 1, 180_00, day] if nonce % 2 else [f"T-{nonce}", "B-C001", "A-C001", "ACME", 1, 180_00, day]
    producer.produce([Tx(g.chain_id, "xchg-alpha", nonce, "settlement", "settle", args, 0).sign(devnet.signing_keys("xchg-alpha"))])
    prune_blocks(store, 3)
"""


@pytest.fixture
def pruner_db(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "db"


@pytest.mark.io
@pytest.mark.slow
def test_kill_9_while_pruning_leaves_a_consistent_store(pruner_db: Path) -> None:
    """A LevelDB writer that commits and prunes, killed at arbitrary moments: each reopen finds
    a consistent store, and the next writer goes on from it."""
    heights = []
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _PRUNER, str(pruner_db)],
            stdout=subprocess.PIPE,
            cwd=Path(__file__).parent.parent,
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            time.sleep(0.5 + 0.3 * attempt)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
            if proc.stdout is not None:
                proc.stdout.close()
        store = Store.open_leveldb(pruner_db)
        try:
            ledger = Ledger(store, parse_genesis(devnet.dev_genesis_doc()), default_registry())
            assert_consistent(store)
            assert Block.decode(store.block_bytes(ledger.head.height) or b"").hash() == ledger.head.hash()
            heights.append(ledger.head.height)
        finally:
            store.close()
    assert heights == sorted(heights) and heights[-1] > 4


# --- block sync from a pruning node ------------------------------------------------------------


class Wire:
    """The network port of one BlockSync: what it sent, to whom."""

    def __init__(self) -> None:
        self.sent: list[tuple[bytes, list[Any]]] = []

    @property
    def peers(self) -> dict[bytes, Any]:
        return {}

    def send(self, pubkey: bytes, message: list[Any]) -> bool:
        self.sent.append((pubkey, message))
        return True

    def broadcast(self, message: list[Any], exclude: bytes | None = None) -> int:
        return 0

    def disconnect(self, pubkey: bytes, reason: str) -> None:
        raise AssertionError(f"disconnected {pubkey.hex()[:8]}: {reason}")

    def take(self) -> tuple[bytes, list[Any]]:
        assert len(self.sent) == 1, self.sent
        return self.sent.pop()


class StillClock:
    def monotonic_ms(self) -> float:
        return 0.0

    def wall_ms(self) -> int:
        return 0

    def call_later(self, delay_ms: float, callback: Any) -> Any:
        raise AssertionError("no timers here")


def _sync_node(ledger: Ledger) -> tuple[BlockSync, Wire]:
    app = LedgerApp(
        ledger,
        Mempool(ledger.executor, ledger.store),
        None,
        lambda: 0,
        block_txs_max=100,
        clock_drift_ms=10_000,
        log=logging.getLogger("test"),
    )
    wire = Wire()
    return BlockSync(app, wire, StillClock(), logging.getLogger("test"), frame_bytes_max=8 << 20), wire


ARCHIVE, PRUNED = b"\x01" * 32, b"\x02" * 32


def test_a_peer_behind_the_window_is_told_height_pruned_and_syncs_from_an_archive(genesis: Genesis) -> None:
    archive = Ledger(Store.in_memory(), genesis, default_registry())
    _grow(archive, 20, keep=0)
    pruning = Ledger(Store.in_memory(), genesis, default_registry())
    for h in range(1, 21):  # the same chain, replicated, pruned as it goes
        block = archive.store.block(h)
        cert = archive.store.certificate(h)
        assert block is not None and cert is not None
        pruning.apply_committed(block, cert)
        prune_blocks(pruning.store, 3)
    assert blocks_pruned_below(pruning.store) == 17
    lagging = Ledger(Store.in_memory(), genesis, default_registry())
    sync, wire = _sync_node(lagging)
    serve_pruned, pruned_wire = _sync_node(pruning)
    serve_archive, archive_wire = _sync_node(archive)

    sync.request(PRUNED, 21)
    assert wire.take() == (PRUNED, [GET_BLOCKS, 1, 20])
    serve_pruned.serve(b"lagging", [GET_BLOCKS, 1, 20])
    to, reply = pruned_wire.take()
    assert to == b"lagging" and reply == [HEIGHT_PRUNED, 1, 17]
    sync.on_pruned(PRUNED, reply)
    sync.request(PRUNED, 21)
    assert wire.sent == []  # it asks that peer no more while it lacks height 17

    sync.request(ARCHIVE, 21)
    _, ask = wire.take()
    serve_archive.serve(b"lagging", ask)
    _, blocks = archive_wire.take()
    assert blocks[0] == BLOCKS and len(blocks[1]) == 20
    assert sync.apply(ARCHIVE, blocks, lambda c: None) == 20
    assert lagging.head == archive.head

    # recent heights are still served by the pruning node
    serve_pruned.serve(b"lagging", [GET_BLOCKS, 17, 20])
    _, recent = pruned_wire.take()
    assert recent[0] == BLOCKS and [Block.decode(b).height for b, _ in recent[1]] == [17, 18, 19, 20]


@pytest.mark.parametrize(
    "bad", [[HEIGHT_PRUNED, 1], [HEIGHT_PRUNED, 5, 5], [HEIGHT_PRUNED, 0, 3], [HEIGHT_PRUNED, 1, "x"]]
)
def test_a_malformed_height_pruned_reply_is_misbehaviour(genesis: Genesis, bad: list[Any]) -> None:
    sync, _ = _sync_node(Ledger(Store.in_memory(), genesis, default_registry()))
    with pytest.raises(Misbehaved, match="bad_height_pruned"):
        sync.on_pruned(PRUNED, bad)


def test_export_and_audit_of_a_pruned_data_folder_say_height_pruned(genesis: Genesis, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from cli.main import main

    home = tmp_path / "home"
    store = Store.open_leveldb(home / "db")
    try:
        _grow(Ledger(store, genesis, default_registry()), 10, keep=4)
    finally:
        store.close()
    out = tmp_path / "x.msgpack"
    for args in (
        ["export", "--home", str(home), "--out", str(out)],
        ["export", "--home", str(home), "--from", "5"],
    ):
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 1, result.output
        assert result.stderr.startswith("error: height_pruned: ") and len(result.stderr.splitlines()) == 1
        assert "keeps blocks from height 6 only" in result.stderr
    assert not out.exists()  # refused before anything was written
    result = CliRunner().invoke(main, ["export", "--home", str(home), "--from", "6", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "exported heights 6..10 (5 blocks" in result.stderr
    genesis_file = tmp_path / "genesis.json"
    genesis_file.write_text(json.dumps(devnet.dev_genesis_doc()))
    result = CliRunner().invoke(
        main, ["audit", "--home", str(home), "--genesis", str(genesis_file), "--quiet"]
    )
    assert result.exit_code == 1 and result.stderr.startswith("error: height_pruned: "), result.output


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(st.integers(0, 4), st.integers(1, 6), st.integers(1, 5)),  # (blocks, keep, slice)
        min_size=1,
        max_size=6,
    )
)
def test_any_mix_of_commits_windows_and_slices_keeps_the_store_consistent(
    genesis: Genesis, steps: list[tuple[int, int, int]]
) -> None:
    """Windows that shrink or grow between commits never break the invariant, and the marker only
    moves up, never past ``head - keep`` of the call that moved it, and the head stays held."""
    ledger = Ledger(Store.in_memory(), genesis, default_registry())
    marker = 1
    for blocks, keep, heights_max in steps:
        _grow(ledger, blocks, keep=0)
        pruned = prune_blocks(ledger.store, keep, heights_max)
        now = blocks_pruned_below(ledger.store)
        assert now == marker + pruned and pruned <= heights_max
        assert pruned == 0 or now <= ledger.head.height - keep  # a grown window cannot un-prune
        assert_consistent(ledger.store)
        assert now <= ledger.head.height or ledger.head.height == 0
        marker = now
