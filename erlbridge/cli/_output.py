"""Everything the CLI writes: tables and JSON on stdout, progress and notes on stderr.

``--json`` makes stdout exactly one JSON document (so ``erlbridge ... --json | jq`` works);
progress and warnings always go to stderr. Progress is one line per node: on a terminal the
lines are redrawn in place (rich ``Live``); otherwise each change is printed as a plain line
``node: status detail`` so CI logs stay readable.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table as RichTable
from rich.text import Text

from erlbridge.display import Table, format_duration, plain, status_style, to_jsonable

__all__ = ["Output", "NodeProgress"]


class Output:
    """Writes results in the mode the user chose (human tables or one JSON document)."""

    def __init__(
        self,
        *,
        json_mode: bool,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        quiet: bool = False,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._stdout = stdout or sys.stdout
        self._stderr = stderr or sys.stderr
        self.console = Console(file=self._stdout, highlight=False, soft_wrap=True)
        self.err = Console(file=self._stderr, highlight=False, soft_wrap=True)

    def json(self, data: Any) -> None:
        """Write ``data`` as the one JSON document of this command."""
        self._stdout.write(json.dumps(to_jsonable(data), indent=2, sort_keys=False) + "\n")
        self._stdout.flush()

    def table(self, table: Table) -> None:
        """Write a table (rich on a terminal, plain aligned text otherwise)."""
        if not self.console.is_terminal:
            self._stdout.write(str(table) + "\n")
            return
        rich_table = RichTable(title=table.caption, title_justify="left")
        for column in table.columns:
            rich_table.add_column(column)
        status_index = table.columns.index(table.status_column) if table.status_column else -1
        for row in table.rows:
            cells: list[Text | str] = []
            for index, cell in enumerate(row):
                text = "" if cell is None else _plain(cell)
                style = status_style(text) if index == status_index else None
                cells.append(Text(text, style=style or ""))
            rich_table.add_row(*cells)
        self.console.print(rich_table)

    def line(self, text: str = "") -> None:
        """A plain line on stdout (human mode only), flushed (a reader may be waiting)."""
        self._stdout.write(text + "\n")
        self._stdout.flush()

    def note(self, text: str) -> None:
        """A remark on stderr (hidden with ``--quiet``)."""
        if not self.quiet:
            self.err.print(text, markup=False, highlight=False)

    def warn(self, text: str) -> None:
        """A warning on stderr (always shown)."""
        self.err.print(Text("warning: ", style="yellow") + Text(text))

    def progress(self, title: str, nodes: Sequence[str]) -> NodeProgress:
        """A per-node progress display for ``nodes`` (use as a context manager)."""
        return NodeProgress(self.err, title, nodes, enabled=not self.quiet)


def _plain(cell: Any) -> str:
    if isinstance(cell, list | tuple) and type(cell) in (list, tuple):
        return ", ".join(_plain(c) for c in cell)
    return plain(cell)


class NodeProgress:
    """One line per node: redrawn in place on a TTY, printed as plain lines otherwise."""

    def __init__(
        self, console: Console, title: str, nodes: Sequence[str], *, enabled: bool = True
    ) -> None:
        self._console = console
        self._title = title
        self._enabled = enabled
        self._tty = console.is_terminal
        self._start = time.monotonic()
        # node -> [status, detail, started (monotonic) or None, ended or None]
        self._rows: dict[str, list[Any]] = {n: ["waiting", "", None, None] for n in nodes}
        self._live: Live | None = None

    def __enter__(self) -> NodeProgress:
        if self._enabled and self._tty:
            self._live = Live(
                self._render(), console=self._console, refresh_per_second=8, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._render())
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def update(self, node: str, status: str, detail: str = "") -> None:
        """Record ``node``'s new status; redraw (TTY) or print one line (not a TTY)."""
        now = time.monotonic()
        row = self._rows.setdefault(node, ["waiting", "", None, None])
        repeated = row[0] == status
        if row[2] is None and status != "waiting":
            row[2] = now
        row[0], row[1] = status, detail
        row[3] = now if _is_final(status) else None
        if not self._enabled:
            return
        if self._live is not None:
            self._live.update(self._render())
        elif not repeated:  # a plain log gets one line per change
            suffix = f"  {detail}" if detail else ""
            self._console.print(
                f"[{now - self._start:6.1f}s] {node}: {status}{suffix}",
                markup=False,
                highlight=False,
            )

    def _render(self) -> RichTable:
        table = RichTable(title=self._title, title_justify="left", show_edge=False)
        table.add_column("node")
        table.add_column("status")
        table.add_column("detail", overflow="fold")
        table.add_column("elapsed", justify="right")
        now = time.monotonic()
        for node, (status, detail, started, ended) in self._rows.items():
            elapsed = "" if started is None else format_duration((ended or now) - started)
            table.add_row(node, Text(status, style=status_style(status) or ""), detail, elapsed)
        return table


def _is_final(status: str) -> bool:
    return status_style(status) in ("green", "red", "bright_black")
