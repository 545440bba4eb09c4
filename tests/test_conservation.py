"""Conservation of assets, checked against an independent model of the ledger.

``LedgerMachine`` drives a fresh dev-genesis chain with random blocks of custody deposits and
withdrawals, single trades and batches (many of them failing, some malformed, some from the
wrong sender), account openings, suspensions and instrument halts. A small model predicts, on its
own, every transaction's fate (rejected with which code, or its receipt code and events) and every
balance. After every block:

* for every asset, the sum over all accounts of available + locked equals the custody supply, and
  the supply equals the genesis opening total plus confirmed deposits minus confirmed withdrawals;
* no balance is negative, and every balance equals the model's;
* each account's ``assets_held`` counter equals its number of non-zero balances.

``test_same_txs_same_chain_on_both_stores`` checks that one random transaction list gives the
same blocks, roots and state on the in-memory and the LevelDB store.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from chain.executor import CallEnv
from chain.genesis import parse_genesis
from chain.limits import AMOUNT_MAX
from chain.policy import nonce_key
from chain.state import decode_value
from chain.store import Store
from chain.tx import SignedTx
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts.accounts import HOLDER_PREFIX, get_account
from contracts.api import Context
from contracts.custody import supply
from tests.conftest import Chain

GENESIS = parse_genesis(devnet.dev_genesis_doc())
DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}
CURRENCY = {i["id"]: i.get("currency") for i in devnet.INSTRUMENTS}
ASSETS = sorted(DECIMALS)
SECURITIES = sorted(a for a in ASSETS if CURRENCY[a] is not None)
MEMBERS = ["member-a", "member-b"]
# Owners whose accounts may be a trade's buyer or seller (settlement: ``not_member_account``).
CLEARING_MEMBERS = {p for p, (roles, _, _) in devnet.participants(4).items() if "member" in roles}
PARTICIPANTS = list(devnet.PARTICIPANTS)
EXCHANGE = "xchg-alpha"
BAL_PREFIX = b"accounts/bal/"


def half_up(quantity: int, price: int, decimals: int) -> int:
    """The consideration, computed independently of contracts/money.py."""
    return math.floor(Fraction(quantity * price, 10**decimals) + Fraction(1, 2))


@dataclass
class Model:
    """What the ledger should hold, kept by this test alone."""

    accounts: dict[str, list[str]] = field(default_factory=dict)  # id -> [owner, status]
    bal: dict[tuple[str, str], list[int]] = field(default_factory=dict)  # -> [available, locked]
    opening: dict[str, int] = field(default_factory=dict)
    deposited: dict[str, int] = field(default_factory=dict)
    withdrawn: dict[str, int] = field(default_factory=dict)
    references: set[str] = field(default_factory=set)
    withdrawals: dict[int, list[Any]] = field(default_factory=dict)  # -> [acct, asset, amount, by, status]
    settled: set[str] = field(default_factory=set)  # trade ids settled by the exchange
    halted: set[str] = field(default_factory=set)

    @classmethod
    def at_genesis(cls) -> Model:
        m = cls()
        for a in devnet.all_accounts():
            m.accounts[a["id"]] = [a["owner"], "active"]
        for asset in ASSETS:
            m.opening[asset] = m.deposited[asset] = m.withdrawn[asset] = 0
        for account, asset, amount in devnet.all_balances():
            m.balance(account, asset)[0] += amount
            m.opening[asset] += amount
        return m

    def balance(self, account: str, asset: str) -> list[int]:
        return self.bal.setdefault((account, asset), [0, 0])

    def account_fault(self, account: str) -> str | None:
        """The code an operation needing an active ``account`` fails with, if any."""
        if account not in self.accounts:
            return "unknown_account"
        status = self.accounts[account][1]
        return None if status == "active" else f"account_{status}"


@dataclass
class Expected:
    """One tx and its predicted fate: rejected with ``rejected``, or a receipt ``code``/``events``."""

    stx: SignedTx
    rejected: str | None = None
    code: str = "ok"
    events: list[tuple[str, dict[str, Any]]] | None = None


def summarise(events: tuple[Any, ...]) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for _, name, fields in events:
        f = dict(fields)
        f.pop("message", None)  # human text; the code is what clients switch on
        out.append((name, f))
    return out


def one_in(data: st.DataObject, n: int) -> bool:
    """True about once in ``n`` draws (the rare, usually faulty, branch)."""
    return data.draw(st.sampled_from([False] * (n - 1) + [True]))


class LedgerMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain(Store.in_memory(), GENESIS)
        self.m = Model.at_genesis()
        self.serial = 0

    def fresh(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}{self.serial}"

    def tx(
        self, sender: str, contract: str, method: str, args: list[Any], rejected: str | None = None
    ) -> SignedTx:
        stx = self.chain.tx(sender, contract, method, args)
        if rejected is not None:
            self.chain.nonces[sender] -= 1  # a rejected tx leaves its nonce free
        return stx

    def account_choice(self, data: st.DataObject) -> str:
        return data.draw(st.sampled_from(sorted(self.m.accounts) * 3 + ["NOPE"]))

    # --- builders: each draws one tx, predicts its fate and updates the model ---------------
    def build_deposit(self, data: st.DataObject) -> Expected:
        m = self.m
        sender = data.draw(st.sampled_from(["custodian"] * 4 + ["member-a", "xchg-alpha", "admin"]))
        account = self.account_choice(data)
        asset = data.draw(st.sampled_from(ASSETS + ["NOPE"]))
        amount = data.draw(st.integers(1, 10**12))
        if m.references and data.draw(st.booleans()):
            reference = data.draw(st.sampled_from(sorted(m.references)))
        else:
            reference = self.fresh("wire-")
        fault = data.draw(st.sampled_from([None] * 9 + ["zero", "negative", "bad_ref"]))
        if fault is not None:
            amount = {"zero": 0, "negative": -amount}.get(fault, amount)
            reference = reference + "/x" if fault == "bad_ref" else reference
            args = [account, asset, amount, reference]
            return Expected(
                self.tx(sender, "custody", "deposit", args, "bad_arguments"), rejected="bad_arguments"
            )
        stx = self.tx(sender, "custody", "deposit", [account, asset, amount, reference])
        if sender != "custodian":
            return Expected(stx, code="not_custodian")
        if asset not in DECIMALS:
            return Expected(stx, code="unknown_instrument")
        if (fault := m.account_fault(account)) is not None:
            return Expected(stx, code=fault)
        if reference in m.references:
            return Expected(stx, code="duplicate_deposit")
        m.balance(account, asset)[0] += amount
        m.deposited[asset] += amount
        m.references.add(reference)
        fields = {
            "account": account,
            "asset": asset,
            "amount": amount,
            "reference": reference,
            "custodian": sender,
        }
        return Expected(stx, events=[("deposited", fields)])

    def build_withdrawal_request(self, data: st.DataObject) -> Expected:
        m = self.m
        account = self.account_choice(data)
        owner = m.accounts[account][0] if account in m.accounts else "member-a"
        sender = data.draw(st.sampled_from([owner] * 6 + MEMBERS + ["custodian"]))
        held = sorted(s for (a, s), (avail, _) in m.bal.items() if a == account and avail > 0)
        asset = data.draw(st.sampled_from(held if held and not one_in(data, 5) else ASSETS))
        available = m.bal.get((account, asset), [0, 0])[0]
        amount = data.draw(
            st.sampled_from(["fits"] * 4 + ["over", "any"]).flatmap(
                lambda k: {
                    "fits": st.integers(1, max(1, available)),
                    "over": st.just(available + 1),
                    "any": st.integers(1, 10**12),
                }[k]
            )
        )
        if one_in(data, 10):
            args = [account, asset, 0]
            return Expected(
                self.tx(sender, "custody", "request_withdrawal", args, "bad_arguments"),
                rejected="bad_arguments",
            )
        stx = self.tx(sender, "custody", "request_withdrawal", [account, asset, amount])
        if (fault := m.account_fault(account)) is not None:
            return Expected(stx, code=fault)
        if m.accounts[account][0] != sender:
            return Expected(stx, code="not_account_owner")
        if available < amount:
            return Expected(stx, code="insufficient_balance")
        bal = m.balance(account, asset)
        bal[0] -= amount
        bal[1] += amount
        wid = len(m.withdrawals) + 1
        m.withdrawals[wid] = [account, asset, amount, sender, "pending"]
        fields = {"id": wid, "account": account, "asset": asset, "amount": amount}
        return Expected(stx, events=[("withdrawal_requested", fields)])

    def build_withdrawal_resolution(self, data: st.DataObject) -> Expected:
        m = self.m
        pending = sorted(w for w, r in m.withdrawals.items() if r[4] == "pending")
        if pending and not one_in(data, 4):
            wid = data.draw(st.sampled_from(pending))
        elif m.withdrawals and not one_in(data, 2):
            wid = data.draw(st.sampled_from(sorted(m.withdrawals)))
        else:
            wid = data.draw(st.integers(1, len(m.withdrawals) + 1))
        action = data.draw(st.sampled_from(["confirm", "reject", "cancel"]))
        record = m.withdrawals.get(wid)
        if action == "cancel":
            requester = record[3] if record else "member-a"
            sender = data.draw(st.sampled_from([requester] * 3 + MEMBERS + ["custodian"]))
            stx = self.tx(sender, "custody", "cancel_withdrawal", [wid])
        else:
            sender = data.draw(st.sampled_from(["custodian"] * 4 + ["member-a"]))
            args = [wid] if action == "confirm" else [wid, "screening"]
            stx = self.tx(sender, "custody", f"{action}_withdrawal", args)
            if sender != "custodian":
                return Expected(stx, code="not_custodian")
        if record is None:
            return Expected(stx, code="unknown_withdrawal")
        if record[4] != "pending":
            return Expected(stx, code="withdrawal_not_pending")
        account, asset, amount, by, _ = record
        if action == "cancel" and sender != by:
            return Expected(stx, code="not_requester")
        bal = m.balance(account, asset)
        bal[1] -= amount
        if action == "confirm":
            m.withdrawn[asset] += amount
            record[4] = "confirmed"
            fields = {"id": wid, "account": account, "asset": asset, "amount": amount, "custodian": sender}
            return Expected(stx, events=[("withdrawn", fields)])
        bal[0] += amount
        record[4] = "rejected" if action == "reject" else "cancelled"
        if action == "reject":
            return Expected(stx, events=[("withdrawal_rejected", {"id": wid, "reason": "screening"})])
        return Expected(stx, events=[("withdrawal_cancelled", {"id": wid})])

    def draw_ticket(self, data: st.DataObject, batch_ids: list[str]) -> list[Any]:
        """A ticket that often settles: the seller is usually a holder and the quantity usually
        fits, but every field is sometimes wrong."""
        m = self.m
        pool = sorted(m.settled) + batch_ids
        if pool and one_in(data, 4):
            trade_id = data.draw(st.sampled_from(pool))
        else:
            trade_id = self.fresh("T")
        iid = data.draw(st.sampled_from(SECURITIES * 4 + ["USD", "NOPE"]))
        holders = sorted(a for (a, s), (avail, _) in m.bal.items() if s == iid and avail > 0)
        if holders and not one_in(data, 4):
            seller = data.draw(st.sampled_from(holders))
        else:
            seller = self.account_choice(data)
        buyer = data.draw(st.sampled_from([seller] + sorted(m.accounts) * 4 + ["NOPE"]))
        held = m.bal.get((seller, iid), [0, 0])[0]
        kind = data.draw(st.sampled_from(["fits"] * 6 + ["any"] * 3 + ["non-positive"]))
        if kind == "non-positive":
            quantity = data.draw(st.integers(-1, 0))
        elif kind == "fits":
            quantity = data.draw(st.integers(1, max(1, held)))
        else:
            quantity = data.draw(st.integers(1, 10**9))
        if one_in(data, 10):
            price = data.draw(st.integers(-1, 0))
        else:
            price = data.draw(st.one_of(st.integers(1, 500_00), st.integers(1, 10**7)))
        return [trade_id, buyer, seller, iid, quantity, price, DAY]

    def settle_in_model(self, ticket: list[Any]) -> tuple[str, dict[str, Any]]:
        """Apply ``ticket`` to the model; (event name, fields) as the contract should emit."""
        m = self.m
        trade_id, buyer, seller, iid, quantity, price, _ = ticket

        def failed(code: str) -> tuple[str, dict[str, Any]]:
            return "trade_failed", {"trade_id": trade_id, "code": code}

        if trade_id in m.settled:
            return failed("duplicate_trade_id")
        if quantity <= 0:
            return failed("bad_quantity")
        if price <= 0:
            return failed("bad_price")
        if iid not in DECIMALS:
            return failed("unknown_instrument")
        currency = CURRENCY[iid]
        if currency is None:
            return failed("instrument_is_cash")
        if iid in m.halted:
            return failed("instrument_halted")
        if buyer == seller:
            return failed("same_account")
        for account in (buyer, seller):
            if (fault := m.account_fault(account)) is not None:
                return failed(fault)
            if m.accounts[account][0] not in CLEARING_MEMBERS:
                return failed("not_member_account")
        cash = half_up(quantity, price, DECIMALS[iid])
        if cash > AMOUNT_MAX:
            return failed("amount_overflow")
        if cash == 0:
            return failed("zero_consideration")
        if m.bal.get((seller, iid), [0, 0])[0] < quantity:
            return failed("insufficient_securities")
        if m.bal.get((buyer, currency), [0, 0])[0] < cash:
            return failed("insufficient_cash")
        m.balance(seller, iid)[0] -= quantity
        m.balance(buyer, iid)[0] += quantity
        m.balance(buyer, currency)[0] -= cash
        m.balance(seller, currency)[0] += cash
        m.settled.add(trade_id)
        return "trade_settled", {
            "trade_id": trade_id,
            "buyer": buyer,
            "seller": seller,
            "instrument": iid,
            "quantity": quantity,
            "price": price,
            "consideration": cash,
        }

    def build_trade(self, data: st.DataObject) -> Expected:
        sender = data.draw(st.sampled_from([EXCHANGE] * 5 + ["member-a", "custodian"]))
        ticket = self.draw_ticket(data, [])
        if one_in(data, 10):
            index = data.draw(st.sampled_from([0, 1, 2, 3, 4, 5]))
            bad = ["x/y", "", None, 7] if index < 4 else ["10", None, True, 2**63]
            ticket[index] = data.draw(st.sampled_from(bad))
            return Expected(
                self.tx(sender, "settlement", "settle", ticket, "bad_arguments"), rejected="bad_arguments"
            )
        stx = self.tx(sender, "settlement", "settle", ticket)
        if sender != EXCHANGE:
            return Expected(stx, code="not_exchange")
        name, fields = self.settle_in_model(ticket)
        if name == "trade_failed":
            return Expected(stx, code=fields["code"])
        return Expected(stx, events=[(name, fields)])

    def build_batch(self, data: st.DataObject) -> Expected:
        sender = data.draw(st.sampled_from([EXCHANGE] * 5 + ["member-a"]))
        tickets: list[list[Any]] = []
        for _ in range(data.draw(st.integers(1, 4))):
            tickets.append(self.draw_ticket(data, [t[0] for t in tickets]))
        if one_in(data, 10):
            tickets[-1] = tickets[-1][:5]  # wrong arity
            return Expected(
                self.tx(sender, "settlement", "settle_batch", [tickets], "bad_arguments"),
                rejected="bad_arguments",
            )
        stx = self.tx(sender, "settlement", "settle_batch", [tickets])
        if sender != EXCHANGE:
            return Expected(stx, code="not_exchange")
        events, seen = [], set()
        for ticket in tickets:
            if ticket[0] in seen:
                events.append(("trade_failed", {"trade_id": ticket[0], "code": "duplicate_trade_id"}))
            else:
                events.append(self.settle_in_model(ticket))
            seen.add(ticket[0])
        settled = sum(1 for name, _ in events if name == "trade_settled")
        events.append(
            ("batch_settled", {"trades": len(tickets), "settled": settled, "failed": len(tickets) - settled})
        )
        return Expected(stx, events=events)

    def build_open_account(self, data: st.DataObject) -> Expected:
        m = self.m
        sender = data.draw(st.sampled_from(MEMBERS * 3 + ["xchg-alpha"]))
        account = data.draw(st.sampled_from([self.fresh("N")] * 3 + sorted(m.accounts)))
        kind, client = data.draw(
            st.sampled_from([("house", None), ("client", "c-1"), ("client", None), ("house", "c-2")])
        )
        stx = self.tx(sender, "accounts", "open", [account, kind, client])
        if sender not in MEMBERS:
            return Expected(stx, code="not_member")
        if account in m.accounts:
            return Expected(stx, code="account_exists")
        if kind == "client" and client is None:
            return Expected(stx, code="client_required")
        if kind == "house" and client is not None:
            return Expected(stx, code="client_not_allowed")
        m.accounts[account] = [sender, "active"]
        return Expected(
            stx, events=[("account_opened", {"id": account, "owner": sender, "kind": kind, "client": client})]
        )

    def build_account_status(self, data: st.DataObject) -> Expected:
        m = self.m
        account = self.account_choice(data)
        owner = m.accounts[account][0] if account in m.accounts else "member-a"
        sender = data.draw(st.sampled_from([owner] * 3 + ["admin", "member-a", "member-b", "custodian"]))
        method = data.draw(st.sampled_from(["suspend", "reinstate", "reinstate", "close"]))
        stx = self.tx(sender, "accounts", method, [account])
        if account not in m.accounts:
            return Expected(stx, code="unknown_account")
        if sender != owner and sender != "admin":
            return Expected(stx, code="not_account_owner")
        status = m.accounts[account][1]
        if method == "suspend" and status != "active" or method == "reinstate" and status != "suspended":
            return Expected(stx, code=f"account_{status}")
        if method == "close":
            if status == "closed":
                return Expected(stx, code="account_closed")
            if any(avail or locked for (acct, _), (avail, locked) in m.bal.items() if acct == account):
                return Expected(stx, code="account_not_empty")
        new_status = {"suspend": "suspended", "reinstate": "active", "close": "closed"}[method]
        m.accounts[account][1] = new_status
        name = {"suspend": "account_suspended", "reinstate": "account_reinstated", "close": "account_closed"}[
            method
        ]
        return Expected(stx, events=[(name, {"id": account, "by": sender})])

    def build_halt(self, data: st.DataObject) -> Expected:
        m = self.m
        iid = data.draw(st.sampled_from(SECURITIES + ["NOPE"]))
        halt = data.draw(st.booleans())
        stx = self.tx("admin", "instruments", "halt" if halt else "resume", [iid, "test"] if halt else [iid])
        if iid not in DECIMALS:
            return Expected(stx, code="unknown_instrument")
        if halt and iid in m.halted:
            return Expected(stx, code="instrument_halted")
        if not halt and iid not in m.halted:
            return Expected(stx, code="instrument_active")
        if halt:
            m.halted.add(iid)
            return Expected(stx, events=[("instrument_halted", {"id": iid, "reason": "test"})])
        m.halted.discard(iid)
        return Expected(stx, events=[("instrument_resumed", {"id": iid, "reason": "admin"})])

    def build_wrong_signer(self, data: st.DataObject) -> Expected:
        """A tx signed by keys outside the sender's policy never enters a block."""
        sender = data.draw(st.sampled_from(["custodian", EXCHANGE, "member-a"]))
        stx = self.chain.tx(
            sender, "accounts", "open", ["N-x", "house", None], keys=devnet.signing_keys("member-b")
        )
        self.chain.nonces[sender] -= 1
        return Expected(stx, rejected="signer_not_in_policy")

    # --- running a block --------------------------------------------------------------------
    def run(self, expected: list[Expected]) -> None:
        block, result = self.chain.run(*(e.stx for e in expected))
        assert [(r.tx, r.error.code) for r in result.rejected] == [
            (e.stx, e.rejected) for e in expected if e.rejected
        ]
        included = [e for e in expected if e.rejected is None]
        assert block.txs == tuple(e.stx for e in included)
        assert len(result.receipts) == len(included)
        for e, receipt in zip(included, result.receipts, strict=True):
            assert receipt.code == e.code, (e.stx.tx, receipt.message)
            if e.code != "ok":
                assert receipt.events == ()
            elif e.events is not None:
                assert summarise(receipt.events) == e.events, e.stx.tx
        state = self.chain.state()
        for pid in PARTICIPANTS:
            self.chain.nonces[pid] = state.get(nonce_key(pid)) or 0

    @rule(data=st.data())
    def deposit(self, data: st.DataObject) -> None:
        self.run([self.build_deposit(data)])

    @rule(data=st.data())
    def request_withdrawal(self, data: st.DataObject) -> None:
        self.run([self.build_withdrawal_request(data)])

    @rule(data=st.data())
    def resolve_withdrawal(self, data: st.DataObject) -> None:
        self.run([self.build_withdrawal_resolution(data)])

    @rule(data=st.data())
    def settle(self, data: st.DataObject) -> None:
        self.run([self.build_trade(data)])

    @rule(data=st.data())
    def settle_batch(self, data: st.DataObject) -> None:
        self.run([self.build_batch(data)])

    @rule(data=st.data())
    def manage_accounts(self, data: st.DataObject) -> None:
        builder = data.draw(
            st.sampled_from([self.build_open_account, self.build_account_status, self.build_halt])
        )
        self.run([builder(data)])

    @rule(data=st.data())
    def mixed_block(self, data: st.DataObject) -> None:
        builders = [
            self.build_deposit,
            self.build_withdrawal_request,
            self.build_withdrawal_resolution,
            self.build_trade,
            self.build_trade,
            self.build_batch,
            self.build_open_account,
            self.build_account_status,
            self.build_wrong_signer,
        ]
        n = data.draw(st.integers(2, 4))
        self.run([data.draw(st.sampled_from(builders))(data) for _ in range(n)])

    # --- invariants -------------------------------------------------------------------------
    @invariant()
    def assets_are_conserved(self) -> None:
        onchain: dict[tuple[str, str], tuple[int, int]] = {}
        for key, value in self.chain.store.iterate_state(BAL_PREFIX):
            account, asset = key[len(BAL_PREFIX) :].decode().split("/")
            available, locked = decode_value(value)
            assert available >= 0 and locked >= 0, (account, asset)
            assert available + locked > 0, f"a zero balance is stored for {account}/{asset}"
            onchain[(account, asset)] = (available, locked)
        expected = {k: (v[0], v[1]) for k, v in self.m.bal.items() if v[0] or v[1]}
        assert onchain == expected
        # The holder index names exactly the non-zero positions (contracts/accounts.py).
        holders = {
            tuple(reversed(key[len(HOLDER_PREFIX) :].decode().split("/")))
            for key, _ in self.chain.store.iterate_state(HOLDER_PREFIX)
        }
        assert holders == set(onchain)
        assert {acct for acct, _ in onchain} <= set(self.m.accounts)
        ctx = Context(self.chain.state(), CallEnv(GENESIS.chain_id, 0, 0, b""), "", "custody")
        for asset in ASSETS:
            total = sum(sum(self.chain.balance(acct, asset)) for acct in self.m.accounts)
            m = self.m
            assert (
                total == supply(ctx, asset) == m.opening[asset] + m.deposited[asset] - m.withdrawn[asset]
            ), asset

    @invariant()
    def account_records_match(self) -> None:
        ctx = Context(self.chain.state(), CallEnv(GENESIS.chain_id, 0, 0, b""), "", "accounts")
        for account, (owner, status) in self.m.accounts.items():
            record = get_account(ctx, account)
            assert record is not None and (record.owner, record.status) == (owner, status), account
            held = sum(
                1
                for (acct, _), (avail, locked) in self.m.bal.items()
                if acct == account and avail + locked > 0
            )
            assert record.assets_held == held, account


