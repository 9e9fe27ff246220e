"""The job systems people poll, read with no configuration: every status document of
``tests/jobsystems.py`` through the default reader, and every system end to end.

Three layers, each parametrised over the data module's cases:

- the pure reader: an ``asyncpoll.Response`` holding the document's JSON, read with
  ``asyncpoll.DefaultReader()`` (AWS documents are boto3 response dicts, read with
  ``DefaultReader().read(doc)``): the exact state, result, error text and progress;
- end to end: a ``TaskPoller`` with default settings against the suite's fake job API
  (a ``check=`` function for AWS), serving the system's running document and then the
  terminal one: what awaiting the handle gives or raises, and the number of status
  requests;
- the behaviours issue 9 names, one test each.

What each document must give is the issue 9 contract (``/work/notes/contract-issue9.md``);
the data module's ``note`` fields say where a system's own meaning differs.
"""

from __future__ import annotations

import json
import re
from typing import Any

import anyio
import httpx
import pytest
from conftest import FakeJobAPI
from jobsystems import (
    CELERY_TASK,
    NO_RESULT,
    PREFECT_RUN,
    SYSTEMS,
    WHOLE_BODY,
    Case,
    System,
    all_cases,
)

import asyncpoll
from asyncpoll import JobState

CASES = list(all_cases())
TERMINAL = [case for case in CASES if case.terminal]


def ids(case: Case) -> str:
    return case.id


def read(system: System, document: Any) -> asyncpoll.Status:
    """The default reader's ``Status`` for ``document``, as the system delivers it."""
    if system.sdk:
        return asyncpoll.DefaultReader().read(document)
    url = f"https://jobs.example.com/{system.key}/{system.job_id}"
    response = asyncpoll.Response(
        200,
        headers={"Content-Type": "application/json"},
        content=json.dumps(document).encode(),
        url=url,
        request_url=url,
    )
    return asyncpoll.DefaultReader()(response)


async def outcome(handle: asyncpoll.JobHandle) -> Any:
    """What awaiting the handle gives: its result, or the exception it raises."""
    try:
        return await handle
    except asyncpoll.AsyncPollError as exc:
        return exc


def check_outcome(case: Case, job_id: str, got: Any) -> None:
    """``got`` (the handle's result or exception) is what ``case`` says it must be."""
    if case.state is JobState.SUCCEEDED:
        assert not isinstance(got, BaseException), got
        assert got == case.expected_result()
    elif case.state is JobState.FAILED:
        assert isinstance(got, asyncpoll.JobFailed), got
        assert str(got).startswith(f"job {job_id!r} failed")
        if case.error is not None:
            assert str(got).startswith(f"job {job_id!r} failed: "), str(got)
            assert case.error in str(got)
            assert case.error in (got.status.error or "")
    else:
        assert case.state is JobState.CANCELLED
        assert isinstance(got, asyncpoll.JobCancelled), got
        assert got.reason.startswith("cancelled on the server"), got.reason
        if case.error is not None:
            assert got.reason.startswith("cancelled on the server: "), got.reason
            assert case.error in got.reason


async def poll_one(api: FakeJobAPI, system: System, *documents: Any) -> tuple[Any, int]:
    """Poll the system's job with default settings while the server answers ``documents``
    in turn (the last repeating): what awaiting its handle gave, and the status requests."""
    if system.sdk:
        calls: list[float] = []

        async def check(handle: asyncpoll.JobHandle) -> asyncpoll.Status:
            calls.append(anyio.current_time())
            return asyncpoll.DefaultReader().read(documents[min(len(calls), len(documents)) - 1])

        async with asyncpoll.TaskPoller() as poller:
            got = await outcome(poller.add(system.job_id, check=check))
        return got, len(calls)
    api.script(system.job_id, *(httpx.Response(200, json=doc) for doc in documents))
    async with (
        api.client() as client,
        asyncpoll.TaskPoller("/jobs/{job_id}", client=client) as poller,
    ):
        got = await outcome(poller.add(system.job_id))
    return got, len(api.times(system.job_id))


