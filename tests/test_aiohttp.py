"""The native aiohttp path (``transport="aiohttp"``) over real HTTP on 127.0.0.1.

A small scripted server answers each path with a fixed status, headers and body (sent
with a Content-Length, or chunked), and records every request it gets. These tests run
in real time on asyncio (aiohttp's only event loop), plus trio for the fallback.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import logging
import socket
import threading
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import anyio
import httpx
import pytest
from conftest import serving

import asyncpoll
from asyncpoll._aiohttp import AiohttpTransport
from asyncpoll._http import HttpxTransport
from asyncpoll._transport import TransportFailure

pytestmark = pytest.mark.anyio

ASYNCIO = ("asyncio", {"loop_factory": asyncio.new_event_loop})


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    return ASYNCIO


class Reply:
    def __init__(
        self,
        body: bytes | Any = b"",
        status: int = 200,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        *,
        chunked: bool = False,
    ) -> None:
        self.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.status = status
        self.headers = list(headers.items()) if isinstance(headers, dict) else headers or []
        self.chunked = chunked


class Server(ThreadingHTTPServer):
    """Answers each path with its scripted ``Reply`` (404 otherwise); records requests."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.replies: dict[str, Reply] = {}
        #: (method, path, headers, body) of every request.
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that stops reading (a size cap) breaks the pipe: expected


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with self.server.lock:
            self.server.requests.append((self.command, self.path, dict(self.headers), body))
        reply = self.server.replies.get(self.path, Reply(b"no such path", 404))
        self.send_response(reply.status)
        for key, value in reply.headers:
            self.send_header(key, value)
        if reply.chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(reply.body), 65536):
                piece = reply.body[start : start + 65536]
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
    yield from serving(Server())


@pytest.fixture
def other() -> Iterator[Server]:
    """A second server: another origin (another port)."""
    yield from serving(Server())


def header(request: tuple[str, str, dict[str, str], bytes], name: str) -> str | None:
    return {k.lower(): v for k, v in request[2].items()}.get(name.lower())


async def test_polls_go_straight_through_aiohttp_without_httpx(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    """transport="aiohttp" polls on an aiohttp session; httpx never sends a request."""

    def no_httpx(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("httpx sent a request")

    monkeypatch.setattr(httpx.AsyncClient, "send", no_httpx)
    for i in range(3):
        server.replies[f"/jobs/j{i}"] = Reply({"status": "done", "result": i})
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        base_url=server.url,
        transport="aiohttp",
        headers={"Authorization": "Bearer k"},
        schedule=asyncpoll.fixed(0),
    ) as p:
        assert type(p._transport) is AiohttpTransport
        results = await p.gather(*[p.add(f"j{i}") for i in range(3)])
    assert results == [0, 1, 2]
    assert sorted(r[1] for r in server.requests) == ["/jobs/j0", "/jobs/j1", "/jobs/j2"]
    assert {header(r, "authorization") for r in server.requests} == {"Bearer k"}
    assert {header(r, "accept-encoding") for r in server.requests} == {"gzip, deflate"}


async def test_a_base_url_path_is_kept(server: Server) -> None:
    """base_url's path is kept for relative status URLs, as with httpx."""
    server.replies["/api/v1/jobs/7"] = Reply({"status": "done", "result": 7})
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}", base_url=server.url + "/api/v1", transport="aiohttp"
    ) as p:
        assert await p.add(7) == 7
    assert [r[1] for r in server.requests] == ["/api/v1/jobs/7"]


async def test_a_callers_session_is_used_and_left_open(server: Server) -> None:
    """client=aiohttp.ClientSession: its base_url and default headers apply; never closed."""
    server.replies["/v2/jobs/a"] = Reply({"status": "done", "result": "A"})
    async with aiohttp.ClientSession(
        base_url=server.url + "/v2/", headers={"X-Team": "blue"}
    ) as session:
        async with asyncpoll.TaskPoller("jobs/{job_id}", client=session) as p:
            assert type(p._transport) is AiohttpTransport
            assert await p.add("a") == "A"
        assert not session.closed
    assert [r[1] for r in server.requests] == ["/v2/jobs/a"]
    assert header(server.requests[0], "x-team") == "blue"


async def test_an_httpx_client_is_used_as_it_is_whatever_transport_says(server: Server) -> None:
    """client=httpx.AsyncClient with transport="aiohttp" keeps working, through httpx."""
    server.replies["/jobs/a"] = Reply({"status": "done", "result": 1})
    async with httpx.AsyncClient(base_url=server.url) as client:
        async with asyncpoll.TaskPoller("/jobs/{job_id}", client=client, transport="aiohttp") as p:
            assert type(p._transport) is HttpxTransport
            assert await p.add("a") == 1
        assert not client.is_closed


@pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")], indirect=False)
async def test_on_trio_a_made_session_falls_back_to_httpx(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    """aiohttp is asyncio-only: on trio the poller polls through httpx and says so once."""
    server.replies["/jobs/a"] = Reply({"status": "done", "result": 1})
    with caplog.at_level(logging.WARNING, logger="asyncpoll"):
        async with asyncpoll.TaskPoller(
            "/jobs/{job_id}", base_url=server.url, transport="aiohttp"
        ) as p:
            assert type(p._transport) is HttpxTransport
            assert await p.add("a") == 1
    assert [r.getMessage() for r in caplog.records] == [
        "transport='aiohttp' runs on asyncio only; using httpx's own transport on trio"
    ]


@pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")], indirect=False)
async def test_on_trio_a_transport_without_a_fallback_refuses_to_open() -> None:
    """Falling back is the picker's choice: a bare AiohttpTransport cannot open on trio."""
    with pytest.raises(RuntimeError) as info:
        AiohttpTransport().open()
    assert str(info.value) == "transport='aiohttp' runs on asyncio only, not trio"


def test_a_callers_session_on_trio_is_refused_by_name() -> None:
    """A caller's aiohttp session cannot run on trio: entering the poller says so."""

    async def make() -> aiohttp.ClientSession:
        return aiohttp.ClientSession()

    session = asyncio.run(make())
    poller = asyncpoll.TaskPoller("http://127.0.0.1:9/jobs/{job_id}", client=session)

    async def enter() -> None:
        async with poller:
            pass

    with pytest.raises(RuntimeError) as info:
        anyio.run(enter, backend="trio")
    assert str(info.value) == (
        "an aiohttp.ClientSession runs on asyncio only, not trio; "
        "pass an httpx.AsyncClient as client= there"
    )
    asyncio.run(session.close())


def test_a_client_of_another_kind_is_refused_by_name() -> None:
    with pytest.raises(TypeError) as info:
        asyncpoll.TaskPoller("http://h.test/jobs/{job_id}", client=object())
    assert str(info.value) == (
        "client must be an httpx.AsyncClient or an aiohttp.ClientSession, got object"
    )


async def test_credentials_never_reach_another_origin(server: Server, other: Server) -> None:
    """A result on another (allowed) origin is fetched without any credential or default."""
    server.replies["/jobs/a"] = Reply({"status": "done", "resultUrl": other.url + "/r/a"})
    other.replies["/r/a"] = Reply({"pages": 3})
    async with (
        aiohttp.ClientSession(
            headers={"Authorization": "Bearer session-secret", "X-Team": "blue"}
        ) as session,
        asyncpoll.TaskPoller(
            server.url + "/jobs/{job_id}",
            client=session,
            headers={"X-Api-Key": "poller-secret", "X-Trace": "t1"},
            fetch_result=True,
            allowed_origins=[other.url],
        ) as p,
    ):
        assert await p.add("a") == {"pages": 3}
    (status,) = server.requests
    (fetch,) = other.requests
    assert header(status, "authorization") == "Bearer session-secret"
    assert header(status, "x-api-key") == "poller-secret"
    assert header(fetch, "authorization") is None
    assert header(fetch, "x-api-key") is None
    assert header(fetch, "x-team") is None  # a session default: not sent off-origin
    assert header(fetch, "x-trace") == "t1"  # not a credential


async def test_submit_sends_the_same_json_bytes_as_httpx(server: Server) -> None:
    """submit(json=...) sends compact UTF-8 JSON, byte for byte what httpx sends."""
    server.replies["/jobs"] = Reply({"id": "n1"}, 201)
    server.replies["/jobs/n1"] = Reply({"status": "done", "result": "ok"})
    payload = {"prompt": "café", "n": [1, 2]}
    for kind in ("aiohttp", "httpx"):
        async with asyncpoll.TaskPoller("/jobs/{job_id}", base_url=server.url, transport=kind) as p:
            handle = await p.submit("/jobs", json=payload)
            assert await handle == "ok"
    posts = [r for r in server.requests if r[0] == "POST"]
    assert [r[3] for r in posts] == ['{"prompt":"café","n":[1,2]}'.encode()] * 2
    assert {header(r, "content-type") for r in posts} == {"application/json"}


@contextlib.asynccontextmanager
async def transport_for(server: Server, **options: Any) -> AsyncIterator[AiohttpTransport]:
    """An opened AiohttpTransport on ``server``, closed afterwards."""
    t = AiohttpTransport(base_url=server.url, **options)
    assert t.open() is t
    try:
        yield t
    finally:
        await t.aclose()


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), (None, bytes)],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_bodies_come_back_decoded(
    server: Server, encoding: str | None, compress: Any, chunked: bool
) -> None:
    """gzip, deflate and identity bodies, with a length or chunked, decode byte for byte."""
    data = json.dumps({"status": "running", "pad": "x" * 200_000}).encode()
    headers = {"Content-Encoding": encoding} if encoding else {}
    server.replies["/a"] = Reply(compress(data), headers=headers, chunked=chunked)
    async with transport_for(server) as t:
        response = await t.get("/a")
    assert response.status_code == 200
    assert response.content == data
    assert response.url == server.url + "/a"


