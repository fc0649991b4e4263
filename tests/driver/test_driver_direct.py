"""Direct mode on real 3-node clusters (the plugin's erl_cluster: local target systems or
OTP 25/27/29 containers) with the drvt test app compiled on a target: code push,
code_change, purge rules, Python-coordinated sync barriers, node failures at barriers."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio import Node
from erlbridge.driver import Driver, Status, read_journal
from erlbridge.driver.rendering import term_text
from erlbridge.term import Atom, ExportFun
from erlbridge.upgrade import (
    Apply,
    CodeChange,
    Load,
    LoadObjectCode,
    PointOfNoReturn,
    Resume,
    Script,
    Suspend,
    SyncNodes,
)

pytestmark = pytest.mark.integration
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))


def _node(c: Any) -> Node:
    return Node(c.py_name(), cookie=c.cookie, epmd_port=c.epmd_port)


def upgrade_srv(vsn: str, *extra: Any) -> Script:
    return Script([
        LoadObjectCode("drvt", vsn, ["drvt_srv"]),
        PointOfNoReturn(),
        *extra,
        Suspend(["drvt_srv"]),
        Load("drvt_srv"),
        CodeChange([("drvt_srv", Atom("upgraded"))]),
        Resume(["drvt_srv"]),
    ])


async def _states(node: Node, names: list[str]) -> list[Any]:
    return [await node.rpc(n, "drvt_srv", "state", [], timeout=5) for n in names]


def test_driver_direct_code_change_on_every_node(dcluster: Any, tmp_path: Path) -> None:
    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            for n in dcluster.names:
                await node.rpc(n, "drvt_srv", "bump", [], timeout=5)
            drv = Driver(node, dcluster.names, node_timeout=20 * FACTOR,
                         journal=tmp_path / "j.jsonl")
            ready = await drv.readiness(upgrade_srv("2"))
            assert ready.ready, str(ready)
            assert ready[dcluster.names[0]].otp_release
            report = await drv.run_script(upgrade_srv("2"),
                                          push_code={"drvt": dcluster.beams["2"]})
            assert report.ok, str(report)
            for o in report.outcomes:
                assert [s.step for s in o.steps] == ["push", "lib_dirs", "preflight", "eval"]
                assert o.value == []  # nothing left unpurged (brutal_purge)
            states = await _states(node, dcluster.names)
            assert all(s[0] == "2" and s[1] == ("state", 1, "upgraded") for s in states), states
            st = read_journal(tmp_path / "j.jsonl")
            assert all(st.nodes[n].state == "ok" for n in dcluster.names)

    asyncio.run(main())


def test_driver_direct_preflight_failure_changes_nothing(dcluster: Any) -> None:
    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            bad = dcluster.names[1]
            # drvt 2 ebin is pushed everywhere except `bad`, where lib_dirs points nowhere
            drv = Driver(node, dcluster.names, node_timeout=20 * FACTOR)
            report = await drv.run_script(upgrade_srv("2"),
                                          push_code={"drvt": dcluster.beams["2"]})
            assert report.ok
            drv2 = Driver(node, dcluster.names, node_timeout=20 * FACTOR)
            # version 3 is not on any disk and not pushed: check_script fails with no_such_file
            r2 = await drv2.run_script(upgrade_srv("3"), lib_dirs={"drvt": "/nonexistent/drvt-3"})
            assert not r2.ok
            for o in r2.preflight:
                assert o.status is Status.ERROR and o.step == "preflight"
                assert o.error is not None and o.error.before_point_of_no_return is True
                assert "no_such_file" in str(o.error.reason)
            assert all(o.status is Status.SKIPPED and o.step == "eval" for o in r2.outcomes
                       if o.status is not Status.ERROR)
            states = await _states(node, dcluster.names)
            assert all(s[0] == "2" for s in states), (bad, states)

    asyncio.run(main())


def _hold_script(vsn: str, purge: str) -> Script:
    return Script([LoadObjectCode("drvt", vsn, ["drvt_hold"]), PointOfNoReturn(),
                   Load("drvt_hold", purge, purge)])


def test_driver_direct_soft_purge_refused_brutal_purge_kills(dcluster: Any) -> None:
    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            push2 = {"drvt": dcluster.beams["2"]}
            drv = Driver(node, dcluster.names, node_timeout=20 * FACTOR)
            pids = [await node.rpc(n, "erlang", "whereis", [Atom("drvt_hold")], timeout=5)
                    for n in dcluster.names]
            # 1: soft load of v2: the holder keeps running v1 code (old code in use).
            r1 = await drv.run_script(_hold_script("2", "soft_purge"), push_code=push2)
            assert r1.ok, str(r1)
            assert all(o.value == [("drvt_hold", "soft_purge")] for o in r1.outcomes), str(r1)
            ready = await drv.readiness(_hold_script("3", "soft_purge"))
            assert all(("drvt_hold" in n.old_code_modules) for n in ready.nodes), str(ready)
            assert all(n.old_code_processes for n in ready.nodes), str(ready)
            # 2: a soft_purge load of v3 is refused while old code runs; nothing changes.
            push3 = {"drvt": dcluster.beams["3"]}
            r2 = await drv.run_script(_hold_script("3", "soft_purge"), push_code=push3)
            assert not r2.ok
            for o in r2.preflight:
                assert o.error is not None and o.error.reason == ("old_processes", "drvt_hold")
            assert all(o.status is Status.SKIPPED for o in r2.outcomes if o.step == "eval")
            # 3: brutal_purge kills the processes running old code (the supervisor restarts).
            r3 = await drv.run_script(_hold_script("3", "brutal_purge"), push_code=push3)
            assert r3.ok, str(r3)
            after = [await node.rpc(n, "erlang", "whereis", [Atom("drvt_hold")], timeout=5)
                     for n in dcluster.names]
            assert all(a != b for a, b in zip(pids, after, strict=True))
            # (The restarted holder may start on v2 before v3 is loaded and so run "old"
            # code again: only the kill of the v1-code process is certain.)

    asyncio.run(main())


def test_driver_direct_sync_barriers(dcluster: Any) -> None:
    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            names = dcluster.names
            script = upgrade_srv("2", SyncNodes("before_suspend", names))
            # a second barrier at the end, and the barrier order is observable:
            script = script + Script([SyncNodes("done", names)])
            drv = Driver(node, names, node_timeout=20 * FACTOR, barrier_timeout=10 * FACTOR)
            report = await drv.run_script(script, push_code={"drvt": dcluster.beams["2"]})
            assert report.ok, str(report)
            assert report.extra["barriers"] == ["before_suspend", "done"]
            states = await _states(node, names)
            assert all(s[0] == "2" for s in states)

    asyncio.run(main())


async def _wait_started(journal: Path, step: str, n: int, timeout: float,
                        task: asyncio.Task[Any]) -> None:
    """Wait until the journal shows ``step`` started (and not finished) on ``n`` nodes."""
    end = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < end:
        if task.done():
            raise AssertionError(f"the run ended before {step} started: {task.result()}")
        if journal.exists():
            st = read_journal(journal)
            if sum(1 for s in st.nodes.values() if step in s.in_doubt) >= n:
                return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{step} did not start on {n} nodes: {read_journal(journal)}")


def test_driver_direct_barrier_released_when_node_killed(dcluster: Any, tmp_path: Path) -> None:
    """One node dies while the others head for a barrier: they are released with an
    error as soon as they arrive (not at the deadline); the dead node is nodedown."""

    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            names = dcluster.names
            victim = names[2]
            script = Script([
                LoadObjectCode("drvt", "2", ["drvt_srv"]),
                PointOfNoReturn(),
                Apply("timer", "sleep", [int(2000 * FACTOR)]),
                SyncNodes("b1", names),
                Suspend(["drvt_srv"]), Load("drvt_srv"),
                CodeChange([("drvt_srv", Atom("upgraded"))]), Resume(["drvt_srv"]),
            ])
            journal = tmp_path / "kill.jsonl"
            drv = Driver(node, names, node_timeout=60 * FACTOR, barrier_timeout=40 * FACTOR,
                         journal=journal)
            task = asyncio.create_task(drv.run_script(script,
                                                      push_code={"drvt": dcluster.beams["2"]}))
            await _wait_started(journal, "eval", 3, 20 * FACTOR, task)
            await asyncio.sleep(0.5 * FACTOR)
            dcluster.kill(victim)
            t0 = asyncio.get_running_loop().time()
            report = await asyncio.wait_for(task, 30 * FACTOR)
            elapsed = asyncio.get_running_loop().time() - t0
            assert elapsed < 10 * FACTOR, elapsed  # released by the failure, not the deadline
            assert report[victim].status is Status.NODEDOWN, str(report)
            lost = report[victim].error
            assert lost is not None
            reason = term_text(lost.reason)  # said once (not "connection_closed: ...closed")
            assert str(lost).count(reason) == 1 and "Atom(" not in str(lost), str(lost)
            for n in names[:2]:
                o = report[n]
                assert o.status is Status.ERROR, str(report)
                assert o.error is not None and "barrier_node_failed" in str(o.error.reason)
                assert o.error.before_point_of_no_return is False
                s = await node.rpc(n, "drvt_srv", "state", [], timeout=5)
                assert s[0] == "1"  # the barrier came before the load

    asyncio.run(main())


def test_driver_direct_barrier_deadline_when_partitioned(
        dcluster: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A node that stops (SIGSTOP: partitioned, not dead) never reaches the barrier:
    the others are released with barrier_timeout at the deadline; nothing hangs. The
    barrier's log lines show Erlang terms as Erlang text."""

    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            names = dcluster.names
            victim = names[0]
            script = Script([
                LoadObjectCode("drvt", "2", ["drvt_srv"]), PointOfNoReturn(),
                Apply("timer", "sleep", [int(1500 * FACTOR)]),
                SyncNodes("b1", names),
                Suspend(["drvt_srv"]), Load("drvt_srv"), Resume(["drvt_srv"]),
            ])
            journal = tmp_path / "part.jsonl"
            drv = Driver(node, names, node_timeout=12 * FACTOR, barrier_timeout=4 * FACTOR,
                         journal=journal)
            task = asyncio.create_task(drv.run_script(script,
                                                      push_code={"drvt": dcluster.beams["2"]}))
            await _wait_started(journal, "eval", 3, 20 * FACTOR, task)
            dcluster.pause(victim)
            try:
                report = await asyncio.wait_for(task, 30 * FACTOR)
            finally:
                dcluster.unpause(victim)
            assert report[victim].status in (Status.TIMEOUT, Status.NODEDOWN), str(report)
            for n in names[1:]:
                o = report[n]
                assert o.status is Status.ERROR, str(report)
                assert o.error is not None and "barrier_timeout" in str(o.error.reason), str(report)
                assert o.duration < 12 * FACTOR

    with caplog.at_level(logging.INFO, logger="erlbridge.asyncio.driver.barriers"):
        asyncio.run(main())
    lines = [r.getMessage() for r in caplog.records if "barrier" in r.getMessage()]
    failing = [line for line in lines if line.startswith("failing")]
    assert failing and all("{barrier_timeout," in line for line in failing), lines
    assert not any("Atom(" in line or "ErlString(" in line for line in lines), lines


