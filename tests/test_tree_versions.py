"""The state tree's versions on disk (chain/treestore.py): every retained height's tree gives that
height's root and proofs, whatever the cache; the pruner never deletes a node a retained height
reaches, keeps the store bounded under churn, and leaves a whole store after a failure at any
write; pruned heights refuse with ``height_pruned``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.encoding import decode
from chain.errors import StoreError
from chain.genesis import parse_genesis
from chain.ledger import Ledger, Pruning
from chain.policy import nonce_key
from chain.solo import SoloProducer
from chain.statetree import EMPTY_ROOT, MemoryNodeSource, StateTree, compute_root, split_stored_node
from chain.store import MemoryBackend, Store
from chain.treestore import (
    NODE_PREFIX,
    ROOT_PREFIX,
    check_retained_trees,
    open_tree,
    prune,
    pruned_below,
    tree_puts,
)
from cli.localnet import devnet
from contracts import default_registry

Changes = dict[bytes, bytes | None]
KEYS = [b"k%d" % i for i in range(30)]
keys = st.sampled_from(KEYS)
values = st.sampled_from([b"v1", b"v2", b"v3", b"a longer value " * 3])
blocks = st.lists(st.dictionaries(keys, st.none() | values, max_size=10), min_size=1, max_size=12)


class HeadSource:
    """The head's node source over a backend, as chain.store.Store is for the ledger."""

    def __init__(self, backend: MemoryBackend) -> None:
        self.backend = backend

    def root_version(self) -> int | None:
        return None  # only opened on the empty tree here

    def get_versioned_node(self, version: int, path: bytes) -> bytes | None:
        return self.backend.get(NODE_PREFIX + version.to_bytes(8, "big") + path)


class Chain:
    """Blocks of tree changes written the way chain/store.py writes them, with a model per height."""

    def __init__(self, backend: MemoryBackend, cache_bytes: int) -> None:
        self.backend = backend
        genesis = StateTree(MemoryNodeSource(), EMPTY_ROOT).compute_update({}, version=0)
        backend.write(tree_puts(genesis, 0), [])
        self.tree = StateTree(HeadSource(backend), EMPTY_ROOT, height=-1, cache_bytes=cache_bytes)
        self.tree.apply(genesis)
        self.models: list[dict[bytes, bytes]] = [{}]
        self.roots = [EMPTY_ROOT]

    @property
    def head(self) -> int:
        return len(self.roots) - 1

    def commit(self, changes: Changes) -> None:
        update = self.tree.compute_update(changes)
        self.backend.write(tree_puts(update, self.head + 1), [])
        self.tree.apply(update)
        model = dict(self.models[-1])
        for key, value in changes.items():
            if value is None:
                model.pop(key, None)
            else:
                model[key] = value
        self.models.append(model)
        self.roots.append(update.root)


def reachable(backend: MemoryBackend, height: int) -> set[bytes]:
    """The store keys of every node in the tree at ``height``, walked by exact gets."""
    entry = backend.get(ROOT_PREFIX + height.to_bytes(8, "big"))
    assert entry is not None
    if not entry:
        return set()
    found, todo = set(), [(entry[:8], b"")]
    while todo:
        version, path = todo.pop()
        key = NODE_PREFIX + version + path
        value = backend.get(key)
        assert value is not None, f"height {height}: node {key.hex()} is gone"
        found.add(key)
        record, versions = split_stored_node(value)
        fields = decode(record)
        if len(fields) == 2 and all(type(f) is bytes for f in fields):
            continue  # the lone-leaf record
        bitmap, children = fields[0], iter(fields[1:])
        rank = 0
        for nibble in range(16):
            if bitmap >> nibble & 1 and type(next(children)) is bytes:  # an internal child
                todo.append((versions[8 * rank : 8 * rank + 8], path + bytes([nibble])))
                rank += 1
    return found


def node_keys(backend: MemoryBackend) -> set[bytes]:
    return {k for k, _ in backend.scan(NODE_PREFIX)}


def check_retained(chain: Chain, probes: Iterator[bytes] | list[bytes] = KEYS) -> None:
    below = pruned_below(chain.backend)
    for height in range(below, chain.head + 1):
        tree = open_tree(chain.backend, height, cache_bytes=1)
        assert tree.root == chain.roots[height] == compute_root(chain.models[height])
        for key in probes:
            assert tree.prove(key).verify(tree.root, key, chain.models[height].get(key)), (height, key)
    for height in range(below):
        with pytest.raises(StoreError) as err:
            open_tree(chain.backend, height)
        assert err.value.code == "height_pruned"


