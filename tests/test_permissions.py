"""Who may move what (issue 8), through real signed transactions executed on a dev-genesis ledger.

- A non-member, a known participant signing with keys outside its policy, or below its 2-of-3
  threshold, cannot get any call into a block: every method is refused at admission.
- An exchange cannot move a client's cash or securities except by a trade between clearing
  members' accounts: every other method it could call is refused when aimed at a member's
  accounts, and a trade naming a system account (collateral, insurance, bond or fund pool) or a
  non-member's house account (its own, an oracle's) fails ``not_member_account``.
- A member (member-b) cannot touch another member's (member-a's) accounts through any method.
- An auditor (auditor-1) cannot write: every method refuses it, except the few the rulebook opens
  to any participant (its own key rotation, claiming an escrow with its preimage, a margin check,
  proof of a double vote), whose effect on balances does not depend on who sends them.

The refusal tables are checked against the contract registry, so a new method fails this module
until someone decides who may call it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.certificate import PRECOMMIT, vote_sign_bytes
from chain.encoding import H
from chain.errors import InvalidTransaction
from chain.genesis import Genesis
from chain.keys import KeyPair
from chain.policy import nonce_key, policy_key
from chain.receipt import Receipt
from chain.store import Store
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry
from tests.conftest import Chain

REGISTRY = default_registry()
ALL_METHODS = {(c, m) for c, m, _ in REGISTRY.methods()}
PREIMAGE = b"p" * 32
HASHLOCK = hashlib.sha256(PREIMAGE).digest()
ESCROW = "E1"  # member-a locks USD 50.00 from A-C001 for B-C001
WITHDRAWAL = 1  # member-a's pending withdrawal of USD 100.00 from A-C001
ACTION = 1  # issuer-acme's announced ACME dividend, paid by ACME-CORP
FUND, UNIT, BASKET = "IDX", "IDX-U", ["ACME", "GLOBEX"]
UNITS = 1_000 * 10_000  # a thousand fund units in A-HOUSE
FAR = 10_000  # a height far enough ahead for record heights and timeouts

# Methods the rulebook opens to any participant (docs/CONTRACTS.md): key rotation for itself,
# an escrow claim (the amount can only go to the recipient), a margin check, double-vote evidence.
PUBLIC = {
    ("membership", "rotate_keys"),
    ("escrow", "claim"),
    ("margin", "check"),
    ("bonds", "submit_evidence"),
}
# The exchange's mandate: reporting trades and cleared positions.
MANDATE = {
    ("settlement", "settle"),
    ("settlement", "settle_batch"),
    ("cycles", "submit"),
    ("cycles", "submit_batch"),
    ("margin", "open_position"),
    ("margin", "close_position"),
}
# Accounts whose owner is no clearing member: contracts' system accounts and non-members' houses.
NOT_CLEARING = [
    "CCP-INSURANCE",
    "MARGIN-COLLATERAL",
    "MARGIN-GF",
    "BOND-POOL",
    f"FUND-{FUND}",
    "XA-HOUSE",
    "O1-HOUSE",
]


def _ticket(
    trade_id: str, buyer: str, seller: str, quantity: int = 1, price: int = 1_000_000_00
) -> list[Any]:
    return [trade_id, buyer, seller, "ACME", quantity, price, DAY]


def _double_vote() -> list[list[Any]]:
    """Two precommits by validator-0 for different blocks at one height and round."""
    key = devnet.validator_key(0)
    votes = []
    for label in (b"a", b"b"):
        block_hash = H(b"leaf", label)
        signed = vote_sign_bytes(devnet.CHAIN_ID, PRECOMMIT, 1, 0, block_hash)
        votes.append([key.public, 1, 0, PRECOMMIT, block_hash, key.sign(signed)])
    return votes


# One call per method, aimed at member-a's accounts, records or pending operations.
CALLS: dict[tuple[str, str], list[Any]] = {
    ("accounts", "open"): ["A-C001", "client", "client-x"],  # take over member-a's account id
    ("accounts", "suspend"): ["A-C001"],
    ("accounts", "reinstate"): ["A-C001"],
    ("accounts", "close"): ["A-C001"],
    ("bonds", "post"): ["A-HOUSE", "USD", 100_000_00, None],
    ("bonds", "submit_evidence"): _double_vote(),
    ("breakers", "set_rule"): ["ACME", 1, 1],
    ("breakers", "clear_rule"): ["ACME"],
    ("corporate_actions", "announce_dividend"): ["ACME", 1_00, FAR, "A-HOUSE"],
    ("corporate_actions", "announce_split"): ["ACME", 2, 1, FAR, 0, "A-HOUSE"],
    ("corporate_actions", "cancel"): [ACTION],
    ("custody", "deposit"): ["A-C001", "USD", 1, "ref-x"],
    ("custody", "attest_reserves"): ["USD", 1, "stmt-x"],
    ("custody", "request_withdrawal"): ["A-C001", "USD", 1_00],
    ("custody", "confirm_withdrawal"): [WITHDRAWAL],
    ("custody", "reject_withdrawal"): [WITHDRAWAL, "no"],
    ("custody", "cancel_withdrawal"): [WITHDRAWAL],
    ("cycles", "submit"): [*_ticket("C1", "B-HOUSE", "A-HOUSE"), 1],
    ("cycles", "submit_batch"): [[[*_ticket("C2", "B-HOUSE", "A-HOUSE"), 1]]],
    ("disclosure", "register_issuer"): ["GLOBEX", "issuer-acme"],
    ("disclosure", "obligate"): ["ACME", 10, 1],
    ("disclosure", "release"): ["ACME"],
    ("disclosure", "file"): ["ACME", b"d" * 32, "10-K"],
    ("escrow", "lock"): ["E9", "A-C001", "B-C001", "USD", 1_00, hashlib.sha256(b"x" * 32).digest(), FAR],
    ("escrow", "claim"): [ESCROW, PREIMAGE],
    ("escrow", "refund"): [ESCROW],
    ("governance", "propose"): [["halt_instrument", "ACME", "x"]],
    ("governance", "approve"): [1],
    ("governance", "withdraw"): [1],
    ("index_fund", "create_fund"): ["F2", "F2-U", ["ACME"], 10_000, 10, "A-HOUSE", 100_00],
    ("index_fund", "create_units"): [FUND, "A-HOUSE", 10_000],
    ("index_fund", "redeem_units"): [FUND, "A-HOUSE", 10_000],
    ("index_fund", "rebalance_now"): [FUND],
    ("instruments", "list_instrument"): ["NEWCO", "equity", 0, "USD"],
    ("instruments", "halt"): ["ACME", "x"],
    ("instruments", "resume"): ["ACME"],
    ("margin", "post"): ["A-HOUSE", "USD", 1_00],
    ("margin", "withdraw"): ["A-HOUSE", "USD", 1_00],
    ("margin", "contribute"): ["A-HOUSE", 1_00],
    ("margin", "fund_insurance"): ["A-HOUSE", 1_00],
    ("margin", "disburse"): ["A-HOUSE", "USD", 1_00],
    ("margin", "open_position"): ["member-a", "ACME", 1_000, 180_00],
    ("margin", "close_position"): ["member-a", "ACME"],
    ("margin", "check"): ["member-a"],
    ("margin", "set_rates"): ["ACME", 9_000, 9_000],
    ("margin", "set_haircut"): ["ACME", 0],
    ("membership", "register"): ["mallory", ["admin"], 1, [KeyPair.dev("mallory").public]],
    ("membership", "set_roles"): ["member-a", ["auditor"]],
    ("membership", "set_status"): ["member-a", False],
    ("membership", "rotate_keys"): [1, [KeyPair.dev("mallory").public]],
    ("oracle", "submit"): ["ACME", 1],
    ("oracle", "submit_many"): [[["ACME", 1]]],
    ("settlement", "settle"): _ticket("S1", "B-HOUSE", "A-HOUSE"),
    ("settlement", "settle_batch"): [[_ticket("S2", "B-HOUSE", "A-HOUSE")]],
}


ADMIN_ONLY = {
    ("breakers", "set_rule"), ("breakers", "clear_rule"), ("disclosure", "register_issuer"),
    ("disclosure", "obligate"), ("disclosure", "release"), ("governance", "propose"),
    ("governance", "approve"), ("governance", "withdraw"), ("instruments", "list_instrument"),
    ("instruments", "halt"), ("instruments", "resume"), ("margin", "disburse"), ("margin", "set_rates"),
    ("margin", "set_haircut"), ("membership", "register"), ("membership", "set_roles"),
    ("membership", "set_status"),
}  # fmt: skip
CUSTODIAN_ONLY = {
    ("custody", "deposit"), ("custody", "attest_reserves"), ("custody", "confirm_withdrawal"),
    ("custody", "reject_withdrawal"),
}  # fmt: skip
ORACLE_ONLY = {("oracle", "submit"), ("oracle", "submit_many")}
ISSUER_ONLY = {
    ("corporate_actions", "announce_dividend"), ("corporate_actions", "announce_split"),
    ("corporate_actions", "cancel"), ("disclosure", "file"), ("index_fund", "create_fund"),
}  # fmt: skip
# Methods on member-a's accounts or operations whose refusal code is the same for every other sender.
OWNER_ONLY = {
    ("accounts", "suspend"): "not_account_owner",
    ("accounts", "reinstate"): "not_account_owner",
    ("accounts", "close"): "not_account_owner",
    ("custody", "request_withdrawal"): "not_account_owner",
    ("custody", "cancel_withdrawal"): "not_requester",
    ("escrow", "lock"): "not_account_owner",
    ("escrow", "refund"): "not_account_owner",
    ("margin", "fund_insurance"): "not_account_owner",
    ("index_fund", "rebalance_now"): "not_fund_manager",
}


def _common() -> dict[tuple[str, str], str]:
    out = {m: "not_admin" for m in ADMIN_ONLY}
    out.update({m: "not_custodian" for m in CUSTODIAN_ONLY})
    out.update({m: "not_oracle" for m in ORACLE_ONLY})
    out.update({m: "not_issuer" for m in ISSUER_ONLY})
    out.update(OWNER_ONLY)
    return out


EXCHANGE_REFUSALS = _common() | {
    ("accounts", "open"): "not_member",
    ("bonds", "post"): "not_account_owner",  # the exchange may bond, but only from its own account
    ("index_fund", "create_units"): "not_member",
    ("index_fund", "redeem_units"): "not_member",
    ("margin", "post"): "not_member",
    ("margin", "withdraw"): "not_member",
    ("margin", "contribute"): "not_member",
}  # its trades and position reports (MANDATE) are tested on their own, below
MEMBER_REFUSALS = _common() | {
    ("accounts", "open"): "account_exists",
    ("bonds", "post"): "not_bondable",
    ("cycles", "submit"): "not_exchange",
    ("cycles", "submit_batch"): "not_exchange",
    ("index_fund", "create_units"): "not_account_owner",
    ("index_fund", "redeem_units"): "not_account_owner",
    ("margin", "post"): "not_account_owner",
    ("margin", "withdraw"): "not_account_owner",
    ("margin", "contribute"): "not_account_owner",
    ("margin", "open_position"): "not_exchange",
    ("margin", "close_position"): "not_exchange",
    ("settlement", "settle"): "not_exchange",
    ("settlement", "settle_batch"): "not_exchange",
}
AUDITOR_REFUSALS = {
    **MEMBER_REFUSALS,
    ("accounts", "open"): "not_member",
    ("index_fund", "create_units"): "not_member",
    ("index_fund", "redeem_units"): "not_member",
    ("margin", "post"): "not_member",
    ("margin", "withdraw"): "not_member",
    ("margin", "contribute"): "not_member",
}
TABLES = {"xchg-alpha": EXCHANGE_REFUSALS, "member-b": MEMBER_REFUSALS, "auditor-1": AUDITOR_REFUSALS}


# --- the world: member-a with something of everything -------------------------------------------
def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    _, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts[: len(txs)]] == [("ok", "")] * len(txs)
    return tuple(result.receipts[: len(txs)])


def build_world(chain: Chain) -> Chain:
    """Prices; member-a's margin collateral, guarantee-fund share, pending withdrawal, escrow and
    fund units; an issuer's dividend; an exchange's and a validator's bond. No open position:
    its periodic margin sweep would write in the blocks of the refusals."""
    ok(
        chain,
        chain.tx("oracle-1", "oracle", "submit_many", [[["ACME", 180_00], ["GLOBEX", 95_00]]]),
        chain.tx("admin", "disclosure", "register_issuer", ["ACME", "issuer-acme"]),
        chain.tx("admin", "disclosure", "register_issuer", ["GLOBEX", "issuer-acme"]),
        chain.tx("fund-mgr", "index_fund", "create_fund", [FUND, UNIT, BASKET, 6_000, 1_000, "FUND-HOUSE", 100_00]),
    )  # fmt: skip
    ok(
        chain,
        chain.tx("member-a", "margin", "post", ["A-HOUSE", "USD", 1_000_000_00]),
        chain.tx("member-a", "margin", "contribute", ["A-HOUSE", 10_000_00]),
        chain.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 100_00]),
        chain.tx("member-a", "escrow", "lock", [ESCROW, "A-C001", "B-C001", "USD", 50_00, HASHLOCK, FAR]),
        chain.tx("member-a", "index_fund", "create_units", [FUND, "A-HOUSE", UNITS]),
        chain.tx("issuer-acme", "corporate_actions", "announce_dividend", ["ACME", 1, FAR, "ACME-CORP"]),
        chain.tx("xchg-alpha", "bonds", "post", ["XA-HOUSE", "USD", 50_000_00, None]),
        chain.tx("xchg-alpha", "margin", "fund_insurance", ["XA-HOUSE", 1_000_00]),
        chain.tx("validator-0", "bonds", "post", ["V0-HOUSE", "USD", 100_000_00, None]),
    )  # fmt: skip
    for account in NOT_CLEARING:
        assert sum(sum(chain.balance(account, a)) for a in ("USD", "ACME", "GLOBEX")) > 0, account
    return chain


@pytest.fixture(scope="module")
def world(genesis: Genesis) -> Chain:
    """One world for every refusal: a refused call writes nothing but its nonce (checked)."""
    return build_world(Chain(Store.in_memory(), genesis))


def snapshot(chain: Chain) -> dict[bytes, bytes]:
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def balances(chain: Chain) -> dict[bytes, bytes]:
    """Every balance, account record, holder entry and supply: what moving assets changes."""
    return {
        k: v for prefix in (b"accounts/", b"custody/supply/") for k, v in chain.store.iterate_state(prefix)
    }


def fails(chain: Chain, stx: SignedTx, code: str) -> None:
    """``stx`` is included with a failed receipt ``code`` and writes nothing but its nonce."""
    before = snapshot(chain)
    block, result = chain.run(stx)
    receipt = result.receipts[0]
    assert block.txs == (stx,), [r.error.code for r in result.rejected]
    assert (receipt.code, receipt.events) == (code, ()), receipt.message
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert snapshot(chain) == before


def test_the_world_has_something_to_steal(world: Chain) -> None:
    """The refusals below are meaningful: member-a holds what each method would move."""
    state = world.state()
    assert world.balance("A-C001", "USD") == (1_000_000_00 - 150_00, 150_00)  # withdrawal + escrow locked
    assert world.balance("A-HOUSE", UNIT)[0] == UNITS
    assert state.get(b"margin/coll/member-a/USD") == 1_000_000_00
    assert state.get(b"margin/gf/member-a") == 10_000_00
    assert state.get(b"custody/withdrawal/1")[4] == "pending"
    assert state.get(b"escrow/esc/E1")[6] == "locked"


def test_every_method_is_in_every_table() -> None:
    """A new method fails here until someone decides who may call it."""
    assert set(CALLS) == ALL_METHODS
    assert PUBLIC | MANDATE <= ALL_METHODS
    for sender, table in TABLES.items():
        exempt = PUBLIC | (MANDATE if sender == "xchg-alpha" else set())
        assert set(table) | exempt == ALL_METHODS, (sender, sorted(ALL_METHODS - set(table) - exempt))
        assert not set(table) & PUBLIC, sender


# --- refusals by role -------------------------------------------------------------------------------
ROWS = [(sender, method, code) for sender, table in TABLES.items() for method, code in sorted(table.items())]


@pytest.mark.parametrize(("sender", "method", "code"), ROWS, ids=[f"{s}-{c}.{m}" for s, (c, m), _ in ROWS])
def test_no_one_touches_what_is_not_theirs(
    world: Chain, sender: str, method: tuple[str, str], code: str
) -> None:
    fails(world, world.tx(sender, *method, CALLS[method]), code)


NOT_OWNER = "not_account_owner"


@pytest.mark.parametrize(
    ("sender", "contract", "method", "args", "code"),
    [
        ("issuer-acme", "corporate_actions", "announce_dividend", ["GLOBEX", 1, FAR, "A-HOUSE"], NOT_OWNER),
        ("issuer-acme", "corporate_actions", "announce_split", ["GLOBEX", 2, 1, FAR, 0, "A-HOUSE"], NOT_OWNER),
        ("fund-mgr", "index_fund", "create_fund", ["F2", "F2-U", ["ACME"], 10_000, 10, "A-HOUSE", 100_00], NOT_OWNER),
        ("member-b", "margin", "withdraw", ["B-HOUSE", "USD", 1_00], "insufficient_collateral"),  # not from the pool
    ],
)  # fmt: skip
def test_roles_do_not_reach_other_members_accounts(
    world: Chain, sender: str, contract: str, method: str, args: list[Any], code: str
) -> None:
    """Holding the role is not enough: an issuer cannot make member-a pay, member-b cannot draw
    on member-a's collateral in the shared pool."""
    fails(world, world.tx(sender, contract, method, args), code)


