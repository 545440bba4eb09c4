"""Clearing accounts and their balances.

A clearing member owns accounts: a ``house`` account for its own positions and segregated
``client`` accounts, one per client. Only the owner's key policy (through custody withdrawals) or
a contract rule (settlement, custody deposits) moves a balance: this contract offers no transfer
method at all, so the exchange, or the member itself, cannot move client assets any other way.

State::

    accounts/acct/<id>             -> [owner, kind, client, status, assets_held]
    accounts/bal/<id>/<asset>      -> [available, locked]      (absent = zero)
    accounts/holder/<asset>/<id>   -> 1                        (present iff the balance is non-zero)

``status`` is active, suspended or closed; ``assets_held`` counts the assets with a non-zero
balance, so closing (which needs every balance at zero) costs O(1). Locked amounts are reserved
for a pending withdrawal or an escrow and cannot be spent. The holder index lets a corporate
action or a margin run page through an asset's holders in account order without scanning every
balance; it changes only when a position opens or closes.

System accounts belong to a contract, not a participant: their owner is ``@<contract>`` (``@``
cannot start a participant id, so no key can ever sign for them). A contract opens them with
``open_system`` to hold what its rules hold: collateral, an insurance fund, a fund's basket.
The fixed ones are reserved (``SYSTEM_ACCOUNT_IDS``): a member who opened
``BOND-POOL`` first would otherwise receive every posted bond, and one who opened
``MARGIN-COLLATERAL`` would make every margin post fail. A fund's basket ``FUND-<id>`` is not:
``index_fund.create`` refuses a fund whose basket id is taken, so a member holding it only
keeps that one fund id from being used.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple

from chain.errors import GenesisError, invariant
from chain.genesis import ACCOUNT_KINDS, Genesis
from chain.limits import AMOUNT_MAX
from chain.state import BlockState, StateReader, decode_value
from contracts.api import Context, Contract, ContractError, method
from contracts.instruments import units_text
from contracts.membership import has_role, require_role
from contracts.schema import Id, OneOf, Optional

NAME = "accounts"
ACTIVE = "active"
SUSPENDED = "suspended"
CLOSED = "closed"
# The state layout (module docstring), spelled here once: every reader (API, proofs, reports,
# audit) builds keys with the functions below.
ACCOUNT_PREFIX = b"accounts/acct/"
BALANCE_PREFIX = b"accounts/bal/"
HOLDER_PREFIX = b"accounts/holder/"
SYSTEM_OWNER = "@"
# The fixed ids bonds and margin open with ``open_system``, which no participant may hold:
# ``open`` refuses them (``account_reserved``) and so does a genesis document.
SYSTEM_ACCOUNT_IDS = ("BOND-POOL", "CCP-INSURANCE", "MARGIN-COLLATERAL", "MARGIN-DEFAULTS", "MARGIN-GF")
_ACCT = ACCOUNT_PREFIX
_BAL = BALANCE_PREFIX
_HOLDER = HOLDER_PREFIX


def account_key(account: str) -> bytes:
    return _ACCT + account.encode()


def balance_key(account: str, asset: str) -> bytes:
    return _BAL + f"{account}/{asset}".encode()


def holder_key(asset: str, account: str) -> bytes:
    return _HOLDER + f"{asset}/{account}".encode()


class AccountRecord(NamedTuple):
    owner: str
    kind: str
    client: str | None
    status: str
    assets_held: int


def get_account(ctx: Context, account: str) -> AccountRecord | None:
    value = ctx.state.get(account_key(account))
    return None if value is None else AccountRecord(*value)


def account_in(state: StateReader, account: str) -> AccountRecord | None:
    """The account's record read from committed state (readers outside a call: API, audit)."""
    data = state.get_state(account_key(account))
    return None if data is None else AccountRecord(*decode_value(data))


def read_account(state: BlockState, account: str) -> AccountRecord | None:
    """The account's record from a state view (committed state, or a block's overlay)."""
    value = state.get(account_key(account))
    return None if value is None else AccountRecord(*value)


def balances_in(state: BlockState, account: str) -> list[tuple[str, int, int]]:
    """(asset, available, locked) of every non-zero balance of ``account``, in asset order. Bounded
    by the account's ``assets_held``."""
    prefix = _BAL + account.encode() + b"/"
    return [
        (key[len(prefix) :].decode(), available, locked) for key, (available, locked) in state.iterate(prefix)
    ]


def iterate_accounts(state: BlockState) -> Iterator[tuple[str, AccountRecord]]:
    """(id, record) of every account, in id order (reports: O(accounts))."""
    for key, value in state.iterate(_ACCT):
        yield key[len(_ACCT) :].decode(), AccountRecord(*value)


