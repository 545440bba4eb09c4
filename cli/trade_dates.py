"""Trade dates as people type them (``YYYY-MM-DD``) and as tickets carry them (a day number: days
since 1970-01-01 UTC, the chain's ``time_ms // 86_400_000``).

The CLI may read a clock: a ticket typed without a date is dated today, UTC, by the local clock.
The chain then accepts it only within its window of trade ids (``settlement.trade_id_days``
days back, one day ahead), so a clock that is a day off still works.
"""

from __future__ import annotations

import datetime as dt
import re
import time

from cli.inputs import InputError, quoted
from contracts.settlement import DAY_MS, TRADE_DATE_MAX

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EPOCH = dt.date(1970, 1, 1)


def day_of_ms(time_ms: int) -> int:
    """The day number of a time in ms since the epoch (a block's time, or the local clock's)."""
    return time_ms // DAY_MS


def today() -> int:
    """Today's day number, UTC, by the local clock."""
    return day_of_ms(time.time_ns() // 1_000_000)


def parse_trade_date(text: str) -> int:
    """``YYYY-MM-DD`` (a real calendar date) as a day number. Raises InputError ``bad_date``."""
    try:
        if not _DATE.fullmatch(text):
            raise ValueError(text)
        day = (dt.date.fromisoformat(text) - _EPOCH).days
    except ValueError:
        raise InputError("bad_date", f"trade date {quoted(text)} is not a date YYYY-MM-DD") from None
    if not 0 <= day <= TRADE_DATE_MAX:
        raise InputError("bad_date", f"trade date {quoted(text)} is before 1970-01-01")
    return day


def date_text(day: int) -> str:
    """A day number as ``YYYY-MM-DD``."""
    return (_EPOCH + dt.timedelta(days=day)).isoformat()
