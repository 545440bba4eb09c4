"""Governance by admin multisig (STUB, to be written)."""

from __future__ import annotations

from contracts.api import Contract

NAME = "governance"


class Governance(Contract):
    name = NAME
