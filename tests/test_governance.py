"""Governance (contracts/governance.py): proposals and approvals by admins, parameter changes,
instrument halts, validator-set changes effective at h + 2, and code upgrades that stop a node
whose code the chain no longer pins.

Everything runs through real blocks with real commit certificates: the producer signs each block
with the keys of the set in force, so a validator change is checked the way a network sees it
(headers, certificates, the auditor). The last tests run the demo scenario and the CLI against a
real node.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.audit import AuditFailure, Auditor
from chain.errors import ContractCodeMismatch
from chain.genesis import Genesis, parse_genesis
from chain.history import HistoryRecord
from chain.keys import KeyPair
from chain.ledger import CODE_PREFIX, Ledger, read_validators
from chain.policy import nonce_key
from chain.receipt import Receipt
from chain.store import Store
from chain.tx import SignedTx
from chain.validators import ValidatorSet
from cli.client import Client
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.localnet.network import init_network
from cli.scenarios import ScenarioRun
from cli.scenarios import governance as scenario
from contracts import default_registry
from contracts.api import ContractError, Registry
from contracts.governance import ValidatorMap, compute_change, compute_moved_power, is_safe_change
from tests.conftest import Chain
from tests.netutil import NodeThread
from tests.test_cli import FAST, Net

VKEYS = [devnet.validator_key(i) for i in range(4)]
NEW_VKEY = KeyPair.dev("validator-new")
ADMIN2, ADMIN3 = KeyPair.dev("gov-admin-2"), KeyPair.dev("gov-admin-3")


# --- helpers ----------------------------------------------------------------------------------
class GovChain(Chain):
    """A Chain whose producer signs each block with the keys of the validator set in force."""

    extra_keys: list[KeyPair] = [NEW_VKEY]

    def run(self, *txs: SignedTx):  # type: ignore[no-untyped-def]
        vset = self.ledger.validators
        self.producer.keys = sorted(
            (k for k in VKEYS + self.extra_keys if vset.power_of(k.public)), key=lambda k: k.public
        )
        return super().run(*txs)

    def param(self, contract: str, name: str) -> int:
        return int(self.state().get(f"{contract}/param/{name}".encode())[0])

    def view(self, name: str, **query: str) -> Any:
        from chain.executor import CallEnv

        head = self.ledger.head
        env = CallEnv(self.genesis.chain_id, head.height, head.time_ms, b"")
        return self.ledger.runtime.read_view(self.state(), env, "governance", name, query)  # type: ignore[attr-defined]


def genesis_with(validators: int = 4, **params: int) -> Genesis:
    doc = devnet.dev_genesis_doc(validators)
    doc["params"] = {**doc.get("params", {}), **{f"governance.{k}": v for k, v in params.items()}}
    return parse_genesis(doc)


@pytest.fixture
def chain(genesis: Genesis) -> GovChain:
    return GovChain(Store.in_memory(), genesis)


def propose(chain: Chain, *action: Any, sender: str = "admin", **kw: Any) -> SignedTx:
    return chain.tx(sender, "governance", "propose", [list(action)], **kw)


def approve(chain: Chain, pid: int, sender: str, **kw: Any) -> SignedTx:
    return chain.tx(sender, "governance", "approve", [pid], **kw)


def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    block, result = chain.run(*txs)
    assert [(r.error.code, r.error.message) for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts[: len(txs)]] == [("ok", "")] * len(txs)
    return result.receipts


def state_snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = state_snapshot(chain)
    block, result = chain.run(stx)
    assert block.txs == (stx,), result.rejected
    receipt = result.receipts[0]
    assert receipt.code == code, receipt.message
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert state_snapshot(chain) == before
    return receipt


def names(receipt: Receipt) -> list[str]:
    return [name for _, name, _ in receipt.events]


def event(receipt: Receipt, name: str) -> dict[str, Any]:
    found = [dict(fields) for _, n, fields in receipt.events if n == name]
    assert len(found) == 1, receipt.events
    return found[0]


def add_admins(chain: Chain, *who: tuple[str, KeyPair]) -> None:
    ok(
        chain,
        *[chain.tx("admin", "membership", "register", [pid, ["admin"], 1, [key.public]]) for pid, key in who],
    )


def history(store: Store) -> list[HistoryRecord]:
    head = store.head()
    assert head is not None
    return [
        HistoryRecord(h, store.block_bytes(h), store.certificate_bytes(h), store.receipts_bytes(h))
        for h in range(1, head.height + 1)
    ]


def audit(genesis: Genesis, store: Store, runtime: Any = None) -> Auditor:
    auditor = Auditor(genesis, runtime or default_registry())
    for record in history(store):
        auditor.audit(record)
    return auditor


def as_map(vset: ValidatorSet) -> ValidatorMap:
    return {v.pubkey: (v.power, v.name) for v in vset.validators}


# --- proposals and approvals ------------------------------------------------------------------
def test_one_admin_changes_a_parameter(chain: GovChain) -> None:
    assert chain.param("oracle", "staleness_blocks") == 100
    (receipt,) = ok(chain, propose(chain, "set_param", "oracle", "staleness_blocks", 50))
    assert names(receipt) == ["proposal_created", "param_changed", "proposal_executed"]
    assert event(receipt, "param_changed") == {
        "proposal": 1,
        "contract": "oracle",
        "param": "staleness_blocks",
        "old": 100,
        "new": 50,
    }
    assert chain.param("oracle", "staleness_blocks") == 50
    shown = chain.view("proposal", id="1")
    assert (
        shown["status"] == "executed"
        and shown["approvers"] == ["admin"]
        and shown["args"] == ["oracle", "staleness_blocks", 50]
    )
    (entry,) = chain.view("history")["history"]
    assert entry["kind"] == "set_param" and entry["text"] == "oracle.staleness_blocks 100 -> 50"


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (["set_param", "oracle", "staleness_blocks", 0], "param_out_of_bounds"),
        (["set_param", "oracle", "no_such_param", 1], "unknown_param"),
        (["set_param", "nobody", "staleness_blocks", 1], "unknown_param"),
        (["resume_instrument", "ACME"], "instrument_active"),
        (["halt_instrument", "NOPE", "x"], "unknown_instrument"),
        (["cancel_upgrade", "escrow"], "no_pending_upgrade"),
        (["upgrade_code", "nothing", b"\x01" * 32, 100], "unknown_contract"),
    ],
)
def test_a_bad_action_is_refused_when_proposed(chain: GovChain, action: list[Any], code: str) -> None:
    fails(chain, propose(chain, *action), code)
    assert chain.view("proposals")["proposals"] == []


def test_malformed_actions_are_rejected(chain: GovChain) -> None:
    for action in (
        ["nope"],
        ["set_param", "oracle", "x"],
        ["remove_validator", b"short"],
        ["set_power", VKEYS[0].public, 0],
        [],
    ):
        _, result = chain.run(propose(chain, *action))
        assert [r.error.code for r in result.rejected] == ["bad_arguments"]
        chain.nonces["admin"] -= 1


def test_halt_then_resume_an_instrument(chain: GovChain) -> None:
    trade = ["G-1", "A-C001", "B-C001", "ACME", 1, 180_00, DAY]
    (receipt,) = ok(chain, propose(chain, "halt_instrument", "ACME", "news pending"))
    assert event(receipt, "instrument_halted") == {
        "id": "ACME",
        "reason": "governance proposal 1: news pending",
    }
    fails(chain, chain.tx("xchg-alpha", "settlement", "settle", trade), "instrument_halted")
    fails(chain, propose(chain, "halt_instrument", "ACME", "again"), "instrument_halted")
    (receipt,) = ok(chain, propose(chain, "resume_instrument", "ACME"))
    assert "instrument_resumed" in names(receipt)
    ok(chain, chain.tx("xchg-alpha", "settlement", "settle", trade))


@pytest.mark.parametrize("sender", ["member-a", "xchg-alpha", "custodian", "validator-0"])
def test_only_admins_govern(chain: GovChain, sender: str) -> None:
    fails(chain, propose(chain, "set_param", "oracle", "staleness_blocks", 50, sender=sender), "not_admin")
    fails(chain, approve(chain, 1, sender), "not_admin")
    fails(chain, chain.tx(sender, "governance", "withdraw", [1]), "not_admin")


def test_two_of_three_admins(genesis: Genesis) -> None:
    chain = GovChain(Store.in_memory(), genesis_with(approvals_required=2))
    add_admins(chain, ("admin-2", ADMIN2), ("admin-3", ADMIN3))
    (receipt,) = ok(chain, propose(chain, "set_param", "oracle", "staleness_blocks", 50))
    assert names(receipt) == ["proposal_created"] and chain.param("oracle", "staleness_blocks") == 100
    fails(chain, approve(chain, 1, "admin"), "already_approved")
    fails(chain, approve(chain, 9, "admin-2", keys=[ADMIN2]), "unknown_proposal")
    (receipt,) = ok(chain, approve(chain, 1, "admin-2", keys=[ADMIN2]))
    assert names(receipt) == ["proposal_approved", "param_changed", "proposal_executed"]
    assert event(receipt, "proposal_executed") == {"id": 1, "action": "set_param", "approvals": 2}
    assert chain.param("oracle", "staleness_blocks") == 50
    fails(chain, approve(chain, 1, "admin-3", keys=[ADMIN3]), "proposal_closed")
    # A proposal is withdrawn only by its proposer.
    ok(chain, propose(chain, "set_param", "oracle", "staleness_blocks", 60))
    fails(chain, chain.tx("admin-2", "governance", "withdraw", [2], keys=[ADMIN2]), "not_proposer")
    (receipt,) = ok(chain, chain.tx("admin", "governance", "withdraw", [2]))
    assert names(receipt) == ["proposal_withdrawn"]
    fails(chain, approve(chain, 2, "admin-2", keys=[ADMIN2]), "proposal_closed")


def test_an_approval_counts_only_while_its_admin_is_one(genesis: Genesis) -> None:
    chain = GovChain(Store.in_memory(), genesis_with(approvals_required=2))
    add_admins(chain, ("admin-2", ADMIN2), ("admin-3", ADMIN3))
    ok(chain, propose(chain, "set_param", "oracle", "staleness_blocks", 50, sender="admin-2", keys=[ADMIN2]))
    ok(chain, chain.tx("admin", "membership", "set_roles", ["admin-2", ["member"]]))
    (receipt,) = ok(chain, approve(chain, 1, "admin-3", keys=[ADMIN3]))
    assert names(receipt) == ["proposal_approved"]  # admin-2's approval no longer counts
    (receipt,) = ok(chain, approve(chain, 1, "admin"))
    assert event(receipt, "proposal_executed")["approvals"] == 2


def test_proposals_expire(genesis: Genesis) -> None:
    chain = GovChain(Store.in_memory(), genesis_with(approvals_required=2, proposal_ttl_blocks=3))
    add_admins(chain, ("admin-2", ADMIN2))
    block, _ = chain.run(propose(chain, "set_param", "oracle", "staleness_blocks", 50))
    expires = block.height + 3
    assert chain.view("proposal", id="1")["expires_height"] == expires
    while chain.ledger.head.height < expires:
        chain.run()
    # In the first block after expiry the approval is refused, and the task then closes it.
    block, result = chain.run(approve(chain, 1, "admin-2", keys=[ADMIN2]))
    assert result.receipts[0].code == "proposal_expired"
    assert [names(r) for r in result.receipts[1:]] == [["proposal_expired"]]
    assert chain.view("proposal", id="1")["status"] == "expired"
    fails(chain, approve(chain, 1, "admin-2", keys=[ADMIN2]), "proposal_closed")
    assert chain.param("oracle", "staleness_blocks") == 100
    assert [p["id"] for p in chain.view("proposals", status="expired")["proposals"]] == [1]
    assert chain.view("proposals", status="open")["proposals"] == []


def test_approvals_required_is_itself_governed(genesis: Genesis) -> None:
    chain = GovChain(Store.in_memory(), genesis)
    add_admins(chain, ("admin-2", ADMIN2))
    ok(chain, propose(chain, "set_param", "governance", "approvals_required", 2))
    (receipt,) = ok(chain, propose(chain, "set_param", "oracle", "staleness_blocks", 50))
    assert names(receipt) == ["proposal_created"]
    fails(chain, propose(chain, "set_param", "governance", "approvals_required", 17), "param_out_of_bounds")


@settings(max_examples=12)
@given(
    required=st.integers(1, 4),
    order=st.lists(st.sampled_from(["admin", "admin-2", "admin-3", "admin-4"]), min_size=1, max_size=7),
)
def test_executes_exactly_when_enough_distinct_admins_approved(required: int, order: list[str]) -> None:
    chain = GovChain(Store.in_memory(), genesis_with(approvals_required=required))
    keys = {"admin-2": ADMIN2, "admin-3": ADMIN3, "admin-4": KeyPair.dev("gov-admin-4")}
    add_admins(chain, *keys.items())
    first, rest = order[0], order[1:]
    ok(
        chain,
        propose(
            chain,
            "set_param",
            "oracle",
            "staleness_blocks",
            77,
            sender=first,
            keys=[keys[first]] if first in keys else None,
        ),
    )
    approvers = [first]
    for who in rest:
        stx = approve(chain, 1, who, keys=[keys[who]] if who in keys else None)
        _, result = chain.run(stx)
        code = result.receipts[0].code
        if len(approvers) >= required:
            assert code == "proposal_closed"
        elif who in approvers:
            assert code == "already_approved"
        else:
            assert code == "ok"
            approvers.append(who)
    executed = len(approvers) >= required
    assert (chain.param("oracle", "staleness_blocks") == 77) == executed
    assert chain.view("proposal", id="1")["status"] == ("executed" if executed else "open")


@settings(max_examples=10)
@given(sender=st.sampled_from(["member-a", "member-b", "xchg-alpha", "custodian", "oracle-1", "issuer-acme", "validator-2"]),
       action=st.sampled_from([["set_param", "oracle", "staleness_blocks", 5], ["halt_instrument", "ACME", "r"],
                               ["remove_validator", VKEYS[0].public], ["upgrade_code", "escrow", b"\x02" * 32, 10**6]]))  # fmt: skip
def test_permission_property(genesis: Genesis, sender: str, action: list[Any]) -> None:
    chain = GovChain(Store.in_memory(), genesis)
    fails(chain, propose(chain, *action, sender=sender), "not_admin")


# --- validator set changes --------------------------------------------------------------------
def test_removal_shows_in_next_validators_hash_at_h_plus_1_and_signs_from_h_plus_2(chain: GovChain) -> None:
    before = chain.ledger.validators
    block_h, result = chain.run(propose(chain, "remove_validator", VKEYS[3].public))
    h = block_h.height
    assert event(result.receipts[0], "validator_change_scheduled")["effective_height"] == h + 2
    assert block_h.header.next_validators_hash == before.hash()
    assert chain.view("validators")["pending"][0]["signs_from"] == h + 2
    block_h1, result = chain.run()
    after = ValidatorSet.build([v for v in before.validators if v.pubkey != VKEYS[3].public])
    assert block_h1.header.validators_hash == before.hash()
    assert block_h1.header.next_validators_hash == after.hash()
    assert names(result.receipts[0]) == ["validators_updated"]
    assert read_validators(chain.state()) == after and chain.view("validators")["pending"] == []
    # The removed validator's key no longer certifies: a certificate with it is refused.
    block_h2, _ = chain.run()
    assert block_h2.header.validators_hash == after.hash()
    cert = chain.store.certificate(h + 2)
    assert cert is not None and VKEYS[3].public not in [k for k, _ in cert.signatures]
    from chain.certificate import sign_certificate
    from chain.validation import validate_certificate

    with pytest.raises(Exception) as err:
        cert = sign_certificate(chain.genesis.chain_id, h + 2, 0, block_h2.hash(), VKEYS)
        validate_certificate(cert, chain.genesis.chain_id, after, h + 2, block_h2.hash())
    assert getattr(err.value, "code", "") == "certificate_signer"
    chain.run()
    audit(chain.genesis, chain.store)  # the auditor follows the change


def test_add_a_validator_then_change_its_power(chain: GovChain) -> None:
    ok(chain, propose(chain, "add_validator", NEW_VKEY.public, 13, "validator-new"))
    chain.run()
    assert read_validators(chain.state()).power_of(NEW_VKEY.public) == 13
    (receipt,) = ok(chain, propose(chain, "set_power", NEW_VKEY.public, 5))
    chain.run()
    vset = read_validators(chain.state())
    assert vset.power_of(NEW_VKEY.public) == 5 and vset.total_power == 45
    block, _ = chain.run()
    cert = chain.store.certificate(block.height)
    assert cert is not None and NEW_VKEY.public in [k for k, _ in cert.signatures]
    history_doc = chain.view("history")["history"]
    assert [e["kind"] for e in history_doc] == [
        "add_validator",
        "validators_updated",
        "set_power",
        "validators_updated",
    ]
    audit(chain.genesis, chain.store)


@pytest.mark.parametrize(
    ("action", "code"),
    [
        (["add_validator", VKEYS[0].public, 5, "dup"], "validator_exists"),
        (["remove_validator", NEW_VKEY.public], "unknown_validator"),
        (["set_power", NEW_VKEY.public, 5], "unknown_validator"),
        (["set_power", VKEYS[0].public, 10], "power_unchanged"),
        (["set_power", VKEYS[0].public, 30], "power_change_too_large"),  # moves 20 of 40
        (["add_validator", NEW_VKEY.public, 14, "big"], "power_change_too_large"),  # 14 * 3 >= 40
    ],
)
def test_invalid_validator_changes(chain: GovChain, action: list[Any], code: str) -> None:
    fails(chain, propose(chain, *action), code)


def test_changes_in_one_block_add_up(chain: GovChain) -> None:
    _, result = chain.run(
        propose(chain, "remove_validator", VKEYS[3].public),
        propose(chain, "remove_validator", VKEYS[2].public),
    )
    assert [r.code for r in result.receipts[:2]] == ["ok", "power_change_too_large"]
    # Next block: the set before it is 30 strong; removing 10 more is exactly 1/3: refused.
    _, result = chain.run(propose(chain, "remove_validator", VKEYS[2].public))
    assert result.receipts[0].code == "power_change_too_large"
    assert names(result.receipts[1]) == ["validators_updated"]  # the first removal is written
    ok(chain, propose(chain, "set_power", VKEYS[2].public, 11))  # moves 1 of 30


def test_the_last_validator_cannot_go() -> None:
    chain = GovChain(Store.in_memory(), genesis_with(validators=1))
    fails(chain, propose(chain, "remove_validator", VKEYS[0].public), "no_validators_left")


@settings(max_examples=8)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["add_validator", "remove_validator", "set_power"]),
            st.integers(0, 5),
            st.integers(1, 16),
        ),
        min_size=1,
        max_size=8,
    )
)
def test_validator_sets_stay_valid_and_move_less_than_a_third(ops: list[tuple[str, int, int]]) -> None:
    keys = VKEYS + [NEW_VKEY, KeyPair.dev("validator-new-2")]

    class Chain6(GovChain):
        extra_keys = keys[4:]

    chain = Chain6(Store.in_memory(), genesis_with())
    model = as_map(chain.ledger.validators)
    for op, index, power in ops:
        args: list[Any] = [op, keys[index].public] + (
            [power, f"v{index}"] if op == "add_validator" else [power] if op == "set_power" else []
        )
        try:
            expected: ValidatorMap | None = compute_change(
                model, [op, keys[index].public, power, f"v{index}" if op == "add_validator" else ""]
            )
        except ContractError:
            expected = None
        if expected is not None and not is_safe_change(model, expected):
            expected = None
        before = chain.ledger.validators
        _, result = chain.run(propose(chain, *args))
        assert (result.receipts[0].code == "ok") == (expected is not None), (op, result.receipts[0].message)
        chain.run()  # the change is written
        after = chain.ledger.validators
        assert 3 * compute_moved_power(as_map(before), as_map(after)) < before.total_power
        if expected is not None:
            assert {k: p for k, (p, _) in as_map(after).items()} == {k: p for k, (p, _) in expected.items()}
            model = expected
    audit(chain.genesis, chain.store)


def test_compute_change_is_pure() -> None:
    base: ValidatorMap = {b"a" * 32: (10, "a"), b"b" * 32: (10, "b")}
    after = compute_change(base, ["set_power", b"a" * 32, 12, ""])
    assert base[b"a" * 32] == (10, "a") and after[b"a" * 32] == (12, "a")
    assert compute_moved_power(base, after) == 2 and is_safe_change(base, after)
    assert not is_safe_change(base, compute_change(base, ["remove_validator", b"a" * 32, 0, ""]))


# --- code upgrades ----------------------------------------------------------------------------
NEW_ESCROW = bytes.fromhex("ab" * 32)


class UpgradedRegistry(Registry):
    """The dev contracts with escrow's code hash standing in for a new release."""

    def code_hashes(self) -> dict[str, str]:
        return {**super().code_hashes(), "escrow": NEW_ESCROW.hex()}


