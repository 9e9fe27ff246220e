"""Tests for ``asyncpoll._schedule``: fixed and exponential-backoff poll schedules."""

from __future__ import annotations

import math
import random
import re

import attrs
import pytest

import asyncpoll
from asyncpoll import Backoff, Fixed, Schedule, backoff, fixed

# The first three draws of random.Random(0) (CPython's Mersenne Twister).
SEED0_DRAWS = (0.8444218515250481, 0.7579544029403025, 0.420571580830845)


class _NoRandom(random.Random):
    """A Random that fails the test if a schedule draws from it."""

    def random(self) -> float:
        raise AssertionError("the schedule drew a random number it did not need")


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


# --- fixed() -------------------------------------------------------------------------


def test_fixed_first_poll_is_immediate_by_default() -> None:
    """fixed(interval) polls at once the first time (delay 0 before any poll)."""
    assert fixed(5.0).delay(0, random.Random(0)) == 0.0


@pytest.mark.parametrize("n", [1, 2, 3, 10, 1_000_000, 10**18])
def test_fixed_every_later_poll_waits_the_interval(n: int) -> None:
    """fixed(interval) waits exactly ``interval`` seconds after every earlier poll."""
    assert fixed(2.5).delay(n, random.Random(0)) == 2.5


def test_fixed_first_sets_the_delay_before_the_first_poll_only() -> None:
    """fixed(interval, first=) waits ``first`` before poll 0 and ``interval`` afterwards."""
    schedule = fixed(3.0, first=0.75)
    rng = random.Random(0)
    assert [schedule.delay(n, rng) for n in range(4)] == [0.75, 3.0, 3.0, 3.0]


def test_fixed_zero_interval_polls_back_to_back() -> None:
    """fixed(0) is allowed and means no wait at all between polls."""
    schedule = fixed(0)
    assert [schedule.delay(n, random.Random(0)) for n in range(3)] == [0.0, 0.0, 0.0]


def test_fixed_first_zero_is_an_explicit_immediate_start() -> None:
    """fixed(interval, first=0) polls at once, like the default."""
    assert fixed(4.0, first=0).delay(0, random.Random(0)) == 0.0


def test_fixed_never_draws_random_numbers() -> None:
    """A fixed schedule has no jitter, so it never touches the random source."""
    schedule = fixed(1.0, first=2.0)
    assert [schedule.delay(n, _NoRandom()) for n in range(3)] == [2.0, 1.0, 1.0]


def test_fixed_builds_the_fixed_value_object() -> None:
    """fixed() returns a Fixed equal to one built directly."""
    assert fixed(1.5, first=0.5) == Fixed(1.5, 0.5)
    assert fixed(1.5) == Fixed(interval=1.5, first=None)


def test_fixed_first_is_keyword_only() -> None:
    """fixed() refuses ``first`` given positionally, so it cannot be mistaken for interval."""
    with pytest.raises(TypeError):
        fixed(1.0, 2.0)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        (-1, "fixed(interval) must be a finite number of seconds >= 0, got -1"),
        (-0.5, "fixed(interval) must be a finite number of seconds >= 0, got -0.5"),
        (math.inf, "fixed(interval) must be a finite number of seconds >= 0, got inf"),
        (-math.inf, "fixed(interval) must be a finite number of seconds >= 0, got -inf"),
        (math.nan, "fixed(interval) must be a finite number of seconds >= 0, got nan"),
    ],
)
def test_fixed_rejects_out_of_range_interval(interval: float, message: str) -> None:
    """fixed() raises ValueError naming the value for a negative or non-finite interval."""
    with pytest.raises(ValueError, match=_exactly(message)):
        fixed(interval)


