"""Tests for ``asyncpoll._reader`` (DefaultReader, parse_retry_after) and ``_response``."""

from __future__ import annotations

import datetime
import json
import logging
import math
import re
import time
from typing import Any

import attrs
import pytest

import asyncpoll
from asyncpoll import DEFAULT_STATES, DefaultReader, JobState, PollError, Response, Status
from asyncpoll._reader import number, parse_retry_after, progress_fraction
from asyncpoll._response import excerpt

URL = "https://api.example.com/jobs/42"


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


def _response(
    body: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response whose content is ``body`` as JSON (or as given, for bytes)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status_code, headers or {}, content, URL)


def _read(body: Any, **kwargs: Any) -> Status:
    return DefaultReader()(_response(body, **kwargs))


# --- the state vocabulary ------------------------------------------------------------

# Written out, not derived: the words the docs promise (docs/job-systems.md).
VOCABULARY = {
    JobState.PENDING: [
        "pending",
        "queued",
        "queuing",
        "waiting",
        "created",
        "delayed",
        "submitted",
        "received",
        "scheduled",
        "deferred",
        "not_started",
        "runnable",
        "starting",
        "accepted",
        "requested",
        "up_for_reschedule",
        "paused",
        "new",
    ],
    JobState.RUNNING: [
        "running",
        "processing",
        "progressing",
        "active",
        "in_progress",
        "started",
        "generating",
        "validating",
        "validating_files",
        "finalizing",
        "retry",
        "retrying",
        "restarting",
        "up_for_retry",
        "cancelling",
        "canceling",
        "stopping",
        "building",
        "executing",
    ],
    JobState.SUCCEEDED: [
        "completed",
        "complete",
        "succeeded",
        "success",
        "successful",
        "done",
        "finished",
        "partial_success",
        "partially_succeeded",
    ],
    JobState.FAILED: [
        "failed",
        "failure",
        "fail",
        "error",
        "errored",
        "expired",
        "crashed",
        "timed_out",
        "timeout",
        "upstream_failed",
        "unstable",
        "startup_failure",
        "action_required",
        "stale",
        "validation_failed",
        "pending_redrive",
    ],
    JobState.CANCELLED: [
        "cancelled",
        "canceled",
        "stopped",
        "revoked",
        "aborted",
        "terminated",
        "killed",
        "dismissed",
        "skipped",
        "omitted",
        "not_built",
        "removed",
        "deleted",
    ],
}
WORDS = [(word, state) for state, words in VOCABULARY.items() for word in words]


def test_default_states_is_exactly_the_documented_vocabulary() -> None:
    """DEFAULT_STATES maps exactly the 75 documented lower-case words, no more and no fewer."""
    assert dict(DEFAULT_STATES) == dict(WORDS)
    assert len(DEFAULT_STATES) == 75


@pytest.mark.parametrize(("word", "state"), WORDS)
@pytest.mark.parametrize(
    "spell", [str.lower, str.upper, str.title], ids=["lower", "upper", "title"]
)
def test_every_state_word_is_read_case_insensitively(
    word: str, state: JobState, spell: Any
) -> None:
    """Each vocabulary word, in any case, under ``status`` reads as its JobState."""
    assert _read({"status": spell(word)}).state is state


@pytest.mark.parametrize(("word", "state"), WORDS)
def test_every_state_word_is_read_under_state_key(word: str, state: JobState) -> None:
    """Each vocabulary word is also read from a top-level ``state`` key."""
    assert _read({"state": word}).state is state


@pytest.mark.parametrize("key", ["status", "state"])
def test_state_is_read_from_inside_data(key: str) -> None:
    """A state under ``data.status`` or ``data.state`` is read when the top level has none."""
    assert _read({"data": {key: "Queued"}}).state is JobState.PENDING


def test_top_level_status_wins_over_state_and_data() -> None:
    """``status`` is looked at before ``state``, and the top level before ``data``."""
    body = {"status": "running", "state": "done", "data": {"status": "failed"}}
    assert _read(body).state is JobState.RUNNING
    assert _read({"state": "done", "data": {"status": "failed"}}).state is JobState.SUCCEEDED
    assert _read({"data": {"status": "failed", "state": "done"}}).state is JobState.FAILED


