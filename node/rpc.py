"""The node's HTTP JSON API (aiohttp): the core a client and the tests need.

Bytes are lower-case hex in JSON. Every error is ``{"error": {"code", "message"}}`` with a stable
code and an HTTP status that fits; a handler never returns a traceback.

    GET  /status               head, consensus height/round/step, peers, mempool
    POST /txs                  {"tx": hex} or {"txs": [hex, ...]}; ?wait=commit&timeout_ms=N
    GET  /txs/{hash}           pending | committed (height, index, receipt) | rejected (code) | unknown
    GET  /blocks/{height}      header, tx hashes, certificate; ?raw=1 adds the encoded block
    GET  /evidence             double votes seen
"""

from __future__ import annotations

import asyncio
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from aiohttp import web

from chain.block import Header
from chain.certificate import CommitCertificate
from chain.errors import ClearchainError, InvalidTransaction
from chain.limits import TX_BYTES_MAX
from chain.receipt import Receipt

if TYPE_CHECKING:
    from node.runtime import Node

SUBMIT_TXS_MAX = 1_000  # transactions in one POST
WAIT_MS_DEFAULT = 10_000
WAIT_MS_MAX = 60_000
NODE: web.AppKey[Node] = web.AppKey("node")
BODY_BYTES_MAX = SUBMIT_TXS_MAX * TX_BYTES_MAX // 32 + 2 * TX_BYTES_MAX


class RPCServer:
    def __init__(self, runner: web.AppRunner, site: web.TCPSite, address: tuple[str, int]) -> None:
        self.runner = runner
        self.site = site
        self.address = address

    async def cleanup(self) -> None:
        await self.runner.cleanup()


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error(exc.status, _http_code(exc.status), exc.reason)
    except ClearchainError as exc:
        return error(400, exc.code, exc.message)
    except asyncio.CancelledError:
        raise
    except Exception:
        request.app[NODE].log.exception("API handler failed: %s %s", request.method, request.path)
        return error(500, "internal", "internal error; see the node log")


def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(status, "http_error")


def make_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=BODY_BYTES_MAX)
    app[NODE] = node
    app.router.add_get("/status", status)
    app.router.add_post("/txs", post_txs)
    app.router.add_get("/txs/{hash}", get_tx)
    app.router.add_get("/blocks/{height}", get_block)
    app.router.add_get("/evidence", get_evidence)
    return app


async def start_rpc(node: Node, address: tuple[str, int]) -> RPCServer:
    runner = web.AppRunner(make_app(node), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, address[0], address[1])
    await site.start()
    server = site._server
    assert server is not None
    bound = server.sockets[0].getsockname()  # type: ignore[union-attr]
    return RPCServer(runner, site, (bound[0], bound[1]))


# --- handlers ---------------------------------------------------------------------------------
async def status(request: web.Request) -> web.Response:
    return web.json_response(request.app[NODE].status())


