"""The consensus write-ahead log: what a validator signed and saw at its current height.

Before a validator sends one of its own proposals or votes, the driver appends it here and
fsyncs; messages it receives are appended too (fsynced with the next own message). After a crash
the node reads the records of its current height back and hands them to
``Consensus.restore``, so it resumes in the round and step it had reached, with its lock.

One file per height, ``<dir>/<height>.wal``; each record is a 4-byte big-endian length, the
4-byte CRC-32 of the body, and the body: the msgpack array ``[kind, message wire]`` (kind 0
proposal, 1 vote). A torn last record (a crash mid-append) fails its length or CRC check: reading
stops there, and reopening the height truncates it away before appending. Files of heights below the current one are removed when the
node advances (the blocks themselves are in the store).
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

from chain.encoding import decode, encode
from chain.errors import EncodingError
from node.messages import Proposal, Vote

_PROPOSAL = 0
_VOTE = 1
RECORD_BYTES_MAX = 8 * 1024 * 1024


class WAL:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self._height: int | None = None
        self._fd: int | None = None

    def _path(self, height: int) -> Path:
        return self.directory / f"{height}.wal"

    def open_height(self, height: int) -> None:
        """Append to ``height``'s file from now on; drop the files of earlier heights."""
        self.close()
        self._height = height
        path = self._path(height)
        _, good = self._scan(height)
        if path.exists() and path.stat().st_size > good:
            os.truncate(path, good)  # a torn record from a crash mid-append
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        for path in sorted(self.directory.glob("*.wal")):
            stem = path.stem
            if stem.isdigit() and int(stem) < height:
                path.unlink()

    def append(self, message: Proposal | Vote, *, sync: bool) -> None:
        """Append a record; with ``sync`` (own messages) fsync before returning."""
        assert self._fd is not None, "open_height first"
        kind = _PROPOSAL if isinstance(message, Proposal) else _VOTE
        body = encode([kind, message.to_wire()])
        os.write(self._fd, len(body).to_bytes(4, "big") + zlib.crc32(body).to_bytes(4, "big") + body)
        if sync:
            os.fsync(self._fd)

    def read(self, height: int) -> list[Proposal | Vote]:
        """The records of ``height`` in the order written, up to the first torn or corrupt one."""
        return self._scan(height)[0]

    def _scan(self, height: int) -> tuple[list[Proposal | Vote], int]:
        """(records, byte length of the intact prefix)."""
        try:
            data = self._path(height).read_bytes()
        except FileNotFoundError:
            return [], 0
        records: list[Proposal | Vote] = []
        offset = 0
        while offset + 8 <= len(data):
            size = int.from_bytes(data[offset : offset + 4], "big")
            crc = int.from_bytes(data[offset + 4 : offset + 8], "big")
            body = data[offset + 8 : offset + 8 + size]
            if size > RECORD_BYTES_MAX or len(body) != size or zlib.crc32(body) != crc:
                break
            try:
                kind, wire = decode(body)
            except (EncodingError, ValueError, TypeError):
                break
            message = Proposal.from_wire(wire) if kind == _PROPOSAL else Vote.from_wire(wire)
            if message is None:
                break
            records.append(message)
            offset += 8 + size
        return records, offset

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
