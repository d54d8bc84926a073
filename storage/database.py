"""One place builds database engines, so every connection is set up the same way.

SQLite gets WAL, a busy timeout, foreign keys and the configured `synchronous` level, and every
transaction that may write starts with `BEGIN IMMEDIATE`: a deferred read-then-write transaction
fails at once under contention, while an immediate one waits its turn. Work that only reads opts
out with `read_only(conn)` before its first statement and gets a plain deferred `BEGIN`, which
under WAL does not wait for a writer (the health check must not queue behind turns for the busy
timeout). PostgreSQL (psycopg 3) needs nothing special here; the turn handler locks rows itself.
A PostgreSQL URL that names no driver (`postgresql://…`, `postgres://…`) means psycopg 3, the
driver dibot installs, not SQLAlchemy's default psycopg2: `database_url` reads it so, here and in
configuration. An SQLite file is created 0600 (SQLite gives its -wal and -shm files the same
mode) in a directory created 0700: it holds personal data. No engine is built at import time,
and no pooled connection is ever used in a process other than the one that opened it (after
`fork()` the child opens its own).

Durability (`synchronous`): in WAL mode, NORMAL (the default) syncs the log at checkpoints, not
at each commit. A committed turn survives the process being killed (the log is in the operating
system's hands); a power cut or a kernel crash may lose the last turns committed before it, never
corrupting the database. FULL syncs at every commit (about a third of a turn's time in process
on this kind of machine) and keeps every committed turn across a power cut as well.

Writers queue on a lock file (`<database>-lock`, `flock`) before `BEGIN IMMEDIATE`, and let go
of it after their commit or rollback. SQLite's own busy handler sleeps and polls (up to 100 ms a
sleep), so a writer that found the database locked used to sleep on well after it was free:
the latency spikes of contended turns. Waiting on the lock file instead, a writer tries again
within a millisecond of the last one finishing. SQLite's lock stays the guard: the file only
puts writers in line, and a writer that does not use it (the sqlite3 shell) is still waited for
by the busy handler.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time
import weakref
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.pool import ConnectionPoolEntry

READ_ONLY_OPTION = "dibot_read_only"
"""Execution option: this connection's transactions only read (see `read_only`)."""
SQLITE_BUSY_TIMEOUT_MS = 10_000
SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}",
    "PRAGMA foreign_keys=ON",
)
SQLITE_SYNCHRONOUS_LEVELS = ("normal", "full")
"""`[database] sqlite_synchronous`: see the module's "Durability"."""
DEFAULT_SQLITE_SYNCHRONOUS = "normal"
WRITE_LOCK_SUFFIX = "-lock"
WRITE_LOCK_FIRST_WAIT_SECONDS = 0.0001
WRITE_LOCK_LONGEST_WAIT_SECONDS = 0.001
"""A writer waiting for the lock file tries again after 0.1 ms, doubling to 1 ms at most."""
POSTGRESQL_DRIVER = "postgresql+psycopg"
IMPLIED_DRIVERS = {"postgresql": POSTGRESQL_DRIVER, "postgres": POSTGRESQL_DRIVER}
"""URL schemes that name PostgreSQL but no driver -> the driver they mean to dibot."""


def database_url(url: str | URL) -> URL:
    """`url` parsed, with psycopg 3 as the driver of a PostgreSQL URL that names none."""
    parsed = make_url(url)
    implied = IMPLIED_DRIVERS.get(parsed.drivername)
    return parsed if implied is None else parsed.set(drivername=implied)


def make_engine(
    url: str | URL, *, sqlite_synchronous: str = DEFAULT_SQLITE_SYNCHRONOUS, **options: Any
) -> sa.Engine:
    """An engine for `url` (an SQLite file, or PostgreSQL: `postgresql://…`), set up for dibot.

    `sqlite_synchronous`: "normal" or "full" (see the module's "Durability"); ignored for
    PostgreSQL, whose server's `synchronous_commit` decides. `options` go to
    `sqlalchemy.create_engine` (e.g. `pool_size`).
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        if sqlite_synchronous not in SQLITE_SYNCHRONOUS_LEVELS:
            raise ValueError(
                f"sqlite_synchronous is one of {', '.join(SQLITE_SYNCHRONOUS_LEVELS)}, "
                f"not {sqlite_synchronous!r}"
            )
        engine = _sqlite_engine(parsed, options, sqlite_synchronous)
    else:
        engine = sa.create_engine(parsed, **options)
    _open_connections_per_process(engine)
    return engine


def read_only(connection: sa.Connection) -> sa.Connection:
    """Mark `connection` (before its first statement) as one that only reads: on SQLite its
    transactions begin deferred, so they neither take nor wait for the write lock. Never write
    in one: after a read, a write may fail with "database is locked" instead of waiting."""
    return connection.execution_options(**{READ_ONLY_OPTION: True})


PRIVATE_FILE = 0o600
PRIVATE_DIRECTORY = 0o700
SQLITE_COMPANIONS = ("", "-wal", "-shm", WRITE_LOCK_SUFFIX)
"""Suffixes of an SQLite database's files."""


