"""reply.Awake keeps the loop polling while a reply is awaited, for at most its time, and
never once nothing is awaited; Node(reply_spin=) sets that time and is validated."""

from __future__ import annotations

import asyncio
import math

import pytest

from erlbridge.asyncio import Node
from erlbridge.asyncio.reply import Awake


def test_awake_polls_until_nothing_is_awaited() -> None:
    async def body() -> tuple[int, int]:
        loop = asyncio.get_running_loop()
        waiting = [True]
        awake = Awake(loop, 5.0, lambda: waiting[0])
        selects = 0
        original = loop._selector.select  # type: ignore[attr-defined]

        def counting(timeout: float | None = None) -> object:
            nonlocal selects
            if timeout == 0:
                selects += 1
            return original(timeout)

        loop._selector.select = counting  # type: ignore[attr-defined]
        awake.sent()
        await asyncio.sleep(0.02)  # a sleeping task: the loop would block in select
        polled = selects
        waiting[0] = False
        await asyncio.sleep(0.02)
        after = selects
        await asyncio.sleep(0.02)
        return polled, selects - after

    polled, later = asyncio.run(body())
    assert polled > 20  # zero-timeout selects while awaited
    assert later <= 2  # stopped once nothing was awaited


def test_awake_stops_after_its_time_and_zero_never_starts() -> None:
    async def body() -> tuple[bool, bool]:
        loop = asyncio.get_running_loop()
        short = Awake(loop, 0.005, lambda: True)
        short.sent()
        await asyncio.sleep(0.05)
        off = Awake(loop, 0.0, lambda: True)
        off.sent()
        await asyncio.sleep(0)
        return short._running, off._running

    assert asyncio.run(body()) == (False, False)


@pytest.mark.parametrize("bad", [-0.1, 2.0, math.nan])
def test_reply_spin_is_validated(bad: float) -> None:
    with pytest.raises(ValueError, match="reply_spin"):
        Node("spin@127.0.0.1", cookie="c", reply_spin=bad)
