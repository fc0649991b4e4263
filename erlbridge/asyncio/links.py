"""Links, monitors and exit signals, in both directions.

Each endpoint holds its own ``links``, ``monitors`` and ``monitored_by``; this module is the
one place that changes them: for a local process (link, monitor, exit/2), for an incoming
signal (LINK, UNLINK_ID, EXIT, MONITOR_P, ...), and on cleanup when a process exits
(:meth:`Links.cleanup_process`) or a node goes down (:meth:`Links.cleanup_node`).
"""

from __future__ import annotations

import itertools
from typing import Any

from erlbridge.asyncio._atoms import as_atom
from erlbridge.asyncio.interface import Wire
from erlbridge.asyncio.process import Process
from erlbridge.asyncio.registry import Registry
from erlbridge.exceptions import bounded_text
from erlbridge.protocol import control as c
from erlbridge.term import Atom, Pid, Reference

__all__ = ["Links"]

NOPROC = Atom("noproc")
NOCONNECTION = Atom("noconnection")


class Links:
    """The links/monitors table. ``wire`` (the peer table) is set by the node once both
    exist: the peer table, above this one, calls :meth:`cleanup_node`."""

    __slots__ = ("_unlink_ids", "registry", "wire")

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self.wire: Wire | None = None
        self._unlink_ids = itertools.count(1)

    def _wire(self) -> Wire:
        assert self.wire is not None, "links table used before the node wired it"
        return self.wire

    # -- from a local process -------------------------------------------------------------

    async def link(self, proc: Process, pid: Pid) -> None:
        if pid.node == self.registry.name:
            other = self.registry.endpoints.get(pid)
            if other is None or (isinstance(other, Process) and not other.alive):
                if proc.trap_exit:
                    proc.exit_signal(pid, NOPROC, linked=False)
                else:
                    proc.close(NOPROC)
                return
            proc.links.add(pid)
            other.links.add(proc.pid)
            return
        wire = self._wire()
        await wire.connect_peer(pid.node)
        proc.links.add(pid)
        wire.send_control(pid.node, c.Link(proc.pid, pid))

    async def unlink(self, proc: Process, pid: Pid) -> None:
        if pid not in proc.links:
            return
        proc.links.discard(pid)
        if pid.node == self.registry.name:
            other = self.registry.endpoints.get(pid)
            if other is not None:
                other.links.discard(proc.pid)
            return
        self._wire().send_control(pid.node, c.UnlinkId(next(self._unlink_ids), proc.pid, pid))

    def monitor(self, proc: Process, target: Any) -> Reference:
        registry = self.registry
        ref = registry.make_ref()
        if isinstance(target, tuple) and len(target) == 2:
            name, node = as_atom(target[0]), as_atom(target[1])
            if node == registry.name:
                target = name
            else:
                proc.monitors[ref] = (name, node)
                self._wire().send_control(node, c.MonitorP(proc.pid, name, ref))
                return ref
        if isinstance(target, str):
            endpoint = registry.names.get(as_atom(target))
            if endpoint is None:
                proc.monitors[ref] = (as_atom(target), registry.name)
                proc.down(ref, (as_atom(target), registry.name), NOPROC)
            else:
                proc.monitors[ref] = (endpoint.pid, registry.name)
                endpoint.monitored_by[ref] = proc.pid
            return ref
        if isinstance(target, Pid):
            proc.monitors[ref] = (target, target.node)
            if target.node == registry.name:
                endpoint = registry.endpoints.get(target)
                if endpoint is None:
                    proc.down(ref, target, NOPROC)
                else:
                    endpoint.monitored_by[ref] = proc.pid
            else:
                self._wire().send_control(target.node, c.MonitorP(proc.pid, target, ref))
            return ref
        raise TypeError(f"cannot monitor {bounded_text(target)}")

    def demonitor(self, proc: Process, ref: Reference) -> None:
        entry = proc.monitors.pop(ref, None)
        if entry is None:
            return
        target, node = entry
        if node == self.registry.name:
            endpoint = self.registry.lookup(target)
            if endpoint is not None:
                endpoint.monitored_by.pop(ref, None)
            return
        wire = self._wire()
        if wire.has_peer(node):
            wire.send_control(node, c.DemonitorP(proc.pid, target, ref))

    def exit2(self, proc: Process, pid: Pid, reason: Any) -> None:
        if pid.node == self.registry.name:
            endpoint = self.registry.endpoints.get(pid)
            if endpoint is not None:
                endpoint.exit_signal(proc.pid, reason, linked=False)
            return
        self._wire().send_control(pid.node, c.Exit2(proc.pid, pid, reason))

    # -- cleanup ------------------------------------------------------------------------

    def cleanup_process(self, proc: Process, reason: Any) -> None:
        """``proc`` exited with ``reason``: forget it, signal its links and monitors."""
        registry = self.registry
        registry.forget(proc)
        here = registry.name
        endpoints = registry.endpoints
        wire = self._wire()
        for pid in list(proc.links):
            if pid.node == here:
                other = endpoints.get(pid)
                if other is not None:
                    other.exit_signal(proc.pid, reason, linked=True)
            elif wire.has_peer(pid.node):
                wire.send_control(pid.node, c.Exit(proc.pid, pid, reason))
        proc.links.clear()
        for ref, pid in list(proc.monitored_by.items()):
            if pid.node == here:
                other = endpoints.get(pid)
                if other is not None:
                    other.down(ref, proc.pid, reason)
            elif wire.has_peer(pid.node):
                wire.send_control(pid.node, c.MonitorPExit(proc.pid, pid, ref, reason))
        proc.monitored_by.clear()
        for ref in list(proc.monitors):
            self.demonitor(proc, ref)

    def cleanup_node(self, node: Atom) -> None:
        """``node`` went down: links to it exit (``noconnection``), monitors of it fire,
        its monitors of ours are forgotten."""
        for endpoint in list(self.registry.endpoints.values()):
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

    # -- from a remote process (the sender was checked by the dispatcher) -------------------

    def on_link(self, msg: c.Link) -> None:
        endpoint = self.registry.endpoints.get(msg.to_pid)
        if endpoint is None:
            self._wire().send_control(msg.from_pid.node, c.Exit(msg.to_pid, msg.from_pid, NOPROC))
        else:
            endpoint.links.add(msg.from_pid)

    def on_unlink(self, msg: c.Unlink | c.UnlinkId) -> None:
        endpoint = self.registry.endpoints.get(msg.to_pid)
        if endpoint is not None:
            endpoint.links.discard(msg.from_pid)
        if isinstance(msg, c.UnlinkId):
            self._wire().send_control(
                msg.from_pid.node, c.UnlinkIdAck(msg.id, msg.to_pid, msg.from_pid)
            )

    def on_exit(self, to_pid: Any, sender: Any, reason: Any, *, linked: bool) -> None:
        endpoint = self.registry.endpoints.get(to_pid)
        if endpoint is not None:
            endpoint.exit_signal(sender, reason, linked=linked)

    def on_monitor(self, msg: c.MonitorP) -> None:
        target = msg.to_proc
        endpoint = self.registry.lookup(target)
        if endpoint is None or (isinstance(endpoint, Process) and not endpoint.alive):
            self._wire().send_control(
                msg.from_pid.node, c.MonitorPExit(target, msg.from_pid, msg.ref, NOPROC)
            )
        else:
            endpoint.monitored_by[msg.ref] = msg.from_pid

    def on_demonitor(self, msg: c.DemonitorP) -> None:
        endpoint = self.registry.lookup(msg.to_proc)
        if endpoint is not None:
            endpoint.monitored_by.pop(msg.ref, None)

    def on_monitor_exit(self, msg: c.MonitorPExit, peer_node: str | None) -> None:
        endpoint = self.registry.endpoints.get(msg.to_pid)
        if endpoint is None:
            return
        obj: Any = msg.from_proc
        if isinstance(obj, str):
            obj = (obj, as_atom(peer_node or ""))
        endpoint.down(msg.ref, obj, msg.reason)
