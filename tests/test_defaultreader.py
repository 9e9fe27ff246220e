"""The default reader's rules, one at a time: words, where states live, outcomes, error
text, results. (Whole documents of each job system: test_job_systems.py.)"""

from __future__ import annotations

import json
import logging
import pickle
from typing import Any

import anyio
import pytest
from conftest import FakeJobAPI, job

import asyncpoll
from asyncpoll import DefaultReader, JobState, Response, Status
from asyncpoll._response import clip

URL = "https://api.test/v1/jobs/42"


def _read(body: Any, reader: DefaultReader | None = None) -> Status:
    response = Response(200, {}, json.dumps(body).encode(), URL)
    return (reader or DefaultReader())(response)


# --- words ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling",
    ["in_progress", "InProgress", "in-progress", "in progress", "IN_PROGRESS", "In.Progress"],
)
def test_case_and_separators_are_normalised(spelling: str) -> None:
    """One word, however it is spelled."""
    assert _read({"status": spelling}).state is JobState.RUNNING


def test_custom_words_are_normalised_and_override_every_spelling() -> None:
    """A word given in ``states=`` overrides the default under every spelling."""
    reader = DefaultReader(states={"In-Progress": JobState.PENDING, "Rendering": JobState.RUNNING})
    for spelling in ("in_progress", "IN_PROGRESS", "InProgress"):
        assert _read({"status": spelling}, reader).state is JobState.PENDING
    assert _read({"status": "RENDERING"}, reader).state is JobState.RUNNING


@pytest.mark.parametrize("word", ["STOPPED", "REVOKED", "ABORTED", "terminated", "killed"])
def test_a_stopped_or_revoked_job_is_cancelled_with_its_word(word: str) -> None:
    """A word that names a stop or revocation ends the job CANCELLED; the word explains it."""
    status = _read({"status": word})
    assert status.state is JobState.CANCELLED
    assert status.error == f"status {word!r}"


@pytest.mark.parametrize("word", ["CANCELLING", "canceling", "STOPPING"])
def test_a_job_being_stopped_is_still_live(word: str) -> None:
    """Cancelling is not cancelled: the job is still live until the server says so."""
    assert _read({"status": word}).state is JobState.RUNNING


# --- where the state is ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "state", "place"),
    [
        ({"state": {"type": "COMPLETED", "name": "Cached"}}, JobState.SUCCEEDED, "type"),
        ({"state": {"name": "Running"}}, JobState.RUNNING, "name"),
        ({"status": {"phase": "Failed", "message": "pod evicted"}}, JobState.FAILED, "phase"),
        ({"status": {"state": "queued"}}, JobState.PENDING, "state"),
        ({"data": {"state": {"type": "CANCELLED"}}}, JobState.CANCELLED, "type"),
        ({"Status": {"State": "RUNNING"}}, JobState.RUNNING, "State"),
    ],
)
def test_a_state_held_in_an_object_is_read(
    body: dict[str, Any], state: JobState, place: str
) -> None:
    """``state.type``, ``state.name``, ``status.phase``, ``status.state``: read."""
    assert _read(body).state is state


def test_a_state_objects_message_is_the_error_text() -> None:
    """Prefect's ``state.message`` is a failed run's error text."""
    body = {"id": "r", "state": {"type": "FAILED", "message": "Flow run encountered an error"}}
    assert _read(body).error == "Flow run encountered an error"


@pytest.mark.parametrize(
    ("body", "state"),
    [
        ({"JobStatus": "IN_PROGRESS"}, JobState.RUNNING),
        ({"TranscriptionJob": {"TranscriptionJobStatus": "COMPLETED"}}, JobState.SUCCEEDED),
        ({"JobRun": {"JobRunState": "STOPPED"}}, JobState.CANCELLED),
        ({"jobs": [{"jobId": "j", "status": "RUNNABLE"}]}, JobState.PENDING),
        ({"QueryExecution": {"Status": {"State": "FAILED"}}}, JobState.FAILED),
    ],
)
def test_fields_named_like_job_status_and_wrappers_are_read(
    body: dict[str, Any], state: JobState
) -> None:
    """AWS's shapes: a ``...Status`` field, one level down in a wrapper or one-item list."""
    assert _read(body).state is state


def test_an_error_objects_status_is_not_a_job_state() -> None:
    """``error.status`` (Google's error code name) is not read as the job's state."""
    with pytest.raises(ValueError, match="no job state"):
        _read({"error": {"code": 3, "status": "INVALID_ARGUMENT"}})


