"""Stop every cluster this process started when it ends, also on SIGTERM (L4).

Ctrl-C raises ``KeyboardInterrupt`` and ``with`` blocks close their clusters; SIGTERM's
default action ends the process at once, leaving node processes, their private EPMD
and containers running. :func:`track` registers a cluster (or network) when it starts;
:func:`untrack` forgets it when it closes. On SIGTERM (when nobody else handles it:
the handler is only installed over the default action, from the main thread) and at
interpreter exit, everything still registered is closed; then SIGTERM's previous
action runs (the default: the process ends with SIGTERM's status).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

__all__ = ["close_all", "track", "untrack"]

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_live: dict[int, Callable[[], None]] = {}
_installed = False


def track(owner: Any, close: Callable[[], None]) -> None:
    """Close ``owner`` with ``close()`` on SIGTERM or at exit unless untracked first."""
    global _installed
    with _lock:
        _live[id(owner)] = close
        if _installed:
            return
        _installed = True
    atexit.register(close_all)
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _on_sigterm)


def untrack(owner: Any) -> None:
    with _lock:
        _live.pop(id(owner), None)


def close_all() -> None:
    """Close everything still tracked, newest first (never raises)."""
    with _lock:
        closers = list(_live.values())[::-1]
        _live.clear()
    for close in closers:
        try:
            close()
        except Exception:  # keep closing the others
            logger.exception("closing a cluster at exit")


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    close_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
