"""asyncpoll.testing: the fake job API, polled by a default TaskPoller.

In process (``api.client()``, virtual time: the API's clock is ``anyio.current_time``),
every shape is created, polled, failed and cancelled, with exact request counts and
times from the API's own log; then faults, the rate limit and auth; then the API served
on loopback (real time, tiny durations); then the pytest plugin.
"""

from __future__ import annotations

import json
import pathlib
import re
import subprocess
import sys
import threading
import time
from typing import Any

import anyio
import httpx
import pytest
from conftest import REAL_TIME_BACKENDS

import asyncpoll
from asyncpoll import JobState
from asyncpoll.testing import (
    BASE_URL,
    SHAPES,
    ConnectionDropped,
    FakeJob,
    FakeJobAPI,
    RecordedRequest,
    serve,
)

pytest_plugins = ["pytester"]

pytestmark = pytest.mark.anyio

EVERY_SECOND = asyncpoll.fixed(1.0)

#: The ``@type`` of the fake Google operation's response.
GOOGLE_RESPONSE_TYPE = "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeResponse"


def make_api(shape: str = "status", **options: Any) -> FakeJobAPI:
    """A fake API on the event loop's clock: 2 s pending, then 5 s running."""
    options.setdefault("duration", 5.0)
    options.setdefault("pending", 2.0)
    options.setdefault("seed", 1)
    return FakeJobAPI(shape, clock=anyio.current_time, **options)


def poller(api: FakeJobAPI, client: httpx.AsyncClient, **options: Any) -> asyncpoll.TaskPoller:
    """A default TaskPoller for the API's shape, polling every virtual second."""
    options.setdefault("schedule", EVERY_SECOND)
    return asyncpoll.TaskPoller(client=client, **api.poller_options(), **options)


async def create(
    api: FakeJobAPI, client: httpx.AsyncClient, p: asyncpoll.TaskPoller, body: Any
) -> asyncpoll.JobHandle:
    """Create a job the shape's way and poll it: submit(), or for GitHub a dispatch, then
    the newest run from the run list (a dispatch answers 204 with no id); a Google
    operation's ``name`` and an Argo workflow's ``metadata.name`` are fields submit()
    does not look for, so those are created with the client and added."""
    shape = api.shape.name
    if shape in ("google", "argo"):
        created = (await client.post(api.shape.create_url, json=body)).json()
        return p.add(created["name"] if shape == "google" else created["metadata"]["name"])
    if shape != "github":
        return await p.submit(api.shape.create_url, json=body)
    dispatched = await client.post(api.shape.create_url, json=body)
    assert dispatched.status_code == 204
    runs = (await client.get("/repos/acme/app/actions/runs")).json()
    return p.add(str(runs["workflow_runs"][0]["id"]))


#: Shapes whose jobs are created with the client, not submit().
MANUAL = ("github", "google", "argo")

#: Jenkins' builds have no page while queued: it has its own tests.
POLLED_FROM_CREATION = [s for s in SHAPES if s != "jenkins"]


def check_result(api: FakeJobAPI, job: FakeJob, body: Any, result: Any) -> None:
    """``result`` is what a succeeded job's handle resolves to in the API's shape."""
    shape = api.shape.name
    if shape == "location":  # the 303's Location
        assert result == f"{BASE_URL}/v1/jobs/{job.id}/result"
    elif shape == "pages":  # the result_urls
        pages = range(1, job.total_pages + 1)
        assert result == [f"{BASE_URL}/v1/documents/{job.id}/pages/{n}" for n in pages]
    elif shape == "ray":  # the whole job record
        assert (result["status"], result["submission_id"]) == ("SUCCEEDED", job.id)
    elif shape == "github":  # the whole run
        assert (result["status"], result["conclusion"]) == ("completed", "success")
        assert result["id"] == int(job.id)
    elif shape == "prefect":  # the whole flow run (results live in result storage)
        assert (result["id"], result["state"]["type"]) == (job.id, "COMPLETED")
    elif shape == "airflow":  # the whole DAG run
        assert (result["dag_run_id"], result["state"]) == (job.id, "success")
    elif shape == "azure":  # the monitor's resourceLocation
        assert result == f"{BASE_URL}/conversions/{job.id}?api-version=2023-03-01-preview"
    elif shape == "google":  # the operation's response
        assert result == {"@type": GOOGLE_RESPONSE_TYPE, "job_id": job.id, "input": body}
    elif shape == "openai":  # the whole batch
        assert (result["id"], result["status"]) == (job.id, "completed")
        assert result["output_file_id"] == f"file-{job.id}"
    elif shape == "argo":  # the whole workflow
        assert (result["metadata"]["name"], result["status"]["phase"]) == (job.id, "Succeeded")
        assert result["status"]["progress"] == "2/2"
    elif shape == "jenkins":  # the whole build
        assert (result["number"], result["result"]) == (int(job.id), "SUCCESS")
    else:  # the result field: replicate's output, rq's result, ...
        assert result == {"job_id": job.id, "input": body}


