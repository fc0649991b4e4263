"""release_handler operations (rpc calls, reply parsing, typed errors) and outcome models.

Reply texts are the shapes observed on live nodes
(docs/internals/otp-facts.md#release-operations) written as Erlang text.
"""

from __future__ import annotations

from typing import Any

import pytest

from erlbridge.exceptions import (
    AlreadyInstalled,
    ExistingRelease,
    NoMatchingRelup,
    NoSuchRelease,
    OldProcesses,
    ReleaseHandlerError,
    ScriptError,
)
from erlbridge.term import Atom, ErlString, encode, format_term, parse_term
from erlbridge.upgrade import (
    CheckInstallRelease,
    CheckScript,
    DowngradeScript,
    ErrorAction,
    EvalOutcome,
    EvalScript,
    InstallOutcome,
    InstallRelease,
    LibDir,
    LoadObjectCode,
    MakePermanent,
    Phase,
    PointOfNoReturn,
    PurgeMethod,
    RebootOldRelease,
    ReleaseStatus,
    RemoveRelease,
    RestartEmulator,
    RpcCall,
    Script,
    SetUnpacked,
    UnpackRelease,
    UpgradeScript,
    WhichReleases,
    reason_kind,
    release_error,
)

T = parse_term


def call(op: Any) -> str:
    """The rpc call as Erlang text ``m:f(args)`` (args as a list)."""
    m, f, a = op.rpc
    return f"{m}:{f}({format_term(a, width=10_000)})"


def test_rpc_calls_are_exact() -> None:
    assert call(WhichReleases()) == "release_handler:which_releases([])"
    assert call(WhichReleases(ReleaseStatus.PERMANENT)) == (
        "release_handler:which_releases([permanent])"
    )
    assert call(UnpackRelease("demo-2")) == 'release_handler:unpack_release(["demo-2"])'
    assert call(CheckInstallRelease("2")) == 'release_handler:check_install_release(["2"])'
    assert call(CheckInstallRelease("2", purge=True)) == (
        'release_handler:check_install_release(["2",[purge]])'
    )
    assert call(InstallRelease("2")) == 'release_handler:install_release(["2"])'
    op = InstallRelease(
        "2",
        error_action="reboot",
        code_change_timeout=1000,
        suspend_timeout="infinity",
        update_paths=True,
    )
    assert call(op) == (
        'release_handler:install_release(["2",[{error_action,reboot},'
        "{code_change_timeout,1000},{suspend_timeout,infinity},{update_paths,true}]])"
    )
    assert InstallRelease("2", error_action=ErrorAction.RESTART).options() == [
        (Atom("error_action"), Atom("restart"))
    ]
    assert call(MakePermanent("2")) == 'release_handler:make_permanent(["2"])'
    assert call(RemoveRelease("1")) == 'release_handler:remove_release(["1"])'
    assert call(RebootOldRelease("1")) == 'release_handler:reboot_old_release(["1"])'
    assert call(SetUnpacked("/r/demo-3.rel", [("demo", "3", "/tmp/lib")])) == (
        'release_handler:set_unpacked(["/r/demo-3.rel",[{demo,"3","/tmp/lib"}]])'
    )
    rpc = MakePermanent("2").rpc
    assert isinstance(rpc, RpcCall) and isinstance(rpc, tuple)
    assert (
        type(rpc.module) is Atom and type(rpc.function) is Atom and type(rpc.args[0]) is ErlString
    )


def test_direct_mode_calls() -> None:
    script = Script([LoadObjectCode("demo", "2", ["m"]), PointOfNoReturn()])
    libs = [LibDir("demo", "2", "/x/lib/demo-2"), ("kernel", "8.5.3", "/x/lib/kernel-8.5.3")]
    assert call(CheckScript(script, libs)) == (
        'release_handler_1:check_script([[{load_object_code,{demo,"2",[m]}},point_of_no_return],'
        '[{demo,"2","/x/lib/demo-2"},{kernel,"8.5.3","/x/lib/kernel-8.5.3"}]])'
    )
    op = EvalScript(
        script,
        lib_dirs=libs,
        new_libs=libs[:1],
        update_paths=False,
        suspend_timeout=100,
        code_change_timeout="infinity",
    )
    assert call(op) == (
        'release_handler_1:eval_script([[{load_object_code,{demo,"2",[m]}},point_of_no_return],'
        '[],[{demo,"2","/x/lib/demo-2"},{kernel,"8.5.3","/x/lib/kernel-8.5.3"}],'
        '[{demo,"2","/x/lib/demo-2"}],'
        "[{update_paths,false},{suspend_timeout,100},{code_change_timeout,infinity}]])"
    )
    assert call(EvalScript(script)).endswith(",[],[],[],[]])")


