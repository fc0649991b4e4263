"""The asyncio transport for one distribution connection (both handshake directions).

``data_received`` feeds the sans-I/O core (:mod:`erlbridge.protocol.handshake`, then
:mod:`erlbridge.protocol.connection`), hands the events to the owner and flushes what the
core queued. Writes made outside ``data_received`` are batched into one ``transport.write``
per loop iteration.

Blocked callers on other threads (:mod:`erlbridge.asyncio.direct`) write their requests
to the socket themselves (:meth:`DistProtocol.send_lent`; every write takes
:attr:`DistProtocol.write_lock`), and one of them may borrow the reading too
(:meth:`DistProtocol.lend`: reading pauses here until :meth:`DistProtocol.reclaim`).

Reads go into a buffer the connection owns (``asyncio.BufferedProtocol``): a plain
``Protocol`` makes asyncio allocate 256 KiB for every ``recv`` and shrink it, which glibc
may serve with a fresh ``mmap`` each time (two page faults and ~35 µs of kernel time per
small rpc reply, measured here, depending on the allocator's history).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from typing import Any, Protocol, TypeVar, cast

from erlbridge.asyncio.tls import tls_error
from erlbridge.exceptions import ErlbridgeError, HandshakeError
from erlbridge.protocol.connection import DistConnection
from erlbridge.protocol.control import ControlMessage
from erlbridge.protocol.handshake import Connected, Handshake, NameReceived

__all__ = ["Borrower", "ConnectionOwner", "DistProtocol"]

logger = logging.getLogger(__name__)

#: bytes read at once during the handshake, and once the connection is up
HANDSHAKE_READ = 4 * 1024
READ_SIZE = 64 * 1024


class ConnectionOwner(Protocol):
    """What a :class:`DistProtocol` reports to (the node)."""

    def on_name(self, proto: DistProtocol, event: NameReceived) -> str | None:
        """Acceptor: return the status to answer (ok | ok_simultaneous | alive accept the
        peer; nok | not_allowed refuse it), or None to close without a status."""

    def on_up(self, proto: DistProtocol, event: Connected) -> None: ...

    def on_handshake_failed(self, proto: DistProtocol, exc: BaseException) -> None: ...

    def on_message(self, proto: DistProtocol, message: ControlMessage, size: int) -> None: ...

    def on_down(self, proto: DistProtocol, reason: Any) -> None: ...


class Borrower(Protocol):
    """Who holds a lent socket (:meth:`DistProtocol.lend`)."""

    def lost(self) -> None:
        """The connection is gone (called on the loop thread)."""


B = TypeVar("B", bound=Borrower)


class DistProtocol(asyncio.BufferedProtocol):
    """One TCP (or TLS: ``packet_bytes=4``) distribution connection."""

    def __init__(
        self,
        owner: ConnectionOwner,
        handshake: Handshake,
        *,
        net_ticktime: float,
        max_message_size: int | None = None,
        setup_timeout: float = 7.0,
    ) -> None:
        self.owner = owner
        self.handshake: Handshake | None = handshake
        self.conn: DistConnection | None = None
        self.peer_node: str | None = handshake.peer_node
        self.transport: asyncio.Transport | None = None
        self.net_ticktime = net_ticktime
        self.max_message_size = max_message_size
        #: seconds the handshake may take (OTP's net_setuptime): an unauthenticated peer
        #: cannot hold a connection open by sending nothing (or too little)
        self.setup_timeout = setup_timeout
        self.down_reason: Any = None
        self._loop = asyncio.get_running_loop()
        self._flush_scheduled = False
        self._receiving = False
        #: the last deferred flush had sends queued: defer the first send too (batching)
        self._batching = False
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._closed = False
        self._read_view = memoryview(bytearray(HANDSHAKE_READ))
        #: taken by every write to the output queue or the socket, the loop's and the
        #: borrowing threads' (send_lent), so neither overtakes the other
        self.write_lock = threading.Lock()
        #: the socket is lent (its borrower reads it; nothing is read here)
        self.lent = False
        #: the one borrower this connection is ever lent to, and its copy of the socket
        self._borrower: Borrower | None = None
        self._lent_sock: socket.socket | None = None

    def __repr__(self) -> str:
        return f"<DistProtocol {self.peer_node} {'up' if self.conn else 'handshake'}>"

    # -- asyncio.Protocol -----------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # not isinstance-checked: uvloop's transports do not subclass asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)
        transport = self.transport
        transport.set_write_buffer_limits(high=4 * 1024 * 1024)
        if self.handshake is not None:
            self._timer = self._loop.call_later(self.setup_timeout, self._setup_expired)
            out = self.handshake.data_to_send()
            if out:
                transport.write(out)

    def _setup_expired(self) -> None:
        if self.conn is None and not self._closed:
            self.abort(HandshakeError(f"handshake not completed within {self.setup_timeout:g} s"))

    def get_buffer(self, sizehint: int) -> memoryview:
        if self.conn is not None and len(self._read_view) < READ_SIZE:
            self._read_view = memoryview(bytearray(READ_SIZE))
        return self._read_view

    def buffer_updated(self, nbytes: int) -> None:
        self.data_received(self._read_view[:nbytes].tobytes())

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        if conn is not None:
            try:
                events = conn.receive_data(data)
            except ErlbridgeError as exc:
                self.abort(exc)
                return
            self.deliver(zip(events, conn.message_sizes, strict=True))
            return
        self._handshake_data(data)

    def deliver(self, events: Iterable[tuple[ControlMessage, int]]) -> None:
        """Hand ``(message, size)`` pairs to the owner (on the loop thread): what was read
        here, or what a borrowing thread read and passed on."""
        if self._closed:
            return
        on_message = self.owner.on_message
        # Tasks woken by these messages run now (reply.py) and their sends wait for
        # the flush below: one write for everything this read caused.
        self._receiving = True
        try:
            for event, size in events:
                on_message(self, event, size)
        finally:
            self._receiving = False
            self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self.lent = False
        if self._borrower is not None:
            self._lent_sock = None
            self._borrower.lost()  # it closes its copy of the socket (it may be reading it)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()
        if self.conn is None:
            hs = self.handshake
            failure: BaseException
            if self.down_reason is not None and isinstance(self.down_reason, BaseException):
                failure = self.down_reason
            elif isinstance(exc, ssl.SSLError):
                # TLS distribution: the peer refused our certificate after the TLS
                # handshake (TLS 1.3 checks client certificates late) -> a TLSError
                failure = tls_error(exc, self.peer_node or "?")
                failure.__cause__ = exc
            elif hs is None:
                failure = HandshakeError("connection closed during the handshake")
            else:
                try:
                    hs.connection_lost()
                    failure = HandshakeError(f"{hs.peer_node} closed the connection")
                except ErlbridgeError as err:
                    failure = err
            self.owner.on_handshake_failed(self, failure)
            return
        reason = self.down_reason
        if reason is None:
            reason = "connection_closed"
        self.owner.on_down(self, reason)

    def pause_writing(self) -> None:
        self._paused = True

    def resume_writing(self) -> None:
        self._paused = False
        for waiter in self._drain_waiters:
            if not waiter.done():
                waiter.set_result(None)
        self._drain_waiters.clear()

    # -- handshake -----------------------------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        hs = self.handshake
        if hs is None:
            return
        try:
            events = hs.receive_data(data)
            while events:
                event = events.pop(0)
                if isinstance(event, NameReceived):
                    self.peer_node = event.node
                    status = self.owner.on_name(self, event)
                    if status in ("ok", "ok_simultaneous", "alive"):
                        hs.accept(status)
                        events.extend(hs.receive_data(b""))
                    else:
                        if status is not None:
                            hs.reject(status)
                            self._write(hs.data_to_send())
                        self.down_reason = HandshakeError(
                            f"refused {event.node}: {status or 'closed'}", status=status
                        )
                        assert self.transport is not None
                        self.transport.close()
                        return
                elif isinstance(event, Connected):
                    self._write(hs.data_to_send())
                    self._up(event, hs.trailing_data)
                    return
            self._write(hs.data_to_send())
        except ErlbridgeError as exc:
            self._write(hs.data_to_send())
            self.abort(exc)

    def _up(self, event: Connected, trailing: bytes) -> None:
        self.peer_node = event.node
        self.conn = DistConnection(
            flags=event.flags,
            net_ticktime=self.net_ticktime,
            max_message_size=self.max_message_size,
            now=self._loop.time(),
        )
        self.handshake = None
        if self._timer is not None:  # the setup deadline
            self._timer.cancel()
        self._timer = self._loop.call_at(self.conn.next_timer_at, self._on_timer)
        self.owner.on_up(self, event)
        if trailing:
            self.data_received(trailing)

    # -- sending --------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if data and self.transport is not None and not self._closed:
            self.transport.write(data)

    def send(self, message: ControlMessage) -> None:
        """Queue a control message; it is written at the end of this loop iteration."""
        conn = self.conn
        if conn is None or self._closed:
            return
        with self.write_lock:
            conn.send(message)
            self._schedule_flush()

    def send_encoded(self, control: bytes, payload: bytes = b"") -> None:
        """Like :meth:`send` for terms already encoded (131-prefixed)."""
        conn = self.conn
        if conn is None or self._closed:
            return
        with self.write_lock:
            conn.send_encoded(control, payload)
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        # A lone caller's send is written at once (lowest latency). When the previous
        # deferred flush found more sends queued behind the first (many callers), the
        # first send is deferred too, so a burst of sends costs one write (one syscall
        # here, one read on the peer) instead of two.
        if not self._flush_scheduled:
            self._flush_scheduled = True
            if self._receiving:  # data_received flushes when it is done (drain() too)
                return
            if not self._batching:
                conn = self.conn
                assert conn is not None and self.transport is not None
                self.transport.write(conn.data_to_send())
            self._loop.call_soon(self._deferred_flush)

    def _deferred_flush(self) -> None:
        conn = self.conn
        self._batching = conn is not None and conn.has_data_to_send()
        self.flush()

    def flush(self) -> None:
        self._flush_scheduled = False
        conn = self.conn
        if conn is not None and not self._closed:
            with self.write_lock:
                data = conn.data_to_send()
                if data:
                    assert self.transport is not None
                    self.transport.write(data)

    async def drain(self) -> None:
        """Hand queued output to the transport, then wait while its write buffer is above
        its high-water mark."""
        if self._flush_scheduled:
            self.flush()
        if self._paused and not self._closed:
            waiter: asyncio.Future[None] = self._loop.create_future()
            self._drain_waiters.append(waiter)
            await waiter

    @property
    def paused(self) -> bool:
        return self._paused

    # -- lending the socket to blocking callers (erlbridge/asyncio/direct.py) ---------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def borrower(self, make: Callable[[DistProtocol], B]) -> B:
        """The one borrower of this connection (any thread): made by ``make`` on first use,
        and living as long as the connection object."""
        borrower = self._borrower
        if borrower is None:
            with self.write_lock:
                if self._borrower is None:
                    self._lent_sock = self._copy_socket()
                    self._borrower = make(self)
                borrower = self._borrower
        return cast(B, borrower)

    def _copy_socket(self) -> socket.socket | None:
        # None for TLS (the bytes are encrypted by the transport) or before/after the
        # connection is up
        transport = self.transport
        if self.conn is None or self._closed or transport is None:
            return None
        if transport.get_extra_info("sslcontext") is not None:
            return None
        raw = transport.get_extra_info("socket")
        return None if raw is None else socket.socket(fileno=os.dup(raw.fileno()))

    @property
    def lent_socket(self) -> socket.socket | None:
        """The borrower's own copy of the socket (its to close, once the connection is
        lost); None when its threads may not use the socket (TLS, closed)."""
        return self._lent_sock

    def lend(self, borrower: Borrower) -> bool:
        """On the loop thread: stop reading; ``borrower``'s threads read
        :attr:`lent_socket` (see :meth:`receive_lent`) until :meth:`reclaim`.

        False when it cannot be lent: TLS (the bytes are encrypted here), closed, or
        ``borrower`` is not :meth:`borrower`'s."""
        transport = self.transport
        if self._closed or transport is None or self._lent_sock is None:
            return False
        if self._borrower is not borrower:
            return False
        if not self.lent:
            transport.pause_reading()
            self.lent = True
        return True

    def reclaim(self) -> None:
        """On the loop thread: read here again (the borrower no longer reads)."""
        if not self.lent:
            return
        with self.write_lock:  # a borrower's write in progress ends first
            self.lent = False
        if not self._closed and self.transport is not None:
            self.transport.resume_reading()

    def receive_lent(self, data: bytes) -> list[tuple[ControlMessage, int]]:
        """On a borrowing thread, while lent: feed bytes it read; return the messages
        completed. ErlbridgeError (a broken frame) means the connection must be aborted."""
        conn = self.conn
        assert conn is not None
        with self.write_lock:
            if not self.lent:  # lost meanwhile (taking it back waits for the reader)
                return []
            events = conn.receive_data(data)
            sizes = conn.message_sizes
            if conn.has_data_to_send():  # tick answers
                self._write_lent(conn)
        return list(zip(events, sizes, strict=True))

    def send_lent(self, control: bytes, payload: bytes) -> None:
        """On a borrower's thread: send a message now, in order with everything queued
        (lent or not: the write lock orders it with the loop's writes)."""
        conn = self.conn
        if conn is None or self._closed:
            return
        with self.write_lock:
            conn.send_encoded(control, payload)
            self._write_lent(conn)

    def _write_lent(self, conn: DistConnection) -> None:
        # Called with write_lock held. The socket is written directly only when the
        # transport holds nothing (else its buffer goes first: the loop flushes after it).
        sock = self._lent_sock
        transport = self.transport
        if (
            sock is None
            or transport is None
            or self._closed
            or transport.get_write_buffer_size()
        ):
            self._loop.call_soon_threadsafe(self.flush)
            return
        data = conn.data_to_send()
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # the loop sees the connection fail when it reads again
            return
        if sent < len(data):
            conn.unsent(data[sent:])
            self._loop.call_soon_threadsafe(self.flush)

    # -- ticks and closing ----------------------------------------------------------

    def _on_timer(self) -> None:
        conn = self.conn
        if conn is None or self._closed:
            return
        with self.write_lock:
            timeout = conn.timer(self._loop.time())
        if timeout is not None:
            logger.warning(
                "node %s not responding (no data for %.1f s)",
                self.peer_node,
                timeout.silent_seconds,
            )
            self.down_reason = "net_tick_timeout"
            assert self.transport is not None
            # abort, not close: a stopped peer never drains our buffer
            self.transport.abort()
            return
        self.flush()
        self._timer = self._loop.call_at(conn.next_timer_at, self._on_timer)

    def close(self, reason: Any = "disconnect") -> None:
        """Close the connection; the owner's ``on_down`` gets ``reason``."""
        if self.down_reason is None:
            self.down_reason = reason
        if self.transport is not None:
            self.flush()
            self.transport.close()

    def abort(self, exc: BaseException) -> None:
        """Drop the connection at once because of ``exc``."""
        logger.warning("closing connection to %s: %s", self.peer_node, exc)
        if self.down_reason is None:
            self.down_reason = exc if self.conn is None else "connection_closed"
        if self.transport is not None:
            self.transport.abort()