# ---------------------------------------------------------------- every shape


@pytest.mark.parametrize("shape", POLLED_FROM_CREATION)
async def test_every_shape_succeeds_with_the_default_reader(shape: str) -> None:
    """A job pending 2 s and running 5 s is polled at 0..7 s and resolves to its result."""
    api = make_api(shape)
    body = {"scene": 1}
    async with api.client() as client, poller(api, client) as p:
        handle = await create(api, client, p, body)
        result = await handle
        done_at = anyio.current_time()
    job = api.job(handle.job_id)
    assert (job.created_at, job.starts_at, job.finishes_at) == (0.0, 2.0, 7.0)
    assert (job.outcome, job.finished_at) == ("succeeded", 7.0)
    check_result(api, job, body, result)
    assert done_at == 7.0
    status_path = api.shape.status_url.split("?")[0].format(job_id=handle.job_id)
    polls = api.find("GET", status_path)
    assert [r.time for r in polls] == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert {r.status_code for r in polls} == ({200, 303} if shape == "location" else {200})
    assert api.times(handle.job_id) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    creates = api.find("POST", api.shape.create_url.split("?")[0])
    assert len(creates) == 1
    assert creates[0].json == body
    assert creates[0].job_id == handle.job_id
    extra = 1 if shape == "github" else 0  # the run list
    assert api.count() == 1 + 8 + extra
    assert p.statistics().requests == 1 + 8 - (1 if shape in MANUAL else 0)


#: The shapes whose failed jobs carry no error text, and what JobFailed says instead.
NO_ERROR_TEXT = {"airflow": "the server gave no error text"}


@pytest.mark.parametrize("shape", [s for s in POLLED_FROM_CREATION if s != "github"])
async def test_every_shape_reports_failures(shape: str) -> None:
    """With failure_rate=1 every job fails, and JobFailed quotes the API's error text
    (an Airflow DAG run carries none, and JobFailed says so)."""
    api = make_api(shape, failure_rate=1.0, pending=0.0, duration=2.0)
    async with api.client() as client, poller(api, client) as p:
        handle = await create(api, client, p, None)
        with pytest.raises(asyncpoll.JobFailed) as caught:
            await handle
        assert anyio.current_time() == 2.0
    expected = NO_ERROR_TEXT.get(shape, f"simulated failure of job {handle.job_id}")
    assert expected in str(caught.value)
    assert api.job(handle.job_id).outcome == "failed"


async def test_a_github_run_that_fails_ends_with_its_conclusion() -> None:
    """A failed run is read from its conclusion: JobFailed says "conclusion 'failure'"."""
    api = make_api("github", failure_rate=1.0)
    async with api.client() as client, poller(api, client) as p:
        handle = await create(api, client, p, None)
        with pytest.raises(asyncpoll.JobFailed, match="conclusion 'failure'"):
            await handle


#: How a cancel 3 s into a running job ends, where it is not at once and cancelled: the
#: handle's state, what the cancel answered, and when the job ended on the server.
CANCELS: dict[str, tuple[JobState, int, float]] = {
    # set_state CANCELLING (201): the run is CANCELLING, then CANCELLED a second later.
    "prefect": (JobState.CANCELLED, 201, 4.0),
    # Airflow has no cancelled state: PATCH {"state": "failed"} ends the run failed.
    "airflow": (JobState.FAILED, 200, 3.0),
    # An OpenAI batch is cancelling, then cancelled.
    "openai": (JobState.CANCELLED, 200, 4.0),
    # argo stop ends the workflow Failed, "Stopped with strategy 'Stop'".
    "argo": (JobState.FAILED, 200, 3.0),
}


@pytest.mark.parametrize("shape", POLLED_FROM_CREATION)
async def test_every_shape_cancels_on_the_server(shape: str) -> None:
    """cancel_remote() 3 s in sends the shape's cancel request, and the job ends as the
    system ends it: cancelled for most, failed for Airflow and Argo."""
    api = make_api(shape)
    state, code, ended = CANCELS.get(shape, (JobState.CANCELLED, 0, 3.0))
    async with api.client() as client, poller(api, client) as p:
        handle = await create(api, client, p, {"n": 1})
        await anyio.sleep(3.0)
        assert handle.state is JobState.RUNNING
        assert await handle.cancel_remote() is (state is JobState.CANCELLED)
        with pytest.raises(
            asyncpoll.JobCancelled if state is JobState.CANCELLED else asyncpoll.JobFailed
        ):
            await handle
    job = api.job(handle.job_id)
    outcome = "failed" if shape == "airflow" else "cancelled"
    assert (job.outcome, job.finished_at) == (outcome, ended)
    (cancel,) = api.find(
        api.shape.cancel_method, api.shape.cancel_url.split("?")[0].format(job_id=handle.job_id)
    )
    assert cancel.time == 3.0
    assert cancel.status_code is not None and 200 <= cancel.status_code < 300
    if code:
        assert cancel.status_code == code
    assert cancel.json == api.shape.cancel_json
    assert cancel.job_id == handle.job_id


