"""A pytest plugin with fixtures for the fake job API; opt in from a ``conftest.py``::

    pytest_plugins = ["asyncpoll.testing.pytest_plugin"]

Fixtures:

- ``fake_job_api``: a fresh ``FakeJobAPI`` per test, on the event loop's clock
  (``anyio.current_time``), so it follows virtual time when the loop has it. Talk to it
  in process with ``fake_job_api.client()``.
- ``fake_job_api_url``: the same API served on a loopback port for the test (uvicorn in a
  thread, real time: its clock becomes ``time.monotonic``); the value is the base URL.

Configure the API with a marker, whose keyword arguments go to ``FakeJobAPI``::

    @pytest.mark.fake_job_api(shape="envelope", failure_rate=0.5, seed=1)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from ._api import FakeJobAPI
from ._serve import serve

__all__ = ["fake_job_api", "fake_job_api_url", "pytest_configure"]

MARKER = "fake_job_api"


def pytest_configure(config: pytest.Config) -> None:
    """Register the ``fake_job_api`` marker (so ``--strict-markers`` accepts it)."""
    config.addinivalue_line(
        "markers",
        f"{MARKER}(**options): FakeJobAPI options for the fake_job_api fixtures "
        "(shape=, duration=, failure_rate=, seed=, rate_limit=, token=, ...)",
    )


def _options(request: pytest.FixtureRequest) -> dict[str, Any]:
    marker = request.node.get_closest_marker(MARKER)
    if marker is None:
        return {}
    if marker.args:
        raise TypeError(f"@pytest.mark.{MARKER} takes keyword arguments only")
    return dict(marker.kwargs)


@pytest.fixture
def fake_job_api(request: pytest.FixtureRequest) -> FakeJobAPI:
    """A fresh fake job API, configured by the test's ``fake_job_api`` marker.

    Its clock is ``anyio.current_time`` (unless the marker gives ``clock=``): job times
    follow the test's event loop, virtual time included. Jobs made with ``add_job()``
    therefore need a running loop (an async test) unless given ``at=``.
    """
    options = _options(request)
    options.setdefault("clock", anyio.current_time)
    return FakeJobAPI(**options)


@pytest.fixture
def fake_job_api_url(fake_job_api: FakeJobAPI, request: pytest.FixtureRequest) -> Iterator[str]:
    """``fake_job_api`` served on a loopback port for the test; the base URL.

    The server runs on real time: unless the marker gives ``clock=``, the API's clock
    becomes ``time.monotonic``.
    """
    if "clock" not in _options(request):
        fake_job_api.clock = time.monotonic
    with serve(fake_job_api) as url:
        yield url
