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

:class:`Driver` holds the options and documents each operation; their code is in
:mod:`.release_run` (release mode) and :mod:`.direct_run` (direct mode), given a
:class:`~erlbridge.driver.fleet.Fleet` (the settings when the operation starts).
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from erlbridge.driver import direct_run, release_run
from erlbridge.driver.fleet import Fleet, node_name
from erlbridge.driver.node_api import DriverNode
from erlbridge.driver.policy import Policy
from erlbridge.driver.readiness import ReadinessReport, gather_readiness
from erlbridge.driver.release_run import CHUNK_BYTES
from erlbridge.driver.remote_calls import Caller
from erlbridge.driver.run import now
from erlbridge.driver.run_report import RunReport
from erlbridge.driver.script_rewrite import name_of, script_terms, touched_modules
from erlbridge.driver.tarball import Tarball
from erlbridge.term import Atom

__all__ = ["Driver", "discover"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.driver")


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
    me = node_name(node)
    out = [seed, *sorted(name_of(n) for n in names if name_of(n) not in (me, seed))]
    if filter is None:
        return out
    if isinstance(filter, str):
        rx = re.compile(filter)
        return [n for n in out if rx.search(n)]
    return [n for n in out if filter(n)]


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

    def _fleet(self) -> Fleet:
        """This driver's settings as they are now, for one operation."""
        return Fleet(
            node=self.node,
            targets=self.targets,
            policy=self.policy,
            caller=self.caller,
            log=self.log,
            dry_run=self.dry_run,
            journal_path=self.journal_path,
            resume=self.resume,
            barrier_timeout=self.barrier_timeout,
            restart_timeout=self.restart_timeout,
            restart_grace=self.restart_grace,
            push_root=self.push_root,
        )

    # ------------------------------------------------------------------ readiness

    async def readiness(self, script: Any = None) -> ReadinessReport:
        """Readiness of every target (see :mod:`.readiness`); never raises for a node."""
        fleet = self._fleet()
        touched = touched_modules(script_terms(script)) if script is not None else []
        deadline = now() + self.policy.node_timeout
        sem = asyncio.Semaphore(self.policy.concurrency or len(self.targets) or 1)

        async def one(n: str) -> Any:
            async with sem:
                await fleet.connect(n, deadline)
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

        fleet = self._fleet()
        return await check_plan(
            self.caller,
            self.targets,
            plan,
            connect=fleet.connect,
            node_timeout=self.policy.node_timeout,
            concurrency=self.policy.concurrency,
            suspend_timeout=suspend_timeout,
        )

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
        return await direct_run.run_script(
            self._fleet(),
            script,
            push_code=push_code,
            lib_dirs=lib_dirs,
            suspend_timeout=suspend_timeout,
            code_change_timeout=code_change_timeout,
            update_paths=update_paths,
            barrier_timeout=barrier_timeout,
            resume_on_failure=resume_on_failure,
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
        return await release_run.install(
            self._fleet(),
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
        return await release_run.install(self._fleet(), "downgrade", vsn, **kwargs)

    async def unpack(
        self, tarball: str | os.PathLike[str] | Tarball, *, chunk_bytes: int = CHUNK_BYTES
    ) -> RunReport:
        """Upload and unpack a release tarball on every target (no install; checked on the
        host first, as in :meth:`upgrade`)."""
        return await release_run.unpack(self._fleet(), tarball, chunk_bytes)

    async def make_permanent(self, vsn: str) -> RunReport:
        """``release_handler:make_permanent(Vsn)`` on every target (and, for a relx
        release, its start script: see :meth:`ReleaseOps.point_start_script`)."""
        return await release_run.make_permanent(self._fleet(), vsn)

    async def remove_release(self, vsn: str) -> RunReport:
        """``release_handler:remove_release(Vsn)`` on every target."""
        return await release_run.release_handler_call(self._fleet(), "remove_release", vsn)

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
        return await release_run.reboot_old_release(self._fleet(), vsn)

    async def which_releases(self) -> RunReport:
        """``which_releases`` of every target as a report (value: ``[(name, vsn, status)]``)."""
        return await release_run.which_releases(self._fleet())

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
        return await release_run.upgrade_app(self._fleet(), app, new_dir, push_code)
