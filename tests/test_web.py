"""The web service around the channels: health check, security headers, the app factory."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from dibot.config import (
    Config,
    ConfigError,
    CouncilConfig,
    DatabaseConfig,
    FlowConfig,
    TwilioConfig,
)
from dibot.runtime import Runtime
from dibot.web import SECURITY_HEADERS, create_app
from flows.loader import FlowError
from flows.model import Flow
from storage.migrate import upgrade
from tests.processes import free_port
from tests.test_twilio_webhook import TOKEN, inbound, running_app


@pytest.fixture
def app(database_url: str, flow: Flow) -> Iterator[Flask]:
    config = Config(
        database=DatabaseConfig(url=database_url), twilio=TwilioConfig(auth_token=TOKEN)
    )
    with running_app(config, flow) as app:
        yield app


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def test_healthz_reports_a_reachable_database(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    ("statement", "schema"),
    [
        pytest.param("DROP TABLE alembic_version", "behind", id="never-migrated"),
        pytest.param("DELETE FROM alembic_version", "behind", id="behind"),
        pytest.param("UPDATE alembic_version SET version_num = 'ffff'", "unknown", id="newer"),
    ],
)
def test_healthz_is_503_when_the_schema_is_not_the_latest(
    client: FlaskClient, engine: sa.Engine, statement: str, schema: str
) -> None:
    assert client.get("/healthz").status_code == 200
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "ok", "schema": schema}


def test_healthz_reads_the_schema_revision_in_one_select(app: Flask) -> None:
    """It runs often: one statement a call (SQLite's deferred BEGIN aside), and it only reads."""
    client = app.test_client()
    client.get("/healthz")  # the pool's first connection, and the scripts read once
    runtime: Runtime = app.extensions["dibot"]
    statements: list[str] = []

    @sa.event.listens_for(runtime.engine, "before_cursor_execute")
    def seen(*arguments: object) -> None:
        statements.append(str(arguments[2]).strip())

    for _ in range(3):
        assert client.get("/healthz").status_code == 200
    queries = [statement for statement in statements if statement != "BEGIN"]
    assert len(queries) == 3
    assert {query.split()[0] for query in queries} == {"SELECT"}
    assert all("alembic_version" in query for query in queries)


@pytest.mark.parametrize(
    "url",
    [
        pytest.param(
            "postgresql+psycopg://dibot:hunter2-secret@127.0.0.1:{port}/dibot", id="postgres-down"
        ),
        pytest.param("sqlite:////proc/no-such-dir/dibot.db", id="sqlite-unwritable-dir"),
    ],
)
def test_healthz_is_503_when_the_database_is_unreachable(
    flow: Flow, caplog: pytest.LogCaptureFixture, url: str
) -> None:
    config = Config(database=DatabaseConfig(url=url.format(port=free_port())))
    app = create_app(config, flow=flow)  # builds no engine, connects to nothing
    with caplog.at_level(logging.DEBUG):
        response = app.test_client().get("/healthz")
    assert response.status_code == 503
    assert response.get_json() == {"status": "error", "database": "unreachable"}
    assert "hunter2" not in caplog.text
    assert "hunter2" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/no-such-page"),
        ("POST", "/webhooks/twilio/sms"),  # unsigned: 403
        ("GET", "/webhooks/twilio/sms"),  # 405
    ],
)
def test_every_response_carries_the_security_headers(
    client: FlaskClient, method: str, path: str
) -> None:
    response = client.open(path, method=method, data=inbound("Hello"))
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value
    csp = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


def test_an_oversized_request_is_refused_before_it_is_read(client: FlaskClient) -> None:
    response = client.post("/webhooks/twilio/sms", data={"Body": "x" * (300 * 1024)})
    assert response.status_code == 413


def test_a_broken_flow_stops_the_app_from_being_made(tmp_path: Path) -> None:
    (tmp_path / "flow.toml").write_text('id = "broken"\n', encoding="utf-8")
    with pytest.raises(FlowError):
        create_app(Config(flow=FlowConfig(path=str(tmp_path))))


def test_healthz_answers_while_a_turn_holds_the_sqlite_write_lock(
    tmp_path: Path, flow: Flow
) -> None:
    """The write lock is held from before the first request until after the last, so a health
    check that waited for it (BEGIN IMMEDIATE, up to the busy timeout) could not answer 200."""
    database = tmp_path / "dibot.db"
    upgrade(f"sqlite:///{database}")
    config = Config(database=DatabaseConfig(url=f"sqlite:///{database}"))
    turn = sqlite3.connect(database, isolation_level=None, timeout=0)
    try:
        turn.execute("BEGIN IMMEDIATE")
        turn.execute("DELETE FROM outbox")  # a writer mid-turn
        with running_app(config, flow) as app:
            client = app.test_client()
            first = client.get("/healthz")  # a new connection, set up while the lock is held
            second = client.get("/healthz")  # the pooled one
        assert turn.in_transaction
        turn.execute("COMMIT")
    finally:
        turn.close()
    for response in (first, second):
        assert response.status_code == 200
        assert response.get_json() == {"status": "ok", "database": "ok"}


@pytest.mark.parametrize(
    ("languages", "language", "message"),
    [
        ("", "fr", "gives texts in 'fr', which the flow does not offer (it offers en, cy)"),
        ("en", "cy", "gives texts in 'cy', which the flow does not offer (it offers en);"),
    ],
)
def test_council_texts_in_a_language_the_flow_does_not_offer_stop_the_app(
    languages: str, language: str, message: str
) -> None:
    config = Config(
        council=CouncilConfig(translations={language: {"name": "Conseil de Testshire"}}),
        flow=FlowConfig(languages=languages),
    )
    with pytest.raises(ConfigError) as error:
        create_app(config)
    assert str(error.value).startswith(f"[council.{language}] (or DIBOT_COUNCIL_")
    assert message in str(error.value)
