"""The request workers: ``max_concurrency`` tasks, each taking due jobs from the ready
stream and making one request for each through ``Engine.poll()``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Final

import anyio
import anyio.lowlevel
import sniffio
from anyio.streams.memory import MemoryObjectReceiveStream

if TYPE_CHECKING:
    from ._engine import Engine
    from ._handle import JobHandle

__all__ = ["WORKER_YIELD_EVERY", "run_worker"]

#: A worker taking queued jobs back to back yields to the event loop after this many.
WORKER_YIELD_EVERY: Final = 8


def _native_cancel_count() -> Callable[[], int] | None:
    """``Task.cancelling`` of the running asyncio task (Python 3.11+), else None.

    A worker's cancel scope spans many polls; user code that cancels its own task and
    swallows the error leaves the count raised, which would stop the scope from
    recognising its own later cancellations as its own.
    """
    if sniffio.current_async_library() != "asyncio":
        return None
    import asyncio

    task = asyncio.current_task()
    return getattr(task, "cancelling", None)


async def run_worker(engine: Engine, ready: MemoryObjectReceiveStream[JobHandle]) -> None:
    """Poll jobs from the ready stream, one at a time, until it closes.

    The worker's polls share one cancel scope, made anew only after one is cut
    short: ``handle.cancel()``, a job's deadline, or the watchdog cancel it while
    that job's poll runs (``handle._scope``), and the poll's outcome is settled
    here. No cancel scope and no timer per poll.
    """
    receive_nowait, receive = ready.receive_nowait, ready.receive
    taken = 0
    cancelling = _native_cancel_count()
    with ready:
        while True:
            handle: JobHandle | None = None
            with anyio.CancelScope() as scope:
                cancels = cancelling() if cancelling is not None else 0
                while True:
                    # Take a queued job without a checkpoint (an HTTP poll yields
                    # anyway); a check= that never awaits still lets other tasks
                    # run every few polls.
                    taken += 1
                    if taken % WORKER_YIELD_EVERY == 0:
                        await anyio.lowlevel.checkpoint()
                    try:
                        handle = receive_nowait()
                    except anyio.WouldBlock:
                        try:
                            handle = await receive()
                        except anyio.EndOfStream:
                            return
                    except anyio.EndOfStream:
                        return
                    if handle._finish_seq >= 0:
                        continue
                    try:
                        await engine.poll(handle, scope)
                    except Exception as exc:  # a bug must cost one job, never the poller
                        engine.internal_error(handle, exc)
                    handle = None
                    if scope.cancel_called or (cancelling is not None and cancelling() != cancels):
                        # A cancellation meant for the poll that just ended (answered
                        # in the same instant), or one its own code left counted on the
                        # task (asyncio): a fresh scope, so neither reaches the next.
                        break
            if handle is not None and scope.cancelled_caught:
                engine.interrupted(handle)
