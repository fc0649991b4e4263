"""Hostile clients over real sockets against a listening Python node that holds a live
connection to a real Erlang node, and a real Erlang node killed under a caller
(docs/security.md): a claimed name never disturbs a live connection before the claimant
is authenticated, a compressed message counts what it inflates to, log lines and
exception texts stay bounded, names follow OTP's rules, and an unreachable node is a
NodeDown whatever step failed.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio.node import Node, NodeEvent
from erlbridge.driver.remote_calls import Caller, StepFailed
from erlbridge.driver.run_report import Status
from erlbridge.exceptions import (
    TEXT_LIMIT,
    BadRpc,
    NodeDown,
    NodeNotFound,
    NodeUnreachable,
    ProtocolError,
)
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import Connected, Handshake, Role
from erlbridge.term import Atom, Pid, encode
from erlbridge.testing import CookieHome, free_port

pytestmark = [pytest.mark.integration, pytest.mark.timeout(300)]

sys.path.insert(0, str(Path(__file__).parent))

from eb_rawpeer import read_until_closed  # noqa: E402

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
FLAGS = int(default_flags(hidden=True))


def run(coro: Coroutine[Any, Any, Any], timeout: float = 90.0) -> Any:
    async def guarded() -> Any:
        async with asyncio.timeout(timeout * FACTOR):
            return await coro

    return asyncio.run(guarded())


class Cluster:
    """A private EPMD and cookie, and real ``erl`` nodes ``NAME@127.0.0.1``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.cookie = "peers" + secrets.token_hex(8)
        self.home = CookieHome(root / "home", self.cookie)
        self.epmd_port = free_port()
        self.env = self.home.env({"ERL_EPMD_PORT": str(self.epmd_port)})
        self.epmd = subprocess.Popen(["epmd", "-port", str(self.epmd_port)], env=self.env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, alive: str) -> str:
        log = (self.root / f"{alive}.log").open("wb")
        self.procs[alive] = subprocess.Popen(
            ["erl", "-noshell", "-noinput", "-name", f"{alive}@127.0.0.1"], env=self.env,
            stdout=log, stderr=subprocess.STDOUT, cwd=self.root)
        deadline = time.monotonic() + 30 * FACTOR
        while f"name {alive} at".encode() not in self.names():
            assert time.monotonic() < deadline, f"{alive} did not register with EPMD"
            time.sleep(0.1)
        return f"{alive}@127.0.0.1"

    def names(self) -> bytes:
        return subprocess.run(["epmd", "-port", str(self.epmd_port), "-names"],
                              capture_output=True, check=False, env=self.env).stdout

    def kill(self, alive: str) -> None:
        proc = self.procs.pop(alive)
        proc.kill()
        proc.wait(10)

    def node(self, **kw: Any) -> Node:
        return Node(f"py{secrets.token_hex(3)}@127.0.0.1", cookie=self.cookie,
                    epmd_port=self.epmd_port, **kw)

    def close(self) -> None:
        for proc in self.procs.values():
            proc.terminate()
            proc.wait(10)
        self.epmd.terminate()
        self.epmd.wait(10)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    if shutil.which("erl") is None or shutil.which("epmd") is None:
        pytest.skip("erl is not installed")
    c = Cluster(tmp_path_factory.mktemp("peers"))
    try:
        c.start("real")
        yield c
    finally:
        c.close()


REAL = "real@127.0.0.1"


def name_packet(name: bytes) -> bytes:
    body = b"N" + struct.pack(">QIH", FLAGS, 77, len(name)) + name
    return len(body).to_bytes(2, "big") + body


async def read_packet(reader: asyncio.StreamReader) -> bytes:
    """One 2-byte-length handshake packet, or b"" if the node closed first."""
    async with asyncio.timeout(10 * FACTOR):
        try:
            head = await reader.readexactly(2)
            return await reader.readexactly(int.from_bytes(head, "big"))
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return b""


