"""Directory routes: who and what the chain knows (participants with their roles, key policies
and nonces; instruments; the validator set; a trade, settled or failed). Records come from the
contracts that own them (contracts/membership.py, instruments.py, settlement.py) and
chain/policy.py; a failed trade, which leaves no record in state, from the node's index
(node/index.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, TypeVar

from aiohttp import web

from chain.state import BlockState
from contracts.instruments import iterate_instruments
from contracts.membership import iterate_participants, read_nonce, read_policy, read_roles
from contracts.settlement import read_trade
from node.api.common import INDEX, LIMITS, QUERY, error, parse_id, ready_index

T = TypeVar("T")


async def get_participants(request: web.Request) -> web.Response:
    state = request.app[QUERY].state()
    rows, next_after = _page(request, lambda after: iterate_participants(state, after))
    return web.json_response(
        {"participants": [_participant_json(state, pid, roles) for pid, roles in rows], "next": next_after}
    )


async def get_participant(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    pid = parse_id(request.match_info["id"], "participant id")
    state = query.state()
    roles = read_roles(state, pid)
    if roles is None:
        return error(404, "unknown_participant", f"no participant {pid}")
    doc = _participant_json(state, pid, roles)
    nonce = read_nonce(state, pid)
    pending = query.last_pending_nonce(pid)
    doc["nonce"] = nonce
    doc["next_nonce"] = (nonce if pending is None else pending) + 1
    return web.json_response(doc)


def _participant_json(state: BlockState, pid: str, roles: tuple[str, ...]) -> dict[str, Any]:
    policy = read_policy(state, pid)
    threshold, keys, active = policy if policy is not None else (0, (), False)
    return {
        "id": pid,
        "roles": list(roles),
        "threshold": threshold,
        "keys": [k.hex() for k in keys],
        "active": active,
    }


async def get_instruments(request: web.Request) -> web.Response:
    state = request.app[QUERY].state()
    rows, next_after = _page(request, lambda after: iterate_instruments(state, after))
    instruments = [
        {"id": iid, "kind": r.kind, "decimals": r.decimals, "currency": r.currency, "status": r.status}
        for iid, r in rows
    ]
    return web.json_response({"instruments": instruments, "next": next_after})


def _page(request: web.Request, records: Any) -> tuple[list[tuple[str, Any]], str | None]:
    """Up to the list page maximum of (id, record) from ``records(after)`` (an iterator in id
    order after the id in ``?after=``); and the id to pass as ``after`` for the next page, or
    None."""
    after_text = request.query.get("after")
    after = None if after_text is None else parse_id(after_text, "after")
    page_max = request.app[LIMITS]().list_page_max
    rows: list[tuple[str, Any]] = []
    found: Iterator[tuple[str, Any]] = records(after)
    for ident, value in found:
        if len(rows) == page_max:
            return rows, rows[-1][0]
        rows.append((ident, value))
    return rows, None


async def get_validators(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    vset = query.validators()
    return web.json_response({
        "height": query.head().height,
        "validators": [{"pub_key": v.pubkey.hex(), "power": v.power, "name": v.name} for v in vset.validators],
        "total_power": vset.total_power,
    })  # fmt: skip


async def get_trade(request: web.Request) -> web.Response:
    """A settled (or in-cycle) trade from settlement state; else its latest failure from the
    index. State first: a settled trade id is final, so a later success wins over any failure."""
    query = request.app[QUERY]
    exchange = parse_id(request.match_info["exchange"], "exchange")
    trade_id = parse_id(request.match_info["trade_id"], "trade id")
    record = read_trade(query.state(), exchange, trade_id)
    if record is not None:
        height, trade_status, trade_date = record
        return web.json_response(
            {
                "exchange": exchange,
                "trade_id": trade_id,
                "status": trade_status,
                "height": height,
                "trade_date": trade_date,
            }
        )
    kept = request.app[INDEX]
    failed = None if kept is None or kept.closed else kept.failed_trade(exchange, trade_id)
    if failed is not None:
        return web.json_response({"exchange": exchange, "trade_id": trade_id, "status": "failed", **failed})
    if kept is None or kept.closed:
        return error(
            404,
            "unknown_trade",
            f"{exchange} has no settled trade {trade_id} (this node keeps no index of failed trades)",
        )
    index = ready_index(request)  # behind the head: a failure may not be indexed yet
    if isinstance(index, web.Response):
        return index
    return error(404, "unknown_trade", f"{exchange} has no settled or failed trade {trade_id}")
