"""Tests for ``asyncpoll._urls``: the safety rules for URLs a server hands the poller.

A server-supplied URL is resolved against the URL it came from and must be http(s),
carry no user:password and share that URL's origin, unless its origin is allowed.
"""

from __future__ import annotations

import re

import pytest

from asyncpoll import PollError
from asyncpoll._urls import (
    check_server_url,
    fill_template,
    join_base,
    normalize_origins,
    origin_of,
    same_origin,
)

BASE = "https://api.test/v1/jobs/42"


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


def _other_origin(shown: str, origin: str, base: str = BASE, what: str = "a URL") -> str:
    """The message ``check_server_url`` gives for a URL of an origin it does not trust."""
    return (
        f"refusing {what} {shown!r}: its origin {origin} differs from {base!r}; "
        "list it in allowed_origins= to trust it"
    )


# --- origin_of and same_origin -------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://api.test/v1/jobs/42", ("https", "api.test", 443)),
        ("http://api.test/", ("http", "api.test", 80)),
        ("HTTPS://API.Test/x", ("https", "api.test", 443)),
        ("http://api.test:8080/x", ("http", "api.test", 8080)),
        ("https://api.test:443/x", ("https", "api.test", 443)),
        ("http://api.test:80", ("http", "api.test", 80)),
        ("https://user:pw@api.test/x", ("https", "api.test", 443)),
        ("https://[::1]:8443/x", ("https", "::1", 8443)),
        ("ftp://files.test/a", ("ftp", "files.test", 0)),
        ("/relative/path", ("", "", 0)),
    ],
)
def test_origin_of(url: str, origin: tuple[str, str, int]) -> None:
    """origin_of gives (scheme, host, port) in lower case, filling in http's and https's ports."""
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("https://api.test/a", "https://api.test/b?x=1", True),
        ("https://api.test/a", "https://API.TEST:443/b", True),
        ("http://api.test/a", "http://api.test:80/b", True),
        ("https://api.test/a", "http://api.test/a", False),
        ("https://api.test/a", "https://api.test:8443/a", False),
        ("https://api.test/a", "https://cdn.api.test/a", False),
        ("http://api.test:80/a", "http://api.test:8080/a", False),
    ],
)
def test_same_origin(a: str, b: str, same: bool) -> None:
    """same_origin compares scheme, host and port, with default ports made explicit."""
    assert same_origin(a, b) is same
    assert same_origin(b, a) is same


# --- check_server_url: what is accepted ----------------------------------------------


@pytest.mark.parametrize(
    ("url", "absolute"),
    [
        ("/v1/jobs/43", "https://api.test/v1/jobs/43"),
        ("43", "https://api.test/v1/jobs/43"),
        ("status/7", "https://api.test/v1/jobs/status/7"),
        ("../ops/9", "https://api.test/v1/ops/9"),
        ("?page=2", "https://api.test/v1/jobs/42?page=2"),
        ("  /v1/jobs/43\n", "https://api.test/v1/jobs/43"),
    ],
)
def test_relative_url_is_resolved_against_the_base(url: str, absolute: str) -> None:
    """A relative URL is resolved against the base (surrounding whitespace dropped)."""
    assert check_server_url(url, base=BASE) == absolute


@pytest.mark.parametrize(
    ("url", "absolute"),
    [
        ("https://api.test/v1/jobs/43", "https://api.test/v1/jobs/43"),
        ("https://api.test/other/path?page=2#top", "https://api.test/other/path?page=2#top"),
        ("https://api.test:443/v1/jobs/43", "https://api.test:443/v1/jobs/43"),
        ("HTTPS://API.TEST/v1/jobs/43", "https://API.TEST/v1/jobs/43"),
    ],
)
def test_same_origin_absolute_url_is_accepted(url: str, absolute: str) -> None:
    """An absolute URL of the base's origin is accepted as given (the scheme in lower case)."""
    assert check_server_url(url, base=BASE) == absolute


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("http://api.test:80/jobs/1", "http://api.test/jobs"),
        ("http://api.test/jobs/1", "http://api.test:80/jobs"),
        ("https://api.test:443/jobs/1", "https://api.test/jobs"),
        ("https://api.test/jobs/1", "https://api.test:443/jobs"),
        ("http://api.test:8080/jobs/1", "http://api.test:8080/jobs"),
    ],
)
def test_default_port_equals_explicit_port(url: str, base: str) -> None:
    """http's port 80 and https's 443 are the same origin written out or left implicit."""
    assert check_server_url(url, base=base) == url


