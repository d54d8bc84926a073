"""The Telegram webhook end to end: Flask app, real database, python-telegram-bot talking to a
fake Bot API server over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from bot.messages import Inbound
from channels.telegram import SECRET_HEADER, WEBHOOK_TIMEOUTS, run_worker
from channels.telegram_bot import STANDARD_TIMEOUTS
from dibot.config import Config
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.model import Flow
from tests.fake_telegram import (
    FakeTelegram,
    edited_update,
    keyboard_labels,
    keyboard_payloads,
    media_update,
    member_update,
    tap_update,
    text_update,
)
from tests.telegram_support import (
    SECRET,
    FakeClock,
    first_replies,
    inbox_count,
    outbox_rows,
    telegram_config,
    unreachable,
)

CHAT = 810001
OTHER_CHAT = 810002
URN = f"telegram:{CHAT}"
SLOW = WEBHOOK_TIMEOUTS.read + 3
"""How long a slow Telegram holds an answer: longer than a webhook request waits for one, not
as long as the worker would."""
assert STANDARD_TIMEOUTS.read > SLOW


@pytest.fixture
def config(fake: FakeTelegram, database_url: str) -> Config:
    return telegram_config(fake, database_url)


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow) -> TurnHandler:
    return TurnHandler(engine, flow)


@pytest.fixture
def app(config: Config, handler: TurnHandler, flow: Flow) -> Iterator[Flask]:
    app = create_app(config, handler=handler, flow=flow)
    yield app
    app.extensions["telegram"].close()
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def post(client: FlaskClient, update: dict[str, Any], secret: str | None = SECRET) -> int:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    return client.post("/webhooks/telegram", json=update, headers=headers).status_code


def test_start_gets_the_consent_prompt_with_buttons(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, flow: Flow
) -> None:
    assert post(client, text_update(CHAT, "/start")) == 200
    [consent] = first_replies(flow, Inbound("/start"))
    [call] = fake.sent(CHAT)
    assert call.params["text"] == consent.text
    assert "Privacy" in call.params["text"]
    assert keyboard_labels(call) == [[b.label] for b in consent.buttons]
    assert list(keyboard_payloads(call)) == ["consent:1", "consent:2"]
    [row] = outbox_rows(engine)
    assert row["status"] == "sent"
    assert row["provider_message_id"]


def test_a_tap_is_answered_and_the_next_question_follows(
    client: FlaskClient, fake: FakeTelegram, flow: Flow
) -> None:
    post(client, text_update(CHAT, "/start"))
    tap = tap_update(CHAT, "consent:1")
    assert post(client, tap) == 200
    [answer] = fake.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == tap["callback_query"]["id"]
    [mode] = first_replies(flow, Inbound("/start"), Inbound("", button="consent:1"))
    assert fake.sent(CHAT)[-1].params["text"] == mode.text
    calls = [c.method for c in fake.calls if c.method != "getMe"]
    assert calls == ["sendMessage", "answerCallbackQuery", "sendMessage"]


def test_typing_the_number_works_as_well_as_tapping(
    client: FlaskClient, fake: FakeTelegram
) -> None:
    for chat in (CHAT, OTHER_CHAT):
        post(client, text_update(chat, "/start"))
    post(client, tap_update(CHAT, "consent:1"))
    post(client, text_update(OTHER_CHAT, "1"))
    tapped, typed = fake.sent(CHAT)[-1], fake.sent(OTHER_CHAT)[-1]
    assert tapped.params["text"] == typed.params["text"]
    assert keyboard_labels(tapped) == keyboard_labels(typed)
    assert len(fake.calls_to("answerCallbackQuery")) == 1


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
def test_a_missing_or_wrong_secret_is_refused_and_nothing_happens(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, secret: str | None
) -> None:
    assert post(client, text_update(CHAT, "/start"), secret=secret) == 403
    assert post(client, tap_update(CHAT, "consent:1"), secret=secret) == 403
    assert inbox_count(engine) == 0
    assert outbox_rows(engine) == []
    assert unreachable(engine, URN) is None
    assert fake.calls == []


def test_an_unconfigured_secret_refuses_everything(
    fake: FakeTelegram, database_url: str, handler: TurnHandler, flow: Flow, engine: sa.Engine
) -> None:
    config = telegram_config(fake, database_url)
    config = Config(
        database=config.database,
        telegram=type(config.telegram)(bot_token=fake.token, api_base_url=fake.base_url),
    )
    app = create_app(config, handler=handler, flow=flow)
    try:
        client = app.test_client()
        assert post(client, text_update(CHAT, "/start"), secret="") == 403
    finally:
        app.extensions["telegram"].close()
    assert inbox_count(engine) == 0


def test_the_same_update_twice_is_answered_once(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    update = text_update(CHAT, "/start", update_id=4242)
    assert post(client, update) == 200
    assert post(client, update) == 200
    assert len(fake.sent(CHAT)) == 1
    assert inbox_count(engine) == 1
    assert len(outbox_rows(engine)) == 1


def test_the_same_update_at_the_same_moment_is_answered_once(
    app: Flask, fake: FakeTelegram, engine: sa.Engine
) -> None:
    update = text_update(CHAT, "/start", update_id=4343)
    start = threading.Barrier(4)
    statuses: list[int] = []

    def deliver() -> None:
        client = app.test_client()
        start.wait()
        statuses.append(post(client, update))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert statuses == [200] * 4
    assert len(fake.sent(CHAT)) == 1
    assert inbox_count(engine) == 1


def test_the_same_tap_twice_moves_on_once(client: FlaskClient, fake: FakeTelegram) -> None:
    post(client, text_update(CHAT, "/start"))
    tap = tap_update(CHAT, "consent:1", update_id=5151)
    post(client, tap)
    post(client, tap)
    assert len(fake.sent(CHAT)) == 2  # consent, then the choice of check: nothing more


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice"])
def test_media_without_text_gets_a_helpful_reply(
    client: FlaskClient, fake: FakeTelegram, flow: Flow, kind: str
) -> None:
    post(client, text_update(CHAT, "/start"))
    post(client, tap_update(CHAT, "consent:1"))
    post(client, text_update(CHAT, "1"))
    question = fake.sent(CHAT)[-1].params["text"]
    assert post(client, media_update(CHAT, kind)) == 200
    reply = fake.sent(CHAT)[-1].params["text"]
    assert reply.startswith(flow.text("media_only", "en"))
    assert question in reply  # and the question again, to answer in text


def test_an_edited_message_answers_nothing_and_says_how_to_change_an_answer(
    client: FlaskClient, fake: FakeTelegram, flow: Flow
) -> None:
    for chat in (CHAT, OTHER_CHAT):
        post(client, text_update(chat, "/start"))
        post(client, tap_update(chat, "consent:1"))
        post(client, tap_update(chat, "mode:1"))
    question = fake.sent(CHAT)[-1].params["text"]
    assert post(client, edited_update(CHAT, "2")) == 200  # an edit of the earlier "/start"
    reply = fake.sent(CHAT)[-1].params["text"]
    assert reply == f"{flow.text('edited', 'en')} {question}"
    post(client, text_update(CHAT, "1"))
    post(client, text_update(OTHER_CHAT, "1"))
    assert fake.sent(CHAT)[-1].params["text"] == fake.sent(OTHER_CHAT)[-1].params["text"]


def test_blocking_the_bot_marks_the_respondent_unreachable_without_a_reply(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    post(client, text_update(CHAT, "/start"))
    assert post(client, member_update(CHAT, "kicked")) == 200
    assert unreachable(engine, URN) is True
    assert len(fake.sent(CHAT)) == 1


def test_a_403_on_send_marks_the_respondent_unreachable_and_the_row_failed(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    fake.block(CHAT)
    assert post(client, text_update(CHAT, "/start")) == 200
    [row] = outbox_rows(engine)
    assert row["status"] == "failed"
    assert "blocked" in row["error"]
    assert unreachable(engine, URN) is True


def test_a_429_is_sent_again_after_retry_after_and_not_before(
    client: FlaskClient,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
) -> None:
    fake.flood(CHAT, retry_after=7)
    started = datetime.now(UTC)
    assert post(client, text_update(CHAT, "/start")) == 200
    [row] = outbox_rows(engine)
    assert row["status"] == "pending"
    assert len(fake.sent(CHAT)) == 1  # the refused attempt

    too_soon = FakeClock(started + timedelta(seconds=2))
    run_worker(config, handler, engine=engine, clock=too_soon, until_empty=True)
    assert len(fake.sent(CHAT)) == 1

    later = FakeClock(datetime.now(UTC) + timedelta(seconds=8))
    run_worker(config, handler, engine=engine, clock=later, until_empty=True)
    first, second = fake.sent(CHAT)
    assert second.params["text"] == first.params["text"]
    [row] = outbox_rows(engine)
    assert row["status"] == "sent"
    assert row["attempts"] == 2


def test_no_answer_from_telegram_is_never_resent(
    client: FlaskClient,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
) -> None:
    fake.hang_up_on("sendMessage", CHAT)
    assert post(client, text_update(CHAT, "/start")) == 200
    [row] = outbox_rows(engine)
    assert row["status"] == "unknown"
    assert "not resent" in row["error"]
    later = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    run_worker(config, handler, engine=engine, clock=later, until_empty=True)
    assert len(fake.sent(CHAT)) == 1


def test_a_slow_send_is_given_up_within_the_request_and_never_resent(
    client: FlaskClient,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
) -> None:
    post(client, text_update(OTHER_CHAT, "/start"))  # the Bot is set up and its connection warm
    fake.stall("sendMessage", SLOW, CHAT)
    assert post(client, text_update(CHAT, "/start")) == 200
    [row] = [row for row in outbox_rows(engine) if row["urn"] == URN]
    assert row["status"] == "unknown"
    assert "not resent" in row["error"]  # it reached Telegram: it may have been delivered
    later = FakeClock(datetime.now(UTC) + timedelta(hours=1))
    run_worker(config, handler, engine=engine, clock=later, until_empty=True)
    assert len(fake.sent(CHAT)) == 1


def test_a_slow_tap_answer_leaves_the_reply_to_the_worker(
    client: FlaskClient,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
    flow: Flow,
) -> None:
    post(client, text_update(CHAT, "/start"))
    fake.stall("answerCallbackQuery", SLOW)
    assert post(client, tap_update(CHAT, "consent:1")) == 200
    assert len(fake.sent(CHAT)) == 1  # the consent prompt only: no time was left to send
    prompt, reply = outbox_rows(engine)
    assert prompt["status"] == "sent"
    assert (reply["status"], reply["attempts"]) == ("pending", 0)

    run_worker(config, handler, engine=engine, clock=FakeClock(datetime.now(UTC)), until_empty=True)

    [mode] = first_replies(flow, Inbound("/start"), Inbound("", button="consent:1"))
    assert fake.sent(CHAT)[-1].params["text"] == mode.text
    assert [(row["status"], row["attempts"]) for row in outbox_rows(engine)] == [("sent", 1)] * 2


def test_a_database_failure_is_a_5xx_and_the_retry_is_answered(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    update = text_update(CHAT, "/start")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE inbox RENAME TO inbox_away")
    try:
        assert post(client, update) == 503
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE inbox_away RENAME TO inbox")
    assert fake.sent() == []
    assert outbox_rows(engine) == []
    assert post(client, update) == 200  # Telegram's retry
    assert len(fake.sent(CHAT)) == 1


def test_a_tap_with_nothing_to_answer_is_still_acknowledged(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    tap = tap_update(CHAT, "x")
    del tap["callback_query"]["data"]
    assert post(client, tap) == 200
    [answer] = fake.calls_to("answerCallbackQuery")
    assert answer.params["callback_query_id"] == tap["callback_query"]["id"]
    assert fake.sent() == []
    assert inbox_count(engine) == 0


def test_updates_the_bot_does_not_use_are_acknowledged(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    assert post(client, {"update_id": 1, "inline_query": None}) == 200
    assert post(client, member_update(CHAT, "member")) == 200
    assert (
        client.post(
            "/webhooks/telegram", data="not json", headers={SECRET_HEADER: SECRET}
        ).status_code
        == 400
    )
    assert inbox_count(engine) == 0
    assert fake.sent() == []


def test_the_webhook_sends_its_own_reply_and_leaves_older_rows_to_the_worker(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, handler: TurnHandler
) -> None:
    handler.handle(
        channel="telegram",
        message_id="queued-earlier",
        urn=f"telegram:{OTHER_CHAT}",
        inbound=Inbound("/start"),
        queue_replies=True,
    )
    assert post(client, text_update(CHAT, "/start")) == 200
    assert len(fake.sent(CHAT)) == 1
    assert fake.sent(OTHER_CHAT) == []
    statuses = {row["urn"]: row["status"] for row in outbox_rows(engine)}
    assert statuses == {URN: "sent", f"telegram:{OTHER_CHAT}": "pending"}


@pytest.mark.parametrize(
    "update",
    [
        pytest.param({**text_update(CHAT, "Hi"), "update_id": 10**128}, id="update-id-129-digits"),
        pytest.param({**text_update(CHAT, "Hi"), "update_id": -(10**20)}, id="update-id-negative"),
        pytest.param(
            {"update_id": 7, "message": {"message_id": 1, "date": 1_790_000_000, "text": "Hi"}},
            id="message-without-chat",
        ),
        pytest.param(text_update(10**30, "Hi"), id="chat-id-30-digits"),
    ],
)
def test_updates_no_telegram_would_send_are_acknowledged_and_change_nothing(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, update: dict[str, Any]
) -> None:
    assert post(client, update) == 200  # never a 5xx Telegram would retry for ever
    assert inbox_count(engine) == 0
    assert fake.sent() == []


def test_text_with_lone_surrogates_and_nul_is_read_without_them(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    assert post(client, text_update(CHAT, "Hi\ud800\x00 there")) == 200
    assert inbox_count(engine) == 1
    assert fake.sent()
