"""The end-to-end proof on the realistic ``shop`` release (erlang_fixtures/shop/, built by
scripts/build-realistic.sh for each OTP into _build/realistic/otpNN/): ``erlbridge plan
OLD NEW --json --tarball OUT`` and ``plan_upgrade`` on two ``{mode, prod}`` builds (no
debug_info, no appup, no relup in NEW), then OUT installed on a 3-node cluster by the
driver and rolled back with ``downgrade("1.0.0")``, checking code versions, the cart's
state kept through ``code_change`` both ways, the added/removed modules and the new
supervisor child -- on every backend and OTP the suite runs (local OTP 25, containers)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from erlbridge.plan import ModuleKind, plan_upgrade
from erlbridge.sync import Node
from erlbridge.term import Atom
from erlbridge.testing.cluster import Cluster
from erlbridge.upgrade import AddModule, Apply, DeleteModule, LoadModule, Update

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
BUILDS = Path(os.environ.get("ERLBRIDGE_REALISTIC_DIR", REPO / "_build" / "realistic"))
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
THIRD_PARTY = {"getopt": "1.0.2", "cowlib": "1.3.0"}


def shop_builds(otp: str) -> Path:
    """The folder holding shop-1.0.0/, shop-2.0.0/ and their tarballs for ``otp``."""
    folder = BUILDS / f"otp{otp}"
    if not (folder / "shop-2.0.0.tar.gz").is_file():
        pytest.skip(f"shop release for OTP {otp} not built "
                    f"(run scripts/build-realistic.sh {otp})")
    return folder


def local_otp() -> str:
    from erlbridge.testing.erlang import local_otp_release  # noqa: PLC0415

    otp = local_otp_release()
    if otp is None:
        pytest.skip("no local erl")
    return otp


# -- the builds themselves --------------------------------------------------------------


def test_realistic_builds_are_what_the_proof_needs() -> None:
    folder = shop_builds(local_otp())
    old, new = folder / "shop-1.0.0", folder / "shop-2.0.0"
    libs = {p.name for p in (new / "lib").iterdir()}
    ours = {"shop-2.0.0", "shop_catalog-1.1.0", "shop_util-1.0.0"}
    assert ours | {f"{a}-{v}" for a, v in THIRD_PARTY.items()} <= libs
    assert {"shop-1.0.0", "shop_catalog-1.0.0", "shop_util-1.0.0"} <= {
        p.name for p in (old / "lib").iterdir()}
    # NEW ships neither appups nor a relup: the planner must make them.
    assert not list(new.glob("lib/shop*/ebin/*.appup"))
    assert not list(new.glob("lib/[gc]o[wt]*/ebin/*.appup"))  # getopt, cowlib
    assert not list(new.glob("releases/*/relup"))
    # the third-party licences travel with the release
    licences = {p.name for p in (new / "licenses").iterdir()}
    assert {"getopt-LICENSE.txt", "cowlib-LICENSE", "SOURCES"} <= licences


# -- the plan (offline) -------------------------------------------------------------------


def check_plan(plan: Any) -> None:
    assert (plan.name, plan.old_vsn, plan.new_vsn) == ("shop", "1.0.0", "2.0.0")
    unchanged = dict(plan.diff.unchanged)
    for app, vsn in {**THIRD_PARTY, "shop_util": "1.0.0"}.items():
        assert unchanged.get(app) == vsn, (app, unchanged)  # rebuilt, same code: unchanged
    assert set(plan.appups) == {"shop", "shop_catalog"}
    assert plan.generated == {"shop", "shop_catalog"}  # NEW ships no appup
    shop = plan.diff.app("shop")
    assert [m.module for m in shop.added] == ["shop_audit"]
    assert [m.module for m in shop.removed] == ["shop_legacy"]
    kinds = {m.module: m.kind for m in shop.changed}
    assert kinds.get("shop_cart") is ModuleKind.GEN_SERVER
    assert kinds.get("shop_sup") is ModuleKind.SUPERVISOR
    assert "shop_app" not in kinds  # same code in both versions
    catalog = plan.diff.app("shop_catalog")
    assert [m.module for m in catalog.changed] == ["shop_catalog"]  # _data is unchanged

    up = [i.to_term() for i in plan.appups["shop"].up_from("1.0.0")]
    assert AddModule("shop_audit").to_term() in [t[:2] for t in up]
    assert DeleteModule("shop_legacy").to_term() in [t[:2] for t in up]
    assert any(t[:3] == Update("shop_cart", ("advanced", [])).to_term() for t in up), up
    assert Update("shop_sup", supervisor=True).to_term() in up
    restart = Apply("supervisor", "restart_child", [Atom("shop_sup"), Atom("shop_audit")]).to_term()
    assert restart in up
    # the child is started after the supervisor knows it (cookbook order)
    assert up.index(restart) > up.index(Update("shop_sup", supervisor=True).to_term())
    down = [i.to_term() for i in plan.appups["shop"].down_to("1.0.0")]
    terminate = Apply("supervisor", "terminate_child", [Atom("shop_sup"), Atom("shop_audit")])
    assert terminate.to_term() in down
    # going down, the child is stopped before its module is removed and purged
    relup_down = [i.to_term() for i in plan.relup.down[0].script]
    remove_audit = [k for k, t in enumerate(relup_down)
                    if isinstance(t, tuple) and t[0] == "remove" and t[1][0] == "shop_audit"]
    assert remove_audit and relup_down.index(terminate.to_term()) < remove_audit[0], relup_down
    cat_up = plan.appups["shop_catalog"].up_from("1.0.0")
    assert [i.to_term()[:2] for i in cat_up] == [LoadModule("shop_catalog").to_term()]

    assert plan.relup.version.text == "2.0.0"
    for entry in (*plan.relup.up, *plan.relup.down):
        assert entry.version.text == "1.0.0"
        entry.script.validate()


def cli_plan(folder: Path, out: Path) -> dict[str, Any]:
    """``erlbridge plan OLD NEW --json --tarball OUT`` on the two release directories."""
    proc = subprocess.run(
        [sys.executable, "-m", "erlbridge.cli", "plan", str(folder / "shop-1.0.0"),
         str(folder / "shop-2.0.0"), "--json", "--tarball", str(out)],
        capture_output=True, text=True, timeout=300 * FACTOR, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    changed = {c["app"]: (c["from"], c["to"], c["appup"]) for c in data["changed"]}
    assert changed == {"shop": ("1.0.0", "2.0.0", "generated"),
                       "shop_catalog": ("1.0.0", "1.1.0", "generated")}
    assert isinstance(data["warnings"], list)
    assert out.is_file()
    return data


def test_plan_cli_json_and_api_on_prod_builds(tmp_path: Path) -> None:
    folder = shop_builds(local_otp())
    cli_plan(folder, tmp_path / "shop-2.0.0-upgrade.tar.gz")
    plan = plan_upgrade(folder / "shop-1.0.0", folder / "shop-2.0.0")
    check_plan(plan)
    # the tarballs work as builds too
    again = plan_upgrade(folder / "shop-1.0.0.tar.gz", folder / "shop-2.0.0.tar.gz")
    assert {a: x.to_term() for a, x in again.appups.items()} == {
        a: x.to_term() for a, x in plan.appups.items()}


# -- the proof on live nodes --------------------------------------------------------------


def _connect(cluster: Cluster) -> Node:
    node = Node(f"shop-test-{secrets.token_hex(3)}@{cluster.client_host()}",
                cookie=cluster.cookie, epmd_port=cluster.epmd_port, hidden=True)
    node.start()
    for name in cluster.node_names:
        node.connect(name, timeout=30.0 * FACTOR)
    return node


def _info(node: Node, name: str) -> dict[str, Any]:
    info = node.rpc(name, "shop", "info", [], timeout=30.0 * FACTOR)
    return {str(k): v for k, v in info.items()}


def _apps(info: dict[str, Any]) -> dict[str, str]:
    return {str(a): v.decode() for a, v in info["apps"]}


def _children(info: dict[str, Any]) -> dict[str, bool]:
    return {str(i): bool(alive) for i, alive in info["children"]}


def _cart(info: dict[str, Any]) -> dict[str, Any]:
    cart = {str(k): v for k, v in info["cart"].items()}
    cart["items"] = {k.decode(): q for k, q in cart["items"].items()}
    return cart


def test_plan_upgrades_and_downgrades_a_3_node_cluster(
    erl_target: Any, erl_cluster_factory: Any, tmp_path: Path
) -> None:
    folder = shop_builds(erl_target.otp)
    check_plan(plan_upgrade(folder / "shop-1.0.0", folder / "shop-2.0.0"))
    upgrade = tmp_path / "shop-upgrade.tar.gz"  # what the CLI writes is what gets installed
    cli_plan(folder, upgrade)

    cluster = erl_cluster_factory(3, release=folder / "shop-1.0.0.tar.gz")
    node = _connect(cluster)
    try:
        before = {}
        for i, name in enumerate(cluster.node_names):
            node.rpc(name, "shop_cart", "add", [b"apple", 2 + i])
            node.rpc(name, "shop_cart", "add", [b"pear", 3])
            info = _info(node, name)
            assert info["vsn"] == b"1.0.0"
            assert _children(info) == {"shop_cart": True}
            assert "shop_legacy" in info["modules"] and "shop_audit" not in info["modules"]
            assert sorted(_cart(info)) == ["adds", "greeting", "items"]
            before[name] = info

        report = cluster.upgrade(upgrade)
        assert report is not None
        for i, name in enumerate(cluster.node_names):
            info = _info(node, name)
            assert info["vsn"] == b"2.0.0", name
            apps = _apps(info)
            assert (apps["shop"], apps["shop_catalog"]) == ("2.0.0", "1.1.0")
            for app, vsn in {**THIRD_PARTY, "shop_util": "1.0.0"}.items():
                assert apps[app] == vsn
            cart = _cart(info)
            # code_change up kept the state and filled the new field from it
            assert cart["items"] == {"apple": 2 + i, "pear": 3}
            assert cart["adds"] == 2
            assert cart["units"] == 5 + i
            # the same processes: suspended and changed, not restarted
            assert info["pids"]["shop_cart"] == before[name]["pids"]["shop_cart"]
            assert _children(info) == {"shop_cart": True, "shop_audit": True}
            assert "shop_audit" in info["modules"] and "shop_legacy" not in info["modules"]
            assert node.rpc(name, "shop_catalog", "price", [b"apple"]) == 108
            node.rpc(name, "shop_cart", "add", [b"plum", 1])  # new code, audited
            assert node.rpc(name, "shop_audit", "count", []) == 1
            assert _cart(_info(node, name))["units"] == 6 + i

        cluster.downgrade("1.0.0")
        for i, name in enumerate(cluster.node_names):
            info = _info(node, name)
            assert info["vsn"] == b"1.0.0", name
            apps = _apps(info)
            assert (apps["shop"], apps["shop_catalog"]) == ("1.0.0", "1.0.0")
            cart = _cart(info)
            assert sorted(cart) == ["adds", "greeting", "items"]  # code_change down
            assert cart["items"] == {"apple": 2 + i, "pear": 3, "plum": 1}
            assert cart["adds"] == 3
            assert info["pids"]["shop_cart"] == before[name]["pids"]["shop_cart"]
            assert _children(info) == {"shop_cart": True}
            assert "shop_audit" not in info["modules"]
            assert node.rpc(name, "shop_cart", "describe", [b"pear"]) == b"pear at 1.50"
            assert node.rpc(name, "shop_catalog", "price", [b"apple"]) == 120
    finally:
        node.close()
