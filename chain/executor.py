"""The block executor: the state transition of the ledger.

``execute`` applies a block's transactions in order against committed state (each one: chain id,
call shape, expiry, the sender's key policy and signatures, nonce; then the contract call, whose
failure gives a failed receipt and no writes), runs the scheduled tasks that fell due, and
returns receipts, the state diff and the roots. It writes nothing: the caller compares the roots
with a header and only then has the store write the diff (execute to a diff, then commit).

The executor knows contracts only through the ``ContractRuntime`` protocol, so ``chain`` never
imports a concrete contract.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from dataclasses import dataclass
from typing import Any, Final, Protocol

from chain.errors import ContractError, EncodingError, InvalidBlock, InvalidTransaction
from chain.genesis import Genesis
from chain.limits import BLOCK_TASKS_MAX, MESSAGE_CHARS_MAX
from chain.merkle import list_root
from chain.policy import KeyPolicy, nonce_key, policy_key
from chain.receipt import KIND_TASK, KIND_TX, OK, Event, Receipt
from chain.scheduler import Task, due_tasks
from chain.state import BlockState, StateReader
from chain.statetree import StateTree, TreeUpdate
from chain.tx import SignedTx, compute_tx_root


@dataclass(frozen=True, slots=True)
class CallEnv:
    """What a contract call may know about where it runs."""

    chain_id: str
    height: int
    time_ms: int
    tx_hash: bytes  # the tx hash, or 8-byte task id for a scheduled task


class ContractRuntime(Protocol):
    """The contracts, as the executor sees them (implemented in ``contracts``)."""

    def prepare_call(self, contract: str, method: str, args: list[Any]) -> Any:
        """Check the call's shape; raise InvalidTransaction ``unknown_contract``,
        ``unknown_method`` or ``bad_arguments``. Returns what ``call`` takes."""
        ...

    def call(self, state: BlockState, env: CallEnv, sender: str, prepared: Any) -> list[Event]:
        """Run a prepared call; raise ContractError to fail it. Returns its events."""
        ...

    def run_task(self, state: BlockState, env: CallEnv, task: Task) -> list[Event]:
        """Run a scheduled task; raise ContractError to fail it. Returns its events."""
        ...

    def init_genesis(self, state: BlockState, genesis: Genesis) -> None:
        """Write each contract's initial state from the genesis document (GenesisError)."""
        ...

    def check_pins(self, pins: tuple[tuple[str, str], ...]) -> None:
        """Raise ContractCodeMismatch unless the code is exactly the code the chain pins (genesis's,
        or the head state's ``chain/code/*`` after a governance upgrade)."""
        ...


class InvalidTxInBlock(InvalidBlock):
    """A block carrying a transaction that must never have entered it (code ``invalid_tx``);
    ``index`` and ``error`` say which and why, for an auditor's report."""

    def __init__(self, index: int, error: InvalidTransaction, message: str) -> None:
        super().__init__("invalid_tx", message)
        self.index = index
        self.error = error


@dataclass(frozen=True, slots=True)
class Rejected:
    """A transaction the proposer left out, with why."""

    tx: SignedTx
    error: InvalidTransaction


@dataclass(frozen=True, slots=True)
class ExecutionResult:
    txs: tuple[SignedTx, ...]
    receipts: tuple[Receipt, ...]
    state_diff: dict[bytes, bytes | None]
    tree_update: TreeUpdate
    tx_root: bytes
    receipts_root: bytes
    rejected: tuple[Rejected, ...]
    receipts_encoded: tuple[bytes, ...]  # each receipt's encoding (hashed into receipts_root)

    @property
    def state_root(self) -> bytes:
        return self.tree_update.root


# Prepared calls kept between a tx's admission and its block: as many as a mempool holds
# (node/mempool.py MEMPOOL_TXS_MAX), each no larger than its tx's decoded arguments.
PREPARED_CALLS_MAX: Final = 50_000


def _clip(message: str) -> str:
    return message if len(message) <= MESSAGE_CHARS_MAX else message[: MESSAGE_CHARS_MAX - 3] + "..."


