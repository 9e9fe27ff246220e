"""Every recipe of docs/job-systems.md, executed against a fake of its job system.

Each ``python`` block of the page follows a ``<!-- recipe: KEY -->`` marker. A test runs
the block as a script (its ``anyio.run(main)`` hands ``main`` to the test, which awaits it
in virtual time) against a respx mock of the system's API serving the status documents of
``tests/jobsystems.py``, and checks what the recipe prints and which requests it sent:

- ``done``: the job runs, then succeeds; the recipe prints its result;
- ``stuck``: the job keeps running past the recipe's deadline; the recipe stops it on the
  server, and the cancel request (method, URL, JSON body) is the one the system expects.

The AWS recipe gets a stand-in ``boto3`` module serving boto3-shaped response dicts (and
runs its "threads" inline, as the stand-in never blocks); the RQ endpoint runs with stand-in
``redis`` and ``rq`` modules and must serve exactly the RQ documents of the data module.
"""

from __future__ import annotations

import enum
import json
import pathlib
import re
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import anyio
import httpx
import pytest
import respx
from jobsystems import (
    AIRFLOW_RUN,
    ARGO_WORKFLOW,
    AZURE_LANGUAGE_JOB,
    BATCH_JOB,
    CELERY_TASK,
    GITHUB_RUN,
    JENKINS_BUILD,
    JENKINS_QUEUE_LEFT,
    JENKINS_QUEUE_WAITING,
    OPENAI_BATCH,
    PREFECT_RUN,
    RAY_JOB,
    REPLICATE_PREDICTION,
    RQ_JOB,
    SFN_EXECUTION,
    SYSTEMS,
    TRANSLATION_OPERATION,
    Case,
)

pytestmark = pytest.mark.anyio

DOC = pathlib.Path(__file__).parent.parent / "docs" / "job-systems.md"

_RECIPE = re.compile(r"<!-- recipe: (?P<key>[\w-]+) -->\n```python\n(?P<code>.*?)\n```\n", re.S)


def recipes() -> dict[str, str]:
    """The page's recipes, by key."""
    text = DOC.read_text(encoding="utf-8")
    found: dict[str, str] = {}
    for match in _RECIPE.finditer(text):
        assert match["key"] not in found, f"two recipes are marked {match['key']!r}"
        found[match["key"]] = match["code"]
    return found


RECIPES = recipes()


def ok(body: Any = None, status: int = 200, **headers: str) -> httpx.Response:
    """A JSON response (no body when ``body`` is None)."""
    if body is None:
        return httpx.Response(status, headers=headers)
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class Fake:
    """One system's HTTP API for one run of a recipe, on a respx router.

    ``status()`` answers the live document until the job is done: in the ``done``
    scenario the terminal one comes second; in ``stuck`` the live one repeats until a
    cancel request arrives, and ``after_cancel`` answers from then on.
    """

    router: respx.Router
    scenario: str
    cancelled: bool = False
    sent: list[httpx.Request] = field(default_factory=list)
    cancels: list[httpx.Request] = field(default_factory=list)

    def route(self, method: str, url: str, *replies: httpx.Response) -> None:
        """Answer ``method url`` with ``replies`` in turn, the last repeating."""
        count = 0

        def answer(request: httpx.Request) -> httpx.Response:
            nonlocal count
            self.sent.append(request)
            reply = replies[min(count, len(replies) - 1)]
            count += 1
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

        self.router.route(method=method, url=url).mock(side_effect=answer)

    def status(self, url: str, live: Any, done: Any, after_cancel: Any) -> None:
        polls = 0

        def answer(request: httpx.Request) -> httpx.Response:
            nonlocal polls
            self.sent.append(request)
            polls += 1
            if self.scenario == "done":
                return ok(live if polls == 1 else done)
            return ok(after_cancel if self.cancelled else live)

        self.router.route(method="GET", url=url).mock(side_effect=answer)

    def cancel(self, method: str, url: str, reply: httpx.Response) -> None:
        def answer(request: httpx.Request) -> httpx.Response:
            self.sent.append(request)
            self.cancels.append(request)
            self.cancelled = True
            return httpx.Response(reply.status_code, headers=reply.headers, content=reply.content)

        self.router.route(method=method, url=url).mock(side_effect=answer)


