"""Real processes on real stores: a poller killed with SIGKILL and resumed (SQLite), and
a fleet of three workers, one killed, sharing one Redis (its jobs, its rate limit).

The job API is the fake one (``asyncpoll.testing``) on a loopback port, on the real
clock; the workers are ``servers/store_worker.py`` run with this interpreter. Every wait
is bounded. What is checked:

- none lost: every job ends terminal in the store, with the state the API gave it;
- none resolved twice: a job whose outcome was stored is never polled or resolved
  again; only jobs resolved in the killed process's last moments, before their outcome
  was written, may be resolved again after the crash (at-least-once, as documented),
  and those are counted;
- (fleet) the shared rate limit holds on the API's own arrival log, the survivors
  share the load, and every job is polled by one worker at a time.
"""

from __future__ import annotations

import contextlib
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from asyncpoll import RedisStore
from asyncpoll.testing import FakeJobAPI, serve

WORKER = Path(__file__).parent / "servers" / "store_worker.py"
#: Seconds any one wait of these tests may take.
LIMIT = 60.0


def worker(*args: str, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(WORKER), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=cwd,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline()  # bounded: the worker prints or exits
    assert line.strip() == "ready", f"worker did not start: {line}{proc.stdout.read()}"


def wait_until(what: str, ready: Any) -> None:
    deadline = time.monotonic() + LIMIT
    while not ready():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def finish(proc: subprocess.Popen[str]) -> str:
    try:
        out, _ = proc.communicate(timeout=LIMIT)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"worker did not finish within {LIMIT} s:\n{out}")
    assert proc.returncode == 0, out
    return out


def kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(LIMIT)
    assert proc.stdout is not None
    proc.stdout.close()


