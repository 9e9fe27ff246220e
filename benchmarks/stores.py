"""What a store costs, and what a fleet of workers on one Redis polls.

``cost``: the engine with an in-process ``check=`` (as engine.py: no HTTP, each job
RUNNING until its third poll), once without a store and once on each store: CPU
microseconds per poll, and microseconds per ``add()`` (which writes the job before it
returns), medians of ``--repeat`` runs, alternated.

``fleet``: 1, 2 and 3 worker processes (fresh ones per trial) on one Redis, polling the
loopback job server (server.py, in its own process) over HTTP: jobs resolved per second
from the first worker's start until no job is live, and the requests each worker sent.
Worker 0 adds the jobs first (each is stored as it is added); the others claim at once.

A redis-server is started on a free loopback port when ``redis-server`` is on PATH
(no persistence), unless ``--redis URL`` names one. Prints tables; asserts nothing.

    python benchmarks/stores.py cost [--jobs 20000] [--repeat 3] [--stores none memory sqlite redis]
    python benchmarks/stores.py fleet [--jobs 5000] [--workers 1 2 3] [--repeat 3]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

import asyncpoll
from asyncpoll import JobState, Status

HERE = Path(__file__).parent
POLLS_PER_JOB = 3
RUNNING = Status(JobState.RUNNING)
DONE = Status(JobState.SUCCEEDED, result=None)


async def check(handle: asyncpoll.JobHandle) -> Status:
    return DONE if handle.attempts >= POLLS_PER_JOB else RUNNING


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def redis_server(given: str | None) -> Iterator[str | None]:
    """A Redis URL: the one given, a new redis-server's, or None (none here)."""
    if given is not None:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        yield None
        return
    port = free_port()
    with tempfile.TemporaryDirectory() as folder:
        proc = subprocess.Popen(
            [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                folder,
            ],
            stdout=subprocess.DEVNULL,
        )
        try:
            import redis

            client = redis.Redis(port=port)
            for _ in range(500):  # bounded: 10 s
                with contextlib.suppress(redis.ConnectionError):
                    if client.ping():
                        break
                time.sleep(0.02)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            proc.terminate()
            proc.wait(10)


def flush_redis(url: str) -> None:
    import redis

    redis.Redis.from_url(url).flushall()


# ----------------------------------------------------------------- cost per poll


async def run_cost(jobs: int, store: str | None) -> tuple[float, float]:
    """CPU µs per poll and µs per add() (wall) for ``jobs`` jobs on ``store``."""
    cpu0 = time.process_time()
    async with asyncpoll.TaskPoller(
        schedule=asyncpoll.fixed(0.001),
        max_concurrency=64,
        store=store,
        named={"check": check},
    ) as p:
        t0 = time.perf_counter()
        for i in range(jobs):
            p.add(f"j{i}", check="check")
        add_us = (time.perf_counter() - t0) / jobs * 1e6
    cpu = time.process_time() - cpu0
    polls = p.statistics().requests
    assert polls == jobs * POLLS_PER_JOB, polls
    return cpu / polls * 1e6, add_us


def cost(args: argparse.Namespace) -> None:
    with redis_server(args.redis) as redis_url, tempfile.TemporaryDirectory() as folder:
        urls: dict[str, str | None] = {
            "none": None,
            "memory": "memory://",
            "sqlite": None,
            "redis": redis_url,
        }
        kinds = [k for k in args.stores if k != "redis" or redis_url is not None]
        if "redis" in args.stores and redis_url is None:
            print("redis: skipped (no redis-server on PATH and no --redis URL)")
        results: dict[str, list[tuple[float, float]]] = {k: [] for k in kinds}
        for trial in range(args.repeat):
            for kind in kinds:
                url = urls[kind]
                if kind == "sqlite":
                    url = f"sqlite:///{Path(folder) / f'jobs-{trial}.db'}"
                if kind == "redis":
                    assert url is not None
                    flush_redis(url)
                results[kind].append(anyio.run(run_cost, args.jobs, url))
    base = statistics.median(r[0] for r in results.get("none", [(1.0, 1.0)]))
    print(f"\n{args.jobs} jobs x {POLLS_PER_JOB} polls, check= (no HTTP), medians of "
          f"{args.repeat}; Python {sys.version.split()[0]}")  # fmt: skip
    print(f"{'store':<8} {'CPU µs/poll':>12} {'x none':>7} {'µs/add()':>9}")
    for kind, runs in results.items():
        per_poll = statistics.median(r[0] for r in runs)
        per_add = statistics.median(r[1] for r in runs)
        print(f"{kind:<8} {per_poll:>12.1f} {per_poll / base:>7.2f} {per_add:>9.1f}")


