"""The one error tree of erlbridge (L0).

::

    ErlbridgeError
    ├── TermError
    │   ├── EncodeError(TypeError)
    │   └── DecodeError(ValueError)           .offset
    │       └── TermSyntaxError               .line, .column (Erlang term text)
    ├── ProtocolError                         the peer broke the rules
    │   ├── FramingError
    │   ├── HandshakeError                    .status
    │   │   └── TLSError                      .node, .reason (TLS distribution)
    │   └── AuthenticationError               .node (wrong cookie)
    ├── InvalidState(RuntimeError)            we misused the API
    ├── EpmdError
    │   ├── NodeNotFound(LookupError)
    │   └── RegistrationError
    ├── NodeDown(ConnectionError)             .node, .reason
    │   └── NodeUnreachable                   .detail (EPMD, refused, timeout: the cause)
    ├── Timeout(TimeoutError)                 .operation, .timeout
    ├── ProcessError
    │   ├── NoProcess(LookupError)
    │   └── ProcessExited                     .pid, .reason
    ├── RemoteError
    │   ├── BadRpc                            .reason
    │   └── RemoteException                   .kind, .reason, .stacktrace
    └── UpgradeError
        ├── ScriptError(ValueError)           .index, .instruction, .rule
        ├── BadReleaseTarball(ValueError)     .path, .problem (refused before upload)
        ├── ReleaseHandlerError               .function, .reason, .kind
        │   ├── OldProcesses                  .module
        │   ├── NoMatchingRelup               .to_version, .current_version
        │   ├── ExistingRelease               .version
        │   ├── AlreadyInstalled              .version
        │   └── NoSuchRelease                 .version
        ├── UpgradeFailed                     .report
        └── PlanError                         an upgrade plan is refused (one-line reason)

Constructors never log and never format secrets (the cookie is never an argument).
Erlang reasons are kept as data on the attributes; ``str()`` renders them for humans, cut
at :data:`TEXT_LIMIT` characters (:func:`bounded_text`): a peer sizes the reasons.

"The node cannot be reached" is one class whatever step failed: :class:`NodeUnreachable`,
a :class:`NodeDown` (Erlang says ``{badrpc, nodedown}`` for both), raised by connect, rpc,
multicall and call; the failed step's own error (:class:`NodeNotFound` from EPMD, an
``OSError``, :class:`Timeout`, :class:`HandshakeError`) is its ``detail`` and cause.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "AlreadyInstalled",
    "AuthenticationError",
    "BadReleaseTarball",
    "BadRpc",
    "DecodeError",
    "EncodeError",
    "EpmdError",
    "EpmdUnreachable",
    "ExistingRelease",
    "ErlbridgeError",
    "FramingError",
    "HandshakeError",
    "InvalidState",
    "NoMatchingRelup",
    "NoProcess",
    "NoSuchRelease",
    "NodeDown",
    "NodeNotFound",
    "NodeUnreachable",
    "OldProcesses",
    "PlanError",
    "ProcessError",
    "ProcessExited",
    "ProtocolError",
    "RegistrationError",
    "ReleaseHandlerError",
    "RemoteError",
    "RemoteException",
    "ScriptError",
    "TLSError",
    "TermError",
    "TermSyntaxError",
    "TEXT_LIMIT",
    "Timeout",
    "UpgradeError",
    "UpgradeFailed",
    "bounded_text",
]


#: How Erlang reasons are written in messages. This module is below the term layer, so
#: :mod:`erlbridge.term` installs its one-line Erlang formatter here when it is imported
#: (messages then read ``{badrpc,{'EXIT',noproc}}`` rather than Python reprs).
_term_text: Callable[[Any], str] = str


def set_term_formatter(formatter: Callable[[Any], str]) -> None:
    """Install the function that renders Erlang reasons in exception messages."""
    global _term_text
    _term_text = formatter


#: Most characters of a term (or other peer-supplied value) shown in an exception message
#: or a log line; a longer text is cut there and ends with ``...``. Terms come from peers
#: and can be megabytes: the full value stays on the exception's attributes.
TEXT_LIMIT = 1000


def bounded_text(value: Any, limit: int = TEXT_LIMIT) -> str:
    """``value`` as one line of Erlang text (any other value: ``str``), at most ``limit``
    characters plus ``...`` when cut. The work is bounded too: only about ``limit``
    elements of a huge term are looked at (see :func:`_shrink`)."""
    if type(value) is str:  # our own prose (an Atom, a str subclass, is an Erlang term)
        return value if len(value) <= limit else value[:limit] + "..."
    cut = _Cut(limit)
    try:
        small = _shrink(value, cut, 0)
    except (RecursionError, TypeError, ValueError):  # an exotic value: hide its contents
        return f"<{type(value).__name__}>"
    try:
        text = _term_text(small)
    except Exception:  # not a term (e.g. an OSError): a message must never fail to build
        try:
            text = str(small)
        except Exception:
            text = f"<{type(value).__name__}>"
    if cut.cut:
        mark = text.find(_CUT_TEXT)
        if mark >= 0:
            text = text[:mark]
    if len(text) > limit:
        return text[:limit] + "..."
    return text + "..." if cut.cut else text


def _text(reason: Any) -> str:
    return bounded_text(reason)


class _Cut:
    """What :func:`_shrink` may still keep: ``left`` characters (a lower bound on what a
    kept value prints as), and whether anything was left out."""

    __slots__ = ("cut", "left")

    def __init__(self, left: int) -> None:
        self.left = left
        self.cut = False


#: Stands where a shrunk value was cut; an int prints the same in every formatter, and
#: the text is cut where it appears. Random digits: no real term contains them by chance.
_CUT = int.from_bytes(os.urandom(12), "big") | (1 << 95)
_CUT_TEXT = str(_CUT)
#: deeper terms are cut (each level prints at least one bracket)
_MAX_SHRINK_DEPTH = 100


def _shrink(value: Any, cut: _Cut, depth: int) -> Any:
    """A copy of ``value`` that prints like it for at least ``cut.left`` characters and
    is small: once that many characters are accounted for (each kept value counts what it
    prints as at the least), the rest is replaced by :data:`_CUT`. Containers of the term
    model are rebuilt with their own type (tuples and lists, mappings, dataclasses such as
    an improper list); text and binaries are sliced."""
    if cut.left <= 0 or depth > _MAX_SHRINK_DEPTH:
        cut.cut = True
        cut.left = 0
        return _CUT
    if value is None or isinstance(value, bool | float):
        cut.left -= 1
        return value
    if isinstance(value, int):
        digits = max(1, int((value.bit_length() - 1) * 0.30103))
        if digits > cut.left:  # too long to print (and slow to convert): cut here
            cut.cut = True
            cut.left = 0
            return _CUT
        cut.left -= digits
        return value
    if isinstance(value, str | bytes | bytearray):
        if len(value) > cut.left:
            cut.cut = True
            value = type(value)(value[: cut.left]) if isinstance(value, str) else value[: cut.left]
        cut.left -= max(1, len(value))
        return value
    cut.left -= 2  # brackets
    if isinstance(value, list | tuple):
        items: list[Any] = []
        for item in value:
            if cut.left <= 0:  # elements left out: the text is cut where they start
                cut.cut = True
                first = items[0] if items else None
                # rows keep their shape (a map's pairs): the marker is a row of markers
                items.append((_CUT,) * len(first) if type(first) is tuple else _CUT)
                break
            items.append(_shrink(item, cut, depth + 1))
        try:
            return type(value)(items)  # the term model's tuple subclasses take an iterable
        except (TypeError, ValueError):
            return items
    if isinstance(value, Mapping):
        pairs: list[tuple[Any, Any]] = []
        for key, item in value.items():
            if cut.left <= 0:
                cut.cut = True
                pairs.append((_CUT, _CUT))
                break
            pairs.append((_shrink(key, cut, depth + 1), _shrink(item, cut, depth + 1)))
        try:
            return type(value)(pairs)  # type: ignore[call-arg]  # dict, FrozenMap
        except (TypeError, ValueError):  # e.g. a key made unhashable
            return {k: v for k, v in pairs if _hashable(k)}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _shrink(getattr(value, f.name), cut, depth + 1)
            for f in dataclasses.fields(value)
            if f.init
        }
        try:
            return dataclasses.replace(value, **changes)
        except (TypeError, ValueError):  # its invariants refuse the cut form
            cut.cut = True
            cut.left = 0
            return _CUT
    text_len = _sized(value)
    if text_len is not None and text_len > cut.left:
        try:
            part = value[: cut.left]
        except Exception:
            part = None
        if type(part) is type(value):  # e.g. an Erlang string
            cut.cut = True
            cut.left = 0
            return part
        cut.cut = True
        cut.left = 0
        return _CUT
    return value  # a pid, reference, exception...: prints small


def _sized(value: Any) -> int | None:
    try:
        return len(value)
    except Exception:
        return None


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


class ErlbridgeError(Exception):
    """Base of every error erlbridge raises on purpose."""


# -- terms -------------------------------------------------------------------------


class TermError(ErlbridgeError):
    """A term could not be encoded, decoded or parsed."""


class EncodeError(TermError, TypeError):
    """A Python value has no Erlang representation (or exceeds a format limit)."""


class DecodeError(TermError, ValueError):
    """Malformed External Term Format bytes; ``offset`` is where decoding failed."""

    def __init__(self, message: str, offset: int | None = None) -> None:
        self.offset = offset
        super().__init__(message if offset is None else f"{message} (at offset {offset})")


class TermSyntaxError(DecodeError):
    """Malformed Erlang term text; ``line`` and ``column`` are 1-based."""

    def __init__(self, message: str, line: int, column: int, offset: int | None = None) -> None:
        self.line = line
        self.column = column
        TermError.__init__(self, f"{message} (line {line}, column {column})")
        self.offset = offset


# -- protocol ----------------------------------------------------------------------


class ProtocolError(ErlbridgeError):
    """The peer broke the distribution or EPMD protocol."""


class FramingError(ProtocolError):
    """A frame was truncated, oversized or otherwise malformed."""


class HandshakeError(ProtocolError):
    """The distribution handshake failed; ``status`` is the peer's status if any."""

    def __init__(self, message: str, status: str | None = None) -> None:
        self.status = status
        super().__init__(message)


