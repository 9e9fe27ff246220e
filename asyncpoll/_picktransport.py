"""The one module that picks a transport: ``make_transport``, from a poller's arguments.

It imports the transport modules (``_http``, and ``_aiohttp`` only when aiohttp is asked
for or given), and none of them imports it, nor each other at import time: the engine
sees ``_transport.Transport`` only.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Mapping
from typing import Any

import sniffio

from ._transport import Transport

logger = logging.getLogger("asyncpoll")

__all__ = ["TRANSPORTS", "make_transport"]

#: The transports a poller can make its own client with.
TRANSPORTS = ("httpx", "httpx-aiohttp", "aiohttp")


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
    picks the client the poller makes and closes; a native aiohttp transport opened on
    an event loop other than asyncio falls back to httpx's own transport.
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

    return HttpxTransport(client=client, kind="httpx" if kind == "aiohttp" else kind, **options)
