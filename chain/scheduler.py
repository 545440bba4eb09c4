"""Scheduled tasks: work a contract asks to run at the end of a future block.

Tasks are due at a block height or at a block time. They live in state, so they are part of the
state root and survive restarts:

    chain/task/h/<due height, u64 BE><task id, u64 BE>  -> [contract, task name, payload]
    chain/task/t/<due time_ms, u64 BE><task id, u64 BE> -> [contract, task name, payload]
    chain/task_seq                                       -> last task id used

At the end of a block the executor runs, in order, the height tasks with due <= height, then the
time tasks with due <= time_ms, each queue in (due, id) order, at most ``BLOCK_TASKS_MAX`` in all;
the rest stay due and run in the next block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.state import BlockState

_HEIGHT_QUEUE = b"chain/task/h/"
_TIME_QUEUE = b"chain/task/t/"
_SEQ = b"chain/task_seq"
DUE_MAX = 2**64 - 1


@dataclass(frozen=True, slots=True)
class Task:
    task_id: int
    key: bytes
    contract: str
    name: str
    payload: Any


def schedule(
    state: BlockState,
    contract: str,
    name: str,
    payload: Any,
    *,
    at_height: int | None = None,
    at_time_ms: int | None = None,
) -> int:
    """Add a task due at ``at_height`` or ``at_time_ms`` (exactly one); returns its id."""
    if (at_height is None) == (at_time_ms is None):
        raise ValueError("a task is due at a height or at a time, not both")
    due = at_height if at_height is not None else at_time_ms
    assert due is not None
    if type(due) is not int or not 0 <= due <= DUE_MAX:
        raise ValueError("due must be an unsigned 64-bit integer")
    seq = (state.get(_SEQ) or 0) + 1
    state.put(_SEQ, seq)
    queue = _HEIGHT_QUEUE if at_height is not None else _TIME_QUEUE
    key = queue + due.to_bytes(8, "big") + seq.to_bytes(8, "big")
    state.put(key, [contract, name, payload])
    return seq


def cancel(state: BlockState, key: bytes) -> None:
    state.delete(key)


def due_tasks(state: BlockState, height: int, time_ms: int, limit: int) -> list[Task]:
    """The tasks due at this block, in execution order, at most ``limit``."""
    tasks: list[Task] = []
    for queue, now in ((_HEIGHT_QUEUE, height), (_TIME_QUEUE, time_ms)):
        for key, value in state.iterate(queue):
            if len(tasks) >= limit:
                return tasks
            due = int.from_bytes(key[len(queue) : len(queue) + 8], "big")
            if due > now:
                break
            task_id = int.from_bytes(key[len(queue) + 8 :], "big")
            tasks.append(Task(task_id, key, value[0], value[1], value[2]))
    return tasks
