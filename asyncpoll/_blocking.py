"""The blocking facade: ``BlockingPoller``, ``poll_blocking()`` and ``poll_many_blocking()``.

For scripts and notebook cells that do not ``await``. The engine runs on one event loop in
a background thread (anyio's blocking portal); each method hands its work to that loop and
blocks the calling thread until the answer is back. The calling thread may have an event
loop of its own running (a notebook's): the engine never needs it.
"""

from __future__ import annotations

import functools
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any

import anyio
from anyio.from_thread import BlockingPortal, start_blocking_portal

from ._ascompleted import AsCompleted, PollerStatistics
from ._handle import JobHandle, handle_rows
from ._poller import TaskPoller
from ._record import Submission
from ._response import Response
from ._shortcuts import poll, poll_many
from ._status import JobState, Status
from ._views import PollerSummary, html_table

__all__ = ["BlockingHandle", "BlockingPoller", "poll_blocking", "poll_many_blocking"]

#: The event loop the engine runs on unless ``backend=`` says otherwise.
DEFAULT_BACKEND = "asyncio"


class BlockingHandle:
    """One job of a ``BlockingPoller``: a ``JobHandle`` whose waits block the thread.

    ``result(timeout=None)`` and ``exception(timeout=None)`` wait for the job, like a
    ``concurrent.futures.Future``; the properties read the job's latest state. Made by
    ``BlockingPoller.add()`` and ``submit()``, never directly.
    """

    __slots__ = ("_done", "_handle", "_portal")

    def __init__(self, handle: JobHandle, portal: BlockingPortal) -> None:
        self._handle = handle
        self._portal = portal
        self._done: threading.Event | None = None  # set from the loop when the job ends

    @property
    def handle(self) -> JobHandle:
        """The ``JobHandle`` on the poller's event loop (await it only on that loop)."""
        return self._handle

    @property
    def job_id(self) -> str:
        """The job's id."""
        return self._handle.job_id

    @property
    def url(self) -> str | None:
        """The status URL polled, or None for a job with a ``check=`` callable."""
        return self._handle.url

    @property
    def state(self) -> JobState:
        """The job's state: from the last status read, or the terminal state reached."""
        return self._handle.state

    @property
    def status(self) -> Status | None:
        """The last ``Status`` read, or None before the first successful poll."""
        return self._handle.status

    @property
    def progress(self) -> float | None:
        """How far along the job is, 0.0 to 1.0, or None when the server has not said."""
        return self._handle.progress

    @property
    def attempts(self) -> int:
        """Requests made for this job so far, failed ones included."""
        return self._handle.attempts

    @property
    def metadata(self) -> dict[str, Any]:
        """The mapping given to ``add(metadata=...)``."""
        return self._handle.metadata

    @property
    def last_response(self) -> Response | None:
        """The last HTTP response received for this job (any status), or None."""
        return self._handle.last_response

    @property
    def submissions(self) -> tuple[Submission, ...]:
        """Each create request sent for this job."""
        return self._handle.submissions

    @property
    def stalled(self) -> bool:
        """True while the job's state and progress have not changed for ``stall_timeout``."""
        return self._handle.stalled

    def done(self) -> bool:
        """True once the job reached a terminal state."""
        return self._handle.done()

    def result(self, timeout: float | None = None) -> Any:
        """Wait for the job and return its result, or raise its exception.

        Args:
            timeout: the longest wait, in seconds (None: until the job finishes).

        Raises:
            TimeoutError: the wait ran out; the job keeps polling. (The job's own
                ``JobTimeout`` is a ``TimeoutError`` too: ``done()`` tells them apart.)
            JobFailed, JobTimeout, JobCancelled, PollError: the job did not succeed.
        """
        self._wait(timeout)
        return self._handle.result()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """Wait for the job and return the exception it ended with, or None.

        Raises:
            TimeoutError: the wait of ``timeout`` seconds ran out; the job keeps polling.
        """
        self._wait(timeout)
        return self._handle.exception()

    def _wait(self, timeout: float | None) -> None:
        handle = self._handle
        if handle.done():
            return
        done = self._done
        if done is None:
            done = self._done = threading.Event()
            self._portal.call(handle.add_done_callback, lambda _: done.set())
        if not done.wait(timeout):
            raise TimeoutError(
                f"job {handle.job_id!r} is still {handle.state.value} after {timeout} s; "
                "it keeps polling"
            )

    def cancel(self) -> bool:
        """Stop polling the job and resolve it CANCELLED; never contacts the server.

        Returns:
            True if the job was cancelled now, False if it had already finished.
        """
        if self._handle.done():
            return False  # also once the poller is closed
        return self._portal.call(self._handle.cancel)

    def cancel_remote(self) -> bool:
        """Ask the server to cancel the job, as ``JobHandle.cancel_remote()`` does."""
        return self._portal.call(self._handle.cancel_remote)

    def add_done_callback(self, fn: Callable[[BlockingHandle], object]) -> None:
        """Call ``fn(blocking_handle)`` when the job finishes, on the poller's loop thread.

        ``fn`` must not block, nor call the ``BlockingPoller`` (that would wait on the
        thread that has to answer).
        """
        self._portal.call(self._handle.add_done_callback, lambda _: fn(self))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, BlockingHandle):
            return self._handle is other._handle
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._handle)

    def __repr__(self) -> str:
        return "<BlockingHandle" + repr(self._handle)[len("<JobHandle") :]

    def _repr_html_(self) -> str:
        return html_table("BlockingHandle", handle_rows(self._handle))


