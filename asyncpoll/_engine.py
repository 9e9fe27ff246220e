"""The engine: one scheduler, ``max_concurrency`` workers, one watchdog. It decides nothing.

The path a job takes::

    registry (due-heap) --pop_due--> ready stream --> worker
      worker: admit (Sender) -> one request (transport, or check=) -> Outcome
      decide(record, outcome, now, rules) -> Again | Rekey | Finish      (pure)
      apply: registry.schedule / rekey / finish; events to the bus and callbacks

Jobs are data in the registry, not tasks: ten thousand jobs in flight are ten thousand
heap entries and ``max_concurrency`` worker tasks. Every wait goes through one clock.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, Protocol

import anyio
from anyio.streams.memory import MemoryObjectSendStream

from ._bus import CallbackRunner, EventBus
from ._clock import Clock
from ._codec import error_from, from_json
from ._decide import decide, on_status, shown_url
from ._defaultreader import DefaultReader
from ._errors import MESSAGE_TEXT_LIMIT, AsyncPollError, JobCancelled, JobTimeout, PollError
from ._events import EventKind, JobEvent
from ._options import Options
from ._outcomes import (
    Again,
    Answered,
    CutShort,
    Decision,
    Failed,
    Finish,
    Outcome,
    Rekey,
    Rules,
)
from ._policy import Pacing
from ._record import Submission
from ._redact import redact_url
from ._registry import MemoryRegistry
from ._response import clip
from ._send import Sender, call_check
from ._status import JobState, Status
from ._transport import Transport, TransportFailure
from ._watchdog import Watchdog
from ._worker import run_worker

if TYPE_CHECKING:
    from ._handle import JobHandle
    from ._journal import Fleet, Journal
    from ._store import StoredJob

__all__ = ["SCHEDULER_TICK", "Engine"]

logger = logging.getLogger("asyncpoll")

#: The least time between two scheduler wake-ups that each find jobs due, in seconds.
SCHEDULER_TICK: Final = 0.001


def _shed(failure: BaseException) -> None:
    """Drop the tracebacks of a transport failure's chain: their frames hold buffers
    (up to a body cap's worth) that a finished job must not keep alive."""
    seen = 0
    node: BaseException | None = failure
    while node is not None and seen < 8:
        node.__traceback__ = None
        node = node.__cause__ or node.__context__
        seen += 1


class RemoteCancel(Protocol):
    """What the engine asks of the out-of-schedule requests (``_remote.Remote``)."""

    async def cancel(self, handle: JobHandle) -> bool: ...


class Engine:
    """Runs the poll loop for one ``TaskPoller``; the facade owns the public API.

    Args:
        options: the poller's validated settings.
        transport: the transport requests go through.
        clock: the clock every wait goes through.
    """

    def __init__(self, options: Options, transport: Transport, clock: Clock) -> None:
        pacing = Pacing(
            float(options.min_interval),
            math.inf if options.max_interval is None else float(options.max_interval),
            float(options.max_retry_after),
        )
        reader = options.reader if options.reader is not None else DefaultReader()
        self.sender = sender = Sender(
            transport,
            clock,
            options.poller_limit,
            options.host_limits,
            pacing,
            options.hint_headers,
            options.request_timeout,
            options.max_result_body,
        )
        self.clock = sender.clock
        self.registry = MemoryRegistry()
        self.rules = Rules(
            reader=reader,
            claims=getattr(reader, "claims", None),
            retry_schedule=options.retry_schedule,
            pacing=pacing,
            max_errors=options.max_errors,
            allowed_origins=options.allowed_origins,
            fail_on_stall=options.fail_on_stall,
            status_url=options.status_url,
            # The transport in use once the poller opens ("auto" picks one then).
            absolute=lambda url: self.sender.transport.absolute(url),
            follows=self._follows,
        )
        self.callbacks = CallbackRunner(
            options.on_done, options.on_progress, options.on_stall, self.wake_if_idle
        )
        self.bus = EventBus()
        self.open = False
        self._max_concurrency = options.max_concurrency
        self._request_timeout = options.request_timeout
        self._loop_time: Callable[[], float] = anyio.current_time
        self.finished: list[JobHandle] = []  # handles in the order they finished
        self.finished_base = 0  # finish number of finished[0]; discard_finished() moves it
        self.finished_by_state = dict.fromkeys(JobState, 0)
        self.transient_errors = 0
        self.throttled = 0
        self._tick_end = -math.inf  # the scheduler's earliest next wake-up
        self._wake_at = math.inf  # when the scheduler's current sleep ends
        self._wake_scope: anyio.CancelScope | None = None
        self._watchdog: Watchdog | None = None  # bounds requests by request_timeout
        self._finish_event: anyio.Event | None = None  # set, then replaced, on each finish
        self._idle_event: anyio.Event | None = None  # set when nothing is left to do
        self._ready_send: MemoryObjectSendStream[JobHandle] | None = None
        self.quiet = False  # no log line per finished job (a summary is logged instead)
        self.remote: RemoteCancel | None = None  # the facade's _remote.Remote
        self.journal: Journal | None = None  # writes jobs to the poller's store
        self.fleet: Fleet | None = None  # claims jobs from a shared store

    def _follows(self, job_id: str) -> bool:
        """Whether a job of that id is in flight (for answers naming another job)."""
        return self.registry.lookup(job_id) is not None

    # ----------------------------------------------------------------- JobOwner: the
    # whole interface a handle uses

    async def cancel_remote(self, handle: JobHandle) -> bool:
        assert self.remote is not None
        return await self.remote.cancel(handle)

    def run_done_callback(self, fn: Callable[[JobHandle], object], handle: JobHandle) -> None:
        self.callbacks.run_sync(fn, handle)

    # ----------------------------------------------------------------- lifecycle

    def start(self, tg: anyio.abc.TaskGroup, loop_time: Callable[[], float] | None) -> None:
        """Start the scheduler, workers, watchdog and callback runner in ``tg``."""
        if loop_time is not None:
            self._loop_time = loop_time
        self.clock = self.sender.clock
        ready_send, ready_recv = anyio.create_memory_object_stream["JobHandle"](math.inf)
        self._ready_send = ready_send
        self.callbacks.open()
        self.open = True
        tg.start_soon(self._scheduler, name="asyncpoll scheduler")
        if self._request_timeout is not None:
            self._watchdog = Watchdog(self.clock, self._request_timeout)
            tg.start_soon(self._watchdog.run, name="asyncpoll watchdog")
        with ready_recv:
            for _ in range(self._max_concurrency):
                tg.start_soon(run_worker, self, ready_recv.clone(), name="asyncpoll worker")
        tg.start_soon(self.callbacks.run, name="asyncpoll callbacks")

    def stop(self) -> None:
        """Let every task end: scheduler and watchdog wake, workers see the stream close,
        the callback runner ends after the queued callbacks; event streams end."""
        self.open = False
        if self._ready_send is not None:
            self._ready_send.close()
        self.callbacks.close()
        if self._wake_scope is not None:
            self._wake_scope.cancel()
        if self._watchdog is not None:
            self._watchdog.stop()
        self.bus.close()

    def idle(self) -> bool:
        """No job in flight and no callback queued or running."""
        return not len(self.registry) and self.callbacks.pending == 0

    async def wait_idle(self) -> None:
        while not self.idle():
            if self._idle_event is None:
                self._idle_event = anyio.Event()
            await self._idle_event.wait()

    def wake_if_idle(self) -> None:
        if not self.idle():
            return
        if self._idle_event is not None:
            self._idle_event.set()
            self._idle_event = None
        if self._finish_event is not None:  # as_completed() re-checks whether to stop
            self._finish_event.set()
            self._finish_event = None

    async def wait_for_finish(self) -> None:
        if self._finish_event is None:
            self._finish_event = anyio.Event()
        await self._finish_event.wait()

    # ----------------------------------------------------------------- jobs

    def track(self, handle: JobHandle, due: float, *, stored: bool = False) -> None:
        """Follow a new job: first due at ``due``, timed out at its deadline.

        With a store, the job is written to it first (``stored``: it is there already, a
        job resumed from the store). In a fleet the store's claims hand it to a worker.
        """
        journal = self.journal
        if journal is not None and not stored:
            journal.added(handle, due)  # may raise: nothing is followed yet
        self.registry.add(handle)
        if self.fleet is not None:
            if self.bus.listening:
                self.emit(EventKind.ADDED, handle)
            return
        self.push(handle, due)
        deadline = handle._record.deadline
        if deadline is not None:
            # A second entry at the deadline times the job out even while it waits for a
            # free worker or sits in a request; poll entries are capped at it too. It is
            # not the job's poll entry (the one nudge() moves).
            entry = handle._entry
            self.push(handle, deadline)
            handle._entry = entry
        if self.bus.listening:
            self.emit(EventKind.ADDED, handle)

    def push(self, handle: JobHandle, due: float, now: float | None = None) -> None:
        """Make the job due at ``due`` (capped at its deadline); ``now``: a clock reading
        the caller has just taken."""
        deadline = handle._record.deadline
        if deadline is not None and due > deadline:
            due = deadline
        elif (
            due <= (self.clock.now() if now is None else now)
            and self.open
            and self._ready_send is not None
        ):
            # Due already (fixed(0), a first poll): straight to the workers, without
            # waking the scheduler for it.
            self._ready_send.send_nowait(handle)
            return
        handle._entry = self.registry.schedule(handle, due)
        wake_at = self._wake_at
        # Wake the scheduler only if this moves its wake-up earlier; during a tick (see
        # _scheduler) nothing can, since the tick's end is its earliest wake-up anyway.
        if due < wake_at and wake_at > self._tick_end:
            self._wake_at = max(due, self._tick_end)
            if self._wake_scope is not None:
                self._wake_scope.cancel()

    def nudge(self, handle: JobHandle) -> bool:
        """A pushed update said ``handle``'s job changed: poll it as soon as allowed.

        The job's next poll moves to now, or to ``min_interval`` after its last request
        if that is later; never later than it was. A job already due, queued for a
        worker or in a request is left as it is (the nudge coalesces with that poll), and
        so is one waiting out ``retry_schedule`` after a failure or a 429, or before a
        resubmit.
        The poll itself still waits for the rate limit and the host's gate, as every
        poll does. Nothing of the job's state is changed. False for a finished job, and
        in a fleet for a job this worker holds no claim on.
        """
        if handle._finish_seq >= 0 or not self.open:
            return False
        record = handle._record
        fleet = self.fleet
        if fleet is not None and fleet.claimed.get(record.job_id) is not handle:
            return False  # released to the store, or never claimed here
        entry = handle._entry
        now = self.clock.now()
        if (
            entry is None
            or entry[0] <= now
            or record.errors
            or record.throttles
            or record.action == "resubmit"
        ):
            return True  # due, queued or in a request already; or backing off
        due = max(now, handle._polled_at + self.rules.pacing.min_interval)
        if due < entry[0] and self.registry.unschedule(entry):
            self.push(handle, due, now)
        return True

    def emit(self, kind: EventKind, handle: JobHandle) -> None:
        """Publish one event to the stream's readers and the callback runner (callers skip
        this when nobody listens and no callback waits for ``kind``)."""
        if self.bus.listening:
            record = handle._record
            progress = handle.progress
            event = JobEvent(kind, record.job_id, record.state, progress, self.clock.now(), handle)
            self.bus.publish(event)
        self.callbacks.deliver(kind, handle)

    # ----------------------------------------------------------------- the loop

    async def _scheduler(self) -> None:
        """Send due jobs to the workers, then sleep until the next one is due.

        After a wake-up that found jobs due, the next is at least ``SCHEDULER_TICK``
        later: under an even spread of due times (many jobs on long intervals) one
        wake-up takes a batch, not one job each, for at most a tick of lateness. Due
        times farther apart than a tick are kept exactly.
        """
        registry, clock = self.registry, self.clock
        assert self._ready_send is not None
        send = self._ready_send.send_nowait
        slept_to = -math.inf
        while self.open:
            # A sleep that ran its course reached its end, even where the clock's reading
            # rounds a hair below the float it was asked for.
            now = max(clock.now(), slept_to)
            if registry.next_due() <= now:
                for handle in registry.pop_due(now):
                    if handle._finish_seq >= 0:
                        continue  # cancelled while waiting: a stale entry
                    deadline = handle._record.deadline
                    if deadline is not None and now >= deadline:
                        self.time_out(handle)
                        continue
                    send(handle)
                self._tick_end = now + SCHEDULER_TICK
            next_due = registry.next_due()
            self._wake_at = wake_at = (
                max(next_due, self._tick_end) if next_due < math.inf else next_due
            )
            with anyio.CancelScope() as scope:
                self._wake_scope = scope
                await clock.sleep_until(wake_at)
            self._wake_scope = None
            slept_to = -math.inf if scope.cancelled_caught else wake_at

    async def poll(self, handle: JobHandle, scope: anyio.CancelScope) -> None:
        """Make one request for ``handle``'s job and act on what ``decide()`` says.

        The request is the job's ``record.action``: a status poll (or its ``check=``),
        the GET of its result document, or its create request again. ``scope`` is the
        worker's: cancelling it (``handle._scope`` while this runs) interrupts the
        request, and the worker settles the outcome.
        """
        clock, sender, record = self.clock, self.sender, handle._record
        deadline = record.deadline
        bound = math.inf if deadline is None else deadline
        if clock.now() >= bound:
            self.time_out(handle)
            return
        action = record.action
        url = record.target if action == "poll" else sender.url_for(record)
        gate = None
        if url is not None:
            if handle._gate_url is url:  # the same URL as last time: its gate too
                gate = handle._gate
            else:
                gate = handle._gate = sender.gate_for(url)
                handle._gate_url = url
        outcome: Outcome | None = None  # None: a check= read ``status``
        response = None
        status: Status | None = None
        handle._scope = scope
        armed = False  # whether the scope's deadline is set for this request
        watchdog = self._watchdog
        try:
            limiter = sender.limiter
            if (
                (limiter is not None or (gate is not None and not gate.try_pass(clock.now())))
                # Nothing holds the request back (no limit, an open host): no coroutine.
                and not await sender.admit(url, bound, gate)
            ):
                # The deadline came before the host or the limiter let us go.
                handle._scope = None
                self.time_out(handle)
                return
            if handle._lease_end != math.inf and clock.now() > handle._lease_end:
                assert self.fleet is not None
                handle._scope = None
                self.fleet.lose(handle)  # another worker may hold the job by now
                return
            record.attempts += 1
            sender.requests += 1
            handle._polled_at = now = clock.now()
            limit = bound - now
            if watchdog is not None and limit > watchdog.period:
                # The common case: the watchdog bounds it, no timer of its own.
                seq = handle._in_request = sender.requests
                watchdog.watch(now, seq, handle)
            elif limit != math.inf:
                scope.deadline = self._loop_time() + limit  # the job's deadline is nearer
                armed = True
            try:
                if action == "poll" and handle._check is not None:
                    status = await call_check(handle)
                else:
                    assert url is not None
                    if action == "poll" and url is record.origin:
                        # A status URL polled where it was given (credentials go): the
                        # transport at once, one coroutine less than request_for().
                        response = await sender.transport.request("GET", url)
                    else:
                        response = await sender.request_for(record, url)
                    outcome = Answered(response)
            except TransportFailure as exc:
                _shed(exc)
                outcome = Failed(exc, fatal=not exc.transient)
            except PollError as exc:
                outcome = Failed(exc, fatal=True)
            except Exception as exc:
                outcome = Failed(exc)
            except anyio.get_cancelled_exc_class() as exc:
                # A real cancellation (this job's, the request deadline's, the
                # poller's) raises again here; one that user code raised on its
                # own (an SDK's cancelled future) is this job's failure.
                await anyio.lowlevel.checkpoint_if_cancelled()
                outcome = Failed(exc)
        finally:
            handle._scope = None
            handle._in_request = -1
            if armed:
                scope.deadline = math.inf
            if watchdog is not None:
                watchdog.forget_answered()
        if watchdog is not None:
            watchdog.took(handle)  # answered as the watchdog cut it: the answer wins
        if handle._finish_seq >= 0:
            return  # cancelled meanwhile
        if outcome is None:
            assert status is not None
            self.settle_status(handle, status)
            return
        if response is not None:
            assert url is not None
            handle._last_response = response
            if self.fleet is not None and gate is not None:
                paused = gate.paused_until
                hint = sender.feedback(url, response, gate)
                if gate.paused_until > paused:
                    self.fleet.cooldown(gate.host, gate.paused_until)
            else:
                hint = sender.feedback(url, response, gate)
            if hint is not None:
                outcome = Answered(response, hint)
        self.settle(handle, outcome)

    def settle(self, handle: JobHandle, outcome: Outcome) -> None:
        """Ask ``decide()`` what ``outcome`` means for the job, and do it."""
        record = handle._record
        errors, throttles = record.errors, record.throttles
        now = self.clock.now()
        decision = decide(record, outcome, now, self.rules)
        if record.errors > errors:
            self.transient_errors += 1
        if record.throttles > throttles:
            self.throttled += 1
        self._act(handle, decision, now)

    def settle_status(self, handle: JobHandle, status: Status) -> None:
        """A ``check=`` read ``status``: ``decide``'s rule for a status read, and do it.

        The same rule ``decide(record, Checked(status), ...)`` applies, without the
        outcome's allocation and dispatch on the path taken once per poll.
        """
        now = self.clock.now()
        self._act(handle, on_status(handle._record, status, None, now, self.rules), now)

    def _act(self, handle: JobHandle, decision: Decision, now: float) -> None:
        if type(decision) is Again and decision.kind == "poll" and not decision.stalled:
            # The common case, a live job polled again, without apply()'s dispatch.
            if decision.progressed:
                self._progressed(handle)
            if self.journal is None:
                self.push(handle, decision.due, now)
            else:
                self.again(handle, decision.due, now)
        else:
            self.apply(handle, decision)

    def again(self, handle: JobHandle, due: float, now: float | None = None) -> None:
        """The job is live, next due at ``due``: reschedule it here, or (in a fleet)
        release it to the store; with a store, write its new state."""
        journal = self.journal
        if journal is None:
            self.push(handle, due, now)
            return
        deadline = handle._record.deadline
        if deadline is not None and due > deadline:
            due = deadline
        fleet = self.fleet
        if fleet is not None:
            journal.changed(handle, due, held=handle._record.job_id in fleet.claimed)
            fleet.release(handle)
            return
        journal.changed(handle, due)
        self.push(handle, due, now)

    def apply(self, handle: JobHandle, decision: Decision) -> None:
        """Carry out a decision: reschedule, follow a new job, or finish."""
        kind = type(decision)
        if kind is Again:
            assert isinstance(decision, Again)
            if decision.progressed:
                self._progressed(handle)
            elif decision.stalled:
                self._stalled(handle)
            if decision.kind == "resubmit":
                status = handle.status
                logger.info(
                    "job %r failed (%s); submitting it again (%d more allowed)",
                    handle.job_id,
                    clip(status.error, MESSAGE_TEXT_LIMIT)
                    if status is not None and status.error
                    else "no error text",
                    handle._record.resubmits_left,
                )
            elif decision.kind == "transient" and logger.isEnabledFor(logging.DEBUG):
                logger.debug("job %r: transient failure %d", handle.job_id, handle._record.errors)
            self.again(handle, decision.due)
        elif kind is Finish:
            assert isinstance(decision, Finish)
            if decision.stalled:
                self._stalled(handle)
            self.finish(handle, decision.state, result=decision.result, exc=decision.error)
        else:
            assert isinstance(decision, Rekey)
            self._rekey(handle, decision)

    def _progressed(self, handle: JobHandle) -> None:
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("job %r is %s", handle.job_id, handle.state.value)
        if (
            self.bus.listening
            or self.callbacks.on_progress is not None
            or handle._on_progress is not None
        ):
            self.emit(EventKind.PROGRESS, handle)

    def _stalled(self, handle: JobHandle) -> None:
        record = handle._record
        status = record.status
        unknown = status.unknown_word if status is not None else None
        logger.warning(
            "job %r has not changed for %.0f s (state %s, progress %s)%s",
            record.job_id,
            self.clock.now() - record.changed_at,
            record.state.value,
            handle.progress,
            ""
            if unknown is None
            else f"; the server keeps sending state {unknown!r}, which the reader does not "
            "know and reads as running (teach it the word: DefaultReader(states={...}) or "
            "JsonReader(...))",
        )
        self.emit(EventKind.STALLED, handle)

    def _rekey(self, handle: JobHandle, decision: Rekey) -> None:
        """A resubmit created a new job: the handle follows it, with a fresh budget."""
        record = handle._record
        holder = self.registry.lookup(decision.job_id)
        if holder is not None and holder is not handle:
            self.finish(
                handle,
                JobState.ERRORED,
                exc=PollError(
                    f"the job was submitted again, but the new job's id {decision.job_id!r} "
                    "belongs to another job this poller follows",
                    job_id=record.job_id,
                    url=shown_url(record),
                ),
            )
            return
        old = record.job_id
        record.job_id = decision.job_id
        record.url = record.target = decision.url
        if decision.from_template:
            record.origin = decision.url
        record.errors = record.throttles = record.redirects = record.attempts = 0
        record.submissions = (
            *record.submissions,
            Submission(decision.job_id, redact_url(decision.url), decision.http_status),
        )
        record.action = "poll"
        record.state = JobState.PENDING
        record.changed_at = now = self.clock.now()
        self.registry.rekey(handle, old, decision.job_id)
        if self.journal is not None:
            self.journal.rekeyed(handle, old, now)
            fleet = self.fleet
            if fleet is not None:
                # The new id has no row yet and no lease: stored now, for any worker.
                fleet.claimed.pop(old, None)
                handle._lease_end = math.inf
                deadline = record.deadline
                due = decision.due if deadline is None else min(decision.due, deadline)
                self.journal.added(handle, due)
                return
        self.again(handle, decision.due)

    def interrupted(self, handle: JobHandle) -> None:
        """A poll was cut short by its worker's cancel scope: say why, to the job."""
        expired = self._watchdog is not None and self._watchdog.took(handle)
        if handle._finish_seq >= 0:
            return  # cancelled, or timed out by the scheduler, meanwhile
        if not expired:
            self.time_out(handle)  # the job's deadline cut the request short
            return
        assert self._request_timeout is not None
        try:
            self.settle(handle, CutShort(self._request_timeout))
        except Exception as exc:
            self.internal_error(handle, exc)

    # ----------------------------------------------------------------- endings

    def internal_error(self, handle: JobHandle, exc: Exception) -> None:
        logger.exception("internal error while polling job %r", handle.job_id)
        self.finish(
            handle,
            JobState.ERRORED,
            exc=PollError(
                f"internal error while polling: {exc!r}",
                job_id=handle.job_id,
                url=shown_url(handle._record),
                cause=exc,
            ),
        )

    def time_out(self, handle: JobHandle) -> None:
        if handle._scope is not None:
            handle._scope.cancel()
        record = handle._record
        self.finish(
            handle,
            JobState.TIMED_OUT,
            exc=JobTimeout(record.job_id, record.timeout or 0.0, record.status),
        )

    def cancel_job(self, handle: JobHandle, reason: str) -> bool:
        """Resolve the job CANCELLED now (interrupting its request); False if finished."""
        if handle._finish_seq >= 0:
            return False
        if handle._scope is not None:
            handle._scope.cancel()
        self.finish(handle, JobState.CANCELLED, exc=JobCancelled(handle.job_id, reason))
        return True

    def detach(self, handle: JobHandle, reason: str) -> bool:
        """Resolve the handle CANCELLED here, leaving its job live in the store (the
        poller is closing): nothing is written but its live state, which a fleet worker
        releases at once; no poller callback or event runs. False if finished."""
        if handle._finish_seq >= 0:
            return False
        if handle._scope is not None:
            handle._scope.cancel()
        fleet, journal = self.fleet, self.journal
        if fleet is not None and journal is not None and handle._record.job_id in fleet.claimed:
            # Released: another worker takes it.
            journal.changed(handle, self.clock.now(), held=True)
        self.finish(
            handle, JobState.CANCELLED, exc=JobCancelled(handle.job_id, reason), elsewhere=True
        )
        return True

    def finish(
        self,
        handle: JobHandle,
        state: JobState,
        *,
        result: Any = None,
        exc: BaseException | None = None,
        elsewhere: bool = False,
    ) -> None:
        """Resolve ``handle`` once; every later call is a no-op.

        ``elsewhere``: the outcome was read from the store (another poller of a fleet
        finished the job, or it finished before this process): the handle resolves and
        its own done callbacks run, but the poller's callbacks, events and log line are
        left to the poller that finished it, and nothing is written.
        """
        if handle._finish_seq >= 0:
            return
        record = handle._record
        record.state = state
        if isinstance(exc, AsyncPollError) and exc.response is None:
            exc.response = handle._last_response
        callbacks = handle._resolve(result, exc, self.finished_base + len(self.finished))
        if self.fleet is None or self.registry.latest(record.job_id) is handle:
            # (A fleet worker keeps no handle of the jobs it polled for others.)
            self.finished.append(handle)
        self.finished_by_state[state] += 1
        self.registry.finish(handle)
        if self.fleet is not None:
            self.fleet.release(handle)
        if elsewhere:
            for fn in callbacks or ():
                self.callbacks.run_sync(fn, handle)
            if self._finish_event is not None:
                self._finish_event.set()
                self._finish_event = None
            self.wake_if_idle()
            return
        if not self.quiet:
            if state is JobState.SUCCEEDED:
                logger.info("job %r succeeded after %d polls", record.job_id, record.attempts)
            elif isinstance(exc, PollError):
                logger.warning("job %r errored: %s", record.job_id, exc.message)
            else:
                level = logging.WARNING if state is JobState.TIMED_OUT else logging.INFO
                logger.log(level, "%s", exc)
        if callbacks:
            for fn in callbacks:
                self.callbacks.run_sync(fn, handle)
        if self._finish_event is not None:
            self._finish_event.set()
            self._finish_event = None
        if self.bus.listening or self.callbacks.on_done is not None or handle._on_done is not None:
            self.emit(EventKind.DONE, handle)
        journal = self.journal
        # The outcome is written only after the job's on_done callbacks have run (they
        # run in order, in the callback task): a crash in between loses no callback, the
        # next process polls the job and runs them (at least once).
        if journal is not None and not (
            (self.callbacks.on_done is not None or handle._on_done is not None)
            and self.callbacks.then(lambda h: journal.finished(h, result, exc), handle)
        ):
            journal.finished(handle, result, exc)
        self.wake_if_idle()

    def finish_from_store(self, handle: JobHandle, row: StoredJob) -> None:
        """Resolve ``handle`` with the outcome ``row`` holds (``finish(elsewhere=True)``)."""
        doc = json.loads(row.doc)
        state = JobState(row.state)
        error = error_from(doc.get("error"), row.job_id)
        if error is None and state is not JobState.SUCCEEDED:
            error = PollError(f"the job ended {state.value}", job_id=row.job_id)
        self.finish(handle, state, result=from_json(doc.get("result")), exc=error, elsewhere=True)
