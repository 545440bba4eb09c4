"""Escrow: hash-time-locked contracts (HTLCs) for cross-chain delivery versus payment.

An account's owner locks an amount of an asset for a recipient account under a *hash lock*
``H = sha256(s)`` and a *timeout height* ``T``. Until ``T`` anyone who knows the preimage ``s``
may claim it: the locked amount moves to the recipient and ``s`` is published (in state, in the
``escrow_claimed`` event and through the ``get`` view), so that the counterparty of a swap can
use the same ``s`` on another chain. From ``T`` on the escrow can only be refunded: a task
scheduled at ``T`` returns the amount to the sender automatically, so funds never stay stuck,
and the sender's owner may also refund it explicitly (useful if more than ``BLOCK_TASKS_MAX``
tasks fall due at one height and the task runs a block later). Exactly one of claim or refund
ever happens to an escrow. While it is open the amount sits in the sender's ``locked`` balance
(accounts.lock), so settlement, withdrawals or another escrow cannot spend it.

Two such locks with the same ``H`` on two chains make an atomic swap (docs/CONTRACTS.md, Escrow):
the secret holder locks first with the *longer* timeout; the counterparty locks second with a
shorter one; the secret holder claims the counterparty's lock, revealing ``s``; the counterparty
claims the first lock with ``s`` before the longer timeout.

State::

    escrow/esc/<id>               -> [from_account, to_account, asset, amount, hashlock,
                                      timeout_height, status, locked_by, locked_height,
                                      preimage | None, closed_height | None]
    escrow/acct/<account>/<id>    -> 1   (both sides' accounts: the ``list`` view)
    escrow/hash/<hashlock hex>/<id> -> 1 (the ``by_hashlock`` view: a swap's watcher finds a lock)

``status`` is ``locked``, ``claimed`` or ``refunded``. Escrow ids are global on a chain and
final: a closed escrow's id is never reused (its record keeps the preimage for the other chain).

Methods (who may call):
    lock(id, from_account, to_account, asset, amount, hashlock, timeout_height)
        the owner of ``from_account``;
    claim(id, preimage)   anyone (the amount can only go to the recipient account);
    refund(id)            the owner of ``from_account``, from the timeout height on.
Task: ``expire(id)`` at the timeout height: refunds the escrow if it is still locked.
Events: ``escrow_locked``, ``escrow_claimed`` (with the preimage), ``escrow_refunded``.

Failure codes: ``escrow_exists``, ``unknown_account``, ``account_suspended``,
``account_closed``, ``not_account_owner``, ``same_account``, ``unknown_instrument``,
``instrument_halted``, ``bad_timeout`` (not in ``height + timeout_blocks_min ..
height + timeout_blocks_max``), ``insufficient_balance``, ``unknown_escrow``, ``escrow_closed``,
``escrow_expired`` (claim at or after the timeout), ``bad_preimage``, ``escrow_not_expired``
(refund before the timeout), ``amount_overflow``. A preimage is exactly 32 bytes and a hash lock
32 bytes (other sizes are rejected transactions, ``bad_arguments``).

Rounding: none; amounts move whole, in minor units. Supply never changes: a lock moves
available to locked, a claim moves the sender's locked amount to the recipient's available, a
refund moves it back to the sender's available.

Parameters: ``timeout_blocks_min`` (default 1) and ``timeout_blocks_max`` (default 100,000):
how far ahead of the locking block a timeout may lie.
"""

from __future__ import annotations

import hashlib
from typing import Any, NamedTuple

from chain.limits import AMOUNT_MAX
from contracts import accounts, params
from contracts.api import Context, Contract, ContractError, method, required_query, task, view
from contracts.instruments import ACTIVE as INSTRUMENT_ACTIVE
from contracts.instruments import get_instrument
from contracts.params import Param
from contracts.schema import Bytes, Id, Int

NAME = "escrow"
LOCKED = "locked"
CLAIMED = "claimed"
REFUNDED = "refunded"
HASHLOCK_BYTES = 32
PREIMAGE_BYTES = 32
HEIGHT_MAX = 2**63 - 1
LIST_LIMIT_MAX = 100  # escrows one ``list`` / ``by_hashlock`` view returns

PARAMS = {
    "timeout_blocks_min": Param(1, 1, 1_000_000, "a lock's timeout is at least this many blocks ahead"),
    "timeout_blocks_max": Param(100_000, 1, 10_000_000, "a lock's timeout is at most this many blocks ahead"),
}


class EscrowRecord(NamedTuple):
    from_account: str
    to_account: str
    asset: str
    amount: int
    hashlock: bytes
    timeout_height: int
    status: str
    locked_by: str
    locked_height: int
    preimage: bytes | None
    closed_height: int | None


def compute_hashlock(preimage: bytes) -> bytes:
    """The hash lock that ``preimage`` opens: plain SHA-256, as any other chain computes it."""
    return hashlib.sha256(preimage).digest()


