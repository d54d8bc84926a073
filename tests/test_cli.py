"""The `dibot` console command, run as an operator runs it: a real process each time."""

from __future__ import annotations

import os
import select
import signal
import sqlite3
import subprocess
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from dibot.cli import gunicorn_server
from dibot.config import Config, CouncilConfig
from dibot.runtime import load_configured_flow
from storage.database import SQLITE_BUSY_TIMEOUT_MS, make_engine
from storage.migrate import script_revisions
from tests.fake_telegram import FakeTelegram
from tests.processes import (
    DIBOT,
    STARTUP_LIMIT_SECONDS,
    STOP_LIMIT_SECONDS,
    environment,
    free_port,
    wait_for_health,
)


def dibot(
    *arguments: str, cwd: Path, stdin: str = "", **settings: str
) -> subprocess.CompletedProcess[str]:
    assert DIBOT is not None, "the dibot console script is not installed in this environment"
    return subprocess.run(
        [DIBOT, *arguments],
        cwd=cwd,
        env=environment(**settings),
        input=stdin,
        capture_output=True,
        text=True,
        timeout=STARTUP_LIMIT_SECONDS,
        check=False,
    )


def tables(database: Path) -> set[str]:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        return {name for (name,) in rows}


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = dibot("--help", cwd=tmp_path)
    assert result.returncode == 0
    for command in ("serve", "db", "chat", "telegram", "worker"):
        assert command in result.stdout


def test_version_is_the_installed_distributions(tmp_path: Path) -> None:
    result = dibot("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"dibot {version('dibot')}\n"


def test_db_upgrade_creates_the_sqlite_database_and_its_directory(tmp_path: Path) -> None:
    database = tmp_path / "nested" / "dir" / "dibot.db"
    result = dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 0, result.stderr
    assert {"respondents", "conversations", "answers", "inbox", "outbox"} <= tables(database)
    again = dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=f"sqlite:///{database}")
    assert again.returncode == 0, again.stderr


def test_config_errors_are_one_line_and_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "dibot.toml"
    config.write_text("[server]\nprot = 80\n", encoding="utf-8")
    unknown_key = dibot("db", "upgrade", "--config", str(config), cwd=tmp_path)
    wrong_type = dibot("serve", cwd=tmp_path, DIBOT_SERVER_PORT="eighty")
    missing = dibot("chat", "--config", str(tmp_path / "absent.toml"), cwd=tmp_path)
    for result, words in (
        (unknown_key, "unknown key 'prot'"),
        (wrong_type, "port must be a whole number"),
        (missing, "does not exist"),
    ):
        assert result.returncode == 2
        assert words in result.stderr
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


def test_an_unreachable_database_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/test"
    result = dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=url)
    assert result.returncode == 1
    assert result.stderr.startswith("dibot: cannot use the database")
    assert "Traceback" not in result.stderr


def test_chat_answers_in_the_terminal(tmp_path: Path) -> None:
    database = tmp_path / "chat.db"
    result = dibot(
        "chat",
        cwd=tmp_path,
        stdin="Hello\n1\n1\n",
        DIBOT_DATABASE_URL=f"sqlite:///{database}",
        DIBOT_COUNCIL_NAME="Testshire Council",
    )
    assert result.returncode == 0, result.stderr
    assert "Testshire Council" in result.stdout
    assert "Which check would you like?" in result.stdout


