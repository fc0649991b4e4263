"""plan_upgrade on releases rebar3 builds here (tests/plan/shop.py): dev and prod
(no debug_info) builds, a shipped appup kept, a recompile without change, an application
rebuilt under its old version refused, --appup and write(); then the planned tarball
installed up and down on real nodes after the live check caught a blocked process."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio import Node
from erlbridge.driver import Driver
from erlbridge.exceptions import PlanError
from erlbridge.plan import ModuleKind, UpgradePlan, plan_upgrade
from erlbridge.term import Atom
from erlbridge.testing.cluster import LocalCluster
from erlbridge.upgrade import Appup

sys.path.insert(0, str(Path(__file__).parent))
import shop_project as shop

pytestmark = pytest.mark.skipif(shutil.which("rebar3") is None, reason="needs rebar3")
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("shop")
    return {
        "old": shop.build(root / "old", "1.0.0", tar=True),
        # built in another directory: ?FILE differs, the code does not
        "new": shop.build(root / "checkout-two" / "new", "2.0.0"),
    }


def _terms(appup: Appup, direction: str) -> list[Any]:
    steps = appup.up_from("1.0.0") if direction == "up" else appup.down_to("1.0.0")
    return [i.to_term() for i in steps]


def _sup(fn: str, child: str) -> Any:
    return (Atom("apply"), (Atom("supervisor"), Atom(fn), [Atom("shop_sup"), Atom(child)]))


def _check_shop_plan(plan: UpgradePlan) -> None:
    assert (plan.old_vsn, plan.new_vsn) == ("1.0.0", "2.0.0")
    assert {a for a, _ in plan.diff.unchanged} >= {"shoplib"}
    assert [a.app for a in plan.diff.changed] == ["shopx", "shop"] or {
        a.app for a in plan.diff.changed} == {"shopx", "shop"}
    assert plan.generated == {"shop"} and plan.shipped == {"shopx"}
    app = plan.diff.app("shop")
    assert {m.module for m in app.added} == {"shop_new", "shop_fresh"}
    assert {m.module for m in app.removed} == {"shop_old", "shop_gone"}
    kinds = {m.module: (m.kind, m.code_change) for m in app.changed}
    assert kinds == {
        "shop_srv": (ModuleKind.GEN_SERVER, True),
        "shop_fsm": (ModuleKind.GEN_STATEM, False),
        "shop_sup": (ModuleKind.SUPERVISOR, False),
        "shop_util": (ModuleKind.LIBRARY, False),
    }
    assert app.path_only == ("shop_same",)
    up, down = _terms(plan.appups["shop"], "up"), _terms(plan.appups["shop"], "down")
    srv = (Atom("update"), Atom("shop_srv"), (Atom("advanced"), []), [Atom("shop_util")])
    sup = (Atom("update"), Atom("shop_sup"), Atom("supervisor"))
    assert srv in up and srv in down
    assert up.index(_sup("terminate_child", "shop_old")) < up.index(
        _sup("delete_child", "shop_old")) < up.index(sup) < up.index(
        _sup("restart_child", "shop_new"))
    assert (Atom("load_module"), Atom("shop_fsm")) in up
    assert (Atom("delete_module"), Atom("shop_gone")) in up
    assert up.index((Atom("add_module"), Atom("shop_new"))) < up.index(
        _sup("restart_child", "shop_new"))
    assert down.index(_sup("terminate_child", "shop_new")) < down.index(sup) < down.index(
        _sup("restart_child", "shop_old"))
    assert down.index((Atom("add_module"), Atom("shop_old"))) < down.index(
        _sup("restart_child", "shop_old"))
    assert plan.appup_texts["shopx"] == shop.SHOPX_APPUP  # kept byte for byte
    codes = {(w.code, w.module) for w in plan.warnings}
    assert ("no_code_change", "shop_fsm") in codes
    assert not any(c == "process_module_removed" for c, _ in codes)  # its child is stopped
    plan.relup.validate()
    text = plan.relup.to_text()
    assert "shop_new" in text and "shopx_mod" in text


def test_plan_dev_builds(builds: dict[str, Path], tmp_path: Path) -> None:
    plan = plan_upgrade(builds["old"], builds["new"])
    _check_shop_plan(plan)
    # write() into a copy of NEW: appups in ebin, relup in releases/VSN
    copy = tmp_path / "rel"
    shutil.copytree(builds["new"], copy, symlinks=True)
    relup = plan.write(copy)
    assert relup == copy / "releases" / "2.0.0" / "relup"
    assert (copy / "lib" / "shop-2.0.0" / "ebin" / "shop.appup").read_text() == \
        plan.appup_texts["shop"]


def test_plan_prod_builds_without_debug_info(tmp_path: Path) -> None:
    old = shop.build(tmp_path / "a", "1.0.0", profile="prod")
    new = shop.build(tmp_path / "b", "2.0.0", profile="prod")
    plan = plan_upgrade(old, new)
    beam = plan.new_build.apps["shop"].beam("shop_srv")
    assert "Dbgi" not in beam.chunks or b"abstract_code" not in beam.chunks["Dbgi"]
    _check_shop_plan(plan)


def test_appup_override_and_same_vsn_refusal(builds: dict[str, Path], tmp_path: Path) -> None:
    mine = tmp_path / "shop.appup"
    mine.write_text('{"2.0.0", [{"1.0.0", [{load_module, shop_util}]}],'
                    ' [{"1.0.0", [{load_module, shop_util}]}]}.\n')
    plan = plan_upgrade(builds["old"], builds["new"], appups={"shop": mine})
    assert plan.shipped == {"shop", "shopx"} and not plan.generated
    codes = {(w.code, w.module) for w in plan.warnings}
    assert ("module_not_in_appup", "shop_srv") in codes
    src = tmp_path / "shop.appup.src"  # a script, evaluated with VSN bound (as rebar3 does)
    src.write_text('Up = [{load_module, shop_util}],\n{VSN, [{"1.0.0", Up}], [{"1.0.0", Up}]}.\n')
    plan2 = plan_upgrade(builds["old"], builds["new"], appups={"shop": src})
    assert plan2.appups["shop"].version.text == "2.0.0" and "shop" in plan2.shipped
    with pytest.raises(PlanError, match="not an application that changes version"):
        plan_upgrade(builds["old"], builds["new"], appups={"shoplib": mine})
    # shop's code changed but its vsn stayed 1.0.0: a relup would never deploy it
    same = tmp_path / "same"
    shutil.copytree(builds["new"], same, symlinks=True)
    (same / "lib" / "shop-2.0.0").rename(same / "lib" / "shop-1.0.0")
    app = same / "lib" / "shop-1.0.0" / "ebin" / "shop.app"
    app.write_text(re.sub(r'\{vsn,\s*"2\.0\.0"\}', '{vsn,"1.0.0"}', app.read_text()))
    rel = same / "releases" / "2.0.0" / "shop.rel"
    rel.write_text(re.sub(r'\{shop,\s*"2\.0\.0"\}', '{shop,"1.0.0"}', rel.read_text()))
    with pytest.raises(PlanError, match=r"application shop has other code .* 1\.0\.0"):
        plan_upgrade(builds["old"], same)


def _node(c: LocalCluster) -> Node:
    return Node(f"py{secrets.token_hex(3)}@{c.client_host()}", cookie=c.cookie,
                epmd_port=c.epmd_port)


@pytest.mark.integration
def test_shop_check_then_upgrade_and_back(builds: dict[str, Path], tmp_path: Path) -> None:
    plan = plan_upgrade(builds["old"], builds["new"])
    tarball = plan.write_tarball(tmp_path / "out" / "shop-upgrade.tar.gz")
    old_tar = builds["old"] / "shop-1.0.0.tar.gz"
    with LocalCluster(release_tarball=old_tar, size=2, workdir=tmp_path / "c",
                      timeout_factor=FACTOR) as cluster:
        names = cluster.node_names

        async def main() -> None:
            async with _node(cluster) as node:
                for n in names:
                    await node.connect(n)
                # shop_srv on node 1 stuck in a 10 s handle_call: it cannot be suspended
                await node.rpc(names[0], "erlang", "spawn",
                               [Atom("shop_srv"), Atom("block"), [10_000]], timeout=10)
                await asyncio.sleep(0.3)
                drv = Driver(node, names, node_timeout=120 * FACTOR)
                report = await drv.check_plan(plan, suspend_timeout=1.0)
                blocked = report[names[0]]
                assert not blocked.ok and report[names[1]].ok, str(report)
                assert [f.code for f in blocked.findings if f.blocker] == ["no_sys_reply"]
                stuck = [t for t in blocked.suspend_targets if not t.answered]
                assert [(t.id, t.modules) for t in stuck] == [("shop_srv", ("shop_srv",))]
                assert await node.rpc(names[0], "gen_server", "call",
                                      [Atom("shop_srv"), Atom("get"), 30_000], timeout=40) == (
                    Atom("state"), 1)  # unchanged, and answering again
                assert (await drv.check_plan(plan)).ok

                up = await drv.upgrade(tarball)
                assert up.ok, str(up)
                for n in names:
                    assert await node.rpc(n, "shop_srv", "get", [], timeout=10) == (
                        Atom("state"), 101, Atom("upgraded"))
                    assert await node.rpc(n, "erlang", "whereis", [Atom("shop_new")],
                                          timeout=10) != "undefined"
                    assert await node.rpc(n, "erlang", "whereis", [Atom("shop_old")],
                                          timeout=10) == "undefined"
                    assert await node.rpc(n, "code", "is_loaded", [Atom("shop_gone")],
                                          timeout=10) is False
                    assert await node.rpc(n, "shopx_mod", "f", [], timeout=10) == 2
                down = await drv.downgrade("1.0.0")
                assert down.ok, str(down)
                for n in names:
                    assert await node.rpc(n, "shop_srv", "get", [], timeout=10) == (
                        Atom("state"), 101)
                    assert await node.rpc(n, "erlang", "whereis", [Atom("shop_old")],
                                          timeout=10) != "undefined"
                    assert await node.rpc(n, "erlang", "whereis", [Atom("shop_new")],
                                          timeout=10) == "undefined"
                    assert await node.rpc(n, "shopx_mod", "f", [], timeout=10) == 1

        asyncio.run(main())
