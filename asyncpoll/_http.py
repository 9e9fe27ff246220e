"""The httpx edge: the only module that imports httpx.

``HttpxTransport`` is the ``Transport`` (see ``_transport``) over an ``httpx.AsyncClient``:
the default client, or one given as ``client=``, over httpx's own transport or
``httpx-aiohttp``'s.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any, cast

import httpcore
import httpx
import sniffio

from . import _httpcorepool
from ._redact import SECRET_HEADERS, quote_url, redact_url
from ._response import Response
from ._transport import (
    ACCEPT_ENCODING,
    DEFAULT_MAX_BODY,
    Transport,
    TransportFailure,
    read_capped,
    too_large,
)
from ._urls import join_base

logger = logging.getLogger("asyncpoll")

__all__ = [
    "DEFAULT_MAX_BODY",
    "HttpxTransport",
    "Transport",
    "TransportFailure",
    "mock_client",
]

#: The transports an ``HttpxTransport`` can make its own client with.
KINDS = ("httpx", "httpx-aiohttp")


def _translate(exc: httpx.HTTPError, url: str, method: str = "GET") -> TransportFailure:
    """The one place httpx's exceptions become asyncpoll's."""
    with contextlib.suppress(RuntimeError):  # RuntimeError: no request attached
        url = str(exc.request.url)  # absolute, where a base_url applied
    if isinstance(exc, httpx.RemoteProtocolError) and "location header" in str(exc):
        # httpx parses a 3xx's Location even when not following it; a malformed one
        # will not get better by asking again.
        return TransportFailure(
            f"refusing the Location header of {method} {redact_url(url)}: not a valid URL ({exc})",
            transient=False,
        )
    name = type(exc).__name__
    detail = str(exc) or "no detail"
    transient = not isinstance(exc, (httpx.UnsupportedProtocol, httpx.LocalProtocolError))
    return TransportFailure(f"{name} on {method} {redact_url(url)}: {detail}", transient=transient)


class HttpxTransport:
    """Status GETs on one shared ``httpx.AsyncClient`` with keep-alive.

    Args:
        client: a client the caller owns and closes; None makes one that ``aclose()``
            closes.
        base_url: joined with relative status URLs (only for a client made here).
        headers: sent with every status request.
        request_timeout: httpx's connect/read/write/pool timeouts, in seconds. These bound
            each read, not the whole request: the engine adds a deadline around it.
        max_connections: the connection pool size, kept-alive connections included.
        max_body: the largest body read, in decoded bytes.
        secret_headers: header names, beyond the usual credential headers, never sent
            to another origin.
    """

    __slots__ = (
        "_base_url",
        "_client",
        "_headers",
        "_kind",
        "_max_body",
        "_max_connections",
        "_owns_client",
        "_request_timeout",
        "_secret",
    )

    def __init__(
        self,
        *,
        client: httpx.AsyncClient | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float | None = 30.0,
        max_connections: int = 64,
        max_body: int = DEFAULT_MAX_BODY,
        secret_headers: Iterable[str] = (),
        kind: str = "httpx",
    ) -> None:
        if kind not in KINDS:
            raise ValueError(
                f"transport must be one of {', '.join(map(repr, KINDS))}, got {kind!r}"
            )
        if client is not None and not isinstance(client, httpx.AsyncClient):
            raise TypeError(
                "client must be an httpx.AsyncClient or an aiohttp.ClientSession, "
                f"got {type(client).__name__}"
            )
        if client is not None and base_url is not None:
            raise ValueError(
                "base_url= cannot be combined with client=; give the client its base_url"
            )
        self._kind = kind
        self._base_url = base_url or ""
        self._request_timeout = request_timeout
        self._max_connections = max_connections
        self._owns_client = client is None
        if client is None:
            client = self._make_client(kind)
        self._client = client
        # The poller's headers go on each request so a caller's client keeps its own too.
        self._headers = httpx.Headers({"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})})
        self._max_body = max_body
        self._secret = SECRET_HEADERS | {name.lower() for name in secret_headers}

    def _make_client(self, kind: str) -> httpx.AsyncClient:
        limits = httpx.Limits(
            max_connections=self._max_connections,
            max_keepalive_connections=self._max_connections,  # no churn under load
        )
        transport = _httpx_aiohttp(limits) if kind == "httpx-aiohttp" else _httpx_own(limits)
        return httpx.AsyncClient(
            base_url=self._base_url,
            timeout=httpx.Timeout(self._request_timeout),
            limits=limits,
            transport=transport,
            follow_redirects=False,
        )

    def open(self) -> HttpxTransport:
        """Called in the running event loop before the first request; returns itself.

        aiohttp runs on asyncio only: under trio a poller asked for
        ``transport="httpx-aiohttp"`` falls back to httpx's own transport, and says so.
        """
        if self._kind == "httpx" or not self._owns_client:
            return self
        library = sniffio.current_async_library()
        if library != "asyncio":
            logger.warning(
                "transport=%r runs on asyncio only; using httpx's own transport on %s",
                self._kind,
                library,
            )
            self._client = self._make_client("httpx")
            self._kind = "httpx"  # the client in use, as poller.transport says
        return self

    @property
    def kind(self) -> str:
        """The transport asked for: ``"httpx"`` or ``"httpx-aiohttp"``."""
        return self._kind

    @property
    def owns_client(self) -> bool:
        """True when ``aclose()`` closes the client."""
        return self._owns_client

    def absolute(self, url: str) -> str:
        """``url`` joined with the client's base URL."""
        return join_base(str(self._client.base_url), url)

    async def get(self, url: str) -> Response:
        """GET ``url`` with credentials and read the body, at most ``max_body`` bytes."""
        return await self.request("GET", url)

    async def request(
        self,
        method: str,
        url: str,
        *,
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        credentials: bool = True,
        max_body: int | None = None,
    ) -> Response:
        """Send one request and read the body, at most ``max_body`` decoded bytes.

        Args:
            credentials: False strips every credential header (``secret_headers``),
                the client's own defaults and cookies included: for another origin.
        """
        try:
            merged = self._headers if not headers else httpx.Headers({**self._headers, **headers})
            if credentials:
                request = self._client.build_request(
                    method, url, headers=merged, json=json, data=data, content=content
                )
                r = await self._client.send(request, stream=True, follow_redirects=False)
            else:
                # Another origin: a bare request, so none of the client's defaults (auth,
                # cookies, params, headers) and none of the credential headers go along.
                safe = {k: v for k, v in merged.items() if k.lower() not in self._secret}
                request = httpx.Request(
                    method, self.absolute(url), headers=safe, json=json, data=data, content=content
                )
                r = await self._client.send(request, stream=True, follow_redirects=False, auth=None)
            try:
                body = await _read_capped(r, self._max_body if max_body is None else max_body)
            finally:
                await r.aclose()
            sent = str(r.url)
            return Response._trusted(
                r.status_code, _join_headers(r.headers), body, redact_url(sent), sent
            )
        except httpx.HTTPError as exc:
            raise _translate(exc, url, method) from exc
        except httpx.InvalidURL as exc:
            message = f"invalid URL {quote_url(url)}: {exc}"
            raise TransportFailure(message, transient=False) from exc

    async def aclose(self) -> None:
        """Close the client if this transport made it."""
        if self._owns_client:
            await self._client.aclose()


