"""Rulebook scripts of the registry contracts: who takes part (membership), what trades
(instruments), where assets sit (accounts), how they enter and leave (custody), and the first
things done with them: gross DvP settlement, prices and circuit-breaker rules."""

from __future__ import annotations

from chain.keys import KeyPair
from cli.localnet.devnet import GENESIS_DAY as DAY
from cli.vectors.rulebook_script import Recorder
from contracts.settlement import DAY_MS

NEW_KEY = KeyPair.dev("vectors/member-c")
TRADE = ["T-1", "A-C001", "B-C001", "ACME", 10, 150_00, DAY]


def membership() -> Recorder:
    r = Recorder()
    r.call(
        "register member-c", "admin", "membership", "register", ["member-c", ["member"], 1, [NEW_KEY.public]]
    )
    r.call(
        "register: already registered",
        "admin",
        "membership",
        "register",
        ["member-c", ["member"], 1, [NEW_KEY.public]],
        "participant_exists",
    )
    r.call(
        "register: threshold above the key count",
        "admin",
        "membership",
        "register",
        ["member-d", ["member"], 2, [NEW_KEY.public]],
        "bad_policy",
    )
    r.call(
        "set_roles: member-c also an exchange",
        "admin",
        "membership",
        "set_roles",
        ["member-c", ["exchange", "member"]],
    )
    r.call(
        "set_roles: not an admin",
        "member-a",
        "membership",
        "set_roles",
        ["member-c", ["member"]],
        "not_admin",
    )
    r.call(
        "set_roles: unknown participant",
        "admin",
        "membership",
        "set_roles",
        ["nobody", ["member"]],
        "unknown_participant",
    )
    r.call("set_status: suspend member-c", "admin", "membership", "set_status", ["member-c", False])
    r.call(
        "set_status: an admin cannot suspend itself",
        "admin",
        "membership",
        "set_status",
        ["admin", False],
        "cannot_suspend_self",
    )
    r.reject(
        "a suspended sender is rejected",
        "member-c",
        "accounts",
        "open",
        ["C-HOUSE", "house", None],
        "sender_suspended",
        keys=[NEW_KEY],
    )
    r.call("set_status: reinstate member-c", "admin", "membership", "set_status", ["member-c", True])
    other = KeyPair.dev("vectors/member-c-2")
    r.call(
        "rotate_keys: member-c to a new key",
        "member-c",
        "membership",
        "rotate_keys",
        [1, [other.public]],
        keys=[NEW_KEY],
    )
    r.reject(
        "the old key no longer signs",
        "member-c",
        "membership",
        "rotate_keys",
        [1, [NEW_KEY.public]],
        "signer_not_in_policy",
        keys=[NEW_KEY],
    )
    r.call(
        "rotate_keys: a key listed twice",
        "member-c",
        "membership",
        "rotate_keys",
        [1, [NEW_KEY.public, NEW_KEY.public]],
        "bad_policy",
        keys=[other],
    )
    return r


def instruments() -> Recorder:
    r = Recorder()
    r.call("list_instrument SOL", "admin", "instruments", "list_instrument", ["SOL", "crypto", 9, "USD"])
    r.call(
        "list_instrument: already listed",
        "admin",
        "instruments",
        "list_instrument",
        ["SOL", "crypto", 9, "USD"],
        "instrument_exists",
    )
    r.call(
        "list_instrument: currency is not cash",
        "admin",
        "instruments",
        "list_instrument",
        ["ETH", "crypto", 18, "ACME"],
        "bad_currency",
    )
    r.call("halt STARK", "admin", "instruments", "halt", ["STARK", "news pending"])
    r.call("halt: already halted", "admin", "instruments", "halt", ["STARK", "again"], "instrument_halted")
    r.call(
        "settle: a halted instrument",
        "xchg-alpha",
        "settlement",
        "settle",
        ["T-H", "A-HOUSE", "B-HOUSE", "STARK", 1, 100_00, DAY],
        "instrument_halted",
    )
    r.call("resume STARK", "admin", "instruments", "resume", ["STARK"])
    r.call("resume: not halted", "admin", "instruments", "resume", ["STARK"], "instrument_active")
    r.call("resume: unknown instrument", "admin", "instruments", "resume", ["NOPE"], "unknown_instrument")
    return r


