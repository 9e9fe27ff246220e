"""The HTTP edge: capped, streamed bodies and the translation of httpx's errors."""

from __future__ import annotations

import ast
import gzip
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

import asyncpoll
from asyncpoll._http import DEFAULT_MAX_BODY, HttpxTransport, TransportFailure

pytestmark = pytest.mark.anyio


class Chunks(httpx.AsyncByteStream):
    """A response body that arrives in pieces, as from a socket (never pre-read)."""

    def __init__(self, data: bytes, size: int = 65536) -> None:
        self.data = data
        self.size = size
        self.offset = 0

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self

    async def __anext__(self) -> bytes:
        if self.offset >= len(self.data):
            raise StopAsyncIteration
        chunk = self.data[self.offset : self.offset + self.size]
        self.offset += len(chunk)
        return chunk


# Leaving a body early (the point of a cap) leaves httpx's own body generator to the
# garbage collector, which trio reports; the response itself is closed.
leaves_httpx_generator = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <async_generator object BoundAsyncStream"
    ":pytest.PytestUnraisableExceptionWarning"
)


def transport(response: httpx.Response, seen: list[httpx.Request] | None = None) -> HttpxTransport:
    """An HttpxTransport whose every GET is answered with ``response``."""

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        return response

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://h.test")
    return HttpxTransport(client=client)


@leaves_httpx_generator
async def test_a_compression_bomb_is_refused_without_inflating_it() -> None:
    """A 200 MiB gzip bomb (200 KB on the wire) fails at the 1 MiB cap, in little memory."""
    bomb = gzip.compress(b"\0" * (200 * 1024 * 1024))
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(bomb))
    tracemalloc.start()
    try:
        with pytest.raises(TransportFailure) as info:
            await transport(response).get("/jobs/a")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(info.value) == (
        "the response to GET https://h.test/jobs/a is larger than 1048576 bytes (decoded); "
        "refusing to read more"
    )
    assert info.value.transient is False
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("identity", bytes)],
)
async def test_bodies_are_decoded_under_the_cap(encoding: str, compress: object) -> None:
    """gzip, deflate and identity bodies come back decoded, byte for byte."""
    body = b'{"status": "done", "result": "' + b"x" * 300_000 + b'"}'
    assert callable(compress)
    response = httpx.Response(
        200, headers={"Content-Encoding": encoding}, stream=Chunks(compress(body), size=1000)
    )
    got = await transport(response).get("/jobs/a")
    assert got.content == body
    assert got.status_code == 200
    assert got.url == "https://h.test/jobs/a"


@leaves_httpx_generator
async def test_a_plain_body_one_byte_over_the_cap_is_refused() -> None:
    """An identity body of max_body + 1 bytes is refused; exactly max_body is read."""
    exact = httpx.Response(200, stream=Chunks(b"x" * DEFAULT_MAX_BODY))
    assert len((await transport(exact).get("/a")).content) == DEFAULT_MAX_BODY
    over = httpx.Response(200, stream=Chunks(b"x" * (DEFAULT_MAX_BODY + 1)))
    with pytest.raises(TransportFailure, match="larger than 1048576 bytes"):
        await transport(over).get("/a")


@leaves_httpx_generator
async def test_a_corrupt_gzip_body_is_a_transient_failure() -> None:
    """A gzip body that does not inflate is transient: a gateway may send a good one next."""
    response = httpx.Response(200, headers={"Content-Encoding": "gzip"}, stream=Chunks(b"nope"))
    with pytest.raises(TransportFailure, match=r"the gzip body of GET .* is corrupt") as info:
        await transport(response).get("/jobs/a")
    assert info.value.transient is True


async def test_only_encodings_it_can_cap_are_asked_for() -> None:
    """Requests ask for gzip and deflate only, and carry the poller's headers."""
    seen: list[httpx.Request] = []
    response = httpx.Response(200, json={"status": "done"})

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return response

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    t = HttpxTransport(client=client, headers={"X-Api-Key": "k"})
    await t.get("https://h.test/jobs/a")
    assert seen[0].headers["accept-encoding"] == "gzip, deflate"
    assert seen[0].headers["x-api-key"] == "k"


async def test_connection_errors_are_transient_and_name_the_absolute_url() -> None:
    """A refused connection is transient; its message names the full URL, redacted."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url="https://h.test")
    with pytest.raises(TransportFailure) as info:
        await HttpxTransport(client=client).get("/jobs/a?token=secret")
    assert str(info.value) == (
        "ConnectError on GET https://h.test/jobs/a?token=[redacted]: connection refused"
    )
    assert info.value.transient is True


async def test_an_unsupported_scheme_is_not_transient() -> None:
    """A URL with a scheme httpx cannot speak fails for good, not after retries."""
    t = HttpxTransport()
    try:
        with pytest.raises(TransportFailure, match="UnsupportedProtocol") as info:
            await t.get("ftp://h.test/jobs/a")
        assert info.value.transient is False
    finally:
        await t.aclose()


def test_base_url_with_a_callers_client_is_refused() -> None:
    """base_url= cannot be combined with a caller's client; the error says what to do."""
    with pytest.raises(ValueError, match="give the client its base_url"):
        HttpxTransport(client=httpx.AsyncClient(), base_url="https://h.test")


def _imports(module: Path) -> set[str]:
    """The package modules ``module`` imports at run time, at its top or lazily inside a
    function; imports under ``if TYPE_CHECKING:`` do not run, and are left out."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(module.read_text()))
    return found


def _import_graph() -> dict[str, set[str]]:
    package = Path(asyncpoll.__file__).parent
    return {path.stem: _imports(path) for path in package.glob("*.py")}


def _reached(graph: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(graph[start])
    while todo:
        module = todo.pop()
        if module not in seen:
            seen.add(module)
            todo.extend(graph.get(module, ()))
    return seen


def test_no_module_imports_one_that_imports_it_back() -> None:
    """No import cycle in the package, lazy imports (inside functions) included."""
    graph = _import_graph()
    assert {m for m in graph if m in _reached(graph, m)} == set()


def test_the_transport_modules_stay_edges() -> None:
    """``_picktransport`` alone picks a transport: the shared ``_transport`` imports no
    client module, and the client modules import nothing of the engine."""
    graph = _import_graph()
    clients = {"_http", "_aiohttp"}
    assert _reached(graph, "_transport").isdisjoint(clients | {"_picktransport"})
    # _http: httpx-aiohttp's session, made in _aiohttp.
    assert {m for m in graph if graph[m] & clients} == {"_picktransport", "_http"}
    assert "_http" not in _reached(graph, "_aiohttp")
    engine = {
        "_poller", "_handle", "_hosts", "_clock", "_ratelimit", "_policy", "_schedule",
        "_reader", "_jsonreader", "_status", "_submit", "_demo", "_picktransport",
    }  # fmt: skip
    for module in sorted(clients):
        assert _reached(graph, module).isdisjoint(engine), module
