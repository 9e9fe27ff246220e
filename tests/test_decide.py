"""Tests for ``asyncpoll._decide``: the pure decision, with no event loop and no clock."""

from __future__ import annotations

import json
import math
import random

import pytest

import asyncpoll
from asyncpoll import JobState, Response, Status
from asyncpoll._decide import MAX_REDIRECTS, Verdict, decide, describe, locate, on_status, verdict
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


# ------------------------------------------------------- exact decisions, field by field


class Recorder:
    """A schedule that notes each ``delay(n, rng)`` call and waits ``base + n`` seconds."""

    def __init__(self, base: float = 1.0) -> None:
        self.base = base
        self.calls: list[tuple[int, random.Random]] = []

    def delay(self, n: int, rng: random.Random) -> float:
        self.calls.append((n, rng))
        return self.base + n


def error_of(decision: object) -> asyncpoll.PollError:
    """The PollError an ERRORED ``Finish`` carries."""
    assert isinstance(decision, Finish) and decision.state is JobState.ERRORED
    assert isinstance(decision.error, asyncpoll.PollError)
    return decision.error


def fields(error: asyncpoll.PollError) -> tuple[object, ...]:
    return (error.message, error.job_id, error.url, error.http_status, error.status)


def response(code: int, body: bytes = b"", request_url: str = URL, **headers: str) -> Response:
    return Response(code, headers, body, request_url, request_url)


def test_verdict_of_the_edges_of_the_2xx_range() -> None:
    """299 is read; 300 is no answer and no failure to retry: it ends the job."""
    assert verdict(299, None) is Verdict.READ
    assert verdict(300, None) is Verdict.FATAL
    assert verdict(300, 5.0) is Verdict.FATAL
    assert verdict(199, None) is Verdict.FATAL


def test_a_cut_short_request_is_retried_at_now_plus_the_retry_delay() -> None:
    """A request cut short at request_timeout is a transient failure, retried."""
    rec = record()
    assert decide(rec, CutShort(30.0), 5.0, rules()) == Again(6.0, "transient")
    assert rec.errors == 1


def test_a_transport_failure_is_the_cause_of_the_final_error() -> None:
    """The last transient failure is named in the message and kept as the cause."""
    reset = ConnectionError("reset")
    error = error_of(decide(record(), Failed(reset), 0.0, rules(max_errors=1)))
    assert error.message == (
        "1 transient failures in a row (max_errors=1); the last: ConnectionError: reset"
    )
    assert error.cause is reset
    assert (error.job_id, error.url, error.http_status, error.status) == ("a", URL, None, None)


def test_a_fatal_transport_failure_ends_the_job_naming_it() -> None:
    """Failed(fatal=True) ends the job at once, the failure as the cause."""
    boom = OSError("no route")
    error = error_of(decide(record(), Failed(boom, fatal=True), 0.0, rules()))
    assert fields(error) == ("OSError: no route", "a", URL, None, None)
    assert error.cause is boom


def test_a_303_means_done_with_the_result_at_its_location() -> None:
    """A 303 See Other on a status poll: succeeded, the Location (resolved) is the result."""
    rec = record()
    decision = decide(rec, answer(303, Location="/results/a"), 0.0, rules())
    link = "https://api.test/results/a"
    assert decision == Finish(JobState.SUCCEEDED, result=link)
    assert rec.status == Status(JobState.SUCCEEDED, result=link, http_status=303, result_url=link)


def test_a_303_location_resolves_against_the_target_when_the_request_url_is_unknown() -> None:
    """Without the request's URL, the job's target is the base of a relative Location."""
    rec = record(target="https://api.test/v2/jobs/a")
    decision = decide(rec, Answered(response(303, request_url="", location="r/1")), 0.0, rules())
    assert decision == Finish(JobState.SUCCEEDED, result="https://api.test/v2/jobs/r/1")


def test_a_303_with_fetch_result_fetches_the_location() -> None:
    rec = record(fetch_result=True)
    assert decide(rec, answer(303, Location="/results/a"), 2.0, rules()) == Again(2.0, "fetch")
    assert (rec.action, rec.fetch_url) == ("fetch", "https://api.test/results/a")


