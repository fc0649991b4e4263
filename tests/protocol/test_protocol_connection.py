"""Framing and ticks after the handshake: bytes in, events out, ``now`` passed in."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from erlbridge.exceptions import FramingError, ProtocolError
from erlbridge.protocol import control as c
from erlbridge.protocol.connection import TICK, DistConnection, TickTimeout
from erlbridge.protocol.flags import DEFAULT_FLAGS, DistFlags
from erlbridge.term import Atom, Pid, Reference, encode

A = Pid(Atom("a@h"), 1, 0, 5)
B = Pid(Atom("b@h"), 2, 0, 6)
R = Reference(Atom("a@h"), 5, (1, 2, 3))


def frame(message: c.ControlMessage, *, payload_exits: bool = True) -> bytes:
    control, payload = message.to_term(payload_exits=payload_exits)
    body = b"p" + encode(control) + (b"" if payload is c.NO_PAYLOAD else encode(payload))
    return len(body).to_bytes(4, "big") + body


MESSAGES = [
    c.SendSender(B, A, (R, Atom("ok"))),
    c.RegSend(B, Atom("rex"), [1, 2, 3]),
    c.Link(B, A),
    c.Exit(B, A, Atom("boom")),
    c.MonitorPExit(Atom("rex"), A, R, Atom("noproc")),
]


def test_send_produces_pass_through_frames() -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS)
    for message in MESSAGES:
        conn.send(message)
    data = conn.data_to_send()
    assert data == b"".join(frame(m) for m in MESSAGES)
    assert conn.data_to_send() == b""
    # without EXIT_PAYLOAD the old exit forms are used
    old = DistConnection(flags=DEFAULT_FLAGS & ~DistFlags.EXIT_PAYLOAD)
    old.send(c.Exit(A, B, Atom("x")))
    assert old.data_to_send() == frame(c.Exit(A, B, Atom("x")), payload_exits=False)


def test_send_encoded_equals_send() -> None:
    a, b = DistConnection(flags=DEFAULT_FLAGS), DistConnection(flags=DEFAULT_FLAGS)
    message = c.RegSend(A, Atom("rex"), ("x", 1))
    a.send(message)
    control, payload = message.to_term()
    b.send_encoded(encode(control), encode(payload))
    assert a.data_to_send() == b.data_to_send()


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 40), max_size=30))
def test_any_split_gives_the_same_messages(cuts: list[int]) -> None:
    stream = b"".join(frame(m) for m in MESSAGES) + TICK + frame(MESSAGES[0])
    conn = DistConnection(flags=DEFAULT_FLAGS)
    got: list[c.ControlMessage] = []
    pos = 0
    for cut in cuts:
        got += conn.receive_data(stream[pos : pos + cut])
        pos += cut
    got += conn.receive_data(stream[pos:])
    assert got == [*MESSAGES, MESSAGES[0]]
    assert conn.ticks_received == 1


def test_large_frame_in_pieces() -> None:
    big = c.SendSender(B, A, b"z" * 3_000_000)
    data = frame(big)
    conn = DistConnection(flags=DEFAULT_FLAGS)
    events = []
    for i in range(0, len(data), 65536):
        events += conn.receive_data(data[i : i + 65536])
    assert events == [big]


def test_tick_is_answered() -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS)
    assert conn.receive_data(TICK) == []
    assert conn.data_to_send() == TICK
    # not doubled when something is queued anyway
    conn.send(MESSAGES[2])
    conn.receive_data(TICK)
    assert conn.data_to_send() == frame(MESSAGES[2])


def test_tick_rule() -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS, net_ticktime=4.0, now=100.0)
    assert conn.tick_interval == 1.0
    assert conn.next_timer_at == 101.0
    assert conn.timer(100.5) is None and conn.data_to_send() == b""  # not due yet
    # idle: we tick every interval, and after 4 silent intervals the peer is down
    for t in (101.0, 102.0, 103.0):
        assert conn.timer(t) is None
        assert conn.data_to_send() == TICK
    timeout = conn.timer(104.0)
    assert isinstance(timeout, TickTimeout)
    assert timeout.silent_seconds == 4.0


def test_reading_resets_the_count_and_writing_suppresses_ticks() -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS, net_ticktime=4.0, now=0.0)
    for t in range(1, 20):
        if t % 3 == 0:
            conn.receive_data(TICK)
            conn.data_to_send()
        assert conn.timer(float(t)) is None
        conn.data_to_send()
    conn.send(MESSAGES[2])
    conn.data_to_send()
    conn.receive_data(frame(MESSAGES[2]))
    assert conn.timer(20.0) is None
    assert conn.data_to_send() == b""  # we wrote in this interval: no tick needed


def test_max_message_size() -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS, max_message_size=100)
    with pytest.raises(FramingError, match="max_message_size"):
        conn.receive_data(frame(c.SendSender(B, A, b"x" * 200))[:10])


@pytest.mark.parametrize(
    "data,error",
    [
        (b"\x00\x00\x00\x03q\x83j", FramingError),  # not 'p'
        (b"\x00\x00\x00\x06p\x83j\x83jj", FramingError),  # trailing byte in frame
        (b"\x00\x00\x00\x03p\x83\xff", ProtocolError),  # undecodable term
        (b"\x00\x00\x00\x03p\x83j", ProtocolError),  # control is not a tuple
    ],
)
def test_malformed_frames(data: bytes, error: type[Exception]) -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS)
    with pytest.raises(error):
        conn.receive_data(data)


def test_header_flags_refused() -> None:
    with pytest.raises(ProtocolError):
        DistConnection(flags=DEFAULT_FLAGS | DistFlags.FRAGMENTS)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=80))
def test_garbage_accepts_or_raises_documented(data: bytes) -> None:
    conn = DistConnection(flags=DEFAULT_FLAGS)
    with contextlib.suppress(ProtocolError):
        conn.receive_data(data)
