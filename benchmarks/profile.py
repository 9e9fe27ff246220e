"""Where a poll's CPU goes: TaskPoller over HTTP under pyinstrument (a sampling profiler).

Runs the throughput benchmark's poller (``schedule=fixed(0)``, the loopback job server in
its own process) on one client kind, samples it with pyinstrument, and prints the functions
with the most time of their own, then the share of samples spent inside asyncpoll's own
code, the HTTP client, and the event loop. Needs ``pip install pyinstrument``.

    python benchmarks/profile.py [--kind aiohttp] [--jobs 6000] [--concurrency 100]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

import throughput  # the benchmark next to this script

GROUPS = (
    ("asyncpoll", "/asyncpoll/"),
    ("aiohttp, yarl, multidict", ("/aiohttp/", "/yarl/", "/multidict/")),
    ("httpx, httpcore, h11", ("/httpx/", "/httpcore/", "/h11/", "/httpx_aiohttp/")),
    ("anyio", "/anyio/"),
    ("asyncio", "/asyncio/"),
    ("json", "/json/"),
)


def self_times(frame: Any, totals: Counter[tuple[str, str]], parent: Any = None) -> None:
    """Add each function's own time (its time minus its callees') to ``totals``.

    pyinstrument files a function's own time under a synthetic "[self]" child (or a
    "<built-in>" one for C functions it cannot see into); it counts as the caller's.
    """
    owner = parent if frame.function in ("[self]",) and parent is not None else frame
    own = frame.time - sum(child.time for child in frame.children)
    key = (owner.function, owner.file_path or "")
    totals[key] += own
    for child in frame.children:
        self_times(child, totals, frame)


async def profiled(kind: str, jobs: int, concurrency: int) -> Any:
    from pyinstrument import Profiler

    proc, base = throughput.start_server()
    try:
        async with throughput.make_client(kind, base, concurrency) as client:
            await throughput.measure(throughput.raw_loop, client, 200, concurrency)  # warm up
            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            polls = await throughput.poller_run(client, throughput.job_ids(jobs), concurrency)
            profiler.stop()
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return profiler, polls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kind",
        default="aiohttp",
        choices=["httpx", "httpx-poller", "httpx-aiohttp", "aiohttp", "aiohttp-poller"],
    )
    parser.add_argument("--jobs", type=int, default=6000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    profiler, polls = asyncio.run(profiled(args.kind, args.jobs, args.concurrency))
    session = profiler.last_session
    root = session.root_frame()
    totals: Counter[tuple[str, str]] = Counter()
    self_times(root, totals)
    whole = sum(totals.values())
    print(
        f"{args.kind}, {polls} polls, concurrency {args.concurrency}: "
        f"{session.cpu_time / polls * 1e6:.0f} µs of CPU per poll (profiled)"
    )
    print(f"\n{'own time':>9}  function")
    for (function, path), seconds in totals.most_common(args.top):
        short = "/".join(path.split("/")[-2:])
        print(f"{seconds / whole:>8.1%}  {function}  {short}")
    groups: Counter[str] = Counter()
    for (_, path), seconds in totals.items():
        for name, marks in GROUPS:
            if any(mark in path for mark in ((marks,) if isinstance(marks, str) else marks)):
                groups[name] += seconds
                break
        else:
            groups["other (sockets, the interpreter, the benchmark)"] += seconds
    print(f"\n{'share':>8}  code")
    for name, seconds in groups.most_common():
        print(f"{seconds / whole:>8.1%}  {name}")


if __name__ == "__main__":
    main()
