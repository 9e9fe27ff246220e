"""The rebuilt engine's new behaviour, in virtual time: remote cancels confirmed by a
status read, answers naming another job, the event stream, shutdown and in_flight()."""

from __future__ import annotations

import logging

import anyio
import anyio.lowlevel
import httpx
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll
from asyncpoll import EventKind, JobState

pytestmark = pytest.mark.anyio


def drain(stream: asyncpoll.EventStream) -> list[asyncpoll.JobEvent]:
    """Every event buffered in an ended stream."""
    events = []
    while True:
        try:
            events.append(stream.get_nowait())
        except anyio.EndOfStream:
            return events


def poller(api: FakeJobAPI, **options: object) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second unless told otherwise."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- remote cancel


async def test_an_accepted_cancel_of_a_finished_job_keeps_its_result(api: FakeJobAPI) -> None:
    """A cancel answered 200 for a job that had already succeeded resolves SUCCEEDED with
    its result, found by one status read, and cancel_remote() returns False."""
    api.script("a", job("running"), job("succeeded", result={"pages": 7}))
    delete = api.router.delete("/jobs/a").mock(
        return_value=httpx.Response(200, json={"stopped": False})
    )
    async with poller(api, schedule=asyncpoll.fixed(10.0)) as p:
        handle = p.add("a")
        await anyio.sleep(1.0)
        assert await handle.cancel_remote() is False
        assert handle.state is JobState.SUCCEEDED
        assert await handle == {"pages": 7}
    assert delete.call_count == 1
    assert rel(api.times("a"), 0.0) == [0.0, 1.0]


async def test_an_accepted_cancel_confirmed_cancelled_resolves_cancelled(api: FakeJobAPI) -> None:
    """A cancel answered 202, then read as cancelled, resolves CANCELLED at the caller's
    request and returns True."""
    api.script("a", job("running"), job("cancelled", error="stopped by user"))
    api.router.delete("/jobs/a").mock(return_value=httpx.Response(202))
    async with poller(api, schedule=asyncpoll.fixed(10.0)) as p:
        handle = p.add("a")
        await anyio.sleep(1.0)
        assert await handle.cancel_remote() is True
        with pytest.raises(asyncpoll.JobCancelled, match="at the caller's request"):
            await handle


async def test_an_accepted_cancel_of_a_still_running_job_cancels_it(api: FakeJobAPI) -> None:
    """A cancel answered 202 while the status still reads running (the server stops it
    later) resolves CANCELLED, and the job is not polled again."""
    api.script("a", job("running"))
    api.router.delete("/jobs/a").mock(return_value=httpx.Response(202))
    async with poller(api, schedule=asyncpoll.fixed(10.0)) as p:
        handle = p.add("a")
        await anyio.sleep(1.0)
        assert await handle.cancel_remote() is True
        assert handle.state is JobState.CANCELLED
        await anyio.sleep(30.0)
    assert rel(api.times("a"), 0.0) == [0.0, 1.0]


# ---------------------------------------------------------------- answers for other jobs


async def test_an_answer_naming_another_followed_job_is_a_transient_failure(
    api: FakeJobAPI,
) -> None:
    """A status body whose id names another job this poller follows is never taken as
    this job's answer: it counts as a transient failure and the job is polled again."""
    api.script(
        "a",
        httpx.Response(200, json={"id": "b", "status": "succeeded", "result": "B's"}),
        httpx.Response(200, json={"id": "a", "status": "succeeded", "result": "A's"}),
    )
    api.script("b", job("running"), httpx.Response(200, json={"id": "b", "status": "done"}))
    async with poller(api) as p:
        a, b = p.add("a"), p.add("b")
        assert await a == "A's"
        assert a.attempts == 2
        await b
        stats = p.statistics()
    assert stats.transient_errors == 1
    assert rel(api.times("a"), 0.0) == [0.0, 1.0]


async def test_an_id_that_names_no_followed_job_is_read_as_usual(api: FakeJobAPI) -> None:
    """A body id unknown to the poller (the server's own id for the job) is no sign of a
    stray answer."""
    api.script("a", httpx.Response(200, json={"id": "srv-991", "status": "done", "result": 1}))
    async with poller(api) as p:
        assert await p.add("a") == 1


# ---------------------------------------------------------------- the event stream


async def test_events_stream_every_change_in_order(api: FakeJobAPI) -> None:
    """events() yields ADDED, each PROGRESS, and DONE for each job, with virtual times,
    and ends when the poller closes."""
    api.script(
        "a",
        job("running", progress=10),
        job("running", progress=50),
        job("done", result=1),
    )
    seen: list[tuple[str, str, str, float | None, float]] = []

    async def read(stream: asyncpoll.EventStream) -> None:
        async for event in stream:
            seen.append(
                (event.kind.value, event.job_id, event.state.value, event.progress, event.time)
            )

    async with anyio.create_task_group() as tg, poller(api) as p:
        tg.start_soon(read, p.events())
        await anyio.lowlevel.checkpoint()
        p.add("a")
    assert seen == [
        ("added", "a", "pending", None, 0.0),
        ("progress", "a", "running", 0.1, 0.0),
        ("progress", "a", "running", 0.5, 1.0),
        ("done", "a", "succeeded", 1.0, 2.0),
    ]


