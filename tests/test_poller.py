"""The engine: TaskPoller and JobHandle against a scripted job API, in virtual time."""

from __future__ import annotations

import contextlib
import logging
import math
import sys
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import pytest
import respx
from conftest import FakeJobAPI, _virtual_loop, job, rel

import asyncpoll
from asyncpoll import JobState, Status

pytestmark = pytest.mark.anyio


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second unless told otherwise."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


# ---------------------------------------------------------------- results and schedules


async def test_awaiting_a_handle_returns_the_result_after_the_scripted_polls(
    api: FakeJobAPI,
) -> None:
    """A job polled on a fixed schedule resolves with its result at the exact poll times."""
    api.script("a", job("pending"), job("running", progress=50), job("done", result={"n": 1}))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(2.0)) as p:
        handle = p.add("a")
        assert await handle == {"n": 1}
        assert anyio.current_time() - t0 == pytest.approx(4.0)
    assert rel(api.times("a"), t0) == [0.0, 2.0, 4.0]
    assert handle.state is JobState.SUCCEEDED
    assert handle.attempts == 3
    assert handle.progress == 1.0
    assert handle.status == Status(
        JobState.SUCCEEDED,
        progress=1.0,
        result={"n": 1},
        http_status=200,
        raw={"status": "done", "result": {"n": 1}},
    )
    assert handle.done() and handle.result() == {"n": 1} and handle.exception() is None


async def test_backoff_schedule_spaces_polls_exponentially_up_to_its_cap(api: FakeJobAPI) -> None:
    """backoff(initial=1, factor=2, max=4, jitter=0) polls at 0, 1, 3, 7, 11."""
    api.script("a", job("running"), job("running"), job("running"), job("running"), job("done"))
    t0 = anyio.current_time()
    schedule = asyncpoll.backoff(initial=1.0, factor=2.0, max=4.0, jitter=0.0)
    async with poller(api, schedule=schedule) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0.0, 1.0, 3.0, 7.0, 11.0]


async def test_a_due_time_between_two_microseconds_is_reached(api: FakeJobAPI) -> None:
    """A poll due 0.4 µs past a whole microsecond (as a jittered delay is) comes on time.

    The scheduler sleeps once, until that due time; the test clock must get there (a
    microsecond-step looptime never did, see VIRTUAL_STEP in conftest.py).
    """
    api.script("a", job("running"), job("running"), job("done", result="A"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(1.0000004)) as p:
        assert await p.add("a") == "A"
        assert anyio.current_time() - t0 == pytest.approx(2.0000008, abs=1e-9)
    assert rel(api.times("a"), t0) == [0.0, 1.0, 2.000001]


async def test_first_delays_the_first_poll_and_per_job_schedule_overrides(
    api: FakeJobAPI,
) -> None:
    """A job's own schedule with first= replaces the poller's schedule for that job only."""
    api.script("a", job("running"), job("done"))
    api.script("b", job("running"), job("done"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(1.0)) as p:
        p.add("a", schedule=asyncpoll.fixed(5.0, first=3.0))
        p.add("b")
    assert rel(api.times("a"), t0) == [3.0, 8.0]
    assert rel(api.times("b"), t0) == [0.0, 1.0]


async def test_fixed_zero_polls_again_at_once(api: FakeJobAPI) -> None:
    """An interval of 0 polls back to back without any virtual time passing."""
    api.script("a", job("running"), job("running"), job("running"), job("done"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(0)) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0.0, 0.0, 0.0, 0.0]


async def test_retry_after_on_a_running_job_stretches_the_next_poll(api: FakeJobAPI) -> None:
    """A Retry-After header on a healthy response is a floor for the next poll's delay."""
    api.script(
        "a",
        httpx.Response(200, json={"status": "running"}, headers={"Retry-After": "7"}),
        job("running"),
        job("done"),
    )
    t0 = anyio.current_time()
    async with poller(api) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0.0, 7.0, 8.0]


async def test_url_template_quotes_the_id_and_headers_go_on_every_request(
    api: FakeJobAPI,
) -> None:
    """The status_url template is filled with the URL-quoted id; headers are sent each time."""
    api.script("a b", job("running"), job("done"))
    async with poller(api, headers={"Authorization": "Bearer s3cret"}) as p:
        handle = p.add("a b")
        assert handle.url == "/jobs/a%20b"
        await handle
    assert [str(r.url) for r in api.requests] == ["https://api.test/jobs/a%20b"] * 2
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in api.requests)
    assert "s3cret" not in repr(p)


async def test_base_url_with_a_path_keeps_its_path(api: FakeJobAPI) -> None:
    """A relative status URL is appended to base_url's path, as httpx's client does."""
    with respx.mock(assert_all_called=False) as router:
        route = router.get("https://h.test/v1/jobs/7").respond(json={"status": "done", "result": 7})
        async with asyncpoll.TaskPoller("/jobs/{job_id}", base_url="https://h.test/v1") as p:
            handle = p.add(7)
            assert await handle == 7
    assert [str(call.request.url) for call in route.calls] == ["https://h.test/v1/jobs/7"]


async def test_explicit_url_and_int_ids(api: FakeJobAPI) -> None:
    """add() takes an explicit url= and an int id, which becomes a string."""
    api.script("9", job("done", result=9))
    async with poller(api) as p:
        handle = p.add(9)
        other = p.add("x", url="https://api.test/jobs/9")
        assert handle.job_id == "9"
        assert await p.gather(handle, other) == [9, 9]


async def test_adding_an_id_in_flight_returns_the_same_handle(api: FakeJobAPI) -> None:
    """A second add() of an id in flight is the same handle and adds no requests."""
    api.script("a", job("running"), job("done", result=1))
    async with poller(api) as p:
        first = p.add("a")
        assert p.add("a") is first
        assert p.add("a", url="https://elsewhere.test/x") is first
        await first
        again = p.add("a")
        assert again is not first
        assert p.handle("a") is again
        await again
    assert len(api.calls) == 3


# ---------------------------------------------------------------- terminal outcomes


async def test_a_failed_job_raises_job_failed_quoting_the_server(api: FakeJobAPI) -> None:
    """FAILED resolves the handle with JobFailed naming the job and quoting the error text."""
    api.script("a", job("running"), job("failed", error={"code": 7, "message": "disk full"}))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert str(info.value) == "job 'a' failed: disk full"
    assert info.value.status.state is JobState.FAILED
    assert info.value.job_id == "a"
    assert handle.state is JobState.FAILED
    assert handle.exception() is info.value


