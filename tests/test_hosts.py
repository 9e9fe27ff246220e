"""Tests for ``asyncpoll._hosts``: the per-host gate (cool-down, AIMD rate, budgets), and
the engine's feedback into it.

The arithmetic tests drive ``on_throttled``/``on_healthy``/``on_budget`` with clock
readings by hand (a ``ManualClock`` that is never slept on); the ``wait()`` tests run
in virtual time on asyncio and trio with ``AnyioClock``, so every time is exact. Rates
are chosen so that every figure is exact in binary floating point.
"""

from __future__ import annotations

import math
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll
from asyncpoll import AnyioClock, RateLimit
from asyncpoll._hosts import MIN_RATE, RECOVERY, HostGate
from asyncpoll._policy import Pacing
from asyncpoll._send import Sender


class ManualClock:
    """A clock whose reading the test sets; the arithmetic tests never sleep on it."""

    def __init__(self) -> None:
        self.t = 0.0

    def at(self, t: float) -> float:
        """Move the clock to ``t`` and return ``t``."""
        self.t = t
        return t

    def now(self) -> float:
        """The reading the test set."""
        return self.t

    async def sleep_until(self, deadline: float) -> None:
        """Never called: only ``wait()`` sleeps, and these tests do not call it."""
        raise AssertionError("ManualClock is not for sleeping")


def _gate(limit: RateLimit | None) -> tuple[HostGate, ManualClock]:
    clock = ManualClock()
    return HostGate("api.test", limit, clock), clock


async def _wait_times(gate: HostGate, count: int) -> list[float]:
    """Pass the gate ``count`` times in a row; the virtual time of each pass."""
    times = []
    for _ in range(count):
        assert await gate.wait() is True
        times.append(anyio.current_time())
    return times


def test_constants() -> None:
    """The floor is 0.05 requests/s and recovery adds 5 % of the old rate per second."""
    assert (MIN_RATE, RECOVERY) == (0.05, 0.05)


def test_new_gate() -> None:
    """A new gate runs at its configured rate (or unlimited), unpaused."""
    gate, _ = _gate(RateLimit(10))
    assert (gate.host, gate.rate, gate.paused_until, gate.throttled) == (
        "api.test",
        10.0,
        -math.inf,
        0,
    )
    assert repr(gate) == "<HostGate api.test rate=10/s throttled=0>"
    gate, _ = _gate(RateLimit(60, per=60.0))
    assert gate.rate == 1.0
    gate, _ = _gate(None)
    assert (gate.rate, gate.paused_until, gate.throttled) == (None, -math.inf, 0)
    assert repr(gate) == "<HostGate api.test rate=unlimited throttled=0>"


# --- throttling: pause and halve -----------------------------------------------------


def test_429_halves_the_configured_rate_and_pauses() -> None:
    """A 429 pauses the host for the hint and halves its rate: 10/s becomes 5/s."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 2.0)
    assert (gate.rate, gate.paused_until, gate.throttled) == (5.0, 102.0, 1)
    assert repr(gate) == "<HostGate api.test rate=5/s throttled=1>"


def test_several_429s_in_one_cool_down_halve_once() -> None:
    """429s from requests already in flight extend the pause but halve only once."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 2.0)
    gate.on_throttled(clock.at(100.5), 2.0)
    assert (gate.rate, gate.paused_until) == (5.0, 102.5)
    gate.on_throttled(clock.at(101.75), 2.0)
    assert (gate.rate, gate.paused_until, gate.throttled) == (5.0, 103.75, 3)


def test_429_with_a_shorter_hint_in_the_same_cool_down_halves_once() -> None:
    """A 429 arriving during the cool-down with a shorter hint is the same overload."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 3.0)  # paused until 103
    gate.on_throttled(clock.at(102.0), 1.0)  # still in that cool-down: same overload
    assert (gate.rate, gate.paused_until, gate.throttled) == (5.0, 103.0, 2)


def test_429_after_the_cool_down_halves_again() -> None:
    """A 429 once the cool-down is over is a new overload: the rate halves again."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 2.0)
    gate.on_throttled(clock.at(102.0), 2.0)
    assert (gate.rate, gate.paused_until) == (2.5, 104.0)
    gate.on_throttled(clock.at(104.0), 2.0)
    assert (gate.rate, gate.paused_until, gate.throttled) == (1.25, 106.0, 3)


