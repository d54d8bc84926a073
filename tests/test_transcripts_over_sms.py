"""The transcripts again, end to end: signed Twilio webhooks into the Flask app, a real database.

Every respondent line is posted as Twilio posts an inbound SMS (signed with twilio's own
RequestValidator), every bot line must come back as the TwiML message, and at the end the
database holds exactly the answers the conversation gave. Button taps have no SMS form, so the
transcripts that use them are replayed over Telegram instead. Twilio's own opt-out words get an
empty reply over SMS: Twilio confirms those itself.
"""

from __future__ import annotations

import uuid
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from twilio.request_validator import RequestValidator

from bot.engine import step
from bot.state import State
from dibot.config import Config, DatabaseConfig, TwilioConfig
from dibot.runtime import load_configured_flow
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from tests.transcript import TEST_COUNCIL_CONFIG, Exchange, all_transcripts, parse

TOKEN = "transcript-token-not-a-secret"
PUBLIC_URL = "https://dibot.example.gov.uk"
PATH = "/webhooks/twilio/sms"
SENDER = "+447700900321"
TWILIO_OPT_OUT_WORDS = {"stop", "stopall", "unsubscribe", "cancel", "end", "quit"}
COUNCIL = TEST_COUNCIL_CONFIG


def sms_transcripts() -> list[Path]:
    return [p for p in all_transcripts() if "> [tap " not in p.read_text(encoding="utf-8")]


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
def council_flow() -> Flow:
    return load_configured_flow(Config(council=COUNCIL))


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def app(database_url: str, engine: sa.Engine, council_flow: Flow, clock: Clock) -> Flask:
    config = Config(
        database=DatabaseConfig(url=database_url),
        twilio=TwilioConfig(auth_token=TOKEN, public_url=PUBLIC_URL),
        council=COUNCIL,
    )
    handler = TurnHandler(engine, council_flow, clock=clock)
    return create_app(config, flow=council_flow, handler=handler)


def twilio_params(exchange: Exchange) -> dict[str, str]:
    sid = f"SM{uuid.uuid4().hex}"
    params = {
        "MessageSid": sid,
        "AccountSid": "AC" + "0" * 32,
        "From": SENDER,
        "To": "+447700900999",
        "NumMedia": "0",
        "NumSegments": "1",
        "FromCity": "LONDON",
    }
    if exchange.inbound.has_media:
        params.update(NumMedia="1", MediaUrl0="https://api.twilio.com/media/ME0")
    else:
        params["Body"] = exchange.sent
    return params


def expected_over_sms(exchange: Exchange) -> list[str]:
    if exchange.sent.strip().lower() in TWILIO_OPT_OUT_WORDS:
        return []
    return exchange.replies


@pytest.mark.parametrize("path", sms_transcripts(), ids=lambda p: p.stem)
def test_transcript_over_signed_twilio_webhooks(
    app: Flask, engine: sa.Engine, clock: Clock, council_flow: Flow, path: Path
) -> None:
    client = app.test_client()
    validator = RequestValidator(TOKEN)
    state = State()
    for index, exchange in enumerate(parse(path), start=1):
        clock.now = exchange.at.replace(tzinfo=UTC)
        params = twilio_params(exchange)
        signature = validator.compute_signature(PUBLIC_URL + PATH, params)
        response = client.post(PATH, data=params, headers={"X-Twilio-Signature": signature})
        assert response.status_code == 200, f"{path.name}, message {index}"
        said = [m.text or "" for m in ET.fromstring(response.get_data()).findall("Message")]
        assert said == expected_over_sms(exchange), f"{path.name}, message {index}"
        state = step(council_flow, state, exchange.inbound, clock.now).state
    assert stored_answers(engine) == dict(state.answers)


def stored_answers(engine: sa.Engine) -> dict[str, int]:
    """The answers of the respondent's current assessment, as the database keeps them."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT a.question, a.option FROM answers a "
                "JOIN conversations c ON c.assessment_id = a.assessment_id "
                "WHERE a.option IS NOT NULL"
            )
        ).all()
    return {str(question): int(option) for question, option in rows}


def test_a_quick_check_and_a_full_assessment_are_both_replayed_over_sms() -> None:
    names = {path.stem for path in sms_transcripts()}
    assert {"quick_check_digits", "full_assessment_digits"} <= names