@pytest.mark.parametrize(
    ("body", "state", "result", "error"),
    [
        ({"name": "operations/1", "done": False}, JobState.RUNNING, None, None),
        ({"name": "operations/1", "metadata": {"@type": "t"}}, JobState.RUNNING, None, None),
        (
            {"name": "operations/1", "done": True, "response": {"x": 1}},
            JobState.SUCCEEDED,
            {"x": 1},
            None,
        ),
        (
            {"name": "o", "done": True, "error": {"code": 13, "message": "internal"}},
            JobState.FAILED,
            None,
            "internal",
        ),
        (
            {"name": "o", "done": True, "error": {"code": 1, "message": "Operation cancelled"}},
            JobState.CANCELLED,
            None,
            "Operation cancelled",
        ),
    ],
)
def test_a_boolean_done_is_a_state(
    body: dict[str, Any], state: JobState, result: Any, error: str | None
) -> None:
    """Google's operations: ``done`` (omitted while running), ``response``, ``error``."""
    status = _read(body)
    assert (status.state, status.result, status.error) == (state, result, error)


@pytest.mark.parametrize(
    ("body", "state", "error"),
    [
        ({"building": True, "result": None}, JobState.RUNNING, None),
        ({"building": False, "result": None}, JobState.RUNNING, None),
        ({"building": False, "result": "SUCCESS"}, JobState.SUCCEEDED, None),
        ({"building": False, "result": "FAILURE"}, JobState.FAILED, "result 'FAILURE'"),
        ({"building": False, "result": "UNSTABLE"}, JobState.FAILED, "result 'UNSTABLE'"),
        ({"building": False, "result": "ABORTED"}, JobState.CANCELLED, "result 'ABORTED'"),
        ({"building": False, "result": "NOT_BUILT"}, JobState.CANCELLED, "result 'NOT_BUILT'"),
    ],
)
def test_jenkins_building_and_result(
    body: dict[str, Any], state: JobState, error: str | None
) -> None:
    """Jenkins: ``building`` says whether it runs; ``result`` how it ended."""
    status = _read(body)
    assert (status.state, status.error) == (state, error)
    if state is JobState.SUCCEEDED:
        assert status.result == body  # the word was the outcome, not a result


# --- outcomes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conclusion", "state"),
    [
        ("success", JobState.SUCCEEDED),
        ("neutral", JobState.SUCCEEDED),
        ("failure", JobState.FAILED),
        ("timed_out", JobState.FAILED),
        ("startup_failure", JobState.FAILED),
        ("action_required", JobState.FAILED),
        ("cancelled", JobState.CANCELLED),
        ("skipped", JobState.CANCELLED),
    ],
)
def test_a_conclusion_decides_beside_completed(conclusion: str, state: JobState) -> None:
    """GitHub's ``completed`` + ``conclusion``: a failed run is not a success."""
    status = _read({"id": 7, "status": "completed", "conclusion": conclusion})
    assert status.state is state
    if state is not JobState.SUCCEEDED:
        assert status.error == f"conclusion {conclusion!r}"


def test_neutral_is_a_success_only_as_an_outcome() -> None:
    """``neutral`` is not a state word by itself: alone it is unknown (read as running)."""
    assert _read({"status": "neutral"}).state is JobState.RUNNING


def test_a_conclusion_while_running_changes_nothing() -> None:
    """An outcome field is read only beside a word that says the job succeeded."""
    assert _read({"status": "in_progress", "conclusion": None}).state is JobState.RUNNING
    assert _read({"status": "queued", "conclusion": "failure"}).state is JobState.PENDING


def test_a_result_word_decides_only_beside_a_generic_completion() -> None:
    """``result`` is an outcome beside ``completed``/``done``/``finished``, not beside
    ``success``, and a result that means success stays the result."""
    failed = _read({"status": "finished", "result": "failed"})
    assert (failed.state, failed.error) == (JobState.FAILED, "result 'failed'")
    assert _read({"status": "SUCCESS", "result": "failure"}).result == "failure"
    assert _read({"status": "done", "result": "done"}).result == "done"
    assert _read({"status": "done", "result": "a text"}).result == "a text"


