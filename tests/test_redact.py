"""Tests for ``asyncpoll._redact``: credentials hidden in URLs and headers."""

from __future__ import annotations

import pytest

from asyncpoll._redact import REDACTED, SECRET_HEADERS, redact_headers, redact_url


def test_redacted_marker() -> None:
    """The marker that replaces a secret is the literal text '[redacted]'."""
    assert REDACTED == "[redacted]"


# --- userinfo ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "https://alice:s3cret@api.example.com/jobs/1",
            "https://alice:[redacted]@api.example.com/jobs/1",
        ),
        (
            "http://alice:s3cret@api.example.com:8443/jobs/1?page=2#top",
            "http://alice:[redacted]@api.example.com:8443/jobs/1?page=2#top",
        ),
        # An empty password still hides that a password field was there.
        ("https://alice:@h/x", "https://alice:[redacted]@h/x"),
        # An "@" inside the password: the host is what follows the last "@".
        ("https://alice:p@ss@h/x", "https://alice:[redacted]@h/x"),
        ("https://alice:p%40ss@h/x", "https://alice:[redacted]@h/x"),
        # A colon in the password does not leak the rest of it.
        ("https://alice:a:b:c@h/x", "https://alice:[redacted]@h/x"),
    ],
)
def test_password_in_url_is_redacted_and_user_kept(url: str, expected: str) -> None:
    """A URL's password is replaced by the marker while the user name and the rest stay."""
    assert redact_url(url) == expected


def test_lone_userinfo_is_treated_as_a_token() -> None:
    """Userinfo without a colon (a bare token) is replaced entirely."""
    assert (
        redact_url("https://ghp_abc123@api.example.com/x") == "https://[redacted]@api.example.com/x"
    )


# --- query parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "key",
        "sig",
        "api_key",
        "apikey",
        "access_token",
        "X-Amz-Signature",
        "x-amz-signature",
        "X-Amz-Credential",
        "X-Amz-Security-Token",
        "signature",
        "secret",
        "client_secret",
        "password",
        "passwd",
        "auth",
        "oauth_token",
        "refresh-token",
        "TOKEN",
        "Api_Key",
        "keys",
        "tokens",
    ],
)
def test_secret_query_value_is_redacted(name: str) -> None:
    """A credential-bearing query parameter keeps its name and loses its value."""
    url = f"https://h.example/jobs/1?{name}=abc123"
    assert redact_url(url) == f"https://h.example/jobs/1?{name}=[redacted]"


@pytest.mark.parametrize(
    "name",
    ["page", "monkey", "keyboard", "token_type", "signal", "design", "author", "sigma", "id"],
)
def test_non_secret_query_parameter_is_untouched(name: str) -> None:
    """A parameter whose name merely contains a secret word is not a secret."""
    url = f"https://h.example/jobs/1?{name}=abc123"
    assert redact_url(url) == url


def test_only_the_secret_values_change_among_several_parameters() -> None:
    """With mixed parameters only the secret ones are redacted, in their original order."""
    url = (
        "https://bucket.s3.amazonaws.com/out.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIA&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=deadbeef"
    )
    assert redact_url(url) == (
        "https://bucket.s3.amazonaws.com/out.json?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=[redacted]&X-Amz-Date=20240101T000000Z&X-Amz-Expires=3600"
        "&X-Amz-SignedHeaders=host&X-Amz-Signature=[redacted]"
    )


def test_repeated_secret_parameter_is_redacted_every_time() -> None:
    """Every occurrence of a repeated secret parameter is redacted."""
    assert redact_url("https://h/x?key=a&page=1&key=b") == (
        "https://h/x?key=[redacted]&page=1&key=[redacted]"
    )


def test_blank_and_encoded_secret_values_are_redacted() -> None:
    """An empty or percent-encoded secret value is replaced like any other."""
    assert redact_url("https://h/x?sig=&a=1") == "https://h/x?sig=[redacted]&a=1"
    assert redact_url("https://h/x?token=a%2Fb%3D%3D") == "https://h/x?token=[redacted]"


def test_percent_encoded_secret_name_is_recognised() -> None:
    """A percent-encoded secret name is still recognised; the name keeps its spelling."""
    assert redact_url("https://h/x?access%5Ftoken=abc") == "https://h/x?access%5Ftoken=[redacted]"
    assert redact_url("https://h/x?api%2Dkey=abc&n=1") == "https://h/x?api%2Dkey=[redacted]&n=1"


def test_secret_name_without_a_value_is_left_alone() -> None:
    """A bare secret name (no '=') has no value to hide, so the URL comes back unchanged."""
    url = "https://h/x?token&page=2"
    assert redact_url(url) is url


def test_empty_query_pieces_are_kept() -> None:
    """Stray '&' separators survive redaction exactly where they were."""
    assert redact_url("https://h/x?a=1&&token=x&") == "https://h/x?a=1&&token=[redacted]&"


