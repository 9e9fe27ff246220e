"""asyncpoll inside a plain asyncio service: asyncio.gather, TaskGroup, wait_for.

These tests run on pytest-asyncio's event loop (not anyio's test runner), a looptime
loop in virtual time (see conftest.py), the way an asyncio application drives a poller.
"""

from __future__ import annotations

import asyncio
import sys

import httpx
import pytest
from conftest import FakeJobAPI, job

import asyncpoll

pytestmark = pytest.mark.asyncio


def poller(api: FakeJobAPI) -> asyncpoll.TaskPoller:
    """A poller on the fake API, polling every second."""
    return asyncpoll.TaskPoller(
        "/jobs/{job_id}", client=api.client(), schedule=asyncpoll.fixed(1.0)
    )


async def test_asyncio_gather_over_handles(api: FakeJobAPI) -> None:
    """asyncio.gather() accepts handles and returns their results in order."""
    api.script("a", job("running"), job("running"), job("done", result="A"))
    api.script("b", job("done", result="B"))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    async with poller(api) as p:
        assert await asyncio.gather(p.add("a"), p.add("b")) == ["A", "B"]
        assert loop.time() - t0 == pytest.approx(2.0)


async def test_asyncio_gather_return_exceptions(api: FakeJobAPI) -> None:
    """asyncio.gather(return_exceptions=True) collects a JobFailed like any exception."""
    api.script("a", job("failed", error="bad"))
    api.script("b", job("done", result="B"))
    async with poller(api) as p:
        results = await asyncio.gather(p.add("a"), p.add("b"), return_exceptions=True)
    assert isinstance(results[0], asyncpoll.JobFailed)
    assert results[1] == "B"


async def test_wait_for_around_a_handle_leaves_the_job_polling(api: FakeJobAPI) -> None:
    """asyncio.wait_for() timing out on a handle cancels the wait, not the job."""
    api.script("a", *[job("running")] * 5, job("done", result="A"))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(handle, timeout=2.5)
        assert not handle.done()
        assert await asyncio.wait_for(handle, timeout=100) == "A"
    assert len(api.calls) == 6


@pytest.mark.skipif(sys.version_info < (3, 11), reason="asyncio.TaskGroup is Python 3.11+")
async def test_asyncio_taskgroup_with_handle_wait(api: FakeJobAPI) -> None:
    """handle.wait() is a coroutine an asyncio.TaskGroup can run as a task."""
    api.script("a", job("running"), job("done", result="A"))
    api.script("b", job("done", result="B"))
    async with poller(api) as p, asyncio.TaskGroup() as tg:
        ta = tg.create_task(p.add("a").wait())
        tb = tg.create_task(p.add("b").wait())
    assert (ta.result(), tb.result()) == ("A", "B")


async def test_poller_owned_by_a_service_task(api: FakeJobAPI) -> None:
    """A poller living in one task serves handles awaited from other tasks."""
    api.script("a", job("running"), job("done", result="A"))
    added: asyncio.Queue[asyncpoll.JobHandle] = asyncio.Queue()

    async def service() -> None:
        async with poller(api) as p:
            await added.put(p.add("a"))

    task = asyncio.create_task(service())
    handle = await added.get()
    assert await handle == "A"
    await task


async def test_a_429_storm_does_not_block_the_loop(api: FakeJobAPI) -> None:
    """Other asyncio tasks keep running, on time, while a job waits out 429s."""
    api.script("a", *[httpx.Response(429, headers={"Retry-After": "2"})] * 3, job("done"))
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    ticks: list[float] = []

    async def ticker() -> None:
        for _ in range(17):  # every 0.7 s; the last at 11.9 s, before the job's last poll
            await asyncio.sleep(0.7)
            ticks.append(round(loop.time() - t0, 6))

    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=api.client(),
        schedule=asyncpoll.fixed(1.0),
        retry_schedule=asyncpoll.fixed(1.0),
    ) as p:
        task = asyncio.create_task(ticker())
        assert await p.add("a") == {"status": "done"}
        # Each tick ran at its time while the job was still waiting out the 429s.
        assert ticks == [round(0.7 * i, 6) for i in range(1, 18)]
        assert loop.time() - t0 == 12.0
        await task
    # Retry-After: 2 after each 429; after the third, the host's rate (halved by each
    # 429) spaces the last poll further out.
    assert [round(t - t0, 6) for t in api.times("a")] == [0, 2, 4, 12]


async def test_the_virtual_clock_reaches_a_timer_due_between_two_microseconds() -> None:
    """asyncio.sleep() of a whole microsecond count and 0.4 µs ends, in virtual time."""
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await asyncio.sleep(1.0000004)
    assert loop.time() - t0 == pytest.approx(1.0000004, abs=1e-9)
