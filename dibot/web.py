"""The web service: an app factory that wires the channels' blueprints and a health check.

`create_app` loads the flow once (gunicorn workers inherit it); the engine and the turn handler
are built on first use in each worker, never shared across a fork. Every response carries the
security headers. Nothing here logs a phone number, a message body or a secret. The health
check is cheap and only reads: one SELECT of the database's revision, compared with the latest
migration's (read from the scripts once per process); anything else is 503.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from flask import Flask, Response, jsonify
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.middleware.proxy_fix import ProxyFix

import dashboard
from channels import telegram, twilio_sms
from dibot.config import Config
from dibot.runtime import Runtime
from dibot.turns import TurnHandler
from flows.model import Flow
from storage.database import read_only
from storage.migrate import CURRENT, script_revisions, stored_revisions

MAX_REQUEST_BYTES = 256 * 1024
"""Far above any provider webhook (an SMS body is at most 1,600 characters)."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Strict-Transport-Security": "max-age=31536000",
}

log = logging.getLogger(__name__)


def create_app(
    config: Config,
    *,
    handler: TurnHandler | None = None,
    flow: Flow | None = None,
    now: Callable[[], datetime] | None = None,
) -> Flask:
    """The WSGI app for `dibot serve` and for tests (which may pass their own handler, and
    the dashboard's clock)."""
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    runtime = Runtime(config, flow=flow, handler=handler)
    app.extensions["dibot"] = runtime
    app.register_blueprint(twilio_sms.blueprint(runtime))
    app.register_blueprint(telegram.blueprint(runtime))
    dashboard.install(app, runtime, now=now)
    if config.web.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.web.trusted_proxies, x_proto=0, x_host=0
        )

    @app.get("/healthz")
    def healthz() -> tuple[Response, int]:
        try:
            # Read-only: on SQLite it must not queue behind turns for the write lock.
            with runtime.engine.connect() as connection:
                revisions = stored_revisions(read_only(connection))
        except (SQLAlchemyError, OSError) as error:
            # The error's text can name hosts and users: its type is enough to start from.
            log.warning("health check: database unreachable (%s)", type(error).__name__)
            return jsonify(status="error", database="unreachable"), 503
        schema = script_revisions().state(revisions)
        if schema != CURRENT:
            log.warning("health check: database schema %s; run `dibot db upgrade`", schema)
            return jsonify(status="error", database="ok", schema=schema), 503
        return jsonify(status="ok", database="ok"), 200

    every_response = (*SECURITY_HEADERS.items(), ("Cache-Control", "no-store"))

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        # One look at the headers a page set itself, not one search a header (`setdefault`):
        # this runs for every webhook.
        headers = response.headers
        present = {name.lower() for name, _ in headers.items()}
        headers.extend(
            (name, value) for name, value in every_response if name.lower() not in present
        )
        return response

    return app