def test_a_303_without_location_ends_the_job() -> None:
    error = error_of(decide(record(), answer(303), 0.0, rules()))
    assert fields(error) == (
        "HTTP 303 (the server refused the status request); received an empty body",
        "a",
        URL,
        303,
        None,
    )


def test_a_303_to_another_origin_is_refused_unless_allowed() -> None:
    """The 303 Location obeys the origin rule; allowed_origins= lifts it."""
    moved = answer(303, Location="https://cdn.test/r/a")
    error = error_of(decide(record(), moved, 0.0, rules()))
    assert fields(error) == (
        "refusing the 303 Location 'https://cdn.test/r/a': its origin https://cdn.test:443 "
        "differs from 'https://api.test/jobs/a'; list it in allowed_origins= to trust it",
        "a",
        URL,
        303,
        None,
    )
    allowed = rules(allowed_origins=frozenset({("https", "cdn.test", 443)}))
    assert decide(record(), moved, 0.0, allowed) == Finish(
        JobState.SUCCEEDED, result="https://cdn.test/r/a"
    )


def test_a_reader_returning_no_status_ends_the_job() -> None:
    """A reader that returns anything but a Status is a bug to report, not to retry."""
    error = error_of(decide(record(), answer(200, b"{}"), 0.0, rules(reader=lambda r: "done")))
    assert fields(error) == ("the reader returned str, not a Status", "a", URL, 200, None)


def test_a_reader_crash_is_a_transient_failure() -> None:
    """An unexpected exception in the reader is retried, and named when it ends the job."""
    crash = RuntimeError("boom")

    def reader(response: Response) -> Status:
        raise crash

    rec = record()
    assert decide(rec, answer(200), 4.0, rules(reader=reader)) == Again(5.0, "transient")
    assert decide(rec, Answered(answer(200)[0], 9.0), 5.0, rules(reader=reader)) == Again(
        14.0, "transient"
    )
    error = error_of(decide(rec, answer(200), 9.0, rules(reader=reader)))
    assert fields(error) == (
        "3 transient failures in a row (max_errors=3); the last: RuntimeError: boom",
        "a",
        URL,
        200,
        None,
    )
    assert error.cause is crash


def test_a_reader_poll_error_ends_the_job_with_the_job_named() -> None:
    """A PollError from the reader is copied with the job's id, URL and status code."""
    refusal = asyncpoll.PollError("unreadable")

    def reader(response: Response) -> Status:
        raise refusal

    rec = record(status=Status(JobState.RUNNING))
    error = error_of(decide(rec, answer(200), 0.0, rules(reader=reader)))
    assert fields(error) == ("unreadable", "a", URL, 200, Status(JobState.RUNNING))
    assert error.__cause__ is refusal
    assert error.cause is None


def test_a_poll_error_keeps_its_own_status_code_cause_and_status() -> None:
    """The copy keeps what the reader's error says; the job's facts fill the gaps only."""
    cause = ValueError("bad")
    own = Status(JobState.PENDING)
    refusal = asyncpoll.PollError("unreadable", http_status=418, cause=cause, status=own)

    def reader(response: Response) -> Status:
        raise refusal

    rec = record(status=Status(JobState.RUNNING))
    error = error_of(decide(rec, answer(200), 0.0, rules(reader=reader)))
    assert fields(error) == ("unreadable", "a", URL, 418, own)
    assert error.cause is cause


@pytest.mark.parametrize(
    "body", [b'{"jobId": "b", "status": "running"}', b'{"taskId": "b", "status": "running"}']
)
def test_a_camel_case_id_naming_another_job_is_transient(body: bytes) -> None:
    follows = {"a", "b"}.__contains__
    decision = decide(record(), answer(200, body), 0.0, rules(follows=follows))
    assert decision == Again(1.0, "transient")


def test_only_a_body_that_is_a_json_object_is_checked_for_another_job_s_id() -> None:
    """The check reads bodies that start with "{"; one that does not is read as it is."""
    follows = {"a", "b"}.__contains__
    body = b' {"id": "b", "status": "succeeded"}'
    assert isinstance(decide(record(), answer(200, body), 0.0, rules(follows=follows)), Finish)


