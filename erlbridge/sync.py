"""The blocking API: the same names, parameters and exceptions as :mod:`erlbridge.asyncio`.

Every call is forwarded in one line to the asyncio core running in a daemon-thread loop
(:mod:`erlbridge._portal`), so it works in plain scripts and inside a running Jupyter loop::

    from erlbridge.sync import Node
    with Node("py@127.0.0.1", cookie="secret") as node:
        node.rpc("app@127.0.0.1", "erlang", "node", [])

A Node that is used without ``with``/``start()`` starts itself on first use.
"""

from __future__ import annotations

import logging
import os
import queue
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from erlbridge import asyncio as aio
from erlbridge._portal import Portal, default_portal
from erlbridge.asyncio import driver as aio_driver
from erlbridge.asyncio.driver import ReadinessReport, RunReport
from erlbridge.asyncio.driver.driver import CHUNK_BYTES
from erlbridge.asyncio.io_server import OutputCallback
from erlbridge.asyncio.node import NodeEvent
from erlbridge.asyncio.process import DownMessage, ExitMessage
from erlbridge.asyncio.rpc import RpcOutcome, RpcResult
from erlbridge.asyncio.tls import TLSOptions
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


class Process:
    """Blocking twin of :class:`erlbridge.asyncio.Process`."""

    def __init__(self, inner: aio.Process, portal: Portal) -> None:
        self._inner = inner
        self._portal = portal

    def __repr__(self) -> str:
        return repr(self._inner)

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

    def receive(
        self, match: Callable[[Any], bool] | None = None, timeout: float | None = None
    ) -> Any:
        return self._portal.call(self._inner.receive(match, timeout))

    def receive_nowait(self, match: Callable[[Any], bool] | None = None) -> Any:
        return self._portal.run(self._inner.receive_nowait, match)

    def send(self, dest: Any, message: Any) -> None:
        self._portal.run(self._inner.send, dest, message)

    def link(self, pid: Pid) -> None:
        self._portal.call(self._inner.link(pid))

    def unlink(self, pid: Pid) -> None:
        self._portal.call(self._inner.unlink(pid))

    def monitor(self, target: Any) -> Reference:
        return self._portal.run(self._inner.monitor, target)

    def demonitor(self, ref: Reference) -> None:
        self._portal.run(self._inner.demonitor, ref)

    def exit(self, pid: Pid, reason: Any) -> None:
        self._portal.run(self._inner.exit, pid, reason)

    def close(self, reason: Any = "normal") -> None:
        self._portal.run(self._inner.close, reason)

    def mailbox_size(self) -> int:
        return self._portal.run(self._inner.mailbox_size)

    def mailbox_bytes(self) -> int:
        return self._portal.run(self._inner.mailbox_bytes)


class Node:
    """Blocking twin of :class:`erlbridge.asyncio.Node` (same arguments)."""

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
        portal: Portal | None = None,
    ) -> None:
        self._portal = portal or default_portal()
        self._inner = aio.Node(
            name,
            cookie=cookie,
            hidden=hidden,
            epmd_port=epmd_port,
            start_epmd=start_epmd,
            net_ticktime=net_ticktime,
            listen=listen,
            listen_host=listen_host,
            listen_port=listen_port,
            max_message_size=max_message_size,
            max_mailbox=max_mailbox,
            max_mailbox_bytes=max_mailbox_bytes,
            max_pending_handshakes=max_pending_handshakes,
            setup_timeout=setup_timeout,
            connect_timeout=connect_timeout,
            rpc_method=rpc_method,
            output=output,
            logger=logger,
            tls=tls,
        )

    def __repr__(self) -> str:
        return repr(self._inner)

    def __enter__(self) -> Node:
        self.start()
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
        if not self._inner._started:
            self.start()

    def start(self) -> None:
        self._portal.call(self._inner.start())

    def close(self) -> None:
        self._portal.call(self._inner.close())

    def connect(self, node: str, *, timeout: float | None = None) -> Atom:
        self._ensure()
        return self._portal.call(self._inner.connect(node, timeout=timeout))

    def disconnect(self, node: str) -> None:
        self._ensure()
        self._portal.call(self._inner.disconnect(node))

    def ping(self, node: str, *, timeout: float | None = None) -> bool:
        self._ensure()
        return self._portal.call(self._inner.ping(node, timeout=timeout))

    def connected_nodes(self) -> list[Atom]:
        return self._portal.run(self._inner.connected_nodes)

    def rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
        capture_output: bool = False,
    ) -> Any:
        self._ensure()
        return self._portal.call(
            self._inner.rpc(
                node, module, function, args, timeout=timeout, capture_output=capture_output
            )
        )

    def multicall(
        self,
        nodes: Iterable[str],
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
        capture_output: bool = False,
    ) -> dict[Atom, RpcOutcome]:
        self._ensure()
        return self._portal.call(
            self._inner.multicall(
                nodes, module, function, args, timeout=timeout, capture_output=capture_output
            )
        )

    def call(self, dest: Any, request: Any, *, timeout: float | None = 5.0) -> Any:
        self._ensure()
        return self._portal.call(self._inner.call(dest, request, timeout=timeout))

    def cast(self, node: str, module: str, function: str, args: Sequence[Any] = ()) -> None:
        self._ensure()
        self._portal.run(self._inner.cast, node, module, function, args)

    def send(self, dest: Any, message: Any) -> None:
        self._ensure()
        self._portal.run(self._inner.send, dest, message)

    def drain(self, node: str | None = None, *, timeout: float | None = None) -> None:
        self._ensure()
        self._portal.call(self._inner.drain(node, timeout=timeout))

    def process(self, name: str | None = None, *, trap_exit: bool = False) -> Process:
        self._ensure()
        return Process(
            self._portal.run(self._inner.process, name, trap_exit=trap_exit), self._portal
        )

    def register(self, name: str, process: Process) -> None:
        self._portal.run(self._inner.register, name, process._inner)

    def unregister(self, name: str) -> None:
        self._portal.run(self._inner.unregister, name)

    def whereis(self, name: str) -> Pid | None:
        return self._portal.run(self._inner.whereis, name)

    def registered(self) -> list[Atom]:
        return self._portal.run(self._inner.registered)

    def make_ref(self) -> Reference:
        return self._portal.run(self._inner.make_ref)

    def alias(self, process: Process) -> Reference:
        return self._portal.run(self._inner.alias, process._inner)

    def unalias(self, ref: Reference) -> None:
        self._portal.run(self._inner.unalias, ref)

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


