"""A session fixture that runs a Ray head node, whose dashboard serves Ray's Jobs REST
API, on loopback ports.

``ray_head`` starts one head node (``ray start --head``) in a temporary folder of its own
(``--temp-dir``), everything bound to 127.0.0.1, every port given a free one outside the
range the system hands out to outgoing connections (``ray start`` failing all the same
is tried once more, on other ports):

- ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``: without it Ray replaces
  ``--node-ip-address=127.0.0.1`` by the machine's routable address and binds its GCS,
  raylet and agents there (as it does for a cluster); with it Ray keeps to loopback, as
  it does on a laptop.
- Usage statistics off (``RAY_USAGE_STATS_ENABLED=0``, ``--disable-usage-stats``), the
  only thing in a head node that would reach out to the internet.
- One CPU (``--num-cpus=1``; a job's entrypoint needs none: Ray runs it beside the
  CPU-less job supervisor actor, so several jobs run at once), a 100 MiB object store,
  no log monitor.

It waits (at most ``START_TIMEOUT`` seconds) until the dashboard answers ``GET
/api/version`` and ``GET /api/jobs/``. At the end of the session it kills every process
of the head node, as ``ray stop --force`` does (SIGKILL), but only this node's: each
carries ``ASYNCPOLL_RAY_HEAD=<its folder>`` in its environment (Ray's daemons, workers
and job entrypoints inherit it), or belongs to the session ``ray start`` was started in.
``ray stop`` itself kills every Ray process of the user on the machine, other test runs'
clusters included. The teardown then fails if any such process is left.

A test that fails while using the fixture gets the end of the head node's logs in its
report; a start-up that fails shows them in its error.

Use it from a test module with ``from servers.ray_jobs import ray_head``. The fixture
skips (or fails, under ``ASYNCPOLL_REAL_SERVERS=required``) when ``ray[default]`` is
missing or the system is not Linux (the process checks read ``/proc``).
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from . import LogsOnFailure, cannot_run, require, tail

__all__ = ["MARKER_ENV", "START_TIMEOUT", "RayHead", "ray_head", "require"]

#: Seconds the whole start-up (``ray start``, the dashboard's job API answering) may take.
START_TIMEOUT = 60.0
#: Seconds the killed processes have to disappear.
STOP_TIMEOUT = 10.0
#: Characters of each log shown in a failure report.
LOG_TAIL = 3000
#: The environment variable that marks every process of a head node started here.
MARKER_ENV = "ASYNCPOLL_RAY_HEAD"

# ---------------------------------------------------------------- the head node


def _ephemeral_range() -> tuple[int, int]:
    """The ports the system hands out to outgoing connections and to ``bind(0)``."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def free_ports(count: int) -> list[int]:
    """``count`` distinct TCP ports that nothing uses on 127.0.0.1 right now, outside
    the ephemeral range: Ray binds some of them seconds after start-up began, and an
    outgoing connection made meanwhile (Ray's own processes make many) takes its port
    from that range, so could take one of them."""
    low, high = _ephemeral_range()
    pool = [port for port in range(20000, 65536) if not low <= port <= high]
    rng = random.Random()
    chosen: list[int] = []
    while len(chosen) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", rng.choice(pool) if pool else 0))
            except OSError:
                continue  # in use
            port: int = sock.getsockname()[1]
        if port not in chosen:
            chosen.append(port)
    return chosen


def _processes_of(marker: bytes, session: int | None) -> dict[int, str]:
    """``{pid: command line}`` of every live (not zombie) process that carries
    ``marker`` in its environment or belongs to session ``session``."""
    found: dict[int, str] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            # "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
            fields = stat[stat.rindex(")") + 2 :].split()
            if fields[0] in ("Z", "X"):
                continue  # a zombie whose parent (init here) has not reaped it yet
            ours = session is not None and int(fields[3]) == session
            if not ours:
                ours = marker in (entry / "environ").read_bytes()
            if ours:
                args = (entry / "cmdline").read_bytes().replace(b"\0", b" ").strip()
                found[int(entry.name)] = args.decode(errors="replace")[:200]
        except (OSError, ValueError, IndexError):
            continue  # gone meanwhile, or another user's process
    found.pop(os.getpid(), None)
    return found


