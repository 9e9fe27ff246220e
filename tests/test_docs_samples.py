"""Every Python sample of README.md and docs/ runs, so that none can rot.

Sybil parses each page (README.md and every ``docs/**/*.md``); every ```` ```python ````
block is executed, in page order, in one namespace per page, as a reader would run them
one after another in the cells of a notebook:

- **Each block runs in a task of the page's event loop**, a looptime loop in virtual
  time (a job of ten minutes takes no time), while that loop runs, as a notebook runs a
  cell. A block may ``await`` at its top level. The loop stays between blocks, so a
  poller opened in one block (``await poller.open()``) still polls in the next.
- **Scripts**: a block that calls ``anyio.run(main, ...)`` runs ``main`` on an event
  loop of its own (virtual time too) on a thread of its own, as a script would run in a
  process of its own; the blocking API (``BlockingPoller``, ``poll_blocking()``, ...)
  runs its background loop in virtual time as well.
- **The job API**: every httpx request to ``https://api.example.com`` goes to the fake
  API of ``tests/docsworld.py`` (respx); a request to any other host fails the sample.
  The samples of ``getting-started.md`` and the guides bring their own
  ``asyncpoll.testing.FakeJobAPI``.
- **Names**: each page's namespace starts with ``anyio``, ``asyncio``, ``asyncpoll`` and
  ``httpx`` imported, as a fragment's reader would have them.
- **Context a fragment needs** (an open ``poller``, a ``job_ids`` list, an SDK client)
  comes from an invisible block just before it, an HTML comment the reader does not
  see: ``<!-- invisible-code-block: python`` ... ``-->``. It runs like any block.
- **Skipping** a block takes ``<!-- skip: next "why" -->`` (or ``skip: next if(condition,
  reason="why")``), Sybil's skip directive; ``SKIPS`` below lists every one, so that a new
  skip is a visible change.
- **Test code**: a block right after ``<!-- pytest-file: NAME -->`` is part of the file
  NAME (``conftest.py``, ``test_*.py``; blocks joined in page order); pytest runs each
  page's files in a fresh directory, and every test in them must pass.
- **Blocks run elsewhere**: a block right after ``<!-- recipe: KEY -->``
  (docs/job-systems.md, run by tests/test_job_systems_docs.py against fakes of each job
  system) or ``<!-- fake-api-example: KIND -->`` (docs/testing.md, run under pytest by
  tests/test_testing_fake_api.py) is left to that test.

```text```, ```sh``` and other blocks are not executed. Whatever a page left open (a
poller opened and not closed, a ``BlockingPoller``) is closed after its last block, and
that must succeed too.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import inspect
import pathlib
import re
import sys
import threading
import unittest
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import anyio.from_thread
import httpx
import looptime
import pytest
import respx
from anyio import run
from docsworld import HOST, answer
from sybil import Document, Example, Sybil
from sybil.evaluators.python import pad
from sybil.parsers.markdown import CodeBlockParser, SkipParser

import asyncpoll
import asyncpoll._blocking

pytest_plugins = ["pytester"]

ROOT = pathlib.Path(__file__).parent.parent

#: Virtual seconds after which a page's event loop gives up. (Not much more: looptime's
#: wait for I/O with no timer due is the time left, in milliseconds, in a C int.)
VIRTUAL_END = 1_000_000.0

#: The markers of blocks another test runs: marker name -> that test.
OWNED = {
    "recipe": "tests/test_job_systems_docs.py",
    "fake-api-example": "tests/test_testing_fake_api.py",
    "pytest-file": "test_the_pytest_files_of_the_page_pass, below",
}
_OWNED = re.compile(r"<!-- (?P<name>[\w-]+): (?P<key>[\w.-]+) -->\n")

#: What every page's namespace starts with: the names a reader of a fragment has imported.
#: (``sys`` is there for skip conditions: ``<!-- skip: next if(sys.version_info < ...) -->``.)
PRELUDE = {"anyio": anyio, "asyncio": asyncio, "asyncpoll": asyncpoll, "httpx": httpx, "sys": sys}

#: Every skip directive, as (page, what follows ``skip:``). Keep it short.
SKIPS = {
    (
        "docs/durability.md",
        'next "needs a Redis server; tests/test_store_processes.py runs a fleet of three"',
    ),
    (
        "docs/usage.md",
        'next if(sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in Python 3.11")',
    ),
}
_SKIP = re.compile(r"<!-- skip: (?P<what>.+?) -->")


def pages() -> list[pathlib.Path]:
    """README.md and every page under docs/."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def virtual_loop() -> asyncio.AbstractEventLoop:
    """A looptime event loop: virtual time from 0 to ``VIRTUAL_END``.

    Its clock ticks in nanoseconds: at looptime's default microsecond, a poller waiting
    out a fake API's ``RateLimit-Reset`` was seen to spin with the clock standing still.
    """
    return looptime.new_event_loop(start=0.0, end=VIRTUAL_END, resolution=1e-9)