async def post_txs(request: web.Request) -> web.Response:
    node: Node = request.app[NODE]
    try:
        doc = await request.json()
    except ValueError:
        return error(400, "bad_json", "the body is not JSON")
    if not isinstance(doc, dict) or not (("tx" in doc) ^ ("txs" in doc)):
        return error(400, "bad_request", 'send {"tx": hex} or {"txs": [hex, ...]}')
    items = [doc["tx"]] if "tx" in doc else doc["txs"]
    if not isinstance(items, list) or not 0 < len(items) <= SUBMIT_TXS_MAX:
        return error(400, "bad_request", f"txs must be a list of 1..{SUBMIT_TXS_MAX} hex strings")
    wait = request.query.get("wait") == "commit"
    timeout_ms = _int_query(request, "timeout_ms", WAIT_MS_DEFAULT, WAIT_MS_MAX)
    accepted: list[str] = []
    refused: list[dict[str, Any]] = []
    futures: dict[bytes, asyncio.Future[Any]] = {}
    loop = asyncio.get_running_loop()
    for index, item in enumerate(items):
        try:
            data = bytes.fromhex(item) if isinstance(item, str) else None
        except ValueError:
            data = None
        if data is None:
            refused.append({"index": index, "code": "bad_hex", "message": "not a hex string"})
            continue
        try:
            stx = node.submit(data)
        except InvalidTransaction as exc:
            refused.append({"index": index, "code": exc.code, "message": exc.message})
            continue
        accepted.append(stx.hash.hex())
        if wait:
            fut = loop.create_future()
            node.commit_waiters.setdefault(stx.hash, []).append(fut)
            futures[stx.hash] = fut
    body: dict[str, Any] = {"accepted": accepted, "refused": refused}
    if not wait:
        return web.json_response(body, status=202 if accepted else 400)
    if futures:
        await asyncio.wait(list(futures.values()), timeout=timeout_ms / 1000)
    body["txs"] = [_tx_status(node, h) for h in futures]
    for h, fut in futures.items():
        if not fut.done():
            fut.cancel()
            waiters = node.commit_waiters.get(h, [])
            if fut in waiters:
                waiters.remove(fut)
    return web.json_response(body, status=200 if accepted else 400)


async def get_tx(request: web.Request) -> web.Response:
    node: Node = request.app[NODE]
    tx_hash = _hex32(request.match_info["hash"], "hash")
    doc = _tx_status(node, tx_hash)
    return web.json_response(doc, status=404 if doc["status"] == "unknown" else 200)


def _tx_status(node: Node, tx_hash: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = {"hash": tx_hash.hex()}
    location = node.store.tx_location(tx_hash)
    if location is not None:
        height, index = location
        receipts = node.store.receipts(height) or []
        doc.update(status="committed", height=height, index=index)
        if index < len(receipts):
            doc["receipt"] = receipt_json(receipts[index])
    elif tx_hash in node.mempool:
        doc["status"] = "pending"
    elif tx_hash in node.mempool.rejected:
        code, message = node.mempool.rejected[tx_hash]
        doc.update(status="rejected", code=code, message=message)
    else:
        doc["status"] = "unknown"
    return doc


async def get_block(request: web.Request) -> web.Response:
    node: Node = request.app[NODE]
    text = request.match_info["height"]
    height = node.ledger.head.height if text == "head" else _uint_text(text, "height")
    block = node.store.block(height)
    if block is None:
        return error(404, "block_not_found", f"no block at height {height} (head is {node.ledger.head.height})")
    doc = {
        "height": height,
        "hash": block.hash().hex(),
        "header": header_json(block.header),
        "txs": [t.hash.hex() for t in block.txs],
        "certificate": certificate_json(node.store.certificate(height)),
        "last_commit": certificate_json(block.last_commit),
    }
    if request.query.get("raw") == "1":
        doc["raw"] = (node.store.block_bytes(height) or b"").hex()
    return web.json_response(doc)


async def get_evidence(request: web.Request) -> web.Response:
    return web.json_response({"evidence": request.app[NODE].evidence.to_json()})


# --- JSON forms -------------------------------------------------------------------------------
def header_json(h: Header) -> dict[str, Any]:
    return {f.name: _json_value(getattr(h, f.name)) for f in fields(h)}


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
    return {
        "ok": r.ok,
        "code": r.code,
        "message": r.message,
        "events": [_json_value(list(e)) for e in r.events],
    }


def _json_value(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    return value


def _hex32(text: str, name: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ClearchainError("bad_request", f"{name} must be 64 hex digits")
    return value


def _uint_text(text: str, name: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise ClearchainError("bad_request", f"{name} must be a non-negative integer")
    return int(text)


def _int_query(request: web.Request, name: str, default: int, maximum: int) -> int:
    text = request.query.get(name)
    return default if text is None else min(_uint_text(text, name), maximum)