# --- the exchange: trades only, between members' accounts ----------------------------------------
@pytest.mark.parametrize("account", NOT_CLEARING)
@pytest.mark.parametrize("side", ["buyer", "seller"])
def test_an_exchange_trade_never_reaches_a_non_member_account(world: Chain, account: str, side: str) -> None:
    """At a price that would drain the account as buyer, or take its ACME as seller."""
    buyer, seller = (account, "B-HOUSE") if side == "buyer" else ("A-HOUSE", account)
    ticket = _ticket(f"X-{account}-{side}", buyer, seller)
    fails(world, world.tx("xchg-alpha", "settlement", "settle", ticket), "not_member_account")
    fails(world, world.tx("xchg-alpha", "cycles", "submit", [*ticket, 1]), "not_member_account")


def test_batches_of_such_trades_settle_none_of_them(world: Chain) -> None:
    tickets = [_ticket(f"XB-{i}", a, "B-HOUSE") for i, a in enumerate(NOT_CLEARING)]
    tickets += [_ticket(f"XS-{i}", "B-HOUSE", a, price=1) for i, a in enumerate(NOT_CLEARING)]
    for contract, method, items, event in [
        ("settlement", "settle_batch", tickets, "trade_failed"),
        ("cycles", "submit_batch", [[*t, 1] for t in tickets], "trade_refused"),
    ]:
        before = balances(world)
        (receipt,) = ok(world, world.tx("xchg-alpha", contract, method, [items]))
        failed = [dict(f) for _, name, f in receipt.events if name == event]
        assert [f["code"] for f in failed] == ["not_member_account"] * len(tickets)
        assert balances(world) == before
        assert not any(k.startswith(b"cycles/item/") for k, _ in world.store.iterate_state(b"cycles/"))


