"""A hypothesis state machine drives one poller, step by step in virtual time, against a
scripted server, and checks it against a simple model after every step.

**How it is driven.** Hypothesis rules are plain functions, so the event loop must stop
between them with its clock frozen:

- on trio, the loop runs in a blocking portal's thread
  (``anyio.from_thread.start_blocking_portal``) on a ``trio.testing.MockClock`` without
  autojump: time moves only when the ``advance`` rule turns autojump on for the length of
  one ``trio.sleep(dt)`` (every timer on the way fires at its exact time), and each call
  into the loop ends with ``trio.testing.wait_all_tasks_blocked()``. Trio's scheduler is
  deterministic under hypothesis (trio registers its scheduling random with it);
- on asyncio, there is no thread: a looptime loop (virtual time) is driven from the test's
  own thread with ``loop.run_until_complete()`` once per call, and stands still between
  calls (looptime moves its clock only while the loop runs and would otherwise wait);
  ``advance`` is one ``asyncio.sleep(dt)`` and each call ends when every task waits on a
  future (the loop's ready queue is empty).

Every call into the loop must finish without virtual time passing: one that cannot (it
waits for a timer) is cancelled and fails the step, so no step can hang. The poller is
opened with ``open()`` and closed with ``aclose()`` (they may run in different tasks);
teardown closes it, the client, the portal or the loop, also after a failure.

**The server** is an ``httpx.MockTransport`` in the same loop. Each job has a state the
rules set (pending, running, a word the reader does not know, succeeded with a result of
its own, failed, cancelled, or gone: 404) and a queue of one-off answers the rules push:
connection refused, reset, timeout (the httpx exceptions a transport raises), 500, 502,
503, 504, 429 or 503 with ``Retry-After`` in seconds, as an HTTP date (with a ``Date``
header, so the hint is exact), negative, huge or garbage, a body that is not JSON, an HTML
page with status 200, the state with a wrong content type. A GET takes the queue's head,
else the state. Every request is logged with its virtual time and, for the cancel request
and status read of ``cancel_remote()``, which call made it (a context variable).

**The model** replays that log: a job's outcome is the first of its server's terminal
answers (``succeeded``, ``failed``, ``cancelled``), ``max_errors`` transient failures in a
row, a 404, the caller's ``cancel()``, an accepted remote cancel, its deadline, or
``shutdown(cancel_futures=True)``; 429s and 503s with a usable hint count for nothing.

**Invariants**, after every step: a handle is done exactly when the model has an outcome
for it, and then with exactly that outcome (state, result or exception type, reason, HTTP
status), which never changes; ``add_done_callback``, the poller's ``on_done`` and the
job's ``on_done`` each ran once for a finished job and never for a live one; a job's
result is its own; no request reached a host inside a cool-down it announced (a 429, or a
503 with a usable hint: the hint capped at ``max_retry_after``, 1 s when there is none;
checked exactly in virtual time); the host with a configured limit never got more than
its rate allows; no job was polled after it had finished or at or after its deadline;
once ``shutdown()`` has returned, every handle is done and nothing is in flight; after
``aclose()`` no request is sent, however long time runs.

Deterministic: ``derandomize=True``, ``database=None``, no wall clock (every time is
virtual; job deadlines are off the grid of times the rules move the clock to, so a
deadline never ties with a step).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import email.utils
import json
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.from_thread
import httpx
import looptime
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from trio._core import _run as trio_run

import asyncpoll
from asyncpoll import JobCancelled, JobFailed, JobState, JobTimeout, PollError

HOSTS = ("a.test", "b.test")
#: a.test has a configured limit (its requests queue in the gate, where a cool-down
#: must hold them too); b.test has none (its rate is only learned and halved).
HOST_RATE = 2.0
MAX_ERRORS = 3
MAX_RETRY_AFTER = 20.0
#: Seconds a 429 without a usable hint pauses its host (documented).
DEFAULT_PAUSE = 1.0
#: Job deadlines, off the quarter-second grid every rule-driven time is on.
TIMEOUTS = (6.1234, 20.1234, 45.1234)
#: Steps of virtual time (quarter seconds).
STEPS = (0.25, 0.5, 1.0, 2.0, 3.5, 7.0, 15.0)
#: Wall time of virtual time 0, for the Date and Retry-After headers.
WALL0 = 1_700_000_000
#: Virtual-time tolerance: 0 on trio's MockClock; looptime's clock is on a 1 ns grid.
TOLERANCE = {"trio": 0.0, "asyncio": 1e-6}

#: The job a ``cancel_remote()`` call is cancelling, in that call's task.
REMOTE_CALL: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "REMOTE_CALL", default=None
)


# ----------------------------------------------------------------------- answers


@dataclass(frozen=True)
class Answer:
    """One answer of the server to a status GET.

    ``kind``: ``state`` (a status document: ``word``), ``raise`` (``exc`` names the httpx
    exception), ``http`` (status ``code``, ``retry`` a Retry-After form), ``body`` (a 200
    whose body is ``word``: ``malformed`` or ``html``), ``gone`` (404).
    """

    kind: str
    word: str = ""
    code: int = 200
    retry: str | None = None
    plain: bool = False  # a status document served as text/plain


LIVE_WORDS = ("pending", "running", "Zorbling")  # the last one the reader does not know
STATES = (
    Answer("state", "pending"),
    Answer("state", "running"),
    Answer("state", "Zorbling"),
    Answer("state", "succeeded"),
    Answer("state", "failed"),
    Answer("state", "cancelled"),
    Answer("gone", code=404),
)
RETRY_FORMS = ("0", "1", "3", "8", "date+2", "date+5", "date-30", "-5", "huge", "soon", None)
FAULTS = (
    Answer("raise", "refused"),
    Answer("raise", "reset"),
    Answer("raise", "timeout"),
    Answer("http", code=500),
    Answer("http", code=502),
    Answer("http", code=503),
    Answer("http", code=504),
    *(Answer("http", code=429, retry=form) for form in RETRY_FORMS),
    *(Answer("http", code=503, retry=form) for form in RETRY_FORMS if form is not None),
    Answer("body", "malformed"),
    Answer("body", "html"),
    Answer("state", "running", plain=True),
)


def hint_of(retry: str | None) -> float | None:
    """The hint a Retry-After form gives, as documented: None when unusable."""
    if retry is None or retry in ("-5", "soon", "date-30"):
        return None
    if retry == "huge":
        return MAX_RETRY_AFTER  # 10**9 s, capped at max_retry_after
    if retry.startswith("date"):
        return float(retry[4:])
    return float(retry)


def effect_of(answer: Answer) -> str:
    """What the answer does to a live job: live, terminal, transient, throttle, fatal."""
    if answer.kind == "state":
        return "live" if answer.word in LIVE_WORDS else "terminal"
    if answer.kind == "gone":
        return "fatal"
    if answer.kind == "http" and (
        answer.code == 429 or (answer.code == 503 and hint_of(answer.retry) is not None)
    ):
        return "throttle"
    return "transient"  # raise, 5xx, a body that is not a status document


def pause_of(answer: Answer) -> float | None:
    """The cool-down a throttling answer announces (None: not throttling)."""
    if effect_of(answer) != "throttle":
        return None
    hint = hint_of(answer.retry)
    return DEFAULT_PAUSE if hint is None else hint


def http_date(seconds: float) -> str:
    return email.utils.formatdate(WALL0 + seconds, usegmt=True)


def result_of(job_id: str, serial: int) -> dict[str, Any]:
    return {"job": job_id, "n": serial}


# ----------------------------------------------------------------------- the model


@dataclass(frozen=True)
class Expected:
    """A job's outcome as the model sees it."""

    state: JobState
    result: Any = None
    error: type[BaseException] | None = None
    reason: str | None = None  # JobCancelled.reason, JobFailed.error
    http_status: int | None = None  # PollError.http_status


