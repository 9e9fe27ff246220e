"""The five job-API shapes of test_shapes.py, served over real HTTP on 127.0.0.1.

One ``ThreadingHTTPServer`` per test speaks all five shapes under path prefixes
(``/s1`` ... ``/s5``). It decides each job's state by how many times the job was polled,
never by the clock, so the tests are deterministic; they run in real time (socket I/O
cannot be fast-forwarded) on tiny schedules and each takes a fraction of a second.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import anyio
import pytest
from conftest import MakePoller, serving

import asyncpoll
from asyncpoll import JobState

pytestmark = pytest.mark.anyio

TOKEN = "Bearer sk-loop-42"
#: The Retry-After a throttled shape-5 job gets, in seconds (fractional, to stay fast).
PAUSE = 0.2


@pytest.fixture
def anyio_backend(network: tuple[str, dict[str, Any], str]) -> tuple[str, dict[str, Any]]:
    """Real-time event loops: socket I/O with a real server cannot run in virtual time."""
    return network[0], network[1]


class ShapeServer(ThreadingHTTPServer):
    """All five shapes on a real socket; job states follow poll counts."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ShapeHandler)
        self.lock = threading.Lock()
        #: Every request: (monotonic arrival time, method, path with query, Authorization).
        self.log: list[tuple[float, str, str, str | None]] = []
        self.polls: dict[str, int] = {}  # job key -> status GETs answered
        self.kinds: dict[str, str] = {}  # job key -> how the job behaves
        self.cancelled: set[str] = set()
        self.bodies: list[Any] = []  # JSON bodies of create requests
        self.ids = itertools.count(1)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def requests(self, method: str, path: str) -> list[float]:
        """Arrival times of ``method`` requests for ``path``."""
        with self.lock:
            return [t for t, m, p, _ in self.log if m == method and p == path]


class ShapeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls
    disable_nagle_algorithm = True  # headers and body go in two writes; do not delay the second
    server: ShapeServer

    # -------------------------------------------------------------- plumbing

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _record(self) -> None:
        with self.server.lock:
            self.server.log.append(
                (time.monotonic(), self.command, self.path, self.headers.get("Authorization"))
            )

    def _poll(self, key: str) -> int:
        with self.server.lock:
            n = self.server.polls[key] = self.server.polls.get(key, 0) + 1
        return n

    def _body(self) -> Any:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw) if raw else None

    def _send(self, code: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(code)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if body is not None:
            self.send_header("Content-Type", "application/json")
        if code != 204:
            self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _route(self) -> None:
        self._record()
        parts = urlsplit(self.path)
        segments = parts.path.strip("/").split("/")
        shape = segments[0]
        handler = getattr(self, f"_{shape}_{self.command.lower()}", None)
        if handler is None:
            self._send(404, {"error": f"no route for {self.command} {self.path}"})
            return
        handler(segments[1:], parse_qs(parts.query))

    do_GET = do_POST = do_DELETE = _route

    # -------------------------------------------------------------- shape 1: /s1/tasks/{id}

    def _s1_get(self, segments: list[str], query: dict[str, list[str]]) -> None:
        job_id = segments[-1]
        n = self._poll(f"s1:{job_id}")
        if job_id.startswith("fail"):
            if n < 2:
                self._send(200, {"status": "pending", "result": None, "message": "Queued"})
            else:
                self._send(200, {"status": "failed", "result": None, "message": "Out of credits"})
        elif n < 3:
            self._send(200, {"status": "pending", "result": None, "message": "Queued"})
        else:
            result = {"job": job_id, "pages": 2}
            self._send(200, {"status": "completed", "result": result, "message": "Done"})

    # -------------------------------------------------------------- shape 2: envelope

    def _s2_post(self, segments: list[str], query: dict[str, list[str]]) -> None:
        body = self._body()
        with self.server.lock:
            self.server.bodies.append(body)
            task_id = f"t{next(self.server.ids)}"
            self.server.kinds[task_id] = "fail" if body["input"]["prompt"] == "fail" else "ok"
        self._send(200, {"code": 200, "msg": "success", "data": {"taskId": task_id}})

    def _s2_get(self, segments: list[str], query: dict[str, list[str]]) -> None:
        task_id = query["taskId"][0]
        n = self._poll(f"s2:{task_id}")
        data: dict[str, Any] = {"taskId": task_id, "resultJson": "", "failCode": None}
        data["failMsg"] = None
        data["state"] = {1: "waiting", 2: "queuing", 3: "generating"}.get(n, "done")
        if data["state"] == "done":
            if self.server.kinds[task_id] == "fail":
                data.update(state="failed", failCode="422", failMsg="Prompt rejected by filter")
            else:
                urls = [f"https://cdn.example/{task_id}.png"]
                data.update(state="success", resultJson=json.dumps({"resultUrls": urls}))
        self._send(200, {"code": 200, "msg": "success", "data": data})

    # -------------------------------------------------------------- shape 3: 202 / 303 / DELETE

    def _s3_post(self, segments: list[str], query: dict[str, list[str]]) -> None:
        body = self._body()
        with self.server.lock:
            self.server.bodies.append(body)
            job_id = f"j{next(self.server.ids)}"
            self.server.kinds[job_id] = body["kind"]
        self._send(202, headers={"Location": f"/s3/jobs/{job_id}"})

    def _s3_done(self, job_id: str) -> bool:
        """Whether the job has finished: "quick" after its first poll, "ok" after its second."""
        polls = self.server.polls.get(f"s3:{job_id}", 0)
        kind = self.server.kinds[job_id]
        return (kind == "quick" and polls >= 1) or (kind == "ok" and polls >= 2)

    def _s3_get(self, segments: list[str], query: dict[str, list[str]]) -> None:
        job_id = segments[1]
        if len(segments) == 3:  # /s3/jobs/{id}/result
            self._send(200, {"output": f"text of {job_id}", "pages": 3})
            return
        with self.server.lock:
            done = self._s3_done(job_id)
            cancelled = job_id in self.server.cancelled
        n = self._poll(f"s3:{job_id}")
        kind = self.server.kinds[job_id]
        if cancelled:
            self._send(200, {"status": "cancelled"})
        elif kind == "fail" and n >= 2:
            self._send(200, {"status": "failed", "error": "Unsupported file type"})
        elif done:
            self._send(303, headers={"Location": f"/s3/jobs/{job_id}/result"})
        else:
            self._send(200, {"status": "processing", "progress": min(45 * n, 90)})

    def _s3_delete(self, segments: list[str], query: dict[str, list[str]]) -> None:
        job_id = segments[1]
        with self.server.lock:
            if self._s3_done(job_id):
                refused = True
            else:
                refused = False
                self.server.cancelled.add(job_id)
            kind = self.server.kinds[job_id]
        if refused:
            self._send(409, {"error": "job already completed"})
        elif kind == "forever-204":
            self._send(204)
        else:
            self._send(202, {"status": "cancelling"})

    # -------------------------------------------------------------- shape 4: result_urls

    def _s4_get(self, segments: list[str], query: dict[str, list[str]]) -> None:
        job_id = segments[-1]
        n = self._poll(f"s4:{job_id}")
        status, progress = {1: ("pending", 0), 2: ("processing", 45), 3: ("processing", 90)}.get(
            n, ("completed", 100)
        )
        body: dict[str, Any] = {
            "job_id": job_id,
            "status": status,
            "progress": progress,
            "message": status,
            "result_urls": [],
            "total_pages": 2,
        }
        if status == "completed":
            if job_id.startswith("fail"):
                body.update(status="failed", progress=90, message="PDF is password protected")
            else:
                body["result_urls"] = [f"{self.server.url}/files/{job_id}/{i}.md" for i in (1, 2)]
        self._send(200, body)

    # -------------------------------------------------------------- shape 5: bearer, pages, 429

    def _s5_get(self, segments: list[str], query: dict[str, list[str]]) -> None:
        job_id = segments[-1]
        if self.headers.get("Authorization") != TOKEN:
            self._send(401, {"error": {"code": "unauthorized", "message": "bad token"}})
            return
        n = self._poll(f"s5:{job_id}")
        # "throttled-K": the first K polls answer 429, the next one done; "quick...": done
        # on the second poll; any other job on the fourth ("fail..." jobs fail then).
        if job_id.startswith("throttled-") and n <= int(job_id.rsplit("-", 1)[1]):
            headers = {"Retry-After": str(PAUSE), "RateLimit-Remaining": "0"}
            headers["RateLimit-Reset"] = str(PAUSE)
            self._send(429, {"error": {"code": "rate_limited", "message": "slow down"}}, headers)
            return
        done = 2 if job_id.startswith(("throttled-", "quick")) else 4
        total = 8
        if n >= done:
            if job_id.startswith("fail"):
                error = {"code": "E_OCR", "message": "Page 4 could not be read"}
                progress = {"processed_pages": 3, "total_pages": total}
                self._send(200, {"status": "failed", "progress": progress, "error": error})
                return
            progress = {"processed_pages": total, "total_pages": total}
            self._send(200, {"status": "done", "progress": progress})
            return
        progress = {"processed_pages": 2 * (n - 1), "total_pages": total}
        self._send(200, {"status": "pending" if n == 1 else "running", "progress": progress})


@pytest.fixture
def server() -> Iterator[ShapeServer]:
    """A real shape server on a free loopback port, stopped after the test."""
    yield from serving(ShapeServer())


class Seen:
    """An ``on_progress`` callback recording each change, and an event for the first."""

    def __init__(self) -> None:
        self.changes: list[tuple[JobState, float | None]] = []
        self.first = anyio.Event()

    def __call__(self, handle: asyncpoll.JobHandle) -> None:
        self.changes.append((handle.state, handle.progress))
        self.first.set()


FAST = asyncpoll.fixed(0.01)


# ---------------------------------------------------------------- shape 1


async def test_shape1_over_http_completed_and_failed(
    make_poller: MakePoller, server: ShapeServer
) -> None:
    """Shape 1 over HTTP: completed resolves with result, failed raises JobFailed with message."""
    with anyio.fail_after(5):
        async with make_poller(server.url + "/s1/tasks/{job_id}", schedule=FAST) as p:
            ok, bad = p.add("ok"), p.add("fail-1")
            results = await p.gather(ok, bad, return_exceptions=True)
    assert results[0] == {"job": "ok", "pages": 2}
    assert isinstance(results[1], asyncpoll.JobFailed)
    assert str(results[1]) == "job 'fail-1' failed: Out of credits"
    assert server.polls == {"s1:ok": 3, "s1:fail-1": 2}
    assert ok.attempts == 3 and bad.attempts == 2


# ---------------------------------------------------------------- shape 2


async def test_shape2_over_http_submit_envelope_result_json_and_fail_msg(
    make_poller: MakePoller,
    server: ShapeServer,
) -> None:
    """Shape 2 over HTTP: submit() finds data.taskId; success parses resultJson; fail quotes it."""
    seen = Seen()
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/s2/api/v1/jobs/recordInfo?taskId={job_id}",
            schedule=FAST,
            on_progress=seen,
        ) as p:
            create = server.url + "/s2/api/v1/jobs/createTask"
            good = await p.submit(create, json={"model": "m", "input": {"prompt": "a cat"}})
            bad = await p.submit(create, json={"model": "m", "input": {"prompt": "fail"}})
            results = await p.gather(good, bad, return_exceptions=True)
    assert (good.job_id, bad.job_id) == ("t1", "t2")
    assert good.url == server.url + "/s2/api/v1/jobs/recordInfo?taskId=t1"
    assert results[0] == {"resultUrls": ["https://cdn.example/t1.png"]}
    assert isinstance(results[1], asyncpoll.JobFailed)
    assert str(results[1]) == "job 't2' failed: Prompt rejected by filter"
    assert server.bodies == [
        {"model": "m", "input": {"prompt": "a cat"}},
        {"model": "m", "input": {"prompt": "fail"}},
    ]
    assert server.polls == {"s2:t1": 4, "s2:t2": 4}
    assert sorted(seen.changes, key=lambda c: c[0].value) == [
        (JobState.PENDING, None),
        (JobState.PENDING, None),
        (JobState.RUNNING, None),
        (JobState.RUNNING, None),
    ]


