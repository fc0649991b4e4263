"""Low-level upgrade instructions: one class per ``release_handler_1`` instruction.

Each class is a frozen, slotted dataclass whose constructor validates and normalises its
arguments (module names become atoms, versions Erlang strings), whose ``to_term()`` gives
the exact term ``release_handler_1:eval/2`` takes (docs/internals/otp-facts.md#instructions)
and whose class method
``from_term()`` reads that term back. :func:`instruction_from_term` dispatches on the
term's shape. Unknown or malformed terms raise :class:`ScriptError` showing the term.

Equality and hashing compare the encoded term, so two instructions are equal exactly when
they send the same bytes (``Apply("m", "f", ["x"])`` passes a binary and is *not* equal
to ``Apply("m", "f", [ErlString("x")])``).

The four application instructions (:class:`StopApplication`, :class:`UnloadApplication`,
:class:`LoadApplication`, :class:`StartApplication`) are not ``release_handler_1``
instructions: they expand, as ``systools_rc`` does for ``add_application`` /
``remove_application`` (docs/internals/otp-facts.md#high-level-instructions), into
``apply`` / ``remove`` / ``purge`` /
``load`` instructions (:meth:`ApplicationInstruction.expand`).

Why one module (~740 lines): it is the table of every instruction a script may hold, read
as a whole; the classes share the base, the field checks and the ``from_term`` dispatch,
and the application instructions expand into the low-level classes here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, ClassVar, TypeAlias

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom, ErlString, encode, format_term
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade._fields import Mode, PurgeMethod, StartType, Timeout

logger = logging.getLogger(__name__)

__all__ = [
    "MFA",
    "Apply",
    "ApplicationInstruction",
    "CodeChange",
    "Instruction",
    "Load",
    "LoadApplication",
    "LoadObjectCode",
    "LowLevelInstruction",
    "PointOfNoReturn",
    "Purge",
    "Remove",
    "RestartEmulator",
    "RestartNewEmulator",
    "Resume",
    "ScriptItem",
    "Start",
    "StartApplication",
    "Stop",
    "StopApplication",
    "Suspend",
    "SuspendEntry",
    "SyncNodes",
    "UnloadApplication",
    "instruction_from_term",
]

_BRUTAL = PurgeMethod.BRUTAL_PURGE


def _wrap(exc: ScriptError, term: Any) -> ScriptError:
    """Re-raise a field error so that it shows the whole offending term."""
    return ScriptError(f"{exc} in {f.show(term)}", index=exc.index, instruction=term, rule=exc.rule)


class Instruction:
    """Base of every upgrade instruction (low-level, application, appup)."""

    __slots__ = ()

    #: The instruction's Erlang name (its atom, or the tag of its tuple).
    tag: ClassVar[str]

    def to_term(self) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError

    def _key(self) -> bytes:
        return encode(self.to_term())

    def __eq__(self, other: object) -> bool:
        if type(self) is not type(other):
            return NotImplemented
        assert isinstance(other, Instruction)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))

    def __str__(self) -> str:
        return format_term(self.to_term(), width=10_000)


class LowLevelInstruction(Instruction):
    """An instruction ``release_handler_1`` evaluates directly."""

    __slots__ = ()

    #: The tuple sizes this instruction may have (0 = a bare atom).
    sizes: ClassVar[tuple[int, ...]]

    @classmethod
    def from_term(cls, term: Any) -> Any:
        """Read this instruction from its exact Erlang term; ScriptError if it is not one."""
        if not _matches(cls, term):
            raise ScriptError(
                f"not a {cls.tag} instruction: {f.show(term)}",
                instruction=term,
                rule="malformed_instruction",
            )
        try:
            return cls._parse(term)
        except ScriptError as exc:
            raise _wrap(exc, term) from exc

    @classmethod
    def _parse(cls, term: Any) -> Any:  # pragma: no cover - every subclass overrides it
        raise NotImplementedError


def _matches(cls: type[LowLevelInstruction], term: Any) -> bool:
    if cls.sizes == (0,):
        return f.is_atom(term, cls.tag)
    return isinstance(term, tuple) and len(term) in cls.sizes and f.is_atom(term[0], cls.tag)


def _modules_from(term: Any) -> tuple[Atom, ...]:
    if not f.is_list(term):
        raise f.fail(
            f"expected a module list, got {f.show(term)}", rule="bad_list", instruction=term
        )
    return f.atoms(f.as_list(term), field="modules", rule="bad_module")


@dataclass(frozen=True, slots=True)
class MFA:
    """A ``{Module, Function, Args}`` triple (for :class:`SyncNodes` and :class:`Apply`)."""

    module: Atom
    function: Atom
    args: tuple[Any, ...]

    def __init__(self, module: str, function: str, args: Iterable[Any]) -> None:
        object.__setattr__(self, "module", f.atom(module, field="module", rule="bad_module"))
        object.__setattr__(self, "function", f.atom(function, field="function", rule="bad_func"))
        object.__setattr__(self, "args", f.term_list(args, field="args"))

    def to_term(self) -> tuple[Atom, Atom, list[Any]]:
        """``{M, F, A}`` with ``A`` a list."""
        return (self.module, self.function, list(self.args))

    @classmethod
    def from_term(cls, term: Any) -> MFA:
        """Read ``{M, F, A}``; ScriptError if the shape or a field is wrong."""
        if not f.is_tuple(term, 3) or not f.is_list(term[2]):
            raise f.fail(
                f"expected {{M, F, Args}}, got {f.show(term)}", rule="bad_mfa", instruction=term
            )
        return cls(term[0], term[1], f.as_list(term[2]))


# -- the instructions --------------------------------------------------------------------


@dataclass(frozen=True, slots=True, eq=False)
class LoadObjectCode(LowLevelInstruction):
    """``{load_object_code, {Lib, LibVsn, [Mod]}}``: read new object code into memory.

    Must come before ``point_of_no_return``; no code is loaded yet
    (docs/internals/otp-facts.md#instructions).
    """

    tag: ClassVar[str] = "load_object_code"
    sizes: ClassVar[tuple[int, ...]] = (2,)
    lib: Atom
    lib_vsn: ErlString
    modules: tuple[Atom, ...]

    def __init__(self, lib: str, lib_vsn: str | ErlString, modules: Iterable[str]) -> None:
        object.__setattr__(self, "lib", f.atom(lib, field="lib", rule="bad_lib"))
        object.__setattr__(self, "lib_vsn", f.string(lib_vsn, field="lib_vsn", rule="bad_lib_vsn"))
        object.__setattr__(self, "modules", f.atoms(modules, field="modules", rule="bad_module"))

    def to_term(self) -> Any:
        return (Atom(self.tag), (self.lib, self.lib_vsn, list(self.modules)))

    @classmethod
    def _parse(cls, term: Any) -> LoadObjectCode:
        body = term[1]
        if not f.is_tuple(body, 3):
            raise f.fail(
                "expected {Lib, LibVsn, [Mod]}", rule="malformed_instruction", instruction=term
            )
        return cls(body[0], body[1], _modules_from(body[2]))


@dataclass(frozen=True, slots=True, eq=False)
class PointOfNoReturn(LowLevelInstruction):
    """``point_of_no_return``: switch code paths; failures after it restart the node."""

    tag: ClassVar[str] = "point_of_no_return"
    sizes: ClassVar[tuple[int, ...]] = (0,)

    def to_term(self) -> Atom:
        return Atom(self.tag)

    @classmethod
    def _parse(cls, term: Any) -> PointOfNoReturn:
        return cls()


@dataclass(frozen=True, slots=True, eq=False)
class _ModulePurge(LowLevelInstruction):
    module: Atom
    pre_purge: PurgeMethod
    post_purge: PurgeMethod

    def __init__(
        self,
        module: str,
        pre_purge: PurgeMethod | str = _BRUTAL,
        post_purge: PurgeMethod | str = _BRUTAL,
    ) -> None:
        object.__setattr__(self, "module", f.atom(module, field="module", rule="bad_module"))
        object.__setattr__(self, "pre_purge", f.purge(pre_purge, field="pre_purge"))
        object.__setattr__(self, "post_purge", f.purge(post_purge, field="post_purge"))

    def to_term(self) -> Any:
        return (
            Atom(self.tag),
            (self.module, self.pre_purge.to_term(), self.post_purge.to_term()),
        )

    @classmethod
    def _parse(cls, term: Any) -> Any:
        body = term[1]
        if not f.is_tuple(body, 3):
            raise f.fail(
                "expected {Mod, PrePurge, PostPurge}",
                rule="malformed_instruction",
                instruction=term,
            )
        return cls(body[0], body[1], body[2])


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Load(_ModulePurge):
    """``{load, {Mod, PrePurge, PostPurge}}``: load code read by an earlier load_object_code."""

    tag: ClassVar[str] = "load"
    sizes: ClassVar[tuple[int, ...]] = (2,)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Remove(_ModulePurge):
    """``{remove, {Mod, PrePurge, PostPurge}}``: purge and delete a module's code."""

    tag: ClassVar[str] = "remove"
    sizes: ClassVar[tuple[int, ...]] = (2,)


@dataclass(frozen=True, slots=True, eq=False)
class _ModuleList(LowLevelInstruction):
    modules: tuple[Atom, ...]

    def __init__(self, modules: Iterable[str]) -> None:
        object.__setattr__(self, "modules", f.atoms(modules, field="modules", rule="bad_module"))

    def to_term(self) -> Any:
        return (Atom(self.tag), list(self.modules))

    @classmethod
    def _parse(cls, term: Any) -> Any:
        return cls(_modules_from(term[1]))


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Purge(_ModuleList):
    """``{purge, [Mod]}``: purge old code (kills processes still running it)."""

    tag: ClassVar[str] = "purge"
    sizes: ClassVar[tuple[int, ...]] = (2,)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Resume(_ModuleList):
    """``{resume, [Mod]}``: resume the processes suspended for these modules."""

    tag: ClassVar[str] = "resume"
    sizes: ClassVar[tuple[int, ...]] = (2,)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Stop(_ModuleList):
    """``{stop, [Mod]}``: terminate the supervised children that run these modules."""

    tag: ClassVar[str] = "stop"
    sizes: ClassVar[tuple[int, ...]] = (2,)


@dataclass(frozen=True, slots=True, eq=False, init=False)
class Start(_ModuleList):
    """``{start, [Mod]}``: restart the children stopped by an earlier ``stop``."""

    tag: ClassVar[str] = "start"
    sizes: ClassVar[tuple[int, ...]] = (2,)


#: One entry of a suspend list: a module, or ``(module, timeout)``.
SuspendEntry: TypeAlias = Atom | tuple[Atom, Timeout]


@dataclass(frozen=True, slots=True, eq=False)
class Suspend(LowLevelInstruction):
    """``{suspend, [Mod | {Mod, Timeout}]}``; ``Timeout`` in ms, ``infinity`` or ``default``.

    The install option ``suspend_timeout`` overrides a per-module timeout
    (docs/internals/otp-facts.md#instructions).
    """

    tag: ClassVar[str] = "suspend"
    sizes: ClassVar[tuple[int, ...]] = (2,)
    modules: tuple[SuspendEntry, ...]

    def __init__(self, modules: Iterable[str | tuple[str, Timeout | str]]) -> None:
        entries: list[SuspendEntry] = []
        for entry in f.items(modules, field="modules"):
            if isinstance(entry, tuple):
                if len(entry) != 2:
                    raise f.fail(
                        f"a suspend entry is a module or (module, timeout), got {f.show(entry)}",
                        rule="bad_module",
                        instruction=entry,
                    )
                mod = f.atom(entry[0], field="module", rule="bad_module")
                entries.append((mod, f.timeout(entry[1], field=f"timeout of {mod}")))
            else:
                entries.append(f.atom(entry, field="module", rule="bad_module"))
        object.__setattr__(self, "modules", tuple(entries))

    @property
    def module_names(self) -> tuple[Atom, ...]:
        """The suspended modules, without their timeouts."""
        return tuple(e[0] if isinstance(e, tuple) else e for e in self.modules)

    def to_term(self) -> Any:
        return (Atom(self.tag), list(self.modules))

    @classmethod
    def _parse(cls, term: Any) -> Suspend:
        if not f.is_list(term[1]):
            raise f.fail("expected a list of modules", rule="bad_list", instruction=term)
        return cls(f.as_list(term[1]))


@dataclass(frozen=True, slots=True, eq=False)
class CodeChange(LowLevelInstruction):
    """``{code_change, Mode, [{Mod, Extra}]}``; ``{code_change, [{Mod, Extra}]}`` if mode is None.

    The two-element form (``mode=None``) is what older relups contain; release_handler_1
    runs it as ``up``. Only processes suspended for ``Mod`` are changed.
    """

    tag: ClassVar[str] = "code_change"
    sizes: ClassVar[tuple[int, ...]] = (2, 3)
    modules: tuple[tuple[Atom, Any], ...]
    mode: Mode | None

    def __init__(
        self, modules: Iterable[tuple[str, Any]], mode: Mode | str | None = Mode.UP
    ) -> None:
        entries = []
        for entry in f.items(modules, field="modules"):
            if not f.is_tuple(entry, 2):
                raise f.fail(
                    f"a code_change entry is (module, extra), got {f.show(entry)}",
                    rule="bad_code_change",
                    instruction=entry,
                )
            entries.append(
                (
                    f.atom(entry[0], field="module", rule="bad_module"),
                    f.term(entry[1], field="extra"),
                )
            )
        object.__setattr__(self, "modules", tuple(entries))
        object.__setattr__(self, "mode", None if mode is None else f.mode(mode))

    @property
    def effective_mode(self) -> Mode:
        """The mode release_handler_1 uses (the two-element form means ``up``)."""
        return self.mode or Mode.UP

    @property
    def module_names(self) -> tuple[Atom, ...]:
        """The modules whose processes are changed."""
        return tuple(m for m, _ in self.modules)

    def to_term(self) -> Any:
        mods = list(self.modules)
        if self.mode is None:
            return (Atom(self.tag), mods)
        return (Atom(self.tag), self.mode.to_term(), mods)

    @classmethod
    def _parse(cls, term: Any) -> CodeChange:
        mods = term[-1]
        if not f.is_list(mods):
            raise f.fail("expected a list of {Mod, Extra}", rule="bad_list", instruction=term)
        return cls(f.as_list(mods), None if len(term) == 2 else term[1])


@dataclass(frozen=True, slots=True, eq=False)
class SyncNodes(LowLevelInstruction):
    """``{sync_nodes, Id, [Node]}`` or ``{sync_nodes, Id, {M, F, A}}``: a barrier.

    Works natively only inside ``release_handler`` (install_release); see
    docs/internals/otp-facts.md#sync_nodes.
    ``nodes`` is a node list (any iterable that is not a tuple) or an :class:`MFA` /
    ``(m, f, args)`` tuple whose call returns the node list on the target.
    """

    tag: ClassVar[str] = "sync_nodes"
    sizes: ClassVar[tuple[int, ...]] = (3,)
    id: Any
    nodes: tuple[Atom, ...] | MFA

    def __init__(self, id: Any, nodes: Iterable[str] | MFA | tuple[str, str, Any]) -> None:
        object.__setattr__(self, "id", f.term(id, field="sync_nodes id"))
        if isinstance(nodes, MFA):
            value: tuple[Atom, ...] | MFA = nodes
        elif isinstance(nodes, tuple):
            # A tuple is the {M, F, A} form: that is the term's shape, not a guess.
            value = MFA.from_term(nodes)
        else:
            value = f.atoms(nodes, field="nodes", rule="bad_node")
        object.__setattr__(self, "nodes", value)

    def to_term(self) -> Any:
        nodes = self.nodes.to_term() if isinstance(self.nodes, MFA) else list(self.nodes)
        return (Atom(self.tag), self.id, nodes)

    @classmethod
    def _parse(cls, term: Any) -> SyncNodes:
        nodes = term[2]
        if isinstance(nodes, tuple):
            return cls(term[1], MFA.from_term(nodes))
        if not f.is_list(nodes):
            raise f.fail("expected a node list or {M, F, A}", rule="bad_list", instruction=term)
        return cls(term[1], f.as_list(nodes))


@dataclass(frozen=True, slots=True, eq=False)
class Apply(LowLevelInstruction):
    """``{apply, {M, F, A}}``: call ``apply(M, F, A)``; an exception aborts the script."""

    tag: ClassVar[str] = "apply"
    sizes: ClassVar[tuple[int, ...]] = (2,)
    module: Atom
    function: Atom
    args: tuple[Any, ...]

    def __init__(self, module: str, function: str, args: Iterable[Any] = ()) -> None:
        mfa = MFA(module, function, args)
        object.__setattr__(self, "module", mfa.module)
        object.__setattr__(self, "function", mfa.function)
        object.__setattr__(self, "args", mfa.args)

    def to_term(self) -> Any:
        return (Atom(self.tag), (self.module, self.function, list(self.args)))

    @classmethod
    def _parse(cls, term: Any) -> Apply:
        mfa = MFA.from_term(term[1])
        return cls(mfa.module, mfa.function, mfa.args)


@dataclass(frozen=True, slots=True, eq=False)
class RestartNewEmulator(LowLevelInstruction):
    """``restart_new_emulator``: only meaningful as the first instruction.

    See docs/internals/otp-facts.md#emulator-restarts.
    """

    tag: ClassVar[str] = "restart_new_emulator"
    sizes: ClassVar[tuple[int, ...]] = (0,)

    def to_term(self) -> Atom:
        return Atom(self.tag)

    @classmethod
    def _parse(cls, term: Any) -> RestartNewEmulator:
        return cls()


@dataclass(frozen=True, slots=True, eq=False)
class RestartEmulator(LowLevelInstruction):
    """``restart_emulator``: reboot the node after the script (needs heart)."""

    tag: ClassVar[str] = "restart_emulator"
    sizes: ClassVar[tuple[int, ...]] = (0,)

    def to_term(self) -> Atom:
        return Atom(self.tag)

    @classmethod
    def _parse(cls, term: Any) -> RestartEmulator:
        return cls()


LOW_LEVEL_CLASSES: tuple[type[LowLevelInstruction], ...] = (
    LoadObjectCode,
    PointOfNoReturn,
    Load,
    Remove,
    Purge,
    Suspend,
    CodeChange,
    Resume,
    Stop,
    Start,
    SyncNodes,
    Apply,
    RestartNewEmulator,
    RestartEmulator,
)
_BY_TAG: dict[str, type[LowLevelInstruction]] = {c.tag: c for c in LOW_LEVEL_CLASSES}


def term_tag(term: Any) -> str | None:
    """The instruction name of ``term`` (its atom or its tuple's first atom), else None."""
    if isinstance(term, str) and not isinstance(term, bool):
        return str.__str__(term) if isinstance(term, Atom) else None
    if isinstance(term, tuple) and term and isinstance(term[0], Atom):
        return str.__str__(term[0])
    return None


def instruction_from_term(term: Any) -> LowLevelInstruction:
    """The typed low-level instruction for ``term``.

    Raises ScriptError (rule ``unknown_instruction`` or ``malformed_instruction`` or the
    failing field's rule) showing the term. ``{apply, {application, ...}}`` stays an
    :class:`Apply`: the mapping is one class per term shape.
    """
    cls = _BY_TAG.get(term_tag(term) or "")
    if cls is None:
        raise ScriptError(
            f"unknown instruction: {f.show(term)}", instruction=term, rule="unknown_instruction"
        )
    result: LowLevelInstruction = cls.from_term(term)
    return result


# -- application instructions ---------------------------------------------------------------

_APPLICATION = Atom("application")


@dataclass(frozen=True, slots=True, eq=False)
class ApplicationInstruction(Instruction):
    """An application-level instruction that expands to low-level instructions."""

    application: Atom

    def expand(self) -> tuple[LowLevelInstruction, ...]:  # pragma: no cover - overridden
        """The low-level instructions this compiles to, in order."""
        raise NotImplementedError

    def to_term(self) -> list[Any]:
        """The terms of :meth:`expand` (a list: one application instruction is several)."""
        return [i.to_term() for i in self.expand()]

    def to_terms(self) -> list[Any]:
        """Same as :meth:`to_term`."""
        return self.to_term()

    @classmethod
    def from_terms(cls, terms: Any) -> Any:
        """Recognise the exact expansion of this instruction; ScriptError otherwise."""
        if not f.is_list(terms):
            raise ScriptError(
                f"expected a list of instruction terms, got {f.show(terms)}",
                instruction=terms,
                rule="bad_list",
            )
        instrs = tuple(instruction_from_term(t) for t in f.as_list(terms))
        found = cls._recognise(instrs)
        if found is None or found.expand() != instrs:
            raise ScriptError(
                f"not the expansion of {cls.tag}: {f.show(terms)}",
                instruction=terms,
                rule="malformed_instruction",
            )
        return found

    @classmethod
    def _recognise(cls, instrs: tuple[LowLevelInstruction, ...]) -> Any:  # pragma: no cover
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.tag}({self.application.name})"