def test_a_boolean_id_names_no_job() -> None:
    """{"id": true} is no job id, even when a job is named "True"."""
    follows = {"a", "True"}.__contains__
    body = b'{"id": true, "status": "succeeded"}'
    assert isinstance(decide(record(), answer(200, body), 0.0, rules(follows=follows)), Finish)


def test_only_a_2xx_answer_is_checked_for_another_job_s_id() -> None:
    """A non-2xx code the reader claims is read as this job's, whatever id it names."""
    follows = {"a", "b"}.__contains__
    body = b'{"id": "b", "status": "succeeded"}'
    claimed = rules(follows=follows, claims={300}.__contains__)
    assert isinstance(decide(record(), answer(300, body), 0.0, claimed), Finish)


def test_a_redirect_with_no_known_base_is_refused() -> None:
    """With neither the request's URL nor a target, no other origin is trusted."""
    moved = Answered(response(302, request_url="", location="https://api.test/jobs/b"))
    error = error_of(decide(record(target=None), moved, 0.0, rules()))
    assert error.message == (
        "refusing the redirect Location 'https://api.test/jobs/b': its origin "
        "https://api.test:443 differs from ''; list it in allowed_origins= to trust it"
    )
    see_other = Answered(response(303, request_url="", location="https://api.test/r"))
    error = error_of(decide(record(target=None), see_other, 0.0, rules()))
    assert error.message.startswith("refusing the 303 Location 'https://api.test/r': its origin")
    assert error.message.endswith("differs from ''; list it in allowed_origins= to trust it")


def test_errors_carry_the_last_status_read() -> None:
    """Every error that ends a job carries the job's last status."""
    last = Status(JobState.RUNNING, progress=0.5)
    error = error_of(decide(record(status=last), answer(500), 0.0, rules(max_errors=1)))
    assert error.status is last
    error = error_of(decide(record(status=last), answer(404), 0.0, rules()))
    assert error.status is last
    error = error_of(decide(record(status=last), Failed(OSError("x"), fatal=True), 0.0, rules()))
    assert error.status is last


def test_an_unsafe_resubmit_link_ends_the_job_with_the_answer_s_code() -> None:
    rec = record(action="resubmit", create=CREATE)
    created = Response(
        202, {"operation-location": "https://evil.test/j/b"}, b"", "", "https://api.test/jobs"
    )
    error = error_of(decide(rec, Answered(created), 0.0, rules()))
    assert error.http_status == 202
    assert error.message.startswith("refusing the Operation-Location header")


def test_an_answer_naming_an_unfollowed_job_is_this_job_s() -> None:
    """A body naming a job the poller does not follow is read as this job's answer."""
    body = b'{"id": "c", "status": "succeeded"}'
    decision = decide(record(), answer(200, body), 0.0, rules(follows={"a", "b"}.__contains__))
    assert isinstance(decision, Finish) and decision.state is JobState.SUCCEEDED


def test_a_numeric_id_is_compared_as_text() -> None:
    """{"id": 7} names job "7": this job's when it is "7", another followed one's otherwise."""
    follows = {"7", "8"}.__contains__
    assert isinstance(
        decide(record(job_id="7"), answer(200, b'{"id": 7, "status": "succeeded"}'), 0, rules()),
        Finish,
    )
    mine = decide(
        record(job_id="7"),
        answer(200, b'{"id": 7, "status": "succeeded"}'),
        0,
        rules(follows=follows),
    )
    assert isinstance(mine, Finish)
    other = decide(
        record(job_id="7"),
        answer(200, b'{"id": 8, "status": "succeeded"}'),
        0,
        rules(follows=follows),
    )
    assert other == Again(1.0, "transient")


def test_a_null_id_does_not_hide_the_next_id_field() -> None:
    body = b'{"id": null, "job_id": "b", "status": "succeeded"}'
    decision = decide(record(), answer(200, body), 0.0, rules(follows={"a", "b"}.__contains__))
    assert decision == Again(1.0, "transient")


