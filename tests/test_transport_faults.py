"""Every transport against servers that misbehave on a kept-alive connection.

Each test runs a raw socket server on a free 127.0.0.1 port, written here, that records
every request it reads (per connection) and misbehaves on purpose: it resets a reused
connection after reading a request, or writes a stray extra response. The tests run in
real time; every server loop is bounded by socket timeouts and a stop flag.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import aiohttp
import anyio
import anyio.lowlevel
import httpx
import pytest

import asyncpoll
from asyncpoll._aiohttp import AiohttpTransport
from asyncpoll._http import HttpxTransport
from asyncpoll._transport import Transport, TransportFailure

pytestmark = pytest.mark.anyio

ASYNCIO = ("asyncio", {"loop_factory": asyncio.new_event_loop})
TRIO = ("trio", {})

#: (event loop, transport): every transport kind, and a caller's client of each library.
KINDS = [
    pytest.param((ASYNCIO, "httpx"), id="asyncio-httpx"),
    pytest.param((ASYNCIO, "httpx-client"), id="asyncio-httpx-callers-client"),
    pytest.param((ASYNCIO, "httpx-aiohttp"), id="asyncio-httpx-aiohttp"),
    pytest.param((ASYNCIO, "aiohttp"), id="asyncio-aiohttp"),
    pytest.param((ASYNCIO, "aiohttp-session"), id="asyncio-aiohttp-callers-session"),
    pytest.param((TRIO, "httpx"), id="trio-httpx"),
]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> tuple[tuple[str, dict[str, Any]], str]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(kind: tuple[tuple[str, dict[str, Any]], str]) -> tuple[str, dict[str, Any]]:
    return kind[0]


@contextlib.asynccontextmanager
async def callers_client(kind: str) -> AsyncIterator[Any]:
    """The caller's own client for ``kind`` (closed afterwards), or None."""
    if kind == "aiohttp-session":
        async with aiohttp.ClientSession() as session:
            yield session
    elif kind == "httpx-client":
        async with httpx.AsyncClient(timeout=5) as client:
            yield client
    else:
        yield None


@contextlib.asynccontextmanager
async def opened(kind: str) -> AsyncIterator[Transport]:
    """An opened transport of ``kind``, closed afterwards (a caller's client too)."""
    async with callers_client(kind) as client:
        made: Transport
        if kind in ("httpx", "httpx-aiohttp"):
            made = HttpxTransport(kind=kind, request_timeout=5)
        elif kind == "httpx-client":
            made = HttpxTransport(client=client)
        else:
            made = AiohttpTransport(session=client, request_timeout=5)
        transport = made.open()
        try:
            yield transport
        finally:
            await transport.aclose()


def response(body: bytes, *, status: int = 200) -> bytes:
    """A complete HTTP/1.1 response with a Content-Length: the connection stays open."""
    return b"HTTP/1.1 %d OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        status,
        len(body),
        body,
    )


def reset(conn: socket.socket) -> None:
    """Close ``conn`` with a TCP reset (RST), not an orderly FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


#: ``answer(server, conn, connection number, request number on it, path)``: sends the
#: reply to one request; returns False when it closed the connection.
Answer = Callable[["RawServer", socket.socket, int, int, str], bool]


class RawServer:
    """HTTP/1.1 on a raw socket: reads each request's head, lets ``answer`` reply.

    ``requests`` records ``(connection number, request number on it, path)`` of every
    request read, in order. Connections and requests are numbered from 1.
    """

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.requests: list[tuple[int, int, str]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.05)
        self.connections = 0
        #: For answers that wait on the test: set by the test, and by the answer.
        self.go = threading.Event()
        self.went = threading.Event()
        self.threads: list[threading.Thread] = []
        host, port = self.listener.getsockname()
        self.url = f"http://{host}:{port}"

    def serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            thread = threading.Thread(target=self.connection, args=(conn, self.connections))
            thread.start()
            self.threads.append(thread)

    def connection(self, conn: socket.socket, number: int) -> None:
        conn.settimeout(5)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        served = 0
        try:
            while not self.stop.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, buffer = buffer.split(b"\r\n\r\n", 1)  # GETs only: no body
                path = head.split(b" ", 2)[1].decode()
                served += 1
                with self.lock:
                    self.requests.append((number, served, path))
                if not self.answer(self, conn, number, served, path):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def per_connection(self) -> list[int]:
        """How many requests each connection carried, by connection number."""
        counts: dict[int, int] = {}
        for number, _, _ in self.requests:
            counts[number] = counts.get(number, 0) + 1
        return [counts[n] for n in sorted(counts)]


def running(answer: Answer) -> Iterator[RawServer]:
    server = RawServer(answer)
    thread = threading.Thread(target=server.serve)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        thread.join(timeout=5)
        server.listener.close()
        for t in server.threads:
            t.join(timeout=5)


#: How a reset of a sent request is named, by library (never by an internal wrapper).
FAILURE_NAMES = {
    "ClientOSError",
    "ServerDisconnectedError",
    "ReadError",
    "RemoteProtocolError",
    "ConnectTimeout",  # httpx-aiohttp's name for any aiohttp connection error
}


def resets_reused(server: RawServer, conn: socket.socket, number: int, nth: int, path: str) -> bool:
    """Answers a connection's first request; resets it on the second, after reading it."""
    if nth == 1:
        conn.sendall(response(json.dumps({"path": path}).encode()))
        return True
    reset(conn)
    return False


