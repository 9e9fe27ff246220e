"""The engine's side of a store: writes behind the scheduler, and a fleet's claims.

``Journal`` turns each change of a job into a ``StoredJob`` row and hands it to the
store: ``added()`` writes at once (``add()`` returns only once the job is stored), every
later change is queued (``changed()``, ``finished()``) and written in one batch every
``flush_interval`` by ``run()``, which also prunes outcomes older than ``retention``.

``Fleet`` runs where the store is shared (Redis): the engine's own heap then holds no
job; every ``claim_interval`` the fleet claims the jobs that are due (up to
``max_concurrency`` held at once: what its workers can poll now, so that the load
spreads over the fleet), each under a lease, and hands them to the workers. A
poll that ends with the job live again releases it to the store, due at its next time;
any worker of the fleet may take it then. The fleet also applies the host cool-downs
other workers announced, and resolves the handles this process waits on when another
worker finishes their job.

Data flow::

    add() ── Journal.added ──> store.insert (now)
    poll ── decide ── Again ──> Journal.changed ──> store.put (queued) ──> flush (batch)
                   └─ Finish ─> Journal.finished ─┘
    shared: Fleet.run: store.claim ──> engine.push(handle, now) ──> workers
"""

from __future__ import annotations

import json
import logging
import math
import os
import socket
import uuid
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import anyio

from ._clock import Clock, wall_time_of
from ._codec import encode
from ._status import JobState
from ._store import JobStore, StoredJob

if TYPE_CHECKING:
    from ._engine import Engine
    from ._handle import JobHandle

__all__ = ["Fleet", "Journal", "handle_doc", "owner_id"]

_LIVE = (JobState.PENDING, JobState.RUNNING)

logger = logging.getLogger("asyncpoll")

#: A poll must start at least this long before its lease ends, in seconds.
LEASE_MARGIN = 1.0
#: How far back each look for jobs finished elsewhere reaches past the last one, in
#: seconds: finish times are written with each worker's own wall clock.
SYNC_OVERLAP = 5.0
#: Seconds between two reads of every waited-on job (whatever the workers' clocks).
RECONCILE = 30.0


def handle_doc(
    handle: JobHandle,
    *,
    due: float,
    offset: float,
    names: Mapping[int, str],
    result: Any = None,
    error: BaseException | None = None,
    headers: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
    state: JobState | None = None,
) -> dict[str, Any]:
    """``_codec.encode`` of a handle's job: its record, metadata and named callables."""
    return encode(
        handle._record,
        due=due,
        offset=offset,
        metadata=handle._metadata,
        check=handle._check,
        on_done=handle._on_done,
        on_progress=handle._on_progress,
        names=names,
        result=result,
        error=error,
        headers=headers,
        state=state,
    )


