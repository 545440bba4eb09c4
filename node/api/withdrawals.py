"""Withdrawal routes: one withdrawal's record, and the queue of pending ones in id order.

A withdrawal's record lives in custody state for good (contracts/custody.py: ``pending``, then
``confirmed``, ``rejected`` or ``cancelled``), so ``GET /withdrawals/{id}`` reads state. Custody
keys its records by the id in decimal text, which does not sort by id ("10" < "2"), and keeps no
list of the pending ones; the account-history index does (node/index.py ``w/``, keyed by the id
big-endian), so the queue takes its ids, in order, from the index and each record from state.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from chain.display import format_amount
from chain.errors import ClearchainError
from chain.state import BlockState
from contracts.custody import PENDING, WithdrawalRecord, withdrawal_key
from contracts.instruments import read_instrument
from node.api.common import INDEX, QUERY, error, int_query, parse_uint, ready_index
from node.index import AccountIndex

WITHDRAWAL_ID_MAX = 2**63 - 1  # custody's own bound on an id
WITHDRAWALS_LIMIT_DEFAULT = 100
WITHDRAWALS_LIMIT_MAX = 1_000


def read_withdrawal(state: BlockState, wid: int) -> WithdrawalRecord | None:
    value = state.get(withdrawal_key(wid))
    return None if value is None else WithdrawalRecord(*value)


def withdrawal_json(
    state: BlockState, wid: int, record: WithdrawalRecord, index: AccountIndex | None
) -> dict[str, Any]:
    """The record with its amount in units. ``height`` is when it took its current status;
    ``requested_height`` is the request's (custody overwrites it when the withdrawal is final, so
    then it comes from the index, or is null when this node keeps none)."""
    instrument = read_instrument(state, record.asset)
    decimals = 0 if instrument is None else instrument.decimals
    requested: int | None = record.height
    if record.status != PENDING:
        requested = None if index is None or index.closed else index.requested_height(wid)
    return {
        "id": wid, "account": record.account, "asset": record.asset, "amount": record.amount,
        "decimals": decimals, "display": format_amount(record.amount, decimals),
        "requested_by": record.requested_by, "status": record.status, "height": record.height,
        "requested_height": requested,
    }  # fmt: skip


def _parse_wid(text: str, name: str) -> int:
    wid = parse_uint(text, name)
    if not 1 <= wid <= WITHDRAWAL_ID_MAX:
        raise ClearchainError("bad_request", f"{name} must be 1..{WITHDRAWAL_ID_MAX}")
    return wid


async def get_withdrawal(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    wid = _parse_wid(request.match_info["id"], "withdrawal id")
    state = query.state()
    record = read_withdrawal(state, wid)
    if record is None:
        return error(404, "unknown_withdrawal", f"no withdrawal {wid}")
    return web.json_response(withdrawal_json(state, wid, record, request.app[INDEX]))


async def get_withdrawals(request: web.Request) -> web.Response:
    """The pending queue: ``?status=pending`` (the default and the only status listed: a final
    withdrawal is looked up by its id), ``after`` an id, ``limit`` 1..1,000."""
    query = request.app[QUERY]
    status = request.query.get("status", PENDING)
    if status != PENDING:
        raise ClearchainError(
            "bad_request", "status must be pending (a final withdrawal: GET /withdrawals/{id})"
        )
    after_text = request.query.get("after")
    after = 0 if after_text is None else parse_uint(after_text, "after")
    if after > WITHDRAWAL_ID_MAX:
        raise ClearchainError("bad_request", f"after must be 0..{WITHDRAWAL_ID_MAX}")
    limit = int_query(request, "limit", WITHDRAWALS_LIMIT_DEFAULT, WITHDRAWALS_LIMIT_MAX)
    if limit < 1:
        raise ClearchainError("bad_request", f"limit must be 1..{WITHDRAWALS_LIMIT_MAX}")
    index = ready_index(request)
    if isinstance(index, web.Response):
        return index
    state = query.state()
    ids = index.pending_withdrawals(after, limit + 1)
    more = len(ids) > limit
    items = []
    for wid in ids[:limit]:
        record = read_withdrawal(state, wid)
        if record is not None and record.status == PENDING:  # state is the authority
            items.append(withdrawal_json(state, wid, record, index))
    next_after = ids[limit - 1] if more else None
    return web.json_response({"height": query.head().height, "withdrawals": items, "next": next_after})
