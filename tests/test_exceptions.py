"""The error tree: builtin mix-ins, attributes kept as data, Erlang text in messages."""

from __future__ import annotations

import pytest

from erlbridge import exceptions as ex
from erlbridge.term import Atom, ErlString


def test_builtin_mixins_let_generic_handlers_work() -> None:
    assert issubclass(ex.DecodeError, ValueError)
    assert issubclass(ex.EncodeError, TypeError)
    assert issubclass(ex.NodeDown, ConnectionError)
    assert issubclass(ex.Timeout, TimeoutError)
    assert issubclass(ex.NoProcess, LookupError)
    assert issubclass(ex.ScriptError, ValueError)
    assert issubclass(ex.AuthenticationError, ex.ProtocolError)


def test_reasons_are_data_and_render_as_erlang_text() -> None:
    reason = (Atom("EXIT"), (Atom("undef"), [(Atom("m"), Atom("f"), [], [])]))
    err = ex.BadRpc(reason, node="a@h")
    assert err.reason == reason
    assert str(err) == "badrpc on a@h: {'EXIT',{undef,[{m,f,[],[]}]}}"
    assert str(ex.RemoteException("error", Atom("boom"), node="a@h")) == "error:boom on a@h"
    rh = ex.ReleaseHandlerError("install_release", (Atom("no_such_release"), ErlString("9")))
    assert str(rh) == 'release_handler:install_release failed: {no_such_release,"9"}'


def test_prose_and_non_terms_stay_readable() -> None:
    assert str(ex.NodeDown("a@h", "connection refused")) == "node a@h is down: connection refused"
    assert str(ex.NodeDown("a@h", OSError(111, "refused"))).endswith("[Errno 111] refused")
    assert str(ex.ProcessExited("<0.1.0>", {1, 2})).startswith("process <0.1.0> exited: {")


def test_a_failing_formatter_never_breaks_a_message(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(term: object) -> str:
        raise RuntimeError("formatter bug")

    monkeypatch.setattr(ex, "_term_text", broken)
    assert str(ex.BadRpc(Atom("x"))) == "badrpc: x"


def test_messages_are_bounded_whatever_the_reason() -> None:
    huge = [list(range(1000)) for _ in range(1000)]
    text = str(ex.BadRpc((Atom("EXIT"), huge)))
    assert len(text) <= len("badrpc: ") + ex.TEXT_LIMIT + 3 and text.endswith("...")
    assert text.startswith("badrpc: {'EXIT',[[0,1,2,")
    assert ex.bounded_text(b"x" * 10**7).startswith('<<"xxx')
    assert len(ex.bounded_text(b"x" * 10**7)) == ex.TEXT_LIMIT + 3
    assert ex.bounded_text(10**100000).endswith("...")  # never converted in full
    assert ex.bounded_text((1, 2 ** 64)) == "{1,18446744073709551616}"  # small: unchanged
    assert ex.bounded_text("prose " * 1000, 10) == "prose pros..."
    nested: list[object] = []
    for _ in range(5000):
        nested = [nested]
    assert ex.bounded_text(nested).endswith("...")


def test_unreachable_is_a_nodedown_and_keeps_the_detail() -> None:
    detail = ex.Timeout("EPMD port_please for 'a'", 5.0)
    err = ex.NodeUnreachable.of("a@h", detail)
    assert isinstance(err, ex.NodeDown) and isinstance(err, ex.Timeout)
    assert err.detail is detail and err.timeout == 5.0 and err.node == "a@h"
    assert str(err) == "cannot reach node a@h: EPMD port_please for 'a' timed out after 5.0 s"
    refused = ex.NodeUnreachable.of("a@h", ConnectionRefusedError(111, "refused"))
    assert isinstance(refused, ConnectionRefusedError) and isinstance(refused.detail, OSError)
    assert refused.detail.errno == 111
    assert isinstance(ex.NodeUnreachable.of("a@h", ex.NodeNotFound("no")), ex.NodeNotFound)
    assert str(ex.NodeUnreachable("a@h", "gone")) == "cannot reach node a@h: gone"
