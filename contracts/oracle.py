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

State::

    oracle/sub/<instrument>/<oracle>           -> [price, height]
    oracle/hist/<instrument>/<inverted height>  -> [median, sources]   (inverted: 2**64-1-height,
                                                   so a forward scan from h finds the latest <= h)

Failure codes: ``not_oracle``, ``unknown_instrument``, ``instrument_is_cash``, ``duplicate_instrument``.
"""

from __future__ import annotations

from typing import Any

from chain.limits import PRICE_MAX
from contracts.api import Context, Contract, ContractError, method, view
from contracts.instruments import get_instrument
from contracts.membership import require_role
from contracts.params import BPS, Param
from contracts.schema import Id, Int, ListOf, Record

NAME = "oracle"
ORACLES_READ_MAX = 64  # submissions read per instrument: bounds a median's work
PRICES_PER_TX_MAX = 100
_INVERT = 2**64 - 1

PARAMS = {
    "staleness_blocks": Param(100, 1, 1_000_000, "a submission older than this many blocks no longer counts"),
    "min_sources": Param(1, 1, ORACLES_READ_MAX, "fresh submissions needed for a price"),
    "band_bps": Param(
        1_000, 1, 100 * BPS, "a price further than this from the fresh prices' median is out of band"
    ),
    "band_min_sources": Param(2, 1, ORACLES_READ_MAX, "other fresh prices needed before the band applies"),
}


def median(prices: list[int]) -> int:
    """Median of a non-empty list; with an even count, the floor of the two middle values' mean."""
    ordered = sorted(prices)
    mid = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[mid]
    return (ordered[mid - 1] + ordered[mid]) // 2


def fresh_submissions(ctx: Context, iid: str) -> list[tuple[str, int, int]]:
    """(oracle, price, height) of each oracle's latest submission that is still fresh, by oracle."""
    view_ = ctx.view(NAME)
    from contracts.params import get

    oldest = ctx.height - get(ctx, NAME, "staleness_blocks")
    out = []
    prefix = f"sub/{iid}/"
    for i, (key, (price, height)) in enumerate(view_.iterate(prefix)):
        if i >= ORACLES_READ_MAX:
            break
        if height >= oldest:
            out.append((key[len(prefix) :], price, height))
    return out


def current_price(ctx: Context, iid: str) -> int | None:
    """The instrument's price as of the current block, or None (too few fresh submissions)."""
    from contracts.params import get

    fresh = fresh_submissions(ctx, iid)
    if not fresh or len(fresh) < get(ctx, NAME, "min_sources"):
        return None
    return median([p for _, p, _ in fresh])


def require_price(ctx: Context, iid: str) -> int:
    """``current_price`` or ContractError ``no_price``."""
    price = current_price(ctx, iid)
    if price is None:
        raise ContractError("no_price", f"no fresh oracle price for {iid} at height {ctx.height}")
    return price


def price_at(ctx: Context, iid: str, height: int) -> tuple[int, int] | None:
    """(median, height it was recorded) of the latest price recorded at or before ``height``."""
    prefix = f"hist/{iid}/"
    start = f"{_INVERT - min(max(0, height), _INVERT):020d}"
    for key, (price, _sources) in ctx.view(NAME).iterate(prefix, start):
        return price, _INVERT - int(key[len(prefix) :])
    return None


def _record(ctx: Context, iid: str, oracle: str, price: int) -> None:
    from contracts import bonds, breakers
    from contracts.params import get

    view_ = ctx.view(NAME)
    others = [p for o, p, _ in fresh_submissions(ctx, iid) if o != oracle]
    view_.put(f"sub/{iid}/{oracle}", [price, ctx.height])
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
    view_.put(f"hist/{iid}/{_INVERT - ctx.height:020d}", [now, sources])
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
        iid = query.get("instrument", "")
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
