"""Enrolling a resident from the dashboard, through Flask's test client on a real database: the
invitation queued as `dibot enrol` queues it (now, or when quiet hours end on the fake clock),
the resident given to the member's team, numbers refused without being repeated, another
team's resident and cohorts out of reach, the form sent twice being one enrolment, and what
the worker is told afterwards."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dibot.turns import TurnHandler
from dibot.web import create_app
from flows.loader import load_flow
from flows.model import Flow
from outreach.enrolment import ANOTHER_TEAM
from storage.models import (
    AuditEntry,
    Cohort,
    CohortMember,
    Enrolment,
    OutboxEntry,
    Respondent,
    table,
)
from tests.dashboard_support import (
    START,
    FakeNow,
    Staff,
    browser,
    dashboard_config,
    enrol_into_team,
    page_text,
    signed_in,
    submit,
)
from tests.turn_helpers import send

NUMBER = "07700 900555"
URN = "tel:+447700900555"
MASKED = "07700 900•••"
AGREED = {"agreed": "y"}


def enrol_form(client: FlaskClient, **fields: Any) -> TestResponse:
    data = {"phone": NUMBER, "cohort": "", **AGREED, **fields}
    return submit(client, "/enrol", {k: v for k, v in data.items() if v is not None})


def rows(engine: sa.Engine, model: type) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table(model)).order_by(table(model).c[0])))


def told(client: FlaskClient) -> str:
    """The page the worker lands on next, as text (its banner says what happened)."""
    return page_text(client.get("/enrol"))


def add_cohort(engine: sa.Engine, name: str, team_id: int | None) -> int:
    cohorts = table(Cohort)
    with engine.begin() as conn:
        cohort_id: int = conn.execute(
            sa.insert(cohorts)
            .values(name=name, initiative="Device loans", team_id=team_id, created_at=START)
            .returning(cohorts.c.id)
        ).scalar_one()
    return cohort_id


def error_links(response: TestResponse) -> list[tuple[str, str]]:
    """The error summary's (link, text) pairs."""
    page = response.get_data(as_text=True)
    summary = page[page.index("govuk-error-summary__list") :]
    summary = summary[: summary.index("</ul>")]
    return [
        (href, html.unescape(re.sub(r"\s+", " ", text).strip()))
        for href, text in re.findall(r'<a href="([^"]+)">(.*?)</a>', summary, flags=re.S)
    ]


