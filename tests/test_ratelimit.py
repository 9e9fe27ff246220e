"""Tests for ``asyncpoll._ratelimit`` (RateLimit, the TokenBucket) and ``_limiter`` (Limiter).

The bucket tests feed clock readings by hand; the Limiter tests run in virtual time on
asyncio and trio (see conftest.py), so every ``anyio.current_time()`` reading is exact.
Rates are chosen so that every interval is a power of two and all figures are exact.
"""

from __future__ import annotations

import math
import random
import re
from typing import Any

import anyio
import anyio.lowlevel
import attrs
import pytest

import asyncpoll
from asyncpoll import AnyioClock, Limiter, RateLimit, TokenBucket


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


# --- RateLimit -----------------------------------------------------------------------


def test_rate_limit_defaults() -> None:
    """RateLimit(rate) means ``rate`` requests per second, evenly spaced (burst 1)."""
    limit = RateLimit(10)
    assert (limit.rate, limit.per, limit.burst) == (10, 1.0, 1)


@pytest.mark.parametrize(
    ("limit", "per_second"),
    [
        (RateLimit(10), 10.0),
        (RateLimit(60, per=60.0, burst=5), 1.0),
        (RateLimit(1, per=4.0), 0.25),
        (RateLimit(0.5), 0.5),
        (RateLimit(3, per=0.5), 6.0),
    ],
)
def test_rate_limit_per_second(limit: RateLimit, per_second: float) -> None:
    """per_second is rate divided by per."""
    assert limit.per_second == per_second


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rate": 0}, ValueError, "RateLimit(rate) must be a finite number > 0, got 0"),
        ({"rate": -1.5}, ValueError, "RateLimit(rate) must be a finite number > 0, got -1.5"),
        ({"rate": math.inf}, ValueError, "RateLimit(rate) must be a finite number > 0, got inf"),
        ({"rate": math.nan}, ValueError, "RateLimit(rate) must be a finite number > 0, got nan"),
        ({"rate": "10"}, TypeError, "RateLimit(rate) must be a number, got '10'"),
        ({"rate": None}, TypeError, "RateLimit(rate) must be a number, got None"),
        ({"rate": True}, TypeError, "RateLimit(rate) must be a number, got True"),
        ({"rate": 1, "per": 0}, ValueError, "RateLimit(per=) must be a finite number > 0, got 0"),
        (
            {"rate": 1, "per": -60.0},
            ValueError,
            "RateLimit(per=) must be a finite number > 0, got -60.0",
        ),
        (
            {"rate": 1, "per": math.inf},
            ValueError,
            "RateLimit(per=) must be a finite number > 0, got inf",
        ),
        ({"rate": 1, "per": "1"}, TypeError, "RateLimit(per=) must be a number, got '1'"),
        ({"rate": 1, "per": False}, TypeError, "RateLimit(per=) must be a number, got False"),
        (
            {"rate": 1, "burst": 0},
            ValueError,
            "RateLimit(burst=) must be a whole number >= 1, got 0",
        ),
        (
            {"rate": 1, "burst": -3},
            ValueError,
            "RateLimit(burst=) must be a whole number >= 1, got -3",
        ),
        (
            {"rate": 1, "burst": 1.5},
            ValueError,
            "RateLimit(burst=) must be a whole number >= 1, got 1.5",
        ),
        (
            {"rate": 1, "burst": 2.0},
            ValueError,
            "RateLimit(burst=) must be a whole number >= 1, got 2.0",
        ),
        (
            {"rate": 1, "burst": True},
            ValueError,
            "RateLimit(burst=) must be a whole number >= 1, got True",
        ),
        (
            {"rate": 1, "burst": "2"},
            ValueError,
            "RateLimit(burst=) must be a whole number >= 1, got '2'",
        ),
    ],
)
def test_rate_limit_validation(
    kwargs: dict[str, Any], error: type[Exception], message: str
) -> None:
    """Invalid settings raise an error naming the argument and quoting the value."""
    with pytest.raises(error, match=_exactly(message)):
        RateLimit(**kwargs)


def test_rate_limit_is_frozen_with_value_equality() -> None:
    """RateLimit is immutable and compares by value."""
    limit = RateLimit(60, per=60.0, burst=5)
    assert limit == RateLimit(60, 60.0, 5)
    assert limit != RateLimit(60, 60.0, 4)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        limit.rate = 1  # type: ignore[misc]


def test_rate_limit_repr() -> None:
    """RateLimit's repr shows its three settings."""
    assert repr(RateLimit(60, per=60.0, burst=5)) == "RateLimit(rate=60, per=60.0, burst=5)"


def test_coerce_none_is_no_limit() -> None:
    """RateLimit.coerce(None) is None: no rate limit."""
    assert RateLimit.coerce(None) is None


def test_coerce_passes_a_rate_limit_through() -> None:
    """RateLimit.coerce returns a RateLimit unchanged (the very object)."""
    limit = RateLimit(5, per=2.0, burst=3)
    assert RateLimit.coerce(limit) is limit


@pytest.mark.parametrize("value", [5, 0.5, 100.0])
def test_coerce_a_number_is_requests_per_second(value: float) -> None:
    """RateLimit.coerce(number) is that many requests per second, burst 1."""
    assert RateLimit.coerce(value) == RateLimit(value, per=1.0, burst=1)


@pytest.mark.parametrize(
    ("value", "shown"),
    [(True, "True"), ("5", "'5'"), ([5], "[5]"), ((5, 1.0), "(5, 1.0)")],
)
def test_coerce_rejects_other_types(value: Any, shown: str) -> None:
    """RateLimit.coerce raises TypeError, quoting the value, for anything else."""
    message = (
        "rate_limit must be a RateLimit, a number of requests per second or None, got " + shown
    )
    with pytest.raises(TypeError, match=_exactly(message)):
        RateLimit.coerce(value)


@pytest.mark.parametrize(("value", "shown"), [(0, "0"), (-2, "-2"), (math.nan, "nan")])
def test_coerce_validates_numbers(value: float, shown: str) -> None:
    """RateLimit.coerce applies RateLimit's validation to a number."""
    with pytest.raises(
        ValueError, match=_exactly(f"RateLimit(rate) must be a finite number > 0, got {shown}")
    ):
        RateLimit.coerce(value)


# --- TokenBucket: tokens counted at send time -------------------------------------------


