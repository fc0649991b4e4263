"""One build of a release, read from disk: a relx release directory or a release tarball.

:func:`open_build` finds the release's ``.rel`` (name, version, erts version, the
applications and their versions), each application's ``lib/APP-VSN`` directory, its
``.app`` term, its beams and the ``.appup`` it ships. A tarball is extracted into a
temporary directory first (removed when the :class:`ReleaseBuild` is garbage-collected
or :meth:`ReleaseBuild.close` is called). Nothing here runs Erlang.
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import weakref
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from erlbridge.exceptions import PlanError, TermError
from erlbridge.plan.beam import Beam, read_beam
from erlbridge.term import ErlString, parse_terms

__all__ = ["AppBuild", "BuildError", "ReleaseBuild", "open_build", "text"]

# Bounds for an untrusted tarball (a release with erts is tens of MB, a few thousand files).
MAX_EXTRACTED_BYTES = 8 << 30
MAX_MEMBERS = 200_000


class BuildError(PlanError, ValueError):
    """A release build cannot be read (the message names the file)."""


def text(value: Any) -> str:
    """Plain text of an Erlang string/atom/binary read from a file."""
    if isinstance(value, ErlString):
        return value.text
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, list):
        return "".join(map(chr, value))
    return str.__str__(value) if isinstance(value, str) else str(value)


@dataclass
class AppBuild:
    """One application of a build: ``dir`` is ``lib/APP-VSN`` (None if the build lacks it)."""

    name: str
    vsn: str
    dir: Path | None
    app_term: Any = None
    _beams: dict[str, Beam] = field(default_factory=dict, repr=False)

    @property
    def ebin(self) -> Path | None:
        return None if self.dir is None else self.dir / "ebin"

    @property
    def app_file(self) -> Path | None:
        return None if self.ebin is None else self.ebin / f"{self.name}.app"

    @property
    def appup_file(self) -> Path | None:
        """The ``.appup`` this build ships for the application, if any."""
        if self.ebin is None:
            return None
        path = self.ebin / f"{self.name}.appup"
        return path if path.is_file() else None

    @property
    def declared_modules(self) -> tuple[str, ...]:
        """The ``modules`` key of the ``.app`` file."""
        if not isinstance(self.app_term, tuple) or len(self.app_term) != 3:
            return ()
        for item in self.app_term[2] if isinstance(self.app_term[2], list) else []:
            if isinstance(item, tuple) and len(item) == 2 and item[0] == "modules":
                return tuple(text(m) for m in item[1])
        return ()

    def app_key(self, key: str) -> Any:
        """A key of the ``.app`` file (None when absent)."""
        if not isinstance(self.app_term, tuple) or len(self.app_term) != 3:
            return None
        for item in self.app_term[2] if isinstance(self.app_term[2], list) else []:
            if isinstance(item, tuple) and len(item) == 2 and item[0] == key:
                return item[1]
        return None

    def beam_names(self) -> tuple[str, ...]:
        """Modules with a ``.beam`` in ebin, sorted."""
        if self.ebin is None or not self.ebin.is_dir():
            return ()
        return tuple(sorted(p.stem for p in self.ebin.glob("*.beam")))

    def beam_bytes(self, module: str) -> bytes:
        """The raw file of ``module``'s beam."""
        assert self.ebin is not None
        return (self.ebin / f"{module}.beam").read_bytes()

    def beam(self, module: str) -> Beam:
        """The parsed beam of ``module`` (cached)."""
        if module not in self._beams:
            assert self.ebin is not None
            path = self.ebin / f"{module}.beam"
            self._beams[module] = read_beam(path.read_bytes(), str(path))
        return self._beams[module]


@dataclass
class ReleaseBuild:
    """A release build: ``root`` holds ``lib/`` and ``releases/VSN/NAME.rel``."""

    source: Path
    root: Path
    name: str
    vsn: str
    erts_vsn: str
    rel_file: Path
    apps: dict[str, AppBuild]
    rel_term: Any = None
    _cleanup: Any = field(default=None, repr=False)

    @property
    def is_tarball(self) -> bool:
        return self.source.is_file()

    @property
    def otp_major(self) -> str | None:
        """The OTP release of the erts this release names (erts 13 = OTP 25 ... 17 = 29)."""
        try:
            return str(int(self.erts_vsn.split(".")[0]) + 12)
        except ValueError:
            return None

    def close(self) -> None:
        """Remove the extracted copy of a tarball (no-op for a directory)."""
        if self._cleanup is not None:
            self._cleanup()


