"""Low-level and application instructions: construct -> term -> text -> parse -> equal,
constructor validation, from_term errors."""

from __future__ import annotations

from typing import Any

import pytest

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString, encode, format_term, parse_term, parse_terms
from erlbridge.upgrade import (
    MFA,
    Apply,
    CodeChange,
    Load,
    LoadApplication,
    LoadObjectCode,
    Mode,
    PointOfNoReturn,
    Purge,
    PurgeMethod,
    Remove,
    RestartEmulator,
    RestartNewEmulator,
    Resume,
    Start,
    StartApplication,
    StartType,
    Stop,
    StopApplication,
    Suspend,
    SyncNodes,
    UnloadApplication,
    instruction_from_term,
)


def test_low_level_round_trip(low_instruction: Any) -> None:
    term = low_instruction.to_term()
    text = format_term(term)
    parsed = parse_term(text)
    assert encode(parsed) == encode(term)
    again = instruction_from_term(parsed)
    assert type(again) is type(low_instruction)
    assert again == low_instruction
    assert hash(again) == hash(low_instruction)
    assert type(low_instruction).from_term(parsed) == low_instruction
    assert str(low_instruction) == format_term(term, width=10_000)


def test_application_round_trip(app_instruction: Any) -> None:
    terms = app_instruction.to_terms()
    assert terms == app_instruction.to_term()
    text = format_term(terms) + "."
    [parsed] = parse_terms(text)
    assert encode(parsed) == encode(terms)
    again = type(app_instruction).from_terms(parsed)
    assert again == app_instruction
    assert str(app_instruction).startswith(app_instruction.tag)


def test_exact_terms() -> None:
    a = Atom
    assert LoadObjectCode("demo", "2", ["m"]).to_term() == (
        a("load_object_code"),
        (a("demo"), ErlString("2"), [a("m")]),
    )
    assert PointOfNoReturn().to_term() == a("point_of_no_return")
    assert Load("m").to_term() == (a("load"), (a("m"), a("brutal_purge"), a("brutal_purge")))
    assert Remove("m", "soft_purge").to_term() == (
        a("remove"),
        (a("m"), a("soft_purge"), a("brutal_purge")),
    )
    assert Suspend([("m", 10)]).to_term() == (a("suspend"), [(a("m"), 10)])
    assert CodeChange([("m", 1)], mode=None).to_term() == (a("code_change"), [(a("m"), 1)])
    assert CodeChange([("m", 1)], mode="down").to_term() == (
        a("code_change"),
        a("down"),
        [(a("m"), 1)],
    )
    # an id given as str is a binary (the term layer's mapping): compare the bytes
    assert encode(SyncNodes("i", ["n@h"]).to_term()) == encode((a("sync_nodes"), b"i", [a("n@h")]))
    assert SyncNodes(a("i"), MFA("m", "f", [])).to_term() == (
        a("sync_nodes"),
        a("i"),
        (a("m"), a("f"), []),
    )
    assert RestartNewEmulator().to_term() == a("restart_new_emulator")
    assert RestartEmulator().to_term() == a("restart_emulator")
    # the field decides the type: a str module is an atom, a str version a string
    lo = LoadObjectCode("demo", "2", ["m"])
    assert type(lo.lib) is Atom and type(lo.lib_vsn) is ErlString
    assert type(lo.modules[0]) is Atom


def test_application_expansions() -> None:
    assert [str(i) for i in StopApplication("d").expand()] == ["{apply,{application,stop,[d]}}"]
    assert [str(i) for i in StartApplication("d", StartType.TRANSIENT).expand()] == [
        "{apply,{application,start,[d,transient]}}"
    ]
    assert [str(i) for i in LoadApplication("d", ["m"]).expand()] == [
        "{load,{m,brutal_purge,brutal_purge}}",
        "{apply,{application,load,[d]}}",
    ]
    assert [str(i) for i in UnloadApplication("d", ["m", "n"]).expand()] == [
        "{remove,{m,brutal_purge,brutal_purge}}",
        "{remove,{n,brutal_purge,brutal_purge}}",
        "{purge,[m,n]}",
        "{apply,{application,unload,[d]}}",
    ]
    assert [str(i) for i in UnloadApplication("d").expand()] == ["{apply,{application,unload,[d]}}"]