def test_try_take_takes_the_burst_then_refuses() -> None:
    """A full bucket lets ``burst`` requests go at once, then none until a token accrues."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    assert [bucket.try_take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.granted == 3
    assert bucket.tokens(0.0) == 0.0
    assert bucket.try_take(0.125) is False
    assert bucket.try_take(0.25) is True
    assert bucket.try_take(0.25) is False
    assert bucket.granted == 4


def test_try_take_counts_at_the_moment_of_taking() -> None:
    """Tokens are counted when requests go: a request that comes late finds what accrued
    until then, capped at ``burst``, and nothing is owed for the time it did not ask."""
    bucket = TokenBucket(RateLimit(4, burst=2))
    assert bucket.try_take(0.0) and bucket.try_take(0.0)
    assert bucket.tokens(0.375) == 1.5
    assert bucket.try_take(0.375) is True
    assert bucket.tokens(0.375) == 0.5
    assert bucket.tokens(10.0) == 2.0
    assert [bucket.try_take(10.0) for _ in range(3)] == [True, True, False]


def test_give_back_returns_a_token_as_if_it_had_not_been_taken() -> None:
    """give_back(now) counts what accrued until ``now``, adds the token back and takes
    it off ``granted``: the bucket is as if the request had not taken it."""
    bucket = TokenBucket(RateLimit(2, burst=4))
    assert [bucket.try_take(0.0) for _ in range(3)] == [True, True, True]
    bucket.give_back(0.25)
    assert (bucket.tokens(0.25), bucket.granted) == (2.5, 2)
    assert bucket.tokens(0.5) == 3.0  # accrues from 0.25 on at the rate, as before
    bucket.give_back(0.5)
    assert (bucket.tokens(0.5), bucket.granted) == (4.0, 1)


def test_give_back_never_fills_the_bucket_past_its_burst() -> None:
    """A token given back after the bucket filled up again is not kept: burst stays
    the most that can go at once."""
    bucket = TokenBucket(RateLimit(2, burst=2))
    assert bucket.try_take(0.0) is True
    bucket.give_back(10.0)
    assert (bucket.tokens(10.0), bucket.granted) == (2.0, 0)
    assert [bucket.try_take(10.0) for _ in range(3)] == [True, True, False]
    bucket.give_back(10.0)
    bucket.give_back(10.0)
    assert (bucket.tokens(10.0), bucket.granted) == (2.0, 0)


def test_take_up_to_grants_a_batch() -> None:
    """take_up_to takes every whole token there is, at most ``most``, and says how many."""
    bucket = TokenBucket(RateLimit(4, burst=8))
    assert bucket.take_up_to(0.0, 3) == 3
    assert bucket.take_up_to(0.0, 100) == 5
    assert bucket.take_up_to(0.0, 100) == 0
    assert bucket.take_up_to(0.625, 100) == 2  # 2.5 tokens accrued: two whole ones
    assert bucket.tokens(0.625) == 0.5
    assert bucket.take_up_to(10.0, 0) == 0
    assert bucket.take_up_to(10.0, -1) == 0
    assert bucket.granted == 10


@pytest.mark.parametrize(
    ("taken", "now", "tokens", "wait"),
    [
        (0, 0.0, 1.0, 0.0),
        (3, 0.0, 1.0, 0.25),
        (3, 0.125, 1.0, 0.125),
        (3, 0.25, 1.0, 0.0),
        (3, 0.0, 3.0, 0.75),  # until the bucket is full again
        (3, 0.5, 3.0, 0.25),
        (3, 0.0, 4.0, math.inf),  # more than burst: never
        (0, 0.0, 3.0, 0.0),
    ],
)
def test_wait_time(taken: int, now: float, tokens: float, wait: float) -> None:
    """wait_time(now, n) is the seconds until ``n`` tokens are there (inf above burst)."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    assert bucket.take_up_to(0.0, taken) == taken
    assert bucket.wait_time(now, tokens) == wait


def test_queries_do_not_change_the_bucket() -> None:
    """tokens(), has_capacity() and wait_time() only read: a later reading of an earlier
    time sees the same count."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    bucket.take_up_to(0.0, 3)
    assert bucket.tokens(5.0) == 3.0
    assert bucket.has_capacity(5.0)
    assert bucket.wait_time(5.0) == 0.0
    assert bucket.tokens(0.125) == 0.5
    assert bucket.try_take(0.125) is False


def test_an_earlier_reading_counts_as_the_latest() -> None:
    """The bucket's time never goes back: a reading before the latest one refills nothing."""
    bucket = TokenBucket(RateLimit(4))
    assert bucket.try_take(10.0) is True
    assert bucket.tokens(5.0) == 0.0
    assert bucket.try_take(5.0) is False
    assert bucket.wait_time(5.0) == 0.25


def test_retune_keeps_accrued_tokens_and_changes_the_rate_from_now() -> None:
    """retune(rate, now): tokens accrued until ``now`` at the old rate are kept, then new
    ones accrue at the new rate; without ``now``, from the latest reading."""
    bucket = TokenBucket(RateLimit(4, burst=4))
    bucket.take_up_to(0.0, 4)
    bucket.retune(1.0, 0.5)  # 2 tokens accrued at 4/s
    assert bucket.per_second == 1.0
    assert bucket.tokens(0.5) == 2.0
    assert bucket.tokens(1.0) == 2.5  # then 1/s
    other = TokenBucket(RateLimit(4, burst=4))
    other.take_up_to(0.0, 4)
    other.retune(1.0)  # from the latest reading, t=0
    assert other.tokens(0.5) == 0.5


@pytest.mark.parametrize("rate", [0.0, -1.0, math.inf, math.nan])
def test_retune_refuses_a_bad_rate(rate: float) -> None:
    """retune() refuses a rate that is not a finite number > 0, changing nothing."""
    bucket = TokenBucket(RateLimit(4))
    with pytest.raises(
        ValueError, match=_exactly(f"a rate must be a finite number > 0, got {rate!r}")
    ):
        bucket.retune(rate, 1.0)
    assert bucket.per_second == 4.0


