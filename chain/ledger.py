"""The ledger: a store, its state tree and an executor, kept at one head.

This is what a node, the single-process runner, sync and audit drive. ``propose`` builds a block
on the head; ``validate`` checks a block against the head and re-executes it, naming the field,
the expected and the found value on any mismatch; ``commit`` verifies the commit certificate and
writes the block in one batch. The checks themselves are ``chain/validation``'s, the one
definition of a valid block that the auditor uses too.

Validator sets: the set in state after block h (``chain/validators``) signs block h+1. So a
block's ``validators_hash`` is its parent's ``next_validators_hash``, and its ``last_commit`` is
verified against the parent's set.

Code pins: the state holds ``chain/code/<name>`` -> the SHA-256 of each contract's code (written
from genesis, changed only by a governance upgrade). A ledger runs only code matching the pins
in its state at the head: genesis's for a fresh store, the head state's on reopening. When a
committed block changes a pin to code this node does not run, the block (executed by the old
code, which wrote the pin) is kept, ``code_mismatch`` says why, and the ledger refuses to propose
or validate the next block (``contract_code_mismatch``): the operator restarts the node with
the new code, rather than let it execute the new era with the old rules and fork.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from chain.block import ZERO_HASH, Block, Header
from chain.certificate import NO_COMMIT_HASH, CommitCertificate
from chain.errors import ContractCodeMismatch, StoreError
from chain.executor import ContractRuntime, ExecutionResult, Executor
from chain.genesis import Genesis
from chain.merkle import EMPTY_LIST_ROOT
from chain.state import BlockState, decode_value
from chain.statetree import CACHE_BYTES_DEFAULT, EMPTY_ROOT, StateTree, TreeUpdate
from chain.store import Store
from chain.treestore import PruneReport
from chain.tx import SignedTx
from chain.validation import validate_block, validate_certificate, validate_execution
from chain.validators import Validator, ValidatorSet

VALIDATORS_KEY = b"chain/validators"
CODE_PREFIX = b"chain/code/"
PARAM_PREFIX = b"chain/param/"


def read_validators(state: BlockState) -> ValidatorSet:
    return _set_from_wire(state.get(VALIDATORS_KEY))


def read_pins(state: BlockState) -> tuple[tuple[str, str], ...]:
    """(name, SHA-256 hex) of the code the state pins, by name (one key per contract)."""
    return tuple((k[len(CODE_PREFIX) :].decode(), v.hex()) for k, v in state.iterate(CODE_PREFIX))


@dataclass(frozen=True, slots=True)
class Pruning:
    """Keep the state trees of the last ``keep_versions`` heights; after each block, delete at
    most ``batch_max`` stale nodes (``storage.keep_versions``, ``storage.prune_batch_max``)."""

    keep_versions: int
    batch_max: int


@dataclass(frozen=True, slots=True)
class Committed:
    block: Block
    result: ExecutionResult


class Ledger:
    def __init__(
        self,
        store: Store,
        genesis: Genesis,
        runtime: ContractRuntime,
        *,
        cache_bytes: int = CACHE_BYTES_DEFAULT,
        pruning: Pruning | None = None,
    ) -> None:
        """``cache_bytes``: the state tree's node cache budget (``storage.cache_mb``);
        ``pruning``: None keeps every height's tree (an archive)."""
        self.pruning = pruning
        self.last_prune: PruneReport | None = None
        if store.head() is None:
            runtime.check_pins(genesis.contracts)
        self.store = store
        self.genesis = genesis
        self.chain_id = genesis.chain_id
        self.executor = Executor(genesis.chain_id, runtime)
        self.runtime = runtime
        fresh: tuple[Block, TreeUpdate] | None = None
        if store.head() is None:
            fresh = self._write_genesis()
        elif store.chain_id() != genesis.chain_id:
            raise StoreError(
                "store_other_chain",
                f"store holds chain {store.chain_id()!r}, genesis is {genesis.chain_id!r}",
            )
        head = store.head()
        assert head is not None
        header = store.header(head.height)
        assert header is not None
        if fresh is None:
            pins = read_pins(BlockState(store))
            runtime.check_pins(pins)  # the code of the head's era
            # Only genesis-era code rebuilds the genesis block; after an upgrade the store's
            # record of it stands (the chain id was checked above).
            if dict(pins) == dict(genesis.contracts) and store.genesis_hash() != self.genesis_block().hash():
                raise StoreError("store_other_genesis", "the store was made from another genesis")
        genesis_hash = store.genesis_hash()
        assert genesis_hash is not None
        self.genesis_hash: bytes = genesis_hash
        self.head: Header = header
        self.code_mismatch: str | None = None  # set when a block activates code we lack
        if fresh is None:
            self.tree = StateTree(store, header.state_root, height=head.height, cache_bytes=cache_bytes)
        else:
            # A fresh store: apply genesis's update to the empty tree instead of reopening, so the
            # nodes just written are in memory already decoded. Reopening would read back and
            # re-check every genesis node (~0.36 per state key) as the first blocks touch them:
            # about 7 % of auditing 10,000 trades from genesis (py-spy).
            self.tree = StateTree(store, EMPTY_ROOT, cache_bytes=cache_bytes)
            self.tree.apply(fresh[1])
        self.validators = read_validators(BlockState(store))  # signs the next block
        signed_head = store.validator_set(header.validators_hash)  # signed the head
        assert signed_head is not None, "the store lost a validator set"
        self.head_validators = signed_head

    # --- genesis ----------------------------------------------------------------------------
    def genesis_state(self) -> BlockState:
        state = BlockState(_EmptyState())
        state.begin()
        g = self.genesis
        state.put(VALIDATORS_KEY, [[v.pubkey, v.power, v.name] for v in g.validators.validators])
        for name, digest in g.contracts:
            state.put(CODE_PREFIX + name.encode(), bytes.fromhex(digest))
        for name, value in g.consensus:
            state.put(PARAM_PREFIX + name.encode(), value)
        self.runtime.init_genesis(state, g)
        state.commit_tx()
        return state

    def genesis_block(self) -> Block:
        """The height-0 block, recomputed from the genesis document."""
        return self._build_genesis()[0]

    def _build_genesis(self) -> tuple[Block, dict[bytes, bytes | None], TreeUpdate]:
        """The genesis block with the state diff and tree update it commits to."""
        diff = self.genesis_state().diff()
        update = StateTree(_NoNodes(), EMPTY_ROOT).compute_update(diff, version=0)
        vhash = self.genesis.validators.hash()
        header = Header(
            self.chain_id,
            0,
            self.genesis.genesis_time_ms,
            ZERO_HASH,
            EMPTY_LIST_ROOT,
            EMPTY_LIST_ROOT,
            update.root,
            vhash,
            vhash,
            ZERO_HASH,
            NO_COMMIT_HASH,
        )
        return Block(header, (), None), diff, update

    def _write_genesis(self) -> tuple[Block, TreeUpdate]:
        block, diff, update = self._build_genesis()
        self.store.write_block(
            block,
            None,
            (),
            diff,
            update,
            genesis=True,
            validator_sets=[self.genesis.validators],
        )
        return block, update

    # --- blocks -----------------------------------------------------------------------------
    def propose(
        self,
        time_ms: int,
        txs: list[SignedTx],
        proposer: bytes,
        last_commit: CommitCertificate | None,
        verified: frozenset[bytes] | set[bytes] = frozenset(),
    ) -> tuple[Block, ExecutionResult]:
        """Execute ``txs`` (leaving out invalid ones, reported in the result) on the head and
        build the next block. ``time_ms`` is raised to head time + 1 if it is not later."""
        self._require_pinned_code()
        height = self.head.height + 1
        time_ms = max(time_ms, self.head.time_ms + 1)
        result = self.executor.execute(
            self.store, self.tree, height, time_ms, txs, drop_invalid=True, verified=verified
        )
        header = Header(
            chain_id=self.chain_id,
            height=height,
            time_ms=time_ms,
            prev_block_hash=self.head.hash(),
            tx_root=result.tx_root,
            receipts_root=result.receipts_root,
            state_root=result.state_root,
            validators_hash=self.validators.hash(),
            next_validators_hash=self.next_validators_hash(result),
            proposer=proposer,
            last_commit_hash=NO_COMMIT_HASH if last_commit is None else last_commit.hash(),
        )
        return Block(header, result.txs, last_commit), result

    def validate(
        self, block: Block, verified: frozenset[bytes] | set[bytes] = frozenset()
    ) -> ExecutionResult:
        """Check ``block`` against the head and re-execute it (``chain/validation``, in its
        order). Raises InvalidBlock (a ``BlockRuleViolation`` naming the height, the field, and
        the expected and found values, or ``invalid_tx``)."""
        return self._validate(block, None, verified)

    def _validate(
        self,
        block: Block,
        certificate: CommitCertificate | None,
        verified: frozenset[bytes] | set[bytes] = frozenset(),
    ) -> ExecutionResult:
        self._require_pinned_code()
        validate_block(self.head, block, self.chain_id, self.validators, self.head_validators, certificate)
        h = block.header
        result = self.executor.execute(
            self.store, self.tree, h.height, h.time_ms, block.txs, verified=verified
        )
        validate_execution(h, result.receipts_root, result.state_root, self.next_validators_hash(result))
        return result

    def commit(
        self, block: Block, certificate: CommitCertificate, result: ExecutionResult,
        *, certificate_checked: bool = False,
    ) -> None:  # fmt: skip
        """Verify the certificate for ``block`` (unless the caller just did, as the auditor does)
        and write the block (one batch); advance the head."""
        if not certificate_checked:
            validate_certificate(certificate, self.chain_id, self.validators, block.height, block.hash())
        data = result.state_diff.get(VALIDATORS_KEY)
        next_set = self.validators if data is None else _set_from_wire(decode_value(data))
        self.store.write_block(
            block,
            certificate,
            result.receipts,
            result.state_diff,
            result.tree_update,
            validator_sets=[next_set],
            receipts_encoded=result.receipts_encoded,
        )
        self.tree.apply(result.tree_update)
        if self.pruning is not None:
            # After the block's own batch, so a crash here loses no block: one bounded slice.
            self.last_prune = self.store.prune(self.pruning.keep_versions, self.pruning.batch_max)
        self.head = block.header
        self.head_validators = self.validators
        self.validators = next_set
        changed = [k for k in result.state_diff if k.startswith(CODE_PREFIX)]
        if changed:
            self.code_mismatch = self._pins_mismatch(block.height, changed)

    def _pins_mismatch(self, height: int, changed: list[bytes]) -> str | None:
        """Why this node cannot execute after ``height``, whose block changed the pins
        ``changed``; None if it runs the newly pinned code already."""
        try:
            self.runtime.check_pins(read_pins(BlockState(self.store)))
        except ContractCodeMismatch as exc:
            state = BlockState(self.store)
            pins = ", ".join(
                f"{k[len(CODE_PREFIX) :].decode()} {state.get(k).hex()}" for k in sorted(changed)
            )
            return f"upgrade to code {pins} activated at height {height}; restart with the new code ({exc.message})"
        return None

    def _require_pinned_code(self) -> None:
        if self.code_mismatch is not None:
            raise ContractCodeMismatch("contract_code_mismatch", self.code_mismatch)

    def apply_committed(self, block: Block, certificate: CommitCertificate) -> ExecutionResult:
        """Validate, re-execute and write a block someone else committed (sync, replay). Its
        certificate is checked with the header, before execution: a block without one is not
        worth executing."""
        result = self._validate(block, certificate)
        self.commit(block, certificate, result, certificate_checked=True)
        return result

    def next_validators_hash(self, result: ExecutionResult) -> bytes:
        """The hash of the validator set in state after ``result`` (it signs the next block)."""
        data = result.state_diff.get(VALIDATORS_KEY)
        if data is None:
            return self.validators.hash()
        return _set_from_wire(decode_value(data)).hash()


def _set_from_wire(wire: Any) -> ValidatorSet:
    return ValidatorSet.build([Validator(k, p, n) for k, p, n in wire])


class _EmptyState:
    def get_state(self, key: bytes) -> bytes | None:
        return None

    def iterate_state(self, prefix: bytes, start: bytes = b"") -> Iterator[tuple[bytes, bytes]]:
        return iter(())


class _NoNodes:
    def get_node(self, path: bytes) -> bytes | None:
        return None
