"""The state tree: incremental roots equal the from-scratch reference, the shape is canonical (no
orphan nodes, single-child chains where keys share prefixes), updates are pure until applied,
stored trees reopen lazily, and proofs verify exactly the true claims and nothing else."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgpack
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chain.encoding import H, decode, encode
from chain.errors import InvariantViolation, StoreError
from chain.proof import verify_proof
from chain.statetree import (
    EMPTY_ROOT,
    MemoryNodeSource,
    Proof,
    StateTree,
    TreeUpdate,
    bench_tree,
    compute_root,
)

Changes = dict[bytes, bytes | None]

# Keys whose kh share leading nibbles (found by search over b"p%d"; asserted below).
SHARE_5 = (b"p1", b"p112396")  # kh a7492 4... / a7492 6...
SHARE_4 = (b"p11997", b"p12058", b"p23051")  # kh 5711...
SHARE_3 = (b"p1930", b"p2333", b"p2377")  # kh 054...
PREFIX_KEYS = SHARE_5 + SHARE_4 + SHARE_3


def kh(key: bytes) -> bytes:
    return H(b"key", key)


def leaf_hash(key: bytes, value: bytes) -> bytes:
    return H(b"leaf", kh(key) + H(b"value", value))


def node_hash(children: dict[int, bytes]) -> bytes:
    bitmap = sum(1 << nibble for nibble in children)
    return H(b"node", bitmap.to_bytes(2, "big") + b"".join(children[n] for n in sorted(children)))


class Harness:
    """A tree over a dict store, plus the model {key: value} it should hold."""

    def __init__(self) -> None:
        self.source = MemoryNodeSource()
        self.tree = StateTree(self.source, EMPTY_ROOT)
        self.model: dict[bytes, bytes] = {}

    def apply(self, changes: Mapping[bytes, bytes | None]) -> TreeUpdate:
        update = self.tree.compute_update(changes)
        self.source.write(update.node_writes)
        self.tree.apply(update)
        for key, value in changes.items():
            if value is None:
                self.model.pop(key, None)
            else:
                self.model[key] = value
        return update

    def reopen(self) -> StateTree:
        return StateTree(self.source, self.tree.root)


def built_from_scratch(model: dict[bytes, bytes]) -> MemoryNodeSource:
    source = MemoryNodeSource()
    source.write(StateTree(source, EMPTY_ROOT).compute_update(model).node_writes)
    return source


# -- roots --------------------------------------------------------------------------------------

keys = st.sampled_from([b"k%d" % i for i in range(12)] + list(PREFIX_KEYS))
values = st.sampled_from([b"", b"v1", b"v2", b"a longer value " * 3, bytes(range(200))])
batches = st.lists(st.dictionaries(keys, st.none() | values, max_size=8), max_size=8)


@given(batches)
@settings(max_examples=150)
def test_incremental_root_matches_reference_and_store_has_no_orphans(batch_list: list[Changes]) -> None:
    h = Harness()
    for changes in batch_list:
        h.apply(changes)
        assert h.tree.root == compute_root(h.model)
        assert h.source.nodes == built_from_scratch(h.model).nodes  # no orphan, none missing


@given(batches)
@settings(max_examples=100)
def test_one_batch_equals_many_batches_and_key_order_does_not_matter(batch_list: list[Changes]) -> None:
    h = Harness()
    merged: Changes = {}
    for changes in batch_list:
        h.apply(changes)
        merged.update(changes)
    one = StateTree(MemoryNodeSource(), EMPTY_ROOT).compute_update(merged)
    backwards = StateTree(MemoryNodeSource(), EMPTY_ROOT).compute_update(dict(reversed(merged.items())))
    assert one.root == backwards.root == h.tree.root
    assert one.node_writes == backwards.node_writes


def test_root_vectors_computed_by_hand() -> None:
    assert compute_root({}) == EMPTY_ROOT
    assert compute_root({b"a": b"1"}) == leaf_hash(b"a", b"1")
    # kh(a), kh(b), kh(c) start with the nibbles d, 8, 5: one root node with three leaves.
    three = {b"a": b"1", b"b": b"2", b"c": b"3"}
    expected = node_hash({0xD: leaf_hash(b"a", b"1"), 0x8: leaf_hash(b"b", b"2"), 0x5: leaf_hash(b"c", b"3")})
    assert compute_root(three) == expected
    assert expected.hex() == "be6c56e5b45c7aac3cd5b4e4b2462253fdd9de4a6b424f4cc5498d962cb09ec9"
    h = Harness()
    h.apply(three)
    assert h.tree.root == expected


def test_crafted_keys_share_prefixes() -> None:
    assert len({kh(k).hex()[:5] for k in SHARE_5}) == 1 and kh(SHARE_5[0]).hex()[5] != kh(SHARE_5[1]).hex()[5]
    assert len({kh(k).hex()[:4] for k in SHARE_4}) == 1
    assert len({kh(k).hex()[:3] for k in SHARE_3}) == 1


def test_single_child_chain_by_hand_then_delete_down_to_one_and_zero() -> None:
    h = Harness()
    h.apply({k: b"x" for k in SHARE_5})
    # Nodes at prefixes "", a, a7, a74, a749 each have one (internal) child; a7492 has two leaves.
    nibbles = kh(SHARE_5[0]).hex()
    below = {int(kh(k).hex()[5], 16): leaf_hash(k, b"x") for k in SHARE_5}
    expected = node_hash(below)
    for depth in range(4, -1, -1):
        expected = node_hash({int(nibbles[depth], 16): expected})
    assert h.tree.root == expected == compute_root(h.model)
    paths = {bytes(int(c, 16) for c in nibbles[:d]) for d in range(6)}
    assert set(h.source.nodes) == paths

    h.apply({k: b"y" for k in PREFIX_KEYS})
    assert h.tree.root == compute_root(h.model)
    for count, key in enumerate(PREFIX_KEYS[:-1]):
        h.apply({key: None})
        assert h.tree.root == compute_root(h.model), count
        assert h.source.nodes == built_from_scratch(h.model).nodes
    last = PREFIX_KEYS[-1]
    assert h.tree.root == leaf_hash(last, b"y")
    assert set(h.source.nodes) == {b""}  # only the lone-leaf record
    assert decode(h.source.nodes[b""]) == [kh(last), H(b"value", b"y")]
    assert h.reopen().prove(last).verify(h.tree.root, last, b"y")
    h.apply({last: None, b"never there": None})
    assert h.tree.root == EMPTY_ROOT and h.source.nodes == {}


def test_deleting_absent_keys_and_rewriting_values_changes_nothing() -> None:
    h = Harness()
    h.apply({b"k%d" % i: b"v" for i in range(50)})
    update = h.tree.compute_update({b"absent": None, b"k3": b"v", b"k4": b"v"})
    assert update.root == h.tree.root and update.node_writes == {}


# -- purity of compute_update -----------------------------------------------------------------


def test_compute_update_does_not_mutate_and_stale_updates_are_refused() -> None:
    h = Harness()
    h.apply({b"k%d" % i: b"v%d" % i for i in range(40)})
    before = h.tree.root
    first = h.tree.compute_update({b"k1": None, b"new": b"n"})
    second = h.tree.compute_update({b"k2": b"changed", b"k1": b"other"})
    assert h.tree.root == before
    assert h.tree.prove(b"k1").verify(before, b"k1", b"v1")
    assert first.root == compute_root({**{k: v for k, v in h.model.items() if k != b"k1"}, b"new": b"n"})
    assert second.root == compute_root({**h.model, b"k2": b"changed", b"k1": b"other"})
    h.source.write(second.node_writes)
    h.tree.apply(second)
    assert h.tree.root == second.root
    with pytest.raises(InvariantViolation):
        h.tree.apply(first)
    assert h.tree.root == second.root


# -- persistence ------------------------------------------------------------------------------


class CountingSource(MemoryNodeSource):
    def __init__(self, nodes: dict[bytes, bytes]) -> None:
        super().__init__()
        self.nodes = dict(nodes)
        self.reads = 0

    def get_node(self, path: bytes) -> bytes | None:
        self.reads += 1
        return super().get_node(path)


def test_reopened_tree_loads_lazily_and_behaves_identically() -> None:
    h = Harness()
    h.apply({b"k%d" % i: b"v%d" % i for i in range(3000)})  # full 16-way nodes: bitmap 0xFFFF
    source = CountingSource(h.source.nodes)
    fresh = StateTree(source, h.tree.root)
    assert source.reads == 1  # only the root
    assert fresh.prove(b"k7") == h.tree.prove(b"k7")
    assert fresh.prove(b"absent") == h.tree.prove(b"absent")
    assert source.reads < 10  # one path, not the whole tree
    changes: Changes = {b"k%d" % i: None for i in range(0, 3000, 3)} | {b"n%d" % i: b"n" for i in range(200)}
    a, b = h.tree.compute_update(changes), fresh.compute_update(changes)
    assert (
        a.root
        == b.root
        == compute_root(
            {
                **{k: v for k, v in h.model.items() if changes.get(k, 1) is not None},
                **{k: v for k, v in changes.items() if v is not None},
            }
        )
    )
    assert a.node_writes == b.node_writes
    for record in source.nodes.values():
        assert encode(decode(record)) == record  # stored records are canonical msgpack


def test_missing_or_corrupt_stored_nodes_are_store_errors() -> None:
    h = Harness()
    h.apply({b"k%d" % i: b"v" for i in range(100)})
    child_path = next(p for p in h.source.nodes if len(p) == 1)
    nodes = dict(h.source.nodes)
    nodes[child_path] = nodes[child_path][:-1] + bytes([nodes[child_path][-1] ^ 1])
    corrupt = StateTree(CountingSource(nodes), h.tree.root)
    with pytest.raises(StoreError) as err:
        corrupt.compute_update({k: b"w" for k in h.model})
    assert err.value.code == "state_node_corrupt"
    del nodes[child_path]
    with pytest.raises(StoreError) as err:
        StateTree(CountingSource(nodes), h.tree.root).compute_update({k: b"w" for k in h.model})
    assert err.value.code == "state_node_missing"
    with pytest.raises(StoreError):
        StateTree(MemoryNodeSource(), h.tree.root)


# -- proofs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def proved() -> tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]]:
    h = Harness()
    h.apply({b"k%d" % i: b"v%d" % i for i in range(300)} | {k: b"p" for k in PREFIX_KEYS})
    h.apply({b"k%d" % i: None for i in range(0, 300, 7)})
    probes = list(h.model) + [b"k%d" % i for i in range(0, 300, 7)] + [b"absent%d" % i for i in range(80)]
    return h.tree.root, h.model, {k: h.tree.prove(k).to_wire() for k in probes}


def test_every_proof_shows_exactly_the_truth(
    proved: tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]],
) -> None:
    root, model, proofs = proved
    terminals = set()
    for key, wire in proofs.items():
        assert Proof.from_wire(wire).to_wire() == wire
        assert decode(encode(wire)) == wire  # a plain msgpack array
        terminals.add(wire[1][0])
        value = model.get(key)
        assert verify_proof(root, key, value, wire), key
        assert not verify_proof(root, key, b"wrong", wire)
        assert not verify_proof(root, key, None if value is not None else b"v1", wire)
        other = next(k for k in model if k != key)  # a present key: no claim about it holds here
        assert not verify_proof(root, other, model[other], wire)
        assert not verify_proof(root, other, None, wire)
        assert not verify_proof(H(b"value", root), key, value, wire)
    assert terminals == {0, 1, 2}  # empty slot, inclusion, other leaf all exercised


def test_empty_and_lone_leaf_trees_prove() -> None:
    h = Harness()
    assert h.tree.prove(b"a").to_wire() == [[], [0]]
    assert verify_proof(EMPTY_ROOT, b"a", None, [[], [0]])
    assert not verify_proof(EMPTY_ROOT, b"a", b"1", [[], [1]])
    h.apply({b"a": b"1"})
    assert h.tree.prove(b"a").to_wire() == [[], [1]]
    assert verify_proof(h.tree.root, b"a", b"1", [[], [1]])
    assert not verify_proof(h.tree.root, b"a", None, [[], [0]])
    wire = h.tree.prove(b"b").to_wire()
    assert wire == [[], [2, kh(b"a"), H(b"value", b"1")]]
    assert verify_proof(h.tree.root, b"b", None, wire)


def _sites(wire: Any, path: tuple[int, ...] = ()) -> list[tuple[tuple[int, ...], int]]:
    """Every (path to a bytes or int, byte or bit index) in a wire proof."""
    if isinstance(wire, list):
        return [site for i, item in enumerate(wire) for site in _sites(item, (*path, i))]
    if isinstance(wire, bytes):
        return [(path, i) for i in range(len(wire))]
    return [(path, i) for i in range(16)]  # an int: flip one of its 16 low bits


def _flip(wire: Any, path: tuple[int, ...], index: int) -> Any:
    if not path:
        return (
            wire[:index] + bytes([wire[index] ^ 0x01]) + wire[index + 1 :]
            if isinstance(wire, bytes)
            else wire ^ (1 << index)
        )
    copy = list(wire)
    copy[path[0]] = _flip(wire[path[0]], path[1:], index)
    return copy


@given(st.data())
@settings(max_examples=300)
def test_any_single_flip_breaks_a_proof(
    proved: tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]], data: st.DataObject
) -> None:
    root, model, proofs = proved
    key = data.draw(st.sampled_from(sorted(proofs)))
    wire = proofs[key]
    path, index = data.draw(st.sampled_from(_sites(wire)))
    assert not verify_proof(root, key, model.get(key), _flip(wire, path, index))


@given(st.data())
@settings(max_examples=200)
def test_flipped_encoded_proofs_never_verify(
    proved: tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]], data: st.DataObject
) -> None:
    root, model, proofs = proved
    key = data.draw(st.sampled_from(sorted(proofs)))
    encoded = encode(proofs[key])
    index = data.draw(st.integers(0, len(encoded) - 1))
    bit = data.draw(st.integers(0, 7))
    mutated = encoded[:index] + bytes([encoded[index] ^ (1 << bit)]) + encoded[index + 1 :]
    try:
        wire = msgpack.unpackb(mutated, raw=False, strict_map_key=False)
    except (ValueError, TypeError, msgpack.UnpackException):
        return
    if wire != proofs[key]:
        assert not verify_proof(root, key, model.get(key), wire)


def test_dropped_extra_and_swapped_steps_break_proofs(
    proved: tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]],
) -> None:
    root, model, proofs = proved
    for key, (steps, terminal) in proofs.items():
        value = model.get(key)
        for i in range(len(steps)):
            assert not verify_proof(root, key, value, [steps[:i] + steps[i + 1 :], terminal])
            assert not verify_proof(
                root, key, value, [steps[: i + 1] + [steps[i]] + steps[i + 1 :], terminal]
            )
        assert not verify_proof(root, key, value, [[*steps, [1, []]], terminal])
        assert not verify_proof(root, key, value, [[*steps, [0xFFFF, [b"\x00" * 32] * 15]], terminal])
        if len(steps) > 1:
            assert not verify_proof(root, key, value, [[steps[1], steps[0], *steps[2:]], terminal])


junk = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.binary(max_size=40)
    | st.text(max_size=5)
    | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=5)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text(max_size=2), inner, max_size=2)
    ),
    max_leaves=25,
)


@given(junk, junk, junk, junk)
@settings(max_examples=300)
def test_garbage_never_raises(root: Any, key: Any, value: Any, wire: Any) -> None:
    assert verify_proof(root, key, value, wire) in (True, False)
    assert verify_proof(EMPTY_ROOT, b"k", None, wire) in (True, False)
    assert verify_proof(EMPTY_ROOT, b"k", None, [wire, [0]]) is False or wire == []
    assert verify_proof(EMPTY_ROOT, b"k", None, [[wire], [0]]) is False


@given(junk)
@settings(max_examples=200)
@example(step=[0])  # drawn once: the real terminal of the first key's proof, an identity substitution
def test_garbage_steps_inside_a_real_proof_never_verify(
    proved: tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]], step: Any
) -> None:
    root, model, proofs = proved
    key = sorted(proofs)[0]
    steps, terminal = proofs[key]
    # Garbage that happens to equal the real part is no forgery: test only real substitutions.
    if step != steps[0]:
        assert not verify_proof(root, key, model.get(key), [[step, *steps[1:]], terminal])
    if step != terminal:
        assert not verify_proof(root, key, model.get(key), [steps, step])


def test_bench_tree_reports_figures() -> None:
    figures = bench_tree(2_000, 200, 3)
    assert figures["n_keys"] == 2_000 and figures["updates_per_s"] > 0
    assert figures["stored_nodes"] > 0 and figures["verifies_per_s"] > 0


def test_forged_terminals_are_refused() -> None:
    a, b, c = b"a", b"b", b"c"  # kh nibbles: d..., 8..., 5...
    nib = {k: int(kh(k).hex()[0], 16) for k in (a, b, c)}
    # A present key's own leaf offered as "another key's leaf" to claim its absence.
    root = node_hash({nib[a]: leaf_hash(a, b"1"), nib[b]: leaf_hash(b, b"2")})
    steps = [[(1 << nib[a]) | (1 << nib[b]), [leaf_hash(b, b"2")]]]
    assert verify_proof(root, a, b"1", [steps, [1]])
    assert not verify_proof(root, a, None, [steps, [2, kh(a), H(b"value", b"1")]])
    # Roots that no canonical tree has: a leaf off its key's path, and a node whose lone child
    # is a leaf. The verifier refuses to read anything from them.
    off_path = node_hash({nib[b]: leaf_hash(a, b"1"), nib[c]: leaf_hash(c, b"3")})
    wire = [[[(1 << nib[b]) | (1 << nib[c]), [leaf_hash(c, b"3")]]], [2, kh(a), H(b"value", b"1")]]
    assert not verify_proof(off_path, b, None, wire)
    lone = node_hash({nib[a]: leaf_hash(a, b"1")})
    assert not verify_proof(lone, a, b"1", [[[1 << nib[a], []]], [1]])
    assert not verify_proof(lone, b"x", None, [[[1 << nib[a], []]], [2, kh(a), H(b"value", b"1")]])
    # No proof is deeper than the 64 nibbles of a key hash.
    assert not verify_proof(root, a, b"1", [[[1, []]] * 65, [1]])


def test_stored_records_follow_the_spec_for_every_child_count() -> None:
    by_nibble: dict[int, bytes] = {}
    for i in range(200):
        by_nibble.setdefault(int(kh(b"k%d" % i).hex()[0], 16), b"k%d" % i)
    for count in range(2, 17):
        for chosen in (sorted(by_nibble)[:count], sorted(by_nibble)[-count:]):  # small and large bitmaps
            model = {by_nibble[n]: b"v%d" % n for n in chosen}
            source = built_from_scratch(model)
            bitmap = sum(1 << n for n in chosen)
            spec = encode([bitmap] + [[kh(by_nibble[n]), H(b"value", model[by_nibble[n]])] for n in chosen])
            assert source.nodes == {b"": spec}
            reopened = StateTree(source, compute_root(model))
            assert reopened.prove(by_nibble[chosen[0]]).verify(
                reopened.root, by_nibble[chosen[0]], b"v%d" % chosen[0]
            )


def test_malformed_siblings_are_refused_without_raising(
    proved: tuple[bytes, dict[bytes, bytes], dict[bytes, list[Any]]],
) -> None:
    root, model, proofs = proved
    key = next(k for k, (steps, _) in proofs.items() if len(steps) >= 2)
    steps, terminal = proofs[key]
    for bad in (b"\x00" * 31, b"\x00" * 33, bytearray(32), 7, "x" * 32, None, [b"\x00" * 32]):
        for depth in range(len(steps)):
            bitmap, siblings = steps[depth]
            broken = [*steps[:depth], [bitmap, [bad, *siblings[1:]]], *steps[depth + 1 :]]
            assert verify_proof(root, key, model.get(key), [broken, terminal]) is False
            assert (
                verify_proof(root, key, model.get(key), [[*steps[:depth], [bitmap, bad]], terminal]) is False
            )
            assert (
                verify_proof(root, key, model.get(key), [[*steps[:depth], [bad, siblings]], terminal])
                is False
            )
