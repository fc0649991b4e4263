"""``as_atom``: Atom construction that is safe for values that already are atoms.

``Atom(x)`` goes through ``str(x)``, and ``str()`` of an Atom is its *quoted* Erlang syntax
(``'n1@h'``), so ``Atom(Atom("n1@h"))`` would add quotes. Always convert with this.
"""

from __future__ import annotations

from erlbridge.term import Atom

__all__ = ["as_atom"]


def as_atom(value: str) -> Atom:
    if type(value) is Atom:
        return value
    return Atom(str.__str__(value))
