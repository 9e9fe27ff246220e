"""``decide()``: the one place that judges what happened to a job and says what comes next.

The engine acts; this module decides. Its input is a job's record, what just happened
to it (an ``Outcome``), the time and the poller's ``Rules``; its output is a
``Decision``::

    Outcome  = Answered(response, hint) | Checked(status) | Failed(error, fatal)
             | CutShort(limit)
    Decision = Again(due, kind)            poll (or fetch, or resubmit) again at ``due``
             | Rekey(job_id, url, due)     a resubmit created a new job: follow it
             | Finish(state, result, error)

Every request kind (status poll, result fetch, resubmit) is judged by the same rules:
``verdict()`` sorts an HTTP status the same way for each, so a 503 with a hint is
back-pressure whichever request got it. ``decide()`` updates the record's counters in
place (the record is plain data the engine owns) and performs no I/O, reads no clock
and awaits nothing: a simulation can drive it, and its tests run in microseconds.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, Final

from ._errors import (
    MESSAGE_TEXT_LIMIT,
    JobCancelled,
    JobFailed,
    JobStalled,
    JobTimeout,
    PollError,
)
from ._outcomes import (
    Again,
    Answered,
    Checked,
    CutShort,
    Decision,
    Failed,
    Finish,
    Outcome,
    Rekey,
    Rules,
)
from ._policy import checked_delay
from ._record import JobRecord
from ._redact import redact_url
from ._response import Response, clip, excerpt
from ._status import JobState, Status
from ._submit import discover
from ._transport import TransportFailure
from ._urls import DOT_SEGMENTS, check_server_url, fill_template

__all__ = [
    "MAX_REDIRECTS",
    "Verdict",
    "decide",
    "describe",
    "locate",
    "verdict",
]

#: Redirects followed in a row before giving up.
MAX_REDIRECTS: Final = 5

_REFUSALS: Final = {
    401: "check the credentials in headers=",
    403: "the credentials lack permission for this job",
    404: "no such job at this URL",
    410: "the job is gone from the server",
}


class Verdict(enum.Enum):
    """What an HTTP status code means, whichever request got it."""

    READ = "read"  # 2xx (or a code the reader claims): the answer itself
    THROTTLED = "throttled"  # 429, or 503 with a hint: back-pressure, never a failure
    TRANSIENT = "transient"  # 5xx, 408: counted against max_errors, retried
    FATAL = "fatal"  # anything else: the job ends ERRORED


def verdict(code: int, hint: float | None) -> Verdict:
    """The ``Verdict`` for HTTP status ``code``, given the server's hint (or None)."""
    if 200 <= code < 300:
        return Verdict.READ
    if code == 429 or (code == 503 and hint is not None):
        return Verdict.THROTTLED
    if code >= 500 or code == 408:
        return Verdict.TRANSIENT
    return Verdict.FATAL


# ----------------------------------------------------------------------- decide


def decide(record: JobRecord, outcome: Outcome, now: float, rules: Rules) -> Decision:
    """What happens next to ``record``'s job after ``outcome``, at time ``now``.

    Raises:
        ValueError: a schedule returned a bad delay (the engine ends the job ERRORED).
    """
    kind = type(outcome)
    if kind is Answered:
        assert isinstance(outcome, Answered)
        action = record.action
        if action == "poll":
            return _answered(record, outcome.response, outcome.hint, now, rules)
        if action == "fetch":
            return _fetched(record, outcome.response, outcome.hint, now, rules)
        return _recreated(record, outcome.response, outcome.hint, now, rules)
    if kind is Checked:
        assert isinstance(outcome, Checked)
        return on_status(record, outcome.status, None, now, rules)
    if kind is CutShort:
        assert isinstance(outcome, CutShort)
        failure = TimeoutError(f"no complete response within request_timeout={outcome.limit:g} s")
        return _transient(record, failure, None, None, now, rules)
    assert isinstance(outcome, Failed)
    if outcome.fatal:
        return _fatal(record, outcome.error, None)
    return _transient(record, outcome.error, None, None, now, rules)