def test_allowed_origins_are_accepted() -> None:
    """A URL whose origin the user listed is accepted, on the listed port only."""
    allowed = normalize_origins(["https://cdn.test", "http://files.test:8080"])
    for url in (
        "https://cdn.test/results/1.json",
        "https://CDN.test:443/results/1.json",
        "http://files.test:8080/out.zip",
    ):
        assert check_server_url(url, base=BASE, allowed=allowed) == url
    with pytest.raises(PollError) as caught:
        check_server_url("https://cdn.test:8443/results/1.json", base=BASE, allowed=allowed)
    assert str(caught.value) == _other_origin(
        "https://cdn.test:8443/results/1.json", "https://cdn.test:8443"
    )
    with pytest.raises(PollError) as caught:
        check_server_url("http://cdn.test/results/1.json", base=BASE, allowed=allowed)
    assert str(caught.value) == _other_origin(
        "http://cdn.test/results/1.json", "http://cdn.test:80"
    )


# --- check_server_url: what is refused -----------------------------------------------


@pytest.mark.parametrize(
    ("url", "shown", "origin"),
    [
        ("https://evil.test/v1/jobs/43", "https://evil.test/v1/jobs/43", "https://evil.test:443"),
        ("//evil.test/v1/jobs/43", "https://evil.test/v1/jobs/43", "https://evil.test:443"),
        ("http://api.test/v1/jobs/43", "http://api.test/v1/jobs/43", "http://api.test:80"),
        ("https://api.test:8443/x", "https://api.test:8443/x", "https://api.test:8443"),
        (
            "https://api.test.evil.test/",
            "https://api.test.evil.test/",
            "https://api.test.evil.test:443",
        ),
        ("https://evil.test:443/x", "https://evil.test:443/x", "https://evil.test:443"),
    ],
)
def test_other_origin_is_refused(url: str, shown: str, origin: str) -> None:
    """Another host, port or scheme is refused; the message names the URL and allowed_origins."""
    with pytest.raises(PollError, match=_exactly(_other_origin(shown, origin))) as caught:
        check_server_url(url, base=BASE)
    assert caught.value.job_id is None
    assert caught.value.http_status is None


def test_refusal_names_where_the_url_came_from() -> None:
    """``what=`` says where the refused URL came from."""
    message = _other_origin(
        "https://evil.test/x", "https://evil.test:443", what="the Location header"
    )
    with pytest.raises(PollError, match=_exactly(message)):
        check_server_url("https://evil.test/x", base=BASE, what="the Location header")


