"""``TaskPoller``: the engine. One registry, one due-time heap, one pool of workers.

The path a job takes::

    add() -> registry (job id -> handle) -> heap of (due, seq, handle)
      scheduler: sleeps until the earliest due time (or until add() brings an earlier
      one), pops every due job as a batch and sends it to the ready stream
      -> one of max_concurrency workers: rate limiter slot, then one status request
         (GET on the shared client, or the job's check=) bounded by a deadline
      -> reader: Response -> Status
      -> terminal: _finish() resolves the handle once, wakes as_completed/gather,
         queues callbacks; not terminal: back into the heap at now + delay.

Jobs are data in the heap, not tasks: ten thousand jobs in flight are ten thousand
heap entries and ``max_concurrency`` worker tasks. Every wait goes through one clock.
"""

from __future__ import annotations

import collections
import datetime
import email.utils
import enum
import functools
import heapq
import inspect
import itertools
import logging
import math
import random
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote, urlsplit

import anyio
import attrs
import sniffio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._clock import AnyioClock, Clock
from ._errors import (
    AsyncPollError,
    JobCancelled,
    JobFailed,
    JobStalled,
    JobTimeout,
    PollError,
    SubmitError,
)
from ._handle import Callback, Check, JobHandle, Submission
from ._hosts import HostGate, parse_budget
from ._picktransport import make_transport
from ._policy import Pacing, Verdict, checked_delay, classify, header_hint
from ._ratelimit import Limiter, RateLimit
from ._reader import DefaultReader, Reader
from ._redact import SECRET_HEADERS, redact_headers, redact_url
from ._response import Response, excerpt
from ._schedule import Backoff, Fixed, Schedule, backoff
from ._status import JobState, Status
from ._submit import CreateRequest, discover
from ._transport import DEFAULT_MAX_BODY, Transport, TransportFailure
from ._urls import check_server_url, normalize_origins, same_origin

__all__ = ["AsCompleted", "PollerStatistics", "TaskPoller", "poll", "poll_many"]

logger = logging.getLogger("asyncpoll")


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET

#: Largest result document ``fetch_result=True`` reads, in decoded bytes.
DEFAULT_MAX_RESULT_BODY: Final = 64 * 1024 * 1024
#: Redirects of one status URL followed in a row before giving up.
MAX_REDIRECTS: Final = 5
#: The headers a server paces clients with: hints (Retry-After) and budgets (RateLimit-*).
PACING_HEADERS: Final = (
    "retry-after",
    "retry-after-ms",
    "ratelimit-remaining",
    "ratelimit-reset",
    "x-ratelimit-remaining",
    "x-ratelimit-reset",
)
#: The least time between two scheduler wake-ups that each find jobs due, in seconds.
SCHEDULER_TICK: Final = 0.001
#: A worker taking queued jobs back to back yields to the event loop after this many.
WORKER_YIELD_EVERY: Final = 8
#: How long a 429 without a hint pauses its host, in seconds.
DEFAULT_THROTTLE_PAUSE: Final = 1.0

#: How a healthy job is polled unless told otherwise.
DEFAULT_SCHEDULE: Final = backoff(initial=1.0, factor=1.5, max=30.0, jitter=0.1)
#: How a failed status request (a transient error or a 429 without a hint) is retried.
DEFAULT_RETRY_SCHEDULE: Final = backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.1)


class _Lifecycle(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


@attrs.frozen
class PollerStatistics:
    """A snapshot of a poller's counters, from ``TaskPoller.statistics()``.

    Attributes:
        active: jobs in flight.
        finished: jobs that reached a terminal state, by state.
        requests: status requests made (``check=`` calls included).
        transient_errors: status requests that failed and were retried or counted.
        throttled: 429 responses received.
        callback_errors: callbacks that raised.
        waiting_for_rate_limit: requests waiting for a rate-limit slot right now.
    """

    active: int
    finished: Mapping[JobState, int]
    requests: int
    transient_errors: int
    throttled: int
    callback_errors: int
    waiting_for_rate_limit: int


def _check_seconds(name: str, value: float | None, *, allow_none: bool = True) -> float | None:
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"{name} must be a number of seconds{' or None' * allow_none}, got {value!r}"
        )
    if not (value > 0 and not math.isnan(value)):
        raise ValueError(f"{name} must be > 0 seconds, got {value!r}")
    return float(value)


def _coerce_limit(host: object, limit: object) -> RateLimit:
    coerced = RateLimit.coerce(limit)  # type: ignore[arg-type]
    if coerced is None:
        raise TypeError(f"rate_limit[{host!r}] must be a RateLimit or a number, not None")
    return coerced


def _wall_clock_of(date: str | None) -> float | None:
    """Epoch seconds of an HTTP ``Date`` header: the server's clock, never ours."""
    if not date:
        return None
    try:
        when = email.utils.parsedate_to_datetime(date)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.timezone.utc)
    return when.timestamp()


def _host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def _native_cancel_count() -> Callable[[], int] | None:
    """``Task.cancelling`` of the running asyncio task (Python 3.11+), else None.

    A worker's cancel scope spans many polls; user code that cancels its own task and
    swallows the error leaves the count raised, which would stop the scope from
    recognising its own later cancellations as its own.
    """
    if sniffio.current_async_library() != "asyncio":
        return None
    import asyncio

    task = asyncio.current_task()
    return getattr(task, "cancelling", None)


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _check_schedule(name: str, value: object) -> Schedule:
    if type(value) in (Fixed, Backoff):
        return value  # type: ignore[return-value]  # the common case, without a Protocol check
    if not isinstance(value, Schedule):
        raise TypeError(
            f"{name} must be a schedule such as asyncpoll.fixed(2.0) or asyncpoll.backoff(), "
            f"got {value!r}"
        )
    return value


def _check_callback(name: str, value: object) -> None:
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be a callable taking the JobHandle, got {value!r}")


def _job_key(job_id: object) -> str:
    if isinstance(job_id, str):
        if not job_id:
            raise ValueError("job_id must be a non-empty string")
        return job_id
    if isinstance(job_id, int) and not isinstance(job_id, bool):
        return str(job_id)
    raise TypeError(f"job_id must be a string (or an int), got {job_id!r}")


