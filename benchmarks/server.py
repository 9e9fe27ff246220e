"""A fast loopback job server for the benchmarks, meant to run in its own process.

A bare asyncio protocol speaking just enough HTTP/1.1 (keep-alive, Content-Length) to
answer ``GET /jobs/{id}`` with ``{"status": "running"}`` until the job's ``--polls``-th
poll, then ``{"status": "done", "result": ...}``. ``GET /stats`` answers with the
server's own CPU seconds and request count, so a benchmark can check that the server is
never the bottleneck. Run ``python benchmarks/server.py --port 0``: it prints the port.

With ``--log`` the server also keeps, with ``time.time()``, the arrival of every job
request and the moment it first answered each job "done"; ``GET /log`` answers with
both (``{"arrivals": [...], "done": {job_id: t}}``) and starts a new log, so a benchmark
can check a rate limit on what reached the server and measure how late a client learns
that a job is done. Without ``--log`` nothing is kept (long runs would grow the log).

    python benchmarks/server.py [--port 0] [--polls 3] [--cpu 1] [--log]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time

RUNNING = b'{"status":"running","progress":50}'
HEADER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"


class JobProtocol(asyncio.Protocol):
    """One keep-alive connection; requests are answered in order."""

    polls: dict[bytes, int] = {}  # noqa: RUF012 -- one table for every connection
    requests = 0
    done_after = 3
    log = False
    arrivals: list[float] = []  # noqa: RUF012 -- with --log: when each job request arrived
    done_at: dict[str, float] = {}  # noqa: RUF012 -- with --log: when each job was first done

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        out = []
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                break
            head, self.buffer = self.buffer[:end], self.buffer[end + 4 :]
            path = head.split(b" ", 2)[1]
            out.append(self.answer(path))
        if out:
            self.transport.write(b"".join(out))

    def answer(self, path: bytes) -> bytes:
        cls = JobProtocol
        cls.requests += 1
        if path == b"/stats":
            body = json.dumps({"cpu": time.process_time(), "requests": cls.requests}).encode()
        elif path == b"/log":
            body = json.dumps({"arrivals": cls.arrivals, "done": cls.done_at}).encode()
            cls.arrivals, cls.done_at = [], {}
        else:
            now = time.time() if cls.log else 0.0
            if cls.log:
                cls.arrivals.append(now)
            job_id = path.rsplit(b"/", 1)[-1]
            n = cls.polls.get(job_id, 0) + 1
            cls.polls[job_id] = n
            if n >= cls.done_after:
                if cls.log and n == cls.done_after:
                    cls.done_at[job_id.decode()] = now
                body = b'{"status":"done","result":"' + job_id + b'"}'
            else:
                body = RUNNING
        return HEADER % len(body) + body


async def serve(port: int, polls: int, log: bool = False) -> None:
    JobProtocol.done_after = polls
    JobProtocol.log = log
    loop = asyncio.get_running_loop()
    server = await loop.create_server(JobProtocol, "127.0.0.1", port, backlog=4096)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--polls", type=int, default=3, help="polls until a job is done")
    parser.add_argument("--cpu", type=int, default=None, help="pin the server to this CPU")
    parser.add_argument(
        "--log", action="store_true", help="keep request arrivals and done times for GET /log"
    )
    args = parser.parse_args()
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})
    try:
        asyncio.run(serve(args.port, args.polls, args.log))
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