async def test_a_job_cancelled_on_the_server_raises_job_cancelled(api: FakeJobAPI) -> None:
    """A server-side cancelled state resolves the handle CANCELLED with the server's reason."""
    api.script("a", job("canceled", message="by the operator"))
    async with poller(api) as p:
        with pytest.raises(asyncpoll.JobCancelled, match="cancelled on the server: by the op"):
            await p.add("a")


@pytest.mark.parametrize("code", [401, 403, 404, 410, 400, 422])
async def test_non_retryable_4xx_ends_the_job_at_once(api: FakeJobAPI, code: int) -> None:
    """Other 4xx answers end the job ERRORED after one request, with the status attached."""
    api.script("a", httpx.Response(code, text="nope"), job("done"))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert info.value.http_status == code
    assert info.value.job_id == "a"
    assert info.value.url == "/jobs/a"
    assert f"HTTP {code}" in str(info.value) and "'nope'" in str(info.value)
    assert handle.state is JobState.ERRORED
    assert len(api.calls) == 1


async def test_timeout_resolves_timed_out_exactly_at_the_deadline(api: FakeJobAPI) -> None:
    """A job still running at its deadline ends TIMED_OUT then, with no extra request."""
    api.script("a", job("running"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(4.0), timeout=10.0) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.JobTimeout) as info:
            await handle
        assert anyio.current_time() - t0 == pytest.approx(10.0)
    assert isinstance(info.value, TimeoutError)
    assert "did not finish within 10 s; last state running" in str(info.value)
    assert rel(api.times("a"), t0) == [0.0, 4.0, 8.0]
    assert handle.state is JobState.TIMED_OUT


async def test_per_job_timeout_none_waits_past_the_poller_default(api: FakeJobAPI) -> None:
    """timeout=None on add() lifts the poller's deadline for that job."""
    api.script("a", *[job("running")] * 20, job("done"))
    async with poller(api, timeout=5.0) as p:
        assert await p.add("a", timeout=None) == {"status": "done"}
    assert len(api.calls) == 21


async def test_unknown_state_keeps_polling_until_the_timeout_and_warns_once(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """An unknown state word counts as running, is logged once, and is bounded by the timeout."""
    api.script("a", job("Thinking"))
    api.script("b", job("thinking"))
    caplog.set_level(logging.WARNING, logger="asyncpoll")
    async with poller(api, timeout=3.5) as p:
        a, b = p.add("a"), p.add("b")
        results = await p.gather(a, b, return_exceptions=True)
    assert all(isinstance(r, asyncpoll.JobTimeout) for r in results)
    assert len(api.calls) == 8
    unknown = [r for r in caplog.records if "unknown job state" in r.getMessage()]
    assert len(unknown) == 1
    assert "'Thinking'" in unknown[0].getMessage()


async def test_strict_reader_ends_the_job_on_an_unknown_state(api: FakeJobAPI) -> None:
    """DefaultReader(unknown="error") ends the job ERRORED on the first unknown word."""
    api.script("a", job("rendering"))
    async with poller(api, reader=asyncpoll.DefaultReader(unknown="error")) as p:
        with pytest.raises(asyncpoll.PollError, match="state 'rendering'") as info:
            await p.add("a")
    assert info.value.http_status == 200
    assert len(api.calls) == 1


# ---------------------------------------------------------------- transient failures


async def test_transient_failures_below_the_budget_are_retried(api: FakeJobAPI) -> None:
    """Four 5xx/408/connect errors in a row, then success, with max_errors=5 succeeds."""
    api.script(
        "a",
        httpx.Response(500),
        httpx.Response(503),
        httpx.Response(408),
        httpx.ConnectError("refused"),
        job("done", result="ok"),
    )
    t0 = anyio.current_time()
    retry = asyncpoll.backoff(initial=1.0, factor=2.0, max=60.0, jitter=0.0)
    async with poller(api, retry_schedule=retry, max_errors=5) as p:
        assert await p.add("a") == "ok"
        assert p.statistics().transient_errors == 4
    assert rel(api.times("a"), t0) == [0.0, 1.0, 3.0, 7.0, 15.0]


async def test_max_errors_in_a_row_make_the_job_errored(api: FakeJobAPI) -> None:
    """The max_errors-th transient failure in a row ends the job ERRORED with a PollError."""
    api.script("a", httpx.Response(502, text="<html>Bad gateway</html>"))
    async with poller(api, max_errors=3) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert len(api.calls) == 3
    assert handle.state is JobState.ERRORED
    assert info.value.http_status == 502
    assert str(info.value) == (
        "job 'a' (/jobs/a): 3 transient failures in a row (max_errors=3); "
        "the last: HTTP 502; received '<html>Bad gateway</html>'"
    )


async def test_a_success_resets_the_error_budget(api: FakeJobAPI) -> None:
    """Failures separated by a good answer never add up to max_errors."""
    bad = httpx.Response(500)
    api.script("a", bad, bad, job("running"), bad, bad, job("running"), bad, bad, job("done"))
    async with poller(api, max_errors=3) as p:
        assert await p.add("a") == {"status": "done"}
    assert len(api.calls) == 9


async def test_connection_errors_keep_their_cause(api: FakeJobAPI) -> None:
    """A transport error that exhausts the budget is the PollError's cause, and its message."""
    api.script("a", httpx.ConnectError("connection refused"))
    async with poller(api, max_errors=2) as p:
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("a")
    assert info.value.http_status is None
    assert "ConnectError on GET https://api.test/jobs/a: connection refused" in str(info.value)
    assert info.value.cause is not None


async def test_unreadable_bodies_are_transient_and_quoted_in_the_final_error(
    api: FakeJobAPI,
) -> None:
    """HTML from a gateway and bodies with no state count as failures; the error quotes them."""
    api.script("html", httpx.Response(200, text="<html>maintenance</html>"))
    api.script("nostate", httpx.Response(200, json={"id": 5, "ok": True}))
    async with poller(api, max_errors=2) as p:
        html, nostate = p.add("html"), p.add("nostate")
        await p.gather(html, nostate, return_exceptions=True)
    assert html.state is JobState.ERRORED and nostate.state is JobState.ERRORED
    assert "response body is not JSON" in str(html.exception())
    assert "'<html>maintenance</html>'" in str(html.exception())
    message = str(nostate.exception())
    assert "no job state in the response" in message
    assert """'{"id":5,"ok":true}'""" in message or """'{"id": 5, "ok": true}'""" in message
    assert len(api.calls) == 4


async def test_a_hanging_request_is_bounded_by_request_timeout(api: FakeJobAPI) -> None:
    """A request that never completes is abandoned after request_timeout and retried."""

    async def hang() -> httpx.Response:
        await anyio.sleep(3600)
        raise AssertionError("not reached")

    api.script("a", hang, job("done", result=1))
    t0 = anyio.current_time()
    async with poller(api, request_timeout=5.0) as p:
        assert await p.add("a") == 1
    assert rel(api.times("a"), t0) == [0.0, 6.0]


async def test_hanging_requests_are_each_cut_at_their_own_limit(api: FakeJobAPI) -> None:
    """Staggered hanging requests are each cut exactly request_timeout after they start;
    other jobs go on, and the workers that were cut go on polling."""

    async def hang() -> httpx.Response:
        await anyio.sleep(3600)
        raise AssertionError("not reached")

    api.script("a", hang, job("done", result="a"))
    api.script("b", hang, job("done", result="b"))
    api.script("c", job("running"), job("done", result="c"))
    t0 = anyio.current_time()
    async with poller(api, request_timeout=5.0, max_concurrency=2) as p:
        a, c = p.add("a"), p.add("c")
        await anyio.sleep(2)
        b = p.add("b")
        assert await p.gather(a, b, c) == ["a", "b", "c"]
    assert rel(api.times("a"), t0) == [0.0, 6.0]
    assert rel(api.times("b"), t0) == [2.0, 8.0]
    assert rel(api.times("c"), t0) == [0.0, 1.0]
    assert [h.attempts for h in (a, b, c)] == [2, 2, 2]


async def test_a_request_in_flight_at_the_deadline_times_the_job_out(api: FakeJobAPI) -> None:
    """The job's deadline also bounds a request in flight: TIMED_OUT at the deadline."""

    async def hang() -> httpx.Response:
        await anyio.sleep(3600)
        raise AssertionError("not reached")

    api.script("a", hang)
    t0 = anyio.current_time()
    async with poller(api, request_timeout=None, timeout=12.0) as p:
        with pytest.raises(asyncpoll.JobTimeout):
            await p.add("a")
        assert anyio.current_time() - t0 == pytest.approx(12.0)


# ---------------------------------------------------------------- 429 back-pressure


async def test_429_never_counts_against_the_error_budget(api: FakeJobAPI) -> None:
    """Ten 429s with Retry-After are waited out and backed off from, never counted."""
    throttled = httpx.Response(429, headers={"Retry-After": "3"})
    api.script("a", *[throttled] * 10, job("done", result="ok"))
    t0 = anyio.current_time()
    async with poller(api, max_errors=2) as p:
        assert await p.add("a") == "ok"
        stats = p.statistics()
    # The hint (3 s) is a floor; from the second 429 on, the host's rate is halved on each
    # one (1 per 3 s observed -> 1/6, 1/12, 1/24 per s) down to the floor of 0.05/s; the
    # token taken at 6 s leaves the next one 12 s away.
    assert rel(api.times("a"), t0) == [0, 3, 6, 18, 38, 58, 78, 98, 118, 138, 158]
    assert stats.throttled == 10
    assert stats.transient_errors == 0


async def test_429_without_a_hint_backs_off_on_the_retry_schedule(api: FakeJobAPI) -> None:
    """A bare 429 waits per the retry schedule, counted in 429s in a row."""
    api.script("a", httpx.Response(429), httpx.Response(429), httpx.Response(429), job("done"))
    t0 = anyio.current_time()
    retry = asyncpoll.backoff(initial=2.0, factor=2.0, max=60.0, jitter=0.0)
    async with poller(api, retry_schedule=retry, max_errors=1) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0.0, 2.0, 6.0, 14.0]


