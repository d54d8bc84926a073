"""Long polling and the outbox worker, against the fake Bot API server and a real database."""

from __future__ import annotations

import logging
import signal
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
import sqlalchemy as sa

from bot.messages import Inbound
from channels.telegram import POISON_LIMIT, run_polling, run_worker
from dibot.config import Config
from dibot.turns import TurnHandler, TurnResult
from flows.model import Flow
from tests.fake_telegram import FakeTelegram, tap_update, text_update
from tests.telegram_support import FakeClock, first_replies, outbox_rows, telegram_config

CHAT = 920001
OTHER_CHAT = 920002


@pytest.fixture
def config(fake: FakeTelegram, database_url: str) -> Config:
    return telegram_config(fake, database_url)


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow) -> TurnHandler:
    return TurnHandler(engine, flow)


def texts(fake: FakeTelegram, chat_id: int) -> list[str]:
    return [call.params["text"] for call in fake.sent(chat_id)]


def test_polled_updates_are_answered_in_order(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine, flow: Flow
) -> None:
    fake.push_update(text_update(CHAT, "/start"))
    fake.push_update(text_update(OTHER_CHAT, "/start"))
    fake.push_update(tap_update(CHAT, "consent:1"))
    fake.push_update(text_update(CHAT, "1"))

    taken = run_polling(config, handler, engine=engine, max_updates=4, poll_timeout=1)

    assert taken == 4
    said = [Inbound("/start"), Inbound("", button="consent:1"), Inbound("1")]
    expected = [first_replies(flow, *said[: n + 1])[0].text for n in range(3)]
    assert texts(fake, CHAT) == expected
    assert texts(fake, OTHER_CHAT) == expected[:1]
    methods = [call.method for call in fake.calls]
    assert methods[:3] == ["getMe", "deleteWebhook", "getUpdates"]
    assert len(fake.calls_to("answerCallbackQuery")) == 1
    assert {row["status"] for row in outbox_rows(engine)} == {"sent"}