# --- error text -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ({"error": "plain"}, "plain"),
        ({"error": {"code": 3, "message": "in an object"}}, "in an object"),
        ({"errors": [{"message": "first"}, {"message": "second"}]}, "first"),
        ({"errors": {"object": "list", "data": [{"code": "x", "message": "openai"}]}}, "openai"),
        ({"failMsg": "fail msg"}, "fail msg"),
        ({"failedReason": "bullmq"}, "bullmq"),
        ({"FailureReason": "aws"}, "aws"),
        ({"statusReason": "batch"}, "batch"),
        ({"ErrorMessage": "glue"}, "glue"),
        ({"cause": "step functions"}, "step functions"),
        ({"message": "message"}, "message"),
        ({"reason": "reason"}, "reason"),
        ({"detail": "detail"}, "detail"),
        ({"traceback": "Traceback ...\nValueError: boom\n"}, "Traceback ...\nValueError: boom\n"),
        ({"exc_info": "Traceback ...\nKeyError: 'k'\n"}, "Traceback ...\nKeyError: 'k'\n"),
        ({"result": "ValueError('boom')"}, "ValueError('boom')"),
        ({"exception": "ValueError('boom')"}, "ValueError('boom')"),
        ({"result": "r", "traceback": "t"}, "t"),
        ({"message": "m", "error": "e"}, "e"),
    ],
)
def test_error_text_comes_from_the_fields_job_systems_use(body: dict[str, Any], error: str) -> None:
    """Each field, and which wins when there are several."""
    assert _read({"status": "FAILURE", **body}).error == error


def test_a_failed_results_value_is_not_read_when_it_is_not_text() -> None:
    """A failed job's ``result`` that is not text is no error text."""
    assert _read({"status": "failed", "result": {"partial": 1}}).error is None


def test_a_long_error_keeps_its_beginning_and_end_in_the_message() -> None:
    """A 5,000-character traceback: the message keeps both ends, the exception all of it."""
    frames = "".join(
        f'  File "/app/tasks.py", line {n}, in step{n}\n    step{n + 1}()\n' for n in range(80)
    )
    traceback = f"Traceback (most recent call last):\n{frames}ValueError: the input has 3 pages"
    assert len(traceback) > 4000
    status = _read({"status": "failed", "traceback": traceback})
    error = asyncpoll.JobFailed("j", status)
    message = str(error)
    # One line: the server's line breaks are escaped, so its text cannot forge a log line.
    assert message.startswith("job 'j' failed: Traceback (most recent call last):\\n")
    assert message.endswith("\\nValueError: the input has 3 pages")
    assert "\n" not in message
    assert f"[... {len(traceback) - 1000} characters left out ...]" in message
    assert message == f"job 'j' failed: {clip(traceback, 1000)}"
    assert error.error == status.error == traceback
    assert pickle.loads(pickle.dumps(error)).error == traceback


def test_clip() -> None:
    """clip keeps 2/5 of the limit from the start and 3/5 from the end, on one line."""
    assert clip("abc", 3) == "abc"
    assert clip("0123456789", 5) == "01 [... 5 characters left out ...] 789"
    assert clip("0\n2345678\x1b", 5) == "0\\n [... 5 characters left out ...] 78\\x1b"


# --- results --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "result"),
    [
        ({"status": "succeeded", "output": ["https://x/1.png"]}, ["https://x/1.png"]),
        ({"status": "SUCCEEDED", "output": '{"total": 3}'}, {"total": 3}),
        ({"status": "SUCCEEDED", "output": "plain text"}, "plain text"),
        ({"status": "SUCCEEDED", "output": "[not json"}, "[not json"),
        ({"status": "done", "response": {"r": 1}, "output": 2}, {"r": 1}),
        ({"status": "done", "result": 0, "response": {"r": 1}}, 0),
        ({"status": "Succeeded", "resourceLocation": "https://x/r/1"}, "https://x/r/1"),
    ],
)
def test_a_succeeded_jobs_result(body: dict[str, Any], result: Any) -> None:
    """``result``, then ``resultJson``, ``response``, ``output`` (JSON text parsed), links."""
    assert _read(body).result == result


def test_argo_progress_text_is_a_fraction() -> None:
    """``status.progress`` "1/4" (Argo) is 0.25; ``percentComplete`` is a percentage."""
    assert _read({"status": {"phase": "Running", "progress": "1/4"}}).progress == 0.25
    assert _read({"status": "Running", "percentComplete": 40}).progress == 0.4
    assert _read({"status": "Running", "progress": "3/0"}).progress is None


# --- read(document) -------------------------------------------------------------------


