"""A fleet in one process: pollers sharing one ``MemoryStore(shared=True)``, in virtual
time, against the scripted job API. The same engine paths a Redis fleet takes (claims,
leases, releases, shared cool-downs, one rate limit, outcomes seen everywhere), with
exact times; tests/test_store_processes.py runs a real fleet on Redis.
"""

from __future__ import annotations

import itertools
from collections import Counter
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job

import asyncpoll
from asyncpoll import JobState, MemoryStore

pytestmark = pytest.mark.anyio

EPOCH = 1_800_000_000.0


class WallClock(asyncpoll.AnyioClock):
    def wall(self) -> float:
        return EPOCH + anyio.current_time()


def worker(api: FakeJobAPI, store: MemoryStore, name: str, **options: Any) -> asyncpoll.TaskPoller:
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=api.client(),
        store=store,
        clock=WallClock(),
        headers={"X-Worker": name},
        **options,
    )


async def serve_all(p: asyncpoll.TaskPoller) -> None:
    await p.serve(until_empty=True)


def polled_by(api: FakeJobAPI) -> Counter[str]:
    return Counter(r.headers["x-worker"] for r in api.requests)


async def test_two_workers_share_the_jobs_and_each_job_is_polled_once_a_due(
    api: FakeJobAPI,
) -> None:
    for i in range(40):
        api.script(f"j{i}", job("running"), job("running"), job("done", result=i))
    store = MemoryStore(shared=True)
    done: dict[str, list[str]] = {"a": [], "b": []}
    async with (
        # Four workers each: a claim takes what its workers can poll now.
        worker(
            api, store, "a", on_done=lambda h: done["a"].append(h.job_id), max_concurrency=4
        ) as a,
        worker(
            api, store, "b", on_done=lambda h: done["b"].append(h.job_id), max_concurrency=4
        ) as b,
    ):
        handles = [a.add(f"j{i}") for i in range(40)]
        assert all(store.get(f"j{i}") is not None for i in range(40))  # stored at once
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_all, b)
            assert await a.gather(*handles) == list(range(40))
    # Every job polled exactly 3 times, 1 s apart (+ at most a claim interval), by
    # whichever worker claimed it; both workers polled.
    for i in range(40):
        times = api.times(f"j{i}")
        assert len(times) == 3
        assert all(1.0 <= t2 - t1 <= 1.1 for t1, t2 in itertools.pairwise(times))
    by = polled_by(api)
    assert by["a"] + by["b"] == 120 and by["a"] > 10 and by["b"] > 10
    # on_done ran once per job, in the worker whose poll finished it.
    assert sorted(done["a"] + done["b"]) == sorted(f"j{i}" for i in range(40))
    assert done["b"]  # b finished some of a's jobs: a's handles resolved all the same
    assert all(store.get(f"j{i}").state == "succeeded" for i in range(40))  # type: ignore[union-attr]


async def test_a_lost_workers_jobs_are_polled_after_its_lease(api: FakeJobAPI) -> None:
    api.script("x", job("done", result="ok"))
    store = MemoryStore(shared=True)
    async with worker(api, store, "a", lease=10.0, request_timeout=5.0) as a:
        t0 = anyio.current_time()
        handle = a.add("x")
        # A worker that claimed the job and died: nobody polls it until its lease ends.
        ghost = await store.claim("ghost", EPOCH + t0, 10.0, 5)
        assert [r.job_id for r in ghost] == ["x"]
        assert await handle == "ok"
        assert 10.0 <= api.times("x")[0] - t0 <= 10.08  # + at most one claim interval


async def test_a_429_seen_by_one_worker_pauses_the_host_for_the_fleet(api: FakeJobAPI) -> None:
    api.script("slow", httpx.Response(429, headers={"Retry-After": "30"}), job("done"))
    api.script("other", job("running"), job("done"))
    store = MemoryStore(shared=True)
    async with worker(api, store, "a") as a, worker(api, store, "b") as b:
        t0 = anyio.current_time()
        first = a.add("slow")
        assert api.times("slow") == []
        await anyio.sleep(0.2)  # a or b polled "slow" and got the 429
        second = b.add("other")
        await first
        await second
    # Nobody sent anything to the host during its 30 s pause, whoever saw the 429.
    after_429 = sorted(t - t0 for t in api.times("other") + api.times("slow")[1:])
    assert after_429[0] >= 30.0


