"""The upgrade driver: scripts and release operations on many nodes at once (I/O).

Contracts shared by every operation:

* **Two phases.** A *prepare* phase (offline validation, code push, ``check_script`` /
  upload, unpack, ``check_install_release``) runs on every target first. Only if every
  target passed does the *execute* phase start; otherwise every node's execute steps are
  ``skipped`` and no node was changed by the driver (note: ``check_script`` evaluates
  ``apply`` instructions placed before point_of_no_return, as OTP does). ``dry_run=True``
  stops after the prepare phase.
* **Policies** (:class:`~erlbridge.asyncio.driver.policy.Policy`) govern the execute phase:
  ``concurrency``, ``canary``, ``stop_on_first_failure``; deadlines (``node_timeout`` per
  node and phase, ``overall_timeout`` for the whole operation) bound every await. The
  prepare phase honours ``concurrency`` and deadlines but always runs on every node.
* **Never raises for a node's failure**: returns a :class:`RunReport` with one outcome per
  target. Misuse (a script that cannot run safely, e.g. ``sync_nodes`` naming a node that
  is not a target) raises :class:`ScriptError` before anything is sent.
* **Journal** (``journal=path``): planned/started/finished records per node and step,
  flushed and fsync'd around each step. With ``resume=True`` steps that an earlier run of
  the same operation finished ok are not redone (reported with ``resumed=True``).
* **Cancellation**: cancelling an operation cancels the Python-side waits; barrier
  processes are closed (waiters are released with an error) and, in release mode, the
  Python ``release_handler`` participant answers every target still installing. Work
  already started *on a target* (an rpc in flight) is not undone; the journal shows it
  as started without finished (in doubt).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erlbridge.asyncio.driver.barriers import BarrierService
from erlbridge.asyncio.driver.calls import Caller, StepFailed, charlist, text_of
from erlbridge.asyncio.driver.journal import Journal
from erlbridge.asyncio.driver.outcome import (
    NodeError,
    NodeOutcome,
    RunReport,
    Status,
    StepResult,
    jsonable,
)
from erlbridge.asyncio.driver.policy import Deadlines, Policy, Scheduler
from erlbridge.asyncio.driver.readiness import ReadinessReport, gather_readiness
from erlbridge.asyncio.driver.records import JournalState
from erlbridge.asyncio.driver.results import (
    classify_check_script,
    classify_eval_script,
    install_error_guess,
    is_tuple_tagged,
)
from erlbridge.asyncio.driver.rewrite import (
    find_barriers,
    name_of,
    rewrite_barriers,
    script_libs,
    script_terms,
    strip_barriers,
    suspended_modules,
    touched_modules,
)
from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom

__all__ = ["Driver", "discover"]

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
UnitFn = Callable[["_Ctx", str, float], Awaitable[None]]

# sha256 via crypto when the target has it; a release without crypto gets erlang:md5.
_HASH_FILE = (
    "{ok, F} = file:open(P, [read, binary, raw]),"
    " R = file:pread(F, 0, N), ok = file:close(F),"
    " B = case R of {ok, Bin} -> Bin; eof -> <<>> end,"
    " H = try crypto:hash(sha256, B) of D -> {sha256, D}"
    " catch error:_ -> {md5, erlang:md5(B)} end,"
    " {byte_size(B), H}."
)
# Does the script release_handler would run to go from the current release to V contain
# sync_nodes? (Up: V's relup, entry from Cur; down: Cur's relup, entry to V.)
_RELUP_SYNC = (
    "Cur = hd([Vc || {_, Vc, _, current} <- release_handler:which_releases()]"
    " ++ [Vp || {_, Vp, _, permanent} <- release_handler:which_releases()]),"
    ' Up = case file:consult(filename:join([D, V, "relup"])) of'
    " {ok, [{_, Ups, _}]} -> case lists:keyfind(Cur, 1, Ups) of"
    " {_, _, S1} -> S1; false -> none end; _ -> none end,"
    " Script = case Up of none ->"
    ' case file:consult(filename:join([D, Cur, "relup"])) of'
    " {ok, [{_, _, Downs}]} -> case lists:keyfind(V, 1, Downs) of"
    " {_, _, S2} -> S2; false -> [] end; _ -> [] end; _ -> Up end,"
    " lists:any(fun(I) -> is_tuple(I) andalso element(1, I) =:= sync_nodes end, Script)."
)
# Resume every supervised process of Mods (sys:resume on a running process is harmless).
_RESUME_SUSPENDED = (
    "[begin catch sys:resume(P), P end || {_, _, P, Ms} <- "
    "release_handler_1:get_supervised_procs(), is_pid(P), is_list(Ms),"
    " lists:any(fun(M) -> lists:member(M, Ms) end, Mods)]."
)
_RELDIR = (
    "case application:get_env(sasl, releases_dir) of {ok, X} -> X;"
    ' _ -> case os:getenv("RELDIR") of false -> filename:join(code:root_dir(), "releases");'
    " Y -> Y end end."
)


async def discover(
    node: Any,
    seed: str,
    *,
    include_connected: bool = False,
    filter: str | Callable[[str], bool] | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Targets from a seed node: the seed plus its ``nodes()`` (``nodes(connected)`` with
    ``include_connected``, which adds hidden nodes), minus this Python node.

    ``filter`` is a regular expression (``re.search`` on the name) or a predicate.
    Raises NodeDown / Timeout / BadRpc if the seed cannot be asked.
    """
    await node.connect(seed)
    if include_connected:
        names = await node.rpc(seed, "erlang", "nodes", [Atom("connected")], timeout=timeout)
    else:
        names = await node.rpc(seed, "erlang", "nodes", [], timeout=timeout)
    me = str(_node_name(node))
    out = [seed, *sorted(name_of(n) for n in names if name_of(n) not in (me, seed))]
    if filter is None:
        return out
    if isinstance(filter, str):
        rx = re.compile(filter)
        return [n for n in out if rx.search(n)]
    return [n for n in out if filter(n)]


def _node_name(node: Any) -> str:
    for attr in ("name", "node_name"):
        v = getattr(node, attr, None)
        if v:
            return name_of(v)
    raise TypeError("the Node has no name attribute")


@dataclass(slots=True)
class _Ctx:
    """State of one operation run: journal, deadlines, per-node steps and values."""

    op: str
    journal: Journal
    previous: JournalState
    resume: bool
    deadlines: Deadlines
    steps: dict[str, list[StepResult]] = field(default_factory=dict)
    data: dict[str, dict[str, Any]] = field(default_factory=dict)  # node -> scratch values
    outputs: dict[str, list[str]] = field(default_factory=dict)

    def ok(self, node: str) -> bool:
        return all(s.status is Status.OK for s in self.steps.get(node, []))


