"""Corporate actions: dividends and splits (STUB, to be written)."""

from __future__ import annotations

from contracts.api import Contract

NAME = "corporate_actions"


class CorporateActions(Contract):
    name = NAME
