"""The cookie never leaks: not in the argv of any process (erl, epmd, our CLI), not in log
records (DEBUG, every logger), reprs, exception messages, CLI output or journals -- whether
things go right or wrong. A sampler thread reads every ``/proc/*/cmdline`` during the whole
test, so short-lived processes are seen too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio.node import Node
from erlbridge.exceptions import BadRpc, ErlbridgeError, RemoteException
from erlbridge.protocol.handshake import Handshake, Role
from erlbridge.term import Atom, ErlString, Pid
from erlbridge.testing import CookieHome, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]
FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
ERLBRIDGE = [sys.executable, "-m", "erlbridge.cli"]


class ArgvSampler(threading.Thread):
    """Reads the argv of every process on the machine every 20 ms."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.seen: dict[int, bytes] = {}
        self._stop_event = threading.Event()
        self.samples = 0

    def run(self) -> None:
        while not self._stop_event.is_set():
            for entry in Path("/proc").iterdir():
                if entry.name.isdigit():
                    with contextlib.suppress(OSError):
                        self.seen[int(entry.name)] = (entry / "cmdline").read_bytes()
            self.samples += 1
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(5)


class Env:
    def __init__(self, root: Path) -> None:
        self.root = root
        # distinctive, so a hit cannot be a coincidence
        self.cookie = "SECRETcookie" + secrets.token_hex(12)
        self.wrong = "WRONGcookie" + secrets.token_hex(12)
        self.home = CookieHome(root / "home", self.cookie)
        self.epmd_port = free_port()
        self.env = self.home.env({"ERL_EPMD_PORT": str(self.epmd_port)})
        self.procs: list[subprocess.Popen[bytes]] = []
        self.procs.append(subprocess.Popen(["epmd", "-port", str(self.epmd_port)], env=self.env,
                                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.target = "sec1@127.0.0.1"
        log = (root / "sec1.log").open("wb")
        self.procs.append(subprocess.Popen(
            ["erl", "-noshell", "-noinput", "-name", self.target], env=self.env, stdout=log,
            stderr=subprocess.STDOUT, cwd=root))
        deadline = time.monotonic() + 30 * FACTOR
        while b"sec1" not in subprocess.run(["epmd", "-port", str(self.epmd_port), "-names"],
                                            capture_output=True, check=False).stdout:
            assert time.monotonic() < deadline, "erl did not register"
            time.sleep(0.1)

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait(10)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    if shutil.which("erl") is None:
        pytest.skip("erl is not installed")
    e = Env(tmp_path_factory.mktemp("secrets"))
    try:
        yield e
    finally:
        e.close()


@pytest.fixture
def sampler() -> Iterator[ArgvSampler]:
    s = ArgvSampler()
    s.start()
    try:
        yield s
    finally:
        s.stop()


def assert_clean(env: Env, text: str | bytes, what: str) -> None:
    data = text.encode(errors="replace") if isinstance(text, str) else text
    for secret in (env.cookie, env.wrong):
        assert secret.encode() not in data, f"cookie found in {what}"


def test_security_cookie_not_in_library_output(
    env: Env, sampler: ArgvSampler, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    reprs: list[str] = []

    async def body() -> None:
        async with Node("secpy@127.0.0.1", cookie=env.cookie, epmd_port=env.epmd_port) as node:
            reprs.append(repr(node))
            assert await node.ping(env.target)
            assert await node.rpc(env.target, "erlang", "node", []) == env.target
            proc = node.process("secproc")
            reprs.extend([repr(proc), repr(node._peers), repr(node.__dict__.get("tls"))])
            # the Erlang node dials us with the right cookie, then a wrong-cookie node does
            assert await node.rpc(env.target, "net_kernel", "connect_node",
                                  [Atom("secpy@127.0.0.1")]) in (True, False)
            for bad in ("nosuch@127.0.0.1", "sec1@127.0.0.1:1"):
                try:
                    await node.connect(bad, timeout=3 * FACTOR)
                except (ErlbridgeError, OSError) as exc:
                    errors.append(exc)
            try:
                await node.rpc(env.target, "erlang", "error", [b"boom"])
            except ErlbridgeError as exc:
                errors.append(exc)
        async with Node("secwrong@127.0.0.1", cookie=env.wrong, epmd_port=env.epmd_port,
                        listen=False) as wrong:
            reprs.append(repr(wrong))
            try:
                await wrong.connect(env.target, timeout=5 * FACTOR)
            except ErlbridgeError as exc:
                errors.append(exc)
        hs = Handshake(Role.INITIATOR, this_node="a@h", cookie=env.cookie, flags=0x403070F94,
                       creation=5, challenge=1, peer_node="b@h")
        reprs.append(repr(hs))
        try:
            hs.connection_lost()
        except ErlbridgeError as exc:
            errors.append(exc)

    with caplog.at_level(logging.DEBUG):
        asyncio.run(body())
    assert len(errors) >= 4, errors
    for record in caplog.records:
        assert_clean(env, record.getMessage(), f"log record {record.name}")
        if record.exc_info and record.exc_info[1] is not None:
            assert_clean(env, repr(record.exc_info[1]), "logged exception")
    for exc in errors:
        chain: BaseException | None = exc
        while chain is not None:
            assert_clean(env, f"{chain!s} {chain!r} {chain.args!r}", f"exception {chain!r}")
            chain = chain.__cause__ or chain.__context__
    for text in reprs:
        assert_clean(env, text, "a repr")
    sampler.stop()
    assert sampler.samples >= 1
    for pid, argv in sampler.seen.items():
        assert_clean(env, argv, f"argv of pid {pid}")


def test_security_cookie_not_in_cli_output_argv_or_journal(env: Env, sampler: ArgvSampler
                                                            ) -> None:
    script = env.root / "noop.script"
    script.write_text("[point_of_no_return, {apply, {erlang, node, []}}].\n")
    journal = env.root / "run.journal"
    cookie_file = env.root / "cookie.txt"
    cookie_file.write_text(env.cookie)
    cookie_file.chmod(0o600)
    runs: list[tuple[list[str], dict[str, str]]] = [
        (["-vv", "ping", env.target], env.env),  # ~/.erlang.cookie
        (["-vv", "rpc", env.target, "erlang", "node"], env.env),
        (["-vv", "ping", "--cookie-file", str(cookie_file), env.target], env.env),
        (["-vv", "ping", env.target], {**env.env, "ERLANG_COOKIE": env.wrong}),  # pang
        (["-vv", "run", str(script), "-t", env.target, "--journal", str(journal)], env.env),
        (["-vv", "journal", "show", str(journal)], env.env),
        (["-vv", "readiness", "-t", env.target, "--json"], env.env),
    ]
    outputs = []
    for args, process_env in runs:
        proc = subprocess.run([*ERLBRIDGE, *args], env=process_env, capture_output=True,
                              timeout=120 * FACTOR, check=False)
        outputs.append((args, proc))
        assert_clean(env, proc.stdout + proc.stderr, f"output of erlbridge {args}")
    assert outputs[0][1].returncode == 0, outputs[0][1].stderr
    assert outputs[3][1].returncode != 0  # the wrong cookie is refused...
    assert journal.exists() and journal.stat().st_size > 0
    assert_clean(env, journal.read_bytes(), "the journal")
    sampler.stop()
    for pid, argv in sampler.seen.items():
        assert_clean(env, argv, f"argv of pid {pid}")


def test_security_remote_code_is_never_run(env: Env) -> None:
    """A remote node cannot make the Python node run code: erpc/rpc/spawn toward us (all
    spawn_request underneath, or rex) are refused with notsup, and nothing ran."""
    marker = env.root / "pwned"
    command = [ErlString(f"touch {marker}")]
    os_cmd = [Atom("os"), Atom("cmd"), command]

    async def body() -> list[Any]:
        results: list[Any] = []
        async with Node("secrpc@127.0.0.1", cookie=env.cookie, epmd_port=env.epmd_port) as node:
            for module, function, args in [
                ("erpc", "call", [node.name, *os_cmd, 3000]),
                ("rpc", "call", [node.name, *os_cmd, 3000]),
                ("erlang", "spawn", [node.name, *os_cmd]),
            ]:
                try:
                    results.append(await node.rpc(env.target, module, function, args))
                except ErlbridgeError as exc:
                    results.append(exc)
            await asyncio.sleep(0.3)
        return results

    erpc, rpc, spawn = asyncio.run(body())
    assert isinstance(erpc, RemoteException) and erpc.reason == (Atom("erpc"), Atom("notsup"))
    assert isinstance(rpc, BadRpc) and rpc.reason == Atom("notsup"), rpc
    assert isinstance(spawn, Pid)  # erlang:spawn/4 is asynchronous; the process never starts
    assert not marker.exists()


def test_security_user_strings_never_become_atoms(env: Env) -> None:
    """Strings in rpc arguments (also as map keys and tuple elements) arrive as binaries:
    2 000 unique strings leave the target's atom table (almost) unchanged."""
    unique = [f"user-data-{secrets.token_hex(8)}-{i}" for i in range(2000)]

    async def body() -> tuple[int, int, Any]:
        async with Node("secatoms@127.0.0.1", cookie=env.cookie, epmd_port=env.epmd_port,
                        listen=False) as node:
            count = [Atom("atom_count")]
            before = await node.rpc(env.target, "erlang", "system_info", count)
            kinds = (
                await node.rpc(env.target, "erlang", "is_binary", [unique[0]]),
                await node.rpc(env.target, "erlang", "is_atom", [unique[1]]),
            )
            await node.rpc(env.target, "erlang", "length", [unique[:1000]])
            await node.rpc(env.target, "maps", "size", [{s: (s,) for s in unique[1000:]}])
            after = await node.rpc(env.target, "erlang", "system_info", count)
            return before, after, kinds

    before, after, kinds = asyncio.run(body())
    assert kinds == (True, False)  # is_binary(S) -> true, is_atom(S) -> false
    assert after - before < 50, (before, after)