def test_the_stray_answer_names_the_first_followed_job_in_its_message() -> None:
    """The error names the followed job the body names (an unfollowed one is skipped)."""
    body = b'{"id": "c", "job_id": "b", "status": "succeeded"}'
    rec = record()
    decision = decide(rec, answer(200, body), 0.0, rules(follows={"b"}.__contains__, max_errors=1))
    error = error_of(decision)
    assert fields(error) == (
        "1 transient failures in a row (max_errors=1); the last: the answer names job 'b', "
        "not this job (a stray response on a reused connection?)",
        "a",
        URL,
        200,
        None,
    )
    assert isinstance(error.cause, asyncpoll.PollError) and error.cause.http_status == 200


def test_a_stray_answer_is_retried_no_sooner_than_the_hint() -> None:
    body = b'{"id": "b", "status": "running"}'
    decision = decide(
        record(), Answered(answer(200, body)[0], 7.0), 0.0, rules(follows={"b"}.__contains__)
    )
    assert decision == Again(7.0, "transient")


@pytest.mark.parametrize("code", [301, 302, 307, 308])
def test_every_redirect_code_is_followed(code: int) -> None:
    rec = record()
    assert decide(rec, answer(code, Location="/jobs/b"), 1.0, rules()) == Again(1.0, "redirect")
    assert (rec.target, rec.redirects) == ("https://api.test/jobs/b", 1)


def test_a_redirect_code_the_reader_claims_is_read_not_followed() -> None:
    rec = record()
    claims = {302}.__contains__
    moved = answer(302, b'{"status": "running"}', Location="/jobs/b")
    assert decide(rec, moved, 0.0, rules(claims=claims)) == Again(2.0, "poll", progressed=True)
    assert rec.target == URL


def test_a_redirect_to_another_origin_is_refused() -> None:
    error = error_of(decide(record(), answer(307, Location="https://evil.test/x"), 0.0, rules()))
    assert fields(error) == (
        "refusing the redirect Location 'https://evil.test/x': its origin "
        "https://evil.test:443 differs from 'https://api.test/jobs/a'; list it in "
        "allowed_origins= to trust it",
        "a",
        URL,
        307,
        None,
    )


def test_a_redirect_without_location_ends_the_job() -> None:
    error = error_of(decide(record(), answer(302, b"moved"), 0.0, rules()))
    assert fields(error) == (
        "HTTP 302 (the server refused the status request); received 'moved'",
        "a",
        URL,
        302,
        None,
    )


def test_a_relative_redirect_resolves_against_the_target_without_a_request_url() -> None:
    rec = record(target="https://api.test/v2/jobs/a")
    moved = Answered(response(302, request_url="", location="b"))
    assert decide(rec, moved, 0.0, rules()) == Again(0.0, "redirect")
    assert rec.target == "https://api.test/v2/jobs/b"


def test_one_redirect_too_many_names_the_code() -> None:
    rec = record(redirects=MAX_REDIRECTS)
    error = error_of(decide(rec, answer(308, Location="/jobs/b"), 0.0, rules()))
    assert fields(error) == ("more than 5 redirects in a row", "a", URL, 308, None)


def test_throttles_are_counted_and_paced_by_the_retry_schedule() -> None:
    """Each 429 in a row counts; the retry schedule gets the count and the poller's rng."""
    schedule = Recorder(base=10.0)
    ruled = rules(retry_schedule=schedule)
    rec = record()
    assert decide(rec, answer(429), 0.0, ruled) == Again(11.0, "throttled")
    assert decide(rec, answer(429), 11.0, ruled) == Again(23.0, "throttled")
    assert rec.throttles == 2
    assert schedule.calls == [(1, ruled.rng), (2, ruled.rng)]


def test_transient_failures_are_paced_by_the_count_and_the_hint() -> None:
    schedule = Recorder(base=0.0)
    ruled = rules(retry_schedule=schedule, max_errors=5)
    rec = record()
    assert decide(rec, answer(500), 0.0, ruled) == Again(1.0, "transient")
    assert decide(rec, answer(502), 1.0, ruled) == Again(3.0, "transient")
    assert decide(rec, Answered(answer(500)[0], 9.0), 3.0, ruled) == Again(12.0, "transient")
    assert schedule.calls == [(1, ruled.rng), (2, ruled.rng), (3, ruled.rng)]


