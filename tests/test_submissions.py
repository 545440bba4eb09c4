"""The submission journal (cli/submissions.py) and retrying ``trade submit`` / ``trade import``.

Unit tests of the journal's pure operations and its file (atomic, bounded, a corrupt file is a
warning); a property: any sequence of intents and resolutions keeps at most one unresolved id per
digest and the bounds; and end to end against one in-process node: a submit whose commit wait
times out, run again, settles exactly one trade.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given
from hypothesis import strategies as st

from chain.errors import ClearchainError
from cli import submissions
from cli.commands.plumbing import CliError
from cli.commands.session import Session
from cli.localnet.network import init_network
from cli.main import main
from cli.submissions import (
    Intent,
    Journal,
    compute_ticket_digest,
    find_unresolved,
    has_no_outcome,
    record_intent,
    resolve,
)
from node.config import ConsensusSection
from tests.netutil import NodeThread


# --- the journal (pure) -----------------------------------------------------------------------
def test_digest_names_the_ticket() -> None:
    base = ("chain", "X", "A", "B", "ACME", "10", "182.50", 0)
    assert compute_ticket_digest(*base) == compute_ticket_digest(*base)
    for i, other in enumerate(("chain2", "Y", "A2", "B2", "GLOBEX", "11", "182.51", 1)):
        changed = list(base)
        changed[i] = other
        assert compute_ticket_digest(*changed) != compute_ticket_digest(*base)  # type: ignore[arg-type]


def test_record_resolve_reuse() -> None:
    entries, displaced = record_intent([], "T-1", "d1")
    assert find_unresolved(entries, "d1") == Intent("T-1", "d1") and not displaced
    entries, displaced = record_intent(entries, "T-1", "d1")  # a retry of the same id
    assert entries == [Intent("T-1", "d1")] and not displaced
    entries, displaced = record_intent(entries, "T-2", "d1")  # a new --trade-id for the same ticket
    assert displaced == [Intent("T-1", "d1")] and find_unresolved(entries, "d1") == Intent("T-2", "d1")
    entries = resolve(entries, "T-2", "settled")
    assert find_unresolved(entries, "d1") is None and entries == [Intent("T-2", "d1", "settled")]


def test_no_outcome_codes() -> None:
    assert has_no_outcome(CliError("commit_timeout", "pending"))
    assert has_no_outcome(CliError("node_unreachable", "down"))
    assert not has_no_outcome(CliError("insufficient_cash", "no"))
    assert not has_no_outcome(CliError("nonce_replayed", "refused"))


ops = st.lists(
    st.tuples(st.sampled_from(["record", "resolve"]), st.sampled_from([f"T-{i}" for i in range(8)]),
              st.sampled_from(["d0", "d1", "d2"])),
    max_size=60,
)  # fmt: skip


@given(ops, st.integers(1, 4), st.integers(1, 4))
def test_journal_invariants(
    monkeypatch_ops: list[tuple[str, str, str]], resolved_max: int, unresolved_max: int
) -> None:
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(submissions, "RESOLVED_KEPT_MAX", resolved_max)
        mp.setattr(submissions, "UNRESOLVED_MAX", unresolved_max)
        entries: list[Intent] = []
        for op, trade_id, digest in monkeypatch_ops:
            if op == "record":
                entries, _ = record_intent(entries, trade_id, digest)
                assert find_unresolved(entries, digest) == Intent(trade_id, digest)
            else:
                entries = resolve(entries, trade_id, "settled")
                assert all(e.resolved for e in entries if e.trade_id == trade_id)
            unresolved = [e for e in entries if not e.resolved]
            assert len({e.digest for e in unresolved}) == len(unresolved)  # one id per digest
            assert len({e.trade_id for e in entries}) == len(entries)  # one entry per id
            assert len(unresolved) <= unresolved_max
            assert len(entries) - len(unresolved) <= resolved_max


# --- the journal's file -----------------------------------------------------------------------
def test_file_round_trip_and_atomic_write(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "keys" / "submissions.json")
    journal.record("T-1", "d1")
    journal.record("T-2", "d2")
    journal.resolve("T-1", "settled")
    again = Journal(journal.path)
    assert again.unresolved("d2") == Intent("T-2", "d2") and again.unresolved("d1") is None
    assert again.entry("T-1") == Intent("T-1", "d1", "settled")
    doc = json.loads(journal.path.read_text())
    assert doc["version"] == 1 and [e["trade_id"] for e in doc["entries"]] == ["T-2", "T-1"]
    leftovers = [p.name for p in journal.path.parent.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == [] and journal.warnings == [] and again.warnings == []


@pytest.mark.parametrize("text", ["{not json", '{"version": 9}', '{"version": 1, "entries": [3]}', "\xff"])
def test_a_corrupt_file_is_a_warning(tmp_path: Path, text: str) -> None:
    path = tmp_path / "submissions.json"
    path.write_bytes(text.encode("latin-1"))
    journal = Journal(path)
    assert journal.unresolved("d1") is None
    assert len(journal.warnings) == 1 and "corrupt" in journal.warnings[0]
    assert (tmp_path / "submissions.json.corrupt").exists()
    journal.record("T-1", "d1")  # and it works again
    assert Journal(path).unresolved("d1") == Intent("T-1", "d1")


def test_journal_location(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(submissions.HOME_ENV, raising=False)
    assert submissions.journal_path(tmp_path) == tmp_path / "submissions.json"
    monkeypatch.setenv(submissions.HOME_ENV, str(tmp_path / "home"))
    assert submissions.journal_path(tmp_path) == tmp_path / "home" / "submissions.json"


# --- end to end: a submit that timed out, run again ------------------------------------------
class Cli:
    def __init__(self, directory: Path, url: str) -> None:
        self.keys = directory / "keys"
        self.url = url

    def run(self, command: str) -> Result:
        args = [*shlex.split(command), "--node", self.url, "--keys-dir", str(self.keys)]
        return CliRunner().invoke(main, args)

    def json(self, command: str) -> Any:
        result = self.run(command + " --json")
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    def available(self, account: str, asset: str) -> int:
        doc = self.json(f"account show {account}")
        return next((b["available"] for b in doc["balances"] if b["asset"] == asset), 0)


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cli]:
    directory = tmp_path_factory.mktemp("retries") / "net"
    init_network(directory, validators=1, base_port=0, consensus=ConsensusSection(commit_wait_ms=10))
    node = NodeThread(directory / "node0")
    node.start()
    try:
        yield Cli(directory, node.url)
    finally:
        node.stop()


def timed_out_send(post: bool) -> Any:
    """A ``Session.send`` whose wait for the commit times out: the transaction is sent (and
    committed) when ``post``, lost on the way otherwise."""
    real_send = Session.send

    def send(self: Session, stx: Any, wait_ms: int = 0) -> dict[str, Any]:
        if post:
            real_send(self, stx)
        raise CliError("commit_timeout", f"tx {stx.hash.hex()} is still pending")

    return send


SUBMIT = "trade submit --buyer A-C001 --seller B-C001 --instrument ACME --qty {qty} --price 182.50"


@pytest.mark.io
@pytest.mark.parametrize(("post", "qty"), [(True, 3), (False, 4)])
def test_a_timed_out_submit_run_again_settles_once(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, post: bool, qty: int
) -> None:
    monkeypatch.setenv(submissions.HOME_ENV, str(tmp_path))
    before = cli.available("A-C001", "ACME")
    with monkeypatch.context() as mp:
        mp.setattr(Session, "send", timed_out_send(post))
        first = cli.run(SUBMIT.format(qty=qty))
    assert first.exit_code == 1, first.output
    trade_id = first.stderr.split("submitting trade ")[1].split()[0]
    assert f"(retry with --trade-id {trade_id} to be safe)" in first.stderr
    assert f"error: commit_timeout: trade {trade_id}:" in first.stderr
    assert "outcome is not known" in first.stderr
    again = cli.run(SUBMIT.format(qty=qty))
    assert again.exit_code == 0, again.output
    assert f"retrying {trade_id} from an earlier submission with no known outcome" in again.stderr
    if post:
        assert again.stdout.startswith(f"already settled {trade_id} at height")
    else:
        assert again.stdout.startswith(f"settled {trade_id}: A-C001 buys {qty} ACME")
    assert cli.available("A-C001", "ACME") == before + qty  # exactly one trade settled
    assert cli.json(f"trade status {trade_id}")["status"] == "settled"
    entry = Journal(tmp_path / "submissions.json").entry(trade_id)
    assert entry is not None and entry.outcome == "settled"
    third = cli.run(SUBMIT.format(qty=qty))  # the outcome is known: a new trade, on purpose
    assert third.exit_code == 0 and "retrying" not in third.stderr and trade_id not in third.stdout
    assert cli.available("A-C001", "ACME") == before + 2 * qty


# --- end to end: trade import, interrupted and run again --------------------------------------
IMPORT_CSV = "trade_id,buyer,seller,instrument,quantity,price\n" + "".join(
    f"RIMP-{i},A-C001,B-C001,ACME,1,182.50\n" for i in range(1, 7)
)


def read_report(path: Path) -> list[list[str]]:
    return [line.split(",") for line in path.read_text().splitlines()[1:]]


@pytest.mark.io
def test_an_interrupted_import_lists_its_lines_and_settles_the_rest_once(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(IMPORT_CSV)
    before = cli.available("A-C001", "ACME")
    real_wait = Session.wait_committed
    waited: list[str] = []

    def wait_then_time_out(self: Session, tx_hash: str, wait_ms: int = 0) -> dict[str, Any]:
        waited.append(tx_hash)
        if len(waited) > 1:  # the first batch commits; the reply of the second is lost
            raise CliError("commit_timeout", f"tx {tx_hash} is still pending")
        return real_wait(self, tx_hash)

    with monkeypatch.context() as mp:
        mp.setattr(Session, "wait_committed", wait_then_time_out)
        first = cli.run(f"trade import {path} --batch-size 2 --in-flight 1")
    assert first.exit_code == 1 and "error: commit_timeout: import stopped after 2 of 6" in first.stderr
    report = tmp_path / "trades.report.csv"
    assert f"{report} lists the lines of no outcome" in first.stderr
    assert read_report(report) == [
        ["2", "RIMP-1", "settled", ""],
        ["3", "RIMP-2", "settled", ""],
        *([str(i + 1), f"RIMP-{i}", "no_outcome", ""] for i in range(3, 7)),
    ]
    again = cli.run(f"trade import {path} --batch-size 2 --report {tmp_path / 'again.csv'}")
    assert again.exit_code == 0, again.output
    outcomes = [row[2] for row in read_report(tmp_path / "again.csv")]
    # RIMP-3 and -4 were sent before the lost reply and settled then; -5 and -6 settle now.
    assert outcomes == ["already_settled"] * 4 + ["settled"] * 2
    assert "already settled 4" in again.stdout and "failed   0" in again.stdout
    assert cli.available("A-C001", "ACME") == before + 6  # each trade settled exactly once


@pytest.mark.io
def test_import_takes_a_fresh_nonce_when_another_signer_used_it(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "trades.csv"
    path.write_text(IMPORT_CSV.replace("RIMP-", "NIMP-"))
    real_signer = Session.signer

    def stale_signer(self: Session, participant: str) -> Any:
        signer = real_signer(self, participant)
        signer.next_nonce -= 1  # as if another import had just committed a transaction
        return signer

    real_post = Session.post_async
    refused: list[str] = []

    def post(self: Session, stx: Any) -> str:
        try:
            return real_post(self, stx)
        except ClearchainError as exc:
            refused.append(exc.code)
            raise

    assert cli.run(SUBMIT.format(qty=1) + " --trade-id NIMP-0").exit_code == 0  # a nonce to replay
    monkeypatch.setattr(Session, "signer", stale_signer)
    monkeypatch.setattr(Session, "post_async", post)
    summary = cli.json(f"trade import {path} --batch-size 2")
    assert refused == ["nonce_replayed"]  # the first batch, then signed again with a fresh nonce
    assert (summary["settled"], summary["failed"], summary["no_outcome"]) == (6, 0, 0)
