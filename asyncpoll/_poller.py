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

import enum
import heapq
import inspect
import itertools
import logging
import math
import random
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import anyio
import attrs
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._clock import AnyioClock, Clock
from ._errors import JobCancelled, JobFailed, JobTimeout, PollError
from ._handle import Callback, Check, JobHandle
from ._http import HttpxTransport, Transport, TransportFailure
from ._policy import Verdict, checked_delay, classify, next_delay
from ._ratelimit import Limiter, RateLimit
from ._reader import DefaultReader, Reader, retry_after_of
from ._redact import redact_headers, redact_url
from ._response import Response, excerpt
from ._schedule import Schedule, backoff
from ._status import JobState, Status

__all__ = ["AsCompleted", "PollerStatistics", "TaskPoller", "poll", "poll_many"]

logger = logging.getLogger("asyncpoll")


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET

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


def _check_count(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
    return value


def _check_schedule(name: str, value: object) -> Schedule:
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
        client: an ``httpx.AsyncClient`` the caller owns; the poller never closes it.
        base_url: base for relative URLs of a client the poller makes.
        reader: turns a 2xx response into a ``Status`` (default ``DefaultReader()``).
        max_errors: transient failures in a row that end a job ERRORED (the
            ``max_errors``-th one does); 429s never count.
        request_timeout: the longest one status request may take as a whole, in
            seconds (None: bounded only by the job's deadline).
        clock: the clock every wait goes through (default: the event loop's).
    """

    def __init__(
        self,
        status_url: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        rate_limit: RateLimit | float | None = None,
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
    ) -> None:
        if status_url is not None and (
            not isinstance(status_url, str) or "{job_id}" not in status_url
        ):
            raise ValueError(
                f"status_url must be a URL template containing '{{job_id}}', got {status_url!r}"
            )
        self._status_url = status_url
        self._headers = dict(headers or {})
        self._rate_limit = RateLimit.coerce(rate_limit)
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
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must have now() and sleep_until(), got {clock!r}")
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._transport: Transport = HttpxTransport(
            client=client,
            base_url=base_url,
            headers=self._headers,
            request_timeout=request_timeout,
            max_connections=max_concurrency,
        )
        self._limiter: Limiter | None = (
            Limiter(self._rate_limit, self._clock) if self._rate_limit is not None else None
        )
        self._rng = random.Random()
        self._lifecycle = _Lifecycle.UNOPENED

        self._active: dict[str, JobHandle] = {}  # job id -> handle, jobs in flight
        self._handles: dict[str, JobHandle] = {}  # job id -> latest handle, for lookups
        self._finished: list[JobHandle] = []  # handles in the order they finished
        self._finished_base = 0  # finish number of _finished[0]; discard_finished() moves it
        self._heap: list[tuple[float, int, JobHandle]] = []  # min-heap of (due, seq, handle)
        self._seq = itertools.count()
        self._wake_at = math.inf  # when the scheduler's current sleep ends
        self._wake_scope: anyio.CancelScope | None = None
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
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        ready_send, ready_recv = anyio.create_memory_object_stream[JobHandle](math.inf)
        cb_send, cb_recv = anyio.create_memory_object_stream[tuple[Callback, JobHandle]](math.inf)
        self._ready_send, self._callback_send = ready_send, cb_send
        self._lifecycle = _Lifecycle.OPEN
        tg.start_soon(self._scheduler, name="asyncpoll scheduler")
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

    def _push(self, handle: JobHandle, due: float) -> None:
        deadline = handle._deadline
        if deadline is not None and due > deadline:
            due = deadline
        heapq.heappush(self._heap, (due, next(self._seq), handle))
        if due < self._wake_at:
            self._wake_at = due
            if self._wake_scope is not None:
                self._wake_scope.cancel()

    # ----------------------------------------------------------------- the engine

    async def _scheduler(self) -> None:
        heap, clock = self._heap, self._clock
        assert self._ready_send is not None
        send = self._ready_send.send_nowait
        while self._lifecycle is _Lifecycle.OPEN:
            now = clock.now()
            while heap and heap[0][0] <= now:
                _, _, handle = heapq.heappop(heap)
                if handle._finish_seq >= 0:
                    continue  # cancelled while waiting: a stale entry
                deadline = handle._deadline
                if deadline is not None and now >= deadline:
                    self._time_out(handle)
                    continue
                send(handle)
            self._wake_at = heap[0][0] if heap else math.inf
            with anyio.CancelScope() as scope:
                self._wake_scope = scope
                await clock.sleep_until(self._wake_at)
            self._wake_scope = None

    async def _worker(self, ready: MemoryObjectReceiveStream[JobHandle]) -> None:
        with ready:
            async for handle in ready:
                if handle._finish_seq >= 0:
                    continue
                try:
                    await self._poll(handle)
                except Exception as exc:  # a bug must cost one job, never the poller
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

    async def _poll(self, handle: JobHandle) -> None:
        """Make one status request for ``handle`` and act on what it says."""
        clock = self._clock
        deadline = handle._deadline
        bound = math.inf if deadline is None else deadline
        if clock.now() >= bound:
            self._time_out(handle)
            return
        status: Status | None = None
        failure: BaseException | None = None
        verdict = Verdict.READ
        response: Response | None = None
        timed_out = False
        with anyio.CancelScope() as scope:
            handle._scope = scope  # handle.cancel() interrupts the wait and the request
            if self._limiter is not None and not await self._limiter.acquire(bound):
                timed_out = True  # the deadline came before the rate-limit slot
            else:
                handle._attempts += 1
                self._requests += 1
                limit = bound - clock.now()
                request_timeout = self._request_timeout
                by_deadline = request_timeout is None or limit <= request_timeout
                if request_timeout is not None and not by_deadline:
                    limit = request_timeout
                with anyio.move_on_after(None if limit == math.inf else limit) as request_scope:
                    try:
                        if handle._check is not None:
                            status = await self._call_check(handle)
                        else:
                            assert handle.url is not None
                            response = await self._transport.get(handle.url)
                    except TransportFailure as exc:
                        failure = exc
                        verdict = Verdict.TRANSIENT if exc.transient else Verdict.FATAL
                    except PollError as exc:
                        failure, verdict = exc, Verdict.FATAL
                    except Exception as exc:
                        failure, verdict = exc, Verdict.TRANSIENT
                    except anyio.get_cancelled_exc_class() as exc:
                        # A real cancellation (this job's, the request limit's, the
                        # poller's) raises again here; one that user code raised on its
                        # own (an SDK's cancelled future) is this job's failure.
                        await anyio.lowlevel.checkpoint_if_cancelled()
                        failure, verdict = exc, Verdict.TRANSIENT
                if request_scope.cancelled_caught:
                    if by_deadline:
                        timed_out = True
                    else:
                        failure = TimeoutError(
                            "no complete response within "
                            f"request_timeout={self._request_timeout:g} s"
                        )
                        verdict = Verdict.TRANSIENT
        handle._scope = None
        if handle._finish_seq >= 0 or scope.cancelled_caught:
            return  # cancelled meanwhile
        if timed_out:
            self._time_out(handle)
            return
        if response is not None:
            verdict = classify(response.status_code)
            if verdict is Verdict.READ:
                try:
                    status = self._reader(response)
                    if not isinstance(status, Status):
                        raise PollError(
                            f"the reader returned {type(status).__name__}, not a Status",
                            http_status=response.status_code,
                        )
                except PollError as exc:
                    failure, verdict = exc, Verdict.FATAL
                except Exception as exc:
                    failure, verdict = exc, Verdict.TRANSIENT
        if status is not None and failure is None:
            self._on_status(handle, status)
        elif verdict is Verdict.THROTTLED:
            self._on_throttled(handle, response)
        elif verdict is Verdict.TRANSIENT:
            self._on_transient(handle, failure, response)
        else:
            self._on_fatal(handle, failure, response)

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

    def _on_status(self, handle: JobHandle, status: Status) -> None:
        previous = handle._status
        handle._status = status
        handle._errors = 0
        handle._throttles = 0
        handle._last_failure = None
        state = status.state
        if state is JobState.SUCCEEDED:
            self._finish(handle, state, result=status.result)
        elif state is JobState.FAILED:
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
            changed_state = state is not handle._state
            if changed_state or previous is None or previous.progress != status.progress:
                if changed_state and logger.isEnabledFor(logging.DEBUG):
                    logger.debug("job %r is %s", handle.job_id, state.value)
                handle._state = state
                self._queue_callbacks(self._on_progress, handle._on_progress, handle)
            delay = next_delay(handle._schedule, handle._attempts, status.retry_after, self._rng)
            self._push(handle, self._clock.now() + delay)

    def _on_throttled(self, handle: JobHandle, response: Response | None) -> None:
        self._throttled += 1
        handle._throttles += 1
        self._retry_later(handle, handle._throttles, response)

    def _retry_later(self, handle: JobHandle, n: int, response: Response | None) -> None:
        """Reschedule after a failed request: the retry schedule, raised to any hint."""
        hint = None if response is None else retry_after_of(response)
        delay = next_delay(self._retry_schedule, n, hint, self._rng)
        self._push(handle, self._clock.now() + delay)

    def _on_transient(
        self, handle: JobHandle, failure: BaseException | None, response: Response | None
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
        self._retry_later(handle, handle._errors, response)

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

    async def cancel(self, job_id: JobHandle | str) -> bool:
        """Stop polling a job and resolve it CANCELLED (never contacts the server).

        Returns:
            True if the job was cancelled now, False if it had already finished.
        """
        return self._lookup(job_id).cancel()

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
            parts.append(f"headers={redact_headers(self._headers)!r}")
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
