"""One place builds database engines, so every connection is set up the same way.

SQLite gets WAL, a busy timeout, foreign keys, `synchronous=FULL`, and every transaction starts
with `BEGIN IMMEDIATE`: a deferred read-then-write transaction fails at once under contention,
while an immediate one waits its turn. Work that only reads opts out with `read_only(conn)`
before its first statement and gets a plain deferred `BEGIN`, which under WAL does not wait for a
writer (the health check must not queue behind turns for the busy timeout). PostgreSQL
(psycopg 3) needs nothing special here; the turn handler locks rows itself. A PostgreSQL URL that
names no driver (`postgresql://…`, `postgres://…`) means psycopg 3, the driver dibot installs,
not SQLAlchemy's default psycopg2: `database_url` reads it so, here and in configuration. An
SQLite file is created 0600 (SQLite gives its -wal and -shm files the same mode) in a directory
created 0700: it holds personal data. No engine is built at import time, and no pooled
connection is ever used in a process other than the one that opened it (after `fork()` the
child opens its own).
"""

from __future__ import annotations

import os
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
    "PRAGMA synchronous=FULL",
)
POSTGRESQL_DRIVER = "postgresql+psycopg"
IMPLIED_DRIVERS = {"postgresql": POSTGRESQL_DRIVER, "postgres": POSTGRESQL_DRIVER}
"""URL schemes that name PostgreSQL but no driver -> the driver they mean to dibot."""


def database_url(url: str | URL) -> URL:
    """`url` parsed, with psycopg 3 as the driver of a PostgreSQL URL that names none."""
    parsed = make_url(url)
    implied = IMPLIED_DRIVERS.get(parsed.drivername)
    return parsed if implied is None else parsed.set(drivername=implied)


def make_engine(url: str | URL, **options: Any) -> sa.Engine:
    """An engine for `url` (an SQLite file, or PostgreSQL: `postgresql://…`), set up for dibot.

    `options` go to `sqlalchemy.create_engine` (e.g. `pool_size`).
    """
    parsed = database_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed, options)
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
SQLITE_COMPANIONS = ("", "-wal", "-shm")
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


def _sqlite_engine(url: URL, options: dict[str, Any]) -> sa.Engine:
    path = sqlite_file(url)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIRECTORY)
    engine = sa.create_engine(url, **options)

    if path is not None:
        private_path = path

        @event.listens_for(engine, "do_connect")
        def create_private(*_: Any) -> None:
            _create_private_file(private_path)

    @event.listens_for(engine, "connect")
    def set_up(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
        # sqlite3 must not issue BEGIN itself: the "begin" hook below does, as IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            for pragma in SQLITE_PRAGMAS:
                cursor.execute(pragma)
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: sa.Connection) -> None:
        if connection.get_execution_options().get(READ_ONLY_OPTION):
            connection.exec_driver_sql("BEGIN")
        else:
            connection.exec_driver_sql("BEGIN IMMEDIATE")

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
