"""asyncpoll side by side with the pollers people would pick instead, on one job server.

Every contender polls the same jobs of the loopback job server (benchmarks/server.py,
its own process pinned to CPU 1; each job is done on its 5th status request) at a fixed
0.5 s interval with at most 100 requests in flight, in a fresh Python process pinned to
CPU 0. Contenders alternate (trial 1 of each, then trial 2, ...) and each figure is the
median of ``--trials`` trials; a trial ends after ``--timeout`` seconds if it has not
finished, and its row says how far it got. One markdown table per job count:

- polls/s: job requests the server answered during the trial, per second from the first
  job added to the last job the client learned was done; polls/job is the same count over
  the jobs (it should be exactly 5);
- CPU us/poll: the client process's user+system CPU time (``resource.getrusage``, every
  thread) over the same span, per poll; client and server CPU %: CPU seconds over that
  span (the server's from its ``/stats``, over the whole child process's life): a
  server near 100 % would be the bottleneck;
- KiB/job: (``ru_maxrss`` at the end of the trial - ``ru_maxrss`` after imports and setup,
  before the first job exists) / jobs. The process is fresh, so the first peak is the
  setup's own; the same for every contender;
- delay p50/p95: for each job, ``time.time()`` when the client's handle, future or loop
  saw it done, minus ``time.time()`` when the server answered its first "done" (both
  clocks of one machine; the server's times come from ``GET /log``);
- lines: the contender function's non-blank lines, without comments, docstrings and the
  lines that only report to the benchmark (``rec.``), as ruff formats them.

Then a short trial per contender asked to hold ``--rate`` requests/s with a burst of 1
(1,000 jobs by default): asyncpoll is given ``rate_limit=``; the others have no setting
and run as they are. It is checked on the server's arrival times: the achieved rate
(requests after the first, over the span from first to last arrival) as a % of the
asked one, and the most requests in any window of 0.1 s and 1 s against
``burst + rate * t`` (OVER: the bound was exceeded). The client's CPU % beside it tells
a limiter that holds back from a client that cannot keep up (near 100 %).

A contender whose package is missing is skipped with a note.

    python benchmarks/peers.py [--jobs 1000 10000] [--trials 3] [--contenders NAME ...]
        [--rate 200] [--rate-jobs 1000] [--timeout 60]
"""

from __future__ import annotations

import argparse
import ast
import importlib.util
import inspect
import json
import os
import resource
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from limiter import worst_window  # the benchmark next to this script

SERVER = Path(__file__).with_name("server.py")
POLLS_PER_JOB = 5
INTERVAL = 0.5  # seconds between two polls of a job, for every contender
CONCURRENCY = 100  # requests in flight at most, for every contender
BURST = 1  # of the rate trial
WINDOWS = (0.1, 1.0)  # window lengths of the rate check, in seconds
RESULT = "RESULT "  # the prefix of the one line a trial process reports on


def _cpu() -> float:
    """This process's user+system CPU seconds, every thread."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _maxrss_kib() -> float:
    """This process's peak RSS in KiB (``ru_maxrss`` is in bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform == "darwin" else float(peak)


class Recorder:
    """What a contender tells the benchmark: the trial starts, a job is known to be done.

    ``done()`` may be called from any thread. The trial ends when every job is done;
    its end (wall time, CPU time, peak RSS) is taken then.
    """

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self.done_at: dict[str, float] = {}
        self.started = threading.Event()
        self.finished = threading.Event()
        self._lock = threading.Lock()
        self.start_wall = self.start_cpu = self.start_rss = 0.0
        self.end: tuple[float, float, float] | None = None  # wall, CPU, peak RSS

    def start(self) -> None:
        """Called once setup is over, right before the first job is added."""
        self.start_rss = _maxrss_kib()
        self.start_cpu = _cpu()
        self.start_wall = time.time()
        self.started.set()

    def done(self, job_id: str) -> None:
        """The client has just learned that this job is done."""
        now = time.time()
        with self._lock:
            self.done_at[job_id] = now
            if len(self.done_at) == self.jobs and self.end is None:
                self.end = (now, _cpu(), _maxrss_kib())
                self.finished.set()

    def report(self, error: str | None = None) -> dict[str, Any]:
        """The trial's figures so far (at a timeout: up to now)."""
        with self._lock:
            end = self.end or (time.time(), _cpu(), _maxrss_kib())
            return {
                "finished": self.end is not None,
                "error": error,
                "wall": end[0] - self.start_wall,
                "cpu": end[1] - self.start_cpu,
                "rss_kib": end[2] - self.start_rss,
                "done_at": dict(self.done_at),
            }


