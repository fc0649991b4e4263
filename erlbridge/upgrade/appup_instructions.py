"""High-level appup instructions: one class per ``systools_rc`` instruction.

The classes mirror ``systools_rc:check_op/1`` and ``expand_script/1``
(docs/internals/otp-facts.md#appups-systools_rc,
OTP 25 sasl-4.2 systools_rc.erl:87-122, :746-855). Abbreviated forms are kept as
written: a field left ``None`` is *omitted* from the term, so ``{update, m}`` reads back
as ``Update("m")`` and writes back as ``{update, m}``; ``.expanded()`` gives the full
form systools uses. Low-level instructions are valid appup instructions too and pass
through unchanged (:func:`appup_instruction_from_term`). The ``.appup`` file is in
:mod:`erlbridge.upgrade.appup`, which re-exports these names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade._fields import PurgeMethod, StartType, Timeout
from erlbridge.upgrade.instructions import (
    Instruction,
    LowLevelInstruction,
    instruction_from_term,
    term_tag,
)

__all__ = [
    "AddApplication",
    "AddModule",
    "Advanced",
    "AppupInstruction",
    "DeleteModule",
    "HighLevelInstruction",
    "LoadModule",
    "ModType",
    "RemoveApplication",
    "RestartApplication",
    "SOFT",
    "Update",
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
