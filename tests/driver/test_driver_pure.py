"""Unit tests for the driver's pure logic: outcomes, journal records, barriers, policies."""

from __future__ import annotations

import json

import pytest

from erlbridge.driver.barrier_book import BarrierBook, unknown_nodes
from erlbridge.driver.journal_records import StepPhase as Phase
from erlbridge.driver.journal_records import make_record, parse_lines, replay
from erlbridge.driver.policy import Deadlines, Policy, Scheduler
from erlbridge.driver.rendering import jsonable
from erlbridge.driver.replies import (
    classify_check_script,
    classify_eval_script,
    install_error_guess,
)
from erlbridge.driver.run_report import NodeError, NodeOutcome, RunReport, Status, StepResult
from erlbridge.exceptions import UpgradeFailed
from erlbridge.term import Atom

A, B, C, PY = "a@h", "b@h", "c@h", "py@h"


# -- outcomes -----------------------------------------------------------------------


def _report() -> RunReport:
    ok = NodeOutcome.from_steps(A, [StepResult("eval", Status.OK, 0.5, [("m", "soft_purge")])])
    bad = NodeOutcome.from_steps(
        B,
        [
            StepResult("upload", Status.OK, 0.1, "done"),
            StepResult("install", Status.ERROR, 0.2, None,
                       NodeError("release_handler", ("code_change_failed", 1), "", False)),
            StepResult("make_permanent", Status.SKIPPED, 0.0),
        ],
    )
    return RunReport("upgrade 2.0.0", (ok, bad, NodeOutcome(C, Status.SKIPPED)), duration=1.0)


def test_outcome_from_steps_first_failure_decides() -> None:
    r = _report()
    assert r[A].status is Status.OK and r[A].value == [("m", "soft_purge")]
    assert r[B].status is Status.ERROR and r[B].step == "install"
    assert r[B].before_point_of_no_return is False
    assert r[B].value == "done"  # value of the last successful step
    assert r[B].duration == pytest.approx(0.3)
    assert not r.ok and [o.node for o in r.failures] == [B, C]
    assert r.counts()["ok"] == 1 and r.counts()["skipped"] == 1


def test_report_renderings() -> None:
    r = _report()
    table = str(r)
    assert "upgrade 2.0.0" in table and "code_change_failed" in table and "after PONR" in table
    assert table.splitlines()[1].split()[0] == "node"
    d = json.loads(r.to_json())
    assert d["outcomes"][1]["error"]["reason"] == ["code_change_failed", 1]
    assert d["outcomes"][1]["error"]["before_point_of_no_return"] is False
    assert d["ok"] is False
    h = r._repr_html_()
    assert h.startswith("<table>") and "<td>b@h</td>" in h
    bad = RunReport("x", (NodeOutcome(A, Status.ERROR, error=NodeError("k", "<script>")),))
    assert "<script>" not in bad._repr_html_()


def test_raise_for_failures() -> None:
    r = _report()
    with pytest.raises(UpgradeFailed) as ei:
        r.raise_for_failures()
    assert ei.value.report is r
    good = RunReport("x", (NodeOutcome(A, Status.OK),))
    assert good.raise_for_failures() is good


def test_jsonable_terms() -> None:
    assert jsonable((b"abc", b"\xff", {1: [2]}, None)) == ["abc", "<<ff>>", {"1": [2]}, None]


# -- results classification -------------------------------------------------------------


def test_classify_eval_script() -> None:
    ok, err_, exit_ = Atom("ok"), Atom("error"), Atom("EXIT")
    assert classify_eval_script((ok, [])) == (Status.OK, [], None)
    st, v, _ = classify_eval_script((ok, [(Atom("m"), Atom("soft_purge"))]))
    assert st is Status.OK and v == [("m", "soft_purge")]
    st, _, err = classify_eval_script((err_, (Atom("old_processes"), Atom("m"))))
    assert st is Status.ERROR and err is not None and err.before_point_of_no_return is True
    st, _, err = classify_eval_script((exit_, (Atom("code_change_failed"), 1, 2, 3, 4)))
    assert err is not None and err.before_point_of_no_return is False
    st, v, err = classify_eval_script(Atom("restart_emulator"))
    assert st is Status.OK and v == "restart_emulator"
    st, _, err = classify_eval_script(42)
    assert err is not None and err.before_point_of_no_return is None
    assert classify_check_script((ok, ["m"]))[1] == ["m"]
    err2 = classify_check_script((err_, "x"))[2]
    assert err2 is not None and err2.before_point_of_no_return is True


