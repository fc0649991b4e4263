"""High-level appup instructions (every form) and the Appup / Relup file objects (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString, encode, format_term, parse_term, parse_terms
from erlbridge.upgrade import (
    SOFT,
    AddApplication,
    AddModule,
    Advanced,
    Apply,
    Appup,
    AppupEntry,
    Load,
    LoadModule,
    LoadObjectCode,
    PointOfNoReturn,
    PurgeMethod,
    Relup,
    RelupEntry,
    RestartNewEmulator,
    Script,
    StartType,
    Stop,
    Update,
    appup_instruction_from_term,
)


def test_high_level_round_trip(high_instruction: Any) -> None:
    term = high_instruction.to_term()
    parsed = parse_term(format_term(term))
    assert encode(parsed) == encode(term)
    again = appup_instruction_from_term(parsed)
    assert type(again) is type(high_instruction)
    assert again == high_instruction
    assert type(high_instruction).from_term(parsed) == high_instruction


@pytest.mark.parametrize(
    "text",
    [
        "{update, m}",
        "{update, m, supervisor}",
        "{update, m, soft}",
        "{update, m, {advanced, {x, 1}}}",
        "{update, m, [a, b]}",
        "{update, m, soft, []}",
        "{update, m, {advanced, []}, [a]}",
        "{update, m, soft, soft_purge, brutal_purge, []}",
        "{update, m, 3000, {advanced, x}, brutal_purge, brutal_purge, [a]}",
        "{update, m, infinity, soft, brutal_purge, brutal_purge, []}",
        "{update, m, default, soft, brutal_purge, brutal_purge, []}",
        "{update, m, static, default, {advanced, []}, brutal_purge, brutal_purge, []}",
        "{update, m, dynamic, 10, soft, soft_purge, soft_purge, [x]}",
        "{load_module, m}",
        "{load_module, m, [a]}",
        "{load_module, m, soft_purge, soft_purge, []}",
        "{add_module, m}",
        "{add_module, m, [a]}",
        "{delete_module, m}",
        "{delete_module, m, []}",
        "{add_application, a}",
        "{add_application, a, none}",
        "{add_application, a, transient}",
        "{remove_application, a}",
        "{restart_application, a}",
        "restart_new_emulator",
        "restart_emulator",
        "{apply, {m, f, [1]}}",
        '{load_object_code, {a, "1", [m]}}',
        "{sync_nodes, id, [a@b]}",
    ],
)
def test_every_appup_form_reads_and_writes_back_exactly(text: str) -> None:
    term = parse_term(text)
    instr = appup_instruction_from_term(term)
    assert encode(instr.to_term()) == encode(term)


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("{update, m, hard}", "bad_change"),
        ("{update, m, {advanced}}", "bad_change"),
        ("{update, m, static, default, soft, x, brutal_purge, []}", "bad_purge_method"),
        ("{update, m, other, default, soft, brutal_purge, brutal_purge, []}", "bad_mod_type"),
        ("{update, m, 0, soft, brutal_purge, brutal_purge, []}", "bad_timeout"),
        ("{update, m, soft, brutal_purge, brutal_purge, x}", "malformed_instruction"),
        ("{update, m, soft, x}", "malformed_instruction"),
        ("{update, 1}", "bad_module"),
        ("{update, m, soft, [1]}", "bad_module"),
        ("{load_module, m, x}", "malformed_instruction"),
        ("{load_module, m, soft_purge, [a]}", "malformed_instruction"),
        ("{load_module, m, hard, soft_purge, []}", "bad_purge_method"),
        ("{add_module, m, x}", "malformed_instruction"),
        ("{add_module, m, [a], b}", "malformed_instruction"),
        ('{delete_module, "m"}', "bad_module"),
        ("{add_application, a, sometimes}", "bad_start_type"),
        ("{add_application, a, b, c}", "malformed_instruction"),
        ("{remove_application, a, b}", "malformed_instruction"),
        ("{restart_application, 1}", "bad_application"),
        ("{mnesia_backup, x}", "unknown_instruction"),
    ],
)
def test_bad_appup_instructions(text: str, rule: str) -> None:
    term = parse_term(text)
    with pytest.raises(ScriptError) as info:
        appup_instruction_from_term(term)
    assert info.value.rule == rule
    assert format_term(term, width=10_000) in str(info.value)


def test_class_from_term_checks_the_tag() -> None:
    with pytest.raises(ScriptError):
        Update.from_term(parse_term("{load_module, m}"))
    with pytest.raises(ScriptError):
        AddModule.from_term(Atom("add_module"))


@pytest.mark.parametrize(
    "make",
    [
        lambda: LoadModule("m", "soft_purge"),
        lambda: LoadModule("m", "soft_purge", "soft_purge"),
        lambda: Update("m", supervisor=True, change=SOFT),
        lambda: Update("m", pre_purge="soft_purge"),
        lambda: Update("m", pre_purge="soft_purge", post_purge="soft_purge", dep_mods=[]),
        lambda: Update("m", SOFT, timeout=5),
        lambda: Update("m", SOFT, dep_mods=[], mod_type="static"),
        lambda: Update(
            "m",
            SOFT,
            dep_mods=[],
            pre_purge="soft_purge",
            post_purge="soft_purge",
            mod_type="static",
        ),
    ],
)
def test_update_and_load_module_refuse_formless_combinations(make: Any) -> None:
    with pytest.raises(ScriptError) as info:
        make()
    assert info.value.rule == "malformed_instruction"


def test_expanded_forms_follow_systools_rc() -> None:
    assert str(LoadModule("m").expanded()) == "{load_module,m,brutal_purge,brutal_purge,[]}"
    assert (
        str(LoadModule("m", dep_mods=["a"]).expanded())
        == "{load_module,m,brutal_purge,brutal_purge,[a]}"
    )
    assert (
        str(Update("m").expanded())
        == "{update,m,dynamic,default,soft,brutal_purge,brutal_purge,[]}"
    )
    assert (
        str(Update("m", supervisor=True).expanded())
        == "{update,m,static,default,{advanced,[]},brutal_purge,brutal_purge,[]}"
    )
    assert (
        str(Update("m", Advanced(1), dep_mods=["a"]).expanded())
        == "{update,m,dynamic,default,{advanced,1},brutal_purge,brutal_purge,[a]}"
    )
    full = Update(
        "m", SOFT, dep_mods=[], pre_purge="soft_purge", post_purge="soft_purge", timeout=7
    )
    assert str(full.expanded()) == "{update,m,dynamic,7,soft,soft_purge,soft_purge,[]}"
    assert full.pre_purge is PurgeMethod.SOFT_PURGE
    assert (
        AddApplication("a").type is None
        and AddApplication("a", StartType.LOAD).type is StartType.LOAD
    )


FIXTURE_APPUP = """%% a comment
{"2.0.0",
 [{"1.0.0",
   [{sync_nodes, fixture_upgrade, {fixture, cluster_nodes, []}},
    {load_module, fixture_lib},
    {update, fixture_server, {advanced, []}},
    {update, fixture_sup, supervisor},
    {apply, {supervisor, restart_child, [fixture_sup, fixture_new]}},
    {load_module, fixture_holder, soft_purge, soft_purge, []},
    {delete_module, fixture_old}]},
  {<<"^1\\\\.[0-9]+$">>, [restart_new_emulator]}],
 [{"1.0.0", []}]}.
