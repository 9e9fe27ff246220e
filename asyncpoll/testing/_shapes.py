"""The job API shapes the fake API speaks: their URLs, their documents and their routes.

Each shape is the README's description of a job API (or a job system's real one, cut
down to what a poller reads), as Starlette routes over the fake API's ``JobStore``.
Every endpoint reads the request's time from ``request.state`` (set once per request by
the fake API) and computes the job's state from it: nothing changes between requests.
"""

from __future__ import annotations

import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._jobs import FakeJob, JobStore, ray_id, uuid_id

__all__ = ["SHAPES", "Context", "Shape"]

#: ``request.state`` attributes the fake API sets and the endpoints fill.
NOW = "asyncpoll_now"
JOB_ID = "asyncpoll_job_id"


@attrs.frozen
class Context:
    """What the endpoints share: the jobs, and what a job's result and error are."""

    store: JobStore
    result: Callable[[FakeJob], Any]
    error: Callable[[FakeJob], str]


Endpoint = Callable[[Request], Awaitable[Response]]


@attrs.frozen
class Shape:
    """One job API shape: where to create, poll, cancel and fetch, and its routes.

    URLs are paths on the fake API; those with ``{job_id}`` are templates, as
    ``TaskPoller(status_url=..., cancel_url=...)`` takes them.

    Attributes:
        name: the shape's name, as ``FakeJobAPI(shape=...)`` takes it.
        create_url: where ``POST`` creates a job.
        status_url: the status URL template.
        cancel_url: the cancel URL template.
        cancel_method: the cancel request's method.
        result_url: the URL template of a finished job's result document.
        description: one line about the shape.
    """

    name: str
    create_url: str
    status_url: str
    cancel_url: str
    cancel_method: str
    result_url: str
    description: str
    make_id: Callable[[int, random.Random], str] = attrs.field(repr=False)
    routes: Callable[[Context], list[BaseRoute]] = attrs.field(repr=False)


def _now(request: Request) -> float:
    now: float = getattr(request.state, NOW)
    return now


def _note(request: Request, job_id: str) -> None:
    setattr(request.state, JOB_ID, job_id)


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        return None


def _json(content: Any, status_code: int = 200, **headers: str) -> JSONResponse:
    return JSONResponse(content, status_code=status_code, headers=headers or None)


def _percent(job: FakeJob, now: float) -> int:
    return int(job.progress(now) * 100)


def _pages_done(job: FakeJob, now: float) -> int:
    return int(job.progress(now) * job.total_pages)


# ---------------------------------------------------------------- 1. status


def _status_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    if phase == "pending":
        return {"id": job.id, "status": "pending"}
    if phase == "running":
        return {"id": job.id, "status": "running", "progress": _percent(job, now)}
    if phase == "succeeded":
        return {"id": job.id, "status": "completed", "result": ctx.result(job)}
    if phase == "failed":
        return {"id": job.id, "status": "failed", "message": ctx.error(job)}
    return {"id": job.id, "status": "cancelled", "message": "cancelled at the caller's request"}


def _not_found(job_id: str) -> JSONResponse:
    return _json({"error": {"code": "not_found", "message": f"no job {job_id!r}"}}, 404)


