"""Bad transactions: each is rejected with a stable code, never enters a block, changes nothing."""

from __future__ import annotations

import msgpack
import pytest

from chain.encoding import encode
from chain.errors import InvalidTransaction
from chain.keys import KeyPair
from chain.policy import nonce_key
from chain.tx import SignedTx, Tx
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from tests.conftest import Chain

TRADE = ["T-1", "A-C001", "B-C001", "ACME", 10, 180_00, DAY]


def _rejected(chain: Chain, stx: SignedTx) -> str:
    """Run ``stx`` alone; assert it was left out and nothing changed; return the code."""
    root = chain.ledger.head.state_root
    block, result = chain.run(stx)
    assert block.txs == () and result.receipts == ()
    assert len(result.rejected) == 1
    assert result.state_root == root
    return result.rejected[0].error.code


def test_valid_trade_is_included(chain: Chain) -> None:
    block, result = chain.run(chain.tx("xchg-alpha", "settlement", "settle", TRADE))
    assert len(block.txs) == 1 and result.receipts[0].ok


def test_bad_signature(chain: Chain) -> None:
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE)
    pub, sig = stx.signatures[0]
    forged = SignedTx(stx.tx, ((pub, sig[:10] + bytes([sig[10] ^ 1]) + sig[11:]),), stx.hash)
    assert _rejected(chain, forged) == "bad_signature"


def test_signature_by_a_stranger(chain: Chain) -> None:
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE, keys=[KeyPair.dev("mallory")])
    assert _rejected(chain, stx) == "signer_not_in_policy"


def test_signature_over_other_bytes_does_not_transfer(chain: Chain) -> None:
    """A valid signature of one tx attached to another tx is a bad signature."""
    good = chain.tx("xchg-alpha", "settlement", "settle", TRADE, nonce=1)
    other = Tx(
        chain.genesis.chain_id,
        "xchg-alpha",
        1,
        "settlement",
        "settle",
        ["T-2", "A-C001", "B-C001", "ACME", 999, 1, DAY],
        0,
    )
    stolen = SignedTx(other, good.signatures, other.digest())
    assert _rejected(chain, stolen) == "bad_signature"


def test_wrong_chain(chain: Chain) -> None:
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE, chain_id="other-chain")
    assert _rejected(chain, stx) == "wrong_chain"


def test_replayed_nonce(chain: Chain) -> None:
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE)
    chain.run(stx)
    assert _rejected(chain, stx) == "nonce_replayed"


def test_replay_within_one_block(chain: Chain) -> None:
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE)
    block, result = chain.run(stx, stx)
    assert len(block.txs) == 1 and result.rejected[0].error.code == "nonce_replayed"


def test_nonce_gap(chain: Chain) -> None:
    assert _rejected(chain, chain.tx("xchg-alpha", "settlement", "settle", TRADE, nonce=2)) == "nonce_gap"


def test_expired(chain: Chain) -> None:
    chain.run()
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE, valid_until=1)
    assert _rejected(chain, stx) == "expired"


def test_unknown_sender(chain: Chain) -> None:
    stx = Tx(chain.genesis.chain_id, "nobody", 1, "settlement", "settle", TRADE, 0).sign(
        [KeyPair.dev("nobody")]
    )
    assert _rejected(chain, stx) == "unknown_sender"


@pytest.mark.parametrize(
    "contract, method, args, code",
    [
        ("nope", "settle", TRADE, "unknown_contract"),
        ("settlement", "nope", TRADE, "unknown_method"),
        ("settlement", "settle", TRADE[:5], "bad_arguments"),
        ("settlement", "settle", ["T-1", "A-C001", "B-C001", "ACME", "10", 1, DAY], "bad_arguments"),
        ("settlement", "settle", ["T-1", "A-C001", "B-C001", "ACME", True, 1, DAY], "bad_arguments"),
        ("settlement", "settle", ["T/1", "A-C001", "B-C001", "ACME", 10, 1, DAY], "bad_arguments"),
        ("settlement", "settle", ["T-1", "A-C001", "B-C001", "ACME", 2**63, 1, DAY], "bad_arguments"),
        ("settlement", "settle_batch", [[]], "bad_arguments"),
        ("settlement", "settle_batch", [[TRADE] * 1001], "bad_arguments"),
        ("custody", "deposit", ["A-C001", "USD", 0, "ref"], "bad_arguments"),
    ],
)
def test_bad_calls(chain: Chain, contract: str, method: str, args: list, code: str) -> None:
    assert (
        _rejected(
            chain, chain.tx("xchg-alpha" if contract != "custody" else "custodian", contract, method, args)
        )
        == code
    )