@dataclass
class Expect:
    """What a recipe must print, and the cancel request it must send when stuck."""

    done: str
    stuck: str | None = None
    cancel: tuple[str, str, Any] | None = None  # method, URL, JSON body (None: no body)


def doc(system: str, name: str) -> Any:
    return SYSTEMS[system].case(name).document


def case(system: str, name: str) -> Case:
    return SYSTEMS[system].case(name)


# ---------------------------------------------------------------- the systems, one fake each

FLOWER = "http://localhost:5555"


def celery(fake: Fake) -> Expect:
    fake.route(
        "POST",
        f"{FLOWER}/api/task/async-apply/billing.tasks.render_invoice",
        ok({"task-id": CELERY_TASK, "state": "PENDING"}),
    )
    fake.status(
        f"{FLOWER}/api/task/result/{CELERY_TASK}",
        doc("celery", "result: started"),
        doc("celery", "result: success"),
        doc("celery", "result: revoked (terminated)"),
    )
    revoke = f"{FLOWER}/api/task/revoke/{CELERY_TASK}?terminate=true"
    fake.cancel("POST", revoke, ok({"message": f"Revoked '{CELERY_TASK}'"}))
    return Expect(
        done="rendered s3://acme-invoices/2024/05/1042.pdf\n",
        stuck=f"revoked {CELERY_TASK}\n",
        cancel=("POST", revoke, None),
    )


def rq(fake: Fake) -> Expect:
    app = "http://localhost:8000"
    fake.status(
        f"{app}/jobs/{RQ_JOB}", doc("rq", "started"), doc("rq", "finished"), doc("rq", "stopped")
    )
    fake.cancel("POST", f"{app}/jobs/{RQ_JOB}/stop", ok({"stopping": RQ_JOB}))
    return Expect(
        done="loaded 18234 rows\n",
        stuck=f"stopped {RQ_JOB}\n",
        cancel=("POST", f"{app}/jobs/{RQ_JOB}/stop", None),
    )


RAY = "http://127.0.0.1:8265"


def ray(fake: Fake) -> Expect:
    fake.route("POST", f"{RAY}/api/jobs/", ok({"job_id": RAY_JOB, "submission_id": RAY_JOB}))
    fake.status(
        f"{RAY}/api/jobs/{RAY_JOB}",
        doc("ray", "running"),
        doc("ray", "succeeded"),
        doc("ray", "stopped"),
    )
    fake.cancel("POST", f"{RAY}/api/jobs/{RAY_JOB}/stop", ok({"stopped": True}))
    return Expect(
        done=f"{RAY_JOB} SUCCEEDED\n",
        stuck=f"stopped {RAY_JOB}\n",
        cancel=("POST", f"{RAY}/api/jobs/{RAY_JOB}/stop", None),
    )


PREFECT = "http://127.0.0.1:4200/api"


def prefect(fake: Fake) -> Expect:
    fake.route(
        "POST",
        f"{PREFECT}/deployments/d3f5a7b9-c1e2-4d4f-a6b8-c0d2e4f6a8b1/create_flow_run",
        ok(doc("prefect", "scheduled"), status=201),
    )
    fake.status(
        f"{PREFECT}/flow_runs/{PREFECT_RUN}",
        doc("prefect", "running"),
        doc("prefect", "completed"),
        doc("prefect", "cancelling"),
    )
    set_state = f"{PREFECT}/flow_runs/{PREFECT_RUN}/set_state"
    accepted = {
        "status": "ACCEPT",
        "details": {"type": "accept_details"},
        "state": doc("prefect", "cancelling")["state"],
    }
    fake.cancel("POST", set_state, ok(accepted, status=201))
    return Expect(
        done="crimson-fox All states completed.\n",
        stuck=f"cancelling {PREFECT_RUN}\n",
        cancel=(
            "POST",
            set_state,
            {"state": {"type": "CANCELLING", "message": "cancelled by the scheduler"}},
        ),
    )


