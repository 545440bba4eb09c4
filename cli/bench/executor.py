"""``clearchain bench executor``: single-process executor throughput.

Method: a genesis with ``accounts`` funded client accounts; transactions are signed before the
clock starts (signing is the client's cost). Each timed block is the whole path a committed
block takes on one node: propose (check every signature against the sender's policy, nonces,
execute the contracts), compute the state root, tx root and receipts root, sign a certificate
with the four dev validator keys, verify it, and write the block in one synced LevelDB batch.
Figures are printed; nothing here is asserted.
"""

from __future__ import annotations

import gc
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import click

from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.solo import SoloProducer
from chain.statetree import CACHE_BYTES_DEFAULT, bench_tree
from chain.store import Store
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry

SINGLE_BLOCK_TXS = 2_000


BENCH_FUNDING = {"USD": 10**12, "ACME": 10**9}  # what each bench account holds at genesis


def bench_genesis(account_count: int, validators: int = 4) -> dict[str, Any]:
    """The dev genesis plus ``account_count`` client accounts ``BA-<i>`` of member-a (a genesis
    account series), each holding ``BENCH_FUNDING``, so trades between any two of them settle."""
    doc = devnet.dev_genesis_doc(validators)
    doc["account_series"] = [{
        "prefix": "BA-", "count": account_count, "owner": "member-a", "kind": "client",
        "client_prefix": "c-BA-", "balances": dict(BENCH_FUNDING),
    }]  # fmt: skip
    return doc


def _pair(i: int, n: int) -> tuple[str, str]:
    """A repeatable spread of distinct buyer/seller accounts (a multiplicative hash)."""
    a = (i * 2_654_435_761) % n
    b = (a + 1 + (i * 40_503) % (n - 1)) % n
    return f"BA-{a}", f"BA-{b}"


def batch_tickets(first: int, size: int, account_count: int) -> list[list[Any]]:
    """``size`` trade tickets numbered from ``first``, between repeatable pairs of accounts."""
    tickets = []
    for i in range(first, first + size):
        buyer, seller = _pair(i, account_count)
        tickets.append([f"B{i}", buyer, seller, "ACME", 1 + i % 7, 100_00 + i % 500, DAY])  # the genesis day
    return tickets


def _open(store_kind: str, genesis: Any, workdir: Path) -> tuple[Ledger, SoloProducer, Store]:
    store = Store.open_leveldb(workdir / "db") if store_kind == "leveldb" else Store.in_memory()
    ledger = Ledger(store, genesis, default_registry())
    producer = SoloProducer(
        ledger, [devnet.validator_key(i) for i in range(len(genesis.validators.validators))]
    )
    return ledger, producer, store


def calibrate() -> dict[str, float]:
    """This machine's speed right now: Ed25519 verifications/s through the one verifier, and
    the cost of one SHA-256 of 64 bytes. This VM's speed drifts by up to 2x, so every figure is
    printed beside these."""
    import hashlib

    from chain.keys import KeyPair, verify_signature

    key = KeyPair.dev("calibration")
    msg = b"m" * 32
    sig = key.sign(msg)
    n = 2_000
    t0 = time.perf_counter()
    for _ in range(n):
        verify_signature(key.public, sig, msg)
    verify_s = n / (time.perf_counter() - t0)
    data = b"y" * 64
    m = 200_000
    t0 = time.perf_counter()
    for _ in range(m):
        hashlib.sha256(data).digest()
    sha_us = (time.perf_counter() - t0) / m * 1e6
    return {"ed25519_verifies_per_s": round(verify_s), "sha256_64b_us": round(sha_us, 2)}


def _timed_blocks(producer: SoloProducer, blocks: list[list[SignedTx]]) -> tuple[float, float, int, int]:
    """(wall seconds, process CPU seconds, included txs, failed txs). CPU time excludes the time
    a shared VM's host steals, so it is the steadier figure there; fsync waits are not in it."""
    start = time.perf_counter()
    cpu_start = time.process_time()
    included = failed = 0
    for txs in blocks:
        _, result = producer.produce(txs)
        included += len(result.txs)
        failed += sum(1 for r in result.receipts if not r.ok) + len(result.rejected)
    return time.perf_counter() - start, time.process_time() - cpu_start, included, failed


