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
    ├── Timeout(TimeoutError)                 .operation, .timeout
    ├── ProcessError
    │   ├── NoProcess(LookupError)
    │   └── ProcessExited                     .pid, .reason
    ├── RemoteError
    │   ├── BadRpc                            .reason
    │   └── RemoteException                   .kind, .reason, .stacktrace
    └── UpgradeError
        ├── ScriptError(ValueError)           .index, .instruction, .rule
        ├── ReleaseHandlerError               .function, .reason, .kind
        │   ├── OldProcesses                  .module
        │   ├── NoMatchingRelup               .to_version, .current_version
        │   ├── ExistingRelease               .version
        │   ├── AlreadyInstalled              .version
        │   └── NoSuchRelease                 .version
        └── UpgradeFailed                     .report

Constructors never log and never format secrets (the cookie is never an argument).
Erlang reasons are kept as data on the attributes; ``str()`` renders them for humans.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = [
    "AlreadyInstalled",
    "AuthenticationError",
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
    "OldProcesses",
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
    "Timeout",
    "UpgradeError",
    "UpgradeFailed",
]


#: How Erlang reasons are written in messages. This module is below the term layer, so
#: :mod:`erlbridge.term` installs its one-line Erlang formatter here when it is imported
#: (messages then read ``{badrpc,{'EXIT',noproc}}`` rather than Python reprs).
_term_text: Callable[[Any], str] = str


def set_term_formatter(formatter: Callable[[Any], str]) -> None:
    """Install the function that renders Erlang reasons in exception messages."""
    global _term_text
    _term_text = formatter


def _text(reason: Any) -> str:
    if type(reason) is str:  # our own prose (an Atom, a str subclass, is an Erlang term)
        return reason
    try:
        return _term_text(reason)
    except Exception:  # not a term (e.g. an OSError): a message must never fail to build
        return str(reason)


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
    """EPMD does not know the node name."""


class RegistrationError(EpmdError):
    """ALIVE2 registration was refused (the name is probably taken)."""


# -- connections and processes ---------------------------------------------------------


class NodeDown(ErlbridgeError, ConnectionError):
    """The connection to ``node`` was lost or could not be made; ``reason`` says why."""

    def __init__(self, node: str, reason: Any = None) -> None:
        self.node = node
        self.reason = reason
        super().__init__(f"node {node} is down" + ("" if reason is None else f": {_text(reason)}"))


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
