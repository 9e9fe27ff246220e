"""``TaskPoller(progress=True)``: tqdm bars drawn from the event stream, in virtual time.

tqdm writes to ``sys.stderr`` when the bar is made; each test points it at a
``StringIO`` and checks the counts the bar ends with.
"""

from __future__ import annotations

import io
import re
import subprocess
import sys
from typing import Any

import anyio
import pytest

import asyncpoll
from asyncpoll.testing import FakeJobAPI, serve

pytestmark = pytest.mark.anyio


class Terminal(io.StringIO):
    """A StringIO that says it is a terminal, so the per-job bars are drawn."""

    def isatty(self) -> bool:
        return True


def final_line(text: str) -> str:
    """The last state the overall bar was drawn in."""
    drawn = [piece for piece in re.split(r"[\r\n]", text) if piece.startswith("jobs:")]
    return drawn[-1].rstrip()


def api(**options: Any) -> FakeJobAPI:
    options.setdefault("duration", (10.0, 60.0))
    return FakeJobAPI(clock=anyio.current_time, seed=3, **options)


def poller(fake: FakeJobAPI, client: Any, **options: Any) -> asyncpoll.TaskPoller:
    return asyncpoll.TaskPoller(
        client=client, schedule=asyncpoll.fixed(5.0), progress=True, **fake.poller_options(),
        **options,
    )  # fmt: skip


async def test_the_bar_ends_with_every_job_and_the_failures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """40 jobs, 7 of them failing: the bar ends at 40/40 with 7 failed."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    fake = api()
    async with fake.client() as client, poller(fake, client) as p:
        for n in range(40):
            p.add(fake.add_job(fail=n % 6 == 0).id)
    assert p.summary().failed == 7
    line = final_line(out.getvalue())
    assert line.startswith("jobs: 100%|")
    assert " 40/40 [" in line
    assert line.endswith("job/s, 7 failed, 0 in flight]")
    assert out.getvalue().endswith("\n")  # the bar was closed, and left in place
    assert "(waiting)" not in out.getvalue()  # not a terminal: no per-job bars


async def test_jobs_added_later_raise_the_total(monkeypatch: pytest.MonkeyPatch) -> None:
    """The total is the jobs added so far: 3, then 5."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    fake = api(duration=10.0)
    async with fake.client() as client, poller(fake, client) as p:
        await p.gather(*[p.add(fake.add_job().id) for _ in range(3)])
        await anyio.sleep(0.5)  # (the display's own pace is the wall clock's)
        for _ in range(2):
            p.add(fake.add_job(fail=True).id)
    assert " 5/5 [" in final_line(out.getvalue())
    assert "2 failed, 0 in flight" in final_line(out.getvalue())


async def test_a_terminal_gets_bars_for_the_jobs_reporting_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """On a terminal, up to three job bars show job ids and percentages, then go away."""
    out = Terminal()
    monkeypatch.setattr(sys, "stderr", out)
    # Wall-clock pacing: let the display redraw while the jobs run.
    monkeypatch.setattr("asyncpoll._progress.REFRESH_INTERVAL", 0.0)
    fake = api(duration=(20.0, 40.0))
    async with fake.client() as client, poller(fake, client) as p:
        for _ in range(10):
            p.add(fake.add_job().id)
    text = out.getvalue()
    assert re.search(r"  job-\d+ +\d+%\|", text)  # a job's bar, with its percentage
    assert "mean progress" in text
    assert " 10/10 [" in final_line(text)
    assert text.endswith("0 failed, 0 in flight]\n")


async def test_leaving_with_an_exception_closes_the_bar(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Jobs cancelled by an exception count as done and not succeeded."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    fake = api(duration=1000.0)
    with pytest.raises(KeyError):
        async with fake.client() as client, poller(fake, client) as p:
            for _ in range(4):
                p.add(fake.add_job().id)
            await anyio.sleep(1.0)
            raise KeyError("stop")
    line = final_line(out.getvalue())
    assert " 4/4 [" in line
    assert "4 failed, 0 in flight" in line


async def test_progress_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="progress must be True or False"):
        asyncpoll.TaskPoller("https://api.test/jobs/{job_id}", progress="yes")  # type: ignore[arg-type]


async def test_without_tqdm_progress_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Made where the poller is made: an ImportError naming the extra."""
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=re.escape("pip install 'asyncpoll[progress]'")):
        asyncpoll.TaskPoller("https://api.test/jobs/{job_id}", progress=True)
    asyncpoll.TaskPoller("https://api.test/jobs/{job_id}")  # without progress: fine


def test_the_blocking_twins_pass_progress_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """poll_many_blocking(progress=True) and BlockingPoller(progress=True) draw a bar."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stderr", out)
    fake = FakeJobAPI(duration=0.05)
    with serve(fake) as url:
        ids = [fake.add_job().id for _ in range(3)]
        results = asyncpoll.poll_many_blocking(
            ids, status_url=url + "/jobs/{job_id}", schedule=asyncpoll.fixed(0.02), progress=True
        )
        assert len(results) == 3
        assert " 3/3 [" in final_line(out.getvalue())
        with asyncpoll.BlockingPoller(
            url + "/jobs/{job_id}", schedule=asyncpoll.fixed(0.02), progress=True
        ) as blocking:
            blocking.add(fake.add_job().id).result(timeout=10)
        assert " 1/1 [" in final_line(out.getvalue())


def test_importing_asyncpoll_leaves_tqdm_unimported() -> None:
    code = "import sys, asyncpoll; print(sorted(m for m in sys.modules if 'tqdm' in m))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout == "[]\n"


async def test_a_jupyter_widget_gets_the_growing_total() -> None:
    """tqdm.notebook reads the total once; the display sets its widget's max itself."""
    from types import SimpleNamespace

    from tqdm import tqdm

    widgets: list[Any] = []

    class Notebook(tqdm):  # type: ignore[misc]
        """A text bar with the widget container tqdm.notebook has."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            widget = SimpleNamespace(max=1, bar_style="info", layout=SimpleNamespace(width="20px"))
            self.container = SimpleNamespace(children=[None, widget, None])
            widgets.append(widget)

    from asyncpoll._progress import ProgressDisplay

    fake = api()
    async with (
        fake.client() as client,
        asyncpoll.TaskPoller(
            client=client, schedule=asyncpoll.fixed(5.0), **fake.poller_options()
        ) as p,
    ):
        display = ProgressDisplay(tqdm_class=Notebook, file=io.StringIO(), job_bars=1)
        events = p.events()
        async with anyio.create_task_group() as tg:
            tg.start_soon(display.run, events)
            for _ in range(6):
                p.add(fake.add_job().id)
            await p.gather(*p.in_flight())
            events.close()  # the display ends after the events it has
    overall = widgets[0]
    assert (overall.max, overall.bar_style, overall.layout.width) == (6, "", None)
    assert (display.total, display.done, display.failed) == (6, 6, 0)
