"""Distribution handshake, version 6, both directions, sans-I/O.

See docs/internals/otp-facts.md#handshake.

Use::

    hs = Handshake.initiate(this_node="py@h", cookie=c, flags=f, creation=cr,
                            challenge=random32, peer_node="a@h")
    transport.write(hs.data_to_send())
    for event in hs.receive_data(chunk): ...        # raises HandshakeError & co on failure
    transport.write(hs.data_to_send())

The machine is a table ``(role-state, message tag) -> handler``; any pair not in the table is
a :class:`~erlbridge.exceptions.HandshakeError`. The random challenge is passed in (no
randomness or clock here). Handshake messages are framed with a 2-byte length over TCP and a
4-byte length over TLS (``packet_bytes=4``, docs/internals/otp-facts.md#tls-distribution).
When :class:`Connected` is emitted,
bytes that followed the last handshake message are in :attr:`Handshake.trailing_data`.

The acceptor side stops after the peer's name with :class:`NameReceived`; the caller decides
(allow list, simultaneous-connect resolution) and calls :meth:`Handshake.accept` or
:meth:`Handshake.reject`. ``accept("alive")`` is dist_util's answer to a name we already
hold a connection to: the peer says whether to go on (``true``) and must then pass the
challenge like any newcomer; only its :class:`Connected` may replace the old connection.

Names are checked as OTP checks them (:func:`node_name_problem`): a name that is not
``alive@host``, has more than 255 bytes (an atom's limit) or a space, control or
non-Latin-1 character closes the connection without a status, as dist_util does.
"""

from __future__ import annotations

import hashlib
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum, auto

from erlbridge.exceptions import AuthenticationError, HandshakeError, InvalidState
from erlbridge.protocol.flags import DistFlags, missing_mandatory

__all__ = [
    "MAX_NODE_NAME_BYTES",
    "Connected",
    "Handshake",
    "HandshakeEvent",
    "HandshakeState",
    "NameReceived",
    "Role",
    "gen_digest",
    "node_name_problem",
]

_STATUSES_OK = ("ok", "ok_simultaneous")
#: Largest handshake message accepted. TCP framing cannot exceed it; over TLS (4-byte
#: lengths) a hostile peer could otherwise make us buffer gigabytes before it is
#: authenticated. Real messages are < 1100 bytes (a 255-character name, UTF-8).
MAX_HANDSHAKE_PACKET = 65535
_REJECT_STATUSES = ("nok", "not_allowed", "alive")
#: A node name is an atom: at most 255 characters, which dist_util counts in bytes (it
#: makes the atom from the name's bytes).
MAX_NODE_NAME_BYTES = 255


def node_name_problem(name: str) -> str | None:
    """Why ``name`` is not a node name OTP accepts, or None when it is one.

    The rules are OTP's: ``alive@host`` with exactly one ``@`` and both parts non-empty
    (dist_util is_name_ok), at most :data:`MAX_NODE_NAME_BYTES` bytes in UTF-8 (the atom
    limit), and only the characters net_kernel allows in a host name, ``!`` to ``ÿ``
    (no space, no control character, nothing beyond Latin-1). The text never contains
    the name itself: it may be long.
    """
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NODE_NAME_BYTES:
        return f"node name of {size} bytes (at most {MAX_NODE_NAME_BYTES})"
    parts = name.split("@")
    if len(parts) != 2 or not parts[0] or not parts[1]:
        return "node name is not of the form name@host"
    if _NAME_CHARS.fullmatch(name) is None:
        return "node name has a space, control or non-Latin-1 character"
    return None


_NAME_CHARS = re.compile("[!-\xff]+")  # net_kernel's host name rule, "^[!-ÿ]*$"


def _shown(name: str) -> str:
    """A peer-sent name for a message (cut: it may be 64 KiB)."""
    return repr(name[:80] + "...") if len(name) > 80 else repr(name)


def gen_digest(challenge: int, cookie: bytes) -> bytes:
    """``md5([atom_to_list(Cookie) | integer_to_list(Challenge)])`` (dist_util:gen_digest)."""
    return hashlib.md5(cookie + str(challenge & 0xFFFFFFFF).encode("ascii")).digest()


class Role(Enum):
    INITIATOR = auto()
    ACCEPTOR = auto()