def test_the_exchange_mandate_moves_only_what_a_trade_moves(genesis: Genesis) -> None:
    """A trade between two members' clients settles DvP; a reported position moves no balance."""
    chain = build_world(Chain(Store.in_memory(), genesis))
    before = {(a, i): chain.balance(a, i)[0] for a in ("A-C001", "B-C001") for i in ("USD", "ACME")}
    ok(
        chain,
        chain.tx("xchg-alpha", "settlement", "settle", ["T1", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]),
    )
    after = {(a, i): chain.balance(a, i)[0] for a, i in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("A-C001", "ACME"): 10, ("A-C001", "USD"): -1_800_00, ("B-C001", "ACME"): -10, ("B-C001", "USD"): 1_800_00,
    }  # fmt: skip
    reports: list[tuple[str, list[Any]]] = [
        ("open_position", ["member-a", "ACME", 10, 181_00]), ("close_position", ["member-a", "ACME"]),
    ]  # fmt: skip
    for method, args in reports:
        held = balances(chain)
        ok(chain, chain.tx("xchg-alpha", "margin", method, args))
        assert balances(chain) == held, method


# --- non-members and bad signatures: refused at admission, for every method ------------------------
STRANGER = KeyPair.dev("mallory")


def _signed(chain: Chain, sender: str, method: tuple[str, str], keys: list[KeyPair]) -> SignedTx:
    nonce = chain.nonces.get(sender, 0) + 1  # not recorded: these never commit
    return Tx(chain.genesis.chain_id, sender, nonce, *method, CALLS[method], 0).sign(keys)