class Executor:
    """Executes transactions for one chain with one set of contracts."""

    def __init__(self, chain_id: str, runtime: ContractRuntime) -> None:
        self.chain_id = chain_id
        self.runtime = runtime
        # tx hash -> its prepared call, kept from admission for the block that executes the tx
        # (oldest first). A prepared call is a pure function of the tx body, which the hash
        # covers, so a kept one is the call ``prepare_call`` would return again.
        self._prepared: dict[bytes, Any] = {}

    # --- admission --------------------------------------------------------------------------
    def check_transaction(
        self,
        stx: SignedTx,
        state: BlockState,
        height: int,
        verified: Container[bytes] = (),
    ) -> Any:
        """Every check a transaction must pass to enter a block at ``height``; returns the
        prepared call. ``verified`` holds tx hashes whose signatures this node already checked.

        The prepared call of a transaction that passes is kept (at most ``PREPARED_CALLS_MAX``,
        the oldest dropped first), so executing it in a block need not check its arguments
        against their schemas again: about a tenth of a single-trade tx's execution.

        Raises InvalidTransaction: ``wrong_chain``, ``expired``, ``unknown_contract``,
        ``unknown_method``, ``bad_arguments``, ``unknown_sender``, ``sender_suspended``,
        ``signer_not_in_policy``, ``duplicate_signer``, ``bad_signature``,
        ``insufficient_signatures``, ``nonce_replayed``, ``nonce_gap``.
        """
        prepared = self._check(stx, state, height, verified)
        kept = self._prepared
        if len(kept) >= PREPARED_CALLS_MAX:
            kept.pop(next(iter(kept)), None)
        kept[stx.hash] = prepared
        return prepared

    def _check(self, stx: SignedTx, state: BlockState, height: int, verified: Container[bytes]) -> Any:
        """``check_transaction``'s checks, in its order; takes the tx's kept prepared call if
        there is one (a block executes a tx once, so that is its last use)."""
        tx = stx.tx
        if tx.chain_id != self.chain_id:
            raise InvalidTransaction(
                "wrong_chain", f"signed for chain {tx.chain_id!r}, this is {self.chain_id!r}"
            )
        if tx.valid_until_height and height > tx.valid_until_height:
            raise InvalidTransaction("expired", f"valid until height {tx.valid_until_height}, now {height}")
        prepared = self._prepared.pop(stx.hash, None)
        if prepared is None:
            prepared = self.runtime.prepare_call(tx.contract, tx.method, tx.args)
        auth = state.get(policy_key(tx.sender))
        if auth is None:
            raise InvalidTransaction("unknown_sender", f"no participant {tx.sender!r}")
        threshold, keys, active = auth
        if not active:
            raise InvalidTransaction("sender_suspended", f"participant {tx.sender!r} is suspended")
        policy = KeyPolicy(threshold, keys)
        if stx.hash in verified:
            _check_signer_set(policy, stx)
        else:
            policy.check(list(stx.signatures), stx.hash)
        last = state.get(nonce_key(tx.sender)) or 0
        if tx.nonce <= last:
            raise InvalidTransaction("nonce_replayed", f"nonce {tx.nonce}; last used {last}")
        if tx.nonce != last + 1:
            raise InvalidTransaction("nonce_gap", f"nonce {tx.nonce}; expected {last + 1}")
        return prepared

    # --- execution --------------------------------------------------------------------------
    def execute(
        self,
        base: StateReader,
        tree: StateTree,
        height: int,
        time_ms: int,
        txs: list[SignedTx] | tuple[SignedTx, ...],
        *,
        drop_invalid: bool = False,
        verified: Container[bytes] = (),
    ) -> ExecutionResult:
        """Apply ``txs`` then the due tasks. With ``drop_invalid`` (a proposer building a block)
        invalid transactions are left out and reported; otherwise one raises InvalidBlock
        ``invalid_tx`` naming its index."""
        state = BlockState(base)
        receipts: list[Receipt] = []
        included: list[SignedTx] = []
        rejected: list[Rejected] = []
        for index, stx in enumerate(txs):
            try:
                prepared = self._check(stx, state, height, verified)
            except InvalidTransaction as exc:
                if drop_invalid:
                    rejected.append(Rejected(stx, exc))
                    continue
                raise InvalidTxInBlock(
                    index, exc, f"tx {index} ({stx.hash.hex()}) at height {height}: {exc}"
                ) from exc
            env = CallEnv(self.chain_id, height, time_ms, stx.hash)
            receipts.append(self._apply_tx(state, env, stx, prepared))
            included.append(stx)
        for task in due_tasks(state, height, time_ms, BLOCK_TASKS_MAX):
            env = CallEnv(self.chain_id, height, time_ms, task.task_id.to_bytes(8, "big"))
            receipts.append(self._apply_task(state, env, task))
        diff = state.diff()
        update = tree.compute_update(diff)
        # Kept for the store's write, which then need not encode the receipts again.
        receipts_encoded = tuple([r.encode() for r in receipts])
        return ExecutionResult(
            txs=tuple(included),
            receipts=tuple(receipts),
            state_diff=diff,
            tree_update=update,
            tx_root=compute_tx_root(included),
            receipts_root=list_root(list(receipts_encoded)),
            rejected=tuple(rejected),
            receipts_encoded=receipts_encoded,
        )

    def _apply_tx(self, state: BlockState, env: CallEnv, stx: SignedTx, prepared: Any) -> Receipt:
        """The nonce is consumed whatever the call does; the call's writes only on success."""
        tx = stx.tx
        state.begin()
        state.put(nonce_key(tx.sender), tx.nonce)
        mark = state.savepoint()
        outcome = _run(lambda: self.runtime.call(state, env, tx.sender, prepared))
        if outcome.code != OK:
            state.rollback_to(mark)
        state.commit_tx()
        return Receipt(KIND_TX, stx.hash, outcome.code, outcome.message, outcome.events)

    def _apply_task(self, state: BlockState, env: CallEnv, task: Task) -> Receipt:
        """A task is removed from its queue whatever it does, so a failing task cannot block
        the queue; its other writes stand only on success."""
        state.begin()
        state.delete(task.key)
        mark = state.savepoint()
        outcome = _run(lambda: self.runtime.run_task(state, env, task))
        if outcome.code != OK:
            state.rollback_to(mark)
        state.commit_tx()
        return Receipt(KIND_TASK, env.tx_hash, outcome.code, outcome.message, outcome.events)


