"""Jobs in a store: written before add() returns, every change written behind, outcomes
kept and pruned, resumed by the next poller, handles of stored jobs, named callables,
resume tokens. In virtual time against the scripted job API, on asyncio and trio.

A crash is a snapshot: the rows a store held at some moment, copied into a new store
that the next poller opens (no close, no final flush, no cancellations written).
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll
from asyncpoll import JobState, MemoryStore, TokenError

pytestmark = pytest.mark.anyio

EPOCH = 1_800_000_000.0


class WallClock(asyncpoll.AnyioClock):
    """The loop's (virtual) clock, with a wall clock that moves with it."""

    def wall(self) -> float:
        return EPOCH + anyio.current_time()


def poller(api: FakeJobAPI, store: Any, **options: Any) -> asyncpoll.TaskPoller:
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(1.0))
    options.setdefault("clock", WallClock())
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), store=store, **options)


def doc(store: MemoryStore, job_id: str) -> dict[str, Any]:
    row = store.get(job_id)
    assert row is not None
    parsed: dict[str, Any] = json.loads(row.doc)
    return parsed


def snapshot(store: MemoryStore) -> MemoryStore:
    """What a crash leaves: the rows written so far (queued writes lost)."""
    copy = MemoryStore()
    copy._rows = dict(store._rows)
    return copy


async def crash(p: asyncpoll.TaskPoller) -> None:
    """Stop a poller opened with open() after its snapshot was taken."""
    await p.shutdown(wait=False, cancel_futures=True)
    await p.aclose()


async def test_a_job_is_stored_before_add_returns_and_each_change_behind(
    api: FakeJobAPI,
) -> None:
    api.script("a", job("pending"), job("running", progress=50), job("done", result={"n": 1}))
    store = MemoryStore()
    t0 = anyio.current_time()
    async with poller(api, store, flush_interval=0.5) as p:
        handle = p.add("a", metadata={"user": 7})
        row = store._rows["a"]  # written, not queued
        assert (row.state, row.due) == ("pending", EPOCH + t0)
        first = doc(store, "a")
        assert first["attempts"] == 0 and first["metadata"] == {"user": 7}
        assert first["url"] == "/jobs/a" and first["schedule"] == {
            "fixed": {"interval": 1.0, "first": None}
        }
        await anyio.sleep(1.7)  # polled at 0 and 1; written by the flush at 1.5
        assert store._rows["a"].state == "running"
        assert json.loads(store._rows["a"].doc)["attempts"] == 2
        assert store._rows["a"].due == EPOCH + t0 + 2.0
        assert await handle == {"n": 1}
    row = store._rows["a"]  # the outcome, flushed at close
    assert (row.state, row.due) == ("succeeded", EPOCH + t0 + 2.0)
    stored = json.loads(row.doc)
    assert stored["result"] == {"n": 1} and stored["error"] is None
    assert stored["attempts"] == 3
    assert (stored["added_at"], stored["finished_at"]) == (EPOCH + t0, EPOCH + t0 + 2.0)


async def test_a_poller_on_the_store_resumes_live_jobs_where_they_were(api: FakeJobAPI) -> None:
    """The schedule goes on from the last attempt (backoff's gaps keep growing), not
    from zero; finished jobs are not polled again."""
    api.script("slow", job("running"))
    api.script("quick", job("done", result=1))
    store = MemoryStore()
    sched = asyncpoll.backoff(1.0, 2.0, 60.0, jitter=0)
    t0 = anyio.current_time()
    first = poller(api, store, schedule=sched, flush_interval=0.01)
    await first.open()
    first.add("slow")
    first.add("quick")
    await anyio.sleep(3.5)  # slow polled at 0, 1, 3; next due at 7
    crashed = snapshot(store)
    await crash(first)
    assert rel(api.times("slow"), t0) == [0.0, 1.0, 3.0]
    assert crashed._rows["quick"].state == "succeeded"
    assert json.loads(crashed._rows["slow"].doc)["attempts"] == 3
    # The fake counts every poll of an id: the 4th answers running, the 5th done.
    api.script("slow", *[job("running")] * 4, job("done", result="late"))
    t1 = anyio.current_time()
    async with poller(api, crashed, schedule=sched) as second:
        assert [h.job_id for h in second.in_flight()] == ["slow"]
        assert await second.handle("slow") == "late"
        done = second.handle("quick")  # finished before: resolved from the store
        assert done.done() and done.result() == 1 and done.state is JobState.SUCCEEDED
    # Due at 7 (the 4 s gap after the third poll), then 8 s later.
    assert rel(api.times("slow"), t0)[3:] == [7.0, 15.0]
    assert len(api.times("quick")) == 1
    assert t1 == pytest.approx(t0 + 3.5)


