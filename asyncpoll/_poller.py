"""``TaskPoller``: the facade a caller holds. It validates, and the engine does the work.

The path a job takes (docs/architecture.md draws it module by module)::

    add()/submit() -> registry -> scheduler -> worker: admit -> transport -> Outcome
      -> decide() (pure) -> Again | Rekey | Finish -> registry / handle / events

Options live in ``_options`` (validated where declared), the loop in ``_engine``, the
decision in ``_decide``, admission and feedback in ``_send``, out-of-schedule requests
in ``_remote``, the event stream in ``_bus``.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, Final

import anyio

from ._ascompleted import AsCompleted, PollerStatistics
from ._bus import DEFAULT_EVENT_BUFFER, EventStream
from ._clock import AnyioClock, Clock, wall_time_of
from ._detached import spawn_detached
from ._durable import Durable, check_named, handle_from, make_token, origin_check, read_token
from ._engine import Engine
from ._errors import SubmitError
from ._handle import Callback, Check, JobHandle
from ._options import (
    DEFAULT_MAX_RESULT_BODY,
    DEFAULT_RETRY_SCHEDULE,
    DEFAULT_SCHEDULE,
    Options,
    check_callback,
    check_json,
    check_method,
    check_schedule,
    check_seconds,
    job_key,
)
from ._picktransport import make_transport
from ._policy import checked_delay
from ._progress import ProgressDisplay
from ._ratelimit import RateLimit
from ._reader import Reader
from ._record import NO_BODY, JobRecord
from ._redact import quote_url, redact_headers, redact_url
from ._remote import Remote, create_request
from ._schedule import Schedule
from ._status import JobState
from ._submit import IDEMPOTENCY_HEADER
from ._transport import DEFAULT_MAX_BODY, Transport
from ._urls import fill_template
from ._views import PollerSummary, html_table

__all__ = ["AsCompleted", "PollerStatistics", "TaskPoller"]

logger = logging.getLogger("asyncpoll")


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET

#: The keyword options of ``add()`` that ``submit()`` passes on.
_ADD_OPTIONS: Final = frozenset(
    {
        "schedule",
        "timeout",
        "on_done",
        "on_progress",
        "metadata",
        "fetch_result",
        "stall_timeout",
        "cancel_url",
        "cancel_method",
        "cancel_json",
    }
)


class _Lifecycle(enum.Enum):
    UNOPENED = "unopened"
    OPEN = "open"
    SHUTTING_DOWN = "shutting down"
    CLOSING = "closing"
    CLOSED = "closed"


class _Host:
    """The background task that holds a poller opened with ``open()``: it enters the
    poller's task group, so ``aclose()`` may come from any task."""

    __slots__ = ("closed", "closing", "error", "opened", "scope", "task")

    def __init__(self) -> None:
        self.opened = anyio.Event()  # the poller is open, or failed to open (error)
        self.closing = anyio.Event()  # aclose(): leave the block normally
        self.closed = anyio.Event()
        self.scope: anyio.CancelScope | None = None  # cancelled: leave, cancelling jobs
        self.error: BaseException | None = None  # what opening or closing raised
        self.task: object = None  # a reference to the task, so it is not collected


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
        cancel_method, cancel_url, cancel_json: what ``cancel_remote()`` sends (default
            ``DELETE``), where (a template with ``{job_id}``; default: the status URL)
            and its JSON body (default: none). Many systems stop a job with ``POST
            .../cancel`` or ``.../stop``; on some a ``DELETE`` deletes the record instead.
        create_timeout: how long ``submit()`` keeps trying to create a job, in seconds
            from its first send (default: ``request_timeout``): a 429 (or a 503 with
            ``Retry-After``) is sent again after the host's cool-down, and with an
            idempotency key a transient failure is retried. Raise it to wait out
            longer cool-downs when creating many jobs.
        idempotency_key: send an ``Idempotency-Key`` header (a new UUID per job) with
            every create request, so that retrying a create after a transient failure
            cannot make a second job where the server honours it.
        transport: the client the poller makes: ``"auto"`` (the default: the fastest
            for the event loop, picked when the poller opens: ``"aiohttp"`` on asyncio,
            ``"httpx"`` on trio, and ``"httpx"`` on asyncio too while a test double
            answers httpx's requests: respx, pytest-httpx), ``"httpx"`` (httpx's own
            transport), ``"httpx-aiohttp"`` (httpx over aiohttp) or ``"aiohttp"`` (an
            ``aiohttp.ClientSession``, no httpx objects per poll: the fastest). The
            aiohttp kinds run on asyncio only; on trio they fall back to httpx's own
            transport with a warning; ``"httpx-aiohttp"`` needs the ``aiohttp`` extra.
            A ``client=`` is used as it is, whatever this says.
        progress: show a live progress display while the poller is open (tqdm's
            ``tqdm.auto``: a bar on stderr in a terminal, a widget in Jupyter): jobs
            done of jobs added, failures, jobs in flight and their mean progress, the
            rate, and in a terminal or notebook a bar for each of the (up to 3) most
            advanced jobs that report progress. Needs the ``progress`` extra.
        store: keep every job in a store, so that it outlives the process: a URL
            (``"sqlite:///jobs.db"``, ``"redis://localhost:6379/0"``, ``"memory://"``) or
            a store object. A job is stored before ``add()``/``submit()`` returns; every
            change is written behind the scheduler (every ``flush_interval``). A poller
            opened on a SQLite store resumes the live jobs in it; pollers on one Redis
            store share its jobs as a fleet (each job polled by one of them at a time,
            under a lease) and the poller's ``rate_limit`` across all of them. See the
            "Durability and scaling out" page of the docs for every guarantee.
        named: ``name -> callable or schedule``: what a store keeps by name, since code
            cannot be stored. ``add(check="sdk-status")`` (or the registered callable
            itself) stores the name; a poller resuming the job must register it too.
        retention: seconds a finished job's outcome stays in the store (default a day;
            None: for ever).
        flush_interval: seconds between two batches of store writes (default 0.05).
        lease: in a fleet, the seconds a claim holds a job (default 60): a crashed
            worker's jobs are polled by the others after it. Must exceed the longest
            wait for the rate limit plus ``request_timeout``.

    ``events()`` streams every job change; ``shutdown()`` ends the poller's work the way
    ``concurrent.futures`` executors do; ``in_flight()`` lists the jobs still running.

    Where one block cannot span the poller's life (notebook cells), ``await
    poller.open()`` and ``await poller.aclose()`` open and close it from any tasks.
    Code that cannot await at all uses ``asyncpoll.BlockingPoller``.

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
        cancel_json: Any = None,
        create_timeout: float | None = None,
        idempotency_key: bool = False,
        transport: str = "auto",
        progress: bool = False,
        store: Any = None,
        named: Mapping[str, Any] | None = None,
        retention: float | None = 86400.0,
        flush_interval: float = 0.05,
        lease: float = 60.0,
    ) -> None:
        if not isinstance(progress, bool):
            raise TypeError(f"progress must be True or False, got {progress!r}")
        # Made now, so that a missing tqdm is reported where the poller is made.
        self._progress: ProgressDisplay | None = ProgressDisplay() if progress else None
        options = self._options = Options(
            status_url=status_url,
            headers=headers,
            rate_limit=rate_limit,
            max_concurrency=max_concurrency,
            schedule=schedule,
            retry_schedule=retry_schedule,
            timeout=timeout,
            on_done=on_done,
            on_progress=on_progress,
            on_stall=on_stall,
            reader=reader,
            max_errors=max_errors,
            request_timeout=request_timeout,
            min_interval=min_interval,
            max_interval=max_interval,
            max_retry_after=max_retry_after,
            hint_headers=hint_headers,
            allowed_origins=allowed_origins,
            secret_headers=secret_headers,
            fetch_result=fetch_result,
            max_body=max_body,
            max_result_body=max_result_body,
            resubmit=resubmit,
            stall_timeout=stall_timeout,
            fail_on_stall=fail_on_stall,
            cancel_method=cancel_method,
            cancel_url=cancel_url,
            cancel_json=cancel_json,
            create_timeout=create_timeout,
            idempotency_key=idempotency_key,
            transport=transport,
            base_url=base_url,
        )
        if clock is not None and not isinstance(clock, Clock):
            raise TypeError(f"clock must have now() and sleep_until(), got {clock!r}")
        self._clock: Clock = clock if clock is not None else AnyioClock()
        self._transport: Transport = make_transport(
            transport,
            client,
            base_url=base_url,
            headers=options.headers,
            request_timeout=options.request_timeout,
            max_connections=options.max_concurrency,
            max_body=options.max_body,
            secret_headers=options.secret_headers,
        )
        self._engine = engine = Engine(options, self._transport, self._clock)
        self._named = check_named(named)
        self._durable: Durable | None = None
        if store is not None:
            check_seconds("flush_interval", flush_interval, allow_none=False)
            check_seconds("lease", lease, allow_none=False)
            if lease <= 2.0:
                raise ValueError(f"lease must be more than 2 seconds, got {lease!r}")
            self._durable = Durable(
                store,
                self._named,
                retention=check_seconds("retention", retention),
                flush_interval=float(flush_interval),
                lease=float(lease),
                claim_interval=min(0.05, float(flush_interval)),
            )
        self._remote = Remote(engine, options)
        engine.remote = self._remote
        self._lifecycle = _Lifecycle.UNOPENED
        self._tg: anyio.abc.TaskGroup | None = None
        self._host: _Host | None = None  # set by open()

    # ----------------------------------------------------------------- lifecycle

    async def __aenter__(self) -> TaskPoller:
        if self._lifecycle is not _Lifecycle.UNOPENED:
            raise RuntimeError(
                f"this TaskPoller is {self._lifecycle.value}; a TaskPoller can be entered "
                "only once, make a new one"
            )
        engine = self._engine
        loop_time = None
        if isinstance(self._clock, AnyioClock):
            self._clock = self._clock.bound()
            loop_time = self._clock.now  # the event loop's clock: cancel scopes use it
            engine.sender.rebind(self._clock)
        self._transport = engine.sender.transport = self._transport.open()
        durable = self._durable
        if durable is not None:
            try:
                await durable.open(self, engine, self._options)
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await durable.aclose()
                    await self._transport.aclose()
                self._lifecycle = _Lifecycle.CLOSED
                raise
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._lifecycle = _Lifecycle.OPEN
        engine.start(tg, loop_time)
        if durable is not None:
            durable.start(tg)
        if self._progress is not None:
            tg.start_soon(self._progress.run, engine.bus.subscribe(), name="asyncpoll progress")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        assert self._tg is not None
        engine = self._engine
        waiting_exc: BaseException | None = None
        if exc_type is None:
            # Like a task group: wait for every job, including jobs added meanwhile
            # (by callbacks too), and for every queued callback.
            try:
                await engine.wait_idle()
            except BaseException as caught:  # cancelled (a second Ctrl+C) while waiting
                waiting_exc = caught
        failure = exc if exc is not None else waiting_exc
        self._lifecycle = _Lifecycle.CLOSING
        if failure is not None:
            self._cancel_all(f"the poller's block exited with {type(failure).__name__}")
            self._tg.cancel_scope.cancel()
        engine.stop()
        if self._durable is not None:
            self._durable.stop()
        try:
            # The block's own exception is not handed to the task group, which would
            # wrap it in an ExceptionGroup: it propagates unchanged when we return.
            await self._tg.__aexit__(None, None, None)
        finally:
            self._lifecycle = _Lifecycle.CLOSED
            with anyio.CancelScope(shield=True):
                try:
                    if self._durable is not None:
                        await self._durable.aclose()
                finally:
                    await self._transport.aclose()
        if waiting_exc is not None:
            raise waiting_exc
        return None

    def __enter__(self) -> TaskPoller:
        raise TypeError(
            "TaskPoller is an async context manager: use `async with TaskPoller(...) as "
            "poller:`, or asyncpoll.BlockingPoller(...) in code that cannot await"
        )

    def __exit__(self, *exc_info: object) -> None:
        pass  # never reached: __enter__ raises

    async def open(self) -> TaskPoller:
        """Open the poller without an ``async with`` block; close it with ``aclose()``.

        For a notebook, where one cell opens the poller, later cells add jobs and look
        at them, and another cell closes it: each cell runs in its own task, and a task
        group cannot be left from a task other than the one that entered it. ``open()``
        enters the poller's task group in a background task of the running event loop
        (asyncio or trio), so ``aclose()`` may come from any task on that loop::

            poller = await asyncpoll.TaskPoller("https://api.example.com/jobs/{job_id}").open()
            handle = poller.add("42")  # in a later cell
            await poller.aclose()  # in another: waits for every job, then closes

        Returns:
            The poller itself.

        Raises:
            RuntimeError: the poller was opened before (make a new one).
        """
        if self._lifecycle is not _Lifecycle.UNOPENED or self._host is not None:
            raise RuntimeError(
                f"this TaskPoller is {self._lifecycle.value}; a TaskPoller can be opened "
                "only once, make a new one"
            )
        host = self._host = _Host()
        host.task = spawn_detached(self._run_host, host, name="asyncpoll host")
        with anyio.CancelScope(shield=True):  # entering takes no time: wait it out
            await host.opened.wait()
        if host.error is not None:
            error, host.error = host.error, None
            raise error
        return self

    async def _run_host(self, host: _Host) -> None:
        try:
            with anyio.CancelScope() as host.scope:
                async with self:
                    host.opened.set()
                    await host.closing.wait()
        except Exception as exc:  # raised by open() or aclose(), in the caller's task
            host.error = exc
        finally:
            host.opened.set()
            host.closed.set()

    async def aclose(self) -> None:
        """Close a poller opened with ``open()``, from any task of its event loop.

        Like leaving an ``async with`` block normally: waits until every job has finished
        and every queued callback has run, then stops the poller's tasks and closes the
        client it made. If the waiting task is cancelled (a notebook's interrupt), every
        job still in flight is cancelled, the poller closes, and the cancellation goes
        on. Closing a closed poller does nothing.

        Raises:
            RuntimeError: the poller was not opened with ``open()`` (an ``async with``
                block closes it by ending).
            Exception: whatever stopped the poller's tasks, if one of them failed.
        """
        host = self._host
        if host is None:
            if self._lifecycle is _Lifecycle.UNOPENED:
                raise RuntimeError("this TaskPoller is not open; there is nothing to close")
            raise RuntimeError(
                "this TaskPoller was entered with `async with`; leaving the block closes it"
            )
        if not host.closed.is_set():
            try:
                await self._engine.wait_idle()
                host.closing.set()
                await host.closed.wait()
            except BaseException:
                self._cancel_all("the poller's aclose() was interrupted")
                if host.scope is not None:
                    host.scope.cancel()
                with anyio.CancelScope(shield=True):
                    await host.closed.wait()
                raise
        if host.error is not None:
            error, host.error = host.error, None  # raised once
            raise error

    def _cancel_all(self, reason: str) -> int:
        """Resolve every job in flight CANCELLED, with one log line for all of them."""
        engine = self._engine
        handles = engine.registry.in_flight()
        if not handles:
            return 0
        if self._durable is not None:
            # Closing never cancels a stored job: its handle resolves CANCELLED here, the
            # job stays live in the store for the next poller (or the fleet).
            left = sum(
                engine.detach(handle, f"{reason}; the job stays in the store") for handle in handles
            )
            logger.warning("%d jobs in flight left in the store: %s", left, reason)
            return left
        engine.quiet = True
        try:
            cancelled = sum(engine.cancel_job(handle, reason) for handle in handles)
        finally:
            engine.quiet = False
        logger.warning("%d jobs in flight cancelled: %s", cancelled, reason)
        return cancelled

    async def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking jobs and end the poller's work, as ``Executor.shutdown()`` does.

        After it, ``add()`` and ``submit()`` raise ``RuntimeError``. Leaving the ``async
        with`` block then closes the poller at once.

        Args:
            wait: wait until every job in flight has finished and every queued callback
                has run. A cancellation of the waiting task (a second Ctrl+C, a
                lifespan's own timeout) ends the wait at once and cancels the jobs
                still in flight.
            cancel_futures: resolve every job in flight CANCELLED now (one log line
                for all), instead of letting them finish.
        """
        if self._lifecycle is _Lifecycle.UNOPENED:
            raise RuntimeError("this TaskPoller is not open; there is nothing to shut down")
        if self._lifecycle is _Lifecycle.OPEN:
            self._lifecycle = _Lifecycle.SHUTTING_DOWN
        if cancel_futures:
            self._cancel_all("the poller was shut down with cancel_futures=True")
        if not wait:
            return
        try:
            await self._engine.wait_idle()
        except BaseException:
            self._cancel_all("the poller's shutdown was interrupted")
            raise

    def in_flight(self) -> list[JobHandle]:
        """The handles of every job not finished yet, in the order they were added."""
        return self._engine.registry.in_flight()

    def _check_open(self) -> None:
        if self._lifecycle is _Lifecycle.OPEN:
            return
        if self._lifecycle is _Lifecycle.UNOPENED:
            raise RuntimeError(
                "this TaskPoller is not open; use it as `async with TaskPoller(...) as poller:`"
                " or call `await poller.open()` first"
            )
        raise RuntimeError(f"this TaskPoller is {self._lifecycle.value}; add jobs to a new one")

    def events(self, *, max_buffer: int = DEFAULT_EVENT_BUFFER) -> EventStream:
        """A stream of every job event from now on: ``async for event in poller.events()``.

        Each ``JobEvent`` says what happened (``ADDED``, ``PROGRESS``, ``STALLED``,
        ``DONE``), to which job, its state and progress, and when. A reader that falls
        behind gets each job's progress coalesced (the newest replaces an undelivered
        one); ``DONE`` events are never dropped. The stream ends when the poller closes.

        Args:
            max_buffer: jobs whose undelivered progress the stream holds at most;
                beyond it new progress events are dropped (``stream.dropped``).
        """
        if isinstance(max_buffer, bool) or not isinstance(max_buffer, int) or max_buffer < 1:
            raise ValueError(f"max_buffer must be a whole number >= 1, got {max_buffer!r}")
        return self._engine.bus.subscribe(max_buffer)

    # ----------------------------------------------------------------- adding jobs

    def add(
        self,
        job_id: str,
        url: str | None = None,
        *,
        schedule: Schedule | str | None = None,
        timeout: float | _Unset | None = UNSET,
        on_done: Callback | str | None = None,
        on_progress: Callback | str | None = None,
        metadata: Mapping[str, Any] | None = None,
        check: Check | str | None = None,
        fetch_result: bool | None = None,
        stall_timeout: float | _Unset | None = UNSET,
        cancel_url: str | None = None,
        cancel_method: str | None = None,
        cancel_json: Any = NO_BODY,
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
            cancel_method, cancel_json: the method and JSON body of that request
                (default: the poller's ``cancel_method`` and ``cancel_json``).

        Raises:
            RuntimeError: the poller is not open.
            ValueError: the job has no URL (no ``url=``, no ``status_url``, no ``check=``).
        """
        self._check_open()
        options, engine = self._options, self._engine
        key = job_key(job_id)
        existing = engine.registry.lookup(key)
        if existing is not None:
            return existing
        durable = self._durable
        if durable is not None and durable.shared:
            stored = durable.store.get(key)
            if stored is not None and not stored.terminal:
                # Another poller of the fleet added it: follow that job.
                found = durable.lookup(key, stored)
                if found is not None:
                    return found
        # A name (a str) is looked up in named=; the objects found are checked below.
        check_fn: Check | None = self._named_object("check", check)
        done_fn: Callback | None = self._named_object("on_done", on_done)
        progress_fn: Callback | None = self._named_object("on_progress", on_progress)
        sched_given: Schedule | None = self._named_object("schedule", schedule)
        if check_fn is not None:
            if not callable(check_fn):
                raise TypeError(
                    f"check= must be an async callable (handle) -> Status, got {check_fn!r}"
                )
        elif url is None:
            if options.status_url is None:
                raise ValueError(
                    f"job {key!r} has no status URL: pass url= or give the poller a "
                    "status_url template"
                )
            url = fill_template(options.status_url, key)
        elif not isinstance(url, str):
            raise TypeError(f"url must be a string, got {url!r}")
        sched = options.schedule if sched_given is None else check_schedule("schedule", sched_given)
        job_timeout = options.timeout if timeout is UNSET else check_seconds("timeout", timeout)
        check_callback("on_done", done_fn)
        check_callback("on_progress", progress_fn)
        if cancel_method is not None:
            cancel_method = check_method("cancel_method", cancel_method)
        if cancel_json is not NO_BODY:
            check_json("cancel_json", cancel_json)
        now = engine.clock.now()
        first_delay = checked_delay(sched, 0, engine.rules.rng)  # may raise: nothing added yet
        record = JobRecord(
            key,
            url,
            sched,
            job_timeout,
            None if job_timeout is None else now + job_timeout,
            fetch_result=options.fetch_result if fetch_result is None else bool(fetch_result),
            stall_timeout=(
                options.stall_timeout
                if stall_timeout is UNSET
                else check_seconds("stall_timeout", stall_timeout)
            ),
            changed_at=now,
            added_at=now,
            cancel_method=cancel_method,
            cancel_json=cancel_json,
        )
        absolute = self._transport.absolute
        if url is not None:
            record.target = record.origin = absolute(url)
        if cancel_url is not None:
            record.cancel_url = absolute(cancel_url)
        elif options.cancel_url is not None:
            record.cancel_url = absolute(fill_template(options.cancel_url, key))
        handle = JobHandle(
            engine,
            self,
            record,
            check=check_fn,
            on_done=done_fn,
            on_progress=progress_fn,
            metadata=metadata,
        )
        engine.track(handle, now + first_delay)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("job %r added (%s)", key, redact_url(url) if url else "check=")
        return handle

    def _named_object(self, what: str, value: Any) -> Any:
        """``value``, or the object registered under it when it is a name."""
        if not isinstance(value, str):
            return value
        found = self._named.get(value)
        if found is None:
            known = sorted(self._named) or "none"
            raise ValueError(
                f"{what}={value!r} names nothing registered with TaskPoller(named=...) "
                f"(registered: {known})"
            )
        return found

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
        idempotency_key: bool | str | None = None,
        **add_options: Any,
    ) -> JobHandle:
        """Create a job with one request, then poll it; returns its handle.

        The create request counts against the rate limit. A 429 (or a 503 with
        ``Retry-After``) is sent again after the host's cool-down, within
        ``create_timeout``: the server refused it, so no job was made. The status URL comes from the
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
            idempotency_key: ``True`` sends an ``Idempotency-Key`` header with a new
                UUID, a string sends that key (default: the poller's
                ``idempotency_key``). With a key, a create that failed in transit
                (no answer, 5xx, 408) is sent again on the retry schedule, up to
                ``max_errors`` times within ``create_timeout``; the server answers a
                repeated key with the job it already made. An ``Idempotency-Key`` in
                ``headers`` counts as a key too.
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
        self._check_add_options(add_options)  # before a job exists that could be lost
        key = self._options.idempotency_key if idempotency_key is None else idempotency_key
        resubmits = self._options.resubmit if resubmit is None else resubmit
        if idempotency_key is None and not key and resubmits and self._durable is not None:
            # A resubmit sent again after a crash must not make a second job.
            key = True
        create = create_request(method, url, json, data, content, headers, key)
        response, job_id, status_url, from_template = await self._remote.create(create)
        registry = self._engine.registry
        existing = registry.lookup(job_id)
        if existing is not None and existing._record.target != status_url:
            # Two jobs whose ids were guessed from alike URLs (.../42/status and
            # .../43/status): the status URL tells them apart.
            job_id = redact_url(status_url)
            existing = registry.lookup(job_id)
        handle = self.add(job_id, status_url, **add_options)
        if handle is existing:
            return handle  # the server gave back a job already followed (an idempotent create)
        self._remote.adopt(handle, create, response, from_template, resubmits)
        durable = self._durable
        if durable is not None and durable.journal is not None:
            # The create request (for resubmits) is stored before submit() returns.
            row = durable.store.get(handle._record.job_id)
            if row is not None and not row.terminal:
                durable.journal.changed(handle, row.due - durable.journal.offset())
                await durable.journal.flush()
        return handle

    def _check_add_options(self, options: Mapping[str, Any]) -> None:
        """Raise for ``add()`` options that ``add()`` would refuse."""
        unknown = sorted(set(options) - _ADD_OPTIONS)
        if unknown:
            raise TypeError(
                f"submit() got unexpected keyword arguments {unknown}; it takes add()'s "
                f"options: {sorted(_ADD_OPTIONS)}"
            )
        for name in ("timeout", "stall_timeout"):
            if name in options:
                check_seconds(name, options[name])
        if options.get("schedule") is not None:
            schedule = check_schedule("schedule", options["schedule"])
            checked_delay(schedule, 0, self._engine.rules.rng)  # raises for a bad first delay
        if options.get("cancel_url") is not None and not isinstance(options["cancel_url"], str):
            raise TypeError(f"cancel_url must be a string, got {options['cancel_url']!r}")
        metadata = options.get("metadata")
        if metadata is not None and not isinstance(metadata, Mapping):
            raise TypeError(f"metadata must be a mapping, got {metadata!r}")
        for name in ("on_done", "on_progress"):
            check_callback(name, options.get(name))
        if options.get("cancel_method") is not None:
            check_method("cancel_method", options["cancel_method"])
        if "cancel_json" in options:
            check_json("cancel_json", options["cancel_json"])

    async def submit_many(
        self,
        url: str,
        payloads: Iterable[Any],
        *,
        method: str = "POST",
        headers: Mapping[str, str] | None = None,
        return_exceptions: bool = False,
        **submit_options: Any,
    ) -> list[Any]:
        """Create one job per JSON payload and poll them all; handles in payload order.

        The creates go out under the rate limit, at most ``max_concurrency`` at a time,
        each as ``submit(url, json=payload, ...)`` would send it (429s waited out,
        ``idempotency_key=`` and ``add()``'s options apply to each). Await the handles
        with ``gather()`` or ``as_completed()``.

        Args:
            url, method, headers: the create request, as in ``submit()``.
            payloads: one JSON body per job. With ``idempotency_key="batch-7"`` (or
                that key in ``headers``) payload ``i`` is sent with key ``batch-7-i``.
            return_exceptions: put a failed create's ``SubmitError`` in its place
                instead of raising the first one.
            submit_options: ``submit()``'s other keyword options (``idempotency_key=``,
                ``resubmit=``, ``timeout=``...).

        Raises:
            SubmitError: the first create that failed (unless ``return_exceptions``),
                once every create has been tried; the jobs that were created are
                polled all the same (``in_flight()`` lists them).
        """
        self._check_open()
        items = list(payloads)
        results: list[Any] = [None] * len(items)
        pending = iter(enumerate(items))
        # One key for every payload would make the server answer each create with the
        # first job: a key given as text (or in headers) becomes one per payload.
        given = dict(headers or {})
        key = submit_options.pop("idempotency_key", None)
        for name in [n for n in given if n.lower() == IDEMPOTENCY_HEADER.lower()]:
            key = given.pop(name)
        if isinstance(key, str):
            self._check_add_options({k: v for k, v in submit_options.items() if k != "resubmit"})
            if not key:
                raise ValueError("idempotency_key must be True, False or a non-empty string")

        async def create_next() -> None:
            for index, payload in pending:
                own_key = f"{key}-{index}" if isinstance(key, str) else key
                try:
                    results[index] = await self.submit(
                        url,
                        method=method,
                        json=payload,
                        headers=given,
                        idempotency_key=own_key,
                        **submit_options,
                    )
                except Exception as exc:  # kept in its place; raised below
                    results[index] = exc

        async with anyio.create_task_group() as tg:
            for _ in range(min(self._options.max_concurrency, len(items))):
                tg.start_soon(create_next)
        unexpected = next(
            (r for r in results if isinstance(r, Exception) and not isinstance(r, SubmitError)),
            None,
        )
        if unexpected is not None:
            raise unexpected
        if not return_exceptions:
            failed = next((r for r in results if isinstance(r, SubmitError)), None)
            if failed is not None:
                raise failed
        return results

    # ----------------------------------------------------------------- waiting

    def _lookup(self, job: JobHandle | str) -> JobHandle:
        if isinstance(job, JobHandle):
            if job._poller is not self:
                raise ValueError(f"{job!r} belongs to another TaskPoller")
            return job
        key = job_key(job)
        handle = self._engine.registry.latest(key)
        if handle is None:
            raise ValueError(f"no job {key!r} in this poller; add() it first")
        return handle

    def handle(self, job_id: str) -> JobHandle:
        """The handle of job ``job_id`` (the latest one, if the id was added again).

        With a store: of any job in the store, live or finished, added by this poller,
        an earlier process or (a shared store) another poller of the fleet. A finished
        job's handle is resolved with the stored outcome; a live one resolves when the
        job finishes, wherever it is polled.

        Raises:
            ValueError: no job with that id was added to this poller (or is stored).
            LookupError: the stored job needs a name this poller has not registered.
        """
        key = job_key(job_id)
        found = self._engine.registry.latest(key)
        if found is None and self._durable is not None and self._durable.journal is not None:
            found = self._durable.lookup(key)
        if found is None:
            where = " or its store" if self._durable is not None else ""
            raise ValueError(f"no job {key!r} in this poller{where}; add() it first")
        return found

    def nudge(self, job_id: str) -> bool:
        """Poll job ``job_id`` as soon as the limits allow: a pushed update's hint.

        For a webhook or a message saying a job changed: its next poll moves to now (or
        to ``min_interval`` after its last request, if that is later). A nudge is a
        hint only: the job's state, result and error still come from polling it, never
        from what was pushed, and its poll waits for the rate limit and the host's
        cool-down like any other. Nudges coalesce: one for a job already due, queued or
        in a request adds no request, so a thousand nudges cost one poll at most. A job
        waiting out ``retry_schedule`` after a failed request or a 429, or before a
        resubmit, keeps its wait.

        Returns:
            True when a job of that id is in flight here (its next poll is as soon as
            allowed); False, changing nothing, for an id no job in flight here has: an
            unknown or finished job, an id that is not a non-empty string or an int
            (pushed data is not trusted), a poller that is not open, or in a fleet (a
            shared store) a job this worker holds no claim on (between polls, a fleet's
            jobs wait in the store, not in any one worker).
        """
        if isinstance(job_id, bool) or not isinstance(job_id, (str, int)) or job_id == "":
            return False
        if self._lifecycle not in (_Lifecycle.OPEN, _Lifecycle.SHUTTING_DOWN):
            return False
        handle = self._engine.registry.lookup(str(job_id))
        return handle is not None and self._engine.nudge(handle)

    async def wait(self, job_id: str) -> Any:
        """Wait for job ``job_id`` (``handle(job_id)``) and return its result.

        In a fleet it resolves when any poller of the fleet finishes the job.

        Raises:
            JobFailed, JobTimeout, JobCancelled, PollError: as ``await handle`` does.
        """
        return await self.handle(job_id)

    def resume(self, token: str | bytes, *, trusted: bool = False) -> JobHandle:
        """Follow the job of a resume token (``handle.resume_token()``) from here on.

        Its schedule goes on from its last attempt; its first poll is due when the token
        was made. A job of that id already in flight is returned as it is.

        Args:
            token: the token's JSON text.
            trusted: accept URLs of any origin. Without it every URL in the token must
                be of an origin this poller polls (its ``status_url``, ``base_url`` or
                ``allowed_origins``), so that a token from elsewhere cannot send the
                poller's credentials to a host it names.

        Raises:
            ValueError: not a resume token, a token of an unknown version, a field that
                is wrong (named), or a URL of an origin the poller does not poll.
            LookupError: the token's job needs a name this poller has not registered.
        """
        self._check_open()
        engine = self._engine
        options = self._options
        absolute = self._transport.absolute
        roots = [
            absolute(root)
            for root in (options.status_url, options.base_url)
            if root is not None and "://" in absolute(root)
        ]
        origins = (lambda url: True) if trusted else origin_check(roots, options.allowed_origins)
        offset = wall_time_of(engine.clock)() - engine.clock.now()
        decoded = read_token(token, origins, offset=offset, named=self._named)
        existing = engine.registry.lookup(decoded.record.job_id)
        if existing is not None:
            return existing
        handle = handle_from(decoded, engine, self, self._named, "resume token")
        engine.track(handle, decoded.due)
        return handle

    def _resume_token(self, handle: JobHandle, headers: Iterable[str]) -> str:
        engine = self._engine
        now = engine.clock.now()
        return make_token(
            handle,
            list(headers),
            self._options.secret_headers,
            due=now,
            offset=wall_time_of(engine.clock)() - now,
            named=self._named,
        )

    async def serve(self, *, until_empty: bool = False) -> None:
        """Poll until cancelled: what a worker of a fleet runs.

        ``async with TaskPoller(store="redis://...") as poller: await poller.serve()``
        polls the fleet's jobs, whoever added them, until the task is cancelled.

        Args:
            until_empty: return once no job is live in the store (a store of one
                poller: once every job in flight has finished).
        """
        self._check_open()
        durable = self._durable
        if not until_empty:
            await anyio.sleep_forever()
        if durable is None or durable.fleet is None:
            await self._engine.wait_idle()
            return
        fleet, clock = durable.fleet, self._engine.clock
        while True:
            if not fleet.claimed and not len(self._engine.registry):
                if durable.journal is not None and durable.journal.pending:
                    await durable.journal.flush()
                if not await durable.store.live():
                    return
            await clock.sleep_until(clock.now() + 0.25)

    @property
    def unresumed(self) -> dict[str, str]:
        """Stored live jobs this poller cannot poll (a name it has not registered):
        job id -> why. They stay in the store for a poller that can."""
        return {} if self._durable is None else dict(self._durable.unresumed)

    @property
    def store(self) -> Any:
        """The poller's store (None without ``store=``)."""
        return None if self._durable is None else self._durable.store

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
        engine = self._engine
        dropped = len(engine.finished)
        for handle in engine.finished:
            engine.registry.forget(handle)
        engine.finished_base += dropped
        engine.finished = []
        return dropped

    def as_completed(self, handles: Iterable[JobHandle | str] | None = None) -> AsCompleted:
        """Iterate over handles in the order their jobs finish, those already finished first.

        ``async for handle in poller.as_completed(): ...``. Breaking out early is safe:
        the iterator holds no resources.

        Args:
            handles: handles or job ids to follow; None follows every job of the
                poller, including jobs added while iterating, until none is in flight.
        """
        wanted = None if handles is None else {self._lookup(h) for h in handles}
        return AsCompleted(self._engine, wanted)

    async def gather(self, *jobs: JobHandle | str, return_exceptions: bool = False) -> list[Any]:
        """Wait for the given jobs and return their results in the order given.

        Args:
            jobs: handles or job ids.
            return_exceptions: put each failed job's exception in its place instead of
                raising the first failure (jobs keep polling either way).

        Raises:
            AsyncPollError: the exception of the first job to fail, unless
                ``return_exceptions``.
        """
        handles = [self._lookup(job) for job in jobs]
        async for handle in AsCompleted(self._engine, set(handles)):
            error = handle.exception()
            if error is not None and not return_exceptions:
                raise error
        return [h.exception() if h.exception() is not None else h.result() for h in handles]

    async def cancel(self, job_id: JobHandle | str, *, remote: bool = False) -> bool:
        """Stop polling a job and resolve it CANCELLED.

        Args:
            remote: also ask the server to cancel it (``handle.cancel_remote()``);
                without it the server is never contacted.

        Returns:
            True if the job was cancelled now, False if it had already finished (or,
            remotely, the server reported a final state).
        """
        handle = self._lookup(job_id)
        if remote:
            return await handle.cancel_remote()
        return handle.cancel()

    # ----------------------------------------------------------------- introspection

    def statistics(self) -> PollerStatistics:
        """A snapshot of the poller's counters."""
        engine = self._engine
        limiter = engine.sender.limiter
        return PollerStatistics(
            active=len(engine.registry),
            finished=dict(engine.finished_by_state),
            requests=engine.sender.requests,
            transient_errors=engine.transient_errors,
            throttled=engine.throttled,
            callback_errors=engine.callbacks.errors,
            waiting_for_rate_limit=0 if limiter is None else limiter.waiting,
        )

    def summary(self) -> PollerSummary:
        """How many jobs are in each state, and the requests made; prints as one line."""
        engine = self._engine
        live = dict.fromkeys((JobState.PENDING, JobState.RUNNING), 0)
        stalled = 0
        for handle in engine.registry.in_flight():
            record = handle._record
            live[record.state] = live.get(record.state, 0) + 1
            stalled += record.stalled
        ended = engine.finished_by_state
        return PollerSummary(
            pending=live[JobState.PENDING],
            running=live[JobState.RUNNING],
            succeeded=ended[JobState.SUCCEEDED],
            failed=ended[JobState.FAILED],
            cancelled=ended[JobState.CANCELLED],
            timed_out=ended[JobState.TIMED_OUT],
            errored=ended[JobState.ERRORED],
            stalled=stalled,
            requests=engine.sender.requests,
        )

    @property
    def transport(self) -> str:
        """The client the poller sends on: ``"aiohttp"``, ``"httpx"`` or
        ``"httpx-aiohttp"``; ``"auto"`` until a poller made with ``transport="auto"``
        (the default) opens and picks one."""
        return str(getattr(self._transport, "kind", "auto"))

    @property
    def rate_limit(self) -> RateLimit | None:
        """The poller's ``RateLimit``, or None."""
        return self._options.poller_limit

    def __repr__(self) -> str:
        engine, options = self._engine, self._options
        parts = [f"<TaskPoller {self._lifecycle.value}", f"active={len(engine.registry)}"]
        parts.append(f"finished={engine.finished_base + len(engine.finished)}")
        if options.status_url is not None:
            parts.append(f"status_url={quote_url(options.status_url)}")
        if options.headers:
            parts.append(f"headers={redact_headers(options.headers, options.secret_headers)!r}")
        if engine.sender.limiter is not None:
            parts.append(repr(engine.sender.limiter))
        return " ".join(parts) + ">"

    def _repr_html_(self) -> str:
        return html_table("TaskPoller", self._view_rows())

    def _view_rows(self) -> list[tuple[str, object]]:
        """The ``(name, value)`` rows of the poller's HTML view."""
        options = self._options
        rows: list[tuple[str, object]] = [("state", self._lifecycle.value)]
        if options.status_url is not None:
            rows.append(("status URL", redact_url(options.status_url)))
        rows += self.summary().rows()
        if options.poller_limit is not None:
            rows.append(("rate limit", options.poller_limit))
        return rows
