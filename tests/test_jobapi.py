"""HTTP job-API semantics of the engine: submit, resubmit, results, redirects, cancel,
back-pressure, pacing and stalls, against scripted fake servers in virtual time."""

from __future__ import annotations

import logging
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll
from asyncpoll import JobState

pytestmark = pytest.mark.anyio


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    """A poller on the fake API's client, polling every second unless told otherwise."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


# ---------------------------------------------------------------- submit


async def test_submit_follows_operation_location(api: FakeJobAPI) -> None:
    """submit() POSTs once, then polls the Operation-Location URL until done."""
    create = api.router.post("/render").mock(
        return_value=httpx.Response(
            202, headers={"Operation-Location": "/jobs/op-7"}, json={"accepted": True}
        )
    )
    api.script("op-7", job("running"), job("done", result={"frames": 24}))
    async with poller(api, headers={"Authorization": "Bearer k"}) as p:
        handle = await p.submit("/render", json={"scene": 1})
        assert handle.job_id == "op-7"
        assert handle.url == "https://api.test/jobs/op-7"
        assert await handle == {"frames": 24}
    assert create.call_count == 1
    sent = create.calls[0].request
    assert sent.method == "POST"
    assert sent.content == b'{"scene":1}'
    assert sent.headers["authorization"] == "Bearer k"
    assert [s.job_id for s in handle.submissions] == ["op-7"]
    assert handle.submissions[0].http_status == 202


async def test_submit_falls_back_to_the_template_with_the_body_id(api: FakeJobAPI) -> None:
    """A create response with only an id in its body is polled through status_url."""
    api.router.post("/tasks").mock(
        return_value=httpx.Response(200, json={"code": 200, "data": {"taskId": 41}})
    )
    api.script("41", job("done", result="ok"))
    async with poller(api) as p:
        handle = await p.submit("/tasks", json={})
        assert (handle.job_id, handle.url) == ("41", "https://api.test/jobs/41")
        assert await handle == "ok"


async def test_a_create_response_that_already_says_done_needs_no_poll(api: FakeJobAPI) -> None:
    """A create response carrying a terminal state resolves the handle without polling."""
    api.router.post("/quick").mock(
        return_value=httpx.Response(200, json={"id": "q1", "status": "completed", "result": 5})
    )
    async with poller(api) as p:
        handle = await p.submit("/quick")
        assert await handle == 5
    assert api.calls == []


async def test_a_refused_create_request_raises_with_the_response(api: FakeJobAPI) -> None:
    """A non-2xx create answer raises SubmitError at once, the response attached."""
    api.router.post("/render").mock(
        return_value=httpx.Response(422, json={"error": "scene missing"})
    )
    async with poller(api) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render", json={})
    error = info.value
    assert isinstance(error, asyncpoll.PollError)
    assert error.http_status == 422
    assert error.response is not None and error.response.status_code == 422
    assert str(error) == (
        "https://api.test/render: the create request was refused: HTTP 422; "
        """received '{"error":"scene missing"}'"""
    )


async def test_a_create_response_without_a_way_to_poll_is_refused(api: FakeJobAPI) -> None:
    """No status URL and no id (and no template) is a SubmitError saying what is missing."""
    api.router.post("/render").mock(return_value=httpx.Response(200, json={"ok": True}))
    async with asyncpoll.TaskPoller(client=api.client()) as p:
        with pytest.raises(asyncpoll.SubmitError, match="cannot tell where to poll the new job"):
            await p.submit("/render")


async def test_a_cross_origin_location_is_refused(api: FakeJobAPI) -> None:
    """A Location on another origin is refused unless allowed_origins lists it."""
    api.router.post("/render").mock(
        return_value=httpx.Response(202, headers={"Location": "https://evil.test/jobs/1"})
    )
    async with poller(api) as p:
        with pytest.raises(asyncpoll.SubmitError, match="list it in allowed_origins="):
            await p.submit("/render")


async def test_resubmit_sends_the_create_request_again_and_follows_the_new_job(
    api: FakeJobAPI,
) -> None:
    """resubmit=2: a job failing twice is created three times; one handle follows them all."""
    ids = iter(["r1", "r2", "r3"])
    create = api.router.post("/render").mock(
        side_effect=lambda request: httpx.Response(202, headers={"Location": f"/jobs/{next(ids)}"})
    )
    api.script("r1", job("failed", error="gpu lost"))
    api.script("r2", job("running"), job("failed", error="gpu lost"))
    api.script("r3", job("done", result="third time"))
    async with poller(api) as p:
        handle = await p.submit("/render", json={"n": 1}, resubmit=2)
        assert await handle == "third time"
    assert create.call_count == 3
    assert all(c.request.content == b'{"n":1}' for c in create.calls)
    assert [s.job_id for s in handle.submissions] == ["r1", "r2", "r3"]
    assert handle.job_id == "r3"
    assert p.handle("r3") is handle


async def test_resubmits_run_out(api: FakeJobAPI) -> None:
    """After the last resubmit fails, the handle raises JobFailed for the last job."""
    ids = iter(["f1", "f2"])
    api.router.post("/render").mock(
        side_effect=lambda request: httpx.Response(202, headers={"Location": f"/jobs/{next(ids)}"})
    )
    api.script("f1", job("failed", error="bad"))
    api.script("f2", job("failed", error="still bad"))
    async with poller(api, resubmit=1) as p:
        handle = await p.submit("/render")
        with pytest.raises(asyncpoll.JobFailed, match="job 'f2' failed: still bad"):
            await handle


# ---------------------------------------------------------------- results and redirects


async def test_fetch_result_follows_a_same_origin_link_with_credentials(api: FakeJobAPI) -> None:
    """fetch_result=True GETs the result link (same origin: with credentials)."""
    api.script("a", job("done", resultUrl="/results/a.json"))
    doc = api.router.get("/results/a.json").mock(
        return_value=httpx.Response(200, json={"pages": 3})
    )
    async with poller(api, headers={"X-Api-Key": "k"}, fetch_result=True) as p:
        handle = p.add("a")
        assert await handle == {"pages": 3}
    assert doc.calls[0].request.headers["x-api-key"] == "k"
    assert handle.status is not None
    assert handle.status.result_url == "/results/a.json"
    assert handle.last_response is not None
    assert handle.last_response.request_url == "https://api.test/results/a.json"


async def test_a_result_on_an_allowed_cdn_is_fetched_without_credentials(
    api: FakeJobAPI,
) -> None:
    """A result on an allowed other origin is fetched with no credential header or cookie."""
    api.script("a", httpx.Response(303, headers={"Location": "https://cdn.test/a.bin"}))
    cdn = api.router.get("https://cdn.test/a.bin").mock(
        return_value=httpx.Response(200, content=b"\x00\x01binary")
    )
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(api.router.async_handler),
        base_url=api.base_url,
        headers={"Proxy-Authorization": "Basic p"},
        cookies={"session": "s"},
    )
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=client,
        headers={"Authorization": "Bearer k", "X-Tenant": "t1", "X-Signature": "sig"},
        secret_headers=["X-Signature"],
        allowed_origins=["https://cdn.test"],
        fetch_result=True,
    ) as p:
        assert await p.add("a") == b"\x00\x01binary"
    sent = cdn.calls[0].request.headers
    assert "authorization" not in sent
    assert "proxy-authorization" not in sent
    assert "cookie" not in sent
    assert "x-signature" not in sent
    assert sent["x-tenant"] == "t1"
    assert api.requests[0].headers["authorization"] == "Bearer k"
    await client.aclose()


async def test_a_303_resolves_with_the_checked_link(api: FakeJobAPI) -> None:
    """303 See Other means done: the handle resolves with the absolute result URL."""
    api.script(
        "a", job("processing", progress=45), httpx.Response(303, headers={"Location": "/r/a"})
    )
    async with poller(api) as p:
        handle = p.add("a")
        assert await handle == "https://api.test/r/a"
    assert handle.state is JobState.SUCCEEDED


async def test_a_result_link_to_a_foreign_origin_is_refused(api: FakeJobAPI) -> None:
    """A result link on an origin not allowed ends the job ERRORED, naming the link."""
    api.script("a", job("done", resultUrl="https://elsewhere.test/r"))
    async with poller(api, fetch_result=True) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError, match="refusing the result link"):
            await handle
    assert len(api.requests) == 1


async def test_a_redirected_status_url_is_polled_at_its_new_place(api: FakeJobAPI) -> None:
    """A 307 on a status request moves polling to the (same-origin) target at once."""
    api.script("old", httpx.Response(307, headers={"Location": "/jobs/new"}))
    api.script("new", job("running"), job("done", result="moved"))
    t0 = anyio.current_time()
    async with poller(api) as p:
        handle = p.add("old")
        assert await handle == "moved"
    assert [(round(t - t0, 6), j) for t, j in api.calls] == [(0, "old"), (0, "new"), (1, "new")]


async def test_a_cross_origin_redirect_is_refused(api: FakeJobAPI) -> None:
    """A status redirect to another origin is never followed."""
    api.script("a", httpx.Response(302, headers={"Location": "https://evil.test/jobs/a"}))
    async with poller(api) as p:
        with pytest.raises(asyncpoll.PollError, match="refusing the redirect Location"):
            await p.add("a")


# ---------------------------------------------------------------- cancel


async def test_cancel_remote_deletes_and_resolves_cancelled(api: FakeJobAPI) -> None:
    """cancel_remote() sends DELETE on the status URL and resolves the handle CANCELLED."""
    api.script("a", job("running"))
    delete = api.router.delete("/jobs/a").mock(return_value=httpx.Response(204))
    async with poller(api, headers={"Authorization": "Bearer k"}) as p:
        handle = p.add("a")
        await anyio.sleep(1.5)
        assert await handle.cancel_remote() is True
        with pytest.raises(asyncpoll.JobCancelled, match="at the caller's request"):
            await handle
        assert await handle.cancel_remote() is False
    assert delete.call_count == 1
    assert delete.calls[0].request.headers["authorization"] == "Bearer k"


async def test_a_refused_cancel_resolves_as_the_server_says(api: FakeJobAPI) -> None:
    """A cancel refused because the job finished resolves the handle with its real result."""
    api.script("a", job("running"), job("done", result="finished first"))
    api.router.delete("/jobs/a").mock(return_value=httpx.Response(409, json={"error": "done"}))
    async with poller(api, schedule=asyncpoll.fixed(100.0)) as p:
        handle = p.add("a")
        await anyio.sleep(1)
        assert await p.cancel("a", remote=True) is False
        assert await handle == "finished first"


async def test_a_refused_cancel_of_a_running_job_raises_and_keeps_polling(
    api: FakeJobAPI,
) -> None:
    """A refused cancel of a job still running raises PollError; the job goes on."""
    api.script("a", job("running"), job("running"), job("done", result=1))
    api.router.post("/jobs/a/cancel").mock(return_value=httpx.Response(400))
    async with poller(api, cancel_method="POST", cancel_url="/jobs/{job_id}/cancel") as p:
        handle = p.add("a")
        await anyio.sleep(0.5)
        with pytest.raises(asyncpoll.PollError, match="the server refused to cancel: HTTP 400"):
            await handle.cancel_remote()
        assert await handle == 1


# ---------------------------------------------------------------- back-pressure and pacing


async def test_a_429_pauses_every_job_on_that_host_only(api: FakeJobAPI) -> None:
    """One job's 429 holds back the other jobs on the host, not jobs on another host."""
    api.script("a", job("running"), httpx.Response(429, headers={"Retry-After": "5"}), job("done"))
    api.script("b", job("running"), job("running"), job("done"))
    other_times: list[float] = []

    def other(request: httpx.Request) -> httpx.Response:
        other_times.append(anyio.current_time())
        return job("running") if len(other_times) < 3 else job("done")

    api.router.get(host="other.test", path="/jobs/c").mock(side_effect=other)
    t0 = anyio.current_time()
    async with poller(api) as p:
        p.add("a")
        p.add("b", schedule=asyncpoll.fixed(1.0, first=0.5))
        p.add("c", url="https://other.test/jobs/c")
    # The 429 at 1 s pauses the host until 6 s and halves its observed rate (2/s) to 1/s:
    # b, waiting since 1.5 s, goes first at 6 s, a a second later; the healthy answer at
    # 7 s lifts the rate to 1.1/s, so b's next token comes at 7 + 1/1.1.
    assert rel(api.times("a"), t0) == [0, 1, 7]
    assert rel(api.times("b"), t0) == [0.5, 6, round(7 + 1 / 1.1, 6)]
    assert rel(other_times, t0) == [0, 1, 2]