def test_non_string_state_values_are_skipped() -> None:
    """A numeric ``status`` (an HTTP-style code) is skipped in favour of a string state."""
    assert _read({"status": 200, "state": "running"}).state is JobState.RUNNING
    assert _read({"status": 200, "data": {"status": "done"}}).state is JobState.SUCCEEDED


def test_non_object_data_is_ignored() -> None:
    """A ``data`` that is not an object is not searched, and the top-level state stands."""
    assert _read({"status": "running", "data": ["done"]}).state is JobState.RUNNING


# --- progress ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        (0, 0.0),
        (1, 0.01),
        (33, 0.33),
        (50, 0.5),
        (100, 1.0),
        (0.0, 0.0),
        (0.25, 0.25),
        (1.0, 1.0),
        (1.5, 0.015),
        (12.5, 0.125),
        (42.5, 0.425),
        (100.0, 1.0),
    ],
)
def test_progress_from_numbers(progress: float, expected: float) -> None:
    """Ints are percentages, floats <= 1 are fractions, floats > 1 are percentages."""
    assert _read({"status": "running", "progress": progress}).progress == expected


@pytest.mark.parametrize(
    ("progress", "expected"),
    [(150, 1.0), (250.0, 1.0), (-5, 0.0), (-0.5, 0.0), (1e300, 1.0)],
)
def test_progress_is_clamped_to_zero_to_one(progress: float, expected: float) -> None:
    """Progress below 0 reads as 0 and above 100 % as 1."""
    assert _read({"status": "running", "progress": progress}).progress == expected


@pytest.mark.parametrize(
    ("progress", "expected"),
    [
        ({"done": 3, "total": 4}, 0.75),
        ({"done": 3.0, "total": 12.0}, 0.25),
        ({"processed": 1, "total": 8}, 0.125),
        ({"processed_pages": 1, "total_pages": 4}, 0.25),
        ({"processed_rows": 30, "total_rows": 40}, 0.75),
        ({"Done": 1, "TOTAL": 2}, 0.5),
        ({"Processed_Pages": 5, "Total_Pages": 5}, 1.0),
        ({"done": 0, "total": 7}, 0.0),
        ({"done": 9, "total": 4}, 1.0),
        ({"done": -1, "total": 4}, 0.0),
        ({"total": 4, "done": 2, "unit": "pages"}, 0.5),
    ],
)
def test_progress_from_done_and_total_objects(progress: dict[str, Any], expected: float) -> None:
    """A ``{done|processed*, total*}`` object gives done/total, clamped to [0, 1]."""
    assert _read({"status": "running", "progress": progress}).progress == expected


@pytest.mark.parametrize(
    "progress",
    [
        None,
        "50",
        "50%",
        True,
        False,
        [1, 2],
        {"done": 1},
        {"total": 4},
        {"done": 1, "total": 0},
        {"done": 1, "total": -4},
        {"done": "1", "total": 4},
        {"done": True, "total": 4},
        {"done": 1, "total": False},
    ],
)
def test_unreadable_progress_is_none(progress: Any) -> None:
    """A progress value the reader cannot interpret gives None rather than an error."""
    assert _read({"status": "running", "progress": progress}).progress is None


def test_missing_progress_is_none() -> None:
    """A body with no progress field gives progress None."""
    assert _read({"status": "running"}).progress is None


def test_progress_is_read_from_inside_data() -> None:
    """Progress under ``data`` is used when the top level has none."""
    assert _read({"data": {"status": "running", "progress": 20}}).progress == 0.2


def test_top_level_progress_wins_over_data() -> None:
    """A top-level progress is used even when ``data`` has one too."""
    body = {"status": "running", "progress": 0.5, "data": {"progress": 0.75}}
    assert _read(body).progress == 0.5


def test_huge_integer_progress_does_not_break_the_reading() -> None:
    """A progress integer too large for a float still leaves a readable status."""
    body = b'{"status": "running", "progress": ' + b"9" * 400 + b"}"
    status = _read(body)
    assert status.state is JobState.RUNNING
    assert status.progress in (None, 1.0)


def test_succeeded_forces_progress_to_one() -> None:
    """A succeeded job has progress 1.0 whatever the body says."""
    assert _read({"status": "done", "progress": 10}).progress == 1.0
    assert _read({"status": "done"}).progress == 1.0


