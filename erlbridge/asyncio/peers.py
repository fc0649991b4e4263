"""The peer table: one entry per remote node, its connection and what waits on it.

Dialling (EPMD, TCP or TLS, the handshake), incoming connections (the pending-handshake
cap, net_kernel's accept rules, simultaneous connect, a restarted node replacing its stale
connection), node monitors (nodeup/nodedown), and sending: :meth:`Peers.route` delivers to a
local endpoint or hands a control message to the destination's connection. A node going
down fails its pending calls and cleans up links and monitors (:meth:`Links.cleanup_node`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from erlbridge.asyncio import epmd as epmd_client
from erlbridge.asyncio._atoms import as_atom
from erlbridge.asyncio.connection import DistProtocol
from erlbridge.asyncio.links import Links
from erlbridge.asyncio.registry import Bounded, Registry
from erlbridge.asyncio.rpc import PendingReply
from erlbridge.asyncio.tls import TLSOptions, tls_error
from erlbridge.exceptions import (
    AuthenticationError,
    ErlbridgeError,
    HandshakeError,
    InvalidState,
    NodeDown,
    NodeUnreachable,
    NoProcess,
    Timeout,
    TLSError,
    bounded_text,
)
from erlbridge.protocol import control as c
from erlbridge.protocol.flags import DistFlags
from erlbridge.protocol.handshake import (
    Connected,
    Handshake,
    NameReceived,
    Role,
    node_name_problem,
)
from erlbridge.term import Atom, Pid, Reference

__all__ = ["NodeEvent", "Peer", "Peers", "Settings", "split_target"]

NOCONNECTION = Atom("noconnection")


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A node monitor notification: ``kind`` is ``"nodeup"`` or ``"nodedown"``."""

    kind: str
    node: Atom
    reason: Any = None


class Settings(Protocol):
    """The node's configuration as the peer table reads it (at each use: the node's public
    attributes may change until it starts)."""

    name: Atom
    creation: int
    flags: DistFlags
    net_ticktime: float
    max_message_size: int | None
    max_pending_handshakes: int
    setup_timeout: float
    connect_timeout: float
    epmd_port: int | None
    tls: TLSOptions | None
    log: logging.Logger


def split_target(node: str) -> tuple[str, str, int | None]:
    """``name@host`` or ``name@host:port`` -> (``name@host``, host, port or None).

    Raises ValueError for a name OTP would refuse (see ``node_name_problem``)."""
    full = str.__str__(node) if isinstance(node, Atom) else node
    alive, at, host = full.partition("@")
    port: int | None = None
    if ":" in host and not host.startswith("["):
        host, _, port_text = host.rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"not a port in {bounded_text(full, 300)!r}") from None
    name = f"{alive}{at}{host}"
    problem = node_name_problem(name)
    if problem is not None:
        raise ValueError(f"not a node name: {bounded_text(full, 300)!r} ({problem})")
    return name, host, port


def connect_error(node: Atom, exc: BaseException) -> BaseException:
    """What a failed connection attempt raises: a wrong cookie or a TLS failure keeps its
    type (configuration errors), anything else means the node cannot be reached."""
    if isinstance(exc, NodeUnreachable | AuthenticationError | TLSError | InvalidState):
        return exc
    if isinstance(exc, ErlbridgeError | OSError):
        err = NodeUnreachable.of(node, exc)
        err.__cause__ = exc
        return err
    return exc