def sqlite_file(url: str | URL) -> Path | None:
    """The file of an SQLite database URL (None: PostgreSQL, in-memory or a `file:` URI)."""
    parsed = database_url(url)
    database = parsed.database or ""
    if parsed.get_backend_name() != "sqlite" or database in ("", ":memory:"):
        return None
    return None if database.startswith("file:") else Path(database).expanduser()


def make_private(url: str | URL) -> None:
    """Make an existing SQLite database's files 0600 (those made before dibot made them so)."""
    path = sqlite_file(url)
    if path is None:
        return
    for suffix in SQLITE_COMPANIONS:
        companion = path.with_name(path.name + suffix)
        if companion.exists():
            companion.chmod(PRIVATE_FILE)


def _create_private_file(path: Path) -> None:
    """An empty file (an empty SQLite database) readable by its owner only."""
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, PRIVATE_FILE))


class WriteLockTimeout(sqlite3.OperationalError):
    """Another writer held the lock file for the whole busy timeout."""


class LockingConnection(sqlite3.Connection):
    """An SQLite connection whose write transactions queue on the database's lock file
    (`take_write_lock`, before `BEGIN IMMEDIATE`) and let go of it when they end, however they
    end (commit, rollback, close)."""

    _lock_fd: int | None = None
    _holds_lock = False

    def use_lock_file(self, path: Path) -> None:
        self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE)

    def take_write_lock(self) -> None:
        """Wait for the lock file, up to the busy timeout (`WriteLockTimeout`)."""
        if self._lock_fd is not None and not self._holds_lock:
            _lock(self._lock_fd, SQLITE_BUSY_TIMEOUT_MS / 1000)
            self._holds_lock = True

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._unlock()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._unlock()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._unlock()
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    def release_write_lock(self) -> None:
        self._unlock()

    def _unlock(self) -> None:
        if self._holds_lock and self._lock_fd is not None:
            self._holds_lock = False
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)


def _lock(fd: int, timeout: float) -> None:
    """`flock` the file, trying again at short intervals (a blocking `flock` could not give
    up after the busy timeout, as SQLite's own wait does)."""
    deadline = time.monotonic() + timeout
    wait = WRITE_LOCK_FIRST_WAIT_SECONDS
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise WriteLockTimeout("database is locked (its lock file)") from None
        time.sleep(wait)
        wait = min(wait * 2, WRITE_LOCK_LONGEST_WAIT_SECONDS)


def _sqlite_engine(url: URL, options: dict[str, Any], synchronous: str) -> sa.Engine:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
        connect_args = {"factory": LockingConnection, **options.pop("connect_args", {})}
        options = {**options, "connect_args": connect_args}
    engine = sa.create_engine(url, **options)
    pragmas = (*SQLITE_PRAGMAS, f"PRAGMA synchronous={synchronous.upper()}")

    if path is not None:
        private_path = path
        lock_path = path.with_name(path.name + WRITE_LOCK_SUFFIX)

        @event.listens_for(engine, "do_connect")
        def create_private(*_: Any) -> None:
            _create_private_file(private_path)
            _create_private_file(lock_path)

    @event.listens_for(engine, "connect")
    def set_up(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # sqlite3 must not issue BEGIN itself: the "begin" hook below does, as IMMEDIATE.
        dbapi_connection.isolation_level = None
        if isinstance(dbapi_connection, LockingConnection) and path is not None:
            dbapi_connection.use_lock_file(lock_path)
        cursor = dbapi_connection.cursor()
        try:
            for pragma in pragmas:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
            return
        dbapi_connection = connection.connection.dbapi_connection
        if not isinstance(dbapi_connection, LockingConnection):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
            return
        try:
            dbapi_connection.take_write_lock()
        except WriteLockTimeout as error:  # as SQLite's own "database is locked" reaches callers
            raise sa.exc.OperationalError("BEGIN IMMEDIATE", None, error) from None
        try:
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            dbapi_connection.release_write_lock()
            raise

    return engine


def _open_connections_per_process(engine: sa.Engine) -> None:
    """A forked child drops the pool it inherited, without closing the parent's connections,
    and connects anew when it first needs to (SQLAlchemy's advice for `fork()`)."""
    engine_ref = weakref.ref(engine)

    def forget_pool_in_child() -> None:
        inherited = engine_ref()
        if inherited is not None:
            inherited.dispose(close=False)

    os.register_at_fork(after_in_child=forget_pool_in_child)
