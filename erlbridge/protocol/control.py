"""Distribution control messages, as frozen dataclasses.

See docs/internals/otp-facts.md#control-messages.

One class per *meaning*; the ``_TT`` (trace token) variants are the same class with ``token``
set, and EXIT/EXIT2/MONITOR_P_EXIT cover both the plain and the ``PAYLOAD_`` wire forms.
``to_term(payload_exits=...)`` returns ``(control_tuple, payload)`` where ``payload`` is
:data:`NO_PAYLOAD` for messages without one; :func:`from_term` is the inverse and raises
:class:`~erlbridge.exceptions.ProtocolError` for anything malformed or unknown.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, ClassVar, Final

from erlbridge.exceptions import ProtocolError, bounded_text
from erlbridge.term import Atom, Pid, Reference

__all__ = [
    "NO_PAYLOAD",
    "AliasSend",
    "AltactSigSend",
    "ControlMessage",
    "DemonitorP",
    "Exit",
    "Exit2",
    "GroupLeader",
    "Link",
    "MonitorP",
    "MonitorPExit",
    "Op",
    "RegSend",
    "Send",
    "SendSender",
    "SpawnReply",
    "SpawnRequest",
    "Unlink",
    "UnlinkId",
    "UnlinkIdAck",
    "from_term",
]


class Op(IntEnum):
    """``enum dop`` from erts' dist.h."""

    LINK = 1
    SEND = 2
    EXIT = 3
    UNLINK = 4
    NODE_LINK = 5
    REG_SEND = 6
    GROUP_LEADER = 7
    EXIT2 = 8
    SEND_TT = 12
    EXIT_TT = 13
    REG_SEND_TT = 16
    EXIT2_TT = 18
    MONITOR_P = 19
    DEMONITOR_P = 20
    MONITOR_P_EXIT = 21
    SEND_SENDER = 22
    SEND_SENDER_TT = 23
    PAYLOAD_EXIT = 24
    PAYLOAD_EXIT_TT = 25
    PAYLOAD_EXIT2 = 26
    PAYLOAD_EXIT2_TT = 27
    PAYLOAD_MONITOR_P_EXIT = 28
    SPAWN_REQUEST = 29
    SPAWN_REQUEST_TT = 30
    SPAWN_REPLY = 31
    SPAWN_REPLY_TT = 32
    ALIAS_SEND = 33
    ALIAS_SEND_TT = 34
    UNLINK_ID = 35
    UNLINK_ID_ACK = 36
    ALTACT_SIG_SEND = 37


class _NoPayload:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NO_PAYLOAD"


#: Marks a control message that carries no payload term.
NO_PAYLOAD: Final = _NoPayload()
EMPTY: Final = Atom("")

Wire = tuple[tuple[Any, ...], Any]


@dataclass(frozen=True, slots=True)
class Link:
    from_pid: Pid
    to_pid: Pid

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.LINK.value, self.from_pid, self.to_pid), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class Unlink:
    """Obsolete UNLINK (op 4); decoded for completeness, never sent."""

    from_pid: Pid
    to_pid: Pid

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.UNLINK.value, self.from_pid, self.to_pid), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class UnlinkId:
    id: int
    from_pid: Pid
    to_pid: Pid

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.UNLINK_ID.value, self.id, self.from_pid, self.to_pid), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class UnlinkIdAck:
    id: int
    from_pid: Pid
    to_pid: Pid

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.UNLINK_ID_ACK.value, self.id, self.from_pid, self.to_pid), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class Send:
    """SEND / SEND_TT: a message to a pid without a sender (peers without SEND_SENDER)."""

    to_pid: Pid
    message: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        if self.token is None:
            return (Op.SEND.value, EMPTY, self.to_pid), self.message
        return (Op.SEND_TT.value, EMPTY, self.to_pid, self.token), self.message


@dataclass(frozen=True, slots=True)
class SendSender:
    from_pid: Pid
    to_pid: Pid
    message: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        if self.token is None:
            return (Op.SEND_SENDER.value, self.from_pid, self.to_pid), self.message
        return (Op.SEND_SENDER_TT.value, self.from_pid, self.to_pid, self.token), self.message


