"""Issuer disclosures (PARTLY STUB, to be completed): issuers owe periodic filings per
instrument; a missed deadline halts the instrument (contracts/breakers.py) and slashes the
issuer's bond (contracts/bonds.py).

The issuer registry is here: ``disclosure/issuer/<instrument> -> issuer participant id``, set by
an admin. Corporate actions (contracts/corporate_actions.py) read it to know who may announce a
dividend or split of an instrument.
"""

from __future__ import annotations

from contracts.api import Context, Contract, ContractError, method
from contracts.instruments import get_instrument
from contracts.membership import has_role, require_role
from contracts.schema import Id

NAME = "disclosure"


def issuer_of(ctx: Context, iid: str) -> str | None:
    """The participant registered as ``iid``'s issuer, or None."""
    found = ctx.view(NAME).get("issuer/" + iid)
    return None if found is None else str(found)


def is_overdue(ctx: Context, iid: str) -> bool:
    """True if ``iid``'s issuer has an overdue disclosure."""
    return False


class Disclosure(Contract):
    name = NAME

    @method(("instrument", Id()), ("issuer", Id()))
    def register_issuer(self, ctx: Context, iid: str, issuer: str) -> None:
        """An admin names the issuer of a listed security (it must hold the issuer role)."""
        require_role(ctx, "admin")
        ins = get_instrument(ctx, iid)
        if ins is None:
            raise ContractError("unknown_instrument", f"no instrument {iid}")
        ctx.require(ins.currency is not None, "instrument_is_cash", f"{iid} is cash")
        ctx.require(has_role(ctx, issuer, "issuer"), "not_issuer", f"{issuer} does not hold the issuer role")
        ctx.put("issuer/" + iid, issuer)
        ctx.emit("issuer_registered", instrument=iid, issuer=issuer)
