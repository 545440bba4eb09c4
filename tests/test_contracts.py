"""The contracts' rules, checked through real blocks on a dev-genesis chain.

Every test drives the ledger the way a client does (signed transactions, committed blocks) and
checks the outcome a client can see: which transactions were rejected and why, each receipt's
code and events, and the balances, supply and records left in state. A failed call must write
nothing but the sender's nonce, so the failure tests compare the whole state before and after.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import msgpack
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from chain.errors import InvalidTransaction
from chain.executor import CallEnv
from chain.keys import KeyPair
from chain.limits import AMOUNT_MAX, BATCH_TRADES_MAX, PRICE_MAX, QUANTITY_MAX
from chain.policy import nonce_key, policy_key
from chain.receipt import Receipt
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import accounts, default_registry, settlement
from contracts.accounts import get_account
from contracts.api import Context
from contracts.custody import supply
from contracts.instruments import get_instrument
from contracts.money import consideration
from tests.conftest import Chain

DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}


# --- helpers ----------------------------------------------------------------------------------
def ctx_of(chain: Chain) -> Context:
    """A read-only context over the committed state (for the contracts' own read functions)."""
    return Context(chain.state(), CallEnv(chain.genesis.chain_id, 0, 0, b""), "", "accounts")


def state_snapshot(chain: Chain) -> dict[bytes, bytes]:
    """Every committed state value but the nonces (which every included tx changes)."""
    return {k: v for k, v in chain.store.iterate_state(b"") if not k.startswith(b"membership/nonce/")}


def committed_nonce(chain: Chain, sender: str) -> int:
    return chain.state().get(nonce_key(sender)) or 0


def ok(chain: Chain, *txs: SignedTx) -> tuple[Receipt, ...]:
    """Run ``txs`` in one block; every one must be included with an ok receipt."""
    block, result = chain.run(*txs)
    assert [(r.error.code, r.error.message) for r in result.rejected] == []
    assert [(r.code, r.message) for r in result.receipts] == [("ok", "")] * len(txs)
    assert len(block.txs) == len(txs)
    return result.receipts


def fails(chain: Chain, stx: SignedTx, code: str) -> Receipt:
    """Run ``stx`` alone: it must be included with a failed receipt ``code`` and no writes
    but its sender's nonce."""
    before = state_snapshot(chain)
    block, result = chain.run(stx)
    assert [r.error.code for r in result.rejected] == []
    assert block.txs == (stx,)
    (receipt,) = result.receipts
    assert receipt.code == code, receipt.message
    assert receipt.events == ()
    assert set(result.state_diff) == {nonce_key(stx.tx.sender)}
    assert committed_nonce(chain, stx.tx.sender) == stx.tx.nonce
    assert state_snapshot(chain) == before
    return receipt


def rejected(chain: Chain, stx: SignedTx, code: str) -> None:
    """Run ``stx`` alone: the proposer must leave it out with ``code``; nothing is written and
    the nonce stays free (the chain's signer is told so)."""
    before = state_snapshot(chain)
    nonce_before = committed_nonce(chain, stx.tx.sender) if is_participant(chain, stx.tx.sender) else 0
    block, result = chain.run(stx)
    assert block.txs == ()
    assert result.receipts == ()
    assert [(r.tx, r.error.code) for r in result.rejected] == [(stx, code)]
    assert result.state_diff == {}
    assert state_snapshot(chain) == before
    if is_participant(chain, stx.tx.sender):
        assert committed_nonce(chain, stx.tx.sender) == nonce_before
    if chain.nonces.get(stx.tx.sender) == stx.tx.nonce:
        chain.nonces[stx.tx.sender] = stx.tx.nonce - 1


def is_participant(chain: Chain, pid: str) -> bool:
    return chain.state().get(policy_key(pid)) is not None


def bal(chain: Chain, account: str, asset: str) -> tuple[int, int]:
    return chain.balance(account, asset)


def balances(chain: Chain, accounts: list[str], assets: list[str]) -> dict[tuple[str, str], tuple[int, int]]:
    return {(a, s): chain.balance(a, s) for a in accounts for s in assets}


def half_up(x: Fraction) -> int:
    """Round half up (all our operands are positive), independently of contracts/money.py."""
    return math.floor(x + Fraction(1, 2))


def trade(
    chain: Chain,
    trade_id: str,
    buyer: str,
    seller: str,
    instrument: str,
    quantity: Any,
    price: Any,
    trade_date: int = DAY,
    *,
    sender: str = "xchg-alpha",
) -> SignedTx:
    return chain.tx(
        sender, "settlement", "settle", [trade_id, buyer, seller, instrument, quantity, price, trade_date]
    )


def batch(chain: Chain, tickets: list[list[Any]], *, sender: str = "xchg-alpha") -> SignedTx:
    return chain.tx(sender, "settlement", "settle_batch", [tickets])


def deposit(
    chain: Chain, account: str, asset: str, amount: int, reference: str, *, sender: str = "custodian"
) -> SignedTx:
    return chain.tx(sender, "custody", "deposit", [account, asset, amount, reference])


def unsignable_tx(chain: Chain, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
    """A tx whose args cannot be encoded (a float, say), so it cannot be hashed the normal way;
    it is signed over a stand-in digest to reach the executor's admission checks in-process."""
    nonce = chain.nonces.get(sender, 0) + 1
    chain.nonces[sender] = nonce
    body = Tx(chain.genesis.chain_id, sender, nonce, contract, method, args, 0)
    digest = bytes(32)
    sigs = tuple((k.public, k.sign(digest)) for k in devnet.signing_keys(sender))
    return SignedTx(body, sigs, digest)


def keys_of(pid: str) -> dict[str, KeyPair]:
    """member-a's keys by role: {"user": ..., "wallet": ..., "recovery": ...}."""
    return {name.split("/")[1]: KeyPair.dev(name) for name in devnet.PARTICIPANTS[pid][2]}


# === membership ================================================================================
NEW_KEY = KeyPair.dev("test/member-c")


def register_member_c(chain: Chain) -> None:
    ok(chain, chain.tx("admin", "membership", "register", ["member-c", ["member"], 1, [NEW_KEY.public]]))


def test_only_admin_registers(chain: Chain) -> None:
    fails(
        chain,
        chain.tx("member-a", "membership", "register", ["member-c", ["member"], 1, [NEW_KEY.public]]),
        "not_admin",
    )
    fails(
        chain,
        chain.tx("xchg-alpha", "membership", "register", ["member-c", ["member"], 1, [NEW_KEY.public]]),
        "not_admin",
    )
    assert not is_participant(chain, "member-c")


def test_admin_is_two_of_three(chain: Chain) -> None:
    admin = devnet.participant_keys("admin")
    args = ["member-c", ["member"], 1, [NEW_KEY.public]]
    rejected(
        chain, chain.tx("admin", "membership", "register", args, keys=admin[:1]), "insufficient_signatures"
    )
    rejected(
        chain, chain.tx("admin", "membership", "register", args, keys=[admin[2]]), "insufficient_signatures"
    )
    # Any two of the three suffice.
    (receipt,) = ok(chain, chain.tx("admin", "membership", "register", args, keys=[admin[0], admin[2]]))
    assert receipt.event_fields(0) == {"id": "member-c", "roles": ["member"], "threshold": 1}


def test_registered_participant_can_transact(chain: Chain) -> None:
    rejected(
        chain,
        chain.tx("member-c", "accounts", "open", ["C-HOUSE", "house", None], keys=[NEW_KEY]),
        "unknown_sender",
    )
    register_member_c(chain)
    ok(chain, chain.tx("member-c", "accounts", "open", ["C-HOUSE", "house", None], keys=[NEW_KEY]))
    record = get_account(ctx_of(chain), "C-HOUSE")
    assert record is not None and record.owner == "member-c"
    # Registering twice is refused.
    fails(
        chain,
        chain.tx("admin", "membership", "register", ["member-c", ["member"], 1, [NEW_KEY.public]]),
        "participant_exists",
    )


def test_rotate_keys_retires_the_old_key(chain: Chain) -> None:
    register_member_c(chain)
    fresh = KeyPair.dev("test/member-c-2")
    (receipt,) = ok(
        chain, chain.tx("member-c", "membership", "rotate_keys", [1, [fresh.public]], keys=[NEW_KEY])
    )
    assert receipt.event_fields(0) == {"id": "member-c", "threshold": 1, "keys": 1}
    assert chain.state().get(policy_key("member-c")) == (1, (fresh.public,), True)
    rejected(
        chain,
        chain.tx("member-c", "accounts", "open", ["C-HOUSE", "house", None], keys=[NEW_KEY]),
        "signer_not_in_policy",
    )
    ok(chain, chain.tx("member-c", "accounts", "open", ["C-HOUSE", "house", None], keys=[fresh]))


def test_two_of_three_recovers_from_a_lost_key(chain: Chain) -> None:
    k = keys_of("member-a")
    replacement = KeyPair.dev("test/member-a/user-2")
    new_keys = [replacement.public, k["wallet"].public, k["recovery"].public]
    # The user key is lost: wallet and recovery together sign the rotation that replaces it.
    ok(
        chain,
        chain.tx("member-a", "membership", "rotate_keys", [2, new_keys], keys=[k["wallet"], k["recovery"]]),
    )
    assert chain.state().get(policy_key("member-a")) == (2, tuple(sorted(new_keys)), True)
    open_args = ["A-HOUSE2", "house", None]
    rejected(
        chain,
        chain.tx("member-a", "accounts", "open", open_args, keys=[k["user"], k["wallet"]]),
        "signer_not_in_policy",
    )
    rejected(
        chain,
        chain.tx("member-a", "accounts", "open", open_args, keys=[k["wallet"], k["user"]]),
        "signer_not_in_policy",
    )
    rejected(
        chain,
        chain.tx("member-a", "accounts", "open", open_args, keys=[k["wallet"]]),
        "insufficient_signatures",
    )
    ok(chain, chain.tx("member-a", "accounts", "open", open_args, keys=[replacement, k["wallet"]]))


def test_set_status_suspends_and_reinstates(chain: Chain) -> None:
    (receipt,) = ok(chain, chain.tx("admin", "membership", "set_status", ["member-b", False]))
    assert receipt.event_fields(0) == {"id": "member-b", "active": False}
    rejected(chain, chain.tx("member-b", "accounts", "open", ["B-HOUSE2", "house", None]), "sender_suspended")
    ok(chain, chain.tx("admin", "membership", "set_status", ["member-b", True]))
    ok(chain, chain.tx("member-b", "accounts", "open", ["B-HOUSE2", "house", None]))


def test_suspended_participant_cannot_send(chain: Chain) -> None:
    """A trade the exchange signed before it was suspended is refused at admission."""
    pending = trade(chain, "T-1", "A-C001", "B-C001", "ACME", 1, 100)
    ok(chain, chain.tx("admin", "membership", "set_status", ["xchg-alpha", False]))
    rejected(chain, pending, "sender_suspended")


def test_set_status_rules(chain: Chain) -> None:
    fails(chain, chain.tx("admin", "membership", "set_status", ["admin", False]), "cannot_suspend_self")
    fails(chain, chain.tx("admin", "membership", "set_status", ["nobody", False]), "unknown_participant")
    fails(chain, chain.tx("member-a", "membership", "set_status", ["member-b", False]), "not_admin")
    assert chain.state().get(policy_key("admin"))[2] is True


@pytest.mark.parametrize(
    "threshold, keys",
    [
        (2, [NEW_KEY.public]),  # threshold above the number of keys
        (4, [NEW_KEY.public, KeyPair.dev("x1").public, KeyPair.dev("x2").public]),
        (1, [NEW_KEY.public, NEW_KEY.public]),  # a key listed twice
        (2, [NEW_KEY.public, KeyPair.dev("x1").public, NEW_KEY.public]),
    ],
)
def test_bad_policy(chain: Chain, threshold: int, keys: list[bytes]) -> None:
    fails(
        chain,
        chain.tx("admin", "membership", "register", ["member-c", ["member"], threshold, keys]),
        "bad_policy",
    )
    # A rotation to a bad policy fails too, and the old policy still signs.
    k = keys_of("member-a")
    fails(chain, chain.tx("member-a", "membership", "rotate_keys", [threshold, keys]), "bad_policy")
    ok(
        chain,
        chain.tx(
            "member-a", "accounts", "open", ["A-HOUSE2", "house", None], keys=[k["user"], k["recovery"]]
        ),
    )


def test_register_rejects_duplicate_roles(chain: Chain) -> None:
    fails(
        chain,
        chain.tx("admin", "membership", "register", ["member-c", ["member", "member"], 1, [NEW_KEY.public]]),
        "bad_roles",
    )


def test_set_roles(chain: Chain) -> None:
    fails(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 1, 1_00, sender="member-b"), "not_exchange")
    fails(chain, chain.tx("member-a", "membership", "set_roles", ["member-b", ["exchange"]]), "not_admin")
    (receipt,) = ok(chain, chain.tx("admin", "membership", "set_roles", ["member-b", ["member", "exchange"]]))
    assert receipt.event_fields(0) == {"id": "member-b", "roles": ["exchange", "member"]}
    ok(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 1, 1_00, sender="member-b"))
    fails(chain, chain.tx("admin", "membership", "set_roles", ["admin", ["member"]]), "cannot_demote_self")
    fails(chain, chain.tx("admin", "membership", "set_roles", ["nobody", ["member"]]), "unknown_participant")
    ok(chain, chain.tx("admin", "membership", "set_roles", ["member-b", ["exchange"]]))
    fails(chain, chain.tx("member-b", "accounts", "open", ["B-X", "house", None]), "not_member")


