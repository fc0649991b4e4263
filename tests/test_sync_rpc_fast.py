"""The blocking rpc's fast path (no task: prepare_rpc, and the caller's thread on a lent
socket) behaves exactly as the coroutine path: values, every error, deadlines, a lost
connection, threads, and the cases where it must step aside (not connected yet,
capture_output, erpc)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "asyncio"))

import eb_nodeharness as harness
from eb_nodeharness import ErlNode, LocalErlBackend

from erlbridge import sync
from erlbridge.asyncio import Node as AsyncNode
from erlbridge.exceptions import BadRpc, NodeDown, RemoteException, Timeout
from erlbridge.term import Atom

pytestmark = pytest.mark.integration

# the session fixtures of tests/asyncio (conftest files only reach their own folder)
erl_backend = harness.erl_backend
erl_node = harness.erl_node


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many blocking rpcs took the fast path and how many stepped aside."""
    counts = {"fast": 0, "aside": 0}
    original = AsyncNode.prepare_rpc

    def spy(self: AsyncNode, *args: Any, **kwargs: Any) -> Any:
        prepared = original(self, *args, **kwargs)
        counts["fast" if prepared is not None else "aside"] += 1
        return prepared

    monkeypatch.setattr(AsyncNode, "prepare_rpc", spy)
    return counts


@pytest.fixture
def node(erl_backend: LocalErlBackend) -> Iterator[sync.Node]:
    with sync.Node(
        f"pyfast{threading.get_ident() % 1000}@{erl_backend.client_host}",
        cookie=erl_backend.cookie,
        epmd_port=erl_backend.epmd_port,
    ) as n:
        yield n


def test_values_and_errors_match_the_coroutine_path(
    node: sync.Node, erl_node: ErlNode, counted: dict[str, int]
) -> None:
    target = erl_node.name
    assert node.rpc(target, "erlang", "node", []) == target  # connects: steps aside
    assert counted == {"fast": 0, "aside": 1}
    assert node.rpc(target, "lists", "seq", [1, 3]) == [1, 2, 3]
    assert node.rpc(target, "erlang", "node") == target  # args defaulted
    assert node.rpc(node=target, module="lists", function="reverse", args=[[1, 2]]) == [2, 1]
    with pytest.raises(RemoteException) as raised:
        node.rpc(target, "erlang", "error", [Atom("boom")])
    assert raised.value.reason == Atom("boom")
    with pytest.raises(RemoteException) as raised:
        node.rpc(target, "erlang", "exit", [Atom("bye")])
    assert raised.value.kind == "exit"
    with pytest.raises(BadRpc):  # a function returning {badrpc, R} reads as rex's own
        node.rpc(target, "erlang", "list_to_tuple", [[Atom("badrpc"), Atom("x")]])
    with pytest.raises(Timeout, match=r"rpc timer:sleep/1 on .* timed out after 0.2 s"):
        node.rpc(target, "timer", "sleep", [2000], timeout=0.2)
    assert counted["fast"] == 7
    # the connection still works after a timed-out call, and the late reply is dropped
    assert node.rpc(target, "erlang", "node", []) == target


def test_it_steps_aside_for_capture_and_bad_arguments(
    node: sync.Node, erl_node: ErlNode, counted: dict[str, int]
) -> None:
    target = erl_node.name
    node.rpc(target, "erlang", "node", [])
    before = dict(counted)
    result = node.rpc(target, "io", "format", ["x~n"], capture_output=True)
    assert result.output == "x\n" and counted == before  # never offered to prepare_rpc
    # args given as a one-shot iterable: read once, by the coroutine path
    assert node.rpc(target, "lists", "reverse", (x for x in [[1, 2]])) == [2, 1]  # type: ignore[arg-type]
    assert counted == before
    with pytest.raises(TypeError, match="unexpected keyword"):
        node.rpc(target, "erlang", "node", [], bogus=1)  # type: ignore[call-arg]
    with pytest.raises(TypeError):
        node.rpc(target)  # type: ignore[call-arg]  # the coroutine path raises it


def test_sixteen_threads_each_get_their_own_reply(node: sync.Node, erl_node: ErlNode) -> None:
    target = erl_node.name
    node.rpc(target, "erlang", "node", [])
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            for j in range(50):
                assert node.rpc(target, "erlang", "abs", [-(i * 1000 + j)]) == i * 1000 + j
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_a_lost_connection_fails_a_waiting_call_with_nodedown(
    node: sync.Node, erl_node: ErlNode
) -> None:
    target = erl_node.name
    node.rpc(target, "erlang", "node", [])
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            node.rpc(target, "timer", "sleep", [10_000], timeout=30)
        except BaseException as exc:
            outcome.append(exc)

    waiter = threading.Thread(target=call)
    waiter.start()
    # the blocked call is in flight on the fast path; drop the connection under it
    threading.Event().wait(0.3)
    node.disconnect(target)
    waiter.join(10)
    assert not waiter.is_alive()
    assert len(outcome) == 1 and isinstance(outcome[0], NodeDown)
    assert node.rpc(target, "erlang", "node", []) == target  # reconnects


def test_erpc_nodes_use_the_coroutine_path(
    erl_backend: LocalErlBackend, erl_node: ErlNode, counted: dict[str, int]
) -> None:
    with sync.Node(
        f"pyfasterpc@{erl_backend.client_host}",
        cookie=erl_backend.cookie,
        epmd_port=erl_backend.epmd_port,
        rpc_method="erpc",
    ) as n:
        n.rpc(erl_node.name, "erlang", "node", [])
        assert n.rpc(erl_node.name, "erlang", "node", []) == erl_node.name
    assert counted["fast"] == 0
