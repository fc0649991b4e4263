"""Parse Erlang term text: what ``file:consult/1`` reads (``.app``, ``.appup``, ``.rel``,
``relup``, ``sys.config``).

A hand-written scanner plus a recursive-descent parser with a nesting limit, so hostile
text gives a ``TermSyntaxError`` (with 1-based line and column), never a
``RecursionError``.

Binaries follow ``erl_parse:normalise/1`` and ``eval_bits`` (OTP 25): every segment form
a literal term can hold (integer, float, binary/bits/bytes, utf8/16/32, sizes, units,
signedness, endianness, nested binaries, parenthesised values) builds the same bits, and
every form they refuse (e.g. ``<<"a"/binary>>``, ``<<1.5:24/float>>``, ``<<1/unit:8>>``)
is a ``TermSyntaxError``. ``native`` endianness is the byte order of the machine running
Python (``sys.byteorder``): what ``erl`` on the same machine does; a big-endian Erlang
node would read such a segment differently.

Why one module (~720 lines): the scanner and the parser share one token stream and one
error position; the binary-segment rules (about 200 lines) are parser methods that read
tokens and the bit budget, so moving them out would need a mixin or a parser passed around.
"""

from __future__ import annotations

import logging
import math
import re
import struct
import sys
from dataclasses import dataclass
from typing import Any

from erlbridge.exceptions import TermSyntaxError
from erlbridge.term.encoder import encode
from erlbridge.term.model import (
    Atom,
    BitString,
    ErlString,
    ExportFun,
    ImproperList,
    MapPairs,
    freeze,
)
from erlbridge.term.quoting import RESERVED_WORDS

logger = logging.getLogger(__name__)

__all__ = ["MAX_TEXT_DEPTH", "parse_term", "parse_terms"]

#: Nesting limit of the text parser (containers inside containers).
MAX_TEXT_DEPTH = 400
#: Python refuses int(str) beyond this many digits (CVE-2020-10735); longer numbers
#: are converted chunk by chunk.
_DIGIT_CHUNK = 4000

_WS = re.compile(r"(?:\s+|%[^\n]*)+")
_NAME = re.compile(r"[a-zß-öø-ÿ][A-Za-z0-9_@À-ÖØ-öø-ÿ]*")
_VAR = re.compile(r"[A-Z_À-ÖØ-Þ][A-Za-z0-9_@À-ÖØ-öø-ÿ]*")
_NUMBER = re.compile(
    r"(?P<int>[0-9](?:_?[0-9])*)"
    r"(?:(?P<frac>\.[0-9](?:_?[0-9])*(?:[eE][+-]?[0-9](?:_?[0-9])*)?)"
    r"|#(?P<based>[0-9A-Za-z](?:_?[0-9A-Za-z])*))?"
)
# `maybe` and `else` are keywords only since OTP 27 (a feature in 25): read them as atoms.
_RESERVED = RESERVED_WORDS - {"maybe", "else"}
_PUNCT = ("<<", ">>", "#{", "=>", "{", "}", "[", "]", "(", ")", ",", "|", "-", "+", ":", "/", "*")
_SIMPLE_ESCAPES = {
    "b": 8,
    "d": 127,
    "e": 27,
    "f": 12,
    "n": 10,
    "r": 13,
    "s": 32,
    "t": 9,
    "v": 11,
}
#: Largest binary the text parser builds (16 MiB). A few characters of text such as
#: ``<<0:99999999999>>`` must not make us allocate gigabytes: config and relup files
#: never hold binaries this large, so a larger size is a TermSyntaxError.
_MAX_BINARY_BITS = 1 << 27

#: Everything the whole text may build from segment sizes, beyond its own length: a
#: few characters such as ``[<<1:134217728>>, <<1:134217728>>, ...]`` must not add up
#: to gigabytes either.
_BUDGET_BITS = _MAX_BINARY_BITS

#: What each bit type word sets, as in ``erl_bits``: ``bytes`` and ``bits`` set the
#: unit too; two words that set one field differently conflict (``big-little``).
_TYPE_WORDS: dict[str, tuple[tuple[str, str | int], ...]] = {
    "integer": (("type", "integer"),),
    "float": (("type", "float"),),
    "binary": (("type", "binary"),),
    "bytes": (("type", "binary"), ("unit", 8)),
    "bitstring": (("type", "binary"), ("unit", 1)),
    "bits": (("type", "binary"), ("unit", 1)),
    "utf8": (("type", "utf8"),),
    "utf16": (("type", "utf16"),),
    "utf32": (("type", "utf32"),),
    "signed": (("sign", "signed"),),
    "unsigned": (("sign", "unsigned"),),
    "big": (("endian", "big"),),
    "little": (("endian", "little"),),
    "native": (("endian", "native"),),
}
_FLOAT_FORMATS = {16: "e", 32: "f", 64: "d"}
_UTF_TYPES = ("utf8", "utf16", "utf32")


