"""A poller opened in one task and closed in another (``open()``/``aclose()``), as notebook
cells do; and the top-level await of ``poll_many()``. In virtual time, asyncio and trio."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll
from asyncpoll import JobState

pytestmark = pytest.mark.anyio


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


async def in_task(fn: Any, *args: Any) -> Any:
    """Run ``fn(*args)`` in a task of its own (a notebook cell) and return its result."""
    out: list[Any] = []

    async def cell() -> None:
        out.append(await fn(*args))

    async with anyio.create_task_group() as tg:
        tg.start_soon(cell)
    return out[0]


async def test_a_poller_opened_in_one_task_is_used_and_closed_in_others(
    api: FakeJobAPI,
) -> None:
    """open() in one task, add() and inspect in a second, aclose() in a third: the jobs
    go on polling between the tasks, and aclose() waits for them."""
    api.script("a", job("running"), job("running"), job("done", result="A"))
    api.script("b", job("running"), job("done", result="B"))
    t0 = anyio.current_time()
    p = await in_task(poller(api).open)
    assert repr(p).startswith("<TaskPoller open active=0")

    async def add() -> list[asyncpoll.JobHandle]:
        return [p.add("a"), p.add("b")]

    a, b = await in_task(add)
    await anyio.sleep(1.5)  # between cells, the poller polls on its own
    assert (a.state, b.done(), b.result()) == (JobState.RUNNING, True, "B")
    assert str(p.summary()) == "2 jobs: 1 in flight (1 running), 1 succeeded; 4 requests"
    await in_task(p.aclose)
    assert anyio.current_time() - t0 == pytest.approx(2.0)
    assert a.result() == "A"
    assert rel(api.times("a"), t0) == [0.0, 1.0, 2.0]
    assert repr(p).startswith("<TaskPoller closed")
    with pytest.raises(RuntimeError, match="closed; add jobs to a new one"):
        p.add("c")
    await p.aclose()  # a second close does nothing


async def test_an_interrupted_aclose_cancels_the_jobs_and_closes(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Cancelling the task waiting in aclose() cancels every job in flight, with one log
    line, and still closes the poller."""
    api.script("a", job("running"))
    p = await poller(api).open()
    handle = p.add("a")
    with caplog.at_level(logging.WARNING, logger="asyncpoll"), anyio.move_on_after(5.0):
        await in_task(p.aclose)
    assert handle.state is JobState.CANCELLED
    assert str(handle.exception()) == (
        "job 'a' was cancelled: the poller's aclose() was interrupted"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "1 jobs in flight cancelled: the poller's aclose() was interrupted"
    ]
    assert repr(p).startswith("<TaskPoller closed")


async def test_open_and_async_with_do_not_mix(api: FakeJobAPI) -> None:
    """A poller opens once, by open() or async with; aclose() closes only an open()ed one."""
    p = poller(api)
    with pytest.raises(RuntimeError, match="not open; there is nothing to close"):
        await p.aclose()
    with pytest.raises(RuntimeError, match=r"or call `await poller.open\(\)` first"):
        p.add("a")
    await p.open()
    with pytest.raises(RuntimeError, match="opened only once, make a new one"):
        await p.open()
    with pytest.raises(RuntimeError, match="entered only once, make a new one"):
        async with p:
            pass
    await p.aclose()
    async with poller(api) as q:
        with pytest.raises(RuntimeError, match="entered with `async with`; leaving the block"):
            await q.aclose()


def test_a_plain_with_block_points_to_async_with_and_blocking_poller(api: FakeJobAPI) -> None:
    """`with TaskPoller(...)` fails at once, naming `async with` and BlockingPoller."""
    p = poller(api)
    with pytest.raises(TypeError, match=r"use `async with.*asyncpoll.BlockingPoller"), p:
        pass


async def test_poll_many_is_awaited_at_the_top_level_of_a_cell(api: FakeJobAPI) -> None:
    """`await asyncpoll.poll_many(...)` inside a task of an already running loop (as a
    notebook cell's top-level await is) returns the results in order."""
    api.script("a", job("running"), job("done", result="A"))
    api.script("b", job("done", result="B"))
    results = await in_task(
        lambda: asyncpoll.poll_many(
            ["a", "b"],
            status_url="/jobs/{job_id}",
            client=api.client(),
            schedule=asyncpoll.fixed(1.0),
        )
    )
    assert results == ["A", "B"]