# === instruments ===============================================================================
def test_admin_lists_an_instrument_that_then_trades(chain: Chain) -> None:
    (receipt,) = ok(chain, chain.tx("admin", "instruments", "list_instrument", ["SOL", "crypto", 9, "USD"]))
    assert receipt.event_fields(0) == {"id": "SOL", "kind": "crypto", "decimals": 9}
    assert get_instrument(ctx_of(chain), "SOL") == ("crypto", 9, "USD", "active")
    ok(chain, deposit(chain, "B-HOUSE", "SOL", 3 * 10**9, "sol-1"))
    q, p = 15 * 10**8, 150_01  # 1.5 SOL at USD 150.01 -> 225.015 -> 225.02
    (receipt,) = ok(chain, trade(chain, "S-1", "A-C001", "B-HOUSE", "SOL", q, p))
    assert receipt.event_fields(0)["consideration"] == 225_02
    assert bal(chain, "A-C001", "SOL") == (q, 0)
    assert bal(chain, "B-HOUSE", "SOL") == (15 * 10**8, 0)


def test_an_18_decimal_instrument_can_trade_one_unit(chain: Chain) -> None:
    """DECIMALS_MAX is 18, so a ticket's quantity bound must allow 10**18 minor units."""
    ok(chain, chain.tx("admin", "instruments", "list_instrument", ["ETH", "crypto", 18, "USD"]))
    ok(chain, deposit(chain, "B-HOUSE", "ETH", 2 * 10**18, "eth-1"))
    (receipt,) = ok(chain, trade(chain, "E-1", "A-C001", "B-HOUSE", "ETH", 10**18, 3_000_00))
    assert receipt.event_fields(0)["consideration"] == 3_000_00


