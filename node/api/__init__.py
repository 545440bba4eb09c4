"""The node's HTTP JSON API (aiohttp), as specified in docs/API.md: the contract the CLI and any
other client code against.

Route modules by resource (``txs``, ``blocks``, ``accounts``, ``directory``, ``proofs``,
``contract_views``, ``stream``, ``node_info``), registered from one table (``routes.ROUTES``),
all over the node's query object (node/query.py): the API never reaches into the node. Reads go
to committed state (the head); nothing here writes it. Handlers are cheap: point reads, or scans
bounded by a page size. ``node/rpc.py`` is the node's entry point (``start_rpc``).

    POST /txs                       {"tx": hex} or {"txs": [hex, ...]}; ?wait=commit&timeout_ms=N&events=0
    GET  /txs/{hash}                pending | committed (height, index, receipt) | rejected | unknown
    GET  /blocks/{height|hash|latest}   header, tx hashes, certificates; ?raw=1
    GET  /blocks?from=H&to=H        a page of block summaries
    GET  /history?from=H&to=H       stored blocks, certificates, receipts (msgpack) for audit/export
    GET  /accounts?after=&limit=&owner=   the accounts in id order, a page at a time
    GET  /accounts/{id}             owner, status, balances
    GET  /accounts/{id}/history     movements from the account-history index (node/index.py)
    GET  /state/proof?key=hex       inclusion or absence proof against the head's state root
    GET  /participants[/{id}]       roles, key policy, nonces
    GET  /instruments, /validators
    GET  /trades/{exchange}/{trade_id}   settled (contract state) or failed (the index)
    GET  /withdrawals/{id}, /withdrawals?status=pending   a withdrawal; the pending queue
    GET  /reserves                  client balances vs custodian-attested reserves, per asset
    GET  /contracts[/{contract}/{view}]  contracts, their parameters, and their read-only views
    GET  /status, /evidence, /events (SSE), /metrics (Prometheus)
"""
