"""Release mode on a real local 3-node cluster of the fixture release (target systems
from the 1.0.0 tarball): the full cycle up and down, a failed check_install stopping the
run before any node changes, and a run killed midway, read back and resumed."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio import Node
from erlbridge.driver import Driver, Status, read_journal, read_records
from erlbridge.driver.remote_calls import text_of
from erlbridge.term import Atom, ErlString, ExportFun
from erlbridge.testing.cluster import Cluster

pytestmark = pytest.mark.integration
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
REPO = Path(__file__).resolve().parents[2]


def _node(c: Cluster) -> Node:
    return Node(f"py{secrets.token_hex(3)}@{c.client_host()}", cookie=c.cookie,
                epmd_port=c.epmd_port)


async def _call_all(node: Node, names: list[str], fn: str,
                    args: list[Any] | None = None) -> list[Any]:
    return [await node.rpc(n, "fixture", fn, args or [], timeout=10) for n in names]


async def fetch_tarballs(node: Node, target: str, dest: Path) -> Path:
    """Copy the fixture tarballs *built for the target's OTP* from the target to ``dest``
    (local: the build dir; containers: the image's /opt/fixture/tarballs)."""
    tdir = await node.rpc(target, "fixture", "tarball_dir", [], timeout=10)
    dest.mkdir(parents=True, exist_ok=True)
    for v in ("2.0.0", "2.1.0"):
        path = f"{text_of(tdir)}/fixture-{v}.tar.gz"
        res = await node.rpc(target, "file", "read_file", [ErlString(path)], timeout=60)
        assert res[0] == "ok", res
        (dest / f"fixture-{v}.tar.gz").write_bytes(res[1])
    return dest


async def _start_script_vsns(node: Node, names: list[str]) -> list[str]:
    """The version each node's relx start script ``bin/fixture`` boots (its REL_VSN)."""
    out = []
    for n in names:
        root = text_of(await node.rpc(n, "code", "root_dir", [], timeout=10))
        res = await node.rpc(n, "file", "read_file", [ErlString(f"{root}/bin/fixture")],
                             timeout=10)
        assert res[0] == "ok", res
        out.append(res[1].split(b'REL_VSN="', 1)[1].split(b'"', 1)[0].decode())
    return out


def _current(report: Any) -> set[tuple[str, str]]:
    return {(v, s) for o in report.outcomes for (_n, v, s) in o.value}


def test_driver_release_full_cycle(erl_cluster: Cluster, tmp_path: Path) -> None:
    names = erl_cluster.node_names

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tarballs = await fetch_tarballs(node, names[0], tmp_path / "tb")
            for _ in range(2):
                await _call_all(node, names, "bump")
            drv = Driver(node, names, node_timeout=120 * FACTOR, journal=tmp_path / "j.jsonl")
            ready = await drv.readiness()
            assert ready.ready, str(ready)
            assert all(n.releases == (("fixture", "1.0.0", "permanent"),) for n in ready.nodes)

            up = await drv.upgrade(tarballs / "fixture-2.0.0.tar.gz")
            assert up.ok, str(up)
            for o in up.outcomes:
                assert [s.step for s in o.steps] == [
                    "upload", "unpack", "check_install", "install", "make_permanent"]
                assert o.steps[3].value["from"] == "1.0.0"
            assert await _call_all(node, names, "vsn") == ["2.0.0"] * 3
            states = await _call_all(node, names, "state")
            assert all(s["count"] == 2 and s["tag"] == "upgraded" for s in states), states
            rel = await drv.which_releases()
            assert ("2.0.0", "permanent") in _current(rel) and ("1.0.0", "old") in _current(rel)
            # like relx's own upgrade: a restart (heart) now boots the permanent 2.0.0
            assert await _start_script_vsns(node, names) == ["2.0.0"] * 3

            # fixture_holder still runs 1.0.0 code; 2.1.0 needs it released.
            await _call_all(node, names, "release_holder")
            up2 = await drv.upgrade(tarballs / "fixture-2.1.0.tar.gz")
            assert up2.ok, str(up2)
            assert await _call_all(node, names, "vsn") == ["2.1.0"] * 3
            assert all(s["count"] == 2 for s in await _call_all(node, names, "state"))

            down = await drv.downgrade("2.0.0")
            assert down.ok, str(down)
            assert down.operation == "downgrade:2.0.0", down.operation
            assert await _call_all(node, names, "vsn") == ["2.0.0"] * 3
            down2 = await drv.downgrade("1.0.0")
            assert down2.ok, str(down2)
            assert await _call_all(node, names, "vsn") == ["1.0.0"] * 3
            assert await _start_script_vsns(node, names) == ["1.0.0"] * 3
            states = await _call_all(node, names, "state")
            assert all(s["count"] == 2 and "tag" not in s for s in states), states

            rm = await drv.remove_release("2.1.0")
            assert rm.ok, str(rm)
            rel = await drv.which_releases()
            assert ("1.0.0", "permanent") in _current(rel)
            assert not any(v == "2.1.0" for v, _ in _current(rel))
            st = read_journal(tmp_path / "j.jsonl")
            assert {s.state for s in st.nodes.values()} == {"ok"}
            ops = [r["op"] for r in read_records(tmp_path / "j.jsonl")
                   if r["event"] == "run_started"]
            assert "downgrade:2.0.0" in ops and "downgrade:1.0.0" in ops, ops
            assert not any(op in ("upgrade:2.0.0", "upgrade:1.0.0") for op in ops), ops

    asyncio.run(main())


def test_driver_release_check_install_failure_stops_before_any_change(
        erl_cluster: Cluster, tmp_path: Path) -> None:
    names = erl_cluster.node_names

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tarballs = await fetch_tarballs(node, names[0], tmp_path / "tb")
            drv = Driver(node, names, node_timeout=120 * FACTOR)
            assert (await drv.upgrade(tarballs / "fixture-2.0.0.tar.gz")).ok
            # Release the old-code holder on two nodes only: the third fails check_install.
            for n in names[:2]:
                await node.rpc(n, "fixture", "release_holder", [], timeout=10)
            report = await drv.upgrade(tarballs / "fixture-2.1.0.tar.gz")
            assert not report.ok
            bad = report.preflight[2]
            assert bad.status is Status.ERROR and bad.step == "check_install", str(report)
            assert bad.error is not None and bad.error.reason == ("old_processes", "fixture_holder")
            assert all(p.ok for p in report.preflight[:2]), str(report)
            for o in report.outcomes:
                install = next(s for s in o.steps if s.step == "install")
                assert install.status is Status.SKIPPED
            assert await _call_all(node, names, "vsn") == ["2.0.0"] * 3
            rel = await drv.which_releases()
            assert all(("2.1.0", "unpacked") in {(v, s) for _, v, s in o.value}
                       for o in rel.outcomes)

    asyncio.run(main())


def test_driver_release_dry_run_and_canary(erl_cluster: Cluster, tmp_path: Path) -> None:
    names = erl_cluster.node_names

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tarballs = await fetch_tarballs(node, names[0], tmp_path / "tb")
            dry = await Driver(node, names, dry_run=True, node_timeout=120 * FACTOR).upgrade(
                tarballs / "fixture-2.0.0.tar.gz")
            assert dry.ok and dry.dry_run, str(dry)
            assert await _call_all(node, names, "vsn") == ["1.0.0"] * 3
            assert all(o.step == "check_release" for o in dry.outcomes)  # read-only
            rel = await Driver(node, names, node_timeout=120 * FACTOR).which_releases()
            assert _current(rel) == {("1.0.0", "permanent")}  # the dry run unpacked nothing
            unpack = await Driver(node, names, node_timeout=120 * FACTOR).unpack(
                tarballs / "fixture-2.0.0.tar.gz")
            assert unpack.ok, str(unpack)
            # 1.0.0 -> 2.0.0 has a sync_nodes barrier over all nodes: a canary would leave
            # release_handler waiting forever, so the preflight refuses it.
            canary = Driver(node, names, canary=True, node_timeout=120 * FACTOR)
            refused = await canary.upgrade("2.0.0")  # unpacked above
            assert not refused.ok
            assert all(o.error is not None and o.error.reason == "sync_nodes_needs_all_nodes"
                       for o in refused.preflight), str(refused)
            assert await _call_all(node, names, "vsn") == ["1.0.0"] * 3
            assert (await Driver(node, names, node_timeout=120 * FACTOR).upgrade("2.0.0")).ok
            await _call_all(node, names, "release_holder")
            journal = tmp_path / "canary.jsonl"
            drv = Driver(node, names, canary=True, concurrency=2, node_timeout=120 * FACTOR,
                         journal=journal)
            up = await drv.upgrade(tarballs / "fixture-2.1.0.tar.gz")  # no barrier in this relup
            assert up.ok, str(up)
            assert await _call_all(node, names, "vsn") == ["2.1.0"] * 3
            recs = [r for r in read_records(journal) if r.get("step") == "install"]
            first_done = next(i for i, r in enumerate(recs)
                              if r["event"] == "finished" and r["node"] == names[0])
            others_started = [i for i, r in enumerate(recs)
                              if r["event"] == "started" and r["node"] != names[0]]
            assert others_started and min(others_started) > first_done

    asyncio.run(main())


KILLED_RUN = """
import asyncio, sys
from erlbridge.asyncio import Node
from erlbridge.driver import Driver
async def main():
    port = None if sys.argv[2] == "-" else int(sys.argv[2])
    async with Node(sys.argv[6], cookie=sys.argv[1], epmd_port=port) as node:
        drv = Driver(node, sys.argv[5].split(","), journal=sys.argv[4], node_timeout=300,
                     concurrency=1)
        await drv.unpack(sys.argv[3], chunk_bytes=16 * 1024)
asyncio.run(main())
"""


def test_driver_release_killed_run_journal_and_resume(erl_cluster: Cluster,
                                                      tmp_path: Path) -> None:
    """A Python process killed mid-run leaves a true journal; a resumed run does not
    redo finished steps and continues a partial upload where it stopped."""
    names = erl_cluster.node_names
    journal = tmp_path / "killed.jsonl"
    script = tmp_path / "run.py"
    script.write_text(textwrap.dedent(KILLED_RUN))

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tar = (await fetch_tarballs(node, names[0], tmp_path / "tb")) / "fixture-2.0.0.tar.gz"
            root = text_of(await node.rpc(names[1], "code", "root_dir", [], timeout=10))
            partial = ErlString(f"{root}/releases/fixture-2.0.0.tar.gz")
            port = "-" if erl_cluster.epmd_port is None else str(erl_cluster.epmd_port)
            proc = await asyncio.create_subprocess_exec(
                sys.executable, str(script), erl_cluster.cookie, port, str(tar), str(journal),
                ",".join(names), f"pykill{secrets.token_hex(2)}@{erl_cluster.client_host()}",
                cwd=REPO)
            try:
                # concurrency=1: kill while node 2's upload is half done (node 1 has finished)
                end = asyncio.get_running_loop().time() + 120 * FACTOR
                have = 0
                while asyncio.get_running_loop().time() < end and proc.returncode is None:
                    have = await node.rpc(names[1], "filelib", "file_size", [partial], timeout=5)
                    if have >= 64 * 1024:
                        break
                    await asyncio.sleep(0.005)
                proc.send_signal(signal.SIGKILL)
            finally:
                await asyncio.wait_for(proc.wait(), 30)
            have = await node.rpc(names[1], "filelib", "file_size", [partial], timeout=5)
            assert 0 < have < tar.stat().st_size, have  # killed mid-upload

            st = read_journal(journal)
            assert st.nodes[names[0]].completed("upload") and st.nodes[names[0]].completed("unpack")
            assert st.nodes[names[1]].state == "in_doubt" and st.nodes[names[1]].in_doubt == [
                "upload"], st
            assert st.nodes[names[2]].state == "planned", st
            assert not st.finished_runs

            assert await _call_all(node, names, "vsn") == ["1.0.0"] * 3  # nothing installed
            drv = Driver(node, names, journal=journal, resume=True, node_timeout=120 * FACTOR)
            report = await drv.unpack(tar)
            assert report.ok, str(report)
            r0 = {s.step: s for s in report[names[0]].steps}
            assert r0["upload"].resumed and r0["unpack"].resumed  # not redone
            r1 = {s.step: s for s in report[names[1]].steps}
            assert not r1["upload"].resumed
            assert r1["upload"].value["resumed_from"] == have  # continued where it stopped
            st2 = read_journal(journal)
            assert all(st2.nodes[n].state == "ok" for n in names), st2
            up = await drv.upgrade("2.0.0")
            assert up.ok, str(up)
            assert await _call_all(node, names, "vsn") == ["2.0.0"] * 3

    asyncio.run(main())


def test_driver_release_failure_after_ponr_restarts_node(erl_cluster: Cluster,
                                                        tmp_path: Path) -> None:
    """code_change crashes on one node (after point_of_no_return): release_handler
    answers {error, _} and restarts that node; the driver waits for it, reports the
    error as after PONR with the node's which_releases, and the others finish."""
    names = erl_cluster.node_names
    bad = names[2]

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tarballs = await fetch_tarballs(node, names[0], tmp_path / "tb")
            # fixture_server's state becomes a list: its 2.0.0 code_change has no clause
            await node.rpc(bad, "sys", "replace_state",
                           [Atom("fixture_server"), ExportFun(Atom("erlang"),
                                                              Atom("tuple_to_list"), 1)],
                           timeout=10)
            drv = Driver(node, names, node_timeout=120 * FACTOR, restart_timeout=90 * FACTOR)
            report = await drv.upgrade(tarballs / "fixture-2.0.0.tar.gz")
            o = report[bad]
            assert o.status is Status.ERROR and o.step == "install", str(report)
            assert o.error is not None and o.error.before_point_of_no_return is False
            assert "code_change_failed" in str(o.error.reason)
            # the node restarted into its permanent release; 2.0.0 stays unpacked
            assert ("fixture", "1.0.0", "permanent") in [tuple(r) for r in o.value], o.value
            assert ("fixture", "2.0.0", "unpacked") in [tuple(r) for r in o.value], o.value
            assert await node.rpc(bad, "fixture", "vsn", [], timeout=10) == "1.0.0"
            for n in names[:2]:
                assert report[n].ok, str(report)
                assert await node.rpc(n, "fixture", "vsn", [], timeout=10) == "2.0.0"

    asyncio.run(main())
