"""Helpers for turn and outbox tests: a fixed clock, a respondent brought to the first
question, and the stored answers read back."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count

import sqlalchemy as sa

from bot.messages import Inbound
from dibot.turns import TurnHandler, TurnResult
from flows.model import Flow, Question
from storage.models import Answer, Assessment, Respondent, table
from storage.privacy import keys_of
from tests.people import urn_digest

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
CHANNEL = "twilio"
_message_ids = count(1)


def send(
    handler: TurnHandler,
    urn: str,
    text: str,
    message_id: str | None = None,
    *,
    channel: str = CHANNEL,
    queue_replies: bool = False,
) -> TurnResult:
    return handler.handle(
        channel=channel,
        message_id=message_id or f"SM{next(_message_ids):032d}",
        urn=urn,
        inbound=Inbound(text=text),
        queue_replies=queue_replies,
    )


def start_quick_check(handler: TurnHandler, urn: str) -> None:
    """Greeting, consent, quick check: the respondent is now asked the first question."""
    for text in ("Hi", "1", "1"):
        send(handler, urn, text)


def quick_questions(flow: Flow) -> list[str]:
    return [step.key for step in flow.modes["quick"].steps if isinstance(step, Question)]


def stored_answers(engine: sa.Engine, urn: str) -> list[tuple[str, int | None, str | None]]:
    """(question, option, raw) of every answer of the respondent, in the order stored, the raw
    text decrypted."""
    answers, assessments, respondents = table(Answer), table(Assessment), table(Respondent)
    query = (
        sa.select(answers.c.question, answers.c.option, answers.c.raw)
        .join_from(answers, assessments, answers.c.assessment_id == assessments.c.id)
        .join(respondents, assessments.c.respondent_id == respondents.c.id)
        .where(respondents.c.urn_digest == urn_digest(engine, urn))
        .order_by(answers.c.id)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [(row.question, row.option, _decrypted(engine, row.raw)) for row in rows]


def _decrypted(engine: sa.Engine, token: str | None) -> str | None:
    return None if token is None else keys_of(engine).decrypt(token)