async def test_429_is_bounded_by_the_job_deadline(api: FakeJobAPI) -> None:
    """A job throttled forever ends TIMED_OUT at its deadline, not ERRORED."""
    api.script("a", httpx.Response(429, headers={"Retry-After": "4"}))
    async with poller(api, timeout=10.0) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.JobTimeout):
            await handle
    assert handle.state is JobState.TIMED_OUT
    assert len(api.calls) == 3


# ---------------------------------------------------------------- rate limit and concurrency


async def test_rate_limit_bounds_every_window_and_serves_in_order(api: FakeJobAPI) -> None:
    """With RateLimit(10, burst=3), requests obey burst + rate*t in every window, FIFO."""
    for i in range(40):
        api.script(f"j{i}", job("running"), job("running"), job("done"))
    t0 = anyio.current_time()
    async with poller(api, rate_limit=asyncpoll.RateLimit(10, burst=3)) as p:
        handles = [p.add(f"j{i}") for i in range(40)]
        await p.gather(*handles)
    times = [t - t0 for t, _ in api.calls]
    assert len(times) == 120
    # The burst goes at once, then one request every 0.1 s, in the order jobs were added.
    assert [round(t, 6) for t in times[:5]] == [0.0, 0.0, 0.0, 0.1, 0.2]
    assert [j for _, j in api.calls[:40]] == [f"j{i}" for i in range(40)]
    for i in range(len(times)):
        for j in range(i, len(times)):
            assert j - i + 1 <= 3 + 10 * (times[j] - times[i]) + 1e-6
    # Saturated: 120 requests take (120 - 3) / 10 s after the burst.
    assert times[-1] == pytest.approx(11.7)


async def test_a_float_rate_limit_means_requests_per_second(api: FakeJobAPI) -> None:
    """rate_limit=2.0 spaces requests half a second apart."""
    for i in range(4):
        api.script(f"j{i}", job("done"))
    t0 = anyio.current_time()
    async with poller(api, rate_limit=2.0) as p:
        await p.gather(*[p.add(f"j{i}") for i in range(4)])
        assert p.rate_limit == asyncpoll.RateLimit(2.0)
    assert [round(t - t0, 6) for t, _ in api.calls] == [0.0, 0.5, 1.0, 1.5]


async def test_max_concurrency_caps_requests_in_flight(api: FakeJobAPI) -> None:
    """No more than max_concurrency status requests are in flight at once."""

    async def slow() -> httpx.Response:
        await anyio.sleep(1.0)
        return job("done")

    for i in range(20):
        api.script(f"j{i}", slow)
    t0 = anyio.current_time()
    async with poller(api, max_concurrency=4) as p:
        await p.gather(*[p.add(f"j{i}") for i in range(20)])
    assert api.max_in_flight == 4
    assert anyio.current_time() - t0 == pytest.approx(5.0)


