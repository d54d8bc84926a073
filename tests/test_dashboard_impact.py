"""The dashboard's impact pages through Flask's test client on a real database: the report on a
team or one cohort (its numbers those of `build_report`, small groups withheld), exports in
every format as files that open, phone numbers only for an admin, and personas listed, compared
with a cohort, and written with the quick check's form. Each team sees only its own people."""

from __future__ import annotations

import csv
import html
import io
import json
import re
import zipfile
from collections.abc import Mapping
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from dashboard import export_pages, report_pages
from flows.model import Flow, Question
from impact.records import Selection
from impact.report import build_report
from storage.models import Answer, Assessment, AuditEntry, Cohort, Persona, table
from tests.dashboard_support import (
    START,
    Staff,
    browser,
    enrol_into_team,
    page_text,
    signed_in,
    submit,
)

assessments = table(Assessment)
answers_table = table(Answer)
cohorts = table(Cohort)
audit = table(AuditEntry)
personas = table(Persona)

NORTH_COHORT = "Spring drive"
SCRIPT = "<script>alert(1)</script>"


# --- building people ------------------------------------------------------------------------


def quick_answers(
    flow: Flow, *, skill: int = 2, interest: int = 5, basic: int = 5, **options: int
) -> dict[str, int]:
    """A whole quick check: every basic `basic`, every blocker 5 (no problem), every skill
    `skill` and interest `interest`, with `options` (e.g. GS_skill=4) in place of those."""
    found = {}
    for step in flow.modes["quick"].steps:
        if not isinstance(step, Question):
            continue
        default = {"basics": basic, "blockers": 5}.get(step.section)
        if default is None:
            default = skill if step.aspect == "skill" else interest
        found[step.key] = options.get(step.key.replace(".", "_"), default)
    return found


def add_assessment(
    engine: sa.Engine,
    flow: Flow,
    respondent_id: int,
    answers: Mapping[str, int],
    *,
    kind: str = "baseline",
    baseline_id: int | None = None,
    days: int = 0,
) -> int:
    """A completed quick check (a first one, or a check-in after `baseline_id`)."""
    at = START + timedelta(days=days)
    with engine.begin() as conn:
        assessment_id = conn.execute(
            sa.insert(assessments)
            .values(
                respondent_id=respondent_id,
                mode="quick",
                flow_id=flow.id,
                flow_version=flow.version,
                started_at=at,
                completed_at=at + timedelta(minutes=10),
                kind=kind,
                baseline_id=baseline_id,
            )
            .returning(assessments.c.id)
        ).scalar_one()
        for number, (key, option) in enumerate(answers.items()):
            question = flow.question(key)
            conn.execute(
                sa.insert(answers_table).values(
                    assessment_id=assessment_id,
                    question=key,
                    item_id=question.item,
                    aspect=question.aspect,
                    option=option,
                    score=flow.scale_of(question).option(option).score,
                    answered_at=at + timedelta(seconds=number),
                    channel="sms",
                    provider_message_id=f"SM{assessment_id:08d}{number:04d}",
                )
            )
    return int(assessment_id)


def add_cohort(engine: sa.Engine, name: str, team_id: int, initiative: str = "Device loans") -> int:
    with engine.begin() as conn:
        return int(
            conn.execute(
                sa.insert(cohorts)
                .values(name=name, initiative=initiative, team_id=team_id, created_at=START)
                .returning(cohorts.c.id)
            ).scalar_one()
        )


def people_in(
    engine: sa.Engine,
    flow: Flow,
    cohort: str,
    team_id: int,
    numbers: range,
    *,
    baseline: Mapping[str, int] | None = None,
    checkin: Mapping[str, int] | None = None,
) -> list[int]:
    """Residents 07700 900<number> in `cohort`, each with the first check `baseline` and (if
    given) a check-in `checkin` a month later."""
    found = []
    for number in numbers:
        respondent_id = enrol_into_team(
            engine, flow, f"07700 900{number:03d}", team_id, cohort=cohort
        )
        if baseline is not None:
            first = add_assessment(engine, flow, respondent_id, baseline)
            if checkin is not None:
                add_assessment(
                    engine, flow, respondent_id, checkin, kind="checkin", baseline_id=first, days=30
                )
        found.append(respondent_id)
    return found