def run_bench(
    txs: int, batches: int, batch_size: int, account_count: int, tree_sizes: list[int], store_kind: str
) -> dict[str, Any]:
    echo = click.echo
    figures: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "store": store_kind,
        "accounts": account_count,
    }
    echo(f"machine: {figures['machine']}; store: {store_kind}; accounts: {account_count:,}")
    figures["calibration_before"] = calibrate()
    echo(f"calibration: {figures['calibration_before']}")
    workdir = Path(tempfile.mkdtemp(prefix="clearchain-bench-"))
    try:
        t0 = time.perf_counter()
        genesis = parse_genesis(bench_genesis(account_count))
        ledger, producer, store = _open(store_kind, genesis, workdir)
        echo(f"genesis with {account_count:,} accounts written in {time.perf_counter() - t0:.1f} s")
        exchange = devnet.signing_keys("xchg-alpha")
        cid = genesis.chain_id

        # 1. Signed single-trade transactions.
        signed = []
        for i in range(txs):
            buyer, seller = _pair(i, account_count)
            body = Tx(
                cid,
                "xchg-alpha",
                i + 1,
                "settlement",
                "settle",
                [f"S{i}", buyer, seller, "ACME", 1 + i % 7, 100_00 + i % 500, DAY],
                0,
            )
            signed.append(body.sign(exchange))
        blocks = [signed[i : i + SINGLE_BLOCK_TXS] for i in range(0, txs, SINGLE_BLOCK_TXS)]
        seconds, cpu, included, failed = _timed_blocks(producer, blocks)
        figures["single_trade_txs_per_s"] = round(included / seconds)
        figures["single_trade_txs_per_cpu_s"] = round(included / cpu)
        bound = figures["calibration_before"]["ed25519_verifies_per_s"]
        figures["single_trade_share_of_verify_bound"] = round(included / seconds / bound, 3)
        figures["single_trade"] = {
            "txs": included,
            "failed": failed,
            "seconds": round(seconds, 2),
            "block_txs": SINGLE_BLOCK_TXS,
        }
        echo(
            f"signed single-trade txs: {included:,} in {seconds:.2f} s = {included / seconds:,.0f} tx/s "
            f"({failed} failed; blocks of {SINGLE_BLOCK_TXS:,}); "
            f"{figures['single_trade_share_of_verify_bound']:.0%} of one core's verify rate; "
            f"{included / cpu:,.0f} tx per CPU second"
        )

        # 2. Batched trade tickets: one signed tx of batch_size trades, one tx per block.
        nonce = txs
        batch_blocks = []
        for b in range(batches):
            tickets = batch_tickets(txs + b * batch_size, batch_size, account_count)
            nonce += 1
            batch_blocks.append(
                [Tx(cid, "xchg-alpha", nonce, "settlement", "settle_batch", [tickets], 0).sign(exchange)]
            )
        seconds, cpu, included, failed = _timed_blocks(producer, batch_blocks)
        trades = included * batch_size
        figures["batched_trades_per_s"] = round(trades / seconds)
        figures["batched_trades_per_cpu_s"] = round(trades / cpu)
        figures["batched"] = {"trades": trades, "batch_size": batch_size, "seconds": round(seconds, 2)}
        echo(
            f"batched trades: {trades:,} in {seconds:.2f} s = {trades / seconds:,.0f} trades/s "
            f"(batches of {batch_size:,}, one batch per block); {trades / cpu:,.0f} trades per CPU second"
        )
        tree = ledger.tree
        figures["tree_cache"] = {"bytes": tree.cache_bytes, "entries": tree.cache_entries}
        echo(
            f"state tree node cache after phases 1-2: {tree.cache_bytes / 2**20:,.1f} MiB charged, "
            f"{tree.cache_entries:,} nodes (budget {CACHE_BYTES_DEFAULT / 2**20:,.0f} MiB, storage.cache_mb)"
        )
        store.close()
        # What phases 1 and 2 built (tens of thousands of signed txs) would otherwise stay alive
        # and make every garbage collection in phase 3 walk it: the tree's figures would then
        # depend on how much the earlier phases kept, not on the tree.
        del signed, blocks, batch_blocks, ledger, producer, store
        gc.collect()

        # 3. The state tree alone.
        figures["tree"] = []
        for n in tree_sizes:
            r = bench_tree(n, changes_per_block=5_000, blocks=5)
            figures["tree"].append(r)
            echo(
                f"state tree, {n:,} keys: "
                + ", ".join(
                    f"{k} {v:,.1f}" if isinstance(v, float) else f"{k} {v:,}"
                    for k, v in r.items()
                    if k != "n_keys"
                )
            )
        figures["calibration_after"] = calibrate()
        echo(f"calibration after: {figures['calibration_after']}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return figures


def main() -> None:  # pragma: no cover - convenience for `python -m cli.bench.executor`
    run_bench(20_000, 100, 1000, 10_000, [10_000, 100_000], "leveldb")


if __name__ == "__main__":
    main()
