"""The blocking rpc on a lent socket (erlbridge/asyncio/direct.py) against scripted peers:
every reply, forgery, flood, tick, garbage frame and close reaches the caller as the
asyncio path would report it; nothing hangs, and the loop reads the socket again after.

The peer is a plain blocking socket in a thread that completes the real handshake
(sans-I/O :class:`Handshake`) and answers the rex request as its scenario says.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from erlbridge import sync
from erlbridge.asyncio import direct
from erlbridge.asyncio.connection import DistProtocol
from erlbridge.exceptions import InvalidState, NodeDown, Timeout
from erlbridge.protocol import control as c
from erlbridge.protocol.connection import DistConnection
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import Connected, Handshake, Role
from erlbridge.term import Atom, Pid, Reference, encode
from erlbridge.testing import free_port

FACTOR = float(os.environ.get("ERLBRIDGE_TIMEOUT_FACTOR", "1"))
COOKIE = "direct-" + secrets.token_hex(8)
PEER = "scripted@127.0.0.1"
PEER_PID = Pid(Atom(PEER), 77, 0, 4321)
REX = Atom("rex")

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def epmd_port() -> Iterator[int]:
    if shutil.which("epmd") is None:
        pytest.skip("epmd is not installed")
    port = free_port()
    proc = subprocess.Popen(
        ["epmd", "-port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    time.sleep(0.3)
    try:
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


def frame(control: Any, payload: Any) -> bytes:
    body = b"p" + encode(control) + encode(payload)
    return len(body).to_bytes(4, "big") + body


def send_to(to: Pid, message: Any) -> bytes:
    return frame((22, PEER_PID, to), message)  # SEND_SENDER


class Peer:
    """A scripted cluster node connected to ``node``; ``script(peer, request)`` answers
    each rex request (``request``: the REG_SEND, its message ``{'$gen_call', {Pid, Ref},
    Call}``)."""

    def __init__(self, node: sync.Node, script: Callable[[Peer, c.RegSend], None]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", node.port or 0), timeout=10)
        hs = Handshake(
            Role.INITIATOR,
            this_node=PEER,
            cookie=COOKIE,
            flags=default_flags(hidden=True),
            creation=4321,
            challenge=secrets.randbits(32),
            peer_node=str.__str__(node.name),
        )
        self.sock.sendall(hs.data_to_send())
        flags = 0
        while not flags:
            chunk = self.sock.recv(4096)
            assert chunk, "closed during the handshake"
            for event in hs.receive_data(chunk):
                if isinstance(event, Connected):
                    flags = event.flags
            self.sock.sendall(hs.data_to_send())
        self.conn = DistConnection(flags=flags)
        self.script = script
        self.ticks_answered = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            before = self.conn.ticks_received
            for message in self.conn.receive_data(data):
                if isinstance(message, c.RegSend) and message.to_name == REX:
                    self.script(self, message)
            self.ticks_answered += self.conn.ticks_received - before
            self.conn.data_to_send()  # our own tick answers are not the point here

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def caller_and_ref(request: c.RegSend) -> tuple[Pid, Reference]:
    _tag, (pid, ref), _call = request.message
    return pid, ref


@pytest.fixture
def node(epmd_port: int) -> Iterator[sync.Node]:
    with sync.Node(
        f"directpy{secrets.token_hex(3)}@127.0.0.1",
        cookie=COOKIE,
        epmd_port=epmd_port,
        max_mailbox=1000,
    ) as n:
        yield n


@pytest.fixture
def spied(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How often a caller's thread read the lent socket, and gave it back early."""
    counts = {"reads": 0, "given_back": 0}
    receive = DistProtocol.receive_lent
    give_back = direct.DirectLine._give_back

    def spy_receive(self: DistProtocol, data: bytes) -> Any:
        counts["reads"] += 1
        return receive(self, data)

    def spy_give_back(self: direct.DirectLine, **kwargs: Any) -> None:
        counts["given_back"] += 1
        give_back(self, **kwargs)

    monkeypatch.setattr(DistProtocol, "receive_lent", spy_receive)
    monkeypatch.setattr(direct.DirectLine, "_give_back", spy_give_back)
    return counts


def connected(node: sync.Node, script: Callable[[Peer, c.RegSend], None]) -> Peer:
    peer = Peer(node, script)
    deadline = time.monotonic() + 10 * FACTOR
    while Atom(PEER) not in node.connected_nodes():
        assert time.monotonic() < deadline, "the scripted peer never came up"
        time.sleep(0.01)
    return peer