async def test_ratelimit_remaining_zero_pauses_the_host_until_reset(api: FakeJobAPI) -> None:
    """RateLimit-Remaining: 0 with RateLimit-Reset: 10 holds every request for 10 s."""
    exhausted = httpx.Response(
        200,
        json={"status": "running"},
        headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "10"},
    )
    api.script("a", exhausted, job("done"))
    api.script("b", job("running"), job("running"), job("done"))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(0.5)) as p:
        p.add("a")
        p.add("b", schedule=asyncpoll.fixed(0.5, first=0.1))
    assert rel(api.times("a"), t0) == [0, 10]
    assert rel(api.times("b"), t0) == [10, 10.5, 11]


async def test_per_host_rate_limits(api: FakeJobAPI) -> None:
    """rate_limit={host: ..., "*": ...} gives each host its own bucket."""
    for i in range(3):
        api.script(f"j{i}", job("done"))
    slow_times: list[float] = []

    def slow_job(request: httpx.Request) -> httpx.Response:
        slow_times.append(anyio.current_time())
        return job("done")

    api.router.get(host="slow.test", path__regex=r"^/jobs/\d$").mock(side_effect=slow_job)
    t0 = anyio.current_time()
    async with poller(api, rate_limit={"slow.test": 1.0, "*": asyncpoll.RateLimit(10)}) as p:
        for i in range(3):
            p.add(f"j{i}")
            p.add(f"s{i}", url=f"https://slow.test/jobs/{i}")
    assert rel([t for t, _ in api.calls], t0) == [0, 0.1, 0.2]
    assert rel(slow_times, t0) == [0, 1, 2]
    assert p.statistics().requests == 6
    assert anyio.current_time() - t0 == pytest.approx(2.0)


