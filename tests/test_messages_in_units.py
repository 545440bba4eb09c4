"""Failure messages read in the asset's units, with the asset next to every amount (issue 18).

The messages are in receipts, so the contract formats them itself from the decimals in state;
these tests read the receipts and compare with an independent formatter (``Decimal``).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chain.display import format_amount
from chain.executor import CallEnv
from chain.limits import AMOUNT_MAX
from chain.receipt import Receipt
from cli.amounts import parse_amount
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import default_registry
from contracts.money import amount_text, consideration
from tests.conftest import Chain


def units(amount: int, decimals: int, asset: str) -> str:
    """What a person should read, computed apart from chain/display.py."""
    return f"{Decimal(amount).scaleb(-decimals):,.{decimals}f} {asset}"


def failed(chain: Chain, sender: str, contract: str, method: str, args: list[object]) -> Receipt:
    _, result = chain.run(chain.tx(sender, contract, method, args))
    (receipt,) = result.receipts
    assert not receipt.ok
    return receipt


def test_insufficient_cash_reads_in_usd(chain: Chain) -> None:
    cash_held = chain.balance("A-C002", "USD")[0]
    quantity, price = 5_000, 3_650_00  # ACME has 0 decimals: 5,000 shares at 3,650.00 USD
    receipt = failed(
        chain,
        "xchg-alpha",
        "settlement",
        "settle",
        ["T-U1", "A-C002", "B-C001", "ACME", quantity, price, DAY],
    )
    assert receipt.code == "insufficient_cash"
    pays = units(consideration(quantity, price, 0), 2, "USD")
    assert receipt.message == f"A-C002 has {units(cash_held, 2, 'USD')}, pays {pays}"
    assert receipt.message == "A-C002 has 250,000.00 USD, pays 18,250,000.00 USD"


def test_insufficient_securities_reads_in_the_instrument(chain: Chain) -> None:
    receipt = failed(
        chain, "xchg-alpha", "settlement", "settle", ["T-U2", "A-C001", "B-C001", "ACME", 5_001, 1_00, DAY]
    )
    assert (receipt.code, receipt.message) == (
        "insufficient_securities",
        "B-C001 has 5,000 ACME, delivers 5,001 ACME",
    )


def test_zero_consideration_reads_quantity_and_price_in_units(chain: Chain) -> None:
    receipt = failed(
        chain, "xchg-alpha", "settlement", "settle", ["T-U3", "A-C002", "B-HOUSE", "BTC", 1, 1, DAY]
    )
    assert (receipt.code, receipt.message) == (
        "zero_consideration",
        "0.00000001 BTC at 0.01 USD rounds to no cash",
    )


def test_batch_failure_event_reads_in_units(chain: Chain) -> None:
    _, result = chain.run(
        chain.tx(
            "xchg-alpha",
            "settlement",
            "settle_batch",
            [[["T-U4", "A-C002", "B-C001", "ACME", 5_000, 3_650_00, DAY]]],
        )
    )
    fields = result.receipts[0].event_fields(0)
    assert fields["code"] == "insufficient_cash"
    assert fields["message"] == "A-C002 has 250,000.00 USD, pays 18,250,000.00 USD"


def test_withdrawal_beyond_balance_reads_in_units(chain: Chain) -> None:
    held = chain.balance("A-C002", "USD")[0]
    receipt = failed(chain, "member-a", "custody", "request_withdrawal", ["A-C002", "USD", held + 1])
    assert receipt.code == "insufficient_balance"
    assert (
        receipt.message == f"A-C002 has {units(held, 2, 'USD')} available, needs {units(held + 1, 2, 'USD')}"
    )


def test_price_view_without_instrument_says_it_is_required(chain: Chain) -> None:
    env = CallEnv(chain.genesis.chain_id, 1, 0, b"")
    with pytest.raises(Exception) as exc:
        default_registry().read_view(chain.state(), env, "oracle", "price", {})
    assert (getattr(exc.value, "code", None), getattr(exc.value, "message", None)) == (
        "bad_query",
        "instrument is required",
    )


@given(st.integers(1, AMOUNT_MAX), st.integers(0, 18))
def test_formatted_amount_parses_back(amount: int, decimals: int) -> None:
    text = format_amount(amount, decimals)
    assert text == units(amount, decimals, "X")[: -len(" X")]
    assert parse_amount(text.replace(",", ""), decimals, AMOUNT_MAX) == amount
    assert amount_text(amount, decimals, "BTC") == text + " BTC"