def test_install_error_guess() -> None:
    assert install_error_guess((Atom("no_such_file"), "x")) is True
    assert install_error_guess((Atom("code_change_failed"), 1, 2, 3, 4)) is False
    assert install_error_guess((Atom("EXIT"), (Atom("badarg"), []))) is None


# -- journal records ------------------------------------------------------------------


def _rec(seq: int, event: str, node: str | None = None, step: str | None = None,
         status: str | None = None, run: str = "r1", op: str = "op") -> dict[str, object]:
    return make_record(run=run, seq=seq, now=float(seq), event=event, op=op, node=node,
                       step=step, status=status)


def test_replay_standing_and_in_doubt() -> None:
    recs = [
        _rec(1, "run_started"),
        _rec(2, "planned", A, "install"), _rec(3, "planned", B, "install"),
        _rec(4, "started", A, "install"), _rec(5, "started", B, "install"),
        _rec(6, "finished", A, "install", "ok"),
    ]
    st = replay(recs)
    assert st.nodes[A].state == "ok" and st.completed(A, "install")
    assert st.nodes[B].state == "in_doubt" and st.nodes[B].in_doubt == ["install"]
    assert not st.completed(B, "install")
    assert st.runs == ["r1"] and "r1" not in st.finished_runs
    # a second run of the same op finishing B's step completes it; planned never downgrades
    recs += [_rec(1, "planned", A, "install", run="r2"), _rec(2, "started", B, "install", run="r2"),
             _rec(3, "finished", B, "install", "error", run="r2"),
             _rec(4, "run_finished", run="r2")]
    st = replay(recs)
    assert st.completed(A, "install") and st.nodes[B].state == "error"
    assert st.finished_runs == {"r2"}
    assert replay(recs, op="other").nodes == {}
    assert "in_doubt" not in st.to_table() and json.dumps(st.to_dict())


def test_parse_lines_torn_tail() -> None:
    lines = [json.dumps(_rec(1, "run_started")), "", json.dumps(_rec(2, "planned", A, "x")),
             '{"v":1,"run":"r1","se']
    assert len(parse_lines(lines)) == 2
    with pytest.raises(ValueError):
        parse_lines([lines[0], "garbage", lines[2]])
    with pytest.raises(ValueError):
        make_record(run="r", seq=1, now=0.0, event="bogus", op="x")
    assert replay(parse_lines(lines)).nodes[A].steps["x"] == (Phase.PLANNED, None)


# -- barriers -------------------------------------------------------------------------


def test_barrier_releases_when_all_listed_arrived() -> None:
    book = BarrierBook.create([A, B, C], PY)
    assert book.arrive("s1", A, [A, B, C], now=0, timeout=10) == []
    assert book.arrive("s1", B, [A, B, C], now=1, timeout=10) == []
    rel = book.arrive("s1", C, [A, B, C, PY], now=2, timeout=10)
    assert sorted((r.node, r.ok) for r in rel) == [(A, True), (B, True), (C, True)]
    assert book.waiting() == []
    # a second barrier is independent; arrivals are remembered (late waiter passes at once)
    assert book.arrive("s2", A, [A, B], now=3, timeout=10) == []
    assert [r.ok for r in book.arrive("s2", B, [A, B], now=3, timeout=10)] == [True, True]
    assert [r.ok for r in book.arrive("s2", C, [A, B], now=4, timeout=10)] == [True]


