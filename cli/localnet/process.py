"""Node processes of a local network on 127.0.0.1: start, stop, kill -9, talk to their HTTP API.

Used by ``net up``, the benchmarks, the fault harness and the multi-process tests: one place that
knows how to launch ``clearchain node run`` and wait for it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

# The folder that holds the ``cli`` package: the checkout when run from one (or from an editable
# install), site-packages when installed from the wheel. Nothing here reads files below it; the
# tests use it as the repository's root.
CODE_ROOT = Path(__file__).resolve().parents[2]


def module_command(module: str, *args: str) -> list[str]:
    """``python -m MODULE ARGS`` with this interpreter, so that a child process runs the code this
    one runs. The child keeps the caller's working folder, so relative paths (``--dir
    .devnet/net``) mean what they meant to the caller."""
    return [sys.executable, "-m", module, *args]


class NodeProcess:
    def __init__(self, net_dir: Path, node: dict[str, Any]) -> None:
        self.home = net_dir / node["home"]
        self.name = node["name"]
        self.rpc = f"http://{node['rpc']}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.env: dict[str, str] = {}  # added to the child's environment (the fault harness's test flag)

    def start(self) -> None:
        out = open(self.home / "process.out", "ab")  # noqa: SIM115 (the child owns it)
        self.proc = subprocess.Popen(
            module_command("cli.main", "node", "run", "--home", str(self.home), "--quiet"),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **self.env} if self.env else None,
        )
        out.close()

    def pause(self) -> None:
        """SIGSTOP: the process keeps its sockets and state but runs no code (a long GC pause, a VM
        migration); its peers see silence, not a closed connection."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill9(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def terminate(self, timeout: float = 15.0) -> int | None:
        """SIGTERM and wait; SIGKILL if it does not stop in time. Returns the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
            return None

    def get(self, path: str, timeout: float = 5.0) -> Any:
        with urllib.request.urlopen(self.rpc + path, timeout=timeout) as resp:
            return json.loads(resp.read())

    def post(self, path: str, doc: Any, timeout: float = 10.0) -> tuple[int, Any]:
        req = urllib.request.Request(
            self.rpc + path, data=json.dumps(doc).encode(), headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def rss_mb(self) -> float | None:
        """Resident memory of the running process, None if there is none."""
        if not self.alive():
            return None
        assert self.proc is not None
        kib = rss_kib(self.proc.pid)
        return None if kib is None else kib / 1024

    def status(self) -> dict[str, Any] | None:
        try:
            return self.get("/status", timeout=2.0)  # type: ignore[no-any-return]
        except (OSError, ValueError):
            return None

    def height(self) -> int:
        s = self.status()
        return -1 if s is None else int(s["height"])

    def log_tail(self, lines: int = 40) -> str:
        text = ""
        for name in ("process.out", "node.log"):
            path = self.home / name
            if path.exists():
                text += (
                    f"--- {self.name} {name}\n"
                    + "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
                    + "\n"
                )
        return text


def rss_kib(pid: int) -> int | None:
    """Resident memory of process ``pid`` in KiB (Linux /proc), None if it cannot be read."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def wait_until(predicate: Any, timeout: float, what: str, nodes: list[NodeProcess] = ()) -> None:  # type: ignore[assignment]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(
        f"timed out after {timeout}s waiting for {what}\n" + "".join(n.log_tail() for n in nodes)
    )
