"""The blocking facade: ``BlockingPoller`` and its handles, ``poll_blocking()`` and
``poll_many_blocking()``, from a plain thread and from inside a running event loop.

These run real threads (the engine's loop runs on one of its own), so not in virtual
time: the fake job API answers at once and jobs are polled every millisecond. No test
sleeps to wait; every wait is bounded.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import httpx
import pytest

import asyncpoll
from asyncpoll import JobState

#: The longest any wait in these tests may take, in seconds.
WAIT = 10.0

QUICK = asyncpoll.fixed(0.001)


class Jobs:
    """A job API answering ``GET /jobs/{id}`` at once, from per-job scripts; ``POST
    /jobs`` makes job ``new`` (``202`` with a ``Location``). The last reply repeats."""

    def __init__(self) -> None:
        self.scripts: dict[str, list[dict[str, Any]]] = {}
        self.polls: dict[str, int] = {}
        self.threads: set[str] = set()

    def script(self, job_id: str, *states: dict[str, Any]) -> None:
        self.scripts[job_id] = list(states)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.threads.add(threading.current_thread().name)
        if request.method == "POST":
            return httpx.Response(202, headers={"Location": "/jobs/new"})
        job_id = request.url.path.rsplit("/", 1)[-1]
        n = self.polls[job_id] = self.polls.get(job_id, 0) + 1
        replies = self.scripts.get(job_id)
        if not replies:
            return httpx.Response(404, json={"error": "no such job"})
        return httpx.Response(200, json=replies[min(n, len(replies)) - 1])

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self), base_url="https://api.test")


RUNNING = {"status": "running", "progress": 50}


def done(result: Any) -> dict[str, Any]:
    return {"status": "completed", "result": result}


FAILED = {"status": "failed", "message": "out of memory"}


@pytest.fixture
def jobs() -> Jobs:
    """A fresh job API: ``a`` succeeds on its third poll, ``b`` on its first, ``bad``
    fails, ``slow`` runs for ever."""
    api = Jobs()
    api.script("a", RUNNING, RUNNING, done("A"))
    api.script("b", done("B"))
    api.script("bad", RUNNING, FAILED)
    api.script("slow", RUNNING)
    api.script("new", RUNNING, done("NEW"))
    return api


@pytest.fixture
def poller(jobs: Jobs) -> Iterator[asyncpoll.BlockingPoller]:
    """A BlockingPoller on the fake API, polling every millisecond; closed after the test."""
    with asyncpoll.BlockingPoller(
        "/jobs/{job_id}", client=jobs.client(), schedule=QUICK, retry_schedule=QUICK
    ) as p:
        yield p


# ---------------------------------------------------------------- from a plain thread


def test_result_blocks_until_the_job_finishes(poller: asyncpoll.BlockingPoller, jobs: Jobs) -> None:
    """add() returns at once; result() waits for the third poll's result."""
    handle = poller.add("a")
    assert isinstance(handle, asyncpoll.BlockingHandle)
    assert handle.job_id == "a" and handle.url == "/jobs/a"
    assert handle.result(timeout=WAIT) == "A"
    assert handle.done() and handle.state is JobState.SUCCEEDED
    assert (handle.attempts, handle.progress, handle.exception()) == (3, 1.0, None)
    assert jobs.polls["a"] == 3
    # The engine ran on the portal's own thread, not this one.
    assert threading.current_thread().name not in jobs.threads


def test_result_raises_the_jobs_exception(poller: asyncpoll.BlockingPoller) -> None:
    """A failed job's result() raises JobFailed; exception() returns it."""
    handle = poller.add("bad")
    with pytest.raises(asyncpoll.JobFailed, match="out of memory"):
        handle.result(timeout=WAIT)
    assert isinstance(handle.exception(timeout=WAIT), asyncpoll.JobFailed)


def test_a_wait_that_runs_out_leaves_the_job_polling(poller: asyncpoll.BlockingPoller) -> None:
    """result(timeout=) raises TimeoutError (not a JobTimeout) and the job goes on; then
    cancel() resolves it CANCELLED."""
    handle = poller.add("slow")
    with pytest.raises(TimeoutError, match=r"job 'slow' is still \w+ after 0.05 s"):
        handle.result(timeout=0.05)
    with pytest.raises(TimeoutError):
        handle.exception(timeout=0.0)
    assert not handle.done()
    assert handle.cancel() is True
    assert handle.state is JobState.CANCELLED
    with pytest.raises(asyncpoll.JobCancelled):
        handle.result()
    assert handle.cancel() is False


def test_gather_returns_results_in_order(poller: asyncpoll.BlockingPoller) -> None:
    """gather() takes handles and ids, returns results in the order given, and raises the
    first failure unless return_exceptions."""
    a = poller.add("a")
    poller.add("b")
    poller.add("bad")
    assert poller.gather("b", a, timeout=WAIT) == ["B", "A"]
    results = poller.gather(a, "bad", return_exceptions=True, timeout=WAIT)
    assert results[0] == "A" and isinstance(results[1], asyncpoll.JobFailed)
    with pytest.raises(asyncpoll.JobFailed):
        poller.gather("bad", "b")


