"""Five real-world job-API shapes, read with no reader configuration, in virtual time.

Each shape is a scripted fake server on a ``respx.Router`` behind ``httpx.MockTransport``;
the poller gets it as ``client=`` and uses the default reader. The tests assert what the
handles resolve to, the states and progress the poller saw, and which requests went out
when.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

import anyio
import httpx
import pytest
import respx

import asyncpoll
from asyncpoll import JobState, Status, Submission

pytestmark = pytest.mark.anyio

BASE = "https://api.test"


class ScriptedAPI:
    """A job API whose routes answer scripted replies in order, the last one repeating.

    Every request is logged as ``(virtual time, method, absolute URL)`` in ``log`` and
    kept in ``requests``.
    """

    def __init__(self) -> None:
        self.router = respx.Router(base_url=BASE, assert_all_called=False)
        self.log: list[tuple[float, str, str]] = []
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *replies: httpx.Response, **lookups: Any) -> None:
        """Answer successive ``method`` requests to ``path`` with ``replies``."""
        assert replies
        count = itertools.count()

        def answer(request: httpx.Request) -> httpx.Response:
            self.log.append((anyio.current_time(), request.method, str(request.url)))
            self.requests.append(request)
            reply = replies[min(next(count), len(replies) - 1)]
            # A fresh copy each time, so a repeated reply is never a reused object.
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

        self.router.route(method=method, path=path, **lookups).mock(side_effect=answer)

    def client(self) -> httpx.AsyncClient:
        """A client whose requests this fake answers in process."""
        return httpx.AsyncClient(
            transport=httpx.MockTransport(self.router.async_handler), base_url=BASE
        )

    def times(self, method: str, url: str) -> list[float]:
        """When ``method`` requests for ``url`` arrived."""
        return [t for t, m, u in self.log if m == method and u == url]


def ok(body: Any, **headers: str) -> httpx.Response:
    """A 200 JSON response."""
    return httpx.Response(200, json=body, headers=headers)


def rel(times: list[float], t0: float) -> list[float]:
    """Times relative to ``t0``, rounded to the microsecond."""
    return [round(t - t0, 6) for t in times]


class Seen:
    """An ``on_progress`` callback recording the state and progress of each change."""

    def __init__(self) -> None:
        self.changes: list[tuple[JobState, float | None]] = []

    def __call__(self, handle: asyncpoll.JobHandle) -> None:
        self.changes.append((handle.state, handle.progress))


@pytest.fixture
def api() -> ScriptedAPI:
    """A fresh scripted API."""
    return ScriptedAPI()


# ---------------------------------------------------------------- shape 1: status/result/message


async def test_shape1_pending_then_completed_resolves_with_the_result_field(
    api: ScriptedAPI,
) -> None:
    """Shape 1: pending polls keep going and a completed job resolves with its result field."""
    url = f"{BASE}/v1/tasks/abc"
    result = {"text": "hello", "pages": 2}
    api.on(
        "GET",
        "/v1/tasks/abc",
        ok({"status": "pending", "result": None, "message": "Queued"}),
        ok({"status": "pending", "result": None, "message": "Working"}),
        ok({"status": "completed", "result": result, "message": "Done"}),
    )
    seen = Seen()
    t0 = anyio.current_time()
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(
            "/v1/tasks/{job_id}",
            client=client,
            schedule=asyncpoll.fixed(2.0),
            on_progress=seen,
        ) as p,
    ):
        handle = p.add("abc")
        assert await handle == result
        assert anyio.current_time() - t0 == 4.0
    assert api.log == [(t0 + t, "GET", url) for t in (0.0, 2.0, 4.0)]
    assert seen.changes == [(JobState.PENDING, None)]
    assert handle.state is JobState.SUCCEEDED
    assert handle.progress == 1.0
    assert handle.status == Status(
        JobState.SUCCEEDED,
        progress=1.0,
        result=result,
        http_status=200,
        raw={"status": "completed", "result": result, "message": "Done"},
    )


async def test_shape1_failed_raises_job_failed_quoting_the_message(api: ScriptedAPI) -> None:
    """Shape 1: a failed job raises JobFailed whose text is the server's message."""
    api.on(
        "GET",
        "/v1/tasks/abc",
        ok({"status": "pending", "result": None, "message": "Queued"}),
        ok({"status": "failed", "result": None, "message": "Out of credits"}),
    )
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(
            "/v1/tasks/{job_id}", client=client, schedule=asyncpoll.fixed(1.0)
        ) as p,
    ):
        handle = p.add("abc")
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert str(info.value) == "job 'abc' failed: Out of credits"
    assert info.value.status.error == "Out of credits"
    assert info.value.status.state is JobState.FAILED
    assert handle.state is JobState.FAILED
    assert [m for _, m, _ in api.log] == ["GET", "GET"]


