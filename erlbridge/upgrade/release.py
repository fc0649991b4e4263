"""``release_handler`` (and ``release_handler_1``) operations as sans-I/O objects.

Each operation knows its rpc call (:attr:`rpc` gives ``(module, function, args)``) and
parses the reply term: :meth:`parse_reply` returns a typed result or raises
:class:`~erlbridge.exceptions.ReleaseHandlerError` (a typed subclass for
``old_processes``, ``no_matching_relup``, ``existing_release``, ``already_installed``,
``no_such_release``; ``.kind`` names any other reason's tag). Shapes and option rules:
docs/internals/otp-facts.md#where-release_handler-calls-run and
docs/internals/otp-facts.md#release-operations. A ``{badrpc, _}`` is the rpc layer's
business, not parsed here.

Why one module (~650 lines): one small class per ``release_handler`` call, all sharing the
reply helpers (``{ok, _}`` / ``{error, _}`` shapes, error mapping); splitting the script
calls from the release calls would make those helpers public for no reader's gain.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from erlbridge.exceptions import (
    AlreadyInstalled,
    ExistingRelease,
    NoMatchingRelup,
    NoSuchRelease,
    OldProcesses,
    ReleaseHandlerError,
    ScriptError,
)
from erlbridge.term import Atom, ErlString
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade._fields import Timeout
from erlbridge.upgrade.outcome import EvalOutcome, InstallOutcome, reason_kind
from erlbridge.upgrade.script import Script

logger = logging.getLogger(__name__)

__all__ = [
    "CheckInstallRelease",
    "CheckInstallResult",
    "CheckScript",
    "DowngradeScript",
    "ErrorAction",
    "EvalScript",
    "InstallRelease",
    "InstallResult",
    "LibDir",
    "MakePermanent",
    "RebootOldRelease",
    "ReleaseInfo",
    "ReleaseOperation",
    "ReleaseStatus",
    "RemoveRelease",
    "RpcCall",
    "SetUnpacked",
    "UnpackRelease",
    "UpgradeScript",
    "WhichReleases",
    "release_error",
]

_RH = Atom("release_handler")
_RH1 = Atom("release_handler_1")
_OK = "ok"

_TYPED: dict[str, type[ReleaseHandlerError]] = {
    "old_processes": OldProcesses,
    "no_matching_relup": NoMatchingRelup,
    "existing_release": ExistingRelease,
    "already_installed": AlreadyInstalled,
    "no_such_release": NoSuchRelease,
}
_TYPED_ARITY = {"no_matching_relup": 3}


class RpcCall(NamedTuple):
    """An rpc call: ``(module, function, args)``."""

    module: Atom
    function: Atom
    args: list[Any]


def release_error(function: str, reason: Any) -> ReleaseHandlerError:
    """The typed error for ``{error, reason}`` returned by ``release_handler:function``."""
    kind = reason_kind(reason)
    cls = _TYPED.get(kind or "")
    if (
        cls is not None
        and isinstance(reason, tuple)
        and len(reason) == _TYPED_ARITY.get(kind or "", 2)
    ):
        return cls(function, reason)
    err = ReleaseHandlerError(function, reason)
    err.kind = kind or "error"
    return err


def _unexpected(function: str, reply: Any) -> ReleaseHandlerError:
    err = ReleaseHandlerError(function, ("unexpected_reply", reply))
    err.kind = "unexpected_reply"
    return err


def _error_reason(reply: Any) -> Any:
    """``R`` if ``reply`` is ``{error, R}``, else a unique marker."""
    if f.is_tuple(reply, 2) and f.is_atom(reply[0], "error"):
        return reply[1]
    return _NOT_ERROR


_NOT_ERROR: Any = object()


def _version(value: Any, field: str = "version") -> ErlString:
    return f.string(value, field=field, rule="bad_version")


class ReleaseOperation:
    """Base: a ``release_handler`` call with its reply parser."""

    __slots__ = ()
    function: ClassVar[str]
    module: ClassVar[Atom] = _RH

    def args(self) -> list[Any]:  # pragma: no cover - every operation overrides it
        raise NotImplementedError

    @property
    def rpc(self) -> RpcCall:
        """``(module, function, args)`` to send through ``rex``."""
        return RpcCall(self.module, Atom(self.function), self.args())

    def parse_reply(self, reply: Any) -> Any:  # pragma: no cover - every operation overrides it
        raise NotImplementedError

    def _check_error(self, reply: Any) -> None:
        reason = _error_reason(reply)
        if reason is not _NOT_ERROR:
            raise release_error(self.function, reason)


def _ok_unit(op: ReleaseOperation, reply: Any) -> None:
    if f.is_atom(reply, _OK):
        return
    op._check_error(reply)
    raise _unexpected(op.function, reply)


def _version_or_none(value: Any) -> ErlString | None:
    try:
        return _version(value)
    except ScriptError:
        return None


def _ok_version(op: ReleaseOperation, reply: Any) -> ErlString:
    if f.is_tuple(reply, 2) and f.is_atom(reply[0], _OK):
        version = _version_or_none(reply[1])
        if version is not None:
            return version
    op._check_error(reply)
    raise _unexpected(op.function, reply)


class ReleaseStatus(enum.Enum):
    """A release's status in ``which_releases`` / RELEASES."""

    UNPACKED = "unpacked"
    CURRENT = "current"
    PERMANENT = "permanent"
    OLD = "old"
    TMP_CURRENT = "tmp_current"


