"""Many jobs in flight, no HTTP: the engine's own cost at 100,000 and 1,000,000 jobs.

Each job's status comes from an in-process ``check=`` that answers RUNNING until the
job's last poll. Polls after the first are spread by a jittered schedule, so the CPU is
not saturated; lateness is how long after its due time each of those polls ran. Jobs are
added in chunks of 1,000 with a 1 ms pause between chunks, so polls due while adding run
on time. Each size runs in a fresh process, so its peak RSS is its own. Prints a table.

    python benchmarks/scale.py [--jobs 100000 1000000] [--backend asyncio]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import anyio

import asyncpoll
from asyncpoll import JobState, Status

SPREAD = 10_000  # distinct start offsets within one interval
CHUNK = 1_000  # jobs added between two yields to the event loop
RUNNING = Status(JobState.RUNNING)
DONE = Status(JobState.SUCCEEDED)


async def run(jobs: int, polls: int, interval: float) -> dict[str, float]:
    """Poll ``jobs`` jobs ``polls`` times each; figures of the run."""
    late: list[float] = []
    last: dict[str, float] = {}
    clock = anyio.current_time

    async def check(handle: asyncpoll.JobHandle) -> Status:
        now = clock()
        previous = last.get(handle.job_id)
        if previous is not None:
            late.append(now - (previous + interval))  # positive: ran after its due time
        last[handle.job_id] = now
        return DONE if handle.attempts >= polls else RUNNING

    # jitter=0 keeps each poll exactly `interval` after the previous one (lateness is
    # exact); the first polls are spread evenly over one interval by staggered first
    # delays (SPREAD of them, shared by many jobs each).
    schedules = [asyncpoll.fixed(interval, first=interval * i / SPREAD) for i in range(SPREAD)]
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    cpu0 = time.process_time()
    async with asyncpoll.TaskPoller(max_concurrency=64, timeout=None) as poller:
        t0 = time.perf_counter()
        for start in range(0, jobs, CHUNK):
            for i in range(start, min(jobs, start + CHUNK)):
                poller.add(str(i), check=check, schedule=schedules[i % SPREAD])
            # Let due polls run between chunks, as a service adding jobs would: adding
            # a million jobs in one go blocks the loop for seconds, and every job due
            # meanwhile would fire in one burst, and again each interval after.
            await anyio.sleep(0.001)
        added = time.perf_counter() - t0
        rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        t1 = time.perf_counter()
    drained = time.perf_counter() - t1
    cpu = time.process_time() - cpu0
    requests = poller.statistics().requests
    assert requests == jobs * polls, requests
    late.sort()
    return {
        "jobs": jobs,
        "cpu_us_per_poll": cpu / requests * 1e6,
        "kib_per_job": (rss1 - rss0) / jobs,  # ru_maxrss is in KiB on Linux
        "late_p50_ms": statistics.median(late) * 1000,
        "late_p99_ms": late[int(len(late) * 0.99)] * 1000,
        "add_s": added,
        "drain_s": drained,
    }


def child(args: argparse.Namespace) -> None:
    polls = args.polls
    interval = max(10.0, args.jobs[0] / args.rate)  # demand = jobs / interval polls/s
    figures = anyio.run(run, args.jobs[0], polls, interval, backend=args.backend)
    figures["interval"] = interval
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--polls", type=int, default=3, help="polls per job")
    parser.add_argument("--rate", type=float, default=10_000.0, help="polls/s demanded")
    parser.add_argument("--backend", default="asyncio", choices=["asyncio", "trio"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    print(
        f"python {sys.version.split()[0]}, {args.backend}, {args.polls} polls per job, "
        f"demand {args.rate:g} polls/s, max_concurrency=64"
    )
    print("      jobs  interval s  CPU us/poll  KiB/job  late p50 ms  late p99 ms  add s  drain s")
    for jobs in args.jobs:
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--child",
                "--jobs",
                str(jobs),
                "--polls",
                str(args.polls),
                "--rate",
                str(args.rate),
                "--backend",
                args.backend,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        f = json.loads(out.strip().splitlines()[-1])
        print(
            f"{jobs:>10} {f['interval']:>11.0f} {f['cpu_us_per_poll']:>12.1f} "
            f"{f['kib_per_job']:>8.2f} {f['late_p50_ms']:>12.2f} {f['late_p99_ms']:>12.2f} "
            f"{f['add_s']:>6.1f} {f['drain_s']:>8.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
