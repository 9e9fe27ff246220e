"""Safety-net tests: each one fails if a specific safety rule of the engine is broken.

Credentials stay on the job's origin (remote cancels, status URLs on allowed other
origins), server redirects are checked and capped, back-pressure never counts as a
failure, epoch rate-limit resets are read against the server's clock only, readers can
claim status codes, body caps are exact, and done callbacks never raise. They use only
the public API (``TaskPoller``, handles, ``statistics()``) against a scripted fake job
API in virtual time, so they hold for any engine that keeps these rules.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll
from asyncpoll import JobState

pytestmark = pytest.mark.anyio

#: Credentials the poller (headers=) and the caller's client (cookies) carry.
CREDENTIALS = {"Authorization": "Bearer k", "X-Api-Key": "key-1", "X-Trace": "t1"}


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second unless told otherwise."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    options.setdefault("client", api.client())
    return asyncpoll.TaskPoller("/jobs/{job_id}", **options)


def cookie_client(api: FakeJobAPI) -> httpx.AsyncClient:
    """A client on the fake API whose cookie jar holds a session cookie."""
    return httpx.AsyncClient(
        transport=httpx.MockTransport(api.router.async_handler),
        base_url=api.base_url,
        cookies={"session": "s3cret"},
    )


def assert_with_credentials(request: httpx.Request) -> None:
    assert request.headers.get("authorization") == "Bearer k"
    assert request.headers.get("x-api-key") == "key-1"
    assert "session=s3cret" in request.headers.get("cookie", "")
    assert request.headers.get("x-trace") == "t1"


def assert_without_credentials(request: httpx.Request) -> None:
    assert "authorization" not in request.headers
    assert "x-api-key" not in request.headers
    assert "cookie" not in request.headers
    assert request.headers.get("x-trace") == "t1"  # not a credential: it goes along


# ---------------------------------------------------------------- 1. credentials


@pytest.mark.parametrize("how", ["handle", "poller"])
async def test_a_remote_cancel_on_another_origin_gets_no_credentials(
    api: FakeJobAPI, how: str
) -> None:
    """A cancel request sent to an allowed other origin carries no credential header or cookie."""
    api.script("a", job("running"))
    cancel = api.router.delete("https://ops.test/cancel/a").mock(return_value=httpx.Response(202))
    client = cookie_client(api)
    async with (
        client,
        poller(
            api,
            client=client,
            headers=CREDENTIALS,
            cancel_url="https://ops.test/cancel/{job_id}",
            allowed_origins=["https://ops.test"],
        ) as p,
    ):
        handle = p.add("a")
        await anyio.sleep(0.5)
        if how == "handle":
            assert await handle.cancel_remote() is True
        else:
            assert await p.cancel("a", remote=True) is True
        assert anyio.current_time() == 0.5
    assert handle.state is JobState.CANCELLED
    assert cancel.call_count == 1
    assert_without_credentials(cancel.calls[0].request)
    # The status poll, and the read that confirms the accepted cancel: the job's origin.
    assert len(api.requests) == 2
    for request in api.requests:
        assert_with_credentials(request)


async def test_a_per_job_cancel_url_on_another_origin_gets_no_credentials(
    api: FakeJobAPI,
) -> None:
    """add(cancel_url=...) on another origin: the DELETE carries no credentials either."""
    api.script("a", job("running"))
    cancel = api.router.delete("https://ops.test/jobs/a").mock(return_value=httpx.Response(204))
    client = cookie_client(api)
    async with client, poller(api, client=client, headers=CREDENTIALS) as p:
        handle = p.add("a", cancel_url="https://ops.test/jobs/a")
        await anyio.sleep(0.5)
        assert await handle.cancel_remote() is True
    assert cancel.call_count == 1
    assert_without_credentials(cancel.calls[0].request)


@pytest.mark.parametrize(
    ("code", "headers", "body"),
    [
        (202, {"Location": "https://jobs.other.test/jobs/7"}, None),
        (202, {"Operation-Location": "https://jobs.other.test/jobs/7"}, None),
        (200, {}, {"id": "7", "statusUrl": "https://jobs.other.test/jobs/7"}),
    ],
    ids=["location", "operation-location", "body-link"],
)
async def test_a_status_url_on_an_allowed_other_origin_is_polled_without_credentials(
    api: FakeJobAPI, code: int, headers: dict[str, str], body: Any
) -> None:
    """A status URL submit() finds on an allowed other origin is polled with no credentials."""
    create = api.router.post("/render").mock(
        return_value=httpx.Response(code, headers=headers, json=body)
    )
    status = api.router.get("https://jobs.other.test/jobs/7").mock(
        side_effect=[job("running"), job("running"), job("done", result="ok")]
    )
    client = cookie_client(api)
    t0 = anyio.current_time()
    async with (
        client,
        poller(
            api, client=client, headers=CREDENTIALS, allowed_origins=["https://jobs.other.test"]
        ) as p,
    ):
        handle = await p.submit("/render", json={"scene": 1})
        assert handle.url == "https://jobs.other.test/jobs/7"
        assert await handle == "ok"
        assert anyio.current_time() - t0 == 2.0
    assert create.call_count == 1
    assert_with_credentials(create.calls[0].request)
    assert status.call_count == 3
    for call in status.calls:
        assert_without_credentials(call.request)


async def test_a_remote_cancel_of_a_job_on_an_allowed_other_origin_gets_no_credentials(
    api: FakeJobAPI,
) -> None:
    """cancel_remote() of a submitted job polled on another origin sends no credentials."""
    api.router.post("/render").mock(
        return_value=httpx.Response(202, headers={"Location": "https://jobs.other.test/jobs/7"})
    )
    api.router.get("https://jobs.other.test/jobs/7").mock(return_value=job("running"))
    cancel = api.router.delete("https://jobs.other.test/jobs/7").mock(
        return_value=httpx.Response(204)
    )
    client = cookie_client(api)
    async with (
        client,
        poller(
            api, client=client, headers=CREDENTIALS, allowed_origins=["https://jobs.other.test"]
        ) as p,
    ):
        handle = await p.submit("/render")
        await anyio.sleep(1.5)
        assert await p.cancel(handle, remote=True) is True
    assert handle.state is JobState.CANCELLED
    assert cancel.call_count == 1
    assert_without_credentials(cancel.calls[0].request)


# ---------------------------------------------------------------- 2. redirects


async def test_a_result_redirect_to_a_foreign_origin_is_not_followed(api: FakeJobAPI) -> None:
    """fetch_result=True: a 302 from the result URL to a non-allowed origin ends the job ERRORED."""
    api.script("a", job("done", resultUrl="/results/a"))
    result = api.router.get("/results/a").mock(
        return_value=httpx.Response(302, headers={"Location": "https://evil.test/steal"})
    )
    evil = api.router.get(host="evil.test").mock(return_value=httpx.Response(200, json={}))
    async with poller(api, headers=CREDENTIALS, fetch_result=True) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert handle.state is JobState.ERRORED
    assert info.value.message == (
        "refusing the result document's redirect "
        "'https://evil.test/steal': its origin https://evil.test:443 differs from "
        "'https://api.test/results/a'; list it in allowed_origins= to trust it"
    )
    assert (len(api.requests), result.call_count, evil.call_count) == (1, 1, 0)
    assert anyio.current_time() == 0.0


async def test_a_result_redirect_to_an_allowed_origin_is_followed_without_credentials(
    api: FakeJobAPI,
) -> None:
    """A result redirect to an allowed other origin is followed, with no credentials sent there."""
    api.script("a", job("done", resultUrl="/results/a"))
    api.router.get("/results/a").mock(
        return_value=httpx.Response(302, headers={"Location": "https://cdn.test/a.json"})
    )
    cdn = api.router.get("https://cdn.test/a.json").mock(
        return_value=httpx.Response(200, json={"pages": 2})
    )
    client = cookie_client(api)
    async with (
        client,
        poller(
            api,
            client=client,
            headers=CREDENTIALS,
            fetch_result=True,
            allowed_origins=["https://cdn.test"],
        ) as p,
    ):
        assert await p.add("a") == {"pages": 2}
    assert cdn.call_count == 1
    assert_without_credentials(cdn.calls[0].request)


async def test_a_status_url_redirecting_forever_errors_after_five_redirects(
    api: FakeJobAPI,
) -> None:
    """A status URL that keeps redirecting is followed exactly 5 times, then the job ERRORS."""
    # a -> b -> a -> ... for 10 answers each, then done: bounded even without a cap.
    api.script("a", *[httpx.Response(302, headers={"Location": "/jobs/b"})] * 10, job("done"))
    api.script("b", *[httpx.Response(307, headers={"Location": "/jobs/a"})] * 10, job("done"))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert handle.state is JobState.ERRORED
    assert info.value.message == "more than 5 redirects in a row"
    assert info.value.http_status == 307  # b's answer, the 6th redirect
    # The first request and the 5 redirects followed; the 6th redirect is refused.
    assert [j for _, j in api.calls] == ["a", "b", "a", "b", "a", "b"]
    assert rel(api.times("a") + api.times("b"), 0.0) == [0.0] * 6
    assert p.statistics().requests == 6


async def test_the_redirect_cap_counts_redirects_in_a_row_only(api: FakeJobAPI) -> None:
    """A status read between redirects starts the count again: 5 + 5 redirects are followed."""
    moved = httpx.Response(302, headers={"Location": "/jobs/a"})
    api.script("a", *[moved] * 5, job("running"), *[moved] * 5, job("done", result=1))
    t0 = anyio.current_time()
    async with poller(api) as p:
        handle = p.add("a")
        assert await handle == 1
    assert rel(api.times("a"), t0) == [0.0] * 6 + [1.0] * 6


async def test_a_result_url_redirecting_forever_errors_after_five_redirects(
    api: FakeJobAPI,
) -> None:
    """fetch_result=True: a result URL that keeps redirecting is followed 5 times, then ERRORED."""
    api.script("a", job("done", resultUrl="/results/0"))
    fetched: list[str] = []

    def result(request: httpx.Request) -> httpx.Response:
        fetched.append(request.url.path)
        n = len(fetched)
        if n > 20:  # bounded even without a cap
            return httpx.Response(200, json={"doc": n})
        return httpx.Response(302, headers={"Location": f"/results/{n}"})

    api.router.get(path__startswith="/results/").mock(side_effect=result)
    async with poller(api, fetch_result=True) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert info.value.message == "more than 5 redirects in a row"
    assert fetched == [f"/results/{i}" for i in range(6)]
    assert handle.state is JobState.ERRORED


# ---------------------------------------------------------------- 3. back-pressure


async def test_a_503_with_retry_after_is_back_pressure_not_a_failure(api: FakeJobAPI) -> None:
    """max_errors=1: a 503 with Retry-After is waited out (and pauses the host), never counted."""
    api.script(
        "a", httpx.Response(503, headers={"Retry-After": "3"}), job("done", result="survived")
    )
    api.script("b", job("done", result="b"))
    t0 = anyio.current_time()
    async with poller(api, max_errors=1) as p:
        a = p.add("a")
        b = p.add("b", schedule=asyncpoll.fixed(1.0, first=1.0))
        assert await a == "survived"
        assert await b == "b"
    assert a.state is JobState.SUCCEEDED
    assert rel(api.times("a"), t0) == [0, 3]
    assert rel(api.times("b"), t0) == [3]  # due at 1 s, held by the host's pause
    stats = p.statistics()
    assert (stats.throttled, stats.transient_errors) == (1, 0)
    assert a.attempts == 2


async def test_a_503_without_retry_after_is_a_failure(api: FakeJobAPI) -> None:
    """max_errors=1: a bare 503 (no hint) counts, and ends the job ERRORED at once."""
    api.script("a", httpx.Response(503), job("done"))
    async with poller(api, max_errors=1) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert info.value.http_status == 503
    assert len(api.requests) == 1
    assert p.statistics().transient_errors == 1


#: An HTTP date and the epoch seconds it names.
SERVER_DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
SERVER_EPOCH = 1445412480


@pytest.mark.parametrize("prefix", ["RateLimit", "X-RateLimit"])
async def test_an_epoch_ratelimit_reset_is_read_against_the_servers_date(
    api: FakeJobAPI, prefix: str
) -> None:
    """An epoch RateLimit-Reset 10 s after the server's Date pauses the host exactly 10 s."""
    spent = httpx.Response(
        200,
        json={"status": "running"},
        headers={
            f"{prefix}-Remaining": "0",
            f"{prefix}-Reset": str(SERVER_EPOCH + 10),
            "Date": SERVER_DATE,
        },
    )
    api.script("a", spent, job("done"))
    t0 = anyio.current_time()
    async with poller(api) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0, 10]


