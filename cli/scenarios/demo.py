"""``clearchain demo``: the mission in two minutes, told against a running local network.

Starts the default network if it is not up, then, only through the HTTP API: a custodian's
deposit; a batch of trades in which some fail for stated reasons; balances before and after;
one block with the validators who signed it; and a full audit of the chain so far
(chain/audit.py), in this process: every block re-verified and re-executed from genesis.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from chain.display import format_amount
from chain.errors import ClearchainError
from chain.keys import read_key_file
from chain.tx import SignedTx, Tx
from cli.client import Client
from cli.localnet import devnet
from cli.trade_dates import today

WATCHED = ["A-C001", "A-C002", "B-C001", "B-HOUSE"]
ASSETS = ["USD", "ACME", "GLOBEX", "BTC"]


class DemoSigner:
    """Signs as a dev participant with its key files in ``<net>/keys``; nonces from the node."""

    def __init__(self, client: Client, keys_dir: Path, chain_id: str) -> None:
        self.client = client
        self.keys_dir = keys_dir
        self.chain_id = chain_id

    def tx(self, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
        nonce = self.client.get(f"/participants/{sender}")["next_nonce"]
        keys = [read_key_file(self.keys_dir / (n + ".key")) for n in devnet.key_names(sender)]
        return Tx(self.chain_id, sender, nonce, contract, method, args, 0).sign(keys)

    def send(self, stx: SignedTx) -> dict[str, Any]:
        body = self.client.post("/txs", {"tx": stx.encode().hex()}, wait="commit", timeout_ms=30_000)
        (status,) = body["txs"]
        if status["status"] != "committed":
            raise ClearchainError(
                "demo_tx_not_committed", f"transaction {stx.hash.hex()[:16]} is {status['status']}"
            )
        return status  # type: ignore[no-any-return]


def _ensure_up(net_dir: Path, echo: Any) -> Client:
    """Initialise and start the default network unless this folder's nodes run; node0's API
    client. A node that answers but is not this folder's (another network on its ports) does not
    count: ``up`` then refuses with ``port_in_use``."""
    from cli.localnet.control import status, up
    from cli.localnet.network import NETWORK_FILE, init_network, load_network

    if not (net_dir / NETWORK_FILE).exists():
        init_network(net_dir)
        echo(f"Initialised the default network in {net_dir} (4 validators, INSECURE dev keys).")
    nodes = load_network(net_dir)["nodes"]
    if any(row["state"] != "up" for row in status(net_dir)):
        echo("Starting the network ...")
        up(net_dir, lambda line: None)
    return Client(f"http://{nodes[0]['rpc']}")


def run_demo_scenario(net_dir: Path, name: str, echo: Any = click.echo) -> dict[str, Any]:
    """``demo --scenario NAME`` (or ``all``): contract scenarios on the running network."""
    from cli.scenarios import SCENARIOS, ScenarioRun, run_scenario

    client = _ensure_up(net_dir, echo)
    run = ScenarioRun(client, net_dir / "keys", net_dir, echo)
    names = sorted(SCENARIOS) if name == "all" else [name]
    for each in names:
        run_scenario(each, run)
        echo("")
    return {"network": str(net_dir), "node": client.url, "scenarios": names, "ok": True}


def run_demo(net_dir: Path, echo: Any = click.echo) -> dict[str, Any]:
    """The clearing story; returns what it showed as one document (``demo --json``)."""
    client = _ensure_up(net_dir, echo)
    status = client.get("/status")
    validators = client.get("/validators")
    names = {v["pub_key"]: v["name"] for v in validators["validators"]}
    instruments = {i["id"]: i for i in client.get("/instruments")["instruments"]}
    decimals = {iid: i["decimals"] for iid, i in instruments.items()}
    echo(
        f"clearchain demo: chain {status['chain_id']}, {len(names)} validators, head at height {status['height']}"
    )
    echo(f"  talking to node0's API at {client.url} (every step below is an HTTP call)\n")
    signer = DemoSigner(client, net_dir / "keys", status["chain_id"])

    echo("1. Balances before")
    before = _balances(client, decimals, echo)

    echo("2. The custodian attests a USD 250,000.00 wire into client account A-C001")
    reference = f"demo-wire-{status['height']}-{status['head_time_ms']}"
    st = signer.send(signer.tx("custodian", "custody", "deposit", ["A-C001", "USD", 250_000_00, reference]))
    deposit_height, deposit_code = st["height"], st["receipt"]["code"]
    echo(f"   committed at height {deposit_height}: {deposit_code}\n")

    echo("3. The exchange sends one batch of six trade tickets; each settles or fails on its own (DvP)")
    tag = f"D{st['height']}"
    batch = [
        [f"{tag}-1", "A-C001", "B-C001", "ACME", 1_000, 182_75, today()],  # settles
        [f"{tag}-2", "A-C002", "B-HOUSE", "BTC", 50_000_000, 97_000_00, today()],  # 0.5 BTC, settles
        [f"{tag}-3", "A-HOUSE", "B-C002", "ACME", 10, 182_00, today()],  # B-C002 holds no ACME
        [f"{tag}-4", "A-C002", "B-HOUSE", "ACME", 100_000, 183_00, today()],  # A-C002 lacks the cash
        [f"{tag}-5", "A-C001", "A-C001", "ACME", 1, 180_00, today()],  # same account both sides
        [f"{tag}-6", "B-HOUSE", "A-HOUSE", "GLOBEX", 250, 41_10, today()],  # settles
    ]
    st = signer.send(signer.tx("xchg-alpha", "settlement", "settle_batch", [batch]))
    block_height = st["height"]
    outcomes: list[dict[str, Any]] = []
    for _contract, name, fields in st["receipt"]["events"]:
        f = dict(fields)
        if name in ("trade_settled", "trade_failed"):
            outcomes.append({"event": name, **f})
        if name == "trade_settled":
            qty = format_amount(f["quantity"], decimals[f["instrument"]])
            echo(
                f"   settled {f['trade_id']}: {f['buyer']} buys {qty} {f['instrument']} from {f['seller']} for USD {format_amount(f['consideration'], 2)}"
            )
        elif name == "trade_failed":
            echo(f"   FAILED  {f['trade_id']}: {f['code']}: {f['message']}")
        elif name == "batch_settled":
            echo(f"   batch in block {block_height}: {f['settled']} settled, {f['failed']} failed\n")

    echo("4. Balances after (changes marked)")
    after = _balances(client, decimals, echo, before)

    echo(f"5. Block {block_height}, and the validators who signed it")
    block = client.get(f"/blocks/{block_height}")
    cert = block["certificate"]
    echo(f"   hash {block['hash']}")
    echo(f"   state_root {block['header']['state_root']}")
    echo(
        f"   proposer {names.get(block['header']['proposer'], block['header']['proposer'][:16])}; {len(block['txs'])} tx"
    )
    for sig in cert["signatures"]:
        echo(f"   precommit by {names.get(sig['validator'], '?'):<12} {sig['signature'][:32]}...")
    echo(
        f"   {len(cert['signatures'])} of {len(names)} validators signed round {cert['round']}: more than 2/3 of the power\n"
    )

    echo("6. Audit: the whole history re-verified here from genesis")
    audit = _audit(client, net_dir, echo)
    _try_next(net_dir, client.url, block_height, echo)
    return {
        "network": str(net_dir),
        "node": client.url,
        "chain_id": status["chain_id"],
        "validators": len(names),
        "deposit": {"height": deposit_height, "code": deposit_code},
        "batch": {"height": block_height, "trades": outcomes},
        "balances": {
            "before": _nested(before),
            "after": _nested(after),
        },
        "block": {
            "height": block_height,
            "hash": block["hash"],
            "state_root": block["header"]["state_root"],
            "proposer": block["header"]["proposer"],
            "round": cert["round"],
            "signed_by": [names.get(sig["validator"], sig["validator"]) for sig in cert["signatures"]],
        },
        "audit": audit,
    }


def _nested(amounts: dict[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    """``{account: {asset: minor units}}`` (amounts in JSON are minor units, as in the API)."""
    out: dict[str, dict[str, int]] = {}
    for (account, asset), units in sorted(amounts.items()):
        out.setdefault(account, {})[asset] = units
    return out


def _try_next(net_dir: Path, url: str, block_height: int, echo: Any) -> None:
    """Commands to try next, for this network: its node's real URL, and ``--dir``/``--node``
    where the network is not the default folder."""
    from cli.localnet.commands import DEFAULT_NET_DIR

    default = net_dir == DEFAULT_NET_DIR
    d = "" if default else f" --dir {net_dir}"
    n = "" if default else f" --node {url}"
    k = "" if default else f" --keys-dir {net_dir / 'keys'}"
    cmd = ".venv/bin/clearchain"
    row = lambda line, note: echo(f"  {line}".ljust(49) + f" # {note}")  # noqa: E731
    echo("\nTry next:")
    row(f"{cmd} net status{d}", "the nodes, heights, peers")
    row(f"{cmd} account show A-C001{n}", "balances (add --json)")
    echo(f"  {cmd} trade import examples/trades.csv{n}{k}")
    echo(f"  {cmd} block show {block_height}{n}")
    row(f"{cmd} audit{n}", "re-verify the whole history (docs/AUDIT.md)")
    row(f"curl -s {url}/status", "the API (docs/API.md)")
    echo(f"Stop the network: {cmd} net down{d}" + ("   (make stop)" if default else ""))


def _balances(
    client: Client, decimals: dict[str, int], echo: Any, before: dict[tuple[str, str], int] | None = None
) -> dict[tuple[str, str], int]:
    now: dict[tuple[str, str], int] = {}
    echo("   " + "account".ljust(10) + "".join(a.rjust(20) for a in ASSETS))
    for aid in WATCHED:
        rows = {b["asset"]: b["available"] + b["locked"] for b in client.get(f"/accounts/{aid}")["balances"]}
        cells = []
        for asset in ASSETS:
            amount = rows.get(asset, 0)
            now[(aid, asset)] = amount
            mark = " *" if before is not None and before.get((aid, asset)) != amount else "  "
            cells.append((format_amount(amount, decimals[asset]) + mark).rjust(20))
        echo("   " + aid.ljust(10) + "".join(cells))
    echo("")
    return now


def _audit(client: Client, net_dir: Path, echo: Any) -> dict[str, Any]:
    """The full audit (chain/audit.py) of the node's history from genesis, in this process."""
    from chain.genesis import load_genesis
    from cli.audit.history import NodeSource
    from cli.commands.audit import AuditRun

    src = NodeSource(client.url)
    try:
        run = AuditRun(load_genesis(net_dir / "genesis.json"), src)
        run.run(src.head, [], progress=False)
        doc = run.summary()
    finally:
        src.close()
    echo(
        f"   {doc['blocks']} blocks from genesis to height {doc['height']}, re-verified against genesis.json alone:"
    )
    echo(
        "   every hash link, header and commit certificate (Ed25519 precommits of more than 2/3 of the power),"
    )
    echo(
        f"   every tx signature, and every tx re-executed: {doc['trades_settled']} trades settled, {doc['trades_failed']} failed,"
    )
    echo(f"   state root {doc['state_root'][:16]}... matches the signed header (clearchain audit --help)")
    return doc  # type: ignore[no-any-return]
