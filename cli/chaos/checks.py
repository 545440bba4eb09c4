"""What a fault run must not have broken, read from the nodes' stores after they stop.

Why from the stores and not the API: a store is what a node will serve and audit forever, and
reading it directly needs no node to be honest or alive. The checks:

- **forks**: heights at which two stores hold different blocks;
- **root mismatches**: heights at which two stores hold different state roots;
- **certificates**: every stored block's commit certificate verifies against its validator set;
- **lost**: transactions a node acknowledged as committed (at a height) that some store does not
  hold at that height and index;
- (the harness adds **lagging**: stores below the height every node had to reach);
- **audit**: ``clearchain audit --home`` (a separate process, trusting only the genesis file)
  re-executes each store's whole history;
- the lying validator's record: its slashed bond and findings, and the blocks it proposed that
  were committed (an ``invalid_block`` liar must have none).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chain.errors import ClearchainError
from chain.store import Store
from chain.validation import validate_certificate
from cli.localnet.process import module_command

AUDIT_TIMEOUT_S = 300


def check_stores(
    homes: Mapping[str, Path], acked: Mapping[bytes, tuple[int, int]], liar: tuple[str, str] | None = None
) -> dict[str, Any]:
    """Compare the stores under ``homes`` (node name -> home); ``acked``: tx hash -> (height, index);
    ``liar``: (validator key hex, participant id) of a lying validator."""
    stores = {name: Store.open_leveldb(home / "db") for name, home in sorted(homes.items())}
    try:
        heads = {name: _height(s) for name, s in stores.items()}
        top = max(heads.values(), default=0)
        forks, mismatches, bad_certs = [], [], []
        for height in range(1, top + 1):
            headers = {n: s.header(height) for n, s in stores.items() if heads[n] >= height}
            if len({h.hash() for h in headers.values() if h is not None}) > 1 or None in headers.values():
                forks.append(height)
            if len({h.state_root for h in headers.values() if h is not None}) > 1:
                mismatches.append(height)
            bad_certs += [
                f"{n}@{height}" for n, s in stores.items() if heads[n] >= height and not _cert_ok(s, height)
            ]
        lost = sorted(
            f"{tx.hex()[:16]}@{where[0]} on {n}"
            for tx, where in acked.items()
            for n, s in stores.items()
            if s.tx_location(tx) != where
        )
        first = next(iter(stores.values()))
        out: dict[str, Any] = {
            "heights": heads,
            "forks": forks,
            "root_mismatches": mismatches,
            "bad_certificates": bad_certs,
            "lost": lost,
            "acked": len(acked),
        }
        if liar is not None:
            out["liar"] = _liar_record(first, heads[next(iter(stores))], *liar)
        return out
    finally:
        for s in stores.values():
            s.close()


def _height(store: Store) -> int:
    head = store.head()
    return 0 if head is None else head.height


def _cert_ok(store: Store, height: int) -> bool:
    header, cert = store.header(height), store.certificate(height)
    if header is None or cert is None:
        return False
    vset = store.validator_set(header.validators_hash)
    chain_id = store.chain_id()
    if vset is None or chain_id is None:
        return False
    try:
        validate_certificate(cert, chain_id, vset, height, header.hash())
    except ClearchainError:
        return False
    return True


def _liar_record(store: Store, head: int, liar_key_hex: str, participant: str) -> dict[str, Any]:
    """What the chain holds against the validator whose key is ``liar_key_hex``."""
    key = bytes.fromhex(liar_key_hex)
    proposed = [h for h in range(1, head + 1) if (hd := store.header(h)) is not None and hd.proposer == key]
    slashed, findings = 0, 0
    for height in range(1, head + 1):
        for receipt in store.receipts(height) or []:
            for _, name, fields in receipt.events:
                f = dict(fields)
                if name == "evidence_accepted" and f.get("validator") == liar_key_hex:
                    findings += 1
                elif (
                    name == "bond_slashed"
                    and f.get("participant") == participant
                    and f.get("reason") == "double_sign"
                ):
                    slashed += int(f["amount"])
    return {"blocks_proposed": len(proposed), "evidence_accepted": findings, "slashed": slashed}


def audit_homes(homes: Mapping[str, Path], genesis: Path) -> dict[str, Any]:
    """``clearchain audit --home`` on every home at once; name -> {"ok", "height"} or {"ok": False, "error"}."""
    procs = {
        name: subprocess.Popen(
            module_command("cli.main", "audit", "--home", str(home), "--genesis", str(genesis), "--json", "--quiet"),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for name, home in sorted(homes.items())
    }  # fmt: skip
    out: dict[str, Any] = {}
    for name, proc in procs.items():
        try:
            stdout, stderr = proc.communicate(timeout=AUDIT_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            out[name] = {"ok": False, "error": f"audit did not finish in {AUDIT_TIMEOUT_S}s"}
            continue
        if proc.returncode != 0:
            out[name] = {"ok": False, "error": (stdout + stderr).strip()[-400:]}
            continue
        doc = json.loads(stdout)
        out[name] = {"ok": True, "height": doc.get("height")}
    return out
