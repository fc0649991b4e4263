"""The upgrade driver: run upgrade scripts and release operations on many nodes at once.

Public names are re-exported here; see :mod:`erlbridge.asyncio.driver.driver` for
:class:`Driver`. Pure logic (no I/O) lives in ``outcome``, ``records``, ``barrier``,
``policy``, ``results`` and ``rewrite``. The Driver composes ``run`` (one operation run:
journal, steps, phases, report), ``release`` and ``tarball`` (release-mode per-node
operations) and ``direct`` (direct-mode per-node operations).
"""

from erlbridge.asyncio.driver.barrier import BarrierBook, Release
from erlbridge.asyncio.driver.driver import Driver, discover
from erlbridge.asyncio.driver.journal import Journal, read_journal, read_records
from erlbridge.asyncio.driver.outcome import NodeError, NodeOutcome, RunReport, Status, StepResult
from erlbridge.asyncio.driver.policy import Deadlines, Policy, Scheduler
from erlbridge.asyncio.driver.readiness import NodeReadiness, ReadinessReport
from erlbridge.asyncio.driver.records import JournalState, NodeStanding
from erlbridge.asyncio.driver.tarball import Tarball

__all__ = [
    "BarrierBook",
    "Deadlines",
    "Driver",
    "Journal",
    "JournalState",
    "NodeError",
    "NodeOutcome",
    "NodeReadiness",
    "NodeStanding",
    "Policy",
    "ReadinessReport",
    "Release",
    "RunReport",
    "Scheduler",
    "Status",
    "StepResult",
    "Tarball",
    "discover",
    "read_journal",
    "read_records",
]