@dataclass
class Job:
    job_id: str
    host: str
    timeout: float
    deadline: float
    state: Answer = Answer("state", "pending")
    serial: int = 0  # which result a "succeeded" answer carries
    queue: list[Answer] = field(default_factory=list)
    errors: int = 0
    outcome: Expected | None = None
    delete: bool | None = None  # the remote cancel's DELETE: accepted, refused/failed (None)
    read_now: bool = False  # its status read was served
    # What the poller showed once done: (state, result, exception) by identity.
    seen: tuple[JobState, Any, BaseException | None] | None = None
    done_calls: int = 0  # handle.add_done_callback
    poller_on_done: int = 0
    job_on_done: int = 0


@dataclass
class Event:
    """One entry of the server's log (or a rule's act), in order."""

    kind: str  # get, delete, remote_done, cancel, shutdown
    job_id: str
    time: float
    answer: Answer | None = None
    serial: int = 0
    read_now: bool = False
    accepted: bool | None = None


def terminal(job: Job, answer: Answer, serial: int) -> Expected:
    word = answer.word
    if word == "succeeded":
        return Expected(JobState.SUCCEEDED, result=result_of(job.job_id, serial))
    if word == "failed":
        return Expected(JobState.FAILED, error=JobFailed, reason=f"boom {job.job_id}")
    assert word == "cancelled"
    return Expected(
        JobState.CANCELLED,
        error=JobCancelled,
        reason=f"cancelled on the server: stopped {job.job_id}",
    )