async def test_a_slow_reader_gets_progress_coalesced_and_every_done(api: FakeJobAPI) -> None:
    """A reader that reads nothing while jobs move gets one (the latest) progress event
    per job and every DONE event."""
    for name in "abc":
        api.script(
            name,
            job("running", progress=10),
            job("running", progress=20),
            job("running", progress=30),
            job("done"),
        )
    async with poller(api) as p:
        stream = p.events()
        handles = [p.add(name) for name in "abc"]
        await anyio.sleep(2.5)  # three polls each, nothing read
        await p.gather(*handles)
    events = [(e.kind, e.job_id, e.progress) for e in drain(stream)]
    events[6:] = sorted(events[6:])  # finished in one instant: trio orders them at random
    assert events == [
        (EventKind.ADDED, "a", None),
        (EventKind.ADDED, "b", None),
        (EventKind.ADDED, "c", None),
        (EventKind.PROGRESS, "a", 0.3),
        (EventKind.PROGRESS, "b", 0.3),
        (EventKind.PROGRESS, "c", 0.3),
        (EventKind.DONE, "a", 1.0),
        (EventKind.DONE, "b", 1.0),
        (EventKind.DONE, "c", 1.0),
    ]


async def test_a_full_buffer_drops_new_progress_but_never_done(api: FakeJobAPI) -> None:
    """With max_buffer=1, a second job's progress is dropped (and counted) while the
    first job's is undelivered; DONE events are all kept."""
    api.script("a", job("running", progress=10), job("done"))
    api.script("b", job("running", progress=10), job("running", progress=10), job("done"))
    async with poller(api) as p:
        stream = p.events(max_buffer=1)
        a, b = p.add("a"), p.add("b")
        await p.gather(a, b)
    kinds = [(event.kind, event.job_id) for event in drain(stream)]
    assert kinds == [
        (EventKind.ADDED, "a"),
        (EventKind.ADDED, "b"),
        (EventKind.PROGRESS, "a"),
        (EventKind.DONE, "a"),
        (EventKind.DONE, "b"),
    ]
    assert stream.dropped == 1


async def test_callbacks_miss_no_change_that_a_slow_reader_sees_coalesced(
    api: FakeJobAPI,
) -> None:
    """on_progress runs for every change, while a stream nobody read meanwhile holds the
    latest progress only."""
    api.script("a", job("running", progress=10), job("running", progress=60), job("done"))
    calls: list[str] = []
    async with poller(
        api,
        on_progress=lambda h: calls.append(f"progress {h.progress}"),
        on_done=lambda h: calls.append(f"done {h.state.value}"),
    ) as p:
        stream = p.events()
        await p.add("a")
    seen = [(e.kind.value, e.progress) for e in drain(stream)]
    assert seen == [("added", None), ("progress", 0.6), ("done", 1.0)]
    assert calls == ["progress 0.1", "progress 0.6", "done succeeded"]


async def test_events_rejects_a_bad_buffer(api: FakeJobAPI) -> None:
    """events(max_buffer=0) names the argument."""
    async with poller(api) as p:
        with pytest.raises(ValueError, match="max_buffer must be a whole number >= 1"):
            p.events(max_buffer=0)


# ---------------------------------------------------------------- shutdown


async def test_shutdown_waits_for_jobs_and_refuses_new_ones(api: FakeJobAPI) -> None:
    """shutdown() stops add() at once and returns when every job has finished."""
    api.script("a", job("running"), job("done", result="A"))
    async with poller(api) as p:
        handle = p.add("a")
        await p.shutdown()
        assert anyio.current_time() == pytest.approx(1.0)
        assert handle.result() == "A"
        with pytest.raises(RuntimeError, match="shutting down; add jobs to a new one"):
            p.add("b")


async def test_shutdown_cancel_futures_cancels_what_is_in_flight(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """shutdown(cancel_futures=True) resolves every job in flight CANCELLED at once, with
    one log line for all of them."""
    api.script("a", job("running"))
    api.script("b", job("running"))
    async with poller(api) as p:
        a, b = p.add("a"), p.add("b")
        await anyio.sleep(0.5)
        assert p.in_flight() == [a, b]
        with caplog.at_level(logging.INFO, logger="asyncpoll"):
            await p.shutdown(cancel_futures=True)
        assert p.in_flight() == []
        assert anyio.current_time() == pytest.approx(0.5)
    assert (a.state, b.state) == (JobState.CANCELLED, JobState.CANCELLED)
    assert [r.getMessage() for r in caplog.records] == [
        "2 jobs in flight cancelled: the poller was shut down with cancel_futures=True"
    ]


async def test_a_cancelled_shutdown_wait_cancels_the_jobs_at_once(api: FakeJobAPI) -> None:
    """Cancelling the task waiting in shutdown() (a second Ctrl+C) ends the wait and
    cancels every job still in flight."""
    api.script("a", job("running"))
    async with poller(api) as p:
        handle = p.add("a")
        with anyio.move_on_after(5.0):
            await p.shutdown()
        assert anyio.current_time() == pytest.approx(5.0)
        assert handle.state is JobState.CANCELLED
    assert anyio.current_time() == pytest.approx(5.0)


async def test_leaving_with_an_error_logs_one_line_for_every_cancelled_job(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """An exception leaving the block cancels the jobs in flight with one WARNING line,
    not one line per job."""
    for name in "abc":
        api.script(name, job("running"))
    with caplog.at_level(logging.INFO, logger="asyncpoll"), pytest.raises(KeyError):
        async with poller(api) as p:
            for name in "abc":
                p.add(name)
            await anyio.sleep(0.5)
            raise KeyError("boom")
    assert [r.getMessage() for r in caplog.records] == [
        "3 jobs in flight cancelled: the poller's block exited with KeyError"
    ]


async def test_shutdown_before_opening_is_an_error() -> None:
    """shutdown() on a poller never entered says so."""
    with pytest.raises(RuntimeError, match="not open; there is nothing to shut down"):
        await asyncpoll.TaskPoller("https://x/{job_id}").shutdown()
