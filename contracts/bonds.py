"""Bonds: exchanges, issuers, oracles and validators post a bond that returns automatically after
a clean term and is slashed automatically on proven misconduct.

A participant vouches for what it does (matching trades, filing disclosures, publishing prices,
signing blocks) with cash it cannot touch while the bond runs. The bond moves from the poster's
account into the contract's system account ``BOND-POOL`` (owner ``@bonds``; no key can sign for
it), so the account's own ``locked`` figure stays reserved for withdrawals. At the end of its term
a scheduled task moves what is left back to the account it came from. A *finding* (proven
misconduct) slashes every active bond of the participant by the share its reason carries; the
slashed cash moves to the clearing house's insurance fund ``CCP-INSURANCE`` and the rest still
returns at term end. Nothing else moves a bond: there is no early release.

Findings come from other contracts' rules through ``slash(ctx, participant, reason, ref)`` (the
oracle: ``oracle_out_of_band``; disclosure: ``missed_disclosure``) and from consensus through
``submit_evidence``: two votes signed by one validator key for one (height, round, vote type)
and different block hashes (a nil vote conflicts with a vote for a block) are proof of
equivocation, reason ``double_sign``. A finding is recorded exactly once per
(participant, reason, ref), bond or no bond.

Methods (who may call):

- ``post(account, asset, amount, term_blocks|None)``: a participant holding the exchange, issuer,
  oracle or validator role, from an active account it owns, in a cash instrument; at least the
  largest ``min_bond_<role>`` of its bonding roles; term ``term_min_blocks..term_max_blocks``
  (None: ``term_default_blocks``). A validator's bond binds its consensus key: the policy keys
  of the poster that are in the validator set (``chain/validators``) are recorded as its keys,
  so evidence names the participant. At most ``ACTIVE_BONDS_MAX`` active bonds per participant.
- ``submit_evidence(vote_a, vote_b)``: any participant. Each vote is
  ``[validator_pubkey(32), height, round, vote_type(1 prevote, 2 precommit), block_hash(32 or 0
  bytes: nil), signature(64)]``, signed over ``chain.certificate.vote_sign_bytes``.

Task: ``return_bond(id)`` at ``posted height + term``: returns the remainder (status
``returned``), or closes a fully slashed bond (``forfeited``); runs once, a second run does nothing.

State::

    bonds/seq                                  -> last bond id
    bonds/bond/<id:020>                        -> [participant, account, asset, amount, slashed,
                                                   posted_height, term_end_height, status, [key hex]]
    bonds/by/<participant>/<id:020>            -> 1   (every bond of the participant, id order)
    bonds/active/<participant>/<id:020>        -> 1   (its active bonds)
    bonds/validator/<pubkey hex>               -> participant  (consensus key bound by a bond)
    bonds/finding_seq                          -> last finding number
    bonds/finding/<seq:020>                    -> [participant, reason, ref, height, slashed]
    bonds/finding_by/<participant>/<seq:020>   -> 1
    bonds/seen/<sha256(participant|reason|ref)> -> finding number   (idempotency)
    bonds/evidence/<pubkey hex>/<height>/<round>/<vote type>
                                               -> [participant, submitter, height submitted,
                                                   block_hash_a, block_hash_b]
    bonds/slashed/<asset>                      -> total slashed into the insurance fund
    bonds/slashed_by/<participant>/<asset>     -> total slashed from the participant

Events: ``bond_posted``, ``bond_returned``, ``bond_slashed`` (one per bond hit), ``finding_recorded``
(one per finding, also with slashed 0), ``evidence_accepted``.

Failure codes: ``not_bondable`` (no bonding role), ``unknown_account``, ``account_suspended``,
``account_closed``, ``not_account_owner``, ``unknown_instrument``, ``bond_not_cash``,
``bond_below_minimum``, ``bad_term``, ``too_many_bonds``, ``not_in_validator_set``,
``consensus_key_bound``, ``insufficient_funds``; evidence: ``not_conflicting`` (different
validator, height, round or type, or the same block hash), ``evidence_too_old``,
``bad_evidence_signature``, ``evidence_known``, ``unknown_validator``.

Rounding: a finding slashes ``ceil(amount * share_bps / 10,000)`` of each active bond's *posted*
amount, capped at what is left of it: the remainder of the division goes to the insurance fund
(misconduct is never rounded in the offender's favour), and findings add up independently of
their order. ``slash`` returns the sum over the participant's bonds (one currency in practice).

Parameters: see ``PARAMS`` (minimum bond per role in minor units of the bond's cash asset, term
bounds, slash share per reason in basis points, evidence age).

Why one module of more than 500 lines: a contract's code hash (its pin in genesis and in
governance upgrades) covers exactly the file that defines it, so the whole rule set of the
contract is one file that validators pin and auditors read; a helper module split off would
fall outside the pin.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from chain.certificate import vote_sign_bytes
from chain.errors import InvalidTransaction
from chain.keys import PUBKEY_BYTES, SIGNATURE_BYTES, verify_signature
from chain.ledger import VALIDATORS_KEY
from chain.limits import AMOUNT_MAX
from chain.policy import policy_key
from contracts import accounts
from contracts.api import Context, Contract, ContractError, method, task, view
from contracts.instruments import get_instrument
from contracts.membership import has_role
from contracts.money import amount_text
from contracts.params import BPS, Param, get
from contracts.schema import Bytes, Id, Int, Optional, Record

NAME = "bonds"
POOL = "BOND-POOL"  # system account holding every running bond
INSURANCE = "CCP-INSURANCE"  # the clearing house's insurance fund (shared with margin)
BONDING_ROLES = ("exchange", "issuer", "oracle", "validator")
REASONS = ("double_sign", "missed_disclosure", "oracle_out_of_band")
ACTIVE, RETURNED, FORFEITED = "active", "returned", "forfeited"
ACTIVE_BONDS_MAX = 16  # active bonds per participant: bounds the work of one finding
PAGE_MAX = 100  # items one view returns
ASSETS_READ_MAX = 100  # assets a totals view reads
KEYS_HEX = 2 * PUBKEY_BYTES
HEIGHT_MAX = 2**63 - 1

PARAMS = {
    "min_bond_exchange": Param(50_000_00, 1, AMOUNT_MAX, "least bond an exchange posts (minor units)"),
    "min_bond_issuer": Param(25_000_00, 1, AMOUNT_MAX, "least bond an issuer posts (minor units)"),
    "min_bond_oracle": Param(10_000_00, 1, AMOUNT_MAX, "least bond an oracle posts (minor units)"),
    "min_bond_validator": Param(100_000_00, 1, AMOUNT_MAX, "least bond a validator posts (minor units)"),
    "term_default_blocks": Param(10_000, 1, 100_000_000, "a bond's term when the poster names none"),
    "term_min_blocks": Param(3, 1, 100_000_000, "shortest term a bond may run"),
    "term_max_blocks": Param(1_000_000, 1, 100_000_000, "longest term a bond may run"),
    "slash_double_sign_bps": Param(1_000, 0, BPS, "share of each bond slashed for a double sign"),
    "slash_missed_disclosure_bps": Param(500, 0, BPS, "share slashed for a missed disclosure deadline"),
    "slash_oracle_out_of_band_bps": Param(500, 0, BPS, "share slashed for a price out of the others' band"),
    "slash_other_bps": Param(500, 0, BPS, "share slashed for any other reason a contract reports"),
    "evidence_max_age_blocks": Param(100_000, 1, 1_000_000_000, "double votes older than this are refused"),
}


@dataclass(frozen=True, slots=True)
class BlockHash:
    """A vote's block hash: 32 bytes, or empty for a nil vote."""

    def check(self, value: Any, path: str) -> bytes:
        if type(value) is not bytes or len(value) not in (0, 32):
            raise InvalidTransaction("bad_arguments", f"{path}: expected 32 bytes (or empty: nil)")
        return value