async def test_check_jobs_share_the_rate_limit_and_error_budget() -> None:
    """check= callables go through the same limiter, deadline and error budget as GETs."""
    calls: list[tuple[float, str]] = []
    outcomes = {
        "ok": [Status(JobState.RUNNING, progress=0.5), Status(JobState.SUCCEEDED, result=42)],
        "flaky": [RuntimeError("sdk hiccup"), Status(JobState.SUCCEEDED, result="x")],
        "broken": [RuntimeError("sdk down")],
    }

    async def check(handle: asyncpoll.JobHandle) -> Status:
        calls.append((anyio.current_time(), handle.job_id))
        script = outcomes[handle.job_id]
        outcome = script[min(handle.attempts - 1, len(script) - 1)]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    t0 = anyio.current_time()
    async with asyncpoll.TaskPoller(
        rate_limit=asyncpoll.RateLimit(1),
        schedule=asyncpoll.fixed(0),
        retry_schedule=asyncpoll.fixed(0),
        max_errors=2,
    ) as p:
        ok = p.add("ok", check=check)
        flaky = p.add("flaky", check=check)
        broken = p.add("broken", check=check)
        results = await p.gather(ok, flaky, broken, return_exceptions=True)
    assert results[:2] == [42, "x"]
    assert isinstance(results[2], asyncpoll.PollError)
    assert "RuntimeError: sdk down" in str(results[2])
    assert ok.url is None
    assert [round(t - t0, 6) for t, _ in calls] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]


async def test_check_returning_something_else_is_a_clear_error() -> None:
    """A check= that returns a non-Status ends its job at once with a PollError saying so."""

    async def check(handle: asyncpoll.JobHandle) -> Any:
        return {"state": "done"}

    def not_async(handle: asyncpoll.JobHandle) -> Any:
        return Status(JobState.SUCCEEDED)

    async with asyncpoll.TaskPoller() as p:
        a = p.add("a", check=check)
        b = p.add("b", check=not_async)
        await p.gather(a, b, return_exceptions=True)
    assert str(a.exception()) == "job 'a': check= returned dict, not an asyncpoll.Status"
    assert "must be an async callable" in str(b.exception())
    assert a.attempts == 1 and b.attempts == 1


# ---------------------------------------------------------------- isolation


async def test_a_bad_job_never_harms_the_others(api: FakeJobAPI) -> None:
    """Garbage, errors and raising callbacks for one job leave every other job untouched."""
    api.script("bad", httpx.Response(200, content=b"\xff\xfe not json"))
    api.script("gone", httpx.Response(404))
    for i in range(5):
        api.script(f"ok{i}", job("running"), job("done", result=i))

    def explode(handle: asyncpoll.JobHandle) -> None:
        raise ValueError("callback bug")

    async with poller(api, max_errors=2, on_done=explode) as p:
        bad, gone = p.add("bad"), p.add("gone")
        oks = [p.add(f"ok{i}") for i in range(5)]
        assert await p.gather(*oks) == [0, 1, 2, 3, 4]
        await p.gather(bad, gone, return_exceptions=True)
    assert bad.state is JobState.ERRORED and gone.state is JobState.ERRORED
    assert p.statistics().callback_errors == 7


async def test_a_reader_that_crashes_costs_only_its_job(api: FakeJobAPI) -> None:
    """A reader returning a non-Status ends that job ERRORED; the poller keeps going."""
    api.script("a", job("done"))

    def reader(response: asyncpoll.Response) -> Any:
        return "done"

    async with poller(api, reader=reader) as p:
        with pytest.raises(asyncpoll.PollError, match="the reader returned str, not a Status"):
            await p.add("a")


# ---------------------------------------------------------------- cancel and exit


async def test_cancel_stops_polling_and_resolves_cancelled(api: FakeJobAPI) -> None:
    """handle.cancel() resolves CANCELLED at once and no request follows."""
    api.script("a", job("running"))
    async with poller(api) as p:
        handle = p.add("a")
        await anyio.sleep(2.5)
        assert handle.cancel() is True
        assert handle.cancel() is False
        with pytest.raises(asyncpoll.JobCancelled, match="cancelled by the caller"):
            await handle
        await anyio.sleep(10)
    assert len(api.calls) == 3
    assert handle.state is JobState.CANCELLED


async def test_cancel_interrupts_a_request_in_flight(api: FakeJobAPI) -> None:
    """Cancelling a job whose request is in flight abandons the request at once."""
    finished: list[float] = []

    async def slow() -> httpx.Response:
        await anyio.sleep(100)
        finished.append(anyio.current_time())
        return job("done")

    api.script("a", slow)
    t0 = anyio.current_time()
    async with poller(api) as p:
        handle = p.add("a")
        await anyio.sleep(1)
        assert await p.cancel("a") is True
    assert anyio.current_time() - t0 == pytest.approx(1.0)
    assert finished == []
    assert handle.state is JobState.CANCELLED


async def test_cancel_while_waiting_for_the_rate_limit(api: FakeJobAPI) -> None:
    """A job cancelled while it waits for a rate-limit slot gives the slot to the next job."""
    for i in range(3):
        api.script(f"j{i}", job("done"))
    t0 = anyio.current_time()
    async with poller(api, rate_limit=asyncpoll.RateLimit(1)) as p:
        handles = [p.add(f"j{i}") for i in range(3)]
        await anyio.sleep(0.5)
        # j0 went at 0 s; j1 (the head of the queue) waits for 1 s, j2 behind it for 2 s.
        assert p.statistics().waiting_for_rate_limit == 2
        assert handles[1].cancel() is True  # the head only: j2 must be woken to take over
        await anyio.sleep(0.25)  # still before j1's slot at 1 s
        assert p.statistics().waiting_for_rate_limit == 1
    assert [(round(t - t0, 6), j) for t, j in api.calls] == [(0.0, "j0"), (1.0, "j2")]
    assert [h.state for h in handles] == [
        JobState.SUCCEEDED,
        JobState.CANCELLED,
        JobState.SUCCEEDED,
    ]
    assert anyio.current_time() - t0 == pytest.approx(1.0)


async def test_leaving_the_block_normally_waits_for_every_job(api: FakeJobAPI) -> None:
    """The block's normal exit returns only when every job (even ones added late) is done."""
    api.script("a", job("running"), job("done"))
    api.script("b", *[job("running")] * 5, job("done"))
    api.script("c", job("done"))
    t0 = anyio.current_time()

    def chain(handle: asyncpoll.JobHandle) -> None:
        if handle.job_id == "b":
            handle._poller.add("c")

    async with poller(api, on_done=chain) as p:
        a, b = p.add("a"), p.add("b")
    assert anyio.current_time() - t0 == pytest.approx(5.0)
    assert a.done() and b.done()
    assert p.handle("c").state is JobState.SUCCEEDED


