"""Unit tests of Erlang term text: parse_terms / parse_term / format_term."""

from __future__ import annotations

import sys

import pytest

from erlbridge.exceptions import EncodeError, TermSyntaxError
from erlbridge.term import (
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
    format_term,
    parse_term,
    parse_terms,
)

APP = """
%% a comment
{application, demo,
 [{description, "Demo app"},   % trailing comment
  {vsn, "1.0.0"},
  {modules, [demo_app, 'demo sup']},
  {registered, []},
  {applications, [kernel, stdlib]},
  {env, [{port, 8080}, {ratio, 0.5}, {flag, true}, {bin, <<"x">>}]},
  {mod, {demo_app, []}}]}.
"""


def test_parse_app_file() -> None:
    [app] = parse_terms(APP)
    assert app[0] == Atom("application")
    assert app[1] == Atom("demo")
    props = dict(app[2])
    assert props[Atom("vsn")] == ErlString("1.0.0")
    assert isinstance(props[Atom("vsn")], ErlString)
    assert props[Atom("modules")] == [Atom("demo_app"), Atom("demo sup")]
    assert props[Atom("registered")] == []
    env = dict(props[Atom("env")])
    assert env == {Atom("port"): 8080, Atom("ratio"): 0.5, Atom("flag"): True, Atom("bin"): b"x"}
    assert env[Atom("flag")] is True


@pytest.mark.parametrize(
    ("text", "term"),
    [
        ("1", 1),
        ("-1", -1),
        ("+7", 7),
        ("1_000", 1000),
        ("16#FF", 255),
        ("2#1010", 10),
        ("36#zz", 1295),
        ("-16#ff", -255),
        ("$a", 97),
        ("$\\n", 10),
        ("$\\s", 32),
        ("$\\x{1F600}", 0x1F600),
        ("$\\101", 65),
        ("$\\^a", 1),
        ("$ ", 32),
        ("1.5", 1.5),
        ("-2.5e-3", -0.0025),
        ("1.0e10", 1e10),
        ("ok", Atom("ok")),
        ("'EXIT'", Atom("EXIT")),
        ("'fun'", Atom("fun")),
        ("maybe", Atom("maybe")),
        ("node@host", Atom("node@host")),
        ("'a\\'b'", Atom("a'b")),
        ("true", True),
        ("false", False),
        ("undefined", Atom("undefined")),
        ('"abc"', ErlString("abc")),
        ('"ab" "cd"', ErlString("abcd")),
        ('"tab\\there\\x41\\x{42}\\e\\d\\z"', ErlString("tab\there\x41\x42\x1b\x7fz")),
        ('""', ErlString("")),
        ("<<>>", b""),
        ('<<"abc">>', b"abc"),
        ("<<1,2,255>>", b"\x01\x02\xff"),
        ("<<256>>", b"\x00"),
        ("<<-1>>", b"\xff"),
        ("<<1:16>>", b"\x00\x01"),
        ("<<1:16/little>>", b"\x01\x00"),
        ("<<1:16/little-unsigned-integer>>", b"\x01\x00"),
        ('<<"é"/utf8>>', "é".encode()),
        ('<<"é"/utf16>>', "é".encode("utf-16-be")),
        ('<<"é"/utf16-little>>', "é".encode("utf-16-le")),
        ('<<"é"/utf32>>', "é".encode("utf-32-be")),
        ('<<$a, "b">>', b"ab"),
        ("<<1:3>>", BitString(b"\x20", 3)),
        ("<<255, 1:1>>", BitString(b"\xff\x80", 1)),
        ("{}", ()),
        ("{a, {b}}", (Atom("a"), (Atom("b"),))),
        ("[]", []),
        ("[1, 2 | [3]]", [1, 2, 3]),
        ('[1 | "ab"]', [1, 97, 98]),
        ("[1 | x]", ImproperList((1,), Atom("x"))),
        ("#{}", {}),
        ('#{a => 1, <<"b">> => [2]}', {Atom("a"): 1, b"b": [2]}),
        ("#{[1] => #{}}", {FrozenList([1]): {}}),
        ("#{#{a => [1]} => x}", {FrozenMap({Atom("a"): FrozenList([1])}): Atom("x")}),
        ("fun lists:map/2", ExportFun(Atom("lists"), Atom("map"), 2)),
        ("fun 'M':'f'/0", ExportFun(Atom("M"), Atom("f"), 0)),
        ("{a}.", (Atom("a"),)),
        ("  x  .  % end", Atom("x")),
    ],
)
def test_parse_term(text: str, term: object) -> None:
    assert parse_term(text) == term
    assert type(parse_term(text)) is type(term)


