"""What a simulation is asked to do and what it reports: the config, its faults, the result.

Why a module of its own: the command line (``clearchain sim``) and the tests build configs and read
results without the simulator's machinery, and ``node.simnet`` stays about running the drivers.
Configs that cannot run are refused with ``SimConfigError`` (``bad_sim_config``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.errors import ClearchainError
from node.consensus import TimeoutParams

MODES = ("equivocate", "silent", "invalid", "forge")


class SimConfigError(ClearchainError):
    """A simulation config that cannot run (too many byzantine, a malformed partition ...)."""


@dataclass(frozen=True, slots=True)
class Partition:
    """Messages between different groups are dropped from ``start_ms`` until ``end_ms``; a node
    in no group is cut off from everyone."""

    groups: tuple[tuple[int, ...], ...]
    start_ms: int
    end_ms: int


@dataclass(frozen=True, slots=True)
class Crash:
    """Node ``node`` crashes at ``at_ms`` and restarts at ``restart_ms``. With ``before_send`` it
    crashes in its first batch of effects after ``at_ms`` that holds a vote: the batch is in its
    WAL and signer record but never sent, and it restarts ``restart_ms - at_ms`` later."""

    node: int
    at_ms: int
    restart_ms: int
    before_send: bool = False


@dataclass(frozen=True, slots=True)
class SimConfig:
    validators: int = 4
    byzantine: int = 0  # the last ``byzantine`` indices, all in ``mode``
    mode: str = "equivocate"
    seed: int = 0
    heights: int = 5  # target: every honest node decides this many heights
    drop: float = 0.0
    dup: float = 0.0
    delay_ms: tuple[int, int] = (5, 50)
    partitions: tuple[Partition, ...] = ()
    crashes: tuple[Crash, ...] = ()
    time_max_ms: int = 600_000
    events_max: int = 5_000_000
    real_crypto: bool = False
    signer_guard: bool = True  # False: honest signers sign anything, so only the WAL prevents conflicts
    timeouts: TimeoutParams = TimeoutParams()


@dataclass
class SimResult:
    heights: list[int]  # heights decided, per node
    honest_height_max: int
    honest_height_min: int
    rounds_by_height: dict[int, int]  # rounds used (max over honest nodes) per height
    sent: int
    delivered: int
    dropped: int
    crashes: int  # crashes that happened
    synced: int  # heights honest nodes took from block sync rather than their own consensus
    safety_violations: list[str]
    evidence: list[tuple[int, int, int, int]]  # (validator, height, round, vote type)
    signer_conflicts: list[str]  # an honest signer signed two hashes for one (h, r, step)
    signer_refusals: int  # times an honest consensus asked its signer for a conflicting signature
    trace_hash: str
    time_ms: int
    events: int
    wall_s: float
    reached_target: bool

    @property
    def heights_per_wall_s(self) -> float:
        return self.honest_height_min / self.wall_s if self.wall_s > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["rounds_by_height"] = {str(h): r for h, r in sorted(self.rounds_by_height.items())}
        out["heights_per_wall_s"] = round(self.heights_per_wall_s, 2)
        return out


def check_config(cfg: SimConfig) -> None:
    """Raise SimConfigError ``bad_sim_config`` for a config that cannot run as asked."""
    n, f = cfg.validators, cfg.byzantine
    _require(1 <= n <= 256, f"validators must be 1..256, got {n}")
    _require(0 <= f and n > 3 * f, f"need n > 3f: {n} validators cannot tolerate {f} byzantine")
    _require(cfg.mode in MODES, f"mode must be one of {', '.join(MODES)}")
    _require(0 <= cfg.drop < 1 and 0 <= cfg.dup <= 1, "drop must be in [0, 1) and dup in [0, 1]")
    _require(0 <= cfg.delay_ms[0] <= cfg.delay_ms[1], f"delay {cfg.delay_ms} is not 0 <= min <= max")
    _require(min(cfg.heights, cfg.time_max_ms, cfg.events_max) >= 1, "heights and limits must be positive")
    for p in cfg.partitions:
        members = [i for g in p.groups for i in g]
        ok = (
            0 <= p.start_ms <= p.end_ms
            and len(set(members)) == len(members)
            and all(0 <= i < n for i in members)
        )
        _require(ok, f"partition {p}: needs 0 <= start <= end and disjoint groups of nodes 0..{n - 1}")
    for c in cfg.crashes:
        _require(
            0 <= c.node < n and 0 <= c.at_ms < c.restart_ms,
            f"crash {c}: needs node 0..{n - 1}, 0 <= at < restart",
        )


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SimConfigError("bad_sim_config", message)


def parse_partition(text: str) -> Partition:
    """``"0,1|2,3@1000-5000"``: groups separated by ``|``, active from 1000 ms until 5000 ms."""
    try:
        groups_text, window = text.split("@")
        start, end = (int(x) for x in window.split("-"))
        groups = tuple(tuple(int(x) for x in g.split(",") if x) for g in groups_text.split("|"))
    except ValueError as exc:
        raise SimConfigError("bad_sim_config", f"partition {text!r} is not like 0,1|2,3@1000-5000") from exc
    return Partition(groups, start, end)


def parse_crash(text: str) -> Crash:
    """``"2@1000-4000"``: node 2 crashes at 1000 ms and restarts at 4000 ms; a ``:before-send``
    suffix crashes it between persisting a vote and sending it."""
    body, _, flag = text.partition(":")
    try:
        node, window = body.split("@")
        start, end = (int(x) for x in window.split("-"))
        if flag not in ("", "before-send"):
            raise ValueError(flag)
        return Crash(int(node), start, end, before_send=flag == "before-send")
    except ValueError as exc:
        raise SimConfigError(
            "bad_sim_config", f"crash {text!r} is not like 2@1000-4000[:before-send]"
        ) from exc