def test_a_5xx_error_names_its_code_and_body() -> None:
    error = error_of(decide(record(), answer(502, b"bad gateway"), 0.0, rules(max_errors=1)))
    assert fields(error) == (
        "1 transient failures in a row (max_errors=1); the last: HTTP 502; received 'bad gateway'",
        "a",
        URL,
        502,
        None,
    )
    assert isinstance(error.cause, asyncpoll.PollError)
    assert (error.cause.message, error.cause.http_status) == (
        "HTTP 502; received 'bad gateway'",
        502,
    )


def test_a_result_fetch_refused_ends_the_job_saying_so() -> None:
    rec = record(action="fetch", fetch_url=URL + "/result")
    error = error_of(decide(rec, answer(404, b"gone"), 0.0, rules()))
    assert fields(error) == (
        "the job succeeded but its result document could not be fetched: HTTP 404; received 'gone'",
        "a",
        URL,
        404,
        None,
    )


def test_a_result_fetch_gets_the_body_when_it_is_not_json() -> None:
    rec = record(action="fetch", fetch_url=URL + "/result")
    assert decide(rec, answer(299, b"plain"), 0.0, rules()) == Finish(
        JobState.SUCCEEDED, result=b"plain"
    )


@pytest.mark.parametrize("code", [300, 304])
def test_a_result_fetch_of_a_3xx_that_is_no_redirect_ends_the_job(code: int) -> None:
    rec = record(action="fetch", fetch_url=URL + "/result")
    error = error_of(decide(rec, answer(code, Location="/r/b"), 0.0, rules()))
    assert error.message == (
        f"the job succeeded but its result document could not be fetched: HTTP {code}; "
        "received an empty body"
    )


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_a_result_fetch_follows_every_redirect(code: int) -> None:
    rec = record(action="fetch", fetch_url=URL + "/result")
    assert decide(rec, answer(code, Location="/r/b"), 1.0, rules()) == Again(1.0, "redirect")
    assert (rec.fetch_url, rec.target) == ("https://api.test/r/b", URL)


def test_a_result_fetch_redirect_without_location_ends_the_job() -> None:
    rec = record(action="fetch", fetch_url=URL + "/result")
    error = error_of(decide(rec, answer(302), 0.0, rules()))
    assert error.message == (
        "the job succeeded but its result document could not be fetched: HTTP 302; "
        "received an empty body"
    )


def test_a_succeeded_status_without_fetch_result_finishes_with_the_reader_s_result() -> None:
    rec = record()
    body = b'{"status": "succeeded", "result": 3, "resultUrl": "/results/a"}'
    assert decide(rec, answer(200, body), 0.0, rules()) == Finish(JobState.SUCCEEDED, result=3)
    assert rec.action == "poll"


def test_a_result_link_to_another_origin_ends_the_job() -> None:
    rec = record(fetch_result=True)
    body = b'{"status": "succeeded", "resultUrl": "https://evil.test/r"}'
    error = error_of(decide(rec, answer(200, body), 0.0, rules()))
    assert fields(error)[:4] == (
        "refusing the result link 'https://evil.test/r': its origin https://evil.test:443 "
        "differs from 'https://api.test/jobs/a'; list it in allowed_origins= to trust it",
        "a",
        URL,
        200,
    )
    assert rec.action == "poll"
    allowed = rules(allowed_origins=frozenset({("https", "evil.test", 443)}))
    assert decide(record(fetch_result=True), answer(200, body), 0.0, allowed) == Again(0.0, "fetch")


FAILED = Checked(Status(JobState.FAILED, error="out of memory"))
CREATE = CreateRequest("POST", "https://api.test/jobs", None, None, None, {})


def test_a_failed_job_ends_without_resubmits_or_without_a_create_request() -> None:
    for rec in (record(create=CREATE, resubmits_left=0), record(resubmits_left=2)):
        final = decide(rec, FAILED, 0.0, rules())
        assert isinstance(final, Finish) and final.state is JobState.FAILED
        assert isinstance(final.error, asyncpoll.JobFailed)
        assert str(final.error) == "job 'a' failed: out of memory"


