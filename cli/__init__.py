"""The ``clearchain`` command."""