def test_replies_go_to_their_own_calls_and_forgeries_are_ignored(
    node: sync.Node, spied: dict[str, int]
) -> None:
    """Before the real reply: a reply to a reference nobody waits for, our reference sent
    to another pid, and an unhashable tag; only the real one completes the call."""

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        other = Reference(ref.node, ref.creation, (9, 9, 9))
        stranger = Pid(pid.node, pid.id + 1000, 0, pid.creation)
        peer.send(
            send_to(pid, (other, Atom("forged")))
            + send_to(stranger, (ref, Atom("misdirected")))
            + send_to(pid, ([1, 2], Atom("unhashable")))
            + send_to(pid, (ref, request.message[2][3]))  # {call, M, F, Args, Gl}: Args
        )

    peer = connected(node, script)
    try:
        assert node.rpc(PEER, "m", "f", [1, 2, 3]) == [1, 2, 3]
        assert node.rpc(PEER, "m", "f", [Atom("again")]) == [Atom("again")]
        node.connected_nodes()  # a call through the loop: it has handled what was read
        assert node.dropped >= 3  # each forgery counted as dropped, none delivered
        assert spied["reads"] >= 2  # read on this thread, not by the loop
    finally:
        peer.close()


def test_other_messages_reach_their_mailboxes_before_the_call_returns(
    node: sync.Node,
) -> None:
    """A flood to a bounded mailbox read on the caller's thread: the reply still comes, the
    mailbox keeps its bound, and what came before the reply is in it when rpc returns."""
    sink = node.process("sink")
    flood = 3000

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        peer.send(
            b"".join(frame((6, PEER_PID, Atom(""), Atom("sink")), i) for i in range(flood))
            + send_to(pid, (ref, Atom("done")))
        )

    peer = connected(node, script)
    try:
        assert node.rpc(PEER, "m", "f", []) == Atom("done")
        assert sink.mailbox_size() == 1000  # max_mailbox, filled before the reply
        assert [sink.receive(timeout=1) for _ in range(3)] == [0, 1, 2]
    finally:
        peer.close()