async def test_leaving_the_block_with_an_exception_cancels_unfinished_jobs(
    api: FakeJobAPI,
) -> None:
    """An exception out of the block cancels unfinished jobs and propagates unchanged."""
    api.script("a", job("running"))
    api.script("b", job("done", result=1))
    with pytest.raises(KeyError, match="boom"):
        async with poller(api) as p:
            a, b = p.add("a"), p.add("b")
            await b
            raise KeyError("boom")
    assert b.result() == 1
    assert a.state is JobState.CANCELLED
    assert str(a.exception()) == ("job 'a' was cancelled: the poller's block exited with KeyError")


async def test_cancelling_the_host_cancels_the_jobs(api: FakeJobAPI) -> None:
    """A cancel scope around the poller that fires while it drains cancels its jobs."""
    api.script("a", job("running"))
    t0 = anyio.current_time()
    with anyio.move_on_after(7.0):
        async with poller(api) as p:
            handle = p.add("a")
    assert anyio.current_time() - t0 == pytest.approx(7.0)
    assert handle.state is JobState.CANCELLED


async def test_lifecycle_errors_are_clear(api: FakeJobAPI) -> None:
    """add() before entering or after leaving, and entering twice, raise RuntimeError."""
    p = poller(api)
    with pytest.raises(RuntimeError, match="not open; use it as `async with"):
        p.add("a")
    async with p:
        pass
    with pytest.raises(RuntimeError, match="closed; add jobs to a new one"):
        p.add("a")
    with pytest.raises(RuntimeError, match="can be entered only once"):
        async with p:
            pass


async def test_a_callers_client_is_left_open(api: FakeJobAPI) -> None:
    """A client passed with client= is never closed by the poller."""
    client = api.client()
    async with asyncpoll.TaskPoller("/jobs/{job_id}", client=client):
        pass
    assert not client.is_closed
    await client.aclose()


# ---------------------------------------------------------------- callbacks


async def test_callbacks_sync_and_async_see_progress_and_completion(api: FakeJobAPI) -> None:
    """on_progress fires on state or progress changes, on_done once; both sync and async."""
    api.script(
        "a",
        job("queued"),
        job("queued"),
        job("running", progress=10),
        job("running", progress=10),
        job("running", progress=60),
        job("done", result="r"),
    )
    seen: list[tuple[str, str, float | None]] = []

    def on_progress(handle: asyncpoll.JobHandle) -> None:
        seen.append(("progress", handle.state.value, handle.progress))

    async def on_done(handle: asyncpoll.JobHandle) -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(("done", handle.state.value, handle.progress))

    job_seen: list[str] = []
    async with poller(api, on_progress=on_progress, on_done=on_done) as p:
        handle = p.add("a", on_done=lambda h: job_seen.append(h.job_id))
        handle.add_done_callback(lambda h: job_seen.append("direct"))
        await handle
    assert seen == [
        ("progress", "pending", None),
        ("progress", "running", 0.1),
        ("progress", "running", 0.6),
        ("done", "succeeded", 1.0),
    ]
    assert job_seen == ["direct", "a"]
    late: list[str] = []
    handle.add_done_callback(lambda h: late.append(h.state.value))
    assert late == ["succeeded"]


