"""Two Python nodes over loopback: both handshake roles of our own code, end to end."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from eb_nodeharness import LocalErlBackend, run, scaled

from erlbridge.asyncio import DownMessage, ExitMessage, Node, NodeEvent
from erlbridge.exceptions import AuthenticationError, Timeout
from erlbridge.term import Atom

pytestmark = pytest.mark.integration  # needs an EPMD (started by the erl backend)

_ids = itertools.count(1)


def pair(backend: LocalErlBackend, **b_kwargs: object) -> tuple[Node, Node]:
    n = next(_ids)
    a = Node(f"lpa{n}@127.0.0.1", cookie=backend.cookie, epmd_port=backend.epmd_port)
    b_kwargs.setdefault("cookie", backend.cookie)
    b = Node(f"lpb{n}@127.0.0.1", epmd_port=backend.epmd_port, **b_kwargs)  # type: ignore[arg-type]
    return a, b


def test_messages_links_monitors_between_python_nodes(erl_backend: LocalErlBackend) -> None:
    async def body() -> None:
        a, b = pair(erl_backend)
        async with a, b:
            events: asyncio.Queue[NodeEvent] = asyncio.Queue()
            b.monitor_nodes(events)
            server = b.process(name="server")
            client = a.process(trap_exit=True)
            assert await a.connect(b.name) == b.name
            assert (await asyncio.wait_for(events.get(), scaled(5))).kind == "nodeup"
            assert a.connected_nodes() == [b.name] and b.connected_nodes() == [a.name]
            client.send(("server", b.name), (client.pid, Atom("hello")))
            sender, msg = await server.receive(timeout=scaled(5))
            assert sender == client.pid and msg == Atom("hello")
            server.send(sender, Atom("welcome"))
            assert await client.receive(timeout=scaled(5)) == Atom("welcome")
            # gen_server-style call answered by a Python process
            call = asyncio.ensure_future(a.call(("server", b.name), Atom("ping"), timeout=5))
            label, frm, request = await server.receive(timeout=scaled(5))
            assert label == Atom("$gen_call") and request == Atom("ping")
            server.send(frm[0], (frm[1], Atom("pong")))
            assert await call == Atom("pong")
            # link + monitor across nodes
            await client.link(server.pid)
            ref = client.monitor(server.pid)
            await asyncio.sleep(0.05)
            server.close(Atom("bye"))
            got = {await client.receive(timeout=scaled(5)), await client.receive(timeout=scaled(5))}
            assert got == {
                ExitMessage(server.pid, Atom("bye")),
                DownMessage(ref, server.pid, Atom("bye")),
            }
            # closing b: a sees nodedown
            a_events: asyncio.Queue[NodeEvent] = asyncio.Queue()
            a.monitor_nodes(a_events)
            await b.close()
            event = await asyncio.wait_for(a_events.get(), scaled(5))
            assert (event.kind, event.node) == ("nodedown", b.name)

    run(body())


def test_python_node_executes_nothing(erl_backend: LocalErlBackend) -> None:
    async def body() -> None:
        a, b = pair(erl_backend)
        async with a, b:
            before = b.dropped
            with pytest.raises(Timeout):
                await a.rpc(b.name, "os", "cmd", ["touch /tmp/should-not-exist"], timeout=0.3)
            assert b.dropped == before + 1
            assert await a.ping(b.name) is True  # net_kernel is_auth is answered, nothing else

    run(body())


def test_wrong_cookie_between_python_nodes(erl_backend: LocalErlBackend) -> None:
    async def body() -> None:
        a, b = pair(erl_backend, cookie="other")
        async with a, b:
            with pytest.raises(AuthenticationError) as info:
                await a.connect(b.name, timeout=scaled(5))
            assert info.value.node == b.name
            assert a.connected_nodes() == [] and b.connected_nodes() == []

    run(body())


def test_simultaneous_connect(erl_backend: LocalErlBackend) -> None:
    async def body() -> None:
        a, b = pair(erl_backend)
        async with a, b:
            results = await asyncio.gather(a.connect(b.name), b.connect(a.name))
            assert results == [b.name, a.name]
            await asyncio.sleep(0.1)
            assert a.connected_nodes() == [b.name] and b.connected_nodes() == [a.name]
            p = b.process(name="inbox")
            a.send(("inbox", b.name), Atom("after_race"))
            assert await p.receive(timeout=scaled(5)) == Atom("after_race")

    run(body())
