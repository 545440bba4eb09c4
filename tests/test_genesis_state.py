"""docs/PROTOCOL.md section 11.3 lists every key genesis writes, by the contract that writes it:
run genesis on the shipped genesis.json, attribute each write to its writer, and compare the
key patterns with the documented table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chain.executor import CallEnv
from chain.genesis import Genesis, load_genesis
from chain.ledger import Ledger
from chain.state import BlockState
from chain.store import Store
from cli import docgen
from contracts import default_registry
from contracts.api import Context
from contracts.params import init_params

ROOT = Path(__file__).resolve().parent.parent


class _Recording(BlockState):
    """A genesis overlay that remembers who wrote each key."""

    __slots__ = ("writer", "writes")

    def __init__(self, base: Any) -> None:
        super().__init__(base)
        self.writer = "chain"
        self.writes: dict[str, set[str]] = {}

    def put(self, key: bytes, value: Any) -> None:
        self.writes.setdefault(self.writer, set()).add(key.decode())
        super().put(key, value)


class _Empty:
    def get_state(self, key: bytes) -> bytes | None:
        return None

    def iterate_state(self, prefix: bytes, start: bytes = b"") -> Any:
        return iter(())


def _writes_by_contract(genesis: Genesis) -> tuple[dict[str, set[str]], set[str]]:
    """(writer -> keys it wrote, keys the ledger's own genesis writes) for ``genesis``: the
    registry's genesis loop (contracts/api.py), one contract at a time."""
    registry = default_registry()
    state = _Recording(_Empty())
    state.begin()
    state.put(b"chain/validators", [])
    for name, _ in genesis.contracts:
        state.put(b"chain/code/" + name.encode(), b"")
    for name, _ in genesis.consensus:
        state.put(b"chain/param/" + name.encode(), 0)
    env = CallEnv(genesis.chain_id, 0, genesis.genesis_time_ms, b"")
    overrides: dict[str, dict[str, int]] = {}
    for full, value in genesis.params:
        contract_name, _, param = full.partition(".")
        overrides.setdefault(contract_name, {})[param] = value
    for contract in registry.contracts:
        state.writer = contract.name
        ctx = Context(state, env, "", contract.name)
        init_params(ctx, contract.PARAMS, overrides.get(contract.name, {}))
        contract.init_genesis(ctx, genesis)
    state.commit_tx()
    ledger = Ledger(Store.in_memory(), genesis, registry)
    real = {k.decode() for k, v in ledger.genesis_state().diff().items() if v is not None}
    return state.writes, real


def _documented() -> list[tuple[str, str]]:
    """(writer, key pattern) rows of the table in PROTOCOL.md section 11.3."""
    text = docgen.committed((docgen.DOCS / "PROTOCOL.md").read_text(), "genesis-keys")
    rows = []
    for line in text.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        rows.append((cells[0], cells[1].strip("`")))
    return rows


def _regex(pattern: str) -> re.Pattern[str]:
    parts = re.split(r"(<[^>]+>)", pattern)
    return re.compile("".join("[^/]+" if p.startswith("<") else re.escape(p) for p in parts) + r"\Z")


def test_the_recorded_writes_are_the_ledgers_genesis() -> None:
    writes, real = _writes_by_contract(load_genesis(ROOT / "genesis.json"))
    assert set().union(*writes.values()) == real


def test_each_contract_writes_exactly_the_documented_keys() -> None:
    writes, _ = _writes_by_contract(load_genesis(ROOT / "genesis.json"))
    rows = _documented()
    assert {w for w, _ in rows} == set(writes), "a writer is missing from the table, or listed without writes"
    for writer, keys in sorted(writes.items()):
        patterns = [(p, _regex(p)) for w, p in rows if w == writer]
        used: set[str] = set()
        for key in sorted(keys):
            matched = [p for p, rx in patterns if rx.match(key)]
            assert len(matched) == 1, f"{writer} writes {key}, documented as {matched}"
            used.add(matched[0])
        assert used == {p for p, _ in patterns}, f"{writer}: documented but never written"


def test_every_parameter_is_written_with_its_bounds() -> None:
    genesis = load_genesis(ROOT / "genesis.json")
    state = Ledger(Store.in_memory(), genesis, default_registry()).genesis_state()
    overrides = dict(genesis.params)
    for contract in default_registry().contracts:
        for name, p in contract.PARAMS.items():
            value = overrides.get(f"{contract.name}.{name}", p.default)
            assert state.get(f"{contract.name}/param/{name}".encode()) == (value, p.min, p.max)


def test_the_insurance_fund_and_margin_currency_records() -> None:
    genesis = load_genesis(ROOT / "genesis.json")
    state = Ledger(Store.in_memory(), genesis, default_registry()).genesis_state()
    first_cash = next(i.id for i in genesis.instruments if i.kind == "cash")
    assert state.get(b"margin/currency") == first_cash
    assert state.get(b"accounts/acct/CCP-INSURANCE") == ("@margin", "house", None, "active", 0)
