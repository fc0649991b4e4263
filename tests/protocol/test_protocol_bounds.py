"""Sans-I/O bounds of the handshake and the connection (docs/security.md): node names as
OTP checks them, the ``alive`` answer, and what a compressed message costs."""

from __future__ import annotations

import struct

import pytest

from erlbridge.exceptions import FramingError, HandshakeError
from erlbridge.protocol.connection import DistConnection
from erlbridge.protocol.control import Send
from erlbridge.protocol.flags import default_flags
from erlbridge.protocol.handshake import (
    MAX_NODE_NAME_BYTES,
    Connected,
    Handshake,
    HandshakeState,
    NameReceived,
    Role,
    node_name_problem,
)
from erlbridge.term import Atom, Pid, encode

FLAGS = int(default_flags())


def name_packet(name: bytes) -> bytes:
    body = b"N" + struct.pack(">QIH", FLAGS, 7, len(name)) + name
    return len(body).to_bytes(2, "big") + body


def acceptor() -> Handshake:
    return Handshake(Role.ACCEPTOR, this_node="b@h", cookie="c", flags=FLAGS, creation=5,
                     challenge=1234)


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("a@h", True),
        ("a" * (MAX_NODE_NAME_BYTES - 2) + "@h", True),  # exactly 255 bytes
        ("a" * (MAX_NODE_NAME_BYTES - 1) + "@h", False),  # 256 bytes
        ("é" * 127 + "@h", False),  # 254 characters, 256 bytes: dist_util counts bytes
        ("ab@c@d", False),
        ("@h", False),
        ("a@", False),
        ("ah", False),
        ("a b@h", False),
        ("a@h\n", False),
        ("a@\u0101", False),  # beyond Latin-1
        ("node_1-x@host.example.org", True),
    ],
)
def test_node_names_follow_otp_rules(name: str, ok: bool) -> None:
    assert (node_name_problem(name) is None) is ok


@pytest.mark.parametrize(
    "raw", [b"a" * 298 + b"@h", b"a" * 64_998 + b"@h", b"nohost", b"a@b@c", b"a b@h"]
)
def test_acceptor_closes_on_a_bad_name_without_a_status(raw: bytes) -> None:
    hs = acceptor()
    with pytest.raises(HandshakeError, match="refused the name") as info:
        hs.receive_data(name_packet(raw))
    assert hs.state is HandshakeState.FAILED
    assert hs.data_to_send() == b""  # dist_util answers nothing: it closes
    assert len(str(info.value)) < 300  # the name is cut in the message


def test_alive_answer_then_true_continues_to_the_challenge() -> None:
    hs = acceptor()
    [event] = hs.receive_data(name_packet(b"a@h"))
    assert isinstance(event, NameReceived)
    hs.accept("alive")
    assert hs.data_to_send() == b"\x00\x06salive"
    assert hs.receive_data(b"\x00\x05strue") == []
    out = hs.data_to_send()
    assert out[2:3] == b"N" and hs.state is HandshakeState.AWAIT_REPLY


def test_alive_answer_then_false_fails() -> None:
    hs = acceptor()
    hs.receive_data(name_packet(b"a@h"))
    hs.accept("alive")
    hs.data_to_send()
    with pytest.raises(HandshakeError) as info:
        hs.receive_data(b"\x00\x06sfalse")
    assert info.value.status == "alive" and hs.data_to_send() == b""


def test_alive_then_full_handshake_with_the_cookie_connects() -> None:
    b = acceptor()
    a = Handshake(Role.INITIATOR, this_node="a@h", cookie="c", flags=FLAGS, creation=9,
                  challenge=99, peer_node="b@h")
    b.receive_data(a.data_to_send())
    b.accept("alive")
    events: list[object] = []
    for _ in range(4):
        if a.state is not HandshakeState.CONNECTED:
            events += a.receive_data(b.data_to_send())
        if b.state is not HandshakeState.CONNECTED:
            events += b.receive_data(a.data_to_send())
    assert [type(e) for e in events] == [Connected, Connected]


def frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


PID = Pid(Atom("a@h"), 1, 0, 1)


def test_a_message_costs_what_it_inflates_to() -> None:
    conn = DistConnection(flags=FLAGS, max_message_size=64 * 1024 * 1024)
    payload = encode(b"\0" * 5_000_000, compressed=True)
    wire = frame(b"p" + encode((2, Atom(""), PID)) + payload)
    [message] = conn.receive_data(wire)
    assert isinstance(message, Send) and message.message == b"\0" * 5_000_000
    [cost] = conn.message_sizes
    assert len(wire) < 20_000 and cost >= 5_000_000
    plain = frame(b"p" + encode((2, Atom(""), PID)) + encode(b"x"))
    conn.receive_data(plain)
    assert conn.message_sizes == [len(plain) - 4]


def test_a_message_may_not_inflate_beyond_max_message_size() -> None:
    conn = DistConnection(flags=FLAGS, max_message_size=1_000_000)
    wire = frame(b"p" + encode((2, Atom(""), PID)) + encode(b"\0" * 2_000_000, compressed=True))
    assert len(wire) < 10_000
    with pytest.raises(FramingError, match="inflates to more than max_message_size"):
        conn.receive_data(wire)
    # the control term counts too, and control + payload together
    conn = DistConnection(flags=FLAGS, max_message_size=1_000_000)
    control = encode((2, Atom(""), PID, b"\0" * 600_000), compressed=True)
    with pytest.raises(FramingError):
        conn.receive_data(frame(b"p" + control + encode(b"\0" * 600_000, compressed=True)))
