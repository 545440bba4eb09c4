"""``transactions.json``: tx bodies, hashes and signed encodings (PROTOCOL section 4), ``tx_root``
and ``receipts_root`` (sections 5-6), and the transactions refused with their codes, all computed
by ``chain.tx``, ``chain.merkle``, ``chain.receipt`` and the executor's admission checks.

Two of the cases carry one body under two valid signature sets: the same tx hash, two signed
encodings, two tx roots. That is the rule a version-1 implementation (root over the tx hashes)
gets wrong.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chain.encoding import encode
from chain.errors import InvalidTransaction
from chain.executor import Executor
from chain.keys import KeyPair
from chain.merkle import list_root
from chain.receipt import KIND_TASK, KIND_TX, Receipt
from chain.state import BlockState, StateReader
from chain.tx import SignedTx, Tx, compute_tx_root
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.vectors.notation import to_json
from contracts import default_registry

CHAIN_ID = devnet.CHAIN_ID
_FIELDS = ("chain_id", "sender", "nonce", "contract", "method", "args", "valid_until_height")


def _cases() -> list[tuple[str, Tx, list[str]]]:
    """(name, body, key names that sign it)."""
    settle = Tx(
        CHAIN_ID,
        "xchg-alpha",
        1,
        "settlement",
        "settle",
        ["V-1", "A-C001", "B-C001", "ACME", 10, 180_00, DAY],
        0,
    )
    deposit = Tx(CHAIN_ID, "custodian", 1, "custody", "deposit", ["B-C002", "USD", 5_00, "vec-1"], 0)
    withdraw = Tx(CHAIN_ID, "member-b", 1, "custody", "request_withdrawal", ["B-C002", "USD", 1_00], 0)
    expiring = Tx(
        CHAIN_ID,
        "xchg-alpha",
        2**40,
        "settlement",
        "settle",
        ["V-3", "A-C001", "B-C001", "ACME", 2**62, 2**48, DAY],
        7,
    )
    return [
        ("settle, 1 of 1", settle, ["xchg-alpha"]),
        ("deposit, 1 of 1", deposit, ["custodian"]),
        ("withdrawal, 2 of 3: user and wallet", withdraw, ["member-b/user", "member-b/wallet"]),
        (
            "withdrawal, 2 of 3: wallet and recovery (same body)",
            withdraw,
            ["member-b/wallet", "member-b/recovery"],
        ),
        ("settle with large integers and an expiry", expiring, ["xchg-alpha"]),
    ]


def _signed(body: Tx, key_names: list[str]) -> SignedTx:
    return body.sign([KeyPair.dev(name) for name in key_names])


def transactions_doc(genesis_state: StateReader) -> dict[str, Any]:
    """transactions.json; ``genesis_state`` is the dev genesis's (for the admission cases)."""
    cases = _cases()
    signed = [_signed(body, names) for _, body, names in cases]
    by_name = {name: stx for (name, _, _), stx in zip(cases, signed, strict=True)}
    return {
        "about": (
            "docs/PROTOCOL.md sections 4-6 and 15: `transactions`: body fields, encode(Tx), tx_hash = "
            "H('tx', encode(Tx)), the signers' keys and encode(SignedTx). `tx_roots`: the list root "
            "of encode(SignedTx) of the named transactions, in order. `receipts_roots`: receipts, "
            "each encode(Receipt), and their list root. `malformed`: encodings a node refuses before "
            "any state is read, with the code. `admission`: well-formed transactions checked at "
            "`height` against the state of the shipped genesis.json (section 15), with the code."
        ),
        "transactions": [
            _tx_json(name, stx, names) for (name, _, names), stx in zip(cases, signed, strict=True)
        ],
        "tx_roots": _tx_roots(by_name),
        "receipts_roots": _receipts_roots(signed),
        "malformed": _malformed(signed[0]),
        "admission": _admission(genesis_state),
    }


