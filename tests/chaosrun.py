"""Drive a poller against the chaos server and check every invariant of a run.

``drive()`` adds ``jobs`` jobs to a ``TaskPoller`` pointed at a ``ChaosServer``
(``tests/servers/chaos.py``), with a credential in its headers, a rate limit, a callback
counting ``on_done`` calls, a done callback on each handle and an ``as_completed`` loop,
and captures every log record. ``check()`` then asserts the invariants and returns a
report of the run (faults by kind, states, retries, requests):

- each job resolves once: every added job is terminal, each handle's done callback ran
  once, ``on_done`` ran once per job, ``as_completed`` yielded each job once;
- each job gets its own answer: a succeeded job's result, a failed job's error, is the
  one the server scripted for that job id; no job the server answered with a complete
  terminal answer ends in any other way;
- the rate limit holds on the server's kernel arrival times: no window of t seconds
  holds more than ``burst + rate * (t + slack)`` requests. ``slack`` is the send path
  from the limiter's grant to the kernel's stamp: 50 ms (a new connection's setup
  included: the faults close connections all the time), plus the event loop's largest
  lag measured during the run (a grant's task runs that late on a busy machine);
- no request reaches the server inside a cool-down it announced, after ``grace`` (100
  ms plus the loop's largest lag) for requests already past the host gate when the 429
  was read;
- no credential reaches the foreign origin or appears in any log record, repr or error;
- closing the poller leaves no task, thread, file descriptor or open connection.

Tests (``tests/test_chaos.py``) and the soak (``benchmarks/soak.py``) share this module.
"""

from __future__ import annotations

import collections
import contextlib
import gc
import logging
import os
import socket
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.lowlevel
import attrs

import asyncpoll
from asyncpoll import JobHandle, JobState

sys.path.insert(0, str(Path(__file__).parent))
from servers.chaos import ChaosServer

__all__ = ["SECRET", "Run", "check", "drive", "window_excess"]

#: Thread names of the event loop's worker threads and of the chaos server.
_LOOP_THREADS = ("chaos-", "Trio thread", "AnyIO worker thread")

#: The credential the poller sends; it must show up nowhere but the main origin.
SECRET = "chaos-secret-7f3a9c41"


@attrs.define
class Run:
    """What one drive of the poller saw."""

    server: ChaosServer
    rate: float
    burst: int
    max_retry_after: float
    handles: list[JobHandle] = attrs.Factory(list)
    on_done: collections.Counter[str] = attrs.Factory(collections.Counter)
    callbacks: collections.Counter[str] = attrs.Factory(collections.Counter)
    yielded: list[str] = attrs.Factory(list)
    records: list[logging.LogRecord] = attrs.Factory(list)
    texts: list[str] = attrs.Factory(list)  #: reprs, messages, errors: scanned for SECRET
    statistics: Any = None
    seconds: float = 0.0
    lag: float = 0.0  #: the event loop's largest lag during the run, in seconds
    leftovers: dict[str, Any] = attrs.Factory(dict)


class _Capture(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__(logging.DEBUG)
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@contextlib.contextmanager
def capture_logs(records: list[logging.LogRecord]) -> Iterator[None]:
    """Every record of the ``asyncpoll`` loggers, DEBUG up, into ``records`` only (not
    on to the root logger's handlers: pytest's would keep every record of a long run)."""
    logger = logging.getLogger("asyncpoll")
    handler = _Capture(records)
    level, propagate = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def open_fds() -> set[int]:
    """This process's open file descriptors (Linux)."""
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def _is_open(fd: int) -> bool:
    """Whether ``fd`` is still open (the listing's own directory handle is gone)."""
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def _describe(fd: int) -> str:
    """``fd`` and what it is (a socket's addresses where it is one)."""
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return f"{fd}"
    if target.startswith("socket:"):
        with contextlib.suppress(OSError):
            sock = socket.socket(fileno=os.dup(fd))
            try:
                return f"{fd}: {sock.getsockname()} -> {sock.getpeername()}"
            except OSError:
                return f"{fd}: {sock.getsockname()}"
            finally:
                sock.close()
    return f"{fd}: {target}"


def _tasks() -> dict[int, str]:
    """Every unfinished task of the running event loop but the current one, by id."""
    if _backend() == "asyncio":
        import asyncio

        current = asyncio.current_task()
        return {id(t): repr(t) for t in asyncio.all_tasks() if t is not current and not t.done()}
    import trio

    root = trio.lowlevel.current_root_task()
    current = trio.lowlevel.current_task()
    found: dict[int, str] = {}
    stack = [root]
    while stack:
        task = stack.pop()
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)
        if task is not root and task is not current and not _is_ancestor(task, current):
            found[id(task)] = task.name
    return found