def test_gather_with_a_timeout_raises_timeout_error(poller: asyncpoll.BlockingPoller) -> None:
    """A gather() that outlasts its timeout raises TimeoutError; the job keeps polling."""
    slow = poller.add("slow")
    with pytest.raises(TimeoutError):
        poller.gather(slow, timeout=0.05)
    assert not slow.done()
    slow.cancel()


def test_as_completed_is_a_plain_iterator_in_finish_order(
    poller: asyncpoll.BlockingPoller,
) -> None:
    """as_completed() yields each handle as its job finishes and stops when none is left."""
    finished = poller.add("b")  # done on its first poll
    assert finished.result(timeout=WAIT) == "B"
    poller.add("a")
    poller.add("bad")
    order = [h.job_id for h in poller.as_completed(timeout=WAIT)]
    assert order[0] == "b" and sorted(order) == ["a", "b", "bad"]
    chosen = list(poller.as_completed([finished, "a"], timeout=WAIT))
    assert [h.job_id for h in chosen] == ["b", "a"]
    assert chosen[0] == finished and hash(chosen[0]) == hash(finished)


def test_as_completed_with_a_timeout_raises_timeout_error(
    poller: asyncpoll.BlockingPoller,
) -> None:
    """An as_completed() iteration still waiting at its timeout raises TimeoutError."""
    slow = poller.add("slow")
    with pytest.raises(TimeoutError):
        list(poller.as_completed(timeout=0.05))
    slow.cancel()


def test_submit_creates_and_polls(poller: asyncpoll.BlockingPoller) -> None:
    """submit() sends the create request and polls the Location it gets back."""
    handle = poller.submit("/jobs", json={"scene": 1})
    assert handle.job_id == "new"
    assert handle.result(timeout=WAIT) == "NEW"
    assert poller.handle("new") == handle
    [made] = poller.submit_many("/jobs", [{"scene": 2}])
    assert isinstance(made, asyncpoll.BlockingHandle) and made != handle  # a new job
    assert made.result(timeout=WAIT) == "NEW"


def test_summary_statistics_and_views(poller: asyncpoll.BlockingPoller) -> None:
    """summary(), statistics(), in_flight() and the reprs work through the portal."""
    slow = poller.add("slow")
    poller.add("b").result(timeout=WAIT)
    assert poller.in_flight() == [slow]
    assert poller.summary().succeeded == 1 and poller.summary().in_flight == 1
    stats = poller.statistics()
    assert stats.active == 1 and stats.finished[JobState.SUCCEEDED] == 1
    assert repr(poller).startswith("<BlockingPoller open active=1 finished=1 status_url=")
    assert repr(slow).startswith("<BlockingHandle 'slow' ")
    assert "<caption style='text-align:left'>BlockingPoller</caption>" in poller._repr_html_()
    assert "<caption style='text-align:left'>BlockingHandle</caption>" in slow._repr_html_()
    assert poller.cancel(slow) is True
    assert poller.cancel("slow") is False


def test_done_callbacks_run_on_the_loop_thread(poller: asyncpoll.BlockingPoller) -> None:
    """add_done_callback() calls fn with the blocking handle, on the poller's thread."""
    seen: list[tuple[str, str]] = []
    handle = poller.add("a")
    handle.add_done_callback(lambda h: seen.append((h.job_id, threading.current_thread().name)))
    handle.result(timeout=WAIT)
    poller.close()  # after every queued callback
    assert seen[0][0] == "a" and seen[0][1] != threading.current_thread().name


def test_calling_back_into_the_poller_from_its_own_thread_is_refused(jobs: Jobs) -> None:
    """A callback on the loop thread cannot use the blocking API (it would wait on
    itself): anyio's portal refuses, and the error is counted, not raised."""
    errors: list[BaseException] = []

    def on_done(handle: asyncpoll.JobHandle) -> None:
        try:
            p.summary()
        except RuntimeError as exc:
            errors.append(exc)

    with asyncpoll.BlockingPoller(
        "/jobs/{job_id}", client=jobs.client(), schedule=QUICK, on_done=on_done
    ) as p:
        p.add("b").result(timeout=WAIT)
    assert "event loop thread" in str(errors[0])


def test_leaving_the_block_with_an_exception_cancels_the_jobs(jobs: Jobs) -> None:
    """An exception out of the with block cancels every job in flight and propagates."""
    with (
        pytest.raises(KeyError),
        asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), schedule=QUICK) as p,
    ):
        slow = p.add("slow")
        raise KeyError("x")
    assert slow.state is JobState.CANCELLED
    assert p.closed