@dataclass(frozen=True, slots=True)
class ReleaseInfo:
    """One ``{Name, Vsn, [AppVsn], Status}`` of ``which_releases``."""

    name: ErlString
    version: ErlString
    libs: tuple[ErlString, ...]
    status: ReleaseStatus

    @classmethod
    def from_term(cls, term: Any) -> ReleaseInfo:
        """Read ``{Name, Vsn, Libs, Status}``; ValueError/ScriptError if malformed."""
        if not f.is_tuple(term, 4) or not f.is_list(term[2]) or not isinstance(term[3], str):
            raise ValueError(f"not a release entry: {f.show(term)}")
        return cls(
            _version(term[0], "name"),
            _version(term[1]),
            tuple(_version(lib, "lib") for lib in f.as_list(term[2])),
            ReleaseStatus(str.__str__(term[3])),
        )


@dataclass(frozen=True, slots=True)
class WhichReleases(ReleaseOperation):
    """``release_handler:which_releases()`` or ``which_releases(Status)``."""

    function: ClassVar[str] = "which_releases"
    status: ReleaseStatus | None = None

    def args(self) -> list[Any]:
        return [] if self.status is None else [Atom(self.status.value)]

    def parse_reply(self, reply: Any) -> tuple[ReleaseInfo, ...]:
        """The releases, in the node's order."""
        if f.is_list(reply):
            try:
                return tuple(ReleaseInfo.from_term(t) for t in f.as_list(reply))
            except (ValueError, ScriptError):
                pass
        raise _unexpected(self.function, reply)


@dataclass(frozen=True, slots=True)
class UnpackRelease(ReleaseOperation):
    """``release_handler:unpack_release(Name)``: ``Name`` is the tarball name without ``.tar.gz``.

    Returns the unpacked version. Deletes the tarball on success
    (docs/internals/otp-facts.md#release-operations).
    """

    function: ClassVar[str] = "unpack_release"
    name: ErlString

    def __init__(self, name: str | ErlString) -> None:
        object.__setattr__(self, "name", _version(name, "name"))

    def args(self) -> list[Any]:
        return [self.name]

    def parse_reply(self, reply: Any) -> ErlString:
        """The version unpacked."""
        return _ok_version(self, reply)


@dataclass(frozen=True, slots=True)
class CheckInstallResult:
    """``{ok, OtherVsn, Descr}`` of check_install_release / install_release.

    ``other_version`` is the relup entry key: the from-version of an upgrade, the target
    of a downgrade (docs/internals/otp-facts.md#install_release-outcomes).
    """

    other_version: ErlString
    description: Any


@dataclass(frozen=True, slots=True)
class CheckInstallRelease(ReleaseOperation):
    """``release_handler:check_install_release(Vsn[, [purge]])``.

    Evaluates the Before part of the relup (reads object code, runs applies before PONR).
    """

    function: ClassVar[str] = "check_install_release"
    version: ErlString
    purge: bool

    def __init__(self, version: str | ErlString, *, purge: bool = False) -> None:
        object.__setattr__(self, "version", _version(version))
        object.__setattr__(self, "purge", bool(purge))

    def args(self) -> list[Any]:
        if self.purge:
            return [self.version, [Atom("purge")]]
        return [self.version]

    def parse_reply(self, reply: Any) -> CheckInstallResult:
        """The other version and description; raises for ``{error, R}``."""
        if f.is_tuple(reply, 3) and f.is_atom(reply[0], _OK):
            version = _version_or_none(reply[1])
            if version is not None:
                return CheckInstallResult(version, reply[2])
        self._check_error(reply)
        raise _unexpected(self.function, reply)


