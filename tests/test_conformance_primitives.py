"""A spec-only verifier of docs/vectors/: every case of the primitive vector files recomputed from
docs/PROTOCOL.md's rules (tests/spec_rules.py: hashlib, msgpack and libsodium, no clearchain
code), as a third party implementing from docs/ would. The shipped genesis.json supplies what the
blocks and the admission cases were checked against (chain id, validators, participants'
policies, contract names)."""

from __future__ import annotations

import ast
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from tests import spec_rules as spec

ROOT = Path(__file__).resolve().parent.parent
VECTORS = ROOT / "docs" / "vectors"
GENESIS = json.loads((ROOT / "genesis.json").read_text())


def load(name: str) -> dict[str, Any]:
    doc = json.loads((VECTORS / name).read_text())
    assert re.search(r"PROTOCOL\.md section", doc["about"]), name
    return doc


def hx(text: str | None) -> bytes | None:
    return None if text is None else bytes.fromhex(text)


def b(text: str) -> bytes:
    return bytes.fromhex(text)


def genesis_validators() -> list[list[Any]]:
    return [[b(v["pub_key"]), v["power"]] for v in GENESIS["validators"]]


def genesis_policy(participant: str) -> tuple[int, list[bytes]]:
    (p,) = [p for p in GENESIS["participants"] if p["id"] == participant]
    return p["threshold"], sorted(b(k) for k in p["keys"])


# --- encoding.json, hashing.json ----------------------------------------------------------------
def test_canonical_encodings() -> None:
    doc = load("encoding.json")
    assert len(doc["canonical"]) >= 40
    for case in doc["canonical"]:
        value = spec.from_notation(case["value"])
        assert spec.pack(value).hex() == case["encoded"], case["name"]
        assert spec.decode(b(case["encoded"])) == value, case["name"]


def test_refused_encodings_give_the_codes_of_section_1() -> None:
    doc = load("encoding.json")
    codes = set()
    for case in doc["non_canonical"]:
        with pytest.raises(spec.Refused) as refused:
            spec.decode(b(case["encoded"]))
        assert refused.value.code == case["error"], case["name"]
        codes.add(case["error"])
    assert codes == {"encoding_malformed", "encoding_type", "encoding_not_canonical"}
    for case in doc["unencodable"]:
        with pytest.raises(spec.Refused) as refused:
            spec.check_types(spec.from_notation(case["value"]), 0)
        assert refused.value.code == case["error"], case["name"]


def test_hashes_for_every_tag_protocol_names() -> None:
    doc = load("hashing.json")
    text = (ROOT / "docs" / "PROTOCOL.md").read_text()
    section = text.split("## 2. Hashing", 1)[1].split("\n## 3.", 1)[0]
    listed = set(re.findall(r"`(\w+)`", section.split("Tags in use:", 1)[1].split("Example", 1)[0]))
    assert {t["tag"] for t in doc["tags"]} == listed
    for tag in doc["tags"]:
        assert tag["prefix"] == (bytes([len(tag["tag"])]) + tag["tag"].encode()).hex()
    assert {c["tag"] for c in doc["cases"]} == listed
    for case in doc["cases"]:
        assert spec.H(case["tag"], b(case["data"])).hex() == case["hash"]


# --- keys.json ----------------------------------------------------------------------------------
def test_dev_keys_signatures_and_policies() -> None:
    doc = load("keys.json")
    seeds = {}
    for key in doc["dev_keys"]:
        seed = hashlib.sha256(b(doc["seed_prefix"]) + key["name"].encode()).digest()
        assert seed.hex() == key["seed"]
        public, secret = crypto_sign_seed_keypair(seed)
        assert public.hex() == key["public"], key["name"]
        seeds[key["public"]] = secret
    genesis_keys = {k for v in GENESIS["validators"] for k in [v["pub_key"]]}
    genesis_keys |= {k for p in GENESIS["participants"] for k in p["keys"]}
    assert genesis_keys <= set(seeds)  # every key of the shipped genesis derives from a dev seed
    outcomes = set()
    for case in doc["signatures"]:
        public, message, signature = b(case["public"]), b(case["message"]), b(case["signature"])
        assert spec.verifies(public, signature, message) is case["valid"], case["name"]
        if case["valid"]:  # Ed25519 is deterministic: the signer reproduces the signature
            assert crypto_sign(message, seeds[case["public"]])[:64] == signature
        outcomes.add(case["valid"])
    assert outcomes == {True, False}
    for policy in doc["policies"]:
        keys = [b(k) for k in policy["keys"]]
        assert keys == sorted(keys) and spec.policy_error(policy["threshold"], keys) is None
        assert spec.pack([policy["threshold"], keys]).hex() == policy["encoded"]
        assert (policy["threshold"], keys) == genesis_policy(policy["name"])
    for case in doc["bad_policies"]:
        assert spec.policy_error(case["threshold"], [b(k) for k in case["keys"]]) == case["error"]


