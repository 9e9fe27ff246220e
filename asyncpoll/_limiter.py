"""The async rate limiter the engine awaits: FIFO waiters, one timer, deadlines.

All arithmetic is a ``TokenBucket``'s (``_ratelimit``); this module adds only what
needs an event loop: the queue of waiters, the head's timer, and deadlines.
"""

from __future__ import annotations

import collections
import math
import time
from typing import TYPE_CHECKING

import anyio
import anyio.lowlevel

from ._ratelimit import RateLimit, TokenBucket

if TYPE_CHECKING:
    from ._clock import Clock

__all__ = ["Limiter"]

#: The shortest sleep of a limiter's head waiter, in seconds (see Limiter.acquire).
TICK = 0.001
#: How late an event loop's timer may fire: asyncio and trio both wait on epoll, whose
#: timeout is rounded up to a whole millisecond, and a busy loop adds its own delay.
GRAIN = 0.0015
#: A timer later than this reveals a real clock with a coarse timer (epoll's are up to a
#: millisecond late); a virtual clock (trio's MockClock, looptime) fires its timers on
#: the dot, and a precise timer (kqueue's) within tens of microseconds.
LATE = 0.0002


class _Waiter:
    __slots__ = ("event", "granted")

    def __init__(self) -> None:
        self.event: anyio.Event | None = None  # set when it is granted or becomes the head
        self.granted = False