def test_short_pauses_still_halve_at_most_once_a_second() -> None:
    """With hints under a second, 429s within one second of a halving do not halve again."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 0.25)
    gate.on_throttled(clock.at(100.5), 0.25)
    assert (gate.rate, gate.paused_until) == (5.0, 100.75)
    gate.on_throttled(clock.at(101.0), 0.0)
    assert (gate.rate, gate.paused_until) == (2.5, 101.0)


def test_pause_is_never_shortened() -> None:
    """A later, shorter hint or an empty budget never ends a longer pause early."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 10.0)
    gate.on_throttled(clock.at(101.0), 1.0)
    gate.on_budget(clock.at(101.0), 0, 3.0)
    assert gate.paused_until == 110.0


def test_rate_never_drops_below_min_rate() -> None:
    """Halving stops at MIN_RATE."""
    gate, clock = _gate(RateLimit(0.08))
    gate.on_throttled(clock.at(0.0), 1.0)
    assert gate.rate == MIN_RATE
    gate.on_throttled(clock.at(10.0), 1.0)
    assert gate.rate == MIN_RATE
    gate, clock = _gate(RateLimit(0.0625))
    gate.on_throttled(clock.at(0.0), 1.0)
    assert gate.rate == MIN_RATE


def test_unlimited_gate_without_requests_only_pauses() -> None:
    """With fewer than 2 recorded requests an unlimited gate cannot know its rate: it pauses."""
    gate, clock = _gate(None)
    gate.on_throttled(clock.at(0.0), 2.0)
    assert (gate.rate, gate.paused_until, gate.throttled) == (None, 2.0, 1)
    gate.on_throttled(clock.at(5.0), 1.0)
    assert (gate.rate, gate.paused_until, gate.throttled) == (None, 6.0, 2)
    gate.on_healthy(clock.at(10.0))
    assert gate.rate is None


# --- recovery ------------------------------------------------------------------------


def test_recovery_adds_5_percent_of_the_old_rate_per_healthy_second() -> None:
    """After the cool-down each healthy second adds 0.5/s (5 % of 10/s) up to 10/s."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 2.0)
    rates = []
    for t in range(101, 115):
        gate.on_healthy(clock.at(float(t)))
        rates.append(gate.rate)
    assert rates == [
        5.0,  # 101: cooling down
        5.0,  # 102: the cool-down ends; recovery starts from here
        5.5,
        6.0,
        6.5,
        7.0,
        7.5,
        8.0,
        8.5,
        9.0,
        9.5,
        10.0,  # 112: back at the configured limit
        10.0,
        10.0,
    ]
    gate.on_healthy(clock.at(500.0))
    assert gate.rate == 10.0


def test_recovery_counts_fractions_and_gaps_of_seconds() -> None:
    """The increase is proportional to the healthy time since the last increase."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 2.0)
    gate.on_healthy(clock.at(102.5))
    assert gate.rate == 5.25
    gate.on_healthy(clock.at(102.5))
    assert gate.rate == 5.25
    gate.on_healthy(clock.at(104.5))
    assert gate.rate == 6.25
    gate.on_healthy(clock.at(1000.0))
    assert gate.rate == 10.0


def test_recovery_step_is_5_percent_of_the_rate_before_the_last_halving() -> None:
    """After two halvings (10 -> 5 -> 2.5) each healthy second adds 0.25/s."""
    gate, clock = _gate(RateLimit(10))
    gate.on_throttled(clock.at(100.0), 1.0)
    gate.on_throttled(clock.at(101.0), 1.0)
    assert (gate.rate, gate.paused_until) == (2.5, 102.0)
    gate.on_healthy(clock.at(106.0))
    assert gate.rate == 3.5
    gate.on_healthy(clock.at(107.0))
    assert gate.rate == 3.75


