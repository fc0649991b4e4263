"""Fixtures for the node tests: see eb_nodeharness for the backend."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from eb_nodeharness import ErlNode, LocalErlBackend


@pytest.fixture(scope="session")
def erl_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalErlBackend]:
    backend = LocalErlBackend(tmp_path_factory.mktemp("erl"))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="session")
def erl_node(erl_backend: LocalErlBackend) -> ErlNode:
    """A long-lived target node shared by the tests that do not hurt it."""
    return erl_backend.start_node("n1")