@pytest.mark.parametrize(
    "make",
    [
        lambda: InstallRelease("2", error_action="explode"),
        lambda: InstallRelease("2", code_change_timeout=0),
        lambda: InstallRelease("2", suspend_timeout="default"),
        lambda: InstallRelease("2", update_paths="yes"),
        lambda: InstallRelease(Atom("2")),
        lambda: UnpackRelease(b"demo"),
        lambda: SetUnpacked("r", ["demo"]),
        lambda: SetUnpacked("r", [(1, "3", "/d")]),
        lambda: EvalScript(Script(), suspend_timeout=-1),
    ],
)
def test_option_validation(make: Any) -> None:
    with pytest.raises(ScriptError):
        make()


def test_which_releases() -> None:
    reply = T(
        '[{"demo","2",["kernel-8.5.3","stdlib-4.2","sasl-4.2","demo-2"],unpacked},'
        '{"demo","1",["kernel-8.5.3","demo-1"],permanent}]'
    )
    infos = WhichReleases().parse_reply(reply)
    assert [(i.name, i.version, i.status) for i in infos] == [
        ("demo", "2", ReleaseStatus.UNPACKED),
        ("demo", "1", ReleaseStatus.PERMANENT),
    ]
    assert infos[0].libs[-1] == ErlString("demo-2")
    assert WhichReleases().parse_reply([]) == ()
    for bad in ("ok", "[{a}]", '[{"d","1",[],weird}]', '[{"d","1",x,old}]', '[{"d",1,[],old}]'):
        with pytest.raises(ReleaseHandlerError) as info:
            WhichReleases().parse_reply(T(bad))
        assert info.value.kind == "unexpected_reply"


def test_unpack_and_set_unpacked() -> None:
    assert UnpackRelease("demo-2").parse_reply(T('{ok,"2"}')) == ErlString("2")
    with pytest.raises(ExistingRelease) as info:
        UnpackRelease("demo-2").parse_reply(T('{error,{existing_release,"2"}}'))
    assert info.value.version == "2" and info.value.function == "unpack_release"
    with pytest.raises(ReleaseHandlerError) as info2:
        UnpackRelease("demo-2").parse_reply(T('{error,{no_such_file,"/r/releases/demo-2.tar.gz"}}'))
    assert info2.value.kind == "no_such_file" and type(info2.value) is ReleaseHandlerError
    assert SetUnpacked("r.rel").parse_reply(T('{ok,"3"}')) == "3"
    for bad in ("{ok, 3}", "ok", "{ok}"):
        with pytest.raises(ReleaseHandlerError) as info3:
            SetUnpacked("r.rel").parse_reply(T(bad))
        assert info3.value.kind == "unexpected_reply"


def test_check_install_release() -> None:
    res = CheckInstallRelease("2").parse_reply(T('{ok,"1","post-PONR failure test"}'))
    assert res.other_version == "1" and res.description == "post-PONR failure test"
    with pytest.raises(NoSuchRelease) as info:
        CheckInstallRelease("9").parse_reply(T('{error,{no_such_release,"9"}}'))
    assert info.value.version == "9"
    with pytest.raises(AlreadyInstalled):
        CheckInstallRelease("1").parse_reply(T('{error,{already_installed,"1"}}'))
    with pytest.raises(OldProcesses) as info2:
        CheckInstallRelease("2").parse_reply(T("{error,{old_processes,fixture_holder}}"))
    assert info2.value.module == "fixture_holder" and info2.value.kind == "old_processes"
    with pytest.raises(ReleaseHandlerError) as info3:
        CheckInstallRelease("2").parse_reply(T("{ok, 1, []}"))
    assert info3.value.kind == "unexpected_reply"


