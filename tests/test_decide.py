"""Tests for ``asyncpoll._decide``: the pure decision, with no event loop and no clock."""

from __future__ import annotations

import math
import random

import pytest

import asyncpoll
from asyncpoll import JobState, Response, Status
from asyncpoll._decide import MAX_REDIRECTS, Verdict, decide, verdict
from asyncpoll._outcomes import Again, Answered, Checked, CutShort, Failed, Finish, Rekey, Rules
from asyncpoll._policy import Pacing
from asyncpoll._record import JobRecord
from asyncpoll._submit import CreateRequest

URL = "https://api.test/jobs/a"


def rules(**changes: object) -> Rules:
    """Rules with fixed one-second retries and no jitter."""
    options: dict[str, object] = {
        "reader": asyncpoll.DefaultReader(),
        "claims": None,
        "retry_schedule": asyncpoll.fixed(1.0),
        "pacing": Pacing(),
        "max_errors": 3,
        "allowed_origins": frozenset(),
        "rng": random.Random(0),
    }
    options.update(changes)
    return Rules(**options)  # type: ignore[arg-type]


def record(**changes: object) -> JobRecord:
    """A status-polled job at ``URL`` polled every 2 s."""
    rec = JobRecord("a", URL, asyncpoll.fixed(2.0), None, None, target=URL, origin=URL)
    rec.attempts = 1  # the engine counts a request before deciding on its outcome
    for name, value in changes.items():
        setattr(rec, name, value)
    return rec


def answer(code: int, body: bytes = b"", **headers: str) -> Answered:
    return Answered(Response(code, headers, body, URL, URL))


@pytest.mark.parametrize(
    ("code", "hint", "expected"),
    [
        (200, None, Verdict.READ),
        (204, 1.0, Verdict.READ),
        (429, None, Verdict.THROTTLED),
        (503, 2.0, Verdict.THROTTLED),
        (503, None, Verdict.TRANSIENT),
        (500, 2.0, Verdict.TRANSIENT),
        (408, None, Verdict.TRANSIENT),
        (404, None, Verdict.FATAL),
        (302, None, Verdict.FATAL),
    ],
)
def test_verdict_is_one_table_for_every_request(
    code: int, hint: float | None, expected: Verdict
) -> None:
    """verdict() sorts a status code and hint the same whichever request got it."""
    assert verdict(code, hint) is expected


def test_a_live_status_polls_again_on_the_schedule() -> None:
    """A running status reschedules at now + the schedule's delay, marked progressed."""
    rec = record()
    decision = decide(rec, answer(200, b'{"status": "running"}'), 10.0, rules())
    assert decision == Again(12.0, "poll", progressed=True, stalled=False)
    assert rec.state is JobState.RUNNING
    assert decide(rec, answer(200, b'{"status": "running"}'), 12.0, rules()) == Again(14.0)


def test_a_hint_above_the_schedule_wins() -> None:
    """A Retry-After longer than the schedule's delay sets the next poll."""
    decision = decide(record(), Answered(answer(200, b'{"status":"running"}')[0], 5.0), 0, rules())
    assert isinstance(decision, Again) and decision.due == 5.0


@pytest.mark.parametrize("action", ["poll", "fetch", "resubmit"])
def test_a_503_with_a_hint_is_back_pressure_for_every_action(action: str) -> None:
    """A 503 with a hint counts as throttled on a poll, a fetch and a resubmit alike."""
    rec = record(
        action=action,
        fetch_url=URL + "/result",
        create=CreateRequest("POST", "https://api.test/jobs", None, None, None, {}),
    )
    decision = decide(rec, Answered(answer(503)[0], 4.0), 0.0, rules(max_errors=1))
    assert decision == Again(4.0, "throttled")
    assert (rec.errors, rec.throttles) == (0, 1)


def test_transient_failures_end_the_job_at_max_errors() -> None:
    """The max_errors-th transient failure in a row ends the job ERRORED, naming it."""
    rec = record()
    assert decide(rec, answer(500), 0.0, rules()) == Again(1.0, "transient")
    assert decide(rec, Failed(ConnectionError("reset")), 1.0, rules()) == Again(2.0, "transient")
    final = decide(rec, CutShort(30.0), 2.0, rules())
    assert isinstance(final, Finish) and final.state is JobState.ERRORED
    assert str(final.error) == (
        "job 'a' (https://api.test/jobs/a): 3 transient failures in a row (max_errors=3); "
        "the last: TimeoutError: no complete response within request_timeout=30 s"
    )


def test_a_status_read_resets_the_error_streak() -> None:
    """A status read between failures starts the count again."""
    rec = record()
    decide(rec, answer(500), 0.0, rules())
    decide(rec, answer(200, b'{"status": "running"}'), 1.0, rules())
    assert rec.errors == 0


def test_a_fatal_failure_ends_the_job_at_once() -> None:
    """A 404 ends the job with a PollError saying why."""
    final = decide(record(), answer(404, b"gone"), 0.0, rules())
    assert isinstance(final, Finish) and final.state is JobState.ERRORED
    assert "HTTP 404 (no such job at this URL); received 'gone'" in str(final.error)


def test_redirects_are_followed_up_to_the_cap() -> None:
    """A redirect moves the job's target and polls at once; one more than the cap ends it."""
    rec = record()
    moved = answer(302, Location="/jobs/b")
    for _ in range(MAX_REDIRECTS):
        assert decide(rec, moved, 0.0, rules()) == Again(0.0, "redirect")
    assert rec.target == "https://api.test/jobs/b"
    final = decide(rec, moved, 0.0, rules())
    assert isinstance(final, Finish)
    assert "more than 5 redirects in a row" in str(final.error)


def test_a_succeeded_status_with_a_link_fetches_it_next() -> None:
    """fetch_result turns a result link into a fetch, then the document into the result."""
    rec = record(fetch_result=True)
    body = b'{"status": "succeeded", "resultUrl": "/results/a"}'
    assert decide(rec, answer(200, body), 3.0, rules()) == Again(3.0, "fetch")
    assert (rec.action, rec.fetch_url) == ("fetch", "https://api.test/results/a")
    assert decide(rec, answer(200, b'{"pages": 2}'), 4.0, rules()) == Finish(
        JobState.SUCCEEDED, result={"pages": 2}
    )


def test_a_failed_job_with_resubmits_left_is_created_again() -> None:
    """A FAILED status with resubmits left asks for the create request again; its answer
    re-keys the job."""
    create = CreateRequest("POST", "https://api.test/jobs", None, None, None, {})
    first = asyncpoll.Submission("a", URL, 202)
    rec = record(create=create, resubmits_left=1, submissions=(first,))
    assert decide(rec, answer(200, b'{"status": "failed"}'), 0.0, rules()) == Again(1.0, "resubmit")
    assert (rec.action, rec.resubmits_left) == ("resubmit", 0)
    created = Response(202, {"location": "/jobs/b"}, b"", "", "https://api.test/jobs")
    assert decide(rec, Answered(created), 1.0, rules()) == Rekey(
        "b",
        "https://api.test/jobs/b",
        1.0,
        202,
        False,  # the new job is polled at once
    )


def test_a_checked_status_stalls_after_stall_timeout() -> None:
    """An unchanged status past stall_timeout is reported once, or ends the job."""
    running = Checked(Status(JobState.RUNNING, progress=0.5))
    rec = record(stall_timeout=10.0)
    assert decide(rec, running, 0.0, rules()).progressed  # type: ignore[union-attr]
    assert decide(rec, running, 9.0, rules()) == Again(11.0)
    assert decide(rec, running, 11.0, rules()) == Again(13.0, stalled=True)
    assert decide(rec, running, 13.0, rules()) == Again(15.0)  # reported once
    failing = record(stall_timeout=10.0)
    decide(failing, running, 0.0, rules())
    final = decide(failing, running, 10.0, rules(fail_on_stall=True))
    assert isinstance(final, Finish) and final.stalled
    assert final.state is JobState.TIMED_OUT


def test_an_answer_naming_another_followed_job_is_transient() -> None:
    """A body whose id names another job the poller follows is not this job's answer."""
    body = b'{"id": "b", "status": "succeeded"}'
    follows = {"a", "b"}.__contains__
    assert decide(record(), answer(200, body), 0.0, rules(follows=follows)) == Again(
        1.0, "transient"
    )
    assert isinstance(decide(record(), answer(200, body), 0.0, rules()), Finish)
    parent = b'{"id": "a", "job_id": "b", "status": "succeeded"}'  # b named beside a
    assert isinstance(decide(record(), answer(200, parent), 0.0, rules(follows=follows)), Finish)


def test_decide_reads_no_clock() -> None:
    """decide() takes its time as an argument: the same inputs give the same decision."""
    first = decide(record(), answer(200, b'{"status": "running"}'), math.pi, rules())
    again = decide(record(), answer(200, b'{"status": "running"}'), math.pi, rules())
    assert first == again == Again(math.pi + 2.0, "poll", progressed=True)
