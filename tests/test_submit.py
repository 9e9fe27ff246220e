"""Tests for ``asyncpoll._submit.discover``: a new job's id and status URL from a create response.

Every test builds an ``asyncpoll.Response`` by hand, as the poller would hand it over
after ``POST https://api.test/v1/jobs``.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from asyncpoll import PollError, Response
from asyncpoll._submit import discover
from asyncpoll._urls import normalize_origins

CREATE_URL = "https://api.test/v1/jobs"
NO_ORIGINS: frozenset[tuple[str, str, int]] = frozenset()


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


def _created(
    status_code: int = 202,
    body: Any = None,
    *,
    headers: dict[str, str] | None = None,
    content: bytes | None = None,
) -> Response:
    """A create response: ``body`` as JSON unless ``content`` gives the raw bytes."""
    if content is None:
        content = b"" if body is None else json.dumps(body).encode()
    return Response(status_code, headers or {}, content, CREATE_URL, request_url=CREATE_URL)


def _discover(
    response: Response, allowed: frozenset[tuple[str, str, int]] = NO_ORIGINS
) -> tuple[str | None, str | None]:
    return discover(response, base=CREATE_URL, allowed=allowed)


# --- where the status URL comes from -------------------------------------------------


@pytest.mark.parametrize("status_code", [200, 201, 202])
def test_operation_location_wins_over_location_and_body(status_code: int) -> None:
    """Operation-Location is used on any 2xx, ahead of Location and of a body link."""
    response = _created(
        status_code,
        {"statusUrl": "/v1/jobs/from-body"},
        headers={"Operation-Location": "/v1/operations/op-1", "Location": "/v1/jobs/loc-2"},
    )
    assert _discover(response) == ("op-1", "https://api.test/v1/operations/op-1")


@pytest.mark.parametrize("status_code", [201, 202])
def test_location_is_used_on_201_and_202(status_code: int) -> None:
    """On a 201 or 202 the Location header is the status URL, ahead of a body link."""
    response = _created(
        status_code, {"statusUrl": "/v1/jobs/from-body"}, headers={"Location": "/v1/jobs/j-7"}
    )
    assert _discover(response) == ("j-7", "https://api.test/v1/jobs/j-7")


@pytest.mark.parametrize("status_code", [200, 203, 204])
def test_location_is_ignored_on_other_codes(status_code: int) -> None:
    """On a 200 (or any 2xx but 201 and 202) Location says nothing about the job."""
    response = _created(status_code, headers={"Location": "/v1/jobs/j-7"})
    assert _discover(response) == (None, None)
    response = _created(
        status_code, {"statusUrl": "/v1/jobs/from-body"}, headers={"Location": "/v1/jobs/j-7"}
    )
    assert _discover(response) == ("from-body", "https://api.test/v1/jobs/from-body")


def test_header_names_are_case_insensitive() -> None:
    """Header names match whatever their case on the wire."""
    response = _created(202, headers={"OPERATION-location": "/v1/operations/op-1"})
    assert _discover(response) == ("op-1", "https://api.test/v1/operations/op-1")
    response = _created(201, headers={"LOCATION": "/v1/jobs/j-2"})
    assert _discover(response) == ("j-2", "https://api.test/v1/jobs/j-2")


def test_empty_headers_fall_through() -> None:
    """An empty Operation-Location or Location header counts as absent."""
    response = _created(
        202, {"pollUrl": "/v1/jobs/j-3"}, headers={"Operation-Location": "", "Location": ""}
    )
    assert _discover(response) == ("j-3", "https://api.test/v1/jobs/j-3")
    response = _created(202, headers={"Operation-Location": "", "Location": "/v1/jobs/j-4"})
    assert _discover(response) == ("j-4", "https://api.test/v1/jobs/j-4")


@pytest.mark.parametrize(
    "key",
    ["statusUrl", "status_url", "statusURL", "pollUrl", "poll_url", "pollingUrl", "location"],
)
@pytest.mark.parametrize("nested", [False, True], ids=["top", "data"])
def test_body_link_fields(key: str, nested: bool) -> None:
    """A body link field names the status URL, at the top level or inside ``data``."""
    fields = {key: "/v1/jobs/j-5"}
    body = {"data": fields} if nested else fields
    assert _discover(_created(200, body)) == ("j-5", "https://api.test/v1/jobs/j-5")


def test_top_level_body_link_wins_over_data() -> None:
    """A link at the top level wins over one inside ``data``."""
    body = {"data": {"statusUrl": "/v1/jobs/inner"}, "location": "/v1/jobs/top"}
    assert _discover(_created(200, body)) == ("top", "https://api.test/v1/jobs/top")


def test_body_link_fields_in_order() -> None:
    """Within one object statusUrl comes before status_url, pollUrl and location."""
    body = {
        "location": "/v1/jobs/d",
        "pollUrl": "/v1/jobs/c",
        "status_url": "/v1/jobs/b",
        "statusUrl": "/v1/jobs/a",
    }
    assert _discover(_created(200, body)) == ("a", "https://api.test/v1/jobs/a")
    del body["statusUrl"]
    assert _discover(_created(200, body)) == ("b", "https://api.test/v1/jobs/b")
    del body["status_url"]
    assert _discover(_created(200, body)) == ("c", "https://api.test/v1/jobs/c")


def test_links_resolve_against_the_base() -> None:
    """Relative links resolve against ``base``, the create request's URL."""
    response = _created(201, headers={"Location": "status/5"})
    assert discover(response, base="https://api.test/v1/jobs/", allowed=NO_ORIGINS) == (
        "5",
        "https://api.test/v1/jobs/status/5",
    )
    assert discover(response, base="https://api.test/v1/jobs", allowed=NO_ORIGINS) == (
        "5",
        "https://api.test/v1/status/5",
    )


