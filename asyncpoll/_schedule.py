"""Schedules: how long to wait before each poll of a job.

A schedule is a small frozen value with one method, ``delay(n, rng)``: given how many
polls (or, for a retry schedule, how many failures in a row) came before, it returns
the seconds to wait. It sees no clock and keeps no state, so one schedule can serve
every job of a poller, and tests can call it directly.
"""

from __future__ import annotations

import math
import random
from typing import Protocol, runtime_checkable

import attrs

__all__ = ["Backoff", "Fixed", "Schedule", "backoff", "fixed"]


@runtime_checkable
class Schedule(Protocol):
    """Anything with ``delay(n, rng) -> seconds`` can schedule polls."""

    def delay(self, n: int, rng: random.Random) -> float:
        """Seconds to wait before the next poll.

        Args:
            n: how many polls of the job came before this one (0 before the first);
                for a retry schedule, how many failures in a row.
            rng: the source of randomness for jitter.
        """
        ...


def _finite_nonnegative(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {value!r}")
    return float(value)


@attrs.frozen
class Fixed:
    """Poll every ``interval`` seconds; the first poll after ``first`` seconds (default 0).

    Build one with ``asyncpoll.fixed(interval, first=None)``.
    """

    interval: float
    first: float | None = None

    def __attrs_post_init__(self) -> None:
        _finite_nonnegative("fixed(interval)", self.interval)
        if self.first is not None:
            _finite_nonnegative("fixed(first=)", self.first)

    def delay(self, n: int, rng: random.Random) -> float:
        """Seconds before the next poll, after ``n`` earlier polls."""
        if n == 0:
            return 0.0 if self.first is None else float(self.first)
        return float(self.interval)


@attrs.frozen
class Backoff:
    """Exponential backoff: ``initial * factor**(n-1)``, capped at ``max``, with jitter.

    Jitter spreads each delay uniformly over ``delay * (1 ± jitter)``, then the cap
    applies again, so no delay exceeds ``max``. The first poll waits ``first`` seconds
    (default 0). Build one with ``asyncpoll.backoff(...)``.
    """

    initial: float = 1.0
    factor: float = 2.0
    max: float = 30.0
    jitter: float = 0.1
    first: float | None = None

    def __attrs_post_init__(self) -> None:
        _finite_nonnegative("backoff(initial=)", self.initial)
        _finite_nonnegative("backoff(max=)", self.max)
        if self.first is not None:
            _finite_nonnegative("backoff(first=)", self.first)
        for name, value in (("factor", self.factor), ("jitter", self.jitter)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"backoff({name}=) must be a number, got {value!r}")
        if not 1.0 <= self.factor < math.inf:
            raise ValueError(f"backoff(factor=) must be a finite number >= 1, got {self.factor!r}")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError(f"backoff(jitter=) must be from 0 to 1, got {self.jitter!r}")
        if self.max < self.initial:
            raise ValueError(
                f"backoff(max=) must be >= initial, got max={self.max!r} < initial={self.initial!r}"
            )

    def delay(self, n: int, rng: random.Random) -> float:
        """Seconds before the next poll, after ``n`` earlier polls (or failures)."""
        if n == 0 and self.first is not None:
            return float(self.first)
        if n == 0:
            return 0.0
        # Cap the exponent so factor**n never overflows on a job polled for days.
        try:
            growth = float(self.factor) ** min(n - 1, 1024)
        except OverflowError:
            growth = math.inf
        base = min(self.max, self.initial * growth) if self.initial else 0.0
        if self.jitter:
            base *= 1.0 + self.jitter * (2.0 * rng.random() - 1.0)
        return float(min(self.max, base))


def fixed(interval: float, *, first: float | None = None) -> Fixed:
    """Poll every ``interval`` seconds (0 means: as soon as the rate limit allows).

    Args:
        interval: seconds between polls, >= 0.
        first: seconds before the first poll; None polls at once.
    """
    return Fixed(interval, first)


def backoff(
    initial: float = 1.0,
    factor: float = 2.0,
    max: float = 30.0,
    jitter: float = 0.1,
    first: float | None = None,
) -> Backoff:
    """Poll with exponentially growing gaps, in seconds.

    Args:
        initial: the gap after the first poll.
        factor: how much each gap grows over the one before (>= 1).
        max: the largest gap.
        jitter: spread each gap over ``gap * (1 ± jitter)`` so jobs added together
            drift apart (0 to 1).
        first: seconds before the first poll; None polls at once.
    """
    return Backoff(initial, factor, max, jitter, first)
