"""Tests for ``asyncpoll._jsonreader``: ``lookup`` and the declarative ``JsonReader``."""

from __future__ import annotations

import json
import logging
import re
from typing import Any

import pytest

from asyncpoll import DEFAULT_STATES, JobState, JsonReader, PollError, Response, Status
from asyncpoll._jsonreader import lookup

URL = "https://api.test/v1/jobs/42"


def _exactly(message: str) -> str:
    """A ``match=`` pattern that accepts ``message`` and nothing else."""
    return f"^{re.escape(message)}$"


def _response(
    body: Any, *, status_code: int = 200, headers: dict[str, str] | None = None
) -> Response:
    """A response whose content is ``body`` as JSON (or as given, for bytes)."""
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Response(status_code, headers or {}, content, URL, request_url=URL)


def _example() -> JsonReader:
    """The reader of JsonReader's docstring."""
    return JsonReader(
        state="data.state",
        succeeded=["success"],
        failed=["failed", "expired"],
        progress="progress.processed_pages/progress.total_pages",
        result="data.resultJson",
        parse_result=True,
        error="data.failMsg",
    )


def _state_body(word: Any) -> dict[str, Any]:
    return {"job": {"state": word}}


# --- lookup --------------------------------------------------------------------------

DOC: dict[str, Any] = {
    "data": {
        "state": "running",
        "items": [{"state": "a"}, {"state": "b"}, {"state": "c"}],
        "count": 0,
        "flag": False,
        "empty": None,
        "text": "abc",
    },
    "list": [[1, 2], [3, 4]],
    "0": "zero",
}


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("data.state", "running"),
        ("data", DOC["data"]),
        ("data.items.0.state", "a"),
        ("data.items.2.state", "c"),
        ("data.items.-1.state", "c"),
        ("data.items.-3.state", "a"),
        ("data.items.01.state", "b"),
        ("list.1.0", 3),
        ("list.-1.-1", 4),
        ("0", "zero"),
        ("data.count", 0),
        ("data.flag", False),
    ],
)
def test_lookup_finds(path: str, value: Any) -> None:
    """lookup follows dotted keys and list indices, negative ones from the end."""
    assert lookup(DOC, path) == value


@pytest.mark.parametrize(
    "path",
    [
        "missing",
        "data.missing",
        "data.state.deeper",
        "data.items.3.state",
        "data.items.-4.state",
        "data.items.x",
        "data.items.1.missing",
        "data.count.x",
        "data.empty",
        "data.empty.x",
        "data.text.0",
        "list.1.2",
        "",
    ],
)
def test_lookup_missing_is_none(path: str) -> None:
    """A path that leads nowhere (a missing key, an index out of range) gives None."""
    assert lookup(DOC, path) is None


@pytest.mark.parametrize("document", [None, "text", 5, [1, 2]])
def test_lookup_in_non_objects(document: Any) -> None:
    """Looking up a key in something that is not an object gives None."""
    assert lookup(document, "data.state") is None


@pytest.mark.parametrize("part", ["--1", "-", "\u00b2"])
def test_lookup_odd_index_is_none(part: str) -> None:
    """A path part that only looks like a list index gives None rather than raising."""
    assert lookup({"items": ["a", "b"]}, f"items.{part}") is None


# --- the docstring example on realistic bodies ---------------------------------------


def test_example_succeeded() -> None:
    """A succeeded job: the parsed resultJson is the result and progress is 1."""
    body = {
        "code": 200,
        "msg": "success",
        "data": {
            "taskId": "task_7",
            "state": "success",
            "resultJson": '{"resultUrls": ["https://cdn.test/out/7.png"], "seed": 12}',
            "failMsg": "",
            "costTime": 15,
        },
        "progress": {"processed_pages": 3, "total_pages": 12},
    }
    status = _example()(_response(body, headers={"Retry-After": "4"}))
    assert status == Status(
        state=JobState.SUCCEEDED,
        progress=1.0,
        result={"resultUrls": ["https://cdn.test/out/7.png"], "seed": 12},
        error=None,
        retry_after=4.0,
        http_status=200,
        raw=body,
        result_url=None,
    )
    assert status.raw == body


