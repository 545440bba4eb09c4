"""The running API server: it opens the account-history index, makes the app over a node's query
object, binds the address, and registers the commit listeners (index, event hub, metrics) that
feed it; ``cleanup`` undoes all of it."""

from __future__ import annotations

from aiohttp import web

from node.api.common import EVENTS, INDEX, METRICS
from node.api.limits import SHUTDOWN_TIMEOUT_S, LimitsSource, default_limits
from node.api.malformed import ApiRunner
from node.api.routes import make_app
from node.events import EventHub
from node.index import INDEX_DIR, AccountIndex
from node.query import CommitListener, NodeQuery


class ApiServer:
    """The running API: its HTTP server and the index and event hub it feeds from commits."""

    def __init__(
        self,
        query: NodeQuery,
        runner: web.AppRunner,
        address: tuple[str, int],
        listeners: list[CommitListener],
    ) -> None:
        self.query = query
        self.runner = runner
        self.address = address
        self.index: AccountIndex | None = runner.app[INDEX]
        self.events: EventHub = runner.app[EVENTS]
        self._listeners = listeners

    async def cleanup(self) -> None:
        for listener in self._listeners:
            self.query.remove_commit_listener(listener)
        self.events.close()
        await self.runner.cleanup()
        if self.index is not None:
            self.index.close()


def open_index(query: NodeQuery) -> AccountIndex | None:
    """The node's account-history index, or None (logged) if it cannot be opened: history is
    then unavailable, and everything else still served."""
    try:
        return AccountIndex(query.home / INDEX_DIR, query.index_source(), query.log.getChild("index"))
    except Exception:
        query.log.exception("cannot open the account-history index; /accounts/{id}/history is unavailable")
        return None


async def serve(
    query: NodeQuery, address: tuple[str, int], limits: LimitsSource = default_limits
) -> ApiServer:
    """Start serving the API at ``address`` (port 0: any free port; ``ApiServer.address`` says
    which)."""
    index = open_index(query) if query.account_history else None
    app = make_app(query, index, limits)
    listeners: list[CommitListener] = [app[EVENTS].on_commit, app[METRICS].on_commit]
    if index is not None:
        listeners.insert(0, index.on_commit)
    runner = ApiRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT_S)
    try:
        await runner.setup()
        site = web.TCPSite(runner, address[0], address[1])
        await site.start()
    except BaseException:
        await runner.cleanup()
        if index is not None:
            index.close()
        raise
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()  # type: ignore[attr-defined]
    for listener in listeners:
        query.add_commit_listener(listener)
    if index is not None:
        index.start_catch_up()
    return ApiServer(query, runner, (bound[0], bound[1]), listeners)
