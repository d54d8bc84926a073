"""Assisted assessments through Flask's test client on a real database: a worker fills in the
check with a resident one question a page, through the same engine and turn handler as their
texts. The same choices made by text store the same answers and earn the same priorities; the
assessment says who helped; nothing is texted; a stale or repeated step answers nothing; odd
input gets a GOV.UK error; another team's worker gets 404."""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bot.engine import step as engine_step
from bot.messages import Inbound
from bot.state import State
from dashboard.assisted import AUDIT, CHANNEL, STALE, screen_of
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.loader import load_flow
from flows.model import Flow
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.quiet_hours import NO_QUIET_HOURS
from storage.models import (
    Answer,
    Assessment,
    AuditEntry,
    Conversation,
    FollowUpThread,
    OutboxEntry,
    Respondent,
    TimelineEntry,
    table,
)
from storage.privacy import keys_of
from storage.repository import TurnStore
from tests.dashboard_support import (
    NORTH_WORKER,
    FakeNow,
    Staff,
    csrf_token,
    dashboard_config,
    enrol_into_team,
    page_text,
    signed_in,
)
from tests.people import urn_digest
from tests.turn_helpers import send

PHONE = "07700 900123"
SMS_URN = "tel:+447700900456"
RESIDENT_URN = "tel:+447700900123"

answers, assessments, conversations = table(Answer), table(Assessment), table(Conversation)
outbox, timeline, audit = table(OutboxEntry), table(TimelineEntry), table(AuditEntry)
respondents = table(Respondent)

Policy = Callable[[str, int], int]
"""(step key, number of options) -> the option to choose."""


def no_skills_keen(key: str, options: int) -> int:
    """Has a device and a connection, nothing stops them, no skill at all, keen on everything."""
    if key in ("consent", "mode", "topic") or key.endswith(".topic"):
        return 1
    if key.endswith(".skill"):
        return 1  # I have no ability
    return options  # always have access; no problems; definitely interested


def varied(key: str, options: int) -> int:
    """A spread of answers, the same for the same question every time."""
    if key == "consent":
        return 1
    if key == "mode":
        return 2
    if key.endswith(".topic"):
        return 2 if key.startswith("HI") else 1
    return zlib.crc32(key.encode()) % options + 1


@pytest.fixture
def resident(engine: sa.Engine, flow: Flow, staff: Staff) -> int:
    return enrol_into_team(engine, flow, PHONE, staff.north_worker.team_id)


@pytest.fixture
def worker(dashboard: Flask, staff: Staff) -> FlaskClient:
    return signed_in(dashboard, staff.north_worker)


@pytest.fixture
def sms(engine: sa.Engine, flow: Flow, clock: FakeNow) -> TurnHandler:
    return TurnHandler(engine, flow, clock=clock)


def path(respondent_id: int) -> str:
    return f"/respondents/{respondent_id}/assisted"


@dataclass(frozen=True)
class Step:
    key: str
    at: str
    options: tuple[int, ...]
    page: str


def current(client: FlaskClient, respondent_id: int) -> Step:
    response = client.get(path(respondent_id))
    assert response.status_code == 200, page_text(response)
    html = response.get_data(as_text=True)
    key = re.search(r'name="step" value="([^"]*)"', html)
    at = re.search(r'name="at" value="([^"]*)"', html)
    options = tuple(int(n) for n in re.findall(r'name="option" type="radio" value="(\d+)"', html))
    return Step(key[1] if key else "", at[1] if at else "", options, page_text(response))


def post(client: FlaskClient, respondent_id: int, step: Step, **data: str) -> TestResponse:
    token = csrf_token(client, path(respondent_id))
    return client.post(
        path(respondent_id), data={"csrf_token": token, "step": step.key, "at": step.at, **data}
    )


def answer(client: FlaskClient, respondent_id: int, **data: str) -> TestResponse:
    response = post(client, respondent_id, current(client, respondent_id), **data)
    assert response.status_code == 303, page_text(response)
    return response


