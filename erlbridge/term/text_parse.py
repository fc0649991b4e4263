"""Parse Erlang term text: what ``file:consult/1`` reads (``.app``, ``.appup``, ``.rel``,
``relup``, ``sys.config``).

A hand-written scanner plus a recursive-descent parser with a nesting limit, so hostile
text gives a ``TermSyntaxError`` (with 1-based line and column), never a
``RecursionError``.
"""

from __future__ import annotations

import logging
import re
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
from erlbridge.term.text_format import RESERVED_WORDS

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

_BIT_TYPES = frozenset(
    [
        "integer",
        "float",
        "binary",
        "bytes",
        "bitstring",
        "bits",
        "utf8",
        "utf16",
        "utf32",
        "signed",
        "unsigned",
        "big",
        "little",
        "native",
    ]
)


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


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = self._scan()
        self.i = 0

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
                number = self.next()
                if number.kind not in ("int", "float", "char"):
                    raise self.error(f"expected a number after {value!r}", number.pos)
                return -number.value if value == "-" else number.value
            if value == "{":
                return tuple(self.sequence("}", depth))
            if value == "[":
                return self.parse_list(depth)
            if value == "#{":
                return self.parse_map(depth)
            if value == "<<":
                return self.binary()
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

    def binary(self) -> bytes | BitString:
        acc = 0
        bits = 0
        if self.at(">>"):
            self.next()
            return b""
        while True:
            value, size = self.segment()
            bits += size
            if bits > _MAX_BINARY_BITS:
                raise self.error("binary too large", self.peek().pos)
            acc = (acc << size) | value
            if self.at(","):
                self.next()
                continue
            self.expect(">>")
            break
        whole, rest = divmod(bits, 8)
        if rest == 0:
            return acc.to_bytes(whole, "big")
        return BitString((acc << (8 - rest)).to_bytes(whole + 1, "big"), rest)

    def segment(self) -> tuple[int, int]:
        """One ``Value[:Size][/Types]`` segment as (unsigned value, size in bits)."""
        token = self.next()
        negative = False
        if token.kind == "punct" and token.value == "-":
            negative = True
            token = self.next()
        if token.kind == "string":
            text: str | None = self.strings(token.value)
        elif token.kind in ("int", "char"):
            text = None
        else:
            raise self.error("expected an integer or a string in a binary", token.pos)
        size: int | None = None
        types: list[str] = []
        if self.at(":"):
            self.next()
            size_token = self.next()
            if size_token.kind != "int":
                raise self.error("expected a segment size", size_token.pos)
            size = size_token.value
            if size > _MAX_BINARY_BITS:
                # Checked before packing: the value would be masked to `size` bits, and a
                # hostile size must be an error, not a gigantic integer (MemoryError).
                raise self.error("binary segment too large", size_token.pos)
        if self.at("/"):
            self.next()
            while True:
                type_token = self.next()
                if type_token.kind != "atom" or type_token.value not in _BIT_TYPES:
                    raise self.error("expected a bit type", type_token.pos)
                types.append(type_token.value)
                if not self.at("-"):
                    break
                self.next()
        little = "little" in types
        if text is not None:
            codes = [ord(c) for c in text]
            return self.pack_codes(codes, size, types, little, token)
        value = -token.value if negative else token.value
        return self.pack_int(value, size, types, little, token)

    def pack_codes(
        self, codes: list[int], size: int | None, types: list[str], little: bool, token: _Token
    ) -> tuple[int, int]:
        acc = 0
        total = 0
        for code in codes:
            value, bits = self.pack_int(code, size, types, little, token)
            acc = (acc << bits) | value
            total += bits
        return acc, total

    def pack_int(
        self, value: int, size: int | None, types: list[str], little: bool, token: _Token
    ) -> tuple[int, int]:
        for encoding in ("utf8", "utf16", "utf32"):
            if encoding in types:
                if size is not None:
                    raise self.error(f"a {encoding} segment takes no size", token.pos)
                codec = encoding.replace("utf", "utf-")
                if encoding != "utf8":
                    codec += "-le" if little else "-be"
                try:
                    raw = chr(value).encode(codec)
                except (ValueError, UnicodeEncodeError, OverflowError):
                    raise self.error(f"not a code point for {encoding}", token.pos) from None
                return int.from_bytes(raw, "big"), 8 * len(raw)
        if "float" in types or any(t in types for t in ("binary", "bytes", "bitstring", "bits")):
            raise self.error("only integer and utf segments are supported", token.pos)
        bits = 8 if size is None else size
        value &= (1 << bits) - 1
        if little and bits % 8 == 0:
            value = int.from_bytes(value.to_bytes(bits // 8, "big"), "little")
        return value, bits

    def terms(self) -> list[Any]:
        result = []
        while self.peek().kind != "eof":
            result.append(self.term(0))
            token = self.next()
            if token.kind != "dot":
                raise self.error("expected '.' after a term", token.pos)
        return result


def parse_terms(text: str) -> list[Any]:
    """Parse every ``.``-terminated term in ``text``, as ``file:consult/1`` does.

    ``"abc"`` gives an :class:`ErlString`, ``<<"abc">>`` and ``<<1,2>>`` give ``bytes``
    (``BitString`` when not a whole number of bytes), atoms give :class:`Atom`
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
