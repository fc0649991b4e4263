"""Calls that wait for a reply: ``gen_server`` calls and rex rpc, erpc, captured rpc, and the
one timer behind every call's deadline.

See docs/internals/otp-facts.md#rex, #gen_server-calls and #erpc. Every plain call and every
erpc shares one path (:meth:`Calls.exchange`): register a reference and a future with the
shared reply pid, send one frame built from cached bytes, arm the deadline, await, clean up.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import struct
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, Protocol

from erlbridge.asyncio._atoms import as_atom
from erlbridge.asyncio.connection import DistProtocol
from erlbridge.asyncio.peers import Peer, Peers, split_target
from erlbridge.asyncio.registry import MAX_ID, Registry
from erlbridge.asyncio.reply import Awake, ReplyFuture
from erlbridge.asyncio.rpc import (
    CaptureEndpoint,
    PendingReply,
    RpcEndpoint,
    RpcResult,
    interpret_erpc,
    interpret_reply,
)
from erlbridge.exceptions import ErlbridgeError, Timeout
from erlbridge.protocol import control as c
from erlbridge.term import Atom, Pid, Reference, encode

__all__ = [
    "Calls",
    "Deadlines",
    "Expired",
    "Prepared",
    "ThreadCall",
    "ThreadWaiter",
    "rpc_description",
]

REX = Atom("rex")
GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
CALL = Atom("call")
CAST = Atom("cast")
SEND_STDOUT = Atom("send_stdout_to_caller")
ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")
MONITOR = Atom("monitor")
REF_IDS = struct.Struct(">III")
# what asyncio's loop adds to loop.time() when it decides which timers are due
CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


class Calls:
    """The call machinery of one node. :meth:`start` binds the loop and the shared reply pid
    (``rpc``) and caches the frame parts every call reuses; :meth:`stop` ends new calls."""

    __slots__ = (
        "_call_head",
        "_ctl_cache",
        "_peer_table",
        "_ref_creation",
        "_ref_ids",
        "_ref_name",
        "_ref_salt",
        "_rex_heads",
        "_rex_tail",
        "_spawn_parts",
        "_targets",
        "awake",
        "deadlines",
        "io_pid",
        "loop",
        "peers",
        "registry",
        "rpc",
        "spin",
    )

    def __init__(self, registry: Registry, peers: Peers) -> None:
        self.registry = registry
        self.peers = peers
        self._peer_table = peers.table
        self._ref_ids = registry.ref_ids
        # the reference's fixed parts, set by start() (creation is known from then on)
        self._ref_name = registry.name
        self._ref_creation = 0
        self._ref_salt = registry.ref_salt
        self.loop: asyncio.AbstractEventLoop | None = None
        self.rpc: RpcEndpoint | None = None
        self.io_pid: Pid | None = None
        self.deadlines: Deadlines | None = None
        #: seconds a waiting caller stays awake for its reply (the node's reply_spin)
        self.spin = 0.0
        self.awake: Awake | None = None
        self._targets: dict[str, Atom] = {}
        self._ctl_cache: dict[tuple[Pid, Any], bytes] = {}
        self._call_head = b""
        self._spawn_parts = (b"", b"", b"")
        self._rex_heads: dict[tuple[str, str], bytes] = {}
        self._rex_tail = b""

    def start(self, loop: asyncio.AbstractEventLoop, rpc: RpcEndpoint, io_pid: Pid) -> None:
        registry = self.registry
        self.loop = loop
        self.rpc = rpc
        self.io_pid = io_pid
        self._ref_creation = registry.creation
        self.deadlines = Deadlines(loop)
        self.awake = Awake(loop, self.spin, lambda: bool(rpc.calls))
        # {'$gen_call', {RpcPid, #Ref<...  up to the ref's id words (see exchange)
        ref_head = encode(Reference(registry.name, registry.creation, (0, 0, 0)))[1:-12]
        self._call_head = (
            b"\x83h\x03" + encode(GEN_CALL)[1:] + b"h\x02" + encode(rpc.pid)[1:] + ref_head
        )
        # SPAWN_REQUEST {29, ReqId, RpcPid, IoPid, {erpc, execute_call, 4}, [monitor]} around
        # the request id's words
        tail = b"".join(
            encode(t)[1:] for t in (rpc.pid, io_pid, (ERPC, EXECUTE_CALL, 4), [MONITOR])
        )
        self._spawn_parts = (b"\x83h\x06a\x1d" + ref_head, tail, ref_head)

    def stop(self) -> None:
        """The node is closing: no new call starts (they raise InvalidState)."""
        self.rpc = None

    def close(self) -> None:
        """The node has closed: stop the deadline timer."""
        if self.deadlines is not None:
            self.deadlines.close()

    def target(self, node: str) -> Atom:
        """The full node name for ``node`` (``name@host[:port]``), cached for the hot path."""
        full = self._targets.get(node)
        if full is None:
            full = as_atom(split_target(node)[0])
            if len(self._targets) < 4096:
                self._targets[node] = full
        return full

    def _ctl_bytes(self, from_pid: Pid, dest: Any) -> bytes:
        """Encoded control term (with 131) for a message from ``from_pid`` to ``dest``;
        cached for registered-name destinations, the rpc hot path (``rex``)."""
        key = (from_pid, dest)
        ctl = self._ctl_cache.get(key)
        if ctl is None:
            if isinstance(dest, Pid):
                message: c.ControlMessage = c.SendSender(from_pid, dest, None)
            else:
                message = c.RegSend(from_pid, dest[0], None)
            ctl = encode(message.to_term()[0])
            if not isinstance(dest, Pid) and len(self._ctl_cache) < 1024:
                self._ctl_cache[key] = ctl
        return ctl

    def rex_request(self, module: str, function: str, args: list[Any]) -> bytes:
        """``{call, M, F, Args, IoPid}`` encoded without the 131 byte, from a cached
        ``{call, M, F,`` head per (module, function) and the cached ``IoPid`` tail."""
        head = self._rex_heads.get((module, function))
        if head is None:
            assert self.io_pid is not None
            if not self._rex_tail:
                self._rex_tail = encode(self.io_pid)[1:]
            head = b"h\x05" + b"".join(
                encode(t)[1:] for t in (CALL, as_atom(module), as_atom(function))
            )
            if len(self._rex_heads) < 1024:
                self._rex_heads[module, function] = head
        return b"".join((head, encode(args)[1:], self._rex_tail))

    @staticmethod
    def erpc_request(module: Atom, function: Atom, args: list[Any]) -> bytes:
        """``M, F, Args`` of ``erpc:execute_call(Ref, M, F, Args)``, encoded without 131."""
        return b"".join((encode(module)[1:], encode(function)[1:], encode(args)[1:]))

    async def _peer(self, node: str, full: Atom, timeout: float | None) -> Peer:
        peer = self.peers.peer_for(node)
        connect = self.peers.settings.connect_timeout if timeout is None else timeout
        await self.peers.wait_connected(peer, connect)
        return peer

    async def exchange(
        self,
        node: str,
        full: Atom,
        dest: Any,
        encoded: bytes,
        *,
        timeout: float | None,
        what: Callable[[], str],
        spawn: bool = False,
    ) -> Any:
        """One call from the shared reply pid; the frame is built from cached bytes plus the
        reference's id words and ``encoded``, so a call costs no control dataclass.

        ``spawn`` false: a ``gen_server`` call to ``dest`` (``encoded``: the request, without
        the 131 byte); returns the reply. ``spawn`` true: ``erpc:call`` on the wire, a
        SPAWN_REQUEST of ``erpc:execute_call/4`` with a monitor (``encoded``: from
        :meth:`erpc_request`); the result arrives as the executor's DOWN reason and is
        interpreted here. Erts spawns the executor itself (no hop through ``rex``); the
        request id doubles as erpc's result tag."""
        loop = self.loop
        rpc = self.rpc
        if rpc is None or loop is None:
            self.peers.require_started()
            raise AssertionError("unreachable")
        peer = self._peer_table.get(full)
        if peer is None or not peer.up:
            peer = await self._peer(node, full, timeout)
        proto = peer.proto
        assert proto is not None
        n = next(self._ref_ids)
        ids = (n & 0x3FFFF, (n >> 18) & MAX_ID, self._ref_salt)
        ref = Reference(self._ref_name, self._ref_creation, ids)
        # the reply resumes us inside data_received (see reply.py)
        fut: asyncio.Future[Any] = ReplyFuture(loop=loop)
        rpc.calls[ref] = fut
        peer.calls.add(ref)
        if spawn:
            head, tail, ref_head = self._spawn_parts
            packed = REF_IDS.pack(*ids)
            control = b"".join((head, packed, tail))
            payload = b"".join((b"\x83l\x00\x00\x00\x04", ref_head, packed, encoded, b"j"))
        else:
            control = self._ctl_bytes(rpc.pid, dest)
            payload = b"".join((self._call_head, REF_IDS.pack(*ids), encoded))
        proto.send_encoded(control, payload)
        awake = self.awake
        deadlines = self.deadlines
        assert deadlines is not None and awake is not None
        awake.sent()
        entry = None if timeout is None else deadlines.add(timeout, fut)
        try:
            if proto.paused:
                await proto.drain()
            result = await fut
        except Expired as exc:
            raise Timeout(what(), timeout) from exc
        finally:
            if entry is not None:
                deadlines.finished(entry)
            rpc.calls.pop(ref, None)
            peer.calls.discard(ref)
        return interpret_erpc(result, ref, full) if spawn else result

    def prepare(
        self,
        node: str,
        module: str,
        function: str,
        args: list[Any],
        waiter: ThreadWaiter,
        *,
        timeout: float | None,
    ) -> Prepared | None:
        """A rex rpc for a blocked caller, registered but not sent; safe on any thread.

        The same frame as :meth:`exchange`, but the reply (or the error) goes straight to
        ``waiter``: no task, no future (see docs/internals/architecture.md#the-blocking-api).
        The caller sends it (``proto.send_lent``, or ``send_encoded`` on the loop thread)
        and keeps the deadline itself: on expiry ``call.set_exception(Expired())`` raises
        Timeout with ``timeout`` in its text. None when it cannot start this way: not
        connected yet, closing, or the connection is paused for back-pressure; the caller
        then uses the coroutine path."""
        rpc = self.rpc
        if rpc is None:
            return None
        full = self.target(node)
        peer = self._peer_table.get(full)
        if peer is None or not peer.up:
            return None
        proto = peer.proto
        if proto is None or proto.paused:
            return None
        encoded = self.rex_request(module, function, args)
        n = next(self._ref_ids)
        ids = (n & 0x3FFFF, (n >> 18) & MAX_ID, self._ref_salt)
        ref = Reference(self._ref_name, self._ref_creation, ids)
        call = ThreadCall(
            self, peer, ref, waiter, lambda: rpc_description(module, function, args, full)
        )
        call.timeout = timeout
        rpc.calls[ref] = call
        peer.calls.add(ref)
        if peer.proto is not proto:  # lost meanwhile, maybe after its calls were failed
            self.forget(peer, ref)
            return None
        payload = b"".join((self._call_head, REF_IDS.pack(*ids), encoded))
        control = self._ctl_bytes(rpc.pid, (REX, full))
        return Prepared(proto, call, ref, control, payload, rpc.pid, self.spin)

    def forget(self, peer: Peer, ref: Reference) -> None:
        """A call started by :meth:`begin` is over: drop its reference from the tables."""
        if self.rpc is not None:
            self.rpc.calls.pop(ref, None)
        peer.calls.discard(ref)

    async def capture(
        self,
        node: str,
        full: Atom,
        call: tuple[Any, ...],
        *,
        timeout: float | None,
        what: Callable[[], str],
    ) -> RpcResult:
        """A rex call whose output comes back to a pid of its own (see rpc.py)."""
        loop = self.peers.require_started()
        peer = self._peer_table.get(full)
        if peer is None or not peer.up:
            peer = await self._peer(node, full, timeout)
        registry = self.registry
        ref = registry.make_ref()
        fut: asyncio.Future[Any] = loop.create_future()
        rpc = self.rpc
        assert rpc is not None
        endpoint = CaptureEndpoint(rpc.node, registry.new_pid(), ref, fut)
        registry.add(endpoint)
        rpc.calls[ref] = fut  # so a nodedown fails it too
        peer.calls.add(ref)
        gl = (SEND_STDOUT, endpoint.pid)
        request = (*call, gl)
        try:
            self.peers.route(endpoint.pid, (REX, full), (GEN_CALL, (endpoint.pid, ref), request))
            if timeout is None:
                reply = await fut
            else:
                async with asyncio.timeout(timeout):
                    reply = await fut
        except Timeout:
            raise  # the connection's own (e.g. EPMD did not answer)
        except TimeoutError as exc:
            raise Timeout(what(), timeout) from exc
        finally:
            registry.remove(endpoint.pid)
            rpc.calls.pop(ref, None)
            peer.calls.discard(ref)
        return RpcResult(interpret_reply(reply, full), endpoint.output)

    def cast(self, node: str, module: str, function: str, args: Sequence[Any]) -> None:
        """``rpc:cast/4`` through the node's rex (output to the node's group leader)."""
        self.peers.require_started()
        assert self.rpc is not None and self.io_pid is not None
        full = as_atom(split_target(node)[0])
        if not self.peers.has_peer(full):
            self.peers.peer_for(node)
        request = (CAST, as_atom(module), as_atom(function), list(args), self.io_pid)
        self.peers.send_control(full, c.RegSend(self.rpc.pid, REX, (GEN_CAST, request)))


def rpc_description(module: str, function: str, args: Sequence[Any], full: Atom) -> str:
    """How a Timeout names an rpc."""
    return f"rpc {module}:{function}/{len(args)} on {full}"


class ThreadWaiter(Protocol):
    """Where :meth:`Calls.prepare` delivers: the blocked caller's hand-off (``set`` or
    ``fail``; on the loop thread or on a thread reading a lent socket, and, when a reply
    and a lost connection race, possibly twice: the first counts)."""

    def set(self, value: Any) -> None: ...

    def fail(self, error: BaseException) -> None: ...


class Prepared(NamedTuple):
    """A blocking call registered by :meth:`Calls.prepare`, with the frame to send."""

    proto: DistProtocol
    call: ThreadCall
    ref: Reference
    control: bytes
    payload: bytes
    #: the shared reply pid the answer is sent to
    reply_pid: Pid
    #: seconds its reader stays awake for the reply before it sleeps (reply_spin)
    spin: float


class ThreadCall:
    """One call made by :meth:`Calls.prepare`. It stands where :meth:`Calls.exchange`
    keeps a future (the reply table, a connection's pending calls), so the reply and a
    lost connection reach it the same way; its caller keeps the deadline."""

    __slots__ = ("_calls", "_done", "_peer", "_ref", "_waiter", "_what", "timeout")

    def __init__(
        self,
        calls: Calls,
        peer: Peer,
        ref: Reference,
        waiter: ThreadWaiter,
        what: Callable[[], str],  # the call's name for errors, made when one is raised
    ) -> None:
        self._calls = calls
        self._peer = peer
        self._ref = ref
        self._waiter = waiter
        self._what = what
        self._done = False
        self.timeout: float | None = None

    def done(self) -> bool:
        return self._done

    def _finish(self) -> None:
        self._done = True
        self._calls.forget(self._peer, self._ref)

    def set_result(self, reply: Any) -> None:
        """The ``{Ref, Reply}`` from rex (the reply endpoint)."""
        if self._done:
            return
        self._finish()
        try:
            value = interpret_reply(reply, self._peer.name)
        except ErlbridgeError as exc:
            self._waiter.fail(exc)
        else:
            self._waiter.set(value)

    def set_exception(self, error: BaseException) -> None:
        """The connection was lost (NodeDown) or the deadline passed (Expired)."""
        if self._done:
            return
        self._finish()
        if isinstance(error, Expired):
            timeout = Timeout(self._what(), self.timeout)
            timeout.__cause__ = error
            error = timeout
        self._waiter.fail(error)

    def cancel(self) -> bool:
        """Part of :class:`PendingReply`; a blocked caller is never cancelled."""
        return False

    def abandon(self) -> None:
        """The caller stopped waiting (interrupted): forget the call; a late reply is
        dropped as for any unknown reference."""
        if not self._done:
            self._finish()
            self._waiter.fail(InterruptedError(self._what()))


class Expired(Exception):
    """A call's deadline passed (internal to the call machinery)."""


class Deadlines:
    """Every call's deadline behind one loop timer (instead of a TimerHandle per call).

    ``add`` pushes ``(deadline, seq, future)`` on a heap; the one timer is armed at the
    earliest deadline and, when it fires, fails every pending future whose deadline has come
    with ``Expired``. Firing follows ``call_at``'s own rule (due once ``loop.time()`` is
    within the clock resolution of the deadline), so a Timeout comes exactly when the
    per-call timer would have fired. A finished call is not removed at once (no per-call
    cancel): ``finished`` drops the entry's future (no finished call's result is kept
    alive) and counts it, and the heap is rebuilt from the pending entries when finished
    ones are the majority, so the heap stays about as long as the calls in flight, never
    one entry per call of the last ``timeout`` seconds.
    """

    __slots__ = ("_finished", "_heap", "_loop", "_seq", "_timer", "_timer_at")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        # entries are [deadline, seq, future or None]: finished() sets the future to None
        self._heap: list[list[Any]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._finished = 0

    def add(self, timeout: float, fut: PendingReply) -> list[Any]:
        """Fail ``fut`` with Expired ``timeout`` seconds from now unless it is done by then.
        Returns the entry to pass to :meth:`finished`."""
        when = self._loop.time() + timeout
        entry = [when, next(self._seq), fut]
        heapq.heappush(self._heap, entry)
        if self._timer is None or when < self._timer_at:
            self._arm(when)
        return entry

    def finished(self, entry: list[Any]) -> None:
        """The entry's call is over. A future that is still pending (the caller was cancelled
        before awaiting it) is cancelled, so nothing sets an exception on it later."""
        fut = entry[2]
        if fut is not None:
            entry[2] = None
            if not fut.done():
                fut.cancel()
        self._finished += 1
        if self._finished > 64 and self._finished * 2 > len(self._heap):
            self._heap = [e for e in self._heap if e[2] is not None and not e[2].done()]
            heapq.heapify(self._heap)
            self._finished = 0

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        heap = self._heap
        # Due: what the loop has just counted as due by firing this timer (a loop may round,
        # uvloop to milliseconds), and what asyncio itself would run now (deadline within
        # the clock resolution), exactly as a per-call timer at that deadline would fire.
        due = max(self._timer_at, self._loop.time() + CLOCK_RESOLUTION)
        while heap:
            when, _, fut = heap[0]
            if fut is None or fut.done():
                heapq.heappop(heap)
            elif when <= due:
                heapq.heappop(heap)
                fut.set_exception(Expired())
            else:
                self._arm(when)
                return