def _app_apply(instrs: tuple[LowLevelInstruction, ...], function: str) -> Apply | None:
    last = instrs[-1] if instrs else None
    if (
        isinstance(last, Apply)
        and last.module == _APPLICATION
        and last.function == function
        and last.args
    ):
        return last
    return None


@dataclass(frozen=True, slots=True, eq=False)
class StopApplication(ApplicationInstruction):
    """Stop an application: ``{apply, {application, stop, [App]}}``."""

    tag: ClassVar[str] = "stop_application"

    def __init__(self, application: str) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )

    def expand(self) -> tuple[LowLevelInstruction, ...]:
        return (Apply(_APPLICATION, "stop", [self.application]),)

    @classmethod
    def _recognise(cls, instrs: tuple[LowLevelInstruction, ...]) -> StopApplication | None:
        apply = _app_apply(instrs, "stop")
        return None if apply is None else cls(apply.args[0])


@dataclass(frozen=True, slots=True, eq=False)
class StartApplication(ApplicationInstruction):
    """Start an application: ``{apply, {application, start, [App, Type]}}``.

    ``type`` is temporary, transient or permanent (as systools' ``add_application``).
    """

    tag: ClassVar[str] = "start_application"
    type: StartType

    def __init__(self, application: str, type: StartType | str = StartType.PERMANENT) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(
            self,
            "type",
            f.start_type(
                type, allowed=(StartType.TEMPORARY, StartType.TRANSIENT, StartType.PERMANENT)
            ),
        )

    def expand(self) -> tuple[LowLevelInstruction, ...]:
        return (Apply(_APPLICATION, "start", [self.application, self.type.to_term()]),)

    @classmethod
    def _recognise(cls, instrs: tuple[LowLevelInstruction, ...]) -> StartApplication | None:
        apply = _app_apply(instrs, "start")
        if apply is None or len(apply.args) != 2:
            return None
        return cls(apply.args[0], apply.args[1])


