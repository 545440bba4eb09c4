"""Custody: deposits and withdrawals attested by a custodian, the only way an asset's total
supply changes.

A deposit is attested by a custodian with its external reference (a bank transfer or wallet
transaction id), which can be attested only once. A withdrawal needs both sides: the account's
owner requests it under its key policy, which locks the amount; a custodian then confirms it
(the locked amount leaves the ledger) or rejects it (the amount is unlocked); the owner may
cancel it while it is pending.

A custodian also attests, from time to time, what it holds off the ledger for each asset (its
bank or wallet statement): the latest attestation is kept so that anyone can compare it with the
client balances on the ledger (contracts/reserves.py, ``GET /reserves``). It moves nothing.

State::

    custody/supply/<asset>         -> total of the asset held on the ledger
    custody/deposit/<reference>    -> [account, asset, amount, height]
    custody/withdrawal/<id>        -> [account, asset, amount, requested_by, status, height]
    custody/withdrawal_seq         -> last withdrawal id
    custody/reserve/<asset>        -> [amount, reference, height, custodian]  (the latest attestation)

Lifetime: a final withdrawal (confirmed, rejected or cancelled; ``height`` is then the height it
became final) is kept ``final_withdrawal_days`` days of block time, then removed by the task
``forget_withdrawal(id)`` scheduled when it became final; afterwards its id is
``unknown_withdrawal``. Ids come from ``withdrawal_seq`` and are never reused, and the receipts
keep its whole history. A pending withdrawal is kept until it is final.

Invariant (tested): for every asset, supply == sum over accounts of available + locked.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from chain.genesis import Genesis
from chain.limits import AMOUNT_MAX
from chain.state import BlockState, StateReader, decode_value
from contracts import accounts
from contracts.api import Context, Contract, ContractError, method, task
from contracts.instruments import get_instrument, units_text
from contracts.membership import require_role
from contracts.params import Param, get
from contracts.schema import Id, Int, Text

NAME = "custody"
PENDING = "pending"
CONFIRMED = "confirmed"
REJECTED = "rejected"
CANCELLED = "cancelled"
DAY_MS = 86_400_000

PARAMS = {
    "final_withdrawal_days": Param(
        30, 1, 3_660, "days of block time a final withdrawal stays readable before it is removed"
    ),
}


SUPPLY_PREFIX = b"custody/supply/"
WITHDRAWAL_PREFIX = b"custody/withdrawal/"
RESERVE_PREFIX = b"custody/reserve/"


def supply_key(asset: str) -> bytes:
    return SUPPLY_PREFIX + asset.encode()


def withdrawal_key(wid: int) -> bytes:
    return WITHDRAWAL_PREFIX + str(wid).encode()


def reserve_key(asset: str) -> bytes:
    return RESERVE_PREFIX + asset.encode()


class WithdrawalRecord(NamedTuple):
    account: str
    asset: str
    amount: int
    requested_by: str
    status: str
    height: int


class ReserveRecord(NamedTuple):
    """A custodian's latest attestation of what it holds of an asset off the ledger."""

    amount: int
    reference: str
    height: int
    custodian: str


def withdrawal_in(state: StateReader, wid: int) -> WithdrawalRecord | None:
    """Withdrawal ``wid`` read from committed state (readers outside a call: the API's index)."""
    data = state.get_state(withdrawal_key(wid))
    return None if data is None else WithdrawalRecord(*decode_value(data))


def read_supply(state: BlockState, asset: str) -> int:
    """The ledger supply of ``asset`` from a state view (0 if none)."""
    total: int | None = state.get(supply_key(asset))
    return total or 0


def read_reserve(state: BlockState, asset: str) -> ReserveRecord | None:
    """The latest reserve attestation of ``asset`` from a state view, or None."""
    record = state.get(reserve_key(asset))
    return None if record is None else ReserveRecord(*record)


def supply(ctx: Context, asset: str) -> int:
    return read_supply(ctx.state, asset)


def _change_supply(ctx: Context, asset: str, delta: int) -> None:
    total = read_supply(ctx.state, asset) + delta
    if total > AMOUNT_MAX:
        raise ContractError(
            "amount_overflow", f"supply of {asset} would exceed {units_text(ctx, AMOUNT_MAX, asset)}"
        )
    ctx.state.put(supply_key(asset), total)


def issue(ctx: Context, account: str, asset: str, amount: int) -> None:
    """Create ``amount`` of ``asset`` in ``account`` by a contract rule that changes supply by
    design (a stock split, index-fund units created against a delivered basket). The caller
    emits the event that says why; supply stays equal to the sum of balances."""
    assert amount > 0
    accounts.credit(ctx, account, asset, amount)
    _change_supply(ctx, asset, amount)


def retire(ctx: Context, account: str, asset: str, amount: int, code: str) -> None:
    """Remove ``amount`` of available ``asset`` from ``account`` and from supply (fund units
    redeemed, shares consolidated); fails with ``code`` if the account has too little."""
    assert amount > 0
    accounts.debit(ctx, account, asset, amount, code)
    _change_supply(ctx, asset, -amount)


def _finalize(ctx: Context, wid: int, record: WithdrawalRecord, status: str) -> None:
    """Write withdrawal ``wid`` final and schedule its removal (the record's lifetime)."""
    account, asset, amount, by, _, _ = record
    ctx.state.put(withdrawal_key(wid), [account, asset, amount, by, status, ctx.height])
    days = get(ctx, NAME, "final_withdrawal_days")
    ctx.schedule("forget_withdrawal", wid, at_time_ms=ctx.time_ms + days * DAY_MS)


