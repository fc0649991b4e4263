"""The narrow interfaces between the node's parts (docs/internals/architecture.md#the-node).

:class:`NodeCore` is all an endpoint (a Process, the rpc reply pid, the io server) sees of
its node; :class:`Wire` is all the links table and the dispatcher see of the peer table;
:class:`HasLogger` is how a part reads the node's logger. All are structural: the parts
implement them without importing the modules that use them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol

from erlbridge.protocol.control import ControlMessage
from erlbridge.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from erlbridge.asyncio.process import Process

__all__ = ["HasLogger", "NodeCore", "Wire"]


class NodeCore(Protocol):
    """What endpoints may ask of their node."""

    @property
    def name(self) -> Atom: ...

    def mailbox_limits(self) -> tuple[int | None, int | None]:
        """``(max_mailbox, max_mailbox_bytes)`` as the node is configured now."""

    def route(self, from_pid: Pid, dest: Any, message: Any) -> None:
        """Send ``message`` to a pid, alias, ``(name, node)`` or local name."""

    def drop(self, to: Any, message: Any, why: str) -> None:
        """Count and log (DEBUG) a message nobody can receive."""

    def count_dropped(self) -> None:
        """Count a message dropped without a log record (a full mailbox logs its own)."""

    async def link(self, proc: Process, pid: Pid) -> None: ...

    async def unlink(self, proc: Process, pid: Pid) -> None: ...

    def monitor(self, proc: Process, target: Any) -> Reference: ...

    def demonitor(self, proc: Process, ref: Reference) -> None: ...

    def exit2(self, proc: Process, pid: Pid, reason: Any) -> None:
        """``erlang:exit/2`` from ``proc`` to ``pid``."""

    def process_exited(self, proc: Process, reason: Any) -> None:
        """``proc`` exited: forget it, signal its links and monitors."""

    async def rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
    ) -> Any:
        """``rpc:call`` (the io server formats remote output with it)."""


class Wire(Protocol):
    """How the links/monitors table reaches other nodes (the peer table implements it)."""

    def send_control(self, node: Atom, message: ControlMessage) -> None:
        """Send to ``node``, connecting on demand (queued until the handshake completes)."""

    def has_peer(self, node: Atom) -> bool:
        """A connection to ``node`` exists or is being set up."""

    async def connect_peer(self, node: Atom) -> None:
        """Connect to ``node`` (within the node's connect_timeout); raises as connect does."""


class HasLogger(Protocol):
    """The node's ``log`` attribute, read at each use (a caller may replace it)."""

    log: logging.Logger
