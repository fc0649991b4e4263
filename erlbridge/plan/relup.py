"""Make the relup with OTP's own ``systools:make_relup/4`` (through an :class:`ErlRunner`).

A scratch directory gets both ``.rel`` files and, per application, a ``lib/APP-VSN/ebin``
holding only its ``.app`` (and, for a changed application, the appup the plan uses):
that is all ``make_relup`` reads. Nothing is written into either build.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from erlbridge.exceptions import PlanError, ScriptError
from erlbridge.plan.build import ReleaseBuild, text
from erlbridge.plan.runner import ErlRunner
from erlbridge.term import format_term
from erlbridge.upgrade import Relup

__all__ = ["make_relup"]

_MAKE_RELUP = """
R = try systools:make_relup(New, [Old], [Old], [{path, Dirs}, silent, noexec])
    catch C:X -> {error, systools, {C, X}} end,
Txt = fun(M, F, T) -> unicode:characters_to_binary(io_lib:format("~ts",
          [try M:F(T) catch _:_ -> io_lib:format("~tp", [T]) end])) end,
case R of
    {ok, Relup, Mod, Ws} -> {ok, Relup, [Txt(Mod, format_warning, W) || W <- Ws]};
    {error, Mod, Reason} -> {error, Txt(Mod, format_error, Reason)};
    Other -> {error, unicode:characters_to_binary(io_lib:format("~tp", [Other]))}
end.
"""


def _erl_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _stage(build: ReleaseBuild, into: Path, appups: Mapping[str, str]) -> list[Path]:
    dirs: list[Path] = []
    into.mkdir(parents=True)
    shutil.copyfile(build.rel_file, into / f"{build.name}.rel")
    for app in build.apps.values():
        if app.app_file is None:
            continue  # not bundled: systools finds it on the runner's own code path
        ebin = into / "lib" / f"{app.name}-{app.vsn}" / "ebin"
        ebin.mkdir(parents=True)
        shutil.copyfile(app.app_file, ebin / f"{app.name}.app")
        if app.name in appups:
            (ebin / f"{app.name}.appup").write_text(appups[app.name], encoding="utf-8")
        dirs.append(ebin)
    return dirs


def make_relup(
    old: ReleaseBuild, new: ReleaseBuild, appups: Mapping[str, str], runner: ErlRunner
) -> tuple[Relup, list[str]]:
    """The relup from ``old`` to ``new`` with ``appups`` (app -> appup file text) and
    systools' warnings. PlanError with systools' own message if it refuses."""
    with tempfile.TemporaryDirectory(prefix="erlbridge-relup-") as tmp:
        work = Path(tmp)
        new_dirs = _stage(new, work / "new", appups)
        old_dirs = _stage(old, work / "old", {})
        dirs = "[" + ",".join(_erl_string(str(d)) for d in new_dirs + old_dirs) + "]"
        expr = (
            f"New = {_erl_string(str(work / 'new' / new.name))},"
            f" Old = {_erl_string(str(work / 'old' / old.name))}, Dirs = {dirs},"
            + _MAKE_RELUP
        )
        result: Any = runner.eval(expr, workdir=work)
    if not (isinstance(result, tuple) and result and result[0] == "ok"):
        reason = text(result[1]) if isinstance(result, tuple) and len(result) > 1 else result
        raise PlanError(f"systools:make_relup refused: {' '.join(str(reason).split())}")
    try:
        relup = Relup.from_term(result[1])
    except ScriptError as exc:
        raise PlanError(f"systools made a relup erlbridge cannot read: {exc}: "
                           f"{format_term(result[1])[:500]}") from exc
    return relup, [" ".join(text(w).split()) for w in result[2]]
