"""``Watchdog``: one task that cuts short every request outlasting ``request_timeout``.

Requests bounded by ``request_timeout`` (not by their job's nearer deadline) are queued
in start order, so their limits come in order too: one sleep until the oldest one's
limit covers them all, instead of a timer per request.
"""

from __future__ import annotations

import collections
import math
from typing import TYPE_CHECKING

import anyio

from ._clock import Clock

if TYPE_CHECKING:
    from ._handle import JobHandle

__all__ = ["Watchdog"]


class Watchdog:
    """Bounds requests by ``period`` seconds on ``clock``.

    A request is watched by its handle and a request number (``handle._in_request``
    while it runs, -1 once answered); the watchdog cancels the handle's scope
    (``handle._scope``) at its limit and remembers the handle as expired.
    """

    __slots__ = ("_expired", "_scope", "_watched", "clock", "open", "period")

    def __init__(self, clock: Clock, period: float) -> None:
        self.clock = clock
        self.period = period
        self.open = True  # until stop(), which may come before run() starts
        # (limit, request number, handle) in start order.
        self._watched: collections.deque[tuple[float, int, JobHandle]] = collections.deque()
        self._expired: set[JobHandle] = set()  # handles whose request was cut
        self._scope: anyio.CancelScope | None = None

    def watch(self, now: float, seq: int, handle: JobHandle) -> None:
        """Watch request ``seq`` of ``handle``, started at ``now``."""
        self._watched.append((now + self.period, seq, handle))

    def forget_answered(self) -> None:
        """A request ended: forget the answered ones at the queue's head now, not at their
        limit."""
        watched = self._watched
        while watched and watched[0][2]._in_request != watched[0][1]:
            watched.popleft()

    def took(self, handle: JobHandle) -> bool:
        """Whether the watchdog cut ``handle``'s request short (and forget it). Asked when
        the request was cut, and after an answer (which wins over a cut in the same
        instant)."""
        if self._expired and handle in self._expired:
            self._expired.discard(handle)
            return True
        return False

    def stop(self) -> None:
        self.open = False
        if self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        """The watchdog task, until ``stop()``."""
        watched, clock, period = self._watched, self.clock, self.period
        slept_to = -math.inf
        while self.open:
            # A sleep that ran its course reached its end, even where the clock's reading
            # rounds a hair below the float it was asked for.
            now = max(clock.now(), slept_to)
            while watched:
                limit, seq, handle = watched[0]
                if handle._in_request != seq:
                    watched.popleft()  # answered already
                elif limit <= now:
                    watched.popleft()
                    if handle._scope is not None:  # always, while _in_request is set
                        self._expired.add(handle)
                        handle._scope.cancel()
                else:
                    break
            # Anything queued while this sleeps has a later limit than its end.
            until = watched[0][0] if watched else now + period
            with anyio.CancelScope() as scope:
                self._scope = scope
                await clock.sleep_until(until)
            self._scope = None
            slept_to = -math.inf if scope.cancelled_caught else until