def test_genesis_policy_records() -> None:
    doc = load("keys.json")
    assert {r["participant"] for r in doc["genesis_policies"]} <= {p["id"] for p in GENESIS["participants"]}
    for record in doc["genesis_policies"]:
        threshold, keys = genesis_policy(record["participant"])
        assert b(record["state_key"]) == b"membership/policy/" + record["participant"].encode()
        assert spec.pack([threshold, keys, True]).hex() == record["state_value"]


def test_policy_checks() -> None:
    doc = load("keys.json")
    results = set()
    for case in doc["policy_checks"]:
        threshold, keys = genesis_policy(case["policy"])
        sigs = [[b(p), b(s)] for p, s in case["signatures"]]
        assert spec.check_policy(threshold, keys, sigs, b(doc["digest"])) == case["result"], case["name"]
        results.add(case["result"])
    assert results == {
        "ok",
        "insufficient_signatures",
        "duplicate_signer",
        "signer_not_in_policy",
        "bad_signature",
    }


# --- transactions.json --------------------------------------------------------------------------
def test_transactions_hashes_and_signed_encodings() -> None:
    doc = load("transactions.json")
    publics = {k["name"]: b(k["public"]) for k in load("keys.json")["dev_keys"]}
    order = ("chain_id", "sender", "nonce", "contract", "method", "args", "valid_until_height")
    for case in doc["transactions"]:
        body = [spec.from_notation(case["body"][f]) for f in order]
        encoded = spec.pack(body)
        assert encoded.hex() == case["body_encoded"]
        digest = spec.H("tx", encoded)
        assert digest.hex() == case["tx_hash"]
        sigs = [[b(p), b(s)] for p, s in case["signatures"]]
        assert [p for p, _ in sigs] == [publics[n] for n in case["signed_by"]]
        threshold, keys = genesis_policy(body[1])
        assert spec.check_policy(threshold, keys, sigs, digest) == "ok"
        assert spec.pack([body, sigs]).hex() == case["signed_encoded"]
        assert spec.signed_tx(b(case["signed_encoded"])) == [body, sigs]
    hashes = [c["tx_hash"] for c in doc["transactions"]]
    assert len(set(hashes)) < len(hashes)  # one body under two signature sets


def test_tx_roots_commit_to_signatures() -> None:
    doc = load("transactions.json")
    signed = {c["name"]: b(c["signed_encoded"]) for c in doc["transactions"]}
    roots = []
    for case in doc["tx_roots"]:
        root = spec.list_root([signed[n] for n in case["transactions"]])
        assert root.hex() == case["root"], case["name"]
        roots.append(root)
    assert len(set(roots)) == len(roots)


def test_receipts_roots() -> None:
    for case in load("transactions.json")["receipts_roots"]:
        encoded = []
        for r in case["receipts"]:
            wire = [r["kind"], b(r["ref"]), r["code"], r["message"], spec.from_notation(r["events"])]
            assert spec.pack(wire).hex() == r["encoded"]
            assert r["kind"] in (0, 1) and len(b(r["ref"])) == (32 if r["kind"] == 0 else 8)
            encoded.append(b(r["encoded"]))
        assert spec.list_root(encoded).hex() == case["root"], case["name"]