def test_list_instrument_rules(chain: Chain) -> None:
    fails(
        chain,
        chain.tx("admin", "instruments", "list_instrument", ["ACME", "equity", 0, "USD"]),
        "instrument_exists",
    )
    fails(
        chain, chain.tx("admin", "instruments", "list_instrument", ["EUR", "cash", 2, "USD"]), "bad_currency"
    )
    fails(
        chain, chain.tx("admin", "instruments", "list_instrument", ["X", "equity", 0, None]), "bad_currency"
    )
    fails(
        chain, chain.tx("admin", "instruments", "list_instrument", ["X", "equity", 0, "ACME"]), "bad_currency"
    )
    fails(
        chain, chain.tx("admin", "instruments", "list_instrument", ["X", "equity", 0, "EUR"]), "bad_currency"
    )
    ok(chain, chain.tx("admin", "instruments", "list_instrument", ["EUR", "cash", 2, None]))
    ok(chain, chain.tx("admin", "instruments", "list_instrument", ["X", "bond", 3, "EUR"]))


def test_halt_and_resume(chain: Chain) -> None:
    (receipt,) = ok(chain, chain.tx("admin", "instruments", "halt", ["ACME", "circuit breaker"]))
    assert receipt.event_fields(0) == {"id": "ACME", "reason": "circuit breaker"}
    assert get_instrument(ctx_of(chain), "ACME").status == "halted"
    fails(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 10, 100_00), "instrument_halted")
    fails(chain, chain.tx("admin", "instruments", "halt", ["ACME", "again"]), "instrument_halted")
    # Other instruments are unaffected.
    ok(chain, trade(chain, "T-2", "A-C001", "B-HOUSE", "GLOBEX", 10, 41_00))
    ok(chain, chain.tx("admin", "instruments", "resume", ["ACME"]))
    fails(chain, chain.tx("admin", "instruments", "resume", ["ACME"]), "instrument_active")
    ok(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 10, 100_00))
    assert bal(chain, "A-C001", "ACME") == (10, 0)


def test_halt_unknown_instrument(chain: Chain) -> None:
    fails(chain, chain.tx("admin", "instruments", "halt", ["NOPE", "x"]), "unknown_instrument")
    fails(chain, chain.tx("admin", "instruments", "resume", ["NOPE"]), "unknown_instrument")


@pytest.mark.parametrize("sender", ["member-a", "xchg-alpha", "custodian"])
def test_instruments_need_admin(chain: Chain, sender: str) -> None:
    fails(
        chain, chain.tx(sender, "instruments", "list_instrument", ["ETH", "crypto", 18, "USD"]), "not_admin"
    )
    fails(chain, chain.tx(sender, "instruments", "halt", ["ACME", "x"]), "not_admin")
    ok(chain, chain.tx("admin", "instruments", "halt", ["ACME", "x"]))
    fails(chain, chain.tx(sender, "instruments", "resume", ["ACME"]), "not_admin")


# === accounts ==================================================================================
def test_member_opens_house_and_client_accounts(chain: Chain) -> None:
    (r1, r2) = ok(
        chain,
        chain.tx("member-a", "accounts", "open", ["A-HOUSE2", "house", None]),
        chain.tx("member-a", "accounts", "open", ["A-C003", "client", "client-003"]),
    )
    assert r1.event_fields(0) == {"id": "A-HOUSE2", "owner": "member-a", "kind": "house", "client": None}
    assert r2.event_fields(0) == {
        "id": "A-C003",
        "owner": "member-a",
        "kind": "client",
        "client": "client-003",
    }
    ctx = ctx_of(chain)
    assert get_account(ctx, "A-HOUSE2") == ("member-a", "house", None, "active", 0)
    assert get_account(ctx, "A-C003") == ("member-a", "client", "client-003", "active", 0)
    # A new account can be funded and trade.
    ok(chain, deposit(chain, "A-C003", "USD", 1_000_00, "w-1"))
    ok(chain, trade(chain, "T-1", "A-C003", "B-C001", "ACME", 5, 100_00))
    assert bal(chain, "A-C003", "USD") == (500_00, 0)
    assert bal(chain, "A-C003", "ACME") == (5, 0)


@pytest.mark.parametrize("sender", ["xchg-alpha", "custodian", "admin", "auditor-1"])
def test_non_member_cannot_open(chain: Chain, sender: str) -> None:
    fails(chain, chain.tx(sender, "accounts", "open", ["X-1", "house", None]), "not_member")
    assert get_account(ctx_of(chain), "X-1") is None


def test_open_rules(chain: Chain) -> None:
    fails(chain, chain.tx("member-a", "accounts", "open", ["A-C003", "client", None]), "client_required")
    fails(chain, chain.tx("member-a", "accounts", "open", ["A-H", "house", "client-9"]), "client_not_allowed")
    fails(chain, chain.tx("member-a", "accounts", "open", ["B-HOUSE", "house", None]), "account_exists")
    rejected(chain, chain.tx("member-a", "accounts", "open", ["A-X", "omnibus", None]), "bad_arguments")


@pytest.mark.parametrize("account", accounts.SYSTEM_ACCOUNT_IDS)
def test_a_member_cannot_take_a_system_account_id(chain: Chain, account: str) -> None:
    """Else a member opening BOND-POOL first would be paid every posted bond, and one opening
    MARGIN-COLLATERAL would make every margin post fail."""
    before = get_account(ctx_of(chain), account)  # CCP-INSURANCE is opened at genesis
    fails(chain, chain.tx("member-a", "accounts", "open", [account, "house", None]), "account_reserved")
    after = get_account(ctx_of(chain), account)
    assert after == before and (after is None or after.owner.startswith("@"))


def test_every_system_account_a_contract_opens_is_reserved() -> None:
    from contracts import bonds, margin

    opened = [bonds.POOL, bonds.INSURANCE, margin.COLLATERAL_ACCOUNT, margin.GUARANTEE_FUND_ACCOUNT]
    opened += [margin.INSURANCE_ACCOUNT, margin.DEFAULTS_ACCOUNT]
    assert all(accounts.is_system_account_id(a) for a in opened)
    assert not accounts.is_system_account_id("A-C001") and not accounts.is_system_account_id("BOND")


@pytest.mark.parametrize("actor", ["member-a", "admin"])
def test_owner_or_admin_suspends_reinstates_closes(chain: Chain, actor: str) -> None:
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-X", "house", None]))
    (r,) = ok(chain, chain.tx(actor, "accounts", "suspend", ["A-X"]))
    assert r.event_fields(0) == {"id": "A-X", "by": actor}
    assert get_account(ctx_of(chain), "A-X").status == "suspended"
    fails(chain, chain.tx(actor, "accounts", "suspend", ["A-X"]), "account_suspended")
    (r,) = ok(chain, chain.tx(actor, "accounts", "reinstate", ["A-X"]))
    assert r.event_fields(0) == {"id": "A-X", "by": actor}
    fails(chain, chain.tx(actor, "accounts", "reinstate", ["A-X"]), "account_active")
    (r,) = ok(chain, chain.tx(actor, "accounts", "close", ["A-X"]))
    assert r.event_fields(0) == {"id": "A-X", "by": actor}
    assert get_account(ctx_of(chain), "A-X").status == "closed"
    fails(chain, chain.tx(actor, "accounts", "close", ["A-X"]), "account_closed")
    fails(chain, chain.tx(actor, "accounts", "reinstate", ["A-X"]), "account_closed")
    fails(chain, chain.tx(actor, "accounts", "suspend", ["A-X"]), "account_closed")


