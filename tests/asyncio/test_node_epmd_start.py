"""A node with no EPMD running: it starts ``epmd -daemon`` as ``erl -name`` does, or says why not.

Regression: CI machines run no EPMD until some erl starts one; the docker-backed tests
failed with EpmdError whenever none happened to run.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from erlbridge.asyncio import Node
from erlbridge.asyncio.epmd import names
from erlbridge.exceptions import EpmdError, EpmdUnreachable, Timeout

# integration: with CI=true a missing epmd fails the run instead of skipping it
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("epmd") is None, reason="epmd is not installed"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def idle_port() -> Iterator[int]:
    """A port with no EPMD on it; whatever EPMD a test starts there is killed afterwards."""
    port = _free_port()
    yield port
    subprocess.run(["epmd", "-port", str(port), "-kill"], capture_output=True, timeout=10,
                   check=False)


def test_node_starts_epmd_when_none_runs(idle_port: int) -> None:
    async def body() -> None:
        async with Node("autoepmd@127.0.0.1", cookie="c", epmd_port=idle_port) as node:
            assert node.creation >= 4
            assert (await names(epmd_port=idle_port))["autoepmd"] == node.port
        # the daemon outlives the node (like erl's), only the registration is gone
        assert "autoepmd" not in await names(epmd_port=idle_port)

    asyncio.run(body())


def test_concurrent_nodes_race_to_start_one_epmd(idle_port: int) -> None:
    async def body() -> None:
        nodes = [Node(f"race{i}@127.0.0.1", cookie="c", epmd_port=idle_port) for i in range(4)]
        await asyncio.gather(*(n.start() for n in nodes))
        try:
            assert set(await names(epmd_port=idle_port)) == {f"race{i}" for i in range(4)}
        finally:
            for n in nodes:
                await n.close()

    asyncio.run(body())


def test_start_epmd_false_raises_a_typed_error(idle_port: int) -> None:
    async def body() -> None:
        node = Node("noepmd@127.0.0.1", cookie="c", epmd_port=idle_port, start_epmd=False)
        with pytest.raises(EpmdUnreachable, match=f"127.0.0.1:{idle_port}"):
            await node.start()
        await node.close()
        # listen=False needs no EPMD at all
        async with Node("noepmd@127.0.0.1", cookie="c", epmd_port=idle_port, listen=False,
                        start_epmd=False) as quiet:
            assert quiet.port is None

    asyncio.run(body())


def test_no_epmd_executable_is_explained(idle_port: int, monkeypatch: pytest.MonkeyPatch,
                                         tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    async def body() -> None:
        node = Node("noexe@127.0.0.1", cookie="c", epmd_port=idle_port)
        with pytest.raises(EpmdUnreachable, match="no epmd executable") as info:
            await node.start()
        assert isinstance(info.value, EpmdError)
        await node.close()

    asyncio.run(body())


def test_silent_epmd_is_a_timeout_naming_epmd() -> None:
    """An EPMD that accepts but never answers: connect fails with EPMD's own Timeout (its
    5 s), not a generic 'connect timed out after connect_timeout'."""

    async def body() -> None:
        held: list[asyncio.StreamWriter] = []

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            held.append(w)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with Node("silentepmd@127.0.0.1", cookie="c", epmd_port=port, listen=False,
                            connect_timeout=30) as node:
                with pytest.raises(Timeout, match="EPMD port_please") as info:
                    await node.connect("target@127.0.0.1")
                assert info.value.timeout == 5.0
        finally:
            for w in held:
                w.close()
            server.close()

    asyncio.run(body())
