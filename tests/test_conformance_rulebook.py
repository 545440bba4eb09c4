"""The rulebook vectors (docs/vectors/contracts/) cover every method and task, chain their roots,
replay on a fresh ledger, and let the state writes alone reproduce each post-state root."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chain.statetree import EMPTY_ROOT, MemoryNodeSource, StateTree
from cli.vectors.rulebook_script import Recorder, RecordingError, replay
from contracts import default_registry

CONTRACTS = Path(__file__).resolve().parent.parent / "docs" / "vectors" / "contracts"
# Methods that cannot fail once admitted: their failure case may be a rejected transaction
# (``bad_arguments`` and the like). Every method of the registry fails chain-side today.
REJECTION_ONLY: set[tuple[str, str]] = set()


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((CONTRACTS / f"{name}.json").read_text())
    return doc


def _contract_files() -> list[str]:
    return sorted(p.stem for p in CONTRACTS.glob("*.json") if p.stem != "genesis")


def _covered() -> tuple[set[tuple[str, str]], set[tuple[str, str]], set[tuple[str, str]]]:
    """(contract, method) with an ok case, with a failure case; (contract, task) run, each
    counted only in its own contract's file."""
    ok: set[tuple[str, str]] = set()
    failed: set[tuple[str, str]] = set()
    ran: set[tuple[str, str]] = set()
    for name in _contract_files():
        for case in _load(name)["cases"]:
            ran.update((t["contract"], t["task"]) for t in case.get("tasks", []) if t["contract"] == name)
            if case["kind"] == "tasks" or case["contract"] != name:
                continue
            key = (name, case["method"])
            if case["code"] == "ok":
                ok.add(key)
            elif case["kind"] == "call" or key in REJECTION_ONLY:
                failed.add(key)
    return ok, failed, ran


def test_every_method_has_an_ok_and_a_failing_case_and_every_task_runs() -> None:
    registry = default_registry()
    methods = {(c, m) for c, m, _ in registry.methods()}
    tasks = set(registry.tasks())
    ok, failed, ran = _covered()
    assert sorted(methods - ok) == [], "methods without an ok case"
    assert sorted(methods - failed) == [], "methods without a failure case"
    assert sorted(tasks - ran) == [], "tasks no case runs"
    assert ok | failed <= {(c, m) for c, m, _ in registry.methods()}, "cases of methods that do not exist"
    assert set(_contract_files()) == {c.name for c in registry.contracts}


@pytest.mark.parametrize("name", _contract_files())
def test_roots_chain_from_genesis(name: str) -> None:
    genesis = _load("genesis")
    root = genesis["state_root"]
    height = 0
    cases = _load(name)["cases"]
    names = [case["name"] for case in cases]
    assert len(set(names)) == len(names), "case names are unique within a file"
    for case in cases:
        assert case["pre_state_root"] == root, case["name"]
        assert case["height"] > height or case["kind"] == "rejected", case["name"]
        if case["kind"] == "rejected":
            assert case["post_state_root"] == root and "writes" not in case
        else:
            height = case["height"]
        root = case["post_state_root"]


@pytest.mark.parametrize("name", _contract_files())
def test_replay_on_a_fresh_ledger_gives_the_same_receipts_and_roots(name: str) -> None:
    assert replay(_load(name)) == []


def _tree_at(state: dict[str, str | None]) -> tuple[StateTree, MemoryNodeSource]:
    source = MemoryNodeSource()
    tree = StateTree(source, EMPTY_ROOT)
    _apply(tree, source, state)
    return tree, source


def _apply(tree: StateTree, source: MemoryNodeSource, writes: dict[str, str | None]) -> None:
    update = tree.compute_update(
        {bytes.fromhex(k): None if v is None else bytes.fromhex(v) for k, v in writes.items()}
    )
    source.write(update.node_writes)
    tree.apply(update)


def test_the_genesis_state_gives_the_genesis_root() -> None:
    genesis = _load("genesis")
    tree, _ = _tree_at(genesis["state"])
    assert tree.root.hex() == genesis["state_root"]


@pytest.mark.parametrize("name", _contract_files())
def test_each_cases_writes_alone_give_its_post_state_root(name: str) -> None:
    tree, source = _tree_at(_load("genesis")["state"])
    for case in _load(name)["cases"]:
        assert tree.root.hex() == case["pre_state_root"], case["name"]
        if case["kind"] != "rejected":
            _apply(tree, source, case["writes"])
        assert tree.root.hex() == case["post_state_root"], case["name"]


def test_a_changed_write_changes_the_root() -> None:
    """The writes check can fail: one value altered gives another root."""
    name = _contract_files()[0]
    tree, source = _tree_at(_load("genesis")["state"])
    case = next(c for c in _load(name)["cases"] if c["kind"] == "call" and c["writes"])
    key, value = next((k, v) for k, v in case["writes"].items() if v is not None)
    _apply(tree, source, {**case["writes"], key: value + "00"})
    assert tree.root.hex() != case["post_state_root"]


def test_replay_reports_a_receipt_the_code_does_not_give() -> None:
    """The replay check can fail: a file whose receipt was edited no longer replays."""
    doc = _load(_contract_files()[0])
    case = next(c for c in doc["cases"] if c["kind"] == "call")
    case["receipts"][0]["message"] += "!"
    assert replay(doc) == [f"{case['name']}: receipts differ"]


def test_a_script_whose_case_turns_out_otherwise_stops_the_build() -> None:
    """A rule change cannot silently rewrite a vector: the recorder checks each expectation."""
    recorder = Recorder()
    with pytest.raises(RecordingError, match="code not_admin"):
        recorder.call(
            "a member lists", "member-a", "instruments", "list_instrument", ["SOL", "crypto", 9, "USD"]
        )
    with pytest.raises(RecordingError, match="admission gives ok"):
        recorder.reject("a valid tx", "admin", "instruments", "resume", ["STARK"], "bad_arguments")