class RayHead:
    """A running Ray head node.

    Attributes:
        url: the dashboard's base URL, ``http://127.0.0.1:<port>``; the Jobs API is under
            ``/api/jobs/``.
        folder: the node's temporary folder (``--temp-dir``): its sessions and logs.
        startup: seconds from ``ray start`` to the job API answering.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = ""
        self.startup: float | None = None
        self._marker = f"{MARKER_ENV}={folder}".encode() + b"\0"
        self._session: int | None = None
        self._start_output = folder / "ray-start.log"
        self._failed_start: str | None = None

    def _env(self) -> dict[str, str]:
        env = {
            name: value
            for name, value in os.environ.items()
            # Another cluster's address would make `ray start` join it.
            if name not in ("RAY_ADDRESS", "RAY_API_SERVER_ADDRESS", "PYTHONWARNINGS")
        }
        env.update(
            {
                MARKER_ENV: str(self.folder),
                "RAY_USAGE_STATS_ENABLED": "0",
                "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # keep to 127.0.0.1
                "RAY_DISABLE_DOCKER_CPU_WARNING": "1",
                "PYTHONUNBUFFERED": "1",
            }
        )
        return env

    def start(self) -> None:
        """``ray start --head``, then wait for the job API; raises RuntimeError with the
        logs when either fails within ``START_TIMEOUT``.

        A ``ray start`` that fails is tried once more on other ports (its output is kept
        for the logs): a port picked free may be taken before Ray binds it.
        """
        began = time.monotonic()
        deadline = began + START_TIMEOUT
        code = self._ray_start(deadline)
        if code != 0 and time.monotonic() < deadline:
            self._failed_start = (
                f"exit code {code}\n{tail(self._start_output, LOG_TAIL)}\n"
                f"(processes left by it and killed: {self.stop()})"
            )
            code = self._ray_start(deadline)
        if code != 0:
            raise RuntimeError(f"`ray start` exited with code {code}\n{self.logs()}")
        self._wait(deadline, began)

    def _ray_start(self, deadline: float) -> int:
        """Run ``ray start --head`` on new ports; returns its exit code."""
        options = [
            "--dashboard-port",
            "--port",  # the GCS
            "--dashboard-agent-listen-port",
            "--dashboard-agent-grpc-port",
            "--runtime-env-agent-port",
            "--metrics-export-port",
            "--node-manager-port",
            "--object-manager-port",
            "--ray-client-server-port",
        ]
        ports = dict(zip(options, free_ports(len(options)), strict=True))
        self.url = f"http://127.0.0.1:{ports['--dashboard-port']}"
        args = [
            sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
            "--node-ip-address=127.0.0.1",
            "--dashboard-host=127.0.0.1",
            "--include-dashboard=true",
            *(f"{option}={port}" for option, port in ports.items()),
            # Workers on ports the system picks, not the 10002-19999 range by default.
            "--min-worker-port=0", "--max-worker-port=0",
            "--num-cpus=1",
            f"--object-store-memory={100 * 1024 * 1024}",
            "--include-log-monitor=false",
            "--disable-usage-stats",
            f"--temp-dir={self.folder}",
        ]  # fmt: skip
        with self._start_output.open("wb") as output:
            # Its own session: every daemon it leaves behind stays in it (its id is the
            # process's own), and a Ctrl+C meant for pytest does not reach them.
            process = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.folder,
                start_new_session=True,
            )
            self._session = process.pid
            try:
                return process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise RuntimeError(
                    f"`ray start` did not return within {START_TIMEOUT:g} s\n{self.logs()}"
                ) from None

    def _wait(self, deadline: float, began: float) -> None:
        import httpx  # asyncpoll's own dependency

        last = "not tried"
        with httpx.Client(base_url=self.url, timeout=5.0) as client:
            while True:
                try:
                    version = client.get("/api/version")
                    jobs = client.get("/api/jobs/")
                    if version.status_code == 200 and jobs.status_code == 200:
                        self.startup = time.monotonic() - began
                        return
                    last = f"/api/version {version.status_code}, /api/jobs/ {jobs.status_code}"
                except httpx.HTTPError as exc:  # not listening yet
                    last = f"{type(exc).__name__}: {exc}"
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"the dashboard's job API did not answer within {START_TIMEOUT:g} s "
                        f"(last: {last})\n{self.logs()}"
                    )
                time.sleep(0.1)

    def processes(self) -> dict[int, str]:
        """``{pid: command line}`` of every live process of this head node."""
        return _processes_of(self._marker, self._session)

    def stop(self) -> dict[int, str]:
        """Kill every process of this head node (SIGKILL, as ``ray stop --force``) until
        none is left or ``STOP_TIMEOUT`` passed; returns those left."""
        deadline = time.monotonic() + STOP_TIMEOUT
        left = self.processes()
        while left and time.monotonic() < deadline:
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.1)
            # Again: a process may have started another meanwhile (the raylet a worker).
            left = self.processes()
        return left

    def logs(self) -> str:
        """The end of ``ray start``'s output and of the node's telling logs: the
        dashboard's (the REST API and its job module), the agent's (the job manager),
        the raylet's, the GCS's, every job's output and any non-empty error log."""
        parts = [f"----- ray start ({self._start_output})\n{tail(self._start_output, LOG_TAIL)}"]
        if self._failed_start is not None:
            parts.insert(0, f"----- a first ray start that failed: {self._failed_start}")
        logs = self.folder / "session_latest" / "logs"
        if logs.is_dir():
            named = {
                "dashboard.log",
                "dashboard_JobHead.log",
                "dashboard_agent.log",
                "raylet.out",
                "gcs_server.out",
            }
            wanted = [
                path
                for path in sorted(logs.iterdir())
                if path.is_file()
                and path.stat().st_size > 0
                and (
                    path.name in named
                    or path.name.startswith("job-driver-")
                    # A worker's .err holds Ray's own chatter for every job.
                    or (path.suffix == ".err" and not path.name.startswith("worker-"))
                )
            ]
            parts += [f"----- {path.name}\n{tail(path, LOG_TAIL)}" for path in wanted]
        return "\n".join(parts)


