"""Independent re-verification of a chain's history, from its genesis document alone.

An auditor trusts nothing but the genesis document (chain id, validators, opening state) and the
contract code it pins. It rebuilds the genesis block, then takes the history one height at a
time (``HistoryRecord``: the stored bytes of a block, its commit certificate and its receipts)
and checks, in this order:

1. the record is for the next height and holds a well-formed block and a well-formed commit
   certificate (canonical encodings);
2. the block by ``chain/validation.validate_block``, the rules every node applies (one
   definition of a valid block): the header (height, chain id, the hash link to the previous
   block, time strictly after it, the validator set in force, a proposer from that set), its
   ``last_commit`` (the previous block's certificate, matching ``last_commit_hash`` and
   verifying), ``tx_root`` against the block's transactions, and the commit certificate (for this
   height and block hash, signatures in strictly ascending key order, so distinct, each by a
   validator of the set in force and valid, together holding more than 2/3 of its power);
3. re-execution of every transaction (each signature against the sender's key policy as it
   stood at that point, nonces, expiry) and every scheduled task that fell due, on the state the
   auditor built itself; then ``receipts_root``, the stored receipts one by one, ``state_root``
   and ``next_validators_hash`` against the results (``chain/validation`` again, but for the
   stored receipts, which only a history holds).

The first discrepancy stops the audit with an ``AuditFailure`` naming the height, the field, the
expected value (what the rules, the signed header or the previous block demand) and the found
value (what the history holds, or what re-executing it gives). A state-root mismatch also lists
the state keys the block wrote, and, when the caller can supply the source's own state at that
height, exactly which keys differ. ``compare_state`` checks a node's stored state against the
re-executed one key by key, and walks every state tree the node keeps (each retained height's,
chain/treestore.py), checking each node's hash and each root against its block's state root.

Pure: no I/O, no clock. The auditor keeps state in memory and drops history it no longer needs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, NoReturn

from chain.block import Block
from chain.certificate import CommitCertificate
from chain.encoding import decode, encode_joined
from chain.errors import BlockRuleViolation, ClearchainError, InvalidBlock, StoreError, invariant
from chain.executor import ContractRuntime, InvalidTxInBlock
from chain.genesis import Genesis
from chain.history import HistoryRecord
from chain.ledger import Ledger, Pruning
from chain.receipt import Receipt
from chain.state import StateReader, decode_value
from chain.statetree import EMPTY_ROOT
from chain.store import (
    BLOCK_HASH_PREFIX,
    BLOCK_PREFIX,
    RECEIPTS_PREFIX,
    STATE_PREFIX,
    TX_INDEX_PREFIX,
    MemoryBackend,
    Store,
)
from chain.treestore import check_retained_trees, root_at
from chain.validation import (
    validate_block,
    validate_next_validators,
    validate_receipts_root,
    validate_state_root,
)
from chain.validators import ValidatorSet

DIFFERENCES_SHOWN_MAX = 20  # state keys listed in a state-root diagnosis
_AUDIT_PRUNE_BATCH_MAX = 1_000_000  # more than one block can replace: the auditor never lags
_DROPPED = (RECEIPTS_PREFIX, TX_INDEX_PREFIX, BLOCK_HASH_PREFIX)  # history the auditor never reads back


@dataclass(frozen=True, slots=True)
class Discrepancy:
    height: int
    field: str
    expected: str
    found: str
    check: str  # a stable code: hash_link, certificate_quorum, state_root ...
    notes: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [
            f"height {self.height}: {self.field} ({self.check}): expected {self.expected}, found {self.found}"
        ]
        lines += [f"  {note}" for note in self.notes]
        return "\n".join(lines)


class AuditFailure(ClearchainError):
    """The history breaks a rule; ``discrepancy`` says where and how."""

    def __init__(self, discrepancy: Discrepancy) -> None:
        super().__init__("audit_failed", discrepancy.text())
        self.discrepancy = discrepancy


@dataclass(frozen=True, slots=True)
class AuditedBlock:
    """One verified height, for whoever tallies the audit (cli/audit/tally.py)."""

    block: Block
    receipts: tuple[Receipt, ...]
    round: int
    signers: tuple[bytes, ...]  # validators whose precommits the stored certificate carries
    validators: ValidatorSet  # the set that signed it


# The source's own state at a height, when it has it (a node's store at its head), for naming the
# keys behind a state-root mismatch.
ReferenceState = Callable[[int], StateReader | None]


class Auditor:
    def __init__(
        self, genesis: Genesis, runtime: ContractRuntime, *, reference: ReferenceState | None = None
    ) -> None:
        self.store = Store(_StateOnlyBackend())
        # Only the head's tree is needed to re-execute: prune the rest as the audit goes.
        self.ledger = Ledger(self.store, genesis, runtime, pruning=Pruning(1, _AUDIT_PRUNE_BATCH_MAX))
        self.chain_id = genesis.chain_id
        self.genesis_hash = self.ledger.head.hash()
        self.reference = reference

    @property
    def height(self) -> int:
        return self.ledger.head.height

    def check_genesis(self, found: bytes, where: str) -> None:
        """The history's genesis hash must be the one this genesis document gives."""
        if found != self.genesis_hash:
            _fail(0, "genesis_hash", self.genesis_hash.hex(), f"{found.hex()} ({where})", "genesis",
                  ("the history was made from another genesis document, or the document differs",))  # fmt: skip

    # --- one height -------------------------------------------------------------------------
    def audit(self, record: HistoryRecord) -> AuditedBlock:
        """Verify and apply the next height. Raises AuditFailure on the first discrepancy."""
        ledger = self.ledger
        head = ledger.head
        h = head.height + 1
        if ledger.code_mismatch is not None:
            _fail(h, "contract code", "the code the chain pins from this height", "this auditor's code", "contract_code_mismatch",
                  (ledger.code_mismatch, "audit the heights from here with the newly pinned code (docs/CONTRACTS.md, Governance)"))  # fmt: skip
        if record.height != h:
            _fail(
                h, "height", f"a record for height {h}", f"a record for height {record.height}", "height_gap"
            )
        if record.block is None:
            _fail(h, "block", "the block", "nothing (the block is missing)", "block_missing")
        try:
            block = Block.decode(record.block)
        except ClearchainError as exc:
            _fail(h, "block", "a well-formed block", f"{exc.code}: {exc.message}", "block_malformed")
        if record.certificate is None:
            _fail(h, "certificate", "the block's commit certificate", "none", "certificate_missing")
        try:
            certificate = CommitCertificate.from_wire(decode(record.certificate))
        except ClearchainError as exc:
            _fail(
                h,
                "certificate",
                "a well-formed certificate",
                f"{exc.code}: {exc.message}",
                "certificate_malformed",
            )
        hdr = block.header
        signed_by = ledger.validators
        with _reported():
            signers = validate_block(
                head, block, self.chain_id, signed_by, ledger.head_validators, certificate
            )
        if record.receipts is None:
            _fail(h, "receipts", "the block's receipts", "none", "receipts_missing")

        try:
            result = ledger.executor.execute(self.store, ledger.tree, h, hdr.time_ms, block.txs)
        except InvalidTxInBlock as exc:
            stx = block.txs[exc.index]
            _fail(h, f"txs[{exc.index}]", "a transaction valid at this point", f"{exc.error.code}: {exc.error.message}",
                  exc.error.code, (f"tx {stx.hash.hex()} from {stx.tx.sender} nonce {stx.tx.nonce}",))  # fmt: skip
        computed = list(result.receipts_encoded)
        with _reported():
            validate_receipts_root(hdr, result.receipts_root)
        # Equal bytes mean equal receipts (the encoding is canonical): decode the stored ones
        # only to say where they differ.
        if encode_joined(computed) != record.receipts:
            stored = self._stored_receipts(record.receipts, h)
            i = next(
                (i for i, (a, b) in enumerate(zip(computed, stored, strict=False)) if a != b),
                min(len(computed), len(stored)),
            )
            where, expected, found = _receipt_difference(computed, stored, i)
            _fail(h, f"receipts[{i}]{where}", expected, found, "stored_receipt",
                  ("expected: re-execution, which matches the signed header; found: the stored receipt",))  # fmt: skip
        try:
            validate_state_root(hdr, result.state_root)
        except BlockRuleViolation as violation:
            raise AuditFailure(_discrepancy(violation, self._diagnose_state(h, result.state_diff))) from None
        with _reported():
            validate_next_validators(hdr, ledger.next_validators_hash(result))
        ledger.commit(block, certificate, result, certificate_checked=True)
        return AuditedBlock(block, result.receipts, certificate.round, signers, signed_by)

    def _stored_receipts(self, data: bytes | None, h: int) -> list[bytes]:
        """The stored receipts, each re-encoded (canonical, so equal bytes mean equal receipts)."""
        if data is None:
            _fail(h, "receipts", "the block's receipts", "none", "receipts_missing")
        try:
            wire = decode(data)
            if type(wire) is not list:
                raise InvalidBlock("receipts_malformed", "the receipts are not a list")
            return [Receipt.from_wire(w).encode() for w in wire]
        except (ClearchainError, ValueError, TypeError, IndexError) as exc:
            _fail(h, "receipts", "a well-formed list of receipts", str(exc), "receipts_malformed")

    # --- diagnosis --------------------------------------------------------------------------
    def _diagnose_state(self, h: int, diff: dict[bytes, bytes | None]) -> tuple[str, ...]:
        """Notes for a state-root mismatch: exactly which keys differ, when the source's state at
        this height is at hand; otherwise the keys this block's re-execution wrote."""
        reference = self.reference(h) if self.reference is not None else None
        if reference is not None:
            ours = dict(self.store.iterate_state(b""))
            for key, value in diff.items():
                if value is None:
                    ours.pop(key, None)
                else:
                    ours[key] = value
            differing = list(_differences(iter(sorted(ours.items())), reference.iterate_state(b"")))
            notes = [
                f"{len(differing)} state key(s) differ from the source's state at height {h} (re-executed vs source):"
            ]
            notes += [
                f"{_key_text(k)}: {_value_text(a)} vs {_value_text(b)}"
                for k, a, b in differing[:DIFFERENCES_SHOWN_MAX]
            ]
        else:
            notes = [f"the block's re-execution wrote {len(diff)} state key(s) (before -> after):"]
            for key in sorted(diff)[:DIFFERENCES_SHOWN_MAX]:
                notes.append(
                    f"{_key_text(key)}: {_value_text(self.store.get_state(key))} -> {_value_text(diff[key])}"
                )
            notes.append(
                "one or more of these differ from what the validators computed; audit the node's --home at this height to name them"
            )
        if len(notes) > DIFFERENCES_SHOWN_MAX + 2:
            notes = notes[: DIFFERENCES_SHOWN_MAX + 1] + ["..."]
        return tuple(notes)

    def compare_state(self, other: Store) -> None:
        """Check ``other`` (a node's store at the audited head) key by key: every state value and
        every state-tree node must equal the re-executed ones. Raises AuditFailure naming them."""
        head = other.head()
        h = self.height
        if head is None or head.height != h:
            _fail(
                h,
                "head",
                f"the source's head at the audited height {h}",
                str(None if head is None else head.height),
                "head_moved",
            )
        prefix = STATE_PREFIX
        ours = self.store.backend.scan(prefix)
        theirs = other.backend.scan(prefix)
        differing = list(
            _differences(_strip(ours, prefix), _strip(theirs, prefix), limit=DIFFERENCES_SHOWN_MAX)
        )
        if differing:
            key, expected, found = differing[0]
            notes = tuple(
                f"{_key_text(k)}: expected {_value_text(a)}, found {_value_text(b)}" for k, a, b in differing
            )
            _fail(
                h, f"state {_key_text(key)}", _value_text(expected), _value_text(found), "stored_state", notes
            )
        self._compare_trees(other, h)

    def _compare_trees(self, other: Store, h: int) -> None:
        """Every state tree the source keeps (each retained height's) must be whole, hash to
        the state root its block holds, and at the head to the re-executed root. The auditor
        keeps only the head's tree (its store prunes), so this checks the source's trees by
        their hashes rather than key by key."""
        try:
            checked = check_retained_trees(other.backend, h)
            for height in range(other.pruned_below(), h + 1):
                header = other.header(height)
                root = root_at(other.backend, height)
                if header is not None and header.state_root != root:
                    _fail(height, "state tree root", header.state_root.hex(), root.hex(), "stored_state")
        except StoreError as exc:
            _fail(
                h,
                "state tree node",
                "every kept height's tree whole",
                f"{exc.code}: {exc.message}",
                "stored_state",
            )
        if root_at(other.backend, h) != self.ledger.head.state_root:
            _fail(
                h,
                "state tree root",
                self.ledger.head.state_root.hex(),
                root_at(other.backend, h).hex(),
                "stored_state",
            )
        invariant(checked > 0 or self.ledger.head.state_root == EMPTY_ROOT, "a non-empty tree has nodes")


