"""The migrations build exactly the schema the models describe, from an empty database."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.migrate import upgrade
from storage.models import Base

TABLES = {"respondents", "conversations", "assessments", "answers", "inbox", "outbox"}


def schema_differences(engine: sa.Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_migrating_an_empty_database_gives_the_models_schema(engine: sa.Engine) -> None:
    assert set(sa.inspect(engine).get_table_names()) >= TABLES
    assert schema_differences(engine) == []


def test_upgrading_again_changes_nothing(database_url: str, engine: sa.Engine) -> None:
    upgrade(database_url)
    assert schema_differences(engine) == []
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all() == [
            "0001"
        ]


def test_the_comparison_sees_a_model_the_migrations_lack(engine: sa.Engine) -> None:
    extended = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(extended)
    sa.Table("not_migrated", extended, sa.Column("id", sa.Integer, primary_key=True))
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        differences = compare_metadata(context, extended)
    assert [difference[0] for difference in differences] == ["add_table"]


def test_a_migrated_database_in_a_new_directory(tmp_path: Path) -> None:
    database = tmp_path / "var" / "nested" / "dibot.db"
    upgrade(f"sqlite:///{database}")
    assert database.exists()