def test_malformed_transactions() -> None:
    for case in load("transactions.json")["malformed"]:
        with pytest.raises(spec.Refused) as refused:
            spec.signed_tx(b(case["encoded"]))
        assert refused.value.code == case["error"], case["name"]


# The codes of section 15 that depend on the contracts' method schemas (docs/CONTRACTS.md): this
# verifier checks only that every earlier rule passes for them.
RULEBOOK_CODES = {"unknown_method", "bad_arguments"}


def admission(wire: list[Any], height: int) -> str:
    """Section 15's checks against the state of genesis.json (no nonce used yet)."""
    (chain_id, sender, nonce, contract, _, _, valid_until), sigs = wire
    if chain_id != GENESIS["chain_id"]:
        return "wrong_chain"
    if valid_until and height > valid_until:
        return "expired"
    if contract not in set(GENESIS["contracts"]) - {"contract-runtime"}:
        return "unknown_contract"
    if sender not in {p["id"] for p in GENESIS["participants"]}:
        return "unknown_sender"
    threshold, keys = genesis_policy(sender)
    checked = spec.check_policy(threshold, keys, sigs, spec.H("tx", spec.pack(wire[0])))
    if checked != "ok":
        return checked
    return "ok" if nonce == 1 else "nonce_gap"


def test_admission_against_the_shipped_genesis() -> None:
    results = set()
    for case in load("transactions.json")["admission"]:
        wire = spec.signed_tx(b(case["signed_encoded"]))
        assert spec.H("tx", spec.pack(wire[0])).hex() == case["tx_hash"]
        if case["result"] in RULEBOOK_CODES:
            # The earlier checks pass: the method and its arguments are what fail.
            (chain_id, _, _, contract, *_), _ = wire
            assert chain_id == GENESIS["chain_id"] and contract in GENESIS["contracts"], case["name"]
        else:
            assert admission(wire, case["height"]) == case["result"], case["name"]
        results.add(case["result"])
    assert {"ok", "wrong_chain", "expired", "unknown_sender", "nonce_gap", "bad_signature"} <= results


# --- blocks.json --------------------------------------------------------------------------------
HEADER = (
    "chain_id", "height", "time_ms", "prev_block_hash", "tx_root", "receipts_root", "state_root",
    "validators_hash", "next_validators_hash", "proposer", "last_commit_hash",
)  # fmt: skip


def header_wire(fields: dict[str, Any]) -> list[Any]:
    return [fields[f] if type(fields[f]) is not str or f == "chain_id" else b(fields[f]) for f in HEADER]


def test_genesis_block_of_the_shipped_genesis() -> None:
    doc = load("blocks.json")["genesis"]
    header = header_wire(doc["header"])
    assert spec.pack(header).hex() == doc["header_encoded"]
    assert spec.H("block", spec.pack(header)).hex() == doc["hash"]
    fields = dict(zip(HEADER, header, strict=True))
    assert fields["chain_id"] == GENESIS["chain_id"] and fields["height"] == 0
    assert fields["time_ms"] == GENESIS["genesis_time_ms"]
    for name in ("prev_block_hash", "tx_root", "receipts_root", "proposer", "last_commit_hash"):
        assert fields[name] == spec.ZERO, name
    vhash = spec.validators_hash(genesis_validators())
    assert fields["validators_hash"] == fields["next_validators_hash"] == vhash


