"""Scenario ``bonds``: bonds posted, slashed on proven misconduct, returned after a clean term.

The exchange posts a short-term bond. Validator-0 posts a bond; a double sign is then forged with
its (INSECURE, dev) consensus key, two precommits for different blocks at one (height, round),
and any participant (auditor-1) submits the pair: the validator's bond is slashed into the
insurance fund, a second submission is refused (``evidence_known``), and a forged signature is
refused (``bad_evidence_signature``). Oracle-3 posts a bond, then publishes a price three times
the others' (STARK): the oracle contract finds it out of band and the bond is slashed. Last, the
exchange's bond returns on its own at its term end. Ids and votes are unique per run (suffixed
with the height), and balances are read before and after, so the scenario can run again.
"""

from __future__ import annotations

import hashlib
from typing import Any

from chain.certificate import PRECOMMIT, vote_sign_bytes
from chain.keys import KeyPair, read_key_file
from cli.client import ApiError
from cli.localnet import devnet
from cli.scenarios import ScenarioRun

TITLE = "bonds: a double sign and an out-of-band price are slashed; a clean bond returns at its term end"
USD = "USD"
VALIDATOR = 0
OUTLIER_INSTRUMENT = "STARK"
EXCHANGE_TERM_BLOCKS = 3
OTHER_TERM_BLOCKS = 12
BPS = 10_000


def run(s: ScenarioRun) -> None:
    rules = s.view("bonds", "rules")
    exchange_bond, exchange_before, term_end = _post(
        s, rules, "xchg-alpha", "XA-HOUSE", "exchange", EXCHANGE_TERM_BLOCKS
    )
    _double_sign(s, rules)
    _out_of_band(s, rules)
    s.wait_height(term_end)
    bond = s.view("bonds", "bond", id=exchange_bond)
    s.check(bond["status"] == "returned" and bond["slashed"] == 0, f"exchange bond at term end: {bond}")
    after = s.balance("XA-HOUSE", USD)[0]
    s.check(
        after == exchange_before, f"XA-HOUSE USD {exchange_before} before the bond, {after} after its return"
    )
    s.echo(
        f"at height {term_end} the exchange's bond {exchange_bond} returned on its own, in full: XA-HOUSE is back to {_usd(after)}"
    )


def _usd(units: int) -> str:
    return f"USD {units // 100:,}.{units % 100:02d}"


def _held(s: ScenarioRun, account: str) -> int:
    """USD available in ``account``; 0 before the contract opens it (the insurance fund opens at
    the first slash)."""
    try:
        return s.balance(account, USD)[0]
    except ApiError as exc:
        if exc.code != "unknown_account":
            raise
        return 0


