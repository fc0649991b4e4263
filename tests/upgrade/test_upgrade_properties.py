"""Hypothesis: valid scripts round-trip; invalid scripts and junk terms/text fail with
ScriptError and nothing else."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString, encode, format_term, parse_terms
from erlbridge.upgrade import (
    MFA,
    Apply,
    Appup,
    AppupEntry,
    CodeChange,
    Load,
    LoadObjectCode,
    Mode,
    PointOfNoReturn,
    Purge,
    PurgeMethod,
    Relup,
    RelupEntry,
    Remove,
    RestartEmulator,
    RestartNewEmulator,
    Resume,
    Script,
    Start,
    Stop,
    Suspend,
    SyncNodes,
    appup_instruction_from_term,
    instruction_from_term,
)

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.text(alphabet=st.sampled_from("abcxyz_09@'.\"\\ éß→Q"), min_size=1, max_size=12).map(
    Atom
)
modules = st.lists(names, max_size=4, unique=True)
strings = st.text(max_size=8).map(ErlString)
scalars = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    names,
    strings,
    st.binary(max_size=6),
    st.booleans(),
)
terms = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple)),
    max_leaves=8,
)
timeouts = st.one_of(
    st.integers(min_value=0, max_value=2**31),
    st.sampled_from([Atom("infinity"), Atom("default")]),
)
purges = st.sampled_from(list(PurgeMethod))


def after_instruction(loadable: list[Atom]) -> st.SearchStrategy[Any]:
    """Any instruction that is legal after point_of_no_return."""
    options = [
        st.builds(Remove, names, purges, purges),
        st.builds(Purge, modules),
        st.builds(Suspend, st.lists(st.one_of(names, st.tuples(names, timeouts)), max_size=3)),
        st.builds(
            CodeChange,
            st.lists(st.tuples(names, terms), max_size=3),
            st.sampled_from([Mode.UP, Mode.DOWN, None]),
        ),
        st.builds(Resume, modules),
        st.builds(Stop, modules),
        st.builds(Start, modules),
        st.builds(
            SyncNodes,
            terms,
            st.one_of(
                st.lists(names, max_size=3),
                st.builds(MFA, names, names, st.lists(terms, max_size=2)),
            ),
        ),
        st.builds(Apply, names, names, st.lists(terms, max_size=3)),
    ]
    if loadable:
        options.append(st.builds(Load, st.sampled_from(loadable), purges, purges))
    return st.one_of(options)


@st.composite
def valid_scripts(draw: st.DrawFn) -> Script:
    items: list[Any] = []
    if draw(st.booleans()):
        items.append(RestartNewEmulator())
    locs = draw(st.lists(st.builds(LoadObjectCode, names, strings, modules), max_size=3))
    before = locs + draw(
        st.lists(st.builds(Apply, names, names, st.lists(terms, max_size=2)), max_size=2)
    )
    loadable = [m for loc in locs for m in loc.modules]
    after = draw(st.lists(after_instruction(loadable), max_size=8))
    if locs or draw(st.booleans()):
        items += [*before, PointOfNoReturn(), *after]
    else:
        items += after
    if draw(st.booleans()):
        items.append(RestartEmulator())
    return Script(items)


@SETTINGS
@given(valid_scripts())
def test_valid_scripts_validate_and_round_trip(script: Script) -> None:
    warnings = script.validate()
    assert all(w.rule for w in warnings)
    text = script.to_text()
    again = Script.from_text(text)
    assert again == script
    assert encode(again.to_term()) == encode(script.to_term())
    assert Script.from_term(parse_terms(text)[0]) == script
    assert encode(script.lift_applications().to_term()) == encode(script.to_term())
    str(script)
    script._repr_html_()


VIOLATIONS = [
    # (rule, how to break a valid script)
    (
        "illegal_instruction_after_point_of_no_return",
        lambda s: [*s, PointOfNoReturn(), LoadObjectCode("x", "1", [])],
    ),
    ("too_many_point_of_no_return", lambda s: [PointOfNoReturn(), *s, PointOfNoReturn()]),
    ("no_object_code", lambda s: [*s, PointOfNoReturn(), Load("never_read_module")]),
    ("restart_new_emulator_not_first", lambda s: [Purge([]), *s, RestartNewEmulator()]),
    ("bad_op_before_point_of_no_return", lambda s: [Purge([]), *s, PointOfNoReturn()]),
    (
        "missing_point_of_no_return",
        lambda s: [
            LoadObjectCode("x", "1", []),
            *[i for i in s if not isinstance(i, PointOfNoReturn)],
        ],
    ),
]


@SETTINGS
@given(valid_scripts(), st.sampled_from(range(len(VIOLATIONS))))
def test_invalid_scripts_fail_with_script_error_only(script: Script, which: int) -> None:
    rule, breaker = VIOLATIONS[which]
    broken = Script(breaker(list(script)))
    try:
        broken.validate()
    except ScriptError as exc:
        assert exc.rule is not None and exc.index is not None
        assert any(d.rule == rule for d in broken.errors())
    else:
        raise AssertionError(f"{rule}: validate() accepted {broken.to_text()}")


@SETTINGS
@given(
    st.lists(
        st.one_of(
            after_instruction(["m"]),
            st.just(PointOfNoReturn()),
            st.builds(LoadObjectCode, names, strings, modules),
            st.just(RestartNewEmulator()),
        ),
        max_size=10,
    )
)
def test_any_instruction_sequence_validates_or_raises_script_error(items: list[Any]) -> None:
    script = Script(items)
    try:
        script.validate()
    except ScriptError:
        assert not script.is_valid()
    else:
        assert script.is_valid()


TAGS = [
    Atom(t)
    for t in (
        "load_object_code",
        "point_of_no_return",
        "load",
        "remove",
        "purge",
        "suspend",
        "code_change",
        "resume",
        "stop",
        "start",
        "sync_nodes",
        "apply",
        "restart_emulator",
        "restart_new_emulator",
        "update",
        "load_module",
        "add_module",
        "delete_module",
        "add_application",
        "remove_application",
        "restart_application",
        "up",
        "down",
        "soft_purge",
        "brutal_purge",
        "advanced",
        "soft",
        "supervisor",
        "static",
        "infinity",
    )
]
junk = st.recursive(
    st.one_of(scalars, st.sampled_from(TAGS)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.tuples(st.sampled_from(TAGS), inner),
        st.tuples(st.sampled_from(TAGS), inner, inner),
    ),
    max_leaves=10,
)


@SETTINGS
@given(junk)
def test_junk_terms_raise_script_error_only(term: Any) -> None:
    for parse in (
        instruction_from_term,
        appup_instruction_from_term,
        Script.from_term,
        Relup.from_term,
        Appup.from_term,
        RelupEntry.from_term,
        AppupEntry.from_term,
    ):
        try:
            result = parse(term)
        except ScriptError:
            continue
        # whatever parses writes back to the same term
        assert encode(result.to_term()) == encode(term)


TEXT = st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=40)


def test_term_parser_unicode_digit() -> None:
    # Unicode digits such as "²" once tripped an assert in the term scanner.
    with pytest.raises(ScriptError):
        Script.from_text("²")


@SETTINGS
@given(TEXT)
def test_junk_text_raises_script_error_only(text: str) -> None:
    for parse in (Script.from_text, Relup.from_text, Appup.from_text):
        try:
            result = parse(text)
        except ScriptError:
            continue
        assert type(result).from_text(result.to_text()) == result


@SETTINGS
@given(st.lists(after_instruction(["m"]), max_size=4))
def test_instruction_terms_survive_text(items: list[Any]) -> None:
    for instr in items:
        [term] = parse_terms(format_term(instr.to_term()) + ".")
        assert instruction_from_term(term) == instr