def test_failed_job_keeps_its_reported_progress() -> None:
    """A failed job's progress is what the body reports."""
    assert _read({"status": "failed", "progress": 40}).progress == 0.4


# --- error text ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "failed", "error": "disk full"}, "disk full"),
        ({"status": "failed", "error": {"message": "quota exceeded", "code": 7}}, "quota exceeded"),
        ({"status": "failed", "error": {"msg": "bad input"}}, "bad input"),
        ({"status": "failed", "error": {"detail": "timeout upstream"}}, "timeout upstream"),
        ({"status": "failed", "failMsg": "render crashed"}, "render crashed"),
        ({"status": "failed", "message": "out of memory"}, "out of memory"),
        ({"data": {"status": "failed", "error": "nested"}}, "nested"),
        ({"data": {"status": "failed", "error": {"message": "nested msg"}}}, "nested msg"),
        ({"status": "failed", "data": {"failMsg": "in data"}}, "in data"),
        ({"status": "cancelled", "message": "cancelled by admin"}, "cancelled by admin"),
    ],
)
def test_error_text_sources(body: dict[str, Any], expected: str) -> None:
    """A failed or cancelled job's error text comes from error(.message), failMsg or message."""
    assert _read(body).error == expected


def test_error_key_precedence() -> None:
    """``error`` is preferred to ``failMsg``, which is preferred to ``message``."""
    body = {"status": "failed", "message": "m", "failMsg": "f", "error": "e"}
    assert _read(body).error == "e"
    assert _read({"status": "failed", "message": "m", "failMsg": "f"}).error == "f"


def test_top_level_error_wins_over_data() -> None:
    """Error text at the top level is preferred to error text inside ``data``."""
    body = {"status": "failed", "error": "top", "data": {"error": "inner"}}
    assert _read(body).error == "top"


@pytest.mark.parametrize(
    "error",
    ["", 42, True, None, [], [5], {"code": 5}, {"message": ""}],
)
def test_unusable_error_values_fall_through(error: Any) -> None:
    """An empty, non-text or message-less ``error`` is skipped for the next source."""
    assert _read({"status": "failed", "error": error, "message": "fallback"}).error == "fallback"


def test_failed_without_error_text_has_none() -> None:
    """A failed job with no error text anywhere gives error None."""
    assert _read({"status": "failed"}).error is None


@pytest.mark.parametrize("word", ["running", "queued", "done"])
def test_error_text_is_only_read_for_failed_or_cancelled(word: str) -> None:
    """A live or succeeded job's status carries no error text even if the body has one."""
    assert _read({"status": word, "error": "ignored", "message": "ignored"}).error is None


# --- result --------------------------------------------------------------------------


def test_result_from_top_level() -> None:
    """A succeeded job's result is its top-level ``result`` field."""
    body = {"status": "done", "result": {"url": "https://cdn/x.png"}, "data": {"result": 2}}
    assert _read(body).result == {"url": "https://cdn/x.png"}


def test_result_from_data() -> None:
    """Without a top-level ``result`` the one inside ``data`` is used."""
    assert _read({"status": "done", "data": {"result": [1, 2, 3]}}).result == [1, 2, 3]


@pytest.mark.parametrize("value", [None, 0, "", False, []])
def test_falsy_result_is_kept(value: Any) -> None:
    """A present but falsy ``result`` is the result, not a reason to fall back to the body."""
    assert _read({"status": "done", "result": value}).result == value


def test_result_defaults_to_the_whole_body() -> None:
    """Without ``result``, ``resultJson``, ``response``, ``output`` or a link the result is
    the whole parsed body."""
    body = {"status": "completed", "rows": 10, "data": {"x": 1}}
    assert _read(body).result == body


@pytest.mark.parametrize("word", ["running", "failed", "cancelled", "pending"])
def test_result_is_only_set_for_succeeded(word: str) -> None:
    """Jobs that have not succeeded carry no result."""
    assert _read({"status": word, "result": 1}).result is None


# --- raw, http_status, full reading ---------------------------------------------------


def test_full_reading_of_a_running_job() -> None:
    """A running job's Status is exactly what the body and headers say."""
    body = {"status": "processing", "progress": 0.5, "id": "42"}
    status = _read(body, status_code=202, headers={"Retry-After": "3"})
    assert status == Status(
        state=JobState.RUNNING,
        progress=0.5,
        result=None,
        error=None,
        retry_after=3.0,
        http_status=202,
        raw=body,
    )


