"""``clearchain bench``: how it counts (windows, weighted percentiles, tickets, genesis) and one
short end-to-end run on real processes. No figure is asserted, only that what it reports adds up
to what the chain committed."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner

from chain.genesis import parse_genesis
from cli.bench.client import sign_lane, ticket
from cli.bench.load import _percentile, _summarize, bench_genesis
from cli.main import main


def test_weighted_percentile() -> None:
    pairs = [(0.1, 90), (0.5, 9), (2.0, 1)]  # 100 transactions
    assert _percentile(pairs, 0.5) == 0.1
    assert _percentile(pairs, 0.95) == 0.5
    assert _percentile(pairs, 0.99) == 0.5
    assert _percentile(pairs, 1.0) == 2.0
    assert math.isnan(_percentile([], 0.5))


def test_summary_counts_only_the_window_and_failures() -> None:
    start = 100.0
    records = [
        # sent, seen, submitted, committed, failed receipts
        [100.0, 100.5, 50, 50, 0],  # seen during warm-up: not in the rate, not in latency
        [102.0, 102.2, 50, 50, 0],
        [103.0, 103.4, 50, 48, 2],  # two failed receipts
        [109.0, 111.0, 50, 50, 0],  # seen after the window: not in the rate
        [104.0, 104.1, 50, 40, 0],  # ten not committed
    ]
    out = _summarize(
        [{"records": records, "refusals": {"receipt_x": 2, "mempool_full": 10}}], start, 10.0, 2.0, batch=3
    )
    assert out["submitted_txs"] == 250
    assert out["committed_txs"] == 238
    assert out["failed_txs"] == 12 + 2
    assert out["committed_trades"] == (238 - 2) * 3
    assert out["txs_per_s"] == round((50 + 46 + 40) / 8, 1)
    assert out["trades_per_s"] == round((50 + 46 + 40) * 3 / 8, 1)
    assert out["latency_ms"]["samples"] == 50 + 48 + 50 + 40
    assert out["latency_ms"]["max"] == 2000.0
    assert out["failures_by_code"] == {"mempool_full": 10, "receipt_x": 2}


def test_tickets_are_distinct_and_between_distinct_accounts() -> None:
    seen = set()
    for lane in range(4):
        for n in range(500):
            t = ticket(lane, n, 37, 20_454)
            assert t[6] == 20_454
            assert t[1] != t[2] and t[1].startswith("BA-") and t[2].startswith("BA-")
            assert 0 <= int(t[1][3:]) < 37 and 0 <= int(t[2][3:]) < 37
            seen.add(t[0])
    assert len(seen) == 2_000


def test_bench_genesis_is_valid_and_signed_lanes_match_it() -> None:
    doc = bench_genesis(4, 50, 3)
    g = parse_genesis(json.loads(json.dumps(doc)))
    assert {"bench-x0", "bench-x1", "bench-x2"} <= {p.id for p in g.participants}
    assert sum(1 for a in g.accounts if a.id.startswith("BA-")) == 50
    from chain.tx import SignedTx

    txs = [SignedTx.decode(bytes.fromhex(h)) for h in sign_lane(g.chain_id, 2, 3, 5, 50, 20_454)]
    assert [t.tx.nonce for t in txs] == [1, 2, 3]
    assert {t.tx.sender for t in txs} == {"bench-x2"} and txs[0].tx.method == "settle_batch"
    assert len(txs[0].tx.args[0]) == 5
    assert {tuple(t)[6] for t in txs[0].tx.args[0]} == {20_454}  # every ticket carries the lane's date


@pytest.mark.io
@pytest.mark.slow
def test_bench_runs_a_real_network_and_its_counts_add_up(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        main,
        ["bench", "--validators", "4", "--accounts", "200", "--duration", "6", "--warmup", "1", "--batch", "10",
         "--clients", "1", "--lanes", "4", "--baseline-trades", "300", "--json-out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    f = json.loads(out.read_text())
    assert f["committed_txs"] > 0 and f["trades_per_s"] > 0
    assert f["submitted_txs"] == f["committed_txs"] + f["failed_txs"]  # nothing refused by construction
    assert f["failed_txs"] == 0, f["failures_by_code"]
    assert f["committed_trades"] == f["committed_txs"] * 10
    assert len(f["nodes"]) == 4 and all(n["rss_mb_peak"] > 0 for n in f["nodes"])
    assert f["blocks"]["blocks"] >= 1
    for mode in ("full", "normal"):
        base = f["baseline"][mode]
        assert base["trades"] == 300 and base["settled"] == 300 and base["conserved"] is True
        assert f["ratio_to_baseline"][mode] > 0
    assert "committed trades/s" in result.output
