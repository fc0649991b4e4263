"""Where the fixture release tarballs are, and building them (L4 test support).

The tarballs ``fixture-1.0.0.tar.gz``, ``-2.0.0``, ``-2.1.0`` are made by
``scripts/build-fixtures.sh`` (default output ``_build/fixtures`` of the checkout) with the
machine's OTP; the local cluster backend extracts 1.0.0 from there.
"""

from __future__ import annotations

import logging
import os
import subprocess
from pathlib import Path

from erlbridge.exceptions import InvalidState

__all__ = ["FIXTURE_VERSIONS", "fixture_tarballs", "repo_root"]

logger = logging.getLogger(__name__)

FIXTURE_VERSIONS = ("1.0.0", "2.0.0", "2.1.0")


def repo_root() -> Path | None:
    """The erlbridge checkout this package runs from (has scripts/build-fixtures.sh), or None."""
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "scripts" / "build-fixtures.sh").is_file() and (
                parent / "erlang_fixtures").is_dir():
            return parent
    return None


def fixture_tarballs(directory: Path | None = None, *, build: bool = True,
                     timeout: float = 600.0) -> Path:
    """The directory holding all fixture tarballs.

    ``directory`` defaults to ``$ERLBRIDGE_FIXTURES_DIR`` or ``<checkout>/_build/fixtures``.
    With ``build`` the build script runs first (it returns at once when its inputs did not
    change). Raises :class:`InvalidState` when the tarballs are not there afterwards.
    """
    root = repo_root()
    env_dir = os.environ.get("ERLBRIDGE_FIXTURES_DIR")
    if directory is None:
        if env_dir:
            directory = Path(env_dir)
        elif root is not None:
            directory = root / "_build" / "fixtures"
        else:
            raise InvalidState("no fixture directory: set ERLBRIDGE_FIXTURES_DIR")
    if build and root is not None:
        out = subprocess.run(
            ["bash", str(root / "scripts" / "build-fixtures.sh"), str(directory)],
            capture_output=True, text=True, timeout=timeout, check=False,
        )
        if out.returncode != 0:
            raise InvalidState(f"building the fixtures failed:\n{out.stdout}\n{out.stderr}")
        logger.info("%s", out.stdout.strip())
    missing = [v for v in FIXTURE_VERSIONS if not (directory / f"fixture-{v}.tar.gz").is_file()]
    if missing:
        raise InvalidState(f"fixture tarballs {missing} missing in {directory}")
    return directory
