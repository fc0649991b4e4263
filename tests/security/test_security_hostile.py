"""Hostile peers against a real listening Python node: malformed handshakes, silent and
truncated peers, oversized frames, garbage terms, unknown control messages, forged senders,
floods. The node must stay up and responsive, close the offending connection (never hang)
and log a ProtocolError; mailboxes stay within ``max_mailbox``.

The fake peers are plain asyncio sockets; authenticated ones run the real handshake through
the sans-I/O :class:`Handshake` with the node's cookie (a compromised or buggy cluster node).
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any

import pytest

from erlbridge.asyncio.node import Node
from erlbridge.exceptions import HandshakeError, Timeout
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import (
    MAX_HANDSHAKE_PACKET,
    Connected,
    Handshake,
    Role,
)
from erlbridge.term import Atom, Pid, Reference, encode
from erlbridge.testing import free_port

sys.path.insert(0, str(Path(__file__).parent))

from eb_rawpeer import read_until_closed

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
COOKIE = "hostile-" + secrets.token_hex(8)
pytestmark = pytest.mark.timeout(300)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60.0) -> Any:
    async def guarded() -> Any:
        async with asyncio.timeout(timeout * FACTOR):
            return await coro

    return asyncio.run(guarded())


@pytest.fixture(scope="module")
def epmd_port() -> Iterator[int]:
    if shutil.which("epmd") is None:
        pytest.skip("epmd is not installed")
    port = free_port()
    proc = subprocess.Popen(["epmd", "-port", str(port)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def make_node(epmd_port: int, **kw: Any) -> Node:
    return Node(f"target{secrets.token_hex(3)}@127.0.0.1", cookie=COOKIE, epmd_port=epmd_port,
                **kw)


def name_of(node: Node) -> str:
    return str.__str__(node.name)


async def authenticated(node: Node, peer: str = "evil@127.0.0.1"
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A fake peer that completes the real handshake (it knows the cookie)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    hs = Handshake(Role.INITIATOR, this_node=peer, cookie=COOKIE,
                   flags=default_flags(hidden=True), creation=1234,
                   challenge=secrets.randbits(32), peer_node=name_of(node))
    writer.write(hs.data_to_send())
    while True:
        chunk = await reader.read(4096)
        assert chunk, "node closed during the handshake"
        events = hs.receive_data(chunk)
        writer.write(hs.data_to_send())
        if any(isinstance(e, Connected) for e in events):
            return reader, writer


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def dist(control: Any, payload: Any = None) -> bytes:
    body = b"p" + encode(control) + (b"" if payload is None else encode(payload))
    return frame(body)


async def still_serves(node: Node) -> None:
    """A well-behaved peer can still connect and talk: the node is alive."""
    proc = node.process("probe")
    try:
        _reader, writer = await authenticated(node, "good@127.0.0.1")
        writer.write(dist((6, Pid(Atom("good@127.0.0.1"), 1, 0, 1234), Atom(""), Atom("probe")),
                          Atom("hello")))
        assert await proc.receive(timeout=5 * FACTOR) == Atom("hello")
        writer.close()
    finally:
        proc.close()


def protocol_errors(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno >= logging.WARNING and "closing connection" in r.getMessage()]


# -- before authentication --------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x00\x05hello", id="unknown-tag"),
        pytest.param(b"\x00\x00", id="empty-packet"),
        pytest.param(b"\x00\x03N\x00\x01", id="truncated-name"),
        pytest.param(b"\x00\x10N" + b"\xff" * 15, id="name-without-host"),
        pytest.param(b"\x00\x07nabcdef", id="old-n-handshake"),
        pytest.param(b"\x16\x03\x01\x02\x00\x01" + os.urandom(200), id="tls-client-hello"),
    ],
)
def test_security_malformed_handshake(
    epmd_port: int, caplog: pytest.LogCaptureFixture, payload: bytes
) -> None:
    async def body() -> None:
        async with make_node(epmd_port) as node:
            with caplog.at_level(logging.DEBUG):
                reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
                writer.write(payload)
                await read_until_closed(reader)  # closed at once, or at the setup deadline
                writer.close()
            assert node.connected_nodes() == []
            await still_serves(node)

    run(body())


def test_security_silent_and_trickling_peers_are_dropped(
    epmd_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Peers that never finish the handshake are cut at setup_timeout (no fd leak)."""

    async def body() -> None:
        async with make_node(epmd_port, setup_timeout=1.0 * FACTOR) as node:
            with caplog.at_level(logging.WARNING):
                start = time.monotonic()
                conns = [await asyncio.open_connection("127.0.0.1", node.port)
                         for _ in range(20)]
                conns[1][1].write(b"\x00\x40N\x00")  # half a name, then silence
                await asyncio.gather(*(read_until_closed(r) for r, _ in conns))
                elapsed = time.monotonic() - start
                for _, w in conns:
                    w.close()
            assert elapsed < 5 * FACTOR, elapsed
            assert any("handshake not completed" in m for m in protocol_errors(caplog))
            await still_serves(node)

    run(body())


