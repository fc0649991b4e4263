"""High-level appup instructions and the ``.appup`` file.

The classes mirror ``systools_rc:check_op/1`` and ``expand_script/1``
(docs/internals/otp-facts.md#appups-systools_rc,
OTP 25 sasl-4.2 systools_rc.erl:87-122, :746-855). Abbreviated forms are kept as
written: a field left ``None`` is *omitted* from the term, so ``{update, m}`` reads back
as ``Update("m")`` and writes back as ``{update, m}``; ``.expanded()`` gives the full
form systools uses. Low-level instructions are valid appup instructions too and pass
through unchanged. Translation to a low-level script is done by the target node's own
``systools_rc`` (the driver calls it over rpc); here appups only round-trip.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString, format_term
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade._fields import PurgeMethod, StartType, Timeout
from erlbridge.upgrade.instructions import (
    Instruction,
    LowLevelInstruction,
    instruction_from_term,
    term_tag,
)

logger = logging.getLogger(__name__)

__all__ = [
    "AddApplication",
    "AddModule",
    "Advanced",
    "Appup",
    "AppupEntry",
    "AppupInstruction",
    "DeleteModule",
    "HighLevelInstruction",
    "LoadModule",
    "ModType",
    "RemoveApplication",
    "RestartApplication",
    "SOFT",
    "Update",
    "VersionSpec",
    "appup_instruction_from_term",
]

_BRUTAL = PurgeMethod.BRUTAL_PURGE
#: The ``soft`` change of an ``update`` instruction.
SOFT = Atom("soft")
_SUPERVISOR = Atom("supervisor")


@dataclass(frozen=True, slots=True)
class Advanced:
    """The ``{advanced, Extra}`` change of an ``update``: code_change gets ``Extra``."""

    extra: Any

    def __init__(self, extra: Any) -> None:
        object.__setattr__(self, "extra", f.term(extra, field="extra"))

    def to_term(self) -> tuple[Atom, Any]:
        """``{advanced, Extra}``."""
        return (Atom("advanced"), self.extra)


Change: TypeAlias = Atom | Advanced
#: ``static`` or ``dynamic`` (systools_rc ``check_mod_type``).
ModType: TypeAlias = Atom


def _change(value: Any) -> Change:
    if isinstance(value, Advanced):
        return value
    if isinstance(value, str) and value == "soft":
        return SOFT
    if f.is_tuple(value, 2) and isinstance(value[0], str) and value[0] == "advanced":
        # the first element is an atom by the field's definition, so a str is taken as one
        return Advanced(value[1])
    raise f.fail(
        f"change must be soft or {{advanced, Extra}}, got {f.show(value)}",
        rule="bad_change",
        instruction=value,
    )


def _change_term(change: Change) -> Any:
    return change.to_term() if isinstance(change, Advanced) else change


def _deps(value: Any) -> tuple[Atom, ...]:
    return f.atoms(value, field="dep_mods", rule="bad_module")


def _is_change(value: Any) -> bool:
    return (isinstance(value, str) and value == "soft") or (
        f.is_tuple(value, 2) and f.is_atom(value[0], "advanced")
    )


class HighLevelInstruction(Instruction):
    """An appup-only instruction (translated by systools_rc on the target)."""

    __slots__ = ()

    @classmethod
    def from_term(cls, term: Any) -> Any:
        """Read this instruction from its term; ScriptError (showing the term) if malformed."""
        if term_tag(term) != cls.tag or not isinstance(term, tuple):
            raise ScriptError(
                f"not a {cls.tag} instruction: {f.show(term)}",
                instruction=term,
                rule="malformed_instruction",
            )
        try:
            return cls._parse(term)
        except ScriptError as exc:
            raise ScriptError(f"{exc} in {f.show(term)}", instruction=term, rule=exc.rule) from exc

    @classmethod
    def _parse(cls, term: tuple[Any, ...]) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError


def _malformed(term: Any) -> ScriptError:
    return f.fail(f"malformed {f.show(term)}", rule="malformed_instruction", instruction=term)


@dataclass(frozen=True, slots=True, eq=False)
class LoadModule(HighLevelInstruction):
    """``{load_module, Mod}``, ``{load_module, Mod, DepMods}`` or the full
    ``{load_module, Mod, PrePurge, PostPurge, DepMods}`` (purges given together with deps).
    """

    tag: ClassVar[str] = "load_module"
    module: Atom
    pre_purge: PurgeMethod | None
    post_purge: PurgeMethod | None
    dep_mods: tuple[Atom, ...] | None

    def __init__(
        self,
        module: str,
        pre_purge: PurgeMethod | str | None = None,
        post_purge: PurgeMethod | str | None = None,
        dep_mods: Iterable[str] | None = None,
    ) -> None:
        object.__setattr__(self, "module", f.atom(module, field="module", rule="bad_module"))
        if (pre_purge is None) != (post_purge is None) or (
            pre_purge is not None and dep_mods is None
        ):
            raise f.fail(
                "load_module takes both purge methods and dep_mods together, or neither purge",
                rule="malformed_instruction",
                instruction=module,
            )
        object.__setattr__(
            self, "pre_purge", None if pre_purge is None else f.purge(pre_purge, field="pre_purge")
        )
        object.__setattr__(
            self,
            "post_purge",
            None if post_purge is None else f.purge(post_purge, field="post_purge"),
        )
        object.__setattr__(self, "dep_mods", None if dep_mods is None else _deps(dep_mods))

    def expanded(self) -> LoadModule:
        """The full five-element form systools_rc expands this to."""
        return LoadModule(
            self.module, self.pre_purge or _BRUTAL, self.post_purge or _BRUTAL, self.dep_mods or ()
        )

    def to_term(self) -> Any:
        head = (Atom(self.tag), self.module)
        if self.dep_mods is None:
            return head
        if self.pre_purge is None or self.post_purge is None:
            return (*head, list(self.dep_mods))
        return (*head, self.pre_purge.to_term(), self.post_purge.to_term(), list(self.dep_mods))

    @classmethod
    def _parse(cls, term: tuple[Any, ...]) -> LoadModule:
        if len(term) == 2:
            return cls(term[1])
        if len(term) == 3 and f.is_list(term[2]):
            return cls(term[1], dep_mods=f.as_list(term[2]))
        if len(term) == 5 and f.is_list(term[4]):
            return cls(term[1], term[2], term[3], f.as_list(term[4]))
        raise _malformed(term)


@dataclass(frozen=True, slots=True, eq=False)
class Update(HighLevelInstruction):
    """``{update, Mod, ...}`` in every form systools_rc accepts.

    Forms (``None`` fields are omitted): ``{update, M}``; ``{update, M, supervisor}``
    (``supervisor=True``); ``{update, M, Change}``; ``{update, M, DepMods}``;
    ``{update, M, Change, DepMods}``; ``{update, M, Change, Pre, Post, DepMods}``;
    ``{update, M, Timeout, Change, Pre, Post, DepMods}``;
    ``{update, M, ModType, Timeout, Change, Pre, Post, DepMods}``. ``change`` is
    :data:`SOFT` or :class:`Advanced`; ``mod_type`` ``static``/``dynamic``; ``timeout``
    ``default``, ``infinity`` or ms > 0.
    """

    tag: ClassVar[str] = "update"
    module: Atom
    change: Change | None
    dep_mods: tuple[Atom, ...] | None
    pre_purge: PurgeMethod | None
    post_purge: PurgeMethod | None
    timeout: Timeout | None
    mod_type: ModType | None
    supervisor: bool

    def __init__(
        self,
        module: str,
        change: Change | str | tuple[str, Any] | None = None,
        *,
        dep_mods: Iterable[str] | None = None,
        pre_purge: PurgeMethod | str | None = None,
        post_purge: PurgeMethod | str | None = None,
        timeout: Timeout | str | None = None,
        mod_type: str | None = None,
        supervisor: bool = False,
    ) -> None:
        set_ = object.__setattr__
        set_(self, "module", f.atom(module, field="module", rule="bad_module"))
        set_(self, "change", None if change is None else _change(change))
        set_(self, "dep_mods", None if dep_mods is None else _deps(dep_mods))
        set_(
            self, "pre_purge", None if pre_purge is None else f.purge(pre_purge, field="pre_purge")
        )
        set_(
            self,
            "post_purge",
            None if post_purge is None else f.purge(post_purge, field="post_purge"),
        )
        set_(
            self,
            "timeout",
            None if timeout is None else f.timeout(timeout, field="timeout", positive=True),
        )
        if mod_type is not None and mod_type not in ("static", "dynamic"):
            raise f.fail(
                f"mod_type must be static or dynamic, got {f.show(mod_type)}",
                rule="bad_mod_type",
                instruction=mod_type,
            )
        set_(self, "mod_type", None if mod_type is None else Atom(mod_type))
        set_(self, "supervisor", bool(supervisor))
        self._form()  # refuses combinations no term form has

    def _form(self) -> int:
        """The term size of the form the set fields select (2..8); ScriptError if none."""
        purges = (self.pre_purge is not None, self.post_purge is not None)
        if self.supervisor:
            if (
                self.change is None
                and self.dep_mods is None
                and purges == (False, False)
                and (self.timeout is None and self.mod_type is None)
            ):
                return 3
        elif purges == (True, True):
            if self.change is not None and self.dep_mods is not None:
                if self.mod_type is not None and self.timeout is not None:
                    return 8
                if self.mod_type is None:
                    return 7 if self.timeout is not None else 6
        elif purges == (False, False) and self.timeout is None and self.mod_type is None:
            return 2 + (self.change is not None) + (self.dep_mods is not None)
        raise f.fail(
            "no update form has this combination of fields (see the Update docstring)",
            rule="malformed_instruction",
            instruction=self.module,
        )

    def expanded(self) -> Update:
        """The full eight-element form systools_rc normalises this to."""
        if self.supervisor:
            return Update(
                self.module,
                Advanced([]),
                dep_mods=(),
                pre_purge=_BRUTAL,
                post_purge=_BRUTAL,
                timeout="default",
                mod_type="static",
            )
        return Update(
            self.module,
            self.change or SOFT,
            dep_mods=self.dep_mods or (),
            pre_purge=self.pre_purge or _BRUTAL,
            post_purge=self.post_purge or _BRUTAL,
            timeout="default" if self.timeout is None else self.timeout,
            mod_type=self.mod_type or "dynamic",
        )

    def to_term(self) -> Any:
        size = self._form()
        out: list[Any] = [Atom(self.tag), self.module]
        if size == 3 and self.supervisor:
            return (*out, _SUPERVISOR)
        if size == 8:
            out.append(self.mod_type)
        if size >= 7:
            out.append(self.timeout)
        if self.change is not None:
            out.append(_change_term(self.change))
        if self.pre_purge is not None and self.post_purge is not None:
            out += [self.pre_purge.to_term(), self.post_purge.to_term()]
        if self.dep_mods is not None:
            out.append(list(self.dep_mods))
        return tuple(out)

    @classmethod
    def _parse(cls, term: tuple[Any, ...]) -> Update:
        mod, rest = term[1], term[2:]
        n = len(rest)
        if n == 0:
            return cls(mod)
        if n == 1:
            if f.is_atom(rest[0], "supervisor"):
                return cls(mod, supervisor=True)
            if f.is_list(rest[0]):
                return cls(mod, dep_mods=f.as_list(rest[0]))
            return cls(mod, rest[0])
        if n == 2 and _is_change(rest[0]) and f.is_list(rest[1]):
            return cls(mod, rest[0], dep_mods=f.as_list(rest[1]))
        if n in (4, 5, 6) and f.is_list(rest[-1]):
            change, pre, post = rest[-4], rest[-3], rest[-2]
            extra = {"mod_type": rest[0], "timeout": rest[1]} if n == 6 else {}
            if n == 5:
                extra = {"timeout": rest[0]}
            return cls(
                mod, change, dep_mods=f.as_list(rest[-1]), pre_purge=pre, post_purge=post, **extra
            )
        raise _malformed(term)


@dataclass(frozen=True, slots=True, eq=False)
class _ModuleDeps(HighLevelInstruction):
    module: Atom
    dep_mods: tuple[Atom, ...] | None

    def __init__(self, module: str, dep_mods: Iterable[str] | None = None) -> None:
        object.__setattr__(self, "module", f.atom(module, field="module", rule="bad_module"))
        object.__setattr__(self, "dep_mods", None if dep_mods is None else _deps(dep_mods))

    def to_term(self) -> Any:
        if self.dep_mods is None:
            return (Atom(self.tag), self.module)
        return (Atom(self.tag), self.module, list(self.dep_mods))

    @classmethod
    def _parse(cls, term: tuple[Any, ...]) -> Any:
        if len(term) == 2:
            return cls(term[1])
        if len(term) == 3 and f.is_list(term[2]):
            return cls(term[1], f.as_list(term[2]))
        raise _malformed(term)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class AddModule(_ModuleDeps):
    """``{add_module, Mod}`` / ``{add_module, Mod, DepMods}``: load a new module."""

    tag: ClassVar[str] = "add_module"


@dataclass(frozen=True, slots=True, eq=False, init=False)
class DeleteModule(_ModuleDeps):
    """``{delete_module, Mod}`` / ``{delete_module, Mod, DepMods}``: remove a module."""

    tag: ClassVar[str] = "delete_module"


@dataclass(frozen=True, slots=True, eq=False)
class AddApplication(HighLevelInstruction):
    """``{add_application, App}`` or ``{add_application, App, Type}``.

    Without a type, systools starts the application ``permanent``.
    """

    tag: ClassVar[str] = "add_application"
    application: Atom
    type: StartType | None

    def __init__(self, application: str, type: StartType | str | None = None) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(self, "type", None if type is None else f.start_type(type))

    def to_term(self) -> Any:
        if self.type is None:
            return (Atom(self.tag), self.application)
        return (Atom(self.tag), self.application, self.type.to_term())

    @classmethod
    def _parse(cls, term: tuple[Any, ...]) -> AddApplication:
        if len(term) in (2, 3):
            return cls(*term[1:])
        raise _malformed(term)


@dataclass(frozen=True, slots=True, eq=False)
class _AppOnly(HighLevelInstruction):
    application: Atom

    def __init__(self, application: str) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )

    def to_term(self) -> Any:
        return (Atom(self.tag), self.application)

    @classmethod
    def _parse(cls, term: tuple[Any, ...]) -> Any:
        if len(term) == 2:
            return cls(term[1])
        raise _malformed(term)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class RemoveApplication(_AppOnly):
    """``{remove_application, App}``: stop, remove modules, unload.

    See docs/internals/otp-facts.md#high-level-instructions.
    """

    tag: ClassVar[str] = "remove_application"


@dataclass(frozen=True, slots=True, eq=False, init=False)
class RestartApplication(_AppOnly):
    """``{restart_application, App}``: stop, reload and start the application again."""

    tag: ClassVar[str] = "restart_application"


_HIGH: dict[str, type[HighLevelInstruction]] = {
    c.tag: c
    for c in (
        LoadModule,
        Update,
        AddModule,
        DeleteModule,
        AddApplication,
        RemoveApplication,
        RestartApplication,
    )
}

#: What an appup step may hold: high-level or low-level instructions.
AppupInstruction: TypeAlias = HighLevelInstruction | LowLevelInstruction


def appup_instruction_from_term(term: Any) -> AppupInstruction:
    """The typed appup instruction for ``term`` (high-level first, else low-level)."""
    cls = _HIGH.get(term_tag(term) or "")
    if cls is not None:
        result: AppupInstruction = cls.from_term(term)
        return result
    return instruction_from_term(term)


#: An appup version key: an exact version string, or a regular expression (a binary).
VersionSpec: TypeAlias = ErlString | bytes


def _version_spec(value: Any) -> VersionSpec:
    if isinstance(value, bytes):
        return value
    return f.string(value, field="appup version", rule="bad_version")


@dataclass(frozen=True, slots=True)
class AppupEntry:
    """One ``{Vsn, [Instruction]}`` step; ``version`` is a string or a regex binary."""

    version: VersionSpec
    instructions: tuple[AppupInstruction, ...]

    def __init__(
        self, version: VersionSpec | str, instructions: Iterable[AppupInstruction]
    ) -> None:
        object.__setattr__(self, "version", _version_spec(version))
        items = tuple(instructions)
        for item in items:
            if not isinstance(item, (HighLevelInstruction, LowLevelInstruction)):
                raise ScriptError(
                    f"not an appup instruction: {item!r}",
                    instruction=item,
                    rule="not_an_instruction",
                )
        object.__setattr__(self, "instructions", items)

    def matches(self, version: str | ErlString) -> bool:
        """True if ``version`` is this entry's version, or fully matches its regex.

        systools accepts a regex binary when its first match is the whole version; Python's
        ``re`` stands in for PCRE here (the same for the patterns OTP's appups use).
        """
        text = version.text if isinstance(version, ErlString) else str.__str__(version)
        if isinstance(self.version, bytes):
            found = re.search(self.version.decode("utf-8"), text)
            return found is not None and found.group(0) == text
        return self.version.text == text

    def to_term(self) -> tuple[Any, list[Any]]:
        """``{Vsn, [Instruction]}``."""
        return (self.version, [i.to_term() for i in self.instructions])

    @classmethod
    def from_term(cls, term: Any) -> AppupEntry:
        """Read ``{Vsn, [Instruction]}``; ScriptError (with index) for a bad instruction."""
        if not f.is_tuple(term, 2) or not f.is_list(term[1]):
            raise ScriptError(
                f"an appup step is {{Vsn, [Instruction]}}, got {f.show(term)}",
                instruction=term,
                rule="bad_appup",
            )
        items = []
        for index, item in enumerate(f.as_list(term[1])):
            try:
                items.append(appup_instruction_from_term(item))
            except ScriptError as exc:
                raise ScriptError(
                    f"instruction #{index}: {exc}", index=index, instruction=item, rule=exc.rule
                ) from exc
        return cls(term[0], items)


@dataclass(frozen=True, slots=True)
class Appup:
    """An ``.appup`` file: ``{Vsn, [{UpFromVsn, Instrs}], [{DownToVsn, Instrs}]}``."""

    version: ErlString
    up: tuple[AppupEntry, ...]
    down: tuple[AppupEntry, ...]

    def __init__(
        self,
        version: str | ErlString,
        up: Iterable[AppupEntry] = (),
        down: Iterable[AppupEntry] = (),
    ) -> None:
        object.__setattr__(
            self, "version", f.string(version, field="appup version", rule="bad_version")
        )
        object.__setattr__(self, "up", tuple(up))
        object.__setattr__(self, "down", tuple(down))

    def up_from(self, version: str | ErlString) -> tuple[AppupInstruction, ...]:
        """The upgrade steps from ``version`` (first matching entry); KeyError if none."""
        return _find(self.up, version).instructions

    def down_to(self, version: str | ErlString) -> tuple[AppupInstruction, ...]:
        """The downgrade steps to ``version`` (first matching entry); KeyError if none."""
        return _find(self.down, version).instructions

    def to_term(self) -> tuple[Any, list[Any], list[Any]]:
        """The appup term."""
        return (self.version, [e.to_term() for e in self.up], [e.to_term() for e in self.down])

    @classmethod
    def from_term(cls, term: Any) -> Appup:
        """Read an appup term; ScriptError on any malformed part."""
        if not f.is_tuple(term, 3) or not f.is_list(term[1]) or not f.is_list(term[2]):
            raise ScriptError(
                f"an appup is {{Vsn, UpSteps, DownSteps}}, got {f.show(term)}",
                instruction=term,
                rule="bad_appup",
            )
        return cls(
            term[0],
            [AppupEntry.from_term(e) for e in f.as_list(term[1])],
            [AppupEntry.from_term(e) for e in f.as_list(term[2])],
        )

    def to_text(self) -> str:
        """Erlang text, one instruction per line; ``file:consult/1`` gives ``[to_term()]``."""
        return (
            "%% coding: utf-8\n{"
            + format_term(self.version)
            + ",\n "
            + _entries_text(self.up)
            + ",\n "
            + _entries_text(self.down)
            + "}.\n"
        )

    @classmethod
    def from_text(cls, text: str, *, exactly_one: bool = False) -> Appup:
        """The appup of an ``.appup`` file's text: its first term.

        Two OTP readers disagree on what an appup file is, so pick the one that will
        read the file:

        * ``systools:make_relup`` (the relup generator, ``systools_relup`` through
          ``systools_lib:read_term/1``) reads the **first term only** and never looks
          past its ``.``: projects such as ranch keep the appups of older versions after
          it, as history. This is the default; :meth:`all_from_text` gives every term.
        * ``release_handler:upgrade_app/2`` and ``downgrade_app/3`` (upgrading one
          application without a relup) read it with ``file:consult/1`` and need
          **exactly one** term: pass ``exactly_one=True`` to refuse anything else.

        Raises:
            ScriptError: malformed text (rule ``syntax_error``), a first term that is
                not an appup (``bad_appup``), or, with ``exactly_one``, more than one
                term (``bad_appup``).
        """
        if exactly_one:
            terms = f.parse_text(text)
            if len(terms) != 1:
                raise ScriptError(
                    f"release_handler reads an appup file of exactly one term, got {len(terms)}",
                    rule="bad_appup",
                )
            return cls.from_term(terms[0])
        first = f.parse_text(text[: _first_term_end(text)])
        if not first:
            raise ScriptError("an appup file holds no term", rule="bad_appup")
        return cls.from_term(first[0])

    @classmethod
    def all_from_text(cls, text: str) -> tuple[Appup, ...]:
        """Every appup of an ``.appup`` file, in file order (``file:consult/1``).

        The first is the one systools uses (:meth:`from_text`); the others are the
        history some projects keep after it (ranch: one term per past release). Unlike
        systools this needs the whole file to be appup terms.

        Raises:
            ScriptError: malformed text, no term, or a term that is not an appup (the
                message gives its 1-based position).
        """
        terms = f.parse_text(text)
        if not terms:
            raise ScriptError("an appup file holds no term", rule="bad_appup")
        out = []
        for number, term in enumerate(terms, 1):
            try:
                out.append(cls.from_term(term))
            except ScriptError as exc:
                raise ScriptError(f"term #{number}: {exc}", rule=exc.rule) from exc
        return tuple(out)


def _first_term_end(text: str) -> int:
    """The index just past the first form's terminating ``.`` (or ``len(text)``).

    This is where ``erl_scan:tokens/3`` stops, as ``systools_lib:read_term/1`` uses it:
    a ``.`` followed by white space, ``%`` or the end, outside strings, quoted atoms,
    character literals (``$.``) and comments. What follows is never read by systools,
    so it may hold anything.
    """
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "%":
            end = text.find("\n", i)
            i = n if end < 0 else end + 1
        elif char in "\"'":
            i += 1
            while i < n and text[i] != char:
                i += 2 if text[i] == "\\" else 1
            i += 1
        elif char == "$":
            i += 3 if text[i + 1 : i + 2] == "\\" else 2
        elif char == "." and (i + 1 == n or text[i + 1].isspace() or text[i + 1] == "%"):
            return i + 1
        else:
            i += 1
    return n


def _find(entries: Sequence[AppupEntry], version: str | ErlString) -> AppupEntry:
    for entry in entries:
        if entry.matches(version):
            return entry
    raise KeyError(version)


def _entries_text(entries: Sequence[AppupEntry]) -> str:
    if not entries:
        return "[]"
    parts = []
    for entry in entries:
        terms = [i.to_term() for i in entry.instructions]
        body = (
            "[" + ",\n    ".join(format_term(t, width=10_000) for t in terms) + "]"
            if terms
            else "[]"
        )
        parts.append("{" + format_term(entry.version) + ",\n   " + body + "}")
    return "[" + ",\n  ".join(parts) + "]"