async def test_a_raising_callback_is_logged_and_counted(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A callback that raises is logged with its traceback and counted, nothing more."""
    api.script("a", job("done"))

    async def broken(handle: asyncpoll.JobHandle) -> None:
        raise RuntimeError("oops")

    async with poller(api, on_done=broken) as p:
        handle = p.add("a")
        handle.add_done_callback(lambda h: 1 / 0)
        await handle
    assert p.statistics().callback_errors == 2
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert any("raised for job 'a'" in m for m in messages)
    assert handle.result() == {"status": "done"}


# ---------------------------------------------------------------- as_completed and gather


async def test_as_completed_yields_in_finish_order_including_late_jobs(api: FakeJobAPI) -> None:
    """as_completed() yields finished jobs first, then each as it ends, late adds included."""
    api.script("slow", *[job("running")] * 4, job("done"))
    api.script("fast", job("running"), job("done"))
    api.script("early", job("done"))
    api.script("late", job("running"), job("running"), job("done"))
    order: list[str] = []
    async with poller(api) as p:
        await p.add("early")
        p.add("slow")
        p.add("fast")
        async for handle in p.as_completed():
            order.append(handle.job_id)
            if handle.job_id == "fast":
                p.add("late")
    assert order == ["early", "fast", "late", "slow"]


async def test_as_completed_over_chosen_handles_and_ids(api: FakeJobAPI) -> None:
    """as_completed(handles) follows only the given jobs, by handle or id."""
    api.script("a", job("running"), job("running"), job("done"))
    api.script("b", job("done"))
    api.script("c", job("running"), job("done"))
    async with poller(api) as p:
        a, b = p.add("a"), p.add("b")
        p.add("c")
        await b
        assert [h.job_id async for h in p.as_completed([a, "b", a])] == ["b", "a"]


async def test_gather_returns_in_the_order_given(api: FakeJobAPI) -> None:
    """gather() returns results in argument order, not finish order."""
    api.script("a", job("running"), job("running"), job("done", result="A"))
    api.script("b", job("done", result="B"))
    async with poller(api) as p:
        p.add("a")
        p.add("b")
        assert await p.gather("a", "b") == ["A", "B"]


async def test_gather_raises_the_first_failure_and_other_jobs_keep_polling(
    api: FakeJobAPI,
) -> None:
    """Without return_exceptions gather raises the first failure; others are not cancelled."""
    api.script("a", job("running"), job("running"), job("done", result="A"))
    api.script("b", job("failed", error="bad input"))
    async with poller(api) as p:
        a, _ = p.add("a"), p.add("b")
        with pytest.raises(asyncpoll.JobFailed, match="bad input"):
            await p.gather("a", "b")
        assert not a.done()
    assert a.result() == "A"


async def test_gather_with_return_exceptions(api: FakeJobAPI) -> None:
    """return_exceptions=True puts each failure in its place."""
    api.script("a", job("done", result="A"))
    api.script("b", job("failed", error="bad input"))
    async with poller(api) as p:
        results = await p.gather(p.add("a"), p.add("b"), return_exceptions=True)
    assert results[0] == "A"
    assert isinstance(results[1], asyncpoll.JobFailed)


async def test_unknown_ids_and_foreign_handles_are_refused(api: FakeJobAPI) -> None:
    """gather()/as_completed() name an id that was never added or a handle of another poller."""
    api.script("a", job("done"))
    async with poller(api) as p, poller(api) as q:
        handle = q.add("a")
        with pytest.raises(ValueError, match="no job 'zz' in this poller; add\\(\\) it first"):
            await p.gather("zz")
        with pytest.raises(ValueError, match="belongs to another TaskPoller"):
            await p.gather(handle)


async def test_result_before_done_is_an_invalid_state(api: FakeJobAPI) -> None:
    """result() and exception() on an unfinished job raise InvalidStateError."""
    api.script("a", job("running"), job("done"))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.InvalidStateError, match="job 'a' is still pending"):
            handle.result()
        with pytest.raises(asyncpoll.InvalidStateError):
            handle.exception()


# ---------------------------------------------------------------- scale and shortcuts


@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {"loop_factory": _virtual_loop})], ids=["asyncio"]
)
async def test_ten_thousand_jobs_are_heap_entries_not_tasks() -> None:
    """10,000 jobs in flight run on max_concurrency workers plus three engine tasks."""
    import asyncio  # task counting needs asyncio.all_tasks()

    async def check(handle: asyncpoll.JobHandle) -> Status:
        if handle.attempts < 3:
            return Status(JobState.RUNNING)
        return Status(JobState.SUCCEEDED, result=handle.job_id)

    async with asyncpoll.TaskPoller(schedule=asyncpoll.fixed(10.0), max_concurrency=16) as p:
        handles = [p.add(str(i), check=check) for i in range(10_000)]
        await anyio.sleep(5)
        engine = [t for t in asyncio.all_tasks() if t.get_name().startswith("asyncpoll ")]
        # workers, the scheduler, the request_timeout watchdog and the callback runner
        assert len(engine) == 16 + 3
        assert len(asyncio.all_tasks()) - len(engine) <= 2  # this test and its runner
        assert p.statistics().active == 10_000
        results = await p.gather(*handles)
    assert results == [str(i) for i in range(10_000)]
    assert p.statistics().requests == 30_000


async def test_poll_and_poll_many_shortcuts(api: FakeJobAPI) -> None:
    """poll() waits for one URL; poll_many() returns results in input order."""
    api.script("a", job("running"), job("done", result="A"))
    api.script("b", job("done", result="B"))
    api.script("c", job("failed", error="no"))
    options = {"client": api.client(), "schedule": asyncpoll.fixed(1.0)}
    assert await asyncpoll.poll("https://api.test/jobs/a", **options) == "A"
    results = await asyncpoll.poll_many(
        ["b", "a"], status_url="/jobs/{job_id}", client=api.client()
    )
    assert results == ["B", "A"]
    with pytest.raises(asyncpoll.JobFailed):
        await asyncpoll.poll_many(["c", "a"], status_url="/jobs/{job_id}", client=api.client())
    mixed = await asyncpoll.poll_many(
        ["c", "b"], status_url="/jobs/{job_id}", client=api.client(), return_exceptions=True
    )
    assert isinstance(mixed[0], asyncpoll.JobFailed) and mixed[1] == "B"


async def test_statistics_count_what_happened(api: FakeJobAPI) -> None:
    """statistics() reports active jobs, finishes by state, requests and throttles."""
    api.script("a", httpx.Response(429, headers={"Retry-After": "1"}), job("done"))
    api.script("b", httpx.Response(500), job("failed"))
    async with poller(api, rate_limit=asyncpoll.RateLimit(100)) as p:
        p.add("a")
        p.add("b")
        assert p.statistics().active == 2
    stats = p.statistics()
    assert stats.active == 0
    assert stats.requests == 4
    assert stats.throttled == 1
    assert stats.transient_errors == 1
    assert stats.finished[JobState.SUCCEEDED] == 1
    assert stats.finished[JobState.FAILED] == 1
    assert stats.waiting_for_rate_limit == 0


# ---------------------------------------------------------------- configuration errors


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"status_url": "https://x/jobs"}, ValueError, "containing '{job_id}'"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency must be a whole number >= 1"),
        ({"max_errors": 0}, ValueError, "max_errors must be a whole number >= 1"),
        ({"timeout": -1}, ValueError, "timeout must be > 0 seconds"),
        ({"timeout": "10"}, TypeError, "timeout must be a number of seconds"),
        ({"request_timeout": 0}, ValueError, "request_timeout must be > 0"),
        ({"schedule": 2.0}, TypeError, "schedule must be a schedule such as"),
        ({"rate_limit": "fast"}, TypeError, "rate_limit must be a RateLimit"),
        ({"on_done": "print"}, TypeError, "on_done must be a callable"),
        ({"reader": 5}, TypeError, "reader must be a callable"),
        ({"client": object()}, TypeError, "client must be an httpx.AsyncClient"),
    ],
)
def test_bad_configuration_is_named(options: dict[str, Any], error: type, message: str) -> None:
    """Each bad TaskPoller argument raises an error naming the argument."""
    with pytest.raises(error, match=message.replace("(", "\\(").replace("{", "\\{")):
        asyncpoll.TaskPoller(**options)


async def test_add_without_any_url_is_named(api: FakeJobAPI) -> None:
    """add() with no url=, no status_url and no check= says what is missing."""
    async with asyncpoll.TaskPoller(client=api.client()) as p:
        with pytest.raises(ValueError, match="job 'a' has no status URL: pass url="):
            p.add("a")
        with pytest.raises(TypeError, match="job_id must be a string"):
            p.add(None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- regressions found in review


async def test_a_job_waiting_for_a_free_worker_still_times_out_on_time() -> None:
    """A due job queued behind busy workers resolves TIMED_OUT at its deadline, not later."""

    async def slow(handle: asyncpoll.JobHandle) -> Status:
        await anyio.sleep(100)
        return Status(JobState.SUCCEEDED)

    async def running(handle: asyncpoll.JobHandle) -> Status:
        return Status(JobState.RUNNING)

    async with asyncpoll.TaskPoller(max_concurrency=1, request_timeout=None) as p:
        p.add("slow", check=slow, timeout=1000)
        queued = p.add("queued", check=running, timeout=5)
        t0 = anyio.current_time()
        with pytest.raises(asyncpoll.JobTimeout):
            await queued
        assert anyio.current_time() - t0 == pytest.approx(5.0)
        assert queued.attempts == 0


@pytest.mark.parametrize("request_timeout", [None, 30.0])
async def test_a_request_cut_by_the_deadline_is_a_timeout_not_an_error(
    request_timeout: float | None,
) -> None:
    """A request cut off by the job's deadline ends TIMED_OUT, whatever request_timeout is."""

    async def hang(handle: asyncpoll.JobHandle) -> Status:
        await anyio.sleep_forever()
        raise AssertionError("not reached")

    async with asyncpoll.TaskPoller(request_timeout=request_timeout, max_errors=1) as p:
        handle = p.add("a", check=hang, timeout=0.9, schedule=asyncpoll.fixed(1.0, first=0.2))
        with pytest.raises(asyncpoll.JobTimeout):
            await handle
    assert handle.state is JobState.TIMED_OUT


async def test_an_unreadable_retry_after_date_is_ignored(api: FakeJobAPI) -> None:
    """A Retry-After date too large to parse is no hint: the 429 and the 200 still work."""
    bad = "Mon, 01 Jan 2024 99999999999999999999:00:00 GMT"
    api.script("a", httpx.Response(429, headers={"Retry-After": bad}), job("done", result=1))
    api.script(
        "b", httpx.Response(200, json={"status": "done", "result": 2}, headers={"Retry-After": bad})
    )
    async with poller(api, max_errors=1) as p:
        assert await p.gather(p.add("a"), p.add("b")) == [1, 2]


class RaisingSchedule:
    """A broken custom schedule."""

    def delay(self, n: int, rng: Any) -> float:
        raise ZeroDivisionError("broken schedule")


class NaNAfterFirst:
    """A custom schedule that returns NaN after the first poll."""

    def delay(self, n: int, rng: Any) -> float:
        return 0.0 if n == 0 else math.nan


async def test_add_with_a_broken_schedule_registers_nothing(api: FakeJobAPI) -> None:
    """add() whose schedule raises leaves no half-registered job behind."""
    api.script("a", job("done", result=1))
    async with poller(api, timeout=10) as p:
        with pytest.raises(ZeroDivisionError):
            p.add("a", schedule=RaisingSchedule())
        with pytest.raises(ValueError, match="returned nan for n=0"):
            p.add("a", schedule=NaNOnly())
        assert await p.add("a") == 1


class NaNOnly:
    """A custom schedule that always returns NaN."""

    def delay(self, n: int, rng: Any) -> float:
        return math.nan


async def test_a_schedule_returning_nan_costs_only_its_job() -> None:
    """A NaN delay ends that job ERRORED with the reason; other jobs and the poller go on."""
    polls = 0

    async def running(handle: asyncpoll.JobHandle) -> Status:
        return Status(JobState.RUNNING)

    async def third(handle: asyncpoll.JobHandle) -> Status:
        nonlocal polls
        polls += 1
        return Status(JobState.SUCCEEDED if polls >= 3 else JobState.RUNNING, result=polls)

    async with asyncpoll.TaskPoller(schedule=asyncpoll.fixed(1.0), timeout=20) as p:
        bad = p.add("bad", check=running, schedule=NaNAfterFirst())
        assert await p.add("good", check=third) == 3
    assert bad.state is JobState.ERRORED
    assert "returned nan for n=1" in str(bad.exception())


@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {"loop_factory": _virtual_loop})], ids=["asyncio"]
)
async def test_a_check_raising_cancelled_error_costs_one_failure() -> None:
    """A CancelledError raised by check= itself (an SDK's cancelled future) is transient."""
    import asyncio

    async def flaky(handle: asyncpoll.JobHandle) -> Status:
        if handle.attempts == 1:
            raise asyncio.CancelledError()
        return Status(JobState.SUCCEEDED, result="x")

    async def good(handle: asyncpoll.JobHandle) -> Status:
        await anyio.sleep(5)
        return Status(JobState.SUCCEEDED, result="ok")

    async with asyncpoll.TaskPoller(max_concurrency=2, retry_schedule=asyncpoll.fixed(1.0)) as p:
        a = p.add("flaky", check=flaky)
        assert await p.add("good", check=good) == "ok"
        assert await a == "x"
        assert p.statistics().transient_errors == 1


