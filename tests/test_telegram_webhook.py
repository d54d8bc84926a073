"""The Telegram webhook end to end: Flask app, real database, the outbox worker sending with
python-telegram-bot to a fake Bot API server over HTTP.

The webhook itself makes no Bot API call: it takes the turn, queues the replies and answers
(a tap in its own response body); the worker (`Worker.deliver`) sends what it queued."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bot.engine import step
from bot.messages import Inbound
from bot.state import State
from channels.telegram import SECRET_HEADER, run_worker
from channels.telegram_bot import Timeouts
from channels.telegram_outbox import Pacer
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
from tests.people import urn_digest
from tests.telegram_support import (
    SECRET,
    FakeClock,
    Worker,
    first_replies,
    inbox_count,
    outbox_rows,
    tap_answered,
    telegram_config,
    unreachable,
)

CHAT = 810001
OTHER_CHAT = 810002
URN = f"telegram:{CHAT}"
SHORT_TIMEOUTS = Timeouts(connect=1.0, read=0.5, write=1.0, pool=1.0, margin=1.0)
SLOW = SHORT_TIMEOUTS.read * 4
"""How long a slow Telegram holds an answer: well past the worker's read timeout."""


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
    app.extensions["dibot"].engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def worker(config: Config, handler: TurnHandler, engine: sa.Engine) -> Iterator[Worker]:
    with Worker(config, handler, engine) as worker:
        yield worker


def send(client: FlaskClient, update: dict[str, Any], secret: str | None = SECRET) -> TestResponse:
    headers = {} if secret is None else {SECRET_HEADER: secret}
    return client.post("/webhooks/telegram", json=update, headers=headers)


def post(client: FlaskClient, update: dict[str, Any], secret: str | None = SECRET) -> int:
    return send(client, update, secret).status_code


def say(client: FlaskClient, worker: Worker, update: dict[str, Any]) -> int:
    """Post an update and let the worker deliver what it queued."""
    status = post(client, update)
    worker.deliver()
    return status


def test_start_gets_the_consent_prompt_with_buttons(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, flow: Flow, worker: Worker
) -> None:
    assert post(client, text_update(CHAT, "/start")) == 200
    assert fake.calls == []  # the webhook only queued the reply
    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 0)

    assert worker.deliver() == 1

    [consent] = first_replies(flow, Inbound("/start"))
    [call] = fake.sent(CHAT)
    assert call.params["text"] == consent.text
    assert "Privacy" in call.params["text"]
    assert keyboard_labels(call) == [[b.label] for b in consent.buttons]
    assert list(keyboard_payloads(call)) == ["consent:1", "consent:2"]
    [row] = outbox_rows(engine)
    assert row["status"] == "sent"
    assert row["provider_message_id"]


def test_a_tap_is_answered_in_the_webhook_response_and_the_next_question_follows(
    client: FlaskClient, fake: FakeTelegram, flow: Flow, worker: Worker
) -> None:
    say(client, worker, text_update(CHAT, "/start"))
    tap = tap_update(CHAT, "consent:1")

    response = send(client, tap)

    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert tap_answered(response.get_json(), tap)  # Telegram performs it: the spinner stops
    assert fake.calls_to("answerCallbackQuery") == []
    worker.deliver()
    [mode] = first_replies(flow, Inbound("/start"), Inbound("", button="consent:1"))
    assert fake.sent(CHAT)[-1].params["text"] == mode.text
    assert [c.method for c in fake.calls if c.method != "getMe"] == ["sendMessage"] * 2


