"""When several failures apply to one call, the first check in the method's order wins
(docs/CONTRACTS.md, "Which failure wins"): each case breaks two or more rules at once and
expects the code the rulebook names. The receipt's code is consensus data, so this order is
part of the protocol."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import pytest

from chain.tx import SignedTx
from cli.localnet.devnet import GENESIS_DAY as DAY
from tests.conftest import Chain

HASH = hashlib.sha256(b"s" * 32).digest()
Build = Callable[[Chain], SignedTx]


def _head(chain: Chain) -> int:
    header = chain.ledger.store.head()
    assert header is not None
    return header.height


def _code(chain: Chain, stx: SignedTx) -> str:
    _, result = chain.run(stx)
    assert [r.error.code for r in result.rejected] == []
    return result.receipts[0].code


def _ok(chain: Chain, *txs: SignedTx) -> None:
    _, result = chain.run(*txs)
    assert [r.code for r in result.receipts[: len(txs)]] == ["ok"] * len(txs)


def _settle(chain: Chain, *ticket: object) -> SignedTx:
    """A gross ticket of the dev genesis's day (give seven fields to date it otherwise)."""
    return chain.tx(
        "xchg-alpha", "settlement", "settle", list(ticket) if len(ticket) == 7 else [*ticket, DAY]
    )


def _submit(chain: Chain, *ticket: object) -> SignedTx:
    return chain.tx("xchg-alpha", "cycles", "submit", list(ticket))


def _lock(chain: Chain, eid: str, source: str, target: str, sender: str) -> SignedTx:
    args = [eid, source, target, "USD", 100_00, HASH, _head(chain) + 20]
    return chain.tx(sender, "escrow", "lock", args)


def _withdraw_and_confirm(chain: Chain) -> None:
    _ok(chain, chain.tx("member-b", "custody", "request_withdrawal", ["B-C002", "USD", 1_00]))
    _ok(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [1]))


