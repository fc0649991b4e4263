"""Integration with a real ``erl`` (OTP on this machine): what file:consult reads from
our text is exactly our term; real appups (OTP's own) and relups (made here by
systools:make_relup, plus the fixtures' when built) round-trip byte-for-byte through
file:consult; our validation agrees with release_handler_1:check_script/2."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from erlbridge.exceptions import ReleaseHandlerError, ScriptError
from erlbridge.term import Atom, ErlString, decode, encode, format_term
from erlbridge.upgrade import (
    Apply,
    Appup,
    EvalScript,
    Load,
    LoadObjectCode,
    Phase,
    PointOfNoReturn,
    Purge,
    Relup,
    Remove,
    RestartEmulator,
    RestartNewEmulator,
    Script,
    Update,
    UpgradeScript,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
OTP_LIB = Path("/usr/lib/erlang/lib")
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def write_terms(path: Path, terms: list[Any]) -> Path:
    path.write_text("".join(format_term(t) + ".\n" for t in terms), encoding="utf-8")
    return path


def test_every_instruction_term_is_what_erl_consults(
    tmp_path: Path, samples: dict[str, list[Any]], consult: Any
) -> None:
    low = [i.to_term() for i in samples["low"]]
    apps = [t for i in samples["app"] for t in i.to_terms()]
    high = [i.to_term() for i in samples["high"]]
    script = Script(samples["low"][3:] + samples["app"])  # any order: consult does not care
    files = [
        write_terms(tmp_path / "low.txt", low),
        write_terms(tmp_path / "apps.txt", apps),
        write_terms(tmp_path / "high.txt", high),
    ]
    script_file = tmp_path / "script.txt"
    script_file.write_text(script.to_text(), encoding="utf-8")
    files.append(script_file)
    got = consult(files)
    assert got[0] == encode(low)
    assert got[1] == encode(apps)
    assert got[2] == encode(high)
    assert got[3] == encode([script.to_term()])


def otp_appups() -> list[Path]:
    return sorted(OTP_LIB.glob("*/ebin/*.appup"))


def fixture_files(*names: str) -> list[Path]:
    """Files the fixtures build left (scripts/build-fixtures.sh writes _build/fixtures/relup-V)."""
    found: set[Path] = set()
    for base in (REPO / "erlang_fixtures", REPO / "_build"):
        if base.is_dir():
            for name in names:
                found |= {p for p in base.rglob(name) if p.is_file()}
    return sorted(found)


def test_otp_appups_round_trip_byte_for_byte(tmp_path: Path, consult: Any) -> None:
    originals = otp_appups() + fixture_files("*.appup")
    if not originals:
        pytest.skip("no appup files on this machine")
    ours = []
    expected = []
    for i, path in enumerate(originals):
        appup = Appup.from_text(path.read_text(encoding="utf-8"))
        out = tmp_path / f"{i}.appup"
        out.write_text(appup.to_text(), encoding="utf-8")
        ours.append(out)
        expected.append(encode([appup.to_term()]))
    got = consult(originals + ours)
    n = len(originals)
    for i, path in enumerate(originals):
        assert got[i] == expected[i], f"our parse of {path} differs from erl's"
        assert got[n + i] == got[i], f"our rewrite of {path} differs"
    assert len(originals) >= 30  # OTP 25 ships 36 appups: the corpus was really read


GEN_ESCRIPT = r"""#!/usr/bin/env escript
%%! -noshell
main([Dir]) ->
    ok = file:set_cwd(Dir),
    Vsn = fun(App) -> application:load(App), {ok, V} = application:get_key(App, vsn), V end,
    Erts = erlang:system_info(version),
    K = Vsn(kernel), S = Vsn(stdlib), Sa = Vsn(sasl),
    Mods1 = [demo_app, demo_sup, demo_srv, demo_old],
    Mods2 = [demo_app, demo_sup, demo_srv, demo_new, demo_lib],
    App = fun(V, Mods) ->
        {application, demo, [{description, "demo"}, {vsn, V}, {modules, Mods}, {registered, []},
                             {applications, [kernel, stdlib]}, {mod, {demo_app, []}}]} end,
    mk_app("lib/demo-1/ebin", App("1", Mods1), Mods1),
    mk_app("lib/demo-2/ebin", App("2", Mods2), Mods2),
    mk_app("lib/extra-1/ebin", {application, extra, [{description, "extra"}, {vsn, "1"},
        {modules, [extra_mod]}, {registered, []}, {applications, [kernel, stdlib]}]},
        [extra_mod]),
    Appup = {"2",
      [{"1", [{add_module, demo_new},
              {load_module, demo_lib},
              {update, demo_srv, {advanced, {up, 1}}, [demo_new]},
              {update, demo_sup, supervisor},
              {apply, {io, format, ["upgrading ~p~n", [demo]]}},
              {sync_nodes, demo_sync, ['a@127.0.0.1']},
              {delete_module, demo_old}]}],
      [{"1", [{add_module, demo_old},
              {update, demo_srv, {advanced, down_extra}},
              {update, demo_sup, supervisor},
              {delete_module, demo_lib},
              {delete_module, demo_new}]}]},
    ok = file:write_file("lib/demo-2/ebin/demo.appup", io_lib:format("~p.~n", [Appup])),
    Rel = fun(V, Apps) -> {release, {"demo", V}, {erts, Erts},
                          [{kernel, K}, {stdlib, S}, {sasl, Sa} | Apps]} end,
    ok = file:write_file("demo-1.rel", io_lib:format("~p.~n", [Rel("1", [{demo, "1"}])])),
    ok = file:write_file("demo-2.rel",
                         io_lib:format("~p.~n", [Rel("2", [{demo, "2"}, {extra, "1"}])])),
    Path = ["lib/*/ebin"],
    ok = file:make_dir("plain"), ok = file:make_dir("restart"),
    {ok, _, _, _} = systools:make_relup("demo-2", ["demo-1"], ["demo-1"],
                                        [{path, Path}, {outdir, "plain"}, silent]),
    {ok, _, _, _} = systools:make_relup("demo-2", ["demo-1"], ["demo-1"],
                                        [{path, Path}, {outdir, "restart"}, restart_emulator,
                                         silent]),
    io:format("ok~n").