# --- the job id ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "jobId",
        "job_id",
        "id",
        "taskId",
        "task_id",
        "task-id",
        "submission_id",
        "dag_run_id",
        "operationId",
    ],
)
@pytest.mark.parametrize("nested", [False, True], ids=["top", "data"])
def test_job_id_fields(key: str, nested: bool) -> None:
    """The job id comes from an id field, at the top level or inside ``data``."""
    fields = {key: "job-8"}
    body = {"data": fields} if nested else fields
    assert _discover(_created(200, body)) == ("job-8", None)


@pytest.mark.parametrize(("value", "job_id"), [(42, "42"), (0, "0"), (-3, "-3")])
def test_integer_job_id_becomes_a_string(value: int, job_id: str) -> None:
    """An integer id is returned as its decimal string."""
    assert _discover(_created(201, {"id": value})) == (job_id, None)
    assert _discover(_created(201, {"data": {"taskId": value}})) == (job_id, None)


def test_explicit_job_id_wins_over_the_url_segment() -> None:
    """An id field wins over the last segment of the status URL."""
    response = _created(202, {"jobId": "abc"}, headers={"Location": "/v1/jobs/zzz"})
    assert _discover(response) == ("abc", "https://api.test/v1/jobs/zzz")


def test_job_id_fields_in_order() -> None:
    """jobId comes before job_id, id and taskId; the top level before ``data``."""
    body: dict[str, Any] = {"taskId": "d", "id": "c", "job_id": "b", "jobId": "a"}
    assert _discover(_created(200, body)) == ("a", None)
    del body["jobId"]
    assert _discover(_created(200, body)) == ("b", None)
    del body["job_id"]
    assert _discover(_created(200, body)) == ("c", None)
    del body["id"]
    assert _discover(_created(200, body)) == ("d", None)
    assert _discover(_created(200, {"id": "top", "data": {"jobId": "inner"}})) == ("top", None)


@pytest.mark.parametrize("value", [True, False, 1.5, "", None, {"id": "x"}, ["x"]])
def test_unusable_id_values_are_skipped(value: Any) -> None:
    """Booleans, floats, empty strings, null and containers are not ids."""
    assert _discover(_created(200, {"id": value})) == (None, None)
    response = _created(202, {"id": value}, headers={"Location": "/v1/jobs/j-6"})
    assert _discover(response) == ("j-6", "https://api.test/v1/jobs/j-6")
    assert _discover(_created(200, {"id": value, "data": {"id": "inner"}})) == ("inner", None)


