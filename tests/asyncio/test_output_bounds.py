"""What a remote node prints cannot grow memory or the log without a bound: captured
output keeps at most max_mailbox_bytes, the default output logs at most
LOG_LINES_PER_SECOND records a second, each cut to bounded_text's length."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from erlbridge.asyncio.io_server import IO_REQUEST, LOG_LINES_PER_SECOND, IoServer, LogBudget
from erlbridge.asyncio.rpc import REX_STDOUT, CaptureEndpoint
from erlbridge.exceptions import TEXT_LIMIT
from erlbridge.term import Atom, Pid, Reference

PUT_CHARS = Atom("put_chars")
UNICODE = Atom("unicode")


class FakeCore:
    """The few NodeCore methods these endpoints use."""

    name = Atom("py@127.0.0.1")

    def __init__(self, max_bytes: int | None) -> None:
        self.max_bytes = max_bytes
        self.routed: list[Any] = []
        self.dropped: list[Any] = []

    def mailbox_limits(self) -> tuple[int | None, int | None]:
        return None, self.max_bytes

    def route(self, from_pid: Pid, dest: Any, message: Any) -> None:
        self.routed.append((dest, message))

    def drop(self, to: Any, message: Any, why: str) -> None:
        self.dropped.append(why)


def _capture(max_bytes: int | None) -> tuple[CaptureEndpoint, Reference]:
    loop = asyncio.new_event_loop()
    ref = Reference(Atom("py@127.0.0.1"), 1, (1, 2, 3))
    endpoint = CaptureEndpoint(
        FakeCore(max_bytes),  # type: ignore[arg-type]
        Pid(Atom("py@127.0.0.1"), 5, 0, 1),
        ref,
        loop.create_future(),
    )
    loop.close()
    return endpoint, ref


def test_captured_output_keeps_the_first_max_mailbox_bytes_and_says_what_it_dropped() -> None:
    endpoint, _ = _capture(max_bytes=10)
    for chunk in (b"abcdef", b"ghijkl", b"mnop"):
        endpoint.deliver((REX_STDOUT, chunk))
    assert endpoint.kept == 10 and endpoint.lost == 6
    assert endpoint.output.startswith("abcdefghij\n")
    assert "6 more bytes of output dropped" in endpoint.output


def test_captured_output_without_a_limit_is_kept_whole() -> None:
    endpoint, _ = _capture(max_bytes=None)
    endpoint.deliver((REX_STDOUT, b"x" * 100_000))
    assert endpoint.output == "x" * 100_000 and endpoint.lost == 0


def test_the_log_budget_refuses_beyond_its_rate_and_reports_once_per_window() -> None:
    budget = LogBudget(3)
    assert [budget.take(10.0)[0] for _ in range(5)] == [True, True, True, False, False]
    assert budget.take(10.5) == (False, 0)
    # a new window: the 3 refused ones are reported once
    assert budget.take(11.0) == (True, 3)
    assert budget.take(11.1) == (True, 0)


def test_default_output_logs_bounded_records_at_a_bounded_rate(
    caplog: pytest.LogCaptureFixture,
) -> None:
    core = FakeCore(None)
    server = IoServer(core, Pid(Atom("py@127.0.0.1"), 6, 0, 1))  # type: ignore[arg-type]
    sender = Pid(Atom("a@127.0.0.1"), 40, 0, 1)
    huge = "y" * (TEXT_LIMIT * 5)
    with caplog.at_level(logging.INFO, logger="erlbridge.asyncio.io_server"):
        for i in range(LOG_LINES_PER_SECOND + 50):
            text = huge if i == 0 else f"line {i}\n"
            server.deliver((IO_REQUEST, sender, i, (PUT_CHARS, UNICODE, text.encode())))
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == LOG_LINES_PER_SECOND
    assert len(infos[0].getMessage()) < TEXT_LIMIT + 100  # cut, not 5x the limit
    assert len(core.routed) == LOG_LINES_PER_SECOND + 50  # every request is answered