def test_example_running_with_progress() -> None:
    """A running job: progress is processed_pages divided by total_pages."""
    body = {
        "data": {"taskId": "task_7", "state": "generating", "resultJson": None, "failMsg": None},
        "progress": {"processed_pages": 3, "total_pages": 12},
    }
    status = _example()(_response(body))
    assert status == Status(state=JobState.RUNNING, progress=0.25, http_status=200, raw=body)


def test_example_waiting_without_progress() -> None:
    """A queued job with no progress object reads PENDING with no progress."""
    body = {"data": {"taskId": "task_7", "state": "waiting"}}
    status = _example()(_response(body))
    assert status == Status(state=JobState.PENDING, progress=None, http_status=200, raw=body)


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("failed", "content policy violation"),
        ("expired", "the task expired after 24 h"),
        ("FAILED", "upstream error"),
    ],
)
def test_example_failed(word: str, message: str) -> None:
    """failed and expired mean FAILED; failMsg is the error text; there is no result."""
    body = {
        "data": {"taskId": "task_7", "state": word, "resultJson": "{}", "failMsg": message},
        "progress": {"processed_pages": 6, "total_pages": 12},
    }
    status = _example()(_response(body))
    assert status == Status(
        state=JobState.FAILED, progress=0.5, error=message, http_status=200, raw=body
    )


def test_example_failed_with_empty_message() -> None:
    """An empty failMsg means no error text."""
    body = {"data": {"state": "failed", "failMsg": ""}}
    assert _example()(_response(body)).error is None


# --- the state vocabulary ------------------------------------------------------------


@pytest.mark.parametrize(("word", "state"), sorted(DEFAULT_STATES.items()))
def test_default_vocabulary(word: str, state: JobState) -> None:
    """With no word lists, the default vocabulary reads the state (in any case)."""
    reader = JsonReader(state="job.state")
    assert reader(_response(_state_body(word))).state is state
    assert reader(_response(_state_body(word.upper()))).state is state


def test_word_lists_extend_the_vocabulary() -> None:
    """Listed words are added for their state, and the default words keep working."""
    reader = JsonReader(
        state="job.state",
        pending=["Enqueued"],
        running=["crunching"],
        succeeded=["OK", "published"],
        failed=["rejected"],
        cancelled=["aborted"],
    )
    expected = {
        "enqueued": JobState.PENDING,
        "ENQUEUED": JobState.PENDING,
        "Crunching": JobState.RUNNING,
        "ok": JobState.SUCCEEDED,
        "Ok": JobState.SUCCEEDED,
        "published": JobState.SUCCEEDED,
        "rejected": JobState.FAILED,
        "aborted": JobState.CANCELLED,
        "queued": JobState.PENDING,
        "processing": JobState.RUNNING,
        "done": JobState.SUCCEEDED,
        "error": JobState.FAILED,
        "canceled": JobState.CANCELLED,
    }
    for word, state in expected.items():
        assert reader(_response(_state_body(word))).state is state, word


def test_word_lists_override_the_vocabulary() -> None:
    """A listed word takes the state it is listed under, whatever the default says."""
    reader = JsonReader(
        state="job.state", failed=["done"], running=["completed"], pending=["Active"]
    )
    assert reader(_response(_state_body("done"))).state is JobState.FAILED
    assert reader(_response(_state_body("completed"))).state is JobState.RUNNING
    assert reader(_response(_state_body("active"))).state is JobState.PENDING
    assert reader(_response(_state_body("finished"))).state is JobState.SUCCEEDED
    assert reader.words["done"] is JobState.FAILED
    assert DEFAULT_STATES["done"] is JobState.SUCCEEDED


def test_numeric_state_codes() -> None:
    """An integer state is read as its decimal text, so numeric codes can be listed."""
    reader = JsonReader(state="code", pending=["0"], running=["1"], succeeded=["2"], failed=["3"])
    assert reader(_response({"code": 0})).state is JobState.PENDING
    assert reader(_response({"code": 1})).state is JobState.RUNNING
    assert reader(_response({"code": 2})).state is JobState.SUCCEEDED
    assert reader(_response({"code": 3})).state is JobState.FAILED


