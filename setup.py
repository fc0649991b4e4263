"""Copies the files erlbridge.testing needs after a wheel install into the package, and
builds the optional compiled codec (``erlbridge/term/_speedups.c``).

Everything else is in pyproject.toml. The list of files is ``ASSET_FILES`` of
``erlbridge/testing/assets.py`` (read as text: the package is not importable here).
The compiled codec is built when a C compiler is present and skipped with a warning
when it is not (or fails): the pure-Python codec is complete without it.
"""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


def _asset_files() -> tuple[str, ...]:
    tree = ast.parse((ROOT / "erlbridge" / "testing" / "assets.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "ASSET_FILES":
            return tuple(ast.literal_eval(node.value))
    raise RuntimeError("ASSET_FILES not found in erlbridge/testing/assets.py")


class BuildWithAssets(build_py):  # type: ignore[misc]
    def run(self) -> None:
        super().run()
        target = Path(self.build_lib) / "erlbridge" / "testing" / "_assets"
        if target.exists():
            shutil.rmtree(target)
        for rel in _asset_files():
            src = ROOT / rel
            dst = target / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("_build", "*.beam"))
            elif src.is_file():
                shutil.copy2(src, dst)
            else:
                raise RuntimeError(f"{rel} is missing: cannot build the wheel")


class OptionalBuildExt(build_ext):  # type: ignore[misc]
    """Never fails the install: without a (working) compiler the extension is skipped."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as exc:  # e.g. no compiler configured at all on this platform
            self.warn(f"erlbridge: compiled codec not built ({exc}); using pure Python")

    def build_extension(self, ext: Extension) -> None:
        try:
            super().build_extension(ext)
        except Exception as exc:
            self.warn(f"erlbridge: compiled codec not built ({exc}); using pure Python")


SPEEDUPS = Extension(
    "erlbridge.term._speedups",
    sources=["erlbridge/term/_speedups.c"],
    optional=True,
)

setup(
    cmdclass={"build_py": BuildWithAssets, "build_ext": OptionalBuildExt},
    ext_modules=[SPEEDUPS],
)
