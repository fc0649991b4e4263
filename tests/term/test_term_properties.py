"""Hypothesis properties of the term layer: round trips, and total (never crashing)
decoding and parsing of arbitrary input."""

from __future__ import annotations

import contextlib
import math
import os
import struct
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from erlbridge.exceptions import DecodeError, TermSyntaxError
from erlbridge.term import (
    Atom,
    BitString,
    ErlString,
    ExportFun,
    FrozenMap,
    ImproperList,
    NativeRecord,
    Pid,
    Port,
    Reference,
    decode,
    decode_prefix,
    encode,
    format_term,
    parse_term,
    parse_terms,
)
from erlbridge.term.model import freeze

# ERLBRIDGE_HYPOTHESIS_EXAMPLES raises the example count for a thorough local run.
SETTINGS = settings(
    max_examples=int(os.environ.get("ERLBRIDGE_HYPOTHESIS_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

text = st.text(st.characters(exclude_categories=["Cs"]), max_size=20)
# Atom("true") / Atom("false") are not canonical: the atoms decode to True / False.
atoms = st.builds(Atom, text.filter(lambda t: t not in ("true", "false")))
nodes = st.sampled_from([Atom("a@b"), Atom("node@127.0.0.1"), Atom("nonode@nohost")])
u32 = st.integers(0, 2**32 - 1)

scalars = st.one_of(
    st.integers(),
    st.integers(-(2**3000), 2**3000),
    st.floats(allow_nan=False, allow_infinity=False),
    atoms,
    st.booleans(),
    st.binary(max_size=40),
    st.builds(
        lambda data, bits: BitString(data + b"\x00", bits),
        st.binary(max_size=5),
        st.integers(1, 7),
    ),
    st.builds(ErlString, st.text(st.characters(exclude_categories=["Cs"]), min_size=1)),
    st.builds(Pid, nodes, u32, u32, u32),
    st.builds(Reference, nodes, u32, st.lists(u32, min_size=1, max_size=5).map(tuple)),
    st.builds(Port, nodes, st.integers(0, 2**64 - 1), u32),
    st.builds(ExportFun, atoms, atoms, st.integers(0, 255)),
)


def _dict(pairs: list[tuple[Any, Any]]) -> dict[Any, Any]:
    out: dict[Any, Any] = {}
    for k, v in pairs:
        out[freeze(k)] = v
    return out


def _improper(items: list[Any], tail: Any) -> Any:
    if isinstance(tail, list | ErlString):
        return items + list(tail)
    return ImproperList(tuple(items), tail)


terms = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.lists(st.tuples(inner, inner), max_size=5).map(_dict),
        st.builds(_improper, st.lists(inner, min_size=1, max_size=4), inner),
        st.builds(
            lambda m, n, fields, exported: NativeRecord(m, n, tuple(fields), exported),
            atoms,
            atoms,
            st.lists(st.tuples(atoms, inner), max_size=4),
            st.booleans(),
        ),
    ),
    max_leaves=25,
)


def _strict_equal(a: Any, b: Any) -> bool:
    """Equality that also tells -0.0 from 0.0 (Python's == does not)."""
    return bool(a == b) and encode(a) == encode(b)


@SETTINGS
@given(terms)
def test_decode_encode_round_trip(term: Any) -> None:
    wire = encode(term)
    back = decode(wire)
    assert back == term
    assert encode(back) == wire
    assert decode(encode(term, compressed=True)) == term
    assert decode_prefix(b"\x00" + wire + b"\xff", 1) == (back, len(wire) + 1)


@SETTINGS
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_floats_keep_their_bits(value: float) -> None:
    back = decode(encode(value))
    assert struct.pack(">d", back) == struct.pack(">d", value)


def _decode_or_raise(wire: bytes) -> None:
    """``wire`` decodes to a term that encodes back (to the same term), or raises
    DecodeError with an offset inside the data."""
    try:
        term = decode(wire)
    except DecodeError as exc:
        assert exc.offset is not None and 0 <= exc.offset <= len(wire)
        return
    assert decode(encode(term)) == term  # encode never fails for what decode accepted


@SETTINGS
@given(st.binary(max_size=200))
@example(b"\x83")
@example(b"\x83l\x00\x00\x00\x02a\x01")
@example(b"\x83P\x00\x00\x00\x05x\x9c")
def test_arbitrary_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for candidate in (data, b"\x83" + data):
        _decode_or_raise(candidate)
        with contextlib.suppress(DecodeError):
            decode_prefix(candidate)


def _atom_wire(tag: int, raw: bytes) -> bytes:
    if tag in (100, 118):
        return bytes((tag,)) + struct.pack(">H", len(raw)) + raw
    return bytes((tag, len(raw) & 0xFF)) + raw  # a wrong length byte is fine too


# Atom texts around the 255-character limit, in one- to four-byte characters.
atom_texts = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=260).map(lambda t: t.encode("utf-8", "surrogatepass")),
    st.builds(
        lambda char, n: char * n,
        st.sampled_from([b"a", b"\xe9", "é".encode(), "€".encode(), "\U0001f600".encode()]),
        st.integers(250, 260),
    ),
)
# Every place an atom sits: alone, in a tuple, as a pid/port/reference node, as an
# export's module or function.
atom_places = st.sampled_from(
    [
        lambda a: a,
        lambda a: b"h\x02" + a + a,
        lambda a: b"X" + a + bytes(12),
        lambda a: b"Y" + a + bytes(8),
        lambda a: b"x" + a + bytes(12),
        lambda a: b"g" + a + bytes(9),
        lambda a: b"Z\x00\x01" + a + bytes(8),
        lambda a: b"e" + a + bytes(5),
        lambda a: b"q" + a + b"w\x01fa\x01",
        lambda a: b"qw\x01m" + a + b"a\x01",
    ]
)