REMOTE_REASON = "cancelled on the server at the caller's request"


def apply(jobs: dict[str, Job], event: Event) -> None:
    """The model's reading of one event."""
    if event.kind == "shutdown":
        for other in jobs.values():
            if other.outcome is None:
                other.outcome = Expected(
                    JobState.CANCELLED,
                    error=JobCancelled,
                    reason="the poller was shut down with cancel_futures=True",
                )
        return
    job = jobs[event.job_id]
    if job.outcome is not None:
        if event.kind == "remote_done":
            job.delete, job.read_now = None, False
        return
    if event.kind == "cancel":
        job.outcome = Expected(
            JobState.CANCELLED, error=JobCancelled, reason="cancelled by the caller"
        )
    elif event.kind == "delete":
        job.delete, job.read_now = event.accepted, False
    elif event.kind == "remote_done":
        if job.delete and not job.read_now:
            job.outcome = Expected(JobState.CANCELLED, error=JobCancelled, reason=REMOTE_REASON)
        job.delete, job.read_now = None, False
    elif event.kind == "get" and event.read_now:
        assert event.answer is not None
        job.read_now = True
        if effect_of(event.answer) == "terminal":
            if event.answer.word == "cancelled" and job.delete:
                job.outcome = Expected(JobState.CANCELLED, error=JobCancelled, reason=REMOTE_REASON)
            else:
                job.outcome = terminal(job, event.answer, event.serial)
        elif job.delete:
            job.outcome = Expected(JobState.CANCELLED, error=JobCancelled, reason=REMOTE_REASON)
    elif event.kind == "get":
        assert event.answer is not None
        effect = effect_of(event.answer)
        if effect == "live":
            job.errors = 0
        elif effect == "terminal":
            job.outcome = terminal(job, event.answer, event.serial)
        elif effect == "fatal":
            job.outcome = Expected(JobState.ERRORED, error=PollError, http_status=404)
        elif effect == "transient":
            job.errors += 1
            if job.errors >= MAX_ERRORS:
                code = event.answer.code if event.answer.kind in ("http", "body") else None
                job.outcome = Expected(JobState.ERRORED, error=PollError, http_status=code)


def time_out(jobs: dict[str, Job], now: float, *, inclusive: bool) -> None:
    """Jobs whose deadline has come (before ``now``, or at it too) end TIMED_OUT."""
    for job in jobs.values():
        if job.outcome is None and (job.deadline <= now if inclusive else job.deadline < now):
            job.outcome = Expected(JobState.TIMED_OUT, error=JobTimeout)


# ----------------------------------------------------------------------- drivers


class Blocked(AssertionError):
    """A call into the loop waited for virtual time to pass."""


