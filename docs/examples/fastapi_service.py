"""A FastAPI service that hands work to a job API and follows it with one TaskPoller.

One poller lives for the whole app: opened in the lifespan, shared by every request
through ``app.state``, and shut down cleanly when the server stops. Run it with::

    JOB_API=https://jobs.example.com uvicorn fastapi_service:app

Endpoints:
    POST /renders            submit a job, answer at once with its id (202)
    GET  /renders/{job_id}   the job's state and progress, and its result once done
    POST /renders/wait       submit a job and answer with its result (504 if it takes
                             longer than ``wait_timeout``)
"""

from __future__ import annotations

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx
from fastapi import FastAPI, HTTPException, Request

import asyncpoll

logger = logging.getLogger(__name__)


def make_app(
    job_api: str,
    *,
    client: httpx.AsyncClient | None = None,
    schedule: asyncpoll.Schedule | None = None,
    shutdown_grace: float = 30.0,
    wait_timeout: float = 60.0,
) -> FastAPI:
    """The app, polling the job API at ``job_api``.

    Args:
        job_api: the job API's base URL (``POST /jobs`` creates, ``GET /jobs/{id}``).
        client: an httpx client for the job API, with its own base URL (tests pass an
            in-process one); by default the poller makes one for ``job_api``.
        schedule: when to poll (default: every 1 s, growing to 15 s, with jitter).
        shutdown_grace: how long shutdown lets running jobs finish before it cancels
            them, in seconds.
        wait_timeout: how long ``POST /renders/wait`` waits for a result, in seconds.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with asyncpoll.TaskPoller(
            "/jobs/{job_id}",
            base_url=None if client is not None else job_api,
            client=client,
            rate_limit=asyncpoll.RateLimit(20, burst=5),
            schedule=schedule or asyncpoll.backoff(initial=1.0, factor=1.5, max=15.0),
            timeout=3600.0,
        ) as poller:
            app.state.poller = poller
            try:
                yield
            finally:
                # The server is stopping: no new jobs; running ones get a grace period,
                # then are cancelled (one log line says how many). A second Ctrl+C
                # cancels this wait at once, with the same effect.
                with anyio.move_on_after(shutdown_grace):
                    await poller.shutdown(wait=True)

    app = FastAPI(lifespan=lifespan)

    def poller_of(request: Request) -> asyncpoll.TaskPoller:
        return request.app.state.poller  # type: ignore[no-any-return]

    @app.post("/renders", status_code=202)
    async def create(body: dict[str, Any], request: Request) -> dict[str, Any]:
        handle = await poller_of(request).submit("/jobs", json=body)
        return {"job_id": handle.job_id, "state": handle.state.value}

    @app.get("/renders/{job_id}")
    async def status(job_id: str, request: Request) -> dict[str, Any]:
        try:
            handle = poller_of(request).handle(job_id)
        except ValueError:
            raise HTTPException(404, f"no render {job_id!r}") from None
        answer: dict[str, Any] = {
            "job_id": job_id,
            "state": handle.state.value,
            "progress": handle.progress,
        }
        if handle.done():
            error = handle.exception()
            answer["result"] = None if error is not None else handle.result()
            answer["error"] = None if error is None else str(error)
        return answer

    @app.post("/renders/wait")
    async def create_and_wait(body: dict[str, Any], request: Request) -> dict[str, Any]:
        handle = await poller_of(request).submit("/jobs", json=body)
        with anyio.move_on_after(wait_timeout):
            try:
                return {"job_id": handle.job_id, "result": await handle}
            except asyncpoll.AsyncPollError as exc:
                raise HTTPException(502, str(exc)) from exc
        # Waiting gave up; the job is still followed (GET /renders/{job_id}).
        raise HTTPException(504, f"render {handle.job_id!r} is still {handle.state.value}")

    return app


app = make_app(os.environ.get("JOB_API", "http://127.0.0.1:8000"))