# ---------------------------------------------------------------- shape 2: code/msg/data envelope

RECORD = "/api/v1/jobs/recordInfo"


def envelope(task_id: str, state: str, **fields: Any) -> httpx.Response:
    """A shape-2 status answer: the job inside ``data`` of a code/msg envelope."""
    data = {
        "taskId": task_id,
        "state": state,
        "resultJson": "",
        "failCode": None,
        "failMsg": None,
        **fields,
    }
    return ok({"code": 200, "msg": "success", "data": data})


async def test_shape2_submit_finds_the_task_id_and_resolves_with_parsed_result_json(
    api: ScriptedAPI,
) -> None:
    """Shape 2: submit() takes data.taskId, polls the template, returns the parsed resultJson."""
    document = {"resultUrls": ["https://cdn.test/t1/0.png"], "seed": 7}
    api.on(
        "POST",
        "/api/v1/jobs/createTask",
        ok({"code": 200, "msg": "success", "data": {"taskId": "t1"}}),
    )
    api.on(
        "GET",
        RECORD,
        envelope("t1", "waiting"),
        envelope("t1", "queuing"),
        envelope("t1", "generating"),
        envelope("t1", "success", resultJson=json.dumps(document)),
        params={"taskId": "t1"},
    )
    payload = {"model": "painter-2", "input": {"prompt": "a cat"}}
    seen = Seen()
    t0 = anyio.current_time()
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(
            RECORD + "?taskId={job_id}",
            client=client,
            schedule=asyncpoll.fixed(3.0),
            on_progress=seen,
        ) as p,
    ):
        handle = await p.submit("/api/v1/jobs/createTask", json=payload)
        assert handle.job_id == "t1"
        assert handle.url == f"{BASE}{RECORD}?taskId=t1"
        assert await handle == document
    status_url = f"{BASE}{RECORD}?taskId=t1"
    assert rel([t for t, _, _ in api.log], t0) == [0.0, 0.0, 3.0, 6.0, 9.0]
    assert [(m, u) for _, m, u in api.log] == [
        ("POST", f"{BASE}/api/v1/jobs/createTask"),
        *[("GET", status_url)] * 4,
    ]
    assert json.loads(api.requests[0].content) == payload
    assert seen.changes == [(JobState.PENDING, None), (JobState.RUNNING, None)]
    assert handle.submissions == (Submission("t1", status_url, 200),)
    assert handle.state is JobState.SUCCEEDED
    assert handle.status is not None and handle.status.result == document


async def test_shape2_failed_quotes_fail_msg(api: ScriptedAPI) -> None:
    """Shape 2: a failed envelope raises JobFailed quoting data.failMsg, not the top-level msg."""
    api.on(
        "GET",
        RECORD,
        envelope("t2", "waiting"),
        envelope("t2", "failed", failCode="422", failMsg="Prompt violates the content policy"),
        params={"taskId": "t2"},
    )
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(
            RECORD + "?taskId={job_id}", client=client, schedule=asyncpoll.fixed(1.0)
        ) as p,
    ):
        handle = p.add("t2")
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert str(info.value) == "job 't2' failed: Prompt violates the content policy"
    assert info.value.status.raw["data"]["failCode"] == "422"
    assert handle.state is JobState.FAILED
    assert api.log == [
        (0.0, "GET", f"{BASE}{RECORD}?taskId=t2"),
        (1.0, "GET", f"{BASE}{RECORD}?taskId=t2"),
    ]


# ---------------------------------------------------------------- shape 3: 202 + Location, 303


def accepted(location: str) -> httpx.Response:
    """202 Accepted pointing at the new job's status URL."""
    return httpx.Response(202, headers={"Location": location})


