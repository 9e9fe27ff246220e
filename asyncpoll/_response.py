"""A transport-neutral HTTP response: what readers see, whatever client fetched it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Response", "excerpt"]


def _lower_keys(headers: Mapping[str, str]) -> Mapping[str, str]:
    return {key.lower(): value for key, value in headers.items()}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"JSON holds {name}, which is not a number JSON allows")


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
        try:
            return json.loads(self.content, parse_constant=_reject_constant)
        except RecursionError:
            raise ValueError(
                f"response JSON is nested too deeply to read; received {excerpt(self.content)}"
            ) from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"response body is not JSON ({exc}); received {excerpt(self.content)}"
            ) from exc


def excerpt(content: bytes | str, limit: int = 200) -> str:
    """A short, quoted excerpt of a body for an error message."""
    text = content.decode("utf-8", errors="replace") if isinstance(content, bytes) else content
    if not text:
        return "an empty body"
    if len(text) > limit:
        return repr(text[:limit]) + f" ... ({len(text)} characters)"
    return repr(text)
