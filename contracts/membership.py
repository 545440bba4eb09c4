"""Membership: participants, their roles and their key policies.

State::

    membership/participant/<id> -> [roles]                  (sorted role names)
    membership/policy/<id>      -> [threshold, [keys], active]   (read by the executor)
    membership/nonce/<id>       -> last nonce                (written by the executor)

Only admins register participants, change roles and suspend or reinstate them. A participant
rotates its own keys with a transaction signed under its current policy; that is also how a
2-of-3 holder recovers from a lost key: the two remaining keys sign a rotation that replaces it.
"""

from __future__ import annotations

from collections.abc import Iterator

from chain.genesis import ROLES, Genesis
from chain.keys import PUBKEY_BYTES
from chain.limits import POLICY_KEYS_MAX
from chain.policy import KeyPolicy, nonce_key, policy_key
from chain.state import BlockState
from contracts.api import Context, Contract, ContractError, method
from contracts.schema import Bool, Bytes, Id, Int, ListOf, OneOf

NAME = "membership"
_KEYS = ListOf(Bytes(PUBKEY_BYTES), max_items=POLICY_KEYS_MAX, min_items=1)
_ROLES = ListOf(OneOf(ROLES), max_items=len(ROLES), min_items=1)


PARTICIPANT_PREFIX = b"membership/participant/"  # the policy and nonce keys: chain/policy.py


def participant_key(pid: str) -> bytes:
    return PARTICIPANT_PREFIX + pid.encode()


def read_roles(state: BlockState, pid: str) -> tuple[str, ...] | None:
    """The participant's roles from a state view (readers outside a call), or None if unknown."""
    roles = state.get(participant_key(pid))
    return None if roles is None else tuple(roles)


def read_policy(state: BlockState, pid: str) -> tuple[int, tuple[bytes, ...], bool] | None:
    """(threshold, keys, active) of the participant's key policy from a state view, or None."""
    record = state.get(policy_key(pid))
    return None if record is None else (record[0], tuple(record[1]), record[2])


def read_nonce(state: BlockState, pid: str) -> int:
    """The last nonce the participant used (0: none yet)."""
    nonce: int | None = state.get(nonce_key(pid))
    return nonce or 0


def iterate_participants(
    state: BlockState, after: str | None = None
) -> Iterator[tuple[str, tuple[str, ...]]]:
    """(id, roles) of every participant in id order, after id ``after`` (None: from the first);
    the caller bounds how many it reads."""
    start = b"" if after is None else after.encode() + b"\x00"
    for key, roles in state.iterate(PARTICIPANT_PREFIX, start):
        yield key[len(PARTICIPANT_PREFIX) :].decode(), tuple(roles)


def roles_of(ctx: Context, pid: str) -> tuple[str, ...]:
    """The roles of an active participant; () if unknown or suspended."""
    view = ctx.view(NAME)
    roles = view.state.get(participant_key(pid))
    if roles is None:
        return ()
    auth = view.state.get(policy_key(pid))
    return roles if auth is not None and auth[2] else ()


def has_role(ctx: Context, pid: str, role: str) -> bool:
    return role in roles_of(ctx, pid)


def require_role(ctx: Context, role: str) -> None:
    """Fail with ``not_<role>`` unless the sender is an active participant with ``role``."""
    if not has_role(ctx, ctx.sender, role):
        raise ContractError(f"not_{role}", f"{ctx.sender} does not hold the {role} role")


def _policy(threshold: int, keys: tuple[bytes, ...]) -> KeyPolicy:
    if not 1 <= threshold <= len(keys):
        raise ContractError("bad_policy", f"threshold {threshold} must be 1..{len(keys)}")
    if len(set(keys)) != len(keys):
        raise ContractError("bad_policy", "a key is listed twice")
    return KeyPolicy(threshold, tuple(sorted(keys)))


def _roles(roles: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(roles)) != len(roles):
        raise ContractError("bad_roles", "a role is listed twice")
    return tuple(sorted(roles))


class Membership(Contract):
    name = NAME

    def init_genesis(self, ctx: Context, genesis: Genesis) -> None:
        for p in genesis.participants:
            ctx.state.put(participant_key(p.id), list(p.roles))
            ctx.state.put(policy_key(p.id), [p.threshold, list(p.keys), True])

    @method(("id", Id()), ("roles", _ROLES), ("threshold", Int(1, POLICY_KEYS_MAX)), ("keys", _KEYS))
    def register(
        self, ctx: Context, pid: str, roles: tuple[str, ...], threshold: int, keys: tuple[bytes, ...]
    ) -> None:
        require_role(ctx, "admin")
        ctx.require(
            ctx.state.get(participant_key(pid)) is None, "participant_exists", f"{pid} is already registered"
        )
        policy = _policy(threshold, keys)
        ctx.state.put(participant_key(pid), list(_roles(roles)))
        ctx.state.put(policy_key(pid), [policy.threshold, list(policy.keys), True])
        ctx.emit("participant_registered", id=pid, roles=list(_roles(roles)), threshold=threshold)

    @method(("id", Id()), ("roles", _ROLES))
    def set_roles(self, ctx: Context, pid: str, roles: tuple[str, ...]) -> None:
        require_role(ctx, "admin")
        ctx.require(
            ctx.state.get(participant_key(pid)) is not None, "unknown_participant", f"no participant {pid}"
        )
        ctx.require(
            pid != ctx.sender or "admin" in roles,
            "cannot_demote_self",
            "an admin cannot drop its own admin role",
        )
        ctx.state.put(participant_key(pid), list(_roles(roles)))
        ctx.emit("roles_changed", id=pid, roles=list(_roles(roles)))

    @method(("id", Id()), ("active", Bool()))
    def set_status(self, ctx: Context, pid: str, active: bool) -> None:
        require_role(ctx, "admin")
        auth = ctx.state.get(policy_key(pid))
        ctx.require(auth is not None, "unknown_participant", f"no participant {pid}")
        ctx.require(pid != ctx.sender, "cannot_suspend_self", "an admin cannot change its own status")
        ctx.state.put(policy_key(pid), [auth[0], list(auth[1]), active])
        ctx.emit("participant_status", id=pid, active=active)

    @method(("threshold", Int(1, POLICY_KEYS_MAX)), ("keys", _KEYS))
    def rotate_keys(self, ctx: Context, threshold: int, keys: tuple[bytes, ...]) -> None:
        """Replace the sender's policy; the tx was signed under the current one."""
        policy = _policy(threshold, keys)
        ctx.state.put(policy_key(ctx.sender), [policy.threshold, list(policy.keys), True])
        ctx.emit("keys_rotated", id=ctx.sender, threshold=threshold, keys=len(keys))
