"""Script: OTP's rules (errors) and the lints (warnings), each failing and passing;
terms, text, str and HTML."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest

import erlbridge.upgrade
from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, encode, parse_term, parse_terms
from erlbridge.upgrade import (
    Apply,
    CodeChange,
    Diagnostic,
    Load,
    LoadApplication,
    LoadObjectCode,
    PointOfNoReturn,
    Purge,
    Remove,
    RestartEmulator,
    RestartNewEmulator,
    Resume,
    Script,
    Severity,
    Start,
    StartApplication,
    Stop,
    StopApplication,
    Suspend,
    SyncNodes,
    UnloadApplication,
)

LOC = LoadObjectCode("demo", "2", ["m"])
PONR = PointOfNoReturn()


def good() -> Script:
    return Script(
        [
            LOC,
            Apply("demo", "prepare", []),
            PONR,
            Suspend(["m"]),
            Load("m"),
            CodeChange([("m", [])]),
            Resume(["m"]),
            SyncNodes("s", ["a@h"]),
        ]
    )


def rules(script: Script, severity: Severity) -> list[tuple[int, str]]:
    return [(d.index, d.rule) for d in script.diagnostics() if d.severity is severity]


def test_a_systools_shaped_script_is_clean() -> None:
    assert good().validate() == []
    assert good().is_valid()
    assert good().diagnostics() == []


# -- errors: each with a failing and a passing script ---------------------------------------

ERROR_CASES = [
    # (rule, failing script, passing script)
    (
        "bad_op_before_point_of_no_return",
        [LOC, Suspend(["m"]), PONR, Load("m"), Resume(["m"])],
        [LOC, Apply("a", "b", []), PONR, Suspend(["m"]), Load("m"), Resume(["m"])],
    ),
    (
        "illegal_instruction_after_point_of_no_return",
        [LOC, PONR, Load("m"), LoadObjectCode("demo", "2", ["n"])],
        [LOC, LoadObjectCode("demo", "2", ["n"]), PONR, Load("m"), Load("n")],
    ),
    (
        "missing_point_of_no_return",
        [LOC, Load("m")],
        [LOC, PONR, Load("m")],
    ),
    (
        "too_many_point_of_no_return",
        [LOC, PONR, Load("m"), PONR],
        [LOC, PONR, Load("m")],
    ),
    (
        "restart_new_emulator_not_first",
        [LOC, PONR, Load("m"), RestartNewEmulator()],
        [RestartNewEmulator(), LOC, PONR, Load("m")],
    ),
    (
        "no_object_code",
        [LOC, PONR, Load("n")],
        [LoadObjectCode("demo", "2", ["n"]), PONR, Load("n")],
    ),
    (
        "no_object_code",
        [PONR, Load("m"), LOC],
        [LOC, PONR, Load("m")],
    ),
    (
        "restart_new_emulator_not_first",
        [Apply("a", "b", []), RestartNewEmulator()],
        [RestartNewEmulator(), Apply("a", "b", [])],
    ),
]


@pytest.mark.parametrize(("rule", "bad", "ok"), ERROR_CASES, ids=[c[0] for c in ERROR_CASES])
def test_error_rule(rule: str, bad: list[Any], ok: list[Any]) -> None:
    script = Script(bad)
    with pytest.raises(ScriptError) as info:
        script.validate()
    found = rules(script, Severity.ERROR)
    assert rule in [r for _, r in found]
    err = info.value
    assert (err.index, err.rule) == found[0]
    assert err.instruction is script[err.index]
    assert f"#{err.index}" in str(err) and err.rule in str(err)
    assert not script.is_valid()
    fixed = Script(ok)
    assert rule not in [r for _, r in rules(fixed, Severity.ERROR)]
    fixed.validate()


def test_ponr_split_follows_release_handler_1() -> None:
    before, after = good().split()
    assert list(before) == [LOC, Apply("demo", "prepare", [])]
    assert isinstance(after[0], PointOfNoReturn)
    # without a point_of_no_return the whole script is After
    b, a = Script([Apply("a", "b", [])]).split()
    assert len(b) == 0 and len(a) == 1
    # and then load_object_code is an error, an apply-only script is fine
    Script([Apply("a", "b", []), RestartEmulator()]).validate()


def test_error_in_application_instruction_names_its_index() -> None:
    script = Script([PONR, LoadApplication("demo", ["m"])])
    with pytest.raises(ScriptError) as info:
        script.validate()
    assert info.value.index == 1
    assert info.value.rule == "no_object_code"
    assert isinstance(info.value.instruction, LoadApplication)
    Script([LOC, PONR, LoadApplication("demo", ["m"]), StartApplication("demo")]).validate()


def test_all_errors_are_listed() -> None:
    script = Script([Suspend(["m"]), LOC, Load("x"), PONR, PONR])
    with pytest.raises(ScriptError) as info:
        script.validate()
    assert "3 error(s)" in str(info.value) or "4 error(s)" in str(info.value)
    assert len(script.errors()) >= 3


# -- warnings -------------------------------------------------------------------------------

WARNING_CASES = [
    (
        "load_object_code_not_first",
        [Apply("a", "b", []), LOC, PONR, Load("m")],
        [LOC, Apply("a", "b", []), PONR, Load("m")],
    ),
    (
        "suspended_not_resumed",
        [LOC, PONR, Suspend(["m"]), Load("m")],
        [LOC, PONR, Suspend(["m"]), Load("m"), Resume(["m"])],
    ),
    (
        "resumed_not_suspended",
        [LOC, PONR, Load("m"), Resume(["m"])],
        [LOC, PONR, Suspend([("m", 100)]), Load("m"), Resume(["m"])],
    ),
    (
        "code_change_not_suspended",
        [LOC, PONR, Load("m"), CodeChange([("m", [])])],
        [LOC, PONR, Suspend(["m"]), Load("m"), CodeChange([("m", [])]), Resume(["m"])],
    ),
    (
        "module_loaded_twice",
        [LOC, PONR, Load("m"), Load("m")],
        [LOC, PONR, Load("m")],
    ),
    (
        "module_loaded_twice",
        [LOC, LOC, PONR, Load("m")],
        [LOC, PONR, Load("m")],
    ),
    (
        "sync_nodes_id_reused",
        [SyncNodes("s", ["a@h"]), SyncNodes("s", ["b@h"])],
        [SyncNodes("s", ["a@h"]), SyncNodes("t", ["b@h"])],
    ),
    (
        "stopped_not_started",
        [Stop(["sup"])],
        [Stop(["sup"]), Start(["sup"])],
    ),
    (
        "started_not_stopped",
        [Start(["sup"])],
        [Stop(["sup"]), Start(["sup"])],
    ),
    (
        "instructions_after_restart_emulator",
        [RestartEmulator(), Purge(["m"]), Purge(["n"])],
        [Purge(["m"]), RestartEmulator()],
    ),
]


@pytest.mark.parametrize(("rule", "bad", "ok"), WARNING_CASES, ids=[c[0] for c in WARNING_CASES])
def test_warning_rule(rule: str, bad: list[Any], ok: list[Any]) -> None:
    script = Script(bad)
    warnings = script.validate()  # warnings never raise
    assert rule in [w.rule for w in warnings]
    assert all(isinstance(w, Diagnostic) and w.severity is Severity.WARNING for w in warnings)
    assert script.warnings() == warnings
    w = next(w for w in warnings if w.rule == rule)
    assert w.instruction is script[w.index]
    assert rule in str(w) and f"#{w.index}" in str(w)
    assert rule not in [x.rule for x in Script(ok).validate()]


def test_restart_emulator_warning_is_given_once() -> None:
    script = Script([RestartEmulator(), Purge(["m"]), Purge(["n"])])
    assert [w.index for w in script.warnings()] == [1]


def test_sync_nodes_ids_compare_as_terms() -> None:
    # "s" (a binary) and Atom("s") are different ids
    assert Script([SyncNodes("s", []), SyncNodes(Atom("s"), [])]).warnings() == []


def test_application_instructions_in_a_full_script() -> None:
    script = Script(
        [
            LoadObjectCode("new", "1", ["n1"]),
            PONR,
            StopApplication("old"),
            UnloadApplication("old", ["o1", "o2"]),
            LoadApplication("new", ["n1"]),
            StartApplication("new"),
        ]
    )
    assert script.validate() == []
    low = script.low_level()
    assert all(not hasattr(i, "expand") for i in low)
    assert [type(i) for i in low][2:] == [Apply, Remove, Remove, Purge, Apply, Load, Apply, Apply]
    assert script.to_term() == low.to_term()
    assert [i for i, _ in script.expanded()] == [0, 1, 2, 3, 3, 3, 3, 4, 4, 5]


# -- container behaviour --------------------------------------------------------------------


def test_sequence_protocol() -> None:
    s = good()
    assert len(s) == 8 and s[0] == LOC and isinstance(s[1:3], Script)
    assert list(s) == list(s.instructions)
    assert (s[:2] + s[2:]) == s
    assert PONR in s
    assert hash(s) == hash(good())
    assert "Script([" in repr(s)


def test_script_refuses_non_instructions() -> None:
    with pytest.raises(ScriptError) as info:
        Script([LOC, "point_of_no_return"])  # type: ignore[list-item]
    assert (info.value.index, info.value.rule) == (1, "not_an_instruction")


# -- terms and text -------------------------------------------------------------------------


def test_to_text_is_one_instruction_per_line_and_parses_back() -> None:
    s = good()
    text = s.to_text()
    assert text.endswith("].\n")
    lines = text.splitlines()
    assert len(lines) == len(s)
    assert lines[0] == '[{load_object_code,{demo,"2",[m]}},'
    assert lines[2] == " point_of_no_return,"
    assert Script.from_text(text) == s
    assert Script.from_text(text.rstrip().rstrip(".")) == s  # the dot is optional
    [term] = parse_terms(text)
    assert encode(term) == encode(s.to_term())
    assert Script.from_term(term) == s
    assert Script().to_text() == "[].\n"
    assert Script.from_text("[]") == Script()


def test_from_term_errors_carry_the_index() -> None:
    with pytest.raises(ScriptError) as info:
        Script.from_term(parse_term("[point_of_no_return, {load, m}]"))
    assert info.value.index == 1 and info.value.rule == "malformed_instruction"
    assert "{load,m}" in str(info.value)
    with pytest.raises(ScriptError) as info:
        Script.from_term(parse_term("{load, m}"))
    assert info.value.rule == "bad_list"
    with pytest.raises(ScriptError) as info:
        Script.from_text("[]. [].")
    assert info.value.rule == "bad_script_text"


def test_str_is_readable() -> None:
    text = str(Script([LOC, PONR, StopApplication("demo")]))
    assert text.splitlines() == [
        "Script (3 instructions)",
        '  0  {load_object_code,{demo,"2",[m]}}',
        "  1  point_of_no_return",
        "  2  stop_application demo -> {apply,{application,stop,[demo]}}",
    ]
    assert str(Script()) == "Script (empty)"


def test_html_table() -> None:
    script = Script([LOC, PONR, Suspend(["m"]), Load("n"), UnloadApplication("a", ["x"])])
    page = script._repr_html_()
    assert page.startswith('<table class="erlbridge-script">')
    assert page.count("<tr>") == 1 + len(script)
    assert "<td>before</td>" in page and "<td>after</td>" in page
    assert "no_object_code" in page and "suspended_not_resumed" in page
    assert "{load_object_code,{demo,&quot;2&quot;,[m]}}" in page
    assert "{purge,[x]}" in page  # application instructions show their expansion


def test_lift_applications_folds_exact_expansions() -> None:
    text = """[{load_object_code,{extra,"1",[extra_mod]}},
 point_of_no_return,
 {load,{extra_mod,brutal_purge,brutal_purge}},
 {apply,{application,start,[extra,permanent]}},
 {apply,{application,load,[extra]}},
 {apply,{application,stop,[old]}},
 {remove,{o1,brutal_purge,brutal_purge}},
 {remove,{o2,brutal_purge,brutal_purge}},
 {purge,[o1,o2]},
 {apply,{application,unload,[old]}},
 {apply,{application,unload,[other]}},
 {remove,{o3,brutal_purge,brutal_purge}},
 {purge,[o4]},
 {apply,{application,unload,[x]}},
 {purge,[o5,o6]},
 {apply,{application,unload,[y]}},
 {purge,[]},
 {apply,{application,unload,[z]}},
 {apply,{application,start,[extra]}},
 {apply,{application,start,[extra,load]}},
 {apply,{application,load,[extra,x]}},
 {apply,{application,which,[]}},
 {apply,{other,stop,[x]}}]."""
    script = Script.from_text(text)
    lifted = script.lift_applications()
    assert encode(lifted.to_term()) == encode(script.to_term())
    assert [type(i).__name__ for i in lifted] == [
        "LoadObjectCode",
        "PointOfNoReturn",
        "Load",
        "StartApplication",
        "LoadApplication",
        "StopApplication",
        "UnloadApplication",  # took in the two removes and the purge
        "UnloadApplication",  # nothing before it to take
        "Remove",
        "Purge",  # o4 does not match the remove of o3
        "UnloadApplication",
        "Purge",  # two modules, but only one item before it
        "UnloadApplication",
        "Purge",
        "UnloadApplication",
        "Apply",
        "Apply",
        "Apply",
        "Apply",
        "Apply",
    ]
    assert lifted[6] == UnloadApplication("old", ["o1", "o2"])
    # folding changes indexes, never findings
    assert [d.rule for d in lifted.diagnostics()] == [d.rule for d in script.diagnostics()]
    short = Script.from_text("[{purge,[a,b]},{apply,{application,unload,[x]}}]")
    assert [type(i).__name__ for i in short.lift_applications()] == ["Purge", "UnloadApplication"]


def test_package_docstring_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    doc = erlbridge.upgrade.__doc__ or ""
    lines = []
    for line in doc.split("Example::", 1)[1].splitlines()[1:]:
        if line and not line.startswith("    "):
            break
        lines.append(line)
    exec(textwrap.dedent("\n".join(lines)), {})  # the example asserts its own round trip
    out = capsys.readouterr().out
    assert '{load_object_code,{demo,"2",[demo_srv]}}' in out and "Script (" not in out