VOTE = Record(
    (
        ("validator", Bytes(PUBKEY_BYTES)),
        ("height", Int(0, HEIGHT_MAX)),
        ("round", Int(0, HEIGHT_MAX)),
        ("vote_type", Int(1, 2)),
        ("block_hash", BlockHash()),
        ("signature", Bytes(SIGNATURE_BYTES)),
    )
)


# --- keys and records ---------------------------------------------------------------------------
def _n(number: int) -> str:
    return f"{number:020d}"


def evidence_key(pubkey: bytes, height: int, round_: int, vote_type: int) -> str:
    """The key (within ``bonds/``) of the evidence record for one (validator, height, round, type)."""
    return f"evidence/{pubkey.hex()}/{height}/{round_}/{vote_type}"


def evidence_state_key(pubkey: bytes, height: int, round_: int, vote_type: int) -> bytes:
    """The full state key: a node checks it before submitting evidence the chain already has."""
    return (NAME + "/" + evidence_key(pubkey, height, round_, vote_type)).encode()


def evidence_ref(pubkey: bytes, height: int, round_: int, vote_type: int) -> str:
    return f"{pubkey.hex()}:{height}:{round_}:{vote_type}"


def _finding_digest(participant: str, reason: str, ref: str) -> str:
    return hashlib.sha256("\x00".join((participant, reason, ref)).encode()).hexdigest()


