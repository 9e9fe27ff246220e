"""The public surface: what ``import asyncpoll`` offers and how it is packaged."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import pytest

import asyncpoll

FIXED_NAMES = {
    "AsyncPollError",
    "JobCancelled",
    "JobFailed",
    "JobHandle",
    "JobState",
    "JobTimeout",
    "PollError",
    "RateLimit",
    "Status",
    "TaskPoller",
    "backoff",
    "fixed",
    "poll",
    "poll_many",
}


def test_all_is_sorted_and_every_name_exists() -> None:
    """``__all__`` is sorted, has no duplicates, and each name is importable."""
    assert list(asyncpoll.__all__) == sorted(asyncpoll.__all__)
    assert len(set(asyncpoll.__all__)) == len(asyncpoll.__all__)
    for name in asyncpoll.__all__:
        assert hasattr(asyncpoll, name), name


def test_the_names_the_issue_fixes_are_exported() -> None:
    """Every public name users' code relies on is in ``__all__``."""
    assert set(asyncpoll.__all__) >= FIXED_NAMES


def test_every_public_name_has_a_docstring() -> None:
    """Each exported class and function documents itself."""
    for name in asyncpoll.__all__:
        obj = getattr(asyncpoll, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name


def test_errors_form_one_hierarchy() -> None:
    """Every asyncpoll exception derives from AsyncPollError; JobTimeout is a TimeoutError."""
    for cls in (
        asyncpoll.JobFailed,
        asyncpoll.JobTimeout,
        asyncpoll.JobCancelled,
        asyncpoll.PollError,
        asyncpoll.InvalidStateError,
    ):
        assert issubclass(cls, asyncpoll.AsyncPollError)
    assert issubclass(asyncpoll.JobTimeout, TimeoutError)


def test_the_package_is_typed() -> None:
    """The package ships a py.typed marker."""
    assert (Path(asyncpoll.__file__).parent / "py.typed").is_file()


@pytest.mark.parametrize(("library", "module"), [("httpx", "_http.py"), ("aiohttp", "_aiohttp.py")])
def test_each_http_client_is_imported_by_one_module(library: str, module: str) -> None:
    """httpx and aiohttp are each imported in exactly one module: a client stays an edge."""
    package = Path(asyncpoll.__file__).parent
    importers = sorted(
        path.name
        for path in package.glob("*.py")
        if any(
            line.lstrip().startswith((f"import {library}", f"from {library}"))
            for line in path.read_text().splitlines()
        )
    )
    assert importers == [module]


def test_importing_asyncpoll_leaves_aiohttp_unimported() -> None:
    """aiohttp is loaded only when a poller asks for it: the core import stays light."""
    code = "import sys, asyncpoll; print(sorted(m for m in sys.modules if 'aiohttp' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"
