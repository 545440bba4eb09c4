"""Account routes: the accounts in id order (a page at a time), an account with its balances, its
movements from the account-history index (node/index.py), and the reserves report (client
balances against custodian attestations).
State layouts and records come from the contracts that own them (contracts/accounts.py,
instruments.py, reserves.py)."""

from __future__ import annotations

from collections.abc import Iterator

from aiohttp import web

from chain.display import format_amount
from chain.errors import ClearchainError
from chain.state import BlockState
from contracts.accounts import ACCOUNT_PREFIX, SYSTEM_OWNER, AccountRecord, balances_in, read_account
from contracts.instruments import read_instrument
from contracts.reserves import compute_reserves
from node.api.common import LIMITS, QUERY, error, int_query, parse_id, ready_index
from node.index import HISTORY_LIMIT_MAX

ACCOUNTS_LIMIT_DEFAULT = 100
ACCOUNTS_LIMIT_MAX = 1_000
# Accounts read per request when ``owner`` filters them: without a bound, one member's page could
# mean reading every account of the chain. A page cut by it may hold fewer than ``limit``.
ACCOUNTS_SCAN_MAX = 10_000


def iterate_accounts_after(state: BlockState, after: str | None) -> Iterator[tuple[str, AccountRecord]]:
    """(id, record) of the accounts after id ``after`` (None: from the first), in id order, read
    lazily from the accounts prefix; the caller bounds how many it reads."""
    start = b"" if after is None else after.encode() + b"\x00"
    for key, value in state.iterate(ACCOUNT_PREFIX, start):
        yield key[len(ACCOUNT_PREFIX) :].decode(), AccountRecord(*value)


def page_accounts(
    state: BlockState, after: str | None, limit: int, owner: str | None, scan_max: int = ACCOUNTS_SCAN_MAX
) -> tuple[list[tuple[str, AccountRecord]], str | None]:
    """Up to ``limit`` accounts after ``after`` (of ``owner`` only, if given), in id order, and the
    id to pass as ``after`` for the next page (None: no more). Reads at most ``limit + 1``
    accounts, or ``scan_max`` when filtering by owner: then a page may be short (even empty) with
    a ``next`` that says where the scan stopped."""
    assert limit >= 1 and scan_max >= limit
    rows: list[tuple[str, AccountRecord]] = []
    scanned = 0
    last: str | None = None
    for ident, record in iterate_accounts_after(state, after):
        if len(rows) == limit or scanned == scan_max:
            return rows, rows[-1][0] if len(rows) == limit else last
        scanned += 1
        last = ident
        if owner is None or record.owner == owner:
            rows.append((ident, record))
    return rows, None


def parse_owner(text: str) -> str:
    """A participant id, or a contract's system owner ``@<contract>``."""
    name = text[len(SYSTEM_OWNER) :] if text.startswith(SYSTEM_OWNER) else text
    parse_id(name, "owner")
    return text


async def get_accounts(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    after_text = request.query.get("after")
    after = None if after_text is None else parse_id(after_text, "after")
    owner_text = request.query.get("owner")
    owner = None if owner_text is None else parse_owner(owner_text)
    limit = int_query(request, "limit", ACCOUNTS_LIMIT_DEFAULT, ACCOUNTS_LIMIT_MAX)
    if limit < 1:
        raise ClearchainError("bad_request", f"limit must be 1..{ACCOUNTS_LIMIT_MAX}")
    rows, next_after = page_accounts(query.state(), after, limit, owner)
    accounts = [
        {"id": ident, "owner": r.owner, "kind": r.kind, "client": r.client, "status": r.status,
         "assets_held": r.assets_held}
        for ident, r in rows
    ]  # fmt: skip
    return web.json_response({"height": query.head().height, "accounts": accounts, "next": next_after})


async def get_account(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    account = parse_id(request.match_info["id"], "account id")
    state = query.state()
    record = read_account(state, account)
    if record is None:
        return error(404, "unknown_account", f"no account {account}")
    balances = []
    for asset, available, locked in balances_in(state, account):
        instrument = read_instrument(state, asset)
        decimals = 0 if instrument is None else instrument.decimals
        balances.append({
            "asset": asset, "available": available, "locked": locked, "decimals": decimals,
            "display": format_amount(available, decimals), "locked_display": format_amount(locked, decimals),
        })  # fmt: skip
    return web.json_response({
        "id": account, "owner": record.owner, "kind": record.kind, "client": record.client,
        "status": record.status, "height": query.head().height, "balances": balances,
    })  # fmt: skip


async def get_history(request: web.Request) -> web.Response:
    query = request.app[QUERY]
    account = parse_id(request.match_info["id"], "account id")
    from_height = int_query(request, "from_height", 1)
    limit = int_query(request, "limit", request.app[LIMITS]().history_limit_default, HISTORY_LIMIT_MAX)
    if limit < 1:
        return error(400, "bad_request", f"limit must be 1..{HISTORY_LIMIT_MAX}")
    if read_account(query.state(), account) is None:
        return error(404, "unknown_account", f"no account {account}")
    index = ready_index(request)
    if isinstance(index, web.Response):
        return index
    movements, next_from = index.history(account, from_height, limit)
    return web.json_response({"account": account, "movements": movements, "next_from_height": next_from})


async def get_reserves(request: web.Request) -> web.Response:
    """Client and house totals, supply and the latest attestation per asset, at the head.

    Computed synchronously on the loop, so no block commits half-way and every figure is of one
    state; it scans every balance (contracts/reserves.py), which is what a report costs."""
    query = request.app[QUERY]
    head = query.head()
    assets = [
        {
            "asset": r.asset, "decimals": r.decimals, "client_total": r.client_total,
            "house_total": r.house_total, "supply": r.supply,
            "attested": None if r.attested is None else {
                "amount": r.attested.amount, "reference": r.attested.reference,
                "height": r.attested.height, "custodian": r.attested.custodian,
            },
            "coverage": r.coverage,
        }
        for r in compute_reserves(query.state())
    ]  # fmt: skip
    return web.json_response({
        "height": head.height, "state_root": head.state_root.hex(), "block_hash": head.hash().hex(),
        "assets": assets,
    })  # fmt: skip
