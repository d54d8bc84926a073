"""The cohort report in the dashboard: `GET /reports` (everyone the member may see: a worker's
team, every team for an admin) and `GET /cohorts/<id>/report` (one cohort).

The rule it keeps: a report is `impact.report.build_report` over exactly the people the member
may see (`Selection(team_id=None for an admin, else the member's team)`), and a cohort's report
is reached only through `cohort_or_404`, another team's cohort answering 404. Its words, numbers
and charts are the report partial's (impact/templates/report_body.html), so the page says what
`dibot report` says, small groups withheld the same way. The report is read in a read-only
transaction and audited just after ("view report"), like every page about people.

A report on more than `WAIT_LIMIT` people is not built while the member waits (at about a
millisecond a person it would outlast the web worker's 60 s): the page says how many people it
covers and how to get it (one cohort, or `dibot report --format html` on the server).
"""

from __future__ import annotations

import shlex
from typing import Any

import sqlalchemy as sa
from flask import Blueprint, render_template
from flask.typing import ResponseReturnValue

from dashboard.accounts import StaffMember
from dashboard.site import ADMIN, MAX_ID, Site, cohort_or_404, cohort_scope, cohorts
from impact.records import Selection, count_people
from impact.render_html import report_view
from impact.report import CohortReport, build_report
from storage.database import read_only

WAIT_LIMIT = 20_000
"""The most people a report page builds while the member waits."""


def visible_cohorts(conn: sa.Connection, member: StaffMember) -> list[Any]:
    """The cohorts `member` may see (id, name, initiative), by name."""
    return list(
        conn.execute(
            sa.select(cohorts.c.id, cohorts.c.name, cohorts.c.initiative)
            .where(cohort_scope(member))
            .order_by(cohorts.c.name, cohorts.c.id)
        ).all()
    )


def selection_for(member: StaffMember, cohort_id: int | None = None) -> Selection:
    """Whose data `member` may have in a report or an export."""
    return Selection(team_id=None if member.role == ADMIN else member.team_id, cohort_id=cohort_id)


def everyone_words(member: StaffMember) -> str:
    """Who "everyone" is for `member`, in words."""
    return "Every team" if member.role == ADMIN else f"Team {member.team}"


def cohort_words(cohort: Any) -> str:
    """A cohort, in words: "Cohort Spring drive, initiative Device loans"."""
    words = f"Cohort {cohort.name}"
    return f"{words}, initiative {cohort.initiative}" if cohort.initiative else words


def register(pages: Blueprint, site: Site) -> None:
    flow = site.runtime.flow

    def page(member: StaffMember, report: CohortReport, detail: str, **shown: Any) -> str:
        site.audit_view(member, "view report", detail=f"{detail}, {report.funnel.people} people")
        return render_template(
            "impact/report.html", report=report, view=report_view(report), **shown
        )

    def too_many(
        member: StaffMember, title: str, people: int, cohort: Any, found: list[Any]
    ) -> str:
        chosen = f" --cohort {shlex.quote(cohort.name)}" if cohort is not None else ""
        return render_template(
            "impact/report_too_large.html",
            title=title,
            people=people,
            limit=WAIT_LIMIT,
            cohort=cohort,
            cohorts=found,
            command=f"dibot report{chosen} --format html --out report.html",
        )

    @pages.get("/reports", endpoint="reports")
    @site.staff_page
    def reports_page(member: StaffMember) -> ResponseReturnValue:
        title = everyone_words(member)
        with site.engine.connect() as connection:
            conn = read_only(connection)
            found = visible_cohorts(conn, member)
            people = count_people(conn, selection_for(member))
            if people > WAIT_LIMIT:
                return too_many(member, title, people, None, found)
            report = build_report(
                conn,
                flow,
                selection_for(member),
                title=title,
                description=(
                    "Everyone in every team"
                    if member.role == ADMIN
                    else f"Everyone in team {member.team}"
                ),
                now=site.now(),
            )
        return page(member, report, f"report on {title.lower()}", cohort=None, cohorts=found)

    @pages.get(f"/cohorts/<int(min=1, max={MAX_ID}):cohort_id>/report", endpoint="cohort_report")
    @site.staff_page
    def cohort_report_page(member: StaffMember, cohort_id: int) -> ResponseReturnValue:
        with site.engine.connect() as connection:
            conn = read_only(connection)
            cohort = cohort_or_404(conn, member, cohort_id)
            people = count_people(conn, selection_for(member, cohort_id))
            if people > WAIT_LIMIT:
                return too_many(member, f"Cohort {cohort.name}", people, cohort, [])
            report = build_report(
                conn,
                flow,
                selection_for(member, cohort_id),
                title=f"Cohort {cohort.name}",
                description=cohort_words(cohort),
                now=site.now(),
            )
        return page(member, report, f"report on cohort {cohort_id}", cohort=cohort, cohorts=[])