@pytest.fixture
def spring(engine: sa.Engine, flow: Flow, staff: Staff) -> int:
    """North's "Spring drive": ten residents. Each answered every skill "willing to give it a
    go" (score 2 of 4), interest "definitely" (4), and every basic "always" except three with no
    device; a month later each could teach others to get started (GS: 4), the rest unchanged."""
    cohort_id = add_cohort(engine, NORTH_COHORT, staff.north_worker.team_id)
    team = staff.north_worker.team_id
    for numbers, basic in ((range(101, 104), 1), (range(104, 111), 5)):
        people_in(
            engine,
            flow,
            NORTH_COHORT,
            team,
            numbers,
            baseline=quick_answers(flow, skill=3, BA01_access=basic),
            checkin=quick_answers(flow, skill=3, GS_skill=5, BA01_access=basic),
        )
    return cohort_id


@pytest.fixture
def small(engine: sa.Engine, flow: Flow, staff: Staff) -> int:
    """South's "Library group": three residents with a first check and a check-in."""
    cohort_id = add_cohort(engine, "Library group", staff.south_worker.team_id, "Skills")
    people_in(
        engine,
        flow,
        "Library group",
        staff.south_worker.team_id,
        range(201, 204),
        baseline=quick_answers(flow),
        checkin=quick_answers(flow, skill=4),
    )
    return cohort_id


def last_audit(engine: sa.Engine) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.select(audit).order_by(audit.c.id.desc()).limit(1)).one()


def audit_lines(engine: sa.Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(audit).order_by(audit.c.id)))


def table_after(response: TestResponse, caption: str) -> list[str]:
    """The body rows, as words, of the table whose caption starts with `caption`."""
    page = response.get_data(as_text=True)
    start = page.index(caption)
    body = page[page.index("<tbody", start) : page.index("</tbody>", start)]
    return [
        html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip())
        for row in re.findall(r"<tr.*?</tr>", body, flags=re.S)
    ]


# --- access ---------------------------------------------------------------------------------


def test_anyone_signed_out_goes_to_the_login_page(
    dashboard: Flask, staff: Staff, spring: int
) -> None:
    client = browser(dashboard)
    for path in (
        "/reports",
        f"/cohorts/{spring}/report",
        "/exports",
        "/personas",
        "/personas/new",
        "/personas/1",
    ):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login?next="), path


def test_another_teams_cohort_is_not_found_anywhere_on_the_impact_pages(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, spring: int
) -> None:
    south = signed_in(dashboard, staff.south_worker)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(personas).values(
                slug="keen",
                name="Keen",
                description="Keen to learn",
                mode="quick",
                answers=quick_answers(flow),
                source="test",
                created_by="test",
                created_at=START,
                updated_at=START,
            )
        )
        persona_id = conn.execute(sa.select(personas.c.id)).scalar_one()
    before = last_audit(engine).id if _audited(engine) else 0

    assert south.get(f"/cohorts/{spring}/report").status_code == 404
    assert south.get(f"/personas/{persona_id}?cohort={spring}").status_code == 404
    posted = submit(south, "/exports", {"format": "csv", "cohort": str(spring)})
    assert posted.status_code == 404
    assert submit(south, "/exports", {"format": "csv", "cohort": "999999999999"}).status_code == 404
    assert not _audited(engine) or last_audit(engine).id == before
    # Their own pages work, and offer none of North's cohorts.
    for path in ("/reports", "/exports", "/personas", f"/personas/{persona_id}", "/personas/new"):
        response = south.get(path)
        assert response.status_code == 200, path
        assert NORTH_COHORT not in page_text(response), path


def _audited(engine: sa.Engine) -> bool:
    with engine.connect() as conn:
        return bool(conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one())