def _to_int(digits: str, base: int) -> int:
    """``int(digits, base)`` without Python's limit on the number of digits."""
    if len(digits) <= _DIGIT_CHUNK:
        return int(digits, base)
    value = 0
    for start in range(0, len(digits), _DIGIT_CHUNK):
        chunk = digits[start : start + _DIGIT_CHUNK]
        value = value * base ** len(chunk) + int(chunk, base)
    return value


class _Token:
    __slots__ = ("kind", "pos", "value")

    def __init__(self, kind: str, value: Any, pos: int) -> None:
        self.kind = kind  # 'atom', 'int', 'float', 'string', 'char', 'punct', 'dot', 'eof'
        self.value = value
        self.pos = pos


@dataclass(frozen=True, slots=True)
class _Segment:
    """A segment's type after the ``erl_bits`` defaults; ``pos`` and ``size_pos`` are
    where errors about its value and its size point."""

    kind: str  # integer, float, binary, utf8, utf16 or utf32
    size: Any  # as written: an int, or Atom("all") for a binary without a size
    unit: int
    endian: str  # big or little (native is resolved)
    pos: int
    size_pos: int


class _Bits:
    """A growing bitstring: whole bytes plus fewer than 8 pending bits, so appending
    a segment costs its own size, not the size built so far."""

    __slots__ = ("data", "pending", "pending_bits")

    def __init__(self) -> None:
        self.data = bytearray()
        self.pending = 0
        self.pending_bits = 0

    @property
    def size(self) -> int:
        return 8 * len(self.data) + self.pending_bits

    def add(self, value: int, bits: int) -> None:
        """Append the ``bits`` low bits of ``value`` (0 <= value < 2**bits)."""
        value |= self.pending << bits
        whole, rest = divmod(self.pending_bits + bits, 8)
        if whole:
            self.data += (value >> rest).to_bytes(whole, "big")
            value &= (1 << rest) - 1
        self.pending = value
        self.pending_bits = rest

    def add_bytes(self, data: bytes) -> None:
        if self.pending_bits:
            self.add(int.from_bytes(data, "big"), 8 * len(data))
        else:
            self.data += data

    def result(self) -> bytes | BitString:
        if not self.pending_bits:
            return bytes(self.data)
        last = self.pending << (8 - self.pending_bits)
        return BitString(bytes(self.data) + bytes((last,)), self.pending_bits)


def _is_atom(term: Any, name: str) -> bool:
    return isinstance(term, Atom) and term == name