def get_bond(ctx: Context, bond_id: int) -> list[Any] | None:
    found = ctx.view(NAME).get("bond/" + _n(bond_id))
    return None if found is None else list(found)


def _active_ids(view_: Context, participant: str) -> list[int]:
    prefix = f"active/{participant}/"
    out = []
    for key, _ in view_.iterate(prefix):
        out.append(int(key[len(prefix) :]))
        if len(out) >= ACTIVE_BONDS_MAX:
            break
    return out


def _add(view_: Context, key: str, amount: int) -> None:
    view_.put(key, (view_.get(key) or 0) + amount)


def _ensure_system(view_: Context, account: str) -> None:
    """Open ``account`` as a bonds system account if absent; one that exists (the insurance fund
    may have been opened by margin) is credited whoever its system owner is."""
    if accounts.get_account(view_, account) is None:
        accounts.open_system(view_, account)


def slash_bps(ctx: Context, reason: str) -> int:
    name = f"slash_{reason}_bps" if reason in REASONS else "slash_other_bps"
    return get(ctx, NAME, name)


def compute_slash(amount: int, already: int, bps: int) -> int:
    """What one finding takes from a bond of ``amount`` of which ``already`` is slashed: the share
    of the posted amount rounded up, capped at what is left."""
    share = -(-amount * bps // BPS)
    return min(share, amount - already)


# --- the interface other contracts call ----------------------------------------------------------
def slash(ctx: Context, participant: str, reason: str, ref: str) -> int:
    """Slash ``participant``'s active bonds for ``reason`` (a stable code, e.g.
    ``oracle_out_of_band``, ``missed_disclosure``, ``double_sign``) with evidence reference
    ``ref``; returns the amount slashed (0 if it has no active bond, or if this finding was
    recorded before). Never fails the caller's call for want of a bond: the finding is recorded
    either way, once per (participant, reason, ref)."""
    view_ = ctx.view(NAME)
    seen = "seen/" + _finding_digest(participant, reason, ref)
    if view_.get(seen) is not None:
        return 0
    bps = slash_bps(ctx, reason)
    total = 0
    for bond_id in _active_ids(view_, participant):
        total += _slash_bond(view_, bond_id, bps, reason, ref)
    seq = (view_.get("finding_seq") or 0) + 1
    view_.put("finding_seq", seq)
    view_.put("finding/" + _n(seq), [participant, reason, ref, ctx.height, total])
    view_.put(f"finding_by/{participant}/{_n(seq)}", 1)
    view_.put(seen, seq)
    view_.emit(
        "finding_recorded", finding=seq, participant=participant, reason=reason, ref=ref, slashed=total
    )
    return total


def _slash_bond(view_: Context, bond_id: int, bps: int, reason: str, ref: str) -> int:
    bond = get_bond(view_, bond_id)
    assert bond is not None and bond[7] == ACTIVE, "the active index names an active bond"
    participant, _, asset, amount, slashed = bond[:5]
    take = compute_slash(amount, slashed, bps)
    if take <= 0:
        return 0
    _ensure_system(view_, INSURANCE)
    accounts.move(view_, POOL, INSURANCE, asset, take, "bond_pool_short")
    bond[4] = slashed + take
    view_.put("bond/" + _n(bond_id), bond)
    _add(view_, "slashed/" + asset, take)
    _add(view_, f"slashed_by/{participant}/{asset}", take)
    view_.emit(
        "bond_slashed", bond=bond_id, participant=participant, reason=reason, ref=ref,
        asset=asset, amount=take, remaining=amount - bond[4],
    )  # fmt: skip
    return take


# --- validators' keys -------------------------------------------------------------------------------
def _validator_keys(ctx: Context) -> dict[bytes, str]:
    """Consensus key -> the name the validator set gives it (the set is bounded by the chain)."""
    return {bytes(k): str(n) for k, _, n in ctx.state.get(VALIDATORS_KEY) or []}


def _policy_keys(ctx: Context, participant: str) -> list[bytes]:
    policy = ctx.state.get(policy_key(participant))
    return [] if policy is None else [bytes(k) for k in policy[1]]


def validator_participant(ctx: Context, pubkey: bytes) -> str | None:
    """The participant a consensus key belongs to: the one whose bond bound it, else the
    validator set's name for it if that participant holds the validator role with the key in
    its policy (an unbonded validator's findings are still recorded)."""
    bound = ctx.view(NAME).get("validator/" + pubkey.hex())
    if bound is not None:
        return str(bound)
    name = _validator_keys(ctx).get(pubkey)
    if name and has_role(ctx, name, "validator") and pubkey in _policy_keys(ctx, name):
        return name
    return None


def _bind_consensus_keys(ctx: Context) -> list[str]:
    """Check (no writes) which of the sender's policy keys are validator keys it may bind."""
    in_set = _validator_keys(ctx)
    keys = [k for k in _policy_keys(ctx, ctx.sender) if k in in_set]
    if not keys:
        raise ContractError(
            "not_in_validator_set", f"no key of {ctx.sender}'s policy is in the validator set"
        )
    for k in keys:
        bound = ctx.get("validator/" + k.hex())
        if bound is not None and bound != ctx.sender:
            raise ContractError("consensus_key_bound", f"validator key {k.hex()[:16]}... is bound to {bound}")
    return [k.hex() for k in keys]


# --- views' helpers ---------------------------------------------------------------------------------
def bond_json(bond_id: int, bond: list[Any]) -> dict[str, Any]:
    participant, account, asset, amount, slashed, posted, term_end, status, keys = bond
    return {
        "id": bond_id, "participant": participant, "account": account, "asset": asset,
        "amount": amount, "slashed": slashed, "remaining": amount - slashed,
        "posted_height": posted, "term_end_height": term_end, "status": status,
        "consensus_keys": list(keys),
    }  # fmt: skip


def _query_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise ContractError("bad_query", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ContractError("bad_query", f"{name} must be {low}..{high}")
    return value


def _page(view_: Context, prefix: str, query: dict[str, str]) -> tuple[list[int], int | None]:
    """Numbers indexed under ``prefix`` after ``?after=``, at most ``?limit=``; and the next cursor."""
    after = _query_int(query, "after", 0, 0, HEIGHT_MAX)
    limit = _query_int(query, "limit", PAGE_MAX, 1, PAGE_MAX)
    out: list[int] = []
    for key, _ in view_.iterate(prefix, _n(after) + "\x00" if after else ""):
        if len(out) >= limit:
            return out, out[-1]
        out.append(int(key[len(prefix) :]))
    return out, None


def _totals(view_: Context, prefix: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, value in view_.iterate(prefix):
        out[key[len(prefix) :]] = int(value)
        if len(out) >= ASSETS_READ_MAX:
            break
    return out


class Bonds(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(
        ("account", Id()),
        ("asset", Id()),
        ("amount", Int(1, AMOUNT_MAX)),
        ("term_blocks", Optional(Int(1, HEIGHT_MAX))),
    )
    def post(self, ctx: Context, account: str, asset: str, amount: int, term_blocks: int | None) -> None:
        """A bonding participant posts ``amount`` of cash from its account for a term."""
        roles = [r for r in BONDING_ROLES if has_role(ctx, ctx.sender, r)]
        if not roles:
            raise ContractError(
                "not_bondable", f"{ctx.sender} holds none of the roles {', '.join(BONDING_ROLES)}"
            )
        record = accounts.require_active(ctx, account)
        ctx.require(record.owner == ctx.sender, "not_account_owner", f"{ctx.sender} does not own {account}")
        ins = get_instrument(ctx, asset)
        if ins is None:
            raise ContractError("unknown_instrument", f"no instrument {asset}")
        ctx.require(ins.kind == "cash", "bond_not_cash", f"a bond is posted in cash; {asset} is {ins.kind}")
        minimum = max(get(ctx, NAME, f"min_bond_{r}") for r in roles)
        if amount < minimum:
            raise ContractError(
                "bond_below_minimum",
                f"a {'/'.join(roles)} bond is at least {amount_text(minimum, ins.decimals, asset)}, "
                f"got {amount_text(amount, ins.decimals, asset)}",
            )
        term = term_blocks if term_blocks is not None else get(ctx, NAME, "term_default_blocks")
        low, high = get(ctx, NAME, "term_min_blocks"), get(ctx, NAME, "term_max_blocks")
        ctx.require(low <= term <= high, "bad_term", f"term {term} blocks must be {low}..{high}")
        active = _active_ids(ctx, ctx.sender)
        ctx.require(
            len(active) < ACTIVE_BONDS_MAX, "too_many_bonds", f"{ctx.sender} has {len(active)} active bonds"
        )
        keys = _bind_consensus_keys(ctx) if "validator" in roles else []
        available = accounts.balance(ctx, account, asset)[0]
        if available < amount:
            raise ContractError(
                "insufficient_funds",
                f"{account} has {amount_text(available, ins.decimals, asset)} available, "
                f"bonds {amount_text(amount, ins.decimals, asset)}",
            )
        # Every check passed: now write.
        _ensure_system(ctx, POOL)
        accounts.move(ctx, account, POOL, asset, amount, "insufficient_funds")
        bond_id = (ctx.get("seq") or 0) + 1
        ctx.put("seq", bond_id)
        term_end = ctx.height + term
        ctx.put(
            "bond/" + _n(bond_id), [ctx.sender, account, asset, amount, 0, ctx.height, term_end, ACTIVE, keys]
        )
        ctx.put(f"by/{ctx.sender}/{_n(bond_id)}", 1)
        ctx.put(f"active/{ctx.sender}/{_n(bond_id)}", 1)
        for k in keys:
            ctx.put("validator/" + k, ctx.sender)
        ctx.schedule("return_bond", bond_id, at_height=term_end)
        ctx.emit(
            "bond_posted",
            bond=bond_id,
            participant=ctx.sender,
            account=account,
            asset=asset,
            amount=amount,
            term_end_height=term_end,
        )

    @method(("vote_a", VOTE), ("vote_b", VOTE))
    def submit_evidence(self, ctx: Context, vote_a: tuple[Any, ...], vote_b: tuple[Any, ...]) -> None:
        """Any participant proves a validator's equivocation; the validator's bonds are slashed."""
        pubkey, height, round_, vote_type = vote_a[:4]
        if tuple(vote_b[:4]) != (pubkey, height, round_, vote_type):
            raise ContractError(
                "not_conflicting", "the votes differ in validator, height, round or vote type"
            )
        if vote_a[4] == vote_b[4]:
            raise ContractError("not_conflicting", "both votes are for the same block hash")
        age = get(ctx, NAME, "evidence_max_age_blocks")
        ctx.require(
            height + age >= ctx.height,
            "evidence_too_old",
            f"votes at height {height} are older than {age} blocks",
        )
        for v in (vote_a, vote_b):
            signed = vote_sign_bytes(ctx.chain_id, vote_type, height, round_, v[4])
            if not verify_signature(pubkey, v[5], signed):
                raise ContractError(
                    "bad_evidence_signature", f"a vote is not signed by {pubkey.hex()[:16]}..."
                )
        key = evidence_key(pubkey, height, round_, vote_type)
        known = ctx.get(key)
        ctx.require(
            known is None, "evidence_known", f"this double vote was recorded at height {known and known[2]}"
        )
        participant = validator_participant(ctx, pubkey)
        if participant is None:
            raise ContractError(
                "unknown_validator", f"no participant holds validator key {pubkey.hex()[:16]}..."
            )
        hashes = sorted((vote_a[4], vote_b[4]))
        ctx.put(key, [participant, ctx.sender, ctx.height, hashes[0], hashes[1]])
        ctx.emit(
            "evidence_accepted", validator=pubkey.hex(), participant=participant, height=height,
            round=round_, vote_type=vote_type, submitter=ctx.sender,
        )  # fmt: skip
        slash(ctx, participant, "double_sign", evidence_ref(pubkey, height, round_, vote_type))

    @task
    def return_bond(self, ctx: Context, bond_id: int) -> None:
        """At term end: return what is left of the bond to its account, exactly once."""
        bond = get_bond(ctx, bond_id)
        if bond is None or bond[7] != ACTIVE:
            return
        participant, account, asset, amount, slashed = bond[:5]
        remaining = amount - slashed
        if remaining:
            accounts.move(ctx, POOL, account, asset, remaining, "bond_pool_short")
        bond[7] = RETURNED if remaining else FORFEITED
        ctx.put("bond/" + _n(bond_id), bond)
        ctx.delete(f"active/{participant}/{_n(bond_id)}")
        ctx.emit(
            "bond_returned",
            bond=bond_id,
            participant=participant,
            account=account,
            asset=asset,
            returned=remaining,
            slashed=slashed,
        )

    # --- views ------------------------------------------------------------------------------------
    @view
    def bond(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?id=N``: one bond."""
        bond_id = _query_int(query, "id", 0, 1, HEIGHT_MAX)
        found = get_bond(ctx, bond_id)
        if found is None:
            raise ContractError("unknown_bond", f"no bond {bond_id}")
        return bond_json(bond_id, found)

    @view
    def bonds(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?participant=P[&active=1][&after=ID&limit=N]``: a participant's bonds in id order
        (without ``participant``: every bond), a page at a time; ``next`` is the next ``after``."""
        participant = query.get("participant") or None
        if participant is None:
            prefix = "bond/"
        else:
            prefix = f"{'active' if query.get('active') in ('1', 'true') else 'by'}/{participant}/"
        ids, cursor = _page(ctx, prefix, query)
        items = []
        for bond_id in ids:
            found = get_bond(ctx, bond_id)
            assert found is not None
            items.append(bond_json(bond_id, found))
        return {"participant": participant, "bonds": items, "next": cursor}

    @view
    def findings(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?participant=P[&after=N&limit=N]``: findings in the order they were recorded
        (without ``participant``: all of them), with what each slashed."""
        participant = query.get("participant") or None
        prefix = "finding/" if participant is None else f"finding_by/{participant}/"
        seqs, cursor = _page(ctx, prefix, query)
        items = []
        for seq in seqs:
            p, reason, ref, height, slashed = ctx.get("finding/" + _n(seq))
            items.append(
                {
                    "finding": seq,
                    "participant": p,
                    "reason": reason,
                    "ref": ref,
                    "height": height,
                    "slashed": slashed,
                }
            )
        return {"participant": participant, "findings": items, "next": cursor}

    @view
    def slashed(self, ctx: Context, query: dict[str, str]) -> Any:
        """``[?participant=P]``: totals slashed into the insurance fund, per asset (and from P)."""
        participant = query.get("participant") or None
        out: dict[str, Any] = {"insurance_account": INSURANCE, "totals": _totals(ctx, "slashed/")}
        if participant is not None:
            out["participant"] = participant
            out["from_participant"] = _totals(ctx, f"slashed_by/{participant}/")
        return out

    @view
    def rules(self, ctx: Context, query: dict[str, str]) -> Any:
        """The rulebook: minimum per role, terms, slash share per reason, the accounts used."""
        return {
            "pool_account": POOL,
            "insurance_account": INSURANCE,
            "min_bond": {r: get(ctx, NAME, f"min_bond_{r}") for r in BONDING_ROLES},
            "term_blocks": {n: get(ctx, NAME, f"term_{n}_blocks") for n in ("default", "min", "max")},
            "slash_bps": {r: get(ctx, NAME, f"slash_{r}_bps") for r in (*REASONS, "other")},
            "evidence_max_age_blocks": get(ctx, NAME, "evidence_max_age_blocks"),
            "active_bonds_max": ACTIVE_BONDS_MAX,
        }

    @view
    def evidence(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?validator=HEX``: the double votes recorded against a validator key (up to a page)."""
        text = query.get("validator", "").lower()
        if len(text) != KEYS_HEX or any(c not in "0123456789abcdef" for c in text):
            raise ContractError("bad_query", "validator must be a 32-byte public key in hex")
        prefix = f"evidence/{text}/"
        items = []
        for key, (participant, submitter, at, hash_a, hash_b) in ctx.iterate(prefix):
            height, round_, vote_type = (int(x) for x in key[len(prefix) :].split("/"))
            items.append({
                "height": height, "round": round_, "vote_type": vote_type, "participant": participant,
                "submitter": submitter, "recorded_height": at, "block_hashes": [hash_a.hex(), hash_b.hex()],
            })  # fmt: skip
            if len(items) >= PAGE_MAX:
                break
        return {"validator": text, "evidence": items}