def test_digit_lookalikes_and_huge_digit_runs_are_answered_at_once_by_polling(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    """Each once failed its turn, and polling retried it (about 10 s a time) before moving on."""
    for text in ("/start", "❶", "፩", "9" * 5000, "⓵"):
        fake.push_update(text_update(CHAT, text))

    taken = run_polling(config, handler, engine=engine, max_updates=5, poll_timeout=1)

    assert taken == 5
    said = texts(fake, CHAT)
    assert len(said) == 5
    assert all(text.startswith("Sorry, please reply with a number") for text in said[1:3])
    assert len(fake.calls_to("getUpdates")) == 1 + 1  # one batch, and the call that confirms it


def test_taken_updates_are_not_taken_again(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    fake.push_update(text_update(CHAT, "/start"))
    run_polling(config, handler, engine=engine, max_updates=1, poll_timeout=1)
    fake.push_update(text_update(CHAT, "1"))
    assert run_polling(config, handler, engine=engine, max_updates=1, poll_timeout=1) == 1
    assert len(fake.sent(CHAT)) == 2


def test_polling_stops_when_asked(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    stop = threading.Event()
    poller = threading.Thread(
        target=run_polling,
        args=(config, handler),
        kwargs={"engine": engine, "stop": stop, "poll_timeout": 1},
    )
    poller.start()
    fake.push_update(text_update(CHAT, "/start"))
    fake.wait_for("sendMessage", 1)
    stop.set()
    poller.join(timeout=10)
    assert not poller.is_alive()
    assert len(fake.sent(CHAT)) == 1


def test_an_update_whose_turn_failed_is_taken_again_once_the_database_is_back(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("ALTER TABLE inbox RENAME TO inbox_away")
    fake.push_update(text_update(CHAT, "/start"))
    stop = threading.Event()
    poller = threading.Thread(
        target=run_polling,
        args=(config, handler),
        kwargs={"engine": engine, "stop": stop, "poll_timeout": 1, "error_wait": 0.05},
    )
    poller.start()
    try:
        fake.wait_for("getUpdates", 3)  # the same update served, and failed, more than once
        assert fake.sent() == []
        with engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE inbox_away RENAME TO inbox")
        fake.wait_for("sendMessage", 1)
    finally:
        stop.set()
        poller.join(timeout=10)
    assert len(fake.sent(CHAT)) == 1


class FailingOn(TurnHandler):
    """A turn handler with a bug that one update always meets (an exception that is not the
    database's): the fault polling must survive."""

    def __init__(self, engine: sa.Engine, flow: Flow, message_id: str) -> None:
        super().__init__(engine, flow)
        self.poison = message_id

    def handle(self, **turn: Any) -> TurnResult:
        if turn["message_id"] == self.poison:
            raise RuntimeError("simulated bug")
        return super().handle(**turn)


def test_an_update_that_keeps_failing_is_skipped_and_later_ones_are_answered(
    fake: FakeTelegram,
    config: Config,
    handler: TurnHandler,
    engine: sa.Engine,
    flow: Flow,
    caplog: pytest.LogCaptureFixture,
) -> None:
    handler.handle(
        channel="telegram", message_id="earlier", urn=f"telegram:{CHAT}", inbound=Inbound("/start")
    )
    poison = fake.push_update(text_update(CHAT, "1"))
    fake.push_update(text_update(OTHER_CHAT, "/start"))
    failing = FailingOn(engine, flow, str(poison["update_id"]))

    with caplog.at_level(logging.INFO, logger="channels.telegram"):
        taken = run_polling(
            config, failing, engine=engine, max_updates=1, poll_timeout=1, error_wait=0.01
        )

    assert taken == 1
    assert len(fake.sent(OTHER_CHAT)) == 1
    assert fake.sent(CHAT) == []
    failures = [m for r in caplog.records if str(poison["update_id"]) in (m := r.getMessage())]
    assert len(failures) == POISON_LIMIT
    assert "skipped" in failures[-1]
    assert str(CHAT) not in caplog.text  # the update id and the error's type, nothing else
    assert "simulated bug" not in caplog.text

    fake.push_update(text_update(OTHER_CHAT, "1"))
    assert run_polling(config, handler, engine=engine, max_updates=1, poll_timeout=1) == 1
    assert len(fake.sent(OTHER_CHAT)) == 2
    assert fake.sent(CHAT) == []  # the skipped update was confirmed, not served again


@pytest.mark.parametrize("signal_number", [signal.SIGTERM, signal.SIGINT])
def test_polling_stops_on_sigterm_or_sigint_after_the_update_in_hand(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine, signal_number: int
) -> None:
    stop = threading.Event()
    forced: list[bool] = []

    def signal_once_answered() -> None:
        fake.wait_for("sendMessage", 1)
        signal.pthread_kill(threading.main_thread().ident or 0, signal_number)
        if not stop.wait(10):  # the poller did not stop: end the test's run anyway
            forced.append(True)
            stop.set()

    reached: list[int] = []

    def before(number: int, frame: object) -> None:
        reached.append(number)

    previous = signal.signal(signal_number, before)
    signaller = threading.Thread(target=signal_once_answered)
    try:
        fake.push_update(text_update(CHAT, "/start"))
        signaller.start()
        taken = run_polling(config, handler, engine=engine, stop=stop, poll_timeout=1)
        restored = signal.getsignal(signal_number)
    finally:
        stop.set()
        signaller.join(timeout=15)
        signal.signal(signal_number, previous)
    assert (forced, reached) == ([], [])  # the poller's own handler took the signal
    assert restored is before  # and the one before it is back
    assert taken == 1
    assert len(fake.sent(CHAT)) == 1


def queue_turns(handler: TurnHandler, chat_id: int, *said: str) -> None:
    for n, text in enumerate(said):
        handler.handle(
            channel="telegram",
            message_id=f"{chat_id}-{n}",
            urn=f"telegram:{chat_id}",
            inbound=Inbound(text),
            queue_replies=True,
        )


def test_the_worker_sends_at_most_one_message_a_second_to_a_chat(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    queue_turns(handler, CHAT, "/start", "1", "1")
    queue_turns(handler, OTHER_CHAT, "/start")
    clock = FakeClock(datetime.now(UTC))

    claimed = run_worker(config, handler, engine=engine, clock=clock, until_empty=True)

    assert claimed == 4
    assert len(fake.sent(CHAT)) == 3
    assert len(fake.sent(OTHER_CHAT)) == 1
    assert sum(clock.slept) == pytest.approx(2.0, abs=1e-3)  # three to one chat: 2 s apart
    assert {row["status"] for row in outbox_rows(engine)} == {"sent"}


def test_the_worker_sends_at_most_thirty_messages_a_second_overall(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    chats = range(930000, 930031)
    for chat in chats:
        queue_turns(handler, chat, "/start")
    clock = FakeClock(datetime.now(UTC))

    run_worker(config, handler, engine=engine, clock=clock, until_empty=True)

    assert len(fake.sent()) == 31
    assert sum(clock.slept) == pytest.approx(1.0)  # 31 messages: 30 intervals of 1/30 s


def test_the_worker_skips_respondents_who_blocked_the_bot(
    fake: FakeTelegram, config: Config, handler: TurnHandler, engine: sa.Engine
) -> None:
    queue_turns(handler, CHAT, "/start")
    handler.mark_unreachable(f"telegram:{CHAT}")
    run_worker(config, handler, engine=engine, clock=FakeClock(datetime.now(UTC)), until_empty=True)
    assert fake.sent() == []
    assert [(row["status"], row["error"]) for row in outbox_rows(engine)] == [
        ("failed", "unreachable")
    ]
