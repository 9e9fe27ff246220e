"""What the SQLite store does beyond the store contract (tests/test_store_contract.py):
the file's lock, the schema version, its URLs, a failed flush, WAL mode."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream

from asyncpoll import StoredJob, open_store
from asyncpoll._sqlite import SCHEMA_VERSION, SQLiteStore
from asyncpoll._store import JobStore

pytestmark = pytest.mark.anyio


def row(job_id: str, state: str = "running", due: float = 100.0, **doc: Any) -> StoredJob:
    return StoredJob(job_id, state, due, json.dumps({"job_id": job_id, "state": state, **doc}))


def query(path: Path, sql: str) -> Any:
    """One value read through a connection of its own (another process's view)."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "jobs.db"


# ------------------------------------------------------------------ the file's lock


def held_by_another(path: Path) -> str:
    return re.escape(f"the SQLite store {path} is open in another poller (it holds {path}.lock)")


async def test_one_poller_owns_a_file_at_a_time(db: Path) -> None:
    first = SQLiteStore(db)
    await first.open()
    second = SQLiteStore(db)
    with pytest.raises(RuntimeError, match=held_by_another(db)):
        await second.open()
    view = SQLiteStore(db, exclusive=False)  # a view takes no lock
    await view.open()
    await view.aclose()
    first.insert(row("a"))
    await first.aclose()
    await second.open()  # the same object, once the file is free
    try:
        assert second.get("a") == row("a")
    finally:
        await second.aclose()


async def test_a_killed_poller_leaves_the_file_free(db: Path) -> None:
    script = (
        "import sys, json, anyio\n"
        "from asyncpoll import StoredJob\n"
        "from asyncpoll._sqlite import SQLiteStore\n"
        "async def main():\n"
        "    store = SQLiteStore(sys.argv[1])\n"
        "    await store.open()\n"
        "    store.insert(StoredJob('a', 'running', 1.0, '{}'))\n"
        "    store.put(StoredJob('b', 'succeeded', 2.0, '{}'))\n"
        "    await store.flush()\n"
        "    print('ready', flush=True)\n"
        "    await anyio.sleep(3600)\n"
        "anyio.run(main)\n"
    )
    store = SQLiteStore(db)
    async with await anyio.open_process([sys.executable, "-c", script, str(db)]) as child:
        assert child.stdout is not None and child.stderr is not None
        try:
            line = await BufferedByteReceiveStream(child.stdout).receive_until(b"\n", 100)
        except anyio.IncompleteRead:
            raise AssertionError((await child.stderr.receive()).decode()) from None
        assert line == b"ready"
        with pytest.raises(RuntimeError, match=held_by_another(db)):
            await store.open()
        child.send_signal(signal.SIGKILL)
        assert await child.wait() == -signal.SIGKILL
    await store.open()
    try:
        # What the killed process committed is there: the insert and the flush.
        assert store.get("a") == StoredJob("a", "running", 1.0, "{}")
        assert store.get("b") == StoredJob("b", "succeeded", 2.0, "{}")
    finally:
        await store.aclose()


# ------------------------------------------------------------------ schema, file


async def test_a_file_of_a_newer_schema_is_refused(db: Path) -> None:
    store = SQLiteStore(db)
    await store.open()
    store.insert(row("a"))
    await store.aclose()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(99),))
        conn.commit()
    message = (
        f"the SQLite store {db} has schema version 99, newer than this asyncpoll's "
        f"({SCHEMA_VERSION}); open it with a newer asyncpoll"
    )
    with pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"):
        await store.open()
    assert query(db, "SELECT value FROM meta") == "99"  # nothing written
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(1),))
        conn.commit()
    await store.open()  # the refusal released the file's lock
    try:
        assert store.get("a") == row("a")
    finally:
        await store.aclose()


async def test_a_new_file_has_the_schema_version_and_wal_mode(db: Path) -> None:
    store = SQLiteStore(db)
    await store.open()
    try:
        assert query(db, "SELECT value FROM meta WHERE key = 'schema_version'") == "1"
        assert query(db, "PRAGMA journal_mode") == "wal"  # a property of the file
        conn = store._conn
        assert conn is not None
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 5000
    finally:
        await store.aclose()


