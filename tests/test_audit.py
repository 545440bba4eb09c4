"""The auditor (chain/audit.py): a clean history passes with the right tallies; every tampering
of a stored block, certificate, receipt or state value is found at the right height with the
right field named; exports round-trip; a node's data folder is audited through a snapshot."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

from chain.audit import AuditFailure, Auditor, Discrepancy
from chain.block import Block
from chain.certificate import CommitCertificate, sign_certificate
from chain.encoding import decode, encode
from chain.errors import BlockRuleViolation
from chain.executor import InvalidTxInBlock
from chain.genesis import Genesis, parse_genesis
from chain.history import HistoryError, HistoryRecord, Preamble
from chain.keys import KeyPair
from chain.ledger import Ledger
from chain.store import BLOCK_PREFIX, NODE_PREFIX, STATE_PREFIX, Store
from cli.audit.history import ExportWriter, FileSource, HomeSource
from cli.audit.tally import AuditTally
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry
from tests.conftest import Chain

VALIDATORS = sorted((devnet.validator_key(i) for i in range(4)), key=lambda k: k.public)


def _build(chain: Chain) -> None:
    """Eight blocks: trades that settle and fail, a batch with a failing ticket, custody."""
    for i in range(3):
        chain.run(
            chain.tx(
                "xchg-alpha", "settlement", "settle", [f"T-{i}", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]
            )
        )
    chain.run(
        chain.tx(
            "xchg-alpha", "settlement", "settle", ["T-big", "A-C001", "B-C001", "ACME", 10**9, 180_00, DAY]
        )
    )
    batch = [[f"B-{i}", "A-C002", "B-C001", "ACME", 5, 181_00, DAY] for i in range(3)] + [
        ["B-x", "A-C001", "NOPE", "ACME", 1, 1, DAY]
    ]
    chain.run(chain.tx("xchg-alpha", "settlement", "settle_batch", [batch]))
    chain.run(chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 500_00, "wire-1"]))
    chain.run(chain.tx("member-b", "custody", "request_withdrawal", ["B-C002", "USD", 100_00]))
    chain.run(chain.tx("custodian", "custody", "confirm_withdrawal", [1]))


def _records(store: Store) -> list[HistoryRecord]:
    head = store.head()
    assert head is not None
    return [
        HistoryRecord(h, store.block_bytes(h), store.certificate_bytes(h), store.receipts_bytes(h))
        for h in range(1, head.height + 1)
    ]


@pytest.fixture(scope="module")
def built(genesis: Genesis) -> tuple[Chain, list[HistoryRecord]]:
    chain = Chain(Store.in_memory(), genesis)
    _build(chain)
    return chain, _records(chain.store)


def _audit(genesis: Genesis, records: list[HistoryRecord], **kw: Any) -> Auditor:
    auditor = Auditor(genesis, default_registry(), **kw)
    for record in records:
        auditor.audit(record)
    return auditor


def _discrepancy(genesis: Genesis, records: list[HistoryRecord], **kw: Any) -> Discrepancy:
    with pytest.raises(AuditFailure) as err:
        _audit(genesis, records, **kw)
    return err.value.discrepancy


def _replace(records: list[HistoryRecord], height: int, **changes: Any) -> list[HistoryRecord]:
    return [dataclasses.replace(r, **changes) if r.height == height else r for r in records]


def _recertify(record: HistoryRecord, signers: list[KeyPair], round_: int = 0) -> HistoryRecord:
    block = Block.decode(record.block or b"")
    cert = sign_certificate(block.header.chain_id, block.height, round_, block.hash(), signers)
    return dataclasses.replace(record, certificate=encode(cert.to_wire()))


# --- a clean history --------------------------------------------------------------------------
def test_clean_history_passes_with_its_tallies(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]]
) -> None:
    chain, records = built
    auditor = Auditor(genesis, default_registry())
    tally = AuditTally()
    for record in records:
        tally.add(auditor.audit(record), auditor.store)
    assert auditor.ledger.head == chain.ledger.head
    auditor.compare_state(chain.store)  # state and tree nodes equal, key by key
    doc = tally.to_json(auditor.store)
    assert (doc["blocks"], doc["txs"], doc["txs_failed"]) == (8, 8, 1)
    assert (doc["trades_settled"], doc["trades_failed"]) == (6, 2)  # T-big fails alone; B-x in the batch
    assert doc["assets"]["ACME"]["delivered"] == "45"
    assert doc["assets"]["USD"]["delivered"] == "8,115.00"  # 3 x 10 x 180.00 + 3 x 5 x 181.00
    assert (doc["assets"]["USD"]["deposited"], doc["assets"]["USD"]["withdrawn"]) == ("500.00", "100.00")
    assert [(v["signed"], v["in_set"]) for v in doc["validators"]] == [(8, 8)] * 4
    assert sum(v["proposed"] for v in doc["validators"]) == 8


def test_a_missed_signature_shows_in_the_signing_record(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]]
) -> None:
    _, records = built
    quorum = VALIDATORS[:3]  # 3 of 4: still more than two thirds
    # Block 4's stored certificate lacks a signer, but block 5 carries one with all four; the
    # head's certificate has no successor, so its absent signer shows as missed.
    records = _replace(records, 4, certificate=_recertify(records[3], quorum).certificate)
    records = _replace(records, 8, certificate=_recertify(records[7], quorum).certificate)
    auditor = Auditor(genesis, default_registry())
    tally = AuditTally()
    for record in records:
        tally.add(auditor.audit(record), auditor.store)
    absent = next(
        v for v in tally.to_json(auditor.store)["validators"] if v["pub_key"] == VALIDATORS[3].public.hex()
    )
    assert (absent["signed"], absent["missed_first"]) == (7, [8])


# --- tampering --------------------------------------------------------------------------------
@settings(max_examples=60)
@given(data=st.data())
def test_any_flipped_byte_is_found_at_its_height(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]], data: st.DataObject
) -> None:
    _, records = built
    height = data.draw(st.integers(1, len(records)), label="height")
    part = data.draw(st.sampled_from(["block", "certificate", "receipts"]), label="part")
    original: bytes = getattr(records[height - 1], part)
    at = data.draw(st.integers(0, len(original) - 1), label="byte")
    flip = data.draw(st.integers(1, 255), label="xor")
    tampered = bytearray(original)
    tampered[at] ^= flip
    d = _discrepancy(genesis, _replace(records, height, **{part: bytes(tampered)}))
    assert d.height == height, d.text()
    expected_fields = {
        "block": ("block", "header.", "txs[", "last_commit", "certificate."),
        "certificate": ("certificate",),
        "receipts": ("receipts",),
    }
    assert d.field.startswith(expected_fields[part]), d.text()


def test_a_deleted_block_is_a_gap(genesis: Genesis, built: tuple[Chain, list[HistoryRecord]]) -> None:
    _, records = built
    d = _discrepancy(genesis, records[:4] + records[5:])
    assert (d.height, d.field, d.check) == (5, "height", "height_gap")
    d = _discrepancy(genesis, _replace(records, 5, block=None))
    assert (d.height, d.field, d.check) == (5, "block", "block_missing")


def test_reordered_txs_break_the_tx_root(genesis: Genesis) -> None:
    chain = Chain(Store.in_memory(), genesis)
    chain.run(chain.tx("xchg-alpha", "settlement", "settle", ["R-1", "A-C001", "B-C001", "ACME", 1, 100, DAY]),
              chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 1, "r-1"]))  # fmt: skip
    records = _records(chain.store)
    block = Block.decode(records[0].block or b"")
    swapped = Block(block.header, tuple(reversed(block.txs)), block.last_commit)
    d = _discrepancy(genesis, _replace(records, 1, block=swapped.encode()))
    assert (d.height, d.field, d.check) == (1, "header.tx_root", "tx_root")


def test_weak_or_foreign_certificates_are_refused(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]]
) -> None:
    _, records = built
    below = _replace(records, 3, certificate=_recertify(records[2], VALIDATORS[:2]).certificate)
    d = _discrepancy(genesis, below)
    assert (d.height, d.field, d.check) == (3, "certificate.power", "certificate_quorum")
    assert d.expected == "more than 2/3 of 40 power (at least 27)" and d.found.startswith("20 (")
    outsider = KeyPair.dev("not-a-validator")
    foreign = _replace(
        records, 3, certificate=_recertify(records[2], VALIDATORS[:3] + [outsider]).certificate
    )
    d = _discrepancy(genesis, foreign)
    assert (d.height, d.check) == (3, "certificate_signer") and outsider.public.hex() in d.found
    cert = CommitCertificate.from_wire(decode(records[2].certificate or b""))
    doubled = dataclasses.replace(cert, signatures=(cert.signatures[0],) * 3)
    d = _discrepancy(genesis, _replace(records, 3, certificate=encode(doubled.to_wire())))
    assert (d.height, d.field, d.check) == (3, "certificate.signatures[1]", "certificate_order")
    other_round = _replace(
        records, 3, certificate=encode(dataclasses.replace(cert, round=cert.round + 1).to_wire())
    )
    d = _discrepancy(genesis, other_round)
    assert (d.height, d.field, d.check) == (3, "certificate.signatures[0]", "certificate_signature")
    wrong_block = _replace(records, 3, certificate=records[3].certificate)
    d = _discrepancy(genesis, wrong_block)
    assert (d.height, d.field, d.check) == (3, "certificate.height", "certificate_height")


def test_swapped_receipts_are_named_by_index(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]]
) -> None:
    _, records = built
    d = _discrepancy(genesis, _replace(records, 2, receipts=records[0].receipts))
    assert (d.height, d.field, d.check) == (2, "receipts[0].ref", "stored_receipt")


def test_another_genesis_is_refused(genesis: Genesis, built: tuple[Chain, list[HistoryRecord]]) -> None:
    chain, records = built
    doc = devnet.dev_genesis_doc()
    doc["balances"][0]["amount"] += 1
    other = parse_genesis(doc)
    auditor = Auditor(other, default_registry())
    with pytest.raises(AuditFailure) as err:
        auditor.check_genesis(chain.store.genesis_hash() or b"", "test")
    assert (err.value.discrepancy.height, err.value.discrepancy.field) == (0, "genesis_hash")
    d = _discrepancy(other, records)  # even without the check, block 1 does not link
    assert (d.height, d.check) == (1, "hash_link")


class _LyingRuntime:
    """The real contracts, except that every deposit also writes a key the rules never write."""

    def __init__(self) -> None:
        self.inner = default_registry()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def call(self, state: Any, env: Any, sender: str, prepared: Any) -> Any:
        events = self.inner.call(state, env, sender, prepared)
        if any(name == "deposited" for _, name, _ in events):
            state.put(b"custody/forged", 1)
        return events


def test_a_state_root_mismatch_names_the_keys(genesis: Genesis) -> None:
    chain = Chain(Store.in_memory(), genesis)
    chain.run(
        chain.tx("xchg-alpha", "settlement", "settle", ["S-1", "A-C001", "B-C001", "ACME", 1, 100, DAY])
    )
    lying = Chain.__new__(Chain)
    lying.__dict__.update(chain.__dict__)
    chain.ledger.runtime = chain.ledger.executor.runtime = _LyingRuntime()  # type: ignore[assignment]
    chain.run(chain.tx("custodian", "custody", "deposit", ["B-C002", "USD", 7, "lie-1"]))
    records = _records(chain.store)
    d = _discrepancy(genesis, records)
    assert (d.height, d.field, d.check) == (2, "header.state_root", "state_root")
    assert any(n.startswith("accounts/bal/B-C002/USD:") for n in d.notes), d.notes
    # With the source's own state at that height, exactly the differing key is named.
    d = _discrepancy(genesis, records, reference=lambda h: chain.store if h == 2 else None)
    assert d.notes[0].startswith("1 state key(s) differ")
    assert d.notes[1] == "custody/forged: absent vs 1"


# --- one definition of a valid block: the auditor and the ledger agree ------------------------
_HEADER_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "height": st.integers(0, 20),
    "chain_id": st.sampled_from(["other", "clearchain-de", "x"]),
    "time_ms": st.integers(0, 2**42),
    **{
        name: st.binary(min_size=32, max_size=32)
        for name in ("prev_block_hash", "tx_root", "receipts_root", "state_root", "validators_hash",
                     "next_validators_hash", "proposer", "last_commit_hash")
    },
}  # fmt: skip


def _tampered(data: st.DataObject, record: HistoryRecord) -> tuple[Block, CommitCertificate]:
    """The record's block and certificate with one header field, one signature or the
    certificate changed; re-signed by every validator when drawn so, so that checks after the
    certificate's are reached too."""
    block = Block.decode(record.block or b"")
    cert = CommitCertificate.from_wire(decode(record.certificate or b""))
    kind = data.draw(st.sampled_from(["header", "signature", "certificate", "last_commit"]), label="kind")
    if kind == "header":
        name = data.draw(st.sampled_from(sorted(_HEADER_VALUES)), label="field")
        header = dataclasses.replace(block.header, **{name: data.draw(_HEADER_VALUES[name], label="value")})
        block = Block(header, block.txs, block.last_commit)
        if data.draw(st.booleans(), label="re-signed"):
            cert = sign_certificate(header.chain_id, block.height, 0, block.hash(), VALIDATORS)
    elif kind == "signature":
        i = data.draw(st.integers(0, len(cert.signatures) - 1), label="signer")
        key, sig = cert.signatures[i]
        at = data.draw(st.integers(0, len(sig) - 1), label="byte")
        sig = sig[:at] + bytes([sig[at] ^ data.draw(st.integers(1, 255), label="xor")]) + sig[at + 1 :]
        cert = dataclasses.replace(
            cert, signatures=cert.signatures[:i] + ((key, sig),) + cert.signatures[i + 1 :]
        )
    elif kind == "certificate":
        change = data.draw(
            st.sampled_from(["signers", "round", "height", "block_hash", "doubled", "outsider"])
        )
        chain_id = block.header.chain_id
        if change == "signers":
            signers = data.draw(st.lists(st.sampled_from(VALIDATORS), unique=True), label="signers")
            cert = sign_certificate(chain_id, block.height, 0, block.hash(), signers)
        elif change == "outsider":
            cert = sign_certificate(
                chain_id, block.height, 0, block.hash(), VALIDATORS[:2] + [KeyPair.dev("x")]
            )
        elif change == "doubled":
            cert = dataclasses.replace(cert, signatures=(cert.signatures[0],) * 2 + cert.signatures[1:])
        elif change == "round":
            cert = dataclasses.replace(cert, round=cert.round + data.draw(st.integers(1, 3)))
        elif change == "height":
            cert = dataclasses.replace(
                cert, height=data.draw(st.integers(0, 20).filter(lambda x: x != cert.height))
            )
        else:
            cert = dataclasses.replace(cert, block_hash=data.draw(st.binary(min_size=32, max_size=32)))
    else:  # the parent's certificate the block carries, weakened or dropped; the block re-signed
        last = block.last_commit
        if last is None or data.draw(st.booleans(), label="dropped"):
            last = None
        else:
            signers = data.draw(st.lists(st.sampled_from(VALIDATORS), unique=True), label="signers")
            last = sign_certificate(block.header.chain_id, last.height, last.round, last.block_hash, signers)
        block = Block(block.header, block.txs, last)
        cert = sign_certificate(block.header.chain_id, block.height, 0, block.hash(), VALIDATORS)
    return block, cert


