"""Journal record format and replay (pure: no I/O, time passed in).

A journal is a JSON-lines file, one record per line, append-only. Every record is a JSON
object with these keys:

``v``      format version (1)
``run``    run id (hex string), ``seq`` a per-run sequence number, ``t`` seconds (wall clock
           passed in by the writer)
``event``  one of ``run_started``, ``planned``, ``started``, ``finished``, ``run_finished``
``op``     the operation key (e.g. ``"upgrade:2.0.0"``); steps of equal ``op`` in later runs
           may be resumed from earlier ones
``node``   target node (absent for run_* events), ``step`` step name (``"upload"``,
           ``"unpack"``, ``"check_install"``, ``"install"``, ``"preflight"``, ``"eval"``, ...)
``status`` for ``finished``: a :class:`~erlbridge.driver.run_report.Status` value,
           plus ``outcome`` (the step result as JSON: value, error)

Writers flush and fsync before a step (``started``) and after it (``finished``), so a
crashed Python process leaves ``started`` without ``finished``: the node is then reported
as ``in_doubt`` at that step. A torn last line (crash during the write) is ignored.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from erlbridge.driver.rendering import render_table

__all__ = [
    "FORMAT_VERSION",
    "JournalState",
    "NodeStanding",
    "StepPhase",
    "make_record",
    "parse_lines",
    "replay",
]

FORMAT_VERSION = 1
EVENTS = frozenset({"run_started", "planned", "started", "finished", "run_finished"})


def make_record(
    *,
    run: str,
    seq: int,
    now: float,
    event: str,
    op: str,
    node: str | None = None,
    step: str | None = None,
    status: str | None = None,
    outcome: Mapping[str, Any] | None = None,
    info: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build one JSON-safe journal record (the caller serialises it as one line)."""
    if event not in EVENTS:
        raise ValueError(f"unknown journal event {event!r}")
    rec: dict[str, Any] = {
        "v": FORMAT_VERSION,
        "run": run,
        "seq": seq,
        "t": now,
        "event": event,
        "op": op,
    }
    if node is not None:
        rec["node"] = node
    if step is not None:
        rec["step"] = step
    if status is not None:
        rec["status"] = status
    if outcome is not None:
        rec["outcome"] = dict(outcome)
    if info is not None:
        rec["info"] = dict(info)
    return rec


def parse_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """Parse journal lines; blank lines and a torn (unparseable) *last* line are skipped.

    Raises ValueError for an unparseable line that is not the last one (the file was
    not written by an append-only writer, or was edited).
    """
    out: list[dict[str, Any]] = []
    pending_error: tuple[int, str] | None = None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if pending_error is not None:
            raise ValueError(f"journal line {pending_error[0]} is not JSON: {pending_error[1]!r}")
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            pending_error = (number, line[:80])
            continue
        if not isinstance(rec, dict) or rec.get("event") not in EVENTS:
            raise ValueError(f"journal line {number} is not a journal record")
        out.append(rec)
    return out


class StepPhase(enum.StrEnum):
    """Where a node stands at one step in the journal (not the point-of-no-return
    :class:`erlbridge.upgrade.Phase`)."""

    PLANNED = "planned"
    STARTED = "started"  # started, no finished record: if the run is over, in doubt
    FINISHED = "finished"


@dataclass(slots=True)
class NodeStanding:
    """Replayed state of one node: its steps in order and their last known phase/status."""

    node: str
    steps: dict[str, tuple[StepPhase, str | None]] = field(default_factory=dict)  # step -> phase
    last_step: str | None = None
    last_run: str | None = None
    outcomes: dict[str, Any] = field(default_factory=dict)  # step -> outcome JSON

    @property
    def in_doubt(self) -> list[str]:
        """Steps started but never finished (the writer died or the run was cancelled)."""
        return [s for s, (p, _) in self.steps.items() if p is StepPhase.STARTED]

    def completed(self, step: str) -> bool:
        """True when ``step`` finished with status ok (it need not be redone)."""
        phase, status = self.steps.get(step, (StepPhase.PLANNED, None))
        return phase is StepPhase.FINISHED and status == "ok"

    @property
    def state(self) -> str:
        """One word: ``ok`` (all finished ok), the failing status, ``in_doubt`` or ``planned``."""
        if self.in_doubt:
            return "in_doubt"
        statuses = [st for p, st in self.steps.values() if p is StepPhase.FINISHED]
        for st in statuses:
            if st != "ok":
                return str(st)
        if any(p is StepPhase.PLANNED for p, _ in self.steps.values()):
            return "planned" if not statuses else "incomplete"
        return "ok" if statuses else "planned"


@dataclass(slots=True)
class JournalState:
    """Result of :func:`replay`: per-node standings, run ids in order, and run summaries."""

    nodes: dict[str, NodeStanding] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)
    ops: dict[str, str] = field(default_factory=dict)  # run -> op
    finished_runs: set[str] = field(default_factory=set)

    def standing(self, node: str) -> NodeStanding:
        return self.nodes.setdefault(node, NodeStanding(node))

    def completed(self, node: str, step: str) -> bool:
        st = self.nodes.get(node)
        return st is not None and st.completed(step)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": [
                {"run": r, "op": self.ops.get(r), "finished": r in self.finished_runs}
                for r in self.runs
            ],
            "nodes": {
                n: {
                    "state": s.state,
                    "last_step": s.last_step,
                    "in_doubt": s.in_doubt,
                    "steps": {k: {"phase": str(p), "status": st} for k, (p, st) in s.steps.items()},
                }
                for n, s in self.nodes.items()
            },
        }

    def to_table(self) -> str:
        rows = []
        for n, s in self.nodes.items():
            steps = ", ".join(
                f"{k}={st if p is StepPhase.FINISHED else p}" for k, (p, st) in s.steps.items()
            )
            rows.append([n, s.state, s.last_step or "", steps])
        return render_table(("node", "state", "last step", "steps"), rows)

    def __str__(self) -> str:
        return self.to_table()


def replay(records: Iterable[Mapping[str, Any]], *, op: str | None = None) -> JournalState:
    """Fold records into where each node stands.

    With ``op`` only records of that operation key are used (that is how a resumed run
    finds the steps it need not redo). Later records override earlier ones, so a step
    that failed in run 1 and succeeded in run 2 is completed.
    """
    state = JournalState()
    for rec in records:
        if op is not None and rec.get("op") != op:
            continue
        run = str(rec.get("run"))
        event = rec["event"]
        if run not in state.ops:
            state.runs.append(run)
            state.ops[run] = str(rec.get("op"))
        if event == "run_finished":
            state.finished_runs.add(run)
            continue
        node, step = rec.get("node"), rec.get("step")
        if event == "run_started" or node is None or step is None:
            continue
        st = state.standing(str(node))
        st.last_run = run
        if event == "planned":
            # A plan never downgrades what an earlier run already finished.
            st.steps.setdefault(step, (StepPhase.PLANNED, None))
            continue
        if event == "started":
            st.steps[step] = (StepPhase.STARTED, None)
        else:
            st.steps[step] = (StepPhase.FINISHED, rec.get("status"))
            if "outcome" in rec:
                st.outcomes[step] = rec["outcome"]
        st.last_step = step
    return state