def test_ratelimit_imports_no_event_loop() -> None:
    """The bucket is pure: importing the values and policy modules loads no anyio, httpx,
    aiohttp or sniffio."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import asyncpoll._ratelimit, asyncpoll._policy, asyncpoll._reader, asyncpoll._httpdate\n"
        "import asyncpoll._status, asyncpoll._schedule, asyncpoll._response\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "{'anyio', 'httpx', 'aiohttp', 'sniffio', 'trio'}))\n"
    )
    # Importing asyncpoll._x runs asyncpoll/__init__.py, which loads the engine; so load
    # the modules from a stub package instead.
    stub = (
        "import importlib.util, pathlib, sys, types\n"
        "spec = importlib.util.find_spec('asyncpoll')\n"
        "package = types.ModuleType('asyncpoll')\n"
        "package.__path__ = list(spec.submodule_search_locations)\n"
        "sys.modules['asyncpoll'] = package\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", stub + code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


# --- TokenBucket: reserve (deprecated-compatible GCRA interface) --------------------------


def _reserve(bucket: TokenBucket, now: float, count: int) -> list[float]:
    return [bucket.reserve(now) for _ in range(count)]


def test_bucket_burst_at_once_then_spaced() -> None:
    """``burst`` requests are granted at once, then one every 1/rate seconds."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    assert _reserve(bucket, 0.0, 8) == [0.0, 0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25]
    assert bucket.granted == 8


def test_bucket_burst_one_is_evenly_spaced() -> None:
    """With burst 1 every request is 1/rate seconds after the one before."""
    bucket = TokenBucket(RateLimit(2))
    assert _reserve(bucket, 0.0, 5) == [0.0, 0.5, 1.0, 1.5, 2.0]


def test_bucket_honours_per() -> None:
    """RateLimit(60, per=60, burst=5): five at once, then one a second."""
    bucket = TokenBucket(RateLimit(60, per=60.0, burst=5))
    assert _reserve(bucket, 100.0, 8) == [100.0] * 5 + [101.0, 102.0, 103.0]


def test_bucket_grants_start_at_the_first_reading() -> None:
    """Grant times are clock readings: a bucket first used at t=1000 grants from 1000."""
    bucket = TokenBucket(RateLimit(2))
    assert _reserve(bucket, 1000.0, 3) == [1000.0, 1000.5, 1001.0]


def test_bucket_refills_at_rate_while_idle() -> None:
    """Tokens come back at ``rate`` per second: half a second refills two of them at 4/s."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    assert _reserve(bucket, 0.0, 3) == [0.0, 0.0, 0.0]
    assert bucket.tokens(0.5) == 2.0
    assert _reserve(bucket, 0.5, 4) == [0.5, 0.5, 0.75, 1.0]


def test_bucket_refill_never_exceeds_burst() -> None:
    """After a long idle spell only ``burst`` requests go at once."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    _reserve(bucket, 0.0, 10)
    assert _reserve(bucket, 500.0, 5) == [500.0, 500.0, 500.0, 500.25, 500.5]


def test_bucket_slow_demand_is_never_delayed() -> None:
    """Requests spaced wider than 1/rate are all granted at the moment they ask."""
    bucket = TokenBucket(RateLimit(2))
    assert [bucket.reserve(t) for t in (0.0, 0.5, 1.25, 3.0, 3.5)] == [0.0, 0.5, 1.25, 3.0, 3.5]


def test_bucket_request_arriving_mid_wait_queues_behind_the_others() -> None:
    """A request arriving while others wait gets the next free slot after theirs."""
    bucket = TokenBucket(RateLimit(2))
    assert _reserve(bucket, 0.0, 3) == [0.0, 0.5, 1.0]
    assert bucket.reserve(0.25) == 1.5
    assert bucket.reserve(1.75) == 2.0
    assert bucket.reserve(3.0) == 3.0


def _demand(seed: int, limit: RateLimit, steps: int) -> tuple[list[float], list[float]]:
    """Drive a bucket with pseudo-random demand; return (grant times, request times).

    Each step the clock moves on by a pseudo-random amount (often not at all) and a
    pseudo-random number of requests is reserved; now and then the latest reservation is
    cancelled. Only reservations that stay granted are returned.
    """
    rng = random.Random(seed)
    bucket = TokenBucket(limit)
    interval = 1.0 / limit.per_second
    now = rng.uniform(-50.0, 50.0)
    grants: list[float] = []
    asked: list[float] = []
    for _ in range(steps):
        now += rng.choice([0.0, 0.0, interval / 7, interval / 2, interval, 3 * interval]) * (
            rng.random() * 2
        )
        for _ in range(rng.randint(0, 2 * limit.burst + 1)):
            at = bucket.reserve(now)
            assert at >= now
            grants.append(at)
            asked.append(now)
        if grants and rng.random() < 0.2:
            before = bucket.granted
            bucket.cancel(grants[-1])
            if bucket.granted == before - 1:
                grants.pop()
                asked.pop()
        assert bucket.granted == len(grants)
    return grants, asked


LIMITS = [
    RateLimit(1),
    RateLimit(4, burst=3),
    RateLimit(10, burst=1),
    RateLimit(3, burst=7),
    RateLimit(60, per=60.0, burst=5),
    RateLimit(7, per=2.0, burst=2),
]


def _tightest_window(grants: list[float], burst: int, rate: float) -> float:
    """min over all i <= j of burst + rate * (t_j - t_i) - (j - i + 1), for sorted grants.

    Negative means some window held more grants than the bound allows. The slack of
    window (i, j) is burst - (a_j - b_i) with a_j = j + 1 - rate * t_j and
    b_i = i - rate * t_i, so a running maximum of a_j from the right covers every pair.
    """
    tightest = math.inf
    best_a = -math.inf
    for k in range(len(grants) - 1, -1, -1):
        best_a = max(best_a, k + 1 - rate * grants[k])
        tightest = min(tightest, burst - (best_a - (k - rate * grants[k])))
    return tightest


def _tightest_window_by_brute_force(grants: list[float], burst: int, rate: float) -> float:
    return min(
        burst + rate * (grants[j] - grants[i]) - (j - i + 1)
        for i in range(len(grants))
        for j in range(i, len(grants))
    )


