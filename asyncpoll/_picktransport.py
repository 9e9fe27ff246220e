"""The one module that picks a transport: ``make_transport``, from a poller's arguments.

It imports the transport modules (``_http``, and ``_aiohttp`` only when aiohttp is
picked or given), and none of them imports it, nor each other at import time: the engine
sees ``_transport.Transport`` only.

The default, ``transport="auto"``, is the fastest safe client for the event loop the
poller opens on, picked when it opens: on asyncio the native aiohttp path (several times
the polls per CPU second of httpx's own transport, every rule of the engine kept: each
request sent once, counted by the rate limiter); anywhere else (trio) httpx's own
transport. Two cases keep httpx on asyncio too: aiohttp not installed (a base install
has it; an install without dependencies may not), and a test double answering httpx's
requests (a respx mock, pytest-httpx's ``httpx_mock``, a monkeypatch of httpx's or
httpcore's entry point), so that a test's mocked API stays mocked.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import sniffio

from ._response import Response
from ._transport import Transport
from ._urls import join_base

logger = logging.getLogger("asyncpoll")

__all__ = ["TRANSPORTS", "make_transport"]

#: The transports a poller can make its own client with; "auto" picks one when it opens.
TRANSPORTS = ("auto", "httpx", "httpx-aiohttp", "aiohttp")


def make_transport(
    kind: str,
    client: Any,
    *,
    base_url: str | None,
    headers: Mapping[str, str],
    request_timeout: float | None,
    max_connections: int,
    max_body: int,
    secret_headers: Iterable[str],
) -> Transport:
    """The transport for a poller's ``transport=`` and ``client=`` arguments.

    A ``client=`` is used as it is, whatever ``transport=`` says: an
    ``httpx.AsyncClient`` (over any httpx transport) goes through httpx, an
    ``aiohttp.ClientSession`` through the native aiohttp path. Without one, ``kind``
    picks the client the poller makes and closes ("auto": see the module's docstring);
    a native aiohttp transport opened on an event loop other than asyncio falls back to
    httpx's own transport, with a warning when it was asked for by name.
    """
    if kind not in TRANSPORTS:
        raise ValueError(
            f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, got {kind!r}"
        )
    options: dict[str, Any] = {
        "base_url": base_url,
        "headers": headers,
        "request_timeout": request_timeout,
        "max_connections": max_connections,
        "max_body": max_body,
        "secret_headers": tuple(secret_headers),
    }
    # A session (or a subclass) can only exist once aiohttp is imported: no import here.
    aiohttp = sys.modules.get("aiohttp")
    is_session = (
        client is not None and aiohttp is not None and isinstance(client, aiohttp.ClientSession)
    )
    if client is None and kind == "auto":
        return _Auto(options)
    if is_session or (client is None and kind == "aiohttp"):
        try:
            from ._aiohttp import AiohttpTransport
        except ImportError as exc:
            if exc.name != "aiohttp":
                raise
            raise ImportError(
                "transport='aiohttp' needs aiohttp, part of asyncpoll's install: "
                "pip install aiohttp"
            ) from None

        def fallback() -> Transport:
            """httpx's own transport, for a poller opened on trio (say): aiohttp runs on
            asyncio only."""
            from ._http import HttpxTransport

            logger.warning(
                "transport='aiohttp' runs on asyncio only; using httpx's own transport on %s",
                sniffio.current_async_library(),
            )
            return HttpxTransport(**options).open()

        return AiohttpTransport(session=client, fallback=fallback, **options)
    from ._http import HttpxTransport

    # A caller's client is named "httpx" whatever its transport (it is used as it is).
    made_here = client is None and kind == "httpx-aiohttp"
    return HttpxTransport(client=client, kind="httpx-aiohttp" if made_here else "httpx", **options)


def respx_mocking() -> bool:
    """True while a respx mock (``respx.mock``, a started ``respx.Router``...) patches
    httpx: requests a poller sent on aiohttp would miss it and reach the network."""
    if "respx" not in sys.modules:
        return False
    try:
        from respx.mocks import Mocker

        return any(mocker.routers for mocker in Mocker.registry.values())
    except Exception:  # a respx whose internals differ: assume no mock
        return False


#: Where httpx's and httpcore's own request entry points live; a test double patched over
#: one (pytest-httpx's ``httpx_mock``, respx, a monkeypatch) comes from elsewhere.
_ENTRY_POINTS = (
    ("httpx", "AsyncHTTPTransport", "handle_async_request", "httpx."),
    ("httpcore", "AsyncConnectionPool", "handle_async_request", "httpcore."),
)


def httpx_mocked() -> bool:
    """True while something answers httpx's requests in process: a respx mock, or
    another test double patched over httpx's or httpcore's request entry point."""
    if respx_mocking():
        return True
    for module_name, class_name, method, home in _ENTRY_POINTS:
        module = sys.modules.get(module_name)
        function = getattr(getattr(module, class_name, None), method, None)
        if function is not None and not str(getattr(function, "__module__", "")).startswith(home):
            return True
    return False


class _Auto:
    """``transport="auto"`` before the poller opens: which client is fastest depends on
    the event loop, known only then. ``open()`` returns the transport picked."""

    __slots__ = ("_options",)

    def __init__(self, options: dict[str, Any]) -> None:
        self._options = options

    @property
    def kind(self) -> str:
        return "auto"

    def open(self) -> Transport:
        library = sniffio.current_async_library()
        reason = f"aiohttp does not run on {library}"
        if library == "asyncio":
            reason = "a test double answers httpx's requests (respx, pytest-httpx...)"
            if not httpx_mocked():
                try:
                    from ._aiohttp import AiohttpTransport
                except ImportError as exc:
                    reason = f"aiohttp cannot be imported ({exc})"
                    if exc.name != "aiohttp":  # installed but broken: say so
                        logger.warning("transport='auto': %s; polling on httpx", reason)
                else:
                    return AiohttpTransport(**self._options).open()
        from ._http import HttpxTransport

        logger.debug("transport='auto': httpx's own transport, for %s", reason)
        return HttpxTransport(kind="httpx", **self._options).open()

    def absolute(self, url: str) -> str:
        # Both transports join a client they make with the base URL this way.
        return join_base(self._options["base_url"] or "", url)

    async def get(self, url: str) -> Response:
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
        raise RuntimeError("transport='auto' picks its client when the poller opens")

    async def aclose(self) -> None:
        return None