@dataclass(frozen=True, slots=True, eq=False)
class LoadApplication(ApplicationInstruction):
    """Load an application's new modules and its spec.

    Expands to ``{load, {Mod, brutal_purge, brutal_purge}}`` for each module, then
    ``{apply, {application, load, [App]}}``. The modules' object code must have been read
    by a ``load_object_code`` before ``point_of_no_return`` (validate() checks it).
    """

    tag: ClassVar[str] = "load_application"
    modules: tuple[Atom, ...]

    def __init__(self, application: str, modules: Iterable[str] = ()) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(self, "modules", f.atoms(modules, field="modules", rule="bad_module"))

    def expand(self) -> tuple[LowLevelInstruction, ...]:
        loads = tuple(Load(m, _BRUTAL, _BRUTAL) for m in self.modules)
        return (*loads, Apply(_APPLICATION, "load", [self.application]))

    @classmethod
    def _recognise(cls, instrs: tuple[LowLevelInstruction, ...]) -> LoadApplication | None:
        apply = _app_apply(instrs, "load")
        if apply is None:
            return None
        mods = [i.module for i in instrs[:-1] if isinstance(i, Load)]
        return cls(apply.args[0], mods)


@dataclass(frozen=True, slots=True, eq=False)
class UnloadApplication(ApplicationInstruction):
    """Remove an application's modules and unload it (the tail of ``remove_application``).

    Expands to ``{remove, {Mod, brutal_purge, brutal_purge}}`` per module, ``{purge, Mods}``
    (when there are modules) and ``{apply, {application, unload, [App]}}``. Stop the
    application first (:class:`StopApplication`), as systools does.
    """

    tag: ClassVar[str] = "unload_application"
    modules: tuple[Atom, ...]

    def __init__(self, application: str, modules: Iterable[str] = ()) -> None:
        object.__setattr__(
            self, "application", f.atom(application, field="application", rule="bad_application")
        )
        object.__setattr__(self, "modules", f.atoms(modules, field="modules", rule="bad_module"))

    def expand(self) -> tuple[LowLevelInstruction, ...]:
        removes = tuple(Remove(m, _BRUTAL, _BRUTAL) for m in self.modules)
        purge = (Purge(self.modules),) if self.modules else ()
        return (*removes, *purge, Apply(_APPLICATION, "unload", [self.application]))

    @classmethod
    def _recognise(cls, instrs: tuple[LowLevelInstruction, ...]) -> UnloadApplication | None:
        apply = _app_apply(instrs, "unload")
        if apply is None:
            return None
        mods = [i.module for i in instrs[:-1] if isinstance(i, Remove)]
        return cls(apply.args[0], mods)


#: What a :class:`~erlbridge.upgrade.script.Script` may hold.
ScriptItem: TypeAlias = LowLevelInstruction | ApplicationInstruction
