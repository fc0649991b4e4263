"""The optional compiled codec: ``erlbridge.term._speedups``, built from ``_speedups.c``
when the package is installed on a machine with a C compiler (never required).

It is used unless ``ERLBRIDGE_PURE_PYTHON=1`` is set (read once, at import); the
decoder and encoder fall back to their pure-Python code for anything it does not take.
"""

from __future__ import annotations

import importlib
import logging
import os
from types import ModuleType

logger = logging.getLogger(__name__)

__all__ = ["ACCELERATED", "speedups"]


def _load() -> ModuleType | None:
    if os.environ.get("ERLBRIDGE_PURE_PYTHON") == "1":
        return None
    try:
        # By name: an import from the package would run erlbridge.term's __init__
        # (and its import graph) from below the codec.
        return importlib.import_module("erlbridge.term._speedups")
    except ImportError:  # not built (no compiler at install): the pure codec serves
        return None


#: The compiled module, or None when the pure-Python codec runs alone.
speedups = _load()
#: Whether the compiled fast paths are in use.
ACCELERATED = speedups is not None
