"""The respondent page (`GET /respondents/<id>`), through Flask's test client on a real
database whose residents answered by running real conversations: what the page says of them
(status, the profile chart and its numbers, priorities, every answer, check-ins and gains, the
message timeline with delivery), that it makes sense at the extremes (no skills is never
"doing well"; confident at everything is not told to learn everything), odd data, 404 for
another team's or a missing resident, and the audit line; and the pure SVG chart builder."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from itertools import count
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bot.messages import Inbound, Outbound
from dashboard.charts import PairedBars, percent, skill_interest_chart
from dashboard.respondent_page import Waiting, delivery
from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.loader import load_flow
from flows.model import Flow
from outreach.enrolment import EnrolmentRequest, enrol
from outreach.outbound import queue_outreach
from outreach.quiet_hours import NO_QUIET_HOURS, parse_quiet_hours
from scoring import gains, priorities, profile
from storage import outbox, timeline
from storage.models import (
    Answer,
    Assessment,
    AuditEntry,
    Conversation,
    FollowUpThread,
    Respondent,
    table,
)
from tests.dashboard_support import (
    NORTH_WORKER,
    FakeNow,
    Staff,
    dashboard_config,
    enrol_into_team,
    page_text,
    signed_in,
)
from tests.test_checkins import new_town

PHONE = "07700 900123"
URN = "tel:+447700900123"
OTHER_PHONE = "07700 900456"
OTHER_URN = "tel:+447700900456"
TOPICS = ("GS", "CM", "HI", "TR", "PS", "SS", "AD")
_ids = count(1)


# --- helpers -------------------------------------------------------------------------------


def talk(engine: sa.Engine, flow: Flow, clock: FakeNow, urn: str, *texts: str) -> None:
    """The resident texts each of `texts` over SMS, through the real turn handler."""
    handler = TurnHandler(engine, flow, clock=clock)
    for text in texts:
        handler.handle(
            channel="sms", message_id=f"SM{next(_ids):032d}", urn=urn, inbound=Inbound(text)
        )


def quick_check(skill: str, interest: str, basics: str = "5", blockers: str = "5") -> list[str]:
    """Greeting, consent, quick check, then every answer: the same option for each kind."""
    return ["Hi", "1", "1", *[basics] * 3, *[blockers] * 5, *[skill, interest] * len(TOPICS)]


def words(response: TestResponse) -> str:
    """What a person reads on the page (entities read as the characters they are)."""
    return html.unescape(page_text(response))


def view(client: FlaskClient, respondent_id: int) -> TestResponse:
    response = client.get(f"/respondents/{respondent_id}")
    assert response.status_code == 200, response.status_code
    return response


def table_rows(response: TestResponse, table_id: str) -> list[list[str]]:
    """The body rows of the table with `table_id`, as the texts of their cells."""
    found = re.search(
        rf'<table[^>]* id="{table_id}".*?<tbody[^>]*>(.*?)</tbody>',
        response.get_data(as_text=True),
        flags=re.S,
    )
    assert found, table_id
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", found[1], flags=re.S)
    return [
        [
            html.unescape(re.sub(r"\s+", " ", cell).strip())
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, flags=re.S)
        ]
        for row in rows
    ]


def section(text: str, start: str, end: str) -> str:
    """The page's words from the heading `start` up to the heading `end`."""
    page = text.split(" Back to residents ", 1)[1]  # after the navigation's own words
    return page.split(f" {start} ", 1)[1].split(f" {end} ", 1)[0]


def stored_answers(engine: sa.Engine, respondent_id: int) -> dict[str, int]:
    """The latest assessment's answers as scoring takes them (skips left out)."""
    a, answers = table(Assessment), table(Answer)
    with engine.connect() as conn:
        latest = conn.execute(
            sa.select(sa.func.max(a.c.id)).where(a.c.respondent_id == respondent_id)
        ).scalar_one()
        rows = conn.execute(
            sa.select(answers.c.question, answers.c.option).where(
                answers.c.assessment_id == latest, answers.c.option.is_not(None)
            )
        ).all()
    return {row.question: row.option for row in rows}


