"""The ``asyncpoll`` command: in process (``main(argv)``) and as a subprocess.

``watch`` runs against the fake job API served on loopback (real sockets, real time), with
jobs of a few tens of milliseconds at most, so each test takes well under a few seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

import asyncpoll
from asyncpoll import JobState
from asyncpoll._cli import (
    SHAPE_NAMES,
    UsageError,
    main,
    parse_header,
    parse_reader,
    parse_schedule,
    watch,
)
from asyncpoll._demo import percentile
from asyncpoll.testing import SHAPES, FakeJobAPI, serve

Run = tuple[int, str, str]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Run:
    """``main(argv)`` in process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def python_m(*argv: str, timeout: float = 50) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "asyncpoll", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def lines(text: str) -> list[dict[str, Any]]:
    return sorted((json.loads(line) for line in text.splitlines()), key=lambda r: r["job_id"])


@pytest.fixture
def fake() -> Iterator[tuple[FakeJobAPI, str]]:
    """A fake job API (shape ``status``) served on loopback: (api, base URL)."""
    api = FakeJobAPI(duration=0.0)
    with serve(api) as url:
        yield api, url


# ---------------------------------------------------------------- the parser


def test_version_and_help_on_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ([], ["demo"], ["watch"], ["serve-fake"]):
        code, out, _ = run(capsys, *command, "--version")
        assert (code, out) == (0, f"asyncpoll {asyncpoll.__version__}\n".replace(
            "asyncpoll ", f"asyncpoll{' ' + command[0] if command else ''} ", 1))  # fmt: skip
        code, out, _ = run(capsys, *command, "--help")
        assert code == 0
        assert out.startswith(f"usage: asyncpoll{' ' + command[0] if command else ''}")


