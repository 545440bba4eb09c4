"""Governance: what the admins decide together, by proposal and approval.

An admin proposes an action; admins approve it; it executes in the transaction that brings its
approvals to ``approvals_required`` (the proposer's own proposal is its first approval, so with
the default of 1 a single admin participant, itself a 2-of-3 key policy, is the multisig; with
several admin participants it is M-of-N). Only approvals by participants who still hold the admin
role when it executes count. A proposal that does not gather its approvals within
``proposal_ttl_blocks`` expires. Actions:

- ``["resume_instrument", iid]``, ``["halt_instrument", iid, reason]`` (instruments.set_status);
- ``["set_param", contract, name, value]`` within the bounds the chain agreed at genesis;
- ``["add_validator", pub_key, power, name]``, ``["remove_validator", pub_key]``,
  ``["set_power", pub_key, power]``: a change executed in block h is written to
  ``chain/validators`` at the end of block h+1 (so block h+1's ``next_validators_hash`` shows it)
  and first signs block h+2;
- ``["upgrade_code", contract, code_hash, activation_height]``: the pin ``chain/code/<contract>``
  becomes ``code_hash`` at the end of block ``activation_height``; every node then stops and must
  be restarted with that code (chain/ledger.py); ``["cancel_upgrade", contract]`` before then.

Every action is checked when proposed and again when it executes; a check that fails at execution
fails the approving transaction (the proposal stays open). Validator changes must leave 1 to
VALIDATORS_MAX validators with distinct keys and powers 1..POWER_MAX, and the power that moves in
one block (added + removed + |changed|, against the set in force before it) must stay below 1/3 of
that set's total, as CometBFT requires: otherwise the validators of two consecutive blocks might
not share an honest quorum.

State::

    governance/seq                        -> last proposal id
    governance/proposal/<id, 12 digits>   -> [proposer, [action, *args], created, expires,
                                              [approvers], status, closed_height]
    governance/vchange/<due, 20 digits>/<id, 12 digits>
                                          -> [op, pub_key, power, name]  (applied at end of block due)
    governance/upgrade/<contract>         -> [code_hash, activation_height, proposal id]
    governance/history_seq                -> last history entry
    governance/history/<n, 12 digits>     -> [height, kind, proposal id, text]
    chain/validators, chain/code/<name>   written by the tasks (read by the ledger)

status: ``open``, ``executed``, ``expired``, ``withdrawn``.

Methods (all admin only; ``not_admin`` otherwise):
    propose(action), approve(id), withdraw(id) (the proposer only: ``not_proposer``).
Tasks: ``expire_proposal`` (at expires + 1), ``apply_validators`` (at h + 1 of a validator
change executed at h), ``activate_code`` (at activation height).
Events: proposal_created, proposal_approved, proposal_executed, proposal_expired,
proposal_withdrawn, param_changed, validator_change_scheduled, validators_updated,
code_upgrade_scheduled, code_upgrade_cancelled, code_activated (and instruments' instrument_halted /
instrument_resumed).
Failure codes: not_admin, not_proposer, unknown_proposal, proposal_closed, proposal_expired,
already_approved, too_many_approvals, unknown_instrument, instrument_halted, instrument_active,
unknown_param, param_out_of_bounds, validator_exists, unknown_validator, power_unchanged,
no_validators_left, too_many_validators, power_change_too_large, too_many_pending_changes,
unknown_contract, code_unchanged, activation_too_soon, upgrade_pending, no_pending_upgrade.
A malformed action is a rejected transaction (``bad_arguments``).
Views: proposal, proposals, history, validators, upgrades. No amounts, so no rounding.

Why one module of more than 500 lines: a contract's code hash (its pin in genesis and in
governance upgrades) covers exactly the file that defines it, so the whole rule set of the
contract is one file that validators pin and auditors read; a helper module split off would
fall outside the pin.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chain.encoding import INT_MAX, INT_MIN
from chain.errors import InvalidTransaction
from chain.keys import PUBKEY_BYTES
from chain.ledger import CODE_PREFIX, VALIDATORS_KEY
from chain.validators import POWER_MAX, VALIDATORS_MAX
from contracts import instruments, params
from contracts.api import Context, Contract, ContractError, method, task, view
from contracts.membership import has_role, require_role
from contracts.params import Param
from contracts.schema import Bytes, Id, Int, Record, Text

NAME = "governance"
APPROVALS_MAX = 64  # approvers recorded on one proposal
PENDING_CHANGES_MAX = 16  # validator changes waiting to be written
PAGE_MAX = 100  # records one view reads
OPEN, EXECUTED, EXPIRED, WITHDRAWN = "open", "executed", "expired", "withdrawn"
STATUSES = (OPEN, EXECUTED, EXPIRED, WITHDRAWN)

PARAMS = {
    "approvals_required": Param(1, 1, 16, "admin approvals that execute a proposal (M of the N admins)"),
    "proposal_ttl_blocks": Param(3_600, 1, 1_000_000, "blocks a proposal stays open for approvals"),
    "upgrade_notice_blocks": Param(
        10, 1, 1_000_000, "least blocks between executing a code upgrade and its activation"
    ),
}

_KEY = Bytes(PUBKEY_BYTES)
ACTIONS: dict[str, Record] = {
    "resume_instrument": Record((("instrument", Id()),)),
    "halt_instrument": Record((("instrument", Id()), ("reason", Text(200)))),
    "set_param": Record((("contract", Id()), ("name", Id()), ("value", Int(INT_MIN, INT_MAX)))),
    "add_validator": Record((("pub_key", _KEY), ("power", Int(1, POWER_MAX)), ("name", Text(64)))),
    "remove_validator": Record((("pub_key", _KEY),)),
    "set_power": Record((("pub_key", _KEY), ("power", Int(1, POWER_MAX)))),
    "upgrade_code": Record(
        (("contract", Id()), ("code_hash", Bytes(32)), ("activation_height", Int(1, 2**63 - 1)))
    ),
    "cancel_upgrade": Record((("contract", Id()),)),
}
VALIDATOR_ACTIONS = ("add_validator", "remove_validator", "set_power")


@dataclass(frozen=True, slots=True)
class ActionSchema:
    """``[action, *args]`` with the arguments of that action (contracts/schema.py protocol)."""

    def check(self, value: Any, path: str) -> tuple[Any, ...]:
        if type(value) is not list or not value or type(value[0]) is not str or value[0] not in ACTIONS:
            raise InvalidTransaction(
                "bad_arguments", f"{path}: expected [action, ...] with action one of {', '.join(ACTIONS)}"
            )
        return (value[0], *ACTIONS[value[0]].check(value[1:], f"{path}.{value[0]}"))


# --- keys -------------------------------------------------------------------------------------
def _proposal_key(pid: int) -> str:
    return f"proposal/{pid:012d}"


def _change_prefix(due: int) -> str:
    return f"vchange/{due:020d}/"


# --- validator sets (pure) --------------------------------------------------------------------
ValidatorMap = dict[bytes, tuple[int, str]]  # pub_key -> (power, name)


def compute_change(validators: ValidatorMap, change: list[Any]) -> ValidatorMap:
    """The set after one change ``[op, pub_key, power, name]``. Raises ContractError."""
    op, key, power, name = change
    out = dict(validators)
    if op == "add_validator":
        if key in out:
            raise ContractError("validator_exists", f"{key.hex()} is already a validator")
        out[key] = (power, name)
    elif key not in out:
        raise ContractError("unknown_validator", f"{key.hex()} is not a validator")
    elif op == "remove_validator":
        del out[key]
    else:
        if out[key][0] == power:
            raise ContractError("power_unchanged", f"{key.hex()} already has power {power}")
        out[key] = (power, out[key][1])
    if not out:
        raise ContractError("no_validators_left", "a change may not remove the last validator")
    if len(out) > VALIDATORS_MAX:
        raise ContractError("too_many_validators", f"at most {VALIDATORS_MAX} validators")
    return out


def compute_moved_power(before: ValidatorMap, after: ValidatorMap) -> int:
    """Power added, removed or changed between two sets."""
    keys = sorted(set(before) | set(after))
    return sum(abs(after.get(k, (0, ""))[0] - before.get(k, (0, ""))[0]) for k in keys)


def is_safe_change(before: ValidatorMap, after: ValidatorMap) -> bool:
    """Less than 1/3 of ``before``'s power moves, so the two sets share an honest quorum."""
    total = sum(p for p, _ in before.values())
    return 3 * compute_moved_power(before, after) < total


