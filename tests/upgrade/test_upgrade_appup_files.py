"""Real appup files: what systools reads (the first term), the history after it,
``.appup.src`` scripts evaluated by a local erl, and OTP's own checks (``systools_rc``)
on the instructions they hold. Sources of the files in data/appups/: SOURCES.md there."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from erlbridge.appup_src import eval_appup_script, load_appup_file
from erlbridge.exceptions import ScriptError, Timeout
from erlbridge.term import Atom, ErlString, encode, format_term
from erlbridge.upgrade import AddModule, Apply, Appup, DeleteModule, LoadModule, Update

DATA = Path(__file__).parent / "data" / "appups"
OTP_LIB = Path("/usr/lib/erlang/lib")


def ranch_text() -> str:
    return (DATA / "ranch.appup").read_text(encoding="utf-8")


# -- the first term, and the history after it --------------------------------------------


def test_ranch_appup_first_term_is_what_systools_reads() -> None:
    appup = Appup.from_text(ranch_text())
    assert appup.version == ErlString("2.2.0")
    assert len(appup.up) == len(appup.down) == 1
    up = appup.up_from("2.1.5")  # a regex entry: <<"2\\.1\\.[0-9]+.*">>
    assert isinstance(up[0], Apply) and isinstance(up[-1], Apply)
    assert Update("ranch_sup", supervisor=True) in up
    assert Update("ranch_server", ("advanced", [])) in up
    with pytest.raises(KeyError):
        appup.up_from("2.0.9")  # only the history knows 2.0.x


def test_ranch_appup_history_is_available() -> None:
    history = Appup.all_from_text(ranch_text())
    assert [a.version.text for a in history] == ["2.2.0", "2.1.0", "2.0.0"]
    assert history[0] == Appup.from_text(ranch_text())
    assert history[1].up_from("2.0.4")  # 2.1.0's appup covered 2.0.x


def test_release_handler_reader_needs_exactly_one_term() -> None:
    with pytest.raises(ScriptError, match="exactly one term") as info:
        Appup.from_text(ranch_text(), exactly_one=True)
    assert info.value.rule == "bad_appup"
    single = Appup.from_text(ranch_text()).to_text()
    assert Appup.from_text(single, exactly_one=True) == Appup.from_text(single)


TRICKY_HEADS = [
    # (first term text, what follows it): a dot only ends the term before white space,
    # % or the end, and never inside strings, quoted atoms, char literals or comments.
    ('{"1.0",[{"0.9",[{apply,{io,format,["a. b %. c\\". d"]}}]}],[]}.', "\ngarbage $ { ."),
    ("{\"1.0\",[{\"0.9\",[{apply,{'a. b',f,[$., $%, $\\\\]}}]}],[]}.", "%"),
    ('%% comment. with dots. \n{"2",[],[]}.', "\n{not, an, appup}.\n"),
    ('{"2",[{"1",[{apply,{m,f,[1.5e3]}}]}],[]}.', ""),
    ('{"2",[],[]}. ', "{\"1\",[],[]}.\n"),
]


@pytest.mark.parametrize("head,tail", TRICKY_HEADS)
def test_first_term_reader_stops_where_erl_scan_does(head: str, tail: str) -> None:
    appup = Appup.from_text(head + tail)
    assert appup == Appup.from_text(head, exactly_one=True)


@pytest.mark.integration
def test_first_term_reader_agrees_with_systools_lib(tmp_path: Path, erl: Any) -> None:
    files = []
    for index, (head, tail) in enumerate([*TRICKY_HEADS, (ranch_text(), "")]):
        path = tmp_path / f"t{index}.appup"
        path.write_text(head + tail, encoding="utf-8")
        files.append(path)
    names = ",".join(f'"{p}"' for p in files)
    out = erl(
        "lists:foreach(fun(F) -> {ok, T} = systools_lib:read_term(F), "
        'io:format("~s~n", [binary:encode_hex(term_to_binary(T, [{minor_version, 2}]))]) '
        f"end, [{names}]), halt()."
    )
    theirs = [bytes.fromhex(line) for line in out.split()]
    ours = [encode(Appup.from_text(p.read_text(encoding="utf-8")).to_term()) for p in files]
    assert ours == theirs


def test_text_without_a_term_or_with_a_bad_first_term_is_refused() -> None:
    with pytest.raises(ScriptError):
        Appup.from_text("%% nothing here\n")
    with pytest.raises(ScriptError):
        Appup.from_text('{"2", [], []. {"1",[],[]}.')
    with pytest.raises(ScriptError, match="term #2"):
        Appup.all_from_text('{"2",[],[]}.\n{application, x, []}.\n')


@pytest.mark.integration
def test_ranch_appup_passes_systools_rc(erl_rc: Any) -> None:
    erl_rc(*Appup.all_from_text(ranch_text()))


# -- OTP's own appups ---------------------------------------------------------------------


def otp_appups() -> list[Path]:
    return sorted(OTP_LIB.glob("*/ebin/*.appup"))


@pytest.mark.skipif(not otp_appups(), reason="no OTP installed at /usr/lib/erlang")
def test_every_otp_appup_reads_with_both_readers() -> None:
    files = otp_appups()
    assert len(files) > 10
    for path in files:
        text = path.read_text(encoding="utf-8")
        appup = Appup.from_text(text)
        assert appup == Appup.from_text(text, exactly_one=True), path
        assert appup.version.text == path.parent.parent.name.split("-", 1)[1], path


@pytest.mark.integration
@pytest.mark.skipif(not otp_appups(), reason="no OTP installed at /usr/lib/erlang")
def test_every_otp_appup_passes_systools_rc(erl_rc: Any) -> None:
    erl_rc(*((p.stem, Appup.from_text(p.read_text(encoding="utf-8"))) for p in otp_appups()))


# -- .appup.src scripts ---------------------------------------------------------------------


@pytest.mark.integration
def test_emqx_appup_src_evaluates_with_vsn_bound(erl_rc: Any) -> None:
    appup = eval_appup_script(DATA / "emqx.appup.src", {"VSN": ErlString("5.0.1")})
    assert appup.version == ErlString("5.0.1")
    up = appup.up_from("5.0.0")
    assert AddModule("emqx_exclusive_subscription") in up
    assert LoadModule("emqx_relup") in up
    assert LoadModule("emqx_config", "brutal_purge", "soft_purge", []) in up
    assert appup.up_from("4.9.9") == ()  # the <<".*">> catch-all
    assert DeleteModule("emqx_exclusive_subscription") in appup.down_to("5.0.0")
    assert load_appup_file(DATA / "emqx.appup.src", {"VSN": "5.0.1"}) == appup  # str: a string
    erl_rc(appup)


@pytest.mark.integration
def test_unbound_variable_is_a_typed_error() -> None:
    with pytest.raises(ScriptError, match="VSN") as info:
        eval_appup_script(DATA / "emqx.appup.src")
    assert info.value.rule == "appup_script"


@pytest.mark.integration
def test_script_with_code_and_bindings(tmp_path: Path) -> None:
    script = tmp_path / "demo.appup.src"
    script.write_text(
        "%% computed like rebar3_appup_plugin's example\n"
        "Old = lists:flatten(io_lib:format(\"~s\", [Prev])),\n"
        "Mods = [list_to_atom(\"demo_\" ++ integer_to_list(N)) || N <- lists:seq(1, Count)],\n"
        "Up = [{load_module, M} || M <- Mods] ++ [{update, demo_sup, supervisor}],\n"
        "{VSN, [{Old, Up}, {<<\"0\\\\..*\">>, [{restart_application, demo}]}],\n"
        "      [{Old, lists:reverse(Up)}]}.\n",
        encoding="utf-8",
    )
    appup = eval_appup_script(
        script, {"VSN": ErlString("2.0.0"), "Prev": Atom("1.5.0"), "Count": 2}
    )
    assert appup.version == ErlString("2.0.0")
    assert appup.up_from("1.5.0") == (
        LoadModule("demo_1"), LoadModule("demo_2"), Update("demo_sup", supervisor=True)
    )
    assert appup.down_to("1.5.0")[0] == Update("demo_sup", supervisor=True)
    assert len(appup.up_from("0.3")) == 1
    # an .appup.src holding a plain term needs no binding
    plain = tmp_path / "plain.appup.src"
    plain.write_text(Appup.from_text(ranch_text()).to_text(), encoding="utf-8")
    assert eval_appup_script(plain) == Appup.from_text(ranch_text())


@pytest.mark.integration
def test_script_failures_are_typed(tmp_path: Path) -> None:
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    with pytest.raises(ScriptError, match="bad_thing") as info:
        eval_appup_script(write("raise.appup.src", "erlang:error(bad_thing).\n"))
    assert info.value.rule == "appup_script"
    with pytest.raises(ScriptError) as info:
        eval_appup_script(write("syntax.appup.src", "{\"1\", [}.\n"))
    assert info.value.rule == "appup_script"
    with pytest.raises(ScriptError) as info:
        eval_appup_script(write("notappup.appup.src", "{application, x, []}.\n"))
    assert info.value.rule == "bad_appup"
    with pytest.raises(ScriptError, match="#0") as info:
        eval_appup_script(write("badinstr.appup.src", '{"2", [{"1", [{frobnicate, m}]}], []}.\n'))
    with pytest.raises(Timeout):
        eval_appup_script(write("loop.appup.src", "timer:sleep(infinity).\n"), timeout=3)
    with pytest.raises(ValueError, match="variable"):
        eval_appup_script(write("ok.appup.src", '{"1",[],[]}.\n'), {"vsn": 1})
    with pytest.raises(FileNotFoundError):
        eval_appup_script(tmp_path / "missing.appup.src")
    with pytest.raises(FileNotFoundError):
        eval_appup_script(write("ok2.appup.src", '{"1",[],[]}.\n'), erl=tmp_path / "no-erl")


# -- systools_rc --------------------------------------------------------------------------

# Builds #application records with the local OTP's own record definition (its field
# list changes between releases), then lets systools_rc expand, check and translate.
RC_MODULE = """
-module(erlbridge_rc_check).
-include_lib("sasl/src/systools.hrl").
-export([check/3]).
check(Mode, Instrs, {Name, Mods}) ->
    Appl = #application{name = Name, vsn = "1", modules = Mods},
    systools_rc:translate_scripts(Mode, [Instrs], [Appl], [Appl]).
