"""``clearchain chaos``: break a real local network on purpose, then prove it kept its promises.

Modelled on CometBFT's e2e perturbations and Jepsen's Tendermint analysis. One run:

1. a fresh network of ``node run`` processes on 127.0.0.1 (LevelDB, every fsync on), each p2p
   link through a proxy the harness controls (``cli.chaos.proxy``); one validator may get a
   skewed clock, one a slow disk, one a byzantine mode (``node.faults``, the test flag);
2. trades through the public API the whole time, recording what was acknowledged as committed
   (``cli.chaos.traffic``);
3. a seeded schedule of fault windows, one at a time: ``kill`` (SIGKILL, restart at the end),
   ``pause`` (SIGSTOP/SIGCONT), ``partition`` (one node cut off, or the network split in halves
   so no side has a quorum), ``blackhole`` (a node's links silently forward nothing), ``delay``
   (a node's links add latency);
4. faults end: every link healed, every node running; the network must commit again within
   ``RESUME_BOUND_S``; traffic drains; the nodes stop;
5. checks (``cli.chaos.checks``): no forks, equal state roots at equal heights, certificates
   verify, nothing acknowledged lost, no node left behind, ``clearchain audit`` passes on every
   store, and the liar's record (equivocation slashed its bond; invalid blocks never committed).

The schedule, the targets and every byzantine choice come from the seed; the operating system's
timing does not, so a seed replays the same faults, not the same interleaving.
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from cli.chaos.checks import audit_homes, check_stores
from cli.chaos.proxy import LinkProxy
from cli.chaos.traffic import Traffic
from cli.localnet import devnet
from cli.localnet.network import init_network
from cli.localnet.process import NodeProcess, wait_until
from node.config import ConsensusSection, load_config, render
from node.faults import BYZANTINE_MODES, Faults

FAULT_KINDS: Final = ("kill", "pause", "partition", "blackhole", "delay")
CHAOS_CONSENSUS: Final = ConsensusSection(
    timeout_propose_ms=1000, timeout_prevote_ms=300, timeout_precommit_ms=300, timeout_delta_ms=200,
    commit_wait_ms=20, heartbeat_ms=500,
)  # fmt: skip
WARMUP_S: Final = 3.0  # of clean running before the first fault
WINDOW_S: Final = (2.0, 6.0)  # a fault lasts this long
GAP_S: Final = (1.0, 3.0)  # between two faults
RESUME_BOUND_S: Final = 30.0  # faults ended -> every node RESUME_BLOCKS past the height then
RESUME_BLOCKS: Final = 3
DRAIN_S: Final = 30.0
START_S: Final = 60.0
SKEWS_MS: Final = (-4000, -1500, 1500, 4000)  # within the default clock_drift_ms (10 s)
FSYNC_DELAYS_MS: Final = (10, 30, 60)


@dataclass(frozen=True, slots=True)
class RunPlan:
    seed: int
    validators: int = 4
    duration_s: float = 40.0
    kinds: tuple[str, ...] = FAULT_KINDS
    byzantine: str | None = None
    clock_skew_ms: int = 0  # on validator 1
    fsync_delay_ms: int = 0  # on validator 2

    @property
    def liar(self) -> int | None:
        return None if self.byzantine is None else self.validators - 1


@dataclass(frozen=True, slots=True)
class FaultWindow:
    at_s: float
    kind: str
    target: int
    length_s: float
    groups: tuple[tuple[int, ...], ...] = ()  # partition: the sides
    delay_ms: int = 0

    def describe(self) -> str:
        what = f"{self.kind} node{self.target}"
        if self.kind == "partition":
            what = "partition " + " | ".join(",".join(f"node{i}" for i in g) for g in self.groups)
        elif self.kind == "delay":
            what += f" +{self.delay_ms}ms"
        return f"{self.at_s:5.1f}s {what} for {self.length_s:.1f}s"


def schedule(plan: RunPlan) -> list[FaultWindow]:
    """The run's fault windows, a function of the plan alone."""
    rng = random.Random(plan.seed)
    out: list[FaultWindow] = []
    at = WARMUP_S
    n = plan.validators
    while at < plan.duration_s - WINDOW_S[0]:
        kind = rng.choice(plan.kinds)
        length = round(min(rng.uniform(*WINDOW_S), plan.duration_s - at), 1)
        target = rng.randrange(n)
        groups: tuple[tuple[int, ...], ...] = ()
        if kind == "partition":
            if rng.random() < 0.5:
                groups = (tuple(i for i in range(n) if i != target), (target,))
            else:
                order = rng.sample(range(n), n)
                groups = (tuple(sorted(order[: n // 2])), tuple(sorted(order[n // 2 :])))
        delay = rng.choice((100, 300, 800)) if kind == "delay" else 0
        out.append(FaultWindow(round(at, 1), kind, target, length, groups, delay))
        at += length + rng.uniform(*GAP_S)
    return out


def plan_runs(
    seed: int, runs: int, validators: int, duration_s: float, kinds: tuple[str, ...], byzantine: str
) -> list[RunPlan]:
    """``runs`` plans from one seed; ``byzantine`` "all" rotates through the modes, "none" has none."""
    plans = []
    for k in range(runs):
        rng = random.Random(seed * 1_000_003 + k)
        mode = (
            BYZANTINE_MODES[k % len(BYZANTINE_MODES)]
            if byzantine == "all"
            else (None if byzantine == "none" else byzantine)
        )
        plans.append(RunPlan(
            seed=seed + k, validators=validators, duration_s=duration_s, kinds=kinds, byzantine=mode,
            clock_skew_ms=rng.choice(SKEWS_MS), fsync_delay_ms=rng.choice(FSYNC_DELAYS_MS),
        ))  # fmt: skip
    return plans


class ChaosNet:
    """The network of one run: node processes, the link proxy, which nodes are down."""

    def __init__(self, directory: Path, plan: RunPlan) -> None:
        self.dir = directory
        self.plan = plan
        doc = init_network(directory, plan.validators, 0, base_port=0, consensus=CHAOS_CONSENSUS)
        self.nodes = [NodeProcess(directory, n) for n in doc["nodes"]]
        self.names = [n["name"] for n in doc["nodes"]]
        self.proxy = LinkProxy()
        self.down: set[int] = set()
        self.peak_rss_mb: dict[str, float] = {}
        self._route_links(doc["nodes"])
        for i, node in enumerate(self.nodes):
            faults = self._faults(i)
            if faults.active:
                node.env = faults.env()

    def _route_links(self, nodes: list[dict[str, Any]]) -> None:
        """Point every validator's peers at proxies: node i reaches node j only through i->j."""
        for i, node in enumerate(self.nodes):
            peers = []
            for j, other in enumerate(nodes):
                if j != i:
                    host, port = other["p2p"].rsplit(":", 1)
                    addr = self.proxy.add_link(self.names[i], self.names[j], (host, int(port)))
                    peers.append(f"{addr[0]}:{addr[1]}")
            cfg = load_config(node.home)
            cfg = dataclasses.replace(cfg, p2p=dataclasses.replace(cfg.p2p, peers=peers))
            (node.home / "config.toml").write_text(render(cfg))

    def _faults(self, i: int) -> Faults:
        p = self.plan
        return Faults(
            clock_skew_ms=p.clock_skew_ms if i == 1 else 0,
            fsync_delay_ms=p.fsync_delay_ms if i == 2 else 0,
            byzantine=p.byzantine if i == p.liar else None,
            seed=p.seed,
        )

    def start(self) -> None:
        self.proxy.start()
        for node in self.nodes:
            node.start()

        def first_block() -> bool:
            dead = [n.name for n in self.nodes if not n.alive()]
            if dead:
                raise RuntimeError(
                    f"{', '.join(dead)} exited at start:\n" + "".join(n.log_tail() for n in self.nodes)
                )
            return all(n.height() >= 1 for n in self.nodes)

        wait_until(first_block, START_S, "the first block", self.nodes)

    def up(self) -> list[int]:
        return [i for i in range(len(self.nodes)) if i not in self.down]

    def sample_memory(self) -> None:
        for name, node in zip(self.names, self.nodes, strict=True):
            rss = node.rss_mb()
            if rss is not None:
                self.peak_rss_mb[name] = max(self.peak_rss_mb.get(name, 0.0), round(rss, 1))

    def heights(self) -> list[int]:
        return [n.height() for n in self.nodes]

    def inject(self, w: FaultWindow) -> None:
        node, name = self.nodes[w.target], self.names[w.target]
        others = [self.names[j] for j in range(len(self.nodes)) if j != w.target]
        if w.kind == "kill":
            node.kill9()
            self.down.add(w.target)
        elif w.kind == "pause":
            node.pause()
            self.down.add(w.target)
        elif w.kind == "partition":
            self.proxy.partition([[self.names[i] for i in g] for g in w.groups])
        elif w.kind == "blackhole":
            for other in others:
                self.proxy.blackhole(name, other)
        elif w.kind == "delay":
            for other in others:
                self.proxy.delay(name, other, w.delay_ms)

    def heal(self, w: FaultWindow) -> None:
        if w.kind == "kill":
            self.nodes[w.target].start()
        elif w.kind == "pause":
            self.nodes[w.target].resume()
        else:
            self.proxy.heal_all()
        self.down.discard(w.target)

    def stop(self) -> dict[str, int | None]:
        """Stop every node (SIGTERM) and the proxy; the nodes' exit statuses."""
        codes = {self.names[i]: n.terminate(timeout=20) for i, n in enumerate(self.nodes)}
        self.proxy.stop()
        return codes

    def homes(self) -> dict[str, Path]:
        return {self.names[i]: n.home for i, n in enumerate(self.nodes)}


def run_once(plan: RunPlan, directory: Path, say: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """One seeded run; returns its result (``violations`` empty when every check passed)."""
    windows = schedule(plan)
    net = ChaosNet(directory, plan)
    traffic: Traffic | None = None
    result: dict[str, Any] = {
        "seed": plan.seed,
        "plan": _plan_json(plan),
        "faults": [w.describe() for w in windows],
    }
    try:
        net.start()
        traffic = Traffic([n.rpc for n in net.nodes], net.up, plan.seed)
        if plan.liar is not None and plan.byzantine == "equivocate":
            traffic.submit(
                f"validator-{plan.liar}", "bonds", "post", [f"V{plan.liar}-HOUSE", "USD", 100_000_00, None]
            )
        traffic.start()
        began = time.monotonic()
        for w in windows:
            _sleep_until(began + w.at_s)
            say(f"  fault {w.describe()}")
            net.inject(w)
            _sleep_until(began + w.at_s + w.length_s)
            net.sample_memory()
            net.heal(w)
        _sleep_until(began + plan.duration_s)
        net.sample_memory()
        result["resume_s"] = _resume(net)
        drained = traffic.stop(DRAIN_S)
        target = max(net.heights())
        try:
            wait_until(lambda: min(net.heights()) >= target, DRAIN_S, f"every node at height {target}")
        except AssertionError:
            pass  # reported as lagging below
        result.update(
            sent=traffic.sent,
            acked=len(traffic.acked),
            drained=drained,
            client_errors=dict(traffic.errors),
            refused_for_good={h.hex()[:16]: code for h, code in traffic.dropped.items()},
        )
    finally:
        net.sample_memory()
        result["peak_rss_mb"] = net.peak_rss_mb
        result["exit_codes"] = net.stop()
        if traffic is not None:
            traffic.stop(0)
    liar = None
    if plan.liar is not None:
        liar = (devnet.validator_key(plan.liar).key_id, f"validator-{plan.liar}")
    checks = check_stores(net.homes(), traffic.acked if traffic else {}, liar)
    checks["lagging"] = sorted(n for n, h in checks["heights"].items() if h < target)
    result["checks"] = checks
    result["audit"] = audit_homes(net.homes(), directory / "genesis.json")
    result["violations"] = violations(result, plan)
    return result


def _resume(net: ChaosNet) -> float | None:
    """Seconds from the end of the faults until every node is RESUME_BLOCKS past the height then."""
    healed = time.monotonic()
    base = max(net.heights())
    deadline = healed + RESUME_BOUND_S
    while time.monotonic() < deadline:
        if min(net.heights()) >= base + RESUME_BLOCKS:
            return round(time.monotonic() - healed, 2)
        time.sleep(0.2)
    return None


def violations(result: dict[str, Any], plan: RunPlan) -> list[str]:
    """Every broken promise of one run, in words."""
    c = result["checks"]
    out = []
    for key in ("forks", "root_mismatches", "bad_certificates", "lost", "lagging"):
        if c[key]:
            out.append(f"{key}: {c[key][:10]}")
    if result.get("resume_s") is None:
        out.append(f"no resume within {RESUME_BOUND_S}s of the faults ending")
    out += [f"audit failed on {n}: {a.get('error')}" for n, a in result["audit"].items() if not a["ok"]]
    out += [f"{n} exited with {code}" for n, code in result["exit_codes"].items() if code != 0]
    if not result.get("acked"):
        out.append("no transaction was acknowledged")
    liar = c.get("liar")
    if (
        liar is not None
        and plan.byzantine == "equivocate"
        and not (liar["evidence_accepted"] and liar["slashed"])
    ):
        out.append(f"equivocation not slashed: {liar}")
    if liar is not None and plan.byzantine == "invalid_block" and liar["blocks_proposed"]:
        out.append(f"a block the liar proposed was committed: {liar}")
    return out


def _plan_json(plan: RunPlan) -> dict[str, Any]:
    doc = dataclasses.asdict(plan)
    doc["kinds"] = list(plan.kinds)
    return doc


def _sleep_until(t: float) -> None:
    time.sleep(max(0.0, t - time.monotonic()))
