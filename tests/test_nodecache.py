"""The state tree under a byte-bounded node cache: roots and proofs are the same whatever the
budget (a cache smaller than one node evicts on every read), the cache never holds more than
its budget, and an update computed before evictions still applies."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chain.nodecache import ENTRY_OVERHEAD_BYTES, CacheEntry, NodeCache, entry_bytes
from chain.statetree import EMPTY_ROOT, MemoryNodeSource, StateTree, compute_root

Changes = dict[bytes, bytes | None]

keys = st.sampled_from([b"k%d" % i for i in range(40)])
values = st.sampled_from([b"", b"v1", b"v2", b"a longer value " * 3])
batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=12), max_size=10)
BUDGETS = (1, 3_000, 64 * 1024 * 1024)


def _model_after(model: dict[bytes, bytes], changes: Changes) -> None:
    for key, value in changes.items():
        if value is None:
            model.pop(key, None)
        else:
            model[key] = value


@given(batches)
@settings(max_examples=80, deadline=None)
def test_roots_and_proofs_do_not_depend_on_the_cache_budget(batch_list: list[Changes]) -> None:
    sources = [MemoryNodeSource() for _ in BUDGETS]
    trees = [StateTree(s, EMPTY_ROOT, cache_bytes=b) for s, b in zip(sources, BUDGETS, strict=True)]
    model: dict[bytes, bytes] = {}
    for changes in batch_list:
        _model_after(model, changes)
        updates = [t.compute_update(changes) for t in trees]
        assert len({u.root for u in updates}) == 1
        assert updates[0].root == compute_root(model)
        for tree, source, update in zip(trees, sources, updates, strict=True):
            source.write(update.node_writes)
            tree.apply(update)
            assert tree.cache_bytes <= tree._cache.budget_bytes
        for key in (b"k0", b"k7", b"k33"):
            proofs = [t.prove(key) for t in trees]
            assert all(p == proofs[0] for p in proofs)
            assert proofs[0].verify(trees[0].root, key, model.get(key))
    assert trees[0].cache_entries == 0  # a budget of one byte holds nothing
    assert sources[0].nodes == sources[2].nodes


def test_an_update_computed_before_evictions_still_applies() -> None:
    source = MemoryNodeSource()
    tree = StateTree(source, EMPTY_ROOT, cache_bytes=2_000)
    first = tree.compute_update({b"k%d" % i: b"v" for i in range(300)})
    source.write(first.node_writes)
    tree.apply(first)
    pending = tree.compute_update({b"k1": b"w", b"k2": None})
    for i in range(300, 330):  # reads that evict everything the pending update touched
        tree.prove(b"k%d" % i)
    source.write(pending.node_writes)
    tree.apply(pending)
    model = {b"k%d" % i: b"v" for i in range(300)} | {b"k1": b"w"}
    del model[b"k2"]
    assert tree.root == compute_root(model)
    assert tree.prove(b"k1").verify(tree.root, b"k1", b"w")


@given(st.lists(st.tuples(st.integers(0, 30), st.integers(0, 500), st.booleans()), max_size=200))
def test_the_cache_charges_exactly_and_evicts_least_recent_first(ops: list[tuple[int, int, bool]]) -> None:
    budget = 3 * (ENTRY_OVERHEAD_BYTES + 200)
    cache = NodeCache(budget)
    order: list[bytes] = []  # model: least recent first
    sizes: dict[bytes, int] = {}
    for key_n, size, is_put in ops:
        key = b"%d" % key_n
        entry: CacheEntry = ((b"h" * size, b"", 1, 0), key_n, b"")
        if is_put:
            cache.put(key, entry)
            if key in order:
                order.remove(key)
            order.append(key)
            sizes[key] = size + len(key) + ENTRY_OVERHEAD_BYTES
            assert entry_bytes(key, entry) == sizes[key]
            while sum(sizes[k] for k in order) > budget:
                order.pop(0)
        else:
            found = cache.get(key)
            assert (found is not None and found[1]) == (key_n if key in order else False)
            if key in order:
                order.remove(key)
                order.append(key)
        assert len(cache) == len(order)
        assert cache.bytes == sum(sizes[k] for k in order) <= budget
