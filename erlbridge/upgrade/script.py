"""``Script``: an ordered sequence of upgrade instructions, validated offline.

Validation follows OTP's own rules (``release_handler_1`` and ``systools_rc``,
docs/internals/otp-facts.md#upgrade-scripts-release_handler_1 and
docs/internals/otp-facts.md#appups-systools_rc), reported as errors, plus lints OTP does
not do, reported as
warnings. Both name the index, the instruction and the rule:

errors (the script would be rejected or would fail by construction)
    ``bad_op_before_point_of_no_return``  only load_object_code and apply before PONR
    ``illegal_instruction_after_point_of_no_return``  load_object_code after PONR
    ``missing_point_of_no_return``  load_object_code without a point_of_no_return
    ``too_many_point_of_no_return``  more than one point_of_no_return
    ``restart_new_emulator_not_first``  restart_new_emulator anywhere but index 0
    ``no_object_code``  load of a module no earlier load_object_code read
warnings (lints)
    ``suspended_not_resumed``, ``resumed_not_suspended``, ``code_change_not_suspended``,
    ``stopped_not_started``, ``started_not_stopped``, ``module_loaded_twice``,
    ``sync_nodes_id_reused``, ``instructions_after_restart_emulator``,
    ``load_object_code_not_first`` (an apply before a load_object_code: OTP accepts it,
    but the apply's effects stay if the object code cannot be read)

Application instructions are validated through their expansion; a diagnostic about a
part of an expansion carries the index of the application instruction.
"""

from __future__ import annotations

import enum
import html
import logging
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, overload

from erlbridge.exceptions import ScriptError
from erlbridge.term import encode, format_term
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade.instructions import (
    ApplicationInstruction,
    Apply,
    CodeChange,
    Load,
    LoadApplication,
    LoadObjectCode,
    LowLevelInstruction,
    PointOfNoReturn,
    Purge,
    RestartEmulator,
    RestartNewEmulator,
    Resume,
    ScriptItem,
    Start,
    StartApplication,
    Stop,
    StopApplication,
    Suspend,
    SyncNodes,
    UnloadApplication,
    instruction_from_term,
)

logger = logging.getLogger(__name__)

__all__ = ["Diagnostic", "Script", "Severity"]


class Severity(enum.Enum):
    """Whether a diagnostic makes the script invalid (ERROR) or is a lint (WARNING)."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One finding of :meth:`Script.diagnostics`: where, what and which rule."""

    severity: Severity
    index: int
    instruction: ScriptItem
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.severity.value} at #{self.index} {self.instruction}"
        return f"{where}: {self.message} [{self.rule}]"


# Allowed after point_of_no_return: release_handler_1:syntax_check_script/1
# (docs/internals/otp-facts.md#after-the-point-of-no-return).
_AFTER_FORBIDDEN = (LoadObjectCode, RestartNewEmulator)


def _text_of(terms: Sequence[Any], indent: str) -> str:
    """``[T1,\\n T2]``: one term per line, as relup files show scripts."""
    if not terms:
        return "[]"
    lines = [format_term(t, width=10_000) for t in terms]
    return "[" + (",\n" + indent + " ").join(lines) + "]"


