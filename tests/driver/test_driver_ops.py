"""More driver operations against real clusters: discovery from a seed node, an
appup-level upgrade of one application, and the Python node taking part in a relup's
sync_nodes barrier (release mode)."""

from __future__ import annotations

import asyncio
import os
import re
import secrets
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio import Node
from erlbridge.driver import Driver, discover
from erlbridge.driver.remote_calls import text_of
from erlbridge.term import Atom, ErlString

pytestmark = pytest.mark.integration
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def test_driver_discover_from_seed(dcluster: Any) -> None:
    names = dcluster.names

    async def main() -> None:
        async with Node(dcluster.py_name(), cookie=dcluster.cookie,
                        epmd_port=dcluster.epmd_port) as node:
            for n in names[1:]:
                assert await node.rpc(names[0], "net_adm", "ping", [Atom(n)], timeout=10) == "pong"
            found = await discover(node, names[0])
            assert found == [names[0], *sorted(names[1:])]
            connected = await discover(node, names[0], include_connected=True)
            assert set(connected) == set(names)  # our own hidden node is left out
            only = await discover(node, names[0], filter=re.escape(names[2]) + "$")
            assert only == [names[2]]
            pred = await discover(node, names[0], filter=lambda n: n != names[0])
            assert names[0] not in pred and len(pred) == len(names) - 1

    asyncio.run(main())


def test_driver_upgrade_app_with_appup(dcluster: Any) -> None:
    async def main() -> None:
        async with Node(dcluster.py_name(), cookie=dcluster.cookie,
                        epmd_port=dcluster.epmd_port) as node:
            await dcluster.connect_all(node)
            names = dcluster.names
            for n in names:
                await node.rpc(n, "drvt_srv", "bump", [], timeout=5)
            drv = Driver(node, names, node_timeout=60 * FACTOR)
            report = await drv.upgrade_app("drvt", push_code=dcluster.beams["2"])
            assert report.ok, str(report)
            assert all([s.step for s in o.steps] == ["push", "upgrade_app"]
                       for o in report.outcomes)
            states = [await node.rpc(n, "drvt_srv", "state", [], timeout=5) for n in names]
            assert all(s == ("2", ("state", 1, "appup_up")) for s in states), states
            vsns = [await node.rpc(n, "application", "get_key", [Atom("drvt"), Atom("vsn")])
                    for n in names]
            assert all(text_of(v[1]) == "2" for v in vsns), vsns
            # an appup that does not cover the running version fails before PONR
            bad = await drv.upgrade_app("drvt", push_code=dcluster.beams["2"])
            assert not bad.ok
            assert all(o.error is not None and o.error.before_point_of_no_return is True
                       for o in bad.outcomes), str(bad)

    asyncio.run(main())


def test_driver_release_python_takes_part_in_sync_nodes(erl_cluster: Any,
                                                        tmp_path: Path) -> None:
    """The 1.0.0 -> 2.0.0 relup syncs over fixture:cluster_nodes(); listing the hidden
    Python node there makes every target wait for it: the driver's release_handler
    participant answers, so the install completes on all nodes."""
    names = erl_cluster.node_names

    async def main() -> None:
        py = f"py{secrets.token_hex(3)}@{erl_cluster.client_host()}"
        async with Node(py, cookie=erl_cluster.cookie, epmd_port=erl_cluster.epmd_port) as node:
            tdir = await node.rpc(names[0], "fixture", "tarball_dir", [], timeout=10)
            res = await node.rpc(names[0], "file", "read_file",
                                 [ErlString(f"{text_of(tdir)}/fixture-2.0.0.tar.gz")], timeout=60)
            tar = tmp_path / "fixture-2.0.0.tar.gz"
            tar.write_bytes(res[1])
            everyone = [Atom(n) for n in [*names, py]]
            for n in names:
                await node.rpc(n, "fixture", "set_cluster_nodes", [everyone], timeout=10)
                listed = await node.rpc(n, "fixture", "cluster_nodes", [], timeout=10)
                assert py in [a.name for a in listed]
            drv = Driver(node, names, node_timeout=90 * FACTOR)
            report = await drv.upgrade(tar, python_sync=[Atom("fixture_upgrade")])
            assert report.ok, str(report)
            assert all(o.duration < 60 * FACTOR for o in report.outcomes)
            vsns = [await node.rpc(n, "fixture", "vsn", [], timeout=10) for n in names]
            assert vsns == ["2.0.0"] * 3
            assert node.whereis("release_handler") is None  # the participant is gone

    asyncio.run(main())