async def test_as_completed_follows_jobs_that_an_async_on_done_adds() -> None:
    """as_completed() keeps going while an async on_done may still add jobs."""

    async def done(handle: asyncpoll.JobHandle) -> Status:
        return Status(JobState.SUCCEEDED, result=handle.job_id)

    seen: list[str] = []
    async with asyncpoll.TaskPoller() as p:

        async def follow_up(handle: asyncpoll.JobHandle) -> None:
            await anyio.sleep(1)
            if handle.job_id == "a":
                p.add("b", check=done)

        p.add("a", check=done, on_done=follow_up)
        async for handle in p.as_completed():
            seen.append(handle.job_id)
    assert seen == ["a", "b"]


async def test_a_reader_error_instance_is_not_shared_between_jobs(api: FakeJobAPI) -> None:
    """A reader raising one PollError instance for many jobs gives each job its own error."""
    api.script("a", job("done"))
    api.script("b", job("done"))
    shared = asyncpoll.PollError("unsupported")

    def reader(response: asyncpoll.Response) -> Status:
        raise shared

    async with poller(api, reader=reader) as p:
        a, b = p.add("a"), p.add("b")
        await p.gather(a, b, return_exceptions=True)
    assert str(a.exception()) == "job 'a' (/jobs/a): unsupported"
    assert str(b.exception()) == "job 'b' (/jobs/b): unsupported"
    assert shared.job_id is None


# ---------------------------------------------------------------- long-lived pollers


async def test_discard_finished_forgets_finished_jobs_only(api: FakeJobAPI) -> None:
    """discard_finished() drops finished jobs from lookups; held handles and live jobs stay."""
    api.script("a", job("done", result="A"))
    api.script("b", job("running"), job("running"), job("done", result="B"))
    async with poller(api) as p:
        a, b = p.add("a"), p.add("b")
        await a
        assert p.discard_finished() == 1
        assert p.discard_finished() == 0
        with pytest.raises(ValueError, match="no job 'a' in this poller"):
            p.handle("a")
        assert p.handle("b") is b
        assert a.result() == "A"
        assert await p.gather("b") == ["B"]
        assert "finished=2" in repr(p)
    assert p.statistics().finished[JobState.SUCCEEDED] == 2