def test_a_suspended_account_can_be_closed(chain: Chain) -> None:
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-X", "house", None]))
    ok(chain, chain.tx("member-a", "accounts", "suspend", ["A-X"]))
    ok(chain, chain.tx("member-a", "accounts", "close", ["A-X"]))


@pytest.mark.parametrize("method", ["suspend", "reinstate", "close"])
@pytest.mark.parametrize("sender", ["member-b", "xchg-alpha", "custodian"])
def test_another_member_cannot_manage_an_account(chain: Chain, method: str, sender: str) -> None:
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-X", "house", None]))
    if method == "reinstate":
        ok(chain, chain.tx("member-a", "accounts", "suspend", ["A-X"]))
    fails(chain, chain.tx(sender, "accounts", method, ["A-X"]), "not_account_owner")


def test_manage_unknown_account(chain: Chain) -> None:
    for method in ("suspend", "reinstate", "close"):
        fails(chain, chain.tx("member-a", "accounts", method, ["NOPE"]), "unknown_account")


def test_close_needs_zero_balances(chain: Chain) -> None:
    fails(chain, chain.tx("member-a", "accounts", "close", ["A-C001"]), "account_not_empty")
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-X", "house", None]))
    ok(chain, deposit(chain, "A-X", "USD", 10_00, "w-1"))
    fails(chain, chain.tx("member-a", "accounts", "close", ["A-X"]), "account_not_empty")
    # Fully locked for a withdrawal: available is zero but the account still holds it.
    ok(chain, chain.tx("member-a", "custody", "request_withdrawal", ["A-X", "USD", 10_00]))
    assert bal(chain, "A-X", "USD") == (0, 10_00)
    fails(chain, chain.tx("admin", "accounts", "close", ["A-X"]), "account_not_empty")
    ok(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [1]))
    assert bal(chain, "A-X", "USD") == (0, 0)
    assert get_account(ctx_of(chain), "A-X").assets_held == 0
    ok(chain, chain.tx("member-a", "accounts", "close", ["A-X"]))


def test_account_emptied_by_trading_can_close(chain: Chain) -> None:
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-X", "house", None]))
    ok(chain, deposit(chain, "A-X", "ACME", 10, "s-1"))
    assert get_account(ctx_of(chain), "A-X").assets_held == 1
    ok(chain, trade(chain, "T-1", "B-C001", "A-X", "ACME", 10, 1_00))  # A-X now holds USD 10.00
    assert get_account(ctx_of(chain), "A-X").assets_held == 1
    ok(chain, trade(chain, "T-2", "A-X", "B-C001", "ACME", 5, 2_00))  # spends it all
    assert bal(chain, "A-X", "USD") == (0, 0)
    fails(chain, chain.tx("member-a", "accounts", "close", ["A-X"]), "account_not_empty")
    ok(chain, trade(chain, "T-3", "B-C001", "A-X", "ACME", 5, 1))  # 5 ACME for USD 0.05
    ok(chain, chain.tx("member-a", "custody", "request_withdrawal", ["A-X", "USD", 5]))
    ok(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [1]))
    ok(chain, chain.tx("member-a", "accounts", "close", ["A-X"]))


@pytest.mark.parametrize("side", ["buyer", "seller"])
def test_trades_against_suspended_or_closed_accounts_fail(chain: Chain, side: str) -> None:
    ok(chain, chain.tx("member-a", "accounts", "suspend", ["A-C002"]))
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-X", "house", None]))
    ok(chain, chain.tx("member-a", "accounts", "close", ["A-X"]))
    for account, code in (("A-C002", "account_suspended"), ("A-X", "account_closed")):
        buyer, seller = (account, "B-C001") if side == "buyer" else ("B-C001", account)
        fails(chain, trade(chain, f"T-{account}", buyer, seller, "ACME", 1, 1_00), code)
        fails(chain, deposit(chain, account, "USD", 1_00, f"w-{account}"), code)
    ok(chain, chain.tx("member-a", "accounts", "reinstate", ["A-C002"]))
    buyer, seller = ("A-C002", "B-C001") if side == "buyer" else ("B-C001", "A-C002")
    if side == "seller":
        ok(chain, deposit(chain, "A-C002", "ACME", 1, "s-1"))
    ok(chain, trade(chain, "T-A-C002", buyer, seller, "ACME", 1, 1_00))


# === custody ===================================================================================
def test_deposit_credits_and_raises_supply(chain: Chain) -> None:
    before_bal = bal(chain, "A-C001", "USD")
    before_supply = supply(ctx_of(chain), "USD")
    (receipt,) = ok(chain, deposit(chain, "A-C001", "USD", 250_000_00, "wire-1"))
    assert receipt.event_fields(0) == {
        "account": "A-C001",
        "asset": "USD",
        "amount": 250_000_00,
        "reference": "wire-1",
        "custodian": "custodian",
    }
    assert bal(chain, "A-C001", "USD") == (before_bal[0] + 250_000_00, 0)
    assert supply(ctx_of(chain), "USD") == before_supply + 250_000_00
    height = chain.ledger.head.height
    assert chain.state().get(b"custody/deposit/wire-1") == ("A-C001", "USD", 250_000_00, height)
    # An asset the account did not hold yet.
    ok(chain, deposit(chain, "A-C001", "BTC", 5, "wallet-1"))
    assert bal(chain, "A-C001", "BTC") == (5, 0)
    assert supply(ctx_of(chain), "BTC") == 25_00000000 + 5


@pytest.mark.parametrize("sender", ["member-a", "xchg-alpha", "admin"])
def test_only_custodian_deposits(chain: Chain, sender: str) -> None:
    fails(chain, deposit(chain, "A-C001", "USD", 1_00, "wire-1", sender=sender), "not_custodian")


def test_duplicate_deposit_reference(chain: Chain) -> None:
    ok(chain, deposit(chain, "A-C001", "USD", 1_00, "wire-1"))
    fails(chain, deposit(chain, "A-C001", "USD", 1_00, "wire-1"), "duplicate_deposit")
    fails(chain, deposit(chain, "B-HOUSE", "ACME", 7, "wire-1"), "duplicate_deposit")
    # Within one block, too.
    block, result = chain.run(
        deposit(chain, "A-C002", "USD", 5, "wire-2"), deposit(chain, "A-C002", "USD", 5, "wire-2")
    )
    assert [r.code for r in result.receipts] == ["ok", "duplicate_deposit"]
    assert bal(chain, "A-C002", "USD") == (250_000_00 + 5, 0)


def test_deposit_rules(chain: Chain) -> None:
    fails(chain, deposit(chain, "NOPE", "USD", 1_00, "wire-1"), "unknown_account")
    fails(chain, deposit(chain, "A-C001", "NOPE", 1_00, "wire-1"), "unknown_instrument")
    rejected(chain, deposit(chain, "A-C001", "USD", 0, "wire-1"), "bad_arguments")
    rejected(chain, deposit(chain, "A-C001", "USD", -5, "wire-1"), "bad_arguments")
    rejected(chain, deposit(chain, "A-C001", "USD", 1, "wire/1"), "bad_arguments")
    fails(chain, deposit(chain, "A-C001", "USD", AMOUNT_MAX, "wire-1"), "amount_overflow")
    ok(chain, deposit(chain, "A-C001", "USD", 1, "wire-1"))


def withdraw(chain: Chain, account: str, asset: str, amount: int, sender: str = "member-a") -> SignedTx:
    return chain.tx(sender, "custody", "request_withdrawal", [account, asset, amount])