def owner_id() -> str:
    """A name for this poller in a fleet: host, process and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Journal:
    """Writes a poller's jobs to its store (see the module's docstring).

    Args:
        store: the opened store.
        clock: the poller's clock (due times are converted to wall-clock time).
        names: ``name -> object`` the poller's ``named=`` registered.
        flush_interval: seconds between two batches of writes.
        retention: seconds a finished job's outcome is kept (None: for ever).
        owner: this poller's name in a fleet (shared stores).
    """

    def __init__(
        self,
        store: JobStore,
        clock: Clock,
        names: Mapping[str, Any],
        flush_interval: float,
        retention: float | None,
        owner: str,
    ) -> None:
        self.store = store
        self.clock = clock
        self._wall = wall_time_of(clock)
        self._ids = {id(obj): name for name, obj in names.items()}
        self.flush_interval = flush_interval
        self.retention = retention
        self.owner = owner if store.shared else None
        self.writes = 0  # rows handed to the store
        self.flushes = 0
        self.pruned = 0
        # job id -> (handle, due, state, result, error, owner): changes not yet handed
        # to the store, with the state to write (a live one as it was when queued: the job
        # may finish before the batch). A job changed several times between two flushes
        # is encoded once.
        self._dirty: dict[
            str, tuple[JobHandle, float, JobState, Any, BaseException | None, str | None]
        ] = {}
        #: The handle this poller follows under a job id (the registry's latest), so that
        #: a finished job's late writes never land on a new job added under its id.
        self.current: Callable[[str], JobHandle | None] = lambda job_id: None

    def offset(self) -> float:
        """Wall-clock time minus the poller's clock, now."""
        return self._wall() - self.clock.now()

    def row(
        self,
        handle: JobHandle,
        due: float,
        *,
        result: Any = None,
        error: BaseException | None = None,
        headers: Callable[[Mapping[str, str]], Mapping[str, str]] | None = None,
        offset: float | None = None,
        state: JobState | None = None,
    ) -> StoredJob:
        """The job of ``handle`` as a row, due at ``due`` (poller's clock), in ``state``
        (default: the record's)."""
        offset = self.offset() if offset is None else offset
        doc = handle_doc(
            handle,
            due=due,
            offset=offset,
            names=self._ids,
            result=result,
            error=error,
            headers=headers,
            state=state,
        )
        return StoredJob(handle._record.job_id, doc["state"], due + offset, json.dumps(doc))

    def added(self, handle: JobHandle, due: float) -> StoredJob | None:
        """Store a new job now; the live row of that id if one is stored (nothing written).

        Raises:
            ValueError: the job cannot be stored (an unnamed callable, a value JSON
                cannot hold).
        """
        key = handle._record.job_id
        old = self.current(key)
        if old is not None and old is not handle and old._finish_seq >= 0:
            # The id was followed before and that job is over, its outcome perhaps not
            # written yet (queued, or waiting for its callbacks): written now, so that
            # the new job replaces it.
            self._dirty.pop(key, None)
            self.store.put(
                self.row(old, self.clock.now(), result=old._result, error=old._exception),
                self.owner,
            )
        self.writes += 1
        return self.store.insert(self.row(handle, due))

    def _superseded(self, handle: JobHandle) -> bool:
        current = self.current(handle._record.job_id)
        return current is not None and current is not handle

    def changed(self, handle: JobHandle, due: float, *, held: bool = False) -> None:
        """Queue the job's new state, due next at ``due``; ``held``: this worker holds
        the job's lease (a fleet), and the write releases it."""
        if handle._finish_seq >= 0 or self._superseded(handle):
            return  # finished: its outcome is written by finished()
        key = handle._record.job_id
        queued = self._dirty.get(key)
        if queued is None or queued[2] in _LIVE:  # an outcome queued is final
            owner = self.owner if held else None
            self._dirty[key] = (handle, due, handle._record.state, None, None, owner)

    def finished(self, handle: JobHandle, result: Any, error: BaseException | None) -> None:
        """Queue the job's outcome."""
        if self._superseded(handle):
            return  # a new job took its id; its outcome was written then
        key = handle._record.job_id
        queued = self._dirty.get(key)
        if queued is None or queued[2] in _LIVE:
            state = handle._record.state
            self._dirty[key] = (handle, self.clock.now(), state, result, error, self.owner)

    @property
    def pending(self) -> int:
        """Changes not written yet."""
        return len(self._dirty) + self.store.pending

    def stage(self) -> None:
        """Hand every queued change to the store as a row (encoded now, once a job)."""
        dirty, self._dirty = self._dirty, {}
        offset = self.offset()
        put = self.store.put
        for handle, due, state, result, error, owner in dirty.values():
            try:
                row = self.row(handle, due, result=result, error=error, offset=offset, state=state)
                put(row, owner)
            except ValueError:
                # A result or error JSON cannot hold is kept as text by encode(); what
                # is left (an unnamed callable) was refused when the job was added.
                logger.exception("could not store job %r", handle._record.job_id)
        self.writes += len(dirty)

    def rekeyed(self, handle: JobHandle, old: str, now: float) -> None:
        """A resubmit made the job a new one: the old id's row ends FAILED (that remote
        job failed); the new id's row is written by the ``changed()`` that follows."""
        self._dirty.pop(old, None)  # its queued state would be written under the new id
        doc = json.loads(self.row(handle, now).doc)
        # moved_to: a poller waiting on the old id follows the new one (see Fleet._sync).
        new = handle._record.job_id
        doc.update(job_id=old, state="failed", result=None, error=None, moved_to=new)
        self.store.put(
            StoredJob(old, JobState.FAILED.value, now + self.offset(), json.dumps(doc)),
            self.owner,
        )

    async def run(self) -> None:
        """Flush every ``flush_interval``; prune about every tenth of the retention (at
        most every minute). Runs until cancelled (the poller flushes once more when it
        closes)."""
        clock = self.clock
        prune_every = (
            math.inf if self.retention is None else min(60.0, max(1.0, self.retention / 10))
        )
        next_prune = clock.now()
        while True:
            if self.pending:
                await self.flush()
            now = clock.now()
            if now >= next_prune:
                next_prune = now + prune_every
                await self.prune()
            await clock.sleep_until(clock.now() + self.flush_interval)

    async def flush(self) -> None:
        self.stage()
        try:
            await self.store.flush()
            self.flushes += 1
        except Exception:
            # Kept queued by the store: the next flush tries again.
            logger.exception("could not write %d jobs to %s", self.store.pending, self.store.url)

    async def prune(self) -> None:
        if self.retention is None:
            return
        try:
            self.pruned += await self.store.prune(self._wall() - self.retention)
        except Exception:
            logger.exception("could not prune finished jobs in %s", self.store.url)


