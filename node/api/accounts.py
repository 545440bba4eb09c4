"""Account routes: an account with its balances, its movements from the account-history index
(node/index.py), and the reserves report (client balances against custodian attestations).
State layouts and records come from the contracts that own them (contracts/accounts.py,
instruments.py, reserves.py)."""

from __future__ import annotations

from aiohttp import web

from chain.display import format_amount
from contracts.accounts import balances_in, read_account
from contracts.instruments import read_instrument
from contracts.reserves import compute_reserves
from node.api.common import INDEX, LIMITS, QUERY, error, int_query, parse_id
from node.index import HISTORY_LIMIT_MAX


async def get_account(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    account = parse_id(request.match_info["id"], "account id")
    state = query.state()
    record = read_account(state, account)
    if record is None:
        return error(404, "unknown_account", f"no account {account}")
    balances = []
    for asset, available, locked in balances_in(state, account):
        instrument = read_instrument(state, asset)
        decimals = 0 if instrument is None else instrument.decimals
        balances.append({
            "asset": asset, "available": available, "locked": locked, "decimals": decimals,
            "display": format_amount(available, decimals), "locked_display": format_amount(locked, decimals),
        })  # fmt: skip
    return web.json_response({
        "id": account, "owner": record.owner, "kind": record.kind, "client": record.client,
        "status": record.status, "height": query.head().height, "balances": balances,
    })  # fmt: skip


async def get_history(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    account = parse_id(request.match_info["id"], "account id")
    from_height = int_query(request, "from_height", 1)
    limit = int_query(request, "limit", request.app[LIMITS]().history_limit_default, HISTORY_LIMIT_MAX)
    if limit < 1:
        return error(400, "bad_request", f"limit must be 1..{HISTORY_LIMIT_MAX}")
    if read_account(query.state(), account) is None:
        return error(404, "unknown_account", f"no account {account}")
    index = request.app[INDEX]
    if index is None or index.closed:
        if not query.account_history:
            return error(
                503, "index_unavailable", "this node keeps no account history (rpc.account_history = false)"
            )
        return error(
            503, "index_unavailable", "this node's account-history index could not be opened; see its log"
        )
    head = query.head().height
    if index.height < head:
        index.start_catch_up()
        return error(
            503,
            "index_catching_up",
            f"the account-history index is at height {index.height} of {head}; try again shortly",
        )
    movements, next_from = index.history(account, from_height, limit)
    return web.json_response({"account": account, "movements": movements, "next_from_height": next_from})


async def get_reserves(request: web.Request) -> web.Response:
    """Client and house totals, supply and the latest attestation per asset, at the head.

    Computed synchronously on the loop, so no block commits half-way and every figure is of one
    state; it scans every balance (contracts/reserves.py), which is what a report costs."""
    query = request.app[QUERY]
    head = query.head()
    assets = [
        {
            "asset": r.asset, "decimals": r.decimals, "client_total": r.client_total,
            "house_total": r.house_total, "supply": r.supply,
            "attested": None if r.attested is None else {
                "amount": r.attested.amount, "reference": r.attested.reference,
                "height": r.attested.height, "custodian": r.attested.custodian,
            },
            "coverage": r.coverage,
        }
        for r in compute_reserves(query.state())
    ]  # fmt: skip
    return web.json_response({
        "height": head.height, "state_root": head.state_root.hex(), "block_hash": head.hash().hex(),
        "assets": assets,
    })  # fmt: skip
