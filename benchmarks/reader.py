"""The default reader alone: microseconds per status document read.

Each document is parsed once (a ``Response`` caches its JSON, as in the poller); the
figure is the reader's own cost per poll, the best of ``--repeat`` rounds. Usage::

    python benchmarks/reader.py [--rounds 20000] [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import timeit

from asyncpoll import DefaultReader, Response

DOCUMENTS = {
    "plain running": {"status": "running"},
    "running, progress": {"status": "processing", "progress": 40, "job_id": "j-9"},
    "envelope (data.state)": {"code": 200, "msg": "success", "data": {"state": "generating"}},
    "succeeded, result": {"status": "completed", "result": {"frames": 24}},
    "Celery (Flower)": {"task-id": "4af6", "state": "STARTED"},
    "Ray Jobs": {"submission_id": "raysubmit_1", "status": "RUNNING", "message": "running"},
    "Prefect (state.type)": {"id": "r", "state": {"type": "RUNNING", "name": "Running"}},
    "GitHub (conclusion)": {"id": 7, "status": "completed", "conclusion": "success"},
    "Google LRO (done)": {"name": "operations/1", "done": False, "metadata": {"x": 1}},
    "AWS Batch (jobs[0])": {"jobs": [{"jobId": "j", "status": "RUNNABLE"}]},
    "failed, traceback": {"state": "FAILURE", "traceback": "Traceback...\nValueError: x"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    reader = DefaultReader()
    print(f"{'document':24s} {'us/read':>8s}")
    for name, document in DOCUMENTS.items():
        response = Response(200, {}, json.dumps(document).encode(), "https://api.test/jobs/1")
        response.json()
        timer = timeit.Timer(lambda response=response: reader(response))  # type: ignore[misc]
        best = min(timer.repeat(number=args.rounds, repeat=args.repeat))
        print(f"{name:24s} {best / args.rounds * 1e6:8.2f}")


if __name__ == "__main__":
    main()
