"""EPMD messages: bytes in, values out."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erlbridge.exceptions import EpmdError, NodeNotFound, RegistrationError
from erlbridge.protocol import epmd


def test_alive2_request_layout() -> None:
    req = epmd.alive2_request("py", 5000, hidden=True)
    body = bytes([120]) + struct.pack(">HBBHHH", 5000, 72, 0, 6, 6, 2) + b"py" + b"\x00\x00"
    assert req == struct.pack(">H", len(body)) + body
    assert epmd.alive2_request("py", 5000, hidden=False)[5] == 77


def test_alive2_response() -> None:
    verified = bytes.fromhex("76006b06fe41")  # observed (docs/internals/otp-facts.md#epmd)
    assert epmd.parse_alive2_response(verified) == 1795620417
    for cut in range(len(verified)):
        assert epmd.parse_alive2_response(verified[:cut]) is None
    assert epmd.parse_alive2_response(bytes.fromhex("79000005")) == 5
    with pytest.raises(RegistrationError):
        epmd.parse_alive2_response(bytes.fromhex("7601"))
    with pytest.raises(EpmdError):
        epmd.parse_alive2_response(b"\x00")


def test_port_please() -> None:
    assert epmd.port_please2_request("n1") == b"\x00\x03zn1"
    verified = bytes.fromhex("7700b26e48000006000600") + b"\x0bpyepmdprobe\x00\x00"
    info = epmd.parse_port2_response(verified)
    assert info == epmd.PortInfo(45678, 72, 0, 6, 6, "pyepmdprobe", b"")
    for cut in range(len(verified)):
        assert epmd.parse_port2_response(verified[:cut]) is None
    with pytest.raises(NodeNotFound):
        epmd.parse_port2_response(b"\x77\x01")
    with pytest.raises(EpmdError):
        epmd.parse_port2_response(b"\x78\x00")


def test_names() -> None:
    assert epmd.names_request() == b"\x00\x01n"
    data = struct.pack(">I", 4369) + b"name n1 at port 40001\nname py at port 40002\n"
    assert epmd.parse_names_response(data) == {"n1": 40001, "py": 40002}
    with pytest.raises(EpmdError):
        epmd.parse_names_response(b"\x00")
    with pytest.raises(EpmdError):
        epmd.parse_names_response(struct.pack(">I", 1) + b"garbage line\n")


@given(st.binary(max_size=64))
def test_parsers_accept_or_raise_documented(data: bytes) -> None:
    for parse in (epmd.parse_alive2_response, epmd.parse_port2_response):
        with contextlib.suppress(EpmdError):
            parse(data)
    with contextlib.suppress(EpmdError):
        epmd.parse_names_response(data)
