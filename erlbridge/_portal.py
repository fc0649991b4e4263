"""One asyncio event loop in a daemon thread, for the blocking facade (DESIGN §4).

Blocking callers submit coroutines with :meth:`Portal.call` and plain functions with
:meth:`Portal.run`. Because the loop lives in its own thread, the blocking API also works
inside a thread that already runs an event loop (a Jupyter kernel). Timeouts are applied
inside the loop (by the coroutine's own ``timeout=``); a KeyboardInterrupt while waiting
cancels the submitted task.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from erlbridge.exceptions import InvalidState

__all__ = ["Portal", "default_portal"]

T = TypeVar("T")


class Portal:
    """An event loop running in a daemon thread, started on first use."""

    def __init__(self, name: str = "erlbridge-loop") -> None:
        self._name = name
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def run() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=run, name=self._name, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def _check_thread(self) -> None:
        if self._thread is not None and threading.current_thread() is self._thread:
            raise InvalidState("blocking erlbridge call from inside the erlbridge loop thread")

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the loop and block until it finishes; its exception propagates."""
        loop = self.loop
        try:
            self._check_thread()
        except InvalidState:
            coro.close()
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            if not future.done():
                future.cancel()  # KeyboardInterrupt & co: cancel the task in the loop
            raise

    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a plain function on the loop thread (for loop-affine objects) and return."""
        loop = self.loop
        self._check_thread()
        result: concurrent.futures.Future[T] = concurrent.futures.Future()

        def invoke() -> None:
            try:
                result.set_result(fn(*args, **kwargs))
            except BaseException as exc:
                result.set_exception(exc)

        loop.call_soon_threadsafe(invoke)
        return result.result()


_default: Portal | None = None
_default_lock = threading.Lock()


def default_portal() -> Portal:
    """The process-wide portal shared by every blocking Node."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Portal()
        return _default