@pytest.mark.parametrize(
    "body",
    [
        {"job": {}},
        {"job": {"state": None}},
        {"job": {"state": True}},
        {"job": {"state": 1.5}},
        {"job": {"state": {"name": "done"}}},
        {"job": {"state": ["done"]}},
        {"job": "done"},
        ["done"],
    ],
)
def test_no_state_at_path_quotes_the_body(body: Any) -> None:
    """No state word at the path raises a ValueError naming the path and quoting the body."""
    text = json.dumps(body)
    message = f"no job state at 'job.state'; received {text!r}"
    with pytest.raises(ValueError, match=_exactly(message)):
        JsonReader(state="job.state")(_response(body))


def test_body_that_is_not_json_raises_value_error() -> None:
    """A 2xx body that is not JSON raises ValueError quoting it."""
    message = "response body is not JSON (Expecting value: line 1 column 1 (char 0)); received "
    with pytest.raises(ValueError, match="^" + re.escape(message + "'<html>oops</html>'") + "$"):
        JsonReader(state="job.state")(_response(b"<html>oops</html>"))


# --- unknown words -------------------------------------------------------------------


def test_unknown_word_is_running_and_warned_once_per_word(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An unknown word reads RUNNING, is kept on the status as sent (for the stall
    warning) and logs one WARNING per word, whatever its case."""
    reader = JsonReader(state="job.state")
    with caplog.at_level(logging.WARNING, logger="asyncpoll"):
        for word in ("Transcoding", "transcoding", "TRANSCODING", "uploading", "transcoding"):
            status = reader(_response(_state_body(word)))
            assert status == Status(
                state=JobState.RUNNING, http_status=200, raw=_state_body(word), unknown_word=word
            )
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        (
            "asyncpoll",
            logging.WARNING,
            f"unknown job state 'Transcoding' at 'job.state' from {URL}; treating it as running",
        ),
        (
            "asyncpoll",
            logging.WARNING,
            f"unknown job state 'uploading' at 'job.state' from {URL}; treating it as running",
        ),
    ]


def test_unknown_words_warned_about_are_capped(caplog: pytest.LogCaptureFixture) -> None:
    """At most 100 distinct unknown words are warned about per reader."""
    reader = JsonReader(state="job.state")
    with caplog.at_level(logging.WARNING, logger="asyncpoll"):
        for n in range(150):
            assert reader(_response(_state_body(f"stage-{n}"))).state is JobState.RUNNING
    assert len(caplog.records) == 100
    assert caplog.records[-1].getMessage().startswith("unknown job state 'stage-99' ")


def test_each_reader_warns_on_its_own(caplog: pytest.LogCaptureFixture) -> None:
    """Two readers each warn about the same unknown word once."""
    with caplog.at_level(logging.WARNING, logger="asyncpoll"):
        for reader in (JsonReader(state="job.state"), JsonReader(state="job.state")):
            reader(_response(_state_body("mystery")))
            reader(_response(_state_body("mystery")))
    assert len(caplog.records) == 2


def test_unknown_error_raises_poll_error(caplog: pytest.LogCaptureFixture) -> None:
    """With unknown="error" an unknown word raises PollError and logs nothing."""
    reader = JsonReader(state="job.state", unknown="error")
    message = (
        "the server reported state 'Transcoding' at 'job.state', which this reader does not "
        "know (list it in JsonReader(...))"
    )
    with (
        caplog.at_level(logging.WARNING, logger="asyncpoll"),
        pytest.raises(PollError, match=_exactly(message)) as caught,
    ):
        reader(_response(_state_body("Transcoding"), status_code=202))
    assert caught.value.http_status == 202
    assert caplog.records == []
    assert reader(_response(_state_body("queued"))).state is JobState.PENDING


# --- progress ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "progress"),
    [
        (50, 0.5),
        (0, 0.0),
        (100, 1.0),
        (250, 1.0),
        (-5, 0.0),
        (1, 0.01),
        (0.25, 0.25),
        (1.0, 1.0),
        (12.5, 0.125),
        ({"done": 3, "total": 4}, 0.75),
        ({"processed_pages": 1, "total_pages": 8}, 0.125),
        ({"processed": 9, "total": 8}, 1.0),
        ({"done": 3, "total": 0}, None),
        ({"done": 3}, None),
        ("50%", None),
        (True, None),
        (None, None),
        ([1, 2], None),
    ],
)
def test_progress_single_path(value: Any, progress: float | None) -> None:
    """One path reads a percentage, a fraction (a float up to 1) or a done/total object."""
    reader = JsonReader(state="job.state", progress="job.progress")
    status = reader(_response({"job": {"state": "running", "progress": value}}))
    assert status.progress == progress


def test_progress_single_path_missing() -> None:
    """A progress path that leads nowhere gives no progress."""
    reader = JsonReader(state="job.state", progress="job.progress")
    assert reader(_response(_state_body("running"))).progress is None


@pytest.mark.parametrize(
    ("done", "total", "progress"),
    [
        (3, 4, 0.75),
        (0, 8, 0.0),
        (8, 8, 1.0),
        (12, 8, 1.0),
        (-1, 8, 0.0),
        (1.5, 6.0, 0.25),
        (3, 0, None),
        (3, -4, None),
        (None, 4, None),
        (3, None, None),
        (True, 4, None),
        (3, "4", None),
    ],
)
def test_progress_division(done: Any, total: Any, progress: float | None) -> None:
    """A "a/b" path divides one number by another; a zero, negative or missing total: None."""
    reader = JsonReader(state="state", progress="counts.done/meta.total")
    body: dict[str, Any] = {"state": "running", "counts": {}, "meta": {}}
    if done is not None:
        body["counts"]["done"] = done
    if total is not None:
        body["meta"]["total"] = total
    assert reader(_response(body)).progress == progress


def test_progress_is_one_on_success() -> None:
    """A succeeded job's progress is 1 whatever the body says."""
    reader = JsonReader(state="state", progress="progress")
    assert reader(_response({"state": "done", "progress": 40})).progress == 1.0
    assert reader(_response({"state": "done"})).progress == 1.0


# --- result, error and result_url ----------------------------------------------------


def test_result_defaults_to_the_whole_body() -> None:
    """With no result path a succeeded job's result is the whole body."""
    body = {"job": {"state": "done"}, "output": [1, 2, 3]}
    assert JsonReader(state="job.state")(_response(body)).result == body


def test_result_path() -> None:
    """A result path picks the result; a missing one gives None."""
    reader = JsonReader(state="job.state", result="job.output.0")
    body = {"job": {"state": "done", "output": [{"url": "u"}, {"url": "v"}]}}
    assert reader(_response(body)).result == {"url": "u"}
    assert reader(_response({"job": {"state": "done"}})).result is None


def test_result_is_only_read_on_success() -> None:
    """A job that has not succeeded has no result."""
    reader = JsonReader(state="job.state", result="job.output")
    body = {"job": {"state": "running", "output": "partial"}}
    assert reader(_response(body)).result is None


def test_parse_result() -> None:
    """parse_result parses JSON text; a value that is not text is kept as it is."""
    reader = JsonReader(state="job.state", result="job.out", parse_result=True)
    body: dict[str, Any] = {"job": {"state": "done", "out": '{"a": [1, 2]}'}}
    assert reader(_response(body)).result == {"a": [1, 2]}
    body = {"job": {"state": "done", "out": {"a": [1, 2]}}}
    assert reader(_response(body)).result == {"a": [1, 2]}
    body = {"job": {"state": "done", "out": "null"}}
    assert reader(_response(body)).result is None
    body = {"job": {"state": "done"}}
    assert reader(_response(body)).result is None


def test_without_parse_result_text_stays_text() -> None:
    """Without parse_result JSON text is returned as text."""
    reader = JsonReader(state="job.state", result="job.out")
    body = {"job": {"state": "done", "out": '{"a": 1}'}}
    assert reader(_response(body)).result == '{"a": 1}'


def test_parse_result_with_invalid_json_names_the_path() -> None:
    """Text that is not JSON raises ValueError naming the result path and quoting the text."""
    reader = JsonReader(state="job.state", result="job.out", parse_result=True)
    body = {"job": {"state": "done", "out": "{oops"}}
    message = (
        "'job.out' does not hold JSON text (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)); received '{oops'"
    )
    with pytest.raises(ValueError, match=_exactly(message)):
        reader(_response(body))


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("disk full", "disk full"),
        ({"message": "disk full", "code": 507}, "disk full"),
        ({"msg": "disk full"}, "disk full"),
        ({"message": "", "msg": "quota"}, "quota"),
        ({"code": 507}, None),
        ("", None),
        (None, None),
        (507, "507"),
    ],
)
@pytest.mark.parametrize(
    ("word", "state"), [("failed", JobState.FAILED), ("cancelled", JobState.CANCELLED)]
)
def test_error_path(word: str, state: JobState, value: Any, error: str | None) -> None:
    """The error path gives a failed or cancelled job's text: a string or {"message": ...}."""
    reader = JsonReader(state="job.state", error="job.error")
    status = reader(_response({"job": {"state": word, "error": value}}))
    assert (status.state, status.error) == (state, error)


