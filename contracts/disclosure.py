"""Issuer disclosures: issuers owe periodic filings per instrument; a missed deadline halts the
instrument (contracts/breakers.py) and slashes the issuer's bond (contracts/bonds.py).

**Issuer registry.** An admin names the issuer of a listed security (a participant with the
``issuer`` role). Corporate actions (contracts/corporate_actions.py) read it (``issuer_of``) to
know who may announce a dividend or split of an instrument.

**Obligations.** An admin obliges an instrument's issuer to file at least every
``period_blocks`` blocks, with ``grace_blocks`` of grace: the next filing is *due* at height
``due`` and *overdue* if none is filed by the end of block ``deadline = due + grace``. Obliging
sets ``due = height + period``; each filing (at height f) moves it to ``due = f + period`` (a
rolling maximum interval between filings, so filing early never shortens the next interval).
A task at each deadline checks: if nothing was filed, the disclosure is overdue: the instrument
halts (``breakers.halt(..., "disclosure_overdue")``), the issuer's bond is slashed
(``bonds.slash(issuer, "missed_disclosure", "<instrument>@<deadline>")``) and the next deadline
is one period later (each further period without a filing is another missed deadline). A late
filing clears the overdue state and restarts the period; it does **not** resume the instrument:
putting it back to trading stays a decision of governance (or an admin, ``instruments.resume``),
who can read the filing first (the chain only holds its hash). A filing after a deadline whose
check has not run yet (a task backlog) first counts the miss, so outcomes do not depend on when
tasks run. The registered issuer may also file without an obligation (an ad-hoc disclosure). A
document hash is filed once, so a filing cannot be replayed to move a deadline.

State::

    disclosure/issuer/<instrument>      -> issuer participant id
    disclosure/obligation/<instrument>  -> [period, grace, due, overdue, missed, generation]
    disclosure/obligation_seq           -> last generation used (a replaced or released
                                           obligation's pending task sees a different one)
    disclosure/filing/<instrument>/<seq, 20 digits> -> [document_hash, reference, height, issuer]
    disclosure/filing_seq/<instrument>  -> filings made for the instrument
    disclosure/document/<hash hex>      -> [instrument, seq]

Methods (who): ``register_issuer(instrument, issuer)`` admin; ``obligate(instrument,
period_blocks, grace_blocks)`` admin (replaces an existing obligation); ``release(instrument)``
admin; ``file(instrument, document_hash, reference)`` the registered issuer.
Task: ``check_deadline([instrument, generation])``. Events: ``issuer_registered``,
``disclosure_obligated``, ``disclosure_released``, ``disclosure_filed`` (with ``cured`` true for a
late filing), ``disclosure_overdue`` (instrument, issuer, due, deadline, missed, slashed).
Failure codes: ``not_admin``, ``unknown_instrument``, ``instrument_is_cash``, ``not_issuer``,
``no_issuer``, ``no_obligation``, ``duplicate_document``.

No parameters (period and grace are set per obligation) and no rounding: nothing here moves
money; what a finding slashes is the bonds contract's rule.
"""

from __future__ import annotations

from typing import Any

from contracts import breakers
from contracts.api import Context, Contract, ContractError, method, required_query, task, view
from contracts.instruments import get_instrument
from contracts.membership import has_role, require_role
from contracts.schema import Bytes, Id, Int, Text

NAME = "disclosure"
OVERDUE_REASON = "disclosure_overdue"
SLASH_REASON = "missed_disclosure"
PERIOD_BLOCKS_MAX = 100_000_000  # about three years of 1 s blocks
GRACE_BLOCKS_MAX = 10_000_000
REFERENCE_CHARS_MAX = 256
DOCUMENT_HASH_BYTES = 32
FILINGS_PAGE_MAX = 100


def issuer_of(ctx: Context, iid: str) -> str | None:
    """The participant registered as ``iid``'s issuer, or None."""
    found = ctx.view(NAME).get("issuer/" + iid)
    return None if found is None else str(found)


def get_obligation(ctx: Context, iid: str) -> dict[str, Any] | None:
    """``iid``'s filing obligation (period, grace, due, deadline, overdue, missed), or None."""
    found = ctx.view(NAME).get("obligation/" + iid)
    if found is None:
        return None
    period, grace, due, overdue, missed, generation = found
    return {
        "period_blocks": period,
        "grace_blocks": grace,
        "due": due,
        "deadline": due + grace,
        "overdue": overdue,
        "missed": missed,
        "generation": generation,
    }


def is_overdue(ctx: Context, iid: str) -> bool:
    """True if ``iid``'s issuer has an overdue disclosure: a deadline passed without a filing
    (also in the block after the deadline, before its task has run)."""
    ob = get_obligation(ctx, iid)
    return ob is not None and (bool(ob["overdue"]) or ctx.height > ob["deadline"])