def _to_wire(validators: ValidatorMap) -> list[list[Any]]:
    return [[k, p, n] for k, (p, n) in sorted(validators.items())]


def get_validators(ctx: Context) -> ValidatorMap:
    """The set in state now (it signs the next block)."""
    return {bytes(k): (int(p), str(n)) for k, p, n in ctx.state.get(VALIDATORS_KEY)}


def _pending_changes(ctx: Context) -> list[tuple[int, str, list[Any]]]:
    """(due, state key, change) of every validator change not yet written, in order."""
    out = []
    for key, change in ctx.iterate("vchange/"):
        out.append((int(key.split("/")[1]), key, change))
        assert len(out) <= PENDING_CHANGES_MAX, "pending validator changes are bounded"
    return out


# --- actions ----------------------------------------------------------------------------------
def _check_instrument(ctx: Context, iid: str, want: str) -> None:
    ins = instruments.get_instrument(ctx, iid)
    if ins is None:
        raise ContractError("unknown_instrument", f"no instrument {iid}")
    if ins.status == want:
        code = "instrument_halted" if want == instruments.HALTED else "instrument_active"
        raise ContractError(code, f"{iid} is already {want}")


def _check_param(ctx: Context, contract: str, name: str, value: int) -> None:
    found = params.bounds(ctx, contract, name)
    if found is None:
        raise ContractError("unknown_param", f"{contract} declares no parameter {name}")
    if not found[0] <= value <= found[1]:
        raise ContractError(
            "param_out_of_bounds", f"{contract}.{name} must be {found[0]}..{found[1]}, got {value}"
        )