async def test_hint_headers_min_and_max_interval_pace_polls(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Custom -ms hint headers, min_interval, max_interval and max_retry_after shape gaps."""
    api.script(
        "a",
        httpx.Response(200, json={"status": "running"}, headers={"poll-after-ms": "2500"}),
        httpx.Response(200, json={"status": "running"}, headers={"Retry-After": "86400"}),
        job("running"),
        job("done"),
    )
    t0 = anyio.current_time()
    async with poller(
        api,
        schedule=asyncpoll.fixed(0.1),
        hint_headers=["poll-after-ms"],
        min_interval=0.5,
        max_interval=60.0,
        max_retry_after=300.0,
    ) as p:
        await p.add("a")
    assert rel(api.times("a"), t0) == [0, 2.5, 62.5, 63]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        "api.test asked to wait 86400 s; capping server hints at max_retry_after=300 s"
    ]


# ---------------------------------------------------------------- stalls, caps, responses


async def test_a_stalled_job_is_reported_once(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """No change for stall_timeout: one WARNING, one on_stall call, and polling goes on."""
    api.script("a", *[job("running", progress=10)] * 8, job("done"))
    stalled: list[tuple[float, bool]] = []
    t0 = anyio.current_time()
    async with poller(
        api,
        stall_timeout=5.0,
        on_stall=lambda h: stalled.append((round(anyio.current_time() - t0, 6), h.stalled)),
    ) as p:
        handle = p.add("a")
        assert await handle == {"status": "done"}
    assert stalled == [(5.0, True)]
    assert [r.getMessage() for r in caplog.records if "has not changed" in r.getMessage()] == [
        "job 'a' has not changed for 5 s (state running, progress 0.1)"
    ]


async def test_fail_on_stall_ends_the_job(api: FakeJobAPI) -> None:
    """With fail_on_stall=True a stalled job ends TIMED_OUT with JobStalled."""
    api.script("a", job("queued"))
    t0 = anyio.current_time()
    async with poller(api, stall_timeout=3.0, fail_on_stall=True) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.JobStalled, match="made no progress for 3 s") as info:
            await handle
        assert anyio.current_time() - t0 == pytest.approx(3.0)
    assert isinstance(info.value, asyncpoll.JobTimeout)
    assert handle.state is JobState.TIMED_OUT


async def test_max_body_caps_status_responses(api: FakeJobAPI) -> None:
    """A status body over max_body ends the job with a PollError naming the cap."""
    api.script("a", httpx.Response(200, json={"status": "running", "pad": "x" * 2000}))
    async with poller(api, max_body=1000) as p:
        with pytest.raises(asyncpoll.PollError, match="larger than 1000 bytes"):
            await p.add("a")


async def test_the_last_response_is_attached_to_the_handle_and_the_error(
    api: FakeJobAPI,
) -> None:
    """Every outcome keeps the last HTTP response on the handle and on the exception."""
    api.script("a", job("running"), job("failed", error="nope"))
    async with poller(api) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert handle.last_response is info.value.response
    assert handle.last_response is not None
    assert handle.last_response.json() == {"status": "failed", "error": "nope"}


async def test_deeply_nested_json_is_a_clear_error(api: FakeJobAPI) -> None:
    """JSON nested past the parser's depth is a transient, quoted error, not a crash."""
    api.script("a", httpx.Response(200, content=b"[" * 100_000 + b"]" * 100_000))
    async with poller(api, max_errors=1) as p:
        with pytest.raises(asyncpoll.PollError, match="nested too deeply"):
            await p.add("a")


async def test_a_create_response_saying_failed_still_gets_its_resubmit(api: FakeJobAPI) -> None:
    """A create response already FAILED is confirmed by one poll, then resubmitted once."""
    ids = iter(["x1", "x2"])
    create = api.router.post("/render").mock(
        side_effect=lambda request: httpx.Response(
            202, headers={"Location": f"/jobs/{next(ids)}"}, json={"status": "failed"}
        )
    )
    api.script("x1", job("failed", error="bad"))
    api.script("x2", job("done", result="ok"))
    async with poller(api) as p:
        handle = await p.submit("/render", resubmit=1)
        assert await handle == "ok"
    assert create.call_count == 2
    assert [j for _, j in api.calls] == ["x1", "x2"]


# ---------------------------------------------------------------- regressions found in review


async def test_a_refused_cancel_never_doubles_the_polling(api: FakeJobAPI) -> None:
    """The status read after a refused cancel leaves the job's schedule alone."""
    api.script("a", job("running"), httpx.Response(307, headers={"Location": "/jobs/b"}))
    api.script("b", job("running"), job("running"), job("done", result=1))
    api.router.delete("/jobs/a").mock(return_value=httpx.Response(405))
    t0 = anyio.current_time()
    async with poller(api, schedule=asyncpoll.fixed(10.0)) as p:
        handle = p.add("a")
        await anyio.sleep(1)
        with pytest.raises(asyncpoll.PollError, match="refused to cancel: HTTP 405"):
            await handle.cancel_remote()
        assert await handle == 1
    assert rel(api.times("a"), t0) == [0, 1, 10]
    assert rel(api.times("b"), t0) == [10, 20, 30]


async def test_cancel_while_a_resubmit_is_pending_cancels_locally(api: FakeJobAPI) -> None:
    """With the last job failed and the next not yet created, cancel needs no request."""
    create = api.router.post("/render").mock(
        return_value=httpx.Response(202, headers={"Location": "/jobs/r1"})
    )
    delete = api.router.delete("/jobs/r1").mock(return_value=httpx.Response(204))
    api.script("r1", job("failed", error="x"))
    async with poller(api, retry_schedule=asyncpoll.fixed(50.0)) as p:
        handle = await p.submit("/render", resubmit=2)
        await anyio.sleep(1)
        assert await handle.cancel_remote() is True
    assert handle.state is JobState.CANCELLED
    assert (create.call_count, delete.call_count) == (1, 0)


@pytest.mark.parametrize("location", ["http://[::1/x", "https://[oops/r"])
async def test_a_malformed_location_is_refused_not_a_crash(api: FakeJobAPI, location: str) -> None:
    """A Location that is not a valid URL ends the job with a PollError saying so."""
    api.script("a", httpx.Response(302, headers={"Location": location}))
    async with poller(api) as p:
        with pytest.raises(asyncpoll.PollError, match="not a valid URL") as info:
            await p.add("a")
    assert "internal error" not in str(info.value)


async def test_a_malformed_operation_location_is_a_submit_error(api: FakeJobAPI) -> None:
    """submit() turns a malformed Operation-Location into a SubmitError."""
    api.router.post("/render").mock(
        return_value=httpx.Response(202, headers={"Operation-Location": "http://[::1/jobs/x"})
    )
    async with poller(api) as p:
        with pytest.raises(asyncpoll.SubmitError, match="not a valid URL"):
            await p.submit("/render")


async def test_a_clients_auth_params_and_cookies_stay_on_its_origin(api: FakeJobAPI) -> None:
    """auth=, params= and cookies of a caller's client never reach an allowed CDN."""
    api.script("a", httpx.Response(303, headers={"Location": "https://cdn.test/a.bin"}))
    cdn = api.router.get(host="cdn.test", path="/a.bin").mock(
        return_value=httpx.Response(200, content=b"x")
    )
    client = httpx.AsyncClient(
        transport=httpx.MockTransport(api.router.async_handler),
        base_url=api.base_url,
        auth=("user", "secret"),
        params={"api_key": "SECRET"},
        cookies={"session": "s"},
    )
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}", client=client, allowed_origins=["https://cdn.test"], fetch_result=True
    ) as p:
        assert await p.add("a") == b"x"
    sent = cdn.calls[0].request
    assert "authorization" not in sent.headers
    assert "cookie" not in sent.headers
    assert str(sent.url) == "https://cdn.test/a.bin"
    status_request = api.requests[0]
    assert status_request.headers["authorization"].startswith("Basic ")
    assert "api_key=SECRET" in str(status_request.url)
    await client.aclose()


