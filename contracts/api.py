"""The contract API: ``Context``, ``ContractError``, the ``method`` and ``task`` decorators, and
the ``Registry`` that the executor calls (it implements ``chain.executor.ContractRuntime``).

A contract is a class with methods marked ``@method(("name", Schema), ...)`` and tasks marked
``@task``. Its state is namespaced: contract ``accounts`` sees keys under ``b"accounts/"``. A
contract reaches another contract's rules by calling that contract module's functions with
``ctx.view("other")``, which shares the transaction's journal, so everything a call does is
undone together when it fails.

Determinism: contracts get no clock, randomness or I/O; ``ctx.height`` and ``ctx.time_ms`` are
the block's. Code is pinned: genesis holds the SHA-256 of each contract module's source and the
registry refuses to run code that differs.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chain.encoding import INT_MAX, INT_MIN, check_value
from chain.errors import ContractCodeMismatch, ContractError, GenesisError, InvalidTransaction
from chain.executor import CallEnv
from chain.genesis import Genesis
from chain.limits import CALL_EVENTS_MAX
from chain.receipt import Event
from chain.scheduler import Task, schedule
from chain.state import BlockState
from contracts.params import init_params

__all__ = ["Context", "Contract", "ContractError", "Registry", "method", "task", "view"]


class Context:
    """What a contract call sees: who called, where in the chain, and its own state."""

    __slots__ = ("state", "env", "sender", "contract", "_prefix", "_events", "_views")

    def __init__(
        self, state: BlockState, env: CallEnv, sender: str, contract: str, events: list[Event] | None = None
    ) -> None:
        self.state = state
        self.env = env
        self.sender = sender
        self.contract = contract
        self._prefix = contract.encode() + b"/"
        self._events: list[Event] = [] if events is None else events
        self._views: dict[str, Context] = {}

    @property
    def height(self) -> int:
        return self.env.height

    @property
    def time_ms(self) -> int:
        return self.env.time_ms

    @property
    def chain_id(self) -> str:
        return self.env.chain_id

    # --- state --------------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        return self.state.get(self._prefix + key.encode())

    def put(self, key: str, value: Any) -> None:
        self.state.put(self._prefix + key.encode(), value)

    def delete(self, key: str) -> None:
        self.state.delete(self._prefix + key.encode())

    def iterate(self, prefix: str, start: str = "") -> Iterator[tuple[str, Any]]:
        """(key, value) under ``prefix``, from ``prefix + start`` on, in key order; the caller
        bounds how many it reads (page with ``start`` = the last key's suffix + "\x00")."""
        cut = len(self._prefix)
        for key, value in self.state.iterate(self._prefix + prefix.encode(), start.encode()):
            yield key[cut:].decode(), value

    def view(self, contract: str) -> Context:
        """The same call, seen from ``contract``'s namespace (to apply that contract's rules)."""
        if contract == self.contract:
            return self
        ctx = self._views.get(contract)
        if ctx is None:
            ctx = Context(self.state, self.env, self.sender, contract, self._events)
            self._views[contract] = ctx
        return ctx

    def savepoint(self) -> int:
        return self.state.savepoint()

    def rollback_to(self, savepoint: int, events: int) -> None:
        """Undo writes since ``savepoint`` and drop events after the first ``events``."""
        self.state.rollback_to(savepoint)
        del self._events[events:]

    # --- outcomes -----------------------------------------------------------------------------
    def emit(self, name: str, **fields: Any) -> None:
        """Record an event in the receipt (fields in the order given)."""
        if len(self._events) >= CALL_EVENTS_MAX:
            raise ContractError("too_many_events", f"a call emits at most {CALL_EVENTS_MAX} events")
        for value in fields.values():  # receipts are then encoded without another walk
            kind = type(value)
            if not (kind is int or kind is str or kind is bytes or kind is bool or value is None):
                check_value(value)
            elif kind is int and not INT_MIN <= value <= INT_MAX:
                check_value(value)  # raises: outside the 64-bit range (compared inline: hot path)
        self._events.append((self.contract, name, tuple(fields.items())))

    @property
    def event_count(self) -> int:
        return len(self._events)

    def require(self, condition: bool, code: str, message: str) -> None:
        if not condition:
            raise ContractError(code, message)

    def schedule(
        self, name: str, payload: Any, *, at_height: int | None = None, at_time_ms: int | None = None
    ) -> int:
        """Run this contract's task ``name`` with ``payload`` at the end of a later block."""
        if at_height is not None and at_height <= self.height:
            raise ContractError("bad_schedule", f"height {at_height} is not after {self.height}")
        if at_time_ms is not None and at_time_ms <= self.time_ms:
            raise ContractError("bad_schedule", f"time {at_time_ms} is not after {self.time_ms}")
        return schedule(self.state, self.contract, name, payload, at_height=at_height, at_time_ms=at_time_ms)

    def events(self) -> list[Event]:
        return self._events


@dataclass(frozen=True, slots=True)
class MethodSpec:
    name: str
    params: tuple[tuple[str, Any], ...]
    fn: Callable[..., None]


def method(*params: tuple[str, Any]) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Mark a contract method callable by transactions, with its positional argument schema."""

    def mark(fn: Callable[..., None]) -> Callable[..., None]:
        fn.__clearchain_params__ = params  # type: ignore[attr-defined]
        return fn

    return mark


def task(fn: Callable[..., None]) -> Callable[..., None]:
    """Mark a contract function runnable as a scheduled task: ``fn(self, ctx, payload)``."""
    fn.__clearchain_task__ = True  # type: ignore[attr-defined]
    return fn


def required_query(query: dict[str, str], name: str) -> str:
    """The view parameter ``name``; ContractError ``bad_query`` "<name> is required" if it is
    absent or empty (so a missing key never reads as an unknown id '')."""
    text = query.get(name, "")
    if not text:
        raise ContractError("bad_query", f"{name} is required")
    return text


def view(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark a read-only query served by the API (``GET /contracts/<contract>/<view>``):
    ``fn(self, ctx, query) -> JSON-able``, where ``query`` maps the request's parameters to
    strings. A view reads committed state through ``ctx`` and must bound what it reads; it raises
    ContractError (``bad_query``, ``not_found``, ...) for a request it cannot answer."""
    fn.__clearchain_view__ = True  # type: ignore[attr-defined]
    return fn


class Contract:
    """Base class: subclasses set ``name`` and define methods, tasks, views, ``PARAMS``
    (contracts/params.py) and ``init_genesis``."""

    name: str = ""
    PARAMS: dict[str, Any] = {}

    def init_genesis(self, ctx: Context, genesis: Genesis) -> None:
        """Write this contract's initial state (raise GenesisError on a bad document)."""

    @classmethod
    def source_path(cls) -> Path:
        path = inspect.getsourcefile(cls)
        assert path is not None
        return Path(path)

    @classmethod
    def code_hash(cls) -> str:
        """SHA-256 hex of the module source that defines this contract."""
        return hashlib.sha256(cls.source_path().read_bytes()).hexdigest()


RUNTIME_PIN = "contract-runtime"
_RUNTIME_MODULES = (
    "chain.display",  # failure messages in receipts format amounts with it
    "chain.executor",
    "chain.policy",
    "chain.scheduler",
    "chain.state",
    "contracts.api",
    "contracts.money",
    "contracts.params",
    "contracts.prices",
    "contracts.schema",
)


def runtime_code_hash() -> str:
    """SHA-256 over the sources of the shared modules, each prefixed by its name."""
    import importlib

    digest = hashlib.sha256()
    for name in _RUNTIME_MODULES:
        path = inspect.getsourcefile(importlib.import_module(name))
        assert path is not None
        digest.update(name.encode() + b"\n" + Path(path).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class PreparedCall:
    contract: Contract
    spec: MethodSpec
    args: tuple[Any, ...]


class Registry:
    """The set of contracts a node runs, in a fixed order (genesis initialisation order)."""

    def __init__(self, contracts: list[Contract]) -> None:
        self._contracts = {c.name: c for c in contracts}
        assert len(self._contracts) == len(contracts), "two contracts share a name"
        self._methods: dict[tuple[str, str], MethodSpec] = {}
        self._tasks: dict[tuple[str, str], Callable[..., None]] = {}
        self._views: dict[tuple[str, str], Callable[..., Any]] = {}
        for contract in contracts:
            for attr in sorted(dir(type(contract))):
                fn = getattr(contract, attr)
                params = getattr(fn, "__clearchain_params__", None)
                if params is not None:
                    self._methods[(contract.name, attr)] = MethodSpec(attr, params, fn)
                if getattr(fn, "__clearchain_task__", False):
                    self._tasks[(contract.name, attr)] = fn
                if getattr(fn, "__clearchain_view__", False):
                    self._views[(contract.name, attr)] = fn

    @property
    def contracts(self) -> list[Contract]:
        return list(self._contracts.values())

    def methods(self) -> list[tuple[str, str, tuple[tuple[str, Any], ...]]]:
        return [(c, m, s.params) for (c, m), s in sorted(self._methods.items())]

    def views(self) -> list[tuple[str, str]]:
        return sorted(self._views)

    def tasks(self) -> list[tuple[str, str]]:
        return sorted(self._tasks)

    def read_view(
        self, state: BlockState, env: CallEnv, contract: str, name: str, query: dict[str, str]
    ) -> Any:
        """Answer a view over ``state`` (committed state, read-only by convention: the caller
        never writes ``state`` back). Raises ContractError ``unknown_view`` or the view's code."""
        fn = self._views.get((contract, name))
        if fn is None:
            raise ContractError("unknown_view", f"no view {contract}/{name}")
        return fn(Context(state, env, "", contract), query)

    def code_hashes(self) -> dict[str, str]:
        """SHA-256 of each contract's module, plus ``contract-runtime``: the shared code every
        contract's outcome depends on (this API, schemas, rounding, the executor, the state
        overlay, the scheduler), so that no rule can change without a pin changing."""
        hashes = {name: type(c).code_hash() for name, c in self._contracts.items()}
        hashes[RUNTIME_PIN] = runtime_code_hash()
        return dict(sorted(hashes.items()))

    # --- ContractRuntime ----------------------------------------------------------------------
    def check_pins(self, pins: tuple[tuple[str, str], ...]) -> None:
        """Raise ContractCodeMismatch unless this code is exactly ``pins``: genesis's for a new
        chain, the head state's ``chain/code/*`` after a governance upgrade."""
        mine = self.code_hashes()
        pinned = dict(pins)
        if set(pinned) != set(mine):
            raise ContractCodeMismatch(
                "contract_code_mismatch",
                f"the chain pins {sorted(pinned)}, this node has {sorted(mine)}",
            )
        for name, digest in sorted(mine.items()):
            if pinned[name] != digest:
                raise ContractCodeMismatch(
                    "contract_code_mismatch",
                    f"contract {name}: the chain pins {pinned[name]}, this node's code is {digest}",
                )

    def prepare_call(self, contract: str, method_name: str, args: list[Any]) -> PreparedCall:
        target = self._contracts.get(contract)
        if target is None:
            raise InvalidTransaction("unknown_contract", f"no contract {contract!r}")
        spec = self._methods.get((contract, method_name))
        if spec is None:
            raise InvalidTransaction("unknown_method", f"contract {contract!r} has no method {method_name!r}")
        if len(args) != len(spec.params):
            raise InvalidTransaction(
                "bad_arguments",
                f"{contract}.{method_name} takes {len(spec.params)} arguments "
                f"({', '.join(n for n, _ in spec.params)}), got {len(args)}",
            )
        checked = tuple(
            schema.check(value, name) for (name, schema), value in zip(spec.params, args, strict=True)
        )
        return PreparedCall(target, spec, checked)

    def call(self, state: BlockState, env: CallEnv, sender: str, prepared: PreparedCall) -> list[Event]:
        ctx = Context(state, env, sender, prepared.contract.name)
        prepared.spec.fn(ctx, *prepared.args)
        return ctx.events()

    def run_task(self, state: BlockState, env: CallEnv, task_: Task) -> list[Event]:
        fn = self._tasks.get((task_.contract, task_.name))
        if fn is None:
            raise ContractError("unknown_task", f"no task {task_.contract}.{task_.name}")
        ctx = Context(state, env, "", task_.contract)
        fn(ctx, task_.payload)
        return ctx.events()

    def init_genesis(self, state: BlockState, genesis: Genesis) -> None:
        env = CallEnv(genesis.chain_id, 0, genesis.genesis_time_ms, b"")
        overrides: dict[str, dict[str, int]] = {}
        for full, value in genesis.params:
            contract_name, _, param = full.partition(".")
            if contract_name not in self._contracts:
                raise GenesisError("genesis_invalid", f"params.{full}: no contract {contract_name}")
            overrides.setdefault(contract_name, {})[param] = value
        for contract in self._contracts.values():
            ctx = Context(state, env, "", contract.name)
            init_params(ctx, contract.PARAMS, overrides.get(contract.name, {}))
            contract.init_genesis(ctx, genesis)
