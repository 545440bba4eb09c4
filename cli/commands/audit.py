"""``clearchain audit | export | report activity``: re-verify a whole history, write it out, and
report on it (docs/AUDIT.md).

The audit trusts only the genesis document it is given (``--genesis``): everything else, from
the node's API, a node's data directory or an export file, is checked (chain/audit.py).
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from chain.audit import AuditedBlock, AuditFailure, Auditor, Discrepancy
from chain.genesis import Genesis, load_genesis
from chain.history import HistoryError, Preamble
from cli.audit.history import ExportWriter, FileSource, HistorySource, source
from cli.audit.tally import AuditTally
from cli.client import default_node_url
from cli.commands.plumbing import node_url_callback

EXPORT_FORMATS = ("msgpack", "jsonl")


def _genesis_for(genesis_path: Path | None, home: Path | None) -> Path:
    """``--genesis``, else the genesis a node home's config names, else ./genesis.json."""
    if genesis_path is not None:
        return genesis_path
    if home is not None:
        from node.config import load_config

        return home / load_config(home).node.genesis
    return Path("genesis.json")


def source_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--home",
        type=click.Path(path_type=Path, exists=True, file_okay=False),
        default=None,
        help="A node's home folder (read through a snapshot; safe while it runs).",
    )(f)
    f = click.option(
        "--node",
        "node_url",
        default=None,
        callback=node_url_callback,
        metavar="URL",
        help="A node's API (default when no FILE or --home: $CLEARCHAIN_NODE, else node0 of .devnet/net).",
    )(f)
    return f


def _resolve(
    node_url: str | None, home: Path | None, path: Path | None
) -> tuple[str | None, Path | None, Path | None]:
    if node_url is None and home is None and path is None:
        node_url = default_node_url()
    return node_url, home, path


class AuditRun:
    """Drives an Auditor over a source, with a progress bar and the tallies that want blocks."""

    def __init__(self, genesis: Genesis, src: HistorySource) -> None:
        from contracts import default_registry

        self.src = src
        store = src.store()
        reference = (lambda h: store if h == src.head else None) if store is not None else None
        self.auditor = Auditor(genesis, default_registry(), reference=reference)
        if src.chain_id != genesis.chain_id:
            raise AuditFailure(
                Discrepancy(0, "chain_id", genesis.chain_id, f"{src.chain_id} ({src.describe})", "chain_id")
            )
        self.auditor.check_genesis(src.genesis_hash, src.describe)
        self.tally = AuditTally()
        self.end = src.head
        self.elapsed_s = 0.0
        self.cpu_s = 0.0

    def run(self, end: int, listeners: list[Callable[[AuditedBlock], None]], progress: bool) -> None:
        if isinstance(self.src, FileSource) and self.src.preamble.from_height != 1:
            raise HistoryError(
                "history_partial",
                f"the export starts at height {self.src.preamble.from_height}; an audit re-executes from genesis, so it needs an export from height 1",
            )
        started, cpu = time.perf_counter(), time.process_time()
        state = self.auditor.store
        bar = (
            click.progressbar(length=end, label="auditing", file=sys.stderr, show_pos=True, show_eta=True)
            if progress
            else None
        )
        try:
            for record in self.src.records(1, end):
                if record.height > end:
                    break
                audited = self.auditor.audit(record)
                self.tally.add(audited, state)
                for listen in listeners:
                    listen(audited)
                if bar is not None:
                    bar.update(1)
        finally:
            if bar is not None:
                bar.render_finish()
            self.elapsed_s = time.perf_counter() - started
            self.cpu_s = time.process_time() - cpu
        if self.auditor.height < end:
            h = self.auditor.height + 1
            raise AuditFailure(
                Discrepancy(
                    h,
                    "block",
                    f"records up to height {end}",
                    f"the history ends at height {self.auditor.height}",
                    "block_missing",
                )
            )
        store = self.src.store()
        if store is not None:
            self.auditor.compare_state(store)

    def summary(self) -> dict[str, Any]:
        doc = self.tally.to_json(self.auditor.store)
        head = self.auditor.ledger.head
        doc.update({
            "source": self.src.describe, "chain_id": self.auditor.chain_id, "genesis_hash": self.auditor.genesis_hash.hex(),
            "height": head.height, "block_hash": head.hash().hex(), "state_root": head.state_root.hex(),
            "elapsed_s": round(self.elapsed_s, 3), "cpu_s": round(self.cpu_s, 3),
            "blocks_per_s": round(self.tally.blocks / self.elapsed_s, 1) if self.elapsed_s else None,
            "txs_per_s": round(self.tally.txs / self.elapsed_s, 1) if self.elapsed_s else None,
        })  # fmt: skip
        return doc