class Driver:
    """Runs coroutines on a frozen virtual-time loop, one call at a time."""

    backend = ""

    def now(self) -> float:
        raise NotImplementedError

    def run(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        """Run ``fn()`` to its end without time passing; ``Blocked`` if it must wait."""
        raise NotImplementedError

    def spawn(self, fn: Callable[[], Awaitable[Any]]) -> Box:
        """Start ``fn()`` in the background; the box holds its outcome once it ends."""
        raise NotImplementedError

    def advance(self, dt: float) -> None:
        """Let ``dt`` seconds of virtual time pass, every timer firing on time."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


@dataclass
class Box:
    done: bool = False
    value: Any = None
    error: BaseException | None = None


async def _boxed(box: Box, fn: Callable[[], Awaitable[Any]]) -> None:
    try:
        box.value = await fn()
    except Exception as exc:
        box.error = exc
    finally:
        box.done = True


class _InOrder(random.Random):
    """Trio's scheduling random, made to keep each batch of runnable tasks in order."""

    def shuffle(self, x: Any, random: Any = None) -> None:
        pass

    def random(self) -> float:
        return 1.0  # never reverse a batch


class TrioDriver(Driver):
    backend = "trio"

    def __init__(self) -> None:
        # Trio shuffles each batch of runnable tasks. Seeded per example by hypothesis,
        # that would still depend on which tasks of the portal's own (a call's tail, in
        # the loop's thread, racing the test's thread) share a batch: in order instead.
        self._random = trio_run._r
        trio_run._r = _InOrder()
        self.clock = trio.testing.MockClock()  # rate 0, no autojump: time stands still
        self._cm = anyio.from_thread.start_blocking_portal(
            "trio", backend_options={"clock": self.clock}
        )
        self.portal = self._cm.__enter__()

    def now(self) -> float:
        return float(self.clock.current_time())

    def run(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        async def call() -> tuple[Box, bool]:
            box, blocked = Box(), False
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_boxed, box, fn)
                await trio.testing.wait_all_tasks_blocked()
                if not box.done:
                    blocked = True
                    nursery.cancel_scope.cancel()
            await trio.testing.wait_all_tasks_blocked()
            return box, blocked

        box, blocked = self.portal.call(call)
        if blocked:
            raise Blocked(f"{fn!r} waited for virtual time to pass")
        if box.error is not None:
            raise box.error
        return box.value

    def spawn(self, fn: Callable[[], Awaitable[Any]]) -> Box:
        box = Box()
        self.portal.start_task_soon(_boxed, box, fn)

        async def settle() -> None:
            await trio.testing.wait_all_tasks_blocked()

        self.portal.call(settle)
        return box

    def advance(self, dt: float) -> None:
        async def advance() -> None:
            self.clock.autojump_threshold = 0.0
            try:
                await trio.sleep(dt)
            finally:
                self.clock.autojump_threshold = math.inf
            await trio.testing.wait_all_tasks_blocked()

        self.portal.call(advance)

    def close(self) -> None:
        try:
            self.portal.call(self.portal.stop, True)  # cancels what is left
        finally:
            try:
                self._cm.__exit__(None, None, None)
            finally:
                trio_run._r = self._random


class AsyncioDriver(Driver):
    backend = "asyncio"

    def __init__(self) -> None:
        self.loop = looptime.new_event_loop(start=0.0, end=None, resolution=1e-9)
        self._tasks: list[asyncio.Task[None]] = []

    def now(self) -> float:
        return float(self.loop.time())

    async def _settle(self) -> None:
        """Yield until every other task waits on a future and nothing is ready."""
        me = asyncio.current_task()
        for _ in range(100_000):
            await asyncio.sleep(0)
            ready = any(
                getattr(task, "_fut_waiter", None) is None
                for task in asyncio.all_tasks()
                if task is not me
            )
            if not ready and not self.loop._ready:  # type: ignore[attr-defined]
                return
        raise AssertionError("the loop never settles: a task spins")

    def run(self, fn: Callable[[], Awaitable[Any]]) -> Any:
        box = Box()
        task = self.loop.create_task(_boxed(box, fn))
        self.loop.run_until_complete(self._settle())
        if not task.done():
            task.cancel()
            self.loop.run_until_complete(asyncio.wait([task]))
            raise Blocked(f"{fn!r} waited for virtual time to pass")
        if box.error is not None:
            raise box.error
        return box.value

    def spawn(self, fn: Callable[[], Awaitable[Any]]) -> Box:
        box = Box()
        self._tasks.append(self.loop.create_task(_boxed(box, fn)))
        self.loop.run_until_complete(self._settle())
        return box

    def advance(self, dt: float) -> None:
        async def advance() -> None:
            await asyncio.sleep(dt)
            await self._settle()

        self.loop.run_until_complete(advance())

    def close(self) -> None:
        loop = self.loop
        try:
            left = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in left:
                task.cancel()
            if left:
                loop.run_until_complete(asyncio.wait(left))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


# ----------------------------------------------------------------------- the machine


class PollerMachine(RuleBasedStateMachine):
    """One poller, two hosts, a scripted server; see the module docstring."""

    backend = "trio"
    jobs_bundle = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.driver: Driver = TrioDriver() if self.backend == "trio" else AsyncioDriver()
        self.tolerance = TOLERANCE[self.backend]
        self.jobs: dict[str, Job] = {}
        self.handles: dict[str, asyncpoll.JobHandle] = {}
        self.events: list[Event] = []
        self.applied = 0
        self.violations: list[str] = []
        self.requests: list[tuple[float, str, str, str]] = []  # time, host, method, job
        self.cooldowns: list[tuple[str, float, float]] = []  # host, from, until
        self.deletes: dict[str, tuple[int, dict[str, Any]]] = {}
        self.remote: list[tuple[str, Box]] = []
        self.shutdown_box: Box | None = None
        self.closed = False
        self.serial = 0
        self.client = httpx.AsyncClient(transport=httpx.MockTransport(self._serve))
        self.poller = asyncpoll.TaskPoller(
            client=self.client,
            schedule=asyncpoll.fixed(1.0),
            retry_schedule=asyncpoll.fixed(1.0),
            max_errors=MAX_ERRORS,
            max_retry_after=MAX_RETRY_AFTER,
            max_concurrency=2,
            rate_limit={HOSTS[0]: HOST_RATE},
            on_done=self._poller_on_done,
        )
        self.driver.run(self.poller.open)

    # ------------------------------------------------------------------- the server

    def _now(self) -> float:
        return float(anyio.current_time())

    def _check_request(self, now: float, host: str, method: str, job_id: str) -> None:
        tol = self.tolerance
        for cool_host, start, until in self.cooldowns:
            if cool_host == host and start < now < until - tol:
                self.violations.append(
                    f"{method} {job_id} reached {host} at {now:.6f}, inside the cool-down "
                    f"it announced at {start:.6f} until {until:.6f}"
                )
        if host == HOSTS[0]:
            times = [*[t for t, h, _, _ in self.requests if h == host][-30:], now]
            for i, start in enumerate(times):
                count = len(times) - i
                if count > 1 + HOST_RATE * (now - start) + 1e-6:
                    self.violations.append(
                        f"{count} requests to {host} within {now - start:.6f} s, over "
                        f"its limit of {HOST_RATE}/s"
                    )
                    break
        self.requests.append((now, host, method, job_id))

    async def _serve(self, request: httpx.Request) -> httpx.Response:
        now = self._now()
        host = request.url.host
        job_id = request.url.path.rsplit("/", 1)[-1]
        job = self.jobs[job_id]
        remote = REMOTE_CALL.get() == job_id
        self._check_request(now, host, request.method, job_id)
        handle = self.handles.get(job_id)
        if handle is not None and handle.done():
            self.violations.append(
                f"{request.method} {job_id} sent at {now:.6f}, after the job had finished"
            )
        if request.method == "DELETE":
            _, reply = self.deletes[job_id]
            code = reply.get("code")
            self.events.append(
                Event("delete", job_id, now, accepted=code is not None and 200 <= code < 300)
            )
            if code is None:
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            return httpx.Response(code, json={"id": job_id})
        if not remote and now >= job.deadline:
            self.violations.append(f"job {job_id} polled at {now:.6f}, past its deadline")
        answer = job.queue.pop(0) if job.queue else job.state
        self.events.append(Event("get", job_id, now, answer, job.serial, read_now=remote))
        pause = pause_of(answer)
        if pause is not None:
            self.cooldowns.append((host, now, now + pause))
        return self._respond(request, job, answer, now)

    def _respond(
        self, request: httpx.Request, job: Job, answer: Answer, now: float
    ) -> httpx.Response:
        if answer.kind == "raise":
            if answer.word == "refused":
                raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
            if answer.word == "reset":
                raise httpx.ReadError("[Errno 104] Connection reset by peer", request=request)
            raise httpx.ReadTimeout("timed out", request=request)
        if answer.kind == "gone":
            return httpx.Response(404, json={"error": f"no job {job.job_id}"})
        if answer.kind == "body":
            if answer.word == "html":
                return httpx.Response(
                    200,
                    text="<html><body>Maintenance</body></html>",
                    headers={"content-type": "text/html"},
                )
            return httpx.Response(
                200,
                content=b'{"status": "running", "id":',
                headers={"content-type": "application/json"},
            )
        if answer.kind == "http":
            headers = {"date": http_date(math.floor(now))}
            retry = answer.retry
            if retry is not None:
                if retry == "huge":
                    headers["retry-after"] = str(10**9)
                elif retry.startswith("date"):
                    headers["retry-after"] = http_date(math.floor(now) + float(retry[4:]))
                else:
                    headers["retry-after"] = retry
            return httpx.Response(answer.code, json={"error": "busy"}, headers=headers)
        body: dict[str, Any] = {"id": job.job_id, "status": answer.word}
        if answer.word == "succeeded":
            body["result"] = result_of(job.job_id, job.serial)
        elif answer.word == "failed":
            body["error"] = f"boom {job.job_id}"
        elif answer.word == "cancelled":
            body["message"] = f"stopped {job.job_id}"
        if answer.plain:
            return httpx.Response(
                200, text=json.dumps(body), headers={"content-type": "text/plain"}
            )
        return httpx.Response(200, json=body)

    # ------------------------------------------------------------------- callbacks

    def _poller_on_done(self, handle: asyncpoll.JobHandle) -> None:
        self.jobs[handle.job_id].poller_on_done += 1

    def _job_on_done(self, handle: asyncpoll.JobHandle) -> None:
        job = self.jobs[handle.job_id]
        if job.poller_on_done != job.job_on_done + 1:
            self.violations.append(f"{job.job_id}: the job's on_done ran before the poller's")
        job.job_on_done += 1

    def _done_callback(self, handle: asyncpoll.JobHandle) -> None:
        self.jobs[handle.job_id].done_calls += 1

    # ------------------------------------------------------------------- rules

    @precondition(lambda self: self.shutdown_box is None and len(self.jobs) < 8)
    @rule(
        target=jobs_bundle,
        host=st.sampled_from(HOSTS),
        timeout=st.sampled_from(TIMEOUTS),
        answers=st.lists(st.sampled_from(FAULTS + STATES[:3]), max_size=4),
        state=st.sampled_from(STATES),
    )
    def add(self, host: str, timeout: float, answers: list[Answer], state: Answer) -> str:
        """A new job: its server answers ``answers`` first, then ``state``."""
        job_id = f"j{len(self.jobs)}"
        now = self.driver.now()
        job = self.jobs[job_id] = Job(job_id, host, timeout, now + timeout)
        job.queue.extend(answers)
        self.set_state(job_id, state)

        async def add() -> asyncpoll.JobHandle:
            handle = self.poller.add(
                job_id,
                url=f"https://{host}/jobs/{job_id}",
                timeout=timeout,
                on_done=self._job_on_done,
            )
            handle.add_done_callback(self._done_callback)
            return handle

        self.handles[job_id] = self.driver.run(add)
        assert job.deadline == now + timeout
        return job_id

    @precondition(lambda self: self.shutdown_box is None)
    @rule(job_id=jobs_bundle)
    def add_again(self, job_id: str) -> None:
        """Adding an id in flight returns its handle; a finished one starts a new job
        (not done here: the model keys jobs by id)."""
        handle = self.handles[job_id]
        if handle.done():
            return
        job = self.jobs[job_id]

        async def add() -> asyncpoll.JobHandle:
            return self.poller.add(job_id, url=f"https://{job.host}/jobs/{job_id}")

        assert self.driver.run(add) is handle

    @rule(job_id=jobs_bundle, state=st.sampled_from(STATES))
    def set_state(self, job_id: str, state: Answer) -> None:
        job = self.jobs[job_id]
        if state.word == "succeeded":
            self.serial += 1
            job.serial = self.serial
        job.state = state

    @rule(job_id=jobs_bundle, faults=st.lists(st.sampled_from(FAULTS), min_size=1, max_size=3))
    def script(self, job_id: str, faults: list[Answer]) -> None:
        self.jobs[job_id].queue.extend(faults)

    @rule(dt=st.sampled_from(STEPS))
    def advance(self, dt: float) -> None:
        self.driver.advance(dt)

    @rule(job_id=jobs_bundle)
    def cancel(self, job_id: str) -> None:
        self._catch_up()
        job, handle = self.jobs[job_id], self.handles[job_id]
        live = job.outcome is None

        async def cancel() -> bool:
            return handle.cancel()

        self.events.append(Event("cancel", job_id, self.driver.now()))
        assert self.driver.run(cancel) is live, "cancel() is True exactly for a live job"

    @precondition(lambda self: not self.closed)
    @rule(
        job_id=jobs_bundle,
        code=st.sampled_from([200, 202, 409, 500, None]),  # None: connection refused
    )
    def cancel_remote(self, job_id: str, code: int | None) -> None:
        if any(not box.done for other, box in self.remote if other == job_id):
            return  # one remote cancel at a time per job
        self.deletes[job_id] = (len(self.remote), {"code": code})
        handle = self.handles[job_id]

        async def cancel_remote() -> bool:
            REMOTE_CALL.set(job_id)
            try:
                return await handle.cancel_remote()
            finally:
                self.events.append(Event("remote_done", job_id, self._now()))

        self.remote.append((job_id, self.driver.spawn(cancel_remote)))

    @precondition(lambda self: self.shutdown_box is None)
    @rule(cancel_futures=st.booleans())
    def shutdown(self, cancel_futures: bool) -> None:
        async def shutdown() -> None:
            await self.poller.shutdown(wait=True, cancel_futures=cancel_futures)

        if cancel_futures:
            self.events.append(Event("shutdown", "", self.driver.now()))
        self.shutdown_box = self.driver.spawn(shutdown)

        async def add() -> None:
            self.poller.add("late", url=f"https://{HOSTS[0]}/jobs/late")

        with pytest.raises(RuntimeError, match="shutting down"):
            self.driver.run(add)

    # ------------------------------------------------------------------- invariants

    def _catch_up(self) -> None:
        """Apply the new events to the model, then the deadlines that have come."""
        while self.applied < len(self.events):
            event = self.events[self.applied]
            self.applied += 1
            time_out(self.jobs, event.time, inclusive=False)
            apply(self.jobs, event)
        time_out(self.jobs, self.driver.now(), inclusive=True)

    @invariant()
    def no_request_broke_a_rule(self) -> None:
        assert not self.violations, self.violations[0]
        assert self.poller.statistics().callback_errors == 0

    @invariant()
    def the_poller_matches_the_model(self) -> None:
        self._catch_up()
        for job_id, job in self.jobs.items():
            handle = self.handles[job_id]
            expected = job.outcome
            if expected is None:
                assert not handle.done(), f"{job_id} ended {handle.state} for no reason"
                assert (job.done_calls, job.poller_on_done, job.job_on_done) == (0, 0, 0)
                continue
            assert handle.done(), f"{job_id} should have ended {expected.state}"
            assert handle.state is expected.state, (job_id, handle.state, expected)
            exc = handle.exception()
            if expected.error is None:
                assert exc is None, (job_id, exc)
                assert handle.result() == expected.result, (job_id, handle.result(), expected)
            else:
                assert type(exc) is expected.error, (job_id, exc, expected)
                assert getattr(exc, "job_id", None) == job_id
                if isinstance(exc, JobCancelled):
                    assert exc.reason == expected.reason, (job_id, exc.reason, expected)
                elif isinstance(exc, JobFailed):
                    assert exc.error == expected.reason
                elif isinstance(exc, PollError):
                    assert exc.http_status == expected.http_status, (job_id, exc, expected)
                elif isinstance(exc, JobTimeout):
                    assert exc.timeout == job.timeout
            seen = (handle.state, handle.result() if exc is None else None, exc)
            if job.seen is None:
                job.seen = seen
            assert job.seen[0] is seen[0] and job.seen[2] is seen[2], "a handle resolves once"
            assert job.seen[1] == seen[1]
            calls = (job.done_calls, job.poller_on_done, job.job_on_done)
            assert calls == (1, 1, 1), f"{job_id}: callbacks ran {calls} times"

    @invariant()
    def remote_cancels_say_what_happened(self) -> None:
        for job_id, box in self.remote:
            if not box.done:
                continue
            handle = self.handles[job_id]
            if box.error is not None:
                assert isinstance(box.error, PollError), box.error
            elif box.value:
                assert handle.state is JobState.CANCELLED, (job_id, handle.state)

    @invariant()
    def after_shutdown_nothing_is_left(self) -> None:
        box = self.shutdown_box
        if box is not None and box.done:
            assert box.error is None, box.error
            live = [job_id for job_id, handle in self.handles.items() if not handle.done()]
            assert not live, f"shutdown() returned with {live} not done"
            assert self.poller.in_flight() == []

    def check(self) -> None:
        """Every invariant (what hypothesis runs after each step)."""
        self.no_request_broke_a_rule()
        self.the_poller_matches_the_model()
        self.remote_cancels_say_what_happened()
        self.after_shutdown_nothing_is_left()

    def teardown_checks(self) -> None:
        """Shut down, let every deadline pass, close: then nothing is left, nothing sent."""
        if self.shutdown_box is None:
            self.shutdown_box = self.driver.spawn(lambda: self.poller.shutdown(wait=True))
        for _ in range(5):
            if self.shutdown_box.done:
                break
            self.driver.advance(max(TIMEOUTS))
        assert self.shutdown_box.done, "shutdown() still waits after every deadline"
        self.check()
        self.closed = True
        self.driver.run(self.poller.aclose)
        sent = len(self.requests)
        self.driver.advance(100.0)
        assert len(self.requests) == sent, "a request after aclose()"

    def teardown(self) -> None:
        try:
            if not self.closed and not self.violations:
                self.teardown_checks()
        finally:
            try:
                if not self.closed:
                    self.closed = True
                    with contextlib.suppress(Blocked):  # closed by the cancellation
                        self.driver.run(self.poller.aclose)
                self.driver.run(self.client.aclose)
            finally:
                self.driver.close()


class AsyncioPollerMachine(PollerMachine):
    backend = "asyncio"


MACHINES = [
    pytest.param(PollerMachine, id="trio"),
    pytest.param(AsyncioPollerMachine, id="asyncio"),
]

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    # A failure is shrunk to a few steps, which takes a minute or two of examples: one
    # failure is shrunk, not every distinct one.
    report_multiple_bugs=False,
)


