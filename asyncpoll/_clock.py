"""The one clock every wait of the engine goes through."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import Protocol, runtime_checkable

import anyio
import sniffio

__all__ = ["AnyioClock", "Clock"]


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
        """
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

    def __repr__(self) -> str:
        return "AnyioClock()"


class _BoundClock(AnyioClock):
    """``AnyioClock`` with ``now()`` bound to the running loop's time function."""

    __slots__ = ("now",)

    def __init__(self, now: Callable[[], float]) -> None:
        self.now = now  # type: ignore[method-assign]
