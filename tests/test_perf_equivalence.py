"""The audit fast paths give exactly what the plain code gives.

Each optimisation made for re-execution speed (docs/BENCHMARKS.md, "bench audit") is checked here
against the code it stands in for: the quick type test in ``decode`` against ``_check`` (accepts
the same values, and a refusal raises the same error), the per-thread Packer against
``msgpack.packb``, ``H`` on short inputs against OpenSSL's SHA-256, joined receipt encodings
against encoding the list, a decoded block's kept bytes against re-encoding it, the decoded-tx
digest against the checked one, and a fresh ledger's in-memory genesis tree against a tree
reopened from the store (same roots, same proofs, same stored nodes).
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain import encoding
from chain.block import Block
from chain.encoding import H, decode, encode_joined, encode_trusted
from chain.errors import EncodingError
from chain.genesis import Genesis
from chain.history import HistoryRecord
from chain.ledger import Ledger
from chain.limits import ENCODED_DEPTH_MAX
from chain.statetree import StateTree
from chain.tx import SignedTx
from contracts import default_registry
from tests.conftest import Chain

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.binary(max_size=40),
    st.text(max_size=10),
    st.floats(allow_nan=False),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=5), max_leaves=40)


def _nested(depth: int) -> list[Any]:
    value: list[Any] = [1]
    for _ in range(depth):
        value = [b"x", value]
    return value


def _reference_decode(data: bytes) -> Any:
    """``decode`` as it was before its quick type test: always the full ``_check`` walk."""
    value = msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True, max_map_len=0, max_ext_len=0)
    encoding._check(value, 0)
    if msgpack.packb(value, use_bin_type=True) != data:
        raise EncodingError("encoding_not_canonical", "value is not in its shortest encoding")
    return value


def _outcome(fn: Any, data: bytes) -> tuple[str, Any]:
    try:
        return "ok", fn(data)
    except EncodingError as exc:
        return exc.code, exc.message


@given(_values)
def test_decode_accepts_and_refuses_exactly_as_the_full_check(value: Any) -> None:
    data = msgpack.packb(value, use_bin_type=True)  # floats included: decode must refuse them
    assert _outcome(decode, data) == _outcome(_reference_decode, data)


@pytest.mark.parametrize(
    "depth", [ENCODED_DEPTH_MAX - 2, ENCODED_DEPTH_MAX - 1, ENCODED_DEPTH_MAX, ENCODED_DEPTH_MAX + 3]
)
def test_the_depth_bound_is_the_same(depth: int) -> None:
    data = msgpack.packb(_nested(depth), use_bin_type=True)
    assert _outcome(decode, data) == _outcome(_reference_decode, data)


@given(_values)
def test_the_quick_test_never_accepts_what_check_refuses(value: Any) -> None:
    if type(value) is list and encoding._is_plain_list(value):
        encoding._check(value, 0)


@given(_values)
def test_the_thread_packer_gives_packb_bytes(value: Any) -> None:
    assert encoding._pack(value) == msgpack.packb(value, use_bin_type=True)


def test_a_failed_pack_leaves_nothing_behind_and_threads_get_their_own() -> None:
    with pytest.raises(OverflowError):
        encoding._pack([1, 2**70])
    assert encoding._pack([3]) == b"\x91\x03"
    with pytest.raises(EncodingError):
        encoding.encode([1, 2.5])
    assert encoding.encode([3]) == b"\x91\x03"
    results: list[bytes] = []

    def work() -> None:
        results.extend(encoding._pack([i, b"y" * i]) for i in range(200))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted(
        msgpack.packb([i, b"y" * i], use_bin_type=True) for i in range(200) for _ in range(4)
    )


@pytest.mark.parametrize("size", [0, 1, 31, 40, 63, 64, 103, 104, 105, 111, 112, 200, 5000])
def test_h_is_sha256_of_tag_and_data_at_every_length(size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(range(size % 256))
    for tag in (b"tx", b"list_leaf", b"list_node", b"commit"):
        assert H(tag, data) == hashlib.sha256(bytes([len(tag)]) + tag + data).digest()


@pytest.mark.parametrize("n", [0, 1, 15, 16, 17, 65535, 65536])
def test_joined_encodings_are_the_encoded_list(n: int) -> None:
    items = [[i, "ok", b"r" * (i % 3)] for i in range(n)]
    assert encode_joined([encode_trusted(item) for item in items]) == encode_trusted(items)


@pytest.fixture(scope="module")
def history(genesis: Genesis) -> Chain:
    from chain.store import Store

    chain = Chain(Store.in_memory(), genesis)
    for i in range(3):
        chain.run(
            chain.tx(
                "xchg-alpha", "settlement", "settle", [f"P-{i}", "A-C001", "B-C001", "ACME", 1 + i, 180_00]
            ),
            chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 100 + i, f"w-{i}"]),
        )
    batch = [[f"PB-{i}", "A-C002", "B-C001", "ACME", 2, 181_00] for i in range(20)] + [
        ["PB-x", "A-C001", "NOPE", "ACME", 1, 1]
    ]
    chain.run(chain.tx("xchg-alpha", "settlement", "settle_batch", [batch]))
    return chain


def test_a_decoded_block_keeps_exactly_its_bytes(history: Chain) -> None:
    store = history.store
    head = store.head()
    assert head is not None
    for h in range(1, head.height + 1):
        data = store.block_bytes(h)
        assert data is not None
        block = Block.decode(data)
        assert block.encode() == data == encode_trusted(block.to_wire())
        for stx in block.txs:
            plain = SignedTx.from_wire(msgpack.unpackb(stx.encode(), raw=False))
            assert plain.hash == stx.hash == stx.tx.digest()
        changed = dataclasses.replace(block, txs=block.txs[:-1])
        assert changed.encode() == encode_trusted(changed.to_wire())  # a changed block re-encodes


def test_stored_receipts_are_the_encoded_receipt_list(history: Chain) -> None:
    store = history.store
    head = store.head()
    assert head is not None
    for h in range(1, head.height + 1):
        receipts = store.receipts(h)
        assert receipts is not None
        assert store.receipts_bytes(h) == encode_trusted([r.to_wire() for r in receipts])


def test_a_fresh_ledgers_genesis_tree_is_the_reopened_tree(genesis: Genesis, history: Chain) -> None:
    """The source chain's tree started from genesis in memory; reopening its store reads every
    node back from the records. Same root, same proof for every key, same stored nodes as an
    auditor that re-executed the history."""
    from chain.audit import Auditor

    store = history.store
    reopened = Ledger(store, genesis, default_registry())
    live = history.ledger.tree
    assert reopened.tree.root == live.root == reopened.head.state_root
    for key, _ in store.iterate_state(b""):
        assert reopened.tree.prove(key) == live.prove(key)
    fresh = StateTree(store, live.root)
    assert fresh.prove(b"absent-key") == live.prove(b"absent-key")
    auditor = Auditor(genesis, default_registry())
    head = store.head()
    assert head is not None
    for h in range(1, head.height + 1):
        auditor.audit(
            HistoryRecord(h, store.block_bytes(h), store.certificate_bytes(h), store.receipts_bytes(h))
        )
    auditor.compare_state(store)