def test_the_navigation_leads_to_the_impact_pages(dashboard: Flask, staff: Staff) -> None:
    page = signed_in(dashboard, staff.north_worker).get("/password").get_data(as_text=True)
    navigation = page[page.index("govuk-service-navigation__list") :]
    navigation = navigation[: navigation.index("</ul>")]
    for path, words in (
        ("/reports", "Reports"),
        ("/exports", "Exports"),
        ("/personas", "Personas"),
    ):
        assert re.search(rf'href="{path}"[^>]*>\s*{words}\s*</a>', navigation), words


# --- reports --------------------------------------------------------------------------------


def test_a_cohort_report_shows_the_numbers_build_report_gives(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, spring: int
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    cohort_page = client.get(f"/cohorts/{spring}").get_data(as_text=True)
    assert f'href="/cohorts/{spring}/report"' in cohort_page

    response = client.get(f"/cohorts/{spring}/report")

    assert response.status_code == 200
    text = page_text(response)
    assert "Cohort Spring drive" in text
    assert "Cohort Spring drive, initiative Device loans" in text
    # Ten people: every one finished a first check and checked in.
    funnel = table_after(response, "People at each step")
    assert funnel[:4] == [
        "In this report 10",
        "Enrolled by staff 10",
        "Started the questions 10",
        "Finished a first check 10",
    ]
    assert funnel[4].startswith("Checked in later")
    assert funnel[4].endswith(" 10")
    # Three of the ten had no device: 30%.
    assert "A device 3 (30%)" in text
    # Getting started rose from 2 to 4 for everyone: +2.00 points, no spread.
    assert "+2.00" in text
    with engine.connect() as conn:
        report = build_report(
            conn,
            flow,
            Selection(team_id=staff.north_worker.team_id, cohort_id=spring),
            title="",
            description="",
            now=START,
        )
    assert (report.funnel.people, report.funnel.completed, report.funnel.checked_in) == (10, 10, 10)
    (device,) = [count for count in report.picture.missing_basics if count.id == "BA01"]
    assert (device.count, device.share) == (3, 0.3)
    (getting_started,) = [
        row for row in report.impact.headings if row.id == "GS" and row.aspect == "skill"
    ]
    assert (getting_started.estimate.n, getting_started.estimate.mean) == (10, 2.0)
    entry = last_audit(engine)
    assert (entry.action, entry.staff_id) == ("view report", staff.north_worker.id)
    assert f"cohort {spring}" in entry.detail
    assert "10 people" in entry.detail


def test_a_small_group_is_withheld_on_the_page(dashboard: Flask, staff: Staff, small: int) -> None:
    response = signed_in(dashboard, staff.south_worker).get(f"/cohorts/{small}/report")

    text = page_text(response)
    assert response.status_code == 200
    assert "fewer than 10 people: withheld" in text
    assert "Groups of fewer than 10 people are withheld" in text
    assert table_after(response, "People at each step")[0] == "In this report 3"


def test_the_teams_report_covers_the_members_team_and_an_admin_sees_every_team(
    dashboard: Flask, engine: sa.Engine, staff: Staff, spring: int, small: int
) -> None:
    north = signed_in(dashboard, staff.north_worker).get("/reports")
    south = signed_in(dashboard, staff.south_worker).get("/reports")
    admin = signed_in(dashboard, staff.north_admin).get("/reports")

    assert table_after(north, "People at each step")[0] == "In this report 10"
    assert table_after(south, "People at each step")[0] == "In this report 3"
    assert table_after(admin, "People at each step")[0] == "In this report 13"
    assert "Team North" in page_text(north)
    assert "Every team" in page_text(admin)
    assert f'href="/cohorts/{spring}/report"' in north.get_data(as_text=True)
    assert f'href="/cohorts/{small}/report"' not in north.get_data(as_text=True)
    admin_page = admin.get_data(as_text=True)
    assert f'href="/cohorts/{spring}/report"' in admin_page
    assert f'href="/cohorts/{small}/report"' in admin_page
    entry = last_audit(engine)
    assert (entry.action, entry.staff_id) == ("view report", staff.north_admin.id)
    assert "13 people" in entry.detail


def test_a_report_too_large_to_build_while_one_waits_says_how_to_get_it(
    dashboard: Flask,
    engine: sa.Engine,
    staff: Staff,
    spring: int,
    small: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(report_pages, "WAIT_LIMIT", 9)  # Spring drive's ten are too many
    before = last_audit(engine)

    everyone = signed_in(dashboard, staff.north_admin).get("/reports")
    cohort = signed_in(dashboard, staff.north_worker).get(f"/cohorts/{spring}/report")
    library = signed_in(dashboard, staff.south_worker).get(f"/cohorts/{small}/report")

    said = page_text(everyone)
    assert everyone.status_code == 200
    assert "This report would cover 13 people: too many to build while you wait" in said
    assert f'href="/cohorts/{small}/report"' in everyone.get_data(as_text=True)
    assert "dibot report --format html --out report.html" in said
    assert "People at each step" not in said
    assert "dibot report --cohort 'Spring drive' --format html" in html.unescape(page_text(cohort))
    assert "People at each step" in page_text(library)  # three people: built as usual
    assert last_audit(engine).action == "view report"  # only the report shown is audited
    assert last_audit(engine).id != (before.id if before is not None else None)


def test_charts_are_images_with_their_numbers_in_tables(
    dashboard: Flask, staff: Staff, spring: int
) -> None:
    page = signed_in(dashboard, staff.north_worker).get(f"/cohorts/{spring}/report")
    body = page.get_data(as_text=True)
    charts = re.findall(r"<svg\b[^>]*>", body)
    assert charts
    for chart in charts:
        assert 'role="img"' in chart
        assert "aria-labelledby" in chart
    assert "<table" in body
    assert "impact.css" in body


def test_a_cohort_name_is_escaped_everywhere(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    cohort_id = add_cohort(engine, SCRIPT, staff.north_worker.team_id, initiative=SCRIPT)
    people_in(engine, flow, SCRIPT, staff.north_worker.team_id, range(301, 302))
    client = signed_in(dashboard, staff.north_admin)
    for path in (
        f"/cohorts/{cohort_id}/report",
        "/reports",
        f"/exports?cohort={cohort_id}",
        "/personas/new",
    ):
        page = client.get(path).get_data(as_text=True)
        assert SCRIPT not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path


# --- exports --------------------------------------------------------------------------------


def download(client: FlaskClient, **fields: str) -> TestResponse:
    """The export's response, read whole and closed (as a server closes it once sent)."""
    response = submit(client, "/exports", fields)
    response.get_data()
    response.close()
    return response


@pytest.fixture
def private_temp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Where the exports' temporary files go in this test: empty again after each download."""
    folder = tmp_path / "temp"
    folder.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(folder))
    return folder


def test_the_export_form_offers_every_format_and_the_members_cohorts(
    dashboard: Flask, staff: Staff, spring: int, small: int
) -> None:
    worker = signed_in(dashboard, staff.north_worker).get(f"/exports?cohort={spring}")
    text = page_text(worker)
    for words in (
        "CSV, one row per answer",
        "CSV, one row per assessment",
        "Excel workbook",
        "FLOIP Flow Results package (zip)",
        "Outcome flags (zip of two CSV files)",
        "Sector benchmark file",
    ):
        assert words in text
    assert "Everyone in your team" in text
    page = worker.get_data(as_text=True)
    assert re.search(rf'<option value="{spring}" selected>\s*Spring drive', page)
    assert "Library group" not in text
    assert "Include phone numbers" not in text
    admin = page_text(signed_in(dashboard, staff.north_admin).get("/exports"))
    assert "Include phone numbers instead of pseudonymous ids" in admin
    assert "recorded in the audit log" in admin
    assert "Library group" in admin


def test_a_format_must_be_chosen(dashboard: Flask, staff: Staff) -> None:
    response = download(signed_in(dashboard, staff.north_worker), cohort="")
    assert response.status_code == 200
    assert "There is a problem" in page_text(response)
    assert '<a href="#format">Select the format of the export</a>' in response.get_data(True)


def csv_rows(response: TestResponse) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))