def test_full_reading_of_a_succeeded_job() -> None:
    """A succeeded job's Status carries the result, progress 1 and the raw body."""
    body = {"data": {"state": "SUCCESS", "result": {"n": 1}}}
    assert _read(body) == Status(
        state=JobState.SUCCEEDED, progress=1.0, result={"n": 1}, http_status=200, raw=body
    )


def test_full_reading_of_a_failed_job() -> None:
    """A failed job's Status carries the error text and the raw body."""
    body = {"status": "failed", "error": {"message": "boom"}, "progress": 80}
    assert _read(body, status_code=200) == Status(
        state=JobState.FAILED, progress=0.8, error="boom", http_status=200, raw=body
    )


# --- unknown states ------------------------------------------------------------------


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "asyncpoll" and r.levelno == logging.WARNING
    ]


def test_unknown_state_reads_as_running_and_warns_once_per_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unknown word means RUNNING, with one WARNING on 'asyncpoll' per distinct word."""
    caplog.set_level(logging.WARNING, logger="asyncpoll")
    reader = DefaultReader()
    readings = [
        reader(_response({"status": word}))
        for word in ["Rendering", "rendering", "RENDERING", "throttled", "Rendering", "throttled"]
    ]
    assert [s.state for s in readings] == [JobState.RUNNING] * 6
    hint = "; treating it as running (map it with DefaultReader(states={...}))"
    assert _warnings(caplog) == [
        f"unknown job state 'Rendering' from {URL}{hint}",
        f"unknown job state 'throttled' from {URL}{hint}",
    ]


def test_each_reader_warns_about_unknown_words_on_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Two readers each log their own first sighting of an unknown word."""
    caplog.set_level(logging.WARNING, logger="asyncpoll")
    for _ in range(2):
        reader = DefaultReader()
        reader(_response({"status": "rendering"}))
        reader(_response({"status": "rendering"}))
    assert len(_warnings(caplog)) == 2


def test_known_states_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """Reading known states logs no warning."""
    caplog.set_level(logging.DEBUG, logger="asyncpoll")
    reader = DefaultReader()
    for word, _ in WORDS:
        reader(_response({"status": word}))
    assert caplog.records == []


def test_unknown_error_mode_raises_poll_error_naming_the_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With unknown="error" an unknown word raises PollError that names it, and logs nothing."""
    caplog.set_level(logging.WARNING, logger="asyncpoll")
    reader = DefaultReader(unknown="error")
    with pytest.raises(PollError) as info:
        reader(_response({"status": "Rendering"}, status_code=203))
    exc = info.value
    assert str(exc) == (
        "the server reported state 'Rendering', which this reader does not know "
        "(map it with DefaultReader(states={...}))"
    )
    assert exc.http_status == 203
    assert exc.job_id is None
    assert caplog.records == []


def test_unknown_error_mode_still_reads_known_words() -> None:
    """unknown="error" changes nothing for words the reader knows."""
    assert DefaultReader(unknown="error")(_response({"status": "done"})).state is (
        JobState.SUCCEEDED
    )


def test_unknown_mode_is_validated() -> None:
    """An ``unknown=`` other than 'running' or 'error' raises ValueError quoting it."""
    message = "DefaultReader(unknown=) must be 'running' or 'error', got 'ignore'"
    with pytest.raises(ValueError, match=_exactly(message)):
        DefaultReader(unknown="ignore")  # type: ignore[arg-type]


# --- custom states -------------------------------------------------------------------


def test_custom_states_add_words_case_insensitively() -> None:
    """Words given in ``states=`` are matched in any case, and the defaults still work."""
    reader = DefaultReader(states={"Parked": JobState.PENDING, "RENDERED": JobState.SUCCEEDED})
    assert reader(_response({"status": "parked"})).state is JobState.PENDING
    assert reader(_response({"status": "Rendered"})).state is JobState.SUCCEEDED
    assert reader(_response({"status": "running"})).state is JobState.RUNNING


def test_custom_states_override_defaults_without_changing_them() -> None:
    """A word in ``states=`` overrides the default meaning for that reader only."""
    reader = DefaultReader(states={"Expired": JobState.CANCELLED})
    assert reader(_response({"status": "expired"})).state is JobState.CANCELLED
    assert DefaultReader()(_response({"status": "expired"})).state is JobState.FAILED
    assert DEFAULT_STATES["expired"] is JobState.FAILED


def test_custom_states_merge_with_defaults() -> None:
    """reader.states holds the defaults plus the custom words, lower-cased."""
    reader = DefaultReader(states={"Parked": JobState.PENDING})
    assert dict(reader.states) == {**DEFAULT_STATES, "parked": JobState.PENDING}


def test_custom_state_must_map_to_a_job_state() -> None:
    """A ``states=`` value that is not a JobState raises TypeError naming the word."""
    message = "DefaultReader(states=): 'parked' maps to 'pending', not a JobState"
    with pytest.raises(TypeError, match=_exactly(message)):
        DefaultReader(states={"parked": "pending"})  # type: ignore[dict-item]


def test_reader_repr() -> None:
    """DefaultReader's repr shows its unknown-word mode."""
    assert repr(DefaultReader()) == "DefaultReader(unknown='running')"
    assert repr(DefaultReader(unknown="error")) == "DefaultReader(unknown='error')"


