"""The blocking facade: parity with the async API, and real use (plain and inside a loop)."""

from __future__ import annotations

import asyncio
import inspect
import queue
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "asyncio"))

import eb_nodeharness as harness
from eb_nodeharness import ErlNode, LocalErlBackend

import erlbridge
from erlbridge import asyncio as aio
from erlbridge import sync
from erlbridge.exceptions import AuthenticationError, RemoteException, Timeout
from erlbridge.term import Atom

# the session fixtures of tests/asyncio (conftest files only reach their own folder)
erl_backend = harness.erl_backend
erl_node = harness.erl_node


def _public(cls: type) -> dict[str, object]:
    return {
        name: member
        for name, member in inspect.getmembers(cls)
        if not name.startswith("_") and (inspect.isfunction(member) or isinstance(member, property))
    }


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"), [(aio.Node, sync.Node), (aio.Process, sync.Process)]
)
def test_every_public_method_has_a_blocking_twin(async_cls: type, sync_cls: type) -> None:
    async_api = _public(async_cls)
    sync_api = _public(sync_cls)
    skip = {
        "deliver",
        "down",
        "exit_signal",
        "on_down",
        "on_handshake_failed",
        "on_message",
        "on_name",
        "on_up",
    }
    missing = [name for name in async_api if name not in sync_api and name not in skip]
    assert missing == []
    for name, member in async_api.items():
        if name in skip or not inspect.isfunction(member):
            continue
        twin = sync_api[name]
        assert inspect.isfunction(twin), name
        assert not inspect.iscoroutinefunction(twin), name
        a = list(inspect.signature(member).parameters)
        s = list(inspect.signature(twin).parameters)
        assert a == s, f"{name}: {a} != {s}"
    # constructor parameters too (the sync one may add `portal`)
    a_init = list(inspect.signature(async_cls.__init__).parameters)
    s_init = [p for p in inspect.signature(sync_cls.__init__).parameters if p != "portal"]
    if async_cls is aio.Node:
        assert a_init == s_init


def test_top_level_export() -> None:
    assert erlbridge.Node is sync.Node


@pytest.mark.integration
def test_blocking_node_in_a_plain_script(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    with sync.Node(
        f"pysync1@{erl_backend.client_host}",
        cookie=erl_backend.cookie,
        epmd_port=erl_backend.epmd_port,
    ) as node:
        assert node.rpc(erl_node.name, "erlang", "node", []) == erl_node.name
        assert node.ping(erl_node.name) is True
        result = node.rpc(erl_node.name, "io", "format", ["hi ~p~n", [1]], capture_output=True)
        assert result.output == "hi 1\n"
        with pytest.raises(RemoteException):
            node.rpc(erl_node.name, "erlang", "error", [Atom("x")])
        p = node.process(name="sync_inbox")
        node.rpc(erl_node.name, "erlang", "send", [p.pid, Atom("hello")])
        assert p.receive(timeout=5) == Atom("hello")
        with pytest.raises(Timeout):
            p.receive(timeout=0.05)
        events: queue.Queue[object] = queue.Queue()
        node.monitor_nodes(events)
        outcomes = node.multicall([erl_node.name], "erlang", "node", [])
        assert outcomes[erl_node.name].value == erl_node.name
    bad = sync.Node(
        f"pysync2@{erl_backend.client_host}", cookie="wrong", epmd_port=erl_backend.epmd_port
    )
    with pytest.raises(AuthenticationError):
        bad.connect(erl_node.name)
    bad.close()


@pytest.mark.integration
def test_blocking_node_inside_a_running_loop(
    erl_backend: LocalErlBackend, erl_node: ErlNode
) -> None:
    """What a Jupyter cell does: blocking calls from a thread whose event loop is running."""

    async def cell() -> object:
        node = sync.Node(
            f"pysync3@{erl_backend.client_host}",
            cookie=erl_backend.cookie,
            epmd_port=erl_backend.epmd_port,
        )
        try:
            return node.rpc(erl_node.name, "erlang", "node", [])
        finally:
            node.close()

    assert asyncio.run(cell()) == erl_node.name