@settings(max_examples=200)
@given(data=st.data())
def test_the_auditor_and_the_ledger_refuse_the_same_blocks_naming_the_same_field(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]], data: st.DataObject
) -> None:
    _, records = built
    height = data.draw(st.integers(1, len(records)), label="height")
    block, cert = _tampered(data, records[height - 1])
    tampered = dataclasses.replace(
        records[height - 1], block=block.encode(), certificate=encode(cert.to_wire())
    )
    auditor = _audit(genesis, records[: height - 1])
    replica = Ledger(Store.in_memory(), genesis, default_registry())
    for record in records[: height - 1]:
        replica.apply_committed(
            Block.decode(record.block or b""), CommitCertificate.from_wire(decode(record.certificate or b""))
        )
    found: Discrepancy | None = None
    try:
        auditor.audit(tampered)
    except AuditFailure as err:
        found = err.discrepancy
    event(found.check if found is not None else "valid")
    try:
        replica.apply_committed(block, cert)
    except BlockRuleViolation as violation:
        assert found is not None, violation
        v = violation
        assert (v.height, v.field, v.expected, v.found, v.check) == (
            found.height, found.field, found.expected, found.found, found.check,
        )  # fmt: skip
    except InvalidTxInBlock as exc:
        assert found is not None and found.field == f"txs[{exc.index}]", exc
    else:
        assert found is None, found.text()
        assert replica.head == auditor.ledger.head