@dataclass(frozen=True, slots=True)
class _Outcome:
    code: str
    message: str
    events: tuple[Event, ...]


BAD_VALUE_MESSAGE = "the call stored or emitted a value that cannot be encoded"


def _run(call: Callable[[], list[Event]]) -> _Outcome:
    """Run a contract call, turning its expected failures into an outcome.

    A contract that tries to store a value that cannot be encoded fails with
    ``contract_bad_value``; anything else it raises is a bug and propagates.
    """
    try:
        events = call()
    except ContractError as exc:
        return _Outcome(exc.code, _clip(exc.message), ())
    except EncodingError:
        # A fixed sentence, not the encoder's text: the message is consensus data (it is hashed
        # into receipts_root), and another implementation's encoder words its errors otherwise.
        return _Outcome("contract_bad_value", BAD_VALUE_MESSAGE, ())
    return _Outcome(OK, "", tuple(events))


def _check_signer_set(policy: KeyPolicy, stx: SignedTx) -> None:
    """Policy checks for signatures already verified: signers in the policy, distinct, enough."""
    signers = [p for p, _ in stx.signatures]
    if any(p not in policy.keys for p in signers):
        raise InvalidTransaction("signer_not_in_policy", "a signer is not in the sender's policy")
    if len(set(signers)) != len(signers):
        raise InvalidTransaction("duplicate_signer", "a key signed twice")
    if len(signers) < policy.threshold:
        raise InvalidTransaction(
            "insufficient_signatures", f"{len(signers)} of the required {policy.threshold}"
        )
