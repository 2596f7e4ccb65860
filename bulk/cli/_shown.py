"""Text from outside bulk (input cells, provider answers, paths, account names) as the console
shows it: never read as rich markup, never as terminal control sequences.

rich reads ``[bold]`` or ``[/x]`` in any string it prints as markup (a campaign cell
``[bold]C1`` printed bold ``C1``; a number cell ``[/x]`` stopped ``bulk validate`` with a
MarkupError), and a terminal runs the escape sequences a cell or an error text may carry.
"""

from __future__ import annotations

import unicodedata

from rich.markup import escape
from rich.text import Text


def _visible(char: str) -> str:
    """A control or format character as its escape (``\\x1b``, ``\\u202e``); others as is."""
    if char != "\t" and unicodedata.category(char) in ("Cc", "Cf", "Cs", "Co"):
        code = ord(char)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return char


def visible(value: object) -> str:
    """``value`` as text with every control character spelled out."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(_visible(c) for c in text)


def cell(value: object) -> Text:
    """A table cell: the value's text, no markup read, controls spelled out."""
    return Text(visible(value))


def inline(value: object) -> str:
    """For an f-string the console reads as markup: the value escaped, controls spelled out."""
    return escape(visible(value))


__all__ = ["cell", "inline", "visible"]