# --- exports ----------------------------------------------------------------------------------
def _export(path: Path, fmt: str, genesis: Genesis, chain: Chain, records: list[HistoryRecord]) -> Path:
    """Write ``records`` as an export file of format ``fmt`` at ``path``."""
    with path.open("wb") as out:
        writer = ExportWriter(
            out, fmt, Preamble(genesis.chain_id, chain.store.genesis_hash() or b"", 1, len(records))
        )
        for record in records:
            writer.record(record)
        writer.finish()
    return path


@pytest.mark.parametrize("fmt", ["msgpack", "jsonl"])
def test_export_round_trips_and_truncation_is_found(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]], tmp_path: Path, fmt: str
) -> None:
    chain, records = built
    path = _export(tmp_path / f"history.{fmt}", fmt, genesis, chain, records)
    src = FileSource(path)
    try:
        auditor = Auditor(genesis, default_registry())
        auditor.check_genesis(src.genesis_hash, src.describe)
        for record in src.records(1, src.head):
            auditor.audit(record)
        assert auditor.ledger.head == chain.ledger.head
    finally:
        src.close()
    data = path.read_bytes()
    cut = tmp_path / f"cut.{fmt}"
    cut.write_bytes(data[: len(data) - (30 if fmt == "jsonl" else 9)])
    src = FileSource(cut)
    try:
        with pytest.raises(HistoryError) as err:
            list(src.records(1, src.head))
        assert err.value.code == "history_truncated"
    finally:
        src.close()