# A passing run takes a few seconds; shrinking a failure takes longer than the suite's
# 60 s per test.
@pytest.mark.timeout(300)
@pytest.mark.parametrize("machine", MACHINES)
def test_the_poller_matches_the_model(machine: type[PollerMachine]) -> None:
    run_state_machine_as_test(machine, settings=SETTINGS)


# ------------------------------------------------------------ what the machine found
#
# Each replays the steps hypothesis shrank a failure to; the invariants run after each
# step and the teardown drains, as in the machine.

PENDING = Answer("state", "pending")


def replay(machine: type[PollerMachine], *steps: Callable[[PollerMachine], object]) -> None:
    state = machine()
    try:
        for step in steps:
            step(state)
            state.check()
        state.teardown_checks()
    finally:
        state.teardown()


@pytest.mark.parametrize("machine", MACHINES)
def test_a_remote_cancel_sends_nothing_for_a_job_that_ended_while_it_waited(
    machine: type[PollerMachine],
) -> None:
    """The DELETE waited for a.test's next rate slot; the caller cancelled the job
    meanwhile. It was sent anyway, at the slot (after ``aclose()`` even, when the poller
    closed first): now ``cancel_remote()`` returns False and sends nothing."""
    replay(
        machine,
        lambda m: m.advance(0.25),
        lambda m: m.add(host="a.test", timeout=6.1234, answers=[], state=PENDING),
        lambda m: m.cancel_remote(job_id="j0", code=200),
        lambda m: m.cancel(job_id="j0"),
    )


