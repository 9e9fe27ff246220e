"""The values ``decide()`` works with: what happened to a job, what comes next, the rules.

    Outcome  = Answered(response, hint) | Checked(status) | Failed(error, fatal)
             | CutShort(limit)
    Decision = Again(due, kind)            send the job's next request at ``due``
             | Rekey(job_id, url, due)     a resubmit created a new job: follow it
             | Finish(state, result, error)

Outcomes and decisions are named tuples: immutable, and built twice per poll at half
the cost of a frozen attrs class. Later edges add outcomes here (a pushed webhook
update, a batch answer) without touching the engine.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, NamedTuple

import attrs

from ._policy import Pacing
from ._reader import Reader
from ._response import Response
from ._schedule import Schedule
from ._status import JobState, Status

__all__ = [
    "Again",
    "Answered",
    "Checked",
    "CutShort",
    "Decision",
    "Failed",
    "Finish",
    "Outcome",
    "Rekey",
    "Rules",
]


# ----------------------------------------------------------------------- outcomes


class Answered(NamedTuple):
    """The server answered the job's request; ``hint`` is its pacing hint (capped)."""

    response: Response
    hint: float | None = None


class Checked(NamedTuple):
    """The job's ``check=`` callable returned a status."""

    status: Status


class Failed(NamedTuple):
    """The request failed without an answer; ``fatal`` failures end the job at once."""

    error: BaseException
    fatal: bool = False


class CutShort(NamedTuple):
    """The request got no complete answer within ``limit`` seconds (request_timeout)."""

    limit: float


Outcome = Answered | Checked | Failed | CutShort


# ----------------------------------------------------------------------- decisions


class Again(NamedTuple):
    """Send the job's next request (``record.action``) at ``due``.

    Attributes:
        due: when, on the poller's clock.
        kind: why: ``"poll"`` (a live status), ``"throttled"``, ``"transient"``,
            ``"redirect"``, ``"fetch"`` or ``"resubmit"``.
        progressed: the job's state or progress changed (progress callbacks run).
        stalled: the job has just been found stalled (stall callbacks run).
    """

    due: float
    kind: str = "poll"
    progressed: bool = False
    stalled: bool = False


class Rekey(NamedTuple):
    """A resubmit created a new job: follow ``job_id`` at ``url`` from ``due`` on.

    ``from_template``: the poller's ``status_url`` template gave the URL, so its origin
    may receive credentials.
    """

    job_id: str
    url: str
    due: float
    http_status: int
    from_template: bool


class Finish(NamedTuple):
    """The job is over: resolve its handle with ``state`` and ``result`` or ``error``."""

    state: JobState
    result: Any = None
    error: BaseException | None = None
    stalled: bool = False


Decision = Again | Rekey | Finish


@attrs.frozen
class Rules:
    """The poller's settings ``decide()`` reads.

    Attributes:
        reader: turns a 2xx status response into a ``Status``.
        claims: the reader's ``claims(code)``: non-2xx codes it reads, or None.
        retry_schedule: delays after failures, counted in failures in a row.
        pacing: clamps and hint caps for the next delay.
        max_errors: transient failures in a row that end a job.
        allowed_origins: other origins server-supplied URLs may point to.
        fail_on_stall: whether a stalled job ends TIMED_OUT.
        status_url: the poller's status URL template, or None.
        absolute: resolves a URL against the poller's base URL.
        rng: randomness for schedule jitter.
        follows: whether the poller follows a job of that id (for answers naming
            another job), or None.
    """

    reader: Reader
    claims: Callable[[int], bool] | None
    retry_schedule: Schedule
    pacing: Pacing
    max_errors: int
    allowed_origins: frozenset[tuple[str, str, int]]
    fail_on_stall: bool = False
    status_url: str | None = None
    absolute: Callable[[str], str] = str
    rng: random.Random = attrs.field(factory=random.Random, eq=False)
    follows: Callable[[str], bool] | None = None
