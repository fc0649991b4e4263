"""``journal show FILE``: where each node stands according to a driver journal."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from erlbridge.cli._common import EXIT_FAILED
from erlbridge.cli._options import output_option
from erlbridge.cli._output import Output
from erlbridge.display import Table

__all__ = ["journal"]


@click.group()
def journal() -> None:
    """Read the JSON-lines journals that `run`, `upgrade` and `downgrade` write."""


@journal.command("show")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--op", metavar="OP", help="Only records of this operation (e.g. upgrade:2.0.0).")
@output_option("Print one JSON document on stdout.")
def show(*, file: Path, op: str | None, output: Output) -> None:
    """Replay FILE and show where each node stands: its last step, steps in doubt, state.

    A step that was started but never finished (the Python process died, or the run was
    interrupted) is reported as in_doubt. Exit code 1 if any node is not ok.

    \b
    Examples:
      erlbridge journal show upgrade.journal
      erlbridge journal show upgrade.journal --op upgrade:2.0.0 --json
    """
    from erlbridge.driver import read_journal  # noqa: PLC0415

    try:
        state = read_journal(file, op=op)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="FILE") from exc
    data: dict[str, Any] = state.to_dict()
    if output.json_mode:
        output.json({"file": str(file), **data})
    else:
        runs = data["runs"]
        for run in runs:
            state_word = "finished" if run["finished"] else "not finished"
            output.line(f"run {run['run']}  {run['op']}  ({state_word})")
        if runs:
            output.line()
        rows = []
        for node, standing in data["nodes"].items():
            steps = ", ".join(
                f"{step}={info['status'] if info['phase'] == 'finished' else info['phase']}"
                for step, info in standing["steps"].items()
            )
            rows.append((node, standing["state"], standing["last_step"], steps))
        output.table(Table(("node", "state", "last step", "steps"), tuple(rows), None, "state"))
    if not data["nodes"] or any(s["state"] != "ok" for s in data["nodes"].values()):
        raise SystemExit(EXIT_FAILED)