async def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "jobs.db"
    store = SQLiteStore(path)
    message = f"the directory of the SQLite store {path} does not exist: {path.parent}"
    with pytest.raises(FileNotFoundError, match=f"^{re.escape(message)}$"):
        await store.open()
    assert not path.parent.exists()


async def test_a_file_that_is_not_a_database_is_named(db: Path) -> None:
    await anyio.Path(db).write_bytes(b"not a database, but long enough to have a header" * 4)
    with pytest.raises(sqlite3.DatabaseError, match=re.escape(f"the SQLite store {db}: ")):
        await SQLiteStore(db).open()
    await SQLiteStore(db).aclose()  # never opened: nothing to do


async def test_a_store_not_open_says_so(db: Path) -> None:
    store = SQLiteStore(db)
    with pytest.raises(RuntimeError, match=re.escape(f"the store sqlite:///{db} is not open")):
        store.insert(row("a"))
    await store.open()
    await store.aclose()
    with pytest.raises(RuntimeError, match="is not open"):
        store.get("a")


# ------------------------------------------------------------------ URLs


def test_urls_name_a_path_relative_or_absolute() -> None:
    relative = SQLiteStore.from_url("sqlite:///data/jobs.db")
    assert (relative.path, relative.url) == ("data/jobs.db", "sqlite:///data/jobs.db")
    absolute = open_store("sqlite:////var/lib/app/jobs.db")
    assert isinstance(absolute, SQLiteStore)
    assert absolute.path == "/var/lib/app/jobs.db"
    assert absolute.url == "sqlite:////var/lib/app/jobs.db"
    assert absolute.exclusive and not absolute.shared
    assert SQLiteStore.from_url("SQLite:///jobs.db").path == "jobs.db"
    assert SQLiteStore(Path("/tmp/x.db")).url == "sqlite:////tmp/x.db"
    assert isinstance(SQLiteStore("x.db"), JobStore)


FORMS = "'sqlite:///relative/jobs.db' or 'sqlite:////absolute/jobs.db'"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", f"store URL 'sqlite://' has no path; use {FORMS}"),
        ("sqlite:///", f"store URL 'sqlite:///' has no path; use {FORMS}"),
        (
            "sqlite://db.example.com/jobs.db",
            "store URL 'sqlite://db.example.com/jobs.db' names a host ('db.example.com'); "
            f"a SQLite store is a file on this machine: use {FORMS}",
        ),
        (
            "sqlite:///:memory:",
            "store URL 'sqlite:///:memory:' names an in-memory database, which would not "
            "outlive the process; use 'memory://' or a file path",
        ),
    ],
)
def test_bad_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        open_store(url)
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SQLiteStore.from_url(url)


def test_a_path_that_is_no_file_is_refused() -> None:
    with pytest.raises(ValueError, match=re.escape("a SQLite store needs a file path, got ''")):
        SQLiteStore("")
    with pytest.raises(ValueError, match=re.escape("got ':memory:' (an in-memory or temporary")):
        SQLiteStore(":memory:")
    with pytest.raises(ValueError, match=re.escape("starts with 'sqlite://', got 'redis://x'")):
        SQLiteStore.from_url("redis://x")


# ------------------------------------------------------------------ flushes


class FailingOnce:
    """The store's connection, whose next ``executemany`` writes one row, lets the loop
    run ``during`` (puts made while a flush is under way) and fails."""

    def __init__(self, conn: sqlite3.Connection, during: Any) -> None:
        self._conn = conn
        self._during = during
        self.failed = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)

    def executemany(self, sql: str, params: list[Any]) -> Any:
        if self.failed:
            return self._conn.executemany(sql, params)
        self.failed = True
        self._conn.executemany(sql, params[:1])  # half a batch, to be rolled back
        anyio.from_thread.run_sync(self._during)
        raise sqlite3.OperationalError("disk I/O error")


