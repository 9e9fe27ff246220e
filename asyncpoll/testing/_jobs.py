"""The fake API's jobs and request log: plain values and the arithmetic of a job's life.

A job's life is a function of the clock: created at ``created_at``, pending until
``starts_at``, running (its progress growing linearly) until ``finishes_at``, then
succeeded or failed as drawn when it was made; a cancel before then ends it at that
moment. Nothing runs in the background, so a virtual clock moves jobs along exactly as a
real one does. No event loop and no HTTP here.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any, Literal, TypeAlias

import attrs

__all__ = [
    "Duration",
    "FakeJob",
    "JobPhase",
    "JobStore",
    "Outcome",
    "RecordedRequest",
    "draw_seconds",
]

#: A duration in seconds: fixed, a ``(low, high)`` uniform range, or drawn by a function
#: of the fake API's ``random.Random``.
Duration: TypeAlias = float | tuple[float, float] | Callable[[random.Random], float]

#: How a job ends (or will end, unless cancelled first).
Outcome = Literal["succeeded", "failed", "cancelled"]

#: Where a job is at a given time.
JobPhase = Literal["pending", "running", "succeeded", "failed", "cancelled"]


def draw_seconds(spec: Duration, rng: random.Random, name: str) -> float:
    """Draw a number of seconds from ``spec`` (see ``Duration``); ``name`` is for errors.

    Raises:
        ValueError: the drawn value is negative or not finite.
        TypeError: ``spec`` is none of the accepted forms.
    """
    if callable(spec):
        value = float(spec(rng))
    elif isinstance(spec, tuple):
        low, high = spec
        value = rng.uniform(float(low), float(high))
    elif isinstance(spec, (int, float)) and not isinstance(spec, bool):
        value = float(spec)
    else:
        raise TypeError(
            f"{name}= must be seconds, a (low, high) range or a callable(rng), got {spec!r}"
        )
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name}= gave {value!r} seconds; it must be a finite number >= 0")
    return value


def check_duration(spec: Duration, name: str) -> None:
    """Refuse a ``Duration`` that cannot be drawn from, before any job is made."""
    if callable(spec):
        return
    if isinstance(spec, tuple):
        if len(spec) != 2 or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in spec
        ):
            raise TypeError(f"{name}= as a range must be (low, high) seconds, got {spec!r}")
        low, high = spec
        if not (0 <= low <= high and math.isfinite(high)):
            raise ValueError(f"{name}= must be a range 0 <= low <= high, got {spec!r}")
        return
    draw_seconds(spec, random.Random(0), name)


@attrs.frozen
class FakeJob:
    """A snapshot of one job of the fake API; times are its clock's readings, in seconds.

    Attributes:
        id: the job's id, as the API hands it out.
        created_at: when it was created.
        starts_at: when it leaves the pending phase and starts running.
        finishes_at: when it would end on its own (``starts_at`` plus its duration).
        outcome: how it ends: ``"succeeded"``, ``"failed"`` or ``"cancelled"``.
        finished_at: when it ended or will end: ``finishes_at``, or the time of the
            cancel that stopped it.
        input: the JSON body of the create request (None for ``add_job`` without one).
        total_pages: the page count the page-counting shapes report.
        index: the job's number in the order the API made them, from 1.
    """

    id: str
    created_at: float
    starts_at: float
    finishes_at: float
    outcome: Outcome
    finished_at: float
    input: Any = attrs.field(eq=False)
    total_pages: int
    index: int

    def phase(self, now: float) -> JobPhase:
        """Where the job is at ``now``: pending, running, or how it ended."""
        if now >= self.finished_at:
            return self.outcome
        if now < self.starts_at:
            return "pending"
        return "running"

    def progress(self, now: float) -> float:
        """The share of the work done at ``now``, 0.0 to 1.0 (1.0 once it succeeded)."""
        if self.phase(now) == "succeeded":
            return 1.0
        span = self.finishes_at - self.starts_at
        if now <= self.starts_at or span <= 0:
            return 0.0
        return min(1.0, (min(now, self.finished_at) - self.starts_at) / span)

    def done(self, now: float) -> bool:
        """True once the job has ended (at ``finished_at``)."""
        return now >= self.finished_at


@attrs.frozen
class RecordedRequest:
    """One request the fake API received, and what it answered.

    Attributes:
        time: the clock reading when the request arrived, in seconds.
        method: the HTTP method, upper case.
        path: the URL path, e.g. ``"/jobs/job-1"``.
        query: the query string, undecoded, without ``?`` (``""`` when none).
        headers: the request headers, names in lower case.
        json: the parsed JSON body, or None (no body, or not JSON).
        status_code: the status answered, or None when the connection was dropped.
        job_id: the job the request was about, when the route names one.
        fault: the simulated fault applied: ``"drop"``, ``"error"``, ``"slow"``,
            ``"throttled"``, ``"unauthorized"``, or None.
    """

    time: float
    method: str
    path: str
    query: str
    headers: Mapping[str, str] = attrs.field(eq=False)
    json: Any = attrs.field(eq=False)
    status_code: int | None
    job_id: str | None = None
    fault: str | None = None


class JobStore:
    """The fake API's jobs, made with draws from one ``random.Random``.

    Every job draws, in order, its pending time, its duration, whether it fails and its
    page count, whatever the shape, so a seed gives the same jobs in every shape; ids
    that need randomness (Celery's UUIDs) draw from ``id_rng``.
    """

    def __init__(
        self,
        *,
        rng: random.Random,
        duration: Duration,
        pending: Duration,
        failure_rate: float,
        make_id: Callable[[int, random.Random], str],
        id_rng: random.Random,
    ) -> None:
        self.rng = rng
        self.id_rng = id_rng
        self.duration = duration
        self.pending = pending
        self.failure_rate = failure_rate
        self.make_id = make_id
        self.jobs: dict[str, FakeJob] = {}

    def create(
        self,
        now: float,
        body: Any = None,
        *,
        job_id: str | None = None,
        duration: float | None = None,
        pending: float | None = None,
        fail: bool | None = None,
    ) -> FakeJob:
        """Make a job at ``now``; the keyword arguments override the drawn values."""
        rng = self.rng
        drawn_pending = draw_seconds(self.pending, rng, "pending")
        drawn_duration = draw_seconds(self.duration, rng, "duration")
        drawn_fail = rng.random() < self.failure_rate
        pages = rng.randint(1, 12)
        index = len(self.jobs) + 1
        if job_id is None:
            job_id = self.make_id(index, self.id_rng)
            while job_id in self.jobs:  # an id taken by add_job(job_id=...)
                job_id = f"{job_id}-{index}"
        elif job_id in self.jobs:
            raise ValueError(f"the fake job API already has a job {job_id!r}")
        starts = now + (drawn_pending if pending is None else pending)
        ends = starts + (drawn_duration if duration is None else duration)
        fails = drawn_fail if fail is None else fail
        job = FakeJob(
            id=job_id,
            created_at=now,
            starts_at=starts,
            finishes_at=ends,
            outcome="failed" if fails else "succeeded",
            finished_at=ends,
            input=body,
            total_pages=pages,
            index=index,
        )
        self.jobs[job_id] = job
        return job

    def cancel(
        self, job_id: str, now: float, *, after: float = 0.0, outcome: Outcome = "cancelled"
    ) -> bool:
        """Cancel the job at ``now``; False when it had already ended.

        ``after``: the job ends ``after`` seconds later (a system that winds a job down,
        ``cancelling`` meanwhile); ``outcome``: how it ends (a system whose stop ends a
        job ``failed``).
        """
        job = self.jobs[job_id]
        if job.done(now):
            return False
        self.jobs[job_id] = attrs.evolve(job, outcome=outcome, finished_at=now + after)
        return True

    def stopping(self, job: FakeJob, now: float) -> bool:
        """True while a cancel given a wind-down (``cancel(after=...)``) has not ended it."""
        return job.outcome == "cancelled" and not job.done(now)

    def delete(self, job_id: str) -> None:
        """Forget the job (its record is deleted on the server)."""
        del self.jobs[job_id]


def uuid_id(index: int, rng: random.Random) -> str:
    """A random UUID (version 4) drawn from ``rng``: Celery's task ids."""
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def hex_id(prefix: str, length: int) -> Callable[[int, random.Random], str]:
    """Ids of ``prefix`` and ``length`` lower-case hex digits drawn from the id ``rng``."""

    def make(index: int, rng: random.Random) -> str:
        return prefix + "".join(rng.choice("0123456789abcdef") for _ in range(length))

    return make


def replicate_id(index: int, rng: random.Random) -> str:
    """26 lower-case letters and digits drawn from ``rng``: Replicate's prediction ids."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(26))


def ray_id(index: int, rng: random.Random) -> str:
    """``raysubmit_`` and 16 letters and digits drawn from ``rng``: Ray's submission ids."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "raysubmit_" + "".join(rng.choice(alphabet) for _ in range(16))