async def test_gather_survives_a_discard_while_it_waits(api: FakeJobAPI) -> None:
    """A gather over chosen handles still sees jobs that finished and were then forgotten."""
    api.script("a", job("running"), job("done", result="A"))
    api.script("b", job("running"), job("running"), job("running"), job("done", result="B"))
    api.script("c", job("done", result="C"))

    async with poller(api) as p:
        handles = [p.add("a"), p.add("b"), p.add("c")]

        async def discard_later() -> None:
            await anyio.sleep(2.5)  # a and c have finished, b has not
            assert p.discard_finished() == 2

        async with anyio.create_task_group() as tg:
            tg.start_soon(discard_later)
            assert await p.gather(*handles) == ["A", "B", "C"]
        assert [h.job_id async for h in p.as_completed()] == ["b"]  # only b is remembered
        # Chosen handles are still all yielded, in the order they finished.
        assert [h.job_id async for h in p.as_completed(handles)] == ["c", "a", "b"]


async def test_as_completed_over_every_job_skips_what_was_discarded(api: FakeJobAPI) -> None:
    """Following every job, a discard skips the forgotten jobs the iterator had not reached."""
    api.script("a", job("done"))
    api.script("b", job("done"))
    api.script("c", job("running"), job("done"))
    seen: list[str] = []
    async with poller(api) as p:
        p.add("a")
        p.add("b")
        p.add("c")
        async for handle in p.as_completed():
            seen.append(handle.job_id)
            if handle.job_id == "a":
                p.discard_finished()
    assert seen == ["a", "c"]


async def test_a_check_that_never_awaits_cannot_starve_the_event_loop() -> None:
    """Workers take queued jobs without a checkpoint, but still yield every few polls."""
    polls = 0

    async def check(handle: asyncpoll.JobHandle) -> Status:
        nonlocal polls
        polls += 1  # never awaits: the poll does not yield on its own
        return Status(JobState.SUCCEEDED if polls >= 200 else JobState.RUNNING)

    seen: list[int] = []

    async def observer() -> None:
        await anyio.lowlevel.checkpoint()
        seen.append(polls)

    async with asyncpoll.TaskPoller(schedule=asyncpoll.fixed(0), max_concurrency=1) as p:
        handle = p.add("busy", check=check)
        async with anyio.create_task_group() as tg:
            tg.start_soon(observer)
        await handle
    assert polls == 200
    assert len(seen) == 1 and seen[0] <= 16  # two loop turns of the observer, 8 polls each


async def test_the_scheduler_batches_due_times_closer_than_a_tick() -> None:
    """After a wake-up that found work, the scheduler sleeps at least 1 ms: a job due
    0.4 ms after another waits for the tick's end; one due 3 ms after is on time."""
    polled: dict[str, float] = {}

    async def check(handle: asyncpoll.JobHandle) -> Status:
        polled[handle.job_id] = anyio.current_time() - t0
        return Status(JobState.SUCCEEDED)

    t0 = anyio.current_time()
    async with asyncpoll.TaskPoller() as p:
        for job_id, first in (("a", 1.0), ("b", 1.0004), ("c", 1.003)):
            p.add(job_id, check=check, schedule=asyncpoll.fixed(1.0, first=first))
    assert polled == pytest.approx({"a": 1.0, "b": 1.001, "c": 1.003}, abs=1e-9)


@pytest.mark.parametrize("outcome_first", [True, False], ids=["answer-first", "limit-first"])
async def test_a_poll_answered_at_its_limit_never_harms_the_next_job(outcome_first: bool) -> None:
    """A request answered in the very instant its limit passes settles its own job only:
    the worker's next job (taken without a checkpoint) is polled normally."""
    limit = 5.0
    polled: dict[str, list[float]] = {"a": [], "b": []}

    async def slow(handle: asyncpoll.JobHandle) -> Status:
        polled["a"].append(anyio.current_time())
        if handle.attempts == 1:  # only the first poll is slow: a retry answers at once
            await anyio.sleep(limit - 1e-9 if outcome_first else limit)
        return Status(JobState.SUCCEEDED, result="slow")

    async def quick(handle: asyncpoll.JobHandle) -> Status:
        polled["b"].append(anyio.current_time())
        return Status(JobState.SUCCEEDED, result="quick")

    t0 = anyio.current_time()
    async with asyncpoll.TaskPoller(
        max_concurrency=1, request_timeout=limit, retry_schedule=asyncpoll.fixed(1.0)
    ) as p:
        a = p.add("a", check=slow)
        b = p.add("b", check=quick)
        results = await p.gather(a, b, return_exceptions=True)
    assert results == ["slow", "quick"]
    # b is the worker's next job: polled once, right after a's first poll, never cut.
    assert rel(polled["b"], t0) == [limit]
    assert (b.state, b.attempts) == (JobState.SUCCEEDED, 1)
    if outcome_first:
        assert rel(polled["a"], t0) == [0.0]
    else:
        # An exact tie: the event loop picks the winner (trio at random). Either a's answer
        # won, or the limit cut the poll and a's retry 1 s later answered at once.
        assert rel(polled["a"], t0) in ([0.0], [0.0, limit + 1.0])
    assert a.attempts == len(polled["a"])
    assert p.statistics().transient_errors == a.attempts - 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Task.cancelling() is Python 3.11+")
@pytest.mark.parametrize(
    "anyio_backend", [("asyncio", {"loop_factory": _virtual_loop})], ids=["asyncio"]
)
async def test_a_check_that_swallows_its_own_cancel_cannot_break_the_worker() -> None:
    """A check= that cancels its own task and swallows the error leaves the task's cancel
    count raised; the worker's next cut (request_timeout) still settles only that job."""
    import asyncio

    async def sloppy(handle: asyncpoll.JobHandle) -> Status:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):  # swallowed, never uncancel()ed
            await asyncio.sleep(0)
        return Status(JobState.SUCCEEDED, result="sloppy")

    async def slow(handle: asyncpoll.JobHandle) -> Status:
        if handle.attempts == 1:
            await anyio.sleep(5)  # cut by request_timeout, retried
        return Status(JobState.SUCCEEDED, result="slow")

    async with asyncpoll.TaskPoller(
        max_concurrency=1, request_timeout=1.0, retry_schedule=asyncpoll.fixed(0)
    ) as p:
        a, b = p.add("a", check=sloppy), p.add("b", check=slow)
        assert await p.gather(a, b) == ["sloppy", "slow"]
    assert b.attempts == 2
