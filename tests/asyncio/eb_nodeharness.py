"""Real Erlang nodes for the node integration tests (helpers; fixtures in conftest.py).

The ``erl_backend`` session fixture gives a :class:`LocalErlBackend`: a private HOME with the
cookie in ``.erlang.cookie`` (never on argv), its own EPMD on a free port (``ERL_EPMD_PORT``),
and nodes started with long names ``NAME@127.0.0.1``. Tests only use its small interface
(``start_node``, ``epmd_port``, ``cookie``, node ``kill/pause/resume/stop``), so a container
backend with the same interface can be swapped in.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from erlbridge.term import Atom, ErlString

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
HERE = Path(__file__).parent


def scaled(seconds: float) -> float:
    return seconds * FACTOR


def run(coro: Coroutine[Any, Any, Any], *, timeout: float = 60.0) -> Any:
    """Run one async test body with a global deadline."""

    async def guarded() -> Any:
        async with asyncio.timeout(scaled(timeout)):
            return await coro

    return asyncio.run(guarded())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ErlNode:
    """One local ``erl`` OS process."""

    def __init__(self, name: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.name = name
        self.proc = proc
        self.log = log

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def pause(self) -> None:
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        self.proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class LocalErlBackend:
    """Local ``erl`` nodes with a private EPMD and cookie."""

    def __init__(self, root: Path) -> None:
        erl = shutil.which("erl")
        if erl is None:
            pytest.skip("erl is not installed")
        self.erl = erl
        self.root = root
        self.home = root / "home"
        self.home.mkdir()
        self.cookie = "eb" + secrets.token_hex(8)
        cookie_file = self.home / ".erlang.cookie"
        cookie_file.write_text(self.cookie)
        cookie_file.chmod(0o400)
        self.epmd_port = _free_port()
        self.env = {**os.environ, "HOME": str(self.home), "ERL_EPMD_PORT": str(self.epmd_port)}
        self.env.pop("ERLANG_COOKIE", None)
        self.epmd = subprocess.Popen(
            ["epmd", "-port", str(self.epmd_port)],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._wait_names(lambda names: True)
        self.nodes: list[ErlNode] = []
        subprocess.run(
            ["erlc", "-o", str(root), str(HERE / "erl" / "eb_test.erl")], check=True, env=self.env
        )
        self.beam = (root / "eb_test.beam").read_bytes()
        #: the address Python nodes use in their names (reachable by the Erlang nodes)
        self.client_host = "127.0.0.1"
        #: the OTP release the target nodes run
        self.otp = subprocess.run(
            [
                erl,
                "-noshell",
                "-eval",
                'io:format("~s", [erlang:system_info(otp_release)]), halt().',
            ],
            capture_output=True,
            text=True,
            check=True,
            env=self.env,
        ).stdout.strip()

    def _names(self) -> str:
        out = subprocess.run(
            ["epmd", "-port", str(self.epmd_port), "-names"],
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        return out.stdout if out.returncode == 0 else ""

    def _wait_names(self, ok: Callable[[str], bool], timeout: float = 10.0) -> None:
        deadline = time.monotonic() + scaled(timeout)
        while time.monotonic() < deadline:
            names = self._names()
            if names and ok(names):
                return
            time.sleep(0.05)
        raise RuntimeError("EPMD did not show the expected names")

    def start_node(
        self,
        alive: str,
        *,
        net_ticktime: int | None = None,
        hidden: bool = False,
        short: bool = False,
    ) -> ErlNode:
        """Start ``alive@127.0.0.1`` (or ``alive@<short hostname>`` with ``short``)."""
        name = f"{alive}@{socket.gethostname().split('.')[0]}" if short else f"{alive}@127.0.0.1"
        args = [self.erl, "-noshell", "-noinput", "-sname" if short else "-name", name]
        if net_ticktime is not None:
            args += ["-kernel", "net_ticktime", str(net_ticktime)]
        if hidden:
            args.append("-hidden")
        log = self.root / f"{alive}.log"
        proc = subprocess.Popen(
            args, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.root
        )
        node = ErlNode(name, proc, log)
        self.nodes.append(node)
        self._wait_names(lambda names: f"name {alive} at port" in names)
        return node

    def beam_for(self, node: ErlNode) -> bytes:
        """eb_test.beam compiled by the node's own OTP."""
        return self.beam

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        self.epmd.terminate()
        self.epmd.wait(10)


class DockerErlNode(ErlNode):
    """A node in a container: SIGKILL = ``docker kill``, SIGSTOP = ``docker pause``."""

    def __init__(self, name: str, container: Any) -> None:
        self.name = name
        self.container = container
        self.log = Path("/dev/null")

    def kill(self) -> None:
        self.container.reload()
        if self.container.status == "paused":
            self.container.unpause()
        self.container.kill()
        self.container.wait(timeout=30)

    def pause(self) -> None:
        self.container.pause()

    def resume(self) -> None:
        self.container.unpause()

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.container.remove(force=True)