def test_close_waits_for_every_job_or_cancels_them(jobs: Jobs) -> None:
    """close() waits for the jobs in flight; close(cancel_futures=True) cancels them;
    closing twice does nothing, and a closed poller takes no jobs."""
    p = asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), schedule=QUICK)
    a = p.add("a")
    p.close()
    assert a.result() == "A"
    assert p.closed and repr(p).startswith("<BlockingPoller closed active=0 finished=1")
    assert "<td style='text-align:left'>closed</td>" in p._repr_html_()
    p.close()
    with pytest.raises(RuntimeError):
        p.add("b")
    q = asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), schedule=QUICK)
    slow = q.add("slow")
    q.close(cancel_futures=True)
    assert slow.state is JobState.CANCELLED
    # The final counts stay readable after close().
    assert str(q.summary()).startswith("1 job: 0 in flight, 1 cancelled; ")
    assert q.statistics().finished[JobState.CANCELLED] == 1


def test_bad_arguments_are_raised_in_the_caller(jobs: Jobs) -> None:
    """TaskPoller's validation errors reach the caller, and no thread is left behind."""
    before = threading.active_count()
    with pytest.raises(ValueError, match="max_concurrency"):
        asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), max_concurrency=0)
    assert threading.active_count() == before


def test_the_engine_runs_on_trio_too(jobs: Jobs) -> None:
    """backend="trio" runs the engine on a trio loop."""
    with asyncpoll.BlockingPoller(
        "/jobs/{job_id}", client=jobs.client(), schedule=QUICK, backend="trio"
    ) as p:
        assert p.add("a").result(timeout=WAIT) == "A"


def test_poll_blocking_and_poll_many_blocking(jobs: Jobs) -> None:
    """The blocking twins return what poll() and poll_many() would."""
    assert asyncpoll.poll_blocking("/jobs/a", client=jobs.client(), schedule=QUICK) == "A"
    results = asyncpoll.poll_many_blocking(
        iter(["b", "bad"]),
        status_url="/jobs/{job_id}",
        client=jobs.client(),
        schedule=QUICK,
        return_exceptions=True,
    )
    assert results[0] == "B" and isinstance(results[1], asyncpoll.JobFailed)
    with pytest.raises(asyncpoll.JobFailed):
        asyncpoll.poll_many_blocking(
            ["bad"], status_url="/jobs/{job_id}", client=jobs.client(), schedule=QUICK
        )


# ---------------------------------------------------------------- inside a running loop


def test_blocking_api_works_on_a_thread_whose_loop_is_running(jobs: Jobs) -> None:
    """Called on the thread of a running asyncio loop (a notebook cell without await),
    the blocking API works: the engine runs on its own loop, never needs this one."""

    async def cell() -> list[Any]:
        with asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), schedule=QUICK) as p:
            first = p.add("a").result(timeout=WAIT)
        many = asyncpoll.poll_many_blocking(
            ["b"], status_url="/jobs/{job_id}", client=jobs.client(), schedule=QUICK
        )
        return [first, many, asyncpoll.poll_blocking("/jobs/b", client=jobs.client())]

    assert asyncio.run(cell()) == ["A", ["B"], "B"]


def test_blocking_api_works_from_a_worker_thread_of_a_running_loop(jobs: Jobs) -> None:
    """A loop's worker thread (anyio.to_thread) may use a BlockingPoller made on the
    loop's own thread, across calls, as notebook cells do."""

    async def main() -> list[Any]:
        p = asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), schedule=QUICK)
        handle = p.add("a")
        result = await anyio.to_thread.run_sync(handle.result, WAIT)
        gathered = await anyio.to_thread.run_sync(lambda: p.gather("a", p.add("b")))
        await anyio.to_thread.run_sync(p.close)
        return [result, gathered]

    assert anyio.run(main) == ["A", ["A", "B"]]


def test_a_poller_never_closed_does_not_hold_the_process_at_exit(tmp_path: Path) -> None:
    """A script that forgets close() exits: its jobs are cancelled at exit (one line)."""
    script = tmp_path / "forget.py"
    script.write_text(
        "import asyncpoll, httpx\n"
        "def answer(request):\n"
        "    return httpx.Response(200, json={'status': 'running'})\n"
        "client = httpx.AsyncClient(transport=httpx.MockTransport(answer))\n"
        "p = asyncpoll.BlockingPoller('https://api.test/jobs/{job_id}', client=client,\n"
        "                             schedule=asyncpoll.fixed(0.01))\n"
        "p.add('a')\n"
        "print('no close()')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert (done.returncode, done.stdout) == (0, "no close()\n")
    assert "1 jobs in flight cancelled" in done.stderr


def test_a_closed_poller_says_so_and_add_many_adds_in_one_call(jobs: Jobs) -> None:
    """After close(): a clear error; add_many() returns handles in order."""
    p = asyncpoll.BlockingPoller("/jobs/{job_id}", client=jobs.client(), schedule=QUICK)
    handles = p.add_many(["a", "b"])
    assert [h.job_id for h in handles] == ["a", "b"]
    assert p.gather(*handles) == ["A", "B"]
    p.close()
    with pytest.raises(RuntimeError, match="this BlockingPoller is closed; make a new one"):
        p.add("c")
    assert handles[0].cancel() is False
