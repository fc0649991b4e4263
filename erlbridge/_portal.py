"""An asyncio event loop in its own thread, for the blocking API.

See docs/internals/architecture.md#the-blocking-api.

Blocking callers submit coroutines with :meth:`Portal.call` and plain functions with
:meth:`Portal.run`. Because the loop lives in its own thread, the blocking API also works
inside a thread that already runs an event loop (a Jupyter kernel). Timeouts are applied
inside the loop (by the coroutine's own ``timeout=``); a KeyboardInterrupt while waiting
cancels the submitted task.

The loop's lifetime is scoped, as with anyio's ``start_blocking_portal``: a portal runs
while it is held, either by ``with Portal() as portal:`` or by leases
(:meth:`Portal.acquire` / :meth:`Portal.release`; every blocking Node holds one from its
construction to its ``close()``). The thread starts on the first call that needs it and
stops, after cancelling what is left on the loop, when the last holder lets go.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

from erlbridge.exceptions import InvalidState

__all__ = ["Handoff", "Portal", "shared_portal"]

T = TypeVar("T")

_logger = logging.getLogger(__name__)

#: how long stopping waits for leftover tasks to finish after they were cancelled
STOP_TIMEOUT = 10.0


class Portal:
    """An event loop in a daemon thread, running while someone holds the portal."""

    def __init__(
        self,
        name: str = "erlbridge-loop",
        *,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        """``loop_factory``: makes the loop each time the thread starts (default
        ``asyncio.new_event_loop``; e.g. ``uvloop.new_event_loop``)."""
        self._name = name
        self._loop_factory = loop_factory or asyncio.new_event_loop
        self._lock = threading.Lock()
        self._leases = 0
        self._entered = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def __repr__(self) -> str:
        state = "running" if self._loop is not None else "stopped"
        return f"<Portal {self._name} {state}, {self._leases} lease(s)>"

    # -- lifetime ------------------------------------------------------------------------

    def __enter__(self) -> Portal:
        with self._lock:
            if self._entered:
                raise InvalidState("this portal is already entered")
            self._entered = True
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._entered = False
            idle = self._leases == 0
        if idle:
            self._stop()
        else:  # blocking nodes still use it: they stop it when the last one closes
            _logger.debug("portal %s left with %d lease(s) open", self._name, self._leases)

    def acquire(self) -> None:
        """Hold the portal open (the loop starts on the first call that needs it)."""
        with self._lock:
            self._leases += 1

    def release(self) -> None:
        """Let go of one :meth:`acquire`; the last holder stops the loop and its thread."""
        with self._lock:
            if self._leases == 0:
                raise InvalidState("portal released more often than acquired")
            self._leases -= 1
            idle = self._leases == 0 and not self._entered
        if idle:
            self._stop()

    @property
    def running(self) -> bool:
        """Whether the loop thread runs now."""
        return self._loop is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The running loop, started if the portal is held and not running yet."""
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                if self._leases == 0 and not self._entered:
                    raise InvalidState(
                        "the blocking API's event loop is stopped: every blocking Node "
                        "using it was closed"
                    )
                self._loop, self._thread = self._start()
            return self._loop

    def _start(self) -> tuple[asyncio.AbstractEventLoop, threading.Thread]:
        loop = self._loop_factory()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _finish(loop)

        # daemon: a Node that is never closed must not keep the interpreter from exiting
        thread = threading.Thread(target=run, name=self._name, daemon=True)
        thread.start()
        ready.wait()
        return loop, thread

    def _stop(self) -> None:
        with self._lock:
            if self._leases or self._entered:  # taken again meanwhile
                return
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        if thread is threading.current_thread():
            raise InvalidState("the erlbridge loop cannot be stopped from its own thread")
        loop.call_soon_threadsafe(loop.stop)
        thread.join(STOP_TIMEOUT + 5.0)
        if thread.is_alive():
            _logger.warning("portal %s: the loop thread did not stop in time", self._name)

    # -- calls ---------------------------------------------------------------------------

    def check_thread(self) -> None:
        """Raise InvalidState on the portal's own loop thread (a blocking call there would
        wait for itself)."""
        if self._thread is not None and threading.current_thread() is self._thread:
            raise InvalidState("blocking erlbridge call from inside the erlbridge loop thread")

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it finishes; its exception propagates."""
        try:
            loop = self.loop
            self.check_thread()
        except InvalidState:
            coro.close()
            raise
        handoff: Handoff[T] = Handoff()

        def start() -> None:
            try:
                task = loop.create_task(coro)
            except BaseException as exc:  # e.g. the loop is closing
                coro.close()
                handoff.fail(exc)
                return
            handoff.task = task
            task.add_done_callback(handoff.task_done)

        # One wake-up of the loop and one lock release back: no concurrent Future, no
        # Condition, no chained callbacks (docs/internals/architecture.md#the-blocking-api).
        loop.call_soon_threadsafe(start)
        try:
            return handoff.wait()
        except BaseException:
            if not handoff.finished:  # KeyboardInterrupt & co: cancel the task in the loop
                loop.call_soon_threadsafe(handoff.cancel)
            raise

    def post(self, fn: Callable[..., object], *args: Any) -> None:
        """Schedule ``fn(*args)`` on the loop thread and return at once (for a caller that
        waits on its own :class:`Handoff`)."""
        loop = self.loop
        self.check_thread()
        loop.call_soon_threadsafe(fn, *args)

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the loop thread (for loop-affine objects) and return."""
        loop = self.loop
        self.check_thread()
        handoff: Handoff[T] = Handoff()

        def invoke() -> None:
            try:
                value = fn(*args, **kwargs)
            except BaseException as exc:
                handoff.fail(exc)
            else:
                handoff.set(value)

        loop.call_soon_threadsafe(invoke)
        return handoff.wait()