def iterate_balances(state: BlockState) -> Iterator[tuple[str, str, int, int]]:
    """(account, asset, available, locked) of every non-zero balance (reports: O(balances))."""
    for key, (available, locked) in state.iterate(_BAL):
        account, _, asset = key[len(_BAL) :].decode().partition("/")
        yield account, asset, available, locked


def require_active(ctx: Context, account: str) -> AccountRecord:
    """The account, failing with ``unknown_account`` or ``account_<status>`` otherwise."""
    record = get_account(ctx, account)
    if record is None:
        raise ContractError("unknown_account", f"no account {account}")
    if record.status != ACTIVE:
        raise ContractError(f"account_{record.status}", f"account {account} is {record.status}")
    return record


def balance(ctx: Context, account: str, asset: str) -> tuple[int, int]:
    """(available, locked) of ``asset`` in ``account``."""
    return balance_in(ctx.state, account, asset)


def balance_in(state: BlockState, account: str, asset: str) -> tuple[int, int]:
    """The same, read from any state (readers outside a call: CLI, API, tests)."""
    found: tuple[int, int] | None = state.get(balance_key(account, asset))
    return found or (0, 0)


def _set(ctx: Context, account: str, asset: str, old: tuple[int, int], available: int, locked: int) -> None:
    invariant(available >= 0 and locked >= 0, f"negative balance {account}/{asset}")
    if available > AMOUNT_MAX or locked > AMOUNT_MAX:
        raise ContractError(
            "amount_overflow", f"{account}/{asset} would exceed {units_text(ctx, AMOUNT_MAX, asset)}"
        )
    key = balance_key(account, asset)
    was_held = old[0] + old[1] > 0
    now_held = available + locked > 0
    if now_held:
        ctx.state.put(key, (available, locked))
    else:
        ctx.state.delete(key)
    if was_held != now_held:
        record = get_account(ctx, account)
        invariant(record is not None, f"balance on unknown account {account}")
        assert record is not None
        held = record.assets_held + (1 if now_held else -1)
        ctx.state.put(account_key(account), record._replace(assets_held=held))
        if now_held:
            ctx.state.put(holder_key(asset, account), 1)
        else:
            ctx.state.delete(holder_key(asset, account))


def holders(ctx: Context, asset: str, after: str | None, limit: int) -> list[tuple[str, int, int]]:
    """Up to ``limit`` (account, available, locked) holding ``asset``, in account order, after
    account ``after`` (None: from the first). Callers page with the last account returned."""
    prefix = _HOLDER + asset.encode() + b"/"
    out: list[tuple[str, int, int]] = []
    start = b"" if after is None else after.encode() + b"\x00"
    for key, _ in ctx.state.iterate(prefix, start):
        account = key[len(prefix) :].decode()
        available, locked = balance(ctx, account, asset)
        out.append((account, available, locked))
        if len(out) >= limit:
            break
    return out


def is_system_account_id(account: str) -> bool:
    """Whether ``account`` is reserved for a contract's system account."""
    return account in SYSTEM_ACCOUNT_IDS


def system_owner(contract: str) -> str:
    return SYSTEM_OWNER + contract


def open_system(ctx: Context, account: str) -> None:
    """Open (if absent) a house account owned by the calling contract, ``@<contract>``.
    Fails ``account_exists`` if a participant already owns an account of that id."""
    record = get_account(ctx, account)
    owner = system_owner(ctx.contract)
    if record is None:
        ctx.state.put(account_key(account), [owner, "house", None, ACTIVE, 0])
    elif record.owner != owner:
        raise ContractError("account_exists", f"account {account} belongs to {record.owner}")


def credit(ctx: Context, account: str, asset: str, amount: int) -> None:
    old = balance(ctx, account, asset)
    _set(ctx, account, asset, old, old[0] + amount, old[1])


def debit(ctx: Context, account: str, asset: str, amount: int, code: str) -> None:
    """Take ``amount`` of available ``asset``; fail with ``code`` if there is not enough."""
    old = balance(ctx, account, asset)
    if old[0] < amount:
        raise ContractError(
            code,
            f"{account} has {units_text(ctx, old[0], asset)} available, needs {units_text(ctx, amount, asset)}",
        )
    _set(ctx, account, asset, old, old[0] - amount, old[1])


