"""Tests for ``asyncpoll._policy``: status verdicts, server hints, pacing and checked delays."""

from __future__ import annotations

import math
import random
import re
import time
from typing import Any

import attrs
import pytest

from asyncpoll import backoff, fixed
from asyncpoll._decide import Verdict
from asyncpoll._decide import verdict as classify
from asyncpoll._policy import (
    Pacing,
    checked_delay,
    header_hint,
    parse_budget,
)


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


@attrs.frozen
class Constant:
    """A schedule that returns ``value`` whatever it is asked, good or bad."""

    value: Any

    def delay(self, n: int, rng: random.Random) -> Any:
        """Return ``value``."""
        return self.value


# --- classify ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status_code", "verdict"),
    [
        (200, Verdict.READ),
        (201, Verdict.READ),
        (202, Verdict.READ),
        (204, Verdict.READ),
        (299, Verdict.READ),
        (100, Verdict.FATAL),
        (301, Verdict.FATAL),
        (303, Verdict.FATAL),
        (304, Verdict.FATAL),
        (400, Verdict.FATAL),
        (401, Verdict.FATAL),
        (403, Verdict.FATAL),
        (404, Verdict.FATAL),
        (408, Verdict.TRANSIENT),
        (409, Verdict.FATAL),
        (410, Verdict.FATAL),
        (422, Verdict.FATAL),
        (429, Verdict.THROTTLED),
        (499, Verdict.FATAL),
        (500, Verdict.TRANSIENT),
        (502, Verdict.TRANSIENT),
        (503, Verdict.TRANSIENT),
        (504, Verdict.TRANSIENT),
        (599, Verdict.TRANSIENT),
    ],
)
def test_classify(status_code: int, verdict: Verdict) -> None:
    """2xx is read, 429 throttled, 408 and 5xx transient, anything else fatal."""
    assert classify(status_code, None) is verdict  # without a hint


# --- header_hint ---------------------------------------------------------------------

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"


@pytest.mark.parametrize(
    ("headers", "custom", "hint"),
    [
        ({}, (), None),
        ({"retry-after": "5"}, (), 5.0),
        ({"retry-after": " 2.5 "}, (), 2.5),
        ({"retry-after": "0"}, (), 0.0),
        ({"retry-after-ms": "250"}, (), 0.25),
        ({"retry-after-ms": "250", "retry-after": "9"}, (), 0.25),
        ({"x-poll-after": "7"}, ("x-poll-after",), 7.0),
        ({"openai-poll-after-ms": "1500"}, ("openai-poll-after-ms",), 1.5),
        ({"openai-poll-after-ms": "1500"}, ("OpenAI-Poll-After-MS",), 1.5),
        (
            {"openai-poll-after-ms": "1500", "retry-after-ms": "250", "retry-after": "9"},
            ("openai-poll-after-ms",),
            1.5,
        ),
        ({"x-a": "3", "x-b-ms": "4000"}, ("x-a", "x-b-ms"), 3.0),
        ({"x-a": "3", "x-b-ms": "4000"}, ("x-b-ms", "x-a"), 4.0),
        ({"x-b-ms": "4000"}, ("x-a", "x-b-ms"), 4.0),
        ({"retry-after": "9"}, ("x-poll-after",), 9.0),
    ],
)
def test_header_hint(headers: dict[str, str], custom: tuple[str, ...], hint: float | None) -> None:
    """Custom headers first, in order, then retry-after-ms, then Retry-After; -ms is ms."""
    assert header_hint(headers, custom, wall_now=0.0) == hint


