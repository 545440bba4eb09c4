"""The event stream: ``GET /events``, server-sent events, one per committed block. A client
first gets the stored blocks from its start (``?from_height=`` or ``Last-Event-ID`` + 1) replayed
from the store, then the live ones from the event hub (node/events.py), with nothing missed or
sent twice."""

from __future__ import annotations

import asyncio

from aiohttp import web

from node.api.common import EVENTS, LIMITS, QUERY, error, int_query, parse_uint, pruned
from node.events import EventHub, sse_frame
from node.query import NodeQuery


async def get_events(request: web.Request) -> web.StreamResponse:
    query = request.app[QUERY]
    hub = request.app[EVENTS]
    yield_blocks = request.app[LIMITS]().replay_yield_blocks
    last_id = request.headers.get("Last-Event-ID")
    if last_id is not None:  # a reconnecting client: it has seen this block
        next_height = parse_uint(last_id.strip(), "Last-Event-ID") + 1
    else:
        next_height = int_query(request, "from_height", query.head().height + 1)
    if query.is_height_pruned(next_height):
        return pruned(query, next_height)
    if hub.closed:
        return error(503, "shutting_down", "the node is stopping")
    if hub.streams >= hub.clients_max:
        return error(503, "too_many_clients", f"{hub.clients_max} event streams are open; try again later")
    resp = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )
    hub.streams += 1
    sub = None
    try:
        await resp.prepare(request)
        await resp.write(b": clearchain block stream\n\n")
        next_height = await _replay(resp, query, hub, yield_blocks, next_height)
        sub = hub.subscribe()  # no await since the replay reached the head: nothing is missed
        while not sub.closed:
            try:
                item = await asyncio.wait_for(sub.queue.get(), hub.keepalive_s)
            except TimeoutError:
                await resp.write(b": keepalive\n\n")
                continue
            if item is None or sub.closed:
                break
            height, frame = item
            if height < next_height:
                continue  # before the client's start
            if height > next_height:  # defensive: never expected
                await _replay(resp, query, hub, yield_blocks, next_height, height - 1)
            await resp.write(frame)
            next_height = height + 1
    except ConnectionError:
        pass  # the client went away
    finally:
        hub.streams -= 1
        if sub is not None:
            hub.unsubscribe(sub)
    return resp


async def _replay(
    resp: web.StreamResponse,
    query: NodeQuery,
    hub: EventHub,
    yield_blocks: int,
    start: int,
    end: int | None = None,
) -> int:
    """Write the stored blocks from ``start`` to ``end`` (default: the head, re-read as it
    moves); returns the next height to send."""
    height = start
    while height <= (query.head().height if end is None else end) and not hub.closed:
        block, receipts = query.block(height), query.receipts(height)
        if block is None or receipts is None:
            break
        await resp.write(sse_frame(block, receipts))
        height += 1
        if (height - start) % yield_blocks == 0:
            await asyncio.sleep(0)  # a long replay must not starve the node
    return height
