"""Real Erlang nodes for the node integration tests (helpers; fixtures in conftest.py).

The ``erl_backend`` session fixture gives a :class:`LocalErlBackend`: a private HOME with the
cookie in ``.erlang.cookie`` (never on argv), its own EPMD on a free port (``ERL_EPMD_PORT``),
and nodes started with long names ``NAME@127.0.0.1``. Tests only use its small interface
(``start_node``, ``epmd_port``, ``cookie``, node ``kill/pause/resume/stop``), so a container
backend with the same interface can be swapped in.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import signal
import socket
import subprocess
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
        self, alive: str, *, net_ticktime: int | None = None, hidden: bool = False
    ) -> ErlNode:
        args = [self.erl, "-noshell", "-noinput", "-name", f"{alive}@127.0.0.1"]
        if net_ticktime is not None:
            args += ["-kernel", "net_ticktime", str(net_ticktime)]
        if hidden:
            args.append("-hidden")
        log = self.root / f"{alive}.log"
        proc = subprocess.Popen(
            args, env=self.env, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=self.root
        )
        node = ErlNode(f"{alive}@127.0.0.1", proc, log)
        self.nodes.append(node)
        self._wait_names(lambda names: f"name {alive} at port" in names)
        return node

    def close(self) -> None:
        for node in self.nodes:
            node.stop()
        self.epmd.terminate()
        self.epmd.wait(10)


@pytest.fixture(scope="session")
def erl_backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalErlBackend]:
    backend = LocalErlBackend(tmp_path_factory.mktemp("erl"))
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