@given(blocks, st.sampled_from([1, 2_000, 64 * 1024 * 1024]))
@settings(max_examples=60, deadline=None)
def test_every_height_proves_against_its_own_root(batch_list: list[Changes], cache_bytes: int) -> None:
    chain = Chain(MemoryBackend(), cache_bytes)
    reference = StateTree(MemoryNodeSource(), EMPTY_ROOT)  # the unversioned, in-memory path
    for changes in batch_list:
        chain.commit(changes)
        update = reference.compute_update(changes)
        reference.apply(update)
        assert chain.roots[-1] == update.root == compute_root(chain.models[-1])
    check_retained(chain, KEYS[::3])


def test_a_view_at_an_old_height_stays_consistent_while_blocks_commit() -> None:
    chain = Chain(MemoryBackend(), 64 * 1024 * 1024)
    chain.commit({k: b"v1" for k in KEYS})
    old = open_tree(chain.backend, 1, cache_bytes=1)
    for i in range(5):
        chain.commit({k: b"w%d" % i for k in KEYS[i::2]} | {KEYS[i]: None})
    for key in KEYS:
        assert old.prove(key).verify(chain.roots[1], key, b"v1")


@given(blocks, st.integers(1, 4), st.sampled_from([1, 3, 2_000]))
@settings(max_examples=60, deadline=None)
def test_the_pruner_keeps_every_retained_tree_whole_and_nothing_else(
    batch_list: list[Changes], keep: int, batch_max: int
) -> None:
    chain = Chain(MemoryBackend(), 2_000)
    for changes in batch_list + [{KEYS[0]: b"v%d" % i} for i in range(6)]:
        chain.commit(changes)
        report = prune(chain.backend, chain.head, keep, batch_max)
        assert report.pruned_below == pruned_below(chain.backend) <= max(0, chain.head - keep + 1)
        retained = set().union(
            *(reachable(chain.backend, h) for h in range(report.pruned_below, chain.head + 1))
        )
        assert retained <= node_keys(chain.backend)
        if batch_max == 2_000:  # the pruner keeps up: exactly the retained trees' nodes stay
            assert report.pruned_below == max(0, chain.head - keep + 1)
            assert node_keys(chain.backend) == retained
    check_retained(chain)


def test_stored_nodes_stay_bounded_under_churn() -> None:
    chain = Chain(MemoryBackend(), 64 * 1024 * 1024)
    chain.commit({b"acct%d" % i: b"0" for i in range(500)})
    counts = []
    for block in range(60):
        chain.commit({b"acct%d" % ((block * 37 + j) % 500): b"%d" % block for j in range(40)})
        prune(chain.backend, chain.head, 5, 2_000)
        counts.append(len(node_keys(chain.backend)))
    assert max(counts[30:]) <= max(counts[5:30]) * 1.1  # flat once the window is full
    archive = Chain(MemoryBackend(), 64 * 1024 * 1024)  # the same blocks, never pruned
    archive.commit({b"acct%d" % i: b"0" for i in range(500)})
    for block in range(60):
        archive.commit({b"acct%d" % ((block * 37 + j) % 500): b"%d" % block for j in range(40)})
    assert len(node_keys(archive.backend)) > 3 * counts[-1]


class Crash(Exception):
    pass


class FailingBackend(MemoryBackend):
    """Refuses every batch after the first ``allowed`` (a batch is all or nothing, as LevelDB's)."""

    def __init__(self, allowed: int) -> None:
        super().__init__()
        self.allowed = allowed

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
        if self.allowed == 0:
            raise Crash
        self.allowed -= 1
        super().write(puts, deletes)


