"""Apply the schema migrations (`dibot db upgrade`), programmatically and from any install.

The migration scripts ship inside the `storage` package, so this works the same from a
checkout and from an installed wheel. All pending migrations run in one transaction.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from storage.database import make_engine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for our scripts (also for `command.revision` when developing)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
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