def views_audited(engine: sa.Engine) -> list[tuple[int | None, int | None]]:
    audit = table(AuditEntry)
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(audit.c.staff_id, audit.c.respondent_id)
            .where(audit.c.action == "view respondent")
            .order_by(audit.c.id)
        ).all()
    return [(row.staff_id, row.respondent_id) for row in rows]


@pytest.fixture
def north(dashboard: Flask, staff: Staff) -> FlaskClient:
    return signed_in(dashboard, staff.north_worker)


def north_resident(engine: sa.Engine, flow: Flow, staff: Staff, phone: str = PHONE) -> int:
    return enrol_into_team(engine, flow, phone, staff.north_worker.team_id)


# --- what the page says --------------------------------------------------------------------


def test_a_finished_quick_check_as_the_team_sees_it(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, "Hi", "1", "1", "5", "4", "3", "5", "2", "5", "5", "4")
    for skill, interest in (
        ("2", "5"),
        ("4", "3"),
        ("3", "5"),
        ("1", "4"),
        ("5", "5"),
        ("2", "2"),
        ("skip", "skip"),
    ):
        talk(engine, flow, clock, URN, skill, interest)

    page = view(north, rid)
    text = words(page)
    body = page.get_data(as_text=True)

    assert "Resident 07700 900••• Completed" in text
    assert "900123" not in body
    assert "447700900123" not in body
    assert "Team North" in text
    for href, label in (
        (f"/respondents/{rid}/follow-up", "Send a follow-up text"),
        (f"/respondents/{rid}/assisted", "Fill in the assessment with them"),
        (f"/respondents/{rid}/checkins", "Schedule a check-in"),
    ):
        assert re.search(rf'<a href="{href}"[^>]*>{label}</a>', body), label
    assert (
        "Enrolled 1 December 2026, 11:00 GMT by worker@north.example.gov.uk, "
        "lawful basis: public task"
    ) in text
    assert "Consent Given 1 December 2026, 11:00 GMT" in text
    assert "Opted out No" in text
    assert (
        "Completed 1 December 2026, 11:00 GMT (First check, quick check; 20 answered, 2 skipped)"
        in text
    )
    # The chart: an image named by its title, described in words, with no inline style.
    assert re.search(
        r'<svg [^>]*role="img"[^>]*aria-labelledby="(profile-\d+)-title \1-desc"', body
    )
    assert re.search(r'<title id="profile-\d+-title">Skill and interest per heading</title>', body)
    assert "Getting started: skill 25%, interest 100%." in text
    assert "style=" not in body
    assert "<style" not in body
    # The table's numbers are scoring's, heading by heading.
    scored = profile(flow, stored_answers(engine, rid))
    expected = [
        [
            heading.title["en"],
            "not answered" if score.skill is None else percent(score.skill),
            "not answered" if score.interest is None else percent(score.interest),
        ]
        for heading, score in zip(flow.headings, scored.headings, strict=True)
    ]
    assert [row[:3] for row in table_rows(page, "profile-numbers")] == expected
    assert expected[0] == ["Getting started", "25%", "100%"]
    assert expected[-1] == ["Advanced skills", "not answered", "not answered"]
    # Priorities: what the resident was sent, in scoring's order.
    ranked = priorities(flow, scored)
    assert [p.unit for p in ranked] == ["GS", "TR", "HI"]  # 12 (keener), 12, 8
    priorities_text = section(text, "Priorities", "Answers")
    assert priorities_text.startswith(
        "What holds them back: poor signal. Things to learn next (as sent to them): "
        "Getting started (the whole topic, from the quick check): skill “I'm "
        "cautious/reluctant to do anything without help”, interest “I'll definitely do this "
        "regularly” Shopping, banking and forms (the whole topic, Transacting, from the quick "
        "check): skill “I have no ability”, interest “I'm likely to do this regularly” Finding "
        "information (the whole topic, Handling information and content"
    )
    assert "more things they could learn" not in priorities_text
    assert "Doing well" not in priorities_text
    # Every answer, in English, skipped ones said.
    answers = section(text, "Answers", "Check-ins")
    assert (
        "Do you have internet access, like broadband or mobile data? I usually have access to this"
    ) in answers
    assert (
        "How well can you apply for jobs and work online? Skipped "
        "If you could apply for jobs and work online, would you do it regularly? Skipped"
    ) in answers
    # The timeline: both ways, with what became of the bot's own texts.
    messages = text.split(" Messages ", 1)[1]
    assert "From them SMS message Hi" in messages
    assert "To them SMS invitation by worker@north.example.gov.uk" in messages
    assert "Waiting to send" in messages  # the invitation, not sent by a worker yet
    assert "Sent as the reply" in messages