@pytest.mark.parametrize(
    ("interval", "message"),
    [
        ("1", "fixed(interval) must be a number of seconds, got '1'"),
        (None, "fixed(interval) must be a number of seconds, got None"),
        (True, "fixed(interval) must be a number of seconds, got True"),
        (False, "fixed(interval) must be a number of seconds, got False"),
    ],
)
def test_fixed_rejects_non_number_interval(interval: object, message: str) -> None:
    """fixed() raises TypeError for an interval that is not a number (bools included)."""
    with pytest.raises(TypeError, match=_exactly(message)):
        fixed(interval)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("first", "error", "message"),
    [
        (-1.0, ValueError, "fixed(first=) must be a finite number of seconds >= 0, got -1.0"),
        (math.nan, ValueError, "fixed(first=) must be a finite number of seconds >= 0, got nan"),
        (math.inf, ValueError, "fixed(first=) must be a finite number of seconds >= 0, got inf"),
        ("0", TypeError, "fixed(first=) must be a number of seconds, got '0'"),
        (True, TypeError, "fixed(first=) must be a number of seconds, got True"),
    ],
)
def test_fixed_rejects_bad_first(first: object, error: type[Exception], message: str) -> None:
    """fixed(first=) is validated like the interval, and the message names ``first=``."""
    with pytest.raises(error, match=_exactly(message)):
        fixed(1.0, first=first)  # type: ignore[arg-type]


def test_fixed_is_frozen() -> None:
    """A Fixed schedule cannot be changed after it is built."""
    schedule = fixed(1.0)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        schedule.interval = 2.0  # type: ignore[misc]


def test_fixed_repr_shows_its_settings() -> None:
    """Fixed's repr shows the interval and first delay."""
    assert repr(fixed(1.5, first=0.5)) == "Fixed(interval=1.5, first=0.5)"


# --- backoff() -----------------------------------------------------------------------


def test_backoff_defaults() -> None:
    """backoff() defaults to initial 1 s, factor 2, max 30 s, jitter 0.1 and no first delay."""
    assert backoff() == Backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.1, first=None)


def test_backoff_sequence_without_jitter_doubles_then_caps() -> None:
    """With no jitter the delays are exactly 0, initial*factor**(n-1) ..., capped at max."""
    schedule = backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.0)
    delays = [schedule.delay(n, random.Random(0)) for n in range(9)]
    assert delays == [0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


def test_backoff_sequence_with_other_factor() -> None:
    """A factor of 1.5 grows each gap by exactly half, from ``initial``, until the cap."""
    schedule = backoff(initial=0.5, factor=1.5, max=2.0, jitter=0.0)
    delays = [schedule.delay(n, random.Random(0)) for n in range(7)]
    assert delays == [0.0, 0.5, 0.75, 1.125, 1.6875, 2.0, 2.0]


def test_backoff_factor_one_is_a_constant_gap() -> None:
    """factor=1 makes every gap after the first poll equal to ``initial``."""
    schedule = backoff(initial=3.0, factor=1.0, max=10.0, jitter=0.0)
    assert [schedule.delay(n, random.Random(0)) for n in range(5)] == [0.0, 3.0, 3.0, 3.0, 3.0]


def test_backoff_initial_equal_to_max_is_allowed() -> None:
    """max == initial is valid and gives a constant gap of ``max``."""
    schedule = backoff(initial=5.0, factor=3.0, max=5.0, jitter=0.0)
    assert [schedule.delay(n, random.Random(0)) for n in range(4)] == [0.0, 5.0, 5.0, 5.0]


def test_backoff_first_sets_the_delay_before_the_first_poll() -> None:
    """backoff(first=) waits ``first`` before poll 0; later gaps are unchanged."""
    schedule = backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.0, first=7.0)
    delays = [schedule.delay(n, random.Random(0)) for n in range(4)]
    assert delays == [7.0, 1.0, 2.0, 4.0]


def test_backoff_first_is_not_jittered() -> None:
    """The first delay is exactly ``first`` even with full jitter, and draws no random number."""
    schedule = backoff(jitter=1.0, first=2.5)
    assert schedule.delay(0, _NoRandom()) == 2.5