@pytest.mark.parametrize(
    ("grants", "burst", "rate", "slack"),
    [
        ([0.0, 0.0], 1, 1.0, -1.0),
        ([0.0, 1.0, 2.0], 1, 1.0, 0.0),
        ([0.0, 0.5, 2.0], 1, 1.0, -0.5),
        ([0.0, 0.0, 0.0, 0.25, 0.5], 3, 4.0, 0.0),
        ([0.0, 0.0, 0.0, 0.25, 0.375], 3, 4.0, -0.5),
        ([5.0], 2, 1.0, 1.0),
    ],
)
def test_window_checker_finds_the_tightest_window(
    grants: list[float], burst: int, rate: float, slack: float
) -> None:
    """The window checker used below reports violations, agreeing with brute force."""
    assert _tightest_window(grants, burst, rate) == slack
    assert _tightest_window_by_brute_force(grants, burst, rate) == slack


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("limit", LIMITS, ids=repr)
def test_bucket_window_bound_holds_for_every_window(limit: RateLimit, seed: int) -> None:
    """For every pair of grants i <= j, j - i + 1 <= burst + rate * (t_j - t_i)."""
    grants, _ = _demand(seed, limit, steps=250)
    assert len(grants) >= 300  # the demand is heavy enough to make the bound bite
    assert grants == sorted(grants)
    tightest = _tightest_window(grants, limit.burst, limit.per_second)
    assert tightest >= -1e-9
    # The limiter is not over-cautious: some window is filled right up to the bound.
    assert tightest == pytest.approx(0.0, abs=1e-9)
    # Cross-check the fast checker against every pair on a prefix.
    prefix = grants[:150]
    assert _tightest_window_by_brute_force(prefix, limit.burst, limit.per_second) == pytest.approx(
        _tightest_window(prefix, limit.burst, limit.per_second), abs=1e-9
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("limit", LIMITS, ids=repr)
def test_bucket_grants_are_first_come_first_served(limit: RateLimit, seed: int) -> None:
    """Grant times never decrease in the order requests were made, and never precede them."""
    grants, asked = _demand(seed, limit, steps=250)
    assert grants == sorted(grants)
    assert all(at >= now for at, now in zip(grants, asked, strict=True))


@pytest.mark.parametrize("limit", LIMITS, ids=repr)
def test_bucket_saturated_throughput_is_exact(limit: RateLimit) -> None:
    """Under continuous demand from t=0, grant k (k >= burst) is at (k - burst + 1)/rate."""
    bucket = TokenBucket(limit)
    interval = 1.0 / limit.per_second
    grants = _reserve(bucket, 0.0, limit.burst + 20)
    expected = [0.0] * limit.burst + [k * interval for k in range(1, 21)]
    assert grants == pytest.approx(expected, rel=1e-12, abs=1e-12)


def _take_late(seed: int, limit: RateLimit, steps: int) -> list[float]:
    """Drive a bucket as a late-waking limiter would: at pseudo-random readings (often
    several per token, sometimes far too late), take a pseudo-random batch."""
    rng = random.Random(seed)
    bucket = TokenBucket(limit)
    interval = 1.0 / limit.per_second
    now = 0.0
    grants: list[float] = []
    for _ in range(steps):
        now += rng.choice([0.0, interval / 7, interval / 2, interval, 5 * interval]) * rng.random()
        if rng.random() < 0.5:
            if bucket.try_take(now):
                grants.append(now)
        else:
            grants.extend([now] * bucket.take_up_to(now, rng.randint(0, 2 * limit.burst)))
    return grants


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("limit", LIMITS, ids=repr)
def test_send_time_bucket_bounds_every_window(limit: RateLimit, seed: int) -> None:
    """Taking tokens at send time, however late or batched, keeps every window of t
    seconds to burst + rate * t grants."""
    grants = _take_late(seed, limit, steps=1500)
    assert len(grants) >= 200
    assert _tightest_window(grants, limit.burst, limit.per_second) >= -1e-9


# --- TokenBucket: cancel (deprecated-compatible, with reserve) ---------------------------


def test_cancel_latest_waiting_slot_gives_it_back() -> None:
    """Cancelling the latest reservation returns its slot: the next request gets that time."""
    bucket = TokenBucket(RateLimit(2))
    assert _reserve(bucket, 0.0, 3) == [0.0, 0.5, 1.0]
    bucket.cancel(1.0)
    assert bucket.granted == 2
    assert bucket.reserve(0.0) == 1.0


def test_cancel_latest_slots_one_after_another() -> None:
    """After the latest slot is returned, the one before it becomes the latest and can be too."""
    bucket = TokenBucket(RateLimit(4, burst=2))
    assert _reserve(bucket, 0.0, 5) == [0.0, 0.0, 0.25, 0.5, 0.75]
    bucket.cancel(0.75)
    bucket.cancel(0.5)
    bucket.cancel(0.25)
    assert bucket.granted == 2
    assert _reserve(bucket, 0.0, 2) == [0.25, 0.5]


def test_cancel_earlier_slot_does_not_give_it_back() -> None:
    """Cancelling a reservation that is not the latest changes nothing for later requests."""
    bucket = TokenBucket(RateLimit(2))
    assert _reserve(bucket, 0.0, 3) == [0.0, 0.5, 1.0]
    bucket.cancel(0.5)
    assert bucket.granted == 3
    assert bucket.reserve(0.0) == 1.5


def test_cancel_unknown_time_does_nothing() -> None:
    """Cancelling a time no reservation holds is a no-op."""
    bucket = TokenBucket(RateLimit(2))
    _reserve(bucket, 0.0, 2)
    bucket.cancel(7.0)
    assert bucket.granted == 2
    assert bucket.reserve(0.0) == 1.0


def test_cancel_on_fresh_bucket_does_nothing() -> None:
    """Cancelling before any reservation leaves a full bucket."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    bucket.cancel(0.0)
    assert bucket.granted == 0
    assert bucket.tokens(0.0) == 3.0
    assert _reserve(bucket, 0.0, 4) == [0.0, 0.0, 0.0, 0.25]


@pytest.mark.parametrize("burst", [1, 2, 5])
def test_cancel_latest_immediate_slot_gives_it_back(burst: int) -> None:
    """Cancelling the latest reservation returns its slot even when it was granted at once."""
    bucket = TokenBucket(RateLimit(1, burst=burst))
    assert bucket.reserve(10.0) == 10.0
    bucket.cancel(10.0)
    assert bucket.granted == 0
    assert bucket.tokens(10.0) == float(burst)
    assert _reserve(bucket, 10.0, burst) == [10.0] * burst


# --- TokenBucket: tokens and has_capacity ----------------------------------------------


def test_fresh_bucket_is_full() -> None:
    """A new bucket holds ``burst`` tokens and has capacity at any reading."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    assert bucket.granted == 0
    assert bucket.limit == RateLimit(4, burst=3)
    for now in (-1e9, 0.0, 123.5):
        assert bucket.tokens(now) == 3.0
        assert bucket.has_capacity(now)


def test_tokens_drain_and_refill_exactly() -> None:
    """tokens() counts what could go now, including fractions, from 0 up to ``burst``."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    assert [bucket.tokens(0.0)] + [bucket.tokens(0.0) for _ in _reserve(bucket, 0.0, 1)] == [
        3.0,
        2.0,
    ]
    _reserve(bucket, 0.0, 2)
    readings = [0.0, 0.125, 0.25, 0.5, 0.625, 0.75, 10.0]
    assert [bucket.tokens(t) for t in readings] == [0.0, 0.5, 1.0, 2.0, 2.5, 3.0, 3.0]


def test_tokens_never_go_negative() -> None:
    """With requests waiting the bucket reads 0 tokens, not a negative number."""
    bucket = TokenBucket(RateLimit(4, burst=2))
    _reserve(bucket, 0.0, 10)
    assert bucket.tokens(0.0) == 0.0
    assert bucket.tokens(1.875) == 0.0
    assert bucket.tokens(2.125) == 0.5


def test_has_capacity_tracks_the_next_slot() -> None:
    """has_capacity is False until the next slot's time, then True."""
    bucket = TokenBucket(RateLimit(4, burst=3))
    _reserve(bucket, 0.0, 3)
    assert [bucket.has_capacity(t) for t in (0.0, 0.125, 0.2499, 0.25, 1.0)] == [
        False,
        False,
        False,
        True,
        True,
    ]


@pytest.mark.parametrize("limit", LIMITS, ids=repr)
def test_has_capacity_predicts_whether_reserve_waits(limit: RateLimit) -> None:
    """has_capacity(now) is True exactly when reserve(now) would return ``now``."""
    rng = random.Random(11)
    bucket = TokenBucket(limit)
    interval = 1.0 / limit.per_second
    now = 0.0
    for _ in range(400):
        now += rng.choice([0.0, interval / 3, interval, 2 * interval])
        predicted = bucket.has_capacity(now)
        assert predicted == (bucket.tokens(now) >= 1.0 - 1e-9)
        assert (bucket.reserve(now) == now) is predicted


# --- Limiter in virtual time -----------------------------------------------------------


def _limiter(limit: RateLimit) -> Limiter:
    return Limiter(limit, AnyioClock())


@pytest.mark.anyio
async def test_limiter_runs_its_token_bucket() -> None:
    """A Limiter's arithmetic is its TokenBucket's: grants, tokens and retunes are the
    bucket's own figures."""
    limiter = _limiter(RateLimit(4, burst=2))
    bucket = limiter.bucket
    assert isinstance(bucket, TokenBucket)
    assert bucket.limit is limiter.limit
    for _ in range(3):
        await limiter.acquire()
    assert anyio.current_time() == 0.25
    assert bucket.granted == limiter.granted == 3
    assert bucket.tokens(0.25) == limiter.tokens() == 0.0
    limiter.retune(2.0)
    assert bucket.per_second == limiter.per_second == 2.0
    assert bucket.wait_time(0.25) == 0.5
    await limiter.acquire()
    assert anyio.current_time() == 0.75


@pytest.mark.anyio
@pytest.mark.timeout(20)  # a regression spins at one virtual instant: end the run sooner
async def test_limiter_reaches_slots_between_clock_steps() -> None:
    """At 9/s the slots (1/9 s apart) fall between looptime's 1 ns steps; each is reached
    on time, and the times do not drift.

    asyncio runs a timer up to its clock's resolution (1 ns) early, so a sleep to a slot
    ended with the clock on the step before it: the token was short by up to 9e-9, more
    than the bucket's slack, and the limiter slept again for less than a nanosecond at
    that instant, for ever.
    """
    limiter = _limiter(RateLimit(9))
    times = []
    for _ in range(10):
        assert await limiter.acquire() is True
        times.append(anyio.current_time())
    assert times == pytest.approx([k / 9 for k in range(10)], abs=1e-9)
    assert limiter.granted == 10


@pytest.mark.anyio
async def test_limiter_grants_burst_then_spaced_in_fifo_order() -> None:
    """N concurrent acquirers get exact grant times, in the order they asked."""
    limiter = _limiter(RateLimit(4, burst=2))
    asked: list[int] = []
    granted: list[tuple[int, float]] = []

    async def worker(i: int) -> None:
        asked.append(i)  # acquire() reserves before its first checkpoint
        assert await limiter.acquire() is True
        granted.append((i, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        for i in range(8):
            tg.start_soon(worker, i)
    assert [i for i, _ in granted] == asked
    assert [t for _, t in granted] == [0.0, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5]
    assert limiter.granted == 8
    assert limiter.waiting == 0


@pytest.mark.anyio
async def test_limiter_late_arrival_waits_behind_earlier_waiters() -> None:
    """A request made while others wait is granted after all of them."""
    limiter = _limiter(RateLimit(2))
    times: dict[str, float] = {}

    async def worker(name: str, start: float) -> None:
        await anyio.sleep_until(start)
        await limiter.acquire()
        times[name] = anyio.current_time()

    async with anyio.create_task_group() as tg:
        tg.start_soon(worker, "a", 0.0)
        tg.start_soon(worker, "b", 0.0)
        tg.start_soon(worker, "c", 0.0)
        tg.start_soon(worker, "late", 0.25)
    assert sorted(times.values()) == [0.0, 0.5, 1.0, 1.5]
    assert times["late"] == 1.5


@pytest.mark.anyio
async def test_limiter_sequential_acquires() -> None:
    """One task acquiring in a loop is paced at 1/rate after the burst."""
    limiter = _limiter(RateLimit(8, burst=3))
    times = []
    for _ in range(6):
        await limiter.acquire()
        times.append(anyio.current_time())
    assert times == [0.0, 0.0, 0.0, 0.125, 0.25, 0.375]


@pytest.mark.anyio
async def test_limiter_has_capacity_and_properties() -> None:
    """has_capacity, limit and granted reflect the bucket's live state."""
    limit = RateLimit(4, burst=2)
    limiter = _limiter(limit)
    assert limiter.limit is limit
    assert limiter.has_capacity()
    await limiter.acquire()
    assert limiter.has_capacity()
    await limiter.acquire()
    assert not limiter.has_capacity()
    assert limiter.granted == 2
    await anyio.sleep(0.25)
    assert limiter.has_capacity()


@pytest.mark.anyio
async def test_limiter_as_async_context_manager() -> None:
    """``async with limiter`` waits for a slot like acquire() does."""
    limiter = _limiter(RateLimit(4))
    times = []
    for _ in range(3):
        async with limiter:
            times.append(anyio.current_time())
    assert times == [0.0, 0.25, 0.5]
    assert limiter.granted == 3


@pytest.mark.anyio
async def test_limiter_context_manager_does_not_swallow_errors() -> None:
    """An exception raised inside ``async with limiter`` propagates."""
    limiter = _limiter(RateLimit(4))
    with pytest.raises(KeyError, match="boom"):
        async with limiter:
            raise KeyError("boom")


@pytest.mark.anyio
async def test_limiter_give_back_returns_the_token_acquire_granted() -> None:
    """A token given back is there for the next acquire(), at once."""
    limiter = _limiter(RateLimit(2))
    assert await limiter.acquire() is True
    assert (limiter.tokens(), limiter.granted) == (0.0, 1)
    limiter.give_back()
    assert (limiter.tokens(), limiter.granted) == (1.0, 0)
    assert await limiter.acquire() is True
    assert anyio.current_time() == 0.0
    await anyio.sleep_until(0.25)
    limiter.give_back()  # counted at the clock's reading: 0.5 accrued, plus the token
    assert (limiter.tokens(), limiter.granted) == (1.0, 0)
    assert await limiter.acquire() is True
    assert await limiter.acquire() is True
    assert anyio.current_time() == 0.75


@pytest.mark.anyio
async def test_acquire_deadline_before_slot_returns_false_and_gives_slot_back() -> None:
    """A slot after the deadline: acquire sleeps to the deadline, returns False, frees the slot."""
    limiter = _limiter(RateLimit(2))
    assert await limiter.acquire() is True
    assert await limiter.acquire(deadline=0.25) is False
    assert anyio.current_time() == 0.25
    assert limiter.granted == 1
    assert await limiter.acquire() is True
    assert anyio.current_time() == 0.5  # not 1.0: the refused slot was given back
    assert limiter.granted == 2


@pytest.mark.anyio
async def test_acquire_deadline_equal_to_slot_returns_false() -> None:
    """A slot at exactly the deadline counts as too late."""
    limiter = _limiter(RateLimit(2))
    await limiter.acquire()
    assert await limiter.acquire(deadline=0.5) is False
    assert anyio.current_time() == 0.5
    assert await limiter.acquire() is True
    assert anyio.current_time() == 0.5


@pytest.mark.anyio
async def test_acquire_deadline_after_slot_returns_true_at_the_slot() -> None:
    """A deadline after the slot does not shorten the wait: True at the slot's time."""
    limiter = _limiter(RateLimit(2))
    await limiter.acquire()
    assert await limiter.acquire(deadline=0.75) is True
    assert anyio.current_time() == 0.5


@pytest.mark.anyio
async def test_acquire_past_deadline_returns_false_at_once() -> None:
    """A deadline already passed, with no capacity, returns False without waiting."""
    limiter = _limiter(RateLimit(2))
    await anyio.sleep(1.0)
    await limiter.acquire()
    assert await limiter.acquire(deadline=0.5) is False
    assert anyio.current_time() == 1.0
    assert limiter.granted == 1


@pytest.mark.anyio
async def test_acquire_refused_waiter_counts_as_waiting_until_its_deadline() -> None:
    """A refused acquire is counted in ``waiting`` while it sleeps to its deadline."""
    limiter = _limiter(RateLimit(1))
    await limiter.acquire()
    seen: list[int] = []

    async def refused() -> None:
        assert await limiter.acquire(deadline=0.5) is False

    async with anyio.create_task_group() as tg:
        tg.start_soon(refused)
        await anyio.sleep(0.25)
        seen.append(limiter.waiting)
    seen.append(limiter.waiting)
    assert seen == [1, 0]
    assert anyio.current_time() == 0.5


async def _cancellable_waiter(
    limiter: Limiter,
    name: str,
    log: dict[str, float],
    *,
    task_status: anyio.abc.TaskStatus[anyio.CancelScope],
) -> None:
    with anyio.CancelScope() as scope:
        task_status.started(scope)
        await limiter.acquire()  # reserves before the parent resumes
        log[name] = anyio.current_time()


@pytest.mark.anyio
async def test_cancelled_latest_waiter_gives_its_slot_back() -> None:
    """Cancelling the last waiter returns its slot to the next request."""
    limiter = _limiter(RateLimit(1))
    await limiter.acquire()
    log: dict[str, float] = {}
    async with anyio.create_task_group() as tg:
        b = await tg.start(_cancellable_waiter, limiter, "b", log)
        assert limiter.waiting == 1
        await anyio.sleep(0.5)
        b.cancel()
        await anyio.sleep(0.125)  # let the cancelled waiter unwind
        assert limiter.waiting == 0
        assert limiter.granted == 1
        await limiter.acquire()
        log["c"] = anyio.current_time()
    assert log == {"c": 1.0}
    assert limiter.granted == 2


@pytest.mark.anyio
async def test_cancelled_earlier_waiter_lets_later_waiters_move_up() -> None:
    """Cancelling a waiter ahead in the queue moves every later waiter up one place."""
    limiter = _limiter(RateLimit(1))
    await limiter.acquire()
    log: dict[str, float] = {}
    async with anyio.create_task_group() as tg:
        b = await tg.start(_cancellable_waiter, limiter, "b", log)
        await tg.start(_cancellable_waiter, limiter, "c", log)
        assert limiter.waiting == 2
        await anyio.sleep(0.5)
        b.cancel()
        await limiter.acquire()
        log["d"] = anyio.current_time()
    assert log == {"c": 1.0, "d": 2.0}
    assert limiter.granted == 3


@pytest.mark.anyio
async def test_cancelled_waiters_from_the_back_all_give_slots_back() -> None:
    """Cancelling waiters newest first returns every one of their slots."""
    limiter = _limiter(RateLimit(4, burst=2))
    await limiter.acquire()
    await limiter.acquire()
    log: dict[str, float] = {}
    async with anyio.create_task_group() as tg:
        scopes = [await tg.start(_cancellable_waiter, limiter, str(i), log) for i in range(3)]
        assert limiter.waiting == 3
        for scope in reversed(scopes):
            scope.cancel()
            await anyio.sleep(0.0625)  # let the cancelled waiter unwind
        assert limiter.waiting == 0
        await limiter.acquire()
        log["next"] = anyio.current_time()
    assert log == {"next": 0.25}
    assert limiter.granted == 3


@pytest.mark.anyio
async def test_limiter_window_bound_in_virtual_time() -> None:
    """Staggered concurrent acquirers never exceed burst + rate * t in any window."""
    limit = RateLimit(8, burst=3)
    limiter = _limiter(limit)
    rng = random.Random(3)
    starts = sorted(rng.randrange(0, 256) / 64 for _ in range(80))  # exact binary times
    grants: list[float] = []

    async def worker(start: float) -> None:
        await anyio.sleep_until(start)
        await limiter.acquire()
        grants.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        for start in starts:
            tg.start_soon(worker, start)
    assert len(grants) == 80
    assert grants == sorted(grants)
    assert _tightest_window_by_brute_force(grants, limit.burst, 8.0) == 0.0
    # Demand outruns supply: 3 at once, then 8 a second, so the 80th goes 77/8 s after the first.
    assert grants[0] == starts[0]
    assert grants[-1] == starts[0] + 77 / 8


class LateTimers:
    """A virtual clock whose timers fire ``late`` seconds after the time asked for (an
    event loop waiting on epoll, which rounds up to whole milliseconds), and whose
    reading moves ``step`` seconds each time it is read (real time passing while the
    loop runs)."""

    def __init__(self, late: float, step: float) -> None:
        self.late, self.step, self.drift = late, step, 0.0

    def now(self) -> float:
        self.drift += self.step
        return anyio.current_time() + self.drift

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep_until(deadline - self.drift + self.late)


class GrantLog(TokenBucket):
    """A token bucket that records the time of every grant."""

    __slots__ = ("times",)

    def __init__(self, limit: RateLimit) -> None:
        super().__init__(limit)
        self.times: list[float] = []

    def try_take(self, now: float) -> bool:
        taken = super().try_take(now)
        self.times += [now] * taken
        return taken

    def take_up_to(self, now: float, most: int) -> int:
        count = super().take_up_to(now, most)
        self.times += [now] * count
        return count


async def _grants_in_one_second(limit: RateLimit, clock: LateTimers) -> list[float]:
    """Ten tasks acquire from a limiter on ``clock`` for one second of its time."""
    bucket = GrantLog(limit)
    limiter = Limiter(limit, clock, bucket=bucket)
    stop = clock.now() + 1.0

    async def worker() -> None:
        for _ in range(int(limit.per_second) + limit.burst + 1):
            if clock.now() >= stop:
                return
            await limiter.acquire()

    async with anyio.create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(worker)
    return [t for t in bucket.times if t < stop]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rate", "burst", "late", "lands"),
    [
        (500, 1, 0.0008, True),
        (500, 1, 0.0008, False),
        (1000, 2, 0.0012, True),
        (1000, 2, 0.0012, False),
    ],
)
async def test_limiter_on_late_timers_keeps_its_rate(
    rate: int, burst: int, late: float, lands: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Timers that fire late cost every wake-up the tokens that overflow the bucket
    meanwhile: at burst 1 all of the lateness, at burst 2 what passes a full bucket.
    The limiter lands on the token by yielding to the loop for the last GRAIN of the
    wait, and keeps the rate; without landing (GRAIN 0) a part of it is lost. Every
    window stays within the bound either way."""
    if not lands:
        monkeypatch.setattr(asyncpoll._limiter, "GRAIN", 0.0)
    limit = RateLimit(rate, burst=burst)
    times = await _grants_in_one_second(limit, LateTimers(late=late, step=1e-5))
    assert _tightest_window_by_brute_force(times, burst, float(rate)) >= 0.0
    # The most the bound allows in the second is burst + rate.
    if lands:
        assert 0.99 * rate <= len(times) <= burst + rate
    else:
        assert len(times) <= 0.9 * rate


def test_limiter_refuses_a_bucket_of_another_limit() -> None:
    """Limiter(bucket=) runs the bucket given, which must be of the limiter's own limit."""
    limit = RateLimit(5, burst=2)
    bucket = GrantLog(limit)
    assert Limiter(limit, AnyioClock(), bucket=bucket).bucket is bucket
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Limiter(bucket=) must run the limiter's own limit RateLimit(rate=5, per=1.0, "
            "burst=2), got a bucket of RateLimit(rate=6, per=1.0, burst=2)"
        ),
    ):
        Limiter(limit, AnyioClock(), bucket=TokenBucket(RateLimit(6, burst=2)))


@pytest.mark.anyio
async def test_limiter_on_a_clock_that_stands_still_never_spins() -> None:
    """Late timers on a clock that does not move while the loop yields (a virtual clock
    with a coarse timer): the limiter yields for a few real milliseconds once, then
    sleeps to its tokens from then on, and still grants every request in order."""
    limit = RateLimit(500)
    grants = await _grants_in_one_second(limit, LateTimers(late=0.0008, step=0.0))
    assert _tightest_window_by_brute_force(grants, 1, 500.0) >= 0.0
    # As many as sleeping to every token gives: 1 + 1 s / (2 ms + 0.8 ms late).
    assert len(grants) == 1 + int(1.0 / 0.0028)


@pytest.mark.anyio
async def test_limiter_repr_shows_live_state() -> None:
    """The repr shows the limit, tokens left, waiters and grants as they change."""
    limiter = _limiter(RateLimit(4, burst=2))
    assert repr(limiter) == "<Limiter 4/1s burst=2 tokens=2.00 waiting=0 granted=0>"
    await limiter.acquire()
    assert repr(limiter) == "<Limiter 4/1s burst=2 tokens=1.00 waiting=0 granted=1>"
    shown: list[str] = []
    async with anyio.create_task_group() as tg:
        for _ in range(4):
            tg.start_soon(limiter.acquire)
        await anyio.sleep(0.0625)
        shown.append(repr(limiter))
        await anyio.sleep(0.5)
        shown.append(repr(limiter))
    assert shown == [
        "<Limiter 4/1s burst=2 tokens=0.25 waiting=3 granted=2>",
        "<Limiter 4/1s burst=2 tokens=0.25 waiting=1 granted=4>",
    ]
    assert anyio.current_time() == 0.75
    assert repr(limiter) == "<Limiter 4/1s burst=2 tokens=0.00 waiting=0 granted=5>"
    await anyio.sleep(0.125)
    assert repr(limiter) == "<Limiter 4/1s burst=2 tokens=0.50 waiting=0 granted=5>"
    await anyio.sleep(10)
    assert repr(limiter) == "<Limiter 4/1s burst=2 tokens=2.00 waiting=0 granted=5>"


@pytest.mark.anyio
async def test_limiter_repr_with_period_and_fractional_rate() -> None:
    """The repr prints rate and period compactly (%g)."""
    assert repr(_limiter(RateLimit(60, per=60.0, burst=5))) == (
        "<Limiter 60/60s burst=5 tokens=5.00 waiting=0 granted=0>"
    )
    assert repr(_limiter(RateLimit(0.5))) == (
        "<Limiter 0.5/1s burst=1 tokens=1.00 waiting=0 granted=0>"
    )


def test_rate_limit_names_are_exported() -> None:
    """The package re-exports RateLimit, TokenBucket and Limiter."""
    from asyncpoll import _limiter, _ratelimit

    assert asyncpoll.RateLimit is _ratelimit.RateLimit
    assert asyncpoll.TokenBucket is _ratelimit.TokenBucket
    assert asyncpoll.Limiter is _limiter.Limiter


# --- Limiter: hand-offs between waiters ----------------------------------------------------


@pytest.mark.anyio
async def test_one_wake_up_grants_a_batch_and_wakes_every_granted_waiter() -> None:
    """The head's one wake-up grants every token that accrued to the waiters in order, and
    every waiter it granted goes at that very moment: none is left asleep.

    At 4000/s with burst 8 the drained bucket's head sleeps one tick (1 ms, half the time
    to fill the bucket); four tokens accrue meanwhile, so the first four in the queue all
    go at 1 ms, and the fifth, the new head, sleeps another tick and goes at 2 ms.
    """
    limiter = _limiter(RateLimit(4000, burst=8))
    assert limiter.bucket.take_up_to(0.0, 8) == 8  # drained at t=0
    asked: list[int] = []
    granted: dict[int, float] = {}

    async def waiter(i: int) -> None:
        asked.append(i)  # acquire() queues up before its first checkpoint
        assert await limiter.acquire() is True
        granted[i] = anyio.current_time()

    with anyio.fail_after(1.0):  # virtual seconds: a waiter left asleep fails, never hangs
        async with anyio.create_task_group() as tg:
            for i in range(5):
                tg.start_soon(waiter, i)
            await anyio.sleep(0.0005)
            assert limiter.waiting == 5
    # Waiters woken at one instant may resume in any order (trio shuffles them), so the
    # times are checked in the order the waiters queued up.
    assert [granted[i] for i in asked] == [0.001, 0.001, 0.001, 0.001, 0.002]
    assert limiter.granted == 13
    assert limiter.waiting == 0


@pytest.mark.anyio
async def test_cancelled_head_waiter_hands_the_timer_to_the_next() -> None:
    """Cancelling the waiter at the head (the only one asleep on the timer) makes the next
    one the head: it takes over the timer and goes when the token accrues, and the one
    behind it a token later."""
    limiter = _limiter(RateLimit(1))
    assert await limiter.acquire() is True  # t=0: the bucket is empty until t=1
    log: dict[str, float] = {}
    with anyio.fail_after(10.0):  # virtual seconds: a broken hand-off fails, never hangs
        async with anyio.create_task_group() as tg:
            head = await tg.start(_cancellable_waiter, limiter, "head", log)
            await tg.start(_cancellable_waiter, limiter, "next", log)
            await tg.start(_cancellable_waiter, limiter, "last", log)
            assert limiter.waiting == 3
            await anyio.sleep(0.5)
            head.cancel()
    assert log == {"next": 1.0, "last": 2.0}
    assert anyio.current_time() == 2.0
    assert limiter.granted == 3
    assert limiter.waiting == 0


# --- exact edges: EPSILON, cancel's tolerance, retune, a head that gives up -------------

#: One second less EPSILON (1e-9): a token short by no more than float error.
ALMOST = 1.0 - 1e-9


def test_a_token_short_by_epsilon_is_there() -> None:
    """A level of 1 - EPSILON counts as a whole token: it goes at once, not in debt."""
    bucket = TokenBucket(RateLimit(1))
    assert bucket.try_take(0.0)
    assert bucket.has_capacity(ALMOST)
    assert bucket.reserve(ALMOST) == ALMOST


def test_a_token_short_by_epsilon_is_taken() -> None:
    """try_take() and take_up_to() take a token at a level of 1 - EPSILON."""
    taking = TokenBucket(RateLimit(1))
    assert taking.try_take(0.0)
    assert taking.try_take(ALMOST)
    batch = TokenBucket(RateLimit(1))
    assert batch.try_take(0.0)
    assert batch.take_up_to(ALMOST, 3) == 1


def test_wait_time_at_the_edges_of_epsilon() -> None:
    """A token short by EPSILON needs no wait; up to burst + EPSILON tokens are a finite
    wait, past it never."""
    bucket = TokenBucket(RateLimit(1))
    assert bucket.try_take(0.0)
    assert bucket.wait_time(0.0, 1.0 + 1e-9) == 1.0 + 1e-9
    assert bucket.wait_time(0.0, 1.0 + 2e-9) == math.inf
    assert bucket.wait_time(ALMOST) == 0.0


def test_cancel_gives_back_only_the_latest_slot_late_on_the_clock() -> None:
    """At t = 10**7 a slot 1 ms before the latest is not the latest (no relative slack)."""
    bucket = TokenBucket(RateLimit(1000))
    now = 1e7
    assert bucket.try_take(now)
    first, second, third = (bucket.reserve(now) for _ in range(3))
    bucket.cancel(third)
    assert bucket.granted == 3
    bucket.cancel(first)
    assert bucket.granted == 3
    bucket.cancel(second)
    assert bucket.granted == 2


def test_cancel_finds_the_latest_slot_through_float_error() -> None:
    """Reservations made at uneven times: the slot before a given-back one is still found
    although the count's arithmetic gives it back a few ulps off."""
    bucket = TokenBucket(RateLimit(3))
    assert bucket.try_take(0.0)
    first = bucket.reserve(0.1)
    second = bucket.reserve(0.3)
    bucket.cancel(second)
    bucket.cancel(first)
    assert bucket.granted == 1


def test_limiter_retune_keeps_the_tokens_accrued_at_the_old_rate() -> None:
    clock = _ManualClock()
    limiter = Limiter(RateLimit(1, burst=5), clock)
    for _ in range(5):
        assert limiter.bucket.try_take(0.0)
    clock.t = 2.0
    limiter.retune(10.0)
    assert limiter.tokens() == 2.0
    clock.t = 2.1
    assert limiter.tokens() == pytest.approx(3.0)


class _ManualClock:
    """A clock a test sets by hand (never slept on)."""

    t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        raise AssertionError("not for sleeping")


@pytest.mark.anyio
async def test_a_head_that_gives_up_hands_the_head_to_the_next() -> None:
    """The head waiter's deadline comes first: it returns False, the next one goes."""
    limiter = Limiter(RateLimit(1), AnyioClock())
    assert await limiter.acquire()
    results: dict[str, tuple[bool, float]] = {}

    async def take(name: str, deadline: float) -> None:
        granted = await limiter.acquire(deadline)
        results[name] = (granted, anyio.current_time())

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(take, "head", 0.5)
        await anyio.lowlevel.checkpoint()
        tasks.start_soon(take, "next", math.inf)
    assert results == {"head": (False, 0.5), "next": (True, 1.0)}
