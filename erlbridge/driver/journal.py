"""Append-only JSON-lines journal writer and reader (file I/O).

The record format is in :mod:`erlbridge.driver.journal_records`.

Every :meth:`Journal.write` appends one line, flushes and fsyncs before returning, so a
record that was written survives a crash of the Python process. Writes are synchronous
(small, local, durable); a driver step is bracketed by a ``started`` and a ``finished``
record (see :mod:`erlbridge.driver.journal_records`).
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

from erlbridge.driver.journal_records import JournalState, make_record, parse_lines, replay

__all__ = ["Journal", "read_journal", "read_records"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.journal")


class Journal:
    """Appends records of one run to ``path`` (created if missing, never truncated).

    ``op`` is the operation key recorded in every line. ``path=None`` makes a journal that
    writes nothing (so the driver code has one path). Not thread-safe; use from one loop.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        *,
        op: str,
        run: str | None = None,
        fsync: bool = True,
    ) -> None:
        self.path = None if path is None else Path(path)
        self.op = op
        self.run = run or uuid.uuid4().hex[:12]
        self._seq = 0
        self._fsync = fsync
        self._file: IO[str] | None = None
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 (kept open)

    def previous(self) -> JournalState:
        """Replay what earlier runs of the same ``op`` recorded in this file (for resume)."""
        if self.path is None or not self.path.exists():
            return JournalState()
        return replay(read_records(self.path), op=self.op)

    def write(
        self,
        event: str,
        *,
        node: str | None = None,
        step: str | None = None,
        status: str | None = None,
        outcome: Mapping[str, Any] | None = None,
        info: Mapping[str, Any] | None = None,
    ) -> None:
        """Append one record and make it durable (flush + fsync) before returning."""
        if self._file is None:
            return
        self._seq += 1
        rec = make_record(
            run=self.run,
            seq=self._seq,
            now=time.time(),
            event=event,
            op=self.op,
            node=node,
            step=step,
            status=status,
            outcome=outcome,
            info=info,
        )
        self._file.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
        self._file.flush()
        if self._fsync:
            os.fsync(self._file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """All records of a journal file (a torn last line is ignored)."""
    with open(path, encoding="utf-8") as f:
        return parse_lines(f)


def read_journal(path: str | os.PathLike[str], *, op: str | None = None) -> JournalState:
    """Read a journal back and report where each node stands (see ``JournalState``)."""
    return replay(read_records(path), op=op)