def test_a_resubmit_waits_the_retry_schedule_for_the_submissions_so_far() -> None:
    schedule = Recorder(base=4.0)
    ruled = rules(retry_schedule=schedule)
    first = asyncpoll.Submission("a", URL, 202)
    rec = record(create=CREATE, resubmits_left=1, submissions=(first, first))
    assert decide(rec, FAILED, 1.0, ruled) == Again(7.0, "resubmit")
    assert schedule.calls == [(2, ruled.rng)]


def test_a_cancelled_status_says_so_with_the_server_s_text() -> None:
    plain = Status(JobState.CANCELLED)
    final = decide(record(), Checked(plain), 0.0, rules())
    assert isinstance(final, Finish) and final.state is JobState.CANCELLED
    assert isinstance(final.error, asyncpoll.JobCancelled)
    assert (final.error.reason, final.error.status) == ("cancelled on the server", plain)
    worded = Status(JobState.CANCELLED, error="x" * 1500)
    final = decide(record(), Checked(worded), 0.0, rules())
    assert isinstance(final, Finish) and isinstance(final.error, asyncpoll.JobCancelled)
    assert final.error.reason.startswith(
        "cancelled on the server: " + "x" * 400 + " [... 500 characters left out ...] "
    )
    assert final.error.status is worded


def test_a_timed_out_status_reports_the_job_s_timeout() -> None:
    status = Status(JobState.TIMED_OUT)
    for timeout, shown in ((None, 0.0), (30.0, 30.0)):
        final = decide(record(timeout=timeout), Checked(status), 0.0, rules())
        assert isinstance(final, Finish) and final.state is JobState.TIMED_OUT
        assert isinstance(final.error, asyncpoll.JobTimeout)
        assert (final.error.job_id, final.error.timeout, final.error.status) == ("a", shown, status)


def test_an_errored_status_ends_the_job_with_its_text() -> None:
    worded = Status(JobState.ERRORED, error="y" * 1500, http_status=200)
    final = decide(record(), Checked(worded), 0.0, rules())
    assert isinstance(final, Finish) and final.state is JobState.ERRORED
    error = error_of(final)
    assert error.message.startswith("y" * 400 + " [... 500 characters left out ...] ")
    assert fields(error)[1:] == ("a", URL, 200, worded)
    plain = Status(JobState.ERRORED)
    error = error_of(decide(record(), Checked(plain), 0.0, rules()))
    assert fields(error) == ("the status reported ERRORED", "a", URL, None, plain)


def test_an_errored_status_of_a_check_job_has_no_url() -> None:
    error = error_of(decide(record(url=None), Checked(Status(JobState.ERRORED)), 0.0, rules()))
    assert (error.url, str(error)) == (None, "job 'a': the status reported ERRORED")


def test_progress_and_state_changes_are_progress() -> None:
    """A new state, or new progress in the same state, is progress; the same status is not."""
    rec = record()
    assert decide(rec, Checked(Status(JobState.PENDING)), 0.0, rules()).progressed  # type: ignore[union-attr]
    assert decide(rec, Checked(Status(JobState.RUNNING)), 2.0, rules()).progressed  # type: ignore[union-attr]
    half = Checked(Status(JobState.RUNNING, progress=0.5))
    assert decide(rec, half, 4.0, rules()).progressed  # type: ignore[union-attr]
    assert decide(rec, half, 6.0, rules()) == Again(8.0, "poll", progressed=False)
    assert rec.changed_at == 4.0


def test_a_stall_is_reported_again_after_progress() -> None:
    rec = record(stall_timeout=10.0)
    running = Checked(Status(JobState.RUNNING))
    decide(rec, running, 0.0, rules())
    assert decide(rec, running, 10.0, rules()).stalled  # type: ignore[union-attr]
    assert rec.stalled is True
    decide(rec, Checked(Status(JobState.RUNNING, progress=0.1)), 12.0, rules())
    assert rec.stalled is False
    assert not decide(rec, Checked(Status(JobState.RUNNING, progress=0.1)), 21.0, rules()).stalled  # type: ignore[union-attr]
    assert decide(rec, Checked(Status(JobState.RUNNING, progress=0.1)), 22.0, rules()).stalled  # type: ignore[union-attr]


