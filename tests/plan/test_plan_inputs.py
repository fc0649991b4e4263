"""Bad inputs to the planner give a one-line PlanError, never a traceback (no Erlang)."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from erlbridge.exceptions import PlanError
from erlbridge.plan import plan_upgrade, read_beam
from erlbridge.plan.build import open_build


def _tar(path: Path, files: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


@pytest.mark.parametrize("content", [b"garbage", b"\x1f\x8b\x08\x00rest"])
def test_unreadable_tarball(tmp_path: Path, content: bytes) -> None:
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(content)
    with pytest.raises(PlanError) as info:
        plan_upgrade(bad, bad)
    assert "\n" not in str(info.value)


def test_not_a_release(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="no releases/ directory"):
        open_build(tmp_path)
    with pytest.raises(PlanError, match="no such release"):
        open_build(tmp_path / "missing")
    t = _tar(tmp_path / "x.tar.gz", {"releases/1/x.rel": b"not a term"})
    with pytest.raises(PlanError, match="cannot read"):
        open_build(t)
    t = _tar(tmp_path / "y.tar.gz", {"releases/1/y.rel": b"{foo}."})
    with pytest.raises(PlanError, match=r"not a \{release"):
        open_build(t)
    # a path outside the extraction dir is refused by the tar filter
    t = _tar(tmp_path / "z.tar.gz", {"../../evil": b"x"})
    with pytest.raises(PlanError):
        open_build(t)
    assert not (tmp_path.parent / "evil").exists()


def test_same_release_version_refused(tmp_path: Path) -> None:
    rel = b'{release, {"r", "1"}, {erts, "13.1"}, [{kernel, "8.5"}]}.'
    t = _tar(tmp_path / "r.tar.gz", {"releases/1/r.rel": rel})
    with pytest.raises(PlanError, match="both builds are release 1"):
        plan_upgrade(t, t)


@pytest.mark.parametrize("data", [
    b"FOR1\x00\x00\x00\x10BEAMAtU8\xff\xff\xff\xff",
    b"FOR1\x00\x00\x00\x14BEAMAtU8\x00\x00\x00\x04\x00\x00\x00\x05",
    b"\x1f\x8bnot gzip",
])
def test_hostile_beams(data: bytes) -> None:
    with pytest.raises(PlanError):
        read_beam(data, "x.beam")
