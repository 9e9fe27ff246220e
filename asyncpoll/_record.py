"""``JobRecord``: what the engine knows of one job, and what a store would persist.

The record is data: no event loop, no handle, no callbacks. The engine and ``decide()``
read and update it; the ``JobHandle`` a caller holds is a future over it.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs

from ._schedule import Schedule
from ._status import JobState, Status
from ._submit import CreateRequest
from ._urls import same_origin

__all__ = ["NO_BODY", "Action", "JobRecord", "Submission"]

#: What a job's next trip through a worker does.
Action = Literal["poll", "fetch", "resubmit"]


@attrs.frozen
class Submission:
    """One create request sent for a job, and where it led.

    Attributes:
        job_id: the id the server gave the job.
        url: the status URL polled for it (redacted).
        http_status: the create response's HTTP status.
    """

    job_id: str
    url: str
    http_status: int


class _NoBody:
    """The marker for "no per-job cancel body": the poller's applies."""

    def __repr__(self) -> str:
        return "NO_BODY"


NO_BODY: Any = _NoBody()


@attrs.define(slots=True, eq=False, repr=False)
class JobRecord:
    """One job's state in the engine.

    Times are float seconds on the poller's clock.

    Attributes:
        job_id: the job's id (changes when a resubmit creates a new job).
        url: the status URL as given (None for a ``check=`` job).
        target: absolute URL of the next status request.
        origin: the URL whose origin may receive credentials.
        schedule: when to poll while the job is healthy.
        timeout: the job's timeout in seconds as given (None: none).
        deadline: when the job times out (None: never).
        action: what the next trip does: ``"poll"``, ``"fetch"`` or ``"resubmit"``.
        fetch_url: the result document to GET when ``action`` is ``"fetch"``.
        fetch_result: whether a result link is fetched.
        create: the create request, for resubmits (``submit()`` jobs only).
        resubmits_left: how many more times the create request may be sent.
        submissions: each create request sent and where it led.
        cancel_url: where a remote cancel goes (None: the status URL).
        cancel_method: the remote cancel's method (None: the poller's).
        cancel_json: the remote cancel's JSON body (``NO_BODY``: the poller's).
        stall_timeout: seconds without change after which the job is stalled.
        attempts: requests made for the job (failed ones included).
        errors: transient failures in a row.
        throttles: 429s in a row.
        redirects: redirects followed in a row.
        state: the job's state (live until it is terminal).
        status: the last ``Status`` read.
        changed_at: when state or progress last changed.
        stalled: whether the job is reported stalled.
        added_at: when the job was added.
    """

    job_id: str
    url: str | None
    schedule: Schedule
    timeout: float | None
    deadline: float | None
    target: str | None = None
    origin: str | None = None
    action: Action = "poll"
    fetch_url: str | None = None
    fetch_result: bool = False
    create: CreateRequest | None = None
    resubmits_left: int = 0
    submissions: tuple[Submission, ...] = ()
    cancel_url: str | None = None
    cancel_method: str | None = None
    cancel_json: Any = NO_BODY
    stall_timeout: float | None = None
    attempts: int = 0
    errors: int = 0
    throttles: int = 0
    redirects: int = 0
    state: JobState = JobState.PENDING
    status: Status | None = None
    changed_at: float = 0.0
    stalled: bool = False
    added_at: float = 0.0

    def needs_more(self, status: Status) -> bool:
        """True when a terminal ``status`` still calls for a request (a fetch, a resubmit)."""
        if status.state is JobState.SUCCEEDED:
            return self.fetch_result and status.result_url is not None
        if status.state is JobState.FAILED:
            return self.resubmits_left > 0 and self.create is not None
        return False

    def credentials_for(self, url: str) -> bool:
        """Whether a request to ``url`` may carry credentials: only to the job's origin."""
        origin = self.origin
        return url == origin or (origin is not None and same_origin(url, origin))

    def __repr__(self) -> str:
        return (
            f"<JobRecord {self.job_id!r} {self.state.value} action={self.action} "
            f"attempts={self.attempts} errors={self.errors}>"
        )
