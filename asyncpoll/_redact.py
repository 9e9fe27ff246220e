"""Redaction of credentials in URLs and headers, for logs, reprs and error messages."""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = ["SECRET_HEADERS", "redact_headers", "redact_url"]

REDACTED = "[redacted]"

#: Header names (lower case) whose values are credentials.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"}
)

# Query parameter names that carry credentials (matched case-insensitively, whole name
# or as a suffix after "_" or "-": "access_token", "x-amz-signature").
_SECRET_PARAM = re.compile(
    r"(?:^|[_-])(token|key|apikey|sig|signature|secret|password|passwd|auth|credential)s?$",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """``url`` with any password and credential-bearing query values replaced."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    query = parts.query
    if query:
        # Rewrite only the secret values, keeping every other byte as it was sent.
        pieces = []
        for piece in query.split("&"):
            name, sep, _ = piece.partition("=")
            if sep and _SECRET_PARAM.search(unquote_plus(name)):
                piece = f"{name}={REDACTED}"
            pieces.append(piece)
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_headers(
    headers: Mapping[str, str], secret: frozenset[str] = SECRET_HEADERS
) -> dict[str, str]:
    """A copy of ``headers`` with the values of credential headers replaced."""
    return {k: (REDACTED if k.lower() in secret else v) for k, v in headers.items()}
