"""Unit tests for direct-mode script analysis/rewriting, the journal writer and the
readiness report model (no Erlang node needed)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from erlbridge.driver import Journal, NodeReadiness, ReadinessReport, read_journal
from erlbridge.driver.script_rewrite import (
    find_barriers,
    rewrite_barriers,
    script_libs,
    script_terms,
    strip_barriers,
    suspended_modules,
    touched_modules,
)
from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString, encode
from erlbridge.upgrade import (
    MFA,
    CodeChange,
    Load,
    LoadObjectCode,
    PointOfNoReturn,
    Purge,
    Resume,
    Script,
    Suspend,
    SyncNodes,
)

NODES = ["a@h", "b@h"]


def _script() -> Script:
    return Script([
        LoadObjectCode("app", "2", ["m1", "m2"]),
        PointOfNoReturn(),
        SyncNodes("s1", NODES),
        Suspend(["m1"]), Load("m1"), CodeChange([("m1", [])]), Resume(["m1"]),
        Purge(["m3"]),
        SyncNodes(Atom("s2"), NODES),
    ])


def test_driver_rewrite_barriers_become_gen_server_calls() -> None:
    terms = script_terms(_script())
    bars = find_barriers(terms)
    assert [(b.index, b.nodes) for b in bars] == [(2, ("a@h", "b@h")), (8, ("a@h", "b@h"))]
    out = rewrite_barriers(terms, barrier_name="bar_1", py_node="py@h", target="a@h",
                           timeout_ms=5000)
    assert len(out) == len(terms)
    apply_ = out[2]
    assert apply_[0] == "apply" and apply_[1][:2] == ("gen_server", "call")
    dest, req, timeout = apply_[1][2]
    assert dest == (Atom("bar_1"), Atom("py@h")) and timeout == 5000
    assert req[0] == "arrive" and req[2] == Atom("a@h") and req[3] == [Atom(n) for n in NODES]
    assert out[8][1][2][1][1] == Atom("s2")
    assert [t for i, t in enumerate(out) if i not in (2, 8)] == strip_barriers(terms)
    encode(out)  # the rewritten script is a valid term


def test_driver_rewrite_refuses_mfa_node_list() -> None:
    s = Script([LoadObjectCode("app", "2", ["m"]), PointOfNoReturn(),
                SyncNodes("x", MFA("app", "nodes", []))])
    with pytest.raises(ScriptError) as ei:
        find_barriers(script_terms(s))
    assert ei.value.rule == "sync_nodes_mfa" and ei.value.index == 2


def test_driver_script_libs_and_touched_modules() -> None:
    terms = script_terms(_script())
    assert script_libs(terms) == {"app": "2"}
    assert touched_modules(terms) == ["m1", "m2", "m3"]
    assert suspended_modules(terms) == ["m1"]
    conflict = [*terms, (Atom("load_object_code"), (Atom("app"), ErlString("3"), []))]
    with pytest.raises(ScriptError):
        script_libs(conflict)
    with pytest.raises(ScriptError):
        script_terms("not a script")


def test_driver_journal_writer_roundtrip(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "j.jsonl"
    with Journal(path, op="upgrade:x") as j:
        j.write("run_started", info={"targets": ["a@h"]})
        j.write("planned", node="a@h", step="install")
        j.write("started", node="a@h", step="install")
        j.write("finished", node="a@h", step="install", status="ok", outcome={"value": [1]})
        j.write("run_finished")
    lines = path.read_text().splitlines()
    assert len(lines) == 5 and json.loads(lines[0])["event"] == "run_started"
    assert [json.loads(x)["seq"] for x in lines] == [1, 2, 3, 4, 5]
    st = read_journal(path)
    assert st.completed("a@h", "install") and st.nodes["a@h"].outcomes["install"]["value"] == [1]
    # a second run appends (never truncates) and sees the first through previous()
    j2 = Journal(path, op="upgrade:x")
    assert j2.previous().completed("a@h", "install")
    assert Journal(path, op="other").previous().nodes == {}
    j2.write("started", node="b@h", step="install")
    j2.close()
    # a torn final line (crash during a write) is ignored
    with open(path, "a") as f:
        f.write('{"v": 1, "run"')
    st = read_journal(path)
    assert st.nodes["b@h"].in_doubt == ["install"] and len(st.runs) == 2
    assert Journal(None, op="x").previous().nodes == {}
    os.remove(path)


def test_driver_readiness_report_renderings() -> None:
    good = NodeReadiness("a@h", "25", "13.1.5", (("demo", "1", "permanent"),),
                         (("kernel", "8.5.3"), ("demo", "1")), ("m1",), (),
                         "/r/releases", True)
    busy = NodeReadiness("b@h", "25", "13.1.5", old_code_modules=("m1",),
                         old_code_processes=(("m1", "<0.90.0>"),), releases_dir="/r",
                         releases_dir_writable=False)
    down = NodeReadiness("c@h", error="nodedown: c@h")
    rep = ReadinessReport((good, busy, down), ("m1",))
    assert good.ready and not busy.ready and not down.ready and not rep.ready
    text = str(rep)
    assert "1/3 nodes ready" in text and "READ-ONLY" in text and "m1@<0.90.0>" in text
    d = json.loads(rep.to_json())
    assert d["nodes"][0]["applications"] == {"kernel": "8.5.3", "demo": "1"}
    assert d["nodes"][1]["old_code_processes"] == [["m1", "<0.90.0>"]]
    assert "<td>c@h</td>" in rep._repr_html_() and rep["b@h"] is busy

