"""Calling python-telegram-bot's asyncio `Bot` from synchronous code: one loop per process.

The outbox worker, the poller and the set-up commands are plain loops (the web service makes
no Bot API call at all), but `telegram.Bot` is asyncio. Each process gets one event loop in a
daemon thread, started on first use, with one `Bot` initialised on it; synchronous code hands
it coroutines with `call()` and waits for the answer. Why not `asyncio.run()` per batch: a
`Bot`'s HTTP connection pool belongs to the loop that opened it, so a loop per batch would mean
a new `Bot`, a `getMe` and a new TLS connection to Telegram for every batch; the long-lived
loop keeps one warm connection for the life of the process.

A loop thread never survives `fork()`: a process that did not start the loop starts its own.
Every call is bounded: HTTP timeouts per phase (`Timeouts`), and a limit on the caller's wait
for the whole call. A caller that
gives up learns which side of the request it stopped on: `TimeoutError` once the call's work had
begun (its request may have reached Telegram), `BotUnavailable` when the Bot was still being
set up (nothing left this process, so it is safe to try again).
Exception text from the library can hold the bot token (a rejected token is quoted in full),
so `redact()` is applied before anything is logged or stored. Bot API calls go through a
`DeliveryRequest`, whose errors say whether Telegram can have the request (getUpdates, which
may always be repeated, through a plain `HTTPXRequest`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal, TypeVar

from telegram import Bot
from telegram.error import TelegramError
from telegram.request import HTTPXRequest

from channels.telegram_request import DeliveryRequest
from dibot.config import TelegramConfig

T = TypeVar("T")

CLOSE_WAIT = 10.0
"""Seconds `close()` waits for the Bot to shut its connections and for the loop to stop."""


@dataclass(frozen=True)
class Timeouts:
    """The HTTP timeouts (seconds) of every Bot API call one `BotThread` makes, and `margin`:
    how much longer than all of them together a caller waits for a call before giving it up."""

    connect: float
    read: float
    write: float
    pool: float
    margin: float

    @property
    def call_limit(self) -> float:
        return self.connect + self.write + self.read + self.pool + self.margin


STANDARD_TIMEOUTS = Timeouts(connect=5.0, read=10.0, write=5.0, pool=1.0, margin=5.0)
"""For the worker, long polling and set-up, where nobody waits on the answer."""

# Opt in to python-telegram-bot's coming behaviour (time periods as timedelta, e.g. a 429's
# `retry_after`); without it every flood-control answer raises a deprecation warning.
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)
# httpx logs every request URL at INFO, and Bot API URLs carry the token.
logging.getLogger("httpx").setLevel(logging.WARNING)
# python-telegram-bot logs at DEBUG its Bot API URL (the token again) and every call with its
# parameters and answer: chat ids and the texts sent.
logging.getLogger("telegram").setLevel(logging.INFO)


class BotUnavailable(TelegramError):
    """The Bot could not be set up (getMe failed or did not answer in time): no message left
    this process."""


class _Start:
    """Whether a call's work began, settled once between the loop and a caller giving up."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: Literal["waiting", "begun", "abandoned"] = "waiting"

    def begin(self) -> bool:
        """On the loop: may the work begin (the caller has not given up)?"""
        with self._lock:
            if self._state == "waiting":
                self._state = "begun"
            return self._state == "begun"

    def abandon(self) -> bool:
        """For the caller giving up: had the work begun?"""
        with self._lock:
            if self._state == "waiting":
                self._state = "abandoned"
            return self._state == "begun"


class BotThread:
    """One event loop in a daemon thread and one initialised `Bot` on it, for this process."""

    def __init__(self, telegram: TelegramConfig, timeouts: Timeouts = STANDARD_TIMEOUTS) -> None:
        if not telegram.bot_token:
            raise ValueError("telegram.bot_token is not set")
        self._token = telegram.bot_token
        self._base_url = telegram.api_base_url
        self.timeouts = timeouts
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._bot: Bot | None = None
        self._ready = False

    def redact(self, text: str) -> str:
        return text.replace(self._token, "<token>")

    def call(self, work: Callable[[Bot], Awaitable[T]], timeout: float | None = None) -> T:
        """Run `work(bot)` on the loop and return its result (or raise its exception).

        After `timeout` seconds (default: the timeouts' `call_limit`) the call is given up:
        `TimeoutError` if `work` had begun, `BotUnavailable` if the Bot was still being set up."""
        loop, bot = self._started()
        wait = timeout if timeout is not None else self.timeouts.call_limit
        start = _Start()
        future = asyncio.run_coroutine_threadsafe(self._run(bot, work, start), loop)
        try:
            return future.result(wait)
        except TimeoutError:
            future.cancel()
            if start.abandon():
                raise
        raise BotUnavailable("Telegram did not answer getMe in time")

    async def _run(self, bot: Bot, work: Callable[[Bot], Awaitable[T]], start: _Start) -> T:
        if not self._ready:
            try:
                await bot.initialize()
            except TelegramError as error:
                raise BotUnavailable(self.redact(error.message)) from error
            self._ready = True
        if not start.begin():
            raise asyncio.CancelledError  # the caller gave up and was told nothing went out
        return await work(bot)

    def _started(self) -> tuple[asyncio.AbstractEventLoop, Bot]:
        with self._lock:
            if self._pid != os.getpid() or self._loop is None or self._bot is None:
                # A parent's loop and thread do not exist here: start afresh, close nothing.
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="telegram-bot-loop", daemon=True
                )
                thread.start()
                timeouts = self.timeouts
                request = DeliveryRequest(
                    connect_timeout=timeouts.connect,
                    read_timeout=timeouts.read,
                    write_timeout=timeouts.write,
                    pool_timeout=timeouts.pool,
                )
                updates_request = HTTPXRequest(
                    connection_pool_size=1,
                    connect_timeout=timeouts.connect,
                    read_timeout=timeouts.read,
                    write_timeout=timeouts.write,
                    pool_timeout=timeouts.pool,
                )
                self._bot = Bot(
                    self._token,
                    base_url=self._base_url,
                    request=request,
                    get_updates_request=updates_request,
                )
                self._loop, self._thread, self._pid, self._ready = loop, thread, os.getpid(), False
            return self._loop, self._bot

    def close(self) -> None:
        """Shut the Bot's connections and stop the loop (only in the process that started it)."""
        with self._lock:
            loop, thread, bot = self._loop, self._thread, self._bot
            owned = self._pid == os.getpid()
            self._loop = self._thread = self._bot = None
            self._pid, self._ready = None, False
        if not owned or loop is None or thread is None or bot is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(bot.shutdown(), loop).result(CLOSE_WAIT)
        except Exception:  # closing must not fail: the process is going anyway
            log.warning("the Telegram bot did not shut down cleanly", exc_info=False)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(CLOSE_WAIT)
        loop.close()