def test_withdrawal_request_locks_then_confirm(chain: Chain) -> None:
    avail, _ = bal(chain, "A-C001", "USD")
    usd = supply(ctx_of(chain), "USD")
    (r,) = ok(chain, withdraw(chain, "A-C001", "USD", 300_00))
    assert r.event_fields(0) == {"id": 1, "account": "A-C001", "asset": "USD", "amount": 300_00}
    assert bal(chain, "A-C001", "USD") == (avail - 300_00, 300_00)
    assert supply(ctx_of(chain), "USD") == usd
    (r,) = ok(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [1]))
    assert r.event_fields(0) == {
        "id": 1,
        "account": "A-C001",
        "asset": "USD",
        "amount": 300_00,
        "custodian": "custodian",
    }
    assert bal(chain, "A-C001", "USD") == (avail - 300_00, 0)
    assert supply(ctx_of(chain), "USD") == usd - 300_00
    assert chain.state().get(b"custody/withdrawal/1")[4] == "confirmed"
    for method, args in (("confirm_withdrawal", [1]), ("reject_withdrawal", [1, "x"])):
        fails(chain, chain.tx("custodian", "custody", method, args), "withdrawal_not_pending")
    fails(chain, chain.tx("member-a", "custody", "cancel_withdrawal", [1]), "withdrawal_not_pending")


def test_withdrawal_reject_unlocks(chain: Chain) -> None:
    avail, _ = bal(chain, "B-HOUSE", "BTC")
    ok(chain, withdraw(chain, "B-HOUSE", "BTC", avail, sender="member-b"))
    assert bal(chain, "B-HOUSE", "BTC") == (0, avail)
    (r,) = ok(chain, chain.tx("custodian", "custody", "reject_withdrawal", [1, "sanctions screening"]))
    assert r.event_fields(0) == {"id": 1, "reason": "sanctions screening"}
    assert bal(chain, "B-HOUSE", "BTC") == (avail, 0)
    assert supply(ctx_of(chain), "BTC") == avail
    assert chain.state().get(b"custody/withdrawal/1")[4] == "rejected"
    fails(chain, chain.tx("member-b", "custody", "cancel_withdrawal", [1]), "withdrawal_not_pending")


def test_withdrawal_cancel_by_requester_only(chain: Chain) -> None:
    avail, _ = bal(chain, "A-C001", "USD")
    ok(chain, withdraw(chain, "A-C001", "USD", 100))
    fails(chain, chain.tx("member-b", "custody", "cancel_withdrawal", [1]), "not_requester")
    fails(chain, chain.tx("custodian", "custody", "cancel_withdrawal", [1]), "not_requester")
    (r,) = ok(chain, chain.tx("member-a", "custody", "cancel_withdrawal", [1]))
    assert r.event_fields(0) == {"id": 1}
    assert bal(chain, "A-C001", "USD") == (avail, 0)
    assert chain.state().get(b"custody/withdrawal/1")[4] == "cancelled"
    fails(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [1]), "withdrawal_not_pending")


def test_withdrawal_rules(chain: Chain) -> None:
    avail, _ = bal(chain, "A-C002", "USD")
    fails(chain, withdraw(chain, "A-C002", "USD", 1, sender="member-b"), "not_account_owner")
    fails(chain, withdraw(chain, "A-C002", "USD", 1, sender="custodian"), "not_account_owner")
    fails(chain, withdraw(chain, "A-C002", "USD", avail + 1), "insufficient_balance")
    fails(chain, withdraw(chain, "A-C002", "ACME", 1), "insufficient_balance")
    fails(chain, withdraw(chain, "NOPE", "USD", 1), "unknown_account")
    rejected(chain, withdraw(chain, "A-C002", "USD", 0), "bad_arguments")
    ok(chain, withdraw(chain, "A-C002", "USD", avail - 10))
    fails(chain, withdraw(chain, "A-C002", "USD", 11), "insufficient_balance")
    (r,) = ok(chain, withdraw(chain, "A-C002", "USD", 10))
    assert r.event_fields(0)["id"] == 2  # failed requests take no id
    assert bal(chain, "A-C002", "USD") == (0, avail)
    fails(chain, chain.tx("member-a", "custody", "confirm_withdrawal", [1]), "not_custodian")
    fails(chain, chain.tx("member-a", "custody", "reject_withdrawal", [1, "x"]), "not_custodian")
    fails(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [3]), "unknown_withdrawal")
    fails(chain, chain.tx("custodian", "custody", "reject_withdrawal", [3, "x"]), "unknown_withdrawal")
    fails(chain, chain.tx("member-a", "custody", "cancel_withdrawal", [3]), "unknown_withdrawal")


def test_withdrawal_on_suspended_account_is_refused(chain: Chain) -> None:
    ok(chain, chain.tx("member-a", "accounts", "suspend", ["A-C001"]))
    fails(chain, withdraw(chain, "A-C001", "USD", 1), "account_suspended")


def test_locked_securities_cannot_be_delivered(chain: Chain) -> None:
    held, _ = bal(chain, "B-C001", "ACME")  # 5,000
    ok(chain, withdraw(chain, "B-C001", "ACME", held - 10, sender="member-b"))
    fails(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 11, 1_00), "insufficient_securities")
    block, result = chain.run(batch(chain, [["T-2", "A-C001", "B-C001", "ACME", 11, 1_00, DAY]]))
    assert result.receipts[0].event_fields(0)["code"] == "insufficient_securities"
    ok(chain, trade(chain, "T-3", "A-C001", "B-C001", "ACME", 10, 1_00))
    assert bal(chain, "B-C001", "ACME") == (0, held - 10)


def test_locked_cash_cannot_pay(chain: Chain) -> None:
    avail, _ = bal(chain, "A-C002", "USD")
    ok(chain, withdraw(chain, "A-C002", "USD", avail - 100_00))
    fails(chain, trade(chain, "T-1", "A-C002", "B-C001", "ACME", 1, 100_01), "insufficient_cash")
    ok(chain, trade(chain, "T-2", "A-C002", "B-C001", "ACME", 1, 100_00))
    assert bal(chain, "A-C002", "USD") == (0, avail - 100_00)


# === settlement: single tickets ================================================================
@pytest.mark.parametrize(
    "instrument, seller, buyer, quantity, price",
    [
        ("BTC", "B-HOUSE", "A-C001", 150_000_000, 9_700_003),  # 14,550,004.5 cents: a half
        ("BTC", "B-HOUSE", "A-C001", 1, 50_000_000),  # 0.5 cent: rounds up to 1
        ("BTC", "B-HOUSE", "A-C001", 3, 49_999_999),  # 1.49999997 cents: rounds down to 1
        ("BTC", "B-HOUSE", "A-C001", 33_333_333, 9_999_999),
        ("TBILL", "A-HOUSE", "B-C001", 12_345, 1_000),  # 1,234.5 cents: a half, banker's gives 1,234
        ("TBILL", "A-HOUSE", "B-C001", 3, 1_6667),  # 5.0001 cents
        ("TBILL", "A-HOUSE", "B-C001", 9_999, 99_99),  # 9,998.0001 cents
        ("ACME", "B-C001", "A-C002", 7, 182_50),  # whole units: exact
    ],
)
def test_settle_moves_both_legs_exactly(
    chain: Chain, instrument: str, seller: str, buyer: str, quantity: int, price: int
) -> None:
    accounts = [a["id"] for a in devnet.all_accounts()]
    before = balances(chain, accounts, [instrument, "USD"])
    usd, sec = supply(ctx_of(chain), "USD"), supply(ctx_of(chain), instrument)
    (receipt,) = ok(chain, trade(chain, "T-1", buyer, seller, instrument, quantity, price))
    cash = half_up(Fraction(quantity * price, 10 ** DECIMALS[instrument]))
    assert receipt.event_fields(0) == {
        "trade_id": "T-1",
        "buyer": buyer,
        "seller": seller,
        "instrument": instrument,
        "quantity": quantity,
        "price": price,
        "consideration": cash,
    }
    expected = dict(before)
    expected[(seller, instrument)] = (before[(seller, instrument)][0] - quantity, 0)
    expected[(buyer, instrument)] = (before[(buyer, instrument)][0] + quantity, 0)
    expected[(buyer, "USD")] = (before[(buyer, "USD")][0] - cash, 0)
    expected[(seller, "USD")] = (before[(seller, "USD")][0] + cash, 0)
    assert balances(chain, accounts, [instrument, "USD"]) == expected
    assert (supply(ctx_of(chain), "USD"), supply(ctx_of(chain), instrument)) == (usd, sec)
    assert settlement.trade_record(ctx_of(chain), "xchg-alpha", "T-1") == (
        chain.ledger.head.height,
        "settled",
        DAY,
    )


