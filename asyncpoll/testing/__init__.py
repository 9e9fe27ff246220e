"""asyncpoll.testing: a fake job API for testing code that polls jobs.

``FakeJobAPI`` is an ASGI app (built on Starlette) that simulates a job API in one of
several shapes: jobs that take time, fail, report progress, and can be cancelled; answers
that fail, drop, come late or are rate limited; bearer-token auth; and a log of every
request. Use it in process (``api.client()``, an ``httpx.AsyncClient`` to pass as
``TaskPoller(client=...)``) or on a loopback port (``serve(api)``, uvicorn in a thread).
``pytest_plugins = ["asyncpoll.testing.pytest_plugin"]`` adds ``fake_job_api`` fixtures.

Needs the ``testing`` extra: ``pip install 'asyncpoll[testing]'``.
"""

from ._api import BASE_URL, ConnectionDropped, FakeJobAPI
from ._jobs import Duration, FakeJob, JobPhase, Outcome, RecordedRequest
from ._serve import LoopbackServer, serve
from ._shapes import SHAPES, Shape

__all__ = [
    "BASE_URL",
    "ConnectionDropped",
    "Duration",
    "FakeJob",
    "FakeJobAPI",
    "JobPhase",
    "LoopbackServer",
    "Outcome",
    "RecordedRequest",
    "SHAPES",
    "Shape",
    "serve",
]