async def test_cancelling_a_finished_job_is_refused() -> None:
    """A cancel after the job ended is answered 409; the handle keeps its result."""
    api = make_api("status", pending=0.0, duration=1.0)
    async with api.client() as client, poller(api, client, schedule=asyncpoll.fixed(10.0)) as p:
        handle = await create(api, client, p, 7)
        await anyio.sleep(2.0)
        assert await handle.cancel_remote() is False
        assert await handle == {"job_id": "job-1", "input": 7}
    assert [r.status_code for r in api.find("DELETE")] == [409]
    assert api.job("job-1").outcome == "succeeded"


async def test_location_results_are_fetched_after_the_303() -> None:
    """With fetch_result=True, the 303's Location is fetched: the result document."""
    api = make_api("location", pending=0.0, duration=1.5)
    async with api.client() as client, poller(api, client, fetch_result=True) as p:
        handle = await create(api, client, p, {"scene": 3})
        assert await handle == {"job_id": "1", "input": {"scene": 3}}
    assert [(r.time, r.path, r.status_code) for r in api.find("GET")] == [
        (0.0, "/v1/jobs/1", 200),
        (1.0, "/v1/jobs/1", 200),
        (2.0, "/v1/jobs/1", 303),
        (2.0, "/v1/jobs/1/result", 200),
    ]


# ---------------------------------------------------------------- the job systems' details


def queue_item(response: asyncpoll.Response) -> asyncpoll.Status:
    """A Jenkins queue item, read as in docs/job-systems.md: done once it names its build."""
    item = response.json()
    if item.get("cancelled"):
        return asyncpoll.Status(JobState.CANCELLED, error=item.get("why"))
    if item.get("executable"):
        return asyncpoll.Status(JobState.SUCCEEDED, result=item["executable"]["url"])
    return asyncpoll.Status(JobState.PENDING)


async def jenkins_build(
    api: FakeJobAPI, client: httpx.AsyncClient, p: asyncpoll.TaskPoller
) -> asyncpoll.JobHandle:
    """Trigger a build (201 with the queue item's URL), wait for the queue item to name
    the build, and poll the build."""
    queued = await client.post(api.shape.create_url, params={"ENV": "staging"})
    assert queued.status_code == 201
    item = queued.headers["Location"]
    async with asyncpoll.TaskPoller(client=client, reader=queue_item, schedule=EVERY_SECOND) as q:
        build = await q.add(item.rstrip("/").rsplit("/", 1)[1], url=item + "api/json")
    assert build == f"{BASE_URL}/job/deploy/1/"
    return p.add(build.rstrip("/").rsplit("/", 1)[1])


async def test_a_jenkins_build_leaves_the_queue_then_succeeds() -> None:
    """The queue item names build 1 at 2 s (its page is 404 until then); the build is
    polled 2..7 s and resolves to the whole build; its console has the result."""
    api = make_api("jenkins")
    async with api.client() as client, poller(api, client) as p:
        handle = await jenkins_build(api, client, p)
        build = await handle
        assert anyio.current_time() == 7.0
        console = await client.get(api.shape.result_url.format(job_id="1"))
    job = api.job("1")
    check_result(api, job, None, build)
    assert (build["building"], build["duration"], build["queueId"]) == (False, 5000, 1731)
    assert [r.time for r in api.find("GET", "/queue/item/1731/api/json")] == [0.0, 1.0, 2.0]
    polls = api.find("GET", "/job/deploy/1/api/json")
    assert [r.time for r in polls] == [2.0, 3.0, 4.0, 5.0, 6.0, 7.0]
    assert console.text.endswith("Finished: SUCCESS\n")
    assert '{"job_id": "1", "input": null}' in console.text


async def test_a_jenkins_build_that_fails_names_its_result() -> None:
    """A failed build carries no error text: JobFailed names "result 'FAILURE'"."""
    api = make_api("jenkins", failure_rate=1.0)
    async with api.client() as client, poller(api, client) as p:
        handle = await jenkins_build(api, client, p)
        with pytest.raises(asyncpoll.JobFailed, match="result 'FAILURE'"):
            await handle


async def test_a_jenkins_stop_answers_302_and_aborts_the_build() -> None:
    """stop answers 302 Found to the build's page, which cancel_remote() takes as
    accepted; the build ends ABORTED: the handle is cancelled."""
    api = make_api("jenkins")
    async with api.client() as client, poller(api, client) as p:
        handle = await jenkins_build(api, client, p)
        await anyio.sleep(1.0)
        assert await handle.cancel_remote() is True
        with pytest.raises(asyncpoll.JobCancelled):
            await handle
        build = (await client.get(api.shape.status_url.format(job_id="1"))).json()
    assert (build["result"], build["building"]) == ("ABORTED", False)
    (stop,) = api.find("POST", "/job/deploy/1/stop")
    assert (stop.time, stop.status_code) == (3.0, 302)
    assert api.job("1").finished_at == 3.0


