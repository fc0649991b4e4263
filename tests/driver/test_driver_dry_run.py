"""Dry runs of release upgrades change nothing on a live cluster (the fixture release at
1.0.0, local target systems or containers): ``which_releases``, the files under the
releases and lib dirs and the ``RELEASES`` file are the same before and after; the
report says which checks ran. A file that is no release tarball is refused before
anything is sent."""

from __future__ import annotations

import asyncio
import os
import secrets
import tarfile
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio import Node
from erlbridge.driver import Driver, Status
from erlbridge.driver.remote_calls import text_of
from erlbridge.exceptions import BadReleaseTarball
from erlbridge.term import ErlString
from erlbridge.testing.cluster import Cluster

pytestmark = pytest.mark.integration
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def _node(c: Cluster) -> Node:
    return Node(f"py{secrets.token_hex(3)}@{c.client_host()}", cookie=c.cookie,
                epmd_port=c.epmd_port)


async def fetch_tarballs(node: Node, target: str, dest: Path) -> Path:
    """The fixture tarballs built for the target's OTP, copied from the target."""
    tdir = text_of(await node.rpc(target, "fixture", "tarball_dir", [], timeout=10))
    dest.mkdir(parents=True, exist_ok=True)
    for v in ("2.0.0", "2.1.0"):
        res = await node.rpc(target, "file", "read_file",
                             [ErlString(f"{tdir}/fixture-{v}.tar.gz")], timeout=60)
        assert res[0] == "ok", res
        (dest / f"fixture-{v}.tar.gz").write_bytes(res[1])
    return dest


async def snapshot(node: Node, names: list[str]) -> dict[str, Any]:
    """Per node: which_releases, every path under releases/ and lib/, RELEASES' bytes."""
    out = {}
    for n in names:
        rels = await node.rpc(n, "release_handler", "which_releases", [], timeout=30)
        root = text_of(await node.rpc(n, "code", "root_dir", [], timeout=10))
        files = await node.rpc(n, "filelib", "wildcard",
                               [ErlString("{releases,lib}/**"), ErlString(root)], timeout=30)
        data = await node.rpc(n, "file", "read_file", [ErlString(f"{root}/releases/RELEASES")],
                              timeout=10)
        out[n] = (rels, sorted(text_of(f) for f in files), data)
    return out


def relx_layout(tarball: Path, dest: Path) -> Path:
    """A copy of ``tarball`` without ``releases/<file name>.rel``: only relx's
    ``releases/fixture.rel`` names the release."""
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / tarball.name
    with tarfile.open(tarball, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            if member.name.removeprefix("./") == f"releases/{tarball.name[:-7]}.rel":
                continue
            dst.addfile(member, src.extractfile(member) if member.isfile() else None)
    return out


def test_driver_dry_run_upgrade_changes_nothing(erl_cluster: Cluster, tmp_path: Path) -> None:
    names = erl_cluster.node_names

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tarballs = await fetch_tarballs(node, names[0], tmp_path / "tb")
            before = await snapshot(node, names)
            assert all(f"releases/{'2.0.0'}" not in files for _r, files, _d in before.values())

            drv = Driver(node, names, dry_run=True, node_timeout=120 * FACTOR)
            dry = await drv.upgrade(tarballs / "fixture-2.0.0.tar.gz")
            assert dry.ok and dry.dry_run, str(dry)
            assert dry.operation == "upgrade:fixture-2.0.0"
            for o in dry.outcomes:
                assert [s.step for s in o.steps] == ["check_release"], str(dry)
                value = o.value
                assert (value["version"], value["running"]) == ("2.0.0", "1.0.0")
                assert {"tarball", "not_unpacked", "relup", "readiness", "lib_dir",
                        "disk_room"} <= set(value["checked"]), value
                assert "up from 1.0.0" in value["checked"]["relup"]
                assert "check_install_release" in value["not_checked"], value
            assert await snapshot(node, names) == before
            assert await node.rpc(names[0], "fixture", "vsn", [], timeout=10) == "1.0.0"

            # 2.1.0's relup only upgrades from 2.0.0: what install_release would refuse
            bad = await drv.upgrade(tarballs / "fixture-2.1.0.tar.gz")
            assert not bad.ok and bad.dry_run
            for o in bad.outcomes:
                assert o.status is Status.ERROR and o.step == "check_release", str(bad)
                assert o.error is not None and o.error.reason[0] == "no_matching_relup"
                assert "not_unpacked" in o.value["checked"]  # what ran before the failure
            # 1.0.0 -> 2.0.0 has sync_nodes over all nodes: refused with a canary, as in
            # a real run, and still read-only
            canary = Driver(node, names, dry_run=True, canary=True, node_timeout=120 * FACTOR)
            refused = await canary.upgrade(tarballs / "fixture-2.0.0.tar.gz")
            assert all(o.error is not None and o.error.reason == "sync_nodes_needs_all_nodes"
                       for o in refused.outcomes), str(refused)
            assert await snapshot(node, names) == before

            # no release tarball: refused on the host, nothing sent
            bogus = tmp_path / "bogus-1.0.tar.gz"
            bogus.write_bytes(b"this is not gzip")
            with pytest.raises(BadReleaseTarball, match="not gzip"):
                await Driver(node, names, node_timeout=120 * FACTOR).upgrade(bogus)
            assert await snapshot(node, names) == before

            # once unpacked (by a real run), a dry run is check_install_release without
            # purge: read-only too
            # relx's layout (releases/fixture.rel only) is uploaded as fixture.tar.gz:
            # the name unpack_release looks the .rel up by
            relx = relx_layout(tarballs / "fixture-2.0.0.tar.gz", tmp_path / "relx")
            real = Driver(node, names, node_timeout=120 * FACTOR)
            unpack = await real.unpack(relx)
            assert unpack.ok, str(unpack)
            assert unpack.operation == "unpack:fixture-2.0.0"
            assert all(o.steps[0].value["path"].endswith("/fixture.tar.gz")
                       for o in unpack.outcomes), str(unpack)
            unpacked = await snapshot(node, names)
            again = await drv.upgrade(tarballs / "fixture-2.0.0.tar.gz")
            assert again.ok, str(again)
            for o in again.outcomes:
                checked = o.value["checked"]
                assert "upload and unpack skipped" in checked["not_unpacked"]
                assert "check_install_release" in checked
            by_vsn = await Driver(node, names, dry_run=True, node_timeout=120 * FACTOR
                                  ).upgrade("2.0.0", purge=True)
            assert by_vsn.ok and [s.step for s in by_vsn.outcomes[0].steps] == ["check_install"]
            assert await snapshot(node, names) == unpacked
            assert await node.rpc(names[0], "fixture", "vsn", [], timeout=10) == "1.0.0"

    asyncio.run(main())