"""


def _modules(appup: Appup) -> list[str]:
    found: set[str] = set()
    for entry in (*appup.up, *appup.down):
        for instruction in entry.instructions:
            module = getattr(instruction, "module", None)
            if module is not None:
                found.add(str(module))
            found.update(str(m) for m in getattr(instruction, "dep_mods", None) or ())
    return sorted(found)


@pytest.fixture
def erl_rc(tmp_path: Path, erl: Any) -> Any:
    """``erl_rc(*appups)``: every entry (up and down) of each appup goes through the local
    OTP's ``systools_rc:translate_scripts/4``; AssertionError names a refused one."""
    (tmp_path / "erlbridge_rc_check.erl").write_text(RC_MODULE, encoding="utf-8")

    def check(*appups: Appup | tuple[str, Appup]) -> None:
        named = [a if isinstance(a, tuple) else ("app", a) for a in appups]
        names = sorted({m for _, appup in named for m in _modules(appup)})
        modules = "[" + ",".join(format_term(Atom(m)) for m in names) + "]"
        calls = []
        for app, appup in named:
            for mode, entries in (("up", appup.up), ("dn", appup.down)):
                for entry in entries:
                    instrs = format_term([i.to_term() for i in entry.instructions],
                                         width=10_000)
                    calls.append(f"{{{mode}, {instrs}, {format_term(Atom(app))}}}")
        code = (
            "{ok, _} = compile:file(\"erlbridge_rc_check\", [{outdir, \".\"}]), "
            "code:add_patha(\".\"), "
            "lists:foreach(fun({Mode, I, App}) -> "
            f"R = erlbridge_rc_check:check(Mode, I, {{App, {modules}}}), "
            'io:format("~w~n", [case R of {ok, _} -> ok; _ -> R end]) end, ['
            + ",".join(calls) + "]), halt()."
        )
        results = erl(code, cwd=tmp_path).split()
        assert results == ["ok"] * len(calls), results

    return check


@pytest.mark.integration
def test_helper_catches_what_systools_rc_refuses(erl_rc: Any) -> None:
    # the check can fail: a dependency on a module without an instruction (undef_module)
    bad = Appup.from_text('{"2", [{"1", [{load_module, a, [b]}]}], []}.')
    with pytest.raises(AssertionError):
        erl_rc(bad)


def test_load_appup_file_reads_plain_appups_without_erl(tmp_path: Path) -> None:
    assert load_appup_file(DATA / "ranch.appup") == Appup.from_text(ranch_text())
    latin = tmp_path / "old.appup"  # an old file in Latin-1, as epp accepts it
    latin.write_bytes('%% café\n{"2",[{"1",[{apply,{io,format,["é"]}}]}],[]}.\n'.encode("latin-1"))
    appup = load_appup_file(latin)
    assert appup.up_from("1") == (Apply("io", "format", [ErlString("é")]),)
