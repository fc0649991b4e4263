"""Pure parts of the asyncio layer: rpc reply interpretation, chardata flattening."""

from __future__ import annotations

import pytest

from erlbridge.asyncio.io_server import chardata_to_str
from erlbridge.asyncio.rpc import ErpcExit, interpret_erpc, interpret_reply
from erlbridge.exceptions import BadRpc, NodeDown, RemoteException
from erlbridge.term import Atom, ErlString, Reference

A = Atom
STACK = [(A("erlang"), A("error"), [A("boom")], [])]
TAG = Reference(A("py@h"), 5, (1, 2, 3))


def test_rex_replies() -> None:
    assert interpret_reply(A("ok"), "n") == A("ok")
    assert interpret_reply((A("badrpc_not"), 1), "n") == (A("badrpc_not"), 1)
    with pytest.raises(RemoteException) as info:
        interpret_reply((A("badrpc"), (A("EXIT"), (A("boom"), STACK))), "n@h")
    assert (info.value.kind, info.value.reason, info.value.stacktrace) == (
        "error",
        A("boom"),
        STACK,
    )
    assert info.value.node == "n@h"
    with pytest.raises(RemoteException) as info:
        interpret_reply((A("badrpc"), (A("EXIT"), A("bye"))), "n")
    assert (info.value.kind, info.value.reason) == ("exit", A("bye"))
    # an exit whose reason merely looks like {R, List} but whose list is no stacktrace
    with pytest.raises(RemoteException) as info:
        interpret_reply((A("badrpc"), (A("EXIT"), (A("shutdown"), [1, 2]))), "n")
    assert info.value.kind == "exit"
    with pytest.raises(BadRpc) as bad:
        interpret_reply((A("badrpc"), A("notsup")), "n")
    assert not isinstance(bad.value, RemoteException) and bad.value.reason == A("notsup")


def test_erpc_results() -> None:
    assert interpret_erpc(ErpcExit((TAG, A("return"), 42)), TAG, "n") == 42
    assert interpret_erpc(ErpcExit((TAG, A("throw"), A("t"))), TAG, "n") == A("t")
    with pytest.raises(RemoteException) as info:
        interpret_erpc(ErpcExit((TAG, A("error"), A("boom"), STACK)), TAG, "n")
    assert (info.value.kind, info.value.stacktrace) == ("error", STACK)
    with pytest.raises(RemoteException) as info:
        interpret_erpc(ErpcExit((TAG, A("exit"), A("bye"))), TAG, "n")
    assert info.value.kind == "exit"
    with pytest.raises(BadRpc):
        interpret_erpc(ErpcExit((TAG, A("error"), (A("erpc"), A("badarg")))), TAG, "n")
    with pytest.raises(BadRpc):
        interpret_erpc(ErpcExit(None, spawn_error=A("system_limit")), TAG, "n")
    with pytest.raises(NodeDown):
        interpret_erpc(ErpcExit(A("noconnection")), TAG, "n")
    with pytest.raises(RemoteException) as info:
        interpret_erpc(ErpcExit(A("killed")), TAG, "n")  # executor killed
    assert (info.value.kind, info.value.reason) == ("exit", A("killed"))
    other = Reference(A("py@h"), 5, (9, 9, 9))
    with pytest.raises(RemoteException):  # a result for another tag is not ours
        interpret_erpc(ErpcExit((other, A("return"), 1)), TAG, "n")


def test_chardata() -> None:
    assert chardata_to_str([104, [105, b" there"], ErlString("!"), []]) == "hi there!"
    assert chardata_to_str(b"caf\xc3\xa9") == "café"
    assert chardata_to_str(b"caf\xe9", "latin1") == "café"
    assert chardata_to_str([0x1F600]) == "\U0001f600"
    with pytest.raises(ValueError):
        chardata_to_str([A("atom")])
    with pytest.raises(ValueError):
        chardata_to_str([-1])