async def test_an_outcome_is_rebuilt_as_its_own_exception(api: FakeJobAPI) -> None:
    api.script("bad", job("failed", error="disk full"))
    api.script("gone", httpx.Response(404, json={}))
    store = MemoryStore()
    async with poller(api, store) as p:
        bad, gone = p.add("bad"), p.add("gone")
        await p.gather(bad, gone, return_exceptions=True)
    async with poller(api, store) as again:
        failed = again.handle("bad")
        assert isinstance(failed.exception(), asyncpoll.JobFailed)
        assert str(failed.exception()) == str(bad.exception())
        assert failed.exception().status.error == "disk full"  # type: ignore[union-attr]
        errored = again.handle("gone")
        assert errored.state is JobState.ERRORED
        assert isinstance(errored.exception(), asyncpoll.PollError)
        assert str(errored.exception()) == str(gone.exception())
        with pytest.raises(asyncpoll.JobFailed, match="disk full"):
            await again.wait("bad")
        with pytest.raises(ValueError, match="no job 'nope' in this poller or its store"):
            again.handle("nope")


async def test_outcomes_are_pruned_after_the_retention(api: FakeJobAPI) -> None:
    api.script("a", job("done"))
    api.script("b", job("running"), job("running"), job("done"))
    store = MemoryStore()
    async with poller(api, store, retention=10.0) as p:
        p.add("a")
        p.add("b", schedule=asyncpoll.fixed(20.0))
        await anyio.sleep(5.0)
        assert store.get("a") is not None
        await anyio.sleep(7.0)  # a finished at 0; pruned at the first pass after 10
        assert store.get("a") is None
        assert store.get("b") is not None
    assert store.get("b").state == "succeeded"  # type: ignore[union-attr]


async def test_callables_are_stored_by_name_and_refused_without_one(api: FakeJobAPI) -> None:
    async def sdk(handle: asyncpoll.JobHandle) -> asyncpoll.Status:
        return asyncpoll.Status(JobState.SUCCEEDED, result=handle.job_id)

    store = MemoryStore()
    done: list[str] = []
    named = {"sdk": sdk, "log": lambda h: done.append(h.job_id)}
    async with poller(api, store, named=named) as p:
        with pytest.raises(
            ValueError,
            match=r"check=<function .*<lambda> at .*> cannot be stored; register it by name",
        ):
            p.add("x", check=lambda h: sdk(h))
        assert store.get("x") is None and p.in_flight() == []  # nothing half-added
        with pytest.raises(ValueError, match=r"check='nope' names nothing registered"):
            p.add("y", check="nope")
        h1 = p.add("one", check="sdk", on_done="log")
        h2 = p.add("two", check=sdk)  # the registered object itself
        assert doc(store, "one")["check"] == "sdk" and doc(store, "one")["on_done"] == "log"
        assert doc(store, "two")["check"] == "sdk"
        assert await h1 == "one" and await h2 == "two"
    assert done == ["one"]


