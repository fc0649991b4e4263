"""Binary literals in Erlang term text, against ``erl`` (OTP 25): every segment form
``file:consult/1`` accepts builds the same bits with ``parse_term``, every form it refuses
is a ``TermSyntaxError``; also parentheses around terms, which ``erl_parse`` allows."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erlbridge.exceptions import TermSyntaxError
from erlbridge.term import (
    Atom,
    BitString,
    ErlString,
    ExportFun,
    ImproperList,
    decode,
    format_term,
    parse_term,
)

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
HAVE_ERL = shutil.which("erl") is not None

# (text, bit size, hex of the bits padded with zero bits to whole bytes), or
# (text, None, None) when erl refuses the text (erl_parse "bad term" or a syntax error).
# Produced with the local erl (OTP 25.2.3, x86-64, so `native` is little-endian): each
# text is written to its own file with a trailing ".\n" and read with file:consult/1 by
# _ERL_CONSULT below, which test_golden_cases_against_local_erl runs again.
GOLDEN: list[tuple[str, int | None, str | None]] = [
    ("<<1.5/float>>", 64, "3ff8000000000000"),
    ("<<1.5:32/float>>", 32, "3fc00000"),
    ("<<2.0:16/float>>", 16, "4000"),
    ('<<"abc"/binary>>', None, None),
    ('<<"ab"/bits>>', None, None),
    ('<<"ab"/bitstring>>', None, None),
    ('<<"ab"/bytes>>', None, None),
    ('<<(<<"x">>)/binary>>', 8, "78"),
    ('<<<<"x">>/binary>>', 8, "78"),
    ("<<1:4, 2:4/unit:1>>", 8, "12"),
    ("<<1:2/unit:8>>", 16, "0001"),
    ("<<1/little-signed-integer-unit:8>>", None, None),
    ('<<"é"/utf8>>', 16, "c3a9"),
    ('<<$a, "b">>', 16, "6162"),
    ("<<-1/float>>", 64, "bff0000000000000"),
    ('<<"abcd":2/binary>>', None, None),
    ('<<"abc":9/bits>>', None, None),
    ('<<<<"abcd">>:2/binary>>', 16, "6162"),
    ('<<<<"abc">>:9/bits>>', 9, "6100"),
    ('<<<<"ab">>:3/binary>>', None, None),
    ("<<(1 bsl 70):72>>", None, None),
    ("<<1180591620717411303424:72>>", 72, "400000000000000000"),
    ("<<1:0>>", 0, ""),
    ("<<-1:16/unsigned>>", 16, "ffff"),
    ("<<-1:16/signed>>", 16, "ffff"),
    ("<<255:8/signed>>", 8, "ff"),
    ("<<1:16/native>>", 16, "0100"),
    ("<<16#123:12/little>>", 12, "2310"),
    ("<<16#123:12/native>>", 12, "2310"),
    ("<<16#123:12/big>>", 12, "1230"),
    ("<<<<1:3>>/bits, 1:5>>", 8, "21"),
    ("<<<<1:3>>/bits>>", 3, "20"),
    ("<<<<1:3>>/binary>>", None, None),
    ("<<1.5:24/float>>", None, None),
    ('<<"ab"/float>>', 128, "40584000000000004058800000000000"),
    ('<<"ab":32/float>>', 64, "42c2000042c40000"),
    ("<<1/integer-float>>", None, None),
    ("<<1/unit:8>>", None, None),
    ("<<1.5/float-unit:8>>", None, None),
    ("<<1.5:4/float-unit:8>>", 32, "3fc00000"),
    ("<<1.5:8/float-unit:8>>", 64, "3ff8000000000000"),
    ("<<$a:undefined/utf8>>", 8, "61"),
    ("<<$a:all/utf8>>", None, None),
    ('<<<<"ab">>:all/binary>>', 16, "6162"),
    ('<<<<"ab">>:all>>', None, None),
    ("<<1:(8)>>", 8, "01"),
    ("<<1:(+8)>>", 8, "01"),
    ("<<1:+8>>", None, None),
    ("<<1:(-8)>>", None, None),
    ("<<1:$a>>", 97, "00000000000000000000000080"),
    ("<<1:8.0>>", None, None),
    ("<<(1)>>", 8, "01"),
    ("<<-(1)>>", 8, "ff"),
    ("<<(-1)>>", 8, "ff"),
    ('<<("ab")/utf8>>', 16, "6162"),
    ('<<("ab" "c")>>', 24, "616263"),
    ('<<-"a">>', None, None),
    ('<<"">>', 0, ""),
    ('<<""/binary>>', None, None),
    ('<<""/float>>', 0, ""),
    ('<<"":24/float>>', None, None),
    ('<<""/utf8>>', 0, ""),
    ("<<1.0e300:32/float>>", 32, "7f800000"),
    ("<<1.0e10:16/float>>", 16, "7c00"),
    ("<<65504.0:16/float>>", 16, "7bff"),
    ("<<65520.0:16/float>>", 16, "7c00"),
    ("<<1.0e-10:16/float>>", 16, "0000"),
    ("<<1.0e-50:32/float>>", 32, "00000000"),
    ("<<-0.0/float>>", 64, "8000000000000000"),
    ("<<-0/float>>", 64, "0000000000000000"),
    ("<<1/little-float>>", 64, "000000000000f03f"),
    ("<<1:32/little-float>>", 32, "0000803f"),
    ("<<1:16/native-float>>", 16, "003c"),
    ("<<1.0004882812500009:16/float>>", 16, "3c01"),
    ("<<1.00048828125:16/float>>", 16, "3c00"),
    ("<<9007199254740995/float>>", 64, "4340000000000002"),
    ("<<1180591620717411434497/float>>", 64, "4450000000000001"),
    ("<<1180591620717411434497:32/float>>", 32, "62800000"),
    ("<<1:8/utf8>>", None, None),
    ("<<1/utf8-unit:8>>", None, None),
    ('<<"a"/signed-utf8>>', 8, "61"),
    ('<<"a"/utf8-little>>', 8, "61"),
    ("<<1:1/unit:256>>", 256, "0000000000000000000000000000000000000000000000000000000000000001"),
    ("<<1:1/unit:257>>", None, None),
    ("<<1:1/unit:0>>", None, None),
    ("<<1/big-little>>", None, None),
    ("<<1/signed-unsigned>>", None, None),
    ("<<1/integer-integer>>", 8, "01"),
    ("<<<<1>>/bytes-unit:1>>", None, None),
    ("<<<<1>>/bits-unit:8>>", None, None),
    ("<<<<1>>/binary-unit:1>>", 8, "01"),
    ("<<<<1>>/bytes-bits>>", None, None),
    ("<<<<1>>/binary-bytes>>", 8, "01"),
    ("<<1/foo>>", None, None),
    ("<<1/unit>>", None, None),
    ("<<1/big:8>>", None, None),
    ("<<<<1:6>>/binary-unit:3>>", 6, "04"),
    ("<<<<1:5>>/binary-unit:3>>", None, None),
    ('<<<<"abc">>:1/binary-unit:16>>', 16, "6162"),
    ('<<<<"a">>>>', None, None),
    ("<<a>>", None, None),
    ("<<[1]>>", None, None),
    ("<<{1}>>", None, None),
    ("<<1.5>>", None, None),
    ("<<1.5:32>>", None, None),
    ("<<true>>", None, None),
    ("<<1:undefined>>", None, None),
    ("<<1:all>>", None, None),
    ("<<1:default>>", None, None),
    ('<<<<"ab">>:undefined/binary>>', None, None),
    ("<<1:(1)/unit:8>>", 8, "01"),
    ("<<1:16#10>>", 16, "0001"),
    ("<<1/'integer'>>", 8, "01"),
    ("<<1:1/integer-unit:1-unit:1>>", 1, "80"),
    ('<<1:"a">>', None, None),
    ("<<1.5/signed-float>>", 64, "3ff8000000000000"),
    ("<<1.5/float-little-big>>", None, None),
    ("<<$a/utf16-native>>", 16, "6100"),
    ("<<$a/utf32-little>>", 32, "61000000"),
    ("<<$a/utf32-native>>", 32, "61000000"),
    ("<<16#D800/utf8>>", None, None),
    ("<<16#D800/utf16>>", None, None),
    ("<<16#D800/utf32>>", None, None),
    ("<<-1/utf8>>", None, None),
    ("<<1.0/utf8>>", None, None),
    ("<<16#10FFFF/utf32>>", 32, "0010ffff"),
    ("<<16#110000/utf32>>", None, None),
    ("<<16#10FFFF/utf16>>", 32, "dbffdfff"),
    ("<<1:8/float>>", None, None),
    ("<<1:-1>>", None, None),
    ("<<1:4/little>>", 4, "10"),
    ("<<16#12345:20/little>>", 20, "452310"),
    ("<<-1:12/little>>", 12, "fff0"),
    ("<<16#0102030405060708090A:80/little>>", 80, "0a090807060504030201"),
    ("<<16#0102030405060708090A:76/little>>", 76, "0a090807060504030210"),
    ("<<1:(-(8))>>", None, None),
    ("<<(+1)>>", 8, "01"),
    ("<<+1>>", 8, "01"),
    ("<<+$a>>", 8, "61"),
    ("<<-$a>>", 8, "9f"),
    ("<<-1.5/float>>", 64, "bff8000000000000"),
    ("<<-(1.5)/float>>", 64, "bff8000000000000"),
    ("<<1/unit:8-binary>>", None, None),
    ("<<<<1>>/unit:8-binary>>", 8, "01"),
    ("<<1.5/float-float>>", 64, "3ff8000000000000"),
    ('<<"a"/integer>>', 8, "61"),
    ('<<"a":16/little>>', 16, "6100"),
    ('<<"\\x{100}">>', 8, "00"),
    ('<<"\\x{100}":16>>', 16, "0100"),
    ('<<"\\x{1F600}"/utf16-little>>', 32, "3dd800de"),
    ("<<$a:undefined/utf8-unit:8>>", None, None),
    ("<<1:undefined/utf8>>", 8, "01"),
    ('<<<<"a">>:(all)/binary>>', 8, "61"),
    ("<<(<<1:3>>):(1)/bits>>", 1, "00"),
    ("<<<<1:3>>>>", None, None),
    ("<< >>", 0, ""),
    ("<<1,>>", None, None),
    ("<<<<1:3>>/bits-unit:2>>", None, None),
    ("<<1.5:16/float>>", 16, "3e00"),
    ("<<1.0:8>>", None, None),
    ("<<1:0/float>>", None, None),
    ("<<1.5:0/float-unit:8>>", None, None),
    ("<<1:2/float-unit:32>>", 64, "3ff0000000000000"),
    ("<<1/float-unit:1>>", None, None),
    ("<<1:64/float-unit:1>>", 64, "3ff0000000000000"),
    ("<<1:3/float-unit:8>>", None, None),
    ("<<1:8/unit:8-integer-big-unsigned>>", 64, "0000000000000001"),
    ('<<"ab":8/integer-unit:1-unsigned-big>>', 16, "6162"),
    ('<<"\\x{100}":8/integer-unit:1-unsigned-big>>', 8, "00"),
    ('<<(-"a")>>', None, None),
    ('<<"a"/bits-unit:8>>', None, None),
    ("<<$a:2/utf8>>", None, None),
    ("<<1:1/signed-unit:8-little>>", 8, "01"),
    ("<<(#{})>>", None, None),
    ("<<#{}>>", None, None),
    ("<<(fun m:f/1)>>", None, None),
    ("<<<<>>/binary>>", 0, ""),
    ("<<<<>>:0/binary>>", 0, ""),
    ("<<<<1:3>>:0/bits>>", 0, ""),
    ('<<"abc":0>>', 0, ""),
    ("<<1.00146484375:16/float>>", 16, "3c02"),
    ("<<1.0004882812509095:16/float>>", 16, "3c01"),
    ("<<1.0014648437490905:16/float>>", 16, "3c01"),
    ("<<5.960464477539063e-08:16/float>>", 16, "0001"),
    ("<<2.9802322387695312e-08:16/float>>", 16, "0000"),
    ("<<2.9802322388562674e-08:16/float>>", 16, "0001"),
    ("<<8.940696716308594e-08:16/float>>", 16, "0002"),
    ("<<1.4901161193847656e-08:16/float>>", 16, "0000"),
    ("<<6.103515625e-05:16/float>>", 16, "0400"),
    ("<<6.1005353927612305e-05:16/float>>", 16, "0400"),
    ("<<65519.99:16/float>>", 16, "7bff"),
    ("<<-65520.0:16/float>>", 16, "fc00"),
    ("<<1e-10:16/float>>", None, None),
    ("<<-1e-10:16/float>>", None, None),
    ("<<0.1:16/float>>", 16, "2e66"),
    ("<<0.3333333333333333:16/float>>", 16, "3555"),
    ("<<6.1e-05:16/float>>", 16, "03ff"),
    ("<<5.96e-08:16/float>>", 16, "0001"),
    ("<<2.98e-08:16/float>>", 16, "0000"),
    ("<<3.4028234663852886e+38:32/float>>", 32, "7f7fffff"),
    ("<<3.4028235677973366e+38:32/float>>", 32, "7f800000"),
    ("<<3.4028235677973362e+38:32/float>>", 32, "7f7fffff"),
    ("<<3.40282357e+38:32/float>>", 32, "7f800000"),
    ("<<-3.5e+38:32/float>>", 32, "ff800000"),
    ("<<1.401298464324817e-45:32/float>>", 32, "00000001"),
    ("<<7.006492321624085e-46:32/float>>", 32, "00000000"),
    ("<<7.006492321624087e-46:32/float>>", 32, "00000001"),
    ("<<1.0000000596046448:32/float>>", 32, "3f800000"),
    ("<<1.000000059604645:32/float>>", 32, "3f800001"),
    ("<<0.1:32/float>>", 32, "3dcccccd"),
    ("<<1.5:16/float-little>>", 16, "003e"),
    ("<<1.5:32/float-native>>", 32, "0000c03f"),
    ("<<-1.0e-10:32/float>>", 32, "aedbe6ff"),
    ("<<-0.0:16/float>>", 16, "8000"),
    (
        "<<123456789012345678901234567890:128/little-signed>>",
        128,
        "d20a3f4eeee073c3f60fe98e01000000",
    ),
    ("<<-123456789012345678901234567890:100/little>>", 100, "2ef5c0b1111f8c3c09f01671e0"),
    ("<<-123456789012345678901234567890:100>>", 100, "e7116f0093c8c1f11b1c0f52e0"),
    ('<<1:1, 0:1, 1:1, <<"abc">>/binary, 7:3>>', 30, "ac2c4c7c"),
    ('<<<<1:3>>/bits, <<5:5>>/bits, <<"z">>/binary>>', 16, "257a"),
    ("<<<<<<1:1>>/bits, 1:1>>/bits, 3:6>>", 8, "c3"),
    ('<<"a":undefined/utf8>>', 8, "61"),
    ('<<"a":(undefined)/utf16>>', 16, "0061"),
    ('<<$a:"undefined"/utf8>>', None, None),
    ('<<<<"ab">>:"all"/binary>>', None, None),
    ('<<"a":8.0>>', None, None),
    ('<<"abc":3/little>>', 9, "2980"),
    ('<<"\\x{1F600}\\x{E9}a"/utf8>>', 56, "f09f9880c3a961"),
    ('<<"\\x{1F600}"/utf32-little>>', 32, "00f60100"),
    ('<<"\\x{1F600}":32>>', 32, "0001f600"),
    ('<<"":8>>', 0, ""),
    ('<<""/unit:8>>', None, None),
    ('<<"":0/float>>', None, None),
    ('<<""/utf8-unit:8>>', None, None),
    ("<<$a:(8)/unit:(1)>>", None, None),
    ("<<1:8/unit:16#8>>", 64, "0000000000000001"),
    ("<<1:8/unit:$a>>", None, None),
    ("<<1:8/Unit:8>>", None, None),
    ("<<1:8/unit:8:8>>", None, None),
    ("<<1:8/end>>", None, None),
    ("<<1:8/'little'-'unit':2>>", 16, "0100"),
    ("<<1:2/native-little>>", None, None),
    ("<<1:2/big-big>>", 2, "40"),
    ("<<1:2/native-native>>", 2, "40"),
    ("<<1:(2)/little-float-unit:8>>", 16, "003c"),
    ("<<1/bytes>>", None, None),
    ("<<<<1,2,3>>:2/bytes>>", 16, "0102"),
    ("<<<<1,2,3>>:2/bitstring>>", 2, "00"),
    ("<<<<1,2,3>>:3/bytes-unit:8>>", 24, "010203"),
    ("<<<<1,2,3>>:1/binary-unit:24>>", 24, "010203"),
    ("<<<<1,2,3>>:1/binary-unit:25>>", None, None),
    ("<<<<1:7>>:7/bits>>", 7, "02"),
    ("<<<<1:7>>:6/bits>>", 6, "00"),
    ("<<<<1:7>>:8/bits>>", None, None),
    ("<<(<<(<<1>>)/binary>>)/binary>>", 8, "01"),
    ("<<1:0/little>>", 0, ""),
    ("<<0:0/utf8>>", None, None),
    ("<<16#FF:0>>", 0, ""),
    ("<<-0.0:32/float>>", 32, "80000000"),
    ("<<-(0.0)/float>>", 64, "8000000000000000"),
    ("<<(-0.0)/float>>", 64, "8000000000000000"),
    ("<<+(1.5)/float>>", 64, "3ff8000000000000"),
    ("<<- 1.5/float>>", 64, "bff8000000000000"),
    ("<<-(-1)>>", None, None),
    ("<<1:(1):2>>", None, None),
    ("<<1:(1, 2)>>", None, None),
    ("<<1::8>>", None, None),
    ("<<1//integer>>", None, None),
    ("<<1/>>", None, None),
    ("<<1:>>", None, None),
    ("<<1/integer->>", None, None),
    ("<<1/integer-little,>>", None, None),
    ("<<1 2>>", None, None),
    ("<<,1>>", None, None),
    ("<<1:8/integer 2>>", None, None),
    ("<<1>>>>", None, None),
    ("<<$\\x{10FFFF}/utf8>>", 32, "f48fbfbf"),
    ("<<$\\x{D7FF}/utf16-little>>", 16, "ffd7"),
    ("<<$\\x{E000}/utf16-big>>", 16, "e000"),
    ("<<-1:64/signed-little>>", 64, "ffffffffffffffff"),
    ("<<18446744073709551616:65/little>>", 65, "000000000000000080"),
    ("<<99999999999999999999999999999999999999:8>>", 8, "ff"),
    ("<<99999999999999999999999999999999999999/float>>", 64, "47d2ced32a16a1b1"),
    ("<<99999999999999999999999999999999999999:32/float>>", 32, "7e967699"),
    ("<<99999999999999999999999999999999999999:16/float>>", 16, "7c00"),
    ("<<1:3/unit:3>>", 9, "0080"),
    ("<<1:(3)/unit:3-signed-little>>", 9, "0100"),
    ("<<1.0:64/float-unit:1-unit:1-float-big>>", 64, "3ff0000000000000"),
    ("<<16#1234:16/integer-native>>", 16, "3412"),
    ("<<$a/utf8-big-signed>>", 8, "61"),
    ("<<$a/utf16-unsigned-little>>", 16, "6100"),
    ("<<$a/utf8-utf8>>", 8, "61"),
    ("<<$a/utf8-utf16>>", None, None),
    ("<<$a/utf8-integer>>", None, None),
    ("<<$a/binary-integer>>", None, None),
    ("<<1.5/float-binary>>", None, None),
    ('<<"a"/float-little>>', 64, "0000000000405840"),
]
# Integers too long to write inline (same provenance).
GOLDEN += [
    (f"<<{2**1024}/float>>", None, None),  # float() overflows: badarg
    (f"<<{2**1024 - 2**971}/float>>", 64, "7fefffffffffffff"),  # the largest double
    (f"<<{2**1024 - 2**971}:32/float>>", 32, "7f800000"),  # to 32 bits: infinity
    (f"<<{2**1024 - 2**970}/float>>", None, None),  # half-way: rounds to 2**1024
    (f"<<{2**1024 - 2**970 - 1}/float>>", 64, "7fefffffffffffff"),
]

# Parentheses around terms, as erl_parse reads them (same provenance; erl printed
# term_to_binary of each value). None: erl refuses the text.
PAREN_TERMS: list[tuple[str, Any]] = [
    ("(1)", 1),
    ("((1))", 1),
    ("-((1))", -1),
    ("(-(1))", -1),
    ("- (1)", -1),
    ("-($a)", -97),
    ("-(1.5)", -1.5),
    ("+(2)", 2),
    ("[(1)|(2)]", ImproperList((1,), 2)),
    ("#{(a) => (b)}", {Atom("a"): Atom("b")}),
    ("(fun m:f/1)", ExportFun(Atom("m"), Atom("f"), 1)),
    ('("ab")', ErlString("ab")),
    ('[1 | ("ab")]', [1, 97, 98]),
    ('{(<<1:3>>), (<<"a"/utf8>>)}', (BitString(b"\x20", 3), b"a")),
    ("(((([a]))))", [Atom("a")]),
    ("-(-1)", None),
    ("+(a)", None),
    ('-("a")', None),
    ("()", None),
    ("(1, 2)", None),
    ('("a") "b"', None),
    ("fun (m):f/1", None),
]


def _bits(size: int, hex_bits: str) -> bytes | BitString:
    data = bytes.fromhex(hex_bits)
    return data if size % 8 == 0 else BitString(data, size % 8)


def _describe(term: Any) -> str:
    """erl's result line format for a value parse_term gave."""
    if isinstance(term, bytes):
        return f"ok {8 * len(term)} {term.hex()}".rstrip()
    assert isinstance(term, BitString)
    return f"ok {8 * len(term.data) - 8 + term.bits} {term.data.hex()}"