async def test_a_budget_reset_is_capped_and_submit_is_bounded(api: FakeJobAPI) -> None:
    """A huge RateLimit-Reset pauses at most max_retry_after; submit() never waits longer
    than request_timeout for a paused host."""
    api.script(
        "a",
        httpx.Response(
            200,
            json={"status": "running"},
            headers={"RateLimit-Remaining": "0", "RateLimit-Reset": "900000000"},
        ),
        job("done", result=1),
    )
    api.router.post("/render").mock(
        return_value=httpx.Response(202, headers={"Location": "/jobs/a"})
    )
    t0 = anyio.current_time()
    async with poller(api, max_retry_after=60, request_timeout=30) as p:
        handle = p.add("a")
        await anyio.sleep(0.5)
        with pytest.raises(asyncpoll.SubmitError, match="the host is cooling down"):
            await p.submit("/render")
        assert anyio.current_time() - t0 == pytest.approx(30.5)
        assert await handle == 1
    assert rel(api.times("a"), t0) == [0, 60]


async def test_a_resubmitted_job_with_a_taken_id_fails_alone(api: FakeJobAPI) -> None:
    """A resubmit whose new id another job already has ends that handle, not the other."""
    ids = iter(["a", "b"])
    api.router.post("/render").mock(
        side_effect=lambda request: httpx.Response(202, headers={"Location": f"/jobs/{next(ids)}"})
    )
    api.script("a", job("failed"))
    api.script("b", job("running"), job("running"), job("done", result="b"))
    async with poller(api) as p:
        resubmitted = await p.submit("/render", resubmit=1)
        other = p.add("b")
    assert other.result() == "b"
    with pytest.raises(asyncpoll.PollError, match="belongs to another job"):
        resubmitted.result()


