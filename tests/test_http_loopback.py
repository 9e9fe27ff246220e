"""Real HTTP on 127.0.0.1: keep-alive on one shared client, and whole-request deadlines.

These tests talk to real servers on a free loopback port, so they run in real time
(the server's socket I/O cannot be fast-forwarded); each is bounded to a second or two.
"""

from __future__ import annotations

import json
import logging
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import anyio.lowlevel
import httpx
import httpx_aiohttp
import pytest
import respx
from conftest import MakePoller, serving

import asyncpoll

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend(network: tuple[str, dict[str, Any], str]) -> tuple[str, dict[str, Any]]:
    """Real-time event loops: socket I/O with a real server cannot run in virtual time."""
    return network[0], network[1]


class JobServer(ThreadingHTTPServer):
    """A job API on a real socket: each job is done on its third poll."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), JobHandler)
        self.polls: dict[str, int] = {}
        self.connections = 0
        self.auth: set[str] = set()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"


class JobHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body go out at once, no 40 ms stalls
    server: JobServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def do_GET(self) -> None:
        job_id = self.path.rsplit("/", 1)[-1]
        with self.server.lock:
            n = self.server.polls[job_id] = self.server.polls.get(job_id, 0) + 1
            self.server.auth.add(self.headers.get("Authorization", ""))
        body: dict[str, Any] = {"status": "running", "progress": 30 * n}
        if n >= 3:
            body = {"status": "completed", "result": {"job": job_id}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[JobServer]:
    """A real job server on a free loopback port, stopped after the test."""
    yield from serving(JobServer())


async def test_many_jobs_share_a_few_kept_alive_connections(
    make_poller: MakePoller, server: JobServer
) -> None:
    """60 jobs x 3 polls over real HTTP reuse at most max_concurrency connections."""
    async with make_poller(
        server.url + "/jobs/{job_id}",
        headers={"Authorization": "Bearer t0ken"},
        schedule=asyncpoll.fixed(0),
        max_concurrency=4,
    ) as p:
        results = await p.gather(*[p.add(f"j{i}") for i in range(60)])
    assert results == [{"job": f"j{i}"} for i in range(60)]
    assert server.polls == {f"j{i}": 3 for i in range(60)}
    assert 1 <= server.connections <= 4
    assert server.auth == {"Bearer t0ken"}


@pytest.fixture
def drip_server() -> Iterator[str]:
    """A server that sends headers, then one body byte every 0.1 s (for at most 5 s)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    listener.settimeout(0.2)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
            )
            for _ in range(50):
                if stop.is_set():
                    return
                try:
                    conn.sendall(b" ")
                except OSError:
                    return
                time.sleep(0.1)

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept)
    thread.start()
    host, port = listener.getsockname()
    try:
        yield f"http://{host}:{port}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


async def test_a_dripping_server_cannot_outlast_request_timeout(
    make_poller: MakePoller, drip_server: str
) -> None:
    """Per-read timeouts never fire on a byte-a-time body; the whole-request bound does."""
    started = time.monotonic()
    async with make_poller(drip_server + "/jobs/{job_id}", request_timeout=0.5, max_errors=1) as p:
        handle = p.add("slow")
        with pytest.raises(asyncpoll.PollError) as info:
            await handle
    elapsed = time.monotonic() - started
    assert "no complete response within request_timeout=0.5 s" in str(info.value)
    assert isinstance(info.value.cause, TimeoutError)
    assert elapsed < 3.0  # the server would have dripped for 5 s
    await anyio.lowlevel.checkpoint()


