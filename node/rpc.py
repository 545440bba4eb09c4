"""The node's HTTP JSON API (aiohttp), as specified in docs/API.md: the contract the CLI and any
other client code against.

Bytes are lower-case hex in JSON. Every error is ``{"error": {"code", "message"}}`` with a stable
code and an HTTP status that fits; a handler never returns a traceback, and bad input never stops
the node. Reads go to committed state (the head) through the store; nothing here writes it.

    POST /txs                       {"tx": hex} or {"txs": [hex, ...]}; ?wait=commit&timeout_ms=N&events=0
    GET  /txs/{hash}                pending | committed (height, index, receipt) | rejected | unknown
    GET  /blocks/{height|hash|latest}   header, tx hashes, certificates; ?raw=1
    GET  /blocks?from=H&to=H        a page of block summaries
    GET  /history?from=H&to=H       stored blocks, certificates, receipts (msgpack) for audit/export
    GET  /accounts/{id}             owner, status, balances
    GET  /accounts/{id}/history     movements from the account-history index (node/index.py)
    GET  /state/proof?key=hex       inclusion or absence proof against the head's state root
    GET  /participants[/{id}]       roles, key policy, nonces
    GET  /instruments, /validators, /trades/{exchange}/{trade_id}
    GET  /reserves                  client balances vs custodian-attested reserves, per asset
    GET  /status, /evidence, /events (SSE), /metrics (Prometheus)

Handlers are cheap: point reads, or scans bounded by a page size.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from aiohttp import web

from chain.block import Header
from chain.certificate import CommitCertificate
from chain.display import format_amount
from chain.encoding import encode
from chain.errors import ClearchainError, ContractError, InvalidTransaction
from chain.executor import CallEnv
from chain.history import PAGE_BYTES_MAX, PAGE_RECORDS_MAX, HistoryPage, HistoryRecord
from chain.ids import is_valid_id
from chain.policy import nonce_key, policy_key
from chain.receipt import Receipt
from chain.state import BlockState
from contracts.accounts import ACCOUNT_PREFIX, BALANCE_PREFIX
from contracts.instruments import INSTRUMENT_PREFIX
from node.events import EventHub, Metrics, json_value, receipt_events_json, sse_frame
from node.index import HISTORY_LIMIT_MAX, INDEX_DIR, AccountIndex

if TYPE_CHECKING:
    from node.runtime import Node

SUBMIT_TXS_MAX = 1_000  # transactions in one POST
WAIT_MS_DEFAULT = 10_000
WAIT_MS_MAX = 60_000
BODY_BYTES_MAX = 9 * 1024 * 1024
BLOCKS_PAGE_MAX = 100
HISTORY_LIMIT_DEFAULT = 100
LIST_PAGE_MAX = 1_000  # participants or instruments in one reply
STATE_KEY_BYTES_MAX = 1_024
REPLAY_YIELD_BLOCKS = 64  # blocks replayed to an /events client before yielding to the loop
SHUTDOWN_TIMEOUT_S = 2.0

NODE: web.AppKey[Node] = web.AppKey("node")
INDEX: web.AppKey[AccountIndex | None] = web.AppKey("index")
EVENTS: web.AppKey[EventHub] = web.AppKey("events")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")

# State layouts read here (docstrings of contracts/accounts.py, instruments.py, membership.py,
# settlement.py).
_ACCOUNT = ACCOUNT_PREFIX
_BALANCE = BALANCE_PREFIX
_INSTRUMENT = INSTRUMENT_PREFIX
_PARTICIPANT = b"membership/participant/"
_TRADE = b"settlement/trade/"


class RPCServer:
    """The running API: its HTTP server and the index and event hub it feeds from commits."""

    def __init__(
        self, node: Node, runner: web.AppRunner, site: web.TCPSite, address: tuple[str, int],
        listeners: list[Callable[..., None]],
    ) -> None:  # fmt: skip
        self.node = node
        self.runner = runner
        self.site = site
        self.address = address
        self.index: AccountIndex | None = runner.app[INDEX]
        self.events: EventHub = runner.app[EVENTS]
        self._listeners = listeners

    async def cleanup(self) -> None:
        for listener in self._listeners:
            if listener in self.node.commit_listeners:
                self.node.commit_listeners.remove(listener)
        self.events.close()
        await self.runner.cleanup()
        if self.index is not None:
            self.index.close()


def error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
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
        request.app[NODE].log.exception("API handler failed: %s %s", request.method, request.path)
        return error(500, "internal", "internal error; see the node log")


def _http_code(status: int) -> str:
    return {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}.get(status, "http_error")


def make_app(node: Node, index: AccountIndex | None = None) -> web.Application:
    app = web.Application(middlewares=[_errors], client_max_size=BODY_BYTES_MAX)
    app[NODE] = node
    app[INDEX] = index
    app[EVENTS] = EventHub()
    app[METRICS] = Metrics()
    r = app.router
    r.add_get("/status", status)
    r.add_post("/txs", post_txs)
    r.add_get("/txs/{hash}", get_tx)
    r.add_get("/blocks", get_blocks)
    r.add_get("/blocks/{ref}", get_block)
    r.add_get("/history", get_history_page)
    r.add_get("/accounts/{id}", get_account)
    r.add_get("/accounts/{id}/history", get_history)
    r.add_get("/state/proof", get_proof)
    r.add_get("/participants", get_participants)
    r.add_get("/participants/{id}", get_participant)
    r.add_get("/instruments", get_instruments)
    r.add_get("/validators", get_validators)
    r.add_get("/trades/{exchange}/{trade_id}", get_trade)
    r.add_get("/reserves", get_reserves)
    r.add_get("/contracts", get_contracts)
    r.add_get("/contracts/{contract}/{view}", get_contract_view)
    r.add_get("/evidence", get_evidence)
    r.add_get("/events", get_events)
    r.add_get("/metrics", get_metrics)
    return app


def open_index(node: Node) -> AccountIndex | None:
    """The node's account-history index, or None (logged) if it cannot be opened: history is
    then unavailable, and everything else still served."""
    try:
        return AccountIndex(node.home / INDEX_DIR, node.store, node.log.getChild("index"))
    except Exception:
        node.log.exception("cannot open the account-history index; /accounts/{id}/history is unavailable")
        return None


async def start_rpc(node: Node, address: tuple[str, int]) -> RPCServer:
    index = open_index(node) if node.config.rpc.account_history else None
    app = make_app(node, index)
    listeners: list[Callable[..., None]] = [app[EVENTS].on_commit, app[METRICS].on_commit]
    if index is not None:
        listeners.insert(0, index.on_commit)
    runner = web.AppRunner(
        app, access_log=None, handler_cancellation=True, shutdown_timeout=SHUTDOWN_TIMEOUT_S
    )
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
    node.commit_listeners.extend(listeners)
    if index is not None:
        index.start_catch_up()
    return RPCServer(node, runner, site, (bound[0], bound[1]), listeners)


# --- node -------------------------------------------------------------------------------------
async def status(request: web.Request) -> web.Response:
    node = request.app[NODE]
    doc = node.status()
    doc["last_block_age_ms"] = max(0, node.clock_ms() - node.ledger.head.time_ms)
    # A peer's status carries the height it works on; one past ours has blocks we lack.
    doc["syncing"] = any(s[0] > node.consensus.height for s in node.peer_status.values())
    return web.json_response(doc)


async def get_evidence(request: web.Request) -> web.Response:
    return web.json_response({"evidence": request.app[NODE].evidence.to_json()})


async def get_metrics(request: web.Request) -> web.Response:
    text = request.app[METRICS].render(request.app[NODE])
    return web.Response(
        body=text.encode(), headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}
    )


# --- transactions -----------------------------------------------------------------------------
async def post_txs(request: web.Request) -> web.Response:
    node = request.app[NODE]
    doc = await _read_json(request)
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
    # A lone validator can decide a height inside ``submit`` (its own votes are a quorum), before
    # the waiter above existed: such transactions are committed already.
    for h, fut in futures.items():
        if not fut.done() and node.store.tx_location(h) is not None:
            fut.set_result(None)
    body: dict[str, Any] = {"accepted": accepted, "refused": refused}
    if not wait:
        return web.json_response(body, status=202 if accepted else 400)
    try:
        if futures:
            await asyncio.wait(list(futures.values()), timeout=timeout_ms / 1000)
        events = request.query.get("events") != "0"  # events=0: receipts without their events
        body["txs"] = [_tx_status(node, h, events) for h in futures]
    finally:  # also when the client went away and the handler was cancelled
        for h, fut in futures.items():
            fut.cancel()  # no-op when done
            waiters = node.commit_waiters.get(h)
            if waiters is not None:
                if fut in waiters:
                    waiters.remove(fut)
                if not waiters:
                    del node.commit_waiters[h]
    return web.json_response(body, status=200 if accepted else 400)


async def get_tx(request: web.Request) -> web.Response:
    node = request.app[NODE]
    tx_hash = _hex32(request.match_info["hash"], "hash")
    doc = _tx_status(node, tx_hash)
    return web.json_response(doc, status=404 if doc["status"] == "unknown" else 200)


def _tx_status(node: Node, tx_hash: bytes, events: bool = True) -> dict[str, Any]:
    doc: dict[str, Any] = {"hash": tx_hash.hex()}
    location = node.store.tx_location(tx_hash)
    if location is not None:
        height, index = location
        doc.update(status="committed", height=height, index=index)
        r = node.receipt(height, index)
        if r is not None:
            doc["receipt"] = receipt_json(r) if events else {"ok": r.ok, "code": r.code, "message": r.message}
    elif tx_hash in node.mempool:
        doc["status"] = "pending"
    elif tx_hash in node.mempool.rejected:
        code, message = node.mempool.rejected[tx_hash]
        doc.update(status="rejected", code=code, message=message)
    else:
        doc["status"] = "unknown"
    return doc


# --- blocks -----------------------------------------------------------------------------------
async def get_block(request: web.Request) -> web.Response:
    node = request.app[NODE]
    ref = request.match_info["ref"]
    head = node.ledger.head.height
    if ref in ("latest", "head"):
        height = head
    elif len(ref) == 64:
        found = node.store.height_of(_hex32(ref, "block hash"))
        if found is None:
            return error(404, "block_not_found", f"no block with hash {ref}")
        height = found
    else:
        height = _uint_text(ref, "height")
    block = node.store.block(height)
    if block is None:
        return error(404, "block_not_found", f"no block at height {height} (head is {head})")
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


async def get_blocks(request: web.Request) -> web.Response:
    node = request.app[NODE]
    head = node.ledger.head.height
    start = _int_query(request, "from", 1)
    end = _int_query(request, "to", start + BLOCKS_PAGE_MAX - 1)
    if end < start:
        return error(400, "bad_request", f"to ({end}) is below from ({start})")
    last = min(end, head, start + BLOCKS_PAGE_MAX - 1)
    out = []
    for height in range(start, last + 1):
        block = node.store.block(height)
        if block is None:
            break
        cert = node.store.certificate(height)
        out.append({
            "height": height, "hash": block.hash().hex(), "time_ms": block.header.time_ms,
            "txs": len(block.txs), "proposer": block.header.proposer.hex(),
            "round": None if cert is None else cert.round,
        })  # fmt: skip
    # The next page starts after this one, whatever ``to`` asked for, until the head.
    return web.json_response({"blocks": out, "next": last + 1 if last < head else None})


async def get_history_page(request: web.Request) -> web.Response:
    """A page of history records (chain/history.py), the stored bytes as they are, for audit and
    export. Bounded by record count and bytes; ``next`` continues it."""
    node = request.app[NODE]
    head = node.ledger.head.height
    start = _int_query(request, "from", 1)
    end = _int_query(request, "to", head)
    if end < start:
        return error(400, "bad_request", f"to ({end}) is below from ({start})")
    last = min(end, head)
    records: list[HistoryRecord] = []
    size = 0
    height = start
    store = node.store
    while height <= last and len(records) < PAGE_RECORDS_MAX and size < PAGE_BYTES_MAX:
        record = HistoryRecord(
            height, store.block_bytes(height), store.certificate_bytes(height), store.receipts_bytes(height)
        )
        size += sum(len(x) for x in (record.block, record.certificate, record.receipts) if x is not None)
        records.append(record)
        height += 1
    page = HistoryPage(
        node.chain_id,
        node.store.genesis_hash() or b"",
        head,
        height if height <= last else None,
        tuple(records),
    )
    return web.Response(body=page.encode(), content_type="application/x-msgpack")


# --- state ------------------------------------------------------------------------------------
async def get_account(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = _id(request.match_info["id"], "account id")
    state = BlockState(node.store)
    record = state.get(_ACCOUNT + account.encode())
    if record is None:
        return error(404, "unknown_account", f"no account {account}")
    owner, kind, client, account_status, _held = record
    prefix = _BALANCE + account.encode() + b"/"
    balances = []
    for key, (available, locked) in state.iterate(prefix):
        asset = key[len(prefix) :].decode()
        instrument = state.get(_INSTRUMENT + asset.encode())
        decimals = 0 if instrument is None else instrument[1]
        balances.append({
            "asset": asset, "available": available, "locked": locked, "decimals": decimals,
            "display": format_amount(available, decimals), "locked_display": format_amount(locked, decimals),
        })  # fmt: skip
    return web.json_response({
        "id": account, "owner": owner, "kind": kind, "client": client, "status": account_status,
        "height": node.ledger.head.height, "balances": balances,
    })  # fmt: skip


async def get_history(request: web.Request) -> web.Response:
    node = request.app[NODE]
    account = _id(request.match_info["id"], "account id")
    from_height = _int_query(request, "from_height", 1)
    limit = _int_query(request, "limit", HISTORY_LIMIT_DEFAULT, HISTORY_LIMIT_MAX)
    if limit < 1:
        return error(400, "bad_request", f"limit must be 1..{HISTORY_LIMIT_MAX}")
    if node.store.get_state(_ACCOUNT + account.encode()) is None:
        return error(404, "unknown_account", f"no account {account}")
    index = request.app[INDEX]
    if index is None or index.closed:
        if not node.config.rpc.account_history:
            return error(
                503, "index_unavailable", "this node keeps no account history (rpc.account_history = false)"
            )
        return error(
            503, "index_unavailable", "this node's account-history index could not be opened; see its log"
        )
    head = node.ledger.head.height
    if index.height < head:
        index.start_catch_up()
        return error(
            503,
            "index_catching_up",
            f"the account-history index is at height {index.height} of {head}; try again shortly",
        )
    movements, next_from = index.history(account, from_height, limit)
    return web.json_response({"account": account, "movements": movements, "next_from_height": next_from})


async def get_proof(request: web.Request) -> web.Response:
    node = request.app[NODE]
    text = request.query.get("key")
    if text is None:
        return error(400, "bad_request", "give the state key as ?key=<hex>")
    key = _hex(text, "key")
    if not 0 < len(key) <= STATE_KEY_BYTES_MAX:
        return error(400, "bad_request", f"a state key is 1..{STATE_KEY_BYTES_MAX} bytes")
    head = node.ledger.head
    value = node.store.get_state(key)
    proof = node.ledger.tree.prove(key)
    return web.json_response({
        "key": key.hex(), "value": None if value is None else value.hex(),
        "proof": encode(proof.to_wire()).hex(), "height": head.height,
        "state_root": head.state_root.hex(), "header": header_json(head),
    })  # fmt: skip


async def get_participants(request: web.Request) -> web.Response:
    node = request.app[NODE]
    state = BlockState(node.store)
    rows, next_after = _page(request, state, _PARTICIPANT)
    return web.json_response(
        {"participants": [_participant_json(state, pid, roles) for pid, roles in rows], "next": next_after}
    )


async def get_participant(request: web.Request) -> web.Response:
    node = request.app[NODE]
    pid = _id(request.match_info["id"], "participant id")
    state = BlockState(node.store)
    roles = state.get(_PARTICIPANT + pid.encode())
    if roles is None:
        return error(404, "unknown_participant", f"no participant {pid}")
    doc = _participant_json(state, pid, roles)
    nonce = state.get(nonce_key(pid)) or 0
    pending = node.mempool.last_pending_nonce(pid)
    doc["nonce"] = nonce
    doc["next_nonce"] = (nonce if pending is None else pending) + 1
    return web.json_response(doc)


def _participant_json(state: BlockState, pid: str, roles: Any) -> dict[str, Any]:
    policy = state.get(policy_key(pid))
    threshold, keys, active = policy if policy is not None else (0, (), False)
    return {
        "id": pid,
        "roles": list(roles),
        "threshold": threshold,
        "keys": [k.hex() for k in keys],
        "active": active,
    }


async def get_instruments(request: web.Request) -> web.Response:
    state = BlockState(request.app[NODE].store)
    rows, next_after = _page(request, state, _INSTRUMENT)
    instruments = [
        {"id": iid, "kind": kind, "decimals": decimals, "currency": currency, "status": ins_status}
        for iid, (kind, decimals, currency, ins_status) in rows
    ]
    return web.json_response({"instruments": instruments, "next": next_after})


def _page(request: web.Request, state: BlockState, prefix: bytes) -> tuple[list[tuple[str, Any]], str | None]:
    """Up to LIST_PAGE_MAX (id, value) records under ``prefix`` in id order, after the id in
    ``?after=``; and the id to pass as ``after`` for the next page, or None."""
    after_text = request.query.get("after")
    after = None if after_text is None else _id(after_text, "after")
    rows: list[tuple[str, Any]] = []
    for key, value in state.iterate(prefix):
        ident = key[len(prefix) :].decode()
        if after is not None and ident <= after:
            continue  # ids are ASCII, so str order is key order
        if len(rows) == LIST_PAGE_MAX:
            return rows, rows[-1][0]
        rows.append((ident, value))
    return rows, None


async def get_validators(request: web.Request) -> web.Response:
    node = request.app[NODE]
    vset = node.ledger.validators
    return web.json_response({
        "height": node.ledger.head.height,
        "validators": [{"pub_key": v.pubkey.hex(), "power": v.power, "name": v.name} for v in vset.validators],
        "total_power": vset.total_power,
    })  # fmt: skip


async def get_trade(request: web.Request) -> web.Response:
    node = request.app[NODE]
    exchange = _id(request.match_info["exchange"], "exchange")
    trade_id = _id(request.match_info["trade_id"], "trade id")
    record = BlockState(node.store).get(_TRADE + f"{exchange}/{trade_id}".encode())
    if record is None:
        return error(404, "unknown_trade", f"{exchange} has no settled trade {trade_id}")
    height, trade_status = record
    return web.json_response(
        {"exchange": exchange, "trade_id": trade_id, "status": trade_status, "height": height}
    )


# --- contract views ---------------------------------------------------------------------------
QUERY_CHARS_MAX = 256


async def get_contracts(request: web.Request) -> web.Response:
    """Every contract with its code hash, methods (argument names), tasks, views and
    parameters [value, min, max] as of the head."""
    from contracts.api import Context
    from contracts.params import all_params

    node = request.app[NODE]
    runtime = node.ledger.runtime
    hashes = runtime.code_hashes()
    state = BlockState(node.store)
    head = node.ledger.head
    env = CallEnv(node.chain_id, head.height, head.time_ms, b"")
    out = []
    for contract in runtime.contracts:
        name = contract.name
        ctx = Context(state, env, "", name)
        out.append({
            "name": name,
            "code_hash": hashes[name],
            "methods": [{"name": m, "args": [a for a, _ in params]} for c, m, params in runtime.methods() if c == name],
            "tasks": [t for c, t in runtime.tasks() if c == name],
            "views": [v for c, v in runtime.views() if c == name],
            "params": {k: {"value": v[0], "min": v[1], "max": v[2]} for k, v in all_params(ctx, name)},
        })  # fmt: skip
    return web.json_response({"height": head.height, "contracts": out})


async def get_contract_view(request: web.Request) -> web.Response:
    """A contract's read-only view of committed state at the head (``@view`` in contracts/)."""
    node = request.app[NODE]
    contract = _id(request.match_info["contract"], "contract")
    view_name = _id(request.match_info["view"], "view")
    query = {}
    for key, value in request.query.items():
        if len(key) > QUERY_CHARS_MAX or len(value) > QUERY_CHARS_MAX:
            return error(400, "bad_query", f"query parameters are at most {QUERY_CHARS_MAX} characters")
        query[key] = value
    head = node.ledger.head
    env = CallEnv(node.chain_id, head.height, head.time_ms, b"")
    try:
        doc = node.ledger.runtime.read_view(BlockState(node.store), env, contract, view_name, query)
    except ContractError as exc:
        status = 404 if exc.code in ("unknown_view", "not_found") or exc.code.startswith("unknown_") else 400
        return error(status, exc.code, exc.message)
    return web.json_response(
        {"height": head.height, "contract": contract, "view": view_name, "result": json_value(doc)}
    )


