"""The native aiohttp edge: the only module that imports aiohttp.

``AiohttpTransport`` sends requests straight on an ``aiohttp.ClientSession``: no httpx
request or response objects on the way, which is where most of a fast transport's CPU
per poll goes otherwise. It keeps the rules every transport keeps (see ``_transport``):
redirects never followed, bodies capped on decoded bytes with gzip and deflate inflated
under the cap, credentials only to the job's origin, failures as ``TransportFailure``.

aiohttp runs on asyncio only; on another event loop a poller that made its own session
falls back to the transport its ``fallback`` makes (httpx's own: see ``_picktransport``)
and says so.

aiohttp re-sends an idempotent request (GET, HEAD, PUT, DELETE...) once by itself, on a
new connection, when the connection it went out on fails (a reset, a server that
disconnected): a request the poller's rate limit never admitted. Every session here
sends each request once; a failure is a transient ``TransportFailure`` and the poller's
retry schedule decides what comes next.

A kept-alive connection that holds bytes no request asked for (a stray response written
after the real one) would hand them to the next request sent on it: a session made here
never sends on such a connection (see ``_CleanConnector``).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json as jsonlib
import os
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any

import aiohttp
import certifi
import sniffio
from aiohttp.connector import Connection
from aiohttp.tracing import Trace
from multidict import CIMultiDict
from yarl import URL

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

__all__ = ["AiohttpTransport", "careful_session", "no_resend"]

#: What every request is sent with: the poller reads every status code itself and
#: follows no redirect; bodies are inflated under the size cap by ``read_capped``.
_OPTIONS: dict[str, Any] = {
    "allow_redirects": False,
    "auto_decompress": False,
    "raise_for_status": False,
}
#: aiohttp 3.12 and later take ``middlewares=`` per request.
_PER_REQUEST_MIDDLEWARES = (
    "middlewares" in inspect.signature(aiohttp.ClientSession._request).parameters
)


def no_resend(session: aiohttp.ClientSession) -> bool:
    """Stop ``session``, one made here, re-sending a failed request by itself.

    aiohttp's own switch is a private attribute (the one its test client turns off);
    False when this aiohttp has none (``_send_options`` then guards each request).
    """
    if not hasattr(session, "_retry_connection"):
        return False
    session._retry_connection = False
    return True


class _CleanConnector(aiohttp.TCPConnector):
    """Hands out no kept-alive connection holding bytes that no request asked for.

    aiohttp parses whatever arrives on an idle pooled connection (a stray response a
    server wrote after the real one) and queues it for the next request sent there,
    which would take it for its own answer. A connection released with bytes unread
    aiohttp closes itself; one that got them while idle is closed here, when the pool
    hands it out and before anything is sent on it, and the next one is taken.
    """

    async def connect(
        self, req: aiohttp.ClientRequest, traces: list[Trace], timeout: aiohttp.ClientTimeout
    ) -> Connection:
        conn = await super().connect(req, traces, timeout)
        # Each round closes a pooled connection: at most the pool's size of them (a
        # server that talks first on every new connection gets its say after that).
        for _ in range(self.limit or 100):
            protocol = conn.protocol
            # should_close: a message or bytes queued, a body unread, an error, a close.
            if protocol is None or not protocol.should_close:
                break
            conn.close()
            conn = await super().connect(req, traces, timeout)
        return conn


@functools.lru_cache(maxsize=1)
def trusted_roots() -> ssl.SSLContext:
    """The TLS context of the sessions made here: the certificates httpx trusts, so that
    a poller verifies the same servers on either client: ``SSL_CERT_FILE`` or
    ``SSL_CERT_DIR`` when set, else certifi's bundle (not the system's, which some
    Python builds and slim containers lack). One per process: loading it costs
    milliseconds."""
    if os.environ.get("SSL_CERT_FILE"):
        return ssl.create_default_context(cafile=os.environ["SSL_CERT_FILE"])
    if os.environ.get("SSL_CERT_DIR"):
        return ssl.create_default_context(capath=os.environ["SSL_CERT_DIR"])
    return ssl.create_default_context(cafile=certifi.where())


def careful_session(connector: Mapping[str, Any], **options: Any) -> aiohttp.ClientSession:
    """An aiohttp session that sends each request once (see ``no_resend``) and never on
    a connection holding unread bytes; ``connector`` and ``options``: the arguments of
    its ``TCPConnector`` and of the session."""
    session = aiohttp.ClientSession(connector=_CleanConnector(**connector), **options)
    no_resend(session)
    return session


class _NotResent(aiohttp.ClientConnectionError):
    """A reset or a disconnect, carried past aiohttp's re-send (which catches
    ``ClientOSError`` and ``ServerDisconnectedError`` only); its cause is the original."""


async def _send_once(
    request: aiohttp.ClientRequest,
    handler: Callable[[aiohttp.ClientRequest], Awaitable[aiohttp.ClientResponse]],
) -> aiohttp.ClientResponse:
    """A request middleware: a request sent that failed on its connection is not resent."""
    try:
        return await handler(request)
    except aiohttp.ClientConnectorError:
        raise  # no connection: nothing was sent, and aiohttp does not re-send it
    except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
        raise _NotResent(str(exc)) from exc


def _send_options(session: aiohttp.ClientSession) -> dict[str, Any]:
    """The options of each request on ``session``: ones that send each request once.

    A session that still re-sends (a caller's, which is left as it is) gets a request
    middleware, outermost, that hands a failed send past the re-send; on an aiohttp
    without per-request middlewares (before 3.12) a caller's session keeps re-sending.
    """
    if getattr(session, "_retry_connection", True) is False or not _PER_REQUEST_MIDDLEWARES:
        return _OPTIONS
    # Per-request middlewares replace the session's: its own ones run inside ours.
    own = tuple(getattr(session, "_middlewares", None) or ())
    return {**_OPTIONS, "middlewares": (_send_once, *own)}


class AiohttpTransport:
    """Requests on one shared ``aiohttp.ClientSession`` with keep-alive.

    Args:
        session: a session the caller owns and closes; None makes one, when the poller
            opens, that ``aclose()`` closes.
        base_url: joined with relative URLs (only for a session made here; a caller's
            session keeps its own ``base_url``).
        headers: sent with every request, besides the session's own.
        request_timeout: aiohttp's connect and per-read timeouts, in seconds (the engine
            bounds each whole request on top).
        max_connections: the connection limit; kept-alive connections are reused.
        max_body: the largest body read, in decoded bytes.
        secret_headers: header names, beyond the usual credential headers, never sent
            to another origin.
        fallback: makes the transport used instead of a session made here, on an event
            loop other than asyncio; None: refuse to open there.
    """

    __slots__ = (
        "_bare",
        "_bare_options",
        "_base_url",
        "_fallback",
        "_headers",
        "_max_body",
        "_max_connections",
        "_options",
        "_owns_session",
        "_request_timeout",
        "_secret",
        "_session",
    )

    def __init__(
        self,
        *,
        session: aiohttp.ClientSession | None = None,
        base_url: str | None = None,
        headers: Mapping[str, str] | None = None,
        request_timeout: float | None = 30.0,
        max_connections: int = 64,
        max_body: int = DEFAULT_MAX_BODY,
        secret_headers: Iterable[str] = (),
        fallback: Callable[[], Transport] | None = None,
    ) -> None:
        if session is not None and not isinstance(session, aiohttp.ClientSession):
            raise TypeError(
                f"client must be an httpx.AsyncClient or an aiohttp.ClientSession, "
                f"got {type(session).__name__}"
            )
        if session is not None and base_url is not None:
            raise ValueError(
                "base_url= cannot be combined with client=; give the session its base_url"
            )
        self._session = session
        self._owns_session = session is None
        self._bare: aiohttp.ClientSession | None = None  # for other origins, made on demand
        self._options = self._bare_options = _OPTIONS
        self._base_url = base_url or ""
        self._request_timeout = request_timeout
        self._max_connections = max_connections
        self._max_body = max_body
        self._headers = CIMultiDict({"Accept-Encoding": ACCEPT_ENCODING, **(headers or {})})
        self._secret = SECRET_HEADERS | {name.lower() for name in secret_headers}
        self._fallback = fallback

    @property
    def kind(self) -> str:
        return "aiohttp"

    @property
    def owns_client(self) -> bool:
        """True when ``aclose()`` closes the session."""
        return self._owns_session

    def open(self) -> Transport:
        """Make the session in the running loop; elsewhere than asyncio, return the
        transport ``fallback`` makes instead.

        Raises:
            RuntimeError: an event loop other than asyncio, with a caller's
                ``aiohttp.ClientSession`` (which cannot run there) or no ``fallback``.
        """
        library = sniffio.current_async_library()
        if library != "asyncio":
            if not self._owns_session:
                raise RuntimeError(
                    f"an aiohttp.ClientSession runs on asyncio only, not {library}; "
                    "pass an httpx.AsyncClient as client= there"
                )
            if self._fallback is None:
                raise RuntimeError(f"transport='aiohttp' runs on asyncio only, not {library}")
            return self._fallback()
        if self._session is None:
            # The poller's headers are the session's own: nothing to merge per request.
            self._session = self._make_session(cookies=True, headers=self._headers)
        self._options = _send_options(self._session)
        return self

    def _make_session(
        self, *, cookies: bool, headers: Mapping[str, str] | None = None
    ) -> aiohttp.ClientSession:
        timeout = aiohttp.ClientTimeout(
            total=None, connect=self._request_timeout, sock_read=self._request_timeout
        )
        jar: aiohttp.abc.AbstractCookieJar = (
            aiohttp.CookieJar(unsafe=True) if cookies else aiohttp.DummyCookieJar()
        )
        return careful_session(
            {"limit": self._max_connections, "limit_per_host": 0, "ssl": trusted_roots()},
            timeout=timeout,
            auto_decompress=False,  # inflated under the size cap by read_capped
            cookie_jar=jar,  # unsafe=True: keep cookies of IP-address hosts, as httpx does
            headers=headers,
        )

    def _make_bare(self, session: aiohttp.ClientSession) -> aiohttp.ClientSession:
        """A session for other origins: ``session``'s connections (its TLS, resolver and
        limits), none of its defaults (headers, auth, cookies)."""
        bare = aiohttp.ClientSession(
            connector=session.connector,
            connector_owner=False,
            timeout=session.timeout,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=session.trust_env,
        )
        no_resend(bare)
        self._bare_options = _send_options(bare)
        return bare

    def absolute(self, url: str) -> str:
        """``url`` joined with the base URL (a caller's session: joined its way)."""
        if self._owns_session:
            return join_base(self._base_url, url)
        base = getattr(self._session, "_base_url", None)
        if base is None or url.startswith(("http://", "https://")):
            return url
        return str(base.join(URL(url)))

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
            credentials: False (another origin) sends the request on a bare session of
                its own: none of the credential headers (``secret_headers``), none of a
                caller's session defaults (headers, auth, cookies).
        """
        session = self._session
        assert session is not None, "open() makes the session"
        options = self._options
        merged: Mapping[str, str] = self._headers
        if headers:
            merged = CIMultiDict(self._headers)
            merged.update(headers)
        if not credentials:
            merged = {k: v for k, v in merged.items() if k.lower() not in self._secret}
            if self._bare is None:
                self._bare = self._make_bare(session)
            session = self._bare
            options = self._bare_options
            url = self.absolute(url)
        elif self._owns_session:
            url = join_base(self._base_url, url)
        # On the poller's own session its headers are the session's defaults: none to send.
        send: Mapping[str, str] | None = (
            None if credentials and self._owns_session and not headers else merged
        )
        body: Any = None
        if json is not None:
            # The same bytes httpx would send, so a server sees one format either way.
            body = jsonlib.dumps(
                json, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            ).encode()
            send = CIMultiDict(send or ())
            send.setdefault("Content-Type", "application/json")
        elif content is not None:
            body = content.encode() if isinstance(content, str) else content
        elif data is not None:
            body = data
        cap = self._max_body if max_body is None else max_body
        try:
            async with session.request(method, url, headers=send, data=body, **options) as r:
                length = r.content_length
                encoding = r.headers.get("Content-Encoding", "").strip().lower()
                if method == "HEAD" or r.status in (204, 304):
                    content_bytes = b""  # no body, whatever Content-Length says
                elif not encoding and length is not None:
                    # The common case: a small identity body of known length.
                    if length > cap:
                        raise too_large(method, str(r.url), cap)
                    content_bytes = await r.read()
                else:
                    content_bytes = await read_capped(
                        r.content.iter_any(), encoding, cap, method, str(r.url)
                    )
                raw_headers = r.headers
                joined = {key.lower(): value for key, value in raw_headers.items()}
                if len(joined) != len(raw_headers):  # a repeated header: join its values
                    joined = {}
                    for key, value in raw_headers.items():
                        key = key.lower()
                        joined[key] = f"{joined[key]}, {value}" if key in joined else value
                # Redirects are never followed: the response is for the URL as sent.
                sent = url if url.startswith(("http://", "https://")) else str(r.url)
                return Response._trusted(r.status, joined, content_bytes, redact_url(sent), sent)
        except TransportFailure:
            raise
        except (aiohttp.InvalidURL, aiohttp.NonHttpUrlClientError) as exc:
            raise TransportFailure(
                f"invalid URL {quote_url(str(url))}: {exc}", transient=False
            ) from exc
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            cause = exc.__cause__ if isinstance(exc, _NotResent) and exc.__cause__ else exc
            name = type(cause).__name__
            detail = str(cause) or "no detail"
            raise TransportFailure(
                f"{name} on {method} {redact_url(str(url))}: {detail}", transient=True
            ) from cause
        except ValueError as exc:  # aiohttp's check of a header value, a method
            raise TransportFailure(
                f"cannot send {method} {redact_url(str(url))}: {exc}", transient=False
            ) from exc

    async def aclose(self) -> None:
        """Close the sessions this transport made."""
        if self._bare is not None:
            await self._bare.close()
        if self._owns_session and self._session is not None:
            await self._session.close()