def see_other(location: str) -> httpx.Response:
    """303 See Other pointing at the result."""
    return httpx.Response(303, headers={"Location": location})


async def test_shape3_submit_follows_location_and_resolves_with_the_303_target(
    api: ScriptedAPI,
) -> None:
    """Shape 3: POST->202+Location is polled, progress is read, and a 303 resolves with its URL."""
    api.on("POST", "/jobs", accepted("/jobs/j7"))
    api.on(
        "GET",
        "/jobs/j7",
        ok({"status": "processing", "progress": 45}),
        ok({"status": "processing", "progress": 80}),
        see_other("/jobs/j7/result"),
    )
    seen = Seen()
    t0 = anyio.current_time()
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(client=client, schedule=asyncpoll.fixed(5.0), on_progress=seen) as p,
    ):
        handle = await p.submit("/jobs", json={"input": "doc.pdf"})
        assert handle.job_id == "j7"
        assert handle.url == f"{BASE}/jobs/j7"
        result = await handle
    link = f"{BASE}/jobs/j7/result"
    assert result == link
    assert api.log == [
        (t0, "POST", f"{BASE}/jobs"),
        (t0, "GET", f"{BASE}/jobs/j7"),
        (t0 + 5.0, "GET", f"{BASE}/jobs/j7"),
        (t0 + 10.0, "GET", f"{BASE}/jobs/j7"),
    ]
    assert json.loads(api.requests[0].content) == {"input": "doc.pdf"}
    assert seen.changes == [(JobState.RUNNING, 0.45), (JobState.RUNNING, 0.8)]
    assert handle.submissions == (Submission("j7", f"{BASE}/jobs/j7", 202),)
    assert handle.status == Status(
        JobState.SUCCEEDED, result=link, http_status=303, result_url=link
    )
    assert handle.progress == 1.0


async def test_shape3_fetch_result_resolves_with_the_result_document(api: ScriptedAPI) -> None:
    """Shape 3: with fetch_result=True the 303 target is fetched and its JSON is the result."""
    document = {"pages": [{"n": 1, "text": "hi"}]}
    api.on("POST", "/jobs", accepted("/jobs/j7"))
    api.on(
        "GET", "/jobs/j7", ok({"status": "processing", "progress": 45}), see_other("/jobs/j7/out")
    )
    api.on("GET", "/jobs/j7/out", ok(document))
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(client=client, schedule=asyncpoll.fixed(5.0), fetch_result=True) as p,
    ):
        handle = await p.submit("/jobs", json={"input": "doc.pdf"})
        assert await handle == document
    assert api.log == [
        (0.0, "POST", f"{BASE}/jobs"),
        (0.0, "GET", f"{BASE}/jobs/j7"),
        (5.0, "GET", f"{BASE}/jobs/j7"),
        (5.0, "GET", f"{BASE}/jobs/j7/out"),
    ]
    assert handle.state is JobState.SUCCEEDED
    assert handle.status is not None and handle.status.result_url == f"{BASE}/jobs/j7/out"


async def test_shape3_failed_quotes_the_error_field(api: ScriptedAPI) -> None:
    """Shape 3: {"status": "failed", "error": ...} raises JobFailed quoting the error string."""
    api.on("POST", "/jobs", accepted("/jobs/j7"))
    api.on(
        "GET",
        "/jobs/j7",
        ok({"status": "processing", "progress": 10}),
        ok({"status": "failed", "error": "Unsupported file type"}),
    )
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(client=client, schedule=asyncpoll.fixed(1.0)) as p,
    ):
        handle = await p.submit("/jobs", json={"input": "doc.exe"})
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert str(info.value) == "job 'j7' failed: Unsupported file type"
    assert handle.state is JobState.FAILED
    assert [m for _, m, _ in api.log] == ["POST", "GET", "GET"]