async def test_winding_down_systems_report_their_cancelling_state() -> None:
    """Prefect's run is CANCELLING and OpenAI's batch cancelling for a second after the
    cancel, then CANCELLED and cancelled; Replicate's prediction is canceled at once."""
    api = {name: make_api(name, pending=0.0) for name in ("prefect", "openai", "replicate")}
    docs: dict[str, list[Any]] = {}
    for name, fake in api.items():
        async with fake.client() as client:
            created = (await client.post(fake.shape.create_url, json={})).json()
            url = fake.shape.status_url.format(job_id=created["id"])
            await anyio.sleep(1.0)
            cancel = fake.shape.cancel_url.format(job_id=created["id"])
            assert (await client.post(cancel, json=fake.shape.cancel_json)).is_success
            seen = []
            for _ in range(2):
                doc = (await client.get(url)).json()
                seen.append(doc["state"]["type"] if name == "prefect" else doc["status"])
                await anyio.sleep(1.0)
            docs[name] = seen
    assert docs == {
        "prefect": ["CANCELLING", "CANCELLED"],
        "openai": ["cancelling", "cancelled"],
        "replicate": ["canceled", "canceled"],
    }


async def test_the_job_systems_documents_as_they_go() -> None:
    """Each new system's document while a job is queued, half done and cancelled."""
    words: dict[str, list[Any]] = {}
    for name in ("airflow", "azure", "google", "openai", "argo", "rq"):
        fake = make_api(name, duration=4.0)
        job = fake.add_job()
        url = fake.shape.status_url.format(job_id=job.id)
        seen: list[Any] = []
        async with fake.client() as client:
            for at in (1.0, 4.0):  # queued for 2 s, then 2 s into 4 s of running
                await anyio.sleep_until(job.created_at + at)
                doc = (await client.get(url)).json()
                seen.append(
                    {
                        "airflow": lambda d: d["state"],
                        "azure": lambda d: d["status"],
                        "google": lambda d: (d.get("done"), d["metadata"].get("progressPercent")),
                        "openai": lambda d: (d["status"], d["request_counts"]["completed"]),
                        "argo": lambda d: (d["status"]["phase"], d["status"]["progress"]),
                        "rq": lambda d: (d["status"], d["progress"]),
                    }[name](doc)
                )
            fake._store.cancel(job.id, anyio.current_time())  # ended at once, as a stop does
            doc = (await client.get(url)).json()
            seen.append(
                {
                    "airflow": lambda d: d["state"],
                    "azure": lambda d: (d["status"], d["error"]["code"]),
                    "google": lambda d: (d["done"], d["error"]["code"]),
                    "openai": lambda d: d["status"],
                    "argo": lambda d: (d["status"]["phase"], d["status"]["message"]),
                    "rq": lambda d: d["status"],
                }[name](doc)
            )
        words[name] = seen
    assert words == {
        "airflow": ["queued", "running", "failed"],
        "azure": ["NotStarted", "Running", ("Canceled", "Canceled")],
        "google": [(None, None), (None, 50), (True, 1)],
        "openai": [("validating", 0), ("in_progress", 15), "cancelled"],
        "argo": [
            ("Pending", "0/2"),
            ("Running", "1/2"),
            ("Failed", "Stopped with strategy 'Stop'"),
        ],
        "rq": [("queued", None), ("started", 50), "stopped"],
    }


async def test_result_documents_of_the_job_systems() -> None:
    """Azure's resourceLocation, Airflow's return_value XCom and OpenAI's output file
    hold a succeeded job's result; before that they are 404."""
    body = {"n": 7}
    found = {}
    for name in ("azure", "airflow", "openai"):
        fake = make_api(name, pending=0.0, duration=1.0)
        async with fake.client() as client:
            created = await client.post(fake.shape.create_url, json=body)
            job_id = next(iter(fake.jobs))
            assert created.is_success
            url = fake.shape.result_url.format(job_id=job_id)
            early = await client.get(url)
            await anyio.sleep(1.0)
            late = await client.get(url)
        assert early.status_code in (404, 409)
        found[name] = late.json() if name != "openai" else json.loads(late.text)
        expected = {"job_id": job_id, "input": body}
        if name == "airflow":
            assert found[name]["value"] == expected
        elif name == "openai":
            assert found[name]["response"] == {"status_code": 200, "body": expected}
        else:
            assert found[name] == expected


async def test_progress_grows_while_a_job_runs() -> None:
    """Progress is 0 while pending, then grows linearly over the running time."""
    api = make_api("bearer", token=None, pending=1.0, duration=4.0)
    job = api.add_job(duration=4.0)
    seen: list[tuple[float, Any]] = []
    async with api.client() as client:
        for _ in range(7):
            doc = (await client.get(f"/v2/parse/{job.id}")).json()
            seen.append((anyio.current_time(), doc["status"], doc["progress"]["processed_pages"]))
            await anyio.sleep(1.0)
    pages = job.total_pages
    assert seen == [
        (0.0, "queued", 0),
        (1.0, "processing", 0),
        (2.0, "processing", int(pages * 0.25)),
        (3.0, "processing", int(pages * 0.5)),
        (4.0, "processing", int(pages * 0.75)),
        (5.0, "completed", pages),
        (6.0, "completed", pages),
    ]


