"""Status documents of the job systems people poll, one set per system, as their APIs send them.

Each document is built from the fields each system's public API reference documents, with
made-up but realistic ids and values (no document is copied from a page). A ``Case`` says
what asyncpoll's default reader must make of its document, as the issue 9 contract states
it (``/work/notes/contract-issue9.md``): the state, the result a succeeded job's handle
resolves to, the text a failed or cancelled job's error must contain, and the progress
where the system sends one the contract reads.

Where a system's real shape and the contract disagree (an AWS Batch job cancelled with
``CancelJob`` ends ``FAILED``; ``argo stop`` ends a workflow ``Failed``), the case states
what the contract gives, and its ``note`` says so.

Sources (public API references):

- Celery through Flower: https://flower.readthedocs.io/en/latest/api.html and the handlers
  in https://github.com/mher/flower (flower/api/tasks.py: ``/api/task/result/{id}`` adds
  ``result`` (``repr()`` of a value that is not JSON) and, for FAILURE, ``traceback``;
  ``/api/task/info/{id}`` is the event-state dict, its ``result`` a ``repr()`` string).
- RQ: https://python-rq.org/docs/jobs/ (``job.get_status()``, ``job.return_value()``,
  ``job.exc_info``). RQ has no HTTP API: the documents are what a user's own endpoint
  returns from those calls (see ``docs/job-systems.md``).
- Ray Jobs: https://docs.ray.io/en/latest/cluster/running-applications/job-submission/rest.html
  and .../job-submission/api.html (``GET /api/jobs/{submission_id}``: JobDetails).
- Prefect: https://docs.prefect.io/v3/api-ref/rest-api/server/flow-runs/read-flow-run and
  https://docs.prefect.io/v3/concepts/states (state ``type``/``name``/``message``).
- Airflow 3 REST API v2: https://airflow.apache.org/docs/apache-airflow/stable/stable-rest-api-ref.html
  (DAGRunResponse, TaskInstanceResponse, states).
- Azure: https://github.com/microsoft/api-guidelines/blob/vNext/azure/Guidelines.md
  (status monitor: ``id``, ``status``, ``error``, ``result``) and
  .../azure/ConsiderationsForServiceDesign.md (``POST {monitor}:cancel``); Azure Maps
  Creator's monitor (``resourceLocation``):
  https://learn.microsoft.com/azure/azure-maps/creator-long-running-operation ; ARM
  Azure-AsyncOperation (``InProgress``, ``percentComplete``):
  https://learn.microsoft.com/azure/azure-resource-manager/management/async-operations ;
  Azure AI Language jobs (``jobId``, ``errors``, ``:cancel``):
  https://learn.microsoft.com/rest/api/language/analyze-text/analyze-text-submit-job
- Google: https://cloud.google.com/speech-to-text/docs/reference/rest/v1/operations
  (google.longrunning.Operation: ``name``, ``metadata``, ``done``, ``response``, ``error``;
  a cancelled operation has ``error.code`` 1) and Cloud Translation v3
  BatchTranslateMetadata (``metadata.state``).
- AWS (boto3 response dicts): Batch DescribeJobs
  https://docs.aws.amazon.com/batch/latest/APIReference/API_DescribeJobs.html , Transcribe
  GetTranscriptionJob .../transcribe/latest/APIReference/API_GetTranscriptionJob.html ,
  Step Functions DescribeExecution
  .../step-functions/latest/apireference/API_DescribeExecution.html ,
  SageMaker DescribeTrainingJob .../sagemaker/latest/APIReference/API_DescribeTrainingJob.html
- OpenAI: https://platform.openai.com/docs/api-reference/batch/object and
  https://platform.openai.com/docs/api-reference/fine-tuning/object
- Replicate: https://replicate.com/docs/reference/http#predictions.get
- GitHub Actions: https://docs.github.com/en/rest/actions/workflow-runs#get-a-workflow-run
- Jenkins: https://www.jenkins.io/doc/book/using/remote-access-api/ (``.../{n}/api/json``:
  ``building``, ``result``; the queue item's ``executable``).
- Argo Workflows: https://argo-workflows.readthedocs.io/en/latest/swagger/ and
  https://argo-workflows.readthedocs.io/en/latest/rest-examples/ (Workflow ``status.phase``,
  ``status.message``, ``status.progress``).
"""

from __future__ import annotations

import copy
import datetime
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from asyncpoll import JobState


class _Sentinel:
    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: A succeeded case whose handle resolves to the whole status document.
WHOLE_BODY: Any = _Sentinel("WHOLE_BODY")

#: A case that is not succeeded: there is no result to check.
NO_RESULT: Any = _Sentinel("NO_RESULT")


@dataclass(frozen=True)
class Case:
    """One status document and what the default reader must make of it.

    Attributes:
        system: the key of the system in ``SYSTEMS``.
        name: what the document shows, unique within the system.
        document: the parsed JSON body (or, for ``sdk`` systems, the SDK's response dict).
        state: the state the reader must report.
        result: a succeeded job's result (``WHOLE_BODY``: the document itself).
        error: text the error must contain (failed and cancelled cases); None: the
            document carries no text and the contract does not say what is shown.
        progress: the progress (0..1) the reader must report; None: not checked.
        note: where the contract and the system's own meaning part ways.
    """

    system: str
    name: str
    document: Any
    state: JobState
    result: Any = NO_RESULT
    error: str | None = None
    progress: float | None = None
    note: str = ""

    @property
    def id(self) -> str:
        return f"{self.system}: {self.name}"

    @property
    def terminal(self) -> bool:
        return self.state.is_terminal

    def expected_result(self) -> Any:
        """What awaiting the handle returns (succeeded cases only)."""
        assert self.state is JobState.SUCCEEDED
        return self.document if self.result is WHOLE_BODY else self.result


@dataclass(frozen=True)
class System:
    """A job system: where its documents come from and the id of the job they describe.

    Attributes:
        key: short name, the key in ``SYSTEMS``.
        title: the system's name in prose.
        job_id: the id of the job every document describes.
        sdk: the documents are SDK response dicts (boto3), read with
            ``DefaultReader().read(doc)`` in a ``check=`` function, not HTTP bodies.
        live: the name of the case served while the job runs, in end-to-end tests.
        cases: the system's cases.
    """

    key: str
    title: str
    job_id: str
    live: str
    sdk: bool = False
    cases: tuple[Case, ...] = field(default=())

    def case(self, name: str) -> Case:
        for case in self.cases:
            if case.name == name:
                return case
        raise KeyError(f"{self.key} has no case {name!r}")

    def live_case(self) -> Case:
        return self.case(self.live)

    def terminal_cases(self) -> list[Case]:
        return [case for case in self.cases if case.terminal]

    def live_for(self, case: Case) -> Case:
        """The live case to serve before ``case``: one of the same kind of document
        (the same ``"kind: "`` prefix of its name), running if there is one."""
        prefix = case.name.split(": ")[0] + ": " if ": " in case.name else None
        same = [c for c in self.cases if not c.terminal and prefix and c.name.startswith(prefix)]
        running = [c for c in same if c.state is JobState.RUNNING]
        return (running or same or [self.live_case()])[0]