@pytest.fixture(scope="session")
def ray_head(request: pytest.FixtureRequest) -> Iterator[RayHead]:
    """A Ray head node on loopback ports, for the whole session."""
    require(
        # aiohttp_cors comes with ray[default] only: without it there is no dashboard.
        modules=["ray", "aiohttp_cors"],
        what="the Ray Jobs tests (pip install 'ray[default]')",
    )
    if not sys.platform.startswith("linux"):
        cannot_run("the Ray Jobs tests need Linux (they find the node's processes in /proc)")
    # A short path: Ray's unix sockets live under it, and a socket path has at most 107
    # characters (pytest's tmp_path is too long).
    folder = Path(tempfile.mkdtemp(prefix="asyncpoll-ray-", dir="/tmp"))
    head = RayHead(folder)
    plugin = LogsOnFailure("ray_head", f"ray head node logs ({head.folder})", head.logs)
    request.config.pluginmanager.register(plugin, f"asyncpoll-ray-logs-{id(head)}")
    try:
        head.start()
        yield head
    finally:
        left = head.stop()
        request.config.pluginmanager.unregister(plugin)
        if left:
            logs = head.logs()  # kept for the report; the folder stays for a look
            pytest.fail(
                f"{len(left)} processes of the Ray head node are still running after "
                f"SIGKILL: {left}\n{logs}",
                pytrace=False,
            )
        shutil.rmtree(folder, ignore_errors=True)
