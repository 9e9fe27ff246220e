"""SQLiteStore: the durable job store for one machine, in one SQLite file.

``TaskPoller(store="sqlite:///jobs.db")``. One table holds a row per job (the
``StoredJob``'s fields and a ``terminal`` flag, indexed with ``due`` so that ``live()``
and ``claim()`` read live rows in due order without a scan); a ``meta`` table holds the
schema's version, so that an older asyncpoll refuses a file a newer one wrote.

Durability: the file is in WAL mode with ``synchronous=NORMAL``. A commit is in the
WAL file when it returns, so it survives a crash of the process (SIGKILL included); a
power loss or an OS crash may lose the last commits (the WAL is synced to disk at
checkpoints, not at each commit), and the file stays consistent. ``insert()`` commits
before it returns; ``put()``s are queued and written by ``flush()`` in one transaction.

One poller owns a file at a time: ``open()`` takes an exclusive ``flock`` on a sidecar
file, ``<path>.lock`` (left in place: removing it would race with the next opener). The
OS releases it when the process dies however it dies, so a restarted poller opens the
file at once. Where there is no ``fcntl`` (Windows) nothing is locked, and two pollers
on one file would poll its jobs twice. ``exclusive=False`` opens without the lock: a
view of a file a poller owns (to read it; its writes race with the owner's).

Threads: one ``sqlite3`` connection, guarded by a ``threading.Lock``. ``insert()`` and
``get()`` run on the event loop's thread (each a statement on an indexed key); the other
async methods run their SQL in a worker thread (``anyio.to_thread``), so that a flush
of tens of thousands of rows never stalls the loop. A sync call made while a flush
writes waits for that flush's transaction (some 40 ms for 10,000 rows).
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, TypeAlias

import anyio
import anyio.to_thread

# The rows from _storedjob, not _store: _store's open_store() imports this module.
from ._storedjob import TERMINAL_STATES, StoredJob, _coalesce

if TYPE_CHECKING:
    from ._clock import Clock
    from ._ratelimit import RateLimit
    from ._store import SharedLimiter

__all__ = ["SCHEMA_VERSION", "SQLiteStore"]

#: The version of the file's tables this asyncpoll writes; a file of a newer one is
#: refused (its rows may mean something this code does not know).
SCHEMA_VERSION = 1

#: How long a statement waits for another connection's write lock (``exclusive=False``
#: views, a backup tool) before it fails, in milliseconds.
BUSY_TIMEOUT_MS = 5000

#: Ids per ``SELECT ... IN (...)`` of ``get_many()`` (SQLite before 3.32 allowed 999
#: parameters per statement).
_IN_CHUNK = 500

# executescript() would commit first: the statements run one by one in open()'s
# transaction.
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, state TEXT NOT NULL, "
    "due REAL NOT NULL, terminal INTEGER NOT NULL, doc TEXT NOT NULL)",
    # live() and claim(): live rows in due order, without a scan of the finished ones.
    "CREATE INDEX IF NOT EXISTS jobs_terminal_due ON jobs (terminal, due)",
)

_SELECT_ONE = "SELECT state, due, doc FROM jobs WHERE job_id = ?"
_REPLACE = "INSERT OR REPLACE INTO jobs (job_id, state, due, terminal, doc) VALUES (?, ?, ?, ?, ?)"
# A queued write never replaces a terminal row: the first outcome written wins.
_UPSERT = (
    "INSERT INTO jobs (job_id, state, due, terminal, doc) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT(job_id) DO UPDATE SET state = excluded.state, due = excluded.due, "
    "terminal = excluded.terminal, doc = excluded.doc WHERE jobs.terminal = 0"
)
_LIVE = "SELECT job_id, state, due, doc FROM jobs WHERE terminal = 0 ORDER BY due"
_DUE = (
    "SELECT job_id, state, due, doc FROM jobs WHERE terminal = 0 AND due <= ? ORDER BY due LIMIT ?"
)
_PRUNE = "DELETE FROM jobs WHERE terminal = 1 AND due < ?"
_FINISHED = "SELECT job_id FROM jobs WHERE terminal = 1 AND due >= ?"

_URL_FORMS = "'sqlite:///relative/jobs.db' or 'sqlite:////absolute/jobs.db'"

#: Queued writes: job id -> (row, owner).
Queue: TypeAlias = "dict[str, tuple[StoredJob, str | None]]"

if sys.platform == "win32":

    def _lock_file(path: str) -> int | None:
        return None  # no flock: the file is not locked (see the module's docstring)

    def _unlock_file(fd: int) -> None:
        os.close(fd)

else:
    import fcntl

    def _lock_file(path: str) -> int | None:
        """Hold an exclusive lock on ``path`` (made if missing): the descriptor.

        Raises:
            BlockingIOError: another open file holds the lock.
        """
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            os.close(fd)
            raise
        return fd

    def _unlock_file(fd: int) -> None:
        os.close(fd)  # closing the last descriptor of the open file releases the flock


class SQLiteStore:
    """Jobs in a SQLite file: durable across restarts and crashes, for one poller.

    Args:
        path: the database file (made if missing; its directory must exist).
        exclusive: take the file's lock (``<path>.lock``) so that no other poller
            opens it while this one has it; False opens a view without the lock.

    ``SQLiteStore.from_url("sqlite:///jobs.db")`` is the same as ``SQLiteStore("jobs.db")``.
    See the module's docstring for durability, locking and threads.
    """

    shared = False

    def __init__(self, path: str | os.PathLike[str], *, exclusive: bool = True) -> None:
        self.path = os.fspath(path)
        if not self.path or self.path == ":memory:":
            raise ValueError(
                f"a SQLite store needs a file path, got {self.path!r} (an in-memory or "
                "temporary database would not outlive the process: use MemoryStore)"
            )
        self.exclusive = exclusive
        self.url = f"sqlite:///{self.path}"
        self._conn: sqlite3.Connection | None = None
        self._lock_fd: int | None = None
        # The connection is used by the loop's thread (insert, get) and by worker
        # threads (flush, reads); never by two at once.
        self._db_lock = threading.Lock()
        # One flush at a time, and reads that see no batch half written (see
        # get_many()). Made anew by open(), on the event loop that uses it.
        self._busy = anyio.Lock()
        self._queue: Queue = {}
        # The batch a flush is writing: get() still reads it until it is committed.
        self._inflight: Queue = {}
        self._open = False

    @classmethod
    def from_url(cls, url: str, *, exclusive: bool = True) -> SQLiteStore:
        """The store of ``sqlite:///path``: what follows the third slash is the path
        (relative; a fourth slash makes it absolute: ``sqlite:////var/lib/jobs.db``).

        Raises:
            ValueError: another scheme, a URL with a host or without a path, or
                ``:memory:``.
        """
        scheme, sep, rest = url.partition("://")
        if not sep or scheme.lower() != "sqlite":
            raise ValueError(f"a SQLite store URL starts with 'sqlite://', got {url!r}")
        if not rest:
            raise ValueError(f"store URL {url!r} has no path; use {_URL_FORMS}")
        if not rest.startswith("/"):
            host = rest.partition("/")[0]
            raise ValueError(
                f"store URL {url!r} names a host ({host!r}); a SQLite store is a file on "
                f"this machine: use {_URL_FORMS}"
            )
        path = rest[1:]
        if not path:
            raise ValueError(f"store URL {url!r} has no path; use {_URL_FORMS}")
        if path == ":memory:":
            raise ValueError(
                f"store URL {url!r} names an in-memory database, which would not outlive "
                "the process; use 'memory://' or a file path"
            )
        store = cls(path, exclusive=exclusive)
        store.url = url
        return store

    # ------------------------------------------------------------------ open, close

    async def open(self) -> None:
        """Take the file's lock (``exclusive``), connect and make the schema.

        A store closed before may be opened again; one that failed to open may be
        opened again too (say, once the poller holding the file has stopped).

        Raises:
            RuntimeError: open already; another poller has the file open (exclusive);
                the file's schema is newer than this asyncpoll's.
            FileNotFoundError: the file's directory does not exist.
        """
        if self._open:
            raise RuntimeError(f"the store {self.url} is open already; make a new one")
        self._open = True
        self._busy = anyio.Lock()
        try:
            await anyio.to_thread.run_sync(self._open_sync)
        except BaseException:
            if self._conn is None:
                self._open = False
            raise

    def _open_sync(self) -> None:
        path = os.path.abspath(self.path)
        directory = os.path.dirname(path)
        if not os.path.isdir(directory):
            raise FileNotFoundError(
                f"the directory of the SQLite store {path} does not exist: {directory}"
            )
        if self.exclusive:
            try:
                self._lock_fd = _lock_file(path + ".lock")
            except BlockingIOError:
                raise RuntimeError(
                    f"the SQLite store {path} is open in another poller (it holds "
                    f"{path}.lock); one poller owns a file at a time"
                ) from None
        try:
            self._conn = self._connect(path)
        except BaseException:
            self._release_lock()
            raise

    @staticmethod
    def _connect(path: str) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; each statement commits by
        # itself unless inside an explicit BEGIN (flush()).
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(
                    f"the SQLite store {path} cannot use WAL mode (journal_mode is {mode!r}); "
                    "is it on a network file system?"
                )
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("BEGIN IMMEDIATE")
            try:
                # The version first: the tables of a newer schema are not to be touched.
                if _check_version(conn, path) is None:
                    for statement in _SCHEMA:
                        conn.execute(statement)
                    conn.execute(
                        "INSERT INTO meta (key, value) VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise type(exc)(f"the SQLite store {path}: {exc}") from exc
        except BaseException:
            conn.close()
            raise
        return conn

    async def aclose(self) -> None:
        """Write every queued write, close the connection, release the file's lock.

        The connection is closed and the lock released even when the last flush fails
        (its error is raised; the writes it could not make stay queued, for the next
        open()). Closing twice, or a store never opened, does nothing.
        """
        if not self._open:
            return
        self._open = False
        with anyio.CancelScope(shield=True):
            try:
                if self._conn is not None:
                    await self.flush()
            finally:
                await anyio.to_thread.run_sync(self._close_sync)

    def _close_sync(self) -> None:
        with self._db_lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                conn.close()  # the last connection checkpoints the WAL into the file
        self._release_lock()

    def _release_lock(self) -> None:
        fd, self._lock_fd = self._lock_fd, None
        if fd is not None:
            _unlock_file(fd)

    def _connection(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is None:
            raise RuntimeError(f"the store {self.url} is not open")
        return conn

    # ------------------------------------------------------------------ sync calls

    def insert(self, job: StoredJob) -> StoredJob | None:
        with self._db_lock:
            conn = self._connection()
            current = self._overlay(job.job_id, self._select_one(conn, job.job_id))
            if current is not None and not current.terminal:
                return current
            conn.execute(_REPLACE, (job.job_id, job.state, job.due, job.terminal, job.doc))
            # Writes queued, or being flushed, for the terminal row replaced: not to be
            # written over this one. (A flush thread reads its batch under _db_lock only.)
            self._queue.pop(job.job_id, None)
            self._inflight.pop(job.job_id, None)
        return None

    def get(self, job_id: str) -> StoredJob | None:
        with self._db_lock:
            stored = self._select_one(self._connection(), job_id)
        return self._overlay(job_id, stored)

    def _overlay(self, job_id: str, stored: StoredJob | None) -> StoredJob | None:
        """``stored`` as the batch being flushed, then the queued writes, leave it.

        Applying a batch already committed again changes nothing, so a read need not
        know whether the flush's transaction came before it.
        """
        for batch in (self._inflight, self._queue):
            queued = batch.get(job_id)
            if queued is not None and (stored is None or not stored.terminal):
                stored = queued[0]
        return stored

    @staticmethod
    def _select_one(conn: sqlite3.Connection, job_id: str) -> StoredJob | None:
        found = conn.execute(_SELECT_ONE, (job_id,)).fetchone()
        return None if found is None else StoredJob(job_id, *found)

    def put(self, job: StoredJob, owner: str | None = None) -> None:
        _coalesce(self._queue, job, owner)

    @property
    def pending(self) -> int:
        return len(self._queue)

    # ------------------------------------------------------------------ async calls

    async def flush(self) -> None:
        """Write the queued writes in one transaction, in a worker thread.

        The queue is swapped for an empty one first: ``put()``s made meanwhile go into
        the next batch. Should the transaction fail, the batch is queued again (under
        writes queued since) and the error raised.
        """
        if not self._queue and not self._busy.locked():
            return
        async with self._busy:
            await self._flush_locked()

    async def _flush_locked(self) -> None:
        if not self._queue:
            return
        batch, self._queue = self._queue, {}
        self._inflight = batch
        try:
            await anyio.to_thread.run_sync(self._write_batch, batch)
        except BaseException:
            newer, self._queue = self._queue, batch
            for job, owner in newer.values():
                _coalesce(self._queue, job, owner)  # as if put after the batch
            raise
        finally:
            self._inflight = {}

    def _write_batch(self, batch: Queue) -> None:
        with self._db_lock:
            conn = self._connection()
            # Built under the lock: insert() may drop a job from the batch until then.
            params = [
                (job.job_id, job.state, job.due, job.state in TERMINAL_STATES, job.doc)
                for job, _owner in batch.values()
            ]
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_UPSERT, params)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    async def get_many(self, job_ids: Iterable[str]) -> list[StoredJob | None]:
        ids = list(job_ids)
        # Under _busy: no batch is half written (committed but still in _inflight is
        # fine; read before its commit and then dropped from _inflight is not).
        async with self._busy:
            found = await anyio.to_thread.run_sync(self._select_many, ids)
        return [self._overlay(job_id, found.get(job_id)) for job_id in ids]

    def _select_many(self, ids: list[str]) -> dict[str, StoredJob]:
        found: dict[str, StoredJob] = {}
        unique = list(dict.fromkeys(ids))
        with self._db_lock:
            conn = self._connection()
            for start in range(0, len(unique), _IN_CHUNK):
                chunk = unique[start : start + _IN_CHUNK]
                marks = ",".join("?" * len(chunk))
                sql = f"SELECT job_id, state, due, doc FROM jobs WHERE job_id IN ({marks})"
                for row in conn.execute(sql, chunk):
                    found[row[0]] = StoredJob(*row)
        return found

    async def live(self) -> list[StoredJob]:
        async with self._busy:
            await self._flush_locked()
            return await anyio.to_thread.run_sync(self._select, _LIVE, ())

    async def claim(self, owner: str, now: float, lease: float, limit: int) -> list[StoredJob]:
        """Up to ``limit`` live rows due at ``now``, earliest due first (one poller: no
        leases; ``owner`` and ``lease`` are not used)."""
        if limit <= 0:
            return []
        async with self._busy:
            await self._flush_locked()
            return await anyio.to_thread.run_sync(self._select, _DUE, (now, limit))

    def _select(self, sql: str, params: tuple[object, ...]) -> list[StoredJob]:
        with self._db_lock:
            return [StoredJob(*row) for row in self._connection().execute(sql, params)]

    async def prune(self, before: float) -> int:
        async with self._busy:
            await self._flush_locked()
            return await anyio.to_thread.run_sync(self._delete_before, before)

    def _delete_before(self, before: float) -> int:
        with self._db_lock:
            return self._connection().execute(_PRUNE, (before,)).rowcount

    async def finished_since(self, since: float) -> list[str]:
        async with self._busy:
            await self._flush_locked()
            return await anyio.to_thread.run_sync(self._finished_since, since)

    def _finished_since(self, since: float) -> list[str]:
        with self._db_lock:
            return [row[0] for row in self._connection().execute(_FINISHED, (since,))]

    def put_cooldown(self, host: str, until: float) -> None:
        pass  # one poller: its own host gates hold its pauses

    async def cooldowns(self, now: float) -> dict[str, float]:
        return {}

    def limiter(self, limit: RateLimit, clock: Clock) -> SharedLimiter | None:
        return None

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}, {len(self._queue)} writes queued>"


def _check_version(conn: sqlite3.Connection, path: str) -> int | None:
    """The file's schema version (None: a new file); a newer one than ours is refused."""
    has_meta = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
    ).fetchone()
    if has_meta is None:
        return None
    found = conn.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    if found is None:
        return None
    version = int(found[0])
    if version > SCHEMA_VERSION:
        raise RuntimeError(
            f"the SQLite store {path} has schema version {version}, newer than this "
            f"asyncpoll's ({SCHEMA_VERSION}); open it with a newer asyncpoll"
        )
    return version