def resolutions(log: Path) -> list[str]:
    return [line.split()[0] for line in log.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def fake_api(jobs: int, prefix: str, **options: Any) -> Iterator[tuple[FakeJobAPI, str]]:
    api = FakeJobAPI(seed=12, **options)
    for i in range(jobs):
        api.add_job(f"{prefix}{i:05d}")
    with serve(api) as url:
        yield api, url


def expected_states(api: FakeJobAPI) -> dict[str, str]:
    return {job_id: job.outcome for job_id, job in api.jobs.items()}


def sqlite_rows(path: Path) -> dict[str, str]:
    """job id -> state, read straight from the file (as another process would)."""
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as db:
        return dict(db.execute("SELECT job_id, state FROM jobs").fetchall())


TERMINAL = {"succeeded", "failed", "cancelled", "timed_out", "errored"}


def test_a_poller_killed_mid_run_is_resumed_by_the_next_process(tmp_path: Path) -> None:
    jobs = 2000
    with fake_api(jobs, "c", duration=(0.5, 4.0), failure_rate=0.1) as (api, url):
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(api.jobs))
        db = tmp_path / "jobs.db"
        store = f"sqlite:///{db}"
        log1, log2 = tmp_path / "first.log", tmp_path / "second.log"
        first = worker("--api", url, "--store", store, "--log", str(log1), "--add", str(ids),
                       "--name", "first", cwd=tmp_path)  # fmt: skip
        wait_ready(first)
        # Every job is stored before add() returns: all of them are in the file now.
        assert len(sqlite_rows(db)) == jobs
        wait_until("a third of the jobs resolved", lambda: len(resolutions(log1)) > jobs // 3)
        kill(first)
        at_kill = sqlite_rows(db)
        stored_done = {j for j, state in at_kill.items() if state in TERMINAL}
        polls_before = len(api.requests)
        second = worker("--api", url, "--store", store, "--log", str(log2), "--name", "second",
                        cwd=tmp_path)  # fmt: skip
        wait_ready(second)
        finish(second)
        after = api.requests[polls_before:]
    final = sqlite_rows(db)
    expected = expected_states(api)
    assert final == expected  # none lost, each with the state the API gave it
    first_resolved, second_resolved = resolutions(log1), resolutions(log2)
    assert len(set(second_resolved)) == len(second_resolved)  # once in the new process
    assert len(set(first_resolved)) == len(first_resolved)
    assert set(first_resolved) | set(second_resolved) == set(expected)
    # A stored outcome is final: the new process polled none of those jobs again...
    assert not {r.job_id for r in after} & stored_done
    assert not set(second_resolved) & stored_done
    # ...and resolved every job whose outcome was not stored yet.
    assert set(second_resolved) == set(expected) - stored_done
    # At-least-once: resolved in the killed process's last flush interval, not written.
    again = set(first_resolved) & set(second_resolved)
    assert again <= set(expected) - stored_done
    print(
        f"\n{jobs} jobs; {len(stored_done)} stored terminal at the kill; "
        f"{len(first_resolved)} resolved before it; {len(again)} resolved again after"
    )


def arrivals_within_bound(times: list[float], rate: float, burst: int, slack: float) -> None:
    """No window of t seconds holds more than burst + rate * (t + slack) arrivals."""
    times = sorted(times)
    start = 0
    worst = (0.0, 0, 0.0)
    for end, t in enumerate(times):
        while times[start] < t - 10.0:
            start += 1
        for i in range(start, end + 1):
            count = end - i + 1
            span = t - times[i]
            allowed = burst + rate * (span + slack)
            if count - allowed > worst[0]:
                worst = (count - allowed, count, span)
    assert worst[0] <= 0, f"{worst[1]} requests arrived within {worst[2]:.4f} s"


@pytest.mark.usefixtures("redis_server")
def test_a_fleet_of_three_shares_jobs_and_one_rate_limit_and_survives_a_kill(
    tmp_path: Path, redis_url: str
) -> None:
    jobs, rate, burst = 2000, 400.0, 20
    with fake_api(jobs, "f", duration=(0.5, 3.0), failure_rate=0.1) as (api, url):
        ids = tmp_path / "ids.txt"
        ids.write_text("\n".join(api.jobs))
        logs = [tmp_path / f"w{i}.log" for i in range(3)]
        common = ["--api", url, "--store", redis_url, "--serve", "--rate", str(rate),
                  "--burst", str(burst), "--lease", "3", "--interval", "0.3"]  # fmt: skip
        procs = [
            worker(*common, "--log", str(logs[0]), "--name", "w0", "--add", str(ids), cwd=tmp_path),
        ]
        wait_ready(procs[0])
        for i in (1, 2):
            procs.append(worker(*common, "--log", str(logs[i]), "--name", f"w{i}", cwd=tmp_path))
        for proc in procs[1:]:
            wait_ready(proc)
        wait_until("a quarter resolved", lambda: sum(len(resolutions(p)) for p in logs) > jobs // 4)
        kill(procs[2])
        killed_at = len(api.requests)
        for proc in procs[:2]:
            finish(proc)
        requests = list(api.requests)
    store = RedisStore(redis_url)  # read as another process would: get() needs no open()
    states = {job_id: row.state for job_id in api.jobs if (row := store.get(job_id)) is not None}
    expected = expected_states(api)
    assert states == expected  # none lost
    per_worker = [resolutions(p) for p in logs]
    survivors = per_worker[0] + per_worker[1]
    assert len(set(survivors)) == len(survivors)  # no job resolved twice by the survivors
    assert set(survivors) | set(per_worker[2]) == set(expected)
    again = set(survivors) & set(per_worker[2])
    # Polled by one worker at a time: no job has two GETs from two workers in flight; the
    # fake API answers at once, so two polls of a job closer than the schedule's 0.3 s
    # would mean two workers held it.
    polls: dict[str, list[tuple[float, str]]] = {}
    for r in requests:
        if r.method == "GET" and r.job_id is not None:
            polls.setdefault(r.job_id, []).append((r.time, r.headers.get("x-worker", "?")))
    close = [
        (job_id, a, b)
        for job_id, seq in polls.items()
        for a, b in zip(seq, seq[1:], strict=False)  # noqa: RUF007
        if b[0] - a[0] < 0.25 and a[1] != b[1]
    ]
    assert close == []
    # The shared limit, on the API's arrival times, 50 ms allowed for the send path: a
    # grant's task runs as late as its worker's event loop lags, and three workers, the
    # API and redis-server share two cores (10 ms was over by 2 requests in 1.6 s once,
    # under load). The exact bound is checked on Redis's clock in test_redis_store.py.
    arrivals_within_bound([r.time for r in requests], rate, burst, slack=0.05)
    after = Counter(r.headers.get("x-worker") for r in requests[killed_at:])
    assert after["w2"] == 0
    share = after["w1"] / (after["w0"] + after["w1"])
    assert 0.2 < share < 0.8, after  # the survivors share the load
    print(f"\nfleet: {jobs} jobs, {len(requests)} requests; per worker "
          f"{Counter(r.headers.get('x-worker') for r in requests)}; "
          f"{len(again)} resolved again after the kill")  # fmt: skip
