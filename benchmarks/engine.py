"""The engine alone: CPU per poll and memory per job, with an in-process ``check=``.

No HTTP: each job's status comes from a ``check=`` coroutine that answers RUNNING
until the job's third poll, so the figures are the engine's own cost (scheduler,
heap, workers, handle resolution). Prints a table; asserts nothing.

    python benchmarks/engine.py [--jobs 10000 20000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
import tracemalloc
from importlib import metadata

import anyio

import asyncpoll
from asyncpoll import JobState, Status

POLLS_PER_JOB = 3
RUNNING = Status(JobState.RUNNING)
DONE = Status(JobState.SUCCEEDED, result=None)


async def check(handle: asyncpoll.JobHandle) -> Status:
    return DONE if handle.attempts >= POLLS_PER_JOB else RUNNING


async def run_once(jobs: int, measure_memory: bool) -> float:
    """Poll ``jobs`` jobs to completion.

    Returns CPU microseconds per poll, or (with ``measure_memory``, a separate run,
    since tracing allocations slows everything) bytes allocated per job in flight.
    """
    gc.collect()
    if measure_memory:
        tracemalloc.start()
    cpu0 = time.process_time()
    async with asyncpoll.TaskPoller(schedule=asyncpoll.fixed(0.001), max_concurrency=64) as p:
        for i in range(jobs):
            p.add(str(i), check=check)
        if measure_memory:
            in_flight, _ = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    cpu = time.process_time() - cpu0
    polls = p.statistics().requests
    assert polls == jobs * POLLS_PER_JOB, polls
    return in_flight / jobs if measure_memory else cpu / polls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    versions = ", ".join(f"{name} {metadata.version(name)}" for name in ("anyio", "trio"))
    print(f"python {sys.version.split()[0]}, {versions}")
    print(f"{'backend':<8} {'jobs':>8} {'CPU us/poll (median)':>22} {'bytes/job in flight':>20}")
    for backend in ("asyncio", "trio"):
        for jobs in args.jobs:
            cpu = statistics.median(
                anyio.run(run_once, jobs, False, backend=backend) for _ in range(args.repeat)
            )
            mem = anyio.run(run_once, jobs, True, backend=backend)
            print(f"{backend:<8} {jobs:>8} {cpu:>22.1f} {mem:>20.0f}")


if __name__ == "__main__":
    main()
