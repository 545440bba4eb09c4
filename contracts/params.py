"""Contract parameters: the rulebook's numbers (a staleness window, a margin rate, a bond term),
declared in code with bounds, set in genesis, changed only by governance.

A contract declares ``PARAMS = {"name": Param(default, min, max, "why")}``. At genesis the
registry writes every declared parameter, with the genesis document's override
(``"params": {"<contract>.<name>": value}``) or its default, after checking the bounds:

    <contract>/param/<name> -> [value, min, max]

Keeping the bounds in state means a parameter change (contracts/governance.py) is checked against
the bounds the chain agreed on, not against whatever code a node happens to run. Values are
integers: rates are in basis points (1/10,000) or parts per million, durations in blocks or ms.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from chain.errors import ContractError, GenesisError

BPS = 10_000  # basis points in one
_PARAM = "param/"


class Context(Protocol):
    """What this module needs of a call's context (``contracts.api.Context``), typed here so that
    the contract API can write parameters at genesis without the two modules importing each other."""

    @property
    def contract(self) -> str: ...

    def view(self, contract: str) -> Context: ...

    def get(self, key: str) -> Any: ...

    def put(self, key: str, value: Any) -> None: ...

    def iterate(self, prefix: str, start: str = "") -> Iterator[tuple[str, Any]]: ...


@dataclass(frozen=True, slots=True)
class Param:
    default: int
    min: int
    max: int
    doc: str = ""

    def __post_init__(self) -> None:
        assert self.min <= self.default <= self.max, "a parameter's default is within its bounds"


def _key(name: str) -> str:
    return _PARAM + name


def get(ctx: Context, contract: str, name: str) -> int:
    """The current value of ``contract``'s parameter ``name`` (declared: it exists from genesis)."""
    record = ctx.view(contract).get(_key(name))
    if record is None:
        raise ContractError("unknown_param", f"{contract} declares no parameter {name}")
    return int(record[0])


def bounds(ctx: Context, contract: str, name: str) -> tuple[int, int] | None:
    record = ctx.view(contract).get(_key(name))
    return None if record is None else (int(record[1]), int(record[2]))


def set_value(ctx: Context, contract: str, name: str, value: int) -> int:
    """Change a parameter within its agreed bounds; returns the old value. Governance only:
    the caller has checked who may. Fails ``unknown_param`` or ``param_out_of_bounds``."""
    view = ctx.view(contract)
    record = view.get(_key(name))
    if record is None:
        raise ContractError("unknown_param", f"{contract} declares no parameter {name}")
    old, low, high = record
    if not low <= value <= high:
        raise ContractError("param_out_of_bounds", f"{contract}.{name} must be {low}..{high}, got {value}")
    view.put(_key(name), [value, low, high])
    return int(old)


def init_params(ctx: Context, declared: dict[str, Param], overrides: dict[str, int]) -> None:
    """Write ``ctx.contract``'s declared parameters at genesis (GenesisError naming the field)."""
    for name in sorted(overrides):
        if name not in declared:
            raise GenesisError(
                "genesis_invalid", f"params.{ctx.contract}.{name}: {ctx.contract} declares no such parameter"
            )
    for name in sorted(declared):
        p = declared[name]
        value = overrides.get(name, p.default)
        if not p.min <= value <= p.max:
            raise GenesisError(
                "genesis_invalid", f"params.{ctx.contract}.{name}: must be {p.min}..{p.max}, got {value}"
            )
        ctx.put(_key(name), [value, p.min, p.max])


def all_params(ctx: Context, contract: str) -> list[tuple[str, Any]]:
    """(name, [value, min, max]) of every parameter of ``contract``, by name."""
    return [(k[len(_PARAM) :], v) for k, v in ctx.view(contract).iterate(_PARAM)]
