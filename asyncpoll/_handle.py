"""``JobHandle``: the awaitable a caller holds for one job."""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping
from typing import Any, Protocol

import anyio

from ._errors import InvalidStateError
from ._record import JobRecord, Submission
from ._redact import redact_url
from ._response import Response
from ._status import JobState, Status
from ._views import html_table

__all__ = ["Callback", "Check", "JobHandle", "JobOwner", "Submission", "handle_rows"]

logger = logging.getLogger("asyncpoll")

#: ``on_done`` / ``on_progress``: called with the handle; may be sync or async.
Callback = Callable[["JobHandle"], "Awaitable[object] | object"]
Check = Callable[["JobHandle"], Awaitable[Status]]


class JobOwner(Protocol):
    """What a handle asks of the engine that follows its job: the whole interface."""

    def cancel_job(self, handle: JobHandle, reason: str) -> bool:
        """Resolve the job CANCELLED now; False if it had finished."""
        ...

    async def cancel_remote(self, handle: JobHandle) -> bool:
        """Ask the server to cancel the job, and resolve it as the server says."""
        ...

    def run_done_callback(self, fn: Callable[[JobHandle], object], handle: JobHandle) -> None:
        """Call a done callback now, logging and counting what it raises."""
        ...


class JobHandle:
    """One job being polled: awaitable, resolved exactly once.

    ``await handle`` (or ``await handle.wait()``) returns the job's result when it
    succeeds and raises ``JobFailed``, ``JobTimeout``, ``JobCancelled`` or
    ``PollError`` otherwise. Awaiting never changes the job: a caller whose wait is
    cancelled (``asyncio.wait_for`` timing out) leaves the job polling; ``cancel()``
    stops it.

    Handles are made by ``TaskPoller.add()``, never directly.
    """

    # The job's data is its record; the rest is the future's own state and the
    # engine's per-request slots (_scope, _in_request, _gate, _gate_url) and schedule
    # slots (_entry, _polled_at: what nudge() moves, and how far).
    __slots__ = (
        "__weakref__",
        "_check",
        "_done_callbacks",
        "_entry",
        "_event",
        "_exception",
        "_finish_seq",
        "_gate",
        "_gate_url",
        "_in_request",
        "_last_response",
        "_lease_end",
        "_metadata",
        "_on_done",
        "_on_progress",
        "_owner",
        "_polled_at",
        "_poller",
        "_record",
        "_result",
        "_scope",
    )

    def __init__(
        self,
        owner: JobOwner,
        poller: object,
        record: JobRecord,
        *,
        check: Check | None,
        on_done: Callback | None,
        on_progress: Callback | None,
        metadata: Mapping[str, Any] | None,
    ) -> None:
        self._owner = owner
        self._poller = poller  # the TaskPoller that made it (identity checks only)
        self._record = record
        # Made on first use: most jobs have none, and an empty dict per job is one more
        # object for the garbage collector to walk at a million jobs.
        self._metadata: dict[str, Any] | None = dict(metadata) if metadata else None
        self._check = check
        self._on_done = on_done
        self._on_progress = on_progress
        self._result: Any = None
        self._exception: BaseException | None = None
        self._event: anyio.Event | None = None
        self._done_callbacks: list[Callable[[JobHandle], object]] | None = None
        self._finish_seq = -1  # finish number once resolved, else -1
        self._last_response: Response | None = None
        self._scope: anyio.CancelScope | None = None  # set while a request runs
        self._in_request = -1  # the number of the request in flight, else -1
        self._gate: Any = None  # the HostGate of _gate_url, the URL last polled
        self._gate_url: str | None = None
        self._lease_end = math.inf  # in a fleet: the poll must start before this time
        self._entry: tuple[float, int] | None = None  # its last due-heap entry, if any
        self._polled_at = -math.inf  # when its last request was sent

    def _resolve(
        self, result: Any, exception: BaseException | None, seq: int
    ) -> list[Callable[[JobHandle], object]] | None:
        """Resolve the future (the engine calls this once, as finish number ``seq``): wake
        its waiters and hand back the done callbacks to run."""
        self._result = result
        self._exception = exception
        self._finish_seq = seq
        if self._event is not None:
            self._event.set()
        callbacks, self._done_callbacks = self._done_callbacks, None
        return callbacks

    @property
    def metadata(self) -> dict[str, Any]:
        """The mapping given to ``add(metadata=...)``, for the caller's own use."""
        if self._metadata is None:
            self._metadata = {}
        return self._metadata

    @metadata.setter
    def metadata(self, value: dict[str, Any]) -> None:
        self._metadata = value

    @property
    def job_id(self) -> str:
        """The job's id (a resubmit's new job takes over the handle with its own id)."""
        return self._record.job_id

    @property
    def url(self) -> str | None:
        """The status URL polled, or None for a job with a ``check=`` callable."""
        return self._record.url

    @property
    def state(self) -> JobState:
        """The job's state: from the last status read, or the terminal state reached."""
        return self._record.state

    @property
    def status(self) -> Status | None:
        """The last ``Status`` read, or None before the first successful poll."""
        return self._record.status

    @property
    def progress(self) -> float | None:
        """How far along the job is, 0.0 to 1.0, or None when the server has not said."""
        record = self._record
        if record.state is JobState.SUCCEEDED:
            return 1.0
        return None if record.status is None else record.status.progress

    @property
    def last_response(self) -> Response | None:
        """The last HTTP response received for this job (any status), or None."""
        return self._last_response

    @property
    def submissions(self) -> tuple[Submission, ...]:
        """Each create request sent for this job (``submit()``, then each resubmit)."""
        return self._record.submissions

    @property
    def stalled(self) -> bool:
        """True while the job's state and progress have not changed for ``stall_timeout``."""
        return self._record.stalled

    async def cancel_remote(self) -> bool:
        """Ask the server to cancel the job, then resolve the handle as the server says.

        Sends the cancel request (default ``DELETE`` on the status URL). If the server
        accepts it, the handle resolves CANCELLED; if it refuses (the job already
        finished, say), the job is polled once and resolves as the server reports.

        Returns:
            True if the server accepted the cancellation; False if the job had
            already finished or the server refused and reported a final state.

        Raises:
            PollError: the server refused and the job is still running (it keeps being
                polled), or the cancel request itself failed.
        """
        return await self._owner.cancel_remote(self)

    def resume_token(self, *, headers: Iterable[str] = ()) -> str:
        """A versioned JSON text that lets another poller pick this job up
        (``poller.resume(token)``), in another process or on another machine.

        It holds the job's URLs, its schedule and its state so far (attempts, errors),
        its metadata, and the names of its named callables; never pickle. Of the create
        request's headers it keeps only those named in ``headers``; credentials
        (``Authorization``, cookies, API keys, the poller's ``secret_headers``) never.

        Raises:
            ValueError: the job is finished, ``headers`` names a credential header, a
                URL carries credentials, or something cannot be stored (an unnamed
                ``check=`` callable: register it with ``TaskPoller(named=...)``).
        """
        make = getattr(self._poller, "_resume_token", None)
        if make is None:
            raise TypeError("this handle's poller makes no resume tokens")
        token: str = make(self, headers)
        return token

    @property
    def attempts(self) -> int:
        """Status requests made for this job so far, failed ones included."""
        return self._record.attempts

    def done(self) -> bool:
        """True once the job reached a terminal state."""
        return self._finish_seq >= 0

    def result(self) -> Any:
        """The job's result; raises its exception if it did not succeed.

        Raises:
            InvalidStateError: the job has not finished yet.
        """
        self._require_done()
        if self._exception is not None:
            raise self._exception
        return self._result

    def exception(self) -> BaseException | None:
        """The exception the job ended with, or None if it succeeded.

        Raises:
            InvalidStateError: the job has not finished yet.
        """
        self._require_done()
        return self._exception

    def _require_done(self) -> None:
        if not self.done():
            raise InvalidStateError(
                f"job {self.job_id!r} is still {self._record.state.value}; await the handle "
                "first (code that cannot await: asyncpoll.BlockingPoller, whose handles' "
                "result(timeout=) waits)"
            )

    def add_done_callback(self, fn: Callable[[JobHandle], object]) -> None:
        """Call ``fn(handle)`` once the job finishes (at once if it already has).

        ``fn`` is a plain function; an exception it raises is logged and counted in
        ``TaskPoller.statistics().callback_errors``, never propagated.
        """
        if self.done():
            self._owner.run_done_callback(fn, self)
            return
        if self._done_callbacks is None:
            self._done_callbacks = []
        self._done_callbacks.append(fn)

    def cancel(self) -> bool:
        """Stop polling this job and resolve it CANCELLED; never contacts the server.

        Returns:
            True if the job was cancelled now, False if it had already finished.
        """
        return self._owner.cancel_job(self, "cancelled by the caller")

    async def wait(self) -> Any:
        """Wait for the job to finish; same as ``await handle``."""
        if not self.done():
            if self._event is None:
                self._event = anyio.Event()
            await self._event.wait()
        return self.result()

    def __await__(self) -> Generator[Any, None, Any]:
        return self.wait().__await__()

    def __repr__(self) -> str:
        progress = "" if self.progress is None else f" progress={self.progress:.0%}"
        return f"<JobHandle {self.job_id!r} {self.state.value}{progress} attempts={self.attempts}>"

    def _repr_html_(self) -> str:
        return html_table("JobHandle", handle_rows(self))


#: The longest result or error text a handle's HTML view shows, in characters.
HTML_TEXT_LIMIT = 200


def handle_rows(handle: JobHandle) -> list[tuple[str, object]]:
    """A handle's ``(name, value)`` rows for its HTML view."""
    rows: list[tuple[str, object]] = [("job id", handle.job_id), ("state", handle.state.value)]
    if handle.progress is not None:
        rows.append(("progress", f"{handle.progress:.0%}"))
    rows.append(("attempts", handle.attempts))
    if handle.stalled:
        rows.append(("stalled", "yes"))
    if handle.url is not None:
        rows.append(("status URL", redact_url(handle.url)))
    if handle.done():
        error = handle._exception
        if error is None:
            rows.append(("result", _shorten(repr(handle._result))))
        else:
            rows.append(("error", _shorten(f"{type(error).__name__}: {error}")))
    return rows


def _shorten(text: str) -> str:
    if len(text) <= HTML_TEXT_LIMIT:
        return text
    return text[: HTML_TEXT_LIMIT - 1] + "\u2026"