def test_backoff_first_poll_without_first_is_immediate_and_draws_nothing() -> None:
    """Without ``first`` the first poll waits 0 s and the random source is left untouched."""
    assert backoff(jitter=1.0).delay(0, _NoRandom()) == 0.0


def test_backoff_without_jitter_draws_nothing() -> None:
    """jitter=0 never consumes random numbers, so other users of the rng are unaffected."""
    schedule = backoff(jitter=0.0)
    assert [schedule.delay(n, _NoRandom()) for n in range(1, 4)] == [1.0, 2.0, 4.0]


def test_backoff_with_jitter_draws_exactly_one_number_per_delay() -> None:
    """Each jittered delay consumes one rng.random() draw, so sequences are reproducible."""
    rng = random.Random(42)
    reference = random.Random(42)
    backoff(jitter=0.5).delay(3, rng)
    reference.random()
    assert rng.getstate() == reference.getstate()


def test_backoff_jitter_exact_figures_with_seeded_random() -> None:
    """A seeded rng gives delay = base * (1 + jitter * (2u - 1)) for successive draws u."""
    schedule = backoff(initial=10.0, factor=2.0, max=1000.0, jitter=0.5)
    rng = random.Random(0)
    delays = [schedule.delay(n, rng) for n in (1, 2, 3)]
    bases = (10.0, 20.0, 40.0)
    expected = [b * (1.0 + 0.5 * (2.0 * u - 1.0)) for b, u in zip(bases, SEED0_DRAWS, strict=True)]
    assert delays == pytest.approx(expected, rel=1e-15, abs=0.0)
    # Spelled out: 10 * 1.34442..., 20 * 1.25795..., 40 * 0.92057...
    assert delays == pytest.approx(
        [13.444218515250482, 25.15908805880605, 36.822863233233804], rel=1e-14, abs=0.0
    )


def test_backoff_jitter_is_reproducible_for_equal_seeds() -> None:
    """Two rngs with the same seed give the same jittered sequence."""
    schedule = backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.3)
    a, b = random.Random(1234), random.Random(1234)
    assert [schedule.delay(n, a) for n in range(50)] == [schedule.delay(n, b) for n in range(50)]


@pytest.mark.parametrize("jitter", [0.1, 0.25, 0.5, 1.0])
def test_backoff_jitter_stays_within_bounds(jitter: float) -> None:
    """Every jittered delay lies within base * (1 ± jitter) and never exceeds max."""
    schedule = backoff(initial=1.0, factor=2.0, max=64.0, jitter=jitter)
    rng = random.Random(2024)
    for n in range(1, 8):  # bases 1, 2, 4, ..., 64: all below or at the cap
        base = min(64.0, 2.0 ** (n - 1))
        draws = [schedule.delay(n, rng) for _ in range(400)]
        assert min(draws) >= base * (1.0 - jitter)
        assert max(draws) <= min(64.0, base * (1.0 + jitter))
        if base < 64.0:
            # 400 uniform draws cover both halves of the range.
            assert min(draws) < base < max(draws)


def test_backoff_jitter_spreads_the_delays() -> None:
    """With jitter the same n gives different delays from successive draws."""
    schedule = backoff(initial=8.0, factor=2.0, max=30.0, jitter=0.5)
    rng = random.Random(7)
    assert len({schedule.delay(1, rng) for _ in range(100)}) == 100


def test_backoff_cap_applies_after_jitter() -> None:
    """At the cap, jitter only shortens the gap: delays lie in [max*(1-jitter), max]."""
    schedule = backoff(initial=1.0, factor=2.0, max=4.0, jitter=0.5)
    rng = random.Random(99)
    draws = [schedule.delay(10, rng) for _ in range(500)]
    assert min(draws) >= 2.0
    assert max(draws) == 4.0  # the upward half of the jitter is clipped to exactly max
    assert any(d < 4.0 for d in draws)