# ---------------------------------------------------------------- shape 3


async def test_shape3_over_http_202_location_progress_and_303(
    make_poller: MakePoller, server: ShapeServer
) -> None:
    """Shape 3 over HTTP: 202+Location is followed, progress read, 303 gives the absolute URL."""
    seen = Seen()
    with anyio.fail_after(5):
        async with make_poller(schedule=FAST, on_progress=seen) as p:
            handle = await p.submit(server.url + "/s3/jobs", json={"kind": "ok"})
            result = await handle
    assert handle.job_id == "j1"
    assert handle.url == server.url + "/s3/jobs/j1"
    assert result == server.url + "/s3/jobs/j1/result"
    assert seen.changes == [(JobState.RUNNING, 0.45), (JobState.RUNNING, 0.9)]
    assert handle.state is JobState.SUCCEEDED
    assert [(m, path) for _, m, path, _ in server.log] == [
        ("POST", "/s3/jobs"),
        ("GET", "/s3/jobs/j1"),
        ("GET", "/s3/jobs/j1"),
        ("GET", "/s3/jobs/j1"),
    ]


async def test_shape3_over_http_fetch_result_and_failure(
    make_poller: MakePoller, server: ShapeServer
) -> None:
    """Shape 3 over HTTP: fetch_result=True GETs the 303 target; failed quotes the error."""
    with anyio.fail_after(5):
        async with make_poller(schedule=FAST, fetch_result=True) as p:
            good = await p.submit(server.url + "/s3/jobs", json={"kind": "ok"})
            bad = await p.submit(server.url + "/s3/jobs", json={"kind": "fail"})
            results = await p.gather(good, bad, return_exceptions=True)
    assert results[0] == {"output": "text of j1", "pages": 3}
    assert isinstance(results[1], asyncpoll.JobFailed)
    assert str(results[1]) == "job 'j2' failed: Unsupported file type"
    assert len(server.requests("GET", "/s3/jobs/j1/result")) == 1
    assert len(server.requests("GET", "/s3/jobs/j1")) == 3


