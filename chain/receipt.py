"""Receipts: the outcome of each transaction and each scheduled task in a block.

Wire form: ``[kind, ref, code, message, events]`` where kind 0 is a transaction (ref = tx hash)
and kind 1 a scheduled task (ref = 8-byte task id); code is ``"ok"`` or a stable error code;
events are ``[contract, name, [[field, value], ...]]``. The receipts root is the list Merkle root
(chain/merkle.py) of the encoded receipts, in block order: tx receipts, then task receipts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.encoding import encode_trusted

OK = "ok"
KIND_TX = 0
KIND_TASK = 1

Event = tuple[str, str, tuple[tuple[str, Any], ...]]


@dataclass(frozen=True, slots=True)
class Receipt:
    kind: int
    ref: bytes
    code: str
    message: str
    events: tuple[Event, ...]

    @property
    def ok(self) -> bool:
        return self.code == OK

    def to_wire(self) -> list[Any]:
        return [
            self.kind,
            self.ref,
            self.code,
            self.message,
            [[c, n, [list(f) for f in fields]] for c, n, fields in self.events],
        ]

    def encode(self) -> bytes:
        """``encode_trusted(self.to_wire())`` without building the lists: msgpack writes a tuple
        as an array, so the tuples the receipt already holds give the same bytes (a batch's
        receipt carries thousands of events, and every block's receipts are encoded once)."""
        return encode_trusted((self.kind, self.ref, self.code, self.message, self.events))

    @classmethod
    def from_wire(cls, wire: list[Any]) -> Receipt:
        kind, ref, code, message, events = wire
        return cls(
            kind,
            ref,
            code,
            message,
            tuple((c, n, tuple((f[0], f[1]) for f in fields)) for c, n, fields in events),
        )

    def event_fields(self, index: int) -> dict[str, Any]:
        """The fields of event ``index`` as a dict (for reading, never for hashing)."""
        return dict(self.events[index][2])
