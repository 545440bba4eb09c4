"""The mempool: signed transactions waiting for a block.

Admission runs the executor's own checks (``Executor.check_transaction``: chain id, expiry, call
shape, the sender's key policy and signatures) against committed state, with one difference: a
sender may queue several transactions, so the nonce a new one needs is the next after its last
*pending* one. So the mempool never admits what a block would reject, and a transaction's
signatures are verified once per node: the hashes admitted here are passed to the executor as
already verified.

Bounded by count, bytes and transactions per sender; when full it refuses (``mempool_full``)
rather than evict, as CometBFT does. Every refusal carries a stable code; the most recent
refusals are remembered by tx hash, so a client asking about its transaction hears why, never an
endless "pending". After each block, ``update`` removes what it included and whatever it made
invalid (replayed nonces, expiry).
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from chain.errors import InvalidTransaction
from chain.executor import Executor
from chain.policy import nonce_key
from chain.state import BlockState, StateReader
from chain.tx import SignedTx

MEMPOOL_TXS_MAX = 50_000
MEMPOOL_BYTES_MAX = 256 * 1024 * 1024
SENDER_PENDING_MAX = 10_000
REJECTIONS_REMEMBERED_MAX = 100_000


@dataclass(frozen=True, slots=True)
class PendingTx:
    tx: SignedTx
    size: int
    seq: int  # arrival order


class MempoolRefusal(InvalidTransaction):
    """A transaction the mempool will not hold (full, duplicate, or invalid)."""


class Mempool:
    def __init__(
        self,
        executor: Executor,
        committed: StateReader,
        *,
        txs_max: int = MEMPOOL_TXS_MAX,
        bytes_max: int = MEMPOOL_BYTES_MAX,
        sender_max: int = SENDER_PENDING_MAX,
    ) -> None:
        self.executor = executor
        self.committed = committed
        self.txs_max = txs_max
        self.bytes_max = bytes_max
        self.sender_max = sender_max
        self._by_hash: dict[bytes, PendingTx] = {}
        self._by_sender: dict[str, list[PendingTx]] = {}  # nonce order
        self._bytes = 0
        self._seq = 0
        self.rejected: OrderedDict[bytes, tuple[str, str]] = OrderedDict()  # hash -> (code, message)
        self.verified: set[bytes] = set()

    def __len__(self) -> int:
        return len(self._by_hash)

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._by_hash

    def last_pending_nonce(self, sender: str) -> int | None:
        """The nonce of ``sender``'s latest pending transaction (a new one must follow it)."""
        queue = self._by_sender.get(sender)
        return queue[-1].tx.tx.nonce if queue else None

    def add(self, stx: SignedTx, size: int, next_height: int) -> None:
        """Admit ``stx`` (``size`` bytes encoded) for a block at ``next_height``.

        Raises MempoolRefusal: ``duplicate``, ``mempool_full``, ``sender_queue_full``, or any
        InvalidTransaction code of the executor's checks; the refusal is remembered.
        """
        try:
            self._admit(stx, size, next_height)
        except InvalidTransaction as exc:
            self._remember(stx.hash, exc.code, exc.message)
            if isinstance(exc, MempoolRefusal):
                raise
            raise MempoolRefusal(exc.code, exc.message) from exc

    def _admit(self, stx: SignedTx, size: int, next_height: int) -> None:
        if stx.hash in self._by_hash:
            raise MempoolRefusal("duplicate", "this transaction is already pending")
        if len(self._by_hash) >= self.txs_max or self._bytes + size > self.bytes_max:
            raise MempoolRefusal(
                "mempool_full", f"{len(self._by_hash)} txs, {self._bytes} bytes pending; try again later"
            )
        sender = stx.tx.sender
        queue = self._by_sender.get(sender, [])
        if len(queue) >= self.sender_max:
            raise MempoolRefusal("sender_queue_full", f"{sender} has {len(queue)} pending transactions")
        state = BlockState(self.committed)
        pending = self.last_pending_nonce(sender)
        if pending is not None:
            # The nonce must follow the sender's last pending transaction.
            state.begin()
            state.put(nonce_key(sender), pending)
            state.commit_tx()
        self.executor.check_transaction(stx, state, next_height)
        self._seq += 1
        entry = PendingTx(stx, size, self._seq)
        self._by_hash[stx.hash] = entry
        self._by_sender.setdefault(sender, []).append(entry)
        self._bytes += size
        self.verified.add(stx.hash)
        self.rejected.pop(stx.hash, None)

    def reap(self, txs_max: int, bytes_max: int) -> list[SignedTx]:
        """Up to ``txs_max`` transactions (``bytes_max`` bytes, but always the first) for a
        proposal, in arrival order. Admission made each sender's nonces contiguous in arrival
        order, so every one applies."""
        out: list[SignedTx] = []
        used = 0
        for pending in self._by_hash.values():  # insertion order = arrival order
            if len(out) >= txs_max or (out and used + pending.size > bytes_max):
                break
            out.append(pending.tx)
            used += pending.size
        return out

    def update(self, included: list[SignedTx] | tuple[SignedTx, ...], next_height: int) -> None:
        """A block was written: drop its transactions, and pending ones it made invalid
        (a nonce it used, or expiry before ``next_height``), remembering why."""
        for stx in included:
            self._drop(stx.hash)
        state = BlockState(self.committed)
        for sender in sorted(self._by_sender):
            last = state.get(nonce_key(sender)) or 0
            for pending in list(self._by_sender.get(sender, [])):
                tx = pending.tx.tx
                if tx.nonce <= last:
                    self._drop(
                        pending.tx.hash,
                        ("nonce_replayed", f"nonce {tx.nonce} was used by a committed transaction"),
                    )
                elif tx.valid_until_height and tx.valid_until_height < next_height:
                    self._drop(pending.tx.hash, ("expired", f"valid until height {tx.valid_until_height}"))

    def remove(self, tx_hash: bytes, code: str, message: str) -> None:
        """Drop a transaction the proposer found invalid (e.g. its sender's keys were rotated)."""
        self._drop(tx_hash, (code, message))

    def _drop(self, tx_hash: bytes, reason: tuple[str, str] | None = None) -> None:
        """Remove a pending tx: included in a block (``reason`` None), made stale by a committed
        transaction that used its nonce (no gap: later nonces still apply), or refused for any
        other reason, which leaves a gap, so the sender's later nonces go too."""
        pending = self._by_hash.pop(tx_hash, None)
        if pending is None:
            return
        self._forget(pending)
        sender = pending.tx.tx.sender
        queue = self._by_sender[sender]
        index = queue.index(pending)
        if reason is None or reason[0] == "nonce_replayed":
            del queue[index]
            if reason is not None:
                self._remember(tx_hash, *reason)
        else:
            for later in queue[index + 1 :]:
                self._by_hash.pop(later.tx.hash, None)
                self._forget(later)
                self._remember(later.tx.hash, "nonce_gap", f"an earlier nonce of {sender} was dropped")
            del queue[index:]
            self._remember(tx_hash, *reason)
        if not queue:
            del self._by_sender[sender]

    def _forget(self, pending: PendingTx) -> None:
        self._bytes -= pending.size
        self.verified.discard(pending.tx.hash)

    def _remember(self, tx_hash: bytes, code: str, message: str) -> None:
        self.rejected[tx_hash] = (code, message)
        self.rejected.move_to_end(tx_hash)
        while len(self.rejected) > REJECTIONS_REMEMBERED_MAX:
            self.rejected.popitem(last=False)
