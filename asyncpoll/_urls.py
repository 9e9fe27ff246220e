"""Safety rules for URLs a server hands us (Location, Operation-Location, body links).

Pure functions of strings. A server-supplied URL is resolved against the URL it came
from and must then be http(s), carry no user:password, and have the same origin
(scheme, host, port) as that URL, unless its origin is one the user allowed.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import quote, urljoin, urlsplit

from ._errors import PollError
from ._redact import quote_url

__all__ = [
    "check_server_url",
    "fill_template",
    "join_base",
    "normalize_origins",
    "origin_of",
    "same_origin",
]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> tuple[str, str, int]:
    """``(scheme, host, port)`` of an absolute URL, lower case, default ports filled in.

    Raises:
        ValueError: the port is not a number from 0 to 65535.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port  # raises ValueError for a bad port
    return scheme, host, port if port is not None else _DEFAULT_PORTS.get(scheme, 0)


def join_base(base: str, url: str) -> str:
    """``url`` made absolute against a client's ``base_url``, the way httpx's client does.

    An absolute ``url`` is returned as it is. A relative one is appended to the base's
    path (``https://h/v1`` + ``/jobs/7`` is ``https://h/v1/jobs/7``), not resolved as a
    browser would (which would drop ``/v1``): ``base_url`` names where the API lives.
    """
    if not base or url.startswith(("http://", "https://")):
        return url
    if "?" in base or "#" in base:
        base = base.partition("#")[0].partition("?")[0]
    if not base.endswith("/"):
        base += "/"
    return base + url.lstrip("/")


#: Job ids a URL would read as a step in its path, not as a name.
DOT_SEGMENTS = frozenset({".", ".."})


def fill_template(template: str, job_id: str) -> str:
    """``template`` with ``{job_id}`` filled in, percent-encoded as one path segment.

    ``"a b/c"`` becomes ``a%20b%2Fc``: an id cannot add a path step. Nor can it be one:
    every HTTP client resolves ``/v1/jobs/../status`` to ``/v1/status`` (and aiohttp
    decodes ``%2E%2E`` first), so ``"."`` and ``".."`` are refused.

    Raises:
        ValueError: ``job_id`` is ``"."`` or ``".."``.
    """
    if job_id in DOT_SEGMENTS:
        raise ValueError(
            f"job id {job_id!r} cannot fill a URL template: a URL reads it as a step "
            "up its path, not as a name"
        )
    return template.format(job_id=quote(job_id, safe=""))


def same_origin(a: str, b: str) -> bool:
    """True when two absolute URLs share scheme, host and port (False if either is bad)."""
    try:
        return origin_of(a) == origin_of(b)
    except ValueError:
        return False


def normalize_origins(origins: Iterable[str]) -> frozenset[tuple[str, str, int]]:
    """Parse ``allowed_origins=`` entries such as ``"https://cdn.example.com"``.

    Raises:
        ValueError: an entry is not an http(s) origin.
    """
    parsed = set()
    for origin in origins:
        try:
            scheme, host, port = origin_of(origin)
        except ValueError:
            scheme = host = ""
        parts = urlsplit(origin)
        if (
            scheme not in _DEFAULT_PORTS
            or not host
            or parts.username is not None
            or parts.path not in ("", "/")
            or parts.query
            or parts.fragment
        ):
            raise ValueError(
                f"allowed_origins entries must look like 'https://host[:port]', got {origin!r}"
            )
        parsed.add((scheme, host, port))
    return frozenset(parsed)


def check_server_url(
    url: str,
    *,
    base: str,
    allowed: frozenset[tuple[str, str, int]] = frozenset(),
    what: str = "a URL",
) -> str:
    """Resolve a server-supplied ``url`` against ``base`` and check that it is safe.

    Args:
        url: the URL as the server sent it (absolute or relative).
        base: the absolute URL of the response that carried it.
        allowed: extra origins the user trusts (``normalize_origins``).
        what: where the URL came from, for the error message.

    Returns:
        The absolute URL.

    Raises:
        PollError: the URL is not http(s), carries credentials, or points to another
            origin that is not allowed.
    """
    try:
        absolute = urljoin(base, url.strip())
        parts = urlsplit(absolute)
        parts.hostname  # noqa: B018 -- parses the netloc, raising on a malformed one
    except ValueError:
        raise PollError(f"refusing {what} {quote_url(url)}: not a valid URL") from None
    shown = quote_url(absolute)
    if parts.scheme.lower() not in _DEFAULT_PORTS:
        raise PollError(f"refusing {what} {shown}: only http and https URLs are followed")
    if parts.username is not None or parts.password is not None:
        raise PollError(f"refusing {what} {shown}: it carries user credentials")
    if not parts.hostname:
        raise PollError(f"refusing {what} {shown}: it names no host")
    try:
        origin = origin_of(absolute)
    except ValueError:
        raise PollError(f"refusing {what} {shown}: its port is not valid") from None
    if not same_origin(absolute, base) and origin not in allowed:
        scheme, host, port = origin
        raise PollError(
            f"refusing {what} {shown}: its origin {scheme}://{host}:{port} differs from "
            f"{quote_url(base)}; list it in allowed_origins= to trust it"
        )
    return absolute