class _StateOnlyBackend(MemoryBackend):
    """The auditor's store: keeps state, tree nodes, validator sets and the head block only."""

    def write(self, puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
        kept = {k: v for k, v in puts.items() if not k.startswith(_DROPPED)}
        old_blocks = [k for k, _ in self.scan(BLOCK_PREFIX)]
        super().write(kept, deletes + [k for k in old_blocks if k not in kept])


def _strip(items: Iterator[tuple[bytes, bytes]], prefix: bytes) -> Iterator[tuple[bytes, bytes]]:
    cut = len(prefix)
    for key, value in items:
        yield key[cut:], value


def _differences(
    ours: Iterator[tuple[bytes, bytes]], theirs: Iterator[tuple[bytes, bytes]], limit: int | None = None
) -> Iterator[tuple[bytes, bytes | None, bytes | None]]:
    """Merge two key-ordered streams; yield (key, ours or None, theirs or None) where they differ."""
    a = next(ours, None)
    b = next(theirs, None)
    count = 0
    item: tuple[bytes, bytes | None, bytes | None] | None
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            assert a is not None
            item = (a[0], a[1], None)
            a = next(ours, None)
        elif a is None or b[0] < a[0]:
            assert b is not None
            item = (b[0], None, b[1])
            b = next(theirs, None)
        else:
            item = (a[0], a[1], b[1]) if a[1] != b[1] else None
            a, b = next(ours, None), next(theirs, None)
        if item is not None:
            yield item
            count += 1
            if limit is not None and count >= limit:
                return


def _key_text(key: bytes) -> str:
    try:
        text = key.decode("ascii")
        if text.isprintable():
            return text
    except UnicodeDecodeError:
        pass
    return "0x" + key.hex()


def _value_text(data: bytes | None) -> str:
    if data is None:
        return "absent"
    try:
        return _short(repr(_plain(decode_value(data))))
    except Exception:  # noqa: BLE001 - a tampered value may not decode at all; show its bytes
        return "undecodable 0x" + _short(data.hex())


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return "0x" + value.hex()
    return value


def _short(text: str, limit: int = 160) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _receipt_difference(ours: list[bytes], theirs: list[bytes], i: int) -> tuple[str, str, str]:
    """The first field where receipt ``i`` differs: (".events[2].quantity", expected, found)."""
    if i >= len(ours) or i >= len(theirs):
        return "", f"{len(ours)} receipts", f"{len(theirs)} receipts"
    a, b = Receipt.from_wire(decode(ours[i])), Receipt.from_wire(decode(theirs[i]))
    for name in ("kind", "ref", "code", "message"):
        if getattr(a, name) != getattr(b, name):
            return f".{name}", _short(_show(getattr(a, name))), _short(_show(getattr(b, name)))
    if len(a.events) != len(b.events):
        return ".events", f"{len(a.events)} events", f"{len(b.events)} events"
    for j, (ea, eb) in enumerate(zip(a.events, b.events, strict=True)):
        if ea[:2] != eb[:2]:
            return f".events[{j}]", f"{ea[0]}.{ea[1]}", f"{eb[0]}.{eb[1]}"
        fa, fb = list(ea[2]), list(eb[2])
        for k in range(max(len(fa), len(fb))):
            x = fa[k] if k < len(fa) else None
            y = fb[k] if k < len(fb) else None
            if x != y:
                label = (x or y or ("?",))[0]
                return f".events[{j}].{label}", _short(repr(_plain(x))), _short(repr(_plain(y)))
    return "", "the same receipt", "different bytes"


def _show(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def _discrepancy(violation: BlockRuleViolation, notes: tuple[str, ...] | None = None) -> Discrepancy:
    """The report of a broken block rule (``chain/validation``): its own fields, word for word."""
    v = violation
    return Discrepancy(v.height, v.field, v.expected, v.found, v.check, v.notes if notes is None else notes)


@contextmanager
def _reported() -> Iterator[None]:
    """Report a broken block rule raised inside the block as an AuditFailure."""
    try:
        yield
    except BlockRuleViolation as violation:
        raise AuditFailure(_discrepancy(violation)) from None


def _fail(h: int, field: str, expected: str, found: str, check: str, notes: tuple[str, ...] = ()) -> NoReturn:
    raise AuditFailure(Discrepancy(h, field, expected, found, check, tuple(notes)))
