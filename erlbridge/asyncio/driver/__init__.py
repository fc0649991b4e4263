"""Kept for one release: the driver moved to :mod:`erlbridge.driver`.

``from erlbridge.asyncio.driver import Driver`` (and every other name below) still works;
new code imports from :mod:`erlbridge.driver`. The submodules are gone; under
``erlbridge.driver`` they are: ``barrier`` -> ``barrier_book``, ``barriers`` ->
``barrier_service``, ``calls`` -> ``remote_calls``, ``direct`` -> ``direct_ops``,
``outcome`` -> ``run_report`` and ``rendering`` (``jsonable``, ``term_text``, tables),
``records`` -> ``journal_records`` (``Phase`` -> ``StepPhase``), ``release`` ->
``release_ops``, ``results`` -> ``replies``, ``rewrite`` -> ``script_rewrite``; the others
kept their names (see docs/internals/architecture.md#the-driver).
"""

from erlbridge.driver import (
    BarrierBook,
    Deadlines,
    Driver,
    Journal,
    JournalState,
    NodeError,
    NodeOutcome,
    NodeReadiness,
    NodeStanding,
    Policy,
    ReadinessReport,
    Release,
    RunReport,
    Scheduler,
    Status,
    StepResult,
    Tarball,
    discover,
    read_journal,
    read_records,
)

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
