"""Staff accounts from the command line (`dibot staff add`, a real process), the dashboard's
secret key (a private file beside an SQLite database, made once; PostgreSQL must be given one),
and the [web] settings that are refused."""

from __future__ import annotations

import os
import stat
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import pytest
import sqlalchemy as sa
from flask import Flask

from dashboard.accounts import log_in
from dashboard.secret_key import configured_secret_key, secret_file
from dibot.config import Config, ConfigError, DatabaseConfig, load_config
from dibot.web import create_app
from flows.model import Flow
from storage.models import Staff, Team
from tests.processes import DIBOT, STARTUP_LIMIT_SECONDS, environment

PASSWORD = "correct horse battery"
NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def dibot(
    *arguments: str, cwd: Path, stdin: str, **settings: str
) -> subprocess.CompletedProcess[str]:
    assert DIBOT is not None
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


def staff_add(
    tmp_path: Path, database_url: str, *options: str, stdin: str = PASSWORD + "\n"
) -> subprocess.CompletedProcess[str]:
    return dibot(
        "staff", "add", *options, cwd=tmp_path, stdin=stdin, DIBOT_DATABASE_URL=database_url
    )


def staff_rows(engine: sa.Engine) -> list[tuple[str, str, str]]:
    staff = cast(sa.Table, Staff.__table__)
    teams = cast(sa.Table, Team.__table__)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(staff.c.email, staff.c.role, teams.c.name)
            .select_from(staff.join(teams))
            .order_by(staff.c.id)
        ).all()
    return [(row.email, row.role, row.name) for row in rows]


def test_the_first_admin_is_added_with_a_password_from_stdin(
    tmp_path: Path, database_url: str, engine: sa.Engine
) -> None:
    added = staff_add(
        tmp_path,
        database_url,
        "--email", "Admin@Example.gov.uk",
        "--team", "North",
        "--role", "admin",
        "--password-stdin",
    )  # fmt: skip
    assert (added.returncode, added.stderr) == (0, "")
    assert added.stdout == "staff added: admin@example.gov.uk (admin, team North)\n"
    worker = staff_add(
        tmp_path,
        database_url,
        "--email", "worker@example.gov.uk",
        "--team", "North",
        "--role", "worker",
        "--password-stdin",
    )  # fmt: skip
    assert worker.returncode == 0, worker.stderr
    assert staff_rows(engine) == [
        ("admin@example.gov.uk", "admin", "North"),
        ("worker@example.gov.uk", "worker", "North"),
    ]
    member = log_in(engine, "admin@example.gov.uk", PASSWORD, remote_address="127.0.0.1", now=NOW)
    assert member is not None
    assert member.team == "North"
    assert PASSWORD not in added.stdout + added.stderr


def test_the_password_is_asked_for_twice(
    tmp_path: Path, database_url: str, engine: sa.Engine
) -> None:
    options = ("--email", "admin@example.gov.uk", "--team", "North", "--role", "admin")
    different = staff_add(tmp_path, database_url, *options, stdin=f"{PASSWORD}\nsomething else\n")
    assert different.returncode == 2
    assert different.stderr.splitlines()[-1] == "dibot: the two passwords are not the same"
    same = staff_add(tmp_path, database_url, *options, stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert same.returncode == 0, same.stderr
    assert staff_rows(engine) == [("admin@example.gov.uk", "admin", "North")]


@pytest.mark.parametrize(
    ("email", "stdin", "message"),
    [
        ("not-an-email", PASSWORD, "dibot: 'not-an-email' is not an email address"),
        ("a@example.gov.uk", "too short", "dibot: the password must have at least 12 characters"),
        ("a@example.gov.uk", "x" * 20, "dibot: the password must not be one character repeated"),
        ("a@example.gov.uk", "", "dibot: --password-stdin: no password on stdin (one line)"),
    ],
)
def test_what_cannot_be_an_account_is_one_line_and_exit_2(
    tmp_path: Path, database_url: str, engine: sa.Engine, email: str, stdin: str, message: str
) -> None:
    refused = staff_add(
        tmp_path,
        database_url,
        "--email", email, "--team", "North", "--role", "admin", "--password-stdin",
        stdin=stdin + "\n" if stdin else "",
    )  # fmt: skip
    assert refused.returncode == 2
    assert refused.stderr == message + "\n"
    assert staff_rows(engine) == []


def test_an_email_with_an_account_already_is_refused(
    tmp_path: Path, database_url: str, engine: sa.Engine
) -> None:
    options = ("--team", "North", "--role", "admin", "--password-stdin")
    assert (
        staff_add(tmp_path, database_url, "--email", "a@example.gov.uk", *options).returncode == 0
    )
    again = staff_add(tmp_path, database_url, "--email", "A@example.gov.uk", *options)
    assert again.returncode == 2
    assert again.stderr == "dibot: a@example.gov.uk already has an account\n"
    assert len(staff_rows(engine)) == 1


def test_a_password_is_never_taken_as_an_argument(tmp_path: Path, database_url: str) -> None:
    refused = staff_add(
        tmp_path,
        database_url,
        "--email", "a@example.gov.uk", "--team", "North", "--role", "admin",
        "--password", PASSWORD,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "unrecognized arguments" in refused.stderr
    unknown_role = staff_add(
        tmp_path, database_url, "--email", "a@example.gov.uk", "--team", "N", "--role", "boss"
    )
    assert unknown_role.returncode == 2
    assert "invalid choice: 'boss'" in unknown_role.stderr


def test_the_secret_key_file_is_made_once_and_private(tmp_path: Path) -> None:
    config = Config(database=DatabaseConfig(url=f"sqlite:///{tmp_path / 'var' / 'dibot.db'}"))
    path = secret_file(config.database.url)
    assert path == tmp_path / "var" / "dibot.db.secret"
    key = configured_secret_key(config)
    assert len(key) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert configured_secret_key(config) == key
    assert path.read_text(encoding="ascii").strip() == key


def test_a_given_secret_key_is_used_and_no_file_is_made(tmp_path: Path) -> None:
    config = load_config(
        environ={
            "DIBOT_DATABASE_URL": f"sqlite:///{tmp_path / 'dibot.db'}",
            "DIBOT_WEB_SECRET_KEY": "s" * 40,
        }
    )
    assert configured_secret_key(config) == "s" * 40
    assert not (tmp_path / "dibot.db.secret").exists()


def test_postgresql_without_a_secret_key_is_refused(flow: Flow) -> None:
    config = Config(database=DatabaseConfig(url="postgresql://dibot@127.0.0.1:1/dibot"))
    with pytest.raises(ConfigError, match=r"\[web\] secret_key must be set for PostgreSQL"):
        configured_secret_key(config)
    app: Flask = create_app(config, flow=flow)  # the webhooks carry on; the dashboard says why
    response = app.test_client().get("/login")
    assert response.status_code == 503
    assert "secret_key" in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"DIBOT_WEB_COOKIE_SECURE": "false", "DIBOT_SERVER_HOST": "0.0.0.0"},
            "[web] cookie_secure may be false only when [server] host is 127.0.0.1 or localhost",
        ),
        ({"DIBOT_WEB_SECRET_KEY": "short"}, "[web] secret_key must be at least 32 characters"),
    ],
)
def test_unusable_web_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(environ=environ)
    assert str(error.value).startswith(message)
    assert "short" not in str(error.value).removeprefix(message)


def test_plain_http_cookies_are_allowed_on_this_machine() -> None:
    config = load_config(environ={"DIBOT_WEB_COOKIE_SECURE": "false"})
    assert config.web.cookie_secure is False
