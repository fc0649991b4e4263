"""The blocking facade: parity with the async API, and real use (plain and inside a loop)."""

from __future__ import annotations

import asyncio
import inspect
import queue
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "asyncio"))
sys.path.insert(0, str(Path(__file__).parent))

import eb_nodeharness as harness
import eb_parity
from eb_nodeharness import ErlNode, LocalErlBackend

import erlbridge
from erlbridge import asyncio as aio
from erlbridge import sync
from erlbridge._blocking import Twin, awaits, init_from
from erlbridge._portal import Portal, shared_portal
from erlbridge.exceptions import AuthenticationError, InvalidState, RemoteException, Timeout
from erlbridge.term import Atom, Pid, Reference

# the session fixtures of tests/asyncio (conftest files only reach their own folder)
erl_backend = harness.erl_backend
erl_node = harness.erl_node


TRANSLATE = {aio.Node: sync.Node, aio.Process: sync.Process, asyncio.Queue: queue.Queue}
# endpoint callbacks the node calls itself: not part of the blocking API
CALLBACKS = {
    "deliver",
    "down",
    "exit_signal",
    "on_down",
    "on_handshake_failed",
    "on_message",
    "on_name",
    "on_up",
    "prepare_rpc",  # the blocking rpc's own fast path (its twin is rpc)
}


@pytest.mark.parametrize(
    ("async_cls", "sync_cls"), [(aio.Node, sync.Node), (aio.Process, sync.Process)]
)
def test_every_public_method_has_a_blocking_twin(async_cls: type, sync_cls: type) -> None:
    """Names, parameter kinds, defaults, annotations and docstrings all match."""
    found = eb_parity.problems(
        async_cls,
        sync_cls,
        translate=TRANSLATE,
        skip=CALLBACKS,
        own_docs={"monitor_nodes"},  # it also takes a queue.Queue, and says so
        init_extra={"portal"},
    )
    if sync_cls is sync.Process:  # built by Node.process, not from asyncio arguments
        found = [p for p in found if not p.startswith("__init__")]
    assert found == []


def test_the_parity_check_catches_drift() -> None:
    """A hand-written copy that drifted in each way the check covers is reported."""

    class Drifted(sync.Node):
        def rpc(  # type: ignore[override]
            self,
            node: str,
            module: str,
            function: str,
            args: Sequence[Any] = (),
            *,
            timeout: float | None = 30.0,
            capture_output: bool = False,
        ) -> Any:
            return None

        def ping(self, node: str, *, timeout: int | None = None) -> bool:  # type: ignore[override]
            """A docstring of its own."""
            return True

        def connect(self, node: str) -> Atom:  # type: ignore[override]
            return Atom(node)

        def send(self, dest: Any, message: Any, /) -> None:  # type: ignore[override]
            pass

        def whereis(self, name: str) -> Reference:  # type: ignore[override]
            raise NotImplementedError

        def __init__(self, name: str, *, cookie: str | None = None) -> None:
            pass

    found = eb_parity.problems(
        aio.Node, Drifted, translate=TRANSLATE, skip=CALLBACKS, own_docs={"monitor_nodes"}
    )
    init = [p for p in found if p.startswith("__init__")]
    assert len(init) == 1 and init[0].endswith("!= ['self', 'name', 'cookie']")
    assert sorted(p for p in found if not p.startswith("__init__")) == [
        "connect: docstring differs",
        "connect: parameters ['self', 'node', 'timeout'] != ['self', 'node']",
        "ping(timeout): annotation float | None != int | None",
        "ping: docstring differs",
        "rpc(timeout): default 60.0 != 30.0",
        "rpc: docstring differs",
        "send(dest): kind positional or keyword != positional-only",
        "send(message): kind positional or keyword != positional-only",
        "send(self): kind positional or keyword != positional-only",
        "send: docstring differs",
        f"whereis: returns {Pid | None!r} != {Reference!r}",
    ]

    class Missing:  # a blocking class without the twin at all
        pass

    assert "make_ref: no blocking twin" in eb_parity.problems(
        aio.Node, Missing, translate=TRANSLATE, skip=CALLBACKS
    )