@pytest.mark.parametrize(
    ("headers", "hint"),
    [
        ({"x-poll-after": "soon", "retry-after": "7"}, 7.0),
        ({"x-poll-after": "", "retry-after-ms": "abc", "retry-after": "7"}, 7.0),
        ({"x-poll-after": "nan", "retry-after-ms": "inf", "retry-after": "7"}, 7.0),
        ({"x-poll-after": "-inf", "retry-after-ms": "1e999"}, None),
        ({"x-poll-after": "-5", "retry-after": "7"}, 7.0),
        ({"x-poll-after": "-0.5", "retry-after-ms": "-100"}, None),
        ({"retry-after-ms": "-100", "retry-after": "3"}, 3.0),
        ({"retry-after": "soon"}, None),
        ({"retry-after": ""}, None),
        ({"retry-after": "nan"}, None),
        ({"retry-after": "inf"}, None),
        ({"retry-after": "-5"}, None),
        ({"retry-after": "-0.001"}, None),
        ({"retry-after": "-inf"}, None),
        ({"retry-after": "-0"}, 0.0),
        ({"retry-after": "Wed, 99 Foo 2015 07:28:30 GMT"}, None),
        ({"retry-after-ms": "-100"}, None),
        ({"retry-after-ms": "nan"}, None),
        ({"x-poll-after": "-5"}, None),
        ({"x-poll-after": "0", "retry-after": "7"}, 0.0),
        ({"retry-after-ms": "0", "retry-after": "7"}, 0.0),
    ],
)
def test_header_hint_ignores_garbage_and_negatives(
    headers: dict[str, str], hint: float | None
) -> None:
    """Unreadable, infinite and negative values are unusable: skipped, None if nothing else.

    A negative Retry-After is no hint (None), not a wait of 0 s; 0 itself is a valid 0 s.
    """
    assert header_hint(headers, ("x-poll-after",), wall_now=0.0) == hint


#: Epoch seconds of DATE, as a caller's wall clock would read it.
WALL = 1445412480.0


@pytest.mark.parametrize(
    ("retry_after", "date", "hint"),
    [
        ("Wed, 21 Oct 2015 07:28:30 GMT", DATE, 30.0),
        ("Wed, 21 Oct 2015 08:28:00 GMT", DATE, 3600.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", DATE, 0.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", DATE, None),
        ("Wed, 21 Oct 2015 07:27:59 GMT", DATE, None),
        ("Wed, 21 Oct 2015 07:28:30 GMT", "garbage", None),
        ("Sun, 06 Nov 1994 08:49:37 GMT", None, None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None, 0.0),
    ],
)
def test_header_hint_http_date(retry_after: str, date: str | None, hint: float | None) -> None:
    """An HTTP-date Retry-After counts from the Date header, else from wall_now; a date
    already past is no hint (None), a date equal to the reference is 0 s."""
    assert header_hint({"retry-after": retry_after}, wall_now=WALL, date=date) == hint


@pytest.mark.parametrize(
    ("date", "wall_now", "hint"),
    [
        (None, WALL, 30.0),
        (None, WALL + 20.0, 10.0),
        ("", WALL + 20.0, 10.0),  # an empty Date header is no Date header
        (DATE, WALL + 20.0, 30.0),  # the server's Date wins over our wall clock
        (DATE, 0.0, 30.0),
    ],
)
def test_header_hint_http_date_without_date_counts_from_wall_now(
    date: str | None, wall_now: float, hint: float
) -> None:
    """Without a Date header an HTTP-date is measured against the wall time given."""
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}
    assert header_hint(headers, wall_now=wall_now, date=date) == hint


def test_header_hint_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """header_hint never reads the wall clock itself: only the wall_now it is given."""

    def no_clock() -> float:
        raise AssertionError("policy read the wall clock")

    monkeypatch.setattr(time, "time", no_clock)
    headers = {"retry-after": "Wed, 21 Oct 2015 07:28:30 GMT"}
    assert header_hint(headers, wall_now=WALL) == 30.0
    assert header_hint({"retry-after": "4"}, wall_now=WALL) == 4.0