async def test_the_rate_limit_holds_for_the_fleet(api: FakeJobAPI) -> None:
    for i in range(30):
        api.script(f"r{i}", job("running"), job("done"))
    store = MemoryStore(shared=True)
    limit = asyncpoll.RateLimit(10, burst=2)
    async with (
        worker(api, store, "a", rate_limit=limit, schedule=asyncpoll.fixed(0)) as a,
        worker(api, store, "b", rate_limit=limit, schedule=asyncpoll.fixed(0)) as b,
    ):
        handles = [a.add(f"r{i}") for i in range(30)]
        async with anyio.create_task_group() as tg:
            tg.start_soon(serve_all, b)
            await a.gather(*handles)
    times = sorted(t for t, _ in api.calls)
    assert len(times) == 60
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= 2 + 10 * (times[j] - start) + 1e-9
    assert set(polled_by(api)) == {"a", "b"}


async def test_wait_in_one_worker_for_a_job_another_finishes(api: FakeJobAPI) -> None:
    api.script("w", job("running"), job("failed", error="boom"))
    store = MemoryStore(shared=True)
    async with worker(api, store, "a") as a:
        handle = a.add("w")
        async with worker(api, store, "b") as b:
            seen = b.handle("w")  # added by a, followed by b
            assert not seen.done()
            with pytest.raises(asyncpoll.JobFailed, match="boom"):
                await b.wait("w")
            assert seen.state is JobState.FAILED
        with pytest.raises(asyncpoll.JobFailed, match="boom"):
            await handle


async def test_a_worker_leaving_with_an_exception_hands_its_jobs_back_at_once(
    api: FakeJobAPI,
) -> None:
    api.script("h", job("running"), job("running"), job("done", result="b"))
    store = MemoryStore(shared=True)
    async with worker(api, store, "b", lease=600.0) as b:
        t0 = anyio.current_time()
        with pytest.raises(KeyboardInterrupt):
            async with worker(api, store, "a", lease=600.0) as a:
                handle = a.add("h")
                await anyio.sleep(1.5)  # polled by a or b, at 0 and 1
                raise KeyboardInterrupt
        assert isinstance(handle.exception(), asyncpoll.JobCancelled)
        assert await b.wait("h") == "b"  # not 600 s later: a released what it held
        assert anyio.current_time() - t0 < 3.0
    assert len(api.times("h")) == 3


@pytest.mark.parametrize("claims", ["a", "b"])
async def test_a_job_submitted_again_by_another_worker_is_followed_under_its_new_id(
    api: FakeJobAPI, claims: str
) -> None:
    made: list[str] = []

    def create(request: httpx.Request) -> httpx.Response:
        made.append(f"s{len(made) + 1}")
        return httpx.Response(202, json={"id": made[-1]}, headers={"Location": f"/jobs/{made[-1]}"})

    api.router.post("/jobs").mock(side_effect=create)
    api.script("s1", job("failed", error="flaky"))
    api.script("s2", job("running"), job("done", result="second"))
    store = MemoryStore(shared=True)
    async with worker(api, store, "a") as a, worker(api, store, "b") as b:
        # The worker that is not meant to poll holds its claims back: its room is zero.
        idle = a if claims == "b" else b
        assert idle._durable is not None and idle._durable.fleet is not None
        idle._durable.fleet.capacity = 0
        handle = await a.submit("/jobs", json={}, resubmit=1)
        assert await handle == "second"
        assert handle.job_id == "s2"
    assert made == ["s1", "s2"]
    assert {r.headers["x-worker"] for r in api.requests if r.method == "GET"} == {claims}
    assert store.get("s1").state == "failed"  # type: ignore[union-attr]
