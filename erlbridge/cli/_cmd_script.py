"""``script check|show|lint FILE``: offline work on upgrade scripts (no node needed)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from erlbridge.cli._common import EXIT_FAILED
from erlbridge.cli._options import output_option
from erlbridge.cli._output import Output
from erlbridge.cli._scriptfile import Loaded, appup_entries, labelled_scripts, load_file
from erlbridge.display import Table

__all__ = ["script"]

_FILE = click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))


@click.group()
def script() -> None:
    """Check, show and lint upgrade scripts offline.

    FILE may be a relup, an .appup, an Erlang-text instruction list, or a Python file that
    defines `script` (an erlbridge.upgrade.Script) or `build_script()`.
    """


def _findings(loaded: Loaded) -> list[dict[str, Any]]:
    """Diagnostics of every script in the file, as JSON-ready rows."""
    rows = []
    for label, s in labelled_scripts(loaded):
        for finding in s.diagnostics():
            rows.append(
                {
                    "script": label,
                    "severity": finding.severity.value,
                    "index": finding.index,
                    "rule": finding.rule,
                    "message": finding.message,
                }
            )
    return rows


def _report(
    output: Output,
    loaded: Loaded,
    rows: list[dict[str, Any]],
    *,
    fail_on: set[str],
) -> None:
    failing = [r for r in rows if r["severity"] in fail_on]
    if output.json_mode:
        output.json(
            {"file": str(loaded.path), "kind": loaded.kind, "ok": not failing, "findings": rows}
        )
    else:
        if rows:
            output.table(
                Table.from_records(
                    rows,
                    ("script", "severity", "index", "rule", "message"),
                    status_column="severity",
                )
            )
        errors = sum(1 for r in rows if r["severity"] == "error")
        warnings = sum(1 for r in rows if r["severity"] == "warning")
        verdict = "FAILED" if failing else "OK"
        output.line(
            f"{loaded.path} ({loaded.kind}): {verdict}, {errors} error(s), {warnings} warning(s)"
        )
    if failing:
        raise SystemExit(EXIT_FAILED)


@script.command("check")
@_FILE
@output_option()
def check(*, file: Path, output: Output) -> None:
    """Validate FILE by OTP's own rules (what release_handler would refuse).

    Exit code 1 if any script in FILE has an error; warnings are shown but do not fail.

    \b
    Examples:
      erlbridge script check _build/default/rel/app/releases/2.0.0/relup
      erlbridge script check apps/app/ebin/app.appup --json
      erlbridge script check patch.py
    """
    loaded = load_file(file)
    _report(output, loaded, _findings(loaded), fail_on={"error"})


@script.command("lint")
@_FILE
@click.option("--strict", is_flag=True, help="Fail on warnings too.")
@output_option()
def lint(*, file: Path, strict: bool, output: Output) -> None:
    """Report every finding in FILE (errors and warnings, with rule names).

    Warnings flag what OTP accepts but is risky: brutal_purge, scripts without
    point_of_no_return, sync_nodes in direct mode, and so on. Exit code 1 on errors, or
    on any finding with --strict.

    \b
    Examples:
      erlbridge script lint relup
      erlbridge script lint patch.py --strict
    """
    loaded = load_file(file)
    fail_on = {"error", "warning"} if strict else {"error"}
    _report(output, loaded, _findings(loaded), fail_on=fail_on)


@script.command("show")
@_FILE
@click.option(
    "--erlang",
    "as_erlang",
    is_flag=True,
    help="Print the script(s) as Erlang text (what a relup file holds).",
)
@output_option()
def show(*, file: Path, as_erlang: bool, output: Output) -> None:
    """Show the instructions in FILE, one row per instruction.

    \b
    Examples:
      erlbridge script show relup
      erlbridge script show patch.py --erlang
      erlbridge script show app.appup --json
    """
    loaded = load_file(file)
    sections = [(label, tuple(s)) for label, s in labelled_scripts(loaded)]
    sections += appup_entries(loaded)
    if output.json_mode:
        output.json(
            {
                "file": str(file),
                "kind": loaded.kind,
                "erlang": _text(loaded.obj),
                "scripts": [
                    {
                        "label": label,
                        "instructions": [
                            {"type": type(i).__name__, "erlang": _term_text(i)} for i in items
                        ],
                    }
                    for label, items in sections
                ],
            }
        )
        return
    if as_erlang:
        output.line(_text(loaded.obj).rstrip("\n"))
        return
    for label, items in sections:
        rows = tuple((index, type(i).__name__, _term_text(i)) for index, i in enumerate(items))
        output.table(Table(("#", "instruction", "Erlang"), rows, f"{file}: {label}"))


def _text(obj: Any) -> str:
    return str(obj.to_text())


def _term_text(instruction: Any) -> str:
    """One instruction as Erlang text (an application instruction shows its expansion)."""
    from erlbridge.term import format_term  # noqa: PLC0415

    term = instruction.to_term()
    if isinstance(term, list) and not isinstance(term, str):
        return ", ".join(format_term(t, width=10_000) for t in term)
    return format_term(term, width=10_000)
