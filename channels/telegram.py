"""Telegram: the webhook, long polling and the outbox worker, all through one path per update.

An update is authenticated (webhook: `X-Telegram-Bot-Api-Secret-Token`, compared in constant
time; a missing or wrong secret is a 403 and nothing is read or stored), parsed, and taken as a
turn with its replies queued in the outbox in the turn's own transaction. Only after that
commit are they sent: the turn's own outbox rows are claimed and sent at once, and the tap (if
it was one) is answered. A database failure is a 503 (Telegram retries; nothing is
acknowledged and then dropped); a failed send after the commit is not, because the outbox
still holds the reply. The same update twice is taken once and answered once.

A webhook request holds a web worker that Twilio's webhooks share (Twilio gives up after 15 s),
so its Bot calls are short (`WEBHOOK_TIMEOUTS`) and, together, start only within
`WEBHOOK_BUDGET`: a reply there is no time left for stays pending in the outbox for the worker.
A send that may have reached Telegram is never sent again (see `channels.telegram_send`).

Long polling (`run_polling`, for councils without a public URL) takes updates from getUpdates
and advances the offset past an update only once its turn has committed. A database failure
holds the offset (the update comes again once the database is back); any other failure of one
update is tried again, and after `POISON_LIMIT` failures in a row that update is skipped, so one
bad update cannot stop the bot. The worker (`run_worker`) sends whatever the outbox still holds,
within Telegram's rate limits, retrying only what Telegram certainly did not take and keeping
each chat's replies in order (see `channels.telegram_outbox`); at start it warns of any replies
whose fate is unknown. Both stop between updates or rows on SIGTERM or SIGINT.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from types import FrameType
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import TelegramError

from channels.sending import DEFAULT_POLICY, Clock, RetryPolicy, SystemClock, WorkerStep
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
from storage import outbox
from storage.outbox import OutboxMessage

if TYPE_CHECKING:
    from dibot.runtime import Runtime
    from dibot.turns import TurnHandler

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header's name)
POLL_TIMEOUT = 25
"""Seconds a getUpdates call waits for news (Telegram allows up to 50)."""
WEBHOOK_TIMEOUTS = Timeouts(connect=3.0, read=5.0, write=2.0, pool=1.0, margin=1.0)
"""Each Bot API call made inside a webhook request."""
WEBHOOK_BUDGET = 9.0
"""Seconds from the commit within which a webhook request's Bot calls start and end: each is
waited for only until then, and a send starts only while a whole read timeout is left."""
POISON_LIMIT = 3
"""Failures in a row (other than the database's) after which long polling skips an update."""
IDLE_WAIT = 1.0
ERROR_WAIT = 5.0
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)

log = logging.getLogger(__name__)


