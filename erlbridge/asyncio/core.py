"""What endpoints are given instead of the Node: :class:`Core`, the node's
:class:`~erlbridge.asyncio.interface.NodeCore`. Each request goes to the part that owns the
state it changes (docs/internals/architecture.md#the-node)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from erlbridge.asyncio.links import Links
from erlbridge.asyncio.peers import Peers
from erlbridge.asyncio.process import Process
from erlbridge.asyncio.registry import Registry
from erlbridge.term import Atom, Pid, Reference

__all__ = ["Core", "CoreOwner"]


class CoreOwner(Protocol):
    """The node as the core reads it: its name, mailbox bounds (read at each use) and rpc."""

    name: Atom
    max_mailbox: int | None
    max_mailbox_bytes: int | None

    async def rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
        capture_output: bool = False,
    ) -> Any: ...


class Core:
    """The :class:`~erlbridge.asyncio.interface.NodeCore` endpoints receive: each request
    goes to the part that owns the state it changes."""

    __slots__ = ("_links", "_node", "_peers", "_registry", "name")

    def __init__(self, node: CoreOwner, registry: Registry, links: Links, peers: Peers) -> None:
        self.name = node.name
        self._node = node
        self._registry = registry
        self._links = links
        self._peers = peers

    def mailbox_limits(self) -> tuple[int | None, int | None]:
        node = self._node
        return node.max_mailbox, node.max_mailbox_bytes

    def route(self, from_pid: Pid, dest: Any, message: Any) -> None:
        self._peers.route(from_pid, dest, message)

    def drop(self, to: Any, message: Any, why: str) -> None:
        self._registry.drop(to, message, why)

    def count_dropped(self) -> None:
        self._registry.dropped += 1

    async def link(self, proc: Process, pid: Pid) -> None:
        await self._links.link(proc, pid)

    async def unlink(self, proc: Process, pid: Pid) -> None:
        await self._links.unlink(proc, pid)

    def monitor(self, proc: Process, target: Any) -> Reference:
        return self._links.monitor(proc, target)

    def demonitor(self, proc: Process, ref: Reference) -> None:
        self._links.demonitor(proc, ref)

    def exit2(self, proc: Process, pid: Pid, reason: Any) -> None:
        self._links.exit2(proc, pid, reason)

    def process_exited(self, proc: Process, reason: Any) -> None:
        self._links.cleanup_process(proc, reason)

    async def rpc(
        self,
        node: str,
        module: str,
        function: str,
        args: Sequence[Any] = (),
        *,
        timeout: float | None = 60.0,
    ) -> Any:
        return await self._node.rpc(node, module, function, args, timeout=timeout)
