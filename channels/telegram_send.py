"""Rendering a reply for Telegram, sending it, and judging what a failure means.

An `Outbound` is sent as its text, with its buttons as an inline keyboard, one button a row
(the label as shown, the payload as `callback_data`). Telegram refuses `callback_data` over 64
bytes; a message with such a payload goes without a keyboard, since every choice is also
numbered in the text and can be typed.

A failed send is judged by whether Telegram certainly did not take the message (the Bot's
`DeliveryRequest` tells the two apart, see `channels.telegram_request`):
- "blocked": 403, the respondent blocked the bot (they become unreachable; never retried);
- "retry": Telegram cannot have it, so it is safe to send again later: a 429 (with its
  `retry_after`), a 5xx error answer (JSON or a gateway's HTML page, but not 504), a rejected
  token, a connection refused or reset before any answer, a request not sent in full, or a
  Bot that could not be set up;
- "failed": Telegram refused the message itself (400: bad chat, text too long): never retried;
- "unknown": the whole request went out and no answer says what became of it (read timeout,
  connection closed without an answer, 504, a 2xx that is not Telegram's, a caller that gave
  up once the send had begun). It is never sent again automatically, as that could deliver it
  twice. Any failure this module cannot place is unknown too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Conflict,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.messages import Button, Outbound
from channels.telegram_bot import BotThread, BotUnavailable
from channels.telegram_request import CONNECT_FAILURES, MaybeDelivered, NotDelivered

MAX_CALLBACK_DATA_BYTES = 64

Verdict = Literal["sent", "blocked", "retry", "failed", "unknown"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Delivery:
    """How one send went. `retry_after` is Telegram's own wait (429), when it gave one."""

    verdict: Verdict
    provider_message_id: str | None = None
    error: str | None = None
    retry_after: timedelta | None = None


def keyboard(buttons: tuple[Button, ...]) -> InlineKeyboardMarkup | None:
    """One button a row; None when there are none or a payload is too long for Telegram."""
    if not buttons:
        return None
    if any(len(b.payload.encode()) > MAX_CALLBACK_DATA_BYTES for b in buttons):
        log.warning("a button payload is over %d bytes: sent without buttons", 64)
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(b.label, callback_data=b.payload)] for b in buttons]
    )


async def send(bot: Bot, chat_id: int, reply: Outbound) -> Delivery:
    """Send one reply and judge the outcome; never raises a Telegram error."""
    try:
        message = await bot.send_message(chat_id, reply.text, reply_markup=keyboard(reply.buttons))
    except TelegramError as error:
        return judge(error)
    return Delivery("sent", provider_message_id=str(message.message_id))


def send_now(
    bot: BotThread, chat_id: int, reply: Outbound, timeout: float | None = None
) -> Delivery:
    """Send from synchronous code, waiting at most `timeout` seconds (default: the Bot's own
    limit); a Bot that cannot start, or a call given up once it had begun, is judged too."""
    try:
        delivery = bot.call(lambda b: send(b, chat_id, reply), timeout=timeout)
    except TelegramError as error:
        delivery = judge(error)
    except TimeoutError:
        delivery = Delivery("unknown", error="no answer from Telegram in time")
    if delivery.error is None:
        return delivery
    return replace(delivery, error=bot.redact(delivery.error))


async def answer_tap(bot: Bot, callback_query_id: str) -> bool:
    """Stop the button's spinner. A failure (a query too old, say) changes nothing else."""
    try:
        return await bot.answer_callback_query(callback_query_id)
    except TelegramError as error:
        log.info("answerCallbackQuery failed: %s", type(error).__name__)
        return False


def judge(error: TelegramError) -> Delivery:
    """The verdict on a failed send (see the module docstring)."""
    reason = f"{type(error).__name__}: {error.message}"
    if isinstance(error, RetryAfter):
        wait = error.retry_after  # a timedelta with PTB_TIMEDELTA (see telegram_bot)
        seconds = wait if isinstance(wait, timedelta) else timedelta(seconds=wait)
        return Delivery("retry", error=reason, retry_after=seconds)
    if isinstance(error, Forbidden):
        return Delivery("blocked", error=reason)
    if isinstance(error, BadRequest | ChatMigrated):
        return Delivery("failed", error=reason)
    if isinstance(error, NotDelivered | BotUnavailable | InvalidToken | Conflict):
        return Delivery("retry", error=reason)  # answered and refused, or never sent
    if isinstance(error, MaybeDelivered):
        return Delivery("unknown", error=reason)
    if isinstance(error, NetworkError):
        return _judge_unclassified(error, reason)
    return Delivery("unknown", error=reason)


def _judge_unclassified(error: NetworkError, reason: str) -> Delivery:
    """A network error from a request other than `DeliveryRequest`: sent again only when
    nothing can have left, or when Telegram itself answered (PTB raises its error answers
    with no cause)."""
    cause = error.__cause__
    if cause is None or isinstance(cause, CONNECT_FAILURES):
        return Delivery("retry", error=reason)
    return Delivery("unknown", error=reason)