# --- bodies the reader cannot read ---------------------------------------------------


def test_body_without_state_names_what_was_received() -> None:
    """An object with no state raises ValueError quoting the body it got."""
    message = (
        "no job state in the response (looked for 'status', 'state' or 'phase', a boolean "
        "'done', and fields named like 'JobStatus', at the top level, inside 'data' and one "
        """level down); received '{"id": "42", "data": {"progress": 5}}'"""
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        _read({"id": "42", "data": {"progress": 5}})


def test_body_without_state_quotes_a_truncated_excerpt() -> None:
    """A long body without a state is quoted as its first 200 characters and its length."""
    body = {"items": list(range(100))}
    text = json.dumps(body)
    assert len(text) == 401
    message = (
        "no job state in the response (looked for 'status', 'state' or 'phase', a boolean "
        "'done', and fields named like 'JobStatus', at the top level, inside 'data' and one "
        f"level down); received {text[:80]!r} ... {text[-120:]!r} (401 characters)"
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        _read(body)


@pytest.mark.parametrize(
    ("content", "shown"),
    [(b"[1, 2]", "'[1, 2]'"), (b'"done"', "'\"done\"'"), (b"null", "'null'"), (b"3", "'3'")],
)
def test_non_object_json_is_a_value_error(content: bytes, shown: str) -> None:
    """JSON that is not an object raises ValueError quoting the body."""
    message = f"expected a JSON object with a status, received {shown}"
    with pytest.raises(ValueError, match=_exactly(message)):
        _read(content)


@pytest.mark.parametrize(
    ("content", "reason", "shown"),
    [
        (b"not json", "Expecting value: line 1 column 1 (char 0)", "'not json'"),
        (b"", "Expecting value: line 1 column 1 (char 0)", "an empty body"),
        (
            b"<html>Bad gateway</html>",
            "Expecting value: line 1 column 1 (char 0)",
            "'<html>Bad gateway</html>'",
        ),
        (
            b'{"status": "running"',
            "Expecting ',' delimiter: line 1 column 21 (char 20)",
            """'{"status": "running"'""",
        ),
    ],
)
def test_non_json_body_is_a_value_error(content: bytes, reason: str, shown: str) -> None:
    """A body that is not JSON raises ValueError with the parser's reason and an excerpt."""
    message = f"response body is not JSON ({reason}); received {shown}"
    with pytest.raises(ValueError, match=_exactly(message)):
        _read(content)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_json_with_nan_or_infinity_is_a_value_error(constant: str) -> None:
    """JSON holding NaN or ±Infinity is refused with a ValueError naming the constant."""
    content = f'{{"status": "running", "progress": {constant}}}'.encode()
    message = (
        f"response body is not JSON (JSON holds {constant}, which is not a number JSON "
        f"allows); received {content.decode()!r}"
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        _read(content)


# --- Retry-After ---------------------------------------------------------------------

DATE = "Wed, 21 Oct 2015 07:28:00 GMT"
#: Epoch seconds of DATE.
WALL = 1445412480.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("120", 120.0),
        (" 30 ", 30.0),
        ("1.5", 1.5),
        ("1e3", 1000.0),
        ("-0", 0.0),
    ],
)
def test_retry_after_delta_seconds(value: str, expected: float) -> None:
    """A delta-seconds Retry-After gives that many seconds; 0 is a valid 0 s."""
    assert parse_retry_after(value, now=WALL) == expected


def test_retry_after_http_date_relative_to_date_header() -> None:
    """An HTTP-date Retry-After is measured from the response's Date header."""
    date = "Wed, 21 Oct 2015 07:27:00 GMT"
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=0.0, date=date) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 08:27:00 GMT", now=0.0, date=date) == 3600.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:00 GMT", now=0.0, date=date) == 0.0


