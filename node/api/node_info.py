"""The node's own routes: ``GET /status``, ``GET /evidence`` (double votes held) and
``GET /metrics`` (Prometheus text, node/events.py)."""

from __future__ import annotations

from aiohttp import web

from node.api.common import METRICS, QUERY


async def get_status(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    doc = query.status()
    # The height-0 block's hash: with chain_id, which chain this node serves (``net up`` and
    # ``net status`` check it against their folder's genesis.json).
    genesis = query.genesis_hash()
    doc["genesis_hash"] = None if genesis is None else genesis.hex()
    return web.json_response(doc)


async def get_evidence(request: web.Request) -> web.Response:
    return web.json_response({"evidence": request.app[QUERY].evidence_json()})


async def get_metrics(request: web.Request) -> web.Response:
    text = request.app[METRICS].render(request.app[QUERY])
    return web.Response(
        body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