def test_a_parameter_added_to_the_asyncio_api_reaches_the_blocking_one() -> None:
    """The mechanism copies, it does not restate: a new asyncio parameter needs no edit."""

    class AsyncThing:
        def __init__(self, name: str, *, size: int = 3, new_option: float = 0.5) -> None:
            self.name, self.size, self.new_option = name, size, new_option

        async def work(self, x: int, *, timeout: float | None = 9.0, added: bool = True) -> str:
            """Does the work."""
            return f"{x} {timeout} {added} {self.new_option}"

    class BlockingThing(Twin):
        @init_from(AsyncThing.__init__)
        def __init__(self, *args: Any, portal: Portal, **kwargs: Any) -> None:
            self._inner = AsyncThing(*args, **kwargs)
            self._portal = portal

        work = awaits(AsyncThing.work)

    assert eb_parity.problems(
        AsyncThing, BlockingThing, translate={}, init_extra={"portal"}
    ) == []
    assert list(inspect.signature(BlockingThing).parameters) == [
        "name", "size", "new_option", "portal"
    ]
    assert inspect.signature(BlockingThing.work).parameters["added"].default is True
    assert BlockingThing.work.__doc__ == "Does the work."
    assert BlockingThing.work.__qualname__.endswith("BlockingThing.work")
    with Portal() as portal:
        thing = BlockingThing("t", new_option=2.0, portal=portal)
        assert thing.work(1, added=False) == "1 9.0 False 2.0"


def _listen_free(name: str, portal: Portal | None = None) -> sync.Node:
    return sync.Node(f"{name}@127.0.0.1", cookie="c", listen=False, portal=portal)


def test_the_loop_runs_while_a_blocking_node_is_open() -> None:
    portal = Portal("eb-test-loop")
    first, second = _listen_free("lt1", portal), _listen_free("lt2", portal)
    assert not portal.running  # nothing needed the loop yet
    first.start()
    thread = portal._thread
    assert portal.running and thread is not None and thread.is_alive()
    second.start()
    first.close()
    assert portal.running  # `second` still uses it
    assert second.make_ref().node == second.name
    second.close()
    assert not portal.running
    thread.join(10)
    assert not thread.is_alive()
    second.close()  # idempotent
    with pytest.raises(InvalidState, match="closed"):
        second.rpc("x@127.0.0.1", "erlang", "node", [])
    with pytest.raises(InvalidState, match="stopped"):
        second.connected_nodes()
    # a new node starts a new loop on the same portal
    with _listen_free("lt3", portal) as third:
        assert third.registered() == [Atom("net_kernel")]
        assert portal.running
    assert not portal.running


def test_a_portal_held_by_with_outlives_its_nodes_and_stops_at_exit() -> None:
    with Portal("eb-test-with") as portal:
        with _listen_free("lw1", portal) as node:
            node.make_ref()
        assert portal.running  # still held by the with block
        thread = portal._thread
    assert not portal.running
    assert thread is not None
    thread.join(10)
    assert not thread.is_alive()


def test_stopping_cancels_what_is_left_on_the_loop() -> None:
    portal = Portal("eb-test-cancel")
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            cancelled.set()

    with portal:
        portal.run(lambda: asyncio.ensure_future(forever()))
    assert cancelled.wait(10)


def test_a_node_that_fails_to_start_in_with_lets_go_of_the_portal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ERLANG_COOKIE", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.erlang.cookie: start() refuses
    portal = Portal("eb-test-failed-start")
    node = sync.Node("lf1@127.0.0.1", listen=False, portal=portal)
    with pytest.raises(InvalidState, match="cookie"), node:
        raise AssertionError("must not get here")
    assert not portal.running and portal._leases == 0


def test_portal_misuse_is_a_typed_error() -> None:
    portal = Portal("eb-test-misuse")
    with pytest.raises(InvalidState):
        portal.release()

    async def never() -> None:
        raise AssertionError("must not run")

    coro = never()
    with pytest.raises(InvalidState, match="stopped"):
        portal.call(coro)
    assert coro.cr_frame is None  # closed, not left un-awaited
    with portal:

        async def inside() -> None:
            portal.call(asyncio.sleep(0))

        with pytest.raises(InvalidState, match="inside the erlbridge loop thread"):
            portal.call(inside())


def test_the_shared_portal_stops_when_the_last_default_node_closes() -> None:
    shared = shared_portal()
    held = shared._leases  # nodes other tests left open (none in a targeted run)
    with _listen_free("ls1") as node:
        node.make_ref()
        assert node._portal is shared and shared.running and shared._leases == held + 1
    assert shared._leases == held
    assert shared.running == (held > 0)


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
