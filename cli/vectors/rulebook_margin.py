"""Rulebook script of margin: collateral, the guarantee and insurance funds, positions, a margin
call that goes unmet, the default waterfall at its deadline, the periodic sweep, and a check
that fails once the price has gone stale."""

from __future__ import annotations

from cli.vectors.rulebook_script import Recorder

EX = "xchg-alpha"


def margin() -> Recorder:
    r = Recorder()
    r.call("setup: UMBRELLA at 100.00", "oracle-1", "oracle", "submit", ["UMBRELLA", 100_00])
    r.call("post 20,000.00 cash", "member-a", "margin", "post", ["A-HOUSE", "USD", 20_000_00])
    r.call(
        "post: a security without a haircut",
        "member-a",
        "margin",
        "post",
        ["A-HOUSE", "ACME", 10],
        "ineligible_collateral",
    )
    r.call("withdraw 1.00", "member-a", "margin", "withdraw", ["A-HOUSE", "USD", 1_00])
    r.call("post 1.00 back", "member-a", "margin", "post", ["A-HOUSE", "USD", 1_00])
    r.call(
        "withdraw: more than posted",
        "member-a",
        "margin",
        "withdraw",
        ["A-HOUSE", "USD", 10**9],
        "insufficient_collateral",
    )
    r.call("set_haircut ACME 20%", "admin", "margin", "set_haircut", ["ACME", 2_000])
    r.call(
        "set_haircut: cash counts at face value",
        "admin",
        "margin",
        "set_haircut",
        ["USD", 0],
        "cash_haircut_fixed",
    )
    r.call("set_rates GLOBEX", "admin", "margin", "set_rates", ["GLOBEX", 2_000, 1_500])
    r.call(
        "set_rates: maintenance above initial",
        "admin",
        "margin",
        "set_rates",
        ["GLOBEX", 1_000, 2_000],
        "bad_rates",
    )
    r.call("contribute 5,000.00 (member-a)", "member-a", "margin", "contribute", ["A-HOUSE", 5_000_00])
    r.call("contribute 10,000.00 (member-b)", "member-b", "margin", "contribute", ["B-HOUSE", 10_000_00])
    r.call(
        "contribute: not the owner",
        "member-b",
        "margin",
        "contribute",
        ["A-HOUSE", 1_00],
        "not_account_owner",
    )
    r.call("fund_insurance 7,000.00", EX, "margin", "fund_insurance", ["XA-HOUSE", 7_000_00])
    r.call(
        "fund_insurance: not the owner",
        EX,
        "margin",
        "fund_insurance",
        ["A-HOUSE", 1_00],
        "not_account_owner",
    )
    r.call(
        "open_position: no collateral",
        EX,
        "margin",
        "open_position",
        ["member-b", "UMBRELLA", 1_000, 100_00],
        "insufficient_margin",
    )
    r.call(
        "open_position member-a long 1,000 UMBRELLA",
        EX,
        "margin",
        "open_position",
        ["member-a", "UMBRELLA", 1_000, 100_00],
    )
    sweep_at = r.chain.height + 10
    r.call(
        "setup: UMBRELLA falls to 85.00 (its breaker halts it)",
        "oracle-1",
        "oracle",
        "submit",
        ["UMBRELLA", 85_00],
    )
    price_height = r.chain.height
    r.call("setup: an admin resumes UMBRELLA", "admin", "instruments", "resume", ["UMBRELLA"])
    r.call("check: member-a is below maintenance, called", "oracle-2", "margin", "check", ["member-a"])
    due = r.chain.height + 10
    r.call(
        "withdraw: a margin call is open",
        "member-a",
        "margin",
        "withdraw",
        ["A-HOUSE", "USD", 1_00],
        "margin_call_open",
    )
    r.call("post member-b collateral", "member-b", "margin", "post", ["B-HOUSE", "USD", 20_000_00])
    r.call(
        "open_position member-b short 100 UMBRELLA",
        EX,
        "margin",
        "open_position",
        ["member-b", "UMBRELLA", -100, 85_00],
    )
    r.call("close_position member-b", EX, "margin", "close_position", ["member-b", "UMBRELLA"])
    r.call(
        "close_position: none held", EX, "margin", "close_position", ["member-b", "UMBRELLA"], "no_position"
    )
    r.call(
        "open_position member-b short 100 UMBRELLA again",
        EX,
        "margin",
        "open_position",
        ["member-b", "UMBRELLA", -100, 85_00],
    )
    r.expect(sweep_at < due, "the first sweep runs before the call falls due")
    r.run_until(due, "the sweep, then the unmet call's deadline defaults member-a")
    r.call(
        "disburse: more than the defaults collected",
        "admin",
        "margin",
        "disburse",
        ["B-HOUSE", "USD", 10**12],
        "insufficient_default_funds",
    )
    r.call("disburse 1,000.00 to B-HOUSE", "admin", "margin", "disburse", ["B-HOUSE", "USD", 1_000_00])
    r.run_until(
        price_height + r.param("oracle", "staleness_blocks"), "sweeps while member-b holds a position"
    )
    r.call("check: the price is stale", "oracle-2", "margin", "check", ["member-b"], "no_price")
    return r


SCRIPTS = {"margin": (margin, "collateral, funds, positions, calls, the default waterfall and the sweep")}
