"""The JSON notation of clearchain values in the vectors: every value says its type, so integers
beyond 2^53, bytes and text are unambiguous to any JSON reader.

    nil -> {"nil": null}     bool -> {"bool": true}      int -> {"int": "-12"}  (decimal text)
    bytes -> {"bytes": "00ff"} (lower-case hex)            text -> {"text": "é"}
    array (list or tuple) -> {"array": [...]}
"""

from __future__ import annotations

from typing import Any


def to_json(value: Any) -> dict[str, Any]:
    """``value`` (a canonical clearchain value) in the typed notation."""
    if value is None:
        return {"nil": None}
    if isinstance(value, bool):
        return {"bool": value}
    if isinstance(value, int):
        return {"int": str(value)}
    if isinstance(value, (bytes, bytearray)):
        return {"bytes": bytes(value).hex()}
    if isinstance(value, str):
        return {"text": value}
    if isinstance(value, (list, tuple)):
        return {"array": [to_json(item) for item in value]}
    raise TypeError(f"no vector notation for {type(value).__name__}")


def from_json(doc: dict[str, Any]) -> Any:
    """The value a typed-notation document stands for (arrays come back as lists)."""
    if not isinstance(doc, dict) or len(doc) != 1:
        raise ValueError(f"not a typed value: {doc!r}")
    ((kind, item),) = doc.items()
    if kind == "nil":
        return None
    if kind == "bool":
        return bool(item)
    if kind == "int":
        return int(item)
    if kind == "bytes":
        return bytes.fromhex(item)
    if kind == "text":
        return str(item)
    if kind == "array":
        return [from_json(x) for x in item]
    raise ValueError(f"unknown value type {kind!r}")
