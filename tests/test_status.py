"""Tests for ``asyncpoll._status`` (JobState, Status) and ``asyncpoll._errors``."""

from __future__ import annotations

import math
import re

import attrs
import pytest

import asyncpoll
from asyncpoll import (
    AsyncPollError,
    InvalidStateError,
    JobCancelled,
    JobFailed,
    JobState,
    JobTimeout,
    PollError,
    Status,
)


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


# --- JobState ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "terminal"),
    [
        (JobState.PENDING, False),
        (JobState.RUNNING, False),
        (JobState.SUCCEEDED, True),
        (JobState.FAILED, True),
        (JobState.CANCELLED, True),
        (JobState.TIMED_OUT, True),
        (JobState.ERRORED, True),
    ],
)
def test_job_state_is_terminal(state: JobState, terminal: bool) -> None:
    """Only PENDING and RUNNING are live; every other state is terminal."""
    assert state.is_terminal is terminal


def test_job_state_has_exactly_seven_members_with_lowercase_values() -> None:
    """JobState holds the seven documented states, each valued by its lower-case name."""
    assert [(s.name, s.value) for s in JobState] == [
        ("PENDING", "pending"),
        ("RUNNING", "running"),
        ("SUCCEEDED", "succeeded"),
        ("FAILED", "failed"),
        ("CANCELLED", "cancelled"),
        ("TIMED_OUT", "timed_out"),
        ("ERRORED", "errored"),
    ]


def test_job_state_repr_is_the_qualified_name() -> None:
    """JobState's repr reads like the expression that names it."""
    assert repr(JobState.TIMED_OUT) == "JobState.TIMED_OUT"
    assert repr([JobState.PENDING]) == "[JobState.PENDING]"


def test_job_state_looks_up_by_value() -> None:
    """JobState("succeeded") is the SUCCEEDED member."""
    assert JobState("succeeded") is JobState.SUCCEEDED


# --- Status --------------------------------------------------------------------------


def test_status_defaults() -> None:
    """A Status built from a state alone has every other field None."""
    status = Status(JobState.RUNNING)
    assert (
        status.state,
        status.progress,
        status.result,
        status.error,
        status.retry_after,
        status.http_status,
        status.raw,
    ) == (JobState.RUNNING, None, None, None, None, None, None)


@pytest.mark.parametrize("progress", [0, 0.0, 0.5, 1, 1.0, None])
def test_status_accepts_progress_from_zero_to_one(progress: float | None) -> None:
    """Progress 0..1 inclusive (ints too) and None are accepted and stored as given."""
    assert Status(JobState.RUNNING, progress=progress).progress == progress


@pytest.mark.parametrize(
    ("progress", "shown"),
    [
        (-0.01, "-0.01"),
        (1.0000001, "1.0000001"),
        (2, "2"),
        (50, "50"),
        (-math.inf, "-inf"),
        (math.inf, "inf"),
        (math.nan, "nan"),
        (True, "True"),
        (False, "False"),
        ("0.5", "'0.5'"),
    ],
)
def test_status_rejects_progress_outside_zero_to_one(progress: object, shown: str) -> None:
    """Progress outside 0..1, NaN, a bool or a string raises ValueError quoting the value."""
    message = f"Status.progress must be a number from 0 to 1 or None, got {shown}"
    with pytest.raises(ValueError, match=_exactly(message)):
        Status(JobState.RUNNING, progress=progress)  # type: ignore[arg-type]


@pytest.mark.parametrize("retry_after", [0, 0.0, 0.25, 3600, None])
def test_status_accepts_non_negative_retry_after(retry_after: float | None) -> None:
    """retry_after of zero or more seconds, or None, is accepted and stored as given."""
    assert Status(JobState.RUNNING, retry_after=retry_after).retry_after == retry_after


@pytest.mark.parametrize(
    ("retry_after", "shown"),
    [(-1, "-1"), (-0.5, "-0.5"), (-math.inf, "-inf"), (math.nan, "nan")],
)
def test_status_rejects_negative_or_nan_retry_after(retry_after: float, shown: str) -> None:
    """A negative or NaN retry_after raises ValueError quoting the value."""
    message = f"Status.retry_after must be >= 0 seconds or None, got {shown}"
    with pytest.raises(ValueError, match=_exactly(message)):
        Status(JobState.RUNNING, retry_after=retry_after)