def run_assisted(client: FlaskClient, respondent_id: int, policy: Policy) -> list[str]:
    """Answer every step by `policy` until the end; the keys of the steps answered."""
    asked: list[str] = []
    for _ in range(400):
        step = current(client, respondent_id)
        if not step.options:
            return asked
        asked.append(step.key)
        option = policy(step.key, len(step.options))
        response = post(client, respondent_id, step, option=str(option))
        assert response.status_code == 303, page_text(response)
    raise AssertionError("the assessment never ended")


def run_by_text(
    sms: TurnHandler, engine: sa.Engine, flow: Flow, clock: FakeNow, urn: str, policy: Policy
) -> tuple[list[str], str]:
    """The same choices by text: the keys asked and the last message (the priorities)."""
    result = send(sms, urn, "Hi")
    asked: list[str] = []
    while result.replies and result.replies[-1].buttons:
        reply = result.replies[-1]
        key = reply.buttons[0].payload.rpartition(":")[0]
        shown = screen_of(flow, conversation_state(engine, urn), clock())
        assert shown.key == key  # the page asks what the engine asks, with the same numbers
        assert [c.number for c in shown.choices] == [
            int(b.payload.rpartition(":")[2]) for b in reply.buttons
        ]
        asked.append(key)
        result = send(sms, urn, str(policy(key, len(reply.buttons))))
    return asked, result.replies[-1].text


def conversation_state(engine: sa.Engine, urn: str) -> State:
    with engine.connect() as conn:
        saved = conn.execute(
            sa.select(conversations.c.state)
            .join(respondents, respondents.c.id == conversations.c.respondent_id)
            .where(respondents.c.urn_digest == urn_digest(engine, urn))
        ).scalar_one()
    return State.from_json(saved)


def stored(engine: sa.Engine, respondent_id: int) -> dict[str, tuple[int | None, int | None]]:
    """question -> (option, score) of the respondent's latest assessment."""
    with engine.connect() as conn:
        latest = conn.execute(
            sa.select(sa.func.max(assessments.c.id)).where(
                assessments.c.respondent_id == respondent_id
            )
        ).scalar_one()
        rows = conn.execute(
            sa.select(answers.c.question, answers.c.option, answers.c.score).where(
                answers.c.assessment_id == latest
            )
        ).all()
    return {row.question: (row.option, row.score) for row in rows}


def respondent_of(engine: sa.Engine, urn: str) -> int:
    with engine.connect() as conn:
        found: int = conn.execute(
            sa.select(respondents.c.id).where(respondents.c.urn_digest == urn_digest(engine, urn))
        ).scalar_one()
    return found


def assessment_rows(engine: sa.Engine, respondent_id: int) -> list[sa.Row[tuple[object, ...]]]:
    with engine.connect() as conn:
        return list(
            conn.execute(
                sa.select(assessments)
                .where(assessments.c.respondent_id == respondent_id)
                .order_by(assessments.c.id)
            ).all()
        )


def count(engine: sa.Engine, table_: sa.Table, *where: sa.ColumnElement[bool]) -> int:
    with engine.connect() as conn:
        found: int = conn.execute(
            sa.select(sa.func.count()).select_from(table_).where(*where)
        ).scalar_one()
    return found


# --- whole assessments, compared with the same choices by text ------------------------------


def test_a_quick_check_with_no_skills_stores_what_texting_stores_and_names_priorities(
    worker: FlaskClient,
    engine: sa.Engine,
    flow: Flow,
    clock: FakeNow,
    sms: TurnHandler,
    resident: int,
) -> None:
    outbox_before = count(engine, outbox)
    asked = run_assisted(worker, resident, no_skills_keen)
    done = current(worker, resident)

    by_text, priorities = run_by_text(sms, engine, flow, clock, SMS_URN, no_skills_keen)
    assert asked == by_text
    assert asked[:3] == ["consent", "mode", "BA01.access"]
    assert stored(engine, resident) == stored(engine, respondent_of(engine, SMS_URN))
    assert len(stored(engine, resident)) == 22

    assert "Assessment complete" in done.page
    assert "What they would have been sent by text" in done.page
    assert " ".join(priorities.split()) in done.page
    assert "doing well" not in done.page
    assert "Your priorities" in done.page or "to learn next" in done.page

    (assessment,) = assessment_rows(engine, resident)
    assert assessment.mode == "quick"
    assert assessment.completed_at is not None
    assert assessment.assisted_by == NORTH_WORKER
    (by_themselves,) = assessment_rows(engine, respondent_of(engine, SMS_URN))
    assert by_themselves.assisted_by is None
    assert count(engine, outbox) == outbox_before  # nothing texted: only the invitation


