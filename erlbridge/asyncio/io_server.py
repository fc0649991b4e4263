"""The node's group leader: answers every Erlang io request
(docs/internals/otp-facts.md#the-io-protocol).

Remote processes whose group leader is this pid (rpc calls made without
``capture_output``) send ``{io_request, From, ReplyAs, Request}``; each one is answered so
a remote ``io:format`` never blocks. Output goes to the node's ``output`` callback (default:
logged at INFO on this module's logger, each record cut to ``bounded_text``'s length and at
most ``LOG_LINES_PER_SECOND`` records a second, the rest counted in one summary record: a
chatty or hostile node cannot flood the log; the library never prints).

``{put_chars, Enc, io_lib, format, [F, A]}`` carries an *unevaluated* format call. It is
evaluated on the sender's node through rex (``io_lib:format(F, A)``) rather than by a Python
re-implementation of ``io_lib`` (``~p`` alone is a pretty-printer with Erlang's line
breaking), so the text is exactly what Erlang would print. The reply is sent only after the
text is known, which keeps a process's output in order (io requests are synchronous).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from erlbridge.asyncio.process import Endpoint
from erlbridge.exceptions import ErlbridgeError, bounded_text
from erlbridge.term import Atom, ErlString, Pid

if TYPE_CHECKING:
    from erlbridge.asyncio.interface import NodeCore

__all__ = ["IoServer", "chardata_to_str"]

logger = logging.getLogger(__name__)

IO_REQUEST = Atom("io_request")
IO_REPLY = Atom("io_reply")
OK = Atom("ok")
EOF_ = Atom("eof")
ERROR = Atom("error")
PUT_CHARS = Atom("put_chars")
REQUESTS = Atom("requests")
GETOPTS = Atom("getopts")
SETOPTS = Atom("setopts")
GET_REQUESTS = frozenset(Atom(a) for a in ("get_line", "get_chars", "get_until", "get_password"))
# The only {put_chars, Enc, M, F, A} we evaluate (what io:format/fwrite send). Any other
# M:F would make us run code of the peer's choosing on the sender's node (a confused
# deputy, since the sender pid may name any node we can reach): refused.
FORMAT_MF = (Atom("io_lib"), Atom("format"))
#: At most this many io requests are being formatted at once; beyond it a request is
#: answered {error, put_chars} at once, so a flood cannot pile up tasks without bound.
MAX_PENDING_FORMATS = 1000
OutputCallback = Callable[[Pid, str], None]
#: Remote output logged per second by the default output (the rest is counted).
LOG_LINES_PER_SECOND = 100


class LogBudget:
    """At most ``per_second`` log records a second; counts what it refused."""

    __slots__ = ("_count", "_per_second", "_window", "suppressed")

    def __init__(self, per_second: int) -> None:
        self._per_second = per_second
        self._window = 0.0
        self._count = 0
        self.suppressed = 0

    def take(self, now: float) -> tuple[bool, int]:
        """Whether a record may be logged at ``now``, and how many were refused in the
        window that just ended (to report once)."""
        ended = 0
        if now - self._window >= 1.0:
            self._window, self._count = now, 0
            ended, self.suppressed = self.suppressed, 0
        if self._count < self._per_second:
            self._count += 1
            return True, ended
        self.suppressed += 1
        return False, ended


def chardata_to_str(data: Any, encoding: str = "unicode") -> str:
    """Flatten Erlang chardata (nested lists of code points, binaries, strings) to text.

    Raises ValueError for anything that is not chardata.
    """
    parts: list[str] = []
    stack = [data]
    binary_codec = "utf-8" if encoding == "unicode" else "latin-1"
    while stack:
        item = stack.pop()
        if isinstance(item, bytes):
            parts.append(item.decode(binary_codec, "replace"))
        elif isinstance(item, ErlString):
            parts.append(item.text)
        elif isinstance(item, int) and 0 <= item <= 0x10FFFF:
            parts.append(chr(item))
        elif isinstance(item, list):
            stack.extend(reversed(item))
        else:
            raise ValueError(f"not chardata: {item!r}")
    return "".join(parts)


class IoServer(Endpoint):
    """The group leader pid we hand to rex for plain rpc calls."""

    __slots__ = ("_log_budget", "output", "refused", "tasks")

    def __init__(self, node: NodeCore, pid: Pid, output: OutputCallback | None = None) -> None:
        super().__init__(node, pid)
        self.output = output
        self.tasks: set[asyncio.Task[None]] = set()
        #: io requests refused because MAX_PENDING_FORMATS were pending
        self.refused = 0
        self._log_budget = LogBudget(LOG_LINES_PER_SECOND)

    def deliver(self, message: Any, size: int = 0) -> None:
        if not (type(message) is tuple and len(message) == 4 and message[0] == IO_REQUEST):
            self.node.drop(self.pid, message, "not an io request")
            return
        _, sender, reply_as, request = message
        if not isinstance(sender, Pid):
            self.node.drop(self.pid, message, "io request without a sender pid")
            return
        if self._needs_remote(request):
            if len(self.tasks) >= MAX_PENDING_FORMATS:
                if self.refused % 1000 == 0:  # the first and every 1000th
                    logger.warning(
                        "io request from %s refused: %d already pending", sender, len(self.tasks)
                    )
                self.refused += 1
                self._reply(sender, reply_as, (ERROR, PUT_CHARS))
                return
            task = asyncio.get_running_loop().create_task(
                self._serve_async(sender, reply_as, request)
            )
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            return
        self._reply(sender, reply_as, self._serve_now(sender, request))

    def _reply(self, sender: Pid, reply_as: Any, reply: Any) -> None:
        self.node.route(self.pid, sender, (IO_REPLY, reply_as, reply))

    def _emit(self, sender: Pid, text: str) -> None:
        if not text:
            return
        if self.output is not None:
            try:
                self.output(sender, text)
            except Exception:
                logger.exception("output callback failed")
        else:
            allowed, suppressed = self._log_budget.take(time.monotonic())
            if suppressed:
                logger.warning("%d lines of remote output were not logged (rate limit)", suppressed)
            if allowed:
                logger.info("[%s] %s", sender.node, bounded_text(text.rstrip("\n")))

    @staticmethod
    def _needs_remote(request: Any) -> bool:
        if type(request) is not tuple or not request:
            return False
        if request[0] == PUT_CHARS and len(request) in (4, 5):
            return True
        if request[0] == REQUESTS and len(request) == 2 and isinstance(request[1], list):
            return any(IoServer._needs_remote(r) for r in request[1])
        return False

    def _serve_now(self, sender: Pid, request: Any) -> Any:
        if request == GETOPTS:
            return [(Atom("binary"), False), (Atom("encoding"), Atom("unicode"))]
        if type(request) is not tuple or not request:
            return (ERROR, Atom("request"))
        head = request[0]
        if head == PUT_CHARS and len(request) in (2, 3):
            encoding = str(request[1]) if len(request) == 3 else "latin1"
            try:
                self._emit(sender, chardata_to_str(request[-1], encoding))
            except ValueError:
                return (ERROR, Atom("put_chars"))
            return OK
        if head in GET_REQUESTS:
            return EOF_
        if head == SETOPTS:
            return OK
        if head == Atom("get_geometry"):
            return (ERROR, Atom("enotsup"))
        if head == REQUESTS and len(request) == 2 and isinstance(request[1], list):
            result: Any = OK
            for sub in request[1]:
                result = self._serve_now(sender, sub)
                if type(result) is tuple and result and result[0] == ERROR:
                    return result
            return result
        return (ERROR, Atom("request"))

    async def _serve_async(self, sender: Pid, reply_as: Any, request: Any) -> None:
        try:
            reply = await self._serve_remote(sender, request)
        except Exception as exc:  # the io request must be answered whatever happens
            logger.debug("io request from %s failed: %s", sender, exc)
            reply = (ERROR, Atom("put_chars"))
        self._reply(sender, reply_as, reply)

    async def _serve_remote(self, sender: Pid, request: Any) -> Any:
        head = request[0]
        if head == REQUESTS:
            result: Any = OK
            for sub in request[1]:
                if self._needs_remote(sub):
                    result = await self._serve_remote(sender, sub)
                else:
                    result = self._serve_now(sender, sub)
                if type(result) is tuple and result and result[0] == ERROR:
                    return result
            return result
        # {put_chars, [Enc,] M, F, A}: evaluate M:F(A) where the sender lives
        encoding = str(request[1]) if len(request) == 5 else "latin1"
        module, function, args = request[-3], request[-2], request[-1]
        if (module, function) != FORMAT_MF or type(args) is not list or len(args) != 2:
            logger.warning(
                "refused io request from %s: %s:%s is not io_lib:format/2", sender, module, function
            )
            return (ERROR, PUT_CHARS)
        try:
            chars = await self.node.rpc(sender.node, module, function, args, timeout=30.0)
            self._emit(sender, chardata_to_str(chars, encoding))
        except (ErlbridgeError, ValueError):
            return (ERROR, function)
        return OK
