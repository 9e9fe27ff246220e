"""asyncpoll against a real Celery, through Flower's HTTP API, with the default reader.

The session fixture (tests/servers/celery_flower.py) runs redis-server, a Celery worker
and Flower on loopback ports; the tasks are in tests/servers/celery_tasks.py. Each test
polls the way a user of Flower would, with nothing but the default reader and settings:
``submit()`` to ``POST /api/task/async-apply/<task>``, whose answer is
``{"task-id": "<uuid>", "state": "PENDING"}``, then ``GET /api/task/result/{job_id}``
(the poller's ``status_url`` template), which answers from the result backend:

- ``{"task-id": ..., "state": "PENDING"}`` queued (and for an id nobody knows),
- ``{"task-id": ..., "state": "STARTED"}`` running (the app sets task_track_started),
- ``{"task-id": ..., "state": "SUCCESS", "result": <the return value>}``,
- ``{"task-id": ..., "state": "FAILURE", "result": "ValueError('...')",
  "traceback": "Traceback (most recent call last):\\n ... ValueError: ...\\n"}``,
- ``{"task-id": ..., "state": "REVOKED", "result": "TaskRevokedError('terminated')"}``.

``/api/task/info/{id}`` is not used: it reads Flower's in-memory copy of the worker's
events (lost when Flower restarts, a 404 until Flower has seen the task), and its
``result`` is the repr of the value (``"'5'"``), not the value.

These tests run on the real clock (sockets and processes cannot be fast-forwarded): a
short poll schedule, and a bounded ``timeout=`` on every job so that nothing hangs.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import pytest
from conftest import REAL_TIME_BACKENDS

import asyncpoll
from asyncpoll import JobCancelled, JobFailed, JobState

if TYPE_CHECKING:
    from servers.celery_flower import CeleryFlower

# The celery_flower fixture. A plugin, not an import: pytest must load the module itself
# to rewrite its asserts.
pytest_plugins = ["servers.celery_flower"]

# Each test's own bound is its jobs' timeouts; this one also covers the servers'
# start-up (at most 40 s, in the first test) and their stop (in the last).
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(120)]

#: Poll at once, then after 0.05 s, 0.1 s ... at most every 0.5 s.
SCHEDULE = asyncpoll.backoff(initial=0.05, max=0.5)
#: Every job's deadline, in seconds; no job here should come near it.
JOB_TIMEOUT = 10.0
#: How long ``sleepy`` would sleep if nobody revoked it: longer than JOB_TIMEOUT.
SLEEP = 20.0
#: A revoked job must end within this many seconds of the revoke.
PROMPT = 5.0

#: A queue no worker reads: a task sent there never runs.
UNSERVED_QUEUE = "asyncpoll-tests-unserved"

#: The last line of explode(7)'s traceback.
EXPLODE_LAST_LINE = "ValueError: explode(7) reached the bottom: 7 is not a number it accepts"


@pytest.fixture(params=REAL_TIME_BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """Real-time event loops: real servers cannot run in virtual time."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(autouse=True)
def flower(celery_flower: CeleryFlower) -> Iterator[CeleryFlower]:
    """The servers; after each test, whatever task it left running is revoked, so that it
    cannot hold the worker's two pool processes during the next test."""
    yield celery_flower
    celery_flower.revoke_unfinished()


def poller(flower: CeleryFlower, **options: Any) -> asyncpoll.TaskPoller:
    """A poller with the default reader and settings, polling Flower's result endpoint."""
    return asyncpoll.TaskPoller(
        status_url=f"{flower.url}/api/task/result/{{job_id}}",
        schedule=SCHEDULE,
        timeout=JOB_TIMEOUT,
        **options,
    )


async def flower_result(flower: CeleryFlower, task_id: str, state: str) -> dict[str, Any]:
    """Flower's ``/api/task/result`` answer for ``task_id`` once it reads ``state``."""
    async with httpx.AsyncClient(base_url=flower.url, timeout=5.0) as client:
        with anyio.fail_after(PROMPT):
            while True:
                response = await client.get(f"/api/task/result/{task_id}")
                assert response.status_code == 200, response.text
                body: dict[str, Any] = response.json()
                if body["state"] == state:
                    return body
                await anyio.sleep(0.05)


async def until_running(handle: asyncpoll.JobHandle) -> None:
    """Wait (at most PROMPT seconds) until the poller has read the job as running."""
    with anyio.fail_after(PROMPT):
        while handle.state is not JobState.RUNNING:
            assert not handle.done(), handle.exception()
            await anyio.sleep(0.02)


# --------------------------------------------------------------------- the server


