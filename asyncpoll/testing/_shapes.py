"""The job API shapes the fake API speaks: their URLs, their documents and their routes.

Each shape is the README's description of a job API (or a job system's real one, cut
down to what a poller reads), as Starlette routes over the fake API's ``JobStore``. The
job systems' shapes follow their public API references (the documents of
``tests/jobsystems.py``): Celery through Flower, Ray Jobs, GitHub Actions, Prefect,
Airflow, Azure and Google long-running operations, OpenAI batches, Replicate, Jenkins,
Argo Workflows, and RQ behind a user's own endpoint. AWS has no shape: its APIs need
SigV4-signed requests and are read through boto3 (a ``check=`` function), not a URL.
Every endpoint reads the request's time from ``request.state`` (set once per request by
the fake API) and computes the job's state from it: nothing changes between requests.
"""

from __future__ import annotations

import datetime
import json
import random
from collections.abc import Awaitable, Callable
from typing import Any

import attrs
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from ._jobs import FakeJob, JobStore, Outcome, hex_id, ray_id, replicate_id, uuid_id

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
        cancel_json: the cancel request's JSON body (None: no body).
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
    cancel_json: Any = None


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


def _lookup(ctx: Context, request: Request, key: str = "job_id") -> tuple[str, FakeJob | None]:
    """The job a request names by its path parameter ``key`` (None if unknown), noted
    in the request log."""
    job_id = request.path_params[key]
    _note(request, job_id)
    return job_id, ctx.store.jobs.get(job_id)


def _not_found(job_id: str) -> JSONResponse:
    return _json({"error": {"code": "not_found", "message": f"no job {job_id!r}"}}, 404)