@SETTINGS
@given(st.sampled_from([100, 115, 118, 119]), atom_texts, atom_places)
@example(100, b"a" * 256, lambda a: a)
@example(115, b"\xe9" * 255, lambda a: b"X" + a + bytes(12))
def test_every_atom_decode_accepts_encodes_back(tag: int, raw: bytes, place: Any) -> None:
    wire = b"\x83" + place(_atom_wire(tag, raw))
    _decode_or_raise(wire)
    for cut in (len(wire) - 1, len(wire) // 2):
        _decode_or_raise(wire[:cut])


@SETTINGS
@given(terms, st.data())
def test_corrupted_encodings_decode_or_raise_decode_error(term: Any, data: st.DataObject) -> None:
    wire = bytearray(encode(term))
    for _ in range(data.draw(st.integers(1, 4))):
        index = data.draw(st.integers(0, len(wire) - 1))
        wire[index] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(1, len(wire)))
    for candidate in (bytes(wire), bytes(wire[:cut])):
        _decode_or_raise(candidate)


def _text_safe(term: Any) -> bool:
    """Terms with a literal Erlang syntax (no pids, ports, refs, records)."""
    if isinstance(term, Pid | Port | Reference | NativeRecord):
        return False
    if isinstance(term, list | tuple):
        return all(map(_text_safe, term))
    if isinstance(term, dict | FrozenMap):
        return all(_text_safe(k) and _text_safe(v) for k, v in term.items())
    if isinstance(term, ImproperList):
        return all(map(_text_safe, term.elements)) and _text_safe(term.tail)
    return True


@SETTINGS
@given(terms.filter(_text_safe), st.sampled_from([0, 20, 80]))
def test_format_then_parse_round_trip(term: Any, width: int) -> None:
    text = format_term(term, width=width)
    back = parse_term(text)
    assert back == term
    assert encode(back) == encode(term) or _has_float_zero(term)


def _has_float_zero(term: Any) -> bool:
    # "-0.0" and "0.0" read back exactly; only map key merging could differ.
    return isinstance(term, float) and math.copysign(1, term) < 0


@SETTINGS
@given(st.text(max_size=120))
@example("[" * 3000)
@example('<<"\\x{110000}">>.')
@example("'\\")
def test_arbitrary_text_parses_or_raises_syntax_error(source: str) -> None:
    try:
        parse_terms(source)
    except TermSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1


_TOKENS = st.sampled_from(
    [
        "{", "}", "[", "]", "|", ",", ".", " ", "\n", "<<", ">>", "#{", "=>", "-", "+",
        "1", "16#ff", "2.5e3", "$a", "$\\n", "atom", "'q a'", '"str"', "fun", "m", ":",
        "/", "utf8", "%c\n", "Var", "_", "\\", "'", '"', "1_0", "36#z", "99#1", "1:3",
        "(", ")", "float", "binary", "bits", "bytes", "little", "native", "signed", "unit:8",
        "unit", "all", "undefined", "utf16", "utf32", ":16", ":99999999999", "<<1:3>>",
    ]
)  # fmt: skip


@SETTINGS
@given(st.lists(_TOKENS, max_size=40).map("".join))
def test_token_soup_parses_or_raises_syntax_error(source: str) -> None:
    try:
        parse_terms(source)
    except TermSyntaxError as exc:
        assert exc.line >= 1 and exc.column >= 1


@pytest.mark.parametrize("depth", [10, 399])
def test_nesting_within_the_limit_round_trips(depth: int) -> None:
    term: Any = Atom("leaf")
    for _ in range(depth):
        term = (term,)
    assert decode(encode(term)) == term
    assert parse_term(format_term(term)) == term
