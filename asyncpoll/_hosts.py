"""Per-host back-pressure: a shared cool-down, an adaptive rate, and server budgets.

One ``HostGate`` per host a poller talks to. Every request to the host passes
``await gate.wait(deadline)``. What the host answers feeds back:

- a 429 (or a 503 with ``Retry-After``) pauses every request to the host until the hint
  has passed, one shared cool-down instead of each job backing off alone, and halves
  the host's rate (at most once per cool-down: the requests already in flight all come
  back throttled, and one overload is one signal);
- healthy answers raise the rate again additively, each healthy second adding 5 % of
  the rate before the last halving, up to any configured limit; with no configured
  limit the rate keeps climbing until the next 429, so the poller settles around the
  server's limit instead of bursting after every cool-down;
- ``RateLimit-Remaining``/``RateLimit-Reset`` (and ``X-RateLimit-*``, read by
  ``_policy.parse_budget``) cap the rate so the remaining budget lasts until the reset; a
  remaining budget of 0 pauses until then.

The arithmetic is plain methods over clock readings; only ``wait()`` awaits.
"""

from __future__ import annotations

import collections
import math

from ._clock import Clock
from ._limiter import Limiter
from ._ratelimit import RateLimit

__all__ = ["HostGate"]

#: The lowest rate back-pressure drives a host to, in requests per second.
MIN_RATE = 0.05
#: Additive increase per second of healthy answers, as a share of the rate last set.
RECOVERY = 0.05


