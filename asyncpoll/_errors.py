"""The exceptions asyncpoll raises.

The hierarchy::

    AsyncPollError
     ├── JobFailed          the job itself reached a failed state
     ├── JobTimeout         the job missed its deadline (also a TimeoutError)
     │   └── JobStalled     it stood still for stall_timeout (fail_on_stall=True)
     ├── JobCancelled       the job was cancelled before it finished
     ├── PollError          polling failed: a non-retryable HTTP status, too many
     │   │                  transient failures in a row, an unreadable response
     │   └── SubmitError    a create request failed (submit())
     └── InvalidStateError  a handle was asked for a result it does not have yet
                            (also a RuntimeError)

Every job error carries ``job_id``; the message names the job and says what to do.
Server text in a message has its control characters escaped (``_redact.printable``): the
message is one line, whatever the server sent; the attributes keep the text as it came.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._redact import printable
from ._response import clip

if TYPE_CHECKING:
    from ._status import Status

__all__ = [
    "AsyncPollError",
    "InvalidStateError",
    "JobCancelled",
    "JobFailed",
    "JobStalled",
    "JobTimeout",
    "PollError",
    "SubmitError",
]


class AsyncPollError(Exception):
    """Base class of every exception asyncpoll raises on its own account.

    Attributes:
        response: the last HTTP response received for the job (an
            ``asyncpoll.Response``), or None; set by the poller.
    """

    response: Any = None


#: How much of a server's error text a message quotes; a longer text (a traceback)
#: keeps its beginning and its end, and the whole of it stays on the exception.
MESSAGE_TEXT_LIMIT = 1000


class JobFailed(AsyncPollError):
    """The job reached a failed state on the server.

    Attributes:
        job_id: the job's id.
        status: the ``Status`` that reported the failure.
        error: the server's whole error text (``status.error``), or None. The message
            quotes at most about 1,000 characters of it: its beginning and its end.
    """

    def __init__(self, job_id: str, status: Status) -> None:
        self.job_id = job_id
        self.status = status
        self.error = status.error
        reason = (
            f": {clip(status.error, MESSAGE_TEXT_LIMIT)}"
            if status.error
            else " (the server gave no error text)"
        )
        super().__init__(f"job {job_id!r} failed{reason}")

    def __reduce__(self) -> tuple[type[JobFailed], tuple[str, Status]]:
        return (type(self), (self.job_id, self.status))


class JobTimeout(AsyncPollError, TimeoutError):
    """The job did not reach a terminal state before its deadline.

    Attributes:
        job_id: the job's id.
        timeout: the deadline that passed, in seconds after the job was added.
        status: the last ``Status`` read before the deadline, or None.
    """

    def __init__(self, job_id: str, timeout: float, status: Status | None) -> None:
        self.job_id = job_id
        self.timeout = timeout
        self.status = status
        last = f"; last state {status.state.value}" if status is not None else "; never read"
        super().__init__(
            f"job {job_id!r} did not finish within {timeout:g} s{last}"
            " (pass a larger timeout= to wait longer)"
        )

    def __reduce__(self) -> tuple[type[JobTimeout], tuple[str, float, Status | None]]:
        return (type(self), (self.job_id, self.timeout, self.status))


class JobStalled(JobTimeout):
    """The job's state and progress did not change for ``stall_timeout`` seconds.

    Raised only with ``fail_on_stall=True``; the job ends TIMED_OUT.
    """

    def __init__(self, job_id: str, timeout: float, status: Status | None) -> None:
        super().__init__(job_id, timeout, status)
        state = status.state.value if status is not None else "never read"
        self.args = (
            f"job {job_id!r} made no progress for {timeout:g} s (still {state}); "
            "raise stall_timeout= or leave fail_on_stall off to keep waiting",
        )


class JobCancelled(AsyncPollError):
    """The job was cancelled before it finished.

    Attributes:
        job_id: the job's id.
        reason: why, in a few words (a server's long text keeps its beginning and end).
        status: for a job cancelled on the server, the ``Status`` that said so (its
            ``error`` holds the server's whole text); else None.
    """

    def __init__(
        self, job_id: str, reason: str = "cancelled by the caller", status: Status | None = None
    ) -> None:
        self.job_id = job_id
        self.reason = reason
        self.status = status
        super().__init__(f"job {job_id!r} was cancelled: {printable(reason)}")

    def __reduce__(self) -> tuple[type[JobCancelled], tuple[str, str, Status | None]]:
        return (type(self), (self.job_id, self.reason, self.status))


class PollError(AsyncPollError):
    """Polling the job failed, so its outcome is unknown.

    Raised for a non-retryable HTTP status (401, 403, 404, 410 and other 4xx), after
    ``max_errors`` transient failures in a row, or when a reader or ``check=`` callable
    says the response can never be read.

    Attributes:
        message: what went wrong, control characters escaped (``\\n`` for a line break).
        job_id: the job's id (None until the poller fills it in).
        url: the status URL, credentials redacted, or None for a ``check=`` job.
        http_status: the last HTTP status code received, or None.
        cause: the last exception behind the failure, or None.
        status: the last ``Status`` read before the failure, or None.
    """

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        url: str | None = None,
        http_status: int | None = None,
        cause: BaseException | None = None,
        status: Status | None = None,
    ) -> None:
        self.message = message = printable(message)
        self.job_id = job_id
        self.url = url
        self.http_status = http_status
        self.cause = cause
        self.status = status
        super().__init__(message)

    def __str__(self) -> str:
        message = printable(self.message)  # also when code set it after __init__
        url = None if self.url is None else printable(self.url)
        if self.job_id is not None and url is not None:
            return f"job {self.job_id!r} ({url}): {message}"
        if self.job_id is not None:
            return f"job {self.job_id!r}: {message}"
        if url is not None:
            return f"{url}: {message}"
        return message

    def __reduce__(self) -> Any:
        # Keyword-only attributes do not survive the default args-based pickling.
        return (_rebuild_poll_error, (self.message, self.__dict__.copy()))


def _rebuild_poll_error(message: str, state: dict[str, Any]) -> PollError:
    error = PollError(message)
    error.__dict__.update(state)
    return error


class SubmitError(PollError):
    """``submit()``'s create request failed; ``response`` holds what the server said."""


class InvalidStateError(AsyncPollError, RuntimeError):
    """A handle was asked for its result or exception before the job finished."""