def compute_due(height: int, period_blocks: int) -> int:
    """The height by which the next filing is due, ``period_blocks`` after ``height``."""
    return height + period_blocks


def _put_obligation(
    ctx: Context, iid: str, period: int, grace: int, due: int, overdue: bool, missed: int, generation: int
) -> None:
    ctx.view(NAME).put("obligation/" + iid, [period, grace, due, overdue, missed, generation])


def _schedule_check(ctx: Context, iid: str, deadline: int, generation: int) -> None:
    ctx.view(NAME).schedule("check_deadline", [iid, generation], at_height=deadline)


def _mark_overdue(ctx: Context, iid: str, ob: dict[str, Any]) -> dict[str, Any]:
    """A deadline passed without a filing: mark it overdue with the next due a period later,
    halt the instrument and slash the issuer's bond. Returns the updated obligation."""
    from contracts import bonds  # at call time: bonds may read this module's registry

    issuer = issuer_of(ctx, iid) or ""
    missed = ob["missed"] + 1
    next_due = ob["due"] + ob["period_blocks"]
    _put_obligation(
        ctx, iid, ob["period_blocks"], ob["grace_blocks"], next_due, True, missed, ob["generation"]
    )
    breakers.halt(ctx, iid, OVERDUE_REASON)
    slashed = bonds.slash(ctx, issuer, SLASH_REASON, f"{iid}@{ob['deadline']}") if issuer else 0
    ctx.view(NAME).emit(
        "disclosure_overdue",
        instrument=iid,
        issuer=issuer,
        due=ob["due"],
        deadline=ob["deadline"],
        missed=missed,
        slashed=slashed,
    )
    updated = get_obligation(ctx, iid)
    assert updated is not None
    return updated


def _require_security(ctx: Context, iid: str) -> None:
    ins = get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    ctx.require(ins.currency is not None, "instrument_is_cash", f"{iid} is cash")


def _filing(ctx: Context, iid: str, seq: int) -> dict[str, Any] | None:
    found = ctx.view(NAME).get(f"filing/{iid}/{seq:020d}")
    if found is None:
        return None
    document_hash, reference, height, issuer = found
    return {
        "seq": seq,
        "document_hash": bytes(document_hash).hex(),
        "reference": reference,
        "height": height,
        "issuer": issuer,
    }


