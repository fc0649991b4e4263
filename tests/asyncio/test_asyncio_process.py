"""Python processes on one node (no network: listen=False needs no EPMD)."""

from __future__ import annotations

import asyncio

import pytest

from erlbridge.asyncio import DownMessage, ExitMessage, Node
from erlbridge.exceptions import InvalidState, NoProcess, ProcessExited, Timeout
from erlbridge.term import Atom, Pid


def run(coro: object) -> None:
    asyncio.run(asyncio.wait_for(coro, 10))  # type: ignore[arg-type]


def local_node() -> Node:
    return Node("local@127.0.0.1", cookie="c", listen=False)


def test_mailbox_selective_receive_and_names() -> None:
    async def body() -> None:
        async with local_node() as node:
            assert node.creation >= 4
            a = node.process(name="a")
            b = node.process()
            assert isinstance(a.pid, Pid) and a.pid.node == node.name
            assert node.whereis("a") == a.pid and Atom("a") in node.registered()
            for i in range(5):
                b.send("a", i)
            assert await a.receive(match=lambda m: m == 3) == 3
            assert [await a.receive(timeout=1) for _ in range(4)] == [0, 1, 2, 4]
            with pytest.raises(Timeout):
                await a.receive(timeout=0.01)
            # a waiting receive is woken by a matching message only
            waiter = asyncio.ensure_future(a.receive(match=lambda m: m == "yes", timeout=2))
            await asyncio.sleep(0)
            b.send(a.pid, "no")
            b.send(a.pid, "yes")
            assert await waiter == "yes"
            assert a.receive_nowait() == "no"
            # aliases
            ref = node.alias(a)
            b.send(ref, "via alias")
            assert await a.receive(timeout=1) == "via alias"
            with pytest.raises(NoProcess):
                b.send("nobody", 1)
            with pytest.raises(InvalidState):
                node.register("a", b)

    run(body())


def test_cancelled_receive_loses_no_message() -> None:
    async def body() -> None:
        async with local_node() as node:
            a, b = node.process(), node.process()
            task = asyncio.ensure_future(a.receive())
            await asyncio.sleep(0)
            b.send(a.pid, "kept")  # delivered to the waiter's future ...
            task.cancel()  # ... which is cancelled before it runs
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await a.receive(timeout=1) == "kept"

    run(body())


def test_local_links_monitors_and_exits() -> None:
    async def body() -> None:
        async with local_node() as node:
            trapper = node.process(trap_exit=True)
            worker = node.process()
            await trapper.link(worker.pid)
            ref = trapper.monitor(worker.pid)
            worker.close(Atom("crashed"))
            got = {await trapper.receive(timeout=1), await trapper.receive(timeout=1)}
            assert got == {
                ExitMessage(worker.pid, Atom("crashed")),
                DownMessage(ref, worker.pid, Atom("crashed")),
            }
            # an untrapped linked process dies with the same reason, pending receives fail
            a, b = node.process(), node.process()
            await a.link(b.pid)
            pending = asyncio.ensure_future(a.receive())
            await asyncio.sleep(0)
            b.close(Atom("boom"))
            with pytest.raises(ProcessExited) as info:
                await pending
            assert info.value.reason == Atom("boom") and not a.alive
            # a normal exit does not kill the linked process
            c, d = node.process(), node.process()
            await c.link(d.pid)
            d.close()
            assert c.alive
            # exit/2 with kill is untrappable
            e = node.process(trap_exit=True)
            c.exit(e.pid, Atom("kill"))
            assert e.exit_reason == Atom("killed")
            # monitoring a dead pid or unknown name gives noproc at once
            ref2 = c.monitor(d.pid)
            assert await c.receive(timeout=1) == DownMessage(ref2, d.pid, Atom("noproc"))
            ref3 = c.monitor("ghost")
            down = await c.receive(timeout=1)
            assert down == DownMessage(ref3, (Atom("ghost"), node.name), Atom("noproc"))
            # demonitor flushes
            f = node.process()
            ref4 = c.monitor(f.pid)
            c.demonitor(ref4)
            f.close(Atom("x"))
            with pytest.raises(Timeout):
                await c.receive(timeout=0.05)
        with pytest.raises(InvalidState):
            node.process()

    run(body())
