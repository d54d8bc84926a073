"""Sending claimed Telegram outbox rows and recording each outcome, within Telegram's limits.

Every row handed to `send_row` has been claimed ("sending"), and leaves that state only through
what the send proved:
- sent: `mark_sent` with Telegram's message id;
- blocked (403): the respondent is marked unreachable and the row failed, never retried;
- retry (Telegram certainly did not take it): pending again from `retry_at`, which is
  Telegram's `retry_after` for a 429, else a growing back-off; given up after `MAX_ATTEMPTS`;
- failed (400): failed, never retried;
- unknown (no answer after the request went out): failed with the reason, never retried,
  because Telegram may have delivered it and a resend would be a double.

`Pacer` keeps sends about 1 a second per chat and 30 a second overall, and holds a chat back
for as long as a 429 said. The worker never waits holding a claim for longer than
`PACING_SLEEP_LIMIT`: a row whose chat must wait longer is released (pending again from when
it may go, its claim not counted as an attempt), so one chat held back never stalls the others,
and a worker stopped mid-way leaves nothing in "sending" that it did not send. Time comes from
a `Clock`, so tests run without sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import sqlalchemy as sa

from bot.messages import Outbound
from channels.telegram_bot import BotThread
from channels.telegram_parse import chat_id_of
from channels.telegram_send import Delivery, send_now
from storage import outbox
from storage.outbox import OutboxMessage

PER_CHAT_INTERVAL = 1.0
PACING_SLEEP_LIMIT = 0.2
"""The longest pacing pause (seconds) slept through holding a claimed row."""
OVERALL_INTERVAL = 1.0 / 30
MAX_ATTEMPTS = 8
FIRST_BACKOFF = timedelta(seconds=5)
MAX_BACKOFF = timedelta(minutes=30)

log = logging.getLogger(__name__)


class Clock(Protocol):
    def now(self) -> datetime: ...

    def sleep(self, seconds: float) -> None: ...


@dataclass
class SystemClock:
    """Real time; `sleep` wakes early when `stop` is set."""

    stop: threading.Event = field(default_factory=threading.Event)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float) -> None:
        self.stop.wait(seconds)


@dataclass
class Pacer:
    """When the next message may go, per chat and overall."""

    per_chat: float = PER_CHAT_INTERVAL
    overall: float = OVERALL_INTERVAL
    _chat_free_at: dict[int, float] = field(default_factory=dict)
    _free_at: float = 0.0

    def wait(self, chat_id: int, now: datetime) -> float:
        """Seconds to wait before sending to `chat_id`."""
        at = now.timestamp()
        return max(0.0, self._free_at - at, self._chat_free_at.get(chat_id, 0.0) - at)

    def sent(self, chat_id: int, now: datetime) -> None:
        at = now.timestamp()
        self._free_at = at + self.overall
        self._chat_free_at[chat_id] = max(self._chat_free_at.get(chat_id, 0.0), at + self.per_chat)
        if len(self._chat_free_at) > 10_000:  # forget chats that are free again
            self._chat_free_at = {c: t for c, t in self._chat_free_at.items() if t > at}

    def hold(self, chat_id: int, until: datetime) -> None:
        self._chat_free_at[chat_id] = max(self._chat_free_at.get(chat_id, 0.0), until.timestamp())


def send_paced(
    bot: BotThread,
    engine: sa.Engine,
    row: OutboxMessage,
    *,
    pacer: Pacer,
    clock: Clock,
    stop: threading.Event,
    mark_unreachable: Callable[[str], None],
) -> datetime | None:
    """Send one claimed row when the pacer allows, or release it. Returns None once it was
    sent (or tried); else when the released row may go."""
    chat_id = chat_id_of(row.urn)
    now = clock.now()
    pause = pacer.wait(chat_id, now)
    if pause > PACING_SLEEP_LIMIT:
        not_before = now + timedelta(seconds=pause)
        outbox.release(engine, row.id, not_before, now)
        return not_before
    if pause > 0:
        clock.sleep(pause)
    if stop.is_set():
        now = clock.now()
        outbox.release(engine, row.id, now, now)
        return now
    send_row(bot, engine, row, mark_unreachable=mark_unreachable, clock=clock, pacer=pacer)
    return None


def send_row(
    bot: BotThread,
    engine: sa.Engine,
    row: OutboxMessage,
    *,
    mark_unreachable: Callable[[str], None],
    clock: Clock,
    pacer: Pacer | None = None,
    timeout: float | None = None,
) -> Delivery:
    """Send one claimed row now (waiting at most `timeout` seconds) and record how it went."""
    chat_id = chat_id_of(row.urn)
    delivery = send_now(bot, chat_id, Outbound(row.text, row.buttons), timeout)
    now = clock.now()
    if pacer is not None:
        pacer.sent(chat_id, now)
    retry_at = record(engine, row, delivery, now, mark_unreachable)
    if pacer is not None and retry_at is not None and delivery.retry_after is not None:
        pacer.hold(chat_id, retry_at)
    return delivery


def record(
    engine: sa.Engine,
    row: OutboxMessage,
    delivery: Delivery,
    now: datetime,
    mark_unreachable: Callable[[str], None],
) -> datetime | None:
    """Store the outcome of one send; returns when it will be tried again, if it will."""
    error = delivery.error or delivery.verdict
    if delivery.verdict == "sent":
        outbox.mark_sent(engine, row.id, delivery.provider_message_id or "", now)
        return None
    log.warning("telegram outbox %d: %s (%s)", row.id, delivery.verdict, error)
    if delivery.verdict == "blocked":
        mark_unreachable(row.urn)
    retry_at = None
    if delivery.verdict == "retry" and row.attempts < MAX_ATTEMPTS:
        retry_at = now + (delivery.retry_after or backoff(row.attempts))
    elif delivery.verdict == "unknown":
        error = f"not confirmed, not resent: {error}"
    outbox.mark_failed(engine, row.id, error, now, retry_at)
    return retry_at


def backoff(attempts: int) -> timedelta:
    """5 s, 10 s, 20 s… up to 30 minutes, after the `attempts`-th failed try."""
    doubled: timedelta = FIRST_BACKOFF * 2 ** min(max(attempts - 1, 0), 16)
    return min(doubled, MAX_BACKOFF)