"""


def test_appup_file_round_trip() -> None:
    appup = Appup.from_text(FIXTURE_APPUP)
    assert appup.version == "2.0.0"
    assert [e.version for e in appup.up] == [ErlString("1.0.0"), b"^1\\.[0-9]+$"]
    steps = appup.up_from("1.0.0")
    assert isinstance(steps[2], Update) and steps[2].change == Advanced([])
    assert appup.up_from(ErlString("1.7")) == (RestartNewEmulator(),)
    assert appup.down_to("1.0.0") == ()
    with pytest.raises(KeyError):
        appup.up_from("1.7.1")
    with pytest.raises(KeyError):
        appup.down_to("0.9")
    text = appup.to_text()
    [term] = parse_terms(text)
    [orig] = parse_terms(FIXTURE_APPUP)
    assert encode(term) == encode(orig)
    assert Appup.from_text(text) == appup
    assert Appup("1").to_text() == '%% coding: utf-8\n{"1",\n [],\n []}.\n'


def test_appup_errors() -> None:
    # systools reads the first term; release_handler:upgrade_app needs exactly one
    assert Appup.from_text('{"1", [], []}. {"2", [], []}.') == Appup("1")
    with pytest.raises(ScriptError) as info:
        Appup.from_text('{"1", [], []}. {"2", [], []}.', exactly_one=True)
    assert info.value.rule == "bad_appup"
    for text in ('{"1", [], x}.', '{"1", []}.', '{"1", [{"0", x}], []}.', '{"1", [{"0"}], []}.'):
        with pytest.raises(ScriptError) as info:
            Appup.from_text(text)
        assert info.value.rule == "bad_appup"
    with pytest.raises(ScriptError) as info:
        Appup.from_text('{"1", [{"0", [ok, {bogus}]}], []}.')
    assert info.value.index == 0 and info.value.rule == "unknown_instruction"
    with pytest.raises(ScriptError) as info:
        Appup.from_text("{v1, [], []}.")
    assert info.value.rule == "bad_version"
    with pytest.raises(ScriptError) as info:
        AppupEntry("1", ["load_module"])  # type: ignore[list-item]
    assert info.value.rule == "not_an_instruction"


RELUP = """{"2",
 [{"1",[],
   [{load_object_code,{demo,"2",[demo_srv]}},
    point_of_no_return,
    {suspend,[demo_srv]},
    {load,{demo_srv,brutal_purge,brutal_purge}},
    {code_change,up,[{demo_srv,extra_up}]},
    {resume,[demo_srv]},
    {sync_nodes,demo_sync,['pyrel@127.0.0.1']}]}],
 [{"1","down we go",
   [{load_object_code,{demo,"1",[demo_srv]}},
    point_of_no_return,
    {suspend,[demo_srv]},
    {code_change,down,[{demo_srv,extra_down}]},
    {load,{demo_srv,brutal_purge,brutal_purge}},
    {resume,[demo_srv]}]}]}.
