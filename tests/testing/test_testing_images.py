"""Images for docker clusters: the `erlbridge images build` command's input checks, and
release images cached by content (a changed tarball gets a new image, an unchanged one
does not)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from erlbridge.cli import main
from erlbridge.testing.images import base_image, release_image


def test_images_build_refuses_an_unknown_otp(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["images", "build", "--otp", "26"]) == 2
    assert "26" in capsys.readouterr().err


def test_base_image_name_follows_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ERLBRIDGE_BASE_IMAGE", raising=False)
    assert base_image("27") == "erlbridge-base:otp27"
    monkeypatch.setenv("ERLBRIDGE_BASE_IMAGE", "mine/base")
    assert base_image("25") == "mine/base:otp25"


@pytest.mark.integration
@pytest.mark.docker
def test_release_images_are_cached_by_content(kvs_release: Path, tmp_path: Path) -> None:
    from erlbridge.testing.docker_cluster import docker_client  # noqa: PLC0415

    try:
        client = docker_client()
        client.images.get(base_image("27"))
    except Exception as exc:  # no engine or no base image (CI=true: fails the run)
        pytest.skip(f"docker with {base_image('27')} not available: {exc}")
    first = release_image(client, kvs_release, base=base_image("27"))
    again = release_image(client, kvs_release, base=base_image("27"))
    assert first == again
    assert client.images.get(first).id == client.images.get(again).id
    labels = client.images.get(first).labels
    assert labels["org.erlbridge.release.name"] == "kvs"
    # Same name and version, other bytes: another image.
    changed = tmp_path / kvs_release.name
    shutil.copy(kvs_release, changed)
    with changed.open("ab") as f:
        f.write(b"\0" * 1024)  # gzip ignores trailing zeros in a tar stream's padding
    other = release_image(client, changed, base=base_image("27"))
    try:
        assert other != first
    finally:
        client.images.remove(other, force=True)