def _abandon(
    portal: BlockingPortal, portal_cm: AbstractContextManager[BlockingPortal], poller: TaskPoller
) -> None:
    """A ``BlockingPoller`` collected or left open at exit: cancel its jobs, stop its loop."""
    try:
        portal.call(functools.partial(poller.shutdown, wait=False, cancel_futures=True))
        portal.call(poller.aclose)
        portal.call(portal.stop, True)
    except Exception:  # at exit, a poller half gone is not worth a traceback
        pass
    finally:
        portal_cm.__exit__(None, None, None)


def _unwrap(job: BlockingHandle | JobHandle | str) -> JobHandle | str:
    return job._handle if isinstance(job, BlockingHandle) else job


async def _open_poller(status_url: str | None, options: Mapping[str, Any]) -> TaskPoller:
    return await TaskPoller(status_url, **options).open()


class BlockingPoller:
    """A ``TaskPoller`` for code that does not ``await``: scripts and notebook cells.

    It takes ``TaskPoller``'s arguments, opens at once, and runs the engine on an event
    loop of its own in a background thread, so it works whether or not an event loop is
    already running in the calling thread (a notebook's), and across notebook cells::

        with asyncpoll.BlockingPoller("https://api.example.com/jobs/{job_id}") as poller:
            handle = poller.add("42")
            print(handle.result(timeout=600))
            print(poller.gather("43", "44", return_exceptions=True))

    Every method blocks the calling thread until its answer is back from the loop
    thread. Callbacks (``on_done=``...) run on the loop thread and get the loop's
    ``JobHandle``; they must not call back into the ``BlockingPoller``.

    Args:
        status_url: as ``TaskPoller``'s.
        backend: the event loop the engine runs on: ``"asyncio"`` (the default) or
            ``"trio"``.
        backend_options: passed to ``anyio.run()`` for that loop.
        options: ``TaskPoller``'s keyword arguments. A ``client=`` must be one that
            can run on the background loop: an ``httpx.AsyncClient`` not used on
            another loop yet (an ``aiohttp.ClientSession`` is bound to the loop it
            was made on; let the poller make its own, as it does by default).
    """

    def __init__(
        self,
        status_url: str | None = None,
        *,
        backend: str = DEFAULT_BACKEND,
        backend_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self._closed = False
        self._portal_cm: AbstractContextManager[BlockingPortal] = start_blocking_portal(
            backend, backend_options
        )
        portal = self._portal = self._portal_cm.__enter__()
        try:
            self._poller: TaskPoller = portal.call(_open_poller, status_url, options)
        except BaseException as exc:
            self._closed = True
            self._portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        # A poller never closed must not hold the process at exit: finalizers run (at
        # exit, or when the poller is collected) while the loop thread can still run, and
        # cancel the jobs in flight.
        self._finalizer = weakref.finalize(self, _abandon, portal, self._portal_cm, self._poller)

    # ----------------------------------------------------------------- lifecycle

    def __enter__(self) -> BlockingPoller:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Like leaving TaskPoller's block: normally wait for every job; with an
        # exception, cancel the jobs in flight.
        self.close(cancel_futures=exc is not None)

    def close(self, *, cancel_futures: bool = False) -> None:
        """Wait for every job to finish, then stop the poller and its thread.

        Closing a closed poller does nothing. An interrupt (Ctrl+C) while waiting
        cancels the jobs in flight, closes, and goes on.

        Args:
            cancel_futures: resolve every job in flight CANCELLED first, instead of
                waiting for them.
        """
        if self._closed:
            return
        self._closed = True
        self._finalizer.detach()
        portal, poller = self._portal, self._poller
        try:
            if cancel_futures:
                portal.call(functools.partial(poller.shutdown, wait=False, cancel_futures=True))
            portal.call(poller.aclose)
        except BaseException as exc:  # an interrupt: cancel the close (and the jobs)
            self._portal_cm.__exit__(type(exc), exc, exc.__traceback__)
            raise
        # A wait a caller gave up on (Ctrl+C in as_completed()) may still be queued.
        portal.call(portal.stop, True)
        self._portal_cm.__exit__(None, None, None)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed

    # ----------------------------------------------------------------- jobs

    def _wrap(self, handle: JobHandle) -> BlockingHandle:
        return BlockingHandle(handle, self._portal)

    def _call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` on the loop thread; a clear error once the poller is closed."""
        if self._closed:
            raise RuntimeError("this BlockingPoller is closed; make a new one")
        return self._portal.call(fn, *args)

    def _call_for_handle(self, fn: Callable[..., JobHandle], *args: Any, **kwargs: Any) -> Any:
        # Not portal.call(fn): the portal awaits whatever awaitable a function returns,
        # and a JobHandle is one.
        (handle,) = self._call(lambda: (fn(*args, **kwargs),))
        return self._wrap(handle)

    def add(self, job_id: str, url: str | None = None, **options: Any) -> BlockingHandle:
        """Start polling a job; takes ``TaskPoller.add()``'s arguments.

        Each call is a round trip to the loop thread (a few milliseconds while the
        poller is busy): for many jobs use ``add_many()``.
        """
        wrapped: BlockingHandle = self._call_for_handle(self._poller.add, job_id, url, **options)
        return wrapped

    def add_many(self, job_ids: Iterable[str], **options: Any) -> list[BlockingHandle]:
        """Start polling many jobs in one round trip; ``add()``'s keyword options apply
        to each. Returns their handles in order."""
        ids = list(job_ids)
        add = self._poller.add
        handles: list[JobHandle] = self._call(lambda: [add(job_id, **options) for job_id in ids])
        return [self._wrap(handle) for handle in handles]

    def submit(self, url: str, **options: Any) -> BlockingHandle:
        """Create a job with one request, then poll it; takes ``TaskPoller.submit()``'s
        arguments and raises what it raises (``SubmitError``)."""
        handle = self._call(functools.partial(self._poller.submit, url, **options))
        return self._wrap(handle)

    def submit_many(self, url: str, payloads: Iterable[Any], **options: Any) -> list[Any]:
        """Create one job per JSON payload, as ``TaskPoller.submit_many()`` does."""
        results = self._call(
            functools.partial(self._poller.submit_many, url, list(payloads), **options)
        )
        return [self._wrap(r) if isinstance(r, JobHandle) else r for r in results]

    def handle(self, job_id: str) -> BlockingHandle:
        """The handle of job ``job_id``; ``ValueError`` if no such job was added."""
        wrapped: BlockingHandle = self._call_for_handle(self._poller.handle, job_id)
        return wrapped

    def in_flight(self) -> list[BlockingHandle]:
        """The handles of every job not finished yet, in the order they were added."""
        return [self._wrap(h) for h in self._call(self._poller.in_flight)]

    def cancel(self, job: BlockingHandle | str, *, remote: bool = False) -> bool:
        """Stop polling a job and resolve it CANCELLED (``remote=True``: ask the server
        too), as ``TaskPoller.cancel()`` does."""
        cancelled: bool = self._call(
            functools.partial(self._poller.cancel, _unwrap(job), remote=remote)
        )
        return cancelled

    # ----------------------------------------------------------------- waiting

    def gather(
        self,
        *jobs: BlockingHandle | str,
        return_exceptions: bool = False,
        timeout: float | None = None,
    ) -> list[Any]:
        """Wait for the given jobs and return their results in the order given.

        Args:
            jobs: handles or job ids.
            return_exceptions: put each failed job's exception in its place instead of
                raising the first failure (the other jobs keep polling either way).
            timeout: the longest wait, in seconds; ``TimeoutError`` after it (the jobs
                keep polling).
        """
        gather = functools.partial(
            self._poller.gather,
            *(_unwrap(job) for job in jobs),
            return_exceptions=return_exceptions,
        )

        async def run() -> list[Any]:
            with anyio.move_on_after(timeout):
                return await gather()
            raise TimeoutError(
                f"the jobs were not all finished after {timeout:g} s; they keep polling"
            )

        results: list[Any] = self._call(run)
        return results

    def as_completed(
        self,
        handles: Iterable[BlockingHandle | str] | None = None,
        *,
        timeout: float | None = None,
    ) -> Iterator[BlockingHandle]:
        """Iterate over handles in the order their jobs finish, those finished first.

        ``for handle in poller.as_completed(): ...``, as ``TaskPoller.as_completed()``
        (a plain iterator; breaking out early is safe).

        Args:
            handles: handles or job ids to follow; None follows every job.
            timeout: seconds from this call after which the iteration raises
                ``TimeoutError`` (the jobs keep polling).
        """
        wanted = None if handles is None else [_unwrap(h) for h in handles]
        iterator: AsCompleted = self._call(self._poller.as_completed, wanted)
        return self._iterate(iterator, None if timeout is None else time.monotonic() + timeout)

    def _iterate(self, iterator: AsCompleted, deadline: float | None) -> Iterator[BlockingHandle]:
        async def next_handle(limit: float | None) -> JobHandle | None:
            with anyio.fail_after(limit):
                try:
                    return await iterator.__anext__()
                except StopAsyncIteration:
                    return None

        while True:
            limit = None if deadline is None else max(0.0, deadline - time.monotonic())
            handle = self._portal.call(next_handle, limit)
            if handle is None:
                return
            yield self._wrap(handle)

    # ----------------------------------------------------------------- introspection

    def summary(self) -> PollerSummary:
        """How many jobs are in each state, and the requests made (after ``close()``
        too: the final counts)."""
        if self._closed:
            return self._poller.summary()  # the loop has stopped: nothing changes any more
        return self._portal.call(self._poller.summary)

    def statistics(self) -> PollerStatistics:
        """A snapshot of the poller's counters (``TaskPoller.statistics()``), after
        ``close()`` too."""
        if self._closed:
            return self._poller.statistics()
        return self._portal.call(self._poller.statistics)

    @property
    def poller(self) -> TaskPoller:
        """The ``TaskPoller`` on the background loop (call it only from that loop)."""
        return self._poller

    def __repr__(self) -> str:
        return "<BlockingPoller" + repr(self._poller)[len("<TaskPoller") :]

    def _repr_html_(self) -> str:
        # Read on the loop thread while it runs: the rows walk the jobs in flight.
        view = self._poller._view_rows
        return html_table("BlockingPoller", view() if self._closed else self._portal.call(view))


def poll_blocking(url: str, *, backend: str = DEFAULT_BACKEND, **options: Any) -> Any:
    """``asyncpoll.poll()`` for code that does not await: blocks until the job finishes.

    Runs ``poll(url, **options)`` on an event loop in a background thread (so it works
    with or without an event loop running in the calling thread) and returns its result
    or raises its exception. An interrupt (Ctrl+C) cancels the job's polling.

    Args:
        url: the job's status URL.
        backend: ``"asyncio"`` (the default) or ``"trio"``.
        options: ``TaskPoller``'s keyword arguments.
    """
    with start_blocking_portal(backend) as portal:
        return portal.call(functools.partial(poll, url, **options))


def poll_many_blocking(
    job_ids: Iterable[str],
    *,
    status_url: str,
    return_exceptions: bool = False,
    backend: str = DEFAULT_BACKEND,
    **options: Any,
) -> list[Any]:
    """``asyncpoll.poll_many()`` for code that does not await: blocks until all finish.

    Runs ``poll_many()`` on an event loop in a background thread and returns the
    results in the order given. Without ``return_exceptions`` the first failure is
    raised and the other jobs are cancelled; an interrupt (Ctrl+C) cancels them too.

    Args:
        job_ids: the jobs' ids, filled into ``status_url``.
        status_url: a URL template with ``{job_id}``.
        return_exceptions: put each failed job's exception in its place.
        backend: ``"asyncio"`` (the default) or ``"trio"``.
        options: ``TaskPoller``'s other keyword arguments.
    """
    ids = list(job_ids)
    with start_blocking_portal(backend) as portal:
        return portal.call(
            functools.partial(
                poll_many,
                ids,
                status_url=status_url,
                return_exceptions=return_exceptions,
                **options,
            )
        )