@dataclass(frozen=True, slots=True)
class Script(Sequence[ScriptItem]):
    """An ordered, immutable sequence of instructions (low-level or application).

    ``Script(instrs)`` takes any iterable of instructions. Equality compares the
    instructions (which compare their encoded terms).
    """

    instructions: tuple[ScriptItem, ...]

    def __init__(self, instructions: Iterable[ScriptItem] = ()) -> None:
        items = tuple(instructions)
        for index, item in enumerate(items):
            if not isinstance(item, (LowLevelInstruction, ApplicationInstruction)):
                raise ScriptError(
                    f"item #{index} is not an instruction: {item!r}",
                    index=index,
                    instruction=item,
                    rule="not_an_instruction",
                )
        object.__setattr__(self, "instructions", items)

    # -- sequence protocol ----------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.instructions)

    @overload
    def __getitem__(self, index: int) -> ScriptItem: ...
    @overload
    def __getitem__(self, index: slice) -> Script: ...
    def __getitem__(self, index: int | slice) -> ScriptItem | Script:
        if isinstance(index, slice):
            return Script(self.instructions[index])
        return self.instructions[index]

    def __iter__(self) -> Iterator[ScriptItem]:
        return iter(self.instructions)

    def __add__(self, other: Script) -> Script:
        return Script(self.instructions + tuple(other))

    # -- expansion and phases ---------------------------------------------------------------

    def expanded(self) -> list[tuple[int, LowLevelInstruction]]:
        """Every low-level instruction with the index of the item it comes from."""
        out: list[tuple[int, LowLevelInstruction]] = []
        for index, item in enumerate(self.instructions):
            if isinstance(item, ApplicationInstruction):
                out.extend((index, low) for low in item.expand())
            else:
                out.append((index, item))
        return out

    def low_level(self) -> Script:
        """This script with application instructions replaced by their expansion."""
        return Script(low for _, low in self.expanded())

    def lift_applications(self) -> Script:
        """This script with the exact expansions of application instructions folded back.

        ``{apply,{application,stop|start|load|unload,...}}`` become
        :class:`StopApplication` / :class:`StartApplication` / :class:`LoadApplication` /
        :class:`UnloadApplication`; an unload preceded by exactly its brutal ``remove``s and
        ``purge`` takes them in. ``lift_applications().to_term() == to_term()`` always.
        """
        out: list[ScriptItem] = []
        for item in self.instructions:
            lifted = _lift(item)
            if isinstance(lifted, UnloadApplication):
                lifted = _absorb_removes(out, lifted)
            out.append(lifted)
        return Script(out)

    def split(self) -> tuple[Script, Script]:
        """``(Before, After)`` as ``release_handler_1:split_instructions/1`` splits it.

        ``After`` starts with the first point_of_no_return; without one, the whole script
        is ``After`` (and ``Before`` is empty), exactly as OTP does it.
        """
        for index, item in enumerate(self.instructions):
            if isinstance(item, PointOfNoReturn):
                return self[:index], self[index:]
        return Script(), self

    # -- validation ---------------------------------------------------------------------------

    def diagnostics(self) -> list[Diagnostic]:
        """Every error and warning, in index order (errors first at the same index)."""
        found: list[Diagnostic] = []

        def add(severity: Severity, index: int, rule: str, message: str) -> None:
            found.append(Diagnostic(severity, index, self.instructions[index], rule, message))

        def error(index: int, rule: str, message: str) -> None:
            add(Severity.ERROR, index, rule, message)

        def warn(index: int, rule: str, message: str) -> None:
            add(Severity.WARNING, index, rule, message)

        low = self.expanded()
        ponr = [pos for pos, (_, i) in enumerate(low) if isinstance(i, PointOfNoReturn)]
        first_ponr = ponr[0] if ponr else None
        object_code: set[str] = set()
        loaded: dict[str, int] = {}
        read: dict[str, int] = {}
        suspended: dict[str, int] = {}
        stopped: dict[str, int] = {}
        sync_ids: dict[bytes, int] = {}
        restart_at: int | None = None
        first_apply: int | None = None

        for pos, (index, instr) in enumerate(low):
            before = first_ponr is not None and pos < first_ponr
            if restart_at is not None:
                warn(
                    index,
                    "instructions_after_restart_emulator",
                    f"never runs: restart_emulator at #{restart_at} ends the script",
                )
                restart_at = None  # one warning per restart_emulator is enough
            if isinstance(instr, RestartNewEmulator):
                if pos != 0:
                    error(
                        index,
                        "restart_new_emulator_not_first",
                        "restart_new_emulator is only honoured as the first instruction",
                    )
                continue
            if isinstance(instr, PointOfNoReturn):
                if pos != first_ponr:
                    error(
                        index,
                        "too_many_point_of_no_return",
                        "a script has at most one point_of_no_return (systools_rc)",
                    )
                continue
            if before and not isinstance(instr, (LoadObjectCode, Apply)):
                error(
                    index,
                    "bad_op_before_point_of_no_return",
                    "only load_object_code and apply may come before point_of_no_return",
                )
            if isinstance(instr, Apply) and before and first_apply is None:
                first_apply = index
            if isinstance(instr, LoadObjectCode):
                if before and first_apply is not None:
                    warn(
                        index,
                        "load_object_code_not_first",
                        f"the apply at #{first_apply} already ran if reading this object "
                        "code fails; put every load_object_code first",
                    )
                if first_ponr is None:
                    error(
                        index,
                        "missing_point_of_no_return",
                        "load_object_code needs a later point_of_no_return",
                    )
                elif not before:
                    error(
                        index,
                        "illegal_instruction_after_point_of_no_return",
                        "load_object_code is not allowed after point_of_no_return",
                    )
                for mod in instr.modules:
                    if mod in read:
                        warn(
                            index,
                            "module_loaded_twice",
                            f"object code of {mod} already read at #{read[mod]}",
                        )
                    read[mod] = index
                    object_code.add(mod)
            elif isinstance(instr, Load):
                if instr.module not in object_code:
                    error(
                        index,
                        "no_object_code",
                        f"no earlier load_object_code read module {instr.module}",
                    )
                if instr.module in loaded:
                    warn(
                        index,
                        "module_loaded_twice",
                        f"{instr.module} already loaded at #{loaded[instr.module]}",
                    )
                loaded[instr.module] = index
            elif isinstance(instr, Suspend):
                for mod in instr.module_names:
                    suspended.setdefault(mod, index)
            elif isinstance(instr, Resume):
                for mod in instr.modules:
                    if suspended.pop(mod, None) is None:
                        warn(index, "resumed_not_suspended", f"{mod} is not suspended here")
            elif isinstance(instr, CodeChange):
                for mod in instr.module_names:
                    if mod not in suspended:
                        warn(
                            index,
                            "code_change_not_suspended",
                            f"{mod} is not suspended here, so no process is changed",
                        )
            elif isinstance(instr, Stop):
                for mod in instr.modules:
                    stopped.setdefault(mod, index)
            elif isinstance(instr, Start):
                for mod in instr.modules:
                    if stopped.pop(mod, None) is None:
                        warn(index, "started_not_stopped", f"{mod} was not stopped before")
            elif isinstance(instr, SyncNodes):
                key = encode(instr.id)
                if key in sync_ids:
                    warn(
                        index,
                        "sync_nodes_id_reused",
                        f"sync_nodes id {f.show(instr.id)} already used at #{sync_ids[key]}",
                    )
                else:
                    sync_ids[key] = index
            elif isinstance(instr, RestartEmulator):
                restart_at = index
        for name, index in suspended.items():
            warn(index, "suspended_not_resumed", f"{name} is suspended but never resumed")
        for name, index in stopped.items():
            warn(index, "stopped_not_started", f"{name} is stopped but never started again")
        found.sort(key=lambda d: (d.index, d.severity is Severity.WARNING))
        return found

    def errors(self) -> list[Diagnostic]:
        """Only the errors of :meth:`diagnostics`."""
        return [d for d in self.diagnostics() if d.severity is Severity.ERROR]

    def warnings(self) -> list[Diagnostic]:
        """Only the warnings of :meth:`diagnostics`."""
        return [d for d in self.diagnostics() if d.severity is Severity.WARNING]

    def validate(self) -> list[Diagnostic]:
        """Check the script; return its warnings, raise ScriptError on the first error.

        The ScriptError has the first error's ``index``, ``instruction`` and ``rule``;
        its message lists every error.
        """
        found = self.diagnostics()
        errs = [d for d in found if d.severity is Severity.ERROR]
        if errs:
            first = errs[0]
            listing = "; ".join(str(d) for d in errs)
            raise ScriptError(
                f"invalid script ({len(errs)} error(s)): {listing}",
                index=first.index,
                instruction=first.instruction,
                rule=first.rule,
            )
        return found

    def is_valid(self) -> bool:
        """True when :meth:`validate` would not raise."""
        return not self.errors()

    # -- terms and text ------------------------------------------------------------------------

    def to_term(self) -> list[Any]:
        """The Erlang list of instruction terms (application instructions expanded)."""
        return [low.to_term() for _, low in self.expanded()]

    @classmethod
    def from_term(cls, term: Any) -> Script:
        """Read a list of low-level instruction terms; ScriptError (with index) if one is bad."""
        if not f.is_list(term):
            raise ScriptError(
                f"a script is a list of instructions, got {f.show(term)}",
                instruction=term,
                rule="bad_list",
            )
        items = []
        for index, item in enumerate(f.as_list(term)):
            try:
                items.append(instruction_from_term(item))
            except ScriptError as exc:
                raise ScriptError(
                    f"instruction #{index}: {exc}", index=index, instruction=item, rule=exc.rule
                ) from exc
        return cls(items)

    def to_text(self, *, indent: str = "") -> str:
        """Erlang text ``[I1,\\n I2,\\n ...].`` with one instruction per line.

        ``file:consult/1`` of the text gives ``[self.to_term()]``.
        """
        return _text_of(self.to_term(), indent) + ".\n"

    @classmethod
    def from_text(cls, text: str) -> Script:
        """Parse what :meth:`to_text` writes (the final ``.`` is optional)."""
        terms = f.parse_text(text if text.rstrip().endswith(".") else text + ".")
        if len(terms) != 1:
            raise ScriptError(
                f"expected exactly one term (the instruction list), got {len(terms)}",
                rule="bad_script_text",
            )
        return cls.from_term(terms[0])

    # -- display ---------------------------------------------------------------------------------

    def __str__(self) -> str:
        if not self.instructions:
            return "Script (empty)"
        width = len(str(len(self.instructions) - 1))
        lines = [f"Script ({len(self.instructions)} instructions)"]
        for index, item in enumerate(self.instructions):
            lines.append(f"  {index:>{width}}  {_describe(item)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Script({list(self.instructions)!r})"

    def _repr_html_(self) -> str:
        """An HTML table (index, phase, instruction, Erlang term, findings) for notebooks."""
        by_index: dict[int, list[Diagnostic]] = {}
        for d in self.diagnostics():
            by_index.setdefault(d.index, []).append(d)
        seen_ponr = False
        rows = []
        for index, item in enumerate(self.instructions):
            if isinstance(item, PointOfNoReturn):
                seen_ponr = True
            phase = "after" if seen_ponr else "before"
            notes = "<br>".join(
                f'<span class="{d.severity.value}">{html.escape(d.severity.value)}: '
                f"{html.escape(d.message)} [{html.escape(d.rule)}]</span>"
                for d in by_index.get(index, [])
            )
            name = item.tag
            terms = "<br>".join(
                html.escape(format_term(t, width=10_000))
                for t in (
                    [item.to_term()] if isinstance(item, LowLevelInstruction) else item.to_term()
                )
            )
            rows.append(
                f"<tr><td>{index}</td><td>{phase}</td><td>{html.escape(name)}</td>"
                f"<td><code>{terms}</code></td><td>{notes}</td></tr>"
            )
        head = "".join(
            f"<th>{h}</th>" for h in ("#", "phase", "instruction", "Erlang term", "findings")
        )
        return (
            '<table class="erlbridge-script">'
            f"<thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"
        )


_LIFTS: tuple[type[ApplicationInstruction], ...] = (
    StopApplication,
    StartApplication,
    LoadApplication,
    UnloadApplication,
)


def _lift(item: ScriptItem) -> ScriptItem:
    if not isinstance(item, Apply) or item.module != "application":
        return item
    for cls in _LIFTS:
        try:
            lifted: ScriptItem = cls.from_terms([item.to_term()])
        except ScriptError:
            continue
        return lifted
    return item


def _absorb_removes(out: list[ScriptItem], unload: UnloadApplication) -> UnloadApplication:
    """Take the ``remove``s and ``purge`` just before ``unload`` in, if they are its own."""
    if not out or not isinstance(out[-1], Purge) or not out[-1].modules:
        return unload
    mods = out[-1].modules
    start = len(out) - 1 - len(mods)
    if start < 0:
        return unload
    candidate = UnloadApplication(unload.application, mods)
    expected = candidate.expand()[:-1]
    if tuple(out[start:]) != expected:
        return unload
    del out[start:]
    return candidate


def _describe(item: ScriptItem) -> str:
    if isinstance(item, ApplicationInstruction):
        expansion = ", ".join(str(i) for i in item.expand())
        return f"{item.tag} {item.application.name} -> {expansion}"
    return str(item)