def upgraded_registry() -> UpgradedRegistry:
    return UpgradedRegistry(default_registry().contracts)


def test_upgrade_checks(chain: GovChain) -> None:
    h = chain.ledger.head.height + 1
    current = chain.state().get(CODE_PREFIX + b"escrow")
    fails(chain, propose(chain, "upgrade_code", "escrow", current, h + 100), "code_unchanged")
    fails(
        chain, propose(chain, "upgrade_code", "escrow", NEW_ESCROW, h + 10), "activation_too_soon"
    )  # at h + 1, notice 10
    (receipt,) = ok(chain, propose(chain, "upgrade_code", "escrow", NEW_ESCROW, h + 50))
    assert event(receipt, "code_upgrade_scheduled")["activation_height"] == h + 50
    fails(chain, propose(chain, "upgrade_code", "escrow", b"\x03" * 32, h + 60), "upgrade_pending")
    assert chain.view("upgrades")["pending"] == [
        {"contract": "escrow", "code_hash": NEW_ESCROW.hex(), "activation_height": h + 50, "proposal": 1}
    ]
    (receipt,) = ok(chain, propose(chain, "cancel_upgrade", "escrow"))
    assert names(receipt)[1] == "code_upgrade_cancelled" and chain.view("upgrades")["pending"] == []


