"""The turn handler stores what a respondent does, once, and nothing when a turn fails."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
import sqlalchemy as sa

from bot.state import State
from dibot.turns import TurnHandler
from flows.loader import load_flow
from flows.model import Flow
from outreach.followups import FollowUpRequest, open_thread_id, send_followup
from outreach.quiet_hours import parse_quiet_hours
from storage import timeline
from storage.database import make_engine
from storage.models import (
    Answer,
    Assessment,
    Conversation,
    FollowUpThread,
    InboxEntry,
    OutboxEntry,
    Respondent,
    TimelineEntry,
    table,
)
from storage.privacy import keys_of
from tests.people import urn_digest, urn_of
from tests.turn_helpers import (
    CHANNEL,
    NOW,
    quick_questions,
    send,
    start_quick_check,
    stored_answers,
)

URN = "tel:+447700900123"
respondents, conversations = table(Respondent), table(Conversation)
assessments, inbox, outbox = table(Assessment), table(InboxEntry), table(OutboxEntry)
answers = table(Answer)
timeline_table, threads_table = table(TimelineEntry), table(FollowUpThread)


@pytest.fixture
def handler(engine: sa.Engine, flow: Flow) -> TurnHandler:
    return TurnHandler(engine, flow, clock=lambda: NOW)


def conversation_state(engine: sa.Engine, urn: str) -> State:
    query = (
        sa.select(conversations.c.state)
        .join(respondents, conversations.c.respondent_id == respondents.c.id)
        .where(respondents.c.urn_digest == urn_digest(engine, urn))
    )
    with engine.connect() as conn:
        return State.from_json(conn.execute(query).scalar_one())


def count_rows(engine: sa.Engine, table_: sa.Table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table_)).scalar_one()


def test_a_first_message_creates_the_respondent_and_asks_for_consent(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    result = send(handler, URN, "Hi")
    assert not result.duplicate
    assert len(result.replies) == 1
    assert result.replies[0].buttons  # the consent choices
    assert conversation_state(engine, URN).stage == "consent"
    with engine.connect() as conn:
        respondent = conn.execute(sa.select(respondents)).one()
        conversation = conn.execute(sa.select(conversations)).one()
    urn = urn_of(engine, respondent.urn_cipher)
    assert (urn, respondent.language, respondent.opted_out) == (URN, "en", False)
    assert respondent.created_at == NOW
    assert (conversation.flow_id, conversation.flow_version) == (flow.id, flow.version)


def test_answers_are_stored_with_score_raw_text_and_message_id(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    result = send(handler, URN, " 2 ", "SM-answer-1")
    first = quick_questions(flow)[0]
    assert [event.kind for event in result.events] == ["answered"]
    with engine.connect() as conn:
        answer = conn.execute(sa.select(answers)).one()
        assessment = conn.execute(sa.select(assessments)).one()
    item, _, aspect = first.partition(".")
    assert (answer.question, answer.item_id, answer.aspect) == (first, item, aspect)
    assert (answer.option, answer.score, urn_of(engine, answer.raw)) == (2, 1, " 2 ")
    assert (answer.channel, answer.provider_message_id) == (CHANNEL, "SM-answer-1")
    assert answer.answered_at == NOW
    assert (assessment.mode, assessment.flow_version) == ("quick", flow.version)
    assert assessment.completed_at is None


def test_a_duplicate_message_gets_the_same_replies_and_stores_one_answer(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    first = send(handler, URN, "3", "SM-dup")
    again = send(handler, URN, "3", "SM-dup")
    assert (first.duplicate, again.duplicate) == (False, True)
    assert again.replies == first.replies
    assert again.events == ()
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 3, "3")]
    assert conversation_state(engine, URN).question == quick_questions(flow)[1]


def test_the_same_message_id_on_another_channel_is_another_message(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "3", "42")
    result = send(handler, URN, "4", "42", channel="telegram")
    assert not result.duplicate
    assert [row[:2] for row in stored_answers(engine, URN)] == [
        (quick_questions(flow)[0], 3),
        (quick_questions(flow)[1], 4),
    ]


def test_back_then_a_new_answer_replaces_the_old_one(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    questions = quick_questions(flow)
    send(handler, URN, "1")
    send(handler, URN, "2")
    send(handler, URN, "back")
    assert stored_answers(engine, URN) == [(questions[0], 1, "1")]  # the cleared one is gone
    send(handler, URN, "5")
    assert stored_answers(engine, URN) == [(questions[0], 1, "1"), (questions[1], 5, "5")]


def test_a_skipped_question_is_told_apart_from_one_not_asked(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "skip")
    questions = quick_questions(flow)
    assert [row[:2] for row in stored_answers(engine, URN)] == [(questions[0], None)]
    assert conversation_state(engine, URN).question == questions[1]


def test_control_characters_in_an_answer_are_stored_without_nul(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "2\x00")
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 2, "2")]


def test_a_whole_quick_check_completes_its_assessment(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    questions = quick_questions(flow)
    for _ in questions:
        result = send(handler, URN, "3")
    assert "assessment_completed" in [event.kind for event in result.events]
    assert [row[0] for row in stored_answers(engine, URN)] == questions
    with engine.connect() as conn:
        assessment = conn.execute(sa.select(assessments)).one()
    assert assessment.completed_at == NOW
    assert assessment.abandoned_at is None


def test_starting_again_abandons_the_assessment_and_opens_a_new_one(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "2")
    send(handler, URN, "restart")
    send(handler, URN, "1")  # yes, start again
    send(handler, URN, "2")  # the full assessment this time
    with engine.connect() as conn:
        rows = conn.execute(sa.select(assessments).order_by(assessments.c.id)).all()
    assert [(row.mode, row.abandoned_at) for row in rows] == [("quick", NOW), ("full", None)]


def test_stop_and_start_are_mirrored_on_the_respondent(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "STOP")
    with engine.connect() as conn:
        stopped = conn.execute(sa.select(respondents)).one()
    assert (stopped.opted_out, stopped.opted_out_at) == (True, NOW)
    send(handler, URN, "START")
    with engine.connect() as conn:
        started = conn.execute(sa.select(respondents)).one()
    assert (started.opted_out, started.opted_out_at) == (False, None)


def test_nothing_is_queued_for_someone_who_opted_out(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "STOP", queue_replies=True)  # the engine confirms, once
    silent = send(handler, URN, "2", queue_replies=True)
    assert (silent.replies, silent.queued) == ((), ())
    assert count_rows(engine, outbox) == 1
    assert stored_answers(engine, URN) == []


def test_answers_after_their_assessment_was_erased_go_to_a_new_one(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "1")
    with engine.begin() as conn:
        conn.execute(sa.delete(assessments))  # its answers go with it
    send(handler, URN, "2")
    assert stored_answers(engine, URN) == [(quick_questions(flow)[1], 2, "2")]
    with engine.connect() as conn:
        assert conn.execute(sa.select(assessments.c.mode)).scalars().all() == ["quick"]


def test_an_unreachable_respondent_is_reachable_again_when_they_write(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    send(handler, URN, "Hi")
    handler.mark_unreachable(URN)
    handler.mark_unreachable("tel:+447700900999")  # unknown: nothing to mark, no error
    with engine.connect() as conn:
        assert conn.execute(sa.select(respondents.c.unreachable)).scalar_one() is True
    send(handler, URN, "1")
    with engine.connect() as conn:
        assert conn.execute(sa.select(respondents.c.unreachable)).scalar_one() is False


def test_replies_can_be_queued_in_the_same_transaction(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    result = send(handler, URN, "Hi", "SM-queued", queue_replies=True)
    assert len(result.queued) == len(result.replies) == 1
    with engine.connect() as conn:
        row = conn.execute(sa.select(outbox)).one()
        inbox_id = conn.execute(sa.select(inbox.c.id)).scalar_one()
    assert (row.id, row.status, row.text, row.inbox_id) == (
        result.queued[0],
        "pending",
        result.replies[0].text,
        inbox_id,
    )
    assert len(row.buttons) == len(result.replies[0].buttons)
    assert send(handler, URN, "Hi", "SM-queued", queue_replies=True).queued == ()
    assert count_rows(engine, outbox) == 1


def test_the_conversation_resumes_after_a_restart(
    database_url: str, engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "4")
    engine.dispose()
    restarted_engine = make_engine(database_url)
    try:
        restarted = TurnHandler(restarted_engine, flow, clock=lambda: NOW)
        send(restarted, URN, "5")
        questions = quick_questions(flow)
        assert [row[:2] for row in stored_answers(restarted_engine, URN)] == [
            (questions[0], 4),
            (questions[1], 5),
        ]
    finally:
        restarted_engine.dispose()


def test_a_new_flow_version_carries_on_with_the_same_questions(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    newer = replace(flow, version=flow.version + ".1")
    send(TurnHandler(engine, newer, clock=lambda: NOW), URN, "4")
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 4, "4")]
    with engine.connect() as conn:
        assert conn.execute(sa.select(conversations.c.flow_version)).scalar_one() == newer.version


@pytest.mark.parametrize(
    "saved",
    [
        pytest.param('{"schema": 99}', id="another-schema"),
        pytest.param("not json at all", id="not-json"),
        pytest.param('{"schema": 1, "stage": "asking", "misses": "07700900123"}', id="wrong-type"),
        pytest.param('{"schema": 1, "stage": "asking", "last_seen": "yesterday"}', id="bad-time"),
        pytest.param('{"schema": 1, "stage": "asking", "secret": 1}', id="unknown-field"),
    ],
)
def test_a_state_that_cannot_be_read_is_set_aside_and_the_respondent_starts_again(
    engine: sa.Engine,
    handler: TurnHandler,
    flow: Flow,
    saved: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    start_quick_check(handler, URN)
    send(handler, URN, "2")
    with engine.begin() as conn:
        conn.execute(sa.update(conversations).values(state=saved))

    result = send(handler, URN, "3")  # not a 500 for ever: an apology and a fresh start

    first = result.replies[0].text
    assert first.startswith("Sorry, we lost your place in the check. Let's start again.")
    assert not result.duplicate
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 2, "2")]  # kept
    assert conversation_state(engine, URN).stage in ("language", "consent")
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert "set aside" in logged
    assert "07700900123" not in logged
    assert "yesterday" not in logged


def test_a_welsh_respondent_whose_state_is_lost_hears_the_apology_in_welsh(
    engine: sa.Engine,
) -> None:
    handler = TurnHandler(engine, load_flow(), clock=lambda: NOW)
    send(handler, URN, "Helo")
    send(handler, URN, "2")  # Cymraeg
    with engine.begin() as conn:
        broken = '{"schema": 1, "language": "cy", "stage": "nowhere"}'
        conn.execute(sa.update(conversations).values(state=broken))

    reply = send(handler, URN, "1").replies[0].text

    assert reply.startswith("Mae'n ddrwg gennym, rydym wedi colli eich lle")


def test_a_state_saved_with_a_naive_time_is_read_as_the_same_clock(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    state = conversation_state(engine, URN).evolve(last_seen=NOW.replace(tzinfo=None).isoformat())
    with engine.begin() as conn:
        conn.execute(sa.update(conversations).values(state=state.to_json()))

    result = send(handler, URN, "2")

    assert result.replies[0].text.startswith("Got it. 2/22")
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 2, "2")]


FAIL_INBOX_INSERT = {
    "sqlite": [
        "CREATE TRIGGER fail_inbox BEFORE INSERT ON inbox "
        "BEGIN SELECT RAISE(ABORT, 'simulated failure'); END"
    ],
    "postgresql": [
        "CREATE FUNCTION fail_inbox() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN RAISE EXCEPTION 'simulated failure'; END $$",
        "CREATE TRIGGER fail_inbox BEFORE INSERT ON inbox "
        "FOR EACH ROW EXECUTE FUNCTION fail_inbox()",
    ],
}

REPAIR_INBOX_INSERT = {
    "sqlite": "DROP TRIGGER fail_inbox",
    "postgresql": "DROP TRIGGER fail_inbox ON inbox",
}


def test_a_turn_that_fails_at_its_last_write_stores_nothing_and_its_retry_works(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    """The database fails after the answer and the state were written: all of it is undone."""
    start_quick_check(handler, URN)
    state_before = conversation_state(engine, URN)
    with engine.begin() as conn:
        for statement in FAIL_INBOX_INSERT[engine.dialect.name]:
            conn.exec_driver_sql(statement)

    with pytest.raises(sa.exc.DatabaseError, match="simulated failure"):
        send(handler, URN, "2", "SM-retried")
    assert stored_answers(engine, URN) == []
    assert conversation_state(engine, URN) == state_before

    with engine.begin() as conn:
        conn.exec_driver_sql(
            "DROP TRIGGER fail_inbox" + (" ON inbox" if engine.dialect.name == "postgresql" else "")
        )
    retried = send(handler, URN, "2", "SM-retried")
    assert not retried.duplicate
    assert stored_answers(engine, URN) == [(quick_questions(flow)[0], 2, "2")]
    assert conversation_state(engine, URN).question == quick_questions(flow)[1]


def test_consent_is_recorded_when_given_and_not_when_refused(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    def consented_at() -> object:
        with engine.connect() as conn:
            return conn.execute(sa.select(respondents.c.consented_at)).scalar_one()

    send(handler, URN, "Hi")
    assert consented_at() is None
    send(handler, URN, "1")
    assert consented_at() == NOW
    other = "tel:+447700900124"
    send(handler, other, "Hi")
    send(handler, other, "2")
    with engine.connect() as conn:
        rows = conn.execute(sa.select(respondents.c.urn_cipher, respondents.c.consented_at)).all()
    assert {urn_of(engine, cipher): at for cipher, at in rows} == {URN: NOW, other: None}


def skills_basis(engine: sa.Engine, urn: str) -> str | None:
    assessments, respondents = table(Assessment), table(Respondent)
    query = (
        sa.select(assessments.c.skills_basis)
        .join(respondents, assessments.c.respondent_id == respondents.c.id)
        .where(respondents.c.urn_digest == urn_digest(engine, urn))
    )
    with engine.connect() as conn:
        basis: str | None = conn.execute(query).scalar_one()
    return basis


def test_skills_skipped_for_want_of_a_device_are_recorded_as_not_asked(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    for _ in range(8):  # no device, no internet, no place; every blocker stops them
        send(handler, URN, "1")
    asked = send(handler, URN, "no")  # skip the skills

    assert asked.replies[0].text.startswith("Your priorities:\nFirst, you need: a device,")
    assert [question for question, _, _ in stored_answers(engine, URN)] == [
        key
        for key in quick_questions(flow)
        if not key.startswith(tuple(h.id for h in flow.headings))
    ]
    assert skills_basis(engine, URN) == "not_asked"  # not asked, never a score of zero


def test_skills_answered_as_if_with_a_device_say_so_and_back_withdraws_it(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    start_quick_check(handler, URN)
    for _ in range(8):
        send(handler, URN, "1")
    send(handler, URN, "yes")  # answer as if they had one
    assert skills_basis(engine, URN) == "as_if"
    send(handler, URN, "back")
    assert skills_basis(engine, URN) is None
    send(handler, URN, "2")
    send(handler, URN, "3")
    assert skills_basis(engine, URN) == "as_if"
    assert stored_answers(engine, URN)[-1][:2] == ("GS.skill", 3)


# --- the timeline and follow-up threads ------------------------------------------------------


def statements_of_a_turn(engine: sa.Engine, take: Callable[[], object]) -> list[str]:
    """The SQL statements `take` ran, as executed (an executemany once)."""
    ran: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        ran.append(" ".join(statement.split()))

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        take()
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    return ran


def test_a_turn_puts_what_was_said_and_each_reply_on_the_timeline_in_one_statement(
    engine: sa.Engine, handler: TurnHandler
) -> None:
    start_quick_check(handler, URN)

    ran = statements_of_a_turn(engine, lambda: send(handler, URN, "Usualy", queue_replies=True))

    assert len([s for s in ran if s.startswith("INSERT INTO timeline")]) == 1
    respondent_id = _respondent_id(engine)
    with engine.connect() as conn:
        *_, said, reply = timeline.read(conn, respondent_id, keys_of(engine))
        queued = conn.execute(sa.select(outbox.c.id, outbox.c.text)).all()[-1]
    assert (said.direction, said.kind, said.text, said.outbox_id) == (
        "in",
        "message",
        "Usualy",
        None,
    )
    assert (reply.direction, reply.kind, reply.outbox_id) == ("out", "reply", queued.id)
    assert reply.text == queued.text
    assert (reply.send_status, said.at, said.channel) == ("pending", NOW, CHANNEL)


def test_a_duplicate_adds_nothing_to_the_timeline(engine: sa.Engine, handler: TurnHandler) -> None:
    send(handler, URN, "Hi", "SM-twice")
    before = count_rows(engine, timeline_table)
    send(handler, URN, "Hi", "SM-twice")
    assert count_rows(engine, timeline_table) == before == 2


def test_a_held_turn_runs_as_few_statements_as_a_turn(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    taken = statements_of_a_turn(engine, lambda: send(handler, URN, "1"))
    request = FollowUpRequest(phone="07700 900123", text="Hello, it's Sam.", by="Sam")
    send_followup(engine, flow, request, parse_quiet_hours("", "", "UTC"), 72, NOW)

    held = statements_of_a_turn(engine, lambda: send(handler, URN, "2"))

    assert len(held) < len(taken)
    writes = [s.split(" ")[0:3] for s in held if s.startswith(("INSERT", "UPDATE", "DELETE"))]
    assert writes == [
        ["INSERT", "INTO", "inbox"],
        ["UPDATE", "conversations", "SET"],
        ["INSERT", "INTO", "timeline"],
    ]


def test_an_opt_out_reported_by_the_provider_closes_an_open_thread(
    engine: sa.Engine, handler: TurnHandler, flow: Flow
) -> None:
    start_quick_check(handler, URN)
    request = FollowUpRequest(phone="07700 900123", text="Hello, it's Sam.", by="Sam")
    sent = send_followup(engine, flow, request, parse_quiet_hours("", "", "UTC"), 72, NOW)

    handler.mark_opted_out(URN)

    with engine.connect() as conn:
        assert open_thread_id(conn, sent.respondent_id, NOW) is None
        closed_by = conn.execute(sa.select(threads_table.c.closed_by)).scalar_one()
    assert closed_by == "opted out"


def _respondent_id(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(respondents.c.id)).scalar_one())