def test_error_is_only_read_when_failed_or_cancelled() -> None:
    """A running or succeeded job has no error text."""
    reader = JsonReader(state="job.state", error="job.error")
    for word in ("running", "done"):
        assert reader(_response({"job": {"state": word, "error": "boom"}})).error is None


@pytest.mark.parametrize(
    ("value", "result_url"),
    [
        ("https://cdn.test/out/1.json", "https://cdn.test/out/1.json"),
        (["https://cdn.test/a.png", "https://cdn.test/b.png"], "https://cdn.test/a.png"),
        ([], None),
        ([5, "https://cdn.test/b.png"], None),
        ("", None),
        (None, None),
        ({"href": "https://cdn.test/a"}, None),
    ],
)
@pytest.mark.parametrize("word", ["done", "running"])
def test_result_url_path(word: str, value: Any, result_url: str | None) -> None:
    """result_url reads a link, or the first of a list of links, in any state."""
    reader = JsonReader(state="job.state", result_url="job.links")
    status = reader(_response({"job": {"state": word, "links": value}}))
    assert status.result_url == result_url


# --- status codes that say the state -------------------------------------------------


def test_claims() -> None:
    """claims() is True exactly for the codes listed in status_codes."""
    reader = JsonReader(
        state="job.state", status_codes={404: JobState.FAILED, 410: JobState.CANCELLED}
    )
    assert [code for code in (200, 202, 404, 410, 429, 500) if reader.claims(code)] == [404, 410]
    assert not JsonReader(state="job.state").claims(404)


