"""Direct-mode script analysis and rewriting at the term level (pure: no I/O).

The driver works on the Erlang form of a script (``Script.to_term()``, a list of
instruction terms), so it needs nothing from the instruction classes but ``to_term()``
(and ``validate()`` for the offline check).

Why rewrite ``sync_nodes``: in direct mode the script runs in an rpc worker, where a
native ``sync_nodes`` can never complete (docs/internals/otp-facts.md#sync_nodes). Each
``{sync_nodes, Id, Nodes}`` becomes, per target::

    {apply, {gen_server, call, [{BarrierName, PyNode}, {arrive, Id, Target, Nodes}, TimeoutMs]}}

``BarrierName`` is a process registered on the Python node for that target only. It
answers ``ok`` once every listed node arrived; to make the waiter fail it exits, so the
target's ``gen_server:call`` (which monitors it) exits and ``eval_script`` aborts. The
target-side ``TimeoutMs`` is the barrier deadline: a target never waits longer, even if the
Python node vanishes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from erlbridge.exceptions import ScriptError
from erlbridge.term import Atom

__all__ = [
    "Barrier",
    "find_barriers",
    "rewrite_barriers",
    "script_libs",
    "script_terms",
    "strip_barriers",
    "suspended_modules",
    "touched_modules",
]


def script_terms(script: Any) -> list[Any]:
    """The instruction list of ``script`` (an object with ``to_term()`` or a list)."""
    terms = script.to_term() if hasattr(script, "to_term") else script
    if not isinstance(terms, list):
        raise ScriptError("a script is a list of instructions", rule="not_a_list")
    return list(terms)


def name_of(x: Any) -> str:
    """Bare text of an atom (``str(Atom)`` would quote it), or ``str(x)``."""
    return x.name if isinstance(x, Atom) else str(x)


def _is(instr: Any, tag: str, size: int) -> bool:
    return isinstance(instr, tuple) and len(instr) == size and instr[0] == tag


@dataclass(frozen=True, slots=True)
class Barrier:
    """A ``{sync_nodes, Id, Nodes}`` at ``index`` of a script."""

    index: int
    id: Any
    nodes: tuple[str, ...]


def find_barriers(terms: Iterable[Any]) -> list[Barrier]:
    """Every ``sync_nodes`` instruction; the ``{M, F, A}`` node-list form is refused.

    Raises ScriptError(rule="sync_nodes_mfa") for ``{sync_nodes, Id, {M, F, A}}``: its
    node list is only known on the target, so the Python side cannot coordinate it.
    """
    out = []
    for i, instr in enumerate(terms):
        if not _is(instr, "sync_nodes", 3):
            continue
        nodes = instr[2]
        if isinstance(nodes, tuple):
            raise ScriptError(
                "sync_nodes with an {M, F, A} node list cannot run in direct mode",
                index=i,
                instruction=instr,
                rule="sync_nodes_mfa",
            )
        out.append(Barrier(i, instr[1], tuple(name_of(n) for n in nodes)))
    return out


def strip_barriers(terms: Iterable[Any]) -> list[Any]:
    """The script without ``sync_nodes`` (for ``check_script``: a check must not wait)."""
    return [t for t in terms if not _is(t, "sync_nodes", 3)]


def rewrite_barriers(
    terms: Iterable[Any], *, barrier_name: str, py_node: str, target: str, timeout_ms: int
) -> list[Any]:
    """Replace every ``sync_nodes`` with a call to the Python barrier (module docstring)."""
    out = []
    for t in terms:
        if _is(t, "sync_nodes", 3):
            req = (Atom("arrive"), t[1], Atom(target), [Atom(name_of(n)) for n in t[2]])
            call_args = [(Atom(barrier_name), Atom(py_node)), req, int(timeout_ms)]
            out.append((Atom("apply"), (Atom("gen_server"), Atom("call"), call_args)))
        else:
            out.append(t)
    return out


def script_libs(terms: Iterable[Any]) -> dict[str, str]:
    """``{lib: vsn}`` of every ``load_object_code`` (the LibDirs the script needs).

    Raises ScriptError(rule="conflicting_versions") if one lib appears with two versions.
    """
    libs: dict[str, str] = {}
    for i, t in enumerate(terms):
        if _is(t, "load_object_code", 2) and isinstance(t[1], tuple) and len(t[1]) == 3:
            lib, vsn = name_of(t[1][0]), t[1][1]
            vsn_text = (
                vsn.text
                if hasattr(vsn, "text")
                else (vsn if isinstance(vsn, str) else "".join(map(chr, vsn)))
            )
            if libs.setdefault(lib, vsn_text) != vsn_text:
                raise ScriptError(
                    f"{lib} loaded in two versions",
                    index=i,
                    instruction=t,
                    rule="conflicting_versions",
                )
    return libs


def suspended_modules(terms: Iterable[Any]) -> list[str]:
    """Modules named in ``suspend`` instructions (sorted, unique)."""
    mods: set[str] = set()
    for t in terms:
        if _is(t, "suspend", 2):
            mods.update(name_of(m[0] if isinstance(m, tuple) else m) for m in t[1])
    return sorted(mods)


def touched_modules(terms: Iterable[Any]) -> list[str]:
    """Modules a script loads, removes, purges, suspends or code_changes (sorted, unique)."""
    mods: set[str] = set()
    for t in terms:
        if not isinstance(t, tuple) or len(t) < 2:
            continue
        tag, arg = t[0], t[-1]
        if tag == "load_object_code":
            mods.update(name_of(m) for m in arg[2])
        elif tag in ("load", "remove"):
            mods.add(name_of(arg[0]))
        elif tag in ("purge", "suspend", "resume", "code_change", "stop", "start"):
            for m in arg:
                mods.add(name_of(m[0] if isinstance(m, tuple) else m))
    return sorted(mods)
