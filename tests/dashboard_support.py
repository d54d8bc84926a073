"""What the dashboard's tests share (a pytest plugin, named in conftest.py): the app on a fake
clock, staff in two teams, a signed-in test client, forms posted with their CSRF token, and
residents enrolled into a team."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dashboard.accounts import StaffMember, add_staff
from dibot.config import Config, DatabaseConfig, OutreachConfig, ServerConfig, WebConfig
from dibot.web import create_app
from flows.model import Flow
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.quiet_hours import NO_QUIET_HOURS
from storage.models import Respondent, table

SECRET = "test-secret-key-" + "k" * 32
PASSWORD = "correct horse battery"
START = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)  # a Tuesday, inside quiet hours' window

NORTH_ADMIN = "admin@north.example.gov.uk"
NORTH_WORKER = "worker@north.example.gov.uk"
SOUTH_WORKER = "worker@south.example.gov.uk"


@dataclass
class FakeNow:
    at: datetime = START

    def __call__(self) -> datetime:
        return self.at

    def advance(self, by: timedelta) -> None:
        self.at += by


@dataclass(frozen=True)
class Staff:
    north_admin: StaffMember
    north_worker: StaffMember
    south_worker: StaffMember


@pytest.fixture
def clock() -> FakeNow:
    return FakeNow()


def dashboard_config(database_url: str, **outreach: Any) -> Config:
    return Config(
        server=ServerConfig(host="127.0.0.1"),
        database=DatabaseConfig(url=database_url),
        web=WebConfig(secret_key=SECRET),
        outreach=OutreachConfig(**outreach),
    )


@pytest.fixture
def dashboard(database_url: str, flow: Flow, clock: FakeNow) -> Iterator[Flask]:
    app = create_app(dashboard_config(database_url), flow=flow, now=clock)
    yield app
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def staff(engine: sa.Engine) -> Staff:
    def add(email: str, team: str, role: str) -> StaffMember:
        return add_staff(engine, email=email, team=team, role=role, password=PASSWORD, now=START)

    return Staff(
        north_admin=add(NORTH_ADMIN, "North", "admin"),
        north_worker=add(NORTH_WORKER, "North", "worker"),
        south_worker=add(SOUTH_WORKER, "South", "worker"),
    )


def browser(app: Flask) -> FlaskClient:
    """A test client that speaks HTTPS (the session cookie is Secure)."""
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    return client


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, (path, page.status_code)
    found = re.search(r'<input [^>]*name="csrf_token"[^>]* value="([^"]+)"', page.get_data(True))
    assert found, page.get_data(as_text=True)
    return found[1]


def signed_in(app: Flask, member: StaffMember) -> FlaskClient:
    client = browser(app)
    response = client.post(
        "/login",
        data={
            "csrf_token": csrf_token(client, "/login"),
            "email": member.email,
            "password": PASSWORD,
        },
    )
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def submit(
    client: FlaskClient, path: str, data: dict[str, Any], *, form_page: str | None = None
) -> TestResponse:
    """POST `data` to `path` with the CSRF token from `form_page` (default: `path` itself)."""
    token = csrf_token(client, form_page or path)
    return client.post(path, data={"csrf_token": token, **data})


def page_text(response: TestResponse) -> str:
    """The page's words without tags or runs of spaces, for asserting what a person reads."""
    html = response.get_data(as_text=True)
    html = re.sub(r"<(script|style)\b.*?</\1>", " ", html, flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).strip()


def enrol_into_team(
    engine: sa.Engine,
    flow: Flow,
    phone: str,
    team_id: int | None,
    *,
    now: datetime = START,
    cohort: str | None = None,
    by: str = NORTH_WORKER,
) -> int:
    """Enrol `phone` (a 07700 900xxx number) as `dibot enrol` does, then give them to the team;
    the respondent's id."""
    enrolled = enrol(
        engine,
        flow,
        EnrolmentRequest(
            phone=phone,
            telegram=None,
            cohort=cohort,
            initiative=None,
            language=None,
            enrolled_by=by,
            lawful_basis="public_task",
        ),
        NO_QUIET_HOURS,
        now,
    )
    respondents = table(Respondent)
    with engine.begin() as conn:
        conn.execute(
            sa.update(respondents)
            .where(respondents.c.id == enrolled.respondent_id)
            .values(team_id=team_id)
        )
    return enrolled.respondent_id