async def test_the_handle_sees_progress() -> None:
    """The default reader reads the status shape's percentage: 0.2, 0.4, ... while running."""
    api = make_api("status", pending=0.0, duration=5.0)
    seen: list[tuple[float, float | None]] = []

    def moved(handle: asyncpoll.JobHandle) -> None:
        seen.append((anyio.current_time(), handle.progress))

    async with api.client() as client, poller(api, client, on_progress=moved) as p:
        await create(api, client, p, None)
    assert seen[:4] == [(1.0, 0.2), (2.0, 0.4), (3.0, 0.6), (4.0, 0.8)]


async def test_detection_delay_from_the_job_views() -> None:
    """api.jobs gives when each job ended on the server; polled every second, a job that
    ends at 2.5 s is seen at 3 s."""
    api = make_api("status", pending=0.0, duration=2.5)
    detected: dict[str, float] = {}

    def done(handle: asyncpoll.JobHandle) -> None:
        detected[handle.job_id] = anyio.current_time()

    async with api.client() as client, poller(api, client, on_done=done) as p:
        for _ in range(3):
            p.add(api.add_job().id)
    delays = {job_id: detected[job_id] - job.finished_at for job_id, job in api.jobs.items()}
    assert delays == {"job-1": 0.5, "job-2": 0.5, "job-3": 0.5}


# ---------------------------------------------------------------- jobs and draws


def test_a_seed_gives_the_same_jobs() -> None:
    """Two APIs with one seed make the same jobs (durations, outcomes, ids), in any shape."""

    def jobs(shape: str) -> list[tuple[float, str, int]]:
        api = FakeJobAPI(shape, seed=42, duration=(1.0, 9.0), failure_rate=0.5)
        made = [api.add_job(at=0.0) for _ in range(20)]
        return [(j.finishes_at, j.outcome, j.total_pages) for j in made]

    assert jobs("status") == jobs("status") == jobs("celery")
    assert {outcome for _, outcome, _ in jobs("status")} == {"succeeded", "failed"}
    assert all(1.0 <= t <= 9.0 for t, _, _ in jobs("ray"))
    celery = [FakeJobAPI("celery", seed=3).add_job(at=0.0).id for _ in range(2)]
    assert celery[0] == celery[1] and len(celery[0]) == 36


def test_durations_from_a_callable_and_overrides() -> None:
    """duration= may be a function of the API's Random; add_job() overrides draws."""
    api = FakeJobAPI(duration=lambda rng: 10.0 + rng.random(), pending=(0.5, 0.5), seed=1)
    first = api.add_job(at=100.0)
    assert first.starts_at == 100.5 and 110.5 < first.finishes_at < 111.5
    second = api.add_job("mine", at=0.0, duration=3.0, pending=0.0, fail=True, input={"a": 1})
    assert (second.id, second.finishes_at, second.outcome) == ("mine", 3.0, "failed")
    assert [second.phase(t) for t in (0.0, 2.9, 3.0)] == ["running", "running", "failed"]
    with pytest.raises(ValueError, match="already has a job 'mine'"):
        api.add_job("mine", at=0.0)


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"shape": "soap"}, ValueError),
        ({"failure_rate": 1.5}, ValueError),
        ({"error_rate": 0.6, "drop_rate": 0.6}, ValueError),
        ({"duration": -1.0}, ValueError),
        ({"duration": (5.0, 1.0)}, ValueError),
        ({"duration": "5"}, TypeError),
        ({"slow_seconds": -1}, ValueError),
        ({"flaky_methods": "GET"}, TypeError),
        ({"rate_limit": "fast"}, TypeError),
    ],
)
def test_bad_options_are_refused(options: dict[str, Any], error: type[Exception]) -> None:
    """Options that cannot work are refused when the API is made."""
    with pytest.raises(error):
        FakeJobAPI(**options)


# ---------------------------------------------------------------- the request log


