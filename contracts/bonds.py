"""Bonds (STUB, to be written): exchanges, oracles, validators and issuers post bonds that
return after a clean term and are slashed on proven misconduct."""

from __future__ import annotations

from contracts.api import Context, Contract

NAME = "bonds"


def slash(ctx: Context, participant: str, reason: str, ref: str) -> int:
    """Slash ``participant``'s active bond for ``reason`` (a stable code, e.g.
    ``oracle_out_of_band``, ``missed_disclosure``, ``double_sign``) with evidence reference
    ``ref``; returns the amount slashed (0 if it has no active bond). Never fails the caller's
    call for want of a bond: the finding is recorded either way."""
    return 0


class Bonds(Contract):
    name = NAME