def test_half_up_differs_from_bankers_rounding() -> None:
    """The TBILL case above is one where the documented rule matters."""
    x = Fraction(12_345 * 1_000, 10**4)
    assert half_up(x) == 1_235 != round(x)
    assert consideration(12_345, 1_000, 4) == 1_235


Setup = Callable[[Chain], None]


def _nothing(chain: Chain) -> None:
    pass


def _settle_dup(chain: Chain) -> None:
    ok(chain, trade(chain, "T-X", "A-C001", "B-C001", "ACME", 1, 1_00))


def _halt_acme(chain: Chain) -> None:
    ok(chain, chain.tx("admin", "instruments", "halt", ["ACME", "test"]))


def _suspend(account: str, owner: str) -> Setup:
    def setup(chain: Chain) -> None:
        ok(chain, chain.tx(owner, "accounts", "suspend", [account]))

    return setup


def _closed_account(chain: Chain) -> None:
    ok(chain, chain.tx("member-a", "accounts", "open", ["A-SHUT", "house", None]))
    ok(chain, chain.tx("member-a", "accounts", "close", ["A-SHUT"]))


# code -> (setup, ticket, sender); the ticket without the code's fault is
# ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00], which settles.
FAILURES: list[tuple[str, Setup, list[Any], str]] = [
    ("not_exchange", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY], "member-a"),
    ("trade_expired", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY - 8], "xchg-alpha"),
    ("trade_date_future", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY + 2], "xchg-alpha"),
    ("duplicate_trade_id", _settle_dup, ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    ("bad_quantity", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 0, 100_00, DAY], "xchg-alpha"),
    ("bad_quantity", _nothing, ["T-X", "A-C001", "B-C001", "ACME", -10, 100_00, DAY], "xchg-alpha"),
    ("bad_price", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 10, 0, DAY], "xchg-alpha"),
    ("bad_price", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 10, -100_00, DAY], "xchg-alpha"),
    ("unknown_instrument", _nothing, ["T-X", "A-C001", "B-C001", "NOPE", 10, 100_00, DAY], "xchg-alpha"),
    ("instrument_is_cash", _nothing, ["T-X", "A-C001", "B-C001", "USD", 10, 100_00, DAY], "xchg-alpha"),
    ("instrument_halted", _halt_acme, ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    ("unknown_account", _nothing, ["T-X", "NOPE", "B-C001", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    ("unknown_account", _nothing, ["T-X", "A-C001", "NOPE", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    (
        "account_suspended",
        _suspend("A-C001", "member-a"),
        ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY],
        "xchg-alpha",
    ),
    (
        "account_suspended",
        _suspend("B-C001", "admin"),
        ["T-X", "A-C001", "B-C001", "ACME", 10, 100_00, DAY],
        "xchg-alpha",
    ),
    ("account_closed", _closed_account, ["T-X", "A-SHUT", "B-C001", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    ("account_closed", _closed_account, ["T-X", "A-C001", "A-SHUT", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    ("same_account", _nothing, ["T-X", "B-C001", "B-C001", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    ("not_member_account", _nothing, ["T-X", "A-C001", "XA-HOUSE", "ACME", 10, 100_00, DAY], "xchg-alpha"),
    (
        "not_member_account",
        _nothing,
        ["T-X", "CCP-INSURANCE", "B-C001", "ACME", 10, 100_00, DAY],
        "xchg-alpha",
    ),
    ("insufficient_securities", _nothing, ["T-X", "A-C001", "B-C001", "ACME", 5_001, 1, DAY], "xchg-alpha"),
    ("insufficient_securities", _nothing, ["T-X", "A-C001", "B-C002", "ACME", 1, 100_00, DAY], "xchg-alpha"),
    ("insufficient_cash", _nothing, ["T-X", "B-C002", "B-C001", "ACME", 1_000, 100_01, DAY], "xchg-alpha"),
    (
        "amount_overflow",
        _nothing,
        ["T-X", "A-C001", "B-C001", "ACME", QUANTITY_MAX, PRICE_MAX, DAY],
        "xchg-alpha",
    ),
    ("zero_consideration", _nothing, ["T-X", "A-C002", "B-HOUSE", "BTC", 1, 1, DAY], "xchg-alpha"),
]
FAILURE_IDS = [f"{code}-{i}" for i, (code, *_) in enumerate(FAILURES)]


def test_failure_table_covers_every_documented_code() -> None:
    doc = settlement.__doc__ or ""
    section = doc[doc.index("Failure codes:") : doc.index("State:")]
    documented = set(re.findall(r"``(\w+)``", section))
    assert documented == {code for code, *_ in FAILURES}


def test_the_unfaulted_ticket_settles(chain: Chain) -> None:
    ok(chain, trade(chain, "T-X", "A-C001", "B-C001", "ACME", 10, 100_00))


@pytest.mark.parametrize("code, setup, ticket, sender", FAILURES, ids=FAILURE_IDS)
def test_settle_failure_changes_nothing(
    chain: Chain, code: str, setup: Setup, ticket: list[Any], sender: str
) -> None:
    setup(chain)
    receipt = fails(chain, chain.tx(sender, "settlement", "settle", ticket), code)
    assert receipt.message


@pytest.mark.parametrize("code, setup, ticket, sender", FAILURES, ids=FAILURE_IDS)
def test_batch_failure_fails_only_its_ticket(
    chain: Chain, code: str, setup: Setup, ticket: list[Any], sender: str
) -> None:
    setup(chain)
    good_1 = ["G-1", "A-HOUSE", "B-HOUSE", "GLOBEX", 3, 40_00, DAY]
    good_2 = ["G-2", "B-HOUSE", "A-HOUSE", "GLOBEX", 2, 41_00, DAY]
    tx = batch(chain, [good_1, ticket, good_2], sender=sender)
    if code == "not_exchange":
        fails(chain, tx, code)
        return
    before = balances(chain, ["A-HOUSE", "B-HOUSE"], ["GLOBEX", "USD"])
    others = balances(chain, ["A-C001", "A-C002", "B-C001", "B-C002"], ["ACME", "GLOBEX", "USD"])
    (receipt,) = ok(chain, tx)
    names = [
        (name, dict(fields).get("trade_id"), dict(fields).get("code")) for _, name, fields in receipt.events
    ]
    assert names == [
        ("trade_settled", "G-1", None),
        ("trade_failed", "T-X", code),
        ("trade_settled", "G-2", None),
        ("batch_settled", None, None),
    ]
    assert receipt.event_fields(3) == {"trades": 3, "settled": 2, "failed": 1}
    assert balances(chain, ["A-C001", "A-C002", "B-C001", "B-C002"], ["ACME", "GLOBEX", "USD"]) == others
    a_usd, b_usd = before[("A-HOUSE", "USD")][0], before[("B-HOUSE", "USD")][0]
    assert balances(chain, ["A-HOUSE", "B-HOUSE"], ["GLOBEX", "USD"]) == {
        ("A-HOUSE", "GLOBEX"): (before[("A-HOUSE", "GLOBEX")][0] + 1, 0),
        ("B-HOUSE", "GLOBEX"): (before[("B-HOUSE", "GLOBEX")][0] - 1, 0),
        ("A-HOUSE", "USD"): (a_usd - 120_00 + 82_00, 0),
        ("B-HOUSE", "USD"): (b_usd + 120_00 - 82_00, 0),
    }


def test_duplicate_trade_id_after_settlement(chain: Chain) -> None:
    ok(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 1, 1_00))
    # Another ticket with the same id, even a different trade, is refused.
    fails(chain, trade(chain, "T-1", "A-C002", "B-HOUSE", "GLOBEX", 1, 1_00), "duplicate_trade_id")
    (receipt,) = ok(chain, batch(chain, [["T-1", "A-C002", "B-HOUSE", "GLOBEX", 1, 1_00, DAY]]))
    assert receipt.event_fields(0)["code"] == "duplicate_trade_id"


def test_trade_ids_are_scoped_per_exchange(chain: Chain) -> None:
    x2 = KeyPair.dev("test/xchg-beta")
    ok(chain, chain.tx("admin", "membership", "register", ["xchg-beta", ["exchange"], 1, [x2.public]]))
    ok(chain, trade(chain, "T-1", "A-C001", "B-C001", "ACME", 1, 1_00))
    ok(
        chain,
        chain.tx(
            "xchg-beta", "settlement", "settle", ["T-1", "A-C001", "B-C001", "ACME", 1, 1_00, DAY], keys=[x2]
        ),
    )
    fails(
        chain,
        chain.tx(
            "xchg-beta", "settlement", "settle", ["T-1", "A-C001", "B-C001", "ACME", 1, 1_00, DAY], keys=[x2]
        ),
        "duplicate_trade_id",
    )
    assert bal(chain, "A-C001", "ACME") == (2, 0)


def test_failed_trade_id_can_be_retried(chain: Chain) -> None:
    ticket = ["T-R", "A-C002", "B-HOUSE", "ACME", 2_000, 200_00, DAY]  # USD 400,000.00; A-C002 has 250,000.00
    fails(chain, chain.tx("xchg-alpha", "settlement", "settle", ticket), "insufficient_cash")
    assert settlement.trade_record(ctx_of(chain), "xchg-alpha", "T-R") is None
    ok(chain, deposit(chain, "A-C002", "USD", 150_000_00, "wire-1"))
    ok(chain, chain.tx("xchg-alpha", "settlement", "settle", ticket))
    assert bal(chain, "A-C002", "USD") == (0, 0)
    assert bal(chain, "A-C002", "ACME") == (2_000, 0)


def test_failed_trade_in_batch_can_be_retried(chain: Chain) -> None:
    ticket = ["T-R", "A-C002", "B-HOUSE", "ACME", 2_000, 200_00, DAY]
    (r,) = ok(chain, batch(chain, [ticket]))
    assert r.event_fields(0)["code"] == "insufficient_cash"
    ok(chain, deposit(chain, "A-C002", "USD", 150_000_00, "wire-1"))
    (r,) = ok(chain, batch(chain, [ticket]))
    assert r.events[0][1] == "trade_settled"


# === settlement: batches =======================================================================
def test_batch_mixed_outcomes_in_order(chain: Chain) -> None:
    accounts = ["A-C001", "B-HOUSE", "B-C001", "B-C002"]
    before = balances(chain, accounts, ["GLOBEX", "ACME", "USD"])
    tickets = [
        ["T-1", "A-C001", "B-HOUSE", "GLOBEX", 10, 41_10, DAY],  # buys 10 GLOBEX
        ["T-2", "A-C001", "B-C002", "ACME", 1, 1_00, DAY],  # B-C002 holds no ACME
        ["T-3", "B-C001", "A-C001", "GLOBEX", 10, 42_00, DAY],  # sells what T-1 delivered
        ["T-1", "B-C001", "B-HOUSE", "GLOBEX", 1, 1_00, DAY],  # id used earlier in the batch
        ["T-5", "B-C001", "B-C001", "ACME", 1, 1_00, DAY],
        ["T-6", "A-C001", "B-HOUSE", "GLOBEX", 1, 1, DAY],
    ]
    (receipt,) = ok(chain, batch(chain, tickets))
    outcome = [(n, dict(f).get("trade_id"), dict(f).get("code")) for _, n, f in receipt.events]
    assert outcome == [
        ("trade_settled", "T-1", None),
        ("trade_failed", "T-2", "insufficient_securities"),
        ("trade_settled", "T-3", None),
        ("trade_failed", "T-1", "duplicate_trade_id"),
        ("trade_failed", "T-5", "same_account"),
        ("trade_settled", "T-6", None),
        ("batch_settled", None, None),
    ]
    assert all(c == "settlement" for c, _, _ in receipt.events)
    assert receipt.event_fields(2) == {
        "trade_id": "T-3",
        "buyer": "B-C001",
        "seller": "A-C001",
        "instrument": "GLOBEX",
        "quantity": 10,
        "price": 42_00,
        "consideration": 420_00,
    }
    assert receipt.event_fields(6) == {"trades": 6, "settled": 3, "failed": 3}
    after = balances(chain, accounts, ["GLOBEX", "ACME", "USD"])
    expected = dict(before)
    expected[("A-C001", "GLOBEX")] = (1, 0)
    expected[("A-C001", "USD")] = (before[("A-C001", "USD")][0] - 411_00 + 420_00 - 1, 0)
    expected[("B-HOUSE", "GLOBEX")] = (before[("B-HOUSE", "GLOBEX")][0] - 11, 0)
    expected[("B-HOUSE", "USD")] = (before[("B-HOUSE", "USD")][0] + 411_00 + 1, 0)
    expected[("B-C001", "GLOBEX")] = (10, 0)
    expected[("B-C001", "USD")] = (before[("B-C001", "USD")][0] - 420_00, 0)
    assert after == expected
    ctx = ctx_of(chain)
    assert settlement.trade_record(ctx, "xchg-alpha", "T-2") is None
    assert settlement.trade_record(ctx, "xchg-alpha", "T-3") is not None


def test_batch_is_sequential(chain: Chain) -> None:
    """Selling before buying in the same batch fails; the buy still settles."""
    tickets = [
        ["T-2", "B-C001", "A-C001", "GLOBEX", 10, 42_00, DAY],
        ["T-1", "A-C001", "B-HOUSE", "GLOBEX", 10, 41_10, DAY],
    ]
    (receipt,) = ok(chain, batch(chain, tickets))
    assert receipt.event_fields(0)["code"] == "insufficient_securities"
    assert receipt.events[1][1] == "trade_settled"
    assert bal(chain, "A-C001", "GLOBEX") == (10, 0)


def test_failed_then_repeated_id_in_one_batch(chain: Chain) -> None:
    """An id seen earlier in the batch is a duplicate even if that ticket failed."""
    tickets = [
        ["T-1", "B-C002", "B-C001", "ACME", 1_000, 100_01, DAY],  # insufficient cash
        ["T-1", "A-C001", "B-C001", "ACME", 1, 1_00, DAY],
    ]
    (receipt,) = ok(chain, batch(chain, tickets))
    assert [dict(f).get("code") for _, _, f in receipt.events[:2]] == [
        "insufficient_cash",
        "duplicate_trade_id",
    ]


def test_batch_at_the_limit_settles(chain: Chain) -> None:
    tickets = [[f"T-{i}", "A-C001", "B-HOUSE", "ACME", 1, 1_00, DAY] for i in range(BATCH_TRADES_MAX)]
    (receipt,) = ok(chain, batch(chain, tickets))
    assert len(receipt.events) == BATCH_TRADES_MAX + 1
    assert receipt.event_fields(BATCH_TRADES_MAX) == {
        "trades": BATCH_TRADES_MAX,
        "settled": BATCH_TRADES_MAX,
        "failed": 0,
    }
    assert bal(chain, "A-C001", "ACME") == (BATCH_TRADES_MAX, 0)


def test_batch_over_the_limit_is_rejected(chain: Chain) -> None:
    tickets = [[f"T-{i}", "A-C001", "B-HOUSE", "ACME", 1, 1_00, DAY] for i in range(BATCH_TRADES_MAX + 1)]
    rejected(chain, batch(chain, tickets), "bad_arguments")
    rejected(chain, batch(chain, []), "bad_arguments")


GOOD = ["T-1", "A-C001", "B-C001", "ACME", 10, 100_00, DAY]


@pytest.mark.parametrize(
    "args",
    [
        ["T-1", "A-C001", "B-C001", "ACME", 10.0, 100_00, DAY],  # float quantity
        ["T-1", "A-C001", "B-C001", "ACME", 10, 100.5, DAY],  # float price
        ["T-1", "A-C001", "B-C001", "ACME", 10, "100_00", DAY],  # str price
        ["T-1", "A-C001", "B-C001", "ACME", True, 100_00, DAY],  # bool quantity
        ["T-1", "A-C001", "B-C001", "ACME", 10, None, DAY],
        ["T-1", "A-C001", "B-C001", "ACME", QUANTITY_MAX + 1, 100_00, DAY],
        ["T-1", "A-C001", "B-C001", "ACME", 10, PRICE_MAX + 1, DAY],
        ["T-1", "A-C001", "B-C001", "ACME", 10],  # wrong arity
        ["T-1", "A-C001", "B-C001", "ACME", 10, 100_00, DAY, 0],  # one too many
        ["T-1", "A-C001", "B-C001", "ACME", 10, 100_00],  # no trade date
        ["T-1", "A-C001", "B-C001", "ACME", 10, 100_00, -1],  # a day before the epoch
        ["T-1", "A-C001", "B-C001", "ACME", 10, 100_00, 2**32],  # past a u32 day number
        ["T-1", "A-C001", "B-C001", "ACME", 10, 100_00, "2026-01-01"],  # a date as text
        [],
        ["T/1", "A-C001", "B-C001", "ACME", 10, 100_00, DAY],  # '/' would break key layout
        ["T-1", "A/C001", "B-C001", "ACME", 10, 100_00, DAY],
        ["T-1", "A-C001", "B-C001", "AC/ME", 10, 100_00, DAY],
        ["", "A-C001", "B-C001", "ACME", 10, 100_00, DAY],
        ["T" * 65, "A-C001", "B-C001", "ACME", 10, 100_00, DAY],
        [1, "A-C001", "B-C001", "ACME", 10, 100_00, DAY],
    ],
)
def test_bad_arguments_are_rejected(chain: Chain, args: list[Any]) -> None:
    with pytest.raises(InvalidTransaction) as exc:
        default_registry().prepare_call("settlement", "settle", args)
    assert exc.value.code == "bad_arguments"
    rejected(chain, unsignable_tx(chain, "xchg-alpha", "settlement", "settle", args), "bad_arguments")
    rejected(
        chain,
        unsignable_tx(chain, "xchg-alpha", "settlement", "settle_batch", [[GOOD, args]]),
        "bad_arguments",
    )
    # The nonce was not consumed: the next tx uses it.
    (receipt,) = ok(chain, trade(chain, *GOOD))
    assert committed_nonce(chain, "xchg-alpha") == 1


@pytest.mark.parametrize(
    "args",
    [
        [GOOD],  # a ticket, not a list of tickets
        [[["T-1"]]],  # a ticket of one field
        [[GOOD], [GOOD]],  # two arguments
        [GOOD[:1] + [GOOD]],  # a list holding a non-ticket
        ["tickets"],  # not a list
    ],
)
def test_bad_batch_shapes_are_rejected(chain: Chain, args: list[Any]) -> None:
    rejected(chain, chain.tx("xchg-alpha", "settlement", "settle_batch", args), "bad_arguments")


def test_a_float_never_decodes_from_the_wire() -> None:
    """Off the wire a float is refused before the schema sees it (tx_malformed)."""
    body = [devnet.CHAIN_ID, "xchg-alpha", 1, "settlement", "settle", GOOD[:4] + [10.0, 100_00], 0]
    sig = [bytes(32), bytes(64)]
    with pytest.raises(InvalidTransaction) as exc:
        SignedTx.decode(msgpack.packb([body, [sig]], use_bin_type=True))
    assert exc.value.code == "tx_malformed"


def test_unknown_method_and_contract(chain: Chain) -> None:
    rejected(chain, chain.tx("xchg-alpha", "settlement", "settle_all", [GOOD]), "unknown_method")
    rejected(chain, chain.tx("xchg-alpha", "settlement", "_settle_one", [GOOD]), "unknown_method")
    rejected(chain, chain.tx("xchg-alpha", "settlement", "init_genesis", [None]), "unknown_method")
    rejected(chain, chain.tx("xchg-alpha", "clearing", "settle", GOOD), "unknown_contract")
    ok(chain, trade(chain, *GOOD))


def test_failed_settle_consumes_the_nonce(chain: Chain) -> None:
    fails(chain, trade(chain, "T-1", "A-C001", "A-C001", "ACME", 1, 1), "same_account")
    stale = trade(chain, "T-2", "A-C001", "B-C001", "ACME", 1, 1)
    replay = Tx(
        chain.genesis.chain_id,
        "xchg-alpha",
        1,
        "settlement",
        "settle",
        ["T-3", "A-C001", "B-C001", "ACME", 1, 1, DAY],
        0,
    )
    rejected(chain, replay.sign(devnet.signing_keys("xchg-alpha")), "nonce_replayed")
    ok(chain, stale)


# === money =====================================================================================
@given(
    quantity=st.integers(1, QUANTITY_MAX),
    price=st.integers(1, PRICE_MAX),
    decimals=st.integers(0, 18),
)
@example(quantity=150, price=1001, decimals=2)  # the module docstring's example: 1502
@example(quantity=1, price=5, decimals=1)  # exactly a half
@example(quantity=QUANTITY_MAX, price=PRICE_MAX, decimals=0)
def test_consideration_rounds_half_up(quantity: int, price: int, decimals: int) -> None:
    exact = Fraction(quantity * price, 10**decimals)
    got = consideration(quantity, price, decimals)
    assert got == half_up(exact)
    assert abs(Fraction(got) - exact) <= Fraction(1, 2)
    if exact.denominator == 2:
        assert got == exact + Fraction(1, 2)


def test_consideration_docstring_example() -> None:
    assert consideration(150, 1001, 2) == 1502


@given(st.integers(1, 10**6), st.integers(1, 10**6), st.integers(0, 8))
def test_consideration_is_monotonic(quantity: int, price: int, decimals: int) -> None:
    c = consideration(quantity, price, decimals)
    assert consideration(quantity + 1, price, decimals) >= c
    assert consideration(quantity, price + 1, decimals) >= c
