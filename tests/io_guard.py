"""The ``io`` marker, enforced: a test that opens a socket or starts a process must say so.

Why: ``make test-fast`` runs ``-m "not io"`` and must stay fast and free of timing, so a test
that quietly binds a port or spawns a node would slip timing back in. Instead of trusting a
list, this plugin watches every test's setup and call: ``socket.bind``, ``socket.connect``,
``subprocess.Popen`` and ``os.fork`` are wrapped, and an unmarked test that used one of them
fails with the name of what it did. ``socket.socketpair`` (asyncio's self-pipe) is not watched:
it never leaves the process.

Mark a whole module with ``pytestmark = pytest.mark.io`` (or one test with ``@pytest.mark.io``).
"""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Callable, Generator
from typing import Any

import pytest

_seen: list[str] = []
_watching = False


def _note(what: str) -> None:
    if _watching and what not in _seen:
        _seen.append(what)


def _wrap(owner: Any, name: str, what: str) -> None:
    original: Callable[..., Any] = getattr(owner, name)

    def watched(*args: Any, **kwargs: Any) -> Any:
        _note(what)
        return original(*args, **kwargs)

    watched.__name__ = name
    watched.__doc__ = original.__doc__
    setattr(owner, name, watched)


_wrap(socket.socket, "bind", "socket.bind")
_wrap(socket.socket, "connect", "socket.connect")
_wrap(socket.socket, "connect_ex", "socket.connect")
_wrap(subprocess.Popen, "__init__", "subprocess.Popen")
_wrap(os, "fork", "os.fork")


def _watch(item: pytest.Item) -> Generator[None, None, None]:
    global _watching
    _watching = item.get_closest_marker("io") is None
    try:
        yield
    finally:
        _watching = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    _seen.clear()
    yield from _watch(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    yield from _watch(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    if call.when == "call" and _seen and report.passed:
        report.outcome = "failed"
        report.longrepr = (
            f"{item.nodeid} used {', '.join(_seen)} without the io marker: add "
            "`pytestmark = pytest.mark.io` to its module (tests/io_guard.py says why)"
        )
