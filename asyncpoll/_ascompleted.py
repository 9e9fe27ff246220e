"""What a poller reports: ``AsCompleted`` (handles in the order their jobs finish, from
the engine's finish log) and ``PollerStatistics`` (a snapshot of its counters)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import attrs

from ._status import JobState
from ._views import counts_text, html_table

if TYPE_CHECKING:
    from ._engine import Engine
    from ._handle import JobHandle

__all__ = ["AsCompleted", "PollerStatistics"]


@attrs.frozen
class PollerStatistics:
    """A snapshot of a poller's counters, from ``TaskPoller.statistics()``.

    Attributes:
        active: jobs in flight.
        finished: jobs that reached a terminal state, by state.
        requests: status requests made (``check=`` calls included).
        transient_errors: status requests that failed and were retried or counted.
        throttled: 429 responses received.
        callback_errors: callbacks that raised.
        waiting_for_rate_limit: requests waiting for a rate-limit slot right now.
    """

    active: int
    finished: Mapping[JobState, int]
    requests: int
    transient_errors: int
    throttled: int
    callback_errors: int
    waiting_for_rate_limit: int

    def __str__(self) -> str:
        done = sum(self.finished.values())
        by_state = counts_text(self.finished)
        return (
            f"{self.active} active, {done} finished"
            + (f" ({by_state})" if by_state else "")
            + f"; {self.requests} requests, {self.transient_errors} transient errors, "
            f"{self.throttled} throttled, {self.callback_errors} callback errors, "
            f"{self.waiting_for_rate_limit} waiting for the rate limit"
        )

    def _repr_html_(self) -> str:
        rows: list[tuple[str, object]] = [("active", self.active)]
        rows += [
            (f"finished {state.value.replace('_', ' ')}", self.finished.get(state, 0))
            for state in JobState
            if state.is_terminal
        ]
        rows += [
            ("requests", self.requests),
            ("transient errors", self.transient_errors),
            ("throttled", self.throttled),
            ("callback errors", self.callback_errors),
            ("waiting for the rate limit", self.waiting_for_rate_limit),
        ]
        return html_table("asyncpoll statistics", rows)


class AsCompleted:
    """The async iterator ``TaskPoller.as_completed()`` returns."""

    __slots__ = ("_engine", "_index", "_pending", "_skipped")

    def __init__(self, engine: Engine, wanted: set[JobHandle] | None) -> None:
        self._engine = engine
        self._pending = wanted  # chosen handles not yielded yet; None: every job
        self._index = 0  # the next finish number to look at (below the base: catch up)
        self._skipped: list[JobHandle] = []  # chosen handles that discard_finished() dropped

    def __aiter__(self) -> AsCompleted:
        return self

    async def __anext__(self) -> JobHandle:
        engine, pending = self._engine, self._pending
        while True:
            if self._index < engine.finished_base:
                self._catch_up()
            if self._skipped:
                return self._skipped.pop()
            finished = engine.finished
            while (i := self._index - engine.finished_base) < len(finished):
                handle = finished[i]
                self._index += 1
                if pending is None:
                    return handle
                if handle in pending:
                    pending.discard(handle)
                    return handle
            # Following every job, stop once none is in flight and no callback that might
            # add one is pending.
            if not pending if pending is not None else engine.idle():
                raise StopAsyncIteration
            await engine.wait_for_finish()

    def _catch_up(self) -> None:
        """discard_finished() dropped handles this iterator had not reached."""
        base = self._engine.finished_base
        if self._pending is not None:
            missed = [h for h in self._pending if 0 <= h._finish_seq < base]
            missed.sort(key=lambda h: h._finish_seq, reverse=True)  # popped from the end
            self._pending.difference_update(missed)
            self._skipped.extend(missed)
        self._index = base