def get_escrow(ctx: Context, escrow_id: str) -> EscrowRecord | None:
    """The escrow's record, or None."""
    value = ctx.view(NAME).get("esc/" + escrow_id)
    return None if value is None else EscrowRecord(*value)


def _require_escrow(ctx: Context, escrow_id: str) -> EscrowRecord:
    record = get_escrow(ctx, escrow_id)
    if record is None:
        raise ContractError("unknown_escrow", f"no escrow {escrow_id}")
    if record.status != LOCKED:
        raise ContractError(
            "escrow_closed", f"escrow {escrow_id} was {record.status} at height {record.closed_height}"
        )
    return record


def _put(ctx: Context, escrow_id: str, record: EscrowRecord) -> None:
    ctx.view(NAME).put("esc/" + escrow_id, list(record))


def _check_lock(
    ctx: Context, escrow_id: str, source: str, target: str, asset: str, timeout_height: int
) -> None:
    """Every check of a lock, before any write."""
    if get_escrow(ctx, escrow_id) is not None:
        raise ContractError("escrow_exists", f"escrow {escrow_id} exists")
    record = accounts.require_active(ctx, source)
    if record.owner != ctx.sender:
        raise ContractError("not_account_owner", f"{ctx.sender} does not own {source}")
    if source == target:
        raise ContractError("same_account", f"{source} cannot lock for itself")
    accounts.require_active(ctx, target)
    ins = get_instrument(ctx, asset)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {asset}")
    if ins.status != INSTRUMENT_ACTIVE:
        raise ContractError("instrument_halted", f"{asset} is {ins.status}")
    low = ctx.height + params.get(ctx, NAME, "timeout_blocks_min")
    high = ctx.height + params.get(ctx, NAME, "timeout_blocks_max")
    if not low <= timeout_height <= high:
        raise ContractError(
            "bad_timeout", f"timeout {timeout_height} must be {low}..{high} at height {ctx.height}"
        )


def _refund(ctx: Context, escrow_id: str, record: EscrowRecord, by: str) -> None:
    """Return the locked amount to the sender's available balance and close the escrow."""
    accounts.unlock(ctx, record.from_account, record.asset, record.amount)
    _put(ctx, escrow_id, record._replace(status=REFUNDED, closed_height=ctx.height))
    ctx.view(NAME).emit(
        "escrow_refunded",
        id=escrow_id,
        from_account=record.from_account,
        asset=record.asset,
        amount=record.amount,
        by=by,
    )


def _escrow_json(escrow_id: str, record: EscrowRecord) -> dict[str, Any]:
    return {
        "id": escrow_id,
        "from_account": record.from_account,
        "to_account": record.to_account,
        "asset": record.asset,
        "amount": record.amount,
        "hashlock": record.hashlock.hex(),
        "timeout_height": record.timeout_height,
        "status": record.status,
        "locked_by": record.locked_by,
        "locked_height": record.locked_height,
        "preimage": None if record.preimage is None else record.preimage.hex(),
        "closed_height": record.closed_height,
    }


def _limit(query: dict[str, str]) -> int:
    text = query.get("limit", str(LIST_LIMIT_MAX))
    # isascii: str.isdigit also accepts digits int() refuses (superscripts: "²")
    if not (text.isascii() and text.isdigit()) or not 1 <= int(text) <= LIST_LIMIT_MAX:
        raise ContractError("bad_query", f"limit must be 1..{LIST_LIMIT_MAX}")
    return int(text)


def _page(ctx: Context, prefix: str, query: dict[str, str]) -> dict[str, Any]:
    """Up to ``limit`` escrows indexed under ``prefix``, in id order after ``after``."""
    limit = _limit(query)
    after = query.get("after")
    start = "" if not after else after + "\x00"
    out: list[dict[str, Any]] = []
    for key, _ in ctx.iterate(prefix, start):
        escrow_id = key[len(prefix) :]
        record = get_escrow(ctx, escrow_id)
        assert record is not None, f"index names unknown escrow {escrow_id}"
        out.append(_escrow_json(escrow_id, record))
        if len(out) >= limit:
            break
    return {"escrows": out, "next": out[-1]["id"] if len(out) == limit else None}


