"""The Redis store beyond the store contract: URLs, prefixes, and the fleet's rate limit.

The limiter's tests run on a real-time asyncio loop: the bucket reads Redis's clock
(``TIME``), which no virtual clock can move. Only ``test_the_fleet_limit_holds_on_the_
servers_clock`` depends on timing (it measures a rate); the others are deterministic.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import pytest

from asyncpoll import RateLimit, StoredJob, open_store
from asyncpoll._clock import AnyioClock

redis = pytest.importorskip("redis")

from asyncpoll import _redis  # noqa: E402
from asyncpoll._redis import RedisStore  # noqa: E402

pytestmark = pytest.mark.anyio

REAL_ASYNCIO = ("asyncio", {"loop_factory": asyncio.new_event_loop})


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, Any]]:
    """Redis runs on asyncio; a real-time loop, for the limiter's sleeps."""
    return REAL_ASYNCIO


def row(job_id: str, state: str = "running", due: float = 100.0, **doc: Any) -> StoredJob:
    return StoredJob(job_id, state, due, json.dumps({"job_id": job_id, "state": state, **doc}))


@pytest.fixture
async def stores(redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    """``make(prefix=None)``: open a new RedisStore on the test's server."""
    made: list[RedisStore] = []

    async def make(prefix: str | None = None) -> RedisStore:
        store = RedisStore(redis_url) if prefix is None else RedisStore(redis_url, prefix=prefix)
        await store.open()
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        await store.aclose()


# ----------------------------------------------------------------- URLs


def test_the_url_attribute_redacts_the_password() -> None:
    assert RedisStore("redis://:s3cret@host:6379/0").url == "redis://:***@host:6379/0"
    assert RedisStore("redis://me:s3cret@host/1").url == "redis://me:***@host/1"
    assert RedisStore("rediss://me@host/1").url == "rediss://me@host/1"  # no password
    assert (
        RedisStore("redis://host/0?password=s3cret&socket_timeout=2").url
        == "redis://host/0?password=***&socket_timeout=2"
    )
    assert RedisStore("unix:///tmp/redis.sock?db=3").url == "unix:///tmp/redis.sock?db=3"
    assert "s3cret" not in repr(RedisStore("redis://:s3cret@host:6379/0"))


def test_from_url_takes_the_prefix_out_of_the_url() -> None:
    store = RedisStore.from_url("redis://:pw@host:6379/2?prefix=app&socket_timeout=3")
    assert store.prefix == "app"
    assert store.url == "redis://:***@host:6379/2?socket_timeout=3"
    assert RedisStore.from_url("redis://host/0?prefix=app").url == "redis://host/0"
    assert RedisStore.from_url("redis://host/0").prefix == "asyncpoll"
    via_open_store = open_store("redis://host/0?prefix=x%20y")
    assert isinstance(via_open_store, RedisStore)
    assert via_open_store.prefix == "x y"
    assert via_open_store.shared is True


def test_a_bad_url_or_prefix_raises_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^not a Redis URL: 'http://host/0' \(Redis URL must"):
        RedisStore("http://host/0")
    with pytest.raises(ValueError, match=r"^not a Redis URL: 'redis://:\*\*\*@host:port/0' ") as e:
        RedisStore("redis://:s3cret@host:port/0")
    assert "s3cret" not in str(e.value)
    with pytest.raises(ValueError, match=r"gives prefix= 2 times"):
        RedisStore.from_url("redis://host/0?prefix=a&prefix=b")
    with pytest.raises(ValueError, match=r"carries prefix=: use RedisStore.from_url"):
        RedisStore("redis://host/0?prefix=a")
    for prefix in ("", "a{b}", "{x"):
        with pytest.raises(ValueError, match=r"non-empty name without braces, got"):
            RedisStore("redis://host/0", prefix=prefix)
    with pytest.raises(ValueError, match=r"non-empty name without braces, got ''"):
        RedisStore.from_url("redis://host/0?prefix=")


@pytest.mark.parametrize("anyio_backend", [pytest.param(("trio", {}), id="trio")])
async def test_open_on_trio_raises() -> None:
    store = RedisStore("redis://127.0.0.1:1/0")
    with pytest.raises(RuntimeError, match=r"runs on asyncio only .* not on trio"):
        await store.open()
    with pytest.raises(RuntimeError, match="is not open"):
        await store.get_many(["a"])


# ----------------------------------------------------------------- rows


async def test_a_prefix_isolates_two_stores_on_one_server(stores: Any) -> None:
    one, two = await stores("one"), await stores("two")
    one.insert(row("a", due=1.0))
    two.insert(row("a", due=2.0, other=True))
    two.insert(row("b", due=3.0))
    assert one.get("a") == row("a", due=1.0)
    assert one.get("b") is None
    assert [r.job_id for r in await one.live()] == ["a"]
    assert [r.job_id for r in await two.claim("w", 10.0, 5.0, 10)] == ["a", "b"]
    assert [r.job_id for r in await one.claim("w", 10.0, 5.0, 10)] == ["a"]
    one.put_cooldown("h", 50.0)
    await one.flush()
    assert await two.cooldowns(0.0) == {}
    assert await one.cooldowns(0.0) == {"h": 50.0}


async def test_sync_calls_work_unopened_and_a_closed_store_opens_again(redis_url: str) -> None:
    store = RedisStore(redis_url)
    assert store.insert(row("a", due=1.0)) is None  # no open() needed: no event loop
    assert store.get("a") == row("a", due=1.0)
    await store.open()
    store.put(row("a", due=2.0))
    await store.aclose()  # flushes
    await store.aclose()
    assert store.get("a") == row("a", due=2.0)
    await store.open()  # again
    try:
        assert await store.get_many(["a"]) == [row("a", due=2.0)]
    finally:
        await store.aclose()


async def test_a_job_is_claimable_again_once_its_lease_ends(stores: Any) -> None:
    store = await stores()
    for i in range(5):
        store.insert(row(f"j{i}", due=float(i)))
    store.insert(row("late", due=10.8))
    assert [r.job_id for r in await store.claim("w1", 10.0, 1.0, 3)] == ["j0", "j1", "j2"]
    assert [r.job_id for r in await store.claim("w2", 10.5, 1.0, 9)] == ["j3", "j4"]
    assert await store.claim("w1", 10.9, 1.0, 9) == [store.get("late")]
    # w1's leases (until 11) have ended: anyone may claim those jobs, w1 too; w2's (until
    # 11.5) and w1's lease on "late" (until 11.9) hold.
    assert [r.job_id for r in await store.claim("w1", 11.2, 1.0, 9)] == ["j0", "j1", "j2"]
    got = await store.claim("w3", 11.6, 1.0, 9)
    assert [r.job_id for r in got] == ["j3", "j4"]
    assert [r.due for r in got] == [3.0, 4.0]  # the rows as written


async def test_a_terminal_put_leaves_the_due_set_and_the_leases(stores: Any) -> None:
    store = await stores()
    store.insert(row("a", due=0.0))
    assert [r.job_id for r in await store.claim("w1", 1.0, 10.0, 5)] == ["a"]
    store.put(row("a", "succeeded", due=2.0), owner="w9")  # whoever holds the lease
    await store.flush()
    sync = redis.Redis.from_url(store._raw_url, decode_responses=True)
    try:
        assert sync.zrange("{asyncpoll}:due", 0, -1) == []
        assert sync.hgetall("{asyncpoll}:leases") == {}
        assert sync.zrange("{asyncpoll}:finished", 0, -1, withscores=True) == [("a", 2.0)]
    finally:
        sync.close()
    assert store.insert(row("a", "pending", due=3.0)) is None  # a new run of the id
    assert [r.job_id for r in await store.claim("w1", 5.0, 10.0, 5)] == ["a"]


async def test_prune_deletes_in_chunks(stores: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_redis, "PRUNE_CHUNK", 2)
    store = await stores()
    for i in range(5):
        store.insert(row(f"j{i}"))
        store.put(row(f"j{i}", "failed", due=float(i)))
    assert await store.prune(4.5) == 5
    assert await store.get_many([f"j{i}" for i in range(5)]) == [None] * 5


async def test_a_failed_flush_queues_its_writes_again_behind_newer_ones(
    stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store, other = await stores(), await stores()
    store.insert(row("a"))
    store.insert(row("b"))
    store.put(row("a", due=1.0, n=1))
    store.put(row("b", "succeeded", due=2.0))
    store.put_cooldown("h", 50.0)
    real_execute = redis.asyncio.client.Pipeline.execute

    async def fail(pipe: Any, *args: Any, **kwargs: Any) -> Any:
        store.put(row("a", due=3.0, n=2))  # queued while the flush was under way
        store.put(row("b", due=4.0))  # after b's outcome: dropped
        store.put_cooldown("h", 40.0)
        raise redis.exceptions.ConnectionError("the server went away")

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", fail)
    with pytest.raises(redis.exceptions.ConnectionError, match="went away"):
        await store.flush()
    assert store.pending == 3
    assert store.get("a") == row("a", due=3.0, n=2)
    assert store.get("b") == row("b", "succeeded", due=2.0)
    assert other.get("a") == row("a")  # nothing written
    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", real_execute)
    await store.flush()
    assert store.pending == 0
    assert other.get("a") == row("a", due=3.0, n=2)
    assert other.get("b") == row("b", "succeeded", due=2.0)
    assert await other.cooldowns(0.0) == {"h": 50.0}


async def test_ended_cooldowns_are_forgotten_after_a_grace(stores: Any) -> None:
    one, two = await stores(), await stores()
    one.put_cooldown("h", 50.0)
    await one.flush()
    # A worker whose clock runs ahead sees the pause ended; one behind still honours it.
    assert await one.cooldowns(60.0) == {}
    assert await two.cooldowns(45.0) == {"h": 50.0}
    assert await one.cooldowns(50.0 + _redis.COOLDOWN_GRACE + 1.0) == {}
    assert await two.cooldowns(45.0) == {}  # deleted now


# ----------------------------------------------------------------- the fleet's limiter


async def test_the_fleet_limit_holds_on_the_servers_clock(stores: Any) -> None:
    """3 workers x 4 tasks for ~1.5 s at 200/s, burst 5: every window of the server's
    clock holds at most burst + rate * t grants, and the fleet gets at least 95 % of
    what the limit allows."""
    limit = RateLimit(200, burst=5)
    clock = AnyioClock()
    workers = [(await stores()).limiter(limit, clock) for _ in range(3)]
    for limiter in workers:
        limiter.grants = []
    end = clock.now() + 1.5

    async def task(limiter: _redis.RedisLimiter) -> None:
        while await limiter.acquire(end):
            pass

    async with anyio.create_task_group() as tg:
        for limiter in workers:
            for _ in range(4):
                tg.start_soon(task, limiter)
    grants = sorted(t for limiter in workers for t in limiter.grants or ())
    assert all(limiter.grants for limiter in workers)  # every worker got some
    n = len(grants)
    for i in range(n):
        for j in range(i + 1, n):
            allowed = limit.burst + limit.per_second * (grants[j] - grants[i])
            assert j - i + 1 <= allowed + 1e-6, (i, j, grants[i], grants[j])
    span = grants[-1] - grants[0]
    assert n >= 0.95 * (limit.burst + limit.per_second * span), (n, span)
    assert span > 1.3


async def test_acquire_returns_false_when_the_deadline_comes_first(stores: Any) -> None:
    clock = AnyioClock()
    limiter = (await stores()).limiter(RateLimit(1, per=100.0, burst=1), clock)
    assert limiter.limit == RateLimit(1, per=100.0, burst=1)
    assert await limiter.acquire(clock.now() + 0.05)  # the burst's token
    began = clock.now()
    assert not await limiter.acquire(began + 0.05)  # the next one comes in 100 s
    assert 0.05 <= clock.now() - began < 1.0
    assert limiter.waiting == 0


async def test_local_waiters_are_served_first_come_first_served(stores: Any) -> None:
    clock = AnyioClock()
    limiter = (await stores()).limiter(RateLimit(100, burst=1), clock)
    assert await limiter.acquire()  # empty the bucket: everyone below waits
    order: list[int] = []
    peak = 0

    async def task(i: int) -> None:
        nonlocal peak
        peak = max(peak, limiter.waiting + 1)
        assert await limiter.acquire()
        order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(6):
            tg.start_soon(task, i)
    assert order == list(range(6))
    assert peak == 6
    assert limiter.waiting == 0


async def test_a_waiter_whose_deadline_passed_in_the_queue_gives_up(stores: Any) -> None:
    clock = AnyioClock()
    limiter = (await stores()).limiter(RateLimit(1, per=0.2, burst=1), clock)
    assert await limiter.acquire()
    results: dict[str, bool] = {}
    began = clock.now()

    async def wait(name: str, deadline: float) -> None:
        results[name] = await limiter.acquire(deadline)

    async with anyio.create_task_group() as tg:
        tg.start_soon(wait, "head", math.inf)  # its token comes at about 0.2 s
        await anyio.sleep(0.01)
        tg.start_soon(wait, "behind", began + 0.1)  # queued past its deadline
    assert results == {"head": True, "behind": False}


async def test_the_head_takes_a_token_for_each_waiter_in_one_call(
    stores: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = await stores()
    clock = AnyioClock()
    limiter = store.limiter(RateLimit(1, per=100.0, burst=5), clock)
    limiter.MAX_BATCH = 64
    calls: list[tuple[int, int]] = []
    take = store._take_tokens

    async def counted(limit: RateLimit, want: int) -> tuple[int, int, int]:
        got = await take(limit, want)
        calls.append((want, got[0]))
        return got

    monkeypatch.setattr(store, "_take_tokens", counted)
    results: list[bool] = []

    async def task() -> None:
        results.append(await limiter.acquire(clock.now() + 0.05))

    async with anyio.create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(task)
    # The first task asks alone; the five that queued meanwhile are served by one call
    # (four tokens left: the last waiter gets none and gives up at its deadline).
    assert calls[:2] == [(1, 1), (5, 4)]
    assert results == [True] * 5 + [False]
