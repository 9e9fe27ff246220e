"""Ray Jobs, polled with asyncpoll's default reader and settings on a real Ray head node.

Ray's dashboard serves the job submission REST API (``servers/ray_jobs.py`` starts one
head node on loopback ports for the session). What it answers (Ray 2.60):

- ``POST /api/jobs/`` ``{"entrypoint": "<shell command>", "submission_id"?: ...}``:
  200 ``{"job_id": "<id>", "submission_id": "<id>"}``, both the submission id (Ray makes
  one, ``raysubmit_...``, when none is given).
- ``GET /api/jobs/<id>``: ``{"type": "SUBMISSION", "job_id": null, "submission_id": ...,
  "status": "PENDING"|"RUNNING"|"SUCCEEDED"|"FAILED"|"STOPPED", "message": ...,
  "error_type": ..., "driver_exit_code": ..., ...}``. No result field: a succeeded job's
  handle resolves with the whole body. A failed job's ``message`` is a header and the
  last 10 lines of the job's output (at most 20,000 characters).
- ``POST /api/jobs/<id>/stop``: 200 ``{"stopped": true}``, or ``{"stopped": false}``
  for a job already finished; the job then goes STOPPED ("Job was intentionally
  stopped.") within a second or two.

The tests run in real time (a Ray job takes a second or more to start), on a short
schedule and with a deadline per job. Each submits its own jobs with ids of its own.
"""

from __future__ import annotations

import asyncio
import shlex
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from conftest import REAL_TIME_BACKENDS
from servers.ray_jobs import START_TIMEOUT, RayHead, ray_head

import asyncpoll
from asyncpoll import JobCancelled, JobFailed, JobHandle, JobState
from asyncpoll._redact import printable

__all__ = ["ray_head"]  # the session fixture, imported for the tests here

# The head node's start-up (START_TIMEOUT at most) counts against the first test using
# it, whichever test that is (run alone with -k, say).
pytestmark = [pytest.mark.anyio, pytest.mark.timeout(START_TIMEOUT + 60)]

#: Poll soon after a job starts, then at most every half second.
SCHEDULE = asyncpoll.backoff(initial=0.1, max=0.5)
#: Each job's deadline: far beyond what any job here takes (a few seconds).
TIMEOUT = 30.0
#: Ray's texts.
PENDING_MESSAGE = "Job has not started yet."
RUNNING_MESSAGE = "Job is currently running."
SUCCEEDED_MESSAGE = "Job finished successfully."
STOPPED_MESSAGE = "Job was intentionally stopped."
LOGS_HEADER = "last available logs (truncated to 20,000 chars):\n"


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    """Real time on asyncio (a test may ask for trio too): Ray's jobs take real seconds."""
    return getattr(request, "param", ("asyncio", {"loop_factory": asyncio.new_event_loop}))


def python(code: str) -> str:
    """A shell command running ``code`` with this interpreter (Ray runs an entrypoint
    with the shell)."""
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def new_id(kind: str) -> str:
    """A submission id of this test's own."""
    return f"asyncpoll-{kind}-{uuid.uuid4().hex[:12]}"


def poller(head: RayHead, **options: Any) -> asyncpoll.TaskPoller:
    """A poller of the head node's jobs: default reader and transport, short schedule."""
    options.setdefault("schedule", SCHEDULE)
    options.setdefault("timeout", TIMEOUT)
    return asyncpoll.TaskPoller(f"{head.url}/api/jobs/{{job_id}}", **options)


def recorder(seen: list[tuple[JobState, str, str]]) -> Callable[[JobHandle], None]:
    """An ``on_progress`` callback recording (asyncpoll's state, Ray's word, Ray's
    message) at each change."""

    def record(handle: JobHandle) -> None:
        status = handle.status
        assert status is not None
        seen.append((status.state, status.raw["status"], status.raw["message"]))

    return record


#: What a live Ray job says, as asyncpoll reads it.
LIVE = {
    "PENDING": (JobState.PENDING, "PENDING", PENDING_MESSAGE),
    "RUNNING": (JobState.RUNNING, "RUNNING", RUNNING_MESSAGE),
}


