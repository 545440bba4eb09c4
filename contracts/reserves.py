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
from contracts.accounts import ACCOUNT_PREFIX, BALANCE_PREFIX
from contracts.instruments import INSTRUMENT_PREFIX

_ACCOUNT = ACCOUNT_PREFIX
_BALANCE = BALANCE_PREFIX
_INSTRUMENT = INSTRUMENT_PREFIX
_SUPPLY = b"custody/supply/"
_RESERVE = b"custody/reserve/"
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
    kinds = {key[len(_ACCOUNT) :].decode(): record[1] for key, record in view.iterate(_ACCOUNT)}
    totals: dict[tuple[str, str], int] = {}
    for key, (available, locked) in view.iterate(_BALANCE):
        account, _, asset = key[len(_BALANCE) :].decode().partition("/")
        kind = kinds.get(account)
        invariant(kind in (CLIENT, HOUSE), f"balance {account}/{asset} on an account of kind {kind!r}")
        assert kind is not None
        totals[(asset, kind)] = totals.get((asset, kind), 0) + available + locked
    out = []
    for key, record in view.iterate(_INSTRUMENT):
        asset = key[len(_INSTRUMENT) :].decode()
        supply = view.get(_SUPPLY + asset.encode()) or 0
        reserve = view.get(_RESERVE + asset.encode())
        out.append(
            AssetReserves(
                asset=asset,
                decimals=record[1],
                client_total=totals.get((asset, CLIENT), 0),
                house_total=totals.get((asset, HOUSE), 0),
                supply=supply,
                attested=None if reserve is None else Attestation(*reserve),
            )
        )
    return tuple(out)
