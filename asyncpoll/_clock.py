"""The one clock every wait of the engine goes through."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio
import sniffio

__all__ = ["AnyioClock", "Clock", "wall_time_of"]


@runtime_checkable
class Clock(Protocol):
    """A source of time in float seconds, and a way to sleep until a reading of it.

    The default, ``AnyioClock``, reads the event loop's clock, so virtual-time event
    loops (trio's ``MockClock``, looptime on asyncio) make the whole engine run in
    virtual time. A custom clock must move at the event loop's pace: request time limits
    are loop timers of the same length.
    """

    def now(self) -> float:
        """The current time in seconds (any origin, never going backwards)."""
        ...

    async def sleep_until(self, deadline: float) -> None:
        """Return once ``now()`` has reached ``deadline`` (``math.inf``: never)."""
        ...


class AnyioClock:
    """The event loop's own clock, through anyio."""

    __slots__ = ()

    def bound(self) -> Clock:
        """The same clock, read straight from the running event loop.

        ``anyio.current_time()`` looks up the running async library on every call; a
        poller reads the clock several times per poll, so it binds once when it opens.
        A subclass (which may override ``now()``, ``sleep_until()`` or ``wall()``) is
        returned as it is.
        """
        if type(self) is not AnyioClock:
            return self
        library = sniffio.current_async_library()
        if library == "asyncio":
            return _BoundClock(asyncio.get_running_loop().time)
        if library == "trio":
            import trio

            return _BoundClock(trio.current_time)
        return self

    def now(self) -> float:
        """The event loop's time in seconds."""
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until the event loop's time reaches ``deadline``."""
        if deadline == math.inf:
            await anyio.sleep_forever()
        else:
            await anyio.sleep_until(deadline)

    def wall(self) -> float:
        """The wall-clock time in epoch seconds (``time.time()``).

        Optional for a ``Clock``: the engine measures an HTTP-date ``Retry-After`` that
        comes without a ``Date`` header against it (see ``wall_time_of``).
        """
        return time.time()

    def __repr__(self) -> str:
        return "AnyioClock()"


def wall_time_of(clock: Clock) -> Callable[[], float]:
    """The wall-clock time source of ``clock``: its ``wall()`` method when it has one,
    else ``time.time``. ``Clock`` itself asks only for ``now()`` and ``sleep_until()``,
    so a custom clock without ``wall()`` keeps working; a virtual-time clock can give
    ``wall()`` to make HTTP-date hints deterministic too."""
    wall = getattr(clock, "wall", None)
    return wall if callable(wall) else time.time


class _BoundClock(AnyioClock):
    """``AnyioClock`` with ``now()`` bound to the running loop's time function."""

    __slots__ = ("now",)

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now  # type: ignore[method-assign]