class Fleet:
    """Claims due jobs from a shared store for this poller's workers.

    Args:
        engine: the poller's engine.
        journal: its journal (the store and this poller's owner name).
        rebuild: builds a handle for a claimed row, or None if it cannot be polled here
            (a name not registered: logged and left to the others).
        lease: seconds a claim holds a job.
        claim_interval: seconds between two claims when none was due.
        capacity: the most jobs held at once.
        request_timeout: the longest a poll may take (0: unbounded, not counted).
    """

    def __init__(
        self,
        engine: Engine,
        journal: Journal,
        rebuild: Callable[[StoredJob], JobHandle | None],
        *,
        lease: float,
        claim_interval: float,
        capacity: int,
        request_timeout: float = 0.0,
    ) -> None:
        self.engine = engine
        self.journal = journal
        self.store = journal.store
        self.owner = journal.owner or owner_id()
        self._rebuild = rebuild
        self.lease = lease
        self.claim_interval = claim_interval
        self.capacity = capacity
        self.request_timeout = request_timeout
        self.claimed: dict[str, JobHandle] = {}
        self.claims = 0  # jobs claimed, in all
        self.lost = 0  # polls skipped because the lease ran out first
        self._sleeping: anyio.CancelScope | None = None  # the claim loop's sleep
        self._synced_to = -math.inf  # wall time of the last look for finished jobs
        self._reconcile_at = -math.inf  # when to read every waited-on job again

    def release(self, handle: JobHandle) -> None:
        """The job's poll is over (it is live again in the store, or finished): a worker
        is free, so claim again now."""
        if self.claimed.get(handle._record.job_id) is handle:
            del self.claimed[handle._record.job_id]
            if self._sleeping is not None:
                self._sleeping.cancel()
        handle._lease_end = math.inf

    def release_all(self) -> None:
        """The poller is closing: every job still claimed goes back to the fleet now, as it
        was when claimed (its poll, if one ran, is sent again by whoever takes it)."""
        now = self.engine.clock.now()
        for handle in list(self.claimed.values()):
            self.journal.changed(handle, now, held=True)
        self.claimed.clear()

    def lose(self, handle: JobHandle) -> None:
        """The lease ran out before the poll could start: another worker may hold it."""
        self.lost += 1
        logger.warning(
            "job %r: its lease ran out before it could be polled (raise lease=); left to the fleet",
            handle._record.job_id,
        )
        self.release(handle)

    def cooldown(self, host: str, until: float) -> None:
        """This worker paused ``host`` until ``until`` (poller's clock): tell the fleet."""
        self.store.put_cooldown(host, until + self.journal.offset())

    async def run(self) -> None:
        engine, clock, store = self.engine, self.engine.clock, self.store
        wall = wall_time_of(clock)
        sync_every = max(self.claim_interval, 0.2)
        next_sync = -math.inf
        while engine.open:
            room = self.capacity - len(self.claimed)
            rows: list[StoredJob] = []
            started = clock.now()  # the leases start no earlier than this
            if room > 0:
                try:
                    # Shielded: a claim cut short by the poller closing would leave its
                    # jobs leased to nobody for a whole lease.
                    with anyio.CancelScope(shield=True):
                        rows = await store.claim(self.owner, wall(), self.lease, room)
                except Exception:
                    logger.exception("could not claim jobs from %s", store.url)
            if not engine.open:
                for row in rows:
                    store.put(row, self.owner)  # handed back at once: the poller is closing
                return
            for row in rows:
                self._take(row, started)
            now = clock.now()
            if now >= next_sync:
                next_sync = now + sync_every
                await self._sync()
            if rows and len(rows) == room:
                await anyio.lowlevel.checkpoint()  # more may be due: claim again at once
            else:
                # Until the next claim, or until a poll ends and frees a worker.
                with anyio.CancelScope() as self._sleeping:
                    await clock.sleep_until(clock.now() + self.claim_interval)
                self._sleeping = None

    def _take(self, row: StoredJob, now: float) -> None:
        engine = self.engine
        job_id = row.job_id
        handle = engine.registry.lookup(job_id)
        if handle is not None and handle._finish_seq < 0:
            fresh = self._rebuild(row)  # another worker may have moved the job on
            if fresh is None:
                return
            handle._record = fresh._record
        else:
            handle = self._rebuild(row)
            if handle is None:
                return
        self.claims += 1
        self.claimed[job_id] = handle
        # A poll must end before the lease does: it starts no later than this.
        handle._lease_end = now + self.lease - LEASE_MARGIN - self.request_timeout
        engine.push(handle, now, now)

    async def _sync(self) -> None:
        """Apply the fleet's cool-downs; resolve waited-on jobs finished elsewhere.

        Each pass asks for the jobs finished since the last one (with ``SYNC_OVERLAP``
        seconds to spare for other workers' clocks); every ``RECONCILE`` seconds it reads
        every waited-on job instead, whatever the clocks say.
        """
        engine, store = self.engine, self.store
        offset = self.journal.offset()
        now = engine.clock.now()
        wall = offset + now
        try:
            pauses = await store.cooldowns(wall)
            claimed, registry = self.claimed, engine.registry
            if now >= self._reconcile_at:
                self._reconcile_at = now + RECONCILE
                ids = [h._record.job_id for h in registry.in_flight()]
            else:
                ids = await store.finished_since(self._synced_to - SYNC_OVERLAP)
            self._synced_to = wall
            watched = [
                h
                for h in (registry.lookup(job_id) for job_id in ids)
                if h is not None and h._record.job_id not in claimed
            ]
            rows = await store.get_many([h._record.job_id for h in watched]) if watched else []
        except Exception:
            logger.exception("could not read the fleet's state from %s", store.url)
            return
        for host, until in pauses.items():
            gate = engine.sender.gate_at(host)
            local = until - offset
            if local > gate.paused_until:
                gate.paused_until = local
        for handle, row in zip(watched, rows, strict=True):
            if row is not None and row.terminal and handle._finish_seq < 0:
                moved = json.loads(row.doc).get("moved_to")
                if isinstance(moved, str) and moved and registry.lookup(moved) is None:
                    # Submitted again by another worker: the job goes on under a new id.
                    registry.rekey(handle, row.job_id, moved)
                    handle._record.job_id = moved
                    continue
                engine.finish_from_store(handle, row)