# --- parse_budget --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "wall_now", "budget"),
    [
        ({"ratelimit-remaining": "10", "ratelimit-reset": "30"}, None, (10, 30.0)),
        ({"x-ratelimit-remaining": "10", "x-ratelimit-reset": "30"}, None, (10, 30.0)),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "1.5"}, None, (0, 1.5)),
        ({"ratelimit-remaining": " 7 ", "ratelimit-reset": " 2 "}, None, (7, 2.0)),
        ({"ratelimit-remaining": "4.9", "ratelimit-reset": "2"}, None, (4, 2.0)),
        ({"ratelimit-remaining": "5, 50", "ratelimit-reset": "3, 60"}, None, (5, 3.0)),
        (
            {
                "ratelimit-remaining": "10",
                "ratelimit-reset": "30",
                "x-ratelimit-remaining": "99",
                "x-ratelimit-reset": "5",
            },
            None,
            (10, 30.0),
        ),
        (
            {"ratelimit-remaining": "10", "x-ratelimit-remaining": "99", "x-ratelimit-reset": "5"},
            None,
            (99, 5.0),
        ),
        (
            {"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000060"},
            1700000000.0,
            (3, 60.0),
        ),
        (
            {"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000000.5"},
            1700000000.0,
            (3, 0.5),
        ),
        ({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1000000000"}, None, (3, 1e9)),
    ],
)
def test_parse_budget(
    headers: dict[str, str], wall_now: float | None, budget: tuple[int, float]
) -> None:
    """RateLimit-* (first) or X-RateLimit-* give (remaining, seconds until the reset)."""
    assert parse_budget(headers, wall_now) == budget


