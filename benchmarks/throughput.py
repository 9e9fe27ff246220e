"""Polls per second through TaskPoller against a hand-written loop, on one HTTP client.

The job server (benchmarks/server.py) runs in its own process pinned to CPU 1; this
process is pinned to CPU 0. For each client kind and concurrency, runs alternate
between a raw loop (C tasks doing GET, parse, requeue on the same client) and a
TaskPoller doing the same polls (``schedule=fixed(0)``, ``max_concurrency=C``), and
report medians: polls/s, client CPU microseconds per poll, and the ratio poller/raw.
Client kinds: ``httpx`` (httpx's own transport, as a caller's client has it),
``httpx-poller`` (httpx's own transport as a poller makes it for itself, when given no
client), ``httpx-aiohttp`` (an httpx client over the httpx-aiohttp transport) and
``aiohttp`` (an ``aiohttp.ClientSession``: the raw loop uses it directly, the poller takes
it as ``client=`` and polls on the native path) and ``aiohttp-poller`` (the session a
poller makes for itself on asyncio, its default: both loops on it).
Then the naive pattern people write today, one ``while`` loop with a sleep per job, all
gathered, against TaskPoller with the same interval: polls/s and peak memory.

    python benchmarks/throughput.py [--jobs 1000] [--repeat 3] [--concurrency 50 100 500]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

import asyncpoll

SERVER = Path(__file__).with_name("server.py")
POLLS_PER_JOB = 3
_run = itertools.count()


def start_server() -> tuple[subprocess.Popen[str], str]:
    """The job server in its own process, pinned to CPU 1; returns it and its base URL."""
    proc = subprocess.Popen(
        [sys.executable, str(SERVER), "--port", "0", "--polls", str(POLLS_PER_JOB), "--cpu", "1"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}"


def make_client(kind: str, base: str, concurrency: int) -> Any:
    """A client of the given kind, keep-alive connections equal to the limit."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    # Generous timeouts: 10,000 naive loops queue for 100 connections for a long while.
    timeout = httpx.Timeout(120.0)
    if kind == "httpx":
        return httpx.AsyncClient(base_url=base, limits=limits, timeout=timeout)
    if kind == "httpx-poller":
        # httpx's own transport as a TaskPoller makes it for itself (no client= given):
        # its pool hands an idle connection to one request at a time.
        from asyncpoll._http import _httpx_own

        transport = _httpx_own(limits)
        return httpx.AsyncClient(base_url=base, transport=transport, timeout=timeout)
    if kind == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        return httpx.AsyncClient(
            base_url=base, transport=AiohttpTransport(limits=limits), timeout=timeout
        )
    if kind == "aiohttp-poller":
        # The session a TaskPoller makes for itself on asyncio (its default): each request
        # sent once by the session itself, so no per-request middleware.
        import aiohttp

        from asyncpoll._aiohttp import careful_session

        return careful_session(
            {"limit": concurrency, "limit_per_host": 0},
            base_url=base,
            timeout=aiohttp.ClientTimeout(total=120.0),
            auto_decompress=False,
        )
    if kind == "aiohttp":
        import aiohttp

        return aiohttp.ClientSession(
            base_url=base,
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=120.0),
        )
    raise ValueError(kind)


async def get_json(client: Any, path: str) -> Any:
    """GET ``path`` and parse its JSON body, on either client library."""
    if isinstance(client, httpx.AsyncClient):
        return (await client.get(path)).json()
    async with client.get(path) as response:
        return json.loads(await response.read())


def job_ids(n: int) -> list[str]:
    """Fresh ids: the server counts polls per id."""
    run = next(_run)
    return [f"r{run}j{i}" for i in range(n)]


async def raw_loop(client: Any, ids: list[str], concurrency: int) -> int:
    """The hand-written baseline: C tasks, GET, parse, requeue until done."""
    queue = collections.deque(ids)
    polls = 0

    async def httpx_worker() -> None:
        nonlocal polls
        while queue:
            job = queue.popleft()
            response = await client.get(f"/jobs/{job}")
            polls += 1
            if response.json()["status"] != "done":
                queue.append(job)

    async def aiohttp_worker() -> None:
        nonlocal polls
        while queue:
            job = queue.popleft()
            async with client.get(f"/jobs/{job}") as response:
                body = await response.read()
            polls += 1
            if json.loads(body)["status"] != "done":
                queue.append(job)

    worker = httpx_worker if isinstance(client, httpx.AsyncClient) else aiohttp_worker

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return polls


async def poller_run(client: Any, ids: list[str], concurrency: int) -> int:
    """The same polls through TaskPoller."""
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=client,
        schedule=asyncpoll.fixed(0),
        max_concurrency=concurrency,
        timeout=None,
    ) as poller:
        for job in ids:
            poller.add(job)
    return poller.statistics().requests


