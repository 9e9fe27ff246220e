"""Rate limits: the value a user configures and the token-bucket arithmetic behind it.

``RateLimit`` is the setting; ``TokenBucket`` is the arithmetic: a token bucket of depth
``burst`` refilled at ``rate`` tokens per second, counted at the moments requests go.
Pure: no event loop, no clock; every method takes the time it is asked about. The
async ``Limiter`` the engine awaits (``_limiter``) runs this very arithmetic; so can a
simulation, a benchmark, or a store shared between processes.
"""

from __future__ import annotations

import math

import attrs

__all__ = ["RateLimit", "TokenBucket"]

#: Slack on token counts, so that float rounding never costs a whole token.
EPSILON = 1e-9


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
    """The token bucket for one ``RateLimit``; every time is a clock reading in seconds.

    Tokens are counted when requests go: ``try_take(now)`` takes one if there is one,
    ``take_up_to(now, n)`` takes as many as there are (at most ``n``), ``wait_time(now)``
    says how long until the next one accrues. Tokens accrue at ``per_second`` from the
    first reading on, up to ``burst``; a reading earlier than the latest one counts as
    the latest (the bucket's time never goes back). Taking only whole tokens that are
    there bounds every window of ``t`` seconds to ``burst + rate * t`` grants, however
    late the caller comes to take them. ``tokens()``, ``has_capacity()`` and
    ``wait_time()`` only read; the other methods change the bucket.

    ``reserve()`` and ``cancel()`` are the interface of the GCRA bucket this class used
    to be, kept for compatibility (deprecated: new code takes tokens with ``try_take``
    and waits ``wait_time``). ``reserve(now)`` takes a token ahead of time, going into
    debt when there is none, and returns the time the token accrues: the same times the
    GCRA gave.
    """

    __slots__ = ("_burst", "_last_at", "_rate", "_stamp", "_tokens", "granted", "limit")

    def __init__(self, limit: RateLimit) -> None:
        self.limit = limit
        self._rate = limit.per_second
        self._burst = float(limit.burst)
        self._tokens = float(limit.burst)  # as of _stamp; below 0 only by reserve() (debt)
        self._stamp = -math.inf  # the latest reading; -inf: none yet (the bucket is full)
        self._last_at: float | None = None  # the slot the latest reserve() returned
        self.granted = 0

    @property
    def per_second(self) -> float:
        """The sustained rate in force, in requests per second."""
        return self._rate

    def _level(self, now: float) -> float:
        """Tokens at ``now`` (negative while reservations are in debt), without storing."""
        if now <= self._stamp:
            return self._tokens
        tokens = self._tokens + (now - self._stamp) * self._rate
        return tokens if tokens < self._burst else self._burst

    def _refill(self, now: float) -> float:
        """Bring the count up to ``now`` and store it; returns the tokens there are."""
        if now > self._stamp:
            self._tokens = self._level(now)
            self._stamp = now
        return self._tokens

    def tokens(self, now: float) -> float:
        """How many requests could go at ``now`` without waiting (0 to ``burst``)."""
        tokens = self._level(now)
        return tokens if tokens > 0.0 else 0.0

    def has_capacity(self, now: float) -> bool:
        """True when a request at ``now`` would not wait (a whole token is there)."""
        return self._level(now) >= 1.0 - EPSILON

    def wait_time(self, now: float, tokens: float = 1.0) -> float:
        """Seconds from ``now`` until ``tokens`` tokens are there (0: already; inf: more
        than ``burst``, never). ``wait_time(now, burst)`` is the time to fill up."""
        level = self._level(now)
        if level >= tokens - EPSILON:
            return 0.0
        if tokens > self._burst + EPSILON:
            return math.inf
        return (tokens - level) / self._rate

    def try_take(self, now: float) -> bool:
        """Take one token at ``now`` if there is one; False (nothing taken) if not."""
        if self._refill(now) >= 1.0 - EPSILON:
            self._tokens -= 1.0
            self.granted += 1
            return True
        return False

    def take_up_to(self, now: float, most: int) -> int:
        """Take every whole token there is at ``now``, at most ``most``; returns how
        many were taken (a batch grant: one wake-up serves several waiters)."""
        tokens = self._refill(now)
        if tokens < 1.0 - EPSILON or most <= 0:
            return 0
        count = min(most, int(tokens + EPSILON))
        self._tokens = tokens - count
        self.granted += count
        return count

    def give_back(self, now: float) -> None:
        """Return a token taken for a request that did not go, as if it had not been
        taken (a host's cool-down came first: the request takes a new one after it)."""
        tokens = self._refill(now) + 1.0
        self._tokens = tokens if tokens < self._burst else self._burst
        self.granted -= 1

    def retune(self, per_second: float, now: float | None = None) -> None:
        """Change the sustained rate (the burst stays); for adaptive limits.

        Tokens accrued until ``now`` are kept and new ones accrue at the new rate.
        Without ``now`` (the old signature) the new rate applies from the bucket's
        latest reading.
        """
        if not (math.isfinite(per_second) and per_second > 0):
            raise ValueError(f"a rate must be a finite number > 0, got {per_second!r}")
        if now is not None:
            self._refill(now)
        self._rate = per_second

    def reserve(self, now: float) -> float:
        """Take the next token, in debt if need be, and return when it may be used
        (``>= now``). Deprecated-compatible: the GCRA interface of earlier versions."""
        tokens = self._refill(now)
        self._tokens = tokens - 1.0
        self.granted += 1
        at = now
        if tokens < 1.0 - EPSILON:  # in debt: the token accrues later
            at = max(now, self._stamp) + (1.0 - tokens) / self._rate
        self._last_at = at
        return at

    def cancel(self, at: float) -> None:
        """Give back the token ``reserve()`` returned for ``at`` if it is the latest one.

        Deprecated-compatible, with ``reserve()``. A waiter that gives up returns its
        slot so the next request is not delayed for nothing; an earlier slot cannot be
        returned without moving later reservations, so it is simply left unused.
        """
        # The latest slot is the one reserve() last returned, or, after a give-back, the
        # one before it: the moment the count, in debt, climbs back to zero.
        latest = self._stamp - self._tokens / self._rate
        if at == self._last_at or math.isclose(latest, at, rel_tol=0.0, abs_tol=1e-9):
            self._tokens = min(self._burst, self._tokens + 1.0)
            self._last_at = None
            self.granted -= 1
