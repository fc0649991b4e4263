"""The plugin the way a user meets it: erlbridge built as a wheel, installed with
``[testing]`` into a fresh virtualenv, and plain ``pytest`` run in a project outside this
repository that holds only what docs/testing.md shows (its ``pyproject.toml`` section, its
test module, and a ``myapp`` release built with rebar3) -- on the local backend, with no
Docker engine touched, and on the docker backend (OTP 27).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from erlbridge.testing.docker_cluster import docker_client
from erlbridge.testing.images import base_image

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_plugin_user_project import user_project

ROOT = Path(__file__).resolve().parents[2]
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
# Variables of erlbridge's own test run that a user's project would not have.
OURS = ("ERLBRIDGE_ERL_BACKEND", "ERLBRIDGE_OTP", "ERLBRIDGE_FIXTURES_DIR",
        "ERLBRIDGE_FIXTURES", "PYTHONPATH", "VIRTUAL_ENV", "ERL_EPMD_PORT", "ERLANG_COOKIE")


def _run(args: list[str], *, cwd: Path, timeout: float,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False,
                          timeout=timeout * FACTOR, env=env)
    assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}"
    return done


@pytest.fixture(scope="module")
def user_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv with erlbridge's wheel installed with ``[testing]``."""
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(out), str(ROOT)],
         cwd=out, timeout=600)
    [wheel] = out.glob("erlbridge-*.whl")
    venv = tmp_path_factory.mktemp("user-venv")
    _run([sys.executable, "-m", "venv", str(venv)], cwd=out, timeout=300)
    _run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", f"{wheel}[testing]"],
         cwd=out, timeout=900)
    return venv


@pytest.fixture
def no_docker_here(tmp_path: Path) -> Iterator[tuple[str, list[int]]]:
    """A ``DOCKER_HOST`` socket that counts the connections made to it."""
    path = tmp_path / "docker.sock"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(path))
    server.listen()
    server.settimeout(0.2)
    seen: list[int] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            seen.append(1)
            conn.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"unix://{path}", seen
    finally:
        stop.set()
        thread.join(5)
        server.close()


def _user_env(venv: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in OURS}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


@pytest.mark.integration
@pytest.mark.codec_group("user-project")
def test_user_project_passes_on_the_local_backend_without_docker(
        user_venv: Path, myapp_releases: Path, tmp_path: Path,
        no_docker_here: tuple[str, list[int]]) -> None:
    project = tmp_path / "myproject"
    project.mkdir()
    user_project(project, myapp_releases)
    docker_host, connections = no_docker_here
    done = _run([str(user_venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider"],
                cwd=project, timeout=900, env=_user_env(user_venv, DOCKER_HOST=docker_host))
    assert "3 passed" in done.stdout, done.stdout
    assert "local-otp" in subprocess.run(
        [str(user_venv / "bin" / "pytest"), "--collect-only", "-q"], cwd=project,
        capture_output=True, text=True, check=False, timeout=120,
        env=_user_env(user_venv, DOCKER_HOST=docker_host)).stdout
    assert connections == [], "a plain pytest talked to the Docker engine"


@pytest.mark.integration
def test_fixture_release_builds_from_the_wheel(user_venv: Path, tmp_path: Path) -> None:
    """erlbridge's own fixture (erl_fixture_tarballs) from the sources in the wheel."""
    cache = tmp_path / "cache"
    code = "from erlbridge.testing import fixture_tarballs; print(fixture_tarballs())"
    done = _run([str(user_venv / "bin" / "python"), "-c", code], cwd=tmp_path, timeout=900,
                env=_user_env(user_venv, XDG_CACHE_HOME=str(cache)))
    built = Path(done.stdout.strip())
    assert built == cache / "erlbridge" / "fixtures"
    assert sorted(p.name for p in built.glob("fixture-*.tar.gz")) == [
        "fixture-1.0.0.tar.gz", "fixture-2.0.0.tar.gz", "fixture-2.1.0.tar.gz"]


@pytest.mark.integration
@pytest.mark.docker
@pytest.mark.codec_group("user-project", pure=True)  # the compiled one: the local backend
def test_user_project_passes_on_the_docker_backend(
        user_venv: Path, myapp_releases: Path, tmp_path: Path) -> None:
    try:
        docker_client().images.get(base_image("27"))
    except Exception as exc:  # no engine or no base image: CI=true turns this into a failure
        pytest.skip(f"docker backend for OTP 27 not available: {exc}")
    # The documented command, from the wheel (the image exists: it only says so).
    built = _run([str(user_venv / "bin" / "erlbridge"), "images", "build", "--otp", "27"],
                 cwd=tmp_path, timeout=600, env=_user_env(user_venv))
    assert base_image("27") in built.stdout
    project = tmp_path / "myproject"
    project.mkdir()
    user_project(project, myapp_releases)
    done = _run([str(user_venv / "bin" / "pytest"), "-q", "-p", "no:cacheprovider",
                 "--erl-backend=docker", "--otp=27"],
                cwd=project, timeout=900, env=_user_env(user_venv))
    assert "3 passed" in done.stdout, done.stdout