def _merge(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A deep copy of ``base`` with top-level keys replaced (a None value stays None)."""
    doc = copy.deepcopy(base)
    doc.update(copy.deepcopy(changes))
    return doc


def _utc(*args: int) -> datetime.datetime:
    return datetime.datetime(*args, tzinfo=datetime.timezone.utc)  # type: ignore[misc]


# ---------------------------------------------------------------- Celery, through Flower

CELERY_TASK = "3f2b8c1e-7a4d-4e9b-9c61-0d5a2e8f4b17"

_CELERY_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/.venv/lib/python3.12/site-packages/celery/app/trace.py", line 453, '
    "in trace_task\n"
    "    R = retval = fun(*args, **kwargs)\n"
    '  File "/app/billing/tasks.py", line 88, in render_invoice\n'
    '    raise ValueError(f"invoice {invoice_id} has no lines")\n'
    "ValueError: invoice 1042 has no lines\n"
)

_INVOICE = {"invoice": 1042, "total": "118.00", "pdf": "s3://acme-invoices/2024/05/1042.pdf"}


def _flower_info(**changes: Any) -> dict[str, Any]:
    """``GET /api/task/info/{id}``: the task's event state (``task.as_dict()``)."""
    base = {
        "uuid": CELERY_TASK,
        "name": "billing.tasks.render_invoice",
        "state": "STARTED",
        "received": 1714555800.1183,
        "sent": None,
        "started": 1714555800.1297,
        "rejected": None,
        "succeeded": None,
        "failed": None,
        "retried": None,
        "revoked": None,
        "args": "(1042,)",
        "kwargs": "{}",
        "eta": None,
        "expires": None,
        "retries": 0,
        "result": None,
        "exception": None,
        "timestamp": 1714555800.1297,
        "runtime": None,
        "traceback": None,
        "exchange": None,
        "routing_key": None,
        "clock": 3141,
        "client": None,
        "root": CELERY_TASK,
        "root_id": CELERY_TASK,
        "parent": None,
        "parent_id": None,
        "children": [],
        "worker": "celery@billing-worker-1",
    }
    return _merge(base, **changes)


CELERY = System(
    key="celery",
    title="Celery (through Flower)",
    job_id=CELERY_TASK,
    live="result: started",
    cases=(
        # GET /api/task/result/{id}: {"task-id", "state"}, plus "result" once ready()
        Case(
            "celery",
            "result: pending",
            {"task-id": CELERY_TASK, "state": "PENDING"},
            JobState.PENDING,
            note="Celery answers PENDING for an id it has never seen, too: a mistyped id "
            "polls until the job's timeout.",
        ),
        Case(
            "celery",
            "result: received",
            {"task-id": CELERY_TASK, "state": "RECEIVED"},
            JobState.PENDING,
        ),
        Case(
            "celery",
            "result: started",
            {"task-id": CELERY_TASK, "state": "STARTED"},
            JobState.RUNNING,
        ),
        Case(
            "celery", "result: retry", {"task-id": CELERY_TASK, "state": "RETRY"}, JobState.RUNNING
        ),
        Case(
            "celery",
            "result: success",
            {"task-id": CELERY_TASK, "state": "SUCCESS", "result": _INVOICE},
            JobState.SUCCEEDED,
            result=_INVOICE,
        ),
        Case(
            "celery",
            "result: failure",
            {
                "task-id": CELERY_TASK,
                "state": "FAILURE",
                "result": "ValueError('invoice 1042 has no lines')",
                "traceback": _CELERY_TRACEBACK,
            },
            JobState.FAILED,
            error="invoice 1042 has no lines",
        ),
        Case(
            "celery",
            "result: revoked (terminated)",
            {
                "task-id": CELERY_TASK,
                "state": "REVOKED",
                "result": "TaskRevokedError('terminated')",
            },
            JobState.CANCELLED,
            error="terminated",
        ),
        # GET /api/task/info/{id}: the event state; "result" is repr() text.
        Case("celery", "info: started", _flower_info(), JobState.RUNNING),
        Case(
            "celery",
            "info: success",
            _flower_info(
                state="SUCCESS",
                succeeded=1714555803.5521,
                result="{'invoice': 1042, 'total': '118.00', 'pdf': 's3://acme-invoices/2024/05/1042.pdf'}",
                runtime=3.4224,
                timestamp=1714555803.5521,
            ),
            JobState.SUCCEEDED,
            result="{'invoice': 1042, 'total': '118.00', 'pdf': 's3://acme-invoices/2024/05/1042.pdf'}",
            note="Flower's info endpoint holds the result as repr() text from the worker's "
            "event; poll /api/task/result/{id} for the value itself.",
        ),
        Case(
            "celery",
            "info: failure",
            _flower_info(
                state="FAILURE",
                failed=1714555801.0066,
                exception="ValueError('invoice 1042 has no lines')",
                traceback=_CELERY_TRACEBACK,
                timestamp=1714555801.0066,
            ),
            JobState.FAILED,
            error="invoice 1042 has no lines",
        ),
        Case(
            "celery",
            "info: revoked",
            _flower_info(state="REVOKED", revoked=1714555802.7310, timestamp=1714555802.7310),
            JobState.CANCELLED,
            error="state 'REVOKED'",
        ),
    ),
)


# ---------------------------------------------------------------- RQ, behind the user's endpoint

RQ_JOB = "8e3d2f0c-1b5a-4c7e-9f21-6a4b3c2d1e0f"

_RQ_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/.venv/lib/python3.12/site-packages/rq/worker.py", line 1431, in perform_job\n'
    "    rv = job.perform()\n"
    '  File "/app/etl/jobs.py", line 57, in load_daily_orders\n'
    "    cur.executemany(INSERT_ORDERS, rows)\n"
    "psycopg.errors.UniqueViolation: duplicate key value violates unique constraint "
    '"daily_orders_pkey"\n'
    "DETAIL:  Key (order_id)=(88123) already exists.\n"
)


def _rq(status: str, **changes: Any) -> dict[str, Any]:
    """What ``GET /jobs/{id}`` of the user's app returns (see docs/job-systems.md)."""
    base = {
        "id": RQ_JOB,
        "status": status,
        "progress": None,
        "result": None,
        "exc_info": None,
    }
    return _merge(base, **changes)


_ORDERS = {"rows": 18234, "table": "analytics.daily_orders"}

RQ = System(
    key="rq",
    title="RQ (through your own endpoint)",
    job_id=RQ_JOB,
    live="started",
    cases=(
        Case("rq", "queued", _rq("queued"), JobState.PENDING),
        Case("rq", "deferred", _rq("deferred"), JobState.PENDING),
        Case("rq", "scheduled", _rq("scheduled"), JobState.PENDING),
        Case("rq", "started", _rq("started", progress=40), JobState.RUNNING, progress=0.4),
        Case(
            "rq",
            "finished",
            _rq("finished", progress=100, result=_ORDERS),
            JobState.SUCCEEDED,
            result=_ORDERS,
        ),
        Case(
            "rq",
            "failed",
            _rq("failed", progress=60, exc_info=_RQ_TRACEBACK),
            JobState.FAILED,
            error="duplicate key value violates unique constraint",
        ),
        Case(
            "rq",
            "stopped",
            _rq("stopped", progress=20),
            JobState.CANCELLED,
            error="'stopped'",
            note="send_stop_job_command() leaves no text on the job.",
        ),
        Case("rq", "canceled", _rq("canceled"), JobState.CANCELLED),
    ),
)


# ---------------------------------------------------------------- Ray Jobs

RAY_JOB = "raysubmit_WvYrSbbrpU2A1q2E"


def _ray(status: str, message: str, **changes: Any) -> dict[str, Any]:
    """``GET /api/jobs/{submission_id}``: JobDetails."""
    base = {
        "type": "SUBMISSION",
        "job_id": "02000000",
        "submission_id": RAY_JOB,
        "driver_info": {"id": "02000000", "node_ip_address": "10.0.1.12", "pid": "48211"},
        "status": status,
        "entrypoint": "python train.py --epochs 10",
        "message": message,
        "error_type": None,
        "start_time": 1714555800123,
        "end_time": None,
        "metadata": {"team": "ml-platform"},
        "runtime_env": {"pip": ["torch==2.3.0"], "working_dir": "gcs://_ray_pkg_5a1c9e2b7d4f.zip"},
        "driver_agent_http_address": "http://10.0.1.12:52365",
        "driver_node_id": "8c1f3a7e52d94b0e91c6d2a4f7b3e8d1c5a9f2e6b4d7c3a1e8f5b2d9",
        "driver_exit_code": None,
    }
    return _merge(base, **changes)


_RAY_FAILED_MESSAGE = (
    "Job entrypoint command failed with exit code 1, last available logs (truncated to "
    "20,000 chars):\n"
    '  File "train.py", line 41, in <module>\n'
    '    raise RuntimeError("loss became NaN at step 1200")\n'
    "RuntimeError: loss became NaN at step 1200\n"
)

