"""Circuit breakers: an instrument halts by rule, not by anyone's judgement in the moment.

Two rules halt an instrument (``instruments.set_status(..., "halted", reason)``, after which
settlement fails its trades with ``instrument_halted``):

- **Price move** (``price_move``): the oracle (contracts/oracle.py) calls ``on_price`` after each
  new median. The median is compared with a *reference*: the median as of ``window_blocks``
  blocks ago (``prices.price_at``), or, while the instrument has been trading for less than a
  window, its *anchor* (the first median seen since the instrument was first priced or last
  resumed). It halts when ``|price - reference| * 10,000 > move_bps * reference`` (integers: no
  rounding). Re-anchoring after a resume means the reopening price is the new reference, so an
  instrument that governance resumed after a halt does not halt again on the same move.
- **Overdue disclosure** (``disclosure_overdue``): contracts/disclosure.py calls ``halt`` when an
  issuer misses a filing deadline.

Either way the breaker records why (``breakers/halt/<instrument>``; ``GET
/contracts/breakers/status?instrument=``) and emits ``breaker_tripped``. Resuming is governance's
(or an admin's) decision through the instruments contract, never automatic. While an instrument
is halted the price rule is not evaluated; the oracle's prices still count. ``on_price`` cannot
fail the oracle's submission: it only reads, writes its own records and halts a known instrument.

State::

    breakers/track/<instrument> -> [anchor_height, anchor_price, halted_seen]
        the anchor of the price rule; ``halted_seen``: a halt was seen since the anchor was set
        (the next median seen while active re-anchors)
    breakers/rule/<instrument>  -> [window_blocks, move_bps]   an admin's override of the params
    breakers/halt/<instrument>  -> [reason, height, price, reference, move_bps, window_blocks]
        the latest halt by rule (price, reference, move_bps, window_blocks are None for a halt
        that is not a price move)

Methods: ``set_rule(instrument, window_blocks, move_bps)`` and ``clear_rule(instrument)``, admin
only. Events: ``breaker_tripped`` (instrument, reason, price, reference, move_bps,
window_blocks, was_active), ``rule_set``, ``rule_cleared``; the instruments contract emits
``instrument_halted``. Failure codes: ``not_admin``, ``unknown_instrument``,
``instrument_is_cash``, ``param_out_of_bounds``, ``no_rule``.

Parameters: ``window_blocks`` (default 60, 1..1,000,000), ``move_bps`` (default 1,000 = 10%,
1..1,000,000). A rule override is checked against the same bounds as the parameters.
"""

from __future__ import annotations

from typing import Any

from contracts import prices
from contracts.api import Context, Contract, ContractError, method, required_query, view
from contracts.instruments import ACTIVE, HALTED, get_instrument, set_status
from contracts.membership import require_role
from contracts.params import BPS, Param, bounds, get
from contracts.schema import Id, Int

NAME = "breakers"
PRICE_MOVE = "price_move"
HALTS_PAGE_MAX = 100  # halt records one ``halts`` view returns

PARAMS = {
    "window_blocks": Param(
        60, 1, 1_000_000, "a price move is measured against the median this many blocks ago"
    ),
    "move_bps": Param(
        1_000, 1, 100 * BPS, "a move larger than this share of the reference halts the instrument"
    ),
}


# --- pure rules -------------------------------------------------------------------------------
def is_wild_move(price: int, reference: int, move_bps: int) -> bool:
    """True if ``price`` is more than ``move_bps`` basis points away from ``reference`` (> 0)."""
    return abs(price - reference) * BPS > move_bps * reference


def compute_reference(
    ctx: Context, iid: str, anchor_height: int, anchor_price: int, window_blocks: int
) -> int:
    """The price a move is measured from: the median ``window_blocks`` ago, or the anchor if the
    window reaches back before it (a median was recorded at the anchor, so one exists)."""
    start = ctx.height - window_blocks
    if start < anchor_height:
        return anchor_price
    found = prices.price_at(ctx, iid, start)
    return anchor_price if found is None else found[0]


# --- reads ------------------------------------------------------------------------------------
def get_rule(ctx: Context, iid: str) -> tuple[int, int, bool]:
    """(window_blocks, move_bps, overridden) that apply to ``iid``."""
    override = ctx.view(NAME).get("rule/" + iid)
    if override is not None:
        return int(override[0]), int(override[1]), True
    return get(ctx, NAME, "window_blocks"), get(ctx, NAME, "move_bps"), False


def halt_record(ctx: Context, iid: str) -> dict[str, Any] | None:
    """The latest halt by rule of ``iid`` as a dict, or None."""
    found = ctx.view(NAME).get("halt/" + iid)
    if found is None:
        return None
    reason, height, price, reference, move_bps, window_blocks = found
    return {
        "reason": reason,
        "height": height,
        "price": price,
        "reference": reference,
        "move_bps": move_bps,
        "window_blocks": window_blocks,
    }


