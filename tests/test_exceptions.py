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
