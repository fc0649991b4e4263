"""Supervisor child specs read from a supervisor beam's literals (pure, runs no code).

``init/1`` is never called: a supervisor's ``init`` may have side effects, and the
build machine is not the node. Child specs the compiler stored whole (a map with
``id`` and ``start => {M, F, A}``, or the classic ``{Id, {M, F, A}, Restart, Shutdown,
Type, Modules}``) are found in the literal table; so is the registration
``{local, Name}`` / ``{global, Name}`` the module passes to ``supervisor:start_link``.
Specs built from variables at run time are not literals: the planner then warns
instead of guessing ids or names.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from erlbridge.plan.beam import Beam
from erlbridge.term import Atom

__all__ = ["ChildSpec", "SupervisorInfo", "read_children"]

_RESTART = {"permanent", "transient", "temporary"}


@dataclass(frozen=True, slots=True)
class ChildSpec:
    """A child spec found as a literal: its ``id`` term and start module."""

    id: Any
    start_module: str
    spec: Any


@dataclass(frozen=True, slots=True)
class SupervisorInfo:
    """What the literals say about a supervisor module.

    ``name`` is the ``SupRef`` to use in ``supervisor:*_child`` calls (an atom or
    ``{global, Name}``), None when no single registration literal was found.
    ``simple`` is True for ``simple_one_for_one`` (no static children).
    """

    children: tuple[ChildSpec, ...]
    name: Any
    simple: bool

    def ids(self) -> dict[Any, ChildSpec]:
        return {_key(c.id): c for c in self.children}


def _key(term: Any) -> Any:
    """A hashable key for an id term (lists and maps become tuples)."""
    if isinstance(term, list):
        return ("$list", *(_key(t) for t in term))
    if isinstance(term, dict):
        return ("$map", *sorted((repr(_key(k)), _key(v)) for k, v in term.items()))
    if isinstance(term, tuple):
        return tuple(_key(t) for t in term)
    return term


def _mfa_module(start: Any) -> str | None:
    if isinstance(start, tuple) and len(start) == 3 and isinstance(start[0], Atom):
        return str.__str__(start[0])
    return None


def _walk(term: Any) -> Iterator[Any]:
    stack = [term]
    while stack:
        t = stack.pop()
        yield t
        if isinstance(t, (tuple, list)):
            stack.extend(t)
        elif isinstance(t, dict):
            stack.extend(t.values())


def read_children(beam: Beam) -> SupervisorInfo:
    """The child specs and registration found in ``beam``'s literals."""
    children: list[ChildSpec] = []
    names: list[Any] = []
    simple = False
    seen: set[Any] = set()
    for lit in beam.literals():
        for t in _walk(lit):
            spec: ChildSpec | None = None
            if isinstance(t, dict) and "id" in t and "start" in t:
                mod = _mfa_module(t["start"])
                if mod is not None:
                    spec = ChildSpec(t["id"], mod, t)
                if t.get("strategy") == "simple_one_for_one":
                    simple = True
            elif isinstance(t, dict) and t.get("strategy") == "simple_one_for_one":
                simple = True
            elif (isinstance(t, tuple) and len(t) == 6 and isinstance(t[2], str)
                  and t[2] in _RESTART):
                mod = _mfa_module(t[1])
                if mod is not None:
                    spec = ChildSpec(t[0], mod, t)
            elif isinstance(t, tuple) and len(t) == 3 and t[0] == "simple_one_for_one":
                simple = True
            elif (
                isinstance(t, tuple) and len(t) == 2 and t[0] in ("local", "global")
                and isinstance(t[1], Atom)
            ):
                ref = t[1] if t[0] == "local" else t
                if ref not in names:
                    names.append(ref)
            if spec is not None and _key(spec.id) not in seen:
                seen.add(_key(spec.id))
                children.append(spec)
    return SupervisorInfo(tuple(children), names[0] if len(names) == 1 else None, simple)
