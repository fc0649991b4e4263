"""Load the files ``script`` and ``run`` accept.

Kinds (decided by content, with the file name as a hint):

* ``python`` — a ``.py`` file that defines ``script`` (a :class:`~erlbridge.upgrade.Script`)
  or a ``build_script()`` function returning one; it may also define ``relup`` (a
  :class:`~erlbridge.upgrade.Relup`) or ``appup``. The file is executed: only load files
  you trust.
* ``relup`` — Erlang text ``{Vsn, [{UpFrom, Descr, Instrs}], [{DownTo, Descr, Instrs}]}.``
* ``appup`` — Erlang text ``{Vsn, [{UpFrom, Instrs}], [{DownTo, Instrs}]}.``
* ``script`` — Erlang text of an instruction list ``[Instr, ...].``
"""

from __future__ import annotations

import runpy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

__all__ = [
    "Loaded",
    "appup_entries",
    "labelled_scripts",
    "load_file",
    "load_script_for_run",
]


@dataclass(frozen=True, slots=True)
class Loaded:
    """What a file held: ``kind`` and the object (Script, Relup or Appup)."""

    path: Path
    kind: str
    obj: Any


def load_file(path: Path) -> Loaded:
    """Load ``path``; malformed content is a usage error (exit code 2)."""
    from erlbridge import upgrade  # noqa: PLC0415
    from erlbridge.exceptions import ErlbridgeError  # noqa: PLC0415

    if path.suffix == ".py":
        return _load_python(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise click.BadParameter(f"cannot read {path}: {exc}", param_hint="FILE") from exc
    try:
        from erlbridge.term import parse_terms  # noqa: PLC0415

        terms = parse_terms(text)
        if len(terms) != 1:
            raise click.BadParameter(
                f"{path} holds {len(terms)} terms; expected exactly one", param_hint="FILE"
            )
        term = terms[0]
        if isinstance(term, list):
            return Loaded(path, "script", upgrade.Script.from_term(term))
        if path.name == "relup" or path.name.startswith("relup"):
            return Loaded(path, "relup", upgrade.Relup.from_term(term))
        kind = _tuple_kind(term, path)
        if kind == "relup":
            return Loaded(path, "relup", upgrade.Relup.from_term(term))
        return Loaded(path, "appup", upgrade.Appup.from_term(term))
    except ErlbridgeError as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="FILE") from exc


def _tuple_kind(term: Any, path: Path) -> str:
    if not (isinstance(term, tuple) and len(term) == 3 and isinstance(term[1], list)):
        raise click.BadParameter(
            f"{path} is neither an instruction list, a relup nor an appup", param_hint="FILE"
        )
    entries = term[1] or term[2]
    if path.suffix == ".appup" or (
        entries and isinstance(entries[0], tuple) and len(entries[0]) == 2
    ):
        return "appup"
    return "relup"


def _load_python(path: Path) -> Loaded:
    from erlbridge import upgrade  # noqa: PLC0415

    try:
        namespace = runpy.run_path(str(path), run_name="__erlbridge_script__")
    except Exception as exc:
        raise click.BadParameter(
            f"{path} raised {type(exc).__name__}: {exc}", param_hint="FILE"
        ) from exc
    if "script" in namespace and isinstance(namespace["script"], upgrade.Script):
        return Loaded(path, "script", namespace["script"])
    builder = namespace.get("build_script")
    if callable(builder):
        built = builder()
        if not isinstance(built, upgrade.Script):
            raise click.BadParameter(
                f"{path}: build_script() returned {type(built).__name__}, not a Script",
                param_hint="FILE",
            )
        return Loaded(path, "script", built)
    for name, kind, cls in (("relup", "relup", upgrade.Relup), ("appup", "appup", upgrade.Appup)):
        if isinstance(namespace.get(name), cls):
            return Loaded(path, kind, namespace[name])
    raise click.BadParameter(
        f"{path} defines no `script` (a Script), `build_script()`, `relup` or `appup`",
        param_hint="FILE",
    )


def labelled_scripts(loaded: Loaded) -> list[tuple[str, Any]]:
    """Every Script in the file with a label (``script``, ``up from 1.0.0``, ...).

    An appup holds high-level instructions that ``systools_rc`` translates on a node, so
    it has no Script here: its entries are listed by :func:`appup_entries`.
    """
    if loaded.kind == "script":
        return [("script", loaded.obj)]
    if loaded.kind == "relup":
        relup = loaded.obj
        return [(f"up from {_version(e.version)}", e.script) for e in relup.up] + [
            (f"down to {_version(e.version)}", e.script) for e in relup.down
        ]
    return []


def appup_entries(loaded: Loaded) -> list[tuple[str, tuple[Any, ...]]]:
    """An appup's entries as ``(label, instructions)``; empty for other kinds."""
    if loaded.kind != "appup":
        return []
    appup = loaded.obj
    return [(f"up from {_version(e.version)}", e.instructions) for e in appup.up] + [
        (f"down to {_version(e.version)}", e.instructions) for e in appup.down
    ]


def _version(spec: Any) -> str:
    if isinstance(spec, bytes):
        return "~r/" + spec.decode("utf-8", "replace") + "/"
    return str(getattr(spec, "text", spec))


def load_script_for_run(path: Path, from_vsn: str | None) -> Any:
    """The one Script to run: the file's script, or a relup's up-script from VSN."""
    loaded = load_file(path)
    if loaded.kind == "script":
        return loaded.obj
    if loaded.kind == "appup":
        raise click.UsageError(
            f"{path} is an appup: its high-level instructions are translated by systools on "
            "the node; build a relup (or a Script) to run it"
        )
    if not from_vsn:
        raise click.UsageError(f"{path} is a relup: pass --from VSN to pick its up-script")
    try:
        return loaded.obj.up_from(from_vsn)
    except (KeyError, LookupError) as exc:
        raise click.UsageError(f"{path} has no up-script from {from_vsn}") from exc
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from") from exc
