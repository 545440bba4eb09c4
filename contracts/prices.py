"""The oracle's prices: its state layout, and the reads every price user shares (the median of the
fresh submissions, the price recorded at a height). The oracle contract (contracts/oracle.py)
writes these records; the circuit breakers, margin, index funds and audit read them through here.

Why a module of its own: the oracle calls the circuit breaker after each new median
(``breakers.on_price``), and the breaker reads prices; with the reads in the oracle's module the
two modules imported each other. Now both import this one. It is pinned with the shared contract
code (``contract-runtime``, contracts/api.py), so no price rule can change without a pin changing.

State (under the oracle's namespace)::

    oracle/sub/<instrument>/<oracle>            -> [price, height]
    oracle/hist/<instrument>/<inverted height>  -> [median, sources]   (inverted: 2**64-1-height,
                                                   so a forward scan from h finds the latest <= h)
"""

from __future__ import annotations

from contracts.api import Context, ContractError
from contracts.params import get

NAME = "oracle"
ORACLES_READ_MAX = 64  # submissions read per instrument: bounds a median's work
_INVERT = 2**64 - 1
_PREFIX = NAME.encode() + b"/"
_SUB = "sub/"
_HIST = "hist/"


def sub_key(iid: str, oracle: str) -> bytes:
    """State key of ``oracle``'s latest submission for ``iid``."""
    return _PREFIX + f"{_SUB}{iid}/{oracle}".encode()


def hist_key(iid: str, height: int) -> bytes:
    """State key of the median of ``iid`` recorded at ``height``."""
    return _PREFIX + f"{_HIST}{iid}/{_INVERT - height:020d}".encode()


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
    oldest = ctx.height - get(ctx, NAME, "staleness_blocks")
    out = []
    prefix = f"{_SUB}{iid}/"
    for i, (key, (price, height)) in enumerate(view_.iterate(prefix)):
        if i >= ORACLES_READ_MAX:
            break
        if height >= oldest:
            out.append((key[len(prefix) :], price, height))
    return out


def current_price(ctx: Context, iid: str) -> int | None:
    """The instrument's price as of the current block, or None (too few fresh submissions)."""
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
    prefix = f"{_HIST}{iid}/"
    start = f"{_INVERT - min(max(0, height), _INVERT):020d}"
    for key, (price, _sources) in ctx.view(NAME).iterate(prefix, start):
        return int(price), _INVERT - int(key[len(prefix) :])
    return None