@pytest.mark.parametrize("code", [202, 204])
async def test_shape3_over_http_cancel_remote_sends_delete(
    make_poller: MakePoller, server: ShapeServer, code: int
) -> None:
    """Shape 3 over HTTP: cancel_remote() DELETEs the status URL and the handle is CANCELLED."""
    seen = Seen()
    with anyio.fail_after(5):
        async with make_poller(schedule=asyncpoll.fixed(0.05), on_progress=seen) as p:
            kind = "forever-204" if code == 204 else "forever-202"
            handle = await p.submit(server.url + "/s3/jobs", json={"kind": kind})
            await seen.first.wait()
            assert await handle.cancel_remote() is True
            with pytest.raises(asyncpoll.JobCancelled) as info:
                await handle
    assert str(info.value) == (
        "job 'j1' was cancelled: cancelled on the server at the caller's request"
    )
    assert handle.state is JobState.CANCELLED
    assert len(server.requests("DELETE", "/s3/jobs/j1")) == 1
    assert server.cancelled == {"j1"}


async def test_shape3_over_http_refused_cancel_resolves_as_the_server_says(
    make_poller: MakePoller,
    server: ShapeServer,
) -> None:
    """Shape 3 over HTTP: a 409 to DELETE is followed by a GET whose 303 resolves the handle."""
    seen = Seen()
    with anyio.fail_after(5):
        # A long schedule: the client does not know the job finished after its first poll.
        async with make_poller(schedule=asyncpoll.fixed(30.0), on_progress=seen) as p:
            handle = await p.submit(server.url + "/s3/jobs", json={"kind": "quick"})
            await seen.first.wait()
            assert await handle.cancel_remote() is False
            assert await handle == server.url + "/s3/jobs/j1/result"
    assert handle.state is JobState.SUCCEEDED
    assert server.cancelled == set()
    assert [(m, path) for _, m, path, _ in server.log] == [
        ("POST", "/s3/jobs"),
        ("GET", "/s3/jobs/j1"),
        ("DELETE", "/s3/jobs/j1"),
        ("GET", "/s3/jobs/j1"),
    ]


# ---------------------------------------------------------------- shape 4