# ----------------------------------------------------------------------------- contenders
#
# Each is one self-contained function (its lines are counted): (base URL, job ids,
# recorder, rate or None) -> None, async or not. Setup comes before rec.start(); every
# job is done when the function returns.


async def asyncpoll_default(base: str, ids: list[str], rec: Recorder, rate: float | None) -> None:
    """asyncpoll with no transport or client argument: the transport it picks by default."""
    import asyncpoll

    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        base_url=base,
        schedule=asyncpoll.fixed(INTERVAL),
        max_concurrency=CONCURRENCY,
        rate_limit=None if rate is None else asyncpoll.RateLimit(rate, burst=BURST),
    ) as poller:
        rec.start()
        for job in ids:
            poller.add(job)
        async for handle in poller.as_completed():
            rec.done(handle.job_id)


async def asyncpoll_httpx(base: str, ids: list[str], rec: Recorder, rate: float | None) -> None:
    """asyncpoll on httpx's own transport, named (the default on trio; on asyncio the
    default is the native aiohttp path, the row before)."""
    import asyncpoll

    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        base_url=base,
        schedule=asyncpoll.fixed(INTERVAL),
        max_concurrency=CONCURRENCY,
        rate_limit=None if rate is None else asyncpoll.RateLimit(rate, burst=BURST),
        transport="httpx",
    ) as poller:
        rec.start()
        for job in ids:
            poller.add(job)
        async for handle in poller.as_completed():
            rec.done(handle.job_id)


async def aiohttp_loops(base: str, ids: list[str], rec: Recorder, rate: float | None) -> None:
    """The loop people hand-write: one coroutine per job (GET, done? sleep), all gathered."""
    import asyncio

    import aiohttp

    async def one(session: aiohttp.ClientSession, job: str) -> None:
        while True:
            async with session.get(f"/jobs/{job}") as response:
                body = await response.json()
            if body["status"] == "done":
                break
            await asyncio.sleep(INTERVAL)
        rec.done(job)

    connector = aiohttp.TCPConnector(limit=CONCURRENCY)
    async with aiohttp.ClientSession(base, connector=connector) as session:
        rec.start()
        await asyncio.gather(*(one(session, job) for job in ids))


