"""Rendering: JSON conversion of terms, tables, progress on a TTY and in plain logs,
and the journal follower that drives progress (fed by the driver's real Journal writer)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

from rich.console import Console

from erlbridge.cli._output import NodeProgress, Output
from erlbridge.display import (
    CellProgress,
    JournalFollower,
    Table,
    erlang_text,
    html_table,
    plain,
    to_jsonable,
    watch_run,
)
from erlbridge.driver import Journal
from erlbridge.term import Atom, ErlString, Pid, parse_term


def test_to_jsonable_keeps_meaning() -> None:
    term = parse_term('{ok, <<"bin">>, "str", [1, 2], #{a => 1, {x} => y}, <<255>>, 1.5}')
    assert to_jsonable(term) == [
        "ok",
        "bin",
        "str",
        [1, 2],
        {"a": 1, "{x}": "y"},
        {"base64": "/w=="},
        1.5,
    ]
    assert to_jsonable(ErlString([1, 2, 3])) == [1, 2, 3]  # not printable: a list
    json.dumps(to_jsonable(Pid(Atom("a@h"), 1, 2, 3)))


def test_erlang_text_and_plain() -> None:
    assert erlang_text(ErlString([1, 2, 3])) == "[1,2,3]"
    assert erlang_text((Atom("ok"), ErlString("1.0.0"))) == '{ok,"1.0.0"}'
    assert plain(Atom("a@127.0.0.1")) == "a@127.0.0.1"
    assert plain(ErlString("2.0.0")) == "2.0.0"
    assert plain((Atom("error"), Atom("x"))) == "{error,x}"


def test_tables_escape_and_colour() -> None:
    html = html_table(("node", "status"), [("<a>", "failed")], status_column=1)
    assert "&lt;a&gt;" in html and "<a>" not in html
    assert "color:" in html
    table = Table(("node", "status"), (("n1", "ok"), ("n2", None)), "caption", "status")
    assert str(table).splitlines()[0] == "caption"
    assert table.records() == [{"node": "n1", "status": "ok"}, {"node": "n2", "status": None}]


def test_output_json_is_one_document() -> None:
    out, err = io.StringIO(), io.StringIO()
    Output(json_mode=True, stdout=out, stderr=err).json({"v": ErlString("1")})
    assert json.loads(out.getvalue()) == {"v": "1"}


def test_progress_plain_lines_when_not_a_tty() -> None:
    err = io.StringIO()
    console = Console(file=err, force_terminal=False)
    with NodeProgress(console, "t", ["a@h", "b@h"]) as progress:
        progress.update("a@h", "install…")
        progress.update("a@h", "install…")  # repeated: no second line
        progress.update("b@h", "error", "boom")
    lines = err.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("a@h: install…")
    assert lines[1].endswith("b@h: error  boom")


def test_progress_redraws_in_place_on_a_tty() -> None:
    err = io.StringIO()
    console = Console(file=err, force_terminal=True, width=100)
    with NodeProgress(console, "upgrade", ["a@h", "b@h"]) as progress:
        progress.update("a@h", "install…")
        progress.update("a@h", "ok")
    text = err.getvalue()
    assert "\x1b[" in text  # cursor movement: lines are rewritten, not appended
    assert "a@h" in text and "b@h" in text and "ok" in text


def test_journal_follower_reads_a_real_journal(tmp_path: Path) -> None:
    path = tmp_path / "run.journal"
    old = Journal(path, op="earlier")
    old.write("started", node="a@h", step="old-step")
    old.close()
    seen: list[tuple[str, str, str]] = []

    class Sink:
        def update(self, node: str, status: str, detail: str = "") -> None:
            seen.append((node, status, detail))

    async def run() -> str:
        journal = Journal(path, op="now")
        for step in ("upload", "install"):
            journal.write("started", node="a@h", step=step)
            await asyncio.sleep(0.05)
            journal.write("finished", node="a@h", step=step, status="ok", outcome={})
        journal.write("started", node="b@h", step="install")
        journal.write(
            "finished",
            node="b@h",
            step="install",
            status="error",
            outcome={"error": {"message": "no_such_release"}},
        )
        journal.close()
        return "done"

    follower_sink = Sink()
    result = asyncio.run(watch_run(run(), journal=path, progress=follower_sink))
    assert result == "done"
    assert ("a@h", "old-step…", "") not in seen  # earlier runs in the file are ignored
    assert seen[:4] == [
        ("a@h", "upload…", ""),
        ("a@h", "upload done", ""),
        ("a@h", "install…", ""),
        ("a@h", "install done", ""),
    ]
    assert ("b@h", "error", "no_such_release") in seen


def test_journal_follower_waits_for_a_complete_line(tmp_path: Path) -> None:
    path = tmp_path / "j"
    path.write_text("")
    seen: list[str] = []

    class Sink:
        def update(self, node: str, status: str, detail: str = "") -> None:
            seen.append(status)

    follower = JournalFollower(path, Sink())
    record = json.dumps({"event": "started", "node": "a@h", "step": "install"})
    with path.open("a") as f:
        f.write(record[:10])
    follower.poll()
    assert seen == []
    with path.open("a") as f:
        f.write(record[10:] + "\n")
    follower.poll()
    assert seen == ["install…"]


def test_cell_progress_outside_ipython_is_silent() -> None:
    progress = CellProgress("t", clock=lambda: 1.0)
    progress.update("a@h", "ok")
    assert progress.table().rows == (("a@h", "ok", "", "0 ms"),)
