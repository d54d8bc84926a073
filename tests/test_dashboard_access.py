"""Every dashboard route that names a respondent or a cohort in its URL answers another team's
worker exactly as it answers an id that does not exist: 404, for GET and POST alike, with
nothing changed. The routes are read from the app's URL map, so a page added later is covered
without touching this test."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from flask import Flask
from werkzeug.routing import Rule

from flows.model import Flow
from storage.models import AuditEntry, Cohort, CohortMember, OutboxEntry, table
from tests.dashboard_support import Staff, csrf_token, enrol_into_team, signed_in

SCOPED = ("respondent_id", "cohort_id")
NOW = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def scoped_rules(app: Flask) -> list[Rule]:
    return [
        rule
        for rule in app.url_map.iter_rules()
        if rule.endpoint.startswith("dashboard.") and set(rule.arguments) & set(SCOPED)
    ]


@pytest.fixture
def north(engine: sa.Engine, flow: Flow, staff: Staff) -> dict[str, int]:
    """A North resident in a North cohort: what South's worker tries to reach."""
    respondent_id = enrol_into_team(engine, flow, "07700 900123", staff.north_worker.team_id)
    cohorts, members = table(Cohort), table(CohortMember)
    with engine.begin() as conn:
        cohort_id = conn.execute(
            sa.insert(cohorts)
            .values(name="North library course", team_id=staff.north_worker.team_id, created_at=NOW)
            .returning(cohorts.c.id)
        ).scalar_one()
        conn.execute(
            sa.insert(members).values(
                cohort_id=cohort_id, respondent_id=respondent_id, added_at=NOW
            )
        )
    return {"respondent_id": respondent_id, "cohort_id": cohort_id}


def counts(engine: sa.Engine) -> tuple[int, ...]:
    with engine.connect() as conn:
        return tuple(
            conn.execute(sa.select(sa.func.count()).select_from(table(model))).scalar_one()
            for model in (OutboxEntry, CohortMember, Cohort)
        )


def test_the_dashboard_has_routes_that_name_respondents_and_cohorts(dashboard: Flask) -> None:
    endpoints = {rule.endpoint for rule in scoped_rules(dashboard)}
    assert {"dashboard.respondent", "dashboard.followup", "dashboard.assisted"} <= endpoints
    assert "dashboard.cohort" in endpoints


def test_another_teams_worker_gets_404_on_every_route_and_changes_nothing(
    dashboard: Flask, engine: sa.Engine, staff: Staff, north: dict[str, int]
) -> None:
    south = signed_in(dashboard, staff.south_worker)
    token = csrf_token(south, "/password")
    before = counts(engine)
    tried = []
    for rule in scoped_rules(dashboard):
        path = rule.build({name: north[name] for name in rule.arguments}, append_unknown=False)
        assert path is not None
        url = path[1]
        for method in sorted((rule.methods or set()) & {"GET", "POST"}):
            if method == "GET":
                response = south.get(url)
            else:
                response = south.post(url, data={"csrf_token": token, "text": "Hello"})
            assert response.status_code == 404, (method, url, response.status_code)
            tried.append((method, rule.endpoint))
    assert counts(engine) == before
    assert len(tried) >= 5


def test_the_owning_team_and_an_admin_reach_the_same_pages(
    dashboard: Flask, staff: Staff, north: dict[str, int]
) -> None:
    for member in (staff.north_worker, staff.north_admin):
        client = signed_in(dashboard, member)
        for rule in scoped_rules(dashboard):
            if "GET" not in (rule.methods or set()):
                continue
            path = rule.build({name: north[name] for name in rule.arguments})
            assert path is not None
            assert client.get(path[1]).status_code == 200, (member.email, path[1])


def test_ids_that_do_not_exist_or_are_not_numbers_get_404(
    dashboard: Flask, engine: sa.Engine, staff: Staff, north: dict[str, int]
) -> None:
    admin = signed_in(dashboard, staff.north_admin)
    for rule in scoped_rules(dashboard):
        if "GET" not in (rule.methods or set()):
            continue
        for bad in (999_999_999, 0):
            path = rule.build(dict.fromkeys(rule.arguments, bad))
            assert path is not None
            assert admin.get(path[1]).status_code == 404, path[1]
        template = rule.rule
        for name in rule.arguments:
            template = template.replace(f"<int:{name}>", "-1")
        assert admin.get(template).status_code == 404, template
        assert admin.get(template.replace("-1", "1e3")).status_code == 404
    audit = table(AuditEntry)
    with engine.connect() as conn:
        viewed = conn.execute(
            sa.select(sa.func.count()).where(audit.c.respondent_id == 999_999_999)
        ).scalar_one()
    assert viewed == 0


QUERY_SCOPED = (
    ("GET", "/personas/{persona_id}?cohort={cohort_id}"),
    ("POST", "/exports"),
    ("POST", "/personas/new"),
)
"""Routes that take a cohort in their query or form rather than their path: another team's
cohort there answers 404 too."""
PUBLIC = frozenset({"dashboard.login", "dashboard.static"})


def test_another_teams_cohort_in_a_query_or_form_is_not_found(
    dashboard: Flask, engine: sa.Engine, flow: Flow, staff: Staff, north: dict[str, int]
) -> None:
    from impact.personas import ILLUSTRATIVE_PERSONAS, read_personas, store_personas

    with engine.begin() as conn:
        store_personas(conn, read_personas(ILLUSTRATIVE_PERSONAS, flow)[:1], "test", now=NOW)
        persona_id = conn.execute(sa.text("SELECT min(id) FROM personas")).scalar_one()
    south = signed_in(dashboard, staff.south_worker)
    token = csrf_token(south, "/exports")
    audit = table(AuditEntry)
    with engine.connect() as conn:
        audited = conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one()
    for method, template in QUERY_SCOPED:
        url = template.format(persona_id=persona_id, cohort_id=north["cohort_id"])
        if method == "GET":
            response = south.get(url)
        else:
            response = south.post(
                url, data={"csrf_token": token, "format": "csv", "cohort": north["cohort_id"]}
            )
        assert response.status_code == 404, (method, url, response.status_code)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(audit)).scalar_one() == audited


def test_every_page_but_the_login_page_needs_a_signed_in_member(
    dashboard: Flask, north: dict[str, int]
) -> None:
    client = dashboard.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    for rule in dashboard.url_map.iter_rules():
        if not rule.endpoint.startswith("dashboard.") or rule.endpoint in PUBLIC:
            continue
        values = {name: north.get(name, 1) for name in rule.arguments}
        path = rule.build(values, append_unknown=False)
        assert path is not None
        if "GET" in (rule.methods or set()):
            response = client.get(path[1])
            assert response.status_code == 302, (rule.rule, response.status_code)
            assert response.headers["Location"].startswith("/login"), rule.rule
