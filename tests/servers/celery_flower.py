"""A session fixture that runs Celery behind Flower's HTTP API on loopback ports.

``celery_flower`` starts, each at a free 127.0.0.1 port and in one temporary folder:

- a redis-server (no persistence: ``--save ''``, no append-only file), the broker and the
  result backend;
- a Celery worker (prefork pool, concurrency 2: a revoke with ``terminate=true`` needs a
  pool that can kill the process running the task; the solo pool cannot) running the
  tasks in ``servers/celery_tasks.py``;
- Flower, whose API is opened without authentication (``FLOWER_UNAUTHENTICATED_API``,
  which Flower 2 requires for that).

It waits (at most ``START_TIMEOUT`` seconds) until Flower lists the worker with the
tasks registered, and at the end of the session stops each process (SIGTERM; for the
worker SIGQUIT, Celery's cold shutdown that does not wait for running tasks), then
SIGKILLs its whole process group (the worker's pool processes too). On Linux each child
also dies with pytest itself (PR_SET_PDEATHSIG), when a hard kill leaves no teardown to
run. Each process writes to its own log file; a test that fails while using the fixture
gets the end of every log in its report, and a start-up that fails shows them in its
error.

Use it from a test module with ``pytest_plugins = ["servers.celery_flower"]`` (pytest
then loads the module itself and rewrites its asserts; an import before that makes
pytest warn, an error under this suite's ``filterwarnings = error``). The fixture skips
(or fails, under ``ASYNCPOLL_REAL_SERVERS=required``) when celery, flower, redis or
redis-server is missing: see ``servers.require``.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

from . import LogsOnFailure, require, tail

__all__ = ["START_TIMEOUT", "CeleryFlower", "celery_flower"]

#: Seconds the whole start-up (redis, worker, Flower listing the worker) may take.
START_TIMEOUT = 40.0
#: Seconds each process has to exit after its stop signal before its group is killed.
STOP_TIMEOUT = 10.0
#: Characters of each log shown in a failure report.
LOG_TAIL = 2500

_TESTS_DIR = Path(__file__).resolve().parent.parent
_APP = "servers.celery_tasks:app"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _parent_death_signal() -> Any:
    """A ``preexec_fn`` that has Linux SIGKILL the child when pytest dies (a hard
    timeout's ``os._exit``, a SIGKILL), when no fixture teardown can run; None
    elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1
    kill = int(signal.SIGKILL)

    def preexec() -> None:
        prctl(pr_set_pdeathsig, kill, 0, 0, 0)

    return preexec


class _Process:
    """One server process, its command and its log file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        log: Path,
        env: dict[str, str],
        cwd: Path,
        stop_signal: signal.Signals = signal.SIGTERM,
    ):
        self.name = name
        self.stop_signal = stop_signal
        self.args = args
        self.log = log
        self._log_file: IO[bytes] = log.open("wb")
        # Its own session (and process group): the worker's pool processes are killed
        # with it, and a Ctrl+C meant for pytest does not reach it before the teardown.
        self.popen = subprocess.Popen(
            args,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            start_new_session=True,
            preexec_fn=_parent_death_signal(),
        )

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self) -> None:
        """Its stop signal, wait up to ``STOP_TIMEOUT``, then SIGKILL its process group."""
        pid = self.popen.pid
        if self.alive():
            self.popen.send_signal(self.stop_signal)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(STOP_TIMEOUT)
        # The process group is the one Popen made (start_new_session): its id is the
        # process's own. Whatever is left in it (a pool process) is killed.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(STOP_TIMEOUT)
        self._log_file.close()

    def tail(self) -> str:
        return tail(self.log, LOG_TAIL)


class CeleryFlower:
    """Running redis, Celery worker and Flower.

    Attributes:
        url: Flower's base URL, ``http://127.0.0.1:<port>``.
        redis_url: the redis-server's URL (database 0 is the broker, 1 the results).
        worker: the worker's node name (``asyncpoll-test-<pid>@<host>``).
        folder: the temporary folder holding redis's files and every log.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.processes: list[_Process] = []
        self.redis_port = free_port()
        self.flower_port = free_port()
        self.redis_url = f"redis://127.0.0.1:{self.redis_port}"
        self.url = f"http://127.0.0.1:{self.flower_port}"
        self.worker = f"asyncpoll-test-{os.getpid()}@{socket.gethostname()}"

    @staticmethod
    def task(name: str) -> str:
        """The Celery name of task ``name`` of ``servers/celery_tasks.py``."""
        return f"asyncpoll_tests.{name}"

    def apply_url(self, name: str) -> str:
        """Flower's create URL for task ``name``: ``POST`` it ``{"args": [...]}``."""
        return f"{self.url}/api/task/async-apply/{self.task(name)}"

    def logs(self) -> str:
        """The end of every process's log, for a failure report."""
        return "\n".join(
            f"----- {p.name} (pid {p.popen.pid}, exit code {p.popen.poll()}) {p.log}\n{p.tail()}"
            for p in self.processes
        )

    def revoke_unfinished(self) -> list[str]:
        """Revoke (terminating it if it runs) every task Flower has seen that has not
        finished, so that one test's leftover cannot hold the worker's two pool
        processes during the next; returns their ids. Best effort: a task whose first
        event Flower has not read yet is not listed."""
        import httpx

        with httpx.Client(base_url=self.url, timeout=10.0) as client:
            tasks = client.get("/api/tasks").json()
            unfinished = [
                task_id
                for task_id, task in tasks.items()
                if task.get("state") not in ("SUCCESS", "FAILURE", "REVOKED", "REJECTED")
            ]
            for task_id in unfinished:
                client.post(f"/api/task/revoke/{task_id}", params={"terminate": "true"})
        return unfinished

    # ----------------------------------------------------------------- start, stop

    def start(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            [str(_TESTS_DIR), *filter(None, [env.get("PYTHONPATH")])]
        )
        env["ASYNCPOLL_TEST_REDIS_URL"] = self.redis_url
        env["FLOWER_UNAUTHENTICATED_API"] = "true"
        env["PYTHONUNBUFFERED"] = "1"
        env.pop("PYTHONWARNINGS", None)
        redis_server = shutil.which("redis-server")
        assert redis_server is not None  # require() checked
        self._spawn(
            "redis-server",
            [
                redis_server,
                "--bind", "127.0.0.1",
                "--port", str(self.redis_port),
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.folder),
                "--daemonize", "no",
                "--loglevel", "notice",
            ],
            env,
        )  # fmt: skip
        self._wait(deadline, "redis-server answering PING", self._redis_ready)
        celery = [sys.executable, "-m", "celery", "--app", _APP]
        self._spawn(
            "celery worker",
            [
                *celery, "worker",
                "--pool", "prefork",
                "--concurrency", "2",
                "--hostname", self.worker,
                "--loglevel", "INFO",
                # No other worker to meet: start at once, send nothing needless.
                "--without-mingle", "--without-gossip", "--without-heartbeat",
            ],
            env,
            # Celery's cold shutdown: a task still running is not waited for.
            stop_signal=signal.SIGQUIT,
        )  # fmt: skip
        self._spawn(
            "flower",
            [
                *celery, "flower",
                "--address=127.0.0.1",
                f"--port={self.flower_port}",
                "--persistent=False",
            ],
            env,
        )  # fmt: skip
        self._wait(deadline, f"Flower listing worker {self.worker!r}", self._flower_ready)

    def stop(self) -> None:
        for process in reversed(self.processes):  # Flower, the worker, then redis
            process.stop()

    def _spawn(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> None:
        log = self.folder / f"{name.replace(' ', '-')}.log"
        self.processes.append(_Process(name, args, log, env, self.folder, stop_signal))

    def _wait(self, deadline: float, what: str, ready: Any) -> None:
        last = "not tried"
        while True:
            for process in self.processes:
                if not process.alive():
                    raise RuntimeError(
                        f"{process.name} exited (code {process.popen.returncode}) while "
                        f"waiting for {what}\n{self.logs()}"
                    )
            try:
                if ready():
                    return
                last = "not ready"
            except Exception as exc:  # not listening yet, an error page ...
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"no {what} within {START_TIMEOUT:g} s (last: {last})\n{self.logs()}"
                )
            time.sleep(0.1)

    def _redis_ready(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(64).startswith(b"+PONG")

    def _flower_ready(self) -> bool:
        import httpx  # asyncpoll's own dependency

        response = httpx.get(f"{self.url}/api/workers", params={"refresh": "1"}, timeout=5.0)
        if response.status_code != 200:
            raise RuntimeError(f"GET /api/workers answered {response.status_code}")
        workers = response.json()
        info = workers.get(self.worker)
        if not isinstance(info, dict):
            return False
        registered = info.get("registered") or []
        return self.task("add") in registered


@pytest.fixture(scope="session")
def celery_flower(request: pytest.FixtureRequest) -> Iterator[CeleryFlower]:
    """Redis, a Celery worker and Flower, running for the whole session."""
    require(
        modules=["celery", "flower", "redis"],
        binaries=["redis-server"],
        what="the Celery/Flower tests",
    )
    folder = Path(tempfile.mkdtemp(prefix="asyncpoll-celery-"))
    servers = CeleryFlower(folder)
    plugin = LogsOnFailure("celery_flower", f"celery/flower logs ({servers.folder})", servers.logs)
    request.config.pluginmanager.register(plugin, f"asyncpoll-celery-logs-{id(servers)}")
    try:
        servers.start()
        yield servers
    finally:
        servers.stop()
        request.config.pluginmanager.unregister(plugin)
        shutil.rmtree(folder, ignore_errors=True)
