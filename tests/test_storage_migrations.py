"""The migrations build exactly the schema the models describe, from an empty database; a
database never migrated, behind the scripts or ahead of them is told apart from a current one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from storage.migrate import (
    BEHIND,
    CURRENT,
    MIGRATIONS,
    UNKNOWN,
    SchemaNotCurrent,
    alembic_config,
    current_revisions,
    require_current_schema,
    script_revisions,
    stored_revisions,
    upgrade,
)
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
        stored = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars().all()
    assert stored == sorted(script_revisions().heads)


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


NEXT = "next"
NEXT_REVISION = '''"""A later migration, only in the tests' copy of the scripts."""

revision = "next"
down_revision = {head!r}


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
'''


def shipped_head() -> str:
    [head] = script_revisions().heads
    return head


@pytest.fixture
def newer_scripts(tmp_path: Path) -> Path:
    """A copy of the migration scripts with one more revision (NEXT) on top of the latest."""
    scripts = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, scripts, ignore=shutil.ignore_patterns("__pycache__"))
    next_revision = NEXT_REVISION.format(head=shipped_head())
    (scripts / "versions" / "9999_next.py").write_text(next_revision, encoding="utf-8")
    return scripts


def revisions(engine: sa.Engine) -> tuple[frozenset[str], frozenset[str]]:
    """What Alembic reads, and what the health check's single SELECT reads."""
    with engine.connect() as conn:
        return current_revisions(conn), stored_revisions(conn)


def test_a_migrated_database_is_current(engine: sa.Engine, database_url: str) -> None:
    alembic_reads, one_select_reads = revisions(engine)
    assert alembic_reads == one_select_reads == frozenset({shipped_head()})
    assert script_revisions().state(alembic_reads) == CURRENT
    require_current_schema(database_url)


def test_a_database_behind_the_scripts_is_behind(
    engine: sa.Engine, database_url: str, newer_scripts: Path
) -> None:
    at_head, _ = revisions(engine)
    assert script_revisions(newer_scripts).state(at_head) == BEHIND
    with pytest.raises(SchemaNotCurrent) as error:
        require_current_schema(database_url, scripts=newer_scripts)
    assert str(error.value) == (
        f"the database schema is behind (at {shipped_head()}, the latest is {NEXT}); "
        "run `dibot db upgrade` first"
    )


def test_a_database_ahead_of_the_scripts_is_unknown(
    engine: sa.Engine, database_url: str, newer_scripts: Path
) -> None:
    with engine.begin() as conn:
        config = alembic_config(database_url, scripts=newer_scripts)
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    at_next, one_select_reads = revisions(engine)
    assert at_next == one_select_reads == frozenset({NEXT})
    assert script_revisions(newer_scripts).state(at_next) == CURRENT
    assert script_revisions().state(at_next) == UNKNOWN
    with pytest.raises(SchemaNotCurrent, match=f"at {NEXT}, which this dibot does not have"):
        require_current_schema(database_url)


def test_a_database_never_migrated_has_no_revision(engine: sa.Engine, database_url: str) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE alembic_version")
    assert revisions(engine) == (frozenset(), frozenset())
    assert script_revisions().state(frozenset()) == BEHIND
    with pytest.raises(SchemaNotCurrent) as error:
        require_current_schema(database_url)
    assert str(error.value) == "the database is not migrated; run `dibot db upgrade` first"


def test_checking_an_sqlite_file_that_does_not_exist_does_not_create_it(tmp_path: Path) -> None:
    database = tmp_path / "var" / "dibot.db"
    with pytest.raises(SchemaNotCurrent, match="not migrated"):
        require_current_schema(f"sqlite:///{database}")
    assert not database.parent.exists()