async def test_an_epoch_ratelimit_reset_without_a_date_is_ignored(api: FakeJobAPI) -> None:
    """Without a Date header an epoch RateLimit-Reset cannot be measured: it pauses nothing."""
    spent = httpx.Response(
        200,
        json={"status": "running"},
        # An epoch far in the future of any wall clock: measured against one, it would pause.
        headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "4000000000"},
    )
    api.script("a", spent, job("done"))
    t0 = anyio.current_time()
    async with poller(api) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0, 1]


async def test_a_reader_claims_its_status_codes_from_the_engine(api: FakeJobAPI) -> None:
    """JsonReader(status_codes=) reads a 404 and a 410 as states, not as HTTP errors."""
    reader = asyncpoll.JsonReader(
        state="job.state",
        error="detail",
        status_codes={404: JobState.FAILED, 410: JobState.CANCELLED},
    )
    api.script("a", httpx.Response(200, json={"job": {"state": "running"}}), httpx.Response(404))
    api.script("b", httpx.Response(404, json={"detail": "expired"}))
    api.script("c", httpx.Response(410, json={"detail": "purged"}))
    t0 = anyio.current_time()
    async with poller(api, reader=reader) as p:
        a, b, c = p.add("a"), p.add("b"), p.add("c")
        results = await p.gather(a, b, c, return_exceptions=True)
    assert [h.state for h in (a, b, c)] == [JobState.FAILED, JobState.FAILED, JobState.CANCELLED]
    assert [type(r) for r in results] == [
        asyncpoll.JobFailed,
        asyncpoll.JobFailed,
        asyncpoll.JobCancelled,
    ]
    assert str(results[1]) == "job 'b' failed: expired"
    assert str(results[2]) == "job 'c' was cancelled: cancelled on the server: purged"
    assert rel(api.times("a"), t0) == [0, 1]


