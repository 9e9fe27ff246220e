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

import collections
import math
from typing import TYPE_CHECKING

import anyio
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


#: The shortest sleep of a limiter's head waiter, in seconds (see Limiter.acquire).
TICK = 0.001


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None  # set when it is granted or becomes the head
        self.granted = False


class Limiter:
    """The async token bucket every request of a poller (or of a host) passes.

    ``await limiter.acquire()`` returns when the request may go. Tokens are counted at
    the moments requests actually go, so the bound holds for real send times even when
    the event loop wakes a sleeper late: in any window of ``t`` seconds at most
    ``burst + rate * t`` requests pass. Waiters queue first come, first served; only
    the one at the head sleeps, on one timer, until its token accrues, and then hands
    the head to the next, which goes at once if a token is already there.
    """

    __slots__ = (
        "_burst",
        "_clock",
        "_limit",
        "_queue",
        "_rate",
        "_stamp",
        "_tokens",
        "granted",
        "waiting",
    )

    def __init__(self, limit: RateLimit, clock: Clock) -> None:
        self._limit = limit
        self._clock = clock
        self._rate = limit.per_second
        self._burst = float(limit.burst)
        self._tokens = float(limit.burst)
        self._stamp: float | None = None  # when _tokens was last brought up to date
        self._queue: collections.deque[_Waiter] = collections.deque()
        self.granted = 0
        self.waiting = 0

    @property
    def limit(self) -> RateLimit:
        """The configured ``RateLimit``."""
        return self._limit

    @property
    def per_second(self) -> float:
        """The sustained rate in force, in requests per second."""
        return self._rate

    def retune(self, per_second: float) -> None:
        """Change the sustained rate from now on (the burst stays); for adaptive limits."""
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"a rate must be a finite number > 0, got {per_second!r}")
        self._refill(self._clock.now())
        self._rate = per_second

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
            self._stamp = now

    def _take(self, now: float) -> bool:
        self._refill(now)
        if self._tokens >= 1.0 - 1e-9:
            self._tokens -= 1.0
            self.granted += 1
            return True
        return False

    def tokens(self) -> float:
        """Tokens available now (0 to ``burst``)."""
        self._refill(self._clock.now())
        return max(0.0, self._tokens)

    def has_capacity(self) -> bool:
        """True when ``acquire()`` would return without waiting."""
        return not self._queue and self.tokens() >= 1.0 - 1e-9

    async def acquire(self, deadline: float = math.inf) -> bool:
        """Wait for this request's turn and token; first come, first served.

        Args:
            deadline: a clock reading; if the token would come at or after it, stop
                waiting at the deadline and return False.

        Returns:
            True once the request may go; False if the deadline came first.
        """
        clock, queue = self._clock, self._queue
        if not queue and self._take(clock.now()):
            return True
        me = _Waiter()
        queue.append(me)
        self.waiting += 1
        try:
            while not me.granted:
                if queue[0] is not me:
                    me.event = anyio.Event()
                    await me.event.wait()
                    continue
                # The head grants every token that has accrued, in queue order, so one
                # timer wake-up serves a batch at high rates.
                now = clock.now()
                self._refill(now)
                while queue and self._tokens >= 1.0 - 1e-9:
                    waiter = queue.popleft()
                    self._tokens -= 1.0
                    self.granted += 1
                    waiter.granted = True
                    if waiter.event is not None and waiter is not me:
                        waiter.event.set()
                if me.granted:
                    break
                rate = self._rate
                at = now + (1.0 - self._tokens) / rate
                # Sleep at least one tick (fewer wake-ups at high rates), but wake while
                # the bucket is at most half full, so a late wake-up (the event loop's
                # latency) still finds room for the tokens accrued meanwhile.
                half = now + (self._burst - self._tokens) / rate / 2.0
                at = max(at, min(now + TICK, half))
                if at >= deadline:
                    await clock.sleep_until(deadline)
                    if me.granted:
                        break
                    return False
                await clock.sleep_until(at)
            return True
        finally:
            self.waiting -= 1
            if not me.granted:
                was_head = queue[0] is me
                queue.remove(me)
                if was_head and queue and queue[0].event is not None:
                    queue[0].event.set()  # the next in line becomes the head
            elif queue and queue[0].event is not None and queue[0] is not me:
                queue[0].event.set()  # a new head must take over the timer

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        limit = self._limit
        return (
            f"<Limiter {limit.rate:g}/{limit.per:g}s burst={limit.burst} "
            f"tokens={self.tokens():.2f} waiting={self.waiting} granted={self.granted}>"
        )
