"""Apply the schema migrations (`dibot db upgrade`), and tell whether a database is at the latest.

The migration scripts ship inside the `storage` package, so this works the same from a
checkout and from an installed wheel. All pending migrations run in one transaction. Nothing
but `upgrade` writes: a database that is never migrated, behind the scripts, or at a revision
they do not have (a newer dibot's) is reported, never changed, and is not at the latest.

Migrations that touch personal data get the encryption keys from `upgrade` (a migration that
needs none never asks, so none are looked for). On SQLite they run with foreign keys off (a
table rebuilt by batch mode must not cascade its drop into its children), checked after. A
migration that rewrote clear values asks for the database to be compacted after the commit, so
no free page or WAL frame keeps the clear text. An SQLite database's files end up 0600.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from storage.database import database_url, make_engine, make_private, read_only
from storage.privacy import KEY_VARIABLE, Keys, database_keys

MIGRATIONS = Path(__file__).parent / "migrations"
VERSION_TABLE = "alembic_version"
"""Alembic's record of the revisions a database is at (its default name)."""
SELECT_REVISIONS = sa.select(sa.column("version_num", sa.String)).select_from(
    sa.table(VERSION_TABLE)
)
CURRENT, BEHIND, UNKNOWN = "current", "behind", "unknown"


def alembic_config(url: str | None = None, scripts: Path = MIGRATIONS) -> Config:
    """Alembic's configuration for our scripts (also for `command.revision` when developing)."""
    config = Config()
    config.set_main_option("script_location", str(scripts))
    if url is not None:
        # configparser interpolation: a literal % (as in URL-encoded passwords) must be doubled
        config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


KEYS_ATTRIBUTE = "privacy_keys"
COMPACT_ATTRIBUTE = "compact_after"


def upgrade(
    url: str, revision: str = "head", keys: Keys | Callable[[], Keys] | None = None
) -> None:
    """Bring the database at `url` up to `revision` (default: the latest). A migration that
    needs the encryption keys gets `keys`, or else the default ones (`storage.privacy`), an
    SQLite key file being created if the database holds nothing encrypted yet. `keys` may be a
    function giving them, called only if a migration needs them."""
    engine = make_engine(url, poolclass=sa.NullPool)
    config = alembic_config(url)
    config.attributes[KEYS_ATTRIBUTE] = _keys_provider(url, keys)
    try:
        _migrate(engine, config, revision)
        _compact(engine, config.attributes.get(COMPACT_ATTRIBUTE, ()))
    finally:
        engine.dispose()
    make_private(url)


def _keys_provider(url: str, keys: Keys | Callable[[], Keys] | None) -> Callable[[], Keys]:
    if isinstance(keys, Keys):
        given = keys
        return lambda: given
    if keys is not None:
        return keys
    return lambda: database_keys(url, os.environ.get(KEY_VARIABLE, ""), create=True)


def _migrate(engine: sa.Engine, config: Config, revision: str) -> None:
    with migrating(engine) as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


@contextmanager
def migrating(engine: sa.Engine) -> Iterator[sa.Connection]:
    """A connection in a transaction for migrations: on SQLite with foreign keys off (batch
    mode rebuilds a table by dropping it, which would cascade into its children), and every
    foreign key checked before the commit."""
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # outside any transaction, where SQLite honours it
            driver = connection.connection.driver_connection
            driver.execute("PRAGMA foreign_keys=OFF")  # type: ignore[union-attr]
        with connection.begin():
            yield connection
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                raise RuntimeError("the migration left rows whose foreign keys point nowhere")


def _compact(engine: sa.Engine, tables: Collection[str]) -> None:
    """Rewrite the database without the pages that held clear values (after the commit)."""
    if not tables:
        return
    if engine.dialect.name == "sqlite":
        with engine.connect() as connection:
            raw = connection.connection.driver_connection
            raw.execute("VACUUM")  # type: ignore[union-attr]
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # type: ignore[union-attr]
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql(f"VACUUM FULL {', '.join(tables)}")


@dataclass(frozen=True)
class ScriptRevisions:
    heads: frozenset[str]
    """The revisions of a database that is at the latest (one, unless the scripts branch)."""
    known: frozenset[str]

    def state(self, revisions: Collection[str]) -> str:
        """CURRENT at the heads; BEHIND when never migrated or at older revisions of these
        scripts; UNKNOWN at a revision they do not have."""
        if frozenset(revisions) == self.heads:
            return CURRENT
        return BEHIND if self.known.issuperset(revisions) else UNKNOWN


@functools.cache
def script_revisions(scripts: Path = MIGRATIONS) -> ScriptRevisions:
    """The scripts' revisions, read once per process (they ship with the code)."""
    directory = ScriptDirectory.from_config(alembic_config(scripts=scripts))
    known = frozenset(script.revision for script in directory.walk_revisions())
    return ScriptRevisions(heads=frozenset(directory.get_heads()), known=known)


def current_revisions(connection: sa.Connection) -> frozenset[str]:
    """The revisions the database is at, as Alembic reads them (none: never migrated)."""
    return frozenset(MigrationContext.configure(connection).get_current_heads())


def stored_revisions(connection: sa.Connection) -> frozenset[str]:
    """The same in one SELECT, for checks that run often (the health check); only a database
    without the version table costs a second look."""
    try:
        return frozenset(connection.execute(SELECT_REVISIONS).scalars())
    except DBAPIError:
        connection.rollback()
        if sa.inspect(connection).has_table(VERSION_TABLE):
            raise
        return frozenset()


class SchemaNotCurrent(Exception):
    """The database is not at the latest migration; the message says what to do."""


def require_current_schema(url: str, scripts: Path = MIGRATIONS) -> None:
    """Raise SchemaNotCurrent unless the database at `url` is at the latest migration of
    `scripts`. It only reads, and an SQLite file that does not exist is not created."""
    parsed = database_url(url)
    database = parsed.database or ""
    missing_file = parsed.get_backend_name() == "sqlite" and not (
        database.startswith("file:") or Path(database).expanduser().is_file()
    )
    revisions = frozenset() if missing_file else _read_revisions(url)
    known = script_revisions(scripts)
    state = known.state(revisions)
    if state == CURRENT:
        return
    if not revisions:
        raise SchemaNotCurrent("the database is not migrated; run `dibot db upgrade` first")
    at, latest = ", ".join(sorted(revisions)), ", ".join(sorted(known.heads))
    if state == BEHIND:
        raise SchemaNotCurrent(
            f"the database schema is behind (at {at}, the latest is {latest}); "
            "run `dibot db upgrade` first"
        )
    raise SchemaNotCurrent(
        f"the database schema is at {at}, which this dibot does not have (the latest it has "
        f"is {latest}): was it migrated by a newer dibot?"
    )


def _read_revisions(url: str) -> frozenset[str]:
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as connection:
            return current_revisions(read_only(connection))
    finally:
        engine.dispose()
