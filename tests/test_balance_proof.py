"""Offline balance proofs (contracts/proofs.py over chain/proof_file.py, docs/PROOFS.md) and the
commands that make and check them (``clearchain account prove``, ``clearchain verify-proof``).

The proofs are built from real ledgers (dev genesis, solo-produced blocks with certificates from
the four dev validators) over random histories, and from synthetic states (a state tree built
directly, with a header and certificate signed here) where a test needs values the contracts
never write or a validator-set change. Every valid file must verify and say what the ledger
holds; every tampered or malformed one must fail with the code that names the broken check,
never with a traceback. The last tests run the two commands through click against a node.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.block import ZERO_HASH, Header
from chain.certificate import CommitCertificate, sign_certificate
from chain.encoding import encode
from chain.genesis import Genesis, parse_genesis
from chain.keys import KeyPair
from chain.limits import AMOUNT_MAX
from chain.statetree import EMPTY_ROOT, StateTree
from chain.store import Store
from chain.validators import Validator, ValidatorSet
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.main import main
from contracts.proofs import (
    FORMAT,
    PathStep,
    ProofError,
    StateEntry,
    TrustAnchor,
    account_key,
    balance_key,
    build_balance_proof,
    instrument_key,
    iso_time,
    parse_proof_json,
    verify_balance_proof,
)
from node.config import ConsensusSection
from tests.conftest import Chain
from tests.exits import exit_status
from tests.netutil import NodeThread

ACCOUNTS = [a["id"] for a in devnet.all_accounts()]
ASSETS = [i["id"] for i in devnet.INSTRUMENTS]
DEV_KEYS = [devnet.validator_key(i) for i in range(4)]
GENESIS = parse_genesis(devnet.dev_genesis_doc())


# --- building proofs --------------------------------------------------------------------------
def entry_in(tree: StateTree, values: dict[bytes, bytes] | Store, key: bytes) -> StateEntry:
    value = values.get_state(key) if isinstance(values, Store) else values.get(key)
    return StateEntry(key, value, encode(tree.prove(key).to_wire()))


def chain_proof(chain: Chain, account: str, asset: str) -> dict[str, Any]:
    """A proof of ``account``'s ``asset`` balance at the chain's head, as the prover makes it."""
    ledger, store = chain.ledger, chain.store
    head = ledger.head
    return build_balance_proof(
        account,
        asset,
        balance=entry_in(ledger.tree, store, balance_key(account, asset)),
        account_record=entry_in(ledger.tree, store, account_key(account)),
        instrument=entry_in(ledger.tree, store, instrument_key(asset)),
        header=encode(head.to_wire()),
        certificate=encode(store.certificate(head.height).to_wire()),
        validators=encode(ledger.head_validators.to_wire()),
    )


class _Nodes:
    def __init__(self) -> None:
        self.records: dict[bytes, bytes] = {}

    def get_node(self, path: bytes) -> bytes | None:
        return self.records.get(path)


def tree_of(state: dict[bytes, bytes]) -> StateTree:
    nodes = _Nodes()
    update = StateTree(nodes, EMPTY_ROOT).compute_update(state)
    for path, record in update.node_writes.items():
        if record is not None:
            nodes.records[path] = record
    return StateTree(nodes, update.root)


def dev_state(account: str = "A-C001", asset: str = "USD", balance: Any = (123_450, 0)) -> dict[bytes, bytes]:
    """A small synthetic state: the account, the instrument, a balance (None: absent) and noise."""
    state = {
        account_key(account): encode(["member-a", "client", "client-001", "active", 1]),
        instrument_key(asset): encode(["cash", 2, None, "active"]),
        b"noise/1": b"\x01",
        b"noise/2": b"\x02",
    }
    if balance is not None:
        state[balance_key(account, asset)] = encode(list(balance))
    return state


def signed_header(
    state_root: bytes,
    height: int,
    signers: list[KeyPair],
    vset: ValidatorSet,
    next_set: ValidatorSet | None = None,
    chain_id: str = GENESIS.chain_id,
) -> tuple[bytes, bytes]:
    """(header bytes, certificate bytes) of a header at ``height`` signed by ``signers``."""
    header = Header(
        chain_id, height, 1_767_225_600_000 + height * 1000, b"\x11" * 32, ZERO_HASH, ZERO_HASH, state_root,
        vset.hash(), (next_set or vset).hash(), vset.validators[0].pubkey, b"\x22" * 32,
    )  # fmt: skip
    cert = sign_certificate(chain_id, height, 0, header.hash(), signers)
    return encode(header.to_wire()), encode(cert.to_wire())


def synthetic_proof(
    state: dict[bytes, bytes],
    account: str = "A-C001",
    asset: str = "USD",
    signers: list[KeyPair] = DEV_KEYS,
    vset: ValidatorSet = GENESIS.validators,
    path: tuple[PathStep, ...] = (),
    height: int = 7,
) -> dict[str, Any]:
    tree = tree_of(state)
    header, cert = signed_header(tree.root, height, signers, vset)
    return build_balance_proof(
        account,
        asset,
        balance=entry_in(tree, state, balance_key(account, asset)),
        account_record=entry_in(tree, state, account_key(account)),
        instrument=entry_in(tree, state, instrument_key(asset)),
        header=header,
        certificate=cert,
        validators=encode(vset.to_wire()),
        validator_path=path,
    )


def fails_with(code: str, doc: Any, anchor: Genesis | TrustAnchor = GENESIS) -> ProofError:
    with pytest.raises(ProofError) as err:
        verify_balance_proof(doc, anchor)
    assert err.value.code == code, err.value.message
    return err.value


def round_trip(doc: dict[str, Any]) -> Any:
    """The document as a file holds it (JSON), read back as verify-proof reads it."""
    return parse_proof_json(json.dumps(doc).encode())


# --- valid proofs from real ledgers -----------------------------------------------------------
deposit_st = st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ASSETS), st.integers(1, 10**12))


@settings(max_examples=15)
@given(
    blocks=st.lists(st.lists(deposit_st, max_size=4), min_size=1, max_size=3),
    withdraw=st.one_of(st.none(), st.tuples(st.sampled_from(["A-C001", "A-C002"]), st.integers(1, 10**6))),
    target=st.tuples(st.sampled_from(ACCOUNTS), st.sampled_from(ASSETS)),
)
def test_proofs_of_random_ledgers_verify(
    blocks: list[list[tuple[str, str, int]]], withdraw: tuple[str, int] | None, target: tuple[str, str]
) -> None:
    chain = Chain(Store.in_memory(), GENESIS)
    n = 0
    for deposits in blocks:
        txs = []
        for account, asset, amount in deposits:
            n += 1
            txs.append(chain.tx("custodian", "custody", "deposit", [account, asset, amount, f"w{n}"]))
        chain.run(*txs)
    if withdraw is not None:  # a locked amount
        chain.run(chain.tx("member-a", "custody", "request_withdrawal", [withdraw[0], "USD", withdraw[1]]))
    account, asset = target
    result = verify_balance_proof(round_trip(chain_proof(chain, account, asset)), GENESIS)
    available, locked = chain.balance(account, asset)
    assert (result.available, result.locked) == (available, locked)
    assert result.present == (available + locked > 0)
    assert result.height == chain.ledger.head.height
    assert result.block_hash == chain.ledger.head.hash()
    assert result.state_root == chain.ledger.head.state_root
    assert (result.signed_power, result.total_power) == (40, 40)
    assert result.signers == ("validator-0", "validator-1", "validator-2", "validator-3")
    kind = next(a["kind"] for a in devnet.all_accounts() if a["id"] == account)
    assert result.account_info.kind == kind and result.validator_changes == 0


def test_statement_says_what_was_proven(chain: Chain) -> None:
    chain.run(chain.tx("custodian", "custody", "deposit", ["A-C001", "USD", 1_234_50, "w1"]))
    result = verify_balance_proof(chain_proof(chain, "A-C001", "USD"), GENESIS)
    head = chain.ledger.head
    assert result.statement() == (
        "account A-C001 (client account of member-a for client client-001, active) held "
        "1,001,234.50 USD available and 0.00 locked at height 1 "
        f"(block {head.hash().hex()}, time 2026-01-01T00:00:01.000Z) of chain clearchain-dev: "
        f"the state root {head.state_root.hex()} is signed by validators holding 40 of 40 power "
        "(validator-0, validator-1, validator-2, validator-3)"
    )
    absent = verify_balance_proof(chain_proof(chain, "A-C001", "BTC"), GENESIS)
    assert not absent.present and (absent.available, absent.locked, absent.decimals) == (0, 0, 8)
    assert "held 0.00000000 BTC available and 0.00000000 locked (no balance record" in absent.statement()
    assert json.loads(json.dumps(absent.to_json()))["statement"] == absent.statement()


def test_a_quorum_short_of_everyone_verifies() -> None:
    doc = synthetic_proof(dev_state(), signers=DEV_KEYS[:3])  # 30 of 40 > two thirds
    result = verify_balance_proof(doc, GENESIS)
    assert (result.signed_power, result.total_power, result.available) == (30, 40, 123_450)
    assert len(result.signers) == 3


@settings(max_examples=40)
@given(
    others=st.dictionaries(
        st.binary(min_size=1, max_size=40), st.binary(min_size=1, max_size=40), max_size=30
    ),
    balance=st.one_of(st.none(), st.tuples(st.integers(0, AMOUNT_MAX), st.integers(0, AMOUNT_MAX))),
)
def test_synthetic_states_present_and_absent(others: dict[bytes, bytes], balance: Any) -> None:
    state = {**others, **dev_state(balance=balance)}
    result = verify_balance_proof(round_trip(synthetic_proof(state)), GENESIS)
    assert (result.available, result.locked) == (balance or (0, 0))
    assert result.present == (balance is not None)


# --- tampering --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    """A valid proof from a real ledger (two blocks)."""
    chain = Chain(Store.in_memory(), GENESIS)
    chain.run(chain.tx("custodian", "custody", "deposit", ["A-C001", "USD", 99, "w1"]))
    chain.run(chain.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 50]))
    doc = chain_proof(chain, "A-C001", "USD")
    verify_balance_proof(doc, GENESIS)
    return doc


def with_header(doc: dict[str, Any], **changes: Any) -> dict[str, Any]:
    from chain.encoding import decode

    header = Header.from_wire(decode(bytes.fromhex(doc["header"])))
    return {**doc, "header": encode(dataclasses.replace(header, **changes).to_wire()).hex()}


def with_cert(doc: dict[str, Any], fn: Any) -> dict[str, Any]:
    from chain.encoding import decode

    cert = CommitCertificate.from_wire(decode(bytes.fromhex(doc["certificate"])))
    return {**doc, "certificate": encode(fn(cert).to_wire()).hex()}


@pytest.mark.parametrize(
    "field, value, code",
    [
        ("chain_id", "other-chain", "proof_chain"),
        ("height", 99, "proof_certificate"),
        ("time_ms", 5, "proof_certificate"),
        ("prev_block_hash", b"\x01" * 32, "proof_certificate"),
        ("tx_root", b"\x02" * 32, "proof_certificate"),
        ("receipts_root", b"\x03" * 32, "proof_certificate"),
        ("state_root", b"\x04" * 32, "proof_certificate"),
        ("validators_hash", b"\x05" * 32, "proof_validators"),
        ("next_validators_hash", b"\x06" * 32, "proof_certificate"),
        ("proposer", b"\x07" * 32, "proof_certificate"),
        ("last_commit_hash", b"\x08" * 32, "proof_certificate"),
    ],
)
def test_each_tampered_header_field_fails(good: dict[str, Any], field: str, value: Any, code: str) -> None:
    fails_with(code, with_header(good, **{field: value}))


def test_tampered_value_or_state_proof_fails(good: dict[str, Any]) -> None:
    bal = good["balance"]
    for value in (encode([49, 51]).hex(), encode([49, 50, 0]).hex(), None):
        fails_with("proof_state", {**good, "balance": {**bal, "value": value}})
    other = copy.deepcopy(good)
    other["balance"]["proof"] = good["account_record"]["proof"]  # a proof of another key
    fails_with("proof_state", other)
    fails_with("proof_key", {**good, "balance": {**bal, "key": balance_key("A-C002", "USD").hex()}})
    fails_with("proof_key", {**good, "instrument": good["account_record"]})
    fails_with("proof_malformed", {**good, "balance": {**bal, "proof": "c1"}})  # not msgpack


@settings(max_examples=60)
@given(st.data())
def test_any_flipped_evidence_byte_fails(good: dict[str, Any], data: st.DataObject) -> None:
    # Which evidence field, which byte, which bit: the file must then fail (with some code).
    name = data.draw(
        st.sampled_from(["header", "certificate", "validators", "balance", "account_record", "instrument"])
    )
    doc = copy.deepcopy(good)
    holder, key = (
        (doc, name)
        if name in ("header", "certificate", "validators")
        else (doc[name], data.draw(st.sampled_from(["proof", "value", "key"])))
    )
    raw = bytearray.fromhex(holder[key])
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] ^= 1 << data.draw(st.integers(0, 7))
    holder[key] = raw.hex()
    with pytest.raises(ProofError) as err:
        verify_balance_proof(doc, GENESIS)
    assert err.value.code.startswith("proof_")


def test_certificate_signature_quorum_and_signers(good: dict[str, Any]) -> None:
    def flip_signature(cert: CommitCertificate) -> CommitCertificate:
        (k, s), *rest = cert.signatures
        return dataclasses.replace(cert, signatures=((k, bytes([s[0] ^ 1]) + s[1:]), *rest))

    err = fails_with("proof_certificate", with_cert(good, flip_signature))
    assert err.message.startswith("certificate_signature:")
    below = with_cert(good, lambda c: dataclasses.replace(c, signatures=c.signatures[:2]))  # 20 of 40
    assert fails_with("proof_certificate", below).message.startswith("certificate_quorum:")
    intruder = KeyPair.dev("intruder")

    def add_intruder(cert: CommitCertificate) -> CommitCertificate:
        extra = sign_certificate(GENESIS.chain_id, cert.height, cert.round, cert.block_hash, [intruder])
        return dataclasses.replace(cert, signatures=tuple(sorted(cert.signatures + extra.signatures)))

    assert fails_with("proof_certificate", with_cert(good, add_intruder)).message.startswith(
        "certificate_signer:"
    )
    twice = with_cert(good, lambda c: dataclasses.replace(c, signatures=(c.signatures[0],) * 3))
    assert fails_with("proof_certificate", twice).message.startswith("certificate_order:")
    other_round = with_cert(good, lambda c: dataclasses.replace(c, round=c.round + 1))
    assert fails_with("proof_certificate", other_round).message.startswith("certificate_signature:")
    other_height = with_cert(good, lambda c: dataclasses.replace(c, height=c.height + 1))
    assert fails_with("proof_certificate", other_height).message.startswith("certificate_height:")


def test_a_certificate_by_non_validators_fails_even_with_their_set() -> None:
    # Four strangers sign and ship their own set: it does not hash to the genesis set.
    strangers = [KeyPair.dev(f"stranger-{i}") for i in range(4)]
    their_set = ValidatorSet.build([Validator(k.public, 10) for k in strangers])
    fails_with("proof_validators", synthetic_proof(dev_state(), signers=strangers, vset=their_set))
    # The header names the genesis set but the strangers sign.
    fails_with("proof_certificate", synthetic_proof(dev_state(), signers=strangers))


def test_another_genesis_fails(good: dict[str, Any]) -> None:
    other_chain = devnet.dev_genesis_doc()
    other_chain["chain_id"] = "clearchain-other"
    fails_with("proof_chain", good, parse_genesis(other_chain))
    other_validators = devnet.dev_genesis_doc()
    for i, v in enumerate(other_validators["validators"]):
        v["pub_key"] = KeyPair.dev(f"elsewhere-{i}").key_id
    fails_with("proof_validators", good, parse_genesis(other_validators))
    more_power = devnet.dev_genesis_doc()
    more_power["validators"][0]["power"] = 11
    fails_with("proof_validators", good, parse_genesis(more_power))
    # The file's own set must hash to the header's validators_hash.
    five = ValidatorSet.build([Validator(k.public, 10) for k in DEV_KEYS + [KeyPair.dev("extra")]])
    fails_with("proof_validators", {**good, "validators": encode(five.to_wire()).hex()})


def test_readable_copies_must_match_the_evidence(good: dict[str, Any]) -> None:
    changes = [
        ("balance", "available", 10**6),
        ("balance", "locked", 0),
        ("balance", "available_display", "1,000,000.00"),
        ("balance", "decimals", 0),
        ("account_record", "kind", "house"),
        ("instrument", "decimals", 8),
        ("header_fields", "height", 1),
        ("header_fields", "state_root", "00" * 32),
    ]
    for section, name, value in changes:
        doc = copy.deepcopy(good)
        doc[section][name] = value
        assert section in fails_with("proof_mismatch", doc).message
    for name, value in (("height", 1), ("block_hash", "00" * 32), ("chain_id", "x"), ("time_ms", True)):
        fails_with("proof_mismatch", {**good, name: value})
    fails_with("proof_mismatch", {**good, "note": "trust me"})
    doc = copy.deepcopy(good)
    doc["balance"]["extra"] = 1
    fails_with("proof_mismatch", doc)
    fails_with("proof_mismatch", {k: v for k, v in good.items() if k != "header_fields"})


def test_values_that_are_not_records_fail() -> None:
    for bad in ([1], [1, 2, 3], [-1, 0], [AMOUNT_MAX + 1, 0], [1, "2"], [True, 0], "x", None):
        state = dev_state()
        state[balance_key("A-C001", "USD")] = encode(bad)
        fails_with("proof_value", _unchecked_proof(state))
    state = dev_state()
    state[account_key("A-C001")] = encode(["member-a", "firm", None, "active", 0])
    fails_with("proof_value", _unchecked_proof(state))
    state = dev_state()
    state[instrument_key("USD")] = encode(["cash", 19, None, "active"])
    fails_with("proof_value", _unchecked_proof(state))
    state = dev_state()
    del state[account_key("A-C001")]
    fails_with("proof_account", _unchecked_proof(state))
    state = dev_state()
    del state[instrument_key("USD")]
    fails_with("proof_instrument", _unchecked_proof(state))


def _unchecked_proof(state: dict[bytes, bytes]) -> dict[str, Any]:
    """A proof whose evidence is sound but whose values are odd (the builder would refuse to
    write their readable copies, so these are filled by a good state's)."""
    doc = synthetic_proof(dev_state())
    tree = tree_of(state)
    header, cert = signed_header(tree.root, 7, DEV_KEYS, GENESIS.validators)
    doc["header"], doc["certificate"] = header.hex(), cert.hex()
    for name, key in (
        ("balance", balance_key("A-C001", "USD")),
        ("account_record", account_key("A-C001")),
        ("instrument", instrument_key("USD")),
    ):
        e = entry_in(tree, state, key)
        doc[name].update(value=None if e.value is None else e.value.hex(), proof=e.proof.hex())
    return doc


# --- malformed input --------------------------------------------------------------------------
json_st = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=200)
@given(json_st)
def test_random_documents_are_malformed(doc: Any) -> None:
    fails_with("proof_malformed", doc)


