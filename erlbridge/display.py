"""Rendering helpers shared by reports, the CLI and notebooks.

Mostly pure functions over plain rows: no printing, no third-party import at module load.
Notebook-only pieces (:class:`CellProgress`, :func:`kernel_node`) import IPython or the
node lazily and degrade to doing nothing outside a kernel. :class:`JournalFollower` and
:func:`watch_run` read a driver journal while a run goes on (the one place with file I/O),
so the CLI, the demo and notebooks show the same live per-node progress.

Contracts:

* :func:`to_jsonable` turns any decoded Erlang term into JSON-compatible data without losing
  the distinction a reader needs (atoms and binaries become strings, tuples become lists,
  pids/refs/ports become their Erlang text); it never raises for a term the codec produced.
* :func:`html_table` escapes every cell; :func:`text_table` aligns columns for monospace
  output. Both take ``columns`` (header strings) and ``rows`` (sequences of cells; ``None``
  renders as an empty cell).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import json
import math
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from erlbridge.term import ErlString, format_term

T = TypeVar("T")


class ProgressSink(Protocol):
    """Anything that shows per-node progress (CLI lines, a notebook cell)."""

    def update(self, node: str, status: str, detail: str = "") -> None: ...


__all__ = [
    "erlang_text",
    "is_printable",
    "plain",
    "STATUS_STYLES",
    "CellProgress",
    "Table",
    "JournalFollower",
    "ProgressSink",
    "close_kernel_nodes",
    "format_duration",
    "kernel_node",
    "watch_run",
    "html_table",
    "status_style",
    "text_table",
    "to_jsonable",
]

#: Colours (CSS / rich style names) for outcome words used across reports.
STATUS_STYLES: Mapping[str, str] = {
    "ok": "green",
    "pong": "green",
    "ready": "green",
    "yes": "green",
    "no": "red",
    "permanent": "green",
    "current": "cyan",
    "done": "green",
    "running": "yellow",
    "started": "yellow",
    "planned": "blue",
    "waiting": "yellow",
    "unpacked": "blue",
    "old": "bright_black",
    "skipped": "bright_black",
    "warning": "yellow",
    "not ready": "red",
    "error": "red",
    "failed": "red",
    "pang": "red",
    "timeout": "red",
    "nodedown": "red",
    "in_doubt": "red",
    "incomplete": "yellow",
}

_CSS_COLOURS = {
    "green": "#1a7f37",
    "cyan": "#0969da",
    "yellow": "#9a6700",
    "blue": "#0550ae",
    "bright_black": "#6e7781",
    "red": "#cf222e",
}


def status_style(status: str) -> str | None:
    """The style name for an outcome word (case-insensitive), or None if it has none."""
    return STATUS_STYLES.get(status.strip().lower())


def format_duration(seconds: float | None) -> str:
    """``0.0123`` -> ``"12 ms"``, ``3.2`` -> ``"3.20 s"``, ``None`` -> ``""``."""
    if seconds is None or math.isnan(seconds):
        return ""
    if seconds < 1.0:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{int(minutes)} min {rest:.0f} s"


def to_jsonable(value: Any) -> Any:
    """Convert a decoded Erlang term (or plain Python data) to JSON-compatible data.

    Mapping: ``str`` and atoms -> string (``true``/``false`` atoms stay strings, so
    ``'true'`` and ``<<"true">>`` look alike: use the Erlang text when that matters);
    ``bytes`` -> UTF-8 string when valid, else ``{"base64": ...}``; tuples and lists ->
    lists (an Erlang string, being a list subclass that prints as text, -> string); dicts
    -> objects with string keys (non-string keys are rendered as text); dataclass-like
    objects with ``to_json()`` use it; anything else -> ``str(value)`` (pids, refs, ports,
    funs print as Erlang text).
    """
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return str.__str__(value)  # an Atom's str() is Erlang syntax; keep the bare name
    if isinstance(value, ErlString):
        return value.text if is_printable(value.text) else list(value)
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(bytes(value)).decode("ascii")}
    to_json = getattr(value, "to_json", None)
    if callable(to_json):
        return to_jsonable(to_json())
    if isinstance(value, list) and _prints_as_text(value):
        return str(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {_json_key(k): to_jsonable(v) for k, v in value.items()}
    return str(value)


_CONTROL_OK = frozenset("\n\t\r\x0b\x0c\x08\x1b")


def is_printable(text: str) -> bool:
    """Erlang's idea of a printable string (``io_lib:printable_unicode_list/1``)."""
    return all(ch.isprintable() or ch in _CONTROL_OK for ch in text)


def _lists_for_unprintable(term: Any) -> Any:
    if isinstance(term, ErlString):
        return term if is_printable(term.text) else list(term)
    if isinstance(term, tuple):
        return tuple(_lists_for_unprintable(t) for t in term)
    if type(term) is list:
        return [_lists_for_unprintable(t) for t in term]
    if type(term) is dict:
        return {_lists_for_unprintable(k): _lists_for_unprintable(v) for k, v in term.items()}
    return term


