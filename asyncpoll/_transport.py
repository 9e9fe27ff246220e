"""The HTTP seam: what the engine needs of an HTTP client, whichever one it is.

The engine sees one narrow interface, ``Transport``: ``await transport.request(...)``
returns a transport-neutral ``Response`` or raises ``TransportFailure``. Each client
library lives behind its own module (``_http`` for httpx, ``_aiohttp`` for aiohttp), the
only modules that import it; ``_picktransport.make_transport`` picks one from the
poller's arguments. This module imports neither.

Bodies are read the same way by every transport: capped on decoded bytes, with gzip and
deflate inflated here, never more than the cap allows at a time.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Mapping
from typing import Any, Protocol

from ._redact import printable, redact_url
from ._response import Response

__all__ = [
    "ACCEPT_ENCODING",
    "DEFAULT_MAX_BODY",
    "Transport",
    "TransportFailure",
    "read_capped",
    "too_large",
]

#: Largest status body read, in decoded bytes; a larger one is refused, not buffered.
DEFAULT_MAX_BODY = 1024 * 1024
#: The encodings asked for: the ones ``read_capped`` inflates under the size cap.
ACCEPT_ENCODING = "gzip, deflate"
#: Compressions refused when a server sends them unasked; any other unknown token (a
#: misconfigured "UTF-8", say) is read as identity, as httpx does.
UNDECODED = frozenset({"br", "zstd", "compress", "x-compress"})


class TransportFailure(Exception):
    """A request got no usable response.

    The message has its control characters escaped: it may quote an HTTP library's
    error, which may quote what the server sent.

    Attributes:
        transient: True when trying again may help (connection refused, reset, timed
            out); False when it cannot (an unsupported scheme, an invalid URL, a body
            over the size cap).
    """

    def __init__(self, message: str, *, transient: bool) -> None:
        super().__init__(printable(message))
        self.transient = transient


class Transport(Protocol):
    """One request in, one fully read ``Response`` out."""

    def open(self) -> Transport:
        """Prepare for requests, in the running event loop; returns the transport to use
        (itself, or a fallback where its client cannot run on this event loop)."""
        ...

    async def get(self, url: str) -> Response:
        """GET ``url`` with credentials: ``request("GET", url)``."""
        ...

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
        """Send one request and read its body; ``credentials=False`` (another origin)
        sends none of the credential headers nor any of the client's own defaults."""
        ...

    def absolute(self, url: str) -> str:
        """``url`` made absolute against the client's base URL."""
        ...

    async def aclose(self) -> None:
        """Release connections the transport owns."""
        ...


def too_large(method: str, url: str, cap: int) -> TransportFailure:
    return TransportFailure(
        f"the response to {method} {redact_url(url)} is larger than {cap} bytes "
        "(decoded); refusing to read more",
        transient=False,
    )


async def read_capped(
    raw: AsyncIterator[bytes], encoding: str, cap: int, method: str, url: str
) -> bytes:
    """The decoded body whose raw bytes ``raw`` yields, refused once past ``cap`` bytes.

    ``encoding`` is the response's Content-Encoding, lower case: "" or "identity", or
    "gzip" / "x-gzip" / "deflate", inflated here a bounded piece at a time, so a small
    compressed body cannot balloon in memory. The caller closes ``raw``.
    """
    inflater = None
    if encoding in ("gzip", "x-gzip"):
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif encoding == "deflate":
        inflater = zlib.decompressobj()
    elif encoding in UNDECODED:
        raise TransportFailure(
            f"the response to {method} {redact_url(url)} has Content-Encoding {encoding!r}, "
            f"which was not asked for (Accept-Encoding: {ACCEPT_ENCODING})",
            transient=False,
        )
    chunks: list[bytes] = []
    size = 0
    if inflater is None:
        async for chunk in raw:
            size += len(chunk)
            if size > cap:
                raise too_large(method, url, cap)
            chunks.append(chunk)
        return b"".join(chunks)
    try:
        async for data in raw:
            while data:
                out = inflater.decompress(data, cap - size + 1)
                size += len(out)
                if size > cap:
                    raise too_large(method, url, cap)
                chunks.append(out)
                data = inflater.unconsumed_tail
        out = inflater.flush()
    except zlib.error as exc:
        raise TransportFailure(
            f"the {encoding} body of {method} {redact_url(url)} is corrupt: {exc}",
            transient=True,
        ) from exc
    if size + len(out) > cap:
        raise too_large(method, url, cap)
    chunks.append(out)
    return b"".join(chunks)