class Driver:
    """Run upgrades on ``targets`` through ``node`` (an :class:`erlbridge.asyncio.Node`).

    Options (keyword-only, seconds): ``concurrency`` (max nodes in flight, None = all),
    ``node_timeout`` (per node and phase), ``overall_timeout`` (whole operation),
    ``stop_on_first_failure``, ``canary`` (first target first, alone), ``dry_run``
    (prepare phase only), ``journal`` (JSON-lines path or None), ``resume`` (skip steps a
    previous run of the same operation finished ok), ``barrier_timeout`` (direct-mode
    barrier deadline; the target-side timeout too), ``restart_timeout`` (how long to wait
    for a node that restarts after a failed install), ``restart_grace`` (how long to watch
    for such a restart after an ``{error, _}`` from install_release).
    """

    def __init__(
        self,
        node: Any,
        targets: Iterable[str],
        *,
        concurrency: int | None = None,
        node_timeout: float = 60.0,
        overall_timeout: float | None = None,
        stop_on_first_failure: bool = False,
        canary: bool = False,
        dry_run: bool = False,
        journal: str | os.PathLike[str] | None = None,
        resume: bool = False,
        barrier_timeout: float = 30.0,
        restart_timeout: float = 60.0,
        restart_grace: float = 3.0,
        push_root: str = "/tmp/erlbridge-push",
        logger: logging.Logger | None = None,
    ) -> None:
        self.node = node
        self.targets = [name_of(t) for t in targets]
        if len(set(self.targets)) != len(self.targets):
            raise ValueError("duplicate target nodes")
        self.policy = Policy(
            concurrency, node_timeout, overall_timeout, stop_on_first_failure, canary
        )
        self.dry_run = dry_run
        self.journal_path = journal
        self.resume = resume
        self.barrier_timeout = barrier_timeout
        self.restart_timeout = restart_timeout
        self.restart_grace = restart_grace
        self.push_root = push_root
        self.caller = Caller(node)
        self.log = logger or globals()["logger"]

    # ------------------------------------------------------------------ machinery

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    def _ctx(self, op: str) -> _Ctx:
        journal = Journal(self.journal_path, op=op)
        previous = journal.previous() if self.resume else JournalState()
        ctx = _Ctx(
            op,
            journal,
            previous,
            self.resume,
            Deadlines(self._now(), self.policy.node_timeout, self.policy.overall_timeout),
        )
        journal.write(
            "run_started",
            info={
                "targets": self.targets,
                "dry_run": self.dry_run,
                "policy": _policy_dict(self.policy),
            },
        )
        return ctx

    async def _step(
        self, ctx: _Ctx, node: str, step: str, fn: Callable[[], Awaitable[Any]]
    ) -> bool:
        """Run one step on one node with journal records; True when it ended ok."""
        if ctx.resume and ctx.previous.completed(node, step):
            prev = ctx.previous.nodes[node].outcomes.get(step, {})
            ctx.steps.setdefault(node, []).append(
                StepResult(step, Status.OK, 0.0, prev.get("value"), resumed=True)
            )
            ctx.journal.write(
                "finished",
                node=node,
                step=step,
                status="ok",
                outcome={"resumed": True, "value": prev.get("value")},
            )
            return True
        ctx.journal.write("started", node=node, step=step)
        t0 = self._now()
        try:
            value = await fn()
            res = StepResult(step, Status.OK, self._now() - t0, value)
        except StepFailed as exc:
            res = StepResult(step, exc.status, self._now() - t0, exc.value, exc.error)
        except TimeoutError:
            res = StepResult(
                step,
                Status.TIMEOUT,
                self._now() - t0,
                None,
                NodeError("timeout", "deadline", f"{step} exceeded its deadline"),
            )
        except (ScriptError, OSError, ValueError) as exc:
            res = StepResult(
                step,
                Status.ERROR,
                self._now() - t0,
                None,
                NodeError("internal", type(exc).__name__, str(exc)),
            )
        ctx.steps.setdefault(node, []).append(res)
        ctx.journal.write(
            "finished", node=node, step=step, status=str(res.status), outcome=res.to_dict()
        )
        self.log.info("%s %s on %s: %s", ctx.op, step, node, res.status)
        return res.status is Status.OK

    async def _phase(
        self,
        ctx: _Ctx,
        name: str,
        nodes: Sequence[str],
        unit: UnitFn,
        *,
        policy: Policy,
        planned: Sequence[str],
    ) -> None:
        """Run ``unit(ctx, node, deadline)`` on ``nodes`` under ``policy``.

        A unit runs one or more steps (via :meth:`_step`). Nodes the scheduler never
        starts get a ``skipped`` result for every ``planned`` step.
        """
        for n in nodes:
            for s in planned:
                ctx.journal.write("planned", node=n, step=s)
        sched = Scheduler.create(list(nodes), policy)
        running: dict[asyncio.Task[None], str] = {}

        async def one(n: str) -> None:
            deadline = self._now() + ctx.deadlines.for_node(self._now())
            try:
                async with asyncio.timeout_at(deadline + 1.0):  # backstop: rpcs use deadline
                    await unit(ctx, n, deadline)
            except TimeoutError:
                ctx.steps.setdefault(n, []).append(
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
                ctx.steps.setdefault(n, []).append(StepResult(
                    name, Status.ERROR, 0.0, None,
                    NodeError("internal", type(exc).__name__, f"{name}: {exc!r}")))

        try:
            while True:
                if ctx.deadlines.expired(self._now()):
                    sched.stop()
                for n in sched.take():
                    running[asyncio.create_task(one(n), name=f"{name} {n}")] = n
                if not running:
                    break
                done, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for t in done:
                    n = running.pop(t)
                    t.result()
                    sched.finish(n, ctx.ok(n))
        finally:
            for t in running:
                t.cancel()
            for t in running:
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await t
        why = "overall deadline passed" if ctx.deadlines.expired(self._now()) else "policy"
        for n in sched.skipped:
            self._skip(ctx, n, planned, f"{name} not started ({why})")

    def _skip(self, ctx: _Ctx, node: str, steps: Sequence[str], why: str) -> None:
        for s in steps:
            ctx.steps.setdefault(node, []).append(
                StepResult(s, Status.SKIPPED, 0.0, None, NodeError("skipped", why, why))
            )
            ctx.journal.write(
                "finished", node=node, step=s, status="skipped", outcome={"note": why}
            )

    def _report(
        self,
        ctx: _Ctx,
        prep_steps: Sequence[str],
        dry_run: bool,
        extra: Mapping[str, Any] | None = None,
    ) -> RunReport:
        outcomes, preflight = [], []
        for n in self.targets:
            steps = ctx.steps.get(n, [])
            output = "".join(ctx.outputs.get(n, []))
            prep = [s for s in steps if s.step in prep_steps]
            preflight.append(NodeOutcome.from_steps(n, prep, output=output))
            outcomes.append(NodeOutcome.from_steps(n, steps, output=output))
        report = RunReport(
            ctx.op,
            tuple(outcomes),
            self._now() - ctx.deadlines.start,
            tuple(preflight) if prep_steps else (),
            dry_run,
            ctx.journal.run,
            dict(extra or {}),
        )
        ctx.journal.write("run_finished", info={"counts": report.counts(), "ok": report.ok})
        ctx.journal.close()
        return report

    async def _two_phase(
        self,
        op: str,
        prep: Sequence[str],
        prep_unit: UnitFn | None,
        exe: Sequence[str],
        exe_unit: UnitFn,
        *,
        extra: Mapping[str, Any] | None = None,
        around_exec: Callable[[_Ctx], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    ) -> RunReport:
        ctx = self._ctx(op)
        try:
            if prep_unit is not None:
                prep_policy = Policy(
                    self.policy.concurrency, self.policy.node_timeout, self.policy.overall_timeout
                )
                await self._phase(
                    ctx, "prepare", self.targets, prep_unit, policy=prep_policy, planned=prep
                )
                failed = [n for n in self.targets if not ctx.ok(n)]
                if self.dry_run:
                    return self._report(ctx, prep, True, extra)
                if failed:
                    for n in self.targets:
                        self._skip(ctx, n, exe, f"preflight failed on {', '.join(failed)}")
                    return self._report(ctx, prep, False, extra)
            elif self.dry_run:
                return self._report(ctx, prep, True, extra)
            cm = around_exec(ctx) if around_exec is not None else contextlib.nullcontext()
            async with cm:
                await self._phase(
                    ctx, "execute", self.targets, exe_unit, policy=self.policy, planned=exe
                )
            return self._report(ctx, prep, False, extra)
        finally:
            ctx.journal.close()

    # ------------------------------------------------------------------ readiness

    async def readiness(self, script: Any = None) -> ReadinessReport:
        """Readiness of every target (see :mod:`.readiness`); never raises for a node."""
        touched = touched_modules(script_terms(script)) if script is not None else []
        deadline = self._now() + self.policy.node_timeout
        sem = asyncio.Semaphore(self.policy.concurrency or len(self.targets) or 1)

        async def one(n: str) -> Any:
            async with sem:
                await self._connect(n, deadline)
                return await gather_readiness(self.caller, n, touched, deadline=deadline)

        nodes = await asyncio.gather(*(one(n) for n in self.targets))
        return ReadinessReport(tuple(nodes), tuple(touched))

    async def _connect(self, target: str, deadline: float) -> None:
        with contextlib.suppress(Exception):
            async with asyncio.timeout_at(deadline):
                await self.node.connect(target)

    # ------------------------------------------------------------------ direct mode

    async def run_script(
        self,
        script: Any,
        *,
        push_code: Mapping[str, str | os.PathLike[str] | Mapping[str, bytes]] | None = None,
        lib_dirs: Mapping[str, str] | None = None,
        suspend_timeout: float | None = None,
        code_change_timeout: float | None = None,
        update_paths: bool = False,
        barrier_timeout: float | None = None,
        resume_on_failure: bool = True,
    ) -> RunReport:
        """Direct mode: ``check_script`` on every target, then ``eval_script/5`` on each.

        ``script`` is an :class:`erlbridge.upgrade.Script` (or a list of instruction terms).
        Lib dirs per target: ``lib_dirs[app]`` (a path on the target), else the pushed
        copy (``push_code[app]``: a local ebin directory or ``{filename: bytes}``, written
        to ``<push_root>/<run>/<node>/<app>-<vsn>/ebin`` on each target), else
        ``code:lib_dir(App)`` on the target. Versions come from the script's
        ``load_object_code``. ``sync_nodes`` become Python-coordinated barriers (see
        :mod:`.rewrite`); they require every listed node to be a target (or the Python
        node), and are refused with ``canary`` or a ``concurrency`` below the number of
        targets (the barrier could not be reached). Step values: preflight -> PurgeMods,
        eval -> Unpurged ``[(Mod, soft_purge|brutal_purge)]``.

        An ``eval_script`` that fails after point_of_no_return leaves the node
        half-upgraded (direct mode has no release_handler to restart it). With
        ``resume_on_failure`` (default) the driver then resumes the supervised processes of
        the modules the script suspends (step ``resume_suspended``, value: their pids);
        the outcome stays an error. A Python-side timeout does not stop a script already
        running on a target.
        Raises ScriptError for offline validation failures.
        """
        if hasattr(script, "validate"):
            script.validate()
        terms = script_terms(script)
        barriers = find_barriers(terms)
        me = _node_name(self.node)
        if barriers:
            for b in barriers:
                unknown = set(b.nodes) - set(self.targets) - {me}
                if unknown:
                    raise ScriptError(
                        f"sync_nodes {b.id!r} lists non-target nodes {sorted(unknown)}",
                        index=b.index,
                        rule="barrier_node",
                    )
            if self.policy.canary:
                raise ScriptError(
                    "canary cannot run a script with sync_nodes barriers", rule="barrier_canary"
                )
            c = self.policy.concurrency
            if c is not None and c < len(self.targets):
                raise ScriptError(
                    "sync_nodes barriers need concurrency >= number of targets",
                    rule="barrier_concurrency",
                )
        libs = script_libs(terms)
        suspended_mods = suspended_modules(terms)
        pushed = {app: _beam_files(src) for app, src in (push_code or {}).items()}
        for app in pushed:
            if app not in libs:
                raise ScriptError(
                    f"push_code for {app}, which the script does not load", rule="push_unused"
                )
        opts: list[Any] = [(Atom("update_paths"), Atom("true" if update_paths else "false"))]
        if suspend_timeout is not None:
            opts.append((Atom("suspend_timeout"), _ms(suspend_timeout)))
        if code_change_timeout is not None:
            opts.append((Atom("code_change_timeout"), _ms(code_change_timeout)))
        check_terms = strip_barriers(terms)
        b_timeout = barrier_timeout or self.barrier_timeout
        # The Python side fails a waiter at b_timeout (with a clear reason); the target-side
        # call timeout is a little later, the backstop if the Python node is gone.
        target_timeout = b_timeout + max(1.0, 0.1 * b_timeout)
        service: BarrierService | None = None
        run_tag = uuid.uuid4().hex[:8]

        async def prepare(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            d = ctx.data.setdefault(n, {})
            if pushed:
                ok = await self._step(
                    ctx,
                    n,
                    "push",
                    lambda: self._push(n, pushed, libs, run_tag, d, deadline=deadline),
                )
                if not ok:
                    return
            ok = await self._step(
                ctx, n, "lib_dirs", lambda: self._lib_dirs(n, libs, lib_dirs or {}, d, deadline)
            )
            if ok:
                await self._step(
                    ctx,
                    n,
                    "preflight",
                    lambda: self._check_script(n, check_terms, d["libdirs"], deadline),
                )

        async def execute(ctx: _Ctx, n: str, deadline: float) -> None:
            d = ctx.data.setdefault(n, {})
            script_n = terms
            if service is not None:
                script_n = rewrite_barriers(
                    terms,
                    barrier_name=service.name_for(n),
                    py_node=me,
                    target=n,
                    timeout_ms=_ms(target_timeout),
                )
            try:
                await self._step(
                    ctx,
                    n,
                    "eval",
                    lambda: self._eval_script(
                        ctx, n, script_n, d["libdirs"], opts=opts, deadline=deadline
                    ),
                )
            finally:
                if service is not None:
                    service.node_gone(n, "finished")
            last = ctx.steps[n][-1]
            if (resume_on_failure and suspended_mods and last.step == "eval"
                    and last.error is not None
                    and last.error.before_point_of_no_return is not True):
                # release_handler would restart the node here; in direct mode the processes
                # the script suspended would stay suspended: resume them.
                await self._step(ctx, n, "resume_suspended", lambda: self.caller.expr(
                    n, _RESUME_SUSPENDED, {"Mods": [Atom(m) for m in suspended_mods]},
                    deadline=self._now() + self.policy.node_timeout))

        @contextlib.asynccontextmanager
        async def around(ctx: _Ctx) -> Any:
            nonlocal service
            if not barriers:
                yield None
                return
            async with BarrierService(
                self.node, self.targets, ctx.journal.run, timeout=b_timeout
            ) as service:
                yield service

        prep = (["push"] if pushed else []) + ["lib_dirs", "preflight"]
        return await self._two_phase(
            "run_script",
            prep,
            prepare,
            ["eval"],
            execute,
            extra={"barriers": [jsonable(b.id) for b in barriers], "libs": libs},
            around_exec=around,
        )

    async def _push(
        self,
        n: str,
        pushed: Mapping[str, Mapping[str, bytes]],
        libs: Mapping[str, str],
        run_tag: str,
        d: dict[str, Any],
        *,
        deadline: float,
    ) -> Any:
        dirs = {}
        for app, files in pushed.items():
            # One dir per target: nodes on one host must not share (and race on) files.
            base = f"{self.push_root}/{run_tag}/{n}/{app}-{libs[app]}"
            r = await self.caller.rpc(
                n, "filelib", "ensure_dir", [charlist(f"{base}/ebin/x")], deadline=deadline
            )
            if r != "ok":
                raise StepFailed(Status.ERROR, NodeError("push", r, f"ensure_dir {base}/ebin"))
            for fname, data in files.items():
                path = f"{base}/ebin/{fname}"
                r = await self.caller.rpc(
                    n, "file", "write_file", [charlist(path), data], deadline=deadline
                )
                if r != "ok":
                    raise StepFailed(Status.ERROR, NodeError("push", r, f"write_file {path}"))
            dirs[app] = base
        d["pushed"] = dirs
        return dirs

    async def _lib_dirs(
        self,
        n: str,
        libs: Mapping[str, str],
        given: Mapping[str, str],
        d: dict[str, Any],
        deadline: float,
    ) -> Any:
        entries, shown = [], {}
        for app, vsn in libs.items():
            path = given.get(app) or d.get("pushed", {}).get(app)
            if path is None:
                r = await self.caller.rpc(n, "code", "lib_dir", [Atom(app)], deadline=deadline)
                if is_tuple_tagged(r, "error"):
                    raise StepFailed(
                        Status.ERROR,
                        NodeError(
                            "preflight",
                            (Atom("no_lib_dir"), Atom(app)),
                            f"{app} is not on {n}'s code path; give lib_dirs or push_code",
                        ),
                    )
                path = text_of(r)
            entries.append((Atom(app), charlist(vsn), charlist(path)))
            shown[app] = path
        d["libdirs"] = entries
        return shown

    async def _check_script(
        self, n: str, terms: list[Any], libdirs: list[Any], deadline: float
    ) -> Any:
        reply = await self.caller.rpc(
            n, "release_handler_1", "check_script", [terms, libdirs], deadline=deadline
        )
        status, value, err = classify_check_script(reply)
        if err is not None:
            raise StepFailed(status, err)
        return value

    async def _eval_script(
        self,
        ctx: _Ctx,
        n: str,
        terms: list[Any],
        libdirs: list[Any],
        *,
        opts: list[Any],
        deadline: float,
    ) -> Any:
        try:
            res = await self.caller.rpc(
                n,
                "release_handler_1",
                "eval_script",
                [terms, [], libdirs, libdirs, opts],
                deadline=deadline,
                capture_output=True,
            )
        except StepFailed as exc:
            # The script may have run partly: we cannot know how far (rpc lost).
            raise StepFailed(
                exc.status, NodeError(exc.error.kind, exc.error.reason, exc.error.message, None)
            ) from exc
        reply = getattr(res, "value", res)
        out = getattr(res, "output", "")
        if out:
            ctx.outputs.setdefault(n, []).append(out if isinstance(out, str) else text_of(out))
        status, value, err = classify_eval_script(reply)
        if err is not None:
            raise StepFailed(status, err)
        return value

    # ------------------------------------------------------------------ release mode

    async def upgrade(
        self,
        release: str | os.PathLike[str],
        *,
        permanent: bool = True,
        purge: bool = False,
        suspend_timeout: float | None = None,
        code_change_timeout: float | None = None,
        update_paths: bool = False,
        error_action: str = "restart",
        chunk_bytes: int = CHUNK_BYTES,
        python_sync: Iterable[Any] | None = None,
    ) -> RunReport:
        """Release mode: install a release on every target through ``release_handler``.

        ``release`` is a local tarball path (``NAME.tar.gz``: uploaded to each target's
        releases dir, then ``unpack_release(NAME)``) or a version already unpacked on
        the targets. Prepare: upload, unpack, ``check_install_release`` (``purge`` adds
        ``[purge]``). Execute: ``install_release(Vsn, Opts)`` and, with ``permanent``,
        ``make_permanent(Vsn)``. Used for downgrades too (give the old version).

        The relup runs inside release_handler, so native ``sync_nodes`` work among the
        targets. If the relup names the Python node, it takes part: it registers
        ``release_handler`` for the execute phase and answers each ``{sync_nodes, Id, _}``
        at once; ``python_sync`` lists barrier ids to answer on every exit path
        (cancellation included) for targets still installing, so none waits forever.

        An ``{error, R}`` from install: if the node drops its connection within
        ``restart_grace`` the failure was after PONR (or a crash): the driver waits for
        it to come back (``restart_timeout``) and the step's value is its
        ``which_releases``; else it was before PONR (old code still runs).
        """
        path = (
            Path(release) if not isinstance(release, str) or release.endswith(".tar.gz") else None
        )
        if path is not None and not path.is_file():
            raise FileNotFoundError(path)
        opts: list[Any] = [
            (Atom("error_action"), Atom(error_action)),
            (Atom("update_paths"), Atom("true" if update_paths else "false")),
        ]
        if suspend_timeout is not None:
            opts.append((Atom("suspend_timeout"), _ms(suspend_timeout)))
        if code_change_timeout is not None:
            opts.append((Atom("code_change_timeout"), _ms(code_change_timeout)))
        tar = _Tarball.load(path) if path is not None else None
        label = tar.name if tar is not None else str(release)
        c = self.policy.concurrency
        partial = self.policy.canary or (c is not None and c < len(self.targets))

        async def prepare(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            d = ctx.data.setdefault(n, {})
            if tar is not None:
                if not await self._step(
                    ctx, n, "upload", lambda: self._upload(n, tar, chunk_bytes, deadline)
                ):
                    return
                if not await self._step(
                    ctx, n, "unpack", lambda: self._unpack(n, tar, d, deadline)
                ):
                    return
                if ctx.steps[n][-1].resumed:
                    d["vsn"] = text_of(ctx.steps[n][-1].value)
            else:
                d["vsn"] = str(release)

            async def check() -> Any:
                v = await self._rh(
                    n,
                    "check_install_release",
                    [charlist(d["vsn"])] + ([[Atom("purge")]] if purge else []),
                    deadline,
                )
                if partial and await self._relup_syncs(n, d["vsn"], deadline):
                    raise StepFailed(
                        Status.ERROR,
                        NodeError(
                            "preflight",
                            Atom("sync_nodes_needs_all_nodes"),
                            "the relup has sync_nodes: canary / concurrency below the number of "
                            "targets would leave release_handler waiting forever",
                            True,
                        ),
                    )
                return v

            await self._step(ctx, n, "check_install", check)

        async def execute(ctx: _Ctx, n: str, deadline: float) -> None:
            d = ctx.data[n]
            d["installing"] = True  # seen by _PySync on every exit path
            try:
                ok = await self._step(
                    ctx, n, "install", lambda: self._install(n, d["vsn"], opts, deadline)
                )
            finally:
                d["installing"] = False
            if ok and permanent:
                await self._step(
                    ctx,
                    n,
                    "make_permanent",
                    lambda: self._make_permanent(n, d["vsn"], deadline),
                )

        prep = (["upload", "unpack"] if tar is not None else []) + ["check_install"]
        exe = ["install"] + (["make_permanent"] if permanent else [])
        sync_ids = list(python_sync or [])
        if tar is not None:
            sync_ids += [i for i in tar.python_sync_ids(_node_name(self.node)) if i not in sync_ids]

        def around(ctx: _Ctx) -> contextlib.AbstractAsyncContextManager[Any]:
            return _PySync(self.node, sync_ids, ctx) if sync_ids else contextlib.nullcontext()

        return await self._two_phase(
            f"upgrade:{label}", prep, prepare, exe, execute, around_exec=around
        )

    async def downgrade(self, vsn: str, **kwargs: Any) -> RunReport:
        """Install an older, still unpacked release ``vsn`` (its relup down-script) on every
        target; same options as :meth:`upgrade`."""
        return await self.upgrade(vsn, **kwargs)

    async def unpack(
        self, tarball: str | os.PathLike[str], *, chunk_bytes: int = CHUNK_BYTES
    ) -> RunReport:
        """Upload and unpack a release tarball on every target (no install)."""
        tar = _Tarball.load(Path(tarball))

        async def unit(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            if await self._step(
                ctx, n, "upload", lambda: self._upload(n, tar, chunk_bytes, deadline)
            ):
                await self._step(
                    ctx,
                    n,
                    "unpack",
                    lambda: self._unpack(n, tar, ctx.data.setdefault(n, {}), deadline),
                )

        return await self._two_phase(f"unpack:{tar.name}", [], None, ["upload", "unpack"], unit)

    async def make_permanent(self, vsn: str) -> RunReport:
        """``release_handler:make_permanent(Vsn)`` on every target (and, for a relx
        release, its start script: see :meth:`_point_start_script`)."""

        async def unit(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            await self._step(
                ctx, n, "make_permanent", lambda: self._make_permanent(n, vsn, deadline)
            )

        return await self._two_phase(f"make_permanent:{vsn}", [], None, ["make_permanent"], unit)

    async def _make_permanent(self, n: str, vsn: str, deadline: float) -> Any:
        value = await self._rh(n, "make_permanent", [charlist(vsn)], deadline)
        await self._point_start_script(n, vsn, deadline)
        return value

    async def _point_start_script(self, n: str, vsn: str, deadline: float) -> str | None:
        """A relx release starts from ``bin/<Rel>``, which has its version written in; relx's
        own upgrade command copies ``bin/<Rel>-<Vsn>`` over it when ``Vsn`` becomes
        permanent, so that a restart (heart's ``HEART_COMMAND``, a service manager) boots
        ``Vsn``. Do the same. A release without such a script (not relx) is left alone.
        Returns the path written, or None; a failed copy is logged, not raised: the
        release itself is permanent either way."""
        rels = await self.caller.rpc(n, "release_handler", "which_releases", [], deadline=deadline)
        names = [text_of(r[0]) for r in rels if text_of(r[1]) == vsn]
        if not names:
            return None
        root = text_of(await self.caller.rpc(n, "code", "root_dir", [], deadline=deadline))
        src, dst = f"{root}/bin/{names[0]}-{vsn}", f"{root}/bin/{names[0]}"
        if await self.caller.rpc(
            n, "filelib", "is_regular", [charlist(src)], deadline=deadline
        ) is not True:
            return None
        reply = await self.caller.rpc(
            n, "file", "copy", [charlist(src), charlist(dst)], deadline=deadline
        )
        if not is_tuple_tagged(reply, "ok", 2):
            self.log.warning("%s: could not copy %s to %s: %s", n, src, dst, reply)
            return None
        self.log.info("%s: %s now starts %s (copied from %s)", n, dst, vsn, src)
        return dst

    async def remove_release(self, vsn: str) -> RunReport:
        """``release_handler:remove_release(Vsn)`` on every target."""
        return await self._simple("remove_release", vsn)

    async def reboot_old_release(self, vsn: str) -> RunReport:
        """``release_handler:reboot_old_release(Vsn)``: the node makes the old release
        ``vsn`` permanent (``start_erl.data``, ``RELEASES``), answers ``ok`` and calls
        ``init:reboot()``, which ends the emulator: ``heart`` (or a service manager) must
        start it again, into ``vsn``. The driver waits up to ``restart_timeout`` for the
        connection to drop and the node to answer again (release_handler running); the
        step's value is then its which_releases.

        ``{error, R}`` (``{no_such_release, V}``, ``{bad_status, S}`` for a release that is
        not ``old``) is an error with nothing changed. After ``ok``: a node that does not
        go down within ``restart_timeout`` ends ``timeout`` (reason ``no_reboot``: its
        shutdown hangs; it still runs the code it had, and its which_releases still shows
        the old state although ``RELEASES`` / ``start_erl.data`` name ``vsn``); one that
        went down but did not answer again ends ``nodedown`` (reason ``not_restarted``:
        nothing restarted it).
        The node deadline (``node_timeout``) bounds the whole step, restart included.
        """

        async def after(n: str, deadline: float) -> Any:
            # the node is going down now: too late to point a relx start script at vsn
            # (done before the call, see unit below)
            wait = self.restart_timeout
            state = await self._wait_restart(n, self._now() + wait, seen_down=False)
            if state == "up":
                raise StepFailed(Status.TIMEOUT, NodeError(
                    "timeout", Atom("no_reboot"),
                    f"reboot_old_release answered ok but {n} did not go down in {wait:g} s"))
            if state == "down":
                raise StepFailed(Status.NODEDOWN, NodeError(
                    "nodedown", Atom("not_restarted"),
                    f"{n} rebooted but did not answer again in {wait:g} s "
                    "(no heart or service manager restarted it?)"))
            return await self._which_releases(n, self._now() + self.policy.node_timeout)

        async def unit(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)

            async def go() -> Any:
                # heart restarts the node with a relx release's bin/<Rel>: point it at vsn
                # first, and back at the permanent release if the call is refused
                pointed = await self._point_start_script(n, vsn, deadline)
                try:
                    await self._rh(n, "reboot_old_release", [charlist(vsn)], deadline)
                except StepFailed as exc:
                    if pointed is not None and exc.status is Status.ERROR:
                        rels = await self._which_releases(n, deadline)
                        for _name, v, status in rels:
                            if status == "permanent":
                                await self._point_start_script(n, v, deadline)
                    raise
                return await after(n, deadline)

            await self._step(ctx, n, "reboot_old_release", go)

        return await self._two_phase(
            f"reboot_old_release:{vsn}", [], None, ["reboot_old_release"], unit
        )

    async def which_releases(self) -> RunReport:
        """``which_releases`` of every target as a report (value: ``[(name, vsn, status)]``)."""

        async def unit(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            await self._step(ctx, n, "which_releases", lambda: self._which_releases(n, deadline))

        return await self._two_phase("which_releases", [], None, ["which_releases"], unit)

    async def upgrade_app(
        self,
        app: str,
        new_dir: str | None = None,
        *,
        push_code: str | os.PathLike[str] | Mapping[str, bytes] | None = None,
    ) -> RunReport:
        """Appup-level upgrade of one application on every target:
        ``release_handler:upgrade_app(App, Dir)`` (``Dir/ebin`` holds the new ``.app``,
        ``.appup`` and beams; the node's systools_rc translates the appup; the script runs
        in the rpc worker, so a ``sync_nodes`` in that appup cannot work).

        ``new_dir`` is a directory on the targets; or ``push_code`` (a local ebin dir or
        ``{filename: bytes}`` with the ``.app``) is written to
        ``<push_root>/<run>/<node>/<app>-<vsn>/ebin`` on each target first (step ``push``).
        Value: the unpurged modules. Errors carry before/after point_of_no_return.
        """
        if (new_dir is None) == (push_code is None):
            raise ValueError("give exactly one of new_dir and push_code")
        files = _beam_files(push_code) if push_code is not None else {}
        vsn = _app_vsn(files, app) if files else ""
        run_tag = uuid.uuid4().hex[:8]

        async def unit(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            d = ctx.data.setdefault(n, {})
            target_dir = new_dir
            if files:
                if not await self._step(ctx, n, "push", lambda: self._push(
                        n, {app: files}, {app: vsn}, run_tag, d, deadline=deadline)):
                    return
                target_dir = d["pushed"][app]
            assert target_dir is not None

            async def go() -> Any:
                reply = await self.caller.rpc(
                    n, "release_handler", "upgrade_app", [Atom(app), charlist(target_dir)],
                    deadline=deadline,
                )
                status, value, err = classify_eval_script(reply)
                if err is not None:
                    raise StepFailed(status, NodeError(
                        "release_handler", err.reason, "upgrade_app",
                        err.before_point_of_no_return))
                return value

            await self._step(ctx, n, "upgrade_app", go)

        steps = (["push"] if files else []) + ["upgrade_app"]
        return await self._two_phase(f"upgrade_app:{app}", [], None, steps, unit)

    async def _simple(
        self, function: str, vsn: str, after: Callable[[str, float], Awaitable[Any]] | None = None
    ) -> RunReport:
        async def unit(ctx: _Ctx, n: str, deadline: float) -> None:
            await self._connect(n, deadline)

            async def go() -> Any:
                v = await self._rh(n, function, [charlist(vsn)], deadline)
                return v if after is None else await after(n, deadline)

            await self._step(ctx, n, function, go)

        return await self._two_phase(f"{function}:{vsn}", [], None, [function], unit)

    async def _rh(self, n: str, function: str, args: list[Any], deadline: float) -> Any:
        """A release_handler call; ``{error, R}`` raises StepFailed (before PONR)."""
        reply = await self.caller.rpc(n, "release_handler", function, args, deadline=deadline)
        if is_tuple_tagged(reply, "error", 2):
            raise StepFailed(Status.ERROR, NodeError("release_handler", reply[1], function, True))
        if reply == "ok":
            return "ok"
        if isinstance(reply, tuple) and reply and reply[0] == "ok":
            return jsonable(reply[1:]) if len(reply) > 2 else jsonable(reply[1])
        return jsonable(reply)

    async def _which_releases(self, n: str, deadline: float) -> Any:
        rels = await self.caller.rpc(n, "release_handler", "which_releases", [], deadline=deadline)
        return [(text_of(r[0]), text_of(r[1]), text_of(r[3])) for r in rels]

    async def _install(self, n: str, vsn: str, opts: list[Any], deadline: float) -> Any:
        try:
            reply = await self.caller.rpc(
                n, "release_handler", "install_release", [charlist(vsn), opts], deadline=deadline
            )
        except StepFailed as exc:
            if exc.status is not Status.NODEDOWN:
                raise
            # Lost the connection during install: the node is restarting (OTP-NOTES §2.3).
            rels = await self._after_restart(n, seen_down=True)
            raise StepFailed(
                Status.NODEDOWN,
                NodeError(
                    "nodedown", exc.error.reason, "connection lost during install_release", None
                ),
                value=rels,
            ) from exc
        if is_tuple_tagged(reply, "ok", 3):
            return {"from": text_of(reply[1]), "descr": jsonable(reply[2])}
        if is_tuple_tagged(reply, "continue_after_restart", 3):
            rels = await self._after_restart(n, seen_down=False)
            return {"from": text_of(reply[1]), "restarted": True, "releases": rels}
        if is_tuple_tagged(reply, "error", 2):
            restarted = await self._went_down(n, self.restart_grace)
            if not restarted:
                raise StepFailed(
                    Status.ERROR, NodeError("release_handler", reply[1], "install_release", True)
                )
            rels = await self._after_restart(n, seen_down=True)
            # It restarted: the reason tells before/after PONR where it can (change_appl_data
            # restarts although no code was loaded); else unknown.
            raise StepFailed(
                Status.ERROR,
                NodeError(
                    "release_handler",
                    reply[1],
                    "install_release failed; the node restarted",
                    install_error_guess(reply[1]),
                ),
                value=rels,
            )
        raise StepFailed(Status.ERROR, NodeError("internal", reply, "unexpected reply"))

    async def _went_down(self, n: str, grace: float) -> bool:
        """True if the connection to ``n`` drops within ``grace`` seconds."""
        end = self._now() + grace
        while self._now() < end:
            if n not in {name_of(x) for x in self.node.connected_nodes()}:
                return True
            await asyncio.sleep(0.1)
        return False

    async def _after_restart(self, n: str, *, seen_down: bool) -> Any:
        deadline = self._now() + self.restart_timeout
        await self._wait_restart(n, deadline, seen_down=seen_down)
        try:
            return await self._which_releases(n, deadline)
        except StepFailed:
            return None

    async def _wait_restart(self, n: str, deadline: float, *, seen_down: bool) -> str:
        """Wait for ``n`` to go down (unless ``seen_down``) and come back, or the deadline.

        Returns ``"back"`` (it answers again and runs release_handler), ``"down"`` (it went
        down and is not back by the deadline) or ``"up"`` (it never went down).
        """
        if not seen_down and not await self._went_down(n, max(0.0, deadline - self._now())):
            return "up"
        while self._now() < deadline:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(min(2.0, max(0.05, deadline - self._now()))):
                    if await self.node.ping(n):
                        # Answering ping is not enough: wait for release_handler.
                        r = await self.node.rpc(
                            n, "erlang", "whereis", [Atom("release_handler")], timeout=1.0
                        )
                        if r != "undefined":
                            return "back"
            await asyncio.sleep(0.3)
        return "down"

    async def _relup_syncs(self, n: str, vsn: str, deadline: float) -> bool:
        """True if the relup script that would take the node from its current release to
        ``vsn`` (``vsn``'s relup up-entry, or the current release's down-entry) has
        ``sync_nodes``."""
        reldir = await self._reldir(n, deadline)
        found = await self.caller.expr(
            n, _RELUP_SYNC, {"D": charlist(reldir), "V": charlist(vsn)}, deadline=deadline
        )
        return found is True or found == "true"

    async def _reldir(self, n: str, deadline: float) -> str:
        return text_of(await self.caller.expr(n, _RELDIR, {}, deadline=deadline))

    async def _known_vsns(self, n: str, deadline: float) -> set[str]:
        return {v for _name, v, _st in await self._which_releases(n, deadline)}

    async def _upload(self, n: str, tar: _Tarball, chunk: int, deadline: float) -> Any:
        """Chunked, checksummed, resumable upload to ``<releases dir>/<name>.tar.gz``.

        Skipped when the tarball's release is already known to release_handler (an earlier
        or interrupted run unpacked it). Resumes a partial file whose prefix digest matches.
        """
        if tar.vsn is not None and tar.vsn in await self._known_vsns(n, deadline):
            return {"skipped": f"release {tar.vsn} already unpacked"}
        reldir = await self._reldir(n, deadline)
        path = f"{reldir}/{tar.name}.tar.gz"
        p = charlist(path)
        have = await self.caller.rpc(n, "filelib", "file_size", [p], deadline=deadline)
        have = int(have) if isinstance(have, int) else 0
        offset = 0
        if 0 < have <= tar.size:
            size, digest = await self.caller.expr(
                n, _HASH_FILE, {"P": p, "N": have}, deadline=deadline
            )
            if size == have and _digest_ok(digest, tar.data[:have]):
                offset = have
        if offset == 0 and have:
            await self.caller.rpc(n, "file", "delete", [p], deadline=deadline)
        for start in range(offset, tar.size, chunk):
            r = await self.caller.rpc(
                n,
                "file",
                "write_file",
                [p, tar.data[start : start + chunk], [Atom("append")]],
                deadline=deadline,
            )
            if r != "ok":
                raise StepFailed(Status.ERROR, NodeError("upload", r, f"write {path}"))
        size, digest = await self.caller.expr(
            n, _HASH_FILE, {"P": p, "N": tar.size + 1}, deadline=deadline
        )
        if size != tar.size or not _digest_ok(digest, tar.data):
            await self.caller.rpc(n, "file", "delete", [p], deadline=deadline)
            raise StepFailed(
                Status.ERROR,
                NodeError(
                    "upload", Atom("checksum_mismatch"), f"{path}: {size} bytes, digest differs"
                ),
            )
        return {
            "path": path,
            "bytes": tar.size,
            "resumed_from": offset,
            "sha256": tar.sha256.hex(),
            "checked_with": text_of(digest[0]),
        }

    async def _unpack(self, n: str, tar: _Tarball, d: dict[str, Any], deadline: float) -> Any:
        if tar.vsn is not None and tar.vsn in await self._known_vsns(n, deadline):
            d["vsn"] = tar.vsn  # already unpacked (e.g. a run killed after unpack_release)
            await self._cleanup_tar(n, tar, deadline)
            return tar.vsn
        reply = await self.caller.rpc(
            n, "release_handler", "unpack_release", [charlist(tar.name)], deadline=deadline
        )
        if is_tuple_tagged(reply, "ok", 2):
            d["vsn"] = text_of(reply[1])
            return d["vsn"]
        reason = reply[1] if is_tuple_tagged(reply, "error", 2) else reply
        if is_tuple_tagged(reason, "existing_release", 2):
            d["vsn"] = text_of(reason[1])  # already unpacked: fine, drop the uploaded copy
            await self._cleanup_tar(n, tar, deadline)
            return d["vsn"]
        await self._cleanup_tar(n, tar, deadline)  # clean up a failed unpack
        raise StepFailed(Status.ERROR, NodeError("release_handler", reason, "unpack_release", True))

    async def _cleanup_tar(self, n: str, tar: _Tarball, deadline: float) -> None:
        with contextlib.suppress(StepFailed):
            reldir = await self._reldir(n, deadline)
            await self.caller.rpc(
                n, "file", "delete", [charlist(f"{reldir}/{tar.name}.tar.gz")], deadline=deadline
            )


class _PySync:
    """The Python node as a ``sync_nodes`` participant in release mode (OTP-NOTES §1.6).

    Registers ``release_handler`` on the Python node and answers every
    ``{sync_nodes, Id, Node}`` with ``{sync_nodes, Id, PyNode}`` to ``{release_handler,
    Node}`` at once. On exit (any path, cancellation included) it sends the answer for
    every id in ``ids`` to every target whose install has started but not finished, so no
    target can wait forever for the hidden Python node.
    """

    def __init__(self, node: Any, ids: Sequence[Any], ctx: _Ctx) -> None:
        self.node, self.ids, self.ctx = node, list(ids), ctx
        self.me = Atom(_node_name(node))
        self.answered: set[tuple[str, Any]] = set()
        self.proc: Any = None
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> _PySync:
        self.proc = self.node.process()
        self.node.register("release_handler", self.proc)
        self.task = asyncio.create_task(self._serve())
        return self

    def _answer(self, target: str, sync_id: Any) -> None:
        if (target, sync_id) in self.answered:
            return
        self.answered.add((target, sync_id))
        self.proc.send(
            (Atom("release_handler"), Atom(target)), (Atom("sync_nodes"), sync_id, self.me)
        )

    async def _serve(self) -> None:
        while True:
            msg = await self.proc.receive()
            if isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "sync_nodes":
                self._answer(name_of(msg[2]), msg[1])

    async def __aexit__(self, *exc: object) -> None:
        try:
            for n, d in self.ctx.data.items():
                if d.get("installing"):
                    for i in self.ids:
                        self._answer(n, i)
        finally:
            if self.task is not None:
                self.task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self.task
            with contextlib.suppress(Exception):
                self.proc.close(Atom("normal"))


@dataclass(frozen=True, slots=True)
class _Tarball:
    """A local release tarball; ``vsn`` read from its ``releases/<name>.rel`` (or None)."""

    name: str
    data: bytes
    sha256: bytes
    vsn: str | None = None

    @property
    def size(self) -> int:
        return len(self.data)

    @classmethod
    def load(cls, path: Path) -> _Tarball:
        data = path.read_bytes()
        name = path.name.removesuffix(".tar.gz")
        return cls(name, data, hashlib.sha256(data).digest(), _rel_vsn(data, name))

    def python_sync_ids(self, me: str) -> list[Any]:
        """Ids of ``sync_nodes`` in the tarball's relup(s) whose node list names ``me``."""
        import io  # noqa: PLC0415
        import tarfile  # noqa: PLC0415

        from erlbridge.term import parse_term  # noqa: PLC0415

        ids: list[Any] = []
        try:
            with tarfile.open(fileobj=io.BytesIO(self.data), mode="r:gz") as tf:
                for m in tf.getmembers():
                    if not m.name.endswith("/relup"):
                        continue
                    f = tf.extractfile(m)
                    if f is None:
                        continue
                    _collect_sync(parse_term(f.read().decode("utf-8")), me, ids)
        except Exception as exc:  # a relup we cannot read must not stop the upgrade
            logger.warning("could not read relup from %s: %s", self.name, exc)
        return ids


def _rel_vsn(data: bytes, name: str) -> str | None:
    """The release version from ``releases/<name>.rel`` (any ``releases/*.rel`` as fallback)."""
    import io  # noqa: PLC0415
    import tarfile  # noqa: PLC0415

    from erlbridge.term import parse_term  # noqa: PLC0415

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tf:
            rels = [
                m
                for m in tf.getmembers()
                if m.name.startswith("releases/")
                and m.name.endswith(".rel")
                and m.name.count("/") == 1
            ]
            rels.sort(key=lambda m: m.name != f"releases/{name}.rel")
            for m in rels:
                f = tf.extractfile(m)
                if f is None:
                    continue
                term = parse_term(f.read().decode("utf-8"))
                return text_of(term[1][1])
    except Exception as exc:  # the tarball is checked by unpack_release anyway
        logger.warning("could not read the .rel of %s: %s", name, exc)
    return None


def _collect_sync(term: Any, me: str, ids: list[Any]) -> None:
    if isinstance(term, tuple):
        if len(term) == 3 and term[0] == "sync_nodes" and isinstance(term[2], list):
            if me in [name_of(x) for x in term[2]] and term[1] not in ids:
                ids.append(term[1])
            return
        for x in term:
            _collect_sync(x, me, ids)
    elif isinstance(term, list):
        for x in term:
            _collect_sync(x, me, ids)


def _beam_files(src: str | os.PathLike[str] | Mapping[str, bytes]) -> dict[str, bytes]:
    if isinstance(src, Mapping):
        return dict(src)
    p = Path(src)
    files = {
        f.name: f.read_bytes()
        for f in sorted(p.iterdir())
        if f.suffix in (".beam", ".app", ".appup")
    }
    if not files:
        raise ScriptError(f"no .beam files in {p}", rule="push_empty")
    return files


def _digest_ok(digest: Any, data: bytes) -> bool:
    """Compare a target-side ``{sha256 | md5, Digest}`` with the local data."""
    algo, value = text_of(digest[0]), digest[1]
    local = hashlib.sha256(data) if algo == "sha256" else hashlib.md5(data)
    return bytes(value) == local.digest()


def _app_vsn(files: Mapping[str, bytes], app: str) -> str:
    """The ``vsn`` of ``<app>.app`` among pushed files (ScriptError if missing)."""
    from erlbridge.term import parse_term  # noqa: PLC0415

    data = files.get(f"{app}.app")
    if data is None:
        raise ScriptError(f"push_code has no {app}.app", rule="push_no_app_file")
    term = parse_term(data.decode("utf-8"))
    for key, value in term[2]:
        if key == "vsn":
            return text_of(value)
    raise ScriptError(f"{app}.app has no vsn", rule="push_no_app_vsn")


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _policy_dict(p: Policy) -> dict[str, Any]:
    return {
        "concurrency": p.concurrency,
        "node_timeout": p.node_timeout,
        "overall_timeout": p.overall_timeout,
        "stop_on_first_failure": p.stop_on_first_failure,
        "canary": p.canary,
    }