"""


def test_relup_round_trip() -> None:
    relup = Relup.from_text(RELUP)
    assert relup.version == "2"
    assert relup.up_versions == (ErlString("1"),) and relup.down_versions == (ErlString("1"),)
    up = relup.up_from("1")
    assert isinstance(up, Script) and len(up) == 7
    up.validate()
    relup.down_to(ErlString("1")).validate()
    assert relup.down[0].description == "down we go"
    with pytest.raises(KeyError):
        relup.up_from("0")
    with pytest.raises(KeyError):
        relup.down_to("3")
    text = relup.to_text()
    [orig] = parse_terms(RELUP)
    [again] = parse_terms(text)
    assert encode(again) == encode(orig)
    assert encode(relup.to_term()) == encode(orig)
    assert Relup.from_text(text) == relup
    assert 'up from "1" (7 instructions)' in str(relup) and "point_of_no_return" in str(relup)


def test_relup_built_in_python() -> None:
    entry = RelupEntry("1", [LoadObjectCode("d", "2", ["m"]), PointOfNoReturn(), Load("m")])
    relup = Relup("2", [entry], [RelupEntry("1", Script([Apply("a", "b", [])]), "descr")])
    assert entry.description == []
    [term] = parse_terms(relup.to_text())
    assert encode(term) == encode(relup.to_term())
    assert Relup("2").to_text() == '%% coding: utf-8\n{"2",\n [],\n []}.\n'


def test_relup_errors() -> None:
    for text in ('{"2", [], x}.', '{"2", []}.', '{"2", [{"1", []}], []}.'):
        with pytest.raises(ScriptError) as info:
            Relup.from_text(text)
        assert info.value.rule == "bad_relup"
    with pytest.raises(ScriptError) as info:
        Relup.from_text('{"2", [], []}. ok.')
    assert info.value.rule == "bad_relup"
    with pytest.raises(ScriptError) as info:
        Relup.from_text('{"2", [{"1", [], [point_of_no_return, {load, m}]}], []}.')
    assert info.value.index == 1
    with pytest.raises(ScriptError):
        RelupEntry("1", [], description={1, 2})


def test_load_and_advanced_values() -> None:
    assert Load("m") == Load("m", PurgeMethod.BRUTAL_PURGE, PurgeMethod.BRUTAL_PURGE)
    assert Advanced([]).to_term() == (Atom("advanced"), [])
    with pytest.raises(ScriptError):
        Advanced(object())


def test_relup_validate_names_the_entry() -> None:
    relup = Relup.from_text(RELUP)
    assert relup.validate() == []
    assert [d for d, _ in relup.entries()] == ["up", "down"]
    bad = Relup(
        "2",
        [RelupEntry("1", [PointOfNoReturn(), Load("m")])],
        [RelupEntry("1", [Apply("a", "b", []), Stop(["s"])])],
    )
    assert [(d, v, x.rule) for d, v, x in bad.diagnostics()] == [
        ("up", "1", "no_object_code"),
        ("down", "1", "stopped_not_started"),
    ]
    with pytest.raises(ScriptError) as info:
        bad.validate()
    assert 'up script from "1"' in str(info.value) and info.value.rule == "no_object_code"
    assert info.value.index == 1
    down_only = Relup("2", [], [RelupEntry("1", [Load("m")])])
    with pytest.raises(ScriptError) as info:
        down_only.validate()
    assert "down script to" in str(info.value)
    warn_only = Relup("2", [RelupEntry("1", [Stop(["s"])])])
    assert [x.rule for _, _, x in warn_only.validate()] == ["stopped_not_started"]
    page = bad._repr_html_()
    assert page.count("<table") == 2 and "up from" in page and "down to" in page