def accounts() -> Recorder:
    r = Recorder()
    r.call("open A-C003", "member-a", "accounts", "open", ["A-C003", "client", "client-003"])
    r.call(
        "open: exists", "member-a", "accounts", "open", ["A-C003", "client", "client-003"], "account_exists"
    )
    r.call(
        "open: a system account id",
        "member-a",
        "accounts",
        "open",
        ["BOND-POOL", "house", None],
        "account_reserved",
    )
    r.call(
        "open: a client account names its client",
        "member-a",
        "accounts",
        "open",
        ["A-C004", "client", None],
        "client_required",
    )
    r.call("open: not a member", "xchg-alpha", "accounts", "open", ["X-1", "house", None], "not_member")
    r.call("suspend A-C003", "member-a", "accounts", "suspend", ["A-C003"])
    r.call("suspend: already suspended", "member-a", "accounts", "suspend", ["A-C003"], "account_suspended")
    r.call("reinstate A-C003", "member-a", "accounts", "reinstate", ["A-C003"])
    r.call("reinstate: not suspended", "member-a", "accounts", "reinstate", ["A-C003"], "account_active")
    r.call(
        "reinstate: another member's account",
        "member-b",
        "accounts",
        "reinstate",
        ["A-C003"],
        "not_account_owner",
    )
    r.call("close A-C003", "member-a", "accounts", "close", ["A-C003"])
    r.call("close: already closed", "member-a", "accounts", "close", ["A-C003"], "account_closed")
    r.call("close: holds assets", "member-a", "accounts", "close", ["A-C001"], "account_not_empty")
    return r


def custody() -> Recorder:
    r = Recorder()
    r.call(
        "deposit USD to A-C001", "custodian", "custody", "deposit", ["A-C001", "USD", 250_000_00, "wire-1"]
    )
    r.call(
        "deposit: reference used",
        "custodian",
        "custody",
        "deposit",
        ["A-C001", "USD", 1_00, "wire-1"],
        "duplicate_deposit",
    )
    r.call(
        "deposit: not a custodian",
        "member-a",
        "custody",
        "deposit",
        ["A-C001", "USD", 1_00, "wire-2"],
        "not_custodian",
    )
    r.call("attest_reserves USD", "custodian", "custody", "attest_reserves", ["USD", 10**12, "stmt-1"])
    r.call(
        "attest_reserves: unknown instrument",
        "custodian",
        "custody",
        "attest_reserves",
        ["NOPE", 1, "stmt-2"],
        "unknown_instrument",
    )
    r.call("request_withdrawal 1", "member-a", "custody", "request_withdrawal", ["A-C001", "USD", 100_00])
    r.call("request_withdrawal 2", "member-a", "custody", "request_withdrawal", ["A-C001", "USD", 200_00])
    r.call("request_withdrawal 3", "member-a", "custody", "request_withdrawal", ["A-C001", "USD", 300_00])
    r.call(
        "request_withdrawal: more than the balance",
        "member-a",
        "custody",
        "request_withdrawal",
        ["A-C001", "USD", 10**13],
        "insufficient_balance",
    )
    r.call(
        "request_withdrawal: not the owner",
        "member-b",
        "custody",
        "request_withdrawal",
        ["A-C001", "USD", 1_00],
        "not_account_owner",
    )
    r.call("confirm_withdrawal 1", "custodian", "custody", "confirm_withdrawal", [1])
    forget_1 = r.chain.time_ms + r.param("custody", "final_withdrawal_days") * DAY_MS
    r.call(
        "confirm_withdrawal: not pending",
        "custodian",
        "custody",
        "confirm_withdrawal",
        [1],
        "withdrawal_not_pending",
    )
    r.call("cancel_withdrawal 2", "member-a", "custody", "cancel_withdrawal", [2])
    r.call(
        "cancel_withdrawal: unknown", "member-a", "custody", "cancel_withdrawal", [99], "unknown_withdrawal"
    )
    r.call(
        "cancel_withdrawal: not the requester",
        "member-b",
        "custody",
        "cancel_withdrawal",
        [3],
        "not_requester",
    )
    r.call("reject_withdrawal 3", "custodian", "custody", "reject_withdrawal", [3, "compliance hold"])
    r.call(
        "reject_withdrawal: not a custodian",
        "member-a",
        "custody",
        "reject_withdrawal",
        [3, "x"],
        "not_custodian",
    )
    r.advance(to_time_ms=forget_1)
    r.tasks(
        "a final withdrawal is removed after its lifetime",
        [("custody", "forget_withdrawal", "ok")],
        time_ms=forget_1,
    )
    r.call(
        "confirm_withdrawal: removed after its lifetime",
        "custodian",
        "custody",
        "confirm_withdrawal",
        [1],
        "unknown_withdrawal",
    )
    return r


