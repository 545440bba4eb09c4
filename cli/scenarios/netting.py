"""Scenario ``netting``: T+N trades settled at the cycle's close after multilateral netting.

xchg-alpha reports seven trades for one settlement cycle (member-b is not an exchange and is
refused). Five of them are among accounts of member-a and member-b that can pay and deliver; two
involve a client account that member-b has just opened with nothing in it. Before the close the
chain shows each account's pending net obligation and the projected outcome; at the close it
settles only the net positions, reports gross, net and the netting ratio per asset, and fails
both trades of the empty account (insufficient_cash, DvP model 3 unwind) while the five others
settle. The scenario checks every balance change against the net it computes from the tickets.

It needs short business days to finish in a minute: the network's genesis sets
``"params": {"cycles.day_ms": 20000}`` (a 20-second day; cycles close 15 s into it).
"""

from __future__ import annotations

from typing import Any

from cli.amounts import format_amount
from cli.scenarios import ScenarioFailed, ScenarioRun
from cli.trade_dates import today

TITLE = (
    "settlement cycle: T+N trades netted per account and asset at the close; a short account's trades fail"
)
MARGIN_MS = 5_000  # a T+0 trade needs this long before today's close, else the story uses T+1
WAIT_MS_MAX = 50_000
CLOSE_BLOCKS_MAX = 10  # blocks after the close time within which the close task must have run


def tickets(tag: str, short: str, tplus: int) -> list[list[Any]]:
    """[trade_id, buyer, seller, instrument, quantity, price, trade_date, tplus]; the last two are the short
    account's (it neither pays nor delivers)."""
    rows = [
        ("A-C001", "B-HOUSE", "ACME", 100, 180_00),
        ("B-C001", "A-C001", "ACME", 60, 181_00),  # A-C001 sells what it buys in the same cycle
        ("B-HOUSE", "B-C001", "ACME", 50, 180_50),
        ("A-HOUSE", "B-HOUSE", "GLOBEX", 200, 50_00),
        ("B-HOUSE", "A-HOUSE", "GLOBEX", 150, 50_25),
        (short, "A-HOUSE", "ACME", 10, 180_00),
        ("A-HOUSE", short, "ACME", 5, 179_00),
    ]
    day = today()  # the nodes' blocks are dated by this machine's clock
    return [[f"{tag}-{i + 1}", b, s, iid, q, p, day, tplus] for i, (b, s, iid, q, p) in enumerate(rows)]


def expected_net(trades: list[list[Any]]) -> dict[tuple[str, str], int]:
    """Net change per (account, asset) of ``trades`` (0-decimal equities, USD in cents)."""
    net: dict[tuple[str, str], int] = {}
    for _, buyer, seller, iid, qty, price, _, _ in trades:
        cash = qty * price  # 0 decimals: the consideration is exact
        for key, delta in (
            ((buyer, iid), qty),
            ((seller, iid), -qty),
            ((buyer, "USD"), -cash),
            ((seller, "USD"), cash),
        ):
            net[key] = net.get(key, 0) + delta
    return net


def choose_tplus(s: ScenarioRun) -> tuple[int, int, int]:
    """(N, cycle date, close time): T+0 if today's close is far enough ahead, else T+1."""
    cal = s.view("cycles", "cycles", limit=1)
    tplus = 0 if cal["today_close_at_ms"] - cal["time_ms"] >= MARGIN_MS else 1
    close_at = cal["today_close_at_ms"] + tplus * cal["day_ms"]
    wait_ms = close_at - cal["time_ms"]
    if wait_ms > WAIT_MS_MAX:
        raise ScenarioFailed(
            "scenario_needs_short_days",
            f"the next cycle closes in {wait_ms // 1000:,} s (cycles.day_ms = {cal['day_ms']:,}); this story needs a "
            'network whose genesis sets "params": {"cycles.day_ms": 20000}',
        )
    return tplus, cal["today"] + tplus, close_at