def read_status(
    record: JobRecord, response: Response, hint: float | None, rules: Rules
) -> Status | Verdict | BaseException:
    """A status response read: a ``Status``, a failure's ``Verdict``, or a fatal error.

    3xx answers come back as a ``Status`` (303: done, the result is at the Location) or
    as ``Verdict.READ`` for a redirect the caller follows; see ``_answered``.
    """
    code = response.status_code
    judged = verdict(code, hint)
    claims = rules.claims
    if judged is not Verdict.READ and claims is not None and claims(code):
        judged = Verdict.READ
    elif code == 303:
        location = response.headers.get("location")
        if not location:
            return Verdict.FATAL
        try:
            link = check_server_url(
                location,
                base=response.request_url or record.target or "",
                allowed=rules.allowed_origins,
                what="the 303 Location",
            )
        except PollError as exc:
            return exc
        return Status(JobState.SUCCEEDED, result=link, http_status=code, result_url=link)
    if judged is not Verdict.READ:
        return judged
    try:
        status = rules.reader(response)
        if not isinstance(status, Status):
            raise PollError(
                f"the reader returned {type(status).__name__}, not a Status", http_status=code
            )
    except PollError as exc:
        return exc
    except Exception as exc:
        return _Transient(exc)
    return status


#: Seconds after which a job stuck on a state word the reader does not know is reported
#: stalled (a warning naming the word) when no ``stall_timeout`` is set.
UNKNOWN_WORD_STALL: Final = 300.0

#: Top-level body fields that name a job.
_ID_FIELDS: Final = ("id", "job_id", "jobId", "task_id", "taskId")


def _names_other(
    record: JobRecord, response: Response, follows: Callable[[str], bool]
) -> str | None:
    """The id of another followed job that a status body names, or None.

    A server that wrote a stray response onto a kept-alive connection makes the next
    request on it read an answer meant for another job; a body that names a job this
    poller follows, and nowhere names this one, gives it away. (A body naming this job
    too, say as its own id beside a parent's, is this job's.)
    """
    content = response.content
    if content[:1] != b"{" or (b'id"' not in content and b'Id"' not in content):
        return None  # not a JSON object, or no id field in it: nothing to check
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    other = None
    for name in _ID_FIELDS:
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            continue
        if value == record.job_id:
            return None
        if other is None and follows(value):
            other = value
    return other


