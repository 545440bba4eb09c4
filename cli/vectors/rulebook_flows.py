"""Rulebook scripts of the contracts that act over time: settlement cycles (netting at a cut-off),
hash-locked escrows (claim, refund, expiry), disclosure obligations (deadlines that halt and
slash) and bonds (term ends, equivocation evidence). Each drives its tasks by advancing height
or block time."""

from __future__ import annotations

import hashlib
from typing import Any

from chain.certificate import PRECOMMIT, vote_sign_bytes
from chain.encoding import H
from chain.keys import KeyPair
from cli.localnet import devnet
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.vectors.rulebook_script import Recorder

PREIMAGE = hashlib.sha256(b"vectors/escrow-preimage").digest()
HASHLOCK = hashlib.sha256(PREIMAGE).digest()


def cycles() -> Recorder:
    r = Recorder()
    day_ms = r.param("cycles", "day_ms")
    date = r.chain.time_ms // day_ms
    close_at = date * day_ms + day_ms * r.param("cycles", "close_at_bps") // 10_000
    r.call(
        "submit a T+0 trade",
        "xchg-alpha",
        "cycles",
        "submit",
        ["C-1", "A-C001", "B-C001", "ACME", 10, 150_00, DAY, 0],
    )
    r.call(
        "submit: T+ beyond the maximum",
        "xchg-alpha",
        "cycles",
        "submit",
        ["C-2", "A-C001", "B-C001", "ACME", 1, 150_00, DAY, 9],
        "bad_tplus",
    )
    r.call(
        "submit: trade id pending",
        "xchg-alpha",
        "cycles",
        "submit",
        ["C-1", "A-C001", "B-C001", "ACME", 10, 150_00, DAY, 0],
        "duplicate_trade_id",
    )
    batch = [
        ["C-3", "B-C001", "A-C001", "ACME", 4, 150_00, DAY, 0],
        ["C-4", "A-HOUSE", "B-HOUSE", "GLOBEX", 100, 42_00, DAY, 0],
        ["C-5", "A-HOUSE", "B-HOUSE", "GLOBEX", 1, 42_00, DAY, 9],
    ]
    r.call("submit_batch: two accepted, one refused", "xchg-alpha", "cycles", "submit_batch", [batch])
    r.call("submit_batch: not an exchange", "member-a", "cycles", "submit_batch", [batch[:1]], "not_exchange")
    r.advance(to_time_ms=close_at)
    r.tasks("the cut-off: the cycle nets and settles", [("cycles", "close", "ok")], time_ms=close_at)
    r.call(
        "submit: the cycle has closed",
        "xchg-alpha",
        "cycles",
        "submit",
        ["C-6", "A-C001", "B-C001", "ACME", 1, 150_00, DAY, 0],
        "cycle_closed",
    )
    return r


def escrow() -> Recorder:
    r = Recorder()
    far = 1_000
    r.call("lock E-1", "member-a", "escrow", "lock", ["E-1", "A-C001", "B-C001", "USD", 50_00, HASHLOCK, far])
    r.call(
        "lock: id exists",
        "member-a",
        "escrow",
        "lock",
        ["E-1", "A-C001", "B-C001", "USD", 50_00, HASHLOCK, far],
        "escrow_exists",
    )
    r.call("claim: wrong preimage", "member-b", "escrow", "claim", ["E-1", bytes(32)], "bad_preimage")
    r.call("claim E-1", "member-b", "escrow", "claim", ["E-1", PREIMAGE])
    timeout = r.chain.height + 4
    r.call(
        "lock E-2", "member-a", "escrow", "lock", ["E-2", "A-C001", "B-C001", "USD", 20_00, HASHLOCK, timeout]
    )
    r.call(
        "lock E-3",
        "member-a",
        "escrow",
        "lock",
        ["E-3", "A-C002", "B-C002", "USD", 30_00, HASHLOCK, timeout + 1],
    )
    r.call("refund: not yet timed out", "member-a", "escrow", "refund", ["E-2"], "escrow_not_expired")
    r.advance(to_height=timeout)
    r.call(
        "refund E-2 at its timeout (its expiry task then finds it refunded)",
        "member-a",
        "escrow",
        "refund",
        ["E-2"],
    )
    case = r.call(
        "claim: timed out (E-3's expiry task then refunds it)",
        "member-b",
        "escrow",
        "claim",
        ["E-3", PREIMAGE],
        "escrow_expired",
    )
    r.expect([t["task"] for t in case["tasks"]] == ["expire"], "E-3 expires in the block of the late claim")
    r.call("claim: already refunded", "member-b", "escrow", "claim", ["E-2", PREIMAGE], "escrow_closed")
    return r