@pytest.mark.parametrize(("text", "size", "hex_bits"), GOLDEN)
def test_golden_cases(text: str, size: int | None, hex_bits: str | None) -> None:
    if size is None:
        with pytest.raises(TermSyntaxError) as info:
            parse_term(text)
        assert info.value.line == 1 and 1 <= info.value.column <= len(text)
        return
    assert hex_bits is not None
    term = parse_term(text)
    assert term == _bits(size, hex_bits)
    assert type(term) is type(_bits(size, hex_bits))
    # format_term prints it so that it reads back as the same value
    assert parse_term(format_term(term)) == term


@pytest.mark.parametrize(("text", "term"), PAREN_TERMS)
def test_parenthesised_terms(text: str, term: Any) -> None:
    if term is None:
        with pytest.raises(TermSyntaxError):
            parse_term(text)
    else:
        assert parse_term(text) == term


def test_native_is_the_machine_byte_order() -> None:
    assert parse_term("<<1:16/native>>") == (1).to_bytes(2, sys.byteorder)
    assert parse_term("<<1:32/native-float>>") == parse_term(f"<<1:32/{sys.byteorder}-float>>")
    assert parse_term("<<$a/utf16-native>>") == "a".encode(f"utf-16-{sys.byteorder[0]}e")


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ('<<1:2,\n  "a"/binary>>', 2, 3, "a string is not a binary"),
        ("<<1:24/float>>", 1, 5, "16, 32 or 64 bits, not 24"),
        ("<<1/integer-float>>", 1, 13, "bit types integer and float conflict"),
        ("<<<<1>>/bytes-unit:1>>", 1, 15, "unit:8 and unit:1 conflict"),
        ("<<1/little-signed-integer-unit:8>>", 1, 3, "a unit needs a size (integer segment)"),
        ("<<1:8/utf8>>", 1, 5, "utf8 segment takes no size or unit"),
        ("<<1/unit:0>>", 1, 5, "bad bit type unit:0"),
        ("<<1/big:8>>", 1, 5, "bad bit type big:8"),
        ("<<1/unit:x>>", 1, 10, "expected a unit"),
        ("<<1/bogus>>", 1, 5, "unknown bit type 'bogus'"),
        ("<<1/'fun'>>", 1, 5, "unknown bit type 'fun'"),
        ("<<1/fun>>", 1, 5, "expected a bit type"),
        ("<<<<1:5>>/binary>>", 1, 3, "5 bits is not a multiple of unit 8"),
        ('<<<<"ab">>:3/binary>>', 1, 3, "16 bits is shorter than 24"),
        ("<<x/binary>>", 1, 3, "needs a binary value"),
        ("<<x:all/binary>>", 1, 3, "needs a binary value"),
        ("<<x:8/binary>>", 1, 3, "needs a binary value"),
        ("<<1, . >>", 1, 6, "expected a term"),
        ("<<x/float>>", 1, 3, "needs a number value"),
        (f"<<{2**1024}/float>>", 1, 3, "too large for a float"),
        ("<<1.5>>", 1, 3, "needs an integer value"),
        ("<<true>>", 1, 3, "needs an integer value"),
        ("<<1:(-8)>>", 1, 5, "non-negative integer"),
        ("<<1:true>>", 1, 5, "non-negative integer"),
        ("<<1:-8>>", 1, 5, "expected a segment size"),
        ("<<1:all>>", 1, 5, "non-negative integer"),
        ('<<"a":8.0>>', 1, 7, "non-negative integer"),
        ("<<16#D800/utf16>>", 1, 3, "not a code point for utf16"),
        ("<<-(-1)>>", 1, 5, "expected a number after '-'"),
        ("-(-1)", 1, 3, "expected a number after '-'"),
        ("-((1)", 1, 6, "expected ')'"),
    ],
)
def test_rejected_segments_say_what_and_where(
    text: str, line: int, column: int, message: str
) -> None:
    with pytest.raises(TermSyntaxError, match=re.escape(message)) as info:
        parse_term(text)
    assert (info.value.line, info.value.column) == (line, column)


