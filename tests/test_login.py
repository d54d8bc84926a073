"""The dashboard's login, through Flask's test client on a real database: CSRF on every form,
the session cookie's flags, one answer for every failed login, throttling on a fake clock,
logout, password changes that end other sessions, and the audit log of all of it."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import cast

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from flask import Flask
from flask.testing import FlaskClient

from dashboard.accounts import StaffMember, add_staff
from dibot.config import Config, DatabaseConfig, ServerConfig, WebConfig
from dibot.web import create_app
from flows.model import Flow
from storage.models import AuditEntry, Staff
from tests.dashboard_support import FakeNow, browser, csrf_token

SECRET = "test-secret-key-" + "k" * 32
EMAIL = "admin@example.gov.uk"
PASSWORD = "correct horse battery"
GENERIC = "Email or password is not right"
START = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeNow:
    return FakeNow(START)


def make_app(
    database_url: str, flow: Flow, clock: FakeNow, *, secure: bool = True, proxies: int = 0
) -> Flask:
    config = Config(
        server=ServerConfig(host="127.0.0.1"),
        database=DatabaseConfig(url=database_url),
        web=WebConfig(secret_key=SECRET, cookie_secure=secure, trusted_proxies=proxies),
    )
    return create_app(config, flow=flow, now=clock)


@pytest.fixture
def app(database_url: str, flow: Flow, clock: FakeNow) -> Iterator[Flask]:
    app = make_app(database_url, flow, clock)
    yield app
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def admin(engine: sa.Engine) -> StaffMember:
    return add_staff(engine, email=EMAIL, team="North", role="admin", password=PASSWORD, now=START)


def attempt_login(client: FlaskClient, email: str, password: str) -> tuple[int, str]:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": email, "password": password}
    )
    return response.status_code, response.get_data(as_text=True)


def signed_in_page(client: FlaskClient) -> str | None:
    """The account page's text when signed in; None when sent to the login page."""
    response = client.get("/password")
    if response.status_code == 302:
        assert response.headers["Location"].endswith("/login?next=/password")
        return None
    assert response.status_code == 200
    return response.get_data(as_text=True)


def audit(engine: sa.Engine) -> list[tuple[str, int | None]]:
    table = cast(sa.Table, AuditEntry.__table__)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.action, table.c.staff_id).order_by(table.c.id)).all()
    return [(row.action, row.staff_id) for row in rows]


def test_the_home_page_sends_a_stranger_to_the_login_page(app: Flask) -> None:
    client = browser(app)
    assert signed_in_page(client) is None
    page = client.get("/login")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert re.search(r'<label class="govuk-label" for="email">\s*Email address\s*</label>', text)
    assert re.search(r'<label class="govuk-label" for="password">\s*Password\s*</label>', text)
    assert 'autocomplete="current-password"' in text
    assert "style=" not in text
    assert "<style" not in text
    policy = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy
    # Scripts only from this site, and the one inline line GOV.UK's template has, by nonce.
    (nonce,) = re.findall(r"'nonce-([^']+)'", policy)
    assert re.findall(r"<script([^>]*)>", text) == [
        f' nonce="{nonce}"',
        ' type="module" src="/dashboard-assets/dashboard.js"',
    ]
    assert client.get("/login").headers["Content-Security-Policy"] != policy
    assert page.headers["Cache-Control"] == "no-store"


def test_signing_in_sets_a_locked_down_cookie_and_shows_who(
    app: Flask, admin: StaffMember, engine: sa.Engine
) -> None:
    client = browser(app)
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": "Admin@Example.gov.uk ", "password": PASSWORD}
    )
    assert response.status_code == 302
    assert response.headers["Location"] == "/"
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "Secure" in cookie
    assert "SameSite=Lax" in cookie
    page = signed_in_page(client)
    assert page is not None
    assert f"Signed in as {EMAIL}" in page
    assert audit(engine)[-1] == ("login", admin.id)


def test_cookies_go_over_plain_http_only_when_configured_so(
    database_url: str, flow: Flow, clock: FakeNow, admin: StaffMember
) -> None:
    app = make_app(database_url, flow, clock, secure=False)
    client = app.test_client()
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"csrf_token": token, "email": EMAIL, "password": PASSWORD}
    )
    app.extensions["dibot"].engine.dispose()
    assert response.status_code == 302
    assert "Secure" not in response.headers["Set-Cookie"]
    assert "HttpOnly" in response.headers["Set-Cookie"]