def _share(amount: int, bps: int) -> int:
    return -(-amount * bps // BPS)


def _post(
    s: ScenarioRun, rules: dict[str, Any], who: str, account: str, role: str, term: int
) -> tuple[int, int, int]:
    """``who`` posts the minimum bond of its role; returns (bond id, balance before, term end)."""
    amount = int(rules["min_bond"][role])
    term = max(term, int(rules["term_blocks"]["min"]))
    before = s.balance(account, USD)[0]
    events = s.send(who, "bonds", "post", [account, USD, amount, term])
    posted = next(f for _, n, f in events if n == "bond_posted")
    after = s.balance(account, USD)[0]
    s.check(after <= before - amount, f"{account} USD {before} -> {after}: the bond should leave the account")
    s.echo(
        f"{who} posted bond {posted['bond']}: {_usd(amount)} from {account} into {rules['pool_account']}, returns at height {posted['term_end_height']}"
    )
    return int(posted["bond"]), before, int(posted["term_end_height"])


def _validator_key(s: ScenarioRun) -> KeyPair:
    """The validator's consensus key: the node's key file, or the dev seed without a network folder."""
    if s.net_dir is not None and (s.net_dir / f"node{VALIDATOR}" / "node_key").exists():
        return read_key_file(s.net_dir / f"node{VALIDATOR}" / "node_key")
    return devnet.validator_key(VALIDATOR)


def _vote(s: ScenarioRun, key: KeyPair, height: int, block_hash: bytes) -> list[Any]:
    sig = key.sign(vote_sign_bytes(s.chain_id, PRECOMMIT, height, 0, block_hash))
    return [key.public, height, 0, PRECOMMIT, block_hash, sig]


def _slashed(events: list[tuple[str, str, dict[str, Any]]], bond_id: int) -> tuple[int, int]:
    """(amount slashed from ``bond_id``, total slashed by the call)."""
    hits = [f for _, n, f in events if n == "bond_slashed"]
    return sum(f["amount"] for f in hits if f["bond"] == bond_id), sum(f["amount"] for f in hits)


def _double_sign(s: ScenarioRun, rules: dict[str, Any]) -> None:
    validator = devnet.validator_participant(VALIDATOR)
    bond_id, _, _ = _post(
        s, rules, validator, devnet.validator_account(VALIDATOR), "validator", OTHER_TERM_BLOCKS
    )
    key = _validator_key(s)
    height = s.height
    hashes = [hashlib.sha256(f"bonds-scenario-{side}-{height}".encode()).digest() for side in "ab"]
    a, b = (_vote(s, key, height, h) for h in hashes)
    s.echo(
        f"forged: {validator} precommits two different blocks at height {height} round 0 (dev key {key.key_id[:16]}...)"
    )
    forged = [
        *b[:5],
        KeyPair.dev("not-a-validator").sign(vote_sign_bytes(s.chain_id, PRECOMMIT, height, 0, hashes[1])),
    ]
    s.fails("bad_evidence_signature", "auditor-1", "bonds", "submit_evidence", [a, forged])
    s.echo("a pair with a signature the validator did not make is refused (bad_evidence_signature)")
    insurance = _held(s, rules["insurance_account"])
    events = s.send("auditor-1", "bonds", "submit_evidence", [a, b])
    accepted = next(f for _, n, f in events if n == "evidence_accepted")
    s.check(
        accepted["participant"] == validator, f"evidence names {accepted['participant']}, not {validator}"
    )
    mine, total = _slashed(events, bond_id)
    expected = _share(int(rules["min_bond"]["validator"]), int(rules["slash_bps"]["double_sign"]))
    s.check(mine == expected, f"bond {bond_id} slashed {mine}, expected {expected}")
    now = _held(s, rules["insurance_account"])
    s.check(now == insurance + total, f"insurance fund {insurance} -> {now}, slashed {total}")
    s.echo(
        f"auditor-1 submitted the pair: {validator}'s bond {bond_id} slashed {_usd(mine)} into {rules['insurance_account']} (now {_usd(now)})"
    )
    s.fails("evidence_known", "member-a", "bonds", "submit_evidence", [b, a])
    s.echo("the same double vote submitted again is refused (evidence_known)")


def _out_of_band(s: ScenarioRun, rules: dict[str, Any]) -> None:
    bond_id, _, _ = _post(s, rules, "oracle-3", "O3-HOUSE", "oracle", OTHER_TERM_BLOCKS)
    price = s.last_price(OUTLIER_INSTRUMENT) or 100_00
    for oracle in ("oracle-3", "oracle-1", "oracle-2"):  # oracle-3 first: its own old outlier goes
        s.send(oracle, "oracle", "submit", [OUTLIER_INSTRUMENT, price])
    s.echo(f"oracle-1, -2 and -3 publish {OUTLIER_INSTRUMENT} at {_usd(price)}")
    events = s.send("oracle-3", "oracle", "submit", [OUTLIER_INSTRUMENT, 3 * price])
    s.check(any(n == "oracle_out_of_band" for _, n, _ in events), f"no oracle_out_of_band: {events}")
    mine, _ = _slashed(events, bond_id)
    expected = _share(int(rules["min_bond"]["oracle"]), int(rules["slash_bps"]["oracle_out_of_band"]))
    s.check(mine == expected, f"oracle-3's bond {bond_id} slashed {mine}, expected {expected}")
    s.echo(
        f"oracle-3 publishes {_usd(3 * price)}: out of the others' band, its bond {bond_id} is slashed {_usd(mine)}"
    )
    bond = s.view("bonds", "bond", id=bond_id)
    s.check(bond["remaining"] == bond["amount"] - expected, f"bond after the finding: {bond}")
    s.echo(f"the rest, {_usd(bond['remaining'])}, still returns at height {bond['term_end_height']}")
