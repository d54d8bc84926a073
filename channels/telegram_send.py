"""Rendering a reply for Telegram, sending it, and judging what a failure means.

An `Outbound` is sent as its text, with its buttons as an inline keyboard, one button a row
(the label as shown, the payload as `callback_data`). Telegram refuses `callback_data` over 64
bytes; a message with such a payload goes without a keyboard, since every choice is also
numbered in the text and can be typed.

A failed send is judged by whether Telegram certainly did not take the message:
- "blocked": 403, the respondent blocked the bot (they become unreachable; never retried);
- "retry": Telegram answered with an error of its own (429 with `retry_after`, a 5xx with a
  JSON body, a rejected token) or the request never left (connection refused, connect or
  pool timeout): it is safe to send again later;
- "failed": Telegram refused the message itself (400: bad chat, text too long): never retried;
- "unknown": the request may have reached Telegram and no answer came back (read timeout,
  dropped connection, a gateway's HTML error page). It is never sent again automatically, as
  that could deliver it twice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Literal

import httpx
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    NetworkError,
    RetryAfter,
    TelegramError,
)

from bot.messages import Button, Outbound
from channels.telegram_bot import BotThread, BotUnavailable

MAX_CALLBACK_DATA_BYTES = 64
NOT_SENT_CAUSES = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
"""httpx failures that happen before any byte of the request reaches the server."""

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
    if isinstance(error, BotUnavailable):
        return Delivery("retry", error=reason)
    if isinstance(error, NetworkError):
        cause = error.__cause__
        if isinstance(cause, NOT_SENT_CAUSES):
            return Delivery("retry", error=reason)
        if cause is None:
            return Delivery("retry", error=reason)  # Telegram's own JSON error answer (5xx)
        return Delivery("unknown", error=reason)
    return Delivery("retry", error=reason)  # InvalidToken, Conflict: answered, not accepted
