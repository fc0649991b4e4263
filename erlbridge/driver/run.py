"""One operation run of the driver: journal, deadlines, steps, phases and the report (I/O).

Every public :class:`~erlbridge.driver.driver.Driver` operation builds per-node
*units* (async functions that run one or more steps on one node) and hands them to
:meth:`Run.two_phase`, which runs the prepare phase on every target, then (if all passed
and not ``dry_run``) the execute phase under the policy, and returns the
:class:`RunReport`. See :mod:`erlbridge.driver.driver` for the contracts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from erlbridge.driver.journal import Journal
from erlbridge.driver.journal_records import JournalState
from erlbridge.driver.policy import Deadlines, Policy, Scheduler
from erlbridge.driver.remote_calls import StepFailed
from erlbridge.driver.run_report import NodeError, NodeOutcome, RunReport, Status, StepResult
from erlbridge.exceptions import ScriptError

__all__ = ["Run", "UnitFn", "now"]

UnitFn = Callable[["Run", str, float], Awaitable[None]]


def now() -> float:
    """Loop time: the clock of every driver deadline."""
    return asyncio.get_running_loop().time()


@dataclass(slots=True)
class Run:
    """State of one operation run: journal, deadlines, per-node steps and values.

    Settings (``targets``, ``policy``, ``dry_run``, ``log``) are the driver's at the start
    of the run. Create with :meth:`start`, which writes the ``run_started`` record.
    """

    op: str
    targets: list[str]
    policy: Policy
    dry_run: bool
    log: logging.Logger
    journal: Journal
    previous: JournalState
    resume: bool
    deadlines: Deadlines
    steps: dict[str, list[StepResult]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> scratch values
    outputs: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        op: str,
        *,
        targets: list[str],
        policy: Policy,
        dry_run: bool,
        journal_path: str | os.PathLike[str] | None,
        resume: bool,
        log: logging.Logger,
    ) -> Run:
        journal = Journal(journal_path, op=op)
        previous = journal.previous() if resume else JournalState()
        run = cls(
            op,
            targets,
            policy,
            dry_run,
            log,
            journal,
            previous,
            resume,
            Deadlines(now(), policy.node_timeout, policy.overall_timeout),
        )
        journal.write(
            "run_started",
            info={
                "targets": targets,
                "dry_run": dry_run,
                "policy": _policy_dict(policy),
            },
        )
        return run

    def ok(self, node: str) -> bool:
        return all(s.status is Status.OK for s in self.steps.get(node, []))

    async def step(self, node: str, step: str, fn: Callable[[], Awaitable[Any]]) -> bool:
        """Run one step on one node with journal records; True when it ended ok."""
        if self.resume and self.previous.completed(node, step):
            prev = self.previous.nodes[node].outcomes.get(step, {})
            self.steps.setdefault(node, []).append(
                StepResult(step, Status.OK, 0.0, prev.get("value"), resumed=True)
            )
            self.journal.write(
                "finished",
                node=node,
                step=step,
                status="ok",
                outcome={"resumed": True, "value": prev.get("value")},
            )
            return True
        self.journal.write("started", node=node, step=step)
        t0 = now()
        try:
            value = await fn()
            res = StepResult(step, Status.OK, now() - t0, value)
        except StepFailed as exc:
            res = StepResult(step, exc.status, now() - t0, exc.value, exc.error)
        except TimeoutError:
            res = StepResult(
                step,
                Status.TIMEOUT,
                now() - t0,
                None,
                NodeError("timeout", "deadline", f"{step} exceeded its deadline"),
            )
        except (ScriptError, OSError, ValueError) as exc:
            res = StepResult(
                step,
                Status.ERROR,
                now() - t0,
                None,
                NodeError("internal", type(exc).__name__, str(exc)),
            )
        self.steps.setdefault(node, []).append(res)
        self.journal.write(
            "finished", node=node, step=step, status=str(res.status), outcome=res.to_dict()
        )
        self.log.info("%s %s on %s: %s", self.op, step, node, res.status)
        return res.status is Status.OK

    async def phase(
        self,
        name: str,
        nodes: Sequence[str],
        unit: UnitFn,
        *,
        policy: Policy,
        planned: Sequence[str],
    ) -> None:
        """Run ``unit(run, node, deadline)`` on ``nodes`` under ``policy``.

        A unit runs one or more steps (via :meth:`step`). Nodes the scheduler never
        starts get a ``skipped`` result for every ``planned`` step.
        """
        for n in nodes:
            for s in planned:
                self.journal.write("planned", node=n, step=s)
        sched = Scheduler.create(list(nodes), policy)
        running: dict[asyncio.Task[None], str] = {}

        async def one(n: str) -> None:
            deadline = now() + self.deadlines.for_node(now())
            try:
                async with asyncio.timeout_at(deadline + 1.0):  # backstop: rpcs use deadline
                    await unit(self, n, deadline)
            except TimeoutError:
                self.steps.setdefault(n, []).append(
                    StepResult(
                        name,
                        Status.TIMEOUT,
                        0.0,
                        None,
                        NodeError("timeout", "deadline", f"{name} exceeded the node deadline"),
                    )
                )
            except Exception as exc:  # a driver bug must not take the other nodes down
                self.log.exception("%s on %s failed unexpectedly", name, n)
                self.steps.setdefault(n, []).append(
                    StepResult(
                        name,
                        Status.ERROR,
                        0.0,
                        None,
                        NodeError("internal", type(exc).__name__, f"{name}: {exc!r}"),
                    )
                )

        try:
            while True:
                if self.deadlines.expired(now()):
                    sched.stop()
                for n in sched.take():
                    running[asyncio.create_task(one(n), name=f"{name} {n}")] = n
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    n = running.pop(t)
                    t.result()
                    sched.finish(n, self.ok(n))
        finally:
            for t in running:
                t.cancel()
            for t in running:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        why = "overall deadline passed" if self.deadlines.expired(now()) else "policy"
        for n in sched.skipped:
            self.skip(n, planned, f"{name} not started ({why})")

    def skip(self, node: str, steps: Sequence[str], why: str) -> None:
        for s in steps:
            self.steps.setdefault(node, []).append(
                StepResult(s, Status.SKIPPED, 0.0, None, NodeError("skipped", why, why))
            )
            self.journal.write(
                "finished", node=node, step=s, status="skipped", outcome={"note": why}
            )

    def report(
        self,
        prep_steps: Sequence[str],
        dry_run: bool,
        extra: Mapping[str, Any] | None = None,
    ) -> RunReport:
        outcomes, preflight = [], []
        for n in self.targets:
            steps = self.steps.get(n, [])
            output = "".join(self.outputs.get(n, []))
            prep = [s for s in steps if s.step in prep_steps]
            preflight.append(NodeOutcome.from_steps(n, prep, output=output))
            outcomes.append(NodeOutcome.from_steps(n, steps, output=output))
        report = RunReport(
            self.op,
            tuple(outcomes),
            now() - self.deadlines.start,
            tuple(preflight) if prep_steps else (),
            dry_run,
            self.journal.run,
            dict(extra or {}),
        )
        self.journal.write("run_finished", info={"counts": report.counts(), "ok": report.ok})
        self.journal.close()
        return report

    async def two_phase(
        self,
        prep: Sequence[str],
        prep_unit: UnitFn | None,
        exe: Sequence[str],
        exe_unit: UnitFn,
        *,
        extra: Mapping[str, Any] | None = None,
        around_exec: Callable[[Run], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    ) -> RunReport:
        """The prepare phase (``prep_unit``, steps ``prep``) on every target, then, unless
        ``dry_run`` or a target failed (its execute steps are then ``skipped`` everywhere),
        the execute phase (``exe_unit``, steps ``exe``) under the policy, inside
        ``around_exec(run)`` if given. The journal is closed on every exit path."""
        try:
            if prep_unit is not None:
                prep_policy = Policy(
                    self.policy.concurrency, self.policy.node_timeout, self.policy.overall_timeout
                )
                await self.phase(
                    "prepare", self.targets, prep_unit, policy=prep_policy, planned=prep
                )
                failed = [n for n in self.targets if not self.ok(n)]
                if self.dry_run:
                    return self.report(prep, True, extra)
                if failed:
                    for n in self.targets:
                        self.skip(n, exe, f"preflight failed on {', '.join(failed)}")
                    return self.report(prep, False, extra)
            elif self.dry_run:
                return self.report(prep, True, extra)
            cm = around_exec(self) if around_exec is not None else contextlib.nullcontext()
            async with cm:
                await self.phase("execute", self.targets, exe_unit, policy=self.policy, planned=exe)
            return self.report(prep, False, extra)
        finally:
            self.journal.close()


def _policy_dict(p: Policy) -> dict[str, Any]:
    return {
        "concurrency": p.concurrency,
        "node_timeout": p.node_timeout,
        "overall_timeout": p.overall_timeout,
        "stop_on_first_failure": p.stop_on_first_failure,
        "canary": p.canary,
    }
