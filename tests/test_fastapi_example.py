"""The FastAPI example in docs/examples: one poller in the lifespan, endpoints that
submit and await, and a clean shutdown, driven in virtual time against a scripted job API.
"""

from __future__ import annotations

import importlib.util
import logging
import pathlib
from types import ModuleType

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job

import asyncpoll

pytestmark = pytest.mark.anyio

EVERY_SECOND = asyncpoll.fixed(1.0)

EXAMPLE = pathlib.Path(__file__).parent.parent / "docs" / "examples" / "fastapi_service.py"


def load_example() -> ModuleType:
    """The example module, imported from its file as a user would run it."""
    spec = importlib.util.spec_from_file_location("fastapi_service", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def jobs(api: FakeJobAPI) -> FakeJobAPI:
    """The job API: POST /jobs creates job j1 (then j2, ...)."""
    counter = iter(range(1, 100))

    def create(request: httpx.Request) -> httpx.Response:
        n = next(counter)
        return httpx.Response(202, json={"id": f"j{n}"}, headers={"Location": f"/jobs/j{n}"})

    api.router.post("/jobs").mock(side_effect=create)
    return api


async def test_submit_and_wait_answers_with_the_result(jobs: FakeJobAPI) -> None:
    """POST /renders/wait submits a job, follows it, and answers with its result."""
    jobs.script("j1", job("running", progress=50), job("done", result={"frames": 24}))
    app = load_example().make_app(jobs.base_url, client=jobs.client(), schedule=EVERY_SECOND)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc") as svc,
    ):
        answer = await svc.post("/renders/wait", json={"scene": 1})
        assert answer.status_code == 200
        assert answer.json() == {"job_id": "j1", "result": {"frames": 24}}
        assert anyio.current_time() == pytest.approx(1.0)
    assert jobs.times("j1") == [0.0, 1.0]


async def test_submit_then_ask_for_the_state(jobs: FakeJobAPI) -> None:
    """POST /renders answers 202 at once; GET /renders/{id} shows progress, then the
    result."""
    jobs.script("j1", job("running", progress=40), job("running", progress=80), job("done"))
    app = load_example().make_app(jobs.base_url, client=jobs.client(), schedule=EVERY_SECOND)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc") as svc,
    ):
        created = await svc.post("/renders", json={"scene": 2})
        assert (created.status_code, created.json()) == (202, {"job_id": "j1", "state": "pending"})
        await anyio.sleep(0.5)
        running = (await svc.get("/renders/j1")).json()
        assert running == {"job_id": "j1", "state": "running", "progress": 0.4}
        await anyio.sleep(3.0)
        done = (await svc.get("/renders/j1")).json()
        assert done == {
            "job_id": "j1",
            "state": "succeeded",
            "progress": 1.0,
            "result": {"status": "done"},
            "error": None,
        }
        missing = await svc.get("/renders/nope")
        assert (missing.status_code, missing.json()) == (404, {"detail": "no render 'nope'"})


async def test_a_slow_job_gives_504_and_stays_followed(jobs: FakeJobAPI) -> None:
    """POST /renders/wait gives up after wait_timeout with 504; the job goes on."""
    jobs.script("j1", job("running"))
    app = load_example().make_app(
        jobs.base_url,
        client=jobs.client(),
        schedule=EVERY_SECOND,
        wait_timeout=5.0,
        shutdown_grace=1.0,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://svc") as svc,
    ):
        answer = await svc.post("/renders/wait", json={})
        assert (answer.status_code, answer.json()) == (
            504,
            {"detail": "render 'j1' is still running"},
        )
        assert anyio.current_time() == pytest.approx(5.0)
        assert (await svc.get("/renders/j1")).json()["state"] == "running"


async def test_shutdown_lets_jobs_finish_within_the_grace_period(jobs: FakeJobAPI) -> None:
    """Stopping the app waits for a job that finishes within the grace period."""
    jobs.script("j1", job("running"), job("running"), job("done", result=7))
    app = load_example().make_app(
        jobs.base_url, client=jobs.client(), schedule=EVERY_SECOND, shutdown_grace=30.0
    )
    async with app.router.lifespan_context(app):
        poller = app.state.poller
        handle = await poller.submit("/jobs", json={})
    assert anyio.current_time() == pytest.approx(2.0)  # polls at 0, 1, 2: done at 2
    assert handle.result() == 7


async def test_shutdown_cancels_what_outlasts_the_grace_period(
    jobs: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """Stopping the app cancels the jobs still running after the grace period, with one
    log line for all of them."""
    jobs.script("j1", job("running"))
    jobs.script("j2", job("running"))
    app = load_example().make_app(
        jobs.base_url, client=jobs.client(), schedule=EVERY_SECOND, shutdown_grace=30.0
    )
    with caplog.at_level(logging.WARNING, logger="asyncpoll"):
        async with app.router.lifespan_context(app):
            poller = app.state.poller
            handles = [await poller.submit("/jobs", json={}) for _ in range(2)]
    assert anyio.current_time() == pytest.approx(30.0)
    assert [h.state.value for h in handles] == ["cancelled", "cancelled"]
    assert [r.getMessage() for r in caplog.records] == [
        "2 jobs in flight cancelled: the poller's shutdown was interrupted"
    ]
