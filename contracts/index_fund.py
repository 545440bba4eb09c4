"""An index fund at NAV with capped weights (STUB, to be written)."""

from __future__ import annotations

from contracts.api import Contract

NAME = "index_fund"


class IndexFund(Contract):
    name = NAME
