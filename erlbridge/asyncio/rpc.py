"""rpc through the target's ``rex`` server.

See docs/internals/otp-facts.md#rex and docs/internals/otp-facts.md#gen_server-calls.

Request: ``REG_SEND rex {'$gen_call', {Pid, Ref}, {call, M, F, A, GL}}``; the reply
``{Ref, Reply}`` comes via SEND_SENDER. All concurrent calls share one reply endpoint and are
correlated by the plain reference tag (no per-call task or process).

Captured output (``capture_output=True``) uses ``GL = {send_stdout_to_caller, CallPid}``:
rex then runs the call under its own C-node group leader, which evaluates the
``io_lib:format`` requests on the Erlang side and sends the already formatted text as
``{rex_stdout, Bin}`` to ``CallPid`` before the ordinary ``{Ref, Reply}``. So each captured
call gets its own lightweight pid (an :class:`CaptureEndpoint`, not a Process) to keep
concurrent captures apart. Formatting stays exactly Erlang's, with no Python formatter.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from erlbridge.asyncio.process import Endpoint
from erlbridge.exceptions import BadRpc, ErlbridgeError, NodeDown, RemoteException
from erlbridge.term import Atom, Pid, Reference

if TYPE_CHECKING:
    from erlbridge.asyncio.interface import NodeCore

__all__ = [
    "CaptureEndpoint",
    "ErpcExit",
    "PendingReply",
    "RpcEndpoint",
    "RpcOutcome",
    "RpcResult",
    "interpret_erpc",
    "interpret_reply",
]

BADRPC = Atom("badrpc")
EXIT = Atom("EXIT")
REX_STDOUT = Atom("rex_stdout")


@dataclass(frozen=True, slots=True)
class RpcResult:
    """The value of a call made with ``capture_output=True`` and what it printed."""

    value: Any
    output: str


@dataclass(frozen=True, slots=True)
class RpcOutcome:
    """One node's result in :meth:`Node.multicall`: ``value`` or ``error`` is set."""

    node: Atom
    value: Any = None
    error: ErlbridgeError | None = None
    duration: float = 0.0
    output: str | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    def unwrap(self) -> Any:
        """The value, or raise the error."""
        if self.error is not None:
            raise self.error
        return self.value


def _is_stack(value: Any) -> bool:
    # erpc:trim_stack keeps {M, F, A|Arity, Location} frames
    return isinstance(value, list) and all(
        isinstance(f, tuple) and len(f) == 4 and isinstance(f[0], str) for f in value
    )


def interpret_reply(reply: Any, node: str) -> Any:
    """Return the value of a rex reply or raise for ``{badrpc, ...}``.

    ``{badrpc, {'EXIT', {Reason, Stack}}}`` (an ``error:Reason`` with its stacktrace) raises
    RemoteException("error", ...); ``{badrpc, {'EXIT', Reason}}`` raises
    RemoteException("exit", ...); any other ``{badrpc, R}`` raises BadRpc(R). A thrown value
    is returned as is (rex itself cannot tell it from a return value).
    """
    if type(reply) is tuple and len(reply) == 2 and reply[0] == BADRPC:
        reason = reply[1]
        if type(reason) is tuple and len(reason) == 2 and reason[0] == EXIT:
            inner = reason[1]
            if type(inner) is tuple and len(inner) == 2 and _is_stack(inner[1]):
                raise RemoteException("error", inner[0], inner[1], node=node)
            raise RemoteException("exit", inner, [], node=node)
        raise BadRpc(reason, node=node)
    return reply


class PendingReply(Protocol):
    """What waits for a call's reply: an asyncio future, or a blocked thread's call."""

    def done(self) -> bool: ...

    def set_result(self, result: Any, /) -> None: ...

    def set_exception(self, exception: BaseException, /) -> None: ...

    def cancel(self) -> bool: ...