def _routes_status(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_status_doc(ctx, job, _now(request)), 201, Location=f"/jobs/{job.id}")

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return _not_found(job_id)
        return _json(_status_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
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
        job_id, job = _lookup(ctx, request)
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
        job_id, job = _lookup(ctx, request)
        if job is None:
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
        job_id, job = _lookup(ctx, request)
        if job is None:
            return _not_found(job_id)
        return _json(_pages_doc(ctx, job, _now(request), base(request)))

    async def cancel(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
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
        job_id, job = _lookup(ctx, request)
        if job is None:
            return _not_found(job_id)
        return _json(_bearer_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
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
        job_id, job = _lookup(ctx, request)
        if job is None:
            # Celery cannot tell an unknown id from a queued task: it answers PENDING.
            return _json({"task-id": job_id, "state": "PENDING"})
        return _json(_celery_doc(ctx, job, _now(request)))

    async def revoke(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is not None:
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
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json(_ray_doc(ctx, job, _now(request)))

    async def stop(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json({"stopped": store.cancel(job_id, _now(request))})

    async def delete(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        if not job.done(_now(request)):
            text = f"Attempted to delete job with submission_id {job_id}, but it is not finished"
            return Response(text, 400, media_type="text/plain")
        store.delete(job_id)
        return _json({"deleted": True})

    async def logs(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
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
        _, job = _lookup(ctx, request)
        if job is None:
            return missing()
        return _json(_github_doc(ctx, job, _now(request), base(request), repo(request)))

    async def cancel(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing()
        if not store.cancel(job_id, _now(request)):
            return _json({"message": "Cannot cancel a workflow run that is completed."}, 409)
        return _json({}, 202)

    async def jobs(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
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


# ---------------------------------------------------------------- shared by the job systems

#: How long a system that winds a cancelled job down (Prefect's CANCELLING, OpenAI's
#: cancelling) takes to end it, in seconds.
WIND_DOWN = 1.0


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _iso(seconds: float) -> str:
    """A clock reading as an ISO 8601 time (the fake's clock counts from the epoch)."""
    stamp = datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)
    return stamp.isoformat().replace("+00:00", "Z")


# ---------------------------------------------------------------- prefect (flow runs)

_PREFECT_DEPLOYMENT = "d3f5a7b9-c1e2-4d4f-a6b8-c0d2e4f6a8b1"


def _prefect_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    if ctx.store.stopping(job, now):
        kind, name, message = "CANCELLING", "Cancelling", None
    else:
        kind, name, message = {
            "pending": ("SCHEDULED", "Scheduled", None),
            "running": ("RUNNING", "Running", None),
            "succeeded": ("COMPLETED", "Completed", "All states completed."),
            "failed": (
                "FAILED",
                "Failed",
                f"Flow run encountered an exception: RuntimeError: {ctx.error(job)}",
            ),
            "cancelled": ("CANCELLED", "Cancelled", "Cancelled at the caller's request."),
        }[phase]
    body = job.input if isinstance(job.input, dict) else {}
    done = job.done(now)
    return {
        "id": job.id,
        "name": f"fake-run-{job.index}",
        "deployment_id": _PREFECT_DEPLOYMENT,
        "parameters": body.get("parameters", {}),
        "state_type": kind,
        "state_name": name,
        "state": {"type": kind, "name": name, "message": message, "timestamp": _iso(now)},
        "expected_start_time": _iso(job.starts_at),
        "start_time": _iso(job.starts_at) if now >= job.starts_at else None,
        "end_time": _iso(job.finished_at) if done else None,
    }


def _routes_prefect(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing() -> Response:
        return _json({"detail": "Flow run not found"}, 404)

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_prefect_doc(ctx, job, _now(request)), 201)

    async def status(request: Request) -> Response:
        _, job = _lookup(ctx, request)
        return missing() if job is None else _json(_prefect_doc(ctx, job, _now(request)))

    async def set_state(request: Request) -> Response:
        # Prefect answers an accepted transition 201, one it aborts 200, with an
        # orchestration result; the fake orchestrates only CANCELLING and CANCELLED.
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing()
        body = await _body(request)
        state = body.get("state") if isinstance(body, dict) else None
        kind = state.get("type") if isinstance(state, dict) else None
        if kind not in ("CANCELLING", "CANCELLED"):
            return _json({"detail": "the fake API sets only CANCELLING and CANCELLED"}, 422)
        now = _now(request)
        wind_down = WIND_DOWN if kind == "CANCELLING" and job.phase(now) == "running" else 0.0
        if not store.cancel(job_id, now, after=wind_down):
            doc = _prefect_doc(ctx, job, now)
            reason = f"This run is already in terminal state {doc['state_type']}."
            return _json({"status": "ABORT", "details": {"reason": reason}, "state": None})
        state_doc = _prefect_doc(ctx, store.jobs[job_id], now)["state"]
        return _json({"status": "ACCEPT", "details": {}, "state": state_doc}, 201)

    return [
        Route("/api/deployments/{deployment}/create_flow_run", create, methods=["POST"]),
        Route("/api/flow_runs/{job_id}", status, methods=["GET"]),
        Route("/api/flow_runs/{job_id}/set_state", set_state, methods=["POST"]),
    ]


# ---------------------------------------------------------------- airflow (DAG runs)

_AIRFLOW_DAG = "/api/v2/dags/{dag_id}/dagRuns"
_AIRFLOW_STATES = {
    "pending": "queued",
    "running": "running",
    "succeeded": "success",
    "failed": "failed",
    "cancelled": "failed",
}


def _airflow_doc(job: FakeJob, now: float, dag_id: str) -> dict[str, Any]:
    phase = job.phase(now)
    body = job.input if isinstance(job.input, dict) else {}
    done = job.done(now)
    return {
        "dag_run_id": job.id,
        "dag_id": dag_id,
        "logical_date": None,
        "queued_at": _iso(job.created_at),
        "start_date": _iso(job.starts_at) if now >= job.starts_at else None,
        "end_date": _iso(job.finished_at) if done else None,
        "duration": job.finished_at - job.starts_at if done else None,
        "run_type": "manual",
        "state": _AIRFLOW_STATES[phase],
        "triggered_by": "rest_api",
        "conf": body.get("conf", {}),
        "note": None,
    }


def _routes_airflow(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(request: Request, job_id: str) -> Response:
        dag = request.path_params["dag_id"]
        detail = f"The DagRun with dag_id: `{dag}` and run_id: `{job_id}` was not found"
        return _json({"detail": detail}, 404)

    async def trigger(request: Request) -> Response:
        body = await _body(request)
        chosen = body.get("dag_run_id") if isinstance(body, dict) else None
        if isinstance(chosen, str) and chosen in store.jobs:
            return _json({"detail": f"DAG Run with run_id: `{chosen}` already exists"}, 409)
        job_id = chosen if isinstance(chosen, str) else None
        job = store.create(_now(request), body, job_id=job_id)
        _note(request, job.id)
        return _json(_airflow_doc(job, _now(request), request.path_params["dag_id"]))

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(request, job_id)
        return _json(_airflow_doc(job, _now(request), request.path_params["dag_id"]))

    async def patch(request: Request) -> Response:
        # Marking a run failed is how Airflow stops it: it has no cancelled state.
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(request, job_id)
        body = await _body(request)
        state = body.get("state") if isinstance(body, dict) else None
        outcomes: dict[str, Outcome] = {"failed": "failed", "success": "succeeded"}
        if state not in outcomes:
            return _json(
                {"detail": f"the fake API marks runs failed or success, not {state!r}"}, 422
            )
        now = _now(request)
        if not store.cancel(job_id, now, outcome=outcomes[state]):
            return _json({"detail": "the DAG run has already finished"}, 409)
        return _json(_airflow_doc(store.jobs[job_id], now, request.path_params["dag_id"]))

    async def xcom(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(request, job_id)
        if job.phase(_now(request)) != "succeeded":
            return _json({"detail": "XComEntry not found"}, 404)
        return _json(
            {
                "key": "return_value",
                "dag_id": request.path_params["dag_id"],
                "run_id": job_id,
                "task_id": request.path_params["task_id"],
                "map_index": -1,
                "value": ctx.result(job),
            }
        )

    task = _AIRFLOW_DAG + "/{job_id}/taskInstances/{task_id}/xcomEntries/return_value"
    return [
        Route(_AIRFLOW_DAG, trigger, methods=["POST"]),
        Route(_AIRFLOW_DAG + "/{job_id}", status, methods=["GET"]),
        Route(_AIRFLOW_DAG + "/{job_id}", patch, methods=["PATCH"]),
        Route(task, xcom, methods=["GET"]),
    ]


# ---------------------------------------------------------------- azure (status monitors)

_AZURE_VERSION = "api-version=2023-03-01-preview"
_AZURE_STATES = {
    "pending": "NotStarted",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Canceled",
}


def _azure_doc(ctx: Context, job: FakeJob, now: float, base: str) -> dict[str, Any]:
    phase = job.phase(now)
    doc: dict[str, Any] = {
        "id": job.id,
        "status": _AZURE_STATES[phase],
        "createdDateTime": _iso(job.created_at),
        "lastActionDateTime": _iso(min(now, job.finished_at)),
    }
    if phase == "succeeded":
        doc["resourceLocation"] = f"{base}/conversions/{job.id}?{_AZURE_VERSION}"
    elif phase == "failed":
        doc["error"] = {"code": "ConversionFailed", "message": ctx.error(job)}
    elif phase == "cancelled":
        doc["error"] = {"code": "Canceled", "message": "The operation was canceled by the client."}
    return doc


def _routes_azure(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(job_id: str) -> Response:
        message = f"The operation {job_id!r} was not found."
        return _json({"error": {"code": "NotFound", "message": message}}, 404)

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        monitor = f"{_base(request)}/operations/{job.id}?{_AZURE_VERSION}"
        return Response(status_code=202, headers={"Operation-Location": monitor})

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json(_azure_doc(ctx, job, _now(request), _base(request)))

    async def cancel(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        now = _now(request)
        if not store.cancel(job_id, now):
            message = "The operation has already finished; it cannot be canceled."
            return _json({"error": {"code": "InvalidOperationState", "message": message}}, 409)
        return _json(_azure_doc(ctx, store.jobs[job_id], now, _base(request)))

    async def resource(request: Request) -> Response:
        return _result_document(ctx, request)

    return [
        Route("/conversions", create, methods=["POST"]),
        Route("/operations/{job_id}", status, methods=["GET"]),
        Route("/operations/{job_id}:cancel", cancel, methods=["POST"]),
        Route("/conversions/{job_id}", resource, methods=["GET"]),
    ]


# ---------------------------------------------------------------- google (operations)

_GOOGLE_METADATA = "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeMetadata"
_GOOGLE_RESPONSE = "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeResponse"


def _google_response(ctx: Context, job: FakeJob) -> dict[str, Any]:
    """The operation's ``response``: the job's result, typed as a Speech response."""
    result = ctx.result(job)
    fields = result if isinstance(result, dict) else {"value": result}
    return {"@type": _GOOGLE_RESPONSE, **fields}


def _google_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    metadata: dict[str, Any] = {"@type": _GOOGLE_METADATA, "lastUpdateTime": _iso(now)}
    if phase != "pending":
        metadata["progressPercent"] = _percent(job, now)
        metadata["startTime"] = _iso(job.starts_at)
    doc: dict[str, Any] = {"name": job.id, "metadata": metadata}
    if phase in ("pending", "running"):
        return doc
    doc["done"] = True
    if phase == "succeeded":
        doc["response"] = _google_response(ctx, job)
    elif phase == "failed":
        doc["error"] = {"code": 3, "message": ctx.error(job)}
    else:
        doc["error"] = {"code": 1, "message": "Operation cancelled by the caller."}
    return doc


def _routes_google(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(job_id: str) -> Response:
        error = {"code": 404, "message": f"Operation {job_id} not found.", "status": "NOT_FOUND"}
        return _json({"error": error}, 404)

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json({"name": job.id})

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json(_google_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        # google.longrunning answers a cancel with an empty message, even when the
        # operation had finished (it stays as it ended).
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        store.cancel(job_id, _now(request))
        return _json({})

    return [
        Route("/v1/speech:longrunningrecognize", create, methods=["POST"]),
        Route("/v1/operations/{job_id}", status, methods=["GET"]),
        Route("/v1/operations/{job_id}:cancel", cancel, methods=["POST"]),
    ]


# ---------------------------------------------------------------- openai (batches)


def _openai_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    body = job.input if isinstance(job.input, dict) else {}
    total = job.total_pages * 10  # requests in the batch
    done = int(job.progress(now) * total)
    status = {
        "pending": "validating",
        "running": "finalizing" if job.progress(now) >= 0.9 else "in_progress",
        "succeeded": "completed",
        "failed": "failed",
        "cancelled": "cancelled",
    }[phase]
    if ctx.store.stopping(job, now):
        status = "cancelling"
    started = int(job.starts_at) if now >= job.starts_at else None
    doc: dict[str, Any] = {
        "id": job.id,
        "object": "batch",
        "endpoint": body.get("endpoint", "/v1/chat/completions"),
        "errors": None,
        "input_file_id": body.get("input_file_id", "file-input"),
        "completion_window": body.get("completion_window", "24h"),
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": int(job.created_at),
        "in_progress_at": started,
        "expires_at": int(job.created_at) + 86400,
        "completed_at": None,
        "failed_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": total, "completed": done, "failed": 0},
        "metadata": body.get("metadata"),
    }
    if phase == "succeeded":
        doc["output_file_id"] = f"file-{job.id}"
        doc["completed_at"] = int(job.finished_at)
    elif phase == "failed":
        doc["failed_at"] = int(job.finished_at)
        error = {"code": "invalid_json_line", "message": ctx.error(job), "param": None, "line": 1}
        doc["errors"] = {"object": "list", "data": [error]}
    elif phase == "cancelled":
        doc["cancelled_at"] = int(job.finished_at)
    if job.outcome == "cancelled" and job.finished_at - WIND_DOWN >= job.created_at:
        doc["cancelling_at"] = int(job.finished_at - WIND_DOWN)
    return doc


def _routes_openai(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(job_id: str) -> Response:
        error = {"message": f"No batch found with id '{job_id}'.", "type": "invalid_request_error"}
        return _json({"error": {**error, "param": None, "code": None}}, 404)

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_openai_doc(ctx, job, _now(request)))

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json(_openai_doc(ctx, job, _now(request)))

    async def cancel(request: Request) -> Response:
        # The batch is cancelling for up to 10 minutes, then cancelled; requests that
        # finished meanwhile are kept.
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        now = _now(request)
        if not store.cancel(job_id, now, after=WIND_DOWN):
            status = _openai_doc(ctx, job, now)["status"]
            message = f"Cannot cancel a batch with status '{status}'."
            error = {"message": message, "type": "invalid_request_error"}
            return _json({"error": {**error, "param": None, "code": None}}, 409)
        return _json(_openai_doc(ctx, store.jobs[job_id], now))

    async def content(request: Request) -> Response:
        # The output file: one JSON line per request of the batch.
        file_id = request.path_params["file_id"]
        job_id = file_id.removeprefix("file-")
        _note(request, job_id)
        job = store.jobs.get(job_id)
        if job is None or job.phase(_now(request)) != "succeeded":
            error = {"message": f"No such File object: {file_id}", "type": "invalid_request_error"}
            return _json({"error": {**error, "param": "id", "code": None}}, 404)
        line = {
            "id": f"batch_req_{job.index}",
            "custom_id": "request-1",
            "response": {"status_code": 200, "body": ctx.result(job)},
            "error": None,
        }
        return Response(json.dumps(line) + "\n", media_type="application/jsonl")

    return [
        Route("/v1/batches", create, methods=["POST"]),
        Route("/v1/batches/{job_id}", status, methods=["GET"]),
        Route("/v1/batches/{job_id}/cancel", cancel, methods=["POST"]),
        Route("/v1/files/{file_id}/content", content, methods=["GET"]),
    ]


# ---------------------------------------------------------------- replicate (predictions)

_REPLICATE_STATES = {
    "pending": "starting",
    "running": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "cancelled": "canceled",
}


def _replicate_doc(ctx: Context, job: FakeJob, now: float, base: str) -> dict[str, Any]:
    phase = job.phase(now)
    body = job.input if isinstance(job.input, dict) else {}
    url = f"{base}/v1/predictions/{job.id}"
    done = job.done(now)
    return {
        "id": job.id,
        "model": "black-forest-labs/flux-schnell",
        "version": "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637",
        "input": body.get("input", {}),
        "logs": "" if phase == "pending" else f"{_percent(job, now)}% done\n",
        "output": ctx.result(job) if phase == "succeeded" else None,
        "error": ctx.error(job) if phase == "failed" else None,
        "status": _REPLICATE_STATES[phase],
        "created_at": _iso(job.created_at),
        "started_at": _iso(job.starts_at) if now >= job.starts_at else None,
        "completed_at": _iso(job.finished_at) if done else None,
        "urls": {"get": url, "cancel": f"{url}/cancel"},
    }


def _routes_replicate(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing() -> Response:
        return _json({"detail": "Not found."}, 404)

    async def create(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_replicate_doc(ctx, job, _now(request), _base(request)), 201)

    async def status(request: Request) -> Response:
        _, job = _lookup(ctx, request)
        if job is None:
            return missing()
        return _json(_replicate_doc(ctx, job, _now(request), _base(request)))

    async def cancel(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing()
        now = _now(request)
        if not store.cancel(job_id, now):
            return _json({"detail": "The prediction has already finished."}, 409)
        return _json(_replicate_doc(ctx, store.jobs[job_id], now, _base(request)))

    return [
        Route("/v1/models/{owner}/{model}/predictions", create, methods=["POST"]),
        Route("/v1/predictions", create, methods=["POST"]),
        Route("/v1/predictions/{job_id}", status, methods=["GET"]),
        Route("/v1/predictions/{job_id}/cancel", cancel, methods=["POST"]),
    ]


# ---------------------------------------------------------------- jenkins (builds)

_JENKINS_JOB = "/job/{name}"
_JENKINS_QUEUE_BASE = 1730  # queue item ids: this plus the job's index
_JENKINS_NAME = "deploy"  # the Jenkins job the shape's URLs name


def _jenkins_doc(job: FakeJob, now: float, base: str, name: str) -> dict[str, Any]:
    phase = job.phase(now)
    building = phase == "running"
    results = {"succeeded": "SUCCESS", "failed": "FAILURE", "cancelled": "ABORTED"}
    done = job.done(now)
    return {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "building": building,
        "inProgress": building,
        "displayName": f"#{job.id}",
        "fullDisplayName": f"{name} #{job.id}",
        "duration": int((job.finished_at - job.starts_at) * 1000) if done else 0,
        "id": job.id,
        "number": int(job.id),
        "queueId": _JENKINS_QUEUE_BASE + job.index,
        "result": results.get(phase),
        "timestamp": int(job.starts_at * 1000),
        "url": f"{base}/job/{name}/{job.id}/",
    }


def _jenkins_queue_doc(job: FakeJob, now: float, base: str, name: str) -> dict[str, Any]:
    queue_id = _JENKINS_QUEUE_BASE + job.index
    doc: dict[str, Any] = {
        "_class": "hudson.model.Queue$WaitingItem",
        "blocked": False,
        "buildable": False,
        "id": queue_id,
        "inQueueSince": int(job.created_at * 1000),
        "stuck": False,
        "task": {"name": name, "url": f"{base}/job/{name}/"},
        "url": f"queue/item/{queue_id}/",
        "why": "In the quiet period.",
    }
    if job.outcome == "cancelled" and job.finished_at <= job.starts_at and job.done(now):
        doc.update({"_class": "hudson.model.Queue$LeftItem", "why": None, "cancelled": True})
    elif now >= job.starts_at:
        doc.update({"_class": "hudson.model.Queue$LeftItem", "why": None, "cancelled": False})
        doc["executable"] = {"number": int(job.id), "url": f"{base}/job/{name}/{job.id}/"}
    return doc


def _routes_jenkins(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing() -> Response:
        return Response("Not Found", 404, media_type="text/html")

    def started(request: Request) -> FakeJob | None:
        """The build, once it has left the queue (a queued build has no page yet)."""
        _, job = _lookup(ctx, request)
        return job if job is not None and _now(request) >= job.starts_at else None

    async def build(request: Request) -> Response:
        # buildWithParameters answers 201 with the queue item's URL, not the build's.
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        queue = f"{_base(request)}/queue/item/{_JENKINS_QUEUE_BASE + job.index}/"
        return Response(status_code=201, headers={"Location": queue})

    async def queue_item(request: Request) -> Response:
        queue_id = request.path_params["queue_id"]
        found = [j for j in store.jobs.values() if _JENKINS_QUEUE_BASE + j.index == queue_id]
        if not found:
            return missing()
        job = found[0]
        _note(request, job.id)
        return _json(_jenkins_queue_doc(job, _now(request), _base(request), _JENKINS_NAME))

    async def status(request: Request) -> Response:
        job = started(request)
        if job is None:
            return missing()
        name = request.path_params["name"]
        return _json(_jenkins_doc(job, _now(request), _base(request), name))

    async def stop(request: Request) -> Response:
        # Jenkins answers a stop with 302 Found to the build's page, whatever it did.
        job = started(request)
        if job is None:
            return missing()
        store.cancel(job.id, _now(request))
        page = f"{_base(request)}/job/{request.path_params['name']}/{job.id}/"
        return Response(status_code=302, headers={"Location": page})

    async def console(request: Request) -> Response:
        job = started(request)
        if job is None:
            return missing()
        lines = ["Started by user ada", f"build {job.id} running"]
        phase = job.phase(_now(request))
        if phase == "succeeded":
            lines.append(json.dumps(ctx.result(job)))
        elif phase == "failed":
            lines.append(f"ERROR: {ctx.error(job)}")
        if job.done(_now(request)):
            lines.append(f"Finished: {_jenkins_doc(job, _now(request), '', '')['result']}")
        return Response("\n".join(lines) + "\n", media_type="text/plain")

    return [
        Route(_JENKINS_JOB + "/buildWithParameters", build, methods=["POST"]),
        Route(_JENKINS_JOB + "/build", build, methods=["POST"]),
        Route("/queue/item/{queue_id:int}/api/json", queue_item, methods=["GET"]),
        Route(_JENKINS_JOB + "/{job_id}/api/json", status, methods=["GET"]),
        Route(_JENKINS_JOB + "/{job_id}/stop", stop, methods=["POST"]),
        Route(_JENKINS_JOB + "/{job_id}/consoleText", console, methods=["GET"]),
    ]


# ---------------------------------------------------------------- argo (workflows)

_ARGO = "/api/v1/workflows/{namespace}"
_ARGO_PHASES = {
    "pending": "Pending",
    "running": "Running",
    "succeeded": "Succeeded",
    "failed": "Failed",
    "cancelled": "Failed",  # argo stop ends a workflow Failed: Argo has no stopped phase
}
_ARGO_STEPS = 2


def _argo_doc(ctx: Context, job: FakeJob, now: float, namespace: str) -> dict[str, Any]:
    phase = job.phase(now)
    steps = _ARGO_STEPS if phase == "succeeded" else int(job.progress(now) * _ARGO_STEPS)
    done = job.done(now)
    status: dict[str, Any] = {
        "phase": _ARGO_PHASES[phase],
        "startedAt": _iso(job.starts_at) if now >= job.starts_at else None,
        "finishedAt": _iso(job.finished_at) if done else None,
        "progress": f"{steps}/{_ARGO_STEPS}",
    }
    if phase == "failed":
        status["message"] = ctx.error(job)
    elif phase == "cancelled":
        status["message"] = "Stopped with strategy 'Stop'"
    elif phase == "succeeded":
        status["outputs"] = {
            "parameters": [{"name": "result", "value": json.dumps(ctx.result(job))}]
        }
    spec: dict[str, Any] = {"workflowTemplateRef": {"name": "fake-template"}}
    if job.outcome == "cancelled" and job.finished_at <= now:
        spec["shutdown"] = "Stop"
    return {
        "metadata": {
            "name": job.id,
            "namespace": namespace,
            "labels": {
                "workflows.argoproj.io/completed": "true" if done else "false",
                "workflows.argoproj.io/phase": status["phase"],
            },
        },
        "spec": spec,
        "status": status,
    }


def _routes_argo(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(job_id: str) -> Response:
        message = f'workflows.argoproj.io "{job_id}" not found'
        return _json({"code": 5, "message": message}, 404)

    async def submit(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_argo_doc(ctx, job, _now(request), request.path_params["namespace"]))

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json(_argo_doc(ctx, job, _now(request), request.path_params["namespace"]))

    async def stop(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        now = _now(request)
        if not store.cancel(job_id, now):
            message = f"cannot shutdown a completed workflow: workflow: {job_id}"
            return _json({"code": 9, "message": message}, 409)
        return _json(_argo_doc(ctx, store.jobs[job_id], now, request.path_params["namespace"]))

    return [
        Route(_ARGO + "/submit", submit, methods=["POST"]),
        Route(_ARGO, submit, methods=["POST"]),
        Route(_ARGO + "/{job_id}", status, methods=["GET"]),
        Route(_ARGO + "/{job_id}/stop", stop, methods=["PUT"]),
        Route(_ARGO + "/{job_id}/terminate", stop, methods=["PUT"]),
    ]


# ---------------------------------------------------------------- rq (a user's own endpoint)

_RQ_STATES = {
    "pending": "queued",
    "running": "started",
    "succeeded": "finished",
    "failed": "failed",
}


def _rq_doc(ctx: Context, job: FakeJob, now: float) -> dict[str, Any]:
    phase = job.phase(now)
    if phase == "cancelled":  # send_stop_job_command() stops a started job, cancel() a queued one
        word = "stopped" if job.finished_at > job.starts_at else "canceled"
    else:
        word = _RQ_STATES[phase]
    exc_info = None
    if phase == "failed":
        exc_info = (
            "Traceback (most recent call last):\n"
            '  File "/app/jobs.py", line 12, in run\n'
            f"    raise RuntimeError({ctx.error(job)!r})\n"
            f"RuntimeError: {ctx.error(job)}\n"
        )
    return {
        "id": job.id,
        "status": word,
        "progress": None if phase == "pending" else _percent(job, now),
        "result": ctx.result(job) if phase == "succeeded" else None,
        "exc_info": exc_info,
    }


def _routes_rq(ctx: Context) -> list[BaseRoute]:
    store = ctx.store

    def missing(job_id: str) -> Response:
        return _json({"detail": f"No such job: {job_id}"}, 404)

    async def enqueue(request: Request) -> Response:
        job = store.create(_now(request), await _body(request))
        _note(request, job.id)
        return _json(_rq_doc(ctx, job, _now(request)), 201)

    async def status(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        return _json(_rq_doc(ctx, job, _now(request)))

    async def stop(request: Request) -> Response:
        job_id, job = _lookup(ctx, request)
        if job is None:
            return missing(job_id)
        if not store.cancel(job_id, _now(request)):
            return _json({"detail": f"job {job_id} has already finished"}, 409)
        return _json({"stopping": job_id})

    return [
        Route("/jobs", enqueue, methods=["POST"]),
        Route("/jobs/{job_id}", status, methods=["GET"]),
        Route("/jobs/{job_id}/stop", stop, methods=["POST"]),
    ]


# ---------------------------------------------------------------- the table


def _counter(prefix: str) -> Callable[[int, random.Random], str]:
    def make(index: int, rng: random.Random) -> str:
        return f"{prefix}{index}"

    return make


def _github_id(index: int, rng: random.Random) -> str:
    return str(11_042_387_464 + index)


def _google_id(index: int, rng: random.Random) -> str:
    return str(4_821_936_057_712_390_000 + index)


def _argo_id(index: int, rng: random.Random) -> str:
    return "fake-template-" + "".join(
        rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(5)
    )


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
        Shape(
            "prefect",
            f"/api/deployments/{_PREFECT_DEPLOYMENT}/create_flow_run",
            "/api/flow_runs/{job_id}",
            "/api/flow_runs/{job_id}/set_state",
            "POST",
            "/api/flow_runs/{job_id}",
            "Prefect flow runs: state objects SCHEDULED/RUNNING/COMPLETED/FAILED/CANCELLED",
            uuid_id,
            _routes_prefect,
            cancel_json={"state": {"type": "CANCELLING"}},
        ),
        Shape(
            "airflow",
            "/api/v2/dags/etl/dagRuns",
            "/api/v2/dags/etl/dagRuns/{job_id}",
            "/api/v2/dags/etl/dagRuns/{job_id}",
            "PATCH",
            "/api/v2/dags/etl/dagRuns/{job_id}/taskInstances/run/xcomEntries/return_value",
            "Airflow 3 DAG runs: queued/running/success/failed; stopped by marking them failed",
            _counter("manual__"),
            _routes_airflow,
            cancel_json={"state": "failed"},
        ),
        Shape(
            "azure",
            "/conversions?" + _AZURE_VERSION,
            "/operations/{job_id}?" + _AZURE_VERSION,
            "/operations/{job_id}:cancel?" + _AZURE_VERSION,
            "POST",
            "/conversions/{job_id}?" + _AZURE_VERSION,
            "Azure status monitors (Operation-Location): NotStarted/Running/Succeeded/Failed/"
            "Canceled",
            uuid_id,
            _routes_azure,
        ),
        Shape(
            "google",
            "/v1/speech:longrunningrecognize",
            "/v1/operations/{job_id}",
            "/v1/operations/{job_id}:cancel",
            "POST",
            "/v1/operations/{job_id}",
            "Google long-running operations: done, then response or error (code 1: cancelled)",
            _google_id,
            _routes_google,
        ),
        Shape(
            "openai",
            "/v1/batches",
            "/v1/batches/{job_id}",
            "/v1/batches/{job_id}/cancel",
            "POST",
            "/v1/files/file-{job_id}/content",
            "OpenAI batches: validating/in_progress/finalizing/completed/failed/cancelled",
            hex_id("batch_", 32),
            _routes_openai,
        ),
        Shape(
            "replicate",
            "/v1/models/black-forest-labs/flux-schnell/predictions",
            "/v1/predictions/{job_id}",
            "/v1/predictions/{job_id}/cancel",
            "POST",
            "/v1/predictions/{job_id}",
            "Replicate predictions: starting/processing/succeeded/failed/canceled, output",
            replicate_id,
            _routes_replicate,
        ),
        Shape(
            "jenkins",
            f"/job/{_JENKINS_NAME}/buildWithParameters",
            f"/job/{_JENKINS_NAME}/{{job_id}}/api/json",
            f"/job/{_JENKINS_NAME}/{{job_id}}/stop",
            "POST",
            f"/job/{_JENKINS_NAME}/{{job_id}}/consoleText",
            "Jenkins builds: a queue item, then building and result; stop answers 302",
            _counter(""),
            _routes_jenkins,
        ),
        Shape(
            "argo",
            "/api/v1/workflows/argo/submit",
            "/api/v1/workflows/argo/{job_id}",
            "/api/v1/workflows/argo/{job_id}/stop",
            "PUT",
            "/api/v1/workflows/argo/{job_id}",
            "Argo Workflows: status.phase, progress 'n/m', message; stop ends a workflow Failed",
            _argo_id,
            _routes_argo,
        ),
        Shape(
            "rq",
            "/jobs",
            "/jobs/{job_id}",
            "/jobs/{job_id}/stop",
            "POST",
            "/jobs/{job_id}",
            "RQ behind a user's own endpoint: status, result and exc_info",
            uuid_id,
            _routes_rq,
        ),
    )
}
