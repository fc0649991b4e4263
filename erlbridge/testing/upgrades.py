"""Release upgrades of a test cluster through erlbridge's driver (L4 test support).

:func:`run_release_op` joins the cluster as a hidden node, runs
:meth:`erlbridge.driver.Driver.upgrade` (a tarball path) or ``downgrade`` (a
version) on every node at once, and returns the :class:`RunReport`. It runs its own event
loop in a worker thread, so it works from plain and from asyncio tests alike.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from erlbridge.asyncio import Node
from erlbridge.driver import Driver, RunReport

if TYPE_CHECKING:
    from erlbridge.testing.cluster import Cluster

__all__ = ["run_release_op"]


async def _run(cluster: Cluster, op: str, release: str | Path, journal: Path,
               options: dict[str, Any]) -> RunReport:
    name = f"erlbridge-{op}-{secrets.token_hex(3)}@{cluster.client_host()}"
    async with Node(name, cookie=cluster.cookie, epmd_port=cluster.epmd_port,
                    hidden=True) as node:
        options.setdefault("node_timeout", 120.0 * cluster.timeout_factor)
        driver = Driver(node, cluster.node_names, journal=journal, **options)
        if op == "upgrade":
            return await driver.upgrade(release)
        return await driver.downgrade(str(release))


def run_release_op(cluster: Cluster, op: str, release: str | os.PathLike[str], *,
                   journal: Path, options: dict[str, Any]) -> RunReport:
    """Run ``op`` (``upgrade`` or ``downgrade``) on every node of ``cluster``."""
    if op not in ("upgrade", "downgrade"):
        raise ValueError(f"unknown release operation {op!r}")
    target: str | Path = Path(release) if op == "upgrade" else str(release)
    result: list[RunReport] = []
    error: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(_run(cluster, op, target, journal, dict(options))))
        except BaseException as exc:  # handed to the calling thread
            error.append(exc)

    thread = threading.Thread(target=work, name=f"erlbridge cluster {op}", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]
