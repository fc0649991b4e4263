"""The Python distribution node: the public face over its parts.

A hidden node by default. It executes nothing on behalf of remote nodes: incoming
SPAWN_REQUESTs are refused with ``notsup``, a remote ``rex`` call to us is never served, and
messages to unknown pids or names are dropped and counted (:attr:`Node.dropped`).

:class:`Node` owns the lifecycle (listener, EPMD registration, service pids) and wires the
parts together, each owning its own state (docs/internals/architecture.md#the-node):
:mod:`~erlbridge.asyncio.registry` (pids, names, aliases), :mod:`~erlbridge.asyncio.links`
(links and monitors), :mod:`~erlbridge.asyncio.peers` (connections, routing),
:mod:`~erlbridge.asyncio.dispatch` (incoming control messages) and
:mod:`~erlbridge.asyncio.calls` (calls, rpc, erpc, deadlines). Endpoints see the node only
through :class:`~erlbridge.asyncio.interface.NodeCore`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from erlbridge.asyncio import epmd as epmd_client
from erlbridge.asyncio._atoms import as_atom
from erlbridge.asyncio.calls import (
    Calls,
    Deadlines,
    Expired,
    Prepared,
    ThreadWaiter,
    rpc_description,
)
from erlbridge.asyncio.connection import DistProtocol
from erlbridge.asyncio.core import Core
from erlbridge.asyncio.dispatch import Dispatcher
from erlbridge.asyncio.io_server import IoServer, OutputCallback
from erlbridge.asyncio.links import Links
from erlbridge.asyncio.net_kernel import NetKernel
from erlbridge.asyncio.peers import NodeEvent, Peer, Peers, split_target
from erlbridge.asyncio.process import Process
from erlbridge.asyncio.registry import MAX_ID, Registry
from erlbridge.asyncio.rpc import RpcEndpoint, RpcOutcome, RpcResult, interpret_reply
from erlbridge.asyncio.tls import TLSAcceptor, TLSOptions, accepts_with_start_tls
from erlbridge.exceptions import EpmdUnreachable, ErlbridgeError, InvalidState
from erlbridge.protocol import control as c
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import Connected, NameReceived
from erlbridge.term import Atom, Pid, Reference, encode

__all__ = ["Node", "NodeEvent", "resolve_cookie"]

_logger = logging.getLogger(__name__)

REX = Atom("rex")
NET_KERNEL = Atom("net_kernel")
CALL = Atom("call")
YES = Atom("yes")
IS_AUTH = Atom("is_auth")
# the call machinery's, under the names the deadline tests import
_Deadlines = Deadlines
_Expired = Expired


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
    net_setuptime); ``reply_spin`` seconds a call waiting for its reply keeps its thread
    (or the loop) polling before it sleeps (default 200 µs: a sleeping thread wakes
    slowly; 0 sleeps at once, for the least CPU); ``output`` receives
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
        reply_spin: float = 0.0002,
        output: OutputCallback | None = None,
        logger: logging.Logger | None = None,
        tls: TLSOptions | None = None,
    ) -> None:
        if "@" not in name:
            name = f"{name}@{socket.gethostname().split('.')[0]}"
        split_target(name)
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
        self.setup_timeout = setup_timeout
        self.connect_timeout = connect_timeout
        if rpc_method not in ("rex", "erpc"):
            raise ValueError(f"rpc_method must be 'rex' or 'erpc', not {rpc_method!r}")
        self.rpc_method = rpc_method
        if not 0 <= reply_spin <= 1:
            raise ValueError(f"reply_spin must be 0..1 seconds, not {reply_spin!r}")
        self.reply_spin = reply_spin
        self.log = logger or _logger
        self.tls = tls
        self.flags = default_flags(hidden=hidden)
        self.creation = 0
        self._output = output
        self._started = False
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._registration: epmd_client.EpmdRegistration | None = None
        # the parts, each owning its state; wired here, bound to the loop by start()
        self._registry = Registry(self.name, self)
        self._links = Links(self._registry)
        self._dispatch = Dispatcher(self._registry, self._links, self)
        self._peers = Peers(self, self._registry, self._links, self._dispatch.on_message)
        self._links.wire = self._dispatch.wire = self._peers
        self._calls = Calls(self._registry, self._peers)
        self._calls.spin = reply_spin
        self._core = Core(self, self._registry, self._links, self._peers)
        self._rpc: RpcEndpoint | None = None
        self._io: IoServer | None = None

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("started" if self._started else "new")
        return f"<Node {self.name} {state}>"

    @property
    def dropped(self) -> int:
        """Messages dropped because nobody could receive them."""
        return self._registry.dropped

    @dropped.setter
    def dropped(self, value: int) -> None:
        self._registry.dropped = value

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
            return await register(
                alive, self.port or 0, hidden=self.hidden, epmd_port=self.epmd_port
            )
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
            factory: Callable[[], asyncio.BaseProtocol] = self._peers.incoming
            server_tls: dict[str, Any] = {}
            if self.tls is not None:
                server_ssl = self.tls.server_context()
                incoming, timeout = self._peers.incoming, self.tls.handshake_timeout
                if accepts_with_start_tls(self._loop):

                    def factory() -> asyncio.BaseProtocol:
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
            self.creation = 4 + secrets.randbelow(MAX_ID - 4)
        registry = self._registry
        registry.creation = self.creation
        self._peers.cookie = self._cookie
        self._peers.loop = self._loop
        self._started = True
        core = self._core
        self._rpc = RpcEndpoint(core, registry.new_pid())
        registry.add(self._rpc)
        self._peers.pending = self._rpc.calls
        self._io = IoServer(core, registry.new_pid(), self._output)
        registry.add(self._io)
        self._calls.start(self._loop, self._rpc, self._io.pid)
        net_kernel = NetKernel(core, registry.new_pid())
        registry.add(net_kernel)
        registry.names[NET_KERNEL] = net_kernel
        self.log.debug(
            "node %s started (creation %d, port %s)", self.name, self.creation, self.port
        )

    async def close(self) -> None:
        """Close every connection, unregister, exit every process (reason ``shutdown``)."""
        self._peers.closed = True
        if self._closed or not self._started:
            self._closed = True
            return
        self._closed = True
        self._calls.stop()
        for endpoint in list(self._registry.endpoints.values()):
            if isinstance(endpoint, Process):
                endpoint.close(Atom("shutdown"))
        self._peers.close_all()
        if self._registration is not None:
            self._registration.close()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        if self._io is not None:
            for task in list(self._io.tasks):
                task.cancel()
        self._calls.close()
        await asyncio.sleep(0)

    def _require_started(self) -> asyncio.AbstractEventLoop:
        return self._peers.require_started()

    # -- identifiers, processes and names ----------------------------------------------------

    def make_ref(self) -> Reference:
        """A new reference of this node (3 words, first < 2**18 as erts requires)."""
        return self._registry.make_ref()

    def process(self, name: str | None = None, *, trap_exit: bool = False) -> Process:
        """A new Python-side process (registered as ``name`` if given)."""
        self._require_started()
        proc = Process(self._core, self._registry.new_pid(), name=name, trap_exit=trap_exit)
        self._registry.add(proc)
        if name is not None:
            self.register(name, proc)
        return proc

    def register(self, name: str, process: Process) -> None:
        """Register ``process`` under ``name``; raises InvalidState if the name is taken."""
        self._registry.register(name, process)

    def unregister(self, name: str) -> None:
        self._registry.unregister(name)

    def whereis(self, name: str) -> Pid | None:
        return self._registry.whereis(name)

    def registered(self) -> list[Atom]:
        return sorted(self._registry.names)

    def alias(self, process: Process) -> Reference:
        """A new alias reference for ``process`` (messages to it reach the process)."""
        return self._registry.alias(process)

    def unalias(self, ref: Reference) -> None:
        self._registry.aliases.pop(ref, None)

    # -- connections --------------------------------------------------------------------

    def connected_nodes(self) -> list[Atom]:
        """Nodes with a connection that completed its handshake."""
        return self._peers.connected_nodes()

    async def connect(self, node: str, *, timeout: float | None = None) -> Atom:
        """Connect to ``node`` (``name@host``, or ``name@host:port`` without EPMD).

        Returns the node name. Raises NodeUnreachable, a NodeDown, when the node cannot be
        reached (its ``detail`` says why: NodeNotFound from EPMD, an OSError, a Timeout, a
        HandshakeError; it is an instance of that class too), AuthenticationError (cookies
        differ), TLSError, Timeout (``timeout`` ran out first), ValueError (not a node
        name).
        """
        peers = self._peers
        peer = peers.peer_for(node)
        await peers.wait_connected(peer, timeout if timeout is not None else self.connect_timeout)
        return peer.name

    async def disconnect(self, node: str) -> None:
        """Close the connection to ``node`` (nodedown reason ``disconnect``)."""
        full, _, _ = split_target(node)
        peer = self._peers.table.get(as_atom(full))
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

    # the peer table's dial-on-demand, under the name a test spies on
    @property
    def _peer_for(self) -> Callable[[str], Peer]:
        return self._peers.peer_for

    @_peer_for.setter
    def _peer_for(self, dial: Callable[[str], Peer]) -> None:
        setattr(self._peers, "peer_for", dial)  # noqa: B010  # an instance override

    @property
    def _handshaking(self) -> set[DistProtocol]:
        return self._peers.handshaking

    # ConnectionOwner callbacks (the peer table owns the connections; kept for the API) ---

    def on_name(self, proto: DistProtocol, event: NameReceived) -> str | None:
        """The status for an incoming name, as net_kernel's accept_pending decides it.

        Nothing about an existing connection changes here: the name is not yet
        authenticated (anyone who reaches our port can claim any name)."""
        return self._peers.on_name(proto, event)

    def on_up(self, proto: DistProtocol, event: Connected) -> None:
        self._peers.on_up(proto, event)

    def on_handshake_failed(self, proto: DistProtocol, exc: BaseException) -> None:
        self._peers.on_handshake_failed(proto, exc)

    def on_down(self, proto: DistProtocol, reason: Any) -> None:
        self._peers.on_down(proto, reason)

    def on_message(self, proto: DistProtocol, msg: c.ControlMessage, size: int = 0) -> None:
        """Dispatch one control message; ``size`` is its cost (frame + inflated: mailbox bytes)."""
        self._dispatch.on_message(proto, msg, size)

    # -- node monitors ------------------------------------------------------------------

    def monitor_nodes(
        self, target: Callable[[NodeEvent], Any] | asyncio.Queue[NodeEvent]
    ) -> Callable[[], None]:
        """Report every nodeup/nodedown as a NodeEvent to a callback or an asyncio.Queue.

        Returns a function that stops the reports.
        """
        return self._peers.monitor_nodes(target)

    # -- sending -----------------------------------------------------------------------

    def send(self, dest: Any, message: Any) -> None:
        """Send from the node's anonymous pid (replies, if any, are dropped)."""
        assert self._rpc is not None, "node not started"
        self._require_started()
        self._peers.route(self._rpc.pid, dest, message)

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
        peers = self._peers
        if node is None:
            targets = list(peers.table.values())
        else:
            peer = peers.table.get(self._calls.target(node))
            targets = [] if peer is None else [peer]
        await peers.drain(targets, node or "every node", timeout)

    # -- calls ------------------------------------------------------------------------

    async def call(self, dest: Any, request: Any, *, timeout: float | None = 5.0) -> Any:
        """``gen_server:call(Dest, Request)`` with a plain-reference tag.

        ``dest`` is a pid or ``(name, node)``. Raises Timeout, NodeDown.
        """
        node = as_atom(dest.node if isinstance(dest, Pid) else dest[1])
        full = self._calls.target(node)
        return await self._calls.exchange(
            node,
            full,
            dest if isinstance(dest, Pid) else (as_atom(dest[0]), full),
            encode(request)[1:],
            timeout=timeout,
            what=lambda: f"call to {dest}",
        )

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
        calls = self._calls
        full = calls.target(node)

        def what() -> str:
            return rpc_description(module, function, request_args, full)

        if not capture_output:
            if self.rpc_method == "erpc":
                encoded = calls.erpc_request(as_atom(module), as_atom(function), request_args)
                return await calls.exchange(
                    node, full, None, encoded, timeout=timeout, what=what, spawn=True
                )
            # {call, M, F, Args, IoPid}: only Args is encoded per call (see rex_request)
            encoded = calls.rex_request(module, function, request_args)
            reply = await calls.exchange(
                node, full, (REX, full), encoded, timeout=timeout, what=what
            )
            return interpret_reply(reply, full)
        call = (CALL, as_atom(module), as_atom(function), request_args)
        return await calls.capture(node, full, call, timeout=timeout, what=what)

    def prepare_rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: Sequence[Any],
        waiter: ThreadWaiter,
        *,
        timeout: float | None = 60.0,
    ) -> Prepared | None:
        """The blocking API's fast path for :meth:`rpc` (safe on any thread).

        Registers ``rpc(node, module, function, args, timeout=timeout)`` with its value or
        error delivered to ``waiter.set`` / ``waiter.fail`` instead of a coroutine, and
        returns the frame for the caller to send (see :meth:`Calls.prepare`). None when it
        cannot start this way (not connected yet, closing, ``rpc_method="erpc"``, a paused
        connection): use :meth:`rpc` then.
        """
        if self.rpc_method != "rex":
            return None
        return self._calls.prepare(node, module, function, list(args), waiter, timeout=timeout)

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
            name = as_atom(split_target(target)[0])
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
        self._calls.cast(node, module, function, args)


def _is_ip(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True
