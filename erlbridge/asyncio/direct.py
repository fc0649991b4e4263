"""A connection's socket lent to blocked callers: the blocking API's rpc without the loop.

Why: a blocking call that goes through the loop thread wakes two threads per call (caller →
loop thread → caller); with the GIL that hand-off, not the protocol, was the blocking API's
cost (docs/internals/architecture.md#the-blocking-api). Here the calling thread writes its
request to the socket and reads the reply itself, as a plain blocking client does.

How:

* A caller that starts while no other blocking call is in flight asks the loop to lend it
  the socket (:meth:`DistProtocol.lend`: the loop stops reading it). It writes its
  requests itself (:meth:`DistProtocol.send_lent`, ordered with the loop's writes by the
  connection's write lock) and reads the replies; it completes the calls whose replies it
  reads and hands every other message to the loop thread in arrival order
  (:meth:`DistProtocol.deliver`).
* Callers that come while one reads wait for it to read their replies; when the reader's
  own reply has come and others still wait, the loop reads again, and while it reads,
  requests go through it too (one write and one read for many callers: handing the
  reading from thread to thread, and a write per thread, cost more than they saved).
  The loop also takes the socket back after :data:`IDLE` seconds without a call, when too
  much read here waits for it (:data:`MAX_HANDED`), and when the connection breaks.
* Every call is also registered where the loop's own calls are (:meth:`Calls.prepare`), so a
  lost connection fails it the usual way, and a reply the loop reads still reaches it.
* TLS connections are not lent (the bytes on the socket are encrypted by the loop's
  transport): their calls are sent by the loop thread and the loop reads the reply.
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
#: longest single wait for the socket (the leader re-checks the line's state after it)
POLL_MS = 1000
#: seconds to wait for the loop thread to lend the socket
LEND_TIMEOUT = 5.0

# _OFF: never lent again (TLS, or the connection is gone)
_LOOP, _THREADS, _OFF = "loop", "threads", "off"
_READABLE = select.POLLIN | select.POLLHUP | select.POLLERR


class DirectWaiter:
    """One blocked caller: where its call's value or error lands (a ThreadWaiter: the
    reader's thread or the loop's may deliver, a reply and a lost connection may race;
    the first counts), and the lock it sleeps on until then."""

    __slots__ = ("_error", "_mutex", "_value", "_wake", "finished")

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._wake = threading.Lock()
        self._wake.acquire()
        self._value: Any = None
        self._error: BaseException | None = None
        self.finished = False

    def set(self, value: Any) -> None:
        with self._mutex:
            if self.finished:  # a lost connection came first
                return
            self._value = value
            self.finished = True
            self._wake.release()

    def fail(self, error: BaseException) -> None:
        with self._mutex:
            if self.finished:
                return
            self._error = error
            self.finished = True
            self._wake.release()

    def sleep(self, timeout: float | None) -> bool:
        """Sleep until finished (True) or ``timeout`` seconds pass (False)."""
        return self._wake.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))

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
        line.enter()
        try:
            line.send_and_wait(prep, waiter, deadline)
        finally:
            line.leave(prep.ref)
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
        #: our copy of the socket (ours to close); None: TLS, the loop does all I/O
        self._sock = proto.lent_socket
        self._state = _LOOP if self._sock is not None else _OFF
        self._poller = select.poll()
        if self._sock is not None:
            self._poller.register(self._sock.fileno(), _READABLE)
        self._buffer = memoryview(bytearray(READ_SIZE))
        #: calls sent from here by reference (only these are completed by the reader)
        self._pending: dict[Reference, Prepared] = {}
        self._inflight = 0
        self._leader: DirectWaiter | None = None
        self._waiting: dict[DirectWaiter, None] = {}
        self._last_used = 0.0
        self._handed = 0
        self._lost = False
        self._reply_pid: Any = None

    @classmethod
    def of(cls, proto: DistProtocol) -> DirectLine:
        """The line of ``proto`` (one per connection, made on first use)."""
        return proto.borrower(cls)

    def __repr__(self) -> str:
        return f"<DirectLine {self.proto.peer_node} {self._state}>"

    # -- entering and leaving ---------------------------------------------------------

    def enter(self) -> None:
        """Count a call in; a lone caller first has the loop lend it the reading."""
        for _ in range(3):  # the idle check may take it back between lend and here
            with self._mutex:
                if self._state != _LOOP or self._inflight:
                    break
            lent = threading.Event()
            self._loop.call_soon_threadsafe(self._lend, lent)
            if not lent.wait(LEND_TIMEOUT):
                break
            with self._mutex:
                if self._state != _LOOP:
                    break
        with self._mutex:
            self._inflight += 1

    def leave(self, ref: Reference) -> None:
        with self._mutex:
            self._pending.pop(ref, None)
            self._inflight -= 1
            self._last_used = time.monotonic()

    def _lend(self, done: threading.Event) -> None:
        # on the loop thread
        try:
            with self._mutex:
                if self._state != _LOOP or self._inflight:
                    return
                if not self.proto.lend(self):  # closed meanwhile: lost() closes the copy
                    self._state = _OFF
                    return
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
            self._state = _OFF
            self._lost = True
            sock = self._sock
            if sock is not None:
                # wakes a reader polling it; the peer sees the close
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._close_if_unread()

    def _close_if_unread(self) -> None:
        # with the mutex held: close the copy once the connection is gone and nobody reads
        # it (under the write lock: no writer holds the descriptor either)
        if self._lost and self._leader is None and self._sock is not None:
            with self.proto.write_lock:
                self._sock.close()
            self._sock = None

    def _give_back(self, *, broken: bool, abort: BaseException | None = None) -> None:
        # on the reading thread: stop reading here; the loop reads again (and sees the end
        # of a broken connection itself), or aborts it
        with self._mutex:
            if self._state == _THREADS:
                self._state = _OFF if broken or abort is not None else _LOOP
        if abort is not None:
            self._loop.call_soon_threadsafe(self.proto.abort, abort)
        else:
            self._loop.call_soon_threadsafe(self.proto.reclaim)

    # -- one call ---------------------------------------------------------------------

    def send_and_wait(self, prep: Prepared, waiter: DirectWaiter, deadline: float | None) -> None:
        with self._mutex:
            self._pending[prep.ref] = prep
            self._reply_pid = prep.reply_pid
            direct = self._state == _THREADS
        if direct:
            self.proto.send_lent(prep.control, prep.payload)
        else:  # the loop writes what many callers send at once in one go
            self._loop.call_soon_threadsafe(self.proto.send_encoded, prep.control, prep.payload)
        try:
            while not waiter.finished:
                with self._mutex:
                    if self._leader is waiter and self._state != _THREADS:
                        self._pass_on()  # given back: the loop reads our reply now
                    if self._leader is None and self._state == _THREADS:
                        self._leader = waiter
                    lead = self._leader is waiter
                    if not lead:
                        self._waiting[waiter] = None
                if lead:
                    self._read_until(waiter, deadline, prep.spin)
                else:
                    waiter.sleep(_remaining(deadline))  # until its reply (or the deadline)
                    with self._mutex:
                        self._waiting.pop(waiter, None)
                if not waiter.finished and _expired(deadline):
                    prep.call.set_exception(Expired())
        finally:  # also when interrupted: someone else reads
            with self._mutex:
                self._waiting.pop(waiter, None)
                if self._leader is waiter:
                    self._pass_on()

    def _pass_on(self) -> None:
        # with the mutex held: the reader stops reading; with others still waiting, the
        # loop reads for them
        self._leader = None
        if self._state == _THREADS and any(not w.finished for w in self._waiting):
            self._state = _LOOP
            self._loop.call_soon_threadsafe(self.proto.reclaim)
        self._close_if_unread()

    def _read_until(
        self, waiter: DirectWaiter, deadline: float | None, spin: float
    ) -> None:
        sock = self._sock
        assert sock is not None
        # The node's reply_spin: a lone reader keeps trying the socket before it sleeps in
        # poll (a thread woken from poll runs the next Python code several times slower,
        # docs/internals/architecture.md#the-blocking-api). Not with other callers asleep
        # here: the GIL hand-offs they need would fight the spinning reader.
        spin_until = time.monotonic() + spin if spin and not self._waiting else 0.0
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