async def test_flower_answers_as_these_tests_expect(flower: CeleryFlower) -> None:
    """Flower's own answers (plain httpx), the shapes every other test reads."""
    async with httpx.AsyncClient(timeout=5.0) as client:
        created = await client.post(flower.apply_url("add"), json={"args": [2, 3]})
        assert created.status_code == 200
        answer = created.json()
        # The state the result backend holds when Flower asks, right after sending the
        # task: PENDING mostly, STARTED or SUCCESS when the worker was quick.
        assert answer.keys() == {"task-id", "state"}
        assert answer["state"] in ("PENDING", "STARTED", "SUCCESS")
        add_id = answer["task-id"]
        uuid.UUID(add_id)
        explode_id = (await client.post(flower.apply_url("explode"), json={"args": [7]})).json()[
            "task-id"
        ]
        unknown = await client.get(f"{flower.url}/api/task/result/no-such-task")
        assert unknown.json() == {"task-id": "no-such-task", "state": "PENDING"}
    assert await flower_result(flower, add_id, "SUCCESS") == {
        "task-id": add_id,
        "state": "SUCCESS",
        "result": 5,
    }
    failure = await flower_result(flower, explode_id, "FAILURE")
    assert failure.keys() == {"task-id", "state", "result", "traceback"}
    assert failure["result"] == (
        "ValueError('explode(7) reached the bottom: 7 is not a number it accepts')"
    )
    traceback = failure["traceback"]
    assert traceback.startswith("Traceback (most recent call last):\n")
    assert traceback.endswith(f"\n{EXPLODE_LAST_LINE}\n")
    assert len(traceback) > 1500  # well over the ~1000 characters a message keeps


# --------------------------------------------------------------------- polling it


async def test_result(flower: CeleryFlower) -> None:
    """A task that returns: awaiting its handle gives the return value."""
    async with poller(flower) as p:
        handle = await p.submit(flower.apply_url("add"), json={"args": [2, 3]})
        uuid.UUID(handle.job_id)  # the task id, read from the answer's "task-id"
        assert handle.url == f"{flower.url}/api/task/result/{handle.job_id}"
        assert await handle == 5
    assert handle.state is JobState.SUCCEEDED
    assert handle.status is not None
    assert handle.status.raw == {"task-id": handle.job_id, "state": "SUCCESS", "result": 5}


async def test_failure(flower: CeleryFlower) -> None:
    """A task that raises: JobFailed, its message ending with the exception's line, the
    whole traceback in ``status.error``."""
    async with poller(flower) as p:
        handle = await p.submit(flower.apply_url("explode"), json={"args": [7]})
        with pytest.raises(JobFailed) as caught:
            await handle
    error = caught.value
    assert error.job_id == handle.job_id
    assert error.status.state is JobState.FAILED
    assert error.status.raw["state"] == "FAILURE"
    traceback = error.status.raw["traceback"]  # as Flower sent it
    assert len(traceback) > 1500  # well over the ~1000 characters a message keeps
    # The whole traceback is the error text (the "result" field, the exception's repr,
    # comes after "traceback" in the reader's list).
    assert error.status.error is not None
    assert error.status.error.strip() == traceback.strip()
    assert error.error == error.status.error  # type: ignore[attr-defined]
    # The message keeps the traceback's beginning and its end, the exception's line.
    message = str(error)
    assert message.startswith(f"job {handle.job_id!r} failed: Traceback (most recent call last):")
    assert message.rstrip().endswith(EXPLODE_LAST_LINE)
    assert len(message) < len(traceback)


async def finished_task(flower: CeleryFlower, task: str, args: list[Any], state: str) -> str:
    """The id of a run of ``task`` (sent with plain httpx) that reads ``state``.

    Sending a task again under that id (Celery lets a caller choose a task id:
    ``"task_id"`` in Flower's create body), to a queue no worker reads (so that no new
    run overwrites the stored outcome), gets a create answer already in that state, with
    no result and no traceback: what a quick task gets by chance (about half of twenty
    adds created at once here answer ``{"task-id": ..., "state": "SUCCESS"}``).
    """
    async with httpx.AsyncClient(timeout=5.0) as client:
        created = await client.post(flower.apply_url(task), json={"args": args})
    task_id: str = created.json()["task-id"]
    await flower_result(flower, task_id, state)
    return task_id


async def test_result_when_the_create_answer_says_success(flower: CeleryFlower) -> None:
    """A create answer ``{"task-id": ..., "state": "SUCCESS"}`` holds no result: the
    handle's value is still the task's return value, read from the status URL."""
    task_id = await finished_task(flower, "add", [2, 3], "SUCCESS")
    async with poller(flower) as p:
        handle = await p.submit(
            flower.apply_url("add"),
            json={"args": [2, 3], "task_id": task_id, "queue": UNSERVED_QUEUE},
        )
        first = handle.last_response
        assert first is not None
        assert first.json() == {"task-id": task_id, "state": "SUCCESS"}  # the create answer
        assert await handle == 5
    assert handle.status is not None
    assert handle.status.raw == {"task-id": task_id, "state": "SUCCESS", "result": 5}