class _Transient(Exception):
    """A reader's unexpected exception: a transient failure (carried, not raised)."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(cause)
        self.cause = cause


def _answered(
    record: JobRecord, response: Response, hint: float | None, now: float, rules: Rules
) -> Decision:
    code = response.status_code
    if code in (301, 302, 307, 308) and not (rules.claims is not None and rules.claims(code)):
        return _redirect(record, response, now, rules, "the redirect Location")
    read = read_status(record, response, hint, rules)
    if isinstance(read, Status):
        if code < 300 and rules.follows is not None:
            other = _names_other(record, response, rules.follows)
            if other is not None:
                failure = PollError(
                    f"the answer names job {other!r}, not this job (a stray response on a "
                    "reused connection?)",
                    http_status=code,
                )
                return _transient(record, failure, response, hint, now, rules)
        return on_status(record, read, hint, now, rules, response)
    if isinstance(read, _Transient):
        return _transient(record, read.cause, response, hint, now, rules)
    if isinstance(read, BaseException):
        return _fatal(record, read, response)
    return _refused(record, response, hint, now, rules, read, None)


def _redirect(
    record: JobRecord, response: Response, now: float, rules: Rules, what: str
) -> Decision:
    """Follow a 301/302/307/308 of a status poll or a result fetch: same rules for both."""
    location = response.headers.get("location")
    if not location:
        return _fatal(record, None, response)
    try:
        target = check_server_url(
            location,
            base=response.request_url or record.target or "",
            allowed=rules.allowed_origins,
            what=what,
        )
    except PollError as exc:
        return _fatal(record, exc, response)
    record.redirects += 1
    if record.redirects > MAX_REDIRECTS:
        return _fatal(
            record,
            PollError(
                f"more than {MAX_REDIRECTS} redirects in a row", http_status=response.status_code
            ),
            response,
        )
    if record.action == "fetch":
        record.fetch_url = target
    else:
        record.target = target
    return Again(now, "redirect")


def _refused(
    record: JobRecord,
    response: Response,
    hint: float | None,
    now: float,
    rules: Rules,
    judged: Verdict,
    what: str | None,
) -> Decision:
    """A non-2xx answer to any request kind: wait, retry, or give up."""
    if judged is Verdict.THROTTLED:
        record.throttles += 1
        return Again(_retry_due(record.throttles, hint, now, rules), "throttled")
    if judged is Verdict.TRANSIENT:
        return _transient(record, None, response, hint, now, rules)
    code = response.status_code
    if what is None:
        return _fatal(record, None, response)
    message = f"{what}: HTTP {code}; received {excerpt(response.content)}"
    return _fatal(record, PollError(message, http_status=code), response)


def on_status(
    record: JobRecord,
    status: Status,
    hint: float | None,
    now: float,
    rules: Rules,
    response: Response | None = None,
) -> Decision:
    """A ``Status`` was read for the job: finish it, or say when to poll next."""
    previous = record.status
    record.status = status
    record.errors = record.throttles = record.redirects = 0
    state = status.state
    if state is JobState.SUCCEEDED:
        if record.fetch_result and status.result_url is not None:
            return _start_fetch(record, status, now, rules, response)
        return Finish(state, result=status.result)
    if state is JobState.FAILED:
        if record.resubmits_left > 0 and record.create is not None:
            record.resubmits_left -= 1
            record.action = "resubmit"
            delay = checked_delay(rules.retry_schedule, len(record.submissions), rules.rng)
            return Again(now + delay, "resubmit")
        return Finish(state, error=JobFailed(record.job_id, status))
    if state is JobState.CANCELLED:
        reason = "cancelled on the server" + (
            f": {clip(status.error, MESSAGE_TEXT_LIMIT)}" if status.error else ""
        )
        return Finish(state, error=JobCancelled(record.job_id, reason, status))
    if state is JobState.TIMED_OUT:
        return Finish(state, error=JobTimeout(record.job_id, record.timeout or 0.0, status))
    if state is JobState.ERRORED:
        return Finish(
            state,
            error=PollError(
                clip(status.error, MESSAGE_TEXT_LIMIT)
                if status.error
                else "the status reported ERRORED",
                job_id=record.job_id,
                url=shown_url(record),
                http_status=status.http_status,
                status=status,
            ),
        )
    progressed = stalled = False
    if state is not record.state or previous is None or previous.progress != status.progress:
        record.state = state
        record.changed_at = now
        record.stalled = False
        progressed = True
    else:
        limit = record.stall_timeout
        if limit is None and status.unknown_word is not None:
            limit = UNKNOWN_WORD_STALL  # the stall warning names the word again
        if limit is not None and not record.stalled and now - record.changed_at >= limit:
            record.stalled = stalled = True
            if rules.fail_on_stall and record.stall_timeout is not None:
                return Finish(
                    JobState.TIMED_OUT,
                    error=JobStalled(record.job_id, limit, record.status),
                    stalled=True,
                )
    if status.retry_after is not None and (hint is None or status.retry_after > hint):
        hint = status.retry_after
    scheduled = checked_delay(record.schedule, record.attempts, rules.rng)
    delay, _ = rules.pacing.delay(scheduled, hint)
    return Again(now + delay, "poll", progressed, stalled)


def _start_fetch(
    record: JobRecord, status: Status, now: float, rules: Rules, response: Response | None
) -> Decision:
    """A succeeded job links to its result: GET it next, through the same path."""
    assert status.result_url is not None
    try:
        record.fetch_url = check_server_url(
            status.result_url,
            base=record.target or status.result_url,
            allowed=rules.allowed_origins,
            what="the result link",
        )
    except PollError as exc:
        return _fatal(record, exc, response)
    record.action = "fetch"
    record.redirects = 0
    return Again(now, "fetch")


def _fetched(
    record: JobRecord, response: Response, hint: float | None, now: float, rules: Rules
) -> Decision:
    code = response.status_code
    if 200 <= code < 300:
        try:
            document: Any = response.json()
        except ValueError:
            document = response.content
        return Finish(JobState.SUCCEEDED, result=document)
    if code in (301, 302, 303, 307, 308) and response.headers.get("location"):
        return _redirect(record, response, now, rules, "the result document's redirect")
    what = "the job succeeded but its result document could not be fetched"
    return _refused(record, response, hint, now, rules, verdict(code, hint), what)


def _recreated(
    record: JobRecord, response: Response, hint: float | None, now: float, rules: Rules
) -> Decision:
    code = response.status_code
    if not 200 <= code < 300:
        what = "submitting the job again failed"
        return _refused(record, response, hint, now, rules, verdict(code, hint), what)
    try:
        job_id, status_url, from_template = locate(response, rules)
    except PollError as exc:
        return _fatal(record, exc, response)
    delay = checked_delay(record.schedule, 0, rules.rng)
    return Rekey(job_id, status_url, now + delay, code, from_template)


def locate(response: Response, rules: Rules) -> tuple[str, str, bool]:
    """A create response's job id, absolute status URL, and whether the template gave it.

    Raises:
        PollError: the response says neither where to poll nor (with a template) the id.
    """
    job_id, status_url = discover(
        response, base=response.request_url, allowed=rules.allowed_origins
    )
    from_template = False
    if job_id in DOT_SEGMENTS:
        # A URL template (status_url, cancel_url) would send the requests up a path step.
        raise PollError(
            f"refusing the job id {job_id!r} of the create response: a URL reads it as a "
            "step up its path, not as a name",
            http_status=response.status_code,
        )
    if status_url is None and job_id is not None and rules.status_url is not None:
        status_url = rules.absolute(fill_template(rules.status_url, job_id))
        from_template = True
    if status_url is None or job_id is None:
        raise PollError(
            "cannot tell where to poll the new job: the create response has no "
            "Operation-Location or Location header, no status URL field"
            + (" and no job id" if job_id is None else "")
            + (" (give the poller a status_url template)" if rules.status_url is None else "")
            + f"; received {excerpt(response.content)}",
            http_status=response.status_code,
        )
    return job_id, status_url, from_template


def _retry_due(n: int, hint: float | None, now: float, rules: Rules) -> float:
    """After a failed request: the retry schedule's delay, raised to any hint."""
    scheduled = checked_delay(rules.retry_schedule, n, rules.rng)
    delay, _ = rules.pacing.delay(scheduled, hint)
    return now + delay