def test_value_containing_equals_is_redacted_whole() -> None:
    """A secret value that itself contains '=' is replaced entirely."""
    assert redact_url("https://h/x?sig=a=b==&n=1") == "https://h/x?sig=[redacted]&n=1"


def test_password_and_query_secret_together() -> None:
    """A password and a secret parameter are both redacted; path and fragment are kept."""
    assert redact_url("https://u:p@h/a/b?token=t&n=1#frag") == (
        "https://u:[redacted]@h/a/b?token=[redacted]&n=1#frag"
    )


def test_other_parameters_keep_their_exact_spelling_when_a_secret_is_redacted() -> None:
    """Redacting one parameter leaves the others byte for byte as they were written."""
    url = "https://h/x?ids=1,2,3&q=a%20b&path=/a/b&flag&token=t"
    assert redact_url(url) == "https://h/x?ids=1,2,3&q=a%20b&path=/a/b&flag&token=[redacted]"


# --- URLs without secrets ------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/jobs/1",
        "https://api.example.com/jobs/1?page=2&per_page=50",
        "https://api.example.com:8443/v1/jobs/abc?ids=1,2&q=a%20b#frag",
        "",
        "/relative/path?x=1",
    ],
)
def test_url_without_secrets_is_returned_unchanged(url: str) -> None:
    """A URL with nothing to hide comes back as the very same string."""
    assert redact_url(url) is url


def test_url_with_userinfo_but_no_host_is_still_redacted() -> None:
    """Userinfo is hidden even when the host after it is empty."""
    assert redact_url("http://user@") == "http://[redacted]@"


def test_unparseable_url_is_not_echoed() -> None:
    """A URL urllib cannot split is replaced wholesale rather than echoed with its secrets."""
    assert redact_url("http://alice:pw@[::1/jobs?token=t") == "<unparseable URL>"


# --- headers -------------------------------------------------------------------------


def test_secret_headers_are_the_documented_set() -> None:
    """SECRET_HEADERS lists the lower-case names of the usual credential headers."""
    assert (
        frozenset(
            {
                "authorization",
                "proxy-authorization",
                "cookie",
                "x-api-key",
                "api-key",
                "x-auth-token",
            }
        )
        == SECRET_HEADERS
    )


def test_redact_headers_hides_credentials_case_insensitively() -> None:
    """Credential headers are redacted whatever their case; the rest and the names are kept."""
    headers = {
        "Authorization": "Bearer abc",
        "PROXY-AUTHORIZATION": "Basic xyz",
        "Cookie": "session=1",
        "X-Api-Key": "k",
        "api-key": "k2",
        "X-Auth-Token": "t",
        "Accept": "application/json",
        "User-Agent": "asyncpoll/0.1",
    }
    assert redact_headers(headers) == {
        "Authorization": "[redacted]",
        "PROXY-AUTHORIZATION": "[redacted]",
        "Cookie": "[redacted]",
        "X-Api-Key": "[redacted]",
        "api-key": "[redacted]",
        "X-Auth-Token": "[redacted]",
        "Accept": "application/json",
        "User-Agent": "asyncpoll/0.1",
    }


def test_redact_headers_returns_a_copy() -> None:
    """redact_headers leaves its argument unchanged and returns a new dict."""
    headers = {"Authorization": "Bearer abc"}
    result = redact_headers(headers)
    assert headers == {"Authorization": "Bearer abc"}
    assert result is not headers


def test_redact_headers_with_a_custom_secret_set() -> None:
    """A caller-supplied set of lower-case names replaces the default one."""
    headers = {"X-Custom-Sig": "s", "Authorization": "Bearer abc"}
    assert redact_headers(headers, frozenset({"x-custom-sig"})) == {
        "X-Custom-Sig": "[redacted]",
        "Authorization": "Bearer abc",
    }


def test_redact_headers_of_empty_mapping() -> None:
    """No headers in, no headers out."""
    assert redact_headers({}) == {}


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://h/x?accessToken=a&n=1", "https://h/x?accessToken=[redacted]&n=1"),
        ("https://h/x?sessionToken=a", "https://h/x?sessionToken=[redacted]"),
        ("https://h/x?clientSecret=a", "https://h/x?clientSecret=[redacted]"),
        ("https://h/x?monkey=a&turkey=b", "https://h/x?monkey=a&turkey=b"),
        ("https://h/cb#access_token=a&state=s", "https://h/cb#access_token=[redacted]&state=s"),
        ("https://h/page#section-2", "https://h/page#section-2"),
    ],
)
def test_camel_case_names_and_fragments_are_redacted(url: str, expected: str) -> None:
    """camelCase credential names and tokens in the fragment are redacted; lookalikes are not."""
    assert redact_url(url) == expected
