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
import secrets
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
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_wtf.csrf import generate_csrf, validate_csrf
from jinja2 import BaseLoader, ChoiceLoader, PackageLoader, PrefixLoader
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
from dashboard.forms import LoginForm, PasswordChangeForm, choice_items
from dashboard.secret_key import configured_secret_key
from dashboard.site import Site

from dashboard import (  # isort: skip  (each page module registers its own routes)
    assisted,
    checkin_pages,
    cohort_pages,
    enrolling,
    export_pages,
    followup_pages,
    persona_pages,
    report_pages,
    respondent_page,
    respondents,
)
from dibot.config import ConfigError
from dibot.runtime import Runtime

BLUEPRINT = "dashboard"
STATIC_URL_PATH = "/dashboard-assets"
PROVIDER_PATHS = ("/webhooks/",)
"""Where Twilio and Telegram post: no dashboard page, and no session opened for them."""
SESSION_LIFETIME = timedelta(hours=8)
GENERIC_LOGIN_ERROR = "Email or password is not right"

Now = Callable[[], datetime]

PAGE_MODULES: tuple[Callable[[Blueprint, Site], None], ...] = (
    respondents.register,
    respondent_page.register,
    enrolling.register,
    cohort_pages.register,
    followup_pages.register,
    checkin_pages.register,
    assisted.register,
    report_pages.register,
    export_pages.register,
    persona_pages.register,
)

log = logging.getLogger(__name__)


def _system_now() -> datetime:
    return datetime.now(UTC)


class DashboardSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, with the secret key read on the first dashboard request."""

    def __init__(self, secret_key: Callable[[], str]) -> None:
        self._secret_key = secret_key

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path.startswith(PROVIDER_PATHS):  # a webhook: never a session
            return None
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
    app.jinja_loader = ChoiceLoader(
        [
            *([app.jinja_loader] if isinstance(app.jinja_loader, BaseLoader) else []),
            PrefixLoader(
                {
                    "govuk_frontend_jinja": PackageLoader("govuk_frontend_jinja"),
                    # The cohort report's partial, shared with `dibot report --format html`.
                    "impact_report": PackageLoader("impact", "templates"),
                }
            ),
        ]
    )
    app.register_blueprint(blueprint(runtime, now or _system_now))


def blueprint(runtime: Runtime, now: Now) -> Blueprint:
    pages = Blueprint(
        BLUEPRINT,
        __name__,
        template_folder="templates",
        static_folder="static",
        static_url_path=STATIC_URL_PATH,
    )

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

    site = Site(runtime=runtime, now=now, signed_in=signed_in)
    for register in PAGE_MODULES:
        register(pages, site)

    @pages.context_processor
    def page_globals() -> dict[str, Any]:
        return {
            "member": g.get("member"),
            "csp_nonce": _csp_nonce(),
            "csrf_token": generate_csrf,
            "choice_items": choice_items,
        }

    @pages.get("/")
    @site.staff_page
    def home(member: StaffMember) -> BaseResponse:
        return redirect(url_for(".respondents"))

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
                return redirect(_local_path(request.args.get("next")) or url_for(".home"))
            error = GENERIC_LOGIN_ERROR
        return render_template(
            "login.html", form=form, error=error, next=_local_path(request.args.get("next"))
        )

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
    @site.staff_page
    def password(member: StaffMember) -> BaseResponse | str:
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
            "password.html", form=form, error=error, error_field="current_password"
        )

    @pages.after_request
    def no_caching(response: Response) -> Response:
        # Pages hold personal data: never stored. The styles and scripts are kept and checked
        # against their ETag on each use (a 304), so an upgrade is seen at once.
        static = request.endpoint == f"{BLUEPRINT}.static"
        response.headers["Cache-Control"] = "no-cache" if static else "no-store"
        response.headers["Content-Security-Policy"] = (
            f"default-src 'none'; script-src 'self' 'nonce-{_csp_nonce()}'; style-src 'self'; "
            "img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
        )
        return response

    return pages


def _csp_nonce() -> str:
    """This response's nonce for the one inline script GOV.UK Frontend's template has."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return str(g.csp_nonce)


def _local_path(target: str | None) -> str | None:
    """`target` if it is a path on this site (where login sends the member back to), else
    None: never another host, however it is spelt (`//host`, `/\\host`, `https:`)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return None
    if any(ord(c) < 32 or c == "\\" for c in target):
        return None
    return target


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