class Handoff(Generic[T]):
    """One result passed from the loop thread to one blocked caller thread.

    The caller blocks on a plain lock that the loop thread releases once: the cheapest
    wake-up between two threads that CPython offers (a concurrent Future adds a Condition
    and callback chaining, which doubled the cost of a blocking call here).
    """

    __slots__ = ("_error", "_lock", "_value", "finished", "task")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()
        self._value: Any = None
        self._error: BaseException | None = None
        self.finished = False
        self.task: asyncio.Task[Any] | None = None

    def set(self, value: T) -> None:
        """Called once, on the loop thread."""
        self._value = value
        self.finished = True
        self._lock.release()

    def fail(self, error: BaseException) -> None:
        """Called once, on the loop thread."""
        self._error = error
        self.finished = True
        self._lock.release()

    def task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            self.fail(concurrent.futures.CancelledError())
            return
        error = task.exception()
        if error is not None:
            self.fail(error)
        else:
            self.set(task.result())

    def cancel(self) -> None:
        """On the loop thread: cancel the task the caller stopped waiting for."""
        if self.task is not None:
            self.task.cancel()

    def wait(self, timeout: float | None = None) -> T:
        """Block until :meth:`set` or :meth:`fail`; return the value or raise the error.

        With ``timeout`` (seconds), raise TimeoutError when it passes first.
        """
        if not self._lock.acquire(timeout=-1 if timeout is None else timeout):
            raise TimeoutError
        error = self._error
        if error is not None:
            self._error = None  # no cycle through the traceback
            raise error
        value: T = self._value
        return value


def _finish(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel what is left on a stopped loop, wait a bounded time, close it (as asyncio.run)."""
    try:
        tasks = asyncio.all_tasks(loop)
        for task in tasks:
            task.cancel()
        if tasks:
            done = asyncio.wait(tasks, timeout=STOP_TIMEOUT)
            loop.run_until_complete(done)
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
    except Exception:  # a stop must not raise in the loop thread; say what went wrong
        _logger.exception("stopping the erlbridge loop")
    finally:
        asyncio.set_event_loop(None)
        loop.close()


_shared = Portal()


def shared_portal() -> Portal:
    """The portal every blocking Node uses unless it is given one."""
    return _shared
