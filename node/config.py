"""A node's ``config.toml``: where it listens, whom it dials, its timeouts.

Read with the standard library's ``tomllib``; written by ``clearchain net init`` with
``render``. Unknown sections or keys are refused (a misspelt ``timout_propose_ms`` silently
ignored is a node that behaves differently from what its operator wrote), and every error names
the key. Paths are relative to the node's home.

    [node]       moniker, role ("validator" | "observer"), genesis, log_level
    [p2p]        listen "host:port", peers ["host:port", ...], observers ["<hex node key>", ...],
                 frame_bytes_max, queue_max
    [rpc]        listen "host:port" ("" for none), account_history (keep the per-account index
                 behind GET /accounts/{id}/history; a validator that serves no history can save
                 the 6-20 % of its CPU it costs under load)
    [consensus]  timeout_propose_ms, timeout_prevote_ms, timeout_precommit_ms, timeout_delta_ms,
                 commit_wait_ms, heartbeat_ms (0: the genesis parameter), clock_drift_ms,
                 block_txs_max, block_bytes_max (what this node puts in a block it proposes)
    [mempool]    txs_max, bytes_max
    [storage]    cache_mb (the decoded state-tree nodes held in memory), keep_versions (heights
                 of state-tree history kept for proofs; older versions are pruned), pruning
                 ("default": keep keep_versions heights | "archive": keep every height),
                 prune_batch_max (stale nodes the pruner deletes after one block, at most),
                 keep_blocks (0: keep every block, the default; else at least 1,000: the node
                 drops blocks, certificates and receipts older than head - keep_blocks and
                 answers requests for them with ``height_pruned``)
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from chain.block_pruning import KEEP_BLOCKS_MIN
from chain.errors import ClearchainError
from chain.limits import BLOCK_BYTES_MAX, BLOCK_TXS_MAX, ENCODED_BYTES_MAX

CONFIG_FILE = "config.toml"
ROLES = ("validator", "observer")


class ConfigError(ClearchainError):
    """A config.toml that cannot be used; the message names the key."""


@dataclass(frozen=True, slots=True)
class NodeSection:
    moniker: str = "node"
    role: str = "validator"
    genesis: str = "genesis.json"
    log_level: str = "info"


@dataclass(frozen=True, slots=True)
class P2PSection:
    listen: str = "127.0.0.1:26656"
    peers: list[str] = field(default_factory=list)
    observers: list[str] = field(default_factory=list)
    frame_bytes_max: int = ENCODED_BYTES_MAX
    queue_max: int = 4096


@dataclass(frozen=True, slots=True)
class RPCSection:
    listen: str = "127.0.0.1:26657"
    account_history: bool = True


@dataclass(frozen=True, slots=True)
class ConsensusSection:
    # CometBFT's default. The proposer executes its block before it sends it, so this must exceed
    # the time a full block takes to execute on a loaded node, or the round fails for nothing.
    timeout_propose_ms: int = 3000
    timeout_prevote_ms: int = 500
    timeout_precommit_ms: int = 500
    timeout_delta_ms: int = 250
    commit_wait_ms: int = 50
    heartbeat_ms: int = 0
    clock_drift_ms: int = 10_000
    block_txs_max: int = 5_000
    # A proposer's budget: encoded transaction bytes in one block, a stand-in for the time the
    # block takes to execute (about 900 single-trade txs or 3,500 batched trades). Bigger
    # blocks amortise less and risk the propose timeout; the chain's own cap is BLOCK_BYTES_MAX.
    block_bytes_max: int = 160 * 1024


@dataclass(frozen=True, slots=True)
class MempoolSection:
    txs_max: int = 50_000
    bytes_max: int = 256 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class StorageSection:
    cache_mb: int = 64
    # About five and a half hours at one block per second (docs/DECISIONS.md, "Issue 19").
    keep_versions: int = 20_000
    pruning: str = "default"
    # Above the ~7,000 nodes a block of 5,000 changed keys replaces, so the pruner keeps up at
    # peak (docs/BENCHMARKS.md, "Issue 19: versioned tree").
    prune_batch_max: int = 10_000
    # 0 keeps every block (the audit trail). A node that serves no history may keep fewer; the
    # runtime accepts any value >= 1 (tests), a config file at least KEEP_BLOCKS_MIN.
    keep_blocks: int = 0


PRUNING_MODES = ("default", "archive")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    node: NodeSection = field(default_factory=NodeSection)
    p2p: P2PSection = field(default_factory=P2PSection)
    rpc: RPCSection = field(default_factory=RPCSection)
    consensus: ConsensusSection = field(default_factory=ConsensusSection)
    mempool: MempoolSection = field(default_factory=MempoolSection)
    storage: StorageSection = field(default_factory=StorageSection)


_SECTIONS: dict[str, type] = {
    "node": NodeSection,
    "p2p": P2PSection,
    "rpc": RPCSection,
    "consensus": ConsensusSection,
    "mempool": MempoolSection,
    "storage": StorageSection,
}


def load_config(home: Path) -> NodeConfig:
    path = home / CONFIG_FILE
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError as exc:
        raise ConfigError(
            "config_missing", f"{path} not found (make one with `clearchain net init`)"
        ) from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError("config_syntax", f"{path}: {exc}") from exc
    return parse_config(doc, str(path))


def parse_config(doc: dict[str, Any], where: str = "config") -> NodeConfig:
    sections: dict[str, Any] = {}
    for name, value in doc.items():
        cls = _SECTIONS.get(name)
        if cls is None:
            raise ConfigError("config_unknown_key", f"{where}: unknown section [{name}]")
        if not isinstance(value, dict):
            raise ConfigError("config_type", f"{where}: [{name}] must be a table")
        sections[name] = _section(cls, value, f"{where}: {name}")
    cfg = NodeConfig(**sections)
    _check(cfg, where)
    return cfg


def _section(cls: type, values: dict[str, Any], where: str) -> Any:
    known = {f.name: f for f in fields(cls)}
    defaults = cls()
    out: dict[str, Any] = {}
    for key, value in values.items():
        if key not in known:
            raise ConfigError("config_unknown_key", f"{where}.{key} is not a known setting")
        want = type(getattr(defaults, key))
        if want is bool and type(value) is not bool:
            raise ConfigError("config_type", f"{where}.{key} must be true or false")
        if want is int and (type(value) is not int or value < 0):
            raise ConfigError("config_type", f"{where}.{key} must be a non-negative integer")
        if want is str and type(value) is not str:
            raise ConfigError("config_type", f"{where}.{key} must be a string")
        if want is list and (type(value) is not list or any(type(v) is not str for v in value)):
            raise ConfigError("config_type", f"{where}.{key} must be a list of strings")
        out[key] = value
    return cls(**out)


def _check(cfg: NodeConfig, where: str) -> None:
    if cfg.node.role not in ROLES:
        raise ConfigError("config_value", f"{where}: node.role must be one of {ROLES}")
    parse_address(cfg.p2p.listen, f"{where}: p2p.listen")
    for i, peer in enumerate(cfg.p2p.peers):
        parse_address(peer, f"{where}: p2p.peers[{i}]")
    for i, key in enumerate(cfg.p2p.observers):
        try:
            ok = len(bytes.fromhex(key)) == 32
        except ValueError:
            ok = False
        if not ok:
            raise ConfigError("config_value", f"{where}: p2p.observers[{i}] must be a 64-hex-digit node key")
    if cfg.rpc.listen:
        parse_address(cfg.rpc.listen, f"{where}: rpc.listen")
    if not 1 <= cfg.consensus.block_txs_max <= BLOCK_TXS_MAX:
        raise ConfigError("config_value", f"{where}: consensus.block_txs_max must be 1..{BLOCK_TXS_MAX}")
    if not 1024 <= cfg.consensus.block_bytes_max <= BLOCK_BYTES_MAX:
        raise ConfigError(
            "config_value", f"{where}: consensus.block_bytes_max must be 1024..{BLOCK_BYTES_MAX}"
        )
    if (
        cfg.consensus.timeout_propose_ms == 0
        or cfg.consensus.timeout_prevote_ms == 0
        or cfg.consensus.timeout_precommit_ms == 0
    ):
        raise ConfigError("config_value", f"{where}: consensus timeouts must be positive")
    if not 1024 <= cfg.p2p.frame_bytes_max <= ENCODED_BYTES_MAX:
        raise ConfigError("config_value", f"{where}: p2p.frame_bytes_max must be 1024..{ENCODED_BYTES_MAX}")
    if cfg.storage.pruning not in PRUNING_MODES:
        raise ConfigError("config_value", f"{where}: storage.pruning must be one of {PRUNING_MODES}")
    if cfg.storage.cache_mb == 0 or cfg.storage.keep_versions == 0 or cfg.storage.prune_batch_max == 0:
        raise ConfigError(
            "config_value", f"{where}: storage.cache_mb, keep_versions and prune_batch_max must be positive"
        )
    if cfg.p2p.queue_max == 0 or cfg.mempool.txs_max == 0 or cfg.mempool.bytes_max == 0:
        raise ConfigError("config_value", f"{where}: queue and mempool bounds must be positive")
    _check_keep_blocks(cfg.storage, where)


def _check_keep_blocks(storage: StorageSection, where: str) -> None:
    if 0 < storage.keep_blocks < KEEP_BLOCKS_MIN:
        raise ConfigError(
            "config_value",
            f"{where}: storage.keep_blocks must be 0 (keep all) or at least {KEEP_BLOCKS_MIN}, "
            "so a peer that was down for a while can still sync from this node",
        )


def parse_address(text: str, where: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError("config_value", f"{where}: {text!r} is not host:port")
    return host, int(port)


def render(cfg: NodeConfig) -> str:
    """The TOML text of ``cfg`` (every key, so an operator sees what can be set)."""
    lines: list[str] = []
    for name in _SECTIONS:
        section = getattr(cfg, name)
        lines.append(f"[{name}]")
        for f in fields(section):
            lines.append(f"{f.name} = {_toml(getattr(section, f.name))}")
        lines.append("")
    return "\n".join(lines)


def _toml(value: Any) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