mk_app(Ebin, AppSpec, Mods) ->
    ok = filelib:ensure_dir(Ebin ++ "/x"),
    ok = file:write_file(Ebin ++ "/" ++ atom_to_list(element(2, AppSpec)) ++ ".app",
                         io_lib:format("~p.~n", [AppSpec])),
    lists:foreach(fun(M) ->
        Forms = [{attribute, 1, module, M}, {attribute, 1, export, [{f, 0}]},
                 {function, 1, f, 0, [{clause, 1, [], [], [{atom, 1, M}]}]}],
        {ok, M, Bin} = compile:forms(Forms, []),
        ok = file:write_file(Ebin ++ "/" ++ atom_to_list(M) ++ ".beam", Bin)
    end, Mods).
"""


@pytest.fixture(scope="module")
def systools_relups(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Two relups made by the local OTP's systools:make_relup (plain and restart_emulator)."""
    root = tmp_path_factory.mktemp("relup")
    script = root / "gen.escript"
    script.write_text(GEN_ESCRIPT, encoding="utf-8")
    proc = subprocess.run(
        ["escript", str(script), str(root)],
        capture_output=True,
        text=True,
        timeout=120 * FACTOR,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [root / "plain" / "relup", root / "restart" / "relup"]


def test_systools_relups_parse_validate_and_round_trip(
    systools_relups: list[Path], tmp_path: Path, consult: Any
) -> None:
    originals = systools_relups + fixture_files("relup", "relup-*")
    ours = []
    relups = []
    for i, path in enumerate(originals):
        relup = Relup.from_text(path.read_text(encoding="utf-8"))
        relups.append(relup)
        out = tmp_path / f"relup{i}"
        out.write_text(relup.to_text(), encoding="utf-8")
        ours.append(out)
        for entry in relup.up + relup.down:
            entry.script.validate()  # systools output obeys OTP's rules
    got = consult(originals + ours)
    n = len(originals)
    for i, path in enumerate(originals):
        assert got[i] == encode([relups[i].to_term()]), f"our parse of {path} differs"
        assert got[n + i] == got[i], f"our rewrite of {path} differs"
    plain, restart = relups[0], relups[1]
    up = plain.up_from("1")
    kinds = {type(i).__name__ for i in up}
    # systools translated every appup feature we used, and add_application of extra
    assert {"LoadObjectCode", "PointOfNoReturn", "Suspend", "Load", "CodeChange", "Resume"} <= kinds
    assert {"SyncNodes", "Apply", "Remove", "Purge"} <= kinds
    assert any(str(i) == "{apply,{application,start,[extra,permanent]}}" for i in up), str(up)
    assert isinstance(restart.up_from("1")[-1], RestartEmulator)
    assert isinstance(plain.down_to("1"), Script)


# Scripts without load_object_code (those need real lib dirs) judged by both sides.
CHECK_CASES = [
    ([PointOfNoReturn(), Purge([])], None),
    ([PointOfNoReturn(), Purge([]), RestartEmulator()], None),
    ([PointOfNoReturn(), RestartNewEmulator()], "restart_new_emulator_not_first"),
    (
        [PointOfNoReturn(), Purge([]), LoadObjectCode("kernel", "1", [])],
        "illegal_instruction_after_point_of_no_return",
    ),
    ([Purge([]), LoadObjectCode("kernel", "1", [])], "missing_point_of_no_return"),
]


def test_validation_agrees_with_release_handler_1(erl: Any) -> None:
    """release_handler_1:check_script/2 on the local node rejects what we call an
    after-PONR violation and accepts what we accept (the PONR-syntax part of the rules)."""
    scripts = [format_term(Script(items).to_term(), width=10_000) for items, _ in CHECK_CASES]
    code = (
        "lists:foreach(fun(S) -> R = release_handler_1:check_script(S, []), "
        'io:format("~w~n", [element(1, R) =:= ok]) end, [' + ",".join(scripts) + "]), halt()."
    )
    verdicts = erl(code).split()
    assert len(verdicts) == len(CHECK_CASES)
    for (items, rule), verdict in zip(CHECK_CASES, verdicts, strict=True):
        script = Script(items)
        ours = [d.rule for d in script.errors()]
        assert (verdict == "true") == (rule is None), (items, verdict)
        if rule is None:
            assert ours == []
        else:
            assert rule in ours
            with pytest.raises(ScriptError):
                script.validate()


def test_update_forms_accepted_by_systools_rc(erl: Any) -> None:
    """Every Update form we write passes systools_rc's own syntax check (expand_script +
    check_op); a malformed control form is rejected by the same call."""
    forms = [
        Update("m"),
        Update("m", supervisor=True),
        Update("m", Atom("soft")),
        Update("m", ("advanced", 1), dep_mods=["a"]),
        Update(
            "m", "soft", dep_mods=[], pre_purge="soft_purge", post_purge="soft_purge", timeout=9
        ),
        Update(
            "m",
            "soft",
            dep_mods=[],
            pre_purge="brutal_purge",
            post_purge="soft_purge",
            timeout="infinity",
            mod_type="static",
        ),
    ]
    texts = [format_term(u.to_term(), width=10_000) for u in forms] + ["{update,m,hard}"]
    # With no applications given, a well-formed script fails *after* the syntax check
    # (no_object_code/undef_module ...); a malformed one fails with bad_instruction.
    code = (
        "lists:foreach(fun(I) -> R = systools_rc:translate_scripts(up, [[I]], [], []), "
        'io:format("~w~n", [element(3, R)]) end, [' + ",".join(texts) + "]), halt()."
    )
    results = erl(code).split()
    assert len(results) == len(texts)
    assert all("bad_instruction" not in r for r in results[:-1]), results
    assert "bad_instruction" in results[-1]


APPUP_SESSION = r"""
Root = "@ROOT@",
Mk = fun(Vsn, Mods) ->
    Ebin = Root ++ "/demo-" ++ Vsn ++ "/ebin",
    ok = filelib:ensure_dir(Ebin ++ "/x"),
    App = {application, demo, [{description, "demo"}, {vsn, Vsn}, {modules, Mods},
                               {registered, []}, {applications, [kernel, stdlib]}]},
    ok = file:write_file(Ebin ++ "/demo.app", io_lib:format("~p.~n", [App])),
    lists:foreach(fun(M) ->
        Forms = [{attribute, 1, module, M}, {attribute, 1, vsn, Vsn},
                 {attribute, 1, export, [{f, 0}]},
                 {function, 1, f, 0, [{clause, 1, [], [], [{atom, 1, M}]}]}],
        {ok, M, Bin} = compile:forms(Forms, []),
        ok = file:write_file(Ebin ++ "/" ++ atom_to_list(M) ++ ".beam", Bin)
    end, Mods),
    Ebin
end,
Ebin1 = Mk("1", [demo_a, demo_b]),
Ebin2 = Mk("2", [demo_a, demo_c]),
Appup = {"2", [{"1", [{load_module, demo_a}, {add_module, demo_c}, {delete_module, demo_b},
                      {apply, {io, format, ["up~n"]}}]}],
              [{"1", [{load_module, demo_a}, {add_module, demo_b}, {delete_module, demo_c}]}]},
ok = file:write_file(Ebin2 ++ "/demo.appup", io_lib:format("~p.~n", [Appup])),
true = code:add_patha(Ebin1),
ok = application:start(demo),
Run = fun(F) -> try F() catch throw:T -> T end end,
Calls = [@CALLS@],
Out = [Run(fun() -> apply(M, F, A) end) || {M, F, A} <- Calls],
Vsn = demo_a:module_info(attributes),
lists:foreach(fun(T) -> io:format("~s~n", [binary:encode_hex(term_to_binary(T))]) end,
              Out ++ [proplists:get_value(vsn, Vsn)]),
halt().
"""


def test_operations_against_a_real_node(erl: Any, tmp_path: Path) -> None:
    """UpgradeScript and EvalScript calls run through apply/3 on a real node; the replies
    parse into a validated script and into outcomes with the right phase."""
    dir2 = str(tmp_path / "demo-2")
    lib2 = [("demo", "2", dir2)]
    up = UpgradeScript("demo", dir2)
    ours = Script(
        [
            LoadObjectCode("demo", "2", ["demo_a", "demo_c"]),
            PointOfNoReturn(),
            Load("demo_a"),
            Load("demo_c"),
            Remove("demo_b"),
            Purge(["demo_b"]),
        ]
    )
    ops: list[Any] = [
        up,
        EvalScript(ours, lib_dirs=lib2, new_libs=lib2),
        EvalScript(
            Script([LoadObjectCode("demo", "2", ["no_such_mod"]), PointOfNoReturn()]), lib_dirs=lib2
        ),
        EvalScript(Script([PointOfNoReturn(), Apply("erlang", "error", [Atom("boom")])])),
        UpgradeScript("not_running_app", str(tmp_path)),
    ]
    calls = ",".join(format_term(tuple(op.rpc), width=10_000) for op in ops)
    session = APPUP_SESSION.replace("@ROOT@", str(tmp_path)).replace("@CALLS@", calls)
    replies = [decode(bytes.fromhex(h)) for h in erl(session).split()]
    version, script = up.parse_reply(replies[0])
    assert version == "2"
    script.validate()
    assert script.to_term()[:6] == ours.to_term()  # systools_rc made what we wrote by hand
    assert str(script[-1]) == '{apply,{io,format,["up~n"]}}'
    ok = ops[1].parse_reply(replies[1])
    assert ok.ok and ok.unpurged == ()
    assert replies[5] == ErlString("2")  # the node really runs demo_a 2 now
    before = ops[2].outcome(replies[2])
    assert before.phase is Phase.BEFORE_POINT_OF_NO_RETURN and before.kind == "no_such_file"
    after = ops[3].outcome(replies[3])
    assert after.phase is Phase.AFTER_POINT_OF_NO_RETURN and after.kind == "EXIT"
    with pytest.raises(ReleaseHandlerError) as info:
        ops[4].parse_reply(replies[4])
    assert info.value.kind == "app_not_running" and info.value.function == "upgrade_script"
