"""Telegram: the webhook, long polling and the outbox worker, all through one path per update.

An update is authenticated (webhook: `X-Telegram-Bot-Api-Secret-Token`, compared in constant
time; a missing or wrong secret is a 403 and nothing is read or stored), parsed, and taken as a
turn with its replies queued in the outbox in the turn's own transaction. Only after that
commit are they sent: the turn's own outbox rows are claimed and sent at once, and the tap (if
it was one) is answered. A database failure is a 503 (Telegram retries; nothing is
acknowledged and then dropped); a failed send after the commit is not, because the outbox
still holds the reply. The same update twice is taken once and answered once.

Long polling (`run_polling`, for councils without a public URL) takes updates from getUpdates
and advances the offset past an update only once its turn has committed. The worker
(`run_worker`) sends whatever the outbox still holds, within Telegram's rate limits.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import sqlalchemy as sa
from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError
from telegram import Update
from telegram.error import TelegramError

from channels.telegram_bot import BotThread
from channels.telegram_outbox import Clock, Pacer, SystemClock, deliver
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

if TYPE_CHECKING:
    from dibot.runtime import Runtime
    from dibot.turns import TurnHandler

CHANNEL = "telegram"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"  # noqa: S105 (a header's name)
POLL_TIMEOUT = 25
"""Seconds a getUpdates call waits for news (Telegram allows up to 50)."""
WORKER_BATCH = 1
"""Rows claimed at a time. A claimed row is never sent again automatically (it may have gone),
so one claimed and not yet tried when the worker dies would be stuck: claim one at a time,
which leaves only the moment between the claim and the send (and any pacing wait) exposed."""
IDLE_WAIT = 1.0
ERROR_WAIT = 5.0

log = logging.getLogger(__name__)


class TelegramChannel:
    """What one process needs to take updates and send replies: the handler, the database
    engine and a `BotThread` (started on first send)."""

    def __init__(
        self,
        config: Config,
        handler: Callable[[], TurnHandler],
        engine: Callable[[], sa.Engine],
        clock: Clock | None = None,
    ) -> None:
        self._handler = handler
        self._engine = engine
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.bot = BotThread(config.telegram) if config.telegram.bot_token else None
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
        query_id = getattr(parsed, "callback_query_id", None)
        try:
            if query_id is not None:
                bot.call(lambda b: answer_tap(b, query_id))
            if queued:
                engine = self._engine()
                rows = outbox.claim_ids(engine, CHANNEL, queued, self.clock.now())
                deliver(bot, engine, rows, mark_unreachable=self._unreachable, clock=self.clock)
        except Exception as error:  # the turn is committed: the worker sends what is left
            log.warning("telegram: replies left to the worker (%s)", type(error).__name__)

    def send_due(self, pacer: Pacer, limit: int = WORKER_BATCH) -> int:
        """Claim and send up to `limit` due outbox rows; how many were claimed."""
        if self.bot is None:
            return 0
        engine = self._engine()
        rows = outbox.claim(engine, CHANNEL, limit, self.clock.now())
        deliver(
            self.bot,
            engine,
            rows,
            mark_unreachable=self._unreachable,
            clock=self.clock,
            pacer=pacer,
        )
        return len(rows)

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
    channel = TelegramChannel(runtime.config, lambda: runtime.handler, lambda: runtime.engine)
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
    how many were taken. The webhook is deleted first: Telegram serves one or the other."""
    stop = stop if stop is not None else threading.Event()
    database = engine if engine is not None else _engine_for(config)
    channel = TelegramChannel(config, lambda: handler, lambda: database, SystemClock(stop))
    bot = channel.bot
    if bot is None:
        raise ValueError("telegram.bot_token is not set")
    taken, offset = 0, None
    try:
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
                parsed = parse_update(update)
                if parsed is not None:
                    try:
                        queued = channel.take(parsed)
                    except SQLAlchemyError as error:
                        log.error("telegram update not taken (%s)", type(error).__name__)
                        stop.wait(error_wait)
                        break  # the offset stays: the same update comes again
                    channel.follow_up(parsed, queued)
                offset = update.update_id + 1
                taken += 1
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
) -> int:
    """Send pending Telegram outbox rows until `stop` is set (or, with `until_empty`, until
    none is due); returns how many rows were claimed."""
    stop = stop if stop is not None else threading.Event()
    database = engine if engine is not None else _engine_for(config)
    channel = TelegramChannel(
        config, lambda: handler, lambda: database, clock if clock is not None else SystemClock(stop)
    )
    pacer = Pacer()
    claimed = 0
    try:
        while not stop.is_set():
            try:
                count = channel.send_due(pacer)
            except SQLAlchemyError as error:
                log.error("telegram outbox unreadable (%s); trying again", type(error).__name__)
                channel.clock.sleep(ERROR_WAIT)
                continue
            claimed += count
            if count == 0:
                if until_empty:
                    break
                channel.clock.sleep(idle_wait)
    finally:
        channel.close()
    return claimed


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
