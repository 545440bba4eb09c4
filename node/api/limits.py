"""The API's limits: how much one request may ask for or send, each named with its unit last.

They are part of the API's contract (docs/API.md states them), so they live in one place. The
routes read them through a ``Limits`` object handed to the app, not as module globals, so that
the server's owner decides them: ``node/rpc.py`` hands one that reads its own module's values at
each request (a test or an operator's hook that lowers ``node.rpc.BLOCKS_PAGE_MAX`` changes what
a running server answers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SUBMIT_TXS_MAX = 1_000  # transactions in one POST
WAIT_MS_DEFAULT = 10_000
WAIT_MS_MAX = 60_000
BODY_BYTES_MAX = 9 * 1024 * 1024
BLOCKS_PAGE_MAX = 100
HISTORY_LIMIT_DEFAULT = 100
LIST_PAGE_MAX = 1_000  # participants or instruments in one reply
STATE_KEY_BYTES_MAX = 1_024
QUERY_CHARS_MAX = 256  # one query parameter of a contract view, name or value
REPLAY_YIELD_BLOCKS = 64  # blocks replayed to an /events client before yielding to the loop
SHUTDOWN_TIMEOUT_S = 2.0


@dataclass(frozen=True, slots=True)
class Limits:
    """The per-request limits the routes apply (the defaults above unless given)."""

    submit_txs_max: int = SUBMIT_TXS_MAX
    wait_ms_default: int = WAIT_MS_DEFAULT
    wait_ms_max: int = WAIT_MS_MAX
    blocks_page_max: int = BLOCKS_PAGE_MAX
    history_limit_default: int = HISTORY_LIMIT_DEFAULT
    list_page_max: int = LIST_PAGE_MAX
    state_key_bytes_max: int = STATE_KEY_BYTES_MAX
    query_chars_max: int = QUERY_CHARS_MAX
    replay_yield_blocks: int = REPLAY_YIELD_BLOCKS


LimitsSource = Callable[[], Limits]  # asked once per request that applies a limit


def default_limits() -> Limits:
    return Limits()
