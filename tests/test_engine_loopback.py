"""The engine's rules on real sockets: cool-downs hold every waiting request back, every
request kind is judged alike, and a refused job keeps no body alive.

A scripted job API runs on a free 127.0.0.1 port and stamps each request with its
arrival time; the tests assert on that log. They run in real time, each under a second.
"""

from __future__ import annotations

import gc
import json
import sys
import threading
import time
import types
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from conftest import MakePoller, serving

import asyncpoll
from asyncpoll import JobState

pytestmark = pytest.mark.anyio

Reply = tuple[int, dict[str, str], bytes]


@pytest.fixture
def anyio_backend(network: tuple[str, dict[str, Any], str]) -> tuple[str, dict[str, Any]]:
    """Real-time event loops: socket I/O with a real server cannot run in virtual time."""
    return network[0], network[1]


def reply(code: int, body: Any = None, **headers: str) -> Reply:
    """An answer: status, headers (underscores in names become dashes), JSON body."""
    content = b"" if body is None else json.dumps(body).encode()
    named = {name.replace("_", "-"): value for name, value in headers.items()}
    if body is not None:
        named.setdefault("Content-Type", "application/json")
    return code, named, content


class ScriptServer(ThreadingHTTPServer):
    """Answers each ``METHOD /path`` from a script (the last reply repeats) and logs
    ``(arrival time, method, path)`` for every request."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), ScriptHandler)
        self.scripts: dict[str, list[Reply]] = {}
        self.seen: dict[str, int] = {}
        self.log: list[tuple[float, str, str]] = []
        self.sent: list[tuple[float, str, int]] = []  # (time the answer began, path, status)
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def script(self, route: str, *replies: Reply) -> None:
        self.scripts[route] = list(replies)

    def next_reply(self, method: str, path: str) -> Reply:
        route = f"{method} {path}"
        with self.lock:
            self.log.append((time.monotonic(), method, path))
            n = self.seen.get(route, 0)
            self.seen[route] = n + 1
            replies = self.scripts.get(route)
        if not replies:
            return reply(404, {"error": "no such route"})
        return replies[min(n, len(replies) - 1)]

    def times(self, path: str) -> list[float]:
        return [t for t, _, p in self.log if p == path]


class ScriptHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: ScriptServer

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        code, headers, body = self.server.next_reply(self.command, self.path)
        # Stamped before writing: the client cannot read the answer earlier than this, so a
        # pause it starts on reading is measured from no later than the stamp.
        started = time.monotonic()
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        with self.server.lock:
            self.server.sent.append((started, self.path, code))

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[ScriptServer]:
    """A scripted job API on a free loopback port."""
    yield from serving(ScriptServer())


# ------------------------------------------------------------------ cool-downs

#: Three ways a host announces a cool-down of 0.6 s while answering job a's first poll.
COOL_DOWNS = {
    "429": reply(429, {"error": "slow down"}, retry_after_ms="600"),
    "503": reply(503, {"error": "busy"}, retry_after_ms="600"),
    "budget": reply(200, {"status": "running"}, RateLimit_Remaining="0", RateLimit_Reset="0.6"),
}


@pytest.mark.parametrize("announce", list(COOL_DOWNS))
@pytest.mark.parametrize("where", ["poller", "host"])
async def test_a_request_waiting_for_a_slot_respects_a_cool_down_announced_meanwhile(
    server: ScriptServer, make_poller: MakePoller, announce: str, where: str
) -> None:
    """A request that waited for a rate slot while its host announced a cool-down does
    not reach the host before the cool-down ends, whichever limit it waited on."""
    done = reply(200, {"status": "succeeded", "result": 1})
    server.script("GET /jobs/a", COOL_DOWNS[announce], done)
    server.script("GET /jobs/b", done)
    limit = asyncpoll.RateLimit(4, burst=1)  # a slot every 0.25 s: b waits for one
    rate_limit: Any = limit if where == "poller" else {"127.0.0.1": limit}
    async with make_poller(
        f"{server.url}/jobs/{{job_id}}",
        rate_limit=rate_limit,
        schedule=asyncpoll.fixed(0.05),
        retry_schedule=asyncpoll.fixed(0.05),
    ) as p:
        a = p.add("a")
        b = p.add("b")
        assert await p.gather(a, b) == [1, 1]
    announced = next(t for t, path, _ in server.sent if path == "/jobs/a")
    later = [t for t, _, _ in server.log if t > announced]
    assert len(later) >= 2  # b's poll and a's second one
    assert min(later) >= announced + 0.6


# ------------------------------------------------------------------ one rule for every kind


async def test_a_503_with_retry_after_on_a_result_fetch_is_back_pressure(
    server: ScriptServer, make_poller: MakePoller
) -> None:
    """A 503 with a hint answering a result fetch waits and never counts against
    max_errors, as on a status poll."""
    server.script("GET /jobs/a", reply(200, {"status": "succeeded", "resultUrl": "/results/a"}))
    busy = reply(503, {"error": "busy"}, retry_after_ms="100")
    server.script("GET /results/a", busy, busy, reply(200, {"pages": 3}))
    async with make_poller(f"{server.url}/jobs/{{job_id}}", fetch_result=True, max_errors=1) as p:
        assert await p.add("a") == {"pages": 3}
        stats = p.statistics()
    assert [(m, path) for _, m, path in server.log] == [
        ("GET", "/jobs/a"),
        ("GET", "/results/a"),
        ("GET", "/results/a"),
        ("GET", "/results/a"),
    ]
    fetches = server.times("/results/a")
    assert fetches[1] - fetches[0] >= 0.1 and fetches[2] - fetches[1] >= 0.1
    assert (stats.throttled, stats.transient_errors) == (2, 0)


async def test_a_503_with_retry_after_on_a_resubmit_is_back_pressure(
    server: ScriptServer, make_poller: MakePoller
) -> None:
    """A 503 with a hint answering a create request sent again waits and never counts
    against max_errors."""
    server.script(
        "POST /jobs",
        reply(202, {"id": "1"}, Location="/jobs/1"),
        reply(503, {"error": "busy"}, retry_after_ms="100"),
        reply(202, {"id": "2"}, Location="/jobs/2"),
    )
    server.script("GET /jobs/1", reply(200, {"status": "failed", "error": "flaky"}))
    server.script("GET /jobs/2", reply(200, {"status": "succeeded", "result": "ok"}))
    async with make_poller(
        base_url=server.url,
        max_errors=1,
        resubmit=1,
        schedule=asyncpoll.fixed(0.01),
        retry_schedule=asyncpoll.fixed(0.01),
    ) as p:
        handle = await p.submit("/jobs", json={"n": 1})
        assert await handle == "ok"
    assert [(m, path) for _, m, path in server.log] == [
        ("POST", "/jobs"),
        ("GET", "/jobs/1"),
        ("POST", "/jobs"),
        ("POST", "/jobs"),
        ("GET", "/jobs/2"),
    ]
    posts = [t for t, m, _ in server.log if m == "POST"]
    assert posts[2] - posts[1] >= 0.1
    assert [s.job_id for s in handle.submissions] == ["1", "2"]


# ------------------------------------------------------------------ what a finished job keeps


_NOT_FOLLOWED = (
    type,
    types.ModuleType,
    types.FunctionType,
    asyncpoll.TaskPoller,
    asyncpoll.JobHandle,
)
_LOOPS = {"asyncio", "trio", "anyio", "selectors"}


def _large_buffers(handle: asyncpoll.JobHandle, limit: int = 64 * 1024) -> list[int]:
    """Sizes of bytes-like objects over ``limit`` reachable from what a finished handle
    keeps: its exception (with causes and tracebacks), result, record and last response.
    Modules, functions, classes, pollers, other handles and event-loop objects are not
    followed: they reach the whole running program, not what the job keeps."""
    shared = {id(vars(m)) for m in list(sys.modules.values()) if m is not None}
    seen: set[int] = set()
    found: list[int] = []
    todo: list[object] = [
        handle.exception(),
        handle._result,
        handle._record,
        handle.last_response,
    ]
    while todo and len(seen) < 200_000:
        obj = todo.pop()
        if id(obj) in seen or id(obj) in shared:
            continue
        if isinstance(obj, _NOT_FOLLOWED) or type(obj).__module__.split(".")[0] in _LOOPS:
            continue
        seen.add(id(obj))
        if isinstance(obj, (bytes, bytearray, memoryview)):
            if len(obj) > limit:
                found.append(len(obj))
            continue
        todo.extend(gc.get_referents(obj))
    return found


# httpcore's own body generator, which httpx gives no way to close, is collected by the
# test's gc.collect() (before this fix the refused job's traceback kept it, and its
# buffer, alive); trio reports that collection as an unraisable ResourceWarning.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
async def test_a_job_refused_for_an_oversized_body_keeps_no_body(
    server: ScriptServer, make_poller: MakePoller
) -> None:
    """A job ended by a status body over max_body keeps no part of that body alive."""
    server.script("GET /jobs/a", reply(200, {"status": "running", "log": "x" * 3_000_000}))
    async with make_poller(f"{server.url}/jobs/{{job_id}}", max_body=1_000_000) as p:
        handle = p.add("a")
        with pytest.raises(asyncpoll.PollError, match="larger than 1000000 bytes"):
            await handle
    assert handle.state is JobState.ERRORED
    assert handle.last_response is None
    # Raising the error here gave it a traceback through this test's own frames (which
    # hold the server and its script); what the job itself keeps is the error and its
    # causes, walked below with their tracebacks.
    error = handle.exception()
    assert error is not None
    error.__traceback__ = None
    gc.collect()
    assert _large_buffers(handle) == []