class ErrorAction(enum.Enum):
    """What release_handler does after a failure past point_of_no_return."""

    RESTART = "restart"
    REBOOT = "reboot"


@dataclass(frozen=True, slots=True)
class InstallResult:
    """A successful ``install_release``; ``continue_after_restart`` means the node reboots
    into a new emulator and runs the rest of the relup there
    (docs/internals/otp-facts.md#emulator-restarts)."""

    other_version: ErlString
    description: Any
    continue_after_restart: bool


@dataclass(frozen=True, slots=True)
class InstallRelease(ReleaseOperation):
    """``release_handler:install_release(Vsn[, Opts])``, options checked as OTP does.

    ``code_change_timeout`` / ``suspend_timeout`` are ms > 0 or ``infinity``.
    """

    function: ClassVar[str] = "install_release"
    version: ErlString
    error_action: ErrorAction | None
    code_change_timeout: Timeout | None
    suspend_timeout: Timeout | None
    update_paths: bool | None

    def __init__(
        self,
        version: str | ErlString,
        *,
        error_action: ErrorAction | str | None = None,
        code_change_timeout: Timeout | str | None = None,
        suspend_timeout: Timeout | str | None = None,
        update_paths: bool | None = None,
    ) -> None:
        object.__setattr__(self, "version", _version(version))
        if error_action is not None and not isinstance(error_action, ErrorAction):
            if error_action not in ("restart", "reboot"):
                raise ScriptError(
                    f"error_action must be restart or reboot, got {error_action!r}",
                    instruction=error_action,
                    rule="illegal_option",
                )
            error_action = ErrorAction(str.__str__(error_action))
        object.__setattr__(self, "error_action", error_action)
        for name, value in (
            ("code_change_timeout", code_change_timeout),
            ("suspend_timeout", suspend_timeout),
        ):
            checked = None
            if value is not None:
                checked = f.timeout(value, field=name, positive=True)
                if checked == f.DEFAULT:  # install_option/1 takes infinity or Int > 0 only
                    raise ScriptError(
                        f"{name} must be a positive integer (ms) or infinity",
                        instruction=value,
                        rule="illegal_option",
                    )
            object.__setattr__(self, name, checked)
        if update_paths is not None and not isinstance(update_paths, bool):
            raise ScriptError(
                "update_paths must be a bool", instruction=update_paths, rule="illegal_option"
            )
        object.__setattr__(self, "update_paths", update_paths)

    def options(self) -> list[Any]:
        """The option list, in a fixed order."""
        opts: list[Any] = []
        if self.error_action is not None:
            opts.append((Atom("error_action"), Atom(self.error_action.value)))
        if self.code_change_timeout is not None:
            opts.append((Atom("code_change_timeout"), self.code_change_timeout))
        if self.suspend_timeout is not None:
            opts.append((Atom("suspend_timeout"), self.suspend_timeout))
        if self.update_paths is not None:
            opts.append((Atom("update_paths"), self.update_paths))
        return opts

    def args(self) -> list[Any]:
        opts = self.options()
        return [self.version, opts] if opts else [self.version]

    def outcome(self, reply: Any) -> InstallOutcome:
        """The reply as data (never raises): success, or failure with its phase."""
        return InstallOutcome.from_reply(reply)

    def parse_reply(self, reply: Any) -> InstallResult:
        """The result; raises the typed error for ``{error, R}``."""
        version = _version_or_none(reply[1]) if f.is_tuple(reply, 3) else None
        if version is not None:
            cont = f.is_atom(reply[0], "continue_after_restart")
            if cont or f.is_atom(reply[0], _OK):
                return InstallResult(version, reply[2], cont)
        self._check_error(reply)
        raise _unexpected(self.function, reply)


@dataclass(frozen=True, slots=True)
class _VersionOnly(ReleaseOperation):
    version: ErlString

    def __init__(self, version: str | ErlString) -> None:
        object.__setattr__(self, "version", _version(version))

    def args(self) -> list[Any]:
        return [self.version]

    def parse_reply(self, reply: Any) -> None:
        """None for ``ok``; raises for ``{error, R}``."""
        _ok_unit(self, reply)


@dataclass(frozen=True, slots=True, init=False)
class MakePermanent(_VersionOnly):
    """``release_handler:make_permanent(Vsn)``: only for the current release."""

    function: ClassVar[str] = "make_permanent"