def test_read_takes_a_parsed_document() -> None:
    """``read()`` reads a dict an SDK returned, for ``check=`` functions."""
    status = DefaultReader().read({"jobs": [{"status": "FAILED", "statusReason": "OOM"}]})
    assert (status.state, status.error, status.http_status) == (JobState.FAILED, "OOM", None)
    with pytest.raises(TypeError, match=r"takes a mapping \(a parsed JSON object\), got list"):
        DefaultReader().read([1])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="no job state in the document"):
        DefaultReader().read({"id": 1})


# --- through the poller ---------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("word", ["STOPPED", "REVOKED", "ABORTED"])
async def test_a_job_stopped_on_the_server_ends_cancelled_at_once(
    api: FakeJobAPI, word: str
) -> None:
    """Two jobs stopped on the server end CANCELLED at the poll that says so, not at their
    timeout; neither is a warning about an unknown word."""
    for job_id in ("a", "b"):
        api.script(job_id, job("RUNNING"), job(word))
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}", client=api.client(), schedule=asyncpoll.fixed(5.0), timeout=600.0
    ) as p:
        t0 = anyio.current_time()
        handles = [p.add("a"), p.add("b")]
        for handle in handles:
            with pytest.raises(asyncpoll.JobCancelled) as info:
                await handle
            assert str(info.value) == (
                f"job {handle.job_id!r} was cancelled: cancelled on the server: status {word!r}"
            )
        assert anyio.current_time() - t0 == 5.0
    assert [len(api.times(job_id)) for job_id in ("a", "b")] == [2, 2]


# --- unknown words, per job -----------------------------------------------------------


@pytest.mark.anyio
async def test_each_job_stuck_on_an_unknown_word_warns_when_it_stalls(
    api: FakeJobAPI, caplog: pytest.LogCaptureFixture
) -> None:
    """The reader warns once per word; every job still on it warns again at its stall
    (stall_timeout, or 300 s with none set), naming the word; the timeout bounds it."""
    caplog.set_level(logging.WARNING, logger="asyncpoll")
    for job_id in ("a", "b"):
        api.script(job_id, *[job("Transcoding")] * 40)
    async with asyncpoll.TaskPoller(
        "/jobs/{job_id}",
        client=api.client(),
        schedule=asyncpoll.fixed(60.0),
        timeout=900.0,
    ) as p:
        handles = [p.add("a")]
        await anyio.sleep(30.0)  # virtual time: b's polls come 30 s after a's
        handles.append(p.add("b"))
        for handle in handles:
            with pytest.raises(asyncpoll.JobTimeout):
                await handle
    word = (
        "; the server keeps sending state 'Transcoding', which the reader does not know and "
        "reads as running (teach it the word: DefaultReader(states={...}) or JsonReader(...))"
    )
    assert [r.getMessage() for r in caplog.records] == [
        "unknown job state 'Transcoding' from https://api.test/jobs/a; treating it as running "
        "(map it with DefaultReader(states={...}))",
        f"job 'a' has not changed for 300 s (state running, progress None){word}",
        f"job 'b' has not changed for 300 s (state running, progress None){word}",
        "job 'a' did not finish within 900 s; last state running (pass a larger timeout= to "
        "wait longer)",
        "job 'b' did not finish within 900 s; last state running (pass a larger timeout= to "
        "wait longer)",
    ]
    assert api.times("a") == [60.0 * n for n in range(15)]  # the deadline at 900 s comes first


# --- details of particular systems -----------------------------------------------------


@pytest.mark.parametrize("flag", ["isCancelled", "isTerminated"])
def test_a_batch_job_failed_by_a_cancel_is_cancelled(flag: str) -> None:
    """AWS Batch ends a cancelled or terminated job FAILED with a flag set: CANCELLED."""
    status = DefaultReader().read(
        {"jobs": [{"status": "FAILED", flag: True, "statusReason": "ops"}]}
    )
    assert (status.state, status.error) == (JobState.CANCELLED, "ops")
    assert (
        DefaultReader().read({"jobs": [{"status": "FAILED", flag: False}]}).state is JobState.FAILED
    )


def test_an_error_code_is_joined_to_its_cause() -> None:
    """Step Functions: ``error`` is a code, ``cause`` the reason; the text is both."""
    status = _read({"status": "FAILED", "error": "States.TaskFailed", "cause": "no lines"})
    assert status.error == "States.TaskFailed: no lines"
    assert _read({"status": "FAILED", "cause": "only a cause"}).error == "only a cause"