class TLSError(HandshakeError):
    """The TLS layer of a TLS distribution connection with ``node`` failed (wrong CA,
    expired or missing certificate, hostname mismatch, a plaintext peer); ``reason`` is
    the short ``ssl`` reason (e.g. ``"certificate has expired"``), the ``ssl`` error is
    chained as the cause."""

    def __init__(self, node: str, message: str, *, reason: str | None = None) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"TLS with {node}: {message}")


class AuthenticationError(HandshakeError):
    """The cookie challenge failed (wrong cookie on one side); ``node`` is the peer."""

    def __init__(self, node: str, message: str | None = None) -> None:
        self.node = node
        super().__init__(message or f"authentication with {node} failed: the cookies differ")


class InvalidState(ErlbridgeError, RuntimeError):
    """The API was used in a state that does not allow it (e.g. send on a closed node)."""


# -- epmd --------------------------------------------------------------------------


class EpmdError(ErlbridgeError):
    """EPMD could not be reached or answered with an error."""


class EpmdUnreachable(EpmdError, ConnectionError):
    """Nothing answers at EPMD's address (no EPMD runs there)."""


class NodeNotFound(EpmdError, LookupError):
    """EPMD does not know the node name (raised by the EPMD client; a connection attempt
    raises :class:`NodeUnreachable` with this as its ``detail``)."""


