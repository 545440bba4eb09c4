"""One definition of a valid block, for everyone who checks one.

A validator checking a proposal (``Ledger.validate``), a node writing a block consensus decided
or sync delivered (``Ledger.commit``, ``Ledger.apply_committed``) and the auditor re-verifying a
history (``chain/audit``) all call these functions, so they accept and refuse exactly the same
blocks and name the same field when they refuse one. Each check raises ``BlockRuleViolation``
(``chain/errors``) carrying the height, the field, the expected and the found value and the
rule's stable name (``check``); the ledger lets it propagate as the ``InvalidBlock`` it is, the
auditor reports it as a discrepancy.

A block at height h = parent.height + 1 is valid when, in this order (the first failure is the
one reported; the cheap checks come before execution, which is the expensive one):

1. ``validate_header``: height h, the chain id, ``prev_block_hash`` = the parent's hash (the
   hash link), time strictly after the parent's, ``validators_hash`` = the set in force (the
   parent's ``next_validators_hash``), a proposer from that set;
2. ``validate_last_commit``: the parent's certificate that the block carries, matching
   ``last_commit_hash`` and verifying against the parent's set (none, and the empty hash, at
   height 1, whose parent is genesis);
3. ``validate_tx_root``: ``tx_root`` against the block's transactions, signatures included (so a
   transaction carrying another valid signature set makes another block);
4. ``validate_certificate``, when the block arrives with its own commit certificate: for height h
   and this block's hash, signatures in strictly ascending key order (so distinct), each by a
   validator of the set in force and valid, together more than 2/3 of its power;
5. then, on the results of executing the block: ``validate_receipts_root``,
   ``validate_state_root``, ``validate_next_validators`` (the set in state after the block).

``validate_block`` composes 1-4, ``validate_execution`` composes 5. Pure: no I/O, no clock; the
caller supplies the parent header, the validator sets and the execution results.
"""

from __future__ import annotations

from chain.block import Block, Header
from chain.certificate import NO_COMMIT_HASH, PRECOMMIT, CommitCertificate, vote_sign_bytes
from chain.errors import BlockRuleViolation
from chain.keys import verify_signature
from chain.tx import compute_tx_root
from chain.validators import ValidatorSet


def validate_header(parent: Header, header: Header, chain_id: str, validators: ValidatorSet) -> None:
    """Check ``header`` as the child of ``parent``, with ``validators`` the set in force.

    Raises BlockRuleViolation: ``header_height``, ``header_chain_id``, ``hash_link`` (code
    ``header_prev_hash``), ``header_time``, ``header_validators``, ``header_proposer``.
    """
    h = parent.height + 1
    _expect(h, "header.height", h, header.height, "header_height")
    _expect(h, "header.chain_id", chain_id, header.chain_id, "header_chain_id")
    _expect(
        h,
        "header.prev_block_hash",
        parent.hash(),
        header.prev_block_hash,
        "hash_link",
        code="header_prev_hash",
    )
    if header.time_ms <= parent.time_ms:
        raise BlockRuleViolation(
            h, "header.time_ms", f"later than {parent.time_ms}", str(header.time_ms), "header_time"
        )
    _expect(h, "header.validators_hash", validators.hash(), header.validators_hash, "header_validators")
    if validators.power_of(header.proposer) == 0:
        raise BlockRuleViolation(
            h, "header.proposer", "a validator of the set in force", header.proposer.hex(), "header_proposer"
        )


def validate_last_commit(
    parent: Header, block: Block, chain_id: str, parent_validators: ValidatorSet
) -> None:
    """Check the parent's certificate that ``block`` carries, against ``parent_validators`` (the
    set that signed the parent).

    Raises BlockRuleViolation: ``last_commit_missing``, ``header_last_commit``, and the
    ``certificate_*`` checks of ``validate_certificate`` on field ``last_commit``.
    """
    h = parent.height + 1
    header = block.header
    if block.last_commit is None:
        if h > 1:
            raise BlockRuleViolation(
                h, "last_commit", f"the certificate of height {h - 1}", "none", "last_commit_missing"
            )
        _expect(h, "header.last_commit_hash", NO_COMMIT_HASH, header.last_commit_hash, "header_last_commit")
        return
    _expect(
        h, "header.last_commit_hash", block.last_commit.hash(), header.last_commit_hash, "header_last_commit"
    )
    validate_certificate(
        block.last_commit,
        chain_id,
        parent_validators,
        parent.height,
        parent.hash(),
        at=h,
        field="last_commit",
    )


def validate_tx_root(block: Block) -> None:
    """The header's ``tx_root`` must be the root of the block's signed transactions, each one's
    whole encoding (body and signatures; ``chain.tx.compute_tx_root``).

    Raises BlockRuleViolation ``tx_root`` (code ``tx_root_mismatch``).
    """
    _expect(
        block.height,
        "header.tx_root",
        compute_tx_root(block.txs),
        block.header.tx_root,
        "tx_root",
        code="tx_root_mismatch",
        notes=(
            "the block's transactions are not the ones its header commits to (changed, re-signed, added, dropped or reordered)",
        ),
    )


