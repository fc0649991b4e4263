"""The ``relup`` file: up and down :class:`Script` per version.

See docs/internals/otp-facts.md#relup-files.

A relup file holds exactly one term
``{Vsn, [{UpFromVsn, Descr, Instructions}], [{DownToVsn, Descr, Instructions}]}``.
:meth:`Relup.to_text` writes text that ``file:consult/1`` reads back to the identical
term (same ``term_to_binary`` bytes) as the file it was read from.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from erlbridge.exceptions import ScriptError
from erlbridge.term import ErlString, format_term
from erlbridge.upgrade import _fields as f
from erlbridge.upgrade.script import Diagnostic, Script, Severity, _text_of

logger = logging.getLogger(__name__)

__all__ = ["Relup", "RelupEntry"]

_NO_DESCRIPTION: Any = object()


@dataclass(frozen=True, slots=True)
class RelupEntry:
    """One ``{Vsn, Descr, Instructions}``: the script from/to ``version``.

    ``description`` is kept as the term it is (systools writes ``[]`` or a string).
    """

    version: ErlString
    description: Any
    script: Script

    def __init__(
        self,
        version: str | ErlString,
        script: Script | Iterable[Any],
        description: Any = _NO_DESCRIPTION,
    ) -> None:
        object.__setattr__(
            self, "version", f.string(version, field="relup version", rule="bad_version")
        )
        object.__setattr__(
            self,
            "description",
            [] if description is _NO_DESCRIPTION else f.term(description, field="description"),
        )
        object.__setattr__(self, "script", script if isinstance(script, Script) else Script(script))

    def to_term(self) -> tuple[ErlString, Any, list[Any]]:
        """``{Vsn, Descr, Instructions}``."""
        return (self.version, self.description, self.script.to_term())

    @classmethod
    def from_term(cls, term: Any) -> RelupEntry:
        """Read ``{Vsn, Descr, Instructions}``; ScriptError on a bad part."""
        if not f.is_tuple(term, 3):
            raise ScriptError(
                f"a relup entry is {{Vsn, Descr, Instructions}}, got {f.show(term)}",
                instruction=term,
                rule="bad_relup",
            )
        return cls(term[0], Script.from_term(term[2]), term[1])


@dataclass(frozen=True, slots=True)
class Relup:
    """A relup: the target ``version`` and its upgrade and downgrade entries, in file order."""

    version: ErlString
    up: tuple[RelupEntry, ...]
    down: tuple[RelupEntry, ...]

    def __init__(
        self,
        version: str | ErlString,
        up: Iterable[RelupEntry] = (),
        down: Iterable[RelupEntry] = (),
    ) -> None:
        object.__setattr__(
            self, "version", f.string(version, field="relup version", rule="bad_version")
        )
        object.__setattr__(self, "up", tuple(up))
        object.__setattr__(self, "down", tuple(down))

    @property
    def up_versions(self) -> tuple[ErlString, ...]:
        """The versions this relup upgrades from."""
        return tuple(e.version for e in self.up)

    @property
    def down_versions(self) -> tuple[ErlString, ...]:
        """The versions this relup downgrades to."""
        return tuple(e.version for e in self.down)

    def up_from(self, version: str | ErlString) -> Script:
        """The upgrade script from ``version`` (exact match, as release_handler does)."""
        return _find(self.up, version).script

    def down_to(self, version: str | ErlString) -> Script:
        """The downgrade script to ``version`` (exact match)."""
        return _find(self.down, version).script

    def to_term(self) -> tuple[ErlString, list[Any], list[Any]]:
        """The relup term."""
        return (self.version, [e.to_term() for e in self.up], [e.to_term() for e in self.down])

    @classmethod
    def from_term(cls, term: Any) -> Relup:
        """Read a relup term; ScriptError (naming the instruction index) if malformed."""
        if not f.is_tuple(term, 3) or not f.is_list(term[1]) or not f.is_list(term[2]):
            raise ScriptError(
                f"a relup is {{Vsn, UpEntries, DownEntries}}, got {f.show(term)}",
                instruction=term,
                rule="bad_relup",
            )
        return cls(
            term[0],
            [RelupEntry.from_term(e) for e in f.as_list(term[1])],
            [RelupEntry.from_term(e) for e in f.as_list(term[2])],
        )

    def entries(self) -> list[tuple[str, RelupEntry]]:
        """``("up", entry)`` and ``("down", entry)`` pairs, in file order."""
        return [("up", e) for e in self.up] + [("down", e) for e in self.down]

    def diagnostics(self) -> list[tuple[str, ErlString, Diagnostic]]:
        """Every script's diagnostics as ``(direction, version, diagnostic)``."""
        return [(d, e.version, diag) for d, e in self.entries() for diag in e.script.diagnostics()]

    def validate(self) -> list[tuple[str, ErlString, Diagnostic]]:
        """Validate every script; return the warnings, raise ScriptError on the first error.

        The error's message names the direction and version of the failing script.
        """
        for direction, entry in self.entries():
            try:
                entry.script.validate()
            except ScriptError as exc:
                label = "from" if direction == "up" else "to"
                raise ScriptError(
                    f"{direction} script {label} {entry.version}: {exc}",
                    index=exc.index,
                    instruction=exc.instruction,
                    rule=exc.rule,
                ) from exc
        return [d for d in self.diagnostics() if d[2].severity is Severity.WARNING]

    def to_text(self) -> str:
        """Erlang text of the relup, one instruction per line, ending in ``.\\n``.

        Starts with ``%% coding: utf-8`` as systools writes it.
        """
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
    def from_text(cls, text: str) -> Relup:
        """Parse a relup file's text (exactly one term)."""
        terms = f.parse_text(text)
        if len(terms) != 1:
            raise ScriptError(
                f"a relup file holds exactly one term, got {len(terms)}", rule="bad_relup"
            )
        return cls.from_term(terms[0])

    def _repr_html_(self) -> str:
        """One heading and script table per entry (for notebooks)."""
        parts = [f"<h4>relup to {html.escape(str(self.version))}</h4>"]
        for direction, entry in self.entries():
            label = "up from" if direction == "up" else "down to"
            parts.append(f"<h5>{label} {html.escape(str(entry.version))}</h5>")
            parts.append(entry.script._repr_html_())
        return "".join(parts)

    def __str__(self) -> str:
        lines = [f"Relup to {self.version}"]
        for label, entries in (("up from", self.up), ("down to", self.down)):
            for e in entries:
                lines.append(f"{label} {e.version} ({len(e.script)} instructions)")
                lines.extend("    " + line for line in str(e.script).splitlines()[1:])
        return "\n".join(lines)


def _find(entries: Sequence[RelupEntry], version: str | ErlString) -> RelupEntry:
    wanted = f.string(version, field="version", rule="bad_version")
    for entry in entries:
        if entry.version == wanted:
            return entry
    raise KeyError(version)


def _entries_text(entries: Sequence[RelupEntry]) -> str:
    if not entries:
        return "[]"
    parts = [
        "{"
        + format_term(e.version)
        + ","
        + format_term(e.description, width=10_000)
        + ",\n   "
        + _text_of(e.script.to_term(), "   ")
        + "}"
        for e in entries
    ]
    return "[" + ",\n  ".join(parts) + "]"