def test_healthy_answers_never_raise_the_rate_above_the_limit() -> None:
    """A gate that was never throttled stays at its configured rate."""
    gate, clock = _gate(RateLimit(10))
    for t in (0.0, 1.0, 100.0, 1e6):
        gate.on_healthy(clock.at(t))
        assert gate.rate == 10.0


# --- wait() in virtual time ----------------------------------------------------------


@pytest.mark.anyio
async def test_wait_sleeps_until_the_pause_ends() -> None:
    """wait() returns True at paused_until, exactly; later passes do not wait."""
    gate = HostGate("api.test", None, AnyioClock())
    gate.on_throttled(anyio.current_time(), 2.5)
    assert gate.paused_until == 2.5
    assert await _wait_times(gate, 3) == [2.5, 2.5, 2.5]


@pytest.mark.anyio
@pytest.mark.parametrize("deadline", [1.0, 2.5])
async def test_wait_gives_up_at_the_deadline(deadline: float) -> None:
    """When the pause lasts until the deadline or later, wait() returns False at the deadline."""
    gate = HostGate("api.test", None, AnyioClock())
    gate.on_throttled(0.0, 2.5)
    assert await gate.wait(deadline) is False
    assert anyio.current_time() == deadline


@pytest.mark.anyio
async def test_wait_passes_when_the_pause_ends_before_the_deadline() -> None:
    """A pause ending before the deadline is waited out."""
    gate = HostGate("api.test", None, AnyioClock())
    gate.on_throttled(0.0, 2.5)
    assert await gate.wait(2.75) is True
    assert anyio.current_time() == 2.5


@pytest.mark.anyio
async def test_wait_takes_a_slot_of_the_configured_rate() -> None:
    """A configured gate spaces passes at its rate; a slot past the deadline is given back."""
    gate = HostGate("api.test", RateLimit(2), AnyioClock())
    assert await gate.wait() is True
    assert anyio.current_time() == 0.0
    assert await gate.wait(0.25) is False
    assert anyio.current_time() == 0.25
    assert await _wait_times(gate, 2) == [0.5, 1.0]


@pytest.mark.anyio
async def test_halved_rate_spaces_the_passes() -> None:
    """After a 429 a RateLimit(8) gate waits out the pause, then passes at 4/s."""
    gate = HostGate("api.test", RateLimit(8), AnyioClock())
    assert await _wait_times(gate, 2) == [0.0, 0.125]
    gate.on_throttled(anyio.current_time(), 1.0)
    assert (gate.rate, gate.paused_until) == (4.0, 1.125)
    assert await _wait_times(gate, 4) == [1.125, 1.375, 1.625, 1.875]


@pytest.mark.anyio
async def test_recovered_rate_spaces_the_passes() -> None:
    """Once recovered to the limit, a RateLimit(8) gate passes at 8/s again."""
    gate = HostGate("api.test", RateLimit(8), AnyioClock())
    gate.on_throttled(0.0, 1.0)
    await anyio.sleep_until(100.0)
    gate.on_healthy(100.0)
    assert gate.rate == 8.0
    assert await _wait_times(gate, 3) == [100.0, 100.125, 100.25]


@pytest.mark.anyio
async def test_unlimited_gate_with_one_request_only_pauses() -> None:
    """One recorded request is too few to estimate a rate: the gate pauses and stays unlimited."""
    gate = HostGate("api.test", None, AnyioClock())
    assert await _wait_times(gate, 1) == [0.0]
    gate.on_throttled(0.0, 1.0)
    assert gate.rate is None
    assert await _wait_times(gate, 3) == [1.0, 1.0, 1.0]


@pytest.mark.anyio
async def test_unlimited_gate_with_requests_at_one_instant_only_pauses() -> None:
    """Requests all at one instant give no rate either: the gate only pauses."""
    gate = HostGate("api.test", None, AnyioClock())
    assert await _wait_times(gate, 3) == [0.0, 0.0, 0.0]
    gate.on_throttled(0.0, 1.0)
    assert (gate.rate, gate.paused_until) == (None, 1.0)


