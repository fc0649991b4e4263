"""The Python distribution node: listener, connections, routing, registry, links, monitors.

A hidden node by default. It executes nothing on behalf of remote nodes: incoming
SPAWN_REQUESTs are refused with ``notsup``, a remote ``rex`` call to us is never served, and
messages to unknown pids or names are dropped and counted (:attr:`Node.dropped`).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
import os
import secrets
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from erlbridge.asyncio import epmd as epmd_client
from erlbridge.asyncio._atoms import as_atom
from erlbridge.asyncio.connection import DistProtocol
from erlbridge.asyncio.io_server import IoServer, OutputCallback
from erlbridge.asyncio.process import Endpoint, Process
from erlbridge.asyncio.rpc import (
    CaptureEndpoint,
    ErpcExit,
    RpcEndpoint,
    RpcOutcome,
    RpcResult,
    interpret_erpc,
    interpret_reply,
)
from erlbridge.asyncio.tls import TLSAcceptor, TLSOptions, accepts_with_start_tls, tls_error
from erlbridge.exceptions import (
    AuthenticationError,
    EpmdUnreachable,
    ErlbridgeError,
    HandshakeError,
    InvalidState,
    NodeDown,
    NodeUnreachable,
    NoProcess,
    ProtocolError,
    Timeout,
    TLSError,
    bounded_text,
)
from erlbridge.protocol import control as c
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import (
    Connected,
    Handshake,
    NameReceived,
    Role,
    node_name_problem,
)
from erlbridge.term import Atom, Pid, Reference, encode

__all__ = ["Node", "NodeEvent", "resolve_cookie"]

_logger = logging.getLogger(__name__)

REX = Atom("rex")
NET_KERNEL = Atom("net_kernel")
GEN_CALL = Atom("$gen_call")
GEN_CAST = Atom("$gen_cast")
CALL = Atom("call")
CAST = Atom("cast")
NORMAL = Atom("normal")
NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")
NOTSUP = Atom("notsup")
YES = Atom("yes")
IS_AUTH = Atom("is_auth")
SEND_STDOUT = Atom("send_stdout_to_caller")
ERPC = Atom("erpc")
EXECUTE_CALL = Atom("execute_call")
MONITOR = Atom("monitor")
_MAX_ID = (1 << 32) - 1
_REF_IDS = struct.Struct(">III")
# what asyncio's loop adds to loop.time() when it decides which timers are due
_CLOCK_RESOLUTION = time.get_clock_info("monotonic").resolution


@dataclass(frozen=True, slots=True)
class NodeEvent:
    """A node monitor notification: ``kind`` is ``"nodeup"`` or ``"nodedown"``."""

    kind: str
    node: Atom
    reason: Any = None


def resolve_cookie(cookie: str | None) -> str:
    """The argument, else ``$ERLANG_COOKIE``, else ``~/.erlang.cookie``.

    Raises InvalidState when there is none (the message never contains a cookie).
    """
    if cookie:
        return cookie
    env = os.environ.get("ERLANG_COOKIE")
    if env:
        return env
    path = Path.home() / ".erlang.cookie"
    try:
        text = path.read_text().strip()
    except OSError as exc:
        raise InvalidState(f"no cookie given, $ERLANG_COOKIE unset and {path} unreadable") from exc
    if not text:
        raise InvalidState(f"{path} is empty")
    return text


def _split_target(node: str) -> tuple[str, str, int | None]:
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


class _Peer:
    """One remote node: its connection (once up) and what waits on it."""

    __slots__ = ("calls", "connected", "name", "outbox", "proto", "task")

    def __init__(self, name: Atom, loop: asyncio.AbstractEventLoop) -> None:
        self.name = name
        self.proto: DistProtocol | None = None
        self.connected: asyncio.Future[None] = loop.create_future()
        self.outbox: list[c.ControlMessage] = []
        self.calls: set[Reference] = set()
        self.task: asyncio.Task[None] | None = None

    @property
    def up(self) -> bool:
        return self.proto is not None and self.proto.conn is not None


class _Refuse(asyncio.Protocol):
    """Closes a connection as soon as it is accepted (over the pending-handshake cap)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.abort()  # type: ignore[attr-defined]


class _NetKernel(Endpoint):
    """Answers ``net_adm:ping`` (``{is_auth, Node}`` -> ``yes``); nothing else."""

    __slots__ = ()

    def deliver(self, message: Any, size: int = 0) -> None:
        if (
            type(message) is tuple
            and len(message) == 3
            and message[0] == GEN_CALL
            and type(message[2]) is tuple
            and message[2][:1] == (IS_AUTH,)
        ):
            self.node._reply_gen_call(self.pid, message[1], YES)
            return
        self.node._drop(self.pid, message, "net_kernel request not served by a Python node")