def _is_ancestor(task: Any, of: Any) -> bool:
    parent = of.parent_nursery
    while parent is not None:
        if parent.parent_task is task:
            return True
        parent = parent.parent_task.parent_nursery
    return False


def _backend() -> str:
    import sniffio

    return sniffio.current_async_library()


async def drive(
    server: ChaosServer,
    *,
    jobs: int,
    transport: str = "auto",
    store: Any = None,
    rate: float = 300.0,
    burst: int = 10,
    max_concurrency: int = 32,
    request_timeout: float = 0.5,
    max_retry_after: float = 2.0,
    prefix: str = "job",
    budget: float = 40.0,
    discard: bool = False,
) -> Run:
    """Poll ``jobs`` jobs on ``server`` until every one is terminal (or ``budget`` s).

    ``budget`` is each job's deadline; the run is cancelled 10 s after it, so that a
    stuck run fails with a message inside a test's 60 s.
    """
    run = Run(server=server, rate=rate, burst=burst, max_retry_after=max_retry_after)
    threads_before = {t.ident for t in threading.enumerate()}
    fds_before = open_fds()
    started = anyio.current_time()
    tasks_before = _tasks()

    def count_on_done(handle: JobHandle) -> None:
        run.on_done[handle.job_id] += 1

    def count_callback(handle: JobHandle) -> None:
        run.callbacks[handle.job_id] += 1

    with capture_logs(run.records):
        poller = asyncpoll.TaskPoller(
            status_url=f"{server.url}/jobs/{{job_id}}",
            headers={"Authorization": f"Bearer {SECRET}"},
            rate_limit=asyncpoll.RateLimit(rate, burst=burst),
            transport=transport,
            store=store,
            max_concurrency=max_concurrency,
            schedule=asyncpoll.fixed(0.02),
            retry_schedule=asyncpoll.fixed(0.05),
            max_errors=30,
            request_timeout=request_timeout,
            max_retry_after=max_retry_after,
            timeout=budget,
            on_done=count_on_done,
        )
        with anyio.fail_after(budget + 10):
            async with anyio.create_task_group() as lags:
                lags.start_soon(_watch_lag, run)
                async with poller:
                    for i in range(jobs):
                        handle = poller.add(f"{prefix}{i}")
                        handle.add_done_callback(count_callback)
                        run.handles.append(handle)
                    async for handle in poller.as_completed(run.handles):
                        run.yielded.append(handle.job_id)
                    run.statistics = poller.statistics()
                    run.texts.append(repr(poller))
                    run.texts.append(str(run.statistics))
                    if discard:
                        poller.discard_finished()
                # Stopped once the poller has closed (a cancel around the poller's block
                # would close it by cancellation, its queued callbacks unrun).
                lags.cancel_scope.cancel()
            # Let finished tasks end, and the loop close the async generators that
            # httpcore leaves to the garbage collector (its own, inside a closed stream).
            with warnings.catch_warnings():
                # Trio warns of each generator httpcore nests inside a response stream
                # that a refused body left unexhausted (the stream itself is closed).
                warnings.filterwarnings(
                    "ignore", "Async generator 'http(x|core)\\.", ResourceWarning
                )
                gc.collect()
                for _ in range(5):
                    await anyio.lowlevel.checkpoint()
            # Trio's own tasks closing generators httpcore abandoned (see above) aside.
            run.leftovers["tasks"] = [
                text
                for key, text in _tasks().items()
                if key not in tasks_before and not text.startswith("close asyncgen http")
            ]
    run.seconds = anyio.current_time() - started
    for handle in run.handles:
        run.texts.append(repr(handle))
        error = handle.exception() if handle.done() else None
        if error is not None:
            run.texts.extend((str(error), repr(error)))
    # The server notices a client's close within its 50 ms socket timeout.
    for _ in range(500):  # at most 5 s
        if not server.open:
            break
        await anyio.sleep(0.01)
    run.leftovers["connections"] = server.open
    # The event loop's worker threads (anyio's to_thread pool, trio's thread cache: the
    # SQLite store and name lookups run there) idle on for a while: the loop's, not the
    # poller's. The chaos server's own threads are the test's.
    run.leftovers["threads"] = [
        t.name
        for t in threading.enumerate()
        if t.ident not in threads_before and not t.name.startswith(_LOOP_THREADS)
    ]
    # (A refusal reopens the server's listening socket: the test's, not the poller's.)
    left = open_fds() - fds_before - server.sockets()
    run.leftovers["fds"] = [_describe(fd) for fd in sorted(left) if _is_open(fd)]
    return run