@pytest.mark.anyio
async def test_unlimited_gate_estimates_its_rate_and_halves_it() -> None:
    """Passes 0.25 s apart (4/s) make a 429 set the rate to 2/s, which then recovers."""
    gate = HostGate("api.test", None, AnyioClock())
    times = []
    for k in range(5):
        await anyio.sleep_until(k * 0.25)
        times.extend(await _wait_times(gate, 1))
    assert times == [0.0, 0.25, 0.5, 0.75, 1.0]
    gate.on_throttled(1.0, 1.0)
    assert (gate.rate, gate.paused_until) == (2.0, 2.0)
    assert await _wait_times(gate, 3) == [2.0, 2.5, 3.0]
    await anyio.sleep_until(7.0)
    gate.on_healthy(7.0)
    assert gate.rate == 3.0  # 2/s + 5 s x 0.2/s (5 % of the estimated 4/s)
    gate.on_healthy(102.0)
    assert gate.rate == 22.0  # no configured limit: it keeps climbing until the next 429


@pytest.mark.anyio
async def test_unlimited_gate_estimate_never_drops_below_min_rate() -> None:
    """A slow host's estimated rate, halved, is floored at MIN_RATE (one pass every 20 s)."""
    gate = HostGate("api.test", None, AnyioClock())
    assert await _wait_times(gate, 1) == [0.0]
    await anyio.sleep_until(64.0)
    assert await _wait_times(gate, 1) == [64.0]
    gate.on_throttled(64.0, 1.0)
    assert gate.rate == MIN_RATE
    assert await _wait_times(gate, 2) == [65.0, 85.0]


@pytest.mark.anyio
async def test_pause_extended_while_waiting_is_honoured() -> None:
    """A waiter released by one pause keeps waiting when a later 429 extends the pause."""
    gate = HostGate("api.test", None, AnyioClock())
    gate.on_throttled(0.0, 2.0)
    passed: list[float] = []

    async def waiter() -> None:
        passed.extend(await _wait_times(gate, 1))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep_until(1.0)
        gate.on_throttled(1.0, 5.0)  # a request sent before the pause comes back throttled
        assert gate.paused_until == 6.0
    assert passed == [6.0]


# A regression of these spins at one virtual instant, where no virtual bound can end it:
# pytest-timeout's watchdog ends the run instead, sooner than the default 60 s.
@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_a_pause_ending_between_clock_steps_is_waited_out() -> None:
    """A pause until 0.4 + 0.2 = 0.6000000000000001 ends, at 0.6 to the nanosecond.

    asyncio runs a timer up to its clock's resolution (1 ns) early, and looptime's clock,
    on a grid of 1 ns steps, reads 0.6 when the sleep ends: a gate that compared the
    clock with the pause again slept for 1e-16 s at 0.6, for ever.
    """
    gate = HostGate("api.test", None, AnyioClock())
    await anyio.sleep_until(0.4)
    gate.on_budget(0.4, 0, 0.2)
    assert gate.paused_until == 0.4 + 0.2 > 0.6
    assert await _wait_times(gate, 2) == [pytest.approx(0.6, abs=1e-9)] * 2


@pytest.mark.anyio
@pytest.mark.timeout(20)
async def test_admit_waits_out_a_pause_ending_between_clock_steps() -> None:
    """A pause announced while a request waits for the poller's rate slot, ending off the
    clock's grid (0.4 + 0.8 = 1.2000000000000002), holds it until 1.2, and then ends."""
    sender = Sender(None, AnyioClock(), RateLimit(1), None, Pacing(), (), None, 1)  # type: ignore[arg-type]
    url = "https://api.test/jobs/1"
    gate = sender.gate_for(url)
    assert await sender.admit(url, math.inf) is True
    passed: list[float] = []

    async def second() -> None:
        assert await sender.admit(url, math.inf) is True
        passed.append(anyio.current_time())

    async with anyio.create_task_group() as tg:
        tg.start_soon(second)
        await anyio.sleep_until(0.4)
        gate.on_budget(0.4, 0, 0.8)  # announced while the second waits for its slot at 1.0
    assert gate.paused_until == 0.4 + 0.8 > 1.2
    assert passed == [pytest.approx(1.2, abs=1e-9)]