def test_a_worker_enrols_a_resident_who_is_invited_at_once(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    form = page_text(client.get("/enrol"))
    assert "Enrol a resident" in form
    assert "Mobile phone number" in form
    assert "The council contacts them on the lawful basis: public task." in form

    response = enrol_form(client, cohort=None)

    (resident,) = rows(engine, Respondent)
    assert response.status_code == 302
    assert response.headers["Location"] == f"/respondents/{resident.id}"
    assert resident.team_id == staff.north_worker.team_id
    (invitation,) = rows(engine, OutboxEntry)
    assert (invitation.kind, invitation.channel, invitation.status) == (
        "invitation",
        "sms",
        "pending",
    )
    assert invitation.next_attempt_at == START
    assert invitation.sent_by == staff.north_worker.email
    # What the resident gets: who is writing, and the question of taking part, by number.
    assert invitation.text.startswith("Hi, this is ")
    assert "digital skills check" in invitation.text
    assert "Privacy" in invitation.text
    assert invitation.text.splitlines()[-2:] == ["1 I agree, let's start", "2 No thanks"]
    (enrolment,) = rows(engine, Enrolment)
    assert (enrolment.enrolled_by, enrolment.lawful_basis, enrolment.invitation_id) == (
        staff.north_worker.email,
        "public_task",
        invitation.id,
    )
    audit = rows(engine, AuditEntry)[-1]
    assert (audit.action, audit.respondent_id, audit.staff_id) == (
        "enrol",
        resident.id,
        staff.north_worker.id,
    )
    landed = page_text(client.get(response.headers["Location"]))  # their page says so
    assert f"{MASKED} is enrolled. They are invited now: the invitation is on its way." in landed
    assert "900555" not in landed


def test_an_invitation_at_nine_in_the_evening_waits_for_the_morning(
    dashboard: Flask, staff: Staff, engine: sa.Engine, clock: FakeNow
) -> None:
    clock.at = START.replace(hour=21)  # Tuesday 21:00 in London, after quiet hours' 20:00
    client = signed_in(dashboard, staff.north_worker)

    assert enrol_form(client).status_code == 302

    (invitation,) = rows(engine, OutboxEntry)
    assert invitation.next_attempt_at == datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
    assert (
        f"{MASKED} is enrolled. The invitation waits for quiet hours: "
        "it goes at 9am on Wednesday 2 December 2026." in told(client)
    )


def test_the_time_it_waits_for_is_the_councils_local_time(
    database_url: str, flow: Flow, staff: Staff, engine: sa.Engine, clock: FakeNow
) -> None:
    summer = dashboard_config(database_url, quiet_hours="09:30-20:00")
    app = create_app(summer, flow=flow, now=clock)
    clock.at = datetime(2027, 6, 1, 20, 0, tzinfo=UTC)  # 21:00 BST
    try:
        client = signed_in(app, staff.north_worker)
        assert enrol_form(client).status_code == 302
        landed = told(client)
    finally:
        app.extensions["dibot"].engine.dispose()
    (invitation,) = rows(engine, OutboxEntry)
    assert invitation.next_attempt_at == datetime(2027, 6, 2, 8, 30, tzinfo=UTC)
    assert "it goes at 9:30am on Wednesday 2 June 2027." in landed


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("020 7946 0123", "this is a landline, which cannot get texts"),
        ("07700 900", "this one is not a valid UK mobile or landline number"),
        ("07700 9OO555", "this one has letters in it"),
        ("07700 900555 📱", "this one has characters other than digits"),
        ("7" * 5000, "this one is too long"),
        ("   ", "(or a Telegram chat id)"),
        ("+33 6 12 34 56 78", "this one is not a UK number"),
        ("٠٧٧٠٠ ٩٠٠١٢٣", "this one has digits other than 0-9"),
    ],
)
def test_a_number_that_cannot_be_texted_is_refused_saying_which_numbers_can(
    dashboard: Flask, staff: Staff, engine: sa.Engine, typed: str, why: str
) -> None:
    client = signed_in(dashboard, staff.north_worker)

    response = enrol_form(client, phone=typed)

    assert response.status_code == 200
    (link,) = error_links(response)
    assert link[0] == "#phone"
    assert link[1].startswith("Enter a UK mobile number, like 07700 900123")
    assert why in link[1]
    digits = "".join(ch for ch in typed if ch.isdigit())
    if digits:
        assert digits[-6:] not in link[1]
    assert "7" * 100 not in response.get_data(as_text=True)
    assert page_text(response).startswith("Error: Enrol a resident")
    assert rows(engine, Respondent) == []
    assert rows(engine, OutboxEntry) == []