# ---------------------------------------------------------------- the data module itself


def _values(value: Any) -> list[Any]:
    """Every value nested in ``value``, ``value`` included."""
    found = [value]
    if isinstance(value, dict):
        for item in value.values():
            found += _values(item)
    elif isinstance(value, list):
        for item in value:
            found += _values(item)
    return found


def _parsed(value: Any) -> Any:
    """``value`` parsed, when it is JSON text (a result held as text); else None."""
    try:
        return json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None


@pytest.mark.parametrize("system", list(SYSTEMS.values()), ids=lambda s: s.key)
def test_each_system_has_a_live_succeeded_failed_and_stopped_case(system: System) -> None:
    """At least four cases per system: live, succeeded, failed, and cancelled or stopped."""
    states = [case.state for case in system.cases]
    assert len(system.cases) >= 4
    assert len({case.name for case in system.cases}) == len(system.cases)
    assert JobState.RUNNING in states or JobState.PENDING in states
    assert JobState.SUCCEEDED in states and JobState.FAILED in states
    assert any(
        case.state is JobState.CANCELLED or re.search(r"stop|cancel|abort|terminat", case.name)
        for case in system.cases
    )
    assert not system.live_case().terminal
    assert all(case.system == system.key for case in system.cases)


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_each_case_expects_what_its_document_holds(case: Case) -> None:
    """The expected result is in the document, and so is the expected error text: as
    written, or (derived text) the quoted word as a value of the document."""
    text = json.dumps(case.document, default=str, ensure_ascii=False)
    if case.state is JobState.SUCCEEDED:
        assert case.result is not NO_RESULT
        assert case.result is WHOLE_BODY or any(
            v == case.result or _parsed(v) == case.result for v in _values(case.document)
        )
    else:
        assert case.result is NO_RESULT
        assert case.state.is_terminal or case.error is None
    if case.error is not None and case.error not in text:
        derived = re.fullmatch(r"(?:(\w+) )?'([^']+)'", case.error)
        assert derived, f"{case.error!r} is neither in the document nor a derived text"
        key, word = derived.groups()
        assert (f'"{key}": "{word}"' if key else f'"{word}"') in text


# ---------------------------------------------------------------- the pure reader


@pytest.mark.parametrize("case", CASES, ids=ids)
def test_the_default_reader_reads_the_document(case: Case) -> None:
    """State, result, error text and progress, exactly."""
    status = read(SYSTEMS[case.system], case.document)
    assert status.state is case.state
    if case.state is JobState.SUCCEEDED:
        assert status.result == case.expected_result()
    if case.error is not None:
        assert status.error is not None and case.error in status.error
    if case.progress is not None:
        assert status.progress == pytest.approx(case.progress)


# ---------------------------------------------------------------- end to end, per system


@pytest.mark.anyio
@pytest.mark.parametrize("case", TERMINAL, ids=ids)
async def test_a_polled_job_ends_as_its_system_says(api: FakeJobAPI, case: Case) -> None:
    """Running, then the terminal document: the handle returns the result or raises
    JobFailed / JobCancelled with the system's text, after exactly two status requests."""
    system = SYSTEMS[case.system]
    got, requests = await poll_one(api, system, system.live_for(case).document, case.document)
    check_outcome(case, system.job_id, got)
    assert requests == 2


# ---------------------------------------------------------------- the behaviours issue 9 names

