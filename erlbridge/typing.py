"""Shared type aliases (L0).

``Term`` is deliberately ``Any``: Erlang terms map onto open-ended Python values
(see :mod:`erlbridge.term` for the table); the alias documents intent at call sites.
"""

from __future__ import annotations

from typing import Any, TypeAlias

Term: TypeAlias = Any
#: A node name such as ``"app@127.0.0.1"`` (str or :class:`erlbridge.term.Atom`).
NodeName: TypeAlias = str