def test_sizes_are_capped_per_segment_per_binary_and_per_text() -> None:
    # erl would build these; a few characters must not allocate gigabytes here.
    with pytest.raises(TermSyntaxError, match="segment too large"):
        parse_term("<<1:99999999999>>")
    with pytest.raises(TermSyntaxError, match="segment too large"):
        parse_term('<<"ab":99999999999>>')
    with pytest.raises(TermSyntaxError, match="segment too large"):
        parse_term("<<1:2/unit:256, 1:524289/unit:256>>")
    with pytest.raises(TermSyntaxError, match="binary too large"):
        parse_term("<<(<<1:134217728>>)/bits, 1:1>>")
    with pytest.raises(TermSyntaxError, match="binaries too large in total"):
        parse_term("[<<1:134217728>>, <<1:134217728>>]")
    # A huge size for a binary segment is just longer than the value.
    with pytest.raises(TermSyntaxError, match="shorter than"):
        parse_term('<<<<"a">>:99999999999999999999/binary>>')
    big = parse_term("<<1:134217728>>")
    assert len(big) == 1 << 24 and big[-1] == 1


def test_long_string_segments_build_in_linear_time() -> None:
    text = "a" * 200_000
    assert parse_term(f'<<"{text}">>') == text.encode()
    assert parse_term(f'<<"{text}"/utf8, 1:1>>') == BitString(text.encode() + b"\x80", 1)
    # 'a' as 16 bits little-endian is 61 00; after one bit, no byte is aligned.
    expected = _model_bytes("1" + "0110000100000000" * len(text))
    assert parse_term(f'<<1:1, "{text}":16/little>>') == expected


