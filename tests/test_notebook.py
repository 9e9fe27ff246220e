"""docs/examples/notebook.ipynb, executed as Jupyter would: nbclient drives a real
ipykernel kernel (a subprocess on this interpreter), cell by cell, against the fake job
API the notebook serves on loopback; the tests check what each cell shows.

The kernel runs on a kernelspec written to a temporary directory, with Jupyter's and
IPython's directories pointed there too, so the run uses nothing of the user's Jupyter
setup and leaves nothing behind. Job ids and results are deterministic (the notebook's
fake API numbers its jobs); request counts and the states seen while jobs are still
running depend on timing, and are checked for form only.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import inspect
import json
import pathlib
import re
import sys
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

import asyncpoll

NOTEBOOK = pathlib.Path(__file__).parent.parent / "docs" / "examples" / "notebook.ipynb"

#: The kernelspec's name, in the temporary Jupyter directory only.
KERNEL_NAME = "asyncpoll-notebook-test"

#: The longest one cell may run, in seconds (each takes well under one).
CELL_TIMEOUT = 20

#: The tag of the progress-bar cell: it runs once TaskPoller takes ``progress=``.
PROGRESS_TAG = "progress"

#: Whether ``TaskPoller(progress=True)`` exists yet (the progress bar is built apart).
HAS_PROGRESS = "progress" in inspect.signature(asyncpoll.TaskPoller).parameters


def tags(cell: Any) -> list[str]:
    return list(cell.metadata.get("tags", []))


@pytest.fixture(scope="module")
def notebook(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The notebook, executed once (without its progress cell until that can run)."""
    home = tmp_path_factory.mktemp("jupyter")
    spec_dir = home / "path" / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "asyncpoll test kernel",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    workdir = home / "work"
    workdir.mkdir()

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    if not HAS_PROGRESS:
        notebook.cells = [c for c in notebook.cells if PROGRESS_TAG not in tags(c)]
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTER_PATH", str(home / "path"))
        for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR"):
            env.setenv(name, str(home / name.lower()))
        env.setenv("IPYTHONDIR", str(home / "ipython"))
        env.delenv("JUPYTER_PREFER_ENV_PATH", raising=False)
        client = NotebookClient(
            notebook,
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT,
            startup_timeout=30,
            resources={"metadata": {"path": str(workdir)}},
        )
        client.execute()
    return notebook


@pytest.fixture(scope="module")
def executed(notebook: Any) -> dict[str, Any]:
    """The notebook's executed code cells, by their first line."""
    cells: dict[str, Any] = {}
    for cell in notebook.cells:
        if cell.cell_type == "code":
            first_line = cell.source.splitlines()[0]
            assert first_line not in cells, f"two code cells start with {first_line!r}"
            cells[first_line] = cell
    return cells


def streams(cell: Any, name: str) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream" and o.name == name)


def results(cell: Any) -> list[dict[str, Any]]:
    """The cell's rich outputs (``display()`` calls, then its value), mime type to data."""
    kinds = ("display_data", "execute_result")
    return [dict(o.data) for o in cell.outputs if o.output_type in kinds]


def table(markup: str) -> tuple[str, dict[str, str]]:
    """An asyncpoll HTML view's caption and rows, unescaped."""
    caption = re.fullmatch(r"<table class='asyncpoll'><caption[^>]*>(.*?)</caption>.*", markup)
    assert caption is not None, markup
    rows = re.findall(r"<tr><th[^>]*>(.*?)</th><td[^>]*>(.*?)</td></tr>", markup)
    return html.unescape(caption[1]), {html.unescape(k): html.unescape(v) for k, v in rows}


def test_every_cell_runs_cleanly(executed: dict[str, Any]) -> None:
    """No cell fails or writes to stderr (a warning, an unawaited coroutine)."""
    assert executed, "no code cell ran"
    for first_line, cell in executed.items():
        assert [o for o in cell.outputs if o.output_type == "error"] == [], first_line
        if PROGRESS_TAG not in tags(cell):  # a text progress bar goes to stderr
            assert streams(cell, "stderr") == "", first_line


def test_top_level_await_of_poll_many(executed: dict[str, Any]) -> None:
    """`await asyncpoll.poll_many(...)` at a cell's top level gives every result."""
    cell = executed["job_ids = [api.add_job().id for _ in range(5)]"]
    [value] = results(cell)
    assert ast.literal_eval(value["text/plain"]) == [
        {"job_id": f"job-{n}", "input": None} for n in range(1, 6)
    ]


