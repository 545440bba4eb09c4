"""The ``clearchain`` command line: the top-level group and the families it is made of.

Each family lives with its job: the client commands in ``cli.commands``, local networks in
``cli.localnet``, benchmarks in ``cli.bench``, the fault harness in ``cli.chaos``. Errors every
command may meet (ClearchainError) are shown as one line, ``error: <code>: <message>``, with exit
status 1 (``cli.commands.plumbing.ClearchainGroup``); a traceback is a bug.
"""

from __future__ import annotations

import click

from cli.bench.commands import bench
from cli.chaos.commands import chaos
from cli.commands import (
    audit,
    bonds,
    chain,
    contracts,
    corporate,
    cycles,
    escrow,
    fund,
    governance,
    keys,
    ledger,
    margin,
    oracle,
    proof,
    trade,
)
from cli.commands.demo import demo, scenario
from cli.commands.genesis import genesis
from cli.commands.node import node
from cli.commands.plumbing import ClearchainGroup
from cli.commands.sim import sim
from cli.localnet.commands import net
from cli.vectors.command import vectors


@click.group(cls=ClearchainGroup)
def main() -> None:
    """clearchain: a permissioned clearing chain."""


for command in (scenario, genesis, bench, sim, net, demo, node, chaos, vectors):
    main.add_command(command)
for family in (contracts, oracle, bonds, cycles, escrow, margin, governance, corporate, fund, keys, ledger,
               trade, chain, audit, proof):  # fmt: skip
    family.register(main)


if __name__ == "__main__":
    main()
