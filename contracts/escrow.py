"""Escrow / hash-time-locked contracts for cross-chain DvP (STUB, to be written)."""

from __future__ import annotations

from contracts.api import Contract

NAME = "escrow"


class Escrow(Contract):
    name = NAME