def test_barrier_failed_node_and_timeout_and_cancel() -> None:
    book = BarrierBook.create([A, B, C], PY)
    book.arrive("s", A, [A, B, C], now=0, timeout=10)
    book.arrive("s", B, [A, B, C], now=0, timeout=5)
    assert book.next_deadline() == 5
    rel = book.node_gone(C, "nodedown", now=1)
    assert {(r.node, r.ok, r.reason) for r in rel} == {
        (A, False, ("barrier_node_failed", "s", C)), (B, False, ("barrier_node_failed", "s", C))}
    book2 = BarrierBook.create([A, B], PY)
    book2.arrive("s", A, [A, B], now=0, timeout=5)
    assert book2.expire(4.9) == []
    (r,) = book2.expire(5.0)
    assert r.reason == ("barrier_timeout", "s", (B,)) and not r.ok
    book3 = BarrierBook.create([A, B], PY)
    book3.arrive("s", A, [A, B], now=0, timeout=5)
    assert [x.reason for x in book3.cancel()] == [("barrier_cancelled", "s")]
    assert book3.arrive("t", B, [A, B], now=0, timeout=5)[0].reason == ("barrier_cancelled", "t")
    # a listed node that is not a participant fails the waiter at once
    book4 = BarrierBook.create([A], PY)
    (r,) = book4.arrive("s", A, [A, "x@h"], now=0, timeout=5)
    assert r.reason == ("barrier_unknown_node", "s", "x@h")
    assert unknown_nodes([A, "x@h", PY], [A], PY) == {"x@h"}


def test_barrier_gone_after_arrival_is_harmless() -> None:
    book = BarrierBook.create([A, B], PY)
    book.arrive("s", B, [A, B], now=0, timeout=5)
    book.node_gone(B, "done", now=0)  # B already arrived at s: A must still pass
    (r,) = book.arrive("s", A, [A, B], now=1, timeout=5)
    assert r.ok


# -- policies -------------------------------------------------------------------------


def _drive(s: Scheduler, results: dict[str, bool]) -> list[list[str]]:
    waves = []
    while not s.done:
        wave = s.take()
        waves.append(wave)
        assert wave, "scheduler stalled"
        for n in wave:
            s.finish(n, results[n])
    return waves


def test_scheduler_concurrency_and_canary() -> None:
    nodes = [f"n{i}" for i in range(5)]
    ok = dict.fromkeys(nodes, True)
    assert _drive(Scheduler.create(nodes, Policy(concurrency=2)), ok) == [
        ["n0", "n1"], ["n2", "n3"], ["n4"]]
    assert _drive(Scheduler.create(nodes, Policy()), ok) == [nodes]
    assert _drive(Scheduler.create(nodes, Policy(canary=True)), ok) == [["n0"], nodes[1:]]
    s = Scheduler.create(nodes, Policy(canary=True))
    assert _drive(s, {**ok, "n0": False}) == [["n0"]] and s.skipped == nodes[1:]


def test_scheduler_stop_on_first_failure() -> None:
    nodes = [f"n{i}" for i in range(5)]
    res = {**dict.fromkeys(nodes, True), "n1": False}
    s = Scheduler.create(nodes, Policy(concurrency=2, stop_on_first_failure=True))
    assert _drive(s, res) == [["n0", "n1"]] and s.skipped == ["n2", "n3", "n4"]
    s = Scheduler.create(nodes, Policy(concurrency=2))
    assert len(_drive(s, res)) == 3 and s.skipped == []
    s = Scheduler.create(nodes, Policy(concurrency=1))
    assert s.take() == ["n0"] and s.take() == []
    s.stop()
    assert s.skipped == nodes[1:] and not s.done
    s.finish("n0", True)
    assert s.done
    with pytest.raises(ValueError):
        Scheduler.create(["a", "a"], Policy())
    with pytest.raises(ValueError):
        Policy(concurrency=0)


def test_deadlines() -> None:
    d = Deadlines(start=100.0, node_timeout=10.0, overall_timeout=15.0)
    assert d.for_node(100.0) == 10.0 and d.for_node(110.0) == 5.0 and d.for_node(120.0) == 0.0
    assert d.expired(115.0) and not d.expired(114.9)
    assert Deadlines(0.0, 3.0, None).for_node(1e9) == 3.0