def test_a_flood_larger_than_the_hand_off_bound_returns_the_socket_to_the_loop(
    node: sync.Node, spied: dict[str, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """More bytes for the loop than MAX_HANDED (made small here): the reader gives the
    socket back and the loop reads the rest at its own pace; the call completes."""
    monkeypatch.setattr(direct, "MAX_HANDED", 64 * 1024)
    sink = node.process("bigsink")
    blob = b"x" * 200_000
    count = 30

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        for _ in range(count):
            peer.send(frame((6, PEER_PID, Atom(""), Atom("bigsink")), blob))
        peer.send(send_to(pid, (ref, Atom("done"))))

    peer = connected(node, script)
    try:
        assert node.rpc(PEER, "m", "f", [], timeout=60 * FACTOR) == Atom("done")
        assert 0 < sink.mailbox_size() <= 1000
        assert spied["given_back"] >= 1
        assert node.rpc(PEER, "m", "f", [], timeout=10 * FACTOR) == Atom("done")
    finally:
        peer.close()


@pytest.mark.parametrize("ending", ["garbage", "close", "oversized"])
def test_a_broken_connection_fails_the_call_with_nodedown(
    node: sync.Node, ending: str, spied: dict[str, int]
) -> None:
    def script(peer: Peer, request: c.RegSend) -> None:
        if ending == "garbage":
            peer.send(b"\x00\x00\x00\x05p\x83\xff\xff\xff")
        elif ending == "close":
            peer.close()
        else:  # a frame longer than anything sane, announced and never sent
            peer.send(b"\x7f\xff\xff\xffp")
            peer.close()

    peer = connected(node, script)
    start = time.monotonic()
    try:
        with pytest.raises(NodeDown):
            node.rpc(PEER, "m", "f", [], timeout=30 * FACTOR)
        assert time.monotonic() - start < 10 * FACTOR
        assert spied["reads"] >= 1 or ending == "close"
        deadline = time.monotonic() + 5 * FACTOR
        while Atom(PEER) in node.connected_nodes():
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        peer.close()


def test_a_silent_peer_times_out_and_ticks_are_answered_meanwhile(node: sync.Node) -> None:
    """The peer ticks while the call waits: the reading caller answers each tick (the
    peer would otherwise drop us), then the call times out and the next one works."""
    answered: list[bool] = []

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        if request.message[2][3] == [Atom("silent")]:
            before = peer.ticks_answered
            peer.send(b"\x00\x00\x00\x00")  # a tick: expects one back
            threading.Timer(0.2, lambda: answered.append(peer.ticks_answered > before)).start()
            return
        peer.send(send_to(pid, (ref, Atom("ok"))))

    peer = connected(node, script)
    try:
        with pytest.raises(Timeout, match=r"rpc m:f/1 on .* timed out after 0.5 s"):
            node.rpc(PEER, "m", "f", [Atom("silent")], timeout=0.5)
        assert answered == [True]
        assert node.rpc(PEER, "m", "f", []) == Atom("ok")
    finally:
        peer.close()


def test_the_loop_reads_again_when_the_callers_are_idle(node: sync.Node) -> None:
    """After IDLE without a blocking call, messages reach mailboxes with no caller
    reading; a later call borrows the socket again."""
    inbox = node.process("inbox")
    peers: list[Peer] = []

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        peer.send(send_to(pid, (ref, Atom("ok"))))

    peers.append(connected(node, script))
    try:
        assert node.rpc(PEER, "m", "f", []) == Atom("ok")
        time.sleep(direct.IDLE * 5)
        peers[0].send(frame((6, PEER_PID, Atom(""), Atom("inbox")), Atom("hello")))
        assert inbox.receive(timeout=5 * FACTOR) == Atom("hello")
        assert node.rpc(PEER, "m", "f", []) == Atom("ok")
    finally:
        peers[0].close()


def test_many_threads_share_one_lent_socket(node: sync.Node) -> None:
    """16 threads, replies answered out of order in bursts: each gets its own."""
    lock = threading.Lock()
    held: list[bytes] = []

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        with lock:
            held.append(send_to(pid, (ref, request.message[2][3])))
            if len(held) >= 4:
                peer.send(b"".join(reversed(held)))
                held.clear()
            else:
                threading.Timer(0.05, flush, (peer,)).start()

    def flush(peer: Peer) -> None:
        with lock:
            if held:
                peer.send(b"".join(held))
                held.clear()

    peer = connected(node, script)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(40):
                assert node.rpc(PEER, "m", "f", [i, j], timeout=30 * FACTOR) == [i, j]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(90 * FACTOR)
        assert not any(t.is_alive() for t in threads)
        assert errors == []
    finally:
        peer.close()


def test_closing_the_node_closes_the_lent_socket(epmd_port: int) -> None:
    """No file descriptor outlives the node (the lent copy of the socket included)."""
    before = len(os.listdir("/proc/self/fd"))
    with sync.Node(
        f"directpy{secrets.token_hex(3)}@127.0.0.1", cookie=COOKIE, epmd_port=epmd_port
    ) as node:

        def script(peer: Peer, request: c.RegSend) -> None:
            pid, ref = caller_and_ref(request)
            peer.send(send_to(pid, (ref, Atom("ok"))))

        peer = connected(node, script)
        assert node.rpc(PEER, "m", "f", []) == Atom("ok")
    peer.thread.join(10 * FACTOR)
    assert not peer.thread.is_alive()  # our side closed the connection: the peer saw EOF
    peer.close()
    deadline = time.monotonic() + 5 * FACTOR
    while len(os.listdir("/proc/self/fd")) > before:
        assert time.monotonic() < deadline, os.listdir("/proc/self/fd")
        time.sleep(0.05)


def test_a_blocking_rpc_from_the_loop_thread_is_refused(node: sync.Node) -> None:
    """It would wait for the thread that has to serve it: InvalidState, at once."""

    def script(peer: Peer, request: c.RegSend) -> None:
        pid, ref = caller_and_ref(request)
        peer.send(send_to(pid, (ref, Atom("ok"))))

    peer = connected(node, script)
    try:
        assert node.rpc(PEER, "m", "f", []) == Atom("ok")

        async def inside() -> Any:
            return node.rpc(PEER, "m", "f", [])

        with pytest.raises(InvalidState, match="inside the erlbridge loop thread"):
            node._portal.call(inside())
        assert node.rpc(PEER, "m", "f", []) == Atom("ok")
    finally:
        peer.close()
