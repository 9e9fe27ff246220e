"""The event stream: every job change is one ``JobEvent``, delivered to every subscriber.

Subscribers:

- ``EventStream``: what ``poller.events()`` returns, an async iterator with a bounded
  buffer. A reader that falls behind gets each job's progress coalesced (the latest
  progress event of a job replaces an undelivered one, keeping its place in line);
  terminal events are never dropped.
- ``CallbackRunner``: runs ``on_done``, ``on_progress`` and ``on_stall`` callbacks, one at
  a time on one task, so a slow callback never delays a poll. It misses nothing: every
  event with a callback to run is queued.

Nothing here polls or decides; the engine publishes, subscribers consume.
"""

from __future__ import annotations

import collections
import functools
import inspect
import logging
import math
import weakref
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from ._events import EventKind, JobEvent

if TYPE_CHECKING:
    from ._handle import JobHandle

__all__ = ["DEFAULT_EVENT_BUFFER", "CallbackRunner", "EventBus", "EventStream"]

logger = logging.getLogger("asyncpoll")

#: Jobs whose undelivered progress an ``EventStream`` holds at most.
DEFAULT_EVENT_BUFFER = 10_000

Callback = Callable[["JobHandle"], "Awaitable[object] | object"]


class EventStream:
    """An async iterator over a poller's job events, from ``poller.events()``.

    ``async for event in poller.events(): ...`` ends when the poller closes, after the
    buffered events. Use it as a context manager (``with poller.events() as events:``)
    to stop receiving at the block's end; a stream nobody references stops on its own.

    Attributes:
        dropped: progress events dropped because ``max_buffer`` jobs already had an
            undelivered one (terminal events are never dropped).
    """

    __slots__ = (
        "__weakref__",
        "_boxes",
        "_bus",
        "_closed",
        "_max_buffer",
        "_pending",
        "_wakeup",
        "dropped",
    )

    def __init__(self, bus: EventBus, max_buffer: int) -> None:
        # Events in arrival order, each in a one-item box so that a job's newer progress
        # can replace an undelivered one in place.
        self._boxes: collections.deque[list[JobEvent]] = collections.deque()
        self._pending: dict[str, list[JobEvent]] = {}  # job id -> its undelivered progress
        self._bus = bus
        self._max_buffer = max_buffer
        self._closed = False
        self._wakeup: anyio.Event | None = None
        self.dropped = 0

    def _put(self, event: JobEvent) -> None:
        if event.kind is EventKind.PROGRESS:
            box = self._pending.get(event.job_id)
            if box is not None:
                box[0] = event  # coalesced: the reader is behind
                return
            if len(self._pending) >= self._max_buffer:
                self.dropped += 1
                return
            box = self._pending[event.job_id] = [event]
        else:
            box = [event]
        self._boxes.append(box)
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def _end(self) -> None:
        self._closed = True
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    def get_nowait(self) -> JobEvent:
        """The next buffered event.

        Raises:
            anyio.WouldBlock: none is buffered.
            anyio.EndOfStream: none is buffered and the stream has ended.
        """
        if self._boxes:
            box = self._boxes.popleft()
            event = box[0]
            if self._pending.get(event.job_id) is box:
                del self._pending[event.job_id]
            return event
        if self._closed:
            raise anyio.EndOfStream
        raise anyio.WouldBlock

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> JobEvent:
        while True:
            try:
                return self.get_nowait()
            except anyio.EndOfStream:
                raise StopAsyncIteration from None
            except anyio.WouldBlock:
                if self._wakeup is None:
                    self._wakeup = anyio.Event()
                await self._wakeup.wait()

    def close(self) -> None:
        """Stop receiving events; buffered ones can still be read."""
        self._bus.unsubscribe(self)
        self._end()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "ended" if self._closed else "open"
        return f"<EventStream {state} buffered={len(self._boxes)} dropped={self.dropped}>"