async def test_failure_when_the_create_answer_says_failure(flower: CeleryFlower) -> None:
    """A create answer ``{"task-id": ..., "state": "FAILURE"}`` holds no traceback: the
    JobFailed still carries it, read from the status URL."""
    task_id = await finished_task(flower, "explode", [7], "FAILURE")
    async with poller(flower) as p:
        handle = await p.submit(
            flower.apply_url("explode"),
            json={"args": [7], "task_id": task_id, "queue": UNSERVED_QUEUE},
        )
        first = handle.last_response
        assert first is not None
        assert first.json() == {"task-id": task_id, "state": "FAILURE"}  # the create answer
        with pytest.raises(JobFailed) as caught:
            await handle
    assert caught.value.status.error is not None
    assert caught.value.status.error.rstrip().endswith(EXPLODE_LAST_LINE)
    assert str(caught.value).rstrip().endswith(EXPLODE_LAST_LINE)


async def test_cancel_remote_revokes_and_terminates(flower: CeleryFlower) -> None:
    """``handle.cancel_remote()`` POSTs Flower's revoke URL (terminate=true): the handle
    ends CANCELLED at once, and the worker really stops the task."""
    options = {
        "cancel_method": "POST",
        "cancel_url": f"{flower.url}/api/task/revoke/{{job_id}}?terminate=true",
    }
    async with poller(flower, **options) as p:
        handle = await p.submit(flower.apply_url("sleepy"), json={"args": [SLEEP]})
        await until_running(handle)  # Flower answers "STARTED"
        assert handle.status is not None
        assert handle.status.raw == {"task-id": handle.job_id, "state": "STARTED"}
        started = time.monotonic()
        assert await handle.cancel_remote() is True
        with pytest.raises(JobCancelled) as caught:
            await handle
        assert time.monotonic() - started < PROMPT
    # The confirming read, or a regular poll that saw REVOKED first, ends it.
    assert caught.value.reason in (
        "cancelled on the server at the caller's request",
        "cancelled on the server: TaskRevokedError('terminated')",
    )
    assert handle.state is JobState.CANCELLED
    # The worker terminated it (a sleep of SLEEP s), as Flower's result endpoint says.
    assert await flower_result(flower, handle.job_id, "REVOKED") == {
        "task-id": handle.job_id,
        "state": "REVOKED",
        "result": "TaskRevokedError('terminated')",
    }


async def test_revoked_elsewhere_ends_cancelled(flower: CeleryFlower) -> None:
    """A task another program started and revokes (plain httpx calls to Flower) while
    asyncpoll follows it by id: it ends CANCELLED, well before its timeout."""
    async with httpx.AsyncClient(base_url=flower.url, timeout=5.0) as client:
        created = await client.post(flower.apply_url("sleepy"), json={"args": [SLEEP]})
        task_id = created.json()["task-id"]
        async with poller(flower) as p:
            handle = p.add(task_id)
            await until_running(handle)
            started = time.monotonic()
            revoked = await client.post(f"/api/task/revoke/{task_id}", params={"terminate": "true"})
            assert revoked.json() == {"message": f"Revoked '{task_id}'"}
            with pytest.raises(JobCancelled) as caught:
                await handle
            assert time.monotonic() - started < PROMPT
    assert caught.value.reason == "cancelled on the server: TaskRevokedError('terminated')"
    assert handle.state is JobState.CANCELLED
    assert handle.status is not None
    assert handle.status.state is JobState.CANCELLED
    assert handle.status.raw == {
        "task-id": task_id,
        "state": "REVOKED",
        "result": "TaskRevokedError('terminated')",
    }


async def test_many(flower: CeleryFlower) -> None:
    """Twenty tasks submitted at once and gathered: every result right, none timed out."""
    count = 20
    handles: list[asyncpoll.JobHandle | None] = [None] * count
    started = time.monotonic()
    async with poller(flower) as p:

        async def submit(i: int) -> None:
            handles[i] = await p.submit(flower.apply_url("add"), json={"args": [i, 100]})

        async with anyio.create_task_group() as tg:
            for i in range(count):
                tg.start_soon(submit, i)
        submitted = [h for h in handles if h is not None]
        assert len({h.job_id for h in submitted}) == count
        results = await p.gather(*submitted)
    assert results == [i + 100 for i in range(count)]
    assert all(h.state is JobState.SUCCEEDED for h in submitted)
    assert time.monotonic() - started < JOB_TIMEOUT