def test_a_full_assessment_with_topics_skipped_stores_what_texting_stores(
    worker: FlaskClient,
    engine: sa.Engine,
    flow: Flow,
    clock: FakeNow,
    sms: TurnHandler,
    resident: int,
) -> None:
    asked = run_assisted(worker, resident, varied)
    by_text, priorities = run_by_text(sms, engine, flow, clock, SMS_URN, varied)
    assert asked == by_text
    assert "HI.topic" in asked
    assert "HI01.skill" not in asked  # the topic was skipped
    assisted_answers = stored(engine, resident)
    assert assisted_answers == stored(engine, respondent_of(engine, SMS_URN))
    assert len(assisted_answers) > 56
    assert " ".join(priorities.split()) in current(worker, resident).page
    (assessment,) = assessment_rows(engine, resident)
    assert (assessment.mode, assessment.assisted_by) == ("full", NORTH_WORKER)
    assert assessment.completed_at is not None


def no_device(key: str, options: int) -> int:
    """No device at all, so they skip the skills questions; everything else is fine."""
    if key in ("consent", "mode", "BA01.access", "skills.basis"):
        return 1
    return options


def test_without_a_device_the_skills_can_be_skipped_and_the_device_comes_first(
    worker: FlaskClient,
    engine: sa.Engine,
    flow: Flow,
    clock: FakeNow,
    sms: TurnHandler,
    resident: int,
) -> None:
    asked = run_assisted(worker, resident, no_device)
    by_text, priorities = run_by_text(sms, engine, flow, clock, SMS_URN, no_device)
    assert asked == by_text
    assert "skills.basis" in asked
    assert not any(key.endswith(".skill") for key in asked)
    assert stored(engine, resident) == stored(engine, respondent_of(engine, SMS_URN))
    done = current(worker, resident)
    assert " ".join(priorities.split()) in done.page
    assert "First, you need:" in done.page
    assert "doing well" not in done.page
    (assessment,) = assessment_rows(engine, resident)
    assert (assessment.skills_basis, assessment.assisted_by) == ("not_asked", NORTH_WORKER)