@dataclass(frozen=True, slots=True)
class RegSend:
    from_pid: Pid
    to_name: Atom
    message: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        if self.token is None:
            return (Op.REG_SEND.value, self.from_pid, EMPTY, self.to_name), self.message
        ctl = (Op.REG_SEND_TT.value, self.from_pid, EMPTY, self.to_name, self.token)
        return ctl, self.message


@dataclass(frozen=True, slots=True)
class AliasSend:
    from_pid: Pid
    alias: Reference
    message: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        if self.token is None:
            return (Op.ALIAS_SEND.value, self.from_pid, self.alias), self.message
        return (Op.ALIAS_SEND_TT.value, self.from_pid, self.alias, self.token), self.message


@dataclass(frozen=True, slots=True)
class AltactSigSend:
    """OTP 28+ op 37; only arrives if we advertise ALTACT_SIG (we do not)."""

    flags: int
    sender: Pid
    to: Any
    message: Any
    token: Any = None

    PRIO: ClassVar[int] = 1
    TOKEN: ClassVar[int] = 2
    ALIAS: ClassVar[int] = 4
    NAME: ClassVar[int] = 8
    EXIT: ClassVar[int] = 16

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        ctl: tuple[Any, ...] = (Op.ALTACT_SIG_SEND.value, self.flags, self.sender, self.to)
        if self.token is not None:
            ctl += (self.token,)
        return ctl, self.message


def _exit_wire(
    plain: Op, plain_tt: Op, payload: Op, payload_tt: Op, sig: Exit | Exit2, *,
    payload_exits: bool,
) -> Wire:
    # EXIT and EXIT2 share one layout: the reason goes in the payload when the peer has
    # DFLAG_EXIT_PAYLOAD, else as the control tuple's last element; *_TT adds a trace token.
    tt = sig.token is not None
    token = (sig.token,) if tt else ()
    if payload_exits:
        op = payload_tt if tt else payload
        return (op.value, sig.from_pid, sig.to_pid, *token), sig.reason
    op = plain_tt if tt else plain
    return (op.value, sig.from_pid, sig.to_pid, *token, sig.reason), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class Exit:
    """An exit signal because of a link (EXIT / EXIT_TT / PAYLOAD_EXIT / PAYLOAD_EXIT_TT)."""

    from_pid: Pid
    to_pid: Pid
    reason: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return _exit_wire(Op.EXIT, Op.EXIT_TT, Op.PAYLOAD_EXIT, Op.PAYLOAD_EXIT_TT, self,
                          payload_exits=payload_exits)


@dataclass(frozen=True, slots=True)
class Exit2:
    """``exit(Pid, Reason)`` (EXIT2 / EXIT2_TT / PAYLOAD_EXIT2 / PAYLOAD_EXIT2_TT)."""

    from_pid: Pid
    to_pid: Pid
    reason: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return _exit_wire(Op.EXIT2, Op.EXIT2_TT, Op.PAYLOAD_EXIT2, Op.PAYLOAD_EXIT2_TT, self,
                          payload_exits=payload_exits)


@dataclass(frozen=True, slots=True)
class GroupLeader:
    from_pid: Pid
    to_pid: Pid

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.GROUP_LEADER.value, self.from_pid, self.to_pid), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class MonitorP:
    """``from_pid`` monitors ``to_proc`` (a pid or a registered name atom)."""

    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.MONITOR_P.value, self.from_pid, self.to_proc, self.ref), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class DemonitorP:
    from_pid: Pid
    to_proc: Pid | Atom
    ref: Reference

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        return (Op.DEMONITOR_P.value, self.from_pid, self.to_proc, self.ref), NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class MonitorPExit:
    """The monitored ``from_proc`` (pid, or atom if monitored by name) went down."""

    from_proc: Pid | Atom
    to_pid: Pid
    ref: Reference
    reason: Any

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        if payload_exits:
            ctl = (Op.PAYLOAD_MONITOR_P_EXIT.value, self.from_proc, self.to_pid, self.ref)
            return ctl, self.reason
        plain = (Op.MONITOR_P_EXIT.value, self.from_proc, self.to_pid, self.ref, self.reason)
        return plain, NO_PAYLOAD


