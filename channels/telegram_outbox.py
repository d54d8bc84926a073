"""Sending claimed Telegram outbox rows and recording each outcome, within Telegram's limits.

The rule it keeps: a row is sent again only when Telegram certainly did not take it, and
nothing is handed to Telegram before the row is marked "sending" (so a worker that dies
holding a claim it had not begun is replaced by the next claim, and one that dies mid-send
leaves an "unknown" row, never a resend; see `storage.outbox`). Every row handed to `send_row`
has been claimed; `send_row` begins it (or finds the claim lost and sends nothing) and records
what the send proved (see `channels.telegram_send`):
- sent: `mark_sent` with Telegram's message id;
- blocked (403): the respondent is marked unreachable and the row failed, never retried;
- retry (Telegram certainly did not take it): pending again after `RetryPolicy.delay`, an
  exponential back-off with jitter, capped, and never sooner than a 429's `retry_after`;
  given up (failed) once the row is older than `RetryPolicy.give_up_after`;
- failed (400): failed, never retried;
- unknown (the request went out and no answer came): "unknown", never resent, because
  Telegram may have delivered it; staff see it (README, "When a Telegram send fails").

`Pacer` keeps sends about 1 a second per chat and 30 a second overall, and holds a chat back
for as long as a 429 said. The worker never waits holding a claim for longer than
`PACING_SLEEP_LIMIT`: a row whose chat must wait longer is released (pending again from when
it may go, no attempt counted), so one chat held back never stalls the others, and a worker
stopped mid-way leaves nothing claimed that it did not send. Time comes from a `Clock`, so
tests run without sleeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa

from bot.messages import Outbound
from channels.sending import DEFAULT_POLICY, Clock, RetryPolicy
from channels.telegram_bot import BotThread
from channels.telegram_parse import chat_id_of
from channels.telegram_send import Delivery, send_now
from storage import outbox
from storage.outbox import OutboxMessage

PER_CHAT_INTERVAL = 1.0
PACING_SLEEP_LIMIT = 0.2
"""The longest pacing pause (seconds) slept through holding a claimed row."""
OVERALL_INTERVAL = 1.0 / 30
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """One begun send: how it went, and when the row goes again (None: it is settled)."""

    delivery: Delivery
    retry_at: datetime | None = None


@dataclass(frozen=True)
class Attempt:
    """What a worker did with one claimed row: whether it was handed to Telegram (`tried`),
    and when it may go again (released for pacing, or to be retried; None: settled)."""

    tried: bool
    again_at: datetime | None = None


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
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Attempt:
    """Send one claimed row when the pacer allows, or release it."""
    chat_id = chat_id_of(row.urn)
    now = clock.now()
    pause = pacer.wait(chat_id, now)
    if pause > PACING_SLEEP_LIMIT:
        not_before = now + timedelta(seconds=pause)
        outbox.release(engine, row, not_before, now)
        return Attempt(tried=False, again_at=not_before)
    if pause > 0:
        clock.sleep(pause)
    if stop.is_set():
        now = clock.now()
        outbox.release(engine, row, now, now)
        return Attempt(tried=False, again_at=now)
    outcome = send_row(
        bot, engine, row, mark_unreachable=mark_unreachable, clock=clock, pacer=pacer, policy=policy
    )
    if outcome is None:
        return Attempt(tried=False)  # its claim was lost: another worker's now
    return Attempt(tried=True, again_at=outcome.retry_at)


def send_row(
    bot: BotThread,
    engine: sa.Engine,
    row: OutboxMessage,
    *,
    mark_unreachable: Callable[[str], None],
    clock: Clock,
    pacer: Pacer | None = None,
    timeout: float | None = None,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> Outcome | None:
    """Begin one claimed row, send it now (waiting at most `timeout` seconds) and record how
    it went. None, with nothing sent, when the claim no longer holds the row."""
    chat_id = chat_id_of(row.urn)
    lease = max(policy.send_lease, timedelta(seconds=2 * bot.timeouts.call_limit))
    if not outbox.begin(engine, row, clock.now(), lease):
        log.warning("telegram outbox %d: its claim ran out before the send; not sent", row.id)
        return None
    delivery = send_now(bot, chat_id, Outbound(row.text, row.buttons), timeout)
    now = clock.now()
    if pacer is not None:
        pacer.sent(chat_id, now)
    retry_at = record(engine, row, delivery, now, mark_unreachable, policy)
    if pacer is not None and retry_at is not None and delivery.retry_after is not None:
        pacer.hold(chat_id, retry_at)
    return Outcome(delivery, retry_at)


def record(
    engine: sa.Engine,
    row: OutboxMessage,
    delivery: Delivery,
    now: datetime,
    mark_unreachable: Callable[[str], None],
    policy: RetryPolicy = DEFAULT_POLICY,
) -> datetime | None:
    """Store the outcome of one begun send; returns when it will be tried again, if it will."""
    error = delivery.error or delivery.verdict
    if delivery.verdict == "sent":
        outbox.mark_sent(engine, row, delivery.provider_message_id or "", now)
        return None
    log.warning("telegram outbox %d: %s (%s)", row.id, delivery.verdict, error)
    if delivery.verdict == "unknown":
        outbox.mark_unknown(engine, row, f"not confirmed, not resent: {error}", now)
        return None
    if delivery.verdict == "retry" and not policy.gives_up(row, now):
        retry_at = now + policy.delay(row.attempts, delivery.retry_after)
        outbox.retry(engine, row, error, now, retry_at)
        return retry_at
    if delivery.verdict == "blocked":
        mark_unreachable(row.urn)
    elif delivery.verdict == "retry":
        error = f"gave up after {row.attempts} tries: {error}"
    outbox.mark_failed(engine, row, error, now)
    return None
