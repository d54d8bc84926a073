"""Migration 0003 on a database that already holds people in clear (made at 0002): every URN
comes out encrypted with its digest, every typed answer encrypted, nothing else lost (on SQLite
the rebuilt table must not cascade its drop), no clear value left in the files, and the
downgrade gives the clear values back."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command

from dibot.turns import TurnHandler
from flows.model import Flow
from storage.database import make_engine, sqlite_file
from storage.migrate import KEYS_ATTRIBUTE, alembic_config, migrating, upgrade
from storage.privacy import keys_of, open_privacy
from tests.conftest import DATABASE_URL_VARIABLE, reset_postgresql
from tests.turn_helpers import send

PHONE = "+447700900123"
URN = "tel:" + PHONE
TYPED = "Usualy, says Zebedee"
WHEN = datetime(2026, 11, 1, 9, 0, tzinfo=UTC).replace(tzinfo=None)
CHILD_TABLES = ("conversations", "assessments", "answers", "inbox", "outbox")
PHONE_FORMS = ("+447700900123", "447700900123", "07700900123")


@pytest.fixture
def old_url(tmp_path: Path) -> str:
    """A database at 0002 holding one respondent in clear, with a bit of everything."""
    url = os.environ.get(DATABASE_URL_VARIABLE) or f"sqlite:///{tmp_path / 'old.db'}"
    if url.startswith("postgres"):
        reset_postgresql(url)
    upgrade(url, "0002")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            _fill(conn)
    finally:
        engine.dispose()
    return url


def _fill(conn: sa.Connection) -> None:
    at = {"at": WHEN}
    statements = (
        "INSERT INTO respondents (urn, language, opted_out, unreachable, created_at)"
        f" VALUES ('{URN}', 'en', false, false, :at)",
        "INSERT INTO assessments (respondent_id, mode, flow_id, flow_version, started_at)"
        " SELECT id, 'quick', 'digital-inclusion', '2026.11.1', :at FROM respondents",
        "INSERT INTO conversations (respondent_id, assessment_id, flow_id, flow_version,"
        " state, created_at, updated_at) SELECT respondent_id, id, 'digital-inclusion',"
        " '2026.11.1', '{}', :at, :at FROM assessments",
        "INSERT INTO answers (assessment_id, question, item_id, aspect, option, score, raw,"
        " answered_at, channel, provider_message_id) SELECT id, 'BA01.access', 'BA01',"
        f" 'access', 4, 3, '{TYPED}', :at, 'sms', 'SM1' FROM assessments",
        "INSERT INTO inbox (channel, provider_message_id, respondent_id, received_at,"
        " replies) SELECT 'sms', 'SM1', id, :at, '[]' FROM respondents",
        "INSERT INTO outbox (channel, respondent_id, inbox_id, text, buttons, status,"
        " attempts, next_attempt_at, created_at, updated_at) SELECT 'sms', respondent_id, id,"
        " 'Thanks', '[]', 'sent', 1, :at, :at, :at FROM inbox",
    )
    for statement in statements:
        conn.execute(sa.text(statement), at)


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            name: conn.execute(sa.text(f"SELECT count(*) FROM {name}")).scalar_one()
            for name in ("respondents", *CHILD_TABLES)
        }


def held_in_clear(engine: sa.Engine, url: str, needles: tuple[str, ...]) -> list[str]:
    """Which of `needles` the database holds in clear: in its files' bytes (SQLite, with the
    WAL), or in its tables' contents as text (PostgreSQL)."""
    path = sqlite_file(url)
    if path is not None:
        data = b"".join(
            companion.read_bytes()
            for companion in (path, path.with_name(path.name + "-wal"))
            if companion.exists()
        )
        return [needle for needle in needles if needle.encode() in data]
    with engine.connect() as conn:
        names = sa.inspect(conn).get_table_names()
        text = "\n".join(
            str(row[0])
            for name in names
            for row in conn.execute(sa.text(f"SELECT t::text FROM {name} t"))
        )
    return [needle for needle in needles if needle in text]


def test_clear_rows_are_encrypted_and_nothing_is_lost(old_url: str, flow: Flow) -> None:
    upgrade(old_url)
    engine = make_engine(old_url)
    try:
        assert counts(engine) == dict.fromkeys(("respondents", *CHILD_TABLES), 1)
        privacy = open_privacy(engine)
        with engine.connect() as conn:
            cipher, digest = conn.execute(
                sa.text("SELECT urn_cipher, urn_digest FROM respondents")
            ).one()
            raw = conn.execute(sa.text("SELECT raw FROM answers")).scalar_one()
            columns = {c["name"] for c in sa.inspect(conn).get_columns("respondents")}
        assert "urn" not in columns
        assert privacy.decrypt(cipher) == URN
        assert bytes(digest) == privacy.digest(URN)
        assert keys_of(engine).decrypt(raw) == TYPED
        assert held_in_clear(engine, old_url, (*PHONE_FORMS, TYPED)) == []
        send(TurnHandler(engine, flow), URN, "Hi")  # the migrated respondent is found
        assert counts(engine)["respondents"] == 1
    finally:
        engine.dispose()


def test_on_sqlite_it_refuses_to_run_with_foreign_keys_on(old_url: str) -> None:
    if sqlite_file(old_url) is None:
        pytest.skip("SQLite only: PostgreSQL alters the table in place")
    engine = make_engine(old_url)
    try:
        config = alembic_config(old_url)
        config.attributes[KEYS_ATTRIBUTE] = lambda: keys_of(engine)
        with engine.begin() as conn:  # foreign keys on, as every service connection has them
            config.attributes["connection"] = conn
            with pytest.raises(RuntimeError, match="foreign keys off"):
                command.upgrade(config, "0003")
        assert counts(engine) == dict.fromkeys(("respondents", *CHILD_TABLES), 1)
    finally:
        engine.dispose()


def test_the_downgrade_gives_the_clear_values_back(old_url: str) -> None:
    upgrade(old_url, "0003")
    engine = make_engine(old_url)
    try:
        keys = keys_of(engine)
        with migrating(engine) as conn:
            config = alembic_config(old_url)
            config.attributes["connection"] = conn
            config.attributes[KEYS_ATTRIBUTE] = lambda: keys
            command.downgrade(config, "0002")
        with engine.connect() as conn:
            urn = conn.execute(sa.text("SELECT urn FROM respondents")).scalar_one()
            raw = conn.execute(sa.text("SELECT raw FROM answers")).scalar_one()
        assert (urn, raw) == (URN, TYPED)
        assert counts(engine) == dict.fromkeys(("respondents", *CHILD_TABLES), 1)
    finally:
        engine.dispose()