@pytest.mark.parametrize("state", ["running", None, 1])
def test_status_requires_a_job_state(state: object) -> None:
    """A state that is not a JobState member raises TypeError."""
    with pytest.raises(TypeError, match=r"'state' must be <enum 'JobState'>"):
        Status(state)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("state", JobState.FAILED),
        ("progress", 0.5),
        ("result", 1),
        ("error", "x"),
        ("retry_after", 1.0),
        ("http_status", 500),
        ("raw", {}),
    ],
)
def test_status_is_frozen(field: str, value: object) -> None:
    """No field of a Status can be reassigned after it is built."""
    status = Status(JobState.RUNNING)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        setattr(status, field, value)
    assert status == Status(JobState.RUNNING)


def test_status_equality_is_by_value() -> None:
    """Two Statuses with equal fields are equal; one differing field makes them unequal."""
    a = Status(JobState.SUCCEEDED, progress=1.0, result={"x": 1}, http_status=200)
    b = Status(JobState.SUCCEEDED, progress=1.0, result={"x": 1}, http_status=200)
    assert a == b
    assert a != attrs.evolve(b, http_status=201)


def test_status_repr_leaves_out_raw() -> None:
    """Status's repr shows the reading but not the (possibly large) raw body."""
    status = Status(JobState.FAILED, error="boom", http_status=200, raw={"huge": "body"})
    assert repr(status) == (
        "Status(state=JobState.FAILED, progress=None, result=None, error='boom', "
        "retry_after=None, http_status=200, result_url=None)"
    )


def test_status_evolve_revalidates() -> None:
    """attrs.evolve on a Status runs the validators again."""
    with pytest.raises(ValueError, match=r"^Status\.progress must be"):
        attrs.evolve(Status(JobState.RUNNING), progress=3.0)


# --- the exceptions ------------------------------------------------------------------


def test_job_failed_quotes_the_server_text_and_names_the_job() -> None:
    """JobFailed's message names the job and quotes the server's error text."""
    status = Status(JobState.FAILED, error="disk quota exceeded")
    exc = JobFailed("job-42", status)
    assert str(exc) == "job 'job-42' failed: disk quota exceeded"
    assert exc.job_id == "job-42"
    assert exc.status is status
    assert exc.args == ("job 'job-42' failed: disk quota exceeded",)


@pytest.mark.parametrize("error", [None, ""])
def test_job_failed_without_server_text_says_so(error: str | None) -> None:
    """JobFailed says the server gave no error text when the status has none."""
    exc = JobFailed("j1", Status(JobState.FAILED, error=error))
    assert str(exc) == "job 'j1' failed (the server gave no error text)"


def test_job_timeout_is_a_timeout_error_with_the_last_state() -> None:
    """JobTimeout is a TimeoutError naming the job, the deadline and the last state read."""
    status = Status(JobState.RUNNING, progress=0.5)
    exc = JobTimeout("build-7", 30.0, status)
    assert isinstance(exc, TimeoutError)
    assert str(exc) == (
        "job 'build-7' did not finish within 30 s; last state running "
        "(pass a larger timeout= to wait longer)"
    )
    assert (exc.job_id, exc.timeout, exc.status) == ("build-7", 30.0, status)


def test_job_timeout_never_read() -> None:
    """JobTimeout without a status says the job was never read; fractional timeouts show as is."""
    exc = JobTimeout("j", 1.5, None)
    assert str(exc) == (
        "job 'j' did not finish within 1.5 s; never read (pass a larger timeout= to wait longer)"
    )
    assert exc.status is None


def test_job_timeout_is_caught_by_except_timeout_error() -> None:
    """Code that catches TimeoutError also catches JobTimeout."""
    with pytest.raises(TimeoutError):
        raise JobTimeout("j", 1.0, None)


def test_job_cancelled_default_and_custom_reason() -> None:
    """JobCancelled names the job and the reason, by default 'cancelled by the caller'."""
    default = JobCancelled("j1")
    assert str(default) == "job 'j1' was cancelled: cancelled by the caller"
    assert (default.job_id, default.reason) == ("j1", "cancelled by the caller")
    custom = JobCancelled("j2", "the poller was closed")
    assert str(custom) == "job 'j2' was cancelled: the poller was closed"
    assert custom.reason == "the poller was closed"


def test_poll_error_message_alone() -> None:
    """A PollError with no job id reads as its bare message; every attribute defaults to None."""
    exc = PollError("HTTP 404 from the status URL")
    assert str(exc) == "HTTP 404 from the status URL"
    assert exc.message == "HTTP 404 from the status URL"
    assert (exc.job_id, exc.url, exc.http_status, exc.cause, exc.status) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert exc.args == ("HTTP 404 from the status URL",)