@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
async def test_a_body_over_the_cap_is_refused(server: Server, chunked: bool) -> None:
    server.replies["/big"] = Reply(b"x" * 2001, chunked=chunked)
    server.replies["/fits"] = Reply(b"x" * 2000, chunked=chunked)
    async with transport_for(server, max_body=2000) as t:
        assert len((await t.get("/fits")).content) == 2000
        with pytest.raises(TransportFailure) as info:
            await t.get("/big")
    assert str(info.value) == (
        f"the response to GET {server.url}/big is larger than 2000 bytes (decoded); "
        "refusing to read more"
    )
    assert info.value.transient is False


async def test_a_compression_bomb_is_refused_in_little_memory(server: Server) -> None:
    """A 200 MiB gzip bomb (200 KB on the wire) fails at the 1 MiB cap."""
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024))
    server.replies["/bomb"] = Reply(bomb, headers={"Content-Encoding": "gzip"})
    async with transport_for(server) as t:
        tracemalloc.start()
        try:
            with pytest.raises(TransportFailure) as info:
                await t.get("/bomb")
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert "is larger than 1048576 bytes (decoded)" in str(info.value)
    assert peak < 8 * 1024 * 1024


async def test_an_encoding_not_asked_for_is_refused_by_name(server: Server) -> None:
    server.replies["/br"] = Reply(b"\x1b\x00", headers={"Content-Encoding": "br"})
    async with transport_for(server) as t:
        with pytest.raises(TransportFailure) as info:
            await t.get("/br")
    assert str(info.value) == (
        f"the response to GET {server.url}/br has Content-Encoding 'br', which was not "
        "asked for (Accept-Encoding: gzip, deflate)"
    )
    assert info.value.transient is False


async def test_redirects_are_returned_not_followed_and_headers_joined(server: Server) -> None:
    server.replies["/moved"] = Reply(
        b"", 303, headers=[("Location", "/result"), ("Link", "<a>"), ("link", "<b>")]
    )
    async with transport_for(server) as t:
        response = await t.get("/moved")
    assert response.status_code == 303
    assert response.headers["location"] == "/result"
    assert response.headers["link"] == "<a>, <b>"
    assert [r[1] for r in server.requests] == ["/moved"]


async def test_failures_are_named_and_classified() -> None:
    """Refused connections are transient; a URL that cannot be sent is not."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    t = AiohttpTransport()
    assert t.open() is t
    try:
        with pytest.raises(TransportFailure) as refused:
            await t.get(f"http://127.0.0.1:{port}/jobs/a?token=s3cret")
        with pytest.raises(TransportFailure) as bad:
            await t.get("ftp://127.0.0.1/jobs/a")
        with pytest.raises(TransportFailure) as unparsable:
            await t.get("http://[::1/jobs/a")
    finally:
        await t.aclose()
    assert str(refused.value).startswith(
        f"ClientConnectorError on GET http://127.0.0.1:{port}/jobs/a?token=[redacted]: "
    )
    assert refused.value.transient is True
    assert str(bad.value).startswith("invalid URL 'ftp://127.0.0.1/jobs/a': ")
    assert bad.value.transient is False
    assert str(unparsable.value).startswith("invalid URL 'http://[::1/jobs/a': ")
    assert unparsable.value.transient is False


async def test_a_callers_raise_for_status_session_still_reads_status_codes(server: Server) -> None:
    """A 404 ends the job at once, even on a session made with raise_for_status=True."""
    server.replies["/jobs/gone"] = Reply(b"no such job", 404)
    async with (
        aiohttp.ClientSession(base_url=server.url, raise_for_status=True) as session,
        asyncpoll.TaskPoller("/jobs/{job_id}", client=session, max_errors=5) as p,
    ):
        with pytest.raises(asyncpoll.PollError) as info:
            await p.add("gone")
    assert info.value.http_status == 404
    assert len(server.requests) == 1


async def test_a_relative_url_with_a_scheme_in_its_query_resolves_on_a_callers_session(
    server: Server,
) -> None:
    """The response's URL is the absolute one sent, even when a query holds '://'."""
    server.replies["/v1/render?callback=https://me.example/hook"] = Reply(
        b"", 202, headers={"Location": "/v1/jobs/7"}
    )
    server.replies["/v1/jobs/7"] = Reply({"status": "done", "result": 7})
    async with (
        aiohttp.ClientSession(base_url=server.url + "/v1/") as session,
        asyncpoll.TaskPoller(client=session) as p,
    ):
        handle = await p.submit("render?callback=https://me.example/hook")
        assert await handle == 7
    assert handle.url == server.url + "/v1/jobs/7"


async def test_an_unknown_content_encoding_token_reads_as_identity(server: Server) -> None:
    """A misconfigured Content-Encoding ("UTF-8") is read as identity, as httpx does."""
    server.replies["/a"] = Reply({"status": "done"}, headers={"Content-Encoding": "UTF-8"})
    async with transport_for(server) as t:
        response = await t.get("/a")
    assert response.json() == {"status": "done"}