def run(s: ScenarioRun) -> None:
    tag = f"NET{s.height}"
    short = f"B-N{s.height}"
    s.send("member-b", "accounts", "open", [short, "client", f"client-{tag.lower()}"])
    s.echo(f"member-b opens client account {short}, with nothing in it")
    tplus, _, _ = choose_tplus(s)
    trades = tickets(tag, short, tplus)
    s.fails("not_exchange", "member-b", "cycles", "submit", trades[0])
    s.echo("member-b reports a trade itself: refused (not_exchange); only an exchange reports trades")
    good = trades[:5]
    net = expected_net(good)
    watched = sorted(net)
    before = {key: s.balance(*key)[0] for key in watched}
    pending_before = pending_net(s, "A-C001")

    trades, accepted = submit_cycle_trades(s, trades)
    tplus = trades[0][7]
    # The cycle is the one the chain put the trades in (the block's time decides it), not a
    # prediction from an earlier read: a day may begin between the read and the block.
    date, close_at = int(accepted[0]["date"]), int(accepted[0]["close_at_ms"])
    s.check(
        len(accepted) == 7 and all((f["date"], f["close_at_ms"]) == (date, close_at) for f in accepted),
        f"accepted {accepted}",
    )
    s.echo(
        f"xchg-alpha reports 7 trades at T+{tplus}: all join cycle {date}, which closes at block time {close_at}"
    )
    for t in trades:
        s.echo(f"  {t[0]}: {t[1]} buys {t[4]} {t[3]} from {t[2]} at USD {format_amount(t[5], 2)}")
    s.check(all(s.balance(*key)[0] == before[key] for key in watched), "balances moved before the close")

    pending_after = pending_net(s, "A-C001")
    mine = {
        asset: n - pending_before.get((d, asset), 0) for (d, asset), n in pending_after.items() if d == date
    }
    mine = {asset: n for asset, n in mine.items() if n}
    s.check(
        mine == {"ACME": net[("A-C001", "ACME")], "USD": net[("A-C001", "USD")]}, f"A-C001 pending net {mine}"
    )
    s.echo(
        f"nothing moves yet; A-C001's pending net for cycle {date}: ACME {mine['ACME']:+,}, USD {format_amount(mine['USD'], 2, signed=True)}"
    )
    projected = s.view("cycles", "cycle", date=date)["projected"]["failed"]
    doomed = {(f["trade_id"], f["account"]) for f in projected}
    s.check({(f"{tag}-6", short), (f"{tag}-7", short)} <= doomed, f"projected fails {projected}")
    s.echo(f"projected at current balances: {tag}-6 and {tag}-7 would fail, {short} is short")

    report = wait_closed(s, date, close_at)
    s.echo(
        f"cycle {date} closed at height {report['closed_height']}: {report['settled']} trades settled, {report['failed']} failed"
    )
    for v in report["values"]:
        decimals = s.decimals(v["asset"])
        s.echo(f"  {v['asset']:<7} gross {format_amount(v['gross'], decimals):>14}  net {format_amount(v['net'], decimals):>14}"
               f"  netting saved {v['netting_bps'] / 100:.2f}%")  # fmt: skip
    check_outcome(s, tag, trades, short)
    for key in watched:
        after = s.balance(*key)[0]
        s.check(
            after - before[key] == net[key], f"{key}: {before[key]} -> {after}, expected net {net[key]:+}"
        )
    s.echo("every account moved by exactly its net: " + ", ".join(
        f"{a} {asset} {net[(a, asset)]:+,}" if asset != "USD" else f"{a} USD {format_amount(net[(a, asset)], 2, signed=True)}"
        for a, asset in watched if net[(a, asset)]
    ))  # fmt: skip


def submit_cycle_trades(
    s: ScenarioRun, trades: list[list[Any]]
) -> tuple[list[list[Any]], list[dict[str, Any]]]:
    """Report ``trades`` in one batch; (the tickets as accepted, their trade_accepted events).

    A T+0 batch whose block came after today's cut-off (the chain refuses it, cycle_closed) is
    reported again at T+1: the chain's refusal decides, not a guess of how long a block takes."""
    events = s.send("xchg-alpha", "cycles", "submit_batch", [trades])
    refused = [f for _, n, f in events if n == "trade_refused"]
    if trades[0][7] == 0 and refused and all(f["code"] == "cycle_closed" for f in refused):
        s.echo("today's cut-off passed before the batch's block: the trades are reported again at T+1")
        trades = [[*t[:7], 1] for t in trades]
        events = s.send("xchg-alpha", "cycles", "submit_batch", [trades])
    return trades, [f for _, n, f in events if n == "trade_accepted"]


def pending_net(s: ScenarioRun, account: str) -> dict[tuple[int, str], int]:
    """``account``'s net pending obligation per (cycle date, asset), over every page."""
    net: dict[tuple[int, str], int] = {}
    after = None
    while True:
        page = s.view("cycles", "pending", account=account, after=after)
        for n in page["net"]:
            key = (int(n["date"]), str(n["asset"]))
            net[key] = net.get(key, 0) + int(n["net"])
        after = page["next"]
        if after is None:
            return net


def wait_closed(s: ScenarioRun, date: int, close_at: int) -> dict[str, Any]:
    """The cycle's report once its close task has run (heartbeat blocks make time pass).

    Waits on block time, not on the wall clock: the close task runs in a block whose time is at
    or past ``close_at``; the cycle must be closed within CLOSE_BLOCKS_MAX blocks of the first
    such block (a stalled chain is caught by ``wait_height``'s own limit)."""
    s.echo("waiting for the close ...")
    first_past: int | None = None  # the first height seen whose block time is past the close
    while True:
        doc = s.view("cycles", "cycle", date=date)
        if doc["status"] == "closed":
            return doc  # type: ignore[no-any-return]
        height = s.height
        if first_past is None and s.view("cycles", "cycles", limit=1)["time_ms"] >= close_at:
            first_past = height
        if first_past is not None and height > first_past + CLOSE_BLOCKS_MAX:
            raise ScenarioFailed(
                "scenario_timeout",
                f"cycle {date} (close at {close_at}) is still open at height {height}, "
                f"{CLOSE_BLOCKS_MAX} blocks after its close time",
            )
        s.wait_height(s.height + 1)


def check_outcome(s: ScenarioRun, tag: str, trades: list[list[Any]], short: str) -> None:
    for t in trades:
        doc = s.view("cycles", "trade", exchange="xchg-alpha", trade_id=t[0])
        if short in (t[1], t[2]):
            s.check(
                doc["status"] == "failed"
                and doc["code"] == "insufficient_cash"
                and doc["short_account"] == short,
                f"{t[0]}: {doc}",
            )
        else:
            s.check(doc["status"] == "settled", f"{t[0]}: {doc}")
    s.echo(f"{tag}-6 and {tag}-7 failed (insufficient_cash, short account {short}); the other five settled")
