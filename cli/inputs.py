"""What a person types, read one way everywhere: whole numbers in ASCII digits only.

Python's ``int()`` and ``str.isdigit()`` accept any Unicode digit: ``int("١٠")`` and
``int("１０")`` are 10, and ``"²".isdigit()`` is true though ``int("²")`` raises. A quantity typed
as Arabic-Indic or full-width digits is almost always a paste from the wrong place, and a
traceback is never an answer, so every whole number the CLI reads goes through ``ascii_int``:
click's integer options (installed by ``install_click_integers``), tenors (``T+N``), cycle days.
Decimal amounts are read by ``cli/amounts.py`` under the same rule.
"""

from __future__ import annotations

from typing import Any

import click


def is_ascii_decimal(text: str) -> bool:
    """True iff ``text`` is one or more of the ASCII digits 0-9 and nothing else."""
    return text.isascii() and text.isdecimal()


def ascii_int(value: Any) -> int:
    """``value`` as an int: an int as it is, or an optional sign and ASCII digits (surrounding
    spaces allowed); ValueError otherwise, as ``int()`` raises, so click reports it as usage."""
    if type(value) is int:
        return value
    text = str(value).strip()
    digits = text[1:] if text[:1] in "+-" else text
    if not is_ascii_decimal(digits):
        raise ValueError(f"{value!r} is not a whole number in the digits 0-9")
    return int(text)


def install_click_integers() -> None:
    """Make click's INT and IntRange options parse with ``ascii_int`` (they call
    ``_number_class(value)``); once, at CLI start-up, before any command parses."""
    click.types.IntParamType._number_class = staticmethod(ascii_int)  # type: ignore[assignment]