@pytest.mark.parametrize("fmt", ["msgpack", "jsonl"])
def test_the_commit_round_travels_in_the_exported_certificate(
    genesis: Genesis, built: tuple[Chain, list[HistoryRecord]], tmp_path: Path, fmt: str
) -> None:
    """docs/PROTOCOL.md section 16: the round of each commit is the certificate's second field,
    so an export carries it and the audit reports it (here block 3 committed at round 2)."""
    chain, records = built
    records = _replace(records, 3, certificate=_recertify(records[2], VALIDATORS, round_=2).certificate)
    path = _export(tmp_path / f"history.{fmt}", fmt, genesis, chain, records)
    src = FileSource(path)
    try:
        read = list(src.records(1, src.head))
    finally:
        src.close()
    assert [CommitCertificate.from_wire(decode(r.certificate or b"")).round for r in read] == [0, 0, 2] + [
        0
    ] * 5
    auditor = Auditor(genesis, default_registry())
    assert [auditor.audit(r).round for r in read] == [0, 0, 2] + [0] * 5


def test_a_file_that_is_not_an_export_is_refused(tmp_path: Path) -> None:
    for name, content in (("empty", b""), ("text", b'{"hello": 1}\n'), ("bytes", b"\x00\x00\x00\x03abc")):
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(HistoryError) as err:
            FileSource(path)
        assert err.value.code in ("history_not_export", "history_malformed"), name