@dataclass(frozen=True, slots=True, init=False)
class RemoveRelease(_VersionOnly):
    """``release_handler:remove_release(Vsn)``: deletes files no other release uses."""

    function: ClassVar[str] = "remove_release"


@dataclass(frozen=True, slots=True, init=False)
class RebootOldRelease(_VersionOnly):
    """``release_handler:reboot_old_release(Vsn)``: make an old release permanent and reboot."""

    function: ClassVar[str] = "reboot_old_release"


@dataclass(frozen=True, slots=True)
class LibDir:
    """``{App, Vsn, Dir}``: where an application's directory is (a lib dir triple)."""

    application: Atom
    version: ErlString
    directory: ErlString

    def __init__(
        self, application: str, version: str | ErlString, directory: str | ErlString
    ) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(self, "version", _version(version))
        object.__setattr__(self, "directory", _version(directory, "directory"))

    def to_term(self) -> tuple[Atom, ErlString, ErlString]:
        """``{App, Vsn, Dir}``."""
        return (self.application, self.version, self.directory)


def _lib_dirs(values: Iterable[LibDir | tuple[str, str, str]]) -> tuple[LibDir, ...]:
    out = []
    for value in f.items(values, field="lib_dirs"):
        if isinstance(value, LibDir):
            out.append(value)
        elif f.is_tuple(value, 3):
            out.append(LibDir(*value))
        else:
            raise ScriptError(
                f"a lib dir is (app, vsn, dir), got {f.show(value)}",
                instruction=value,
                rule="bad_lib_dir",
            )
    return tuple(out)


@dataclass(frozen=True, slots=True)
class SetUnpacked(ReleaseOperation):
    """``release_handler:set_unpacked(RelFile, LibDirs)``: register a release without a tarball.

    ``lib_dirs`` are ``(app, vsn, parent_dir)`` where ``parent_dir`` contains ``App-Vsn``.
    """

    function: ClassVar[str] = "set_unpacked"
    rel_file: ErlString
    lib_dirs: tuple[LibDir, ...]

    def __init__(
        self, rel_file: str | ErlString, lib_dirs: Iterable[LibDir | tuple[str, str, str]] = ()
    ) -> None:
        object.__setattr__(self, "rel_file", _version(rel_file, "rel_file"))
        object.__setattr__(self, "lib_dirs", _lib_dirs(lib_dirs))

    def args(self) -> list[Any]:
        return [self.rel_file, [d.to_term() for d in self.lib_dirs]]

    def parse_reply(self, reply: Any) -> ErlString:
        """The release version."""
        return _ok_version(self, reply)


@dataclass(frozen=True, slots=True)
class CheckScript(ReleaseOperation):
    """``release_handler_1:check_script(Script, LibDirs)``: the dry run (evaluates Before).

    Returns the modules a ``purge`` would remove (``{ok, PurgeMods}``).
    """

    function: ClassVar[str] = "check_script"
    module: ClassVar[Atom] = _RH1
    script: Script
    lib_dirs: tuple[LibDir, ...]

    def __init__(self, script: Script, lib_dirs: Iterable[LibDir | tuple[str, str, str]]) -> None:
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "lib_dirs", _lib_dirs(lib_dirs))

    def args(self) -> list[Any]:
        return [self.script.to_term(), [d.to_term() for d in self.lib_dirs]]

    def parse_reply(self, reply: Any) -> tuple[Atom, ...]:
        """The purgeable modules; raises for ``{error, R}``."""
        if f.is_tuple(reply, 2) and f.is_atom(reply[0], _OK) and f.is_list(reply[1]):
            try:
                return f.atoms(f.as_list(reply[1]), field="modules")
            except ScriptError:
                pass
        self._check_error(reply)
        raise _unexpected(self.function, reply)