def disclosure() -> Recorder:
    r = Recorder()
    doc1, doc2 = hashlib.sha256(b"report-1").digest(), hashlib.sha256(b"report-2").digest()
    r.call(
        "register_issuer: not an issuer",
        "admin",
        "disclosure",
        "register_issuer",
        ["STARK", "member-a"],
        "not_issuer",
    )
    r.call("obligate: no issuer", "admin", "disclosure", "obligate", ["STARK", 4, 1], "no_issuer")
    r.call("register_issuer STARK", "admin", "disclosure", "register_issuer", ["STARK", "issuer-acme"])
    r.call("obligate STARK every 4 blocks, 1 of grace", "admin", "disclosure", "obligate", ["STARK", 4, 1])
    deadline = r.chain.height + 5
    r.call("file: not the issuer", "member-a", "disclosure", "file", ["STARK", doc1, "q1"], "not_issuer")
    r.advance(to_height=deadline)
    r.tasks(
        "check_deadline: no filing, STARK is overdue and halted", [("disclosure", "check_deadline", "ok")]
    )
    r.call("file cures the overdue filing", "issuer-acme", "disclosure", "file", ["STARK", doc1, "q1"])
    r.call(
        "file: the same document",
        "issuer-acme",
        "disclosure",
        "file",
        ["STARK", doc1, "q1 again"],
        "duplicate_document",
    )
    r.call("file a second report", "issuer-acme", "disclosure", "file", ["STARK", doc2, "q2"])
    r.call("release STARK", "admin", "disclosure", "release", ["STARK"])
    r.call("release: no obligation", "admin", "disclosure", "release", ["STARK"], "no_obligation")
    return r


def _vote(key: KeyPair, height: int, label: str) -> list[Any]:
    block_hash = H(b"leaf", label.encode())
    sig = key.sign(vote_sign_bytes(devnet.CHAIN_ID, PRECOMMIT, height, 0, block_hash))
    return [key.public, height, 0, PRECOMMIT, block_hash, sig]


def bonds() -> Recorder:
    r = Recorder()
    r.call(
        "post: not a bonding role",
        "member-a",
        "bonds",
        "post",
        ["A-HOUSE", "USD", 10**8, None],
        "not_bondable",
    )
    r.call(
        "post: below the minimum",
        "xchg-alpha",
        "bonds",
        "post",
        ["XA-HOUSE", "USD", 1_00, 3],
        "bond_below_minimum",
    )
    r.call(
        "post an exchange bond for 5 blocks", "xchg-alpha", "bonds", "post", ["XA-HOUSE", "USD", 50_000_00, 5]
    )
    term_end = r.chain.height + 5
    r.call("post a validator bond", "validator-1", "bonds", "post", ["V1-HOUSE", "USD", 100_000_00, None])
    key = devnet.validator_key(1)
    same = _vote(key, 1, "a")
    r.call(
        "submit_evidence: the same block twice",
        "auditor-1",
        "bonds",
        "submit_evidence",
        [same, same],
        "not_conflicting",
    )
    r.call(
        "submit_evidence: a double precommit slashes",
        "auditor-1",
        "bonds",
        "submit_evidence",
        [_vote(key, 1, "a"), _vote(key, 1, "b")],
    )
    r.advance(to_height=term_end)
    r.tasks("return_bond at term end", [("bonds", "return_bond", "ok")])
    return r


SCRIPTS = {
    "cycles": (cycles, "T+N settlement cycles: submissions, the cut-off task that nets and settles"),
    "escrow": (escrow, "hash-locked escrows: lock, claim, refund and the expiry task"),
    "disclosure": (disclosure, "issuers' filing obligations and the deadline task"),
    "bonds": (bonds, "bonds: posting, equivocation evidence and the term-end return task"),
}