def test_claimed_status_with_a_body_that_is_not_json() -> None:
    """A claimed 404 whose body is not JSON reads as the mapped state."""
    reader = JsonReader(
        state="job.state",
        progress="job.progress",
        error="job.error",
        result_url="job.link",
        status_codes={404: JobState.FAILED},
    )
    status = reader(_response(b"<html>Not Found</html>", status_code=404))
    assert status == Status(state=JobState.FAILED, http_status=404, raw=None)


def test_claimed_status_with_a_json_body() -> None:
    """A claimed code's state wins over the body's word; the error path is still read."""
    reader = JsonReader(state="job.state", error="detail", status_codes={404: JobState.FAILED})
    body = {"job": {"state": "running"}, "detail": "job expired and was deleted"}
    status = reader(_response(body, status_code=404, headers={"Retry-After": "2"}))
    assert status == Status(
        state=JobState.FAILED,
        error="job expired and was deleted",
        retry_after=2.0,
        http_status=404,
        raw=body,
    )


def test_claimed_success_has_the_body_as_result() -> None:
    """A code mapped to SUCCEEDED gives the body (or None) as the result."""
    reader = JsonReader(state="job.state", status_codes={204: JobState.SUCCEEDED})
    assert reader(_response(b"", status_code=204)) == Status(
        state=JobState.SUCCEEDED, progress=1.0, http_status=204
    )