async def test_shape4_over_http_result_urls_and_percent_progress(
    make_poller: MakePoller, server: ShapeServer
) -> None:
    """Shape 4 over HTTP: result is result_urls, result_url the first, progress percent/100."""
    seen = Seen()
    with anyio.fail_after(5):
        async with make_poller(server.url + "/s4/documents/jobs/{job_id}", schedule=FAST) as p:
            good = p.add("d1", on_progress=seen)
            bad = p.add("fail-2")
            results = await p.gather(good, bad, return_exceptions=True)
    urls = [f"{server.url}/files/d1/1.md", f"{server.url}/files/d1/2.md"]
    assert results[0] == urls
    assert good.status is not None and good.status.result_url == urls[0]
    assert seen.changes == [
        (JobState.PENDING, 0.0),
        (JobState.RUNNING, 0.45),
        (JobState.RUNNING, 0.9),
    ]
    assert isinstance(results[1], asyncpoll.JobFailed)
    assert str(results[1]) == "job 'fail-2' failed: PDF is password protected"
    assert bad.progress == 0.9
    assert server.polls == {"s4:d1": 4, "s4:fail-2": 4}


# ---------------------------------------------------------------- shape 5


async def test_shape5_over_http_token_on_every_request_and_page_progress(
    make_poller: MakePoller,
    server: ShapeServer,
) -> None:
    """Shape 5 over HTTP: the bearer token reaches every request; progress is pages done/total."""
    seen = Seen()
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/s5/v2/parse/{job_id}", headers={"Authorization": TOKEN}, schedule=FAST
        ) as p:
            good = p.add("p1", on_progress=seen)
            bad = p.add("fail-3")
            results = await p.gather(good, bad, return_exceptions=True)
    assert results[0] == {"status": "done", "progress": {"processed_pages": 8, "total_pages": 8}}
    assert seen.changes == [
        (JobState.PENDING, 0.0),
        (JobState.RUNNING, 0.25),
        (JobState.RUNNING, 0.5),
    ]
    assert isinstance(results[1], asyncpoll.JobFailed)
    assert str(results[1]) == "job 'fail-3' failed: Page 4 could not be read"
    assert len(server.log) == 8
    assert {auth for _, _, _, auth in server.log} == {TOKEN}


async def test_shape5_over_http_a_429_pauses_the_other_job_too(
    make_poller: MakePoller, server: ShapeServer
) -> None:
    """Shape 5 over HTTP: a 429 with Retry-After holds the next request of every job that long."""
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/s5/v2/parse/{job_id}",
            headers={"Authorization": TOKEN},
            schedule=asyncpoll.fixed(0.15),
            retry_schedule=asyncpoll.fixed(0.01),
            # One request at a time, on one connection: b's first poll, a's first poll
            # (the 429) and b's second poll go, and arrive, in that order however slow
            # the machine, so b's second poll is always sent after the 429 was read.
            max_concurrency=1,
        ) as p:
            # b is polled at once and next due 0.15 s later; a's first poll is due at
            # 0.02 s and gets the 429 (if it is late, b's second poll waits behind it).
            b = p.add("quick")
            a = p.add("throttled-1", schedule=asyncpoll.fixed(0.01, first=0.02))
            await p.gather(a, b)
    a_times = server.requests("GET", "/s5/v2/parse/throttled-1")
    b_times = server.requests("GET", "/s5/v2/parse/quick")
    assert len(a_times) == 2 and len(b_times) == 2
    throttled_at = a_times[0]
    assert b_times[0] < throttled_at
    assert a_times[1] - throttled_at >= PAUSE
    assert b_times[1] - throttled_at >= PAUSE  # due 0.15 s after b_times[0], yet it waited
    assert p.statistics().throttled == 1
    assert {auth for _, _, _, auth in server.log} == {TOKEN}


async def test_shape5_over_http_429s_never_count_against_max_errors(
    make_poller: MakePoller, server: ShapeServer
) -> None:
    """Shape 5 over HTTP: with max_errors=1, two 429s in a row are waited out, not failures."""
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/s5/v2/parse/{job_id}",
            headers={"Authorization": TOKEN},
            schedule=asyncpoll.fixed(0),
            retry_schedule=asyncpoll.fixed(0),
            max_errors=1,
        ) as p:
            handle = p.add("throttled-2")
            result = await handle
    assert result == {"status": "done", "progress": {"processed_pages": 8, "total_pages": 8}}
    times = server.requests("GET", "/s5/v2/parse/throttled-2")
    assert len(times) == 3
    assert times[1] - times[0] >= PAUSE and times[2] - times[1] >= PAUSE
    assert handle.attempts == 3
    assert p.statistics().throttled == 2
    assert p.statistics().transient_errors == 0