def erlang_text(term: Any, *, width: int = 80) -> str:
    """Erlang text of ``term`` as the Erlang shell would show it.

    Like :func:`erlbridge.term.format_term`, except that a string which is not printable
    (``lists:seq(1, 5)`` arrives as a string on the wire) prints as a list of integers.
    """
    return format_term(_lists_for_unprintable(term), width=width)


def plain(term: Any) -> str:
    """Human text for a table cell: atoms and strings bare, binaries decoded, other terms
    as Erlang text (``plain(Atom("a@h")) == "a@h"``, ``plain(ErlString("1.0")) == "1.0"``).
    """
    if isinstance(term, str):
        return str.__str__(term)
    if isinstance(term, ErlString) and is_printable(term.text):
        return term.text
    if isinstance(term, bytes):
        try:
            return term.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return erlang_text(term, width=10_000)


def _prints_as_text(value: list[Any]) -> bool:
    # erlbridge.term's Erlang-string type is a list subclass whose str() is the text; a
    # plain list is never treated as text (that would guess wrong for [104, 105]).
    return type(value) is not list and type(value).__str__ is not list.__str__


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bytes):
        return key.decode("utf-8", "replace")
    return plain(key)


def _cell_text(cell: Any) -> str:
    if cell is None:
        return ""
    if isinstance(cell, float):
        return f"{cell:g}"
    if isinstance(cell, list) and _prints_as_text(cell):
        return str(cell)
    if isinstance(cell, list | tuple):
        return ", ".join(_cell_text(c) for c in cell)
    return str(cell)


def html_table(
    columns: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str | None = None,
    status_column: int | None = None,
) -> str:
    """An HTML ``<table>`` (every cell escaped); cells in ``status_column`` are coloured."""
    parts = ['<table class="erlbridge">']
    if caption:
        parts.append(f'<caption style="text-align:left">{html.escape(caption)}</caption>')
    parts.append(
        "<thead><tr>"
        + "".join(f'<th style="text-align:left">{html.escape(c)}</th>' for c in columns)
        + "</tr></thead><tbody>"
    )
    for row in rows:
        cells = []
        for index, cell in enumerate(row):
            text = html.escape(_cell_text(cell))
            style = "text-align:left;font-family:monospace"
            if index == status_column:
                colour = _CSS_COLOURS.get(status_style(_cell_text(cell)) or "")
                if colour:
                    style += f";color:{colour};font-weight:bold"
            cells.append(f'<td style="{style}">{text}</td>')
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    return "".join(parts)


