"""Records with a lifetime (docs/CONTRACTS.md "Records and their lifetimes").

Trade ids live for a window of days (contracts/settlement.py): a ticket carries its trade date,
tickets older than ``settlement.trade_id_days`` fail ``trade_expired``, after tomorrow
``trade_date_future``, and the ``expire`` task removes the ids of a date once it is out of the
window, a bounded number per block. Duplicate detection stays exact: a ticket settles at most
once, ever, and the stored ids are only those of the window. Final withdrawals are removed
after ``custody.final_withdrawal_days``."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chain.genesis import parse_genesis
from chain.receipt import Receipt
from chain.store import Store
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from contracts import settlement
from contracts.settlement import DAY_MS
from tests.conftest import Chain

WINDOW = 7  # settlement.trade_id_days in the dev genesis
GENESIS = parse_genesis(devnet.dev_genesis_doc())


def ticket(tid: str, trade_date: int, qty: int = 1) -> list[Any]:
    return [tid, "A-C001", "B-C001", "ACME", qty, 1_00, trade_date]


def at(chain: Chain, time_ms: int, *txs: Any) -> tuple[Receipt, ...]:
    """One block at block time ``time_ms`` (absolute) with ``txs``; all its receipts."""
    interval = chain.producer.block_interval_ms
    chain.producer.block_interval_ms = time_ms - chain.ledger.head.time_ms
    assert chain.producer.block_interval_ms > 0
    try:
        _, result = chain.run(*txs)
    finally:
        chain.producer.block_interval_ms = interval
    assert [r.error.code for r in result.rejected] == []
    return tuple(result.receipts)


def settle(chain: Chain, t: list[Any], time_ms: int | None = None) -> str:
    when = chain.ledger.head.time_ms + 1_000 if time_ms is None else time_ms
    return at(chain, when, chain.tx("xchg-alpha", "settlement", "settle", t))[0].code


def stored(chain: Chain, prefix: bytes) -> dict[bytes, Any]:
    return dict(chain.state().iterate(prefix))


def day_start(day: int) -> int:
    return day * DAY_MS


# --- the codes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("offset", "code"),
    [(-WINDOW - 1, "trade_expired"), (-WINDOW, "ok"), (0, "ok"), (1, "ok"), (2, "trade_date_future")],
)
def test_the_window_of_trade_dates(chain: Chain, offset: int, code: str) -> None:
    assert settle(chain, ticket("T-1", DAY + offset)) == code
    recorded = settlement.read_trade(chain.state(), "xchg-alpha", "T-1")
    assert recorded == (None if code != "ok" else (chain.ledger.head.height, "settled", DAY + offset))


def test_a_refused_date_writes_nothing(chain: Chain) -> None:
    for offset in (-WINDOW - 1, 2):
        assert settle(chain, ticket(f"T{offset}", DAY + offset)) != "ok"
    assert stored(chain, b"settlement/trade/") == {} and stored(chain, b"settlement/expiry/") == {}
    assert stored(chain, b"chain/task/t/") == {}


def test_a_settled_id_is_a_duplicate_whatever_the_new_date(chain: Chain) -> None:
    assert settle(chain, ticket("T-1", DAY - 3)) == "ok"
    for date in (DAY - 3, DAY - 1, DAY, DAY + 1):
        assert settle(chain, ticket("T-1", date)) == "duplicate_trade_id"


# --- the expire task ----------------------------------------------------------------------------
def test_the_ids_of_a_date_go_when_it_leaves_the_window(chain: Chain) -> None:
    assert settle(chain, ticket("T-old", DAY - WINDOW)) == "ok"
    assert settle(chain, ticket("T-new", DAY)) == "ok"
    expiry = stored(chain, b"settlement/expiry/")
    assert sorted(expiry) == [
        f"settlement/expiry/{DAY - WINDOW:010d}/xchg-alpha/T-old".encode(),
        f"settlement/expiry/{DAY:010d}/xchg-alpha/T-new".encode(),
    ]
    # The first block of day DAY + 1 runs T-old's expire task at its end.
    (_, task) = at(
        chain, day_start(DAY + 1), chain.tx("xchg-alpha", "settlement", "settle", ticket("T-old", DAY))
    )
    assert task.code == "ok"
    assert task.event_fields(0) == {"date": DAY - WINDOW, "removed": 1, "more": False}
    assert settlement.read_trade(chain.state(), "xchg-alpha", "T-old") is None
    assert settlement.read_trade(chain.state(), "xchg-alpha", "T-new") is not None
    assert chain.state().get(b"settlement/expired_through") == DAY - WINDOW
    # The same ticket again: refused by its date, never settled twice.
    assert settle(chain, ticket("T-old", DAY - WINDOW)) == "trade_expired"


def test_the_block_that_sweeps_still_sees_the_id_before_its_end(chain: Chain) -> None:
    """Tasks run after the block's transactions: in that block the id is still a duplicate."""
    assert settle(chain, ticket("T-1", DAY - WINDOW)) == "ok"
    (tx, task) = at(
        chain, day_start(DAY + 1), chain.tx("xchg-alpha", "settlement", "settle", ticket("T-1", DAY))
    )
    assert (tx.code, task.code) == ("duplicate_trade_id", "ok")
    assert settle(chain, ticket("T-1", DAY + 1)) == "ok"  # a new trade that reuses the id after its window