# --- the event stream -------------------------------------------------------------------------
async def get_events(request: web.Request) -> web.StreamResponse:
    node = request.app[NODE]
    hub = request.app[EVENTS]
    last_id = request.headers.get("Last-Event-ID")
    if last_id is not None:  # a reconnecting client: it has seen this block
        next_height = _uint_text(last_id.strip(), "Last-Event-ID") + 1
    else:
        next_height = _int_query(request, "from_height", node.ledger.head.height + 1)
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
        next_height = await _replay(resp, node, hub, next_height)
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
            if height > next_height:
                await _replay(resp, node, hub, next_height, height - 1)  # defensive: never expected
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
    resp: web.StreamResponse, node: Node, hub: EventHub, start: int, end: int | None = None
) -> int:
    """Write the stored blocks from ``start`` to ``end`` (default: the head, re-read as it
    moves); returns the next height to send."""
    height = start
    while height <= (node.ledger.head.height if end is None else end) and not hub.closed:
        block, receipts = node.store.block(height), node.store.receipts(height)
        if block is None or receipts is None:
            break
        await resp.write(sse_frame(block, receipts))
        height += 1
        if (height - start) % REPLAY_YIELD_BLOCKS == 0:
            await asyncio.sleep(0)  # a long replay must not starve the node
    return height


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
async def _read_json(request: web.Request) -> Any:
    """The body as JSON. Raises ClearchainError ``bad_json``; a body over the limit raises
    HTTPRequestEntityTooLarge (413 ``body_too_large``)."""
    try:
        return await request.json()
    except (ValueError, LookupError, RecursionError) as exc:  # not JSON, bad UTF-8, bad charset
        raise ClearchainError("bad_json", "the body is not JSON") from exc


