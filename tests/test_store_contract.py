"""The store contract: the same tests on every store (memory, SQLite, Redis).

Each test gets a store made by ``make()``; ``reopen()`` makes a second store object on
the same data (a new process's view: for SQLite the same file, for Redis the same
server), which is how durability is checked. The Redis store runs on a real
redis-server (skipped without one, failed in CI); it runs on asyncio only (the
``redis`` client's asyncio API), the others on trio too.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from asyncpoll import MemoryStore, StoredJob, open_store
from asyncpoll._store import JobStore

pytestmark = pytest.mark.anyio

KINDS = ["memory", "sqlite", "redis"]


def row(job_id: str, state: str = "running", due: float = 100.0, **doc: Any) -> StoredJob:
    return StoredJob(job_id, state, due, json.dumps({"job_id": job_id, "state": state, **doc}))


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest, anyio_backend: Any) -> str:
    name: str = request.param
    backend = anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend
    if name == "redis" and backend != "asyncio":
        pytest.skip("the Redis store runs on asyncio (the redis client's asyncio API)")
    return name


@pytest.fixture
def url_for(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "memory":
        return "memory://"
    if kind == "sqlite":
        return f"sqlite:///{tmp_path / 'jobs.db'}"
    redis_url: str = request.getfixturevalue("redis_url")
    return redis_url


@pytest.fixture
async def stores(url_for: str, kind: str) -> AsyncIterator[Callable[[], Any]]:
    """``make()``: open a new store on the test's data (each closed at the end)."""
    made: list[JobStore] = []
    memory = MemoryStore() if kind == "memory" else None

    async def make() -> JobStore:
        if memory is not None and made:
            return memory  # one process's memory: the "reopened" store is the same one
        store: JobStore
        if memory is not None:
            store = memory
        elif kind == "sqlite" and made:
            # One poller owns a SQLite file at a time (an exclusive lock); another view
            # of it, for the checks, opens it without the lock.
            from asyncpoll._sqlite import SQLiteStore

            store = SQLiteStore(url_for.removeprefix("sqlite:///"), exclusive=False)
        else:
            store = open_store(url_for)
        await store.open()
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        await store.aclose()


async def test_insert_then_get_and_a_live_duplicate_is_kept(stores: Any) -> None:
    store = await stores()
    first = row("a", due=5.0, x=1)
    assert store.insert(first) is None
    assert store.get("a") == first
    assert store.insert(row("a", due=9.0, x=2)) == first  # the live row stays
    assert store.get("a") == first
    assert store.get("nope") is None


async def test_insert_is_durable_without_a_flush(stores: Any, kind: str) -> None:
    store = await stores()
    store.insert(row("a", due=5.0))
    other = await stores()  # another process's view of the same data
    assert other.get("a") == row("a", due=5.0)
    assert (await other.get_many(["a", "b"])) == [row("a", due=5.0), None]


async def test_insert_replaces_a_terminal_row(stores: Any) -> None:
    store = await stores()
    store.insert(row("a"))
    store.put(row("a", "succeeded", due=7.0))
    await store.flush()
    again = row("a", "pending", due=8.0)
    assert store.insert(again) is None
    assert store.get("a") == again


async def test_puts_are_queued_read_back_coalesced_and_flushed(stores: Any) -> None:
    store = await stores()
    store.insert(row("a"))
    store.put(row("a", due=2.0, n=1))
    store.put(row("a", due=3.0, n=2))
    store.put(row("b", due=4.0))  # a put may create a row too
    assert store.pending == 2
    assert store.get("a") == row("a", due=3.0, n=2)  # read your writes
    other = await stores()
    await store.flush()
    assert store.pending == 0
    assert other.get("a") == row("a", due=3.0, n=2)
    assert other.get("b") == row("b", due=4.0)


async def test_a_terminal_row_is_final(stores: Any) -> None:
    store = await stores()
    store.insert(row("a"))
    done = row("a", "succeeded", due=7.0, result=1)
    store.put(done)
    store.put(row("a", "running", due=8.0))  # queued after the outcome: dropped
    store.put(row("a", "failed", due=9.0))  # a second outcome: dropped
    assert store.get("a") == done
    await store.flush()
    store.put(row("a", "errored", due=10.0))  # after the flush: dropped too
    store.put(row("a", "running", due=11.0))
    assert store.get("a") == done
    await store.flush()
    other = await stores()
    assert other.get("a") == done
    assert (await other.get_many(["a"])) == [done]


async def test_live_lists_live_rows_earliest_due_first(stores: Any) -> None:
    store = await stores()
    store.insert(row("late", due=30.0))
    store.insert(row("early", due=10.0))
    store.insert(row("mid", "pending", due=20.0))
    store.insert(row("done"))
    store.put(row("done", "cancelled", due=1.0))
    store.put(row("mid", due=15.0))  # queued: live() sees it
    assert [r.job_id for r in await store.live()] == ["early", "mid", "late"]
    assert [r.due for r in await store.live()] == [10.0, 15.0, 30.0]


async def test_prune_deletes_terminal_rows_finished_before(stores: Any) -> None:
    store = await stores()
    for name, finished in (("old", 10.0), ("new", 50.0)):
        store.insert(row(name))
        store.put(row(name, "succeeded", due=finished))
    store.insert(row("live", due=1.0))
    assert await store.prune(20.0) == 1
    assert store.get("old") is None
    assert store.get("new") is not None
    assert store.get("live") is not None
    assert await store.prune(20.0) == 0
    other = await stores()
    assert other.get("old") is None