@pytest.mark.parametrize(
    ("headers", "wall_now"),
    [
        ({}, None),
        ({"ratelimit-remaining": "10"}, None),
        ({"ratelimit-reset": "10"}, None),
        ({"ratelimit-remaining": "10", "x-ratelimit-reset": "10"}, None),
        ({"ratelimit-remaining": "many", "ratelimit-reset": "30"}, None),
        ({"ratelimit-remaining": "10", "ratelimit-reset": "soon"}, None),
        ({"ratelimit-remaining": "", "ratelimit-reset": "30"}, None),
        ({"ratelimit-remaining": "nan", "ratelimit-reset": "30"}, None),
        ({"ratelimit-remaining": "10", "ratelimit-reset": "nan"}, None),
        ({"ratelimit-remaining": "10", "ratelimit-reset": "inf"}, None),
        ({"ratelimit-remaining": "10", "ratelimit-reset": "inf"}, 1700000000.0),
        ({"ratelimit-remaining": "-1", "ratelimit-reset": "30"}, None),
        ({"ratelimit-remaining": "10", "ratelimit-reset": "0"}, None),
        ({"ratelimit-remaining": "10", "ratelimit-reset": "-5"}, None),
        ({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000060"}, None),
        ({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1699999990"}, 1700000000.0),
        ({"x-ratelimit-remaining": "3", "x-ratelimit-reset": "1700000000"}, 1700000000.0),
    ],
)
def test_parse_budget_garbage_is_none(headers: dict[str, str], wall_now: float | None) -> None:
    """Missing halves, unreadable numbers, negative budgets and past resets give None."""
    assert parse_budget(headers, wall_now) is None


@pytest.mark.parametrize("remaining", ["inf", "1e999", "-inf"])
def test_parse_budget_infinite_remaining_is_none(remaining: str) -> None:
    """An infinite remaining count is garbage too: None, not an exception."""
    assert parse_budget({"ratelimit-remaining": remaining, "ratelimit-reset": "30"}, None) is None


# --- Pacing --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pacing", "scheduled", "hint", "expected"),
    [
        (Pacing(), 2.0, None, (2.0, False)),
        (Pacing(), 2.0, 5.0, (5.0, False)),
        (Pacing(), 5.0, 2.0, (5.0, False)),
        (Pacing(), 2.0, 0.0, (2.0, False)),
        (Pacing(), 0.0, None, (0.0, False)),
        (Pacing(), 2.0, 300.0, (300.0, False)),
        (Pacing(), 2.0, 300.5, (300.0, True)),
        (Pacing(), 2.0, 86400.0, (300.0, True)),
        (Pacing(), 400.0, 600.0, (400.0, True)),
        (Pacing(), 400.0, None, (400.0, False)),
        (Pacing(1.0, 10.0, 60.0), 0.5, None, (1.0, False)),
        (Pacing(1.0, 10.0, 60.0), 0.25, 0.5, (1.0, False)),
        (Pacing(1.0, 10.0, 60.0), 4.0, None, (4.0, False)),
        (Pacing(1.0, 10.0, 60.0), 4.0, 6.5, (6.5, False)),
        (Pacing(1.0, 10.0, 60.0), 20.0, None, (10.0, False)),
        (Pacing(1.0, 10.0, 60.0), 2.0, 30.0, (10.0, False)),
        (Pacing(1.0, 10.0, 60.0), 2.0, 90.0, (10.0, True)),
        (Pacing(1.0, 100.0, 60.0), 2.0, 90.0, (60.0, True)),
        (Pacing(1.0, 100.0, 60.0), 75.0, 90.0, (75.0, True)),
        (Pacing(1.0, 100.0, 60.0), 150.0, 90.0, (100.0, True)),
        (Pacing(5.0, math.inf, 0.0), 1.0, 3.0, (5.0, True)),
        (Pacing(0.0, math.inf, 0.0), 1.0, 0.0, (1.0, False)),
    ],
)
def test_pacing_delay(
    pacing: Pacing, scheduled: float, hint: float | None, expected: tuple[float, bool]
) -> None:
    """clamp(max(hint capped at max_retry_after, scheduled), min, max), and whether capped."""
    assert pacing.delay(scheduled, hint) == expected


def test_pacing_defaults() -> None:
    """By default there is no floor, no ceiling and hints are capped at 300 s."""
    assert Pacing() == Pacing(0.0, math.inf, 300.0)


# --- checked_delay -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("schedule", "n", "delay"),
    [
        (fixed(2.5), 1, 2.5),
        (fixed(2.5), 0, 0.0),
        (fixed(2.5, first=1.0), 0, 1.0),
        (Constant(3), 7, 3.0),
        (Constant(0), 7, 0.0),
        (backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.0), 4, 8.0),
    ],
)
def test_checked_delay_passes_good_delays(schedule: Any, n: int, delay: float) -> None:
    """A delay of zero or more seconds comes back as a float."""
    result = checked_delay(schedule, n, random.Random(0))
    assert result == delay
    assert type(result) is float


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (math.nan, "nan"),
        (-1.0, "-1.0"),
        (-0.001, "-0.001"),
        (-2, "-2"),
        (-math.inf, "-inf"),
        ("1", "'1'"),
        (None, "None"),
        (True, "True"),
        ([1.0], "[1.0]"),
    ],
)
def test_checked_delay_refuses_bad_delays(value: Any, shown: str) -> None:
    """NaN, a negative number or a non-number raises ValueError naming the schedule and n."""
    schedule = Constant(value)
    message = (
        f"schedule Constant(value={shown}) returned {shown} for n=3; a delay must be a "
        "number of seconds >= 0"
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        checked_delay(schedule, 3, random.Random(0))


def test_checked_delay_uses_the_given_rng() -> None:
    """Jitter draws from the rng passed in, so a seeded rng gives the schedule's own figure."""
    schedule = backoff(initial=4.0, factor=2.0, max=60.0, jitter=0.5)
    expected = schedule.delay(3, random.Random(1234))
    assert checked_delay(schedule, 3, random.Random(1234)) == expected
    assert expected != 16.0
    assert 8.0 <= expected <= 24.0


def test_next_delay_is_gone() -> None:
    """The unused ``next_delay`` is removed: ``Pacing.delay`` is the one place a hint and a
    schedule delay meet."""
    from asyncpoll import _policy

    assert not hasattr(_policy, "next_delay")
    assert "next_delay" not in _policy.__all__


def test_a_custom_header_that_is_no_number_gives_way_to_retry_after_ms() -> None:
    headers = {"x-poll-after-ms": "soon", "retry-after-ms": "1500", "retry-after": "9"}
    assert header_hint(headers, ("X-Poll-After-Ms",), wall_now=0.0) == 1.5


def test_a_reset_just_above_1e9_is_an_epoch_time() -> None:
    """RateLimit-Reset above 10**9 is read as a time (epoch seconds), not a delay."""
    headers = {"ratelimit-remaining": "0", "ratelimit-reset": "1000000000.5"}
    assert parse_budget(headers, 1_000_000_000.0) == (0, 0.5)