class Node:
    """A Python node. Use as ``async with Node("py@127.0.0.1") as node: ...``.

    Arguments: ``cookie`` (else ``$ERLANG_COOKIE``, else ``~/.erlang.cookie``); ``hidden``
    (default True: not published, not in ``nodes()``); ``epmd_port`` (else
    ``$ERL_EPMD_PORT``, else 4369); ``start_epmd`` (default True: when no EPMD runs on that
    port, start ``epmd -daemon`` as ``erl -name`` does; False: raise EpmdUnreachable);
    ``net_ticktime`` seconds; ``listen`` (accept incoming
    connections and register with EPMD); ``listen_port`` (0 = any); ``max_message_size``
    bytes per incoming frame (default 256 MiB; None = unlimited; a larger frame closes the
    connection with a FramingError); ``max_mailbox`` messages per Process mailbox (default
    100 000; None = unlimited) and ``max_mailbox_bytes`` (default 256 MiB; None = unlimited)
    of messages from remote nodes, each counted as its frame's size plus what its
    compressed terms inflate to (a compressed term may not inflate a message beyond
    ``max_message_size`` either): a message that would overflow either bound is dropped
    (newest first: the mailbox keeps its oldest messages), counted in :attr:`dropped` and
    in ``Process.overflowed``, and logged (the first drop and every 10 000th);
    ``max_pending_handshakes`` incoming connections in the handshake at once (default 128;
    more are closed at once and logged); ``setup_timeout`` seconds for a handshake (OTP's
    net_setuptime); ``output`` receives
    ``(pid, text)`` printed by remote processes whose group leader is this node (default:
    logged); ``logger``;
    ``tls`` (:class:`~erlbridge.asyncio.tls.TLSOptions`): speak TLS distribution
    (``-proto_dist inet_tls``) in both directions, EPMD stays plaintext.
    """

    def __init__(
        self,
        name: str,
        *,
        cookie: str | None = None,
        hidden: bool = True,
        epmd_port: int | None = None,
        start_epmd: bool = True,
        net_ticktime: float = 60.0,
        listen: bool = True,
        listen_host: str | None = None,
        listen_port: int = 0,
        max_message_size: int | None = 256 * 1024 * 1024,
        max_mailbox: int | None = 100_000,
        max_mailbox_bytes: int | None = 256 * 1024 * 1024,
        max_pending_handshakes: int = 128,
        setup_timeout: float = 7.0,
        connect_timeout: float = 10.0,
        rpc_method: str = "rex",
        output: OutputCallback | None = None,
        logger: logging.Logger | None = None,
        tls: TLSOptions | None = None,
    ) -> None:
        if "@" not in name:
            name = f"{name}@{socket.gethostname().split('.')[0]}"
        _split_target(name)
        self.name = as_atom(name)
        self._cookie = cookie
        self.hidden = hidden
        self.epmd_port = epmd_port
        self.start_epmd = start_epmd
        self.net_ticktime = net_ticktime
        self.listen = listen
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.max_message_size = max_message_size
        self.max_mailbox = max_mailbox
        self.max_mailbox_bytes = max_mailbox_bytes
        self.max_pending_handshakes = max_pending_handshakes
        #: incoming connections still in the handshake, and how many were refused
        self._handshaking: set[DistProtocol] = set()
        #: incoming connections answered "alive": they replace the node's connection
        #: once authenticated
        self._replacing: set[DistProtocol] = set()
        self._refused = 0
        self.setup_timeout = setup_timeout
        self.connect_timeout = connect_timeout
        if rpc_method not in ("rex", "erpc"):
            raise ValueError(f"rpc_method must be 'rex' or 'erpc', not {rpc_method!r}")
        self.rpc_method = rpc_method
        self.log = logger or _logger
        self.tls = tls
        self._client_ssl: ssl.SSLContext | None = tls.client_context() if tls else None
        # handshake length prefix (docs/internals/otp-facts.md#tls-distribution)
        self._packet_bytes = 4 if tls else 2
        self.flags = default_flags(hidden=hidden)
        self.creation = 0
        #: messages dropped because nobody could receive them
        self.dropped = 0
        self._output = output
        self._started = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._registration: epmd_client.EpmdRegistration | None = None
        self._peers: dict[Atom, _Peer] = {}
        self._endpoints: dict[Pid, Endpoint] = {}
        self._names: dict[Atom, Endpoint] = {}
        self._aliases: dict[Reference, Endpoint] = {}
        self._node_monitors: list[Callable[[NodeEvent], Any] | asyncio.Queue[NodeEvent]] = []
        self._pid_ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._unlink_ids = itertools.count(1)
        self._ref_salt = secrets.randbits(32)
        self._rpc: RpcEndpoint | None = None
        self._targets: dict[str, Atom] = {}
        self._ctl_cache: dict[tuple[Pid, Any], bytes] = {}
        self._call_head = b""
        self._spawn_parts = (b"", b"", b"")
        self._io: IoServer | None = None
        self._deadlines: _Deadlines | None = None
        self._rex_heads: dict[tuple[str, str], bytes] = {}
        self._rex_tail = b""

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._started else "new")
        return f"<Node {self.name} {state}>"

    # -- lifecycle -------------------------------------------------------------------

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def port(self) -> int | None:
        """The port we listen on (None without a listener)."""
        if self._server is None or not self._server.sockets:
            return None
        return int(self._server.sockets[0].getsockname()[1])

    async def _register(self, alive: str) -> epmd_client.EpmdRegistration:
        register = epmd_client.EpmdRegistration.register
        try:
            return await register(alive, self.port or 0, hidden=self.hidden,
                                  epmd_port=self.epmd_port)
        except EpmdUnreachable:
            if not self.start_epmd:
                raise
        await epmd_client.start_daemon(self.epmd_port)
        return await register(alive, self.port or 0, hidden=self.hidden, epmd_port=self.epmd_port)

    async def start(self) -> None:
        """Resolve the cookie, listen, register with EPMD, create the service pids.

        Raises InvalidState (no cookie), RegistrationError (name taken), EpmdUnreachable (no
        EPMD and ``start_epmd`` false or no epmd executable), EpmdError.
        """
        if self._started:
            return
        self._cookie = resolve_cookie(self._cookie)
        self._loop = asyncio.get_running_loop()
        alive, host = self.name.split("@", 1)
        if self.listen:
            bind = self.listen_host or (host if _is_ip(host) else None)
            factory: Callable[[], asyncio.Protocol] = self._incoming
            server_tls: dict[str, Any] = {}
            if self.tls is not None:
                server_ssl = self.tls.server_context()
                incoming, timeout = self._incoming, self.tls.handshake_timeout
                if accepts_with_start_tls(self._loop):

                    def factory() -> asyncio.Protocol:
                        return TLSAcceptor(
                            incoming, server_ssl, handshake_timeout=timeout, log=self.log
                        )

                else:  # e.g. uvloop: the loop runs the TLS handshake (failures unlogged)
                    server_tls = {"ssl": server_ssl, "ssl_handshake_timeout": timeout}
            self._server = await self._loop.create_server(
                factory, host=bind, port=self.listen_port, **server_tls
            )
            try:
                self._registration = await self._register(alive)
            except BaseException:
                self._server.close()
                raise
            self.creation = self._registration.creation
        if self.creation < 4:
            # no EPMD registration: a random creation, never 0..3
            # (docs/internals/otp-facts.md#creation)
            self.creation = 4 + secrets.randbelow(_MAX_ID - 4)
        self._started = True
        self._deadlines = _Deadlines(self._loop)
        self._rpc = RpcEndpoint(self, self._new_pid())
        self._add_endpoint(self._rpc)
        # {'$gen_call', {RpcPid, #Ref<...  up to the ref's id words (see _call)
        ref_head = encode(Reference(self.name, self.creation, (0, 0, 0)))[1:-12]
        self._call_head = (
            b"\x83h\x03" + encode(GEN_CALL)[1:] + b"h\x02" + encode(self._rpc.pid)[1:] + ref_head
        )
        self._io = IoServer(self, self._new_pid(), self._output)
        self._add_endpoint(self._io)
        # SPAWN_REQUEST {29, ReqId, RpcPid, IoPid, {erpc, execute_call, 4}, [monitor]} around
        # the request id's words (see _erpc)
        tail = b"".join(
            encode(t)[1:] for t in (self._rpc.pid, self._io.pid, (ERPC, EXECUTE_CALL, 4), [MONITOR])
        )
        self._spawn_parts = (b"\x83h\x06a\x1d" + ref_head, tail, ref_head)
        net_kernel = _NetKernel(self, self._new_pid())
        self._add_endpoint(net_kernel)
        self._names[NET_KERNEL] = net_kernel
        self.log.debug(
            "node %s started (creation %d, port %s)", self.name, self.creation, self.port
        )

    async def close(self) -> None:
        """Close every connection, unregister, exit every process (reason ``shutdown``)."""
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        for endpoint in list(self._endpoints.values()):
            if isinstance(endpoint, Process):
                endpoint.close(Atom("shutdown"))
        for peer in list(self._peers.values()):
            if peer.task is not None:
                peer.task.cancel()
            if peer.proto is not None:
                peer.proto.close("disconnect")
            self._peer_down(peer, Atom("disconnect"))
        if self._registration is not None:
            self._registration.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._io is not None:
            for task in list(self._io.tasks):
                task.cancel()
        if self._deadlines is not None:
            self._deadlines.close()
        await asyncio.sleep(0)

    def _require_started(self) -> asyncio.AbstractEventLoop:
        if self._closed:
            raise InvalidState(f"node {self.name} is closed")
        if not self._started or self._loop is None:
            raise InvalidState(f"node {self.name} is not started (use 'async with')")
        return self._loop

    # -- identifiers -------------------------------------------------------------------

    def _new_pid(self) -> Pid:
        n = next(self._pid_ids)
        return Pid(self.name, n & 0x7FFF_FFFF, (n >> 31) & 0x1FFF, self.creation)

    def make_ref(self) -> Reference:
        """A new reference of this node (3 words, first < 2**18 as erts requires)."""
        n = next(self._ref_ids)
        return Reference(
            self.name, self.creation, (n & 0x3FFFF, (n >> 18) & _MAX_ID, self._ref_salt)
        )

    def _add_endpoint(self, endpoint: Endpoint) -> None:
        self._endpoints[endpoint.pid] = endpoint

    # -- processes and names --------------------------------------------------------------

    def process(self, name: str | None = None, *, trap_exit: bool = False) -> Process:
        """A new Python-side process (registered as ``name`` if given)."""
        self._require_started()
        proc = Process(self, self._new_pid(), name=name, trap_exit=trap_exit)
        self._add_endpoint(proc)
        if name is not None:
            self.register(name, proc)
        return proc

    def register(self, name: str, process: Process) -> None:
        """Register ``process`` under ``name``; raises InvalidState if the name is taken."""
        key = as_atom(name)
        current = self._names.get(key)
        if current is not None and current is not process:
            raise InvalidState(f"name {name!r} is already registered")
        if not process.alive:
            raise InvalidState(f"process {process.pid} has exited")
        self._names[key] = process
        process.name = key

    def unregister(self, name: str) -> None:
        endpoint = self._names.pop(as_atom(name), None)
        if isinstance(endpoint, Process) and endpoint.name == name:
            endpoint.name = None

    def whereis(self, name: str) -> Pid | None:
        endpoint = self._names.get(as_atom(name))
        return endpoint.pid if endpoint is not None else None

    def registered(self) -> list[Atom]:
        return sorted(self._names)

    def alias(self, process: Process) -> Reference:
        """A new alias reference for ``process`` (messages to it reach the process)."""
        ref = self.make_ref()
        self._aliases[ref] = process
        return ref

    def unalias(self, ref: Reference) -> None:
        self._aliases.pop(ref, None)

    # -- connections --------------------------------------------------------------------

    def connected_nodes(self) -> list[Atom]:
        """Nodes with a connection that completed its handshake."""
        return [name for name, peer in self._peers.items() if peer.up]

    async def connect(self, node: str, *, timeout: float | None = None) -> Atom:
        """Connect to ``node`` (``name@host``, or ``name@host:port`` without EPMD).

        Returns the node name. Raises NodeUnreachable, a NodeDown, when the node cannot be
        reached (its ``detail`` says why: NodeNotFound from EPMD, an OSError, a Timeout, a
        HandshakeError; it is an instance of that class too), AuthenticationError (cookies
        differ), TLSError, Timeout (``timeout`` ran out first), ValueError (not a node
        name).
        """
        peer = self._peer_for(node)
        await self._wait_connected(peer, timeout if timeout is not None else self.connect_timeout)
        return peer.name

    async def disconnect(self, node: str) -> None:
        """Close the connection to ``node`` (nodedown reason ``disconnect``)."""
        full, _, _ = _split_target(node)
        peer = self._peers.get(as_atom(full))
        if peer is not None and peer.proto is not None:
            peer.proto.close(Atom("disconnect"))
            await asyncio.sleep(0)

    async def ping(self, node: str, *, timeout: float | None = None) -> bool:
        """``net_adm:ping/1``: connect and ask the node's net_kernel; True for pong."""
        try:
            reply = await self.call(
                (NET_KERNEL, node), (IS_AUTH, self.name), timeout=timeout or self.connect_timeout
            )
        except ErlbridgeError as exc:
            self.log.debug("ping %s: pang (%s)", node, exc)
            return False
        return bool(reply == YES)

    def _peer_for(self, node: str) -> _Peer:
        loop = self._require_started()
        full, host, port = _split_target(node)
        key = as_atom(full)
        peer = self._peers.get(key)
        if peer is not None:
            return peer
        if key == self.name:
            raise InvalidState("cannot connect to ourselves")
        peer = _Peer(key, loop)
        self._peers[key] = peer
        peer.task = loop.create_task(self._dial(peer, host, port))
        return peer

    async def _wait_connected(self, peer: _Peer, timeout: float | None) -> None:
        if peer.up:
            return
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(peer.connected)
        except Timeout:
            raise  # the dial's own (e.g. EPMD did not answer): keep its message
        except TimeoutError as exc:
            raise Timeout(f"connect to {peer.name}", timeout) from exc

    async def _dial(self, peer: _Peer, host: str, port: int | None) -> None:
        loop = self._require_started()
        alive = peer.name.split("@", 1)[0]
        try:
            async with asyncio.timeout(self.connect_timeout):
                if port is None:
                    info = await epmd_client.port_please(host, alive, epmd_port=self.epmd_port)
                    port = info.port
                hs = Handshake(
                    Role.INITIATOR,
                    this_node=self.name,
                    cookie=self._cookie or "",
                    flags=self.flags,
                    creation=self.creation,
                    challenge=secrets.randbits(32),
                    peer_node=peer.name,
                    packet_bytes=self._packet_bytes,
                )
                tls: dict[str, Any] = {}
                if self.tls is not None:
                    tls = {
                        "ssl": self._client_ssl,
                        "server_hostname": self.tls.server_hostname or host,
                        "ssl_handshake_timeout": self.tls.handshake_timeout,
                    }
                try:
                    await loop.create_connection(
                        lambda: DistProtocol(
                            self,
                            hs,
                            net_ticktime=self.net_ticktime,
                            max_message_size=self.max_message_size,
                            setup_timeout=self.setup_timeout,
                        ),
                        host,
                        port,
                        **tls,
                    )
                except (ssl.SSLError, ssl.CertificateError) as exc:
                    raise tls_error(exc, peer.name) from exc
                except (ConnectionResetError, ConnectionAbortedError) as exc:
                    if self.tls is not None:
                        # reset or timed out in the TLS handshake (e.g. a plaintext node)
                        raise tls_error(exc, peer.name) from exc
                    raise NodeUnreachable.of(peer.name, exc) from exc
                except OSError as exc:
                    raise NodeUnreachable.of(peer.name, exc) from exc
                await asyncio.shield(peer.connected)
        except Timeout as exc:  # a step's own deadline (EPMD's): keep its message
            self._dial_failed(peer, exc)
        except TimeoutError:
            self._dial_failed(peer, Timeout(f"connect to {peer.name}", self.connect_timeout))
        except asyncio.CancelledError:
            self._dial_failed(peer, NodeDown(peer.name, "connect cancelled"))
            raise
        except (ErlbridgeError, OSError) as exc:
            self._dial_failed(peer, exc)

    def _dial_failed(self, peer: _Peer, exc: BaseException) -> None:
        # A dial that lost a simultaneous connect was detached from the peer (task = None)
        # and must not fail it: the incoming connection completes the peer instead.
        if peer.task is asyncio.current_task():
            self._fail_peer(peer, exc)

    def _fail_peer(self, peer: _Peer, exc: BaseException) -> None:
        exc = _connect_error(peer.name, exc)
        if not peer.connected.done():
            peer.connected.set_exception(exc)
            peer.connected.exception()  # mark retrieved: nobody may be waiting
        if self._peers.get(peer.name) is peer and not peer.up:
            del self._peers[peer.name]
            if peer.outbox:
                self.dropped += len(peer.outbox)
                self.log.debug(
                    "dropped %d queued messages for %s: %s", len(peer.outbox), peer.name, exc
                )
            self._fail_calls(
                peer, exc if isinstance(exc, ErlbridgeError) else NodeDown(peer.name, exc)
            )

    def _incoming(self) -> asyncio.Protocol:
        if len(self._handshaking) >= self.max_pending_handshakes:
            # Unauthenticated connections cost a socket each until setup_timeout: cap them
            # so a flood cannot exhaust our file descriptors; peers retry like OTP's do.
            self._refused += 1
            if self._refused % 1000 == 1:
                self.log.warning(
                    "%d incoming connections already in the handshake: refusing more (%d so far)",
                    len(self._handshaking),
                    self._refused,
                )
            return _Refuse()
        hs = Handshake(
            Role.ACCEPTOR,
            this_node=self.name,
            cookie=self._cookie or "",
            flags=self.flags,
            creation=self.creation,
            challenge=secrets.randbits(32),
            packet_bytes=self._packet_bytes,
        )
        proto = DistProtocol(
            self,
            hs,
            net_ticktime=self.net_ticktime,
            max_message_size=self.max_message_size,
            setup_timeout=self.setup_timeout,
        )
        self._handshaking.add(proto)
        return proto

    # ConnectionOwner callbacks ------------------------------------------------------------

    def on_name(self, proto: DistProtocol, event: NameReceived) -> str | None:
        """The status for an incoming name, as net_kernel's accept_pending decides it.

        Nothing about an existing connection changes here: the name is not yet
        authenticated (anyone who reaches our port can claim any name)."""
        if self._closed:
            return "not_allowed"
        key = as_atom(event.node)
        if key == self.name:
            return None  # our own name: not a peer
        peer = self._peers.get(key)
        if peer is None:
            loop = self._require_started()
            peer = _Peer(key, loop)
            self._peers[key] = peer
            peer.proto = proto
            return "ok"
        if peer.up:
            # We hold a connection from that name: the node may have restarted (its old
            # connection died silently), or someone claims its name. dist_util answers
            # "alive" and replaces the old connection only once the newcomer has passed
            # the challenge (see on_up).
            self._replacing.add(proto)
            return "alive"
        if peer.proto is not None:
            return None  # another incoming connection from that name is pending
        # Simultaneous connect (our dial is pending): the greater name wins.
        if self.name > key:
            return "nok"
        task, peer.task = peer.task, None  # detach first: see _dial_failed
        if task is not None:
            task.cancel()
        peer.proto = proto
        return "ok_simultaneous"

    def on_up(self, proto: DistProtocol, event: Connected) -> None:
        self._handshaking.discard(proto)
        key = as_atom(event.node)
        peer = self._peers.get(key)
        if proto in self._replacing:
            # authenticated now: the node came back, its old connection is stale
            self._replacing.discard(proto)
            if peer is not None and peer.proto is not proto:
                old = peer.proto
                self.log.info("%s reconnected; dropping its old connection", key)
                self._peer_down(peer, NOCONNECTION)
                if old is not None:
                    old.close(Atom("connection_closed"))
                peer = None
        if peer is None or (peer.proto is not None and peer.proto is not proto):
            if peer is not None and peer.up:
                proto.close(Atom("duplicate"))
                return
            if peer is None:
                peer = _Peer(key, self._require_started())
                self._peers[key] = peer
        peer.proto = proto
        peer.task = None
        for message in peer.outbox:
            proto.send(message)
        peer.outbox.clear()
        if not peer.connected.done():
            peer.connected.set_result(None)
        self.log.info("connected to %s", key)
        self._notify(NodeEvent("nodeup", key))

    def on_handshake_failed(self, proto: DistProtocol, exc: BaseException) -> None:
        self._handshaking.discard(proto)
        self._replacing.discard(proto)
        if proto.peer_node is None:
            self.log.debug("incoming handshake failed: %s", exc)
            return
        key = as_atom(proto.peer_node)
        peer = self._peers.get(key)
        if peer is not None and (peer.proto is proto or peer.proto is None) and not peer.up:
            if isinstance(exc, HandshakeError) and exc.status == "nok" and peer.proto is None:
                # lost a simultaneous connect: their incoming connection will complete it
                self.log.debug("simultaneous connect to %s: theirs wins", key)
                return
            self.log.debug("handshake with %s failed: %s", key, exc)
            self._fail_peer(peer, exc)

    def on_down(self, proto: DistProtocol, reason: Any) -> None:
        if proto.peer_node is None:
            return
        peer = self._peers.get(as_atom(proto.peer_node))
        if peer is not None and peer.proto is proto:
            self._peer_down(peer, as_atom(reason) if isinstance(reason, str) else reason)

    def _peer_down(self, peer: _Peer, reason: Any) -> None:
        if self._peers.get(peer.name) is peer:
            del self._peers[peer.name]
        was_up = peer.up
        peer.proto = None
        exc = NodeDown(peer.name, reason)
        if not peer.connected.done():
            peer.connected.set_exception(exc)
            peer.connected.exception()
        self._fail_calls(peer, exc)
        node = peer.name
        for endpoint in list(self._endpoints.values()):
            for pid in [p for p in endpoint.links if p.node == node]:
                endpoint.exit_signal(pid, NOCONNECTION, linked=True)
            for ref, (target, tnode) in list(endpoint.monitors.items()):
                if tnode == node:
                    endpoint.down(
                        ref, target if isinstance(target, Pid) else (target, tnode), NOCONNECTION
                    )
            for ref, pid in list(endpoint.monitored_by.items()):
                if pid.node == node:
                    del endpoint.monitored_by[ref]
        if was_up:
            self.log.info("connection to %s lost: %s", node, _Bounded(reason))
            self._notify(NodeEvent("nodedown", node, reason))

    def _fail_calls(self, peer: _Peer, exc: BaseException) -> None:
        if self._rpc is None:
            return
        for ref in peer.calls:
            fut = self._rpc.calls.pop(ref, None)
            if fut is not None and not fut.done():
                fut.set_exception(exc)
        peer.calls.clear()

    # -- node monitors ------------------------------------------------------------------

    def monitor_nodes(
        self, target: Callable[[NodeEvent], Any] | asyncio.Queue[NodeEvent]
    ) -> Callable[[], None]:
        """Report every nodeup/nodedown as a NodeEvent to a callback or an asyncio.Queue.

        Returns a function that stops the reports.
        """
        self._node_monitors.append(target)

        def cancel() -> None:
            if target in self._node_monitors:
                self._node_monitors.remove(target)

        return cancel

    def _notify(self, event: NodeEvent) -> None:
        for target in list(self._node_monitors):
            try:
                if isinstance(target, asyncio.Queue):
                    target.put_nowait(event)
                else:
                    target(event)
            except Exception:
                self.log.exception("node monitor callback failed")

    # -- sending -----------------------------------------------------------------------

    def _send_control(self, node: Atom, message: c.ControlMessage) -> None:
        """Send to ``node``, connecting on demand (queued until the handshake completes)."""
        peer = self._peers.get(node)
        if peer is not None and peer.proto is not None and peer.proto.conn is not None:
            peer.proto.send(message)
            return
        if peer is None:
            peer = self._peer_for(node)
        peer.outbox.append(message)

    def _send_raw(self, from_pid: Pid, to: Pid, message: Any) -> None:
        self._route(from_pid, to, message)

    def _route(self, from_pid: Pid, dest: Any, message: Any) -> None:
        if isinstance(dest, Pid):
            if dest.node == self.name:
                endpoint = self._endpoints.get(dest)
                if endpoint is None:
                    self._drop(dest, message, "no such local pid")
                else:
                    endpoint.deliver(message)
                return
            self._send_control(dest.node, c.SendSender(from_pid, dest, message))
            return
        if isinstance(dest, Reference):
            if dest.node == self.name:
                endpoint = self._aliases.get(dest)
                if endpoint is None:
                    self._drop(dest, message, "no such alias")
                else:
                    endpoint.deliver(message)
                return
            self._send_control(dest.node, c.AliasSend(from_pid, dest, message))
            return
        if isinstance(dest, tuple) and len(dest) == 2:
            name, node = as_atom(dest[0]), as_atom(dest[1])
            if node != self.name:
                self._send_control(node, c.RegSend(from_pid, name, message))
                return
            dest = name
        if isinstance(dest, str):
            endpoint = self._names.get(as_atom(dest))
            if endpoint is None:
                raise NoProcess(f"no process registered as {dest!r}")
            endpoint.deliver(message)
            return
        raise TypeError(
            f"cannot send to {bounded_text(dest)}: want a Pid, (name, node), alias or name"
        )

    def send(self, dest: Any, message: Any) -> None:
        """Send from the node's anonymous pid (replies, if any, are dropped)."""
        assert self._rpc is not None, "node not started"
        self._require_started()
        self._route(self._rpc.pid, dest, message)

    async def drain(self, node: str | None = None, *, timeout: float | None = None) -> None:
        """Flow control for sends: wait until what was sent to ``node`` (every connected
        node if None) fits under the connection's write-buffer high-water mark.

        ``send`` never blocks (as in Erlang); a producer of many or large messages awaits
        this between sends so a slow reader cannot grow our memory. A connection still
        being set up is waited for first (messages queued meanwhile go out when it is up);
        a connection that fails or closes ends the wait (it shows as a nodedown). Raises
        Timeout after ``timeout`` seconds.
        """
        self._require_started()
        if node is None:
            peers = list(self._peers.values())
        else:
            peer = self._peers.get(self._target(node))
            peers = [] if peer is None else [peer]

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
            raise Timeout(f"draining sends to {node or 'every node'}", timeout) from exc

    def _reply_gen_call(self, from_pid: Pid, frm: Any, reply: Any) -> None:
        """``gen:reply/2`` for a ``{To, Tag}`` From (alias tags are answered by alias)."""
        if not (type(frm) is tuple and len(frm) == 2 and isinstance(frm[0], Pid)):
            return
        to, tag = frm
        alias = _alias_of(tag)
        if alias is not None:
            self._route(from_pid, alias, (tag, reply))
        else:
            self._route(from_pid, to, (tag, reply))

    def _drop(self, to: Any, message: Any, why: str) -> None:
        self.dropped += 1
        self.log.debug("dropped message to %s (%s)", _Bounded(to), why)

    # -- incoming --------------------------------------------------------------------------

    def on_message(self, proto: DistProtocol, msg: c.ControlMessage, size: int = 0) -> None:
        """Dispatch one control message; ``size`` is its cost (frame + inflated: mailbox bytes)."""
        cls = type(msg)
        if cls is c.SendSender or cls is c.Send:
            try:
                endpoint = self._endpoints.get(msg.to_pid)  # type: ignore[union-attr]
            except TypeError:  # an unhashable "pid"
                proto.abort(ProtocolError(f"malformed {cls.__name__} from {proto.peer_node}"))
                return
            if endpoint is None:
                self._drop(msg.to_pid, None, "no such pid")  # type: ignore[union-attr]
            else:
                endpoint.deliver(msg.message, size)  # type: ignore[union-attr]
            return
        handler = _HANDLERS.get(cls)
        if handler is None:
            self.log.debug("ignored control message %s", _Bounded(msg))
            return
        # Signals that we act on by answering the sender (LINK, UNLINK_ID, MONITOR_P,
        # SPAWN_REQUEST, ...) or that hit our processes (EXIT, EXIT2) must come from a
        # process of the connected node, as erts requires: otherwise a peer could make us
        # dial a third node or forge an exit signal from one.
        sender = getattr(msg, "from_pid", None) or getattr(msg, "sender", None)
        if sender is None and isinstance(getattr(msg, "from_proc", None), Pid):
            sender = msg.from_proc  # type: ignore[union-attr]  # MONITOR_P_EXIT by pid
        if sender is not None and not (
            isinstance(sender, Pid) and sender.node == proto.peer_node
        ):
            proto.abort(
                ProtocolError(
                    f"{cls.__name__} from {proto.peer_node} claims sender {bounded_text(sender)}"
                )
            )
            return
        try:
            handler(self, proto, msg, size)
        except (TypeError, AttributeError, ValueError) as exc:
            # fields of the wrong type (a pid that is not a pid, ...): the peer broke the rules
            proto.abort(
                ProtocolError(
                    f"malformed {type(msg).__name__} from {proto.peer_node}: "
                    + bounded_text(str(exc))
                )
            )

    def _on_reg_send(self, proto: DistProtocol, msg: c.RegSend, size: int) -> None:
        endpoint = self._names.get(msg.to_name)
        if endpoint is None:
            self._drop(msg.to_name, msg.message, "no such registered name")
        else:
            endpoint.deliver(msg.message, size)

    def _on_alias_send(self, proto: DistProtocol, msg: c.AliasSend, size: int) -> None:
        endpoint = self._aliases.get(msg.alias)
        if endpoint is None:
            self._drop(msg.alias, msg.message, "no such alias")
        else:
            endpoint.deliver(msg.message, size)

    def _on_link(self, proto: DistProtocol, msg: c.Link, size: int) -> None:
        endpoint = self._endpoints.get(msg.to_pid)
        if endpoint is None:
            self._send_control(msg.from_pid.node, c.Exit(msg.to_pid, msg.from_pid, NOPROC))
        else:
            endpoint.links.add(msg.from_pid)

    def _on_unlink(self, proto: DistProtocol, msg: c.Unlink | c.UnlinkId, size: int) -> None:
        endpoint = self._endpoints.get(msg.to_pid)
        if endpoint is not None:
            endpoint.links.discard(msg.from_pid)
        if isinstance(msg, c.UnlinkId):
            self._send_control(msg.from_pid.node, c.UnlinkIdAck(msg.id, msg.to_pid, msg.from_pid))

    def _on_unlink_ack(self, proto: DistProtocol, msg: c.UnlinkIdAck, size: int) -> None:
        return  # we dropped the link when we sent UNLINK_ID

    def _on_exit(self, proto: DistProtocol, msg: c.Exit, size: int) -> None:
        endpoint = self._endpoints.get(msg.to_pid)
        if endpoint is not None:
            endpoint.exit_signal(msg.from_pid, msg.reason, linked=True)

    def _on_exit2(self, proto: DistProtocol, msg: c.Exit2, size: int) -> None:
        endpoint = self._endpoints.get(msg.to_pid)
        if endpoint is not None:
            endpoint.exit_signal(msg.from_pid, msg.reason, linked=False)

    def _on_monitor(self, proto: DistProtocol, msg: c.MonitorP, size: int) -> None:
        target = msg.to_proc
        endpoint = (
            self._names.get(target) if isinstance(target, str) else self._endpoints.get(target)
        )
        if endpoint is None or (isinstance(endpoint, Process) and not endpoint.alive):
            self._send_control(
                msg.from_pid.node, c.MonitorPExit(target, msg.from_pid, msg.ref, NOPROC)
            )
        else:
            endpoint.monitored_by[msg.ref] = msg.from_pid

    def _on_demonitor(self, proto: DistProtocol, msg: c.DemonitorP, size: int) -> None:
        target = msg.to_proc
        endpoint = (
            self._names.get(target) if isinstance(target, str) else self._endpoints.get(target)
        )
        if endpoint is not None:
            endpoint.monitored_by.pop(msg.ref, None)

    def _on_monitor_exit(self, proto: DistProtocol, msg: c.MonitorPExit, size: int) -> None:
        endpoint = self._endpoints.get(msg.to_pid)
        if endpoint is None:
            return
        obj: Any = msg.from_proc
        if isinstance(obj, str):
            obj = (obj, as_atom(proto.peer_node or ""))
        endpoint.down(msg.ref, obj, msg.reason)

    def _on_spawn_request(self, proto: DistProtocol, msg: c.SpawnRequest, size: int) -> None:
        # A Python node never runs code for a remote node.
        self._send_control(msg.from_pid.node, c.SpawnReply(msg.req_id, msg.from_pid, 0, NOTSUP))

    def _on_spawn_reply(self, proto: DistProtocol, msg: c.SpawnReply, size: int) -> None:
        endpoint = self._endpoints.get(msg.to_pid)
        if isinstance(endpoint, RpcEndpoint):
            if not isinstance(msg.result, Pid):
                endpoint.spawn_failed(msg.req_id, msg.result)
        else:
            self._drop(msg.to_pid, msg, "spawn reply for a pid that spawns nothing")

    def _on_altact(self, proto: DistProtocol, msg: c.AltactSigSend, size: int) -> None:
        # Only sent if we advertise ALTACT_SIG (we do not); handled for robustness.
        if msg.flags & c.AltactSigSend.EXIT:
            endpoint = self._endpoints.get(msg.to) if isinstance(msg.to, Pid) else None
            if endpoint is not None:
                endpoint.exit_signal(msg.sender, msg.message, linked=False)
            return
        if msg.flags & c.AltactSigSend.ALIAS:
            endpoint = self._aliases.get(msg.to)
        elif msg.flags & c.AltactSigSend.NAME:
            endpoint = self._names.get(msg.to)
        else:
            endpoint = self._endpoints.get(msg.to)
        if endpoint is None:
            self._drop(msg.to, msg.message, "no such destination")
        else:
            endpoint.deliver(msg.message, size)

    # -- links, monitors, exits (called by Process) ---------------------------------------

    async def _link(self, proc: Process, pid: Pid) -> None:
        if pid.node == self.name:
            other = self._endpoints.get(pid)
            if other is None or (isinstance(other, Process) and not other.alive):
                proc.exit_signal(pid, NOPROC, linked=False) if proc.trap_exit else proc._terminate(
                    NOPROC
                )
                return
            proc.links.add(pid)
            other.links.add(proc.pid)
            return
        peer = self._peer_for(pid.node)
        await self._wait_connected(peer, self.connect_timeout)
        proc.links.add(pid)
        self._send_control(pid.node, c.Link(proc.pid, pid))

    async def _unlink(self, proc: Process, pid: Pid) -> None:
        if pid not in proc.links:
            return
        proc.links.discard(pid)
        if pid.node == self.name:
            other = self._endpoints.get(pid)
            if other is not None:
                other.links.discard(proc.pid)
            return
        self._send_control(pid.node, c.UnlinkId(next(self._unlink_ids), proc.pid, pid))

    def _monitor(self, proc: Process, target: Any) -> Reference:
        ref = self.make_ref()
        if isinstance(target, tuple) and len(target) == 2:
            name, node = as_atom(target[0]), as_atom(target[1])
            if node == self.name:
                target = name
            else:
                proc.monitors[ref] = (name, node)
                self._send_control(node, c.MonitorP(proc.pid, name, ref))
                return ref
        if isinstance(target, str):
            endpoint = self._names.get(as_atom(target))
            if endpoint is None:
                proc.monitors[ref] = (as_atom(target), self.name)
                proc.down(ref, (as_atom(target), self.name), NOPROC)
            else:
                proc.monitors[ref] = (endpoint.pid, self.name)
                endpoint.monitored_by[ref] = proc.pid
            return ref
        if isinstance(target, Pid):
            proc.monitors[ref] = (target, target.node)
            if target.node == self.name:
                endpoint = self._endpoints.get(target)
                if endpoint is None:
                    proc.down(ref, target, NOPROC)
                else:
                    endpoint.monitored_by[ref] = proc.pid
            else:
                self._send_control(target.node, c.MonitorP(proc.pid, target, ref))
            return ref
        raise TypeError(f"cannot monitor {bounded_text(target)}")

    def _demonitor(self, proc: Process, ref: Reference) -> None:
        entry = proc.monitors.pop(ref, None)
        if entry is None:
            return
        target, node = entry
        if node == self.name:
            endpoint = (
                self._endpoints.get(target) if isinstance(target, Pid) else self._names.get(target)
            )
            if endpoint is not None:
                endpoint.monitored_by.pop(ref, None)
        elif node in self._peers:
            self._send_control(node, c.DemonitorP(proc.pid, target, ref))

    def _exit2(self, proc: Process, pid: Pid, reason: Any) -> None:
        if pid.node == self.name:
            endpoint = self._endpoints.get(pid)
            if endpoint is not None:
                endpoint.exit_signal(proc.pid, reason, linked=False)
            return
        self._send_control(pid.node, c.Exit2(proc.pid, pid, reason))

    def _process_exited(self, proc: Process, reason: Any) -> None:
        self._endpoints.pop(proc.pid, None)
        if proc.name is not None and self._names.get(proc.name) is proc:
            del self._names[proc.name]
        for ref in [r for r, e in self._aliases.items() if e is proc]:
            del self._aliases[ref]
        for pid in list(proc.links):
            if pid.node == self.name:
                other = self._endpoints.get(pid)
                if other is not None:
                    other.exit_signal(proc.pid, reason, linked=True)
            elif pid.node in self._peers:
                self._send_control(pid.node, c.Exit(proc.pid, pid, reason))
        proc.links.clear()
        for ref, pid in list(proc.monitored_by.items()):
            if pid.node == self.name:
                other = self._endpoints.get(pid)
                if other is not None:
                    other.down(ref, proc.pid, reason)
            elif pid.node in self._peers:
                self._send_control(pid.node, c.MonitorPExit(proc.pid, pid, ref, reason))
        proc.monitored_by.clear()
        for ref in list(proc.monitors):
            self._demonitor(proc, ref)

    # -- calls ------------------------------------------------------------------------

    async def call(self, dest: Any, request: Any, *, timeout: float | None = 5.0) -> Any:
        """``gen_server:call(Dest, Request)`` with a plain-reference tag.

        ``dest`` is a pid or ``(name, node)``. Raises Timeout, NodeDown.
        """
        node = as_atom(dest.node if isinstance(dest, Pid) else dest[1])
        full = self._target(node)
        return await self._call(
            node,
            full,
            dest if isinstance(dest, Pid) else (as_atom(dest[0]), full),
            request,
            timeout=timeout,
            what=lambda: f"call to {dest}",
        )

    def _target(self, node: str) -> Atom:
        """The full node name for ``node`` (``name@host[:port]``), cached for the hot path."""
        full = self._targets.get(node)
        if full is None:
            full = as_atom(_split_target(node)[0])
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

    async def _call(
        self,
        node: str,
        full: Atom,
        dest: Any,
        request: Any,
        *,
        timeout: float | None,
        what: Callable[[], str],
        encoded: bytes | None = None,
    ) -> Any:
        """One ``gen_server`` call from the shared reply pid; the request frame is built from
        cached bytes (control term, ``{'$gen_call', {Pid, ...`` head) plus the encoded ref
        and request, so a call costs one encode of the request and no control dataclass.
        ``encoded``: the request already encoded (without the 131 byte); then ``request``
        is not used."""
        loop = self._loop
        rpc = self._rpc
        if rpc is None or loop is None or self._closed:
            self._require_started()
            raise AssertionError("unreachable")
        peer = self._peers.get(full)
        if peer is None or not peer.up:
            peer = self._peer_for(node)
            await self._wait_connected(peer, self.connect_timeout if timeout is None else timeout)
        proto = peer.proto
        assert proto is not None
        n = next(self._ref_ids)
        ids = (n & 0x3FFFF, (n >> 18) & _MAX_ID, self._ref_salt)
        ref = Reference(self.name, self.creation, ids)
        fut: asyncio.Future[Any] = loop.create_future()
        rpc.calls[ref] = fut
        peer.calls.add(ref)
        if encoded is None:
            encoded = encode(request)[1:]
        payload = b"".join((self._call_head, _REF_IDS.pack(*ids), encoded))
        proto.send_encoded(self._ctl_bytes(rpc.pid, dest), payload)
        deadlines = self._deadlines
        assert deadlines is not None
        entry = None if timeout is None else deadlines.add(timeout, fut)
        try:
            if proto.paused:
                await proto.drain()
            return await fut
        except _Expired as exc:
            raise Timeout(what(), timeout) from exc
        finally:
            if entry is not None:
                deadlines.finished(entry)
            rpc.calls.pop(ref, None)
            peer.calls.discard(ref)

    async def _erpc(
        self,
        node: str,
        full: Atom,
        module: Atom,
        function: Atom,
        args: list[Any],
        *,
        timeout: float | None,
        what: Callable[[], str],
    ) -> Any:
        """``erpc:call`` on the wire: SPAWN_REQUEST of ``erpc:execute_call/4`` with a monitor;
        the result arrives as the executor's DOWN reason (docs/internals/otp-facts.md#erpc).
        Erts spawns the
        executor itself, so there is no hop through the ``rex`` server. The request id
        doubles as erpc's result tag."""
        loop = self._loop
        rpc = self._rpc
        if rpc is None or loop is None or self._closed:
            self._require_started()
            raise AssertionError("unreachable")
        peer = self._peers.get(full)
        if peer is None or not peer.up:
            peer = self._peer_for(node)
            await self._wait_connected(peer, self.connect_timeout if timeout is None else timeout)
        proto = peer.proto
        assert proto is not None
        n = next(self._ref_ids)
        ids = _REF_IDS.pack(n & 0x3FFFF, (n >> 18) & _MAX_ID, self._ref_salt)
        ref = Reference(self.name, self.creation, _REF_IDS.unpack(ids))
        fut: asyncio.Future[Any] = loop.create_future()
        rpc.calls[ref] = fut
        peer.calls.add(ref)
        head, tail, ref_head = self._spawn_parts
        control = b"".join((head, ids, tail))
        payload = b"".join(
            (
                b"\x83l\x00\x00\x00\x04",
                ref_head,
                ids,
                encode(module)[1:],
                encode(function)[1:],
                encode(args)[1:],
                b"j",
            )
        )
        proto.send_encoded(control, payload)
        deadlines = self._deadlines
        assert deadlines is not None
        entry = None if timeout is None else deadlines.add(timeout, fut)
        try:
            if proto.paused:
                await proto.drain()
            result: ErpcExit = await fut
        except _Expired as exc:
            raise Timeout(what(), timeout) from exc
        finally:
            if entry is not None:
                deadlines.finished(entry)
            rpc.calls.pop(ref, None)
            peer.calls.discard(ref)
        return interpret_erpc(result, ref, full)

    async def rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
        capture_output: bool = False,
    ) -> Any:
        """``rpc:call(Node, Module, Function, Args)`` through the node's rex.

        Returns the value, or RpcResult(value, output) with ``capture_output=True``.
        Raises RemoteException (the call raised), BadRpc, NodeDown (the connection was
        lost, or NodeUnreachable: it could not be made), Timeout, and the other
        connection errors of :meth:`connect`.
        """
        request_args = list(args)
        full = self._target(node)

        def what() -> str:
            return f"rpc {module}:{function}/{len(request_args)} on {full}"

        if not capture_output:
            if self.rpc_method == "erpc":
                return await self._erpc(
                    node,
                    full,
                    as_atom(module),
                    as_atom(function),
                    request_args,
                    timeout=timeout,
                    what=what,
                )
            # {call, M, F, Args, IoPid}: only Args is encoded per call (see _rex_request)
            encoded = self._rex_request(module, function, request_args)
            reply = await self._call(
                node, full, (REX, full), None, timeout=timeout, what=what, encoded=encoded
            )
            return interpret_reply(reply, full)
        call = (CALL, as_atom(module), as_atom(function), request_args)
        return await self._rpc_capture(node, full, call, timeout=timeout, what=what)

    def _rex_request(self, module: str, function: str, args: list[Any]) -> bytes:
        """``{call, M, F, Args, IoPid}`` encoded without the 131 byte, from a cached
        ``{call, M, F,`` head per (module, function) and the cached ``IoPid`` tail."""
        head = self._rex_heads.get((module, function))
        if head is None:
            assert self._io is not None
            if not self._rex_tail:
                self._rex_tail = encode(self._io.pid)[1:]
            head = b"h\x05" + b"".join(
                encode(t)[1:] for t in (CALL, as_atom(module), as_atom(function))
            )
            if len(self._rex_heads) < 1024:
                self._rex_heads[module, function] = head
        return b"".join((head, encode(args)[1:], self._rex_tail))

    async def _rpc_capture(
        self,
        node: str,
        full: Atom,
        call: tuple[Any, ...],
        *,
        timeout: float | None,
        what: Callable[[], str],
    ) -> RpcResult:
        loop = self._require_started()
        peer = self._peers.get(full)
        if peer is None or not peer.up:
            peer = self._peer_for(node)
            await self._wait_connected(peer, self.connect_timeout if timeout is None else timeout)
        ref = self.make_ref()
        fut: asyncio.Future[Any] = loop.create_future()
        endpoint = CaptureEndpoint(self, self._new_pid(), ref, fut)
        self._add_endpoint(endpoint)
        assert self._rpc is not None
        self._rpc.calls[ref] = fut  # so a nodedown fails it too
        peer.calls.add(ref)
        gl = (SEND_STDOUT, endpoint.pid)
        request = (*call, gl)
        try:
            self._route(endpoint.pid, (REX, full), (GEN_CALL, (endpoint.pid, ref), request))
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
            self._endpoints.pop(endpoint.pid, None)
            self._rpc.calls.pop(ref, None)
            peer.calls.discard(ref)
        return RpcResult(interpret_reply(reply, full), endpoint.output)

    async def multicall(
        self,
        nodes: Iterable[str],
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
        capture_output: bool = False,
    ) -> dict[Atom, RpcOutcome]:
        """Run the same rpc on every node concurrently; one RpcOutcome per node (never raises
        for one node's failure)."""

        async def one(target: str) -> RpcOutcome:
            name = as_atom(_split_target(target)[0])
            start = time.perf_counter()
            try:
                value = await self.rpc(
                    target, module, function, args, timeout=timeout, capture_output=capture_output
                )
            except ErlbridgeError as exc:
                return RpcOutcome(name, error=exc, duration=time.perf_counter() - start)
            output = value.output if isinstance(value, RpcResult) else None
            if isinstance(value, RpcResult):
                value = value.value
            return RpcOutcome(
                name, value=value, duration=time.perf_counter() - start, output=output
            )

        targets = list(dict.fromkeys(nodes))
        outcomes = await asyncio.gather(*(one(t) for t in targets))
        return {o.node: o for o in outcomes}

    def cast(self, node: str, module: str, function: str, args: Sequence[Any] = ()) -> None:
        """``rpc:cast/4``: run ``M:F(A)`` on ``node`` without waiting (output to the node's GL)."""
        self._require_started()
        assert self._rpc is not None and self._io is not None
        full = as_atom(_split_target(node)[0])
        if full not in self._peers:
            self._peer_for(node)
        request = (CAST, as_atom(module), as_atom(function), list(args), self._io.pid)
        self._send_control(full, c.RegSend(self._rpc.pid, REX, (GEN_CAST, request)))