def _forged(stx: SignedTx) -> SignedTx:
    return SignedTx(stx.tx, tuple((k, bytes(64)) for k, _ in stx.signatures), stx.hash)


A_KEYS = devnet.participant_keys("member-a")  # user, wallet, recovery; threshold 2
B_KEYS = devnet.signing_keys("member-b")
FORGERIES: dict[str, tuple[str, Callable[[Chain, tuple[str, str]], SignedTx]]] = {
    "a stranger": ("unknown_sender", lambda c, m: _signed(c, "mallory", m, [STRANGER])),
    "one of two keys": ("insufficient_signatures", lambda c, m: _signed(c, "member-a", m, A_KEYS[:1])),
    "another member's keys": ("signer_not_in_policy", lambda c, m: _signed(c, "member-a", m, B_KEYS)),
    "a stranger's key beside its own": (
        "signer_not_in_policy", lambda c, m: _signed(c, "member-a", m, [A_KEYS[0], STRANGER])
    ),
    "one key twice": ("duplicate_signer", lambda c, m: _signed(c, "member-a", m, [A_KEYS[0], A_KEYS[0]])),
    "forged signatures": ("bad_signature", lambda c, m: _forged(_signed(c, "member-a", m, A_KEYS[:2]))),
    "a validator's key": ("signer_not_in_policy", lambda c, m: _signed(c, "xchg-alpha", m, [devnet.validator_key(0)])),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(FORGERIES))
