"""The handshake state machine: both roles wired together, every state x message, Hypothesis."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erlbridge.exceptions import AuthenticationError, HandshakeError, InvalidState
from erlbridge.protocol.flags import DEFAULT_FLAGS, MANDATORY_25, DistFlags
from erlbridge.protocol.handshake import (
    Connected,
    Handshake,
    HandshakeState,
    NameReceived,
    Role,
    gen_digest,
)

PEER_FLAGS = DEFAULT_FLAGS | DistFlags.PUBLISHED | DistFlags.FRAGMENTS


def initiator(cookie: str = "c", **kw: Any) -> Handshake:
    args: dict[str, Any] = {
        "this_node": "py@h",
        "cookie": cookie,
        "flags": DEFAULT_FLAGS,
        "creation": 10,
        "challenge": 111,
        "peer_node": "n1@h",
    }
    args.update(kw)
    return Handshake(Role.INITIATOR, **args)


def acceptor(cookie: str = "c", **kw: Any) -> Handshake:
    args: dict[str, Any] = {
        "this_node": "n1@h",
        "cookie": cookie,
        "flags": PEER_FLAGS,
        "creation": 20,
        "challenge": 222,
    }
    args.update(kw)
    return Handshake(Role.ACCEPTOR, **args)


def pump(a: Handshake, b: Handshake, *, chunk: int = 1 << 20, status: str = "ok") -> list[Any]:
    """Shuttle bytes between two machines until both are quiet; returns all events."""
    events: list[Any] = []
    for _ in range(20):
        moved = False
        for src, dst in ((a, b), (b, a)):
            data = src.data_to_send()
            if not data or dst.state in (HandshakeState.CONNECTED, HandshakeState.FAILED):
                continue
            moved = True
            for i in range(0, len(data), chunk):
                for ev in dst.receive_data(data[i : i + chunk]):
                    events.append(ev)
                    if isinstance(ev, NameReceived):
                        dst.accept(status)
                        events.extend(dst.receive_data(b""))
        if not moved:
            break
    return events


def test_digest_is_md5_of_cookie_and_decimal_challenge() -> None:
    assert gen_digest(4294967295, b"abc") == hashlib.md5(b"abc4294967295").digest()
    assert gen_digest(-1, b"abc") == gen_digest(4294967295, b"abc")


def test_send_name_layout() -> None:
    hs = initiator()
    out = hs.data_to_send()
    assert out == struct.pack(">HcQIH", 1 + 8 + 4 + 2 + 4, b"N", DEFAULT_FLAGS, 10, 4) + b"py@h"
    assert hs.state is HandshakeState.AWAIT_STATUS
    assert "c" not in repr(hs).split()[-1] and "cookie" not in repr(hs)


@pytest.mark.parametrize("chunk", [1, 3, 1 << 20])
@pytest.mark.parametrize("packet_bytes", [2, 4])
def test_both_roles_complete(chunk: int, packet_bytes: int) -> None:
    a, b = initiator(packet_bytes=packet_bytes), acceptor(packet_bytes=packet_bytes)
    events = pump(a, b, chunk=chunk)
    names = [e for e in events if isinstance(e, NameReceived)]
    done = [e for e in events if isinstance(e, Connected)]
    assert names == [NameReceived("py@h", DistFlags(DEFAULT_FLAGS), 10)]
    assert {e.node for e in done} == {"py@h", "n1@h"}
    for e in done:
        assert e.flags == DEFAULT_FLAGS & PEER_FLAGS
        assert not e.flags & DistFlags.FRAGMENTS
    assert a.state is b.state is HandshakeState.CONNECTED
    assert a.peer_creation == 20 and b.peer_creation == 10


def test_trailing_data_after_ack() -> None:
    a, b = initiator(), acceptor()
    pump(a, b)
    a2 = initiator()
    b2 = acceptor()
    b2.receive_data(a2.data_to_send())
    b2.accept()
    a2.receive_data(b2.data_to_send())
    reply = a2.data_to_send()
    b2.receive_data(reply)
    ack = b2.data_to_send()
    (event,) = a2.receive_data(ack + b"\x00\x00\x00\x00rest")
    assert isinstance(event, Connected)
    assert a2.trailing_data == b"\x00\x00\x00\x00rest"


def test_wrong_cookie_acceptor_side() -> None:
    a, b = initiator(cookie="right"), acceptor(cookie="wrong")
    with pytest.raises(AuthenticationError) as info:
        pump(a, b)
    assert info.value.node == "py@h"
    assert "right" not in str(info.value) and "wrong" not in str(info.value)
    assert b.state is HandshakeState.FAILED


def test_wrong_cookie_seen_by_initiator_as_close() -> None:
    """An Erlang peer just closes after a bad digest: the initiator maps that to
    AuthenticationError naming the peer."""
    a, b = initiator(cookie="x"), acceptor(cookie="x")
    b.receive_data(a.data_to_send())
    b.accept()
    a.receive_data(b.data_to_send())
    assert a.state is HandshakeState.AWAIT_ACK
    with pytest.raises(AuthenticationError) as info:
        a.connection_lost()
    assert info.value.node == "n1@h"


def test_wrong_ack_digest() -> None:
    a, b = initiator(cookie="x"), acceptor(cookie="x")
    b.receive_data(a.data_to_send())
    b.accept()
    a.receive_data(b.data_to_send())
    with pytest.raises(AuthenticationError):
        a.receive_data(b"\x00\x11a" + b"\x00" * 16)


@pytest.mark.parametrize("status", ["nok", "not_allowed", "named:"])
def test_refusing_status(status: str) -> None:
    a = initiator()
    a.data_to_send()
    packet = b"s" + status.encode()
    with pytest.raises(HandshakeError) as info:
        a.receive_data(struct.pack(">H", len(packet)) + packet)
    assert info.value.status == status
    assert a.state is HandshakeState.FAILED
    with pytest.raises(InvalidState):
        a.receive_data(b"")


def test_alive_status_answered_true() -> None:
    a, b = initiator(), acceptor()
    b.receive_data(a.data_to_send())
    a.receive_data(b"\x00\x06salive")
    assert a.data_to_send() == b"\x00\x05strue"
    assert a.state is HandshakeState.AWAIT_CHALLENGE


def test_acceptor_reject_and_flags_check() -> None:
    b = acceptor()
    (ev,) = b.receive_data(initiator().data_to_send())
    assert isinstance(ev, NameReceived)
    b.reject("nok")
    assert b.data_to_send() == b"\x00\x04snok"
    assert b.state is HandshakeState.FAILED
    # a peer without the OTP 26 mandatory flags is refused with not_allowed
    b2 = acceptor()
    with pytest.raises(HandshakeError) as info:
        b2.receive_data(initiator(flags=MANDATORY_25).data_to_send())
    assert info.value.status == "not_allowed"
    assert b2.data_to_send() == b"\x00\x0csnot_allowed"


def test_challenge_from_wrong_node() -> None:
    a, b = initiator(peer_node="other@h"), acceptor()
    with pytest.raises(HandshakeError, match="dialled"):
        pump(a, b)


def test_close_before_status_is_handshake_error() -> None:
    a = initiator()
    with pytest.raises(HandshakeError) as info:
        a.connection_lost()
    assert not isinstance(info.value, AuthenticationError)


# -- every state x message --------------------------------------------------------------


def machine_in(state: HandshakeState) -> Handshake:
    a, b = initiator(), acceptor()
    if state is HandshakeState.AWAIT_STATUS:
        return a
    if state is HandshakeState.AWAIT_NAME:
        return b
    b.receive_data(a.data_to_send())
    if state is HandshakeState.AWAIT_DECISION:
        return b
    b.accept()
    if state is HandshakeState.AWAIT_REPLY:
        return b
    data = b.data_to_send()
    status, challenge = data[:5], data[5:]
    a.receive_data(status)
    if state is HandshakeState.AWAIT_CHALLENGE:
        return a
    a.receive_data(challenge)
    assert state is HandshakeState.AWAIT_ACK
    return a


LIVE_STATES = [
    HandshakeState.AWAIT_STATUS,
    HandshakeState.AWAIT_CHALLENGE,
    HandshakeState.AWAIT_ACK,
    HandshakeState.AWAIT_NAME,
    HandshakeState.AWAIT_REPLY,
]
ALLOWED = {
    HandshakeState.AWAIT_STATUS: b"s",
    HandshakeState.AWAIT_CHALLENGE: b"N",
    HandshakeState.AWAIT_ACK: b"a",
    HandshakeState.AWAIT_NAME: b"Nn",
    HandshakeState.AWAIT_REPLY: b"r",
}


UNEXPECTED = [
    (state, tag) for state in LIVE_STATES for tag in b"NnsraXc\x00" if tag not in ALLOWED[state]
]


@pytest.mark.parametrize("state,tag", UNEXPECTED, ids=lambda v: getattr(v, "name", repr(v)))
def test_unexpected_message_in_every_state(state: HandshakeState, tag: int) -> None:
    """Every (state, tag) pair outside the table fails; the allowed pairs (ALLOWED) are
    exercised by the flow tests above."""
    hs = machine_in(state)
    assert hs.state is state
    with pytest.raises(HandshakeError, match="unexpected handshake message"):
        hs.receive_data(b"\x00\x05" + bytes([tag]) + b"junk")
    assert hs.state is HandshakeState.FAILED


def test_decision_state_takes_no_input_until_decided() -> None:
    hs = machine_in(HandshakeState.AWAIT_DECISION)
    assert hs.receive_data(b"\x00\x01r") == []  # buffered, not parsed
    with pytest.raises(ValueError):
        hs.reject("ok")
    with pytest.raises(ValueError):
        hs.accept("nok")
    hs.accept()
    with pytest.raises(HandshakeError, match="malformed challenge reply"):
        hs.receive_data(b"")  # the buffered packet is parsed now
    with pytest.raises(InvalidState):
        hs.accept()


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(LIVE_STATES),
    st.lists(st.binary(max_size=40), max_size=4),
)
def test_any_bytes_in_any_state_accept_or_raise_documented(
    state: HandshakeState, chunks: list[bytes]
) -> None:
    hs = machine_in(state)
    for chunk in chunks:
        try:
            hs.receive_data(chunk)
        except (HandshakeError, InvalidState):
            return
        if hs.state is HandshakeState.AWAIT_DECISION:
            hs.accept()
