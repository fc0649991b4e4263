"""The blocking API: the same names, parameters and exceptions as :mod:`erlbridge.asyncio`.

Every method is derived from its asyncio twin (:mod:`erlbridge._blocking`): same
parameters, defaults, annotations and docstring, forwarded in one line to the asyncio core
running on a loop in its own thread (:mod:`erlbridge._portal`), so it works in plain
scripts and inside a running Jupyter loop::

    from erlbridge.sync import Node
    with Node("py@127.0.0.1", cookie="secret") as node:
        node.rpc("app@127.0.0.1", "erlang", "node", [])

A Node that is used without ``with``/``start()`` starts itself on first use. The loop
thread runs while a blocking Node is open: the first one starts it, closing the last one
stops it.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from typing import Any

from erlbridge import asyncio as aio
from erlbridge import driver as aio_driver
from erlbridge._blocking import (
    FALLBACK,
    Twin,
    adapts,
    awaits,
    awaits_with,
    init_from,
    on_loop,
)
from erlbridge._portal import Portal, shared_portal
from erlbridge.asyncio import direct
from erlbridge.asyncio.node import NodeEvent
from erlbridge.asyncio.process import DownMessage, ExitMessage
from erlbridge.asyncio.rpc import RpcOutcome, RpcResult
from erlbridge.driver import ReadinessReport, RunReport  # noqa: F401 (importable here)
from erlbridge.exceptions import InvalidState
from erlbridge.term import Atom, Pid, Reference

__all__ = [
    "DownMessage",
    "Driver",
    "ExitMessage",
    "Node",
    "NodeEvent",
    "Process",
    "RpcOutcome",
    "RpcResult",
    "discover",
]


class Process(Twin):
    """Blocking twin of :class:`erlbridge.asyncio.Process`."""

    _inner: aio.Process

    def __init__(self, inner: aio.Process, portal: Portal) -> None:
        self._inner = inner
        self._portal = portal

    @property
    def pid(self) -> Pid:
        return self._inner.pid

    @property
    def name(self) -> Atom | None:
        return self._inner.name

    @property
    def alive(self) -> bool:
        return self._inner.alive

    @property
    def exit_reason(self) -> Any:
        return self._inner.exit_reason

    receive = awaits(aio.Process.receive)
    receive_nowait = on_loop(aio.Process.receive_nowait)
    send = on_loop(aio.Process.send)
    link = awaits(aio.Process.link)
    unlink = awaits(aio.Process.unlink)
    monitor = on_loop(aio.Process.monitor)
    demonitor = on_loop(aio.Process.demonitor)
    exit = on_loop(aio.Process.exit)
    close = on_loop(aio.Process.close)
    mailbox_size = on_loop(aio.Process.mailbox_size)
    mailbox_bytes = on_loop(aio.Process.mailbox_bytes)


def _blocking_process(node: Node, inner: aio.Process) -> Process:
    return Process(inner, node._portal)


def _rpc_fast(node: Node, a: dict[str, Any]) -> Any:
    """``Node.rpc`` without a task: this thread sends the request and reads the reply
    itself on a socket the loop lends it (:mod:`erlbridge.asyncio.direct`); FALLBACK when it
    cannot start that way (not connected yet, output capture, erpc): then the coroutine
    runs."""
    if a["capture_output"] or type(a["args"]) not in (list, tuple):
        return FALLBACK  # (any other iterable is read once, by the coroutine path)
    node._portal.check_thread()
    waiter = direct.DirectWaiter()
    prep = node._inner.prepare_rpc(
        a["node"], a["module"], a["function"], a["args"], waiter, timeout=a["timeout"]
    )
    if prep is None:
        return FALLBACK
    return direct.call(prep, waiter, a["timeout"])


class Node(Twin):
    """Blocking twin of :class:`erlbridge.asyncio.Node` (same arguments).

    ``portal``: the :class:`~erlbridge._portal.Portal` whose loop runs the node (default:
    one shared by every blocking Node). The node holds it from here until :meth:`close`.
    """

    _inner: aio.Node

    @init_from(aio.Node.__init__)
    def __init__(self, *args: Any, portal: Portal | None = None, **kwargs: Any) -> None:
        self._inner = aio.Node(*args, **kwargs)
        self._portal = portal or shared_portal()
        self._portal.acquire()
        self._started = False  # our own flag: checked before every call, so kept cheap
        self._closed = False

    def __enter__(self) -> Node:
        try:
            self.start()
        except BaseException:
            self.close()  # `with` will not: let go of the portal
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def asyncio_node(self) -> aio.Node:
        """The asyncio node behind this facade (use it only from the portal's loop)."""
        return self._inner

    @property
    def name(self) -> Atom:
        return self._inner.name

    @property
    def creation(self) -> int:
        return self._inner.creation

    @property
    def port(self) -> int | None:
        return self._inner.port

    @property
    def dropped(self) -> int:
        return self._inner.dropped

    def _ensure(self) -> None:
        if not self._started:
            if self._closed:
                raise InvalidState(f"node {self.name} is closed")
            self.start()

    @adapts(aio.Node.start)
    def start(self) -> None:
        self._portal.call(self._inner.start())
        self._started = True

    @adapts(aio.Node.close)
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._started = False
        try:
            self._portal.call(self._inner.close())
        finally:
            self._portal.release()  # the last open Node stops the loop thread

    connect = awaits(aio.Node.connect, start=True)
    disconnect = awaits(aio.Node.disconnect, start=True)
    ping = awaits(aio.Node.ping, start=True)
    connected_nodes = on_loop(aio.Node.connected_nodes)
    rpc = awaits(aio.Node.rpc, start=True, fast=_rpc_fast)
    multicall = awaits(aio.Node.multicall, start=True)
    call = awaits(aio.Node.call, start=True)
    cast = on_loop(aio.Node.cast, start=True)
    send = on_loop(aio.Node.send, start=True)
    drain = awaits(aio.Node.drain, start=True)
    process = on_loop(aio.Node.process, start=True, result=_blocking_process)
    unregister = on_loop(aio.Node.unregister)
    whereis = on_loop(aio.Node.whereis)
    registered = on_loop(aio.Node.registered)
    make_ref = on_loop(aio.Node.make_ref)
    unalias = on_loop(aio.Node.unalias)

    @adapts(aio.Node.register)
    def register(self, name: str, process: Process) -> None:
        self._portal.run(self._inner.register, name, process._inner)

    @adapts(aio.Node.alias)
    def alias(self, process: Process) -> Reference:
        return self._portal.run(self._inner.alias, process._inner)

    @adapts(aio.Node.monitor_nodes)
    def monitor_nodes(
        self, target: Callable[[NodeEvent], Any] | queue.Queue[NodeEvent]
    ) -> Callable[[], None]:
        """Like the async one; ``target`` is a callback (run in the loop thread) or a
        thread-safe :class:`queue.Queue`."""
        callback: Callable[[NodeEvent], Any] = (
            target.put if isinstance(target, queue.Queue) else target
        )
        cancel = self._portal.run(self._inner.monitor_nodes, callback)
        return lambda: self._portal.run(cancel)


discover = awaits_with(aio_driver.discover, Node)


class Driver(Twin):
    """Blocking twin of :class:`erlbridge.driver.Driver` (same arguments).

    ``node`` is a blocking :class:`Node`; every operation runs on its portal's loop and
    returns the same reports. Interrupting a call (Ctrl-C) cancels the run in the loop,
    which releases barriers and closes the journal as the async driver does.
    """

    _inner: aio_driver.Driver

    @init_from(aio_driver.Driver.__init__)
    def __init__(self, node: Node, *args: Any, **kwargs: Any) -> None:
        node._ensure()
        self._portal = node._portal
        self._inner = aio_driver.Driver(node._inner, *args, **kwargs)

    @property
    def targets(self) -> list[str]:
        return list(self._inner.targets)

    readiness = awaits(aio_driver.Driver.readiness)
    check_plan = awaits(aio_driver.Driver.check_plan)
    run_script = awaits(aio_driver.Driver.run_script)
    upgrade = awaits(aio_driver.Driver.upgrade)
    # its **kwargs would let a caller pass ``self=`` by keyword, which mypy refuses to bind
    downgrade = awaits(aio_driver.Driver.downgrade)  # type: ignore[arg-type]
    unpack = awaits(aio_driver.Driver.unpack)
    make_permanent = awaits(aio_driver.Driver.make_permanent)
    remove_release = awaits(aio_driver.Driver.remove_release)
    reboot_old_release = awaits(aio_driver.Driver.reboot_old_release)
    which_releases = awaits(aio_driver.Driver.which_releases)
    upgrade_app = awaits(aio_driver.Driver.upgrade_app)
