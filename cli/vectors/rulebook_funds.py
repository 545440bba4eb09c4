"""Rulebook script of index funds: a fund over six equities at capped weights, creation and
redemption in kind, a manager's rebalance and the scheduled one."""

from __future__ import annotations

from cli.vectors.rulebook_script import Recorder

CONSTITUENTS = ["ACME", "GLOBEX", "INITECH", "UMBRELLA", "HOOLI", "STARK"]
PRICES = [
    ["ACME", 180_00],
    ["GLOBEX", 95_00],
    ["INITECH", 40_00],
    ["UMBRELLA", 120_00],
    ["HOOLI", 250_00],
    ["STARK", 310_00],
]
UNIT = 10**4  # index_fund.UNIT_DECIMALS
INTERVAL = 12


def index_fund() -> Recorder:
    r = Recorder()
    r.call("setup: prices of the six equities", "oracle-1", "oracle", "submit_many", [sorted(PRICES)])
    fund = ["IDX", "IDX-U", CONSTITUENTS, 2_500, INTERVAL, "FUND-HOUSE", 100_00]
    r.call(
        "create_fund: a cap six constituents cannot fill",
        "fund-mgr",
        "index_fund",
        "create_fund",
        [*fund[:3], 1_666, *fund[4:]],
        "cap_infeasible",
    )
    r.call("create_fund IDX", "fund-mgr", "index_fund", "create_fund", fund)
    rebalance_at = r.chain.height + INTERVAL
    r.call(
        "create_fund: the fund exists",
        "fund-mgr",
        "index_fund",
        "create_fund",
        ["IDX", "IDX-U2", *fund[2:]],
        "fund_exists",
    )
    r.call(
        "create_units: one unit is too small for whole shares",
        "member-a",
        "index_fund",
        "create_units",
        ["IDX", "A-HOUSE", UNIT],
        "creation_too_small",
    )
    r.call("create_units 100 units", "member-a", "index_fund", "create_units", ["IDX", "A-HOUSE", 100 * UNIT])
    r.call(
        "redeem_units: more than outstanding",
        "member-a",
        "index_fund",
        "redeem_units",
        ["IDX", "A-HOUSE", 101 * UNIT],
        "insufficient_units",
    )
    r.call("redeem_units 40 units", "member-a", "index_fund", "redeem_units", ["IDX", "A-HOUSE", 40 * UNIT])
    r.call("setup: STARK rises to 330.00", "oracle-1", "oracle", "submit", ["STARK", 330_00])
    r.call(
        "rebalance_now: not the manager",
        "issuer-acme",
        "index_fund",
        "rebalance_now",
        ["IDX"],
        "not_fund_manager",
    )
    r.call("rebalance_now", "fund-mgr", "index_fund", "rebalance_now", ["IDX"])
    r.run_until(rebalance_at, "the scheduled rebalance")
    return r


SCRIPTS = {"index_fund": (index_fund, "index funds: creation, redemption, rebalances")}
