"""The job API the documentation's samples talk to: ``https://api.example.com``.

The samples in README.md and docs/ poll ``https://api.example.com/v1/jobs/{job_id}`` and
friends, as a reader would write them against a real API. tests/test_docs_samples.py runs
them with every httpx request to that host routed (respx) into this ASGI app, which hands
each path to an ``asyncpoll.testing.FakeJobAPI`` of the right shape:

- ``/v1/jobs/...``: the ``location`` shape (``POST /v1/jobs`` answers ``202`` with a
  ``Location``; a finished job answers ``303 See Other`` to its result);
- ``/v1/renders/...``: the same API under another name (a create there is answered with a
  ``Location`` under ``/v1/jobs``);
- ``/v2/tasks`` and ``/v2/tasks/{id}``: the ``envelope`` shape (``data.state``,
  ``data.resultJson``), as the README's ``JsonReader`` example reads it.

A status or cancel request for an id nobody created makes that job, as if someone else had
created it: samples ``add()`` ids they got from elsewhere. Jobs run 1 to 3 seconds on the
event loop's clock, so in virtual time they take no time at all. Each event loop gets a
world of its own (a page's loop, a blocking poller's loop), so that a job's times are
always read on one clock.
"""

from __future__ import annotations

import asyncio
import re
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any

import anyio
import httpx

from asyncpoll.testing import FakeJobAPI

HOST = "api.example.com"

Scope = MutableMapping[str, Any]

_JOB_PATH = re.compile(r"^/v1/jobs/(?P<id>[^/]+)$")
_TASK_PATH = re.compile(r"^/v2/tasks/(?P<id>[^/]+)$")


class DocsWorld:
    """``https://api.example.com``: a ``location`` and an ``envelope`` fake job API."""

    def __init__(self) -> None:
        self.jobs = FakeJobAPI("location", duration=(1.0, 3.0), seed=1, clock=anyio.current_time)
        self.tasks = FakeJobAPI(
            "envelope",
            duration=(1.0, 3.0),
            seed=2,
            clock=anyio.current_time,
            result=lambda job: {"pages": 8},
        )

    async def __call__(self, scope: Scope, receive: Callable[..., Any], send: Any) -> None:
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/v1/renders" or path.startswith("/v1/renders/"):
            path = "/v1/jobs" + path[len("/v1/renders") :]
        if path == "/v1/jobs" or path.startswith("/v1/jobs/"):
            match = _JOB_PATH.match(path)
            if match and match["id"] not in self.jobs.jobs and scope["method"] != "POST":
                self.jobs.add_job(match["id"])
            await self.jobs({**scope, "path": path, "raw_path": path.encode()}, receive, send)
            return
        match = _TASK_PATH.match(path)
        if path == "/v2/tasks" or match:
            if match is None:
                scope = {**scope, "path": "/api/v1/jobs/createTask", "query_string": b""}
            else:
                if match["id"] not in self.tasks.jobs:
                    self.tasks.add_job(match["id"])
                scope = {
                    **scope,
                    "path": "/api/v1/jobs/recordInfo",
                    "query_string": f"taskId={match['id']}".encode(),
                }
            scope["raw_path"] = scope["path"].encode()
            await self.tasks(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


_WORLDS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, DocsWorld] = (
    weakref.WeakKeyDictionary()
)


def world() -> DocsWorld:
    """The running event loop's world (made on first use)."""
    loop = asyncio.get_running_loop()
    if loop not in _WORLDS:
        _WORLDS[loop] = DocsWorld()
    return _WORLDS[loop]


async def answer(request: httpx.Request) -> httpx.Response:
    """A respx side effect: the running loop's world answers ``request``."""
    transport = httpx.ASGITransport(app=world())
    response = await transport.handle_async_request(request)
    content = await response.aread()
    return httpx.Response(response.status_code, headers=response.headers, content=content)


# ---------------------------------------------------------------- SDK stand-ins


class _Record:
    """An SDK's answer: attributes, and ``model_dump()`` for the dict (as pydantic's)."""

    def __init__(self, **fields: Any) -> None:
        self.__dict__.update(fields)

    def model_dump(self) -> dict[str, Any]:
        return dict(self.__dict__)


class _Jobs:
    """``sdk.jobs``: ``create()`` and ``retrieve()``; a job completes on its third look."""

    def __init__(self) -> None:
        self.looks: dict[str, int] = {}

    async def create(self, **_: Any) -> _Record:
        job_id = f"sdk-{len(self.looks) + 1}"
        self.looks[job_id] = 0
        return _Record(id=job_id, status="queued", output=None, error=None)

    async def retrieve(self, job_id: str) -> _Record:
        self.looks[job_id] = self.looks.get(job_id, 0) + 1
        if self.looks[job_id] < 3:
            return _Record(id=job_id, status="running", output=None, error=None)
        return _Record(id=job_id, status="completed", output={"frames": 24}, error=None)


class _Batches:
    """``client.batches`` of an OpenAI-like SDK; a batch completes on its third look."""

    def __init__(self) -> None:
        self.looks: dict[str, int] = {}

    async def create(self, **_: Any) -> _Record:
        batch_id = f"batch_{len(self.looks) + 1}"
        self.looks[batch_id] = 0
        return self._batch(batch_id, "validating")

    async def retrieve(self, batch_id: str) -> _Record:
        self.looks[batch_id] = self.looks.get(batch_id, 0) + 1
        return self._batch(batch_id, "in_progress" if self.looks[batch_id] < 3 else "completed")

    @staticmethod
    def _batch(batch_id: str, status: str) -> _Record:
        done = status == "completed"
        return _Record(
            id=batch_id,
            object="batch",
            status=status,
            output_file_id="file-1" if done else None,
            errors=None,
            request_counts={"total": 10, "completed": 10 if done else 4, "failed": 0},
        )


class FakeSDK:
    """A stand-in for a job API's SDK client: ``sdk.jobs`` and ``sdk.batches``."""

    def __init__(self) -> None:
        self.jobs = _Jobs()
        self.batches = _Batches()
