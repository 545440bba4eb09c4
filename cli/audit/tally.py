"""What an audit counts as it goes: blocks, transactions, trades settled and failed, value moved
per asset, and each validator's signing record.

It reads only verified blocks and their re-executed receipts (``chain/audit.py``), never the
source's own receipts, so every figure is one the auditor computed itself. Event names are the
settlement and custody contracts' (docs/CONTRACTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chain.audit import AuditedBlock
from chain.display import format_amount
from chain.state import StateReader
from contracts.instruments import instrument_in

MISSED_SHOWN_MAX = 10


@dataclass
class AssetFlow:
    delivered: int = 0  # moved by settlement: securities delivered, or cash paid as consideration
    deposited: int = 0
    withdrawn: int = 0


@dataclass
class SigningRecord:
    """A certificate carries the precommits its node had gathered when it committed (a quorum,
    not always all), so a block's signers are the union of the stored certificate and the one
    the next block carries; a validator absent from both may still have voted, late."""

    name: str
    in_set: int = 0  # blocks this validator could sign
    signed: int = 0  # blocks whose certificates carry its precommit
    proposed: int = 0
    missed: list[int] = field(default_factory=list)  # the first few heights it is absent from


@dataclass
class AuditTally:
    blocks: int = 0
    txs: int = 0
    txs_failed: int = 0
    tasks: int = 0
    trades_settled: int = 0
    trades_failed: int = 0
    first_height: int | None = None
    last_height: int | None = None
    first_time_ms: int | None = None
    last_time_ms: int | None = None
    assets: dict[str, AssetFlow] = field(default_factory=dict)
    validators: dict[bytes, SigningRecord] = field(default_factory=dict)
    _currency: dict[str, str | None] = field(default_factory=dict)
    _pending: tuple[int, Any, set[bytes]] | None = None  # the last height, its set and signers

    def add(self, audited: AuditedBlock, state: StateReader) -> None:
        block = audited.block
        h = block.height
        self.blocks += 1
        self.first_height = h if self.first_height is None else self.first_height
        self.last_height = h
        self.first_time_ms = block.header.time_ms if self.first_time_ms is None else self.first_time_ms
        self.last_time_ms = block.header.time_ms
        self.txs += len(block.txs)
        if self._pending is not None and block.last_commit is not None:
            self._pending[2].update(k for k, _ in block.last_commit.signatures)
        self.finish()
        self._pending = (h, audited.validators, set(audited.signers))
        for v in audited.validators.validators:
            self.validators.setdefault(v.pubkey, SigningRecord(v.name or v.pubkey.hex()[:16]))
        proposer = self.validators.get(block.header.proposer)
        if proposer is not None:
            proposer.proposed += 1
        for stx, receipt in zip(block.txs, audited.receipts, strict=False):
            if not receipt.ok:
                self.txs_failed += 1
                if stx.tx.contract == "settlement":
                    self.trades_failed += (
                        len(stx.tx.args[0])
                        if stx.tx.method == "settle_batch"
                        and stx.tx.args
                        and isinstance(stx.tx.args[0], list)
                        else 1
                    )
        self.tasks += len(audited.receipts) - len(block.txs)
        for receipt in audited.receipts:
            for contract, name, fields in receipt.events:
                self._event(contract, name, dict(fields), state)

    def finish(self) -> None:
        """Count the signers of the last height seen (called again by each add and by to_json)."""
        if self._pending is None:
            return
        h, validators, signers = self._pending
        self._pending = None
        for v in validators.validators:
            record = self.validators[v.pubkey]
            record.in_set += 1
            if v.pubkey in signers:
                record.signed += 1
            elif len(record.missed) < MISSED_SHOWN_MAX:
                record.missed.append(h)

    def _event(self, contract: str, name: str, f: dict[str, Any], state: StateReader) -> None:
        if contract == "settlement" and name == "trade_settled":
            self.trades_settled += 1
            self._flow(f["instrument"]).delivered += f["quantity"]
            currency = self._currency_of(f["instrument"], state)
            if currency is not None:
                self._flow(currency).delivered += f["consideration"]
        elif contract == "settlement" and name == "trade_failed":
            self.trades_failed += 1
        elif contract == "custody" and name == "deposited":
            self._flow(f["asset"]).deposited += f["amount"]
        elif contract == "custody" and name == "withdrawn":
            self._flow(f["asset"]).withdrawn += f["amount"]

    def _flow(self, asset: str) -> AssetFlow:
        return self.assets.setdefault(asset, AssetFlow())

    def _currency_of(self, instrument: str, state: StateReader) -> str | None:
        if instrument not in self._currency:
            record = instrument_in(state, instrument)
            self._currency[instrument] = None if record is None else record.currency
        return self._currency[instrument]

    def decimals(self, state: StateReader) -> dict[str, int]:
        out = {}
        for asset in self.assets:
            record = instrument_in(state, asset)
            out[asset] = 0 if record is None else record.decimals
        return out

    def to_json(self, state: StateReader) -> dict[str, Any]:
        self.finish()
        decimals = self.decimals(state)
        show = lambda asset, v: format_amount(v, decimals[asset])  # noqa: E731
        return {
            "blocks": self.blocks,
            "heights": [self.first_height, self.last_height],
            "time_ms": [self.first_time_ms, self.last_time_ms],
            "txs": self.txs,
            "txs_failed": self.txs_failed,
            "tasks": self.tasks,
            "trades_settled": self.trades_settled,
            "trades_failed": self.trades_failed,
            "assets": {
                a: {
                    "delivered": show(a, f.delivered),
                    "deposited": show(a, f.deposited),
                    "withdrawn": show(a, f.withdrawn),
                }
                for a, f in sorted(self.assets.items())
            },
            "validators": [
                {
                    "pub_key": k.hex(),
                    "name": r.name,
                    "in_set": r.in_set,
                    "signed": r.signed,
                    "proposed": r.proposed,
                    "missed_first": r.missed,
                }
                for k, r in sorted(self.validators.items(), key=lambda kv: kv[1].name)
            ],
        }
