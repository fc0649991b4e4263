"""The upgrade driver: run upgrade scripts and release operations on many nodes at once.

Public names are re-exported here; see :mod:`erlbridge.asyncio.driver.driver` for
:class:`Driver`. Pure logic (no I/O) lives in ``outcome``, ``records``, ``barrier``,
``policy`` and ``results``.
"""

from erlbridge.asyncio.driver.barrier import BarrierBook, Release
from erlbridge.asyncio.driver.journal import Journal, read_journal, read_records
from erlbridge.asyncio.driver.outcome import NodeError, NodeOutcome, RunReport, Status, StepResult
from erlbridge.asyncio.driver.policy import Deadlines, Policy, Scheduler
from erlbridge.asyncio.driver.records import JournalState, NodeStanding

__all__ = [
    "BarrierBook",
    "Deadlines",
    "Journal",
    "JournalState",
    "NodeError",
    "NodeOutcome",
    "NodeStanding",
    "Policy",
    "Release",
    "RunReport",
    "Scheduler",
    "Status",
    "StepResult",
    "read_journal",
    "read_records",
]
