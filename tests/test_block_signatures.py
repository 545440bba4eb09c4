"""A block commits to its transactions' signatures (issue 18): the tx hash, a tx's id, leaves them
out, so ``tx_root`` is over each whole signed encoding. A committed transaction re-signed by
another valid key set (another 2 of member-b's 3 keys, or the same two in the other order) keeps
its tx hash, but the block carrying it no longer matches its header: validation, the ledger and
the offline audit (library and CLI) all refuse it with ``tx_root_mismatch`` / ``tx_root``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from chain.audit import AuditFailure, Auditor
from chain.block import Block
from chain.errors import BlockRuleViolation, InvalidBlock
from chain.genesis import Genesis
from chain.history import HistoryRecord, Preamble
from chain.ledger import Ledger
from chain.store import Store
from chain.tx import SignedTx, Tx, compute_tx_root
from chain.validation import validate_block
from cli.audit.history import ExportWriter
from cli.localnet import devnet
from cli.main import main
from contracts import default_registry
from tests.conftest import Chain

KEYS_B = devnet.participant_keys("member-b")  # a 2-of-3 policy: user, wallet, recovery


@pytest.fixture()
def committed(genesis: Genesis) -> tuple[Chain, SignedTx, SignedTx]:
    """A chain whose block 1 holds member-b's withdrawal request signed by its user and wallet
    keys, and the same request signed, validly, by its user and recovery keys instead."""
    chain = Chain(Store.in_memory(), genesis)
    stx = chain.tx("member-b", "custody", "request_withdrawal", ["B-C002", "USD", 100_00], keys=KEYS_B[:2])
    chain.run(stx)
    other = stx.tx.sign([KEYS_B[0], KEYS_B[2]])
    assert other.hash == stx.hash and other.signatures != stx.signatures
    return chain, stx, other


def _with_txs(block: Block, *txs: SignedTx) -> Block:
    return Block(block.header, txs, block.last_commit)


def _block1(chain: Chain) -> Block:
    block = chain.store.block(1)
    assert block is not None
    return block


def test_the_other_signature_set_is_valid_and_makes_another_block(
    committed: tuple[Chain, SignedTx, SignedTx],
) -> None:
    chain, _, other = committed
    block = _block1(chain)
    # A header that commits to the re-signed tx is a valid block (the policy accepts both sets,
    # and receipts and state are the same), but its hash differs: the signatures are committed.
    header = dataclasses.replace(block.header, tx_root=compute_tx_root((other,)))
    Ledger(Store.in_memory(), chain.genesis, default_registry()).validate(Block(header, (other,), None))
    assert header.hash() != block.hash()


@pytest.mark.parametrize("which", ["other_keys", "same_keys_reordered"])
def test_a_swapped_signature_set_is_refused(committed: tuple[Chain, SignedTx, SignedTx], which: str) -> None:
    chain, stx, other = committed
    if which == "same_keys_reordered":
        other = SignedTx(stx.tx, tuple(reversed(stx.signatures)), stx.hash)
    block = _block1(chain)
    swapped = _with_txs(block, other)
    replica = Ledger(Store.in_memory(), chain.genesis, default_registry())
    with pytest.raises(BlockRuleViolation) as err:
        validate_block(
            replica.head, swapped, chain.genesis.chain_id, replica.validators, replica.head_validators
        )
    assert (err.value.code, err.value.check, err.value.field) == (
        "tx_root_mismatch",
        "tx_root",
        "header.tx_root",
    )
    with pytest.raises(InvalidBlock) as err2:
        replica.validate(swapped)
    assert err2.value.code == "tx_root_mismatch"
    certificate = chain.store.certificate(1)
    assert certificate is not None
    with pytest.raises(InvalidBlock) as err2:
        replica.apply_committed(swapped, certificate)
    assert err2.value.code == "tx_root_mismatch"
    replica.apply_committed(block, certificate)  # nothing was written: the real block applies
    assert replica.head == chain.ledger.head


def _records(chain: Chain, block1: bytes) -> list[HistoryRecord]:
    store = chain.store
    return [HistoryRecord(1, block1, store.certificate_bytes(1), store.receipts_bytes(1))]


def test_the_audit_catches_a_swapped_signature(committed: tuple[Chain, SignedTx, SignedTx]) -> None:
    chain, _, other = committed
    block = _block1(chain)
    auditor = Auditor(chain.genesis, default_registry())
    with pytest.raises(AuditFailure) as err:
        auditor.audit(_records(chain, _with_txs(block, other).encode())[0])
    d = err.value.discrepancy
    assert (d.height, d.field, d.check) == (1, "header.tx_root", "tx_root"), d.text()
    assert d.expected == compute_tx_root((other,)).hex() and d.found == block.header.tx_root.hex()
    # The history as committed passes.
    Auditor(chain.genesis, default_registry()).audit(_records(chain, block.encode())[0])


def test_the_audit_command_catches_a_swapped_signature(
    committed: tuple[Chain, SignedTx, SignedTx], tmp_path: Path
) -> None:
    chain, _, other = committed
    (tmp_path / "genesis.json").write_text(json.dumps(devnet.dev_genesis_doc()))
    for name, block in (("clean", _block1(chain)), ("swapped", _with_txs(_block1(chain), other))):
        path = tmp_path / f"{name}.msgpack"
        with path.open("wb") as out:
            writer = ExportWriter(
                out, "msgpack", Preamble(chain.genesis.chain_id, chain.store.genesis_hash() or b"", 1, 1)
            )
            for record in _records(chain, block.encode()):
                writer.record(record)
            writer.finish()
        result = CliRunner().invoke(
            main, ["audit", str(path), "--genesis", str(tmp_path / "genesis.json"), "--json"]
        )
        doc = json.loads(result.stdout)
        if name == "clean":
            assert result.exit_code == 0 and doc["ok"], result.stdout + result.stderr
        else:
            assert result.exit_code == 2 and not doc["ok"], result.stdout + result.stderr
            assert (doc["discrepancy"]["height"], doc["discrepancy"]["check"]) == (1, "tx_root")


def _signed(i: int, keys: int) -> SignedTx:
    """member-b's i-th withdrawal request, signed by ``keys`` of its three keys."""
    body = Tx(
        devnet.CHAIN_ID, "member-b", i + 1, "custody", "request_withdrawal", ["B-C002", "USD", i + 1], 0
    )
    return body.sign(KEYS_B[:keys])


