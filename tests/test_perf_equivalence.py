"""The audit fast paths give exactly what the plain code gives.

Each optimisation made for re-execution speed (docs/BENCHMARKS.md, "bench audit") is checked here
against the code it stands in for: the quick type test in ``decode`` against ``_check`` (accepts
the same values, and a refusal raises the same error), the per-thread Packer against
``msgpack.packb``, ``H`` on short inputs against OpenSSL's SHA-256, joined receipt encodings
against encoding the list, a decoded block's kept bytes against re-encoding it, the decoded-tx
digest against the checked one, a fresh ledger's in-memory genesis tree against a tree
reopened from the store (same roots, same proofs, same stored nodes), ``SignedTx.decode``'s
canonical fast path against decode + from_wire, a receipt's encoding of its tuples against its
wire lists, and the executor's kept prepared calls against calling ``prepare_call`` again.
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
from chain.errors import EncodingError, InvalidTransaction
from chain.genesis import Genesis
from chain.history import HistoryRecord
from chain.ledger import Ledger
from chain.limits import ENCODED_DEPTH_MAX, TX_BYTES_MAX
from chain.policy import nonce_key
from chain.receipt import Receipt
from chain.statetree import StateTree
from chain.tx import SignedTx
from cli.localnet.devnet import GENESIS_DAY as DAY
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
    if type(value) is list and encoding.is_plain_list(value):
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
                "xchg-alpha",
                "settlement",
                "settle",
                [f"P-{i}", "A-C001", "B-C001", "ACME", 1 + i, 180_00, DAY],
            ),
            chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 100 + i, f"w-{i}"]),
        )
    batch = [[f"PB-{i}", "A-C002", "B-C001", "ACME", 2, 181_00, DAY] for i in range(20)] + [
        ["PB-x", "A-C001", "NOPE", "ACME", 1, 1, DAY]
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


# --- signed-tx decoding: the canonical fast path against decode + from_wire ------------------
def _reference_tx_decode(data: Any) -> tuple[Any, ...]:
    """``SignedTx.decode`` as it was before its fast path: the full decode, then from_wire."""
    try:
        wire = decode(data, max_bytes=TX_BYTES_MAX)
        stx = SignedTx.from_wire(wire, decoded=True)
    except EncodingError as exc:
        return ("tx_malformed", exc.message)
    except InvalidTransaction as exc:
        return (exc.code, exc.message)
    return ("ok", stx)


def _tx_outcome(data: Any) -> tuple[Any, ...]:
    try:
        return ("ok", SignedTx.decode(data))
    except InvalidTransaction as exc:
        return (exc.code, exc.message)


_PUB = b"p" * 32
_SIG = b"s" * 64
_plain_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(min_value=-(2**63), max_value=2**64 - 1),
        st.binary(max_size=8),
        st.text(max_size=6),
    ),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=20,
)
_VALID_BODY = ["clearchain-dev", "bench-x0", 1, "settlement", "settle", [], 0]
_BAD_FIELDS = [
    ["", 7],
    ["no/slash", b"bytes"],
    [0, -1, 2**63, True],
    [""],
    ["x" * 200],
    [{}],
    [-1, 2**64 - 1],
]


@st.composite
def _bodies(draw: st.DrawFn) -> list[Any]:
    """A valid body with any arguments, and at times one other field wrong."""
    body = list(_VALID_BODY)
    body[2] = draw(st.sampled_from([1, 2, 2**63 - 1]))
    body[5] = draw(st.lists(st.one_of(_plain_values, _values), max_size=6))
    if draw(st.booleans()):
        index = draw(st.integers(min_value=0, max_value=6))
        body[index] = draw(st.sampled_from(_BAD_FIELDS[index]))
    return body


_good_body = _bodies()
_sigs = st.one_of(
    st.lists(st.sampled_from([[_PUB, _SIG], [_PUB, _SIG], [_PUB, b"short"], [_PUB]]), min_size=1, max_size=3),
    st.lists(st.just([_PUB, _SIG]), min_size=15, max_size=20),  # over the signature limit
    _values,
)
_wires = st.one_of(
    st.tuples(_good_body, _sigs).map(list),
    st.tuples(_good_body, _sigs).map(list),
    st.lists(_values, max_size=3),
    _values,
)


@given(_wires)
def test_tx_decode_accepts_and_refuses_exactly_as_decode_then_from_wire(wire: Any) -> None:
    data = msgpack.packb(wire, use_bin_type=True)
    assert _tx_outcome(data) == _reference_tx_decode(data)


@given(_good_body, st.integers(min_value=1, max_value=2**32 - 1))  # shorter forms exist
def test_a_longer_form_anywhere_is_refused_as_before(body: list[Any], nonce: int) -> None:
    """Hand-made non-canonical inputs: a nonce in the 8-byte form, a 16-bit array header for the
    body, a float32 argument (refused as not canonical, not as a float, as before)."""
    sigs = msgpack.packb([[_PUB, _SIG]], use_bin_type=True)
    fields = [msgpack.packb(v, use_bin_type=True) for v in body]
    long_nonce = list(fields)
    long_nonce[2] = b"\xcf" + nonce.to_bytes(8, "big")
    single = list(fields)
    single[5] = b"\x91\xca\x3f\x80\x00\x00"  # [1.0] as float32
    for data in (
        b"\x92\x97" + b"".join(long_nonce) + sigs,
        b"\x92\xdc\x00\x07" + b"".join(fields) + sigs,
        b"\x92\x97" + b"".join(single) + sigs,
        b"\x92\x97" + b"".join(fields) + sigs + b"\x00",  # trailing bytes
        b"\x92\x97" + b"".join(fields),  # truncated
    ):
        assert _tx_outcome(data) == _reference_tx_decode(data)
        assert _tx_outcome(data)[0] != "ok"


@pytest.mark.parametrize(
    "depth", [ENCODED_DEPTH_MAX - 4, ENCODED_DEPTH_MAX - 3, ENCODED_DEPTH_MAX - 2, ENCODED_DEPTH_MAX]
)
def test_the_args_depth_bound_is_the_same(depth: int) -> None:
    body = ["clearchain-dev", "bench-x0", 1, "settlement", "settle", _nested(depth), 0]
    data = msgpack.packb([body, [[_PUB, _SIG]]], use_bin_type=True)
    assert _tx_outcome(data) == _reference_tx_decode(data)
    assert (_tx_outcome(data)[0] == "ok") == (depth + 1 <= ENCODED_DEPTH_MAX - 2)


def test_decoded_txs_hash_and_read_as_the_signed_ones(history: Chain) -> None:
    store = history.store
    head = store.head()
    assert head is not None
    for h in range(1, head.height + 1):
        block = store.block(h)
        assert block is not None
        for stx in block.txs:
            data = stx.encode()
            for form in (data, bytearray(data), memoryview(data)):
                decoded = SignedTx.decode(form)  # type: ignore[arg-type]
                assert decoded == stx and decoded.hash == stx.tx.digest()


# --- receipts: encoding the held tuples against encoding to_wire's lists ---------------------
_fields = st.lists(st.tuples(st.text(max_size=6), _values.filter(lambda v: not _has_float(v))), max_size=4)
_events = st.lists(st.tuples(st.text(max_size=8), st.text(max_size=8), _fields.map(tuple)), max_size=4)


def _has_float(value: Any) -> bool:
    if type(value) is float:
        return True
    return type(value) is list and any(_has_float(v) for v in value)


@given(st.sampled_from([0, 1]), st.binary(max_size=32), st.text(max_size=8), st.text(max_size=20), _events)
def test_a_receipt_encodes_as_its_wire_form(
    kind: int, ref: bytes, code: str, message: str, events: list[Any]
) -> None:
    receipt = Receipt(kind, ref, code, message, tuple(events))
    assert receipt.encode() == encode_trusted(receipt.to_wire())
    assert Receipt.from_wire(decode(receipt.encode())).encode() == receipt.encode()


# --- the executor's kept prepared calls --------------------------------------------------------
def test_a_kept_prepared_call_is_the_one_prepare_call_gives(
    genesis: Genesis, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Admission keeps each passing tx's prepared call; a block takes it (once); the kept set is
    bounded, oldest dropped first; a block without kept calls gives the same result."""
    from chain import executor as executor_module
    from chain.state import BlockState
    from chain.store import Store

    monkeypatch.setattr(executor_module, "PREPARED_CALLS_MAX", 3)
    chain = Chain(Store.in_memory(), genesis)
    txs = [
        chain.tx(
            "xchg-alpha", "settlement", "settle", [f"K-{i}", "A-C001", "B-C001", "ACME", 1 + i, 180_00, DAY]
        )
        for i in range(5)
    ]
    ex = chain.ledger.executor
    state = BlockState(chain.store)
    for stx in txs:
        prepared = ex.check_transaction(stx, state, 1)
        assert prepared == ex.runtime.prepare_call(stx.tx.contract, stx.tx.method, stx.tx.args)
        state.begin()
        state.put(nonce_key(stx.tx.sender), stx.tx.nonce)
        state.commit_tx()
    assert list(ex._prepared) == [t.hash for t in txs[2:]]
    fresh = Chain(Store.in_memory(), genesis)
    args = (chain.store, chain.ledger.tree, 1, genesis.genesis_time_ms + 1)
    kept = ex.execute(*args, txs)
    assert not ex._prepared
    plain = fresh.ledger.executor.execute(fresh.store, fresh.ledger.tree, 1, genesis.genesis_time_ms + 1, txs)
    assert kept.receipts == plain.receipts and kept.state_root == plain.state_root
    assert kept.receipts_encoded == plain.receipts_encoded
