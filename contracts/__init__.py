"""Settlement contracts and the contract API.

``default_registry()`` is the set every clearchain node runs, in genesis-initialisation order.
"""

from __future__ import annotations

from contracts.api import Registry


def default_registry() -> Registry:
    from contracts.accounts import Accounts
    from contracts.custody import Custody
    from contracts.instruments import Instruments
    from contracts.membership import Membership
    from contracts.settlement import Settlement

    return Registry([Membership(), Instruments(), Accounts(), Custody(), Settlement()])
