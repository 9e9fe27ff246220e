"""Rate limits: the value a user configures and the token-bucket arithmetic behind it.

``RateLimit`` is the setting; ``TokenBucket`` is pure arithmetic over clock readings
(no event loop), and ``Limiter`` is the thin async layer the engine awaits.

The bucket is the generic cell rate algorithm (GCRA), which behaves exactly like a
token bucket of depth ``burst`` refilled at ``rate`` tokens per second, but keeps one
number, the theoretical arrival time ``tat``. Every request *reserves* the earliest
moment it may go, so waiters are granted in the order they asked (first come, first
served) and each waits on one timer of its own: no polling loop, no lock. In any
window of ``t`` seconds at most ``burst + rate * t`` requests are granted.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = ["Limiter", "RateLimit", "TokenBucket"]


def _positive(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"RateLimit({name}) must be a number, got {value!r}")
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"RateLimit({name}) must be a finite number > 0, got {value!r}")


@attrs.frozen
class RateLimit:
    """At most ``rate`` requests every ``per`` seconds, with bursts of up to ``burst``.

    ``RateLimit(60, per=60.0, burst=5)`` allows one request a second on average and up
    to five at once after a quiet spell. Over any window of ``t`` seconds no more than
    ``burst + rate / per * t`` requests are sent.

    Args:
        rate: requests allowed per ``per`` seconds.
        per: the period, in seconds (default 1.0).
        burst: how many requests may go back to back (default 1: evenly spaced).
    """

    rate: float
    per: float = 1.0
    burst: int = 1

    def __attrs_post_init__(self) -> None:
        _positive("rate", self.rate)
        _positive("per=", self.per)
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise ValueError(f"RateLimit(burst=) must be a whole number >= 1, got {self.burst!r}")

    @property
    def per_second(self) -> float:
        """The sustained rate in requests per second."""
        return self.rate / self.per

    @classmethod
    def coerce(cls, value: RateLimit | float | None) -> RateLimit | None:
        """Accept a ``RateLimit``, a number of requests per second, or None (no limit)."""
        if value is None or isinstance(value, RateLimit):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return cls(value)
        raise TypeError(
            f"rate_limit must be a RateLimit, a number of requests per second or None, "
            f"got {value!r}"
        )


class TokenBucket:
    """GCRA arithmetic for one ``RateLimit``; every time is a clock reading in seconds."""

    __slots__ = ("_interval", "_last_at", "_tat", "_tolerance", "granted", "limit")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._interval = 1.0 / limit.per_second  # seconds one token takes to refill
        self._tolerance = (limit.burst - 1) * self._interval
        self._tat = -math.inf  # theoretical arrival time; -inf: the bucket is full
        self._last_at: float | None = None  # the slot the latest reserve() returned
        self.granted = 0

    def reserve(self, now: float) -> float:
        """Reserve the next slot and return the time it may be used (>= ``now``)."""
        tat = self._tat if self._tat > now else now
        at = tat - self._tolerance
        if at < now:
            at = now
        self._tat = tat + self._interval
        self._last_at = at
        self.granted += 1
        return at

    def cancel(self, at: float) -> None:
        """Give back the slot reserved for ``at`` if it is still the latest one.

        A waiter that gives up (its job was cancelled, its deadline passed) returns its
        slot so the next request is not delayed for nothing; an earlier slot cannot be
        returned without moving later waiters, so it is simply left unused.
        """
        # The latest slot is the one reserve() last returned, or, after a give-back, the
        # one before it, which tat places exactly when it had to wait.
        latest = self._tat - self._interval - self._tolerance
        if at == self._last_at or math.isclose(latest, at, rel_tol=0.0, abs_tol=1e-9):
            self._tat -= self._interval
            self._last_at = None
            self.granted -= 1

    def retune(self, per_second: float) -> None:
        """Change the sustained rate from now on (the burst stays); for adaptive limits."""
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"a rate must be a finite number > 0, got {per_second!r}")
        self._interval = 1.0 / per_second
        self._tolerance = (self.limit.burst - 1) * self._interval

    @property
    def per_second(self) -> float:
        """The sustained rate in force, in requests per second."""
        return 1.0 / self._interval

    def tokens(self, now: float) -> float:
        """How many requests could go at ``now`` without waiting (0 to ``burst``)."""
        if self._tat <= now:
            return float(self.limit.burst)
        return max(0.0, (now + self._tolerance + self._interval - self._tat) / self._interval)

    def has_capacity(self, now: float) -> bool:
        """True when a request reserved at ``now`` would not wait."""
        return self._tat - self._tolerance <= now


class Limiter:
    """The async face of a ``TokenBucket``: ``await limiter.acquire()`` waits for a slot."""

    __slots__ = ("_bucket", "_clock", "waiting")

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self._bucket = TokenBucket(limit)
        self._clock = clock
        self.waiting = 0

    @property
    def limit(self) -> RateLimit:
        """The configured ``RateLimit``."""
        return self._bucket.limit

    @property
    def granted(self) -> int:
        """Requests granted so far."""
        return self._bucket.granted

    @property
    def bucket(self) -> TokenBucket:
        """The token bucket behind this limiter."""
        return self._bucket

    def has_capacity(self) -> bool:
        """True when ``acquire()`` would return without waiting."""
        return self._bucket.has_capacity(self._clock.now())

    async def acquire(self, deadline: float = math.inf) -> bool:
        """Wait for this request's slot; slots are granted in the order asked for.

        Args:
            deadline: a clock reading; if the slot would come at or after it, give the
                slot back, sleep until the deadline and return False.

        Returns:
            True once the request may go; False if the deadline came first.
        """
        now = self._clock.now()
        at = self._bucket.reserve(now)
        if at <= now:
            return True
        granted = at < deadline
        if not granted:
            self._bucket.cancel(at)
        self.waiting += 1
        try:
            await self._clock.sleep_until(at if granted else deadline)
        except BaseException:
            if granted:
                self._bucket.cancel(at)
            raise
        finally:
            self.waiting -= 1
        return granted

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        limit = self._bucket.limit
        tokens = self._bucket.tokens(self._clock.now())
        return (
            f"<Limiter {limit.rate:g}/{limit.per:g}s burst={limit.burst} "
            f"tokens={tokens:.2f} waiting={self.waiting} granted={self.granted}>"
        )
