"""One load-generating client of ``clearchain bench``, run as its own process.

``python -m cli.bench.client SPEC OUT``: reads the JSON spec the driver wrote, signs every
transaction it will send (before the clock: signing is the client's cost, not the chain's),
prints ``ready``, waits for the start time on stdin, then drives its lanes against the nodes'
HTTP API and writes what it saw to ``OUT``.

A *lane* is one exchange participant with its own nonce sequence and one request in flight:
``POST /txs?wait=commit&events=0`` with ``chunk`` transactions, so the reply is the committed
receipt the client sees, and latency is reply time minus send time for every transaction in
it. Lanes never race each other on a nonce, so nothing is refused for arriving out of order.
With a rate, each lane sends its chunks on a fixed schedule (open loop while it keeps up);
without one, it sends the next chunk as soon as the last reply arrives.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from chain.keys import KeyPair
from chain.tx import Tx
from cli.bench.executor import _pair

WAIT_TIMEOUT_MS = 60_000


def ticket(lane: int, n: int, accounts: int, trade_date: int) -> list[Any]:
    """Trade ticket ``n`` of ``lane``: a repeatable spread of distinct buyer and seller accounts
    (a multiplicative hash), one to seven ACME at about 100 USD, dated ``trade_date``."""
    i = lane * 1_000_003 + n
    buyer, seller = _pair(i, accounts)
    return [f"L{lane}-{n}", buyer, seller, "ACME", 1 + i % 7, 100_00 + i % 500, trade_date]


def exchange_id(lane: int) -> str:
    return f"bench-x{lane}"


def exchange_key(lane: int) -> KeyPair:
    return KeyPair.dev(exchange_id(lane))


def sign_lane(chain_id: str, lane: int, txs: int, batch: int, accounts: int, trade_date: int) -> list[str]:
    """``txs`` signed transactions of ``lane`` (hex), nonces 1..txs: ``settle`` with one ticket,
    or ``settle_batch`` with ``batch`` tickets, all dated ``trade_date``."""
    key = [exchange_key(lane)]
    sender = exchange_id(lane)
    out = []
    for nonce in range(1, txs + 1):
        if batch == 1:
            method, args = "settle", ticket(lane, nonce, accounts, trade_date)
        else:
            first = (nonce - 1) * batch
            method, args = (
                "settle_batch",
                [[ticket(lane, first + k, accounts, trade_date) for k in range(batch)]],
            )
        out.append(Tx(chain_id, sender, nonce, "settlement", method, args, 0).sign(key).encode().hex())
    return out


async def _drive_lane(
    session: Any,
    url: str,
    lane_index: int,
    txs: list[str],
    spec: dict[str, Any],
    start: float,
    records: list[list[Any]],
    refusals: dict[str, int],
) -> None:
    chunk = spec["chunk"]
    stop_at = start + spec["duration_s"]
    interval = chunk / spec["lane_rate"] if spec.get("lane_rate") else 0.0
    # Lanes start spread over one interval, so a paced load arrives evenly, not in bursts.
    start += interval * (lane_index / spec["lanes_total"])
    post = f"{url}/txs?wait=commit&events=0&timeout_ms={WAIT_TIMEOUT_MS}"
    for k, i in enumerate(range(0, len(txs), chunk)):
        due = start + k * interval
        now = time.monotonic()
        if due > now:
            await asyncio.sleep(due - now)
        sent = time.monotonic()
        if sent >= stop_at:
            return
        items = txs[i : i + chunk]
        try:
            async with session.post(post, json={"txs": items}) as resp:
                body = await resp.json(content_type=None)
        except Exception as exc:  # a client error is a figure, not a crash
            refusals[f"client_{type(exc).__name__}"] = refusals.get(f"client_{type(exc).__name__}", 0) + len(
                items
            )
            continue
        seen = time.monotonic()
        committed = failed = 0
        for r in body.get("refused", []) if isinstance(body, dict) else []:
            refusals[r["code"]] = refusals.get(r["code"], 0) + 1
        for t in body.get("txs", []) if isinstance(body, dict) else []:
            if t.get("status") == "committed":
                committed += 1
                if not t.get("receipt", {}).get("ok", False):
                    failed += 1
                    code = t.get("receipt", {}).get("code", "unknown")
                    refusals[f"receipt_{code}"] = refusals.get(f"receipt_{code}", 0) + 1
            else:
                refusals[f"not_committed_{t.get('status')}"] = (
                    refusals.get(f"not_committed_{t.get('status')}", 0) + 1
                )
        # [sent, seen, submitted, committed, failed receipts]
        records.append([sent, seen, len(items), committed, failed])


async def _drive(spec: dict[str, Any], lanes: dict[int, list[str]], start: float) -> dict[str, Any]:
    import aiohttp

    records: list[list[Any]] = []
    refusals: dict[str, int] = {}
    timeout = aiohttp.ClientTimeout(total=WAIT_TIMEOUT_MS / 1000 + 30)
    connector = aiohttp.TCPConnector(limit=len(lanes) + 4)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        nodes = spec["nodes"]
        await asyncio.gather(*(
            _drive_lane(session, nodes[lane % len(nodes)], lane, txs, spec, start, records, refusals)
            for lane, txs in sorted(lanes.items())
        ))  # fmt: skip
    return {"records": records, "refusals": refusals}


def main(argv: list[str]) -> None:
    spec = json.loads(Path(argv[0]).read_text())
    t0 = time.process_time()
    lanes = {
        lane: sign_lane(
            spec["chain_id"], lane, spec["lane_txs"], spec["batch"], spec["accounts"], spec["trade_date"]
        )
        for lane in spec["lanes"]
    }
    sign_cpu = time.process_time() - t0
    print("ready", flush=True)
    start = float(sys.stdin.readline())
    out = asyncio.run(_drive(spec, lanes, start))
    out["sign_cpu_s"] = round(sign_cpu, 3)
    out["drive_cpu_s"] = round(time.process_time() - t0 - sign_cpu, 3)
    Path(argv[1]).write_text(json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1:])
