"""Classify raw Erlang replies of upgrade calls into step results (pure, no I/O).

Facts from docs/internals/otp-facts.md#script-errors and
docs/internals/otp-facts.md#install_release-outcomes:

* ``release_handler_1:eval_script/5`` returns ``{ok, Unpurged}``, ``restart_emulator``,
  ``{error, R}`` (failed *before* point_of_no_return: old code still runs) or
  ``{'EXIT', R}`` (failed *after* it: half-upgraded).
* ``release_handler_1:check_script/2`` returns ``{ok, PurgeMods}`` or ``{error, R}``
  (nothing after PONR ever runs in a check).
* ``release_handler:install_release/2`` answers ``{error, R}`` in both cases; after PONR
  (and for crashes such as ``change_appl_data``) the node restarts right after replying.
  The driver therefore decides "before/after PONR" by *observing* whether the node
  restarted; :func:`install_error_guess` is the fallback when it cannot observe.
"""

from __future__ import annotations

from typing import Any

from erlbridge.driver.run_report import NodeError, Status, ponr_flag
from erlbridge.term import Atom
from erlbridge.upgrade import EvalOutcome, InstallOutcome, Phase

__all__ = [
    "classify_check_script",
    "classify_eval_script",
    "install_error_guess",
    "install_error_phase",
    "is_tuple_tagged",
]


def is_tuple_tagged(term: Any, tag: str, size: int | None = None) -> bool:
    """True for a tuple whose first element equals ``tag`` (and has ``size`` elements)."""
    return (
        isinstance(term, tuple)
        and len(term) >= 1
        and term[0] == tag
        and (size is None or len(term) == size)
    )


def classify_eval_script(reply: Any) -> tuple[Status, Any, NodeError | None]:
    """Map an ``eval_script/5`` reply to (status, value, error) via
    :class:`erlbridge.upgrade.EvalOutcome`.

    ``{ok, Unpurged}`` -> ok with ``Unpurged``; ``restart_emulator`` -> ok with value
    ``"restart_emulator"`` (direct mode does not restart the node: the caller must);
    ``{error, R}`` -> error before PONR; ``{'EXIT', R}`` -> error after PONR;
    anything else -> error with unknown PONR.
    """
    out = EvalOutcome.from_reply(reply)
    if out.ok:
        if out.restart_emulator:
            return Status.OK, "restart_emulator", None
        return Status.OK, [(m, p.value) for m, p in out.unpurged], None
    msg = "unexpected reply" if out.kind == "unexpected_reply" else ""
    return (
        Status.ERROR,
        None,
        NodeError.at(out.phase or Phase.UNKNOWN, "eval_script", out.reason, msg),
    )


def classify_check_script(reply: Any) -> tuple[Status, Any, NodeError | None]:
    """Map a ``check_script/2`` reply to (status, value, error); errors are before PONR."""
    if is_tuple_tagged(reply, "ok", 2):
        return Status.OK, reply[1], None
    if is_tuple_tagged(reply, "error", 2):
        return (
            Status.ERROR,
            None,
            NodeError.at(Phase.BEFORE_POINT_OF_NO_RETURN, "check_script", reply[1]),
        )
    return (
        Status.ERROR,
        None,
        NodeError.at(Phase.BEFORE_POINT_OF_NO_RETURN, "check_script", reply, "unexpected reply"),
    )


def install_error_phase(reason: Any) -> Phase:
    """Best guess of the phase of an ``install_release`` error reason, from
    :class:`erlbridge.upgrade.InstallOutcome` (UNKNOWN when the reason does not tell).
    Observation (did the node restart?) beats this guess.
    """
    out = InstallOutcome.from_reply((Atom("error"), reason))
    return out.phase or Phase.UNKNOWN


def install_error_guess(reason: Any) -> bool | None:
    """:func:`install_error_phase` as ``before_point_of_no_return`` (None when unknown)."""
    return ponr_flag(install_error_phase(reason))
