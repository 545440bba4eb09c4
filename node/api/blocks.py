"""Block routes: one block by height, hash or ``latest``; a page of block summaries; and a page
of stored history records (chain/history.py) for audit and export."""

from __future__ import annotations

from aiohttp import web

from chain.history import PAGE_BYTES_MAX, PAGE_RECORDS_MAX, HistoryPage, HistoryRecord
from node.api.common import (
    LIMITS,
    QUERY,
    certificate_json,
    error,
    header_json,
    int_query,
    parse_hex32,
    parse_uint,
    pruned,
)


async def get_block(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    ref = request.match_info["ref"]
    head = query.head().height
    if ref in ("latest", "head"):
        height = head
    elif len(ref) == 64:
        found = query.height_of(parse_hex32(ref, "block hash"))
        if found is None:
            return error(404, "block_not_found", f"no block with hash {ref}")
        height = found
    else:
        height = parse_uint(ref, "height")
    block = query.block(height)
    if block is None and query.is_height_pruned(height):
        return pruned(query, height)
    if block is None:
        return error(404, "block_not_found", f"no block at height {height} (head is {head})")
    doc = {
        "height": height,
        "hash": block.hash().hex(),
        "header": header_json(block.header),
        "txs": [t.hash.hex() for t in block.txs],
        "certificate": certificate_json(query.certificate(height)),
        "last_commit": certificate_json(block.last_commit),
    }
    if request.query.get("raw") == "1":
        doc["raw"] = (query.block_bytes(height) or b"").hex()
    return web.json_response(doc)


async def get_blocks(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    page_max = request.app[LIMITS]().blocks_page_max
    head = query.head().height
    start = int_query(request, "from", 1)
    end = int_query(request, "to", start + page_max - 1)
    if end < start:
        return error(400, "bad_request", f"to ({end}) is below from ({start})")
    if query.is_height_pruned(start):
        return pruned(query, start)
    last = min(end, head, start + page_max - 1)
    out = []
    for height in range(start, last + 1):
        block = query.block(height)
        if block is None:
            break
        cert = query.certificate(height)
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
    query = request.app[QUERY]
    head = query.head().height
    start = int_query(request, "from", 1)
    end = int_query(request, "to", head)
    if end < start:
        return error(400, "bad_request", f"to ({end}) is below from ({start})")
    if query.is_height_pruned(start):
        return pruned(query, start)
    last = min(end, head)
    records: list[HistoryRecord] = []
    size = 0
    height = start
    while height <= last and len(records) < PAGE_RECORDS_MAX and size < PAGE_BYTES_MAX:
        record = HistoryRecord(
            height, query.block_bytes(height), query.certificate_bytes(height), query.receipts_bytes(height)
        )
        size += sum(len(x) for x in (record.block, record.certificate, record.receipts) if x is not None)
        records.append(record)
        height += 1
    page = HistoryPage(
        query.chain_id,
        query.genesis_hash() or b"",
        head,
        height if height <= last else None,
        tuple(records),
    )
    return web.Response(body=page.encode(), content_type="application/x-msgpack")
