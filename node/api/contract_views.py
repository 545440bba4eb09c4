"""Contract routes: ``GET /contracts`` (every contract with its code hash, methods, tasks, views
and parameters) and ``GET /contracts/{contract}/{view}`` (a contract's read-only ``@view`` of
committed state at the head)."""

from __future__ import annotations

from aiohttp import web

from chain.errors import ContractError
from contracts.api import Context
from contracts.params import all_params
from node.api.common import LIMITS, QUERY, error, parse_id
from node.events import json_value


async def get_contracts(request: web.Request) -> web.Response:
    """Every contract with its code hash, methods (argument names), tasks, views and
    parameters [value, min, max] as of the head."""
    query = request.app[QUERY]
    registry = query.contracts()
    hashes = registry.code_hashes()
    state = query.state()
    env = query.call_env()
    out = []
    for contract in registry.contracts:
        name = contract.name
        ctx = Context(state, env, "", name)
        out.append({
            "name": name,
            "code_hash": hashes[name],
            "methods": [{"name": m, "args": [a for a, _ in params]} for c, m, params in registry.methods() if c == name],
            "tasks": [t for c, t in registry.tasks() if c == name],
            "views": [v for c, v in registry.views() if c == name],
            "params": {k: {"value": v[0], "min": v[1], "max": v[2]} for k, v in all_params(ctx, name)},
        })  # fmt: skip
    return web.json_response({"height": env.height, "contracts": out})


async def get_contract_view(request: web.Request) -> web.Response:
    """A contract's read-only view of committed state at the head (``@view`` in contracts/)."""
    query = request.app[QUERY]
    chars_max = request.app[LIMITS]().query_chars_max
    contract = parse_id(request.match_info["contract"], "contract")
    view_name = parse_id(request.match_info["view"], "view")
    params = {}
    for key, value in request.query.items():
        if len(key) > chars_max or len(value) > chars_max:
            return error(400, "bad_query", f"query parameters are at most {chars_max} characters")
        params[key] = value
    env = query.call_env()
    try:
        doc = query.contracts().read_view(query.state(), env, contract, view_name, params)
    except ContractError as exc:
        status = 404 if exc.code in ("unknown_view", "not_found") or exc.code.startswith("unknown_") else 400
        return error(status, exc.code, exc.message)
    return web.json_response(
        {"height": env.height, "contract": contract, "view": view_name, "result": json_value(doc)}
    )