async def test_a_stored_job_whose_name_is_not_registered_stays_for_a_poller_that_can(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    async def sdk(handle: asyncpoll.JobHandle) -> asyncpoll.Status:
        return asyncpoll.Status(JobState.RUNNING)

    store = MemoryStore()
    first = poller(api, store, named={"sdk": sdk}, flush_interval=0.01)
    await first.open()
    first.add("j", check="sdk")
    await anyio.sleep(0.5)
    crashed = snapshot(store)
    await crash(first)
    with caplog.at_level(logging.ERROR, "asyncpoll"):
        async with poller(api, crashed) as second:
            assert second.in_flight() == []
            assert second.unresumed == {
                "j": "stored job 'j' needs the check registered as 'sdk', which this poller "
                "does not have: pass TaskPoller(named={'sdk': ...})"
            }
            with pytest.raises(LookupError, match="registered as 'sdk'"):
                second.handle("j")
    assert "cannot poll stored job 'j'" in caplog.text
    assert crashed.get("j").state == "running"  # type: ignore[union-attr]


async def test_a_resume_token_carries_a_job_to_another_poller(api: FakeJobAPI) -> None:
    api.script("a", job("running"))
    sched = asyncpoll.backoff(1.0, 2.0, 60.0, jitter=0)
    t0 = anyio.current_time()
    async with poller(api, None, schedule=sched) as first:
        handle = first.add("a", metadata={"k": [1, 2]})
        await anyio.sleep(3.5)
        token = handle.resume_token()
        handle.cancel()
    parsed = json.loads(token)
    assert parsed["kind"] == "asyncpoll.resume-token" and parsed["version"] == 1
    assert parsed["job"]["attempts"] == 3 and parsed["job"]["metadata"] == {"k": [1, 2]}
    api.script("a", job("done", result="ok"))
    async with poller(api, None, schedule=sched) as second:
        resumed = second.resume(token)
        assert resumed.attempts == 3 and resumed.metadata == {"k": [1, 2]}
        assert second.resume(token) is resumed  # in flight already
        assert await resumed == "ok"
    assert rel(api.times("a"), t0)[3:] == [3.5]  # due when the token was made


async def test_a_resume_token_keeps_only_allowed_headers_and_never_credentials(
    api: FakeJobAPI,
) -> None:
    api.router.post("/jobs").mock(
        return_value=httpx.Response(202, json={"id": "c1"}, headers={"Location": "/jobs/c1"})
    )
    api.script("c1", job("running"))
    async with poller(api, None) as p:
        handle = await p.submit(
            "/jobs",
            json={"x": 1},
            headers={"X-Tenant": "t1", "Authorization": "Bearer s3cret", "X-Trace": "z"},
        )
        token = handle.resume_token(headers=["x-tenant"])
        with pytest.raises(ValueError, match=r"never carries credentials: \['authorization'\]"):
            handle.resume_token(headers=["Authorization"])
        handle.cancel()
    create = json.loads(token)["job"]["create"]
    assert create["headers"] == {"X-Tenant": "t1"}
    assert create["json"] == {"x": 1}
    assert "s3cret" not in token


async def test_resume_refuses_bad_tokens_by_name(api: FakeJobAPI) -> None:
    api.script("a", job("running"))
    async with poller(api, None) as p:
        token = p.add("a").resume_token()
        good = json.loads(token)
        p.handle("a").cancel()

        def variant(**changes: Any) -> str:
            outer = json.loads(token)
            for key, value in changes.items():
                if key in outer:
                    outer[key] = value
                else:
                    outer["job"][key] = value
            return json.dumps(outer)

        cases = {
            variant(
                version=2
            ): "resume token version 2 is not known; this asyncpoll reads version 1",
            "{": "a resume token must be JSON",
            json.dumps({"kind": "x"}): "not an asyncpoll resume token",
            variant(attempts=-1): "field 'attempts' must be a whole number >= 0",
            variant(target="file:///etc/passwd"): "field 'target' must be an http(s) URL",
            variant(state="exploded"): "field 'state' is not a job state",
            variant(schedule={"name": "mine"}): "needs the schedule registered as 'mine'",
            variant(v=9): "format version 9",
        }
        for bad, message in cases.items():
            with pytest.raises((TokenError, LookupError), match=re.escape(message)):
                p.resume(bad)
        evil = variant(url="https://evil.example/jobs/a", target="https://evil.example/jobs/a")
        with pytest.raises(
            TokenError, match=re.escape("'https://evil.example/jobs/a' is not of an origin")
        ):
            p.resume(evil)
        assert good["job"]["target"].startswith("https://api.test/")
        resumed = p.resume(evil, trusted=True)
        assert resumed.url == "https://evil.example/jobs/a"
        resumed.cancel()


async def test_resubmits_with_a_store_carry_an_idempotency_key(api: FakeJobAPI) -> None:
    keys: list[str | None] = []

    def create(request: httpx.Request) -> httpx.Response:
        keys.append(request.headers.get("Idempotency-Key"))
        n = len(keys)
        return httpx.Response(202, json={"id": f"r{n}"}, headers={"Location": f"/jobs/r{n}"})

    api.router.post("/jobs").mock(side_effect=create)
    api.script("r1", job("failed", error="flaky"))
    api.script("r2", job("done", result=2))
    store = MemoryStore()
    async with poller(api, store) as p:
        handle = await p.submit("/jobs", json={}, resubmit=1)
        assert doc(store, "r1")["create"]["idempotency_key"] == keys[0]
        assert await handle == 2
    assert keys[0] is not None and keys[1] == f"{keys[0]}-1"
    assert store.get("r1").state == "failed"  # type: ignore[union-attr]
    assert store.get("r2").state == "succeeded"  # type: ignore[union-attr]


def test_store_options_are_checked() -> None:
    with pytest.raises(ValueError, match="lease must be more than 2 seconds"):
        asyncpoll.TaskPoller("https://x/{job_id}", store="memory://", lease=1)
    with pytest.raises(ValueError, match="flush_interval must be > 0 seconds"):
        asyncpoll.TaskPoller("https://x/{job_id}", store="memory://", flush_interval=0)
    with pytest.raises(ValueError, match="unknown scheme 'mysql'"):
        asyncpoll.TaskPoller("https://x/{job_id}", store="mysql://x")
    with pytest.raises(TypeError, match="named must be a mapping"):
        asyncpoll.TaskPoller("https://x/{job_id}", named=[1])


async def test_closing_with_an_exception_leaves_the_jobs_in_the_store(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """A deploy's SIGTERM (a cancelled block) must not cancel stored jobs: the handles
    resolve CANCELLED here and the next poller resumes the jobs."""
    api.script("d", job("running"), job("running"), job("done", result="after"))
    store = MemoryStore()
    seen: list[str] = []
    with pytest.raises(KeyboardInterrupt):
        async with poller(api, store, on_done=lambda h: seen.append(h.job_id)) as first:
            handle = first.add("d")
            await anyio.sleep(0.5)
            raise KeyboardInterrupt
    assert isinstance(handle.exception(), asyncpoll.JobCancelled)
    assert "the job stays in the store" in str(handle.exception())
    assert seen == []  # the poller's on_done is for outcomes, not for leaving
    assert store.get("d").state == "running"  # type: ignore[union-attr]
    assert "1 jobs in flight left in the store" in caplog.text
    async with poller(api, store) as second:
        assert await second.handle("d") == "after"
    assert store.get("d").state == "succeeded"  # type: ignore[union-attr]
    assert len(api.times("d")) == 3


async def test_an_explicit_cancel_is_stored(api: FakeJobAPI) -> None:
    api.script("c", job("running"))
    store = MemoryStore()
    async with poller(api, store) as p:
        p.add("c").cancel()
    assert store.get("c").state == "cancelled"  # type: ignore[union-attr]
    async with poller(api, store) as again:
        assert again.in_flight() == []
        assert isinstance(again.handle("c").exception(), asyncpoll.JobCancelled)


async def test_a_sqlite_store_resumes_on_asyncio_and_trio(api: FakeJobAPI, tmp_path: Any) -> None:
    """The SQLite store's writes run in worker threads (anyio.to_thread): the same path
    on both event loops, in virtual time."""
    api.script("s", job("running"), job("running"), job("done", result={"ok": True}))
    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    with pytest.raises(KeyboardInterrupt):
        async with poller(api, url, flush_interval=0.01) as first:
            first.add("s", metadata={"n": 1})
            await anyio.sleep(1.5)
            raise KeyboardInterrupt
    async with poller(api, url) as second:
        handle = second.handle("s")
        assert handle.attempts == 2 and handle.metadata == {"n": 1}
        assert await handle == {"ok": True}
    async with poller(api, url) as third:
        assert third.in_flight() == []
        assert third.handle("s").result() == {"ok": True}
    assert len(api.times("s")) == 3


async def test_an_outcome_with_on_done_keeps_its_result_whatever_was_queued_before(
    api: FakeJobAPI,
) -> None:
    """A live change queued before the last poll is written as live, and the outcome
    (written after on_done ran) with its result."""
    api.script("q", job("running"), job("done", result={"r": 1}))
    store = MemoryStore()
    async with poller(api, store, flush_interval=5.0, on_done=lambda h: None) as p:
        assert await p.add("q") == {"r": 1}
    stored = doc(store, "q")
    assert (stored["state"], stored["result"]) == ("succeeded", {"r": 1})


async def test_adding_a_finished_id_again_stores_the_new_job(api: FakeJobAPI) -> None:
    api.script("a", job("done", result="first"))
    store = MemoryStore()
    async with poller(api, store, flush_interval=5.0, on_done=lambda h: None) as p:
        assert await p.add("a") == "first"
        api.script("a", job("running"))
        again = p.add("a")  # the first outcome not written yet
        assert store.get("a").state == "pending"  # type: ignore[union-attr]
        await anyio.sleep(6.0)
        assert store.get("a").state == "running"  # type: ignore[union-attr]
        again.cancel()
    assert store.get("a").state == "cancelled"  # type: ignore[union-attr]


async def test_a_create_answer_that_finishes_the_job_stores_its_result(api: FakeJobAPI) -> None:
    api.router.post("/jobs").mock(
        return_value=httpx.Response(
            201,
            json={"id": "n1", "status": "succeeded", "result": {"answer": 42}},
            headers={"Location": "/jobs/n1"},
        )
    )
    store = MemoryStore()
    async with poller(api, store, on_done=lambda h: None) as p:
        handle = await p.submit("/jobs", json={})
        assert await handle == {"answer": 42}
    assert doc(store, "n1")["result"] == {"answer": 42}


async def test_a_resume_token_cannot_send_a_resubmit_elsewhere(api: FakeJobAPI) -> None:
    api.script("a", job("running"))
    async with poller(api, None, headers={"Authorization": "Bearer s"}) as p:
        outer = json.loads(p.add("a").resume_token())
        p.handle("a").cancel()
        outer["job"].update(
            action="resubmit",
            resubmits_left=1,
            create={"method": "POST", "url": "https://evil.example/steal", "json": None,
                    "data": None, "content": None, "headers": {}, "idempotency_key": None},
        )  # fmt: skip
        evil = re.escape("create.url 'https://evil.example/steal' is not")
        with pytest.raises(TokenError, match=evil):
            p.resume(json.dumps(outer))
        outer["job"]["create"] = None
        with pytest.raises(TokenError, match="action 'resubmit' needs a 'create' request"):
            p.resume(json.dumps(outer), trusted=True)
        outer["job"].update(action="poll", cancel_method="DEL ETE")
        with pytest.raises(TokenError, match="'cancel_method' must be an HTTP method"):
            p.resume(json.dumps(outer))
        outer["job"].update(cancel_method=None, timeout=-5)
        with pytest.raises(TokenError, match="'timeout' must be > 0 seconds or null"):
            p.resume(json.dumps(outer))


async def test_a_token_never_carries_a_create_url_credential(api: FakeJobAPI) -> None:
    api.router.post("/jobs").mock(
        return_value=httpx.Response(202, json={"id": "k1"}, headers={"Location": "/jobs/k1"})
    )
    api.script("k1", job("running"))
    async with poller(api, None) as p:
        handle = await p.submit("https://api.test/jobs?api_key=SECRET123", json={})
        with pytest.raises(
            ValueError, match=r"carries credentials \(https://api.test/jobs\?api_key=\[redacted\]\)"
        ):
            handle.resume_token()
        handle.cancel()
