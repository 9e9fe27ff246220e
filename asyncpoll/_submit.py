"""Creating jobs: the create request, and finding the new job's id and status URL.

Pure: ``discover()`` reads one create response and returns what it says.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

import attrs

from ._response import Response
from ._urls import check_server_url

__all__ = ["IDEMPOTENCY_HEADER", "CreateRequest", "discover"]

#: The header an idempotency key travels in (the IETF draft's name, Stripe's and others').
IDEMPOTENCY_HEADER = "Idempotency-Key"

_ID_KEYS = (
    "jobId",
    "job_id",
    "id",
    "taskId",
    "task_id",
    "task-id",  # Flower's answer to async-apply
    "submission_id",  # Ray Jobs
    "dag_run_id",  # Airflow
    "operationId",
)
_LINK_KEYS = (
    "statusUrl",
    "status_url",
    "statusURL",
    "pollUrl",
    "poll_url",
    "pollingUrl",
    "location",
    "Location",
)


@attrs.frozen
class CreateRequest:
    """A create request as ``submit()`` was given it, kept to send again on resubmit."""

    method: str
    url: str
    json: Any = None
    data: Any = None
    content: bytes | str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    #: The ``Idempotency-Key`` of the first create, or None when none is sent.
    idempotency_key: str | None = None

    def headers_for(self, submission: int) -> Mapping[str, str]:
        """The headers of create request number ``submission`` (0: the first).

        Each resubmit asks for a new job, so it carries its own key, derived from the
        first: its own retries repeat it, and no resubmit is taken for the first job.
        """
        key = self.idempotency_key
        if key is None:
            return self.headers
        headers = {
            name: value
            for name, value in self.headers.items()
            if name.lower() != IDEMPOTENCY_HEADER.lower()
        }
        headers[IDEMPOTENCY_HEADER] = key if submission == 0 else f"{key}-{submission}"
        return headers


def _scopes(body: Any) -> tuple[Mapping[str, Any], ...]:
    if not isinstance(body, Mapping):
        return ()
    data = body.get("data")
    return (body, data) if isinstance(data, Mapping) else (body,)


def _first(scopes: tuple[Mapping[str, Any], ...], keys: tuple[str, ...]) -> Any:
    for scope in scopes:
        for key in keys:
            value = scope.get(key)
            if isinstance(value, str) and value:
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return str(value)
    return None


def discover(
    response: Response,
    *,
    base: str,
    allowed: frozenset[tuple[str, str, int]],
) -> tuple[str | None, str | None]:
    """The new job's ``(job_id, status_url)`` from a 2xx create response.

    The status URL comes from, in order: ``Operation-Location``; ``Location`` on a 201 or
    202; a body field (``statusUrl``, ``status_url``, ``pollUrl``, ``location``, ...). It
    is resolved against ``base`` and must pass the same-origin check. The job id comes
    from ``jobId``, ``job_id``, ``id``, ``taskId``, ``task-id``, ``submission_id`` (top
    level or inside ``data``), else
    the last path segment of the status URL. Either may be None when absent: the caller
    falls back to its status URL template.

    Raises:
        asyncpoll.PollError: a status URL is present but unsafe.
    """
    try:
        body = response.json()
    except ValueError:
        body = None
    scopes = _scopes(body)
    headers = response.headers
    link = headers.get("operation-location")
    source = "the Operation-Location header"
    if not link and response.status_code in (201, 202):
        link = headers.get("location")
        source = "the Location header"
    if not link:
        link = _first(scopes, _LINK_KEYS)
        source = "the status URL in the create response's body"
    status_url = None
    if link:
        status_url = check_server_url(link, base=base, allowed=allowed, what=source)
    job_id = _first(scopes, _ID_KEYS)
    if job_id is None and status_url is not None:
        segment = unquote(urlsplit(status_url).path.rstrip("/").rsplit("/", 1)[-1])
        job_id = segment or None
    return job_id, status_url