def _bit_length(value: bytes | BitString) -> int:
    if isinstance(value, BitString):
        return 8 * len(value.data) - 8 + value.bits
    return 8 * len(value)


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._scan()
        self.i = 0
        self.budget = _BUDGET_BITS + 8 * len(text)

    # -- errors ---------------------------------------------------------------------

    def error(self, message: str, pos: int) -> TermSyntaxError:
        line = self.text.count("\n", 0, pos) + 1
        column = pos - (self.text.rfind("\n", 0, pos) + 1) + 1
        return TermSyntaxError(message, line, column, pos)

    # -- scanner --------------------------------------------------------------------

    def _scan(self) -> list[_Token]:
        text = self.text
        n = len(text)
        pos = 0
        tokens: list[_Token] = []
        add = tokens.append
        while True:
            match = _WS.match(text, pos)
            if match:
                pos = match.end()
            if pos >= n:
                add(_Token("eof", None, pos))
                return tokens
            char = text[pos]
            if char == "." and (pos + 1 >= n or text[pos + 1].isspace() or text[pos + 1] == "%"):
                add(_Token("dot", None, pos))
                pos += 1
            elif "0" <= char <= "9":
                pos = self._scan_number(pos, add)
            elif char == "'":
                value, end = self._scan_quoted(pos, "'")
                if len(value) > 255:
                    raise self.error("atom longer than 255 characters", pos)
                add(_Token("atom", value, pos))
                pos = end
            elif char == '"':
                value, end = self._scan_quoted(pos, '"')
                add(_Token("string", value, pos))
                pos = end
            elif char == "$":
                if pos + 1 >= n:
                    raise self.error("character literal at end of input", pos)
                if text[pos + 1] == "\\":
                    code, end = self._scan_escape(pos + 1)
                else:
                    code, end = ord(text[pos + 1]), pos + 2
                add(_Token("char", code, pos))
                pos = end
            elif (match := _NAME.match(text, pos)) is not None:
                value = match.group()
                if len(value) > 255:
                    raise self.error("atom longer than 255 characters", pos)
                add(_Token("keyword" if value in _RESERVED else "atom", value, pos))
                pos = match.end()
            elif _VAR.match(text, pos):
                raise self.error("variables are not allowed in terms", pos)
            else:
                for punct in _PUNCT:
                    if text.startswith(punct, pos):
                        add(_Token("punct", punct, pos))
                        pos += len(punct)
                        break
                else:
                    raise self.error(f"unexpected character {char!r}", pos)

    def _scan_number(self, pos: int, add: Any) -> int:
        match = _NUMBER.match(self.text, pos)
        assert match is not None  # the caller saw a digit
        digits = match.group("int").replace("_", "")
        if match.group("frac") is not None:
            if len(digits) > _DIGIT_CHUNK:
                raise self.error("float literal too long", pos)
            value = float(digits + match.group("frac").replace("_", ""))
            if value - value != 0.0:  # overflowed to infinity: erl_scan refuses it too
                raise self.error("float out of range", pos)
            add(_Token("float", value, pos))
        elif match.group("based") is not None:
            base = int(digits)
            if not 2 <= base <= 36:
                raise self.error(f"integer base {base} is not in 2..36", pos)
            try:
                value = _to_int(match.group("based").replace("_", ""), base)
            except ValueError:
                raise self.error(f"bad digits for base {base}", pos) from None
            add(_Token("int", value, pos))
        else:
            add(_Token("int", _to_int(digits, 10), pos))
        end = match.end()
        if end < len(self.text) and (self.text[end].isalnum() or self.text[end] == "_"):
            raise self.error("bad number", pos)
        return end

    def _scan_escape(self, pos: int) -> tuple[int, int]:
        """``pos`` is at a backslash; return (code point, end)."""
        text = self.text
        if pos + 1 >= len(text):
            raise self.error("escape at end of input", pos)
        char = text[pos + 1]
        if char in "01234567":
            end = pos + 1
            while end < len(text) and end < pos + 4 and text[end] in "01234567":
                end += 1
            return int(text[pos + 1 : end], 8), end
        if char == "x":
            if text.startswith("{", pos + 2):
                close = text.find("}", pos + 3)
                digits = text[pos + 3 : close] if close > 0 else ""
                end = close + 1
            else:
                digits = text[pos + 2 : pos + 4]
                end = pos + 4
            if not digits or not all(c in "0123456789abcdefABCDEF" for c in digits):
                raise self.error("bad \\x escape", pos)
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise self.error("code point out of range", pos)
            return code, end
        if char == "^":
            if pos + 2 >= len(text):
                raise self.error("escape at end of input", pos)
            return ord(text[pos + 2]) & 31, pos + 3
        return _SIMPLE_ESCAPES.get(char, ord(char)), pos + 2

    def _scan_quoted(self, pos: int, quote: str) -> tuple[str, int]:
        text = self.text
        out: list[str] = []
        i = pos + 1
        while True:
            end = i
            while end < len(text) and text[end] != quote and text[end] != "\\":
                end += 1
            out.append(text[i:end])
            if end >= len(text):
                raise self.error("unterminated quoted text", pos)
            if text[end] == quote:
                return "".join(out), end + 1
            code, i = self._scan_escape(end)
            out.append(chr(code))

    # -- parser ---------------------------------------------------------------------

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        token = self.tokens[self.i]
        if token.kind != "eof":
            self.i += 1
        return token

    def expect(self, punct: str) -> _Token:
        token = self.next()
        if token.kind != "punct" or token.value != punct:
            raise self.error(f"expected {punct!r}", token.pos)
        return token

    def at(self, punct: str) -> bool:
        token = self.tokens[self.i]
        return token.kind == "punct" and token.value == punct

    def term(self, depth: int) -> Any:
        if depth > MAX_TEXT_DEPTH:
            raise self.error(f"term nested deeper than {MAX_TEXT_DEPTH}", self.peek().pos)
        token = self.next()
        kind = token.kind
        if kind == "atom":
            value = token.value
            if value == "true":
                return True
            if value == "false":
                return False
            return Atom(value)
        if kind in ("int", "float", "char"):
            return token.value
        if kind == "keyword":
            if token.value == "fun":
                return self.export_fun()
            raise self.error(f"reserved word {token.value!r} must be quoted", token.pos)
        if kind == "string":
            return ErlString(self.strings(token.value))
        if kind == "punct":
            value = token.value
            if value in ("-", "+"):
                return self.signed_number(value)
            if value == "{":
                return tuple(self.sequence("}", depth))
            if value == "[":
                return self.parse_list(depth)
            if value == "#{":
                return self.parse_map(depth)
            if value == "<<":
                return self.binary(depth)
            if value == "(":
                inner = self.term(depth + 1)
                self.expect(")")
                return inner
        raise self.error("expected a term", token.pos)

    def strings(self, first: str) -> str:
        parts = [first]
        while self.peek().kind == "string":  # "ab" "cd" is "abcd"
            parts.append(self.next().value)
        return "".join(parts)

    def sequence(self, closing: str, depth: int) -> list[Any]:
        items: list[Any] = []
        if self.at(closing):
            self.next()
            return items
        while True:
            items.append(self.term(depth + 1))
            if self.at(","):
                self.next()
                continue
            self.expect(closing)
            return items

    def parse_list(self, depth: int) -> Any:
        items: list[Any] = []
        if self.at("]"):
            self.next()
            return items
        while True:
            items.append(self.term(depth + 1))
            if self.at(","):
                self.next()
                continue
            if self.at("|"):
                self.next()
                tail = self.term(depth + 1)
                self.expect("]")
                if isinstance(tail, list):
                    return items + tail
                if isinstance(tail, ErlString):
                    return items + list(tail)
                return ImproperList(tuple(items), tail)
            self.expect("]")
            return items

    def parse_map(self, depth: int) -> dict[Any, Any] | MapPairs:
        pairs: list[tuple[Any, Any]] = []
        if self.at("}"):
            self.next()
            return {}
        while True:
            key = self.term(depth + 1)
            self.expect("=>")
            pairs.append((key, self.term(depth + 1)))
            if self.at(","):
                self.next()
                continue
            self.expect("}")
            break
        result: dict[Any, Any] = {}
        for key, value in pairs:
            try:
                result[key] = value
            except TypeError:
                result[freeze(key)] = value
        if len(result) == len(pairs):
            return result
        # Keys repeat: the last value wins, as in Erlang. Keys that are only equal in
        # Python (1 and 1.0, 1 and true) are different Erlang keys: keep them apart.
        exact: dict[bytes, tuple[Any, Any]] = {}
        for key, value in pairs:
            exact[encode(key)] = (freeze(key), value)
        if len(exact) == len(result):
            return result
        return MapPairs(exact.values())

    def export_fun(self) -> ExportFun:
        module = self.next()
        if module.kind != "atom":
            raise self.error("expected a module name", module.pos)
        self.expect(":")
        function = self.next()
        if function.kind != "atom":
            raise self.error("expected a function name", function.pos)
        self.expect("/")
        arity = self.next()
        if arity.kind != "int" or arity.value > 255:
            raise self.error("expected an arity 0..255", arity.pos)
        return ExportFun(Atom(module.value), Atom(function.value), arity.value)

    def binary(self, depth: int) -> bytes | BitString:
        out = _Bits()
        if self.at(">>"):
            self.next()
            return b""
        while True:
            self.segment(out, depth)
            if out.size > _MAX_BINARY_BITS:
                raise self.error("binary too large", self.peek().pos)
            if self.at(","):
                self.next()
                continue
            self.expect(">>")
            return out.result()

    def segment(self, out: _Bits, depth: int) -> None:
        """Append one ``Value[:Size][/Types]`` segment to ``out``, as ``eval_bits``
        builds it in ``erl_parse:normalise/1``."""
        start = self.peek()
        if start.kind == "punct" and start.value in ("-", "+"):
            # bit_expr -> prefix_op expr_max: only numbers take a sign in a term.
            self.next()
            value: Any = self.signed_number(start.value)
        else:
            value = self.term(depth + 1)
        size: Any = None
        size_pos = start.pos
        if self.at(":"):
            self.next()
            size_pos = self.peek().pos
            if self.at("-") or self.at("+"):  # bit_size_expr is an expr_max
                raise self.error("expected a segment size", size_pos)
            size = self.term(depth + 1)
        segment = self.segment_type(size, start.pos, size_pos)
        if isinstance(value, ErlString):
            # A string is one segment per character; the type applies to each.
            if segment.kind == "binary":
                raise self.error('a string is not a binary: write <<"...">> inside', start.pos)
            codes = list(value)
            plain = _Segment("integer", 8, 1, "big", start.pos, size_pos)
            if type(segment.size) is int and segment == plain:
                self.spend(8 * len(codes), start.pos)
                out.add_bytes(bytes(code & 0xFF for code in codes))
                return
            if not codes:  # erl still checks the type against a 0
                self.pack(_Bits(), 0, segment)
            for code in codes:
                self.pack(out, code, segment)
            return
        self.pack(out, value, segment)

    def signed_number(self, sign: str) -> int | float:
        """The number after a unary ``-`` or ``+``, maybe in parentheses: ``-(1)``."""
        opened = 0
        while self.at("("):
            self.next()
            opened += 1
        number = self.next()
        if number.kind not in ("int", "float", "char"):
            raise self.error(f"expected a number after {sign!r}", number.pos)
        for _ in range(opened):
            self.expect(")")
        value: int | float = number.value
        return -value if sign == "-" else value

    def segment_type(self, size: Any, pos: int, size_pos: int) -> _Segment:
        """Read ``/Types`` and apply the ``erl_bits`` defaults (size ``all`` for a
        binary without one)."""
        fields: dict[str, str | int] = {}
        if self.at("/"):
            self.next()
            while True:
                token = self.next()
                if token.kind != "atom":
                    raise self.error("expected a bit type", token.pos)
                settings = _TYPE_WORDS.get(token.value)
                if self.at(":"):
                    self.next()
                    number = self.next()
                    if number.kind != "int":
                        raise self.error("expected a unit", number.pos)
                    if token.value != "unit" or not 1 <= number.value <= 256:
                        raise self.error(f"bad bit type {token.value}:{number.value}", token.pos)
                    settings = (("unit", number.value),)
                if settings is None:
                    raise self.error(f"unknown bit type {token.value!r}", token.pos)
                for field, setting in settings:
                    old = fields.setdefault(field, setting)
                    if old != setting:
                        prefix = "unit:" if field == "unit" else ""
                        raise self.error(
                            f"bit types {prefix}{old} and {prefix}{setting} conflict", token.pos
                        )
                if not self.at("-"):
                    break
                self.next()
        kind = str(fields.get("type", "integer"))
        unit: Any = fields.get("unit")
        endian = str(fields.get("endian", "big"))
        if endian == "native":
            endian = sys.byteorder
        if kind in _UTF_TYPES:
            # erl_bits allows no size (but the atom `undefined`) and no unit.
            if (size is not None and not _is_atom(size, "undefined")) or unit is not None:
                raise self.error(f"a {kind} segment takes no size or unit", size_pos)
            return _Segment(kind, None, 1, endian, pos, size_pos)
        if size is None:
            if kind == "binary":
                size = Atom("all")
            elif unit is not None:
                raise self.error(f"a unit needs a size ({kind} segment)", size_pos)
            else:
                size = 64 if kind == "float" else 8
        if unit is None:
            unit = 8 if kind == "binary" else 1
        return _Segment(kind, size, unit, endian, pos, size_pos)

    def spend(self, bits: int, pos: int) -> None:
        if bits > _MAX_BINARY_BITS:
            # Checked before packing: a hostile size must be an error, not a gigantic
            # integer (MemoryError).
            raise self.error("binary segment too large", pos)
        self.budget -= bits
        if self.budget < 0:
            raise self.error("binaries too large in total", pos)

    def pack(self, out: _Bits, value: Any, segment: _Segment) -> None:
        """Append ``value`` as one segment, or raise where ``eval_bits`` fails."""
        kind, size, unit = segment.kind, segment.size, segment.unit
        pos, size_pos = segment.pos, segment.size_pos
        is_int = type(value) is int  # bool is an atom in Erlang
        if kind in _UTF_TYPES:
            if not is_int or not (0 <= value <= 0x10FFFF) or 0xD800 <= value <= 0xDFFF:
                raise self.error(f"not a code point for {kind}", pos)
            codec = kind.replace("utf", "utf-")
            if kind != "utf8":
                codec += "-le" if segment.endian == "little" else "-be"
            out.add_bytes(chr(value).encode(codec))
            return
        if _is_atom(size, "all") and kind == "binary":
            if not isinstance(value, bytes | BitString):
                raise self.error("a binary segment needs a binary value", pos)
            bits = _bit_length(value)
            if bits % unit:
                raise self.error(f"binary of {bits} bits is not a multiple of unit {unit}", pos)
        else:
            if type(size) is not int or size < 0:
                raise self.error("segment size must be a non-negative integer", size_pos)
            bits = size * unit
        if kind == "binary":
            if not isinstance(value, bytes | BitString):
                raise self.error("a binary segment needs a binary value", pos)
            have = _bit_length(value)
            if have < bits:
                raise self.error(f"binary of {have} bits is shorter than {bits}", pos)
            # Copies of text the parser already built: nothing to spend.
            if isinstance(value, bytes) and bits % 8 == 0:
                out.add_bytes(value[: bits // 8])
            else:
                data = value.data if isinstance(value, BitString) else value
                out.add(int.from_bytes(data, "big") >> (8 * len(data) - bits), bits)
            return
        if kind == "float":
            if bits not in _FLOAT_FORMATS:
                raise self.error(f"a float segment is 16, 32 or 64 bits, not {bits}", size_pos)
            if not is_int and type(value) is not float:
                raise self.error("a float segment needs a number value", pos)
            try:
                number = float(value)
            except OverflowError:
                raise self.error("integer too large for a float", pos) from None
            self.spend(bits, pos)
            out.add_bytes(_pack_float(number, bits, segment.endian == "little"))
            return
        if not is_int:
            raise self.error("an integer segment needs an integer value", pos)
        self.spend(bits, size_pos)
        value &= (1 << bits) - 1  # two's complement, whatever the signedness
        if segment.endian == "little":
            # Least significant byte first; a last partial byte holds the top bits.
            whole, rest = divmod(bits, 8)
            out.add_bytes((value & ((1 << 8 * whole) - 1)).to_bytes(whole, "little"))
            out.add(value >> 8 * whole, rest)
        else:
            out.add(value, bits)

    def terms(self) -> list[Any]:
        result = []
        while self.peek().kind != "eof":
            result.append(self.term(0))
            token = self.next()
            if token.kind != "dot":
                raise self.error("expected '.' after a term", token.pos)
        return result


def _pack_float(value: float, bits: int, little: bool) -> bytes:
    fmt = ("<" if little else ">") + _FLOAT_FORMATS[bits]
    try:
        return struct.pack(fmt, value)
    except OverflowError:  # too large for 16 or 32 bits: erl rounds to infinity, as C does
        return struct.pack(fmt, math.copysign(math.inf, value))


def parse_terms(text: str) -> list[Any]:
    """Parse every ``.``-terminated term in ``text``, as ``file:consult/1`` does.

    ``"abc"`` gives an :class:`ErlString`, ``<<"abc">>`` and ``<<1,2>>`` give ``bytes``
    (``BitString`` when not a whole number of bytes; every segment form ``erl`` reads
    is built as ``erl`` builds it), atoms give :class:`Atom`
    (``true``/``false`` give ``bool``), ``[H|T]`` with a non-list ``T`` gives an
    :class:`ImproperList`, ``#{}`` a ``dict``, ``fun m:f/1`` an :class:`ExportFun`.

    Raises:
        TermSyntaxError: with 1-based ``line`` and ``column`` of the problem.
    """
    parser = _Parser(text)
    try:
        return parser.terms()
    except RecursionError:  # only when the caller is already deep in the stack
        raise parser.error("term nested too deeply for the Python stack", 0) from None


def parse_term(text: str) -> Any:
    """Parse exactly one term; the trailing ``.`` is optional.

    Raises:
        TermSyntaxError: not exactly one term, or malformed text.
    """
    parser = _Parser(text)
    if parser.peek().kind == "eof":
        raise parser.error("expected a term", parser.peek().pos)
    try:
        term = parser.term(0)
    except RecursionError:  # only when the caller is already deep in the stack
        raise parser.error("term nested too deeply for the Python stack", 0) from None
    token = parser.next()
    if token.kind == "dot":
        token = parser.next()
    if token.kind != "eof":
        raise parser.error("expected the end of the text", token.pos)
    return term
