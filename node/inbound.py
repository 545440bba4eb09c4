"""The peer messages the node driver handles, and how a malformed one is refused.

Why a module of its own: the driver, block sync, transaction gossip and the evidence relay each
check the messages of their kind, and a peer that sends what no honest node sends is dropped the
same way from all of them: the handler raises ``Misbehaved`` with a reason, and the driver
disconnects the peer with that reason (``bad_status``, ``bad_blocks``, ``malformed_tx`` ...).
"""

from __future__ import annotations

from typing import Any, Final

from node.p2p import MSG

TXS: Final = int(MSG.TXS)
PROPOSAL: Final = int(MSG.PROPOSAL)
VOTE: Final = int(MSG.VOTE)
STATUS: Final = int(MSG.STATUS)
GET_BLOCKS: Final = int(MSG.GET_BLOCKS)
BLOCKS: Final = int(MSG.BLOCKS)
EVIDENCE: Final = int(MSG.EVIDENCE)
HEIGHT_PRUNED: Final = int(MSG.HEIGHT_PRUNED)


class Misbehaved(Exception):
    """A peer sent a message no honest node sends; the reason becomes the disconnect reason."""


def need(ok: bool, reason: str) -> None:
    if not ok:
        raise Misbehaved(reason)


def is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value < 2**63
