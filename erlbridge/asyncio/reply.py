"""A future for call replies that wakes its waiter in the same loop iteration.

See docs/internals/architecture.md#one-loop-iteration-per-call.

An ``asyncio.Future`` always schedules its done-callbacks with ``loop.call_soon``: the task
awaiting an rpc reply resumes one loop iteration after the reply was read, and that
iteration costs a second ``epoll`` call and a pass through the ready queue on every call.
:class:`ReplyFuture` runs the callbacks of a *result* at once instead (the waiting task
resumes inside ``data_received``, and the request it sends next is written with the other
output of that read), which halves the loop iterations of a sequential rpc.

Only :meth:`set_result` is eager, and only when no task is running (a task step cannot
start inside another one): exceptions and cancellation (deadlines, lost connections) are
delivered the ordinary way, so the code that raises them may iterate its own tables
without being re-entered by the woken tasks.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["Awake", "ReplyFuture"]

T = TypeVar("T")

_Callback = tuple[Callable[[Any], object], contextvars.Context | None]
_current_task = asyncio.current_task


class ReplyFuture(asyncio.Future[T]):
    """An ``asyncio.Future`` whose result wakes its waiters without a loop iteration."""

    # The C Future keeps its own callbacks private; registering ours here keeps them
    # out of it, so its set_result has nothing to schedule.
    __slots__ = ("_waiters",)

    def __init__(self, *, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop=loop)
        self._waiters: list[_Callback] = []

    def add_done_callback(
        self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None
    ) -> None:
        if self.done():
            self.get_loop().call_soon(fn, self, context=context)
        else:
            self._waiters.append((fn, context))

    def remove_done_callback(self, fn: Callable[[Any], object]) -> int:
        kept = [(f, c) for f, c in self._waiters if f != fn]
        removed = len(self._waiters) - len(kept)
        self._waiters = kept
        return removed

    def set_result(self, result: T) -> None:
        super().set_result(result)
        waiters, self._waiters = self._waiters, []
        if not waiters:
            return
        loop = self.get_loop()
        if _current_task(loop) is not None:  # inside a task step: it cannot nest
            for fn, context in waiters:
                loop.call_soon(fn, self, context=context)
            return
        for fn, context in waiters:
            if context is None:
                fn(self)
            else:
                context.run(fn, self)

    def set_exception(self, exception: type | BaseException) -> None:
        super().set_exception(exception)
        self._schedule_waiters()

    def cancel(self, msg: Any | None = None) -> bool:
        if not super().cancel(msg=msg):
            return False
        self._schedule_waiters()
        return True

    def _schedule_waiters(self) -> None:
        waiters, self._waiters = self._waiters, []
        loop = self.get_loop()
        for fn, context in waiters:
            loop.call_soon(fn, self, context=context)


class Awake:
    """Keeps the loop from sleeping for ``seconds`` after a request is sent, while a reply
    is awaited (docs/internals/architecture.md#one-loop-iteration-per-call).

    A loop that sleeps in ``epoll`` until the reply comes ran the next Python code several
    times slower on the machines measured (a sleeping thread's caches go cold, and waking
    it costs its own latency); most replies come within ~100 µs, so one callback that
    reschedules itself until then (or until nothing is awaited) keeps the loop polling
    instead. Other callbacks and I/O run between its steps as usual.
    """

    __slots__ = ("_loop", "_running", "_until", "_waiting", "seconds")

    def __init__(
        self, loop: asyncio.AbstractEventLoop, seconds: float, waiting: Callable[[], bool]
    ) -> None:
        self._loop = loop
        self.seconds = seconds
        self._waiting = waiting
        self._until = 0.0
        self._running = False

    def sent(self) -> None:
        """A request went out: stay awake for its reply."""
        if self.seconds <= 0:
            return
        self._until = self._loop.time() + self.seconds
        if not self._running:
            self._running = True
            self._loop.call_soon(self._step)

    def _step(self) -> None:
        if self._waiting() and self._loop.time() < self._until:
            self._loop.call_soon(self._step)
        else:
            self._running = False
