"""The node's own routes: ``GET /status``, ``GET /evidence`` (double votes held) and
``GET /metrics`` (Prometheus text, node/events.py)."""

from __future__ import annotations

from aiohttp import web

from node.api.common import METRICS, QUERY


async def get_status(request: web.Request) -> web.Response:
    return web.json_response(request.app[QUERY].status())


async def get_evidence(request: web.Request) -> web.Response:
    return web.json_response({"evidence": request.app[QUERY].evidence_json()})


async def get_metrics(request: web.Request) -> web.Response:
    text = request.app[METRICS].render(request.app[QUERY])
    return web.Response(
        body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )
