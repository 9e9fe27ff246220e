"""Creating and cancelling jobs: refused creates sent again, idempotency keys,
``submit_many()``, and the remote cancel request as configured. In virtual time."""

from __future__ import annotations

import json
import logging
import random
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI, job, rel

import asyncpoll

pytestmark = pytest.mark.anyio


def poller(api: FakeJobAPI, **options: Any) -> asyncpoll.TaskPoller:
    options.setdefault("schedule", asyncpoll.fixed(1.0))
    options.setdefault("retry_schedule", asyncpoll.fixed(2.0))
    return asyncpoll.TaskPoller("/jobs/{job_id}", client=api.client(), **options)


class Creates:
    """A scripted create endpoint: successive POSTs get successive replies (the last
    repeats); each request is kept with its virtual time."""

    def __init__(self, api: FakeJobAPI, *replies: httpx.Response | Exception) -> None:
        self.replies = list(replies)
        self.sent: list[tuple[float, httpx.Request]] = []
        api.router.post("/render").mock(side_effect=self._reply)

    def _reply(self, request: httpx.Request) -> httpx.Response:
        self.sent.append((anyio.current_time(), request))
        reply = self.replies[min(len(self.sent), len(self.replies)) - 1]
        if isinstance(reply, Exception):
            raise reply
        return reply

    def times(self, t0: float) -> list[float]:
        return rel([t for t, _ in self.sent], t0)

    def keys(self) -> list[str | None]:
        return [request.headers.get("idempotency-key") for _, request in self.sent]


CREATED = httpx.Response(202, headers={"Location": "/jobs/j1"})


# ---------------------------------------------------------------- refused creates


@pytest.mark.parametrize(
    "refusal",
    [
        httpx.Response(429, headers={"Retry-After": "7"}),
        httpx.Response(503, headers={"Retry-After": "7"}),
    ],
    ids=["429", "503+Retry-After"],
)
async def test_a_refused_create_is_sent_again_after_the_hint(
    api: FakeJobAPI, refusal: httpx.Response, caplog: pytest.LogCaptureFixture
) -> None:
    """A 429, or a 503 with Retry-After, is sent again once the hint has passed."""
    caplog.set_level(logging.INFO, logger="asyncpoll")
    creates = Creates(api, refusal, CREATED)
    api.script("j1", job("done", result=3))
    t0 = anyio.current_time()
    async with poller(api) as p:
        handle = await p.submit("/render", json={"scene": 1})
        assert await handle == 3
    assert creates.times(t0) == [0, 7]
    assert [request.content for _, request in creates.sent] == [b'{"scene":1}'] * 2
    assert [r.getMessage() for r in caplog.records if "create" in r.getMessage()] == [
        f"the create request to https://api.test/render was refused with HTTP "
        f"{refusal.status_code}; sending it again after 7 s"
    ]


async def test_a_refused_create_shares_the_hosts_cool_down(api: FakeJobAPI) -> None:
    """The 429's pause holds every request to the host: a poll due meanwhile waits too,
    and the host's rate, halved by the 429, spaces the two once the pause is over."""
    creates = Creates(api, httpx.Response(429, headers={"Retry-After": "10"}), CREATED)
    api.script("other", job("running"), job("done"))
    api.script("j1", job("done"))
    async with poller(api, schedule=asyncpoll.fixed(4.0)) as p:
        t0 = anyio.current_time()
        other = p.add("other")  # polled at 0, then due at 4: inside the cool-down
        await anyio.sleep(1.0)
        handle = await p.submit("/render")
        await handle
        await other
    (first, create), (start, poll) = creates.times(t0), rel(api.times("other"), t0)
    assert (first, start) == (1, 0)
    assert sorted([create, poll]) == [11, 13]


async def test_a_create_refused_past_create_timeout_raises(api: FakeJobAPI) -> None:
    """A hint longer than create_timeout allows: SubmitError once the deadline comes,
    naming the refusal; nothing else is sent."""
    creates = Creates(api, httpx.Response(429, headers={"Retry-After": "100"}))
    t0 = anyio.current_time()
    async with poller(api, create_timeout=60.0) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render")
        assert anyio.current_time() - t0 == pytest.approx(60.0)
    assert creates.times(t0) == [0]
    assert str(info.value) == (
        "https://api.test/render: the host is cooling down; the create request could not "
        "be sent within create_timeout=60 s (attempt 2)"
    )


async def test_a_create_refused_every_time_stops_at_the_attempt_cap(api: FakeJobAPI) -> None:
    """A server that keeps answering 429 with Retry-After: 0 gets at most 20 sends."""
    creates = Creates(api, httpx.Response(429, headers={"Retry-After": "0"}, json={"e": 1}))
    async with poller(api, request_timeout=None) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render")
    assert len(creates.sent) == 20
    assert str(info.value) == (
        "https://api.test/render: the create request was refused: HTTP 429; the server asks "
        """to wait 0 s; received '{"e":1}' (attempt 20)"""
    )
    assert info.value.http_status == 429


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, json={"error": "db down"}),
        httpx.Response(503),
        httpx.ConnectError("refused"),
    ],
    ids=["500", "503-no-hint", "connect-error"],
)
async def test_a_create_that_may_have_made_a_job_is_not_sent_again(
    api: FakeJobAPI, failure: httpx.Response | Exception
) -> None:
    """Without an idempotency key a 5xx or a lost connection is a SubmitError at once:
    the job may exist, and a second send could make another."""
    creates = Creates(api, failure, CREATED)
    async with poller(api) as p:
        with pytest.raises(asyncpoll.SubmitError):
            await p.submit("/render")
    assert len(creates.sent) == 1


# ---------------------------------------------------------------- idempotency keys


@pytest.mark.parametrize(
    "failure",
    [httpx.Response(500, json={"error": "db down"}), httpx.ConnectError("refused")],
    ids=["500", "connect-error"],
)
async def test_with_a_key_a_failed_create_is_sent_again_with_the_same_key(
    api: FakeJobAPI, failure: httpx.Response | Exception
) -> None:
    """idempotency_key=True: one UUID per job, repeated on each retry of its create,
    on the retry schedule."""
    creates = Creates(api, failure, failure, CREATED)
    api.script("j1", job("done", result="ok"))
    t0 = anyio.current_time()
    async with poller(api) as p:
        handle = await p.submit("/render", json={}, idempotency_key=True)
        assert await handle == "ok"
    keys = creates.keys()
    assert keys[0] is not None and len(keys[0]) == 36
    assert keys == [keys[0]] * 3
    assert creates.times(t0) == [0, 2, 4]


async def test_retries_with_a_key_stop_at_max_errors(api: FakeJobAPI) -> None:
    """Transient failures of a keyed create count against max_errors."""
    creates = Creates(api, httpx.Response(502, text="bad gateway"))
    async with poller(api, max_errors=3) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render", idempotency_key="order-77")
    assert creates.keys() == ["order-77"] * 3
    assert str(info.value) == (
        "https://api.test/render: the create request was refused: HTTP 502; received "
        "'bad gateway' (attempt 3)"
    )


async def test_each_job_gets_its_own_key_and_each_resubmit_its_own(api: FakeJobAPI) -> None:
    """The poller's idempotency_key=True: a new key per submit(); a resubmit asks for a
    new job, so it sends a key of its own derived from the first."""
    sent: list[str] = []

    def create(request: httpx.Request) -> httpx.Response:
        key = request.headers["idempotency-key"]
        sent.append(key)
        job_id = "a" if key == sent[0] else "r" if key == f"{sent[0]}-1" else "b"
        return httpx.Response(202, headers={"Location": f"/jobs/{job_id}"})

    api.router.post("/render").mock(side_effect=create)
    api.script("a", job("failed", error="gpu lost"))
    api.script("r", job("done", result=1))
    api.script("b", job("done", result=2))
    async with poller(api, idempotency_key=True) as p:
        first = await p.submit("/render", resubmit=1)
        second = await p.submit("/render")
        assert await p.gather(first, second) == [1, 2]
    assert len(sent) == 3
    assert sent[0] != sent[1] and len(sent[0]) == len(sent[1]) == 36
    assert sent[2] == f"{sent[0]}-1"
    assert [s.job_id for s in first.submissions] == ["a", "r"]


@pytest.mark.parametrize(
    ("key", "error"),
    [
        ("", "idempotency_key must be True, False or a non-empty string"),
        (3, "idempotency_key must be True, False or a string, got 3"),
    ],
)
async def test_a_bad_idempotency_key_is_refused_before_sending(
    api: FakeJobAPI, key: Any, error: str
) -> None:
    creates = Creates(api, CREATED)
    async with poller(api) as p:
        with pytest.raises((TypeError, ValueError), match=error):
            await p.submit("/render", idempotency_key=key)
    assert creates.sent == []


async def test_bad_add_options_are_refused_before_a_job_is_made(api: FakeJobAPI) -> None:
    """submit()'s add() options are checked before the create request: no orphan job."""
    creates = Creates(api, CREATED)
    async with poller(api) as p:
        with pytest.raises(ValueError, match="timeout must be"):
            await p.submit("/render", timeout=-1)
        with pytest.raises(TypeError, match=r"unexpected keyword arguments \['tiemout'\]"):
            await p.submit("/render", tiemout=5)
        with pytest.raises(TypeError, match="cancel_json must be JSON-serialisable"):
            await p.submit("/render", cancel_json={"x": object()})
    assert creates.sent == []


# ---------------------------------------------------------------- submit_many


async def test_submit_many_creates_under_the_rate_limit_in_order(api: FakeJobAPI) -> None:
    """Ten creates at 2 requests/s with no burst, handles in payload order."""
    times: list[float] = []

    def create(request: httpx.Request) -> httpx.Response:
        times.append(anyio.current_time())
        n = json.loads(request.content)["n"]
        return httpx.Response(201, json={"id": f"job-{n}"})

    api.router.post("/render").mock(side_effect=create)
    for n in range(10):
        api.script(f"job-{n}", job("done", result=n * n))
    t0 = anyio.current_time()
    async with poller(
        api, rate_limit=asyncpoll.RateLimit(2, burst=1), schedule=asyncpoll.fixed(600.0)
    ) as p:
        handles = await p.submit_many("/render", [{"n": n} for n in range(10)])
        assert [h.job_id for h in handles] == [f"job-{n}" for n in range(10)]
        assert await p.gather(*handles) == [n * n for n in range(10)]
    # Creates and status polls share the one limit: every request on its own 0.5 s slot,
    # none lost. Which request takes a slot depends on the event loop's task order (a
    # job created at 0 may be polled at 1.0, before the third create), so the check is
    # on all twenty requests together, and on the creates' order.
    polls = [t for t, _ in api.calls]
    assert sorted(rel(times + polls, t0)) == [n * 0.5 for n in range(20)]
    assert times == sorted(times)


async def test_submit_many_keeps_going_past_a_failed_create(api: FakeJobAPI) -> None:
    """A refused create does not stop the others; it is raised after all were tried,
    or returned in its place; the created jobs are polled either way."""

    def create(request: httpx.Request) -> httpx.Response:
        n = json.loads(request.content)["n"]
        if n == 1:
            return httpx.Response(400, json={"error": "bad scene"})
        return httpx.Response(201, json={"id": f"job-{n}"})

    api.router.post("/render").mock(side_effect=create)
    for n in (0, 2):
        api.script(f"job-{n}", job("done", result=n))
    async with poller(api) as p:
        results = await p.submit_many(
            "/render", [{"n": 0}, {"n": 1}, {"n": 2}], return_exceptions=True
        )
        assert isinstance(results[1], asyncpoll.SubmitError)
        assert results[1].http_status == 400
        assert await p.gather(results[0], results[2]) == [0, 2]
    again = FakeJobAPI()
    again.router.post("/render").mock(side_effect=create)
    for n in (0, 2):
        again.script(f"job-{n}", job("running"), job("done", result=n))
    async with poller(again) as p:
        with pytest.raises(asyncpoll.SubmitError, match="HTTP 400"):
            await p.submit_many("/render", [{"n": 0}, {"n": 1}, {"n": 2}])
        created = sorted(p.in_flight(), key=lambda h: h.job_id)
        assert [h.job_id for h in created] == ["job-0", "job-2"]
        assert await p.gather(*created) == [0, 2]


async def test_submit_many_with_nothing_to_create(api: FakeJobAPI) -> None:
    async with poller(api) as p:
        assert await p.submit_many("/render", []) == []


# ---------------------------------------------------------------- remote cancel


async def test_the_cancel_request_is_configured_per_poller(api: FakeJobAPI) -> None:
    """cancel_method, cancel_url and cancel_json of the poller make the request."""
    stop = api.router.post("/jobs/j1/set_state").mock(return_value=httpx.Response(201, json={}))
    api.script("j1", job("running"), job("running"), job("cancelled"))
    async with poller(
        api,
        cancel_method="post",
        cancel_url="/jobs/{job_id}/set_state",
        cancel_json={"state": {"type": "CANCELLING"}},
    ) as p:
        handle = p.add("j1")
        await anyio.sleep(0.5)
        assert await handle.cancel_remote() is True
        with pytest.raises(asyncpoll.JobCancelled):
            await handle
    assert stop.call_count == 1
    sent = stop.calls[0].request
    assert (sent.method, json.loads(sent.content)) == ("POST", {"state": {"type": "CANCELLING"}})


async def test_the_cancel_request_is_configured_per_job(api: FakeJobAPI) -> None:
    """add()'s cancel_method/cancel_url/cancel_json override the poller's; no body by
    default."""
    stop = api.router.put("/jobs/j1/stop").mock(return_value=httpx.Response(200, json={}))
    cancel = api.router.post("/jobs/j2/cancel").mock(return_value=httpx.Response(202))
    api.script("j1", job("running"), job("Stopped"))
    api.script("j2", job("running"), job("cancelling"))
    async with poller(api, cancel_json={"poller": True}) as p:
        one = p.add("j1", cancel_url="/jobs/j1/stop", cancel_method="PUT", cancel_json=None)
        two = p.add("j2", cancel_url="/jobs/j2/cancel", cancel_method="POST")
        await anyio.sleep(0.5)
        assert await one.cancel_remote() is True
        assert await two.cancel_remote() is True
    assert stop.calls[0].request.content == b""
    assert json.loads(cancel.calls[0].request.content) == {"poller": True}
    assert (one.state, two.state) == (asyncpoll.JobState.CANCELLED,) * 2


async def test_a_redirect_answering_a_post_cancel_is_accepted(api: FakeJobAPI) -> None:
    """Jenkins answers POST .../stop with 302 Found: accepted, as any 302/303 to a POST."""
    stop = api.router.post("/jobs/j1/stop").mock(
        return_value=httpx.Response(302, headers={"Location": "/jobs/j1"})
    )
    api.script("j1", job("running"), job("running"))
    async with poller(api, cancel_method="POST", cancel_url="/jobs/{job_id}/stop") as p:
        handle = p.add("j1")
        await anyio.sleep(0.5)
        assert await handle.cancel_remote() is True
    assert stop.call_count == 1
    assert handle.state is asyncpoll.JobState.CANCELLED


async def test_a_bad_cancel_method_is_refused(api: FakeJobAPI) -> None:
    async with poller(api) as p:
        with pytest.raises(ValueError, match="cancel_method must be an HTTP method"):
            p.add("j", cancel_method="PO ST")
    with pytest.raises(TypeError, match="cancel_json must be JSON-serialisable"):
        poller(api, cancel_json={1j})


# ---------------------------------------------------------------- create answers


@pytest.mark.parametrize(
    ("answer", "polls"),
    [
        ({"task-id": "j1", "state": "SUCCESS"}, 1),  # Flower: the result is in the status only
        ({"task-id": "j1", "state": "FAILURE"}, 1),  # ... and so is the traceback
        ({"task-id": "j1", "state": "SUCCESS", "result": 5}, 0),
        ({"task-id": "j1", "state": "FAILURE", "traceback": "ValueError: boom"}, 0),
        ({"task-id": "j1", "state": "REVOKED"}, 0),
    ],
)
async def test_a_create_answer_settles_the_job_only_when_it_says_how_it_ended(
    api: FakeJobAPI, answer: dict[str, Any], polls: int
) -> None:
    """A terminal state in the create answer ends the job only with its result or its
    error text; a bare SUCCESS or FAILURE is left to the first poll."""
    api.router.post("/render").mock(return_value=httpx.Response(200, json=answer))
    final = {
        "SUCCESS": job("SUCCESS", result=5),
        "FAILURE": job("FAILURE", traceback="ValueError: boom"),
    }
    api.script("j1", final.get(answer["state"], job("REVOKED")))
    async with poller(api) as p:
        handle = await p.submit("/render")
        outcome = await asyncpoll_outcome(handle)
    assert len(api.calls) == polls
    assert (
        outcome
        == {
            "SUCCESS": 5,
            "FAILURE": "job 'j1' failed: ValueError: boom",
            "REVOKED": "job 'j1' was cancelled: cancelled on the server: state 'REVOKED'",
        }[answer["state"]]
    )


async def asyncpoll_outcome(handle: asyncpoll.JobHandle) -> Any:
    """What awaiting the handle gives, or the message of what it raises."""
    try:
        return await handle
    except asyncpoll.AsyncPollError as exc:
        return str(exc)


def test_submit_passes_on_every_add_option_but_check() -> None:
    """submit()'s list of add() options is add()'s keyword options, check= aside."""
    import inspect

    from asyncpoll._poller import _ADD_OPTIONS

    keywords = {
        name
        for name, parameter in inspect.signature(asyncpoll.TaskPoller.add).parameters.items()
        if parameter.kind is inspect.Parameter.KEYWORD_ONLY
    }
    assert keywords - {"check"} == _ADD_OPTIONS


# ---------------------------------------------------------------- found in review


async def test_submit_many_queues_for_the_rate_limit_without_a_deadline(api: FakeJobAPI) -> None:
    """200 creates at 2/s take 100 s: the time a create waits for its slot does not count
    against create_timeout (30 s by default), so none fails."""

    def create(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201, json={"id": f"job-{json.loads(request.content)['n']}"})

    api.router.post("/render").mock(side_effect=create)
    async with poller(
        api,
        rate_limit=asyncpoll.RateLimit(2, burst=1),
        schedule=asyncpoll.fixed(900.0, first=900.0),
    ) as p:
        t0 = anyio.current_time()
        handles = await p.submit_many("/render", [{"n": n} for n in range(200)])
        assert anyio.current_time() - t0 == pytest.approx(99.5)
        assert [h.job_id for h in handles] == [f"job-{n}" for n in range(200)]
        for handle in handles:
            handle.cancel()


@pytest.mark.parametrize("where", ["argument", "headers"])
async def test_submit_many_gives_each_payload_its_own_key(api: FakeJobAPI, where: str) -> None:
    """A text key (or one in headers) becomes one key per payload: the same key for all
    would get every create answered with the first job."""
    sent: list[str] = []

    def create(request: httpx.Request) -> httpx.Response:
        sent.append(request.headers["idempotency-key"])
        return httpx.Response(201, json={"id": f"job-{len(sent)}"})

    api.router.post("/render").mock(side_effect=create)
    options: dict[str, Any] = (
        {"idempotency_key": "batch-7"}
        if where == "argument"
        else {"headers": {"idempotency-key": "batch-7"}}
    )
    async with poller(api) as p:
        handles = await p.submit_many("/render", [{}, {}, {}], **options)
        assert len({h.job_id for h in handles}) == 3
        for handle in handles:
            handle.cancel()
    assert sorted(sent) == ["batch-7-0", "batch-7-1", "batch-7-2"]