def _next_validator_set(ctx: Context, change: list[Any]) -> tuple[int, bool]:
    """Check ``change`` as the next of this block's changes; (due height, first change due
    then). The set before = the current one with the changes due earlier."""
    due = ctx.height + 1
    pending = _pending_changes(ctx)
    if len(pending) >= PENDING_CHANGES_MAX:
        raise ContractError(
            "too_many_pending_changes", f"{PENDING_CHANGES_MAX} validator changes are waiting already"
        )
    before = get_validators(ctx)
    for d, _, c in pending:
        if d < due:
            before = compute_change(before, c)
    after = before
    for d, _, c in pending:
        if d == due:
            after = compute_change(after, c)
    after = compute_change(after, change)
    if not is_safe_change(before, after):
        raise ContractError(
            "power_change_too_large",
            f"{compute_moved_power(before, after)} of {sum(p for p, _ in before.values())} power would move in one block; "
            "less than 1/3 may",
        )
    return due, not any(d == due for d, _, _ in pending)


def _check_upgrade(ctx: Context, contract: str, code_hash: bytes, activation: int) -> None:
    current = ctx.state.get(CODE_PREFIX + contract.encode())
    if current is None:
        raise ContractError("unknown_contract", f"the chain pins no code named {contract}")
    if current == code_hash:
        raise ContractError("code_unchanged", f"{contract} already runs {code_hash.hex()}")
    earliest = ctx.height + params.get(ctx, NAME, "upgrade_notice_blocks")
    if activation < earliest:
        raise ContractError("activation_too_soon", f"activation height {activation} is before {earliest}")
    if ctx.get("upgrade/" + contract) is not None:
        raise ContractError("upgrade_pending", f"an upgrade of {contract} is scheduled; cancel it first")


