"""The node's local addresses: pids, registered names, aliases, and the counters that mint
pids and references. Also the count of messages nobody could receive."""

from __future__ import annotations

import itertools
import secrets
from typing import Any

from erlbridge.asyncio._atoms import as_atom
from erlbridge.asyncio.interface import HasLogger
from erlbridge.asyncio.process import Endpoint, Process
from erlbridge.exceptions import InvalidState, bounded_text
from erlbridge.term import Atom, Pid, Reference

__all__ = ["MAX_ID", "Bounded", "Registry"]

MAX_ID = (1 << 32) - 1


class Bounded:
    """A log argument that renders a peer's value with bounded_text, only when a handler
    formats the record (a disabled DEBUG costs nothing)."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __str__(self) -> str:
        return bounded_text(self.value)


class Registry:
    """Who owns each local pid, name and alias; pid and reference allocation.

    ``creation`` is set when the node starts. The tables and counters are plain public
    attributes so the hot paths (incoming messages, rpc calls) read them without a call.
    """

    __slots__ = (
        "aliases",
        "creation",
        "dropped",
        "endpoints",
        "name",
        "names",
        "owner",
        "pid_ids",
        "ref_ids",
        "ref_salt",
    )

    def __init__(self, name: Atom, owner: HasLogger) -> None:
        self.name = name
        #: the node, for its logger
        self.owner = owner
        self.creation = 0
        self.endpoints: dict[Pid, Endpoint] = {}
        self.names: dict[Atom, Endpoint] = {}
        self.aliases: dict[Reference, Endpoint] = {}
        self.pid_ids = itertools.count(1)
        #: reference ids: ``n`` gives the words ``(n & 0x3FFFF, (n >> 18) & MAX_ID, ref_salt)``
        self.ref_ids = itertools.count(1)
        self.ref_salt = secrets.randbits(32)
        #: messages dropped because nobody could receive them
        self.dropped = 0

    # -- identifiers -------------------------------------------------------------------

    def new_pid(self) -> Pid:
        n = next(self.pid_ids)
        return Pid(self.name, n & 0x7FFF_FFFF, (n >> 31) & 0x1FFF, self.creation)

    def make_ref(self) -> Reference:
        n = next(self.ref_ids)
        return Reference(self.name, self.creation, (n & 0x3FFFF, (n >> 18) & MAX_ID, self.ref_salt))

    # -- endpoints, names, aliases ------------------------------------------------------

    def add(self, endpoint: Endpoint) -> None:
        self.endpoints[endpoint.pid] = endpoint

    def remove(self, pid: Pid) -> None:
        self.endpoints.pop(pid, None)

    def forget(self, proc: Process) -> None:
        """An exited process: its pid, name and aliases reach nobody any more."""
        self.endpoints.pop(proc.pid, None)
        if proc.name is not None and self.names.get(proc.name) is proc:
            del self.names[proc.name]
        for ref in [r for r, e in self.aliases.items() if e is proc]:
            del self.aliases[ref]

    def register(self, name: str, process: Process) -> None:
        key = as_atom(name)
        current = self.names.get(key)
        if current is not None and current is not process:
            raise InvalidState(f"name {name!r} is already registered")
        if not process.alive:
            raise InvalidState(f"process {process.pid} has exited")
        self.names[key] = process
        process.name = key

    def unregister(self, name: str) -> None:
        endpoint = self.names.pop(as_atom(name), None)
        if isinstance(endpoint, Process) and endpoint.name == name:
            endpoint.name = None

    def whereis(self, name: str) -> Pid | None:
        endpoint = self.names.get(as_atom(name))
        return endpoint.pid if endpoint is not None else None

    def alias(self, process: Process) -> Reference:
        ref = self.make_ref()
        self.aliases[ref] = process
        return ref

    def lookup(self, target: Any) -> Endpoint | None:
        """The endpoint of a local pid or registered name (None if there is none)."""
        return self.endpoints.get(target) if isinstance(target, Pid) else self.names.get(target)

    # -- undeliverable -------------------------------------------------------------------

    def drop(self, to: Any, message: Any, why: str) -> None:
        self.dropped += 1
        self.owner.log.debug("dropped message to %s (%s)", Bounded(to), why)

    def count_dropped(self, count: int = 1) -> None:
        self.dropped += count
