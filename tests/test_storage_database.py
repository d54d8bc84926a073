"""Engines are set up for durability and concurrency, and survive `fork()`."""

from __future__ import annotations

import fcntl
import multiprocessing
import os
import sqlite3
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
import sqlalchemy as sa

from storage import database
from storage.database import database_url, make_engine, read_only
from storage.migrate import upgrade
from storage.models import Respondent, table

respondents = table(Respondent)
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def person(urn: str) -> dict[str, object]:
    """A respondent's URN columns: these tests are about connections, not keys, so the URN
    stands in for its own cipher and digest (`tests/test_privacy.py` is about those)."""
    return {"urn_cipher": urn, "urn_digest": urn.encode()}


@pytest.mark.parametrize(("level", "pragma_value"), [("normal", 1), ("full", 2)])
def test_sqlite_connections_are_durable_and_wait_for_the_lock(
    tmp_path: Path, level: str, pragma_value: int
) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'a' / 'b' / 'dibot.db'}", sqlite_synchronous=level)
    with engine.connect() as conn:
        pragma = {
            name: conn.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "synchronous", "busy_timeout")
        }
    engine.dispose()
    assert pragma == {
        "journal_mode": "wal",
        "foreign_keys": 1,
        "synchronous": pragma_value,
        "busy_timeout": 10_000,
    }
    assert (tmp_path / "a" / "b" / "dibot.db").exists()
    assert (tmp_path / "a" / "b" / "dibot.db-lock").stat().st_mode & 0o777 == 0o600


def test_sqlite_durability_defaults_to_normal_and_refuses_other_levels(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'dibot.db'}")
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    engine.dispose()
    with pytest.raises(ValueError, match="normal, full"):
        make_engine(f"sqlite:///{tmp_path / 'dibot.db'}", sqlite_synchronous="off")


