"""Where history comes from and goes to: a node's API, a node's data directory, an export file.

Every source yields ``HistoryRecord``s (chain/history.py) in height order together with the
genesis hash and chain id it claims, so the auditor and the exporter do not care which it is.

- ``NodeSource``: pages of ``GET /history``.
- ``HomeSource``: a node's ``<home>/db`` read through a private snapshot. LevelDB lets one
  process open a database, and opening it writes (a new log and manifest), so the auditor never
  opens the node's files: it hard-links the immutable table files (copying when it cannot link)
  and copies the manifest, logs and ``CURRENT`` into a temporary folder, then opens that. Table
  files are immutable and a write batch is one log record, so the snapshot holds a consistent
  prefix of the node's batches; if a compaction removes a file mid-copy the snapshot fails to
  open and is taken again. This is safe while the node runs, and the node's folder is only read.
- ``FileSource``: an export in msgpack frames or JSON lines, told apart by its first byte.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from chain.block_pruning import blocks_pruned_below
from chain.errors import ClearchainError, StoreError
from chain.history import (
    FORMAT_NAME,
    RECORD_BYTES_MAX,
    HistoryError,
    HistoryPage,
    HistoryRecord,
    Preamble,
    check_trailer,
    decode_frame_body,
    encode_frame,
    is_trailer,
)
from chain.store import Store
from cli.client import Client

SNAPSHOT_ATTEMPTS = 5
JSON_LINE_CHARS_MAX = 3 * RECORD_BYTES_MAX  # hex doubles the bytes, plus the JSON around them


@dataclass
class HistorySource:
    """What every source tells: its chain, its genesis hash, how far it goes, and the records."""

    chain_id: str
    genesis_hash: bytes
    head: int
    describe: str
    _cleanup: list[Any] = field(default_factory=list)
    # The lowest height >= 1 the source holds: a node with storage.keep_blocks drops older ones.
    pruned_below: int = 1

    def records(self, start: int, end: int) -> Iterator[HistoryRecord]:
        raise NotImplementedError

    def check_held(self, start: int) -> None:
        """Raise ``height_pruned`` if the source dropped ``start`` (one line, before any output)."""
        if start < self.pruned_below:
            raise HistoryError(
                "height_pruned",
                f"{self.describe} keeps blocks from height {self.pruned_below} only (storage.keep_blocks); "
                f"read heights {start}..{self.pruned_below - 1} from a node that keeps history",
            )

    def store(self) -> Store | None:
        """The source's own store, when it has one (a node's data directory)."""
        return None

    def close(self) -> None:
        for action in reversed(self._cleanup):
            action()
        self._cleanup.clear()


class NodeSource(HistorySource):
    def __init__(self, url: str) -> None:
        self.client = Client(url, timeout=120)
        # The chain's identity and head (and one block): from the lowest height the node holds.
        below = int(self.client.get("/status").get("blocks_pruned_below", 1))
        first = self._page(below, below)
        super().__init__(first.chain_id, first.genesis_hash, first.head, f"node {self.client.url}")
        self.pruned_below = below

    def _page(self, start: int, end: int) -> HistoryPage:
        return HistoryPage.decode(self.client.get_bytes("/history", **{"from": start, "to": end}))

    def records(self, start: int, end: int) -> Iterator[HistoryRecord]:
        self.check_held(start)
        height: int | None = start
        while height is not None and height <= end:
            page = self._page(height, end)
            if page.chain_id != self.chain_id or page.genesis_hash != self.genesis_hash:
                raise HistoryError("history_source_changed", f"{self.describe} now serves another chain")
            if not page.records:
                return
            yield from page.records
            height = page.next_height


class HomeSource(HistorySource):
    def __init__(self, home: Path) -> None:
        db = home / "db"
        if not (db / "CURRENT").exists():
            raise StoreError("store_missing", f"{home} holds no node database ({db}/CURRENT is missing)")
        self._store, tmp = _snapshot(db)
        head = self._store.head()
        chain_id = self._store.chain_id()
        genesis_hash = self._store.genesis_hash()
        if head is None or chain_id is None or genesis_hash is None:
            self._store.close()
            shutil.rmtree(tmp, ignore_errors=True)
            raise StoreError("store_empty", f"{db} holds no chain")
        super().__init__(chain_id, genesis_hash, head.height, f"{home} (snapshot at height {head.height})")
        self._cleanup += [lambda: shutil.rmtree(tmp, ignore_errors=True), self._store.close]
        self.pruned_below = blocks_pruned_below(self._store)

    def store(self) -> Store:
        return self._store

    def records(self, start: int, end: int) -> Iterator[HistoryRecord]:
        self.check_held(start)
        s = self._store
        for height in range(start, min(end, self.head) + 1):
            yield HistoryRecord(
                height, s.block_bytes(height), s.certificate_bytes(height), s.receipts_bytes(height)
            )


def _snapshot(db: Path) -> tuple[Store, Path]:
    """Open a private copy of a LevelDB folder that another process may be writing."""
    last: Exception | None = None
    for _ in range(SNAPSHOT_ATTEMPTS):
        tmp = Path(tempfile.mkdtemp(prefix="clearchain-snapshot-"))
        try:
            manifest = (db / "CURRENT").read_text().strip()
            shutil.copy2(db / manifest, tmp / manifest)
            for name in sorted(os.listdir(db)):
                if name.endswith((".ldb", ".sst")):
                    _link_or_copy(db / name, tmp / name)
            for name in sorted(os.listdir(db)):
                if name.endswith(".log"):
                    shutil.copy2(db / name, tmp / name)
            (tmp / "CURRENT").write_text(manifest + "\n")
            return Store.open_leveldb(tmp), tmp
        except (OSError, ClearchainError) as exc:
            last = exc
            shutil.rmtree(tmp, ignore_errors=True)
    raise StoreError("store_snapshot_failed", f"could not take a consistent snapshot of {db}: {last}")


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


class FileSource(HistorySource):
    def __init__(self, path: Path) -> None:
        try:
            self._file: IO[bytes] = path.open("rb")
        except OSError as exc:
            raise HistoryError("history_unreadable", f"{path}: {exc.strerror}") from exc
        first = self._file.peek(1)[:1] if hasattr(self._file, "peek") else b""
        self._jsonl = first == b"{"
        self._path = path
        try:
            preamble = Preamble.from_wire(self._next_item())
        except HistoryError:
            self._file.close()
            raise
        self.preamble = preamble
        super().__init__(preamble.chain_id, preamble.genesis_hash, preamble.to_height, f"export {path}")
        self._cleanup.append(self._file.close)

    def records(self, start: int, end: int) -> Iterator[HistoryRecord]:
        """Every record in the file (``start``/``end`` are the file's own); the trailer is
        required, so a truncated export fails at its end."""
        count = 0
        while True:
            item = self._next_item()
            if item is None:
                raise HistoryError(
                    "history_truncated", f"{self._path} ends after {count} records without its trailer"
                )
            if is_trailer(item):
                check_trailer(item, count)
                return
            count += 1
            yield HistoryRecord.from_wire(item)

    def _next_item(self) -> Any:
        return self._next_json() if self._jsonl else self._next_frame()

    def _next_frame(self) -> Any:
        head = self._file.read(4)
        if not head:
            return None
        if len(head) < 4:
            raise HistoryError("history_truncated", f"{self._path} ends inside a frame header")
        size = int.from_bytes(head, "big")
        if size > RECORD_BYTES_MAX:
            raise HistoryError("history_malformed", f"a frame of {size} bytes is over {RECORD_BYTES_MAX}")
        body = self._file.read(size)
        if len(body) < size:
            raise HistoryError("history_truncated", f"{self._path} ends inside a frame")
        try:
            return decode_frame_body(body)
        except ClearchainError as exc:
            raise HistoryError("history_malformed", f"a frame does not decode: {exc.message}") from exc

    def _next_json(self) -> Any:
        line = self._file.readline(JSON_LINE_CHARS_MAX + 1)
        if not line:
            return None
        if len(line) > JSON_LINE_CHARS_MAX:
            raise HistoryError("history_malformed", "a line is too long")
        if not line.endswith(b"\n"):
            raise HistoryError("history_truncated", f"{self._path} ends inside a line")
        try:
            doc = json.loads(line)
            return _wire_from_json(doc)
        except (ValueError, KeyError, TypeError) as exc:
            raise HistoryError("history_malformed", f"a line is not a history record: {exc}") from exc


# --- the JSON-lines form ------------------------------------------------------------------------
def _json_from_wire(item: Any) -> dict[str, Any]:
    if isinstance(item, Preamble):
        return {"format": FORMAT_NAME, "version": 1, "chain_id": item.chain_id, "genesis_hash": item.genesis_hash.hex(),
                "from": item.from_height, "to": item.to_height}  # fmt: skip
    if isinstance(item, HistoryRecord):
        hexed = lambda b: None if b is None else b.hex()  # noqa: E731
        return {"height": item.height, "block": hexed(item.block), "certificate": hexed(item.certificate),
                "receipts": hexed(item.receipts)}  # fmt: skip
    return {"end": True, "records": item}


def _wire_from_json(doc: dict[str, Any]) -> Any:
    if "format" in doc:
        return [
            doc["format"],
            doc["version"],
            doc["chain_id"],
            bytes.fromhex(doc["genesis_hash"]),
            doc["from"],
            doc["to"],
        ]
    if doc.get("end") is True:
        return ["end", doc["records"]]
    unhex = lambda v: None if v is None else bytes.fromhex(v)  # noqa: E731
    return [doc["height"], unhex(doc["block"]), unhex(doc["certificate"]), unhex(doc["receipts"])]


class ExportWriter:
    """Writes an export stream (msgpack frames or JSON lines) to a binary file."""

    def __init__(self, out: IO[bytes], fmt: str, preamble: Preamble) -> None:
        self.out = out
        self.fmt = fmt
        self.count = 0
        self._write(preamble, preamble.to_wire())

    def record(self, record: HistoryRecord) -> None:
        self._write(record, record.to_wire())
        self.count += 1

    def finish(self) -> None:
        self._write(self.count, ["end", self.count])
        self.out.flush()

    def _write(self, item: Any, wire: Any) -> None:
        if self.fmt == "jsonl":
            self.out.write(json.dumps(_json_from_wire(item), separators=(",", ":")).encode() + b"\n")
        else:
            self.out.write(encode_frame(wire))


def open_source(node_url: str | None, home: Path | None, path: Path | None) -> HistorySource:
    """Exactly one of the three. Raises HistoryError ``history_source`` otherwise."""
    given = [x for x in (node_url, home, path) if x is not None]
    if len(given) != 1:
        raise HistoryError("history_source", "give exactly one of FILE, --node URL or --home DIR")
    if path is not None:
        return FileSource(path)
    if home is not None:
        return HomeSource(home)
    assert node_url is not None
    return NodeSource(node_url)


@contextlib.contextmanager
def source(node_url: str | None, home: Path | None, path: Path | None) -> Iterator[HistorySource]:
    src = open_source(node_url, home, path)
    try:
        yield src
    finally:
        src.close()
