"""Shared fixtures: every async test runs on asyncio and on trio, in virtual time.

On asyncio the event loop is looptime's, whose clock jumps to the next timer whenever
nothing is ready to run; on trio it is trio's MockClock with autojump. Either way a
test that waits 600 virtual seconds takes milliseconds, and ``anyio.current_time()``
readings are exact figures a test can assert. Each run stops at a virtual time bound,
so no test can loop forever.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import socketserver
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import anyio
import httpx
import looptime
import pytest
import respx
import trio.testing

import asyncpoll

#: Real-time event loops, for modules whose tests talk to a real server over sockets
#: (socket I/O cannot be fast-forwarded); they override ``anyio_backend`` with these.
REAL_TIME_BACKENDS = [
    pytest.param(("asyncio", {"loop_factory": asyncio.new_event_loop}), id="asyncio"),
    pytest.param(("trio", {}), id="trio"),
]

#: Real-time event loops, each with a transport that runs on it: loopback tests of the
#: poller run on every pair (aiohttp runs on asyncio only).
NETWORKS = [
    pytest.param(
        ("asyncio", {"loop_factory": asyncio.new_event_loop}, "httpx"), id="asyncio-httpx"
    ),
    pytest.param(
        ("asyncio", {"loop_factory": asyncio.new_event_loop}, "aiohttp"), id="asyncio-aiohttp"
    ),
    pytest.param(("trio", {}, "httpx"), id="trio-httpx"),
]

MakePoller = Callable[..., asyncpoll.TaskPoller]


@pytest.fixture(params=NETWORKS)
def network(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any], str]:
    """A real-time event loop and a transport: (backend, backend options, transport)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def make_poller(network: tuple[str, dict[str, Any], str]) -> MakePoller:
    """``asyncpoll.TaskPoller`` with the test's transport."""
    return functools.partial(asyncpoll.TaskPoller, transport=network[2])


ServerT = TypeVar("ServerT", bound=socketserver.BaseServer)


def serving(srv: ServerT) -> Iterator[ServerT]:
    """Run ``srv`` (a real server on a loopback port) in a thread for one test."""
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


#: Virtual seconds after which a test's event loop gives up (asyncio backend).
VIRTUAL_END = 100_000.0

#: The step of looptime's virtual clock. Its default, a microsecond, freezes looptime
#: 0.7 (the last release for Python 3.10) for good on any timer due less than half a
#: step after a whole step: the clock jumps by round(wait / step) = 0 steps, and
#: asyncio only runs timers due within its clock's resolution (1 ns) of now. A jittered
#: retry at 7.798628190 s did that. A nanosecond step is within asyncio's resolution,
#: so every timer is reached; it still rounds off float noise (0.1 + 0.2 is 0.3).
VIRTUAL_STEP = 1e-9


def _virtual_loop() -> Any:
    return looptime.new_event_loop(start=0.0, end=VIRTUAL_END, resolution=VIRTUAL_STEP)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Any]:
    """pytest-asyncio's tests (the plain-asyncio-service ones) run on looptime loops too."""
    return {"looptime": _virtual_loop}


@pytest.fixture(
    params=[
        pytest.param(("asyncio", {"loop_factory": _virtual_loop}), id="asyncio"),
        pytest.param(("trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}), id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Run each ``@pytest.mark.anyio`` test on asyncio and on trio, in virtual time."""
    name, options = request.param
    if name == "trio":
        # A fresh MockClock per test, so virtual time starts at zero every time.
        options = {"clock": trio.testing.MockClock(autojump_threshold=0)}
    return name, options


Reply = Any  # an httpx.Response, an exception to raise, or a callable returning either


class FakeJobAPI:
    """A scripted job API behind a ``respx.Router`` and ``httpx.MockTransport``.

    ``script(job_id, *replies)`` sets what successive GETs of ``/jobs/{job_id}``
    answer: each reply is an ``httpx.Response``, an exception to raise, or a callable
    (sync or async) returning one; the last reply repeats. Every request is recorded
    in ``calls`` as ``(virtual time, job id)`` and in ``requests``.
    """

    base_url = "https://api.test"

    def __init__(self) -> None:
        self.router = respx.Router(base_url=self.base_url, assert_all_called=False)
        self.scripts: dict[str, list[Reply]] = {}
        self.calls: list[tuple[float, str]] = []
        self.requests: list[httpx.Request] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.router.get(path__regex=r"^/jobs/(?P<job_id>[^/]+)$").mock(side_effect=self._reply)

    def script(self, job_id: str, *replies: Reply) -> None:
        """Set the replies to successive polls of ``job_id``."""
        self.scripts[job_id] = list(replies)

    def times(self, job_id: str) -> list[float]:
        """The virtual times at which ``job_id`` was polled."""
        return [t for t, j in self.calls if j == job_id]

    def client(self) -> httpx.AsyncClient:
        """A client whose requests this fake answers in process."""
        return httpx.AsyncClient(
            transport=httpx.MockTransport(self.router.async_handler), base_url=self.base_url
        )

    async def _reply(self, request: httpx.Request, job_id: str) -> httpx.Response:
        self.calls.append((anyio.current_time(), job_id))
        self.requests.append(request)
        n = sum(1 for _, j in self.calls if j == job_id) - 1
        replies = self.scripts.get(job_id)
        if not replies:
            return httpx.Response(404, json={"error": f"no job {job_id}"})
        reply = replies[min(n, len(replies) - 1)]
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if callable(reply) and not isinstance(reply, type):
                reply = reply()
                if inspect.isawaitable(reply):
                    reply = await reply
        finally:
            self.in_flight -= 1
        if isinstance(reply, BaseException):
            raise reply
        assert isinstance(reply, httpx.Response)
        return reply


def rel(times: list[float], t0: float) -> list[float]:
    """Times relative to ``t0``, rounded to the microsecond."""
    return [round(t - t0, 6) for t in times]


def job(state: str, **fields: Any) -> httpx.Response:
    """A 200 response with ``{"status": state, **fields}``."""
    return httpx.Response(200, json={"status": state, **fields})


@pytest.fixture
def api() -> FakeJobAPI:
    """A fresh scripted job API."""
    return FakeJobAPI()


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real redis-server on loopback for the whole session (skipped, or failed in CI,
    when redis-server or the ``redis`` package is missing)."""
    from servers.redis_server import RedisServer, require_redis

    require_redis()
    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: Any) -> str:
    """The session's redis-server, emptied for this test."""
    redis_server.flush()
    url: str = redis_server.url
    return url
