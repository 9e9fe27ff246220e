"""Real servers (Celery with Flower, ...) that tests start on loopback ports.

``require()`` is the one rule for a test whose server software is missing: it skips
with a reason naming what is missing, unless ``ASYNCPOLL_REAL_SERVERS=required`` is set
(as CI sets it), when the test fails with that message instead.

Only the standard library is imported here, so that a missing package is reported by
``require()`` and not by an ImportError.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NoReturn

import pytest

__all__ = ["REQUIRED_ENV", "LogsOnFailure", "cannot_run", "missing", "require", "tail"]

#: Set to ``required`` to turn every skip for missing server software into a failure.
REQUIRED_ENV = "ASYNCPOLL_REAL_SERVERS"


def missing(modules: Iterable[str] = (), binaries: Iterable[str] = ()) -> list[str]:
    """What of ``modules`` (importable in this interpreter) and ``binaries`` (on PATH)
    is not here, each named for a message: ``python package 'celery'``,
    ``program 'redis-server' (not on PATH)``."""
    absent = [
        f"python package {name!r}" for name in modules if importlib.util.find_spec(name) is None
    ]
    absent += [f"program {name!r} (not on PATH)" for name in binaries if not shutil.which(name)]
    return absent


def require(
    modules: Iterable[str] = (), binaries: Iterable[str] = (), *, what: str = "these tests"
) -> None:
    """Skip the calling test (or fixture) when server software is missing.

    With ``ASYNCPOLL_REAL_SERVERS=required`` in the environment it fails instead, so a
    CI that installed the software cannot pass by skipping.

    Args:
        modules: top-level Python packages that must be importable (checked without
            importing them).
        binaries: programs that must be on PATH.
        what: what needs them, for the message (``"the Celery tests"``).
    """
    absent = missing(modules, binaries)
    if absent:
        cannot_run(f"{what} need {', '.join(absent)}")


def cannot_run(reason: str) -> NoReturn:
    """Skip the calling test (or fixture) for ``reason``; fail instead under
    ``ASYNCPOLL_REAL_SERVERS=required``."""
    if os.environ.get(REQUIRED_ENV, "").strip().lower() == "required":
        pytest.fail(f"{reason}; {REQUIRED_ENV}=required is set, so this fails", pytrace=False)
    pytest.skip(f"{reason} (set {REQUIRED_ENV}=required to fail instead)")


def tail(path: Path, chars: int) -> str:
    """The last ``chars`` characters of a server's log, for a failure report."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return text if len(text) <= chars else "...\n" + text[-chars:]


class LogsOnFailure:
    """A pytest plugin that adds servers' logs to the report of each failed test that
    uses the fixture ``fixture``."""

    def __init__(self, fixture: str, title: str, logs: Callable[[], str]) -> None:
        self.fixture = fixture
        self.title = title
        self.logs = logs

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
        outcome = yield
        report = outcome.get_result()
        if report.failed and self.fixture in getattr(item, "fixturenames", ()):
            report.sections.append((self.title, self.logs()))
