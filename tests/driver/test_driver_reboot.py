"""``Driver.reboot_old_release`` on real 3-node clusters of the fixture release (both
backends of the plugin, every selected OTP).

The nodes run without ``heart``: ``init:reboot()`` (which release_handler calls after
making the old release permanent) just ends the emulator. ``Cluster.supervise`` stands in
for heart and starts every node that ended again; a (re)started node boots the release
``start_erl.data`` names, i.e. the permanent one.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import time
from pathlib import Path
from typing import Any

import pytest

from erlbridge.driver import Driver, Status, read_journal
from erlbridge.driver.remote_calls import text_of
from erlbridge.sync import Driver as SyncDriver
from erlbridge.term import Atom, ErlString
from erlbridge.testing.cluster import Cluster

pytestmark = pytest.mark.integration
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))

# Shared helpers (_node, fetch_tarballs, _call_all) of the release-mode tests.
_spec = importlib.util.spec_from_file_location(
    "driver_release_helpers", Path(__file__).with_name("test_driver_release.py"))
assert _spec is not None and _spec.loader is not None
_release = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_release)
_node = _release._node
fetch_tarballs = _release.fetch_tarballs
_call_all = _release._call_all
_start_script_vsns = _release._start_script_vsns

# Suspend init from a registered process (a suspended process is resumed when its
# suspender ends): init:reboot() is then never carried out, as with a shutdown that hangs.
HOLD_INIT = ("register(rb_hold_init, spawn(fun() -> true = erlang:suspend_process("
             "whereis(init)), receive release -> ok end end)), ok")
RELEASE_INIT = "rb_hold_init ! release, ok"


def _rels(value: Any) -> set[tuple[str, ...]]:
    return {tuple(text_of(x) for x in r) for r in value}


def _vsn_status(rels: Any) -> list[tuple[str, str]]:
    """``(Vsn, Status)`` of a raw ``release_handler:which_releases()`` reply."""
    return [(text_of(r[1]), text_of(r[3])) for r in rels]


async def _reach(node: Any, name: str, timeout: float = 30.0) -> None:
    """Ping ``name`` until it answers. The first attempts can fail although the node is
    back: a connection attempt made while it was down (the driver's last ping) is still
    pending, and every caller shares it -- on Docker its EPMD connect waits for a SYN
    retransmission and times out (5 s) if that comes too late."""
    end = time.monotonic() + timeout * FACTOR
    while not await node.ping(name, timeout=10):
        assert time.monotonic() < end, f"{name} does not answer"
        await asyncio.sleep(0.3)


async def _fresh_boot(node: Any, name: str, vsn: str) -> None:
    """``name`` runs ``vsn`` as booted (not hot-upgraded): fixture_server's state is its
    init state, its events only the start."""
    await _reach(node, name)
    assert await node.rpc(name, "fixture", "vsn", [], timeout=10) == vsn
    state = await node.rpc(name, "fixture", "state", [], timeout=10)
    assert state["count"] == 0 and state["code_vsn"] == vsn, state
    assert list(state["events"]) == [(Atom("started"), vsn)], state
    assert ("tag" in state) == (vsn != "1.0.0"), state  # 2.0.0's record has a tag
    if vsn != "1.0.0":
        assert state["tag"] == "fresh", state


def test_driver_reboot_old_release(erl_cluster: Cluster, tmp_path: Path,
                                   record_property: Any) -> None:
    """1.0.0 -> 2.0.0 made permanent everywhere, then ``reboot_old_release("1.0.0")``
    while a supervisor restarts what ends: every node boots 1.0.0, which is permanent.
    Then on single nodes: without a supervisor the node stays down (``nodedown``,
    ``not_restarted``) and a later restart boots the release made permanent; a node whose
    shutdown hangs is reported ``timeout`` (``no_reboot``), not ok."""
    names = erl_cluster.node_names
    timings: dict[str, float] = {}

    async def main() -> None:
        async with _node(erl_cluster) as node:
            tarballs = await fetch_tarballs(node, names[0], tmp_path / "tb")
            journal = tmp_path / "reboot.jsonl"
            drv = Driver(node, names, node_timeout=150 * FACTOR,
                         restart_timeout=120 * FACTOR, journal=journal)
            t0 = time.monotonic()
            up = await drv.upgrade(tarballs / "fixture-2.0.0.tar.gz")
            timings["upgrade_s"] = time.monotonic() - t0
            assert up.ok, str(up)
            assert all(o.steps[-1].step == "make_permanent" for o in up.outcomes), str(up)
            assert await _call_all(node, names, "vsn") == ["2.0.0"] * 3
            assert await _start_script_vsns(node, names) == ["2.0.0"] * 3
            for _ in range(2):
                await _call_all(node, names, "bump")  # a reboot resets the count to 0

            # -- all nodes, restarted as heart would --------------------------------
            with erl_cluster.supervise(timeout=120) as sup:
                t0 = time.monotonic()
                report = await drv.reboot_old_release("1.0.0")
                timings["reboot_driver_s"] = time.monotonic() - t0
                await asyncio.to_thread(sup.wait_restarted, timeout=150)
                timings["reboot_ready_s"] = time.monotonic() - t0
            assert sup.restarts == dict.fromkeys(names, 1), sup.restarts
            assert report.ok, str(report)
            for o in report.outcomes:
                assert o.status is Status.OK and o.step == "reboot_old_release", str(report)
                assert _rels(o.value) == {("fixture", "1.0.0", "permanent"),
                                          ("fixture", "2.0.0", "old")}, o.value
            for n in names:
                await _fresh_boot(node, n, "1.0.0")
            # heart's command (relx's bin/fixture) was pointed at 1.0.0 before the reboot
            assert await _start_script_vsns(node, names) == ["1.0.0"] * 3
            which = await drv.which_releases()
            assert all(("fixture", "1.0.0", "permanent") in _rels(o.value)
                       for o in which.outcomes), str(which)
            st = read_journal(journal)
            assert {s.state for s in st.nodes.values()} == {"ok"}, st

            # -- one node, nothing restarts it ----------------------------------------
            lone = names[2]
            short = Driver(node, [lone], node_timeout=60 * FACTOR, restart_timeout=5 * FACTOR)
            t0 = time.monotonic()
            gone = await short.reboot_old_release("2.0.0")
            timings["no_restart_report_s"] = time.monotonic() - t0
            o = gone[lone]
            assert o.status is Status.NODEDOWN, str(gone)
            assert o.error is not None and o.error.reason == "not_restarted", str(gone)
            assert timings["no_restart_report_s"] >= 5 * FACTOR  # it waited restart_timeout
            assert not await asyncio.to_thread(erl_cluster.is_running, lone)
            # Started again later, it boots the release reboot_old_release made permanent.
            await asyncio.to_thread(erl_cluster.restart, lone, timeout=120)
            await _fresh_boot(node, lone, "2.0.0")
            rels = await node.rpc(lone, "release_handler", "which_releases", [], timeout=10)
            assert set(_vsn_status(rels)) == {("2.0.0", "permanent"), ("1.0.0", "old")}, rels

            # -- one node whose shutdown hangs -----------------------------------------
            stuck = names[1]
            await asyncio.to_thread(erl_cluster.eval, stuck, HOLD_INIT)
            with erl_cluster.supervise([stuck], timeout=120) as sup:
                short = Driver(node, [stuck], node_timeout=60 * FACTOR,
                               restart_timeout=3 * FACTOR)
                hung = await short.reboot_old_release("2.0.0")
                o = hung[stuck]
                assert o.status is Status.TIMEOUT, str(hung)
                assert o.error is not None and o.error.reason == "no_reboot", str(hung)
                assert sup.restarts[stuck] == 0
                # Still up on the code it had; the permanent release has changed already.
                assert await node.rpc(stuck, "fixture", "vsn", [], timeout=10) == "1.0.0"
                await asyncio.to_thread(erl_cluster.eval, stuck, RELEASE_INIT)
                await asyncio.to_thread(sup.wait_restarted, timeout=150)
            await _fresh_boot(node, stuck, "2.0.0")
            assert await node.rpc(names[0], "fixture", "vsn", [], timeout=10) == "1.0.0"

    asyncio.run(main())
    for key, value in timings.items():
        record_property(key, round(value, 2))


class _AsyncView:
    """The blocking node's rpc as a coroutine (for the shared async helpers)."""

    def __init__(self, node: Any) -> None:
        self.node = node

    async def rpc(self, *args: Any, **kwargs: Any) -> Any:
        return self.node.rpc(*args, **kwargs)


def test_driver_reboot_old_release_refused_restarts_nothing(
        erl_cluster: Cluster, erlbridge_node: Any, record_property: Any,
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A version that is not installed, or one that is not ``old`` (the permanent one):
    an ERROR outcome carrying release_handler's reason, at once, and no node restarts
    (the blocking twin of the driver, under a supervisor that would restart them)."""
    names = erl_cluster.node_names
    for n in names:
        assert erlbridge_node.rpc(n, "fixture", "bump", [], timeout=10) == 1
    with erl_cluster.supervise() as sup:
        drv = SyncDriver(erlbridge_node, names, node_timeout=60 * FACTOR,
                         restart_timeout=120 * FACTOR)
        missing = drv.reboot_old_release("9.9.9")
        permanent = drv.reboot_old_release("1.0.0")
        # 2.0.0 unpacked only (its bin/fixture-2.0.0 is there): refused, and the start
        # script pointed at it before the call is pointed back at the permanent 1.0.0
        tdir = text_of(erlbridge_node.rpc(names[0], "fixture", "tarball_dir", [], timeout=10))
        res = erlbridge_node.rpc(names[0], "file", "read_file",
                                 [ErlString(f"{tdir}/fixture-2.0.0.tar.gz")], timeout=60)
        assert res[0] == "ok", res
        (tmp_path / "fixture-2.0.0.tar.gz").write_bytes(res[1])
        assert drv.unpack(tmp_path / "fixture-2.0.0.tar.gz").ok
        with caplog.at_level(logging.INFO, logger="erlbridge.asyncio.driver.driver"):
            unpacked = drv.reboot_old_release("2.0.0")
        time.sleep(1.0)  # a reboot would have ended the processes by now
        assert all(erl_cluster.is_running(n) for n in names)
    assert sup.restarts == dict.fromkeys(names, 0), sup.restarts
    record_property("refused_s", round(missing.duration, 2))
    assert asyncio.run(_start_script_vsns(_AsyncView(erlbridge_node), names)) == ["1.0.0"] * 3
    moves: dict[str, list[str]] = {n: [] for n in names}
    for r in caplog.records:  # "<node>: <root>/bin/fixture now starts <vsn> (copied ...)"
        if " now starts " in r.getMessage():
            who = r.getMessage().split(":", 1)[0]
            moves[who].append(r.getMessage().split(" now starts ")[1].split()[0])
    # every node's start script was pointed at 2.0.0, then back at 1.0.0 (nodes interleave)
    assert moves == {n: ["2.0.0", "1.0.0"] for n in names}, moves
    for report, reason in ((missing, ("no_such_release", "9.9.9")),
                           (permanent, ("bad_status", "permanent")),
                           (unpacked, ("bad_status", "unpacked"))):
        assert not report.ok
        assert report.duration < 30 * FACTOR, report.duration  # did not wait for a restart
        for o in report.outcomes:
            assert o.status is Status.ERROR and o.step == "reboot_old_release", str(report)
            assert o.error is not None and o.error.kind == "release_handler", str(report)
            assert tuple(o.error.reason) == reason, o.error.reason
            assert o.error.before_point_of_no_return is True
    for n in names:  # same processes: the count survived
        assert erlbridge_node.rpc(n, "fixture", "vsn", [], timeout=10) == "1.0.0"
        assert erlbridge_node.rpc(n, "fixture", "state", [], timeout=10)["count"] == 1
        rels = erlbridge_node.rpc(n, "release_handler", "which_releases", [], timeout=10)
        assert sorted(_vsn_status(rels)) == [("1.0.0", "permanent"), ("2.0.0", "unpacked")], rels
