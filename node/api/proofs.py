"""State proofs: ``GET /state/proof?key=hex``, an inclusion or absence proof for one state key
against the head's state root, with the head's header so a client can check it offline."""

from __future__ import annotations

from aiohttp import web

from chain.encoding import encode
from node.api.common import LIMITS, QUERY, error, header_json, parse_hex


async def get_proof(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    key_max = request.app[LIMITS]().state_key_bytes_max
    text = request.query.get("key")
    if text is None:
        return error(400, "bad_request", "give the state key as ?key=<hex>")
    key = parse_hex(text, "key")
    if not 0 < len(key) <= key_max:
        return error(400, "bad_request", f"a state key is 1..{key_max} bytes")
    head = query.head()
    value, proof = query.prove(key)
    return web.json_response({
        "key": key.hex(), "value": None if value is None else value.hex(),
        "proof": encode(proof.to_wire()).hex(), "height": head.height,
        "state_root": head.state_root.hex(), "header": header_json(head),
    })  # fmt: skip
