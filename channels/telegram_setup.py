"""Pointing Telegram at dibot's webhook, or taking it away: an operator's one-off Bot API calls.

What is checked before any call, so that a mistake reads as one plain line rather than as
Telegram's error after the fact:
- the webhook URL is https (Telegram calls nothing else), except on 127.0.0.1 or localhost,
  where a local Bot API server may call plain http;
- the secret is what Telegram accepts as `secret_token` (1–256 characters of A-Z, a-z, 0-9,
  `_` and `-`), because the webhook refuses every update that does not carry it.

The webhook asks only for the update kinds dibot reads and keeps updates still waiting (a
council switching from long polling loses none). What Telegram answers is reported with the
bot token taken out; the secret is never printed.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from telegram import Bot, WebhookInfo
from telegram.error import TelegramError

from channels.telegram_bot import BotThread
from channels.telegram_parse import ALLOWED_UPDATES
from dibot.config import TelegramConfig

WEBHOOK_PATH = "/webhooks/telegram"
EXAMPLE_URL = f"https://dibot.example.gov.uk{WEBHOOK_PATH}"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
SECRET_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,256}")

Change = Callable[[Bot], Awaitable[bool]]
"""One Bot API call that changes the webhook."""


class WebhookSetupError(ValueError):
    """The URL or the configured secret cannot work: nothing was sent to Telegram."""


class TelegramCallFailed(RuntimeError):
    """Telegram refused the call, or did not answer in time (the token is not in the text)."""


@dataclass(frozen=True)
class WebhookStatus:
    """What getWebhookInfo says: the URL ("" when none), updates waiting, the last failure."""

    url: str
    pending_update_count: int
    last_error: str | None = None
    last_error_at: datetime | None = None

    def lines(self) -> list[str]:
        if self.last_error is None:
            last_error = "none"
        elif self.last_error_at is None:
            last_error = self.last_error
        else:
            last_error = f"{self.last_error_at:%Y-%m-%d %H:%M:%S %Z}: {self.last_error}"
        return [
            f"webhook: {self.url or 'none (updates wait for long polling)'}",
            f"pending updates: {self.pending_update_count}",
            f"last error: {last_error}",
        ]


def check_webhook_url(url: str) -> str:
    """The URL, if Telegram can be pointed at it; else `WebhookSetupError` saying why."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 (raises ValueError on a port that is not a number)
    except ValueError as error:
        raise WebhookSetupError(f"not a usable webhook URL: {error}") from error
    local = host in LOCAL_HOSTS
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        raise WebhookSetupError(
            f"the webhook URL must start with https://, e.g. {EXAMPLE_URL} "
            "(Telegram calls nothing else; plain http only for 127.0.0.1 or localhost)"
        )
    if not host or any(character.isspace() for character in url):
        raise WebhookSetupError(f"the webhook URL needs a host and no spaces, e.g. {EXAMPLE_URL}")
    return url


def path_note(url: str) -> str | None:
    """A word of warning when the URL does not end at dibot's webhook path (a proxy may map
    it, so this is not refused)."""
    if urlsplit(url).path.endswith(WEBHOOK_PATH):
        return None
    return f"note: dibot takes Telegram updates at {WEBHOOK_PATH}, which this URL does not end in"


def check_secret(secret: str) -> str:
    """The secret, if Telegram accepts it as `secret_token`; else `WebhookSetupError`."""
    if not secret:
        raise WebhookSetupError(
            "[telegram] webhook_secret is not set (DIBOT_TELEGRAM_WEBHOOK_SECRET): "
            "without it the webhook refuses every update"
        )
    if not SECRET_PATTERN.fullmatch(secret):
        raise WebhookSetupError(
            "[telegram] webhook_secret must be 1 to 256 characters of A-Z, a-z, 0-9, _ and -"
        )
    return secret


def set_webhook(telegram: TelegramConfig, url: str) -> WebhookStatus:
    """Register `url` with the configured secret, then report what Telegram now holds."""
    secret = check_secret(telegram.webhook_secret)
    url = check_webhook_url(url)

    async def register(bot: Bot) -> bool:
        return await bot.set_webhook(
            url=url,
            secret_token=secret,
            allowed_updates=list(ALLOWED_UPDATES),
            drop_pending_updates=False,
        )

    return _calling(telegram, "setWebhook", register)


def delete_webhook(telegram: TelegramConfig) -> WebhookStatus:
    """Remove the webhook, keeping the updates that wait (long polling takes them)."""

    async def remove(bot: Bot) -> bool:
        return await bot.delete_webhook(drop_pending_updates=False)

    return _calling(telegram, "deleteWebhook", remove)


def _calling(telegram: TelegramConfig, method: str, change: Change) -> WebhookStatus:
    bot = BotThread(telegram)
    doing = method
    try:
        bot.call(change)
        doing = "getWebhookInfo"
        info = bot.call(lambda b: b.get_webhook_info())
    except TelegramError as error:
        reason = bot.redact(f"Telegram {doing} failed: {error.message}")
        raise TelegramCallFailed(reason) from error
    except TimeoutError as error:
        raise TelegramCallFailed(f"no answer from Telegram to {doing} in time") from error
    finally:
        bot.close()
    return _status(info)


def _status(info: WebhookInfo) -> WebhookStatus:
    return WebhookStatus(
        url=info.url,
        pending_update_count=info.pending_update_count,
        last_error=info.last_error_message,
        last_error_at=info.last_error_date,
    )