@pytest.mark.parametrize("machine", MACHINES)
def test_a_job_settled_by_a_remote_cancel_s_status_read_is_not_polled_again(
    machine: type[PollerMachine],
) -> None:
    """j1's status read after its DELETE found it succeeded, while a worker's poll of it
    waited for a.test's slot: that poll went out for a finished job. Now resolving the
    job cancels the waiting poll, as ``cancel()`` does."""
    replay(
        machine,
        lambda m: m.add(
            host="a.test",
            timeout=6.1234,
            answers=[Answer("http", code=429, retry="1")],
            state=PENDING,
        ),
        lambda m: m.cancel_remote(job_id="j0", code=200),
        lambda m: m.add(host="a.test", timeout=6.1234, answers=[], state=STATES[3]),
        lambda m: m.cancel_remote(job_id="j1", code=200),
    )


@pytest.mark.parametrize("machine", MACHINES)
def test_a_request_held_by_a_cool_down_takes_a_new_slot_after_it(
    machine: type[PollerMachine],
) -> None:
    """A status read took a.test's slot (2/s) at 4.0, inside a cool-down announced at
    3.5 until 6.5; it went at 6.5 beside j1's poll, which took the slot accrued by then:
    two requests at one instant to a host limited to one every 0.5 s. Now the slot is
    given back and taken again after the cool-down (j1 goes at 7.5, a.test's halved
    rate being 1/s)."""
    replay(
        machine,
        *[lambda m: m.advance(0.25)] * 10,
        lambda m: m.add(host="a.test", timeout=6.1234, answers=[], state=PENDING),
        lambda m: m.cancel_remote(job_id="j0", code=200),
        lambda m: m.add(
            host="a.test",
            timeout=6.1234,
            answers=[Answer("http", code=429, retry="3")],
            state=PENDING,
        ),
    )