class EventBus:
    """Hands each published event to every subscribed ``EventStream``.

    Attributes:
        listening: whether any stream is subscribed (the engine builds no event
            otherwise); a plain attribute, read on every change of every job.
    """

    __slots__ = ("_closed", "_streams", "listening")

    def __init__(self) -> None:
        # Weak references: a stream nobody holds any more stops receiving by itself.
        self._streams: dict[int, weakref.ref[EventStream]] = {}
        self._closed = False
        self.listening = False

    def subscribe(self, max_buffer: int = DEFAULT_EVENT_BUFFER) -> EventStream:
        """A new stream of every event published from now on."""
        stream = EventStream(self, max_buffer)
        if self._closed:
            stream._end()
        else:
            key = id(stream)
            self._streams[key] = weakref.ref(stream, functools.partial(self._gone, key))
            self.listening = True
        return stream

    def _gone(self, key: int, _: object) -> None:
        self._drop(key)

    def _drop(self, key: int) -> None:
        self._streams.pop(key, None)
        self.listening = bool(self._streams)

    def unsubscribe(self, stream: EventStream) -> None:
        ref = self._streams.get(id(stream))
        if ref is not None and ref() is stream:
            self._drop(id(stream))

    def publish(self, event: JobEvent) -> None:
        for ref in tuple(self._streams.values()):
            stream = ref()
            if stream is not None:
                stream._put(event)

    def close(self) -> None:
        """End every stream (after its buffered events)."""
        self._closed = True
        for ref in tuple(self._streams.values()):
            stream = ref()
            if stream is not None:
                stream._end()
        self._streams.clear()
        self.listening = False


class CallbackRunner:
    """Runs callbacks one at a time on one task; counts the ones that raise.

    Args:
        on_done, on_progress, on_stall: the poller's callbacks (or None).
        on_idle: called each time the queue may have emptied.
    """

    __slots__ = (
        "_on_idle",
        "_receive",
        "_send",
        "errors",
        "on_done",
        "on_progress",
        "on_stall",
        "pending",
    )

    def __init__(
        self,
        on_done: Callback | None,
        on_progress: Callback | None,
        on_stall: Callback | None,
        on_idle: Callable[[], None],
    ) -> None:
        self.on_done, self.on_progress, self.on_stall = on_done, on_progress, on_stall
        self._on_idle = on_idle
        self.errors = 0
        self.pending = 0  # callbacks queued or running
        self._send: MemoryObjectSendStream[tuple[Callback, JobHandle]] | None = None
        self._receive: MemoryObjectReceiveStream[tuple[Callback, JobHandle]] | None = None

    def open(self) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[tuple[Callback, "JobHandle"]](
            math.inf
        )

    def close(self) -> None:
        """No more callbacks: the runner ends once it has run every queued one."""
        if self._send is not None:
            self._send.close()

    def deliver(self, kind: EventKind, handle: JobHandle) -> None:
        """Queue the callbacks that ``kind`` calls for: the poller's, then the job's."""
        if kind is EventKind.DONE:
            first, second = self.on_done, handle._on_done
        elif kind is EventKind.PROGRESS:
            first, second = self.on_progress, handle._on_progress
        elif kind is EventKind.STALLED:
            first, second = self.on_stall, None
        else:
            return
        send = self._send
        if send is None:
            return
        for fn in (first, second):
            if fn is not None:
                try:
                    send.send_nowait((fn, handle))
                except anyio.ClosedResourceError:
                    logger.debug("poller closed; callback %r for job %r dropped", fn, handle.job_id)
                else:
                    self.pending += 1

    def then(self, fn: Callable[[JobHandle], object], handle: JobHandle) -> bool:
        """Queue ``fn(handle)`` to run after every callback queued so far; False when
        the queue is closed (nothing queued)."""
        if self._send is None:
            return False
        try:
            self._send.send_nowait((fn, handle))
        except anyio.ClosedResourceError:
            return False
        self.pending += 1
        return True

    def run_sync(self, fn: Callable[[JobHandle], object], handle: JobHandle) -> None:
        """Call a done callback of ``add_done_callback`` now; log and count what it raises."""
        try:
            fn(handle)
        except Exception:
            self.errors += 1
            logger.exception("done callback %r raised for job %r", fn, handle.job_id)

    async def run(self) -> None:
        """The callback task: run queued callbacks in order until the queue closes."""
        assert self._receive is not None
        with self._receive as queue:
            async for fn, handle in queue:
                try:
                    outcome = fn(handle)
                    if inspect.isawaitable(outcome):
                        await outcome
                except Exception:
                    self.errors += 1
                    logger.exception("callback %r raised for job %r", fn, handle.job_id)
                except anyio.get_cancelled_exc_class():
                    await anyio.lowlevel.checkpoint_if_cancelled()  # re-raises a real one
                    self.errors += 1
                    logger.exception("callback %r raised for job %r", fn, handle.job_id)
                finally:
                    self.pending -= 1
                self._on_idle()