@pytest.mark.parametrize("code", [202, 204])
async def test_shape3_cancel_remote_sends_delete_and_resolves_cancelled(
    api: ScriptedAPI, code: int
) -> None:
    """Shape 3: cancel_remote() sends DELETE on the status URL; an accepting answer cancels."""
    api.on("POST", "/jobs", accepted("/jobs/j7"))
    api.on("GET", "/jobs/j7", ok({"status": "processing", "progress": 45}))
    api.on("DELETE", "/jobs/j7", httpx.Response(code))
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(client=client, schedule=asyncpoll.fixed(10.0)) as p,
    ):
        handle = await p.submit("/jobs", json={"input": "doc.pdf"})
        await anyio.sleep(1.0)
        assert handle.progress == 0.45
        assert await handle.cancel_remote() is True
        assert handle.state is JobState.CANCELLED
        with pytest.raises(asyncpoll.JobCancelled) as info:
            await handle
    assert str(info.value) == (
        "job 'j7' was cancelled: cancelled on the server at the caller's request"
    )
    assert api.log == [
        (0.0, "POST", f"{BASE}/jobs"),
        (0.0, "GET", f"{BASE}/jobs/j7"),
        (1.0, "DELETE", f"{BASE}/jobs/j7"),
        (1.0, "GET", f"{BASE}/jobs/j7"),  # the accepted cancel, confirmed by one read
    ]
    assert await handle.cancel_remote() is False  # already finished: no request
    assert len(api.log) == 4


@pytest.mark.parametrize(
    ("final", "expected"),
    [
        pytest.param(see_other("/jobs/j7/result"), f"{BASE}/jobs/j7/result", id="303"),
        pytest.param(ok({"status": "failed", "error": "Ran out of memory"}), None, id="failed"),
    ],
)
async def test_shape3_refused_cancel_resolves_the_handle_as_the_server_says(
    api: ScriptedAPI, final: httpx.Response, expected: str | None
) -> None:
    """Shape 3: a 409 to DELETE re-reads the status and resolves the handle with that outcome."""
    api.on("POST", "/jobs", accepted("/jobs/j7"))
    api.on("GET", "/jobs/j7", ok({"status": "processing", "progress": 90}), final)
    api.on("DELETE", "/jobs/j7", httpx.Response(409, json={"error": "job already finished"}))
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(client=client, schedule=asyncpoll.fixed(10.0)) as p,
    ):
        handle = await p.submit("/jobs", json={"input": "doc.pdf"})
        await anyio.sleep(1.0)
        assert await handle.cancel_remote() is False
        assert handle.done()
        if expected is None:
            with pytest.raises(asyncpoll.JobFailed, match=r"^job 'j7' failed: Ran out of memory$"):
                await handle
            assert handle.state is JobState.FAILED
        else:
            assert await handle == expected
            assert handle.state is JobState.SUCCEEDED
    assert api.log == [
        (0.0, "POST", f"{BASE}/jobs"),
        (0.0, "GET", f"{BASE}/jobs/j7"),
        (1.0, "DELETE", f"{BASE}/jobs/j7"),
        (1.0, "GET", f"{BASE}/jobs/j7"),
    ]


# ---------------------------------------------------------------- shape 4: result_urls


def doc_job(status: str, progress: int, **fields: Any) -> httpx.Response:
    """A shape-4 status answer."""
    body = {
        "job_id": "d1",
        "status": status,
        "progress": progress,
        "message": fields.pop("message", status.capitalize()),
        "result_urls": fields.pop("result_urls", []),
        "total_pages": 12,
        **fields,
    }
    return ok(body)


async def test_shape4_result_is_the_result_urls_list_and_progress_a_percentage(
    api: ScriptedAPI,
) -> None:
    """Shape 4: progress is percent/100; the result is result_urls and result_url its first."""
    urls = ["https://files.test/d1/part-1.md", "https://files.test/d1/part-2.md"]
    api.on(
        "GET",
        "/documents/jobs/d1",
        doc_job("pending", 0),
        doc_job("processing", 45),
        doc_job("processing", 99),
        doc_job("completed", 100, result_urls=urls),
    )
    seen = Seen()
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(
            "/documents/jobs/{job_id}",
            client=client,
            schedule=asyncpoll.fixed(1.0),
            on_progress=seen,
        ) as p,
    ):
        handle = p.add("d1")
        assert await handle == urls
    assert seen.changes == [
        (JobState.PENDING, 0.0),
        (JobState.RUNNING, 0.45),
        (JobState.RUNNING, 0.99),
    ]
    assert handle.status is not None
    assert handle.status.result_url == urls[0]
    assert handle.status.result == urls
    assert handle.progress == 1.0
    assert api.log == [(float(t), "GET", f"{BASE}/documents/jobs/d1") for t in range(4)]


