"""Fixtures for the node tests (defined in eb_nodeharness, shared with tests/test_sync*)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from eb_nodeharness import erl_backend, erl_node

__all__ = ["erl_backend", "erl_node"]
