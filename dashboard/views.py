"""The dashboard's routes: login, logout, password change, and the signed-in home page.

Sessions are Flask's signed cookies (HttpOnly, Secure unless configured off for 127.0.0.1,
SameSite=Lax), lasting `SESSION_LIFETIME` from login. A session holds the member's id, when
their password last changed and when they signed in: a password change, a disabled account or
an old login ends it. Login starts a fresh session (a new random id, no earlier contents). The
secret key is read on the first dashboard request (`dibot serve` checks it before starting),
so the webhooks never need one; without one (PostgreSQL and no `[web] secret_key`) the
dashboard's pages answer 503 and the webhooks carry on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import validate_csrf
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers.response import Response as BaseResponse
from wtforms import ValidationError

from dashboard.accounts import (
    AccountError,
    StaffMember,
    change_password,
    end_sessions,
    log_in,
    open_session,
    record,
    session_is_live,
)
from dashboard.accounts import signed_in_member as load_member
from dashboard.forms import LoginForm, LogoutForm, PasswordChangeForm
from dashboard.secret_key import configured_secret_key
from dibot.config import ConfigError
from dibot.runtime import Runtime

BLUEPRINT = "dashboard"
SESSION_LIFETIME = timedelta(hours=8)
GENERIC_LOGIN_ERROR = "Email or password is not right"

Now = Callable[[], datetime]

log = logging.getLogger(__name__)


def _system_now() -> datetime:
    return datetime.now(UTC)


class DashboardSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the secret key read on the first dashboard request."""

    def __init__(self, secret_key: Callable[[], str]) -> None:
        self._secret_key = secret_key

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not app.secret_key and _is_dashboard_request(app, request):
            try:
                app.secret_key = self._secret_key()
            except ConfigError as error:  # its pages answer 503 (`refuse_without_a_key`)
                log.warning("staff dashboard unavailable: %s", error)
        return super().open_session(app, request)


def _is_dashboard_request(app: Flask, request: Request) -> bool:
    """Whether the request is for a dashboard page (sessions open before URLs are matched)."""
    try:
        endpoint, _ = app.create_url_adapter(request).match()  # type: ignore[union-attr]
    except HTTPException:
        return False
    return str(endpoint).startswith(f"{BLUEPRINT}.")


def install(app: Flask, runtime: Runtime, *, now: Now | None = None) -> None:
    """Register the dashboard on `app`, its times from `now` (tests pass a fake clock)."""
    config = runtime.config
    app.session_interface = DashboardSessions(lambda: configured_secret_key(config))
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SECURE=config.web.cookie_secure,
        SESSION_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.register_blueprint(blueprint(runtime, now or _system_now))


def blueprint(runtime: Runtime, now: Now) -> Blueprint:
    pages = Blueprint(BLUEPRINT, __name__, template_folder="templates")

    def remote_address() -> str:
        return request.remote_addr or "unknown"

    def signed_in() -> StaffMember | None:
        """The member this session is for, or None (and the session emptied) if it is over."""
        staff_id = session.get("staff")
        if not isinstance(staff_id, int):
            return None
        member = load_member(runtime.engine, staff_id)
        since = _parse_time(session.get("since"))
        token = session.get("sid")
        current = (
            member is not None
            and session.get("changed") == member.password_changed_at.isoformat()
            and since is not None
            and since <= now() < since + SESSION_LIFETIME
            and isinstance(token, str)
            and session_is_live(runtime.engine, token, staff_id)
        )
        if not current:
            session.clear()
            return None
        return member

    @pages.before_request
    def refuse_without_a_key() -> None:
        if not current_app.secret_key:
            abort(503, "The staff dashboard is not set up: [web] secret_key is needed")

    @pages.before_request
    def check_csrf() -> None:
        if request.method == "POST":
            try:
                validate_csrf(request.form.get("csrf_token"))
            except ValidationError:
                abort(400, "The form has expired or did not come from this site: try again")

    @pages.get("/")
    def home() -> BaseResponse | str:
        member = signed_in()
        if member is None:
            return redirect(url_for(".login"))
        return render_template("home.html", member=member, logout=LogoutForm())

    @pages.route("/login", methods=["GET", "POST"])
    def login() -> BaseResponse | str:
        form = LoginForm()
        error = None
        if form.validate_on_submit():
            member = log_in(
                runtime.engine,
                form.email.data,
                form.password.data,
                remote_address=remote_address(),
                now=now(),
            )
            if member is not None:
                token = open_session(runtime.engine, member.id, now())
                _start_session(member, token, now())
                return redirect(url_for(".home"))
            error = GENERIC_LOGIN_ERROR
        return render_template("login.html", form=form, error=error)

    @pages.post("/logout")
    def logout() -> BaseResponse:
        member = signed_in()
        if member is not None:
            end_sessions(runtime.engine, member.id, now(), only=session["sid"])
            with runtime.engine.begin() as conn:
                record(conn, "logout", now=now(), staff_id=member.id)
        session.clear()
        return redirect(url_for(".login"))

    @pages.route("/password", methods=["GET", "POST"])
    def password() -> BaseResponse | str:
        member = signed_in()
        if member is None:
            return redirect(url_for(".login"))
        form = PasswordChangeForm()
        error = None
        if form.validate_on_submit():
            try:
                changed = change_password(
                    runtime.engine,
                    member,
                    form.current_password.data,
                    form.new_password.data,
                    now=now(),
                )
            except AccountError as problem:
                error = str(problem)
            else:
                end_sessions(runtime.engine, member.id, now(), but=session["sid"])
                session["changed"] = changed.isoformat()
                flash("Your password has been changed")
                return redirect(url_for(".home"))
        return render_template(
            "password.html", form=form, error=error, error_field="current_password", member=member
        )

    @pages.after_request
    def no_caching(response: Response) -> Response:
        response.headers["Cache-Control"] = "no-store"
        return response

    return pages


def _start_session(member: StaffMember, token: str, at: datetime) -> None:
    """A new session: nothing of the one before (its CSRF token included) survives login.
    `token` names it on the server (`dashboard.accounts.open_session`): logging out ends it
    there, so a copy of the cookie opens nothing after."""
    session.clear()
    session.permanent = True
    session["sid"] = token
    session["staff"] = member.id
    session["changed"] = member.password_changed_at.isoformat()
    session["since"] = at.isoformat()


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None
