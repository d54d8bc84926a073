"""Cohorts from the dashboard, through Flask's test client on a real database: each team sees
its own (an admin every team's) with how many residents are in each and how many completed the
check, adds one with a GOV.UK date input, and opens one to see who is in it, masked, each
linked to their page; another team's cohort answers 404 like one that does not exist."""

from __future__ import annotations

import html
import re
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dibot.turns import TurnHandler
from flows.model import Flow
from storage.models import AuditEntry, Cohort, Respondent, table
from tests.dashboard_support import (
    START,
    Staff,
    browser,
    enrol_into_team,
    page_text,
    signed_in,
    submit,
)
from tests.turn_helpers import send


def add_form(client: FlaskClient, **fields: str) -> TestResponse:
    return submit(
        client, "/cohorts", {"name": "Spring drive", "initiative": "Device loans", **fields}
    )


def cohorts_in_db(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(table(Cohort)).order_by(table(Cohort).c.id)))


def error_links(response: TestResponse) -> list[tuple[str, str]]:
    page = response.get_data(as_text=True)
    summary = page[page.index("govuk-error-summary__list") :]
    summary = summary[: summary.index("</ul>")]
    return [
        (href, html.unescape(re.sub(r"\s+", " ", text).strip()))
        for href, text in re.findall(r'<a href="([^"]+)">(.*?)</a>', summary, flags=re.S)
    ]


def table_rows(response: TestResponse) -> list[str]:
    """Each body row of the page's first table, as the words in it."""
    page = response.get_data(as_text=True)
    body = page[page.index("<tbody") : page.index("</tbody>")]
    return [
        re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
        for row in re.findall(r"<tr.*?</tr>", body, flags=re.S)
    ]


def answer_the_quick_check(engine: sa.Engine, flow: Flow, urn: str) -> None:
    """A resident texting through the whole quick check, answering the first choice each time."""
    handler = TurnHandler(engine, flow, clock=lambda: START)
    send(handler, urn, "1")  # agree (they were invited)
    send(handler, urn, "quick")
    for _ in range(60):
        reply = send(handler, urn, "1").replies
        if any("priorities" in message.text.lower() for message in reply):
            return
    raise AssertionError("the quick check did not finish")