def test_security_handshake_packet_cap_sans_io() -> None:
    """Over TLS lengths are 4 bytes: a huge declared handshake message is refused at once
    instead of being buffered."""
    hs = Handshake(Role.ACCEPTOR, this_node="a@h", cookie="c", flags=int(default_flags()),
                   creation=5, challenge=1, packet_bytes=4)
    with pytest.raises(HandshakeError, match="too large"):
        hs.receive_data((MAX_HANDSHAKE_PACKET + 1).to_bytes(4, "big") + b"N")


def test_security_wrong_cookie_peer(epmd_port: int, caplog: pytest.LogCaptureFixture) -> None:
    async def body() -> None:
        async with make_node(epmd_port) as node:
            reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
            hs = Handshake(Role.INITIATOR, this_node="evil@127.0.0.1", cookie="not-the-cookie",
                           flags=default_flags(hidden=True), creation=99, challenge=7,
                           peer_node=name_of(node))
            writer.write(hs.data_to_send())
            with pytest.raises(HandshakeError):
                while True:
                    chunk = await reader.read(4096)
                    if not chunk:
                        hs.connection_lost()
                    hs.receive_data(chunk)
                    writer.write(hs.data_to_send())
            assert node.connected_nodes() == []
            await still_serves(node)

    run(body())


# -- after authentication -----------------------------------------------------------------

EVIL = Pid(Atom("evil@127.0.0.1"), 7, 0, 1234)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(frame(b"p\x83\xff\x00"), id="garbage-term"),
        pytest.param(frame(b"p\x83h\x03a\x02"), id="truncated-control"),
        pytest.param(frame(b"p" + encode((99, EVIL))), id="unknown-op"),
        pytest.param(frame(b"p" + encode("not a tuple")), id="control-not-a-tuple"),
        pytest.param(frame(b"p" + encode((2, Atom(""), [1, 2]))), id="send-missing-payload"),
        pytest.param(dist((22, EVIL, {1: 2}), Atom("x")), id="send-to-unhashable"),
        pytest.param(dist((1, Pid(Atom("third@127.0.0.1"), 1, 0, 1), EVIL)),
                     id="link-forged-third-node"),
        pytest.param(dist((19, Pid(Atom("third@127.0.0.1"), 1, 0, 1), Atom("x"), Atom("r"))),
                     id="monitor-forged-third-node"),
        pytest.param(dist((8, Pid(Atom("third@127.0.0.1"), 1, 0, 1), EVIL, Atom("kill"))),
                     id="exit2-forged-sender"),
        pytest.param(dist((21, Pid(Atom("third@127.0.0.1"), 1, 0, 1), EVIL,
                          Reference(Atom("evil@127.0.0.1"), 1, (1, 2, 3)), Atom("normal"))),
                     id="monitor-exit-forged-third-node"),
        pytest.param(frame(b"X" + encode((6, EVIL, Atom(""), Atom("x")))), id="not-pass-through"),
        pytest.param(frame(b"p" + encode((6, EVIL, Atom(""), Atom("x"))) + encode(1) + b"\x00"),
                     id="trailing-bytes"),
        pytest.param(frame(b"p" + b"\x83P\x04\x00\x00\x00x\x9c" + b"\x00" * 20),
                     id="bad-compressed"),
        pytest.param(frame(b"p" + b"\x83" + b"l\x00\x00\x00\x01" * 5000 + b"j"),
                     id="nested-too-deep"),
        pytest.param((300 * 1024 * 1024).to_bytes(4, "big") + b"p", id="oversized-frame"),
        pytest.param(  # a term that hits a decoder bug found by the fuzzer (see tests/fuzz)
            frame(b"p" + encode((6, EVIL, Atom(""), Atom("x")))
                  + bytes.fromhex("83740000000174000000026a61016a61026101")),
            id="decoder-bug-term"),
    ],
)
def test_security_hostile_frames(
    epmd_port: int, caplog: pytest.LogCaptureFixture, data: bytes
) -> None:
    async def body() -> None:
        async with make_node(epmd_port) as node:
            dialled: list[str] = []
            original = node._peer_for

            def spy(target: str) -> Any:
                dialled.append(target)
                return original(target)

            node._peer_for = spy  # type: ignore[method-assign]
            with caplog.at_level(logging.WARNING):
                reader, writer = await authenticated(node)
                writer.write(data)
                await read_until_closed(reader)
                writer.close()
                await asyncio.sleep(0.05)
            errors = protocol_errors(caplog)
            assert errors, [r.getMessage() for r in caplog.records]
            assert Atom("evil@127.0.0.1") not in node.connected_nodes()
            assert not any("third" in d for d in dialled), dialled
            await still_serves(node)

    run(body())


