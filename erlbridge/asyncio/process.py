"""Python-side processes: a pid, a mailbox with selective receive, links and monitors.

Exit reasons are data: exit signals a process traps and monitor notifications arrive in the
mailbox as :class:`ExitMessage` and :class:`DownMessage`.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from erlbridge.asyncio._atoms import as_atom
from erlbridge.exceptions import ProcessExited, Timeout
from erlbridge.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from erlbridge.asyncio.interface import NodeCore

__all__ = ["DownMessage", "Endpoint", "ExitMessage", "Process"]

logger = logging.getLogger(__name__)

NORMAL = Atom("normal")
KILL = Atom("kill")
KILLED = Atom("killed")
PROCESS = Atom("process")


@dataclass(frozen=True, slots=True)
class DownMessage:
    """``{'DOWN', Ref, process, Object, Reason}``: a monitored process (or its node) went down.

    ``object`` is the pid, or ``(name, node)`` when the monitor was set by name.
    """

    ref: Reference
    object: Any
    reason: Any

    @property
    def type(self) -> Atom:
        return PROCESS


@dataclass(frozen=True, slots=True)
class ExitMessage:
    """``{'EXIT', From, Reason}``: an exit signal received while trapping exits."""

    pid: Any
    reason: Any


class Endpoint:
    """Anything that owns a local pid: it can receive messages and be linked/monitored."""

    __slots__ = ("links", "monitored_by", "monitors", "node", "pid")

    def __init__(self, node: NodeCore, pid: Pid) -> None:
        #: the node's core interface (not the Node itself: see NodeCore)
        self.node = node
        self.pid = pid
        #: pids we are linked to
        self.links: set[Pid] = set()
        #: monitors we hold: ref -> (target pid or atom name, node name)
        self.monitors: dict[Reference, tuple[Any, Atom]] = {}
        #: monitors on us: ref -> monitoring pid
        self.monitored_by: dict[Reference, Pid] = {}

    def deliver(self, message: Any, size: int = 0) -> None:
        """Take ``message``; ``size`` is what it cost to receive: its frame's size plus
        what its compressed terms inflated to (0: a local send)."""
        raise NotImplementedError

    def exit_signal(self, sender: Any, reason: Any, *, linked: bool) -> None:
        """Default for service endpoints: they ignore exit signals (they are not killable)."""
        if linked:
            self.links.discard(sender)

    def down(self, ref: Reference, obj: Any, reason: Any) -> None:
        """A monitor of ours fired."""
        self.monitors.pop(ref, None)


class Process(Endpoint):
    """A Python-side Erlang process. Create with :meth:`Node.process`.

    Not thread-safe: use it from the node's event loop (the blocking facade does this).
    """

    __slots__ = (
        "_mailbox",
        "_mailbox_bytes",
        "_sizes",
        "_waiters",
        "exit_reason",
        "name",
        "overflowed",
        "trap_exit",
    )

    def __init__(
        self, node: NodeCore, pid: Pid, *, name: str | None = None, trap_exit: bool = False
    ) -> None:
        super().__init__(node, pid)
        self.name = as_atom(name) if name is not None else None
        self.trap_exit = trap_exit
        self.exit_reason: Any = None
        self._mailbox: deque[Any] = deque()
        # sizes of the mailbox's messages (frame + inflated), index for index, and their sum
        self._sizes: deque[int] = deque()
        self._mailbox_bytes = 0
        #: messages dropped because the mailbox was full (``node.max_mailbox`` messages or
        #: ``node.max_mailbox_bytes`` bytes)
        self.overflowed = 0
        self._waiters: list[tuple[Callable[[Any], bool] | None, asyncio.Future[Any]]] = []

    def __repr__(self) -> str:
        state = "alive" if self.alive else f"exited {self.exit_reason}"
        named = f" {self.name}" if self.name else ""
        return f"<Process {self.pid}{named} {state}>"

    @property
    def alive(self) -> bool:
        return self.exit_reason is None

    def _check(self) -> None:
        if self.exit_reason is not None:
            raise ProcessExited(self.pid, self.exit_reason)

    # -- mailbox ---------------------------------------------------------------------

    def deliver(self, message: Any, size: int = 0) -> None:
        if self.exit_reason is not None:
            return
        for i, (match, fut) in enumerate(self._waiters):
            if fut.done():
                continue
            if match is None or match(message):
                del self._waiters[i]
                fut.set_result(message)
                return
        count_limit, byte_limit = self.node.mailbox_limits()
        if (count_limit is not None and len(self._mailbox) >= count_limit) or (
            byte_limit is not None and size and self._mailbox_bytes + size > byte_limit
        ):
            # Overflow policy (documented on Node): drop the newest message, count it,
            # log the first drop and every 10 000th; the mailbox keeps its oldest messages.
            if self.overflowed % 10_000 == 0:
                logger.warning(
                    "mailbox of %s is full (%d messages, %d bytes; a message of %d bytes): "
                    "dropping new messages (%d so far)",
                    self.pid,
                    len(self._mailbox),
                    self._mailbox_bytes,
                    size,
                    self.overflowed + 1,
                )
            self.overflowed += 1
            self.node.count_dropped()
            return
        self._mailbox.append(message)
        self._sizes.append(size)
        self._mailbox_bytes += size

    def mailbox_size(self) -> int:
        return len(self._mailbox)

    def mailbox_bytes(self) -> int:
        """Bytes of the messages waiting in the mailbox (remote messages only): each
        counts its frame's size plus what its compressed terms inflated to."""
        return self._mailbox_bytes

    def receive_nowait(self, match: Callable[[Any], bool] | None = None) -> Any:
        """Take the first (matching) message; raises LookupError if there is none."""
        self._check()
        if match is None:
            if self._mailbox:
                self._mailbox_bytes -= self._sizes.popleft()
                return self._mailbox.popleft()
        else:
            for i, message in enumerate(self._mailbox):
                if match(message):
                    del self._mailbox[i]
                    self._mailbox_bytes -= self._sizes[i]
                    del self._sizes[i]
                    return message
        raise LookupError("no matching message")

    async def receive(
        self, match: Callable[[Any], bool] | None = None, timeout: float | None = None
    ) -> Any:
        """Wait for the first message for which ``match(message)`` is true (any if None).

        Non-matching messages stay in the mailbox, in order. Raises Timeout after ``timeout``
        seconds and ProcessExited if the process exits meanwhile. Cancellation-safe: a
        message is never lost by a cancelled receive.
        """
        try:
            return self.receive_nowait(match)
        except LookupError:
            pass
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        entry = (match, fut)
        self._waiters.append(entry)
        try:
            if timeout is None:
                return await fut
            async with asyncio.timeout(timeout):
                return await fut
        except TimeoutError as exc:
            if _delivered(fut):
                return fut.result()
            raise Timeout(f"receive on {self.pid}", timeout) from exc
        except asyncio.CancelledError:
            if _delivered(fut):
                # delivered in the same iteration as the cancellation: keep the message
                # (it never counted against the bounds: it went straight to the waiter)
                self._mailbox.appendleft(fut.result())
                self._sizes.appendleft(0)
            raise
        finally:
            if entry in self._waiters:
                self._waiters.remove(entry)

    # -- signals -----------------------------------------------------------------------

    def send(self, dest: Any, message: Any) -> None:
        """Send ``message`` to a pid, ``(name, node)``, alias reference or local name."""
        self._check()
        self.node.route(self.pid, dest, message)

    async def link(self, pid: Pid) -> None:
        """Link to ``pid`` (connecting to its node first if needed)."""
        self._check()
        await self.node.link(self, pid)

    async def unlink(self, pid: Pid) -> None:
        self._check()
        await self.node.unlink(self, pid)

    def monitor(self, target: Any) -> Reference:
        """Monitor a pid, ``(name, node)`` or local name; a DownMessage with the returned
        reference arrives when it goes down (``noproc`` if it does not exist,
        ``noconnection`` if its node disconnects)."""
        self._check()
        return self.node.monitor(self, target)

    def demonitor(self, ref: Reference) -> None:
        """Remove a monitor; no DownMessage for it will arrive later (flushed)."""
        self.node.demonitor(self, ref)
        kept = [
            (m, n)
            for m, n in zip(self._mailbox, self._sizes, strict=True)
            if not (isinstance(m, DownMessage) and m.ref == ref)
        ]
        self._mailbox = deque(m for m, _ in kept)
        self._sizes = deque(n for _, n in kept)
        self._mailbox_bytes = sum(self._sizes)

    def exit(self, pid: Pid, reason: Any) -> None:
        """Send an exit signal to ``pid`` (``erlang:exit/2``)."""
        self._check()
        self.node.exit2(self, pid, reason)

    def exit_signal(self, sender: Any, reason: Any, *, linked: bool) -> None:
        if self.exit_reason is not None:
            return
        if linked:
            if sender not in self.links:
                return
            self.links.discard(sender)
        if not linked and reason == KILL:
            self._terminate(KILLED)
        elif self.trap_exit:
            self.deliver(ExitMessage(sender, reason))
        elif reason != NORMAL:
            self._terminate(reason)

    def down(self, ref: Reference, obj: Any, reason: Any) -> None:
        if self.monitors.pop(ref, None) is not None:
            self.deliver(DownMessage(ref, obj, reason))

    def close(self, reason: Any = "normal") -> None:
        """Exit with ``reason``: linked processes get an exit signal, monitors fire."""
        if self.exit_reason is None:
            self._terminate(as_atom(reason) if isinstance(reason, str) else reason)

    def _terminate(self, reason: Any) -> None:
        self.exit_reason = reason
        waiters, self._waiters = self._waiters, []
        for _, fut in waiters:
            if not fut.done():
                fut.set_exception(ProcessExited(self.pid, reason))
        self._mailbox.clear()
        self._sizes.clear()
        self._mailbox_bytes = 0
        self.node.process_exited(self, reason)


def _delivered(fut: asyncio.Future[Any]) -> bool:
    return fut.done() and not fut.cancelled() and fut.exception() is None
