"""The mempool: admission through the executor's checks, nonce chains, bounds, reaping, and
eviction after a block, each refusal with a code."""

from __future__ import annotations

import pytest

from chain.keys import KeyPair
from cli.localnet.devnet import GENESIS_DAY as DAY
from node.mempool import Mempool, MempoolRefusal
from tests.conftest import Chain


def _trade(chain: Chain, i: int, **kw):  # type: ignore[no-untyped-def]
    return chain.tx(
        "xchg-alpha", "settlement", "settle", [f"M-{i}", "A-C001", "B-C001", "ACME", 1, 100_00, DAY], **kw
    )


def _pool(chain: Chain, **kw) -> Mempool:  # type: ignore[no-untyped-def]
    return Mempool(chain.ledger.executor, chain.store, **kw)


def _refused(pool: Mempool, stx, code: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(MempoolRefusal) as err:
        pool.add(stx, len(stx.encode()), 1)
    assert err.value.code == code
    assert pool.rejected[stx.hash][0] == code


def test_admits_a_chain_of_nonces_and_reaps_them_in_order(chain: Chain) -> None:
    pool = _pool(chain)
    txs = [_trade(chain, i) for i in range(5)]
    for stx in txs:
        pool.add(stx, len(stx.encode()), 1)
    assert len(pool) == 5 and pool.verified == {t.hash for t in txs}
    assert pool.reap(3, 10**9) == txs[:3]
    size = len(txs[0].encode())
    assert pool.reap(100, 2 * size) == txs[:2]  # a proposer's byte budget
    assert pool.reap(100, 1) == txs[:1]  # the first always fits, or a big tx would never leave
    block, result = chain.ledger.propose(
        chain.ledger.head.time_ms + 1,
        pool.reap(100, 10**9),
        chain.producer.keys[1].public,
        None,
        pool.verified,
    )
    assert len(result.txs) == 5 and all(r.ok for r in result.receipts)


def test_refusals_carry_codes(chain: Chain) -> None:
    pool = _pool(chain)
    first = _trade(chain, 0)
    pool.add(first, 100, 1)
    _refused(pool, first, "duplicate")
    _refused(pool, _trade(chain, 9, nonce=5), "nonce_gap")
    _refused(pool, _trade(chain, 9, nonce=1), "nonce_replayed")
    _refused(pool, _trade(chain, 9, keys=[KeyPair.dev("mallory")]), "signer_not_in_policy")
    _refused(pool, _trade(chain, 9, chain_id="elsewhere"), "wrong_chain")
    _refused(pool, chain.tx("xchg-alpha", "settlement", "nope", []), "unknown_method")
    assert len(pool) == 1


def test_bounds(chain: Chain) -> None:
    pool = _pool(chain, txs_max=2, sender_max=10)
    pool.add(_trade(chain, 0), 10, 1)
    pool.add(_trade(chain, 1), 10, 1)
    _refused(pool, _trade(chain, 2), "mempool_full")
    pool = _pool(chain, bytes_max=15)
    chain.nonces.clear()
    pool.add(_trade(chain, 0), 10, 1)
    _refused(pool, _trade(chain, 1), "mempool_full")
    pool = _pool(chain, sender_max=1)
    chain.nonces.clear()
    pool.add(_trade(chain, 0), 10, 1)
    _refused(pool, _trade(chain, 1), "sender_queue_full")
    assert pool.size_bytes == 10


def test_update_after_a_block_evicts_included_and_invalidated(chain: Chain) -> None:
    pool = _pool(chain)
    mine = [_trade(chain, i) for i in range(3)]
    for stx in mine:
        pool.add(stx, 50, 1)
    # Someone else's copy of nonces 1-2 lands first (same sender, different trades).
    chain.nonces.clear()
    competing = [_trade(chain, 100 + i) for i in range(2)]
    chain.run(*competing)
    pool.update(competing, chain.ledger.head.height + 1)
    assert len(pool) == 1 and mine[2].hash in pool
    assert pool.rejected[mine[0].hash][0] == "nonce_replayed"
    chain.nonces["xchg-alpha"] = 2
    block, _ = chain.run(mine[2])
    pool.update(block.txs, chain.ledger.head.height + 1)
    assert len(pool) == 0 and pool.size_bytes == 0 and pool.verified == set()


def test_expiry_and_removal_drop_later_nonces_too(chain: Chain) -> None:
    pool = _pool(chain)
    expiring = _trade(chain, 0, valid_until=1)
    later = _trade(chain, 1)
    pool.add(expiring, 10, 1)
    pool.add(later, 10, 1)
    chain.run()  # height 1 passes without them
    pool.update([], chain.ledger.head.height + 1)
    assert len(pool) == 0
    assert pool.rejected[expiring.hash][0] == "expired"
    assert pool.rejected[later.hash][0] == "nonce_gap"
