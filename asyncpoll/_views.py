"""How a poller shows itself: ``PollerSummary`` (jobs per state, readable when printed)
and the small HTML tables Jupyter shows (``_repr_html_``). Plain values: no event loop."""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping

import attrs

from ._status import JobState

__all__ = ["PollerSummary", "counts_text", "html_table"]


def counts_text(counts: Mapping[JobState, int]) -> str:
    """``"7 succeeded, 1 failed, 1 timed out"``: each state with jobs, in ``JobState`` order."""
    return ", ".join(
        f"{counts[state]} {state.value.replace('_', ' ')}"
        for state in JobState
        if counts.get(state, 0)
    )


def html_table(caption: str, rows: Iterable[tuple[str, object]]) -> str:
    """A two-column HTML table of ``(name, value)`` rows; every text is escaped."""
    cells = "".join(
        f"<tr><th style='text-align:left'>{html.escape(name)}</th>"
        f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>"
        for name, value in rows
    )
    return (
        f"<table class='asyncpoll'><caption style='text-align:left'>{html.escape(caption)}"
        f"</caption><tbody>{cells}</tbody></table>"
    )


@attrs.frozen
class PollerSummary:
    """How many of a poller's jobs are in each state, from ``TaskPoller.summary()``.

    ``print(poller.summary())`` gives one line, e.g. ``12 jobs: 3 in flight (1 pending,
    2 running), 7 succeeded, 1 failed, 1 timed out; 41 requests``; in Jupyter it shows as
    a table.

    Attributes:
        pending, running: jobs in flight in each live state.
        succeeded, failed, cancelled, timed_out, errored: jobs that ended in each
            terminal state (jobs forgotten by ``discard_finished()`` included).
        stalled: jobs in flight that have not changed for ``stall_timeout``.
        requests: requests made by the poller (as in ``statistics().requests``).
    """

    pending: int = 0
    running: int = 0
    succeeded: int = 0
    failed: int = 0
    cancelled: int = 0
    timed_out: int = 0
    errored: int = 0
    stalled: int = 0
    requests: int = 0

    @property
    def in_flight(self) -> int:
        """Jobs not finished yet (pending or running)."""
        return self.pending + self.running

    @property
    def finished(self) -> int:
        """Jobs that reached a terminal state."""
        return self.succeeded + self.failed + self.cancelled + self.timed_out + self.errored

    @property
    def total(self) -> int:
        """Every job: in flight and finished."""
        return self.in_flight + self.finished

    def counts(self) -> dict[JobState, int]:
        """The number of jobs in each ``JobState``."""
        return {state: getattr(self, state.value) for state in JobState}

    def __str__(self) -> str:
        text = f"{self.total} {'job' if self.total == 1 else 'jobs'}: {self.in_flight} in flight"
        if self.in_flight:
            live = {s: n for s, n in self.counts().items() if not s.is_terminal}
            text += f" ({counts_text(live)}"
            text += f", {self.stalled} stalled)" if self.stalled else ")"
        ended = counts_text({s: n for s, n in self.counts().items() if s.is_terminal})
        if ended:
            text += f", {ended}"
        return f"{text}; {self.requests} {'request' if self.requests == 1 else 'requests'}"

    def rows(self) -> list[tuple[str, object]]:
        """``(name, count)`` rows: each state, then stalled, total and requests."""
        rows: list[tuple[str, object]] = [
            (state.value.replace("_", " "), n) for state, n in self.counts().items()
        ]
        rows += [("stalled", self.stalled), ("total", self.total), ("requests", self.requests)]
        return rows

    def _repr_html_(self) -> str:
        return html_table("asyncpoll jobs", self.rows())