async def test_shape4_failed_quotes_the_message(api: ScriptedAPI) -> None:
    """Shape 4: a failed job raises JobFailed quoting message, and keeps its progress."""
    api.on(
        "GET",
        "/documents/jobs/d1",
        doc_job("processing", 30),
        doc_job("failed", 30, message="PDF is password protected"),
    )
    async with (
        api.client() as client,
        asyncpoll.TaskPoller(
            "/documents/jobs/{job_id}", client=client, schedule=asyncpoll.fixed(1.0)
        ) as p,
    ):
        handle = p.add("d1")
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert str(info.value) == "job 'd1' failed: PDF is password protected"
    assert info.value.status.progress == 0.3
    assert handle.progress == 0.3


# ---------------------------------------------------------------- shape 5: bearer, pages, 429

TOKEN = "Bearer sk-test-123"


def pages(status: str, n: int, m: int = 8, **fields: Any) -> httpx.Response:
    """A shape-5 status answer."""
    return ok({"status": status, "progress": {"processed_pages": n, "total_pages": m}, **fields})


def throttled(**headers: str) -> httpx.Response:
    """429 Too Many Requests."""
    return httpx.Response(429, json={"error": {"code": "rate_limited"}}, headers=headers)


def pager(api: ScriptedAPI, client: httpx.AsyncClient, **options: Any) -> asyncpoll.TaskPoller:
    """A shape-5 poller: bearer token, one-second schedules."""
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    return asyncpoll.TaskPoller(
        "/v2/parse/{job_id}", client=client, headers={"Authorization": TOKEN}, **options
    )


async def test_shape5_token_reaches_every_request_and_progress_is_pages_done(
    api: ScriptedAPI,
) -> None:
    """Shape 5: the bearer token is on every request and progress is processed/total pages."""
    done = {"status": "done", "progress": {"processed_pages": 8, "total_pages": 8}}
    api.on(
        "GET",
        "/v2/parse/p1",
        pages("pending", 0),
        pages("running", 2),
        pages("running", 6),
        ok(done),
    )
    seen = Seen()
    async with api.client() as client, pager(api, client, on_progress=seen) as p:
        handle = p.add("p1")
        assert await handle == done
    assert seen.changes == [
        (JobState.PENDING, 0.0),
        (JobState.RUNNING, 0.25),
        (JobState.RUNNING, 0.75),
    ]
    assert len(api.requests) == 4
    assert [r.headers.get("authorization") for r in api.requests] == [TOKEN] * 4
    assert api.log == [(float(t), "GET", f"{BASE}/v2/parse/p1") for t in range(4)]


async def test_shape5_a_429_pauses_every_job_on_the_host(api: ScriptedAPI) -> None:
    """Shape 5: a 429 with Retry-After: 2 on one job delays every other job's next request too."""
    api.on(
        "GET",
        "/v2/parse/a",
        throttled(**{"Retry-After": "2", "RateLimit-Remaining": "0", "RateLimit-Reset": "2"}),
        pages("done", 8),
    )
    api.on("GET", "/v2/parse/b", pages("running", 1), pages("running", 4), pages("done", 8))
    api.on("GET", "/v2/parse/c", pages("done", 8))
    async with api.client() as client, pager(api, client) as p:
        # b is polled at 0 and next due at 1; a is polled first at 0.5 and gets the 429;
        # c is added during the cool-down, at 1.
        b = p.add("b")
        a = p.add("a", schedule=asyncpoll.fixed(1.0, first=0.5))
        await anyio.sleep(1.0)
        c = p.add("c")
        await p.gather(a, b, c)
    a_times = api.times("GET", f"{BASE}/v2/parse/a")
    b_times = api.times("GET", f"{BASE}/v2/parse/b")
    c_times = api.times("GET", f"{BASE}/v2/parse/c")
    # Without the shared cool-down b would be polled at 0, 1, 2 and c at 1. Every job's
    # next request waits until 0.5 + 2.
    assert min(a_times[1], b_times[1], c_times[0]) == 2.5
    # The 429 also halves the host's rate from the observed 2/s (two requests 0.5 s apart)
    # to 1/s, so b and c (both waiting since 1, in either order) go at 2.5 and 3.5; the
    # healthy answer at 3.5 starts the recovery (+0.1/s per second, to 1.1/s), so a's
    # token comes 1/11 s early, at 4.5 - 1/11.
    assert sorted([b_times[1], c_times[0]]) == [2.5, 3.5]
    assert a_times == [0.5, pytest.approx(4.5 - 1 / 11)]
    # a's healthy answer lifts the rate again (1.1/s + 0.1/s per second since 3.5 s);
    # b's last token comes one new interval after a's request.
    a_at = 4.5 - 1 / 11
    assert len(b_times) == 3 and b_times[0] == 0.0
    assert b_times[2] == pytest.approx(a_at + 1 / (1.1 + 0.1 * (a_at - 3.5)))
    assert len(c_times) == 1
    assert [r.headers.get("authorization") for r in api.requests] == [TOKEN] * len(api.requests)
    assert p.statistics().throttled == 1
    assert p.statistics().transient_errors == 0
    assert a.state is b.state is c.state is JobState.SUCCEEDED


