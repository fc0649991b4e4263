"""The ``.appup`` file: :class:`Appup` (``{Vsn, Up, Down}``) and :class:`AppupEntry`.

Appups round-trip here (term and text, as ``systools`` reads them); translation to a
low-level script is done by the target node's own ``systools_rc`` (the driver calls it
over rpc). The high-level instructions an entry holds are in
:mod:`erlbridge.upgrade.appup_instructions`; their names are re-exported here.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

from erlbridge.exceptions import ScriptError
from erlbridge.term import ErlString, format_term
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade.appup_instructions import (
    SOFT,
    AddApplication,
    AddModule,
    Advanced,
    AppupInstruction,
    DeleteModule,
    HighLevelInstruction,
    LoadModule,
    ModType,
    RemoveApplication,
    RestartApplication,
    Update,
    appup_instruction_from_term,
)
from erlbridge.upgrade.instructions import LowLevelInstruction

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
