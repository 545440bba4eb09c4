"""The node: consensus, mempool, p2p, sync, HTTP API and the runtime that wires them
(built in the consensus and API issues)."""
