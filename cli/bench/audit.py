"""``clearchain bench audit``: how fast one process re-verifies a history.

Method: build a history in memory with the solo producer (``--txs`` signed single-trade
transactions in blocks of ``--block-txs``, then ``--batches`` settle_batch transactions of
``--batch-size`` trades, one per block; accounts as in ``bench executor``), then time the
auditor over it from genesis: decoding, hash links, headers, certificates (4 validators),
every tx signature against its sender's policy, re-execution of every transaction, the receipts
and state roots. Building is not timed. Figures are printed (blocks/s, txs/s, trades/s, per CPU
second) beside the machine's calibration; nothing is asserted.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import click

from chain.audit import Auditor
from chain.genesis import parse_genesis
from chain.history import HistoryRecord
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.store import Store
from chain.tx import Tx
from cli.bench.executor import _pair, batch_tickets, bench_genesis, calibrate
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry


def build_history(
    genesis: Any, account_count: int, txs: int, block_txs: int, batches: int, batch_size: int
) -> Store:
    store = Store.in_memory()
    ledger = Ledger(store, genesis, default_registry())
    producer = SoloProducer(
        ledger, [devnet.validator_key(i) for i in range(len(genesis.validators.validators))]
    )
    keys = devnet.signing_keys("xchg-alpha")
    cid = genesis.chain_id
    nonce = 0
    for start in range(0, txs, block_txs):
        signed = []
        for i in range(start, min(txs, start + block_txs)):
            buyer, seller = _pair(i, account_count)
            nonce += 1
            signed.append(
                Tx(
                    cid,
                    "xchg-alpha",
                    nonce,
                    "settlement",
                    "settle",
                    [f"S{i}", buyer, seller, "ACME", 1 + i % 7, 100_00 + i % 500, DAY],
                    0,
                ).sign(keys)
            )
        producer.produce(signed, verified={s.hash for s in signed})
    for b in range(batches):
        tickets = batch_tickets(txs + b * batch_size, batch_size, account_count)
        nonce += 1
        stx = Tx(cid, "xchg-alpha", nonce, "settlement", "settle_batch", [tickets], 0).sign(keys)
        producer.produce([stx], verified={stx.hash})
    return store


def run_bench(
    txs: int, block_txs: int, batches: int, batch_size: int, account_count: int, profile: bool
) -> dict[str, Any]:
    echo = click.echo
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    }
    figures["calibration_before"] = calibrate()
    echo(f"machine: {figures['machine']}; calibration: {figures['calibration_before']}")
    genesis = parse_genesis(bench_genesis(account_count))
    t0 = time.perf_counter()
    store = build_history(genesis, account_count, txs, block_txs, batches, batch_size)
    head = store.head()
    assert head is not None
    records = [
        HistoryRecord(h, store.block_bytes(h), store.certificate_bytes(h), store.receipts_bytes(h))
        for h in range(1, head.height + 1)
    ]
    trades = txs + batches * batch_size
    echo(
        f"history built in {time.perf_counter() - t0:.1f} s: {head.height:,} blocks, {txs + batches:,} signed txs, {trades:,} trades"
    )

    auditor = Auditor(genesis, default_registry())
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu = time.perf_counter(), time.process_time()
    for record in records:
        auditor.audit(record)
    seconds, cpu_s = time.perf_counter() - start, time.process_time() - cpu
    if profiler is not None:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)
    assert auditor.ledger.head == store.header(head.height)
    n_txs = txs + batches
    figures.update({
        "blocks": head.height, "txs": n_txs, "trades": trades, "seconds": round(seconds, 2), "cpu_s": round(cpu_s, 2),
        "blocks_per_s": round(head.height / seconds, 1), "txs_per_s": round(n_txs / seconds), "trades_per_s": round(trades / seconds),
        "txs_per_cpu_s": round(n_txs / cpu_s), "trades_per_cpu_s": round(trades / cpu_s),
    })  # fmt: skip
    echo(
        f"audited {head.height:,} blocks, {n_txs:,} txs, {trades:,} trades in {seconds:.2f} s ({cpu_s:.2f} CPU s): "
        f"{figures['blocks_per_s']:,} blocks/s, {figures['txs_per_s']:,} txs/s, {figures['trades_per_s']:,} trades/s; "
        f"{figures['txs_per_cpu_s']:,} txs and {figures['trades_per_cpu_s']:,} trades per CPU second"
    )
    figures["calibration_after"] = calibrate()
    echo(f"calibration after: {figures['calibration_after']}")
    return figures