def window_excess(times: list[float], rate: float, burst: int, slack: float) -> tuple[int, int]:
    """The worst window of sorted ``times`` against ``burst + rate * (t + slack)``.

    Returns ``(i, j)``, the window ``times[i..j]`` whose count most exceeds its bound, or
    ``(-1, -1)`` when none does. Count ``j - i + 1 <= burst + rate * (t_j - t_i + slack)``
    for all ``i <= j`` is ``a_j - a_i <= burst - 1 + rate * slack`` with ``a_k = k - rate *
    t_k``: one pass keeping the smallest ``a_i`` so far.
    """
    allowance = burst - 1 + rate * slack
    worst = (-1, -1)
    worst_over = 0.0
    low, low_at = float("inf"), -1
    for k, t in enumerate(times):
        a = k - rate * t
        if a < low:
            low, low_at = a, k
        over = a - low - allowance
        if over > worst_over + 1e-9:
            worst, worst_over = (low_at, k), over
    return worst


async def _watch_lag(run: Run) -> None:
    """Keep ``run.lag``: how much later than asked a 10 ms sleep ends, at most."""
    while True:
        asked = anyio.current_time() + 0.01
        await anyio.sleep(0.01)
        run.lag = max(run.lag, anyio.current_time() - asked)


def check(run: Run, *, slack: float = 0.05, grace: float = 0.1) -> dict[str, Any]:
    """Assert every invariant of ``run``; return its report (see the module docstring).

    ``slack`` and ``grace`` are the base allowances; the run's measured loop lag is added
    to each.
    """
    slack += run.lag
    grace += run.lag
    server = run.server
    ids = [h.job_id for h in run.handles]
    problems: list[str] = []

    # Each job resolves once.
    live = [h.job_id for h in run.handles if not h.state.is_terminal]
    if live:
        problems.append(f"{len(live)} jobs never finished: {live[:5]}")
    for name, counts in (("on_done", run.on_done), ("done callback", run.callbacks)):
        wrong = {i: counts[i] for i in ids if counts[i] != 1}
        if wrong:
            problems.append(f"{name} ran other than once: {dict(list(wrong.items())[:5])}")
    yields = collections.Counter(run.yielded)
    if sorted(yields) != sorted(ids) or any(n != 1 for n in yields.values()):
        twice = [i for i, n in yields.items() if n != 1]
        problems.append(f"as_completed yielded {len(run.yielded)} for {len(ids)} jobs: {twice[:5]}")

    # Each job gets its own answer.
    states: collections.Counter[str] = collections.Counter()
    errors: collections.Counter[str] = collections.Counter()
    for handle in run.handles:
        states[handle.state.value] += 1
        job = server.jobs.get(handle.job_id)
        if handle.state is JobState.SUCCEEDED:
            expected = job.answer if job else None
            if not expected or expected.get("status") != "succeeded":
                problems.append(f"{handle.job_id} succeeded; the server never said so")
            elif handle.result() != expected["result"]:
                problems.append(
                    f"{handle.job_id} resolved with {handle.result()!r}, not its own "
                    f"{expected['result']!r}"
                )
        elif handle.state is JobState.FAILED:
            message = str(handle.exception())
            if job is None or job.answer.get("status") != "failed":
                problems.append(f"{handle.job_id} failed; the server never said so: {message}")
            elif job.answer["error"] not in message:
                problems.append(f"{handle.job_id} failed with {message!r}, not its own error")
        elif handle.state.is_terminal:
            error = handle.exception()
            errors[type(error).__name__ + ": " + _gist(str(error))] += 1
            if job is not None and job.terminal_served:
                problems.append(
                    f"{handle.job_id} ended {handle.state.value} ({error}) though the server "
                    f"answered it {job.answer} {job.terminal_served} times"
                )

    # The rate limit holds on the kernel's arrival times.
    arrivals = server.main_arrivals()
    i, j = window_excess(arrivals, run.rate, run.burst, slack)
    if i >= 0:
        span = arrivals[j] - arrivals[i]
        problems.append(
            f"{j - i + 1} requests arrived in {span * 1000:.3f} ms; the limit allows "
            f"{run.burst + run.rate * (span + slack):.2f} (rate {run.rate}/s, burst "
            f"{run.burst}, slack {slack * 1000:g} ms)"
        )

    # No request inside an announced cool-down.
    for cooldown in server.cooldowns:
        end = min(cooldown.end, cooldown.sent + run.max_retry_after)
        inside = [a for a in arrivals if cooldown.sent + grace < a < end - grace]
        if inside:
            problems.append(
                f"{len(inside)} requests arrived during a {cooldown.form} cool-down "
                f"announced at {cooldown.sent:.3f} until {end:.3f}: first at {inside[0]:.3f}"
            )

    # No credential leaks.
    foreign = [a for a in server.foreign_requests if SECRET in str(a.headers)]
    if foreign:
        problems.append(f"the credential reached another origin: {foreign[:3]}")
    texts = [*run.texts]
    for record in run.records:
        texts.append(record.getMessage())
        if record.exc_info:
            texts.append(logging.Formatter().formatException(record.exc_info))
    leaked = [t for t in texts if SECRET in t]
    if leaked:
        problems.append(f"the credential appears in {len(leaked)} texts: {leaked[0][:300]!r}")

    # Nothing is kept.
    for what, left in run.leftovers.items():
        if left:
            problems.append(f"closing the poller left {what}: {left}")

    report = {
        "jobs": len(ids),
        "seconds": round(run.seconds, 2),
        "requests": server.requests,
        "poller requests": run.statistics.requests if run.statistics else None,
        "retries (transient errors)": run.statistics.transient_errors if run.statistics else None,
        "429s read": run.statistics.throttled if run.statistics else None,
        "faults injected": dict(sorted(server.injected.items())),
        "faults total": sum(server.injected.values()),
        "states": dict(sorted(states.items())),
        "errors": dict(errors.most_common()),
        "cool-downs announced": len(server.cooldowns),
        "foreign requests": len(server.foreign_requests),
        "log records": len(run.records),
        "largest loop lag (ms)": round(run.lag * 1000, 1),
        "texts scanned": len(texts),
    }
    assert not problems, "\n".join(problems) + f"\n{report}"
    return report


def _gist(message: str) -> str:
    """An error message without its job's id and numbers, to count errors by kind."""
    words = [w for w in message.split() if not any(c.isdigit() for c in w)]
    return " ".join(words)[:100]
