"""The committed primitive vectors, checked through the chain's own code by a path other than the
builders': decode what the files hold and ask chain/ what it makes of it. With
tests/test_conformance_primitives.py (the same files from the spec alone) this ties the page, the
vectors and the code together: a rule changed in one of the three fails here or there.

The blocks are replayed onto the shipped genesis.json (read from the file, not from the dev
layout the builders use) by ``Ledger.apply_committed``, which re-executes each one: so its
``state_root``, which the spec-only verifier cannot recompute without the contracts, is checked
here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.block import Block
from chain.certificate import CommitCertificate
from chain.encoding import H, decode, encode
from chain.errors import BlockRuleViolation, EncodingError, InvalidTransaction
from chain.genesis import load_genesis
from chain.keys import KeyPair, verify_signature
from chain.ledger import Ledger
from chain.merkle import list_root
from chain.policy import KeyPolicy
from chain.proof import verify_proof
from chain.statetree import EMPTY_ROOT, MemoryNodeSource, StateTree, compute_root
from chain.store import Store
from chain.tx import SignedTx, compute_tx_root
from chain.validation import validate_certificate
from chain.validators import Validator, ValidatorSet
from cli.vectors.notation import from_json
from contracts import default_registry
from node.consensus import proposer_for
from tests import spec_rules as spec

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "docs" / "vectors"


def load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text())


def b(text: str) -> bytes:
    return bytes.fromhex(text)


def test_encoding_through_chain_encoding() -> None:
    doc = load("encoding.json")
    for case in doc["canonical"]:
        assert encode(from_json(case["value"])).hex() == case["encoded"]
        assert decode(b(case["encoded"])) == from_json(case["value"])
    for case in doc["non_canonical"]:
        with pytest.raises(EncodingError) as err:
            decode(b(case["encoded"]))
        assert err.value.code == case["error"], case["name"]
    for case in doc["unencodable"]:
        with pytest.raises(EncodingError) as err:
            encode(from_json(case["value"]))
        assert err.value.code == case["error"]
    for case in load("hashing.json")["cases"]:
        assert H(case["tag"].encode(), b(case["data"])).hex() == case["hash"]


def test_keys_through_chain_keys_and_policy() -> None:
    doc = load("keys.json")
    for key in doc["dev_keys"]:
        assert KeyPair.dev(key["name"]).key_id == key["public"]
    for case in doc["signatures"]:
        assert verify_signature(b(case["public"]), b(case["signature"]), b(case["message"])) is case["valid"]
    policies = {
        p["name"]: KeyPolicy.build(p["threshold"], [b(k) for k in p["keys"]]) for p in doc["policies"]
    }
    for case in doc["policy_checks"]:
        try:
            policies[case["policy"]].check([(b(p), b(s)) for p, s in case["signatures"]], b(doc["digest"]))
            result = "ok"
        except InvalidTransaction as exc:
            result = exc.code
        assert result == case["result"], case["name"]


def test_transactions_through_chain_tx() -> None:
    doc = load("transactions.json")
    signed = {}
    for case in doc["transactions"]:
        stx = SignedTx.decode(b(case["signed_encoded"]))
        assert stx.hash.hex() == case["tx_hash"] and stx.encode().hex() == case["signed_encoded"]
        signed[case["name"]] = stx
    for case in doc["tx_roots"]:
        assert compute_tx_root([signed[n] for n in case["transactions"]]).hex() == case["root"]
    for case in doc["receipts_roots"]:
        assert list_root([b(r["encoded"]) for r in case["receipts"]]).hex() == case["root"]
    for case in doc["malformed"]:
        with pytest.raises(InvalidTransaction) as err:
            SignedTx.decode(b(case["encoded"]))
        assert err.value.code == case["error"], case["name"]


def test_blocks_replay_onto_the_shipped_genesis_json() -> None:
    doc = load("blocks.json")
    genesis = load_genesis(ROOT / "genesis.json")
    store = Store.in_memory()
    ledger = Ledger(store, genesis, default_registry())
    assert ledger.genesis_hash.hex() == doc["genesis"]["hash"]
    for entry in doc["blocks"]:
        block = Block.decode(b(entry["block_encoded"]))
        certificate = CommitCertificate.from_wire(decode(b(entry["certificate_encoded"])))
        result = ledger.apply_committed(block, certificate)  # every rule of section 9, re-executed
        assert result.state_root.hex() == entry["header"]["state_root"]
        assert [r.encode().hex() for r in result.receipts] == entry["receipts"]
    head = ledger.head
    for proof in doc["state_proofs"]:
        key, value = b(proof["key"]), None if proof["value"] is None else b(proof["value"])
        assert store.get_state(key) == value
        assert ledger.tree.prove(key).to_wire() == decode(b(proof["proof_encoded"]))
        assert verify_proof(head.state_root, key, value, decode(b(proof["proof_encoded"])))


def test_certificates_through_chain_validation() -> None:
    doc = load("certificates.json")
    genesis = load_genesis(ROOT / "genesis.json")
    for vset in doc["validator_sets"]:
        validators = ValidatorSet.build([Validator(b(k), p) for k, p in vset["validators"]])
        assert validators.hash().hex() == vset["validators_hash"]
        for case in vset["proposers"]:
            assert proposer_for(validators, case["height"], case["round"]).hex() == case["proposer"]
    for case in doc["certificates"]:
        certificate = CommitCertificate.from_wire(decode(b(case["encoded"])))
        assert certificate.hash().hex() == case["commit_hash"]
        try:
            validate_certificate(
                certificate, case["chain_id"], genesis.validators, case["height"], b(case["block_hash"])
            )
            result = "ok"
        except BlockRuleViolation as exc:
            result = exc.code
        assert result == case["result"], case["name"]


def test_proofs_through_chain_statetree() -> None:
    doc = load("proofs.json")
    for vset in doc["sets"]:
        assert compute_root({b(k): b(v) for k, v in vset["items"]}).hex() == vset["root"]
        for case in vset["proofs"]:
            value = None if case["value"] is None else b(case["value"])
            assert (
                verify_proof(b(vset["root"]), b(case["key"]), value, decode(b(case["proof_encoded"])))
                is case["valid"]
            )
    for case in doc["tampered"]:
        value = None if case["value"] is None else b(case["value"])
        assert (
            verify_proof(b(case["root"]), b(case["key"]), value, decode(b(case["proof_encoded"])))
            is case["valid"]
        )


# The page's rules (tests/spec_rules.py) and the code agree beyond the vectors, too.
msgpack_ish = st.one_of(
    st.binary(max_size=40),
    st.lists(
        st.sampled_from(
            [
                b"\x91",
                b"\x92",
                b"\xcc\x05",
                b"\xd0\xff",
                b"\xc4\x00",
                b"\xa1a",
                b"\x80",
                b"\xc7\x00\x01",
                b"\xca\x00\x00\x00\x00",
                b"\x01",
                b"\xc0",
            ]
        ),
        max_size=12,
    ).map(b"".join),
)


@given(msgpack_ish)
def test_the_page_and_the_code_refuse_the_same_bytes_with_the_same_code(data: bytes) -> None:
    try:
        expected: object = ("ok", spec.decode(data))
    except spec.Refused as refused:
        expected = refused.code
    try:
        found: object = ("ok", decode(data))
    except EncodingError as exc:
        found = exc.code
    assert found == expected


@given(st.dictionaries(st.binary(max_size=6), st.binary(max_size=4), max_size=24), st.binary(max_size=6))
def test_the_page_and_the_code_build_the_same_tree_and_proofs(
    items: dict[bytes, bytes], probe: bytes
) -> None:
    root, records = spec.tree(items)
    source = MemoryNodeSource()
    tree = StateTree(source, EMPTY_ROOT)
    update = tree.compute_update(dict(items))
    tree.apply(update)
    assert update.root == root
    assert {p: r for p, r in update.node_writes.items() if r is not None} == records
    proof = tree.prove(probe).to_wire()
    assert spec.verify_proof(root, probe, items.get(probe), proof)
    assert not spec.verify_proof(root, probe, None if probe in items else b"x", proof)