def test_an_unknown_word_stalls_after_five_minutes_unless_stall_timeout_says_otherwise() -> None:
    weird = Checked(Status(JobState.RUNNING, unknown_word="percolating"))
    rec = record()
    decide(rec, weird, 0.0, rules())
    assert not decide(rec, weird, 299.0, rules()).stalled  # type: ignore[union-attr]
    assert decide(rec, weird, 300.0, rules()).stalled  # type: ignore[union-attr]
    short = record(stall_timeout=10.0)
    decide(short, weird, 0.0, rules())
    assert decide(short, weird, 10.0, rules()).stalled  # type: ignore[union-attr]
    known = record()
    decide(known, Checked(Status(JobState.RUNNING)), 0.0, rules())
    assert not decide(known, Checked(Status(JobState.RUNNING)), 1000.0, rules()).stalled  # type: ignore[union-attr]


def test_fail_on_stall_ends_the_job_with_a_job_stalled_error() -> None:
    status = Status(JobState.RUNNING)
    rec = record(stall_timeout=10.0)
    decide(rec, Checked(status), 0.0, rules())
    final = decide(rec, Checked(status), 10.0, rules(fail_on_stall=True))
    assert isinstance(final, Finish) and isinstance(final.error, asyncpoll.JobStalled)
    assert (final.error.job_id, final.error.timeout, final.error.status) == ("a", 10.0, status)
    assert str(final.error) == (
        "job 'a' made no progress for 10 s (still running); raise stall_timeout= or leave "
        "fail_on_stall off to keep waiting"
    )


def test_fail_on_stall_needs_a_stall_timeout() -> None:
    """An unknown word's five-minute stall is only reported, even with fail_on_stall."""
    weird = Checked(Status(JobState.RUNNING, unknown_word="percolating"))
    rec = record()
    decide(rec, weird, 0.0, rules(fail_on_stall=True))
    assert decide(rec, weird, 300.0, rules(fail_on_stall=True)) == Again(302.0, stalled=True)


@pytest.mark.parametrize(
    ("retry_after", "hint", "due"),
    [(5.0, None, 5.0), (5.0, 3.0, 5.0), (3.0, 5.0, 5.0), (None, 4.0, 4.0), (None, None, 2.0)],
)
def test_the_status_s_retry_after_and_the_header_hint_the_larger_wins(
    retry_after: float | None, hint: float | None, due: float
) -> None:
    status = Status(JobState.RUNNING, retry_after=retry_after)
    decision = on_status(record(), status, hint, 0.0, rules())
    assert decision == Again(due, "poll", progressed=True)


def test_the_poll_schedule_gets_the_attempts_and_the_poller_s_rng() -> None:
    schedule = Recorder(base=1.0)
    ruled = rules()
    rec = record(schedule=schedule, attempts=4)
    assert decide(rec, answer(200, b'{"status": "running"}'), 0.0, ruled) == Again(
        5.0, "poll", progressed=True
    )
    assert schedule.calls == [(4, ruled.rng)]


def test_a_resubmit_answer_re_keys_after_the_first_delay_of_the_schedule() -> None:
    schedule = Recorder(base=3.0)
    ruled = rules()
    rec = record(schedule=schedule, action="resubmit", create=CREATE)
    created = Response(201, {"location": "/jobs/b"}, b"", "", "https://api.test/jobs")
    assert decide(rec, Answered(created), 10.0, ruled) == Rekey(
        "b", "https://api.test/jobs/b", 13.0, 201, False
    )
    assert schedule.calls == [(0, ruled.rng)]


@pytest.mark.parametrize("code", [200, 299])
def test_a_resubmit_answer_is_read_for_every_2xx(code: int) -> None:
    rec = record(action="resubmit", create=CREATE)
    created = Response(code, {"operation-location": "/jobs/b"}, b"", "", "https://api.test/jobs")
    assert decide(rec, Answered(created), 0.0, rules()) == Rekey(
        "b", "https://api.test/jobs/b", 0.0, code, False
    )