async def measure(
    run: Callable[[Any, list[str], int], Awaitable[int]],
    client: Any,
    jobs: int,
    concurrency: int,
) -> tuple[float, float]:
    """(polls/s, client CPU us per poll) of one run."""
    ids = job_ids(jobs)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    polls = await run(client, ids, concurrency)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    assert polls == jobs * POLLS_PER_JOB, polls
    return polls / wall, cpu / polls * 1e6


async def server_cpu(client: Any) -> tuple[float, int]:
    stats = await get_json(client, "/stats")
    return stats["cpu"], stats["requests"]


async def compare(kind: str, base: str, args: argparse.Namespace) -> None:
    for concurrency in args.concurrency:
        jobs = (
            args.jobs
            * {
                "httpx": 1,
                "httpx-poller": 1,
                "httpx-aiohttp": 3,
                "aiohttp": 6,
                "aiohttp-poller": 6,
            }[kind]
        )
        async with make_client(kind, base, concurrency) as client:
            await measure(raw_loop, client, 200, concurrency)  # warm up connections
            s_cpu0, s_req0 = await server_cpu(client)
            raw, pol = [], []
            for _ in range(args.repeat):
                raw.append(await measure(raw_loop, client, jobs, concurrency))
                pol.append(await measure(poller_run, client, jobs, concurrency))
            s_cpu1, s_req1 = await server_cpu(client)
        raw_rate = statistics.median(r[0] for r in raw)
        pol_rate = statistics.median(p[0] for p in pol)
        raw_cpu = statistics.median(r[1] for r in raw)
        pol_cpu = statistics.median(p[1] for p in pol)
        server_us = (s_cpu1 - s_cpu0) / max(1, s_req1 - s_req0) * 1e6
        print(
            f"{kind:<14} {concurrency:>5} {raw_rate:>9.0f} {pol_rate:>9.0f} "
            f"{pol_rate / raw_rate:>6.2f} {raw_cpu:>9.0f} {pol_cpu:>9.0f} {server_us:>9.1f}",
            flush=True,
        )


async def naive(client: Any, ids: list[str], interval: float) -> int:
    """What people write today: one loop with a sleep per job, all gathered."""
    polls = 0

    async def one(job: str) -> None:
        nonlocal polls
        while True:
            body = await get_json(client, f"/jobs/{job}")
            polls += 1
            if body["status"] == "done":
                return
            await asyncio.sleep(interval)

    await asyncio.gather(*(one(job) for job in ids))
    return polls


async def poller_interval(client: Any, ids: list[str], interval: float) -> int:
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=client,
        schedule=asyncpoll.fixed(interval),
        max_concurrency=100,
        timeout=None,
    ) as poller:
        for job in ids:
            poller.add(job)
    return poller.statistics().requests


async def against_naive(kind: str, base: str, args: argparse.Namespace) -> None:
    interval = args.interval
    for jobs in args.naive_jobs:
        rows = {}
        for name, run in (("naive", naive), ("poller", poller_interval)):
            async with make_client(kind, base, 100) as client:
                ids = job_ids(jobs)
                wall0 = time.perf_counter()
                polls = await run(client, ids, interval)
                rate = polls / (time.perf_counter() - wall0)
                tracemalloc.start()
                await run(client, job_ids(jobs), interval)
                _, peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            rows[name] = (rate, peak)
        (n_rate, n_mem), (p_rate, p_mem) = rows["naive"], rows["poller"]
        print(
            f"{kind:<14} {jobs:>6} {n_rate:>9.0f} {p_rate:>9.0f} {n_mem / 2**20:>9.1f} "
            f"{p_mem / 2**20:>9.1f} {p_mem / n_mem:>6.2f}",
            flush=True,
        )


async def main_async(args: argparse.Namespace) -> None:
    proc, base = start_server()
    try:
        print("client kind      conc    raw/s  poller/s  ratio  raw us/p  pol us/p  server us/req")
        for kind in args.kinds:
            await compare(kind, base, args)
        print(
            f"\nnaive gathered loops vs TaskPoller, fixed({args.interval:g}) interval, "
            f"{POLLS_PER_JOB} polls per job"
        )
        print("client kind      jobs  naive/s  poller/s  naive MiB  poller MiB  ratio")
        for kind in args.naive_kinds:
            await against_naive(kind, base, args)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, default=1000, help="jobs per run (x3 for httpx-aiohttp, x6 for aiohttp)"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[50, 100, 500])
    parser.add_argument("--kinds", nargs="*", default=["httpx", "httpx-aiohttp", "aiohttp"])
    parser.add_argument("--naive-jobs", type=int, nargs="*", default=[1000, 10000])
    parser.add_argument("--naive-kinds", nargs="*", default=["httpx-aiohttp", "aiohttp"])
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("httpx", "httpx-aiohttp", "aiohttp")
    )
    print(f"python {sys.version.split()[0]}, {versions}; client on CPU 0, server on CPU 1")
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