def test_poll_error_names_the_job() -> None:
    """A PollError with a job id prefixes the message with the job."""
    assert str(PollError("gave up", job_id="j9")) == "job 'j9': gave up"


def test_poll_error_names_the_job_and_url() -> None:
    """A PollError with a job id and URL names both before the message."""
    exc = PollError("HTTP 403", job_id="j9", url="https://api.example/jobs/9", http_status=403)
    assert str(exc) == "job 'j9' (https://api.example/jobs/9): HTTP 403"
    assert exc.http_status == 403


def test_poll_error_keeps_cause_and_status() -> None:
    """PollError carries the underlying exception and the last status it was given."""
    cause = ValueError("bad body")
    status = Status(JobState.RUNNING)
    exc = PollError("too many errors", job_id="j", cause=cause, status=status)
    assert exc.cause is cause
    assert exc.status is status


def test_poll_error_str_follows_a_late_job_id() -> None:
    """A job id filled in after construction shows in str(), as the poller relies on."""
    exc = PollError("unreadable")
    exc.job_id = "late"
    exc.url = "https://h/x"
    assert str(exc) == "job 'late' (https://h/x): unreadable"


def test_invalid_state_error_is_a_runtime_error() -> None:
    """InvalidStateError is both an AsyncPollError and a RuntimeError."""
    exc = InvalidStateError("job 'j' has no result yet")
    assert isinstance(exc, RuntimeError)
    assert isinstance(exc, AsyncPollError)
    assert str(exc) == "job 'j' has no result yet"


@pytest.mark.parametrize("cls", [JobFailed, JobTimeout, JobCancelled, PollError, InvalidStateError])
def test_every_error_derives_from_async_poll_error(cls: type[Exception]) -> None:
    """Every asyncpoll exception is an AsyncPollError, itself a plain Exception."""
    assert issubclass(cls, AsyncPollError)
    assert issubclass(AsyncPollError, Exception)
    assert not issubclass(AsyncPollError, RuntimeError)


def test_exception_hierarchy_is_exactly_the_documented_tree() -> None:
    """The bases of each exception are exactly those the _errors docstring draws."""
    assert AsyncPollError.__bases__ == (Exception,)
    assert JobFailed.__bases__ == (AsyncPollError,)
    assert JobTimeout.__bases__ == (AsyncPollError, TimeoutError)
    assert JobCancelled.__bases__ == (AsyncPollError,)
    assert PollError.__bases__ == (AsyncPollError,)
    assert InvalidStateError.__bases__ == (AsyncPollError, RuntimeError)


def test_only_the_documented_errors_are_timeout_or_runtime_errors() -> None:
    """JobFailed, JobCancelled and PollError are neither TimeoutError nor RuntimeError."""
    for cls in (JobFailed, JobCancelled, PollError):
        assert not issubclass(cls, TimeoutError)
        assert not issubclass(cls, RuntimeError)
    assert not issubclass(InvalidStateError, TimeoutError)
    assert not issubclass(JobTimeout, RuntimeError)


def test_errors_and_status_are_exported_from_the_package() -> None:
    """The public package re-exports the status values and every exception."""
    from asyncpoll import _errors, _status

    assert asyncpoll.JobState is _status.JobState
    assert asyncpoll.Status is _status.Status
    for name in _errors.__all__:
        assert getattr(asyncpoll, name) is getattr(_errors, name)


def test_errors_survive_pickling_with_their_attributes() -> None:
    """Job errors pickle and unpickle with the same message and attributes (for processes)."""
    import pickle

    status = Status(JobState.FAILED, error="disk full")
    errors = [
        asyncpoll.JobFailed("a", status),
        asyncpoll.JobTimeout("b", 30.0, status),
        asyncpoll.JobCancelled("c", "cancelled by the caller"),
        asyncpoll.PollError("HTTP 404", job_id="d", url="https://h/d", http_status=404),
    ]
    for error in errors:
        copy = pickle.loads(pickle.dumps(error))
        assert type(copy) is type(error)
        assert str(copy) == str(error)
        assert copy.job_id == error.job_id
    poll_error = pickle.loads(pickle.dumps(errors[3]))
    assert (poll_error.http_status, poll_error.url) == (404, "https://h/d")


def test_poll_error_without_a_job_shows_its_url() -> None:
    """A PollError with a URL but no job id still names the URL."""
    assert str(asyncpoll.PollError("refused", url="https://h/x")) == "https://h/x: refused"