AIRFLOW = "http://localhost:8080/api/v2"


def airflow(fake: Fake) -> Expect:
    fake.route("POST", f"{AIRFLOW}/dags/nightly_etl/dagRuns", ok(doc("airflow", "dag run: queued")))
    run_url = f"{AIRFLOW}/dags/nightly_etl/dagRuns/{AIRFLOW_RUN}"
    failed = doc("airflow", "dag run: failed")
    fake.status(
        run_url, doc("airflow", "dag run: running"), doc("airflow", "dag run: success"), failed
    )
    fake.cancel("PATCH", run_url, ok(failed))
    return Expect(
        done=f"{AIRFLOW_RUN} success\n",
        stuck=f"{AIRFLOW_RUN} failed\n",
        cancel=("PATCH", run_url, {"state": "failed"}),
    )


LANGUAGE = "https://acme-language.cognitiveservices.azure.com/language"


def azure(fake: Fake) -> Expect:
    job_url = f"{LANGUAGE}/analyze-text/jobs/{AZURE_LANGUAGE_JOB}?api-version=2023-04-01"
    fake.route(
        "POST",
        f"{LANGUAGE}/analyze-text/jobs?api-version=2023-04-01",
        ok(status=202, **{"Operation-Location": job_url}),
    )
    fake.status(
        job_url,
        doc("azure", "language: running"),
        doc("azure", "language: succeeded"),
        doc("azure", "language: cancelling"),
    )
    cancel = f"{LANGUAGE}/analyze-text/jobs/{AZURE_LANGUAGE_JOB}:cancel?api-version=2023-04-01"
    fake.cancel("POST", cancel, ok(status=202, **{"Operation-Location": job_url}))
    return Expect(
        done="sentiment positive\n",
        stuck=f"cancelling {AZURE_LANGUAGE_JOB}\n",
        cancel=("POST", cancel, None),
    )


TRANSLATE = "https://translation.googleapis.com/v3"


def google(fake: Fake) -> Expect:
    fake.route(
        "POST",
        f"{TRANSLATE}/projects/acme-prod/locations/us-central1:batchTranslateText",
        ok(doc("google", "translation: running")),
    )
    fake.status(
        f"{TRANSLATE}/{TRANSLATION_OPERATION}",
        doc("google", "translation: running"),
        doc("google", "translation: done with response"),
        doc("google", "translation: cancelled"),
    )
    fake.cancel("POST", f"{TRANSLATE}/{TRANSLATION_OPERATION}:cancel", ok({}))
    return Expect(
        done="translated 120000 characters\n",
        stuck=f"cancelling {TRANSLATION_OPERATION}\n",
        cancel=("POST", f"{TRANSLATE}/{TRANSLATION_OPERATION}:cancel", None),
    )


OPENAI = "https://api.openai.com/v1"


def openai(fake: Fake) -> Expect:
    fake.route("POST", f"{OPENAI}/batches", ok(doc("openai", "batch: validating")))
    fake.status(
        f"{OPENAI}/batches/{OPENAI_BATCH}",
        doc("openai", "batch: in_progress"),
        doc("openai", "batch: completed"),
        doc("openai", "batch: cancelling"),
    )
    fake.cancel(
        "POST", f"{OPENAI}/batches/{OPENAI_BATCH}/cancel", ok(doc("openai", "batch: cancelling"))
    )
    return Expect(
        done="completed file-6TpW3nRk8YzQ2vXm5LbJ4c "
        "{'total': 1000, 'completed': 997, 'failed': 3}\n",
        stuck=f"cancelling {OPENAI_BATCH}\n",
        cancel=("POST", f"{OPENAI}/batches/{OPENAI_BATCH}/cancel", None),
    )