def test_a_null_state_is_pending() -> None:
    """An Airflow task instance not yet scheduled has ``"state": null``: pending."""
    assert _read({"task_id": "t", "state": None}).state is JobState.PENDING


def test_a_field_named_for_the_job_wins_over_other_status_fields() -> None:
    """SageMaker: ``TrainingJobStatus`` decides, not ``SecondaryStatus`` before it."""
    body = {"SecondaryStatus": "MaxRuntimeExceeded", "TrainingJobStatus": "Failed"}
    assert _read(body).state is JobState.FAILED


def test_a_google_operations_progress_is_in_its_metadata() -> None:
    body = {"name": "operations/7", "metadata": {"progressPercent": 35}}
    assert (_read(body).state, _read(body).progress) == (JobState.RUNNING, 0.35)


def test_an_errors_list_is_not_a_wrapper() -> None:
    """A one-item ``errors`` list holds no job state, whatever it says."""
    with pytest.raises(ValueError, match="no job state"):
        _read({"errors": [{"status": "FAILED_PRECONDITION"}]})


def test_done_with_an_error_text_or_list_is_failed() -> None:
    """Any non-empty ``error`` beside ``done: true`` is a failure, not a success."""
    assert (
        _read({"done": True, "error": "disk full"}).state,
        _read({"done": True, "error": "disk full"}).error,
    ) == (JobState.FAILED, "disk full")
    assert _read({"done": True, "error": ["x"]}).state is JobState.FAILED


def test_a_live_status_reads_a_google_operations_progress_on_either_path() -> None:
    """The short path for live statuses reads ``metadata.progressPercent`` as the long one."""
    for word in ("RUNNING", "IN-PROGRESS"):
        assert _read({"status": word, "metadata": {"progressPercent": 40}}).progress == 0.4


def test_numeric_state_words_stay_apart() -> None:
    """``-1`` and ``1`` (or ``1.0`` and ``10``) are different words."""
    reader = DefaultReader(states={"1": JobState.SUCCEEDED, "-1": JobState.FAILED})
    assert _read({"status": "1"}, reader).state is JobState.SUCCEEDED
    assert _read({"status": "-1"}, reader).state is JobState.FAILED
    json_reader = asyncpoll.JsonReader(state="code", succeeded=["1"], failed=["-1"], running=["10"])
    for code, state in ((1, JobState.SUCCEEDED), (-1, JobState.FAILED), (10, JobState.RUNNING)):
        response = Response(200, {}, json.dumps({"code": code}).encode(), URL)
        assert json_reader(response).state is state


def test_words_that_are_one_word_cannot_mean_two_states() -> None:
    with pytest.raises(ValueError, match=r"'Done' and 'DONE' are one word .* SUCCEEDED and FAILED"):
        DefaultReader(states={"Done": JobState.SUCCEEDED, "DONE": JobState.FAILED})


# ------------------------------------------------ exact readings of the less common shapes


def _refusal(document: dict[Any, Any]) -> str:
    """The message of the PollError a strict reader raises on ``document``."""
    with pytest.raises(asyncpoll.PollError) as caught:
        DefaultReader(unknown="error").read(document)
    return caught.value.message


@pytest.mark.parametrize(
    ("document", "place"),
    [
        ({"JobStatus": "weird"}, "JobStatus"),
        ({"state": {"type": "weird"}}, "state.type"),
        ({"status": {"state": {"type": "weird"}}}, "status.state.type"),
        ({"data": {"state": {"type": "weird"}}}, "data.state.type"),
        ({"data": {"status": "weird"}}, "data.status"),
        ({"building": False, "result": "weird"}, "result"),
    ],
)
def test_an_unknown_word_is_named_with_the_field_holding_it(
    document: dict[str, Any], place: str
) -> None:
    assert _refusal(document) == (
        f"the server reported state 'weird' at {place!r}, which this reader does not know "
        "(map it with DefaultReader(states={...}))"
    )


def test_an_unknown_word_in_a_plain_field_names_no_field() -> None:
    assert _refusal({"phase": {"name": "weird"}}) == (
        "the server reported state 'weird' at 'phase.name', which this reader does not "
        "know (map it with DefaultReader(states={...}))"
    )
    assert _refusal({"status": "weird"}) == (
        "the server reported state 'weird', which this reader does not know (map it with "
        "DefaultReader(states={...}))"
    )


