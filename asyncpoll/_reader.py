"""Readers: how an HTTP response becomes a ``Status``. Pure functions of a response.

A reader is any callable ``(Response) -> Status``. The engine hands it every 2xx
response. A reader signals trouble by raising:

- ``PollError``: the response can never be read; the job ends ERRORED at once.
- any other exception (``ValueError`` for a body it cannot parse): a transient failure,
  counted against the job's ``max_errors`` budget, its message kept for the final error.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, Protocol

from ._errors import PollError
from ._httpdate import parse_http_date
from ._redact import printable
from ._response import Response
from ._status import JobState, Status

__all__ = [
    "Reader",
    "parse_retry_after",
    "progress_fraction",
    "retry_after_of",
    "unknown_state",
]

logger = logging.getLogger("asyncpoll")


class Reader(Protocol):
    """Anything that turns a 2xx ``Response`` into a ``Status``: a function or an object.

    Raise ``PollError`` for a response that can never be read (the job ends ERRORED at
    once); any other exception is a transient failure counted against ``max_errors``.
    """

    def __call__(self, response: Response, /) -> Status:
        """Read one response."""
        ...


_MAX_UNKNOWN_LOGGED = 100  # distinct unknown state words warned about per reader


def parse_retry_after(value: str | None, *, now: float, date: str | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, or None when absent or unusable.

    ``0`` (or a date equal to the reference) is a valid 0 s. A negative delta, a date
    already past, garbage, NaN and infinity are unusable: None, not 0 s, so the caller
    applies its own default (the engine's pause on a 429) instead of none at all.

    Reads no clock: an HTTP-date is measured against the response's ``Date`` header when
    it has one (the server's clock), else against ``now``.

    Args:
        value: the header's value: delta-seconds or an HTTP-date.
        now: the current wall-clock time in epoch seconds (the engine passes its
            clock's wall time), the reference for an HTTP-date without ``Date``.
        date: the response's ``Date`` header.
    """
    return _retry_after(value, date, now)


def _retry_after(value: str | None, date: str | None, now: float | None) -> float | None:
    """``parse_retry_after``; with ``now`` None an HTTP-date without ``Date`` is None."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = parse_http_date(value)
        ref = parse_http_date(date) if date else now
        if when is None or ref is None:
            return None
        seconds = when - ref
    if not (math.isfinite(seconds) and seconds >= 0.0):
        return None  # garbage, NaN, infinity, a negative delta or a date already past
    return seconds + 0.0  # -0.0 reads as 0.0


def number(value: Any) -> float | None:
    """A finite float from a JSON number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        return None
    return value if math.isfinite(value) else None


def _ratio(text: str) -> float | None:
    """A fraction from ``"3/4"`` (Argo's progress), else None."""
    done, slash, total = text.partition("/")
    if not slash:
        return None
    try:
        done_n, total_n = float(done), float(total)
    except ValueError:
        return None
    if not (math.isfinite(done_n) and math.isfinite(total_n)) or total_n <= 0 or done_n < 0:
        return None
    return min(1.0, done_n / total_n)


def progress_fraction(value: Any) -> float | None:
    """A progress fraction from a number, a ``{done|processed_*, total*}`` object or a
    ``"done/total"`` string."""
    if type(value) is not float and type(value) is not int and isinstance(value, Mapping):
        done = total = None
        for key, item in value.items():
            key_l = str(key).lower()
            if key_l == "done" or key_l == "processed" or key_l.startswith("processed_"):
                done = number(item)
            elif key_l.startswith("total"):
                total = number(item)
        if done is None or not total or total <= 0:
            return None
        return min(1.0, max(0.0, done / total))
    if type(value) is str:
        return _ratio(value)
    amount = number(value)
    if amount is None:
        return None
    # A float no greater than 1 is already a fraction; anything else is a percentage.
    fraction = amount if isinstance(value, float) and amount <= 1.0 else amount / 100.0
    return min(1.0, max(0.0, fraction))


def unknown_state(
    word: str,
    source: str,
    *,
    http_status: int | None,
    strict: bool,
    seen: set[str],
    fix: str,
    place: str = "",
    warn_fix: bool = False,
) -> JobState:
    """What a state word no reader list knows means: RUNNING (warned once) or an error.

    The warning is logged once per word and reader; the engine repeats it for a job
    still stuck on such a word when the job stalls (``Status.unknown_word``).

    Args:
        source: where the word came from, for the warning (a URL, "a document").
        http_status: the response's status code, for the error.
        strict: raise ``PollError`` instead of reading the word as running.
        seen: the words already warned about (bounded, so a server inventing a new word
            per poll cannot grow it forever).
        fix: what the user can do, for the message.
        place: where the word was, such as `` at 'data.state'``.
        warn_fix: put ``fix`` in the warning too.
    """
    if strict:
        raise PollError(
            f"the server reported state {word!r}{place}, which this reader does not know ({fix})",
            http_status=http_status,
        )
    key = word.lower()
    if key not in seen and len(seen) < _MAX_UNKNOWN_LOGGED:
        seen.add(key)
        logger.warning(
            "unknown job state %r%s from %s; treating it as running%s",
            word,
            place,
            printable(source),
            f" ({fix})" if warn_fix else "",
        )
    return JobState.RUNNING


def retry_after_of(response: Response) -> float | None:
    """Seconds the response's ``Retry-After`` header asks to wait, or None.

    A reader is a pure function of the response and reads no clock, so an HTTP-date is
    measured against the response's ``Date`` header only; without one it gives None
    here. The engine reads the same header itself against its clock's wall time
    (``_policy.header_hint``) and waits for the longer of the two hints.
    """
    headers = response.headers
    return _retry_after(headers.get("retry-after"), headers.get("date"), None)
