"""Offline audit support for ``clearchain audit | export | report``: where a block history is
read from and written to (``history``), the tally of an audit run (``tally``) and the activity
report over a history (``activity``)."""