# -- a model of segment packing, as strings of '0' and '1' --------------------------


def _model_int(value: int, size: int, endian: str) -> str:
    bits = format(value % (1 << size), f"0{size}b") if size else ""
    if endian == "big":
        return bits
    whole = size // 8
    low = bits[size - 8 * whole :]  # the low 8*whole bits, most significant first
    chunks = [low[i : i + 8] for i in range(0, len(low), 8)]
    return "".join(reversed(chunks)) + bits[: size - 8 * whole]


def _model_bytes(bits: str) -> bytes | BitString:
    padded = bits + "0" * (-len(bits) % 8)
    data = int(padded, 2).to_bytes(len(padded) // 8, "big") if padded else b""
    return data if len(bits) % 8 == 0 else BitString(data, len(bits) % 8)


_int_segments = st.tuples(
    st.integers(-(2**80), 2**80), st.integers(0, 80), st.sampled_from(["big", "little"])
)
_segments = st.lists(
    st.one_of(
        _int_segments,
        st.text("01", max_size=30),  # a nested bitstring literal
    ),
    max_size=8,
)


@settings(max_examples=200, deadline=None)
@given(_segments)
def test_segments_concatenate_like_the_bit_model(segments: list[Any]) -> None:
    parts: list[str] = []
    model = ""
    for segment in segments:
        if isinstance(segment, str):
            parts.append(f"({format_term(_model_bytes(segment))})/bits")
            model += segment
        else:
            value, size, endian = segment
            parts.append(f"{value}:{size}/{endian}-signed")
            model += _model_int(value, size, endian)
    term = parse_term("<<" + ", ".join(parts) + ">>")
    assert term == _model_bytes(model)
    assert parse_term(format_term(term)) == term


# -- against the local erl -----------------------------------------------------------

# Reads each file named in $PROBE_LIST with file:consult/1 and prints one line per file.
_ERL_CONSULT = r"""
Show = fun
  ({ok, [T]}) when is_bitstring(T) ->
    Pad = (8 - bit_size(T) rem 8) rem 8,
    io:format("ok ~b ~s~n", [bit_size(T), binary:encode_hex(<<T/bitstring, 0:Pad>>)]);
  ({ok, [T]}) -> io:format("term ~s~n", [binary:encode_hex(term_to_binary(T))]);
  ({error, _}) -> io:format("error~n")
end,
{ok, List} = file:read_file(os:getenv("PROBE_LIST")),
[Show(file:consult(F)) || F <- binary:split(List, <<"\n">>, [global, trim_all])],
ok.
"""


def _consult_with_erl(texts: list[str], tmp_path: Path) -> list[str]:
    names = []
    for i, text in enumerate(texts):
        path = tmp_path / f"case{i}.txt"
        path.write_text(text + ".\n", encoding="utf-8")
        names.append(str(path))
    listing = tmp_path / "list"
    listing.write_text("\n".join(names) + "\n", encoding="utf-8")
    result = subprocess.run(
        ["erl", "-noshell", "-eval", _ERL_CONSULT, "-s", "init", "stop"],
        env=dict(os.environ, PROBE_LIST=str(listing)),
        capture_output=True,
        text=True,
        timeout=120 * FACTOR,
        check=True,
    )
    lines = result.stdout.lower().splitlines()
    assert len(lines) == len(texts), result.stdout + result.stderr
    return [line.rstrip() for line in lines]


def _ours(text: str) -> str:
    try:
        return _describe(parse_term(text))
    except TermSyntaxError:
        return "error"


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_ERL, reason="needs the local erl")
def test_golden_cases_against_local_erl(tmp_path: Path) -> None:
    texts = [text for text, _, _ in GOLDEN] + [text for text, _ in PAREN_TERMS]
    erl = _consult_with_erl(texts, tmp_path)
    golden = [
        "error" if size is None else f"ok {size} {hex_bits}".rstrip()
        for _, size, hex_bits in GOLDEN
    ]
    assert erl[: len(GOLDEN)] == golden
    for (text, term), line in zip(PAREN_TERMS, erl[len(GOLDEN) :], strict=True):
        if term is None:
            assert line == "error", text
        else:
            assert line.startswith("term "), text
            assert decode(bytes.fromhex(line[5:])) == term, text


