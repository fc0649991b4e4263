"""Check an upgrade plan against live nodes without changing them (I/O via the Node).

Per node, every call bounded by the node deadline: does it run the plan's OLD release
(and not know the NEW one yet); which processes ``release_handler_1`` would suspend for
the relup's ``suspend`` (its own ``get_supervised_procs/0``, run over rpc) and whether
each answers ``sys:get_status`` within the suspend timeout (one that does not would be
skipped or make ``install_release`` fail); which processes still run old code of a
module the relup loads or removes (``soft_purge`` refuses with ``old_processes``,
``brutal_purge`` kills them); whether each supervisor named in a ``supervisor:*_child``
``apply`` is registered; whether the releases directory is writable and has room.

Only read-only calls are made: ``which_releases``, ``which_applications``,
``get_supervised_procs``, ``process_info``, ``sys:get_status`` (it copies the state),
``erlang:check_old_code`` / ``check_process_code`` with ``{allow_gc, false}``, ``whereis``,
``file:read_file_info`` and ``df`` through ``os:cmd``. The plan is duck-typed (``name``,
``old_vsn``, ``new_vsn``, ``relup``; optionally ``needed_bytes()``,
``old_app_versions()``, ``old_module_md5s()``): this layer does not import
:mod:`erlbridge.plan`. Applications whose version differs from the OLD release are
blockers; a loaded module whose ``module_info(md5)`` is not the OLD build's is reported.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from erlbridge.driver.remote_calls import Caller, StepFailed, text_of
from erlbridge.driver.rendering import jsonable, render_html, render_table
from erlbridge.term import Atom
from erlbridge.upgrade import Apply, Load, PurgeMethod, Remove, Suspend

__all__ = ["Finding", "NodePlanCheck", "PlanCheckReport", "SuspendTarget", "check_plan"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.plan_check")

# One round trip: probe every pid in parallel, each sys:get_status bounded by T ms.
_PROBE = (
    "Ws = [{P, spawn_monitor(fun() -> exit({st, try sys:get_status(P, T) of _ -> ok"
    " catch C:E -> {C, E} end}) end)} || P <- Pids],"
    " [{P, erlang:process_info(P, [message_queue_len, status, current_function]),"
    " receive {'DOWN', R, process, _, {st, X}} -> X; {'DOWN', R, process, _, O} -> {down, O}"
    " after T + 2000 -> erlang:demonitor(R, [flush]), exit(Pid, kill), no_reply end}"
    " || {P, {Pid, R}} <- Ws]."
)
_OLD_CODE = (
    "[{M, [P || P <- erlang:processes(),"
    " erlang:check_process_code(P, M, [{allow_gc, false}]) =/= false]}"
    " || M <- Mods, erlang:check_old_code(M)]."
)
_RELDIR = (
    "D = case application:get_env(sasl, releases_dir) of {ok, X} -> X;"
    ' _ -> case os:getenv("RELDIR") of false -> filename:join(code:root_dir(), "releases");'
    " Y -> Y end end,"
    " A = case file:read_file_info(D) of {ok, I} -> element(4, I); E -> E end,"
    ' Df = os:cmd("df -Pk \'" ++ D ++ "\' 2>/dev/null"),'
    " {D, A, Df}."
)
_LOADED_MD5 = "[{M, M:module_info(md5)} || M <- Mods, code:is_loaded(M) =/= false]."
_SUP_LIVE = (
    "[{S, I, case S of {global, G} -> global:whereis_name(G); _ -> whereis(S) end}"
    " || {S, I} <- Refs]."
)


@dataclass(frozen=True, slots=True)
class Finding:
    """One thing a node check found; ``blocker`` findings make the node fail the check."""

    code: str
    message: str
    blocker: bool = True
    module: str = ""
    pid: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "message": self.message,
            "blocker": self.blocker,
            "module": self.module,
            "pid": self.pid,
        }

    def __str__(self) -> str:
        return f"{'BLOCKER' if self.blocker else 'warning'} {self.code}: {self.message}"


@dataclass(frozen=True, slots=True)
class SuspendTarget:
    """A process the relup would suspend: who supervises it, its modules, its answer."""

    pid: str
    supervisor: str
    id: str
    modules: tuple[str, ...]
    answered: bool
    queue_len: int | None = None
    current_function: str = ""
    reply: str = "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "pid": self.pid,
            "supervisor": self.supervisor,
            "id": self.id,
            "modules": list(self.modules),
            "answered_sys_get_status": self.answered,
            "message_queue_len": self.queue_len,
            "current_function": self.current_function,
            "reply": self.reply,
        }


@dataclass(frozen=True, slots=True)
class NodePlanCheck:
    """The outcome of the plan check on one node (``error`` set if it could not be read)."""

    node: str
    current_vsn: str = ""
    runs_old: bool = False
    suspend_targets: tuple[SuspendTarget, ...] = ()
    old_code: tuple[tuple[str, str, str], ...] = ()  # (module, pid, purge method)
    releases_dir: str = ""
    writable: bool | None = None
    free_bytes: int | None = None
    findings: tuple[Finding, ...] = ()
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error and not any(f.blocker for f in self.findings)

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "ok": self.ok,
            "error": self.error,
            "current_vsn": self.current_vsn,
            "runs_old": self.runs_old,
            "suspend_targets": [t.to_dict() for t in self.suspend_targets],
            "old_code": [
                dict(zip(("module", "pid", "purge"), o, strict=True)) for o in self.old_code
            ],
            "releases_dir": self.releases_dir,
            "releases_dir_writable": self.writable,
            "free_bytes": self.free_bytes,
            "findings": [f.to_dict() for f in self.findings],
        }


@dataclass(frozen=True, slots=True)
class PlanCheckReport:
    """One :class:`NodePlanCheck` per target; table, JSON and notebook HTML."""

    release: str
    old_vsn: str
    new_vsn: str
    nodes: tuple[NodePlanCheck, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    HEADERS = ("node", "ok", "release", "suspend targets", "old code", "releases dir", "findings")

    @property
    def ok(self) -> bool:
        return all(n.ok for n in self.nodes)

    def __getitem__(self, node: str) -> NodePlanCheck:
        return {n.node: n for n in self.nodes}[node]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "release": self.release,
            "from": self.old_vsn,
            "to": self.new_vsn,
            "nodes": [n.to_dict() for n in self.nodes],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=indent, ensure_ascii=False)

    def rows(self) -> list[list[str]]:
        out = []
        for n in self.nodes:
            if n.error:
                out.append([n.node, "no", "", "", "", "", n.error])
                continue
            quiet = sum(not t.answered for t in n.suspend_targets)
            targets = (
                f"{len(n.suspend_targets)} ({quiet} silent)"
                if quiet
                else str(len(n.suspend_targets))
            )
            wr = {True: "writable", False: "READ-ONLY", None: "?"}[n.writable]
            free = "" if n.free_bytes is None else f", {n.free_bytes >> 20} MiB free"
            out.append(
                [
                    n.node,
                    "yes" if n.ok else "no",
                    n.current_vsn + ("" if n.runs_old else " (not OLD)"),
                    targets,
                    " ".join(f"{m}@{p}" for m, p, _ in n.old_code) or "-",
                    f"{wr}{free}",
                    "; ".join(str(f) for f in n.findings) or "-",
                ]
            )
        return out

    def caption(self) -> str:
        good = sum(n.ok for n in self.nodes)
        return (
            f"plan check {self.release} {self.old_vsn} -> {self.new_vsn}: "
            f"{good}/{len(self.nodes)} nodes ok"
        )

    def to_table(self) -> str:
        return self.caption() + "\n" + render_table(self.HEADERS, self.rows())

    def __str__(self) -> str:
        return self.to_table()

    def _repr_html_(self) -> str:
        return render_html(self.HEADERS, self.rows(), self.caption())


@dataclass(frozen=True, slots=True)
class _RelupFacts:
    suspended: frozenset[str]
    purged: dict[str, str]  # module -> purge method of the load/remove
    sup_refs: tuple[tuple[Any, Any, str], ...]  # (SupRef, Id, function)


def _facts(plan: Any) -> _RelupFacts:
    script = plan.relup.up_from(plan.old_vsn)
    suspended: set[str] = set()
    purged: dict[str, str] = {}
    refs: list[tuple[Any, Any, str]] = []
    for item in script:
        if isinstance(item, Suspend):
            suspended |= {str.__str__(m) for m in item.module_names}
        elif isinstance(item, (Load, Remove)):
            soft = PurgeMethod.SOFT_PURGE
            purged[str.__str__(item.module)] = (
                "soft_purge" if item.pre_purge is soft else "brutal_purge"
            )
        elif (
            isinstance(item, Apply)
            and item.module == "supervisor"
            and len(item.args) == 2
            and item.function in ("restart_child", "terminate_child", "delete_child")
        ):
            refs.append((item.args[0], item.args[1], str.__str__(item.function)))
    return _RelupFacts(frozenset(suspended), purged, tuple(refs))


async def _drift(
    caller: Caller, n: str, plan: Any, findings: list[Finding], deadline: float
) -> None:
    """Applications and modules that differ from the OLD build (a hand patch, a partial
    earlier upgrade): the relup was made for the OLD build."""
    want_apps = plan.old_app_versions() if hasattr(plan, "old_app_versions") else {}
    if want_apps:
        try:
            running = await caller.rpc(
                n, "application", "which_applications", [], deadline=deadline
            )
        except StepFailed as exc:
            findings.append(
                Finding("apps_unknown", f"which_applications: {exc.error}", blocker=False)
            )
            running = []
        for item in running:
            if isinstance(item, tuple) and len(item) == 3:
                app, vsn = text_of(item[0]), text_of(item[2])
                if app in want_apps and want_apps[app] != vsn:
                    findings.append(
                        Finding(
                            "app_version_drift",
                            f"runs {app} {vsn}, the OLD release has {want_apps[app]}",
                        )
                    )
    md5s = plan.old_module_md5s() if hasattr(plan, "old_module_md5s") else {}
    if md5s:
        try:
            loaded = await caller.expr(
                n, _LOADED_MD5, {"Mods": [Atom(m) for m in md5s]}, deadline=deadline
            )
        except StepFailed as exc:
            findings.append(Finding("md5_unknown", f"module_info(md5): {exc.error}", blocker=False))
            loaded = []
        for mod, digest in loaded:
            m = text_of(mod)
            if isinstance(digest, bytes) and digest != md5s.get(m, digest):
                findings.append(
                    Finding(
                        "module_drift",
                        f"the loaded {m} is not the OLD build's (module_info(md5) differs): "
                        "patched by hand?",
                        blocker=False,
                        module=m,
                    )
                )


def _df_free(text: str) -> int | None:
    lines = [ln.split() for ln in text.splitlines() if ln.strip()]
    if len(lines) >= 2 and len(lines[-1]) >= 4 and lines[-1][3].isdigit():
        return int(lines[-1][3]) * 1024
    return None


async def _check_node(
    caller: Caller,
    n: str,
    plan: Any,
    facts: _RelupFacts,
    *,
    suspend_timeout: float,
    needed: int,
    deadline: float,
) -> NodePlanCheck:
    findings: list[Finding] = []
    try:
        rels = await caller.rpc(n, "release_handler", "which_releases", [], deadline=deadline)
    except StepFailed as exc:
        return NodePlanCheck(n, error=str(exc.error))
    status = {text_of(r[1]): text_of(r[3]) for r in rels if isinstance(r, tuple) and len(r) == 4}
    current = next((v for v, s in status.items() if s == "current"), None) or next(
        (v for v, s in status.items() if s == "permanent"), ""
    )
    runs_old = current == plan.old_vsn
    if not runs_old:
        findings.append(
            Finding(
                "not_old_release",
                f"runs {current or 'no release'}, the plan upgrades from {plan.old_vsn}",
            )
        )
    if plan.new_vsn in status:
        findings.append(
            Finding(
                "new_release_known",
                f"{plan.new_vsn} is already {status[plan.new_vsn]} here "
                "(unpack would say existing_release)",
                blocker=False,
            )
        )
    if any(s == "current" for s in status.values()) and any(
        s == "permanent" for s in status.values()
    ):
        findings.append(
            Finding(
                "not_permanent",
                f"release {current} is current but not "
                "permanent: finish or roll back that upgrade first",
            )
        )
    await _drift(caller, n, plan, findings, deadline)
    targets: list[SuspendTarget] = []
    if facts.suspended:
        try:
            procs = await caller.rpc(
                n, "release_handler_1", "get_supervised_procs", [], deadline=deadline
            )
        except StepFailed as exc:
            findings.append(
                Finding(
                    "supervised_procs_failed",
                    f"release_handler_1:get_supervised_procs() failed: "
                    f"{exc.error}; install_release would fail the same way",
                )
            )
            procs = []
        wanted = [
            (p[0], p[1], p[2], p[3])
            for p in procs
            if isinstance(p, tuple)
            and len(p) == 4
            and isinstance(p[3], list)
            and facts.suspended & {str.__str__(m) for m in p[3] if isinstance(m, str)}
        ]
        if wanted:
            t_ms = max(1, round(suspend_timeout * 1000))
            try:
                probes = await caller.expr(
                    n, _PROBE, {"Pids": [w[2] for w in wanted], "T": t_ms}, deadline=deadline
                )
            except StepFailed as exc:
                findings.append(Finding("probe_failed", f"sys:get_status probe: {exc.error}"))
                probes = []
            for (sup, cid, pid, mods), probe in zip(wanted, probes, strict=False):
                info = probe[1] if isinstance(probe[1], list) else []
                facts_ = {text_of(k): v for k, v in info if isinstance(k, str)} if info else {}
                reply = probe[2]
                answered = reply == "ok"
                cur = facts_.get("current_function")
                t = SuspendTarget(
                    str(pid),
                    text_of(sup) if isinstance(sup, str) else str(sup),
                    text_of(cid) if isinstance(cid, str) else str(cid),
                    tuple(sorted(text_of(m) for m in mods)),
                    answered,
                    facts_.get("message_queue_len"),
                    ""
                    if cur is None
                    else ":".join(str(x) for x in cur)
                    if isinstance(cur, tuple)
                    else str(cur),
                    "ok" if answered else str(jsonable(reply)),
                )
                targets.append(t)
                if not answered:
                    findings.append(
                        Finding(
                            "no_sys_reply",
                            f"{t.pid} ({t.id} under {t.supervisor}, runs {', '.join(t.modules)}) "
                            f"did not answer sys:get_status within {suspend_timeout:g} s "
                            f"(in {t.current_function or '?'}, {t.queue_len} queued): "
                            "release_handler could not suspend it",
                            pid=t.pid,
                        )
                    )
    old: list[tuple[str, str, str]] = []
    if facts.purged:
        try:
            found = await caller.expr(
                n, _OLD_CODE, {"Mods": [Atom(m) for m in facts.purged]}, deadline=deadline
            )
        except StepFailed as exc:
            findings.append(Finding("old_code_failed", f"old code check: {exc.error}"))
            found = []
        for mod, pids in found:
            m = text_of(mod)
            how = facts.purged.get(m, "brutal_purge")
            for pid in pids:
                old.append((m, str(pid), how))
            if pids:
                soft = how == "soft_purge"
                findings.append(
                    Finding(
                        "old_processes" if soft else "old_code_killed",
                        f"{len(pids)} process(es) still run old code of {m}: "
                        + (
                            "soft_purge refuses the install (old_processes)"
                            if soft
                            else "brutal_purge kills them"
                        ),
                        blocker=soft,
                        module=m,
                    )
                )
    if facts.sup_refs:
        refs = [(r[0], r[1]) for r in facts.sup_refs]
        try:
            live = await caller.expr(n, _SUP_LIVE, {"Refs": refs}, deadline=deadline)
        except StepFailed as exc:
            findings.append(Finding("supervisor_check_failed", f"supervisor lookup: {exc.error}"))
            live = []
        for sup, _cid, where in live:
            if where == "undefined":
                findings.append(
                    Finding(
                        "supervisor_not_running",
                        f"the relup calls supervisor functions on {jsonable(sup)}, which is not "
                        "registered here: that apply would crash the script after "
                        "point_of_no_return",
                    )
                )
    reldir, writable, free = "", None, None
    try:
        d, access, df = await caller.expr(n, _RELDIR, {}, deadline=deadline)
        reldir = text_of(d)
        writable = access in ("read_write", "write") if isinstance(access, str) else None
        free = _df_free(text_of(df))
    except (StepFailed, TypeError, ValueError) as exc:
        findings.append(Finding("releases_dir_unknown", f"releases dir: {exc}", blocker=False))
    if writable is False:
        findings.append(Finding("releases_dir_read_only", f"{reldir} is not writable"))
    if free is not None and free < needed:
        findings.append(
            Finding(
                "no_room",
                f"{reldir}: {free >> 20} MiB free, the upgrade needs about {needed >> 20} MiB",
            )
        )
    return NodePlanCheck(
        n, current, runs_old, tuple(targets), tuple(old), reldir, writable, free, tuple(findings)
    )


async def check_plan(
    caller: Caller,
    targets: Sequence[str],
    plan: Any,
    *,
    connect: Callable[[str, float], Awaitable[None]],
    node_timeout: float,
    concurrency: int | None,
    suspend_timeout: float,
) -> PlanCheckReport:
    """Check ``plan`` on every target (see the module docstring); never raises for a node."""
    facts = _facts(plan)
    needed = int(plan.needed_bytes()) if hasattr(plan, "needed_bytes") else 0
    loop = asyncio.get_running_loop()
    sem = asyncio.Semaphore(concurrency or len(targets) or 1)

    async def one(n: str) -> NodePlanCheck:
        async with sem:
            deadline = loop.time() + node_timeout
            await connect(n, deadline)
            return await _check_node(
                caller,
                n,
                plan,
                facts,
                suspend_timeout=suspend_timeout,
                needed=needed,
                deadline=deadline,
            )

    nodes = await asyncio.gather(*(one(n) for n in targets))
    return PlanCheckReport(plan.name, plan.old_vsn, plan.new_vsn, tuple(nodes))