def test_equality_is_exact() -> None:
    # a str argument is a binary, an ErlString a string: different terms, not equal
    assert Apply("m", "f", ["x"]) != Apply("m", "f", [ErlString("x")])
    assert CodeChange([("m", 1)], mode=None) != CodeChange([("m", 1)], mode=Mode.UP)
    assert CodeChange([("m", 1)], mode=None).effective_mode is Mode.UP
    assert Load("m") == Load(Atom("m"), "brutal_purge", PurgeMethod.BRUTAL_PURGE)
    assert Load("m") != Remove("m")
    assert Load("m").__eq__(object()) is NotImplemented
    assert len({Load("m"), Load("m"), Load("n")}) == 2
    assert Suspend(["a", ("b", 1)]).module_names == ("a", "b")
    assert CodeChange([("a", 1)]).module_names == ("a",)


def test_true_false_atoms_in_atom_fields() -> None:
    # the term layer reads the atoms true/false as bool; an atom field maps them back
    instr = instruction_from_term(parse_term("{purge,[true,false]}"))
    assert instr == Purge(["true", "false"])
    assert all(type(m) is Atom for m in instr.modules)


@pytest.mark.parametrize(
    ("make", "rule"),
    [
        (lambda: Load(1), "bad_module"),
        (lambda: Load(""), "bad_module"),
        (lambda: Load("x" * 256), "bad_module"),
        (lambda: Load(b"m"), "bad_module"),
        (lambda: Load("m", "hard_purge"), "bad_purge_method"),
        (lambda: Load("m", 3), "bad_purge_method"),
        (lambda: LoadObjectCode(1, "2", []), "bad_lib"),
        (lambda: LoadObjectCode("d", 2, []), "bad_lib_vsn"),
        (lambda: LoadObjectCode("d", b"2", []), "bad_lib_vsn"),
        (lambda: LoadObjectCode("d", [0xD800], []), "bad_lib_vsn"),
        (lambda: LoadObjectCode("d", "2", "m"), "bad_list"),
        (lambda: LoadObjectCode("d", "2", 5), "bad_list"),
        (lambda: Purge([1]), "bad_module"),
        (lambda: Suspend([("m", -1)]), "bad_timeout"),
        (lambda: Suspend([("m", 1.5)]), "bad_timeout"),
        (lambda: Suspend([("m", True)]), "bad_timeout"),
        (lambda: Suspend([("m", "forever")]), "bad_timeout"),
        (lambda: Suspend([("m", 1, 2)]), "bad_module"),
        (lambda: CodeChange(["m"]), "bad_code_change"),
        (lambda: CodeChange([("m", {1, 2})]), "bad_term"),
        (lambda: CodeChange([("m", 1)], mode="sideways"), "bad_mode"),
        (lambda: SyncNodes("i", [1]), "bad_node"),
        (lambda: SyncNodes("i", ("m", "f")), "bad_mfa"),
        (lambda: SyncNodes("i", ("m", "f", "notalist")), "bad_mfa"),
        (lambda: LoadObjectCode("d", Atom("v2"), []), "bad_lib_vsn"),
        (lambda: SyncNodes(object(), ["n@h"]), "bad_term"),
        (lambda: Apply("m", 1, []), "bad_func"),
        (lambda: Apply("m", "f", None), "bad_list"),
        (lambda: StartApplication("d", "load"), "bad_start_type"),
        (lambda: StartApplication("d", "sometimes"), "bad_start_type"),
        (lambda: StartApplication(1), "bad_application"),
        (lambda: StopApplication(None), "bad_application"),
    ],
)
def test_constructor_validation(make: Any, rule: str) -> None:
    with pytest.raises(ScriptError) as info:
        make()
    assert info.value.rule == rule
    assert str(info.value)


def test_errors_show_python_values_without_erlang_form() -> None:
    with pytest.raises(ScriptError) as info:
        Load(object())  # type: ignore[arg-type]
    assert "object object at" in str(info.value)


