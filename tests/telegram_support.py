"""What the Telegram channel tests share: configuration, a clock they move, the outbox worker
that delivers what the webhook queued, database views."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any, Self

import sqlalchemy as sa

from bot.engine import step
from bot.messages import Inbound, Outbound
from bot.state import State
from channels.sending import RetryPolicy
from channels.telegram import TelegramChannel
from channels.telegram_bot import STANDARD_TIMEOUTS, Timeouts
from channels.telegram_outbox import Pacer
from dibot.config import Config, DatabaseConfig, FlowConfig, TelegramConfig
from dibot.turns import TurnHandler
from flows.model import Flow
from outreach.quiet_hours import NO_QUIET_HOURS, QuietHours
from tests.fake_telegram import FakeTelegram
from tests.people import urn_digest, urn_of

SECRET = "s3cret-webhook-token_0123456789"


def telegram_config(fake: FakeTelegram, database_url: str) -> Config:
    return Config(
        database=DatabaseConfig(url=database_url),
        telegram=TelegramConfig(
            bot_token=fake.token, webhook_secret=SECRET, api_base_url=fake.base_url
        ),
        flow=FlowConfig(languages="en"),
    )


def first_replies(flow: Flow, *inbounds: Inbound) -> tuple[Outbound, ...]:
    """What the engine answers to the last of `inbounds`, for a new respondent."""
    state = State()
    replies: tuple[Outbound, ...] = ()
    for inbound in inbounds:
        turn = step(flow, state, inbound, datetime(2026, 11, 2, 9, tzinfo=UTC))
        state, replies = turn.state, turn.outbound
    return replies


@dataclass
class FakeClock:
    """Time that moves only when something sleeps (or the test moves it)."""

    at: datetime
    slept: list[float] = field(default_factory=list)

    def now(self) -> datetime:
        return self.at

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.at += timedelta(seconds=seconds)


class Worker:
    """The outbox worker as a test runs it: one `TelegramChannel` (one Bot) for the test, run
    by `deliver()` until nothing is due, on a `FakeClock` (nothing really sleeps). Given no
    clock, its clock catches up with real time at each `deliver()`, so rows a handler on real
    time queued are due."""

    def __init__(
        self,
        config: Config,
        handler: TurnHandler,
        engine: sa.Engine,
        clock: FakeClock | None = None,
        *,
        quiet: QuietHours = NO_QUIET_HOURS,
        timeouts: Timeouts = STANDARD_TIMEOUTS,
        policy: RetryPolicy | None = None,
    ) -> None:
        self.clock = clock if clock is not None else FakeClock(datetime.now(UTC))
        self._real_time = clock is None
        self.pacer = Pacer()
        self.channel = TelegramChannel(
            config,
            lambda: handler,
            lambda: engine,
            self.clock,
            timeouts=timeouts,
            policy=policy if policy is not None else RetryPolicy(),
            quiet=quiet,
        )

    def deliver(self) -> int:
        """Send what is due, and what pacing or a retry holds back, until nothing is left;
        how many rows were tried."""
        if self._real_time:
            self.clock.at = max(self.clock.at, datetime.now(UTC))
        return self.channel.run(self.pacer, threading.Event(), until_empty=True)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def tap_answered(response_json: Any, tap: dict[str, Any]) -> bool:
    """Whether a webhook's answer asks Telegram to answer this tap (and nothing else)."""
    expected = {"method": "answerCallbackQuery", "callback_query_id": tap["callback_query"]["id"]}
    return bool(response_json == expected)


def outbox_rows(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        result = conn.execute(
            sa.text(
                "SELECT o.id, o.status, o.error, o.attempts, o.provider_message_id,"
                " r.urn_cipher AS urn"
                " FROM outbox o JOIN respondents r ON r.id = o.respondent_id ORDER BY o.id"
            )
        )
        rows = [dict(row._mapping) for row in result]
    return [{**row, "urn": urn_of(engine, row["urn"])} for row in rows]


def inbox_count(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT count(*) FROM inbox")).scalar_one())


def unreachable(engine: sa.Engine, urn: str) -> bool | None:
    with engine.connect() as conn:
        value = conn.execute(
            sa.text("SELECT unreachable FROM respondents WHERE urn_digest = :digest"),
            {"digest": urn_digest(engine, urn)},
        ).scalar_one_or_none()
    return None if value is None else bool(value)
