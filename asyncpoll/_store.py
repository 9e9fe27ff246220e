"""The store seam: where a poller keeps its jobs so that they outlive the process.

A store keeps one row per job id: a ``StoredJob``, whose ``doc`` is the job as JSON
text (``_codec`` writes and reads it; a store never looks inside). The engine writes
rows *behind* the scheduler: ``put()`` queues a write and ``flush()`` (a task of the
poller, every ``flush_interval``) writes the queue in one batch, so a poll never waits
for a disk or a network round trip. ``insert()`` alone is synchronous: ``add()``
returns a handle only once the job is stored.

The rules every store keeps (``tests/test_store_contract.py`` checks them on each):

- **A terminal row is final.** A ``put()`` of a row whose stored row is terminal is
  dropped: the first outcome written wins, so no job is resolved twice.
- **Read your writes.** ``get()`` and ``get_many()`` see queued ``put()``s at once.
- **The latest write of a job wins** within one batch (writes coalesce per job id).
- ``insert()`` of a job id whose live row exists writes nothing and returns that row.
- ``prune(before)`` deletes terminal rows that finished before ``before``.

A *shared* store (``shared = True``: Redis) is opened by several pollers at once, a
fleet. There, a live job is polled only by the worker that ``claim()``-ed it, under a
lease: the claim makes the row invisible to other claims until the lease runs out, and
the claimer's ``put(row, owner)`` of the live row releases it (it is claimable again at
``row.due``). A ``put()`` of a live row by a worker whose lease was lost (it expired and
another worker claimed the job) is dropped. A crashed worker's jobs are claimable by the
others once their leases run out.

Times in rows are wall-clock epoch seconds (``time.time()``): they must mean the same in
another process, on another machine, after a restart.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ._storedjob import TERMINAL_STATES, StoredJob, _coalesce

if TYPE_CHECKING:
    from ._clock import Clock
    from ._ratelimit import RateLimit

__all__ = [
    "TERMINAL_STATES",
    "JobStore",
    "MemoryStore",
    "SharedLimiter",
    "StoredJob",
    "open_store",
]


@runtime_checkable
class SharedLimiter(Protocol):
    """A rate limit kept in a shared store: what ``Sender`` asks of a ``Limiter``."""

    waiting: int

    @property
    def limit(self) -> RateLimit: ...

    async def acquire(self, deadline: float = math.inf) -> bool:
        """Wait for a token; False if ``deadline`` (on the poller's clock) comes first."""


@runtime_checkable
class JobStore(Protocol):
    """Where a poller keeps its jobs (see the module's docstring for the rules)."""

    #: Several pollers may open it at once (claims and leases decide who polls a job).
    shared: bool

    #: The store's URL, credentials redacted (for reprs and messages).
    url: str

    async def open(self) -> None:
        """Connect (make the schema); a store opened twice raises ``RuntimeError``."""

    async def aclose(self) -> None:
        """Write every queued write, then disconnect. Closing twice does nothing."""

    def insert(self, job: StoredJob) -> StoredJob | None:
        """Store a new live job now: durable when this returns.

        Returns:
            None when written; the stored live row of that id (nothing written) if one
            exists. A terminal row of that id is replaced.
        """

    def get(self, job_id: str) -> StoredJob | None:
        """The row of ``job_id`` (queued writes included), or None."""

    def put(self, job: StoredJob, owner: str | None = None) -> None:
        """Queue a write of ``job`` (``owner``: the claiming worker, shared stores)."""

    @property
    def pending(self) -> int:
        """How many writes are queued."""

    async def flush(self) -> None:
        """Write every queued write, in one batch where the store can."""

    async def get_many(self, job_ids: Iterable[str]) -> list[StoredJob | None]:
        """The rows of ``job_ids``, in order (None where there is none)."""

    async def live(self) -> list[StoredJob]:
        """Every live row (not claimed by another worker), earliest due first."""

    async def prune(self, before: float) -> int:
        """Delete terminal rows that finished before ``before``; how many were deleted."""

    async def finished_since(self, since: float) -> list[str]:
        """The ids of terminal rows that finished at or after ``since`` (queued writes
        flushed first): what a poller waiting on jobs of a fleet looks for."""

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[StoredJob]:
        """Take up to ``limit`` live rows due at ``now`` for ``owner``, each for ``lease``
        seconds, earliest due first (shared stores; a store for one poller may return
        ``live()``'s due rows)."""

    def put_cooldown(self, host: str, until: float) -> None:
        """Queue: requests to ``host`` pause until ``until`` (shared stores)."""

    async def cooldowns(self, now: float) -> dict[str, float]:
        """The pauses in force at ``now``: host -> until (shared stores)."""

    def limiter(self, limit: RateLimit, clock: Clock) -> SharedLimiter | None:
        """A rate limiter shared by every poller of the store, or None (not shared)."""


class MemoryStore:
    """A store in this process's memory: the rules of a store without the durability.

    The reference for the store contract; fast, gone with the process.
    ``TaskPoller(store="memory://")``.

    ``shared=True``: the rules of a shared store (claims, leases, cool-downs, one rate
    limiter), for several pollers of one event loop given the same object: a fleet in
    one process, to test code written for a Redis fleet without a server.
    """

    def __init__(self, *, shared: bool = False) -> None:
        self.shared = shared
        self.url = "memory://"
        self._rows: dict[str, StoredJob] = {}
        self._queue: dict[str, tuple[StoredJob, str | None]] = {}
        self._leases: dict[str, tuple[str, float]] = {}  # job id -> (owner, until)
        self._cooldowns: dict[str, float] = {}
        self._limiters: dict[RateLimit, SharedLimiter] = {}
        self._opened = 0

    async def open(self) -> None:
        """Open it; a store closed before may be opened again (its rows are kept: a
        poller made anew in the same process resumes them). A shared one may be open
        in several pollers at once."""
        if self._opened and not self.shared:
            raise RuntimeError(f"the store {self.url} is open already; make a new one")
        self._opened += 1

    async def aclose(self) -> None:
        if not self._opened:
            return
        await self.flush()
        self._opened -= 1

    def insert(self, job: StoredJob) -> StoredJob | None:
        current = self.get(job.job_id)
        if current is not None and not current.terminal:
            return current
        self._queue.pop(job.job_id, None)
        self._rows[job.job_id] = job
        return None

    def get(self, job_id: str) -> StoredJob | None:
        queued = self._queue.get(job_id)
        stored = self._rows.get(job_id)
        if queued is not None and (stored is None or not stored.terminal):
            return queued[0]
        return stored

    def put(self, job: StoredJob, owner: str | None = None) -> None:
        _coalesce(self._queue, job, owner)

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def flush(self) -> None:
        queue, self._queue = self._queue, {}
        rows, leases = self._rows, self._leases
        for job_id, (job, owner) in queue.items():
            stored = rows.get(job_id)
            if stored is not None and stored.terminal:
                continue  # the first outcome wins
            lease = leases.get(job_id)
            if not job.terminal and (None if lease is None else lease[0]) != owner:
                continue  # the lease was lost: another worker holds (or held) the job
            leases.pop(job_id, None)
            rows[job_id] = job

    async def get_many(self, job_ids: Iterable[str]) -> list[StoredJob | None]:
        return [self.get(job_id) for job_id in job_ids]

    async def live(self) -> list[StoredJob]:
        await self.flush()
        return sorted((r for r in self._rows.values() if not r.terminal), key=lambda r: r.due)

    async def prune(self, before: float) -> int:
        await self.flush()
        old = [k for k, r in self._rows.items() if r.terminal and r.due < before]
        for key in old:
            del self._rows[key]
        return len(old)

    async def finished_since(self, since: float) -> list[str]:
        await self.flush()
        return [k for k, r in self._rows.items() if r.terminal and r.due >= since]

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[StoredJob]:
        leases = self._leases
        taken: list[StoredJob] = []
        for row in await self.live():
            if len(taken) >= limit or row.due > now:
                break
            held = leases.get(row.job_id)
            if held is not None and held[1] > now:
                continue
            leases[row.job_id] = (owner, now + lease)
            taken.append(row)
        return taken

    def put_cooldown(self, host: str, until: float) -> None:
        if self.shared and until > self._cooldowns.get(host, -math.inf):
            self._cooldowns[host] = until

    async def cooldowns(self, now: float) -> dict[str, float]:
        return {host: until for host, until in self._cooldowns.items() if until > now}

    def limiter(self, limit: RateLimit, clock: Clock) -> SharedLimiter | None:
        """One ``Limiter`` for every poller of a shared store (same event loop)."""
        if not self.shared:
            return None
        found = self._limiters.get(limit)
        if found is None:
            from ._limiter import Limiter

            found = self._limiters[limit] = Limiter(limit, clock)
        return found

    def __repr__(self) -> str:
        return f"<MemoryStore {len(self._rows)} jobs, {len(self._queue)} writes queued>"


def open_store(spec: Any) -> JobStore:
    """The store ``spec`` names: a store object (returned as it is) or a URL.

    ``"memory://"``, ``"sqlite:///path/to/jobs.db"`` (three slashes and a relative
    path, four for an absolute one: ``sqlite:////var/lib/app/jobs.db``) or
    ``"redis://host:6379/0"`` (``rediss://`` for TLS).

    Raises:
        ValueError: a URL of another scheme, or one without a path (SQLite).
        TypeError: neither a URL nor an object with the store's methods.
    """
    if isinstance(spec, str):
        scheme, sep, _ = spec.partition("://")
        scheme = scheme.lower()
        if not sep:
            raise ValueError(
                f"store must be a URL such as 'sqlite:///jobs.db', 'redis://localhost:6379/0' "
                f"or 'memory://', got {spec!r}"
            )
        if scheme == "memory":
            return MemoryStore()
        if scheme == "sqlite":
            from ._sqlite import SQLiteStore

            sqlite_store: JobStore = SQLiteStore.from_url(spec)
            return sqlite_store
        if scheme in ("redis", "rediss", "unix"):
            from ._redis import RedisStore

            redis_store: JobStore = RedisStore.from_url(spec)
            return redis_store
        raise ValueError(
            f"store URL {spec!r} has the unknown scheme {scheme!r}; use 'memory://', "
            "'sqlite:///path/jobs.db' or 'redis://host:6379/0'"
        )
    if isinstance(spec, JobStore):
        return spec
    raise TypeError(
        f"store must be a URL ('sqlite:///jobs.db', 'redis://...', 'memory://') or a store "
        f"object (asyncpoll.MemoryStore, SQLiteStore, RedisStore), got {spec!r}"
    )