@dataclass(frozen=True, slots=True)
class EvalScript(ReleaseOperation):
    """``release_handler_1:eval_script(Script, Apps, LibDirs, NewLibs, Opts)`` (direct mode).

    Runs in the rpc worker, so a native ``sync_nodes`` can never complete there
    (docs/internals/otp-facts.md#sync_nodes); :meth:`parse_reply` refuses nothing,
    :meth:`outcome` tells where a
    failure happened.
    """

    function: ClassVar[str] = "eval_script"
    module: ClassVar[Atom] = _RH1
    script: Script
    lib_dirs: tuple[LibDir, ...]
    new_libs: tuple[LibDir, ...]
    update_paths: bool | None
    suspend_timeout: Timeout | None
    code_change_timeout: Timeout | None

    def __init__(
        self,
        script: Script,
        *,
        lib_dirs: Iterable[LibDir | tuple[str, str, str]] = (),
        new_libs: Iterable[LibDir | tuple[str, str, str]] = (),
        update_paths: bool | None = None,
        suspend_timeout: Timeout | str | None = None,
        code_change_timeout: Timeout | str | None = None,
    ) -> None:
        object.__setattr__(self, "script", script)
        object.__setattr__(self, "lib_dirs", _lib_dirs(lib_dirs))
        object.__setattr__(self, "new_libs", _lib_dirs(new_libs))
        object.__setattr__(
            self, "update_paths", None if update_paths is None else bool(update_paths)
        )
        for name, value in (
            ("suspend_timeout", suspend_timeout),
            ("code_change_timeout", code_change_timeout),
        ):
            object.__setattr__(self, name, None if value is None else f.timeout(value, field=name))

    def args(self) -> list[Any]:
        opts: list[Any] = []
        if self.update_paths is not None:
            opts.append((Atom("update_paths"), self.update_paths))
        if self.suspend_timeout is not None:
            opts.append((Atom("suspend_timeout"), self.suspend_timeout))
        if self.code_change_timeout is not None:
            opts.append((Atom("code_change_timeout"), self.code_change_timeout))
        return [
            self.script.to_term(),
            [],
            [d.to_term() for d in self.lib_dirs],
            [d.to_term() for d in self.new_libs],
            opts,
        ]

    def outcome(self, reply: Any) -> EvalOutcome:
        """The reply as data (never raises)."""
        return EvalOutcome.from_reply(reply)

    def parse_reply(self, reply: Any) -> EvalOutcome:
        """The outcome if it succeeded; raises ReleaseHandlerError (``.kind`` set) if not."""
        outcome = EvalOutcome.from_reply(reply)
        if not outcome.ok:
            raise release_error(self.function, outcome.reason)
        return outcome


def _thrown(function: str, reply: Any) -> ReleaseHandlerError:
    """upgrade_script/downgrade_script ``throw`` their reason; through rpc it arrives as
    the reply itself (or ``{error, R}`` from inner helpers)."""
    reason = _error_reason(reply)
    return release_error(function, reply if reason is _NOT_ERROR else reason)


@dataclass(frozen=True, slots=True)
class UpgradeScript(ReleaseOperation):
    """``release_handler:upgrade_script(App, NewDir)``: the target node translates the
    appup in ``NewDir/ebin`` with its own ``systools_rc`` (runs in the caller, needs the
    application running). Reply ``{ok, NewVsn, LowLevelScript}``.
    """

    function: ClassVar[str] = "upgrade_script"
    application: Atom
    new_dir: ErlString

    def __init__(self, application: str, new_dir: str | ErlString) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(self, "new_dir", _version(new_dir, "new_dir"))

    def args(self) -> list[Any]:
        return [self.application, self.new_dir]

    def parse_reply(self, reply: Any) -> tuple[ErlString, Script]:
        """``(new_version, script)``; ReleaseHandlerError (``.kind``) for a thrown reason;
        ScriptError if the node's script has an instruction this library does not know."""
        if f.is_tuple(reply, 3) and f.is_atom(reply[0], _OK):
            version = _version_or_none(reply[1])
            if version is not None:
                return version, Script.from_term(reply[2])
        raise _thrown(self.function, reply)


@dataclass(frozen=True, slots=True)
class DowngradeScript(ReleaseOperation):
    """``release_handler:downgrade_script(App, OldVsn, OldDir)``: the node translates the
    downgrade steps of the running version's appup. Reply ``{ok, LowLevelScript}``.
    """

    function: ClassVar[str] = "downgrade_script"
    application: Atom
    old_version: ErlString
    old_dir: ErlString

    def __init__(
        self, application: str, old_version: str | ErlString, old_dir: str | ErlString
    ) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(self, "old_version", _version(old_version, "old_version"))
        object.__setattr__(self, "old_dir", _version(old_dir, "old_dir"))

    def args(self) -> list[Any]:
        return [self.application, self.old_version, self.old_dir]

    def parse_reply(self, reply: Any) -> Script:
        """The low-level downgrade script; ReleaseHandlerError for a thrown reason."""
        if f.is_tuple(reply, 2) and f.is_atom(reply[0], _OK):
            return Script.from_term(reply[1])
        raise _thrown(self.function, reply)