async def test_a_resubmitted_job_starts_with_a_fresh_error_budget(api: FakeJobAPI) -> None:
    """Failures of the create request do not count against the new job's budget."""
    replies = iter(
        [httpx.Response(202, headers={"Location": "/jobs/e1"})]
        + [httpx.Response(503)] * 4
        + [httpx.Response(202, headers={"Location": "/jobs/e2"})]
    )
    api.router.post("/render").mock(side_effect=lambda request: next(replies))
    api.script("e1", job("failed"))
    api.script("e2", httpx.Response(503), job("done", result=1))
    async with poller(api, max_errors=5) as p:
        handle = await p.submit("/render", resubmit=1)
        assert await handle == 1
    assert handle.attempts == 2


async def test_alike_status_urls_without_ids_stay_apart(api: FakeJobAPI) -> None:
    """Two created jobs whose status URLs end alike are two jobs, not one."""
    urls = iter(["/jobs/42/status", "/jobs/43/status"])
    api.router.post("/render").mock(
        side_effect=lambda request: httpx.Response(202, headers={"Location": next(urls)})
    )
    api.router.get("/jobs/42/status").mock(return_value=job("done", result=42))
    api.router.get("/jobs/43/status").mock(return_value=job("done", result=43))
    async with poller(api) as p:
        first = await p.submit("/render")
        second = await p.submit("/render")
        assert first is not second
        assert await p.gather(first, second) == [42, 43]
    assert first.job_id == "status"
    assert second.job_id == "https://api.test/jobs/43/status"


def test_secret_headers_are_redacted_in_the_repr() -> None:
    """Headers marked secret_headers= never show in repr(poller)."""
    p = asyncpoll.TaskPoller(
        headers={"X-Signature": "s1gn", "X-Tenant": "t"}, secret_headers=["x-signature"]
    )
    assert "s1gn" not in repr(p)
    assert "'X-Tenant': 't'" in repr(p)