@dataclass(frozen=True, slots=True)
class SpawnRequest:
    req_id: Reference
    from_pid: Pid
    group_leader: Pid
    mfa: tuple[Atom, Atom, int]
    options: list[Any]
    args: list[Any]
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        base = (self.req_id, self.from_pid, self.group_leader, self.mfa, self.options)
        if self.token is None:
            return (Op.SPAWN_REQUEST.value, *base), self.args
        return (Op.SPAWN_REQUEST_TT.value, *base, self.token), self.args


@dataclass(frozen=True, slots=True)
class SpawnReply:
    """``result`` is the new pid or an error atom; ``flags`` bit 0 link, bit 1 monitor."""

    req_id: Reference
    to_pid: Pid
    flags: int
    result: Any
    token: Any = None

    def to_term(self, *, payload_exits: bool = True) -> Wire:
        base = (self.req_id, self.to_pid, self.flags, self.result)
        if self.token is None:
            return (Op.SPAWN_REPLY.value, *base), NO_PAYLOAD
        return (Op.SPAWN_REPLY_TT.value, *base, self.token), NO_PAYLOAD


ControlMessage = (
    Link
    | Unlink
    | UnlinkId
    | UnlinkIdAck
    | Send
    | SendSender
    | RegSend
    | AliasSend
    | AltactSigSend
    | Exit
    | Exit2
    | GroupLeader
    | MonitorP
    | DemonitorP
    | MonitorPExit
    | SpawnRequest
    | SpawnReply
)

_Parser = Callable[[tuple[Any, ...], Any], ControlMessage]


def _needs(payload: Any, op: int) -> None:
    if payload is NO_PAYLOAD:
        raise ProtocolError(f"control message {op} needs a payload term")


def _none(payload: Any, op: int) -> None:
    if payload is not NO_PAYLOAD:
        raise ProtocolError(f"control message {op} takes no payload term")