def test_a_failure_at_any_write_leaves_a_store_that_proves_and_goes_on() -> None:
    script = [
        {b"k%d" % (i * 7 % 30): b"v%d" % i for i in range(j, j + 6)} | {b"k%d" % j: None} for j in range(24)
    ]

    def run(backend: FailingBackend) -> tuple[Chain, int]:
        chain = Chain(backend, 1)
        committed = 0
        try:
            for changes in script:
                chain.commit(changes)  # on a crash here the block is not written
                committed += 1
                prune(backend, chain.head, 3, 2)
        except Crash:
            pass
        return chain, committed

    counting = FailingBackend(10**9)
    run(counting)
    writes = 10**9 - counting.allowed
    assert writes > len(script) + 10  # pruning batches are among them
    for allowed in range(1, writes):
        backend = FailingBackend(allowed)
        chain, committed = run(backend)
        assert backend.allowed == 0  # it did crash
        backend.allowed = 10**9  # "reopen": the same bytes, writes work again
        del chain.models[committed + 1 :], chain.roots[committed + 1 :]
        reopened_head = committed
        entry = backend.get(ROOT_PREFIX + reopened_head.to_bytes(8, "big"))
        assert entry is not None
        check_retained(chain, KEYS[:6])
        for height in range(pruned_below(backend), reopened_head + 1):
            reachable(backend, height)
        # The next block commits on a tree reopened at the head.
        tree = open_tree(backend, reopened_head, cache_bytes=1)
        update = tree.compute_update({b"k1": b"after"})
        backend.write(tree_puts(update, reopened_head + 1), [])
        prune(backend, reopened_head + 1, 3, 2)
        assert open_tree(backend, reopened_head + 1).prove(b"k1").verify(update.root, b"k1", b"after")


_PRUNING_WRITER = r"""
import sys
from pathlib import Path
from chain.genesis import parse_genesis
from chain.ledger import Ledger, Pruning
from chain.solo import SoloProducer
from chain.store import Store
from chain.tx import Tx
from cli.localnet import devnet
from contracts import default_registry

from contracts.settlement import day_of
store = Store.open_leveldb(Path(sys.argv[1]))
g = parse_genesis(devnet.dev_genesis_doc())
ledger = Ledger(store, g, default_registry(), cache_bytes=4096, pruning=Pruning(3, 4))
producer = SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)])
nonce = ledger.head.height * 5
print("ready", flush=True)
while True:
    txs = []
    for _ in range(5):
        nonce += 1
        buyer, seller = ("A-HOUSE", "B-HOUSE") if nonce % 2 else ("B-HOUSE", "A-HOUSE")
        args = [f"T{nonce}", buyer, seller, "ACME", 1, 100_00, day_of(ledger.head.time_ms)]
        txs.append(Tx(g.chain_id, "xchg-alpha", nonce, "settlement", "settle", args, 0).sign(devnet.signing_keys("xchg-alpha")))
    producer.produce(txs)
"""


@pytest.mark.io
@pytest.mark.slow
def test_kill_9_while_pruning_leaves_every_retained_height_provable(tmp_path: Path) -> None:
    """A LevelDB writer that prunes after every block (window 3, 4 nodes a run, so pruning lags
    and runs all the time), killed at arbitrary moments: each reopen walks every retained
    height's tree against its block's root, proves at each, and the chain goes on."""
    db = tmp_path / "db"
    heights, pruned = [], []
    root = Path(__file__).parent.parent
    for attempt in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-c", _PRUNING_WRITER, str(db)], stdout=subprocess.PIPE, cwd=root
        )
        try:
            assert proc.stdout is not None and proc.stdout.readline().strip() == b"ready"
            time.sleep(1.0 + 0.4 * attempt)
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait(timeout=30)
        store = Store.open_leveldb(db)
        try:
            ledger = Ledger(
                store, parse_genesis(devnet.dev_genesis_doc()), default_registry(), pruning=Pruning(3, 4)
            )
            head = ledger.head.height
            assert check_retained_trees(store.backend, head) > 0
            below = store.pruned_below()
            for height in range(below, head + 1):
                header = store.header(height)
                assert header is not None
                tree = store.tree_at(height, cache_bytes=1)
                assert tree.root == header.state_root
                # The walk above checked every node's hash; a proof reads one path of them.
                proof = tree.prove(nonce_key("xchg-alpha"))
                if height == head:
                    assert proof.verify(
                        tree.root, nonce_key("xchg-alpha"), store.get_state(nonce_key("xchg-alpha"))
                    )
            if below:
                with pytest.raises(StoreError) as err:
                    store.tree_at(below - 1)
                assert err.value.code == "height_pruned"
            SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)]).produce([])
            assert store.head() is not None and store.head().height == head + 1  # type: ignore[union-attr]
            heights.append(head)
            pruned.append(below)
        finally:
            store.close()
    assert heights == sorted(heights) and heights[-1] > 3 and pruned[-1] > 0
