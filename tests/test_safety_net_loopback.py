"""Safety-net tests over real HTTP on 127.0.0.1, on every transport (httpx, aiohttp).

Per-request headers reach the server, credentials never reach another origin, and the
body cap is exact (a body of ``max_body`` bytes is read, one byte more is refused) on
each way a transport reads a body: with a Content-Length or chunked, identity or gzip.
Public API only; real time, each test bounded to a few seconds.
"""

from __future__ import annotations

import gc
import gzip
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import pytest
from conftest import MakePoller, serving

import asyncpoll
from asyncpoll import JobState

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(network: tuple[str, dict[str, Any], str]) -> tuple[str, dict[str, Any]]:
    """Real-time event loops: socket I/O with a real server cannot run in virtual time."""
    return network[0], network[1]


class Reply:
    """One scripted answer: status, headers, body (JSON-encoded unless bytes)."""

    def __init__(
        self,
        body: Any = b"",
        status: int = 200,
        headers: dict[str, str] | None = None,
        *,
        chunked: bool = False,
    ) -> None:
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.status = status
        self.headers = headers or {}
        self.chunked = chunked


class Server(ThreadingHTTPServer):
    """Answers ``(method, path)`` with its scripted replies in turn (the last repeats)."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replies: dict[tuple[str, str], list[Reply]] = {}
        #: (method, path, lower-cased headers, body) of every request, in arrival order.
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, method: str, path: str, *replies: Reply) -> None:
        self.replies[(method, path)] = list(replies)

    def sent(self, method: str, path: str) -> list[dict[str, str]]:
        """The headers of each ``method`` request for ``path``."""
        with self.lock:
            return [h for m, p, h, _ in self.requests if (m, p) == (method, path)]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading (a size cap) breaks the pipe: expected


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        key = (self.command, self.path)
        with self.server.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            self.server.requests.append((self.command, self.path, headers, body))
            n = sum(1 for m, p, _, _ in self.server.requests if (m, p) == key)
            replies = self.server.replies.get(key) or [Reply(b"no such path", 404)]
            reply = replies[min(n, len(replies)) - 1]
        self.send_response(reply.status)
        for name, value in reply.headers.items():
            self.send_header(name, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(reply.body), 128):
                piece = reply.body[start : start + 128]
                try:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                except OSError:  # the client stopped reading: what a cap does
                    return
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[Server]:
    """A scripted server on a free loopback port."""
    yield from serving(Server())


@pytest.fixture
def other() -> Iterator[Server]:
    """A second scripted server: another origin (another port)."""
    yield from serving(Server())


CREDENTIALS = {"Authorization": "Bearer k", "X-Api-Key": "key-1", "X-Trace": "t1"}


def has_credentials(headers: dict[str, str]) -> bool:
    return headers.get("authorization") == "Bearer k" and headers.get("x-api-key") == "key-1"


def has_none(headers: dict[str, str]) -> bool:
    return "authorization" not in headers and "x-api-key" not in headers and "cookie" not in headers


# ---------------------------------------------------------------- per-request headers


async def test_create_request_headers_reach_the_server_and_stay_off_polls(
    make_poller: MakePoller, server: Server
) -> None:
    """submit(headers=...) reaches the server on the create request and on its resubmit,
    besides the poller's headers; status polls carry the poller's headers only. An
    Idempotency-Key is the job's: the resubmit, which asks for a new job, carries its own
    key derived from it (the same key would get the failed job back)."""
    server.script("POST", "/jobs", Reply({"id": "j1"}, 201), Reply({"id": "j2"}, 201))
    server.script("GET", "/jobs/j1", Reply({"status": "failed", "error": "gpu lost"}))
    server.script("GET", "/jobs/j2", Reply({"status": "done", "result": "second"}))
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/jobs/{job_id}",
            headers={"Authorization": "Bearer k", "X-Team": "blue"},
            schedule=asyncpoll.fixed(0.01),
            retry_schedule=asyncpoll.fixed(0.01),
        ) as p:
            handle = await p.submit(
                server.url + "/jobs",
                json={"scene": 1},
                headers={"Idempotency-Key": "idem-1", "X-Request-Id": "req-1"},
                resubmit=1,
            )
            assert await handle == "second"
    assert [s.job_id for s in handle.submissions] == ["j1", "j2"]
    posts = server.sent("POST", "/jobs")
    assert len(posts) == 2
    assert [sent["idempotency-key"] for sent in posts] == ["idem-1", "idem-1-1"]
    for sent in posts:
        assert sent["x-request-id"] == "req-1"
        assert sent["authorization"] == "Bearer k"
        assert sent["x-team"] == "blue"
        assert sent["content-type"] == "application/json"
    polls = server.sent("GET", "/jobs/j1") + server.sent("GET", "/jobs/j2")
    assert len(polls) == 2
    for sent in polls:
        assert sent["authorization"] == "Bearer k"
        assert sent["x-team"] == "blue"
        assert "idempotency-key" not in sent and "x-request-id" not in sent


async def test_a_create_request_header_overrides_the_pollers_own(
    make_poller: MakePoller, server: Server
) -> None:
    """A header given to submit() replaces the poller's header of the same name, once."""
    server.script("POST", "/jobs", Reply({"id": "j1"}, 201))
    server.script("GET", "/jobs/j1", Reply({"status": "done", "result": 1}))
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/jobs/{job_id}", headers={"X-Team": "blue"}, schedule=asyncpoll.fixed(0)
        ) as p:
            handle = await p.submit(server.url + "/jobs", headers={"x-team": "red"})
            assert await handle == 1
    assert [h["x-team"] for h in server.sent("POST", "/jobs")] == ["red"]
    assert [h["x-team"] for h in server.sent("GET", "/jobs/j1")] == ["blue"]


