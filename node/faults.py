"""Faults a test harness injects into one node process: a skewed clock, a slow disk, a lying
validator. Enabled only by a test flag, never by a config file.

Why a flag in the environment: an operator's ``config.toml`` must not be one typo away from a
validator that equivocates, so the only way in is ``CLEARCHAIN_TEST_FAULTS``, set by the fault
harness (``clearchain chaos``) on the processes it starts. Its value is a JSON object:

    {"clock_skew_ms": int,        added to every reading of this node's wall clock (+ ahead, - behind)
     "fsync_delay_ms": int,       0..5000: added to every fsync and every store write (a slow disk)
     "byzantine": str | null,     "equivocate" | "invalid_block" | "garbage" (node/byzantine.py)
     "seed": int}                 for the byzantine behaviour's choices, so a run can be replayed

A node started with faults logs them at WARNING on start, and ``/status`` shows them.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Final

from chain.errors import ClearchainError

ENV_VAR: Final = "CLEARCHAIN_TEST_FAULTS"
BYZANTINE_MODES: Final = ("equivocate", "invalid_block", "garbage")
FSYNC_DELAY_MS_MAX: Final = 5_000
CLOCK_SKEW_MS_MAX: Final = 24 * 3600 * 1000


class FaultsError(ClearchainError):
    """A ``CLEARCHAIN_TEST_FAULTS`` value that cannot be used (code ``faults_invalid``)."""


@dataclass(frozen=True, slots=True)
class Faults:
    clock_skew_ms: int = 0
    fsync_delay_ms: int = 0
    byzantine: str | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        for name, bound in (
            ("clock_skew_ms", CLOCK_SKEW_MS_MAX),
            ("fsync_delay_ms", FSYNC_DELAY_MS_MAX),
            ("seed", 2**63 - 1),
        ):
            value = getattr(self, name)
            low = -bound if name == "clock_skew_ms" else 0
            if type(value) is not int or not low <= value <= bound:
                raise FaultsError("faults_invalid", f"{ENV_VAR}: {name} must be an integer in {low}..{bound}")
        if self.byzantine is not None and self.byzantine not in BYZANTINE_MODES:
            raise FaultsError(
                "faults_invalid", f"{ENV_VAR}: byzantine must be one of {', '.join(BYZANTINE_MODES)}"
            )

    @property
    def active(self) -> bool:
        return self != Faults()

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def env(self) -> dict[str, str]:
        """The environment entry that gives a child process these faults."""
        return {ENV_VAR: json.dumps(self.to_json(), sort_keys=True)}

    def clock(self, base: Callable[[], int]) -> Callable[[], int]:
        """``base`` (milliseconds) shifted by the skew."""
        if not self.clock_skew_ms:
            return base
        skew = self.clock_skew_ms
        return lambda: base() + skew

    def slow_disk(self, backend: Any) -> None:
        """Delay every fsync of this process (WAL, signer state) and every write of ``backend``
        (the store's LevelDB batches, written with sync) by ``fsync_delay_ms``. The node's loop
        blocks meanwhile, which is what a slow disk does to a single-threaded node."""
        if not self.fsync_delay_ms:
            return
        delay_s = self.fsync_delay_ms / 1000
        fsync, write = os.fsync, backend.write

        def slow_fsync(fd: Any) -> None:
            time.sleep(delay_s)
            fsync(fd)

        def slow_write(puts: dict[bytes, bytes], deletes: list[bytes]) -> None:
            time.sleep(delay_s)
            write(puts, deletes)

        os.fsync = slow_fsync
        backend.write = slow_write


def faults_from_env(environ: Mapping[str, str] = os.environ) -> Faults | None:
    """The faults the test flag asks for, None without the flag. Raises FaultsError."""
    raw = environ.get(ENV_VAR)
    if not raw:
        return None
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise FaultsError("faults_invalid", f"{ENV_VAR} is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise FaultsError("faults_invalid", f"{ENV_VAR} must be a JSON object")
    unknown = sorted(set(doc) - {"clock_skew_ms", "fsync_delay_ms", "byzantine", "seed"})
    if unknown:
        raise FaultsError("faults_invalid", f"{ENV_VAR}: unknown keys {unknown}")
    return Faults(**doc)