def test_backoff_full_jitter_can_reach_zero_but_not_below() -> None:
    """jitter=1 spreads a gap over [0, 2*base]; no delay is ever negative."""
    schedule = backoff(initial=1.0, factor=2.0, max=100.0, jitter=1.0)

    class _Low(random.Random):
        def random(self) -> float:
            return 0.0

    class _High(random.Random):
        def random(self) -> float:
            return 1.0 - 2.0**-53

    assert schedule.delay(3, _Low()) == 0.0
    assert schedule.delay(3, _High()) == 8.0 - 2.0**-50  # the largest double below 8


@pytest.mark.parametrize("n", [1_025, 10_000, 10**9, 10**18, 2**200])
@pytest.mark.parametrize("factor", [2.0, 2, 1.5, 10.0, 1e300])
def test_backoff_huge_n_returns_max_without_overflow(n: int, factor: float) -> None:
    """A job polled for ages gets exactly ``max``: factor**n neither overflows nor raises."""
    schedule = backoff(initial=1.0, factor=factor, max=30.0, jitter=0.0)
    assert schedule.delay(n, random.Random(0)) == 30.0


def test_backoff_huge_n_with_jitter_stays_within_cap_bounds() -> None:
    """For a huge n the jittered delay is within [max*(1-jitter), max]."""
    schedule = backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.2)
    rng = random.Random(5)
    draws = [schedule.delay(10**12, rng) for _ in range(200)]
    assert all(24.0 <= d <= 30.0 for d in draws)


@pytest.mark.parametrize("factor", [2.0, 1.5, 10.0])
def test_backoff_zero_initial_stays_zero_for_every_n(factor: float) -> None:
    """initial=0 makes initial * factor**(n-1) zero for every n, huge ones included."""
    schedule = backoff(initial=0.0, factor=factor, max=30.0, jitter=0.0)
    ns = [1, 2, 50, 1_024, 1_025, 1_026, 10**9]
    assert [schedule.delay(n, random.Random(0)) for n in ns] == [0.0] * len(ns)