async def test_a_failed_flush_queues_its_batch_again(db: Path) -> None:
    store = SQLiteStore(db)
    await store.open()
    other = SQLiteStore(db, exclusive=False)
    await other.open()
    try:
        for name in "abc":
            store.insert(row(name, due=1.0))
        store.put(row("a", "succeeded", due=7.0))
        store.put(row("b", due=2.0))
        store.put(row("c", due=3.0))

        def during() -> None:
            store.put(row("a", due=9.0))  # after the outcome: dropped
            store.put(row("b", due=5.0))  # newer than the batch's: kept
            store.put(row("d", due=4.0))

        conn = store._conn
        assert conn is not None
        store._conn = FailingOnce(conn, during)  # type: ignore[assignment]
        with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
            await store.flush()
        assert store.pending == 4
        assert [store.get(name) for name in "abcd"] == [
            row("a", "succeeded", due=7.0),
            row("b", due=5.0),
            row("c", due=3.0),
            row("d", due=4.0),
        ]
        # Nothing of the batch was written (its first row was rolled back).
        assert (await other.get_many("abcd")) == [row(n, due=1.0) for n in "abc"] + [None]
        assert not conn.in_transaction
        await store.flush()
        assert store.pending == 0
        assert (await other.get_many("abcd")) == [
            row("a", "succeeded", due=7.0),
            row("b", due=5.0),
            row("c", due=3.0),
            row("d", due=4.0),
        ]
    finally:
        await other.aclose()
        await store.aclose()


async def test_reads_and_inserts_during_a_flush_see_its_batch(db: Path) -> None:
    """Between the queue's swap and the batch's commit, the batch is in neither the
    queue nor the file: reads still see it, and an insert that replaces a terminal row
    of it is not written over."""
    store = SQLiteStore(db)
    await store.open()
    try:
        store.insert(row("a"))
        store.insert(row("b"))
        store.put(row("a", due=5.0))
        store.put(row("b", "failed", due=6.0))
        in_flight = anyio.Event()
        go = threading.Event()
        write_batch = store._write_batch

        def held(batch: Any) -> None:
            anyio.from_thread.run_sync(in_flight.set)
            go.wait(10)
            write_batch(batch)

        store._write_batch = held  # type: ignore[method-assign]
        async with anyio.create_task_group() as tg:
            tg.start_soon(store.flush)
            await in_flight.wait()
            assert store.pending == 0
            assert store.get("a") == row("a", due=5.0)
            assert store.get("b") == row("b", "failed", due=6.0)
            assert store.insert(row("a", due=8.0)) == row("a", due=5.0)  # live: kept
            assert store.insert(row("b", "pending", due=9.0)) is None  # replaces the outcome
            assert store.get("b") == row("b", "pending", due=9.0)
            go.set()
        assert store.get("a") == row("a", due=5.0)
        assert store.get("b") == row("b", "pending", due=9.0)
        assert [r.job_id for r in await store.live()] == ["a", "b"]
    finally:
        await store.aclose()


async def test_get_many_reads_in_chunks_in_order(db: Path) -> None:
    store = SQLiteStore(db)
    await store.open()
    try:
        for i in range(1200):
            store.put(row(f"j{i}", due=float(i)))
        await store.flush()
        store.put(row("j5", due=0.5))
        ids = [f"j{i}" for i in range(1199, -1, -1)] + ["j5", "missing"]
        got = await store.get_many(ids)
        assert got[0] == row("j1199", due=1199.0)
        assert got[-2:] == [row("j5", due=0.5), None]
        assert [r.job_id for r in got if r is not None] == ids[:-1]
        assert await store.claim("me", 2.0, 30.0, 3) == [
            row("j0", due=0.0),
            row("j5", due=0.5),
            row("j1", due=1.0),
        ]
        assert await store.claim("me", 2.0, 30.0, 0) == []
        assert await store.cooldowns(0.0) == {}
    finally:
        await store.aclose()


async def test_a_close_whose_flush_fails_still_frees_the_file(db: Path) -> None:
    store = SQLiteStore(db)
    await store.open()
    store.insert(row("a", due=1.0))
    store.put(row("a", due=2.0))
    conn = store._conn
    assert conn is not None
    store._conn = FailingOnce(conn, lambda: None)  # type: ignore[assignment]
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        await store.aclose()
    await store.aclose()  # closed: nothing to do
    other = SQLiteStore(db)
    await other.open()  # the lock was released
    assert other.get("a") == row("a", due=1.0)
    await other.aclose()
    assert store.pending == 1  # kept for the next open
    await store.open()
    try:
        await store.flush()
        assert store.get("a") == row("a", due=2.0)
    finally:
        await store.aclose()