def check_action(ctx: Context, action: tuple[Any, ...]) -> None:
    """Raise ContractError if ``action`` could not execute now (writes nothing)."""
    name, args = action[0], action[1:]
    if name == "resume_instrument":
        _check_instrument(ctx, args[0], instruments.ACTIVE)
    elif name == "halt_instrument":
        _check_instrument(ctx, args[0], instruments.HALTED)
    elif name == "set_param":
        _check_param(ctx, *args)
    elif name in VALIDATOR_ACTIONS:
        _next_validator_set(ctx, _change_of(action))
    elif name == "upgrade_code":
        _check_upgrade(ctx, *args)
    elif ctx.get("upgrade/" + args[0]) is None:  # cancel_upgrade
        raise ContractError("no_pending_upgrade", f"no upgrade of {args[0]} is scheduled")


def _change_of(action: tuple[Any, ...]) -> list[Any]:
    name, key = action[0], action[1]
    if name == "add_validator":
        return [name, key, action[2], action[3]]
    if name == "set_power":
        return [name, key, action[2], ""]
    return [name, key, 0, ""]


def _execute(ctx: Context, pid: int, action: tuple[Any, ...]) -> str:
    """Carry out a checked action; returns its history text."""
    check_action(ctx, action)
    name, args = action[0], action[1:]
    if name in ("resume_instrument", "halt_instrument"):
        status = instruments.ACTIVE if name == "resume_instrument" else instruments.HALTED
        reason = f"governance proposal {pid}" + (f": {args[1]}" if len(args) > 1 else "")
        instruments.set_status(ctx, args[0], status, reason)
        return f"{args[0]} {status}"
    if name == "set_param":
        contract, param, value = args
        old = params.set_value(ctx, contract, param, value)
        ctx.emit("param_changed", proposal=pid, contract=contract, param=param, old=old, new=value)
        return f"{contract}.{param} {old} -> {value}"
    if name in VALIDATOR_ACTIONS:
        return _schedule_validator_change(ctx, pid, _change_of(action))
    if name == "upgrade_code":
        contract, code_hash, activation = args
        ctx.put("upgrade/" + contract, [code_hash, activation, pid])
        ctx.schedule("activate_code", [contract, code_hash, pid], at_height=activation)
        ctx.emit(
            "code_upgrade_scheduled",
            proposal=pid,
            contract=contract,
            code_hash=code_hash,
            activation_height=activation,
        )
        return f"{contract} -> {code_hash.hex()} at height {activation}"
    ctx.delete("upgrade/" + args[0])
    ctx.emit("code_upgrade_cancelled", proposal=pid, contract=args[0])
    return f"{args[0]} upgrade cancelled"


def _schedule_validator_change(ctx: Context, pid: int, change: list[Any]) -> str:
    due, first = _next_validator_set(ctx, change)
    ctx.put(_change_prefix(due) + f"{pid:012d}", change)
    if first:
        ctx.schedule("apply_validators", due, at_height=due)
    op, key, power, _ = change
    ctx.emit(
        "validator_change_scheduled", proposal=pid, op=op, pub_key=key, power=power, effective_height=due + 1
    )
    return f"{op} {key.hex()[:16]} power {power}, signs from height {due + 1}"


# --- proposals --------------------------------------------------------------------------------
def _load(ctx: Context, pid: int) -> list[Any]:
    record = ctx.get(_proposal_key(pid))
    if record is None:
        raise ContractError("unknown_proposal", f"no proposal {pid}")
    return list(record)


def _require_open(ctx: Context, pid: int, record: list[Any]) -> None:
    if record[5] != OPEN:
        raise ContractError("proposal_closed", f"proposal {pid} is {record[5]}")
    if ctx.height > record[3]:
        raise ContractError("proposal_expired", f"proposal {pid} expired at height {record[3]}")


def _add_history(ctx: Context, kind: str, pid: int, text: str) -> None:
    seq = (ctx.get("history_seq") or 0) + 1
    ctx.put("history_seq", seq)
    ctx.put(f"history/{seq:012d}", [ctx.height, kind, pid, text])


def _maybe_execute(ctx: Context, pid: int, record: list[Any]) -> None:
    """Execute once enough of the approvers are admins now."""
    approvals = sum(1 for who in record[4] if has_role(ctx, who, "admin"))
    if approvals < params.get(ctx, NAME, "approvals_required"):
        ctx.put(_proposal_key(pid), record)
        return
    action = tuple(record[1])
    text = _execute(ctx, pid, action)
    record[5], record[6] = EXECUTED, ctx.height
    ctx.put(_proposal_key(pid), record)
    _add_history(ctx, action[0], pid, text)
    ctx.emit("proposal_executed", id=pid, action=action[0], approvals=approvals)