async def azure_lro(base: str, ids: list[str], rec: Recorder, rate: float | None) -> None:
    """One azure-core AsyncLROPoller per job, on azure-core's AsyncLROBasePolling.

    azure-core documents LROBasePolling with ``lro_algorithms`` (the strategies that read a
    status) as the way to poll a service of one's own, rather than a hand-made polling
    method; here one strategy reads the job's own URL and calls "done" "Succeeded". The
    initial response is a GET of the job (its first poll), made on the pipeline as
    generated clients do. azure-core checks the status once more right after the initial
    response (no wait before the first status check, since azure-core 1.26), so a job's
    first two polls go back to back and the others 0.5 s apart: still 5 polls a job.
    """
    import asyncio
    from typing import Any

    import aiohttp
    from azure.core import AsyncPipelineClient
    from azure.core.pipeline.transport import AioHttpTransport
    from azure.core.polling import AsyncLROPoller
    from azure.core.polling.async_base_polling import AsyncLROBasePolling
    from azure.core.polling.base_polling import LongRunningOperation
    from azure.core.rest import HttpRequest

    class JobStatus(LongRunningOperation[Any, Any]):
        def __init__(self, url: str) -> None:
            self.url = url

        def can_poll(self, pipeline_response: Any) -> bool:
            return True

        def get_polling_url(self) -> str:
            return self.url

        def set_initial_status(self, pipeline_response: Any) -> str:
            return self.get_status(pipeline_response)

        def get_status(self, pipeline_response: Any) -> str:
            done = pipeline_response.http_response.json()["status"] == "done"
            return "Succeeded" if done else "InProgress"

        def get_final_get_url(self, pipeline_response: Any) -> None:
            return None

    async def one(client: AsyncPipelineClient[Any, Any], job: str) -> None:
        url = f"{base}/jobs/{job}"
        initial = await client._pipeline.run(HttpRequest("GET", url))
        method = AsyncLROBasePolling[Any, Any, Any](INTERVAL, [JobStatus(url)])
        result = lambda response: response.http_response.json()["result"]  # noqa: E731
        await AsyncLROPoller(client, initial, result, method).result()
        rec.done(job)

    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONCURRENCY))
    transport = AioHttpTransport(session=session)  # azure-core's default async transport
    async with AsyncPipelineClient[Any, Any](base, transport=transport) as client:
        rec.start()
        await asyncio.gather(*(one(client, job) for job in ids))


def google_polling_future(base: str, ids: list[str], rec: Recorder, rate: float | None) -> None:
    """A google-api-core PollingFuture per job, each ``result()`` on one of 100 threads.

    ``Retry(initial=0.5, maximum=0.5)`` would sleep ``uniform(0, 0.5)`` between polls
    (google-api-core's back-off is full jitter, with no way to turn it off), so a fixed
    interval takes a Retry whose sleeps are fixed, on google-api-core's own retry_target.
    """
    import functools
    import itertools
    from concurrent.futures import ThreadPoolExecutor

    import requests
    from google.api_core import retry
    from google.api_core.future import polling

    class FixedInterval(retry.Retry):
        def __call__(self, func: Callable[..., Any], on_error: Any = None) -> Any:
            def poll(*args: Any, **kwargs: Any) -> Any:
                target = functools.partial(func, *args, **kwargs)
                sleeps = itertools.repeat(INTERVAL)
                return retry.retry_target(target, self._predicate, sleeps, self._timeout)

            return poll

    class JobFuture(polling.PollingFuture):
        def __init__(self, session: requests.Session, url: str) -> None:
            fixed = FixedInterval(polling.POLLING_PREDICATE, timeout=None)
            super().__init__(polling=fixed)  # type: ignore[no-untyped-call]
            self.session, self.url = session, url

        def done(self, retry: Any = None) -> bool:
            if not self._result_set:
                body = self.session.get(self.url).json()
                if body["status"] == "done":
                    self.set_result(body["result"])  # type: ignore[no-untyped-call]
            return bool(self._result_set)

        def cancel(self) -> bool:
            return False

        def cancelled(self) -> bool:
            return False

    def wait(future: JobFuture, job: str) -> None:
        future.result()  # type: ignore[no-untyped-call]
        rec.done(job)

    session = requests.Session()
    session.mount("http://", requests.adapters.HTTPAdapter(pool_maxsize=CONCURRENCY))
    with ThreadPoolExecutor(CONCURRENCY) as pool:
        rec.start()
        futures = [JobFuture(session, f"{base}/jobs/{job}") for job in ids]
        list(pool.map(wait, futures, ids))


