"""Where a node's time goes during ``clearchain bench --profile``: py-spy samples one validator
process during the measurement window, and the samples are folded into shares by function.

py-spy is a development tool, not a dependency: without it on PATH (or next to this Python) the
option says so and the run goes on unprofiled. Shares are of the samples taken while the node was
on a CPU (py-spy leaves idle samples out), so they add up to where its CPU went.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def py_spy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes] | None:
    """Start sampling ``pid`` for ``seconds`` into ``out`` (py-spy's raw folded format)."""
    exe = py_spy()
    if exe is None:
        return None
    return subprocess.Popen(
        [exe, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds))), "--rate", "200",
         "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


# Functions whose inclusive share answers "where does the time go" for a validator.
PARTS: tuple[tuple[str, str], ...] = (
    ("transaction admission (decode, checks, signature)", "Node.submit "),
    ("  of which Ed25519 verification", "crypto_sign_open "),
    ("  of which decoding the signed tx", "SignedTx.decode "),
    ("proposing a block (executing it)", "LedgerApp.propose "),
    ("validating a proposed block (executing it)", "LedgerApp.validate "),
    ("  of which decoding the proposed block", "Block.decode "),
    ("execution: contract calls", "Registry.call "),
    ("execution: state root (state tree)", "StateTree.compute_update "),
    ("committing (store write, receipts)", "Ledger.commit "),
    ("account history index", "AccountIndex.on_commit "),
    ("HTTP API", "RequestHandler._handle_request "),
)


def fold(raw: Path, top: int = 15) -> dict[str, Any]:
    """Shares by named part (inclusive) and the top functions by own time."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        own[frames[-1]] += n
        for f in set(frames):
            inclusive[f] += n
    if total == 0:
        return {"samples": 0}

    def share(prefix: str) -> float:
        return round(sum(n for f, n in inclusive.items() if f.startswith(prefix)) / total, 3)

    return {
        "samples": total,
        "parts": {label: share(prefix) for label, prefix in PARTS},
        "top_self": [[f, round(n / total, 3)] for f, n in own.most_common(top)],
    }
