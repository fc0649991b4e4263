"""Control messages: to_term/from_term round trips and rejection of malformed tuples."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from erlbridge.exceptions import ProtocolError
from erlbridge.protocol import control as c
from erlbridge.term import Atom, Pid, Reference

A = Pid(Atom("a@h"), 1, 0, 5)
B = Pid(Atom("b@h"), 2, 0, 6)
R = Reference(Atom("a@h"), 5, (1, 2, 3))
TOKEN = (Atom("tok"), 1)

MESSAGES: list[Any] = [
    c.Link(A, B),
    c.Unlink(A, B),
    c.UnlinkId(7, A, B),
    c.UnlinkIdAck(7, A, B),
    c.Send(B, "m"),
    c.Send(B, "m", TOKEN),
    c.SendSender(A, B, [1, 2]),
    c.SendSender(A, B, [1, 2], TOKEN),
    c.RegSend(A, Atom("rex"), ("x",)),
    c.RegSend(A, Atom("rex"), ("x",), TOKEN),
    c.AliasSend(A, R, 1),
    c.AliasSend(A, R, 1, TOKEN),
    c.Exit(A, B, Atom("boom")),
    c.Exit(A, B, Atom("boom"), TOKEN),
    c.Exit2(A, B, Atom("kill")),
    c.Exit2(A, B, Atom("kill"), TOKEN),
    c.GroupLeader(A, B),
    c.MonitorP(A, B, R),
    c.MonitorP(A, Atom("rex"), R),
    c.DemonitorP(A, B, R),
    c.MonitorPExit(B, A, R, Atom("normal")),
    c.MonitorPExit(Atom("rex"), A, R, Atom("noproc")),
    c.SpawnRequest(R, A, B, (Atom("m"), Atom("f"), 1), [Atom("monitor")], [1]),
    c.SpawnRequest(R, A, B, (Atom("m"), Atom("f"), 1), [], [1], TOKEN),
    c.SpawnReply(R, A, 2, B),
    c.SpawnReply(R, A, 0, Atom("notsup"), TOKEN),
    c.AltactSigSend(4, A, R, "msg"),
    c.AltactSigSend(6, A, R, "msg", TOKEN),
]


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
@pytest.mark.parametrize("payload_exits", [True, False])
def test_round_trip(message: Any, payload_exits: bool) -> None:
    control, payload = message.to_term(payload_exits=payload_exits)
    assert type(control[0]) is int
    assert c.from_term(control, payload) == message


def test_wire_shapes() -> None:
    assert c.RegSend(A, Atom("rex"), 1).to_term() == ((6, A, Atom(""), Atom("rex")), 1)
    assert c.Exit(A, B, 1).to_term(payload_exits=True) == ((24, A, B), 1)
    assert c.Exit(A, B, 1).to_term(payload_exits=False) == ((3, A, B, 1), c.NO_PAYLOAD)
    assert c.Exit2(A, B, 1, TOKEN).to_term(payload_exits=False)[0] == (18, A, B, TOKEN, 1)
    assert c.MonitorPExit(B, A, R, 1).to_term()[0] == (28, B, A, R)


@pytest.mark.parametrize(
    "control,payload",
    [
        ((1, A), c.NO_PAYLOAD),  # wrong arity
        ((1, A, B), "unexpected payload"),
        ((22, A, B), c.NO_PAYLOAD),  # missing payload
        ((99, A, B), c.NO_PAYLOAD),  # unknown op
        ((37, 1, A), "m"),
        ([1, A, B], c.NO_PAYLOAD),
        ((), c.NO_PAYLOAD),
        ((Atom("x"), A, B), c.NO_PAYLOAD),
    ],
)
def test_malformed(control: Any, payload: Any) -> None:
    with pytest.raises(ProtocolError):
        c.from_term(control, payload)


terms = st.recursive(
    st.integers(0, 40) | st.sampled_from([A, B, R, Atom("x"), Atom("")]),
    lambda children: st.tuples(children, children) | st.lists(children, max_size=3),
    max_leaves=6,
)


@given(
    st.tuples(st.integers(0, 40)).flatmap(
        lambda op: st.lists(terms, max_size=6).map(lambda rest: (*op, *rest))
    ),
    st.one_of(st.just(c.NO_PAYLOAD), terms),
)
def test_from_term_accepts_or_raises_protocol_error(control: tuple[Any, ...], payload: Any) -> None:
    try:
        message = c.from_term(control, payload)
    except ProtocolError:
        return
    except (TypeError, AttributeError) as exc:  # pragma: no cover - would be a bug
        raise AssertionError(f"undocumented {exc!r} for {control!r}") from exc
    assert message is not None