_KINDS = [None, "integer", "float", "binary", "bytes", "bits", "bitstring", "utf8", "utf16"]
_SIZES = {
    "float": ["16", "32", "64", "(32)"],
    "binary": ["0", "1", "all"],
    "bytes": ["0", "1"],
    "utf8": ["undefined"],
    "utf16": ["undefined"],
}
_FAMILY = {None: "int", "integer": "int", "float": "float", "utf8": "int", "utf16": "int"}


def _random_value(rng: random.Random, family: str, depth: int) -> str:
    if family == "int":
        value = str(rng.choice([0, 1, 97, 255, 256, 0xD800, 0x10FFFF, 2**64 + 3]))
        value = rng.choice(["", "-", "(", "-("]) + value
        return value + (")" if "(" in value else "")
    if family == "float":
        return rng.choice(["1.5", "-0.0", "0.1", "65520.0", "1.0e300", "-2.5e-8", "7"])
    if family == "string":
        return rng.choice(['"ab"', '""', '"\\x{E9}z"', "$a", '"a" "b"'])
    if family == "binary" and depth < 2:
        return "(" + _random_literal(rng, depth + 1) + ")"
    return rng.choice(["a", "[1]", "{1}", "true", "<<1:3>>"])


def _random_literal(rng: random.Random, depth: int = 0) -> str:
    """A random binary literal of mostly plausible segments (many still refused)."""
    segments = []
    for _ in range(rng.randint(depth == 0, 3)):
        kind = rng.choice(_KINDS)
        family = _FAMILY.get(kind, "binary")
        if rng.random() < 0.1:
            family = rng.choice(["int", "float", "string", "binary", "other"])
        value = _random_value(rng, family, depth)
        sizes = _SIZES.get(kind, ["0", "1", "2", "3", "7", "8", "12", "16", "65"])
        if rng.random() < 0.1:
            sizes = ["0", "1", "8", "24", "all", "undefined", "(-1)", "(8)", "$a", "1.0"]
        if rng.random() < 0.5:
            value += ":" + rng.choice(sizes)
        words = [kind] if kind else []
        words += [rng.choice(["signed", "unsigned"])] if rng.random() < 0.3 else []
        words += [rng.choice(["big", "little", "native"])] if rng.random() < 0.4 else []
        if rng.random() < (0.3 if ":" in value else 0.05):
            words.append(f"unit:{rng.choice([1, 2, 3, 8, 16, 256, 257])}")
        if rng.random() < 0.05:  # mostly a conflict
            words.append(rng.choice(["integer", "float", "bits", "utf32", "big", "unit:4"]))
        rng.shuffle(words)
        segments.append(value + ("/" + "-".join(words) if words else ""))
    return "<<" + ", ".join(segments) + ">>"


@pytest.mark.integration
@pytest.mark.skipif(not HAVE_ERL, reason="needs the local erl")
def test_random_binary_literals_against_local_erl(tmp_path: Path) -> None:
    seed = int(os.environ.get("ERLBRIDGE_BINARY_SEED", "25"))
    count = int(os.environ.get("ERLBRIDGE_BINARY_CASES", "1000"))
    rng = random.Random(seed)
    texts = [_random_literal(rng) for _ in range(count)]
    erl = _consult_with_erl(texts, tmp_path)
    mismatches = [
        (text, line, _ours(text))
        for text, line in zip(texts, erl, strict=True)
        if _ours(text) != line
    ]
    assert mismatches == []
    built = sum(line not in ("error", "ok 0") for line in erl)
    assert built > count // 8  # the generator must not test only refusals