class Custody(Contract):
    name = NAME
    PARAMS = PARAMS

    def init_genesis(self, ctx: Context, genesis: Genesis) -> None:
        totals: dict[str, int] = {}
        for b in genesis.balances:
            accounts.credit(ctx, b.account, b.asset, b.amount)
            totals[b.asset] = totals.get(b.asset, 0) + b.amount
        for asset in sorted(totals):
            ctx.state.put(supply_key(asset), totals[asset])

    @method(("account", Id()), ("asset", Id()), ("amount", Int(1, AMOUNT_MAX)), ("reference", Id()))
    def deposit(self, ctx: Context, account: str, asset: str, amount: int, reference: str) -> None:
        require_role(ctx, "custodian")
        ctx.require(get_instrument(ctx, asset) is not None, "unknown_instrument", f"no instrument {asset}")
        accounts.require_active(ctx, account)
        ctx.require(
            ctx.get("deposit/" + reference) is None,
            "duplicate_deposit",
            f"deposit {reference} was already attested",
        )
        accounts.credit(ctx, account, asset, amount)
        _change_supply(ctx, asset, amount)
        ctx.put("deposit/" + reference, [account, asset, amount, ctx.height])
        ctx.emit(
            "deposited",
            account=account,
            asset=asset,
            amount=amount,
            reference=reference,
            custodian=ctx.sender,
        )

    @method(("asset", Id()), ("amount", Int(0, AMOUNT_MAX)), ("reference", Id()))
    def attest_reserves(self, ctx: Context, asset: str, amount: int, reference: str) -> None:
        """A custodian attests that it holds ``amount`` minor units of ``asset`` off the ledger,
        per its statement ``reference``. Replaces the previous attestation for the asset."""
        require_role(ctx, "custodian")
        ctx.require(get_instrument(ctx, asset) is not None, "unknown_instrument", f"no instrument {asset}")
        ctx.state.put(reserve_key(asset), [amount, reference, ctx.height, ctx.sender])
        ctx.emit("reserves_attested", asset=asset, amount=amount, reference=reference, custodian=ctx.sender)

    @method(("account", Id()), ("asset", Id()), ("amount", Int(1, AMOUNT_MAX)))
    def request_withdrawal(self, ctx: Context, account: str, asset: str, amount: int) -> None:
        record = accounts.require_active(ctx, account)
        ctx.require(record.owner == ctx.sender, "not_account_owner", f"{ctx.sender} does not own {account}")
        accounts.lock(ctx, account, asset, amount, "insufficient_balance")
        wid = (ctx.get("withdrawal_seq") or 0) + 1
        ctx.put("withdrawal_seq", wid)
        ctx.state.put(withdrawal_key(wid), [account, asset, amount, ctx.sender, PENDING, ctx.height])
        ctx.emit("withdrawal_requested", id=wid, account=account, asset=asset, amount=amount)

    @method(("id", Int(1, 2**63 - 1)))
    def confirm_withdrawal(self, ctx: Context, wid: int) -> None:
        require_role(ctx, "custodian")
        record = self._pending(ctx, wid)
        account, asset, amount = record.account, record.asset, record.amount
        accounts.debit_locked(ctx, account, asset, amount)
        _change_supply(ctx, asset, -amount)
        _finalize(ctx, wid, record, CONFIRMED)
        ctx.emit("withdrawn", id=wid, account=account, asset=asset, amount=amount, custodian=ctx.sender)

    @method(("id", Int(1, 2**63 - 1)), ("reason", Text(256)))
    def reject_withdrawal(self, ctx: Context, wid: int, reason: str) -> None:
        require_role(ctx, "custodian")
        record = self._pending(ctx, wid)
        accounts.unlock(ctx, record.account, record.asset, record.amount)
        _finalize(ctx, wid, record, REJECTED)
        ctx.emit("withdrawal_rejected", id=wid, reason=reason)

    @method(("id", Int(1, 2**63 - 1)))
    def cancel_withdrawal(self, ctx: Context, wid: int) -> None:
        record = self._pending(ctx, wid)
        by = record.requested_by
        ctx.require(by == ctx.sender, "not_requester", f"withdrawal {wid} was requested by {by}")
        accounts.unlock(ctx, record.account, record.asset, record.amount)
        _finalize(ctx, wid, record, CANCELLED)
        ctx.emit("withdrawal_cancelled", id=wid)

    @task
    def forget_withdrawal(self, ctx: Context, payload: Any) -> None:
        """Remove a final withdrawal whose lifetime has passed (nothing if it is gone)."""
        key = withdrawal_key(int(payload))
        found = ctx.state.get(key)
        if found is not None and found[4] != PENDING:
            ctx.state.delete(key)

    @staticmethod
    def _pending(ctx: Context, wid: int) -> WithdrawalRecord:
        found = ctx.state.get(withdrawal_key(wid))
        record = None if found is None else WithdrawalRecord(*found)
        if record is None:
            raise ContractError("unknown_withdrawal", f"no withdrawal {wid}")
        if record[4] != PENDING:
            raise ContractError("withdrawal_not_pending", f"withdrawal {wid} is {record[4]}")
        return record