def test_cancelled_upgrade_never_activates(chain: GovChain) -> None:
    h = chain.ledger.head.height + 1
    ok(chain, propose(chain, "upgrade_code", "escrow", NEW_ESCROW, h + 10))
    ok(chain, propose(chain, "cancel_upgrade", "escrow"))
    pin = chain.state().get(CODE_PREFIX + b"escrow")
    while chain.ledger.head.height <= h + 10:
        chain.run()
    assert chain.state().get(CODE_PREFIX + b"escrow") == pin and chain.ledger.code_mismatch is None


def test_an_activated_upgrade_stops_old_code_and_runs_new_code(genesis: Genesis) -> None:
    store = Store.in_memory()
    chain = GovChain(store, genesis)
    h = chain.ledger.head.height + 1
    activation = h + 10
    ok(chain, propose(chain, "upgrade_code", "escrow", NEW_ESCROW, activation))
    while chain.ledger.head.height < activation - 1:
        chain.run()
    assert chain.ledger.code_mismatch is None
    _, result = chain.run()  # block `activation`: still the old code; its task writes the pin
    assert names(result.receipts[-1]) == ["code_activated"]
    assert chain.state().get(CODE_PREFIX + b"escrow") == NEW_ESCROW
    message = chain.ledger.code_mismatch
    assert (
        message is not None
        and f"upgrade to code escrow {NEW_ESCROW.hex()} activated at height {activation}" in message
    )
    with pytest.raises(ContractCodeMismatch) as err:
        chain.run()
    assert err.value.code == "contract_code_mismatch" and "restart with the new code" in err.value.message
    # Restarting with the old code is refused; with the new code, the chain goes on.
    with pytest.raises(ContractCodeMismatch):
        Ledger(store, genesis, default_registry())
    restarted = GovChain.__new__(GovChain)
    restarted.store, restarted.genesis, restarted.nonces = store, genesis, dict(chain.nonces)
    restarted.ledger = Ledger(store, genesis, upgraded_registry())
    from chain.solo import SoloProducer

    restarted.producer = SoloProducer(restarted.ledger, VKEYS)
    ok(restarted, propose(restarted, "set_param", "oracle", "staleness_blocks", 42))
    assert restarted.ledger.genesis_hash == chain.ledger.genesis_hash
    # An auditor with the old code verifies the old era and stops, naming the activation.
    with pytest.raises(AuditFailure) as failure:
        audit(genesis, store)
    d = failure.value.discrepancy
    assert (d.height, d.check) == (activation + 1, "contract_code_mismatch")
    assert f"activated at height {activation}" in d.notes[0]


