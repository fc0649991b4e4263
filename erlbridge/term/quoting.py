"""Erlang syntax for atom names and strings: when an atom needs quotes, and how
characters are escaped inside quotes.

Its own module so the term model (``str(Atom(...))``) and the term text formatter
both use it without importing each other.
"""

from __future__ import annotations

import logging
import re

logger = logging.getLogger(__name__)

__all__ = ["RESERVED_WORDS", "escape", "format_atom", "format_string"]

_UNQUOTED = re.compile(r"[a-z][A-Za-z0-9_@]*\Z")
RESERVED_WORDS = frozenset(
    [
        "after",
        "and",
        "andalso",
        "band",
        "begin",
        "bnot",
        "bor",
        "bsl",
        "bsr",
        "bxor",
        "case",
        "catch",
        "cond",
        "div",
        "else",
        "end",
        "fun",
        "if",
        "let",
        "maybe",
        "not",
        "of",
        "or",
        "orelse",
        "receive",
        "rem",
        "try",
        "when",
        "xor",
    ]
)
_ESCAPES = {
    "\\": "\\\\",
    "\n": "\\n",
    "\t": "\\t",
    "\r": "\\r",
    "\b": "\\b",
    "\f": "\\f",
    "\v": "\\v",
    "\x1b": "\\e",
    "\x7f": "\\d",
}


def escape(text: str, quote: str) -> str:
    """``text`` with ``quote``, backslashes and unprintable characters escaped as
    Erlang reads them inside that quote character."""
    out = []
    for char in text:
        if char == quote:
            out.append("\\" + quote)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif char < " " or "\x80" <= char < "\xa0" or not char.isprintable():
            out.append(f"\\x{{{ord(char):X}}}")
        else:
            out.append(char)
    return "".join(out)


def format_atom(name: str) -> str:
    """Erlang syntax for an atom: bare when possible, else single-quoted."""
    if _UNQUOTED.match(name) and name not in RESERVED_WORDS:
        return name
    return "'" + escape(name, "'") + "'"


def format_string(text: str) -> str:
    """Erlang syntax for a string (a list of code points): ``"..."``."""
    return '"' + escape(text, '"') + '"'
