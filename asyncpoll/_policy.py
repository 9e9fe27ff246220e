"""Pure policy: what an HTTP status code means for a poll, and when to poll next.

Also what a response's headers ask of its host: the server's hint and its rate budget.

Nothing here awaits or reads a clock; the engine passes in every value it needs.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping

import attrs

from ._reader import parse_retry_after
from ._schedule import Schedule

__all__ = ["Pacing", "checked_delay", "header_hint", "parse_budget"]


def checked_delay(schedule: Schedule, n: int, rng: random.Random) -> float:
    """``schedule.delay(n, rng)``, refused unless it is a number of seconds >= 0.

    Raises:
        ValueError: the schedule returned NaN, a negative number or a non-number; a
            bad due time must cost its job, never the scheduler's heap.
    """
    delay = schedule.delay(n, rng)
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0.0:
        raise ValueError(
            f"schedule {schedule!r} returned {delay!r} for n={n}; a delay must be a number "
            "of seconds >= 0"
        )
    return float(delay)


def header_hint(
    headers: Mapping[str, str],
    custom: tuple[str, ...] = (),
    *,
    wall_now: float,
    date: str | None = None,
) -> float | None:
    """The server's hint, in seconds, for when to ask again, or None.

    Looks at the ``custom`` header names first (in order; a name ending in ``-ms`` is in
    milliseconds, any other in seconds), then ``retry-after-ms``, then ``Retry-After``
    (delta-seconds or an HTTP-date, relative to the ``Date`` header when present, else
    to ``wall_now``). An unusable value (garbage, NaN, infinity, negative, a date already
    past) is skipped; None when no header gives a usable one. ``0`` is a usable 0 s.

    Args:
        headers: response headers, names in lower case.
        custom: extra header names, such as ``"openai-poll-after-ms"``.
        wall_now: the current wall-clock time in epoch seconds; this function reads no
            clock.
        date: the response's ``Date`` header.
    """
    for name in (*custom, "retry-after-ms"):
        value = headers.get(name.lower())
        if value is None:
            continue
        try:
            number = float(value.strip())
        except ValueError:
            continue
        if math.isfinite(number) and number >= 0:
            return number / 1000.0 if name.lower().endswith("-ms") else number
    return parse_retry_after(headers.get("retry-after"), now=wall_now, date=date)


def parse_budget(
    headers: Mapping[str, str], wall_now: float | Callable[[], float | None] | None
) -> tuple[int, float] | None:
    """``(remaining, seconds until reset)`` from RateLimit headers, or None.

    Reads ``RateLimit-Remaining``/``RateLimit-Reset`` and their ``X-RateLimit-*`` twins.
    A reset above 10^9 is taken as epoch seconds (as some APIs send), measured against
    ``wall_now`` (epoch seconds, or a function giving them, called only when needed;
    None: such a reset is ignored); otherwise it is delta-seconds. Reads no clock.

    The engine passes the response's own ``Date`` header as ``wall_now``
    (``parse_http_date``): an epoch reset is the server's clock, so it is measured
    against the server's clock only, and ignored when the response has no ``Date``.
    """
    for prefix in ("ratelimit-", "x-ratelimit-"):
        remaining = headers.get(prefix + "remaining")
        reset = headers.get(prefix + "reset")
        if remaining is None or reset is None:
            continue
        try:
            left = int(float(remaining.split(",")[0].strip()))
            seconds = float(reset.split(",")[0].strip())
        except (ValueError, OverflowError):  # OverflowError: an infinite count
            return None
        if seconds > 1e9:
            now = wall_now() if callable(wall_now) else wall_now
            if now is None:
                return None
            seconds -= now
        if left < 0 or not math.isfinite(seconds) or seconds <= 0:
            return None
        return left, seconds
    return None


@attrs.frozen
class Pacing:
    """Bounds on the gap between two polls of a job, in seconds.

    The next poll waits ``clamp(max(hint, schedule delay), min_interval, max_interval)``,
    where a server hint longer than ``max_retry_after`` counts as ``max_retry_after``.
    """

    min_interval: float = 0.0
    max_interval: float = math.inf
    max_retry_after: float = 300.0

    def delay(self, scheduled: float, hint: float | None) -> tuple[float, bool]:
        """The gap to wait, and whether an absurd hint was capped."""
        capped = hint is not None and hint > self.max_retry_after
        if capped:
            hint = self.max_retry_after
        delay = scheduled if hint is None or hint < scheduled else hint
        return min(self.max_interval, max(self.min_interval, delay)), capped