@pytest.mark.parametrize("path", ["/login", "/logout", "/password"])
def test_a_form_without_its_csrf_token_is_refused(
    app: Flask, admin: StaffMember, path: str
) -> None:
    client = browser(app)
    assert attempt_login(client, EMAIL, PASSWORD)[0] == 302
    without = client.post(path, data={"email": EMAIL, "password": PASSWORD})
    assert without.status_code == 400
    forged = client.post(path, data={"csrf_token": "forged", "email": EMAIL})
    assert forged.status_code == 400
    assert signed_in_page(client) is not None  # the refused logout did not sign anyone out


def test_a_wrong_password_and_an_unknown_email_get_the_same_answer(
    app: Flask, admin: StaffMember, engine: sa.Engine
) -> None:
    client = browser(app)
    wrong_status, wrong_page = attempt_login(client, EMAIL, "not the password")
    unknown_status, unknown_page = attempt_login(client, "nobody@example.gov.uk", PASSWORD)
    assert wrong_status == unknown_status == 200
    for page in (wrong_page, unknown_page):
        assert GENERIC in page
        assert "There is a problem" in page
        assert "<title>Error: Sign in" in page
    assert signed_in_page(client) is None
    assert audit(engine)[-2:] == [("login_failed", admin.id), ("login_failed", None)]


def test_five_failures_lock_the_email_for_fifteen_minutes(
    app: Flask, admin: StaffMember, clock: FakeNow, engine: sa.Engine
) -> None:
    client = browser(app)
    for _ in range(5):
        clock.advance(timedelta(minutes=2))
        assert GENERIC in attempt_login(client, EMAIL, "a wrong guess")[1]
    locked_at = clock.at
    status, page = attempt_login(client, EMAIL, PASSWORD)  # the right password, refused
    assert (status, GENERIC in page) == (200, True)
    assert signed_in_page(client) is None
    assert audit(engine)[-1] == ("login_refused", admin.id)
    clock.at = locked_at + timedelta(minutes=14, seconds=59)
    assert GENERIC in attempt_login(client, EMAIL, PASSWORD)[1]
    clock.at = locked_at + timedelta(minutes=15, seconds=1)
    assert attempt_login(client, EMAIL, PASSWORD)[0] == 302
    assert signed_in_page(client) is not None


def test_failures_spread_beyond_fifteen_minutes_lock_nothing(
    app: Flask, admin: StaffMember, clock: FakeNow
) -> None:
    client = browser(app)
    for _ in range(8):
        attempt_login(client, EMAIL, "a wrong guess")
        clock.advance(timedelta(minutes=4))
    assert attempt_login(client, EMAIL, PASSWORD)[0] == 302


def guesses_from(client: FlaskClient, forwarded_for: str, count: int) -> None:
    """`count` wrong passwords for as many unknown emails, through a proxy that says the
    client is `forwarded_for`."""
    client.environ_base["HTTP_X_FORWARDED_FOR"] = forwarded_for
    for n in range(count):
        attempt_login(client, f"guess{n}@example.gov.uk", "a wrong guess")


@pytest.mark.parametrize("proxies", [0, 1])
def test_login_throttling_counts_the_address_the_trusted_proxy_saw(
    database_url: str, flow: Flow, clock: FakeNow, admin: StaffMember, proxies: int
) -> None:
    """Behind one proxy (`trusted_proxies = 1`) the twenty failures that lock an address lock
    the guesser's, not every colleague's; with no proxy trusted, a forged header changes
    nothing: the guesser stays locked out however they spell it."""
    app = make_app(database_url, flow, clock, proxies=proxies)
    guesser = browser(app)
    guesses_from(guesser, "203.0.113.5", 20)
    guesser.environ_base["HTTP_X_FORWARDED_FOR"] = "198.51.100.7, 203.0.113.5"  # forged hop
    assert attempt_login(guesser, EMAIL, PASSWORD)[0] == 200  # locked, whatever it says
    colleague = browser(app)
    colleague.environ_base["HTTP_X_FORWARDED_FOR"] = "203.0.113.6"
    assert attempt_login(colleague, EMAIL, PASSWORD)[0] == (302 if proxies else 200)
    app.extensions["dibot"].engine.dispose()


def test_signing_in_starts_a_new_session(app: Flask, admin: StaffMember) -> None:
    client = browser(app)
    csrf_token(client, "/login")
    serializer = app.session_interface.get_signing_serializer(app)  # type: ignore[attr-defined]
    cookie = client.get_cookie("session")
    assert cookie is not None
    before = serializer.loads(cookie.value)
    attempt_login(client, EMAIL, PASSWORD)
    cookie = client.get_cookie("session")
    assert cookie is not None
    first = serializer.loads(cookie.value)
    assert first["staff"] == admin.id
    assert before["csrf_token"] != first.get("csrf_token")
    attempt_login(client, EMAIL, PASSWORD)
    cookie = client.get_cookie("session")
    assert cookie is not None
    assert serializer.loads(cookie.value)["sid"] != first["sid"]