class RegistrationError(EpmdError):
    """ALIVE2 registration was refused (the name is probably taken)."""


# -- connections and processes ---------------------------------------------------------


class NodeDown(ErlbridgeError, ConnectionError):
    """The connection to ``node`` was lost or could not be made; ``reason`` says why."""

    def __init__(self, node: str, reason: Any = None) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"node {node} is down" + ("" if reason is None else f": {_text(reason)}"))


class NodeUnreachable(NodeDown):
    """No connection to ``node`` could be made: EPMD does not know it or cannot be
    reached, the connection was refused, or the connection or handshake timed out.
    ``detail`` is the error of the step that failed (also the ``__cause__``); ``reason``
    is its text. Wrong cookies and TLS failures stay :class:`AuthenticationError` /
    :class:`TLSError`: they are configuration errors, not an absent node."""

    def __init__(self, node: str, detail: BaseException | str) -> None:
        reason = detail if isinstance(detail, str) else _text(str(detail) or repr(detail))
        # not NodeDown.__init__: in a mixed class (see of) the next __init__ is the detail's
        OSError.__init__(self, f"cannot reach node {node}: {reason}")
        self.node = node
        self.reason = reason
        self.detail = detail

    @classmethod
    def of(cls, node: str, detail: BaseException) -> NodeUnreachable:
        """The error for ``detail`` (raise it ``from detail``). It is an instance of
        ``detail``'s class too, with its attributes, so handlers written for the step's
        own error (``except Timeout``, ``except NodeNotFound``) keep working."""
        kind = _UNREACHABLE.get(type(detail))
        if kind is None:
            try:
                kind = type("NodeUnreachable", (cls, type(detail)), {"__module__": __name__})
            except TypeError:  # a class that cannot be mixed in (layout conflict)
                kind = cls
            if len(_UNREACHABLE) < 64:
                _UNREACHABLE[type(detail)] = kind
        exc = kind.__new__(kind)
        NodeUnreachable.__init__(exc, node, detail)
        for name, value in vars(detail).items():
            if name not in ("node", "reason", "detail"):
                setattr(exc, name, value)
        return exc


#: NodeUnreachable mixed with each detail class seen (see NodeUnreachable.of)
_UNREACHABLE: dict[type, type[NodeUnreachable]] = {}


class Timeout(ErlbridgeError, TimeoutError):
    """``operation`` did not finish within ``timeout`` seconds."""

    def __init__(self, operation: str, timeout: float | None) -> None:
        self.operation = operation
        self.timeout = timeout
        super().__init__(f"{operation} timed out after {timeout} s")


