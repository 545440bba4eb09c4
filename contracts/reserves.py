"""The reserves report: per asset, what the ledger owes clients and houses against what the
custodian attests it holds off the ledger.

For every instrument it adds up the balances (available + locked) of client accounts and of house
accounts (the kind comes from ``accounts/acct/<id>``), reads the ledger supply
(``custody/supply/<asset>``) and the custodian's latest attestation (``custody/reserve/<asset>``),
and computes the coverage ``attested - client_total``: client assets are the ones segregation
protects, so a negative coverage is a shortfall: the custodian says it holds less than the
ledger says clients own. Integers only (minor units).

Cost: this reads every account record and every balance, O(accounts x assets held). It is for
reports (``GET /reserves``, ``clearchain reserves``, tests) and must never be called by a
transaction, whose work is bounded by its arguments.
"""

from __future__ import annotations

from dataclasses import dataclass

from chain.errors import invariant
from chain.state import BlockState, StateReader
from contracts.accounts import iterate_accounts, iterate_balances
from contracts.custody import read_reserve, read_supply
from contracts.instruments import iterate_instruments

CLIENT = "client"
HOUSE = "house"


@dataclass(frozen=True, slots=True)
class Attestation:
    """A custodian's statement that it holds ``amount`` of an asset, made at ``height``."""

    amount: int
    reference: str
    height: int
    custodian: str


@dataclass(frozen=True, slots=True)
class AssetReserves:
    asset: str
    decimals: int
    client_total: int  # available + locked over client accounts
    house_total: int  # available + locked over house accounts
    supply: int  # custody/supply/<asset>: what deposits minus withdrawals put on the ledger
    attested: Attestation | None

    @property
    def coverage(self) -> int | None:
        """Attested minus client total (negative: a shortfall); None without an attestation."""
        return None if self.attested is None else self.attested.amount - self.client_total

    @property
    def is_shortfall(self) -> bool:
        coverage = self.coverage
        return coverage is not None and coverage < 0


def compute_reserves(state: StateReader | BlockState) -> tuple[AssetReserves, ...]:
    """The report for every instrument, in instrument id order, read from ``state`` (committed
    state, or a block's overlay). O(accounts): see the module docstring."""
    view = state if isinstance(state, BlockState) else BlockState(state)
    kinds = {account: record.kind for account, record in iterate_accounts(view)}
    totals: dict[tuple[str, str], int] = {}
    for account, asset, available, locked in iterate_balances(view):
        kind = kinds.get(account)
        invariant(kind in (CLIENT, HOUSE), f"balance {account}/{asset} on an account of kind {kind!r}")
        assert kind is not None
        totals[(asset, kind)] = totals.get((asset, kind), 0) + available + locked
    out = []
    for asset, record in iterate_instruments(view):
        reserve = read_reserve(view, asset)
        out.append(
            AssetReserves(
                asset=asset,
                decimals=record.decimals,
                client_total=totals.get((asset, CLIENT), 0),
                house_total=totals.get((asset, HOUSE), 0),
                supply=read_supply(view, asset),
                attested=None if reserve is None else Attestation(*reserve),
            )
        )
    return tuple(out)