async def test_an_unclaimed_404_still_ends_the_job_errored(api: FakeJobAPI) -> None:
    """A reader without status_codes leaves a 404 to the engine: ERRORED with a PollError."""
    reader = asyncpoll.JsonReader(state="job.state", status_codes={410: JobState.CANCELLED})
    api.script("a", httpx.Response(404, json={"detail": "expired"}))
    async with poller(api, reader=reader) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    assert info.value.http_status == 404
    assert handle.state is JobState.ERRORED


# ---------------------------------------------------------------- 4. body caps


def body_of(size: int) -> bytes:
    """A JSON status body of exactly ``size`` bytes saying the job is done."""
    head = b'{"status": "done", "pad": "'
    tail = b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size and json.loads(body)["status"] == "done"
    return body


@pytest.mark.parametrize(("size", "fits"), [(500, True), (501, False)], ids=["cap", "cap+1"])
async def test_a_status_body_of_exactly_max_body_bytes_is_read(
    api: FakeJobAPI, size: int, fits: bool
) -> None:
    """max_body=500: a 500-byte status body is read, a 501-byte one is refused."""
    api.script("a", httpx.Response(200, content=body_of(size)))
    async with poller(api, max_body=500) as p:
        handle = p.add("a")
        outcome = await p.gather(handle, return_exceptions=True)
    if fits:
        assert handle.state is JobState.SUCCEEDED
        assert outcome[0]["status"] == "done"
    else:
        assert handle.state is JobState.ERRORED
        assert isinstance(outcome[0], asyncpoll.PollError)
        assert "is larger than 500 bytes (decoded); refusing to read more" in str(outcome[0])
    assert len(api.requests) == 1