def _consult(path: Path) -> list[Any]:
    try:
        return parse_terms(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, TermError) as exc:
        raise BuildError(f"{path}: cannot read: {exc}") from exc


def _extract(tarball: Path) -> tuple[Path, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="erlbridge-plan-"))
    try:
        with tarfile.open(tarball, "r:*") as tar:
            members = tar.getmembers()
            total = sum(m.size for m in members)
            if len(members) > MAX_MEMBERS or total > MAX_EXTRACTED_BYTES:
                raise BuildError(f"{tarball}: {len(members)} files, {total} bytes: more than "
                                 "a release tarball holds")
            tar.extractall(tmp, members=members, filter="data")
    except BuildError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        why = " ".join(str(exc).split())
        raise BuildError(f"{tarball}: not a readable release tarball: {why}") from exc
    return tmp, shutil.rmtree


def _find_rel(root: Path, hint: str | None) -> Path:
    releases = root / "releases"
    if not releases.is_dir():
        raise BuildError(f"{root}: no releases/ directory (not a release build)")
    candidates = sorted(p for p in releases.glob("*/*.rel") if p.is_file())
    if hint is not None:
        candidates = [p for p in candidates if p.parent.name == hint] or candidates
    names = {p.parent.name for p in candidates}
    if not candidates:
        raise BuildError(f"{root}: no releases/VSN/NAME.rel")
    if len(names) > 1:
        raise BuildError(
            f"{root}: several release versions ({', '.join(sorted(names))}) and "
            "releases/start_erl.data names none of them"
        )
    if len(candidates) > 1:
        raise BuildError(f"{root}: several .rel files in {candidates[0].parent}")
    return candidates[0]


def _current_vsn(root: Path) -> str | None:
    data = root / "releases" / "start_erl.data"
    try:
        words = data.read_text().split()
    except OSError:
        return None
    return words[1] if len(words) == 2 else None


def open_build(path: str | Path, *, extra_lib_roots: tuple[Path, ...] = ()) -> ReleaseBuild:
    """Read a release build from a relx release directory or a release tarball.

    ``extra_lib_roots``: directories (an OTP installation's ``lib``) searched for an
    application the build does not bundle. BuildError if the build cannot be read.
    """
    source = Path(path)
    cleanup: Any = None
    if source.is_file():
        root, remove = _extract(source)
        cleanup = (remove, root)
    elif source.is_dir():
        root = source
    else:
        raise BuildError(f"{source}: no such release directory or tarball")
    try:
        rel_file = _find_rel(root, _current_vsn(root))
        terms = _consult(rel_file)
        term = terms[0] if len(terms) == 1 else None
        if not (isinstance(term, tuple) and len(term) == 4 and term[0] == "release"):
            raise BuildError(f"{rel_file}: not a {{release, ...}} term")
        name, vsn = text(term[1][0]), text(term[1][1])
        erts_vsn = text(term[2][1])
        apps: dict[str, AppBuild] = {}
        for entry in term[3]:
            app, app_vsn = text(entry[0]), text(entry[1])
            apps[app] = _app(root, app, app_vsn, extra_lib_roots)
    except BuildError:
        if cleanup is not None:
            cleanup[0](cleanup[1], ignore_errors=True)
        raise
    except (TypeError, IndexError) as exc:
        if cleanup is not None:
            cleanup[0](cleanup[1], ignore_errors=True)
        raise BuildError(f"{source}: malformed .rel: {exc}") from exc
    build = ReleaseBuild(source, root, name, vsn, erts_vsn, rel_file, apps, term)
    if cleanup is not None:
        build._cleanup = weakref.finalize(build, cleanup[0], cleanup[1], ignore_errors=True)
    return build


def _app(root: Path, app: str, vsn: str, extra: tuple[Path, ...]) -> AppBuild:
    for lib in (root / "lib", *extra):
        folder = lib / f"{app}-{vsn}"
        if (folder / "ebin" / f"{app}.app").is_file():
            terms = _consult(folder / "ebin" / f"{app}.app")
            return AppBuild(app, vsn, folder, terms[0] if terms else None)
    return AppBuild(app, vsn, None)
