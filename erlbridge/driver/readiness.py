"""Readiness of target nodes for an upgrade: model (pure) and gathering (I/O via the Node).

Per node: OTP release and ERTS version, ``which_releases``, running applications with
versions, modules with old code (``erlang:check_old_code/1`` over ``code:all_loaded()``),
processes still running old code of the modules a script touches
(``erlang:check_process_code/2``), and whether the release directory is writable.
A node that cannot be read has ``error`` set and the other fields empty.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from erlbridge.driver.remote_calls import Caller, StepFailed, text_of
from erlbridge.driver.rendering import jsonable, render_html, render_table, term_text

__all__ = ["NodeReadiness", "ReadinessReport", "gather_readiness"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.readiness")

# Evaluated on the target (erl_eval): one round trip instead of one per module.
_OLD_CODE = "[M || {M, _} <- code:all_loaded(), erlang:check_old_code(M)]."
_OLD_PROCS = (
    "[{M, P} || M <- Mods, erlang:check_old_code(M),"
    " P <- erlang:processes(), erlang:check_process_code(P, M)]."
)
_RELDIR = (
    "D = case application:get_env(sasl, releases_dir) of"
    ' {ok, X} -> X; _ -> case os:getenv("RELDIR") of'
    ' false -> filename:join(code:root_dir(), "releases"); Y -> Y end end,'
    " W = case file:read_file_info(D) of {ok, I} -> element(4, I); E -> E end,"
    " {D, W}."
)


@dataclass(frozen=True, slots=True)
class NodeReadiness:
    """Readiness facts of one node (see module docstring)."""

    node: str
    otp_release: str = ""
    erts_version: str = ""
    releases: tuple[tuple[str, str, str], ...] = ()  # (name, vsn, status)
    applications: tuple[tuple[str, str], ...] = ()  # (app, vsn)
    old_code_modules: tuple[str, ...] = ()
    old_code_processes: tuple[tuple[str, str], ...] = ()  # (module, pid)
    releases_dir: str = ""
    releases_dir_writable: bool | None = None
    error: str = ""
    notes: tuple[str, ...] = ()

    @property
    def ready(self) -> bool:
        """Reachable, no process runs old code of touched modules, releases dir writable
        (when it could be checked)."""
        return (
            not self.error
            and not self.old_code_processes
            and self.releases_dir_writable is not False
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "node": self.node,
            "ready": self.ready,
            "otp_release": self.otp_release,
            "erts_version": self.erts_version,
            "releases": [
                dict(zip(("name", "vsn", "status"), r, strict=True)) for r in self.releases
            ],
            "applications": dict(self.applications),
            "old_code_modules": list(self.old_code_modules),
            "old_code_processes": [list(p) for p in self.old_code_processes],
            "releases_dir": self.releases_dir,
            "releases_dir_writable": self.releases_dir_writable,
            "error": self.error,
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True)
class ReadinessReport:
    """Readiness of every target, rendered as a table, JSON or notebook HTML."""

    nodes: tuple[NodeReadiness, ...]
    touched_modules: tuple[str, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(n.ready for n in self.nodes)

    def __getitem__(self, node: str) -> NodeReadiness:
        return {n.node: n for n in self.nodes}[node]

    def to_dict(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "touched_modules": list(self.touched_modules),
            "nodes": [n.to_dict() for n in self.nodes],
        }

    def to_json(self, *, indent: int | None = 2) -> str:
        return json.dumps(jsonable(self.to_dict()), indent=indent, ensure_ascii=False)

    _HEADERS = (
        "node",
        "ready",
        "otp/erts",
        "releases",
        "apps",
        "old code",
        "old procs",
        "releases dir",
    )

    def _rows(self) -> list[list[str]]:
        rows = []
        for n in self.nodes:
            if n.error:
                rows.append([n.node, "no", "", "", "", "", "", n.error])
                continue
            rels = " ".join(f"{v}:{s}" for _, v, s in n.releases)
            apps = " ".join(
                f"{a}-{v}"
                for a, v in n.applications
                if a not in ("kernel", "stdlib", "sasl", "compiler", "crypto")
            )
            procs = " ".join(f"{m}@{p}" for m, p in n.old_code_processes)
            wr = {True: "writable", False: "READ-ONLY", None: "?"}[n.releases_dir_writable]
            rows.append(
                [
                    n.node,
                    "yes" if n.ready else "no",
                    f"{n.otp_release}/{n.erts_version}",
                    rels,
                    apps,
                    " ".join(n.old_code_modules) or "-",
                    procs or "-",
                    f"{n.releases_dir} ({wr})",
                ]
            )
        return rows

    def _caption(self) -> str:
        ok = sum(n.ready for n in self.nodes)
        return f"readiness: {ok}/{len(self.nodes)} nodes ready"

    def to_table(self) -> str:
        return self._caption() + "\n" + render_table(self._HEADERS, self._rows())

    def __str__(self) -> str:
        return self.to_table()

    def _repr_html_(self) -> str:
        return render_html(self._HEADERS, self._rows(), self._caption())


async def _try(notes: list[str], what: str, coro: Any) -> Any:
    try:
        return await coro
    except StepFailed as exc:
        notes.append(f"{what}: {exc.error}")
        return None


async def gather_readiness(
    caller: Caller, target: str, touched: Sequence[str], *, deadline: float
) -> NodeReadiness:
    """Read one node's readiness; a node that cannot be reached gets ``error`` set."""
    from erlbridge.term import Atom  # noqa: PLC0415 (kept local: only needed here)

    notes: list[str] = []
    try:
        otp = await caller.rpc(
            target, "erlang", "system_info", [Atom("otp_release")], deadline=deadline
        )
    except StepFailed as exc:
        return NodeReadiness(target, error=str(exc.error))
    erts = await _try(
        notes,
        "erts",
        caller.rpc(target, "erlang", "system_info", [Atom("version")], deadline=deadline),
    )
    rels = await _try(
        notes,
        "which_releases",
        caller.rpc(target, "release_handler", "which_releases", [], deadline=deadline),
    )
    apps = await _try(
        notes,
        "which_applications",
        caller.rpc(target, "application", "which_applications", [], deadline=deadline),
    )
    old = await _try(notes, "old code", caller.expr(target, _OLD_CODE, {}, deadline=deadline))
    procs: Any = []
    if touched:
        procs = await _try(
            notes,
            "old processes",
            caller.expr(
                target, _OLD_PROCS, {"Mods": [Atom(m) for m in touched]}, deadline=deadline
            ),
        )
    reldir = await _try(notes, "releases dir", caller.expr(target, _RELDIR, {}, deadline=deadline))
    writable: bool | None = None
    reldir_text = ""
    if isinstance(reldir, tuple):
        reldir_text = text_of(reldir[0])
        access = reldir[1]
        writable = access in ("read_write", "write") if isinstance(access, str) else None
        if writable is None:
            notes.append(f"releases dir: {term_text(access)}")
    return NodeReadiness(
        node=target,
        otp_release=text_of(otp),
        erts_version="" if erts is None else text_of(erts),
        releases=tuple(
            (text_of(r[0]), text_of(r[1]), text_of(r[3]))
            for r in rels or []
            if isinstance(r, tuple) and len(r) == 4
        ),
        applications=tuple(
            (text_of(a[0]), text_of(a[2]))
            for a in apps or []
            if isinstance(a, tuple) and len(a) == 3
        ),
        old_code_modules=tuple(sorted(text_of(m) for m in old or [])),
        old_code_processes=tuple((text_of(m), str(p)) for m, p in procs or []),
        releases_dir=reldir_text,
        releases_dir_writable=writable,
        notes=tuple(notes),
    )
