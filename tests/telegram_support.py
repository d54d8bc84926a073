"""What the Telegram channel tests share: configuration, a clock they move, database views."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa

from bot.engine import step
from bot.messages import Inbound, Outbound
from bot.state import State
from dibot.config import Config, DatabaseConfig, FlowConfig, TelegramConfig
from flows.model import Flow
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
