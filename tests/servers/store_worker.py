"""A poller process on a store, for the crash and fleet tests (run as a script).

    python store_worker.py --api URL --store STORE_URL --log FILE [--add FILE] [--serve]
        [--rate R] [--burst B] [--name NAME] [--lease S]

- ``--add FILE``: add every job id listed in FILE (one a line) first.
- ``--serve``: a fleet worker: poll the store's jobs until none is live.
  Without it: wait for the jobs in flight (added or resumed), then exit.
- Each job this process resolves is appended to ``--log`` as ``<job id> <state>``, a line
  written and flushed from ``on_done`` (so a SIGKILL loses none that ran).
- Prints ``ready`` once the poller is open (and the jobs added).

Every request carries ``X-Worker: NAME``, so the fake API's log tells who polled.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import IO

import anyio

import asyncpoll


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--log", required=True, type=Path)
    parser.add_argument("--add", type=Path)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--rate", type=float)
    parser.add_argument("--burst", type=int, default=1)
    parser.add_argument("--name", default=str(os.getpid()))
    parser.add_argument("--lease", type=float, default=60.0)
    parser.add_argument("--interval", type=float, default=0.2)
    args = parser.parse_args()
    log: IO[str] = args.log.open("a", buffering=1)

    def resolved(handle: asyncpoll.JobHandle) -> None:
        log.write(f"{handle.job_id} {handle.state.value}\n")
        log.flush()

    async def run() -> None:
        rate = None if args.rate is None else asyncpoll.RateLimit(args.rate, burst=args.burst)
        async with asyncpoll.TaskPoller(
            f"{args.api}/jobs/{{job_id}}",
            store=args.store,
            schedule=asyncpoll.fixed(args.interval),
            on_done=resolved,
            headers={"X-Worker": args.name},
            rate_limit=rate,
            lease=args.lease,
            request_timeout=1.0,
            timeout=120.0,
            max_concurrency=32,
        ) as poller:
            if args.add is not None:
                for job_id in args.add.read_text().split():
                    poller.add(job_id)
            print("ready", flush=True)
            if args.serve:
                await poller.serve(until_empty=True)

    anyio.run(run)
    log.close()


if __name__ == "__main__":
    sys.exit(main())