async def tenacity_httpx(base: str, ids: list[str], rec: Recorder, rate: float | None) -> None:
    """Per job, tenacity's AsyncRetrying until the status is done, on one httpx client.

    Every job's request waits in httpx's pool for one of the 100 connections; httpcore
    looks at every queued request at each pool event, so its CPU per request grows with
    the queue (thousands of jobs queue here).
    """
    import asyncio

    import httpx
    from tenacity import AsyncRetrying, retry_if_result, wait_fixed

    def running(body: Any) -> bool:
        return bool(body["status"] != "done")

    async def get(client: httpx.AsyncClient, job: str) -> Any:
        return (await client.get(f"/jobs/{job}")).json()

    async def one(client: httpx.AsyncClient, job: str) -> None:
        retrying = AsyncRetrying(wait=wait_fixed(INTERVAL), retry=retry_if_result(running))
        await retrying(get, client, job)
        rec.done(job)

    # Every connection kept alive (httpx keeps 20 by default), as the other contenders do.
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    # httpx's default 5 s timeout counts the wait for a pooled connection, which
    # thousands of jobs queued on 100 connections outlast.
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=120.0) as client:
        rec.start()
        await asyncio.gather(*(one(client, job) for job in ids))


Contender = Callable[[str, list[str], Recorder, "float | None"], Any]


@dataclass(frozen=True)
class Entry:
    """A contender: its function, the packages it needs, whether it can hold a rate."""

    function: Contender
    needs: tuple[str, ...]
    rate_setting: bool = False


CONTENDERS: dict[str, Entry] = {
    "asyncpoll, default settings": Entry(asyncpoll_default, ("asyncpoll",), True),
    'asyncpoll, transport="httpx"': Entry(asyncpoll_httpx, ("asyncpoll",), True),
    "hand-written aiohttp loops, gathered": Entry(aiohttp_loops, ("aiohttp",)),
    "azure-core AsyncLROPoller": Entry(azure_lro, ("azure.core", "aiohttp")),
    "google-api-core PollingFuture on 100 threads": Entry(
        google_polling_future, ("google.api_core", "requests")
    ),
    "tenacity AsyncRetrying per job over httpx": Entry(tenacity_httpx, ("tenacity", "httpx")),
}
SHORT = {  # names for the command line
    "asyncpoll-default": "asyncpoll, default settings",
    "asyncpoll-httpx": 'asyncpoll, transport="httpx"',
    "aiohttp": "hand-written aiohttp loops, gathered",
    "azure": "azure-core AsyncLROPoller",
    "google": "google-api-core PollingFuture on 100 threads",
    "tenacity": "tenacity AsyncRetrying per job over httpx",
}


