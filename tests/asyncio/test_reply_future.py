"""ReplyFuture: a result wakes its task in the same loop iteration; everything else is
delivered as an ordinary asyncio.Future delivers it."""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest

from erlbridge.asyncio.reply import ReplyFuture

VAR: contextvars.ContextVar[str] = contextvars.ContextVar("VAR", default="unset")


def in_loop(body: Callable[[], Coroutine[Any, Any, None]]) -> Callable[[], None]:
    """A plain test that runs ``body`` in a fresh event loop."""

    @functools.wraps(body)
    def test() -> None:
        asyncio.run(body())

    return test


def _resolve_from_callback(loop: asyncio.AbstractEventLoop, fut: ReplyFuture[int]) -> list[str]:
    """Resolve ``fut`` from a plain loop callback (as data_received does) and record what
    ran before the callback returned."""
    trace: list[str] = []

    def resolve() -> None:
        fut.set_result(7)
        trace.append("callback returned")

    loop.call_soon(resolve)
    return trace


@in_loop
async def test_a_result_resumes_the_waiting_task_before_the_callback_returns() -> None:
    loop = asyncio.get_running_loop()
    fut: ReplyFuture[int] = ReplyFuture(loop=loop)
    trace = _resolve_from_callback(loop, fut)
    value = await fut
    trace.append("task resumed")
    # the task ran inside set_result, so it is before "callback returned"
    await asyncio.sleep(0)
    assert value == 7
    assert trace == ["task resumed", "callback returned"]


@in_loop
async def test_a_result_set_inside_a_task_is_scheduled_not_nested() -> None:
    loop = asyncio.get_running_loop()
    fut: ReplyFuture[int] = ReplyFuture(loop=loop)
    order: list[str] = []

    async def waiter() -> None:
        await fut
        order.append("waiter")

    task = asyncio.ensure_future(waiter())
    await asyncio.sleep(0)
    fut.set_result(1)  # we are a task: the waiter must not start inside us
    order.append("setter")
    await task
    assert order == ["setter", "waiter"]


@in_loop
async def test_exceptions_and_cancellation_are_delivered_on_the_next_iteration() -> None:
    loop = asyncio.get_running_loop()
    failing: ReplyFuture[int] = ReplyFuture(loop=loop)
    trace: list[str] = []

    async def wait_failing() -> None:
        with pytest.raises(KeyError):
            await failing
        trace.append("woken")

    task = asyncio.ensure_future(wait_failing())
    await asyncio.sleep(0)

    def fail() -> None:
        failing.set_exception(KeyError("x"))
        trace.append("set")

    loop.call_soon(fail)
    await task
    assert trace == ["set", "woken"]

    cancelled: ReplyFuture[int] = ReplyFuture(loop=loop)
    waiter = asyncio.ensure_future(cancelled)
    await asyncio.sleep(0)
    assert cancelled.cancel("stop")
    assert not cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter


@in_loop
async def test_a_cancelled_task_cancels_the_future_it_waits_on() -> None:
    loop = asyncio.get_running_loop()
    fut: ReplyFuture[int] = ReplyFuture(loop=loop)
    task = asyncio.ensure_future(fut)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fut.cancelled()


@in_loop
async def test_timeout_and_wait_for_work_with_it() -> None:
    loop = asyncio.get_running_loop()
    fut: ReplyFuture[int] = ReplyFuture(loop=loop)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await fut
    assert fut.cancelled()
    ready: ReplyFuture[int] = ReplyFuture(loop=loop)
    loop.call_later(0.01, ready.set_result, 3)
    assert await asyncio.wait_for(ready, 1) == 3


@in_loop
async def test_callbacks_keep_their_context_and_can_be_removed() -> None:
    loop = asyncio.get_running_loop()
    fut: ReplyFuture[int] = ReplyFuture(loop=loop)
    seen: list[str] = []
    context = contextvars.copy_context()
    context.run(VAR.set, "inside")
    fut.add_done_callback(lambda f: seen.append(VAR.get()), context=context)

    def removed(f: object) -> None:
        seen.append("removed callback ran")

    fut.add_done_callback(removed)
    assert fut.remove_done_callback(removed) == 1
    loop.call_soon(fut.set_result, 1)
    await asyncio.sleep(0.01)
    assert seen == ["inside"]
    late: list[int] = []
    fut.add_done_callback(lambda f: late.append(f.result()))  # already done: scheduled
    await asyncio.sleep(0)
    assert late == [1]
