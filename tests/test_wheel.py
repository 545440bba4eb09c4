"""The package as a user gets it: build the wheel, install it into a fresh virtualenv outside the
repository, and run a local network and the demo with that install alone.

This is the check that packaging finds every package (``cli.scenarios`` was once left out, and
``clearchain demo`` failed outside the repository) and that nothing reads files relative to the
checkout: the commands run from a folder outside the repository, with the virtualenv's own
interpreter, and the test checks that the code they import is the installed copy.

Nothing is fetched: a test never reaches a package index (CI machines may have none). The wheel is
built without build isolation by the setuptools already installed, installed with ``--no-deps``,
and the third-party dependencies are the project virtualenv's, put on the fresh one's path by a
``.pth`` file (a plain path line: the project's own editable-install hook is not run, so
``clearchain`` itself can only come from the wheel). ``pip check`` then proves the wheel's declared
dependencies are all satisfied. The build runs on a copy of the sources, so the checkout gets no
``build/`` or ``*.egg-info``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
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
    env = {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CLEARCHAIN_NODE", "CLEARCHAIN_KEYS")
    }
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    # Build the wheel from a copy of the sources, offline.
    src = _copy_sources(tmp_path / "src")
    dist = tmp_path / "dist"
    offline = ["--no-deps", "--no-index", "--no-build-isolation"]
    _ok(
        _run(
            [sys.executable, "-m", "pip", "wheel", "-q", *offline, "-w", dist, src],
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
    _ok(
        _run(
            [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheels[0]],
            tmp_path,
            env,
            STEP_TIMEOUT_S,
        )
    )
    site = Path(
        _ok(
            _run(
                [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path, env, 30
            )
        ).strip()
    )
    (site / "project-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _ok(_run([python, "-m", "pip", "check"], tmp_path, env, STEP_TIMEOUT_S))

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