@pytest.mark.parametrize(("size", "fits"), [(800, True), (801, False)], ids=["cap", "cap+1"])
async def test_a_result_document_of_exactly_max_result_body_bytes_is_read(
    api: FakeJobAPI, size: int, fits: bool
) -> None:
    """max_result_body=800: an 800-byte result document is read, an 801-byte one refused."""
    api.script("a", job("done", resultUrl="/results/a"))
    api.router.get("/results/a").mock(return_value=httpx.Response(200, content=b"r" * size))
    async with poller(api, fetch_result=True, max_result_body=800) as p:
        handle = p.add("a")
        outcome = await p.gather(handle, return_exceptions=True)
    if fits:
        assert outcome == [b"r" * 800]
    else:
        assert isinstance(outcome[0], asyncpoll.PollError)
        assert "is larger than 800 bytes (decoded); refusing to read more" in str(outcome[0])
        assert handle.state is JobState.ERRORED


# ---------------------------------------------------------------- 4. done callbacks


async def test_done_callbacks_raising_any_exception_are_logged_counted_and_contained(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """add_done_callback: ValueError, RuntimeError and KeyError are each logged and counted,
    the other callbacks still run, and nothing reaches the caller, before or after done."""
    api.script("a", job("running"), job("done", result="A"))
    ran: list[str] = []

    def raising(exc: Exception) -> Any:
        def callback(handle: asyncpoll.JobHandle) -> None:
            ran.append(type(exc).__name__)
            raise exc

        return callback

    async with poller(api) as p:
        handle = p.add("a")
        handle.add_done_callback(raising(ValueError("v")))
        handle.add_done_callback(raising(RuntimeError("r")))
        handle.add_done_callback(raising(KeyError("k")))
        handle.add_done_callback(lambda h: ran.append(f"ok:{h.state.value}"))
        assert await handle == "A"
        assert ran == ["ValueError", "RuntimeError", "KeyError", "ok:succeeded"]
        assert p.statistics().callback_errors == 3
        # Added after the job finished: called at once, and still contained.
        handle.add_done_callback(raising(RuntimeError("late")))
        handle.add_done_callback(raising(KeyError("late")))
        handle.add_done_callback(raising(ValueError("late")))
        assert p.statistics().callback_errors == 6
    early = ["ValueError", "RuntimeError", "KeyError", "ok:succeeded"]
    assert ran == [*early, "RuntimeError", "KeyError", "ValueError"]
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 6
    assert all("raised for job 'a'" in r.getMessage() for r in errors)
    assert [r.exc_info[0] for r in errors if r.exc_info] == [
        ValueError,
        RuntimeError,
        KeyError,
        RuntimeError,
        KeyError,
        ValueError,
    ]
    assert handle.state is JobState.SUCCEEDED
    assert p.statistics().finished[JobState.SUCCEEDED] == 1
