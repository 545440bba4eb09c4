"""Rulebook script of corporate actions: a cash dividend paid at its record height, a split
announced and cancelled, and the refusals (not the issuer, an action pending, a bad ratio)."""

from __future__ import annotations

from cli.vectors.rulebook_script import Recorder


def corporate_actions() -> Recorder:
    r = Recorder()
    r.call(
        "setup: issuer-acme issues ACME", "admin", "disclosure", "register_issuer", ["ACME", "issuer-acme"]
    )
    r.call(
        "setup: issuer-acme issues GLOBEX",
        "admin",
        "disclosure",
        "register_issuer",
        ["GLOBEX", "issuer-acme"],
    )
    record = r.chain.height + 9
    r.call(
        "announce_dividend: not the issuer",
        "member-a",
        "corporate_actions",
        "announce_dividend",
        ["ACME", 1_00, record, "A-HOUSE"],
        "not_issuer",
    )
    r.call(
        "announce_dividend 1.00 per ACME",
        "issuer-acme",
        "corporate_actions",
        "announce_dividend",
        ["ACME", 1_00, record, "ACME-CORP"],
    )
    r.call(
        "announce_split: ACME has an action pending",
        "issuer-acme",
        "corporate_actions",
        "announce_split",
        ["ACME", 2, 1, record + 1, 150_00, "ACME-CORP"],
        "action_pending",
    )
    r.call(
        "announce_split: a 1:1 split",
        "issuer-acme",
        "corporate_actions",
        "announce_split",
        ["GLOBEX", 1, 1, record + 1, 42_00, "ACME-CORP"],
        "bad_ratio",
    )
    r.call(
        "announce_split GLOBEX 3:2",
        "issuer-acme",
        "corporate_actions",
        "announce_split",
        ["GLOBEX", 3, 2, record + 10, 42_00, "ACME-CORP"],
    )
    r.call(
        "cancel: not the issuer that announced it",
        "member-a",
        "corporate_actions",
        "cancel",
        [2],
        "not_issuer",
    )
    r.call("cancel the split", "issuer-acme", "corporate_actions", "cancel", [2])
    r.call(
        "cancel: already cancelled",
        "issuer-acme",
        "corporate_actions",
        "cancel",
        [2],
        "action_not_cancellable",
    )
    r.run_until(record, "the dividend's record height")
    r.call(
        "announce_split GLOBEX 3:2 again",
        "issuer-acme",
        "corporate_actions",
        "announce_split",
        ["GLOBEX", 3, 2, r.chain.height + 2, 42_00, "ACME-CORP"],
    )
    r.run_until(r.chain.height + 1, "the split's record height")
    return r


SCRIPTS = {
    "corporate_actions": (
        corporate_actions,
        "dividends and splits, announced, cancelled and paid at the record",
    )
}
