"""Files of erlbridge's repository that the testing tools need after a wheel install.

The build scripts (``scripts/build-fixtures.sh``, ``build-base-images.sh``,
``build-node-images.sh``), the fixture release sources (``erlang_fixtures/apps``,
``erlang_fixtures/config``, ``rebar.config*``) and the node image's ``Dockerfile`` are
copied into the wheel as ``erlbridge/testing/_assets/``, laid out as in the repository
(``setup.py`` does that at build time). :func:`assets_root` is that folder, or the
checkout itself when erlbridge runs from one (editable install).
"""

from __future__ import annotations

from pathlib import Path

from erlbridge.exceptions import InvalidState

__all__ = ["ASSET_FILES", "assets_root", "repo_root"]

ASSET_FILES = (
    "rebar.config",
    "rebar.config.script",
    "Dockerfile",
    ".dockerignore",
    "scripts/build-fixtures.sh",
    "scripts/build-base-images.sh",
    "scripts/build-node-images.sh",
    "scripts/docker-entrypoint.sh",
    "erlang_fixtures/apps",
    "erlang_fixtures/config",
)
"""Paths (relative to the repository) shipped in the wheel; folders are copied whole."""

_PACKAGED = Path(__file__).resolve().parent / "_assets"


def repo_root() -> Path | None:
    """The erlbridge checkout this package runs from (has scripts/build-fixtures.sh), or None."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "scripts" / "build-fixtures.sh").is_file() and (
                parent / "erlang_fixtures").is_dir():
            return parent
    return None


def assets_root() -> Path:
    """The folder holding :data:`ASSET_FILES`; raises :class:`InvalidState` without one."""
    if (_PACKAGED / "scripts" / "build-fixtures.sh").is_file():
        return _PACKAGED
    root = repo_root()
    if root is not None:
        return root
    raise InvalidState("erlbridge's build scripts are missing: this installation was not "
                       "built from a wheel or a checkout of erlbridge")
