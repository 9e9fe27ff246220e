"""What asyncpoll shows of URLs, headers and server text in logs, reprs and messages.

Credentials are redacted; control characters are escaped (``printable``), so that text a
server chose cannot forge a log line or send escape sequences to a terminal.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import unquote_plus, urlsplit, urlunsplit

__all__ = [
    "SECRET_HEADERS",
    "has_url_secrets",
    "printable",
    "quote_url",
    "redact_headers",
    "redact_url",
]

REDACTED = "[redacted]"

#: Header names (lower case) whose values are credentials.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "x-api-key", "api-key", "x-auth-token"}
)

_WORDS = "token|key|apikey|sig|signature|secret|password|passwd|auth|credential"
# Query parameter names that carry credentials: the whole name, or its last word after
# "_", "-" or a camelCase hump ("access_token", "X-Amz-Signature", "accessToken").
_SECRET_PARAM = re.compile(rf"(?:(?i:(?:^|[_-])(?:{_WORDS})s?)|[a-z0-9](?:{_WORDS.title()})s?)$")


def printable(text: str) -> str:
    """``text`` with every character that is not printable escaped as ``repr()`` does.

    Line breaks of every kind (``\\n``, ``\\r``, ``\\x85``, ``\\u2028``, ``\\u2029``), the
    other C0 and C1 controls, ``\\x7f``, the escape that starts a terminal sequence
    (``\\x1b``), bidirectional overrides and lone surrogates come out as ``\\n``,
    ``\\x1b``, ``\\u202e``...; everything else, quotes and backslashes included, is kept, so
    the common case (nothing to escape) is the text itself and escaping twice changes
    nothing. For server-chosen text in a log line, a message, a repr or the CLI's output.
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)


def _escaped(ch: str) -> str:
    return repr(ch)[1:-1]


def redact_url(url: str) -> str:
    """``url`` for display: any password and credential-bearing query values replaced,
    control characters escaped (``printable``)."""
    return printable(_redacted(url))


def quote_url(url: str) -> str:
    """``url`` redacted as ``redact_url`` does, in quotes, escaped as ``repr()`` escapes."""
    return repr(_redacted(url))


def has_url_secrets(url: str) -> bool:
    """True when ``redact_url`` would hide something in ``url`` (user info, a secret)."""
    return _redacted(url) != url


def _redacted(url: str) -> str:
    if "@" not in url and "?" not in url and "#" not in url:
        return url  # nothing to redact: the common case, without parsing
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:{REDACTED}@{host}" if ":" in userinfo else f"{REDACTED}@{host}"
    query = _redact_pairs(parts.query) if parts.query else ""
    fragment = parts.fragment
    if "=" in fragment:  # OAuth implicit grants put tokens in the fragment
        fragment = _redact_pairs(fragment)
    if netloc == parts.netloc and query == parts.query and fragment == parts.fragment:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_pairs(text: str) -> str:
    """Replace the values of secret ``name=value`` pairs, keeping every other byte."""
    pieces = []
    for piece in text.split("&"):
        name, sep, _ = piece.partition("=")
        if sep and _SECRET_PARAM.search(unquote_plus(name)):
            piece = f"{name}={REDACTED}"
        pieces.append(piece)
    return "&".join(pieces)


def redact_headers(
    headers: Mapping[str, str], secret: frozenset[str] = SECRET_HEADERS
) -> dict[str, str]:
    """A copy of ``headers`` with the values of credential headers replaced."""
    return {k: (REDACTED if k.lower() in secret else v) for k, v in headers.items()}
