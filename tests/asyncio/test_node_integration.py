"""The Python node against real OTP nodes (local ``erl``; see conftest for the backend)."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from typing import Any

import pytest
from eb_nodeharness import ErlNode, LocalErlBackend, load_helpers, run, scaled

from erlbridge.asyncio import DownMessage, ExitMessage, Node, NodeEvent, RpcResult
from erlbridge.asyncio.epmd import port_please
from erlbridge.exceptions import (
    AuthenticationError,
    BadRpc,
    NodeDown,
    NodeNotFound,
    RemoteException,
    Timeout,
)
from erlbridge.term import Atom, Pid

pytestmark = pytest.mark.integration

_names = itertools.count(1)


def make_node(backend: LocalErlBackend, **kwargs: Any) -> Node:
    kwargs.setdefault("cookie", backend.cookie)
    return Node(f"py{next(_names)}@{backend.client_host}", epmd_port=backend.epmd_port, **kwargs)


@pytest.mark.parametrize("rpc_method", ["rex", "erpc"])
def test_rpc_returns_value(
    erl_backend: LocalErlBackend, erl_node: ErlNode, rpc_method: str
) -> None:
    async def body() -> None:
        async with make_node(erl_backend, rpc_method=rpc_method) as node:
            assert await node.rpc(erl_node.name, "erlang", "node", []) == erl_node.name
            release = await node.rpc(erl_node.name, "erlang", "system_info", [Atom("otp_release")])
            assert release == erl_backend.otp  # the backend's OTP really is the target
            assert await node.rpc(erl_node.name, "lists", "seq", [1, 5]) == [1, 2, 3, 4, 5]
            assert await node.ping(erl_node.name) is True
            assert erl_node.name in node.connected_nodes()
            # we are hidden: visible in nodes(hidden), not in nodes()
            assert node.name in await node.rpc(erl_node.name, "erlang", "nodes", [Atom("hidden")])
            assert node.name not in await node.rpc(erl_node.name, "erlang", "nodes", [])

    run(body())


def test_visible_node(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend, hidden=False) as node:
            assert node.name in await node.rpc(erl_node.name, "erlang", "nodes", [])

    run(body())


def test_connect_by_host_port_without_epmd(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        alive, host = erl_node.name.split("@")
        info = await port_please(host, alive, epmd_port=erl_backend.epmd_port)
        port = info.port
        async with make_node(erl_backend, listen=False) as node:
            full = await node.connect(f"{erl_node.name}:{port}")
            assert full == erl_node.name
            assert await node.rpc(f"{erl_node.name}:{port}", "erlang", "node", []) == erl_node.name

    run(body())


def test_unknown_node_and_ping_pang(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend) as node:
            with pytest.raises(NodeNotFound):
                await node.connect("nosuch@127.0.0.1")
            assert await node.ping("nosuch@127.0.0.1") is False
            outcomes = await node.multicall(
                [erl_node.name, "nosuch@127.0.0.1"], "erlang", "node", [], timeout=5
            )
            assert outcomes[erl_node.name].value == erl_node.name
            assert isinstance(outcomes[Atom("nosuch@127.0.0.1")].error, NodeNotFound)

    run(body())


def test_wrong_cookie_is_authentication_error(
    erl_backend: LocalErlBackend, erl_node: ErlNode
) -> None:
    async def body() -> None:
        async with make_node(erl_backend, cookie="not-the-cookie") as node:
            start = time.monotonic()
            with pytest.raises(AuthenticationError) as info:
                await node.connect(erl_node.name, timeout=scaled(10))
            assert time.monotonic() - start < scaled(5)
            assert info.value.node == erl_node.name
            assert "not-the-cookie" not in str(info.value)
            assert await node.ping(erl_node.name) is False

    run(body())


def test_incoming_connection_and_send_to_name(
    erl_backend: LocalErlBackend, erl_node: ErlNode
) -> None:
    """The Erlang node dials us (we are the acceptor) and sends to a registered name."""

    async def body() -> None:
        async with make_node(erl_backend) as target, make_node(erl_backend) as helper:
            await load_helpers(helper, erl_node.name, erl_backend.beam_for(erl_node))
            events: asyncio.Queue[NodeEvent] = asyncio.Queue()
            target.monitor_nodes(events)
            inbox = target.process(name="inbox")
            ok = await helper.rpc(
                erl_node.name, "eb_test", "send_after_connect", [target.name, Atom("inbox")]
            )
            assert ok == Atom("ok")
            assert await inbox.receive(timeout=scaled(5)) == (Atom("hello_from"), erl_node.name)
            event = await asyncio.wait_for(events.get(), scaled(5))
            assert (event.kind, event.node) == ("nodeup", erl_node.name)
            # the connection they made carries our calls too
            assert await target.rpc(erl_node.name, "erlang", "node", []) == erl_node.name

    run(body())


def test_send_receive_both_ways(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            echo = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("echo"), []]
            )
            assert isinstance(echo, Pid)
            p = node.process()
            p.send(echo, (p.pid, {b"k": [1, 2.5, b"bin"]}))
            assert await p.receive(timeout=scaled(5)) == (Atom("echo"), {b"k": [1, 2.5, b"bin"]})
            # by registered name on the Erlang side
            await node.rpc(erl_node.name, "eb_test", "start_echo", [Atom("eb_echo")])
            p.send(("eb_echo", erl_node.name), (p.pid, Atom("ping")))
            assert await p.receive(timeout=scaled(5)) == (Atom("echo"), Atom("ping"))
            # selective receive keeps other messages in order
            await node.rpc(erl_node.name, "erlang", "send", [p.pid, Atom("first")])
            await node.rpc(erl_node.name, "erlang", "send", [p.pid, Atom("second")])
            assert await p.receive(match=lambda m: m == "second", timeout=scaled(5)) == "second"
            assert await p.receive(timeout=scaled(5)) == "first"
            with pytest.raises(Timeout):
                await p.receive(timeout=0.05)
            # a message to a pid of ours that does not exist is dropped and counted
            before = node.dropped
            ghost = Pid(node.name, 999_999, 0, node.creation)
            await node.rpc(erl_node.name, "erlang", "send", [ghost, Atom("lost")])
            await node.rpc(erl_node.name, "erlang", "node", [])  # ordered after the send
            assert node.dropped == before + 1

    run(body())


def test_links_and_exits_both_ways(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            # Python links to Erlang; the Erlang process is killed -> EXIT (trapped)
            p = node.process(trap_exit=True)
            victim = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            await p.link(victim)
            assert await node.rpc(erl_node.name, "erlang", "exit", [victim, Atom("kill")]) is True
            msg = await p.receive(timeout=scaled(5))
            assert msg == ExitMessage(victim, Atom("killed"))

            # Erlang links to a Python process; the Python process exits -> Erlang sees it
            reporter = node.process()
            target = node.process()
            watcher = await node.rpc(
                erl_node.name, "eb_test", "link_and_report", [target.pid, reporter.pid]
            )
            target.close("bye")
            assert await reporter.receive(timeout=scaled(5)) == (
                Atom("linked_exit"),
                watcher,
                Atom("bye"),
            )

            # an untrapped Python process dies from an exit signal of a linked process
            q = node.process()
            victim2 = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            await q.link(victim2)
            await node.rpc(erl_node.name, "erlang", "exit", [victim2, Atom("boom")])
            for _ in range(50):
                if not q.alive:
                    break
                await asyncio.sleep(0.02)
            assert q.exit_reason == Atom("boom")

            # unlink (UNLINK_ID handshake): a later exit no longer reaches us
            r = node.process(trap_exit=True)
            victim3 = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            await r.link(victim3)
            await r.unlink(victim3)
            await node.rpc(erl_node.name, "erlang", "exit", [victim3, Atom("kill")])
            with pytest.raises(Timeout):
                await r.receive(timeout=0.3)
            links = await node.rpc(
                erl_node.name, "erlang", "process_info", [victim2, Atom("links")]
            )
            assert links == Atom("undefined")  # victim2 is dead

            # exit/2 from Python kills an Erlang process; from Erlang, a trapping one gets EXIT
            victim4 = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            p.exit(victim4, Atom("kill"))
            await asyncio.sleep(0.1)
            assert await node.rpc(erl_node.name, "erlang", "is_process_alive", [victim4]) is False
            await node.rpc(erl_node.name, "erlang", "exit", [p.pid, Atom("go_away")])
            msg = await p.receive(timeout=scaled(5))
            assert isinstance(msg, ExitMessage) and msg.reason == Atom("go_away")

    run(body())


def test_monitors_both_ways(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            p = node.process()
            victim = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            ref = p.monitor(victim)
            await node.rpc(erl_node.name, "erlang", "exit", [victim, Atom("kill")])
            assert await p.receive(timeout=scaled(5)) == DownMessage(ref, victim, Atom("killed"))
            # by name, for a name that does not exist: immediate noproc
            ref2 = p.monitor(("no_such_name", erl_node.name))
            down = await p.receive(timeout=scaled(5))
            assert down == DownMessage(ref2, (Atom("no_such_name"), erl_node.name), Atom("noproc"))
            # demonitor: no DOWN afterwards
            victim2 = await node.rpc(
                erl_node.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            ref3 = p.monitor(victim2)
            p.demonitor(ref3)
            await node.rpc(erl_node.name, "erlang", "exit", [victim2, Atom("kill")])
            with pytest.raises(Timeout):
                await p.receive(timeout=0.3)
            # Erlang monitors a Python process
            reporter = node.process()
            target = node.process()
            watcher = await node.rpc(
                erl_node.name, "eb_test", "monitor_and_report", [target.pid, reporter.pid]
            )
            target.close(Atom("done"))
            assert await reporter.receive(timeout=scaled(5)) == (
                Atom("monitor_down"),
                watcher,
                Atom("done"),
            )
            # ... and a Python process that does not exist: noproc
            gone = node.process()
            gone.close()
            watcher2 = await node.rpc(
                erl_node.name, "eb_test", "monitor_and_report", [gone.pid, reporter.pid]
            )
            assert await reporter.receive(timeout=scaled(5)) == (
                Atom("monitor_down"),
                watcher2,
                Atom("noproc"),
            )

    run(body())


@pytest.mark.parametrize("rpc_method", ["rex", "erpc"])
def test_rpc_errors(erl_backend: LocalErlBackend, erl_node: ErlNode, rpc_method: str) -> None:
    async def body() -> None:
        async with make_node(erl_backend, rpc_method=rpc_method) as node:
            with pytest.raises(RemoteException) as info:
                await node.rpc(erl_node.name, "erlang", "error", [Atom("boom")])
            assert (info.value.kind, info.value.reason) == ("error", Atom("boom"))
            assert info.value.stacktrace and info.value.stacktrace[0][:2] == (
                Atom("erlang"),
                Atom("error"),
            )
            with pytest.raises(RemoteException) as info:
                await node.rpc(erl_node.name, "nomod", "nofun", [])
            assert info.value.reason == Atom("undef")
            with pytest.raises(RemoteException) as info:
                await node.rpc(erl_node.name, "erlang", "exit", [Atom("bye")])
            assert (info.value.kind, info.value.reason) == ("exit", Atom("bye"))
            assert isinstance(info.value, BadRpc)
            # a thrown value comes back as a value (rex cannot tell)
            assert await node.rpc(erl_node.name, "erlang", "throw", [Atom("thrown")]) == Atom(
                "thrown"
            )

    run(body())


@pytest.mark.parametrize("rpc_method", ["rex", "erpc"])
def test_rpc_timeout_and_recovery(
    erl_backend: LocalErlBackend, erl_node: ErlNode, rpc_method: str
) -> None:
    async def body() -> None:
        async with make_node(erl_backend, rpc_method=rpc_method) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            start = time.monotonic()
            with pytest.raises(Timeout) as info:
                await node.rpc(
                    erl_node.name, "eb_test", "sleep_then", [1000, Atom("late")], timeout=0.2
                )
            assert time.monotonic() - start < scaled(0.9)
            assert info.value.timeout == 0.2
            await asyncio.sleep(1.0)  # the late reply arrives and is dropped
            assert await node.rpc(erl_node.name, "erlang", "node", []) == erl_node.name

    run(body())


def test_rpc_output(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    printed: list[tuple[Pid, str]] = []

    async def body() -> None:
        async with make_node(
            erl_backend, output=lambda pid, text: printed.append((pid, text))
        ) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            result = await node.rpc(
                erl_node.name, "eb_test", "print", [{"a": (1, Atom("b"))}], capture_output=True
            )
            assert isinstance(result, RpcResult)
            assert result.value == Atom("done")
            assert result.output == 'value: #{<<"a">> => {1,b}}\nbin line\n'
            # without capture: our group leader answers (format evaluated remotely)
            assert await node.rpc(erl_node.name, "eb_test", "print", [42]) == Atom("done")
            assert "".join(text for _, text in printed) == "value: 42\nbin line\n"
            # input requests get eof, never a hang
            assert await node.rpc(erl_node.name, "io", "get_line", ["prompt> "], timeout=5) == Atom(
                "eof"
            )
            # concurrent captures stay apart
            results = await asyncio.gather(
                *(
                    node.rpc(erl_node.name, "eb_test", "print", [i], capture_output=True)
                    for i in range(20)
                )
            )
            assert [r.output for r in results] == [f"value: {i}\nbin line\n" for i in range(20)]

    run(body())


def test_cast(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend) as node:
            p = node.process(name="cast_target")
            node.cast(
                erl_node.name, "erlang", "send", [(Atom("cast_target"), node.name), Atom("casted")]
            )
            assert await p.receive(timeout=scaled(5)) == Atom("casted")

    run(body())


@pytest.mark.parametrize("rpc_method", ["rex", "erpc"])
def test_thousand_concurrent_rpcs(
    erl_backend: LocalErlBackend, erl_node: ErlNode, rpc_method: str
) -> None:
    async def body() -> None:
        async with make_node(erl_backend, rpc_method=rpc_method) as node:
            results = await asyncio.gather(
                *(node.rpc(erl_node.name, "erlang", "abs", [-i], timeout=30) for i in range(1000))
            )
            assert results == list(range(1000))

    run(body())


@pytest.mark.parametrize("rpc_method", ["rex", "erpc"])
def test_ten_megabyte_messages(
    erl_backend: LocalErlBackend, erl_node: ErlNode, rpc_method: str
) -> None:
    async def body() -> None:
        async with make_node(erl_backend, rpc_method=rpc_method) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            data = await node.rpc(erl_node.name, "eb_test", "big_binary", [10_000_000], timeout=30)
            assert data == b"x" * 10_000_000
            # and the other way round
            size = await node.rpc(
                erl_node.name, "erlang", "byte_size", [b"y" * 10_000_000], timeout=30
            )
            assert size == 10_000_000

    run(body())


def test_drain_is_flow_control_for_sends(erl_backend: LocalErlBackend) -> None:
    """A stopped reader: sends pile up in our buffer, drain() waits (Timeout), and returns
    once the reader reads again; every message arrives."""
    slow = erl_backend.start_node("slowreader", net_ticktime=60)

    async def body() -> None:
        async with make_node(erl_backend) as node:
            proc = node.process()
            await node.drain(slow.name, timeout=5)  # no connection yet: nothing to wait for
            await load_helpers(node, slow.name, erl_backend.beam_for(slow))
            sink = await node.rpc(slow.name, "eb_test", "start_sink", [], timeout=10)
            assert isinstance(sink, Pid)
            slow.pause()
            try:
                blob = b"z" * 1_000_000
                for _ in range(40):
                    proc.send(sink, blob)
                with pytest.raises(Timeout):
                    await node.drain(slow.name, timeout=scaled(1))
            finally:
                slow.resume()
            await node.drain(slow.name, timeout=scaled(30))
            await node.drain(timeout=scaled(30))  # every node
            got = await node.rpc(slow.name, "eb_test", "sink_count", [sink], timeout=30)
            assert got == 40

    try:
        run(body())
    finally:
        slow.stop()


def test_max_message_size_drops_connection(erl_backend: LocalErlBackend, erl_node: ErlNode) -> None:
    async def body() -> None:
        async with make_node(erl_backend, max_message_size=1_000_000) as node:
            await load_helpers(node, erl_node.name, erl_backend.beam_for(erl_node))
            with pytest.raises(NodeDown):
                await node.rpc(erl_node.name, "eb_test", "big_binary", [2_000_000], timeout=10)

    run(body())


@pytest.mark.parametrize("rpc_method", ["rex", "erpc"])
def test_sigkill_gives_nodedown(erl_backend: LocalErlBackend, rpc_method: str) -> None:
    victim = erl_backend.start_node(f"killed{rpc_method}", net_ticktime=4)

    async def body() -> None:
        async with make_node(erl_backend, net_ticktime=4, rpc_method=rpc_method) as node:
            await load_helpers(node, victim.name, erl_backend.beam_for(victim))
            events: asyncio.Queue[NodeEvent] = asyncio.Queue()
            node.monitor_nodes(events)
            p = node.process()
            pid = await node.rpc(
                victim.name, "erlang", "spawn", [Atom("eb_test"), Atom("wait_forever"), []]
            )
            ref = p.monitor(pid)
            pending = asyncio.ensure_future(
                node.rpc(victim.name, "eb_test", "sleep_then", [60_000, Atom("never")], timeout=60)
            )
            await asyncio.sleep(0.2)
            start = time.monotonic()
            victim.kill()
            event = await asyncio.wait_for(events.get(), scaled(6))
            assert (event.kind, event.node) == ("nodedown", victim.name)
            assert time.monotonic() - start < scaled(5)  # within the tick budget (4 s)
            with pytest.raises(NodeDown):
                await pending
            assert await p.receive(timeout=scaled(2)) == DownMessage(ref, pid, Atom("noconnection"))
            assert victim.name not in node.connected_nodes()

    run(body())


def test_sigstop_until_ticks_expire(erl_backend: LocalErlBackend) -> None:
    frozen = erl_backend.start_node("frozen", net_ticktime=60)

    async def body() -> None:
        async with make_node(erl_backend, net_ticktime=2) as node:
            assert await node.rpc(frozen.name, "erlang", "node", []) == frozen.name
            events: asyncio.Queue[NodeEvent] = asyncio.Queue()
            node.monitor_nodes(events)
            frozen.pause()
            try:
                start = time.monotonic()
                event = await asyncio.wait_for(events.get(), scaled(10))
                elapsed = time.monotonic() - start
                assert (event.kind, event.node, event.reason) == (
                    "nodedown",
                    frozen.name,
                    Atom("net_tick_timeout"),
                )
                # OTP rule: silent for 4 intervals of net_ticktime/4 (about 2 s here)
                assert scaled(1.0) < elapsed < scaled(4.0)
            finally:
                frozen.resume()
            # after it resumes we can connect again
            assert await node.rpc(frozen.name, "erlang", "node", [], timeout=10) == frozen.name

    try:
        run(body())
    finally:
        frozen.stop()


def test_ticks_keep_idle_connection_alive(erl_backend: LocalErlBackend) -> None:
    """With a 2 s net_ticktime on the Erlang side, an idle connection must survive (we
    answer and send ticks)."""
    fast = erl_backend.start_node("fastticks", net_ticktime=2)

    async def body() -> None:
        async with make_node(erl_backend, net_ticktime=60) as node:
            await node.connect(fast.name)
            events: list[NodeEvent] = []
            node.monitor_nodes(events.append)
            await asyncio.sleep(scaled(5))
            assert events == []
            assert await node.rpc(fast.name, "erlang", "node", []) == fast.name

    try:
        run(body())
    finally:
        fast.stop()


# Short names need the target host's short name to resolve from here: only the local
# backend has that (containers are reached by IP), so the case is generated for it alone.
@pytest.mark.parametrize("erl_backend", ["local"], indirect=True)
def test_short_names(erl_backend: LocalErlBackend) -> None:
    short = erl_backend.start_node("shorty", short=True)

    async def body() -> None:
        # no "@host": the short host name is appended, as erl -sname does
        async with Node(
            "pyshort", cookie=erl_backend.cookie, epmd_port=erl_backend.epmd_port
        ) as node:
            assert node.name.split("@")[1] == short.name.split("@")[1]
            assert await node.rpc(short.name, "erlang", "node", []) == short.name
            assert node.name in await node.rpc(short.name, "erlang", "nodes", [Atom("hidden")])

    try:
        run(body())
    finally:
        short.stop()


def test_cookie_never_in_logs_or_reprs(
    erl_backend: LocalErlBackend, erl_node: ErlNode, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "wrong-" + erl_backend.cookie[::-1]

    async def body() -> None:
        async with make_node(erl_backend, cookie=secret) as node:
            with pytest.raises(AuthenticationError) as info:
                await node.connect(erl_node.name)
            texts = [repr(node), str(node), repr(info.value), str(info.value)]
            assert not any(secret in t for t in texts)

    with caplog.at_level(logging.DEBUG):
        run(body())
    assert caplog.records  # something was logged at DEBUG...
    assert not any(secret in r.getMessage() for r in caplog.records)  # ...never the cookie
    assert erl_backend.cookie not in caplog.text


def test_erlang_rpc_to_us_is_refused_not_hung(
    erl_backend: LocalErlBackend, erl_node: ErlNode
) -> None:
    """rpc:call from the Erlang node to the Python node: we never run code, and the caller
    gets {badrpc, notsup} at once (SPAWN_REPLY notsup) instead of hanging."""

    async def body() -> None:
        async with make_node(erl_backend) as node:
            start = time.monotonic()
            with pytest.raises(BadRpc) as info:
                await node.rpc(
                    erl_node.name, "rpc", "call", [node.name, Atom("os"), Atom("getpid"), [], 5000]
                )
            assert info.value.reason == Atom("notsup")  # the inner {badrpc, notsup}
            assert time.monotonic() - start < scaled(3)
            assert await node.rpc(erl_node.name, "net_adm", "ping", [node.name]) == Atom("pong")

    run(body())
