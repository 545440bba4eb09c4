"""History records: one committed height as a node stores it, the unit of export and audit.

A record is ``[height, block, certificate, receipts]`` where the last three are the exact bytes
the store holds (``chain/store.py``): the encoded block, the encoded commit certificate for it,
and the encoded list of its receipts. Exporting the stored bytes, not a re-rendering of them,
means an auditor checks what the node actually keeps, and a flipped byte anywhere is found.

An export stream (``docs/AUDIT.md``) is a preamble, the records in height order, and a trailer::

    ["clearchain-history", 1, chain_id, genesis_hash, from_height, to_height]
    [height, block, certificate, receipts] ...
    ["end", record_count]

The msgpack form frames each item as ``u32be(length) || canonical msgpack``; the JSON-lines form
writes one object per line with the byte strings in hex. The trailer lets a reader tell a
complete export from a truncated one.

The API serves a page of records as one msgpack array (``GET /history``)::

    [chain_id, genesis_hash, head_height, next_height or nil, [record, ...]]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.encoding import decode, encode
from chain.errors import ClearchainError
from chain.limits import BLOCK_BYTES_MAX, CHAIN_ID_CHARS_MAX

FORMAT_NAME = "clearchain-history"
FORMAT_VERSION = 1
END_MARK = "end"
# A record holds a block, its certificate and its receipts: bounded by the block limit plus room
# for receipts (each at most a few KiB; see chain/limits.py) and the certificate.
RECORD_BYTES_MAX = 4 * BLOCK_BYTES_MAX
PAGE_RECORDS_MAX = 256  # records in one GET /history reply
PAGE_BYTES_MAX = 16 * 1024 * 1024  # and at most this many bytes of them (one record may exceed)


class HistoryError(ClearchainError):
    """An export file or history page that is not well formed (truncated, wrong format ...)."""


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    height: int
    block: bytes | None  # None: the source has no block at this height
    certificate: bytes | None
    receipts: bytes | None

    def to_wire(self) -> list[Any]:
        return [self.height, self.block, self.certificate, self.receipts]

    @classmethod
    def from_wire(cls, wire: Any) -> HistoryRecord:
        """Structural check only: the audit decodes and judges the byte strings."""
        ok = (
            type(wire) is list
            and len(wire) == 4
            and type(wire[0]) is int
            and wire[0] >= 0
            and all(item is None or type(item) is bytes for item in wire[1:])
        )
        if not ok:
            raise HistoryError("history_malformed", "a record is [height, block, certificate, receipts]")
        return cls(wire[0], wire[1], wire[2], wire[3])


@dataclass(frozen=True, slots=True)
class Preamble:
    chain_id: str
    genesis_hash: bytes
    from_height: int
    to_height: int

    def to_wire(self) -> list[Any]:
        return [
            FORMAT_NAME,
            FORMAT_VERSION,
            self.chain_id,
            self.genesis_hash,
            self.from_height,
            self.to_height,
        ]

    @classmethod
    def from_wire(cls, wire: Any) -> Preamble:
        if type(wire) is not list or len(wire) != 6 or wire[0] != FORMAT_NAME:
            raise HistoryError("history_not_export", "this is not a clearchain history export")
        if wire[1] != FORMAT_VERSION:
            raise HistoryError(
                "history_version", f"export format version {wire[1]!r}; this reads {FORMAT_VERSION}"
            )
        _, _, chain_id, genesis_hash, start, end = wire
        ok = (
            type(chain_id) is str
            and 0 < len(chain_id) <= CHAIN_ID_CHARS_MAX
            and type(genesis_hash) is bytes
            and len(genesis_hash) == 32
            and type(start) is int
            and type(end) is int
            and 1 <= start <= end + 1
        )
        if not ok:
            raise HistoryError("history_malformed", "the export's preamble is malformed")
        return cls(chain_id, genesis_hash, start, end)


def is_trailer(wire: Any) -> bool:
    return type(wire) is list and len(wire) == 2 and wire[0] == END_MARK


def check_trailer(wire: Any, records: int) -> None:
    if type(wire[1]) is not int or wire[1] != records:
        raise HistoryError("history_truncated", f"the trailer counts {wire[1]!r} records; read {records}")


def encode_frame(wire: Any) -> bytes:
    data = encode(wire)
    return len(data).to_bytes(4, "big") + data


def decode_frame_body(data: bytes) -> Any:
    return decode(data, max_bytes=RECORD_BYTES_MAX)


@dataclass(frozen=True, slots=True)
class HistoryPage:
    chain_id: str
    genesis_hash: bytes
    head: int
    next_height: int | None
    records: tuple[HistoryRecord, ...]

    def encode(self) -> bytes:
        return encode(
            [
                self.chain_id,
                self.genesis_hash,
                self.head,
                self.next_height,
                [r.to_wire() for r in self.records],
            ]
        )

    @classmethod
    def decode(cls, data: bytes) -> HistoryPage:
        try:
            wire = decode(data, max_bytes=PAGE_BYTES_MAX + RECORD_BYTES_MAX)
        except ClearchainError as exc:
            raise HistoryError("history_malformed", f"a history page does not decode: {exc.message}") from exc
        ok = (
            type(wire) is list
            and len(wire) == 5
            and type(wire[0]) is str
            and type(wire[1]) is bytes
            and type(wire[2]) is int
            and (wire[3] is None or type(wire[3]) is int)
            and type(wire[4]) is list
        )
        if not ok:
            raise HistoryError(
                "history_malformed", "a history page is [chain_id, genesis_hash, head, next, records]"
            )
        return cls(wire[0], wire[1], wire[2], wire[3], tuple(HistoryRecord.from_wire(r) for r in wire[4]))