class NegativeFirst:
    """A schedule whose first delay is negative."""

    def delay(self, n: int, rng: random.Random) -> float:
        return -1.0 if n == 0 else 1.0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"schedule": NegativeFirst()}, "returned -1.0"),
        ({"cancel_url": 123}, "cancel_url must be a string"),
        ({"metadata": 5}, "metadata must be a mapping"),
    ],
)
async def test_more_bad_add_options_are_refused_before_the_create(
    api: FakeJobAPI, options: dict[str, Any], error: str
) -> None:
    creates = Creates(api, CREATED)
    async with poller(api) as p:
        with pytest.raises((TypeError, ValueError), match=error):
            await p.submit("/render", **options)
    assert creates.sent == []


async def test_a_redirect_to_another_origin_is_not_an_accepted_cancel(api: FakeJobAPI) -> None:
    """A 302 to a login page on another origin refuses the cancel; the job is polled on."""
    api.router.post("/jobs/j1/stop").mock(
        return_value=httpx.Response(302, headers={"Location": "https://sso.test/login"})
    )
    api.script("j1", job("running"), job("running"), job("done", result=1))
    async with poller(api, cancel_method="POST", cancel_url="/jobs/{job_id}/stop") as p:
        handle = p.add("j1")
        await anyio.sleep(0.5)
        with pytest.raises(asyncpoll.PollError, match="the server refused to cancel: HTTP 302"):
            await handle.cancel_remote()
        assert await handle == 1


async def test_a_create_with_no_answer_names_request_timeout(api: FakeJobAPI) -> None:
    """The first send of a create is bounded by request_timeout, and says so."""

    async def never(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(3600)
        return CREATED

    api.router.post("/render").mock(side_effect=never)
    async with poller(api, request_timeout=5.0) as p:
        with pytest.raises(asyncpoll.SubmitError) as info:
            await p.submit("/render")
    assert str(info.value) == (
        "https://api.test/render: no response to the create request within request_timeout=5 s"
    )


async def test_a_jsonreader_create_answer_without_its_result_is_left_to_the_poll(
    api: FakeJobAPI,
) -> None:
    """A success in the create answer with no result under the reader's path: polled."""
    api.router.post("/render").mock(
        return_value=httpx.Response(200, json={"task-id": "j1", "state": "SUCCESS"})
    )
    api.script("j1", httpx.Response(200, json={"state": "SUCCESS", "result": 42}))
    reader = asyncpoll.JsonReader(state="state", result="result")
    async with poller(api, reader=reader) as p:
        handle = await p.submit("/render")
        assert await handle == 42
    assert len(api.calls) == 1


async def test_a_cancel_that_a_poll_sees_take_effect_first_returns_true(api: FakeJobAPI) -> None:
    """The cancel is accepted slowly; meanwhile a regular poll reads CANCELLED: the cancel
    took effect, so cancel_remote() returns True (the reason is the server's)."""

    async def slow_stop(request: httpx.Request) -> httpx.Response:
        await anyio.sleep(3.0)
        return httpx.Response(202)

    api.router.post("/jobs/j1/stop").mock(side_effect=slow_stop)
    api.script("j1", job("running"), job("REVOKED"))
    async with poller(api, cancel_method="POST", cancel_url="/jobs/{job_id}/stop") as p:
        handle = p.add("j1")
        await anyio.sleep(0.5)
        assert await handle.cancel_remote() is True
    assert str(handle.exception()) == (
        "job 'j1' was cancelled: cancelled on the server: status 'REVOKED'"
    )
    # Polls at 0 and 1; no confirming read at 3.5: the job had finished by then.
    assert api.times("j1") == [0.0, 1.0]