async def test_the_log_records_each_request() -> None:
    """Each request is logged with its time, method, path, query, headers, body, status."""
    api = make_api("envelope", pending=0.0, duration=1.0)
    async with api.client(headers={"X-Trace": "t-1"}) as client:
        created = await client.post("/api/v1/jobs/createTask", json={"prompt": "a fox"})
        assert created.json() == {"code": 200, "msg": "success", "data": {"taskId": "task-1"}}
        await anyio.sleep(1.0)
        done = (await client.get("/api/v1/jobs/recordInfo", params={"taskId": "task-1"})).json()
        missing = await client.get("/api/v1/jobs/recordInfo", params={"taskId": "nope"})
    assert done["data"]["state"] == "success"
    assert json.loads(done["data"]["resultJson"]) == {
        "job_id": "task-1",
        "input": {"prompt": "a fox"},
    }
    assert missing.status_code == 404
    first, second, third = api.requests
    assert first == RecordedRequest(
        time=0.0,
        method="POST",
        path="/api/v1/jobs/createTask",
        query="",
        headers={},
        json={"prompt": "a fox"},
        status_code=200,
        job_id="task-1",
    )
    assert first.headers["x-trace"] == "t-1"
    assert (second.time, second.query, second.job_id, second.json) == (
        1.0,
        "taskId=task-1",
        "task-1",
        None,
    )
    assert (third.status_code, third.job_id) == (404, "nope")
    assert api.count("GET") == 2 and api.count("post") == 1
    assert api.count(path="/api/v1/jobs/recordInfo", job_id="task-1") == 1
    assert repr(api) == "<FakeJobAPI shape='envelope' jobs=1 requests=3>"


# ---------------------------------------------------------------- faults


async def test_flaky_answers_are_retried() -> None:
    """5xx answers and dropped connections are retried; the poller's counts match the log."""
    api = make_api("status", error_rate=0.25, drop_rate=0.15, pending=0.0, duration=3.0)
    async with (
        api.client() as client,
        poller(api, client, retry_schedule=asyncpoll.fixed(0.5), max_errors=20) as p,
    ):
        handles = [p.add(api.add_job().id) for _ in range(10)]
    assert all(h.state is JobState.SUCCEEDED for h in handles)
    faults = [r.fault for r in api.requests]
    assert faults.count("drop") > 0 and faults.count("error") > 0
    assert p.statistics().transient_errors == faults.count("drop") + faults.count("error")
    assert p.statistics().requests == len(api.requests)
    assert {r.status_code for r in api.requests if r.fault == "drop"} == {None}
    assert {r.status_code for r in api.requests if r.fault == "error"} <= {500, 502, 503}


async def test_a_dropped_connection_is_a_connection_error() -> None:
    """In process, a dropped connection raises httpx.RemoteProtocolError in the client."""
    api = make_api("status", drop_rate=1.0)
    job = api.add_job()
    async with api.client() as client:
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            await client.get(f"/jobs/{job.id}")
        created = await client.post("/jobs")  # faults apply to GETs only, by default
    assert created.status_code == 201
    assert issubclass(ConnectionDropped, httpx.TransportError)


async def test_slow_answers_take_virtual_time() -> None:
    """A slow answer comes slow_seconds late, and reads the job at the time it is sent."""
    api = make_api("status", slow_rate=1.0, slow_seconds=2.0, pending=0.0, duration=1.0)
    async with api.client() as client, poller(api, client) as p:
        handle = p.add(api.add_job().id)
        assert await handle == {"job_id": "job-1", "input": None}
        assert anyio.current_time() == 2.0
    (poll,) = api.requests
    assert (poll.time, poll.fault, poll.status_code) == (0.0, "slow", 200)


async def test_rate_limit_headers() -> None:
    """Over the limit the answer is 429 with Retry-After; every answer has RateLimit-*."""
    api = make_api("status", rate_limit=asyncpoll.RateLimit(2, burst=2))
    job = api.add_job()
    answers = []
    async with api.client() as client:
        for _ in range(3):
            answers.append(await client.get(f"/jobs/{job.id}"))
        await anyio.sleep(0.5)
        answers.append(await client.get(f"/jobs/{job.id}"))

    def limits(r: httpx.Response) -> tuple[Any, ...]:
        h = r.headers
        return (
            r.status_code,
            h.get("retry-after"),
            h["ratelimit-limit"],
            h["ratelimit-remaining"],
            h["ratelimit-reset"],
        )

    assert [limits(r) for r in answers] == [
        (200, None, "2", "1", "0.5"),
        (200, None, "2", "0", "1"),
        (429, "1", "2", "0", "1"),
        (200, None, "2", "0", "1"),
    ]
    assert [r.fault for r in api.requests] == [None, None, "throttled", None]


async def test_the_poller_waits_out_the_rate_limit() -> None:
    """Many jobs behind 2 requests/s: 429s are waited out, never counted as failures."""
    api = make_api(
        "status",
        rate_limit=asyncpoll.RateLimit(2, burst=2),
        rate_limit_headers=False,
        pending=0.0,
        duration=3.0,
    )
    async with api.client() as client, poller(api, client, max_errors=1) as p:
        handles = [p.add(api.add_job().id) for _ in range(6)]
    assert all(h.state is JobState.SUCCEEDED for h in handles)
    throttled = api.count() - sum(1 for r in api.requests if r.status_code == 200)
    assert throttled == p.statistics().throttled > 0
    assert p.statistics().transient_errors == 0
    passed = [r.time for r in api.requests if r.status_code == 200]
    # Never more than burst + rate * t answers in any window of t seconds.
    for i, start in enumerate(passed):
        for j in range(i, len(passed)):
            assert j - i + 1 <= 2 + 2 * (passed[j] - start) + 1e-6


