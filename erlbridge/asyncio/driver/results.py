"""Classify raw Erlang replies of upgrade calls into step results (pure, no I/O).

Facts from OTP-NOTES §1.3 and §2.3:

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

from erlbridge.asyncio.driver.outcome import NodeError, Status

__all__ = [
    "classify_check_script",
    "classify_eval_script",
    "install_error_guess",
    "is_tuple_tagged",
]

#: Reasons thrown after point_of_no_return by release_handler_1 (OTP-NOTES §1.3 item 4).
AFTER_PONR_TAGS = frozenset({"code_change_failed", "sync_error", "EXIT"})


def is_tuple_tagged(term: Any, tag: str, size: int | None = None) -> bool:
    """True for a tuple whose first element equals ``tag`` (and has ``size`` elements)."""
    return (
        isinstance(term, tuple)
        and len(term) >= 1
        and term[0] == tag
        and (size is None or len(term) == size)
    )


def classify_eval_script(reply: Any) -> tuple[Status, Any, NodeError | None]:
    """Map an ``eval_script/5`` reply to (status, value, error).

    ``{ok, Unpurged}`` -> ok with ``Unpurged``; ``restart_emulator`` -> ok with value
    ``"restart_emulator"`` (direct mode does not restart the node: the caller must);
    ``{error, R}`` -> error before PONR; ``{'EXIT', R}`` -> error after PONR;
    anything else -> error with unknown PONR.
    """
    if is_tuple_tagged(reply, "ok", 2):
        return Status.OK, reply[1], None
    if reply == "restart_emulator":
        return Status.OK, "restart_emulator", None
    if is_tuple_tagged(reply, "error", 2):
        return Status.ERROR, None, NodeError("eval_script", reply[1], "", True)
    if is_tuple_tagged(reply, "EXIT", 2):
        return Status.ERROR, None, NodeError("eval_script", reply[1], "", False)
    return Status.ERROR, None, NodeError("eval_script", reply, "unexpected reply", None)


def classify_check_script(reply: Any) -> tuple[Status, Any, NodeError | None]:
    """Map a ``check_script/2`` reply to (status, value, error); errors are before PONR."""
    if is_tuple_tagged(reply, "ok", 2):
        return Status.OK, reply[1], None
    if is_tuple_tagged(reply, "error", 2):
        return Status.ERROR, None, NodeError("check_script", reply[1], "", True)
    return Status.ERROR, None, NodeError("check_script", reply, "unexpected reply", True)


def install_error_guess(reason: Any) -> bool | None:
    """Best guess of ``before_point_of_no_return`` for an ``install_release`` error reason.

    False for reasons only thrown after PONR (``code_change_failed``, ``sync_error``,
    runtime crashes ``{'EXIT', _}``), None for ``change_appl_data`` (the node restarts
    although no code was loaded), True otherwise. Observation beats this guess.
    """
    tag = reason[0] if isinstance(reason, tuple) and reason else reason
    if tag == "change_appl_data":
        return None
    return not (isinstance(tag, str) and tag in AFTER_PONR_TAGS)