def test_parse_terms_several_and_empty() -> None:
    assert parse_terms("a. b.\n{c}.") == [Atom("a"), Atom("b"), (Atom("c"),)]
    assert parse_terms("") == []
    assert parse_terms("% only a comment\n") == []
    assert parse_terms("1.5.") == [1.5]
    assert parse_terms("x.%c") == [Atom("x")]


@pytest.mark.parametrize(
    ("text", "line", "column"),
    [
        ("{a, b", 1, 6),
        ("{a b}.", 1, 4),
        ("\n  X.", 2, 3),
        ("_.", 1, 1),
        ("a", 1, 2),
        ("a b.", 1, 3),
        ("'abc", 1, 1),
        ('"abc', 1, 1),
        ("$", 1, 1),
        ("$\\", 1, 2),
        ('"\\', 1, 2),
        ('"\\x{zz}"', 1, 2),
        ('"\\x{110000}"', 1, 2),
        ('"\\xg"', 1, 2),
        ('"\\x{12', 1, 2),
        ("$\\^", 1, 2),
        ("99#1", 1, 1),
        ("2#12", 1, 1),
        ("12ab", 1, 1),
        ("1_", 1, 1),
        ("&", 1, 1),
        ("- a", 1, 3),
        (")", 1, 1),
        ("case.", 1, 1),
        ("fun x/1", 1, 6),
        ("fun 1", 1, 5),
        ("fun m:1/1", 1, 7),
        ("fun m:f/x", 1, 9),
        ("fun m:f/256", 1, 9),
        ("<<a>>", 1, 3),
        ("<<1:a>>", 1, 5),
        ("<<1/foo>>", 1, 5),
        ("<<1:8/utf8>>", 1, 5),
        ("<<1.5:24/float>>", 1, 7),
        ("<<a/float>>", 1, 3),
        ("<<1/binary>>", 1, 3),
        ("<<16#110000/utf8>>", 1, 3),
        ("#{a}", 1, 4),
        ("[1 | 2 3]", 1, 8),
        ("'" + "a" * 256 + "'", 1, 1),
        ("[1.0e999]", 1, 2),
        ("a" * 256, 1, 1),
        ("", 1, 1),
        ("a. b", 1, 5),
    ],
)
def test_syntax_errors_have_line_and_column(text: str, line: int, column: int) -> None:
    with pytest.raises(TermSyntaxError) as info:
        parse_terms(text) if text != "" else parse_term(text)
    assert (info.value.line, info.value.column) == (line, column)


def test_parse_term_requires_one_term() -> None:
    with pytest.raises(TermSyntaxError):
        parse_term("a. b.")
    with pytest.raises(TermSyntaxError):
        parse_term("   ")


def test_deep_text_is_a_syntax_error_not_recursion() -> None:
    with pytest.raises(TermSyntaxError, match="nested"):
        parse_term("[" * 5000 + "]" * 5000)
    expected: list[object] = []
    for _ in range(99):
        expected = [expected]
    assert parse_term("[" * 100 + "]" * 100) == expected


@pytest.mark.parametrize(
    ("term", "text"),
    [
        (1, "1"),
        (-3, "-3"),
        (1.5, "1.5"),
        (1e100, "1.0e100"),
        (1e-5, "1.0e-05"),
        (-0.0, "-0.0"),
        (Atom("ok"), "ok"),
        (Atom("Ok"), "'Ok'"),
        (Atom("a b"), "'a b'"),
        (Atom("end"), "'end'"),
        (Atom(""), "''"),
        (Atom("it's"), "'it\\'s'"),
        (True, "true"),
        (False, "false"),
        (None, "undefined"),
        ("abc", '<<"abc">>'),
        ("é", '<<"é"/utf8>>'),
        (b"abc\n", '<<"abc\\n">>'),
        (b"\x00\xff", "<<0,255>>"),
        (bytearray(b"a"), '<<"a">>'),
        (ErlString('say "hi"\n'), '"say \\"hi\\"\\n"'),
        (ErlString("\x01\x85"), '"\\x{1}\\x{85}"'),
        (ErlString("λ"), '"λ"'),
        ([], "[]"),
        ([1, [2]], "[1,[2]]"),
        (FrozenList([1]), "[1]"),
        ((), "{}"),
        ((1, Atom("a")), "{1,a}"),
        ({}, "#{}"),
        ({Atom("a"): 1}, "#{a => 1}"),
        (FrozenMap({1: 2}), "#{1 => 2}"),
        (ImproperList((1, 2), Atom("t")), "[1,2|t]"),
        (BitString(b"\x20", 3), "<<1:3>>"),
        (ExportFun(Atom("m"), Atom("f"), 1), "fun m:f/1"),
    ],
)
def test_format_term(term: object, text: str) -> None:
    assert format_term(term) == text