@pytest.fixture
def resetting() -> Iterator[RawServer]:
    yield from running(resets_reused)


async def test_a_reset_reused_connection_is_not_sent_again_behind_our_back(
    kind: tuple[Any, str], resetting: RawServer
) -> None:
    """A reset on a kept-alive connection fails the call (transient), never re-sends it.

    aiohttp re-sends an idempotent request on a new connection by itself after a reset
    on a reused one: a request our rate limiter never admitted. Each of the N calls
    must reach the server exactly once.
    """
    outcomes: list[str] = []
    names: set[str] = set()
    async with opened(kind[1]) as t:
        for i in range(4):
            try:
                r = await t.get(f"{resetting.url}/jobs/{i}")
            except TransportFailure as exc:
                outcomes.append("transient" if exc.transient else "permanent")
                names.add(str(exc).split(" on GET ")[0])
            else:
                assert r.json() == {"path": f"/jobs/{i}"}
                outcomes.append("ok")
    assert [path for _, _, path in resetting.requests] == [f"/jobs/{i}" for i in range(4)]
    assert resetting.per_connection() == [2, 2]
    assert outcomes == ["ok", "transient", "ok", "transient"]
    assert names <= FAILURE_NAMES


def resets_then_done(
    server: RawServer, conn: socket.socket, number: int, nth: int, path: str
) -> bool:
    """A job API that resets every reused connection; the job is done on its 5th request."""
    if nth > 1:
        reset(conn)
        return False
    with server.lock:
        total = len(server.requests)
    body = {"status": "done", "result": total} if total >= 5 else {"status": "running"}
    conn.sendall(response(json.dumps(body).encode()))
    return True


@pytest.fixture
def flaky_api() -> Iterator[RawServer]:
    yield from running(resets_then_done)


async def test_the_poller_counts_every_request_that_reaches_the_server(
    kind: tuple[Any, str], flaky_api: RawServer
) -> None:
    """Through the poller: the server sees exactly the requests the engine made (and
    rate-limited); each reset is a transient error its retry schedule retried."""
    async with (
        callers_client(kind[1]) as client,
        asyncpoll.TaskPoller(
            flaky_api.url + "/jobs/{job_id}",
            client=client,
            transport="httpx" if client else kind[1],
            schedule=asyncpoll.fixed(0),
            retry_schedule=asyncpoll.fixed(0),
            rate_limit=asyncpoll.RateLimit(1000, burst=1000),
            max_errors=10,
        ) as p,
    ):
        assert await p.add("a") == 5
        stats = p.statistics()
    # Requests 1, 3 and 5 open a connection and are answered; 2 and 4 are reset.
    assert [path for _, _, path in flaky_api.requests] == ["/jobs/a"] * 5
    assert flaky_api.per_connection() == [2, 2, 1]
    assert stats.requests == 5
    assert stats.transient_errors == 2


STRAY = response(b'{"stray": true}')


def answer(path: str) -> bytes:
    return response(json.dumps({"path": path}).encode())


def stray_in_one_write(
    server: RawServer, conn: socket.socket, number: int, nth: int, path: str
) -> bool:
    """The very first request's answer comes with a stray response in the same write."""
    conn.sendall(answer(path) + STRAY if (number, nth) == (1, 1) else answer(path))
    return True


def stray_while_idle(
    server: RawServer, conn: socket.socket, number: int, nth: int, path: str
) -> bool:
    """The very first answer is followed, once the test says so (the client has its
    answer and the connection is idle in its pool), by a stray response."""
    conn.sendall(answer(path))
    if (number, nth) == (1, 1) and server.go.wait(5):
        conn.sendall(STRAY)
        server.went.set()
    return True


@pytest.fixture(params=[stray_in_one_write, stray_while_idle], ids=["same-write", "while-idle"])
def stray(request: pytest.FixtureRequest) -> Iterator[RawServer]:
    yield from running(request.param)


#: What a caller's own client keeps doing: its pool is the caller's, left as it is.
CALLERS_POOLS = {
    ("httpx-client", "same-write"): "httpx reuses a connection whose h11 buffer holds bytes",
    ("aiohttp-session", "while-idle"): (
        "aiohttp's connector reuses a connection with a response queued while it was idle"
    ),
}


async def test_a_stray_response_never_answers_the_next_request(
    kind: tuple[Any, str], stray: RawServer, request: pytest.FixtureRequest
) -> None:
    """Bytes left after a complete response make the connection unusable: the next
    request gets its own answer (on another connection), never the stray one."""
    timing = "while-idle" if stray.answer is stray_while_idle else "same-write"
    if (kind[1], timing) in CALLERS_POOLS:
        request.applymarker(pytest.mark.xfail(strict=True, reason=CALLERS_POOLS[kind[1], timing]))
    async with opened(kind[1]) as t:
        first = await t.get(f"{stray.url}/one")
        stray.go.set()
        if stray.answer is stray_while_idle:
            assert await anyio.to_thread.run_sync(stray.went.wait, 5)
            for _ in range(3):  # the event loop reads what the socket has by now
                await anyio.lowlevel.checkpoint()
        second = await t.get(f"{stray.url}/two")
    assert first.json() == {"path": "/one"}
    assert second.json() == {"path": "/two"}
    assert [path for _, _, path in stray.requests] == ["/one", "/two"]
    assert stray.per_connection() == [1, 1]
