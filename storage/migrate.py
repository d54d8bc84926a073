"""Apply the schema migrations (`dibot db upgrade`), and tell whether a database is at the latest.

The migration scripts ship inside the `storage` package, so this works the same from a
checkout and from an installed wheel. All pending migrations run in one transaction. Nothing
but `upgrade` writes: a database that is never migrated, behind the scripts, or at a revision
they do not have (a newer dibot's) is reported, never changed, and is not at the latest.
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.exc import DBAPIError

from storage.database import database_url, make_engine, read_only

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


def upgrade(url: str, revision: str = "head") -> None:
    """Bring the database at `url` up to `revision` (default: the latest)."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            config = alembic_config(url)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()


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