class Disclosure(Contract):
    name = NAME

    @method(("instrument", Id()), ("issuer", Id()))
    def register_issuer(self, ctx: Context, iid: str, issuer: str) -> None:
        """An admin names the issuer of a listed security (it must hold the issuer role)."""
        require_role(ctx, "admin")
        _require_security(ctx, iid)
        ctx.require(has_role(ctx, issuer, "issuer"), "not_issuer", f"{issuer} does not hold the issuer role")
        ctx.put("issuer/" + iid, issuer)
        ctx.emit("issuer_registered", instrument=iid, issuer=issuer)

    @method(
        ("instrument", Id()),
        ("period_blocks", Int(1, PERIOD_BLOCKS_MAX)),
        ("grace_blocks", Int(0, GRACE_BLOCKS_MAX)),
    )
    def obligate(self, ctx: Context, iid: str, period: int, grace: int) -> None:
        """An admin obliges the instrument's issuer to file every ``period`` blocks (+ grace);
        the first filing is due ``period`` blocks from now. Replaces an existing obligation."""
        require_role(ctx, "admin")
        _require_security(ctx, iid)
        ctx.require(issuer_of(ctx, iid) is not None, "no_issuer", f"{iid} has no registered issuer")
        generation = (ctx.get("obligation_seq") or 0) + 1
        ctx.put("obligation_seq", generation)
        due = compute_due(ctx.height, period)
        _put_obligation(ctx, iid, period, grace, due, False, 0, generation)
        _schedule_check(ctx, iid, due + grace, generation)
        ctx.emit(
            "disclosure_obligated",
            instrument=iid,
            period_blocks=period,
            grace_blocks=grace,
            due=due,
            deadline=due + grace,
        )

    @method(("instrument", Id()))
    def release(self, ctx: Context, iid: str) -> None:
        """An admin ends the instrument's filing obligation (its pending check then does nothing)."""
        require_role(ctx, "admin")
        ctx.require(
            ctx.get("obligation/" + iid) is not None, "no_obligation", f"{iid} has no filing obligation"
        )
        ctx.delete("obligation/" + iid)
        ctx.emit("disclosure_released", instrument=iid)

    @method(
        ("instrument", Id()),
        ("document_hash", Bytes(DOCUMENT_HASH_BYTES)),
        ("reference", Text(REFERENCE_CHARS_MAX)),
    )
    def file(self, ctx: Context, iid: str, document_hash: bytes, reference: str) -> None:
        """The registered issuer files a disclosure (its document's SHA-256 and a reference);
        this moves the next due height and clears an overdue state."""
        _require_security(ctx, iid)
        issuer = issuer_of(ctx, iid)
        ctx.require(issuer is not None, "no_issuer", f"{iid} has no registered issuer")
        ctx.require(
            ctx.sender == issuer, "not_issuer", f"{ctx.sender} is not the issuer of {iid} ({issuer} is)"
        )
        doc_key = "document/" + document_hash.hex()
        previous = ctx.get(doc_key)
        ctx.require(
            previous is None,
            "duplicate_document",
            f"this document was filed before (as {previous and previous[0]} #{previous and previous[1]})",
        )
        seq = (ctx.get("filing_seq/" + iid) or 0) + 1
        ctx.put("filing_seq/" + iid, seq)
        ctx.put(f"filing/{iid}/{seq:020d}", [document_hash, reference, ctx.height, ctx.sender])
        ctx.put(doc_key, [iid, seq])
        due, cured = self._on_filing(ctx, iid)
        ctx.emit(
            "disclosure_filed",
            instrument=iid,
            issuer=ctx.sender,
            seq=seq,
            document_hash=document_hash,
            reference=reference,
            next_due=due,
            cured=cured,
        )

    @staticmethod
    def _on_filing(ctx: Context, iid: str) -> tuple[int | None, bool]:
        """Move the obligation's due height; returns (next due, whether it was overdue). A
        filing after a deadline whose check has not run yet (a task backlog) first counts the
        miss, so the outcome does not depend on when the check runs. The pending check stays
        scheduled and, finding a later deadline, reschedules itself."""
        ob = get_obligation(ctx, iid)
        if ob is None:
            return None, False
        if not ob["overdue"] and ctx.height > ob["deadline"]:
            ob = _mark_overdue(ctx, iid, ob)
        due = compute_due(ctx.height, ob["period_blocks"])
        _put_obligation(
            ctx, iid, ob["period_blocks"], ob["grace_blocks"], due, False, ob["missed"], ob["generation"]
        )
        return due, bool(ob["overdue"])

    @task
    def check_deadline(self, ctx: Context, payload: Any) -> None:
        """At a deadline: if no filing came, the disclosure is overdue (halt, slash, event) and
        the next check is a period later; if a filing moved the deadline, check again then."""
        iid, generation = payload
        ob = get_obligation(ctx, iid)
        if ob is None or ob["generation"] != generation:
            return  # released or replaced: this check belongs to an obligation that is gone
        if ctx.height < ob["deadline"]:
            _schedule_check(ctx, iid, ob["deadline"], generation)
            return
        ob = _mark_overdue(ctx, iid, ob)
        _schedule_check(ctx, iid, max(ob["deadline"], ctx.height + 1), generation)

    @view
    def status(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?instrument=ID``: its issuer, obligation, whether it is overdue, the latest filing."""
        iid = required_query(query, "instrument")
        ins = get_instrument(ctx, iid)
        if ins is None:
            raise ContractError("unknown_instrument", f"no instrument {iid!r}")
        count = ctx.get("filing_seq/" + iid) or 0
        ob = get_obligation(ctx, iid)
        if ob is not None:
            del ob["generation"]
        return {
            "instrument": iid,
            "instrument_status": ins.status,
            "issuer": issuer_of(ctx, iid),
            "obligation": ob,
            "overdue": is_overdue(ctx, iid),
            "filings": count,
            "last_filing": _filing(ctx, iid, count) if count else None,
        }

    @view
    def filings(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?instrument=ID&after=SEQ&limit=N``: filings in order, a page of at most 100."""
        iid = required_query(query, "instrument")
        if get_instrument(ctx, iid) is None:
            raise ContractError("unknown_instrument", f"no instrument {iid!r}")
        try:
            after = int(query.get("after", "0"))
            limit = int(query.get("limit", str(FILINGS_PAGE_MAX)))
        except ValueError:
            raise ContractError("bad_query", "after and limit must be integers") from None
        if not 1 <= limit <= FILINGS_PAGE_MAX or not 0 <= after < 10**20:
            raise ContractError("bad_query", f"limit must be 1..{FILINGS_PAGE_MAX}, after 0 or more")
        count = ctx.get("filing_seq/" + iid) or 0
        rows = [
            f
            for seq in range(after + 1, min(count, after + limit) + 1)
            if (f := _filing(ctx, iid, seq)) is not None
        ]
        return {
            "instrument": iid,
            "filings": rows,
            "next": rows[-1]["seq"] if rows and rows[-1]["seq"] < count else None,
        }