class _Expired(Exception):
    """Internal: a call's deadline passed."""


class _Bounded:
    """A log argument that renders a peer's value with bounded_text, only when a handler
    formats the record (a disabled DEBUG costs nothing)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return bounded_text(self.value)


def _connect_error(node: Atom, exc: BaseException) -> BaseException:
    """What a failed connection attempt raises: a wrong cookie or a TLS failure keeps its
    type (configuration errors), anything else means the node cannot be reached."""
    if isinstance(exc, NodeUnreachable | AuthenticationError | TLSError | InvalidState):
        return exc
    if isinstance(exc, ErlbridgeError | OSError):
        err = NodeUnreachable.of(node, exc)
        err.__cause__ = exc
        return err
    return exc


class _Deadlines:
    """Every call's deadline behind one loop timer (instead of a TimerHandle per call).

    ``add`` pushes ``(deadline, seq, future)`` on a heap; the one timer is armed at the
    earliest deadline and, when it fires, fails every pending future whose deadline has come
    with ``_Expired``. Firing follows ``call_at``'s own rule (due once ``loop.time()`` is
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

    def add(self, timeout: float, fut: asyncio.Future[Any]) -> list[Any]:
        """Fail ``fut`` with _Expired ``timeout`` seconds from now unless it is done by then.
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
        due = max(self._timer_at, self._loop.time() + _CLOCK_RESOLUTION)
        while heap:
            when, _, fut = heap[0]
            if fut is None or fut.done():
                heapq.heappop(heap)
            elif when <= due:
                heapq.heappop(heap)
                fut.set_exception(_Expired())
            else:
                self._arm(when)
                return


def _alias_of(tag: Any) -> Reference | None:
    # [alias | Ref] or [[alias | Ref] | _] (gen:reply/2)
    from erlbridge.term import ImproperList  # noqa: PLC0415

    if isinstance(tag, ImproperList):
        if tag.elements == (Atom("alias"),) and isinstance(tag.tail, Reference):
            return tag.tail
        if len(tag.elements) == 1 and isinstance(tag.elements[0], ImproperList):
            return _alias_of(tag.elements[0])
    return None


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


#: control message type -> handler(node, proto, msg, size); the size (frame + inflated) is
#: what a delivered message counts against its mailbox's max_mailbox_bytes
_HANDLERS: dict[type, Callable[[Node, DistProtocol, Any, int], None]] = {
    c.RegSend: Node._on_reg_send,
    c.AliasSend: Node._on_alias_send,
    c.Link: Node._on_link,
    c.Unlink: Node._on_unlink,
    c.UnlinkId: Node._on_unlink,
    c.UnlinkIdAck: Node._on_unlink_ack,
    c.Exit: Node._on_exit,
    c.Exit2: Node._on_exit2,
    c.MonitorP: Node._on_monitor,
    c.DemonitorP: Node._on_demonitor,
    c.MonitorPExit: Node._on_monitor_exit,
    c.SpawnRequest: Node._on_spawn_request,
    c.SpawnReply: Node._on_spawn_reply,
    c.AltactSigSend: Node._on_altact,
}