async def test_shape5_429s_never_count_against_max_errors(api: ScriptedAPI) -> None:
    """Shape 5: with max_errors=1, three 429s in a row still end in success, each waited out."""
    api.on(
        "GET",
        "/v2/parse/a",
        throttled(**{"Retry-After": "2"}),
        throttled(**{"Retry-After": "2"}),
        throttled(**{"Retry-After": "2"}),
        pages("running", 4),
        pages("done", 8),
    )
    async with api.client() as client, pager(api, client, max_errors=1) as p:
        handle = p.add("a")
        assert await handle == {
            "status": "done",
            "progress": {"processed_pages": 8, "total_pages": 8},
        }
    times = api.times("GET", f"{BASE}/v2/parse/a")
    assert all(later - earlier >= 2.0 for earlier, later in itertools.pairwise(times[:4]))
    # Each 429 pauses the host 2 s; the second and third also halve its rate (observed
    # 0.5/s -> 0.25/s -> 0.125/s): the third request takes the one token there is, the
    # fourth waits 8 s for the next; from 12 s the rate recovers (to 0.2/s: 5 s later).
    assert times == [0.0, 2.0, 4.0, 12.0, 17.0]
    assert handle.attempts == 5
    assert p.statistics().throttled == 3
    assert p.statistics().transient_errors == 0
    assert [r.headers.get("authorization") for r in api.requests] == [TOKEN] * 5


async def test_shape5_ratelimit_remaining_zero_pauses_the_host_until_the_reset(
    api: ScriptedAPI,
) -> None:
    """Shape 5: RateLimit-Remaining: 0 with RateLimit-Reset: 5 holds every job's requests 5 s."""
    spent = {"RateLimit-Remaining": "0", "RateLimit-Reset": "5"}
    api.on("GET", "/v2/parse/a", pages("running", 1), pages("done", 8))
    api.on(
        "GET",
        "/v2/parse/b",
        httpx.Response(200, json={"status": "running"}, headers=spent),
        pages("done", 8),
    )
    async with api.client() as client, pager(api, client) as p:
        await p.gather(p.add("a"), p.add("b"))
    assert api.times("GET", f"{BASE}/v2/parse/a") == [0.0, 5.0]
    assert api.times("GET", f"{BASE}/v2/parse/b") == [0.0, 5.0]
    assert p.statistics().throttled == 0


async def test_shape5_failed_quotes_error_message(api: ScriptedAPI) -> None:
    """Shape 5: a failed job raises JobFailed quoting error.message, not the error code."""
    api.on(
        "GET",
        "/v2/parse/p1",
        pages("running", 3),
        pages("failed", 3, error={"code": "E_OCR", "message": "Page 4 could not be read"}),
    )
    async with api.client() as client, pager(api, client) as p:
        handle = p.add("p1")
        with pytest.raises(asyncpoll.JobFailed) as info:
            await handle
    assert str(info.value) == "job 'p1' failed: Page 4 could not be read"
    assert info.value.status.progress == 0.375
    assert [r.headers.get("authorization") for r in api.requests] == [TOKEN] * 2
