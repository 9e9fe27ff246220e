"""The registry: which jobs are followed, and when each is due.

``MemoryRegistry`` is the first implementation: dictionaries by job id and a min-heap of
due times. Its operations are the seam a durable or shared store fills in: ``add``,
``schedule`` (and so reschedule), ``unschedule`` (a nudged job moved earlier),
``pop_due``, ``finish``, ``rekey``, ``lookup``.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from ._handle import JobHandle

__all__ = ["Entry", "MemoryRegistry", "Registry"]

#: One due time of one job: ``(due, seq)``, as ``schedule()`` returns it.
Entry = tuple[float, int]

#: Dropped entries left in the heap after which it is rebuilt without them (when they
#: also outnumber the live ones): the heap stays within twice its live size.
_COMPACT_AFTER = 64


class Registry(Protocol):
    """Where the engine keeps its jobs (the handles; each holds its ``JobRecord``)."""

    def add(self, handle: JobHandle) -> None:
        """Follow ``handle``'s job (its record's ``job_id`` is the key)."""

    def lookup(self, job_id: str) -> JobHandle | None:
        """The job in flight under ``job_id``, or None."""

    def latest(self, job_id: str) -> JobHandle | None:
        """The latest job added under ``job_id``, finished or not, or None."""

    def schedule(self, handle: JobHandle, due: float) -> Entry:
        """Make the job due at ``due`` (seconds on the poller's clock); the entry made."""

    def unschedule(self, entry: Entry) -> bool:
        """Drop ``entry`` if it is still waiting (not yet taken by ``pop_due``)."""

    def next_due(self) -> float:
        """The earliest due time (``math.inf`` when none)."""

    def pop_due(self, now: float) -> Iterator[JobHandle]:
        """Take every entry due at ``now``, earliest first (finished jobs included)."""

    def finish(self, handle: JobHandle) -> None:
        """The job is over: it is no longer in flight."""

    def rekey(self, handle: JobHandle, old: str, new: str) -> None:
        """The job's id changed (a resubmit created a new remote job)."""

    def forget(self, handle: JobHandle) -> None:
        """Drop a finished job from ``latest()``."""

    def in_flight(self) -> list[JobHandle]:
        """The jobs in flight, in the order they were added."""

    def __len__(self) -> int:
        """How many jobs are in flight."""


class MemoryRegistry:
    """Jobs in dictionaries, due times in a min-heap of ``(due, seq)``.

    Heap entries are tuples of two numbers, which the garbage collector stops tracking:
    a million of them do not lengthen its full collections. ``seq`` breaks ties in
    insertion order and maps back to the handle. Entries are deleted lazily: a
    finished job's entries stay until popped; an entry ``unschedule()`` dropped (a nudged
    job moved earlier) loses its handle at once and its heap slot when popped, or when
    the dropped ones outnumber the rest and the heap is rebuilt.
    """

    __slots__ = ("_active", "_dropped", "_heap", "_latest", "_seq", "_waiting")

    def __init__(self) -> None:
        self._active: dict[str, JobHandle] = {}  # job id -> handle, jobs in flight
        self._latest: dict[str, JobHandle] = {}  # job id -> latest handle, for lookups
        self._heap: list[tuple[float, int]] = []
        self._waiting: dict[int, JobHandle] = {}  # seq -> handle of each heap entry
        self._seq = itertools.count()
        self._dropped = 0  # entries unschedule() dropped that are still in the heap

    def add(self, handle: JobHandle) -> None:
        key = handle._record.job_id
        self._active[key] = handle
        self._latest[key] = handle

    def lookup(self, job_id: str) -> JobHandle | None:
        return self._active.get(job_id)

    def latest(self, job_id: str) -> JobHandle | None:
        return self._latest.get(job_id)

    def schedule(self, handle: JobHandle, due: float) -> Entry:
        entry = (due, next(self._seq))
        heapq.heappush(self._heap, entry)
        self._waiting[entry[1]] = handle
        return entry

    def unschedule(self, entry: Entry) -> bool:
        if self._waiting.pop(entry[1], None) is None:
            return False
        self._dropped += 1
        if self._dropped > _COMPACT_AFTER and self._dropped > len(self._waiting):
            waiting, heap = self._waiting, self._heap
            heap[:] = [kept for kept in heap if kept[1] in waiting]  # in place: pop_due
            heapq.heapify(heap)
            self._dropped = 0
        return True

    def next_due(self) -> float:
        heap = self._heap
        return heap[0][0] if heap else math.inf

    def pop_due(self, now: float) -> Iterator[JobHandle]:
        heap, waiting, pop = self._heap, self._waiting, heapq.heappop
        while heap and heap[0][0] <= now:
            handle = waiting.pop(pop(heap)[1], None)
            if handle is None:
                self._dropped -= 1  # an entry unschedule() dropped
                continue
            yield handle

    def finish(self, handle: JobHandle) -> None:
        key = handle._record.job_id
        if self._active.get(key) is handle:
            del self._active[key]

    def rekey(self, handle: JobHandle, old: str, new: str) -> None:
        if self._active.get(old) is handle:
            del self._active[old]
        self._active[new] = handle
        self._latest[new] = handle

    def forget(self, handle: JobHandle) -> None:
        key = handle._record.job_id
        if self._latest.get(key) is handle:
            del self._latest[key]

    def in_flight(self) -> list[JobHandle]:
        return list(self._active.values())

    def __len__(self) -> int:
        return len(self._active)