class TaskPoller:
    """Polls many remote jobs at once until each reaches a terminal state.

    Use it as an async context manager; leaving the block normally waits until every
    added job is terminal, leaving it with an exception cancels the unfinished ones::

        async with asyncpoll.TaskPoller(status_url="https://api.example.com/jobs/{job_id}",
                                        rate_limit=asyncpoll.RateLimit(10)) as poller:
            report = await poller.add("123")

    Args:
        status_url: a URL template with ``{job_id}``, used by ``add(job_id)`` without
            ``url=``; may be relative to ``base_url``.
        headers: sent with every status request (credentials are redacted in reprs).
        rate_limit: a ``RateLimit``, a number of requests per second, or None (no
            limit). Shared by every status request of the poller.
        max_concurrency: status requests in flight at once (also the connection pool
            size of a client made by the poller).
        schedule: when to poll a healthy job (default ``backoff(1.0, 1.5, 30.0)``).
        retry_schedule: when to retry after a failed status request or a 429 without
            a hint, counted in failures in a row (default ``backoff(1.0, 2.0, 30.0)``).
        timeout: each job's deadline in seconds after it is added (None: none).
        on_done: called with each handle when its job finishes (sync or async).
        on_progress: called with a handle when its job's state or progress changes.
        client: an ``httpx.AsyncClient`` (over any httpx transport) or an
            ``aiohttp.ClientSession`` (the native aiohttp path, asyncio only) that the
            caller owns; the poller never closes it.
        base_url: base for relative URLs of a client the poller makes.
        reader: turns a 2xx response into a ``Status`` (default ``DefaultReader()``).
        max_errors: transient failures in a row that end a job ERRORED (the
            ``max_errors``-th one does); 429s never count.
        request_timeout: the longest one status request may take as a whole, in
            seconds (None: bounded only by the job's deadline).
        clock: the clock every wait goes through (default: the event loop's).
        min_interval, max_interval: bounds on the gap between two polls of a job, in
            seconds: the next poll waits clamp(max(server hint, schedule delay)).
        max_retry_after: the longest server hint honoured, in seconds (default 300);
            longer ones are capped and logged once per host.
        hint_headers: extra response headers that carry a poll-after hint (names ending
            in ``-ms`` are milliseconds), read before ``Retry-After``.
        allowed_origins: origins (``"https://cdn.example.com"``) besides a job's own that
            server-supplied URLs may point to; credentials are never sent there.
        secret_headers: header names, besides the usual credential headers, never sent
            to another origin and redacted in reprs.
        fetch_result: GET the result document a succeeded job links to (a 303, a
            ``resultUrl``) and resolve with it: parsed JSON, else bytes.
        max_body, max_result_body: the largest status body and result document read,
            in decoded bytes (defaults 1 MiB and 64 MiB).
        resubmit: how often ``submit()`` sends a job's create request again when the
            job ends FAILED (default 0).
        stall_timeout: report a job whose state and progress have not changed for this
            many seconds (a WARNING and ``on_stall``); None: never.
        fail_on_stall: end a stalled job TIMED_OUT with ``JobStalled``.
        on_stall: called with a handle when its job stalls.
        cancel_method, cancel_url: what ``cancel_remote()`` sends (default ``DELETE``)
            and where (a template with ``{job_id}``; default: the status URL).
        transport: the client the poller makes: ``"httpx"`` (the default, httpx's own
            transport), ``"httpx-aiohttp"`` (httpx over aiohttp) or ``"aiohttp"`` (an
            ``aiohttp.ClientSession``, no httpx objects per poll: the fastest). Both
            aiohttp kinds need the ``aiohttp`` extra and run on asyncio only; on trio
            they fall back to httpx's own transport with a warning. A ``client=`` is
            used as it is, whatever this says.

    A ``rate_limit`` mapping (``{"api.example.com": RateLimit(10), "*": 2.0}``) gives each
    host its own bucket ("*" for hosts not listed). Whatever the limits, a 429 (or a 503
    with ``Retry-After``) pauses every request to its host and lowers that host's rate.
    """

    def __init__(
        self,
        status_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        rate_limit: RateLimit | float | Mapping[str, RateLimit | float] | None = None,
        max_concurrency: int = 64,
        schedule: Schedule = DEFAULT_SCHEDULE,
        retry_schedule: Schedule = DEFAULT_RETRY_SCHEDULE,
        timeout: float | None = 3600.0,
        on_done: Callback | None = None,
        on_progress: Callback | None = None,
        client: Any = None,
        base_url: str | None = None,
        reader: Reader | None = None,
        max_errors: int = 5,
        request_timeout: float | None = 30.0,
        clock: Clock | None = None,
        min_interval: float = 0.0,
        max_interval: float | None = None,
        max_retry_after: float = 300.0,
        hint_headers: Iterable[str] = (),
        allowed_origins: Iterable[str] = (),
        secret_headers: Iterable[str] = (),
        fetch_result: bool = False,
        max_body: int = DEFAULT_MAX_BODY,
        max_result_body: int = DEFAULT_MAX_RESULT_BODY,
        resubmit: int = 0,
        stall_timeout: float | None = None,
        fail_on_stall: bool = False,
        on_stall: Callback | None = None,
        cancel_method: str = "DELETE",
        cancel_url: str | None = None,
        transport: str = "httpx",
    ) -> None:
        if status_url is not None and (
            not isinstance(status_url, str) or "{job_id}" not in status_url
        ):
            raise ValueError(
                f"status_url must be a URL template containing '{{job_id}}', got {status_url!r}"
            )
        self._status_url = status_url
        self._headers = dict(headers or {})
        self._host_limits: dict[str, RateLimit] | None = None
        self._rate_limit: RateLimit | None = None
        if isinstance(rate_limit, Mapping):
            self._host_limits = {
                str(host).lower(): _coerce_limit(host, limit) for host, limit in rate_limit.items()
            }
        else:
            self._rate_limit = RateLimit.coerce(rate_limit)
        _check_seconds("max_retry_after", max_retry_after, allow_none=False)
        if (
            isinstance(min_interval, bool)
            or not isinstance(min_interval, (int, float))
            or not (0 <= min_interval < math.inf)
        ):
            raise ValueError(f"min_interval must be a number of seconds >= 0, got {min_interval!r}")
        _check_seconds("max_interval", max_interval)
        if max_interval is not None and max_interval < min_interval:
            raise ValueError(
                f"max_interval ({max_interval!r}) must be >= min_interval ({min_interval!r})"
            )
        self._pacing = Pacing(
            float(min_interval),
            math.inf if max_interval is None else float(max_interval),
            float(max_retry_after),
        )
        if isinstance(hint_headers, str):
            raise TypeError("hint_headers must be a list of header names, not one string")
        self._hint_headers = tuple(str(name).lower() for name in hint_headers)
        #: Every header that can carry a hint or a budget (see _feedback).
        self._pacing_headers = frozenset((*self._hint_headers, *PACING_HEADERS))
        self._allowed_origins = normalize_origins(
            [allowed_origins] if isinstance(allowed_origins, str) else allowed_origins
        )
        self._fetch_result = bool(fetch_result)
        self._max_result_body = _check_count("max_result_body", max_result_body)
        if isinstance(resubmit, bool) or not isinstance(resubmit, int) or resubmit < 0:
            raise ValueError(f"resubmit must be a whole number >= 0, got {resubmit!r}")
        self._resubmit = resubmit
        self._stall_timeout = _check_seconds("stall_timeout", stall_timeout)
        self._fail_on_stall = bool(fail_on_stall)
        _check_callback("on_stall", on_stall)
        self._on_stall = on_stall
        if not isinstance(cancel_method, str) or not cancel_method.isalpha():
            raise ValueError(
                f"cancel_method must be an HTTP method such as 'DELETE', got {cancel_method!r}"
            )
        self._cancel_method = cancel_method.upper()
        if cancel_url is not None and (
            not isinstance(cancel_url, str) or "{job_id}" not in cancel_url
        ):
            raise ValueError(
                f"cancel_url must be a URL template containing '{{job_id}}', got {cancel_url!r}"
            )
        self._cancel_url = cancel_url
        self._secret_headers = SECRET_HEADERS | {str(n).lower() for n in secret_headers}
        self._gates: dict[str, HostGate] = {}  # host -> admission and back-pressure
        self._warned_hints: set[str] = set()  # hosts whose absurd hints were logged
        self._max_concurrency = _check_count("max_concurrency", max_concurrency)
        self._schedule = _check_schedule("schedule", schedule)
        self._retry_schedule = _check_schedule("retry_schedule", retry_schedule)
        self._timeout = _check_seconds("timeout", timeout)
        _check_callback("on_done", on_done)
        _check_callback("on_progress", on_progress)
        self._on_done = on_done
        self._on_progress = on_progress
        self._max_errors = _check_count("max_errors", max_errors)
        self._request_timeout = _check_seconds("request_timeout", request_timeout)
        if reader is not None and not callable(reader):
            raise TypeError(f"reader must be a callable (Response) -> Status, got {reader!r}")
        self._reader: Reader = reader if reader is not None else DefaultReader()
        self._claims: Callable[[int], bool] | None = getattr(self._reader, "claims", None)
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must have now() and sleep_until(), got {clock!r}")
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._transport: Transport = make_transport(
            transport,
            client,
            base_url=base_url,
            headers=self._headers,
            request_timeout=request_timeout,
            max_connections=max_concurrency,
            max_body=_check_count("max_body", max_body),
            secret_headers=secret_headers,
        )
        self._limiter: Limiter | None = (
            Limiter(self._rate_limit, self._clock) if self._rate_limit is not None else None
        )
        self._rng = random.Random()
        self._loop_time: Callable[[], float] = anyio.current_time
        self._lifecycle = _Lifecycle.UNOPENED

        self._active: dict[str, JobHandle] = {}  # job id -> handle, jobs in flight
        self._handles: dict[str, JobHandle] = {}  # job id -> latest handle, for lookups
        self._finished: list[JobHandle] = []  # handles in the order they finished
        self._finished_base = 0  # finish number of _finished[0]; discard_finished() moves it
        # A min-heap of (due, seq) and the handle of each seq. Tuples of numbers only,
        # which the garbage collector stops tracking: a million of them in the heap do
        # not make its full collections longer.
        self._heap: list[tuple[float, int]] = []
        self._waiting: dict[int, JobHandle] = {}
        self._seq = itertools.count()
        self._tick_end = -math.inf  # the scheduler's earliest next wake-up
        self._wake_at = math.inf  # when the scheduler's current sleep ends
        self._wake_scope: anyio.CancelScope | None = None
        # (limit, request number, handle) of requests bounded by request_timeout, in
        # start order; the watchdog cancels those still running at their limit.
        self._watched: collections.deque[tuple[float, int, JobHandle]] = collections.deque()
        self._expired: set[JobHandle] = set()  # handles whose request the watchdog cut
        self._watchdog_scope: anyio.CancelScope | None = None
        self._finish_event: anyio.Event | None = None  # set, then replaced, on each finish
        self._idle_event: anyio.Event | None = None  # set when no job is in flight

        self._requests = 0
        self._transient_errors = 0
        self._throttled = 0
        self._callback_errors = 0
        self._pending_callbacks = 0  # queued or running
        self._finished_by_state = dict.fromkeys(JobState, 0)

        self._tg: anyio.abc.TaskGroup | None = None
        self._ready_send: MemoryObjectSendStream[JobHandle] | None = None
        self._callback_send: MemoryObjectSendStream[tuple[Callback, JobHandle]] | None = None

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> TaskPoller:
        if self._lifecycle is not _Lifecycle.UNOPENED:
            raise RuntimeError(
                f"this TaskPoller is {self._lifecycle.value}; a TaskPoller can be entered "
                "only once, make a new one"
            )
        if isinstance(self._clock, AnyioClock):
            self._clock = self._clock.bound()
            self._loop_time = self._clock.now  # the event loop's clock: cancel scopes use it
            if self._limiter is not None:
                self._limiter = Limiter(self._limiter.limit, self._clock)
        self._transport = self._transport.open()
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        ready_send, ready_recv = anyio.create_memory_object_stream[JobHandle](math.inf)
        cb_send, cb_recv = anyio.create_memory_object_stream[tuple[Callback, JobHandle]](math.inf)
        self._ready_send, self._callback_send = ready_send, cb_send
        self._lifecycle = _Lifecycle.OPEN
        tg.start_soon(self._scheduler, name="asyncpoll scheduler")
        if self._request_timeout is not None:
            tg.start_soon(self._watchdog, name="asyncpoll watchdog")
        with ready_recv:
            for _ in range(self._max_concurrency):
                tg.start_soon(self._worker, ready_recv.clone(), name="asyncpoll worker")
        tg.start_soon(self._callback_runner, cb_recv, name="asyncpoll callbacks")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        assert self._ready_send is not None
        assert self._callback_send is not None
        waiting_exc: BaseException | None = None
        if exc_type is None:
            # Like a task group: wait for every job, including jobs added meanwhile
            # (by callbacks too), and for every queued callback.
            try:
                while not self._idle():
                    if self._idle_event is None:
                        self._idle_event = anyio.Event()
                    await self._idle_event.wait()
            except BaseException as caught:  # cancelled from outside while waiting
                waiting_exc = caught
        failure = exc if exc is not None else waiting_exc
        self._lifecycle = _Lifecycle.CLOSING
        if failure is not None:
            reason = f"the poller's block exited with {type(failure).__name__}"
            for handle in list(self._active.values()):
                self._cancel_job(handle, reason)
            self._tg.cancel_scope.cancel()
        # The scheduler stops on its next wake, workers when the ready stream closes,
        # the callback runner once it has run every queued callback.
        self._ready_send.close()
        self._callback_send.close()
        if self._wake_scope is not None:
            self._wake_scope.cancel()
        if self._watchdog_scope is not None:
            self._watchdog_scope.cancel()
        try:
            # The block's own exception is not handed to the task group, which would
            # wrap it in an ExceptionGroup: it propagates unchanged when we return.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._lifecycle = _Lifecycle.CLOSED
            with anyio.CancelScope(shield=True):
                await self._transport.aclose()
        if waiting_exc is not None:
            raise waiting_exc
        return None

    def _idle(self) -> bool:
        return not self._active and self._pending_callbacks == 0

    def _wake_if_idle(self) -> None:
        if not self._idle():
            return
        if self._idle_event is not None:
            self._idle_event.set()
            self._idle_event = None
        if self._finish_event is not None:  # as_completed() re-checks whether to stop
            self._finish_event.set()
            self._finish_event = None

    def _check_open(self) -> None:
        if self._lifecycle is _Lifecycle.OPEN:
            return
        if self._lifecycle is _Lifecycle.UNOPENED:
            raise RuntimeError(
                "this TaskPoller is not open; use it as `async with TaskPoller(...) as poller:`"
            )
        raise RuntimeError(f"this TaskPoller is {self._lifecycle.value}; add jobs to a new one")

    # ----------------------------------------------------------------- adding jobs

    def add(
        self,
        job_id: str,
        url: str | None = None,
        *,
        schedule: Schedule | None = None,
        timeout: float | _Unset | None = UNSET,
        on_done: Callback | None = None,
        on_progress: Callback | None = None,
        metadata: Mapping[str, Any] | None = None,
        check: Check | None = None,
        fetch_result: bool | None = None,
        stall_timeout: float | _Unset | None = UNSET,
        cancel_url: str | None = None,
    ) -> JobHandle:
        """Start polling a job and return its handle.

        Adding an id that is already in flight returns the handle it has, unchanged.

        Args:
            job_id: the job's id (a string; an int is turned into one).
            url: the status URL; default: the poller's ``status_url`` filled with the id.
            schedule: overrides the poller's schedule for this job.
            timeout: this job's deadline in seconds from now (None: none); default: the
                poller's ``timeout``.
            on_done: called with the handle when this job finishes, after the
                poller's ``on_done``.
            on_progress: called when this job's state or progress changes.
            metadata: kept on ``handle.metadata`` for the caller.
            check: an async callable ``(handle) -> Status`` that reads the job's status
                instead of an HTTP GET (an SDK call); it goes through the same
                scheduler, rate limit, deadline and error budget.
            fetch_result: GET the result document a succeeded job links to and resolve
                with it (default: the poller's ``fetch_result``).
            stall_timeout: overrides the poller's ``stall_timeout`` for this job.
            cancel_url: where ``cancel_remote()`` sends its request (default: the
                poller's ``cancel_url`` template, else the status URL).

        Raises:
            RuntimeError: the poller is not open.
            ValueError: the job has no URL (no ``url=``, no ``status_url``, no ``check=``).
        """
        self._check_open()
        key = _job_key(job_id)
        existing = self._active.get(key)
        if existing is not None:
            return existing
        if check is not None:
            if not callable(check):
                raise TypeError(
                    f"check= must be an async callable (handle) -> Status, got {check!r}"
                )
        elif url is None:
            if self._status_url is None:
                raise ValueError(
                    f"job {key!r} has no status URL: pass url= or give the poller a "
                    "status_url template"
                )
            url = self._status_url.format(job_id=quote(key, safe=""))
        elif not isinstance(url, str):
            raise TypeError(f"url must be a string, got {url!r}")
        sched = self._schedule if schedule is None else _check_schedule("schedule", schedule)
        job_timeout = self._timeout if timeout is UNSET else _check_seconds("timeout", timeout)
        _check_callback("on_done", on_done)
        _check_callback("on_progress", on_progress)
        now = self._clock.now()
        first_delay = checked_delay(sched, 0, self._rng)  # may raise: nothing registered yet
        deadline = None if job_timeout is None else now + job_timeout
        handle = JobHandle(
            self,
            key,
            url,
            schedule=sched,
            timeout=job_timeout,
            deadline=deadline,
            check=check,
            on_done=on_done,
            on_progress=on_progress,
            metadata=metadata,
        )
        if url is not None:
            handle._target = handle._origin = self._transport.absolute(url)
        handle._fetch_result = self._fetch_result if fetch_result is None else bool(fetch_result)
        handle._stall_timeout = (
            self._stall_timeout
            if stall_timeout is UNSET
            else _check_seconds("stall_timeout", stall_timeout)
        )
        handle._changed_at = now
        if cancel_url is not None:
            handle._cancel_url = self._transport.absolute(cancel_url)
        elif self._cancel_url is not None:
            handle._cancel_url = self._transport.absolute(
                self._cancel_url.format(job_id=quote(key, safe=""))
            )
        self._active[key] = handle
        self._handles[key] = handle
        self._push(handle, now + first_delay)
        if deadline is not None:
            # A second entry at the deadline times the job out even while it waits for a
            # free worker or sits in a request; poll entries are capped at it too.
            self._push(handle, deadline)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("job %r added (%s)", key, redact_url(url) if url else "check=")
        return handle

    async def submit(
        self,
        url: str,
        *,
        method: str = "POST",
        json: Any = None,
        data: Any = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        resubmit: int | None = None,
        **add_options: Any,
    ) -> JobHandle:
        """Create a job with one request, then poll it; returns its handle.

        The create request counts against the rate limit. The status URL comes from the
        ``Operation-Location`` header, the ``Location`` header of a 201/202, a body field
        (``statusUrl``, ``status_url``, ``pollUrl``, ``location``...), or else the
        poller's ``status_url`` template filled with the job id; the job id from
        ``jobId``, ``job_id``, ``id``, ``taskId`` (top level or in ``data``), or else the
        last path segment of the status URL. A server-supplied URL must have the create
        URL's origin unless listed in ``allowed_origins``.

        Args:
            url: where to send the create request (may be relative to ``base_url``).
            method, json, data, content, headers: the request, as in httpx.
            resubmit: how many times to send the create request again when the job ends
                FAILED (default: the poller's ``resubmit``); the same handle follows
                each new job (``handle.submissions``).
            add_options: ``add()``'s keyword options (``schedule=``, ``timeout=``...).

        Raises:
            SubmitError: the create request failed (no response, a non-2xx answer, or
                no way to tell where to poll); ``error.response`` holds the response.
        """
        self._check_open()
        if resubmit is not None and (
            isinstance(resubmit, bool) or not isinstance(resubmit, int) or resubmit < 0
        ):
            raise ValueError(f"resubmit must be a whole number >= 0, got {resubmit!r}")
        create = CreateRequest(method.upper(), url, json, data, content, dict(headers or {}))
        absolute = self._transport.absolute(url)
        shown = redact_url(absolute)
        if not await self._admit_now(absolute):
            raise SubmitError(
                "the host is cooling down; the create request could not be sent within "
                f"request_timeout={self._request_timeout:g} s",
                url=shown,
            )
        self._requests += 1
        try:
            with anyio.fail_after(self._request_timeout):
                response = await self._send_create(create)
        except TransportFailure as exc:
            raise SubmitError(f"the create request failed: {exc}", url=shown, cause=exc) from exc
        except TimeoutError as exc:
            raise SubmitError(
                f"no response to the create request within request_timeout="
                f"{self._request_timeout:g} s",
                url=shown,
                cause=exc,
            ) from exc
        hint = self._feedback(absolute, response)
        code = response.status_code
        if not 200 <= code < 300:
            retry = f"; the server asks to wait {hint:g} s" if hint is not None else ""
            error = SubmitError(
                f"the create request was refused: HTTP {code}{retry}; "
                f"received {excerpt(response.content)}",
                url=shown,
                http_status=code,
            )
            error.response = response
            raise error
        try:
            job_id, status_url, from_template = self._locate(response)
        except PollError as exc:
            error = SubmitError(exc.message, url=shown, http_status=code, cause=exc)
            error.response = response
            raise error from exc
        existing = self._active.get(job_id)
        if existing is not None and existing._target != status_url:
            # Two jobs whose ids were guessed from alike URLs (.../42/status and
            # .../43/status): the status URL tells them apart.
            job_id = redact_url(status_url)
            existing = self._active.get(job_id)
        handle = self.add(job_id, status_url, **add_options)
        if handle is existing:
            return handle  # the server gave back a job already followed (an idempotent create)
        # Credentials go where the user sent them: the create URL's origin, or the
        # origin of the user's own status_url template.
        handle._origin = status_url if from_template else absolute
        handle._create = create
        handle._resubmits_left = self._resubmit if resubmit is None else resubmit
        handle._last_response = response
        handle._submissions = [Submission(job_id, redact_url(status_url), code)]
        self._read_create_status(handle, response)
        return handle

    def _locate(self, response: Response) -> tuple[str, str, bool]:
        """The new job's id, its absolute status URL, and whether the template gave it."""
        base = response.request_url
        job_id, status_url = discover(response, base=base, allowed=self._allowed_origins)
        from_template = False
        if status_url is None and job_id is not None and self._status_url is not None:
            status_url = self._transport.absolute(
                self._status_url.format(job_id=quote(job_id, safe=""))
            )
            from_template = True
        if status_url is None or job_id is None:
            raise PollError(
                "cannot tell where to poll the new job: the create response has no "
                "Operation-Location or Location header, no status URL field"
                + (" and no job id" if job_id is None else "")
                + (" (give the poller a status_url template)" if self._status_url is None else "")
                + f"; received {excerpt(response.content)}",
                http_status=response.status_code,
            )
        return job_id, status_url, from_template

    def _read_create_status(self, handle: JobHandle, response: Response) -> None:
        """A create response that already states the job's state counts as a first read."""
        try:
            status = self._reader(response)
        except Exception:
            return  # most create responses carry no state; the first poll will tell
        if not isinstance(status, Status):
            return
        if status.state.is_terminal:
            # Only an outcome that needs no further request; a result to fetch or a
            # failure to resubmit is left to the first poll, already scheduled.
            if not self._needs_more(handle, status):
                self._on_status(handle, status)
        else:
            handle._status = status
            handle._state = status.state

    def _push(self, handle: JobHandle, due: float) -> None:
        deadline = handle._deadline
        if deadline is not None and due > deadline:
            due = deadline
        elif (
            due <= self._clock.now()
            and self._lifecycle is _Lifecycle.OPEN
            and self._ready_send is not None
        ):
            # Due already (fixed(0), a first poll): straight to the workers, without
            # waking the scheduler for it.
            self._ready_send.send_nowait(handle)
            return
        seq = next(self._seq)
        heapq.heappush(self._heap, (due, seq))
        self._waiting[seq] = handle
        wake_at = self._wake_at
        # Wake the scheduler only if this moves its wake-up earlier; during a tick (see
        # _scheduler) nothing can, since the tick's end is its earliest wake-up anyway.
        if due < wake_at and wake_at > self._tick_end:
            self._wake_at = max(due, self._tick_end)
            if self._wake_scope is not None:
                self._wake_scope.cancel()

    # ----------------------------------------------------------------- the engine

    async def _scheduler(self) -> None:
        """Send due jobs to the workers, then sleep until the next one is due.

        After a wake-up that found jobs due, the next is at least ``SCHEDULER_TICK``
        later: under an even spread of due times (many jobs on long intervals) one
        wake-up takes a batch, not one job each, for at most a tick of lateness. Due
        times farther apart than a tick are kept exactly.
        """
        heap, waiting, clock = self._heap, self._waiting, self._clock
        assert self._ready_send is not None
        send = self._ready_send.send_nowait
        slept_to = -math.inf
        while self._lifecycle is _Lifecycle.OPEN:
            # A sleep that ran its course reached its end, even where the clock's reading
            # rounds a hair below the float it was asked for.
            now = max(clock.now(), slept_to)
            if heap and heap[0][0] <= now:
                while heap and heap[0][0] <= now:
                    handle = waiting.pop(heapq.heappop(heap)[1])
                    if handle._finish_seq >= 0:
                        continue  # cancelled while waiting: a stale entry
                    deadline = handle._deadline
                    if deadline is not None and now >= deadline:
                        self._time_out(handle)
                        continue
                    send(handle)
                self._tick_end = now + SCHEDULER_TICK
            self._wake_at = wake_at = max(heap[0][0], self._tick_end) if heap else math.inf
            with anyio.CancelScope() as scope:
                self._wake_scope = scope
                await clock.sleep_until(wake_at)
            self._wake_scope = None
            slept_to = -math.inf if scope.cancelled_caught else wake_at

    async def _worker(self, ready: MemoryObjectReceiveStream[JobHandle]) -> None:
        """Poll jobs from the ready stream, one at a time, until it closes.

        The worker's polls share one cancel scope, made anew only after one is cut
        short: ``handle.cancel()``, a job's deadline, or the watchdog cancel it while
        that job's poll runs (``handle._scope``), and the poll's outcome is settled
        here. No cancel scope and no timer per poll.
        """
        receive_nowait, receive = ready.receive_nowait, ready.receive
        taken = 0
        cancelling = _native_cancel_count()
        with ready:
            while True:
                handle: JobHandle | None = None
                with anyio.CancelScope() as scope:
                    cancels = cancelling() if cancelling is not None else 0
                    while True:
                        # Take a queued job without a checkpoint (an HTTP poll yields
                        # anyway); a check= that never awaits still lets other tasks
                        # run every few polls.
                        taken += 1
                        if taken % WORKER_YIELD_EVERY == 0:
                            await anyio.lowlevel.checkpoint()
                        try:
                            handle = receive_nowait()
                        except anyio.WouldBlock:
                            try:
                                handle = await receive()
                            except anyio.EndOfStream:
                                return
                        except anyio.EndOfStream:
                            return
                        if handle._finish_seq >= 0:
                            continue
                        try:
                            await self._poll(handle, scope)
                        except Exception as exc:  # a bug must cost one job, never the poller
                            self._internal_error(handle, exc)
                        handle = None
                        if scope.cancel_called or (
                            cancelling is not None and cancelling() != cancels
                        ):
                            # A cancellation meant for the poll that just ended (answered
                            # in the same instant), or one its own code left counted on the
                            # task (asyncio): a fresh scope, so neither reaches the next.
                            break
                if handle is not None and scope.cancelled_caught:
                    self._interrupted(handle)

    def _internal_error(self, handle: JobHandle, exc: Exception) -> None:
        logger.exception("internal error while polling job %r", handle.job_id)
        self._finish(
            handle,
            JobState.ERRORED,
            exc=PollError(
                f"internal error while polling: {exc!r}",
                job_id=handle.job_id,
                url=self._shown_url(handle),
                cause=exc,
            ),
        )

    def _interrupted(self, handle: JobHandle) -> None:
        """A poll was cut short by its worker's cancel scope: say why, to the job."""
        expired = handle in self._expired
        self._expired.discard(handle)
        if handle._finish_seq >= 0:
            return  # cancelled, or timed out by the scheduler, meanwhile
        if not expired:
            self._time_out(handle)  # the job's deadline cut the request short
            return
        failure = TimeoutError(
            f"no complete response within request_timeout={self._request_timeout:g} s"
        )
        try:
            self._on_transient(handle, failure, None, None)
        except Exception as exc:
            self._internal_error(handle, exc)

    async def _watchdog(self) -> None:
        """Cut short the requests that outlast ``request_timeout``.

        Requests bounded by ``request_timeout`` (not by their job's nearer deadline)
        are queued in start order, so their limits come in order too: one sleep until
        the oldest one's limit covers them all, instead of a timer per request.
        """
        watched, clock = self._watched, self._clock
        period = self._request_timeout
        assert period is not None
        slept_to = -math.inf
        while self._lifecycle is _Lifecycle.OPEN:
            now = max(clock.now(), slept_to)  # see _scheduler
            while watched:
                limit, seq, handle = watched[0]
                if handle._in_request != seq:
                    watched.popleft()  # answered already
                elif limit <= now:
                    watched.popleft()
                    if handle._scope is not None:  # always, while _in_request is set
                        self._expired.add(handle)
                        handle._scope.cancel()
                else:
                    break
            # Anything queued while this sleeps has a later limit than its end.
            until = watched[0][0] if watched else now + period
            with anyio.CancelScope() as scope:
                self._watchdog_scope = scope
                await clock.sleep_until(until)
            self._watchdog_scope = None
            slept_to = -math.inf if scope.cancelled_caught else until

    async def _poll(self, handle: JobHandle, scope: anyio.CancelScope) -> None:
        """Make one request for ``handle`` and act on what it says.

        The request is a status poll, or, when the job's ``_action`` says so, the GET of
        its result document (``fetch_result``) or its create request again (``resubmit``).
        ``scope`` is the worker's: cancelling it (``handle._scope`` while this runs)
        interrupts the poll, and the worker settles the outcome.
        """
        clock = self._clock
        deadline = handle._deadline
        bound = math.inf if deadline is None else deadline
        if clock.now() >= bound:
            self._time_out(handle)
            return
        action = handle._action
        url = self._url_for(handle, action)
        status: Status | None = None
        failure: BaseException | None = None
        verdict = Verdict.READ
        response: Response | None = None
        gate = None
        if url is not None:
            if handle._gate_url is url:  # the same URL as last time: its gate too
                gate = handle._gate
            else:
                gate = handle._gate = self._gate_for(url)
                handle._gate_url = url
        handle._scope = scope
        armed = False  # whether the scope's deadline is set for this request
        try:
            if (
                gate is None or self._limiter is not None or not gate.try_pass(clock.now())
            ) and not await self._admit(url, bound, gate):
                # The deadline came before the host or the limiter let us go.
                handle._scope = None
                self._time_out(handle)
                return
            handle._attempts += 1
            self._requests += 1
            now = clock.now()
            limit = bound - now
            request_timeout = self._request_timeout
            if request_timeout is not None and limit > request_timeout:
                # The common case: the watchdog bounds it, no timer of its own.
                seq = handle._in_request = self._requests
                self._watched.append((now + request_timeout, seq, handle))
            elif limit != math.inf:
                scope.deadline = self._loop_time() + limit  # the job's deadline is nearer
                armed = True
            try:
                if action != "poll":
                    assert url is not None
                    response = await self._request(handle, action, url)
                elif handle._check is not None:
                    status = await self._call_check(handle)
                elif url is not None and url is handle._origin:  # one coroutine less
                    response = await self._transport.request("GET", url)
                else:
                    assert url is not None
                    response = await self._request(handle, action, url)
            except TransportFailure as exc:
                failure = exc
                verdict = Verdict.TRANSIENT if exc.transient else Verdict.FATAL
            except PollError as exc:
                failure, verdict = exc, Verdict.FATAL
            except Exception as exc:
                failure, verdict = exc, Verdict.TRANSIENT
            except anyio.get_cancelled_exc_class() as exc:
                # A real cancellation (this job's, the request deadline's, the
                # poller's) raises again here; one that user code raised on its
                # own (an SDK's cancelled future) is this job's failure.
                await anyio.lowlevel.checkpoint_if_cancelled()
                failure, verdict = exc, Verdict.TRANSIENT
        finally:
            handle._scope = None
            handle._in_request = -1
            if armed:
                scope.deadline = math.inf
            watched = self._watched
            while watched and watched[0][2]._in_request != watched[0][1]:
                watched.popleft()  # answered: forget them now, not at their limit
        if self._expired:
            self._expired.discard(handle)  # answered as the watchdog cut it: the answer wins
        if handle._finish_seq >= 0:
            return  # cancelled meanwhile
        hint = None
        if response is not None:
            assert url is not None
            handle._last_response = response
            hint = self._feedback(url, response, gate)
            if action == "fetch":
                self._on_fetched(handle, response, hint)
                return
            if action == "resubmit":
                self._on_recreated(handle, response, hint)
                return
            status, failure, verdict = self._read(handle, response, hint)
            if verdict is Verdict.REDIRECT:
                return
        if status is not None and failure is None:
            self._on_status(handle, status, hint)
        elif verdict is Verdict.THROTTLED:
            self._on_throttled(handle, response, hint)
        elif verdict is Verdict.TRANSIENT:
            self._on_transient(handle, failure, response, hint)
        else:
            self._on_fatal(handle, failure, response)

    def _url_for(self, handle: JobHandle, action: str) -> str | None:
        if action == "fetch":
            return handle._fetch_url
        if action == "resubmit":
            return self._transport.absolute(handle._create.url)
        return handle._target

    async def _request(self, handle: JobHandle, action: str, url: str) -> Response:
        """Send the request ``action`` calls for; credentials only to the job's origin."""
        origin = handle._origin
        # The common case, a status URL polled where it was given, needs no parsing.
        credentials = url == origin or (origin is not None and same_origin(url, origin))
        if action == "fetch":
            return await self._transport.request(
                "GET", url, credentials=credentials, max_body=self._max_result_body
            )
        if action == "resubmit":
            return await self._send_create(handle._create)
        return await self._transport.request("GET", url, credentials=credentials)

    async def _send_create(self, create: CreateRequest) -> Response:
        return await self._transport.request(
            create.method,
            create.url,
            json=create.json,
            data=create.data,
            content=create.content,
            headers=create.headers,
        )

    def _gate_for(self, url: str) -> HostGate:
        """The gate of ``url``'s host (a status poll finds its job's on the handle)."""
        host = _host_of(url)
        gate = self._gates.get(host)
        if gate is None:
            limit = None
            if self._host_limits is not None:
                limit = self._host_limits.get(host, self._host_limits.get("*"))
            gate = self._gates[host] = HostGate(host, limit, self._clock)
        return gate

    async def _admit_now(self, url: str) -> bool:
        """Admission for a request outside the schedule, bounded by request_timeout."""
        limit = self._request_timeout
        return await self._admit(url, math.inf if limit is None else self._clock.now() + limit)

    async def _admit(self, url: str | None, bound: float, gate: HostGate | None = None) -> bool:
        """Wait for the host's cool-down and rate, then the poller's rate limit."""
        if url is not None and not await (gate or self._gate_for(url)).wait(bound):
            return False
        return self._limiter is None or await self._limiter.acquire(bound)

    def _feedback(self, url: str, response: Response, gate: HostGate | None = None) -> float | None:
        """Tell the host's gate what it answered; returns the server's hint, capped."""
        headers = response.headers
        code = response.status_code
        if code < 400 and gate is not None and self._pacing_headers.isdisjoint(headers):
            gate.on_healthy(self._clock.now())  # the common case: no hint, no budget
            return None
        hint = header_hint(headers, self._hint_headers, date=headers.get("date"))
        if hint is not None and hint > self._pacing.max_retry_after:
            host = _host_of(url)
            if host not in self._warned_hints:
                self._warned_hints.add(host)
                logger.warning(
                    "%s asked to wait %.0f s; capping server hints at max_retry_after=%g s",
                    host,
                    hint,
                    self._pacing.max_retry_after,
                )
            hint = self._pacing.max_retry_after
        if gate is None:
            gate = self._gate_for(url)
        now = self._clock.now()
        if code == 429 or (code == 503 and hint is not None):
            gate.on_throttled(now, DEFAULT_THROTTLE_PAUSE if hint is None else hint)
        elif code < 400:
            gate.on_healthy(now)
        budget = parse_budget(headers, functools.partial(_wall_clock_of, headers.get("date")))
        if budget is not None:
            remaining, reset = budget
            gate.on_budget(now, remaining, min(reset, self._pacing.max_retry_after))
        return hint

    def _read(
        self, handle: JobHandle, response: Response, hint: float | None
    ) -> tuple[Status | None, BaseException | None, Verdict]:
        """Turn a status response into a ``Status``, or a failure and its verdict."""
        code = response.status_code
        verdict = classify(code)
        if code == 503 and hint is not None:
            verdict = Verdict.THROTTLED  # back-pressure, not a failure
        claims = self._claims
        if verdict is not Verdict.READ and claims is not None and claims(code):
            verdict = Verdict.READ
        elif 300 <= code < 400:
            try:
                return self._on_3xx(handle, response)
            except PollError as exc:
                return None, exc, Verdict.FATAL
        if verdict is not Verdict.READ:
            return None, None, verdict
        try:
            status = self._reader(response)
            if not isinstance(status, Status):
                raise PollError(
                    f"the reader returned {type(status).__name__}, not a Status",
                    http_status=code,
                )
        except PollError as exc:
            return None, exc, Verdict.FATAL
        except Exception as exc:
            return None, exc, Verdict.TRANSIENT
        return status, None, Verdict.READ

    def _on_3xx(
        self, handle: JobHandle, response: Response
    ) -> tuple[Status | None, BaseException | None, Verdict]:
        """303 See Other: done, the result is there; other redirects: poll the target."""
        code = response.status_code
        location = response.headers.get("location")
        if not location:
            return None, None, Verdict.FATAL
        base = response.request_url or handle._target or ""
        if code == 303:
            link = check_server_url(
                location, base=base, allowed=self._allowed_origins, what="the 303 Location"
            )
            status = Status(JobState.SUCCEEDED, result=link, http_status=code, result_url=link)
            return status, None, Verdict.READ
        if code not in (301, 302, 307, 308):
            return None, None, Verdict.FATAL
        target = check_server_url(
            location, base=base, allowed=self._allowed_origins, what="the redirect Location"
        )
        handle._redirects += 1
        if handle._redirects > MAX_REDIRECTS:
            raise PollError(f"more than {MAX_REDIRECTS} redirects in a row", http_status=code)
        handle._target = target
        self._push(handle, self._clock.now())
        return None, None, Verdict.REDIRECT

    async def _call_check(self, handle: JobHandle) -> Status:
        assert handle._check is not None
        outcome = handle._check(handle)
        if not inspect.isawaitable(outcome):
            raise PollError(
                f"check= must be an async callable returning a Status; it returned "
                f"{type(outcome).__name__} without awaiting"
            )
        status = await outcome
        if not isinstance(status, Status):
            raise PollError(f"check= returned {type(status).__name__}, not an asyncpoll.Status")
        return status

    # ----------------------------------------------------------------- outcomes

    def _on_status(self, handle: JobHandle, status: Status, hint: float | None = None) -> None:
        previous = handle._status
        handle._status = status
        handle._errors = 0
        handle._throttles = 0
        handle._redirects = 0
        handle._last_failure = None
        state = status.state
        if state is JobState.SUCCEEDED:
            if handle._fetch_result and status.result_url is not None:
                self._start_fetch(handle, status)
            else:
                self._finish(handle, state, result=status.result)
        elif state is JobState.FAILED:
            if handle._resubmits_left > 0 and handle._create is not None:
                self._start_resubmit(handle, status)
            else:
                self._finish(handle, state, exc=JobFailed(handle.job_id, status))
        elif state is JobState.CANCELLED:
            reason = "cancelled on the server" + (f": {status.error}" if status.error else "")
            self._finish(handle, state, exc=JobCancelled(handle.job_id, reason))
        elif state is JobState.TIMED_OUT:
            self._finish(
                handle,
                state,
                exc=JobTimeout(handle.job_id, handle._timeout or 0.0, status),
            )
        elif state is JobState.ERRORED:
            self._finish(
                handle,
                state,
                exc=PollError(
                    status.error or "the status reported ERRORED",
                    job_id=handle.job_id,
                    url=self._shown_url(handle),
                    http_status=status.http_status,
                    status=status,
                ),
            )
        else:
            now = self._clock.now()
            changed_state = state is not handle._state
            if changed_state or previous is None or previous.progress != status.progress:
                if changed_state and logger.isEnabledFor(logging.DEBUG):
                    logger.debug("job %r is %s", handle.job_id, state.value)
                handle._state = state
                handle._changed_at = now
                handle._stalled = False
                self._queue_callbacks(self._on_progress, handle._on_progress, handle)
            elif self._check_stall(handle, now):
                return
            if status.retry_after is not None and (hint is None or status.retry_after > hint):
                hint = status.retry_after
            scheduled = checked_delay(handle._schedule, handle._attempts, self._rng)
            delay, _ = self._pacing.delay(scheduled, hint)
            self._push(handle, now + delay)

    def _check_stall(self, handle: JobHandle, now: float) -> bool:
        """Report a job whose state and progress stood still too long; True if it ended."""
        limit = handle._stall_timeout
        if limit is None or handle._stalled or now - handle._changed_at < limit:
            return False
        handle._stalled = True
        logger.warning(
            "job %r has not changed for %.0f s (state %s, progress %s)",
            handle.job_id,
            now - handle._changed_at,
            handle._state.value,
            handle.progress,
        )
        self._queue_callbacks(self._on_stall, None, handle)
        if not self._fail_on_stall:
            return False
        self._finish(
            handle,
            JobState.TIMED_OUT,
            exc=JobStalled(handle.job_id, limit, handle._status),
        )
        return True

    def _start_fetch(self, handle: JobHandle, status: Status) -> None:
        """A succeeded job links to its result: GET it next, through the same path."""
        assert status.result_url is not None
        base = handle._target or status.result_url
        try:
            handle._fetch_url = check_server_url(
                status.result_url, base=base, allowed=self._allowed_origins, what="the result link"
            )
        except PollError as exc:
            self._on_fatal(handle, exc, handle._last_response)
            return
        handle._action = "fetch"
        handle._redirects = 0
        self._push(handle, self._clock.now())

    def _on_fetched(self, handle: JobHandle, response: Response, hint: float | None) -> None:
        code = response.status_code
        if 200 <= code < 300:
            try:
                document: Any = response.json()
            except ValueError:
                document = response.content
            self._finish(handle, JobState.SUCCEEDED, result=document)
            return
        if code in (301, 302, 303, 307, 308) and response.headers.get("location"):
            try:
                handle._fetch_url = check_server_url(
                    response.headers["location"],
                    base=response.request_url,
                    allowed=self._allowed_origins,
                    what="the result document's redirect",
                )
            except PollError as exc:
                self._on_fatal(handle, exc, response)
                return
            handle._redirects += 1
            if handle._redirects > MAX_REDIRECTS:
                self._on_fatal(handle, PollError(f"more than {MAX_REDIRECTS} redirects"), response)
            else:
                self._push(handle, self._clock.now())
            return
        self._on_refused(
            handle, response, hint, "the job succeeded but its result document could not be fetched"
        )

    def _on_refused(
        self, handle: JobHandle, response: Response, hint: float | None, what: str
    ) -> None:
        """A non-2xx answer to a fetch or a create request: wait, retry, or give up."""
        code = response.status_code
        verdict = classify(code)
        if verdict is Verdict.THROTTLED:
            self._on_throttled(handle, response, hint)
        elif verdict is Verdict.TRANSIENT:
            self._on_transient(handle, None, response, hint)
        else:
            message = f"{what}: HTTP {code}; received {excerpt(response.content)}"
            self._on_fatal(handle, PollError(message, http_status=code), response)

    def _start_resubmit(self, handle: JobHandle, status: Status) -> None:
        """The job failed and may be created again: send the create request next."""
        handle._resubmits_left -= 1
        logger.info(
            "job %r failed (%s); submitting it again (%d more allowed)",
            handle.job_id,
            status.error or "no error text",
            handle._resubmits_left,
        )
        handle._action = "resubmit"
        delay = checked_delay(self._retry_schedule, len(handle._submissions or ()), self._rng)
        self._push(handle, self._clock.now() + delay)

    def _on_recreated(self, handle: JobHandle, response: Response, hint: float | None) -> None:
        if not 200 <= response.status_code < 300:
            self._on_refused(handle, response, hint, "submitting the job again failed")
            return
        code = response.status_code
        try:
            job_id, status_url, from_template = self._locate(response)
        except PollError as exc:
            self._on_fatal(handle, exc, response)
            return
        holder = self._active.get(job_id)
        if holder is not None and holder is not handle:
            self._on_fatal(
                handle,
                PollError(
                    f"the job was submitted again, but the new job's id {job_id!r} belongs to "
                    "another job this poller follows"
                ),
                response,
            )
            return
        if self._active.get(handle.job_id) is handle:
            del self._active[handle.job_id]
        handle.job_id = job_id
        handle.url = handle._target = status_url
        if from_template:
            handle._origin = status_url
        # A new job: its own error budget, backoff and schedule.
        handle._errors = handle._throttles = handle._redirects = handle._attempts = 0
        handle._last_failure = None
        self._active[job_id] = handle
        self._handles[job_id] = handle
        handle._submissions = [
            *(handle._submissions or ()),
            Submission(job_id, redact_url(status_url), code),
        ]
        handle._action = "poll"
        handle._state = JobState.PENDING
        handle._changed_at = self._clock.now()
        self._push(handle, self._clock.now() + checked_delay(handle._schedule, 0, self._rng))

    def _on_throttled(
        self, handle: JobHandle, response: Response | None, hint: float | None = None
    ) -> None:
        self._throttled += 1
        handle._throttles += 1
        self._retry_later(handle, handle._throttles, hint)

    def _retry_later(self, handle: JobHandle, n: int, hint: float | None) -> None:
        """Reschedule after a failed request: the retry schedule, raised to any hint."""
        scheduled = checked_delay(self._retry_schedule, n, self._rng)
        delay, _ = self._pacing.delay(scheduled, hint)
        self._push(handle, self._clock.now() + delay)

    def _on_transient(
        self,
        handle: JobHandle,
        failure: BaseException | None,
        response: Response | None,
        hint: float | None = None,
    ) -> None:
        self._transient_errors += 1
        handle._errors += 1
        if failure is None and response is not None:
            failure = PollError(
                f"HTTP {response.status_code}; received {excerpt(response.content)}",
                http_status=response.status_code,
            )
        handle._last_failure = failure
        if handle._errors >= self._max_errors:
            http_status = response.status_code if response is not None else None
            self._finish(
                handle,
                JobState.ERRORED,
                exc=PollError(
                    f"{handle._errors} transient failures in a row (max_errors="
                    f"{self._max_errors}); the last: {_describe(failure)}",
                    job_id=handle.job_id,
                    url=self._shown_url(handle),
                    http_status=http_status,
                    cause=failure,
                    status=handle._status,
                ),
            )
            return
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("job %r: transient failure %d: %s", handle.job_id, handle._errors, failure)
        self._retry_later(handle, handle._errors, hint)

    def _on_fatal(
        self, handle: JobHandle, failure: BaseException | None, response: Response | None
    ) -> None:
        http_status = response.status_code if response is not None else None
        if isinstance(failure, PollError):
            # A copy: a reader may raise one instance for many jobs.
            exc = PollError(
                failure.message,
                job_id=handle.job_id,
                url=self._shown_url(handle),
                http_status=failure.http_status if failure.http_status is not None else http_status,
                cause=failure.cause,
                status=failure.status if failure.status is not None else handle._status,
            )
            exc.__cause__ = failure
        elif response is not None and failure is None:
            hint = {
                401: "check the credentials in headers=",
                403: "the credentials lack permission for this job",
                404: "no such job at this URL",
                410: "the job is gone from the server",
            }.get(response.status_code, "the server refused the status request")
            exc = PollError(
                f"HTTP {response.status_code} ({hint}); received {excerpt(response.content)}",
                job_id=handle.job_id,
                url=self._shown_url(handle),
                http_status=http_status,
                status=handle._status,
            )
        else:
            exc = PollError(
                _describe(failure),
                job_id=handle.job_id,
                url=self._shown_url(handle),
                http_status=http_status,
                cause=failure,
                status=handle._status,
            )
        if exc.cause is None and failure is not None and not isinstance(failure, PollError):
            exc.cause = failure
        self._finish(handle, JobState.ERRORED, exc=exc)

    def _time_out(self, handle: JobHandle) -> None:
        if handle._scope is not None:
            handle._scope.cancel()
        self._finish(
            handle,
            JobState.TIMED_OUT,
            exc=JobTimeout(handle.job_id, handle._timeout or 0.0, handle._status),
        )

    def _cancel_job(self, handle: JobHandle, reason: str) -> bool:
        if handle._finish_seq >= 0:
            return False
        if handle._scope is not None:
            handle._scope.cancel()
        self._finish(handle, JobState.CANCELLED, exc=JobCancelled(handle.job_id, reason))
        return True

    def _finish(
        self,
        handle: JobHandle,
        state: JobState,
        *,
        result: Any = None,
        exc: BaseException | None = None,
    ) -> None:
        """Resolve ``handle`` once; every later call is a no-op."""
        if handle._finish_seq >= 0:
            return
        handle._state = state
        handle._result = result
        if isinstance(exc, AsyncPollError) and exc.response is None:
            exc.response = handle._last_response
        handle._exception = exc
        handle._finish_seq = self._finished_base + len(self._finished)
        self._finished.append(handle)
        self._finished_by_state[state] += 1
        if self._active.get(handle.job_id) is handle:
            del self._active[handle.job_id]
        if state is JobState.SUCCEEDED:
            logger.info("job %r succeeded after %d polls", handle.job_id, handle._attempts)
        elif isinstance(exc, PollError):
            logger.warning("job %r errored: %s", handle.job_id, exc.message)
        else:
            level = logging.WARNING if state is JobState.TIMED_OUT else logging.INFO
            logger.log(level, "%s", exc)
        if handle._event is not None:
            handle._event.set()
        if handle._done_callbacks:
            callbacks, handle._done_callbacks = handle._done_callbacks, None
            for fn in callbacks:
                self._run_sync_callback(fn, handle)
        if self._finish_event is not None:
            self._finish_event.set()
            self._finish_event = None
        self._queue_callbacks(self._on_done, handle._on_done, handle)
        self._wake_if_idle()

    # ----------------------------------------------------------------- callbacks

    def _queue_callbacks(
        self, poller_cb: Callback | None, job_cb: Callback | None, handle: JobHandle
    ) -> None:
        send = self._callback_send
        if send is None:
            return
        for fn in (poller_cb, job_cb):
            if fn is not None:
                try:
                    send.send_nowait((fn, handle))
                except anyio.ClosedResourceError:
                    logger.debug("poller closed; callback %r for job %r dropped", fn, handle.job_id)
                else:
                    self._pending_callbacks += 1

    async def _callback_runner(
        self, queue: MemoryObjectReceiveStream[tuple[Callback, JobHandle]]
    ) -> None:
        with queue:
            async for fn, handle in queue:
                try:
                    outcome = fn(handle)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    self._callback_errors += 1
                    logger.exception("callback %r raised for job %r", fn, handle.job_id)
                except anyio.get_cancelled_exc_class():
                    await anyio.lowlevel.checkpoint_if_cancelled()  # re-raises a real one
                    self._callback_errors += 1
                    logger.exception("callback %r raised for job %r", fn, handle.job_id)
                finally:
                    self._pending_callbacks -= 1
                self._wake_if_idle()

    def _run_sync_callback(self, fn: Callable[[JobHandle], object], handle: JobHandle) -> None:
        try:
            fn(handle)
        except Exception:
            self._callback_errors += 1
            logger.exception("done callback %r raised for job %r", fn, handle.job_id)

    # ----------------------------------------------------------------- waiting

    def _lookup(self, job: JobHandle | str) -> JobHandle:
        if isinstance(job, JobHandle):
            if job._poller is not self:
                raise ValueError(f"{job!r} belongs to another TaskPoller")
            return job
        key = _job_key(job)
        handle = self._handles.get(key)
        if handle is None:
            raise ValueError(f"no job {key!r} in this poller; add() it first")
        return handle

    def handle(self, job_id: str) -> JobHandle:
        """The handle of job ``job_id`` (the latest one, if the id was added again).

        Raises:
            ValueError: no job with that id was added to this poller.
        """
        return self._lookup(job_id)

    def discard_finished(self) -> int:
        """Forget every finished job, so a long-lived poller's memory stays flat.

        The poller keeps each finished handle for ``handle(job_id)``, ``gather(job_id)``
        and the replay of ``as_completed()``; a service that adds jobs for days calls this
        now and then. Handles the caller holds keep working. An ``as_completed()`` over
        every job skips the forgotten ones it had not reached; one over chosen handles
        still yields each of them.

        Returns:
            How many finished jobs were forgotten.
        """
        dropped = len(self._finished)
        for handle in self._finished:
            if self._handles.get(handle.job_id) is handle:
                del self._handles[handle.job_id]
        self._finished_base += dropped
        self._finished = []
        return dropped

    async def _wait_for_finish(self) -> None:
        if self._finish_event is None:
            self._finish_event = anyio.Event()
        await self._finish_event.wait()

    def as_completed(self, handles: Iterable[JobHandle | str] | None = None) -> AsCompleted:
        """Iterate over handles in the order their jobs finish, those already finished first.

        ``async for handle in poller.as_completed(): ...``. Breaking out early is safe:
        the iterator holds no resources.

        Args:
            handles: handles or job ids to follow; None follows every job of the
                poller, including jobs added while iterating, until none is in flight.
        """
        wanted = None if handles is None else {self._lookup(h) for h in handles}
        return AsCompleted(self, wanted)

    async def gather(self, *jobs: JobHandle | str, return_exceptions: bool = False) -> list[Any]:
        """Wait for the given jobs and return their results in the order given.

        Args:
            jobs: handles or job ids.
            return_exceptions: put each failed job's exception in its place instead of
                raising the first failure (jobs keep polling either way).

        Raises:
            The exception of the first job to fail, unless ``return_exceptions``.
        """
        handles = [self._lookup(job) for job in jobs]
        async for handle in AsCompleted(self, set(handles)):
            if handle._exception is not None and not return_exceptions:
                raise handle._exception
        return [h._exception if h._exception is not None else h._result for h in handles]

    async def cancel(self, job_id: JobHandle | str, *, remote: bool = False) -> bool:
        """Stop polling a job and resolve it CANCELLED.

        Args:
            remote: also ask the server to cancel it (``handle.cancel_remote()``);
                without it the server is never contacted.

        Returns:
            True if the job was cancelled now, False if it had already finished (or,
            remotely, the server refused and reported a final state).
        """
        handle = self._lookup(job_id)
        if remote:
            return await handle.cancel_remote()
        return handle.cancel()

    async def _cancel_remote(self, handle: JobHandle) -> bool:
        if handle.done():
            return False
        if handle._action == "resubmit":
            # The last job failed and no new one exists yet: nothing to cancel remotely.
            return self._cancel_job(handle, "cancelled by the caller before it was resubmitted")
        if handle._action == "fetch":
            return False  # it succeeded; only its result document is still to come
        url = handle._cancel_url or handle._target
        if url is None:
            raise ValueError(
                f"job {handle.job_id!r} has no URL to send a cancel request to (it is "
                "polled with check=); pass cancel_url= to add()"
            )
        shown = redact_url(url)
        origin = handle._origin
        if not await self._admit_now(url):
            raise PollError(
                f"the host is cooling down; the {self._cancel_method} request could not be "
                f"sent within request_timeout={self._request_timeout:g} s",
                job_id=handle.job_id,
                url=shown,
            )
        self._requests += 1
        try:
            with anyio.fail_after(self._request_timeout):
                response = await self._transport.request(
                    self._cancel_method,
                    url,
                    credentials=origin is not None and same_origin(url, origin),
                )
        except (TransportFailure, TimeoutError) as exc:
            raise PollError(
                f"the {self._cancel_method} request failed: {_describe(exc)}",
                job_id=handle.job_id,
                url=shown,
                cause=exc,
            ) from exc
        handle._last_response = response
        self._feedback(url, response)
        code = response.status_code
        if 200 <= code < 300:
            cancelled = self._cancel_job(handle, "cancelled on the server at the caller's request")
            if cancelled:
                logger.info("job %r cancelled on the server", handle.job_id)
            return cancelled  # False: it finished on its own while the request was out
        # Refused: the job may have finished already. Ask, and resolve as the server says.
        status = await self._read_now(handle)
        if handle.done() or handle._action != "poll":
            return False  # settled (or moved on) while we asked
        if status is not None and status.state.is_terminal:
            if not self._needs_more(handle, status):
                self._on_status(handle, status)  # resolves; schedules nothing
            return False
        state = handle._state.value
        error = PollError(
            f"the server refused to cancel: HTTP {code}; received {excerpt(response.content)}; "
            f"the job is still {state} and is still polled",
            job_id=handle.job_id,
            url=shown,
            http_status=code,
            status=handle._status,
        )
        error.response = response
        raise error

    def _needs_more(self, handle: JobHandle, status: Status) -> bool:
        """True when a terminal status still calls for a request (a fetch, a resubmit)."""
        if status.state is JobState.SUCCEEDED:
            return handle._fetch_result and status.result_url is not None
        if status.state is JobState.FAILED:
            return handle._resubmits_left > 0 and handle._create is not None
        return False

    async def _read_now(self, handle: JobHandle) -> Status | None:
        """One status read outside the schedule (after a refused cancel), or None."""
        if handle._check is not None:
            try:
                return await self._call_check(handle)
            except Exception:
                return None
        url = handle._target
        if url is None or not await self._admit_now(url):
            return None
        self._requests += 1
        try:
            with anyio.fail_after(self._request_timeout):
                response = await self._request(handle, "poll", url)
        except (TransportFailure, TimeoutError):
            return None
        handle._last_response = response
        hint = self._feedback(url, response)
        code = response.status_code
        if 300 <= code < 400 and code != 303:
            return None  # a moved status URL is the worker's to follow, on its schedule
        status, _, verdict = self._read(handle, response, hint)
        return status if verdict is Verdict.READ else None

    # ----------------------------------------------------------------- introspection

    def statistics(self) -> PollerStatistics:
        """A snapshot of the poller's counters."""
        return PollerStatistics(
            active=len(self._active),
            finished=dict(self._finished_by_state),
            requests=self._requests,
            transient_errors=self._transient_errors,
            throttled=self._throttled,
            callback_errors=self._callback_errors,
            waiting_for_rate_limit=0 if self._limiter is None else self._limiter.waiting,
        )

    @property
    def rate_limit(self) -> RateLimit | None:
        """The poller's ``RateLimit``, or None."""
        return self._rate_limit

    def _shown_url(self, handle: JobHandle) -> str | None:
        return None if handle.url is None else redact_url(handle.url)

    def __repr__(self) -> str:
        parts = [f"<TaskPoller {self._lifecycle.value}", f"active={len(self._active)}"]
        parts.append(f"finished={self._finished_base + len(self._finished)}")
        if self._status_url is not None:
            parts.append(f"status_url={redact_url(self._status_url)!r}")
        if self._headers:
            parts.append(f"headers={redact_headers(self._headers, self._secret_headers)!r}")
        if self._limiter is not None:
            parts.append(repr(self._limiter))
        return " ".join(parts) + ">"