# A regression of either spins at one virtual instant, where no virtual bound can end
# it: pytest-timeout's watchdog ends the run instead, sooner than the default 60 s.
@pytest.mark.timeout(20)
async def test_polls_paced_by_an_empty_budget_end() -> None:
    """5 jobs behind 5 requests/s pass one every 0.2 s, twice each, and end at 1.8 s.

    Regression: from the third answer on, each says ``RateLimit-Remaining: 0`` and
    ``RateLimit-Reset: 0.2``, pausing the host until 0.4 + 0.2 = 0.6000000000000001.
    asyncio runs a timer up to its clock's resolution (1 ns) early, and looptime's clock,
    on a grid of 1 ns steps, read 0.6 when the sleep ended: the host's gate slept again
    for 1e-16 s at 0.6, for ever (trio's MockClock lands on the float itself).
    """
    api = make_api("status", rate_limit=5, pending=0.0, duration=1.0)
    async with api.client() as client, poller(api, client) as p:
        handles = [p.add(api.add_job().id) for _ in range(5)]
        await p.gather(*handles)
        assert round(anyio.current_time(), 9) == 1.8
    assert [round(r.time, 9) for r in api.requests] == [n / 5 for n in range(10)]
    assert {r.status_code for r in api.requests} == {200}
    assert [api.count(job_id=h.job_id) for h in handles] == [2] * 5
    assert (p.statistics().requests, p.statistics().throttled) == (10, 0)


@pytest.mark.timeout(20)
async def test_polls_paced_by_a_budget_off_the_clock_s_grid_end() -> None:
    """3 jobs behind 3 requests/s in bursts of 5: the budgets' rates are kept, and all end.

    Regression: the second answer's budget, ``RateLimit-Remaining: 3`` and
    ``RateLimit-Reset: 0.667``, spreads requests at one every 0.2223333... s, a slot
    between looptime's 1 ns steps; the host's limiter woke at the step before it, found
    its token a hair short and slept again at the same instant, for ever.
    """
    api = make_api("status", rate_limit=asyncpoll.RateLimit(3, burst=5), pending=0.0, duration=2.0)
    async with api.client() as client, poller(api, client) as p:
        handles = [p.add(api.add_job().id) for _ in range(3)]
        await p.gather(*handles)
    times = [0.0, 0.0, 0.222333333, 1.0, 1.0835, 1.278166667, 2.0, 2.0835, 2.278166667]
    assert [round(r.time, 9) for r in api.requests] == times
    assert {r.status_code for r in api.requests} == {200}
    assert [api.count(job_id=h.job_id) for h in handles] == [3] * 3
    assert (p.statistics().requests, p.statistics().throttled) == (9, 0)


async def test_the_bearer_token_is_required() -> None:
    """Without the token the answer is 401 (the job ends ERRORED); with it, the job runs."""
    api = make_api("bearer", token="s3cret", pending=0.0, duration=1.0)
    async with api.client() as client:
        options = {**api.poller_options(), "headers": None}
        async with asyncpoll.TaskPoller(client=client, **options) as p:
            handle = p.add(api.add_job().id)
        with pytest.raises(asyncpoll.PollError) as caught:
            await handle
        assert caught.value.http_status == 401
        async with poller(api, client) as p:
            assert await p.add(api.add_job().id) == {"job_id": "p-2", "input": None}
    assert api.requests[0].fault == "unauthorized"
    assert {r.headers.get("authorization") for r in api.find(job_id="p-2")} == {"Bearer s3cret"}


# ---------------------------------------------------------------- served on loopback


@pytest.mark.parametrize("anyio_backend", REAL_TIME_BACKENDS)
async def test_served_on_loopback(anyio_backend: Any) -> None:
    """serve() runs the API on a loopback port: jobs of 50 ms succeed through drops and
    5xx, and leaving the block stops the server's thread."""
    api = FakeJobAPI("location", duration=0.05, seed=3, drop_rate=0.2, error_rate=0.2)
    with anyio.fail_after(20):
        async with serve(api) as url:
            assert url.startswith("http://127.0.0.1:")
            async with asyncpoll.TaskPoller(
                base_url=url,
                schedule=asyncpoll.fixed(0.02),
                retry_schedule=asyncpoll.fixed(0.02),
                max_errors=20,
                fetch_result=True,
                **api.poller_options(),
            ) as p:
                handles = [await p.submit("/v1/jobs", json={"n": n}) for n in range(5)]
                results = await p.gather(*handles)
    assert results == [{"job_id": str(n + 1), "input": {"n": n}} for n in range(5)]
    assert api.count(method="POST") == 5
    assert any(r.fault == "drop" for r in api.requests)
    assert p.statistics().transient_errors == sum(
        1 for r in api.requests if r.fault in ("drop", "error")
    )
    assert not [t for t in threading.enumerate() if t.name.startswith("asyncpoll-serve-")]


