"""Values that describe a job: its state and one reading of its status."""

from __future__ import annotations

import enum
from typing import Any

import attrs

__all__ = ["JobState", "Status"]


class JobState(enum.Enum):
    """Where a job stands.

    ``PENDING`` and ``RUNNING`` are the live states; the other five are terminal: once a
    job's handle reaches one of them it never changes again.
    """

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    TIMED_OUT = "timed_out"
    ERRORED = "errored"

    @property
    def is_terminal(self) -> bool:
        """True for every state a job never leaves."""
        return self not in _LIVE

    def __repr__(self) -> str:
        return f"JobState.{self.name}"


_LIVE = frozenset({JobState.PENDING, JobState.RUNNING})


def _check_progress(instance: Status, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"Status.progress must be a number from 0 to 1 or None, got {value!r}")


def _check_retry_after(
    instance: Status, attribute: attrs.Attribute[Any], value: float | None
) -> None:
    if value is not None and not value >= 0.0:  # also refuses NaN
        raise ValueError(f"Status.retry_after must be >= 0 seconds or None, got {value!r}")


@attrs.frozen
class Status:
    """One reading of a job's status, as a reader or a ``check=`` callable returns it.

    Args:
        state: the job's state as the server reports it.
        progress: how far along the job is, from 0.0 to 1.0, or None when unknown.
        result: for a succeeded job, what awaiting its handle returns.
        error: for a failed job, the server's error text.
        retry_after: the server's hint, in seconds, for when to ask again; the next poll
            waits at least this long.
        http_status: the HTTP status code of the response this was read from, if any.
        raw: what the status was read from (for HTTP, the parsed JSON body).
        result_url: a link to the result document (a ``303 See Other`` target, a
            ``resultUrl`` field); with ``fetch_result=True`` the poller GETs it.
        unknown_word: a state word the reader did not know and read as running; the
            poller names it again in the warning it logs when the job stalls.
    """

    state: JobState = attrs.field(validator=attrs.validators.instance_of(JobState))
    progress: float | None = attrs.field(default=None, validator=_check_progress)
    result: Any = None
    error: str | None = None
    retry_after: float | None = attrs.field(default=None, validator=_check_retry_after)
    http_status: int | None = None
    raw: Any = attrs.field(default=None, repr=False)
    result_url: str | None = None
    unknown_word: str | None = attrs.field(default=None, repr=False)