def _send(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _needs(p, c[0])
    return Send(c[2], p, c[3] if c[0] == Op.SEND_TT else None)


def _send_sender(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _needs(p, c[0])
    return SendSender(c[1], c[2], p, c[3] if c[0] == Op.SEND_SENDER_TT else None)


def _reg_send(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _needs(p, c[0])
    return RegSend(c[1], c[3], p, c[4] if c[0] == Op.REG_SEND_TT else None)


def _alias_send(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _needs(p, c[0])
    return AliasSend(c[1], c[2], p, c[3] if c[0] == Op.ALIAS_SEND_TT else None)


def _altact(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _needs(p, c[0])
    return AltactSigSend(c[1], c[2], c[3], p, c[4] if len(c) > 4 else None)


def _link(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return Link(c[1], c[2])


def _unlink(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return Unlink(c[1], c[2])


def _unlink_id(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return UnlinkId(c[1], c[2], c[3])


def _unlink_id_ack(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return UnlinkIdAck(c[1], c[2], c[3])


def _exit(c: tuple[Any, ...], p: Any) -> ControlMessage:
    op = c[0]
    if op in (Op.PAYLOAD_EXIT, Op.PAYLOAD_EXIT_TT):
        _needs(p, op)
        return Exit(c[1], c[2], p, c[3] if op == Op.PAYLOAD_EXIT_TT else None)
    _none(p, op)
    if op == Op.EXIT_TT:
        return Exit(c[1], c[2], c[4], c[3])
    return Exit(c[1], c[2], c[3])


def _exit2(c: tuple[Any, ...], p: Any) -> ControlMessage:
    op = c[0]
    if op in (Op.PAYLOAD_EXIT2, Op.PAYLOAD_EXIT2_TT):
        _needs(p, op)
        return Exit2(c[1], c[2], p, c[3] if op == Op.PAYLOAD_EXIT2_TT else None)
    _none(p, op)
    if op == Op.EXIT2_TT:
        return Exit2(c[1], c[2], c[4], c[3])
    return Exit2(c[1], c[2], c[3])


def _group_leader(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return GroupLeader(c[1], c[2])


def _monitor(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return MonitorP(c[1], c[2], c[3])


def _demonitor(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return DemonitorP(c[1], c[2], c[3])


def _monitor_exit(c: tuple[Any, ...], p: Any) -> ControlMessage:
    if c[0] == Op.PAYLOAD_MONITOR_P_EXIT:
        _needs(p, c[0])
        return MonitorPExit(c[1], c[2], c[3], p)
    _none(p, c[0])
    return MonitorPExit(c[1], c[2], c[3], c[4])


def _spawn_request(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _needs(p, c[0])
    token = c[6] if c[0] == Op.SPAWN_REQUEST_TT else None
    return SpawnRequest(c[1], c[2], c[3], c[4], c[5], p, token)


def _spawn_reply(c: tuple[Any, ...], p: Any) -> ControlMessage:
    _none(p, c[0])
    return SpawnReply(c[1], c[2], c[3], c[4], c[5] if c[0] == Op.SPAWN_REPLY_TT else None)


# op -> (exact tuple arity, parser)
_PARSERS: dict[int, tuple[int, _Parser]] = {
    Op.LINK: (3, _link),
    Op.SEND: (3, _send),
    Op.EXIT: (4, _exit),
    Op.UNLINK: (3, _unlink),
    Op.REG_SEND: (4, _reg_send),
    Op.GROUP_LEADER: (3, _group_leader),
    Op.EXIT2: (4, _exit2),
    Op.SEND_TT: (4, _send),
    Op.EXIT_TT: (5, _exit),
    Op.REG_SEND_TT: (5, _reg_send),
    Op.EXIT2_TT: (5, _exit2),
    Op.MONITOR_P: (4, _monitor),
    Op.DEMONITOR_P: (4, _demonitor),
    Op.MONITOR_P_EXIT: (5, _monitor_exit),
    Op.SEND_SENDER: (3, _send_sender),
    Op.SEND_SENDER_TT: (4, _send_sender),
    Op.PAYLOAD_EXIT: (3, _exit),
    Op.PAYLOAD_EXIT_TT: (4, _exit),
    Op.PAYLOAD_EXIT2: (3, _exit2),
    Op.PAYLOAD_EXIT2_TT: (4, _exit2),
    Op.PAYLOAD_MONITOR_P_EXIT: (4, _monitor_exit),
    Op.SPAWN_REQUEST: (6, _spawn_request),
    Op.SPAWN_REQUEST_TT: (7, _spawn_request),
    Op.SPAWN_REPLY: (5, _spawn_reply),
    Op.SPAWN_REPLY_TT: (6, _spawn_reply),
    Op.ALIAS_SEND: (3, _alias_send),
    Op.ALIAS_SEND_TT: (4, _alias_send),
    Op.UNLINK_ID: (4, _unlink_id),
    Op.UNLINK_ID_ACK: (4, _unlink_id_ack),
}
# plain int keys make the hot-path lookup a plain dict hit
_BY_INT: dict[int, tuple[int, _Parser]] = {int(k): v for k, v in _PARSERS.items()}


def from_term(control: Any, payload: Any = NO_PAYLOAD) -> ControlMessage:
    """Build the message for a decoded control tuple (and payload term, if any).

    Raises ProtocolError for a non-tuple, an unknown op or a wrong arity.
    """
    if type(control) is not tuple or not control or type(control[0]) is not int:
        raise ProtocolError(f"malformed control message {bounded_text(control)}")
    op = control[0]
    if op == Op.ALTACT_SIG_SEND:
        if len(control) not in (4, 5):
            raise ProtocolError(f"malformed ALTACT_SIG_SEND {bounded_text(control)}")
        return _altact(control, payload)
    entry = _BY_INT.get(op)
    if entry is None:
        raise ProtocolError(f"unknown control message op {bounded_text(op)}")
    arity, parser = entry
    if len(control) != arity:
        raise ProtocolError(f"control message op {op} with arity {len(control)} (want {arity})")
    return parser(control, payload)
