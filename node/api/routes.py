"""The route table: every endpoint of docs/API.md in one list, and the app made from it.

One table, so that what the API offers can be read (and later described as OpenAPI, or checked
against a read policy per role) in one place; each row names its method, path, handler and the
resource module that implements it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from node.api import (
    accounts,
    blocks,
    contract_views,
    directory,
    node_info,
    proofs,
    stream,
    txs,
    withdrawals,
)
from node.api.common import EVENTS, INDEX, LIMITS, METRICS, QUERY, errors_middleware
from node.api.limits import BODY_BYTES_MAX, LimitsSource, default_limits
from node.events import EventHub, Metrics
from node.index import AccountIndex
from node.query import NodeQuery

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Route:
    method: str  # GET or POST
    path: str
    handler: Handler


ROUTES: tuple[Route, ...] = (
    Route("GET", "/status", node_info.get_status),
    Route("POST", "/txs", txs.post_txs),
    Route("GET", "/txs/{hash}", txs.get_tx),
    Route("GET", "/blocks", blocks.get_blocks),
    Route("GET", "/blocks/{ref}", blocks.get_block),
    Route("GET", "/history", blocks.get_history_page),
    Route("GET", "/accounts", accounts.get_accounts),
    Route("GET", "/accounts/{id}", accounts.get_account),
    Route("GET", "/accounts/{id}/history", accounts.get_history),
    Route("GET", "/state/proof", proofs.get_proof),
    Route("GET", "/participants", directory.get_participants),
    Route("GET", "/participants/{id}", directory.get_participant),
    Route("GET", "/instruments", directory.get_instruments),
    Route("GET", "/validators", directory.get_validators),
    Route("GET", "/trades/{exchange}/{trade_id}", directory.get_trade),
    Route("GET", "/withdrawals", withdrawals.get_withdrawals),
    Route("GET", "/withdrawals/{id}", withdrawals.get_withdrawal),
    Route("GET", "/reserves", accounts.get_reserves),
    Route("GET", "/contracts", contract_views.get_contracts),
    Route("GET", "/contracts/{contract}/{view}", contract_views.get_contract_view),
    Route("GET", "/evidence", node_info.get_evidence),
    Route("GET", "/events", stream.get_events),
    Route("GET", "/metrics", node_info.get_metrics),
)


def make_app(
    query: NodeQuery, index: AccountIndex | None = None, limits: LimitsSource = default_limits
) -> web.Application:
    """The aiohttp application serving ``ROUTES`` over ``query``."""
    app = web.Application(middlewares=[errors_middleware], client_max_size=BODY_BYTES_MAX)
    app[QUERY] = query
    app[LIMITS] = limits
    app[INDEX] = index
    app[EVENTS] = EventHub()
    app[METRICS] = Metrics()
    for route in ROUTES:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)
        else:
            app.router.add_post(route.path, route.handler)
    return app