def owner(example: Example) -> re.Match[str] | None:
    """The marker right before the block, naming who runs it, if any."""
    text, start = example.document.text, example.region.start
    for marker in _OWNED.finditer(text, max(0, start - 200), start):
        if marker.end() == start:
            return marker
    return None


async def _run(code: Any, namespace: dict[str, Any]) -> None:
    """Run a block that does not await, in a task of the page's loop, as a notebook runs
    a cell: the loop is running (``poller.add()`` wants one), the block blocks it."""
    exec(code, namespace)


class Page:
    """One page's run: its event loop, and the evaluator of its blocks."""

    def __init__(self, path: pathlib.Path, *, collect_only: bool = False) -> None:
        self.path = path
        self.collect_only = collect_only
        self.loop = virtual_loop()
        self.ran = 0
        self.owned = 0
        #: The page's pytest files: name -> its blocks, in page order.
        self.files: dict[str, list[str]] = {}

    def evaluate(self, example: Example) -> None:
        """Run one block in the page's namespace; a block that awaits, on the page's loop."""
        __tracebackhide__ = True
        marker = owner(example)
        if marker is not None:
            assert marker["name"] in OWNED, f"unknown marker {marker[0]!r}"
            self.owned += 1
            if marker["name"] == "pytest-file":
                self.files.setdefault(marker["key"], []).append(str(example.parsed))
            return
        if self.collect_only:
            return
        source = pad(example.parsed, example.line + example.parsed.line_offset)
        code = compile(
            source,
            example.path,
            "exec",
            flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT,
            dont_inherit=True,
        )
        namespace = example.namespace
        if code.co_flags & inspect.CO_COROUTINE:
            self.loop.run_until_complete(eval(code, namespace))
        else:
            self.loop.run_until_complete(_run(code, namespace))
        namespace.pop("__builtins__", None)
        self.ran += 1

    @staticmethod
    def run_script(func: Callable[..., Any], *args: Any, **_: Any) -> Any:
        """``anyio.run`` for the samples: ``func(*args)`` on an event loop of its own, in
        virtual time, on a thread of its own (the page's loop is running the block)."""
        outcome: list[Any] = []

        def target() -> None:
            try:
                options = {"loop_factory": virtual_loop}
                outcome.append((True, run(func, *args, backend_options=options)))
            except BaseException as exc:
                outcome.append((False, exc))

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        [(ok, value)] = outcome
        if not ok:
            raise value
        return value

    def close(self, namespace: dict[str, Any]) -> None:
        """Close what the page left open, then the loop."""
        for value in list(namespace.values()):
            # Opened with open() (closing a closed one does nothing).
            if isinstance(value, asyncpoll.TaskPoller) and value._host is not None:
                self.loop.run_until_complete(value.aclose())
            if isinstance(value, asyncpoll.BlockingPoller) and not value.closed:
                value.close()
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


