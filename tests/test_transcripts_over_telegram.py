"""Every transcript again, end to end over Telegram: webhook updates into the Flask app, a real
database, and python-telegram-bot sending the replies to a fake Bot API server over HTTP.

Each respondent line is posted as Telegram posts an update (with the secret header): text as a
message, `[tap KEY:N]` as a callback query carrying that data, `[media]` as a photo or sticker
with no caption. The webhook makes no Bot API call; the outbox worker then delivers what the
turn queued. For each line, the sendMessage calls the fake server received must carry exactly
the transcript's bot lines for it, in order, every message ending in numbered options must
carry those options as an inline keyboard (`<key>:<n>` for n = 1..options), and every tap must
be answered once, in the webhook's response. Unlike SMS, STOP gets the engine's own
confirmation: no carrier stands between. At the end the database holds exactly the answers a
direct replay through the engine gives.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bot.engine import step
from bot.messages import Outbound
from bot.state import State
from channels.telegram import SECRET_HEADER
from dibot.config import Config
from dibot.runtime import load_configured_flow
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from tests.fake_telegram import (
    Call,
    FakeTelegram,
    keyboard_labels,
    keyboard_payloads,
    media_update,
    tap_update,
    text_update,
)
from tests.people import urn_digest
from tests.telegram_support import (
    SECRET,
    FakeClock,
    Worker,
    outbox_rows,
    tap_answered,
    telegram_config,
)
from tests.transcript import START, TEST_COUNCIL_CONFIG, Exchange, all_transcripts, parse

CHAT = 830001
URN = f"telegram:{CHAT}"
PATH = "/webhooks/telegram"
OPTION_LINE = re.compile(r"^(\d+) \S")
MEDIA_KINDS = ("photo", "sticker")
COUNCIL = TEST_COUNCIL_CONFIG


@pytest.fixture(scope="module")
def council_flow() -> Flow:
    return load_configured_flow(Config(council=COUNCIL))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START.replace(tzinfo=UTC))


@pytest.fixture
def config(fake: FakeTelegram, database_url: str) -> Config:
    return replace(telegram_config(fake, database_url), council=COUNCIL)


@pytest.fixture
def handler(engine: sa.Engine, council_flow: Flow, clock: FakeClock) -> TurnHandler:
    return TurnHandler(engine, council_flow, clock=clock.now)


@pytest.fixture
def app(config: Config, council_flow: Flow, handler: TurnHandler) -> Iterator[Flask]:
    app = create_app(config, flow=council_flow, handler=handler)
    yield app
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def worker(
    config: Config, handler: TurnHandler, engine: sa.Engine, clock: FakeClock
) -> Iterator[Worker]:
    """On the transcript's clock too: replies queued at a transcript time are due by it."""
    with Worker(config, handler, engine, clock) as worker:
        yield worker


def update_for(exchange: Exchange, index: int) -> dict[str, Any]:
    inbound = exchange.inbound
    if inbound.button is not None:
        return tap_update(CHAT, inbound.button)
    if inbound.has_media:
        return media_update(CHAT, MEDIA_KINDS[index % len(MEDIA_KINDS)])
    return text_update(CHAT, exchange.sent)


def numbered_options(text: str) -> list[str]:
    """The option lines ("1 No", "2 Occasionally"…) a message ends with, in order."""
    lines = text.split("\n")
    options: list[str] = []
    for line in reversed(lines[1:]):
        if not OPTION_LINE.match(line):
            break
        options.insert(0, line)
    return options


def check_keyboard(call: Call, expected: Outbound, where: str) -> None:
    """Numbered options come with one button each, `<key>:<n>` for n = 1..options; other
    messages with none. The keyboard is also exactly the engine's for this message."""
    options = numbered_options(call.params["text"])
    labels = [label for row in keyboard_labels(call) for label in row]
    payloads = list(keyboard_payloads(call))
    assert labels == options, where
    if options:
        key = payloads[0].rpartition(":")[0]
        assert key, where
        numbers = [str(n) for n in range(1, len(options) + 1)]
        assert [f"{key}:{n}" for n in numbers] == payloads, where
        assert [line.split(" ", 1)[0] for line in options] == numbers, where
    assert payloads == [button.payload for button in expected.buttons], where


def post(client: FlaskClient, update: dict[str, Any]) -> TestResponse:
    return client.post(PATH, json=update, headers={SECRET_HEADER: SECRET})


@pytest.mark.parametrize("path", all_transcripts(), ids=lambda p: p.stem)
def test_transcript_over_the_telegram_webhook(
    app: Flask,
    fake: FakeTelegram,
    engine: sa.Engine,
    clock: FakeClock,
    council_flow: Flow,
    worker: Worker,
    path: Path,
) -> None:
    client = app.test_client()
    state = State()
    for index, exchange in enumerate(parse(path), start=1):
        where = f"{path.name}, message {index} ({exchange.sent[:40]!r})"
        clock.at = exchange.at.replace(tzinfo=UTC)
        direct = step(council_flow, state, exchange.inbound, clock.now())
        state = direct.state
        before = len(fake.calls)
        update = update_for(exchange, index)

        response = post(client, update)
        assert response.status_code == 200, where
        assert fake.calls[before:] == [], where  # the webhook sends nothing itself
        worker.deliver()

        calls = fake.calls[before:]
        assert {c.method for c in calls} <= {"getMe", "sendMessage"}, where
        sent = [c for c in calls if c.method == "sendMessage"]
        assert [c.params["text"] for c in sent] == exchange.replies, where
        assert all(c.params["chat_id"] == CHAT for c in sent), where
        assert len(sent) == len(direct.outbound), where
        for call, expected in zip(sent, direct.outbound, strict=True):
            check_keyboard(call, expected, where)
        if "callback_query" in update:
            assert tap_answered(response.get_json(), update), where
        else:
            assert response.get_data() == b"", where

    assert {row["status"] for row in outbox_rows(engine)} <= {"sent"}
    assert stored_answers(engine, URN) == dict(state.answers)


def stored_answers(engine: sa.Engine, urn: str) -> dict[str, int]:
    """The answers of the respondent's current assessment, as the database keeps them."""
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT a.question, a.option FROM answers a "
                "JOIN conversations c ON c.assessment_id = a.assessment_id "
                "JOIN respondents r ON r.id = c.respondent_id "
                "WHERE a.option IS NOT NULL AND r.urn_digest = :digest"
            ),
            {"digest": urn_digest(engine, urn)},
        ).all()
    return {str(question): int(option) for question, option in rows}


def test_every_transcript_is_replayed_and_taps_and_media_are_among_them() -> None:
    texts = [path.read_text(encoding="utf-8") for path in all_transcripts()]
    assert len(texts) >= 9
    assert any("> [tap " in text for text in texts)
    assert any("> [media]" in text for text in texts)
    assert any("\n@ +" in text for text in texts)