@pytest.mark.parametrize(
    ("location", "job_id", "status_url"),
    [
        ("/v1/jobs/j-9", "j-9", "https://api.test/v1/jobs/j-9"),
        ("/v1/jobs/j-9/", "j-9", "https://api.test/v1/jobs/j-9/"),
        ("/v1/jobs/j-9?api-version=2", "j-9", "https://api.test/v1/jobs/j-9?api-version=2"),
        ("/v1/jobs/j%209", "j 9", "https://api.test/v1/jobs/j%209"),
        ("/v1/jobs/a%2Fb", "a/b", "https://api.test/v1/jobs/a%2Fb"),
        ("https://api.test/v1/jobs/j-9#frag", "j-9", "https://api.test/v1/jobs/j-9#frag"),
        ("/", None, "https://api.test/"),
        ("https://api.test", None, "https://api.test"),
        ("https://api.test?job=1", None, "https://api.test?job=1"),
    ],
)
def test_job_id_falls_back_to_the_last_path_segment(
    location: str, job_id: str | None, status_url: str
) -> None:
    """With no id field, the id is the status URL's last path segment, unquoted."""
    assert _discover(_created(201, headers={"Location": location})) == (job_id, status_url)


# --- nothing found, bodies that are not JSON, unsafe links ---------------------------


@pytest.mark.parametrize(
    ("status_code", "content"),
    [
        (202, b""),
        (202, b'{"message": "accepted"}'),
        (200, b'{"data": {"message": "accepted"}}'),
        (200, b'{"data": "j-1"}'),
        (200, b'["j-1", "j-2"]'),
        (200, b'"j-1"'),
        (200, b"null"),
        (200, b"<html>Accepted</html>"),
    ],
)
def test_nothing_found(status_code: int, content: bytes) -> None:
    """A response naming neither an id nor a link gives (None, None)."""
    assert _discover(_created(status_code, content=content)) == (None, None)


def test_non_json_body_is_fine_when_headers_carry_the_link() -> None:
    """A body that is not JSON is ignored when a header names the status URL."""
    response = _created(202, content=b"<html>Accepted</html>", headers={"Location": "/v1/jobs/j-1"})
    assert _discover(response) == ("j-1", "https://api.test/v1/jobs/j-1")
    response = _created(
        200, content=b"\xff\xfe not utf-8", headers={"Operation-Location": "/v1/ops/o-2"}
    )
    assert _discover(response) == ("o-2", "https://api.test/v1/ops/o-2")


@pytest.mark.parametrize(
    ("headers", "body", "message"),
    [
        (
            {"Operation-Location": "https://evil.test/ops/1"},
            None,
            "refusing the Operation-Location header 'https://evil.test/ops/1': its origin "
            "https://evil.test:443 differs from 'https://api.test/v1/jobs'; list it in "
            "allowed_origins= to trust it",
        ),
        (
            {"Location": "//evil.test/jobs/1?token=s3cret"},
            None,
            "refusing the Location header 'https://evil.test/jobs/1?token=[redacted]': its "
            "origin https://evil.test:443 differs from 'https://api.test/v1/jobs'; list it in "
            "allowed_origins= to trust it",
        ),
        (
            {"Location": "javascript:alert(1)"},
            None,
            "refusing the Location header 'javascript:alert(1)': only http and https URLs are "
            "followed",
        ),
        (
            {},
            {"statusUrl": "https://user:s3cret@api.test/v1/jobs/1"},
            "refusing the status URL in the create response's body "
            "'https://user:[redacted]@api.test/v1/jobs/1': it carries user credentials",
        ),
        (
            {},
            {"data": {"pollUrl": "http://api.test/v1/jobs/1", "jobId": "j-1"}},
            "refusing the status URL in the create response's body 'http://api.test/v1/jobs/1':"
            " its origin http://api.test:80 differs from 'https://api.test/v1/jobs'; list it "
            "in allowed_origins= to trust it",
        ),
    ],
)
def test_unsafe_link_raises_poll_error(headers: dict[str, str], body: Any, message: str) -> None:
    """A status URL that fails the safety checks raises PollError naming where it came from."""
    with pytest.raises(PollError, match=_exactly(message)) as caught:
        _discover(_created(202, body, headers=headers))
    assert "s3cret" not in str(caught.value)


def test_allowed_origin_link_is_accepted() -> None:
    """A status URL on an origin the user allowed is accepted."""
    allowed = normalize_origins(["https://ops.test"])
    response = _created(202, headers={"Operation-Location": "https://ops.test/op/5"})
    assert _discover(response, allowed) == ("5", "https://ops.test/op/5")