class AsCompleted:
    """The async iterator ``TaskPoller.as_completed()`` returns."""

    __slots__ = ("_index", "_pending", "_poller", "_skipped")

    def __init__(self, poller: TaskPoller, wanted: set[JobHandle] | None) -> None:
        self._poller = poller
        self._pending = wanted  # chosen handles not yielded yet; None: every job
        self._index = 0  # the next finish number to look at (below the base: catch up)
        self._skipped: list[JobHandle] = []  # chosen handles that discard_finished() dropped

    def __aiter__(self) -> AsCompleted:
        return self

    async def __anext__(self) -> JobHandle:
        poller, pending = self._poller, self._pending
        while True:
            if self._index < poller._finished_base:
                self._catch_up()
            if self._skipped:
                return self._skipped.pop()
            finished = poller._finished
            while (i := self._index - poller._finished_base) < len(finished):
                handle = finished[i]
                self._index += 1
                if pending is None:
                    return handle
                if handle in pending:
                    pending.discard(handle)
                    return handle
            # Following every job, stop once none is in flight and no callback that might
            # add one is pending.
            if not pending if pending is not None else poller._idle():
                raise StopAsyncIteration
            await poller._wait_for_finish()

    def _catch_up(self) -> None:
        """discard_finished() dropped handles this iterator had not reached."""
        base = self._poller._finished_base
        if self._pending is not None:
            missed = [h for h in self._pending if 0 <= h._finish_seq < base]
            missed.sort(key=lambda h: h._finish_seq, reverse=True)  # popped from the end
            self._pending.difference_update(missed)
            self._skipped.extend(missed)
        self._index = base


