"""Tests for ``asyncpoll._clock``: the engine's clock and its optional wall time."""

from __future__ import annotations

import math
import time

import anyio
import pytest

from asyncpoll import AnyioClock, Clock
from asyncpoll._clock import wall_time_of


class LoopClock:
    """A custom clock with only what ``Clock`` asks for: no ``wall()``."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep_until(deadline)


class FixedWall(LoopClock):
    """A custom clock with a wall time of its own."""

    def wall(self) -> float:
        return 1e9


def test_anyio_clock_wall_is_time_time() -> None:
    """AnyioClock.wall() reads the real wall clock."""
    before = time.time()
    wall = AnyioClock().wall()
    assert before <= wall <= time.time()


def test_wall_time_of_uses_the_clock_s_wall_when_it_has_one() -> None:
    """wall_time_of gives the clock's wall(), else time.time."""
    clock = AnyioClock()
    assert wall_time_of(clock) == clock.wall
    assert wall_time_of(FixedWall())() == 1e9
    assert wall_time_of(LoopClock()) is time.time


def test_clock_protocol_does_not_require_wall() -> None:
    """A clock with now() and sleep_until() alone is still a Clock."""
    assert isinstance(LoopClock(), Clock)
    assert isinstance(AnyioClock(), Clock)


@pytest.mark.anyio
async def test_bound_clock_keeps_wall() -> None:
    """The bound AnyioClock a poller uses still has the real wall clock."""
    bound = AnyioClock().bound()
    assert bound.now() == anyio.current_time()
    wall = wall_time_of(bound)()
    assert math.isclose(wall, time.time(), abs_tol=5.0)


@pytest.mark.anyio
async def test_bound_keeps_a_subclass_as_it_is() -> None:
    """bound() returns a subclass of AnyioClock unchanged, so its overrides stay in force."""

    class Shifted(AnyioClock):
        def wall(self) -> float:
            return 42.0

    clock = Shifted()
    assert clock.bound() is clock
    assert wall_time_of(clock.bound())() == 42.0