def assert_live_changes(seen: list[tuple[JobState, str, str]]) -> None:
    """The changes seen before the end were Ray's live states, in order, each once."""
    assert seen in ([], [LIVE["PENDING"]], [LIVE["RUNNING"]], [LIVE["PENDING"], LIVE["RUNNING"]])


async def ray_status(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """Ray's status body for ``job_id``, read without asyncpoll."""
    response = await client.get(f"/api/jobs/{job_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def ray_final_status(client: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    """Ray's status body once the job is no longer live (within 15 s)."""
    with anyio.fail_after(15):
        while True:
            body = await ray_status(client, job_id)
            if body["status"] not in ("PENDING", "RUNNING"):
                return body
            await anyio.sleep(0.1)


async def ray_logs(client: httpx.AsyncClient, job_id: str) -> list[str]:
    """The lines of the job's output as Ray keeps it (Ray's own lines first)."""
    response = await client.get(f"/api/jobs/{job_id}/logs")
    assert response.status_code == 200, response.text
    logs: str = response.json()["logs"]
    return logs.splitlines()


async def running(handle: JobHandle, event: anyio.Event) -> None:
    """Wait (15 s at most) until the poller saw the job RUNNING."""
    with anyio.fail_after(15):
        await event.wait()
    assert handle.state is JobState.RUNNING


def on_running(event: anyio.Event) -> Callable[[JobHandle], None]:
    def progressed(handle: JobHandle) -> None:
        if handle.state is JobState.RUNNING:
            event.set()

    return progressed


# ------------------------------------------------------------------ success


@pytest.mark.parametrize("anyio_backend", REAL_TIME_BACKENDS, indirect=True)
async def test_a_submitted_job_that_exits_0_resolves_with_rays_succeeded_body(
    ray_head: RayHead,
) -> None:
    """submit() finds the job's id in Ray's create answer and polls it; the handle
    resolves with Ray's whole status body (it has no result field): SUCCEEDED, exit 0."""
    job_id = new_id("ok")
    entrypoint = python("print('hello from ray')")
    seen: list[tuple[JobState, str, str]] = []
    async with (
        httpx.AsyncClient(base_url=ray_head.url) as ray,
        poller(ray_head, on_progress=recorder(seen)) as p,
    ):
        handle = await p.submit(
            f"{ray_head.url}/api/jobs/", json={"entrypoint": entrypoint, "submission_id": job_id}
        )
        create = handle.last_response
        assert create is not None
        assert (create.status_code, create.json()) == (
            200,
            {"job_id": job_id, "submission_id": job_id},
        )
        assert handle.job_id == job_id
        body = await handle
        logs = await ray_logs(ray, job_id)
    assert handle.state is JobState.SUCCEEDED
    assert_live_changes(seen)
    assert body["type"] == "SUBMISSION"
    assert (body["submission_id"], body["entrypoint"]) == (job_id, entrypoint)
    assert (body["status"], body["message"]) == ("SUCCEEDED", SUCCEEDED_MESSAGE)
    assert (body["driver_exit_code"], body["error_type"]) == (0, None)
    assert body["start_time"] <= body["end_time"]
    assert handle.status is not None and handle.status.raw == body
    assert logs[-2:] == [f"Running entrypoint for job {job_id}: {entrypoint}", "hello from ray"]


# ------------------------------------------------------------------ failure

#: A job failing 81 calls deep in a recursive parser, written the way generated code
#: is (long lines). Ray's message holds the last 10 lines of a job's output: here the
#: last three frames of the traceback (each a location, its source line and Python's
#: carets under the call) and the ValueError, some 1,400 characters in all.
_ARGS = "depth=depth - 1, strict=strict, schema=schema, on_error=on_error, trace=trace"
_PARAMS = 'document, path, depth, strict=True, schema=None, on_error="raise", trace=None'
DEEP_FAILURE = f"""\
# A job that fails 81 calls deep in a recursive parser (asyncpoll's Ray Jobs tests).


def parse_document_section({_PARAMS}):
    if depth == 0:
        raise ValueError("bad input: expected a mapping of column names to types, got a list")
    return parse_document_subsection(document, path=f"{{path}}.sections[{{depth}}]", {_ARGS})


def parse_document_subsection({_PARAMS}):
    return parse_document_section(document, path=f"{{path}}.subsections[{{depth}}]", {_ARGS})


parse_document_section({{}}, path="document", depth=80)
"""


async def test_a_failing_job_raises_jobfailed_keeping_the_head_and_the_last_line_of_rays_message(
    ray_head: RayHead,
) -> None:
    """Ray's message for a failed job ends with the last lines of its output: JobFailed's
    text keeps the message's beginning and its last line (the exception) and leaves out
    the middle; the status holds the whole message."""
    job_id = new_id("fail")
    script = ray_head.folder / "deep_failure.py"  # Ray runs on this machine
    script.write_text(DEEP_FAILURE)
    entrypoint = f"{shlex.quote(sys.executable)} {shlex.quote(str(script))}"
    async with httpx.AsyncClient(base_url=ray_head.url) as ray, poller(ray_head) as p:
        handle = await p.submit(
            f"{ray_head.url}/api/jobs/", json={"entrypoint": entrypoint, "submission_id": job_id}
        )
        with pytest.raises(JobFailed) as caught:
            await handle
        logs = await ray_logs(ray, job_id)
    exc = caught.value
    body = exc.status.raw
    message = body["message"]
    last_line = "ValueError: bad input: expected a mapping of column names to types, got a list"
    # What Ray said: its header, then the last 10 lines of the job's output.
    assert (body["status"], body["error_type"], body["driver_exit_code"]) == (
        "FAILED",
        "JOB_ENTRYPOINT_COMMAND_ERROR",
        1,
    )
    assert logs[-1] == last_line
    assert logs.count("Traceback (most recent call last):") == 1
    assert sum(f'"{script}", line ' in line for line in logs) == 82  # <module> + 81 calls
    assert message == (
        f"Job entrypoint command failed with exit code 1, {LOGS_HEADER}"
        + "\n".join(logs[-10:])
        + "\n"
    )
    assert len(message) > 1300
    # What asyncpoll made of it.
    assert (handle.state, exc.job_id) == (JobState.FAILED, job_id)
    assert exc.status.state is JobState.FAILED
    assert exc.status.error == message
    text = str(exc)
    # One line: the server's line breaks are escaped (\n), none can start a log line.
    assert text.startswith(f"job {job_id!r} failed: {printable(message[:200])}")
    assert "\n" not in text
    assert text.endswith(last_line)
    # Shortened (the contract: a text over ~1000 characters keeps its beginning and end).
    assert len(text) <= 1200
    assert exc.error == message  # type: ignore[attr-defined]


# ------------------------------------------------------------------ stopped


async def test_cancel_remote_posts_rays_stop_and_the_job_ends_cancelled_and_stopped(
    ray_head: RayHead,
) -> None:
    """cancel_remote() with cancel_method="POST" and Ray's stop URL stops a running
    job: the handle resolves CANCELLED at once, Ray says STOPPED and the entrypoint's
    process is gone."""
    job_id = new_id("cancel")
    token = uuid.uuid4().hex
    entrypoint = python(f"import time; time.sleep(300)  # {token}")
    is_running = anyio.Event()
    async with (
        httpx.AsyncClient(base_url=ray_head.url) as ray,
        poller(
            ray_head,
            cancel_method="POST",
            cancel_url=f"{ray_head.url}/api/jobs/{{job_id}}/stop",
            on_progress=on_running(is_running),
        ) as p,
    ):
        handle = await p.submit(
            f"{ray_head.url}/api/jobs/", json={"entrypoint": entrypoint, "submission_id": job_id}
        )
        await running(handle, is_running)
        assert await handle.cancel_remote() is True
        assert handle.state is JobState.CANCELLED
        with pytest.raises(JobCancelled) as caught:
            await handle
        body = await ray_final_status(ray, job_id)
    assert caught.value.reason == "cancelled on the server at the caller's request"
    assert (body["status"], body["message"]) == ("STOPPED", STOPPED_MESSAGE)
    assert (body["driver_exit_code"], body["error_type"]) == (None, None)
    with anyio.fail_after(10):  # Ray sends SIGTERM, then SIGKILL after a grace period
        while True:
            if not any(token in args for args in ray_head.processes().values()):
                break
            await anyio.sleep(0.1)


async def test_a_job_stopped_by_another_client_ends_cancelled_well_before_its_deadline(
    ray_head: RayHead,
) -> None:
    """A job stopped through Ray's API by someone else, while asyncpoll polls it, ends
    CANCELLED (Ray's STOPPED) with Ray's message as the reason, soon after the stop."""
    job_id = new_id("stopped")
    is_running = anyio.Event()
    timeout = 40.0  # roomy: a loaded 2-core machine can be slow to start the job
    async with (
        httpx.AsyncClient(base_url=ray_head.url) as ray,
        poller(ray_head, timeout=timeout, on_progress=on_running(is_running)) as p,
    ):
        handle = await p.submit(
            f"{ray_head.url}/api/jobs/",
            json={"entrypoint": python("import time; time.sleep(300)"), "submission_id": job_id},
        )
        await running(handle, is_running)
        stop = await ray.post(f"/api/jobs/{job_id}/stop")
        stopped_at = time.monotonic()
        assert (stop.status_code, stop.json()) == (200, {"stopped": True})
        with pytest.raises(JobCancelled) as caught:
            await handle
        took = time.monotonic() - stopped_at
        again = await ray.post(f"/api/jobs/{job_id}/stop")
    assert took < timeout / 2  # Ray says STOPPED within a second or three
    assert handle.state is JobState.CANCELLED
    assert caught.value.reason == f"cancelled on the server: {STOPPED_MESSAGE}"
    assert handle.status is not None
    assert (handle.status.raw["status"], handle.status.error) == ("STOPPED", STOPPED_MESSAGE)
    # Stopping it again is refused in the body, with a 200.
    assert (again.status_code, again.json()) == (200, {"stopped": False})


# ------------------------------------------------------------------ several at once


async def test_four_jobs_at_once_each_end_as_ray_says_none_near_its_deadline(
    ray_head: RayHead,
) -> None:
    """Four jobs submitted together (ids made by Ray), three succeeding and one exiting
    3, each end in their own state, all well before their deadlines."""
    entrypoints = [
        *(python(f"import time; time.sleep(0.5); print('job {n} done')") for n in range(3)),
        python("import sys; print('giving up'); sys.exit(3)"),
    ]
    began = time.monotonic()
    async with httpx.AsyncClient(base_url=ray_head.url) as ray, poller(ray_head) as p:
        handles: list[JobHandle] = []
        creates: list[asyncpoll.Response | None] = []
        for entrypoint in entrypoints:
            handle = await p.submit(f"{ray_head.url}/api/jobs/", json={"entrypoint": entrypoint})
            creates.append(handle.last_response)  # before any poll: the create answer
            handles.append(handle)
        outcomes = await p.gather(*handles, return_exceptions=True)
        took = time.monotonic() - began
        logs = [await ray_logs(ray, handle.job_id) for handle in handles]
        stats = p.statistics()
    ids = [handle.job_id for handle in handles]
    assert len(set(ids)) == 4 and all(job_id.startswith("raysubmit_") for job_id in ids)
    assert [(c.status_code, c.json()) if c else None for c in creates] == [
        (200, {"job_id": job_id, "submission_id": job_id}) for job_id in ids
    ]
    assert [handle.state for handle in handles] == [JobState.SUCCEEDED] * 3 + [JobState.FAILED]
    for n, body in enumerate(outcomes[:3]):
        assert isinstance(body, dict)
        assert (body["submission_id"], body["status"], body["message"]) == (
            ids[n],
            "SUCCEEDED",
            SUCCEEDED_MESSAGE,
        )
        assert body["driver_exit_code"] == 0
        assert logs[n][-1] == f"job {n} done"
    failed = outcomes[3]
    assert isinstance(failed, JobFailed)
    assert failed.status.raw["driver_exit_code"] == 3
    assert failed.status.error == failed.status.raw["message"]
    assert failed.status.error.startswith(
        f"Job entrypoint command failed with exit code 3, {LOGS_HEADER}"
    )
    assert failed.status.error.rstrip("\n").splitlines()[-1] == "giving up"
    short = printable(failed.status.error.rstrip())  # short: whole, on one line
    assert str(failed) == f"job {ids[3]!r} failed: {short}"
    assert logs[3][-1] == "giving up"
    assert (stats.finished[JobState.SUCCEEDED], stats.finished[JobState.FAILED]) == (3, 1)
    assert (stats.transient_errors, stats.throttled) == (0, 0)
    assert took < TIMEOUT / 2