def lines_of_code(function: Callable[..., Any]) -> int:
    """Non-blank lines of a function without comments, docstrings and ``rec.`` lines."""
    source = textwrap.dedent(inspect.getsource(function))
    skip: set[int] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                skip.update(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    count = 0
    for number, line in enumerate(source.splitlines(), start=1):
        text = line.strip()
        if text and not text.startswith(("#", "rec.")) and number not in skip:
            count += 1
    return count


# ----------------------------------------------------------------------------- one trial


def run_one(args: argparse.Namespace) -> None:
    """In the trial process: run one contender, print its figures as one JSON line."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    function = CONTENDERS[SHORT[args.one]].function
    ids = [f"{args.prefix}j{i}" for i in range(args.jobs[0])]
    rec = Recorder(len(ids))
    printed = threading.Lock()

    def report(error: str | None = None) -> None:
        with printed:  # once: the watchdog's report ends the process
            print(RESULT + json.dumps(rec.report(error)), flush=True)
            sys.stdout.flush()
            os._exit(0)

    def watchdog() -> None:
        if rec.started.wait(args.timeout) and not rec.finished.wait(args.timeout):
            report()
        if not rec.started.is_set():
            report("setup did not finish")

    threading.Thread(target=watchdog, daemon=True).start()
    try:
        if inspect.iscoroutinefunction(function):
            import asyncio

            asyncio.run(function(args.base, ids, rec, args.limit))
        else:
            function(args.base, ids, rec, args.limit)
    except Exception as exc:
        report(f"{type(exc).__name__}: {exc}")
    report(None if rec.finished.is_set() else "returned before every job was done")


# ----------------------------------------------------------------------------- the parent


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The job server in its own process, pinned to CPU 1, logging; it and its base URL."""
    command = [sys.executable, str(SERVER), "--port", "0", "--polls", str(POLLS_PER_JOB)]
    proc = subprocess.Popen(
        [*command, "--cpu", "1", "--log"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


@dataclass
class Trial:
    """One trial's figures, from the client's report and the server's log."""

    finished: bool
    error: str | None
    jobs: int
    done: int
    polls: int
    wall: float
    cpu: float
    server_cpu: float
    rss_kib: float
    delays: list[float] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)


def trial(
    name: str, jobs: int, base: str, prefix: str, timeout: float, rate: float | None
) -> Trial:
    """Run one contender in a fresh process; combine its report with the server's log."""
    short = next(k for k, v in SHORT.items() if v == name)
    command = [sys.executable, __file__, "--one", short, "--jobs", str(jobs), "--base", base]
    command += ["--prefix", prefix, "--timeout", str(timeout)]
    if rate is not None:
        command += ["--limit", str(rate)]
    get_json(f"{base}/log")  # start a new log
    cpu0 = get_json(f"{base}/stats")["cpu"]
    try:
        out = subprocess.run(
            command, capture_output=True, text=True, timeout=2 * timeout + 60, check=False
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith(RESULT)]
        report = json.loads(lines[-1][len(RESULT) :]) if lines else None
        problem = None if lines else f"no report (exit {out.returncode}): {out.stderr[-500:]}"
    except subprocess.TimeoutExpired:
        report, problem = None, "the trial process did not end"
    server_cpu = get_json(f"{base}/stats")["cpu"] - cpu0
    log = get_json(f"{base}/log")
    arrivals = sorted(log["arrivals"])
    if report is None:
        return Trial(False, problem, jobs, 0, len(arrivals), 0.0, 0.0, server_cpu, 0.0)
    served: dict[str, float] = log["done"]
    delays = sorted(t - served[job] for job, t in report["done_at"].items() if job in served)
    return Trial(
        finished=report["finished"],
        error=report["error"],
        jobs=jobs,
        done=len(report["done_at"]),
        polls=len(arrivals),
        wall=report["wall"],
        cpu=report["cpu"],
        server_cpu=server_cpu,
        rss_kib=report["rss_kib"],
        delays=delays,
        arrivals=arrivals,
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th quantile of sorted values (nearest rank); NaN when there are none."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, round(q * len(values)) - 1))]


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def status(trials: list[Trial], timeout: float) -> str:
    """'ok', or how the unfinished trials went."""
    notes = []
    for t in trials:
        if t.error and not t.finished:
            notes.append(f"error: {t.error}" if t.done or t.wall else f"failed: {t.error}")
        elif not t.finished:
            notes.append(f"did not finish: {t.done:,}/{t.jobs:,} jobs in {timeout:g} s")
    return "; ".join(notes) if notes else f"ok ({len(trials)}/{len(trials)})"


def table(jobs: int, results: dict[str, list[Trial]], timeout: float) -> None:
    """One markdown table: medians over the trials of each contender."""
    print(f"\n### {jobs:,} jobs\n")
    print(
        "| contender | polls/s | polls/job | CPU us/poll | client CPU % | server CPU % "
        "| KiB/job | delay p50 ms | delay p95 ms | lines | trials |"
    )
    print("|" + " --- |" * 11)
    for name, trials in results.items():
        ok = [t for t in trials if t.wall > 0 and t.polls > 0]
        rate = median([t.polls / t.wall for t in ok])
        per_job = median([t.polls / t.jobs for t in trials])
        cpu_us = median([t.cpu / t.polls * 1e6 for t in ok])
        client = median([t.cpu / t.wall * 100 for t in ok])
        server = median([t.server_cpu / t.wall * 100 for t in ok])
        kib = median([t.rss_kib / t.jobs for t in ok])
        p50 = median([percentile(t.delays, 0.50) * 1e3 for t in ok if t.delays])
        p95 = median([percentile(t.delays, 0.95) * 1e3 for t in ok if t.delays])
        lines = lines_of_code(CONTENDERS[name].function)
        print(
            f"| {name} | {rate:,.0f} | {per_job:.2f} | {cpu_us:,.0f} | {client:.0f} "
            f"| {server:.0f} | {kib:.1f} | {p50:,.0f} | {p95:,.0f} | {lines} "
            f"| {status(trials, timeout)} |",
            flush=True,
        )


def rate_row(name: str, t: Trial, rate: float, timeout: float) -> str:
    """One row of the rate table."""
    setting = "rate_limit=" if CONTENDERS[name].rate_setting else "no setting"
    times = t.arrivals
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    achieved = f"{(len(times) - 1) / span / rate:.1%}" if span > 0 else "-"
    cells = []
    for window in WINDOWS:
        bound = BURST + rate * window
        worst = worst_window(times, window) if times else 0
        cells.append(f"{worst}/{bound:g}{' OVER' if worst > bound + 1e-9 else ''}")
    client = f"{t.cpu / t.wall * 100:.0f}" if t.wall > 0 else "-"
    return (
        f"| {name} | {setting} | {t.polls:,} | {achieved} | {' | '.join(cells)} | {client} "
        f"| {status([t], timeout)} |"
    )


def main_parent(args: argparse.Namespace) -> None:
    names = [SHORT[n] for n in args.contenders]
    runnable = []
    for name in names:
        missing = [m for m in CONTENDERS[name].needs if importlib.util.find_spec(m) is None]
        if missing:
            print(f"skipping {name}: {', '.join(missing)} not installed")
        else:
            runnable.append(name)
    packages = ["asyncpoll", "httpx", "aiohttp", "azure-core", "google-api-core"]
    packages += ["requests", "tenacity"]
    versions = []
    for package in packages:
        try:
            versions.append(f"{package} {metadata.version(package)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{package} missing")
    print(f"python {sys.version.split()[0]}, {', '.join(versions)}")
    print(
        f"client on CPU 0, server on CPU 1; {POLLS_PER_JOB} polls per job, every "
        f"{INTERVAL:g} s, at most {CONCURRENCY} in flight; medians of {args.trials} trials, "
        f"each bounded at {args.timeout:g} s"
    )
    proc, base = start_server()
    try:
        for jobs in args.jobs:
            results: dict[str, list[Trial]] = {name: [] for name in runnable}
            for number in range(args.trials):
                for index, name in enumerate(runnable):
                    prefix = f"n{jobs}t{number}c{index}"
                    results[name].append(trial(name, jobs, base, prefix, args.timeout, None))
            table(jobs, results, args.timeout)
        if args.rate > 0:
            print(
                f"\n### holding {args.rate:g} requests/s (burst {BURST}), "
                f"{args.rate_jobs:,} jobs, one trial each\n"
            )
            heads = " | ".join(f"max in {w:g} s / bound" for w in WINDOWS)
            print(
                f"| contender | rate setting | polls | achieved | {heads} | client CPU % | trial |"
            )
            print("|" + " --- |" * (6 + len(WINDOWS)))
            for index, name in enumerate(runnable):
                limit = args.rate if CONTENDERS[name].rate_setting else None
                prefix = f"rate{index}"
                result = trial(name, args.rate_jobs, base, prefix, args.timeout, limit)
                print(rate_row(name, result, args.rate, args.timeout), flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--trials", type=int, default=3)
    parser.add_argument(
        "--contenders",
        nargs="+",
        choices=list(SHORT),
        default=list(SHORT),
        metavar="NAME",
        help=f"some of: {', '.join(SHORT)}",
    )
    parser.add_argument("--rate", type=float, default=200.0, help="0: no rate trial")
    parser.add_argument("--rate-jobs", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per trial")
    # The trial process's own arguments.
    parser.add_argument("--one", choices=list(SHORT), help=argparse.SUPPRESS)
    parser.add_argument("--base", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", default="", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=float, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        run_one(args)
    else:
        main_parent(args)


if __name__ == "__main__":
    main()
