"""Generate one application's appup from its module diff (pure), after OTP's Appup Cookbook.

Up, in this order: ``add_module`` for new modules; ``load_module`` for changed library
modules; ``terminate_child`` + ``delete_child`` of children the supervisor loses;
``{update, M, {advanced, []}}`` for changed processes whose module exports
``code_change`` (``load_module`` and a warning for those without); ``{update, Sup,
supervisor}``; ``restart_child`` of children the supervisor gains; ``delete_module``
for removed modules. Down is the inverse, mirrored around the supervisor updates.

``DepMods`` of a module are the modules its new beam calls (imports chunk) that have a
dependency instruction of their own somewhere in the merged script of every appup
(systools refuses others with ``undef_module``). Child ids and supervisor names come
only from literals (:mod:`erlbridge.plan.supervisors`); where they are not literals a
warning asks for a hand-written ``apply``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from erlbridge.plan.build import AppBuild
from erlbridge.plan.diff import AppDiff, ModuleChange, ModuleKind
from erlbridge.plan.supervisors import ChildSpec, read_children
from erlbridge.plan.warnings import PlanWarning
from erlbridge.term import format_term
from erlbridge.upgrade import (
    AddModule,
    Advanced,
    Apply,
    Appup,
    AppupEntry,
    AppupInstruction,
    DeleteModule,
    LoadModule,
    Update,
)

__all__ = ["ChildMoves", "generate_appup", "instructed_modules", "supervisor_moves"]


@dataclass(frozen=True, slots=True)
class ChildMoves:
    """Children a supervisor gains and loses, with the ``SupRef`` to call."""

    supervisor: str
    name: Any
    added: tuple[ChildSpec, ...]
    removed: tuple[ChildSpec, ...]


def instructed_modules(diff: AppDiff) -> set[str]:
    """Modules that get a dependency instruction in the generated appup of ``diff``."""
    return {m.module for m in diff.modules}


def supervisor_moves(
    diff: AppDiff, old: AppBuild, new: AppBuild
) -> tuple[list[ChildMoves], list[PlanWarning]]:
    """Children gained/lost by each changed supervisor of ``diff``, read from literals."""
    moves: list[ChildMoves] = []
    warns: list[PlanWarning] = []
    for m in diff.changed:
        if m.kind is not ModuleKind.SUPERVISOR:
            continue
        ob, nb = old.beam(m.module), new.beam(m.module)
        oi, ni = read_children(ob), read_children(nb)
        if oi.simple or ni.simple:
            continue
        if not oi.children and not ni.children:
            warns.append(PlanWarning(
                "child_specs_unknown",
                "its child specs are built at run time (not literals): if it gains or loses "
                "a child, add the Cookbook's supervisor:restart_child / terminate_child + "
                "delete_child applies yourself (ship an appup or pass --appup)",
                diff.app, m.module))
            continue
        o_ids, n_ids = oi.ids(), ni.ids()
        added = [c for k, c in n_ids.items() if k not in o_ids]
        removed = [c for k, c in o_ids.items() if k not in n_ids]
        # A spec missing from one side's literals may just be built at run time there:
        # trust a move only if that side does not mention the child's module at all.
        sure_added = [c for c in added if c.start_module not in ob.atoms]
        sure_removed = [c for c in removed if c.start_module not in nb.atoms]
        for c in [c for c in added if c not in sure_added] + [
            c for c in removed if c not in sure_removed
        ]:
            warns.append(PlanWarning(
                "child_spec_unclear",
                f"child {format_term(c.id)} is a literal in only one build while the other "
                "still mentions its module: no apply generated; check the child specs",
                diff.app, m.module))
        for k, c in n_ids.items():
            if k in o_ids and o_ids[k].spec != c.spec:
                warns.append(PlanWarning(
                    "child_spec_changed",
                    f"the spec of child {format_term(c.id)} changed: {{update, "
                    f"{m.module}, supervisor}} installs it but the running child keeps its "
                    "old start arguments until it restarts",
                    diff.app, m.module))
        if not sure_added and not sure_removed:
            continue
        name = ni.name if ni.name is not None else oi.name
        if name is None:
            warns.append(PlanWarning(
                "supervisor_name_unknown",
                "it gains/loses children but no single {local, Name}/{global, Name} literal "
                "names it: add the restart_child / terminate_child applies yourself",
                diff.app, m.module))
            continue
        moves.append(ChildMoves(m.module, name, tuple(sure_added), tuple(sure_removed)))
    return moves, warns


def _deps(beam_imports: Iterable[str], module: str, instructed: frozenset[str]) -> list[str]:
    return sorted(m for m in set(beam_imports) if m in instructed and m != module)


def _load(m: ModuleChange, deps: list[str]) -> AppupInstruction:
    if m.kind is ModuleKind.SUPERVISOR:
        return Update(m.module, supervisor=True)
    if m.kind.is_process and m.code_change:
        return Update(m.module, Advanced([]), dep_mods=deps or None)
    return LoadModule(m.module, dep_mods=deps or None)


def _sup_apply(fn: str, name: Any, child: ChildSpec) -> Apply:
    return Apply("supervisor", fn, [name, child.id])


def generate_appup(
    diff: AppDiff,
    old: AppBuild,
    new: AppBuild,
    *,
    instructed: frozenset[str],
    moves: Iterable[ChildMoves] = (),
) -> tuple[Appup, list[PlanWarning]]:
    """The appup ``new.vsn`` from/to ``old.vsn`` for ``diff`` (see module docstring)."""
    warns: list[PlanWarning] = []
    imports: Mapping[str, frozenset[str]] = {
        m.module: (new if m.change != "removed" else old).beam(m.module).imported_modules
        for m in diff.modules
    }
    deps = {m: _deps(imports[m], m, instructed) for m in imports}
    moves = list(moves)
    adds = list(diff.added)
    removes = list(diff.removed)
    libs = [m for m in diff.changed
            if not m.kind.is_process and m.kind is not ModuleKind.SUPERVISOR]
    procs = [m for m in diff.changed if m.kind.is_process]
    sups = [m for m in diff.changed if m.kind is ModuleKind.SUPERVISOR]
    for m in procs:
        if not m.code_change:
            warns.append(PlanWarning(
                "no_code_change",
                f"a changed {m.kind} without code_change: load_module keeps each process's "
                "state as it is; export code_change if the state's shape changed",
                diff.app, m.module))
    for m in diff.modules:
        if m.nif and m.change == "changed":
            warns.append(PlanWarning(
                "nif_module",
                "loads a NIF: the NIF library needs an upgrade callback or the load fails "
                "after point_of_no_return; a changed .so behind an unchanged beam is never "
                "loaded", diff.app, m.module))
    stopped = {c.start_module for mv in moves for c in mv.removed}
    for m in removes:
        if m.kind is not ModuleKind.LIBRARY and m.module not in stopped:
            warns.append(PlanWarning(
                "process_module_removed",
                f"a removed {m.kind}: processes still running it are killed by the purge "
                "unless their supervisor stops them first", diff.app, m.module))
    up: list[AppupInstruction] = []
    up += [AddModule(m.module, deps[m.module] or None) for m in adds]
    up += [_load(m, deps[m.module]) for m in libs]
    for mv in moves:
        for c in mv.removed:
            up += [_sup_apply("terminate_child", mv.name, c),
                   _sup_apply("delete_child", mv.name, c)]
    up += [_load(m, deps[m.module]) for m in procs]
    up += [_load(m, deps[m.module]) for m in sups]
    up += [_sup_apply("restart_child", mv.name, c) for mv in moves for c in mv.added]
    up += [DeleteModule(m.module) for m in removes]

    down: list[AppupInstruction] = []
    # systools reads a down entry's DepMods as the same graph as the up entry's and reverses
    # the load order itself. A module added by the upgrade is deleted on the way down and
    # no old beam calls it: keeping it as a dependency would pull its remove/purge into the
    # dependent's group, ahead of the terminate_child that stops the process running it.
    added = {m.module for m in adds}
    deps = {m: [d for d in ds if d not in added] for m, ds in deps.items()}
    down += [AddModule(m.module, deps[m.module] or None) for m in removes]
    for mv in moves:
        for c in mv.added:
            down += [_sup_apply("terminate_child", mv.name, c),
                     _sup_apply("delete_child", mv.name, c)]
    down += [_load(m, deps[m.module]) for m in libs]
    down += [_load(m, deps[m.module]) for m in procs]
    down += [_load(m, deps[m.module]) for m in sups]
    down += [_sup_apply("restart_child", mv.name, c) for mv in moves for c in mv.removed]
    down += [DeleteModule(m.module) for m in adds]
    appup = Appup(new.vsn, [AppupEntry(old.vsn, up)], [AppupEntry(old.vsn, down)])
    return appup, warns