def test_without_the_policy_nothing_enters_a_block(world: Chain, case: str) -> None:
    code, make = FORGERIES[case]
    txs = [make(world, m) for m in sorted(ALL_METHODS)]
    before = snapshot(world)
    block, result = world.run(*txs)
    assert block.txs == () and result.receipts == ()
    assert {r.error.code for r in result.rejected} == {code}
    assert len(result.rejected) == len(txs)
    assert snapshot(world) == before


def test_no_key_signs_for_a_system_account() -> None:
    """A contract's system owner (``@margin``) is no participant id: such a tx is malformed."""
    args: list[Any] = ["MARGIN-COLLATERAL", "USD", 1]
    stx = Tx(devnet.CHAIN_ID, "@margin", 1, "custody", "request_withdrawal", args, 0).sign([STRANGER])
    with pytest.raises(InvalidTransaction) as caught:
        SignedTx.decode(stx.encode())
    assert caught.value.code == "tx_malformed"


def test_a_suspended_member_is_refused_at_admission(genesis: Genesis) -> None:
    chain = Chain(Store.in_memory(), genesis)
    ok(chain, chain.tx("admin", "membership", "set_status", ["member-a", False]))
    txs = [chain.tx("member-a", "custody", "request_withdrawal", ["A-C001", "USD", 1_00])]
    _, result = chain.run(*txs)
    assert [r.error.code for r in result.rejected] == ["sender_suspended"]
    # ... and, being no active member, its accounts take no new trades either.
    trade = chain.tx("xchg-alpha", "settlement", "settle", ["T1", "A-C001", "B-C001", "ACME", 1, 1_00, DAY])
    fails(chain, trade, "not_member_account")