# --- determinism and conservation ---------------------------------------------------------------
def _supply_and_balances(store: Store) -> tuple[dict[str, int], dict[str, int]]:
    supply = {k[len(b"custody/supply/") :].decode(): v for k, v in _decoded(store, b"custody/supply/")}
    held: dict[str, int] = {}
    for key, (available, locked) in _decoded(store, b"accounts/bal/"):
        assert available >= 0 and locked >= 0
        asset = key.decode().rsplit("/", 1)[1]
        held[asset] = held.get(asset, 0) + available + locked
    return supply, held


def _decoded(store: Store, prefix: bytes) -> Iterator[tuple[bytes, Any]]:
    from chain.state import decode_value

    for key, data in store.iterate_state(prefix):
        yield key, decode_value(data)


ACTIONS = st.sampled_from([
    ["set_param", "oracle", "staleness_blocks", 50], ["halt_instrument", "ACME", "r"], ["resume_instrument", "ACME"],
    ["set_power", VKEYS[1].public, 11], ["set_power", VKEYS[1].public, 9], ["remove_validator", VKEYS[3].public],
    ["add_validator", NEW_VKEY.public, 3, "n"], ["upgrade_code", "escrow", NEW_ESCROW, 10**6], ["cancel_upgrade", "escrow"],
])  # fmt: skip


