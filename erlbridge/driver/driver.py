"""The upgrade driver: scripts and release operations on many nodes at once (I/O).

Contracts shared by every operation:

* **Two phases.** A *prepare* phase (offline validation, code push, ``check_script`` /
  upload, unpack, ``check_install_release``) runs on every target first. Only if every
  target passed does the *execute* phase start; otherwise every node's execute steps are
  ``skipped`` and no node was changed by the driver (note: ``check_script`` evaluates
  ``apply`` instructions placed before point_of_no_return, as OTP does). ``dry_run=True``
  stops after the prepare phase, and changes nothing on any target: an upgrade from a
  tarball then checks read-only instead of uploading and unpacking (see :mod:`.dry_run`).
* **Policies** (:class:`~erlbridge.driver.policy.Policy`) govern the execute phase:
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
import logging
import os
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from erlbridge.driver import direct_ops
from erlbridge.driver.barrier_service import BarrierService
from erlbridge.driver.dry_run import check_release
from erlbridge.driver.node_api import DriverNode
from erlbridge.driver.policy import Policy
from erlbridge.driver.readiness import ReadinessReport, gather_readiness
from erlbridge.driver.release_ops import PySync, ReleaseOps
from erlbridge.driver.remote_calls import Caller, StepFailed, charlist, text_of
from erlbridge.driver.rendering import jsonable
from erlbridge.driver.run import Run, UnitFn, now
from erlbridge.driver.run_report import RunReport
from erlbridge.driver.script_rewrite import (
    find_barriers,
    name_of,
    rewrite_barriers,
    script_libs,
    script_terms,
    strip_barriers,
    suspended_modules,
    touched_modules,
)
from erlbridge.driver.tarball import Tarball
from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom
from erlbridge.upgrade import Phase

__all__ = ["Driver", "discover"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.driver")

CHUNK_BYTES = 1 << 20


async def discover(
    node: DriverNode,
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


def _node_name(node: object) -> str:
    for attr in ("name", "node_name"):
        v = getattr(node, attr, None)
        if v:
            return name_of(v)
    raise TypeError("the Node has no name attribute")


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
        node: DriverNode,
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

    def _release(self) -> ReleaseOps:
        """Release-mode calls with this driver's caller, logger and restart timeouts."""
        return ReleaseOps(
            self.caller,
            self.log,
            restart_timeout=self.restart_timeout,
            restart_grace=self.restart_grace,
        )

    async def _two_phase(
        self,
        op: str,
        prep: Sequence[str],
        prep_unit: UnitFn | None,
        exe: Sequence[str],
        exe_unit: UnitFn,
        *,
        extra: Mapping[str, Any] | None = None,
        around_exec: Callable[[Run], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    ) -> RunReport:
        """Start a :class:`Run` of ``op`` with this driver's settings and run its two
        phases (see :meth:`Run.two_phase`)."""
        run = Run.start(
            op,
            targets=self.targets,
            policy=self.policy,
            dry_run=self.dry_run,
            journal_path=self.journal_path,
            resume=self.resume,
            log=self.log,
        )
        return await run.two_phase(
            prep, prep_unit, exe, exe_unit, extra=extra, around_exec=around_exec
        )

    # ------------------------------------------------------------------ readiness

    async def readiness(self, script: Any = None) -> ReadinessReport:
        """Readiness of every target (see :mod:`.readiness`); never raises for a node."""
        touched = touched_modules(script_terms(script)) if script is not None else []
        deadline = now() + self.policy.node_timeout
        sem = asyncio.Semaphore(self.policy.concurrency or len(self.targets) or 1)

        async def one(n: str) -> Any:
            async with sem:
                await self._connect(n, deadline)
                return await gather_readiness(self.caller, n, touched, deadline=deadline)

        nodes = await asyncio.gather(*(one(n) for n in self.targets))
        return ReadinessReport(tuple(nodes), tuple(touched))

    async def check_plan(self, plan: Any, *, suspend_timeout: float = 5.0) -> Any:
        """Check an :class:`erlbridge.plan.UpgradePlan` against every target without
        changing anything (see :mod:`.plan_check`); returns a
        :class:`~erlbridge.driver.plan_check.PlanCheckReport`, never raises for
        a node. ``suspend_timeout``: how long a process may take to answer
        ``sys:get_status`` (release_handler_1's default suspend timeout is 5 s)."""
        from erlbridge.driver.plan_check import check_plan  # noqa: PLC0415

        return await check_plan(
            self.caller,
            self.targets,
            plan,
            connect=self._connect,
            node_timeout=self.policy.node_timeout,
            concurrency=self.policy.concurrency,
            suspend_timeout=suspend_timeout,
        )

    async def _dirs_present(self, path: str) -> dict[str, bool]:
        """``{target: is path a directory there}``; True where it cannot be asked (the
        caller then leaves the directory alone)."""
        deadline = now() + self.policy.node_timeout

        async def one(n: str) -> bool:
            await self._connect(n, deadline)
            try:
                found = await self.caller.rpc(
                    n, "filelib", "is_dir", [charlist(path)], deadline=deadline
                )
            except StepFailed:
                return True
            return found is not False

        found = await asyncio.gather(*(one(n) for n in self.targets))
        return dict(zip(self.targets, found, strict=True))

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
        :mod:`.script_rewrite`); they require every listed node to be a target (or the Python
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
        direct_ops.check_barriers(barriers, self.targets, self.policy, me=me)
        libs = script_libs(terms)
        suspended_mods = suspended_modules(terms)
        pushed = {app: direct_ops.beam_files(src) for app, src in (push_code or {}).items()}
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

        # A dry run must leave the targets as found: the pushed copy (check_script reads
        # it from disk) is removed after the preflight, and the push root too where this
        # run created it (looked at before any node's push: nodes may share a host).
        clean_up = bool(pushed) and self.dry_run
        had_root = await self._dirs_present(self.push_root) if clean_up else {}

        async def prepare(run: Run, n: str, deadline: float) -> None:
            try:
                await prepare_node(run, n, deadline)
            finally:
                if clean_up:
                    await run.step(
                        n,
                        "remove_pushed",
                        lambda: direct_ops.remove_pushed(
                            self.caller,
                            n,
                            push_root=self.push_root,
                            run_tag=run_tag,
                            keep_root=had_root.get(n, True),
                            deadline=deadline,
                        ),
                    )

        async def prepare_node(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            d = run.data.setdefault(n, {})
            if pushed:
                ok = await run.step(
                    n,
                    "push",
                    lambda: direct_ops.push(
                        self.caller,
                        n,
                        pushed,
                        libs,
                        run_tag=run_tag,
                        d=d,
                        push_root=self.push_root,
                        deadline=deadline,
                    ),
                )
                if not ok:
                    return
            ok = await run.step(
                n,
                "lib_dirs",
                lambda: direct_ops.lib_dirs(
                    self.caller, n, libs, lib_dirs or {}, d=d, deadline=deadline
                ),
            )
            if ok:
                await run.step(
                    n,
                    "preflight",
                    lambda: direct_ops.check_script(
                        self.caller, n, check_terms, d["libdirs"], deadline
                    ),
                )

        async def execute(run: Run, n: str, deadline: float) -> None:
            d = run.data.setdefault(n, {})
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
                await run.step(
                    n,
                    "eval",
                    lambda: direct_ops.eval_script(
                        self.caller,
                        run.outputs,
                        n,
                        script_n,
                        d["libdirs"],
                        opts=opts,
                        deadline=deadline,
                    ),
                )
            finally:
                if service is not None:
                    service.node_gone(n, "finished")
            last = run.steps[n][-1]
            if (
                resume_on_failure
                and suspended_mods
                and last.step == "eval"
                and last.error is not None
                and last.error.phase is not Phase.BEFORE_POINT_OF_NO_RETURN
            ):
                # release_handler would restart the node here; in direct mode the processes
                # the script suspended would stay suspended: resume them.
                await run.step(
                    n,
                    "resume_suspended",
                    lambda: self.caller.expr(
                        n,
                        direct_ops.RESUME_SUSPENDED,
                        {"Mods": [Atom(m) for m in suspended_mods]},
                        deadline=now() + self.policy.node_timeout,
                    ),
                )

        @contextlib.asynccontextmanager
        async def around(run: Run) -> Any:
            nonlocal service
            if not barriers:
                yield None
                return
            async with BarrierService(
                self.node, self.targets, run.journal.run, timeout=b_timeout
            ) as service:
                yield service

        prep = (["push"] if pushed else []) + ["lib_dirs", "preflight"]
        prep += ["remove_pushed"] if clean_up else []
        return await self._two_phase(
            "run_script",
            prep,
            prepare,
            ["eval"],
            execute,
            extra={"barriers": [jsonable(b.id) for b in barriers], "libs": libs},
            around_exec=around,
        )

    # ------------------------------------------------------------------ release mode

    async def upgrade(
        self,
        release: str | os.PathLike[str] | Tarball,
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

        ``release`` is a local tarball (a path ending in ``.tar.gz`` / ``.tgz``, or a
        loaded :class:`Tarball`: uploaded to each target's releases dir as
        ``<Name>.tar.gz``, then ``unpack_release(Name)``) or a version already unpacked
        on the targets. A tarball is checked on the host first: one that is not a gzip
        tar with ``releases/<Name>.rel`` raises
        :class:`~erlbridge.exceptions.BadReleaseTarball` before anything is sent.
        Prepare: upload, unpack, ``check_install_release`` (``purge`` adds ``[purge]``).
        Execute: ``install_release(Vsn, Opts)`` and, with ``permanent``,
        ``make_permanent(Vsn)``.

        A dry run changes nothing on any target: with a tarball its prepare phase is the
        one read-only step ``check_release`` (see :mod:`.dry_run`: its value lists the
        checks made and those that need a write, such as ``check_install_release``);
        with a version it is ``check_install_release`` without ``purge``.

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
        return await self._install(
            "upgrade",
            release,
            permanent=permanent,
            purge=purge,
            suspend_timeout=suspend_timeout,
            code_change_timeout=code_change_timeout,
            update_paths=update_paths,
            error_action=error_action,
            chunk_bytes=chunk_bytes,
            python_sync=python_sync,
        )

    async def downgrade(self, vsn: str, **kwargs: Any) -> RunReport:
        """Install an older, still unpacked release ``vsn`` (its relup down-script) on every
        target; same options as :meth:`upgrade`. The report and the journal name the
        operation ``downgrade:<vsn>``."""
        return await self._install("downgrade", vsn, **kwargs)

    async def _install(
        self,
        kind: str,
        release: str | os.PathLike[str] | Tarball,
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
        """:meth:`upgrade` and :meth:`downgrade`; ``kind`` names the operation."""
        tar = _tarball(release)
        opts: list[Any] = [
            (Atom("error_action"), Atom(error_action)),
            (Atom("update_paths"), Atom("true" if update_paths else "false")),
        ]
        if suspend_timeout is not None:
            opts.append((Atom("suspend_timeout"), _ms(suspend_timeout)))
        if code_change_timeout is not None:
            opts.append((Atom("code_change_timeout"), _ms(code_change_timeout)))
        rel = self._release()
        label = (tar.stem or tar.name) if tar is not None else str(release)
        c = self.policy.concurrency
        partial = self.policy.canary or (c is not None and c < len(self.targets))

        async def prepare(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            d = run.data.setdefault(n, {})
            if tar is not None:
                if not await run.step(
                    n, "upload", lambda: rel.upload(n, tar, chunk_bytes, deadline)
                ):
                    return
                if not await run.step(n, "unpack", lambda: rel.unpack(n, tar, d, deadline)):
                    return
                if run.steps[n][-1].resumed:
                    d["vsn"] = text_of(run.steps[n][-1].value)
            else:
                d["vsn"] = str(release)
            await run.step(
                n,
                "check_install",
                lambda: rel.check_install(
                    n, d["vsn"], purge=purge, partial=partial, deadline=deadline
                ),
            )

        async def dry_prepare(run: Run, n: str, deadline: float) -> None:
            # Read-only on the target: nothing uploaded, unpacked or purged.
            await self._connect(n, deadline)
            if tar is not None:
                await run.step(
                    n,
                    "check_release",
                    lambda: check_release(rel, n, tar, partial=partial, deadline=deadline),
                )
            else:
                await run.step(
                    n,
                    "check_install",
                    lambda: rel.check_install(
                        n, str(release), purge=False, partial=partial, deadline=deadline
                    ),
                )

        async def execute(run: Run, n: str, deadline: float) -> None:
            d = run.data[n]
            d["installing"] = True  # seen by PySync on every exit path
            try:
                ok = await run.step(n, "install", lambda: rel.install(n, d["vsn"], opts, deadline))
            finally:
                d["installing"] = False
            if ok and permanent:
                await run.step(
                    n, "make_permanent", lambda: rel.make_permanent(n, d["vsn"], deadline)
                )

        if self.dry_run:
            prep = ["check_release" if tar is not None else "check_install"]
        else:
            prep = (["upload", "unpack"] if tar is not None else []) + ["check_install"]
        exe = ["install"] + (["make_permanent"] if permanent else [])
        sync_ids = list(python_sync or [])
        if tar is not None:
            sync_ids += [i for i in tar.python_sync_ids(_node_name(self.node)) if i not in sync_ids]

        def around(run: Run) -> contextlib.AbstractAsyncContextManager[Any]:
            if not sync_ids:
                return contextlib.nullcontext()
            return PySync(self.node, sync_ids, run, me=_node_name(self.node))

        return await self._two_phase(
            f"{kind}:{label}",
            prep,
            dry_prepare if self.dry_run else prepare,
            exe,
            execute,
            around_exec=around,
        )

    async def unpack(
        self, tarball: str | os.PathLike[str] | Tarball, *, chunk_bytes: int = CHUNK_BYTES
    ) -> RunReport:
        """Upload and unpack a release tarball on every target (no install; checked on the
        host first, as in :meth:`upgrade`)."""
        tar = _tarball(tarball)
        if tar is None:
            raise ValueError(f"{tarball}: not a release tarball path (.tar.gz / .tgz)")
        rel = self._release()

        async def unit(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            if await run.step(n, "upload", lambda: rel.upload(n, tar, chunk_bytes, deadline)):
                await run.step(
                    n, "unpack", lambda: rel.unpack(n, tar, run.data.setdefault(n, {}), deadline)
                )

        return await self._two_phase(
            f"unpack:{tar.stem or tar.name}", [], None, ["upload", "unpack"], unit
        )

    async def make_permanent(self, vsn: str) -> RunReport:
        """``release_handler:make_permanent(Vsn)`` on every target (and, for a relx
        release, its start script: see :meth:`ReleaseOps.point_start_script`)."""
        rel = self._release()

        async def unit(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            await run.step(n, "make_permanent", lambda: rel.make_permanent(n, vsn, deadline))

        return await self._two_phase(f"make_permanent:{vsn}", [], None, ["make_permanent"], unit)

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
        rel = self._release()

        async def unit(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            await run.step(
                n,
                "reboot_old_release",
                lambda: rel.reboot_old_release(
                    n, vsn, deadline, node_timeout=self.policy.node_timeout
                ),
            )

        return await self._two_phase(
            f"reboot_old_release:{vsn}", [], None, ["reboot_old_release"], unit
        )

    async def which_releases(self) -> RunReport:
        """``which_releases`` of every target as a report (value: ``[(name, vsn, status)]``)."""
        rel = self._release()

        async def unit(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            await run.step(n, "which_releases", lambda: rel.which_releases(n, deadline))

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
        files = direct_ops.beam_files(push_code) if push_code is not None else {}
        vsn = direct_ops.app_vsn(files, app) if files else ""
        run_tag = uuid.uuid4().hex[:8]

        async def unit(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            d = run.data.setdefault(n, {})
            target_dir = new_dir
            if files:
                if not await run.step(
                    n,
                    "push",
                    lambda: direct_ops.push(
                        self.caller,
                        n,
                        {app: files},
                        {app: vsn},
                        run_tag=run_tag,
                        d=d,
                        push_root=self.push_root,
                        deadline=deadline,
                    ),
                ):
                    return
                target_dir = d["pushed"][app]
            assert target_dir is not None
            await run.step(
                n,
                "upgrade_app",
                lambda: direct_ops.upgrade_app(self.caller, n, app, target_dir, deadline),
            )

        steps = (["push"] if files else []) + ["upgrade_app"]
        return await self._two_phase(f"upgrade_app:{app}", [], None, steps, unit)

    async def _simple(self, function: str, vsn: str) -> RunReport:
        """``release_handler:Function(Vsn)`` on every target, one step."""
        rel = self._release()

        async def unit(run: Run, n: str, deadline: float) -> None:
            await self._connect(n, deadline)
            await run.step(n, function, lambda: rel.rh(n, function, [charlist(vsn)], deadline))

        return await self._two_phase(f"{function}:{vsn}", [], None, [function], unit)


def _tarball(release: str | os.PathLike[str] | Tarball) -> Tarball | None:
    """The checked tarball ``release`` names, or None for a version (a plain string not
    ending in ``.tar.gz`` / ``.tgz``). Raises FileNotFoundError, BadReleaseTarball."""
    if isinstance(release, Tarball):
        return release
    if isinstance(release, str) and not release.endswith((".tar.gz", ".tgz")):
        return None
    path = Path(release)
    if not path.is_file():
        raise FileNotFoundError(path)
    return Tarball.load(path)


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
