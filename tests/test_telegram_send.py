"""Sending through python-telegram-bot to a fake Bot API server, and judging each failure."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import timedelta

import pytest

from bot.messages import Button, Outbound
from channels.telegram_bot import BotThread, BotUnavailable, Timeouts
from channels.telegram_send import Delivery, answer_tap, keyboard, send_now
from dibot.config import TelegramConfig
from tests.fake_telegram import FakeTelegram, keyboard_labels, keyboard_payloads

CHAT = 555001
QUESTION = Outbound(
    "Q1 of 3 Do you have a device?\n1 No\n2 Yes",
    (Button("1 No", "BA01.access:1"), Button("2 Yes", "BA01.access:2")),
)


@pytest.fixture
def bot(fake: FakeTelegram) -> Iterator[BotThread]:
    thread = BotThread(TelegramConfig(bot_token=fake.token, api_base_url=fake.base_url))
    yield thread
    thread.close()


def deliver(bot: BotThread, reply: Outbound, chat_id: int = CHAT) -> Delivery:
    return send_now(bot, chat_id, reply)


def test_a_question_arrives_as_text_with_one_button_a_row(
    fake: FakeTelegram, bot: BotThread
) -> None:
    delivery = deliver(bot, QUESTION)
    assert delivery.verdict == "sent"
    [call] = fake.sent(CHAT)
    assert call.params["text"] == QUESTION.text
    assert keyboard_labels(call) == [["1 No"], ["2 Yes"]]
    assert list(keyboard_payloads(call)) == ["BA01.access:1", "BA01.access:2"]
    assert delivery.provider_message_id is not None


def test_a_message_without_buttons_has_no_keyboard(fake: FakeTelegram, bot: BotThread) -> None:
    assert deliver(bot, Outbound("Thanks.")).verdict == "sent"
    [call] = fake.sent(CHAT)
    assert call.params["text"] == "Thanks."
    assert "reply_markup" not in call.params


def test_a_payload_over_64_bytes_sends_the_numbered_text_without_buttons(
    fake: FakeTelegram, bot: BotThread
) -> None:
    long = Outbound("Pick one\n1 Yes", (Button("1 Yes", "x" * 65),))
    assert keyboard(long.buttons) is None
    assert keyboard((Button("1 Yes", "é" * 32),)) is not None  # 64 bytes exactly
    assert deliver(bot, long).verdict == "sent"
    assert "reply_markup" not in fake.sent(CHAT)[0].params


def test_one_bot_serves_many_calls_on_its_own_loop(fake: FakeTelegram, bot: BotThread) -> None:
    for n in range(5):
        deliver(bot, Outbound(f"message {n}"))
    assert [c.params["text"] for c in fake.sent(CHAT)] == [f"message {n}" for n in range(5)]
    assert len(fake.calls_to("getMe")) == 1


def test_a_blocked_chat_is_judged_blocked(fake: FakeTelegram, bot: BotThread) -> None:
    fake.block(CHAT)
    delivery = deliver(bot, QUESTION)
    assert delivery.verdict == "blocked"
    assert delivery.error is not None
    assert "blocked" in delivery.error


def test_flood_control_says_when_to_retry(fake: FakeTelegram, bot: BotThread) -> None:
    fake.flood(CHAT, retry_after=3)
    delivery = deliver(bot, QUESTION)
    assert delivery.verdict == "retry"
    assert delivery.retry_after == timedelta(seconds=3)
    assert deliver(bot, QUESTION).verdict == "sent"


def test_a_bad_request_is_not_retried(fake: FakeTelegram, bot: BotThread) -> None:
    fake.refuse("sendMessage", CHAT, status=400, description="Bad Request: message is too long")
    assert deliver(bot, QUESTION).verdict == "failed"


def test_an_error_answer_from_telegram_is_retried(fake: FakeTelegram, bot: BotThread) -> None:
    fake.refuse("sendMessage", CHAT, status=500, description="Internal Server Error", times=1)
    assert deliver(bot, QUESTION).verdict == "retry"


def test_no_answer_after_the_request_went_out_is_unknown_never_retried(
    fake: FakeTelegram, bot: BotThread
) -> None:
    deliver(bot, Outbound("warm the connection"))
    fake.hang_up_on("sendMessage", CHAT)
    delivery = deliver(bot, QUESTION)
    assert delivery.verdict == "unknown"
    assert len(fake.sent(CHAT)) == 2  # the fake did receive it: a resend would be a double


def test_a_server_that_cannot_be_reached_is_retried_and_no_token_is_reported() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    token = "999:SECRET-token"
    thread = BotThread(TelegramConfig(bot_token=token, api_base_url=f"http://127.0.0.1:{port}/bot"))
    try:
        delivery = deliver(thread, QUESTION)
    finally:
        thread.close()
    assert delivery.verdict == "retry"
    assert delivery.error is not None
    assert token not in delivery.error


def test_a_tap_is_answered(fake: FakeTelegram, bot: BotThread) -> None:
    assert bot.call(lambda b: answer_tap(b, "cq-1")) is True
    [call] = fake.calls_to("answerCallbackQuery")
    assert call.params["callback_query_id"] == "cq-1"


def test_a_failed_tap_answer_changes_nothing(fake: FakeTelegram, bot: BotThread) -> None:
    fake.refuse("answerCallbackQuery", status=400, description="Bad Request: query is too old")
    assert bot.call(lambda b: answer_tap(b, "cq-2")) is False


def test_giving_up_while_the_bot_is_being_set_up_sends_nothing_and_is_retried(
    fake: FakeTelegram, bot: BotThread
) -> None:
    fake.stall("getMe", 5, times=2)
    with pytest.raises(BotUnavailable):
        bot.call(lambda b: b.get_me(), timeout=0.3)
    delivery = send_now(bot, CHAT, QUESTION, timeout=0.3)
    assert delivery.verdict == "retry"  # nothing left the process: safe to send later
    assert fake.sent() == []


def test_giving_up_once_the_send_had_begun_is_unknown_never_retried(
    fake: FakeTelegram, bot: BotThread
) -> None:
    deliver(bot, Outbound("warm the connection"))
    fake.stall("sendMessage", 5, CHAT)
    delivery = send_now(bot, CHAT, QUESTION, timeout=0.3)
    assert delivery.verdict == "unknown"
    assert len(fake.sent(CHAT)) == 2


@pytest.fixture
def impatient_bot(fake: FakeTelegram) -> Iterator[BotThread]:
    """A Bot that waits 0.3 s for an answer, less than the fake holds a delayed one."""
    timeouts = Timeouts(connect=1.0, read=0.3, write=1.0, pool=1.0, margin=1.0)
    thread = BotThread(TelegramConfig(bot_token=fake.token, api_base_url=fake.base_url), timeouts)
    yield thread
    thread.close()


@pytest.mark.parametrize(
    ("fault", "verdict", "received"),
    [
        pytest.param("429", "retry", True, id="429-retry-after"),
        pytest.param("500", "retry", True, id="500-json"),
        pytest.param("502", "retry", True, id="502-html-page"),
        pytest.param("reset", "retry", False, id="reset-before-reading"),
        pytest.param("delay", "unknown", True, id="answer-too-late"),
        pytest.param("drop", "unknown", True, id="closed-after-reading"),
    ],
)
def test_each_provider_fault_is_judged_by_whether_telegram_can_have_it(
    fake: FakeTelegram, impatient_bot: BotThread, fault: str, verdict: str, received: bool
) -> None:
    deliver(impatient_bot, Outbound("warm the connection"))  # faults meet a kept-alive one
    fake.inject(fault)
    delivery = deliver(impatient_bot, QUESTION)
    assert delivery.verdict == verdict, delivery.error
    assert len(fake.sent(CHAT)) == 1 + received  # a reset request was never read
    assert fake.injected_counts() == {fault: 1}
    if fault == "429":
        assert delivery.retry_after == timedelta(seconds=1)
    assert deliver(impatient_bot, Outbound("and after it")).verdict == "sent"


def test_a_reset_on_a_new_connection_is_retried_too(
    fake: FakeTelegram, impatient_bot: BotThread
) -> None:
    fake.inject("reset")
    assert deliver(impatient_bot, QUESTION).verdict == "retry"
    assert fake.sent() == []


def test_a_gateway_timeout_is_unknown_never_retried(fake: FakeTelegram, bot: BotThread) -> None:
    fake.refuse("sendMessage", CHAT, status=504, description="Gateway Timeout", times=1)
    assert deliver(bot, QUESTION).verdict == "unknown"  # the gateway had passed it on


def test_too_many_requests_without_retry_after_is_retried(
    fake: FakeTelegram, bot: BotThread
) -> None:
    fake.refuse("sendMessage", CHAT, status=429, description="Too Many Requests", times=1)
    delivery = deliver(bot, QUESTION)
    assert (delivery.verdict, delivery.retry_after) == ("retry", None)