def test_backoff_builds_the_backoff_value_object() -> None:
    """backoff() returns a Backoff equal to one built directly, positional order kept."""
    assert backoff(0.5, 3.0, 9.0, 0.2, 1.0) == Backoff(
        initial=0.5, factor=3.0, max=9.0, jitter=0.2, first=1.0
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"initial": -1.0},
            ValueError,
            "backoff(initial=) must be a finite number of seconds >= 0, got -1.0",
        ),
        (
            {"initial": math.nan},
            ValueError,
            "backoff(initial=) must be a finite number of seconds >= 0, got nan",
        ),
        ({"initial": "1"}, TypeError, "backoff(initial=) must be a number of seconds, got '1'"),
        ({"initial": True}, TypeError, "backoff(initial=) must be a number of seconds, got True"),
        (
            {"max": math.inf},
            ValueError,
            "backoff(max=) must be a finite number of seconds >= 0, got inf",
        ),
        ({"max": -2}, ValueError, "backoff(max=) must be a finite number of seconds >= 0, got -2"),
        ({"max": None}, TypeError, "backoff(max=) must be a number of seconds, got None"),
        (
            {"first": -0.1},
            ValueError,
            "backoff(first=) must be a finite number of seconds >= 0, got -0.1",
        ),
        ({"first": "0"}, TypeError, "backoff(first=) must be a number of seconds, got '0'"),
        ({"factor": 0.5}, ValueError, "backoff(factor=) must be a finite number >= 1, got 0.5"),
        ({"factor": 0}, ValueError, "backoff(factor=) must be a finite number >= 1, got 0"),
        (
            {"factor": math.inf},
            ValueError,
            "backoff(factor=) must be a finite number >= 1, got inf",
        ),
        (
            {"factor": math.nan},
            ValueError,
            "backoff(factor=) must be a finite number >= 1, got nan",
        ),
        ({"factor": "2"}, TypeError, "backoff(factor=) must be a number, got '2'"),
        ({"factor": True}, TypeError, "backoff(factor=) must be a number, got True"),
        ({"jitter": -0.1}, ValueError, "backoff(jitter=) must be from 0 to 1, got -0.1"),
        ({"jitter": 1.5}, ValueError, "backoff(jitter=) must be from 0 to 1, got 1.5"),
        ({"jitter": math.nan}, ValueError, "backoff(jitter=) must be from 0 to 1, got nan"),
        ({"jitter": "0.1"}, TypeError, "backoff(jitter=) must be a number, got '0.1'"),
        ({"jitter": True}, TypeError, "backoff(jitter=) must be a number, got True"),
        (
            {"initial": 5.0, "max": 2.0},
            ValueError,
            "backoff(max=) must be >= initial, got max=2.0 < initial=5.0",
        ),
        (
            {"max": 0.5},
            ValueError,
            "backoff(max=) must be >= initial, got max=0.5 < initial=1.0",
        ),
    ],
)
def test_backoff_rejects_bad_settings(
    kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    """backoff() raises an error naming the argument and the value it got."""
    with pytest.raises(error, match=_exactly(message)):
        backoff(**kwargs)  # type: ignore[arg-type]


def test_backoff_class_validates_like_the_factory() -> None:
    """Building Backoff directly runs the same validation as backoff()."""
    with pytest.raises(ValueError, match=r"^backoff\(jitter=\) must be from 0 to 1, got 2$"):
        Backoff(jitter=2)


def test_backoff_accepts_boundary_settings() -> None:
    """initial=0, max=0, factor=1, jitter=0 and jitter=1 are all valid settings."""
    assert backoff(initial=0.0, max=0.0, factor=1.0, jitter=0.0).delay(3, _NoRandom()) == 0.0
    assert backoff(jitter=1.0).jitter == 1.0


def test_backoff_is_frozen() -> None:
    """A Backoff schedule cannot be changed after it is built."""
    schedule = backoff()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        schedule.max = 60.0  # type: ignore[misc]


def test_backoff_repr_shows_its_settings() -> None:
    """Backoff's repr shows every setting."""
    assert repr(backoff(first=0.5)) == (
        "Backoff(initial=1.0, factor=2.0, max=30.0, jitter=0.1, first=0.5)"
    )


# --- the Schedule protocol -----------------------------------------------------------


def test_builtin_schedules_satisfy_the_protocol() -> None:
    """fixed() and backoff() values are Schedules at runtime."""
    assert isinstance(fixed(1.0), Schedule)
    assert isinstance(backoff(), Schedule)


def test_any_object_with_delay_is_a_schedule() -> None:
    """A user class with a ``delay`` method is a Schedule; one without is not."""

    class Custom:
        def delay(self, n: int, rng: random.Random) -> float:
            return float(n)

    class NotOne:
        pass

    assert isinstance(Custom(), Schedule)
    assert not isinstance(NotOne(), Schedule)


def test_schedules_are_exported_from_the_package() -> None:
    """The public package re-exports the schedule names from _schedule."""
    assert asyncpoll.fixed is fixed
    assert asyncpoll.backoff is backoff
    assert asyncpoll.Fixed is Fixed
    assert asyncpoll.Backoff is Backoff
    assert asyncpoll.Schedule is Schedule


def test_backoff_growth_stops_at_the_1024th_factor() -> None:
    """Past n = 1025 the delay no longer grows (factor**1024), below any max."""
    slow = backoff(initial=1.0, factor=1.0001, max=30.0, jitter=0.0)
    rng = random.Random(0)
    assert slow.delay(5000, rng) == 1.0001**1024
    assert slow.delay(1025, rng) == slow.delay(10**9, rng)
