"""The pool of httpx's own transport as a poller makes it: each idle HTTP/1.1 connection
goes to one request at a time (``asyncpoll._httpcorepool``).

Unit tests set up a pool's state with httpcore's own connection objects (no sockets) and
compare the assignment with httpcore's; loopback tests send many concurrent requests to
a real server on 127.0.0.1 and count what each side saw. A gate holds the server's
answers until every request is queued in the pool, so the counts are exact.
"""

from __future__ import annotations

import collections
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio
import httpcore
import httpx
import pytest
from conftest import REAL_TIME_BACKENDS, serving
from httpcore._async.connection_pool import AsyncPoolRequest
from httpcore._async.http11 import HTTPConnectionState

import asyncpoll
from asyncpoll import _http, _httpcorepool

pytestmark = pytest.mark.anyio


@pytest.fixture(params=REAL_TIME_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Real-time event loops: the loopback tests talk to a real server."""
    return request.param  # type: ignore[no-any-return]


# -- unit level: one pass of the assignment, against httpcore's ------------------------


class Stream:
    """A network stream's stand-in: says whether the socket is readable, and counts asks."""

    def __init__(self, readable: bool = False) -> None:
        self.readable = readable
        self.looks = 0

    def get_extra_info(self, name: str) -> Any:
        if name == "is_readable":
            self.looks += 1
            return self.readable
        return None


def h11(url: str, state: str, readable: bool = False) -> httpcore.AsyncHTTPConnection:
    """A pooled connection to ``url``'s origin, connected over HTTP/1.1, in ``state``."""
    origin = httpcore.URL(url).origin
    connection = httpcore.AsyncHTTPConnection(origin=origin)
    inner = httpcore.AsyncHTTP11Connection(origin, Stream(readable))  # type: ignore[arg-type]
    inner._state = HTTPConnectionState[state]
    connection._connection = inner
    return connection


def queued(url: str) -> AsyncPoolRequest:
    return AsyncPoolRequest(httpcore.Request("GET", url))


A, B = "http://a.test/x", "http://b.test/x"


def one_pass(
    pool_class: type[httpcore.AsyncConnectionPool],
    connections: Callable[[], list[httpcore.AsyncHTTPConnection]],
    requests: list[str],
    **options: Any,
) -> tuple[list[Any], list[Any], list[Any]]:
    """One assignment pass on a fresh pool; what each request got, what closed, what
    stayed, each connection named by its place in ``connections()`` or ``new``."""
    pool = pool_class(**options)
    given = connections()
    pool._connections = list(given)
    pool._requests = [queued(url) for url in requests]
    closing = pool._assign_requests_to_connections()

    def name(connection: Any) -> Any:
        if connection is None:
            return None
        return given.index(connection) if connection in given else "new"

    return (
        [name(r.connection) for r in pool._requests],
        [name(c) for c in closing],
        [name(c) for c in pool._connections],
    )


SAME_AS_HTTPCORE: dict[str, tuple[Callable[[], list[Any]], list[str], dict[str, Any]]] = {
    "closed, expired and idle": (
        lambda: [
            h11(A, "IDLE"),
            h11(A, "CLOSED"),
            h11(A, "IDLE", readable=True),  # the server closed it
            h11(B, "IDLE"),
            h11(A, "ACTIVE"),
        ],
        [B, A],
        {"max_connections": 5},
    ),
    "surplus idle connections": (
        lambda: [h11(A, "IDLE"), h11(A, "ACTIVE"), h11(A, "IDLE"), h11(A, "IDLE")],
        [],
        {"max_connections": 4, "max_keepalive_connections": 2},
    ),
    "new connections": (lambda: [h11(A, "ACTIVE")], [A, A], {"max_connections": 3}),
    "an idle one closed for another origin": (
        lambda: [h11(B, "IDLE"), h11(A, "ACTIVE")],
        [A],
        {"max_connections": 2},
    ),
    "no room": (lambda: [h11(A, "ACTIVE")], [A, A], {"max_connections": 1}),
    "HTTP/2 multiplexing": (
        lambda: [],
        ["https://a.test/1", "https://a.test/2", "https://a.test/3"],
        {"max_connections": 1, "http1": False, "http2": True},
    ),
}


@pytest.mark.parametrize("case", list(SAME_AS_HTTPCORE))
async def test_the_assignment_is_httpcores_where_httpcore_gives_no_connection_twice(
    case: str,
) -> None:
    """Closed, expired and surplus idle connections, new ones, room made for another
    origin, a full pool and HTTP/2: the same outcome as httpcore's own pass."""
    connections, requests, options = SAME_AS_HTTPCORE[case]
    ours = one_pass(_http._OnceEachPool, connections, requests, **options)
    theirs = one_pass(httpcore.AsyncConnectionPool, connections, requests, **options)
    assert ours == theirs


async def test_each_idle_connection_goes_to_one_queued_request_in_order() -> None:
    """5 queued requests, 3 idle connections: httpcore gives the first to all five (four
    would fail and queue again); here the first three take one each, oldest first."""

    def three() -> list[Any]:
        return [h11(A, "IDLE"), h11(A, "IDLE"), h11(A, "IDLE")]

    ours = one_pass(_http._OnceEachPool, three, [A] * 5, max_connections=3)
    theirs = one_pass(httpcore.AsyncConnectionPool, three, [A] * 5, max_connections=3)
    assert ours == ([0, 1, 2, None, None], [], [0, 1, 2])
    assert theirs == ([0, 0, 0, 0, 0], [], [0, 1, 2])


async def test_a_connection_given_in_an_earlier_pass_is_not_given_again() -> None:
    """A request given an idle connection has not started on it when the next request
    arrives: that one takes another connection, and nothing is closed under the first."""
    pool = _http._OnceEachPool(max_connections=2)
    first, second = h11(A, "IDLE"), h11(A, "IDLE")
    pool._connections = [first, second]
    pool._requests = [queued(A)]
    pool._assign_requests_to_connections()
    pool._requests.append(queued(A))
    pool._assign_requests_to_connections()
    assert [r.connection for r in pool._requests] == [first, second]

    # At max_connections with the one idle connection held: a request for another origin
    # waits rather than closing it (httpcore would, and the holder would go round again).
    pool = _http._OnceEachPool(max_connections=1)
    held = h11(A, "IDLE")
    pool._connections = [held]
    pool._requests = [queued(A)]
    pool._assign_requests_to_connections()
    pool._requests.append(queued(B))
    assert pool._assign_requests_to_connections() == []
    assert [r.connection for r in pool._requests] == [held, None]
    assert pool._connections == [held]


async def test_each_connection_is_asked_whether_it_expired_once_a_pass() -> None:
    """The readability check (a syscall) runs once per idle connection per pass."""
    pool = _http._OnceEachPool(max_connections=4)
    connections = [h11(A, "IDLE") for _ in range(4)]
    pool._connections = list(connections)
    pool._requests = [queued(A) for _ in range(10)]
    pool._assign_requests_to_connections()
    assert [c._connection._network_stream.looks for c in connections] == [1, 1, 1, 1]  # type: ignore[union-attr]


async def test_an_idle_socket_is_looked_at_as_its_connection_is_handed_out() -> None:
    """The poller's own connections (``_NoUnread``): the sweep asks ``stale()``, no
    syscall; the socket's readability is asked of an idle connection as it is given to a
    request. One the server closed (readable) is dropped, marked closed, and the request
    takes the next; the connections no request takes are not looked at."""
    pool = _http._OnceEachPool(max_connections=4)
    connections = [h11(A, "IDLE") for _ in range(4)]
    for connection in connections:
        connection.__class__ = _http._NoUnread
    streams = [c._connection._network_stream for c in connections]  # type: ignore[union-attr]
    streams[0].readable = True  # the server closed it while idle
    pool._connections = list(connections)
    pool._requests = [queued(A), queued(A)]
    closing = pool._assign_requests_to_connections()
    assert [s.looks for s in streams] == [1, 1, 1, 0]
    assert closing == [connections[0]] and connections[0].is_closed()
    assert pool._connections == connections[1:]
    assert [r.connection for r in pool._requests] == connections[1:3]

    # Passes with the two held (not yet started on), or with nothing queued: no socket
    # is looked at.
    assert pool._assign_requests_to_connections() == []
    pool._requests = []
    assert pool._assign_requests_to_connections() == []
    assert [s.looks for s in streams] == [1, 1, 1, 0]


async def test_an_httpcore_without_these_internals_keeps_its_own_assignment(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """No method to override: httpcore's pool stays as it is (a debug line says so)."""
    monkeypatch.delattr(httpcore.AsyncConnectionPool, "_assign_requests_to_connections")
    with caplog.at_level(logging.DEBUG, logger="asyncpoll"):
        transport = _http._httpx_own(httpx.Limits(max_connections=4))
    assert type(transport._pool) is _http._Pool
    assert any("keeping its own request assignment" in r.getMessage() for r in caplog.records)
    assert not _httpcorepool.supported(object())


async def test_a_callers_client_keeps_httpcores_pool() -> None:
    """A client passed in is never changed."""
    async with httpx.AsyncClient() as client:
        _http.HttpxTransport(client=client)
        assert type(client._transport._pool) is httpcore.AsyncConnectionPool  # type: ignore[attr-defined]
    made = _http.HttpxTransport()
    assert type(made_pool(made)) is _http._OnceEachPool
    await made.aclose()


# -- loopback: a real server --------------------------------------------------------


class EchoServer(ThreadingHTTPServer):
    """Answers each GET with its path (as a finished job's result), once ``gate`` is set;
    counts requests per path and connections opened and closed."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), EchoHandler)
        self.requests: collections.Counter[str] = collections.Counter()
        self.connections = 0
        self.closed = 0
        self.open_sockets: list[socket.socket] = []
        self.gate = threading.Event()
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host!s}:{port}"

    def close_idle(self) -> None:
        """Close every connection from the server's side, as an idle timeout would."""
        with self.lock:
            sockets, self.open_sockets = self.open_sockets, []
        for sock in sockets:
            sock.shutdown(socket.SHUT_RDWR)


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True
    server: EchoServer

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1
            self.server.open_sockets.append(self.connection)

    def finish(self) -> None:
        super().finish()
        with self.server.lock:
            self.server.closed += 1

    def do_GET(self) -> None:
        with self.server.lock:
            self.server.requests[self.path] += 1
        self.server.gate.wait(timeout=10)
        data = json.dumps({"status": "completed", "result": {"path": self.path}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[EchoServer]:
    yield from serving(EchoServer())


class Sent:
    """Counts each request httpcore sends on a connection, and those refused there
    (``ConnectionNotAvailable``: the request goes back to the queue)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tries = 0
        self.refused = 0
        original = httpcore.AsyncHTTPConnection.handle_async_request

        async def counting(connection: Any, request: httpcore.Request) -> httpcore.Response:
            self.tries += 1
            try:
                return await original(connection, request)
            except httpcore.ConnectionNotAvailable:
                self.refused += 1
                raise

        monkeypatch.setattr(httpcore.AsyncHTTPConnection, "handle_async_request", counting)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Sent:
    return Sent(monkeypatch)


@pytest.fixture
def passes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The number of assignment passes run (one element per pass)."""
    calls: list[int] = []
    original = _httpcorepool.assign

    def counting(pool: Any) -> list[Any]:
        calls.append(1)
        return original(pool)

    monkeypatch.setattr(_httpcorepool, "assign", counting)
    return calls


async def until(condition: Callable[[], bool]) -> None:
    """Wait (at most 5 s) until ``condition()``: a state another thread or task reaches."""
    with anyio.fail_after(5):
        while not condition():  # noqa: ASYNC110 (the state is not ours to signal)
            await anyio.sleep(0.001)


def made_pool(transport: _http.HttpxTransport) -> Any:
    return transport._client._transport._pool  # type: ignore[attr-defined]


async def send_all(
    transport: _http.HttpxTransport, server: EchoServer, paths: list[str]
) -> dict[str, Any]:
    """GET every path at once; the server answers once all are queued in the pool."""
    return await send_all_on(transport.get, made_pool(transport), server, paths)


async def send_all_on(
    send: Callable[[str], Awaitable[Any]], pool: Any, server: EchoServer, paths: list[str]
) -> dict[str, Any]:
    """GET every path at once with ``send`` (whose requests queue in ``pool``); the
    server answers once all are queued. Returns each path's parsed body."""
    bodies: dict[str, Any] = {}

    async def get(path: str) -> None:
        bodies[path] = (await send(path)).json()

    async with anyio.create_task_group() as tg:
        for path in paths:
            tg.start_soon(get, path)
        await until(lambda: len(pool._requests) == len(paths))
        server.gate.set()
    return bodies


N, M = 4, 40  # connections, concurrent requests


@pytest.mark.parametrize("pool_kind", ["poller's", "httpcore's"])
async def test_many_requests_on_a_few_connections_each_sent_once(
    server: EchoServer, sent: Sent, pool_kind: str
) -> None:
    """40 requests at once on a pool of 4: each answered with its own response, each sent
    once on the wire, on 4 connections kept alive. The poller's pool sends each request
    on a connection once (no ConnectionNotAvailable); httpcore's, on the same run, hands
    one freed connection to many queued requests, and all but one go round again."""
    if pool_kind == "poller's":
        transport = _http.HttpxTransport(base_url=server.url, max_connections=N)
        assert type(made_pool(transport)) is _http._OnceEachPool
    else:
        limits = httpx.Limits(max_connections=N, max_keepalive_connections=N)
        client = httpx.AsyncClient(
            base_url=server.url, transport=httpx.AsyncHTTPTransport(limits=limits)
        )
        transport = _http.HttpxTransport(client=client)
    paths = [f"/r/{i}" for i in range(M)]
    try:
        bodies = await send_all(transport, server, paths)
    finally:
        await transport.aclose()
        if pool_kind == "httpcore's":
            await client.aclose()
    assert bodies == {p: {"status": "completed", "result": {"path": p}} for p in paths}
    assert server.requests == dict.fromkeys(paths, 1)
    assert server.connections == N  # all kept alive and reused: M requests on N
    if pool_kind == "poller's":
        assert (sent.tries, sent.refused) == (M, 0)
    else:
        assert sent.refused >= M - N - 1  # the first freed connection alone: 35 refusals
        assert sent.tries == M + sent.refused


async def test_one_assignment_pass_as_each_request_enters_and_leaves(
    server: EchoServer, sent: Sent, passes: list[int]
) -> None:
    """With M > N queued: exactly 2 passes a request (queued; response closed)."""
    transport = _http.HttpxTransport(base_url=server.url, max_connections=N)
    try:
        await send_all(transport, server, [f"/p/{i}" for i in range(M)])
    finally:
        await transport.aclose()
    assert len(passes) == 2 * M
    assert (sent.tries, sent.refused) == (M, 0)


async def test_connections_the_server_closed_are_replaced(server: EchoServer, sent: Sent) -> None:
    """The server closes every idle connection: the next requests open fresh ones, with
    no error and nothing sent twice."""
    transport = _http.HttpxTransport(base_url=server.url, max_connections=N)
    try:
        first = [f"/a/{i}" for i in range(M)]
        await send_all(transport, server, first)
        assert server.connections == N
        server.close_idle()
        await until(lambda: server.closed == N)  # the server's sockets closed: FINs sent
        second = [f"/b/{i}" for i in range(M)]
        bodies = await send_all(transport, server, second)
    finally:
        await transport.aclose()
    assert bodies == {p: {"status": "completed", "result": {"path": p}} for p in second}
    assert server.requests == dict.fromkeys(first + second, 1)
    assert server.connections == 2 * N
    assert (sent.tries, sent.refused) == (2 * M, 0)


async def test_the_poller_polls_many_jobs_on_its_pool(
    server: EchoServer, sent: Sent, passes: list[int]
) -> None:
    """A TaskPoller on httpx's own transport: 60 jobs, max_concurrency=4, one poll each."""
    server.gate.set()
    async with asyncpoll.TaskPoller(
        server.url + "/jobs/{job_id}",
        transport="httpx",
        schedule=asyncpoll.fixed(0),
        max_concurrency=N,
    ) as p:
        results = await p.gather(*[p.add(f"j{i}") for i in range(60)])
    assert results == [{"path": f"/jobs/j{i}"} for i in range(60)]
    assert server.requests == {f"/jobs/j{i}": 1 for i in range(60)}
    assert 1 <= server.connections <= N
    assert (sent.tries, sent.refused) == (60, 0)
    assert len(passes) == 2 * 60


# -- connections closed under the requests that hold them ----------------------------


def own_client(server: EchoServer, **limits: Any) -> httpx.AsyncClient:
    """An httpx client on the transport a poller makes for itself."""
    transport = _http._httpx_own(httpx.Limits(**limits))
    assert type(transport._pool) is _http._OnceEachPool
    return httpx.AsyncClient(base_url=server.url, transport=transport)


async def test_held_connections_the_pass_closes_are_refused_not_read_from(
    server: EchoServer, sent: Sent, passes: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Six requests hold the six idle connections (given to them, woken, not yet run: a
    busy event loop) when keep-alive expiry passes. The next pass drops all six, then
    closes them one after the other, awaiting each: the holders run in between. Each
    must find its connection closed and queue again (ConnectionNotAvailable). Those
    closed last used to be idle still: the request was sent, and closing the connection
    under its read raised httpx.ReadError (as in benchmarks/throughput.py's naive section,
    where hundreds of woken requests waited for the loop longer than keep-alive expiry)."""
    run = anyio.Event()  # the holders' tasks get to run
    original_wait = AsyncPoolRequest.wait_for_connection

    async def woken_late(self: AsyncPoolRequest, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (httpcore's signature)
        connection = await original_wait(self, timeout)
        if self.request.url.target.startswith(b"/held/"):
            await run.wait()
        return connection

    monkeypatch.setattr(AsyncPoolRequest, "wait_for_connection", woken_late)
    bodies: dict[str, Any] = {}
    k = 6
    async with own_client(server, max_connections=k, keepalive_expiry=0.2) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]

        async def get(path: str) -> None:
            bodies[path] = (await client.get(path)).json()

        bodies.update(await send_all_on(client.get, pool, server, [f"/warm/{i}" for i in range(k)]))
        first = list(pool._connections)
        assert len(first) == k
        server.gate.clear()  # the holders' requests, once sent, wait for their answers
        async with anyio.create_task_group() as tg:
            for i in range(k):
                tg.start_soon(get, f"/held/{i}")
            await until(lambda: sum(r.connection is not None for r in pool._requests) == k)
            await anyio.sleep(0.3)  # keep-alive expiry passes: every connection expired
            before = len(passes)
            run.set()  # the holders run at the first await after the next pass
            tg.start_soon(get, "/next")
            await until(lambda: len(passes) > before and all(c.is_closed() for c in first))
            await until(lambda: sent.refused == k)
            server.gate.set()
    assert set(bodies) == {f"/{w}/{i}" for w in ("warm", "held") for i in range(k)} | {"/next"}
    assert all(b == {"status": "completed", "result": {"path": p}} for p, b in bodies.items())
    assert server.requests == dict.fromkeys(bodies, 1)
    assert sent.refused == k  # each holder found its connection closed, and went round


async def test_a_request_cancelled_in_flight_leaves_nothing_held(
    server: EchoServer, sent: Sent
) -> None:
    """A request cancelled while it waits for its answer: httpcore closes that connection
    (the exchange is unfinished) and the request leaves the pool; the next request gets
    a connection at once."""
    async with own_client(server, max_connections=1) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        with anyio.move_on_after(0.3):
            await client.get("/cancelled")  # the gate is closed: no answer
        assert pool._requests == []
        assert all(c.is_closed() for c in pool._connections)
        server.gate.set()
        response = await client.get("/after")
        assert response.json() == {"status": "completed", "result": {"path": "/after"}}
        assert pool._requests == []
        assert len(pool._connections) == 1 and pool._connections[0].is_idle()
    assert sent.refused == 0


async def test_a_request_cancelled_while_queued_gives_its_place_up(
    server: EchoServer, sent: Sent
) -> None:
    """A request cancelled while queued behind a busy connection leaves the queue; the
    connection goes to the next one once free."""
    async with own_client(server, max_connections=1) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        bodies: dict[str, Any] = {}

        async def get(path: str) -> None:
            bodies[path] = (await client.get(path)).json()

        async with anyio.create_task_group() as tg:
            tg.start_soon(get, "/busy")
            await until(lambda: server.requests["/busy"] == 1)
            with anyio.move_on_after(0.2):
                await client.get("/gives-up")  # queued: the one connection is busy
            tg.start_soon(get, "/next")
            await until(lambda: len(pool._requests) == 2)
            assert [r.is_queued() for r in pool._requests] == [False, True]
            server.gate.set()
        assert sorted(bodies) == ["/busy", "/next"]
        assert "/gives-up" not in server.requests
        assert pool._requests == []
        assert len(pool._connections) == 1
    assert (sent.tries, sent.refused) == (2, 0)


async def test_a_request_cancelled_holding_an_unused_connection_gives_it_back(
    server: EchoServer, sent: Sent, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A request given the idle connection (woken, its task not yet run) is cancelled:
    it leaves the pool and the connection, never used by it, goes to the next request
    (not closed, not given twice)."""
    original_wait = AsyncPoolRequest.wait_for_connection

    async def never_runs(self: AsyncPoolRequest, timeout: float | None = None) -> Any:  # noqa: ASYNC109 (httpcore's signature)
        connection = await original_wait(self, timeout)
        if self.request.url.target == b"/cancelled":
            await anyio.sleep_forever()
        return connection

    monkeypatch.setattr(AsyncPoolRequest, "wait_for_connection", never_runs)
    server.gate.set()
    async with own_client(server, max_connections=1) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        await client.get("/warm")
        (connection,) = pool._connections
        with anyio.move_on_after(0.2):
            await client.get("/cancelled")
        assert pool._requests == [] and pool._connections == [connection]
        assert connection.is_idle()
        assert (await client.get("/next")).json()["result"] == {"path": "/next"}
        assert pool._connections == [connection]
    assert "/cancelled" not in server.requests
    assert (sent.tries, sent.refused) == (2, 0)


async def test_a_response_never_closed_keeps_its_connection_held(
    server: EchoServer, sent: Sent
) -> None:
    """A streamed response not yet read nor closed holds its connection: another request
    waits for it (here until its pool timeout), and gets it once the response closes."""
    server.gate.set()
    async with own_client(server, max_connections=1) as client:
        pool = client._transport._pool  # type: ignore[attr-defined]
        response = await client.send(client.build_request("GET", "/open"), stream=True)
        with pytest.raises(httpx.PoolTimeout):
            await client.get("/waits", timeout=httpx.Timeout(5, pool=0.2))
        assert len(pool._requests) == 1
        await response.aclose()
        assert pool._requests == []
        assert (await client.get("/then")).json()["result"] == {"path": "/then"}
        assert len(pool._connections) == 1
    assert (sent.tries, sent.refused) == (2, 0)
