"""The node's shared call deadlines (one loop timer for every call's timeout)."""

from __future__ import annotations

import asyncio
import itertools
import time
from typing import Any

import pytest
from eb_nodeharness import LocalErlBackend, run, scaled

from erlbridge.asyncio import Node
from erlbridge.asyncio.node import _Deadlines, _Expired
from erlbridge.exceptions import Timeout
from erlbridge.term import Atom


def test_deadlines_fire_in_order_at_their_time() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        d = _Deadlines(loop)
        fired: dict[str, float] = {}
        start = loop.time()
        futs = {name: loop.create_future() for name in ("a", "b", "c", "done")}
        for name, fut in futs.items():
            fut.add_done_callback(lambda f, name=name: fired.setdefault(name, loop.time()))
        d.add(0.15, futs["a"])
        d.add(0.30, futs["b"])
        d.add(0.05, futs["c"])  # earlier than the armed timer: re-armed
        entry = d.add(0.10, futs["done"])
        futs["done"].set_result(1)
        d.finished(entry)
        for name in ("a", "b", "c"):
            with pytest.raises(_Expired):
                await asyncio.wait_for(asyncio.shield(futs[name]), scaled(5))
        assert futs["done"].result() == 1
        for name, after in (("c", 0.05), ("a", 0.15), ("b", 0.30)):
            # never early; late only by scheduling noise
            assert after <= fired[name] - start < after + scaled(0.2)
        assert fired["c"] < fired["a"] < fired["b"]
        d.close()

    asyncio.run(body())


def test_deadlines_keep_no_finished_futures_and_cancel_orphans() -> None:
    async def body() -> None:
        loop = asyncio.get_running_loop()
        d = _Deadlines(loop)
        live = [loop.create_future() for _ in range(10)]
        for fut in live:
            d.add(60.0, fut)
        for _ in range(10_000):
            fut = loop.create_future()
            entry = d.add(60.0, fut)
            fut.set_result(None)
            d.finished(entry)
            assert entry[2] is None  # the finished call's result is not kept alive
        # compaction: finished calls do not pile up until their 60 s deadline
        assert len(d._heap) < 10 + 2 * 65
        assert all(not f.done() for f in live)
        # a call abandoned before awaiting its future (cancelled while draining)
        orphan = loop.create_future()
        d.finished(d.add(0.01, orphan))
        assert orphan.cancelled()
        await asyncio.sleep(0.05)  # the timer passes it without setting an exception
        d.close()
        for fut in live:
            fut.cancel()

    asyncio.run(body())


_ids = itertools.count(1)


@pytest.mark.integration
def test_concurrent_calls_time_out_exactly_and_stay_correlated(
    erl_backend: LocalErlBackend,
) -> None:
    """Calls to a Python gen_server that answers only some requests, out of order: the
    answered ones get their own replies, the others raise Timeout at their own deadline."""

    async def body() -> None:
        n = next(_ids)
        a = Node(f"dla{n}@127.0.0.1", cookie=erl_backend.cookie, epmd_port=erl_backend.epmd_port)
        b = Node(f"dlb{n}@127.0.0.1", cookie=erl_backend.cookie, epmd_port=erl_backend.epmd_port)
        async with a, b:
            server = b.process(name="server")
            await a.connect(b.name)
            timeouts = [0.2, 0.4, None, 0.3, 5.0, None, 0.25, 5.0]
            started = time.monotonic()
            done_at: dict[int, float] = {}

            async def one(i: int, timeout: float | None) -> Any:
                try:
                    return await a.call(("server", b.name), i, timeout=timeout)
                finally:
                    done_at[i] = time.monotonic() - started

            calls = [asyncio.ensure_future(one(i, t)) for i, t in enumerate(timeouts)]
            requests = []
            for _ in timeouts:
                _, frm, request = await server.receive(timeout=scaled(5))
                requests.append((request, frm))
            # answer the calls without a short timeout, in reverse order, after the others expired
            await asyncio.sleep(0.5)
            for request, frm in reversed(requests):
                if timeouts[request] is None or timeouts[request] == 5.0:
                    server.send(frm[0], (frm[1], (Atom("reply"), request)))
            results = await asyncio.gather(*calls, return_exceptions=True)
            for i, (timeout, result) in enumerate(zip(timeouts, results, strict=True)):
                if timeout is None or timeout == 5.0:
                    assert result == (Atom("reply"), i)
                else:
                    assert isinstance(result, Timeout) and result.timeout == timeout
                    assert timeout <= done_at[i] < timeout + scaled(0.2)

    run(body())