# --- what other contracts call ----------------------------------------------------------------
def on_price(ctx: Context, iid: str, price: int) -> None:
    """Called by the oracle after each new median price of ``iid``: halts on a wild move.

    Never raises for a listed instrument (the oracle's submission must stand)."""
    view_ = ctx.view(NAME)
    ins = get_instrument(ctx, iid)
    if ins is None:
        return
    track = view_.get("track/" + iid)
    if ins.status != ACTIVE:
        if track is not None and not track[2]:
            view_.put("track/" + iid, [track[0], track[1], True])
        return
    if track is None or track[2]:  # first price, or the first since a halt: the new reference
        view_.put("track/" + iid, [ctx.height, price, False])
        return
    window_blocks, move_bps, _ = get_rule(ctx, iid)
    reference = compute_reference(ctx, iid, int(track[0]), int(track[1]), window_blocks)
    if is_wild_move(price, reference, move_bps):
        _trip(ctx, iid, PRICE_MOVE, price, reference, move_bps, window_blocks)


def halt(ctx: Context, iid: str, reason: str) -> bool:
    """Halt ``iid`` by rule ``reason`` (emits the instruments contract's ``instrument_halted``
    and ``breaker_tripped``); records the halt even if it was already halted. Returns True if
    this call halted it. Fails ``unknown_instrument``."""
    return _trip(ctx, iid, reason, None, None, None, None)


def _trip(
    ctx: Context,
    iid: str,
    reason: str,
    price: int | None,
    reference: int | None,
    move_bps: int | None,
    window_blocks: int | None,
) -> bool:
    view_ = ctx.view(NAME)
    changed = set_status(ctx, iid, HALTED, reason)
    view_.put("halt/" + iid, [reason, ctx.height, price, reference, move_bps, window_blocks])
    track = view_.get("track/" + iid)
    if track is not None and not track[2]:
        view_.put("track/" + iid, [track[0], track[1], True])
    view_.emit(
        "breaker_tripped",
        instrument=iid,
        reason=reason,
        price=price,
        reference=reference,
        move_bps=move_bps,
        window_blocks=window_blocks,
        was_active=changed,
    )
    return changed


def _require_security(ctx: Context, iid: str) -> None:
    ins = get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    if ins.currency is None:
        raise ContractError("instrument_is_cash", f"{iid} is cash; it has no price to break on")


def _require_within(ctx: Context, name: str, value: int) -> None:
    agreed = bounds(ctx, NAME, name)
    assert agreed is not None, "declared parameters exist from genesis"
    low, high = agreed
    if not low <= value <= high:
        raise ContractError("param_out_of_bounds", f"{name} must be {low}..{high}, got {value}")


class Breakers(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(("instrument", Id()), ("window_blocks", Int(1, 2**32)), ("move_bps", Int(1, 2**32)))
    def set_rule(self, ctx: Context, iid: str, window_blocks: int, move_bps: int) -> None:
        """An admin sets the price rule of one instrument (within the parameters' bounds)."""
        require_role(ctx, "admin")
        _require_security(ctx, iid)
        _require_within(ctx, "window_blocks", window_blocks)
        _require_within(ctx, "move_bps", move_bps)
        ctx.put("rule/" + iid, [window_blocks, move_bps])
        ctx.emit("rule_set", instrument=iid, window_blocks=window_blocks, move_bps=move_bps)

    @method(("instrument", Id()))
    def clear_rule(self, ctx: Context, iid: str) -> None:
        """An admin returns one instrument to the parameters' rule."""
        require_role(ctx, "admin")
        ctx.require(ctx.get("rule/" + iid) is not None, "no_rule", f"{iid} has no rule of its own")
        ctx.delete("rule/" + iid)
        ctx.emit("rule_cleared", instrument=iid)

    @view
    def status(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?instrument=ID``: its status, the rule that applies, the reference a move is
        measured from, and the latest halt by rule."""
        iid = required_query(query, "instrument")
        ins = get_instrument(ctx, iid)
        if ins is None:
            raise ContractError("unknown_instrument", f"no instrument {iid!r}")
        window_blocks, move_bps, overridden = get_rule(ctx, iid)
        track = ctx.get("track/" + iid)
        reference = None
        if track is not None and not track[2] and ins.status == ACTIVE:
            reference = compute_reference(ctx, iid, int(track[0]), int(track[1]), window_blocks)
        return {
            "instrument": iid,
            "status": ins.status,
            "window_blocks": window_blocks,
            "move_bps": move_bps,
            "rule_overridden": overridden,
            "price": prices.current_price(ctx, iid) if ins.currency is not None else None,
            "reference": reference,
            "anchor_height": None if track is None else track[0],
            "last_halt": halt_record(ctx, iid),
        }

    @view
    def halts(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?after=ID&limit=N``: the latest halt by rule of each instrument, by instrument id,
        a page of at most 100 (``next`` is the ``after`` of the next page)."""
        after = query.get("after", "")
        try:
            limit = int(query.get("limit", str(HALTS_PAGE_MAX)))
        except ValueError:
            raise ContractError("bad_query", "limit must be an integer") from None
        if not 1 <= limit <= HALTS_PAGE_MAX:
            raise ContractError("bad_query", f"limit must be 1..{HALTS_PAGE_MAX}")
        rows: list[dict[str, Any]] = []
        start = after + "\x00" if after else ""
        for key, _ in ctx.iterate("halt/", start):
            if len(rows) == limit:
                return {"halts": rows, "next": rows[-1]["instrument"]}
            iid = key[len("halt/") :]
            ins = get_instrument(ctx, iid)
            rows.append(
                {
                    "instrument": iid,
                    "status": None if ins is None else ins.status,
                    **(halt_record(ctx, iid) or {}),
                }
            )
        return {"halts": rows, "next": None}
