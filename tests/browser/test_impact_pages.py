"""The impact pages in a real browser, axe-core on each state with no violation of any impact:
the report on every team and on one cohort (charts and tables), a small cohort's withheld
report, the export form (an admin's, with the phone numbers choice and its warning; an error)
and a download, the personas list, a persona compared with a cohort, and the persona form empty,
with errors, and saved."""

from __future__ import annotations

import csv
import io

import sqlalchemy as sa

from flows.model import Flow
from impact.personas import ILLUSTRATIVE_PERSONAS, read_personas, store_personas
from tests.browser.support import Visit, sign_in
from tests.dashboard_support import NORTH_ADMIN, NORTH_WORKER, PASSWORD, START, Staff
from tests.test_dashboard_impact import add_cohort, people_in, quick_answers

NO_VIOLATIONS = {"critical": 0, "serious": 0, "moderate": 0, "minor": 0}


def check(visit: Visit, label: str) -> None:
    assert visit.check(label) == NO_VIOLATIONS, label


def test_the_impact_pages_have_no_axe_violations(
    visit: Visit, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    north, south = staff.north_worker.team_id, staff.south_worker.team_id
    spring = add_cohort(engine, "Spring drive", north)
    people_in(
        engine,
        flow,
        "Spring drive",
        north,
        range(101, 113),
        baseline=quick_answers(flow, skill=2, interest=5, BA01_access=1),
        checkin=quick_answers(flow, skill=4, interest=5, BA01_access=5),
    )
    small = add_cohort(engine, "Library group", south, "Skills")
    people_in(engine, flow, "Library group", south, range(201, 204), baseline=quick_answers(flow))
    with engine.begin() as conn:
        store_personas(conn, read_personas(ILLUSTRATIVE_PERSONAS, flow), "test", now=START)
    sign_in(visit, NORTH_ADMIN, PASSWORD)

    visit.go("/reports", snap=False)
    assert visit.page.locator("svg[role=img]").count() > 0
    check(visit, "/reports")
    visit.go(f"/cohorts/{spring}/report", snap=False)
    assert "Cohort Spring drive" in visit.text("h1")
    check(visit, "/cohorts/<id>/report")
    visit.go(f"/cohorts/{small}/report", snap=False)
    assert "withheld" in visit.text()
    check(visit, "/cohorts/<id>/report (withheld)")

    visit.go("/exports", snap=False)
    assert "Include phone numbers instead of pseudonymous ids" in visit.text()
    check(visit, "/exports")
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Download the export").click()
    assert "Select the format of the export" in visit.text(".govuk-error-summary")
    check(visit, "/exports (error)")
    visit.page.get_by_label("CSV, one row per assessment").check()
    visit.page.get_by_label("Whose answers").select_option(label="Spring drive")
    with visit.page.expect_download() as downloading:
        visit.page.get_by_role("button", name="Download the export").click()
    download = downloading.value
    assert download.suggested_filename == "dibot-spring-drive-csv-wide-2026-12-01.csv"
    path = download.path()
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 1 + 12 * 2

    visit.go("/personas", snap=False)
    assert "Illustrative" in visit.text()
    check(visit, "/personas")
    visit.page.get_by_role("link", name="Offline and not interested").click()
    visit.wait_for_path(r"/personas/\d+")
    check(visit, "/personas/<id>")
    visit.page.get_by_label("Cohort").select_option(label="Spring drive")
    with visit.page.expect_navigation():
        visit.page.get_by_role("button", name="Compare").click()
    assert "Cohort Spring drive beside Offline and not interested" in visit.text()
    check(visit, "/personas/<id>?cohort")


def test_the_persona_form_has_no_axe_violations_empty_wrong_or_saved(
    visit: Visit, engine: sa.Engine, flow: Flow, staff: Staff
) -> None:
    add_cohort(engine, "Spring drive", staff.north_worker.team_id)
    sign_in(visit, NORTH_WORKER, PASSWORD)
    visit.go("/personas/new", snap=False)
    check(visit, "/personas/new")
    page = visit.page
    page.get_by_label("Name of the persona").fill("Keen learner")
    with page.expect_navigation():
        page.get_by_role("button", name="Save persona").click()
    assert page.title().startswith("Error: Add a persona")
    check(visit, "/personas/new (errors)")
    page.get_by_label("Description").fill("Has a phone, wants to bank online.")
    page.get_by_label("Cohort it describes (optional)").select_option(label="Spring drive")
    for fieldset in page.locator("fieldset").all():
        fieldset.locator("input[type=radio]").last.check()
    with page.expect_navigation():
        page.get_by_role("button", name="Save persona").click()
    visit.wait_for_path(r"/personas/\d+")
    assert "Persona Keen learner saved" in visit.text(".govuk-notification-banner")
    check(visit, "/personas/<id> (saved)")