def _describe(failure: BaseException | None) -> str:
    if failure is None:
        return "no detail"
    text = str(failure) or type(failure).__name__
    return (
        text
        if isinstance(failure, (PollError, TransportFailure))
        else f"{type(failure).__name__}: {text}"
    )


async def poll(url: str, **options: Any) -> Any:
    """Poll one job at ``url`` until it finishes and return its result.

    ``options`` are ``TaskPoller``'s keyword arguments (``headers=``, ``schedule=``,
    ``timeout=``, ...). Raises what awaiting the job's handle raises.
    """
    async with TaskPoller(**options) as poller:
        # The URL is the job's id; redacted, so errors and logs never show a credential.
        return await poller.add(redact_url(url), url=url)


async def poll_many(
    job_ids: Iterable[str],
    *,
    status_url: str,
    return_exceptions: bool = False,
    **options: Any,
) -> list[Any]:
    """Poll many jobs on one poller; return their results in the order given.

    Args:
        job_ids: the jobs' ids, filled into ``status_url``.
        status_url: a URL template with ``{job_id}``.
        return_exceptions: put each failed job's exception in its place instead of
            raising the first failure (which cancels the others).
        options: ``TaskPoller``'s other keyword arguments.
    """
    async with TaskPoller(status_url, **options) as poller:
        handles = [poller.add(job_id) for job_id in job_ids]
        return await poller.gather(*handles, return_exceptions=return_exceptions)