def test_serve_as_a_plain_context_manager() -> None:
    """A plain ``with serve(api)`` serves a blocking client; a drop closes the connection."""
    api = FakeJobAPI("celery", duration=0.0, drop_rate=1.0, flaky_methods=["DELETE"])
    started = time.monotonic()
    with serve(api) as url, httpx.Client(base_url=url) as client:
        task = client.post("/api/task/async-apply/tasks.add", json={"args": [1, 2]}).json()
        assert task["state"] == "PENDING"
        result = client.get(f"/api/task/result/{task['task-id']}").json()
        assert result == {
            "task-id": task["task-id"],
            "state": "SUCCESS",
            "result": {"job_id": task["task-id"], "input": {"args": [1, 2]}},
        }
        with pytest.raises(httpx.RemoteProtocolError, match="without sending a response"):
            client.delete("/anything")
    assert time.monotonic() - started < 5
    assert [r.fault for r in api.requests] == [None, None, "drop"]


def test_serve_refuses_a_port_in_use() -> None:
    """A server that cannot bind its port fails at once, naming the address."""
    api = FakeJobAPI()
    with serve(api) as url:
        port = int(url.rsplit(":", 1)[1])
        with pytest.raises(OSError, match="in use"):
            serve(api, port=port).start()


# ---------------------------------------------------------------- the core and the plugin


def test_public_names() -> None:
    """``asyncpoll.testing.__all__`` is sorted and every name in it is importable."""
    import asyncpoll.testing as testing

    assert list(testing.__all__) == sorted(testing.__all__)
    assert all(hasattr(testing, name) for name in testing.__all__)


def test_the_core_does_not_import_the_testing_package() -> None:
    """``import asyncpoll`` loads neither asyncpoll.testing nor starlette nor uvicorn."""
    code = (
        "import sys, asyncpoll; "
        "print(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('starlette', 'uvicorn') or m.startswith('asyncpoll.testing')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


PLUGIN_CONFTEST = """
import pytest
import trio.testing

pytest_plugins = ["asyncpoll.testing.pytest_plugin"]


@pytest.fixture
def anyio_backend():
    return "trio", {"clock": trio.testing.MockClock(autojump_threshold=0)}
"""

PLUGIN_TESTS = """
import anyio
import httpx
import pytest

import asyncpoll


@pytest.mark.anyio
@pytest.mark.fake_job_api(shape="envelope", duration=600.0, seed=1)
async def test_in_virtual_time(fake_job_api):
    async with fake_job_api.client() as client, asyncpoll.TaskPoller(
        client=client, schedule=asyncpoll.fixed(60.0), **fake_job_api.poller_options()
    ) as poller:
        handle = await poller.submit("/api/v1/jobs/createTask", json={"prompt": "fox"})
        assert await handle == {"job_id": "task-1", "input": {"prompt": "fox"}}
    assert anyio.current_time() == 600.0
    assert fake_job_api.count("GET") == 11


@pytest.mark.anyio
async def test_default_shape(fake_job_api):
    assert fake_job_api.shape.name == "status"


@pytest.mark.fake_job_api(shape="ray", duration=0.0)
def test_served(fake_job_api, fake_job_api_url):
    created = httpx.post(fake_job_api_url + "/api/jobs/", json={"entrypoint": "true"}).json()
    job = httpx.get(fake_job_api_url + "/api/jobs/" + created["submission_id"]).json()
    assert job["status"] == "SUCCEEDED"
    assert fake_job_api.count() == 2
"""


def test_the_pytest_plugin(pytester: pytest.Pytester) -> None:
    """The plugin's fixtures work in a user's suite: in virtual time, and served."""
    pytester.makeconftest(PLUGIN_CONFTEST)
    pytester.makepyfile(PLUGIN_TESTS)
    result = pytester.runpytest_subprocess(
        "-p", "no:looptime_plugin", "-p", "no:cacheprovider", "--strict-markers", "-q"
    )
    result.assert_outcomes(passed=3)


DOC = pathlib.Path(__file__).parent.parent / "docs" / "testing.md"

_EXAMPLE = re.compile(
    r"<!-- fake-api-example: (?P<kind>\w+) -->\n```python\n(?P<code>.*?)\n```\n", re.S
)


def test_the_docs_examples_run(pytester: pytest.Pytester) -> None:
    """Every asyncpoll.testing example of docs/testing.md passes, under the page's conftest."""
    blocks = _EXAMPLE.findall(DOC.read_text())
    (conftest,) = [code for kind, code in blocks if kind == "conftest"]
    tests = [code for kind, code in blocks if kind == "test"]
    assert len(tests) == 5
    pytester.makeconftest(conftest)
    pytester.makepyfile(**{f"test_example_{n}": code for n, code in enumerate(tests)})
    result = pytester.runpytest_subprocess(
        "-p",
        "no:looptime_plugin",
        "-p",
        "no:asyncio",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "-q",
    )
    result.assert_outcomes(passed=6)