REPLICATE = "https://api.replicate.com/v1"


def replicate(fake: Fake) -> Expect:
    fake.route(
        "POST",
        f"{REPLICATE}/models/black-forest-labs/flux-schnell/predictions",
        ok(doc("replicate", "starting"), status=201),
    )
    fake.status(
        f"{REPLICATE}/predictions/{REPLICATE_PREDICTION}",
        doc("replicate", "processing"),
        doc("replicate", "succeeded"),
        doc("replicate", "canceled"),
    )
    cancel = f"{REPLICATE}/predictions/{REPLICATE_PREDICTION}/cancel"
    fake.cancel("POST", cancel, ok(doc("replicate", "canceled")))
    return Expect(
        done="https://replicate.delivery/xezq/Fh3kP9sT2wQ/out-0.webp\n",
        stuck=f"canceled {REPLICATE_PREDICTION}\n",
        cancel=("POST", cancel, None),
    )


RUNS = "https://api.github.com/repos/acme/billing/actions/runs"


def github(fake: Fake) -> Expect:
    fake.status(
        f"{RUNS}/{GITHUB_RUN}",
        doc("github", "in_progress"),
        doc("github", "completed: success"),
        doc("github", "in_progress"),  # a cancelled run goes on for a moment
    )
    fake.cancel("POST", f"{RUNS}/{GITHUB_RUN}/cancel", ok({}, status=202))
    return Expect(
        done=f"success https://github.com/acme/billing/actions/runs/{GITHUB_RUN}\n",
        stuck=f"cancelling {GITHUB_RUN}\n",
        cancel=("POST", f"{RUNS}/{GITHUB_RUN}/cancel", None),
    )


JENKINS = "http://localhost:8080"


def jenkins(fake: Fake) -> Expect:
    item = f"{JENKINS}/queue/item/1731/"
    build = f"{JENKINS}/job/deploy-api/{JENKINS_BUILD}/"
    fake.route(
        "POST",
        f"{JENKINS}/job/deploy-api/buildWithParameters?ENV=staging",
        httpx.Response(201, headers={"Location": item}),
    )
    fake.route("GET", f"{item}api/json", ok(JENKINS_QUEUE_WAITING), ok(JENKINS_QUEUE_LEFT))
    fake.status(
        f"{build}api/json",
        doc("jenkins", "building"),
        doc("jenkins", "SUCCESS"),
        doc("jenkins", "ABORTED"),
    )
    # Jenkins answers a stop with a redirect to the build's page.
    fake.cancel("POST", f"{build}stop", httpx.Response(302, headers={"Location": build}))
    return Expect(
        done=f"deploy-api #{JENKINS_BUILD} passed\n",
        stuck=f"aborted {build}\n",
        cancel=("POST", f"{build}stop", None),
    )


ARGO = "http://localhost:2746/api/v1/workflows/argo"


def argo(fake: Fake) -> Expect:
    fake.route("POST", f"{ARGO}/submit", ok(doc("argo", "pending")))
    running = doc("argo", "running")
    fake.status(f"{ARGO}/{ARGO_WORKFLOW}", running, doc("argo", "succeeded"), running)
    fake.cancel("PUT", f"{ARGO}/{ARGO_WORKFLOW}/stop", ok(running))
    return Expect(
        done=f"{ARGO_WORKFLOW} Succeeded 2/2\n",
        stuck=f"stopping {ARGO_WORKFLOW}\n",
        cancel=("PUT", f"{ARGO}/{ARGO_WORKFLOW}/stop", None),
    )


# ---------------------------------------------------------------- AWS: a stand-in boto3