def validate_certificate(
    certificate: CommitCertificate,
    chain_id: str,
    validators: ValidatorSet,
    height: int,
    block_hash: bytes,
    *,
    at: int | None = None,
    field: str = "certificate",
) -> tuple[bytes, ...]:
    """Check that ``certificate`` certifies ``block_hash`` at ``height`` with a quorum of
    ``validators``; returns the signers' keys. ``at`` is the height reported (the block that
    carries the certificate; ``height`` by default), ``field`` names it (``last_commit``).

    Raises BlockRuleViolation: ``certificate_height``, ``certificate_block``,
    ``certificate_order`` (keys not strictly ascending, so duplicates are impossible),
    ``certificate_signer`` (not a validator), ``certificate_signature``, ``certificate_quorum``.
    """
    at = height if at is None else at
    _expect(at, f"{field}.height", height, certificate.height, "certificate_height")
    _expect(at, f"{field}.block_hash", block_hash, certificate.block_hash, "certificate_block")
    digest = vote_sign_bytes(
        chain_id, PRECOMMIT, certificate.height, certificate.round, certificate.block_hash
    )
    power = 0
    previous = b""
    for i, (pubkey, signature) in enumerate(certificate.signatures):
        if pubkey <= previous:
            raise BlockRuleViolation(
                at,
                f"{field}.signatures[{i}]",
                "validator keys in strictly ascending order (each at most once)",
                pubkey.hex(),
                "certificate_order",
            )
        previous = pubkey
        weight = validators.power_of(pubkey)
        if weight == 0:
            raise BlockRuleViolation(
                at,
                f"{field}.signatures[{i}]",
                f"a validator of the set {validators.hash().hex()}",
                f"{pubkey.hex()}, not a validator",
                "certificate_signer",
            )
        if not verify_signature(pubkey, signature, digest):
            raise BlockRuleViolation(
                at,
                f"{field}.signatures[{i}]",
                f"a valid precommit signature by {_name(validators, pubkey)}",
                "an invalid signature",
                "certificate_signature",
            )
        power += weight
    if not validators.has_quorum(power):
        who = ", ".join(_name(validators, k) for k, _ in certificate.signatures) or "nobody"
        total = validators.total_power
        raise BlockRuleViolation(
            at,
            f"{field}.power",
            f"more than 2/3 of {total} power (at least {total * 2 // 3 + 1})",
            f"{power} ({who})",
            "certificate_quorum",
        )
    return tuple(k for k, _ in certificate.signatures)


def validate_block(
    parent: Header,
    block: Block,
    chain_id: str,
    validators: ValidatorSet,
    parent_validators: ValidatorSet,
    certificate: CommitCertificate | None = None,
) -> tuple[bytes, ...]:
    """Every check of ``block`` that needs no execution (steps 1-4 of this module's docstring):
    the header, the last commit, the tx root and, when given, the block's own ``certificate``.
    Returns the certificate's signers (none without one). Raises BlockRuleViolation."""
    validate_header(parent, block.header, chain_id, validators)
    validate_last_commit(parent, block, chain_id, parent_validators)
    validate_tx_root(block)
    if certificate is None:
        return ()
    return validate_certificate(certificate, chain_id, validators, block.height, block.hash())


def validate_receipts_root(header: Header, receipts_root: bytes) -> None:
    """``receipts_root``: the root of the re-executed receipts. Raises BlockRuleViolation
    ``receipts_root`` (code ``receipts_root_mismatch``)."""
    _expect(
        header.height,
        "header.receipts_root",
        receipts_root,
        header.receipts_root,
        "receipts_root",
        code="receipts_root_mismatch",
        notes=("expected: the root of the re-executed receipts; found: the signed header's",),
    )


def validate_state_root(header: Header, state_root: bytes) -> None:
    """``state_root``: the root of the state after re-execution. Raises BlockRuleViolation
    ``state_root`` (code ``state_root_mismatch``); the auditor adds the keys behind it."""
    if state_root != header.state_root:
        raise BlockRuleViolation(
            header.height,
            "header.state_root",
            header.state_root.hex(),
            f"{state_root.hex()} (re-executed)",
            "state_root",
            code="state_root_mismatch",
        )


def validate_next_validators(header: Header, next_validators_hash: bytes) -> None:
    """``next_validators_hash``: the hash of the set in state after the block (the set that signs
    the next one). Raises BlockRuleViolation ``header_next_validators``."""
    _expect(
        header.height,
        "header.next_validators_hash",
        next_validators_hash,
        header.next_validators_hash,
        "header_next_validators",
    )


def validate_execution(
    header: Header, receipts_root: bytes, state_root: bytes, next_validators_hash: bytes
) -> None:
    """The checks on the results of executing the block (step 5), in order."""
    validate_receipts_root(header, receipts_root)
    validate_state_root(header, state_root)
    validate_next_validators(header, next_validators_hash)


def _name(validators: ValidatorSet, pubkey: bytes) -> str:
    """A validator's name for a report (its key's first 16 hex digits when it has none)."""
    for v in validators.validators:
        if v.pubkey == pubkey:
            return v.name or pubkey.hex()[:16]
    return pubkey.hex()[:16]


def _show(value: object) -> str:
    return value.hex() if isinstance(value, bytes) else str(value)


def _expect(
    h: int,
    field: str,
    expected: object,
    found: object,
    check: str,
    *,
    code: str | None = None,
    notes: tuple[str, ...] = (),
) -> None:
    if found != expected:
        raise BlockRuleViolation(h, field, _show(expected), _show(found), check, code=code, notes=notes)
