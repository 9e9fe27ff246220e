"""A real redis-server on a free loopback port, for the Redis store's tests.

``RedisServer(folder).start()`` runs ``redis-server`` with no persistence (``--save ''``,
no append-only file) in ``folder``; ``stop()`` shuts it down. ``require_redis()`` skips a
test (fails it under ``ASYNCPOLL_REAL_SERVERS=required``) when the server binary or the
``redis`` package is missing.
"""

from __future__ import annotations

import shutil
import socket
import time
from pathlib import Path

from . import require
from .celery_flower import _Process, free_port

__all__ = ["RedisServer", "require_redis"]

#: Seconds the server may take to answer PING.
START_TIMEOUT = 20.0


def require_redis() -> None:
    """Skip (or fail, in CI) unless ``redis-server`` and the ``redis`` package are here."""
    require(["redis"], ["redis-server"], what="the Redis store's tests")


class RedisServer:
    """One redis-server process on 127.0.0.1.

    Attributes:
        port: its TCP port.
        url: ``redis://127.0.0.1:<port>/0``.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: _Process | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        assert binary is not None  # require_redis() checked
        self.folder.mkdir(parents=True, exist_ok=True)
        self._process = _Process(
            "redis-server",
            [
                binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(self.folder),
            ],
            self.folder / "redis.log",
            {},
            self.folder,
        )  # fmt: skip
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if not self._process.alive():
                raise RuntimeError(f"redis-server exited at start:\n{self._process.tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1.0) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"redis-server did not answer PING within {START_TIMEOUT:g} s:\n"
                    f"{self._process.tail()}"
                )
            time.sleep(0.02)

    def flush(self) -> None:
        """Empty every database (between tests)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=5.0) as sock:
            sock.sendall(b"FLUSHALL\r\n")
            sock.recv(64)

    def stop(self) -> None:
        if self._process is not None:
            self._process.stop()
            self._process = None