def test_install_release() -> None:
    op = InstallRelease("2")
    res = op.parse_reply(T('{ok,"1",[]}'))
    assert res.other_version == "1" and not res.continue_after_restart
    res = op.parse_reply(T('{continue_after_restart,"1",[]}'))
    assert res.continue_after_restart
    with pytest.raises(NoMatchingRelup) as info:
        op.parse_reply(T('{error,{no_matching_relup,"2","1"}}'))
    assert (info.value.to_version, info.value.current_version) == ("2", "1")
    with pytest.raises(ReleaseHandlerError) as info2:
        op.parse_reply(T("{error,{code_change_failed,x,demo_srv,\"2\",{'EXIT',boom}}}"))
    assert info2.value.kind == "code_change_failed"
    with pytest.raises(ReleaseHandlerError) as info3:
        op.parse_reply(T("{error,{no_matching_relup,x}}"))  # wrong arity: not the typed one
    assert type(info3.value) is ReleaseHandlerError and info3.value.kind == "no_matching_relup"
    for weird in ("weird", "{ok, 1, []}", '{other, "1", []}'):
        with pytest.raises(ReleaseHandlerError) as info4:
            op.parse_reply(T(weird))
        assert info4.value.kind == "unexpected_reply"


def test_unit_operations() -> None:
    for cls in (MakePermanent, RemoveRelease, RebootOldRelease):
        assert cls("2").parse_reply(Atom("ok")) is None
        with pytest.raises(ReleaseHandlerError) as info:
            cls("2").parse_reply(T("{error,{bad_status,current}}"))
        assert info.value.kind == "bad_status" and info.value.function == cls.function
        with pytest.raises(ReleaseHandlerError) as info:
            cls("2").parse_reply(T("{ok, x}"))
        assert info.value.kind == "unexpected_reply"
    with pytest.raises(ReleaseHandlerError) as info2:
        RemoveRelease("2").parse_reply(T("{error,client_node}"))
    assert info2.value.kind == "client_node"


def test_release_error_kinds() -> None:
    assert release_error("f", T("{error_x, 1}")).kind == "error_x"
    assert release_error("f", 42).kind == "error"
    assert release_error("f", T('"text"')).kind == "error"
    assert reason_kind(T("{'EXIT', x}")) == "EXIT"
    assert reason_kind(T("[]")) is None


def test_check_script_reply() -> None:
    op = CheckScript(Script(), [])
    assert op.parse_reply(T("{ok,[m1,m2]}")) == ("m1", "m2")
    with pytest.raises(OldProcesses):
        op.parse_reply(T("{error,{old_processes,m}}"))
    for bad in ("{ok,[1]}", "{ok,x}", "ok"):
        with pytest.raises(ReleaseHandlerError):
            op.parse_reply(T(bad))


# -- eval_script outcome ------------------------------------------------------------------


def test_eval_outcome_success() -> None:
    out = EvalOutcome.from_reply(T("{ok,[{m,soft_purge},{n,brutal_purge}]}"))
    assert out.ok and not out.failed and out.phase is None
    assert out.unpurged == (("m", PurgeMethod.SOFT_PURGE), ("n", PurgeMethod.BRUTAL_PURGE))
    assert EvalOutcome.from_reply(T("{ok,[]}")).unpurged == ()
    out = EvalOutcome.from_reply(Atom("restart_emulator"))
    assert out.ok and out.restart_emulator


def test_eval_outcome_failures_know_their_phase() -> None:
    out = EvalOutcome.from_reply(T('{error,{no_such_file,"/x/m.beam"}}'))
    assert out.failed and out.phase is Phase.BEFORE_POINT_OF_NO_RETURN
    assert out.kind == "no_such_file"
    out = EvalOutcome.from_reply(T("{error,{old_processes,m}}"))
    assert out.phase is Phase.BEFORE_POINT_OF_NO_RETURN and out.kind == "old_processes"
    out = EvalOutcome.from_reply(T("{'EXIT',{code_change_failed,p,m,\"1\",r}}"))
    assert out.phase is Phase.AFTER_POINT_OF_NO_RETURN and out.kind == "code_change_failed"
    out = EvalOutcome.from_reply(T("{'EXIT',{sync_error,{nodedown,a@b}}}"))
    assert out.phase is Phase.AFTER_POINT_OF_NO_RETURN and out.kind == "sync_error"
    assert EvalOutcome.from_reply(True).kind == "unexpected_reply"
    assert EvalOutcome.from_reply(("ok", [])).kind == "unexpected_reply"  # "ok" is a binary
    for weird in ("ok", "{ok,[x]}", "{ok,[{m,hard}]}", "{ok,[{m,1}]}", "{ok,x}", "{what,x}", "[]"):
        out = EvalOutcome.from_reply(T(weird))
        assert out.failed and out.phase is Phase.UNKNOWN and out.kind == "unexpected_reply"