def _summary_text(doc: dict[str, Any]) -> str:
    lines = [
        f"audit passed: {doc['source']}",
        f"chain {doc['chain_id']}, genesis {doc['genesis_hash']}",
        f"verified heights 1..{doc['height']}: every hash link, header, certificate and tx signature; every tx and task re-executed",
        f"head {doc['height']}: block {doc['block_hash']}, state root {doc['state_root']}",
        f"blocks {doc['blocks']}, txs {doc['txs']} ({doc['txs_failed']} failed), scheduled tasks {doc['tasks']}",
        f"trades settled {doc['trades_settled']}, failed {doc['trades_failed']}",
    ]
    if doc["assets"]:
        lines.append(f"{'asset':<12}{'settled':>22}{'deposited':>22}{'withdrawn':>22}")
        for asset, f in doc["assets"].items():
            lines.append(f"{asset:<12}{f['delivered']:>22}{f['deposited']:>22}{f['withdrawn']:>22}")
    lines.append(f"{'validator':<16}{'signed':>14}{'proposed':>10}  missed (first heights)")
    for v in doc["validators"]:
        lines.append(
            f"{v['name']:<16}{v['signed']:>7} of {v['in_set']:<4}{v['proposed']:>10}  {', '.join(map(str, v['missed_first'])) or '-'}"
        )
    if doc["elapsed_s"]:
        lines.append(
            f"took {doc['elapsed_s']:.2f} s ({doc['cpu_s']:.2f} CPU s): {doc['blocks_per_s']} blocks/s, {doc['txs_per_s']} txs/s"
        )
    return "\n".join(lines)


def _fail_report(exc: AuditFailure, as_json: bool, run: AuditRun | None) -> NoReturn:
    d = exc.discrepancy
    if as_json:
        doc = {
            "ok": False,
            "discrepancy": {
                "height": d.height,
                "field": d.field,
                "check": d.check,
                "expected": d.expected,
                "found": d.found,
                "notes": list(d.notes),
            },
        }
        if run is not None:
            doc["verified_to"] = run.auditor.height
        click.echo(json.dumps(doc, indent=2))
    else:
        click.echo(f"AUDIT FAILED at height {d.height}", err=True)
        click.echo(d.text(), err=True)
        if run is not None:
            click.echo(f"(heights 1..{run.auditor.height} verified before it)", err=True)
    sys.exit(2)


def _audited(
    path: Path | None, node_url: str | None, home: Path | None, genesis_path: Path | None, from_height: int,
    to_height: int | None, listeners: Callable[[AuditRun], list[Callable[[AuditedBlock], None]]], progress: bool,
    as_json: bool,
) -> AuditRun:  # fmt: skip
    """Audit a source from genesis up to ``to_height`` (its head by default); on a discrepancy,
    report it and exit 2. ``listeners`` gets the run, and returns what to call per block."""
    genesis = load_genesis(_genesis_for(genesis_path, home))
    node_url, home, path = _resolve(node_url, home, path)
    run: AuditRun | None = None
    try:
        with source(node_url, home, path) as src:
            run = AuditRun(genesis, src)
            run.end = src.head if to_height is None else min(to_height, src.head)
            if from_height > max(run.end, 1):  # a chain at genesis audits (trivially) from 1
                raise HistoryError("history_range", f"--from {from_height} is past height {run.end}")
            run.run(run.end, listeners(run), progress=progress)
    except AuditFailure as exc:
        _fail_report(exc, as_json, run)
    assert run is not None
    return run


