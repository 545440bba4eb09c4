"""Issuer disclosures (STUB, to be written): issuers owe periodic filings per instrument; a
missed deadline halts the instrument (contracts/breakers.py) and slashes the issuer's bond
(contracts/bonds.py)."""

from __future__ import annotations

from contracts.api import Context, Contract

NAME = "disclosure"


def is_overdue(ctx: Context, iid: str) -> bool:
    """True if ``iid``'s issuer has an overdue disclosure."""
    return False


class Disclosure(Contract):
    name = NAME