def _hex(text: str, name: str) -> bytes:
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ClearchainError("bad_request", f"{name} must be hex") from None


def _hex32(text: str, name: str) -> bytes:
    try:
        value = bytes.fromhex(text)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise ClearchainError("bad_request", f"{name} must be 64 hex digits")
    return value


def _id(text: str, name: str) -> str:
    if not is_valid_id(text):
        raise ClearchainError("bad_request", f"{name} must be 1-64 of A-Z a-z 0-9 . _ : -")
    return text


def _uint_text(text: str, name: str) -> int:
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        raise ClearchainError("bad_request", f"{name} must be a non-negative integer")
    return int(text)


def _int_query(request: web.Request, name: str, default: int, maximum: int | None = None) -> int:
    text = request.query.get(name)
    if text is None:
        return default
    value = _uint_text(text, name)
    return value if maximum is None else min(value, maximum)


# --- reserves ---------------------------------------------------------------------------------
async def get_reserves(request: web.Request) -> web.Response:
    """Client and house totals, supply and the latest attestation per asset, at the head.

    Computed synchronously on the loop, so no block commits half-way and every figure is of one
    state; it scans every balance (contracts/reserves.py), which is what a report costs."""
    from contracts.reserves import compute_reserves

    node = request.app[NODE]
    head = node.ledger.head
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
        for r in compute_reserves(node.store)
    ]  # fmt: skip
    return web.json_response({
        "height": head.height, "state_root": head.state_root.hex(), "block_hash": head.hash().hex(),
        "assets": assets,
    })  # fmt: skip