class RpcEndpoint(Endpoint):
    """The shared reply pid for every plain rpc/gen_server call: ``{Ref, Reply}`` → future."""

    __slots__ = ("calls",)

    def __init__(self, node: NodeCore, pid: Pid) -> None:
        super().__init__(node, pid)
        self.calls: dict[Reference, PendingReply] = {}

    def deliver(self, message: Any, size: int = 0) -> None:
        if type(message) is tuple and len(message) == 2:
            fut = self.calls.pop(message[0], None)
            if fut is not None:
                if not fut.done():
                    fut.set_result(message[1])
                return
        self.node.drop(self.pid, message, "late or unknown reply")

    def down(self, ref: Reference, obj: Any, reason: Any) -> None:
        # erpc: the spawned executor's exit reason carries the result (see interpret_erpc)
        fut = self.calls.pop(ref, None)
        if fut is not None and not fut.done():
            fut.set_result(ErpcExit(reason))

    def spawn_failed(self, ref: Reference, reason: Any) -> None:
        fut = self.calls.pop(ref, None)
        if fut is not None and not fut.done():
            fut.set_result(ErpcExit(None, spawn_error=reason))


@dataclass(frozen=True, slots=True)
class ErpcExit:
    """How an erpc executor ended: its exit reason, or why it could not be spawned."""

    reason: Any
    spawn_error: Any = None


RETURN = Atom("return")
THROW = Atom("throw")
ERROR = Atom("error")
EXIT_ATOM = Atom("exit")
ERPC = Atom("erpc")
NOCONNECTION = Atom("noconnection")


def interpret_erpc(result: ErpcExit, tag: Reference, node: str) -> Any:
    """Value of an ``erpc:execute_call/4`` run, with rpc's semantics.

    See docs/internals/otp-facts.md#erpc.

    ``{Tag, return, V}`` -> V; ``{Tag, throw, T}`` -> T (returned, as rpc:call does);
    ``{Tag, exit, R}`` -> RemoteException("exit"); ``{Tag, error, R, Stack}`` ->
    RemoteException("error"); ``{Tag, error, {erpc, R}}`` and a failed spawn -> BadRpc;
    any other exit reason (the executor was killed) -> RemoteException("exit", reason).
    """
    if result.spawn_error is not None:
        raise BadRpc(result.spawn_error, node=node)
    reason = result.reason
    if type(reason) is tuple and len(reason) >= 3 and reason[0] == tag:
        kind = reason[1]
        if kind in (RETURN, THROW):
            return reason[2]
        if kind == EXIT_ATOM:
            raise RemoteException("exit", reason[2], [], node=node)
        if kind == ERROR and len(reason) == 4:
            raise RemoteException("error", reason[2], reason[3], node=node)
        if kind == ERROR:
            inner = reason[2]
            if type(inner) is tuple and len(inner) == 2 and inner[0] == ERPC:
                raise BadRpc(inner[1], node=node)
            raise RemoteException("error", inner, [], node=node)
    if reason == NOCONNECTION:
        raise NodeDown(node, reason)
    raise RemoteException("exit", reason, [], node=node)


class CaptureEndpoint(Endpoint):
    """A one-call reply pid collecting ``{rex_stdout, Bin}`` chunks before the reply."""

    __slots__ = ("chunks", "future", "kept", "lost", "ref")

    def __init__(
        self, node: NodeCore, pid: Pid, ref: Reference, future: asyncio.Future[Any]
    ) -> None:
        super().__init__(node, pid)
        self.ref = ref
        self.future = future
        self.chunks: list[bytes] = []
        #: bytes kept, and bytes dropped beyond the node's max_mailbox_bytes
        self.kept = 0
        self.lost = 0

    def deliver(self, message: Any, size: int = 0) -> None:
        if type(message) is tuple and len(message) == 2:
            if message[0] == REX_STDOUT and isinstance(message[1], bytes):
                # output is bounded like a mailbox: the first max_mailbox_bytes are kept
                limit = self.node.mailbox_limits()[1]
                chunk = message[1]
                if limit is not None and self.kept + len(chunk) > limit:
                    room = max(0, limit - self.kept)
                    self.lost += len(chunk) - room
                    chunk = chunk[:room]
                self.kept += len(chunk)
                if chunk:
                    self.chunks.append(chunk)
                return
            if message[0] == self.ref:
                if not self.future.done():
                    self.future.set_result(message[1])
                return
        self.node.drop(self.pid, message, "unexpected message to a capture pid")

    @property
    def output(self) -> str:
        text = b"".join(self.chunks).decode("utf-8", "replace")
        if self.lost:
            text += f"\n[erlbridge: {self.lost} more bytes of output dropped (max_mailbox_bytes)]\n"
        return text
