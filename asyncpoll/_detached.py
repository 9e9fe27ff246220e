"""``spawn_detached()``: a task of the running event loop that belongs to no task group.

``TaskPoller.open()`` hosts the poller's task group in one, so that the task that closes
the poller need not be the task that opened it (a notebook's cells run in separate tasks).
"""

from __future__ import annotations

import contextvars
from collections.abc import Awaitable, Callable
from typing import Any

import sniffio

__all__ = ["spawn_detached"]


def spawn_detached(fn: Callable[..., Awaitable[Any]], *args: Any, name: str) -> object:
    """Start ``fn(*args)`` as a background task of the running loop; return the task.

    ``fn`` must not raise: on trio a system task that raises crashes the whole run. The
    task is cancelled when the loop ends (``asyncio.run()`` cancels what is left; trio
    cancels its system tasks when the main task returns).

    Raises:
        RuntimeError: the running loop is neither asyncio nor trio.
    """
    library = sniffio.current_async_library()
    if library == "asyncio":
        import asyncio

        async def run() -> None:
            await fn(*args)

        return asyncio.get_running_loop().create_task(run(), name=name)
    if library == "trio":
        import trio

        return trio.lowlevel.spawn_system_task(
            fn, *args, name=name, context=contextvars.copy_context()
        )
    raise RuntimeError(
        f"TaskPoller.open() runs on asyncio and trio, not {library}; use `async with`"
    )
