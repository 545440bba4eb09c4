"""The node's entry point to its HTTP JSON API (docs/API.md): ``start_rpc(node, address)`` builds
the node's query object (node/query.py) and serves the routes of ``node/api/`` over it.

The API itself is the package ``node/api`` (route modules by resource, one route table); this
module is what the runtime calls, and it holds the API's limits as module values: they are read
at each request (``current_limits``), so lowering ``node.rpc.BLOCKS_PAGE_MAX`` (a test, an
operator's hook) changes what a running server answers. The names the rest of the tree imports
from here (the limits, ``header_json``, ``certificate_json``) stay here.
"""

from __future__ import annotations

from node.api import limits as _defaults
from node.api.common import certificate_json, header_json, receipt_json
from node.api.limits import Limits
from node.api.server import ApiServer, serve
from node.query import NodeParts, NodeQuery

__all__ = ["RPCServer", "certificate_json", "header_json", "receipt_json", "start_rpc"]

SUBMIT_TXS_MAX = _defaults.SUBMIT_TXS_MAX
WAIT_MS_DEFAULT = _defaults.WAIT_MS_DEFAULT
WAIT_MS_MAX = _defaults.WAIT_MS_MAX
BODY_BYTES_MAX = _defaults.BODY_BYTES_MAX  # fixed when the server starts
BLOCKS_PAGE_MAX = _defaults.BLOCKS_PAGE_MAX
HISTORY_LIMIT_DEFAULT = _defaults.HISTORY_LIMIT_DEFAULT
LIST_PAGE_MAX = _defaults.LIST_PAGE_MAX
STATE_KEY_BYTES_MAX = _defaults.STATE_KEY_BYTES_MAX
QUERY_CHARS_MAX = _defaults.QUERY_CHARS_MAX
REPLAY_YIELD_BLOCKS = _defaults.REPLAY_YIELD_BLOCKS

RPCServer = ApiServer


def current_limits() -> Limits:
    """The API's limits as this module's values now (asked at each request)."""
    return Limits(
        submit_txs_max=SUBMIT_TXS_MAX, wait_ms_default=WAIT_MS_DEFAULT, wait_ms_max=WAIT_MS_MAX,
        blocks_page_max=BLOCKS_PAGE_MAX, history_limit_default=HISTORY_LIMIT_DEFAULT,
        list_page_max=LIST_PAGE_MAX, state_key_bytes_max=STATE_KEY_BYTES_MAX,
        query_chars_max=QUERY_CHARS_MAX, replay_yield_blocks=REPLAY_YIELD_BLOCKS,
    )  # fmt: skip


async def start_rpc(node: NodeParts, address: tuple[str, int]) -> ApiServer:
    """Serve the API of ``node`` at ``address``; the caller stops it with ``cleanup()``."""
    return await serve(NodeQuery(node), address, current_limits)