# --- the methods open to anyone: what the auditor can do, anyone can, with the same effect -------------
@pytest.mark.parametrize("method", sorted(PUBLIC - {("membership", "rotate_keys")}))
def test_a_public_call_has_the_same_effect_whoever_sends_it(
    genesis: Genesis, method: tuple[str, str]
) -> None:
    """The auditor's call succeeds (so the comparison means something) and leaves every balance
    exactly as member-b's or the custodian's same call does: being an auditor grants nothing."""
    outcomes = []
    for sender in ("auditor-1", "member-b", "custodian"):
        chain = build_world(Chain(Store.in_memory(), genesis))
        before = balances(chain)
        ok(chain, chain.tx(sender, *method, CALLS[method]))
        outcomes.append(balances(chain))
    assert outcomes[0] == outcomes[1] == outcomes[2]
    if method != ("margin", "check"):  # a healthy member's check moves nothing; the others do
        assert outcomes[0] != before


def test_an_auditor_rotates_only_its_own_keys(world: Chain) -> None:
    new = KeyPair.dev("auditor-1/new")
    _, result = world.run(world.tx("auditor-1", "membership", "rotate_keys", [1, [new.public]]))
    assert result.receipts[0].ok
    assert set(result.state_diff) == {policy_key("auditor-1"), nonce_key("auditor-1")}
    # The old key no longer signs for the auditor; the new one does, and still cannot write.
    _, result = world.run(
        _signed(world, "auditor-1", ("accounts", "close"), devnet.signing_keys("auditor-1"))
    )
    assert [r.error.code for r in result.rejected] == ["signer_not_in_policy"]
    fails(world, world.tx("auditor-1", "accounts", "close", ["A-C001"], keys=[new]), "not_account_owner")
    fails(
        world,
        world.tx("auditor-1", "custody", "confirm_withdrawal", [WITHDRAWAL], keys=[new]),
        "not_custodian",
    )