class Escrow(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(
        ("id", Id()),
        ("from_account", Id()),
        ("to_account", Id()),
        ("asset", Id()),
        ("amount", Int(1, AMOUNT_MAX)),
        ("hashlock", Bytes(HASHLOCK_BYTES)),
        ("timeout_height", Int(1, HEIGHT_MAX)),
    )
    def lock(
        self,
        ctx: Context,
        escrow_id: str,
        source: str,
        target: str,
        asset: str,
        amount: int,
        hashlock: bytes,
        timeout_height: int,
    ) -> None:
        """The owner of ``from_account`` locks ``amount`` of ``asset`` for ``to_account`` under
        ``hashlock`` until ``timeout_height``; a task refunds it then if nobody claimed it."""
        _check_lock(ctx, escrow_id, source, target, asset, timeout_height)
        accounts.lock(ctx, source, asset, amount, "insufficient_balance")
        record = EscrowRecord(
            source,
            target,
            asset,
            amount,
            hashlock,
            timeout_height,
            LOCKED,
            ctx.sender,
            ctx.height,
            None,
            None,
        )
        _put(ctx, escrow_id, record)
        ctx.put(f"acct/{source}/{escrow_id}", 1)
        ctx.put(f"acct/{target}/{escrow_id}", 1)
        ctx.put(f"hash/{hashlock.hex()}/{escrow_id}", 1)
        ctx.schedule("expire", escrow_id, at_height=timeout_height)
        ctx.emit(
            "escrow_locked",
            id=escrow_id,
            from_account=source,
            to_account=target,
            asset=asset,
            amount=amount,
            hashlock=hashlock,
            timeout_height=timeout_height,
            by=ctx.sender,
        )

    @method(("id", Id()), ("preimage", Bytes(PREIMAGE_BYTES)))
    def claim(self, ctx: Context, escrow_id: str, preimage: bytes) -> None:
        """Anyone with the preimage, before the timeout: the amount goes to the recipient and
        the preimage is published. The recipient's account may be suspended (the lock's promise
        holds), not closed."""
        record = _require_escrow(ctx, escrow_id)
        if ctx.height >= record.timeout_height:
            raise ContractError(
                "escrow_expired", f"escrow {escrow_id} timed out at height {record.timeout_height}"
            )
        if compute_hashlock(preimage) != record.hashlock:
            raise ContractError(
                "bad_preimage", f"sha256 of the preimage is not escrow {escrow_id}'s hash lock"
            )
        target = accounts.get_account(ctx, record.to_account)
        assert target is not None, f"escrow {escrow_id} names unknown account {record.to_account}"
        if target.status == accounts.CLOSED:
            raise ContractError("account_closed", f"account {record.to_account} is closed")
        accounts.debit_locked(ctx, record.from_account, record.asset, record.amount)
        accounts.credit(ctx, record.to_account, record.asset, record.amount)
        _put(ctx, escrow_id, record._replace(status=CLAIMED, preimage=preimage, closed_height=ctx.height))
        ctx.emit(
            "escrow_claimed",
            id=escrow_id,
            from_account=record.from_account,
            to_account=record.to_account,
            asset=record.asset,
            amount=record.amount,
            preimage=preimage,
            by=ctx.sender,
        )

    @method(("id", Id()))
    def refund(self, ctx: Context, escrow_id: str) -> None:
        """The sender's owner takes back an unclaimed escrow from its timeout height on."""
        record = _require_escrow(ctx, escrow_id)
        source = accounts.get_account(ctx, record.from_account)
        assert source is not None, f"escrow {escrow_id} names unknown account {record.from_account}"
        if source.owner != ctx.sender:
            raise ContractError("not_account_owner", f"{ctx.sender} does not own {record.from_account}")
        if ctx.height < record.timeout_height:
            raise ContractError(
                "escrow_not_expired", f"escrow {escrow_id} times out at height {record.timeout_height}"
            )
        _refund(ctx, escrow_id, record, ctx.sender)

    @task
    def expire(self, ctx: Context, escrow_id: str) -> None:
        """At the timeout height: refund the escrow if it is still locked (else nothing)."""
        record = get_escrow(ctx, escrow_id)
        if record is not None and record.status == LOCKED:
            _refund(ctx, escrow_id, record, "")

    @view
    def get(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?id=ID``: the escrow, with its preimage once claimed."""
        escrow_id = required_query(query, "id")
        record = get_escrow(ctx, escrow_id)
        if record is None:
            raise ContractError("unknown_escrow", f"no escrow {escrow_id!r}")
        return _escrow_json(escrow_id, record)

    @view
    def list(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?account=ID[&after=ESCROW][&limit=N]``: escrows from or to the account, by id."""
        account = required_query(query, "account")
        if accounts.get_account(ctx, account) is None:
            raise ContractError("unknown_account", f"no account {account!r}")
        return {"account": account, **_page(ctx, f"acct/{account}/", query)}

    @view
    def by_hashlock(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?hashlock=HEX[&after=ESCROW][&limit=N]``: escrows under that hash lock, by id."""
        text = required_query(query, "hashlock").lower()
        try:
            ok = len(bytes.fromhex(text)) == HASHLOCK_BYTES
        except ValueError:
            ok = False
        if not ok:
            raise ContractError("bad_query", f"hashlock must be {HASHLOCK_BYTES} bytes in hex")
        return {"hashlock": text, **_page(ctx, f"hash/{text}/", query)}