# ----------------------------------------------------------------- fleet throughput


def start_job_server() -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "server.py"), "--port", "0", "--polls", str(POLLS_PER_JOB)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    port = proc.stdout.readline().split()[-1]
    return proc, f"http://127.0.0.1:{port}"


def worker_main(args: argparse.Namespace) -> None:
    """One fleet worker (run by ``fleet`` in its own process)."""

    async def run() -> None:
        async with asyncpoll.TaskPoller(
            f"{args.api}/jobs/{{job_id}}",
            store=None if args.store == "none" else args.store,
            schedule=asyncpoll.fixed(0.05),
            max_concurrency=64,
        ) as p:
            if args.add:
                for i in range(args.add):
                    p.add(f"{args.prefix}-{i}")
            print("ready", flush=True)
            await p.serve(until_empty=True)
            print(json.dumps({"requests": p.statistics().requests}), flush=True)

    anyio.run(run)


def fleet(args: argparse.Namespace) -> None:
    with redis_server(args.redis) as redis_url:
        if redis_url is None:
            print("fleet: skipped (no redis-server on PATH and no --redis URL)")
            return
        server, api = start_job_server()
        try:
            rows = []
            base = [fleet_trial(api, "none", 1, args.jobs) for _ in range(args.repeat)]
            rows.append(("1, no store", statistics.median(r[0] for r in base), base[-1][1]))
            for workers in args.workers:
                rates = []
                for _ in range(args.repeat):
                    flush_redis(redis_url)
                    rates.append(fleet_trial(api, redis_url, workers, args.jobs))
                rows.append((str(workers), statistics.median(r[0] for r in rates), rates[-1][1]))
        finally:
            server.terminate()
            server.wait(10)
    print(f"\n{args.jobs} jobs x {POLLS_PER_JOB} polls over HTTP, fixed(0.05), Redis store; "
          f"medians of {args.repeat}; {os.cpu_count()} CPUs")  # fmt: skip
    print(f"{'workers':>11} {'jobs/s':>8} {'polls/s':>8}  requests per worker (last trial)")
    for workers, jobs_per_s, split in rows:
        print(f"{workers:>11} {jobs_per_s:>8.0f} {jobs_per_s * POLLS_PER_JOB:>8.0f}  {split}")


def fleet_trial(api: str, store: str, workers: int, jobs: int) -> tuple[float, list[int]]:
    # New job ids every trial: the job server counts each id's polls for ever.
    prefix = f"w{workers}-{time.monotonic_ns()}"
    cmd = [sys.executable, __file__, "worker", "--api", api, "--store", store, "--prefix", prefix]
    t0 = time.perf_counter()
    first = subprocess.Popen([*cmd, "--add", str(jobs)], stdout=subprocess.PIPE, text=True)
    assert first.stdout is not None
    first.stdout.readline()  # "ready": every job is stored; the others may claim
    procs = [first] + [
        subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(workers - 1)
    ]
    outs = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        outs.append(json.loads(out.strip().splitlines()[-1])["requests"])
    elapsed = time.perf_counter() - t0
    return jobs / elapsed, outs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="what", required=True)
    one = sub.add_parser("cost")
    one.add_argument("--jobs", type=int, default=20_000)
    one.add_argument("--repeat", type=int, default=3)
    one.add_argument("--stores", nargs="+", default=["none", "memory", "sqlite", "redis"])
    one.add_argument("--redis")
    two = sub.add_parser("fleet")
    two.add_argument("--jobs", type=int, default=5000)
    two.add_argument("--workers", type=int, nargs="+", default=[1, 2, 3])
    two.add_argument("--repeat", type=int, default=3)
    two.add_argument("--redis")
    three = sub.add_parser("worker")
    three.add_argument("--api", required=True)
    three.add_argument("--store", required=True)
    three.add_argument("--add", type=int, default=0)
    three.add_argument("--prefix", default="j")
    args = parser.parse_args()
    {"cost": cost, "fleet": fleet, "worker": worker_main}[args.what](args)


if __name__ == "__main__":
    main()