LedgerMachine.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
TestLedgerMachine = LedgerMachine.TestCase


# --- the same transactions on both stores ---------------------------------------------------
ACCOUNT_IDS = [a["id"] for a in devnet.all_accounts()] + ["NEW-1", "NOPE"]
tickets = st.lists(
    st.builds(
        list,
        st.tuples(
            st.sampled_from(["T1", "T2", "T3", "T4"]),
            st.sampled_from(ACCOUNT_IDS),
            st.sampled_from(ACCOUNT_IDS),
            st.sampled_from(SECURITIES + ["USD"]),
            st.integers(0, 10**6),
            st.integers(0, 10**6),
        ),
    ),
    min_size=1,
    max_size=3,
)
calls = st.one_of(
    st.tuples(
        st.sampled_from(["custodian", "member-a"]),
        st.just("custody"),
        st.just("deposit"),
        st.tuples(
            st.sampled_from(ACCOUNT_IDS),
            st.sampled_from(ASSETS),
            st.integers(0, 10**9),
            st.sampled_from(["R1", "R2", "R3"]),
        ),
    ),
    st.tuples(
        st.sampled_from(MEMBERS),
        st.just("custody"),
        st.just("request_withdrawal"),
        st.tuples(st.sampled_from(ACCOUNT_IDS), st.sampled_from(ASSETS), st.integers(0, 10**9)),
    ),
    st.tuples(
        st.sampled_from(["custodian", "member-a"]),
        st.just("custody"),
        st.just("confirm_withdrawal"),
        st.tuples(st.integers(1, 3)),
    ),
    st.tuples(
        st.sampled_from(["custodian"]),
        st.just("custody"),
        st.just("reject_withdrawal"),
        st.tuples(st.integers(1, 3), st.just("no")),
    ),
    st.tuples(
        st.sampled_from(MEMBERS),
        st.just("custody"),
        st.just("cancel_withdrawal"),
        st.tuples(st.integers(1, 3)),
    ),
    st.tuples(
        st.sampled_from([EXCHANGE, "member-b"]),
        st.just("settlement"),
        st.just("settle"),
        tickets.map(lambda t: tuple(t[0])),
    ),
    st.tuples(
        st.sampled_from([EXCHANGE]),
        st.just("settlement"),
        st.just("settle_batch"),
        tickets.map(lambda t: (t,)),
    ),
    st.tuples(
        st.sampled_from(MEMBERS),
        st.just("accounts"),
        st.sampled_from(["open"]),
        st.just(("NEW-1", "house", None)),
    ),
    st.tuples(
        st.sampled_from(MEMBERS + ["admin"]),
        st.just("accounts"),
        st.sampled_from(["suspend", "reinstate", "close"]),
        st.tuples(st.sampled_from(ACCOUNT_IDS)),
    ),
)
blocks = st.lists(st.lists(calls, min_size=1, max_size=4), min_size=1, max_size=6)


@settings(max_examples=15, deadline=None)
@given(blocks)
def test_same_txs_same_chain_on_both_stores(
    blocks: list[list[tuple[str, str, str, tuple[Any, ...]]]],
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        chains = [Chain(Store.in_memory(), GENESIS), Chain(Store.open_leveldb(Path(tmp) / "db"), GENESIS)]
        try:
            for calls_ in blocks:
                produced = []
                for chain in chains:
                    txs = [chain.tx(s, c, m, list(a)) for s, c, m, a in calls_]
                    block, result = chain.run(*txs)
                    produced.append(
                        (
                            block.hash(),
                            block.header.state_root,
                            block.header.receipts_root,
                            [r.encode() for r in result.receipts],
                            [r.error.code for r in result.rejected],
                        )
                    )
                    state = chain.state()
                    for pid in PARTICIPANTS:
                        chain.nonces[pid] = state.get(nonce_key(pid)) or 0
                assert produced[0] == produced[1]
            memory, leveldb = (dict(c.store.iterate_state(b"")) for c in chains)
            assert memory == leveldb
            assert chains[0].ledger.head == chains[1].ledger.head
        finally:
            chains[1].store.close()
