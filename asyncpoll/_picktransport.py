"""The one module that picks a transport: ``make_transport``, from a poller's arguments.

It imports the transport modules (``_http``, and ``_aiohttp`` only when aiohttp is
picked or given), and none of them imports it, nor each other at import time: the engine
sees ``_transport.Transport`` only.

The default, ``transport="auto"``, is the fastest safe client for the event loop the
poller opens on, picked when it opens: on asyncio the native aiohttp path (several times
the polls per CPU second of httpx's own transport, every rule of the engine kept: each
request sent once, counted by the rate limiter); anywhere else (trio) httpx's own
transport. Two cases keep httpx on asyncio too: aiohttp not installed (a base install
has it; an install without dependencies may not), and a respx mock running, which
answers httpx requests only (a test's mocked API stays mocked).
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
                "transport='aiohttp' needs the aiohttp extra: pip install 'asyncpoll[aiohttp]'"
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

    return HttpxTransport(
        client=client, kind="httpx-aiohttp" if kind == "httpx-aiohttp" else "httpx", **options
    )


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
            reason = "a respx mock is running (it answers httpx requests only)"
            if not respx_mocking():
                try:
                    from ._aiohttp import AiohttpTransport
                except ImportError as exc:
                    reason = f"aiohttp cannot be imported ({exc})"
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