CASES: list[tuple[str, Callable[[Chain], None], Build, str]] = [
    # settlement: the terms before the accounts, the accounts before the balances
    ("quantity before instrument", lambda c: None, lambda c: _settle(c, "T", "A-C001", "B-C001", "NOPE", 0, 1_00), "bad_quantity"),
    ("halted before same account", lambda c: _ok(c, c.tx("admin", "instruments", "halt", ["GLOBEX", "news"])),
     lambda c: _settle(c, "T", "A-C001", "A-C001", "GLOBEX", 1, 1_00), "instrument_halted"),
    ("same account before unknown account", lambda c: None,
     lambda c: _settle(c, "T", "Z-NONE", "Z-NONE", "ACME", 1, 1_00), "same_account"),
    ("buyer's account before seller's", lambda c: None,
     lambda c: _settle(c, "T", "Z-ONE", "XA-HOUSE", "ACME", 1, 1_00), "unknown_account"),
    ("zero consideration before the balances", lambda c: None,
     lambda c: _settle(c, "T", "B-C001", "A-C001", "BTC", 1, 1), "zero_consideration"),
    ("securities before cash", lambda c: None,
     lambda c: _settle(c, "T", "A-C002", "B-C001", "ACME", 10_000, 100_00), "insufficient_securities"),
    ("a settled id before everything else", lambda c: _ok(c, _settle(c, "T", "A-C001", "B-C001", "ACME", 1, 1_00)),
     lambda c: _settle(c, "T", "A-C001", "A-C001", "NOPE", 0, 0), "duplicate_trade_id"),
    # the trade date comes right after the sender's role, before the id
    ("exchange before the trade date", lambda c: None,
     lambda c: c.tx("member-a", "settlement", "settle", ["T", "A-C001", "B-C001", "ACME", 1, 1_00, 0]),
     "not_exchange"),
    ("an expired date before a settled id", lambda c: _ok(c, _settle(c, "T", "A-C001", "B-C001", "ACME", 1, 1_00)),
     lambda c: _settle(c, "T", "A-C001", "A-C001", "NOPE", 0, 0, DAY - 8), "trade_expired"),
    ("a future date before a settled id", lambda c: _ok(c, _settle(c, "T", "A-C001", "B-C001", "ACME", 1, 1_00)),
     lambda c: _settle(c, "T", "A-C001", "A-C001", "NOPE", 0, 0, DAY + 2), "trade_date_future"),
    ("cycles: an expired date before a pending id",
     lambda c: _ok(c, _submit(c, "C", "A-C001", "B-C001", "ACME", 1, 1_00, DAY, 1)),
     lambda c: _submit(c, "C", "A-C001", "B-C001", "ACME", 1, 1_00, DAY - 8, 6), "trade_expired"),
    ("cycles: a pending id before the T+N", lambda c: _ok(c, _submit(c, "C", "A-C001", "B-C001", "ACME", 1, 1_00, DAY, 1)),
     lambda c: _submit(c, "C", "A-C001", "B-C001", "ACME", 1, 1_00, DAY, 6), "duplicate_trade_id"),
    # escrow: the id, then the sender's account and ownership, then the recipient
    ("escrow id before ownership", lambda c: _ok(c, _lock(c, "E-1", "A-C001", "B-C001", "member-a")),
     lambda c: _lock(c, "E-1", "A-C001", "A-C001", "member-b"), "escrow_exists"),
    ("ownership before same account", lambda c: None,
     lambda c: _lock(c, "E-2", "A-C001", "A-C001", "member-b"), "not_account_owner"),
    ("refund: ownership before the timeout", lambda c: _ok(c, _lock(c, "E-3", "A-C001", "B-C001", "member-a")),
     lambda c: c.tx("member-b", "escrow", "refund", ["E-3"]), "not_account_owner"),
    # custody: the withdrawal's state before who asks
    ("not pending before not the requester", _withdraw_and_confirm,
     lambda c: c.tx("member-a", "custody", "cancel_withdrawal", [1]), "withdrawal_not_pending"),
    ("an unlisted asset is an insufficient balance", lambda c: None,
     lambda c: c.tx("member-a", "custody", "request_withdrawal", ["A-C001", "NOPE", 1]), "insufficient_balance"),
    # margin: the quantity, then the member, then the instrument
    ("quantity before member", lambda c: None,
     lambda c: c.tx("xchg-alpha", "margin", "open_position", ["nobody", "NOPE", 0, 1_00]), "bad_quantity"),
    ("member before instrument", lambda c: None,
     lambda c: c.tx("xchg-alpha", "margin", "open_position", ["nobody", "NOPE", 1, 1_00]), "unknown_member"),
    ("cash before rates", lambda c: None,
     lambda c: c.tx("admin", "margin", "set_rates", ["USD", 1_000, 2_000]), "instrument_is_cash"),
]  # fmt: skip


@pytest.mark.parametrize(("setup", "build", "code"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_first_check_in_order_wins(
    chain: Chain, setup: Callable[[Chain], None], build: Build, code: str
) -> None:
    setup(chain)
    assert _code(chain, build(chain)) == code


def test_a_batch_refuses_a_repeated_id_even_after_its_first_ticket_failed(chain: Chain) -> None:
    tickets = [
        ["T", "A-C001", "B-C001", "ACME", 0, 1_00, DAY],
        ["T", "A-C001", "B-C001", "ACME", 1, 1_00, DAY],
    ]
    _, result = chain.run(chain.tx("xchg-alpha", "settlement", "settle_batch", [tickets]))
    (receipt,) = result.receipts
    assert receipt.code == "ok"
    assert [(name, dict(fields)["code"]) for _, name, fields in receipt.events[:2]] == [
        ("trade_failed", "bad_quantity"),
        ("trade_failed", "duplicate_trade_id"),
    ]


def test_a_batch_checks_the_date_before_a_repeated_id(chain: Chain) -> None:
    tickets = [
        ["T", "A-C001", "B-C001", "ACME", 1, 1_00, DAY],
        ["T", "A-C001", "B-C001", "ACME", 1, 1_00, DAY - 8],
        ["T", "A-C001", "B-C001", "ACME", 1, 1_00, DAY + 2],
        ["T", "A-C001", "B-C001", "ACME", 1, 1_00, DAY],
    ]
    _, result = chain.run(chain.tx("xchg-alpha", "settlement", "settle_batch", [tickets]))
    (receipt,) = result.receipts
    assert [dict(fields).get("code") for _, name, fields in receipt.events[:4]] == [
        None,
        "trade_expired",
        "trade_date_future",
        "duplicate_trade_id",
    ]