def test_driver_direct_policies_stop_on_failure_and_canary(dcluster: Any) -> None:
    """code_change fails on the first node only (its state has an unexpected shape):
    the preflight passes everywhere, the first eval fails after PONR, and the policy
    decides whether the other nodes run."""

    async def main() -> None:
        async with _node(dcluster) as node:
            await dcluster.connect_all(node)
            names = dcluster.names
            push = {"drvt": dcluster.beams["2"]}
            await node.rpc(names[0], "sys", "replace_state",
                           [Atom("drvt_srv"), ExportFun(Atom("erlang"), Atom("tuple_to_list"), 1)],
                           timeout=10)
            for kw in ({"concurrency": 1, "stop_on_first_failure": True}, {"canary": True}):
                drv = Driver(node, names, node_timeout=30 * FACTOR, **kw)  # type: ignore[arg-type]
                report = await drv.run_script(upgrade_srv("2"), push_code=push)
                first = report[names[0]]
                assert first.status is Status.ERROR and first.step == "eval", str(report)
                assert first.error is not None and first.error.before_point_of_no_return is False
                assert "code_change_failed" in str(first.error.reason)
                # the suspended server was resumed: it answers (new code, broken state)
                assert [s.step for s in first.steps][-1] == "resume_suspended"
                assert (await node.rpc(names[0], "drvt_srv", "state", [], timeout=5))[0] == "2"
                for n in names[1:]:
                    assert report[n].status is Status.SKIPPED and report[n].step == "eval"
                    assert (await node.rpc(n, "drvt_srv", "state", [], timeout=5))[0] == "1"
                assert all(p.ok for p in report.preflight)
            # continue (the default): the others are upgraded
            report = await Driver(node, names, node_timeout=30 * FACTOR).run_script(
                upgrade_srv("2"), push_code=push)
            assert [o.status for o in report.outcomes] == [Status.ERROR, Status.OK, Status.OK]

    asyncio.run(main())
