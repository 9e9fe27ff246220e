"""A transport-neutral HTTP response: what readers see, whatever client fetched it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from ._redact import printable

__all__ = ["Response", "clip", "excerpt"]


def _lower_keys(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON holds {name}, which is not a number JSON allows")


_UNPARSED: Any = object()

#: One decoder for every body (``json.loads`` with an option builds a new one per call).
_DECODER = json.JSONDecoder(parse_constant=_reject_constant)


@attrs.frozen
class Response:
    """One HTTP response, fully read.

    Attributes:
        status_code: the HTTP status code.
        headers: the headers, names in lower case (repeated headers joined by ", ").
        content: the body as bytes, already decoded from any transfer encoding.
        url: the URL that was requested, credentials redacted (for display).
        request_url: the same URL as sent, unredacted, for resolving relative links.
    """

    status_code: int
    headers: Mapping[str, str] = attrs.field(converter=_lower_keys, factory=dict, repr=False)
    content: bytes = attrs.field(default=b"", repr=False)
    url: str = ""
    request_url: str = attrs.field(default="", repr=False)
    # The parsed body, once json() has run: the reader and the engine's checks share it.
    _parsed: Any = attrs.field(init=False, default=_UNPARSED, repr=False, eq=False)

    @classmethod
    def _trusted(
        cls, status_code: int, headers: dict[str, str], content: bytes, url: str, request_url: str
    ) -> Response:
        """A response from a transport whose header names are already in lower case:
        the per-poll path, without the converter's copy."""
        self = object.__new__(cls)
        setattr_ = object.__setattr__
        setattr_(self, "status_code", status_code)
        setattr_(self, "headers", headers)
        setattr_(self, "content", content)
        setattr_(self, "url", url)
        setattr_(self, "request_url", request_url)
        setattr_(self, "_parsed", _UNPARSED)
        return self

    @property
    def text(self) -> str:
        """The body decoded as UTF-8 (undecodable bytes replaced)."""
        return self.content.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """Parse the body as JSON.

        Raises:
            ValueError: the body is not JSON (the message quotes a short excerpt), it
                holds NaN or Infinity, or it is nested too deeply to parse.
        """
        parsed = self._parsed
        if parsed is not _UNPARSED:
            return parsed
        content = self.content
        try:
            parsed = _DECODER.decode(content.decode(json.detect_encoding(content), "surrogatepass"))
        except RecursionError:
            raise ValueError(
                f"response JSON is nested too deeply to read; received {excerpt(self.content)}"
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"response body is not JSON ({exc}); received {excerpt(self.content)}"
            ) from exc
        object.__setattr__(self, "_parsed", parsed)
        return parsed


def clip(text: str, limit: int = 1000) -> str:
    """A server's ``text`` for a message: cut to about ``limit`` characters, keeping its
    beginning and its end, control characters escaped (``printable``).

    The end is what a traceback's reader needs (its last line names the exception), so
    it keeps the larger share; the middle is replaced by a note of how much was left out.
    The result is one line: a line break the server sent shows as ``\\n``, so that its
    text cannot start a line of its own in a log. Trailing white space (the line break
    ending a traceback) is left out.
    """
    text = text.rstrip()
    if len(text) <= limit:
        return printable(text)
    head = limit * 2 // 5
    tail = limit - head
    return (
        f"{printable(text[:head])} [... {len(text) - head - tail} characters left out ...] "
        f"{printable(text[-tail:])}"
    )


def excerpt(content: bytes | str, limit: int = 200) -> str:
    """A short, quoted excerpt of a body for an error message: its beginning and its end."""
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    if not text:
        return "an empty body"
    if len(text) > limit:
        head = limit * 2 // 5
        tail = limit - head
        return f"{text[:head]!r} ... {text[-tail:]!r} ({len(text)} characters)"
    return repr(text)