def test_a_writer_waits_for_the_lock_file_and_goes_as_soon_as_it_is_free(tmp_path: Path) -> None:
    """A write transaction holds the database's lock file until it commits or rolls back; a
    second writer waits for it, then writes (nothing lost, nothing failed)."""
    url = f"sqlite:///{tmp_path / 'dibot.db'}"
    upgrade(url)
    engine = make_engine(url)
    waited: list[bool] = []
    holding = threading.Event()
    release = threading.Event()

    def first() -> None:
        with engine.begin() as conn:
            conn.execute(
                sa.insert(respondents).values(
                    **person("terminal:first"), language="en", created_at=NOW
                )
            )
            holding.set()
            release.wait(10)

    def second() -> None:
        holding.wait(10)
        with engine.begin() as conn:
            waited.append(release.is_set())
            conn.execute(
                sa.insert(respondents).values(
                    **person("terminal:second"), language="en", created_at=NOW
                )
            )

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    holding.wait(10)
    lock = os.open(tmp_path / "dibot.db-lock", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # the first writer holds it
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        release.set()
        for thread in threads:
            thread.join()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # both let go of it
        fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        os.close(lock)
    with engine.connect() as conn:
        urns = sorted(conn.execute(sa.select(respondents.c.urn_cipher)).scalars())
    engine.dispose()
    assert waited == [True]
    assert urns == ["terminal:first", "terminal:second"]


def test_a_writer_kept_waiting_for_the_busy_timeout_fails_as_a_locked_database_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Someone holds the lock file for longer than the busy timeout: the writer gives up with
    SQLAlchemy's OperationalError ("database is locked"), as it would on SQLite's own lock, so
    a Telegram update gets its 503 and is sent again."""
    url = f"sqlite:///{tmp_path / 'dibot.db'}"
    upgrade(url)
    engine = make_engine(url)
    monkeypatch.setattr(database, "SQLITE_BUSY_TIMEOUT_MS", 200)
    lock = os.open(tmp_path / "dibot.db-lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        with pytest.raises(sa.exc.OperationalError, match="database is locked"):
            engine.begin().__enter__()
        fcntl.flock(lock, fcntl.LOCK_UN)
        with engine.begin() as conn:  # free again: the next writer goes
            conn.execute(
                sa.insert(respondents).values(
                    **person("terminal:after"), language="en", created_at=NOW
                )
            )
    finally:
        os.close(lock)
        engine.dispose()


def test_a_failed_write_transaction_lets_go_of_the_lock_file(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dibot.db'}"
    upgrade(url)
    engine = make_engine(url)
    twice = sa.insert(respondents).values(**person("terminal:twice"), language="en", created_at=NOW)
    with engine.connect() as conn, conn.begin():
        conn.execute(twice)
        with pytest.raises(sa.exc.IntegrityError):  # the same URN again
            conn.execute(twice)
    lock = os.open(tmp_path / "dibot.db-lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock, fcntl.LOCK_UN)
    finally:
        os.close(lock)
    with engine.begin() as conn:  # and the next writer gets it
        conn.execute(
            sa.insert(respondents).values(**person("terminal:once"), language="en", created_at=NOW)
        )
    engine.dispose()


def test_sqlite_writers_take_turns_instead_of_failing(tmp_path: Path) -> None:
    """Read-then-write transactions under contention wait for each other (BEGIN IMMEDIATE)
    rather than failing with "database is locked" or losing an update."""
    url = f"sqlite:///{tmp_path / 'dibot.db'}"
    upgrade(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(respondents).values(
                **person("terminal:counter"), language="0", created_at=NOW
            )
        )
    barrier = threading.Barrier(8)
    errors: list[BaseException] = []

    def increment() -> None:
        try:
            barrier.wait()
            for _ in range(10):
                with engine.begin() as conn:
                    value = conn.execute(sa.select(respondents.c.language)).scalar_one()
                    conn.execute(sa.update(respondents).values(language=str(int(value) + 1)))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=increment) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with engine.connect() as conn:
        total = conn.execute(sa.select(respondents.c.language)).scalar_one()
    engine.dispose()
    assert errors == []
    assert total == "80"


def _write_in_child(engine: sa.Engine, urn: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.insert(respondents).values(**person(urn), language="en", created_at=NOW))


def test_a_forked_child_opens_its_own_connections(engine: sa.Engine) -> None:
    _write_in_child(engine, "terminal:parent-before")  # the pool now holds a connection
    child = multiprocessing.get_context("fork").Process(
        target=_write_in_child, args=(engine, "terminal:child")
    )
    child.start()
    child.join()
    assert child.exitcode == 0
    _write_in_child(engine, "terminal:parent-after")  # the parent's connection still works
    with engine.connect() as conn:
        urns = set(conn.execute(sa.select(respondents.c.urn_cipher)).scalars())
    assert urns == {"terminal:parent-before", "terminal:child", "terminal:parent-after"}


def test_naive_times_are_refused(engine: sa.Engine) -> None:
    with pytest.raises(sa.exc.StatementError, match="naive datetime"), engine.begin() as conn:
        conn.execute(
            sa.insert(respondents).values(
                **person("terminal:naive"), language="en", created_at=datetime(2026, 1, 1)
            )
        )


def test_times_come_back_in_utc(engine: sa.Engine) -> None:
    local = datetime(2026, 11, 25, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(
            sa.insert(respondents).values(**person("terminal:tz"), language="en", created_at=local)
        )
    with engine.connect() as conn:
        stored = conn.execute(sa.select(respondents.c.created_at)).scalar_one()
    assert stored == local
    assert stored.utcoffset() == timedelta(0)


def test_sqlite_read_only_work_does_not_wait_for_a_writer(tmp_path: Path) -> None:
    """A read-only connection reads the last committed rows while another connection holds
    the write lock; the option does not outlive the connection it was set on."""
    database = tmp_path / "dibot.db"
    url = f"sqlite:///{database}"
    upgrade(url)
    engine = make_engine(url, poolclass=sa.pool.QueuePool, pool_size=1, max_overflow=0)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(respondents).values(
                **person("terminal:committed"), language="en", created_at=NOW
            )
        )
    writer = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("DELETE FROM respondents")
        with engine.connect() as conn:
            urns = list(read_only(conn).execute(sa.select(respondents.c.urn_cipher)).scalars())
        assert writer.in_transaction
        writer.execute("ROLLBACK")
        with engine.connect() as conn:  # the same pooled connection, without the option
            conn.execute(sa.select(respondents.c.urn_cipher)).all()
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                writer.execute("BEGIN IMMEDIATE")
    finally:
        writer.close()
        engine.dispose()
    assert urns == ["terminal:committed"]


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgresql://u:p%40ss@127.0.0.1:5432/d", "postgresql+psycopg"),
        ("postgres://u@127.0.0.1/d", "postgresql+psycopg"),
        ("postgresql+psycopg://u@127.0.0.1/d", "postgresql+psycopg"),
        ("postgresql+psycopg2://u@127.0.0.1/d", "postgresql+psycopg2"),
        ("sqlite:///var/dibot.db", "sqlite"),
    ],
)
def test_a_postgresql_url_without_a_driver_means_psycopg_3(url: str, driver: str) -> None:
    parsed = database_url(url)
    assert parsed.drivername == driver
    assert parsed.password == sa.make_url(url).password  # nothing else changes


def test_engines_for_postgresql_urls_without_a_driver_use_psycopg_3() -> None:
    engine = make_engine("postgresql://u@127.0.0.1:5432/d")  # connects to nothing yet
    try:
        assert (engine.dialect.name, engine.dialect.driver) == ("postgresql", "psycopg")
    finally:
        engine.dispose()