def document(path: pathlib.Path, page: Page) -> Document:
    """The page, parsed: its Python blocks (invisible ones too) and skip directives."""
    parsers = [CodeBlockParser("python", evaluator=page.evaluate), SkipParser()]
    return Sybil(parsers=parsers, path=str(ROOT)).parse(path)


@pytest.fixture
def virtual_blocking(monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocking API's background event loop runs in virtual time."""
    start = anyio.from_thread.start_blocking_portal

    def portal(*_: Any, **__: Any) -> Any:
        return start("asyncio", {"loop_factory": virtual_loop})

    monkeypatch.setattr(asyncpoll._blocking, "start_blocking_portal", portal)


@pytest.fixture
def example_com() -> Iterator[respx.MockRouter]:
    """Every httpx request to api.example.com goes to the docs' fake job API."""
    with respx.mock(assert_all_called=False) as router:
        router.route(host=HOST).mock(side_effect=answer)
        yield router


@pytest.mark.usefixtures("virtual_blocking", "example_com")
@pytest.mark.parametrize("path", pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_samples_of_the_page_run(path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each Python block of the page runs without an error, in page order."""
    page = Page(path)
    monkeypatch.setattr(anyio, "run", page.run_script)
    doc = document(path, page)
    doc.namespace.update(PRELUDE)
    try:
        for example in doc:
            try:
                example.evaluate()
            except unittest.SkipTest:  # a skipped block; the page's next blocks still run
                continue
    except BaseException:
        with contextlib.suppress(Exception):  # the block's own error is the one to see
            page.close(doc.namespace)
        raise
    page.close(doc.namespace)


def pytest_files(path: pathlib.Path) -> dict[str, str]:
    """The page's ``<!-- pytest-file: NAME -->`` blocks, joined per file in page order."""
    page = Page(path, collect_only=True)
    try:
        for example in document(path, page):
            example.evaluate()
    finally:
        page.loop.close()
    return {name: "\n\n".join(blocks) for name, blocks in page.files.items()}


#: How many tests each page's pytest files hold (anyio tests count once per backend).
PYTEST_TESTS = {"docs/testing.md": 9}

PYTEST_PAGES = [path for path in pages() if "<!-- pytest-file: " in path.read_text("utf-8")]


@pytest.mark.parametrize("path", PYTEST_PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_pytest_files_of_the_page_pass(path: pathlib.Path, pytester: pytest.Pytester) -> None:
    """A page's test code (conftest.py, test modules) passes under pytest, every test.

    The blocks marked ``<!-- pytest-file: NAME -->`` make up the file NAME, in page order
    (a file's imports may come in an invisible block marked the same way); pytest runs the
    files in a fresh directory, warnings as errors, looptime's own plugin off (as
    docs/testing.md advises).
    """
    files = pytest_files(path)
    assert any(name.startswith("test_") for name in files), files.keys()
    for name, source in files.items():
        pytester.path.joinpath(name).write_text(source, encoding="utf-8")
    result = pytester.runpytest_subprocess(
        "-p",
        "no:looptime_plugin",
        "-p",
        "no:cacheprovider",
        "-W",
        "error",
        "-o",
        "asyncio_default_fixture_loop_scope=function",
        "-q",
    )
    result.assert_outcomes(passed=PYTEST_TESTS[str(path.relative_to(ROOT))])


def test_every_python_block_is_seen() -> None:
    """Sybil finds every ```` ```python ```` block of every page, and every skip is listed."""
    skips = set()
    for path in pages():
        text = path.read_text(encoding="utf-8")
        name = str(path.relative_to(ROOT))
        fenced = len(re.findall(r"^[ \t]*```python[ \t]*$", text, re.M))
        invisible = text.count("<!-- invisible-code-block: python")
        page = Page(path, collect_only=True)
        try:
            found = [e for e in document(path, page) if e.region.lexemes.get("arguments")]
        finally:
            page.loop.close()
        assert len(found) == fenced + invisible, name
        skips |= {(name, m["what"]) for m in _SKIP.finditer(text)}
    assert skips == SKIPS