def settlement() -> Recorder:
    r = Recorder()
    r.call("settle one trade", "xchg-alpha", "settlement", "settle", TRADE)
    r.call("settle: trade id used", "xchg-alpha", "settlement", "settle", TRADE, "duplicate_trade_id")
    r.call(
        "settle: seller short",
        "xchg-alpha",
        "settlement",
        "settle",
        ["T-2", "A-C001", "B-C002", "ACME", 10, 150_00, DAY],
        "insufficient_securities",
    )
    r.call(
        "settle: same account",
        "xchg-alpha",
        "settlement",
        "settle",
        ["T-3", "A-C001", "A-C001", "ACME", 1, 150_00, DAY],
        "same_account",
    )
    r.reject("settle: wrong argument count", "xchg-alpha", "settlement", "settle", ["T-4"], "bad_arguments")
    batch = [
        ["T-5", "A-C001", "B-C001", "ACME", 5, 151_00, DAY],
        ["T-6", "A-HOUSE", "B-HOUSE", "GLOBEX", 100, 42_00, DAY],
    ]
    r.call("settle_batch two trades", "xchg-alpha", "settlement", "settle_batch", [batch])
    r.call(
        "settle_batch: a trade id twice fails that trade alone",
        "xchg-alpha",
        "settlement",
        "settle_batch",
        [
            [
                ["T-7", "A-C001", "B-C001", "ACME", 1, 150_00, DAY],
                ["T-7", "A-C001", "B-C001", "ACME", 1, 150_00, DAY],
            ]
        ],
        "ok",
    )
    r.call(
        "settle_batch: not an exchange",
        "member-a",
        "settlement",
        "settle_batch",
        [[["T-8", "A-C001", "B-C001", "ACME", 1, 150_00, DAY]]],
        "not_exchange",
    )
    r.call(
        "settle: trade date before the window of trade ids",
        "xchg-alpha",
        "settlement",
        "settle",
        ["T-9", "A-C001", "B-C001", "ACME", 1, 150_00, DAY - 1 - r.param("settlement", "trade_id_days")],
        "trade_expired",
    )
    r.call(
        "settle: trade date after tomorrow",
        "xchg-alpha",
        "settlement",
        "settle",
        ["T-9", "A-C001", "B-C001", "ACME", 1, 150_00, DAY + 2],
        "trade_date_future",
    )
    out_of_window = (DAY + r.param("settlement", "trade_id_days") + 1) * DAY_MS
    r.advance(to_time_ms=out_of_window)
    r.tasks(
        "the first block after the window of the trades' date removes their ids",
        [("settlement", "expire", "ok")],
        time_ms=out_of_window,
    )
    r.call(
        "settle: the same ticket once its id is gone",
        "xchg-alpha",
        "settlement",
        "settle",
        TRADE,
        "trade_expired",
    )
    return r


def oracle() -> Recorder:
    r = Recorder()
    r.call("submit ACME", "oracle-1", "oracle", "submit", ["ACME", 150_00])
    r.call("submit: cash has no price", "oracle-1", "oracle", "submit", ["USD", 1_00], "instrument_is_cash")
    r.call("submit: not an oracle", "member-a", "oracle", "submit", ["ACME", 150_00], "not_oracle")
    r.call("submit_many", "oracle-2", "oracle", "submit_many", [[["ACME", 151_00], ["GLOBEX", 42_00]]])
    r.call(
        "submit_many: an instrument twice",
        "oracle-2",
        "oracle",
        "submit_many",
        [[["ACME", 1], ["ACME", 2]]],
        "duplicate_instrument",
    )
    r.call(
        "submit_many: unknown instrument",
        "oracle-3",
        "oracle",
        "submit_many",
        [[["ACME", 1], ["NOPE", 2]]],
        "unknown_instrument",
    )
    return r


def breakers() -> Recorder:
    r = Recorder()
    r.call("set_rule HOOLI", "admin", "breakers", "set_rule", ["HOOLI", 3, 1_000])
    r.call(
        "set_rule: cash has no price",
        "admin",
        "breakers",
        "set_rule",
        ["USD", 3, 1_000],
        "instrument_is_cash",
    )
    r.call("set_rule: not an admin", "member-a", "breakers", "set_rule", ["HOOLI", 3, 1_000], "not_admin")
    r.call("clear_rule HOOLI", "admin", "breakers", "clear_rule", ["HOOLI"])
    r.call("clear_rule: no rule of its own", "admin", "breakers", "clear_rule", ["HOOLI"], "no_rule")
    return r


SCRIPTS = {
    "membership": (membership, "participants, roles, status and key rotation"),
    "instruments": (instruments, "listing, halting and resuming instruments"),
    "accounts": (accounts, "opening, suspending, reinstating and closing clearing accounts"),
    "custody": (custody, "deposits, reserve attestations and the withdrawal lifecycle"),
    "settlement": (settlement, "gross delivery-versus-payment settlement of trade tickets"),
    "oracle": (oracle, "oracle price submissions"),
    "breakers": (breakers, "per-instrument circuit-breaker rules"),
}
