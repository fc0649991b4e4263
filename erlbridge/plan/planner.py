"""``plan_upgrade(old, new)``: two builds of a release -> appups, relup, warnings.

Steps: read both builds (:mod:`.build`), diff them (:mod:`.diff`), refuse what would
not deploy, keep each shipped appup that covers the version change and generate the
others (:mod:`.generate`), lint, then let OTP's ``systools:make_relup`` make the relup
(:mod:`.relup`, through an :class:`ErlRunner` of the release's OTP) and validate it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from erlbridge.exceptions import ErlbridgeError, PlanError, ScriptError, TermError
from erlbridge.plan.build import ReleaseBuild, open_build
from erlbridge.plan.diff import AppDiff, ReleaseDiff, diff_builds
from erlbridge.plan.generate import generate_appup, instructed_modules, supervisor_moves
from erlbridge.plan.relup import make_relup
from erlbridge.plan.result import UpgradePlan
from erlbridge.plan.runner import ErlRunner, pick_runner
from erlbridge.plan.warnings import PlanWarning
from erlbridge.term import parse_terms
from erlbridge.upgrade import (
    AddModule,
    Appup,
    AppupInstruction,
    DeleteModule,
    LoadModule,
    PurgeMethod,
    Update,
)

__all__ = ["plan_upgrade"]

logger = logging.getLogger(__name__)

_DEP_INSTRUCTIONS = (LoadModule, Update, AddModule, DeleteModule)


def _read_appup(path: Path, vsn: str | None = None) -> tuple[Appup, str]:
    """An appup file as systools reads it: its first term (later ones are history).

    An ``.appup.src`` script is evaluated by a local ``erl`` with ``VSN`` bound to ``vsn``
    (as rebar3 does) and its value written back as plain appup text."""
    if path.name.endswith(".src"):
        from erlbridge.appup_src import load_appup_file  # noqa: PLC0415 (runs erl)

        try:
            appup = load_appup_file(path, {"VSN": vsn} if vsn is not None else None)
        except (OSError, ScriptError, ErlbridgeError) as exc:
            raise PlanError(f"{path}: {' '.join(str(exc).split())}") from exc
        return appup, appup.to_text()
    try:
        text = path.read_text(encoding="utf-8")
        terms = parse_terms(text)
        if not terms:
            raise PlanError(f"{path}: empty appup file")
        return Appup.from_term(terms[0]), text
    except (OSError, UnicodeDecodeError, ScriptError, TermError) as exc:
        raise PlanError(f"{path}: not a readable appup: {' '.join(str(exc).split())}") from exc


def _covers(appup: Appup, old_vsn: str) -> bool:
    try:
        appup.up_from(old_vsn)
        appup.down_to(old_vsn)
    except KeyError:
        return False
    return True


def _named(instrs: tuple[AppupInstruction, ...]) -> set[str]:
    return {str.__str__(i.module) for i in instrs if isinstance(i, _DEP_INSTRUCTIONS)}


def _shipped_lints(app: AppDiff, appup: Appup, new_modules: set[str]) -> list[PlanWarning]:
    up = appup.up_from(app.old_vsn)
    named = _named(up)
    out: list[PlanWarning] = []
    moved = {m.module for m in app.modules}
    for m in sorted(moved - named):
        out.append(PlanWarning("module_not_in_appup",
                               "changed/added/removed but the shipped appup does not name it",
                               app.app, m))
    for m in sorted(named - moved):
        what = "is unchanged" if m in new_modules else "is in neither build of the app"
        out.append(PlanWarning("appup_names_unchanged_module",
                               f"the shipped appup names it but it {what}", app.app, m))
    for i in up:
        if isinstance(i, (LoadModule, Update)) and i.pre_purge is PurgeMethod.SOFT_PURGE:
            out.append(PlanWarning(
                "soft_purge",
                "soft_purge: install_release refuses with old_processes if a process still "
                "runs old code of it (check the cluster with check_plan)",
                app.app, str.__str__(i.module)))
    return out


def _refusals(diff: ReleaseDiff, old: ReleaseBuild, new: ReleaseBuild) -> None:
    if old.vsn == new.vsn:
        raise PlanError(f"both builds are release {new.vsn}: give the new build a new version")
    if diff.same_vsn_changed:
        a = diff.same_vsn_changed[0]
        mods = ", ".join(m.module for m in a.modules[:5])
        raise PlanError(
            f"application {a.app} has other code ({mods}) under its old version {a.old_vsn}: "
            "systools skips it and unpack_release keeps the old files; bump its vsn")
    if diff.unreadable:
        raise PlanError(f"application {diff.unreadable[0]} changed version but a build does "
                        "not bundle its lib dir: cannot diff it")
    for app in diff.changed:
        b = new.apps[app.app]
        declared = set(b.declared_modules)
        for m in app.modules:
            if m.change != "removed" and m.module not in declared:
                raise PlanError(f"{app.app}: module {m.module} has a beam but is not in the "
                                f"modules of {app.app}.app (systools: no_such_module)")
    owner: dict[str, str] = {}
    for name, b in new.apps.items():
        for mod in b.declared_modules:
            if mod in owner:
                raise PlanError(f"module {mod} is in both {owner[mod]} and {name} "
                                "(systools: muldef_module)")
            owner[mod] = name


def plan_upgrade(
    old: str | Path,
    new: str | Path,
    *,
    appups: Mapping[str, str | Path] | None = None,
    erl: ErlRunner | None = None,
) -> UpgradePlan:
    """Plan the upgrade from build ``old`` to build ``new`` (and the downgrade back).

    ``old``/``new``: relx release directories (``_build/<profile>/rel/<name>``) or release
    tarballs. ``appups``: app -> appup file to use instead of what NEW ships or what would
    be generated (counted as shipped). ``erl``: how to run systools (default: the local
    ``erl`` when it is the release's OTP, else an ``erlbridge-base:otp<N>`` container).
    Raises PlanError (one-line reason) when the plan cannot be made or would not deploy.
    """
    old_b = open_build(old)
    new_b = open_build(new)
    warnings: list[PlanWarning] = []
    if old_b.name != new_b.name:
        warnings.append(PlanWarning("release_renamed",
                                    f"the release is {old_b.name} in OLD and {new_b.name} in NEW"))
    diff = diff_builds(old_b, new_b)
    _refusals(diff, old_b, new_b)
    overrides = {k: Path(v) for k, v in (appups or {}).items()}
    for name in overrides:
        if name not in {a.app for a in diff.changed}:
            raise PlanError(f"--appup {name}: {name} is not an application that changes version")

    chosen: dict[str, Appup] = {}
    texts: dict[str, str] = {}
    shipped: set[str] = set()
    for app in diff.changed:
        path = overrides.get(app.app) or new_b.apps[app.app].appup_file
        if path is None:
            continue
        appup, text = _read_appup(path, app.new_vsn)
        if _covers(appup, app.old_vsn):
            if appup.version.text != app.new_vsn:
                warnings.append(PlanWarning(
                    "appup_vsn_mismatch",
                    f"the appup says {appup.version.text}, the app is {app.new_vsn}", app.app))
            chosen[app.app], texts[app.app] = appup, text
            shipped.add(app.app)
        else:
            warnings.append(PlanWarning(
                "shipped_appup_stale",
                f"{path.name} has no up and down entry for {app.old_vsn}: generated one "
                "instead (its other entries are kept after it)", app.app))
    instructed: set[str] = set()
    for app in diff.changed:
        if app.app in chosen:
            instructed |= _named(chosen[app.app].up_from(app.old_vsn))
        else:
            instructed |= instructed_modules(app)
    generated: set[str] = set()
    for app in diff.changed:
        ob, nb = old_b.apps[app.app], new_b.apps[app.app]
        if app.app in chosen:
            warnings += _shipped_lints(app, chosen[app.app], set(nb.beam_names()))
            continue
        moves, sup_warns = supervisor_moves(app, ob, nb)
        appup, gen_warns = generate_appup(app, ob, nb, instructed=frozenset(instructed),
                                          moves=moves)
        stale = nb.appup_file
        if stale is not None:  # keep a stale appup's history after the generated entries
            try:
                old_appup, _ = _read_appup(stale)
                if old_appup.version.text == app.new_vsn:
                    appup = Appup(appup.version, appup.up + old_appup.up,
                                  appup.down + old_appup.down)
            except PlanError:
                pass
        chosen[app.app], texts[app.app] = appup, appup.to_text()
        generated.add(app.app)
        warnings += sup_warns + gen_warns
        if app.path_only:
            warnings.append(PlanWarning(
                "path_literals_only",
                f"{len(app.path_only)} module(s) differ only in source-path literals (?FILE), "
                f"not reloaded: {', '.join(app.path_only[:5])}; build with `deterministic`",
                app.app))
    for app in diff.changed:
        if new_b.apps[app.app].app_key("included_applications"):
            warnings.append(PlanWarning(
                "included_applications",
                "it includes other applications: their processes hang under its supervisors "
                "and systools' appup handling does not follow them; review the relup by hand",
                app.app))
    warnings += _cycles(chosen, diff)

    runner, note = (erl, None) if erl is not None else pick_runner(new_b.otp_major)
    if note:
        warnings.append(PlanWarning("otp_mismatch", note))
    relup, systools_warnings = make_relup(old_b, new_b, texts, runner)
    warnings += [PlanWarning("systools", w) for w in systools_warnings]
    try:
        relup.validate()
    except ScriptError as exc:
        raise PlanError(f"the relup systools made is invalid: {exc}") from exc
    return UpgradePlan(
        old_build=old_b, new_build=new_b, diff=diff, appups=chosen, appup_texts=texts,
        generated=frozenset(generated), relup=relup, warnings=warnings, runner=runner.label,
    )


def _cycles(appups: Mapping[str, Appup], diff: ReleaseDiff) -> list[PlanWarning]:
    graph: dict[str, set[str]] = {}
    for app in diff.changed:
        appup = appups.get(app.app)
        if appup is None:
            continue
        for i in appup.up_from(app.old_vsn):
            deps = getattr(i, "dep_mods", None)
            if isinstance(i, _DEP_INSTRUCTIONS) and deps:
                graph.setdefault(str.__str__(i.module), set()).update(map(str.__str__, deps))
    out: list[PlanWarning] = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt):], nxt] if nxt in path else [node, nxt]
                out.append(PlanWarning(
                    "dep_cycle", f"DepMods form a cycle: {' -> '.join(cycle)}; systools loads "
                    "the group in an order it picks", module=nxt))
            elif state.get(nxt) is None:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    return out