def test_the_turns_are_on_the_timeline_as_assisted_and_audited(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    answer(worker, resident, option="1")  # consent
    answer(worker, resident, option="1")  # quick
    answer(worker, resident, option="5")  # BA01
    tl = timeline.c.respondent_id == resident
    assert (
        count(engine, timeline, tl, timeline.c.channel == CHANNEL, timeline.c.direction == "in")
        == 3
    )
    assert (
        count(engine, timeline, tl, timeline.c.channel == CHANNEL, timeline.c.direction == "out")
        == 3
    )
    assert (
        count(engine, timeline, tl, timeline.c.channel == CHANNEL, timeline.c.outbox_id.isnot(None))
        == 0
    )
    with engine.connect() as conn:
        row = conn.execute(
            sa.select(answers.c.channel, answers.c.option).where(
                answers.c.question == "BA01.access"
            )
        ).one()
        details = (
            conn.execute(
                sa.select(audit.c.detail)
                .where(audit.c.action == AUDIT, audit.c.respondent_id == resident)
                .order_by(audit.c.id)
            )
            .scalars()
            .all()
        )
    assert tuple(row) == (CHANNEL, 5)
    assert "viewed" in details
    assert "answered at BA01.access" in details
    assert "answered at consent" in details


def test_progress_and_the_question_are_shown_as_the_engine_counts_them(
    worker: FlaskClient, resident: int
) -> None:
    first = current(worker, resident)
    assert first.key == "consent"
    assert "Privacy notice" in first.page
    assert "free digital skills check" in first.page
    assert first.options == (1, 2)
    answer(worker, resident, option="1")
    assert "Quick: 22 questions" in current(worker, resident).page
    answer(worker, resident, option="1")
    question = current(worker, resident)
    assert question.key == "BA01.access"
    assert "Question 1 of 22" in question.page
    assert "I always have access to this" in question.page  # the full wording, to read out
    assert question.options == (1, 2, 3, 4, 5)
    assert "Skip this question" in question.page
    assert "Back to the previous question" not in question.page  # nothing to go back to yet


# --- back and skip ----------------------------------------------------------------------------


def test_back_clears_the_last_answer_and_asks_it_again(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    for option in ("1", "1", "4"):
        answer(worker, resident, option=option)
    assert current(worker, resident).key == "BA02.access"
    answer(worker, resident, command="back")
    again = current(worker, resident)
    assert again.key == "BA01.access"
    assert "Question 1 of 22" in again.page
    assert "BA01.access" not in stored(engine, resident)
    answer(worker, resident, option="2")
    assert stored(engine, resident) == {"BA01.access": (2, 1)}


def test_skip_records_the_question_as_skipped_and_moves_on(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    for option in ("1", "1"):
        answer(worker, resident, option=option)
    answer(worker, resident, command="skip")
    assert current(worker, resident).key == "BA02.access"
    assert stored(engine, resident) == {"BA01.access": (None, None)}


def test_back_and_skip_are_refused_where_the_engine_has_none(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    consent = current(worker, resident)
    assert "Skip this question" not in consent.page
    for command in ("skip", "back", "restart", "stop"):
        response = post(worker, resident, consent, command=command)
        assert response.status_code == 400
        assert "That cannot be done at this question" in page_text(response)
    assert current(worker, resident).key == "consent"
    assert count(engine, timeline, timeline.c.channel == CHANNEL) == 0


# --- stale steps and double submits -----------------------------------------------------------


def test_the_same_step_posted_twice_answers_once(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    answer(worker, resident, option="1")
    answer(worker, resident, option="1")
    step = current(worker, resident)
    first = post(worker, resident, step, option="3")
    second = post(worker, resident, step, option="3")
    assert first.status_code == 303
    assert second.status_code == 409
    assert STALE in page_text(second)
    assert "There is a problem" in page_text(second)
    assert stored(engine, resident) == {"BA01.access": (3, 2)}
    assert current(worker, resident).key == "BA02.access"


def test_two_posts_of_the_same_step_at_once_answer_once(
    dashboard: Flask, worker: FlaskClient, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    answer(worker, resident, option="1")
    answer(worker, resident, option="1")
    step = current(worker, resident)
    tabs = [signed_in(dashboard, staff.north_worker) for _ in range(2)]
    tokens = [csrf_token(tab, path(resident)) for tab in tabs]
    together = threading.Barrier(len(tabs))
    statuses: list[int] = []

    def click(tab: FlaskClient, token: str, option: str) -> None:
        data = {"csrf_token": token, "step": step.key, "at": step.at, "option": option}
        together.wait()
        statuses.append(tab.post(path(resident), data=data).status_code)

    clicks = [
        threading.Thread(target=click, args=(tab, token, option))
        for tab, token, option in zip(tabs, tokens, ("2", "4"), strict=True)
    ]
    for thread in clicks:
        thread.start()
    for thread in clicks:
        thread.join()
    assert sorted(statuses) == [303, 409]
    assert len(stored(engine, resident)) == 1
    assert current(worker, resident).key == "BA02.access"


def test_a_stale_tab_after_back_is_refused_even_for_the_same_question(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    for option in ("1", "1", "4"):
        answer(worker, resident, option=option)
    at_second = current(worker, resident)
    answer(worker, resident, command="back")
    response = post(worker, resident, at_second, command="back")
    assert response.status_code == 409
    assert current(worker, resident).key == "BA01.access"  # went back once, not twice
    assert count(engine, answers) == 0


def test_a_text_from_the_resident_in_between_is_not_overwritten(
    worker: FlaskClient, engine: sa.Engine, sms: TurnHandler, resident: int
) -> None:
    answer(worker, resident, option="1")
    answer(worker, resident, option="1")
    step = current(worker, resident)
    send(sms, RESIDENT_URN, "2")  # they answer BA01 by text meanwhile
    response = post(worker, resident, step, option="5")
    assert response.status_code == 409
    assert STALE in page_text(response)
    assert stored(engine, resident) == {"BA01.access": (2, 1)}
    assert current(worker, resident).key == "BA02.access"


def test_a_text_taken_while_the_page_posts_wins_and_the_page_is_refused(
    worker: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, resident: int
) -> None:
    """The resident's turn holds their conversation's lock when the worker posts: the page has
    read the step as current, then finds under the lock that it no longer is."""
    answer(worker, resident, option="1")
    answer(worker, resident, option="1")
    step = current(worker, resident)
    token = csrf_token(worker, path(resident))
    said: list[TestResponse] = []

    def click() -> None:
        data = {"csrf_token": token, "step": step.key, "at": step.at, "option": "5"}
        said.append(worker.post(path(resident), data=data))

    store = TurnStore(engine.dialect.name)
    posting = threading.Thread(target=click)
    with engine.begin() as conn:
        turn = store.lock_conversation(conn, RESIDENT_URN, flow, State(), clock())
        posting.start()
        time.sleep(0.5)  # the page has read the step and waits for the lock
        moved = engine_step(flow, State.from_json(turn.state), Inbound("2"), clock()).state
        store.save_conversation(conn, turn, moved.to_json(), flow, turn.assessment_id, clock())
    posting.join()
    (refused,) = said
    assert refused.status_code == 409
    assert STALE in page_text(refused)
    assert "Question 2 of 22" in page_text(refused)  # the question they are at now
    assert current(worker, resident).key == "BA02.access"
    assert count(engine, answers) == 0  # the worker's 5 went nowhere


def test_a_step_id_that_is_missing_or_made_up_is_refused(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    step = current(worker, resident)
    for key, at in (("", ""), ("consent", "0" * 32), ("GS01.skill", step.at), ("x" * 5000, "ü")):
        response = post(worker, resident, Step(key, at, (), ""), option="1")
        assert response.status_code == 409
        assert STALE in page_text(response)
    assert current(worker, resident).key == "consent"


# --- odd answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("", "Select their answer"),
        ("   ", "Select their answer"),
        ("abc", "Select one of the answers shown"),
        ("6", "Select one of the answers shown"),
        ("0", "Select one of the answers shown"),
        ("-1", "Select one of the answers shown"),
        ("1.0", "Select one of the answers shown"),
        ("\uff13", "Select one of the answers shown"),  # a full-width 3
        ("3\u200b", "Select one of the answers shown"),
        ("9" * 5000, "Select one of the answers shown"),
        ("never", "Select one of the answers shown"),  # a word the engine matches by text
    ],
)
def test_an_answer_that_is_not_an_option_gets_a_govuk_error_and_changes_nothing(
    worker: FlaskClient, engine: sa.Engine, resident: int, option: str, message: str
) -> None:
    answer(worker, resident, option="1")
    answer(worker, resident, option="1")
    step = current(worker, resident)
    response = post(worker, resident, step, option=option)
    assert response.status_code == 400
    text = page_text(response)
    assert text.startswith("Error:")
    assert "There is a problem" in text
    assert f"Error: {message}" in text  # the field's own error, as GOV.UK words it
    assert 'href="#option"' in response.get_data(as_text=True)
    assert count(engine, answers) == 0
    assert current(worker, resident).at == step.at


def test_no_option_at_all_is_an_error_too(worker: FlaskClient, resident: int) -> None:
    step = current(worker, resident)
    response = post(worker, resident, step)
    assert response.status_code == 400
    assert "Select their answer" in page_text(response)


# --- consent, opting out, follow-up threads ---------------------------------------------------


def test_no_at_the_privacy_notice_stops_and_records_nothing(
    worker: FlaskClient, engine: sa.Engine, resident: int
) -> None:
    answer(worker, resident, option="2")
    page = current(worker, resident)
    assert "They said no to taking part" in page.page
    assert "nothing more is asked" in page.page
    assert assessment_rows(engine, resident) == []
    with engine.connect() as conn:
        consented = conn.execute(
            sa.select(respondents.c.consented_at).where(respondents.c.id == resident)
        ).scalar_one()
    assert consented is None
    # they change their mind: the privacy notice is asked again, and a yes carries on
    assert page.key == "consent"
    answer(worker, resident, option="1")
    assert current(worker, resident).key == "mode"


def test_an_opted_out_resident_is_told_apart_and_nothing_starts(
    worker: FlaskClient, engine: sa.Engine, sms: TurnHandler, resident: int
) -> None:
    step = current(worker, resident)
    send(sms, RESIDENT_URN, "STOP")
    page = current(worker, resident)
    assert "opted out" in page.page
    assert "START" in page.page
    assert page.options == ()
    response = post(worker, resident, step, option="1")
    assert response.status_code == 409
    assert count(engine, timeline, timeline.c.channel == CHANNEL) == 0
    with engine.connect() as conn:
        opted_out = conn.execute(
            sa.select(respondents.c.opted_out).where(respondents.c.id == resident)
        ).scalar_one()
    assert opted_out


def test_an_open_follow_up_thread_holds_the_assessment(
    worker: FlaskClient, engine: sa.Engine, clock: FakeNow, resident: int
) -> None:
    step = current(worker, resident)
    threads = table(FollowUpThread)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(threads).values(
                respondent_id=resident,
                opened_by=NORTH_WORKER,
                opened_at=clock(),
                closes_at=clock() + timedelta(hours=24),
            )
        )
    assert "follow-up conversation with them is open" in current(worker, resident).page
    assert post(worker, resident, step, option="1").status_code == 409
    assert count(engine, timeline, timeline.c.channel == CHANNEL) == 0


# --- taking over a conversation begun by text ----------------------------------------------


def test_a_resident_part_way_by_text_is_taken_over_where_they_are(
    worker: FlaskClient, engine: sa.Engine, sms: TurnHandler, resident: int
) -> None:
    for text in ("1", "1", "5", "4"):  # consent, quick, BA01, BA02 by text
        send(sms, RESIDENT_URN, text)
    step = current(worker, resident)
    assert step.key == "BA03.access"
    assert "Question 3 of 22" in step.page
    assert "They began this assessment by text and gave 2 answers that way" in step.page
    answer(worker, resident, option="5")
    (assessment,) = assessment_rows(engine, resident)
    assert assessment.assisted_by == NORTH_WORKER
    assert stored(engine, resident) == {
        "BA01.access": (5, 4),
        "BA02.access": (4, 3),
        "BA03.access": (5, 4),
    }
    send(sms, RESIDENT_URN, "5")  # and they can carry on by text
    assert "BL01.blocker" in stored(engine, resident)


def test_a_resident_who_never_got_going_is_started_with_the_privacy_notice(
    dashboard: Flask, worker: FlaskClient, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(conversations)
            .where(conversations.c.respondent_id == resident)
            .values(state=State().to_json())
        )
    start = current(worker, resident)
    assert start.key == "new"
    assert "Start the assessment" in start.page
    assert post(worker, resident, start, option="1").status_code == 400
    assert post(worker, resident, start, command="start").status_code == 303
    assert post(worker, resident, start, command="start").status_code == 409
    assert current(worker, resident).key == "consent"


# --- who may -------------------------------------------------------------------------------


def test_another_teams_worker_gets_404_on_get_and_post_and_nothing_changes(
    dashboard: Flask, worker: FlaskClient, engine: sa.Engine, staff: Staff, resident: int
) -> None:
    step = current(worker, resident)
    south = signed_in(dashboard, staff.south_worker)
    token = csrf_token(south, "/password")
    assert south.get(path(resident)).status_code == 404
    response = south.post(
        path(resident), data={"csrf_token": token, "step": step.key, "at": step.at, "option": "1"}
    )
    assert response.status_code == 404
    for missing in (resident + 1000, 0):
        assert south.get(path(missing)).status_code == 404
    assert south.get("/respondents/-1/assisted").status_code == 404
    assert current(worker, resident).key == "consent"
    assert (
        count(engine, audit, audit.c.action == AUDIT, audit.c.staff_id == staff.south_worker.id)
        == 0
    )


def test_an_admin_may_help_another_teams_resident_and_is_named_as_helping(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    southern = enrol_into_team(engine, flow, "07700 900789", staff.south_worker.team_id)
    admin = signed_in(dashboard, staff.north_admin)
    for option in ("1", "1"):
        answer(admin, southern, option=option)
    (assessment,) = assessment_rows(engine, southern)
    assert assessment.assisted_by == staff.north_admin.email


def test_signed_out_the_page_asks_for_login(dashboard: Flask, resident: int) -> None:
    client = dashboard.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    response = client.get(path(resident))
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


# --- the resident's language, and a long gap -----------------------------------------------


def test_a_welsh_speaker_is_asked_in_welsh_and_welsh_commands_work(
    database_url: str, engine: sa.Engine, clock: FakeNow, staff: Staff
) -> None:
    bilingual = load_flow()
    app = create_app(dashboard_config(database_url), flow=bilingual, now=clock)
    try:
        request = EnrolmentRequest(
            phone=PHONE,
            telegram=None,
            cohort=None,
            initiative=None,
            language="cy",
            enrolled_by=NORTH_WORKER,
            lawful_basis="public_task",
        )
        resident = enrol(engine, bilingual, request, NO_QUIET_HOURS, clock()).respondent_id
        with engine.begin() as conn:
            conn.execute(
                sa.update(respondents)
                .where(respondents.c.id == resident)
                .values(team_id=staff.north_worker.team_id)
            )
        worker = signed_in(app, staff.north_worker)
        consent = current(worker, resident)
        assert consent.key == "consent"
        assert "Cytuno, awn ati" in consent.page
        assert "Read this out to them in Cymraeg" in consent.page
        html = worker.get(path(resident)).get_data(as_text=True)
        assert '<span lang="cy">Cytuno, awn ati</span>' in html
        for option in ("1", "1", "5"):
            answer(worker, resident, option=option)
        answer(worker, resident, command="back")  # sent as the Welsh "nôl"
        assert current(worker, resident).key == "BA01.access"
        assert stored(engine, resident) == {}
        with engine.connect() as conn:
            typed = conn.execute(
                sa.select(timeline.c.text_cipher)
                .where(timeline.c.direction == "in")
                .order_by(timeline.c.id.desc())
                .limit(1)
            ).scalar_one()
        assert keys_of(engine).decrypt(typed) == "nôl"
    finally:
        app.extensions["dibot"].engine.dispose()


def test_after_a_long_gap_the_check_asks_to_carry_on_first(
    dashboard: Flask,
    engine: sa.Engine,
    flow: Flow,
    clock: FakeNow,
    sms: TurnHandler,
    staff: Staff,
    resident: int,
) -> None:
    for text in ("1", "1", "5"):
        send(sms, RESIDENT_URN, text)
    clock.advance(timedelta(days=flow.resume_after_days + 1))
    worker = signed_in(dashboard, staff.north_worker)
    step = current(worker, resident)
    assert step.key == "BA02.access"
    response = post(worker, resident, step, option="4")
    assert response.status_code == 303
    choice = current(worker, resident)
    assert "Nothing was recorded for the question" in choice.page
    assert choice.key == "resume"
    assert "Carry on or start again" in choice.page
    assert "BA02.access" not in stored(engine, resident)
    answer(worker, resident, option="1")
    assert current(worker, resident).key == "BA02.access"
    answer(worker, resident, option="4")
    assert stored(engine, resident)["BA02.access"] == (4, 3)


def test_a_resident_who_said_later_is_helped_on_from_the_same_question(
    worker: FlaskClient, engine: sa.Engine, sms: TurnHandler, resident: int
) -> None:
    for text in ("1", "1", "5", "later"):
        send(sms, RESIDENT_URN, text)
    step = current(worker, resident)
    assert step.key == "BA02.access"
    assert "Back to the previous question" in step.page
    answer(worker, resident, option="3")
    assert stored(engine, resident)["BA02.access"] == (3, 2)
    assert current(worker, resident).key == "BA03.access"