async def test_open_twice_raises_and_close_twice_does_nothing(url_for: str) -> None:
    store = open_store(url_for)
    await store.open()
    with pytest.raises(RuntimeError, match="open already"):
        await store.open()
    store.insert(row("a"))
    store.put(row("a", due=3.0))
    await store.aclose()  # flushes
    await store.aclose()
    if not url_for.startswith("memory"):
        again = open_store(url_for)
        await again.open()
        try:
            assert again.get("a") == row("a", due=3.0)
        finally:
            await again.aclose()


async def test_a_job_id_of_any_text_round_trips(stores: Any) -> None:
    store = await stores()
    odd = "jobs/42?x=1 ü \u2028 'quote\" {}:*"
    store.insert(row(odd, due=1.5))
    assert store.get(odd) == row(odd, due=1.5)
    assert [r.job_id for r in await store.live()] == [odd]


def test_open_store_names_what_was_wrong() -> None:
    with pytest.raises(ValueError, match="unknown scheme 'postgres'"):
        open_store("postgres://x/y")
    with pytest.raises(ValueError, match="must be a URL"):
        open_store("jobs.db")
    with pytest.raises(TypeError, match="store must be a URL"):
        open_store(42)
    store = MemoryStore()
    assert open_store(store) is store
    assert isinstance(open_store("memory://"), MemoryStore)


# ----------------------------------------------------------------- shared stores


@pytest.fixture(params=["memory", "redis"])
async def shared(
    request: pytest.FixtureRequest, anyio_backend: Any
) -> AsyncIterator[Callable[[], Any]]:
    """``make()``: another worker's view of one shared store (a fleet of one process for
    ``MemoryStore(shared=True)``, of one server for Redis)."""
    backend = anyio_backend[0] if isinstance(anyio_backend, tuple) else anyio_backend
    made: list[JobStore] = []
    memory = MemoryStore(shared=True)
    redis_url = None
    if request.param == "redis":
        if backend != "asyncio":
            pytest.skip("the Redis store runs on asyncio")
        redis_url = request.getfixturevalue("redis_url")

    async def make() -> JobStore:
        store = memory if redis_url is None else open_store(redis_url)
        await store.open()
        made.append(store)
        return store

    yield make
    for store in reversed(made):
        await store.aclose()


async def test_claims_are_exclusive_until_the_lease_runs_out(shared: Any) -> None:
    one, two = await shared(), await shared()
    assert one.shared and two.shared
    for i in range(5):
        one.insert(row(f"j{i}", due=float(i)))
    one.insert(row("later", due=100.0))
    got = await one.claim("w1", 10.0, 30.0, 3)
    assert [r.job_id for r in got] == ["j0", "j1", "j2"]  # earliest due first
    rest = await two.claim("w2", 10.0, 40.0, 10)  # held until 50
    assert [r.job_id for r in rest] == ["j3", "j4"]  # never one claimed by w1
    assert await two.claim("w2", 39.0, 30.0, 10) == []  # leases still hold
    again = await two.claim("w2", 41.0, 30.0, 10)  # w1's leases ran out (10 + 30)
    assert [r.job_id for r in again] == ["j0", "j1", "j2"]


async def test_the_owner_releases_a_job_and_a_lost_lease_drops_the_write(shared: Any) -> None:
    one, two = await shared(), await shared()
    one.insert(row("a", due=0.0))
    assert [r.job_id for r in await one.claim("w1", 1.0, 10.0, 5)] == ["a"]
    one.put(row("a", due=5.0, polls=1), owner="w1")  # polled, due again at 5
    await one.flush()
    assert two.get("a") == row("a", due=5.0, polls=1)
    assert await two.claim("w2", 4.0, 10.0, 5) == []
    assert [r.job_id for r in await two.claim("w2", 5.0, 10.0, 5)] == ["a"]
    # w1 writes as if it still held the job: w2 holds it now, the write is dropped.
    one.put(row("a", due=6.0, polls=99), owner="w1")
    await one.flush()
    assert two.get("a") == row("a", due=5.0, polls=1)
    two.put(row("a", due=8.0, polls=2), owner="w2")  # w2 polled it and let it go
    await two.flush()
    one.put(row("a", due=6.0, polls=99), owner="w1")  # w1's write, late: still dropped
    await one.flush()
    assert two.get("a") == row("a", due=8.0, polls=2)
    # An outcome is written whoever holds the lease, once.
    two.put(row("a", "succeeded", due=7.0), owner="w2")
    one.put(row("a", "failed", due=7.5), owner="w1")
    await two.flush()
    await one.flush()
    assert one.get("a") == row("a", "succeeded", due=7.0)
    assert await one.claim("w1", 1e9, 10.0, 5) == []
    assert await one.live() == []


async def test_cooldowns_are_shared_until_they_end(shared: Any) -> None:
    one, two = await shared(), await shared()
    one.put_cooldown("api.example.com", 50.0)
    one.put_cooldown("other.example.com", 20.0)
    await one.flush()
    assert await two.cooldowns(10.0) == {"api.example.com": 50.0, "other.example.com": 20.0}
    assert await two.cooldowns(30.0) == {"api.example.com": 50.0}
    one.put_cooldown("api.example.com", 40.0)  # an earlier end never shortens a pause
    await one.flush()
    assert await two.cooldowns(30.0) == {"api.example.com": 50.0}


async def test_finished_since_lists_jobs_finished_at_or_after_a_time(stores: Any) -> None:
    store = await stores()
    for name, finished in (("old", 10.0), ("edge", 20.0), ("new", 30.0)):
        store.insert(row(name))
        store.put(row(name, "succeeded", due=finished))  # queued: flushed first
    store.insert(row("live", due=25.0))
    assert sorted(await store.finished_since(20.0)) == ["edge", "new"]
    assert await store.finished_since(31.0) == []