def test_blocks_hash_link_roots_and_certificates() -> None:
    doc = load("blocks.json")
    validators = genesis_validators()
    parent = header_wire(doc["genesis"]["header"])
    parent_hash, parent_cert = b(doc["genesis"]["hash"]), None
    nonces: dict[str, int] = {}
    for entry in doc["blocks"]:
        block = spec.decode(b(entry["block_encoded"]))
        header, txs, last_commit = block
        assert header == header_wire(entry["header"]) and spec.pack(header).hex() == entry["header_encoded"]
        block_hash = spec.H("block", spec.pack(header))
        assert block_hash.hex() == entry["hash"]
        f = dict(zip(HEADER, header, strict=True))
        # Section 9's header rules against the parent
        assert f["chain_id"] == GENESIS["chain_id"] and f["height"] == parent[1] + 1
        assert f["time_ms"] > parent[2] and f["prev_block_hash"] == parent_hash
        assert f["validators_hash"] == parent[8] == spec.validators_hash(validators)
        assert f["next_validators_hash"] == f["validators_hash"]  # no governance in these blocks
        assert f["proposer"] in [k for k, _ in validators]
        # last_commit
        if f["height"] == 1:
            assert last_commit is None and f["last_commit_hash"] == spec.ZERO
        else:
            assert last_commit == parent_cert
            assert f["last_commit_hash"] == spec.H("commit", spec.pack(last_commit))
            assert (
                spec.check_certificate(last_commit, f["chain_id"], validators, f["height"] - 1, parent_hash)
                == "ok"
            )
        # Transactions, tx_root, receipts_root
        for wire, tx_hash in zip(txs, entry["tx_hashes"], strict=True):
            assert spec.signed_tx(spec.pack(wire)) == wire
            assert admission(wire, f["height"]) in ("ok", "nonce_gap")  # nonces: checked below
            sender, nonce = wire[0][1], wire[0][2]
            assert nonce == nonces.get(sender, 0) + 1
            nonces[sender] = nonce
            assert spec.H("tx", spec.pack(wire[0])).hex() == tx_hash
        assert f["tx_root"] == spec.list_root([spec.pack(t) for t in txs])
        receipts = [b(r) for r in entry["receipts"]]
        assert f["receipts_root"] == spec.list_root(receipts)
        decoded = [spec.decode(r) for r in receipts]
        assert [r[1].hex() for r in decoded if r[0] == 0] == entry["tx_hashes"]
        assert [r[2] for r in decoded] == entry["receipt_codes"]
        # The block's own certificate
        cert = spec.decode(b(entry["certificate_encoded"]))
        assert spec.check_certificate(cert, f["chain_id"], validators, f["height"], block_hash) == "ok"
        parent, parent_hash, parent_cert = header, block_hash, cert
    assert (
        "ok" in doc["blocks"][0]["receipt_codes"]
        and len({c for e in doc["blocks"] for c in e["receipt_codes"]}) > 1
    )
    # State proofs of the senders' nonces against the last block's state_root
    for proof in doc["state_proofs"]:
        assert b(proof["state_root"]) == parent[6] and proof["height"] == parent[1]
        key = b(proof["key"])
        sender = key.removeprefix(b"membership/nonce/").decode()
        expected = None if sender not in nonces else spec.pack(nonces[sender])
        assert hx(proof["value"]) == expected
        assert spec.verify_proof(parent[6], key, expected, spec.decode(b(proof["proof_encoded"])))
    assert any(p["value"] is None for p in doc["state_proofs"])


# --- certificates.json --------------------------------------------------------------------------
def test_validator_sets_and_proposers() -> None:
    doc = load("certificates.json")
    assert [[b(k), p] for k, p in doc["validator_sets"][0]["validators"]] == sorted(genesis_validators())
    for vset in doc["validator_sets"]:
        validators = [[b(k), p] for k, p in vset["validators"]]
        assert validators == sorted(validators) and sum(p for _, p in validators) == vset["total_power"]
        assert spec.pack(validators).hex() == vset["encoded"]
        assert spec.validators_hash(validators).hex() == vset["validators_hash"]
        for case in vset["proposers"]:
            assert spec.proposer(validators, case["height"], case["round"]).hex() == case["proposer"]


def test_vote_and_proposal_sign_bytes() -> None:
    doc = load("certificates.json")
    for v in doc["votes"]:
        fields = [v["chain_id"], v["vote_type"], v["height"], v["round"], b(v["block_hash"])]
        assert spec.pack(fields).hex() == v["encoded"]
        digest = spec.vote_sign_bytes(*fields)
        assert digest.hex() == v["sign_bytes"]
        assert spec.verifies(b(v["validator"]), b(v["signature"]), digest)
        wire = [
            v["vote_type"],
            v["height"],
            v["round"],
            b(v["block_hash"]),
            b(v["validator"]),
            b(v["signature"]),
        ]
        assert spec.pack(wire).hex() == v["vote_wire_encoded"]
    for p in doc["proposals"]:
        fields = [p["chain_id"], p["height"], p["round"], b(p["block_hash"]), p["pol_round"]]
        assert spec.pack(fields).hex() == p["encoded"]
        assert spec.H("proposal", spec.pack(fields)).hex() == p["sign_bytes"]