# --- server budgets ------------------------------------------------------------------


def test_empty_budget_pauses_until_the_reset() -> None:
    """remaining=0 pauses the host until the reset and leaves its rate alone."""
    gate, clock = _gate(RateLimit(10))
    gate.on_budget(clock.at(10.0), 0, 3.0)
    assert (gate.rate, gate.paused_until, gate.throttled) == (10.0, 13.0, 0)
    gate.on_budget(clock.at(11.0), 0, 1.0)
    assert gate.paused_until == 13.0
    gate.on_budget(clock.at(11.0), 0, 4.0)
    assert gate.paused_until == 15.0


@pytest.mark.anyio
async def test_empty_budget_wait() -> None:
    """With remaining=0 and a 3 s reset, the next pass comes at the reset."""
    gate = HostGate("api.test", None, AnyioClock())
    gate.on_budget(0.0, 0, 3.0)
    assert await _wait_times(gate, 2) == [3.0, 3.0]


@pytest.mark.anyio
async def test_budget_caps_an_unlimited_gate_until_the_reset() -> None:
    """4 requests left over 2 s spread out at 2/s; after the reset the gate is unlimited."""
    gate = HostGate("api.test", None, AnyioClock())
    gate.on_budget(0.0, 4, 2.0)
    assert await _wait_times(gate, 4) == [0.0, 0.5, 1.0, 1.5]
    await anyio.sleep_until(2.0)
    gate.on_healthy(2.0)
    assert await _wait_times(gate, 3) == [2.0, 2.0, 2.0]


@pytest.mark.anyio
async def test_budget_caps_a_configured_gate() -> None:
    """A budget below the configured rate slows a RateLimit(8) gate to remaining/reset."""
    gate = HostGate("api.test", RateLimit(8), AnyioClock())
    gate.on_budget(0.0, 2, 1.0)
    assert await _wait_times(gate, 3) == [0.0, 0.5, 1.0]


@pytest.mark.anyio
async def test_budget_above_the_configured_rate_does_not_raise_it() -> None:
    """A generous budget leaves a RateLimit(8) gate at 8/s."""
    gate = HostGate("api.test", RateLimit(8), AnyioClock())
    gate.on_budget(0.0, 1000, 1.0)
    assert await _wait_times(gate, 3) == [0.0, 0.125, 0.25]


@pytest.mark.anyio
async def test_budget_cap_on_a_configured_gate_ends_at_the_reset() -> None:
    """Once the budget's reset has passed, a RateLimit(8) gate passes at 8/s again."""
    gate = HostGate("api.test", RateLimit(8), AnyioClock())
    gate.on_budget(0.0, 1, 1.0)  # one request left in the next second: 1/s until t=1
    assert await _wait_times(gate, 1) == [0.0]
    await anyio.sleep_until(5.0)
    gate.on_healthy(5.0)
    assert await _wait_times(gate, 3) == [5.0, 5.125, 5.25]


# --- through the engine ----------------------------------------------------------------

#: Epoch seconds of "Wed, 21 Oct 2015 07:28:00 GMT".
WALL_2015 = 1445412480.0


class WallClock:
    """The event loop's (virtual) clock, with a wall clock that starts at WALL_2015."""

    def now(self) -> float:
        return anyio.current_time()

    async def sleep_until(self, deadline: float) -> None:
        await anyio.sleep_until(deadline)

    def wall(self) -> float:
        return WALL_2015 + anyio.current_time()


def _engine(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(0.25))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