# --- a node's data folder ---------------------------------------------------------------------
@pytest.fixture()
def home(genesis: Genesis, tmp_path: Path) -> Path:
    store = Store.open_leveldb(tmp_path / "db")
    try:
        _build(Chain(store, genesis))
    finally:
        store.close()
    return tmp_path


def _audit_home(genesis: Genesis, home: Path) -> Auditor:
    src = HomeSource(home)
    try:
        auditor = Auditor(
            genesis, default_registry(), reference=lambda h: src.store() if h == src.head else None
        )
        auditor.check_genesis(src.genesis_hash, src.describe)
        for record in src.records(1, src.head):
            auditor.audit(record)
        auditor.compare_state(src.store())
        return auditor
    finally:
        src.close()


def _tamper_db(home: Path, change: Any) -> None:
    import plyvel

    db = plyvel.DB(str(home / "db"))
    try:
        change(db)
    finally:
        db.close()


def test_home_audit_passes_and_never_writes_the_node_folder(genesis: Genesis, home: Path) -> None:
    before = {p.name: p.stat().st_mtime_ns for p in (home / "db").iterdir()}
    assert _audit_home(genesis, home).height == 8
    assert {p.name: p.stat().st_mtime_ns for p in (home / "db").iterdir()} == before


def test_home_audit_names_a_tampered_state_value(genesis: Genesis, home: Path) -> None:
    _tamper_db(home, lambda db: db.put(STATE_PREFIX + b"accounts/bal/A-C001/USD", encode([1, 0])))
    with pytest.raises(AuditFailure) as err:
        _audit_home(genesis, home)
    d = err.value.discrepancy
    assert (d.height, d.field, d.check) == (8, "state accounts/bal/A-C001/USD", "stored_state")
    assert d.found == "[1, 0]"


def test_home_audit_names_a_tampered_tree_node_and_a_deleted_block(genesis: Genesis, home: Path) -> None:
    def flip_node(db: Any) -> None:
        key, value = next(iter(db.iterator(prefix=NODE_PREFIX)))
        db.put(key, value[:-1] + bytes([value[-1] ^ 1]))

    _tamper_db(home, flip_node)
    with pytest.raises(AuditFailure) as err:
        _audit_home(genesis, home)
    assert err.value.discrepancy.field.startswith("state tree node")
    _tamper_db(home, lambda db: db.delete(BLOCK_PREFIX + (6).to_bytes(8, "big")))
    with pytest.raises(AuditFailure) as err:
        _audit_home(genesis, home)
    assert (err.value.discrepancy.height, err.value.discrepancy.check) == (6, "block_missing")
