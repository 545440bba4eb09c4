"""The ``clearchain`` command families, one module each, and the list that registers them.

Every family is a ``click`` group or command that ``cli.main`` adds to the top-level group; the
options every client command shares (``--node``, ``--keys-dir``, ``--as``, ``--json``) and the way
an error becomes one line and an exit status are in ``cli.commands.plumbing``, and signing and
sending through one node's API is ``cli.commands.session``.
"""