def _tx_json(name: str, stx: SignedTx, key_names: list[str]) -> dict[str, Any]:
    body = stx.tx.to_wire()
    return {
        "name": name,
        "body": {field: to_json(value) for field, value in zip(_FIELDS, body, strict=True)},
        "body_encoded": encode(body).hex(),
        "tx_hash": stx.hash.hex(),
        "signed_by": key_names,
        "signatures": [[p.hex(), s.hex()] for p, s in stx.signatures],
        "signed_encoded": stx.encode().hex(),
    }


def _tx_roots(by_name: dict[str, SignedTx]) -> list[dict[str, Any]]:
    names = list(by_name)
    lists = [
        ("empty", []),
        ("one", names[:1]),
        ("two", names[:2]),
        ("three (split 2 + 1)", names[:3]),
        ("three, another signature set on the third (same tx hashes, another root)", [*names[:2], names[3]]),
        ("three, reordered", [names[2], names[0], names[1]]),
        ("five (split 4 + 1)", names[:5]),
    ]
    return [
        {"name": name, "transactions": items, "root": compute_tx_root([by_name[n] for n in items]).hex()}
        for name, items in lists
    ]


def _receipts_roots(signed: list[SignedTx]) -> list[dict[str, Any]]:
    ok = Receipt(
        KIND_TX,
        signed[0].hash,
        "ok",
        "",
        (("settlement", "settled", (("trade_id", "V-1"), ("quantity", 10), ("price", 180_00))),),
    )
    failed = Receipt(KIND_TX, signed[1].hash, "insufficient_securities", "A-C001 holds 0 ACME, needs 10", ())
    task = Receipt(
        KIND_TASK, (7).to_bytes(8, "big"), "ok", "", (("custody", "withdrawal_expired", (("id", 7),)),)
    )
    lists = [("empty", []), ("one", [ok]), ("three: ok, failed, task", [ok, failed, task])]
    out = []
    for name, receipts in lists:
        encoded = [r.encode() for r in receipts]
        out.append(
            {
                "name": name,
                "receipts": [
                    {
                        "kind": r.kind,
                        "ref": r.ref.hex(),
                        "code": r.code,
                        "message": r.message,
                        "events": to_json(r.to_wire()[4]),
                        "encoded": e.hex(),
                    }
                    for r, e in zip(receipts, encoded, strict=True)
                ],
                "root": list_root(encoded).hex(),
            }
        )
    return out


def _malformed(good: SignedTx) -> list[dict[str, Any]]:
    body, sigs = good.tx.to_wire(), [[p, s] for p, s in good.signatures]
    pub, sig = sigs[0]

    def with_body(index: int, value: Any) -> bytes:
        changed = list(body)
        changed[index] = value
        return encode([changed, sigs])

    canonical = good.encode()
    cases: list[tuple[str, bytes]] = [
        ("not msgpack", b"\xc1"),
        ("trailing byte", canonical + b"\x00"),
        (
            "nonce in a longer form than needed (uint 16)",
            canonical.replace(b"\xaaxchg-alpha\x01", b"\xaaxchg-alpha\xcd\x00\x01", 1),
        ),
        ("not an array", encode("tx")),
        ("three elements", encode([body, sigs, None])),
        ("body of six fields", encode([body[:6], sigs])),
        ("empty chain_id", with_body(0, "")),
        ("chain_id of 65 characters", with_body(0, "c" * 65)),
        ("sender with a space", with_body(1, "xchg alpha")),
        ("sender of 65 characters", with_body(1, "x" * 65)),
        ("empty sender", with_body(1, "")),
        ("nonce 0", with_body(2, 0)),
        ("nonce 2^63", with_body(2, 2**63)),
        ("nonce as bytes", with_body(2, b"\x01")),
        ("empty contract", with_body(3, "")),
        ("method of 65 characters", with_body(4, "m" * 65)),
        ("args not an array", with_body(5, "V-1")),
        ("a float in args", encode([body, sigs]).replace(b"\xcd\x46\x50", b"\xcb" + bytes(8), 1)),
        ("negative valid_until_height", with_body(6, -1)),
        ("no signatures", encode([body, []])),
        ("nine signatures", encode([body, [[pub, sig]] * 9])),
        ("a public key of 31 bytes", encode([body, [[pub[:31], sig]]])),
        ("a signature of 65 bytes", encode([body, [[pub, sig + b"\x00"]]])),
        ("a signature pair of three items", encode([body, [[pub, sig, b""]]])),
        ("a signature as text", encode([body, [[pub, sig.hex()]]])),
    ]
    return [{"name": name, "encoded": data.hex(), "error": _decode_error(data)} for name, data in cases]