@settings(max_examples=8)
@given(st.lists(st.lists(ACTIONS, max_size=3), min_size=1, max_size=5))
def test_same_txs_same_state_root_and_value_conserved(blocks: list[list[list[Any]]]) -> None:
    g = genesis_with()
    a, b = GovChain(Store.in_memory(), g), GovChain(Store.in_memory(), g)
    for actions in blocks:
        for c in (a, b):
            block, _ = c.run(*[propose(c, *action) for action in actions])
        assert a.ledger.head.hash() == b.ledger.head.hash()
        supply, held = _supply_and_balances(a.store)
        assert supply == held


# --- against a real node ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Net]:
    directory = tmp_path_factory.mktemp("gov") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield Net(directory, node.url)
    finally:
        node.stop()


@pytest.mark.io
def test_demo_scenario_on_a_node(net: Net) -> None:
    lines: list[str] = []
    s = ScenarioRun(Client(net.url), net.dir / "keys", net.dir, echo=lines.append)
    scenario.run(s)
    scenario.run(s)  # re-runnable on the same network
    text = "\n".join(lines)
    assert "halted" in text and "signs from" in text and "GET /validators shows power" in text


@pytest.mark.io
def test_cli_commands(net: Net) -> None:
    out = net.ok("gov set-param oracle.band_bps 1500").stdout
    assert out.startswith("proposal ") and "executed with 1 approval(s)" in out and "old=1000 new=1500" in out
    pid = int(out.split()[1].rstrip(":"))
    shown = net.json(f"gov show {pid}")
    assert shown["status"] == "executed" and shown["args"] == ["oracle", "band_bps", 1500]
    net.fails("param_out_of_bounds", "gov set-param oracle.band_bps 0")
    net.fails("not_admin", "gov set-param oracle.band_bps 1200 --as member-a")
    net.fails("bad_arguments", "gov set-param band_bps 1200")
    assert "instrument_halted" in net.ok("gov halt HOOLI --reason 'cli test'").stdout
    assert "instrument_resumed" in net.ok("gov resume HOOLI").stdout
    assert any(p["id"] == pid for p in net.json("gov list --status executed")["proposals"])
    assert "oracle.band_bps 1000 -> 1500" in net.ok("gov history").stdout
    vals = net.json("gov validators")
    name, power = vals["validators"][0]["name"], vals["validators"][0]["power"]
    new = power + 1 if power <= 10 else power - 1
    out = net.ok(f"gov validator set-power {name} {new}").stdout
    assert "validator_change_scheduled" in out and "effective_height=" in out
    net.fails("power_change_too_large", f"gov validator set-power {name} {new * 2}")
    net.fails("unknown_validator", "gov validator remove nobody")
    doc = net.json("gov upgrades")
    assert "escrow" in doc["pins"] and doc["pending"] == []
    out = net.ok(f"gov upgrade escrow {'cd' * 32} --in 1000").stdout
    assert "code_upgrade_scheduled" in out
    assert net.json("gov upgrades")["pending"][0]["code_hash"] == "cd" * 32
    net.ok("gov cancel-upgrade escrow")
    net.ok('gov propose set_param \'["oracle", "band_bps", 1000]\'')
    assert "oracle" in net.ok("gov list").stdout


@pytest.mark.io
def test_a_node_stops_when_an_upgrade_activates_code_it_lacks(tmp_path: Path) -> None:
    directory = tmp_path / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        s = ScenarioRun(Client(node.url), directory / "keys", directory, echo=lambda _: None)
        activation = s.height + 12
        s.send("admin", "governance", "propose", [["upgrade_code", "escrow", b"\xee" * 32, activation]])
        while s.height < activation:  # each failed approval still makes a block
            s.fails("unknown_proposal", "admin", "governance", "approve", [999])
        assert node.node is not None
        ledger = node.node.ledger
        assert ledger.head.height == activation and ledger.code_mismatch is not None
        assert f"activated at height {activation}" in ledger.code_mismatch
        assert node.node._stop.is_set()  # the runtime asked to stop instead of going on
        assert "stopping at height" in (directory / "node0" / "node.log").read_text()
    finally:
        node.stop()
    with pytest.raises(ContractCodeMismatch):  # the old code is refused at start
        NodeThread(directory / "node0").start()
