"""Settlement cycles with multilateral netting (STUB, to be written)."""

from __future__ import annotations

from contracts.api import Contract

NAME = "cycles"


class SettlementCycles(Contract):
    name = NAME
