"""The Celery app and tasks that tests/servers/celery_flower.py serves.

The worker and Flower import this module as ``servers.celery_tasks`` (``tests/`` on
``PYTHONPATH``); the broker and the result backend are the redis-server that the fixture
starts, named by ``ASYNCPOLL_TEST_REDIS_URL``. Task names are spelled out, so they do
not depend on the import path: Flower's ``/api/task/async-apply/<name>`` looks the name
up in its own copy of this app.
"""

from __future__ import annotations

import os
import time

from celery import Celery

#: The prefix of every task name here: ``asyncpoll_tests.add`` ...
PREFIX = "asyncpoll_tests"

#: The longest ``sleepy`` sleeps, so a task nobody revokes still ends.
MAX_SLEEP = 30.0

_redis = os.environ.get("ASYNCPOLL_TEST_REDIS_URL", "redis://127.0.0.1:6379")

app = Celery("asyncpoll_tests", broker=f"{_redis}/0", backend=f"{_redis}/1")
app.conf.update(
    # STARTED is reported (else a running task reads PENDING until it ends).
    task_track_started=True,
    # One task at a time per pool process, so a sleepy task cannot hold others back.
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    result_expires=600,
    # Flower's task pages need events; the result endpoint does not, but it costs nothing.
    worker_send_task_events=True,
    task_send_sent_event=True,
)


@app.task(name=f"{PREFIX}.add")
def add(x: int, y: int) -> int:
    """``x + y``."""
    return x + y


def _descend(depth: int, n: int) -> None:
    if depth == 0:
        raise ValueError(f"explode({n}) reached the bottom: {n} is not a number it accepts")
    # Two call sites taken in turn: Python folds three identical frames in a row into
    # "[Previous line repeated ...]", which would shorten the traceback.
    if depth % 2:
        _descend(depth - 1, n)
    else:
        _descend(depth - 1, n)


@app.task(name=f"{PREFIX}.explode")
def explode(n: int, depth: int = 20) -> None:
    """Raise ``ValueError`` ``depth`` calls down: a traceback of 2,000 to 3,000
    characters (its frames name this file's path) whose last line is
    ``ValueError: explode(<n>) reached the bottom: <n> is not a number it accepts``."""
    _descend(depth, n)


@app.task(name=f"{PREFIX}.sleepy")
def sleepy(seconds: float) -> float:
    """Sleep ``seconds`` (at most ``MAX_SLEEP``), a task to revoke; returns the time slept."""
    seconds = min(float(seconds), MAX_SLEEP)
    time.sleep(seconds)
    return seconds
