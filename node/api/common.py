"""What every route module shares: the app's keys (the query object, limits, index, event hub,
metrics), the JSON error reply and the middleware that turns failures into it, the parsers of
path and query text, and the JSON forms of headers, certificates and receipts.

Bytes are lower-case hex in JSON. Every error is ``{"error": {"code", "message"}}`` with a stable
code and an HTTP status that fits; a handler never returns a traceback.
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import Any

from aiohttp import web

from chain.block import Header
from chain.certificate import CommitCertificate
from chain.errors import ClearchainError
from chain.ids import is_valid_id
from chain.receipt import Receipt
from node.api.limits import BODY_BYTES_MAX, LimitsSource
from node.events import EventHub, Metrics, json_value, receipt_events_json
from node.index import AccountIndex
from node.query import NodeQuery

QUERY: web.AppKey[NodeQuery] = web.AppKey("query")
LIMITS: web.AppKey[LimitsSource] = web.AppKey("limits")
INDEX: web.AppKey[AccountIndex | None] = web.AppKey("index")
EVENTS: web.AppKey[EventHub] = web.AppKey("events")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def errors_middleware(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        if exc.status == 413:
            return error(413, "body_too_large", f"the body is larger than {BODY_BYTES_MAX} bytes")
        return error(exc.status, _http_code(exc.status), exc.reason)
    except ClearchainError as exc:
        return error(400, exc.code, exc.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        request.app[QUERY].log.exception("API handler failed: %s %s", request.method, request.path)
        return error(500, "internal", "internal error; see the node log")


def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(status, "http_error")


def pruned(query: NodeQuery, height: int) -> web.Response:
    """The reply for a committed height this node no longer holds (storage.keep_blocks)."""
    below = query.blocks_pruned_below()
    return error(
        410,
        "height_pruned",
        f"height {height} is pruned on this node (it keeps blocks from {below}); ask a node that keeps history",
    )


def ready_index(request: web.Request) -> AccountIndex | web.Response:
    """The node's account-history index when it has indexed the head; otherwise the 503 reply
    that says why (none kept, not opened, or catching up: then catching up is started)."""
    query = request.app[QUERY]
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
    if index.height < head and query.is_height_pruned(index.height + 1):
        return error(
            503,
            "index_unavailable",
            f"the account-history index is at height {index.height}, and this node has pruned the blocks "
            f"it needs (it keeps blocks from {query.blocks_pruned_below()}; storage.keep_blocks)",
        )
    if index.height < head:
        index.start_catch_up()
        return error(
            503,
            "index_catching_up",
            f"the account-history index is at height {index.height} of {head}; try again shortly",
        )
    return index


# --- JSON forms -------------------------------------------------------------------------------
def header_json(h: Header) -> dict[str, Any]:
    return {f.name: json_value(getattr(h, f.name)) for f in fields(h)}


def certificate_json(cert: CommitCertificate | None) -> dict[str, Any] | None:
    if cert is None:
        return None
    return {
        "height": cert.height,
        "round": cert.round,
        "block_hash": cert.block_hash.hex(),
        "signatures": [{"validator": k.hex(), "signature": s.hex()} for k, s in cert.signatures],
    }


def receipt_json(r: Receipt) -> dict[str, Any]:
    return {"ok": r.ok, "code": r.code, "message": r.message, "events": receipt_events_json(r)}


# --- input ------------------------------------------------------------------------------------
async def read_json(request: web.Request) -> Any:
    """The body as JSON. Raises ClearchainError ``bad_json``; a body over the limit raises
    HTTPRequestEntityTooLarge (413 ``body_too_large``)."""
    try:
        return await request.json()
    except (ValueError, LookupError, RecursionError) as exc:  # not JSON, bad UTF-8, bad charset
        raise ClearchainError("bad_json", "the body is not JSON") from exc


def parse_hex(text: str, name: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ClearchainError("bad_request", f"{name} must be hex") from None


def parse_hex32(text: str, name: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ClearchainError("bad_request", f"{name} must be 64 hex digits")
    return value


def parse_id(text: str, name: str) -> str:
    if not is_valid_id(text):
        raise ClearchainError("bad_request", f"{name} must be 1-64 of A-Z a-z 0-9 . _ : -")
    return text


def parse_uint(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ClearchainError("bad_request", f"{name} must be a non-negative integer")
    return int(text)


def int_query(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    value = parse_uint(text, name)
    return value if maximum is None else min(value, maximum)