async def authenticated(node: Node, peer: str, cookie: str
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, list[bytes]]:
    """A client that runs the real handshake as ``peer``; returns the statuses it saw."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    hs = Handshake(Role.INITIATOR, this_node=peer, cookie=cookie, flags=FLAGS, creation=4321,
                   challenge=secrets.randbits(32), peer_node=str.__str__(node.name))
    writer.write(hs.data_to_send())
    seen = []
    async with asyncio.timeout(10 * FACTOR):
        while True:
            chunk = await reader.read(4096)
            assert chunk, "the node closed during the handshake"
            seen.append(chunk)
            events = hs.receive_data(chunk)
            writer.write(hs.data_to_send())
            if any(isinstance(e, Connected) for e in events):
                return reader, writer, seen


async def connected_to_real(node: Node) -> asyncio.Queue[NodeEvent]:
    events: asyncio.Queue[NodeEvent] = asyncio.Queue()
    node.monitor_nodes(events)
    assert await node.rpc(REAL, "erlang", "node", []) == Atom(REAL)
    assert (await events.get()).kind == "nodeup"
    return events


async def still_connected(node: Node, events: asyncio.Queue[NodeEvent]) -> None:
    assert await node.rpc(REAL, "erlang", "node", [], timeout=10 * FACTOR) == Atom(REAL)
    assert Atom(REAL) in node.connected_nodes()
    assert events.empty(), events.get_nowait()


# -- 1. a claimed name does not disturb the live connection --------------------------------


def test_claimed_name_without_the_cookie_leaves_the_live_connection(cluster: Cluster) -> None:
    async def body() -> None:
        async with cluster.node() as node:
            events = await connected_to_real(node)
            # only the name: the node answers "alive" and waits
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            writer.write(name_packet(REAL.encode()))
            assert await read_packet(reader) == b"salive"
            await still_connected(node, events)
            writer.close()
            # "true" and a made-up challenge reply: refused, the old connection stays
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            writer.write(name_packet(REAL.encode()))
            assert await read_packet(reader) == b"salive"
            writer.write(b"\x00\x05strue")
            assert (await read_packet(reader))[:1] == b"N"  # the challenge
            writer.write(b"\x00\x15r" + os.urandom(20))
            await read_until_closed(reader, timeout=15.0)
            writer.close()
            # "false": the claimant gives up
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            writer.write(name_packet(REAL.encode()))
            assert await read_packet(reader) == b"salive"
            writer.write(b"\x00\x06sfalse")
            assert await read_until_closed(reader, timeout=15.0) == b""
            writer.close()
            # many claimants at once, some silent
            claims = [await asyncio.open_connection("127.0.0.1", node.port) for _ in range(10)]
            for _, w in claims:
                w.write(name_packet(REAL.encode()))
            for r, _ in claims:
                assert await read_packet(r) == b"salive"
            await still_connected(node, events)
            for _, w in claims:
                w.close()
            await asyncio.sleep(0.2)
            await still_connected(node, events)

    run(body())


def test_authenticated_claimant_replaces_the_old_connection(cluster: Cluster) -> None:
    """Who knows the cookie is the node (e.g. it restarted): after the challenge, and
    only then, the old connection is dropped (dist_util's alive rule)."""

    async def body() -> None:
        async with cluster.node() as node:
            events = await connected_to_real(node)
            _reader, writer, seen = await authenticated(node, REAL, cluster.cookie)
            assert seen[0].startswith(b"\x00\x06salive")
            down = await asyncio.wait_for(events.get(), 10 * FACTOR)
            assert (down.kind, down.node) == ("nodedown", Atom(REAL))
            up = await asyncio.wait_for(events.get(), 10 * FACTOR)
            assert (up.kind, up.node) == ("nodeup", Atom(REAL))
            writer.close()

    run(body())


def test_second_pending_claim_is_closed_and_the_first_is_left_alone(cluster: Cluster) -> None:
    async def body() -> None:
        async with cluster.node() as node:
            r1, w1 = await asyncio.open_connection("127.0.0.1", node.port)
            w1.write(name_packet(b"x@127.0.0.1"))
            assert await read_packet(r1) == b"sok"
            assert (await read_packet(r1))[:1] == b"N"
            r2, w2 = await asyncio.open_connection("127.0.0.1", node.port)
            w2.write(name_packet(b"x@127.0.0.1"))
            assert await read_until_closed(r2, timeout=15.0) == b""
            w2.close()
            w1.close()  # the first gives up: the name is free again
            await read_until_closed(r1, timeout=15.0)
            await asyncio.sleep(0.1)
            _r, w3, seen = await authenticated(node, "x@127.0.0.1", cluster.cookie)
            assert seen[0].startswith(b"\x00\x03sok")
            await asyncio.sleep(0.1)
            assert Atom("x@127.0.0.1") in node.connected_nodes()
            w3.close()
            r4, w4 = await asyncio.open_connection("127.0.0.1", node.port)
            w4.write(name_packet(str.__str__(node.name).encode()))  # our own name
            assert await read_until_closed(r4, timeout=15.0) == b""
            w4.close()

    run(body())


# -- 4. node names -----------------------------------------------------------------------


@pytest.mark.parametrize("name", [b"a" * 298 + b"@127.0.0.1", b"b" * 64_990 + b"@h",
                                  b"two@at@h", b"sp ace@h", b"nohost"])
def test_bad_names_are_closed_without_a_status(cluster: Cluster, name: bytes) -> None:
    async def body() -> None:
        async with cluster.node() as node:
            events = await connected_to_real(node)
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            writer.write(name_packet(name))
            assert await read_until_closed(reader, timeout=15.0) == b""  # as dist_util: no status
            writer.close()
            assert Atom(name.decode()) not in node.connected_nodes()
            await still_connected(node, events)

    run(body())


def test_longest_name_is_accepted_and_long_names_are_refused_when_dialling(
    cluster: Cluster,
) -> None:
    async def body() -> None:
        async with cluster.node() as node:
            longest = "x" * (255 - len("@127.0.0.1")) + "@127.0.0.1"
            _r, writer, _ = await authenticated(node, longest, cluster.cookie)
            await asyncio.sleep(0.1)
            assert Atom(longest) in node.connected_nodes()
            writer.close()
            with pytest.raises(ValueError, match="256 bytes"):
                await node.connect("y" + longest)
            with pytest.raises(ValueError, match="name@host"):
                await node.rpc("a@b@c", "erlang", "node", [])
        with pytest.raises(ValueError, match="character"):
            Node("bad name@127.0.0.1", cookie="c")

    run(body())


# -- 2. compressed messages count what they inflate to ------------------------------------


def test_compressed_messages_count_their_inflated_size(cluster: Cluster) -> None:
    big = 20 * 1024 * 1024

    async def body() -> None:
        async with cluster.node(max_mailbox_bytes=16 * 1024 * 1024) as node:
            proc = node.process("sink")
            _r, writer, _ = await authenticated(node, "evil@127.0.0.1", cluster.cookie)
            evil = Pid(Atom("evil@127.0.0.1"), 1, 0, 4321)
            control = encode((6, evil, Atom(""), Atom("sink")))
            frames = [control + encode((i, b"\0" * big), compressed=True) for i in range(4)]
            small = control + encode((9, b"\0" * 1_000_000), compressed=True)
            wire = b"".join(len(f := b"p" + body).to_bytes(4, "big") + f
                            for body in [*frames, small])
            assert len(wire) < 200_000  # ~100 KiB that would be 81 MiB inflated
            writer.write(wire)
            await writer.drain()
            async with asyncio.timeout(30 * FACTOR):
                while proc.overflowed + proc.mailbox_size() < 5:
                    await asyncio.sleep(0.05)
            assert proc.overflowed == 4 and proc.mailbox_size() == 1
            assert 1_000_000 <= proc.mailbox_bytes() <= 16 * 1024 * 1024
            assert proc.receive_nowait()[0] == 9
            writer.close()

    run(body())


def test_a_message_inflating_beyond_max_message_size_closes_the_connection(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    async def body() -> None:
        async with cluster.node(max_message_size=4 * 1024 * 1024) as node:
            events = await connected_to_real(node)
            node.process("sink")
            reader, writer, _ = await authenticated(node, "evil@127.0.0.1", cluster.cookie)
            evil = Pid(Atom("evil@127.0.0.1"), 1, 0, 4321)
            body = (b"p" + encode((6, evil, Atom(""), Atom("sink")))
                    + encode(b"\0" * (64 * 1024 * 1024), compressed=True))
            with caplog.at_level(logging.WARNING):
                writer.write(len(body).to_bytes(4, "big") + body)
                await read_until_closed(reader, timeout=15.0)
            assert any("inflates to more than max_message_size" in r.getMessage()
                       for r in caplog.records)
            writer.close()
            assert (await events.get()).node == Atom("evil@127.0.0.1")  # its nodeup
            assert (await events.get()).kind == "nodedown"
            await still_connected(node, events)

    run(body())


# -- 3. logs and exception texts are bounded ----------------------------------------------


def test_log_lines_and_errors_are_bounded(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    huge = list(range(1_000_000))  # ~5 MB on the wire, ~7 MB as text

    async def body() -> None:
        async with cluster.node() as node:
            reader, writer, _ = await authenticated(node, "evil@127.0.0.1", cluster.cookie)
            evil = Pid(Atom("evil@127.0.0.1"), 1, 0, 4321)
            with caplog.at_level(logging.DEBUG, logger="erlbridge"):
                # ignored by the node (GROUP_LEADER), with a huge field: logged at DEBUG
                body = b"p" + encode((7, evil, huge))
                writer.write(len(body).to_bytes(4, "big") + body)
                # an unknown op that is a huge integer, then the connection closes
                body = b"p" + encode((10 ** 20000, huge))
                writer.write(len(body).to_bytes(4, "big") + body)
                await read_until_closed(reader, timeout=15.0)
                writer.close()
                await asyncio.sleep(0.1)
                texts = [r.getMessage() for r in caplog.records]
            assert any("ignored control message" in t for t in texts)
            assert any("unknown control message op" in t for t in texts)
            assert max(map(len, texts)) < TEXT_LIMIT + 300, max(map(len, texts))
            # a huge error reason from the real node: the message is bounded, the data kept
            with pytest.raises(BadRpc) as info:
                await node.rpc(REAL, "lists", "seq", [1, Atom("x")])
            assert len(str(info.value)) < TEXT_LIMIT + 100
            err = BadRpc(huge, node=REAL)
            assert len(str(err)) < TEXT_LIMIT + 100 and err.reason is huge
            assert str(err).endswith("...")
            assert len(str(ProtocolError(f"x {huge}"))) > TEXT_LIMIT  # prose is the caller's

    run(body())


# -- 6. an unreachable node is a NodeDown -------------------------------------------------


def test_killed_node_is_nodedown_for_rpc_multicall_call_and_the_driver(
    cluster: Cluster,
) -> None:
    victim = cluster.start("victim")

    async def body() -> None:
        async with cluster.node() as node:
            events: asyncio.Queue[NodeEvent] = asyncio.Queue()
            node.monitor_nodes(events)
            assert await node.rpc(victim, "erlang", "node", []) == Atom(victim)
            cluster.kill("victim")
            while (await asyncio.wait_for(events.get(), 30 * FACTOR)).kind != "nodedown":
                pass
            deadline = time.monotonic() + 30 * FACTOR
            while b"name victim at" in cluster.names():  # EPMD forgets it on its own
                assert time.monotonic() < deadline
                await asyncio.sleep(0.1)
            with pytest.raises(NodeDown) as info:
                await node.rpc(victim, "erlang", "node", [])
            err = info.value
            assert isinstance(err, NodeUnreachable) and err.node == victim
            assert isinstance(err.detail, NodeNotFound) and err.__cause__ is err.detail
            assert isinstance(err, NodeNotFound)  # `except NodeNotFound` keeps working
            with pytest.raises(NodeDown):
                await node.call(("net_kernel", victim), Atom("x"), timeout=10 * FACTOR)
            outcomes = await node.multicall([victim, REAL], "erlang", "node", [])
            assert isinstance(outcomes[Atom(victim)].error, NodeDown)
            assert outcomes[Atom(REAL)].value == Atom(REAL)
            caller = Caller(node)
            loop = asyncio.get_running_loop()
            with pytest.raises(StepFailed) as failed:
                await caller.rpc(victim, "erlang", "node", [], deadline=loop.time() + 10)
            assert failed.value.status is Status.NODEDOWN
            # connection refused (no listener at that port): NodeDown, the OSError kept
            with pytest.raises(NodeDown) as info:
                await node.connect(f"gone@127.0.0.1:{free_port()}")
            assert isinstance(info.value.detail, ConnectionRefusedError)  # type: ignore[attr-defined]

    run(body())


def test_silent_peer_is_nodedown_with_the_timeout_kept(cluster: Cluster) -> None:
    async def body() -> None:
        held: list[asyncio.StreamWriter] = []

        async def silent(_r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            held.append(w)

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        try:
            async with cluster.node(setup_timeout=1.0, connect_timeout=5.0 * FACTOR) as node:
                with pytest.raises(NodeDown) as info:
                    await node.connect(f"mute@127.0.0.1:{port}")
                assert isinstance(info.value, NodeUnreachable)
                assert "handshake not completed" in str(info.value.detail)
        finally:
            for w in held:
                w.close()
            server.close()

    run(body())