class Peer:
    """One remote node: its connection (once up) and what waits on it."""

    __slots__ = ("calls", "connected", "name", "outbox", "proto", "task")

    def __init__(self, name: Atom, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.proto: DistProtocol | None = None
        self.connected: asyncio.Future[None] = loop.create_future()
        self.outbox: list[c.ControlMessage] = []
        #: references of the calls waiting on this node (failed when it goes down)
        self.calls: set[Reference] = set()
        self.task: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self.proto is not None and self.proto.conn is not None


class Refuse(asyncio.Protocol):
    """Closes a connection as soon as it is accepted (over the pending-handshake cap)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


MessageHandler = Callable[[DistProtocol, c.ControlMessage, int], None]
NodeMonitor = Callable[[NodeEvent], Any] | asyncio.Queue[NodeEvent]


class Peers:
    """The peer table and the owner of every distribution connection (a ConnectionOwner:
    incoming control messages go to ``on_message``, the dispatcher's)."""

    on_message: MessageHandler

    def __init__(
        self, settings: Settings, registry: Registry, links: Links, on_message: MessageHandler
    ) -> None:
        self.settings = settings
        self.registry = registry
        self.links = links
        self.on_message = on_message
        self.table: dict[Atom, Peer] = {}
        #: incoming connections still in the handshake, and how many were refused
        self.handshaking: set[DistProtocol] = set()
        #: incoming connections answered "alive": they replace the node's connection
        #: once authenticated
        self.replacing: set[DistProtocol] = set()
        self.refused = 0
        self.monitors: list[NodeMonitor] = []
        #: pending calls by reference (the rpc reply pid's table), failed on nodedown
        self.pending: dict[Reference, PendingReply] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.closed = False
        self.cookie = ""
        tls = settings.tls
        self.client_ssl: ssl.SSLContext | None = tls.client_context() if tls else None
        # handshake length prefix (docs/internals/otp-facts.md#tls-distribution)
        self.packet_bytes = 4 if tls else 2

    def require_started(self) -> asyncio.AbstractEventLoop:
        if self.closed:
            raise InvalidState(f"node {self.settings.name} is closed")
        if self.loop is None:
            raise InvalidState(f"node {self.settings.name} is not started (use 'async with')")
        return self.loop

    def connected_nodes(self) -> list[Atom]:
        return [name for name, peer in self.table.items() if peer.up]

    # -- dialling --------------------------------------------------------------------

    def peer_for(self, node: str) -> Peer:
        """The peer for ``node``, dialling it if there is none."""
        loop = self.require_started()
        full, host, port = split_target(node)
        key = as_atom(full)
        peer = self.table.get(key)
        if peer is not None:
            return peer
        if key == self.settings.name:
            raise InvalidState("cannot connect to ourselves")
        peer = Peer(key, loop)
        self.table[key] = peer
        peer.task = loop.create_task(self._dial(peer, host, port))
        return peer

    async def wait_connected(self, peer: Peer, timeout: float | None) -> None:
        if peer.up:
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(peer.connected)
        except Timeout:
            raise  # the dial's own (e.g. EPMD did not answer): keep its message
        except TimeoutError as exc:
            raise Timeout(f"connect to {peer.name}", timeout) from exc

    def _handshake(self, role: Role, peer_node: Atom | None = None) -> Handshake:
        s = self.settings
        extra: dict[str, Any] = {} if peer_node is None else {"peer_node": peer_node}
        return Handshake(
            role,
            this_node=s.name,
            cookie=self.cookie,
            flags=s.flags,
            creation=s.creation,
            challenge=secrets.randbits(32),
            packet_bytes=self.packet_bytes,
            **extra,
        )

    def _protocol(self, hs: Handshake) -> DistProtocol:
        s = self.settings
        return DistProtocol(
            self,
            hs,
            net_ticktime=s.net_ticktime,
            max_message_size=s.max_message_size,
            setup_timeout=s.setup_timeout,
        )

    async def _dial(self, peer: Peer, host: str, port: int | None) -> None:
        loop = self.require_started()
        s = self.settings
        alive = peer.name.split("@", 1)[0]
        try:
            async with asyncio.timeout(s.connect_timeout):
                if port is None:
                    info = await epmd_client.port_please(host, alive, epmd_port=s.epmd_port)
                    port = info.port
                hs = self._handshake(Role.INITIATOR, peer.name)
                tls: dict[str, Any] = {}
                if s.tls is not None:
                    tls = {
                        "ssl": self.client_ssl,
                        "server_hostname": s.tls.server_hostname or host,
                        "ssl_handshake_timeout": s.tls.handshake_timeout,
                    }
                try:
                    await loop.create_connection(lambda: self._protocol(hs), host, port, **tls)
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    raise tls_error(exc, peer.name) from exc
                except (ConnectionResetError, ConnectionAbortedError) as exc:
                    if s.tls is not None:
                        # reset or timed out in the TLS handshake (e.g. a plaintext node)
                        raise tls_error(exc, peer.name) from exc
                    raise NodeUnreachable.of(peer.name, exc) from exc
                except OSError as exc:
                    raise NodeUnreachable.of(peer.name, exc) from exc
                await asyncio.shield(peer.connected)
        except Timeout as exc:  # a step's own deadline (EPMD's): keep its message
            self._dial_failed(peer, exc)
        except TimeoutError:
            self._dial_failed(peer, Timeout(f"connect to {peer.name}", s.connect_timeout))
        except asyncio.CancelledError:
            self._dial_failed(peer, NodeDown(peer.name, "connect cancelled"))
            raise
        except (ErlbridgeError, OSError) as exc:
            self._dial_failed(peer, exc)

    def _dial_failed(self, peer: Peer, exc: BaseException) -> None:
        # A dial that lost a simultaneous connect was detached from the peer (task = None)
        # and must not fail it: the incoming connection completes the peer instead.
        if peer.task is asyncio.current_task():
            self._fail_peer(peer, exc)

    def _fail_peer(self, peer: Peer, exc: BaseException) -> None:
        exc = connect_error(peer.name, exc)
        if not peer.connected.done():
            peer.connected.set_exception(exc)
            peer.connected.exception()  # mark retrieved: nobody may be waiting
        if self.table.get(peer.name) is peer and not peer.up:
            del self.table[peer.name]
            if peer.outbox:
                self.registry.count_dropped(len(peer.outbox))
                self.settings.log.debug(
                    "dropped %d queued messages for %s: %s", len(peer.outbox), peer.name, exc
                )
            self._fail_calls(
                peer, exc if isinstance(exc, ErlbridgeError) else NodeDown(peer.name, exc)
            )

    # -- incoming connections (ConnectionOwner) -------------------------------------------

    def incoming(self) -> DistProtocol | Refuse:
        """The protocol for a new incoming connection (the listener's factory)."""
        if len(self.handshaking) >= self.settings.max_pending_handshakes:
            # Unauthenticated connections cost a socket each until setup_timeout: cap them
            # so a flood cannot exhaust our file descriptors; peers retry like OTP's do.
            self.refused += 1
            if self.refused % 1000 == 1:
                self.settings.log.warning(
                    "%d incoming connections already in the handshake: refusing more (%d so far)",
                    len(self.handshaking),
                    self.refused,
                )
            return Refuse()
        proto = self._protocol(self._handshake(Role.ACCEPTOR))
        self.handshaking.add(proto)
        return proto

    def on_name(self, proto: DistProtocol, event: NameReceived) -> str | None:
        """The status for an incoming name, as net_kernel's accept_pending decides it.

        Nothing about an existing connection changes here: the name is not yet
        authenticated (anyone who reaches our port can claim any name)."""
        if self.closed:
            return "not_allowed"
        key = as_atom(event.node)
        if key == self.settings.name:
            return None  # our own name: not a peer
        peer = self.table.get(key)
        if peer is None:
            loop = self.require_started()
            peer = Peer(key, loop)
            self.table[key] = peer
            peer.proto = proto
            return "ok"
        if peer.up:
            # We hold a connection from that name: the node may have restarted (its old
            # connection died silently), or someone claims its name. dist_util answers
            # "alive" and replaces the old connection only once the newcomer has passed
            # the challenge (see on_up).
            self.replacing.add(proto)
            return "alive"
        if peer.proto is not None:
            return None  # another incoming connection from that name is pending
        # Simultaneous connect (our dial is pending): the greater name wins.
        if self.settings.name > key:
            return "nok"
        task, peer.task = peer.task, None  # detach first: see _dial_failed
        if task is not None:
            task.cancel()
        peer.proto = proto
        return "ok_simultaneous"

    def on_up(self, proto: DistProtocol, event: Connected) -> None:
        self.handshaking.discard(proto)
        key = as_atom(event.node)
        peer = self.table.get(key)
        log = self.settings.log
        if proto in self.replacing:
            # authenticated now: the node came back, its old connection is stale
            self.replacing.discard(proto)
            if peer is not None and peer.proto is not proto:
                old = peer.proto
                log.info("%s reconnected; dropping its old connection", key)
                self.peer_down(peer, NOCONNECTION)
                if old is not None:
                    old.close(Atom("connection_closed"))
                peer = None
        if peer is None or (peer.proto is not None and peer.proto is not proto):
            if peer is not None and peer.up:
                proto.close(Atom("duplicate"))
                return
            if peer is None:
                peer = Peer(key, self.require_started())
                self.table[key] = peer
        peer.proto = proto
        peer.task = None
        for message in peer.outbox:
            proto.send(message)
        peer.outbox.clear()
        if not peer.connected.done():
            peer.connected.set_result(None)
        log.info("connected to %s", key)
        self._notify(NodeEvent("nodeup", key))

    def on_handshake_failed(self, proto: DistProtocol, exc: BaseException) -> None:
        self.handshaking.discard(proto)
        self.replacing.discard(proto)
        log = self.settings.log
        if proto.peer_node is None:
            log.debug("incoming handshake failed: %s", exc)
            return
        key = as_atom(proto.peer_node)
        peer = self.table.get(key)
        if peer is not None and (peer.proto is proto or peer.proto is None) and not peer.up:
            if isinstance(exc, HandshakeError) and exc.status == "nok" and peer.proto is None:
                # lost a simultaneous connect: their incoming connection will complete it
                log.debug("simultaneous connect to %s: theirs wins", key)
                return
            log.debug("handshake with %s failed: %s", key, exc)
            self._fail_peer(peer, exc)

    def on_down(self, proto: DistProtocol, reason: Any) -> None:
        if proto.peer_node is None:
            return
        peer = self.table.get(as_atom(proto.peer_node))
        if peer is not None and peer.proto is proto:
            self.peer_down(peer, as_atom(reason) if isinstance(reason, str) else reason)

    # -- nodedown -------------------------------------------------------------------------

    def peer_down(self, peer: Peer, reason: Any) -> None:
        if self.table.get(peer.name) is peer:
            del self.table[peer.name]
        was_up = peer.up
        peer.proto = None
        exc = NodeDown(peer.name, reason)
        if not peer.connected.done():
            peer.connected.set_exception(exc)
            peer.connected.exception()
        self._fail_calls(peer, exc)
        self.links.cleanup_node(peer.name)
        if was_up:
            self.settings.log.info("connection to %s lost: %s", peer.name, Bounded(reason))
            self._notify(NodeEvent("nodedown", peer.name, reason))

    def _fail_calls(self, peer: Peer, exc: BaseException) -> None:
        pending = self.pending
        if pending is None:
            return
        for ref in list(peer.calls):  # a failed call may forget its own ref
            fut = pending.pop(ref, None)
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        peer.calls.clear()

    def close_all(self) -> None:
        """The node closes: cancel every dial, close every connection (``disconnect``)."""
        for peer in list(self.table.values()):
            if peer.task is not None:
                peer.task.cancel()
            if peer.proto is not None:
                peer.proto.close("disconnect")
            self.peer_down(peer, Atom("disconnect"))

    # -- node monitors ------------------------------------------------------------------

    def monitor_nodes(self, target: NodeMonitor) -> Callable[[], None]:
        self.monitors.append(target)

        def cancel() -> None:
            if target in self.monitors:
                self.monitors.remove(target)

        return cancel

    def _notify(self, event: NodeEvent) -> None:
        for target in list(self.monitors):
            try:
                if isinstance(target, asyncio.Queue):
                    target.put_nowait(event)
                else:
                    target(event)
            except Exception:
                self.settings.log.exception("node monitor callback failed")

    # -- sending (the Wire links and monitors use) ------------------------------------------

    def send_control(self, node: Atom, message: c.ControlMessage) -> None:
        """Send to ``node``, connecting on demand (queued until the handshake completes)."""
        peer = self.table.get(node)
        if peer is not None and peer.proto is not None and peer.proto.conn is not None:
            peer.proto.send(message)
            return
        if peer is None:
            peer = self.peer_for(node)
        peer.outbox.append(message)

    def has_peer(self, node: Atom) -> bool:
        return node in self.table

    async def connect_peer(self, node: Atom) -> None:
        await self.wait_connected(self.peer_for(node), self.settings.connect_timeout)

    def route(self, from_pid: Pid, dest: Any, message: Any) -> None:
        """Deliver to a local pid, alias or name, or send to the destination's node."""
        registry = self.registry
        here = registry.name
        if isinstance(dest, Pid):
            if dest.node == here:
                endpoint = registry.endpoints.get(dest)
                if endpoint is None:
                    registry.drop(dest, message, "no such local pid")
                else:
                    endpoint.deliver(message)
                return
            self.send_control(dest.node, c.SendSender(from_pid, dest, message))
            return
        if isinstance(dest, Reference):
            if dest.node == here:
                endpoint = registry.aliases.get(dest)
                if endpoint is None:
                    registry.drop(dest, message, "no such alias")
                else:
                    endpoint.deliver(message)
                return
            self.send_control(dest.node, c.AliasSend(from_pid, dest, message))
            return
        if isinstance(dest, tuple) and len(dest) == 2:
            name, node = as_atom(dest[0]), as_atom(dest[1])
            if node != here:
                self.send_control(node, c.RegSend(from_pid, name, message))
                return
            dest = name
        if isinstance(dest, str):
            endpoint = registry.names.get(as_atom(dest))
            if endpoint is None:
                raise NoProcess(f"no process registered as {dest!r}")
            endpoint.deliver(message)
            return
        raise TypeError(
            f"cannot send to {bounded_text(dest)}: want a Pid, (name, node), alias or name"
        )

    async def drain(self, peers: list[Peer], what: str, timeout: float | None) -> None:
        async def wait() -> None:
            for peer in peers:
                if not peer.up and not peer.connected.done():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(peer.connected)
                if peer.proto is not None:
                    await peer.proto.drain()

        try:
            async with asyncio.timeout(timeout):
                await wait()
        except TimeoutError as exc:
            raise Timeout(f"draining sends to {what}", timeout) from exc
