"""Print terms as Erlang term text (what ``file:consult/1`` reads back).

Pids, ports, references, local funs, native records and local terms have no literal
syntax in Erlang: they print in the shell's display form (``<node.1.0>``,
``#Ref<...>``), which is for humans and is *not* readable by ``file:consult``.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from erlbridge.exceptions import EncodeError
from erlbridge.term.model import (
    Atom,
    BitString,
    ErlString,
    ExportFun,
    FrozenList,
    FrozenMap,
    Fun,
    ImproperList,
    LocalTerm,
    MapPairs,
    NativeRecord,
    Pid,
    Port,
    Reference,
)
from erlbridge.term.quoting import RESERVED_WORDS, escape, format_atom, format_string

logger = logging.getLogger(__name__)

__all__ = ["RESERVED_WORDS", "format_atom", "format_string", "format_term"]


def _int_text(value: int) -> str:
    """``str(value)`` without Python's limit on the number of digits."""
    if value < 0:
        return "-" + _int_text(-value)
    if value.bit_length() < 13000:  # about 3900 digits: within str()'s limit
        return str(value)
    half = int(value.bit_length() * 0.30103) // 2
    high, low = divmod(value, 10**half)
    return _int_text(high) + _int_text(low).zfill(half)


def _format_float(value: float) -> str:
    if not math.isfinite(value):
        raise EncodeError(f"Erlang has no float {value!r}")
    text = repr(value)
    mantissa, e, exponent = text.partition("e")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + (e + exponent.lstrip("+") if e else "")


def _format_binary(data: bytes) -> str:
    if all(32 <= b < 127 or b in (9, 10, 13) for b in data):
        return '<<"' + escape(data.decode("ascii"), '"') + '">>'
    return "<<" + ",".join(map(str, data)) + ">>"


def _format_bitstring(value: BitString) -> str:
    *head, last = value.data
    parts = [str(b) for b in head]
    parts.append(f"{last >> (8 - value.bits)}:{value.bits}")
    return "<<" + ",".join(parts) + ">>"


def _flat(term: Any) -> str:
    """One-line Erlang text for ``term``."""
    cls = type(term)
    if term is True:
        return "true"
    if term is False:
        return "false"
    if term is None:
        return "undefined"
    if cls is int or (isinstance(term, int) and not isinstance(term, bool)):
        return _int_text(int(term))
    if isinstance(term, Atom):
        return format_atom(term)
    if isinstance(term, float):
        return _format_float(term)
    if isinstance(term, str):
        if term.isascii():
            return '<<"' + escape(term, '"') + '">>'
        return '<<"' + escape(term, '"') + '"/utf8>>'
    if isinstance(term, bytes | bytearray | memoryview):
        return _format_binary(bytes(term))
    if isinstance(term, ErlString):
        return format_string(term.text)
    if isinstance(term, list | FrozenList):
        return "[" + ",".join(map(_flat, term)) + "]"
    if isinstance(term, MapPairs):
        return "#{" + ",".join(f"{_flat(k)} => {_flat(v)}" for k, v in term) + "}"
    if isinstance(term, tuple):
        return "{" + ",".join(map(_flat, term)) + "}"
    if isinstance(term, dict | FrozenMap):
        return "#{" + ",".join(f"{_flat(k)} => {_flat(v)}" for k, v in term.items()) + "}"
    if isinstance(term, ImproperList):
        return "[" + ",".join(map(_flat, term.elements)) + "|" + _flat(term.tail) + "]"
    if isinstance(term, BitString):
        return _format_bitstring(term)
    if isinstance(term, ExportFun):
        return f"fun {format_atom(term.module)}:{format_atom(term.function)}/{term.arity}"
    if isinstance(term, NativeRecord):
        fields = ",".join(f"{format_atom(k)} = {_flat(v)}" for k, v in term.fields)
        return f"#{format_atom(term.module)}:{format_atom(term.name)}{{{fields}}}"
    if isinstance(term, Pid | Port | Reference | Fun | LocalTerm):
        return str(term)
    raise EncodeError(f"cannot format {type(term).__name__} as an Erlang term: {term!r:.80}")


def _children(term: Any) -> tuple[str, list[tuple[str, Any]], str, str] | None:
    """For a breakable container: (open, [(prefix, child)], tail_text, close)."""
    if isinstance(term, list | FrozenList) and term:
        return "[", [("", v) for v in term], "", "]"
    if isinstance(term, MapPairs) and term:
        return "#{", [(_flat(k) + " => ", v) for k, v in term], "", "}"
    if isinstance(term, tuple) and term:
        return "{", [("", v) for v in term], "", "}"
    if isinstance(term, ImproperList):
        return "[", [("", v) for v in term.elements], _flat(term.tail), "]"
    if isinstance(term, dict | FrozenMap) and term:
        return "#{", [(_flat(k) + " => ", v) for k, v in term.items()], "", "}"
    return None


def _pretty(term: Any, indent: int, width: int, trail: int) -> str:
    """``term`` starting at column ``indent``, followed by ``trail`` more characters
    (commas, closing brackets) on its last line."""
    text = _flat(term)
    if indent + len(text) + trail <= width:
        return text
    parts = _children(term)
    if parts is None:
        return text
    opening, children, tail, closing = parts
    inner = indent + len(opening)
    pad = "\n" + " " * inner
    after = ("|" + tail if tail else "") + closing
    last = len(children) - 1
    if opening == "[" and all(_children(child) is None for _, child in children):
        # A list of simple terms (e.g. module names): fill lines like io_lib_pretty.
        lines: list[str] = []
        line = ""
        for i, (_, child) in enumerate(children):
            piece = _flat(child) + ("," if i < last else after)
            extra = trail if i == last else 0
            if line and inner + len(line) + len(piece) + extra > width:
                lines.append(line)
                line = ""
            line += piece
        lines.append(line)
        return opening + pad.join(lines)
    out = []
    for i, (prefix, child) in enumerate(children):
        child_trail = 1 if i < last else len(after) + trail
        out.append(prefix + _pretty(child, inner + len(prefix), width, child_trail))
    return opening + ("," + pad).join(out) + after


def format_term(term: Any, *, width: int = 80) -> str:
    """Erlang term text for ``term`` (no trailing ``.``), which ``file:consult/1`` reads
    back as the same term; containers that do not fit in ``width`` columns are broken
    over several lines, one element per line, aligned after the opening bracket.

    A Python ``str`` prints as a UTF-8 binary (``<<"..."/utf8>>``), an ``ErlString``
    as ``"..."``. Pids, ports, references, local funs and native records print in
    display form, which ``file:consult`` cannot read.

    Raises:
        EncodeError: a value with no Erlang form (e.g. a set or NaN).
    """
    return _pretty(term, 0, width, 0)