def test_a_worker_adds_a_cohort_and_sees_it_with_its_residents(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    assert "Your team has no cohorts yet." in page_text(client.get("/cohorts"))

    added = add_form(
        client,
        starts_day="4",
        starts_month="1",
        starts_year="2027",
        ends_day="31",
        ends_month="3",
        ends_year="2027",
    )

    (cohort,) = cohorts_in_db(engine)
    assert added.status_code == 302
    assert added.headers["Location"] == f"/cohorts/{cohort.id}"
    assert (cohort.name, cohort.initiative, cohort.team_id) == (
        "Spring drive",
        "Device loans",
        staff.north_worker.team_id,
    )
    assert (str(cohort.starts_on), str(cohort.ends_on)) == ("2027-01-04", "2027-03-31")
    for number in ("07700 900101", "07700 900102", "07700 900103"):
        enrol_into_team(engine, flow, number, staff.north_worker.team_id, cohort="Spring drive")
    answer_the_quick_check(engine, flow, "tel:+447700900102")

    listing = client.get("/cohorts")

    assert table_rows(listing) == [
        "Spring drive Device loans 4 January 2027 31 March 2027 3 1",
    ]
    assert f'href="/cohorts/{cohort.id}"' in listing.get_data(as_text=True)
    assert "Residents" in page_text(listing)
    assert "Completed the check" in page_text(listing)


def test_each_team_sees_its_own_cohorts_and_an_admin_sees_all(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    assert (
        add_form(signed_in(dashboard, staff.north_worker), name="North library").status_code == 302
    )
    south = signed_in(dashboard, staff.south_worker)
    assert add_form(south, name="South café", initiative="Skills").status_code == 302

    south_list = page_text(south.get("/cohorts"))
    admin_rows = table_rows(signed_in(dashboard, staff.north_admin).get("/cohorts"))

    assert "South café" in south_list
    assert "North library" not in south_list
    assert admin_rows == [
        "North library Device loans North Not set Not set 0 0",
        "South café Skills South Not set Not set 0 0",
    ]


def test_a_resident_moved_to_another_team_is_neither_counted_nor_listed(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    add_form(client)
    (cohort,) = cohorts_in_db(engine)
    enrol_into_team(engine, flow, "07700 900101", staff.north_worker.team_id, cohort="Spring drive")
    moved = enrol_into_team(
        engine, flow, "07700 900102", staff.south_worker.team_id, cohort="Spring drive"
    )

    assert table_rows(client.get("/cohorts")) == ["Spring drive Device loans Not set Not set 1 0"]
    page = client.get(f"/cohorts/{cohort.id}").get_data(as_text=True)
    assert f"/respondents/{moved}" not in page
    assert "07700 900••• Invited, not started" in page_text(client.get(f"/cohorts/{cohort.id}"))


def test_a_cohort_page_lists_its_residents_masked_with_their_status(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    add_form(client)
    (cohort,) = cohorts_in_db(engine)
    invited = enrol_into_team(
        engine, flow, "07700 900101", staff.north_worker.team_id, cohort="Spring drive"
    )
    done = enrol_into_team(
        engine, flow, "07700 900102", staff.north_worker.team_id, cohort="Spring drive"
    )
    answer_the_quick_check(engine, flow, "tel:+447700900102")
    stopped = enrol_into_team(
        engine, flow, "07700 900103", staff.north_worker.team_id, cohort="Spring drive"
    )
    send(TurnHandler(engine, flow, clock=lambda: START), "tel:+447700900103", "STOP")

    response = client.get(f"/cohorts/{cohort.id}")

    assert response.status_code == 200
    text = page_text(response)
    assert "Cohort Spring drive" in text
    assert "Initiative Device loans" in text
    assert "Team North" in text
    assert table_rows(response) == [
        "07700 900••• Invited, not started 1 December 2026",
        "07700 900••• Completed 1 December 2026",
        "07700 900••• Opted out 1 December 2026",
    ]
    page = response.get_data(as_text=True)
    for respondent_id in (invited, done, stopped):
        assert f'href="/respondents/{respondent_id}"' in page
    assert not re.search(r"900\d{3}", text)
    assert f'href="/checkins?cohort={cohort.id}">Schedule a check-in for this cohort' in page
    assert f'href="/enrol?cohort={cohort.id}"' in page
    with engine.connect() as conn:
        audit = conn.execute(
            sa.select(table(AuditEntry)).order_by(table(AuditEntry).c.id.desc()).limit(1)
        ).one()
    assert (audit.action, audit.staff_id) == ("view cohort", staff.north_worker.id)
    assert f"cohort {cohort.id}" in audit.detail
    assert "3 residents listed" in audit.detail


def test_another_teams_cohort_is_not_found_like_one_that_does_not_exist(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    add_form(signed_in(dashboard, staff.north_worker), name="North library")
    (cohort,) = cohorts_in_db(engine)
    enrol_into_team(
        engine, flow, "07700 900101", staff.north_worker.team_id, cohort="North library"
    )
    south = signed_in(dashboard, staff.south_worker)

    theirs = south.get(f"/cohorts/{cohort.id}")
    missing = south.get(f"/cohorts/{cohort.id + 1000}")

    assert theirs.status_code == missing.status_code == 404
    assert theirs.get_data() == missing.get_data()
    for odd in ("-1", "0", "1e3", "9" * 40, "%F0%9F%93%B1"):
        assert south.get(f"/cohorts/{odd}").status_code == 404
    assert signed_in(dashboard, staff.north_admin).get(f"/cohorts/{cohort.id}").status_code == 200
    with engine.connect() as conn:
        actions = conn.execute(
            sa.select(table(AuditEntry).c.action, table(AuditEntry).c.staff_id)
        ).all()
    assert ("view cohort", staff.south_worker.id) not in actions


def test_a_cohort_with_many_residents_comes_in_pages(
    dashboard: Flask, staff: Staff, engine: sa.Engine, flow: Flow
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    add_form(client)
    (cohort,) = cohorts_in_db(engine)
    for n in range(103):
        enrol_into_team(
            engine,
            flow,
            f"07700 900{n:03d}",
            staff.north_worker.team_id,
            cohort="Spring drive",
            now=START + timedelta(seconds=n),
        )

    first = client.get(f"/cohorts/{cohort.id}")
    second = client.get(f"/cohorts/{cohort.id}?page=2")
    beyond = client.get(f"/cohorts/{cohort.id}?page=99")
    odd = client.get(f"/cohorts/{cohort.id}?page=-3")

    assert len(table_rows(first)) == 100
    assert len(table_rows(second)) == 3
    assert "Residents 103" in page_text(first)
    assert "page=2" in first.get_data(as_text=True)
    assert "There are no residents on page 99." in page_text(beyond)
    assert len(table_rows(odd)) == 100


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"name": "  "}, [("#name", "Enter a name for the cohort")]),
        ({"name": "x" * 101}, [("#name", "Cohort name must be 100 characters or fewer")]),
        ({"initiative": ""}, [("#initiative", "Enter the initiative, for example Device loans")]),
        (
            {"starts_day": "4", "starts_year": "2027"},
            [("#starts_month", "Start date must include a month")],
        ),
        (
            {"starts_day": "31", "starts_month": "2", "starts_year": "2027"},
            [("#starts_day", "Start date must be a real date")],
        ),
        (
            {"ends_day": "1", "ends_month": "one", "ends_year": "2027"},
            [("#ends_month", "End date must be a real date")],
        ),
        (
            {"ends_day": "1", "ends_month": "1", "ends_year": "27"},
            [("#ends_year", "Year must include 4 numbers")],
        ),
        (
            {"ends_day": "٣", "ends_month": "1", "ends_year": "2027"},
            [("#ends_day", "End date must be a real date")],
        ),
        (
            {
                "starts_day": "1",
                "starts_month": "4",
                "starts_year": "2027",
                "ends_day": "31",
                "ends_month": "3",
                "ends_year": "2027",
            },
            [("#ends_day", "End date must be the same as or after the start date")],
        ),
    ],
)
def test_a_cohort_that_cannot_be_added_is_refused_by_field(
    dashboard: Flask, staff: Staff, engine: sa.Engine, fields: dict[str, str], errors: list[Any]
) -> None:
    client = signed_in(dashboard, staff.north_worker)

    response = add_form(client, **fields)

    assert response.status_code == 200
    assert error_links(response) == errors
    assert page_text(response).startswith("Error: Cohorts")
    assert cohorts_in_db(engine) == []


def test_a_name_already_taken_by_any_team_is_refused_plainly(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    assert add_form(signed_in(dashboard, staff.south_worker)).status_code == 302

    again = add_form(signed_in(dashboard, staff.north_worker), name=" Spring drive ")

    assert error_links(again) == [
        (
            "#name",
            "There is already a cohort with this name (names are shared by every team): "
            "choose another name",
        )
    ]
    assert "South" not in page_text(again).replace("Signed in as", "")
    assert len(cohorts_in_db(engine)) == 1


def test_odd_names_are_kept_as_typed_and_shown_escaped(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    name = "Café <b>club</b> 👩‍💻 Llanelli"

    assert add_form(client, name=name, initiative="Sgiliau digidol").status_code == 302

    (cohort,) = cohorts_in_db(engine)
    assert cohort.name == name
    page = client.get(f"/cohorts/{cohort.id}").get_data(as_text=True)
    assert "<b>club</b>" not in page
    assert "Café &lt;b&gt;club&lt;/b&gt; 👩‍💻 Llanelli" in page
    assert f"Cohort {name} added, for the initiative Sgiliau digidol" in html.unescape(page)


def test_someone_signed_out_is_sent_to_sign_in(dashboard: Flask, engine: sa.Engine) -> None:
    client = browser(dashboard)
    assert client.get("/cohorts").headers["Location"] == "/login?next=/cohorts"
    assert client.get("/cohorts/1").headers["Location"] == "/login?next=/cohorts/1"


def test_no_one_is_enrolled_into_a_cohort_by_making_it(
    dashboard: Flask, staff: Staff, engine: sa.Engine
) -> None:
    add_form(signed_in(dashboard, staff.north_worker))
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table(Respondent))).scalar() == 0
