"""Per-node outcomes and the run report (pure: no I/O, no clock).

A driver run never raises for one node's failure (docs/internals/architecture.md#errors):
it returns a
:class:`RunReport` holding one :class:`NodeOutcome` per target. Callers that want an
exception opt in with :meth:`RunReport.raise_for_failures`.

Renderings: ``str(report)`` / :meth:`RunReport.to_table` (plain text, fixed-width),
:meth:`RunReport.to_dict` / :meth:`RunReport.to_json` (JSON-safe: Erlang terms become
strings, lists, dicts; see :func:`~erlbridge.driver.rendering.jsonable`), and
:meth:`RunReport._repr_html_` for notebooks.
"""

from __future__ import annotations

import enum
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from erlbridge.driver.rendering import jsonable, render_html, render_table, term_text
from erlbridge.exceptions import UpgradeFailed
from erlbridge.upgrade import Phase

__all__ = [
    "NodeError",
    "NodeOutcome",
    "RunReport",
    "Status",
    "StepResult",
    "ponr_flag",
]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.outcome")


class Status(enum.StrEnum):
    """Final state of one node in one run (or one step)."""

    OK = "ok"
    ERROR = "error"  # the node answered with a failure (typed in NodeError)
    TIMEOUT = "timeout"  # no answer before the per-node or overall deadline
    NODEDOWN = "nodedown"  # the connection to the node was lost or never made
    SKIPPED = "skipped"  # not attempted (policy: stop on first failure, failed canary, preflight)

    @property
    def failed(self) -> bool:
        """True for every status except ``ok`` and ``skipped``."""
        return self not in (Status.OK, Status.SKIPPED)


def _short(term: Any, width: int = 60) -> str:
    return term_text(term, width)


# The driver decides where a failure happened as an erlbridge.upgrade.Phase; reports, their
# JSON and the journal show it as the bool ``before_point_of_no_return``. This table is
# the only translation between the two.
_PONR_FLAG: dict[Phase, bool | None] = {
    Phase.BEFORE_POINT_OF_NO_RETURN: True,
    Phase.AFTER_POINT_OF_NO_RETURN: False,
    Phase.UNKNOWN: None,
}
_PONR_PHASE = {flag: phase for phase, flag in _PONR_FLAG.items()}
_PONR_NOTE = {
    Phase.BEFORE_POINT_OF_NO_RETURN: " (before PONR)",
    Phase.AFTER_POINT_OF_NO_RETURN: " (after PONR)",
    Phase.UNKNOWN: "",
}


def ponr_flag(phase: Phase | None) -> bool | None:
    """``before_point_of_no_return`` for ``phase``: True before, False after, None unknown."""
    return None if phase is None else _PONR_FLAG[phase]


@dataclass(frozen=True, slots=True)
class NodeError:
    """A typed failure on one node.

    ``kind`` says where it came from: ``"release_handler"`` (an ``{error, R}`` reply),
    ``"eval_script"`` / ``"check_script"`` (release_handler_1 results), ``"badrpc"``,
    ``"exception"`` (the remote function raised), ``"barrier"``, ``"upload"``,
    ``"preflight"``, ``"internal"`` (a Python-side bug or unexpected reply).
    ``reason`` is the Erlang reason as a term. ``before_point_of_no_return`` is True when
    the node is known to still run its old code (nothing after PONR ran), False when the
    failure happened after PONR (half-upgraded; a release-mode node restarts), None when
    it is unknown or irrelevant (e.g. an upload failed); :attr:`phase` is the same as an
    :class:`erlbridge.upgrade.Phase`, and :meth:`at` builds one from a phase.
    """

    kind: str
    reason: Any
    message: str = ""
    before_point_of_no_return: bool | None = None

    @classmethod
    def at(cls, phase: Phase, kind: str, reason: Any, message: str = "") -> NodeError:
        """A failure in ``phase`` (relative to point_of_no_return)."""
        return cls(kind, reason, message, ponr_flag(phase))

    @property
    def phase(self) -> Phase:
        """Where the failure happened relative to point_of_no_return."""
        return _PONR_PHASE[self.before_point_of_no_return]

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "reason": jsonable(self.reason),
            "reason_text": _short(self.reason, 400),
            "message": self.message,
            "before_point_of_no_return": self.before_point_of_no_return,
        }

    def __str__(self) -> str:
        ponr = _PONR_NOTE[self.phase]
        reason = _short(self.reason, 200)
        # The reason once: a message that already says it (``node x is down:
        # connection_closed``) is not followed by it again.
        said = (
            bool(reason)
            and re.search(rf"(?<![\w']){re.escape(reason)}(?![\w'])", self.message) is not None
        )
        text = (
            f"{self.message}: {reason}" if self.message and not said else (self.message or reason)
        )
        return f"{self.kind}: {text}{ponr}"


@dataclass(frozen=True, slots=True)
class StepResult:
    """One step on one node: name, status, seconds taken, value or error."""

    step: str
    status: Status
    duration: float
    value: Any = None
    error: NodeError | None = None
    resumed: bool = False  # taken from the journal of an earlier run, not executed

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "status": str(self.status),
            "duration": round(self.duration, 6),
            "value": jsonable(self.value),
            "error": None if self.error is None else self.error.to_dict(),
            "resumed": self.resumed,
        }


