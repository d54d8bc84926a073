"""Shared fixtures: a freshly migrated database per test, an engine on it, the shipped flow.

- `database_url`: an SQLite file in the test's tmp_path, migrated. When the environment sets
  DIBOT_DATABASE_URL (CI's second run: postgresql+psycopg://postgres@127.0.0.1:5432/test), that
  database instead: its `public` schema is dropped and recreated before each test, then
  migrated. Point it only at a scratch database. PostgreSQL must be given its encryption key:
  unless DIBOT_PRIVACY_ENCRYPTION_KEY is set, the run sets it to `TEST_KEY` (SQLite uses the
  key file `dibot db upgrade` makes beside the database).
- `engine`: `storage.database.make_engine(database_url)`, disposed after the test.
- `flow`: the shipped questionnaire in English only, loaded once per session.

Fixtures particular to one area belong in that area's test modules; the Telegram tests'
fake Bot API server (`fake`) is in telegram_fixtures.py, shared by six of them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from flows.loader import load_flow
from flows.model import Flow
from storage.database import make_engine
from storage.migrate import upgrade
from storage.privacy import KEY_VARIABLE
from tests.processes import TEST_KEY

DATABASE_URL_VARIABLE = "DIBOT_DATABASE_URL"
pytest_plugins = ["tests.telegram_fixtures", "tests.dashboard_support"]

if os.environ.get(DATABASE_URL_VARIABLE):
    os.environ.setdefault(KEY_VARIABLE, TEST_KEY)


def reset_postgresql(url: str) -> None:
    """Drop everything in the database's public schema."""
    if make_url(url).get_backend_name() != "postgresql":
        raise ValueError(f"{DATABASE_URL_VARIABLE} must be a PostgreSQL URL")
    engine = make_engine(url, poolclass=sa.NullPool)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
    finally:
        engine.dispose()


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    url = os.environ.get(DATABASE_URL_VARIABLE)
    if url:
        reset_postgresql(url)
    else:
        url = f"sqlite:///{tmp_path / 'dibot.db'}"
    upgrade(url)
    return url


@pytest.fixture
def engine(database_url: str) -> Iterator[sa.Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def flow() -> Flow:
    """English only: these tests are about storage and channels, not the language choice
    (which the transcripts and test_languages.py take through the bilingual default)."""
    return load_flow(languages=["en"])
