"""Soak: tens of thousands of jobs against the chaos server, every fault on, every invariant.

The chaos server (``tests/servers/chaos.py``) runs on 127.0.0.1 in this process's
threads and draws a fault for a share (``--rate``) of its requests, of every kind it has;
``tests/chaosrun.py`` drives one ``TaskPoller`` per batch over ``--batch`` jobs and checks
every invariant after each batch (each job resolved once with its own answer, the rate
limit on the kernel's arrival times, no request inside an announced cool-down, no
credential anywhere it should not be, no task, thread, file descriptor or connection
left). Between batches the memory traced is compared with the first batch's: it must
come back to that baseline. The run stops after ``--jobs`` jobs or ``--max-seconds``.

It prints, and with ``--json`` writes, the figures: jobs by final state, faults injected
by kind, requests, retries, 429s, cool-downs, peak and final traced memory, and each
invariant held. It exits 1 if any invariant broke.

    python benchmarks/soak.py                                      # 20,000 jobs
    python benchmarks/soak.py --jobs 2000 --max-seconds 120        # CI's short run
    python benchmarks/soak.py --transport httpx --backend trio --seed 7
"""

from __future__ import annotations

import argparse
import collections
import gc
import itertools
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from chaosrun import check, drive
from servers.chaos import FAULTS, gzip_bomb, running

#: The growth from one batch to the next that, in every batch, reveals a leak (100
#: bytes a job in a batch of 2,000 jobs is 200 KB: it shows).
MEMORY_SLACK = 256 * 1024


async def soak(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    totals: dict[str, collections.Counter[str]] = {
        "states": collections.Counter(),
        "faults injected": collections.Counter(),
        "errors": collections.Counter(),
    }
    counts: collections.Counter[str] = collections.Counter()
    memory: list[int] = []
    batches = 0
    lag = 0.0
    gzip_bomb()  # the server's 64 MiB bomb, made before memory is traced
    tracemalloc.start()
    with running(seed=args.seed, rate=args.rate) as server:
        while counts["jobs"] < args.jobs and time.monotonic() - started < args.max_seconds:
            size = min(args.batch, args.jobs - counts["jobs"])
            run = await drive(
                server,
                jobs=size,
                transport=args.transport,
                rate=args.rate_limit,
                burst=args.burst,
                max_concurrency=args.concurrency,
                prefix=f"s{batches}-",
                budget=600.0,  # a batch on a busy machine takes a minute or more
            )
            report = check(run)  # raises AssertionError naming the broken invariant
            for key in totals:
                totals[key].update(report[key])
            counts["jobs"] += report["jobs"]
            counts["requests"] += report["requests"]
            counts["retries"] += report["retries (transient errors)"] or 0
            counts["429s read"] += report["429s read"] or 0
            counts["cool-downs announced"] += report["cool-downs announced"]
            counts["foreign requests"] += report["foreign requests"]
            counts["log records scanned"] += report["log records"]
            counts["texts scanned"] += report["texts scanned"]
            lag = max(lag, report["largest loop lag (ms)"])
            del run
            server.forget()
            gc.collect()
            memory.append(tracemalloc.get_traced_memory()[0])
            batches += 1
            print(
                f"batch {batches}: {counts['jobs']} jobs, {counts['requests']} requests, "
                f"{sum(totals['faults injected'].values())} faults, "
                f"{time.monotonic() - started:.0f} s, traced {memory[-1] / 1e6:.1f} MB",
                flush=True,
            )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    growth = max((m - memory[0] for m in memory[1:]), default=0)
    # A leak grows memory every batch; a cache filled once grows it in one batch only.
    steps = [later - earlier for earlier, later in itertools.pairwise(memory)]
    if steps and min(steps) > MEMORY_SLACK:
        raise AssertionError(
            f"memory did not return to its baseline: traced after each batch {memory}"
        )
    return {
        "seed": args.seed,
        "transport": args.transport,
        "backend": args.backend,
        "fault rate": args.rate,
        "rate limit": f"{args.rate_limit:g}/s burst {args.burst}",
        "seconds": round(time.monotonic() - started, 1),
        "batches": batches,
        **counts,
        "jobs by state": dict(sorted(totals["states"].items())),
        "faults injected": {f: totals["faults injected"][f] for f in FAULTS},
        "faults total": sum(totals["faults injected"].values()),
        "errors by kind": dict(totals["errors"].most_common()),
        "peak traced MB": round(peak / 1e6, 1),
        "traced MB after each batch": [round(m / 1e6, 2) for m in memory],
        "largest growth over the first batch (KB)": round(growth / 1024, 1),
        "largest event-loop lag (ms)": lag,
        "invariants": "all held, every batch",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=2_000, help="jobs a poller")
    parser.add_argument("--max-seconds", type=float, default=1800)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=0.1, help="share of requests faulted")
    parser.add_argument("--rate-limit", type=float, default=1000.0)
    parser.add_argument("--burst", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--transport", default="auto", help="auto, httpx, httpx-aiohttp, aiohttp")
    parser.add_argument("--backend", default="asyncio", choices=("asyncio", "trio"))
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    try:
        figures = anyio.run(soak, args, backend=args.backend)
    except AssertionError as exc:
        print(f"INVARIANT BROKEN: {exc}", file=sys.stderr)
        sys.exit(1)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