def test_format_display_only_types() -> None:
    node = Atom("n@h")
    assert format_term(Pid(node, 1, 0, 1)) == "<n@h.1.0>"
    assert format_term(Port(node, 1, 1)) == "#Port<n@h.1>"
    assert format_term(Reference(node, 1, (1,))) == "#Ref<n@h.1>"
    assert format_term(LocalTerm(b"")) == "#LocalTerm<0 bytes>"
    rec = NativeRecord(Atom("m"), Atom("r"), ((Atom("a"), 1),))
    assert format_term(rec) == "#m:r{a = 1}"
    fun = Fun(b"p", Atom("m"), 0, 1, b"\x00" * 16, 0, 7, None, ())
    assert format_term(fun) == "#Fun<m.1.7>"


@pytest.mark.parametrize("bad", [{1, 2}, object(), float("nan"), [float("inf")]])
def test_format_rejects(bad: object) -> None:
    with pytest.raises(EncodeError):
        format_term(bad)


def test_pretty_printing_breaks_long_terms_and_reads_back() -> None:
    term = (
        Atom("application"),
        Atom("demo"),
        [
            (Atom("description"), ErlString("A demo application with a long description")),
            (Atom("modules"), [Atom(f"demo_module_{i}") for i in range(12)]),
            (Atom("env"), {Atom("key"): [1, 2, 3], Atom("other"): ImproperList((1,), 2)}),
            (Atom("improper"), ImproperList(tuple(Atom(f"elem{i}") for i in range(20)), 7)),
        ],
    )
    text = format_term(term, width=60)
    assert "\n" in text
    assert all(len(line) <= 60 for line in text.splitlines())
    assert parse_term(text) == term
    assert parse_term(format_term(term, width=10)) == term
    assert "\n" not in format_term(term, width=10_000)


def test_format_parse_round_trip_of_escapes() -> None:
    for text in ["a\\b", "\x00\x1f\x7f", "tab\t", "é€😀", "\x9b"]:
        assert parse_term(format_term(ErlString(text))) == ErlString(text)
        assert parse_term(format_term(Atom(text))) == Atom(text)
        assert parse_term(format_term(text)) == text.encode()


def test_long_float_literal_is_refused() -> None:
    with pytest.raises(TermSyntaxError, match="too long"):
        parse_term("1" * 5000 + ".5")
    assert parse_term("1" * 5000) == int("1" * 4000) * 10**1000 + int("1" * 1000)


def test_recursion_error_near_the_limit_becomes_syntax_error() -> None:
    limit = sys.getrecursionlimit()
    depth = 0

    def nest() -> None:
        nonlocal depth
        depth += 1
        if depth < limit - 60:
            nest()
            return
        with pytest.raises(TermSyntaxError, match="Python stack"):
            parse_terms("[" * 300 + "]" * 300 + ".")
        with pytest.raises(TermSyntaxError, match="Python stack"):
            parse_term("[" * 300 + "]" * 300)

    nest()


def test_map_literals_with_repeated_and_colliding_keys() -> None:
    assert parse_term("#{a => 1, a => 2}") == {Atom("a"): 2}
    assert parse_term("#{[1] => 1, [1] => 2}") == {FrozenList([1]): 2}
    pairs = parse_term("#{1 => a, 1.0 => b, true => c, 1 => d}")
    assert isinstance(pairs, MapPairs)
    assert pairs == MapPairs(((1, Atom("d")), (1.0, Atom("b")), (True, Atom("c"))))
    assert parse_term(format_term(pairs)) == pairs


def test_binary_sizes_are_capped() -> None:
    # A few characters must not allocate gigabytes: hostile sizes are syntax errors.
    with pytest.raises(TermSyntaxError, match="segment too large"):
        parse_terms("<<1:455555555555555555>>.")
    with pytest.raises(TermSyntaxError, match="binary too large"):
        parse_terms("<<1:134217728, 1:1>>.")
    assert parse_terms("<<1:134217728>>.")[0][-1] == 1