def test_an_unknown_word_in_a_document_is_warned_about_as_from_a_document(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="asyncpoll"):
        status = DefaultReader().read({"status": "percolating"})
    assert (status.state, status.unknown_word) == (JobState.RUNNING, "percolating")
    assert caplog.messages == [
        "unknown job state 'percolating' from a document; treating it as running (map it "
        "with DefaultReader(states={...}))"
    ]


def test_a_state_object_two_levels_deep_is_read_with_its_message() -> None:
    status = DefaultReader().read({"status": {"state": {"type": "FAILED", "message": "boom"}}})
    assert (status.state, status.error) == (JobState.FAILED, "boom")


def test_a_state_object_s_keys_match_in_any_case_the_exact_one_first() -> None:
    """{"Phase": "Failed"} is read like "phase"; a key in its exact case wins."""
    status = DefaultReader().read({"status": {"message": "hi", "Phase": "Failed"}})
    assert (status.state, status.error) == (JobState.FAILED, "hi")
    mixed = DefaultReader().read({"status": {"TYPE": "failed", "type": "succeeded"}})
    assert mixed.state is JobState.SUCCEEDED


def test_an_empty_status_word_gives_way_to_the_next_field() -> None:
    assert DefaultReader().read({"status": "", "state": "failed"}).state is JobState.FAILED


def test_status_wins_over_phase_whatever_their_order() -> None:
    document = {"phase": "Failed", "status": {"type": "Succeeded"}}
    assert DefaultReader().read(document).state is JobState.SUCCEEDED


def test_a_top_level_phase_wins_over_an_envelope_s_status() -> None:
    document = {"phase": "Running", "data": {"status": "failed"}}
    assert DefaultReader().read(document).state is JobState.RUNNING


def test_fields_named_like_state_or_phase_are_read() -> None:
    assert DefaultReader().read({"TaskState": "SUCCEEDED"}).state is JobState.SUCCEEDED
    assert DefaultReader().read({"currentPhase": "Succeeded"}).state is JobState.SUCCEEDED


def test_a_document_with_keys_that_are_not_text_is_read() -> None:
    assert DefaultReader().read({1: "x", "JobStatus": "SUCCEEDED"}).state is JobState.SUCCEEDED


def test_the_error_fields_do_not_hide_a_wrapper_after_them() -> None:
    document = {"errors": [], "job": {"JobStatus": "SUCCEEDED"}}
    assert DefaultReader().read(document).state is JobState.SUCCEEDED


@pytest.mark.parametrize(
    "document",
    [{"name": "operations/123"}, {"name": "projects/p/jobs/1", "metadata": {}}],
)
def test_a_google_operation_without_done_is_running(document: dict[str, Any]) -> None:
    assert DefaultReader().read(document).state is JobState.RUNNING


def test_a_google_operation_s_metadata_that_is_no_object_gives_no_progress() -> None:
    status = DefaultReader().read({"name": "operations/1", "metadata": "x"})
    assert (status.state, status.progress) == (JobState.RUNNING, None)


def test_error_text_under_description() -> None:
    status = DefaultReader().read({"status": "failed", "error": {"description": "disk full"}})
    assert status.error == "disk full"


def test_a_cause_is_joined_to_the_error_field_only() -> None:
    """Step Functions' error + cause; a cause beside other fields, or repeating the
    error, is not appended."""
    read = DefaultReader().read
    assert read({"status": "FAILED", "error": "E", "cause": "C"}).error == "E: C"
    assert read({"status": "FAILED", "error": "E", "cause": "E"}).error == "E"
    assert read({"status": "FAILED", "failureReason": "disk", "cause": "quota"}).error == "disk"


def test_result_links_from_a_list_skip_what_is_not_text() -> None:
    read = DefaultReader().read
    running = read(
        {"status": "running", "resultUrls": [{"href": "x"}, "https://r/1", "https://r/2"]}
    )
    assert running.result_url == "https://r/1"
    done = read({"status": "succeeded", "resultUrls": ["https://r/1", "https://r/2"]})
    assert (done.result_url, done.result) == ("https://r/1", ["https://r/1", "https://r/2"])


def test_a_live_job_s_result_link_is_found_in_the_envelope_too() -> None:
    status = DefaultReader().read({"status": "running", "data": {"resultUrl": "https://r/1"}})
    assert status.result_url == "https://r/1"
    done = DefaultReader().read({"status": "succeeded", "data": {"resultUrl": "https://r/2"}})
    assert done.result_url == "https://r/2"


