"""Never run: type-checked with ``mypy --strict``, the public API of asyncpoll.testing."""

from __future__ import annotations

import random

import anyio

import asyncpoll
from asyncpoll.testing import FakeJob, FakeJobAPI, LoopbackServer, RecordedRequest, serve


def slow(rng: random.Random) -> float:
    return rng.expovariate(0.1)


async def main() -> None:
    api = FakeJobAPI(
        "envelope",
        duration=slow,
        pending=(0.0, 2.0),
        failure_rate=0.1,
        seed=1,
        error_rate=0.01,
        drop_rate=0.01,
        slow_rate=0.01,
        slow_seconds=3.0,
        flaky_methods=["GET", "DELETE"],
        rate_limit=asyncpoll.RateLimit(10, burst=5),
        token="t",
        result=lambda job: {"id": job.id},
        error=lambda job: f"{job.id} failed",
        clock=anyio.current_time,
    )
    job: FakeJob = api.add_job(duration=1.0, fail=False)
    phase: str = job.phase(0.0)
    log: list[RecordedRequest] = api.find("GET", job_id=job.id)
    n: int = api.count(method="POST")
    times: list[float] = api.times(job.id)
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(client=client, **api.poller_options()) as poller,
    ):
        await poller.submit(api.shape.create_url, json={})
    server: LoopbackServer = serve(api, port=0)
    async with server as url:
        _ = url.upper()
    with serve(api) as url:
        _ = (url, phase, log, n, times, api.jobs[job.id].finished_at)
