"""The ceiling: a bare Flask app answering every webhook with constant TwiML, served as
`dibot serve` serves dibot.

    .venv/bin/python -m bench.ceiling_app     # configured like dibot serve: DIBOT_SERVER_*

The rule it keeps: nothing differs from `dibot serve` but the app. The server is
`dibot.cli.gunicorn_server` with the configuration `dibot serve` would read (host, port,
workers), so a change to the worker class, keep-alive or recycling there moves the ceiling with
it; the app does no work a turn does (no signature, no form parsing beyond Flask's own, no
database), so the ratio of a turn's rate to this one's is the share of the stack's capacity a
turn leaves.
"""

from __future__ import annotations

import sys

from flask import Flask, Response

from bot.messages import Outbound
from channels.twilio_sms import twiml

REPLY_TEXT = (
    "Q3 of 12 How confident are you finding information online?\n"
    "1 Very confident\n2 Quite confident\n3 Not very confident\n4 Not at all"
)
"""About the size of one of the quick check's questions: the reply is built once, not per
request."""
TWIML = twiml((Outbound(REPLY_TEXT),))


def create_ceiling_app() -> Flask:
    """POST to either webhook: the constant reply; GET /healthz: ok."""
    app = Flask(__name__)

    @app.post("/webhooks/twilio/sms")
    def sms() -> Response:
        return Response(TWIML, mimetype="text/xml")

    @app.post("/webhooks/telegram")
    def telegram() -> Response:
        return Response(status=200)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app


def main() -> int:
    from dibot.cli import gunicorn_server
    from dibot.config import load_config

    gunicorn_server(load_config(), create_ceiling_app()).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