def test_a_telegram_chat_id_invites_them_on_telegram(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    client = signed_in(dashboard, staff.north_worker)

    response = enrol_form(client, phone="", telegram="123456789")

    assert response.status_code == 302
    (invitation,) = rows(engine, OutboxEntry)
    assert invitation.channel == "telegram"
    assert "Telegram chat •••789 is enrolled." in told(client)


@pytest.mark.parametrize(
    ("fields", "link"),
    [
        ({"phone": "", "telegram": "@someone"}, ("#telegram", "Enter a Telegram chat id")),
        ({"phone": "", "telegram": "9" * 40}, ("#telegram", "Enter a Telegram chat id")),
        ({"telegram": "123456789"}, ("#telegram", "Give a mobile number or a Telegram")),
        ({"agreed": None}, ("#agreed", "Confirm that the resident agreed to be contacted")),
    ],
)
def test_what_the_form_lacks_is_named_and_linked(
    dashboard: Flask, staff: Staff, engine: sa.Engine, fields: dict[str, Any], link: tuple[str, str]
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    data = {"phone": NUMBER, "cohort": "", **AGREED, **fields}

    response = submit(client, "/enrol", {k: v for k, v in data.items() if v is not None})

    assert response.status_code == 200
    ((href, text),) = error_links(response)
    assert href == link[0]
    assert text.startswith(link[1])
    assert rows(engine, Enrolment) == []


def test_the_form_sent_twice_is_one_enrolment_and_says_so(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    cohort_id = add_cohort(engine, "Spring drive", staff.north_worker.team_id)
    client = signed_in(dashboard, staff.north_worker)
    token_page = client.get("/enrol").get_data(as_text=True)
    (token,) = re.findall(r'name="csrf_token" type="hidden" value="([^"]+)"', token_page)
    data = {"csrf_token": token, "phone": NUMBER, "cohort": str(cohort_id), **AGREED}

    first = client.post("/enrol", data=data)
    second = client.post("/enrol", data=data)

    assert first.status_code == second.status_code == 302
    assert first.headers["Location"] == second.headers["Location"]
    assert len(rows(engine, Respondent)) == 1
    assert len(rows(engine, Enrolment)) == 1
    assert len(rows(engine, OutboxEntry)) == 1
    assert len(rows(engine, CohortMember)) == 1
    landed = told(client)
    assert f"{MASKED} is enrolled in cohort Spring drive. They are invited now" in landed
    assert (
        f"{MASKED} was enrolled in cohort Spring drive a moment ago (the form was sent twice): "
        "nothing more was done. They are invited now" in landed
    )
    # Their reply carries on from the one invitation.
    reply = send(TurnHandler(engine, flow, clock=lambda: START), URN, "1").replies[0].text
    assert reply.startswith("Which check would you like?")


def test_someone_already_answering_is_enrolled_but_not_interrupted(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    handler = TurnHandler(engine, flow, clock=lambda: START)
    send(handler, URN, "Hi")
    send(handler, URN, "1")  # agreed: now choosing quick or full
    client = signed_in(dashboard, staff.north_worker)

    assert enrol_form(client).status_code == 302

    (resident,) = rows(engine, Respondent)
    assert resident.team_id == staff.north_worker.team_id  # they had no team: now North's
    assert [row.kind for row in rows(engine, OutboxEntry)] == []
    assert (
        f"{MASKED} is enrolled. They were not invited because they are already talking to dibot."
        in told(client)
    )


def test_someone_who_opted_out_is_not_invited_and_the_worker_is_told_why(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    send(TurnHandler(engine, flow, clock=lambda: START), URN, "STOP")
    client = signed_in(dashboard, staff.north_worker)

    assert enrol_form(client).status_code == 302

    assert [row.kind for row in rows(engine, OutboxEntry) if row.kind == "invitation"] == []
    assert "They were not invited because they opted out (they can text START)." in told(client)


def test_another_teams_resident_is_refused_without_saying_more(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    add_cohort(engine, "North library course", staff.north_worker.team_id)
    enrol_into_team(engine, flow, NUMBER, staff.north_worker.team_id, cohort="North library course")
    before = (rows(engine, Enrolment), rows(engine, OutboxEntry), rows(engine, CohortMember))
    south_cohort = add_cohort(engine, "South digital café", staff.south_worker.team_id)
    client = signed_in(dashboard, staff.south_worker)

    response = enrol_form(client, phone="+44 7700 900555", cohort=str(south_cohort))

    assert response.status_code == 200
    assert error_links(response) == [("#phone", ANOTHER_TEAM)]
    text = page_text(response)
    for secret in ("North", "library", "900555"):
        assert secret not in text.replace(NUMBER, "").replace("+44 7700 900555", "")
    assert (rows(engine, Enrolment), rows(engine, OutboxEntry), rows(engine, CohortMember)) == (
        before
    )
    (resident,) = rows(engine, Respondent)
    assert resident.team_id == staff.north_worker.team_id


@pytest.mark.parametrize("tampered", ["north", "-1", "9" * 30, "1.5", "x"])
def test_another_teams_cohort_cannot_be_joined_by_changing_its_id(
    dashboard: Flask, staff: Staff, engine: sa.Engine, tampered: str
) -> None:
    north_cohort = add_cohort(engine, "North library course", staff.north_worker.team_id)
    client = signed_in(dashboard, staff.south_worker)
    form = client.get("/enrol").get_data(as_text=True)
    assert "North library course" not in form

    value = str(north_cohort) if tampered == "north" else tampered
    response = enrol_form(client, cohort=value)

    assert response.status_code == 200
    assert error_links(response) == [("#cohort", "Choose one of your team's cohorts, or no cohort")]
    assert "North library course" not in page_text(response)
    assert rows(engine, Respondent) == []
    assert rows(engine, CohortMember) == []


def test_a_cohort_made_by_dibot_enrol_without_a_team_is_not_offered(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    teamless = add_cohort(engine, "Made at the command line", None)
    client = signed_in(dashboard, staff.north_admin)

    assert "Made at the command line" not in page_text(client.get("/enrol"))
    assert error_links(enrol_form(client, cohort=str(teamless))) == [
        ("#cohort", "Choose one of your team's cohorts, or no cohort")
    ]


def test_the_cohort_link_from_a_cohort_page_chooses_it(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    cohort_id = add_cohort(engine, "Spring drive", staff.north_worker.team_id)
    client = signed_in(dashboard, staff.north_worker)

    form = client.get(f"/enrol?cohort={cohort_id}").get_data(as_text=True)
    ignored = client.get("/enrol?cohort=99999").get_data(as_text=True)

    assert re.search(rf'<option value="{cohort_id}" selected>\s*Spring drive', form)
    assert "selected" not in ignored.split('name="cohort"')[1].split("</select>")[0].replace(
        '<option value="" selected>', ""
    )
    assert enrol_form(client, cohort=str(cohort_id)).status_code == 302
    (member,) = rows(engine, CohortMember)
    assert member.cohort_id == cohort_id


def test_an_admin_moves_a_resident_to_the_team_they_pick(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    enrol_into_team(engine, flow, NUMBER, staff.north_worker.team_id)
    south_cohort = add_cohort(engine, "South digital café", staff.south_worker.team_id)
    client = signed_in(dashboard, staff.north_admin)
    form = page_text(client.get("/enrol"))
    assert "South digital café (team South)" in form

    mismatch = enrol_form(client, team=str(staff.north_admin.team_id), cohort=str(south_cohort))
    assert error_links(mismatch) == [
        ("#cohort", "That cohort is team South's: choose team South, or another cohort")
    ]
    moved = enrol_form(client, team=str(staff.south_worker.team_id), cohort=str(south_cohort))

    assert moved.status_code == 302
    (resident,) = rows(engine, Respondent)
    assert resident.team_id == staff.south_worker.team_id
    assert [m.cohort_id for m in rows(engine, CohortMember)] == [south_cohort]
    # A worker cannot pick a team: a posted one is ignored, theirs is used.
    other = enrol_form(
        signed_in(dashboard, staff.north_worker), phone="07700 900456", team="999999"
    )
    assert other.status_code == 302
    assert rows(engine, Respondent)[-1].team_id == staff.north_worker.team_id


@pytest.fixture
def bilingual(database_url: str, clock: FakeNow) -> Iterator[Flask]:
    app = create_app(dashboard_config(database_url), flow=load_flow(), now=clock)
    yield app
    app.extensions["dibot"].engine.dispose()


def test_a_language_can_be_chosen_for_them_or_left_to_them(
    bilingual: Flask, staff: Staff, engine: sa.Engine
) -> None:
    client = signed_in(bilingual, staff.north_worker)
    form = page_text(client.get("/enrol"))
    assert "Language for their texts English Cymraeg Let them choose" in form

    assert enrol_form(client, language="cy").status_code == 302
    assert enrol_form(client, phone="07700 900456", language="").status_code == 302
    refused = enrol_form(client, phone="07700 900789", language="fr")

    welsh, chooser = rows(engine, OutboxEntry)
    assert welsh.text.startswith("Helo, ")
    assert "English" in chooser.text
    assert "Cymraeg" in chooser.text
    assert error_links(refused) == [("#language", "Choose the language for their texts")]


@pytest.mark.parametrize("path", ["/enrol", "/cohorts"])
def test_a_form_without_its_csrf_token_is_refused(
    dashboard: Flask, staff: Staff, engine: sa.Engine, path: str
) -> None:
    client = signed_in(dashboard, staff.north_worker)

    missing = client.post(path, data={"phone": NUMBER, **AGREED, "name": "A", "initiative": "B"})
    forged = client.post(path, data={"csrf_token": "forged", "phone": NUMBER, **AGREED})

    assert missing.status_code == forged.status_code == 400
    assert rows(engine, Respondent) == []
    assert rows(engine, Cohort) == []


def test_someone_signed_out_is_sent_to_sign_in(dashboard: Flask, engine: sa.Engine) -> None:
    client = browser(dashboard)
    assert client.get("/enrol").headers["Location"] == "/login?next=/enrol"


def test_an_enrolment_ten_minutes_later_is_a_new_one(
    dashboard: Flask, staff: Staff, engine: sa.Engine, clock: FakeNow
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    assert enrol_form(client).status_code == 302
    clock.advance(timedelta(minutes=11))

    assert enrol_form(client).status_code == 302

    assert len(rows(engine, Enrolment)) == 2
    assert len(rows(engine, OutboxEntry)) == 1
    assert "They were not invited because they are already talking to dibot." in told(client)