def test_constructor_accepts_edge_values() -> None:
    assert Suspend([("m", 0)]).modules == (("m", 0),)
    assert LoadObjectCode("d", [50, 46, 48], []).lib_vsn == ErlString("2.0")
    assert Load("x" * 255).module == "x" * 255
    assert StartApplication("d", StartType.TEMPORARY).type is StartType.TEMPORARY


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("{bogus_instruction, x}", "unknown_instruction"),
        ("42", "unknown_instruction"),
        ('"point_of_no_return"', "unknown_instruction"),
        ("{}", "unknown_instruction"),
        ("{1, 2}", "unknown_instruction"),
        ("{load, m}", "malformed_instruction"),
        ("{load, {m, brutal_purge}}", "malformed_instruction"),
        ("{load, {m, brutal_purge, x}}", "bad_purge_method"),
        ("{load, {1, brutal_purge, brutal_purge}}", "bad_module"),
        ("{remove, {m}}", "malformed_instruction"),
        ('{load_object_code, {d, "1"}}', "malformed_instruction"),
        ('{load_object_code, {d, "1", m}}', "bad_list"),
        ("{load_object_code, {d, v1, [m]}}", "bad_lib_vsn"),
        ("{load_object_code, x, y}", "malformed_instruction"),
        ("{purge, m}", "bad_list"),
        ("{purge, [m], x}", "malformed_instruction"),
        ("{suspend, m}", "bad_list"),
        ("{suspend, [{m, -5}]}", "bad_timeout"),
        ("{code_change, up, m}", "bad_list"),
        ("{code_change, sideways, []}", "bad_mode"),
        ("{code_change, [m]}", "bad_code_change"),
        ("{sync_nodes, id, n}", "bad_list"),
        ("{sync_nodes, id, {m, f}}", "bad_mfa"),
        ("{sync_nodes, id, [1]}", "bad_node"),
        ("{apply, {m, f}}", "bad_mfa"),
        ("{apply, {m, f, a}}", "bad_mfa"),
        ("{apply, {m, 1, []}}", "bad_func"),
        ("point_of_no_return_", "unknown_instruction"),
        ("{point_of_no_return}", "malformed_instruction"),
    ],
)
def test_from_term_errors_show_the_term(text: str, rule: str) -> None:
    term = parse_term(text)
    with pytest.raises(ScriptError) as info:
        instruction_from_term(term)
    assert info.value.rule == rule
    assert info.value.instruction is term or encode(info.value.instruction) == encode(term)
    # the offending term is shown in Erlang syntax
    assert format_term(term, width=10_000) in str(info.value)


def test_class_from_term_refuses_other_instructions() -> None:
    with pytest.raises(ScriptError) as info:
        Load.from_term(Remove("m").to_term())
    assert info.value.rule == "malformed_instruction"
    with pytest.raises(ScriptError):
        PointOfNoReturn.from_term(Atom("restart_emulator"))
    with pytest.raises(ScriptError):
        Resume.from_term((Atom("resume"),))
    assert Stop.from_term(parse_term("{stop, []}")) == Stop([])
    assert Start.from_term(parse_term("{start, [a]}")) == Start(["a"])


@pytest.mark.parametrize(
    ("cls", "text", "rule"),
    [
        (StopApplication, "[{apply,{application,start,[d,permanent]}}]", "malformed_instruction"),
        (StopApplication, "[]", "malformed_instruction"),
        (StopApplication, "{apply,{application,stop,[d]}}", "bad_list"),
        (StopApplication, "[{apply,{application,stop,[]}}]", "malformed_instruction"),
        (StopApplication, "[{apply,{other,stop,[d]}}]", "malformed_instruction"),
        (
            StopApplication,
            "[{apply,{application,stop,[d]}}, point_of_no_return]",
            "malformed_instruction",
        ),
        (StartApplication, "[{apply,{application,start,[d]}}]", "malformed_instruction"),
        (StartApplication, "[{apply,{application,start,[d,load]}}]", "bad_start_type"),
        (LoadApplication, "[{apply,{application,unload,[d]}}]", "malformed_instruction"),
        (
            LoadApplication,
            "[{load,{m,soft_purge,brutal_purge}},{apply,{application,load,[d]}}]",
            "malformed_instruction",
        ),
        (UnloadApplication, "[{apply,{application,load,[d]}}]", "malformed_instruction"),
        (
            UnloadApplication,
            "[{remove,{m,brutal_purge,brutal_purge}},{apply,{application,unload,[d]}}]",
            "malformed_instruction",
        ),
        (UnloadApplication, "[{bogus}]", "unknown_instruction"),
    ],
)
def test_application_from_terms_errors(cls: Any, text: str, rule: str) -> None:
    with pytest.raises(ScriptError) as info:
        cls.from_terms(parse_term(text))
    assert info.value.rule == rule


def test_mfa_and_sync_nodes_forms() -> None:
    mfa = MFA("m", "f", [1])
    assert MFA.from_term(mfa.to_term()) == mfa
    with pytest.raises(ScriptError):
        MFA.from_term((Atom("m"), Atom("f")))
    sync = SyncNodes("id", mfa)
    assert sync.nodes is mfa
    assert SyncNodes("id", ("m", "f", [1])).nodes == mfa
    assert SyncNodes("id", iter(["a@b"])).nodes == ("a@b",)