def proposal_json(pid: int, record: list[Any]) -> dict[str, Any]:
    proposer, action, created, expires, approvers, status, closed = record
    return {
        "id": pid, "proposer": proposer, "action": action[0],
        "args": [a.hex() if isinstance(a, bytes) else a for a in action[1:]],
        "created_height": created, "expires_height": expires, "approvers": list(approvers),
        "status": status, "closed_height": closed,
    }  # fmt: skip


def _query_int(query: dict[str, str], name: str, default: int, low: int, high: int) -> int:
    text = query.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise ContractError("bad_query", f"{name} must be an integer") from None
    if not low <= value <= high:
        raise ContractError("bad_query", f"{name} must be {low}..{high}")
    return value


class Governance(Contract):
    name = NAME
    PARAMS = PARAMS

    @method(("action", ActionSchema()))
    def propose(self, ctx: Context, action: tuple[Any, ...]) -> None:
        require_role(ctx, "admin")
        check_action(ctx, action)
        pid = (ctx.get("seq") or 0) + 1
        ctx.put("seq", pid)
        expires = ctx.height + params.get(ctx, NAME, "proposal_ttl_blocks")
        record = [ctx.sender, list(action), ctx.height, expires, [ctx.sender], OPEN, None]
        ctx.schedule("expire_proposal", pid, at_height=expires + 1)
        ctx.emit("proposal_created", id=pid, proposer=ctx.sender, action=action[0], expires_height=expires)
        _maybe_execute(ctx, pid, record)

    @method(("id", Int(1, INT_MAX)))
    def approve(self, ctx: Context, pid: int) -> None:
        require_role(ctx, "admin")
        record = _load(ctx, pid)
        _require_open(ctx, pid, record)
        if ctx.sender in record[4]:
            raise ContractError("already_approved", f"{ctx.sender} has approved proposal {pid}")
        if len(record[4]) >= APPROVALS_MAX:
            raise ContractError("too_many_approvals", f"proposal {pid} has {APPROVALS_MAX} approvals")
        record[4] = [*record[4], ctx.sender]
        ctx.emit("proposal_approved", id=pid, approver=ctx.sender, approvals=len(record[4]))
        _maybe_execute(ctx, pid, record)

    @method(("id", Int(1, INT_MAX)))
    def withdraw(self, ctx: Context, pid: int) -> None:
        require_role(ctx, "admin")
        record = _load(ctx, pid)
        if record[0] != ctx.sender:
            raise ContractError("not_proposer", f"only {record[0]} may withdraw proposal {pid}")
        _require_open(ctx, pid, record)
        record[5], record[6] = WITHDRAWN, ctx.height
        ctx.put(_proposal_key(pid), record)
        ctx.emit("proposal_withdrawn", id=pid)

    # --- tasks --------------------------------------------------------------------------------
    @task
    def expire_proposal(self, ctx: Context, pid: int) -> None:
        record = ctx.get(_proposal_key(pid))
        if record is None or record[5] != OPEN:
            return
        record = list(record)
        record[5], record[6] = EXPIRED, ctx.height
        ctx.put(_proposal_key(pid), record)
        ctx.emit("proposal_expired", id=pid)

    @task
    def apply_validators(self, ctx: Context, due: int) -> None:
        """Write the changes due now: the new set signs from the next block but one."""
        validators = get_validators(ctx)
        pids = []
        for key, change in list(ctx.iterate(_change_prefix(due))):
            validators = compute_change(validators, change)  # checked when scheduled
            pids.append(int(key.rsplit("/", 1)[1]))
            ctx.delete(key)
        if not pids:
            return
        ctx.state.put(VALIDATORS_KEY, _to_wire(validators))
        total = sum(p for p, _ in validators.values())
        _add_history(
            ctx, "validators_updated", pids[-1], f"{len(validators)} validators, total power {total}"
        )
        ctx.emit(
            "validators_updated",
            proposals=pids,
            validators=len(validators),
            total_power=total,
            signs_from=ctx.height + 1,
        )

    @task
    def activate_code(self, ctx: Context, payload: list[Any]) -> None:
        contract, code_hash, pid = payload
        record = ctx.get("upgrade/" + contract)
        if record is None or record[0] != code_hash or record[2] != pid:
            return  # cancelled (or replaced after a cancel)
        ctx.delete("upgrade/" + contract)
        ctx.state.put(CODE_PREFIX + contract.encode(), code_hash)
        _add_history(
            ctx, "code_activated", pid, f"{contract} runs {code_hash.hex()} after height {ctx.height}"
        )
        ctx.emit("code_activated", proposal=pid, contract=contract, code_hash=code_hash)

    # --- views --------------------------------------------------------------------------------
    @view
    def proposal(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?id=N``: one proposal."""
        pid = _query_int(query, "id", 0, 1, INT_MAX)
        return proposal_json(pid, _load(ctx, pid))

    @view
    def proposals(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?[status=open][&after=ID][&limit=N]``: proposals by id; ``next`` continues (it
        reads at most ``limit`` records, matching the status or not)."""
        status = query.get("status")
        if status is not None and status not in STATUSES:
            raise ContractError("bad_query", f"status must be one of {', '.join(STATUSES)}")
        after = _query_int(query, "after", 0, 0, INT_MAX)
        limit = _query_int(query, "limit", PAGE_MAX, 1, PAGE_MAX)
        found, last, read = [], None, 0
        for key, record in ctx.iterate("proposal/", f"{after + 1:012d}"):
            pid = int(key.rsplit("/", 1)[1])
            last, read = pid, read + 1
            if status is None or record[5] == status:
                found.append(proposal_json(pid, list(record)))
            if read >= limit:
                break
        return {"proposals": found, "next": last if read >= limit else None}

    @view
    def history(self, ctx: Context, query: dict[str, str]) -> Any:
        """``?[after=N][&limit=N]``: executed actions and their effects, oldest first."""
        after = _query_int(query, "after", 0, 0, INT_MAX)
        limit = _query_int(query, "limit", PAGE_MAX, 1, PAGE_MAX)
        entries = []
        for key, (height, kind, pid, text) in ctx.iterate("history/", f"{after + 1:012d}"):
            entries.append(
                {
                    "seq": int(key.rsplit("/", 1)[1]),
                    "height": height,
                    "kind": kind,
                    "proposal": pid,
                    "text": text,
                }
            )
            if len(entries) >= limit:
                break
        return {"history": entries, "next": entries[-1]["seq"] if len(entries) >= limit else None}

    @view
    def validators(self, ctx: Context, query: dict[str, str]) -> Any:
        """The set signing the next block and the changes waiting to be written."""
        current = get_validators(ctx)
        return {
            "height": ctx.height,
            "validators": [{"pub_key": k.hex(), "power": p, "name": n} for k, (p, n) in sorted(current.items())],
            "total_power": sum(p for p, _ in current.values()),
            "pending": [
                {"written_at": due, "signs_from": due + 1, "op": c[0], "pub_key": c[1].hex(), "power": c[2], "name": c[3],
                 "proposal": int(key.rsplit("/", 1)[1])}
                for due, key, c in _pending_changes(ctx)
            ],
        }  # fmt: skip

    @view
    def upgrades(self, ctx: Context, query: dict[str, str]) -> Any:
        """The code the chain pins now, and the upgrades scheduled."""
        pins = {}
        for key, digest in ctx.state.iterate(CODE_PREFIX):
            pins[key[len(CODE_PREFIX) :].decode()] = digest.hex()
            assert len(pins) <= PAGE_MAX, "one pin per contract"
        pending = [
            {
                "contract": c[len("upgrade/") :],
                "code_hash": r[0].hex(),
                "activation_height": r[1],
                "proposal": r[2],
            }
            for c, r in ctx.iterate("upgrade/")
        ]
        return {"pins": pins, "pending": pending}
