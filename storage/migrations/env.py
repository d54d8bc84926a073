"""Alembic's environment: migrations run in one transaction, on the connection that
`storage.migrate` hands over, or else on an engine built by `storage.database.make_engine`
from the configured URL, so SQLite gets the same set-up as the service (and, as with
`storage.migrate.upgrade`, its foreign keys off while migrating: see `migrating`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from storage.database import make_engine
from storage.migrate import migrating
from storage.models import Base

config = context.config


def run_migrations(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if isinstance(connection, sa.Connection):
        run_migrations(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("no database URL: set sqlalchemy.url or use storage.migrate.upgrade")
    engine = make_engine(url)
    try:
        with migrating(engine) as connection:
            run_migrations(connection)
    finally:
        engine.dispose()


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=Base.metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
