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