def test_the_sweep_is_bounded_per_block(chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(settlement, "EXPIRE_BATCH_MAX", 3)
    batch = [ticket(f"T-{i}", DAY - WINDOW) for i in range(7)]
    (receipt,) = at(
        chain,
        chain.ledger.head.time_ms + 1_000,
        chain.tx("xchg-alpha", "settlement", "settle_batch", [batch]),
    )
    assert receipt.event_fields(len(batch)) == {"trades": 7, "settled": 7, "failed": 0}
    removed = []
    receipts = at(chain, day_start(DAY + 1))
    while receipts:
        (task,) = receipts
        removed.append(task.event_fields(0))
        receipts = at(chain, chain.ledger.head.time_ms + 1_000)
    assert removed == [
        {"date": DAY - WINDOW, "removed": 3, "more": True},
        {"date": DAY - WINDOW, "removed": 3, "more": True},
        {"date": DAY - WINDOW, "removed": 1, "more": False},
    ]
    assert stored(chain, b"settlement/trade/") == {} and stored(chain, b"settlement/expiry/") == {}
    assert stored(chain, b"settlement/expire_due/") == {}  # the date's task is done
    for t in batch:  # refused while the sweep ran, and after it
        assert settle(chain, t) == "trade_expired"


# --- settlement cycles share the ids and the rule -----------------------------------------------
def submit(chain: Chain, tid: str, trade_date: int, tplus: int, time_ms: int | None = None) -> str:
    args = [*ticket(tid, trade_date), tplus]
    when = chain.ledger.head.time_ms + 1_000 if time_ms is None else time_ms
    return at(chain, when, chain.tx("xchg-alpha", "cycles", "submit", args))[0].code


def test_cycles_refuse_by_date_and_share_the_ids(chain: Chain) -> None:
    assert submit(chain, "C-1", DAY - WINDOW - 1, 1) == "trade_expired"
    assert submit(chain, "C-1", DAY + 2, 1) == "trade_date_future"
    assert submit(chain, "C-1", DAY, 1) == "ok"
    assert settlement.read_trade(chain.state(), "xchg-alpha", "C-1")[1:] == ("in_cycle", DAY)  # type: ignore[index]
    assert settle(chain, ticket("C-1", DAY)) == "duplicate_trade_id"
    assert submit(chain, "C-1", DAY, 1) == "duplicate_trade_id"


def test_a_pending_cycle_trade_keeps_its_id_until_its_close() -> None:
    """A T+1 trade dated at the window's edge: the sweep at the next day's start keeps its pending
    id (so no other trade can take it while the close may touch it); the close removes it. Cycles
    here have calendar days (the dev genesis's are 20 s long)."""
    doc = devnet.dev_genesis_doc()
    doc["params"] = {**doc["params"], "cycles.day_ms": DAY_MS}
    chain = Chain(Store.in_memory(), parse_genesis(doc))
    assert submit(chain, "C-1", DAY - WINDOW, 1) == "ok"
    receipts = at(chain, day_start(DAY + 1))
    assert [r.event_fields(0) for r in receipts] == [{"date": DAY - WINDOW, "removed": 1, "more": False}]
    assert settlement.read_trade(chain.state(), "xchg-alpha", "C-1")[1] == "in_cycle"  # type: ignore[index]
    assert stored(chain, b"settlement/expiry/") == {}
    assert settle(chain, ticket("C-1", DAY + 1)) == "duplicate_trade_id"
    close_at = day_start(DAY + 1) + DAY_MS * 3 // 4  # 18:00, the default cut-off
    (close,) = at(chain, close_at)
    assert close.code == "ok" and close.event_fields(len(close.events) - 1)["settled"] == 1
    assert settlement.read_trade(chain.state(), "xchg-alpha", "C-1") is None  # settled, out of the window
    assert submit(chain, "C-1", DAY - WINDOW, 1) == "trade_expired"


# --- the property -------------------------------------------------------------------------------
STEP = st.tuples(
    st.integers(0, 2),  # days to move the clock on (then a few seconds)
    st.sampled_from(["T-1", "T-2", "T-3"]),  # a small pool of ids, so retries and reuse happen
    st.integers(-WINDOW - 3, 3),  # the ticket's date relative to the block's day
    st.booleans(),  # also send a ticket of an earlier step again (a retry)
)


@settings(max_examples=40)
@given(st.lists(STEP, min_size=1, max_size=14))
def test_duplicate_detection_is_exact_and_the_ids_stay_bounded(
    steps: list[tuple[int, str, int, bool]],
) -> None:
    chain = Chain(Store.in_memory(), GENESIS)  # a fresh ledger per example
    records: dict[str, int] = {}  # the model: id -> trade date, while kept
    settled: dict[tuple[str, int], int] = {}  # (id, date) -> times settled
    settled_on: dict[str, list[tuple[int, int]]] = {}  # id -> [(trade date, day settled)]
    sent: list[list[Any]] = []
    time_ms = chain.ledger.head.time_ms
    for days, tid, offset, retry in steps:
        time_ms += days * DAY_MS + 1_000
        today = time_ms // DAY_MS
        tickets = [ticket(tid, today + offset)] + ([sent[len(sent) // 2]] if retry and sent else [])
        txs = [chain.tx("xchg-alpha", "settlement", "settle", t) for t in tickets]
        receipts = at(chain, time_ms, *txs)
        for t, receipt in zip(tickets, receipts, strict=False):
            date = t[6]
            if date < today - WINDOW:
                expected = "trade_expired"
            elif date > today + 1:
                expected = "trade_date_future"
            elif t[0] in records:
                expected = "duplicate_trade_id"
            else:
                expected = "ok"
                records[t[0]] = date
            assert receipt.code == expected, (t, today)
            if expected == "ok":
                settled[(t[0], date)] = settled.get((t[0], date), 0) + 1
                settled_on.setdefault(t[0], []).append((date, today))
        sent.extend(tickets)
        # At the end of the block, the expire tasks due by its time remove their dates' ids.
        records = {k: v for k, v in records.items() if (v + WINDOW + 1) * DAY_MS > time_ms}
        # Exact: a ticket settles at most once, and an id again only after its record expired.
        assert max(settled.values(), default=1) == 1
        for history in settled_on.values():
            for (d1, _), (d2, on) in zip(history, history[1:], strict=False):
                assert on > d1 + WINDOW and d2 > d1
        # Bounded: the state holds exactly the ids of the window.
        kept = {k.decode().rsplit("/", 1)[1]: v[2] for k, v in stored(chain, b"settlement/trade/").items()}
        assert kept == records
        assert all(v >= today - WINDOW for v in kept.values())
        assert len(stored(chain, b"settlement/expiry/")) == len(kept)


# --- final withdrawals (contracts/custody.py) ---------------------------------------------------
def test_a_final_withdrawal_is_removed_after_its_lifetime(chain: Chain) -> None:
    """Confirmed, rejected and cancelled withdrawals are kept ``final_withdrawal_days`` (30) days
    of block time, then removed; a pending one is kept; ids are never reused."""
    request = ["A-C001", "USD", 1_00]
    at(
        chain,
        chain.ledger.head.time_ms + 1_000,
        *[chain.tx("member-a", "custody", "request_withdrawal", request) for _ in range(4)],
    )
    final_at = chain.ledger.head.time_ms + 1_000
    codes = at(
        chain,
        final_at,
        chain.tx("custodian", "custody", "confirm_withdrawal", [1]),
        chain.tx("custodian", "custody", "reject_withdrawal", [2, "no"]),
        chain.tx("member-a", "custody", "cancel_withdrawal", [3]),
    )
    assert [r.code for r in codes] == ["ok"] * 3

    def kept() -> list[int]:
        return sorted(int(k.rsplit(b"/", 1)[1]) for k in stored(chain, b"custody/withdrawal/"))

    lifetime = 30 * DAY_MS
    assert at(chain, final_at + lifetime - 1) == () and kept() == [1, 2, 3, 4]
    tasks = at(chain, final_at + lifetime)
    assert [r.code for r in tasks] == ["ok"] * 3 and kept() == [4]  # the pending one stays
    assert (
        settle_code(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [1]))
        == "unknown_withdrawal"
    )
    assert settle_code(chain, chain.tx("custodian", "custody", "confirm_withdrawal", [4])) == "ok"
    (receipt,) = at(
        chain,
        chain.ledger.head.time_ms + 1_000,
        chain.tx("member-a", "custody", "request_withdrawal", request),
    )
    assert receipt.event_fields(0)["id"] == 5  # a new id, never a removed one


def settle_code(chain: Chain, stx: Any) -> str:
    return at(chain, chain.ledger.head.time_ms + 1_000, stx)[0].code
