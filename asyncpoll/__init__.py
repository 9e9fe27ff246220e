"""asyncpoll: watch many long-running remote jobs at once.

One ``TaskPoller`` keeps a registry of in-flight jobs, checks the due ones
concurrently on one shared HTTP client behind a token-bucket rate limit, and
resolves each job's awaitable handle the moment it reaches a terminal state.
"""

from typing import TYPE_CHECKING

from ._blocking import BlockingHandle, BlockingPoller, poll_blocking, poll_many_blocking
from ._bus import EventStream
from ._clock import AnyioClock, Clock
from ._codec import TokenError
from ._defaultreader import DefaultReader
from ._errors import (
    AsyncPollError,
    InvalidStateError,
    JobCancelled,
    JobFailed,
    JobStalled,
    JobTimeout,
    PollError,
    SubmitError,
)
from ._events import EventKind, JobEvent
from ._handle import JobHandle
from ._jsonreader import JsonReader
from ._limiter import Limiter
from ._poller import PollerStatistics, TaskPoller
from ._ratelimit import RateLimit, TokenBucket
from ._reader import Reader
from ._record import Submission
from ._response import Response
from ._schedule import Backoff, Fixed, Schedule, backoff, fixed
from ._shortcuts import poll, poll_many
from ._sqlite import SQLiteStore
from ._status import JobState, Status
from ._store import JobStore, MemoryStore, StoredJob, open_store
from ._views import PollerSummary
from ._vocab import DEFAULT_STATES

if TYPE_CHECKING:
    from ._redis import RedisStore

__version__ = "0.1.0"

__all__ = [
    "AnyioClock",
    "AsyncPollError",
    "Backoff",
    "BlockingHandle",
    "BlockingPoller",
    "Clock",
    "DEFAULT_STATES",
    "DefaultReader",
    "EventKind",
    "EventStream",
    "Fixed",
    "InvalidStateError",
    "JobCancelled",
    "JobEvent",
    "JobFailed",
    "JobHandle",
    "JobStalled",
    "JobState",
    "JobStore",
    "JobTimeout",
    "JsonReader",
    "Limiter",
    "MemoryStore",
    "PollError",
    "PollerStatistics",
    "PollerSummary",
    "RateLimit",
    "Reader",
    "RedisStore",
    "Response",
    "SQLiteStore",
    "Schedule",
    "Status",
    "StoredJob",
    "Submission",
    "SubmitError",
    "TaskPoller",
    "TokenBucket",
    "TokenError",
    "backoff",
    "fixed",
    "open_store",
    "poll",
    "poll_blocking",
    "poll_many",
    "poll_many_blocking",
]


def __getattr__(name: str) -> object:
    # RedisStore needs the redis extra: imported on first use, not with asyncpoll.
    if name == "RedisStore":
        from ._redis import RedisStore

        return RedisStore
    raise AttributeError(f"module 'asyncpoll' has no attribute {name!r}")
