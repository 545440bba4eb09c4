"""The error hierarchy: one root for every expected failure, each with a stable snake_case code
that clients switch on and a human message.

Bugs are not errors: they are assertions (see ``invariant``) that stop the process.
"""

from __future__ import annotations


class ClearchainError(Exception):
    """Root of every expected failure. ``code`` is stable; ``message`` is for people."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class EncodingError(ClearchainError):
    """Bytes that are not canonical clearchain msgpack, or a value that cannot be encoded."""


class InvalidTransaction(ClearchainError):
    """A transaction that must never enter a block (malformed, badly signed, replayed, expired,
    wrong chain, unknown call, ill-typed arguments)."""


class InvalidBlock(ClearchainError):
    """A block that breaks the chain's rules (bad link, bad root, bad certificate ...)."""


class BlockRuleViolation(InvalidBlock):
    """A block that breaks one rule of ``chain/validation``, with the data that explains it:
    the height, the field (``header.tx_root``, ``certificate.signatures[2]``), the expected value
    (what the rules, the signed header or the parent demand), the found value (what the block
    holds, or what executing it gives), and ``check``, a stable name of the rule. ``code`` is the
    ``InvalidBlock`` code that nodes log and tests switch on; it equals ``check`` except for the
    few rules whose codes predate the auditor's names (``hash_link`` is ``header_prev_hash``,
    the roots are ``*_root_mismatch``). The auditor turns one into its discrepancy report."""

    def __init__(
        self,
        height: int,
        field: str,
        expected: str,
        found: str,
        check: str,
        *,
        code: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> None:
        super().__init__(code or check, f"height {height}: {field} expected {expected}, found {found}")
        self.height = height
        self.field = field
        self.expected = expected
        self.found = found
        self.check = check
        self.notes = notes


class ContractError(ClearchainError):
    """A contract call that fails by the rules (insufficient cash, halted instrument ...).

    The transaction is still included, with a failed receipt carrying this code and message,
    and none of the call's writes.
    """


class KeyFileError(ClearchainError):
    """A key file that is missing, malformed or readable by others."""


class GenesisError(ClearchainError):
    """A genesis document that does not validate; the message names the field."""


class StoreError(ClearchainError):
    """A store that is missing, corrupt, or for another chain."""


class InvariantViolation(AssertionError):
    """A broken invariant that guards money: a bug, never an input error."""


def invariant(condition: bool, message: str) -> None:
    """Assert ``condition`` even under ``python -O``; raise InvariantViolation otherwise."""
    if not condition:
        raise InvariantViolation(message)


class ContractCodeMismatch(ClearchainError):
    """This node's contract code differs from the code hashes genesis pins."""