def _transient(
    record: JobRecord,
    failure: BaseException | None,
    response: Response | None,
    hint: float | None,
    now: float,
    rules: Rules,
) -> Decision:
    record.errors += 1
    if failure is None and response is not None:
        failure = PollError(
            f"HTTP {response.status_code}; received {excerpt(response.content)}",
            http_status=response.status_code,
        )
    if record.errors >= rules.max_errors:
        return Finish(
            JobState.ERRORED,
            error=PollError(
                f"{record.errors} transient failures in a row (max_errors="
                f"{rules.max_errors}); the last: {describe(failure)}",
                job_id=record.job_id,
                url=shown_url(record),
                http_status=response.status_code if response is not None else None,
                cause=failure,
                status=record.status,
            ),
        )
    return Again(_retry_due(record.errors, hint, now, rules), "transient")


def _fatal(record: JobRecord, failure: BaseException | None, response: Response | None) -> Finish:
    http_status = response.status_code if response is not None else None
    if isinstance(failure, PollError):
        # A copy: a reader may raise one instance for many jobs.
        exc = PollError(
            failure.message,
            job_id=record.job_id,
            url=shown_url(record),
            http_status=failure.http_status if failure.http_status is not None else http_status,
            cause=failure.cause,
            status=failure.status if failure.status is not None else record.status,
        )
        exc.__cause__ = failure
    elif response is not None and failure is None:
        why = _REFUSALS.get(response.status_code, "the server refused the status request")
        exc = PollError(
            f"HTTP {response.status_code} ({why}); received {excerpt(response.content)}",
            job_id=record.job_id,
            url=shown_url(record),
            http_status=http_status,
            status=record.status,
        )
    else:
        exc = PollError(
            describe(failure),
            job_id=record.job_id,
            url=shown_url(record),
            http_status=http_status,
            cause=failure,
            status=record.status,
        )
    if exc.cause is None and failure is not None and not isinstance(failure, PollError):
        exc.cause = failure
    return Finish(JobState.ERRORED, error=exc)


def shown_url(record: JobRecord) -> str | None:
    """The job's status URL for messages, credentials redacted."""
    return None if record.url is None else redact_url(record.url)


def describe(failure: BaseException | None) -> str:
    """A failure in a few words for an error message."""
    if failure is None:
        return "no detail"
    text = str(failure) or type(failure).__name__
    if isinstance(failure, (PollError, TransportFailure)):
        return text
    return f"{type(failure).__name__}: {text}"
