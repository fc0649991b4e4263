"""Field converters shared by the upgrade objects.

Each converter takes what a Python caller (or a parsed term) gives for one *field* and
returns the exact Erlang value that field holds, or raises :class:`ScriptError`. The
field decides the Erlang type, never the Python type of the value: a ``str`` given for a
module becomes an :class:`Atom`, a ``str`` given for a version becomes an
:class:`ErlString`, and a ``bytes`` is refused for both.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable
from typing import Any, TypeAlias

from erlbridge.exceptions import EncodeError, ScriptError, TermError
from erlbridge.term import Atom, ErlString, encode, format_term, parse_terms

logger = logging.getLogger(__name__)

#: A timeout field: milliseconds, or the atoms ``infinity`` / ``default``.
Timeout: TypeAlias = int | Atom

INFINITY = Atom("infinity")
DEFAULT = Atom("default")
MAX_ATOM_LENGTH = 255  # erts limit, in characters


class PurgeMethod(enum.Enum):
    """How ``release_handler_1`` purges old code of a module (``PrePurge``/``PostPurge``)."""

    SOFT_PURGE = "soft_purge"
    BRUTAL_PURGE = "brutal_purge"

    def to_term(self) -> Atom:
        """The atom ``soft_purge`` or ``brutal_purge``."""
        return Atom(self.value)


class Mode(enum.Enum):
    """Direction of a ``code_change`` instruction."""

    UP = "up"
    DOWN = "down"

    def to_term(self) -> Atom:
        """The atom ``up`` or ``down``."""
        return Atom(self.value)


class StartType(enum.Enum):
    """Application start types as ``add_application`` accepts them (systools_rc)."""

    NONE = "none"
    LOAD = "load"
    TEMPORARY = "temporary"
    TRANSIENT = "transient"
    PERMANENT = "permanent"

    def to_term(self) -> Atom:
        """The atom with this start type's name."""
        return Atom(self.value)


def show(term: Any) -> str:
    """Erlang text for ``term`` if it has one, else ``repr`` (used in error messages)."""
    try:
        return format_term(term, width=10_000)
    except Exception:  # an error message must never fail to build
        return repr(term)


def fail(
    message: str, *, rule: str, instruction: Any = None, index: int | None = None
) -> ScriptError:
    """Build (not raise) a ScriptError; the caller raises it so tracebacks point at the check."""
    return ScriptError(message, index=index, instruction=instruction, rule=rule)


def atom(value: Any, *, field: str, rule: str = "bad_atom", allow_empty: bool = False) -> Atom:
    """An atom field (module, application, function, node, lib name)."""
    if isinstance(value, bool):
        # The term layer decodes the atoms true/false to bool; the field says it is an atom.
        return Atom("true" if value else "false")
    if not isinstance(value, str):
        raise fail(f"{field} must be an atom, got {show(value)}", rule=rule, instruction=value)
    if not value and not allow_empty:
        raise fail(f"{field} must be a non-empty atom", rule=rule, instruction=value)
    if len(value) > MAX_ATOM_LENGTH:
        raise fail(
            f"{field} is longer than {MAX_ATOM_LENGTH} characters, no valid atom",
            rule=rule,
            instruction=value,
        )
    return value if type(value) is Atom else Atom(value)


def atoms(values: Any, *, field: str, rule: str = "bad_atom") -> tuple[Atom, ...]:
    """A list-of-atoms field (a module list, a node list)."""
    return tuple(atom(v, field=f"each of {field}", rule=rule) for v in items(values, field=field))


def items(values: Any, *, field: str) -> tuple[Any, ...]:
    """The elements of a list field; strings, bytes and maps are refused (they are no lists)."""
    if isinstance(values, (str, bytes, bytearray, ErlString, dict)) or not isinstance(
        values, Iterable
    ):
        raise fail(
            f"{field} must be a list, got {show(values)}", rule="bad_list", instruction=values
        )
    return tuple(values)


