"""Argument schemas: the shape every contract method's arguments must have.

A call's arguments are a msgpack array checked against its method's schema before the
transaction may enter a block, so a wrong type, a float where an integer belongs, an oversized
list or a bad id is a *rejected* transaction (code ``bad_arguments``, naming the argument), not a
failed receipt. Each check returns the value converted for the contract (lists become tuples).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.errors import InvalidTransaction
from chain.ids import is_valid_id
from chain.limits import ARG_LIST_ITEMS_MAX


def _fail(path: str, expected: str, value: Any) -> InvalidTransaction:
    return InvalidTransaction("bad_arguments", f"{path}: expected {expected}, got {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Int:
    min: int
    max: int

    def check(self, value: Any, path: str) -> int:
        if type(value) is not int:
            raise _fail(path, "an integer", value)
        if not self.min <= value <= self.max:
            raise InvalidTransaction("bad_arguments", f"{path}: {value} outside {self.min}..{self.max}")
        return value


@dataclass(frozen=True, slots=True)
class Id:
    def check(self, value: Any, path: str) -> str:
        if not is_valid_id(value):
            raise InvalidTransaction("bad_arguments", f"{path}: expected an id (1-64 of A-Z a-z 0-9 . _ : -)")
        checked: str = value  # is_valid_id accepts only str
        return checked


@dataclass(frozen=True, slots=True)
class Text:
    max_chars: int

    def check(self, value: Any, path: str) -> str:
        if type(value) is not str:
            raise _fail(path, "text", value)
        if len(value) > self.max_chars:
            raise InvalidTransaction("bad_arguments", f"{path}: longer than {self.max_chars} characters")
        return value


@dataclass(frozen=True, slots=True)
class Bytes:
    size: int  # exact size

    def check(self, value: Any, path: str) -> bytes:
        if type(value) is not bytes or len(value) != self.size:
            raise InvalidTransaction("bad_arguments", f"{path}: expected {self.size} bytes")
        return value


@dataclass(frozen=True, slots=True)
class Bool:
    def check(self, value: Any, path: str) -> bool:
        if type(value) is not bool:
            raise _fail(path, "a boolean", value)
        return value


@dataclass(frozen=True, slots=True)
class OneOf:
    choices: tuple[str, ...]

    def check(self, value: Any, path: str) -> str:
        if value not in self.choices or type(value) is not str:
            raise InvalidTransaction("bad_arguments", f"{path}: expected one of {', '.join(self.choices)}")
        return value


@dataclass(frozen=True, slots=True)
class Optional:
    inner: Any

    def check(self, value: Any, path: str) -> Any:
        return None if value is None else self.inner.check(value, path)


@dataclass(frozen=True, slots=True)
class ListOf:
    item: Any
    max_items: int = ARG_LIST_ITEMS_MAX
    min_items: int = 0

    def check(self, value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list:
            raise _fail(path, "a list", value)
        if not self.min_items <= len(value) <= self.max_items:
            raise InvalidTransaction(
                "bad_arguments", f"{path}: {len(value)} items; allowed {self.min_items}..{self.max_items}"
            )
        check = self.item.check
        try:  # the paths only matter in an error message: build them only for one
            return tuple([check(v, "") for v in value])
        except InvalidTransaction:
            return tuple(check(v, f"{path}[{i}]") for i, v in enumerate(value))  # raises, named


@dataclass(frozen=True, slots=True)
class Record:
    """A fixed-length array of named fields (a trade ticket, say)."""

    fields: tuple[tuple[str, Any], ...]

    def check(self, value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list or len(value) != len(self.fields):
            raise InvalidTransaction(
                "bad_arguments", f"{path}: expected [{', '.join(n for n, _ in self.fields)}]"
            )
        try:  # as in ListOf: checks are pure, so a failure repeats with its field's path
            return tuple([t.check(v, "") for (_, t), v in zip(self.fields, value, strict=True)])
        except InvalidTransaction:
            return tuple(t.check(v, f"{path}.{n}") for (n, t), v in zip(self.fields, value, strict=True))