def _routes_status(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_status_doc(ctx, job, _now(request)), 201, Location=f"/jobs/{job.id}")

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return _not_found(job_id)
        return _json(_status_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id not in store.jobs:
            return _not_found(job_id)
        now = _now(request)
        if not store.cancel(job_id, now):
            doc = _status_doc(ctx, store.jobs[job_id], now)
            return _json({**doc, "message": "the job has already finished"}, 409)
        return _json(_status_doc(ctx, store.jobs[job_id], now))

    async def result(request: Request) -> Response:
        return _result_document(ctx, request)

    return [
        Route("/jobs", create, methods=["POST"]),
        Route("/jobs/{job_id}", status, methods=["GET"]),
        Route("/jobs/{job_id}", cancel, methods=["DELETE"]),
        Route("/jobs/{job_id}/result", result, methods=["GET"]),
    ]


def _result_document(ctx: Context, request: Request, job_id: str | None = None) -> Response:
    """A finished job's result document; 404 for no job, 409 for one not succeeded."""
    if job_id is None:
        job_id = request.path_params["job_id"]
    _note(request, job_id)
    job = ctx.store.jobs.get(job_id)
    if job is None:
        return _not_found(job_id)
    phase = job.phase(_now(request))
    if phase != "succeeded":
        message = f"job {job_id!r} has no result: it is {phase}"
        return _json({"error": {"code": "no_result", "message": message}}, 409)
    return _json(ctx.result(job))


# ---------------------------------------------------------------- 2. envelope

_ENVELOPE_STATES = {
    "pending": "waiting",
    "running": "generating",
    "succeeded": "success",
    "failed": "failed",
    "cancelled": "cancelled",
}


def _envelope(data: Any, code: int = 200, msg: str = "success") -> dict[str, Any]:
    return {"code": code, "msg": msg, "data": data}


def _envelope_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    data: dict[str, Any] = {
        "taskId": job.id,
        "state": _ENVELOPE_STATES[phase],
        "progress": _percent(job, now),
        "createTime": int(job.created_at * 1000),
    }
    if phase == "succeeded":
        data["resultJson"] = json.dumps(ctx.result(job))
        data["completeTime"] = int(job.finished_at * 1000)
    elif phase == "failed":
        data["failCode"] = "500"
        data["failMsg"] = ctx.error(job)
    elif phase == "cancelled":
        data["failMsg"] = "cancelled at the caller's request"
    return _envelope(data)


def _routes_envelope(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def task_id(request: Request) -> str | None:
        value = request.query_params.get("taskId")
        if value is not None:
            _note(request, value)
        return value

    def missing(job_id: str | None) -> JSONResponse:
        return _json(_envelope(None, 404, f"task {job_id!r} not found"), 404)

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_envelope({"taskId": job.id}))

    async def status(request: Request) -> Response:
        job_id = task_id(request)
        job = store.jobs.get(job_id) if job_id is not None else None
        if job is None:
            return missing(job_id)
        return _json(_envelope_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        job_id = task_id(request)
        if job_id is None or job_id not in store.jobs:
            return missing(job_id)
        if not store.cancel(job_id, _now(request)):
            return _json(_envelope(None, 409, "the task has already finished"), 409)
        return _json(_envelope({"taskId": job_id, "state": "cancelled"}))

    async def result(request: Request) -> Response:
        job_id = task_id(request)
        if job_id is None:
            return missing(job_id)
        return _result_document(ctx, request, job_id)

    return [
        Route("/api/v1/jobs/createTask", create, methods=["POST"]),
        Route("/api/v1/jobs/recordInfo", status, methods=["GET"]),
        Route("/api/v1/jobs/cancelTask", cancel, methods=["POST"]),
        Route("/api/v1/jobs/result", result, methods=["GET"]),
    ]


# ---------------------------------------------------------------- 3. location


def _routes_location(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return Response(status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return _not_found(job_id)
        now = _now(request)
        phase = job.phase(now)
        if phase == "succeeded":
            return Response(status_code=303, headers={"Location": f"/v1/jobs/{job.id}/result"})
        if phase == "pending":
            return _json({"status": "queued"})
        if phase == "running":
            return _json({"status": "processing", "progress": _percent(job, now)})
        if phase == "failed":
            return _json({"status": "failed", "error": ctx.error(job)})
        return _json({"status": "cancelled"})

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id not in store.jobs:
            return _not_found(job_id)
        if not store.cancel(job_id, _now(request)):
            return _json({"error": "the job has already finished"}, 409)
        return Response(status_code=204)

    async def result(request: Request) -> Response:
        return _result_document(ctx, request)

    return [
        Route("/v1/jobs", create, methods=["POST"]),
        Route("/v1/jobs/{job_id}", status, methods=["GET"]),
        Route("/v1/jobs/{job_id}", cancel, methods=["DELETE"]),
        Route("/v1/jobs/{job_id}/result", result, methods=["GET"]),
    ]


# ---------------------------------------------------------------- 4. pages


def _pages_doc(ctx: Context, job: FakeJob, now: float, base: str) -> dict[str, Any]:
    phase = job.phase(now)
    done = _pages_done(job, now)
    words = {"pending": "queued", "running": "processing", "succeeded": "completed"}
    doc: dict[str, Any] = {
        "job_id": job.id,
        "status": words.get(phase, phase),
        "progress": _percent(job, now),
        "total_pages": job.total_pages,
    }
    if phase == "pending":
        doc["message"] = "queued"
    elif phase == "running":
        doc["message"] = f"OCR page {done + 1} of {job.total_pages}"
    elif phase == "succeeded":
        doc["message"] = "done"
        doc["result_urls"] = [
            f"{base}/v1/documents/{job.id}/pages/{n}" for n in range(1, job.total_pages + 1)
        ]
    elif phase == "failed":
        doc["message"] = ctx.error(job)
    else:
        doc["message"] = "cancelled at the caller's request"
    return doc


def _routes_pages(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_pages_doc(ctx, job, _now(request), base(request)), 202)

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return _not_found(job_id)
        return _json(_pages_doc(ctx, job, _now(request), base(request)))

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id not in store.jobs:
            return _not_found(job_id)
        now = _now(request)
        accepted = store.cancel(job_id, now)
        doc = _pages_doc(ctx, store.jobs[job_id], now, base(request))
        return _json(doc, 200 if accepted else 409)

    async def page(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        response = _result_document(ctx, request, job_id)
        if response.status_code != 200:
            return response
        number = int(request.path_params["page"])
        job = store.jobs[job_id]
        if not 1 <= number <= job.total_pages:
            return _json({"error": f"job {job_id!r} has no page {number}"}, 404)
        return _json({"job_id": job_id, "page": number, "text": f"page {number} of {job_id}"})

    return [
        Route("/v1/documents", create, methods=["POST"]),
        Route("/v1/documents/{job_id}", status, methods=["GET"]),
        Route("/v1/documents/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/v1/documents/{job_id}/pages/{page:int}", page, methods=["GET"]),
    ]


# ---------------------------------------------------------------- 5. bearer


def _bearer_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    words = {"pending": "queued", "running": "processing", "succeeded": "completed"}
    doc: dict[str, Any] = {
        "id": job.id,
        "status": words.get(phase, phase),
        "progress": {"processed_pages": _pages_done(job, now), "total_pages": job.total_pages},
    }
    if phase == "succeeded":
        doc["result"] = ctx.result(job)
    elif phase == "failed":
        doc["error"] = {"code": "job_failed", "message": ctx.error(job)}
    elif phase == "cancelled":
        doc["error"] = {"code": "cancelled", "message": "cancelled at the caller's request"}
    return doc


def _routes_bearer(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_bearer_doc(ctx, job, _now(request)), 202)

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return _not_found(job_id)
        return _json(_bearer_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id not in store.jobs:
            return _not_found(job_id)
        now = _now(request)
        accepted = store.cancel(job_id, now)
        return _json(_bearer_doc(ctx, store.jobs[job_id], now), 200 if accepted else 409)

    async def result(request: Request) -> Response:
        return _result_document(ctx, request)

    return [
        Route("/v2/parse", create, methods=["POST"]),
        Route("/v2/parse/{job_id}", status, methods=["GET"]),
        Route("/v2/parse/{job_id}", cancel, methods=["DELETE"]),
        Route("/v2/parse/{job_id}/result", result, methods=["GET"]),
    ]


# ---------------------------------------------------------------- celery (Flower)

_CELERY_STATES = {
    "pending": "PENDING",
    "running": "STARTED",
    "succeeded": "SUCCESS",
    "failed": "FAILURE",
    "cancelled": "REVOKED",
}


def _celery_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    doc: dict[str, Any] = {"task-id": job.id, "state": _CELERY_STATES[phase]}
    if phase == "succeeded":
        doc["result"] = ctx.result(job)
    elif phase == "failed":
        error = ctx.error(job)
        doc["result"] = f"RuntimeError({error!r})"
        doc["traceback"] = (
            "Traceback (most recent call last):\n"
            '  File "/app/tasks.py", line 12, in run\n'
            f"    raise RuntimeError({error!r})\n"
            f"RuntimeError: {error}\n"
        )
    elif phase == "cancelled":
        doc["result"] = "TaskRevokedError('terminated')"
    return doc


def _routes_celery(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json({"task-id": job.id, "state": "PENDING"})

    async def result(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            # Celery cannot tell an unknown id from a queued task: it answers PENDING.
            return _json({"task-id": job_id, "state": "PENDING"})
        return _json(_celery_doc(ctx, job, _now(request)))

    async def revoke(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id in store.jobs:
            store.cancel(job_id, _now(request))
        return _json({"message": f"Revoked '{job_id}'"})

    return [
        Route("/api/task/async-apply/{task_name}", create, methods=["POST"]),
        Route("/api/task/result/{job_id}", result, methods=["GET"]),
        Route("/api/task/revoke/{job_id}", revoke, methods=["POST"]),
    ]


# ---------------------------------------------------------------- ray (Ray Jobs)

_RAY_STATES = {
    "pending": "PENDING",
    "running": "RUNNING",
    "succeeded": "SUCCEEDED",
    "failed": "FAILED",
    "cancelled": "STOPPED",
}


def _ray_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    body = job.input if isinstance(job.input, dict) else {}
    messages = {
        "pending": "Job has not started yet. It may be waiting for resources to become available.",
        "running": "Job is currently running.",
        "succeeded": "Job finished successfully.",
        "failed": "Job entrypoint command failed with exit code 1, last available logs "
        f"(truncated to 20,000 chars):\nRuntimeError: {ctx.error(job)}\n",
        "cancelled": "Job was intentionally stopped.",
    }
    done = phase in ("succeeded", "failed", "cancelled")
    return {
        "type": "SUBMISSION",
        "job_id": None if phase == "pending" else job.id,
        "submission_id": job.id,
        "status": _RAY_STATES[phase],
        "entrypoint": body.get("entrypoint", "python job.py"),
        "message": messages[phase],
        "error_type": "JOB_ENTRYPOINT_COMMAND_ERROR" if phase == "failed" else None,
        "start_time": int(job.created_at * 1000),
        "end_time": int(job.finished_at * 1000) if done else None,
        "metadata": body.get("metadata", {}),
        "runtime_env": body.get("runtime_env", {}),
        "driver_exit_code": {"succeeded": 0, "failed": 1}.get(phase),
    }


def _routes_ray(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(job_id: str) -> Response:
        return Response(f"Job {job_id} does not exist", 404, media_type="text/plain")

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json({"job_id": job.id, "submission_id": job.id})

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return missing(job_id)
        return _json(_ray_doc(ctx, job, _now(request)))

    async def stop(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id not in store.jobs:
            return missing(job_id)
        return _json({"stopped": store.cancel(job_id, _now(request))})

    async def delete(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return missing(job_id)
        if not job.done(_now(request)):
            text = f"Attempted to delete job with submission_id {job_id}, but it is not finished"
            return Response(text, 400, media_type="text/plain")
        store.delete(job_id)
        return _json({"deleted": True})

    async def logs(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return missing(job_id)
        lines = [f"job {job_id} started"]
        if job.phase(_now(request)) == "succeeded":
            lines.append(json.dumps(ctx.result(job)))
        return _json({"logs": "\n".join(lines) + "\n"})

    return [
        Route("/api/jobs/", create, methods=["POST"]),
        Route("/api/jobs/{job_id}", status, methods=["GET"]),
        Route("/api/jobs/{job_id}", delete, methods=["DELETE"]),
        Route("/api/jobs/{job_id}/stop", stop, methods=["POST"]),
        Route("/api/jobs/{job_id}/logs", logs, methods=["GET"]),
    ]


# ---------------------------------------------------------------- github (Actions runs)

_GITHUB_RUNS = "/repos/{owner}/{repo}/actions/runs"


def _github_doc(ctx: Context, job: FakeJob, now: float, base: str, repo: str) -> dict[str, Any]:
    phase = job.phase(now)
    status = {"pending": "queued", "running": "in_progress"}.get(phase, "completed")
    conclusion = {"succeeded": "success", "failed": "failure", "cancelled": "cancelled"}
    url = f"{base}/repos/{repo}/actions/runs/{job.id}"
    return {
        "id": int(job.id),
        "name": "CI",
        "run_number": job.index,
        "event": "workflow_dispatch",
        "status": status,
        "conclusion": conclusion.get(phase),
        "url": url,
        "html_url": f"https://github.com/{repo}/actions/runs/{job.id}",
        "jobs_url": f"{url}/jobs",
        "cancel_url": f"{url}/cancel",
        "run_attempt": 1,
    }


def _routes_github(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def repo(request: Request) -> str:
        return f"{request.path_params['owner']}/{request.path_params['repo']}"

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    def missing() -> Response:
        return _json({"message": "Not Found", "status": "404"}, 404)

    async def dispatch(request: Request) -> Response:
        # GitHub answers a dispatch with 204 and no run id: list the runs to find it.
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return Response(status_code=204)

    async def runs(request: Request) -> Response:
        now = _now(request)
        newest_first = sorted(store.jobs.values(), key=lambda j: j.index, reverse=True)
        docs = [_github_doc(ctx, j, now, base(request), repo(request)) for j in newest_first]
        return _json({"total_count": len(docs), "workflow_runs": docs})

    async def status(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return missing()
        return _json(_github_doc(ctx, job, _now(request), base(request), repo(request)))

    async def cancel(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        if job_id not in store.jobs:
            return missing()
        if not store.cancel(job_id, _now(request)):
            return _json({"message": "Cannot cancel a workflow run that is completed."}, 409)
        return _json({}, 202)

    async def jobs(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None:
            return missing()
        doc = _github_doc(ctx, job, _now(request), base(request), repo(request))
        step = {"id": int(job_id) * 10, "run_id": int(job_id), "name": "build"}
        step.update({"status": doc["status"], "conclusion": doc["conclusion"]})
        return _json({"total_count": 1, "jobs": [step]})

    workflow = "/repos/{owner}/{repo}/actions/workflows/{workflow}/dispatches"
    return [
        Route(workflow, dispatch, methods=["POST"]),
        Route(_GITHUB_RUNS, runs, methods=["GET"]),
        Route(_GITHUB_RUNS + "/{job_id}", status, methods=["GET"]),
        Route(_GITHUB_RUNS + "/{job_id}/cancel", cancel, methods=["POST"]),
        Route(_GITHUB_RUNS + "/{job_id}/jobs", jobs, methods=["GET"]),
    ]


# ---------------------------------------------------------------- the table


def _counter(prefix: str) -> Callable[[int, random.Random], str]:
    def make(index: int, rng: random.Random) -> str:
        return f"{prefix}{index}"

    return make


def _github_id(index: int, rng: random.Random) -> str:
    return str(11_042_387_464 + index)


_GH = "/repos/acme/app/actions"

#: Every shape, by name.
SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape(
            "status",
            "/jobs",
            "/jobs/{job_id}",
            "/jobs/{job_id}",
            "DELETE",
            "/jobs/{job_id}/result",
            "a status resource per job: {'status': 'running', 'progress': 40}",
            _counter("job-"),
            _routes_status,
        ),
        Shape(
            "envelope",
            "/api/v1/jobs/createTask",
            "/api/v1/jobs/recordInfo?taskId={job_id}",
            "/api/v1/jobs/cancelTask?taskId={job_id}",
            "POST",
            "/api/v1/jobs/result?taskId={job_id}",
            "{'code': 200, 'msg': 'success', 'data': {'taskId', 'state', 'resultJson', ...}}",
            _counter("task-"),
            _routes_envelope,
        ),
        Shape(
            "location",
            "/v1/jobs",
            "/v1/jobs/{job_id}",
            "/v1/jobs/{job_id}",
            "DELETE",
            "/v1/jobs/{job_id}/result",
            "202 Accepted with a Location, then 303 See Other to the result",
            _counter(""),
            _routes_location,
        ),
        Shape(
            "pages",
            "/v1/documents",
            "/v1/documents/{job_id}",
            "/v1/documents/{job_id}/cancel",
            "POST",
            "/v1/documents/{job_id}/pages/1",
            "job_id, a percentage, a message and result_urls",
            _counter("j-"),
            _routes_pages,
        ),
        Shape(
            "bearer",
            "/v2/parse",
            "/v2/parse/{job_id}",
            "/v2/parse/{job_id}",
            "DELETE",
            "/v2/parse/{job_id}/result",
            "processed_pages/total_pages progress and error objects",
            _counter("p-"),
            _routes_bearer,
        ),
        Shape(
            "celery",
            "/api/task/async-apply/tasks.run",
            "/api/task/result/{job_id}",
            "/api/task/revoke/{job_id}?terminate=true",
            "POST",
            "/api/task/result/{job_id}",
            "Celery through Flower: task-id and PENDING/STARTED/SUCCESS/FAILURE/REVOKED",
            uuid_id,
            _routes_celery,
        ),
        Shape(
            "ray",
            "/api/jobs/",
            "/api/jobs/{job_id}",
            "/api/jobs/{job_id}/stop",
            "POST",
            "/api/jobs/{job_id}/logs",
            "Ray Jobs: submission ids and PENDING/RUNNING/SUCCEEDED/FAILED/STOPPED",
            ray_id,
            _routes_ray,
        ),
        Shape(
            "github",
            _GH + "/workflows/ci.yml/dispatches",
            _GH + "/runs/{job_id}",
            _GH + "/runs/{job_id}/cancel",
            "POST",
            _GH + "/runs/{job_id}/jobs",
            "GitHub Actions workflow runs: status, then conclusion",
            _github_id,
            _routes_github,
        ),
    )
}
