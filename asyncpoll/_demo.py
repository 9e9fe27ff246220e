"""``python -m asyncpoll``: poll a few hundred jobs against an in-process fake job API.

The fake API runs inside this process (no server, no network): each job is pending for
a while, then running with progress, then done or failed; a few answers are 500s or
429s with ``Retry-After``, as real APIs give. The poller watches every job at once
behind one rate limit and the demo prints what happened.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TextIO

import anyio

from ._http import mock_client
from ._poller import TaskPoller
from ._ratelimit import RateLimit
from ._schedule import backoff
from ._status import JobState

__all__ = ["FakeJobAPI", "main", "run"]


class FakeJobAPI:
    """An in-process job API: ``GET /jobs/{id}`` answers with the job's status JSON.

    Each job has a start delay and a duration drawn from ``rng``; a share of jobs fail,
    and a share of answers are transient 500s or 429s. Times are event-loop seconds.
    """

    def __init__(
        self,
        job_ids: Sequence[str],
        *,
        rng: random.Random,
        now: float,
        fail_share: float = 0.05,
        error_share: float = 0.02,
        throttle_share: float = 0.01,
    ) -> None:
        self.rng = rng
        self.error_share = error_share
        self.throttle_share = throttle_share
        self.jobs: dict[str, tuple[float, float, bool]] = {}
        for job_id in job_ids:
            queued = rng.uniform(0.2, 1.0)
            duration = rng.uniform(0.5, 3.0)
            self.jobs[job_id] = (now + queued, now + queued + duration, rng.random() < fail_share)
        self.requests = 0
        self.answers: Counter[int] = Counter()

    def __call__(self, method: str, url: str) -> tuple[int, Mapping[str, str], bytes]:
        """Answer one request: ``(status_code, headers, body)``."""
        self.requests += 1
        status, headers, body = self._answer(method, url)
        self.answers[status] += 1
        return status, headers, json.dumps(body).encode()

    def _answer(self, method: str, url: str) -> tuple[int, dict[str, str], object]:
        job_id = url.rstrip("/").rsplit("/", 1)[-1]
        if method != "GET" or job_id not in self.jobs:
            return 404, {}, {"error": {"message": f"no job {job_id}"}}
        roll = self.rng.random()
        if roll < self.throttle_share:
            return 429, {"Retry-After": "1"}, {"error": {"message": "slow down"}}
        if roll < self.throttle_share + self.error_share:
            return 500, {}, {"error": {"message": "internal error"}}
        starts, ends, fails = self.jobs[job_id]
        now = anyio.current_time()
        if now < starts:
            return 200, {}, {"id": job_id, "status": "queued"}
        if now < ends:
            progress = round(100 * (now - starts) / (ends - starts))
            return 200, {}, {"id": job_id, "status": "processing", "progress": progress}
        if fails:
            return 200, {}, {"id": job_id, "status": "failed", "error": "input was unreadable"}
        pages = int((ends - starts) * 10) + 1
        return 200, {}, {"id": job_id, "status": "completed", "result": {"pages": pages}}


async def run(jobs: int = 300, rate: float = 250.0, seed: int = 7, out: TextIO = sys.stdout) -> int:
    """Run the demo; returns the number of jobs that did not succeed."""
    rng = random.Random(seed)
    job_ids = [f"job-{i:04d}" for i in range(jobs)]
    api = FakeJobAPI(job_ids, rng=rng, now=anyio.current_time())
    client = mock_client(api, base_url="https://jobs.example")
    started = anyio.current_time()
    out.write(
        f"asyncpoll demo: {jobs} jobs on an in-process fake job API, "
        f"rate limit {rate:g} requests/s, one shared HTTP client\n\n"
    )
    async with (
        client,
        TaskPoller(
            "/jobs/{job_id}",
            client=client,
            rate_limit=RateLimit(rate, burst=10),
            max_concurrency=32,
            schedule=backoff(initial=0.25, factor=1.5, max=1.0, jitter=0.1),
            retry_schedule=backoff(initial=0.25, factor=2.0, max=2.0, jitter=0.1),
            timeout=30.0,
        ) as poller,
    ):
        handles = [poller.add(job_id) for job_id in job_ids]
        next_report = started
        finished = 0
        async for _ in poller.as_completed():
            finished += 1
            now = anyio.current_time()
            if now >= next_report or finished == jobs:
                _report(out, now - started, poller.statistics().active, finished)
                next_report = now + 0.5
        stats = poller.statistics()
    elapsed = anyio.current_time() - started
    by_state = Counter(h.state for h in handles)
    out.write("\nwhat happened\n")
    for state in JobState:
        if by_state[state]:
            out.write(f"  {state.value:<10} {by_state[state]:>5}\n")
    out.write(
        f"\n  status requests   {stats.requests:>6}  ({stats.requests / jobs:.1f} per job)\n"
        f"  429s waited out   {stats.throttled:>6}\n"
        f"  5xx retried       {stats.transient_errors:>6}\n"
        f"  elapsed           {elapsed:>6.1f} s  ({stats.requests / elapsed:.0f} requests/s; "
        f"limit {rate:g}, lowered for a while after each 429)\n"
    )
    failed = [h for h in handles if h.state is not JobState.SUCCEEDED]
    if failed:
        out.write("\nfor example\n")
        for handle in failed[:3]:
            out.write(f"  {handle.exception()}\n")
    ok = next(h for h in handles if h.state is JobState.SUCCEEDED)
    out.write(f"  {ok.job_id} -> {ok.result()!r} after {ok.attempts} polls\n")
    return len(failed)


def _report(out: TextIO, elapsed: float, active: int, finished: int) -> None:
    out.write(f"  {elapsed:5.1f} s   in flight {active:>4}   finished {finished:>4}\n")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m asyncpoll``."""
    parser = argparse.ArgumentParser(
        prog="python -m asyncpoll",
        description="Poll a few hundred jobs against an in-process fake job API.",
    )
    parser.add_argument("--jobs", type=int, default=300, help="jobs to submit (default 300)")
    parser.add_argument(
        "--rate", type=float, default=250.0, help="rate limit, requests/s (default 250)"
    )
    parser.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.rate <= 0:
        parser.error("--rate must be > 0")
    anyio.run(run, args.jobs, args.rate, args.seed)
    return 0
