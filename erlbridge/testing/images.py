"""Docker images for test clusters (L4; the ``docker`` SDK is imported on use).

* Base images ``erlbridge-base:otpNN``: Debian with that OTP (bookworm 25, trixie 27,
  sid 29), made by ``scripts/build-base-images.sh`` (mmdebstrap piped into
  ``docker import``; no registry involved). :func:`build_base_images` runs it from the
  package, so ``erlbridge images build --otp 25,27`` works from a wheel.
* Node images ``erlbridge-node:otpNN``: erlbridge's fixture release built inside the
  base image (``scripts/build-node-images.sh``), for erlbridge's own tests.
* Release images: :func:`release_image` puts a user's relx tarball, extracted in
  ``/opt/release``, on a base image. Cached by content: the tag carries a hash of the
  tarball and the base image id, so an unchanged tarball is not built again.

A tarball with erts included runs its own erts (built on another Linux, it needs a
compatible glibc/ncurses/OpenSSL in the base image); without erts it runs on the base
image's OTP, which must be one the release's code accepts.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import subprocess
import tarfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from erlbridge.exceptions import InvalidState
from erlbridge.testing.assets import assets_root
from erlbridge.testing.release import ReleaseInfo

__all__ = [
    "RELEASE_ROOT",
    "base_image",
    "build_base_images",
    "build_node_images",
    "release_image",
]

logger = logging.getLogger(__name__)

RELEASE_ROOT = "/opt/release"
OTP_SUITES = {"25": "bookworm", "27": "trixie", "29": "sid"}
_RECIPE = "erlbridge-release-image/1"  # change when the Dockerfile below changes


def base_image(otp: str) -> str:
    """The base image of an OTP release: ``$ERLBRIDGE_BASE_IMAGE:otpNN`` (default
    ``erlbridge-base``)."""
    return f"{os.environ.get('ERLBRIDGE_BASE_IMAGE') or 'erlbridge-base'}:otp{otp}"


def _check_versions(versions: Sequence[str]) -> list[str]:
    bad = [v for v in versions if v not in OTP_SUITES]
    if bad or not versions:
        raise ValueError(f"OTP releases must be among {sorted(OTP_SUITES)}, not {list(versions)}")
    return list(versions)


def _run_script(name: str, versions: Sequence[str], timeout: float) -> int:
    script = assets_root() / "scripts" / name
    try:
        return subprocess.run(["bash", str(script), *versions], timeout=timeout,
                              check=False).returncode
    except subprocess.TimeoutExpired as exc:
        raise InvalidState(f"{name} did not finish within {timeout:.0f} s") from exc


def build_base_images(versions: Sequence[str], *, timeout: float = 1800.0) -> int:
    """Build the missing ``erlbridge-base:otpNN`` images (needs root, ``mmdebstrap`` and
    a Docker engine); returns the script's exit code. Output goes to this process's."""
    return _run_script("build-base-images.sh", _check_versions(versions), timeout)


def build_node_images(versions: Sequence[str], *, timeout: float = 1800.0) -> int:
    """Build (or find up to date) erlbridge's fixture images ``erlbridge-node:otpNN``."""
    return _run_script("build-node-images.sh", _check_versions(versions), timeout)


def _dockerfile(base: str, info: ReleaseInfo) -> str:
    return (
        f"FROM {base}\n"
        "COPY release.tar.gz /tmp/release.tar.gz\n"
        f"RUN mkdir -p {RELEASE_ROOT} && tar xzf /tmp/release.tar.gz -C {RELEASE_ROOT}"
        " && rm /tmp/release.tar.gz\n"
        "ENV LANG=C.UTF-8\n"
        f'LABEL org.erlbridge.release.root="{RELEASE_ROOT}" '
        f'org.erlbridge.release.name="{info.name}"\n'
    )


def _tag_part(text: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in text.lower())[:60]


def release_image(client: Any, tarball: Path, *, base: str) -> str:
    """The tag of an image holding ``tarball`` extracted on ``base``; built when missing.

    Raises :class:`InvalidState` when the base image is missing or the build fails.
    """
    import docker  # type: ignore[import-untyped]  # noqa: PLC0415 -- optional

    info = ReleaseInfo.read(tarball)
    try:
        base_id = client.images.get(base).id
    except docker.errors.ImageNotFound as exc:
        otp = base.rsplit("otp", 1)[-1]
        raise InvalidState(f"base image {base} not found: build it with "
                           f"`erlbridge images build --otp {otp}`") from exc
    digest = hashlib.sha256()
    digest.update(f"{_RECIPE}\0{base_id}\0".encode())
    with tarball.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    inputs = digest.hexdigest()[:24]
    tag = f"erlbridge-release:{_tag_part(info.name)}-{_tag_part(info.vsn)}-{inputs[:12]}"
    try:
        found = client.images.get(tag)
        if (found.labels or {}).get("org.erlbridge.inputs") == inputs:
            return tag
    except docker.errors.ImageNotFound:
        pass
    logger.info("building %s from %s on %s", tag, tarball, base)
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        data = _dockerfile(base, info).encode()
        entry = tarfile.TarInfo("Dockerfile")
        entry.size = len(data)
        tar.addfile(entry, io.BytesIO(data))
        tar.add(str(tarball), arcname="release.tar.gz")
    context.seek(0)
    try:
        client.images.build(fileobj=context, custom_context=True, tag=tag, rm=True,
                            labels={"org.erlbridge.inputs": inputs}, pull=False)
    except (docker.errors.BuildError, docker.errors.APIError) as exc:
        log = "".join(str(item.get("stream", "")) for item in getattr(exc, "build_log", []))
        raise InvalidState(f"building {tag} failed: {exc}\n{log[-3000:]}") from exc
    return tag