def test_no_command_prints_the_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert (code, out) == (2, "")
    assert "demo" in err and "watch" in err and "serve-fake" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["nope"], "asyncpoll: argument COMMAND: invalid choice: 'nope'"),
        (["demo", "--jobs", "0"], "asyncpoll demo: argument --jobs: must be > 0, got '0'"),
        (["demo", "--shape", "soap"], "asyncpoll demo: argument --shape: invalid choice"),
        (["watch"], "asyncpoll watch: give status URLs, or --ids FILE and --status-url"),
        (["watch", "ftp://x/1"], "asyncpoll watch: 'ftp://x/1' is not an http(s) URL"),
        (["watch", "--ids", "f"], "asyncpoll watch: --ids needs --status-url TEMPLATE"),
        (["watch", "--status-url", "http://x/{job_id}"], "--status-url goes with --ids"),
        (
            ["watch", "--ids", "f", "--status-url", "http://x/jobs"],
            "asyncpoll watch: --status-url must contain {job_id}",
        ),
        (["watch", "--ids", "/no/such/file", "--status-url", "http://x/{job_id}"], "--ids"),
        (["watch", "-H", "Bearer x", "http://x/1"], "-H 'Bearer x': write -H 'Name: value'"),
        (["watch", "--schedule", "every:2", "http://x/1"], "--schedule 'every:2': write fixed:"),
        (["watch", "--reader", "json:status", "http://x/1"], "cannot read 'status'"),
        (["watch", "--timeout", "soon", "http://x/1"], "--timeout: 'soon' is not a number"),
        (["watch", "--rate", "-1", "http://x/1"], "argument --rate: must be > 0"),
        (["serve-fake", "--duration", "3,1"], "argument --duration: '3,1': seconds >= 0"),
        (["serve-fake", "--failure-rate", "2"], "argument --failure-rate: must be from 0 to 1"),
        (["serve-fake", "--port", "99999"], "argument --port: a port is 0 to 65535, got '99999'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1 and err.endswith(" (see --help)\n")
    assert "Traceback" not in err


def test_schedule_syntax() -> None:
    assert parse_schedule("fixed:2") == asyncpoll.fixed(2.0)
    assert parse_schedule("fixed:0") == asyncpoll.fixed(0.0)
    assert parse_schedule("backoff") == asyncpoll.backoff(1.0, 1.5, 30.0)
    assert parse_schedule("backoff:0.5") == asyncpoll.backoff(0.5, 1.5, 30.0)
    assert parse_schedule("backoff:1,2") == asyncpoll.backoff(1.0, 2.0, 30.0)
    assert parse_schedule("backoff:1,2,30") == asyncpoll.backoff(1.0, 2.0, 30.0)
    for bad in ("fixed", "fixed:", "fixed:-1", "fixed:inf", "backoff:1,,3", "backoff:1,2,3,4"):
        with pytest.raises(UsageError):
            parse_schedule(bad)
    with pytest.raises(UsageError, match="factor"):
        parse_schedule("backoff:1,0.5")


def test_reader_syntax() -> None:
    assert isinstance(parse_reader("default"), asyncpoll.DefaultReader)
    reader = parse_reader(
        "json:state=data.state,succeeded=success,failed=failed|expired,"
        "progress=progress.done/progress.total,result=data.resultJson,parse_result,"
        "error=data.failMsg"
    )
    assert isinstance(reader, asyncpoll.JsonReader)
    body = {"data": {"state": "expired", "failMsg": "too late"}}
    status = reader(asyncpoll.Response(200, {}, json.dumps(body).encode()))
    assert (status.state, status.error) == (JobState.FAILED, "too late")
    body = {"data": {"state": "success", "resultJson": '{"n": 1}'}}
    assert reader(asyncpoll.Response(200, {}, json.dumps(body).encode())).result == {"n": 1}
    for bad in ("json", "json:", "json:progress=a", "xml:state=a", "json:state=a,state=b"):
        with pytest.raises(UsageError):
            parse_reader(bad)


def test_header_syntax() -> None:
    assert parse_header("Authorization: Bearer t0k") == ("Authorization", "Bearer t0k")
    assert parse_header("X-Empty:") == ("X-Empty", "")
    for bad in ("NoColon", ": v", "Two Words: v"):
        with pytest.raises(UsageError):
            parse_header(bad)


def test_the_shape_names_are_the_fake_apis() -> None:
    assert list(SHAPE_NAMES) == list(SHAPES)


def test_percentile_by_nearest_rank() -> None:
    values = [float(n) for n in range(1, 21)]
    assert (percentile(values, 0.5), percentile(values, 0.95)) == (10.0, 19.0)
    assert percentile([3.0], 0.95) == 3.0


# ---------------------------------------------------------------- demo


def test_demo_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    """20 jobs, no live display: a header, then the table; every job accounted for."""
    code, out, err = run(capsys, "demo", "--jobs", "20", "--no-progress", "--seed", "1")
    assert code == 0, err
    assert err == ""
    head, table = out.split("\n", 1)
    assert head.startswith("asyncpoll demo: 20 jobs on a fake job API (shape 'status') at ")
    rows = {line[:22].strip(): line[22:].split() for line in table.splitlines() if line}
    counted = sum(int(rows[name][0]) for name in ("succeeded", "failed", "timed out"))
    assert counted == 20
    assert int(rows["requests sent"][0]) >= 40  # 20 creates and at least one poll each
    assert rows["requests sent"][1] == "(20"
    assert float(rows["elapsed"][0]) < 20
    assert rows["finish -> noticed"][0] == "p50"


@pytest.mark.parametrize("shape", ["envelope", "github", "prefect", "jenkins"])
def test_demo_on_other_shapes(capsys: pytest.CaptureFixture[str], shape: str) -> None:
    code, out, err = run(capsys, "demo", "--jobs", "8", "--no-progress", "--shape", shape)
    assert code == 0, err
    assert f"(shape '{shape}')" in out
    creates = "(0 creates" if shape in ("github", "jenkins") else "(8 creates"
    assert creates in out


def test_demo_without_the_cli_extra(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("asyncpoll._cli._installed", lambda name: False)
    code, out, err = run(capsys, "demo")
    assert (code, out) == (1, "")
    assert err == ("asyncpoll demo needs the fake job API: pip install 'asyncpoll[cli]'\n")


def test_python_dash_m_asyncpoll_demo() -> None:
    """The README's command: 30 jobs, the table on stdout; stderr is not a terminal here,
    so no live display fills it with frames."""
    started = time.monotonic()
    result = python_m("demo", "--jobs", "30")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 30
    assert result.stdout.startswith("asyncpoll demo: 30 jobs on a fake job API")
    assert "requests per job" in result.stdout
    assert "\r" not in result.stderr


def test_a_reader_that_goes_away_stops_the_command_quietly() -> None:
    """``asyncpoll demo | head -1``: the pipe closes early; exit 0, nothing on stderr."""
    command = [sys.executable, "-m", "asyncpoll", "demo", "--jobs", "20", "--no-progress"]
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stdout is not None and process.stderr is not None
        first = process.stdout.readline()
        process.stdout.close()
        err = process.stderr.read()
        code = process.wait(timeout=60)
    assert first.startswith("asyncpoll demo: 20 jobs")
    assert (code, err) == (0, "")


def test_python_dash_m_asyncpoll_version_and_a_usage_error() -> None:
    result = python_m("--version")
    assert (result.returncode, result.stdout) == (0, f"asyncpoll {asyncpoll.__version__}\n")
    result = python_m("watch", "--schedule", "soon", "http://127.0.0.1:9/jobs/1")
    assert result.returncode == 2
    assert result.stderr.startswith("asyncpoll: --schedule 'soon': write fixed:")
    assert result.stderr.count("\n") == 1


# ---------------------------------------------------------------- watch


def test_watch_urls_prints_one_json_line_per_job(
    capsys: pytest.CaptureFixture[str], fake: tuple[FakeJobAPI, str]
) -> None:
    """Two finished jobs, one failed: two exact lines, exit code 1."""
    api, url = fake
    ok = api.add_job("a1")
    bad = api.add_job("b2", fail=True)
    urls = [f"{url}/jobs/{ok.id}", f"{url}/jobs/{bad.id}"]
    code, out, err = run(capsys, "watch", *urls, "--schedule", "fixed:0.02")
    assert (code, err) == (1, "")
    assert lines(out) == [
        {
            "job_id": urls[0],
            "url": urls[0],
            "state": "succeeded",
            "attempts": 1,
            "result": {"job_id": "a1", "input": None},
        },
        {
            "job_id": urls[1],
            "url": urls[1],
            "state": "failed",
            "attempts": 1,
            "error": f"job '{urls[1]}' failed: simulated failure of job b2",
        },
    ]


def test_watch_ids_with_a_header_and_a_json_reader(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """--ids with --status-url, a bearer token by -H, a JsonReader: exit code 0."""
    api = FakeJobAPI("envelope", duration=0.05, token="s3cret")
    with serve(api) as url:
        ids = [api.add_job().id for _ in range(3)]
        file = tmp_path / "ids.txt"
        file.write_text("# three jobs\n" + "\n\n".join(ids) + "\n")
        code, out, err = run(
            capsys,
            "watch",
            "--ids", str(file),
            "--status-url", url + api.shape.status_url,
            "-H", "Authorization: Bearer s3cret",
            "--reader", "json:state=data.state,succeeded=success,result=data.resultJson,"
            "parse_result,error=data.failMsg",
            "--schedule", "backoff:0.02,2,0.1",
            "--rate", "200",
            "--concurrency", "2",
            "--timeout", "20",
        )  # fmt: skip
    assert (code, err) == (0, "")
    records = lines(out)
    assert [r["job_id"] for r in records] == sorted(ids)
    assert {r["state"] for r in records} == {"succeeded"}
    assert [r["result"] for r in records] == [{"job_id": i, "input": None} for i in sorted(ids)]
    assert all(r["url"] == f"{url}/api/v1/jobs/recordInfo?taskId={r['job_id']}" for r in records)
    assert {r.headers.get("authorization") for r in api.requests} == {"Bearer s3cret"}


def test_watch_reports_a_refused_job(
    capsys: pytest.CaptureFixture[str], fake: tuple[FakeJobAPI, str]
) -> None:
    """A 404 ends the job ERRORED: its line says why, exit code 1."""
    _, url = fake
    code, out, _ = run(capsys, "watch", f"{url}/jobs/nope")
    assert code == 1
    [record] = lines(out)
    assert record["state"] == "errored"
    assert "404" in record["error"]


def test_watch_timeout(capsys: pytest.CaptureFixture[str]) -> None:
    api = FakeJobAPI(duration=60.0)
    with serve(api) as url:
        job = api.add_job()
        code, out, _ = run(
            capsys, "watch", f"{url}/jobs/{job.id}", "--timeout", "0.2", "--schedule", "fixed:0.05"
        )
    assert code == 1
    [record] = lines(out)
    assert record["state"] == "timed_out"


def test_watch_stops_and_lists_the_jobs_still_running(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Stopped (as by Ctrl+C): the finished job was printed, the others are listed."""
    api = FakeJobAPI(duration=60.0)
    with serve(api) as url:
        done = api.add_job("quick", duration=0.0)
        slow = [api.add_job(f"slow-{n}").id for n in range(2)]

        async def stopped_later() -> int:
            stop = anyio.Event()
            async with anyio.create_task_group() as tg:

                async def press_ctrl_c() -> None:
                    for _ in range(3000):  # at most 30 s
                        if api.count("GET", f"/jobs/{slow[1]}") >= 2:
                            break
                        await anyio.sleep(0.01)
                    stop.set()

                tg.start_soon(press_ctrl_c)
                code = await watch(
                    [],
                    [done.id, *slow],
                    status_url=url + "/jobs/{job_id}",
                    options={"schedule": asyncpoll.fixed(0.02)},
                    stop=stop,
                )
            return code

        code = anyio.run(stopped_later)
    out, err = capsys.readouterr()
    assert code == 130
    assert [r["job_id"] for r in lines(out)] == ["quick"]
    assert err.splitlines() == [
        "asyncpoll watch: interrupted; 2 jobs still running",
        f"  slow-0 running 0% {url}/jobs/slow-0",
        f"  slow-1 running 0% {url}/jobs/slow-1",
    ]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_ctrl_c_stops_watch_cleanly(fake: tuple[FakeJobAPI, str]) -> None:
    """SIGINT to ``asyncpoll watch``: exit code 130, the job still running on stderr."""
    api, url = fake
    job = api.add_job("long", duration=600.0)
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncpoll", "watch", f"{url}/jobs/{job.id}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not api.count("GET", "/jobs/long") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert api.count("GET", "/jobs/long"), "watch never polled"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert out == ""
    assert err.splitlines()[0] == "asyncpoll watch: interrupted; 1 jobs still running"
    assert "/jobs/long" in err
    assert "Traceback" not in err


# ---------------------------------------------------------------- serve-fake


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_serve_fake_then_watch(capsys: pytest.CaptureFixture[str]) -> None:
    """serve-fake prints its URLs; watch polls the jobs it made; Ctrl+C stops it."""
    process = subprocess.Popen(
        [sys.executable, "-m", "asyncpoll", "serve-fake", "--jobs", "3", "--duration", "0.1",
         "--failure-rate", "0", "--seed", "4"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            printed.append(line.rstrip("\n"))
            if line.startswith("Ctrl+C"):
                break
        assert printed[0].startswith("fake job API (shape 'status') at http://127.0.0.1:")
        base = printed[0].rsplit(" ", 1)[1]
        assert printed[1:5] == [
            f"  create: POST {base}/jobs",
            f"  status: GET {base}/jobs/{{job_id}}",
            f"  cancel: DELETE {base}/jobs/{{job_id}}",
            "3 jobs:",
        ]
        urls = printed[5:8]
        assert urls == [f"{base}/jobs/job-{n}" for n in (1, 2, 3)]
        code, out, _ = run(capsys, "watch", *urls, "--schedule", "fixed:0.05")
        assert code == 0
        assert [r["state"] for r in lines(out)] == ["succeeded"] * 3
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert err.startswith("stopped; ")
    assert "Traceback" not in err