def test_commit_certificates() -> None:
    doc = load("certificates.json")
    block1 = load("blocks.json")["blocks"][0]
    validators = genesis_validators()
    results = set()
    for case in doc["certificates"]:
        assert case["block_hash"] == block1["hash"] and case["height"] == 1
        data = b(case["encoded"])
        cert = spec.decode(data)
        assert spec.H("commit", data).hex() == case["commit_hash"]
        got = spec.check_certificate(
            cert, case["chain_id"], validators, case["height"], b(case["block_hash"])
        )
        assert got == case["result"], case["name"]
        results.add(got)
    assert results == {
        "ok", "certificate_quorum", "certificate_block", "certificate_height", "certificate_signature",
        "certificate_order", "certificate_signer",
    }  # fmt: skip


# --- proofs.json --------------------------------------------------------------------------------
def items_of(pairs: list[list[str]]) -> dict[bytes, bytes]:
    return {b(k): b(v) for k, v in pairs}


def test_state_roots_records_and_proofs() -> None:
    doc = load("proofs.json")
    protocol = (ROOT / "docs" / "PROTOCOL.md").read_text()
    for vset in doc["sets"]:
        items = items_of(vset["items"])
        root, records = spec.tree(items)
        assert root.hex() == vset["root"], vset["name"]
        assert root == spec.ZERO or root.hex() in protocol or len(items) > 3  # section 10.5's roots
        assert [[p.hex(), r.hex()] for p, r in sorted(records.items())] == vset["records"], vset["name"]
        for case in vset["proofs"]:
            key, value = b(case["key"]), hx(case["value"])
            assert value == items.get(key)
            proof = spec.decode(b(case["proof_encoded"]))
            assert spec.verify_proof(root, key, value, proof) is case["valid"] is True
            # The same proof never also proves another value, or the opposite claim
            assert not spec.verify_proof(root, key, b"other" if value is None else None, proof)


def test_the_vectors_of_protocol_section_10_5_are_in_the_file() -> None:
    """Every full hex string section 10.5 prints (roots, a record, proofs) is one of the file's."""
    section = (ROOT / "docs" / "PROTOCOL.md").read_text().split("### 10.5", 1)[1].split("\n## 11.", 1)[0]
    printed = re.findall(r"`([0-9a-f]{64,})`", section)
    assert len(printed) >= 7
    text = (VECTORS / "proofs.json").read_text()
    assert all(f'"{h}"' in text for h in printed)


def test_updates_are_history_independent() -> None:
    doc = load("proofs.json")
    sets = {s["name"]: items_of(s["items"]) for s in doc["sets"]}
    for case in doc["updates"]:
        before = sets[case["before"]]
        after = dict(before)
        for k, v in case["changes"]:
            if v is None:
                after.pop(b(k), None)
            else:
                after[b(k)] = b(v)
        assert spec.tree(after)[0].hex() == case["root"], case["name"]
        deleted = set(spec.tree(before)[1]) - set(spec.tree(after)[1])
        assert sorted(p.hex() for p in deleted) == case["deleted_records"], case["name"]


def test_tampered_proofs_are_refused() -> None:
    doc = load("proofs.json")
    outcomes = []
    for case in doc["tampered"]:
        proof = spec.decode(b(case["proof_encoded"]))
        got = spec.verify_proof(b(case["root"]), b(case["key"]), hx(case["value"]), proof)
        assert got is case["valid"], case["name"]
        outcomes.append(got)
    assert outcomes.count(False) >= 20 and outcomes.count(True) == 2


def test_this_verifier_imports_no_clearchain_code() -> None:
    """What makes it a spec-only verifier: neither this file nor its rules import the project."""
    for path in (Path(__file__), Path(spec.__file__)):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] not in {"chain", "contracts", "node", "cli"}, (path.name, name)