def test_a_live_document_read_without_a_response() -> None:
    document = {"status": "running", "progress": 50, "resultUrl": "https://r/1"}
    status = DefaultReader().read(document)
    assert (status.state, status.progress, status.result_url, status.http_status) == (
        JobState.RUNNING,
        0.5,
        "https://r/1",
        None,
    )
    assert status.raw is document


def test_a_live_response_s_fields() -> None:
    body = b'{"status": "running", "progress": 25, "resultUrl": "https://r/1"}'
    status = DefaultReader()(Response(200, {"Retry-After": "7"}, body))
    assert (status.progress, status.result_url, status.retry_after, status.http_status) == (
        0.25,
        "https://r/1",
        7.0,
        200,
    )
    assert status.raw == json.loads(body)


def test_a_finished_response_s_retry_after_is_read() -> None:
    status = DefaultReader()(Response(202, {"Retry-After": "5"}, b'{"status": "failed"}'))
    assert (status.state, status.retry_after, status.http_status) == (JobState.FAILED, 5.0, 202)
    plain = DefaultReader()(Response(200, {}, b'{"status": "failed"}'))
    assert plain.retry_after is None


def test_result_json_is_parsed_and_bad_json_is_named() -> None:
    read = DefaultReader().read
    assert read({"status": "succeeded", "resultJson": '{"a": 1}'}).result == {"a": 1}
    assert read({"status": "succeeded", "resultJson": {"a": 1}}).result == {"a": 1}
    with pytest.raises(ValueError, match=r"^'resultJson' does not hold JSON text \(") as caught:
        read({"status": "succeeded", "resultJson": "{nope"})
    assert str(caught.value).endswith("; received '{nope'")


def test_output_json_text_is_parsed_objects_are_kept() -> None:
    read = DefaultReader().read
    assert read({"status": "succeeded", "output": "[1, 2]"}).result == [1, 2]
    assert read({"status": "succeeded", "output": {"a": 1}}).result == {"a": 1}


def test_a_data_field_that_is_no_object_is_no_envelope() -> None:
    status = DefaultReader().read({"status": "failed", "data": "oops", "error": "E"})
    assert (status.state, status.error) == (JobState.FAILED, "E")


def test_a_document_without_state_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"^no job state in the document") as caught:
        DefaultReader().read({"x": 1})
    assert str(caught.value) == (
        "no job state in the document (looked for 'status', 'state' or 'phase', a boolean "
        "'done', and fields named like 'JobStatus', at the top level, inside 'data' and one "
        "level down); received \"{'x': 1}\""
    )


def test_an_unknown_conclusion_gives_way_to_the_outcome_field() -> None:
    document = {"status": "completed", "conclusion": "weird", "outcome": "failure"}
    status = DefaultReader().read(document)
    assert (status.state, status.error) == (JobState.FAILED, "outcome 'failure'")


def test_a_jenkins_result_that_is_not_final_is_running() -> None:
    assert DefaultReader().read({"building": False, "result": "queued"}).state is JobState.RUNNING
    assert DefaultReader().read({"building": False, "result": 1}).state is JobState.RUNNING


def test_a_failed_word_that_is_not_plain_stands_in_for_the_error_text() -> None:
    assert DefaultReader().read({"data": {"status": "crashed"}}).error == "data.status 'crashed'"


def test_a_state_object_in_a_type_field_is_read_two_levels_deep_at_most() -> None:
    """{"state": {"type": {"name": ...}}} is read; a third level is not looked into."""
    read = DefaultReader().read
    assert read({"state": {"type": {"name": "Failed"}}}).state is JobState.FAILED
    with pytest.raises(ValueError, match=r"^no job state in the document"):
        read({"state": {"type": {"name": {"type": "Failed"}}}})


def test_a_top_level_field_beside_an_envelope_is_named_without_a_prefix() -> None:
    assert _refusal({"data": {"id": 1}, "JobStatus": "weird"}) == (
        "the server reported state 'weird' at 'JobStatus', which this reader does not know "
        "(map it with DefaultReader(states={...}))"
    )


def test_a_status_word_beside_a_building_field_keeps_its_result() -> None:
    document = {"status": "succeeded", "building": False, "result": {"pages": 2}}
    assert DefaultReader().read(document).result == {"pages": 2}