def test_retry_after_http_date_in_the_past_is_none() -> None:
    """An HTTP-date before its reference (Date, else ``now``) is unusable: None, not 0 s."""
    date = "Wed, 21 Oct 2015 07:27:00 GMT"
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now=0.0, date=date) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:26:59 GMT", now=0.0, date=date) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:27:59 GMT", now=WALL) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=WALL) == 0.0


def test_retry_after_http_date_without_date_header_uses_now() -> None:
    """Without a Date header an HTTP-date is measured from the wall time given as ``now``."""
    now = datetime.datetime(2015, 10, 21, 7, 27, 30, tzinfo=datetime.timezone.utc).timestamp()
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=now, date="") == 30.0


def test_parse_retry_after_reads_no_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """parse_retry_after never reads the wall clock: an HTTP-date needs Date or ``now``."""

    def no_clock() -> float:
        raise AssertionError("parse_retry_after read the wall clock")

    monkeypatch.setattr(time, "time", no_clock)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now=WALL) == 30.0


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "soon",
        "in 5 minutes",
        "inf",
        "-inf",
        "Infinity",
        "nan",
        "1e999",
        "-1e999",
        "-5",
        "-0.5",
        "Wed, 99 Foo 2015 07:28:00 GMT",
    ],
)
def test_retry_after_garbage_is_none(value: str | None) -> None:
    """A missing, unreadable, non-finite or negative Retry-After gives None."""
    assert parse_retry_after(value, now=0.0) is None


def test_retry_after_http_date_with_unreadable_date_header_is_none() -> None:
    """An HTTP-date cannot be measured against an unreadable Date header, so it gives None."""
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=WALL, date="yesterday") is None


def test_reader_fills_retry_after_from_headers_in_any_case() -> None:
    """The reader reads Retry-After (any header-name case) relative to the Date header."""
    headers = {
        "RETRY-AFTER": "Wed, 21 Oct 2015 07:28:00 GMT",
        "Date": "Wed, 21 Oct 2015 07:27:45 GMT",
    }
    assert _read({"status": "queued"}, headers=headers).retry_after == 15.0
    assert _read({"status": "queued"}, headers={"retry-after": "2"}).retry_after == 2.0


def test_reader_retry_after_http_date_without_date_header_is_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A reader reads no clock: an HTTP-date with no Date header to measure it by gives None.

    The engine measures that header itself against its clock's wall time.
    """

    def no_clock() -> float:
        raise AssertionError("the reader read the wall clock")

    monkeypatch.setattr(time, "time", no_clock)
    headers = {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}
    assert _read({"status": "queued"}, headers=headers).retry_after is None
    headers = {"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT", "Date": DATE}
    assert _read({"status": "queued"}, headers=headers).retry_after == 30.0


def test_reader_without_or_with_bad_retry_after_has_none() -> None:
    """No Retry-After header, or an unreadable one, gives retry_after None."""
    assert _read({"status": "queued"}).retry_after is None
    assert _read({"status": "queued"}, headers={"Retry-After": "later"}).retry_after is None
    assert _read({"status": "queued"}, headers={"Retry-After": "-5"}).retry_after is None


# --- Response and excerpt ------------------------------------------------------------


def test_response_lowercases_header_names() -> None:
    """Response stores header names in lower case, values unchanged."""
    response = Response(200, {"Content-Type": "application/JSON", "X-Request-ID": "Ab"})
    assert response.headers == {"content-type": "application/JSON", "x-request-id": "Ab"}


def test_response_defaults() -> None:
    """A Response built from a status code alone has no headers, an empty body and no URL."""
    response = Response(204)
    assert (response.status_code, dict(response.headers), response.content, response.url) == (
        204,
        {},
        b"",
        "",
    )


def test_response_text_decodes_utf8_replacing_bad_bytes() -> None:
    """Response.text decodes UTF-8 and replaces undecodable bytes."""
    assert Response(200, {}, "café".encode()).text == "café"
    assert Response(200, {}, b"ok\xff").text == "ok\ufffd"


def test_response_json_parses_the_body() -> None:
    """Response.json parses the content as JSON."""
    assert Response(200, {}, b'{"a": [1, 2.5, null]}').json() == {"a": [1, 2.5, None]}


def test_response_json_error_chains_the_parser_error() -> None:
    """Response.json's ValueError keeps the parser's exception as its cause."""
    with pytest.raises(ValueError, match=r"^response body is not JSON") as info:
        Response(200, {}, b"{").json()
    assert isinstance(info.value.__cause__, json.JSONDecodeError)


def test_response_repr_hides_headers_and_content() -> None:
    """Response's repr shows the status code and URL, never headers or body."""
    response = Response(200, {"Authorization": "Bearer x"}, b"secret", URL)
    assert repr(response) == f"Response(status_code=200, url={URL!r})"