def test_eval_script_operation() -> None:
    op = EvalScript(Script())
    assert op.outcome(T("{ok,[]}")).ok
    assert op.parse_reply(T("restart_emulator")).restart_emulator
    with pytest.raises(OldProcesses):
        op.parse_reply(T("{error,{old_processes,m}}"))
    with pytest.raises(ReleaseHandlerError) as info:
        op.parse_reply(T("{'EXIT',{sync_error,x}}"))
    assert info.value.kind == "sync_error"


# -- install_release outcome ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "phase", "restarts"),
    [
        ('{error,{no_such_release,"9"}}', Phase.BEFORE_POINT_OF_NO_RETURN, False),
        ('{error,{no_such_file,"/x.beam"}}', Phase.BEFORE_POINT_OF_NO_RETURN, False),
        ("{error,{old_processes,m}}", Phase.BEFORE_POINT_OF_NO_RETURN, False),
        (
            "{error,{illegal_instruction_after_point_of_no_return,{bogus_instruction,x}}}",
            Phase.BEFORE_POINT_OF_NO_RETURN,
            False,
        ),
        ("{error,{change_appl_data,r}}", Phase.BEFORE_POINT_OF_NO_RETURN, True),
        ('{error,{code_change_failed,p,demo_srv,"2",r}}', Phase.AFTER_POINT_OF_NO_RETURN, True),
        ("{error,{sync_error,{nodedown,a@b}}}", Phase.AFTER_POINT_OF_NO_RETURN, True),
        ("{error,{'EXIT',{badarg,[]}}}", Phase.UNKNOWN, None),
        ("{error,strange}", Phase.UNKNOWN, None),
        ("what", Phase.UNKNOWN, None),
        ('{ok,1,""}', Phase.UNKNOWN, None),
    ],
)
def test_install_outcome_failures(reply: str, phase: Phase, restarts: bool | None) -> None:
    out = InstallRelease("2").outcome(T(reply))
    assert not out.ok and out.phase is phase and out.node_restarts is restarts


def test_install_outcome_success() -> None:
    out = InstallOutcome.from_reply(T('{ok,"1",[]}'))
    assert out.ok and out.other_version == "1" and out.node_restarts is False
    assert encode(out.description) == encode([])
    out = InstallOutcome.from_reply(T('{continue_after_restart,"1","d"}'))
    assert out.ok and out.continue_after_restart and out.node_restarts is True
    out = InstallOutcome.from_reply(T('{weird,"1",[]}'))
    assert not out.ok and out.kind == "unexpected_reply"


def test_upgrade_and_downgrade_script_operations() -> None:
    up = UpgradeScript("demo", "/r/lib/demo-2")
    assert call(up) == 'release_handler:upgrade_script([demo,"/r/lib/demo-2"])'
    version, script = up.parse_reply(T('{ok,"2",[point_of_no_return,{purge,[m]}]}'))
    assert version == "2" and len(script) == 2
    with pytest.raises(ReleaseHandlerError) as info:
        up.parse_reply(T("{app_not_running,demo}"))
    assert info.value.kind == "app_not_running"
    with pytest.raises(ReleaseHandlerError) as info:
        up.parse_reply(T("{error,{bad_appup,x}}"))
    assert info.value.kind == "bad_appup"
    with pytest.raises(ReleaseHandlerError):
        up.parse_reply(T("{ok,2,[]}"))
    with pytest.raises(ScriptError):
        up.parse_reply(T('{ok,"2",[{new_instruction_from_otp_99}]}'))
    down = DowngradeScript("demo", "1", "/r/lib/demo-1")
    assert call(down) == 'release_handler:downgrade_script([demo,"1","/r/lib/demo-1"])'
    assert down.parse_reply(T("{ok,[restart_emulator]}")) == Script([RestartEmulator()])
    with pytest.raises(ReleaseHandlerError) as info:
        down.parse_reply(T("no_appup_found"))
    assert info.value.kind == "no_appup_found"