class _NoUnread(httpcore.AsyncHTTPConnection):
    """A pooled connection that is not reused while it holds bytes no request asked for.

    httpcore reuses an idle HTTP/1.1 connection unless its socket is readable. Bytes that
    came in with the end of a response (a stray response written after the real one)
    are in h11's buffer by then, not the socket's, and the next request sent on that
    connection would read them as its answer. Such a connection has expired here: the
    pool closes it instead (it asks before each request, and as each response closes).

    ``stale()`` and ``server_closed()`` split ``has_expired()`` in two for the poller's
    own pool (``_httpcorepool.assign``): the cheap part, asked of every connection each
    pass, and the socket's readability, asked of an idle connection about to be given to
    a request. httpcore's own pass asks ``has_expired()``, both at once.
    """

    #: h11's buffer was looked at since the last request, and held nothing.
    _looked = False

    async def handle_async_request(self, request: httpcore.Request) -> httpcore.Response:
        self._looked = False
        try:
            return await super().handle_async_request(request)
        finally:
            # Again once the response has begun: a look taken while the request waited
            # to start on this (then idle) connection saw h11's buffer before this
            # response, and any stray bytes that came in with it.
            self._looked = False

    def _unread(self) -> bool:
        # One look per idle spell, for nothing reads from an idle connection's socket
        # into h11's buffer.
        if not self._looked:
            opened = self._connection  # the HTTP/1.1 (or 2) connection, once connected
            if opened is not None and opened.is_idle():
                if _holds_unread(opened):
                    return True
                self._looked = True
        return False

    def has_expired(self) -> bool:
        return self._unread() or super().has_expired()

    def stale(self) -> bool:
        """``has_expired()`` but for an idle HTTP/1.1 socket's readability (a syscall):
        keep-alive expiry, unread bytes in h11's buffer, a failed connect."""
        opened = self._connection
        expire_at = getattr(opened, "_expire_at", _UNKNOWN)
        if not isinstance(opened, httpcore.AsyncHTTP11Connection) or expire_at is _UNKNOWN:
            return self.has_expired()  # connecting, failed, HTTP/2: httpcore's own answer
        if self._unread():
            return True
        # httpcore's keep-alive expiry test, as in its has_expired().
        return isinstance(expire_at, float) and time.monotonic() > expire_at

    def server_closed(self) -> bool:
        """An idle HTTP/1.1 connection whose socket is readable: the server closed it (or
        wrote what no request asked for). httpcore's ``has_expired()`` looks at it so."""
        opened = self._connection
        if not isinstance(opened, httpcore.AsyncHTTP11Connection) or not opened.is_idle():
            return False
        stream = getattr(opened, "_network_stream", None)
        return stream is not None and bool(stream.get_extra_info("is_readable"))