class _Boto3:
    """A stand-in for the ``boto3`` module: ``client(service)`` answers with the data
    module's boto3-shaped dicts, each describe call the next document (the last repeating)."""

    def __init__(self, documents: dict[str, list[Any]]) -> None:
        self.documents = documents
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def client(self, service: str, region_name: str | None = None) -> Any:
        boto = self

        class Client:
            def __getattr__(self, operation: str) -> Callable[..., Any]:
                def call(**params: Any) -> Any:
                    boto.calls.append((service, operation, params))
                    answers = boto.documents[f"{service}.{operation}"]
                    done = sum(1 for s, o, _ in boto.calls if (s, o) == (service, operation))
                    return answers[min(done, len(answers)) - 1]

                return call

        return Client()


def aws_documents() -> dict[str, list[Any]]:
    return {
        "batch.submit_job": [
            {
                "jobArn": f"arn:aws:batch:eu-west-1:123456789012:job/{BATCH_JOB}",
                "jobName": "nightly-etl",
                "jobId": BATCH_JOB,
            }
        ],
        "batch.describe_jobs": [doc("aws", "batch: running"), doc("aws", "batch: succeeded")],
        "stepfunctions.start_execution": [
            {
                "executionArn": SFN_EXECUTION,
                "startDate": doc("aws", "step functions: running")["startDate"],
            }
        ],
        "stepfunctions.describe_execution": [
            doc("aws", "step functions: running"),
            doc("aws", "step functions: succeeded"),
        ],
    }


# ---------------------------------------------------------------- running a recipe

#: The HTTP recipes: each sets up its system's fake and says what the recipe must do.
SETUPS: dict[str, Callable[[Fake], Expect]] = {
    "celery": celery,
    "rq": rq,
    "ray": ray,
    "prefect": prefect,
    "airflow": airflow,
    "azure": azure,
    "google": google,
    "openai": openai,
    "replicate": replicate,
    "github": github,
    "jenkins": jenkins,
    "argo": argo,
}


