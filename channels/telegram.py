"""Telegram: the webhook, long polling and the outbox worker, all through one path per update.

An update is authenticated (webhook: `X-Telegram-Bot-Api-Secret-Token`, compared in constant
time; a missing or wrong secret is a 403 and nothing is read or stored), parsed, and taken as a
turn with its replies queued in the outbox in the turn's own transaction. A database failure is
a 503 (Telegram retries; nothing is acknowledged and then dropped). The same update twice is
taken once.

The webhook makes no Bot API call. It shares its web workers with Twilio's webhooks, which
Twilio gives up on after 15 s, so a Telegram that stalls must never hold one: the webhook
commits the turn and answers, and the worker sends the replies. A tap (callback query) is
answered in the webhook's own HTTP response ("making requests when getting updates" in the
Bot API: a JSON body `{"method": "answerCallbackQuery", "callback_query_id": ...}`), which
Telegram performs as it reads the answer, so the button's spinner stops at once.

The worker (`TelegramChannel.send_due`, looped by `TelegramChannel.run`, `run_worker` or
`dibot worker`) sends whatever the outbox holds, one row at a time, within Telegram's limits
(about 1 a second per chat, 30 a second overall, a 429's `retry_after`), retrying only what
Telegram certainly did not take (see `channels.telegram_outbox`). Each chat's rows go in the
order they were queued: the outbox hands out only a respondent's first unsettled row, so a
reply never overtakes one still waiting, even with several workers. Outreach rows (anything
whose `kind` is not "reply") go only when the council's quiet hours allow (`quiet`): a row
claimed outside them is released, uncounted, until they next open; replies go at any hour.
When nothing is due the worker looks again after `IDLE_WAIT` (0.25 s), so a reply reaches a
resident about a quarter of a second after its turn commits, at worst, plus pacing. At start
`run_worker` warns of any replies whose fate is unknown. A 403 marks the respondent
unreachable, and their later rows are never sent (see `storage.outbox`).

Long polling (`run_polling`, for councils without a public URL) takes updates from getUpdates
and advances the offset past an update only once its turn has committed. It still sends each
turn's replies at once itself, and answers a tap with answerCallbackQuery: it is a process of
its own that takes one update at a time, so a slow Telegram holds up no webhook and nothing
but the poller, which waits on Telegram for its next update anyway; a tap has no HTTP answer
to ride on; and `dibot telegram` alone keeps residents answered promptly. Its replies go
through the same outbox rows (claimed by id, only when first in their chat's line), so what
it cannot send (behind an earlier row, refused, or a retry) is left, in order, to the worker.
A database failure holds the offset (the update comes again once the database is back); any
other failure of one update is tried again, and after `POISON_LIMIT` failures in a row that
update is skipped, so one bad update cannot stop the bot. Both stop between updates or rows
on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Blueprint, Response, jsonify, request
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import TelegramError

from channels.sending import (
    DEFAULT_POLICY,
    Clock,
    RetryPolicy,
    SystemClock,
    WorkerStep,
    stopped_by_signals,
)
from channels.telegram_bot import STANDARD_TIMEOUTS, BotThread, Timeouts
from channels.telegram_outbox import Pacer, send_paced, send_row
from channels.telegram_parse import (
    ALLOWED_UPDATES,
    ChatBlocked,
    ParsedUpdate,
    TelegramInbound,
    parse_update,
    parse_update_json,
)
from channels.telegram_send import answer_tap
from dibot.config import Config
from outreach.quiet_hours import NO_QUIET_HOURS, QuietHours, next_send_time, parse_quiet_hours
from storage import outbox
from storage.outbox import OutboxMessage

if TYPE_CHECKING:
    from dibot.runtime import Runtime
    from dibot.turns import TurnHandler

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header's name)
POLL_TIMEOUT = 25
"""Seconds a getUpdates call waits for news (Telegram allows up to 50)."""
POISON_LIMIT = 3
"""Failures in a row (other than the database's) after which long polling skips an update."""
IDLE_WAIT = 0.25
"""Seconds the worker waits before looking again when nothing is due: the most a reply waits
for the worker to notice it."""
ERROR_WAIT = 5.0

log = logging.getLogger(__name__)


def take(handler: TurnHandler, parsed: ParsedUpdate) -> tuple[int, ...]:
    """The database part of an update, committed on return: the outbox ids of its replies.
    Raises (SQLAlchemyError) when the database fails, with nothing stored."""
    if isinstance(parsed, ChatBlocked):
        handler.mark_unreachable(parsed.urn)
        return ()
    if isinstance(parsed, TelegramInbound):
        result = handler.handle(
            channel=CHANNEL,
            message_id=parsed.message_id,
            urn=parsed.urn,
            inbound=parsed.inbound,
            queue_replies=True,
            language=parsed.language,
        )
        return result.queued
    return ()


def answer_in_response(parsed: ParsedUpdate) -> Response:
    """The webhook's 200: for a tap, with answerCallbackQuery as its body for Telegram to
    perform (the Bot API's "making requests when getting updates")."""
    query_id = getattr(parsed, "callback_query_id", None)
    if not isinstance(query_id, str) or not query_id:  # a malformed tap: nothing to answer
        return Response(status=200)
    return jsonify(method="answerCallbackQuery", callback_query_id=query_id)


@dataclass(frozen=True)
class _Step:
    step: WorkerStep
    quiet_hours: bool = False
    """The row was released because quiet hours are on: it waits for them, not for this
    worker."""


class TelegramChannel:
    """What a process that sends needs: the handler, the database engine, a `BotThread`
    (started on first call) and the council's quiet hours (`quiet`, for outreach rows; none by
    default)."""

    def __init__(
        self,
        config: Config,
        handler: Callable[[], TurnHandler],
        engine: Callable[[], sa.Engine],
        clock: Clock | None = None,
        *,
        timeouts: Timeouts = STANDARD_TIMEOUTS,
        policy: RetryPolicy = DEFAULT_POLICY,
        quiet: QuietHours = NO_QUIET_HOURS,
    ) -> None:
        self._handler = handler
        self._engine = engine
        self.policy = policy
        self.quiet = quiet
        self.clock: Clock = clock if clock is not None else SystemClock()
        token = config.telegram.bot_token
        self.bot = BotThread(config.telegram, timeouts) if token else None
        if self.bot is None:
            log.info("telegram.bot_token is not set: Telegram replies wait in the outbox")

    def take(self, parsed: ParsedUpdate) -> tuple[int, ...]:
        return take(self._handler(), parsed)

    def follow_up(self, parsed: ParsedUpdate, queued: tuple[int, ...]) -> None:
        """Long polling, after the commit: answer the tap, then send the turn's replies. Never
        raises: what is not sent now stays in the outbox for the worker."""
        if self.bot is None:
            return
        bot = self.bot
        query_id = getattr(parsed, "callback_query_id", None)
        try:
            if query_id is not None:
                bot.call(lambda b: answer_tap(b, query_id))
            if queued:
                self._send_own(bot, queued)
        except Exception as error:  # the turn is committed: the worker sends what is left
            log.warning("telegram: replies left to the worker (%s)", type(error).__name__)

    def _send_own(self, bot: BotThread, queued: tuple[int, ...]) -> None:
        """Claim the turn's own rows and send them in order, each only once the one before
        it was sent; those left unsent are released for the worker (which keeps them behind
        one waiting for a retry)."""
        engine = self._engine()
        untried: Sequence[OutboxMessage] = ()
        try:
            untried = outbox.claim_ids(
                engine, CHANNEL, queued, self.clock.now(), self.policy.claim_lease
            )
            while untried:
                row, untried = untried[0], untried[1:]
                if self._held_for_quiet_hours(engine, row) is not None:
                    break  # the rest are behind it
                outcome = send_row(
                    bot,
                    engine,
                    row,
                    mark_unreachable=self._unreachable,
                    clock=self.clock,
                    policy=self.policy,
                )
                if outcome is None or outcome.delivery.verdict != "sent":
                    break
        finally:
            now = self.clock.now()
            for row in untried:
                outbox.release(engine, row, now, now)

    def send_due(self, pacer: Pacer, stop: threading.Event) -> WorkerStep:
        """Claim the oldest due outbox row and send it, paced, or release it for later (for
        pacing, or until quiet hours let an outreach row go). One row at a time: a row claimed
        and not yet begun when the process dies waits out its lease before another worker
        takes it."""
        return self._send_next(pacer, stop).step

    def _send_next(self, pacer: Pacer, stop: threading.Event) -> _Step:
        if self.bot is None:
            return _Step(WorkerStep(claimed=False))
        engine = self._engine()
        rows = outbox.claim(engine, CHANNEL, 1, self.clock.now(), self.policy.claim_lease)
        if not rows:
            return _Step(WorkerStep(claimed=False))
        held_until = self._held_for_quiet_hours(engine, rows[0])
        if held_until is not None:
            return _Step(WorkerStep(claimed=True, held_until=held_until), quiet_hours=True)
        attempt = send_paced(
            self.bot,
            engine,
            rows[0],
            pacer=pacer,
            clock=self.clock,
            stop=stop,
            mark_unreachable=self._unreachable,
            policy=self.policy,
        )
        return _Step(WorkerStep(claimed=True, tried=attempt.tried, held_until=attempt.again_at))

    def _held_for_quiet_hours(self, engine: sa.Engine, row: OutboxMessage) -> datetime | None:
        """For an outreach row claimed outside quiet hours: release it until they next allow
        it and say when. None: the row may go now (a reply always may)."""
        if row.kind == "reply":
            return None
        now = self.clock.now()
        if self.quiet.allows(now):
            return None
        opens = next_send_time(self.quiet, now)
        outbox.release(engine, row, opens, now)
        log.info("telegram outbox %d: %s held by quiet hours", row.id, row.kind)
        return opens

    def run(
        self,
        pacer: Pacer,
        stop: threading.Event,
        *,
        idle_wait: float = IDLE_WAIT,
        until_empty: bool = False,
    ) -> int:
        """Send due rows until `stop` is set (or, with `until_empty`, until none is due and
        none this worker held back, for pacing or a retry, still waits: rows held for quiet
        hours are not waited for); returns how many rows were sent or tried."""
        tried = 0
        held: list[datetime] = []
        """When the rows this worker released for pacing, or is to retry, may go."""
        while not stop.is_set():
            try:
                done = self._send_next(pacer, stop)
            except SQLAlchemyError as error:
                log.error("telegram outbox unreadable (%s); trying again", type(error).__name__)
                self.clock.sleep(ERROR_WAIT)
                continue
            step = done.step
            if step.claimed:
                tried += step.tried
                if step.held_until is not None and not done.quiet_hours:
                    held.append(step.held_until)
                continue
            now = self.clock.now()
            held = [at for at in held if at > now]
            if until_empty and not held:
                break
            self.clock.sleep(min([idle_wait, *((at - now).total_seconds() for at in held)]))
        return tried

    def take_update(self, update: Update) -> None:
        """Parse, take and follow up one polled update. Raises whatever taking it raised, with
        nothing stored."""
        parsed = parse_update(update)
        if parsed is not None:
            self.follow_up(parsed, self.take(parsed))

    def _unreachable(self, urn: str) -> None:
        self._handler().mark_unreachable(urn)

    def close(self) -> None:
        if self.bot is not None:
            self.bot.close()


def blueprint(runtime: Runtime) -> Blueprint:
    """`POST /webhooks/telegram`: take the update, answer; no Bot API call."""
    secret = runtime.config.telegram.webhook_secret.encode()
    if not secret and runtime.config.telegram.bot_token:
        log.warning("telegram.webhook_secret is not set: every Telegram webhook will be refused")
    routes = Blueprint("telegram", __name__)

    @routes.post("/webhooks/telegram")
    def webhook() -> Response:
        given = request.headers.get(SECRET_HEADER, "").encode()
        if not secret or not hmac.compare_digest(given, secret):
            log.warning("refused a Telegram webhook: secret token does not match")
            return Response("Forbidden\n", status=403, mimetype="text/plain")
        data = request.get_json(force=True, silent=True)
        if not isinstance(data, dict):
            return Response("A JSON update is required\n", 400, mimetype="text/plain")
        parsed = parse_update_json(data)
        if parsed is None:
            return Response(status=200)
        try:
            take(runtime.handler, parsed)
        except SQLAlchemyError as error:
            # The error's text can hold the statement's parameters: its type is enough.
            log.error("telegram update not taken, database failed (%s)", type(error).__name__)
            return Response("Try again\n", status=503, mimetype="text/plain")
        return answer_in_response(parsed)

    return routes


def run_polling(
    config: Config,
    handler: TurnHandler,
    *,
    engine: sa.Engine | None = None,
    stop: threading.Event | None = None,
    max_updates: int | None = None,
    poll_timeout: int = POLL_TIMEOUT,
    error_wait: float = ERROR_WAIT,
) -> int:
    """Take updates by getUpdates until `stop` is set (or `max_updates` were taken); returns
    how many were taken (skipped ones not counted). The webhook is deleted first: Telegram
    serves one or the other."""
    stop = stop if stop is not None else threading.Event()
    database = engine if engine is not None else _engine_for(config)
    channel = TelegramChannel(config, lambda: handler, lambda: database, SystemClock(stop))
    bot = channel.bot
    if bot is None:
        raise ValueError("telegram.bot_token is not set")
    taken, offset = 0, None
    failing: tuple[int, int] | None = None
    """(update_id, failures in a row) of the update that last failed."""
    try:
        with stopped_by_signals(stop):
            _until_done(lambda: bot.call(lambda b: b.delete_webhook()), stop, error_wait)
            while not stop.is_set() and (max_updates is None or taken < max_updates):
                try:
                    updates = _fetch(bot, offset, poll_timeout)
                except (TelegramError, TimeoutError) as error:
                    log.warning("getUpdates failed (%s); trying again", type(error).__name__)
                    stop.wait(error_wait)
                    continue
                for update in updates:
                    if stop.is_set() or (max_updates is not None and taken >= max_updates):
                        break
                    update_id = update.update_id
                    try:
                        channel.take_update(update)
                    except SQLAlchemyError as error:
                        # The error's text can hold the statement's parameters: its type is enough.
                        log.error(
                            "telegram update %d not taken, database failed (%s)",
                            update_id,
                            type(error).__name__,
                        )
                        stop.wait(error_wait)
                        break  # the offset stays: the same update comes again
                    except Exception as error:
                        failures = failing[1] + 1 if failing and failing[0] == update_id else 1
                        failing = (update_id, failures)
                        if failures < POISON_LIMIT:
                            log.error(
                                "telegram update %d failed (%s); trying it again",
                                update_id,
                                type(error).__name__,
                            )
                            stop.wait(error_wait)
                            break
                        log.error(
                            "telegram update %d failed %d times in a row (%s); skipped",
                            update_id,
                            failures,
                            type(error).__name__,
                        )
                    else:
                        taken += 1
                    failing = None
                    offset = update_id + 1
            if offset is not None:  # confirm what was taken, so a restart does not see it again
                # (if this fails, updates that come again are recognised as duplicates)
                with contextlib.suppress(TelegramError, TimeoutError):
                    _fetch(bot, offset, 0, limit=1)
    finally:
        channel.close()
    return taken


def run_worker(
    config: Config,
    handler: TurnHandler,
    *,
    engine: sa.Engine | None = None,
    stop: threading.Event | None = None,
    clock: Clock | None = None,
    idle_wait: float = IDLE_WAIT,
    until_empty: bool = False,
    pacer: Pacer | None = None,
    timeouts: Timeouts = STANDARD_TIMEOUTS,
    policy: RetryPolicy = DEFAULT_POLICY,
    quiet: QuietHours | None = None,
) -> int:
    """Send pending Telegram outbox rows until `stop` is set (or, with `until_empty`, until
    none is due and none this worker held back, for pacing or a retry, still waits); returns
    how many rows were sent or tried. `pacer`, `timeouts` and `policy` are Telegram's limits,
    the Bot's HTTP timeouts and the retry and lease policy (tests make them short); `quiet`
    the hours outreach may go (default: the configuration's `[outreach]` ones)."""
    stop = stop if stop is not None else threading.Event()
    database = engine if engine is not None else _engine_for(config)
    channel = TelegramChannel(
        config,
        lambda: handler,
        lambda: database,
        clock if clock is not None else SystemClock(stop),
        timeouts=timeouts,
        policy=policy,
        quiet=quiet if quiet is not None else quiet_hours_of(config),
    )
    _warn_of_unknown(database)
    try:
        with stopped_by_signals(stop):
            return channel.run(
                pacer if pacer is not None else Pacer(),
                stop,
                idle_wait=idle_wait,
                until_empty=until_empty,
            )
    finally:
        channel.close()


def quiet_hours_of(config: Config) -> QuietHours:
    """The council's quiet hours, from `[outreach]` (checked when the configuration loaded)."""
    outreach = config.outreach
    return parse_quiet_hours(outreach.quiet_hours, outreach.quiet_days, outreach.timezone)


def _warn_of_unknown(engine: sa.Engine) -> None:
    """One line for the operator while replies of unknown fate wait for staff."""
    try:
        count = outbox.count_unknown(engine, CHANNEL)
    except SQLAlchemyError as error:
        log.error("telegram outbox unreadable (%s)", type(error).__name__)
        return
    if count:
        log.warning(
            "telegram outbox: replies of unknown fate: %d (status 'unknown', never resent"
            " automatically; see the README, 'When a Telegram send fails')",
            count,
        )


def _fetch(
    bot: BotThread, offset: int | None, timeout: int, limit: int = 100
) -> tuple[Update, ...]:
    return bot.call(
        lambda b: b.get_updates(
            offset=offset, limit=limit, timeout=timeout, allowed_updates=list(ALLOWED_UPDATES)
        ),
        timeout=timeout + ERROR_WAIT * 4,
    )


def _until_done(action: Callable[[], object], stop: threading.Event, wait: float) -> None:
    while not stop.is_set():
        try:
            action()
            return
        except (TelegramError, TimeoutError) as error:
            log.warning("Telegram call failed (%s); trying again", type(error).__name__)
            stop.wait(wait)


def _engine_for(config: Config) -> sa.Engine:
    from storage.database import make_engine

    return make_engine(config.database.url, sqlite_synchronous=config.database.sqlite_synchronous)