@dataclass(frozen=True, slots=True)
class NodeOutcome:
    """What happened on one node during a run.

    ``status`` is the final status; ``step`` the step the node ended in (the failing step,
    or the last one); ``value`` the value of the last successful step (e.g. unpurged
    modules, the from-version of an install), or of the failing step when it has one
    (e.g. ``which_releases`` after a node restarted); ``error`` is set unless status is ok or
    skipped; ``duration`` is seconds spent on the node; ``output`` is io output captured
    on the node; ``steps`` lists every step in order.
    """

    node: str
    status: Status
    step: str = ""
    value: Any = None
    error: NodeError | None = None
    duration: float = 0.0
    output: str = ""
    steps: tuple[StepResult, ...] = ()
    note: str = ""

    @property
    def ok(self) -> bool:
        return self.status is Status.OK

    @property
    def before_point_of_no_return(self) -> bool | None:
        return None if self.error is None else self.error.before_point_of_no_return

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "status": str(self.status),
            "step": self.step,
            "value": jsonable(self.value),
            "error": None if self.error is None else self.error.to_dict(),
            "duration": round(self.duration, 6),
            "output": self.output,
            "steps": [s.to_dict() for s in self.steps],
            "note": self.note,
        }

    @staticmethod
    def from_steps(
        node: str, steps: Sequence[StepResult], *, output: str = "", note: str = ""
    ) -> NodeOutcome:
        """Fold step results into an outcome: the first non-ok step decides the status."""
        if not steps:
            return NodeOutcome(node, Status.SKIPPED, note=note or "no steps")
        duration = sum(s.duration for s in steps)
        value: Any = None
        for s in steps:
            if s.status is not Status.OK:
                # A failed step may still know something (e.g. which_releases after a
                # restart): it wins over the last successful step's value.
                if s.value is not None:
                    value = s.value
                return NodeOutcome(
                    node, s.status, s.step, value, s.error, duration, output, tuple(steps), note
                )
            value = s.value
        last = steps[-1]
        return NodeOutcome(
            node, Status.OK, last.step, value, None, duration, output, tuple(steps), note
        )


@dataclass(frozen=True, slots=True)
class RunReport:
    """The result of one driver operation on all targets, one outcome per node.

    ``operation`` names it (``"run_script"``, ``"upgrade 2.0.0"``, ...). ``preflight`` holds
    the preflight outcomes when the operation had a preflight phase; ``outcomes`` the
    final ones (a node that failed preflight appears in both). ``dry_run`` is True when
    only the preflight ran. ``duration`` is the wall time of the whole operation.
    """

    operation: str
    outcomes: tuple[NodeOutcome, ...]
    duration: float = 0.0
    preflight: tuple[NodeOutcome, ...] = ()
    dry_run: bool = False
    run_id: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when every node is ok (a dry run: every preflight passed)."""
        return all(o.status is Status.OK for o in self.outcomes)

    def __bool__(self) -> bool:  # a report is always a real object; use .ok for success
        return True

    @property
    def failures(self) -> list[NodeOutcome]:
        return [o for o in self.outcomes if o.status is not Status.OK]

    @property
    def by_node(self) -> dict[str, NodeOutcome]:
        return {o.node: o for o in self.outcomes}

    def __getitem__(self, node: str) -> NodeOutcome:
        return self.by_node[node]

    def counts(self) -> dict[str, int]:
        out = {str(s): 0 for s in Status}
        for o in self.outcomes:
            out[str(o.status)] += 1
        return out

    def raise_for_failures(self) -> RunReport:
        """Raise :class:`UpgradeFailed` (with this report) unless every node is ok."""
        if not self.ok:
            bad = ", ".join(f"{o.node}={o.status}" for o in self.failures)
            raise UpgradeFailed(self, f"{self.operation} failed on: {bad}")
        return self

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation": self.operation,
            "run_id": self.run_id,
            "ok": self.ok,
            "dry_run": self.dry_run,
            "duration": round(self.duration, 6),
            "counts": self.counts(),
            "preflight": [o.to_dict() for o in self.preflight],
            "outcomes": [o.to_dict() for o in self.outcomes],
            "extra": jsonable(dict(self.extra)),
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    _HEADERS = ("node", "status", "step", "seconds", "value / error")

    def _rows(self) -> list[list[str]]:
        rows = []
        for o in self.outcomes:
            detail = str(o.error) if o.error is not None else _short(o.value)
            if o.note:
                detail = f"{detail} [{o.note}]" if detail else o.note
            rows.append([o.node, str(o.status), o.step, f"{o.duration:.3f}", detail])
        return rows

    def _caption(self) -> str:
        c = self.counts()
        parts = ", ".join(f"{n} {k}" for k, n in c.items() if n)
        dry = " (dry run)" if self.dry_run else ""
        return f"{self.operation}{dry}: {parts or 'no nodes'} in {self.duration:.3f} s"

    def to_table(self) -> str:
        return self._caption() + "\n" + render_table(self._HEADERS, self._rows())

    def __str__(self) -> str:
        return self.to_table()

    def _repr_html_(self) -> str:
        return render_html(self._HEADERS, self._rows(), self._caption())
