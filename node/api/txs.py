"""Transaction routes: ``POST /txs`` (submit, optionally wait for commit) and ``GET /txs/{hash}``
(pending | committed with its receipt | rejected | unknown)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from chain.errors import InvalidTransaction
from node.api.common import LIMITS, QUERY, error, int_query, parse_hex32, read_json, receipt_json
from node.query import NodeQuery


async def post_txs(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    limits = request.app[LIMITS]()
    doc = await read_json(request)
    if not isinstance(doc, dict) or not (("tx" in doc) ^ ("txs" in doc)):
        return error(400, "bad_request", 'send {"tx": hex} or {"txs": [hex, ...]}')
    items = [doc["tx"]] if "tx" in doc else doc["txs"]
    if not isinstance(items, list) or not 0 < len(items) <= limits.submit_txs_max:
        return error(400, "bad_request", f"txs must be a list of 1..{limits.submit_txs_max} hex strings")
    wait = request.query.get("wait") == "commit"
    timeout_ms = int_query(request, "timeout_ms", limits.wait_ms_default, limits.wait_ms_max)
    accepted: list[str] = []
    refused: list[dict[str, Any]] = []
    futures: dict[bytes, asyncio.Future[Any]] = {}
    for index, item in enumerate(items):
        try:
            data = bytes.fromhex(item) if isinstance(item, str) else None
        except ValueError:
            data = None
        if data is None:
            refused.append({"index": index, "code": "bad_hex", "message": "not a hex string"})
            continue
        try:
            stx = query.submit(data)
        except InvalidTransaction as exc:
            refused.append({"index": index, "code": exc.code, "message": exc.message})
            continue
        accepted.append(stx.hash.hex())
        if wait:
            futures[stx.hash] = query.wait_for_commit(stx.hash)
    # A lone validator can decide a height inside ``submit`` (its own votes are a quorum), before
    # the waiter above existed: such transactions are committed already.
    query.settle_committed(futures)
    body: dict[str, Any] = {"accepted": accepted, "refused": refused}
    if not wait:
        return web.json_response(body, status=202 if accepted else 400)
    try:
        if futures:
            await asyncio.wait(list(futures.values()), timeout=timeout_ms / 1000)
        events = request.query.get("events") != "0"  # events=0: receipts without their events
        body["txs"] = [tx_status(query, h, events) for h in futures]
    finally:  # also when the client went away and the handler was cancelled
        for h, fut in futures.items():
            query.stop_waiting(h, fut)
    return web.json_response(body, status=200 if accepted else 400)


async def get_tx(request: web.Request) -> web.Response:
    tx_hash = parse_hex32(request.match_info["hash"], "hash")
    doc = tx_status(request.app[QUERY], tx_hash)
    return web.json_response(doc, status=404 if doc["status"] == "unknown" else 200)


def tx_status(query: NodeQuery, tx_hash: bytes, events: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"hash": tx_hash.hex()}
    location = query.tx_location(tx_hash)
    if location is not None:
        height, index = location
        doc.update(status="committed", height=height, index=index)
        r = query.receipt(height, index)
        if r is not None:
            doc["receipt"] = receipt_json(r) if events else {"ok": r.ok, "code": r.code, "message": r.message}
        return doc
    if query.is_pending(tx_hash):
        doc["status"] = "pending"
        return doc
    rejection = query.rejection(tx_hash)
    if rejection is not None:
        code, message = rejection
        doc.update(status="rejected", code=code, message=message)
    else:
        doc["status"] = "unknown"
        below = query.blocks_pruned_below()
        if below > 1:  # its index entry may have gone with its block (storage.keep_blocks)
            doc["blocks_pruned_below"] = below
    return doc