async def run(key: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Execute recipe ``key`` as a script, then await the ``main`` it hands ``anyio.run``."""
    started: list[tuple[Callable[..., Any], tuple[Any, ...]]] = []
    monkeypatch.setattr(anyio, "run", lambda func, *args, **_: started.append((func, args)))
    namespace: dict[str, Any] = {"__name__": f"recipe_{key.replace('-', '_')}"}
    exec(compile(RECIPES[key], f"{DOC}:{key}", "exec"), namespace)
    [(main, args)] = started
    await main(*args)


def test_every_python_block_of_the_page_is_a_marked_recipe() -> None:
    """Nothing on the page goes untested: each block has a marker and a test setup."""
    text = DOC.read_text(encoding="utf-8")
    assert text.count("```python") == len(RECIPES)
    assert set(RECIPES) == {*SETUPS, "aws", "rq-endpoint"}


@pytest.mark.parametrize("scenario", ["done", "stuck"])
@pytest.mark.parametrize("key", list(SETUPS))
async def test_the_recipe_runs_against_its_system(
    key: str, scenario: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``done``: the recipe prints the job's result. ``stuck``: past its deadline it stops
    the job with the request the system expects, and says so."""
    with respx.mock(assert_all_called=False) as router:
        fake = Fake(router, scenario)
        expect = SETUPS[key](fake)
        await run(key, monkeypatch)
    out = capsys.readouterr().out
    if scenario == "done":
        assert out == expect.done
        assert fake.cancels == []
        return
    assert expect.cancel is not None
    assert out == expect.stuck
    method, url, body = expect.cancel
    [request] = fake.cancels
    assert (request.method, str(request.url)) == (method, url)
    if body is None:
        assert request.content == b""
    else:
        assert json.loads(request.content) == body


async def test_the_aws_recipe_reads_boto3_responses(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Batch job and a Step Functions execution, each through a ``check=`` function that
    hands the boto3 response to ``DefaultReader().read()``."""
    boto3 = _Boto3(aws_documents())
    monkeypatch.setitem(sys.modules, "boto3", types.SimpleNamespace(client=boto3.client))

    async def inline(func: Callable[[], Any], *args: Any, **_: Any) -> Any:
        return func(*args)  # the stand-in never blocks: no thread needed

    monkeypatch.setattr(anyio.to_thread, "run_sync", inline)
    await run("aws", monkeypatch)
    assert capsys.readouterr().out == "etl exit code 0\ninvoices {'invoices': 1042, 'failed': 0}\n"
    operations = [(service, operation) for service, operation, _ in boto3.calls]
    assert operations.count(("batch", "describe_jobs")) == 2
    assert operations.count(("stepfunctions", "describe_execution")) == 2
    assert ("batch", "describe_jobs", {"jobs": [BATCH_JOB]}) in boto3.calls
    assert ("stepfunctions", "describe_execution", {"executionArn": SFN_EXECUTION}) in boto3.calls


# ---------------------------------------------------------------- the RQ endpoint


class _JobStatus(str, enum.Enum):
    """RQ's JobStatus: a str enum."""

    QUEUED = "queued"
    FINISHED = "finished"
    FAILED = "failed"
    STARTED = "started"
    DEFERRED = "deferred"
    SCHEDULED = "scheduled"
    STOPPED = "stopped"
    CANCELED = "canceled"


class _Job:
    """An ``rq.job.Job`` stand-in holding one case's job."""

    current: ClassVar[dict[str, Any]] = {}

    def __init__(self, document: dict[str, Any]) -> None:
        self.id = document["id"]
        self._status = _JobStatus(document["status"])
        self.meta = {} if document["progress"] is None else {"progress": document["progress"]}
        self._result = document["result"]
        self.exc_info = document["exc_info"]

    @classmethod
    def fetch(cls, job_id: str, connection: Any) -> _Job:
        assert connection is not None
        return cls(cls.current[job_id])

    def get_status(self) -> _JobStatus:
        return self._status

    def return_value(self) -> Any:
        return self._result


@pytest.mark.parametrize("case", SYSTEMS["rq"].cases, ids=lambda c: c.name)
async def test_the_rq_endpoint_serves_the_rq_documents(
    case: Case, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FastAPI app of the page, over stand-in ``redis`` and ``rq`` modules, answers
    each RQ job with exactly the document the data module has for it, and stops jobs."""
    stopped: list[tuple[Any, str]] = []
    redis = types.ModuleType("redis")
    redis.Redis = types.SimpleNamespace(from_url=lambda url: ("redis", url))  # type: ignore[attr-defined]
    rq = types.ModuleType("rq")
    rq_job = types.ModuleType("rq.job")
    rq_job.Job = _Job  # type: ignore[attr-defined]
    rq_command = types.ModuleType("rq.command")
    rq_command.send_stop_job_command = lambda connection, job_id: stopped.append(
        (connection, job_id)
    )  # type: ignore[attr-defined]
    for name, module in {
        "redis": redis,
        "rq": rq,
        "rq.job": rq_job,
        "rq.command": rq_command,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setattr(_Job, "current", {RQ_JOB: case.document})

    namespace: dict[str, Any] = {"__name__": "recipe_rq_endpoint"}
    exec(compile(RECIPES["rq-endpoint"], f"{DOC}:rq-endpoint", "exec"), namespace)
    transport = httpx.ASGITransport(namespace["app"])
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8000") as client:
        answer = await client.get(f"/jobs/{RQ_JOB}")
        assert answer.status_code == 200
        assert answer.json() == case.document
        stop = await client.post(f"/jobs/{RQ_JOB}/stop")
    assert stop.json() == {"stopping": RQ_JOB}
    assert stopped == [(("redis", "redis://localhost:6379/0"), RQ_JOB)]
