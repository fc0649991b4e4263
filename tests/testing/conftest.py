"""Releases that are not erlbridge's fixture, built with rebar3 like a user's (cached)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))

from eb_userrel import build_release


def _build(name: str, **options: object) -> Path:
    if shutil.which("rebar3") is None or shutil.which("erl") is None:
        pytest.skip("building a release needs erl and rebar3")
    return build_release(name, **options)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def kvs_release() -> Path:
    """``kvs-1.0.0.tar.gz``: a literal ``vm.args`` (``-sname kvs``, ``-setcookie``),
    no erts (runs on the machine's or the image's OTP)."""
    return _build("kvs", vm_args="plain", include_erts=False, upgrade=False) / \
        "kvs-1.0.0.tar.gz"


@pytest.fixture(scope="session")
def myapp_releases() -> Path:
    """Folder with ``myapp-1.0.0.tar.gz`` and ``myapp-2.0.0.tar.gz`` (relup, erts
    included, ``vm.args.src`` with ``${NODE_NAME}`` and ``${COOKIE}``)."""
    return _build("myapp", vm_args="src", include_erts=True, upgrade=True)