# ---------------------------------------------------------------- credentials


async def test_polls_and_cancels_on_another_origin_get_no_credentials(
    make_poller: MakePoller, server: Server, other: Server
) -> None:
    """A job submitted on one origin and polled on an allowed other one: its polls and its
    remote cancel carry no credentials there; the create request carries them."""
    server.script("POST", "/jobs", Reply(b"", 202, {"Location": other.url + "/ops/7"}))
    other.script("GET", "/ops/7", Reply({"status": "running"}))
    other.script("DELETE", "/ops/7", Reply(b"", 204))
    with anyio.fail_after(5):
        async with make_poller(
            headers=CREDENTIALS, allowed_origins=[other.url], schedule=asyncpoll.fixed(30.0)
        ) as p:
            handle = await p.submit(server.url + "/jobs", json={})
            assert handle.url == other.url + "/ops/7"
            assert await handle.cancel_remote() is True
    assert handle.state is JobState.CANCELLED
    (create,) = server.sent("POST", "/jobs")
    assert has_credentials(create)
    assert other.requests, "the other origin was contacted"
    assert [m for m, _, _, _ in other.requests].count("DELETE") == 1
    for method, _, sent, _ in other.requests:
        assert has_none(sent), method
        assert sent["x-trace"] == "t1"


async def test_a_cancel_url_on_another_origin_gets_no_credentials(
    make_poller: MakePoller, server: Server, other: Server
) -> None:
    """cancel_url= on another origin: the DELETE there carries no credentials."""
    server.script("GET", "/jobs/a", Reply({"status": "running"}))
    other.script("DELETE", "/cancel/a", Reply(b"", 202))
    with anyio.fail_after(5):
        async with make_poller(
            server.url + "/jobs/{job_id}",
            headers=CREDENTIALS,
            cancel_url=other.url + "/cancel/{job_id}",
            schedule=asyncpoll.fixed(30.0),
        ) as p:
            handle = p.add("a")
            assert await p.cancel(handle, remote=True) is True
    (cancel,) = other.sent("DELETE", "/cancel/a")
    assert has_none(cancel)
    assert all(has_credentials(h) for h in server.sent("GET", "/jobs/a"))


# ---------------------------------------------------------------- body caps

CAP = 500


def status_body(size: int) -> bytes:
    """A JSON status body of exactly ``size`` bytes saying the job is done."""
    head, tail = b'{"status": "done", "pad": "', b'"}'
    body = head + b"x" * (size - len(head) - len(tail)) + tail
    assert len(body) == size
    return body


#: httpx's own transport on trio leaves the body's inner async generators unfinished when
#: a read stops at the cap; trio's finalizer then warns (ResourceWarning). A known gap,
#: not what this test checks: the warning is ignored and the generators collected here.
OVER_CAP = pytest.param(
    CAP + 1,
    False,
    id="cap+1",
    marks=pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
)


@pytest.mark.parametrize("encoding", ["identity", "gzip"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
@pytest.mark.parametrize(("size", "fits"), [pytest.param(CAP, True, id="cap"), OVER_CAP])
async def test_the_body_cap_is_exact(
    make_poller: MakePoller, server: Server, encoding: str, chunked: bool, size: int, fits: bool
) -> None:
    """max_body=500: a status body of 500 decoded bytes is read, 501 is refused."""
    body = status_body(size)
    headers = {}
    if encoding == "gzip":
        body = gzip.compress(body)
        headers["Content-Encoding"] = "gzip"
    server.script("GET", "/jobs/a", Reply(body, headers=headers, chunked=chunked))
    with anyio.fail_after(5):
        async with make_poller(server.url + "/jobs/{job_id}", max_body=CAP, max_errors=1) as p:
            handle = p.add("a")
            (outcome,) = await p.gather(handle, return_exceptions=True)
    gc.collect()  # finalize what a stopped read left behind, within this test
    assert len(server.requests) == 1
    if fits:
        assert handle.state is JobState.SUCCEEDED
        assert outcome["status"] == "done"
    else:
        assert handle.state is JobState.ERRORED
        assert isinstance(outcome, asyncpoll.PollError)
        assert outcome.message == (
            f"the response to GET {server.url}/jobs/a is larger than {CAP} bytes (decoded); "
            "refusing to read more"
        )