@settings(max_examples=200)
@given(data=st.data())
def test_any_replaced_field_fails_cleanly(good: dict[str, Any], data: st.DataObject) -> None:
    doc = copy.deepcopy(good)
    name = data.draw(st.sampled_from(sorted(doc)))
    holder: dict[str, Any] = doc
    if isinstance(doc[name], dict):
        holder, name = doc[name], data.draw(st.sampled_from(sorted(doc[name])))
    holder[name] = data.draw(json_st | st.integers(-(2**80), 2**80) | st.just("zz"))
    try:
        verify_balance_proof(doc, GENESIS)
    except ProofError as exc:
        assert exc.code.startswith("proof_")
    else:  # only when the drawn value happens to be the one it replaced
        assert json.dumps(doc, sort_keys=True) == json.dumps(good, sort_keys=True)


@settings(max_examples=200)
@given(st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_random_files_never_raise_anything_else(data: bytes) -> None:
    try:
        verify_balance_proof(parse_proof_json(data), GENESIS)
    except ProofError as exc:
        assert exc.code == "proof_malformed"
    else:
        raise AssertionError("random bytes verified")


def test_specific_malformed_files() -> None:
    for text in (b"", b"{", b'{"format": 1.5}', b"NaN", b"[" * 100_000, b"1" * 5000, b"\xff\xfe"):
        with pytest.raises(ProofError) as err:
            verify_balance_proof(parse_proof_json(text), GENESIS)
        assert err.value.code == "proof_malformed"
    with pytest.raises(ProofError) as err:
        parse_proof_json(b" " * (16 * 1024 * 1024 + 1))
    assert err.value.code == "proof_malformed"


def test_malformed_fields_are_named(good: dict[str, Any]) -> None:
    cases = [
        ({**good, "format": "clearchain-balance-proof/2"}, "format"),
        ({k: v for k, v in good.items() if k != "certificate"}, "certificate is missing"),
        ({**good, "header": "ABCD"}, "header must be lower-case hex"),
        ({**good, "header": "abc"}, "header must be lower-case hex"),
        ({**good, "header": "c0"}, "header"),
        ({**good, "certificate": encode([1, 2, 3]).hex()}, "certificate"),
        ({**good, "validators": encode([[b"x", 1]]).hex()}, "validators"),
        ({**good, "validators": "00"}, "validators"),
        ({**good, "account": "no/slash"}, "account must be"),
        ({**good, "balance": []}, "balance must be a dict"),
        ({**good, "validator_path": {}}, "validator_path must be a list"),
        ({**good, "validator_path": [1]}, "validator_path[0] must be an object"),
        ({**good, "validator_path": [{}] * 2000}, "over 1024 steps"),
    ]
    for doc, words in cases:
        assert words in fails_with("proof_malformed", doc).message


def test_huge_numbers_and_times_do_not_break() -> None:
    assert iso_time(0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(951_782_400_000) == "2000-02-29T00:00:00.000Z"
    assert iso_time(2**64 - 1) == "584556019-04-03T14:25:51.615Z"
    state = dev_state(balance=(AMOUNT_MAX, AMOUNT_MAX))
    result = verify_balance_proof(synthetic_proof(state), GENESIS)
    assert result.available == AMOUNT_MAX and "46,116,860,184,273,879.04" in result.statement()


@given(st.integers(0, 253_402_300_799_999))  # up to 9999-12-31T23:59:59.999Z
def test_iso_time_agrees_with_the_calendar(time_ms: int) -> None:
    import datetime

    when = datetime.datetime(1970, 1, 1, tzinfo=datetime.UTC) + datetime.timedelta(milliseconds=time_ms)
    assert iso_time(time_ms) == when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{time_ms % 1000:03d}Z"


# --- validator-set changes --------------------------------------------------------------------
def _set_of(keys: list[KeyPair], power: int = 10) -> ValidatorSet:
    return ValidatorSet.build([Validator(k.public, power, f"v{i}") for i, k in enumerate(keys)])


def test_a_validator_path_is_walked_from_genesis() -> None:
    new_keys = [KeyPair.dev(f"next-{i}") for i in range(3)]
    newer_keys = [KeyPair.dev(f"newer-{i}") for i in range(4)]
    new_set, newer_set = _set_of(new_keys), _set_of(newer_keys, 5)
    h1, c1 = signed_header(b"\x33" * 32, 3, DEV_KEYS, GENESIS.validators, next_set=new_set)
    h2, c2 = signed_header(b"\x44" * 32, 5, new_keys, new_set, next_set=newer_set)
    path = (PathStep(h1, c1, encode(new_set.to_wire())), PathStep(h2, c2, encode(newer_set.to_wire())))
    doc = synthetic_proof(dev_state(), signers=newer_keys[:3], vset=newer_set, path=path, height=9)
    result = verify_balance_proof(round_trip(doc), GENESIS)
    assert result.validator_changes == 2 and (result.signed_power, result.total_power) == (15, 20)
    assert "through 2 change(s)" in result.statement()
    # Signers the genesis does not name are shown by their public keys.
    assert result.signers == tuple(k.hex()[:16] for k in sorted(k.public for k in newer_keys[:3]))
    assert [s["height"] for s in doc["validator_path"]] == [3, 5]

    def path_fails(steps: tuple[PathStep, ...], words: str, code: str = "proof_validator_path") -> None:
        bad = synthetic_proof(dev_state(), signers=newer_keys, vset=newer_set, path=steps, height=9)
        assert words in fails_with(code, bad).message

    # Without the path, or with only part of it, the set that signed is not trusted.
    path_fails((), "trusted from genesis", "proof_validators")
    path_fails(path[:1], "after the path", "proof_validators")
    path_fails(path[::-1], "validator_path[0]: height 5 is signed by set")
    # A change certified by too few of the trusted set, or by the new set itself.
    weak = sign_certificate(GENESIS.chain_id, 3, 0, Header.from_wire(_dec(h1)).hash(), DEV_KEYS[:2])
    path_fails((PathStep(h1, encode(weak.to_wire()), path[0].validators), path[1]), "certificate_quorum")
    h1_self, c1_self = signed_header(b"\x33" * 32, 3, new_keys, new_set, next_set=new_set)
    path_fails((PathStep(h1_self, c1_self, path[0].validators), path[1]), "is signed by set")
    # The new set must be the one the header commits to.
    path_fails((PathStep(h1, c1, encode(newer_set.to_wire())), path[1]), "next_validators_hash")
    # A step that changes nothing, a step of another chain, a step at or past the proven height.
    same, same_c = signed_header(b"\x55" * 32, 2, DEV_KEYS, GENESIS.validators)
    path_fails((PathStep(same, same_c, encode(GENESIS.validators.to_wire())), *path), "changes no validator")
    other, other_c = signed_header(b"\x33" * 32, 3, DEV_KEYS, GENESIS.validators, new_set, chain_id="other")
    path_fails((PathStep(other, other_c, path[0].validators), path[1]), "header of chain 'other'")
    late, late_c = signed_header(b"\x44" * 32, 9, new_keys, new_set, next_set=newer_set)
    path_fails(
        (path[0], PathStep(late, late_c, path[1].validators)), "is not between 3 and the proven height 9"
    )


def _dec(data: bytes) -> Any:
    from chain.encoding import decode

    return decode(data)


# --- the commands -----------------------------------------------------------------------------
class Cli:
    """``clearchain`` through click's CliRunner; ``client`` commands get --node and --keys-dir."""

    def __init__(self, directory: Path, url: str) -> None:
        self.dir = directory
        self.url = url
        self.runner = CliRunner()

    def run(self, *args: str, client: bool = True) -> Result:
        extra = ["--node", self.url, "--keys-dir", str(self.dir / "keys")] if client else []
        return self.runner.invoke(main, [*args, *extra])

    def ok(self, *args: str, client: bool = True) -> Result:
        result = self.run(*args, client=client)
        assert result.exit_code == 0, f"{args}: {result.output}"
        return result

    def fails(self, code: str, *args: str, client: bool = True) -> Result:
        result = self.run(*args, client=client)
        assert result.exit_code == exit_status(code), f"{args}: {result.output}"
        assert result.stderr.startswith(f"error: {code}:"), result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        return result


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    directory = tmp_path_factory.mktemp("proofs") / "net"
    init_network(directory, validators=1, base_port=0, consensus=ConsensusSection(commit_wait_ms=10))
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield Cli(directory, node.url)
    finally:
        node.stop()


@pytest.mark.io
def test_prove_then_verify_offline(cli: Cli, tmp_path: Path) -> None:
    cli.ok(
        "deposit", "--account", "A-C001", "--asset", "USD", "--amount", "1234.50", "--reference", "proof-1"
    )
    shown = json.loads(cli.ok("account", "show", "A-C001", "--json").stdout)
    usd = next(b for b in shown["balances"] if b["asset"] == "USD")
    out = tmp_path / "a-c001-usd.json"
    r = cli.ok("account", "prove", "A-C001", "--asset", "USD", "--out", str(out))
    assert r.stdout.startswith(f"wrote {out}: account A-C001") and "verify-proof" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["format"] == FORMAT and doc["balance"]["available"] == usd["available"]
    assert doc["validator_path"] == [] and doc["balance"]["key_text"] == "accounts/bal/A-C001/USD"
    genesis = str(cli.dir / "genesis.json")
    r = cli.ok("verify-proof", str(out), "--genesis", genesis, client=False)
    line = r.stdout.strip()
    assert line.startswith(
        "verified: account A-C001 (client account of member-a for client client-001, active)"
    )
    assert f"held {usd['display']} USD available and 0.00 locked at height {doc['height']}" in line
    assert f"of chain {doc['chain_id']}" in line and "holding 10 of 10 power (validator-0)" in line
    result = json.loads(cli.ok("verify-proof", str(out), "--genesis", genesis, "--json", client=False).stdout)
    assert result["ok"] and result["available"] == usd["available"] and result["statement"] in line
    # Printed to stdout without --out: the same kind of document, for an absent balance.
    absent = json.loads(cli.ok("account", "prove", "A-C001", "--asset", "BTC").stdout)
    assert absent["balance"]["value"] is None
    (tmp_path / "btc.json").write_text(json.dumps(absent))
    r = cli.ok("verify-proof", str(tmp_path / "btc.json"), "--genesis", genesis, client=False)
    assert "held 0.00000000 BTC available" in r.stdout and "proven by absence" in r.stdout

    # Tampered, foreign genesis, unreadable, not JSON: one line, a stable code, exit 1.
    doc["balance"]["available"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    cli.fails(
        "proof_mismatch", "verify-proof", str(tmp_path / "bad.json"), "--genesis", genesis, client=False
    )
    doc["balance"]["value"] = encode([doc["balance"]["available"], 0]).hex()
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    cli.fails("proof_state", "verify-proof", str(tmp_path / "bad.json"), "--genesis", genesis, client=False)
    shipped = str(Path(__file__).resolve().parent.parent / "genesis.json")  # same chain id, 4 validators
    cli.fails("proof_validators", "verify-proof", str(out), "--genesis", shipped, client=False)
    cli.fails(
        "proof_unreadable", "verify-proof", str(tmp_path / "none.json"), "--genesis", genesis, client=False
    )
    (tmp_path / "junk.json").write_text("not json")
    cli.fails(
        "proof_malformed", "verify-proof", str(tmp_path / "junk.json"), "--genesis", genesis, client=False
    )
    cli.fails("genesis_unreadable", "verify-proof", str(out), "--genesis", str(tmp_path / "x"), client=False)


@pytest.mark.io
def test_prove_refuses_what_cannot_be_proven(cli: Cli, tmp_path: Path) -> None:
    cli.fails("unknown_account", "account", "prove", "NOPE", "--asset", "USD")
    cli.fails("unknown_instrument", "account", "prove", "A-C001", "--asset", "NOPE")
    cli.fails("bad_id", "account", "prove", "a/b", "--asset", "USD")
    cli.fails(
        "write_failed",
        "account",
        "prove",
        "A-C001",
        "--asset",
        "USD",
        "--out",
        str(tmp_path / "no" / "f.json"),
    )


# --- gathering from the API (a node's answers, served from an in-memory chain) -----------------
class ChainApi:
    """Answers the calls ``gather_proof`` makes as docs/API.md says, from an in-memory chain.
    ``moves`` empty blocks are committed, one before each of the first ``moves`` state proofs,
    so the head moves between calls as it does on a live node."""

    def __init__(self, chain: Chain, moves: int = 0) -> None:
        self.chain = chain
        self.moves = moves
        self.calls: list[str] = []
        self.overrides: dict[str, Any] = {}
        self.values: dict[bytes, bytes] = {}  # state key -> a value served instead of the real one

    def get(self, path: str, **query: Any) -> Any:
        from node.rpc import certificate_json, header_json

        self.calls.append(path)
        if path in self.overrides:
            return self.overrides[path]
        store, ledger = self.chain.store, self.chain.ledger
        if path == "/state/proof":
            if self.moves:
                self.moves -= 1
                self.chain.run()
            key = bytes.fromhex(query["key"])
            value = self.values.get(key, store.get_state(key))
            return {
                "key": key.hex(), "value": None if value is None else value.hex(),
                "proof": encode(ledger.tree.prove(key).to_wire()).hex(), "height": ledger.head.height,
                "state_root": ledger.head.state_root.hex(), "header": header_json(ledger.head),
            }  # fmt: skip
        if path.startswith("/blocks/"):
            height = int(path.rsplit("/", 1)[1])
            block = store.block(height)
            assert block is not None
            return {
                "height": height, "hash": block.hash().hex(), "header": header_json(block.header),
                "certificate": certificate_json(store.certificate(height)),
                "raw": (store.block_bytes(height) or b"").hex(),
            }  # fmt: skip
        if path == "/validators":
            vs = ledger.validators.validators
            return {"validators": [{"pub_key": v.pubkey.hex(), "power": v.power, "name": v.name} for v in vs]}
        raise AssertionError(f"unexpected call {path}")


def _gather(api: ChainApi, account: str = "A-C001", asset: str = "USD") -> tuple[dict[str, Any], Any]:
    from cli.commands.proof import gather_proof

    return gather_proof(api, account, asset)  # type: ignore[arg-type]


def test_gather_reads_the_three_proofs_at_one_height(chain: Chain) -> None:
    chain.run(chain.tx("custodian", "custody", "deposit", ["A-C001", "USD", 5, "w1"]))
    api = ChainApi(chain, moves=2)  # the head moves during the first two attempts
    doc, result = _gather(api)
    assert api.calls.count("/state/proof") > 3 and doc["height"] == chain.ledger.head.height == 3
    assert f"/blocks/{doc['height']}" in api.calls
    again = verify_balance_proof(round_trip(doc), GENESIS)
    assert again == result and again.available == chain.balance("A-C001", "USD")[0]


def test_gather_gives_up_when_the_head_never_rests(chain: Chain) -> None:
    from cli.commands.plumbing import CliError

    with pytest.raises(CliError) as err:
        _gather(ChainApi(chain, moves=10**6))
    assert err.value.code == "head_moving"


def test_gather_refuses_a_set_other_than_genesis(chain: Chain) -> None:
    from cli.commands.plumbing import CliError

    chain.run()
    api = ChainApi(chain)
    genesis_block = api.get("/blocks/0")
    api.overrides["/blocks/0"] = {
        **genesis_block,
        "header": {**genesis_block["header"], "validators_hash": "ab" * 32},
    }
    with pytest.raises(CliError) as err:
        _gather(api)
    assert err.value.code == "validator_path_unsupported" and "signed by validator set" in err.value.message
    api = ChainApi(chain)
    api.overrides["/validators"] = {
        "validators": [{"pub_key": KeyPair.dev("x").key_id, "power": 1, "name": "x"}]
    }
    with pytest.raises(CliError) as err:
        _gather(api)
    assert err.value.code == "validator_path_unsupported" and "changed since genesis" in err.value.message


def test_gather_refuses_the_genesis_block(chain: Chain) -> None:
    from cli.commands.plumbing import CliError

    with pytest.raises(CliError) as err:
        _gather(ChainApi(chain))
    assert err.value.code == "no_certificate"


def test_gather_catches_a_node_serving_bad_evidence(chain: Chain) -> None:
    from cli.commands.plumbing import CliError

    chain.run()
    api = ChainApi(chain)
    api.values[balance_key("A-C001", "USD")] = encode([10**9, 0])
    with pytest.raises(CliError) as err:
        _gather(api)
    assert err.value.code == "proof_state" and err.value.message.startswith(
        "the node's evidence does not verify"
    )
    api = ChainApi(chain)
    api.values[account_key("A-C001")] = encode([10**9, 0])
    with pytest.raises(CliError) as err:
        _gather(api)
    assert err.value.code == "proof_value"