def test_a_tap_is_answered_at_once_while_telegram_is_stalled(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    fake.stall("sendMessage", 30, times=100)
    fake.stall("answerCallbackQuery", 30, times=100)
    tap = tap_update(CHAT, "consent:1")
    response = send(client, tap)
    assert tap_answered(response.get_json(), tap)
    assert fake.calls == []
    assert inbox_count(engine) == 1  # and the tap was taken as a turn
    fake.end_stalls()


def test_typing_the_number_works_as_well_as_tapping(
    client: FlaskClient, fake: FakeTelegram, worker: Worker
) -> None:
    for chat in (CHAT, OTHER_CHAT):
        say(client, worker, text_update(chat, "/start"))
    tap = tap_update(CHAT, "consent:1")
    assert tap_answered(send(client, tap).get_json(), tap)
    typed = send(client, text_update(OTHER_CHAT, "1"))
    assert typed.get_data() == b""  # a message needs no answer in the response
    worker.deliver()
    tapped, typed_reply = fake.sent(CHAT)[-1], fake.sent(OTHER_CHAT)[-1]
    assert tapped.params["text"] == typed_reply.params["text"]
    assert keyboard_labels(tapped) == keyboard_labels(typed_reply)


@pytest.mark.parametrize("secret", [None, "", "wrong", SECRET + "x", SECRET[:-1]])
def test_a_missing_or_wrong_secret_is_refused_and_nothing_happens(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker, secret: str | None
) -> None:
    assert post(client, text_update(CHAT, "/start"), secret=secret) == 403
    response = send(client, tap_update(CHAT, "consent:1"), secret=secret)
    assert response.status_code == 403
    assert response.mimetype == "text/plain"  # no answer to the tap either
    assert inbox_count(engine) == 0
    assert outbox_rows(engine) == []
    assert unreachable(engine, URN) is None
    assert worker.deliver() == 0
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
    client = app.test_client()
    assert post(client, text_update(CHAT, "/start"), secret="") == 403
    assert inbox_count(engine) == 0


def test_the_same_update_twice_is_answered_once(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker
) -> None:
    update = text_update(CHAT, "/start", update_id=4242)
    assert say(client, worker, update) == 200
    assert say(client, worker, update) == 200
    assert len(fake.sent(CHAT)) == 1
    assert inbox_count(engine) == 1
    assert len(outbox_rows(engine)) == 1


def test_the_same_update_at_the_same_moment_is_answered_once(
    app: Flask, fake: FakeTelegram, engine: sa.Engine, worker: Worker
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
    worker.deliver()
    assert len(fake.sent(CHAT)) == 1
    assert inbox_count(engine) == 1


def test_the_same_tap_twice_moves_on_once_and_is_answered_both_times(
    client: FlaskClient, fake: FakeTelegram, worker: Worker
) -> None:
    say(client, worker, text_update(CHAT, "/start"))
    tap = tap_update(CHAT, "consent:1", update_id=5151)
    first, again = send(client, tap), send(client, tap)
    assert tap_answered(first.get_json(), tap)
    assert tap_answered(again.get_json(), tap)  # Telegram's retry stops the spinner too
    worker.deliver()
    assert len(fake.sent(CHAT)) == 2  # consent, then the choice of check: nothing more


@pytest.mark.parametrize("kind", ["sticker", "photo", "voice"])
def test_media_without_text_gets_a_helpful_reply(
    client: FlaskClient, fake: FakeTelegram, flow: Flow, worker: Worker, kind: str
) -> None:
    say(client, worker, text_update(CHAT, "/start"))
    say(client, worker, tap_update(CHAT, "consent:1"))
    say(client, worker, text_update(CHAT, "1"))
    question = fake.sent(CHAT)[-1].params["text"]
    assert say(client, worker, media_update(CHAT, kind)) == 200
    reply = fake.sent(CHAT)[-1].params["text"]
    assert reply.startswith(flow.text("media_only", "en"))
    assert question in reply  # and the question again, to answer in text


def test_an_edited_message_answers_nothing_and_says_how_to_change_an_answer(
    client: FlaskClient, fake: FakeTelegram, flow: Flow, worker: Worker
) -> None:
    for chat in (CHAT, OTHER_CHAT):
        say(client, worker, text_update(chat, "/start"))
        say(client, worker, tap_update(chat, "consent:1"))
        say(client, worker, tap_update(chat, "mode:1"))
    question = fake.sent(CHAT)[-1].params["text"]
    assert say(client, worker, edited_update(CHAT, "2")) == 200  # an edit of "/start"
    reply = fake.sent(CHAT)[-1].params["text"]
    assert reply == f"{flow.text('edited', 'en')} {question}"
    say(client, worker, text_update(CHAT, "1"))
    say(client, worker, text_update(OTHER_CHAT, "1"))
    assert fake.sent(CHAT)[-1].params["text"] == fake.sent(OTHER_CHAT)[-1].params["text"]


def test_blocking_the_bot_marks_the_respondent_unreachable_and_nothing_more_goes(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker
) -> None:
    post(client, text_update(CHAT, "/start"))
    assert post(client, member_update(CHAT, "kicked")) == 200  # before the worker sent it
    assert unreachable(engine, URN) is True
    assert worker.deliver() == 0
    assert fake.sent(CHAT) == []
    assert [(row["status"], row["error"]) for row in outbox_rows(engine)] == [
        ("failed", "unreachable")
    ]


def test_a_403_marks_the_respondent_unreachable_and_their_later_rows_are_not_sent(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker
) -> None:
    fake.block(CHAT)
    for update in (
        text_update(CHAT, "/start"),
        tap_update(CHAT, "consent:1"),
        text_update(CHAT, "1"),
    ):
        assert post(client, update) == 200
    post(client, text_update(OTHER_CHAT, "/start"))

    worker.deliver()

    assert len(fake.sent(CHAT)) == 1  # the 403; nothing after it was tried
    assert len(fake.sent(OTHER_CHAT)) == 1  # another chat is not held back
    rows = [(row["status"], row["error"]) for row in outbox_rows(engine) if row["urn"] == URN]
    [(first, why), *later] = rows
    assert first == "failed"
    assert "blocked" in why
    assert later == [("failed", "unreachable")] * 2
    assert unreachable(engine, URN) is True


def test_a_429_is_sent_again_after_retry_after_and_not_before(
    client: FlaskClient,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
) -> None:
    fake.flood(CHAT, retry_after=7)
    assert post(client, text_update(CHAT, "/start")) == 200
    started = datetime.now(UTC)
    with Worker(config, handler, engine, FakeClock(started)) as worker:
        step = worker.channel.send_due(worker.pacer, threading.Event())  # one try
    assert step.tried
    [row] = outbox_rows(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert len(fake.sent(CHAT)) == 1  # the refused attempt

    with Worker(config, handler, engine, FakeClock(started + timedelta(seconds=6))) as worker:
        worker.deliver()
        assert len(fake.sent(CHAT)) == 1  # too soon

    with Worker(config, handler, engine, FakeClock(started + timedelta(seconds=8))) as worker:
        worker.deliver()
    first, second = fake.sent(CHAT)
    assert second.params["text"] == first.params["text"]
    [row] = outbox_rows(engine)
    assert row["status"] == "sent"
    assert row["attempts"] == 2


def test_no_answer_from_telegram_is_never_resent(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker
) -> None:
    fake.hang_up_on("sendMessage", CHAT)
    assert post(client, text_update(CHAT, "/start")) == 200
    worker.deliver()
    [row] = outbox_rows(engine)
    assert row["status"] == "unknown"
    assert "not resent" in row["error"]
    worker.clock.at += timedelta(hours=1)
    worker.deliver()
    assert len(fake.sent(CHAT)) == 1


def test_a_slow_send_is_given_up_and_never_resent(
    client: FlaskClient,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
) -> None:
    with Worker(config, handler, engine, timeouts=SHORT_TIMEOUTS) as worker:
        say(
            client, worker, text_update(OTHER_CHAT, "/start")
        )  # the Bot set up, its connection warm
        fake.stall("sendMessage", SLOW, CHAT)
        assert post(client, text_update(CHAT, "/start")) == 200
        worker.deliver()
        [row] = [row for row in outbox_rows(engine) if row["urn"] == URN]
        assert row["status"] == "unknown"
        assert "not resent" in row["error"]  # it reached Telegram: it may have been delivered
        worker.clock.at += timedelta(hours=1)
        worker.deliver()
    assert len(fake.sent(CHAT)) == 1


def test_a_database_failure_is_a_5xx_and_the_retry_is_answered(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker
) -> None:
    update = text_update(CHAT, "/start")
    tap = tap_update(CHAT, "consent:1")
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE inbox RENAME TO inbox_away")
    try:
        assert post(client, update) == 503
        refused = send(client, tap)
        assert refused.status_code == 503
        assert refused.mimetype == "text/plain"  # the tap is not answered: Telegram retries
    finally:
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE inbox_away RENAME TO inbox")
    assert worker.deliver() == 0
    assert fake.sent() == []
    assert outbox_rows(engine) == []
    assert say(client, worker, update) == 200  # Telegram's retries
    assert tap_answered(send(client, tap).get_json(), tap)
    worker.deliver()
    assert len(fake.sent(CHAT)) == 2


def test_a_tap_with_nothing_to_answer_is_still_acknowledged(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine
) -> None:
    tap = tap_update(CHAT, "x")
    del tap["callback_query"]["data"]
    response = send(client, tap)
    assert response.status_code == 200
    assert tap_answered(response.get_json(), tap)
    assert fake.calls == []
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
    assert fake.calls == []


def test_replies_queued_earlier_go_first_and_each_chat_in_its_order(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, handler: TurnHandler, worker: Worker
) -> None:
    handler.handle(
        channel="telegram",
        message_id="queued-earlier",
        urn=f"telegram:{OTHER_CHAT}",
        inbound=Inbound("/start"),
        queue_replies=True,
    )
    assert post(client, text_update(CHAT, "/start")) == 200
    assert post(client, tap_update(CHAT, "consent:1")) == 200
    assert fake.calls == []
    worker.deliver()
    assert [call.params["chat_id"] for call in fake.sent()] == [OTHER_CHAT, CHAT, CHAT]
    assert {row["status"] for row in outbox_rows(engine)} == {"sent"}


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
    assert outbox_rows(engine) == []


def test_text_with_lone_surrogates_and_nul_is_read_without_them(
    client: FlaskClient, fake: FakeTelegram, engine: sa.Engine, worker: Worker
) -> None:
    assert say(client, worker, text_update(CHAT, "Hi\ud800\x00 there")) == 200
    assert inbox_count(engine) == 1
    assert fake.sent()


ORDER_CHATS = range(811_000, 811_010)


def replies_to(flow: Flow, *inbounds: Inbound) -> list[str]:
    """Every reply the engine gives a new respondent to `inbounds`, in order."""
    state, texts = State(), list[str]()
    for inbound in inbounds:
        turn = step(flow, state, inbound, datetime(2026, 11, 2, 9, tzinfo=UTC))
        state = turn.state
        texts.extend(reply.text for reply in turn.outbound)
    return texts


def turn_order(engine: sa.Engine, chat: int) -> list[str]:
    """The update ids of a chat's turns, in the order they were taken."""
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.text(
                    "SELECT i.provider_message_id FROM inbox i"
                    " JOIN respondents r ON r.id = i.respondent_id"
                    " WHERE r.urn_digest = :digest ORDER BY i.id"
                ),
                {"digest": urn_digest(engine, f"telegram:{chat}")},
            ).scalars()
        )


def test_two_answers_at_once_from_each_of_ten_chats_arrive_in_the_order_of_their_turns(
    app: Flask,
    fake: FakeTelegram,
    engine: sa.Engine,
    config: Config,
    handler: TurnHandler,
    flow: Flow,
) -> None:
    """Two workers send while the turns are taken: each chat's replies still reach it in the
    order of its turns, whichever of its two answers was taken first."""
    stop = threading.Event()
    workers = [
        threading.Thread(
            target=run_worker,
            args=(config, handler),
            kwargs={
                "engine": engine,
                "stop": stop,
                "idle_wait": 0.02,
                "pacer": Pacer(per_chat=0.05, overall=0.002),
            },
        )
        for _ in range(2)
    ]
    opening = ("/start", "consent:1", "mode:1")
    said: dict[str, Inbound] = {}
    for worker in workers:
        worker.start()
    try:
        client = app.test_client()
        for chat in ORDER_CHATS:
            for text in opening:
                update = tap_update(chat, text) if ":" in text else text_update(chat, text)
                said[str(update["update_id"])] = (
                    Inbound("", button=text) if ":" in text else Inbound(text)
                )
                assert post(client, update) == 200
        answers = [text_update(chat, text) for chat in ORDER_CHATS for text in ("1", "2")]
        for update in answers:
            said[str(update["update_id"])] = Inbound(update["message"]["text"])
        together = threading.Barrier(len(answers))
        statuses: list[int] = []

        def answer(update: dict[str, Any]) -> None:
            own_client = app.test_client()
            together.wait()
            statuses.append(post(own_client, update))

        threads = [threading.Thread(target=answer, args=(update,)) for update in answers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert statuses == [200] * len(answers)
        expected = {
            chat: replies_to(flow, *(said[update] for update in turn_order(engine, chat)))
            for chat in ORDER_CHATS
        }
        deadline = time.monotonic() + 30
        while len(fake.sent()) < sum(map(len, expected.values())) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)

    for chat in ORDER_CHATS:
        assert len(turn_order(engine, chat)) == 5
        assert [call.params["text"] for call in fake.sent(chat)] == expected[chat], chat
    assert {row["status"] for row in outbox_rows(engine)} == {"sent"}


@pytest.mark.parametrize("query_id", [False, 0, "", None, ["x"]])
def test_a_tap_whose_id_is_not_telegrams_string_is_taken_and_not_answered(
    client: FlaskClient, query_id: object
) -> None:
    """Found by fuzzing: a callback query whose id is `false` was answered with that id."""
    update = {
        "update_id": 700001,
        "callback_query": {
            "id": query_id,
            "from": {"id": 810778, "is_bot": False, "first_name": "Resident"},
            "chat_instance": "-1000",
            "data": "consent:1",
            "message": {
                "message_id": 4,
                "date": 1790000000,
                "chat": {"id": 810778, "type": "private", "first_name": "Resident"},
                "text": "the question",
            },
        },
    }
    response = client.post("/webhooks/telegram", json=update, headers={SECRET_HEADER: SECRET})
    assert response.status_code == 200
    assert response.get_data() == b""