class Limiter:
    """The async token bucket every request of a poller (or of a host) passes.

    ``await limiter.acquire()`` returns when the request may go. Tokens are counted at
    the moments requests actually go (a ``TokenBucket``), so the bound holds for real
    send times even when the event loop wakes a sleeper late: in any window of ``t``
    seconds at most ``burst + rate * t`` requests pass. Waiters queue first come, first
    served; only the one at the head sleeps, on one timer, until its token accrues, and
    then hands the head to the next, which goes at once if a token is already there.
    Where timers fire late and the bucket would overflow meanwhile (burst 1), the head
    sleeps until ``GRAIN`` before its token and yields to the loop for the rest (see
    ``_land``).

    ``bucket``: the ``TokenBucket`` (or a subclass: one that records or shares its
    grants) whose arithmetic the limiter runs; a new ``TokenBucket(limit)`` by default.
    Its ``limit`` must be ``limit``.
    """

    __slots__ = ("_bucket", "_clock", "_coarse", "_queue", "waiting")

    def __init__(
        self, limit: RateLimit, clock: Clock, *, bucket: TokenBucket | None = None
    ) -> None:
        if bucket is not None and bucket.limit != limit:
            raise ValueError(
                f"Limiter(bucket=) must run the limiter's own limit {limit!r}, "
                f"got a bucket of {bucket.limit!r}"
            )
        self._bucket = TokenBucket(limit) if bucket is None else bucket
        self._clock = clock
        self._queue: collections.deque[_Waiter] = collections.deque()
        self.waiting = 0
        # True once a timer fired late: the clock is real and its timers coarse; None
        # once the clock stood still while the loop yielded (virtual: never land).
        self._coarse: bool | None = False

    @property
    def limit(self) -> RateLimit:
        """The configured ``RateLimit``."""
        return self._bucket.limit

    @property
    def bucket(self) -> TokenBucket:
        """The ``TokenBucket`` whose arithmetic this limiter runs."""
        return self._bucket

    @property
    def per_second(self) -> float:
        """The sustained rate in force, in requests per second."""
        return self._bucket.per_second

    @property
    def granted(self) -> int:
        """Requests let through so far."""
        return self._bucket.granted

    def retune(self, per_second: float) -> None:
        """Change the sustained rate from now on (the burst stays); for adaptive limits."""
        self._bucket.retune(per_second, self._clock.now())

    def give_back(self) -> None:
        """Return the token ``acquire()`` granted, for a request that did not go."""
        self._bucket.give_back(self._clock.now())

    def tokens(self) -> float:
        """Tokens available now (0 to ``burst``)."""
        return self._bucket.tokens(self._clock.now())

    def has_capacity(self) -> bool:
        """True when ``acquire()`` would return without waiting."""
        return not self._queue and self._bucket.has_capacity(self._clock.now())

    async def acquire(self, deadline: float = math.inf) -> bool:
        """Wait for this request's turn and token; first come, first served.

        Args:
            deadline: a clock reading; if the token would come at or after it, stop
                waiting at the deadline and return False.

        Returns:
            True once the request may go; False if the deadline came first.
        """
        clock, queue, bucket = self._clock, self._queue, self._bucket
        if not queue and bucket.try_take(clock.now()):
            return True
        me = _Waiter()
        queue.append(me)
        self.waiting += 1
        # A sleep that ran its course reached its end, even where the clock reads a hair
        # below the float it was asked for (asyncio runs a timer up to its clock's
        # resolution early; a virtual clock on a grid of steps then reads the step
        # before it): else the head would find its token a hair short and sleep again
        # at the same instant, for ever.
        slept_to = -math.inf
        try:
            while not me.granted:
                if queue[0] is not me:
                    me.event = anyio.Event()
                    await me.event.wait()
                    continue
                # The head grants every token that has accrued, in queue order, so one
                # timer wake-up serves a batch at high rates.
                now = max(clock.now(), slept_to)
                for _ in range(bucket.take_up_to(now, len(queue))):
                    waiter = queue.popleft()
                    waiter.granted = True
                    if waiter.event is not None and waiter is not me:
                        waiter.event.set()
                if me.granted:
                    break
                # Sleep until a token accrues, and at least one tick (fewer wake-ups at
                # high rates), but wake while the bucket is at most half full, so a late
                # wake-up (the event loop's latency) still finds room for the tokens
                # accrued meanwhile.
                wait = bucket.wait_time(now)
                fill = bucket.wait_time(now, float(bucket.limit.burst))
                at = now + max(wait, min(TICK, fill / 2.0))
                # Where the bucket fills up sooner after the token than a timer can be
                # late (always at burst 1), a late wake-up would lose the tokens that
                # overflow meanwhile: land on the token, to the microsecond (see _land).
                exact = self._coarse is True and fill - wait < GRAIN
                if exact:
                    at = now + wait
                if at >= deadline:
                    await clock.sleep_until(deadline)
                    if me.granted:
                        break
                    return False
                if exact:
                    await self._land(at)
                else:
                    await self._sleep_until(at)
                slept_to = at
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

    async def _sleep_until(self, at: float) -> None:
        """Sleep until ``at``, noting whether the timer fired late (a real clock)."""
        await self._clock.sleep_until(at)
        if self._coarse is False and self._clock.now() - at > LATE:
            self._coarse = True

    async def _land(self, at: float) -> None:
        """Return at ``at``, no later than a loop iteration after it: sleep until a
        timer's lateness before it (``GRAIN``), then yield to the event loop until the
        clock reads ``at``. Only where timers were seen to fire late (a real clock: see
        ``_sleep_until``); the yielding costs CPU while the loop has nothing else to do
        (and, on a loop in a thread of its own, competes for the GIL), at most about
        ``GRAIN`` a wake-up.

        (A sleep of whole milliseconds is not enough: the loop waits for its earliest
        timer, rounded up to a whole millisecond, so any other timer of the loop, at
        another phase, can make this one fire up to a millisecond late.)

        A clock that stands still while the loop yields (a virtual clock whose timers
        came late) is slept on from then on, so a wait never spins for long.
        """
        clock = self._clock
        if at - GRAIN > clock.now():
            await clock.sleep_until(at - GRAIN)
        else:
            await anyio.lowlevel.checkpoint()  # never return without yielding once
        began, real_began = clock.now(), time.perf_counter()
        while (now := clock.now()) < at:
            real = time.perf_counter() - real_began
            if real > 4 * GRAIN and now - began < real / 100.0:
                self._coarse = None  # the clock does not move with real time
                await clock.sleep_until(at)
                return
            await anyio.lowlevel.checkpoint()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(self, *exc_info: object) -> None:
        return None

    def __repr__(self) -> str:
        limit = self.limit
        return (
            f"<Limiter {limit.rate:g}/{limit.per:g}s burst={limit.burst} "
            f"tokens={self.tokens():.2f} waiting={self.waiting} granted={self.granted}>"
        )
