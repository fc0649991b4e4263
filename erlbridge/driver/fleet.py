"""What every :class:`~erlbridge.driver.driver.Driver` operation needs of its targets (I/O).

A :class:`Fleet` is the driver's settings at the moment an operation starts: the node,
the targets, the policy, the caller; it connects to a target, asks the targets whether a
directory exists and runs an operation's two phases (:class:`~erlbridge.driver.run.Run`).
The operations themselves are in :mod:`.release_run` (release mode) and
:mod:`.direct_run` (direct mode).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from erlbridge.driver.node_api import DriverNode
from erlbridge.driver.policy import Policy
from erlbridge.driver.release_ops import ReleaseOps
from erlbridge.driver.remote_calls import Caller, StepFailed, charlist
from erlbridge.driver.run import Run, UnitFn, now
from erlbridge.driver.run_report import RunReport
from erlbridge.driver.script_rewrite import name_of

__all__ = ["Fleet", "ms", "node_name"]


@dataclass(frozen=True, slots=True)
class Fleet:
    """The targets of one operation and the settings it runs with (see :class:`Driver`
    for their meaning)."""

    node: DriverNode
    targets: list[str]
    policy: Policy
    caller: Caller
    log: logging.Logger
    dry_run: bool
    journal_path: str | os.PathLike[str] | None
    resume: bool
    barrier_timeout: float
    restart_timeout: float
    restart_grace: float
    push_root: str

    @property
    def me(self) -> str:
        """The Python node's name."""
        return node_name(self.node)

    def release_ops(self) -> ReleaseOps:
        """Release-mode calls with this caller, logger and restart timeouts."""
        return ReleaseOps(
            self.caller,
            self.log,
            restart_timeout=self.restart_timeout,
            restart_grace=self.restart_grace,
        )

    async def connect(self, target: str, deadline: float) -> None:
        """Connect to ``target`` by ``deadline`` if possible; a failure shows in the
        step that follows."""
        with contextlib.suppress(Exception):
            async with asyncio.timeout_at(deadline):
                await self.node.connect(target)

    async def dirs_present(self, path: str) -> dict[str, bool]:
        """``{target: is path a directory there}``; True where it cannot be asked (the
        caller then leaves the directory alone)."""
        deadline = now() + self.policy.node_timeout

        async def one(n: str) -> bool:
            await self.connect(n, deadline)
            try:
                found = await self.caller.rpc(
                    n, "filelib", "is_dir", [charlist(path)], deadline=deadline
                )
            except StepFailed:
                return True
            return found is not False

        found = await asyncio.gather(*(one(n) for n in self.targets))
        return dict(zip(self.targets, found, strict=True))

    async def two_phase(
        self,
        op: str,
        prep: Sequence[str],
        prep_unit: UnitFn | None,
        exe: Sequence[str],
        exe_unit: UnitFn,
        *,
        extra: Mapping[str, Any] | None = None,
        around_exec: Callable[[Run], contextlib.AbstractAsyncContextManager[Any]] | None = None,
    ) -> RunReport:
        """Start a :class:`Run` of ``op`` with these settings and run its two phases
        (see :meth:`Run.two_phase`)."""
        run = Run.start(
            op,
            targets=self.targets,
            policy=self.policy,
            dry_run=self.dry_run,
            journal_path=self.journal_path,
            resume=self.resume,
            log=self.log,
        )
        return await run.two_phase(
            prep, prep_unit, exe, exe_unit, extra=extra, around_exec=around_exec
        )


def node_name(node: object) -> str:
    """The name of a Node (its ``name`` or ``node_name`` attribute) as a string."""
    for attr in ("name", "node_name"):
        v = getattr(node, attr, None)
        if v:
            return name_of(v)
    raise TypeError("the Node has no name attribute")


def ms(seconds: float) -> int:
    """Seconds as Erlang milliseconds, at least 1."""
    return max(1, round(seconds * 1000))
