"""Settlement contracts and the contract API.

``default_registry()`` is the set every clearchain node runs, in genesis-initialisation order.
"""

from __future__ import annotations

from contracts.api import Registry


def default_registry() -> Registry:
    from contracts.accounts import Accounts
    from contracts.bonds import Bonds
    from contracts.breakers import Breakers
    from contracts.corporate_actions import CorporateActions
    from contracts.custody import Custody
    from contracts.cycles import SettlementCycles
    from contracts.disclosure import Disclosure
    from contracts.escrow import Escrow
    from contracts.governance import Governance
    from contracts.index_fund import IndexFund
    from contracts.instruments import Instruments
    from contracts.margin import Margin
    from contracts.membership import Membership
    from contracts.oracle import Oracle
    from contracts.settlement import Settlement

    return Registry([
        Membership(), Instruments(), Accounts(), Custody(), Settlement(),
        Oracle(), Breakers(), Disclosure(), Bonds(), SettlementCycles(), Escrow(), Margin(),
        CorporateActions(), IndexFund(), Governance(),
    ])  # fmt: skip
