"""Properties of the pure parts, checked by hypothesis over many generated inputs.

Derandomized (the same examples every run: no flaky CI), bounded example counts. The
parts: the token bucket (the window bound, no starvation), the schedules (bounds, growth,
jitter, huge attempt numbers), ``Retry-After`` and hint parsing (never negative, NaN or
infinite), and the job codec (a round trip keeps a job; any JSON at all is either read or
refused with ``TokenError``/``LookupError``, never another exception: resume tokens come
from untrusted places).
"""

from __future__ import annotations

import contextlib
import json
import math
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from asyncpoll import RateLimit, TokenBucket, TokenError, backoff, fixed
from asyncpoll._codec import decode, encode
from asyncpoll._policy import header_hint
from asyncpoll._reader import parse_retry_after
from asyncpoll._record import JobRecord
from asyncpoll._status import JobState, Status

SETTINGS = settings(
    derandomize=True,
    database=None,
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

rates = st.floats(min_value=0.5, max_value=2000.0)
bursts = st.integers(min_value=1, max_value=20)
# Gaps between the caller's attempts: often none (a burst of attempts), sometimes long.
gaps = st.lists(
    st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=0.05)), min_size=1, max_size=400
)


@SETTINGS
@given(rate=rates, burst=bursts, steps=gaps)
def test_the_bucket_never_grants_more_than_burst_plus_rate_times_t(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(RateLimit(rate, burst=burst))
    now, grants = 0.0, []
    for gap in steps:
        now += gap
        if bucket.try_take(now):
            grants.append(now)
    for i, start in enumerate(grants):
        for j in range(i, len(grants)):
            assert j - i + 1 <= burst + rate * (grants[j] - start) + 1e-6


@SETTINGS
@given(rate=rates, burst=bursts, steps=gaps)
def test_waiting_the_bucket_s_wait_time_always_gets_a_token(
    rate: float, burst: int, steps: list[float]
) -> None:
    bucket = TokenBucket(RateLimit(rate, burst=burst))
    now = 0.0
    for gap in steps:
        now += gap
        if not bucket.try_take(now):
            wait = bucket.wait_time(now)
            assert 0.0 < wait <= 1.0 / rate + 1e-9
            now += wait
            assert bucket.try_take(now), (now, wait)


@SETTINGS
@given(
    initial=st.floats(min_value=0.0, max_value=100.0),
    factor=st.floats(min_value=1.0, max_value=10.0),
    extra=st.floats(min_value=0.0, max_value=1000.0),
    jitter=st.floats(min_value=0.0, max_value=1.0),
    n=st.integers(min_value=0, max_value=10**12),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_delays_stay_within_their_bounds_for_any_attempt(
    initial: float, factor: float, extra: float, jitter: float, n: int, seed: int
) -> None:
    schedule = backoff(initial, factor, initial + extra, jitter)
    delay = schedule.delay(n, random.Random(seed))
    assert math.isfinite(delay) and 0.0 <= delay <= initial + extra
    if n == 0:
        assert delay == 0.0
    plain = backoff(initial, factor, initial + extra, 0.0)
    base = plain.delay(n, random.Random(seed))
    if n > 0:
        assert (
            base * (1 - jitter) - 1e-9 <= delay <= min(base * (1 + jitter), initial + extra) + 1e-9
        )
        assert plain.delay(n + 1, random.Random(0)) >= base  # monotone up to the cap


@SETTINGS
@given(interval=st.floats(min_value=0.0, max_value=1e6), n=st.integers(0, 10**12))
def test_fixed_delays_are_the_interval(interval: float, n: int) -> None:
    assert fixed(interval).delay(n, random.Random(0)) == (0.0 if n == 0 else interval)


header_text = st.one_of(
    st.text(max_size=40),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(
        ["Wed, 21 Oct 2015 07:28:00 GMT", "Sun, 06 Nov 1994 08:49:37 GMT", "-0", "1e400", " 5 "]
    ),
)


@SETTINGS
@given(value=st.one_of(st.none(), header_text), date=st.one_of(st.none(), header_text))
def test_retry_after_is_none_or_finite_and_not_negative(
    value: str | None, date: str | None
) -> None:
    seconds = parse_retry_after(value, now=1_445_412_000.0, date=date)
    assert seconds is None or (math.isfinite(seconds) and seconds >= 0.0)


@SETTINGS
@given(seconds=st.integers(min_value=0, max_value=10**9))
def test_retry_after_reads_whole_seconds_exactly(seconds: int) -> None:
    assert parse_retry_after(str(seconds), now=0.0) == float(seconds)


@SETTINGS
@given(
    headers=st.dictionaries(
        st.sampled_from(["retry-after", "retry-after-ms", "x-poll-after-ms", "x-wait"]),
        header_text,
    )
)
def test_a_hint_is_none_or_finite_and_not_negative(headers: dict[str, str]) -> None:
    hint = header_hint(headers, ("x-poll-after-ms", "x-wait"), wall_now=1_445_412_000.0)
    assert hint is None or (math.isfinite(hint) and hint >= 0.0)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)


@SETTINGS
@given(
    job_id=st.text(min_size=1, max_size=30),
    attempts=st.integers(min_value=0, max_value=10**9),
    errors=st.integers(min_value=0, max_value=100),
    progress=st.one_of(st.none(), st.floats(min_value=0.0, max_value=1.0)),
    metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), json_values, max_size=4)),
    timeout=st.one_of(st.none(), st.floats(min_value=0.001, max_value=1e6)),
    due=st.floats(min_value=0.0, max_value=1e6),
)
def test_a_job_round_trips_through_its_document(
    job_id: str,
    attempts: int,
    errors: int,
    progress: float | None,
    metadata: dict[str, Any] | None,
    timeout: float | None,
    due: float,
) -> None:
    record = JobRecord(
        job_id,
        "https://api.example.com/jobs/x",
        backoff(1.0, 2.0, 30.0, 0.1),
        timeout,
        None if timeout is None else 10.0 + timeout,
        target="https://api.example.com/jobs/x",
        origin="https://api.example.com/jobs/x",
        attempts=attempts,
        errors=errors,
        state=JobState.RUNNING,
        status=Status(JobState.RUNNING, progress=progress),
        changed_at=5.0,
        added_at=10.0,
    )
    text = json.dumps(encode(record, due=due, offset=1000.0, metadata=metadata))
    back = decode(json.loads(text), offset=1000.0, named={})
    got = back.record
    assert (got.job_id, got.attempts, got.errors, got.timeout) == (
        job_id,
        attempts,
        errors,
        timeout,
    )
    # Times go through wall-clock seconds (+ offset, - offset): equal to the last bits.
    if record.deadline is None:
        assert got.deadline is None
    else:
        assert got.deadline == pytest.approx(record.deadline, rel=1e-12, abs=1e-9)
    assert got.added_at == pytest.approx(10.0)
    assert got.status == record.status and got.schedule == record.schedule
    assert back.due == pytest.approx(due, rel=1e-12, abs=1e-9)
    assert (back.metadata or None) == (metadata or None)  # {} is kept as none, as handles do


@SETTINGS
@given(doc=json_values)
def test_any_json_is_read_or_refused_by_name_never_crashes(doc: Any) -> None:
    with contextlib.suppress(TokenError, LookupError):
        decode(doc, offset=0.0, named={})


@SETTINGS
@given(
    field=st.sampled_from(
        [
            "job_id",
            "url",
            "target",
            "schedule",
            "timeout",
            "deadline",
            "due",
            "action",
            "create",
            "submissions",
            "attempts",
            "state",
            "status",
            "metadata",
            "stalled",
            "cancel_method",
            "check",
            "error",
            "added_at",
        ]
    ),
    value=json_values,
)
def test_a_good_document_with_one_field_replaced_is_read_or_refused_by_name(
    field: str, value: Any
) -> None:
    record = JobRecord(
        "j",
        "https://api.example.com/jobs/j",
        fixed(1.0),
        30.0,
        40.0,
        target="https://api.example.com/jobs/j",
        origin="https://api.example.com/jobs/j",
    )
    doc = encode(record, due=1.0, offset=0.0)
    doc[field] = value
    with contextlib.suppress(TokenError, LookupError):
        decode(doc, offset=0.0, named={})