def test_security_spawn_request_refused(epmd_port: int) -> None:
    """A remote spawn_request is answered notsup and runs nothing."""

    async def body() -> None:
        async with make_node(epmd_port) as node:
            reader, writer = await authenticated(node)
            req = Reference(Atom("evil@127.0.0.1"), 1234, (1, 2, 3))
            writer.write(dist((29, req, EVIL, EVIL, (Atom("os"), Atom("cmd"), 1), []),
                              [b"touch /tmp/erlbridge-pwned"]))
            data = b""
            async with asyncio.timeout(5 * FACTOR):
                while b"notsup" not in data:
                    data += await reader.read(4096)
            assert not os.path.exists("/tmp/erlbridge-pwned")
            writer.close()

    run(body())


def test_security_mailbox_flood_is_bounded(
    epmd_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """50 000 messages to a process whose mailbox holds 1 000: the oldest 1 000 stay, the
    rest is dropped and counted, the flood is logged, and the node keeps serving."""

    async def body() -> None:
        async with make_node(epmd_port, max_mailbox=1000) as node:
            proc = node.process("sink")
            _reader, writer = await authenticated(node)
            with caplog.at_level(logging.WARNING):
                batch = b"".join(
                    frame(b"p" + encode((6, EVIL, Atom(""), Atom("sink"))) + encode(i))
                    for i in range(50_000)
                )
                writer.write(batch)
                await writer.drain()
                async with asyncio.timeout(30 * FACTOR):
                    while proc.overflowed + proc.mailbox_size() < 50_000:
                        await asyncio.sleep(0.05)
            assert proc.mailbox_size() == 1000
            assert proc.overflowed == 49_000
            assert node.dropped >= 49_000
            assert [proc.receive_nowait() for _ in range(3)] == [0, 1, 2]
            assert any("mailbox of" in r.getMessage() for r in caplog.records)
            writer.close()
            await still_serves(node)

    run(body())


def test_security_mailbox_bytes_bound_large_messages(epmd_port: int) -> None:
    """Few but large messages: the byte bound (wire size) holds where the count bound
    would not; taking messages out frees room for new ones."""

    async def body() -> None:
        async with make_node(epmd_port, max_mailbox_bytes=1_000_000) as node:
            proc = node.process("bigsink")
            _reader, writer = await authenticated(node)
            blob = b"x" * 100_000
            frames = [
                frame(b"p" + encode((6, EVIL, Atom(""), Atom("bigsink"))) + encode((i, blob)))
                for i in range(40)
            ]
            size = len(frames[0]) - 4
            writer.write(b"".join(frames))
            await writer.drain()
            async with asyncio.timeout(30 * FACTOR):
                while proc.overflowed + proc.mailbox_size() < 40:
                    await asyncio.sleep(0.05)
            kept = 1_000_000 // size
            assert proc.mailbox_size() == kept and proc.overflowed == 40 - kept
            assert proc.mailbox_bytes() == kept * size <= 1_000_000
            assert [proc.receive_nowait()[0] for _ in range(2)] == [0, 1]
            assert proc.mailbox_bytes() == (kept - 2) * size
            # selective receive frees the right entry's bytes
            assert proc.receive_nowait(lambda m: m[0] == kept - 1)[0] == kept - 1
            assert proc.mailbox_bytes() == (kept - 3) * size
            writer.write(b"".join(frames[:3]))
            await writer.drain()
            async with asyncio.timeout(30 * FACTOR):
                while proc.mailbox_size() < kept:
                    await asyncio.sleep(0.05)
            assert proc.mailbox_bytes() == kept * size and proc.overflowed == 40 - kept
            # local sends carry no wire size: not held back by the byte bound
            node.send("bigsink", "local")
            assert proc.mailbox_size() == kept + 1
            writer.close()
            await still_serves(node)

    run(body())


def test_security_pending_handshakes_are_capped(
    epmd_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Connections that never finish the handshake: beyond max_pending_handshakes they are
    closed at once (logged); when the pending ones go away, peers are served again."""

    async def body() -> None:
        async with make_node(epmd_port, max_pending_handshakes=5, setup_timeout=30) as node:
            assert node.port is not None
            with caplog.at_level(logging.WARNING):
                conns = [await asyncio.open_connection("127.0.0.1", node.port)
                         for _ in range(12)]
                await asyncio.sleep(0.3)
                closed = []
                for reader, _writer in conns:
                    try:
                        async with asyncio.timeout(0.5):
                            closed.append(await reader.read(1) == b"")
                    except TimeoutError:
                        closed.append(False)  # still held open, waiting for our name
                    except ConnectionError:
                        closed.append(True)  # reset
                assert closed == [False] * 5 + [True] * 7
                assert any("refusing more" in r.getMessage() for r in caplog.records)
            for _reader, writer in conns:
                writer.close()
            async with asyncio.timeout(10 * FACTOR):
                while node._handshaking:
                    await asyncio.sleep(0.05)
            await still_serves(node)

    run(body())


def test_security_hostile_server_when_dialling(epmd_port: int) -> None:
    """Dialling a fake node that answers garbage, or nothing: typed errors, no hang."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"\x00\x09sgarbage!" + os.urandom(64))
        await writer.drain()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async def body() -> None:
        s1 = await asyncio.start_server(garbage, "127.0.0.1", 0)
        s2 = await asyncio.start_server(silent, "127.0.0.1", 0)
        p1 = s1.sockets[0].getsockname()[1]
        p2 = s2.sockets[0].getsockname()[1]
        async with make_node(epmd_port, listen=False, connect_timeout=2 * FACTOR) as node:
            with pytest.raises(HandshakeError):
                await node.connect(f"fake@127.0.0.1:{p1}")
            with pytest.raises((Timeout, HandshakeError)):
                await node.connect(f"mute@127.0.0.1:{p2}")
        s1.close()
        s2.close()

    run(body())


def test_security_io_request_flood_is_bounded(
    epmd_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    """3 000 put_chars io requests whose formatting would need the (silent) sender's rex:
    at most MAX_PENDING_FORMATS wait, every other one is answered {error, put_chars} at
    once; a put_chars with another M:F is refused without any rpc."""
    from erlbridge.asyncio.io_server import MAX_PENDING_FORMATS  # noqa: PLC0415

    async def body() -> None:
        async with make_node(epmd_port) as node:
            assert node._io is not None
            io_pid = node._io.pid
            reader, writer = await authenticated(node)
            fmt = (Atom("put_chars"), Atom("unicode"), Atom("io_lib"), Atom("format"),
                   [b"~p", [1]])
            evil_mf = (Atom("put_chars"), Atom("unicode"), Atom("os"), Atom("cmd"),
                       [b"touch /tmp/erlbridge-pwned"])
            with caplog.at_level(logging.WARNING):
                writer.write(dist((22, EVIL, io_pid), (Atom("io_request"), EVIL, 0, evil_mf)))
                writer.write(b"".join(
                    dist((22, EVIL, io_pid), (Atom("io_request"), EVIL, i, fmt))
                    for i in range(1, 3001)))
                await writer.drain()
                received = b""
                async with asyncio.timeout(20 * FACTOR):
                    while received.count(b"io_reply") < 3001 - MAX_PENDING_FORMATS:
                        received += await reader.read(65536)
            assert len(node._io.tasks) <= MAX_PENDING_FORMATS
            assert node._io.refused >= 3000 - MAX_PENDING_FORMATS
            assert any("is not io_lib:format" in r.getMessage() for r in caplog.records)
            assert not os.path.exists("/tmp/erlbridge-pwned")
            writer.close()
            await still_serves(node)

    run(body())