RAY = System(
    key="ray",
    title="Ray Jobs",
    job_id=RAY_JOB,
    live="running",
    cases=(
        Case(
            "ray",
            "pending",
            _ray(
                "PENDING",
                "Job has not started yet. It may be waiting for resources (GPUs) to become "
                "available.",
                job_id=None,
                driver_info=None,
                start_time=1714555800123,
            ),
            JobState.PENDING,
        ),
        Case("ray", "running", _ray("RUNNING", "Job is currently running."), JobState.RUNNING),
        Case(
            "ray",
            "succeeded",
            _ray(
                "SUCCEEDED",
                "Job finished successfully.",
                end_time=1714559400456,
                driver_exit_code=0,
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "ray",
            "failed",
            _ray(
                "FAILED",
                _RAY_FAILED_MESSAGE,
                error_type="JOB_ENTRYPOINT_COMMAND_ERROR",
                end_time=1714556700789,
                driver_exit_code=1,
            ),
            JobState.FAILED,
            error="loss became NaN at step 1200",
        ),
        Case(
            "ray",
            "stopped",
            _ray("STOPPED", "Job was intentionally stopped.", end_time=1714556100321),
            JobState.CANCELLED,
            error="intentionally stopped",
        ),
    ),
)


# ---------------------------------------------------------------- Prefect

PREFECT_RUN = "a9c51f3e-2d74-4b8a-8f06-3e1d2c4b5a69"


def _prefect(
    state_type: str, state_name: str, message: str | None, **changes: Any
) -> dict[str, Any]:
    """``GET /api/flow_runs/{id}``: a flow run, its state an object."""
    state = {
        "id": "5e8d1c2b-3a4f-4b6e-9d7c-0f1a2b3c4d5e",
        "type": state_type,
        "name": state_name,
        "timestamp": "2024-05-01T09:31:12.441210Z",
        "message": message,
        "data": None,
        "state_details": {
            "flow_run_id": PREFECT_RUN,
            "task_run_id": None,
            "child_flow_run_id": None,
            "scheduled_time": None,
            "cache_key": None,
            "cache_expiration": None,
            "deferred": False,
            "untrackable_result": False,
            "pause_timeout": None,
            "pause_reschedule": False,
            "pause_key": None,
            "run_input_keyset": None,
            "refresh_cache": None,
            "retriable": None,
            "transition_id": "9a0b1c2d-3e4f-4a5b-8c6d-7e8f9a0b1c2d",
            "task_parameters_id": None,
        },
    }
    base = {
        "id": PREFECT_RUN,
        "created": "2024-05-01T09:30:00.102938Z",
        "updated": "2024-05-01T09:31:12.452001Z",
        "name": "crimson-fox",
        "flow_id": "0c2e4a6b-8d1f-4e3a-b5c7-d9e1f3a5b7c9",
        "state_id": state["id"],
        "deployment_id": "d3f5a7b9-c1e2-4d4f-a6b8-c0d2e4f6a8b1",
        "deployment_version": "2024.05.01",
        "work_queue_name": "default",
        "flow_version": "7f3e9a1c2b4d6e8f",
        "parameters": {"date": "2024-05-01"},
        "idempotency_key": None,
        "context": {},
        "empirical_policy": {
            "max_retries": 0,
            "retry_delay_seconds": 0.0,
            "retries": 2,
            "retry_delay": 30,
        },
        "tags": ["nightly"],
        "labels": {"prefect.flow.id": "0c2e4a6b-8d1f-4e3a-b5c7-d9e1f3a5b7c9"},
        "parent_task_run_id": None,
        "state_type": state_type,
        "state_name": state_name,
        "run_count": 1,
        "expected_start_time": "2024-05-01T09:30:00.102938Z",
        "next_scheduled_start_time": None,
        "start_time": "2024-05-01T09:30:04.811020Z",
        "end_time": None,
        "total_run_time": 67.64,
        "estimated_run_time": 67.64,
        "estimated_start_time_delta": 4.708082,
        "auto_scheduled": False,
        "infrastructure_document_id": None,
        "infrastructure_pid": "k8s:prefect/crimson-fox-7x2kq",
        "created_by": {"id": None, "type": "DEPLOYMENT", "display_value": "nightly-etl"},
        "work_queue_id": "1b3d5f7a-9c2e-4a6c-8e0a-2c4e6a8c0e2a",
        "work_pool_id": "f1e2d3c4-b5a6-4978-8a9b-0c1d2e3f4a5b",
        "work_pool_name": "k8s-pool",
        "state": state,
        "job_variables": {},
    }
    return _merge(base, **changes)


PREFECT = System(
    key="prefect",
    title="Prefect",
    job_id=PREFECT_RUN,
    live="running",
    cases=(
        Case(
            "prefect",
            "scheduled",
            _prefect("SCHEDULED", "Scheduled", None, start_time=None),
            JobState.PENDING,
        ),
        Case(
            "prefect",
            "late",
            _prefect("SCHEDULED", "Late", None, start_time=None),
            JobState.PENDING,
        ),
        Case("prefect", "pending", _prefect("PENDING", "Pending", None), JobState.PENDING),
        Case("prefect", "running", _prefect("RUNNING", "Running", None), JobState.RUNNING),
        Case(
            "prefect",
            "retrying",
            _prefect("RUNNING", "Retrying", None, run_count=2),
            JobState.RUNNING,
        ),
        Case(
            "prefect",
            "suspended",
            _prefect("PAUSED", "Suspended", "Run is waiting for approval of the refund batch."),
            JobState.PENDING,
        ),
        Case("prefect", "cancelling", _prefect("CANCELLING", "Cancelling", None), JobState.RUNNING),
        Case(
            "prefect",
            "completed",
            _prefect(
                "COMPLETED",
                "Completed",
                "All states completed.",
                end_time="2024-05-01T09:31:12.441210Z",
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "prefect",
            "failed",
            _prefect(
                "FAILED",
                "Failed",
                "Flow run encountered an exception: KeyError: 'customer_id'",
                end_time="2024-05-01T09:31:12.441210Z",
            ),
            JobState.FAILED,
            error="KeyError: 'customer_id'",
        ),
        Case(
            "prefect",
            "crashed",
            _prefect(
                "CRASHED",
                "Crashed",
                "Flow run infrastructure exited with non-zero status code 137 (out of memory).",
                end_time="2024-05-01T09:31:12.441210Z",
            ),
            JobState.FAILED,
            error="status code 137",
        ),
        Case(
            "prefect",
            "cancelled",
            _prefect(
                "CANCELLED",
                "Cancelled",
                "Cancelled from the UI: a rerun replaces this one.",
                end_time="2024-05-01T09:31:12.441210Z",
            ),
            JobState.CANCELLED,
            error="a rerun replaces this one",
        ),
    ),
)


# ---------------------------------------------------------------- Airflow (REST API v2)

AIRFLOW_RUN = "etl-2024-05-01"

_DAG_VERSION = {
    "id": "0190c3a2-5d6e-7f80-9a1b-2c3d4e5f6a7b",
    "version_number": 3,
    "dag_id": "nightly_etl",
    "bundle_name": "dags-folder",
    "bundle_version": None,
    "created_at": "2024-04-28T16:02:11.551203Z",
    "dag_display_name": "nightly_etl",
    "bundle_url": None,
}


def _dag_run(state: str, **changes: Any) -> dict[str, Any]:
    """``GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}``: DAGRunResponse."""
    base = {
        "dag_run_id": AIRFLOW_RUN,
        "dag_id": "nightly_etl",
        "logical_date": None,
        "queued_at": "2024-05-01T09:30:00.204516Z",
        "start_date": "2024-05-01T09:30:02.918211Z",
        "end_date": None,
        "duration": None,
        "data_interval_start": None,
        "data_interval_end": None,
        "run_after": "2024-05-01T09:30:00.204516Z",
        "last_scheduling_decision": "2024-05-01T09:31:40.002117Z",
        "run_type": "manual",
        "state": state,
        "triggered_by": "rest_api",
        "conf": {"date": "2024-05-01"},
        "note": None,
        "dag_versions": [_DAG_VERSION],
        "bundle_version": None,
        "dag_display_name": "nightly_etl",
    }
    return _merge(base, **changes)


def _task_instance(state: str | None, **changes: Any) -> dict[str, Any]:
    """``GET /api/v2/dags/{dag_id}/dagRuns/{dag_run_id}/taskInstances/{task_id}``."""
    base = {
        "id": "0190c3b7-1e2f-7a3b-8c4d-5e6f7a8b9c0d",
        "task_id": "load_warehouse",
        "dag_id": "nightly_etl",
        "dag_run_id": AIRFLOW_RUN,
        "map_index": -1,
        "logical_date": None,
        "run_after": "2024-05-01T09:30:00.204516Z",
        "start_date": "2024-05-01T09:34:10.118833Z",
        "end_date": None,
        "duration": None,
        "state": state,
        "try_number": 1,
        "max_tries": 3,
        "task_display_name": "load_warehouse",
        "dag_display_name": "nightly_etl",
        "hostname": "airflow-worker-2",
        "unixname": "airflow",
        "pool": "default_pool",
        "pool_slots": 1,
        "queue": "default",
        "priority_weight": 1,
        "operator": "PythonOperator",
        "queued_when": "2024-05-01T09:34:08.501102Z",
        "scheduled_when": "2024-05-01T09:34:08.312440Z",
        "pid": 4182,
        "executor": None,
        "executor_config": "{}",
        "note": None,
        "rendered_map_index": None,
        "rendered_fields": {"op_kwargs": {"table": "analytics.daily_orders"}},
        "trigger": None,
        "triggerer_job": None,
        "dag_version": _DAG_VERSION,
    }
    return _merge(base, **changes)


AIRFLOW = System(
    key="airflow",
    title="Apache Airflow",
    job_id=AIRFLOW_RUN,
    live="dag run: running",
    cases=(
        Case("airflow", "dag run: queued", _dag_run("queued", start_date=None), JobState.PENDING),
        Case("airflow", "dag run: running", _dag_run("running"), JobState.RUNNING),
        Case(
            "airflow",
            "dag run: success",
            _dag_run("success", end_date="2024-05-01T09:41:55.663012Z", duration=712.74),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "airflow",
            "dag run: failed",
            _dag_run("failed", end_date="2024-05-01T09:36:21.009871Z", duration=258.09),
            JobState.FAILED,
            note="A DAG run carries no error text; the failing task's log has it.",
        ),
        Case(
            "airflow",
            "task: scheduled",
            _task_instance("scheduled", start_date=None, pid=None),
            JobState.PENDING,
        ),
        Case("airflow", "task: deferred", _task_instance("deferred"), JobState.PENDING),
        Case(
            "airflow",
            "task: up_for_reschedule",
            _task_instance("up_for_reschedule"),
            JobState.PENDING,
        ),
        Case("airflow", "task: running", _task_instance("running"), JobState.RUNNING),
        Case(
            "airflow",
            "task: up_for_retry",
            _task_instance("up_for_retry", try_number=2),
            JobState.RUNNING,
        ),
        Case(
            "airflow",
            "task: success",
            _task_instance("success", end_date="2024-05-01T09:39:02.500114Z", duration=292.38),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "airflow",
            "task: upstream_failed",
            _task_instance("upstream_failed", start_date=None, hostname="", pid=None),
            JobState.FAILED,
            error="'upstream_failed'",
        ),
        Case(
            "airflow",
            "task: skipped",
            _task_instance("skipped", end_date="2024-05-01T09:34:10.118833Z", duration=0.0),
            JobState.CANCELLED,
            error="'skipped'",
        ),
    ),
)


# ---------------------------------------------------------------- Azure long-running operations

AZURE_OPERATION = "5f0b7d2e-93a1-4c55-b2e8-0a6f1c3d9e47"


def _azure_monitor(status: str, **changes: Any) -> dict[str, Any]:
    """A status monitor as the Azure REST API guidelines shape it (Azure Maps Creator's)."""
    base = {
        "id": AZURE_OPERATION,
        "status": status,
        "createdDateTime": "2024-05-01T09:30:00.4471932+00:00",
        "lastActionDateTime": "2024-05-01T09:31:02.1170045+00:00",
    }
    return _merge(base, **changes)


AZURE_LANGUAGE_JOB = "8c1d2e3f-4a5b-4c6d-9e8f-0a1b2c3d4e5f"


def _azure_language(status: str, **changes: Any) -> dict[str, Any]:
    """``GET {endpoint}/language/analyze-text/jobs/{jobId}``: an Azure AI Language job."""
    base = {
        "jobId": AZURE_LANGUAGE_JOB,
        "displayName": "call-center-sentiment",
        "createdDateTime": "2024-05-01T09:30:00Z",
        "expirationDateTime": "2024-05-02T09:30:00Z",
        "lastUpdatedDateTime": "2024-05-01T09:30:41Z",
        "status": status,
        "errors": [],
        "tasks": {"completed": 0, "failed": 0, "inProgress": 1, "total": 1, "items": []},
    }
    return _merge(base, **changes)


_SENTIMENT_ITEMS = [
    {
        "kind": "SentimentAnalysisLROResults",
        "taskName": "sentiment",
        "lastUpdateDateTime": "2024-05-01T09:31:02Z",
        "status": "succeeded",
        "results": {
            "documents": [
                {
                    "id": "call-0192",
                    "sentiment": "positive",
                    "confidenceScores": {"positive": 0.93, "neutral": 0.05, "negative": 0.02},
                    "sentences": [],
                    "warnings": [],
                }
            ],
            "errors": [],
            "modelVersion": "2024-03-01",
        },
    }
]

AZURE = System(
    key="azure",
    title="Azure long-running operations",
    job_id=AZURE_OPERATION,
    live="monitor: running",
    cases=(
        Case("azure", "monitor: not started", _azure_monitor("NotStarted"), JobState.PENDING),
        Case("azure", "monitor: running", _azure_monitor("Running"), JobState.RUNNING),
        Case(
            "azure",
            "monitor: succeeded with resourceLocation",
            _azure_monitor(
                "Succeeded",
                resourceLocation="https://us.atlas.microsoft.com/tilesets/6b1c3d9e-2f4a-4b5c-8d7e-9f0a1b2c3d4e"
                "?api-version=2023-03-01-preview",
            ),
            JobState.SUCCEEDED,
            result="https://us.atlas.microsoft.com/tilesets/6b1c3d9e-2f4a-4b5c-8d7e-9f0a1b2c3d4e"
            "?api-version=2023-03-01-preview",
        ),
        Case(
            "azure",
            "monitor: succeeded with result (POST action)",
            _azure_monitor("Succeeded", result={"documentsAnalyzed": 12, "pages": 48}),
            JobState.SUCCEEDED,
            result={"documentsAnalyzed": 12, "pages": 48},
        ),
        Case(
            "azure",
            "monitor: failed",
            _azure_monitor(
                "Failed",
                error={
                    "code": "InvalidDrawingPackage",
                    "message": "The drawing package has no manifest.json at its root.",
                    "details": [
                        {"code": "MissingManifest", "message": "manifest.json was not found."}
                    ],
                },
            ),
            JobState.FAILED,
            error="no manifest.json at its root",
        ),
        Case(
            "azure",
            "monitor: canceled",
            _azure_monitor(
                "Canceled",
                error={"code": "Canceled", "message": "The operation was canceled by the client."},
            ),
            JobState.CANCELLED,
            error="canceled by the client",
        ),
        # ARM's Azure-AsyncOperation body: InProgress and percentComplete.
        Case(
            "azure",
            "arm: in progress",
            {
                "id": "/subscriptions/1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9/providers/"
                "Microsoft.Compute/"
                "locations/westeurope/operations/" + AZURE_OPERATION,
                "name": AZURE_OPERATION,
                "status": "InProgress",
                "startTime": "2024-05-01T09:30:00.4471932+00:00",
                "percentComplete": 45.0,
            },
            JobState.RUNNING,
            progress=0.45,
            note="percentComplete is beyond the contract's progress field; main reads it.",
        ),
        # Azure AI Language jobs: jobId, errors[], POST {job}:cancel.
        Case("azure", "language: not started", _azure_language("notStarted"), JobState.PENDING),
        Case("azure", "language: running", _azure_language("running"), JobState.RUNNING),
        Case(
            "azure",
            "language: succeeded",
            _azure_language(
                "succeeded",
                tasks={
                    "completed": 1,
                    "failed": 0,
                    "inProgress": 0,
                    "total": 1,
                    "items": _SENTIMENT_ITEMS,
                },
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "azure",
            "language: failed",
            _azure_language(
                "failed",
                errors=[
                    {
                        "code": "InvalidArgument",
                        "message": "Document call-0192 is over the 125,000 character limit.",
                    }
                ],
                tasks={"completed": 0, "failed": 1, "inProgress": 0, "total": 1, "items": []},
            ),
            JobState.FAILED,
            error="over the 125,000 character limit",
        ),
        Case("azure", "language: cancelling", _azure_language("cancelling"), JobState.RUNNING),
        Case("azure", "language: cancelled", _azure_language("cancelled"), JobState.CANCELLED),
    ),
)


# ---------------------------------------------------------------- Google long-running operations

GOOGLE_OPERATION = "4821936057712390144"

_SPEECH_METADATA = {
    "@type": "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeMetadata",
    "progressPercent": 35,
    "startTime": "2024-05-01T09:30:02.145283Z",
    "lastUpdateTime": "2024-05-01T09:31:10.582104Z",
    "uri": "gs://acme-calls/2024-05-01/call-0192.flac",
}

_SPEECH_RESPONSE = {
    "@type": "type.googleapis.com/google.cloud.speech.v1.LongRunningRecognizeResponse",
    "results": [
        {
            "alternatives": [{"transcript": "thanks for calling acme support", "confidence": 0.94}],
            "resultEndTime": "4.200s",
            "languageCode": "en-us",
        }
    ],
    "totalBilledTime": "5s",
    "requestId": GOOGLE_OPERATION,
}

TRANSLATION_OPERATION = (
    "projects/482193605771/locations/us-central1/operations/"
    "20240501-09301715-a1b2c3d4-0000-2e5f-8a6b-001a114b4c2d"
)


def _translation_metadata(state: str, translated: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.cloud.translation.v3.BatchTranslateMetadata",
        "state": state,
        "translatedCharacters": translated,
        "failedCharacters": "0",
        "totalCharacters": "120000",
        "submitTime": "2024-05-01T09:30:17Z",
    }


_TRANSLATION_RESPONSE = {
    "@type": "type.googleapis.com/google.cloud.translation.v3.BatchTranslateResponse",
    "totalCharacters": "120000",
    "translatedCharacters": "120000",
    "failedCharacters": "0",
    "submitTime": "2024-05-01T09:30:17Z",
    "endTime": "2024-05-01T09:41:03Z",
}

GOOGLE = System(
    key="google",
    title="Google long-running operations",
    job_id=GOOGLE_OPERATION,
    live="speech: running (no done)",
    cases=(
        Case(
            "google",
            "speech: running (no done)",
            {"name": GOOGLE_OPERATION, "metadata": _SPEECH_METADATA},
            JobState.RUNNING,
            progress=0.35,
            note="metadata.progressPercent is read as progress.",
        ),
        Case(
            "google",
            "speech: running (done false)",
            {"name": GOOGLE_OPERATION, "metadata": _SPEECH_METADATA, "done": False},
            JobState.RUNNING,
        ),
        Case(
            "google",
            "speech: done with response",
            {
                "name": GOOGLE_OPERATION,
                "metadata": {**_SPEECH_METADATA, "progressPercent": 100},
                "done": True,
                "response": _SPEECH_RESPONSE,
            },
            JobState.SUCCEEDED,
            result=_SPEECH_RESPONSE,
        ),
        Case(
            "google",
            "speech: done with error",
            {
                "name": GOOGLE_OPERATION,
                "metadata": _SPEECH_METADATA,
                "done": True,
                "error": {
                    "code": 3,
                    "message": "Audio gs://acme-calls/2024-05-01/call-0192.flac is not a valid "
                    "FLAC file.",
                },
            },
            JobState.FAILED,
            error="is not a valid FLAC file",
        ),
        Case(
            "google",
            "speech: cancelled (error code 1)",
            {
                "name": GOOGLE_OPERATION,
                "metadata": _SPEECH_METADATA,
                "done": True,
                "error": {"code": 1, "message": "Operation cancelled by the caller."},
            },
            JobState.CANCELLED,
            error="Operation cancelled by the caller.",
        ),
        # Cloud Translation: the metadata carries its own state word beside done.
        Case(
            "google",
            "translation: running",
            {"name": TRANSLATION_OPERATION, "metadata": _translation_metadata("RUNNING", "52340")},
            JobState.RUNNING,
        ),
        Case(
            "google",
            "translation: done with response",
            {
                "name": TRANSLATION_OPERATION,
                "metadata": _translation_metadata("SUCCEEDED", "120000"),
                "done": True,
                "response": _TRANSLATION_RESPONSE,
            },
            JobState.SUCCEEDED,
            result=_TRANSLATION_RESPONSE,
        ),
        Case(
            "google",
            "translation: cancelled",
            {
                "name": TRANSLATION_OPERATION,
                "metadata": _translation_metadata("CANCELLED", "61200"),
                "done": True,
                "error": {"code": 1, "message": "The operation was cancelled."},
            },
            JobState.CANCELLED,
            error="The operation was cancelled.",
        ),
    ),
)


# ---------------------------------------------------------------- AWS, boto3 response dicts


def _response_metadata(request_id: str, length: int) -> dict[str, Any]:
    return {
        "RequestId": request_id,
        "HTTPStatusCode": 200,
        "HTTPHeaders": {
            "date": "Wed, 01 May 2024 09:31:02 GMT",
            "content-type": "application/json",
            "content-length": str(length),
            "connection": "keep-alive",
            "x-amzn-requestid": request_id,
        },
        "RetryAttempts": 0,
    }


BATCH_JOB = "4c7d9f1a-2b3e-4f60-8a91-5d2e7c0b3f14"


def _batch(status: str, **changes: Any) -> dict[str, Any]:
    """``batch.describe_jobs(jobs=[id])``: ``jobs[0]`` is the job."""
    job = {
        "jobArn": f"arn:aws:batch:eu-west-1:123456789012:job/{BATCH_JOB}",
        "jobName": "nightly-etl",
        "jobId": BATCH_JOB,
        "jobQueue": "arn:aws:batch:eu-west-1:123456789012:job-queue/etl-queue",
        "status": status,
        "attempts": [],
        "createdAt": 1714555800123,
        "dependsOn": [],
        "jobDefinition": "arn:aws:batch:eu-west-1:123456789012:job-definition/etl:7",
        "parameters": {},
        "container": {
            "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/etl:2024.05.01",
            "command": ["python", "-m", "etl.nightly", "--date", "2024-05-01"],
            "jobRoleArn": "arn:aws:iam::123456789012:role/etl-job",
            "volumes": [],
            "environment": [],
            "mountPoints": [],
            "ulimits": [],
            "resourceRequirements": [
                {"value": "2", "type": "VCPU"},
                {"value": "8192", "type": "MEMORY"},
            ],
            "secrets": [],
        },
        "tags": {"team": "data"},
        "propagateTags": False,
        "platformCapabilities": ["FARGATE"],
        "isCancelled": False,
        "isTerminated": False,
    }
    job.update(copy.deepcopy(changes))
    return {
        "jobs": [job],
        "ResponseMetadata": _response_metadata("5b1f0e3a-9c7d-4a2b-8e6f-1d3c5a7b9e0f", 2114),
    }


_BATCH_EXITED = "Essential container in task exited"

TRANSCRIBE_JOB = "call-0192-2024-05-01"


def _transcribe(status: str, **changes: Any) -> dict[str, Any]:
    """``transcribe.get_transcription_job(TranscriptionJobName=name)``."""
    job = {
        "TranscriptionJobName": TRANSCRIBE_JOB,
        "TranscriptionJobStatus": status,
        "LanguageCode": "en-US",
        "MediaSampleRateHertz": 16000,
        "MediaFormat": "flac",
        "Media": {"MediaFileUri": "s3://acme-calls/2024-05-01/call-0192.flac"},
        "Transcript": {},
        "StartTime": _utc(2024, 5, 1, 9, 30, 3),
        "CreationTime": _utc(2024, 5, 1, 9, 30, 1),
        "Settings": {"ChannelIdentification": False, "ShowAlternatives": False},
    }
    job.update(copy.deepcopy(changes))
    return {
        "TranscriptionJob": job,
        "ResponseMetadata": _response_metadata("e1d2c3b4-a596-4877-8695-a4b3c2d1e0f9", 612),
    }


SFN_EXECUTION = "arn:aws:states:eu-west-1:123456789012:execution:invoice-pipeline:run-2024-05-01"


def _sfn(status: str, **changes: Any) -> dict[str, Any]:
    """``sfn.describe_execution(executionArn=arn)``."""
    doc = {
        "executionArn": SFN_EXECUTION,
        "stateMachineArn": "arn:aws:states:eu-west-1:123456789012:stateMachine:invoice-pipeline",
        "name": "run-2024-05-01",
        "status": status,
        "startDate": _utc(2024, 5, 1, 9, 30, 0),
        "input": '{"date": "2024-05-01"}',
        "inputDetails": {"included": True},
        "redriveCount": 0,
        "redriveStatus": "NOT_REDRIVABLE",
        "redriveStatusReason": "Execution is RUNNING and cannot be redriven",
    }
    doc.update(copy.deepcopy(changes))
    doc["ResponseMetadata"] = _response_metadata("0a9b8c7d-6e5f-4a3b-2c1d-0e9f8a7b6c5d", 733)
    return doc


SAGEMAKER_JOB = "churn-xgb-2024-05-01-09-30"


def _sagemaker(
    status: str, secondary: str, transitions: list[tuple[str, str]], **changes: Any
) -> dict[str, Any]:
    """``sagemaker.describe_training_job(TrainingJobName=name)``."""
    doc: dict[str, Any] = {
        "TrainingJobName": SAGEMAKER_JOB,
        "TrainingJobArn": f"arn:aws:sagemaker:eu-west-1:123456789012:training-job/{SAGEMAKER_JOB}",
        "ModelArtifacts": {"S3ModelArtifacts": ""},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "HyperParameters": {
            "max_depth": "6",
            "eta": "0.2",
            "num_round": "200",
            "objective": "binary:logistic",
        },
        "AlgorithmSpecification": {
            "TrainingImage": "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:1.7-1",
            "TrainingInputMode": "File",
            "EnableSageMakerMetricsTimeSeries": False,
        },
        "RoleArn": "arn:aws:iam::123456789012:role/sagemaker-training",
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": "s3://acme-ml/churn/train/",
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
                "ContentType": "text/csv",
                "CompressionType": "None",
                "RecordWrapperType": "None",
            }
        ],
        "OutputDataConfig": {"KmsKeyId": "", "S3OutputPath": "s3://acme-ml/churn/output/"},
        "ResourceConfig": {
            "InstanceType": "ml.m5.xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
        "CreationTime": _utc(2024, 5, 1, 9, 30, 11),
        "TrainingStartTime": _utc(2024, 5, 1, 9, 32, 40),
        "LastModifiedTime": _utc(2024, 5, 1, 9, 41, 2),
        "SecondaryStatusTransitions": [
            {"Status": name, "StartTime": _utc(2024, 5, 1, 9, 30 + i, 11), "StatusMessage": message}
            for i, (name, message) in enumerate(transitions)
        ],
        "EnableNetworkIsolation": False,
        "EnableInterContainerTrafficEncryption": False,
        "EnableManagedSpotTraining": False,
        "ProfilingStatus": "Disabled",
    }
    doc.update(copy.deepcopy(changes))
    doc["ResponseMetadata"] = _response_metadata("7c6b5a49-3827-4165-9e8d-7c6b5a493827", 3905)
    return doc


_STARTING = [("Starting", "Preparing the instances for training")]
_TRAINING = [
    *_STARTING,
    ("Downloading", "Downloading input data"),
    ("Training", "Training image download completed. Training in progress."),
]
_UPLOADED = [
    *_TRAINING,
    ("Uploading", "Uploading generated training model"),
    ("Completed", "Training job completed"),
]

AWS = System(
    key="aws",
    title="AWS (Batch, Transcribe, Step Functions, SageMaker) through boto3",
    job_id=BATCH_JOB,
    live="batch: running",
    sdk=True,
    cases=(
        Case("aws", "batch: runnable", _batch("RUNNABLE"), JobState.PENDING),
        Case("aws", "batch: starting", _batch("STARTING"), JobState.PENDING),
        Case("aws", "batch: running", _batch("RUNNING", startedAt=1714555862456), JobState.RUNNING),
        Case(
            "aws",
            "batch: succeeded",
            _batch(
                "SUCCEEDED",
                statusReason=_BATCH_EXITED,
                startedAt=1714555862456,
                stoppedAt=1714556741012,
                container={"exitCode": 0, "logStreamName": "etl/default/9f1e2d3c4b5a"},
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "aws",
            "batch: failed",
            _batch(
                "FAILED",
                statusReason=_BATCH_EXITED,
                startedAt=1714555862456,
                stoppedAt=1714556100870,
                container={
                    "exitCode": 137,
                    "reason": "OutOfMemoryError: Container killed due to memory usage",
                    "logStreamName": "etl/default/9f1e2d3c4b5a",
                },
            ),
            JobState.FAILED,
            error=_BATCH_EXITED,
            note="Batch's statusReason is generic; container.reason has the cause "
            "(OutOfMemoryError).",
        ),
        Case(
            "aws",
            "batch: terminated (TerminateJob)",
            _batch(
                "FAILED",
                statusReason="Terminated by ops: superseded by the 10:00 run",
                isTerminated=True,
                startedAt=1714555862456,
                stoppedAt=1714556100870,
            ),
            JobState.CANCELLED,
            error="superseded by the 10:00 run",
            note="Batch has no cancelled status: TerminateJob ends a job FAILED with "
            "isTerminated true, which the reader takes for CANCELLED.",
        ),
        Case(
            "aws",
            "batch: cancelled (CancelJob)",
            _batch(
                "FAILED", statusReason="Cancelled by ops: wrong date parameter", isCancelled=True
            ),
            JobState.CANCELLED,
            error="wrong date parameter",
            note="CancelJob ends a queued job FAILED with isCancelled true: CANCELLED.",
        ),
        Case("aws", "transcribe: queued", _transcribe("QUEUED"), JobState.PENDING),
        Case("aws", "transcribe: in progress", _transcribe("IN_PROGRESS"), JobState.RUNNING),
        Case(
            "aws",
            "transcribe: completed",
            _transcribe(
                "COMPLETED",
                Transcript={
                    "TranscriptFileUri": "https://s3.eu-west-1.amazonaws.com/acme-transcripts/call-0192-2024-05-01.json"
                },
                CompletionTime=_utc(2024, 5, 1, 9, 31, 40),
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
            note="Transcript.TranscriptFileUri is not one of the result link fields.",
        ),
        Case(
            "aws",
            "transcribe: failed",
            _transcribe(
                "FAILED",
                FailureReason="The audio sample rate 4000 Hz is below the 8000 Hz minimum.",
                CompletionTime=_utc(2024, 5, 1, 9, 30, 9),
            ),
            JobState.FAILED,
            error="below the 8000 Hz minimum",
        ),
        Case("aws", "step functions: running", _sfn("RUNNING"), JobState.RUNNING),
        Case(
            "aws",
            "step functions: succeeded",
            _sfn(
                "SUCCEEDED",
                stopDate=_utc(2024, 5, 1, 9, 33, 12),
                output='{"invoices": 1042, "failed": 0}',
                outputDetails={"included": True},
                redriveStatusReason="Execution is SUCCEEDED and cannot be redriven",
            ),
            JobState.SUCCEEDED,
            result={"invoices": 1042, "failed": 0},
            note="output is JSON text; it is parsed (JSON text that starts with { or [), which "
            "the contract's list of result fields does not say.",
        ),
        Case(
            "aws",
            "step functions: failed",
            _sfn(
                "FAILED",
                stopDate=_utc(2024, 5, 1, 9, 31, 55),
                error="States.TaskFailed",
                cause='{"errorMessage": "invoice 1042 has no lines", "errorType": "ValueError"}',
                redriveStatus="REDRIVABLE",
                redriveStatusReason=None,
            ),
            JobState.FAILED,
            error="invoice 1042 has no lines",
            note="error is a code (States.TaskFailed); the reason is in cause: the error text "
            "is both, joined.",
        ),
        Case(
            "aws",
            "step functions: timed out",
            _sfn("TIMED_OUT", stopDate=_utc(2024, 5, 2, 9, 30, 0), error="States.Timeout"),
            JobState.FAILED,
            error="States.Timeout",
        ),
        Case(
            "aws",
            "step functions: aborted",
            _sfn(
                "ABORTED",
                stopDate=_utc(2024, 5, 1, 9, 32, 5),
                cause="superseded by run-2024-05-01b",
                redriveStatus="REDRIVABLE",
                redriveStatusReason=None,
            ),
            JobState.CANCELLED,
            error="superseded by run-2024-05-01b",
        ),
        Case(
            "aws",
            "sagemaker: starting",
            _sagemaker("InProgress", "Starting", _STARTING),
            JobState.RUNNING,
        ),
        Case(
            "aws",
            "sagemaker: training",
            _sagemaker("InProgress", "Training", _TRAINING),
            JobState.RUNNING,
        ),
        Case(
            "aws",
            "sagemaker: stopping",
            _sagemaker("Stopping", "Stopping", _TRAINING),
            JobState.RUNNING,
        ),
        Case(
            "aws",
            "sagemaker: completed",
            _sagemaker(
                "Completed",
                "Completed",
                _UPLOADED,
                ModelArtifacts={
                    "S3ModelArtifacts": f"s3://acme-ml/churn/output/{SAGEMAKER_JOB}/output/model.tar.gz"
                },
                TrainingEndTime=_utc(2024, 5, 1, 9, 41, 2),
                TrainingTimeInSeconds=502,
                BillableTimeInSeconds=502,
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "aws",
            "sagemaker: failed",
            _sagemaker(
                "Failed",
                "Failed",
                [*_TRAINING, ("Failed", "Training job failed")],
                FailureReason="AlgorithmError: XGBoostError: label must be in [0,1] for "
                "logistic regression",
            ),
            JobState.FAILED,
            error="label must be in [0,1]",
        ),
        Case(
            "aws",
            "sagemaker: stopped",
            _sagemaker(
                "Stopped",
                "Stopped",
                [
                    *_TRAINING,
                    ("Stopping", "Stopping the training job"),
                    ("Stopped", "Training job stopped"),
                ],
            ),
            JobState.CANCELLED,
            error="'Stopped'",
        ),
        Case(
            "aws",
            "sagemaker: stopped at MaxRuntimeInSeconds",
            _sagemaker(
                "Stopped",
                "MaxRuntimeExceeded",
                [
                    *_TRAINING,
                    (
                        "MaxRuntimeExceeded",
                        "Job stopped because max run time 86400 seconds exceeded",
                    ),
                ],
            ),
            JobState.CANCELLED,
            error="'Stopped'",
            note="A job that ran out of MaxRuntimeInSeconds is Stopped (SecondaryStatus "
            "MaxRuntimeExceeded): CANCELLED by the contract, though it is a timeout.",
        ),
    ),
)


# ---------------------------------------------------------------- OpenAI batches and fine-tuning

OPENAI_BATCH = "batch_6721f0c9a8e48190b2d3c4e5f6a7b8c9"


def _openai_batch(status: str, **changes: Any) -> dict[str, Any]:
    """``GET /v1/batches/{batch_id}``."""
    base = {
        "id": OPENAI_BATCH,
        "object": "batch",
        "endpoint": "/v1/chat/completions",
        "model": "gpt-4o-mini-2024-07-18",
        "errors": None,
        "input_file_id": "file-3JwQmXk7pN2rTz9vYb4cLd",
        "completion_window": "24h",
        "status": status,
        "output_file_id": None,
        "error_file_id": None,
        "created_at": 1714555800,
        "in_progress_at": 1714555831,
        "expires_at": 1714642200,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 1000, "completed": 250, "failed": 2},
        "usage": None,
        "metadata": {"job": "nightly-eval"},
    }
    return _merge(base, **changes)


OPENAI_FINE_TUNE = "ftjob-Q8wNx3Vt2LmK9rPz4YbH6cJd"


def _openai_fine_tune(status: str, **changes: Any) -> dict[str, Any]:
    """``GET /v1/fine_tuning/jobs/{id}``."""
    base = {
        "object": "fine_tuning.job",
        "id": OPENAI_FINE_TUNE,
        "model": "gpt-4o-mini-2024-07-18",
        "created_at": 1714555800,
        "finished_at": None,
        "fine_tuned_model": None,
        "organization_id": "org-7Hn2Kq9WxLp4Rt6Ym3Vb8Zc",
        "result_files": [],
        "status": status,
        "validation_file": None,
        "training_file": "file-9RkT2mQw7XnP4zLb6VcY3hJd",
        "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8},
        "trained_tokens": None,
        "error": {},
        "user_provided_suffix": "support-bot",
        "seed": 1234,
        "estimated_finish": None,
        "integrations": [],
        "metadata": None,
        "method": {
            "type": "supervised",
            "supervised": {
                "hyperparameters": {"n_epochs": 3, "batch_size": 1, "learning_rate_multiplier": 1.8}
            },
        },
    }
    return _merge(base, **changes)


OPENAI = System(
    key="openai",
    title="OpenAI batches and fine-tuning jobs",
    job_id=OPENAI_BATCH,
    live="batch: in_progress",
    cases=(
        Case(
            "openai",
            "batch: validating",
            _openai_batch("validating", in_progress_at=None),
            JobState.RUNNING,
        ),
        Case("openai", "batch: in_progress", _openai_batch("in_progress"), JobState.RUNNING),
        Case(
            "openai",
            "batch: finalizing",
            _openai_batch(
                "finalizing",
                finalizing_at=1714563000,
                request_counts={"total": 1000, "completed": 997, "failed": 3},
            ),
            JobState.RUNNING,
            note="request_counts is not read as progress.",
        ),
        Case(
            "openai",
            "batch: completed",
            _openai_batch(
                "completed",
                output_file_id="file-6TpW3nRk8YzQ2vXm5LbJ4c",
                error_file_id="file-2MdK7qPx4WnT9zRb3YcV8h",
                finalizing_at=1714563000,
                completed_at=1714563412,
                request_counts={"total": 1000, "completed": 997, "failed": 3},
                usage={"input_tokens": 412300, "output_tokens": 98210, "total_tokens": 510510},
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "openai",
            "batch: failed",
            _openai_batch(
                "failed",
                in_progress_at=None,
                failed_at=1714555809,
                request_counts={"total": 0, "completed": 0, "failed": 0},
                errors={
                    "object": "list",
                    "data": [
                        {
                            "code": "invalid_json_line",
                            "message": "Line 3 of the input file is not valid JSON.",
                            "param": None,
                            "line": 3,
                        }
                    ],
                },
            ),
            JobState.FAILED,
            error="Line 3 of the input file is not valid JSON.",
        ),
        Case(
            "openai",
            "batch: expired",
            _openai_batch(
                "expired",
                expired_at=1714642200,
                output_file_id="file-6TpW3nRk8YzQ2vXm5LbJ4c",
                request_counts={"total": 1000, "completed": 812, "failed": 0},
            ),
            JobState.FAILED,
            error="'expired'",
        ),
        Case(
            "openai",
            "batch: cancelling",
            _openai_batch("cancelling", cancelling_at=1714557000),
            JobState.RUNNING,
        ),
        Case(
            "openai",
            "batch: cancelled",
            _openai_batch("cancelled", cancelling_at=1714557000, cancelled_at=1714557064),
            JobState.CANCELLED,
        ),
        Case("openai", "fine-tune: queued", _openai_fine_tune("queued"), JobState.PENDING),
        Case(
            "openai",
            "fine-tune: running",
            _openai_fine_tune("running", estimated_finish=1714559400),
            JobState.RUNNING,
        ),
        Case(
            "openai",
            "fine-tune: validating_files",
            _openai_fine_tune("validating_files"),
            JobState.RUNNING,
            note="'validating_files' is not in the vocabulary: it reads RUNNING only as an "
            "unknown word (with a WARNING).",
        ),
        Case(
            "openai",
            "fine-tune: succeeded",
            _openai_fine_tune(
                "succeeded",
                finished_at=1714559377,
                fine_tuned_model="ft:gpt-4o-mini-2024-07-18:acme:support-bot:9Kx2LmQp",
                result_files=["file-4VbN8mXq2KzR7tWp5YcL3d"],
                trained_tokens=1842330,
            ),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "openai",
            "fine-tune: failed",
            _openai_fine_tune(
                "failed",
                finished_at=1714555861,
                error={
                    "code": "invalid_training_file",
                    "message": "Training file file-9RkT2mQw7XnP4zLb6VcY3hJd has 7 examples; "
                    "at least 10 are required.",
                    "param": "training_file",
                },
            ),
            JobState.FAILED,
            error="at least 10 are required",
        ),
        Case(
            "openai",
            "fine-tune: cancelled",
            _openai_fine_tune("cancelled", finished_at=1714556400),
            JobState.CANCELLED,
        ),
    ),
)


# ---------------------------------------------------------------- Replicate predictions

REPLICATE_PREDICTION = "k7pq3m2xvnrgc0cfw9r8yq4e5g"


def _replicate(status: str, **changes: Any) -> dict[str, Any]:
    """``GET /v1/predictions/{id}``."""
    base = {
        "id": REPLICATE_PREDICTION,
        "model": "black-forest-labs/flux-schnell",
        "version": "5599ed30703defd1d160a25a63321b4dec97101d98b4674bcc56e41f62f35637",
        "input": {
            "prompt": "a lighthouse at dusk, oil painting",
            "num_outputs": 1,
            "aspect_ratio": "3:2",
        },
        "logs": "",
        "output": None,
        "data_removed": False,
        "error": None,
        "status": status,
        "created_at": "2024-05-01T09:30:00.812Z",
        "urls": {
            "cancel": f"https://api.replicate.com/v1/predictions/{REPLICATE_PREDICTION}/cancel",
            "get": f"https://api.replicate.com/v1/predictions/{REPLICATE_PREDICTION}",
            "stream": "https://stream.replicate.com/v1/files/bcwr-3qgd7jx2hhf5b4qzm6gnmtzkd4",
            "web": f"https://replicate.com/p/{REPLICATE_PREDICTION}",
        },
    }
    return _merge(base, **changes)


_REPLICATE_OUTPUT = ["https://replicate.delivery/xezq/Fh3kP9sT2wQ/out-0.webp"]

REPLICATE = System(
    key="replicate",
    title="Replicate predictions",
    job_id=REPLICATE_PREDICTION,
    live="processing",
    cases=(
        Case("replicate", "starting", _replicate("starting"), JobState.PENDING),
        Case(
            "replicate",
            "processing",
            _replicate(
                "processing",
                logs="Using seed: 40213\n 50%|█████     | 2/4 [00:00<00:00,  5.13it/s]",
                started_at="2024-05-01T09:30:01.107Z",
            ),
            JobState.RUNNING,
        ),
        Case(
            "replicate",
            "succeeded",
            _replicate(
                "succeeded",
                logs="Using seed: 40213\n100%|██████████| 4/4 [00:00<00:00,  5.21it/s]",
                output=_REPLICATE_OUTPUT,
                started_at="2024-05-01T09:30:01.107Z",
                completed_at="2024-05-01T09:30:02.531Z",
                metrics={"image_count": 1, "predict_time": 1.424, "total_time": 1.719},
            ),
            JobState.SUCCEEDED,
            result=_REPLICATE_OUTPUT,
        ),
        Case(
            "replicate",
            "failed",
            _replicate(
                "failed",
                logs="Using seed: 40213\nTraceback (most recent call last):\n...\n"
                "torch.OutOfMemoryError: "
                "CUDA out of memory. Tried to allocate 2.00 GiB",
                error="CUDA out of memory. Tried to allocate 2.00 GiB",
                started_at="2024-05-01T09:30:01.107Z",
                completed_at="2024-05-01T09:30:03.020Z",
            ),
            JobState.FAILED,
            error="CUDA out of memory",
        ),
        Case(
            "replicate",
            "canceled",
            _replicate(
                "canceled",
                started_at="2024-05-01T09:30:01.107Z",
                completed_at="2024-05-01T09:30:01.900Z",
            ),
            JobState.CANCELLED,
        ),
    ),
)


# ---------------------------------------------------------------- GitHub Actions workflow runs

GITHUB_RUN = "11042387465"


def _github_run(status: str, conclusion: str | None, **changes: Any) -> dict[str, Any]:
    """``GET /repos/{owner}/{repo}/actions/runs/{run_id}``."""
    owner = {"login": "acme", "id": 1342004, "type": "Organization", "site_admin": False}
    repository = {
        "id": 781522094,
        "node_id": "R_kgDOLpUMng",
        "name": "billing",
        "full_name": "acme/billing",
        "private": True,
        "owner": owner,
        "html_url": "https://github.com/acme/billing",
        "description": "Invoices and payments",
        "fork": False,
        "url": "https://api.github.com/repos/acme/billing",
    }
    base = {
        "id": int(GITHUB_RUN),
        "name": "CI",
        "node_id": "WFR_kwLOLpUMns8AAAACkjq9cQ",
        "head_branch": "main",
        "head_sha": "9c1e4f7a2b5d8e0c3f6a9b2d5e8f1a4c7b0d3e6f",
        "path": ".github/workflows/ci.yml",
        "display_title": "Fix rounding in invoice totals",
        "run_number": 1873,
        "event": "push",
        "status": status,
        "conclusion": conclusion,
        "workflow_id": 88120455,
        "check_suite_id": 26301958132,
        "check_suite_node_id": "CS_kwDOLpUMns8AAAAGHxk0dA",
        "url": f"https://api.github.com/repos/acme/billing/actions/runs/{GITHUB_RUN}",
        "html_url": f"https://github.com/acme/billing/actions/runs/{GITHUB_RUN}",
        "pull_requests": [],
        "created_at": "2024-05-01T09:30:00Z",
        "updated_at": "2024-05-01T09:34:27Z",
        "actor": {"login": "ada", "id": 583231, "type": "User", "site_admin": False},
        "run_attempt": 1,
        "referenced_workflows": [],
        "run_started_at": "2024-05-01T09:30:00Z",
        "triggering_actor": {"login": "ada", "id": 583231, "type": "User", "site_admin": False},
        "jobs_url": f"https://api.github.com/repos/acme/billing/actions/runs/{GITHUB_RUN}/jobs",
        "logs_url": f"https://api.github.com/repos/acme/billing/actions/runs/{GITHUB_RUN}/logs",
        "check_suite_url": "https://api.github.com/repos/acme/billing/check-suites/26301958132",
        "artifacts_url": f"https://api.github.com/repos/acme/billing/actions/runs/{GITHUB_RUN}/artifacts",
        "cancel_url": f"https://api.github.com/repos/acme/billing/actions/runs/{GITHUB_RUN}/cancel",
        "rerun_url": f"https://api.github.com/repos/acme/billing/actions/runs/{GITHUB_RUN}/rerun",
        "previous_attempt_url": None,
        "workflow_url": "https://api.github.com/repos/acme/billing/actions/workflows/88120455",
        "head_commit": {
            "id": "9c1e4f7a2b5d8e0c3f6a9b2d5e8f1a4c7b0d3e6f",
            "tree_id": "4b8e2f6a0c4d8e2f6a0c4d8e2f6a0c4d8e2f6a0c",
            "message": "Fix rounding in invoice totals",
            "timestamp": "2024-05-01T09:29:41Z",
            "author": {"name": "Ada", "email": "ada@acme.example"},
            "committer": {"name": "Ada", "email": "ada@acme.example"},
        },
        "repository": repository,
        "head_repository": repository,
    }
    return _merge(base, **changes)


GITHUB = System(
    key="github",
    title="GitHub Actions workflow runs",
    job_id=GITHUB_RUN,
    live="in_progress",
    cases=(
        Case("github", "queued", _github_run("queued", None), JobState.PENDING),
        Case(
            "github",
            "waiting (environment approval)",
            _github_run("waiting", None),
            JobState.PENDING,
        ),
        Case("github", "in_progress", _github_run("in_progress", None), JobState.RUNNING),
        Case(
            "github",
            "completed: success",
            _github_run("completed", "success"),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "github",
            "completed: neutral",
            _github_run("completed", "neutral"),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "github",
            "completed: failure",
            _github_run("completed", "failure"),
            JobState.FAILED,
            error="conclusion 'failure'",
            note="A run has no error text; head_commit.message is the commit's, not the run's.",
        ),
        Case(
            "github",
            "completed: timed_out",
            _github_run("completed", "timed_out"),
            JobState.FAILED,
            error="'timed_out'",
        ),
        Case(
            "github",
            "completed: startup_failure",
            _github_run("completed", "startup_failure"),
            JobState.FAILED,
            error="'startup_failure'",
        ),
        Case(
            "github",
            "completed: cancelled",
            _github_run("completed", "cancelled"),
            JobState.CANCELLED,
        ),
        Case(
            "github",
            "completed: skipped",
            _github_run("completed", "skipped"),
            JobState.CANCELLED,
            error="'skipped'",
        ),
    ),
)


# ---------------------------------------------------------------- Jenkins builds

JENKINS_BUILD = "214"


def _jenkins(building: bool, result: str | None, **changes: Any) -> dict[str, Any]:
    """``GET /job/{name}/{number}/api/json``."""
    base = {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "actions": [
            {
                "_class": "hudson.model.CauseAction",
                "causes": [
                    {
                        "_class": "hudson.model.Cause$UserIdCause",
                        "shortDescription": "Started by user Ada",
                        "userId": "ada",
                        "userName": "Ada",
                    }
                ],
            },
            {
                "_class": "hudson.model.ParametersAction",
                "parameters": [
                    {
                        "_class": "hudson.model.StringParameterValue",
                        "name": "ENV",
                        "value": "staging",
                    }
                ],
            },
            {},
        ],
        "artifacts": [],
        "building": building,
        "description": None,
        "displayName": f"#{JENKINS_BUILD}",
        "duration": 0,
        "estimatedDuration": 176540,
        "executor": {"_class": "hudson.model.OneOffExecutor"} if building else None,
        "fullDisplayName": f"deploy-api #{JENKINS_BUILD}",
        "id": JENKINS_BUILD,
        "keepLog": False,
        "number": int(JENKINS_BUILD),
        "queueId": 1731,
        "result": result,
        "timestamp": 1714555800000,
        "url": f"http://localhost:8080/job/deploy-api/{JENKINS_BUILD}/",
        "changeSets": [],
        "culprits": [],
        "inProgress": building,
        "nextBuild": None,
        "previousBuild": {"number": 213, "url": "http://localhost:8080/job/deploy-api/213/"},
    }
    return _merge(base, **changes)


_JENKINS_ARTIFACTS = [
    {"displayPath": "api.tar.gz", "fileName": "api.tar.gz", "relativePath": "dist/api.tar.gz"}
]

JENKINS = System(
    key="jenkins",
    title="Jenkins builds",
    job_id=JENKINS_BUILD,
    live="building",
    cases=(
        Case("jenkins", "building", _jenkins(True, None, duration=0), JobState.RUNNING),
        Case(
            "jenkins",
            "SUCCESS",
            _jenkins(False, "SUCCESS", duration=184223, artifacts=_JENKINS_ARTIFACTS),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "jenkins",
            "FAILURE",
            _jenkins(False, "FAILURE", duration=61877),
            JobState.FAILED,
            error="'FAILURE'",
        ),
        Case(
            "jenkins",
            "UNSTABLE",
            _jenkins(False, "UNSTABLE", duration=190412, artifacts=_JENKINS_ARTIFACTS),
            JobState.FAILED,
            error="result 'UNSTABLE'",
        ),
        Case(
            "jenkins",
            "ABORTED",
            _jenkins(False, "ABORTED", duration=33051),
            JobState.CANCELLED,
            error="'ABORTED'",
        ),
        Case(
            "jenkins",
            "NOT_BUILT",
            _jenkins(False, "NOT_BUILT", duration=0),
            JobState.CANCELLED,
            error="'NOT_BUILT'",
        ),
    ),
)


#: ``GET /queue/item/{id}/api/json`` while the build waits for an executor: no state word.
JENKINS_QUEUE_WAITING = {
    "_class": "hudson.model.Queue$WaitingItem",
    "actions": [
        {
            "_class": "hudson.model.ParametersAction",
            "parameters": [{"name": "ENV", "value": "staging"}],
        }
    ],
    "blocked": False,
    "buildable": False,
    "id": 1731,
    "inQueueSince": 1714555799412,
    "params": "\nENV=staging",
    "stuck": False,
    "task": {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowJob",
        "name": "deploy-api",
        "url": "http://localhost:8080/job/deploy-api/",
        "color": "blue",
    },
    "url": "queue/item/1731/",
    "why": "In the quiet period. Expires in 4.6 sec",
    "timestamp": 1714555804412,
}

#: The same queue item once its build started: ``executable`` names the build.
JENKINS_QUEUE_LEFT = {
    **{
        key: value
        for key, value in JENKINS_QUEUE_WAITING.items()
        if key not in ("why", "timestamp")
    },
    "_class": "hudson.model.Queue$LeftItem",
    "why": None,
    "cancelled": False,
    "executable": {
        "_class": "org.jenkinsci.plugins.workflow.job.WorkflowRun",
        "number": int(JENKINS_BUILD),
        "url": f"http://localhost:8080/job/deploy-api/{JENKINS_BUILD}/",
    },
}


# ---------------------------------------------------------------- Argo Workflows

ARGO_WORKFLOW = "etl-nightly-x7k2p"


def _argo(
    phase: str,
    progress: str,
    *,
    completed: bool,
    message: str | None = None,
    shutdown: str | None = None,
    **status: Any,
) -> dict[str, Any]:
    """``GET /api/v1/workflows/{namespace}/{name}``: a Workflow resource (``shutdown``:
    the ``spec.shutdown`` strategy ``argo stop`` / ``argo terminate`` set)."""
    main = ARGO_WORKFLOW
    nodes = {
        main: {
            "id": main,
            "name": main,
            "displayName": main,
            "type": "Steps",
            "templateName": "main",
            "phase": phase,
            "startedAt": "2024-05-01T09:30:00Z",
            "finishedAt": "2024-05-01T09:31:38Z" if completed else None,
            "progress": progress,
            "children": [f"{main}-1882205124"],
        },
        f"{main}-2211085640": {
            "id": f"{main}-2211085640",
            "name": f"{main}[0].extract",
            "displayName": "extract",
            "type": "Pod",
            "templateName": "extract",
            "phase": "Succeeded" if progress != "0/2" else "Pending",
            "boundaryID": main,
            "startedAt": "2024-05-01T09:30:00Z",
            "finishedAt": "2024-05-01T09:30:49Z",
            "progress": "1/1",
            "outputs": {"exitCode": "0"},
            "hostNodeName": "gke-argo-pool-1-4f7a2b",
        },
    }
    base_status: dict[str, Any] = {
        "phase": phase,
        "startedAt": "2024-05-01T09:30:00Z",
        "finishedAt": "2024-05-01T09:31:38Z" if completed else None,
        "estimatedDuration": 95,
        "progress": progress,
        "nodes": nodes,
        "conditions": [
            {"type": "PodRunning", "status": "False" if completed else "True"},
            *([{"type": "Completed", "status": "True"}] if completed else []),
        ],
        "resourcesDuration": {"cpu": 41, "memory": 163},
        "artifactRepositoryRef": {
            "configMap": "artifact-repositories",
            "key": "default-v1",
            "namespace": "argo",
        },
        "artifactGCStatus": {"notSpecified": True},
        "taskResultsCompletionStatus": {f"{main}-2211085640": True},
    }
    if message is not None:
        base_status["message"] = message
    base_status.update(copy.deepcopy(status))
    return {
        "metadata": {
            "name": ARGO_WORKFLOW,
            "generateName": "etl-nightly-",
            "namespace": "argo",
            "uid": "2f9d3c41-8a7e-4b61-9c5d-0e3f1a2b4c6d",
            "resourceVersion": "48211035",
            "generation": 6,
            "creationTimestamp": "2024-05-01T09:30:00Z",
            "labels": {
                "workflows.argoproj.io/completed": "true" if completed else "false",
                "workflows.argoproj.io/phase": phase,
                "workflows.argoproj.io/workflow-template": "etl-nightly",
            },
            "annotations": {"workflows.argoproj.io/pod-name-format": "v2"},
        },
        "spec": {
            "arguments": {"parameters": [{"name": "date", "value": "2024-05-01"}]},
            "workflowTemplateRef": {"name": "etl-nightly"},
            **({"shutdown": shutdown} if shutdown else {}),
        },
        "status": base_status,
    }


ARGO = System(
    key="argo",
    title="Argo Workflows",
    job_id=ARGO_WORKFLOW,
    live="running",
    cases=(
        Case(
            "argo",
            "pending",
            _argo("Pending", "0/2", completed=False),
            JobState.PENDING,
            progress=0.0,
        ),
        Case(
            "argo",
            "running",
            _argo("Running", "1/2", completed=False),
            JobState.RUNNING,
            progress=0.5,
        ),
        Case(
            "argo",
            "succeeded",
            _argo("Succeeded", "2/2", completed=True),
            JobState.SUCCEEDED,
            result=WHOLE_BODY,
        ),
        Case(
            "argo",
            "failed",
            _argo(
                "Failed",
                "1/2",
                completed=True,
                message=f"child '{ARGO_WORKFLOW}-1882205124' failed",
            ),
            JobState.FAILED,
            error=f"child '{ARGO_WORKFLOW}-1882205124' failed",
            note="status.message names the failed child; the node's own message "
            "(nodes[...].message, e.g. 'Error (exit code 1)') has the cause.",
        ),
        Case(
            "argo",
            "error",
            _argo(
                "Error",
                "0/2",
                completed=True,
                message="invalid spec: templates.main.steps[0].extract template name 'extrat' "
                "undefined",
            ),
            JobState.FAILED,
            error="template name 'extrat' undefined",
        ),
        Case(
            "argo",
            "stopped (argo stop)",
            _argo(
                "Failed",
                "1/2",
                completed=True,
                message="Stopped with strategy 'Stop'",
                shutdown="Stop",
            ),
            JobState.FAILED,
            error="Stopped with strategy 'Stop'",
            note="Argo has no stopped phase: argo stop / terminate end the workflow Failed "
            "(spec.shutdown says which), so the contract reads FAILED, not CANCELLED.",
        ),
        Case(
            "argo",
            "terminated (argo terminate)",
            _argo(
                "Failed",
                "1/2",
                completed=True,
                message="Stopped with strategy 'Terminate'",
                shutdown="Terminate",
            ),
            JobState.FAILED,
            error="Stopped with strategy 'Terminate'",
        ),
    ),
)


#: Every system, by key.
SYSTEMS: dict[str, System] = {
    system.key: system
    for system in (
        CELERY,
        RQ,
        RAY,
        PREFECT,
        AIRFLOW,
        AZURE,
        GOOGLE,
        AWS,
        OPENAI,
        REPLICATE,
        GITHUB,
        JENKINS,
        ARGO,
    )
}


def all_cases() -> Iterator[Case]:
    """Every case of every system."""
    for system in SYSTEMS.values():
        yield from system.cases
