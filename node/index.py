"""The account-history index: every movement of every account's balances, by account and height.

Why it exists: the chain stores state (the balances now) and receipts (what happened in each
block), but "what moved in account A-C001 since height 1000" would mean reading every receipt of
the chain. So each node keeps a local LevelDB at ``<home>/index``, fed one block at a time from
the runtime's commit listeners and read by ``GET /accounts/{id}/history``.

It is a *cache*, never consensus data: nothing hashes or signs it, and it can always be rebuilt
from the store's blocks and receipts. On open it checks that the block it last indexed is still
the store's block at that height (same hash) and wipes itself otherwise; a node that starts with
an index behind the store (new, deleted, or a crash between the store's write and the index's)
catches up from the store in the background, a bounded number of blocks per turn of the loop.

Movements come from receipts of successful transactions and tasks, in block order:

- ``trade_settled``: the buyer gets +quantity of the instrument and -consideration of its
  currency; the seller the opposite. Each names the other account as counterparty.
- ``deposited``: +amount (ref: the custodian's reference).
- ``withdrawal_requested``: two rows, delta -amount and locked_delta +amount (ref: the id).
- ``withdrawn``: locked_delta -amount.
- ``withdrawal_cancelled`` / ``withdrawal_rejected``: locked_delta -amount and delta +amount.
  Their events carry only the withdrawal id, so the index remembers each pending withdrawal's
  account, asset and amount from its ``withdrawal_requested`` event.

It also keeps what state does not: the trades that *failed* on chain (a failed trade leaves no
record in the settlement contract, so that the exchange may send it again), so that "did T-1
fail, and why?" has an answer (``GET /trades/{exchange}/{trade_id}``). A failed ``settle``
transaction names its trade in the transaction's arguments, a failed ``settle_batch`` every
ticket of its arguments, and a successful batch each failed ticket in a ``trade_failed`` event;
the exchange is the transaction's sender. T+N trades the same way (``cycles.submit``,
``submit_batch`` and its ``trade_refused`` events), and a T+N trade its cycle's close failed from
the task's ``trade_failed`` event (no tx hash). The latest failure of an id is kept; a settled record
in state wins over it (the API reads state first). The pending withdrawals (``w/``), in id
order, are the queue ``GET /withdrawals?status=pending`` pages through; ``wr/`` remembers each
withdrawal's request height, which custody state overwrites when the withdrawal is final.

Layout (integers big-endian, so keys sort by height or id)::

    meta/version -> b"3"                 meta/head -> [height, block hash]
    m/<account>/<height u64><seq u32>    -> [tx hash or nil, receipt index, event, asset,
                                             "delta" | "locked_delta", amount, ref, counterparty]
    w/<withdrawal id u64>                -> [account, asset, amount]   (while pending)
    wr/<withdrawal id u64>               -> height of the request
    f/<exchange>/<trade id>              -> [height, tx hash or nil, receipt index, code, message]

Version 2 added ``wr/`` and ``f/``, version 3 the T+N failures in ``f/``: an index of an older
version is wiped and rebuilt from the store.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Final, NamedTuple

import plyvel

from chain.block import Block
from chain.block_pruning import is_height_pruned, pruned_error
from chain.encoding import decode, encode, encode_trusted
from chain.errors import StoreError
from chain.ids import is_valid_id
from chain.limits import BATCH_TRADES_MAX
from chain.receipt import KIND_TX, Receipt
from chain.store import Store
from chain.tx import SignedTx
from contracts.custody import withdrawal_in
from contracts.instruments import instrument_in

INDEX_DIR = "index"
VERSION = b"3"
CATCH_UP_BLOCKS_PER_TURN = 256  # blocks indexed before yielding to the event loop
HISTORY_LIMIT_MAX = 1_000

_VERSION_KEY = b"meta/version"
_HEAD_KEY = b"meta/head"
_MOVE = b"m/"
_WITHDRAWAL = b"w/"
_REQUESTED = b"wr/"
_FAILED_TRADE = b"f/"

DELTA = "delta"
LOCKED_DELTA = "locked_delta"

WithdrawalInfo = tuple[str, str, int]  # account, asset, amount


class FailedTrade(NamedTuple):
    """A trade ticket that failed on chain: where, and why."""

    exchange: str
    trade_id: str
    tx: bytes | None  # None: a cycle's close failed it (a task)
    index: int  # type: ignore[assignment]  # the receipt's position in the block (as Movement)
    code: str
    message: str


class Movement(NamedTuple):
    """One change of one account's available (``delta``) or locked (``locked_delta``) balance.
    A named tuple: a block of trades makes four per trade, and a tuple is built ~5x faster than a
    frozen dataclass."""

    account: str
    height: int
    seq: int  # position among the block's movements: keys stay unique and in block order
    tx: bytes | None  # the transaction's hash; None for a scheduled task
    # A field named like tuple.index: mypy flags it, the runtime does not care; callers read m.index.
    index: int  # type: ignore[assignment]  # the receipt's position in the block
    event: str
    asset: str
    field: str  # DELTA or LOCKED_DELTA
    amount: int  # signed
    ref: str
    counterparty: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "tx": None if self.tx is None else self.tx.hex(),
            "index": self.index,
            "event": self.event,
            "asset": self.asset,
            self.field: self.amount,
            "ref": self.ref,
            "counterparty": self.counterparty,
        }


def compute_movements(
    height: int,
    receipts: Iterable[Receipt],
    currency_of: Callable[[str], str | None],
    withdrawal_of: Callable[[int], WithdrawalInfo | None],
) -> tuple[list[Movement], dict[int, WithdrawalInfo | None]]:
    """The movements of one block's receipts, and the changes to the pending-withdrawal table
    (id -> info, or None once it is final). Pure: reads go through the two callables."""
    out: list[Movement] = []
    withdrawals: dict[int, WithdrawalInfo | None] = {}

    def lookup(wid: int) -> WithdrawalInfo | None:
        return withdrawals[wid] if wid in withdrawals else withdrawal_of(wid)

    def add(
        account: str,
        tx: bytes | None,
        index: int,
        event: str,
        asset: str,
        field: str,
        amount: int,
        ref: str,
        other: str | None = None,
    ) -> None:
        out.append(Movement(account, height, len(out), tx, index, event, asset, field, amount, ref, other))

    for index, receipt in enumerate(receipts):
        if not receipt.ok:
            continue  # a failed call changed no balance
        tx = receipt.ref if receipt.kind == KIND_TX else None
        for contract, name, field_pairs in receipt.events:
            f = dict(field_pairs)
            if contract == "settlement" and name == "trade_settled":
                currency = currency_of(f["instrument"])
                buyer, seller, ref = f["buyer"], f["seller"], f["trade_id"]
                add(buyer, tx, index, name, f["instrument"], DELTA, f["quantity"], ref, seller)
                if currency is not None:
                    add(buyer, tx, index, name, currency, DELTA, -f["consideration"], ref, seller)
                add(seller, tx, index, name, f["instrument"], DELTA, -f["quantity"], ref, buyer)
                if currency is not None:
                    add(seller, tx, index, name, currency, DELTA, f["consideration"], ref, buyer)
            elif contract != "custody":
                continue
            elif name == "deposited":
                add(f["account"], tx, index, name, f["asset"], DELTA, f["amount"], f["reference"])
            elif name == "withdrawal_requested":
                wid, info = f["id"], (f["account"], f["asset"], f["amount"])
                withdrawals[wid] = info
                add(info[0], tx, index, name, info[1], DELTA, -info[2], str(wid))
                add(info[0], tx, index, name, info[1], LOCKED_DELTA, info[2], str(wid))
            elif name == "withdrawn":
                wid = f["id"]
                withdrawals[wid] = None
                add(f["account"], tx, index, name, f["asset"], LOCKED_DELTA, -f["amount"], str(wid))
            elif name in ("withdrawal_cancelled", "withdrawal_rejected"):
                wid = f["id"]
                found = lookup(wid)
                withdrawals[wid] = None
                if found is not None:
                    account, asset, amount = found
                    add(account, tx, index, name, asset, LOCKED_DELTA, -amount, str(wid))
                    add(account, tx, index, name, asset, DELTA, amount, str(wid))
    return out, withdrawals


# Calls that carry trade tickets: (contract, method) -> whether the tickets are a list in args[0]
# (a batch) or the args themselves (one ticket). Gross settlement and cycles share trade ids.
_TICKET_CALLS: Final = {
    ("settlement", "settle"): False,
    ("settlement", "settle_batch"): True,
    ("cycles", "submit"): False,
    ("cycles", "submit_batch"): True,
}
# Events of a successful batch naming one ticket that failed inside it.
_TICKET_FAILED_EVENTS: Final = {("settlement", "trade_failed"), ("cycles", "trade_refused")}


def compute_failed_trades(txs: Iterable[SignedTx], receipts: Iterable[Receipt]) -> list[FailedTrade]:
    """The trade tickets of one block that failed, in block order (a later entry for the same
    id is the later failure). Pure. Transactions pair with their receipts by position (tx
    receipts come first, in block order) and are checked by hash; a ticket whose trade id is not
    an id (a call refused by the schema) names no trade and is skipped. A T+N trade that its
    cycle's close failed (a task's ``trade_failed`` event) is recorded with no tx."""
    out: list[FailedTrade] = []
    signed = list(txs)
    for index, receipt in enumerate(receipts):
        if receipt.kind != KIND_TX:
            for contract, name, field_pairs in receipt.events:
                if (contract, name) == ("cycles", "trade_failed"):
                    f = dict(field_pairs)
                    why = f"failed at the close of cycle {f['date']}: {f['account']} was short"
                    out.append(FailedTrade(f["exchange"], f["trade_id"], None, index, f["code"], why))
            continue
        if index >= len(signed) or receipt.ref != signed[index].hash:
            continue
        stx = signed[index]
        tx = stx.tx
        batch = _TICKET_CALLS.get((tx.contract, tx.method))
        if batch is None:
            continue
        exchange = tx.sender
        if not receipt.ok:
            tickets: list[Any] = [tx.args]
            if batch:
                first = tx.args[0] if tx.args else None
                tickets = list(first[:BATCH_TRADES_MAX]) if isinstance(first, (list, tuple)) else []
            for ticket in tickets:
                if isinstance(ticket, (list, tuple)) and ticket and is_valid_id(ticket[0]):
                    out.append(
                        FailedTrade(exchange, ticket[0], stx.hash, index, receipt.code, receipt.message)
                    )
        elif batch:
            for contract, name, field_pairs in receipt.events:
                if (contract, name) in _TICKET_FAILED_EVENTS:
                    f = dict(field_pairs)
                    out.append(FailedTrade(exchange, f["trade_id"], stx.hash, index, f["code"], f["message"]))
    return out


def _failed_key(exchange: str, trade_id: str) -> bytes:
    # Ids never hold "/" (chain/ids.py), so the key names one (exchange, trade id) pair.
    return _FAILED_TRADE + f"{exchange}/{trade_id}".encode()


def _u64(n: int) -> bytes:
    return n.to_bytes(8, "big")


def _move_prefix(account: str) -> bytes:
    # Ids never hold "/" (chain/ids.py), so one account's prefix is never another's.
    return _MOVE + account.encode() + b"/"


class AccountIndex:
    """The index of one node. Every method runs on the node's event loop."""

    def __init__(self, path: Path, store: Store, log: logging.Logger) -> None:
        self.path = path
        self.store = store
        self.log = log
        self.height = 0
        self._db: Any = None
        self._catch_up_task: asyncio.Task[None] | None = None
        self._currencies: dict[str, str | None] = {}
        self._open()

    # --- life -----------------------------------------------------------------------------
    def _open(self) -> None:
        try:
            self._db = self._open_db()
        except plyvel.CorruptionError as exc:
            self.log.warning("account index at %s unusable (%s): rebuilding it", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            self._db = self._open_db()
        if not self._matches_store():
            self._wipe()

    def _open_db(self) -> Any:
        # Like the store: no snappy (its CPU showed in every block's profile), a larger memtable.
        return plyvel.DB(
            str(self.path), create_if_missing=True, compression=None, write_buffer_size=16 * 1024 * 1024
        )

    def _matches_store(self) -> bool:
        """Whether what is indexed is a prefix of the store's chain (same version and the same
        block at the indexed height). Sets ``height``."""
        version, head = self._db.get(_VERSION_KEY), self._db.get(_HEAD_KEY)
        if version is None and head is None:
            self._db.put(_VERSION_KEY, VERSION)  # a new index
            return True
        if version != VERSION:
            return False
        if head is None:
            return True
        height, block_hash = decode(head)
        header = self.store.header(height)
        if header is None or header.hash() != block_hash:
            self.log.warning("account index at height %d is not on the store's chain: rebuilding it", height)
            return False
        self.height = height
        return True

    def _wipe(self) -> None:
        self._db.close()
        shutil.rmtree(self.path, ignore_errors=True)
        self._db = self._open_db()
        self._db.put(_VERSION_KEY, VERSION)
        self.height = 0

    def close(self) -> None:
        if self._catch_up_task is not None:
            self._catch_up_task.cancel()
            self._catch_up_task = None
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def closed(self) -> bool:
        return self._db is None

    # --- keeping up -----------------------------------------------------------------------
    def on_commit(self, block: Block, receipts: tuple[Receipt, ...]) -> None:
        """A commit listener: index the block just written, or catch up if behind."""
        if self.closed:
            return
        if block.height == self.height + 1:
            self._index_block(block.height, block.hash(), block.txs, receipts)
        elif block.height > self.height + 1:
            self.start_catch_up()

    def start_catch_up(self) -> None:
        """Index the store's blocks after ``height`` in the background (once at a time)."""
        if self.closed or (self._catch_up_task is not None and not self._catch_up_task.done()):
            return
        self._catch_up_task = asyncio.get_running_loop().create_task(self._catch_up())

    async def _catch_up(self) -> None:
        head = self.store.head()
        target = 0 if head is None else head.height
        if target > self.height:
            self.log.info("account index: catching up from height %d to %d", self.height, target)
        while not self.closed:
            head = self.store.head()
            target = 0 if head is None else head.height
            if self.height >= target:
                return
            try:
                self.catch_up_some(target, CATCH_UP_BLOCKS_PER_TURN)
            except StoreError as exc:
                self.log.warning("account index: cannot catch up: %s: %s", exc.code, exc.message)
                return
            except Exception:
                self.log.exception("account index: catching up failed at height %d", self.height + 1)
                return
            await asyncio.sleep(0)

    def catch_up_some(self, target: int, blocks_max: int) -> None:
        """Index up to ``blocks_max`` of the store's blocks after ``height``, up to ``target``."""
        for height in range(self.height + 1, min(target, self.height + blocks_max) + 1):
            block = self.store.block(height)
            receipts = self.store.receipts(height)
            if block is None or receipts is None:
                if is_height_pruned(self.store, height):
                    # storage.keep_blocks dropped what this index still needs: it cannot catch up.
                    raise pruned_error(self.store, height)
                return
            self._index_block(height, block.hash(), block.txs, receipts)

    def _index_block(
        self, height: int, block_hash: bytes, txs: Sequence[SignedTx], receipts: Sequence[Receipt]
    ) -> None:
        movements, withdrawals = compute_movements(height, receipts, self._currency_of, self._withdrawal_of)
        failed = compute_failed_trades(txs, receipts)
        at = _u64(height)
        with self._db.write_batch() as batch:  # no fsync: a lost tail is re-indexed at start
            for m in movements:
                # The value is [tx, index, event, asset, field, amount, ref, counterparty]: the
                # movement's fields after (account, height, seq); a tuple packs as an array.
                batch.put(_move_prefix(m.account) + at + m.seq.to_bytes(4, "big"), encode_trusted(m[3:]))
            for wid, info in withdrawals.items():
                if info is None:
                    batch.delete(_WITHDRAWAL + _u64(wid))
                else:
                    batch.put(_WITHDRAWAL + _u64(wid), encode(list(info)))
            for m in movements:
                if m.event == "withdrawal_requested" and m.field == DELTA:
                    batch.put(_REQUESTED + _u64(int(m.ref)), encode(height))
            for t in failed:
                batch.put(
                    _failed_key(t.exchange, t.trade_id), encode([height, t.tx, t.index, t.code, t.message])
                )
            batch.put(_HEAD_KEY, encode([height, block_hash]))
        self.height = height

    def _currency_of(self, instrument: str) -> str | None:
        # An instrument's currency never changes once listed, so the head's state answers for
        # any height, and the answer can be kept.
        if instrument not in self._currencies:
            record = instrument_in(self.store, instrument)
            self._currencies[instrument] = None if record is None else record.currency
        return self._currencies[instrument]

    def _withdrawal_of(self, wid: int) -> WithdrawalInfo | None:
        data = self._db.get(_WITHDRAWAL + _u64(wid))
        if data is not None:
            account, asset, amount = decode(data)
            return account, asset, amount
        # Not remembered (an index older than the request?): the custody record never changes
        # its account, asset or amount, so the head's state answers.
        record = withdrawal_in(self.store, wid)
        if record is None:
            return None
        return record.account, record.asset, record.amount

    # --- reading --------------------------------------------------------------------------
    def history(self, account: str, from_height: int, limit: int) -> tuple[list[dict[str, Any]], int | None]:
        """Movements of ``account`` from ``from_height`` on, oldest first, whole heights only:
        (movements, the height the next page starts at or None). A page holds at most ``limit``
        movements, except that a single height with more is returned whole."""
        assert not self.closed
        prefix = _move_prefix(account)
        out: list[dict[str, Any]] = []
        group: list[dict[str, Any]] = []
        group_height = -1
        next_from: int | None = None
        stop = prefix[:-1] + bytes([prefix[-1] + 1])
        with self._db.iterator(start=prefix + _u64(from_height), stop=stop) as rows:
            for key, value in rows:
                height = int.from_bytes(key[len(prefix) : len(prefix) + 8], "big")
                if height != group_height and group:
                    if out and len(out) + len(group) > limit:
                        next_from = group_height
                        group = []
                        break
                    out.extend(group)
                    group = []
                    if len(out) >= limit:
                        next_from = height
                        break
                group_height = height
                tx, index, event, asset, field, amount, ref, other = decode(value)
                group.append(
                    Movement(account, height, 0, tx, index, event, asset, field, amount, ref, other).to_json()
                )
        if group:
            if out and len(out) + len(group) > limit:
                next_from = group_height
            else:
                out.extend(group)
        return out, next_from

    def failed_trade(self, exchange: str, trade_id: str) -> dict[str, Any] | None:
        """The latest on-chain failure of ``trade_id`` from ``exchange``, or None."""
        assert not self.closed
        data = self._db.get(_failed_key(exchange, trade_id))
        if data is None:
            return None
        height, tx, index, code, message = decode(data)
        return {
            "height": height,
            "tx": None if tx is None else tx.hex(),
            "index": index,
            "code": code,
            "message": message,
        }

    def pending_withdrawals(self, after: int, limit: int) -> list[int]:
        """Up to ``limit`` ids of pending withdrawals after id ``after``, in id order."""
        assert not self.closed
        out: list[int] = []
        start = _WITHDRAWAL + _u64(after + 1)
        with self._db.iterator(start=start, stop=_WITHDRAWAL[:-1] + b"0", include_value=False) as keys:
            for key in keys:
                out.append(int.from_bytes(key[len(_WITHDRAWAL) :], "big"))
                if len(out) >= limit:
                    break
        return out

    def requested_height(self, wid: int) -> int | None:
        """The height withdrawal ``wid`` was requested at, if this index saw the request."""
        assert not self.closed
        data = self._db.get(_REQUESTED + _u64(wid))
        return None if data is None else int(decode(data))
