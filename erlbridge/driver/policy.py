"""Run policies and scheduling decisions (pure: no I/O, ``now`` passed in).

:class:`Policy` holds the knobs; :class:`Scheduler` decides which node starts next:

* ``concurrency`` — at most this many nodes are in flight (``None`` = all at once);
* ``canary`` — the first node runs alone; only if it ends ok do the others start; if it
  fails, every other node is ``skipped`` (whatever ``stop_on_first_failure`` says);
* ``stop_on_first_failure`` — after the first failure no further node starts (those still
  pending become ``skipped``); nodes already running are not interrupted (interrupting an
  upgrade half-way is worse than letting it finish);
* deadlines — ``node_timeout`` bounds each node's step, ``overall_timeout`` the whole
  operation; :meth:`Deadlines.for_node` gives the effective per-step timeout at ``now``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Deadlines", "Policy", "Scheduler"]


@dataclass(frozen=True, slots=True)
class Policy:
    """Scheduling options of a driver (see the module docstring). Times in seconds."""

    concurrency: int | None = None
    node_timeout: float = 60.0
    overall_timeout: float | None = None
    stop_on_first_failure: bool = False
    canary: bool = False

    def __post_init__(self) -> None:
        if self.concurrency is not None and self.concurrency < 1:
            raise ValueError("concurrency must be >= 1 or None")
        if self.node_timeout <= 0:
            raise ValueError("node_timeout must be > 0")
        if self.overall_timeout is not None and self.overall_timeout <= 0:
            raise ValueError("overall_timeout must be > 0 or None")


@dataclass(frozen=True, slots=True)
class Deadlines:
    """Per-node and overall deadlines of one operation started at ``start``."""

    start: float
    node_timeout: float
    overall_timeout: float | None

    @property
    def overall_deadline(self) -> float | None:
        return None if self.overall_timeout is None else self.start + self.overall_timeout

    def for_node(self, now: float) -> float:
        """Seconds a step starting at ``now`` may take (never negative)."""
        left = self.node_timeout
        if self.overall_deadline is not None:
            left = min(left, self.overall_deadline - now)
        return max(0.0, left)

    def expired(self, now: float) -> bool:
        d = self.overall_deadline
        return d is not None and now >= d


@dataclass(slots=True)
class Scheduler:
    """Decides which nodes start, in order, under a :class:`Policy`.

    Use: ``for n in s.take(): start(n)``; when a node ends, ``s.finish(n, ok)`` then
    ``s.take()`` again. When :attr:`done` is true, :attr:`skipped` lists the nodes never
    started.
    """

    policy: Policy
    pending: list[str]
    running: set[str] = field(default_factory=set)
    finished: dict[str, bool] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)
    _canary: str | None = None
    _stopped: bool = False

    @classmethod
    def create(cls, nodes: Sequence[str], policy: Policy) -> Scheduler:
        if len(set(nodes)) != len(nodes):
            raise ValueError("duplicate target nodes")
        s = cls(policy, list(nodes))
        if policy.canary and len(nodes) > 1:
            s._canary = nodes[0]
        return s

    @property
    def in_canary_phase(self) -> bool:
        return self._canary is not None and self._canary not in self.finished

    def take(self) -> list[str]:
        """Nodes to start now (possibly none); marks them running."""
        if self._stopped:
            return []
        if self.in_canary_phase:
            if self._canary in self.running:
                return []
            assert self._canary is not None
            self.pending.remove(self._canary)
            self.running.add(self._canary)
            return [self._canary]
        limit = self.policy.concurrency
        free = len(self.pending) if limit is None else max(0, limit - len(self.running))
        out, self.pending = self.pending[:free], self.pending[free:]
        self.running.update(out)
        return out

    def finish(self, node: str, ok: bool) -> None:
        """Record that ``node`` ended; applies canary and stop-on-first-failure rules."""
        self.running.discard(node)
        self.finished[node] = ok
        if ok:
            return
        if node == self._canary or self.policy.stop_on_first_failure:
            self.stop()

    def stop(self) -> None:
        """Start nothing more: every pending node becomes skipped (e.g. overall deadline)."""
        self._stopped = True
        self.skipped.extend(self.pending)
        self.pending = []

    @property
    def done(self) -> bool:
        return not self.running and not self.pending