def text_table(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain, space-aligned table (header, dashes, rows) without a trailing newline."""
    body = [[_cell_text(c) for c in row] for row in rows]
    widths = [len(c) for c in columns]
    for row in body:
        for index, cell in enumerate(row):
            if index < len(widths):
                widths[index] = max(widths[index], len(cell))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(cells)).rstrip()

    lines = [line(list(columns)), line(["-" * w for w in widths])]
    lines.extend(line(row) for row in body)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Table:
    """Rows with headers that render as text, HTML (notebooks) and JSON.

    ``records`` is the JSON form (a list of objects); ``status_column`` names the column
    coloured by outcome.
    """

    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]
    caption: str | None = None
    status_column: str | None = None

    @classmethod
    def from_records(
        cls,
        records: Iterable[Mapping[str, Any]],
        columns: Sequence[str],
        *,
        caption: str | None = None,
        status_column: str | None = None,
    ) -> Table:
        """Build from dicts, taking ``columns`` in order (missing keys are empty)."""
        rows = tuple(tuple(r.get(c) for c in columns) for r in records)
        return cls(tuple(columns), rows, caption, status_column)

    def records(self) -> list[dict[str, Any]]:
        """JSON-compatible list of ``{column: cell}`` objects."""
        return [
            {c: to_jsonable(v) for c, v in zip(self.columns, row, strict=False)}
            for row in self.rows
        ]

    def __str__(self) -> str:
        table = text_table(self.columns, self.rows)
        return f"{self.caption}\n{table}" if self.caption else table

    def _repr_html_(self) -> str:
        index = self.columns.index(self.status_column) if self.status_column else None
        return html_table(self.columns, self.rows, caption=self.caption, status_column=index)


@dataclass(slots=True)
class CellProgress:
    """Per-node progress shown in a notebook cell, updated in place.

    ``update(node, status, detail)`` redraws one HTML table through an IPython display
    handle. Outside IPython (or when ``enabled`` is False) every call is a no-op, so
    library code can always create one. ``clock`` returns seconds (``time.monotonic``
    in practice); it is injected so this module needs no clock of its own.
    """

    title: str = "progress"
    clock: Callable[[], float] | None = None
    enabled: bool = True
    _rows: dict[str, list[Any]] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _handle: Any = None

    def update(self, node: str, status: str, detail: str = "") -> None:
        """Set ``node``'s status (and detail) and redraw the cell output."""
        now = self.clock() if self.clock else None
        if node not in self._started and now is not None:
            self._started[node] = now
        elapsed = (now - self._started[node]) if now is not None else None
        self._rows[node] = [node, status, detail, format_duration(elapsed)]
        self._redraw()

    def table(self) -> Table:
        """The current state as a :class:`Table`."""
        return Table(
            ("node", "status", "detail", "elapsed"),
            tuple(tuple(r) for r in self._rows.values()),
            self.title,
            "status",
        )

    def _redraw(self) -> None:
        if not self.enabled:
            return
        try:
            from IPython import get_ipython  # noqa: PLC0415 (optional dependency)
            from IPython.display import HTML, display  # noqa: PLC0415
        except ImportError:
            return
        if get_ipython() is None:
            return
        html_obj = HTML(self.table()._repr_html_())  # type: ignore[no-untyped-call]
        if self._handle is None:
            self._handle = display(html_obj, display_id=True)  # type: ignore[no-untyped-call]
        else:
            self._handle.update(html_obj)


class JournalFollower:
    """Turns the driver's journal into per-node progress while a run is going on.

    The driver appends (and flushes) a ``started`` record before each step and a
    ``finished`` record after it; reading the new lines every ``interval_seconds`` gives
    live progress without any callback API. Only records after ``offset`` are read, so
    earlier runs in the same file are ignored.
    """

    def __init__(self, path: Path, progress: ProgressSink, *, interval_seconds: float = 0.2):
        self.path = path
        self.progress = progress
        self.interval_seconds = interval_seconds
        self.offset = path.stat().st_size if path.exists() else 0
        self._partial = ""

    def poll(self) -> None:
        """Read what was appended since the last poll and update the progress lines."""
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8") as file:
            file.seek(self.offset)
            chunk = file.read()
            self.offset = file.tell()
        lines = (self._partial + chunk).split("\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next poll
        for line in lines:
            if line.strip():
                try:
                    self.apply(json.loads(line))
                except ValueError:
                    continue

    def apply(self, record: dict[str, Any]) -> None:
        node, step, event = record.get("node"), record.get("step"), record.get("event")
        if not node or not step:
            return
        if event == "started":
            self.progress.update(node, f"{step}…")
        elif event == "finished":
            status = str(record.get("status", ""))
            detail = ""
            outcome = record.get("outcome") or {}
            error = outcome.get("error") if isinstance(outcome, dict) else None
            if isinstance(error, dict):
                detail = str(error.get("message") or error.get("reason_text") or "")
            word = f"{step} {status}" if status == "ok" else status
            self.progress.update(node, word if status != "ok" else f"{step} done", detail)

    async def follow(self) -> None:
        """Poll until cancelled (then poll once more so nothing is missed)."""
        try:
            while True:
                await asyncio.sleep(self.interval_seconds)
                self.poll()
        finally:
            self.poll()


async def watch_run(run: Awaitable[T], *, journal: Path, progress: ProgressSink) -> T:
    """Await a driver operation while showing its per-node progress.

    ``journal`` must be the path the :class:`~erlbridge.driver.Driver` was given;
    its records drive ``progress``. When the run returns a report, every node's final
    status (and error) is shown last.
    """
    follower = JournalFollower(journal, progress)
    task = asyncio.create_task(follower.follow())
    try:
        result = await run
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    for outcome in getattr(result, "outcomes", ()):
        detail = "" if outcome.error is None else str(outcome.error)
        progress.update(plain(outcome.node), str(outcome.status), detail)
    return result


# -- notebooks ---------------------------------------------------------------------------

_KERNEL_NODES: dict[str, Any] = {}


def kernel_node(name: str, **options: Any) -> Any:
    """A started :class:`erlbridge.sync.Node` that survives re-running the cell.

    Notebooks re-run cells; ``node = Node(...); node.start()`` in a cell would start one
    more node (and leave the previous one connected) each time. ``kernel_node`` keeps one
    node per ``name`` for the kernel's lifetime: called again with the same name it closes
    the previous node first, so at most one node per name is ever running, whatever the
    number of re-runs. ``options`` are :class:`erlbridge.sync.Node`'s. All such nodes are
    closed when the interpreter exits (or by :func:`close_kernel_nodes`).
    """
    import time  # noqa: PLC0415

    from erlbridge.exceptions import RegistrationError  # noqa: PLC0415
    from erlbridge.sync import Node  # noqa: PLC0415 (display must stay importable from anywhere)

    previous = _KERNEL_NODES.pop(name, None)
    if previous is not None:
        previous.close()
    # EPMD frees the previous node's name when it sees that node's registration socket
    # close, which can lag our close() a little: retry a "name taken" for a moment.
    deadline = time.monotonic() + 5.0
    while True:
        node = Node(name, **options)
        try:
            node.start()
            break
        except RegistrationError:
            node.close()
            if previous is None or time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    if not _KERNEL_NODES:
        import atexit  # noqa: PLC0415

        atexit.register(close_kernel_nodes)
    _KERNEL_NODES[name] = node
    return node


def close_kernel_nodes() -> int:
    """Close every node :func:`kernel_node` started; returns how many were open."""
    count = 0
    while _KERNEL_NODES:
        _, node = _KERNEL_NODES.popitem()
        node.close()
        count += 1
    return count