def string(value: Any, *, field: str, rule: str = "bad_string") -> ErlString:
    """An Erlang string field (a version, a path): a ``str``, an ``ErlString`` or code points.

    An :class:`Atom` is refused: it is a different Erlang type.
    """
    if isinstance(value, ErlString):
        return value
    if isinstance(value, str) and not isinstance(value, Atom):
        return ErlString(value)
    if isinstance(value, list) and all(
        type(c) is int and 0 <= c <= 0x10FFFF and not 0xD800 <= c <= 0xDFFF for c in value
    ):
        return ErlString(value)
    raise fail(f"{field} must be an Erlang string, got {show(value)}", rule=rule, instruction=value)


def timeout(value: Any, *, field: str, positive: bool = False) -> Timeout:
    """A timeout in milliseconds, ``infinity`` or ``default``.

    ``positive`` follows systools_rc (``Int > 0``); release_handler_1 itself takes any
    value ``sys:suspend/2`` takes, so the low-level default is ``>= 0``.
    """
    if isinstance(value, str) and value in (INFINITY, DEFAULT):
        return Atom(value)
    if type(value) is int and (value > 0 or (value == 0 and not positive)):
        return value
    bound = "a positive" if positive else "a non-negative"
    raise fail(
        f"{field} must be {bound} integer (ms), infinity or default, got {show(value)}",
        rule="bad_timeout",
        instruction=value,
    )


def purge(value: Any, *, field: str) -> PurgeMethod:
    """A purge method: the enum, or its atom name."""
    if isinstance(value, PurgeMethod):
        return value
    if isinstance(value, str):
        try:
            return PurgeMethod(str.__str__(value))
        except ValueError:
            pass
    raise fail(
        f"{field} must be soft_purge or brutal_purge, got {show(value)}",
        rule="bad_purge_method",
        instruction=value,
    )


def mode(value: Any) -> Mode:
    """A code_change mode: the enum, or ``up`` / ``down``."""
    if isinstance(value, Mode):
        return value
    if isinstance(value, str) and value in ("up", "down"):
        return Mode(str.__str__(value))
    raise fail(f"mode must be up or down, got {show(value)}", rule="bad_mode", instruction=value)


def start_type(value: Any, *, allowed: tuple[StartType, ...] = tuple(StartType)) -> StartType:
    """An application start type: the enum, or its atom name, restricted to ``allowed``."""
    result: StartType | None = None
    if isinstance(value, StartType):
        result = value
    elif isinstance(value, str) and value in {t.value for t in StartType}:
        result = StartType(str.__str__(value))
    if result is None or result not in allowed:
        names = "/".join(t.value for t in allowed)
        raise fail(
            f"start type must be one of {names}, got {show(value)}",
            rule="bad_start_type",
            instruction=value,
        )
    return result


def term(value: Any, *, field: str) -> Any:
    """Any Erlang term (an ``Extra``, an ``Id``, an argument): it must be encodable."""
    try:
        encode(value)
    except EncodeError as exc:
        raise fail(
            f"{field} has no Erlang representation: {exc}", rule="bad_term", instruction=value
        ) from exc
    return value


def term_list(values: Any, *, field: str) -> tuple[Any, ...]:
    """A list of arbitrary terms (an argument list)."""
    return tuple(term(v, field=f"each of {field}") for v in items(values, field=field))


def is_list(value: Any) -> bool:
    """True for what the term layer gives for an Erlang proper list (incl. strings)."""
    return isinstance(value, (list, ErlString))


def as_list(value: Any) -> list[Any]:
    """A parsed proper list as a Python list (an ``ErlString`` gives its code points)."""
    return list(value)


def is_tuple(value: Any, size: int) -> bool:
    """True if ``value`` is an Erlang tuple of ``size`` elements."""
    return isinstance(value, tuple) and len(value) == size


def is_atom(value: Any, name: str) -> bool:
    """True if ``value`` (a parsed or decoded term) is the atom ``name``.

    Strict: a plain ``str`` is a binary, not an atom; true/false arrive as bool.
    """
    if isinstance(value, bool):
        return name == ("true" if value else "false")
    return isinstance(value, Atom) and str.__str__(value) == name


def parse_text(text: str) -> list[Any]:
    """Parse like ``file:consult``; bad text raises ScriptError (rule ``syntax_error``)."""
    try:
        return parse_terms(text)
    except TermError as exc:
        raise ScriptError(
            f"not Erlang term text: {exc}", instruction=text, rule="syntax_error"
        ) from exc
