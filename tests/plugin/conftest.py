"""The user's release of the docs example (``myapp`` 1.0.0 and 2.0.0), built with rebar3
like a user's project builds it (cached under ``_build/user-releases``)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from eb_userrel import build_release


@pytest.fixture(scope="session")
def myapp_releases() -> Path:
    """Folder with ``myapp-1.0.0.tar.gz`` and ``myapp-2.0.0.tar.gz``."""
    if shutil.which("rebar3") is None or shutil.which("erl") is None:
        pytest.skip("building a release needs erl and rebar3")
    return build_release("myapp", vm_args="src", include_erts=True, upgrade=True)
