"""``images build``: the Docker images the pytest plugin's docker backend runs on."""

from __future__ import annotations

import click

from erlbridge.cli._common import EXIT_FAILED, BadInput

__all__ = ["images"]


@click.group()
def images() -> None:
    """Docker images for test clusters (`pytest --erl-backend=docker`)."""


@images.command("build")
@click.option("--otp", "otp", default="27", show_default=True, metavar="25,27,29",
              help="OTP releases to build base images for (comma-separated).")
@click.option("--node-images", is_flag=True,
              help="Also build erlbridge's own fixture images erlbridge-node:otpNN.")
def build(*, otp: str, node_images: bool) -> None:
    """Build the base images erlbridge-base:otpNN (Debian with that OTP: bookworm 25,
    trixie 27, sid 29) with mmdebstrap and `docker import`, from this machine's apt
    sources; no image registry is used. Existing images are kept (delete one to rebuild).

    Needs root, mmdebstrap and a running Docker engine. The plugin builds each test
    release's image on top of these (cached by the tarball's content hash).

    \b
    Examples:
      erlbridge images build --otp 27
      erlbridge images build --otp 25,27 --node-images
    """
    from erlbridge.exceptions import InvalidState  # noqa: PLC0415
    from erlbridge.testing.images import build_base_images, build_node_images  # noqa: PLC0415

    versions = [v.strip() for v in otp.split(",") if v.strip()]
    try:
        code = build_base_images(versions)
        if code == 0 and node_images:
            code = build_node_images(versions)
    except ValueError as exc:
        raise BadInput(str(exc)) from exc
    except InvalidState as exc:
        raise click.ClickException(str(exc)) from exc
    if code != 0:
        raise SystemExit(EXIT_FAILED)