class HandshakeState(Enum):
    # initiator
    AWAIT_STATUS = auto()
    AWAIT_CHALLENGE = auto()
    AWAIT_ACK = auto()
    # acceptor
    AWAIT_NAME = auto()
    AWAIT_DECISION = auto()
    AWAIT_ALIVE_REPLY = auto()
    AWAIT_REPLY = auto()
    # both
    CONNECTED = auto()
    FAILED = auto()


@dataclass(frozen=True, slots=True)
class NameReceived:
    """Acceptor: the peer introduced itself; call ``accept()`` or ``reject()`` next."""

    node: str
    flags: DistFlags
    creation: int


@dataclass(frozen=True, slots=True)
class Connected:
    """The handshake succeeded. ``flags`` are the negotiated (intersected) flags."""

    node: str
    flags: DistFlags
    peer_flags: DistFlags
    creation: int


HandshakeEvent = NameReceived | Connected


class Handshake:
    """One handshake (one connection attempt). Not reusable."""

    __slots__ = (
        "_buffer",
        "_challenge",
        "_cookie",
        "_events",
        "_out",
        "_peer_challenge",
        "alive_answer",
        "creation",
        "flags",
        "packet_bytes",
        "peer_creation",
        "peer_flags",
        "peer_node",
        "role",
        "state",
        "this_node",
        "trailing_data",
    )

    def __init__(
        self,
        role: Role,
        *,
        this_node: str,
        cookie: bytes | str,
        flags: int,
        creation: int,
        challenge: int,
        peer_node: str | None = None,
        packet_bytes: int = 2,
        alive_answer: bool = True,
    ) -> None:
        if packet_bytes not in (2, 4):
            raise ValueError("packet_bytes must be 2 (TCP) or 4 (TLS)")
        self.role = role
        self.this_node = this_node
        self._cookie = cookie.encode("utf-8") if isinstance(cookie, str) else bytes(cookie)
        self.flags = DistFlags(flags)
        self.creation = creation
        self._challenge = challenge & 0xFFFFFFFF
        self._peer_challenge = 0
        self.peer_node = peer_node
        self.peer_flags = DistFlags(0)
        self.peer_creation = 0
        self.packet_bytes = packet_bytes
        self.alive_answer = alive_answer
        self._buffer = bytearray()
        self._out: list[bytes] = []
        self._events: list[HandshakeEvent] = []
        self.trailing_data = b""
        if role is Role.INITIATOR:
            if peer_node is None:
                raise ValueError("the initiator must know the peer node name")
            self._send(self._name_message())
            self.state = HandshakeState.AWAIT_STATUS
        else:
            self.state = HandshakeState.AWAIT_NAME

    def __repr__(self) -> str:  # never shows the cookie
        return f"<Handshake {self.role.name} {self.this_node}->{self.peer_node} {self.state.name}>"

    @classmethod
    def initiate(cls, **kwargs: object) -> Handshake:
        """Outgoing connection: ``send_name`` is queued immediately."""
        return cls(Role.INITIATOR, **kwargs)  # type: ignore[arg-type]

    @classmethod
    def accept_incoming(cls, **kwargs: object) -> Handshake:
        """Incoming connection: wait for the peer's name."""
        return cls(Role.ACCEPTOR, **kwargs)  # type: ignore[arg-type]

    # -- I/O surface ------------------------------------------------------------

    def data_to_send(self) -> bytes:
        """Bytes to write now (and forget)."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    def receive_data(self, data: bytes) -> list[HandshakeEvent]:
        """Feed received bytes; return the events they completed.

        Raises HandshakeError (``.status`` set for a peer status), AuthenticationError for a
        wrong digest; after an error the state is FAILED and nothing more is accepted.
        """
        if self.state in (HandshakeState.CONNECTED, HandshakeState.FAILED):
            raise InvalidState(f"handshake already {self.state.name.lower()}")
        self._buffer += data
        n = self.packet_bytes
        while self.state not in _NOT_PARSING:
            if len(self._buffer) < n:
                break
            size = int.from_bytes(self._buffer[:n], "big")
            if size > MAX_HANDSHAKE_PACKET:
                self._fail(HandshakeError(f"handshake message of {size} bytes is too large"))
            if len(self._buffer) < n + size:
                break
            packet = bytes(self._buffer[n : n + size])
            del self._buffer[: n + size]
            self._dispatch(packet)
        if self._is_connected():
            self.trailing_data = bytes(self._buffer)
            self._buffer.clear()
        events, self._events = self._events, []
        return events

    def _is_connected(self) -> bool:
        return self.state is HandshakeState.CONNECTED

    def connection_lost(self) -> None:
        """The peer closed before the handshake finished: raise the matching error.

        A bad digest makes an Erlang peer close without a word ("Invalid challenge reply"),
        so a close while waiting for the ack means the cookies differ.
        """
        state = self.state
        self.state = HandshakeState.FAILED
        peer = self.peer_node or "?"
        if state is HandshakeState.AWAIT_ACK:
            raise AuthenticationError(peer)
        if state in (HandshakeState.CONNECTED, HandshakeState.FAILED):
            return
        raise HandshakeError(f"{peer} closed the connection during the handshake ({state.name})")

    def accept(self, status: str = "ok") -> None:
        """Acceptor: send ``status`` (ok | ok_simultaneous) and our challenge; or
        ``alive`` (we hold a connection from that name): the challenge follows once the
        peer answers ``true``, a ``false`` fails the handshake (``status="alive"``)."""
        self._require(HandshakeState.AWAIT_DECISION)
        if status == "alive":
            self._send(b"salive")
            self.state = HandshakeState.AWAIT_ALIVE_REPLY
            return
        if status not in _STATUSES_OK:
            raise ValueError(f"not an accepting status: {status!r}")
        self._send(b"s" + status.encode("ascii"))
        self._send_challenge()

    def _send_challenge(self) -> None:
        name = self.this_node.encode("utf-8")
        self._send(
            b"N"
            + struct.pack(">QIIH", int(self.flags), self._challenge, self.creation, len(name))
            + name
        )
        self.state = HandshakeState.AWAIT_REPLY

    def reject(self, status: str = "nok") -> None:
        """Acceptor: send a refusing status (nok | not_allowed | alive) and fail."""
        self._require(HandshakeState.AWAIT_DECISION)
        if status not in _REJECT_STATUSES:
            raise ValueError(f"not a refusing status: {status!r}")
        self._send(b"s" + status.encode("ascii"))
        self.state = HandshakeState.FAILED

    # -- internals --------------------------------------------------------------------

    def _require(self, state: HandshakeState) -> None:
        if self.state is not state:
            raise InvalidState(f"handshake is {self.state.name}, expected {state.name}")

    def _send(self, packet: bytes) -> None:
        self._out.append(len(packet).to_bytes(self.packet_bytes, "big") + packet)

    def _fail(self, exc: Exception) -> None:
        self.state = HandshakeState.FAILED
        raise exc

    def _name_message(self) -> bytes:
        name = self.this_node.encode("utf-8")
        return b"N" + struct.pack(">QIH", int(self.flags), self.creation, len(name)) + name

    def _dispatch(self, packet: bytes) -> None:
        tag = packet[:1]
        handler = _TABLE.get((self.state, tag))
        if handler is None:
            what = repr(tag) if tag else "an empty packet"
            self._fail(
                HandshakeError(f"unexpected handshake message {what} in state {self.state.name}")
            )
            return
        handler(self, packet)

    # initiator ----------------------------------------------------------------------

    def _on_status(self, packet: bytes) -> None:
        status = packet[1:].decode("latin-1")
        if len(status) > 64:  # no status is that long; keep the peer's text out of messages
            status = status[:64] + "..."
        if status in _STATUSES_OK:
            self.state = HandshakeState.AWAIT_CHALLENGE
        elif status == "alive":
            # The peer still holds a connection from our name; we only dial when we have
            # none, so the old one is stale: answer "true" to continue (dist_util recv_status).
            self._send(b"strue" if self.alive_answer else b"sfalse")
            if self.alive_answer:
                self.state = HandshakeState.AWAIT_CHALLENGE
            else:
                self._fail(HandshakeError(f"{self.peer_node} reports us alive", status="alive"))
        elif status.startswith("named:"):
            self._fail(HandshakeError("unexpected 'named:' status (NAME_ME not requested)", status))
        else:
            self._fail(HandshakeError(f"{self.peer_node} refused the connection: {status}", status))

    def _on_challenge(self, packet: bytes) -> None:
        if len(packet) < 19:
            self._fail(HandshakeError("truncated challenge"))
        flags, challenge, creation, nlen = struct.unpack_from(">QIIH", packet, 1)
        if len(packet) < 19 + nlen:
            self._fail(HandshakeError("truncated challenge"))
        name = packet[19 : 19 + nlen].decode("utf-8", "replace")  # extra bytes are ignored
        if self.peer_node is not None and name != self.peer_node:
            self._fail(HandshakeError(f"dialled {self.peer_node} but {_shown(name)} answered"))
        missing = missing_mandatory(flags)
        if missing:
            self._fail(HandshakeError(f"{name} lacks mandatory flags {missing!r}"))
        self.peer_flags = DistFlags(flags)
        self.peer_creation = creation
        self._peer_challenge = challenge
        self._send(b"r" + struct.pack(">I", self._challenge) + gen_digest(challenge, self._cookie))
        self.state = HandshakeState.AWAIT_ACK

    def _on_ack(self, packet: bytes) -> None:
        if packet[1:17] != gen_digest(self._challenge, self._cookie) or len(packet) != 17:
            self._fail(AuthenticationError(self.peer_node or "?"))
        self._connected()

    # acceptor -----------------------------------------------------------------------

    def _on_name(self, packet: bytes) -> None:
        if len(packet) < 15:
            self._fail(HandshakeError("truncated name message"))
        flags, creation, nlen = struct.unpack_from(">QIH", packet, 1)
        raw = packet[15 : 15 + nlen]
        if len(raw) != nlen:
            self._fail(HandshakeError("truncated name message"))
        name = raw.decode("utf-8", "replace")
        problem = node_name_problem(name)
        if problem is not None:
            # dist_util closes without a status (is_name_ok false, or list_to_atom
            # failing on a name longer than an atom)
            self._fail(HandshakeError(f"refused the name {_shown(name)}: {problem}"))
        missing = missing_mandatory(flags)
        if missing:
            self._send(b"snot_allowed")
            self._fail(
                HandshakeError(f"{name} lacks mandatory flags {missing!r}", status="not_allowed")
            )
        self.peer_node = name
        self.peer_flags = DistFlags(flags)
        self.peer_creation = creation
        self.state = HandshakeState.AWAIT_DECISION
        self._events.append(NameReceived(name, self.peer_flags, creation))

    def _on_alive_reply(self, packet: bytes) -> None:
        answer = packet[1:]
        if answer == b"true":
            self._send_challenge()
        elif answer == b"false":
            self._fail(HandshakeError(f"{self.peer_node} gave up (it holds no connection to us)",
                                      status="alive"))
        else:
            self._fail(HandshakeError(f"unexpected answer to 'alive': {answer[:32]!r}"))

    def _on_old_name(self, packet: bytes) -> None:
        # 'n' (version 5, 32-bit flags) is only sent by pre-OTP-23 nodes and by 'n'-style
        # clients; every OTP we support sends 'N'.
        self._send(b"snot_allowed")
        self._fail(HandshakeError("old 'n' handshake is not supported", status="not_allowed"))

    def _on_reply(self, packet: bytes) -> None:
        if len(packet) != 21:
            self._fail(HandshakeError("malformed challenge reply"))
        (their_challenge,) = struct.unpack_from(">I", packet, 1)
        if packet[5:21] != gen_digest(self._challenge, self._cookie):
            self._fail(AuthenticationError(self.peer_node or "?"))
        self._send(b"a" + gen_digest(their_challenge, self._cookie))
        self._connected()

    def _connected(self) -> None:
        self.state = HandshakeState.CONNECTED
        negotiated = DistFlags(int(self.flags) & int(self.peer_flags))
        self._events.append(
            Connected(self.peer_node or "?", negotiated, self.peer_flags, self.peer_creation)
        )


# no parsing in these states (AWAIT_DECISION: the caller must decide first)
_NOT_PARSING = frozenset(
    (HandshakeState.CONNECTED, HandshakeState.FAILED, HandshakeState.AWAIT_DECISION)
)

_Handler = Callable[[Handshake, bytes], None]
_TABLE: dict[tuple[HandshakeState, bytes], _Handler] = {
    (HandshakeState.AWAIT_STATUS, b"s"): Handshake._on_status,
    (HandshakeState.AWAIT_CHALLENGE, b"N"): Handshake._on_challenge,
    (HandshakeState.AWAIT_ACK, b"a"): Handshake._on_ack,
    (HandshakeState.AWAIT_NAME, b"N"): Handshake._on_name,
    (HandshakeState.AWAIT_NAME, b"n"): Handshake._on_old_name,
    (HandshakeState.AWAIT_ALIVE_REPLY, b"s"): Handshake._on_alive_reply,
    (HandshakeState.AWAIT_REPLY, b"r"): Handshake._on_reply,
}