# --- invalid arguments ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (
            {"state": ""},
            ValueError,
            "JsonReader(state=) must be a dotted path like 'data.state', got ''",
        ),
        (
            {"state": "data..state"},
            ValueError,
            "JsonReader(state=) must be a dotted path like 'data.state', got 'data..state'",
        ),
        (
            {"state": 5},
            ValueError,
            "JsonReader(state=) must be a dotted path like 'data.state', got 5",
        ),
        (
            {"state": "s", "result": ""},
            ValueError,
            "JsonReader(result=) must be a dotted path like 'data.state', got ''",
        ),
        (
            {"state": "s", "error": "a..b"},
            ValueError,
            "JsonReader(error=) must be a dotted path like 'data.state', got 'a..b'",
        ),
        (
            {"state": "s", "result_url": ["links"]},
            ValueError,
            "JsonReader(result_url=) must be a dotted path like 'data.state', got ['links']",
        ),
        (
            {"state": "s", "progress": "a/b/c"},
            ValueError,
            "JsonReader(progress=) takes 'path' or 'path/path', got 'a/b/c'",
        ),
        (
            {"state": "s", "progress": "done/"},
            ValueError,
            "JsonReader(progress=) must be a dotted path like 'data.state', got ''",
        ),
        (
            {"state": "s", "progress": "a..b/c"},
            ValueError,
            "JsonReader(progress=) must be a dotted path like 'data.state', got 'a..b'",
        ),
        (
            {"state": "s", "unknown": "ignore"},
            ValueError,
            "JsonReader(unknown=) must be 'running' or 'error', got 'ignore'",
        ),
        (
            {"state": "s", "succeeded": "done"},
            TypeError,
            "JsonReader: state words must be a list, got the string 'done'",
        ),
        (
            {"state": "s", "failed": "error"},
            TypeError,
            "JsonReader: state words must be a list, got the string 'error'",
        ),
        (
            {"state": "s", "status_codes": {404: "failed"}},
            TypeError,
            "JsonReader(status_codes=): 404 maps to 'failed', not a JobState",
        ),
    ],
)
def test_invalid_arguments(kwargs: dict[str, Any], error: type[Exception], message: str) -> None:
    """Bad constructor arguments raise at once, with a message saying what was expected."""
    with pytest.raises(error, match=_exactly(message)):
        JsonReader(**kwargs)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"state": None}, "state"), ({"state": "s", "progress": 5}, "progress")],
)
def test_non_string_paths_are_refused(kwargs: dict[str, Any], name: str) -> None:
    """A required path of None, or a progress path that is no string, is refused up front."""
    with pytest.raises((TypeError, ValueError), match=re.escape(f"JsonReader({name}=)")):
        JsonReader(**kwargs)


def test_repr_and_attributes() -> None:
    """The reader keeps its settings and shows its state path."""
    reader = _example()
    assert repr(reader) == "JsonReader(state='data.state')"
    assert reader.state_path == "data.state"
    assert reader.progress_path == "progress.processed_pages/progress.total_pages"
    assert reader.result_path == "data.resultJson"
    assert reader.parse_result is True
    assert reader.error_path == "data.failMsg"
    assert reader.result_url_path is None
    assert reader.status_codes == {}
    assert reader.unknown == "running"


def test_listed_words_are_matched_whatever_their_separators() -> None:
    """A listed word matches every spelling, and overrides the default under each."""
    reader = JsonReader(state="job.state", cancelled=["In-Progress"], running=["Transcoding"])
    for spelling in ("in_progress", "InProgress", "IN PROGRESS"):
        assert reader(_response(_state_body(spelling))).state is JobState.CANCELLED
    assert reader(_response(_state_body("TRANS_CODING"))).state is JobState.RUNNING


def test_a_path_starting_with_a_dot_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must be a dotted path like 'data.state', got '.state'"):
        JsonReader(state=".state")


def test_a_progress_ratio_with_a_total_of_one() -> None:
    reader = JsonReader(state="state", progress="done/total")
    status = reader(_response({"state": "running", "done": 1, "total": 1}))
    assert status.progress == 1.0