def test_logging_out_ends_the_session(app: Flask, admin: StaffMember, engine: sa.Engine) -> None:
    client = browser(app)
    attempt_login(client, EMAIL, PASSWORD)
    token = csrf_token(client, "/password")
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302
    assert response.headers["Location"] == "/login"
    assert signed_in_page(client) is None
    assert audit(engine)[-1] == ("logout", admin.id)


def test_a_session_lasts_eight_hours(app: Flask, admin: StaffMember, clock: FakeNow) -> None:
    client = browser(app)
    attempt_login(client, EMAIL, PASSWORD)
    clock.advance(timedelta(hours=7, minutes=59))
    assert signed_in_page(client) is not None
    clock.advance(timedelta(minutes=1))
    assert signed_in_page(client) is None


def change_password(client: FlaskClient, current: str, new: str, again: str) -> tuple[int, str]:
    token = csrf_token(client, "/password")
    response = client.post(
        "/password",
        data={
            "csrf_token": token,
            "current_password": current,
            "new_password": new,
            "confirm_password": again,
        },
    )
    return response.status_code, response.get_data(as_text=True)


def test_a_password_change_signs_out_every_other_session(
    app: Flask, admin: StaffMember, clock: FakeNow, engine: sa.Engine
) -> None:
    laptop, phone = browser(app), browser(app)
    attempt_login(laptop, EMAIL, PASSWORD)
    attempt_login(phone, EMAIL, PASSWORD)
    clock.advance(timedelta(minutes=5))
    new_password = "a much longer passphrase"
    assert change_password(laptop, PASSWORD, new_password, new_password)[0] == 302
    page = signed_in_page(laptop)
    assert page is not None
    assert "Your password has been changed" in page
    assert signed_in_page(phone) is None
    assert attempt_login(phone, EMAIL, PASSWORD)[0] == 200
    assert attempt_login(phone, EMAIL, new_password)[0] == 302
    assert ("password_changed", admin.id) in audit(engine)


@pytest.mark.parametrize(
    ("current", "new", "again", "message"),
    [
        (
            "not my password",
            "a much longer passphrase",
            "a much longer passphrase",
            "Your current password is not right",
        ),
        (
            PASSWORD,
            "a much longer passphrase",
            "a different passphrase",
            "The new passwords do not match",
        ),
        (PASSWORD, "too short", "too short", "at least 12 characters"),
        (PASSWORD, "x" * 16, "x" * 16, "one character repeated"),
        (PASSWORD, "", "", "Enter a new password"),
    ],
)
def test_a_password_change_that_cannot_be_made_says_why(
    app: Flask, admin: StaffMember, current: str, new: str, again: str, message: str
) -> None:
    client = browser(app)
    attempt_login(client, EMAIL, PASSWORD)
    status, page = change_password(client, current, new, again)
    assert status == 200
    assert message in page
    assert "There is a problem" in page
    assert signed_in_page(client) is not None
    client.post("/logout", data={"csrf_token": csrf_token(client, "/password")})
    assert attempt_login(client, EMAIL, PASSWORD)[0] == 302  # the old password still works


def test_a_hash_made_with_older_parameters_is_renewed_at_login(
    app: Flask, admin: StaffMember, engine: sa.Engine
) -> None:
    table = cast(sa.Table, Staff.__table__)
    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash(PASSWORD)
    with engine.begin() as conn:
        conn.execute(sa.update(table).values(password_hash=weak))
    assert attempt_login(browser(app), EMAIL, PASSWORD)[0] == 302
    with engine.connect() as conn:
        renewed = conn.execute(sa.select(table.c.password_hash)).scalar_one()
    assert renewed != weak
    assert renewed.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(renewed)


def test_a_copy_of_the_cookie_opens_nothing_after_logout(
    app: Flask, admin: StaffMember, engine: sa.Engine
) -> None:
    laptop = browser(app)
    assert attempt_login(laptop, EMAIL, PASSWORD)[0] == 302
    cookie = laptop.get_cookie("session")
    assert cookie is not None
    copied = browser(app)  # someone who took the cookie, from the browser or the network
    copied.set_cookie("session", cookie.value)
    assert signed_in_page(copied) is not None
    laptop.post("/logout", data={"csrf_token": csrf_token(laptop, "/password")})
    assert signed_in_page(copied) is None, "the session lived on after logout"
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT id FROM staff_sessions")).scalars().all()
    assert all(len(id_) == 64 and id_ not in cookie.value for id_ in stored)