@pytest.mark.parametrize("code", [300, 409])
def test_a_refused_resubmit_ends_the_job_saying_so(code: int) -> None:
    rec = record(action="resubmit", create=CREATE)
    refused = Response(code, {"location": "/jobs/b"}, b"no", "", "https://api.test/jobs")
    error = error_of(decide(rec, Answered(refused), 0.0, rules()))
    assert fields(error) == (
        f"submitting the job again failed: HTTP {code}; received 'no'",
        "a",
        URL,
        code,
        None,
    )


def test_a_resubmit_answer_naming_no_job_ends_the_job() -> None:
    rec = record(action="resubmit", create=CREATE)
    created = Response(202, {}, b"{}", "", "https://api.test/jobs")
    error = error_of(decide(rec, Answered(created), 0.0, rules()))
    assert fields(error) == (
        "cannot tell where to poll the new job: the create response has no "
        "Operation-Location or Location header, no status URL field and no job id (give "
        "the poller a status_url template); received '{}'",
        "a",
        URL,
        202,
        None,
    )


def test_locate_fills_the_status_url_template_with_the_quoted_id() -> None:
    created = Response(202, {}, b'{"id": "x/1"}', "", "https://api.test/jobs")
    ruled = rules(status_url="/jobs/{job_id}", absolute=lambda u: "https://api.test" + u)
    assert locate(created, ruled) == ("x/1", "https://api.test/jobs/x%2F1", True)


@pytest.mark.parametrize("job_id", [".", ".."])
@pytest.mark.parametrize("headers", [{}, {"location": "/queue/9"}])
def test_locate_refuses_a_job_id_that_is_a_path_step(job_id: str, headers: dict[str, str]) -> None:
    """Refused with a template or without, even beside the response's own link: a
    cancel_url template would read the id too."""
    created = Response(202, headers, json.dumps({"id": job_id}).encode(), "", URL)
    for ruled in (rules(), rules(status_url="/jobs/{job_id}")):
        with pytest.raises(asyncpoll.PollError) as caught:
            locate(created, ruled)
        assert caught.value.message == (
            f"refusing the job id {job_id!r} of the create response: a URL reads it as a "
            "step up its path, not as a name"
        )
        assert caught.value.http_status == 202


def test_locate_fills_the_template_only_without_a_link() -> None:
    """The template gives the status URL (from_template True) when the response names
    the job but not where to poll it; the URL is passed through rules.absolute."""
    created = Response(201, {}, b'{"id": "a b"}', "", "https://api.test/jobs")
    ruled = rules(status_url="/jobs/{job_id}/state", absolute=lambda u: "https://h.test" + u)
    assert locate(created, ruled) == ("a b", "https://h.test/jobs/a%20b/state", True)


def test_locate_without_a_template_or_an_id_says_what_is_missing() -> None:
    with_id = Response(202, {}, b'{"id": "x"}', "", "https://api.test/jobs")
    with pytest.raises(asyncpoll.PollError) as caught:
        locate(with_id, rules())
    assert caught.value.message == (
        "cannot tell where to poll the new job: the create response has no "
        "Operation-Location or Location header, no status URL field (give the poller a "
        'status_url template); received \'{"id": "x"}\''
    )
    assert caught.value.http_status == 202
    without = Response(202, {}, b"{}", "", "https://api.test/jobs")
    with pytest.raises(asyncpoll.PollError) as caught:
        locate(without, rules(status_url="/jobs/{job_id}"))
    assert caught.value.message == (
        "cannot tell where to poll the new job: the create response has no "
        "Operation-Location or Location header, no status URL field and no job id; "
        "received '{}'"
    )


def test_locate_prefers_the_response_s_own_link_to_the_template() -> None:
    created = Response(202, {"location": "/queue/9"}, b'{"id": "9"}', "", "https://api.test/jobs")
    ruled = rules(status_url="/jobs/{job_id}", absolute=lambda u: "https://api.test" + u)
    assert locate(created, ruled) == ("9", "https://api.test/queue/9", False)


def test_describe_names_a_failure_in_a_few_words() -> None:
    assert describe(None) == "no detail"
    assert describe(ValueError()) == "ValueError: ValueError"
    assert describe(ValueError("bad")) == "ValueError: bad"
    assert describe(asyncpoll.PollError("refused")) == "refused"