def test_refusal_redacts_tokens_in_the_url_and_the_base() -> None:
    """Credentials in the query of the refused URL and of the base never reach the message."""
    base = "https://api.test/v1/jobs/42?api_key=k3y-base"
    with pytest.raises(PollError) as caught:
        check_server_url(
            "https://evil.test/jobs/1?access_token=s3cret&page=2&X-Amz-Signature=abc123",
            base=base,
        )
    message = str(caught.value)
    assert message == _other_origin(
        "https://evil.test/jobs/1?access_token=[redacted]&page=2&X-Amz-Signature=[redacted]",
        "https://evil.test:443",
        base="https://api.test/v1/jobs/42?api_key=[redacted]",
    )
    for secret in ("s3cret", "abc123", "k3y-base"):
        assert secret not in message


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("ftp://api.test/v1/jobs/43", "ftp://api.test/v1/jobs/43"),
        ("javascript:alert(1)", "javascript:alert(1)"),
        ("JavaScript:alert(document.cookie)", "JavaScript:alert(document.cookie)"),
        ("data:text/html,<script>alert(1)</script>", "data:text/html,<script>alert(1)</script>"),
        ("file:///etc/passwd", "file:///etc/passwd"),
        ("ws://api.test/v1/jobs/43", "ws://api.test/v1/jobs/43"),
        ("ftp://api.test/x?token=s3cret", "ftp://api.test/x?token=[redacted]"),
    ],
)
def test_non_http_schemes_are_refused(url: str, shown: str) -> None:
    """Only http and https URLs are followed, whatever the allowed origins."""
    message = f"refusing a URL {shown!r}: only http and https URLs are followed"
    allowed = normalize_origins(["https://api.test"])
    with pytest.raises(PollError, match=_exactly(message)):
        check_server_url(url, base=BASE, allowed=allowed)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:hunter2@api.test/v1/jobs/43", "https://user:[redacted]@api.test/v1/jobs/43"),
        ("https://hunter2@api.test/v1/jobs/43", "https://[redacted]@api.test/v1/jobs/43"),
        ("https://:hunter2@api.test/v1/jobs/43", "https://:[redacted]@api.test/v1/jobs/43"),
        ("//user:hunter2@api.test/v1/jobs/43", "https://user:[redacted]@api.test/v1/jobs/43"),
        ("https://user:hunter2@cdn.test/out", "https://user:[redacted]@cdn.test/out"),
    ],
)
def test_user_credentials_are_refused(url: str, shown: str) -> None:
    """A URL carrying user:password is refused, even on an allowed origin, password redacted."""
    message = f"refusing a URL {shown!r}: it carries user credentials"
    allowed = normalize_origins(["https://cdn.test"])
    with pytest.raises(PollError, match=_exactly(message)) as caught:
        check_server_url(url, base=BASE, allowed=allowed)
    assert "hunter2" not in str(caught.value)


def test_url_without_a_host_is_refused() -> None:
    """An absolute http URL that names no host is refused."""
    message = "refusing a URL 'http:///v1/jobs/43': it names no host"
    with pytest.raises(PollError, match=_exactly(message)):
        check_server_url("http:///v1/jobs/43", base=BASE)


# --- normalize_origins ---------------------------------------------------------------


def test_normalize_origins() -> None:
    """Entries become (scheme, host, port) triples in lower case, default ports filled in."""
    assert normalize_origins(
        ["https://cdn.test", "HTTP://Files.Test:8080", "https://cdn.test:443/", "http://x.test"]
    ) == frozenset(
        {("https", "cdn.test", 443), ("http", "files.test", 8080), ("http", "x.test", 80)}
    )
    assert normalize_origins([]) == frozenset()
    assert normalize_origins(iter(["https://cdn.test"])) == frozenset({("https", "cdn.test", 443)})


@pytest.mark.parametrize(
    "entry",
    ["cdn.test", "cdn.test:443", "//cdn.test", "ftp://cdn.test", "ws://cdn.test", "https://", ""],
)
def test_bad_allowed_origin_raises_value_error(entry: str) -> None:
    """An entry that is not an http(s) origin with a host is refused, quoted in the message."""
    message = f"allowed_origins entries must look like 'https://host[:port]', got {entry!r}"
    with pytest.raises(ValueError, match=_exactly(message)):
        normalize_origins(["https://ok.test", entry])


@pytest.mark.parametrize("entry", ["https://cdn.test:84x3", "https://cdn.test:99999"])
def test_allowed_origin_with_an_unreadable_port_is_refused(entry: str) -> None:
    """An entry whose port is no port is refused, not silently taken as the default port."""
    message = f"allowed_origins entries must look like 'https://host[:port]', got {entry!r}"
    with pytest.raises(ValueError, match=_exactly(message)):
        normalize_origins([entry])