async def test_the_httpx_aiohttp_transport_polls_real_http(
    server: JobServer, anyio_backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """transport="httpx-aiohttp" polls over aiohttp on asyncio and falls back on trio."""
    async with asyncpoll.TaskPoller(
        server.url + "/jobs/{job_id}",
        schedule=asyncpoll.fixed(0),
        transport="httpx-aiohttp",
        max_concurrency=4,
    ) as p:
        results = await p.gather(*[p.add(f"a{i}") for i in range(20)])
        inner = p._transport._client._transport  # type: ignore[attr-defined]
    assert results == [{"job": f"a{i}"} for i in range(20)]
    fallbacks = [r.getMessage() for r in caplog.records if "runs on asyncio only" in r.getMessage()]
    if anyio_backend_name == "asyncio":
        assert isinstance(inner, httpx_aiohttp.AiohttpTransport)
        assert fallbacks == []
    else:
        assert isinstance(inner, httpx.AsyncHTTPTransport)
        assert fallbacks == [
            "transport='httpx-aiohttp' runs on asyncio only; using httpx's own transport on trio"
        ]


def test_an_unknown_transport_is_named() -> None:
    """An unknown transport name raises ValueError listing the choices."""
    choices = "'auto', 'httpx', 'httpx-aiohttp', 'aiohttp'"
    with pytest.raises(ValueError, match=f"transport must be one of {choices}, got 'curl'"):
        asyncpoll.TaskPoller(transport="curl")


async def test_the_default_transport_is_aiohttp_on_asyncio_and_httpx_on_trio(
    server: JobServer, anyio_backend_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    """transport="auto" (the default) picks its client when the poller opens, without a
    warning: the native aiohttp path on asyncio, httpx's own transport on trio."""
    poller = asyncpoll.TaskPoller(
        server.url + "/jobs/{job_id}",
        headers={"Authorization": "Bearer t0ken"},
        schedule=asyncpoll.fixed(0),
        max_concurrency=4,
    )
    assert poller.transport == "auto"
    async with poller as p:
        picked = p.transport
        results = await p.gather(*[p.add(f"d{i}") for i in range(12)])
    assert picked == ("aiohttp" if anyio_backend_name == "asyncio" else "httpx")
    assert poller.transport == picked
    assert results == [{"job": f"d{i}"} for i in range(12)]
    assert server.polls == {f"d{i}": 3 for i in range(12)}
    assert server.auth == {"Bearer t0ken"}
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_default_transport_is_httpx_while_respx_mocks(server: JobServer) -> None:
    """A respx mock answers httpx requests only: while one runs, "auto" picks httpx, so a
    test's mocked API stays mocked (the real server behind the same URL is never asked)."""
    with respx.mock(assert_all_called=False) as router:
        router.get(url__regex=r".*/jobs/.*").respond(json={"status": "done", "result": 7})
        async with asyncpoll.TaskPoller(server.url + "/jobs/{job_id}") as p:
            assert p.transport == "httpx"
            assert await p.add("m1") == 7
    assert server.polls == {}
    async with asyncpoll.TaskPoller(server.url + "/jobs/{job_id}") as p:
        assert p.transport == "aiohttp"  # the mock stopped: the fast client again


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_default_transport_is_httpx_where_aiohttp_cannot_be_imported(
    server: JobServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An install without aiohttp (one made without dependencies) still polls, on httpx."""
    monkeypatch.setitem(sys.modules, "asyncpoll._aiohttp", None)
    async with asyncpoll.TaskPoller(
        server.url + "/jobs/{job_id}", schedule=asyncpoll.fixed(0)
    ) as p:
        assert p.transport == "httpx"
        assert await p.add("n1") == {"job": "n1"}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_default_transport_is_httpx_while_a_test_double_patches_httpx(
    server: JobServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pytest-httpx's ``httpx_mock`` and hand-made monkeypatches replace httpx's request
    entry point: "auto" stays on httpx, so the double answers and no request goes out."""

    async def answer(self: Any, request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"status": "done", "result": str(request.url)})

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", answer)
    async with asyncpoll.TaskPoller(server.url + "/jobs/{job_id}") as p:
        assert p.transport == "httpx"
        assert await p.add("k1") == server.url + "/jobs/k1"
    assert server.polls == {}


def test_the_aiohttp_sessions_trust_what_httpx_trusts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The sessions the poller makes verify TLS against certifi's bundle, as httpx's
    client does, or SSL_CERT_FILE when it is set."""
    import certifi

    from asyncpoll._aiohttp import trusted_roots

    trusted_roots.cache_clear()
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    try:
        expected = ssl.create_default_context(cafile=certifi.where()).cert_store_stats()
        assert trusted_roots().cert_store_stats() == expected
        trusted_roots.cache_clear()
        monkeypatch.setenv("SSL_CERT_FILE", certifi.where())
        assert trusted_roots().cert_store_stats() == expected
    finally:
        trusted_roots.cache_clear()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_the_default_aiohttp_session_verifies_with_those_roots(server: JobServer) -> None:
    """The session a default poller makes on asyncio carries that TLS context."""
    from asyncpoll._aiohttp import trusted_roots

    async with asyncpoll.TaskPoller(server.url + "/jobs/{job_id}") as p:
        session = p._transport._session  # type: ignore[attr-defined]
        assert session.connector._ssl is trusted_roots()