_UNKNOWN = object()


def _holds_unread(connection: object) -> bool:
    """True when the HTTP/1.1 connection ``connection`` is, or wraps (a proxy's does),
    has received bytes not yet parsed."""
    for _ in range(3):
        state = getattr(connection, "_h11_state", None)
        if state is not None:
            return bool(state.trailing_data[0])  # h11's received, unprocessed bytes
        connection = getattr(connection, "_connection", None)
    return False


class _Pool(httpcore.AsyncConnectionPool):
    """httpcore's pool, each direct connection it opens a ``_NoUnread``."""

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        connection = super().create_connection(origin)
        if type(connection) is httpcore.AsyncHTTPConnection:
            # Made from all of the pool's arguments; only has_expired differs. (Not a
            # wrapper: the pool asks every connection is_idle() O(n^2) times a request.)
            connection.__class__ = _NoUnread
        return connection


class _OnceEachPool(_Pool):
    """``_Pool`` handing each idle HTTP/1.1 connection to one request at a time (see
    ``_httpcorepool.assign``, which says what differs from httpcore's assignment)."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        return _httpcorepool.assign(self)


def _httpx_own(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """httpx's own transport, on a pool that never sends on a connection holding unread
    bytes (see ``_NoUnread``) and, when the installed httpcore has the internals it works
    on (httpcore 1.0.x), gives an idle connection to one request at a time."""
    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool
    if type(pool) is httpcore.AsyncConnectionPool:
        # The pool httpx built, from all of its arguments; only create_connection (and
        # the assignment of requests to connections) differ.
        pool.__class__ = _OnceEachPool if _httpcorepool.supported(pool) else _Pool
    return transport


def _httpx_aiohttp(limits: httpx.Limits) -> httpx.AsyncBaseTransport:
    """httpx-aiohttp's transport on a session made as the native aiohttp transport's is:
    each request sent once, never on a connection holding unread bytes (see
    ``_aiohttp.careful_session``)."""
    try:
        from httpx_aiohttp import AiohttpTransport

        from ._aiohttp import careful_session
    except ImportError:
        raise ImportError(
            "transport='httpx-aiohttp' needs the aiohttp extra: pip install 'asyncpoll[aiohttp]'"
        ) from None

    class Careful(AiohttpTransport):
        def get_client(self) -> Any:  # an aiohttp.ClientSession, made in the running loop
            # httpx-aiohttp's own connector arguments, on a connector of our own.
            return careful_session(
                {
                    "limit": self.limits.max_connections or 0,
                    "keepalive_timeout": self.limits.keepalive_expiry,
                    "ssl": self.ssl_context,
                }
            )

    return Careful(limits=limits)


async def _read_capped(r: httpx.Response, cap: int) -> bytes:
    """The decoded body of ``r``, refused as soon as it passes ``cap`` bytes."""
    method, url = r.request.method, str(r.url)
    try:
        content = r.content  # already read, and decoded, by an in-process transport
    except httpx.ResponseNotRead:
        pass
    else:
        if len(content) > cap:
            raise too_large(method, url, cap)
        return content
    encoding = r.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity", "gzip", "x-gzip", "deflate"):
        # Inflated by us, a bounded piece at a time (httpx would inflate each whole
        # network chunk before a size check could see it).
        chunks = r.aiter_raw()
    else:
        # Not asked for (see ACCEPT_ENCODING), but httpx can decode it: capped as decoded.
        chunks, encoding = r.aiter_bytes(), ""
    # aclosing: leaving early must close httpx's generator, not leave it to the GC.
    async with contextlib.aclosing(cast("AsyncGenerator[bytes, None]", chunks)) as raw:
        return await read_capped(raw, encoding, cap, method, url)


def _join_headers(headers: httpx.Headers) -> dict[str, str]:
    joined: dict[str, str] = {}
    for key, value in headers.multi_items():
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


def mock_client(
    app: Callable[[str, str], tuple[int, Mapping[str, str], bytes]],
    *,
    base_url: str = "http://jobs.invalid",
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose requests are answered in process by ``app``.

    ``app(method, url)`` returns ``(status_code, headers, body)``. Used by the demo,
    which must run with no server and no network.
    """

    def handler(request: httpx.Request) -> httpx.Response:
        status, headers, body = app(request.method, str(request.url))
        return httpx.Response(status, headers=dict(headers), content=body)

    return httpx.AsyncClient(transport=httpx.MockTransport(handler), base_url=base_url)