def _decode_error(data: bytes) -> str:
    try:
        SignedTx.decode(data)
    except InvalidTransaction as exc:
        return exc.code
    raise AssertionError(f"{data.hex()} decodes as a signed tx")


def _admission(genesis_state: StateReader) -> list[dict[str, Any]]:
    base = Tx(
        CHAIN_ID, "xchg-alpha", 1, "settlement", "settle", ["V-9", "A-C001", "B-C001", "ACME", 1, 1, DAY], 0
    )

    def tx(**change: Any) -> Tx:
        return replace(base, **change)

    user, wallet, recovery = (f"member-b/{k}" for k in ("user", "wallet", "recovery"))
    withdraw = tx(
        sender="member-b", contract="custody", method="request_withdrawal", args=["B-C002", "USD", 1]
    )
    # The user's key with the wallet's signature: a signature that does not verify for its key.
    _, wallet_signature = _signed(withdraw, [wallet]).signatures[0]
    mismatched = (
        (KeyPair.dev(user).public, wallet_signature),
        (KeyPair.dev(wallet).public, wallet_signature),
    )
    cases: list[tuple[str, int, SignedTx]] = [
        ("valid", 1, _signed(tx(), ["xchg-alpha"])),
        ("valid, 2 of 3", 1, _signed(withdraw, [recovery, user])),
        ("valid_until_height = height", 1, _signed(tx(valid_until_height=1), ["xchg-alpha"])),
        ("wrong chain", 1, _signed(tx(chain_id="clearchain-other"), ["xchg-alpha"])),
        ("expired", 2, _signed(tx(valid_until_height=1), ["xchg-alpha"])),
        ("unknown contract", 1, _signed(tx(contract="casino"), ["xchg-alpha"])),
        ("unknown method", 1, _signed(tx(method="steal"), ["xchg-alpha"])),
        ("bad arguments", 1, _signed(tx(args=["V-9"]), ["xchg-alpha"])),
        ("unknown sender", 1, _signed(tx(sender="nobody"), ["xchg-alpha"])),
        ("signer not in the policy", 1, _signed(tx(), ["custodian"])),
        ("duplicate signer", 1, _signed(withdraw, [user, user])),
        ("insufficient signatures", 1, _signed(withdraw, [user])),
        ("bad signature", 1, SignedTx(withdraw, mismatched, withdraw.digest())),
        ("nonce gap", 1, _signed(tx(nonce=2), ["xchg-alpha"])),
        (
            "wrong chain and expired: the first check wins",
            2,
            _signed(tx(chain_id="x", valid_until_height=1), ["xchg-alpha"]),
        ),
    ]
    executor = Executor(CHAIN_ID, default_registry())
    out = []
    for name, height, stx in cases:
        try:
            executor.check_transaction(stx, BlockState(genesis_state), height)
            result = "ok"
        except InvalidTransaction as exc:
            result = exc.code
        out.append(
            {
                "name": name,
                "height": height,
                "signed_encoded": stx.encode().hex(),
                "tx_hash": stx.hash.hex(),
                "result": result,
            }
        )
    return out
