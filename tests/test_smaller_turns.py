"""What a turn leaves once retention has passed (issue 11: at most 300 bytes a turn): an
answer's provider message id goes with its typed text after `raw_text_days`, while a duplicate
delivery inside the window is still answered the same and changes nothing, and the timeline is
still read in order. Runs on SQLite, and on PostgreSQL when DIBOT_DATABASE_URL names it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from dibot.turns import TurnHandler
from flows.model import Flow
from storage.models import Answer, TimelineEntry, table
from storage.personal_data import RetentionPolicy, apply_retention
from storage.timeline import read
from tests.people import urn_digest
from tests.turn_helpers import send, start_quick_check

URN = "tel:+447700900123"
T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
POLICY = RetentionPolicy(raw_text_days=30, inbox_days=7)
answers, timeline = table(Answer), table(TimelineEntry)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def held(engine: sa.Engine) -> list[tuple[str, int | None, int | None, str | None]]:
    query = sa.select(
        answers.c.question, answers.c.option, answers.c.score, answers.c.provider_message_id
    ).order_by(answers.c.id)
    with engine.connect() as conn:
        return [(row[0], row[1], row[2], row[3]) for row in conn.execute(query)]


def test_the_message_id_of_an_answer_goes_with_its_typed_text(
    engine: sa.Engine, flow: Flow
) -> None:
    clock = Clock()
    handler = TurnHandler(engine, flow, clock=clock)
    start_quick_check(handler, URN)
    first = send(handler, URN, "Usualy", "SM" + "1" * 32)
    send(handler, URN, "2", "SM" + "2" * 32)
    clock.now = T0 + timedelta(days=2)
    again = send(handler, URN, "Usualy", "SM" + "1" * 32)  # the provider delivers it again
    assert again.replies == first.replies
    before = held(engine)
    assert [row[3] for row in before] == ["SM" + "1" * 32, "SM" + "2" * 32]

    inside = apply_retention(engine, POLICY, T0 + timedelta(days=30))
    assert (inside.raw_texts, inside.message_ids) == (0, 0)
    assert held(engine) == before

    past = apply_retention(engine, POLICY, T0 + timedelta(days=30, seconds=1))
    assert past.raw_texts + past.message_ids == 2
    assert held(engine) == [
        (question, option, score, None) for question, option, score, _ in before
    ]


def test_the_timeline_is_read_in_order_by_respondent(engine: sa.Engine, flow: Flow) -> None:
    clock = Clock()
    handler = TurnHandler(engine, flow, clock=clock)
    start_quick_check(handler, URN)
    clock.now = T0 - timedelta(hours=1)  # a message that arrives stamped earlier than the rest
    send(handler, URN, "1")
    with engine.connect() as conn:
        respondent_id = conn.execute(
            sa.text("SELECT id FROM respondents WHERE urn_digest = :d"),
            {"d": urn_digest(engine, URN)},
        ).scalar_one()
        entries = read(conn, respondent_id)
    times = [entry.at for entry in entries]
    assert times == sorted(times)
    assert times[0] == T0 - timedelta(hours=1)
    assert len(entries) == 8  # four messages in, four replies out
