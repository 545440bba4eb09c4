"""The per-member activity report: over a height range, each clearing member's trades, how many
settled and how many failed (and why), and the securities and cash that moved for it.

A trade counts for every member that owns its buyer or its seller account (once per member, so
a trade between two of one member's accounts is one trade for it). Figures come from verified,
re-executed blocks (the report runs the auditor from genesis), never from a node's word.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from typing import Any

from chain.audit import AuditedBlock
from chain.display import format_amount
from chain.state import StateReader
from chain.tx import SignedTx
from contracts.accounts import account_in
from contracts.instruments import instrument_in

UNKNOWN = "(unknown account)"


@dataclass
class MemberActivity:
    member: str
    trades: int = 0
    settled: int = 0
    failed: int = 0
    fail_codes: dict[str, int] = field(default_factory=dict)
    bought: dict[str, int] = field(default_factory=dict)  # instrument -> quantity received
    sold: dict[str, int] = field(default_factory=dict)  # instrument -> quantity delivered
    paid: dict[str, int] = field(default_factory=dict)  # currency -> consideration paid
    received: dict[str, int] = field(default_factory=dict)  # currency -> consideration received


class ActivityReport:
    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.members: dict[str, MemberActivity] = {}
        self._decimals: dict[str, int] = {}

    def add(self, audited: AuditedBlock, state: StateReader) -> None:
        if not self.start <= audited.block.height <= self.end:
            return
        for stx, receipt in zip(audited.block.txs, audited.receipts, strict=False):
            if stx.tx.contract != "settlement":
                continue
            tickets = _tickets(stx)
            if not receipt.ok:
                for ticket in tickets.values():
                    self._failed(ticket, receipt.code, state)
                continue
            for contract, name, fields in receipt.events:
                f = dict(fields)
                if contract == "settlement" and name == "trade_settled":
                    self._settled(f, state)
                elif contract == "settlement" and name == "trade_failed" and f["trade_id"] in tickets:
                    self._failed(tickets[f["trade_id"]], f["code"], state)

    # --- tallies ----------------------------------------------------------------------------
    def _owners(self, buyer: str, seller: str, state: StateReader) -> tuple[str, str]:
        return _owner(buyer, state), _owner(seller, state)

    def _touch(self, members: set[str]) -> list[MemberActivity]:
        rows = [self.members.setdefault(m, MemberActivity(m)) for m in sorted(members)]
        for row in rows:
            row.trades += 1
        return rows

    def _settled(self, f: dict[str, Any], state: StateReader) -> None:
        buyer, seller = self._owners(f["buyer"], f["seller"], state)
        for row in self._touch({buyer, seller}):
            row.settled += 1
        instrument, quantity, cash = f["instrument"], f["quantity"], f["consideration"]
        currency = _currency(instrument, state) or "?"
        self._note(instrument, state)
        self._note(currency, state)
        b, s = self.members[buyer], self.members[seller]
        b.bought[instrument] = b.bought.get(instrument, 0) + quantity
        s.sold[instrument] = s.sold.get(instrument, 0) + quantity
        b.paid[currency] = b.paid.get(currency, 0) + cash
        s.received[currency] = s.received.get(currency, 0) + cash

    def _failed(self, ticket: tuple[Any, ...], code: str, state: StateReader) -> None:
        members = {_owner(ticket[1], state), _owner(ticket[2], state)}
        for row in self._touch(members):
            row.failed += 1
            row.fail_codes[code] = row.fail_codes.get(code, 0) + 1

    def _note(self, asset: str, state: StateReader) -> None:
        if asset not in self._decimals:
            record = instrument_in(state, asset)
            self._decimals[asset] = 0 if record is None else record.decimals

    # --- output -----------------------------------------------------------------------------
    def amounts(self, values: dict[str, int]) -> dict[str, str]:
        return {a: format_amount(v, self._decimals.get(a, 0)) for a, v in sorted(values.items())}

    def rows(self) -> list[dict[str, Any]]:
        return [
            {
                "member": m.member,
                "trades": m.trades,
                "settled": m.settled,
                "failed": m.failed,
                "fail_codes": dict(sorted(m.fail_codes.items())),
                "bought": self.amounts(m.bought),
                "sold": self.amounts(m.sold),
                "paid": self.amounts(m.paid),
                "received": self.amounts(m.received),
            }  # fmt: skip
            for m in sorted(self.members.values(), key=lambda r: r.member)
        ]

    def to_json(self) -> dict[str, Any]:
        return {"from_height": self.start, "to_height": self.end, "members": self.rows()}

    def to_csv(self) -> str:
        out = io.StringIO()
        w = csv.writer(out, lineterminator="\n")
        w.writerow(
            ["member", "trades", "settled", "failed", "fail_codes", "bought", "sold", "paid", "received"]
        )
        flat = lambda d: ";".join(f"{k}:{v}" for k, v in d.items())  # noqa: E731
        for r in self.rows():
            w.writerow([r["member"], r["trades"], r["settled"], r["failed"], flat(r["fail_codes"]),
                        flat(r["bought"]), flat(r["sold"]), flat(r["paid"]), flat(r["received"])])  # fmt: skip
        return out.getvalue()

    def to_table(self) -> str:
        lines = [f"member activity, heights {self.start} to {self.end}"]
        lines.append(f"{'member':<20}{'trades':>8}{'settled':>9}{'failed':>8}  paid / received")
        flat = lambda d: ", ".join(f"{v} {k}" for k, v in d.items()) or "-"  # noqa: E731
        for r in self.rows():
            lines.append(
                f"{r['member']:<20}{r['trades']:>8}{r['settled']:>9}{r['failed']:>8}  {flat(r['paid'])} / {flat(r['received'])}"
            )
            if r["fail_codes"]:
                lines.append(f"{'':<20}fails: " + ", ".join(f"{k} {v}" for k, v in r["fail_codes"].items()))
        if not self.members:
            lines.append("(no settlement activity in this range)")
        return "\n".join(lines)


def _tickets(stx: SignedTx) -> dict[str, tuple[Any, ...]]:
    """The trade tickets a settlement transaction carries: by trade id for a batch."""
    args = stx.tx.args
    if stx.tx.method == "settle" and len(args) == 7:
        return {args[0]: tuple(args)}
    if stx.tx.method == "settle_batch" and args and isinstance(args[0], list):
        return {t[0]: tuple(t) for t in args[0] if isinstance(t, list) and len(t) == 7}
    return {}


def _owner(account: Any, state: StateReader) -> str:
    if not isinstance(account, str):
        return UNKNOWN
    record = account_in(state, account)
    return UNKNOWN if record is None else record.owner


def _currency(instrument: str, state: StateReader) -> str | None:
    record = instrument_in(state, instrument)
    return None if record is None else record.currency