_STOPPED = [
    pytest.param({"status": "RUNNING"}, {"status": "STOPPED"}, None, id="status STOPPED"),
    pytest.param({"state": "STARTED"}, {"state": "REVOKED"}, None, id="state REVOKED"),
    pytest.param({"status": "RUNNING"}, {"status": "ABORTED"}, None, id="status ABORTED"),
    pytest.param(
        SYSTEMS["ray"].case("running").document,
        SYSTEMS["ray"].case("stopped").document,
        "Job was intentionally stopped.",
        id="Ray STOPPED",
    ),
    pytest.param(
        SYSTEMS["celery"].case("result: started").document,
        SYSTEMS["celery"].case("result: revoked (terminated)").document,
        "TaskRevokedError('terminated')",
        id="Flower REVOKED",
    ),
    pytest.param(
        SYSTEMS["celery"].case("info: started").document,
        SYSTEMS["celery"].case("info: revoked").document,
        "state 'REVOKED'",
        id="Flower info REVOKED",
    ),
    pytest.param(
        SYSTEMS["jenkins"].case("building").document,
        SYSTEMS["jenkins"].case("ABORTED").document,
        "'ABORTED'",
        id="Jenkins ABORTED",
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize(("running", "stopped", "text"), _STOPPED)
async def test_a_stopped_revoked_or_aborted_job_ends_cancelled(
    api: FakeJobAPI, running: dict[str, Any], stopped: dict[str, Any], text: str | None
) -> None:
    """STOPPED, REVOKED and ABORTED mean the job was cancelled on the server: the handle
    raises JobCancelled, not JobFailed, and does not keep polling."""
    system = SYSTEMS["ray"]
    assert read(system, stopped).state is JobState.CANCELLED
    got, requests = await poll_one(api, system, running, stopped)
    assert isinstance(got, asyncpoll.JobCancelled), got
    assert got.reason.startswith("cancelled on the server")
    if text is not None:
        assert got.reason.startswith("cancelled on the server: ")
        assert text in got.reason
    assert requests == 2


def test_an_aborted_step_functions_execution_reads_cancelled() -> None:
    """Through DefaultReader().read(): ABORTED is CANCELLED, with the cause as its text."""
    status = asyncpoll.DefaultReader().read(SYSTEMS["aws"].case("step functions: aborted").document)
    assert status.state is JobState.CANCELLED
    assert status.error == "superseded by run-2024-05-01b"


@pytest.mark.anyio
async def test_a_state_object_with_a_type_and_a_message_is_read(api: FakeJobAPI) -> None:
    """Prefect's ``state`` is an object: its ``type`` is the state word, its ``message`` a
    failed run's error text."""
    system = SYSTEMS["prefect"]
    done = {"state": {"type": "COMPLETED", "name": "Completed", "message": "All states completed."}}
    status = read(system, done)
    assert status.state is JobState.SUCCEEDED
    assert status.result == done

    running = {"state": {"type": "RUNNING", "name": "Running", "message": None}}
    failed = {
        "state": {
            "type": "FAILED",
            "name": "Failed",
            "message": "Flow run encountered an exception: boom",
        }
    }
    assert read(system, running).state is JobState.RUNNING
    assert read(system, failed).error == "Flow run encountered an exception: boom"
    got, requests = await poll_one(api, system, running, failed)
    assert isinstance(got, asyncpoll.JobFailed), got
    assert str(got) == f"job {system.job_id!r} failed: Flow run encountered an exception: boom"
    assert requests == 2

    got, requests = await poll_one(api, system, running, done)
    assert got == done


_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/billing/tasks.py", line 88, in render_invoice\n'
    '    raise ValueError(f"invoice {invoice_id} has no lines")\n'
    "ValueError: invoice 1042 has no lines\n"
)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        pytest.param({"result": "ValueError('invoice 1042 has no lines')"}, id="result only"),
        pytest.param({"traceback": _TRACEBACK}, id="traceback only"),
        pytest.param(
            {"result": "ValueError('invoice 1042 has no lines')", "traceback": _TRACEBACK},
            id="result and traceback",
        ),
    ],
)
async def test_a_celery_failure_gives_the_text_under_result_or_traceback(
    api: FakeJobAPI, failure: dict[str, str]
) -> None:
    """Flower's FAILURE carries no ``error``: the exception's text is under ``result``
    (its repr) and ``traceback``; either one is the error text."""
    system = SYSTEMS["celery"]
    document = {"task-id": CELERY_TASK, "state": "FAILURE", **failure}
    status = read(system, document)
    assert status.state is JobState.FAILED
    assert status.error is not None and "invoice 1042 has no lines" in status.error
    got, requests = await poll_one(
        api, system, {"task-id": CELERY_TASK, "state": "STARTED"}, document
    )
    assert isinstance(got, asyncpoll.JobFailed), got
    assert "invoice 1042 has no lines" in str(got)
    assert "invoice 1042 has no lines" in (got.status.error or "")
    assert requests == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "document",
    [
        pytest.param({"status": "completed", "conclusion": "failure"}, id="minimal"),
        pytest.param(
            SYSTEMS["github"].case("completed: failure").document, id="GitHub workflow run"
        ),
    ],
)
async def test_completed_with_a_failure_conclusion_is_failed(
    api: FakeJobAPI, document: dict[str, Any]
) -> None:
    """``status`` says only that the run ended; ``conclusion`` says how: failure is FAILED,
    with "conclusion 'failure'" for its text, since the run carries none."""
    system = SYSTEMS["github"]
    status = read(system, document)
    assert status.state is JobState.FAILED
    assert status.error == "conclusion 'failure'"
    got, requests = await poll_one(
        api, system, {"status": "in_progress", "conclusion": None}, document
    )
    assert isinstance(got, asyncpoll.JobFailed), got
    assert str(got) == f"job {system.job_id!r} failed: conclusion 'failure'"
    assert requests == 2


