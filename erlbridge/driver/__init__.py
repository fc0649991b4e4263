"""The upgrade driver: run upgrade scripts and release operations on many nodes at once.

Public names are re-exported here; :class:`Driver` is in :mod:`erlbridge.driver.driver`.
It needs of a node only the methods of :class:`~erlbridge.driver.node_api.DriverNode`.
Pure logic (no I/O): ``run_report`` (outcomes, the report), ``rendering``,
``journal_records``, ``barrier_book``, ``policy``, ``replies`` and ``script_rewrite``.
The Driver hands each operation a ``fleet`` (its settings) and composes ``run`` (one
operation run: journal, steps, phases, report), ``release_run`` with ``release_ops``,
``tarball`` and ``dry_run`` (release mode), ``direct_run`` with ``direct_ops`` and
``barrier_service`` (direct mode), ``readiness`` and ``plan_check`` (read-only checks).
See docs/internals/architecture.md#the-driver.
"""

from erlbridge.driver.barrier_book import BarrierBook, Release
from erlbridge.driver.driver import Driver, discover
from erlbridge.driver.journal import Journal, read_journal, read_records
from erlbridge.driver.journal_records import JournalState, NodeStanding
from erlbridge.driver.policy import Deadlines, Policy, Scheduler
from erlbridge.driver.readiness import NodeReadiness, ReadinessReport
from erlbridge.driver.run_report import NodeError, NodeOutcome, RunReport, Status, StepResult
from erlbridge.driver.tarball import Tarball

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