@pytest.mark.anyio
async def test_engine_measures_an_http_date_retry_after_by_the_clock_s_wall(
    api: FakeJobAPI,
) -> None:
    """A 429 whose Retry-After is an HTTP-date, with no Date header, pauses the host until
    that date on the poller's clock's wall(): the engine never reads time.time() for it."""
    throttled = httpx.Response(429, headers={"Retry-After": "Wed, 21 Oct 2015 07:28:03 GMT"})
    api.script("a", throttled, job("done", result=1))
    api.script("b", job("done", result=2))
    t0 = anyio.current_time()
    async with _engine(api, clock=WallClock()) as p:
        a = p.add("a")
        await anyio.sleep(0.5)
        b = p.add("b")
        assert await p.gather(a, b) == [1, 2]
    assert rel(api.times("a"), t0) == [0.0, 3.0]
    assert rel(api.times("b"), t0) == [3.0]  # the host's pause holds every job


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "times_a", "times_b"),
    [
        # Unusable hints: the documented default pause of DEFAULT_THROTTLE_PAUSE (1 s).
        ({"Retry-After": "-5"}, [0.0, 1.0], [1.0]),
        ({"Retry-After": "-0.001"}, [0.0, 1.0], [1.0]),
        (
            {
                "Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT",
                "Date": "Wed, 21 Oct 2015 07:28:00 GMT",
            },
            [0.0, 1.0],
            [1.0],
        ),
        ({"Retry-After-Ms": "-100"}, [0.0, 1.0], [1.0]),
        ({"Retry-After": "soon"}, [0.0, 1.0], [1.0]),
        # Retry-After: 0 is a valid hint of no pause: the retry schedule alone decides.
        ({"Retry-After": "0"}, [0.0, 0.25], [0.5]),
    ],
)
async def test_engine_429_with_an_unusable_hint_pauses_the_host_by_default(
    api: FakeJobAPI, headers: dict[str, str], times_a: list[float], times_b: list[float]
) -> None:
    """A 429 whose hint is unusable (negative, a past date, garbage) pauses its host for
    the default 1.0 s, exactly as a 429 with no hint does, instead of not at all."""
    assert asyncpoll._send.DEFAULT_THROTTLE_PAUSE == 1.0
    api.script("a", httpx.Response(429, headers=headers), job("done", result=1))
    api.script("b", job("done", result=2))
    t0 = anyio.current_time()
    async with _engine(api) as p:
        a = p.add("a")
        await anyio.sleep(0.5)
        b = p.add("b")
        assert await p.gather(a, b) == [1, 2]
    assert rel(api.times("a"), t0) == times_a
    assert rel(api.times("b"), t0) == times_b


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("date", "times_b"),
    [
        # Measured against the response's Date: the budget is spent for 2 s.
        ("Wed, 21 Oct 2015 07:28:00 GMT", [2.0]),
        # No Date: an epoch reset cannot be read against the server's clock; ignored.
        (None, [0.5]),
    ],
)
async def test_engine_reads_an_epoch_ratelimit_reset_against_date_only(
    api: FakeJobAPI, date: str | None, times_b: list[float]
) -> None:
    """RateLimit-Reset as epoch seconds is measured against the response's Date (the
    server's clock), never against our wall clock (here WallClock, 2015-10-21 07:28:00 at
    t=0, and time.time() far later), and ignored without a Date."""
    headers = {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(WALL_2015) + 2)}
    if date is not None:
        headers["Date"] = date
    api.script("a", httpx.Response(200, json={"status": "done", "result": 1}, headers=headers))
    api.script("b", job("done", result=2))
    t0 = anyio.current_time()
    async with _engine(api, clock=WallClock()) as p:
        a = p.add("a")
        await anyio.sleep(0.5)
        b = p.add("b")
        assert await p.gather(a, b) == [1, 2]
    assert rel(api.times("a"), t0) == [0.0]
    assert rel(api.times("b"), t0) == times_b


# ------------------------------------------------------------ exact edges of the gate


def test_an_unlimited_gate_lets_a_request_through_at_once() -> None:
    gate, clock = _gate(None)
    assert gate.try_pass(clock.at(0.0)) is True


