"""Barrier processes on the Python node for direct-mode ``sync_nodes`` (I/O via the Node).

One process per target is registered under its own name (see
:func:`~erlbridge.driver.script_rewrite.rewrite_barriers`). A target arrives with
``gen_server:call({Name, PyNode}, {arrive, Id, Target, Nodes}, TimeoutMs)``; the
decisions come from the pure :class:`~erlbridge.driver.barrier_book.BarrierBook`:

* release ok: reply ``{Tag, ok}`` — to the alias ``Mref`` when ``Tag = [alias | Mref]``
  (OTP 24+ ``gen:call``), else to the caller pid;
* release with an error: the target's barrier process exits with the reason (e.g.
  ``{barrier_node_failed, Id, Node}``); the caller's ``gen_server:call`` monitors it, so it
  exits with that reason and ``eval_script`` aborts. If that signal were lost, the
  target-side call timeout (= barrier timeout) still ends the wait.

Cancellation safety: leaving the ``async with`` block (normally, by error or by
cancellation) releases every waiter with ``barrier_cancelled`` and closes all processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Hashable, Iterable
from typing import Any

from erlbridge.driver.barrier_book import BarrierBook, Release
from erlbridge.driver.node_api import DriverNode, DriverProcess
from erlbridge.driver.rendering import term_text
from erlbridge.term import Atom, ImproperList

__all__ = ["BarrierService"]

# The logger keeps the name it had under erlbridge.asyncio: logging configs name it.
logger = logging.getLogger("erlbridge.asyncio.driver.barriers")


def _reason_term(reason: tuple[object, ...] | None) -> Any:
    if reason is None:
        return Atom("barrier_error")
    head, *rest = reason
    conv: list[Any] = [Atom(str(head))]
    for x in rest:
        if isinstance(x, tuple):
            conv.append([Atom(str(n)) for n in x])  # missing node names
        elif isinstance(x, str) and "@" in x:
            conv.append(Atom(x))
        else:
            conv.append(x)
    return tuple(conv)


class BarrierService:
    """Serves the barriers of one direct-mode run for ``targets`` (see module docstring)."""

    def __init__(
        self, node: DriverNode, targets: Iterable[str], run_id: str, *, timeout: float
    ) -> None:
        self.node = node
        self.targets = list(targets)
        self.timeout = timeout
        self.run_id = run_id
        self.names = self._free_names(node, self.targets)
        self.book = BarrierBook.create(self.targets, str(node.name))
        self._procs: dict[str, DriverProcess] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._callers: dict[tuple[str, Hashable], tuple[Any, Any]] = {}
        self._wake = asyncio.Event()
        self.log: list[tuple[str, Hashable, bool, Any]] = []  # (node, id, ok, reason) decisions

    @staticmethod
    def _free_names(node: DriverNode, targets: list[str]) -> dict[str, str]:
        # Barrier names become atoms on every target, so they come from a small reused
        # pool (slot x target index) rather than from the run id: a run id per name would
        # leak atoms into the targets' atom tables run after run. The lowest slot whose
        # names are all free on our node serves concurrent runs of one Python node.
        slot = 0
        while True:
            names = {t: f"erlbridge_barrier_{slot}_{i}" for i, t in enumerate(targets)}
            if all(node.whereis(n) is None for n in names.values()):
                return names
            slot += 1

    def name_for(self, target: str) -> str:
        return self.names[target]

    async def __aenter__(self) -> BarrierService:
        for t in self.targets:
            p = self.node.process(self.names[t])
            self._procs[t] = p
            self._tasks.append(asyncio.create_task(self._serve(t, p), name=f"barrier {t}"))
        self._tasks.append(asyncio.create_task(self._expiry(), name="barrier expiry"))
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._act(self.book.cancel())
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        for t, p in self._procs.items():
            with contextlib.suppress(Exception):
                p.close(Atom("normal"))
            logger.debug("barrier process for %s closed", t)

    def node_gone(self, target: str, reason: Any) -> None:
        """``target``'s run ended (ok or not): waiters that need it are released."""
        self._act(self.book.node_gone(target, reason, now=self._now()))

    @staticmethod
    def _now() -> float:
        return asyncio.get_running_loop().time()

    async def _serve(self, target: str, proc: DriverProcess) -> None:
        while True:
            msg = await proc.receive()
            req = self._parse_call(msg)
            if req is None:
                logger.warning("barrier for %s ignored %s", target, term_text(msg))
                continue
            frm, barrier_id, node, nodes = req
            node_name = node.name if isinstance(node, Atom) else str(node)
            names = [n.name if isinstance(n, Atom) else str(n) for n in nodes]
            self._callers[(node_name, barrier_id)] = frm
            logger.info("%s arrived at barrier %s", node_name, term_text(barrier_id))
            self._act(
                self.book.arrive(
                    barrier_id, node_name, names, now=self._now(), timeout=self.timeout
                )
            )
            self._wake.set()

    @staticmethod
    def _parse_call(msg: Any) -> tuple[tuple[Any, Any], Hashable, Any, list[Any]] | None:
        # {'$gen_call', {Pid, Tag}, {arrive, Id, Node, Nodes}}
        if not (isinstance(msg, tuple) and len(msg) == 3 and msg[0] == "$gen_call"):
            return None
        frm, req = msg[1], msg[2]
        if not (
            isinstance(frm, tuple)
            and len(frm) == 2
            and isinstance(req, tuple)
            and len(req) == 4
            and req[0] == "arrive"
        ):
            return None
        return frm, req[1], req[2], list(req[3])

    async def _expiry(self) -> None:
        while True:
            nxt = self.book.next_deadline()
            self._wake.clear()
            if nxt is None:
                await self._wake.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.0, nxt - self._now()))
            self._act(self.book.expire(self._now()))

    def _act(self, releases: list[Release]) -> None:
        for r in releases:
            self.log.append((r.node, r.barrier, r.ok, r.reason))
            frm = self._callers.pop((r.node, r.barrier), None)
            proc = self._procs.get(r.node)
            if r.ok:
                if frm is not None and proc is not None:
                    pid, tag = frm
                    dest = (
                        tag.tail
                        if (isinstance(tag, ImproperList) and tag.elements[0] == "alias")
                        else pid
                    )
                    proc.send(dest, (tag, Atom("ok")))
                    logger.info("released %s at barrier %s", r.node, term_text(r.barrier))
                continue
            logger.warning(
                "failing %s at barrier %s: %s",
                r.node,
                term_text(r.barrier),
                term_text(_reason_term(r.reason)),
            )
            if proc is not None:
                # The waiter's gen_server:call monitors this process: its exit ends the call.
                with contextlib.suppress(Exception):
                    proc.close(_reason_term(r.reason))
                self._procs.pop(r.node, None)