def move(ctx: Context, source: str, target: str, asset: str, amount: int, code: str) -> None:
    """Move ``amount`` of available ``asset`` from ``source`` to ``target`` (one leg of a
    settlement); fail with ``code`` if ``source`` has too little. Reads each balance once."""
    state = ctx.state
    source_key = balance_key(source, asset)
    target_key = balance_key(target, asset)
    src = state.get(source_key) or (0, 0)
    if src[0] < amount:
        raise ContractError(
            code,
            f"{source} has {units_text(ctx, src[0], asset)} available, needs {units_text(ctx, amount, asset)}",
        )
    dst = state.get(target_key) or (0, 0)
    if dst[0] + amount > AMOUNT_MAX:
        raise ContractError(
            "amount_overflow", f"{target}/{asset} would exceed {units_text(ctx, AMOUNT_MAX, asset)}"
        )
    if src[0] == amount and src[1] == 0:
        _set(ctx, source, asset, src, 0, 0)  # the position closes: keep assets_held true
    else:
        state.put(source_key, (src[0] - amount, src[1]))
    if dst[0] or dst[1]:
        state.put(target_key, (dst[0] + amount, dst[1]))
    else:
        _set(ctx, target, asset, dst, amount, 0)  # a new position opens


def lock(ctx: Context, account: str, asset: str, amount: int, code: str) -> None:
    old = balance(ctx, account, asset)
    if old[0] < amount:
        raise ContractError(
            code,
            f"{account} has {units_text(ctx, old[0], asset)} available, needs {units_text(ctx, amount, asset)}",
        )
    _set(ctx, account, asset, old, old[0] - amount, old[1] + amount)


def unlock(ctx: Context, account: str, asset: str, amount: int) -> None:
    old = balance(ctx, account, asset)
    invariant(old[1] >= amount, f"unlocking more than is locked in {account}/{asset}")
    _set(ctx, account, asset, old, old[0] + amount, old[1] - amount)


def debit_locked(ctx: Context, account: str, asset: str, amount: int) -> None:
    old = balance(ctx, account, asset)
    invariant(old[1] >= amount, f"spending more than is locked in {account}/{asset}")
    _set(ctx, account, asset, old, old[0], old[1] - amount)


class Accounts(Contract):
    name = NAME

    def init_genesis(self, ctx: Context, genesis: Genesis) -> None:
        for a in genesis.accounts:
            if is_system_account_id(a.id):
                raise GenesisError(
                    "genesis_invalid", f"accounts: {a.id} is reserved for a contract's system account"
                )
            ctx.state.put(account_key(a.id), [a.owner, a.kind, a.client, ACTIVE, 0])

    @method(("id", Id()), ("kind", OneOf(ACCOUNT_KINDS)), ("client", Optional(Id())))
    def open(self, ctx: Context, account: str, kind: str, client: str | None) -> None:
        """A clearing member opens an account it owns."""
        require_role(ctx, "member")
        ctx.require(
            not is_system_account_id(account),
            "account_reserved",
            f"account id {account} is reserved for a contract's system account",
        )
        ctx.require(get_account(ctx, account) is None, "account_exists", f"account {account} exists")
        if kind == "client":
            ctx.require(client is not None, "client_required", "a client account names its client")
        else:
            ctx.require(client is None, "client_not_allowed", "a house account names no client")
        ctx.state.put(account_key(account), [ctx.sender, kind, client, ACTIVE, 0])
        ctx.emit("account_opened", id=account, owner=ctx.sender, kind=kind, client=client)

    @method(("id", Id()))
    def suspend(self, ctx: Context, account: str) -> None:
        record = self._owned_or_admin(ctx, account)
        ctx.require(
            record.status == ACTIVE, f"account_{record.status}", f"account {account} is {record.status}"
        )
        ctx.state.put(account_key(account), record._replace(status=SUSPENDED))
        ctx.emit("account_suspended", id=account, by=ctx.sender)

    @method(("id", Id()))
    def reinstate(self, ctx: Context, account: str) -> None:
        record = self._owned_or_admin(ctx, account)
        ctx.require(
            record.status == SUSPENDED, f"account_{record.status}", f"account {account} is {record.status}"
        )
        ctx.state.put(account_key(account), record._replace(status=ACTIVE))
        ctx.emit("account_reinstated", id=account, by=ctx.sender)

    @method(("id", Id()))
    def close(self, ctx: Context, account: str) -> None:
        record = self._owned_or_admin(ctx, account)
        ctx.require(record.status != CLOSED, "account_closed", f"account {account} is closed")
        ctx.require(
            record.assets_held == 0,
            "account_not_empty",
            f"account {account} holds {record.assets_held} assets",
        )
        ctx.state.put(account_key(account), record._replace(status=CLOSED))
        ctx.emit("account_closed", id=account, by=ctx.sender)

    @staticmethod
    def _owned_or_admin(ctx: Context, account: str) -> AccountRecord:
        record = get_account(ctx, account)
        if record is None:
            raise ContractError("unknown_account", f"no account {account}")
        if record.owner != ctx.sender and not has_role(ctx, ctx.sender, "admin"):
            raise ContractError("not_account_owner", f"{ctx.sender} does not own {account}")
        return record
