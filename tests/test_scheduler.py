"""Scheduled tasks: due by height or time, run at the end of a block in (due, id) order, bounded
per block, removed whether they succeed or fail, their writes kept only on success."""

from __future__ import annotations

from typing import Any

import pytest

from chain.errors import ContractError
from chain.executor import BAD_VALUE_MESSAGE
from chain.genesis import parse_genesis
from chain.ledger import Ledger
from chain.receipt import KIND_TASK
from chain.solo import SoloProducer
from chain.store import Store
from chain.tx import Tx
from cli.localnet import devnet
from contracts import default_registry
from contracts.api import Context, Contract, Registry, method, task
from contracts.schema import Int, ListOf


class Alarm(Contract):
    """A test contract: schedules tasks that append to a log, or fail."""

    name = "alarm"

    @method(("heights", ListOf(Int(0, 10**6))), ("times", ListOf(Int(0, 2**62))))
    def set(self, ctx: Context, heights: tuple[int, ...], times: tuple[int, ...]) -> None:
        for i, h in enumerate(heights):
            ctx.schedule("ring", [f"h{h}-{i}", h], at_height=h)
        for i, t in enumerate(times):
            ctx.schedule("ring", [f"t{t}-{i}", -1], at_time_ms=t)

    @method(("height", Int(0, 10**6)))
    def set_failing(self, ctx: Context, height: int) -> None:
        ctx.schedule("explode", [], at_height=height)

    @method(("kind", Int(0, 2)))
    def store_unencodable(self, ctx: Context, kind: int) -> None:
        ctx.put("before", 1)
        bad: Any = [1.5, {"a": 1}, 2**64][kind]
        if kind == 2:
            ctx.emit("huge", value=bad)
        ctx.put("bad", bad)

    @task
    def ring(self, ctx: Context, payload: Any) -> None:
        label, due = payload
        ctx.require(due == -1 or ctx.height >= due, "early", "ran before it was due")
        log = ctx.get("log") or ()
        ctx.put("log", [*log, label])
        ctx.emit("rang", label=label, height=ctx.height)

    @task
    def explode(self, ctx: Context, payload: Any) -> None:
        ctx.put("debris", 1)
        raise ContractError("boom", "this task always fails")


def _chain() -> tuple[Ledger, SoloProducer, Any]:
    contracts = default_registry().contracts + [Alarm()]
    registry = Registry(contracts)
    doc = devnet.dev_genesis_doc()
    doc["contracts"] = registry.code_hashes()
    genesis = parse_genesis(doc)
    ledger = Ledger(Store.in_memory(), genesis, registry)
    producer = SoloProducer(ledger, [devnet.validator_key(i) for i in range(4)], block_interval_ms=1000)
    nonce = iter(range(1, 1000))

    def call(method_name: str, args: list[Any]) -> Any:
        return Tx(genesis.chain_id, "admin", next(nonce), "alarm", method_name, args, 0).sign(
            devnet.signing_keys("admin")
        )

    return ledger, producer, call


def _log(ledger: Ledger) -> tuple[str, ...]:
    from chain.state import BlockState

    return BlockState(ledger.store).get(b"alarm/log") or ()


def test_tasks_run_when_due_in_due_then_id_order() -> None:
    ledger, producer, call = _chain()
    t0 = ledger.head.time_ms
    # Block 1 schedules: heights 3, 2, 3 (two at 3: id order) and a time 2.5 s after genesis.
    _, result = producer.produce([call("set", [[3, 2, 3], [t0 + 2500]])])
    assert result.receipts[0].ok and _log(ledger) == ()
    _, result = producer.produce([])  # height 2
    assert _log(ledger) == ("h2-1",)
    assert [r.kind for r in result.receipts] == [KIND_TASK]
    _, result = producer.produce([])  # height 3, time t0 + 3000: height tasks first, then time
    assert _log(ledger) == ("h2-1", "h3-0", "h3-2", f"t{t0 + 2500}-0")
    assert [r.event_fields(0)["label"] for r in result.receipts] == ["h3-0", "h3-2", f"t{t0 + 2500}-0"]
    _, result = producer.produce([])
    assert result.receipts == ()  # each task ran once and is gone


def test_a_failing_task_is_removed_and_its_writes_discarded() -> None:
    ledger, producer, call = _chain()
    producer.produce([call("set_failing", [2])])
    _, result = producer.produce([])
    assert [(r.kind, r.code) for r in result.receipts] == [(KIND_TASK, "boom")]
    from chain.state import BlockState

    state = BlockState(ledger.store)
    assert state.get(b"alarm/debris") is None
    assert list(state.iterate(b"chain/task/")) == []
    _, result = producer.produce([])
    assert result.receipts == ()


def test_tasks_over_the_block_bound_run_in_the_next_block(monkeypatch: pytest.MonkeyPatch) -> None:
    import chain.executor

    monkeypatch.setattr(chain.executor, "BLOCK_TASKS_MAX", 3)
    ledger, producer, call = _chain()
    producer.produce([call("set", [[2] * 5, []])])
    producer.produce([])
    assert len(_log(ledger)) == 3
    producer.produce([])
    assert _log(ledger) == ("h2-0", "h2-1", "h2-2", "h2-3", "h2-4")


@pytest.mark.parametrize("kind", [0, 1, 2])  # a float, a map, an integer beyond 64 bits (emitted)
def test_an_unencodable_value_fails_the_call_with_a_fixed_message(kind: int) -> None:
    ledger, producer, call = _chain()
    _, result = producer.produce([call("store_unencodable", [kind])])
    (receipt,) = result.receipts
    assert (receipt.code, receipt.message) == ("contract_bad_value", BAD_VALUE_MESSAGE)
    assert receipt.events == ()
    from chain.state import BlockState

    assert BlockState(ledger.store).get(b"alarm/before") is None  # the call's writes are undone


def test_scheduling_in_the_past_fails_the_call() -> None:
    ledger, producer, call = _chain()
    _, result = producer.produce([call("set", [[1], []])])
    assert result.receipts[0].code == "bad_schedule"


def test_tasks_replay_identically_on_a_replica() -> None:
    ledger, producer, call = _chain()
    producer.produce([call("set", [[2, 4], [ledger.head.time_ms + 1500]])])
    for _ in range(4):
        producer.produce([])
    replica = Ledger(Store.in_memory(), ledger.genesis, ledger.runtime)
    for h in range(1, ledger.head.height + 1):
        replica.apply_committed(ledger.store.block(h), ledger.store.certificate(h))
    assert replica.head == ledger.head
