"""What an evaluated upgrade script did: the replies of ``eval_script`` and ``install_release``.

``release_handler_1:eval_script/5`` says exactly where it failed
(docs/internals/otp-facts.md#script-errors):
``{error, R}`` before ``point_of_no_return`` (old code keeps running) and
``{'EXIT', R}`` after it (half-upgraded). ``install_release`` folds both into
``{error, R}`` (§2.3); :class:`InstallOutcome` recovers the phase from the reason where
the reason tells it, and says :attr:`Phase.UNKNOWN` where it does not (a runtime crash
reads ``{'EXIT', {Reason, Stack}}`` on both sides). The driver then learns the rest
from the node: after a post-PONR failure release_handler restarts it.
"""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass
from typing import Any

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade._fields import PurgeMethod

logger = logging.getLogger(__name__)

__all__ = ["EvalOutcome", "InstallOutcome", "Phase", "reason_kind"]


class Phase(enum.Enum):
    """Where a failure happened, relative to ``point_of_no_return``."""

    BEFORE_POINT_OF_NO_RETURN = "before_point_of_no_return"
    AFTER_POINT_OF_NO_RETURN = "after_point_of_no_return"
    UNKNOWN = "unknown"


def reason_kind(reason: Any) -> str | None:
    """The tag of an Erlang reason: the atom itself, or a tuple's leading atom."""
    if isinstance(reason, Atom):
        return reason.name
    if isinstance(reason, tuple) and reason and isinstance(reason[0], Atom):
        return reason[0].name
    return None


def _unpurged(term: Any) -> tuple[tuple[Atom, PurgeMethod], ...] | None:
    if not f.is_list(term):
        return None
    out = []
    for item in f.as_list(term):
        if not (f.is_tuple(item, 2) and isinstance(item[0], Atom) and isinstance(item[1], str)):
            return None
        if item[1] not in ("soft_purge", "brutal_purge"):
            return None
        out.append((item[0], PurgeMethod(str.__str__(item[1]))))
    return tuple(out)


def _string_or_none(value: Any) -> ErlString | None:
    try:
        return f.string(value, field="version")
    except ScriptError:
        return None


@dataclass(frozen=True, slots=True)
class EvalOutcome:
    """The reply of ``release_handler_1:eval_script/5``.

    ``ok`` with ``unpurged`` (modules whose old code is still used, with the purge method
    release_handler would apply later) or ``restart_emulator``; otherwise ``phase`` and
    ``reason`` (the Erlang term), ``kind`` (its tag).
    """

    ok: bool
    unpurged: tuple[tuple[Atom, PurgeMethod], ...] = ()
    restart_emulator: bool = False
    phase: Phase | None = None
    reason: Any = None
    kind: str | None = None

    @property
    def failed(self) -> bool:
        """True if the script failed."""
        return not self.ok

    @classmethod
    def from_reply(cls, reply: Any) -> EvalOutcome:
        """Read ``{ok, Unpurged} | restart_emulator | {error, R} | {'EXIT', R}``.

        Anything else is reported as a failure in phase UNKNOWN with kind
        ``unexpected_reply`` (never raises).
        """
        if f.is_atom(reply, "restart_emulator"):
            return cls(ok=True, restart_emulator=True)
        if f.is_tuple(reply, 2):
            tag, value = reply
            if f.is_atom(tag, "ok"):
                unpurged = _unpurged(value)
                if unpurged is not None:
                    return cls(ok=True, unpurged=unpurged)
            elif f.is_atom(tag, "error"):
                return cls(
                    ok=False,
                    phase=Phase.BEFORE_POINT_OF_NO_RETURN,
                    reason=value,
                    kind=reason_kind(value),
                )
            elif f.is_atom(tag, "EXIT"):
                return cls(
                    ok=False,
                    phase=Phase.AFTER_POINT_OF_NO_RETURN,
                    reason=value,
                    kind=reason_kind(value),
                )
        return cls(ok=False, phase=Phase.UNKNOWN, reason=reply, kind="unexpected_reply")


# install_release reasons that arise before the script's point_of_no_return (the old
# code keeps running). Release lookup, relup reading, option checks and the Before part:
# release_handler.erl do_install_release/3, release_handler_1 §1.3 items 1-3.
_BEFORE = frozenset(
    {
        "already_installed",
        "no_such_release",
        "no_matching_relup",
        "bad_relup_file",
        "missing_base_app",
        "could_not_create_hybrid_boot",
        "illegal_option",
        "old_processes",
        "illegal_instruction_after_point_of_no_return",
        "no_such_file",
        "bad_lib_vsn",
        "restart_new_emulator",
        "change_appl_data",
    }
)
# Thrown only by instructions after point_of_no_return (code_change, sync_nodes).
_AFTER = frozenset({"code_change_failed", "sync_error"})


@dataclass(frozen=True, slots=True)
class InstallOutcome:
    """The reply of ``release_handler:install_release/1,2`` as data.

    ``node_restarts``: True when release_handler restarts/reboots the node after replying
    (success with ``continue_after_restart``; a post-PONR failure; ``change_appl_data``,
    which is raised with ``exit/1``), False when it keeps running, None when the reason
    does not tell (watch the connection).
    """

    ok: bool
    other_version: ErlString | None = None
    description: Any = None
    continue_after_restart: bool = False
    phase: Phase | None = None
    reason: Any = None
    kind: str | None = None
    node_restarts: bool | None = False

    @classmethod
    def from_reply(cls, reply: Any) -> InstallOutcome:
        """Read ``{ok, V, D} | {continue_after_restart, V, D} | {error, R}`` (never raises)."""
        version = _string_or_none(reply[1]) if f.is_tuple(reply, 3) else None
        if version is not None:
            cont = f.is_atom(reply[0], "continue_after_restart")
            if cont or f.is_atom(reply[0], "ok"):
                return cls(
                    ok=True,
                    other_version=version,
                    description=reply[2],
                    continue_after_restart=cont,
                    node_restarts=cont,
                )
        if f.is_tuple(reply, 2) and f.is_atom(reply[0], "error"):
            reason = reply[1]
            kind = reason_kind(reason)
            if kind in _AFTER:
                return cls(
                    ok=False,
                    phase=Phase.AFTER_POINT_OF_NO_RETURN,
                    reason=reason,
                    kind=kind,
                    node_restarts=True,
                )
            if kind in _BEFORE:
                return cls(
                    ok=False,
                    phase=Phase.BEFORE_POINT_OF_NO_RETURN,
                    reason=reason,
                    kind=kind,
                    node_restarts=kind == "change_appl_data",
                )
            return cls(ok=False, phase=Phase.UNKNOWN, reason=reason, kind=kind, node_restarts=None)
        return cls(
            ok=False, phase=Phase.UNKNOWN, reason=reply, kind="unexpected_reply", node_restarts=None
        )
