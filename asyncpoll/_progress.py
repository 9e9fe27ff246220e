"""``TaskPoller(progress=True)``: a live tqdm display built on the event stream.

One overall bar counts jobs done of jobs added, with the failures, the jobs running and
their mean reported progress in its postfix, and the rate tqdm computes. Where the output
is interactive (a terminal or a Jupyter notebook), up to ``JOB_BARS`` more bars show the
most advanced running jobs that report progress; the bars are reused as jobs finish, so
the display stays a handful of lines with thousands of jobs. In a log file (not a
terminal) only the overall bar is drawn.

The display reads ``poller.events()`` on a task of the poller's task group; it never
looks at the engine. tqdm is an optional dependency (``asyncpoll[progress]``), imported
when a poller with ``progress=True`` is made.
"""

from __future__ import annotations

import heapq
import sys
import time
from typing import IO, TYPE_CHECKING, Any

import anyio

from ._events import EventKind
from ._redact import printable
from ._status import JobState

if TYPE_CHECKING:
    from ._bus import EventStream

__all__ = ["JOB_BARS", "ProgressDisplay", "load_tqdm"]

#: Bars for single jobs shown at most, below the overall bar (interactive output only).
JOB_BARS = 3
#: Characters of a job id shown on its bar.
JOB_LABEL = 20
#: The shortest gap between two redraws, in wall-clock seconds.
REFRESH_INTERVAL = 0.1

INSTALL_HINT = "progress=True needs tqdm: pip install 'asyncpoll[progress]'"


def load_tqdm() -> Any:
    """tqdm's ``tqdm.auto.tqdm`` (a terminal bar, or a widget in Jupyter).

    Raises:
        ImportError: tqdm is not installed; the message says how to install it.
    """
    try:
        from tqdm.auto import tqdm  # type: ignore[import-untyped]  # asyncpoll[progress]
    except ImportError as exc:
        raise ImportError(INSTALL_HINT) from exc
    return tqdm


def _interactive(tqdm_class: Any, file: IO[str] | None) -> bool:
    if str(getattr(tqdm_class, "__module__", "")).startswith("tqdm.notebook"):
        return True
    isatty = getattr(file, "isatty", None)
    try:
        return bool(isatty()) if callable(isatty) else False
    except (ValueError, OSError):  # a closed file
        return False


def _label(job_id: str) -> str:
    """A job id in ``JOB_LABEL`` characters: its end, where ids (and URLs) differ; control
    characters escaped (an id from a create response is the server's text)."""
    job_id = printable(job_id)
    if len(job_id) > JOB_LABEL:
        job_id = "…" + job_id[-(JOB_LABEL - 1) :]
    return f"{job_id:<{JOB_LABEL}}"


def _set_total(bar: Any, total: int) -> None:
    """Set a bar's total; a Jupyter widget's too (tqdm.notebook reads it once, at start)."""
    if bar.total == total:
        return
    unknown = not bar.total
    bar.total = total
    children = getattr(getattr(bar, "container", None), "children", None)
    if children is None or len(children) != 3:
        return
    widget = children[1]  # the IProgress between the two texts
    widget.max = total
    if unknown and total:  # from tqdm's "no total" look to a plain bar
        widget.bar_style = ""
        if getattr(bar, "ncols", None) is None:
            widget.layout.width = None