@given(
    txs=st.lists(st.tuples(st.integers(0, 50), st.integers(1, 3)), min_size=1, max_size=6),
    data=st.data(),
)
def test_tx_root_changes_with_any_signature_byte(txs: list[tuple[int, int]], data: st.DataObject) -> None:
    signed = [_signed(i, keys) for i, keys in txs]
    root = compute_tx_root(signed)
    at = data.draw(st.integers(0, len(signed) - 1), label="tx")
    stx = signed[at]
    pair = data.draw(st.integers(0, len(stx.signatures) - 1), label="signature")
    part = data.draw(st.sampled_from([0, 1]), label="pubkey or signature")
    original = stx.signatures[pair][part]
    byte = data.draw(st.integers(0, len(original) - 1), label="byte")
    flip = data.draw(st.integers(1, 255), label="xor")
    changed = bytearray(original)
    changed[byte] ^= flip
    sig = list(stx.signatures[pair])
    sig[part] = bytes(changed)
    sigs = list(stx.signatures)
    sigs[pair] = (sig[0], sig[1])
    tampered = SignedTx(stx.tx, tuple(sigs), stx.hash)  # the same tx hash: the id is unchanged
    assert tampered.hash == stx.hash
    assert compute_tx_root([*signed[:at], tampered, *signed[at + 1 :]]) != root
