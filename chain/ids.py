"""Identifiers: participants, accounts, instruments, trade ids and contract names.

Ids are 1 to 64 characters of ``A-Z a-z 0-9 . _ : -``, not only dots. They are embedded in state
keys, whose parts are separated by ``/``, so the character set keeps keys unambiguous; and in API
paths (``/accounts/<id>``), where an id of only dots (``.``, ``..``) is a dot-segment that every
RFC 3986 client removes before sending, so such an id could never be read back.
"""

from __future__ import annotations

import re

from chain.limits import ID_CHARS_MAX

_ID = re.compile(r"(?!\.*\Z)[A-Za-z0-9._:\-]{1,%d}" % ID_CHARS_MAX, re.ASCII)  # noqa: UP031


def is_valid_id(value: object) -> bool:
    """True iff ``value`` is a str id of the allowed characters and length, not only dots."""
    return type(value) is str and _ID.fullmatch(value) is not None
