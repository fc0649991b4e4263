"""Barrier bookkeeping for Python-coordinated ``sync_nodes`` (pure: no I/O, ``now`` passed in).

Semantics follow ``release_handler_1:sync_nodes/2`` (docs/internals/otp-facts.md#sync_nodes):
a node that reaches
barrier ``Id`` with node list ``L`` may continue once every node of ``L`` except itself
has reached ``Id``. Arrivals are remembered for the whole run, so late waiters are
released at once. Differences from the native version, on purpose:

* a waiter is released with an error when a node it waits for can no longer arrive
  (its run ended with a failure, it went down, it was skipped) — native sync_nodes would
  only notice a *visible* node going down;
* every waiter has a deadline; at the deadline it is released with an error;
* nodes listed in ``L`` that are not participants of the run can never arrive: a waiter
  for one is released with an error immediately (callers should refuse such scripts
  up front, see :func:`unknown_nodes`).

``self_node`` (the Python node) counts as arrived everywhere: it has nothing to wait for.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field

__all__ = ["BarrierBook", "Release", "unknown_nodes"]


@dataclass(frozen=True, slots=True)
class Release:
    """Decision for one waiter: ``ok`` lets it continue, else ``reason`` says why not.

    ``reason`` is a short tuple meant to become an Erlang term:
    ``("barrier_node_failed", id, node)``, ``("barrier_timeout", id, missing_nodes)``,
    ``("barrier_unknown_node", id, node)``, ``("barrier_cancelled", id)``.
    """

    node: str
    barrier: Hashable
    ok: bool
    reason: tuple[object, ...] | None = None


@dataclass(slots=True)
class _Waiter:
    node: str
    barrier: Hashable
    waits_for: frozenset[str]
    deadline: float


def unknown_nodes(listed: Iterable[str], participants: Iterable[str], self_node: str) -> set[str]:
    """Nodes named in a barrier that are neither participants nor the Python node."""
    return set(listed) - set(participants) - {self_node}


@dataclass(slots=True)
class BarrierBook:
    """Tracks arrivals and waiters for all barriers of one run.

    Methods return the list of :class:`Release` decisions the caller must act on
    (reply ok, or fail the waiter's call). Each waiter is released exactly once.
    """

    participants: frozenset[str]
    self_node: str
    arrived: dict[Hashable, set[str]] = field(default_factory=dict)
    gone: dict[str, object] = field(default_factory=dict)  # node -> why it can't arrive
    waiters: list[_Waiter] = field(default_factory=list)
    closed: bool = False

    @classmethod
    def create(cls, participants: Iterable[str], self_node: str) -> BarrierBook:
        return cls(frozenset(participants), self_node)

    def arrive(
        self,
        barrier: Hashable,
        node: str,
        waits_for: Iterable[str],
        *,
        now: float,
        timeout: float,
    ) -> list[Release]:
        """``node`` reached ``barrier`` and waits for ``waits_for``; deadline ``now+timeout``."""
        self.arrived.setdefault(barrier, set()).add(node)
        need = frozenset(waits_for) - {node, self.self_node}
        if self.closed:
            self.waiters.append(_Waiter(node, barrier, need, now + timeout))
            return self._cancel_all()
        self.waiters.append(_Waiter(node, barrier, need, now + timeout))
        return self._settle(now)

    def node_gone(self, node: str, reason: object, *, now: float) -> list[Release]:
        """``node`` will reach no further barrier (finished, failed, down, skipped).

        Its own pending waits are dropped (its call is over); waiters that still need it
        at a barrier it never reached are released with an error.
        """
        self.gone.setdefault(node, reason)
        self.waiters = [w for w in self.waiters if w.node != node]
        return self._settle(now)

    def expire(self, now: float) -> list[Release]:
        """Release with an error every waiter whose deadline is ``<= now``."""
        return self._settle(now)

    def cancel(self) -> list[Release]:
        """Release every waiter with ``barrier_cancelled`` (run over or cancelled)."""
        self.closed = True
        return self._cancel_all()

    def next_deadline(self) -> float | None:
        return min((w.deadline for w in self.waiters), default=None)

    def waiting(self) -> list[tuple[str, Hashable, frozenset[str]]]:
        """(node, barrier, still missing) for each waiter, for progress reports."""
        return [(w.node, w.barrier, self._missing(w)) for w in self.waiters]

    def _missing(self, w: _Waiter) -> frozenset[str]:
        return w.waits_for - self.arrived.get(w.barrier, set())

    def _cancel_all(self) -> list[Release]:
        out = [
            Release(w.node, w.barrier, False, ("barrier_cancelled", w.barrier))
            for w in self.waiters
        ]
        self.waiters.clear()
        return out

    def _settle(self, now: float) -> list[Release]:
        out: list[Release] = []
        keep: list[_Waiter] = []
        for w in self.waiters:
            missing = self._missing(w)
            if not missing:
                out.append(Release(w.node, w.barrier, True))
                continue
            unknown = sorted(n for n in missing if n not in self.participants)
            dead = sorted(n for n in missing if n in self.gone)
            if unknown:
                out.append(
                    Release(
                        w.node, w.barrier, False, ("barrier_unknown_node", w.barrier, unknown[0])
                    )
                )
            elif dead:
                out.append(
                    Release(w.node, w.barrier, False, ("barrier_node_failed", w.barrier, dead[0]))
                )
            elif w.deadline <= now:
                out.append(
                    Release(
                        w.node,
                        w.barrier,
                        False,
                        ("barrier_timeout", w.barrier, tuple(sorted(missing))),
                    )
                )
            else:
                keep.append(w)
        self.waiters = keep
        return out
