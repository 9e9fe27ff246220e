"""The rate limiter under demand above its limit, in real time on asyncio.

Many tasks acquire slots as fast as they are granted for ``--seconds``; every grant
time is recorded, as the limiter's token bucket grants it (a waiter granted in a batch
resumes a little later; its request goes then). For windows of several lengths ``t``
the largest number of grants in any window is compared with ``burst + rate * t`` (it
must never exceed it), and the achieved rate with the allowed one; CPU is the
process's CPU time over the run's length.

    python benchmarks/limiter.py [--rates 200 1000 5000 20000] [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time

import asyncpoll

WINDOWS = (0.01, 0.1, 1.0)


class LoggedBucket(asyncpoll.TokenBucket):
    """A token bucket that records the time of every grant."""

    __slots__ = ("times",)

    def __init__(self, limit: asyncpoll.RateLimit) -> None:
        super().__init__(limit)
        self.times: list[float] = []

    def try_take(self, now: float) -> bool:
        taken = super().try_take(now)
        if taken:
            self.times.append(now)
        return taken

    def take_up_to(self, now: float, most: int) -> int:
        count = super().take_up_to(now, most)
        self.times.extend([now] * count)
        return count


def worst_window(times: list[float], t: float) -> int:
    """The most grants in any window of ``t`` seconds (two pointers over sorted times)."""
    best = start = 0
    for end, at in enumerate(times):
        while at - times[start] > t:
            start += 1
        best = max(best, end - start + 1)
    return best


async def run(
    rate: float, burst: int, seconds: float, tasks: int
) -> tuple[float, float, list[str]]:
    clock = asyncpoll.AnyioClock().bound()
    limit = asyncpoll.RateLimit(rate, burst=burst)
    bucket = LoggedBucket(limit)
    limiter = asyncpoll.Limiter(limit, clock, bucket=bucket)
    times = bucket.times
    stop = clock.now() + seconds

    async def worker() -> None:
        while clock.now() < stop:
            await limiter.acquire()

    start = clock.now()
    cpu = time.process_time()
    await asyncio.gather(*(worker() for _ in range(tasks)))
    cpu = (time.process_time() - cpu) / (clock.now() - start)
    times = [t for t in times if t < stop]
    times.sort()
    achieved = len(times) / (stop - start) / rate
    cells = []
    for t in WINDOWS:
        bound = burst + rate * t
        worst = worst_window(times, t)
        cells.append(f"{worst:>6}/{bound:<8.0f}{'OVER' if worst > bound + 1e-9 else '':<4}")
    return achieved, cpu, cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[200, 1000, 5000, 20000])
    parser.add_argument("--burst", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--tasks", type=int, default=64)
    args = parser.parse_args()
    print(
        f"python {sys.version.split()[0]}, asyncio, burst={args.burst}, {args.tasks} tasks, "
        f"{args.seconds:g} s per rate"
    )
    heads = "  ".join(f"max in {t:g} s / bound".ljust(18) for t in WINDOWS)
    print(f"{'rate/s':>8}  {'achieved':>8}  {'CPU':>5}  {heads}")
    for rate in args.rates:
        achieved, cpu, cells = asyncio.run(run(rate, args.burst, args.seconds, args.tasks))
        print(f"{rate:>8.0f}  {achieved:>8.1%}  {cpu:>5.0%}  " + "  ".join(cells), flush=True)


if __name__ == "__main__":
    main()