@click.command("audit")
@click.argument("path", metavar="[FILE]", required=False, type=click.Path(path_type=Path, dir_okay=False))
@source_options
@click.option(
    "--genesis",
    "genesis_path",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="The genesis document to trust [default: the home's, else ./genesis.json].",
)
@click.option(
    "--to",
    "to_height",
    type=click.IntRange(1),
    default=None,
    help="Stop at this height [default: the source's head].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary (or the discrepancy) as JSON.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def audit(
    path: Path | None,
    node_url: str | None,
    home: Path | None,
    genesis_path: Path | None,
    to_height: int | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Re-verify a whole history from genesis: from an export FILE, a node (--node) or a node's
    data folder (--home). Exit 2 names the first discrepancy (height, field, expected, found)."""
    run = _audited(
        path, node_url, home, genesis_path, 1, to_height, lambda run: [], not quiet and not as_json, as_json
    )
    doc = run.summary()
    click.echo(json.dumps({"ok": True, **doc}, indent=2) if as_json else _summary_text(doc))


@click.command("export")
@source_options
@click.option("--from", "from_height", type=click.IntRange(1), default=1, show_default=True)
@click.option("--to", "to_height", type=click.IntRange(1), default=None, help="[default: the source's head]")
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="msgpack", show_default=True)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False, allow_dash=True),
    default=Path("-"),
    show_default=True,
    help="The file to write ('-': standard output).",
)
def export(
    node_url: str | None, home: Path | None, from_height: int, to_height: int | None, fmt: str, out: Path
) -> None:
    """Stream blocks with their certificates and receipts, exactly as stored, to a file that
    `clearchain audit FILE` reads back (docs/AUDIT.md)."""
    node_url, home, _ = _resolve(node_url, home, None)
    with source(node_url, home, None) as src:
        end = src.head if to_height is None else min(to_height, src.head)
        if from_height > end + 1:
            raise HistoryError("history_range", f"--from {from_height} is past the source's head {src.head}")
        src.check_held(from_height)
        with click.open_file(str(out), "wb") as stream:
            writer = ExportWriter(stream, fmt, Preamble(src.chain_id, src.genesis_hash, from_height, end))
            for record in src.records(from_height, end):
                writer.record(record)
            writer.finish()
    if str(out) != "-":
        click.echo(
            f"exported heights {from_height}..{end} ({writer.count} blocks, {fmt}) from {src.describe} to {out}",
            err=True,
        )


@click.group("report")
def report() -> None:
    """Reports over verified history."""


@report.command("activity")
@click.argument("path", metavar="[FILE]", required=False, type=click.Path(path_type=Path, dir_okay=False))
@source_options
@click.option("--genesis", "genesis_path", type=click.Path(path_type=Path, dir_okay=False), default=None)
@click.option("--from", "from_height", type=click.IntRange(1), default=1, show_default=True)
@click.option("--to", "to_height", type=click.IntRange(1), default=None, help="[default: the source's head]")
@click.option("--member", default=None, help="Only this clearing member.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def report_activity(
    path: Path | None,
    node_url: str | None,
    home: Path | None,
    genesis_path: Path | None,
    from_height: int,
    to_height: int | None,
    member: str | None,
    fmt: str,
) -> None:
    """Each clearing member's trades, settlements and fails over a height range. The history is
    audited from genesis on the way, so every figure is re-computed, not taken on trust."""
    from cli.audit.activity import ActivityReport

    reports: list[ActivityReport] = []

    def listeners(run: AuditRun) -> list[Callable[[AuditedBlock], None]]:
        reports.append(ActivityReport(from_height, run.end))
        return [lambda audited: reports[0].add(audited, run.auditor.store)]

    _audited(
        path, node_url, home, genesis_path, from_height, to_height, listeners, fmt == "table", fmt == "json"
    )
    rep = reports[0]
    if member is not None:
        rep.members = {k: v for k, v in rep.members.items() if k == member}
    if fmt == "json":
        click.echo(json.dumps(rep.to_json(), indent=2))
    elif fmt == "csv":
        click.echo(rep.to_csv(), nl=False)
    else:
        click.echo(rep.to_table())


def register(main: click.Group) -> None:
    for command in (audit, export, report):
        main.add_command(command)