class HostGate:
    """Admission to one host: cool-down, then an (adaptive) token bucket.

    Args:
        host: the host name, for reprs.
        limit: the configured limit for this host, or None.
        clock: the poller's clock.
    """

    __slots__ = (
        "_budget_rate",
        "_budget_until",
        "_ceiling",
        "_clock",
        "_last_decrease",
        "_last_increase",
        "_limiter",
        "_rate",
        "_recent",
        "_step",
        "host",
        "paused_until",
        "throttled",
    )

    def __init__(self, host: str, limit: RateLimit | None, clock: Clock) -> None:
        self.host = host
        self._clock = clock
        self._ceiling = None if limit is None else limit.per_second
        self._limiter = None if limit is None else Limiter(limit, clock)
        self._rate = self._ceiling  # the adaptive rate in force, None: unlimited
        self.paused_until = -math.inf
        self._last_decrease = -math.inf  # no halving before this time (a cool-down's end)
        self._last_increase = -math.inf
        self._budget_rate = math.inf
        self._budget_until = -math.inf
        # Times of recent requests, to estimate the rate of a host with no limit yet.
        self._recent: collections.deque[float] = collections.deque(maxlen=64)
        self._step = 0.0  # additive recovery, requests/s gained per healthy second
        self.throttled = 0

    @property
    def rate(self) -> float | None:
        """The request rate in force for this host (requests/s), or None: unlimited.

        The adaptive rate, or the server's budget cap while that is lower.
        """
        if self._clock.now() < self._budget_until:
            return min(self._budget_rate, math.inf if self._rate is None else self._rate)
        return self._rate

    def try_pass(self, now: float) -> bool:
        """Let a request go at once if nothing holds it (no cool-down, no rate); the
        common case, without a coroutine. False: ``wait()`` decides."""
        if self._limiter is not None or self.paused_until > now:
            return False
        self._recent.append(now)
        return True

    async def wait(self, deadline: float = math.inf, rate_deadline: float | None = None) -> bool:
        """Wait out any cool-down, then take a slot of the host's rate.

        Args:
            deadline: the latest the cool-down may be waited out until (a clock reading).
            rate_deadline: the latest for the rate slot (default: ``deadline``).

        Returns:
            False if a deadline came first.
        """
        rate_deadline = deadline if rate_deadline is None else rate_deadline
        while True:
            if not await self.wait_out_pause(deadline):
                return False
            until = self.paused_until
            if self._limiter is None:
                break
            if not await self._limiter.acquire(rate_deadline):
                return False
            if self.paused_until == until:
                break
            # A cool-down announced while we waited for the slot: the request cannot go
            # now. Give the slot back, wait the cool-down out and take a new one, or it
            # would go at the end beside the request that takes the slot then.
            self._limiter.give_back()
        self._recent.append(self._clock.now())
        return True

    def give_back(self) -> None:
        """Return the rate slot ``wait()`` took, for a request that did not go."""
        if self._limiter is not None:
            self._limiter.give_back()

    async def wait_out_pause(self, deadline: float = math.inf) -> bool:
        """Wait until no cool-down holds the host; False if ``deadline`` (a clock
        reading) comes first. (``wait()`` asks again after taking a slot, when a
        cool-down was announced while the request waited for it.)"""
        clock = self._clock
        # A loop: a 429 that arrives while we sleep can push the cool-down further out.
        # A sleep that ran its course reached its end, even where the clock reads a hair
        # below the float it was asked for (asyncio runs a timer up to its clock's
        # resolution early; a virtual clock on a grid of steps then reads the step
        # before it): else the loop would sleep again at the same instant, for ever.
        slept_to = -math.inf
        while (until := self.paused_until) > max(clock.now(), slept_to):
            if until >= deadline:
                await clock.sleep_until(deadline)
                return False
            await clock.sleep_until(until)
            slept_to = until
        return True

    def on_throttled(self, now: float, pause: float) -> None:
        """A 429 (or a 503 with a hint): pause the host, halve its rate once per cool-down."""
        self.throttled += 1
        until = now + pause
        if until > self.paused_until:
            self.paused_until = until
        if now < self._last_decrease:
            return  # the same overload, reported by requests already in flight
        current = self._rate if self._rate is not None else self._observed_rate()
        if current is None:
            return  # too few requests yet to know the rate: the pause alone must do
        self._step = RECOVERY * current
        self._set_rate(max(MIN_RATE, current / 2.0))
        # No second halving before this cool-down (at least a second) is over.
        self._last_decrease = max(self.paused_until, now + 1.0)
        self._last_increase = until  # recovery starts once the cool-down is over

    def on_healthy(self, now: float) -> None:
        """A healthy answer: raise the rate additively towards the configured limit."""
        if -math.inf < self._budget_until <= now:
            self._budget_until = -math.inf  # the server's budget cap has run out
            if self._rate is None:
                self._limiter = None  # unlimited again
            else:
                self._apply(now)
        rate = self._rate
        if rate is None or now <= self._last_increase:
            return
        if self._ceiling is not None and rate >= self._ceiling:
            return
        new = rate + self._step * (now - self._last_increase)
        self._last_increase = now
        if self._ceiling is not None:
            new = min(new, self._ceiling)
        self._set_rate(new)

    def on_budget(self, now: float, remaining: int, reset: float) -> None:
        """The server's remaining budget: spread it until the reset, or pause at 0."""
        if remaining == 0:
            if now + reset > self.paused_until:
                self.paused_until = now + reset
            return
        self._budget_rate = remaining / reset
        self._budget_until = now + reset
        self._apply(now)

    def _observed_rate(self) -> float | None:
        recent = self._recent
        if len(recent) < 2 or recent[-1] <= recent[0]:
            return None
        return (len(recent) - 1) / (recent[-1] - recent[0])

    def _set_rate(self, rate: float) -> None:
        self._rate = rate
        self._apply(self._clock.now())

    def _apply(self, now: float) -> None:
        rate = self._rate if self._rate is not None else math.inf
        if now < self._budget_until:
            rate = min(rate, self._budget_rate)
        if rate == math.inf:
            return
        rate = max(MIN_RATE, rate)
        if self._limiter is None:
            self._limiter = Limiter(RateLimit(rate), self._clock)
        else:
            self._limiter.retune(rate)

    def __repr__(self) -> str:
        rate = "unlimited" if self._rate is None else f"{self._rate:.3g}/s"
        return f"<HostGate {self.host} rate={rate} throttled={self.throttled}>"
