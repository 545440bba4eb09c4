"""Oracle: authorised oracles publish prices per instrument; the chain keeps the median.

A participant with the ``oracle`` role submits a price (minor units of the instrument's
settlement currency per whole unit, like a trade price). The *current price* of an instrument is
the median of the latest submission of each oracle that is still fresh: submitted at a height no
more than ``staleness_blocks`` before the reading block. With fewer than ``min_sources`` fresh
submissions there is no price (None), and contracts that need one fail with ``no_price``. With
an even count the median is the floor of the mean of the two middle prices.

Every submission records the median as of that block in a history keyed by height, so
``price_at`` answers "what was the price at height h" (the latest recorded median at or before
h) for NAV, margin and audit questions about the past.

A submission far from the others is misconduct: when at least ``band_min_sources`` *other*
oracles have fresh prices and the new price lies more than ``band_bps`` from the median of all
fresh prices *including the new one*, the submission still counts (the median absorbs an
outlier) but the oracle's bond is slashed (contracts/bonds.py) and ``oracle_out_of_band`` is
emitted. The new price is part of the centre so that one bad oracle cannot make an honest one
look out of band: with the others at (100, 300) their median would be 200, and an honest 100
would be 50% off; the median of (100, 100, 300) is 100. After each submission the circuit
breaker (contracts/breakers.py) sees the new median.

State: ``oracle/sub/...`` (each oracle's latest submission) and ``oracle/hist/...`` (the median
by height), laid out and read in contracts/prices.py.

Failure codes: ``not_oracle``, ``unknown_instrument``, ``instrument_is_cash``, ``duplicate_instrument``.
"""

from __future__ import annotations

from typing import Any

from chain.limits import PRICE_MAX
from contracts import bonds, breakers
from contracts.api import Context, Contract, ContractError, method, required_query, view
from contracts.instruments import get_instrument
from contracts.membership import require_role
from contracts.params import BPS, Param, get
from contracts.prices import (
    _INVERT,
    NAME,
    ORACLES_READ_MAX,
    current_price,
    fresh_submissions,
    hist_key,
    median,
    price_at,
    require_price,
    sub_key,
)
from contracts.schema import Id, Int, ListOf, Record

__all__ = ["NAME", "Oracle", "current_price", "fresh_submissions", "median", "price_at", "require_price"]

PRICES_PER_TX_MAX = 100

PARAMS = {
    "staleness_blocks": Param(100, 1, 1_000_000, "a submission older than this many blocks no longer counts"),
    "min_sources": Param(1, 1, ORACLES_READ_MAX, "fresh submissions needed for a price"),
    "band_bps": Param(
        1_000, 1, 100 * BPS, "a price further than this from the fresh prices' median is out of band"
    ),
    "band_min_sources": Param(2, 1, ORACLES_READ_MAX, "other fresh prices needed before the band applies"),
}


def _record(ctx: Context, iid: str, oracle: str, price: int) -> None:
    view_ = ctx.view(NAME)
    others = [p for o, p, _ in fresh_submissions(ctx, iid) if o != oracle]
    ctx.state.put(sub_key(iid, oracle), [price, ctx.height])
    if len(others) >= get(ctx, NAME, "band_min_sources"):
        centre = median([*others, price])
        band = get(ctx, NAME, "band_bps")
        if abs(price - centre) * BPS > band * centre:
            view_.emit(
                "oracle_out_of_band", oracle=oracle, instrument=iid, price=price, median=centre, band_bps=band
            )
            bonds.slash(ctx, oracle, "oracle_out_of_band", f"{iid}@{ctx.height}")
    now = current_price(ctx, iid)
    if now is None:
        return
    sources = len(fresh_submissions(ctx, iid))
    ctx.state.put(hist_key(iid, ctx.height), [now, sources])
    view_.emit("price", instrument=iid, price=now, sources=sources)
    breakers.on_price(ctx, iid, now)


class Oracle(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(("instrument", Id()), ("price", Int(1, PRICE_MAX)))
    def submit(self, ctx: Context, iid: str, price: int) -> None:
        """An oracle publishes its price for one instrument."""
        require_role(ctx, "oracle")
        self._check_instrument(ctx, iid)
        _record(ctx, iid, ctx.sender, price)

    @method(
        (
            "prices",
            ListOf(
                Record((("instrument", Id()), ("price", Int(1, PRICE_MAX)))),
                max_items=PRICES_PER_TX_MAX,
                min_items=1,
            ),
        )
    )
    def submit_many(self, ctx: Context, prices: tuple[tuple[str, int], ...]) -> None:
        """An oracle publishes several prices in one transaction (all or nothing)."""
        require_role(ctx, "oracle")
        seen: set[str] = set()
        for iid, _ in prices:
            ctx.require(iid not in seen, "duplicate_instrument", f"{iid} is priced twice")
            seen.add(iid)
            self._check_instrument(ctx, iid)
        for iid, price in prices:
            _record(ctx, iid, ctx.sender, price)

    @staticmethod
    def _check_instrument(ctx: Context, iid: str) -> None:
        ins = get_instrument(ctx, iid)
        if ins is None:
            raise ContractError("unknown_instrument", f"no instrument {iid}")
        if ins.currency is None:
            raise ContractError("instrument_is_cash", f"{iid} is cash; it is the unit prices are quoted in")

    @view
    def price(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?instrument=ID[&height=H]``: the current price with its fresh submissions, or the
        recorded price at height H."""
        iid = required_query(query, "instrument")
        if get_instrument(ctx, iid) is None:
            raise ContractError("unknown_instrument", f"no instrument {iid!r}")
        if "height" in query:
            try:
                height = int(query["height"])
            except ValueError:
                raise ContractError("bad_query", "height must be an integer") from None
            if not 0 <= height <= _INVERT:
                raise ContractError("bad_query", f"height must be 0..{_INVERT}")
            found = price_at(ctx, iid, height)
            return {
                "instrument": iid,
                "height": height,
                "price": None if found is None else found[0],
                "recorded_at": None if found is None else found[1],
            }
        fresh = fresh_submissions(ctx, iid)
        return {
            "instrument": iid,
            "price": current_price(ctx, iid),
            "submissions": [{"oracle": o, "price": p, "height": h} for o, p, h in fresh],
        }
