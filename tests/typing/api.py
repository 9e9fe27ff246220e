"""Never run: type-checked with ``mypy --strict`` to keep the public API's types honest."""

from __future__ import annotations

from typing import Any

import httpx

import asyncpoll
from asyncpoll import JobHandle, JobState, Status


async def on_done(handle: JobHandle) -> None:
    state: JobState = handle.state
    progress: float | None = handle.progress
    _ = (state, progress, handle.attempts, handle.metadata, handle.status)


def on_progress(handle: JobHandle) -> None:
    _ = handle.job_id, handle.url


async def check(handle: JobHandle) -> Status:
    return Status(JobState.SUCCEEDED, result={"id": handle.job_id})


async def main(client: httpx.AsyncClient) -> list[Any]:
    async with asyncpoll.TaskPoller(
        status_url="https://api.example.com/jobs/{job_id}",
        headers={"Authorization": "Bearer ..."},
        rate_limit=asyncpoll.RateLimit(60, per=60.0, burst=5),
        max_concurrency=64,
        schedule=asyncpoll.backoff(initial=1.0, factor=1.5, max=30.0, jitter=0.1),
        timeout=600.0,
        on_done=on_done,
        on_progress=on_progress,
    ) as poller:
        h = poller.add("123")
        h2 = poller.add("x", url="https://other/jobs/x", schedule=asyncpoll.fixed(2.0), timeout=30)
        h3 = poller.add("sdk", check=check, metadata={"owner": "me"})
        result: Any = await h
        done: bool = h2.done()
        h3.add_done_callback(lambda handle: None)
        cancelled: bool = h3.cancel()
        async for finished in poller.as_completed():
            _ = finished.result() if finished.exception() is None else None
        results: list[Any] = await poller.gather("123", h2, return_exceptions=True)
        stats: asyncpoll.PollerStatistics = poller.statistics()
        running: list[JobHandle] = poller.in_flight()
        stream: asyncpoll.EventStream = poller.events(max_buffer=100)
        with stream:
            async for event in stream:
                kind: asyncpoll.EventKind = event.kind
                when: float = event.time
                owner: JobHandle = event.handle
                _ = kind, when, owner, event.job_id, event.state, event.progress, event.terminal
                break
        dropped: int = stream.dropped
        await poller.shutdown(wait=True, cancel_futures=False)
        _ = result, done, cancelled, stats, running, dropped
    async with asyncpoll.TaskPoller(
        client=client, rate_limit=5.0, reader=asyncpoll.DefaultReader()
    ):
        pass
    one: Any = await asyncpoll.poll("https://api.example.com/jobs/1", timeout=60.0)
    many: list[Any] = await asyncpoll.poll_many(
        ["1", "2"], status_url="https://api.example.com/jobs/{job_id}", return_exceptions=True
    )
    return [results, one, many]


async def notebook_cells() -> None:
    poller = await asyncpoll.TaskPoller("https://api.example.com/jobs/{job_id}").open()
    handle: JobHandle = poller.add("1")
    summary: asyncpoll.PollerSummary = poller.summary()
    counts: dict[JobState, int] = summary.counts()
    _ = (handle, counts, summary.in_flight, summary.finished, summary.total, str(summary))
    await poller.aclose()


def script() -> None:
    with asyncpoll.BlockingPoller(
        "https://api.example.com/jobs/{job_id}", rate_limit=10, backend="asyncio"
    ) as poller:
        handle: asyncpoll.BlockingHandle = poller.add("1")
        result: Any = handle.result(timeout=60.0)
        error: BaseException | None = handle.exception(timeout=None)
        done: bool = handle.done()
        state: JobState = handle.state
        results: list[Any] = poller.gather(handle, "2", return_exceptions=True, timeout=5.0)
        for finished in poller.as_completed(timeout=60.0):
            _ = finished.job_id
        summary: asyncpoll.PollerSummary = poller.summary()
        stats: asyncpoll.PollerStatistics = poller.statistics()
        cancelled: bool = handle.cancel() or poller.cancel("2")
        _ = (result, error, done, state, results, summary, stats, cancelled)
    poller.close(cancel_futures=True)
    one: Any = asyncpoll.poll_blocking("https://api.example.com/jobs/1", timeout=60.0)
    many: list[Any] = asyncpoll.poll_many_blocking(
        ["1", "2"], status_url="https://api.example.com/jobs/{job_id}", return_exceptions=True
    )
    _ = (one, many)
