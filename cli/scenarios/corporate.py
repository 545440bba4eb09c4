"""Scenario ``corporate``: a cash dividend and a 2:1 split of ACME, paid by the chain itself.

The admin registers issuer-acme as ACME's issuer (again, harmlessly, on a re-run). A clearing
member cannot announce for ACME (not_issuer). issuer-acme announces a dividend of USD 0.25 per
share with a record height a few blocks ahead: ACME-CORP's cash for the whole supply is locked
at once. At the record height the chain records the holders and pays each
``quantity x 0.25`` (ACME-CORP's own treasury shares get nothing) and returns the rest of the
lock. Then a 2:1 split: every position doubles, supply with it. Each step is checked against the
entitlements the chain recorded, so the story holds on a network that has traded ACME before.
"""

from __future__ import annotations

from typing import Any

from cli.amounts import format_amount
from cli.scenarios import ScenarioRun

TITLE = "corporate actions: a dividend to the holders of record, then a 2:1 split"
CA = "corporate_actions"
ISSUER = "issuer-acme"
PAYER = "ACME-CORP"
DIVIDEND = 25  # USD 0.25 per ACME share
ACCOUNTS = ["A-HOUSE", "A-C001", "A-C002", "B-HOUSE", "B-C001", "B-C002", PAYER]
NOTICE_BLOCKS = 3
DONE = ("completed", "failed", "cancelled")


def run(s: ScenarioRun) -> None:
    s.send("admin", "disclosure", "register_issuer", ["ACME", ISSUER])
    s.echo("admin registered issuer-acme as the issuer of ACME")
    wait_for_open_actions(s)
    show_holders(s, "holders before")
    s.fails(
        "not_issuer",
        "member-a",
        CA,
        "announce_dividend",
        ["ACME", DIVIDEND, s.height + NOTICE_BLOCKS, "A-HOUSE"],
    )
    s.echo("member-a cannot announce a dividend on ACME (not_issuer)")
    dividend(s)
    split(s)
    show_holders(s, "holders after")


def wait_for_open_actions(s: ScenarioRun) -> None:
    """An earlier run cut short may have left an ACME action in progress: let it finish."""
    after = 0
    while True:
        page = s.view(CA, "actions", after=after, limit=500)
        for a in page["actions"]:
            if a["instrument"] == "ACME" and a["status"] not in DONE:
                wait_done(s, a["id"])
        if not page["next"]:
            return
        after = page["next"]


def wait_done(s: ScenarioRun, action_id: int) -> dict[str, Any]:
    while True:
        doc: dict[str, Any] = s.view(CA, "action", id=action_id)
        if doc["status"] in DONE:
            return doc
        s.wait_height(s.height + 1)


def show_holders(s: ScenarioRun, title: str) -> None:
    s.echo(f"{title}:")
    for account in ACCOUNTS:
        acme, usd = s.balance(account, "ACME"), s.balance(account, "USD")
        s.echo(f"  {account:<10} ACME {acme[0] + acme[1]:>10,}   USD {format_amount(usd[0], 2):>16}")


def announced(events: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    return next(f for c, n, f in events if c == CA and n == "corporate_action_announced")


def dividend(s: ScenarioRun) -> None:
    cash0 = {a: s.balance(a, "USD") for a in ACCOUNTS}
    events, record = s.send_ahead(
        ISSUER,
        CA,
        "announce_dividend",
        lambda height: ["ACME", DIVIDEND, height, PAYER],
        NOTICE_BLOCKS,
        "bad_record_height",
    )
    fields = announced(events)
    aid = fields["id"]
    locked = s.balance(PAYER, "USD")[1] - cash0[PAYER][1]
    s.check(
        locked == fields["locked"] > 0, f"ACME-CORP locked {locked}, the announcement says {fields['locked']}"
    )
    s.echo(
        f"issuer-acme announced dividend {aid}: USD 0.25 per ACME share, record height {record}; ACME-CORP locked USD {format_amount(locked, 2)}"
    )
    doc = wait_done(s, aid)
    s.check(doc["status"] == "completed", f"dividend {aid} ended {doc['status']} ({doc['code']})")
    s.check(
        doc["paid"] + doc["returned"] == doc["funded"], f"dividend {aid}: paid + returned != funded: {doc}"
    )
    recorded = entitlements(s, aid)
    for account in ACCOUNTS:
        e = recorded.get(account)
        if e is None or account == PAYER:
            continue
        gained = s.balance(account, "USD")[0] - cash0[account][0]
        s.check(
            e["cash"] == e["quantity"] * DIVIDEND and gained == e["cash"],
            f"{account}: entitled {e}, received {gained}",
        )
    s.check(
        s.balance(PAYER, "USD") == (cash0[PAYER][0] - doc["paid"], cash0[PAYER][1]),
        "ACME-CORP's cash after the dividend",
    )
    paid_to = sum(1 for e in recorded.values() if e["status"] == "paid")
    s.echo(f"at height {record} the chain paid USD {format_amount(doc['paid'], 2)} to {paid_to} holders "
           f"and returned USD {format_amount(doc['returned'], 2)} (treasury shares and rounding) to ACME-CORP")  # fmt: skip


def split(s: ScenarioRun) -> None:
    shares0 = {a: s.balance(a, "ACME") for a in ACCOUNTS}
    events, record = s.send_ahead(
        ISSUER,
        CA,
        "announce_split",
        lambda height: ["ACME", 2, 1, height, 0, PAYER],
        NOTICE_BLOCKS,
        "bad_record_height",
    )
    aid = announced(events)["id"]
    s.echo(f"issuer-acme announced split {aid}: 2 new ACME for 1, record height {record}")
    doc = wait_done(s, aid)
    s.check(doc["status"] == "completed" and doc["skipped"] == 0, f"split {aid}: {doc}")
    recorded = entitlements(s, aid)
    for account in ACCOUNTS:
        e = recorded.get(account)
        if e is None:
            continue
        after = s.balance(account, "ACME")
        s.check(e["new_quantity"] == 2 * e["quantity"], f"{account}: {e}")
        s.check(
            after[0] - shares0[account][0] == e["quantity"] and after[1] == shares0[account][1],
            f"{account} ACME {shares0[account]} -> {after}",
        )
    s.echo(
        f"at height {record} every position doubled: {doc['issued']:,} new ACME issued to {doc['holders']} holders"
    )


def entitlements(s: ScenarioRun, action_id: int) -> dict[str, dict[str, Any]]:
    """Every holder of record of the action, page by page."""
    out: dict[str, dict[str, Any]] = {}
    after = None
    while True:
        page = s.view(CA, "entitlements", id=action_id, after=after, limit=500)
        out.update((e["account"], e) for e in page["entitlements"])
        after = page["next"]
        if not after:
            return out