def test_the_view_is_audited_in_its_transaction(
    north: FlaskClient, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)

    view(north, rid)
    view(north, rid)

    assert views_audited(engine) == [(staff.north_worker.id, rid)] * 2


def test_another_teams_worker_a_missing_id_and_odd_ids_get_404(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    south = signed_in(dashboard, staff.south_worker)

    for path in (
        f"/respondents/{rid}",
        f"/respondents/{rid + 1000}",
        "/respondents/abc",
        "/respondents/-1",
        f"/respondents/{rid}.0",
        "/respondents/0",
        "/respondents/99999999999999999999999",
        "/respondents/%F0%9F%99%82",
    ):
        response = south.get(path)
        assert response.status_code == 404, path
        assert "07700" not in response.get_data(as_text=True)
    assert views_audited(engine) == []
    stranger = dashboard.test_client()
    stranger.environ_base["wsgi.url_scheme"] = "https"
    assert stranger.get(f"/respondents/{rid}").status_code == 302


def test_a_self_started_resident_has_no_team_and_only_admins_see_them(
    dashboard: Flask, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    talk(engine, flow, clock, URN, "Hi")
    with engine.connect() as conn:
        rid = conn.execute(sa.select(table(Respondent).c.id)).scalar_one()

    assert signed_in(dashboard, staff.north_worker).get(f"/respondents/{rid}").status_code == 404
    page = view(signed_in(dashboard, staff.north_admin), rid)

    text = words(page)
    assert "Resident 07700 900••• Not started" in text
    assert "Team No team: they started by texting in (admins only)" in text
    assert "Enrolled Never: they texted first" in text
    assert "Consent Not given yet" in text
    assert "Conversation Reading the privacy notice, has not agreed yet" in text
    assert "No answers yet." in text
    assert views_audited(engine) == [(staff.north_admin.id, rid)]


# --- sense at the extremes ------------------------------------------------------------------


def test_no_skill_at_all_and_keen_is_never_doing_well(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, *quick_check(skill="1", interest="5"))

    page = view(north, rid)

    text = words(page)
    assert [row[1] for row in table_rows(page, "profile-numbers")] == ["0%"] * 7
    assert "Getting started: skill 0%, interest 100%." in text
    found = section(text, "Priorities", "Answers")
    assert "Doing well" not in found
    assert "doing well" not in found
    assert "Things to learn next (as sent to them): Getting started" in found
    assert 'skill "I have no ability"'.replace('"', "“", 1).replace('"', "”", 1) in found
    assert "4 more things they could learn" in found
    # A 0% bar is drawn as a stub and labelled, never left blank as if not answered.
    assert 'class="dibot-chart__value">0%</text>' in page.get_data(as_text=True)


def test_no_skill_and_no_interest_names_lack_of_interest_not_doing_well(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, *quick_check(skill="1", interest="1"))

    found = section(words(view(north, rid)), "Priorities", "Answers")

    assert "What holds them back: lack of interest." in found
    assert "Doing well" not in found
    assert "Things to learn next" not in found


def test_confident_with_everything_is_not_told_to_learn_everything(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, *quick_check(skill="5", interest="5"))

    page = view(north, rid)

    found = section(words(page), "Priorities", "Answers")
    assert found.startswith("Doing well: confident with every skill they answered")
    assert "Things to learn next" not in found
    assert "more things they could learn" not in found
    assert "First, they need" not in found
    assert [row[1:3] for row in table_rows(page, "profile-numbers")] == [["100%", "100%"]] * 7


def test_no_connection_and_skills_skipped_reads_as_not_asked(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    # A device always, never a connection, a good place; no blocker; then "skip the skills".
    talk(engine, flow, clock, URN, "Hi", "1", "1", "5", "1", "5", *["5"] * 5, "1")

    page = view(north, rid)

    text = words(page)
    assert "Resident 07700 900••• Completed" in text
    assert [row[1:] for row in table_rows(page, "profile-numbers")] == [
        ["not asked", "not asked", "nothing answered"]
    ] * 7
    assert "their skills were not asked, which is not the same as none" in text
    found = section(text, "Priorities", "Answers")
    assert "First, they need: internet access." in found
    assert "Doing well" not in found
    answers = section(text, "Answers", "Check-ins")
    assert "Skills Not asked: no device or connection, and they chose to skip" in answers
    assert (
        "Getting started Not asked: they have no device or connection and chose to skip the skills"
    ) in answers


def test_a_half_finished_full_assessment(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, "Hi", "1", "2", *["5"] * 8, "1")  # full; into the topic
    talk(engine, flow, clock, URN, "2", "5", "4", "skip", "1", "3")  # GS01-GS04 begun

    page = view(north, rid)

    text = words(page)
    assert "Resident 07700 900••• In progress" in text
    assert "In progress since 1 December 2026, 11:00 GMT (First check, full assessment" in text
    assert "Conversation Answering questions" in text
    scored = profile(flow, stored_answers(engine, rid))
    getting_started = table_rows(page, "profile-numbers")[0]
    assert getting_started == [
        "Getting started",
        percent(scored.headings[0].skill or 0),
        percent(scored.headings[0].interest or 0),
        "3 skills",
    ]
    found = section(text, "Priorities", "Answers")
    assert found.startswith("They have not finished, so these are not sent yet")
    assert "Switching on and logging in (Getting started)" in found
    answers = section(text, "Answers", "Check-ins")
    assert "Finished No: in progress" in answers
    assert "How well can you use a touchscreen, mouse or keyboard? I'm confident" in answers
    assert (
        "If you could use a touchscreen, mouse or keyboard, would you do it regularly? Skipped"
    ) not in answers  # not asked in a full assessment when skill is high
    assert "How well can you make text bigger or change settings? Skipped" in answers
    assert "Communicating Not answered yet" in answers


def test_only_the_basics_answered_in_a_quick_check_is_unclear_not_doing_well(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, "Hi", "1", "1", "5", "5", "4")

    page = view(north, rid)

    text = words(page)
    assert "Resident 07700 900••• In progress" in text
    assert "(First check, quick check; 3 answered, 0 skipped so far)" in text
    assert [row[1:] for row in table_rows(page, "profile-numbers")] == [
        ["not answered", "not answered", "nothing answered"]
    ] * 7
    assert "Basics (device, connection, a place to go online): 92% of the most" in text
    found = section(text, "Priorities", "Answers")
    assert found.startswith(
        "They have not finished, so these are not sent yet: this is what their answers so far "
        "say. No one thing to learn stood out from their answers"
    )
    assert "Doing well" not in found
    answers = section(text, "Answers", "Check-ins")
    assert "What makes it hard to go online Not answered yet" in answers
    assert "Getting started Not answered yet" in answers


def test_a_welsh_speaker_is_shown_to_staff_in_english_with_their_language_noted(
    database_url: str, engine: sa.Engine, clock: FakeNow, staff: Staff
) -> None:
    both = load_flow()
    app = create_app(dashboard_config(database_url), flow=both, now=clock)
    try:
        rid = enrol_into_team(engine, both, PHONE, staff.north_worker.team_id)
        talk(engine, both, clock, URN, "Hi", "2", "1", "1", *["5"] * 8, *["3", "4"] * 7)

        page = view(signed_in(app, staff.north_worker), rid)
    finally:
        app.extensions["dibot"].engine.dispose()

    text = words(page)
    assert "Language Welsh (Cymraeg)" in text
    assert (
        "They use dibot in Welsh (Cymraeg). Questions and answers are shown here in English" in text
    )
    answers = section(text, "Answers", "Check-ins")
    assert (
        "Do you have a phone, tablet or computer that can go online? I always have access to this"
    ) in answers
    assert "Oes gennych chi ffôn" not in answers
    assert "Oes gennych chi ffôn" in text.split(" Messages ", 1)[1]  # as it was sent


# --- check-ins, gains and delivery ---------------------------------------------------------


def test_check_ins_and_gains_against_the_baseline(
    dashboard: Flask, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    town = new_town(engine, flow, datetime(2027, 3, 2, 10, 0, tzinfo=UTC))
    town.enrol(PHONE, "Spring drive")
    town.baseline(URN, skip_topic="CM", skill="2")
    done = town.schedule(after="3m")
    town.run(done.due_at)
    town.say(URN, "1", *["5"] * 8)
    for skill in ("4", "4", "4", "4", "4", "1"):  # five better, one worse
        town.say(URN, skill, "4")
    town.clock.at = done.due_at + timedelta(days=1)
    town.schedule(after="6m", scheduled_by="B. Worker")
    clock.at = town.clock.at
    rid = town.respondent_id(URN)

    page = view(signed_in(dashboard, staff.north_admin), rid)

    text = words(page)
    assert "Cohorts Spring drive" in text
    checkins = section(text, "Check-ins", "Gains against their first check")
    assert (
        "Due What happened Scheduled by Cohort 2 June 2027, 10:00 BST Invitation sent "
        "2 June 2027, 10:00 BST: Waiting to send A. Worker"
    ) in checkins
    assert "3 December 2027, 10:00 GMT Scheduled B. Worker" in checkins
    gained = section(text, "Gains against their first check", "Messages")
    assert gained.startswith(
        "Check-in finished 2 June 2027, 10:00 BST: More confident with 5 things since "
        "March 2027; less with 1; the same with 0 (on average +1.50 points a skill)."
    )
    assert "Staying safe 1 +2.00" in gained
    assert "Advanced skills 1 -1.00" in gained
    # Those numbers are scoring's.
    a, answers = table(Assessment), table(Answer)
    with engine.connect() as conn:
        before, after = (
            {
                row.question: row.option
                for row in conn.execute(
                    sa.select(answers.c.question, answers.c.option).where(
                        answers.c.assessment_id == assessment, answers.c.option.is_not(None)
                    )
                )
            }
            for assessment in conn.execute(
                sa.select(a.c.id).where(a.c.respondent_id == rid).order_by(a.c.id)
            ).scalars()
        )
    assert gains(flow, before, after).overall == 1.5
    # The profile is the check-in's; the message they were sent began with what changed.
    assert "From their check-in, quick check, started 2 June 2027" in text
    assert "You are more confident with 5 things since March 2027." in text


def test_a_check_in_skipped_says_why(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    town = new_town(engine, flow, datetime(2027, 3, 2, 10, 0, tzinfo=UTC))
    town.enrol(PHONE, "Spring drive")
    done = town.schedule(after="3m")
    town.run(done.due_at)

    text = words(view(signed_in(dashboard, staff.north_admin), town.respondent_id(URN)))

    checkins = section(text, "Check-ins", "Gains against their first check")
    assert checkins.startswith(
        "Check-ins Due What happened Scheduled by Cohort 2 June 2027, 10:00 BST Skipped: "
        "no finished baseline assessment to follow A. Worker"
    )
    assert "None yet: no check-in has been finished." in text


def test_delivery_of_each_outgoing_message(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    now = clock()

    def send_next(provider_id: str) -> outbox.OutboxMessage:
        (message,) = outbox.claim(engine, "sms", 10, now)
        assert outbox.begin(engine, message, now)
        return message

    def queue(text: str, quiet: object = NO_QUIET_HOURS) -> None:
        with engine.begin() as conn:
            queue_outreach(
                conn,
                respondent_id=rid,
                channel="sms",
                message=Outbound(text),
                kind="reminder",
                quiet=quiet,  # type: ignore[arg-type]
                now=now,
            )

    assert outbox.mark_sent(engine, send_next("SMa"), "SMa", now)  # the invitation
    outbox.record_delivery(engine, "SMa", "delivered", None, now)
    queue("Reminder one")
    assert outbox.mark_sent(engine, send_next("SMb"), "SMb", now)
    outbox.record_delivery(engine, "SMb", "undelivered", 30003, now)
    queue("Reminder two")
    assert outbox.retry(engine, send_next("SMc"), "timed out", now, now + timedelta(minutes=10))
    queue("Reminder at noon", parse_quiet_hours("12:00-20:00", "mon-sun", "Europe/London"))

    messages = words(view(north, rid)).split(" Messages ", 1)[1]

    assert re.search(r"invitation by worker@north\.example\.gov\.uk .*? Delivered", messages)
    assert "Reminder one Not delivered (error 30003)" in messages
    assert "Reminder two Waiting to try again 1 December 2026, 11:10 GMT" in messages
    assert "Reminder at noon Waiting for quiet hours: goes 1 December 2026, 12:00 GMT" in messages


def test_an_opted_out_resident_and_a_message_given_up(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, "STOP")
    clock.advance(timedelta(minutes=5))
    assert outbox.claim(engine, "sms", 10, clock()) == []  # the invitation is given up

    text = words(view(north, rid))

    assert "Resident 07700 900••• Opted out" in text
    assert (
        "Opted out Yes since 1 December 2026, 11:00 GMT: nothing is sent until they text START"
        in text
    )
    assert "Given up: opted out" in text


def test_an_open_thread_a_held_text_and_an_assisted_assessment(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, *quick_check(skill="3", interest="4"))
    with engine.begin() as conn:
        conn.execute(
            sa.insert(table(FollowUpThread)).values(
                respondent_id=rid,
                opened_by="A. Worker",
                opened_at=clock(),
                closes_at=clock() + timedelta(hours=72),
            )
        )
        conn.execute(
            sa.update(table(Assessment))
            .where(table(Assessment).c.respondent_id == rid)
            .values(assisted_by=NORTH_WORKER)
        )
    clock.advance(timedelta(hours=1))
    talk(engine, flow, clock, URN, "Thanks, can you call me?")

    text = words(view(north, rid))

    assert (
        "A follow-up conversation is open: A. Worker wrote 1 December 2026, 11:00 GMT. The bot "
        "stays quiet and their texts wait for a worker until 4 December 2026, 11:00 GMT."
    ) in text
    assert "From them SMS held for a worker Thanks, can you call me?" in text
    assert f"Filled in with a member of staff: {NORTH_WORKER}" in text


def test_an_unreachable_resident_mid_check(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, "Hi", "1", "1", "5")
    TurnHandler(engine, flow, clock=clock).mark_unreachable(URN)

    text = words(view(north, rid))

    assert "Resident 07700 900••• Unreachable" in text
    assert "Reachable No: messages cannot reach them (until they write again)" in text
    assert "Consent Given 1 December 2026, 11:00 GMT" in text
    assert "Assessment In progress since 1 December 2026, 11:00 GMT" in text


# --- odd data --------------------------------------------------------------------------------


def test_no_conversation_and_an_unreadable_state(
    north: FlaskClient, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    lost = north_resident(engine, flow, staff)
    broken = north_resident(engine, flow, staff, OTHER_PHONE)
    conversations = table(Conversation)
    with engine.begin() as conn:
        conn.execute(sa.delete(conversations).where(conversations.c.respondent_id == lost))
        conn.execute(
            sa.update(conversations)
            .where(conversations.c.respondent_id == broken)
            .values(state='{"stage": "nowhere", ')
        )

    assert "Conversation No conversation yet" in words(view(north, lost))
    text = words(view(north, broken))
    assert (
        "Conversation Its saved state could not be read: it starts again when they next text"
        in text
    )
    assert "Resident 07700 900••• Not started" in text


def test_answers_this_version_of_the_flow_does_not_have_are_shown_not_scored(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    talk(engine, flow, clock, URN, *quick_check(skill="3", interest="4"))
    answers, assessments = table(Answer), table(Assessment)
    with engine.begin() as conn:
        assessment = conn.execute(
            sa.select(assessments.c.id).where(assessments.c.respondent_id == rid)
        ).scalar_one()
        conn.execute(
            sa.update(answers)
            .where(answers.c.assessment_id == assessment, answers.c.question == "GS.skill")
            .values(option=9)
        )
        conn.execute(
            sa.insert(answers).values(
                assessment_id=assessment,
                question="ZZ99.skill",
                item_id="ZZ99",
                aspect="skill",
                option=3,
                score=2,
                answered_at=clock(),
                channel="sms",
                provider_message_id="SMold",
            )
        )

    page = view(north, rid)

    text = words(page)
    assert (
        "How well can you switch on, log in, use apps and Wi-Fi? Option 9 (not on this scale)"
        in text
    )
    assert "Questions not in this version of the questionnaire ZZ99.skill Option 3" in text
    assert table_rows(page, "profile-numbers")[0][:3] == ["Getting started", "not answered", "75%"]
    assert table_rows(page, "profile-numbers")[1][:3] == ["Communicating", "50%", "75%"]


def test_a_telegram_resident_is_masked_too(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    enrolled = enrol(
        engine,
        flow,
        EnrolmentRequest(
            phone=None,
            telegram="123456789",
            cohort=None,
            initiative=None,
            language=None,
            enrolled_by=NORTH_WORKER,
            lawful_basis="legitimate_interests",
        ),
        NO_QUIET_HOURS,
        clock(),
    )
    with engine.begin() as conn:
        conn.execute(
            sa.update(table(Respondent))
            .where(table(Respondent).c.id == enrolled.respondent_id)
            .values(team_id=staff.north_worker.team_id)
        )

    page = view(north, enrolled.respondent_id)

    assert "Resident Telegram chat •••789 Not started" in words(page)
    assert "lawful basis: legitimate interests" in words(page)
    assert "To them Telegram invitation" in words(page)
    assert "123456789" not in page.get_data(as_text=True)


def test_a_huge_timeline_shows_the_latest_and_all_on_request(
    north: FlaskClient, engine: sa.Engine, flow: Flow, clock: FakeNow, staff: Staff
) -> None:
    rid = north_resident(engine, flow, staff)
    odd = "<script>alert(1)</script> ﷽ 🙂 Zalgo: Z̷̢a̶l̸g̵o\u202e"
    with engine.begin() as conn:
        timeline.record(
            conn,
            [
                timeline.Entry(
                    respondent_id=rid,
                    at=clock() + timedelta(seconds=i),
                    direction="in",
                    channel="sms",
                    kind="message",
                    text=f"message {i} {odd}",
                )
                for i in range(1500)
            ],
        )

    first = north.get(f"/respondents/{rid}")
    every = north.get(f"/respondents/{rid}?messages=all")

    text = words(first)
    assert "Showing the latest 200 of 1501 messages. Show all 1501 messages" in text
    assert "message 1499 " in text
    assert "message 1299 " not in text
    assert "message 1300 " in text
    assert "<script>alert(1)</script>" not in first.get_data(as_text=True)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; ﷽ 🙂" in first.get_data(as_text=True)
    assert "message 0 " in words(every)
    assert "Showing the latest" not in words(every)


# --- the chart, a pure function ----------------------------------------------------------------


def test_the_chart_says_everything_in_words_and_escapes_it() -> None:
    svg = skill_interest_chart(
        [
            PairedBars('Getting <started> & "more"', 0.625, 0.0),
            PairedBars("Not yet", None, None, missing="not asked"),
        ],
        chart_id="c1",
        title="Skill & interest",
        summary="From <their> check.",
    )

    assert svg.startswith('<svg xmlns="http://www.w3.org/2000/svg" class="dibot-chart" role="img"')
    assert 'aria-labelledby="c1-title c1-desc"' in svg
    assert '<title id="c1-title">Skill &amp; interest</title>' in svg
    assert (
        '<desc id="c1-desc">From &lt;their&gt; check. Getting &lt;started&gt; &amp; '
        "&#34;more&#34;: skill 63%, interest 0%. Not yet: skill not asked, interest not asked."
        "</desc>"
    ) in svg
    assert "<started>" not in svg
    assert "style" not in svg.replace("dibot-chart", "")
    assert svg.count('class="dibot-chart__label">Skill</text>') == 2
    assert svg.count('class="dibot-chart__label">Interest</text>') == 2
    assert 'class="dibot-chart__value">63%</text>' in svg
    assert 'class="dibot-chart__value">0%</text>' in svg
    assert svg.count(">not asked</text>") == 2
    # Zero is a visible stub; the interest bars are striped, not told apart by colour alone.
    assert re.search(
        r'<rect x="90" y="\d+" width="2.0" [^>]*--interest" fill="url\(#c1-stripes\)"', svg
    )
    assert svg.count("<rect") == 3  # the stripe pattern's ground, and two bars


def test_percent_rounds_halves_up_and_stays_within_the_scale() -> None:
    assert [percent(x) for x in (0, 0.004, 0.005, 0.625, 0.125, 1, 1.2, -0.1)] == [
        "0%",
        "0%",
        "1%",
        "63%",
        "13%",
        "100%",
        "100%",
        "0%",
    ]


def test_an_empty_chart_says_so() -> None:
    svg = skill_interest_chart([], chart_id="empty", title="Nothing")
    assert "Nothing to show" in svg
    assert '<desc id="empty-desc"></desc>' in svg


def item(**fields: object) -> timeline.TimelineItem:
    """An outgoing timeline entry carried by outbox row 7, with `fields` changed."""
    values: dict[str, object] = {
        "id": 1,
        "at": datetime(2026, 12, 1, 11, 0, tzinfo=UTC),
        "direction": "out",
        "channel": "sms",
        "kind": "reminder",
        "text": "Hello",
        "thread_id": None,
        "outbox_id": 7,
        "by": None,
        "send_status": "sent",
        "delivery_status": None,
        "delivery_error_code": None,
        "send_error": None,
    }
    values.update(fields)
    return timeline.TimelineItem(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "said", "colour"),
    [
        ({"outbox_id": None, "send_status": None}, "Sent as the reply", "grey"),
        ({"send_status": "claimed"}, "Sending", "blue"),
        ({"send_status": "sending"}, "Sending", "blue"),
        ({}, "Sent", "turquoise"),
        ({"delivery_status": "queued"}, "Sent", "turquoise"),
        ({"delivery_status": "delivered"}, "Delivered", "green"),
        ({"delivery_status": "read"}, "Read", "green"),
        (
            {"delivery_status": "undelivered", "delivery_error_code": 30005},
            "Not delivered (error 30005)",
            "red",
        ),
        ({"delivery_status": "failed"}, "Failed at the provider", "red"),
        ({"send_status": "failed", "send_error": "unreachable"}, "Given up: unreachable", "red"),
        (
            {"send_status": "failed", "send_error": "21211 invalid number"},
            "Failed: 21211 invalid number",
            "red",
        ),
        (
            {"send_status": "unknown", "send_error": "timed out"},
            "Not confirmed: it may have gone, and is not sent again",
            "orange",
        ),
        ({"send_status": "pending"}, "Waiting to send", "blue"),
        (
            {"send_status": "failed", "send_error": outbox.SUPERSEDED_ERROR},
            "Not sent: they had written to us since it was queued",
            "grey",
        ),
    ],
)
def test_delivery_in_words(fields: dict[str, object], said: str, colour: str) -> None:
    now = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)

    found = delivery(item(**fields), None, ZoneInfo("Europe/London"), now)

    assert (found.text, found.colour) == (said, colour)


def test_a_message_held_past_midnight_says_when_it_goes_in_council_time() -> None:
    now = datetime(2027, 6, 1, 21, 0, tzinfo=UTC)  # 22:00 BST
    waiting = Waiting(next_attempt_at=datetime(2027, 6, 2, 8, 0, tzinfo=UTC), attempts=0)

    found = delivery(item(send_status="pending"), waiting, ZoneInfo("Europe/London"), now)

    assert found.text == "Waiting for quiet hours: goes 2 June 2027, 09:00 BST"
