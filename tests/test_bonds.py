"""Bonds: posting, return after a clean term, slashing on findings (oracle out of band, double-sign
evidence, any contract's ``slash``), the views, the ``bond`` / ``evidence`` commands and the
``bonds`` scenario against a real node.

The contract is driven through real blocks on a dev-genesis chain; outcomes are read from
receipts and state. A failed call must write nothing but the sender's nonce. Properties:
conservation (custody supply == sum of balances, per asset, read from state), no negative
balance, the pool holds exactly what the active bonds have left, determinism (the same
transactions on two fresh chains give the same state root), and permission.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.certificate import PRECOMMIT, PREVOTE, vote_sign_bytes
from chain.encoding import H
from chain.executor import CallEnv
from chain.genesis import Genesis, parse_genesis
from chain.keys import KeyPair
from chain.policy import nonce_key
from chain.receipt import Receipt
from chain.state import decode_value
from chain.store import Store
from chain.tx import SignedTx
from cli.localnet import devnet
from contracts import accounts, bonds
from contracts.api import Context
from tests.conftest import Chain

USD = "USD"
POOL, INSURANCE = bonds.POOL, bonds.INSURANCE
MIN = {r: p.default for r, p in ((r, bonds.PARAMS[f"min_bond_{r}"]) for r in bonds.BONDING_ROLES)}
HOUSE = {"xchg-alpha": "XA-HOUSE", "oracle-1": "O1-HOUSE", "oracle-2": "O2-HOUSE", "oracle-3": "O3-HOUSE",
         "issuer-acme": "ACME-CORP", "fund-mgr": "FUND-HOUSE"}  # fmt: skip
HOUSE.update({devnet.validator_participant(i): devnet.validator_account(i) for i in range(4)})


# --- helpers ----------------------------------------------------------------------------------
def new_chain(**params: int) -> Chain:
    doc = devnet.dev_genesis_doc()
    if params:
        doc["params"] = {f"bonds.{k}": v for k, v in params.items()}
    return Chain(Store.in_memory(), parse_genesis(doc))


@pytest.fixture
def chain(genesis: Genesis) -> Chain:
    return Chain(Store.in_memory(), genesis)


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    """One block of ``txs``; each must succeed. Returns every receipt (tasks' last)."""
    block, result = chain.run(*txs)
    assert [(r.error.code, r.error.message) for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts[: len(txs)]] == [("ok", "")] * len(txs)
    return result.receipts


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """``stx`` alone is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = snapshot(chain)
    block, result = chain.run(stx)
    assert block.txs == (stx,) and result.rejected == ()
    receipt = result.receipts[0]
    assert receipt.code == code, receipt.message
    assert receipt.events == ()
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert snapshot(chain) == before
    return receipt


def events(receipts: tuple[Receipt, ...] | list[Receipt], name: str) -> list[dict[str, Any]]:
    return [dict(f) for r in receipts for (_, n, f) in r.events if n == name]


def post(
    chain: Chain,
    who: str,
    amount: int | None = None,
    term: int | None = None,
    account: str | None = None,
    asset: str = USD,
) -> SignedTx:
    role = next(r for r in bonds.BONDING_ROLES if r in devnet.participants(4)[who][0])
    return chain.tx(
        who, "bonds", "post", [account or HOUSE[who], asset, MIN[role] if amount is None else amount, term]
    )


def read(chain: Chain, name: str, **query: str) -> Any:
    head = chain.ledger.head
    env = CallEnv(chain.genesis.chain_id, head.height, head.time_ms, b"")
    return chain.ledger.runtime.read_view(chain.state(), env, "bonds", name, query)  # type: ignore[attr-defined]


def ctx_of(chain: Chain) -> Context:
    """A writable context over the committed state (writes are never stored)."""
    head = chain.ledger.head
    state = chain.state()
    state.begin()
    return Context(state, CallEnv(chain.genesis.chain_id, head.height, head.time_ms, b""), "", "oracle")


def vote(
    key: KeyPair, height: int, round_: int, vote_type: int, block_hash: bytes, chain_id: str = devnet.CHAIN_ID
) -> list[Any]:
    sig = key.sign(vote_sign_bytes(chain_id, vote_type, height, round_, block_hash))
    return [key.public, height, round_, vote_type, block_hash, sig]


def block_hash(label: str) -> bytes:
    return H(b"leaf", label.encode())


def double_vote(
    key: KeyPair, height: int = 1, round_: int = 0, vote_type: int = PRECOMMIT
) -> list[list[Any]]:
    return [
        vote(key, height, round_, vote_type, block_hash(f"a{height}")),
        vote(key, height, round_, vote_type, block_hash(f"b{height}")),
    ]


def totals_from_state(chain: Chain) -> tuple[dict[str, int], dict[str, int]]:
    """(sum of balances per asset, custody supply per asset), read from state."""
    sums: dict[str, int] = {}
    for key, data in chain.store.iterate_state(b"accounts/bal/"):
        available, locked = decode_value(data)
        assert available >= 0 and locked >= 0, key
        asset = key.decode().rsplit("/", 1)[1]
        sums[asset] = sums.get(asset, 0) + available + locked
    supply = {
        k.decode()[len("custody/supply/") :]: decode_value(v)
        for k, v in chain.store.iterate_state(b"custody/supply/")
    }
    return sums, supply


def check_invariants(chain: Chain) -> None:
    sums, supply = totals_from_state(chain)
    assert {a: n for a, n in supply.items() if n} == sums
    active = [b for b in read(chain, "bonds")["bonds"] if b["status"] == "active"]
    assert chain.balance(POOL, USD)[0] == sum(b["remaining"] for b in active)


# --- posting ----------------------------------------------------------------------------------
def test_post_moves_cash_into_the_pool_and_schedules_the_return(chain: Chain) -> None:
    before = chain.balance("XA-HOUSE", USD)
    receipts = ok(chain, post(chain, "xchg-alpha", 60_000_00, 5))
    (posted,) = events(receipts, "bond_posted")
    assert posted == {
        "bond": 1,
        "participant": "xchg-alpha",
        "account": "XA-HOUSE",
        "asset": USD,
        "amount": 60_000_00,
        "term_end_height": 6,
    }
    assert chain.balance("XA-HOUSE", USD) == (before[0] - 60_000_00, 0)
    assert chain.balance(POOL, USD) == (60_000_00, 0)
    bond = read(chain, "bond", id="1")
    assert bond["status"] == "active" and bond["remaining"] == 60_000_00 and bond["term_end_height"] == 6
    assert chain.state().get(b"accounts/acct/" + POOL.encode())[0] == "@bonds"
    check_invariants(chain)


def test_a_clean_bond_returns_exactly_once_at_its_term_end(chain: Chain) -> None:
    before = chain.balance("XA-HOUSE", USD)
    ok(chain, post(chain, "xchg-alpha", term=3))  # height 1, due at 4
    returned = []
    for height in range(2, 8):
        _, result = chain.run()
        found = events(result.receipts, "bond_returned")
        returned += [(height, e) for e in found]
    assert returned == [
        (
            4,
            {
                "bond": 1,
                "participant": "xchg-alpha",
                "account": "XA-HOUSE",
                "asset": USD,
                "returned": MIN["exchange"],
                "slashed": 0,
            },
        )
    ]
    assert chain.balance("XA-HOUSE", USD) == before
    assert read(chain, "bond", id="1")["status"] == "returned"
    assert read(chain, "bonds", participant="xchg-alpha", active="1")["bonds"] == []
    # Running the task again (a duplicate schedule) changes nothing.
    ctx = ctx_of(chain).view("bonds")
    bonds.Bonds().return_bond(ctx, 1)
    assert ctx.events() == [] and bonds.get_bond(ctx, 1) == bonds.get_bond(ctx_of(chain), 1)
    assert accounts.balance(ctx, "XA-HOUSE", USD) == before and accounts.balance(ctx, POOL, USD) == (0, 0)
    check_invariants(chain)


def test_post_checks_before_it_writes(chain: Chain) -> None:
    fails(chain, chain.tx("member-a", "bonds", "post", ["A-HOUSE", USD, 10**8, None]), "not_bondable")
    fails(chain, chain.tx("xchg-alpha", "bonds", "post", ["A-HOUSE", USD, 10**8, None]), "not_account_owner")
    fails(chain, chain.tx("xchg-alpha", "bonds", "post", ["NOPE", USD, 10**8, None]), "unknown_account")
    fails(
        chain,
        chain.tx("xchg-alpha", "bonds", "post", ["XA-HOUSE", "NOPE", 10**8, None]),
        "unknown_instrument",
    )
    fails(
        chain, chain.tx("issuer-acme", "bonds", "post", ["ACME-CORP", "ACME", 10**8, None]), "bond_not_cash"
    )
    fails(chain, post(chain, "xchg-alpha", MIN["exchange"] - 1), "bond_below_minimum")
    fails(chain, post(chain, "xchg-alpha", term=2), "bad_term")
    fails(chain, post(chain, "xchg-alpha", term=1_000_001), "bad_term")
    fails(chain, post(chain, "oracle-1", 100_000_01), "insufficient_funds")


def test_the_largest_minimum_of_the_posters_roles_applies(chain: Chain) -> None:
    admin = chain.tx("admin", "membership", "set_roles", ["issuer-acme", ["issuer", "member", "exchange"]])
    ok(chain, admin)
    fails(
        chain,
        chain.tx("issuer-acme", "bonds", "post", ["ACME-CORP", USD, MIN["issuer"], None]),
        "bond_below_minimum",
    )
    ok(chain, chain.tx("issuer-acme", "bonds", "post", ["ACME-CORP", USD, MIN["exchange"], None]))


def test_active_bonds_per_participant_are_bounded(chain: Chain) -> None:
    ok(chain, *[post(chain, "xchg-alpha") for _ in range(bonds.ACTIVE_BONDS_MAX)])
    fails(chain, post(chain, "xchg-alpha"), "too_many_bonds")
    assert len(read(chain, "bonds", participant="xchg-alpha", active="1")["bonds"]) == bonds.ACTIVE_BONDS_MAX


def test_a_validator_bond_binds_its_consensus_key(chain: Chain) -> None:
    ok(chain, post(chain, "validator-1"))
    key = devnet.validator_key(1).public
    assert read(chain, "bond", id="1")["consensus_keys"] == [key.hex()]
    assert chain.state().get(b"bonds/validator/" + key.hex().encode()) == "validator-1"


def test_validator_key_checks(genesis: Genesis) -> None:
    """A validator outside the set, and a second participant holding a bound key, are refused."""
    chain = Chain(Store.in_memory(), genesis)
    key = devnet.validator_key(2)
    stranger = KeyPair.dev("stranger")
    ok(chain, post(chain, "validator-2"))
    # Give validator-2's account to a second participant with the same key: rotate validator-3 to it.
    ok(chain, chain.tx("validator-3", "membership", "rotate_keys", [1, [key.public]]))
    fails(
        chain,
        chain.tx("validator-3", "bonds", "post", ["V3-HOUSE", USD, MIN["validator"], None], keys=[key]),
        "consensus_key_bound",
    )
    ok(chain, chain.tx("validator-3", "membership", "rotate_keys", [1, [stranger.public]], keys=[key]))
    fails(
        chain,
        chain.tx("validator-3", "bonds", "post", ["V3-HOUSE", USD, MIN["validator"], None], keys=[stranger]),
        "not_in_validator_set",
    )


# --- slashing -----------------------------------------------------------------------------------
def test_compute_slash_rounds_up_and_caps_at_what_is_left() -> None:
    assert bonds.compute_slash(10_000, 0, 500) == 500
    assert bonds.compute_slash(10_001, 0, 500) == 501  # 500.05 -> 501: the remainder to insurance
    assert bonds.compute_slash(1, 0, 1) == 1
    assert bonds.compute_slash(1000, 0, 0) == 0
    assert bonds.compute_slash(1000, 950, 1000) == 50
    assert bonds.compute_slash(1000, 1000, 1000) == 0


def test_slash_is_idempotent_and_never_fails_for_want_of_a_bond(chain: Chain) -> None:
    ok(chain, post(chain, "oracle-1", 20_000_00), post(chain, "oracle-1", 10_000_01))
    ctx = ctx_of(chain)
    assert bonds.slash(ctx, "oracle-1", "oracle_out_of_band", "ACME@7") == 1_000_00 + 50_001
    assert bonds.slash(ctx, "oracle-1", "oracle_out_of_band", "ACME@7") == 0
    assert bonds.slash(ctx, "oracle-1", "oracle_out_of_band", "ACME@8") == 1_000_00 + 50_001
    assert bonds.slash(ctx, "member-a", "missed_disclosure", "ACME:2026Q1") == 0
    assert bonds.slash(ctx, "member-a", "missed_disclosure", "ACME:2026Q1") == 0
    assert bonds.slash(ctx, "oracle-1", "something_new", "x") == 1_000_00 + 50_001  # slash_other_bps
    names = [n for _, n, _ in ctx.events()]
    assert names.count("finding_recorded") == 4 and names.count("bond_slashed") == 6
    found = [dict(f) for _, n, f in ctx.events() if n == "finding_recorded"]
    assert [(f["participant"], f["slashed"]) for f in found] == [
        ("oracle-1", 150_001),
        ("oracle-1", 150_001),
        ("member-a", 0),
        ("oracle-1", 150_001),
    ]


def test_an_out_of_band_price_slashes_the_oracle_and_the_rest_returns(chain: Chain) -> None:
    insurance = chain.balance(INSURANCE, USD)[0]
    before = chain.balance("O3-HOUSE", USD)[0]
    ok(chain, post(chain, "oracle-3", term=5))  # height 1, due at 6
    ok(
        chain,
        chain.tx("oracle-1", "oracle", "submit", ["STARK", 100_00]),
        chain.tx("oracle-2", "oracle", "submit", ["STARK", 101_00]),
    )
    receipts = ok(chain, chain.tx("oracle-3", "oracle", "submit", ["STARK", 300_00]))  # height 3
    share = MIN["oracle"] * 500 // 10_000
    (slashed,) = events(receipts, "bond_slashed")
    assert slashed == {
        "bond": 1,
        "participant": "oracle-3",
        "reason": "oracle_out_of_band",
        "ref": "STARK@3",
        "asset": USD,
        "amount": share,
        "remaining": MIN["oracle"] - share,
    }
    assert events(receipts, "finding_recorded")[0]["slashed"] == share
    assert chain.balance(INSURANCE, USD)[0] == insurance + share
    assert read(chain, "slashed", participant="oracle-3") == {
        "insurance_account": INSURANCE, "totals": {USD: share}, "participant": "oracle-3", "from_participant": {USD: share},
    }  # fmt: skip
    assert read(chain, "findings", participant="oracle-3")["findings"] == [
        {
            "finding": 1,
            "participant": "oracle-3",
            "reason": "oracle_out_of_band",
            "ref": "STARK@3",
            "height": 3,
            "slashed": share,
        }
    ]
    for _ in range(3):
        receipts = ok(chain)
    assert events(receipts, "bond_returned") == [
        {
            "bond": 1,
            "participant": "oracle-3",
            "account": "O3-HOUSE",
            "asset": USD,
            "returned": MIN["oracle"] - share,
            "slashed": share,
        }
    ]
    assert chain.balance("O3-HOUSE", USD)[0] == before - share
    check_invariants(chain)


def test_a_fully_slashed_bond_is_forfeited_at_term_end() -> None:
    chain = new_chain(slash_double_sign_bps=10_000)
    ok(chain, post(chain, "validator-1", term=3))
    ok(chain, chain.tx("auditor-1", "bonds", "submit_evidence", double_vote(devnet.validator_key(1))))
    _, result = chain.run()
    _, result = chain.run()
    assert events(result.receipts, "bond_returned") == [
        {
            "bond": 1,
            "participant": "validator-1",
            "account": "V1-HOUSE",
            "asset": USD,
            "returned": 0,
            "slashed": MIN["validator"],
        }
    ]
    assert read(chain, "bond", id="1")["status"] == "forfeited"
    check_invariants(chain)


# --- evidence -------------------------------------------------------------------------------------
def test_double_sign_evidence_slashes_the_validator(chain: Chain) -> None:
    key = devnet.validator_key(1)
    ok(chain, post(chain, "validator-1"))
    insurance = chain.balance(INSURANCE, USD)[0]
    a, b = double_vote(key, height=1)
    receipts = ok(chain, chain.tx("member-b", "bonds", "submit_evidence", [a, b]))
    (accepted,) = events(receipts, "evidence_accepted")
    assert accepted == {
        "validator": key.public.hex(),
        "participant": "validator-1",
        "height": 1,
        "round": 0,
        "vote_type": PRECOMMIT,
        "submitter": "member-b",
    }
    share = MIN["validator"] // 10
    (slashed,) = events(receipts, "bond_slashed")
    assert (
        slashed["amount"] == share
        and slashed["reason"] == "double_sign"
        and slashed["ref"] == f"{key.public.hex()}:1:0:2"
    )
    assert chain.balance(INSURANCE, USD)[0] == insurance + share
    assert read(chain, "evidence", validator=key.public.hex())["evidence"] == [{
        "height": 1, "round": 0, "vote_type": 2, "participant": "validator-1", "submitter": "member-b",
        "recorded_height": 2, "block_hashes": sorted([a[4].hex(), b[4].hex()]),
    }]  # fmt: skip
    fails(chain, chain.tx("member-a", "bonds", "submit_evidence", [b, a]), "evidence_known")
    check_invariants(chain)


def test_bad_evidence_is_refused_with_its_code(chain: Chain) -> None:
    key = devnet.validator_key(1)
    a, b = double_vote(key, height=5)
    forged = [*b[:5], devnet.validator_key(2).sign(vote_sign_bytes(devnet.CHAIN_ID, PRECOMMIT, 5, 0, b[4]))]
    fails(chain, chain.tx("member-a", "bonds", "submit_evidence", [a, forged]), "bad_evidence_signature")
    other_chain = vote(key, 5, 0, PRECOMMIT, b[4], chain_id="other-chain")
    fails(chain, chain.tx("member-a", "bonds", "submit_evidence", [a, other_chain]), "bad_evidence_signature")
    fails(chain, chain.tx("member-a", "bonds", "submit_evidence", [a, a]), "not_conflicting")
    fails(
        chain,
        chain.tx("member-a", "bonds", "submit_evidence", [a, vote(key, 6, 0, PRECOMMIT, b[4])]),
        "not_conflicting",
    )
    fails(
        chain,
        chain.tx("member-a", "bonds", "submit_evidence", [a, vote(key, 5, 1, PRECOMMIT, b[4])]),
        "not_conflicting",
    )
    fails(
        chain,
        chain.tx("member-a", "bonds", "submit_evidence", [a, vote(key, 5, 0, PREVOTE, b[4])]),
        "not_conflicting",
    )
    other = devnet.validator_key(2)
    fails(
        chain,
        chain.tx("member-a", "bonds", "submit_evidence", [a, vote(other, 5, 0, PRECOMMIT, b[4])]),
        "not_conflicting",
    )
    stranger = KeyPair.dev("stranger")
    fails(chain, chain.tx("member-a", "bonds", "submit_evidence", double_vote(stranger)), "unknown_validator")


def test_old_evidence_is_refused() -> None:
    chain = new_chain(evidence_max_age_blocks=2)
    for _ in range(3):
        chain.run()
    fails(
        chain,
        chain.tx("member-a", "bonds", "submit_evidence", double_vote(devnet.validator_key(1), height=1)),
        "evidence_too_old",
    )
    ok(
        chain,
        chain.tx("member-a", "bonds", "submit_evidence", double_vote(devnet.validator_key(1), height=3)),
    )  # block 5: 3 + 2 >= 5


def test_a_nil_vote_conflicts_with_a_block_vote_and_an_unbonded_validator_is_recorded(chain: Chain) -> None:
    key = devnet.validator_key(2)
    votes = [vote(key, 3, 1, PREVOTE, b""), vote(key, 3, 1, PREVOTE, block_hash("x"))]
    receipts = ok(chain, chain.tx("member-a", "bonds", "submit_evidence", votes))
    assert events(receipts, "bond_slashed") == []
    assert events(receipts, "finding_recorded") == [
        {
            "finding": 1,
            "participant": "validator-2",
            "reason": "double_sign",
            "ref": f"{key.public.hex()}:3:1:1",
            "slashed": 0,
        }
    ]


def test_malformed_evidence_is_rejected_before_a_block(chain: Chain) -> None:
    a, b = double_vote(devnet.validator_key(1))
    for bad in ([a[:5], b], [[*a[:4], b"\x01" * 31, a[5]], b], [[*a[:3], 3, *a[4:]], b]):
        _, result = chain.run(chain.tx("member-a", "bonds", "submit_evidence", bad))
        assert [r.error.code for r in result.rejected] == ["bad_arguments"]
        chain.nonces["member-a"] -= 1


# --- views ----------------------------------------------------------------------------------------
def test_views_page_and_refuse_bad_queries(chain: Chain) -> None:
    ok(chain, *[post(chain, "xchg-alpha", term=3 + i) for i in range(5)], post(chain, "oracle-2"))
    page = read(chain, "bonds", participant="xchg-alpha", limit="2")
    assert [b["id"] for b in page["bonds"]] == [1, 2] and page["next"] == 2
    page = read(chain, "bonds", participant="xchg-alpha", after="2", limit="2")
    assert [b["id"] for b in page["bonds"]] == [3, 4] and page["next"] == 4
    page = read(chain, "bonds", participant="xchg-alpha", after="4")
    assert [b["id"] for b in page["bonds"]] == [5] and page["next"] is None
    assert [b["id"] for b in read(chain, "bonds")["bonds"]] == [1, 2, 3, 4, 5, 6]
    rules = read(chain, "rules")
    assert (
        rules["min_bond"] == MIN
        and rules["slash_bps"]["double_sign"] == 1_000
        and rules["insurance_account"] == INSURANCE
    )
    from chain.errors import ContractError

    for name, query in (
        ("bond", {"id": "x"}),
        ("bond", {"id": "0"}),
        ("bonds", {"limit": "1000"}),
        ("evidence", {"validator": "zz"}),
    ):
        with pytest.raises(ContractError) as err:
            read(chain, name, **query)
        assert err.value.code == "bad_query"
    with pytest.raises(ContractError) as err:
        read(chain, "bond", id="99")
    assert err.value.code == "unknown_bond"


# --- properties -----------------------------------------------------------------------------------
BONDERS = ["xchg-alpha", "oracle-1", "oracle-2", "oracle-3", "issuer-acme", "validator-0", "validator-1"]
OPS = st.one_of(
    st.tuples(st.just("post"), st.sampled_from(BONDERS), st.integers(0, 3), st.integers(3, 8)),
    st.tuples(
        st.just("price"),
        st.sampled_from(["oracle-1", "oracle-2", "oracle-3"]),
        st.sampled_from([100_00, 102_00, 400_00]),
        st.just(0),
    ),
    st.tuples(st.just("evidence"), st.sampled_from([0, 1, 2]), st.integers(1, 3), st.integers(0, 1)),
    st.tuples(st.just("block"), st.just(""), st.just(0), st.just(0)),
)


def apply_ops(chain: Chain, ops: list[tuple[str, Any, int, int]]) -> None:
    for kind, who, n, m in ops:
        if kind == "post":
            role = next(r for r in bonds.BONDING_ROLES if r in devnet.participants(4)[who][0])
            chain.run(chain.tx(who, "bonds", "post", [HOUSE[who], USD, MIN[role] + n * 1_234_567, m]))
        elif kind == "price":
            chain.run(chain.tx(who, "oracle", "submit", ["HOOLI", n]))
        elif kind == "evidence":
            chain.run(
                chain.tx(
                    "member-a",
                    "bonds",
                    "submit_evidence",
                    double_vote(devnet.validator_key(who), height=n, round_=m),
                )
            )
        else:
            chain.run()
        check_invariants(chain)


@settings(max_examples=25)
@given(st.lists(OPS, min_size=1, max_size=14))
def test_value_is_conserved_and_execution_is_deterministic(
    genesis: Genesis, ops: list[tuple[str, Any, int, int]]
) -> None:
    one, two = Chain(Store.in_memory(), genesis), Chain(Store.in_memory(), genesis)
    apply_ops(one, ops)
    for kind, who, n, m in ops:  # the second chain: same transactions, no checks in between
        if kind == "post":
            role = next(r for r in bonds.BONDING_ROLES if r in devnet.participants(4)[who][0])
            two.run(two.tx(who, "bonds", "post", [HOUSE[who], USD, MIN[role] + n * 1_234_567, m]))
        elif kind == "price":
            two.run(two.tx(who, "oracle", "submit", ["HOOLI", n]))
        elif kind == "evidence":
            two.run(
                two.tx(
                    "member-a",
                    "bonds",
                    "submit_evidence",
                    double_vote(devnet.validator_key(who), height=n, round_=m),
                )
            )
        else:
            two.run()
    assert one.ledger.head.state_root == two.ledger.head.state_root
    # Every finding is recorded once: evidence per (key, height, round), a price per block.
    findings = read(one, "findings")["findings"]
    assert len({(f["participant"], f["reason"], f["ref"]) for f in findings}) == len(findings)


NOT_BONDABLE = [
    p for p, (roles, _, _) in devnet.participants(4).items() if not set(roles) & set(bonds.BONDING_ROLES)
]


@settings(max_examples=8)
@given(st.sampled_from(NOT_BONDABLE), st.integers(1, 10**10))
def test_only_bonding_roles_may_post(genesis: Genesis, who: str, amount: int) -> None:
    chain = Chain(Store.in_memory(), genesis)
    fails(chain, chain.tx(who, "bonds", "post", ["A-HOUSE", USD, amount, None]), "not_bondable")


@settings(max_examples=8)
@given(
    st.sampled_from(BONDERS),
    st.sampled_from(["A-HOUSE", "B-C001", "XA-HOUSE", "O1-HOUSE", "V0-HOUSE", "ACME-CORP"]),
)
def test_a_bond_comes_only_from_the_posters_own_account(genesis: Genesis, who: str, account: str) -> None:
    chain = Chain(Store.in_memory(), genesis)
    role = next(r for r in bonds.BONDING_ROLES if r in devnet.participants(4)[who][0])
    stx = chain.tx(who, "bonds", "post", [account, USD, MIN[role], None])
    if HOUSE[who] == account:
        ok(chain, stx)
    else:
        fails(chain, stx, "not_account_owner")


# --- the scenario and the commands against a real node ----------------------------------------------
@pytest.fixture(scope="module")
def net(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from cli.localnet.network import init_network
    from tests.netutil import NodeThread
    from tests.test_cli import FAST, Net

    directory = tmp_path_factory.mktemp("bonds") / "net"
    init_network(directory, validators=1, base_port=0, consensus=FAST)
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield Net(directory, node.url)
    finally:
        node.stop()


@pytest.mark.io
def test_the_bonds_scenario_runs_twice_on_a_node(net: Any) -> None:
    from cli.client import Client
    from cli.scenarios import ScenarioRun
    from cli.scenarios import bonds as scenario

    lines: list[str] = []
    s = ScenarioRun(Client(net.url), net.dir / "keys", net.dir, echo=lines.append)
    scenario.run(s)
    scenario.run(s)  # re-runnable: unique ids, balances read before and after
    text = "\n".join(lines)
    assert "slashed" in text and "returned" in text


@pytest.mark.io
def test_bond_and_evidence_commands(net: Any, tmp_path: Path) -> None:
    out = net.json("bond post --as oracle-2 --account O2-HOUSE --asset USD --amount 10000.00 --term 3")
    bond_id = out["bond"]["id"]
    assert out["bond"]["amount"] == 10_000_00 and out["bond"]["participant"] == "oracle-2"
    shown = net.json(f"bond show {bond_id}")
    assert shown["status"] in ("active", "returned") and shown["remaining"] == 10_000_00
    listed = net.json("bond list --participant oracle-2")
    assert bond_id in [b["id"] for b in listed["bonds"]]
    assert "oracle-2" in net.ok("bond list --participant oracle-2").stdout
    net.fails("bond_below_minimum", "bond post --as oracle-2 --account O2-HOUSE --asset USD --amount 1.00")
    net.fails("bad_amount", "bond post --as oracle-2 --account O2-HOUSE --asset USD --amount 1.001")
    net.fails("not_bondable", "bond post --as member-a --account A-HOUSE --asset USD --amount 10000.00")
    info = net.json("bond slash-info --participant oracle-2")
    assert (
        info["rules"]["slash_bps"]["oracle_out_of_band"] == 500
        and info["rules"]["min_bond"]["oracle"] == 10_000_00
    )
    assert "double_sign" in net.ok("bond slash-info").stdout

    # Evidence from a file (the node's GET /evidence format) against validator-0.
    key = devnet.validator_key(0)
    height = 10**6 + bond_id  # unique per run; votes may be for any height
    a, b = double_vote(key, height=height)
    doc = {"evidence": [{
        "validator": key.public.hex(), "height": height, "round": 0, "step": "precommit",
        "votes": [{"block_hash": a[4].hex(), "signature": a[5].hex()}, {"block_hash": b[4].hex(), "signature": b[5].hex()}],
    }]}  # fmt: skip
    path = tmp_path / "evidence.json"
    path.write_text(json.dumps(doc))
    result = net.json(f"evidence submit {path} --as auditor-1")
    assert result["submitted"][0]["code"] == "ok" and result["submitted"][0]["participant"] == "validator-0"
    result = net.json(f"evidence submit {path} --as auditor-1")
    assert result["submitted"][0]["code"] == "evidence_known"
    result = net.json("evidence submit --from-node --as auditor-1")
    assert result["submitted"] == []  # this node saw no double vote
    net.fails("bad_evidence", f"evidence submit {tmp_path / 'missing.json'} --as auditor-1")
