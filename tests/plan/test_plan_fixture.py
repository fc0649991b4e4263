"""plan_upgrade on the fixture release (tarballs 1.0.0 -> 2.0.0 built by the test run),
the tarball it writes installed up and down on a real 3-node cluster by the driver, the
refusal of an application rebuilt under its old version, the CLI, and the live plan
check reporting a process that does not answer sys calls before anything changes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import tarfile
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio import Node
from erlbridge.cli import main as cli_main
from erlbridge.driver import Driver
from erlbridge.exceptions import PlanError
from erlbridge.plan import ModuleKind, plan_upgrade
from erlbridge.term import Atom, ErlString
from erlbridge.testing.cluster import Cluster
from erlbridge.upgrade import AddModule, Apply, DeleteModule, LoadModule, Update

pytestmark = pytest.mark.integration
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def _node(c: Cluster) -> Node:
    return Node(f"py{secrets.token_hex(3)}@{c.client_host()}", cookie=c.cookie,
                epmd_port=c.epmd_port)


def _plan(tarballs: Path) -> Any:
    return plan_upgrade(tarballs / "fixture-1.0.0.tar.gz", tarballs / "fixture-2.0.0.tar.gz")


def test_plan_fixture_diff_and_appup(erl_fixture_tarballs: Path, tmp_path: Path) -> None:
    plan = _plan(erl_fixture_tarballs)
    assert (plan.name, plan.old_vsn, plan.new_vsn) == ("fixture", "1.0.0", "2.0.0")
    assert dict(plan.diff.added) == {"fixture_extra": "1.0.0"}
    assert {a for a, _ in plan.diff.unchanged} >= {"kernel", "stdlib", "sasl"}
    app = plan.diff.app("fixture")
    assert [m.module for m in app.added] == ["fixture_new"]
    assert [m.module for m in app.removed] == ["fixture_old"]
    kinds = {m.module: (m.kind, m.code_change) for m in app.changed}
    assert kinds["fixture_server"] == (ModuleKind.GEN_SERVER, True)
    assert kinds["fixture_sup"][0] is ModuleKind.SUPERVISOR
    assert kinds["fixture_lib"][0] is ModuleKind.LIBRARY
    assert "fixture_app" not in kinds  # identical code in both builds
    assert plan.generated == {"fixture"}
    up = plan.appups["fixture"].up_from("1.0.0")
    terms = [i.to_term() for i in up]
    assert AddModule("fixture_new").to_term() in terms
    assert DeleteModule("fixture_old").to_term() in terms
    assert Update("fixture_server", ("advanced", [])).to_term() in terms
    sup = terms.index(Update("fixture_sup", supervisor=True).to_term())
    restart = terms.index(Apply("supervisor", "restart_child",
                                [Atom("fixture_sup"), Atom("fixture_new")]).to_term())
    assert sup < restart
    down = [i.to_term() for i in plan.appups["fixture"].down_to("1.0.0")]
    term_ = Apply("supervisor", "terminate_child", [Atom("fixture_sup"), Atom("fixture_new")])
    assert down.index(term_.to_term()) < down.index(
        Update("fixture_sup", supervisor=True).to_term())
    lib = next(i for i in up if isinstance(i, LoadModule) and i.module == "fixture")
    assert lib.dep_mods and "fixture_lib" in lib.dep_mods
    plan.relup.validate()
    assert plan.relup.up_from("1.0.0") and plan.relup.down_to("1.0.0")
    data = json.loads(json.dumps(plan.to_dict()))
    assert data["changed"][0]["appup"] == "generated"
    assert "fixture_server" in plan.to_text() and "<table" in plan._repr_html_()


def test_plan_refuses_same_vsn_other_code(erl_fixture_tarballs: Path, tmp_path: Path) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for d, v in ((old, "1.0.0"), (new, "2.0.0")):
        with tarfile.open(erl_fixture_tarballs / f"fixture-{v}.tar.gz") as t:
            t.extractall(d, filter="data")
    # NEW keeps fixture 1.0.0 but with fixture_lib's 2.0.0 code: never deployed by a relup
    shutil.rmtree(new / "lib" / "fixture-2.0.0")
    shutil.copytree(old / "lib" / "fixture-1.0.0", new / "lib" / "fixture-1.0.0")
    shutil.copy(old / "lib" / "fixture-1.0.0" / "ebin" / "fixture_lib.beam", tmp_path / "x")
    with tarfile.open(erl_fixture_tarballs / "fixture-2.0.0.tar.gz") as t:
        member = t.extractfile("lib/fixture-2.0.0/ebin/fixture_lib.beam")
        assert member is not None
        (new / "lib" / "fixture-1.0.0" / "ebin" / "fixture_lib.beam").write_bytes(member.read())
    rel = new / "releases" / "2.0.0" / "fixture.rel"
    rel.write_text(rel.read_text().replace('{fixture,"2.0.0"}', '{fixture,"1.0.0"}'))
    with pytest.raises(PlanError, match=r"fixture .*fixture_lib.*old version 1\.0\.0"):
        plan_upgrade(old, new)
    # and the CLI says so in one line, exit 1
    assert cli_main(["plan", str(old), str(new)]) == 1


def test_cli_plan_json_and_tarball(erl_fixture_tarballs: Path, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "anything.tar.gz"
    code = cli_main(["plan", str(erl_fixture_tarballs / "fixture-1.0.0.tar.gz"),
                     str(erl_fixture_tarballs / "fixture-2.0.0.tar.gz"), "--json",
                     "--tarball", str(out)])
    assert code == 0
    data = json.loads(capsys.readouterr().out)
    assert [(c["app"], c["from"], c["to"], c["appup"]) for c in data["changed"]] == [
        ("fixture", "1.0.0", "2.0.0", "generated")]
    assert isinstance(data["warnings"], list)
    with tarfile.open(out) as t:
        names = t.getnames()
    assert {"releases/anything.rel", "releases/2.0.0/relup",
            "lib/fixture-2.0.0/ebin/fixture.appup", "releases/2.0.0/start.boot"} <= set(names)


@pytest.mark.erl_backend("local")  # the fixture tarballs of this run: the local OTP's
def test_planned_tarball_upgrades_and_downgrades(erl_cluster: Cluster,
                                                 erl_fixture_tarballs: Path,
                                                 tmp_path: Path) -> None:
    names = erl_cluster.node_names
    plan = _plan(erl_fixture_tarballs)
    tarball = plan.write_tarball(tmp_path / "whatever-name.tar.gz")

    async def main() -> None:
        async with _node(erl_cluster) as node:
            for n in names:
                await node.rpc(n, "fixture", "bump", [], timeout=10)
            drv = Driver(node, names, node_timeout=120 * FACTOR)
            check = await drv.check_plan(plan)
            assert check.ok, str(check)
            assert all(n.runs_old and n.suspend_targets for n in check.nodes)
            up = await drv.upgrade(tarball)
            assert up.ok, str(up)
            for n in names:
                assert await node.rpc(n, "fixture", "vsn", [], timeout=10) == "2.0.0"
                state = await node.rpc(n, "fixture", "state", [], timeout=10)
                assert state["count"] == 1, state  # kept through code_change
                assert await node.rpc(n, "erlang", "whereis", [Atom("fixture_new")],
                                      timeout=10) != "undefined"
                assert await node.rpc(n, "code", "is_loaded", [Atom("fixture_old")],
                                      timeout=10) is False
            down = await drv.downgrade("1.0.0")
            assert down.ok, str(down)
            for n in names:
                assert await node.rpc(n, "fixture", "vsn", [], timeout=10) == "1.0.0"
                state = await node.rpc(n, "fixture", "state", [], timeout=10)
                assert state["count"] == 1 and "tag" not in state, state
                assert await node.rpc(n, "erlang", "whereis", [Atom("fixture_new")],
                                      timeout=10) == "undefined"

    asyncio.run(main())


@pytest.mark.erl_backend("local")
def test_check_plan_reports_a_blocked_process(erl_cluster: Cluster,
                                              erl_fixture_tarballs: Path) -> None:
    names = erl_cluster.node_names
    plan = _plan(erl_fixture_tarballs)
    blocked = names[1]

    async def main() -> None:
        async with _node(erl_cluster) as node:
            # fixture_server busy in a system message for 20 s: it cannot be suspended
            await node.rpc(blocked, "erl_eval", "exprs", [*await _parsed(
                node, blocked, "spawn(fun() -> sys:replace_state(fixture_server,"
                " fun(S) -> timer:sleep(20000), S end, infinity) end).")], timeout=10)
            # names[2]: fixture_lib hot-patched with other code (2.0.0's beam)
            with tarfile.open(erl_fixture_tarballs / "fixture-2.0.0.tar.gz") as t:
                member = t.extractfile("lib/fixture-2.0.0/ebin/fixture_lib.beam")
                assert member is not None
                patched = member.read()
            loaded = await node.rpc(names[2], "code", "load_binary",
                                    [Atom("fixture_lib"), ErlString("patched"), patched],
                                    timeout=10)
            assert loaded[0] == "module", loaded
            await asyncio.sleep(0.5)
            before = [await node.rpc(n, "release_handler", "which_releases", [], timeout=10)
                      for n in names]
            drv = Driver(node, names, node_timeout=60 * FACTOR)
            report = await drv.check_plan(plan, suspend_timeout=2.0)
            assert not report.ok
            bad = report[blocked]
            assert not bad.ok
            codes = [f.code for f in bad.findings]
            assert "no_sys_reply" in codes, str(report)
            silent = [t for t in bad.suspend_targets if not t.answered]
            assert [t.id for t in silent] == ["fixture_server"], silent
            assert report[names[0]].ok and report[names[0]].findings == (), str(report)
            drift = [f for f in report[names[2]].findings if f.code == "module_drift"]
            assert [f.module for f in drift] == ["fixture_lib"] and not drift[0].blocker
            assert report[names[2]].ok, str(report)  # a warning, not a blocker
            assert re.search(r"1 silent", report.to_table())
            assert json.loads(report.to_json())["ok"] is False
            after = [await node.rpc(n, "release_handler", "which_releases", [], timeout=10)
                     for n in names]
            assert before == after  # nothing changed

    asyncio.run(main())


async def _parsed(node: Node, target: str, text: str) -> list[Any]:
    ok, toks, _ = await node.rpc(target, "erl_scan", "string", [ErlString(text)], timeout=10)
    ok2, exprs = await node.rpc(target, "erl_parse", "parse_exprs", [toks], timeout=10)
    assert ok == "ok" and ok2 == "ok"
    return [exprs, []]