def serve_until_healthy(cwd: Path, **settings: str) -> tuple[int, object, int | None, str]:
    """`dibot serve` until /healthz answers, then SIGTERM: (status, body, exit status, stderr)."""
    assert DIBOT is not None
    port = free_port()
    server = subprocess.Popen(
        [DIBOT, "serve"],
        cwd=cwd,
        env=environment(DIBOT_SERVER_PORT=str(port), **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        status, body = wait_for_health(f"http://127.0.0.1:{port}/healthz", server)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            _, errors = server.communicate(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            _, errors = server.communicate()
    return status, body, server.returncode, errors


def test_serve_answers_healthz_on_the_configured_port(tmp_path: Path, database_url: str) -> None:
    status, body, returncode, errors = serve_until_healthy(
        tmp_path, DIBOT_DATABASE_URL=database_url, DIBOT_SERVER_WORKERS="2"
    )
    assert status == 200, errors
    assert body == {"status": "ok", "database": "ok"}
    assert returncode == 0, errors
    assert PLACEHOLDERS_WARNING.format("name, privacy_url, helpline") in errors.splitlines()


def test_a_database_directory_that_cannot_be_made_is_one_line(tmp_path: Path) -> None:
    url = "sqlite:////proc/no-such-dir/dibot.db"
    result = dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=url)
    assert result.returncode == 1
    assert result.stderr.startswith("dibot: ")
    assert "Traceback" not in result.stderr


def test_chat_in_welsh_starts_without_asking_the_language(tmp_path: Path) -> None:
    database = tmp_path / "chat.db"
    result = dibot(
        "chat",
        "--lang",
        "cy",
        cwd=tmp_path,
        stdin="Helo\n1\n",
        DIBOT_DATABASE_URL=f"sqlite:///{database}",
        DIBOT_COUNCIL_CY_NAME="Cyngor Testshire",
    )
    assert result.returncode == 0, result.stderr
    assert "Helo, Cyngor Testshire sydd yma." in result.stdout
    assert "Pa wiriad hoffech chi ei wneud?" in result.stdout
    assert "Choose a language" not in result.stdout


def test_chat_in_a_language_the_flow_does_not_have_is_one_line(tmp_path: Path) -> None:
    result = dibot(
        "chat", "--lang", "fr", cwd=tmp_path, DIBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'c.db'}"
    )
    assert result.returncode == 2
    assert result.stderr.strip() == "dibot: no language 'fr' in the flow (it has ['en', 'cy'])"


@pytest.mark.parametrize(
    ("command", "settings", "words"),
    [
        (
            ("db", "upgrade"),
            {"DIBOT_DATABASE_URL": "postgresql+psycopg2://dibot:hunter2@127.0.0.1/dibot"},
            "dibot: [database] url names 'postgresql+psycopg2': dibot supports SQLite and"
            " PostgreSQL only (use sqlite:///… or postgresql://…)",
        ),
        (
            ("db", "upgrade"),
            {"DIBOT_DATABASE_URL": "mysql://dibot:hunter2@127.0.0.1/dibot"},
            "[database] url names 'mysql'",
        ),
        (
            ("serve",),
            {"DIBOT_DATABASE_URL": "dibot:hunter2@127.0.0.1"},
            "dibot: [database] url is not a database URL: use sqlite:///… or postgresql://…",
        ),
        (("serve",), {"DIBOT_SERVER_PORT": "70000"}, "port must be from 1 to 65535, not 70000"),
        (("serve",), {"DIBOT_SERVER_PORT": "0"}, "port must be from 1 to 65535, not 0"),
        (("serve",), {"DIBOT_SERVER_WORKERS": "0"}, "workers must be at least 1, not 0"),
        (
            ("serve",),
            {"DIBOT_TWILIO_AUTHTOKEN": "hunter2"},
            "environment variable DIBOT_TWILIO_AUTHTOKEN names no setting;"
            " [twilio] is set by DIBOT_TWILIO_ACCOUNT_SID, DIBOT_TWILIO_AUTH_TOKEN",
        ),
        (
            ("chat",),
            {"DIBOT_COUNCIL_FR_NAME": "Conseil"},
            "gives texts in 'fr', which the flow does not offer (it offers en, cy)",
        ),
        (
            ("serve",),
            {"DIBOT_COUNCIL_CY_NAME": "Cyngor", "DIBOT_FLOW_LANGUAGES": "en"},
            "gives texts in 'cy', which the flow does not offer (it offers en)",
        ),
    ],
    ids=[
        "psycopg2",
        "mysql",
        "malformed-url",
        "port-70000",
        "port-0",
        "no-workers",
        "misspelt-variable",
        "council-language-not-in-flow",
        "council-language-not-offered",
    ],
)
def test_unusable_settings_are_one_line_and_exit_2(
    tmp_path: Path, command: tuple[str, ...], settings: dict[str, str], words: str
) -> None:
    settings.setdefault("DIBOT_DATABASE_URL", f"sqlite:///{tmp_path / 'dibot.db'}")
    result = dibot(*command, cwd=tmp_path, **settings)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("dibot: ")
    assert words in result.stderr
    assert "hunter2" not in result.stderr


def test_serve_lets_a_webhook_run_to_its_limits() -> None:
    """gunicorn kills a worker busy longer than `timeout`. A webhook may wait for the SQLite
    write lock, then take its turn (no webhook calls a provider: Telegram's replies go from the
    worker): that must fit, and a shutdown must let it finish."""
    webhook_limit = SQLITE_BUSY_TIMEOUT_MS / 1000
    settings = gunicorn_server(Config(), app=None).cfg
    assert settings.timeout > webhook_limit
    assert settings.graceful_timeout >= settings.timeout
    assert settings.worker_class_str == "BufferingWorker"  # a sync worker fed whole requests


def test_a_database_without_dibots_tables_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """PostgreSQL nobody migrated (when the run uses it), or an SQLite file whose tables are
    gone although it claims to be migrated: one line either way."""
    url = os.environ.get("DIBOT_DATABASE_URL", "")
    if url.startswith("postgresql"):
        engine = make_engine(url, poolclass=sa.NullPool)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE")
            conn.exec_driver_sql("CREATE SCHEMA public")
        engine.dispose()
    else:
        database = tmp_path / "emptied.db"
        url = f"sqlite:///{database}"
        assert dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=url).returncode == 0
        with sqlite3.connect(database) as connection:
            connection.execute("DROP TABLE answers")
    result = dibot("chat", cwd=tmp_path, stdin="Hello\n1\n1\n1\n1\n", DIBOT_DATABASE_URL=url)
    assert result.returncode == 1, result.stderr
    assert result.stderr.startswith("dibot: ")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("language", ["en", "cy"])
def test_chat_with_a_language_starts_in_it_without_asking(tmp_path: Path, language: str) -> None:
    council = CouncilConfig(
        name="Testshire Council", translations={"cy": {"name": "Cyngor Testshire"}}
    )
    consent = load_configured_flow(Config(council=council)).prompts["consent"].text[language]
    result = dibot(
        "chat",
        "--lang",
        language,
        cwd=tmp_path,
        stdin="Hello\n",
        DIBOT_DATABASE_URL=f"sqlite:///{tmp_path / 'chat.db'}",
        DIBOT_COUNCIL_NAME="Testshire Council",
        DIBOT_COUNCIL_CY_NAME="Cyngor Testshire",
    )
    assert (result.returncode, result.stderr) == (0, "")
    first_reply = result.stdout.split("\n\n")[0]
    assert first_reply.startswith(consent)
    assert "Choose a language" not in result.stdout
    assert "Dewiswch iaith" not in result.stdout


@pytest.mark.parametrize(
    ("statement", "words"),
    [
        ("DROP TABLE alembic_version", "the database is not migrated"),
        ("DELETE FROM alembic_version", "the database is not migrated"),
        ("UPDATE alembic_version SET version_num = 'ffff'", "was it migrated by a newer dibot?"),
    ],
    ids=["never-migrated", "at-base", "newer-revision"],
)
def test_serve_refuses_a_database_not_at_the_latest_migration(
    tmp_path: Path, database_url: str, statement: str, words: str
) -> None:
    engine = make_engine(database_url, poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(statement)
    engine.dispose()
    result = dibot("serve", cwd=tmp_path, DIBOT_DATABASE_URL=database_url)
    assert result.returncode == 1, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stderr.startswith("dibot: ")
    assert words in result.stderr


def test_serve_refuses_an_sqlite_file_never_migrated_and_leaves_no_file(tmp_path: Path) -> None:
    database = tmp_path / "var" / "dibot.db"
    result = dibot("serve", cwd=tmp_path, DIBOT_DATABASE_URL=f"sqlite:///{database}")
    assert result.returncode == 1
    assert result.stderr == "dibot: the database is not migrated; run `dibot db upgrade` first\n"
    assert not database.parent.exists()


SCRATCH_SCHEMA = "dibot_cli_url"


@pytest.fixture
def driverless_postgresql_url() -> Iterator[str]:
    """`postgresql://…` (no driver) for the run's PostgreSQL database (or the CI default),
    inside a scratch schema dropped before and after, so a PostgreSQL run's own tests are
    untouched. Skipped only when no PostgreSQL server answers."""
    given = os.environ.get("DIBOT_DATABASE_URL", "")
    url = make_url(
        given if given.startswith("postgresql") else "postgresql://postgres@127.0.0.1:5432/test"
    )
    admin = make_engine(url, poolclass=sa.NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
            conn.exec_driver_sql(f"CREATE SCHEMA {SCRATCH_SCHEMA}")
    except OperationalError as error:
        admin.dispose()
        pytest.skip(f"no PostgreSQL server: {error.orig}")
    scratch = url.set(drivername="postgresql").update_query_dict(
        {"options": f"-csearch_path={SCRATCH_SCHEMA}"}
    )
    try:
        yield scratch.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {SCRATCH_SCHEMA} CASCADE")
        admin.dispose()


def test_db_upgrade_takes_a_postgresql_url_without_a_driver(
    tmp_path: Path, driverless_postgresql_url: str
) -> None:
    assert driverless_postgresql_url.startswith("postgresql://")
    result = dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=driverless_postgresql_url)
    assert (result.returncode, result.stderr) == (0, "")
    engine = make_engine(driverless_postgresql_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            revision = conn.exec_driver_sql("SELECT version_num FROM alembic_version").scalar()
            tables = conn.exec_driver_sql(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = %(schema)s",
                {"schema": SCRATCH_SCHEMA},
            ).scalars()
            assert {revision} == script_revisions().heads
            assert {"alembic_version", "respondents", "answers"} <= set(tables)
    finally:
        engine.dispose()


PLACEHOLDERS_WARNING = (
    "dibot: warning: council texts are still the shipped placeholders ({}): set them in"
    " [council] before residents use this"
)


def first_line_on_stderr(*arguments: str, cwd: Path, **settings: str) -> str:
    """Start a long-running `dibot` command, take the first line it writes to stderr, stop it."""
    assert DIBOT is not None
    process = subprocess.Popen(
        [DIBOT, *arguments],
        cwd=cwd,
        env=environment(**settings),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    assert process.stderr is not None
    try:
        ready, _, _ = select.select([process.stderr], [], [], STARTUP_LIMIT_SECONDS)
        return process.stderr.readline() if ready else ""
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=STOP_LIMIT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()


@pytest.mark.parametrize("command", [("worker",), ("telegram",)])
def test_telegram_services_warn_of_placeholder_council_texts(
    tmp_path: Path, database_url: str, fake: FakeTelegram, command: tuple[str, ...]
) -> None:
    line = first_line_on_stderr(
        *command,
        cwd=tmp_path,
        DIBOT_DATABASE_URL=database_url,
        DIBOT_TELEGRAM_BOT_TOKEN=fake.token,
        DIBOT_TELEGRAM_API_BASE_URL=fake.base_url,
        DIBOT_COUNCIL_NAME="Testshire Council",
    )
    assert line == PLACEHOLDERS_WARNING.format("privacy_url, helpline") + "\n"


def test_serve_with_the_council_texts_set_does_not_warn(tmp_path: Path, database_url: str) -> None:
    status, _, _, errors = serve_until_healthy(
        tmp_path,
        DIBOT_DATABASE_URL=database_url,
        DIBOT_COUNCIL_NAME="Testshire Council",
        DIBOT_COUNCIL_PRIVACY_URL="testshire.gov.uk/privacy",
        DIBOT_COUNCIL_HELPLINE="07700 900103",
    )
    assert status == 200, errors
    assert "council texts" not in errors
    upgrade = dibot("db", "upgrade", cwd=tmp_path, DIBOT_DATABASE_URL=database_url)
    chat = dibot("chat", cwd=tmp_path, stdin="Hello\n", DIBOT_DATABASE_URL=database_url)
    assert (upgrade.stderr, chat.stderr) == ("", "")  # only the services residents reach warn


def test_worker_once_says_when_sms_wait_for_twilio_settings(
    tmp_path: Path, database_url: str
) -> None:
    settings = {"DIBOT_DATABASE_URL": database_url, "DIBOT_OUTREACH_QUIET_HOURS": ""}
    enrolled = dibot("enrol", "--phone", "07700 900123", cwd=tmp_path, **settings)
    assert enrolled.returncode == 0, enrolled.stderr
    worker = dibot("worker", "--once", cwd=tmp_path, **settings)
    assert worker.returncode == 0, worker.stderr
    assert worker.stdout == (
        "worker: 0 check-ins invited (0 skipped), 0 reminders queued; "
        "messages handed to providers: none\n"
    )
    assert "1 SMS wait in the outbox and Twilio sending is not configured" in worker.stderr
    assert "07700" not in worker.stderr + worker.stdout
