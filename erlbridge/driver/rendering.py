"""Text, JSON and HTML renderings shared by the driver's reports (pure: no I/O).

:func:`jsonable` makes an Erlang term JSON-safe, :func:`term_text` shows one on one line
in Erlang syntax; :func:`render_table` and :func:`render_html` lay out the tables of
:class:`~erlbridge.driver.run_report.RunReport`, the readiness and plan-check reports.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from erlbridge.term import ErlString, format_term

__all__ = ["jsonable", "render_html", "render_table", "term_text"]


def jsonable(term: Any) -> Any:
    """Convert an Erlang term (as decoded by erlbridge) into JSON-safe Python data.

    str (including atoms) stays a str; int/float/bool/None stay; bytes become UTF-8 text
    when valid, else ``"<<hex>>"``; lists and tuples become lists; dicts get string keys;
    anything else (pids, references, funs, ...) becomes ``str(term)``, which erlbridge
    types render in Erlang syntax.
    """
    if term is None or isinstance(term, bool | int | float):
        return term
    if isinstance(term, str):
        return term[:]  # a plain str: an Atom's bare name (str() would quote it)
    if isinstance(term, ErlString):
        return term.text
    if isinstance(term, bytes | bytearray):
        try:
            return bytes(term).decode("utf-8")
        except UnicodeDecodeError:
            return "<<" + bytes(term).hex() + ">>"
    if isinstance(term, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in term.items()}
    if isinstance(term, list | tuple):
        return [jsonable(x) for x in term]
    return str(term)


def term_text(term: Any, width: int = 200) -> str:
    """One line of Erlang syntax for a term (plain text stays as is), cut at ``width``:
    what messages and log lines show of an Erlang reason (never a Python repr)."""
    if type(term) is str:
        text = term
    else:
        try:
            text = format_term(term, width=1 << 30)
        except Exception:  # display must never fail
            text = repr(term)
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def render_table(headers: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """Plain fixed-width text table (no dependency; the CLI may use rich instead)."""
    rows = [[" ".join(str(c).split()) for c in r] for r in rows]
    widths = [len(h) for h in headers]
    for r in rows:
        for i, c in enumerate(r):
            widths[i] = max(widths[i], len(c))
    line = "  ".join(h.ljust(widths[i]) for i, h in enumerate(headers)).rstrip()
    sep = "  ".join("-" * w for w in widths)
    body = ["  ".join(c.ljust(widths[i]) for i, c in enumerate(r)).rstrip() for r in rows]
    return "\n".join([line, sep, *body])


def render_html(headers: Sequence[str], rows: Iterable[Sequence[str]], caption: str) -> str:
    """A small self-contained HTML table for notebooks (all cells escaped)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows
    )
    return (
        f"<table><caption>{html.escape(caption)}</caption>"
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
