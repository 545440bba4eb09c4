"""The single-process clearing scenario behind ``make run`` (until the network exists).

Genesis -> a custodian deposit -> blocks of settled trades (single tickets and a batch, with
trades that must fail and say why) -> balances and the head block, all written to LevelDB under
``--home`` and re-readable after the process ends.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import click

from chain.block import Block
from chain.display import format_amount
from chain.genesis import load_genesis
from chain.ledger import Ledger
from chain.receipt import Receipt
from chain.solo import SoloProducer
from chain.state import BlockState
from chain.store import Store
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.trade_dates import day_of_ms
from contracts import accounts, default_registry

_DECIMALS = {i["id"]: i["decimals"] for i in devnet.INSTRUMENTS}


class Signer:
    """Builds and signs transactions for dev participants, tracking their nonces."""

    def __init__(self, chain_id: str) -> None:
        self.chain_id = chain_id
        self.nonces: dict[str, int] = {}

    def tx(self, sender: str, contract: str, method: str, args: list[Any]) -> SignedTx:
        nonce = self.nonces.get(sender, 0) + 1
        self.nonces[sender] = nonce
        body = Tx(self.chain_id, sender, nonce, contract, method, args, 0)
        return body.sign(devnet.signing_keys(sender))


def run_scenario(home: Path, genesis_path: Path, reset: bool, echo: Any = click.echo) -> Ledger:
    genesis = load_genesis(genesis_path)
    if reset and home.exists():
        shutil.rmtree(home)
    store = Store.open_leveldb(home / "db")
    ledger = Ledger(store, genesis, default_registry())
    if ledger.head.height > 0:
        echo(f"Resuming chain {genesis.chain_id} at height {ledger.head.height} (use --reset to start over)")
    keys = [devnet.validator_key(i) for i in range(len(genesis.validators.validators))]
    producer = SoloProducer(ledger, keys)
    signer = Signer(genesis.chain_id)
    _resume_nonces(ledger, signer)
    watched = ["A-C001", "B-C001", "A-C002"]
    echo(
        f"Chain {genesis.chain_id}: genesis {ledger.genesis_block().hash().hex()[:16]}..., "
        f"{len(keys)} validators (INSECURE dev keys)\n"
    )
    echo("Balances before:")
    _show_balances(ledger, watched, echo)

    deposit = signer.tx(
        "custodian", "custody", "deposit", ["A-C001", "USD", 250_000_00, f"wire-{ledger.head.height + 1}"]
    )
    _show_block(*producer.produce([deposit]), echo, "custodian attests a USD 250,000.00 deposit")

    day = day_of_ms(ledger.head.time_ms)  # the solo chain's today: its blocks are 1 s apart from genesis
    singles = [
        signer.tx(
            "xchg-alpha",
            "settlement",
            "settle",
            [f"T{ledger.head.height}-1", "A-C001", "B-C001", "ACME", 500, 182_50, day],
        ),
        signer.tx(
            "xchg-alpha",
            "settlement",
            "settle",
            [f"T{ledger.head.height}-2", "B-C002", "A-C002", "GLOBEX", 100, 41_10, day],
        ),
    ]
    _show_block(*producer.produce(singles), echo, "two trades, settled one by one (DvP)")

    h = ledger.head.height
    batch = [
        [f"B{h}-1", "A-C001", "B-C001", "ACME", 1_000, 182_75, day],
        [f"B{h}-2", "A-C002", "B-HOUSE", "BTC", 50_000_000, 97_000_00, day],  # 0.5 BTC
        [f"B{h}-3", "A-HOUSE", "B-C002", "ACME", 10, 182_00, day],  # fails: seller B-C002 holds no ACME
        [f"B{h}-4", "A-C002", "B-HOUSE", "ACME", 100_000, 183_00, day],  # fails: not enough cash
        [f"B{h}-5", "A-C001", "A-C001", "ACME", 1, 180_00, day],  # fails: same account
        [f"B{h}-6", "A-C001", "B-C001", "USD", 1, 1, day],  # fails: cash is not a security
    ]
    batch_tx = signer.tx("xchg-alpha", "settlement", "settle_batch", [batch])
    _show_block(*producer.produce([batch_tx]), echo, "a batch of six tickets, each settling or failing alone")

    echo("Balances after:")
    _show_balances(ledger, watched, echo)
    head = ledger.head
    cert = ledger.store.certificate(head.height)
    assert cert is not None
    echo(f"Head block {head.height}: {head.hash().hex()}")
    echo(f"  state_root {head.state_root.hex()}")
    echo(f"  tx_root    {head.tx_root.hex()}")
    echo(
        f"  signed by {len(cert.signatures)} of {len(ledger.validators.validators)} validators at round {cert.round}"
    )
    echo(f"\nLedger written to {home / 'db'} (LevelDB). Run again to extend it, or with --reset.")
    store.close()
    return ledger


def _resume_nonces(ledger: Ledger, signer: Signer) -> None:
    from chain.policy import nonce_key

    for pid in devnet.PARTICIPANTS:
        last = BlockState(ledger.store).get(nonce_key(pid))
        if last:
            signer.nonces[pid] = last


def _show_block(block: Block, result: Any, echo: Any, story: str) -> None:
    echo(f"Block {block.height} ({story}): {len(block.txs)} tx, hash {block.hash().hex()[:16]}...")
    for receipt in result.receipts:
        _show_receipt(receipt, echo)
    for rejected in result.rejected:
        echo(f"  rejected {rejected.tx.hash.hex()[:12]}: {rejected.error.code}: {rejected.error.message}")
    echo("")


def _show_receipt(receipt: Receipt, echo: Any) -> None:
    if not receipt.ok:
        echo(f"  tx {receipt.ref.hex()[:12]} FAILED {receipt.code}: {receipt.message}")
        return
    for _, name, fields in receipt.events:
        f = dict(fields)
        if name == "trade_settled":
            qty = format_amount(f["quantity"], _DECIMALS[f["instrument"]])
            cash = format_amount(f["consideration"], _DECIMALS["USD"])
            echo(
                f"  settled {f['trade_id']}: {f['buyer']} buys {qty} {f['instrument']} from {f['seller']} for USD {cash}"
            )
        elif name == "trade_failed":
            echo(f"  FAILED  {f['trade_id']}: {f['code']}: {f['message']}")
        elif name == "deposited":
            echo(
                f"  deposit {f['asset']} {format_amount(f['amount'], _DECIMALS[f['asset']])} into {f['account']} (ref {f['reference']})"
            )
        elif name == "batch_settled":
            echo(f"  batch: {f['settled']} settled, {f['failed']} failed")


def _show_balances(ledger: Ledger, account_ids: list[str], echo: Any) -> None:
    state = BlockState(ledger.store)
    assets = [i["id"] for i in devnet.INSTRUMENTS]
    echo("  " + "account".ljust(10) + "".join(a.rjust(16) for a in assets))
    for aid in account_ids:
        row = [format_amount(accounts.balance_in(state, aid, a)[0], _DECIMALS[a]) for a in assets]
        echo("  " + aid.ljust(10) + "".join(v.rjust(16) for v in row))
    echo("")
