"""The node's status document (``GET /status``, ``clearchain node status``): what an operator
needs to see at once: the head, the consensus state, the peers and their heights, the mempool,
evidence held, messages dropped as unauthentic, test faults, uptime.

Why a module of its own: the document reads every part of the node (ledger, driver, transport,
mempool, evidence pool), and keeping it out of the wiring keeps both short.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from node.runtime import Node


def status_document(node: Node) -> dict[str, Any]:
    head = node.ledger.head
    driver = node.driver
    return {
        "chain_id": node.chain_id,
        "moniker": node.config.node.moniker,
        "role": node.config.node.role,
        "node_key": node.key.key_id,
        "height": head.height,
        "head_hash": head.hash().hex(),
        "head_time_ms": head.time_ms,
        "state_root": head.state_root.hex(),
        "consensus": node.consensus.describe(),
        "waiting_for_transactions": driver.waiting,
        "peers": [
            {
                "node_key": k.hex(),
                "address": p.address,
                "outbound": p.outbound,
                "height": driver.peer_status.get(k, (None,))[0],
            }
            for k, p in sorted(node.transport.peers.items())
        ],
        "mempool": {"txs": len(node.mempool), "bytes": node.mempool.size_bytes},
        "evidence": len(node.evidence.items),
        "unauthentic_messages": driver.unauthentic,
        **({"test_faults": node.faults.to_json()} if node.faults.active else {}),
        "uptime_s": round(time.monotonic() - node.started_at, 3),
    }
