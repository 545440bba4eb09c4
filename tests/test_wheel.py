"""The package as a user gets it: build the wheel, install it into a fresh virtualenv outside the
repository, and run a local network and the demo with that install alone.

This is the check that packaging finds every package (``cli.scenarios`` was once left out, and
``clearchain demo`` failed outside the repository) and that nothing reads files relative to the
checkout: the commands run from a folder outside the repository, with the virtualenv's own
interpreter, and the test checks that the code they import is the installed copy.

Dependencies come from the package index pip is configured with (here a local mirror and PyPI), as
for any ``pip install``: that checks the wheel's dependency list too, which borrowing the project
virtualenv's site-packages would not. The build runs on a copy of the sources, so the checkout gets
no ``build/`` or ``*.egg-info``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import venv
from pathlib import Path

import pytest

from cli.localnet.process import CODE_ROOT

pytestmark = pytest.mark.io

SOURCES = ("chain", "contracts", "node", "cli", "pyproject.toml", "README.md")
STEP_TIMEOUT_S = 60  # pip steps; the whole test takes about 25 s here
NODE_COUNT = 4


def _run(
    args: list[str | Path], cwd: Path, env: dict[str, str], timeout: float
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, (
        f"{result.args} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
    )
    return result.stdout


def _copy_sources(to: Path) -> Path:
    to.mkdir()
    for name in SOURCES:
        src = CODE_ROOT / name
        if src.is_dir():
            shutil.copytree(src, to / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(src, to / name)
    return to


def _kill_leftovers(work: Path, net_dir: Path) -> None:
    """SIGKILL every node process ``net down`` left running: only the pids this network recorded,
    and only while each is still a process started in ``work``."""
    try:
        pids = json.loads((net_dir / "pids.json").read_text())
    except (OSError, ValueError):
        return
    for pid in pids.values():
        try:
            if os.readlink(f"/proc/{int(pid)}/cwd") == str(work):
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def test_wheel_installs_outside_the_repo_and_runs_a_network_and_the_demo(tmp_path: Path) -> None:
    started = time.monotonic()
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CLEARCHAIN_NODE", "CLEARCHAIN_KEYS")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # Build the wheel from a copy of the sources (build isolation fetches the build backend).
    src = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    _ok(
        _run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", dist, src],
            tmp_path,
            env,
            STEP_TIMEOUT_S,
        )
    )
    wheels = sorted(dist.glob("clearchain-*.whl"))
    assert len(wheels) == 1, wheels

    # A fresh virtualenv without the system's or the project's site-packages, and the wheel in it.
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False, clear=True).create(env_dir)
    python, clearchain = env_dir / "bin" / "python", env_dir / "bin" / "clearchain"
    _ok(_run([python, "-m", "pip", "install", "-q", wheels[0]], tmp_path, env, STEP_TIMEOUT_S))

    # From a folder outside the repository, the installed copy is what runs.
    work = tmp_path / "work"
    work.mkdir()
    where = _ok(
        _run([python, "-c", "import cli.scenarios.netting, node, chain; print(cli.__file__)"], work, env, 30)
    )
    assert Path(where.strip()).is_relative_to(env_dir), where
    assert not Path(where.strip()).is_relative_to(CODE_ROOT), where

    net_dir = work / "net"
    try:
        out = _ok(_run([clearchain, "net", "init", "--dir", "net", "--base-port", "0"], work, env, 30))
        assert "wrote net: chain clearchain-dev (INSECURE dev keys)" in out
        assert out.count(" validator ") == NODE_COUNT

        out = _ok(_run([clearchain, "net", "up", "--dir", "net"], work, env, 90))
        assert out.count(" started (pid ") == NODE_COUNT
        assert "network up: net" in out

        out = _ok(_run([clearchain, "demo", "--dir", "net"], work, env, 90))
        assert f"clearchain demo: chain clearchain-dev, {NODE_COUNT} validators" in out
        assert "batch in block" in out and "3 settled, 3 failed" in out
        assert "matches the signed header" in out  # the audit step re-verified the history

        out = _ok(_run([clearchain, "net", "down", "--dir", "net"], work, env, 60))
        assert f"stopped {NODE_COUNT} node(s)" in out
    finally:
        _run([clearchain, "net", "down", "--dir", "net"], work, env, 60)
        _kill_leftovers(work, net_dir)
    assert time.monotonic() - started < 90, "the wheel test should stay under 90 s"
