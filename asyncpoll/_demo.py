"""``asyncpoll demo``: poll a few hundred jobs on a fake job API served on loopback.

The fake API (``asyncpoll.testing.FakeJobAPI``) runs with uvicorn on a free loopback
port, in a thread of its own; the demo talks to it over real sockets, as it would to any
job API. Its jobs wait a little, run with progress, and most succeed; a few fail, a few
hang (and time out), and a few answers are 5xx errors or dropped connections, as real APIs
give. One ``TaskPoller`` submits every job and watches them all behind one rate limit,
with a live display; the demo ends with a table of what happened.

Needs the ``cli`` extra (``asyncpoll[testing,progress]``): imported when the command runs.
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any, TextIO

from ._poller import TaskPoller
from ._ratelimit import RateLimit
from ._schedule import backoff
from ._status import JobState

__all__ = ["DemoResult", "run_demo"]

#: Each job's deadline, in seconds after its create request was answered: far beyond
#: the jobs' durations, so a job times out only when the demo cannot keep up.
DEADLINE = 10.0


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` (0 to 1) percentile of ``values``, by the nearest rank."""
    ordered = sorted(values)
    rank = max(1, round(share * len(ordered) + 0.5 - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


class DemoResult:
    """What one demo run measured (for tests and the summary table)."""

    def __init__(self) -> None:
        self.counts: Counter[JobState] = Counter()
        self.requests = 0
        self.creates = 0
        self.polls = 0
        self.faults: Counter[str] = Counter()
        self.delays: list[float] = []
        self.elapsed = 0.0
        self.jobs = 0
        self.url = ""

    def table(self) -> str:
        """The summary table, as printed at the end of the demo."""
        jobs = self.jobs
        lines = [
            "",
            f"{'succeeded':<22}{self.counts[JobState.SUCCEEDED]:>7}",
            f"{'failed':<22}{self.counts[JobState.FAILED]:>7}",
            f"{'timed out':<22}{self.counts[JobState.TIMED_OUT]:>7}",
        ]
        for state in (JobState.CANCELLED, JobState.ERRORED):
            if self.counts[state]:
                lines.append(f"{state.value.replace('_', ' '):<22}{self.counts[state]:>7}")
        lines += [
            f"{'requests sent':<22}{self.requests:>7}   "
            f"({self.creates} creates, {self.polls} status polls)",
            f"{'requests per job':<22}{self.requests / jobs if jobs else 0:>7.1f}",
            f"{'5xx and drops retried':<22}{self.faults['error'] + self.faults['drop']:>7}",
        ]
        if self.delays:
            lines.append(
                f"{'finish -> noticed':<22}{'p50':>7} {percentile(self.delays, 0.5):.3f} s"
                f"   p95 {percentile(self.delays, 0.95):.3f} s   "
                f"(over the {len(self.delays)} jobs whose end it read)"
            )
        lines.append(f"{'elapsed':<22}{self.elapsed:>7.1f} s")
        return "\n".join(lines) + "\n"


async def run_demo(
    *,
    jobs: int = 300,
    shape: str = "status",
    rate: float = 500.0,
    seed: int = 7,
    progress: bool = True,
    out: TextIO | None = None,
) -> DemoResult:
    """Serve a fake job API on loopback, submit ``jobs`` jobs and poll them all.

    Args:
        jobs: how many jobs to submit.
        shape: the fake API's shape (``asyncpoll.testing.SHAPES``).
        rate: the poller's rate limit, in requests per second.
        seed: seeds the fake API's jobs and faults.
        progress: draw a live display on stderr (``TaskPoller(progress=True)``: needs
            tqdm).
        out: where the header and the summary table go (default: stdout).
    """
    from .testing import FakeJobAPI, serve  # the testing extra

    out = out if out is not None else sys.stdout
    api = FakeJobAPI(
        shape,
        pending=(0.0, 0.3),
        duration=(0.2, 2.0),
        failure_rate=0.05,
        error_rate=0.02,
        drop_rate=0.005,
        seed=seed,
        clock=time.monotonic,  # the served API's clock, and the one the demo reads
    )
    result = DemoResult()
    result.jobs = jobs
    noticed: dict[str, float] = {}

    def on_done(handle: Any) -> None:
        # Only a job whose end the poller read: a timed-out or cancelled one was not
        # noticed, it was given up on.
        if handle.state in (JobState.SUCCEEDED, JobState.FAILED):
            noticed.setdefault(handle.job_id, time.monotonic())

    async with serve(api) as url:
        result.url = url
        started = time.monotonic()
        poller = TaskPoller(
            base_url=url,
            rate_limit=RateLimit(rate, burst=max(1, int(rate) // 10)),
            max_concurrency=32,
            schedule=backoff(initial=0.25, factor=1.5, max=0.75, jitter=0.1),
            retry_schedule=backoff(initial=0.1, factor=2.0, max=1.0, jitter=0.1),
            timeout=DEADLINE,
            max_errors=10,
            on_done=on_done,
            progress=progress,
            **api.poller_options(),
        )
        async with poller:
            out.write(
                f"asyncpoll demo: {jobs} jobs on a fake job API (shape {shape!r}) at {url}, "
                f"rate limit {rate:g} requests/s, one TaskPoller on {poller.transport}\n"
            )
            out.flush()
            if shape in ("github", "google", "argo", "jenkins"):
                # A workflow dispatch answers 204 with no run id, Google and Argo name their
                # jobs in fields submit() does not read, and a Jenkins trigger answers with
                # a queue item: make the jobs directly (Jenkins builds once they run, since
                # a queued build has no page yet).
                pending = 0.0 if shape == "jenkins" else None
                handles = [poller.add(api.add_job(pending=pending).id) for _ in range(jobs)]
            else:
                handles = await poller.submit_many(
                    api.shape.create_url,
                    [{"n": n} for n in range(jobs)],
                    return_exceptions=True,
                )
        result.elapsed = time.monotonic() - started
    for handle in handles:
        state = getattr(handle, "state", JobState.ERRORED)  # a SubmitError in its place
        result.counts[state] += 1
    log = api.requests
    result.requests = len(log)
    result.creates = sum(1 for r in log if r.method == "POST")
    result.polls = sum(1 for r in log if r.method == "GET")
    result.faults = Counter(r.fault for r in log if r.fault)
    for job_id, job in api.jobs.items():
        if job_id in noticed and job.finished_at <= noticed[job_id]:
            result.delays.append(noticed[job_id] - job.finished_at)
    out.write(result.table())
    out.flush()
    return result