class ProcessError(ErlbridgeError):
    """A process-level failure."""


class NoProcess(ProcessError, LookupError):
    """No such (local or remote) process or registered name."""


class ProcessExited(ProcessError):
    """The process ``pid`` exited (or was killed) with ``reason``."""

    def __init__(self, pid: Any, reason: Any) -> None:
        self.pid = pid
        self.reason = reason
        super().__init__(f"process {pid} exited: {_text(reason)}")


# -- remote calls ------------------------------------------------------------------------


class RemoteError(ErlbridgeError):
    """A remote call failed on the remote side."""


class BadRpc(RemoteError):
    """``rex`` answered ``{badrpc, Reason}``; ``reason`` is the Erlang term."""

    def __init__(self, reason: Any, node: str | None = None) -> None:
        self.reason = reason
        self.node = node
        where = f" on {node}" if node else ""
        super().__init__(f"badrpc{where}: {_text(reason)}")


class RemoteException(BadRpc):
    """The remote function raised: ``kind`` is error/exit/throw, with reason and stacktrace."""

    def __init__(
        self, kind: str, reason: Any, stacktrace: Any = None, node: str | None = None
    ) -> None:
        self.kind = kind
        self.stacktrace = stacktrace if stacktrace is not None else []
        RemoteError.__init__(self, f"{kind}:{_text(reason)}" + (f" on {node}" if node else ""))
        self.reason = reason
        self.node = node


# -- upgrades ---------------------------------------------------------------------------


class UpgradeError(ErlbridgeError):
    """Base of upgrade-related errors."""


class ScriptError(UpgradeError, ValueError):
    """An upgrade instruction or script breaks a rule.

    ``index`` is the instruction's position (or None), ``instruction`` the offending
    instruction or term, ``rule`` a short rule name such as ``"load_before_ponr"``.
    """

    def __init__(
        self,
        message: str,
        *,
        index: int | None = None,
        instruction: Any = None,
        rule: str | None = None,
    ) -> None:
        self.index = index
        self.instruction = instruction
        self.rule = rule
        super().__init__(message)


class BadReleaseTarball(UpgradeError, ValueError):
    """``path`` is not a release tarball ``release_handler:unpack_release`` could use
    (not gzip, not a tar, no ``releases/<Name>.rel``, ...): ``problem`` says which.
    Raised on the host, before anything is uploaded."""

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class ReleaseHandlerError(UpgradeError):
    """``release_handler`` returned ``{error, Reason}`` from ``function``.

    ``kind`` names the reason (its tag, e.g. ``"no_such_file"``); subclasses exist for
    the reasons callers branch on.
    """

    kind: str = "error"

    def __init__(self, function: str, reason: Any, node: str | None = None) -> None:
        self.function = function
        self.reason = reason
        self.node = node
        where = f" on {node}" if node else ""
        super().__init__(f"release_handler:{function}{where} failed: {_text(reason)}")


class OldProcesses(ReleaseHandlerError):
    """``{old_processes, Mod}``: a process still runs old code of ``module`` (nothing ran)."""

    kind = "old_processes"

    @property
    def module(self) -> Any:
        return self.reason[1]


class NoMatchingRelup(ReleaseHandlerError):
    """``{no_matching_relup, ToVsn, CurrentVsn}``: no relup entry leads there."""

    kind = "no_matching_relup"

    @property
    def to_version(self) -> Any:
        return self.reason[1]

    @property
    def current_version(self) -> Any:
        return self.reason[2]


class ExistingRelease(ReleaseHandlerError):
    """``{existing_release, Vsn}``: unpack_release found ``version`` already there."""

    kind = "existing_release"

    @property
    def version(self) -> Any:
        return self.reason[1]


class AlreadyInstalled(ReleaseHandlerError):
    """``{already_installed, Vsn}``: ``version`` is the current release."""

    kind = "already_installed"

    @property
    def version(self) -> Any:
        return self.reason[1]


class NoSuchRelease(ReleaseHandlerError):
    """``{no_such_release, Vsn}``: release_handler does not know ``version``."""

    kind = "no_such_release"

    @property
    def version(self) -> Any:
        return self.reason[1]


class UpgradeFailed(UpgradeError):
    """An upgrade run had failures; ``report`` holds every node's outcome."""

    def __init__(self, report: Any, message: str | None = None) -> None:
        self.report = report
        super().__init__(message or "upgrade failed on one or more nodes")


class PlanError(UpgradeError):
    """:func:`erlbridge.plan.plan_upgrade` refuses the plan; the message is one line
    saying why (e.g. an application rebuilt with other code under its old version)."""