class TelegramChannel:
    """What one process needs to take updates and send replies: the handler, the database
    engine and a `BotThread` (started on first send). With a `budget` (the webhook's), the Bot
    calls that follow one update start only within that many seconds."""

    def __init__(
        self,
        config: Config,
        handler: Callable[[], TurnHandler],
        engine: Callable[[], sa.Engine],
        clock: Clock | None = None,
        *,
        timeouts: Timeouts = STANDARD_TIMEOUTS,
        budget: float | None = None,
        policy: RetryPolicy = DEFAULT_POLICY,
    ) -> None:
        self._handler = handler
        self._engine = engine
        self._budget = budget
        self.policy = policy
        self.clock: Clock = clock if clock is not None else SystemClock()
        token = config.telegram.bot_token
        self.bot = BotThread(config.telegram, timeouts) if token else None
        if self.bot is None:
            log.info("telegram.bot_token is not set: Telegram replies wait in the outbox")

    def take(self, parsed: ParsedUpdate) -> tuple[int, ...]:
        """The database part, committed on return: the outbox ids of the replies to send.
        Raises (SQLAlchemyError) when the database fails, with nothing stored."""
        if isinstance(parsed, ChatBlocked):
            self._handler().mark_unreachable(parsed.urn)
            return ()
        if isinstance(parsed, TelegramInbound):
            result = self._handler().handle(
                channel=CHANNEL,
                message_id=parsed.message_id,
                urn=parsed.urn,
                inbound=parsed.inbound,
                queue_replies=True,
                language=parsed.language,
            )
            return result.queued
        return ()

    def follow_up(self, parsed: ParsedUpdate, queued: tuple[int, ...]) -> None:
        """After the commit: answer the tap, then send the turn's replies. Never raises: what
        is not sent now stays in the outbox for the worker."""
        if self.bot is None:
            return
        bot = self.bot
        deadline = None if self._budget is None else time.monotonic() + self._budget
        query_id = getattr(parsed, "callback_query_id", None)
        try:
            if query_id is not None:
                bot.call(lambda b: answer_tap(b, query_id), timeout=self._wait(deadline))
            if queued:
                self._send_own(bot, queued, deadline)
        except Exception as error:  # the turn is committed: the worker sends what is left
            log.warning("telegram: replies left to the worker (%s)", type(error).__name__)

    def _send_own(self, bot: BotThread, queued: tuple[int, ...], deadline: float | None) -> None:
        """Claim the turn's own rows and send them in order, each only while a whole read
        timeout is left before `deadline` and the one before it was sent; those left unsent
        are released for the worker (which keeps them behind one waiting for a retry)."""
        engine = self._engine()
        untried: Sequence[OutboxMessage] = ()
        try:
            untried = outbox.claim_ids(
                engine, CHANNEL, queued, self.clock.now(), self.policy.claim_lease
            )
            while untried:
                wait = self._wait(deadline)
                if wait is not None and wait < bot.timeouts.read:
                    log.info("telegram: %d replies left to the worker (no time)", len(untried))
                    break
                row, untried = untried[0], untried[1:]
                outcome = send_row(
                    bot,
                    engine,
                    row,
                    mark_unreachable=self._unreachable,
                    clock=self.clock,
                    timeout=wait,
                    policy=self.policy,
                )
                if outcome is None or outcome.delivery.verdict != "sent":
                    break
        finally:
            now = self.clock.now()
            for row in untried:
                outbox.release(engine, row, now, now)

    def _wait(self, deadline: float | None) -> float | None:
        """How long the next Bot call may take: None for the Bot's own limit."""
        if deadline is None or self.bot is None:
            return None
        return max(0.0, min(self.bot.timeouts.call_limit, deadline - time.monotonic()))

    def send_due(self, pacer: Pacer, stop: threading.Event) -> WorkerStep:
        """Claim the oldest due outbox row and send it, paced, or release it for later. One row
        at a time: a row claimed and not yet begun when the process dies waits out its lease
        before another worker takes it."""
        if self.bot is None:
            return WorkerStep(claimed=False)
        engine = self._engine()
        rows = outbox.claim(engine, CHANNEL, 1, self.clock.now(), self.policy.claim_lease)
        if not rows:
            return WorkerStep(claimed=False)
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
        return WorkerStep(claimed=True, tried=attempt.tried, held_until=attempt.again_at)

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
    """`POST /webhooks/telegram`. The `TelegramChannel` is in `app.extensions["telegram"]`."""
    secret = runtime.config.telegram.webhook_secret.encode()
    if not secret and runtime.config.telegram.bot_token:
        log.warning("telegram.webhook_secret is not set: every Telegram webhook will be refused")
    channel = TelegramChannel(
        runtime.config,
        lambda: runtime.handler,
        lambda: runtime.engine,
        timeouts=WEBHOOK_TIMEOUTS,
        budget=WEBHOOK_BUDGET,
    )
    routes = Blueprint("telegram", __name__)
    routes.record_once(lambda state: state.app.extensions.__setitem__("telegram", channel))

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
            queued = channel.take(parsed)
        except SQLAlchemyError as error:
            # The error's text can hold the statement's parameters: its type is enough.
            log.error("telegram update not taken, database failed (%s)", type(error).__name__)
            return Response("Try again\n", status=503, mimetype="text/plain")
        channel.follow_up(parsed, queued)
        return Response(status=200)

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
        with _stopped_by_signals(stop):
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
) -> int:
    """Send pending Telegram outbox rows until `stop` is set (or, with `until_empty`, until
    none is due and none this worker held back, for pacing or a retry, still waits); returns
    how many rows were sent or tried. `pacer`, `timeouts` and `policy` are Telegram's limits,
    the Bot's HTTP timeouts and the retry and lease policy (tests make them short)."""
    stop = stop if stop is not None else threading.Event()
    database = engine if engine is not None else _engine_for(config)
    channel = TelegramChannel(
        config,
        lambda: handler,
        lambda: database,
        clock if clock is not None else SystemClock(stop),
        timeouts=timeouts,
        policy=policy,
    )
    pacer = pacer if pacer is not None else Pacer()
    _warn_of_unknown(database)
    tried = 0
    held: list[datetime] = []
    """When the rows this worker released for pacing, or is to retry, may go."""
    try:
        with _stopped_by_signals(stop):
            while not stop.is_set():
                try:
                    step = channel.send_due(pacer, stop)
                except SQLAlchemyError as error:
                    log.error("telegram outbox unreadable (%s); trying again", type(error).__name__)
                    channel.clock.sleep(ERROR_WAIT)
                    continue
                if step.claimed:
                    tried += step.tried
                    if step.held_until is not None:
                        held.append(step.held_until)
                    continue
                now = channel.clock.now()
                held = [at for at in held if at > now]
                if until_empty and not held:
                    break
                wait = min([idle_wait, *((at - now).total_seconds() for at in held)])
                channel.clock.sleep(wait)
    finally:
        channel.close()
    return tried


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


@contextlib.contextmanager
def _stopped_by_signals(stop: threading.Event) -> Iterator[None]:
    """While inside, SIGTERM and SIGINT set `stop` instead of ending the process mid-way (only
    in the main thread, where Python runs signal handlers); the previous handlers come back
    after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {number: signal.signal(number, request_stop) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
        if stop.is_set():
            log.info("telegram: stopped")


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

    return make_engine(config.database.url)