def test_response_is_frozen() -> None:
    """A Response cannot be changed after it is built."""
    response = Response(200)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        response.status_code = 500  # type: ignore[misc]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"", "an empty body"),
        ("", "an empty body"),
        (b"abc", "'abc'"),
        ("abc", "'abc'"),
        (b"it's", '"it\'s"'),
        (b"\xff", "'\ufffd'"),
        ("x" * 200, repr("x" * 200)),
        ("x" * 201, repr("x" * 80) + " ... " + repr("x" * 120) + " (201 characters)"),
        (b"y" * 5000, repr("y" * 80) + " ... " + repr("y" * 120) + " (5000 characters)"),
        ("a" * 150 + "b" * 150, repr("a" * 80) + " ... " + repr("b" * 120) + " (300 characters)"),
    ],
)
def test_excerpt(content: bytes | str, expected: str) -> None:
    """excerpt quotes a body, says so when it is empty, and cuts one over 200 characters to
    its first 80 and its last 120 (a traceback's last line names the exception)."""
    assert excerpt(content) == expected


def test_excerpt_with_custom_limit() -> None:
    """excerpt's limit sets where the text is cut."""
    assert excerpt("abcdefgh", limit=5) == "'ab' ... 'fgh' (8 characters)"
    assert excerpt("abc", limit=3) == "'abc'"


def test_reader_names_are_exported() -> None:
    """The package re-exports the reader and response names."""
    from asyncpoll import _defaultreader, _response, _vocab

    assert asyncpoll.DefaultReader is _defaultreader.DefaultReader
    assert asyncpoll.DEFAULT_STATES is _vocab.DEFAULT_STATES
    assert asyncpoll.Response is _response.Response


def test_an_envelopes_own_message_does_not_hide_the_jobs_error() -> None:
    """With the state inside data, data's failMsg wins over the envelope's message."""
    body = {
        "code": 200,
        "message": "success",
        "data": {"taskId": "t", "state": "fail", "failCode": 500, "failMsg": "model overloaded"},
    }
    status = DefaultReader()(Response(200, {}, json.dumps(body).encode()))
    assert status.state is JobState.FAILED
    assert status.error == "model overloaded"


# ------------------------------------------------------------------ exact edge readings


def test_a_retry_after_of_minus_zero_reads_as_plus_zero() -> None:
    assert str(parse_retry_after("-0", now=0.0)) == "0.0"


@pytest.mark.parametrize("value", [math.inf, -math.inf, math.nan])
def test_a_number_that_is_not_finite_is_none(value: float) -> None:
    assert number(value) is None


@pytest.mark.parametrize(
    ("text", "fraction"),
    [
        ("inf/4", None),
        ("1/inf", None),
        ("1/1", 1.0),
        ("0/4", 0.0),
        ("0.5/4", 0.125),
        ("5/4", 1.0),
        ("1/2/4", None),
    ],
)
def test_a_ratio_text_reads_as_a_fraction(text: str, fraction: float | None) -> None:
    assert progress_fraction(text) == fraction


def test_a_done_total_object_with_a_total_of_one() -> None:
    assert progress_fraction({"done": 1, "total": 1}) == 1.0
    assert progress_fraction({"done": 0, "total": 1}) == 0.0