# --- generated trades: non-members' balances never move through settlement ----------------------------
ACCOUNTS = sorted({a["id"] for a in devnet.all_accounts()} | set(NOT_CLEARING))
MEMBERS = {"member-a", "member-b", "issuer-acme", "fund-mgr"}
OWNERS = {a["id"]: a["owner"] for a in devnet.all_accounts()}


@settings(max_examples=25)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(ACCOUNTS), st.sampled_from(ACCOUNTS), st.sampled_from(["ACME", "GLOBEX", UNIT]),
            st.integers(1, 1_000), st.integers(1, 10**9),
        ),
        min_size=1, max_size=20,
    )
)  # fmt: skip
def test_generated_batches_never_move_a_non_member_balance(
    world: Chain, trades: list[tuple[Any, ...]]
) -> None:
    tickets = [[f"G{world.ledger.head.height}-{i}", *t, DAY] for i, t in enumerate(trades)]
    outside = {k: v for k, v in balances(world).items() if _owner_of_key(k) not in MEMBERS | {""}}
    (receipt,) = ok(world, world.tx("xchg-alpha", "settlement", "settle_batch", [tickets]))
    codes = {
        dict(f)["trade_id"]: dict(f).get("code", "ok") for _, n, f in receipt.events if n != "batch_settled"
    }
    for ticket in tickets:
        touches_outsider = OWNERS.get(ticket[1]) not in MEMBERS or OWNERS.get(ticket[2]) not in MEMBERS
        if touches_outsider and ticket[1] != ticket[2]:
            assert codes[ticket[0]] == "not_member_account", (ticket, codes[ticket[0]])
    assert {k: v for k, v in balances(world).items() if _owner_of_key(k) not in MEMBERS | {""}} == outside


def _owner_of_key(key: bytes) -> str:
    """The owner of the account a balance, account or holder key is about; "@system" for an
    account no participant owns, "" for any other key."""
    parts = key.decode().split("/")
    account = (
        {"bal": parts[2], "acct": parts[2], "holder": parts[-1]}.get(parts[1])
        if parts[0] == "accounts"
        else None
    )
    return "" if account is None else OWNERS.get(account, "@system")
