"""erlbridge's own ``fixture`` release: where its tarballs are, and building them (L4).

The tarballs ``fixture-1.0.0.tar.gz``, ``-2.0.0``, ``-2.1.0`` are made by
``scripts/build-fixtures.sh`` with the machine's OTP and rebar3, from the sources in the
checkout or, after a wheel install, the copies shipped in the package (see
:mod:`.assets`). The fixture is one release among others for the cluster classes;
:func:`fixture_cluster_options` adds the two variables its code reads.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from erlbridge.exceptions import InvalidState
from erlbridge.testing.assets import assets_root, repo_root

__all__ = ["FIXTURE_VERSIONS", "fixture_cluster_options", "fixture_tarballs", "repo_root"]

logger = logging.getLogger(__name__)

FIXTURE_VERSIONS = ("1.0.0", "2.0.0", "2.1.0")


def _default_directory() -> Path:
    env_dir = os.environ.get("ERLBRIDGE_FIXTURES_DIR")
    if env_dir:
        return Path(env_dir)
    root = repo_root()
    if root is not None:
        return root / "_build" / "fixtures"
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "erlbridge" / "fixtures"


def fixture_tarballs(directory: Path | None = None, *, build: bool = True,
                     timeout: float = 600.0) -> Path:
    """The directory holding all fixture tarballs.

    ``directory`` defaults to ``$ERLBRIDGE_FIXTURES_DIR``, else ``<checkout>/_build/fixtures``
    when running from a checkout, else ``~/.cache/erlbridge/fixtures``. With ``build`` the
    build script runs first (it returns at once when its inputs did not change; it needs
    ``erl`` and ``rebar3``). Raises :class:`InvalidState` when the tarballs are not there
    afterwards.
    """
    directory = directory or _default_directory()
    if build:
        if shutil.which("rebar3") is None or shutil.which("erl") is None:
            if not _complete(directory):
                raise InvalidState("building the fixture releases needs erl and rebar3 on "
                                   "PATH (Debian: apt-get install erlang-nox rebar3)")
        else:
            script = assets_root() / "scripts" / "build-fixtures.sh"
            out = subprocess.run(
                ["bash", str(script), str(directory)],
                capture_output=True, text=True, timeout=timeout, check=False,
            )
            if out.returncode != 0:
                raise InvalidState(f"building the fixtures failed:\n{out.stdout}\n{out.stderr}")
            logger.info("%s", out.stdout.strip())
    missing = [v for v in FIXTURE_VERSIONS if not (directory / f"fixture-{v}.tar.gz").is_file()]
    if missing:
        raise InvalidState(f"fixture tarballs {missing} missing in {directory}")
    return directory


def _complete(directory: Path) -> bool:
    return all((directory / f"fixture-{v}.tar.gz").is_file() for v in FIXTURE_VERSIONS)


def fixture_cluster_options(tarball_dir: Path | None) -> dict[str, Any]:
    """Cluster options for the fixture release: ``FIXTURE_CLUSTER`` receives every node
    name (its relup's ``sync_nodes`` barrier waits for them), ``FIXTURE_TARBALL_DIR``
    where ``fixture:unpack/1`` finds the other versions (None: the image's own)."""
    options: dict[str, Any] = {"nodes_env": "FIXTURE_CLUSTER"}
    if tarball_dir is not None:
        options["env"] = {"FIXTURE_TARBALL_DIR": str(tarball_dir)}
    return options