# ---------------------------------------------------------------- cancel options per job


_SET_STATE_ANSWER = {
    "status": "ACCEPT",
    "details": {"type": "accept_details"},
    "state": {"type": "CANCELLING", "name": "Cancelling", "message": "stopped from asyncpoll"},
}
_CANCELLING = {
    "state": {"type": "CANCELLING", "name": "Cancelling", "message": "stopped from asyncpoll"}
}


@pytest.mark.anyio
@pytest.mark.parametrize("how", ["add", "submit"])
async def test_a_cancel_with_a_json_body_is_set_per_job(api: FakeJobAPI, how: str) -> None:
    """Prefect cancels by POSTing a state to ``/set_state``: ``cancel_url``,
    ``cancel_method`` and ``cancel_json`` given to ``add()`` or ``submit()`` send exactly
    that, and an accepted cancel resolves the handle CANCELLED."""
    prefect = SYSTEMS["prefect"]
    running = prefect.case("running").document
    set_state = api.router.post(f"/api/flow_runs/{PREFECT_RUN}/set_state").respond(
        201, json=_SET_STATE_ANSWER
    )
    create = api.router.post(
        "/api/deployments/d3f5a7b9-c1e2-4d4f-a6b8-c0d2e4f6a8b1/create_flow_run"
    ).respond(201, json=prefect.case("scheduled").document)
    api.script(
        PREFECT_RUN, httpx.Response(200, json=running), httpx.Response(200, json=_CANCELLING)
    )
    body = {"state": {"type": "CANCELLING", "message": "stopped from asyncpoll"}}
    options: dict[str, Any] = {
        "cancel_url": f"/api/flow_runs/{PREFECT_RUN}/set_state",
        "cancel_method": "POST",
        "cancel_json": body,
    }
    async with (
        api.client() as client,
        asyncpoll.TaskPoller("/jobs/{job_id}", client=client) as poller,
    ):
        if how == "add":
            handle = poller.add(PREFECT_RUN, **options)
        else:
            handle = await poller.submit(
                "/api/deployments/d3f5a7b9-c1e2-4d4f-a6b8-c0d2e4f6a8b1/create_flow_run",
                json={"parameters": {"date": "2024-05-01"}},
                **options,
            )
            assert handle.job_id == PREFECT_RUN
            assert create.call_count == 1
        await anyio.sleep(0.5)
        assert handle.state is JobState.RUNNING
        assert await handle.cancel_remote() is True
        got = await outcome(handle)
    assert isinstance(got, asyncpoll.JobCancelled), got
    [call] = set_state.calls
    assert call.request.method == "POST"
    assert json.loads(call.request.content) == body
    assert call.request.headers["content-type"] == "application/json"
