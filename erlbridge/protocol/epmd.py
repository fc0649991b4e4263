"""EPMD requests and responses (docs/internals/otp-facts.md#epmd), as pure functions over bytes.

Requests are framed ``Len:16 | Req``; responses are unframed. Each ``parse_*`` function takes
everything received so far and returns ``None`` while more bytes are needed, the parsed value
when complete, or raises :class:`~erlbridge.exceptions.EpmdError` for a malformed or negative
answer. Only NAMES is terminated by the server closing the connection, so its parser takes
the complete buffer.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

from erlbridge.exceptions import EpmdError, NodeNotFound, RegistrationError

__all__ = [
    "DEFAULT_EPMD_PORT",
    "DIST_VERSION",
    "EpmdOp",
    "NodeType",
    "PortInfo",
    "alive2_request",
    "names_request",
    "parse_alive2_response",
    "parse_names_response",
    "parse_port2_response",
    "port_please2_request",
]

DEFAULT_EPMD_PORT = 4369
#: Distribution protocol version 6 is the only one OTP 23+ speaks (dist.hrl:78-81).
DIST_VERSION = 6


class EpmdOp(IntEnum):
    """Opcodes from ``erl_epmd.hrl``."""

    ALIVE2_REQ = 120
    ALIVE2_X_RESP = 118
    ALIVE2_RESP = 121
    PORT_PLEASE2_REQ = 122
    PORT2_RESP = 119
    NAMES_REQ = 110


class NodeType(IntEnum):
    """ALIVE2 node type: 77 ``'M'`` normal Erlang node, 72 ``'H'`` hidden."""

    NORMAL = 77
    HIDDEN = 72


@dataclass(frozen=True, slots=True)
class PortInfo:
    """A PORT2_RESP: where a node listens and what it speaks."""

    port: int
    node_type: int
    protocol: int
    highest_version: int
    lowest_version: int
    name: str
    extra: bytes = b""


def _frame(body: bytes) -> bytes:
    return struct.pack(">H", len(body)) + body


def alive2_request(
    name: str,
    port: int,
    *,
    hidden: bool = True,
    protocol: int = 0,
    extra: bytes = b"",
) -> bytes:
    """ALIVE2_REQ for the name part ``name`` (no ``@host``) listening on ``port``."""
    name_b = name.encode("utf-8")
    node_type = NodeType.HIDDEN if hidden else NodeType.NORMAL
    body = struct.pack(
        ">BHBBHHH",
        EpmdOp.ALIVE2_REQ,
        port,
        node_type,
        protocol,
        DIST_VERSION,
        DIST_VERSION,
        len(name_b),
    )
    body += name_b + struct.pack(">H", len(extra)) + extra
    return _frame(body)


def parse_alive2_response(data: bytes) -> int | None:
    """Return the creation from ALIVE2_X_RESP (32-bit) or ALIVE2_RESP (16-bit).

    Raises RegistrationError if EPMD refused (typically: the name is already registered).
    """
    if not data:
        return None
    op = data[0]
    if op == EpmdOp.ALIVE2_X_RESP:
        size = 6
    elif op == EpmdOp.ALIVE2_RESP:
        size = 4
    else:
        raise EpmdError(f"unexpected EPMD reply opcode {op} to ALIVE2_REQ")
    if len(data) < 2:
        return None
    if data[1] != 0:
        raise RegistrationError(f"EPMD refused the registration (result {data[1]})")
    if len(data) < size:
        return None
    if op == EpmdOp.ALIVE2_X_RESP:
        return int(struct.unpack_from(">I", data, 2)[0])
    return int(struct.unpack_from(">H", data, 2)[0])


def port_please2_request(name: str) -> bytes:
    """PORT_PLEASE2_REQ for the name part ``name``."""
    return _frame(bytes([EpmdOp.PORT_PLEASE2_REQ]) + name.encode("utf-8"))


def parse_port2_response(data: bytes, *, name: str = "?") -> PortInfo | None:
    """Parse PORT2_RESP; raises NodeNotFound for result != 0 (``name`` is for the message)."""
    if len(data) < 2:
        return None
    if data[0] != EpmdOp.PORT2_RESP:
        raise EpmdError(f"unexpected EPMD reply opcode {data[0]} to PORT_PLEASE2_REQ")
    if data[1] != 0:
        raise NodeNotFound(f"EPMD does not know the node name {name!r}")
    if len(data) < 12:
        return None
    port, node_type, protocol, high, low, nlen = struct.unpack_from(">HBBHHH", data, 2)
    end = 12 + nlen
    if len(data) < end + 2:
        return None
    (elen,) = struct.unpack_from(">H", data, end)
    if len(data) < end + 2 + elen:
        return None
    try:
        node_name = data[12:end].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EpmdError("EPMD sent a node name that is not UTF-8") from exc
    return PortInfo(
        port, node_type, protocol, high, low, node_name, bytes(data[end + 2 : end + 2 + elen])
    )


def names_request() -> bytes:
    """NAMES_REQ."""
    return _frame(bytes([EpmdOp.NAMES_REQ]))


def parse_names_response(data: bytes) -> dict[str, int]:
    """Parse a complete NAMES reply (``EpmdPort:32`` then ``name N at port P`` lines)."""
    if len(data) < 4:
        raise EpmdError("truncated NAMES reply")
    result: dict[str, int] = {}
    for line in data[4:].decode("utf-8", "replace").splitlines():
        parts = line.split()
        # "name foo at port 1234"
        if len(parts) == 5 and parts[0] == "name" and parts[2:4] == ["at", "port"]:
            try:
                result[parts[1]] = int(parts[4])
            except ValueError as exc:
                raise EpmdError(f"bad NAMES line {line!r}") from exc
        elif line.strip():
            raise EpmdError(f"bad NAMES line {line!r}")
    return result