def discover(
    node: Node,
    seed: str,
    *,
    include_connected: bool = False,
    filter: str | Callable[[str], bool] | None = None,
    timeout: float = 10.0,
) -> list[str]:
    """Blocking twin of :func:`erlbridge.asyncio.driver.discover` (takes a blocking Node)."""
    node._ensure()
    return node._portal.call(
        aio_driver.discover(
            node._inner, seed, include_connected=include_connected, filter=filter,
            timeout=timeout,
        )
    )


class Driver:
    """Blocking twin of :class:`erlbridge.asyncio.driver.Driver` (same arguments).

    ``node`` is a blocking :class:`Node`; every operation runs on its portal's loop and
    returns the same reports. Interrupting a call (Ctrl-C) cancels the run in the loop,
    which releases barriers and closes the journal as the async driver does.
    """

    def __init__(
        self,
        node: Node,
        targets: Iterable[str],
        *,
        concurrency: int | None = None,
        node_timeout: float = 60.0,
        overall_timeout: float | None = None,
        stop_on_first_failure: bool = False,
        canary: bool = False,
        dry_run: bool = False,
        journal: str | os.PathLike[str] | None = None,
        resume: bool = False,
        barrier_timeout: float = 30.0,
        restart_timeout: float = 60.0,
        restart_grace: float = 3.0,
        push_root: str = "/tmp/erlbridge-push",
        logger: logging.Logger | None = None,
    ) -> None:
        node._ensure()
        self._portal = node._portal
        self._inner = aio_driver.Driver(
            node._inner,
            targets,
            concurrency=concurrency,
            node_timeout=node_timeout,
            overall_timeout=overall_timeout,
            stop_on_first_failure=stop_on_first_failure,
            canary=canary,
            dry_run=dry_run,
            journal=journal,
            resume=resume,
            barrier_timeout=barrier_timeout,
            restart_timeout=restart_timeout,
            restart_grace=restart_grace,
            push_root=push_root,
            logger=logger,
        )

    @property
    def targets(self) -> list[str]:
        return list(self._inner.targets)

    def readiness(self, script: Any = None) -> ReadinessReport:
        return self._portal.call(self._inner.readiness(script))

    def run_script(
        self,
        script: Any,
        *,
        push_code: Mapping[str, str | os.PathLike[str] | Mapping[str, bytes]] | None = None,
        lib_dirs: Mapping[str, str] | None = None,
        suspend_timeout: float | None = None,
        code_change_timeout: float | None = None,
        update_paths: bool = False,
        barrier_timeout: float | None = None,
        resume_on_failure: bool = True,
    ) -> RunReport:
        return self._portal.call(
            self._inner.run_script(
                script,
                push_code=push_code,
                lib_dirs=lib_dirs,
                suspend_timeout=suspend_timeout,
                code_change_timeout=code_change_timeout,
                update_paths=update_paths,
                barrier_timeout=barrier_timeout,
                resume_on_failure=resume_on_failure,
            )
        )

    def upgrade(
        self,
        release: str | os.PathLike[str],
        *,
        permanent: bool = True,
        purge: bool = False,
        suspend_timeout: float | None = None,
        code_change_timeout: float | None = None,
        update_paths: bool = False,
        error_action: str = "restart",
        chunk_bytes: int = CHUNK_BYTES,
        python_sync: Iterable[Any] | None = None,
    ) -> RunReport:
        return self._portal.call(
            self._inner.upgrade(
                release,
                permanent=permanent,
                purge=purge,
                suspend_timeout=suspend_timeout,
                code_change_timeout=code_change_timeout,
                update_paths=update_paths,
                error_action=error_action,
                chunk_bytes=chunk_bytes,
                python_sync=python_sync,
            )
        )

    def downgrade(self, vsn: str, **kwargs: Any) -> RunReport:
        return self._portal.call(self._inner.downgrade(vsn, **kwargs))

    def unpack(
        self, tarball: str | os.PathLike[str], *, chunk_bytes: int = CHUNK_BYTES
    ) -> RunReport:
        return self._portal.call(self._inner.unpack(tarball, chunk_bytes=chunk_bytes))

    def make_permanent(self, vsn: str) -> RunReport:
        return self._portal.call(self._inner.make_permanent(vsn))

    def remove_release(self, vsn: str) -> RunReport:
        return self._portal.call(self._inner.remove_release(vsn))

    def reboot_old_release(self, vsn: str) -> RunReport:
        return self._portal.call(self._inner.reboot_old_release(vsn))

    def which_releases(self) -> RunReport:
        return self._portal.call(self._inner.which_releases())

    def upgrade_app(
        self,
        app: str,
        new_dir: str | None = None,
        *,
        push_code: str | os.PathLike[str] | Mapping[str, bytes] | None = None,
    ) -> RunReport:
        return self._portal.call(self._inner.upgrade_app(app, new_dir, push_code=push_code))