class DockerErlBackend(LocalErlBackend):
    """Plain ``erl`` nodes in ``erlbridge-node:otpNN`` containers on a session network.

    The host runs the private EPMD (on all interfaces) and the containers use the same
    ``ERL_EPMD_PORT``, so lookups work both ways; Python nodes are named after the
    network's gateway address. The cookie is copied into each container as a file.
    """

    def __init__(self, root: Path, otp: str) -> None:
        try:
            from erlbridge.testing.docker_cluster import (  # noqa: PLC0415
                DockerNetwork,
                docker_client,
                node_image,
            )

            client = docker_client()
            self.image = node_image(otp)
            client.images.get(self.image)
        except Exception as exc:
            pytest.skip(f"no Docker engine or image for OTP {otp}: {exc}")
        super().__init__(root)
        self.otp = otp
        self.client = client
        self.network = DockerNetwork(client).create()
        self.client_host = self.network.gateway or "127.0.0.1"
        self.containers: list[DockerErlNode] = []
        self._beam: bytes | None = None

    def start_node(
        self,
        alive: str,
        *,
        net_ticktime: int | None = None,
        hidden: bool = False,
        short: bool = False,
    ) -> ErlNode:
        if short:
            raise ValueError("short names need the local backend (containers are reached by IP)")
        (ip,) = self.network.allocate(1)
        name = f"{alive}@{ip}"
        args = ["erl", "-noshell", "-noinput", "-name", name]
        if net_ticktime is not None:
            args += ["-kernel", "net_ticktime", str(net_ticktime)]
        if hidden:
            args.append("-hidden")
        api = self.client.api
        created = api.create_container(
            self.image,
            command=args,
            name=f"{self.network.name}-{alive}-{secrets.token_hex(2)}",
            environment={
                "ERLANG_COOKIE_FILE": "/run/eb-cookie",
                "ERL_EPMD_PORT": str(self.epmd_port),
            },
            labels={"org.erlbridge.session": self.network.name},
            networking_config=api.create_networking_config(
                {self.network.name: api.create_endpoint_config(ipv4_address=ip)}
            ),
            host_config=api.create_host_config(),
        )
        container = self.client.containers.get(created["Id"])
        container.put_archive("/run", _tar({"eb-cookie": self.cookie.encode()}, mode=0o400))
        container.put_archive(
            "/tmp", _tar({"eb_test.erl": (HERE / "erl" / "eb_test.erl").read_bytes()})
        )
        container.start()
        node = DockerErlNode(name, container)
        self.containers.append(node)
        deadline = time.monotonic() + scaled(60)
        while time.monotonic() < deadline:
            code, _ = container.exec_run(["epmd", "-port", str(self.epmd_port), "-names"])
            out = container.exec_run(["epmd", "-port", str(self.epmd_port), "-names"]).output
            if code == 0 and f"name {alive} at port".encode() in out:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{name} did not start: {container.logs()[-2000:]!r}")
        return node

    def beam_for(self, node: ErlNode) -> bytes:
        if self._beam is None:
            assert isinstance(node, DockerErlNode)
            code, out = node.container.exec_run(["erlc", "-o", "/tmp", "/tmp/eb_test.erl"])
            assert code == 0, out
            stream, _ = node.container.get_archive("/tmp/eb_test.beam")
            with tarfile.open(fileobj=io.BytesIO(b"".join(stream))) as tar:
                member = tar.extractfile("eb_test.beam")
                assert member is not None
                self._beam = member.read()
        return self._beam

    def close(self) -> None:
        for node in self.containers:
            node.stop()
        self.network.remove()
        super().close()


def _tar(files: dict[str, bytes], mode: int = 0o644) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


BACKENDS = [
    "local",
    pytest.param("otp27", marks=pytest.mark.docker),
    pytest.param("otp29", marks=pytest.mark.docker),
]


@pytest.fixture(scope="session", params=BACKENDS)
def erl_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalErlBackend]:
    """The target nodes: the local ``erl`` (OTP 25 here) or OTP 27/29 containers."""
    root = tmp_path_factory.mktemp(f"erl-{request.param}")
    backend = (
        LocalErlBackend(root)
        if request.param == "local"
        else DockerErlBackend(root, request.param.removeprefix("otp"))
    )
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture(scope="session")
def erl_node(erl_backend: LocalErlBackend) -> ErlNode:
    """A long-lived target node shared by the tests that do not hurt it."""
    return erl_backend.start_node("n1")


async def load_helpers(node: Any, target: str, beam: bytes) -> None:
    """Load the eb_test module into ``target`` through rpc (works for any backend)."""
    result = await node.rpc(
        target, "code", "load_binary", [Atom("eb_test"), ErlString("eb_test.erl"), beam]
    )
    assert result == (Atom("module"), Atom("eb_test")), result
