"""``serve()``: run a ``FakeJobAPI`` (or any ASGI app) with uvicorn on a loopback port.

The server runs in a thread of its own, with its own event loop, so the code under test
talks to it over real sockets from any event loop (or none).
"""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any

import anyio

__all__ = ["LoopbackServer", "serve"]

#: How long starting and stopping the server may take, in seconds.
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0


def serve(app: Any, host: str = "127.0.0.1", port: int = 0) -> LoopbackServer:
    """Run ``app`` with uvicorn on a free loopback port, in a background thread.

    A context manager, plain or async: ``with serve(api) as url:`` (or ``async with``)
    starts the server, waits until it accepts connections and gives its base URL, such
    as ``"http://127.0.0.1:54321"``; leaving the block shuts it down and joins its
    thread. The async form starts and stops the server in a worker thread, so the event
    loop keeps running meanwhile.

    Args:
        app: the ASGI app, usually a ``FakeJobAPI``.
        host: the address to listen on (default: loopback).
        port: the port (default 0: a free one, picked by the OS).

    Returns:
        The server, not started yet: enter it (``with``/``async with``), or call its
        ``start()`` and ``stop()``.

    Raises:
        RuntimeError: (on entering) the server did not start within 10 s, or its thread
            ended first; (on leaving) it did not stop within 10 s.
    """
    return LoopbackServer(app, host, port)


class LoopbackServer:
    """uvicorn serving one ASGI app in a thread of its own; see ``serve()``.

    Attributes:
        url: the base URL while the server runs, else None.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int = 0) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.url: str | None = None
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._failure: BaseException | None = None

    def __repr__(self) -> str:
        return f"<LoopbackServer {self.url or 'stopped'} app={self.app!r}>"

    def start(self) -> str:
        """Start the server and wait until it listens; returns its base URL."""
        import uvicorn  # an optional dependency: asyncpoll[testing]

        if self._thread is not None:
            raise RuntimeError("this server has been started already; call serve() again")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP, not 0: asyncio turns Nagle's algorithm off (TCP_NODELAY) only on
        # sockets whose proto says TCP, and with it on, an answer written in two pieces
        # (headers, then body) waits for the client's delayed ACK: 40 ms a request.
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
        except BaseException:
            sock.close()
            raise
        self._socket = sock
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the process's logging configuration alone
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=2,
        )
        self._server = server = uvicorn.Server(config)

        def run() -> None:
            try:
                server.run(sockets=[sock])
            except BaseException as exc:  # reported by start(), which waits for it
                self._failure = exc

        self._thread = thread = threading.Thread(
            target=run, name=f"asyncpoll-serve-{port}", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                reason = f": {self._failure!r}" if self._failure else ""
                raise RuntimeError(f"the server on {self.host}:{port} did not start{reason}")
            time.sleep(0.005)
        host = f"[{self.host}]" if family == socket.AF_INET6 else self.host
        self.url = f"http://{host}:{port}"
        return self.url

    def stop(self) -> None:
        """Shut the server down and wait for its thread (at most 10 s)."""
        server, thread = self._server, self._thread
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(STOP_TIMEOUT / 2)
            if thread.is_alive():
                server.force_exit = True
                thread.join(STOP_TIMEOUT / 2)
            if thread.is_alive():
                raise RuntimeError(f"the server at {self.url} did not stop")
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        self.url = None

    def __enter__(self) -> str:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> str:
        return await anyio.to_thread.run_sync(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await anyio.to_thread.run_sync(self.stop)