class ProgressDisplay:
    """Draws a poller's jobs as tqdm bars, from its event stream.

    Args:
        tqdm_class: the tqdm class to draw with (default: ``tqdm.auto.tqdm``).
        file: where a terminal bar is written (default: ``sys.stderr``, as tqdm does).
        job_bars: bars for single jobs; None: ``JOB_BARS`` when the output is a
            terminal or a notebook, else 0.
        desc: the overall bar's label.

    Attributes:
        total: jobs added since the display started.
        done: jobs finished.
        failed: jobs finished in any state but SUCCEEDED.
    """

    def __init__(
        self,
        *,
        tqdm_class: Any = None,
        file: IO[str] | None = None,
        job_bars: int | None = None,
        desc: str = "jobs",
    ) -> None:
        self._tqdm = tqdm_class if tqdm_class is not None else load_tqdm()
        self._file = file
        if job_bars is None:
            shown_on = file if file is not None else sys.stderr  # where tqdm writes
            job_bars = JOB_BARS if _interactive(self._tqdm, shown_on) else 0
        self._job_bars = job_bars
        self._desc = desc
        self.total = 0
        self.done = 0
        self.failed = 0
        self._running: dict[str, float | None] = {}  # job id -> its progress, in flight
        self._bar: Any = None
        self._slots: list[Any] = []  # one tqdm bar per single-job slot
        self._shown: list[str | None] = []  # the job id each slot shows, or None
        self._last_draw = 0.0

    def __repr__(self) -> str:
        return f"<ProgressDisplay {self.done}/{self.total} failed={self.failed}>"

    # ---------------------------------------------------------------- events

    def _apply(self, kind: EventKind, job_id: str, state: JobState, progress: float | None) -> None:
        if kind is EventKind.ADDED:
            self.total += 1
            self._running[job_id] = progress
        elif kind is EventKind.DONE:
            self.done += 1
            if state is not JobState.SUCCEEDED:
                self.failed += 1
            self._running.pop(job_id, None)
            for i, shown in enumerate(self._shown):
                if shown == job_id:
                    self._shown[i] = None
        elif job_id in self._running:
            self._running[job_id] = progress

    async def run(self, stream: EventStream) -> None:
        """Draw until the stream ends (the poller closed); then close the bars."""
        self._open()
        try:
            async for event in stream:
                self._apply(event.kind, event.job_id, event.state, event.progress)
                # Take in every event already waiting before drawing once.
                while True:
                    try:
                        more = stream.get_nowait()
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                    self._apply(more.kind, more.job_id, more.state, more.progress)
                self._draw()
        finally:
            stream.close()
            self.close()

    # ---------------------------------------------------------------- drawing

    def _open(self) -> None:
        if self._bar is not None:
            return
        self._bar = self._tqdm(
            total=0,
            desc=self._desc,
            unit="job",
            file=self._file,
            dynamic_ncols=True,
            smoothing=0.1,
        )
        self._last_draw = time.monotonic()

    def _postfix(self) -> str:
        running = len(self._running)
        reported = [p for p in self._running.values() if p is not None]
        text = f"{self.failed} failed, {running} in flight"
        if reported:
            text += f", mean progress {100 * sum(reported) / len(reported):.0f}%"
        return text

    def _draw(self) -> None:
        """Redraw, at most every ``REFRESH_INTERVAL`` seconds of wall-clock time."""
        now = time.monotonic()
        if now - self._last_draw < REFRESH_INTERVAL:
            return
        self._last_draw = now
        bar = self._bar
        printed = bar.last_print_t
        self._update_overall()
        if bar.last_print_t == printed:  # update() did not redraw it
            bar.refresh()
        if self._job_bars:
            self._draw_jobs()

    def _update_overall(self) -> None:
        bar = self._bar
        _set_total(bar, self.total)
        bar.set_postfix_str(self._postfix(), refresh=False)
        step = self.done - bar.n
        if step:
            bar.update(step)  # tqdm's smoothed rate

    def _draw_jobs(self) -> None:
        while len(self._slots) < self._job_bars:
            position = len(self._slots) + 1
            self._slots.append(
                self._tqdm(
                    total=100,
                    desc="",
                    file=self._file,
                    position=position,
                    leave=False,
                    bar_format="  {desc} {percentage:3.0f}%|{bar}|",
                    ncols=JOB_LABEL + 40,
                )
            )
            self._shown.append(None)
        free = [i for i, shown in enumerate(self._shown) if shown is None]
        if free:
            shown = set(self._shown)
            candidates = heapq.nlargest(
                len(free),
                (
                    (p, job_id)
                    for job_id, p in self._running.items()
                    if p is not None and job_id not in shown
                ),
            )
            for i, (_, job_id) in zip(free, candidates, strict=False):
                self._shown[i] = job_id
        for slot, shown_id in zip(self._slots, self._shown, strict=True):
            if shown_id is None:
                slot.set_description_str(f"{'(waiting)':<{JOB_LABEL}}", False)
                slot.n = 0
            else:
                slot.set_description_str(_label(shown_id), False)
                slot.n = round(100 * (self._running.get(shown_id) or 0.0))
            slot.refresh()

    def close(self) -> None:
        """Draw the final counts and close every bar (idempotent)."""
        if self._bar is None:
            return
        self._update_overall()
        for slot in self._slots:
            slot.close()
        self._slots.clear()
        self._shown.clear()
        bar, self._bar = self._bar, None
        bar.close()