@pytest.mark.parametrize(
    ("base", "url", "joined"),
    [
        ("https://h.test/v1", "/jobs/7", "https://h.test/v1/jobs/7"),
        ("https://h.test/v1/", "jobs/7", "https://h.test/v1/jobs/7"),
        ("https://h.test", "/jobs/7", "https://h.test/jobs/7"),
        ("https://h.test/v1?key=1", "/jobs/7", "https://h.test/v1/jobs/7"),
        ("https://h.test/v1", "https://other.test/x", "https://other.test/x"),
        ("", "/jobs/7", "/jobs/7"),
    ],
)
def test_join_base_appends_to_the_base_path(base: str, url: str, joined: str) -> None:
    """Relative URLs extend base_url's path; absolute ones are left alone."""
    assert join_base(base, url) == joined


# --------------------------------------------------------------- exact edges of the rules


@pytest.mark.parametrize("url", ["http://other.test/x", "https://other.test/x"])
def test_join_base_keeps_an_absolute_url_of_either_scheme(url: str) -> None:
    assert join_base("https://api.test/v1", url) == url


@pytest.mark.parametrize(
    ("base", "joined"),
    [
        ("https://api.test/v1#top", "https://api.test/v1/jobs/7"),
        ("https://api.test/v1?a=1?b=2", "https://api.test/v1/jobs/7"),
        ("https://api.test/v1?a=1#top", "https://api.test/v1/jobs/7"),
    ],
)
def test_join_base_drops_the_base_s_query_and_fragment(base: str, joined: str) -> None:
    assert join_base(base, "/jobs/7") == joined


def test_join_base_strips_only_leading_slashes() -> None:
    assert join_base("https://api.test/v1", "//XY/jobs") == "https://api.test/v1/XY/jobs"


def test_same_origin_is_false_for_a_bad_port() -> None:
    assert same_origin("https://api.test:99999/", "https://api.test:99999/") is False


@pytest.mark.parametrize(
    "origin",
    [
        "https://cdn.test?x=1",
        "https://cdn.test#f",
        "https://cdn.test/path",
        "https://user@cdn.test",
    ],
)
def test_an_allowed_origin_with_anything_but_scheme_host_port_is_refused(origin: str) -> None:
    message = f"allowed_origins entries must look like 'https://host[:port]', got {origin!r}"
    with pytest.raises(ValueError, match=_exactly(message)):
        normalize_origins([origin])


def test_an_unparsable_url_is_refused_by_name() -> None:
    with pytest.raises(PollError, match=_exactly("refusing a URL 'http://[::1': not a valid URL")):
        check_server_url("http://[::1", base=BASE)


def test_a_url_with_a_bad_port_is_refused_by_name() -> None:
    message = "refusing the Location 'https://api.test:99999/x': its port is not valid"
    with pytest.raises(PollError, match=_exactly(message)):
        check_server_url("https://api.test:99999/x", base=BASE, what="the Location")


# --- fill_template -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("job_id", "filled"),
    [
        ("42", "/v1/jobs/42/status"),
        ("a b/c?d#e", "/v1/jobs/a%20b%2Fc%3Fd%23e/status"),
        ("x/../y", "/v1/jobs/x%2F..%2Fy/status"),
        ("...", "/v1/jobs/.../status"),
        (".a", "/v1/jobs/.a/status"),
        ("caf\u00e9~_-.", "/v1/jobs/caf%C3%A9~_-./status"),
    ],
)
def test_fill_template_quotes_the_id_as_one_path_segment(job_id: str, filled: str) -> None:
    """Every character that could end the segment (a slash too) is percent-encoded;
    unreserved characters stay as they are."""
    assert fill_template("/v1/jobs/{job_id}/status", job_id) == filled


@pytest.mark.parametrize("job_id", [".", ".."])
def test_fill_template_refuses_an_id_that_is_a_path_step(job_id: str) -> None:
    message = (
        f"job id {job_id!r} cannot fill a URL template: a URL reads it as a step up its "
        "path, not as a name"
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        fill_template("/v1/jobs/{job_id}/status", job_id)