def test_a_pause_ending_now_no_longer_holds() -> None:
    """paused_until is the first instant a request may go again."""
    gate, clock = _gate(None)
    gate.on_budget(clock.at(0.0), 0, 5.0)
    assert gate.try_pass(clock.at(4.5)) is False
    assert gate.try_pass(clock.at(5.0)) is True


def test_the_observed_rate_counts_the_last_64_requests() -> None:
    """A host with no limit is halved from the rate of its last 64 requests."""
    gate, clock = _gate(None)
    for i in range(36):  # one a second at first
        assert gate.try_pass(clock.at(100.0 + i))
    for i in range(64):  # then ten a second
        assert gate.try_pass(clock.at(200.0 + i / 10))
    gate.on_throttled(clock.at(207.0), 1.0)
    assert gate.rate == pytest.approx(5.0)


def test_the_observed_rate_of_requests_sent_together_then_later() -> None:
    """Two requests at once, a third a second later: 2 requests/s, halved to 1."""
    gate, clock = _gate(None)
    for t in (10.0, 10.0, 11.0):
        assert gate.try_pass(clock.at(t))
    gate.on_throttled(clock.at(11.0), 1.0)
    assert gate.rate == 1.0


@pytest.mark.anyio
async def test_wait_gives_up_at_the_rate_deadline() -> None:
    """A slot of the rate later than rate_deadline is not waited for."""
    gate = HostGate("api.test", RateLimit(1), AnyioClock())
    assert await gate.wait() is True
    assert await gate.wait(math.inf, rate_deadline=0.5) is False
    assert anyio.current_time() == 0.5


@pytest.mark.anyio
async def test_give_back_returns_the_rate_slot_wait_took() -> None:
    """A slot given back lets the next request go at once; a gate with no limit has no
    slot to give back."""
    gate = HostGate("api.test", RateLimit(2), AnyioClock())
    assert await gate.wait() is True
    gate.give_back()
    assert await _wait_times(gate, 2) == [0.0, 0.5]
    unlimited = HostGate("api.test", None, AnyioClock())
    unlimited.give_back()
    assert await _wait_times(unlimited, 2) == [0.5, 0.5]


@pytest.mark.anyio
async def test_a_cool_down_announced_while_waiting_for_the_slot_is_waited_out() -> None:
    """A request that got its slot during a cool-down announced after it started
    waiting gives the slot back, waits the cool-down out and takes a new slot: it does
    not go inside the cool-down."""
    gate = HostGate("api.test", RateLimit(1), AnyioClock())
    assert await gate.wait() is True
    passed: list[tuple[bool, float]] = []

    async def waiter() -> None:
        went = await gate.wait()
        passed.append((went, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep_until(0.5)
        gate.on_throttled(0.5, 2.0)  # the slot comes at 1.5, inside the cool-down
        assert (gate.rate, gate.paused_until) == (0.5, 2.5)
    assert passed == [(True, 2.5)]
    limiter = gate._limiter
    assert limiter is not None
    assert (limiter.granted, limiter.tokens()) == (2, 0.0)
    assert list(gate._recent) == [0.0, 2.5]
    assert await _wait_times(gate, 1) == [4.5]


@pytest.mark.anyio
async def test_a_slot_given_back_for_a_cool_down_past_the_deadline_stays_given_back() -> None:
    """When the cool-down announced during the wait for a slot outlasts the deadline,
    wait() returns False at the deadline, and the slot is back in the bucket."""
    gate = HostGate("api.test", RateLimit(1), AnyioClock())
    assert await gate.wait() is True
    passed: list[tuple[bool, float]] = []

    async def waiter() -> None:
        went = await gate.wait(2.0, rate_deadline=1.75)
        passed.append((went, anyio.current_time()))

    async with anyio.create_task_group() as tg:
        tg.start_soon(waiter)
        await anyio.sleep_until(0.5)
        gate.on_throttled(0.5, 2.0)
    assert passed == [(False, 2.0)]
    limiter = gate._limiter
    assert limiter is not None
    assert (limiter.granted, limiter.tokens()) == (1, 1.0)
    assert list(gate._recent) == [0.0]
