"""A connection's socket lent to blocked callers: the blocking API's rpc without the loop.

Why: a blocking call that goes through the loop thread wakes two threads per call (caller →
loop thread → caller); with the GIL that hand-off, not the protocol, was the blocking API's
cost (docs/internals/architecture.md#the-blocking-api). Here the calling thread writes its
request to the socket and reads the reply itself, as a plain blocking client does.

How:

* :meth:`DirectLine.enter` asks the loop once to lend the socket
  (:meth:`DistProtocol.lend`: the loop stops reading it). The loop takes it back after
  :data:`IDLE` seconds without a call, when too much read here waits for it
  (:data:`MAX_HANDED`), or when the connection breaks.
* Leader/follower: of the threads waiting for replies on one connection, one (the leader)
  reads; it completes the calls whose replies it reads (waking their threads) and hands
  every other message to the loop thread in arrival order (:meth:`DistProtocol.deliver`).
  When its own reply has come, it promotes a waiting thread to read next.
* Every call is also registered where the loop's own calls are (:meth:`Calls.prepare`), so a
  lost connection fails it the usual way, and a reply the loop reads still reaches it.
* TLS connections are not lent (the bytes on the socket are encrypted by the loop's
  transport): their calls are sent by the loop thread and the caller waits for the reply.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from typing import Any

from erlbridge.asyncio.calls import Expired, Prepared
from erlbridge.asyncio.connection import DistProtocol
from erlbridge.exceptions import ErlbridgeError
from erlbridge.protocol import control as c
from erlbridge.term import Reference

__all__ = ["DirectLine", "DirectWaiter", "call"]

#: seconds without a blocked call before the loop reads the socket again
IDLE = 0.02
#: bytes read for the loop and not yet delivered by it before the loop reads itself again
MAX_HANDED = 4 * 1024 * 1024
#: bytes read at once
READ_SIZE = 64 * 1024
#: seconds a lone reader keeps trying the socket before it sleeps in poll: on this VM a
#: thread woken from poll ran the next ~40 µs of Python several times slower (cold caches,
#: wake-up latency), which cost more than the whole reply takes to arrive (BENCHMARKS.md)
SPIN = 0.0002
#: longest single wait for the socket (the leader re-checks the line's state after it)
POLL_MS = 1000
#: seconds to wait for the loop thread to lend the socket
LEND_TIMEOUT = 5.0

_LOOP, _THREADS, _DEAD = "loop", "threads", "dead"
_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR


class DirectWaiter:
    """One blocked caller: where its call's value or error lands (a ThreadWaiter), and
    the lock it sleeps on until that, or until it is promoted to read."""

    __slots__ = ("_error", "_mutex", "_signalled", "_value", "_wake", "finished")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._wake = threading.Lock()
        self._wake.acquire()
        self._signalled = False
        self._value: Any = None
        self._error: BaseException | None = None
        self.finished = False

    def set(self, value: Any) -> None:
        with self._mutex:
            if self.finished:  # a lost connection came first
                return
            self._value = value
            self.finished = True
            self._signal()

    def fail(self, error: BaseException) -> None:
        with self._mutex:
            if self.finished:
                return
            self._error = error
            self.finished = True
            self._signal()

    def signal(self) -> None:
        """Wake the thread (it was promoted to read)."""
        with self._mutex:
            self._signal()

    def _signal(self) -> None:
        if not self._signalled:
            self._signalled = True
            self._wake.release()

    def sleep(self, timeout: float | None) -> bool:
        """Sleep until signalled (True) or ``timeout`` seconds pass (False)."""
        if not self._wake.acquire(timeout=-1 if timeout is None else max(timeout, 0.0)):
            return False
        with self._mutex:
            self._signalled = False
        return True

    def result(self) -> Any:
        error = self._error
        if error is not None:
            self._error = None  # no cycle through the traceback
            raise error
        return self._value


def call(prep: Prepared, waiter: DirectWaiter, timeout: float | None) -> Any:
    """Send a prepared blocking call and wait for its value (raise its error)."""
    deadline = None if timeout is None else time.monotonic() + timeout
    line = DirectLine.of(prep.proto)
    try:
        if line.enter():
            try:
                line.send_and_wait(prep, waiter, deadline)
            finally:
                line.leave(prep.ref)
        else:  # not lent (TLS, or the connection is going): the loop sends it
            prep.proto.loop.call_soon_threadsafe(
                prep.proto.send_encoded, prep.control, prep.payload
            )
            while not waiter.finished:
                if not waiter.sleep(_remaining(deadline)) and _expired(deadline):
                    prep.call.set_exception(Expired())
    except BaseException:
        if not waiter.finished:  # interrupted: a late reply is dropped
            prep.call.abandon()
        raise
    return waiter.result()


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else deadline - time.monotonic()


def _expired(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


class DirectLine:
    """One connection's socket while blocked callers use it (see the module text)."""

    def __init__(self, proto: DistProtocol) -> None:
        self.proto = proto
        self._loop = proto.loop
        self._mutex = threading.Lock()
        self._state = _LOOP
        self._sock: socket.socket | None = None
        self._poller = select.poll()
        self._buffer = memoryview(bytearray(READ_SIZE))
        #: calls sent from here by reference (only these are completed by the reader)
        self._pending: dict[Reference, Prepared] = {}
        self._inflight = 0
        self._leader: DirectWaiter | None = None
        self._waiting: dict[DirectWaiter, None] = {}
        self._last_used = 0.0
        self._handed = 0
        self._reply_pid: Any = None

    @classmethod
    def of(cls, proto: DistProtocol) -> DirectLine:
        """The line of ``proto`` (one per connection, made on first use)."""
        return proto.borrower(cls)

    def __repr__(self) -> str:
        return f"<DirectLine {self.proto.peer_node} {self._state}>"

    # -- entering and leaving ---------------------------------------------------------

    def enter(self) -> bool:
        """Count a call in; False when the socket cannot be lent (the loop sends then)."""
        for _ in range(3):  # the idle check may take it back between lend and here
            with self._mutex:
                if self._state == _THREADS:
                    self._inflight += 1
                    return True
                if self._state == _DEAD:
                    return False
            lent = threading.Event()
            self._loop.call_soon_threadsafe(self._lend, lent)
            if not lent.wait(LEND_TIMEOUT):
                return False
        return False

    def leave(self, ref: Reference) -> None:
        with self._mutex:
            self._pending.pop(ref, None)
            self._inflight -= 1
            self._last_used = time.monotonic()

    def _lend(self, done: threading.Event) -> None:
        # on the loop thread
        try:
            with self._mutex:
                if self._state != _LOOP:
                    return
                sock = self.proto.lend(self)
                if sock is None:
                    self._state = _DEAD
                    return
                if self._sock is None:
                    self._sock = sock
                    self._poller.register(sock.fileno(), _READABLE)
                self._state = _THREADS
                self._last_used = time.monotonic()
            self._loop.call_later(IDLE, self._check_idle)
        finally:
            done.set()

    def _check_idle(self) -> None:
        # on the loop thread: take the socket back once nobody has used it for IDLE
        with self._mutex:
            if self._state != _THREADS:
                return
            idle = time.monotonic() - self._last_used
            if self._inflight or self._leader is not None or idle < IDLE:
                self._loop.call_later(max(IDLE - idle, IDLE / 4), self._check_idle)
                return
            self._state = _LOOP
        self.proto.reclaim()

    def lost(self) -> None:
        """The connection is gone (the loop thread, from ``connection_lost``)."""
        with self._mutex:
            self._state = _DEAD
            sock = self._sock
            if sock is not None:
                # wakes a reader polling it; the peer sees the close
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._close_if_unread()

    def _close_if_unread(self) -> None:
        # with the mutex held: close the copy once dead and nobody reads it
        if self._state == _DEAD and self._leader is None and self._sock is not None:
            self._sock.close()
            self._sock = None

    def _give_back(self, *, broken: bool, abort: BaseException | None = None) -> None:
        # on the reading thread: stop reading here; the loop reads again (and sees the end
        # of a broken connection itself), or aborts it
        with self._mutex:
            if self._state == _THREADS:
                self._state = _DEAD if broken or abort is not None else _LOOP
        if abort is not None:
            self._loop.call_soon_threadsafe(self.proto.abort, abort)
        else:
            self._loop.call_soon_threadsafe(self.proto.reclaim)

    # -- one call ---------------------------------------------------------------------

    def send_and_wait(self, prep: Prepared, waiter: DirectWaiter, deadline: float | None) -> None:
        with self._mutex:
            self._pending[prep.ref] = prep
            self._reply_pid = prep.reply_pid
        self.proto.send_lent(prep.control, prep.payload)
        try:
            while not waiter.finished:
                with self._mutex:
                    if self._leader is None and self._state == _THREADS:
                        self._leader = waiter
                    lead = self._leader is waiter
                    if not lead:
                        self._waiting[waiter] = None
                if lead:
                    self._read_until(waiter, deadline)
                else:
                    waiter.sleep(_remaining(deadline))  # a reply, or promoted to read
                    with self._mutex:
                        self._waiting.pop(waiter, None)
                if not waiter.finished and _expired(deadline):
                    prep.call.set_exception(Expired())
        finally:  # also when interrupted: the next caller reads
            with self._mutex:
                self._waiting.pop(waiter, None)
                if self._leader is waiter:
                    self._pass_on()

    def _pass_on(self) -> None:
        # with the mutex held: the leader stops reading; a waiting caller reads next
        self._leader = None
        if self._state == _THREADS:
            for other in self._waiting:
                if not other.finished:
                    del self._waiting[other]
                    self._leader = other
                    other.signal()
                    return
        self._close_if_unread()

    def _read_until(self, waiter: DirectWaiter, deadline: float | None) -> None:
        sock = self._sock
        assert sock is not None
        # Spin only alone: with other callers asleep here, the GIL hand-offs they need
        # would fight the spinning reader.
        spin_until = time.monotonic() + SPIN if not self._waiting else 0.0
        while not waiter.finished and self._state == _THREADS:
            try:
                n = sock.recv_into(self._buffer)
            except (BlockingIOError, InterruptedError):
                now = time.monotonic()
                if now < spin_until:
                    continue
                if deadline is not None and now >= deadline:
                    return
                wait = POLL_MS if deadline is None else int((deadline - now) * 1000) + 1
                self._poller.poll(min(POLL_MS, wait))
                continue
            except OSError:
                self._give_back(broken=True)
                return
            if n == 0:  # closed by the peer: the loop reads the end and reports it
                self._give_back(broken=True)
                return
            try:
                events = self.proto.receive_lent(self._buffer[:n].tobytes())
            except ErlbridgeError as exc:
                self._give_back(broken=True, abort=exc)
                return
            self._dispatch(events)

    def _dispatch(self, events: list[tuple[c.ControlMessage, int]]) -> None:
        """Complete the calls these replies answer; hand the rest to the loop, in order."""
        replies: list[tuple[Prepared, Any]] = []
        handed: list[tuple[c.ControlMessage, int]] = []
        reply_pid = self._reply_pid
        for event, size in events:
            cls = type(event)
            if (cls is c.SendSender or cls is c.Send) and event.to_pid == reply_pid:  # type: ignore[union-attr]
                message = event.message  # type: ignore[union-attr]
                if type(message) is tuple and len(message) == 2 and type(message[0]) is Reference:
                    prep = self._pending.pop(message[0], None)
                    if prep is not None:
                        replies.append((prep, message[1]))
                        continue
            handed.append((event, size))
        if handed:
            nbytes = sum(size for _, size in handed)
            with self._mutex:
                self._handed += nbytes
                backlog = self._handed
            self._loop.call_soon_threadsafe(self._deliver, handed, nbytes)
            if backlog > MAX_HANDED:  # the loop is behind: let it read at its own pace
                self._give_back(broken=False)
        for prep, reply in replies:
            prep.call.set_result(reply)

    def _deliver(self, events: list[tuple[c.ControlMessage, int]], nbytes: int) -> None:
        # on the loop thread
        with self._mutex:
            self._handed -= nbytes
        self.proto.deliver(events)
