"""Pure policy: what an HTTP status code means for a poll, and when to poll next.

Nothing here awaits or reads a clock; the engine passes in every value it needs.
"""

from __future__ import annotations

import enum
import random

from ._schedule import Schedule

__all__ = ["Verdict", "checked_delay", "classify", "next_delay"]


class Verdict(enum.Enum):
    """What a response's HTTP status code means for the job."""

    READ = "read"  # 2xx: hand the response to the reader
    THROTTLED = "throttled"  # 429: back-pressure; wait, never counted as a failure
    TRANSIENT = "transient"  # 5xx, 408: count against the error budget and retry
    FATAL = "fatal"  # any other status: end the job with a PollError at once


def classify(status_code: int) -> Verdict:
    """The ``Verdict`` for an HTTP status code."""
    if 200 <= status_code < 300:
        return Verdict.READ
    if status_code == 429:
        return Verdict.THROTTLED
    if status_code >= 500 or status_code == 408:
        return Verdict.TRANSIENT
    return Verdict.FATAL


def next_delay(schedule: Schedule, n: int, hint: float | None, rng: random.Random) -> float:
    """Seconds until the next poll: the schedule's delay, raised to the server's hint.

    Args:
        schedule: the schedule in force (the poll schedule, or the retry schedule
            after a failure).
        n: polls made so far, or failures in a row for the retry schedule.
        hint: the server's ``Retry-After`` in seconds, or None.
        rng: randomness for jitter.
    """
    delay = checked_delay(schedule, n, rng)
    if hint is not None and hint > delay:
        return hint
    return delay


def checked_delay(schedule: Schedule, n: int, rng: random.Random) -> float:
    """``schedule.delay(n, rng)``, refused unless it is a number of seconds >= 0.

    Raises:
        ValueError: the schedule returned NaN, a negative number or a non-number; a
            bad due time must cost its job, never the scheduler's heap.
    """
    delay = schedule.delay(n, rng)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0.0:
        raise ValueError(
            f"schedule {schedule!r} returned {delay!r} for n={n}; a delay must be a number "
            "of seconds >= 0"
        )
    return float(delay)
