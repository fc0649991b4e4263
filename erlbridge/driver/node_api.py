"""What the driver needs of a node: the methods it calls, as ``typing.Protocol`` classes.

The driver is typed against :class:`DriverNode`, not against
:class:`erlbridge.asyncio.Node`, so it does not depend on the node's implementation
(tests/driver/test_driver_node_api.py checks that ``Node`` satisfies it). Signatures
are the node's own.

* rpc and connections: :meth:`~DriverNode.rpc`, :meth:`~DriverNode.connect`,
  :meth:`~DriverNode.ping`, :meth:`~DriverNode.connected_nodes` (release mode watches a
  target restart);
* Python-side processes (direct-mode barriers, the release-mode ``sync_nodes``
  participant): :meth:`~DriverNode.process`, :meth:`~DriverNode.whereis`, and of each
  process :class:`DriverProcess` ``receive``, ``send`` and ``close``;
* :attr:`~DriverNode.name`, the Python node's own name (barriers wait for every node
  but this one).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from erlbridge.term import Atom, Pid

__all__ = ["DriverNode", "DriverProcess"]


class DriverProcess(Protocol):
    """A Python-side process on the node (:class:`erlbridge.asyncio.Process`)."""

    async def receive(
        self, match: Callable[[Any], bool] | None = None, timeout: float | None = None
    ) -> Any: ...

    def send(self, dest: Any, message: Any) -> None: ...

    def close(self, reason: Any = "normal") -> None: ...


class DriverNode(Protocol):
    """The node methods the driver calls (:class:`erlbridge.asyncio.Node` has them)."""

    @property
    def name(self) -> Atom: ...

    def process(self, name: str | None = None, *, trap_exit: bool = False) -> DriverProcess: ...

    def whereis(self, name: str) -> Pid | None: ...

    def connected_nodes(self) -> list[Atom]: ...

    async def connect(self, node: str, *, timeout: float | None = None) -> Atom: ...

    async def ping(self, node: str, *, timeout: float | None = None) -> bool: ...

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
