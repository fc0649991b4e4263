"""The diff of two release builds and what each changed module is (pure).

Modules are compared by content, never by version attribute or compile time: by
``beam_lib:md5`` (the code chunks) plus the ``Attr`` chunk (a changed ``-behaviour``
lives only there). A module whose code differs only in source-path literals (``?FILE``,
logger macros, built in another directory) is reported in ``path_only`` and not as
changed. What a module is comes from the *new* beam (the old one for a removed module):
its behaviours and whether it exports ``code_change`` / ``system_code_change``.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Any

from erlbridge.plan.beam import MD5_CHUNKS, Beam
from erlbridge.plan.build import AppBuild, ReleaseBuild
from erlbridge.term import ErlString

__all__ = ["AppDiff", "ModuleChange", "ModuleKind", "ReleaseDiff", "classify", "compare_beams",
           "diff_builds"]

_PROCESS_BEHAVIOURS = {
    "gen_server": "gen_server", "Elixir.GenServer": "gen_server",
    "gen_statem": "gen_statem", "gen_event": "gen_event",
    "supervisor": "supervisor", "Elixir.Supervisor": "supervisor",
    "gen_fsm": "special", "supervisor_bridge": "special",
}
_PATH = re.compile(r"[\\/][^\n]*\.(erl|hrl|ex|exs)$")


class ModuleKind(enum.StrEnum):
    """What a module is, as far as the upgrade is concerned."""

    GEN_SERVER = "gen_server"
    GEN_STATEM = "gen_statem"
    GEN_EVENT = "gen_event"
    SUPERVISOR = "supervisor"
    SPECIAL = "special"  # a proc_lib special process (exports system_code_change/4)
    LIBRARY = "library"

    @property
    def is_process(self) -> bool:
        return self not in (ModuleKind.LIBRARY, ModuleKind.SUPERVISOR)


@dataclass(frozen=True, slots=True)
class ModuleChange:
    """One added, removed or changed module; ``kind``/``code_change`` from the new beam."""

    module: str
    change: str  # "added" | "removed" | "changed"
    kind: ModuleKind
    code_change: bool
    behaviours: tuple[str, ...] = ()
    nif: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"module": self.module, "change": self.change, "kind": str(self.kind),
                "exports_code_change": self.code_change, "behaviours": list(self.behaviours),
                "nif": self.nif}


@dataclass(frozen=True, slots=True)
class AppDiff:
    """One application present in both builds whose version or beams differ."""

    app: str
    old_vsn: str
    new_vsn: str
    modules: tuple[ModuleChange, ...] = ()
    path_only: tuple[str, ...] = ()

    def by_change(self, change: str) -> tuple[ModuleChange, ...]:
        return tuple(m for m in self.modules if m.change == change)

    @property
    def added(self) -> tuple[ModuleChange, ...]:
        return self.by_change("added")

    @property
    def removed(self) -> tuple[ModuleChange, ...]:
        return self.by_change("removed")

    @property
    def changed(self) -> tuple[ModuleChange, ...]:
        return self.by_change("changed")

    def to_dict(self) -> dict[str, Any]:
        return {"app": self.app, "from": self.old_vsn, "to": self.new_vsn,
                "added": [m.to_dict() for m in self.added],
                "removed": [m.to_dict() for m in self.removed],
                "changed": [m.to_dict() for m in self.changed],
                "path_literals_only": list(self.path_only)}


@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    """Applications added / removed / changed / unchanged between two builds.

    ``same_vsn_changed`` lists applications whose beams differ under an unchanged
    version: systools skips them and unpack keeps the old files (the plan refuses).
    """

    added: tuple[tuple[str, str], ...] = ()
    removed: tuple[tuple[str, str], ...] = ()
    changed: tuple[AppDiff, ...] = ()
    unchanged: tuple[tuple[str, str], ...] = ()
    same_vsn_changed: tuple[AppDiff, ...] = ()
    unreadable: tuple[str, ...] = field(default=())

    def app(self, name: str) -> AppDiff:
        for a in self.changed:
            if a.app == name:
                return a
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        return {"added": dict(self.added), "removed": dict(self.removed),
                "changed": [a.to_dict() for a in self.changed],
                "unchanged": dict(self.unchanged)}


def classify(beam: Beam) -> tuple[ModuleKind, bool]:
    """``(kind, exports code_change)`` of a beam, from its behaviours and exports."""
    exports = {f for f, _a in beam.exports}
    code_change = "code_change" in exports or "system_code_change" in exports
    for b in beam.behaviours:
        if b in _PROCESS_BEHAVIOURS:
            return ModuleKind(_PROCESS_BEHAVIOURS[b]), code_change
    if ("system_code_change", 4) in beam.exports:
        return ModuleKind.SPECIAL, True
    return ModuleKind.LIBRARY, code_change


def _strip_paths(term: Any) -> Any:
    if isinstance(term, ErlString):
        return "<path>" if _PATH.search(term.text) else term
    if isinstance(term, bytes):
        return "<path>" if _PATH.search(term.decode("latin-1")) else term
    if isinstance(term, tuple):
        return tuple(_strip_paths(t) for t in term)
    if isinstance(term, list):
        return [_strip_paths(t) for t in term]
    if isinstance(term, dict):
        return {k: _strip_paths(v) for k, v in term.items()}
    return term


def _attrs_without_vsn(beam: Beam) -> dict[str, list[Any]]:
    return {k: v for k, v in beam.attributes.items() if k != "vsn"}


def compare_beams(old: Beam, new: Beam) -> str:
    """``"same"``, ``"paths"`` (only source-path literals differ) or ``"changed"``
    (docs/internals/otp-facts.md#planning-upgrades-from-two-builds)."""
    if old.md5 == new.md5:
        return "same" if old.attr_bytes == new.attr_bytes else "changed"
    # The default -vsn is the md5, so it differs whenever md5 does: leave it out here.
    if _attrs_without_vsn(old) != _attrs_without_vsn(new):
        return "changed"
    if "vsn" in old.attributes and old.attributes["vsn"] != new.attributes.get("vsn") and not (
        _is_md5_vsn(old) and _is_md5_vsn(new)
    ):
        return "changed"
    for cid in MD5_CHUNKS:
        if cid != "LitT" and old.chunks.get(cid) != new.chunks.get(cid):
            return "changed"
    if _strip_paths(old.literals()) == _strip_paths(new.literals()):
        return "paths"
    return "changed"


def _is_md5_vsn(beam: Beam) -> bool:
    vsn = beam.attributes.get("vsn", [])
    return len(vsn) == 1 and isinstance(vsn[0], int)


def _change(module: str, change: str, beam: Beam) -> ModuleChange:
    kind, cc = classify(beam)
    nif = any(m == "erlang" and f == "load_nif" for m, f, _a in beam.imports)
    return ModuleChange(module, change, kind, cc, beam.behaviours, nif)


def diff_app(old: AppBuild, new: AppBuild) -> AppDiff:
    """The module diff of one application (its beams in both builds)."""
    old_mods, new_mods = set(old.beam_names()), set(new.beam_names())
    changes: list[ModuleChange] = []
    path_only: list[str] = []
    for m in sorted(new_mods - old_mods):
        changes.append(_change(m, "added", new.beam(m)))
    for m in sorted(old_mods - new_mods):
        changes.append(_change(m, "removed", old.beam(m)))
    for m in sorted(old_mods & new_mods):
        if old.beam_bytes(m) == new.beam_bytes(m):
            continue  # the same file (an OTP application copied from one install)
        verdict = compare_beams(old.beam(m), new.beam(m))
        if verdict == "changed":
            changes.append(_change(m, "changed", new.beam(m)))
        elif verdict == "paths":
            path_only.append(m)
    return AppDiff(old.name, old.vsn, new.vsn, tuple(changes), tuple(path_only))


def diff_builds(old: ReleaseBuild, new: ReleaseBuild) -> ReleaseDiff:
    """Compare two builds application by application (see :class:`ReleaseDiff`)."""
    added = tuple((a, b.vsn) for a, b in new.apps.items() if a not in old.apps)
    removed = tuple((a, b.vsn) for a, b in old.apps.items() if a not in new.apps)
    changed: list[AppDiff] = []
    unchanged: list[tuple[str, str]] = []
    same_vsn: list[AppDiff] = []
    unreadable: list[str] = []
    for name, n in new.apps.items():
        o = old.apps.get(name)
        if o is None:
            continue
        if o.dir is None or n.dir is None:
            if o.vsn == n.vsn:
                unchanged.append((name, n.vsn))
            else:
                unreadable.append(name)
                changed.append(AppDiff(name, o.vsn, n.vsn))
            continue
        if o.dir.resolve() == n.dir.resolve():
            unchanged.append((name, n.vsn))
            continue
        d = diff_app(o, n)
        if o.vsn != n.vsn:
            changed.append(d)
        elif d.modules:
            same_vsn.append(d)
        else:
            unchanged.append((name, n.vsn))
    return ReleaseDiff(added, removed, tuple(changed), tuple(unchanged), tuple(same_vsn),
                       tuple(unreadable))