def _raw(body: list, sigs: list) -> bytes:
    return msgpack.packb([body, sigs], use_bin_type=True)


def _signed_body(body: list) -> tuple[list, list]:
    from chain.encoding import H

    key = devnet.signing_keys("xchg-alpha")[0]
    return body, [[key.public, key.sign(H(b"tx", msgpack.packb(body, use_bin_type=True)))]]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\x00",
        b"garbage that is not msgpack \xff\xff",
        msgpack.packb([1, 2, 3]),
        msgpack.packb(
            [["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", TRADE], []], use_bin_type=True
        ),
        _raw(*_signed_body(["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", [1.5], 0])),
        _raw(*_signed_body(["clearchain-dev", "xchg-alpha", 1.0, "settlement", "settle", TRADE, 0])),
        _raw(*_signed_body(["clearchain-dev", "xchg-alpha", 0, "settlement", "settle", TRADE, 0])),
        _raw(*_signed_body(["clearchain-dev", "xchg-alpha", -1, "settlement", "settle", TRADE, 0])),
        _raw(*_signed_body(["clearchain-dev", "bad/id", 1, "settlement", "settle", TRADE, 0])),
        _raw(*_signed_body(["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", {"a": 1}, 0])),
        _raw(
            ["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", TRADE, 0],
            [[b"k" * 32, b"s" * 64]] * 9,
        ),
        _raw(["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", TRADE, 0], [[b"k" * 31, b"s" * 64]]),
        encode([["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", [b"x" * 300_000], 0], []]),
        b"\xcd\x00\x05",
    ],
)
def test_malformed_bytes_are_rejected_with_a_code(data: bytes) -> None:
    with pytest.raises(InvalidTransaction) as err:
        SignedTx.decode(data)
    assert err.value.code in {"tx_malformed", "too_many_signatures"}
    assert err.value.message


def test_float_amount_signed_correctly_is_still_rejected() -> None:
    body, sigs = _signed_body(
        ["clearchain-dev", "xchg-alpha", 1, "settlement", "settle", ["T", "A", "B", "ACME", 1.0, 1, DAY], 0]
    )
    with pytest.raises(InvalidTransaction) as err:
        SignedTx.decode(_raw(body, sigs))
    assert err.value.code == "tx_malformed" and "float" in err.value.message


def test_wire_round_trip(chain: Chain) -> None:
    stx = chain.tx("xchg-alpha", "settlement", "settle", TRADE)
    again = SignedTx.decode(stx.encode())
    assert again == stx and again.hash == stx.tx.digest()


def test_rejected_tx_consumes_no_nonce(chain: Chain) -> None:
    bad = chain.tx("xchg-alpha", "settlement", "nope", TRADE)  # nonce 1, rejected
    chain.run(bad)
    assert chain.state().get(nonce_key("xchg-alpha")) is None
    good = chain.tx("xchg-alpha", "settlement", "settle", TRADE, nonce=1)
    block, result = chain.run(good)
    assert result.receipts[0].ok


def test_failed_call_consumes_the_nonce_but_writes_nothing_else(chain: Chain) -> None:
    before = chain.balance("A-C001", "USD")
    failing = chain.tx(
        "xchg-alpha", "settlement", "settle", ["T-9", "A-C001", "B-C001", "ACME", 10**6, 1_000_00, DAY]
    )
    block, result = chain.run(failing)
    assert result.receipts[0].code == "insufficient_securities"
    assert chain.state().get(nonce_key("xchg-alpha")) == 1
    assert chain.balance("A-C001", "USD") == before
    assert set(result.state_diff) == {nonce_key("xchg-alpha")}


def test_contract_that_emits_a_float_fails_cleanly(chain: Chain) -> None:
    """A contract bug that tries to put a float in an event fails its call with a code;
    nothing non-canonical reaches a receipt."""
    from chain.errors import EncodingError
    from chain.executor import CallEnv
    from contracts.api import Context

    ctx = Context(chain.state(), CallEnv("c", 1, 1, b""), "x", "settlement")
    with pytest.raises(EncodingError):
        ctx.emit("bad", price=1.5)
    with pytest.raises(EncodingError):
        ctx.emit("bad", nested=[1, [2.0]])
    with pytest.raises(EncodingError):
        ctx.emit("bad", big=2**64)
    ctx.emit("good", a=1, b="x", c=b"y", d=None, e=[1, "z"])
    assert len(ctx.events()) == 1