def test_every_format_downloads_as_a_file_that_opens(
    dashboard: Flask, engine: sa.Engine, staff: Staff, spring: int, private_temp: Path
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    expected = {
        "csv": ("text/csv; charset=utf-8", "csv"),
        "csv-wide": ("text/csv; charset=utf-8", "csv"),
        "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
        "floip": ("application/zip", "zip"),
        "outcomes": ("application/zip", "zip"),
        "benchmark": ("application/json", "json"),
    }
    for format, (mimetype, extension) in expected.items():
        response = download(client, format=format, cohort=str(spring))

        assert response.status_code == 200, (format, page_text(response)[:500])
        assert response.mimetype == mimetype.split(";")[0], format
        name = f"dibot-spring-drive-{format}-2026-12-01.{extension}"
        assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
        assert response.headers["Cache-Control"] == "no-store"
        assert list(private_temp.iterdir()) == [], format
        entry = last_audit(engine)
        assert (entry.action, entry.staff_id) == ("export", staff.north_worker.id)
        assert f"format={format}" in entry.detail
        assert "identified=no" in entry.detail
        assert "people=10" in entry.detail
        data = response.get_data()
        if format == "csv":
            rows = csv_rows(response)
            # 20 quick checks of 22 answers each, under one header.
            assert len(rows) == 1 + 20 * 22
        elif format == "csv-wide":
            assert len(csv_rows(response)) == 1 + 20
        elif format == "outcomes":
            with zipfile.ZipFile(io.BytesIO(data)) as bundle:
                stem = "dibot-spring-drive-outcomes-2026-12-01"
                assert bundle.namelist() == [f"{stem}.csv", f"{stem}-counts.csv"]
                flags = bundle.read(f"{stem}.csv").decode("utf-8-sig").splitlines()
                counts = bundle.read(f"{stem}-counts.csv").decode("utf-8-sig").splitlines()
            # One row per person per outcome flag: ten people, eight flags.
            assert len(flags) == 1 + 10 * 8
            assert any(line.startswith("cohort,Spring drive") for line in counts), counts
        elif format == "benchmark":
            document = json.loads(data)
            assert document["format"] == "dibot-benchmark/1"
            assert document["min_group"] == 10
        elif format == "xlsx":
            workbook = openpyxl.load_workbook(io.BytesIO(data), read_only=True)
            assert {"About", "Assessments", "Answers"} <= set(workbook.sheetnames)
            assert workbook["Assessments"].max_row == 1 + 20
            workbook.close()
        else:
            with zipfile.ZipFile(io.BytesIO(data)) as package:
                assert package.namelist()[0] == "datapackage.json"
                assert any(n.endswith("-responses.json") for n in package.namelist())
        # People are pseudonymous: no phone number anywhere.
        assert b"447700900" not in data, format


def test_an_export_too_large_to_make_while_one_waits_says_how_to_get_it(
    dashboard: Flask,
    engine: sa.Engine,
    staff: Staff,
    spring: int,
    private_temp: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    offered = tuple(
        replace(found, wait_limit=9) if found.value == "xlsx" else found
        for found in export_pages.OFFERED
    )
    monkeypatch.setattr(export_pages, "OFFERED", offered)
    monkeypatch.setattr(export_pages, "FORMATS", {found.value: found for found in offered})
    client = signed_in(dashboard, staff.north_worker)
    before = last_audit(engine)

    refused = download(client, format="xlsx", cohort=str(spring))
    made = download(client, format="csv", cohort=str(spring))

    said = html.unescape(page_text(refused))
    assert refused.status_code == 200
    assert "There is a problem" in said
    assert "Excel workbook of 10 people takes too long to make while you wait (up to 9" in said
    assert "dibot export --format xlsx --cohort 'Spring drive' --out FILE" in said
    assert made.status_code == 200
    assert made.mimetype == "text/csv"
    audits = [a for a in audit_lines(engine) if a.id > before.id and a.action == "export"]
    assert [a.detail.split()[0] for a in audits] == ["format=csv"]  # the refused one: none
    assert list(private_temp.iterdir()) == []


def test_phone_numbers_are_refused_to_a_worker_and_given_to_an_admin(
    dashboard: Flask, engine: sa.Engine, staff: Staff, spring: int, private_temp: Path
) -> None:
    worker = signed_in(dashboard, staff.north_worker)

    refused = download(worker, format="csv", cohort=str(spring), identified="y")

    assert refused.status_code == 403
    entry = last_audit(engine)
    assert (entry.action, entry.staff_id) == ("refused export", staff.north_worker.id)
    assert "identified" in entry.detail

    admin = signed_in(dashboard, staff.north_admin)
    given = download(admin, format="csv", cohort=str(spring), identified="y")

    assert given.status_code == 200
    rows = csv_rows(given)
    assert any("tel:+447700900101" in row for row in rows)
    entry = last_audit(engine)
    assert (entry.action, entry.staff_id) == ("export", staff.north_admin.id)
    assert "identified=yes" in entry.detail
    assert list(private_temp.iterdir()) == []


def test_the_export_needs_the_forms_token(dashboard: Flask, staff: Staff, spring: int) -> None:
    client = signed_in(dashboard, staff.north_worker)
    response = client.post("/exports", data={"format": "csv", "cohort": str(spring)})
    assert response.status_code == 400


# --- personas -------------------------------------------------------------------------------


def persona_fields(flow: Flow, **options: int) -> dict[str, str]:
    """The form's answers: every basic and blocker 5, every skill 5 and interest 1 (no priority),
    with `options` (e.g. TR_skill=2) in place of those."""
    answers = quick_answers(flow, skill=5, interest=1, **options)
    return {key.replace(".", "_"): str(option) for key, option in answers.items()}


def test_a_persona_with_answers_missing_lists_each_in_the_error_summary(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    fields = persona_fields(flow)
    del fields["BA01_access"], fields["AD_interest"]

    response = submit(client, "/personas/new", {"name": "", "description": "", **fields})

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    summary = page[page.index("govuk-error-summary__list") :]
    summary = summary[: summary.index("</ul>")]
    links = re.findall(r'<a href="([^"]+)">(.*?)</a>', summary, flags=re.S)
    assert [(href, html.unescape(text.strip())) for href, text in links] == [
        ("#name", "Enter a name for the persona"),
        ("#description", "Enter a description of the persona"),
        (
            "#BA01_access",
            "Select how they would answer: Do you have a phone, tablet or computer that can go "
            "online?",
        ),
        (
            "#AD_interest",
            "Select how they would answer: If you could apply for jobs and work online, would "
            "you do it regularly?",
        ),
    ]
    assert page_text(response).startswith("Error: Add a persona")
    assert 'id="BA01_access"' in page
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(personas)).scalar_one() == 0


def test_a_persona_is_saved_and_listed_with_its_likely_priorities(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, spring: int
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    form = client.get("/personas/new")
    text = page_text(form)
    assert "I have no ability" in text
    assert "I could teach others" in text
    assert "I'll definitely do this regularly" in html.unescape(text)
    assert "This stops me from using the internet" in text
    # Shopping, banking and forms: cautious (score 1), definitely interested (4): 4 x 3 = 12;
    # messages and calls: willing to try (2), likely (3): 3 x 2 = 6; the rest could teach others.
    fields = persona_fields(flow, TR_skill=2, TR_interest=5, CM_skill=3, CM_interest=4)

    saved = submit(
        client,
        "/personas/new",
        {
            "name": "Keen <b>learner</b>",
            "description": "Has a phone, wants to bank online.",
            "cohort": str(spring),
            **fields,
        },
    )

    assert saved.status_code == 302
    with engine.connect() as conn:
        stored = conn.execute(sa.select(personas)).one()
    assert saved.headers["Location"] == f"/personas/{stored.id}"
    assert (stored.slug, stored.mode, stored.cohort_id, stored.created_by) == (
        "keen-b-learner-b",
        "quick",
        spring,
        staff.north_worker.email,
    )
    assert stored.answers["TR.skill"] == 2
    entry = last_audit(engine)
    assert (entry.action, entry.staff_id) == ("save persona", staff.north_worker.id)
    shown = client.get(saved.headers["Location"])
    assert "Persona Keen &lt;b&gt;learner&lt;/b&gt; saved" in shown.get_data(as_text=True)
    listing = client.get("/personas")
    assert table_after(listing, "Stored personas") == [
        "Keen <b>learner</b> Quick check Spring drive Shopping, banking and forms "
        "Messages and calls"
    ]
    assert "<b>learner" not in listing.get_data(as_text=True)
    # Another team sees that it describes a cohort, not which.
    south = signed_in(dashboard, staff.south_worker).get("/personas")
    assert table_after(south, "Stored personas")[0].startswith(
        "Keen <b>learner</b> Quick check Another team's cohort"
    )


def test_a_persona_is_compared_with_a_cohort(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, spring: int, small: int
) -> None:
    client = signed_in(dashboard, staff.north_worker)
    # Every skill "willing to give it a go" (2 of 4: 50%), interest "may or may not" (2: 50%).
    saved = submit(
        client,
        "/personas/new",
        {
            "name": "Middling",
            "description": "Halfway on everything.",
            **persona_fields(flow, **{f"{h.id}_skill": 3 for h in flow.headings}),
            **{f"{h.id}_interest": "3" for h in flow.headings},
        },
    )
    path = saved.headers["Location"]
    page = client.get(path)
    assert "Shopping, banking and forms" not in page_text(page).split("Likely priorities")[1][:40]

    compared = client.get(f"{path}?cohort={spring}")

    assert compared.status_code == 200
    rows = table_after(compared, "Skill and interest: cohort and persona")
    # The cohort at its first check: every skill 2 of 4 (50%), interest 4 of 4 (100%).
    assert rows[0] == "Getting started (skill) 50% 50% The same"
    assert "Getting started (interest) 100% 50% +50 points" in rows
    conditions = table_after(compared, "Basics and blockers")
    assert conditions[0] == "Missing a basic: a device 30% No"
    entry = last_audit(engine)
    assert (entry.action, entry.staff_id) == ("compare persona", staff.north_worker.id)
    assert f"cohort {spring}" in entry.detail

    south = signed_in(dashboard, staff.south_worker)
    withheld = south.get(f"{path}?cohort={small}")
    assert "Fewer than 10 people in this cohort" in page_text(withheld)


def test_the_shipped_personas_are_labelled_illustrative(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    from impact.personas import ILLUSTRATIVE_PERSONAS, read_personas, store_personas

    with engine.begin() as conn:
        store_personas(conn, read_personas(ILLUSTRATIVE_PERSONAS, flow), "test", now=START)
    listing = signed_in(dashboard, staff.north_worker).get("/personas")

    rows = table_after(listing, "Stored personas")
    assert rows
    assert all("Illustrative" in row for row in rows)
    assert rows[0].startswith("Offline and not interested Illustrative Quick check None")
    assert "not LOTI's digital exclusion personas" in html.unescape(page_text(listing))


def test_everyone_a_worker_may_see_is_their_teams_people(
    dashboard: Flask, engine: sa.Engine, staff: Staff, spring: int, small: int, private_temp: Path
) -> None:
    response = download(signed_in(dashboard, staff.south_worker), format="csv-wide", cohort="")

    assert response.status_code == 200
    name = "dibot-team-south-csv-wide-2026-12-01.csv"
    assert response.headers["Content-Disposition"] == f"attachment; filename={name}"
    # South's three residents, one first check and one check-in each.
    assert len(csv_rows(response)) == 1 + 3 * 2
    entry = last_audit(engine)
    assert "team=South" in entry.detail
    assert "people=3" in entry.detail
