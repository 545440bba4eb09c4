"""Margin, collateral and the default waterfall (STUB, to be written)."""

from __future__ import annotations

from contracts.api import Contract

NAME = "margin"


class Margin(Contract):
    name = NAME