def test_a_poller_opened_in_one_cell_is_inspected_in_another(executed: dict[str, Any]) -> None:
    """After open() and add(), a later cell shows the summary and a handle as tables."""
    opened = executed["poller = await asyncpoll.TaskPoller(status_url, schedule=fast).open()"]
    assert opened.outputs == []
    summary, handle = results(executed["from IPython.display import display"])

    caption, rows = table(summary["text/html"])
    assert caption == "asyncpoll jobs"
    assert list(rows) == [
        *("pending", "running", "succeeded", "failed", "cancelled", "timed out", "errored"),
        *("stalled", "total", "requests"),
    ]
    assert rows["total"] == "4"  # three jobs, and one that will fail
    assert sum(int(rows[state]) for state in ("pending", "running", "succeeded", "failed")) == 4
    assert summary["text/plain"].startswith("PollerSummary(")

    # The jobs take 0.5 s each: this cell usually sees them in flight, but may not.
    caption, rows = table(handle["text/html"])
    assert caption == "JobHandle"
    assert rows["job id"] == "job-6"
    assert rows["state"] in {"pending", "running", "succeeded"}
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/jobs/job-6", rows["status URL"])
    assert re.fullmatch(
        r"<JobHandle 'job-6' (pending|running|succeeded)( progress=\d+%)? attempts=\d+>",
        handle["text/plain"],
    )


def test_the_poller_is_awaited_and_closed_in_a_third_cell(executed: dict[str, Any]) -> None:
    """gather() and aclose() in another cell: three results and the one failure."""
    cell = executed["results = await poller.gather(*handles, return_exceptions=True)"]
    assert re.fullmatch(
        r"4 jobs: 0 in flight, 3 succeeded, 1 failed; \d+ requests\n", streams(cell, "stdout")
    )
    [value] = results(cell)
    assert value["text/plain"] == (
        "[{'job_id': 'job-6', 'input': None},\n"
        " {'job_id': 'job-7', 'input': None},\n"
        " {'job_id': 'job-8', 'input': None},\n"
        " asyncpoll._errors.JobFailed(\"job 'job-9' failed: simulated failure of job job-9\")]"
    )


def test_the_blocking_poller_needs_no_await(executed: dict[str, Any]) -> None:
    """BlockingPoller in a cell: result(timeout=) blocks, and the handle shows its result."""
    cell = executed["with asyncpoll.BlockingPoller(status_url, schedule=fast) as blocking:"]
    stdout = streams(cell, "stdout")
    assert re.fullmatch(
        r"\{'job_id': 'job-10', 'input': None\}\n1 job: 0 in flight, 1 succeeded; \d+ requests\n",
        stdout,
    )
    [value] = results(cell)
    caption, rows = table(value["text/html"])
    assert caption == "BlockingHandle"
    assert rows["job id"] == "job-10"
    assert rows["state"] == "succeeded"
    assert rows["progress"] == "100%"
    assert rows["result"] == "{'job_id': 'job-10', 'input': None}"
    assert re.fullmatch(
        r"<BlockingHandle 'job-10' succeeded progress=100% attempts=\d+>", value["text/plain"]
    )


@pytest.mark.skipif(
    not HAS_PROGRESS,
    reason="TaskPoller does not take progress= yet: the notebook ran without its "
    "progress-bar cell; this test checks that cell once it does",
)
def test_the_progress_bar_cell(notebook: Any, executed: dict[str, Any]) -> None:
    """poll_many(progress=True) polls all 20 jobs, and shows a bar that reaches 20/20.

    With ipywidgets installed, tqdm.auto draws a widget, whose last state nbclient keeps
    in the notebook's metadata; without, a text bar on stderr.
    """
    [cell] = [c for c in executed.values() if PROGRESS_TAG in tags(c)]
    *shown, value = results(cell)
    assert value == {"text/plain": "20"}
    views = [r[WIDGET_VIEW]["model_id"] for r in shown if WIDGET_VIEW in r]
    if importlib.util.find_spec("ipywidgets") is None:
        assert views == []
        assert "20/20" in streams(cell, "stderr")
        return
    assert views, cell.outputs
    state = notebook.metadata.widgets[WIDGET_STATE]["state"]
    bars = [widget_texts(state, model_id) for model_id in views]
    assert any("20/20" in text and done for text, done in bars), bars


#: The mime types of a widget's view (an output) and of the widgets' state (metadata).
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"


def widget_texts(state: dict[str, Any], model_id: str) -> tuple[str, bool]:
    """A widget tree's text (its HTML widgets' values) and whether its bars are full."""
    texts: list[str] = []
    full = True
    pending = [model_id]
    while pending:
        model = state[pending.pop(0)]
        attributes = model["state"]
        if model["model_name"] == "HTMLModel":
            texts.append(attributes["value"])
        elif model["model_name"] in ("FloatProgressModel", "IntProgressModel"):
            full = full and attributes["value"] == attributes["max"]
        pending += [ref.removeprefix("IPY_MODEL_") for ref in attributes.get("children", [])]
    return " ".join(texts), full


def test_the_notebook_is_stored_without_outputs() -> None:
    """The notebook in the repository is clean: the tests make its outputs."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(notebook)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert [tags(c) for c in code].count([PROGRESS_TAG]) == 1
